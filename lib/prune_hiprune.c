/* prune_hiprune.c - hiprune (HiPrune, Danielement321/HiPrune,
 * LLaVA/llava/model/llava_arch.py encode_images): attention each token
 * receives (mean over heads and queries).  Anchors: the
 * round(budget x alpha / 5) tokens with most of it at the object layer
 * (1-based encoder block, 9 for CLIP-L); buffers: each anchor's index
 * neighbours -1, +1, -side, +side within its tile (clamped to the tile, as
 * the reference clamps to 0..575, so -1/+1 may wrap to the next row);
 * registers: the rest of the budget by the same attention at the output
 * (feature) layer, among the tokens not chosen yet.  Rounding is Python's
 * round() (half to even). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "prune_int.h"
#include "util.h"

int prune_hiprune_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s)
{
	const int64_t n = u->n;
	float *shallow = weft_malloc((size_t)n * sizeof *shallow), *deep = weft_malloc((size_t)n * sizeof *deep);
	uint8_t *chosen = weft_calloc((size_t)n, 1);
	int32_t *top = weft_malloc((size_t)n * sizeof *top);
	int rc = -1;
	if (!shallow || !deep || !chosen || !top)
		goto out;
	const int ol = (int)prune_param(p, "object_layer");
	for (int ti = 0; ti < u->n_tiles; ti++) /* in the parameter's terms, not gather's 0-based layer */
		if (u->tiles[ti].n_sal_layers > 0 && (ol < 1 || ol > u->tiles[ti].n_sal_layers)) {
			weft_error("object_layer=%d: the encoder has %" PRId64 " blocks of attention (1..%" PRId64
				   "; the default 9 is CLIP-L's, give -P object_layer=N)",
				   ol, u->tiles[ti].n_sal_layers, u->tiles[ti].n_sal_layers);
			goto out;
		}
	if (prune_attn_recv(u, ol - 1, shallow) != 0 ||
	    prune_attn_recv(u, (int)prune_param(p, "layer"), deep) != 0)
		goto out;
	int64_t k_anchor = (int64_t)rint((double)budget * prune_param(p, "alpha") / 5.0);
	prune_topk(shallow, n, k_anchor, top);
	int64_t n_chosen = 0;
	for (int64_t a = 0; a < k_anchor; a++) {
		const int64_t i = top[a], t = u->tile[i], lo = u->first[t], hi = lo + u->tiles[t].n_tokens;
		const int side = prune_side(u, i);
		const int64_t nb[5] = {i, i - 1, i + 1, i - side, i + side};
		for (int q = 0; q < 5; q++) {
			int64_t j = nb[q] < lo ? lo : nb[q] >= hi ? hi - 1 : nb[q];
			if (!chosen[j] && n_chosen < budget)
				chosen[j] = 1, n_chosen++;
		}
	}
	rc = 0;
	for (int64_t i = 0; i < n && rc == 0; i++)
		if (chosen[i])
			rc = prune_sel_keep(s, i);
	/* registers: the deep layer's best among the rest */
	for (int64_t i = 0; i < n; i++)
		if (chosen[i])
			deep[i] = -INFINITY;
	prune_topk(deep, n, budget - n_chosen, top);
	for (int64_t i = 0; i < budget - n_chosen && rc == 0; i++)
		rc = prune_sel_keep(s, top[i]);
out:
	free(shallow), free(deep), free(chosen), free(top);
	return rc;
}

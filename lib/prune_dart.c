/* prune_dart.c - dart (DART, ZichenWen1/DART; as ModelTC/llmc's
 * token_reduction/dart.py transcribes it): before layer K (param layer, 2),
 *   pivots: the `pivots` visual tokens and the `text_pivots` text tokens
 *     after the image whose keys at layer K - 1 (every KV head's, after
 *     RoPE, as cached) have the largest L1 norm;
 *   for each pivot in turn, the visual tokens (not pivots, not chosen yet)
 *     least cosine-similar to it, compared by the hidden states entering
 *     layer K through the model's final RMS norm; each pivot takes
 *     (budget - pivots) / (pivots + text_pivots) of them (the first pivots
 *     one more, to fill the budget exactly; the reference's
 *     int(n (1 - r) / P) may leave a few over or under);
 *   kept: the visual pivots and the tokens chosen.
 * The reference walks the pivots in Python set order; weft walks them by
 * position.  Duplication, not attention: no attention row is needed. */
#include <math.h>
#include <stdlib.h>

#include "ggml_types.h"
#include "prune_int.h"
#include "util.h"

int prune_dart_drop(prune_llm_ctx *c, const weft_fwd_rows *r, int32_t *keep, int64_t *n_keep)
{
	if (r->layer != (int)prune_param(c->p, "layer"))
		return 0;
	const weft_hparams *hp = &r->m->hp;
	const weft_kv *kv = r->kv;
	const int l = r->layer - 1, G = hp->n_head_kv, hd = hp->head_dim;
	const int64_t n = r->n, d = hp->n_embd;
	float *l1 = weft_calloc((size_t)n, sizeof *l1), *st = weft_malloc((size_t)n * (size_t)d * sizeof *st);
	float *kr = weft_malloc((size_t)hd * sizeof *kr), *sc = weft_malloc((size_t)n * sizeof *sc);
	uint8_t *taken = weft_calloc((size_t)n, 1), *pivot = weft_calloc((size_t)n, 1);
	int32_t *top = weft_malloc((size_t)n * sizeof *top);
	int rc = -1;
	if (!l1 || !st || !kr || !sc || !taken || !pivot || !top)
		goto out;
	/* the key L1 norms of the pass's rows (the last n rows of each head) */
	for (int g = 0; g < G; g++) {
		const int64_t first = kv->len[l * G + g] - n;
		for (int64_t j = 0; j < n; j++) {
			weft_dequantize_row((uint32_t)kv->layer[l].type, weft_kv_krow(kv, l, g, first + j), kr, hd);
			for (int e = 0; e < hd; e++)
				l1[j] += fabsf(kr[e]);
		}
	}
	int64_t last_vis = -1, nv = 0;
	for (int64_t j = 0; j < n; j++)
		if (c->is_vis[r->src[j]])
			last_vis = j, nv++;
	const int64_t pv = (int64_t)prune_param(c->p, "pivots"), pt = (int64_t)prune_param(c->p, "text_pivots");
	const int64_t B = c->budget < nv ? c->budget : nv;
	/* visual pivots */
	for (int64_t j = 0; j < n; j++)
		sc[j] = c->is_vis[r->src[j]] ? l1[j] : -INFINITY;
	const int64_t npv = pv < B ? pv : B;
	prune_topk(sc, n, npv, top);
	for (int64_t i = 0; i < npv; i++)
		pivot[top[i]] = 1, taken[top[i]] = 1;
	/* text pivots: after the image */
	int64_t nt = 0;
	for (int64_t j = 0; j < n; j++)
		sc[j] = j > last_vis && !c->is_vis[r->src[j]] ? (nt++, l1[j]) : -INFINITY;
	const int64_t npt = pt < nt ? pt : nt;
	prune_topk(sc, n, npt, top);
	for (int64_t i = 0; i < npt; i++)
		pivot[top[i]] = 2;
	/* the final-normed hidden states */
	for (int64_t j = 0; j < n; j++)
		weft_rmsnorm(st + j * d, r->x + j * d, r->m->out_norm->data, d, hp->rms_eps);
	const int64_t P = npv + npt, rest = B - npv;
	int64_t done = 0;
	for (int64_t j = 0, pi = 0; j < n && P > 0 && rest > 0; j++) {
		if (!pivot[j])
			continue;
		const int64_t quota = rest / P + (pi++ < rest % P ? 1 : 0);
		const float *a = st + j * d;
		const double na = sqrt(prune_dot_d(a, a, d));
		int64_t cand = 0;
		for (int64_t t = 0; t < n; t++) {
			sc[t] = -INFINITY;
			if (c->is_vis[r->src[t]] && !taken[t]) {
				const float *b = st + t * d;
				sc[t] = (float)(-prune_dot_d(a, b, d) / (na * sqrt(prune_dot_d(b, b, d)) + 1e-30));
				cand++;
			}
		}
		const int64_t q = quota < cand ? quota : cand;
		prune_topk(sc, n, q, top);
		for (int64_t i = 0; i < q; i++)
			taken[top[i]] = 1;
		done += q;
	}
	(void)done;
	int64_t k = 0;
	for (int64_t j = 0; j < n; j++)
		if (!c->is_vis[r->src[j]] || taken[j])
			keep[k++] = (int32_t)j;
	*n_keep = k;
	rc = 0;
out:
	free(l1), free(st), free(kr), free(sc), free(taken), free(pivot), free(top);
	return rc;
}

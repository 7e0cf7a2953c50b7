/* prune_visionzip.c - visionzip (VisionZip, dvlab-research/VisionZip,
 * visionzip/clip_encoder.py): dominant tokens = the top ones by [CLS]
 * attention of the feature layer (summed over heads); the others, in
 * their order, are merged into `contextual` targets taken at a uniform
 * step (step = max(1, n_rest / contextual), the first `contextual`
 * multiples): each non-target token goes to the target whose key (the
 * layer's keys, averaged over heads in the reference: any positive scale
 * gives the same cosines, so the exported keys serve) is most
 * cosine-similar; a target becomes its own row plus the mean of the rows
 * assigned to it.  contextual = round(budget x param contextual) (10 of
 * 64, 20 of 128, 30 of 192: the paper's splits).  The reference keeps the
 * [CLS] token as one dominant token; the stream holds no [CLS] row, so
 * every dominant slot is a patch.  It merges the tower's features before
 * the projector; weft merges the projected embeddings (the same for a
 * linear projector, an approximation through LLaVA's GELU MLP). */
#include <math.h>
#include <stdlib.h>

#include "prune_int.h"
#include "util.h"

int prune_visionzip_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s)
{
	const int64_t n = u->n;
	int64_t n_ctx = (int64_t)floor((double)budget * prune_param(p, "contextual") + 0.5);
	if (n_ctx > budget)
		n_ctx = budget;
	const int64_t n_dom = budget - n_ctx;
	float *a = weft_malloc((size_t)n * sizeof *a), *keys = NULL, *kn = NULL;
	int32_t *top = weft_malloc((size_t)n * sizeof *top), *rest = weft_malloc((size_t)n * sizeof *rest);
	int32_t *tgt = NULL, *count = NULL;
	uint8_t *dom = weft_calloc((size_t)n, 1), *is_tgt = NULL;
	int64_t dk = 0;
	int rc = -1;
	if (!a || !top || !rest || !dom || prune_saliency(u, (int)prune_param(p, "layer"), a) != 0)
		goto out;
	prune_topk(a, n, n_dom, top);
	for (int64_t i = 0; i < n_dom; i++) {
		dom[top[i]] = 1;
		if (prune_sel_keep(s, top[i]) != 0)
			goto out;
	}
	if (n_ctx == 0) {
		rc = 0;
		goto out;
	}
	if (!(keys = prune_keys(u, &dk)) || !(kn = prune_normalized(keys, n, dk)))
		goto out;
	int64_t nr = 0;
	for (int64_t i = 0; i < n; i++)
		if (!dom[i])
			rest[nr++] = (int32_t)i;
	const int64_t step = nr / n_ctx > 1 ? nr / n_ctx : 1;
	tgt = weft_malloc((size_t)n_ctx * sizeof *tgt);
	count = weft_calloc((size_t)n_ctx, sizeof *count);
	is_tgt = weft_calloc((size_t)nr, 1);
	int32_t *assign = weft_malloc((size_t)nr * sizeof *assign);
	if (!tgt || !count || !is_tgt || !assign) {
		free(assign);
		goto out;
	}
	int64_t nt = 0;
	for (int64_t j = 0; j < nr && nt < n_ctx; j += step)
		is_tgt[j] = 1, tgt[nt++] = (int32_t)j;
	for (int64_t j = 0; j < nr; j++) {
		if (is_tgt[j])
			continue;
		int64_t best = 0;
		float bv = -INFINITY;
		for (int64_t t = 0; t < nt; t++) {
			const float c = prune_dot(kn + (int64_t)rest[j] * dk, kn + (int64_t)rest[tgt[t]] * dk, dk);
			if (c > bv)
				bv = c, best = t;
		}
		assign[j] = (int32_t)best;
		count[best]++;
	}
	rc = 0;
	for (int64_t t = 0; t < nt && rc == 0; t++) {
		const int64_t anchor = rest[tgt[t]];
		rc = prune_sel_keep(s, anchor) || prune_sel_merge(s, anchor, anchor, 1.0f);
		const float w = 1.0f / (float)(count[t] > 1 ? count[t] : 1);
		for (int64_t j = 0; j < nr && rc == 0; j++)
			if (!is_tgt[j] && assign[j] == t)
				rc = prune_sel_merge(s, anchor, rest[j], w);
	}
	free(assign);
out:
	free(a), free(keys), free(kn), free(top), free(rest), free(tgt), free(count), free(dom), free(is_tgt);
	return rc;
}

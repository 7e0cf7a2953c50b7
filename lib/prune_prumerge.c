/* prune_prumerge.c - prumerge (PruMerge+, 42Shawn/LLaVA-PruMerge,
 * llava/model/multimodal_encoder/clip_encoder.py
 * token_prune_merge_advanced_plus):
 *   outliers: tokens whose [CLS] attention a exceeds Q3 + 1.5 IQR
 *     (numpy's linear percentiles); k = int(n x ratio) of them by falling
 *     attention, ratio = outliers / n;
 *   spatial samples: 0, s, 2s ... below n - 1 with s = int(int(1 / ratio)
 *     / 3) (at least 1), those not among the k;
 *   merging: each kept token adds the a-weighted rows of its `knn` (32)
 *     most key-similar other tokens (kept or not; cosine of the keys) to
 *     its own row; with extra=1 one more row, the a-weighted sum of every
 *     token not kept (kept as the last token not kept).
 * The reference's count is adaptive; with a smaller budget weft keeps the
 * min(k, budget - extra) top outliers and takes the rest of the budget
 * from the spatial samples at an even stride.  Like the reference the
 * attention is that of the [CLS] query averaged over heads (the reference
 * recomputes it in one head from the last block's q and k; llama.cpp's
 * converters drop that block), and rows are the projected embeddings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune_int.h"
#include "util.h"

static int cmp_f(const void *x, const void *y)
{
	const float a = *(const float *)x, b = *(const float *)y;
	return (a > b) - (a < b);
}

/* numpy.percentile(v, q), linear interpolation, over a sorted copy. */
static double percentile(const float *sorted, int64_t n, double q)
{
	const double pos = q / 100.0 * (double)(n - 1);
	const int64_t lo = (int64_t)floor(pos);
	const double f = pos - (double)lo;
	return lo + 1 < n ? (double)sorted[lo] + f * ((double)sorted[lo + 1] - (double)sorted[lo]) : (double)sorted[lo];
}

int prune_prumerge_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s)
{
	const int64_t n = u->n, extra = (int64_t)prune_param(p, "extra") && budget > 1 ? 1 : 0;
	float *a = weft_malloc((size_t)n * sizeof *a), *srt = weft_malloc((size_t)n * sizeof *srt);
	float *keys = NULL, *kn = NULL, *sim = NULL;
	int32_t *top = weft_malloc((size_t)n * sizeof *top), *idx = weft_malloc((size_t)n * sizeof *idx);
	int32_t *spat = weft_malloc((size_t)n * sizeof *spat), *nn = NULL;
	uint8_t *kept = weft_calloc((size_t)n, 1);
	int64_t dk;
	int rc = -1;
	if (!a || !srt || !top || !idx || !spat || !kept || prune_saliency(u, (int)prune_param(p, "layer"), a) != 0)
		goto out;
	memcpy(srt, a, (size_t)n * sizeof *a);
	qsort(srt, (size_t)n, sizeof *srt, cmp_f);
	const double q1 = percentile(srt, n, 25), q3 = percentile(srt, n, 75), upper = q3 + 1.5 * (q3 - q1);
	int64_t n_out = 0;
	for (int64_t i = 0; i < n; i++)
		n_out += (double)a[i] > upper;
	const double ratio = (double)(n_out ? n_out : 1) / (double)n;
	int64_t k = (int64_t)((double)n * ratio);
	const int64_t stride = (int64_t)(int64_t)(1.0 / ratio) / 3 > 0 ? (int64_t)(1.0 / ratio) / 3 : 1;
	if (k > budget - extra)
		k = budget - extra;
	prune_topk(a, n, k, top);
	for (int64_t i = 0; i < k; i++)
		idx[i] = top[i], kept[top[i]] = 1;
	int64_t ns = 0;
	for (int64_t x = 0; x < n - 1; x += stride)
		if (!kept[x])
			spat[ns++] = (int32_t)x;
	const int64_t want = budget - extra - k < ns ? budget - extra - k : ns;
	int64_t nk = k;
	for (int64_t i = 0; i < want; i++) {
		const int32_t x = spat[want == ns ? i : (int64_t)((double)i * (double)ns / (double)want)];
		idx[nk++] = x, kept[x] = 1;
	}
	/* merging: by key cosine over every other token, the kept ones first */
	if (!(keys = prune_keys(u, &dk)) || !(kn = prune_normalized(keys, n, dk)))
		goto out;
	int32_t *rest = weft_malloc((size_t)n * sizeof *rest);
	sim = weft_malloc((size_t)n * sizeof *sim);
	nn = weft_malloc((size_t)n * sizeof *nn);
	if (!rest || !sim || !nn) {
		free(rest);
		goto out;
	}
	const int64_t knn = (int64_t)prune_param(p, "knn") < n - 1 ? (int64_t)prune_param(p, "knn") : n - 1;
	rc = 0;
	for (int64_t i = 0; i < nk && rc == 0; i++) {
		int64_t nr = 0;
		for (int64_t j = 0; j < nk; j++)
			if (j != i)
				rest[nr++] = idx[j];
		for (int64_t j = 0; j < n; j++)
			if (!kept[j])
				rest[nr++] = (int32_t)j;
		for (int64_t j = 0; j < nr; j++)
			sim[j] = prune_dot(kn + (int64_t)idx[i] * dk, kn + (int64_t)rest[j] * dk, dk);
		prune_topk(sim, nr, knn, nn);
		rc = prune_sel_keep(s, idx[i]) || prune_sel_merge(s, idx[i], idx[i], 1.0f);
		for (int64_t j = 0; j < knn && rc == 0; j++)
			rc = prune_sel_merge(s, idx[i], rest[nn[j]], a[rest[nn[j]]]);
	}
	free(rest);
	if (extra && rc == 0) {
		int64_t anchor = n - 1;
		while (kept[anchor])
			anchor--;
		rc = prune_sel_keep(s, anchor);
		for (int64_t j = 0; j < n && rc == 0; j++)
			if (!kept[j])
				rc = prune_sel_merge(s, anchor, j, a[j]);
	}
out:
	free(a), free(srt), free(keys), free(kn), free(sim), free(top), free(idx), free(spat), free(nn), free(kept);
	return rc;
}

/* prune_sparsevlm.c - sparsevlm (SparseVLM v1.0, Gumpest/SparseVLMs,
 * llava/model/language_model/modelling_sparse_llama.py, score.py,
 * utils.py cluster_and_merge):
 *   raters: before layer 0, the text tokens after the image whose mean
 *     (over visual tokens) softmax-over-text affinity v . t of the input
 *     embeddings is above the mean;
 *   after each layer L of `after` (2/6/15): each visual token's score is
 *     the raters' attention to it at layer L (mean over heads, then over
 *     raters); keep the top min(schedule[stage], visual - 1);
 *   recycling (recycle=1): of the dropped tokens, the int(0.3 m) + 1 best
 *     scored are clustered (DPC-kNN on their hidden states: density from
 *     the cluster_num nearest, centres by distance x density) into
 *     int(m' / 10) + 1 averages, which go on as visual tokens.
 * Schedules (score.py): 64: 66/30/17, 96: 238/48/26, 128: 303/110/36,
 * 192: 300/200/110 visual tokens after each stage; another budget scales
 * the 192 schedule by budget / 192.  Differences: the reference re-numbers
 * positions and appends the recycled tokens after the kept ones; weft keeps
 * positions and puts each recycled average at its cluster centre's (a
 * dropped token's) row and position; the reference's 1e-6 random jitter of
 * densities is left out (ties go to the lower index). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune_int.h"
#include "util.h"

/* Visual tokens kept after stage s for budget b. */
static int64_t schedule(int64_t b, int s)
{
	static const int64_t tab[4][4] = {{64, 66, 30, 17}, {96, 238, 48, 26}, {128, 303, 110, 36}, {192, 300, 200, 110}};
	if (s > 2)
		s = 2;
	for (int i = 0; i < 4; i++)
		if (tab[i][0] == b)
			return tab[i][1 + s];
	return (int64_t)floor((double)tab[3][1 + s] * (double)b / 192.0 + 0.5);
}

/* Raters from the input embeddings: state[t] = 1 for a rater input t. */
static int raters(prune_llm_ctx *c, const weft_fwd_rows *r)
{
	const int64_t n = r->n, d = r->m->hp.n_embd;
	uint8_t *rt = weft_calloc((size_t)c->T, 1);
	int64_t last_vis = -1, nt = 0;
	if (!rt)
		return -1;
	c->state = rt;
	for (int64_t j = 0; j < n; j++)
		if (c->is_vis[r->src[j]])
			last_vis = j;
	nt = n - 1 - last_vis;
	double *m = weft_calloc((size_t)(nt > 0 ? nt : 1), sizeof *m), *row = weft_malloc((size_t)(nt > 0 ? nt : 1) * sizeof *row);
	if (!m || !row) {
		free(m), free(row);
		return -1;
	}
	int64_t nv = 0;
	for (int64_t v = 0; v < n && nt > 0; v++) {
		if (!c->is_vis[r->src[v]])
			continue;
		double mx = -INFINITY, sum = 0;
		for (int64_t t = 0; t < nt; t++) {
			row[t] = prune_dot_d(r->x + v * d, r->x + (last_vis + 1 + t) * d, d);
			mx = row[t] > mx ? row[t] : mx;
		}
		for (int64_t t = 0; t < nt; t++)
			sum += row[t] = exp(row[t] - mx);
		for (int64_t t = 0; t < nt; t++)
			m[t] += row[t] / sum;
		nv++;
	}
	double mean = 0;
	for (int64_t t = 0; t < nt; t++)
		mean += m[t] /= (double)(nv ? nv : 1);
	mean /= (double)(nt ? nt : 1);
	for (int64_t t = 0; t < nt; t++)
		if (m[t] > mean)
			rt[r->src[last_vis + 1 + t]] = 1;
	free(m), free(row);
	return 0;
}

/* DPC-kNN over rows idx[0..m) of x: cluster averages written into each
 * centre's row; centre[i] set for the centres.  0 / -1. */
static int recycle(const weft_fwd_rows *r, const int32_t *idx, int64_t m, uint8_t *centre)
{
	const int64_t d = r->m->hp.n_embd, k = m / 10 + 1;
	double *dist = weft_malloc((size_t)(m * m) * sizeof *dist), *dens = weft_malloc((size_t)m * sizeof *dens);
	double *score = weft_malloc((size_t)m * sizeof *score), *tmp = weft_malloc((size_t)m * sizeof *tmp);
	int32_t *top = weft_malloc((size_t)m * sizeof *top), *asg = weft_malloc((size_t)m * sizeof *asg);
	float *acc = weft_calloc((size_t)(k * d), sizeof *acc);
	int64_t *cnt = weft_calloc((size_t)k, sizeof *cnt);
	int rc = -1;
	if (!dist || !dens || !score || !tmp || !top || !asg || !acc || !cnt)
		goto out;
	double dmax = 0;
	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < m; j++) {
			double s = 0;
			const float *a = r->x + (int64_t)idx[i] * d, *b = r->x + (int64_t)idx[j] * d;
			for (int64_t e = 0; e < d; e++)
				s += ((double)a[e] - b[e]) * ((double)a[e] - b[e]);
			dist[i * m + j] = sqrt(s) / sqrt((double)d);
			dmax = dist[i * m + j] > dmax ? dist[i * m + j] : dmax;
		}
	for (int64_t i = 0; i < m; i++) { /* density: mean squared distance to the k nearest */
		for (int64_t j = 0; j < m; j++)
			tmp[j] = -dist[i * m + j];
		prune_topk_d(tmp, m, k, top);
		double s = 0;
		for (int64_t q = 0; q < k; q++)
			s += dist[i * m + top[q]] * dist[i * m + top[q]];
		dens[i] = exp(-s / (double)k);
	}
	for (int64_t i = 0; i < m; i++) { /* distance to the nearest denser token */
		double best = dmax;
		for (int64_t j = 0; j < m; j++)
			if (dens[j] > dens[i] && dist[i * m + j] < best)
				best = dist[i * m + j];
		score[i] = best * dens[i];
	}
	prune_topk_d(score, m, k, top);
	for (int64_t i = 0; i < m; i++) {
		int64_t b = 0;
		for (int64_t q = 1; q < k; q++)
			if (dist[(int64_t)top[q] * m + i] < dist[(int64_t)top[b] * m + i])
				b = q;
		asg[i] = (int32_t)b;
	}
	for (int64_t q = 0; q < k; q++)
		asg[top[q]] = (int32_t)q;
	for (int64_t i = 0; i < m; i++)
		cnt[asg[i]]++;
	for (int64_t i = 0; i < m; i++)
		for (int64_t e = 0; e < d; e++)
			acc[asg[i] * d + e] += r->x[(int64_t)idx[i] * d + e] / (float)((double)cnt[asg[i]] + 1e-6);
	for (int64_t q = 0; q < k; q++) {
		memcpy(r->x + (int64_t)idx[top[q]] * d, acc + q * d, sizeof(float) * (size_t)d);
		centre[idx[top[q]]] = 1;
	}
	rc = 0;
out:
	free(dist), free(dens), free(score), free(tmp), free(top), free(asg), free(acc), free(cnt);
	return rc;
}

int prune_sparsevlm_drop(prune_llm_ctx *c, const weft_fwd_rows *r, int32_t *keep, int64_t *n_keep)
{
	if (r->layer == 0)
		return raters(c, r);
	const double *layers;
	const int nl = prune_param_list(c->p, "after", &layers);
	int stage = -1;
	for (int s = 0; s < nl; s++)
		if ((int)layers[s] + 1 == r->layer)
			stage = s;
	if (stage < 0 || !c->state)
		return 0;
	const uint8_t *rt = c->state;
	const int64_t n = r->n;
	float *rel = weft_calloc((size_t)n, sizeof *rel), *a = weft_malloc((size_t)n * sizeof *a);
	uint8_t *kept = weft_calloc((size_t)n, 1), *centre = weft_calloc((size_t)n, 1);
	int32_t *top = weft_malloc((size_t)n * sizeof *top), *drop = weft_malloc((size_t)n * sizeof *drop);
	int rc = -1;
	if (!rel || !a || !kept || !centre || !top || !drop)
		goto out;
	int64_t nr = 0, nv = prune_llm_n_vis(c, r);
	for (int64_t i = 0; i < n; i++) {
		if (!rt[r->src[i]])
			continue;
		weft_prune_attn_row(r, i, a);
		for (int64_t j = 0; j < n; j++)
			rel[j] += a[j];
		nr++;
	}
	if (!nr || nv < 2) {
		rc = 0;
		goto out;
	}
	int64_t k = schedule(c->budget, stage);
	k = k < nv - 1 ? k : nv - 1;
	const int64_t nk = prune_llm_keep_top(c, r, rel, k, keep);
	if (nk < 0)
		goto out;
	for (int64_t i = 0; i < nk; i++)
		kept[keep[i]] = 1;
	if (prune_param(c->p, "recycle") != 0) {
		/* the dropped visual tokens, the best 30 % of them recycled */
		float *ds = weft_malloc((size_t)n * sizeof *ds);
		int64_t m = 0;
		if (!ds)
			goto out;
		for (int64_t j = 0; j < n; j++)
			if (c->is_vis[r->src[j]] && !kept[j])
				drop[m] = (int32_t)j, ds[m++] = rel[j];
		const int64_t m2 = m ? (int64_t)((double)m * 0.3) + 1 : 0;
		prune_topk(ds, m, m2 < m ? m2 : m, top);
		free(ds);
		for (int64_t i = 0; i < (m2 < m ? m2 : m); i++)
			top[i] = drop[top[i]];
		if (m && recycle(r, top, m2 < m ? m2 : m, centre) != 0)
			goto out;
	}
	int64_t q = 0;
	for (int64_t j = 0; j < n; j++)
		if (kept[j] || centre[j])
			keep[q++] = (int32_t)j;
	*n_keep = q;
	rc = 0;
out:
	free(rel), free(a), free(kept), free(centre), free(top), free(drop);
	return rc;
}

/* prune_vispruner.c - vispruner (VisPruner, Theia-4869/VisPruner,
 * llava/model/llava_arch.py encode_images): int(budget x important) tokens
 * by [CLS] attention (averaged over heads); the rest, in order of falling
 * attention, lose duplicates until the diverse quota is left: each round
 * splits them into even- and odd-placed halves, scores each even-placed
 * token by its largest cosine similarity to an odd-placed one, and drops
 * the min(8, excess) highest-scoring, the survivors (by falling score)
 * followed by the odd-placed tokens forming the next round.  Similarity is
 * taken between the projected embeddings (the reference uses the vision
 * tower's features before the projector, which the stream does not
 * carry). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune_int.h"
#include "util.h"

/* The float32 similarity matrix (prune_gram) orders scores to within its
 * rounding (about 1e-7 for unit vectors; its worst-case bound d 2^-24 is
 * not approached in practice); scores closer than TOL are recomputed in
 * double, from the pairs within TOL of their row's maximum, so near-equal
 * scores fall in the order of their exact values (the reference's, in
 * float64 in scripts/gen-prune-fixtures.py). */
#define TOL 1e-5

static double exact_score(const prune_unit *u, const float *g, const double *nrm, const int32_t *res, int64_t i,
			  int64_t nb)
{
	const int64_t n = u->n, d = u->d, x = res[2 * i];
	float m = -2.0f;
	for (int64_t j = 0; j < nb; j++)
		m = g[x * n + res[2 * j + 1]] > m ? g[x * n + res[2 * j + 1]] : m;
	double best = -2.0;
	for (int64_t j = 0; j < nb; j++) {
		const int64_t y = res[2 * j + 1];
		if (g[x * n + y] < m - TOL)
			continue;
		const double c = prune_dot_d(u->embd + x * d, u->embd + y * d, d) / (nrm[x] * nrm[y]);
		best = c > best ? c : best;
	}
	return best;
}

int prune_vispruner_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s)
{
	const int64_t n = u->n, d = u->d;
	const int64_t n_imp = (int64_t)((double)budget * prune_param(p, "important"));
	const int64_t n_div = budget - n_imp;
	float *a = weft_malloc((size_t)n * sizeof *a), *g = NULL;
	double *nrm = NULL, *sc = NULL;
	uint8_t *ex = NULL;
	int32_t *ord = weft_malloc((size_t)n * sizeof *ord), *res = NULL, *sco = NULL, *tmp = NULL;
	int rc = -1;
	if (!a || !ord || prune_saliency(u, (int)prune_param(p, "layer"), a) != 0)
		goto out;
	prune_topk(a, n, n, ord); /* every token, by falling attention */
	for (int64_t i = 0; i < n_imp; i++)
		if (prune_sel_keep(s, ord[i]) != 0)
			goto out;
	nrm = weft_malloc((size_t)n * sizeof *nrm);
	g = prune_gram(u->embd, n, d, u->pool);
	ex = weft_malloc((size_t)n);
	int64_t R = n - n_imp;
	res = weft_malloc((size_t)(R ? R : 1) * sizeof *res);
	tmp = weft_malloc((size_t)(R ? R : 1) * sizeof *tmp);
	sc = weft_malloc((size_t)(R ? R : 1) * sizeof *sc);
	sco = weft_malloc((size_t)(R ? R : 1) * sizeof *sco);
	if (!nrm || !g || !ex || !res || !tmp || !sc || !sco)
		goto out;
	for (int64_t i = 0; i < n; i++)
		nrm[i] = sqrt(prune_dot_d(u->embd + i * d, u->embd + i * d, d));
	memcpy(res, ord + n_imp, (size_t)R * sizeof *res);
	while (n_div > 0) {
		const int64_t r = R - n_div < 8 ? R - n_div : 8;
		if (r <= 0)
			break;
		const int64_t na = (R + 1) / 2, nb = R / 2;
		for (int64_t i = 0; i < na; i++) {
			const int64_t x = res[2 * i];
			float m = -2.0f;
			for (int64_t j = 0; j < nb; j++)
				m = g[x * n + res[2 * j + 1]] > m ? g[x * n + res[2 * j + 1]] : m;
			sc[i] = m;
			ex[i] = 0;
		}
		for (int again = 1; again;) { /* even-placed tokens by falling score */
			prune_topk_d(sc, na, na, sco);
			again = 0;
			for (int64_t q = 0; q + 1 < na; q++) {
				const int32_t i = sco[q], j = sco[q + 1];
				if (sc[i] - sc[j] >= TOL || (ex[i] && ex[j]))
					continue;
				if (!ex[i])
					sc[i] = exact_score(u, g, nrm, res, i, nb), ex[i] = 1;
				if (!ex[j])
					sc[j] = exact_score(u, g, nrm, res, j, nb), ex[j] = 1;
				again = 1;
			}
		}
		int64_t k = 0;
		for (int64_t i = r; i < na; i++)
			tmp[k++] = res[2 * sco[i]];
		for (int64_t j = 0; j < nb; j++)
			tmp[k++] = res[2 * j + 1];
		memcpy(res, tmp, (size_t)k * sizeof *res);
		R = k;
	}
	rc = 0;
	for (int64_t i = 0; n_div > 0 && i < R && rc == 0; i++)
		rc = prune_sel_keep(s, res[i]);
out:
	free(a), free(g), free(ex), free(ord), free(nrm), free(sc), free(res), free(sco), free(tmp);
	return rc;
}

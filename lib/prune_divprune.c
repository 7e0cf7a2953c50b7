/* prune_divprune.c - divprune (DivPrune, vbdi/divprune, LLaVA/llava/model/
 * llava_arch.py DivPrune()): with distances 1 - cos(x_i, x_j) between the
 * projected embeddings, the first token is the one whose nearest other
 * token is farthest (the second-smallest distance of its column, the
 * smallest being its own); each next token maximises its distance to the
 * nearest token already chosen (first index on ties). */
#include <math.h>
#include <stdlib.h>

#include "prune_int.h"
#include "util.h"

int prune_divprune_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s)
{
	(void)p;
	const int64_t n = u->n, d = u->d;
	float *g = prune_gram(u->embd, n, d, u->pool); /* cosine similarities */
	float *mind = weft_malloc((size_t)n * sizeof *mind);
	int rc = -1;
	if (!g || !mind)
		goto out;
	/* first: the largest second-smallest distance of a column */
	int64_t best = 0;
	float bv = -INFINITY;
	for (int64_t j = 0; j < n; j++) {
		float m1 = INFINITY, m2 = INFINITY;
		for (int64_t i = 0; i < n; i++) {
			const float dist = 1.0f - g[i * n + j];
			if (dist < m1)
				m2 = m1, m1 = dist;
			else if (dist < m2)
				m2 = dist;
		}
		if (m2 > bv)
			bv = m2, best = j;
	}
	for (int64_t j = 0; j < n; j++)
		mind[j] = 1.0f - g[best * n + j];
	rc = prune_sel_keep(s, best);
	for (int64_t k = 1; k < budget && rc == 0; k++) {
		best = 0;
		bv = -INFINITY;
		for (int64_t j = 0; j < n; j++)
			if (mind[j] > bv)
				bv = mind[j], best = j;
		rc = prune_sel_keep(s, best);
		for (int64_t j = 0; j < n; j++) {
			const float dist = 1.0f - g[best * n + j];
			if (dist < mind[j])
				mind[j] = dist;
		}
	}
out:
	free(g);
	free(mind);
	return rc;
}

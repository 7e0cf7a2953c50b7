/* prune_pdrop.c - pdrop (PyramidDrop, Cooperx521/PyramidDrop,
 * llava/model/modeling_llama_pdrop.py pdrop_rank_drop): before each layer
 * L of `layers` (8/16/24), rank the visual tokens left by the attention the
 * last prompt token gives them at layer L itself (L's keys of every row and
 * the last row's query, from the residual stream entering L; mean over
 * heads) and keep int(n x lambda^s) of the prompt's n at stage s = 1, 2 ...;
 * lambda is the budget's ratio (budget / n; 0.5 without one), so the first
 * drop keeps the budget.  Differences: the reference ranks within the
 * prompt's rows only, as here (an earlier turn's cache is not scored), and
 * re-numbers positions after a drop; weft keeps them. */
#include <math.h>
#include <stdlib.h>

#include "prune_int.h"
#include "util.h"

int prune_pdrop_drop(prune_llm_ctx *c, const weft_fwd_rows *r, int32_t *keep, int64_t *n_keep)
{
	const double *layers;
	const int nl = prune_param_list(c->p, "layers", &layers);
	int stage = -1;
	for (int s = 0; s < nl; s++)
		if ((int)layers[s] == r->layer)
			stage = s;
	if (stage < 0)
		return 0;
	const double lambda = (double)c->budget / (double)c->n_vis;
	const int64_t k = (int64_t)floor((double)c->n_vis * pow(lambda, stage + 1) + 1e-9);
	float *a = weft_malloc((size_t)r->n * sizeof *a);
	if (!a || prune_llm_next_attn_row(r, r->n - 1, a) != 0) {
		free(a);
		return -1;
	}
	const int64_t n = prune_llm_keep_top(c, r, a, k, keep);
	free(a);
	if (n < 0)
		return -1;
	*n_keep = n;
	return 0;
}

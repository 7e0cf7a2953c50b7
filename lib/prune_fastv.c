/* prune_fastv.c - fastv (FastV, pkunlp-icler/FastV, the llava-hf copy of
 * transformers' modeling_llama.py): before layer K (param layer, 2) keep
 * the visual tokens the last prompt token attended to most at layer K - 1
 * (its attention row averaged over heads), the budget's number of them
 * (FastV's round(n (1 - R)); R = 50 % without a budget); later layers run
 * on the kept tokens at their original positions.  The row comes from the
 * last token's query and layer K - 1's cached keys (weft_prune_attn_row):
 * one query, no N x N attention matrix. */
#include <stdlib.h>

#include "prune_int.h"
#include "util.h"

int prune_fastv_drop(prune_llm_ctx *c, const weft_fwd_rows *r, int32_t *keep, int64_t *n_keep)
{
	if (r->layer != (int)prune_param(c->p, "layer"))
		return 0;
	float *a = weft_malloc((size_t)r->n * sizeof *a);
	if (!a)
		return -1;
	weft_prune_attn_row(r, r->n - 1, a);
	const int64_t n = prune_llm_keep_top(c, r, a, c->budget, keep);
	free(a);
	if (n < 0)
		return -1;
	*n_keep = n;
	return 0;
}

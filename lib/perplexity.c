/* perplexity.c - see perplexity.h.  The procedure is llama.cpp's
 * perplexity() (tools/perplexity/perplexity.cpp), step for step. */
#include "perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int weft_ppl_tokenize(const weft_vocab *v, const char *text, size_t len, int32_t **ids, size_t *n)
{
	size_t cap = 0;
	*ids = NULL;
	*n = 0;
	if (weft_vocab_add_bos(v) && weft_vocab_bos(v) >= 0) {
		if (!(*ids = weft_malloc(1024 * sizeof **ids)))
			return -1;
		cap = 1024;
		(*ids)[(*n)++] = weft_vocab_bos(v);
	}
	if (weft_tokenize(v, text, len, 0, ids, n, &cap) != 0) {
		free(*ids);
		*ids = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

double weft_ppl_nll(const float *logits, int n_vocab, int32_t tok)
{
	/* llama.cpp: float max, double sum of expf(), then
	 * logits[tok] - max_logit (float) - log(sum) (double). */
	float max_logit = logits[0];
	for (int i = 1; i < n_vocab; i++)
		max_logit = logits[i] > max_logit ? logits[i] : max_logit;
	double sum_exp = 0.0;
	for (int i = 0; i < n_vocab; i++)
		sum_exp += expf(logits[i] - max_logit);
	return -((double)(logits[tok] - max_logit) - log(sum_exp));
}

/* Scoring a window's logits is spread over the pool; each task writes the
 * nll of its rows, which are then summed in order (deterministic). */
typedef struct score_job {
	const float *logits;
	const int32_t *next;   /* the token each row predicts */
	double *nll;
	int n_rows, n_vocab;
} score_job;

static void score_task(void *ctx, int task, int n_tasks)
{
	const score_job *j = ctx;
	int r0 = (int)((int64_t)j->n_rows * task / n_tasks), r1 = (int)((int64_t)j->n_rows * (task + 1) / n_tasks);
	for (int r = r0; r < r1; r++)
		j->nll[r] = weft_ppl_nll(j->logits + (size_t)r * j->n_vocab, j->n_vocab, j->next[r]);
}

int weft_perplexity(const weft_model *m, weft_pool *pool, const int32_t *ids, size_t n, int n_ctx,
		    int max_chunks, int32_t bos, int64_t chunk, weft_ppl_progress progress, void *user,
		    weft_ppl_result *res)
{
	const int n_vocab = m->hp.n_vocab;
	memset(res, 0, sizeof *res);
	if (n_ctx < 3) {
		weft_error("context %d too small (at least 3: half of it is scored)", n_ctx);
		return -1;
	}
	if (n < 2 * (size_t)n_ctx) {
		weft_error("you need at least %lld tokens to evaluate perplexity with a context of %d; "
			   "the text tokenizes to only %zu tokens",
			   2LL * n_ctx, n_ctx, n);
		return -1;
	}
	if (bos >= n_vocab) {
		weft_error("BOS id %d out of range (vocabulary %d)", bos, n_vocab);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= n_vocab) {
			weft_error("token %zu: id %d out of range (vocabulary %d)", i, ids[i], n_vocab);
			return -1;
		}

	const size_t n_chunk_max = n / (size_t)n_ctx;
	const int n_chunk = max_chunks > 0 && (size_t)max_chunks < n_chunk_max ? max_chunks : (int)n_chunk_max;
	const int first = n_ctx / 2;
	const int n_scored = n_ctx - first - 1;     /* rows scored per window */
	const int n_rows = n_ctx - first;            /* logits computed per window */

	int32_t *win = weft_malloc(sizeof *win * (size_t)n_ctx);
	float *logits = weft_malloc(sizeof *logits * (size_t)n_rows * (size_t)n_vocab);
	double *nll = weft_malloc(sizeof *nll * (size_t)n_scored);
	int rc = -1;
	if (!win || !logits || !nll)
		goto out;

	double sum = 0.0, sum2 = 0.0;
	int64_t count = 0;
	for (int c = 0; c < n_chunk; c++) {
		const size_t start = (size_t)c * (size_t)n_ctx;
		memcpy(win, ids + start, sizeof *win * (size_t)n_ctx);
		if (bos >= 0)
			win[0] = bos;
		/* a fresh cache per window: positions 0..n_ctx-1, nothing earlier */
		weft_kv *kv = weft_kv_new(m, n_ctx);
		if (!kv)
			goto out;
		/* the first half only feeds the cache; the second half's logits
		 * (all rows) are the ones scored */
		if (weft_model_forward(m, pool, kv, win, NULL, first, chunk, NULL, 0, NULL) != 0 ||
		    weft_model_forward(m, pool, kv, win + first, NULL, n_rows, chunk, logits, 1, NULL) != 0) {
			weft_kv_free(kv);
			goto out;
		}
		weft_kv_free(kv);

		score_job job = {.logits = logits, .next = ids + start + first + 1, .nll = nll,
				 .n_rows = n_scored, .n_vocab = n_vocab};
		int n_tasks = pool ? weft_pool_size(pool) : 1;
		if (n_tasks > n_scored)
			n_tasks = n_scored;
		weft_pool_run(pool, n_tasks, score_task, &job);
		for (int r = 0; r < n_scored; r++) {
			sum += nll[r];
			sum2 += nll[r] * nll[r];
		}
		count += n_scored;
		if (progress)
			progress(user, c + 1, n_chunk, exp(sum / (double)count));
	}

	res->nll = sum;
	res->nll2 = sum2;
	res->count = count;
	res->n_chunk = n_chunk;
	res->n_tokens = (int64_t)n;
	const double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
	res->ppl = exp(mean);
	res->ppl_err = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) * res->ppl : 0.0;
	rc = 0;
out:
	free(win);
	free(logits);
	free(nll);
	return rc;
}

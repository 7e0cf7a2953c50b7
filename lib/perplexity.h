/* perplexity.h - perplexity of a text under a model, computed exactly as
 * llama.cpp's llama-perplexity does (tools/perplexity/perplexity.cpp,
 * perplexity() without --ppl-stride), so the figures can be compared:
 *
 *   1. The text is tokenized once, whole, with BOS prepended when the
 *      model's metadata asks for it (llama.cpp's common_tokenize with
 *      add_special, parse_special off; see weft_ppl_tokenize).
 *   2. It is cut into n_chunk = n_tokens / n_ctx windows of n_ctx tokens
 *      (a partial window at the end is dropped), at most `max_chunks`.
 *   3. Each window runs through a fresh (empty) KV cache at positions
 *      0..n_ctx-1; when the model adds BOS, the window's first token is
 *      replaced by BOS for that run (the token itself stays in the text).
 *   4. Only the second half is scored: with first = n_ctx / 2, the logits
 *      at positions first .. n_ctx-2 predict the tokens at first+1 ..
 *      n_ctx-1, i.e. n_ctx - first - 1 tokens per window.
 *   5. Each scored token adds nll = -log_softmax(logits)[token] (maximum in
 *      float, sum of expf() in double, as llama.cpp's log_softmax) to a
 *      double sum, and nll^2 to another; after window k the running
 *      estimate is exp(sum / count).
 *   6. PPL = exp(mean nll); its error is PPL * sqrt(var / (count - 1)) with
 *      var = mean(nll^2) - mean(nll)^2 ("Final estimate: PPL = X +/- Y").
 *
 * llama.cpp may run several windows as parallel sequences of one batch
 * (n_seq = n_batch / n_ctx); each sequence only sees its own tokens, so the
 * result is the same as one window at a time, which is what weft does. */
#ifndef WEFT_PERPLEXITY_H
#define WEFT_PERPLEXITY_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "tokenizer.h"

typedef struct weft_ppl_result {
	double ppl;        /* exp(mean nll) */
	double ppl_err;    /* the "+/-" figure: ppl * sqrt(var / (count - 1)); 0 if undefined */
	double nll, nll2;  /* sums of nll and nll^2 over the scored tokens */
	int64_t count;     /* scored tokens: n_chunk * (n_ctx - n_ctx/2 - 1) */
	int n_chunk;       /* windows evaluated */
	int64_t n_tokens;  /* tokens in the text (incl. BOS) */
} weft_ppl_result;

/* Called after each window with its number (1-based), the total and the
 * running estimate exp(nll / count) so far; may be NULL. */
typedef void (*weft_ppl_progress)(void *user, int chunk, int n_chunk, double ppl);

/* Tokenize a text as llama-perplexity does: BOS first when
 * weft_vocab_add_bos(v), control-token texts not parsed.  (llama.cpp's -f
 * also drops one trailing '\n' from the file before this; the caller does
 * that, see tools/perplexity.c.)  *ids is malloc'ed.  0, or -1 + error. */
int weft_ppl_tokenize(const weft_vocab *v, const char *text, size_t len, int32_t **ids, size_t *n);

/* The negative log-likelihood of token tok under logits[n_vocab], computed
 * like llama.cpp's log_softmax(): -(logits[tok] - max - log(sum expf(l - max))). */
double weft_ppl_nll(const float *logits, int n_vocab, int32_t tok);

/* Perplexity of ids[n] (from weft_ppl_tokenize) in windows of n_ctx tokens
 * (n_ctx >= 3; windows run through weft_model_forward, `chunk` tokens at a
 * time, <= 0: 512).  bos: the id that replaces each window's first token
 * for its run, or -1 to run windows unchanged (pass weft_vocab_bos() when
 * weft_vocab_add_bos(), as llama.cpp does).  max_chunks <= 0: all windows.
 * Fails (-1) with "you need at least <2*n_ctx> tokens to evaluate perplexity
 * with a context of <n_ctx>; the text tokenizes to only <n> tokens" when
 * n < 2 * n_ctx, as llama.cpp refuses such input (its wording).  On success fills *res and returns 0. */
int weft_perplexity(const weft_model *m, weft_pool *pool, const int32_t *ids, size_t n, int n_ctx,
		    int max_chunks, int32_t bos, int64_t chunk, weft_ppl_progress progress, void *user,
		    weft_ppl_result *res);

#endif

/* generate.h - text generation from a prefilled KV cache: sample a token
 * from the logits, stop at an end-of-generation token, a stop string or
 * the token budget, run the token through the model for the next logits.
 * What decode runs, and what an in-process run (eval) runs per item. */
#ifndef WEFT_GENERATE_H
#define WEFT_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "kv.h"
#include "model.h"
#include "sample.h"
#include "tokenizer.h"

typedef struct weft_gen_opts {
	int64_t n_predict;            /* tokens to generate at most */
	int ignore_eos;               /* do not stop at end-of-generation tokens */
	const char *const *stops;     /* stop strings (the text ends before the first) */
	int n_stops;
	weft_sampler_params sp;
	int finish_cache;             /* also run the last token through the model, so
				       * the cache and logits continue the text (a later
				       * turn: decode --kv-out) */
	/* Text as it becomes final (bytes that could begin a stop string are
	 * held back); a non-zero return stops generation with an error (a
	 * write error, reported by the callback).  NULL: no text. */
	int (*on_text)(void *ctx, const char *s, size_t n);
	void *ctx;
} weft_gen_opts;

typedef struct weft_gen_result {
	int32_t *ids;                 /* the generated tokens (malloc'ed) */
	int64_t n;
	char *text;                   /* their text up to a stop string (malloc'ed,
				       * NUL-terminated; NULL without on_text or stops) */
	size_t text_len;
	enum { WEFT_GEN_LENGTH, WEFT_GEN_EOG, WEFT_GEN_STOP } stop;
	double seconds;               /* sampling + forward passes */
} weft_gen_result;

/* Generate from kv (prefilled, with room for n_predict + 1 more rows) and
 * logits (the next token's, updated in place).  hist: the n_hist tokens
 * before (-1 for embedding rows; the repetition penalty sees them).
 * 0, or -1 with an error (the forward pass's, or "stopped by the text
 * callback"); r is filled either way and freed with weft_gen_result_free. */
int weft_generate(const weft_model *m, const weft_vocab *voc, weft_pool *pool, weft_kv *kv, float *logits,
		  const int32_t *hist, int64_t n_hist, const weft_gen_opts *o, weft_gen_result *r);
void weft_gen_result_free(weft_gen_result *r);

#endif

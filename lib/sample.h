/* sample.h - choosing the next token from logits, in llama.cpp's order:
 * repetition penalty, top-k, top-p, min-p, temperature, then a seeded draw
 * (or the arg-max when temperature <= 0, i.e. greedy). */
#ifndef WEFT_SAMPLE_H
#define WEFT_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct weft_sampler_params {
	float temp;            /* <= 0: greedy (default 0.8 in the tools) */
	int top_k;             /* <= 0: off */
	float top_p;           /* >= 1: off */
	float min_p;           /* <= 0: off */
	float repeat_penalty;  /* 1: off */
	int repeat_last_n;     /* tokens of history the penalty looks at */
	uint64_t seed;
} weft_sampler_params;

typedef struct weft_sampler weft_sampler;

weft_sampler *weft_sampler_new(const weft_sampler_params *p, int32_t n_vocab);
void weft_sampler_free(weft_sampler *s);
/* Record a token as part of the history (prompt or generated). */
void weft_sampler_accept(weft_sampler *s, int32_t id);
/* Pick the next token from logits[n_vocab] (logits are not modified). */
int32_t weft_sampler_sample(weft_sampler *s, const float *logits);

#endif

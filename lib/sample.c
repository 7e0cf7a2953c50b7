/* sample.c - see sample.h.  The steps follow llama.cpp's common sampler
 * (src/llama-sampling.cpp) in its default order; the random draw uses a
 * splitmix64/xoshiro-style generator of our own, so seeded draws are
 * reproducible across weft runs but not identical to llama.cpp's mt19937. */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
	int32_t id;
	float logit, p;
} cand;

struct weft_sampler {
	weft_sampler_params p;
	int32_t n_vocab;
	int32_t *hist;         /* ring of the last repeat_last_n tokens */
	int n_hist, hist_pos;
	cand *c;
	uint64_t rng[2];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* xoroshiro128+ : a uniform double in [0, 1). */
static double rng_uniform(uint64_t s[2])
{
	uint64_t s0 = s[0], s1 = s[1], r = s0 + s1;
	s1 ^= s0;
	s[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
	s[1] = (s1 << 37) | (s1 >> 27);
	return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

weft_sampler *weft_sampler_new(const weft_sampler_params *p, int32_t n_vocab)
{
	weft_sampler *s = weft_calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->p = *p;
	s->n_vocab = n_vocab;
	if (s->p.repeat_last_n < 0)
		s->p.repeat_last_n = 0;
	s->hist = weft_calloc((size_t)(s->p.repeat_last_n ? s->p.repeat_last_n : 1), sizeof *s->hist);
	s->c = weft_malloc((size_t)n_vocab * sizeof *s->c);
	if (!s->hist || !s->c) {
		weft_sampler_free(s);
		return NULL;
	}
	uint64_t x = p->seed;
	s->rng[0] = splitmix64(&x);
	s->rng[1] = splitmix64(&x);
	return s;
}

void weft_sampler_free(weft_sampler *s)
{
	if (!s)
		return;
	free(s->hist);
	free(s->c);
	free(s);
}

void weft_sampler_accept(weft_sampler *s, int32_t id)
{
	if (!s->p.repeat_last_n)
		return;
	s->hist[s->hist_pos] = id;
	s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
	if (s->n_hist < s->p.repeat_last_n)
		s->n_hist++;
}

static int by_logit_desc(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	if (x->logit != y->logit)
		return x->logit < y->logit ? 1 : -1;
	return x->id < y->id ? -1 : x->id > y->id; /* stable: lower id first */
}

static int32_t argmax(const float *l, int32_t n)
{
	int32_t best = 0;
	for (int32_t i = 1; i < n; i++)
		if (l[i] > l[best])
			best = i;
	return best;
}

int32_t weft_sampler_sample(weft_sampler *s, const float *logits)
{
	const weft_sampler_params *p = &s->p;
	int32_t n = s->n_vocab;
	int penalize = p->repeat_penalty != 1.0f && s->n_hist > 0;
	if (p->temp <= 0 && !penalize)
		return argmax(logits, n);
	cand *c = s->c;
	for (int32_t i = 0; i < n; i++)
		c[i] = (cand){i, logits[i], 0};
	if (penalize) /* llama.cpp: divide positive logits, multiply negative ones */
		for (int k = 0; k < s->n_hist; k++) {
			int32_t id = s->hist[k];
			if (id < 0 || id >= n || c[id].p != 0) /* p marks "already penalized" */
				continue;
			c[id].logit = c[id].logit > 0 ? c[id].logit / p->repeat_penalty : c[id].logit * p->repeat_penalty;
			c[id].p = 1;
		}
	if (p->temp <= 0) {
		int32_t best = 0;
		for (int32_t i = 1; i < n; i++)
			if (c[i].logit > c[best].logit)
				best = i;
		return best;
	}
	qsort(c, (size_t)n, sizeof *c, by_logit_desc);
	if (p->top_k > 0 && p->top_k < n)
		n = p->top_k;
	/* softmax over the survivors (at temperature 1, as llama.cpp's top-p
	 * and min-p see them) */
	double sum = 0;
	for (int32_t i = 0; i < n; i++)
		sum += c[i].p = (float)exp((double)c[i].logit - c[0].logit);
	for (int32_t i = 0; i < n; i++)
		c[i].p = (float)(c[i].p / sum);
	if (p->top_p < 1.0f) {
		double cum = 0;
		for (int32_t i = 0; i < n; i++) {
			cum += c[i].p;
			if (cum >= p->top_p) {
				n = i + 1;
				break;
			}
		}
	}
	if (p->min_p > 0) {
		float floor_p = p->min_p * c[0].p;
		int32_t keep = 1;
		while (keep < n && c[keep].p >= floor_p)
			keep++;
		n = keep;
	}
	/* temperature, then draw */
	sum = 0;
	for (int32_t i = 0; i < n; i++)
		sum += c[i].p = (float)exp(((double)c[i].logit - c[0].logit) / p->temp);
	double r = rng_uniform(s->rng) * sum, acc = 0;
	for (int32_t i = 0; i < n; i++) {
		acc += c[i].p;
		if (r < acc)
			return c[i].id;
	}
	return c[n - 1].id;
}

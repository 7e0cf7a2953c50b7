/* rand_weights.h - seeded random numbers and random weight rows of every
 * GGUF type, for the kernel tests (test_matmul.c, tests/gpu/test_cuda_ops.c).
 * Define RAND_WEIGHTS_SEED before including for another sequence. */
#ifndef WEFT_TEST_RAND_WEIGHTS_H
#define WEFT_TEST_RAND_WEIGHTS_H

#include "ggml_types.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>

#ifndef RAND_WEIGHTS_SEED
#define RAND_WEIGHTS_SEED 0x9e3779b97f4a7c15ULL
#endif

static uint64_t rng_state = RAND_WEIGHTS_SEED;
static inline uint32_t rnd(void) /* xorshift64 */
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}
static inline float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; } /* [-1, 1] */

static inline int is_k(uint32_t t) { return t == WEFT_TYPE_Q4_K || t == WEFT_TYPE_Q5_K || t == WEFT_TYPE_Q6_K; }

static inline void put_h(uint8_t *p, float f)
{
	uint16_t h = weft_fp32_to_fp16(f);
	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(h >> 8);
}

/* n_out rows of k random weights of type t: quantized random rows (some
 * biased, to exercise mins), or K-quant blocks of random bytes with sane
 * scales. */
static inline uint8_t *make_weights(uint32_t t, int64_t k, int64_t n_out)
{
	uint64_t rb = weft_type_row_bytes(t, (uint64_t)k);
	uint8_t *w = malloc(rb * (uint64_t)n_out);
	if (!is_k(t)) {
		float *row = malloc((size_t)k * sizeof *row);
		for (int64_t o = 0; o < n_out; o++) {
			float off = 0.3f * frand();
			for (int64_t i = 0; i < k; i++)
				row[i] = frand() + off;
			if (weft_quantize_row(t, row, w + (uint64_t)o * rb, k) != 0)
				abort();
		}
		free(row);
		return w;
	}
	for (uint64_t i = 0; i < rb * (uint64_t)n_out; i++)
		w[i] = (uint8_t)rnd();
	int bytes = t == WEFT_TYPE_Q4_K ? 144 : t == WEFT_TYPE_Q5_K ? 176 : 210;
	for (uint64_t b = 0; b < rb * (uint64_t)n_out / (uint64_t)bytes; b++) {
		uint8_t *blk = w + b * (uint64_t)bytes;
		if (t == WEFT_TYPE_Q6_K) {
			put_h(blk + 208, 0.002f + 0.001f * frand());
		} else {
			put_h(blk, 0.001f + 0.0005f * frand());
			put_h(blk + 2, 0.001f + 0.0005f * frand());
		}
	}
	return w;
}

#endif

/* ops_util.h - what test_ops.c and test_attention.c share: the CPU
 * levels, seeded pseudo-random vectors (each test binary its own sequence)
 * and relative-error helpers. */
#ifndef WEFT_TEST_OPS_UTIL_H
#define WEFT_TEST_OPS_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kernels.h"
#include "ops_int.h"

/* The CPU levels whose ops are compared with the scalar reference (the
 * llama.cpp level has its own tests: test_llamacpp_ops). */
#define N_CPU_LEVELS WEFT_LEVEL_LLAMACPP
static const char *const lvl_names[N_CPU_LEVELS] __attribute__((unused)) = {"scalar", "avx2", "avx512"};

/* The ops of a level's backend, or NULL when this CPU lacks it. */
static inline const weft_ops_vt *ops_at(weft_level lvl)
{
	const weft_backend *b = weft_backend_at(lvl);
	return b ? &b->ops : NULL;
}
static const int sizes[] __attribute__((unused)) = {1, 7, 64, 576, 1000};
#define N_SIZES (int)(sizeof sizes / sizeof sizes[0])

/* deterministic pseudo-random floats in [-r, r) */
static uint64_t rng __attribute__((unused)) = 0x9e3779b97f4a7c15ULL;
static inline float frand(float r)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0) * r;
}

static inline float *rand_vec(int64_t n, float r)
{
	float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
	for (int64_t i = 0; i < n; i++)
		v[i] = frand(r);
	return v;
}

static inline float *dup_vec(const float *x, int64_t n)
{
	float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
	memcpy(v, x, sizeof(float) * (size_t)n);
	return v;
}

/* max |a-b| / (|b| + floor) over n */
static inline double max_rel(const float *a, const double *b, int64_t n, double floor)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - b[i]) / (fabs(b[i]) + floor);
		if (!(e <= m))
			m = e;
	}
	return m;
}

static inline double max_rel_f(const float *a, const float *b, int64_t n, double floor)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - (double)b[i]) / (fabs((double)b[i]) + floor);
		if (!(e <= m))
			m = e;
	}
	return m;
}

static inline const weft_ops_vt *ref(void)
{
	return ops_at(WEFT_LEVEL_SCALAR);
}

#endif

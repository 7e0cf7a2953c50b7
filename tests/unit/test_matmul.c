/* test_matmul.c - weft_matmul and the thread pool.
 *
 * For every supported weight type: random weights (quantized with the
 * reference quantizer; K-quant blocks built directly from random bytes
 * with sane scales), odd shapes, T = 1, 3, 17 tokens.
 *  - each SIMD level against the scalar reference: the same quantized
 *    activations, so only summation order differs:
 *    |y - y_ref| <= 2e-5 * sum_i |w_i x_i| (+1e-6)
 *  - the scalar reference against a double-precision dot of the
 *    dequantized weights and the original float activations: the
 *    difference is the activation rounding to the vec_dot type, bounded by
 *    sum_i |w_i| * e_i with e_i the per-value rounding bound (Q8_0/Q8_1:
 *    amax/127 * (1/2 + 127/2048) for the fp16 scale; Q8_K: amax/254; F16:
 *    |x| 2^-11; BF16: |x| 2^-8), plus Q8_1's fp16 sum term
 *    (|min| * 32 amax * 2^-11 per block); we allow 1.5x that bound.
 *  - thread counts 1, 2, 3 give bit-identical results; pool reuse; errors. */
#include "ggml_types.h"
#include "kernels.h"
#include "test.h"
#include "util.h"

#include <stdatomic.h>
#include <stdint.h>

static const char *t_suite_name = "matmul";

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}
static float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; } /* [-1, 1] */

static const uint32_t types[] = {WEFT_TYPE_F32, WEFT_TYPE_F16, WEFT_TYPE_BF16, WEFT_TYPE_Q8_0,
				 WEFT_TYPE_Q4_0, WEFT_TYPE_Q4_1, WEFT_TYPE_Q5_0, WEFT_TYPE_Q5_1,
				 WEFT_TYPE_Q4_K, WEFT_TYPE_Q5_K, WEFT_TYPE_Q6_K};
#define N_TYPES (int)(sizeof types / sizeof types[0])

static int is_k(uint32_t t) { return t == WEFT_TYPE_Q4_K || t == WEFT_TYPE_Q5_K || t == WEFT_TYPE_Q6_K; }

static void put_h(uint8_t *p, float f)
{
	uint16_t h = weft_fp32_to_fp16(f);
	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(h >> 8);
}

/* n_out rows of k random weights of type t. */
static uint8_t *make_weights(uint32_t t, int64_t k, int64_t n_out)
{
	uint64_t rb = weft_type_row_bytes(t, (uint64_t)k);
	uint8_t *w = malloc(rb * (uint64_t)n_out);
	if (!is_k(t)) {
		float *row = malloc((size_t)k * sizeof *row);
		for (int64_t o = 0; o < n_out; o++) {
			float off = 0.3f * frand(); /* some rows biased: exercises mins */
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

static float *make_x(int64_t k, int64_t T)
{
	float *x = malloc((size_t)(k * T) * sizeof *x);
	for (int64_t i = 0; i < k * T; i++)
		x[i] = frand() * (i % 97 == 0 ? 4.0f : 1.0f) + 0.1f;
	return x;
}

typedef struct shape {
	int64_t k, n_out, T;
} shape;

static const shape shapes[] = {
	{32, 1, 1},   {32, 7, 3},    {96, 33, 17},  {256, 1, 17},   {256, 33, 1},    {256, 576, 3},
	{512, 7, 17}, {768, 576, 1}, {4864, 7, 3},  {4864, 33, 17}, {4864, 576, 1},  {37, 9, 5},
	{13, 1, 3},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static int shape_ok(uint32_t t, shape s) { return s.k % weft_type_get(t)->block == 0; }

static float *run_mm(weft_pool *p, uint32_t t, const uint8_t *w, const float *x, shape s)
{
	float *y = malloc((size_t)(s.n_out * s.T) * sizeof *y);
	for (int64_t i = 0; i < s.n_out * s.T; i++)
		y[i] = NAN;
	if (weft_matmul(p, t, w, s.k, s.n_out, x, s.T, y, s.n_out) != 0) {
		free(y);
		return NULL;
	}
	return y;
}

/* sum_i |w_i x_i| for row o, token t (dequantized weights in wf). */
static double abs_dot(const float *wf, const float *x, int64_t k)
{
	double s = 0;
	for (int64_t i = 0; i < k; i++)
		s += fabs((double)wf[i] * x[i]);
	return s;
}

static weft_pool *pool2;

/* Back to the best level (tests force levels). */
static void restore_level(void)
{
	if (weft_kernels_force("avx512") != 0 && weft_kernels_force("avx2") != 0)
		weft_kernels_force("scalar");
}

/* Compare level lvl against scalar for every type and shape. */
static void level_vs_scalar(const char *lvl)
{
	if (weft_kernels_force(lvl) != 0)
		SKIP("this CPU lacks %s", lvl);
	weft_kernels_force("scalar");
	int checked = 0;
	for (int ti = 0; ti < N_TYPES && !t_failed; ti++)
		for (int si = 0; si < N_SHAPES && !t_failed; si++) {
			uint32_t t = types[ti];
			shape s = shapes[si];
			if (!shape_ok(t, s))
				continue;
			uint8_t *w = make_weights(t, s.k, s.n_out);
			float *x = make_x(s.k, s.T), *wf = malloc((size_t)s.k * sizeof *wf);
			weft_kernels_force("scalar");
			float *yr = run_mm(pool2, t, w, x, s);
			weft_kernels_force(lvl);
			float *y = run_mm(pool2, t, w, x, s);
			CHECK(yr && y);
			uint64_t rb = weft_type_row_bytes(t, (uint64_t)s.k);
			for (int64_t o = 0; o < s.n_out && y && yr && !t_failed; o++) {
				weft_dequantize_row(t, w + (uint64_t)o * rb, wf, s.k);
				for (int64_t tt = 0; tt < s.T; tt++) {
					double tol = 2e-5 * abs_dot(wf, x + tt * s.k, s.k) + 1e-6;
					double a = y[tt * s.n_out + o], b = yr[tt * s.n_out + o];
					if (!(fabs(a - b) <= tol)) {
						FAILF("%s %s k=%lld n_out=%lld T=%lld: y[%lld][%lld] = %.9g, scalar %.9g (tol %g)",
						      lvl, weft_type_get(t)->name, (long long)s.k, (long long)s.n_out,
						      (long long)s.T, (long long)tt, (long long)o, a, b, tol);
						break;
					}
					checked++;
				}
			}
			free(w), free(x), free(wf), free(y), free(yr);
		}
	restore_level();
	CHECK(checked > 1000);
}

static void avx2_vs_scalar(void) { level_vs_scalar("avx2"); }
static void avx512_vs_scalar(void) { level_vs_scalar("avx512"); }

/* Per-value rounding bound of activation x[i] for vec_dot of type t. */
static void act_bounds(uint32_t t, const float *x, int64_t k, float *e)
{
	int blk = t == WEFT_TYPE_F32 || t == WEFT_TYPE_F16 || t == WEFT_TYPE_BF16 ? 1 : is_k(t) ? 256 : 32;
	for (int64_t b = 0; b < k / blk; b++) {
		float amax = 0;
		for (int j = 0; j < blk; j++)
			amax = fmaxf(amax, fabsf(x[b * blk + j]));
		for (int j = 0; j < blk; j++) {
			float *ep = &e[b * blk + j], ax = fabsf(x[b * blk + j]);
			switch (t) {
			case WEFT_TYPE_F32: *ep = ax * 1e-7f; break;
			case WEFT_TYPE_F16: *ep = ax / 2048; break;
			case WEFT_TYPE_BF16: *ep = ax / 256; break;
			default: *ep = is_k(t) ? amax / 254 : amax / 127 * (0.5f + 127.f / 2048); break;
			}
		}
	}
}

static void scalar_vs_double(void)
{
	weft_kernels_force("scalar");
	int checked = 0;
	for (int ti = 0; ti < N_TYPES && !t_failed; ti++)
		for (int si = 0; si < N_SHAPES && !t_failed; si++) {
			uint32_t t = types[ti];
			shape s = shapes[si];
			if (!shape_ok(t, s) || s.n_out * s.k > 600000)
				continue;
			uint8_t *w = make_weights(t, s.k, s.n_out);
			float *x = make_x(s.k, s.T), *wf = malloc((size_t)s.k * sizeof *wf);
			float *e = malloc((size_t)s.k * sizeof *e);
			float *y = run_mm(NULL, t, w, x, s);
			CHECK(y != NULL);
			uint64_t rb = weft_type_row_bytes(t, (uint64_t)s.k);
			int q81 = t == WEFT_TYPE_Q4_1 || t == WEFT_TYPE_Q5_1;
			for (int64_t o = 0; o < s.n_out && y && !t_failed; o++) {
				const uint8_t *wr = w + (uint64_t)o * rb;
				weft_dequantize_row(t, wr, wf, s.k);
				for (int64_t tt = 0; tt < s.T; tt++) {
					const float *xt = x + tt * s.k;
					act_bounds(t, xt, s.k, e);
					double ref = 0, bound = 0;
					for (int64_t i = 0; i < s.k; i++) {
						ref += (double)wf[i] * xt[i];
						bound += fabs((double)wf[i]) * e[i];
					}
					for (int64_t g = 0; q81 && g < s.k / 32; g++) {
						float amax = 0;
						for (int j = 0; j < 32; j++)
							amax = fmaxf(amax, fabsf(xt[32 * g + j]));
						uint64_t bb = weft_type_get(t)->bytes;
						const uint8_t *mp = wr + (uint64_t)g * bb + 2;
						float m = weft_fp16_to_fp32((uint16_t)(mp[0] | mp[1] << 8));
						bound += fabs(m) * 32 * amax / 2048;
					}
					double tol = 1.5 * bound + 1e-5 * abs_dot(wf, xt, s.k) + 1e-6;
					double a = y[tt * s.n_out + o];
					if (!(fabs(a - ref) <= tol)) {
						FAILF("%s k=%lld n_out=%lld T=%lld: y[%lld][%lld] = %.9g, double %.9g (tol %g)",
						      weft_type_get(t)->name, (long long)s.k, (long long)s.n_out,
						      (long long)s.T, (long long)tt, (long long)o, a, ref, tol);
						break;
					}
					checked++;
				}
			}
			free(w), free(x), free(wf), free(e), free(y);
		}
	restore_level();
	CHECK(checked > 1000);
}

/* Threads 1, 2, 3 (and no pool) give bit-identical results. */
static void threads_identical(void)
{
	weft_pool *p[3] = {weft_pool_new(1), weft_pool_new(2), weft_pool_new(3)};
	CHECK(p[0] && p[1] && p[2]);
	CHECK_EQ_INT(weft_pool_size(p[2]), 3);
	const shape sh[] = {{256, 577, 17}, {512, 100, 1}};
	for (int ti = 0; ti < N_TYPES && !t_failed; ti++)
		for (int si = 0; si < 2 && !t_failed; si++) {
			uint32_t t = types[ti];
			shape s = sh[si];
			uint8_t *w = make_weights(t, s.k, s.n_out);
			float *x = make_x(s.k, s.T);
			float *y0 = run_mm(NULL, t, w, x, s);
			for (int i = 0; i < 3 && y0; i++) {
				float *y = run_mm(p[i], t, w, x, s);
				CHECK(y && memcmp(y, y0, (size_t)(s.n_out * s.T) * sizeof *y) == 0);
				if (t_failed)
					FAILF("%s, %d threads, T=%lld: results differ", weft_type_get(t)->name, i + 1,
					      (long long)s.T);
				free(y);
			}
			free(w), free(x), free(y0);
		}
	for (int i = 0; i < 3; i++)
		weft_pool_free(p[i]);
}

static atomic_int counts[64];
static void count_task(void *ctx, int task, int n_tasks)
{
	(void)ctx;
	atomic_fetch_add(&counts[task], n_tasks);
}

/* Many jobs through one pool: every task runs exactly once each time. */
static void pool_reuse(void)
{
	weft_pool *p = weft_pool_new(3);
	CHECK(p != NULL);
	for (int it = 0; it < 20000 && !t_failed; it++) {
		int n = 1 + it % 64;
		for (int i = 0; i < 64; i++)
			atomic_store(&counts[i], 0);
		weft_pool_run(p, n, count_task, NULL);
		for (int i = 0; i < 64; i++)
			CHECK_EQ_INT(atomic_load(&counts[i]), i < n ? n : 0);
	}
	/* and matmuls through it, interleaved with idle gaps */
	shape s = {256, 33, 3};
	uint8_t *w = make_weights(WEFT_TYPE_Q4_1, s.k, s.n_out);
	float *x = make_x(s.k, s.T), *y0 = run_mm(NULL, WEFT_TYPE_Q4_1, w, x, s);
	for (int it = 0; it < 300 && y0; it++) {
		float *y = run_mm(p, WEFT_TYPE_Q4_1, w, x, s);
		CHECK(y && !memcmp(y, y0, sizeof(float) * 99));
		free(y);
	}
	weft_pool_run(NULL, 3, count_task, NULL);
	free(w), free(x), free(y0);
	weft_pool_free(p);
}

static void errors(void)
{
	float x[64] = {0}, y[4];
	uint8_t w[1024] = {0};
	CHECK_EQ_INT(weft_matmul(NULL, WEFT_TYPE_Q2_K, w, 256, 1, x, 1, y, 1), -1);
	CHECK_STR(weft_errmsg(), "matmul: unsupported weight type q2_K");
	CHECK_EQ_INT(weft_matmul(NULL, 99, w, 256, 1, x, 1, y, 1), -1);
	CHECK_STR(weft_errmsg(), "matmul: unsupported weight type unknown");
	CHECK_EQ_INT(weft_matmul(NULL, WEFT_TYPE_Q4_0, w, 48, 1, x, 1, y, 1), -1);
	CHECK_STR(weft_errmsg(), "matmul: k = 48 is not a positive multiple of the q4_0 block size 32");
	CHECK_EQ_INT(weft_matmul(NULL, WEFT_TYPE_Q4_K, w, 32, 1, x, 1, y, 1), -1);
	CHECK_STR(weft_errmsg(), "matmul: k = 32 is not a positive multiple of the q4_K block size 256");
	CHECK_EQ_INT(weft_matmul(NULL, WEFT_TYPE_F32, w, 16, 4, x, 1, y, 3), -1);
	CHECK_STR(weft_errmsg(), "matmul: bad shape (n_out 4, T 1, ldy 3)");
	CHECK(weft_matmul_supported(WEFT_TYPE_Q6_K) && !weft_matmul_supported(WEFT_TYPE_Q3_K));
	CHECK_EQ_INT(weft_kernels_force("sse9"), -1);
	CHECK(weft_kernels_level()[0] != 0);
}

int main(void)
{
	t_suite = t_suite_name;
	pool2 = weft_pool_new(2);
	printf("# kernels: %s\n", weft_kernels_level());
	RUN(errors);
	RUN(scalar_vs_double);
	RUN(avx2_vs_scalar);
	RUN(avx512_vs_scalar);
	RUN(threads_identical);
	RUN(pool_reuse);
	weft_pool_free(pool2);
	TEST_MAIN_END();
}

/* test_matmul.c - weft_matmul and the thread pool.
 *
 * For every supported weight type: random weights (quantized with the
 * reference quantizer; K-quant blocks built directly from random bytes
 * with sane scales), odd shapes, T = 1, 2, 3, 5, 17, 64, 101, 512 tokens
 * (T > 1 takes the register-tiled GEMM path where the level has one:
 * n_out not a multiple of the tiles, several row and token blocks).
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
 *  - thread counts 1, 2, 3 give bit-identical results; pool reuse; errors.
 *  - each level's Q8_0 / Q8_1 activation quantizer is bit-identical to the
 *    scalar one. */
#include "ggml_types.h"
#include "kernels.h"
#include "backend.h"
#include "matmul_int.h"
#include "rand_weights.h"
#include "test.h"
#include "util.h"

#include <stdatomic.h>
#include <stdint.h>

static const char *t_suite_name = "matmul";

static const uint32_t types[] = {WEFT_TYPE_F32, WEFT_TYPE_F16, WEFT_TYPE_BF16, WEFT_TYPE_Q8_0,
				 WEFT_TYPE_Q4_0, WEFT_TYPE_Q4_1, WEFT_TYPE_Q5_0, WEFT_TYPE_Q5_1,
				 WEFT_TYPE_Q4_K, WEFT_TYPE_Q5_K, WEFT_TYPE_Q6_K};
#define N_TYPES (int)(sizeof types / sizeof types[0])

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
	{13, 1, 3},   {32, 5, 2},    {64, 6, 5},    {160, 7, 64},   {4864, 9, 64},   {576, 13, 512},
	{1536, 10, 512}, {256, 389, 101}, {48, 3, 2},
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
	weft_kernels_force(NULL);
}

/* Compare level lvl against scalar for every type and shape. */
static void level_vs_scalar(weft_level lvl)
{
	const weft_backend *be = weft_backend_at(lvl);
	if (!be)
		SKIP("this CPU lacks level %d", (int)lvl);
	weft_backend_select(WEFT_LEVEL_SCALAR);
	int checked = 0;
	for (int ti = 0; ti < N_TYPES && !t_failed; ti++)
		for (int si = 0; si < N_SHAPES && !t_failed; si++) {
			uint32_t t = types[ti];
			shape s = shapes[si];
			if (!shape_ok(t, s))
				continue;
			uint8_t *w = make_weights(t, s.k, s.n_out);
			float *x = make_x(s.k, s.T), *wf = malloc((size_t)s.k * sizeof *wf);
			weft_backend_select(WEFT_LEVEL_SCALAR);
			float *yr = run_mm(pool2, t, w, x, s);
			weft_backend_select(lvl);
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
						      be->name, weft_type_get(t)->name, (long long)s.k, (long long)s.n_out,
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

static void avx2_vs_scalar(void) { level_vs_scalar(WEFT_LEVEL_AVX2); }
static void avx512_vs_scalar(void) { level_vs_scalar(WEFT_LEVEL_AVX512); }
static void llamacpp_vs_scalar(void) { level_vs_scalar(WEFT_LEVEL_LLAMACPP); }

static float h2f(const uint8_t *p) { return weft_fp16_to_fp32((uint16_t)(p[0] | p[1] << 8)); }

/* The llama.cpp level's Q4_1, Q8_0 and Q4_0 matmuls, bit for bit, against
 * this restatement of ggml's order (quantize_row_q8_1 / q8_0, then
 * ggml_vec_dot_q4_1_q8_1 / q8_0_q8_0 / q4_0_q8_0 as its AVX2 path computes
 * them): per block, 8 lanes of integer dots of 4 values, fma'd with
 * d_w * d_a; Q4_1's m * s in a scalar fma chain; lanes summed (hi + lo),
 * (0+2)+(1+3); then + the m * s sum.  Q4_0 matrices of 8k rows: the
 * repacked order instead. */
static void llamacpp_order(void)
{
	if (weft_backend_select(WEFT_LEVEL_LLAMACPP) != 0)
		SKIP("this CPU lacks the AVX-512 level whose llama.cpp build the llama.cpp level reproduces");
	const uint32_t ty[] = {WEFT_TYPE_Q4_1, WEFT_TYPE_Q8_0, WEFT_TYPE_Q4_0};
	const shape sh[] = {{32, 3, 1}, {576, 19, 5}, {1536, 7, 64}, {4864, 5, 3}, {576, 16, 5}, {64, 8, 70}};
	for (int ti = 0; ti < 3 && !t_failed; ti++)
		for (int si = 0; si < 6 && !t_failed; si++) {
			const uint32_t t = ty[ti];
			const shape s = sh[si];
			uint8_t *w = make_weights(t, s.k, s.n_out);
			float *x = make_x(s.k, s.T), *y = run_mm(pool2, t, w, x, s);
			CHECK(y != NULL);
			const uint64_t rb = weft_type_row_bytes(t, (uint64_t)s.k);
			int8_t *q = malloc((size_t)s.k);
			float *d = malloc(sizeof(float) * (size_t)(s.k / 32)), *sm = malloc(sizeof(float) * (size_t)(s.k / 32));
			for (int64_t tt = 0; tt < s.T && y && !t_failed; tt++) {
				const float *xt = x + tt * s.k;
				for (int64_t b = 0; b < s.k / 32; b++) { /* quantize_row_q8_1 / q8_0 */
					float amax = 0;
					for (int j = 0; j < 32; j++)
						amax = fmaxf(amax, fabsf(xt[32 * b + j]));
					const float dd = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
					int sum = 0;
					for (int j = 0; j < 32; j++) {
						q[32 * b + j] = (int8_t)nearbyintf(xt[32 * b + j] * id);
						sum += q[32 * b + j];
					}
					d[b] = weft_fp16_to_fp32(weft_fp32_to_fp16(dd));
					sm[b] = weft_fp16_to_fp32(weft_fp32_to_fp16(dd * (float)sum));
				}
				for (int64_t o = 0; o < s.n_out; o++) {
					const uint8_t *row = w + (uint64_t)o * rb;
					/* Q4_0 with rows a multiple of 8: llama.cpp repacks it
					 * (ggml_gemv_q4_0_8x8_q8_0): one fma per block of its
					 * whole integer dot, no lanes */
					const int repacked = t == WEFT_TYPE_Q4_0 && s.n_out % 8 == 0;
					const int bsz = t == WEFT_TYPE_Q4_1 ? 20 : t == WEFT_TYPE_Q4_0 ? 18 : 34;
					float acc[8] = {0}, summs = 0, one = 0;
					for (int64_t b = 0; b < s.k / 32; b++) {
						const uint8_t *blk = row + bsz * b;
						if (t == WEFT_TYPE_Q4_1)
							summs = fmaf(h2f(blk + 2), sm[b], summs);
						const float dd = h2f(blk) * d[b];
						const uint8_t *qs = blk + (t == WEFT_TYPE_Q4_1 ? 4 : 2);
						int total = 0;
						for (int l = 0; l < 8; l++) {
							int isum = 0;
							for (int j = 4 * l; j < 4 * l + 4; j++) {
								int wv = t == WEFT_TYPE_Q8_0 ? (int8_t)qs[j]
									 : j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
								if (t == WEFT_TYPE_Q4_0)
									wv -= 8;
								isum += wv * q[32 * b + j];
							}
							acc[l] = fmaf(dd, (float)isum, acc[l]);
							total += isum;
						}
						one = fmaf((float)total, dd, one);
					}
					float r4[4];
					for (int l = 0; l < 4; l++)
						r4[l] = acc[4 + l] + acc[l];
					const float e = repacked ? one : ((r4[0] + r4[2]) + (r4[1] + r4[3])) + summs;
					const float got = y[tt * s.n_out + o];
					if (memcmp(&got, &e, sizeof e)) {
						FAILF("%s k=%lld T=%lld: y[%lld][%lld] = %.9g, ggml's order gives %.9g",
						      weft_type_get(t)->name, (long long)s.k, (long long)s.T, (long long)tt,
						      (long long)o, got, e);
						break;
					}
				}
			}
			free(q), free(d), free(sm), free(w), free(x), free(y);
		}
	restore_level();
}

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
	weft_backend_select(WEFT_LEVEL_SCALAR);
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
	const shape sh[] = {{256, 577, 17}, {512, 100, 1}, {576, 203, 130}, {32, 9, 2}};
	for (int ti = 0; ti < N_TYPES && !t_failed; ti++)
		for (int si = 0; si < 4 && !t_failed; si++) {
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

/* A token's outputs do not depend on the tokens beside it: T tokens in
 * one call (the GEMM path) equal T calls of one token (the row kernels)
 * bit for bit, at every level (chunked prefill = one prefill = decode). */
static void batch_equals_single(void)
{
	/* k = 200 and 232: the float kernels' scalar tails (not a multiple of
	 * 16); k = 2061: the k-blocked float GEMM with a ragged last block */
	const shape sh[] = {{576, 203, 130}, {1536, 37, 9}, {4864, 13, 6}, {96, 5, 2},
			    {200, 31, 13},  {232, 9, 7},  {2061, 11, 8}};
	const int n_sh = (int)(sizeof sh / sizeof sh[0]);
	for (int l = 0; l < WEFT_LEVEL_N && !t_failed; l++) {
		if (weft_backend_select(l) != 0)
			continue;
		for (int ti = 0; ti < N_TYPES && !t_failed; ti++)
			for (int si = 0; si < n_sh && !t_failed; si++) {
				uint32_t t = types[ti];
				shape s = sh[si];
				if (!shape_ok(t, s))
					continue;
				uint8_t *w = make_weights(t, s.k, s.n_out);
				float *x = make_x(s.k, s.T), *y = run_mm(pool2, t, w, x, s);
				float *y1 = malloc((size_t)s.n_out * sizeof *y1);
				for (int64_t tt = 0; tt < s.T && y && !t_failed; tt++) {
					CHECK(weft_matmul(pool2, t, w, s.k, s.n_out, x + tt * s.k, 1, y1, s.n_out) == 0);
					if (memcmp(y1, y + tt * s.n_out, (size_t)s.n_out * sizeof *y1))
						FAILF("%s %s k=%lld n_out=%lld T=%lld: token %lld differs from a T=1 call",
						      weft_kernels_level(), weft_type_get(t)->name, (long long)s.k, (long long)s.n_out,
						      (long long)s.T, (long long)tt);
				}
				free(w), free(x), free(y), free(y1);
			}
	}
	restore_level();
}

/* WEFT_MATMUL_F32_ACT: F16 weights with float32 activations give what the
 * same weights widened to F32 give (to float summation order), and
 * without the flag the activations' rounding to F16 shows. */
static void f32_activations(void)
{
	const int64_t k = 200, n = 37, T = 9;
	for (int l = 0; l < WEFT_LEVEL_LLAMACPP && !t_failed; l++) {
		if (weft_backend_select(l) != 0)
			continue;
		uint8_t *w = make_weights(WEFT_TYPE_F16, k, n);
		float *wf = malloc(sizeof(float) * (size_t)(k * n)), *x = make_x(k, T);
		float *y16 = malloc(sizeof(float) * (size_t)(n * T)), *y32 = malloc(sizeof(float) * (size_t)(n * T)),
		      *yf = malloc(sizeof(float) * (size_t)(n * T));
		CHECK(weft_dequantize_row(WEFT_TYPE_F16, w, wf, k * n) == 0);
		CHECK(weft_matmul_ex(pool2, WEFT_TYPE_F16, w, k, n, x, T, y16, n, 0) == 0);
		CHECK(weft_matmul_ex(pool2, WEFT_TYPE_F16, w, k, n, x, T, y32, n, WEFT_MATMUL_F32_ACT) == 0);
		CHECK(weft_matmul(pool2, WEFT_TYPE_F32, wf, k, n, x, T, yf, n) == 0);
		double d32 = 0, d16 = 0, mx = 0;
		for (int64_t i = 0; i < n * T; i++) {
			d32 = fmax(d32, fabs(y32[i] - yf[i]));
			d16 = fmax(d16, fabs(y16[i] - yf[i]));
			mx = fmax(mx, fabs(yf[i]));
		}
		if (!(d32 <= 1e-6 * mx) || !(d16 > 1e-5 * mx))
			FAILF("%s: |flag - F32| %g, |no flag - F32| %g (max %g)", weft_kernels_level(), d32, d16, mx);
		free(w), free(wf), free(x), free(y16), free(y32), free(yf);
	}
	restore_level();
}

/* Each level's bf16 rounding of the activations equals weft_fp32_to_bf16
 * bit for bit: ties to even, carries into the exponent, infinities,
 * NaNs (kept quiet), subnormals, negative zero; odd lengths (tails). */
static void round_bf16_identical(void)
{
	enum { N = 1037 };
	float x[N], f[N];
	uint16_t h[N];
	for (int i = 0; i < N; i++) {
		uint32_t b = rnd();
		switch (i % 9) {
		case 0: b = (b & 0xffff0000u) | 0x8000u; break;	  /* a tie */
		case 1: b = (b & 0xffff0000u) | 0x7fffu; break;	  /* just under */
		case 2: b = (b & 0x807fffffu) | 0x7f000000u; break; /* may carry to inf */
		case 3: b = (b & 0x80000000u) | 0x7f800000u | (b & 0x7fffffu); break; /* inf / nan */
		case 4: b &= 0x807fffffu; break;			  /* subnormal */
		case 5: b = i & 1 ? 0x80000000u : 0; break;		  /* signed zero */
		default: break;
		}
		memcpy(&x[i], &b, 4);
	}
	for (int l = 0; l < WEFT_LEVEL_LLAMACPP && !t_failed; l++) {
		if (weft_backend_select(l) != 0)
			continue;
		for (int n = N; n >= N - 9 && !t_failed; n -= 3)
			for (int with_h = 1; with_h >= 0 && !t_failed; with_h--) { /* h is optional */
				memset(h, 0, sizeof h);
				memset(f, 0xff, sizeof f); /* NaNs: every value must be written */
				weft_kern_get()->round_bf16(f, with_h ? h : NULL, x, n);
				for (int i = 0; i < n && !t_failed; i++) {
					const uint16_t e = weft_fp32_to_bf16(x[i]);
					const float ef = weft_bf16_to_fp32(e);
					uint32_t xb;
					memcpy(&xb, &x[i], 4);
					if ((with_h && h[i] != e) || memcmp(&f[i], &ef, 4))
						FAILF("%s n=%d%s: x[%d] = 0x%08x: bf16 0x%04x, expected 0x%04x", weft_kernels_level(), n,
						      with_h ? "" : " (no h)", i, (unsigned)xb, h[i], e);
				}
			}
	}
	restore_level();
}

/* kern->quant_q8 of every level against the scalar quantizer, bit for
 * bit: random blocks, all-zero blocks, tiny scales (fp16-subnormal d),
 * large values, ties. */
static void quant_q8_identical(void)
{
	const int64_t k = 4864;
	float *x = malloc((size_t)k * sizeof *x);
	for (int64_t i = 0; i < k; i++) {
		int64_t g = i / 32;
		float v = frand();
		x[i] = g % 7 == 1 ? 0.0f : g % 7 == 2 ? v * 1e-7f : g % 7 == 3 ? v * 3e4f
		     : g % 7 == 4 ? (float)((int)(v * 8)) * 0.5f : v;
	}
	int tested = 0;
	for (int l = 0; l < WEFT_LEVEL_LLAMACPP && !t_failed; l++) {
		if (weft_backend_select(l) != 0)
			continue;
		const weft_kern *kt = weft_kern_get();
		if (!kt->quant_q8)
			continue;
		for (int q81 = 0; q81 < 2 && !t_failed; q81++)
			for (int c = 0; c <= 128 && !t_failed; c += 128) {
				weft_qact a[2];
				for (int i = 0; i < 2; i++) {
					a[i] = (weft_qact){.k = k, .q_stride = k, .l_stride = k / 4, .g_stride = k / 32};
					a[i].q = calloc((size_t)k, 1);
					a[i].dl = calloc((size_t)k / 4, sizeof(float));
					a[i].corr = calloc((size_t)k / 4, sizeof(int32_t));
					a[i].bs = calloc((size_t)k / 32, sizeof(int32_t));
					a[i].s = calloc((size_t)k / 32, sizeof(float));
				}
				weft_act_quant_q8_ref(&a[0], 0, x, q81, c);
				kt->quant_q8(&a[1], 0, x, q81, c);
				CHECK(!memcmp(a[0].q, a[1].q, (size_t)k));
				CHECK(!memcmp(a[0].dl, a[1].dl, (size_t)k / 4 * sizeof(float)));
				CHECK(!memcmp(a[0].corr, a[1].corr, (size_t)k / 4 * sizeof(int32_t)));
				CHECK(!memcmp(a[0].bs, a[1].bs, (size_t)k / 32 * sizeof(int32_t)));
				CHECK(!memcmp(a[0].s, a[1].s, (size_t)k / 32 * sizeof(float)));
				if (t_failed)
					FAILF("%s quant_q8 (q81 %d, c %d) differs from the scalar one", weft_kernels_level(), q81, c);
				for (int i = 0; i < 2; i++)
					free(a[i].q), free(a[i].dl), free(a[i].corr), free(a[i].bs), free(a[i].s);
				tested++;
			}
	}
	restore_level();
	free(x);
	if (!tested)
		SKIP("no level has its own Q8 quantizer");
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
	RUN(llamacpp_vs_scalar);
	RUN(llamacpp_order);
	RUN(threads_identical);
	RUN(quant_q8_identical);
	RUN(round_bf16_identical);
	RUN(batch_equals_single);
	RUN(f32_activations);
	RUN(pool_reuse);
	weft_pool_free(pool2);
	TEST_MAIN_END();
}

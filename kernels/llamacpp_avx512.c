/* llamacpp_avx512.c - the "llama.cpp" kernel level: llama.cpp's CPU backend's
 * arithmetic, operation for operation, so that logits come out bit for bit
 * as a llama.cpp built with -march=native on an x86-64 CPU with AVX-512
 * (F, DQ, BW, VL, VNNI) computes them.  Greedy decoding of a small quantized
 * model is full of near ties that a last-bit difference anywhere flips;
 * this level exists so that weft can be checked token for token against
 * llama.cpp (tests/unit/test_model.c), and so that a user can reproduce a
 * llama.cpp run exactly.  Selected with WEFT_KERNELS=llama.cpp or
 * weft_kernels_force("llama.cpp"); tools take --numerics llama.cpp.  Only
 * offered on CPUs with weft's AVX-512 level (its other kernels come from
 * that level's table).
 *
 * What is reproduced (ggml-cpu as vendored by llama-cpp-python 0.3.36,
 * built by gcc with its default contraction of a*b+c into fma):
 *   Q4_1 x Q8_1, Q8_0 x Q8_0, Q4_0 x Q8_0 dot products: per block of 32,
 *     the integer dot of each group of 4 values (VNNI; Q8_0/Q4_0 by
 *     ggml's sign trick)
 *     converted to float and accumulated into 8 lanes by fma with
 *     d_w * d_a; Q4_1's m * s terms summed in a separate scalar fma chain;
 *     the lanes reduced as hsum_float_8 ((hi + lo), then (0+2) + (1+3)),
 *     plus the m * s sum last.  (ggml_vec_dot_q4_1_q8_1 / q8_0_q8_0 and
 *     llamafile's tinyBLAS_Q0_AVX use the same order.)  Activations are
 *     quantized by matmul.c's quantizer, which matches quantize_row_q8_0 /
 *     q8_1; RMSNorm, residual adds and the F16 cache's rounding of K/V are
 *     weft's, which already match.
 *   Q4_0 matrices whose row count is a multiple of 8, which llama.cpp
 *     repacks into 8-row groups (ggml_gemv / gemm_q4_0_8x8_q8_0): per
 *     block, the whole 32-value integer dot converted and fma'd with
 *     d_w * d_a into one float per output (weft_kern.dot8).
 *   RoPE (normal and NEOX): x0 c - x1 s with the c product fused, x0 s +
 *     x1 c with the s product fused (gcc's contraction of rotate_pairs).
 *   SwiGLU: ggml_vec_swiglu_f32's AVX-512 path, silu(x) = x / (1 +
 *     ggml_v_expf(-x)) with its polynomial, times up.
 *   Attention with an F16 cache, as llama.cpp's flash attention picks it:
 *     - batches of fewer than 64 query rows (decode):
 *       ggml_compute_forward_flash_attn_ext_f16_one_chunk: the query
 *       rounded to half; scores by ggml_vec_dot_f16 (4 x 16 fma lanes,
 *       then ggml's reduction tree); an online softmax whose weighted sum
 *       of V rows is kept in IEEE half (rounded after every fma and every
 *       rescale); the sum S by fma;
 *     - 64 rows or more (prompts): ggml_compute_forward_flash_attn_ext_tiled,
 *       float32 throughout (attn_rows_tiled below).
 * Not reproduced (weft's own kernels run, so results differ in the last
 * bits): other weight types (llama.cpp repacks the K-quants, and runs
 * F16/F32 through tinyBLAS), attention over float32 K/V, and llama.cpp's
 * split-KV decode attention, which it uses with several threads once its
 * cache view reaches 512 cells (with one thread it equals the kernel
 * here).  weft_kernels_llamacpp_exact() says which weight types are
 * covered; tools refuse the others. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "ggml_blocks.h"
#include "avx2_int.h" /* h2f, nib, hsum8 (hsum_float_8's order) */
#include "ggml_types.h"
#include "matmul_int.h"
#include "ops_int.h"

static inline float f16r(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

/* 8 int32 lanes, lane l = the dot of values 4l .. 4l+3: u8 x s8 by VNNI
 * (Q4_1's nibbles), and s8 x s8 by ggml's sign trick (|x| times y with x's
 * sign), which is exact for the quants quantizers make (-127 .. 127). */
static inline __m256i dot4_us(__m256i ux, __m256i sy) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), ux, sy); }
static inline __m256i dot4_ss(__m256i x, __m256i y)
{
	return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* Both kernels take the block loop outside the token loop (the weights are
 * unpacked once for up to WEFT_NT tokens); each output's own sequence of
 * operations is ggml's whatever nt is. */
static inline __attribute__((always_inline)) void q4_1_nt(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0,
							   const int nt, float *y, int64_t ldy)
{
	const int64_t nb = k / 32;
	const int np = nt / 2; /* token pairs share a 512-bit register: [t | t+1] lanes */
	__m512 acc2[WEFT_NT / 2];
	__m256 acc1 = _mm256_setzero_ps();
	float summs[WEFT_NT];
	for (int i = 0; i < np; i++)
		acc2[i] = _mm512_setzero_ps();
	for (int t = 0; t < nt; t++)
		summs[t] = 0.0f;
	for (int64_t g = 0; g < nb; g++) {
		const uint8_t *b = w + WEFT_SZ(q4_1) * g;
		const float d0 = h2f(b), m = h2f(b + WEFT_OFF(q4_1, m));
		const __m256i qx = nib(b + WEFT_OFF(q4_1, qs));
		const __m512i qx2 = _mm512_broadcast_i64x4(qx);
		for (int t = 0; t < nt; t++)
			summs[t] = fmaf(m, a->s[(t0 + t) * a->g_stride + g], summs[t]);
		for (int i = 0; i < np; i++) {
			const int64_t ta = t0 + 2 * i, tb = ta + 1;
			const __m512i qy2 = _mm512_inserti64x4(
				_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(a->q + ta * a->q_stride + 32 * g))),
				_mm256_loadu_si256((const __m256i *)(a->q + tb * a->q_stride + 32 * g)), 1);
			const __m512 dd = _mm512_insertf32x8(_mm512_set1_ps(d0 * a->dl[ta * a->l_stride + 8 * g]),
							     _mm256_set1_ps(d0 * a->dl[tb * a->l_stride + 8 * g]), 1);
			const __m512 xy = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), qx2, qy2));
			acc2[i] = _mm512_fmadd_ps(dd, xy, acc2[i]);
		}
		if (nt & 1) {
			const int64_t tt = t0 + nt - 1;
			const __m256i qy = _mm256_loadu_si256((const __m256i *)(a->q + tt * a->q_stride + 32 * g));
			const __m256 xy = _mm256_cvtepi32_ps(dot4_us(qx, qy));
			acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * a->dl[tt * a->l_stride + 8 * g]), xy, acc1);
		}
	}
	for (int i = 0; i < np; i++) {
		y[2 * i * ldy] = hsum8(_mm512_castps512_ps256(acc2[i])) + summs[2 * i];
		y[(2 * i + 1) * ldy] = hsum8(_mm512_extractf32x8_ps(acc2[i], 1)) + summs[2 * i + 1];
	}
	if (nt & 1)
		y[(nt - 1) * ldy] = hsum8(acc1) + summs[nt - 1];
}

/* A Q8_0 or Q4_0 block's 32 signed values: as stored, or nibbles - 8. */
static inline __m256i signed32(const int q40, const uint8_t *b)
{
	return q40 ? _mm256_sub_epi8(nib(b + WEFT_OFF(q4_0, qs)), _mm256_set1_epi8(8)) : _mm256_loadu_si256((const __m256i *)(b + WEFT_OFF(q8_0, qs)));
}

/* Q8_0 and Q4_0, as ggml_vec_dot_q8_0_q8_0 / q4_0_q8_0 (and tinyBLAS):
 * per block, 8 lanes of integer dots fma'd with d_w * d_a, then hsum8. */
static inline __attribute__((always_inline)) void lanes_nt(const int q40, int64_t k, const uint8_t *w,
							    const weft_qact *a, int64_t t0, const int nt, float *y,
							    int64_t ldy)
{
	const int64_t nb = k / 32;
	__m256 acc[WEFT_NT];
	for (int t = 0; t < nt; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t g = 0; g < nb; g++) {
		const uint8_t *b = w + (q40 ? WEFT_SZ(q4_0) : WEFT_SZ(q8_0)) * g;
		const float d0 = h2f(b);
		const __m256i qx = signed32(q40, b);
		for (int t = 0; t < nt; t++) {
			const int64_t tt = t0 + t;
			const __m256i qy = _mm256_loadu_si256((const __m256i *)(a->q + tt * a->q_stride + 32 * g));
			const __m256 xy = _mm256_cvtepi32_ps(dot4_ss(qx, qy));
			acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * a->dl[tt * a->l_stride + 8 * g]), xy, acc[t]);
		}
	}
	for (int t = 0; t < nt; t++)
		y[t * ldy] = hsum8(acc[t]);
}

static inline __attribute__((always_inline)) void q8_0_nt(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0,
							   const int nt, float *y, int64_t ldy)
{
	lanes_nt(0, k, w, a, t0, nt, y, ldy);
}

static inline __attribute__((always_inline)) void q4_0_nt(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0,
							   const int nt, float *y, int64_t ldy)
{
	lanes_nt(1, k, w, a, t0, nt, y, ldy);
}

/* Q4_0 repacked into 8-row groups (ggml_gemv / ggml_gemm_q4_0_8x8_q8_0,
 * used by llama.cpp for matrices whose row count is a multiple of 8): per
 * output, each block's whole integer dot, converted and fma'd with
 * d_w * d_a into one float; no lanes, no reduction. */
static inline __attribute__((always_inline)) void q4_0r_nt(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0,
							    const int nt, float *y, int64_t ldy)
{
	const int64_t nb = k / 32;
	float acc[WEFT_NT] = {0};
	for (int64_t g = 0; g < nb; g++) {
		const uint8_t *b = w + WEFT_SZ(q4_0) * g;
		const float d0 = h2f(b);
		const __m256i qx = signed32(1, b);
		for (int t = 0; t < nt; t++) {
			const int64_t tt = t0 + t;
			const __m256i qy = _mm256_loadu_si256((const __m256i *)(a->q + tt * a->q_stride + 32 * g));
			const __m256i l8 = dot4_ss(qx, qy);
			__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(l8), _mm256_extracti128_si256(l8, 1));
			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
			acc[t] = fmaf((float)_mm_cvtsi128_si32(s4), d0 * a->dl[tt * a->l_stride + 8 * g], acc[t]);
		}
	}
	for (int t = 0; t < nt; t++)
		y[t * ldy] = acc[t];
}

/* nt as a constant, so that the accumulators stay in registers */
#define NT_SWITCH(fn)                                                  \
	switch (nt) {                                                  \
	case 1: fn(k, w, a, t0, 1, y, ldy); break;                     \
	case 2: fn(k, w, a, t0, 2, y, ldy); break;                     \
	case 3: fn(k, w, a, t0, 3, y, ldy); break;                     \
	default: fn(k, w, a, t0, 4, y, ldy); break;                    \
	}

static void dot_q4_1(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt, float *y, int64_t ldy)
{
	NT_SWITCH(q4_1_nt)
}

static void dot_q8_0(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt, float *y, int64_t ldy)
{
	NT_SWITCH(q8_0_nt)
}

static void dot_q4_0(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt, float *y, int64_t ldy)
{
	NT_SWITCH(q4_0_nt)
}

static void dot_q4_0r(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt, float *y, int64_t ldy)
{
	NT_SWITCH(q4_0r_nt)
}

/* GEMM tiles of 4 rows x 4 tokens: the same operations per output as the
 * dot kernels above (so a token's result never depends on its batch),
 * with each weight block unpacked once per tile and token pairs in
 * 512-bit registers.  Q8_0's integer dots use the activations' -128 * sum
 * correction with the weights offset by +128 (exact, as ggml's sign
 * trick); Q4_1's m * s chains run as 16 lanes, one per output. */
static inline __attribute__((always_inline)) void tile44(const int q41, int64_t k, const uint8_t *W, uint64_t rb,
							  int64_t r, const weft_qact *a, int64_t t, float *Y, int64_t ldy)
{
	const int64_t nb = k / 32;
	const int bytes = q41 ? (int)WEFT_SZ(q4_1) : (int)WEFT_SZ(q8_0);
	__m512 acc[4][2], summs = _mm512_setzero_ps();
	for (int i = 0; i < 4; i++)
		acc[i][0] = acc[i][1] = _mm512_setzero_ps();
	for (int64_t g = 0; g < nb; g++) {
		__m512i qy[2], cr[2];
		__m512 dl[2];
		for (int p = 0; p < 2; p++) {
			const int64_t ta = t + 2 * p, tb = ta + 1;
			qy[p] = _mm512_inserti64x4(
				_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(a->q + ta * a->q_stride + 32 * g))),
				_mm256_loadu_si256((const __m256i *)(a->q + tb * a->q_stride + 32 * g)), 1);
			dl[p] = _mm512_insertf32x8(_mm512_set1_ps(a->dl[ta * a->l_stride + 8 * g]),
						   _mm256_set1_ps(a->dl[tb * a->l_stride + 8 * g]), 1);
			cr[p] = q41 ? _mm512_setzero_si512()
				    : _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(
								 (const __m256i *)(a->corr + ta * a->l_stride + 8 * g))),
							 _mm256_loadu_si256((const __m256i *)(a->corr + tb * a->l_stride + 8 * g)),
							 1);
		}
		float m[4];
		for (int i = 0; i < 4; i++) {
			const uint8_t *b = W + (uint64_t)(r + i) * rb + (uint64_t)(bytes * g);
			const __m512 d = _mm512_set1_ps(h2f(b));
			__m256i qx;
			if (q41) {
				m[i] = h2f(b + WEFT_OFF(q4_1, m));
				qx = nib(b + WEFT_OFF(q4_1, qs));
			} else {
				qx = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b + WEFT_OFF(q8_0, qs))), _mm256_set1_epi8((char)0x80));
			}
			const __m512i qx2 = _mm512_broadcast_i64x4(qx);
			for (int p = 0; p < 2; p++) {
				const __m512 xy = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(cr[p], qx2, qy[p]));
				acc[i][p] = _mm512_fmadd_ps(_mm512_mul_ps(d, dl[p]), xy, acc[i][p]);
			}
		}
		if (q41) { /* lane 4i + j: row r+i, token t+j */
			const __m128 sv = _mm_set_ps(a->s[(t + 3) * a->g_stride + g], a->s[(t + 2) * a->g_stride + g],
						     a->s[(t + 1) * a->g_stride + g], a->s[t * a->g_stride + g]);
			const __m512 mv = _mm512_set_ps(m[3], m[3], m[3], m[3], m[2], m[2], m[2], m[2], m[1], m[1], m[1],
							m[1], m[0], m[0], m[0], m[0]);
			summs = _mm512_fmadd_ps(mv, _mm512_broadcast_f32x4(sv), summs);
		}
	}
	float sm[16];
	_mm512_storeu_ps(sm, summs);
	for (int i = 0; i < 4; i++)
		for (int p = 0; p < 2; p++) {
			Y[(t + 2 * p) * ldy + r + i] = hsum8(_mm512_castps512_ps256(acc[i][p])) + (q41 ? sm[4 * i + 2 * p] : 0.0f);
			Y[(t + 2 * p + 1) * ldy + r + i] =
				hsum8(_mm512_extractf32x8_ps(acc[i][p], 1)) + (q41 ? sm[4 * i + 2 * p + 1] : 0.0f);
		}
}

static inline __attribute__((always_inline)) void gemm44(const int q41, int64_t k, const uint8_t *W, uint64_t rb,
							  int64_t r0, int64_t r1, const weft_qact *a, int64_t t0,
							  int64_t t1, float *Y, int64_t ldy)
{
	const weft_dot_fn dot = q41 ? dot_q4_1 : dot_q8_0;
	for (int64_t t = t0; t < t1; t += 4) {
		const int nt = t1 - t < 4 ? (int)(t1 - t) : 4;
		int64_t r = r0;
		if (nt == 4)
			for (; r + 4 <= r1; r += 4)
				tile44(q41, k, W, rb, r, a, t, Y, ldy);
		for (; r < r1; r++)
			dot(k, W + (uint64_t)r * rb, a, t, nt, Y + t * ldy + r, ldy);
	}
}

static void gemm_q4_1(int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1, const weft_qact *a,
		      int64_t t0, int64_t t1, float *Y, int64_t ldy)
{
	gemm44(1, k, W, rb, r0, r1, a, t0, t1, Y, ldy);
}

static void gemm_q8_0(int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1, const weft_qact *a,
		      int64_t t0, int64_t t1, float *Y, int64_t ldy)
{
	gemm44(0, k, W, rb, r0, r1, a, t0, t1, Y, ldy);
}

void weft_kern_llamacpp_init(weft_kern *k)
{
	k->dot[WEFT_TYPE_Q4_1] = dot_q4_1;
	k->gemm[WEFT_TYPE_Q4_1] = gemm_q4_1;
	k->dot[WEFT_TYPE_Q8_0] = dot_q8_0;
	k->gemm[WEFT_TYPE_Q8_0] = gemm_q8_0;
	k->dot[WEFT_TYPE_Q4_0] = dot_q4_0;
	k->gemm[WEFT_TYPE_Q4_0] = NULL;
	k->dot8[WEFT_TYPE_Q4_0] = dot_q4_0r;
	k->gemm8[WEFT_TYPE_Q4_0] = NULL;
}

int weft_kernels_llamacpp_exact(uint32_t wtype)
{
	return wtype == WEFT_TYPE_Q4_0 || wtype == WEFT_TYPE_Q4_1 || wtype == WEFT_TYPE_Q8_0;
}

/* ---- ops ---- */

static void rot_fused(float *p0, float *p1, float c, float s)
{
	const float x0 = *p0, x1 = *p1;
	*p0 = fmaf(x0, c, -(x1 * s));
	*p1 = fmaf(x0, s, x1 * c);
}

static void rope_llamacpp(float *x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float freq_base,
			  float freq_scale, int neox)
{
	weft_rope_pairs(x, n_heads, head_dim, rot_dim, pos, freq_base, freq_scale, neox, rot_fused);
}

/* ggml_v_expf, AVX-512 version, one lane. */
static float v_expf(float x)
{
	const float r = 0x1.8p23f;
	const float z = fmaf(x, 0x1.715476p+0f, r);
	const float n = z - r;
	const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
	const float u = b * b;
	const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
			     u, fmaf(0x1.ffffecp-1f, b, 1.0f));
	if (n != n)
		return n; /* NaN in, NaN out (as scalef), and no cast of a NaN */
	if (fabsf(n) > 192.0f)
		return n <= 0.0f ? 0.0f : INFINITY;
	const int e = (int)n;
	if (e >= -126 && e <= 127) { /* j * 2^e, one rounding, as scalef and ldexpf */
		const uint32_t bits = (uint32_t)(e + 127) << 23;
		float p2;
		memcpy(&p2, &bits, 4);
		return j * p2;
	}
	return ldexpf(j, e); /* _mm512_scalef_ps(j, n) */
}

static void swiglu_llamacpp(float *y, const float *gate, const float *up, int64_t n)
{
	const int64_t nv = n & ~(int64_t)15; /* the 16-lane loop, then ggml_silu_f32 */
	for (int64_t i = 0; i < nv; i++) {
		const float g = gate[i];
		y[i] = g / (1.0f + v_expf(0.0f - g)) * up[i];
	}
	for (int64_t i = nv; i < n; i++) {
		const float g = gate[i];
		y[i] = g / (1.0f + expf(-g)) * up[i];
	}
}

/* ggml_vec_dot_f16 (AVX-512: 4 accumulators of 16 lanes over steps of 64,
 * reduced 0+2, 1+3, then 0+1, then _mm512_reduce_add_ps; leftovers added
 * in double). */
static float dot_f16(const uint16_t *x, const uint16_t *yq, int n)
{
	float lane[64] = {0};
	const int np = n & ~63;
	for (int i = 0; i < np; i += 64)
		for (int l = 0; l < 64; l++)
			lane[l] = fmaf(_cvtsh_ss(x[i + l]), _cvtsh_ss(yq[i + l]), lane[l]);
	float v[16], t8[8], t4[4];
	for (int l = 0; l < 16; l++)
		v[l] = (lane[l] + lane[32 + l]) + (lane[16 + l] + lane[48 + l]);
	for (int l = 0; l < 8; l++)
		t8[l] = v[8 + l] + v[l];
	for (int l = 0; l < 4; l++)
		t4[l] = t8[4 + l] + t8[l];
	double sum = (double)((t4[0] + t4[2]) + (t4[1] + t4[3]));
	for (int i = np; i < n; i++)
		sum += (double)(_cvtsh_ss(x[i]) * _cvtsh_ss(yq[i]));
	return (float)sum;
}

static void attn_rows_llamacpp(const weft_attn_args *a, int h, int64_t t0, int64_t t1, float *st)
{
	const int hd = a->hd;
	const int g = h / (a->n_head / a->n_head_kv);
	const uint16_t *K = (const uint16_t *)a->K + weft_attn_head0(a, g) * hd;
	const uint16_t *V = (const uint16_t *)a->V + weft_attn_head0(a, g) * hd;
	uint16_t q16[WEFT_ATTN_MAX_HD];
	float acc[WEFT_ATTN_MAX_HD];
	for (int64_t t = t0; t < t1; t++) {
		const float *q = a->Q + (t * a->n_head + h) * hd;
		float *o = a->out + (t * a->n_head + h) * hd;
		const int64_t n = weft_attn_visible(a, g, t);
		for (int d = 0; d < hd; d++)
			q16[d] = _cvtss_sh(q[d], _MM_FROUND_TO_NEAREST_INT);
		float M = -INFINITY, S = 0.0f;
		memset(acc, 0, sizeof(float) * (size_t)hd); /* values are always halves */
		for (int64_t j = 0; j < n; j++) {
			const float s = dot_f16(K + j * hd, q16, hd) * a->scale;
			const float Mold = M;
			float ms = 1.0f, vs = 1.0f;
			if (s > M) {
				M = s;
				ms = expf(Mold - M);
				for (int d = 0; d < hd; d++)
					acc[d] = f16r(acc[d] * ms);
			} else {
				vs = expf(s - M);
			}
			const uint16_t *vr = V + j * hd;
			for (int d = 0; d < hd; d++)
				acc[d] = f16r(fmaf(_cvtsh_ss(vr[d]), vs, acc[d]));
			S = fmaf(S, ms, vs);
		}
		const float inv = S == 0.0f ? 0.0f : 1.0f / S;
		for (int d = 0; d < hd; d++)
			o[d] = acc[d] * inv;
		if (st) {
			st[2 * (t - t0)] = n > 0 ? M : 0.0f;
			st[2 * (t - t0) + 1] = S;
		}
	}
}

/* _mm512_reduce_add_ps as gcc expands it: 8 + 8, 4 + 4, (0+2) + (1+3). */
static float reduce16(const float *v)
{
	float t8[8], t4[4];
	for (int l = 0; l < 8; l++)
		t8[l] = v[8 + l] + v[l];
	for (int l = 0; l < 4; l++)
		t4[l] = t8[4 + l] + t8[l];
	return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

#define TILE 64 /* GGML_FA_TILE_Q and GGML_FA_TILE_KV */

/* ggml_compute_forward_flash_attn_ext_tiled, which llama.cpp runs when a
 * batch has 64 or more query rows: per row, keys in tiles of 64 cells from
 * cell 0; each score a float32 fma chain over the head dimension (the
 * query not rounded), times scale; the tile's max updates the running max
 * M (rescaling the float32 V sum and S by expf(M_old - M)); weights
 * ggml_v_expf(s - M), summed per 16 (_mm512_reduce_add_ps) into a double
 * that S (float) is added to; each V sum element an fma chain over the
 * tile's keys.  Rows are independent of the tiling of query rows. */
#define GROUP 8 /* query rows sharing each transposed K tile */

static void attn_rows_tiled(const weft_attn_args *a, int h, int64_t t0, int64_t t1, float *st)
{
	const int hd = a->hd;
	const int g = h / (a->n_head / a->n_head_kv);
	const uint16_t *K = (const uint16_t *)a->K + weft_attn_head0(a, g) * hd;
	const uint16_t *V = (const uint16_t *)a->V + weft_attn_head0(a, g) * hd;
	float kt[8 * TILE], sc[GROUP][TILE], acc[GROUP][WEFT_ATTN_MAX_HD];
	for (int64_t r0 = t0; r0 < t1; r0 += GROUP) {
		const int nr = t1 - r0 < GROUP ? (int)(t1 - r0) : GROUP;
		float M[GROUP], S[GROUP];
		int64_t n[GROUP] = {0};
		for (int r = 0; r < nr; r++) {
			M[r] = -INFINITY, S[r] = 0.0f;
			n[r] = weft_attn_visible(a, g, r0 + r);
			memset(acc[r], 0, sizeof(float) * (size_t)hd);
		}
		const int64_t nmax = n[nr - 1]; /* rows see more keys as t grows */
		for (int64_t ic = 0; ic < nmax; ic += TILE) {
			const int kvt = nmax - ic < TILE ? (int)(nmax - ic) : TILE;
			/* scores: per (row, key) an fma chain over the head dimension,
			 * 8 dimensions of the tile's keys transposed at a time */
			for (int r = 0; r < nr; r++)
				memset(sc[r], 0, sizeof sc[r]);
			for (int d0 = 0; d0 < hd; d0 += 8) {
				const int nd = hd - d0 < 8 ? hd - d0 : 8;
				for (int tk = 0; tk < TILE; tk++)
					for (int d = 0; d < nd; d++)
						kt[d * TILE + tk] = tk < kvt ? _cvtsh_ss(K[(ic + tk) * hd + d0 + d]) : 0.0f;
				for (int r = 0; r < nr; r++) {
					const float *q = a->Q + ((r0 + r) * a->n_head + h) * hd + d0;
					for (int kg = 0; kg < TILE; kg += 8) {
						__m256 sv = _mm256_loadu_ps(sc[r] + kg);
						for (int d = 0; d < nd; d++)
							sv = _mm256_fmadd_ps(_mm256_set1_ps(q[d]), _mm256_loadu_ps(kt + d * TILE + kg), sv);
						_mm256_storeu_ps(sc[r] + kg, sv);
					}
				}
			}
			for (int r = 0; r < nr; r++) {
				float *p = sc[r];
				const int vis = n[r] - ic < 0 ? 0 : n[r] - ic < kvt ? (int)(n[r] - ic) : kvt;
				if (vis == 0)
					continue; /* a row that sees none of this tile */
				for (int tk = 0; tk < TILE; tk++)
					p[tk] = tk < vis ? p[tk] * a->scale : -INFINITY;
				float tmax = -INFINITY; /* ggml_vec_max_f32: MAX(max, x), a NaN carried on */
				for (int tk = 0; tk < TILE; tk++)
					tmax = tmax > p[tk] ? tmax : p[tk];
				if (tmax == -INFINITY)
					continue; /* ggml skips the row for this tile */
				const float Mnew = fmaxf(M[r], tmax);
				if (Mnew > M[r]) {
					const float ms = expf(M[r] - Mnew);
					for (int d = 0; d < hd; d++)
						acc[r][d] *= ms;
					S[r] *= ms;
				}
				M[r] = Mnew;
				double sum = 0.0;
				for (int g16 = 0; g16 < TILE; g16 += 16) {
					for (int l = 0; l < 16; l++)
						p[g16 + l] = v_expf(p[g16 + l] - Mnew);
					sum += (double)reduce16(p + g16);
				}
				S[r] = (float)((double)S[r] + sum);
				int d = 0;
				for (; d + 8 <= hd; d += 8) {
					__m256 av = _mm256_loadu_ps(acc[r] + d);
					for (int tk = 0; tk < vis; tk++)
						av = _mm256_fmadd_ps(_mm256_set1_ps(p[tk]),
								     _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(V + (ic + tk) * hd + d))),
								     av);
					_mm256_storeu_ps(acc[r] + d, av);
				}
				for (; d < hd; d++)
					for (int tk = 0; tk < vis; tk++)
						acc[r][d] = fmaf(p[tk], _cvtsh_ss(V[(ic + tk) * hd + d]), acc[r][d]);
			}
		}
		for (int r = 0; r < nr; r++) {
			const int64_t t = r0 + r;
			float *o = a->out + (t * a->n_head + h) * hd;
			const float inv = S[r] == 0.0f ? 0.0f : 1.0f / S[r];
			for (int d = 0; d < hd; d++)
				o[d] = acc[r][d] * inv;
			if (st) {
				st[2 * (t - t0)] = n[r] > 0 ? M[r] : 0.0f;
				st[2 * (t - t0) + 1] = S[r];
			}
		}
	}
}

/* llama.cpp picks its attention kernel by the batch's query rows. */
static void attn_rows_dispatch(const weft_attn_args *a, int h, int64_t t0, int64_t t1, float *st)
{
	(a->T >= TILE ? attn_rows_tiled : attn_rows_llamacpp)(a, h, t0, t1, st);
}

void weft_ops_llamacpp_init(weft_ops_vt *vt)
{
	vt->rope = rope_llamacpp;
	vt->swiglu = swiglu_llamacpp;
	vt->attn_rows = attn_rows_dispatch;
	vt->attn_mass = weft_attn_mass_ref;
	vt->attn_kv_types = 1u << WEFT_TYPE_F16;
	vt->attn_ext = 0; /* its kernels read plain rows only */
	vt->attn_rows_grp = NULL;
}

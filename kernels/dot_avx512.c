/* dot_avx512.c - AVX-512 (F/BW/VL/DQ + VNNI) row kernels for weft_matmul.
 *
 * Integer types: each 64 weights are decoded once into unsigned bytes
 * (Q8_0 with its sign bit flipped, i.e. +128; others as stored) and a
 * float scale per 32-bit lane; then for each of up to WEFT_NT tokens one
 * vpdpbusd against the int8 activations, started from the activation's
 * precomputed -c*sum (the zero offset c of the type, so lanes hold exact
 * sums of (q - c) * x), converted to float and scaled.  Mins (Q4_1, Q5_1,
 * Q4_K, Q5_K) are added from the activation block sums.  Float types:
 * FMA over fp32 (F16/BF16 widened on load). */
#include "ggml_blocks.h"
#include "ggml_types.h"
#include "matmul_int.h"
#include "avx512_int.h"

#include <immintrin.h>
#include <string.h>

/* Per-token pointers into the converted activations. */
typedef struct tok {
	const int8_t *q;
	const float *dl, *s;
	const int32_t *corr, *bs;
} tok;

INLINE void tok_init(const weft_qact *a, int64_t t0, int nt, tok *x)
{
	for (int t = 0; t < nt; t++) {
		int64_t tt = t0 + t;
		x[t].q = a->q + tt * a->q_stride;
		x[t].dl = a->dl + tt * a->l_stride;
		x[t].corr = a->corr + tt * a->l_stride;
		x[t].bs = a->bs + tt * a->g_stride;
		x[t].s = a->s + tt * a->g_stride;
	}
}

/* 64 weights (wq, scale per lane wsc) at value i against NT tokens; lanes
 * outside m are ignored. */
INLINE void tokens64(const int NT, const int CORR, const tok *x, int64_t i, __m512i wq, __m512 wsc,
		     __mmask16 m, __m512 *acc)
{
	for (int t = 0; t < NT; t++) {
		__m512i xq = _mm512_maskz_loadu_epi32(m, x[t].q + i);
		__m512i s = CORR ? _mm512_maskz_loadu_epi32(m, x[t].corr + i / 4) : _mm512_setzero_si512();
		s = _mm512_dpbusd_epi32(s, wq, xq);
		__m512 xd = _mm512_maskz_loadu_ps(m, x[t].dl + i / 4);
		acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wsc, xd), acc[t]);
	}
}

INLINE void store(const int NT, const __m512 *acc, const float *extra, float *y, int64_t ldy)
{
	for (int t = 0; t < NT; t++)
		y[t * ldy] = _mm512_reduce_add_ps(acc[t]) + extra[t];
}

/* ---- blocks of 32: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 ---- */

#ifndef PREFETCH
/* Bytes ahead in the weight stream (a task's rows are contiguous) that the
 * row kernels prefetch: 4096 took SmolLM2 Q4_1 decode from ~313 to ~363
 * tokens/s on 2 threads (1024: ~304, 8192: ~340, 16384: ~312). */
#define PREFETCH 4096
#endif

INLINE void row32(const int NT, const int ty, int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0,
		  float *y, int64_t ldy)
{
	const int bytes = (int)(ty == T40 ? WEFT_SZ(q4_0) : ty == T41 ? WEFT_SZ(q4_1) : ty == T50 ? WEFT_SZ(q5_0) : ty == T51 ? WEFT_SZ(q5_1) : WEFT_SZ(q8_0));
	const int mins = ty == T41 || ty == T51, corr = !mins;
	tok x[WEFT_NT];
	tok_init(a, t0, NT, x);
	__m512 acc[WEFT_NT];
	float mt[WEFT_NT] = {0};
	for (int t = 0; t < NT; t++)
		acc[t] = _mm512_setzero_ps();
	int64_t nb = k / 32, g = 0;
	for (; g + 2 <= nb; g += 2) {
		const uint8_t *b0 = w + g * bytes, *b1 = b0 + bytes;
		_mm_prefetch((const char *)b0 + PREFETCH, _MM_HINT_T0);
		__m512i q = decode2(ty, b0, b1);
		tokens64(NT, corr, x, 32 * g, q, sc2(h2f(b0), h2f(b1)), 0xffff, acc);
		if (mins) {
			float m0 = h2f(b0 + WEFT_OFF(q4_1, m)), m1 = h2f(b1 + WEFT_OFF(q4_1, m));
			for (int t = 0; t < NT; t++)
				mt[t] += m0 * x[t].s[g] + m1 * x[t].s[g + 1];
		}
	}
	if (g < nb) {
		const uint8_t *b0 = w + g * bytes;
		__m512i q = decode2(ty, b0, b0);
		tokens64(NT, corr, x, 32 * g, q, sc2(h2f(b0), 0), 0x00ff, acc);
		if (mins)
			for (int t = 0; t < NT; t++)
				mt[t] += h2f(b0 + WEFT_OFF(q4_1, m)) * x[t].s[g];
	}
	store(NT, acc, mt, y, ldy);
}

/* ---- K-quants (superblocks of 256, activations Q8_K) ---- */

static void scale_min_k4(const uint8_t *s, float d, float *sc, int *m)
{
	for (int j = 0; j < 8; j++) {
		int a, b;
		weft_scale_min_k4(j, s, &a, &b);
		sc[j] = d * (float)a;
		m[j] = b;
	}
}

INLINE void row_q45k(const int NT, const int q5, int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0,
		     float *y, int64_t ldy)
{
	const int bytes = q5 ? (int)WEFT_SZ(q5_K) : (int)WEFT_SZ(q4_K);
	tok x[WEFT_NT];
	tok_init(a, t0, NT, x);
	__m512 acc[WEFT_NT];
	float mt[WEFT_NT] = {0};
	for (int t = 0; t < NT; t++)
		acc[t] = _mm512_setzero_ps();
	const __m512i sh = _mm512_set_epi64(4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL,
					    4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL, 0, 0, 0, 0);
	for (int64_t b = 0; b < k / 256; b++, w += bytes) {
		for (int o = 0; o < bytes; o += 64)
			_mm_prefetch((const char *)w + PREFETCH + o, _MM_HINT_T0);
		float sc[8], dmin = h2f(w + WEFT_OFF(q4_K, dmin));
		int m[8];
		scale_min_k4(w + WEFT_OFF(q4_K, scales), h2f(w), sc, m);
		const uint8_t *qs = w + (q5 ? WEFT_OFF(q5_K, qs) : WEFT_OFF(q4_K, qs));
		__m512i qhv = _mm512_setzero_si512();
		if (q5) {
			__m256i qh = _mm256_loadu_si256((const __m256i *)(w + WEFT_OFF(q5_K, qh)));
			qhv = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
		}
		for (int c = 0; c < 4; c++) {
			__m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
			__m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(v), v, 1);
			q = _mm512_and_si512(_mm512_srlv_epi16(q, sh), _mm512_set1_epi8(0x0f));
			if (q5) {
				__m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))),
								 _mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);
				__mmask64 hm = _mm512_test_epi8_mask(qhv, bit);
				q = _mm512_mask_add_epi8(q, hm, q, _mm512_set1_epi8(16));
			}
			tokens64(NT, 0, x, 256 * b + 64 * c, q, sc2(sc[2 * c], sc[2 * c + 1]), 0xffff, acc);
		}
		for (int t = 0; t < NT; t++) {
			int summ = 0;
			for (int j = 0; j < 8; j++)
				summ += m[j] * x[t].bs[8 * b + j];
			mt[t] -= dmin * x[t].dl[64 * b] * (float)summ;
		}
	}
	store(NT, acc, mt, y, ldy);
}

INLINE void row_q6k(const int NT, int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, float *y,
		    int64_t ldy)
{
	tok x[WEFT_NT];
	tok_init(a, t0, NT, x);
	__m512 acc[WEFT_NT];
	float mt[WEFT_NT] = {0};
	for (int t = 0; t < NT; t++)
		acc[t] = _mm512_setzero_ps();
	const __m512i idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
	for (int64_t b = 0; b < k / 256; b++, w += WEFT_SZ(q6_K)) {
		for (int o = 0; o < (int)WEFT_SZ(q6_K); o += 64)
			_mm_prefetch((const char *)w + PREFETCH + o, _MM_HINT_T0);
		float d = h2f(w + WEFT_OFF(q6_K, d));
		const int8_t *scl = (const int8_t *)(w + WEFT_OFF(q6_K, scales));
		for (int h = 0; h < 2; h++) {
			__m512i ql = _mm512_loadu_si512((const void *)(w + WEFT_OFF(q6_K, ql) + 64 * h));
			__m256i qh = _mm256_loadu_si256((const __m256i *)(w + WEFT_OFF(q6_K, qh) + 32 * h));
			__m512i qhv = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
			for (int j = 0; j < 2; j++) {
				__m512i lo = _mm512_and_si512(j ? _mm512_srli_epi16(ql, 4) : ql, _mm512_set1_epi8(0x0f));
				__m512i sh = _mm512_inserti64x4(_mm512_set1_epi16((short)(4 * j)),
								_mm256_set1_epi16((short)(4 * j + 2)), 1);
				__m512i hi = _mm512_and_si512(_mm512_srlv_epi16(qhv, sh), _mm512_set1_epi8(3));
				__m512i q = _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
				int32_t s4;
				memcpy(&s4, scl + 8 * h + 4 * j, 4);
				__m128 f = _mm_mul_ps(_mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(s4))), _mm_set1_ps(d));
				__m512 wsc = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
				tokens64(NT, 1, x, 256 * b + 128 * h + 64 * j, q, wsc, 0xffff, acc);
			}
		}
	}
	store(NT, acc, mt, y, ldy);
}

/* ---- float types ---- */

INLINE void rowf(const int NT, const int ty, int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0,
		 float *y, int64_t ldy)
{
	const float *x[WEFT_NT];
	__m512 acc[2][WEFT_NT];
	for (int t = 0; t < NT; t++) {
		x[t] = a->f + (t0 + t) * a->f_stride;
		acc[0][t] = acc[1][t] = _mm512_setzero_ps();
	}
	int64_t i = 0;
	const int esz = ty == TF32 ? 4 : 2;
	for (; i + 32 <= k; i += 32) {
		_mm_prefetch((const char *)w + i * esz + PREFETCH, _MM_HINT_T0);
		if (esz == 4)
			_mm_prefetch((const char *)w + i * esz + PREFETCH + 64, _MM_HINT_T0);
		__m512 w0 = fload(ty, w, i, 0xffff), w1 = fload(ty, w, i + 16, 0xffff);
		for (int t = 0; t < NT; t++) {
			acc[0][t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[t] + i), acc[0][t]);
			acc[1][t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[t] + i + 16), acc[1][t]);
		}
	}
	for (; i < k; i += 16) {
		__mmask16 m = k - i >= 16 ? 0xffff : (__mmask16)((1u << (k - i)) - 1);
		__m512 w0 = fload(ty, w, i, m);
		for (int t = 0; t < NT; t++)
			acc[0][t] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x[t] + i), acc[0][t]);
	}
	for (int t = 0; t < NT; t++)
		y[t * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][t], acc[1][t]));
}

/* BF16 weights times bf16 activations with vdpbf16ps (AVX512_BF16): per
 * 32 values one instruction adds w[2i] x[2i] + w[2i+1] x[2i+1] into lane
 * i; even and odd 32-value chunks go to two accumulators (two dependency
 * chains), y = sum(acc0 + acc1).  gemm_avx512.c's tiles do the same
 * operations in the same order. */
INLINE void rowbh(const int NT, int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, float *y, int64_t ldy)
{
	const uint16_t *x[WEFT_NT];
	__m512 acc[2][WEFT_NT];
	for (int t = 0; t < NT; t++) {
		x[t] = a->h + (t0 + t) * a->h_stride;
		acc[0][t] = acc[1][t] = _mm512_setzero_ps();
	}
	const uint16_t *wh = (const uint16_t *)w;
	int64_t i = 0;
	for (; i + 64 <= k; i += 64) {
		_mm_prefetch((const char *)(wh + i) + PREFETCH, _MM_HINT_T0);
		_mm_prefetch((const char *)(wh + i) + PREFETCH + 64, _MM_HINT_T0);
		const __m512bh w0 = (__m512bh)_mm512_loadu_si512((const void *)(wh + i));
		const __m512bh w1 = (__m512bh)_mm512_loadu_si512((const void *)(wh + i + 32));
		for (int t = 0; t < NT; t++) {
			acc[0][t] = _mm512_dpbf16_ps(acc[0][t], w0, (__m512bh)_mm512_loadu_si512((const void *)(x[t] + i)));
			acc[1][t] = _mm512_dpbf16_ps(acc[1][t], w1, (__m512bh)_mm512_loadu_si512((const void *)(x[t] + i + 32)));
		}
	}
	for (int c = 0; i < k; i += 32, c++) { /* at most two chunks: even, then odd */
		const __mmask32 m = k - i >= 32 ? 0xffffffffu : (__mmask32)((1u << (k - i)) - 1);
		const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, wh + i);
		for (int t = 0; t < NT; t++) {
			const __m512bh xv = (__m512bh)_mm512_loadu_si512((const void *)(x[t] + i));
			if (c == 0)
				acc[0][t] = _mm512_dpbf16_ps(acc[0][t], wv, xv);
			else
				acc[1][t] = _mm512_dpbf16_ps(acc[1][t], wv, xv);
		}
	}
	for (int t = 0; t < NT; t++)
		y[t * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][t], acc[1][t]));
}

/* ---- entry points: one per type, specialised per token count ---- */

#define BY_NT(call)                                                                                  \
	switch (nt) {                                                                                \
	case 1: { const int NT = 1; call; } break;                                                   \
	case 2: { const int NT = 2; call; } break;                                                   \
	case 3: { const int NT = 3; call; } break;                                                   \
	default: { const int NT = 4; call; } break;                                                  \
	}

#define ENTRY(name, call)                                                                            \
	static void name(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt, float *y, \
			 int64_t ldy)                                                                \
	{                                                                                            \
		BY_NT(call)                                                                          \
	}

ENTRY(k_q4_0, row32(NT, T40, k, w, a, t0, y, ldy))
ENTRY(k_q4_1, row32(NT, T41, k, w, a, t0, y, ldy))
ENTRY(k_q5_0, row32(NT, T50, k, w, a, t0, y, ldy))
ENTRY(k_q5_1, row32(NT, T51, k, w, a, t0, y, ldy))
ENTRY(k_q8_0, row32(NT, T80, k, w, a, t0, y, ldy))
ENTRY(k_q4_k, row_q45k(NT, 0, k, w, a, t0, y, ldy))
ENTRY(k_q5_k, row_q45k(NT, 1, k, w, a, t0, y, ldy))
ENTRY(k_q6_k, row_q6k(NT, k, w, a, t0, y, ldy))
ENTRY(k_f32, rowf(NT, TF32, k, w, a, t0, y, ldy))
ENTRY(k_f16, rowf(NT, TF16, k, w, a, t0, y, ldy))
ENTRY(k_bf16, rowf(NT, TBF16, k, w, a, t0, y, ldy))
ENTRY(k_bf16_dp, if (a->h) rowbh(NT, k, w, a, t0, y, ldy); else rowf(NT, TBF16, k, w, a, t0, y, ldy))

void weft_kern_avx512_init(weft_kern *k, int have_bf16)
{
	k->dot[WEFT_TYPE_Q4_0] = k_q4_0;
	k->dot[WEFT_TYPE_Q4_1] = k_q4_1;
	k->dot[WEFT_TYPE_Q5_0] = k_q5_0;
	k->dot[WEFT_TYPE_Q5_1] = k_q5_1;
	k->dot[WEFT_TYPE_Q8_0] = k_q8_0;
	k->dot[WEFT_TYPE_Q4_K] = k_q4_k;
	k->dot[WEFT_TYPE_Q5_K] = k_q5_k;
	k->dot[WEFT_TYPE_Q6_K] = k_q6_k;
	k->dot[WEFT_TYPE_F32] = k_f32;
	k->dot[WEFT_TYPE_F16] = k_f16;
	k->dot[WEFT_TYPE_BF16] = have_bf16 ? k_bf16_dp : k_bf16;
	k->bf16_act = have_bf16;
}

/* dot_avx2.c - AVX2 + FMA + F16C row kernels for weft_matmul.
 *
 * As dot_avx512.c at 256 bits: each block of 32 weights is decoded once
 * into unsigned bytes and a float scale per 32-bit lane, then for each
 * token vpmaddubsw + vpmaddwd (no saturation: weights are at most 6 bits
 * here) give exact per-lane sums, plus the activation's -c*sum correction.
 * Q8_0 keeps its signed weights and uses the |w|, sign(x, w) trick. */
#include "ggml_blocks.h"
#include "avx2_int.h"
#include "ggml_types.h"
#include "matmul_int.h"
#include "util.h"

#include <immintrin.h>
#include <string.h>

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

/* 32 weights at value i against NT tokens.  SGN: wq holds signed weights. */
INLINE void tokens32(const int NT, const int CORR, const int SGN, const tok *x, int64_t i, __m256i wq,
		     __m256 wsc, __m256 *acc)
{
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i wu = SGN ? _mm256_sign_epi8(wq, wq) : wq;
	for (int t = 0; t < NT; t++) {
		__m256i xq = _mm256_loadu_si256((const __m256i *)(x[t].q + i));
		if (SGN)
			xq = _mm256_sign_epi8(xq, wq);
		__m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, xq), ones);
		if (CORR)
			s = _mm256_add_epi32(s, _mm256_loadu_si256((const __m256i *)(x[t].corr + i / 4)));
		__m256 xd = _mm256_loadu_ps(x[t].dl + i / 4);
		acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(wsc, xd), acc[t]);
	}
}

INLINE void store(const int NT, const __m256 *acc, const float *extra, float *y, int64_t ldy)
{
	for (int t = 0; t < NT; t++)
		y[t * ldy] = hsum8(acc[t]) + extra[t];
}

/* 16 bytes of nibbles as 32 bytes: low nibbles, then high nibbles. */
enum { T40, T41, T50, T51, T80 };

/* Bytes ahead in the weight stream that the row kernels prefetch (as
 * dot_avx512.c's). */
#define PREFETCH 4096

INLINE void row32(const int NT, const int ty, int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0,
		  float *y, int64_t ldy)
{
	const int bytes = (int)(ty == T40 ? WEFT_SZ(q4_0) : ty == T41 ? WEFT_SZ(q4_1) : ty == T50 ? WEFT_SZ(q5_0) : ty == T51 ? WEFT_SZ(q5_1) : WEFT_SZ(q8_0));
	const int mins = ty == T41 || ty == T51;
	tok x[WEFT_NT];
	tok_init(a, t0, NT, x);
	__m256 acc[WEFT_NT];
	float mt[WEFT_NT] = {0};
	for (int t = 0; t < NT; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t g = 0; g < k / 32; g++, w += bytes) {
		_mm_prefetch((const char *)w + PREFETCH, _MM_HINT_T0);
		__m256i q;
		switch (ty) {
		case T40: q = nib(w + WEFT_OFF(q4_0, qs)); break;
		case T41: q = nib(w + WEFT_OFF(q4_1, qs)); break;
		case T50: q = _mm256_or_si256(nib(w + WEFT_OFF(q5_0, qs)), bits16(ld32(w + WEFT_OFF(q5_0, qh)))); break;
		case T51: q = _mm256_or_si256(nib(w + WEFT_OFF(q5_1, qs)), bits16(ld32(w + WEFT_OFF(q5_1, qh)))); break;
		default: q = _mm256_loadu_si256((const __m256i *)(w + WEFT_OFF(q8_0, qs))); break;
		}
		if (ty == T80)
			tokens32(NT, 0, 1, x, 32 * g, q, _mm256_set1_ps(h2f(w)), acc);
		else
			tokens32(NT, !mins, 0, x, 32 * g, q, _mm256_set1_ps(h2f(w)), acc);
		if (mins) {
			float m = h2f(w + WEFT_OFF(q4_1, m)); /* at the same offset in Q5_1 */
			for (int t = 0; t < NT; t++)
				mt[t] += m * x[t].s[g];
		}
	}
	store(NT, acc, mt, y, ldy);
}

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
	__m256 acc[WEFT_NT];
	float mt[WEFT_NT] = {0};
	for (int t = 0; t < NT; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t b = 0; b < k / 256; b++, w += bytes) {
		for (int o = 0; o < bytes; o += 64)
			_mm_prefetch((const char *)w + PREFETCH + o, _MM_HINT_T0);
		float sc[8], dmin = h2f(w + WEFT_OFF(q4_K, dmin));
		int m[8];
		scale_min_k4(w + WEFT_OFF(q4_K, scales), h2f(w), sc, m);
		const uint8_t *qs = w + (q5 ? WEFT_OFF(q5_K, qs) : WEFT_OFF(q4_K, qs));
		__m256i qh = q5 ? _mm256_loadu_si256((const __m256i *)(w + WEFT_OFF(q5_K, qh))) : _mm256_setzero_si256();
		for (int j = 0; j < 8; j++) {
			__m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
			__m256i q = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0f));
			if (q5) {
				__m256i bit = _mm256_set1_epi8((char)(1 << j));
				__m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
				q = _mm256_or_si256(q, _mm256_and_si256(hb, _mm256_set1_epi8(16)));
			}
			tokens32(NT, 0, 0, x, 256 * b + 32 * j, q, _mm256_set1_ps(sc[j]), acc);
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
	__m256 acc[WEFT_NT];
	float mt[WEFT_NT] = {0};
	for (int t = 0; t < NT; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t b = 0; b < k / 256; b++, w += WEFT_SZ(q6_K)) {
		for (int o = 0; o < (int)WEFT_SZ(q6_K); o += 64)
			_mm_prefetch((const char *)w + PREFETCH + o, _MM_HINT_T0);
		float d = h2f(w + WEFT_OFF(q6_K, d));
		const int8_t *scl = (const int8_t *)(w + WEFT_OFF(q6_K, scales));
		for (int h = 0; h < 2; h++) {
			__m256i qh = _mm256_loadu_si256((const __m256i *)(w + WEFT_OFF(q6_K, qh) + 32 * h));
			for (int kk = 0; kk < 4; kk++) {
				__m256i l = _mm256_loadu_si256((const __m256i *)(w + WEFT_OFF(q6_K, ql) + 64 * h + 32 * (kk & 1)));
				__m256i lo = _mm256_and_si256(kk < 2 ? l : _mm256_srli_epi16(l, 4), _mm256_set1_epi8(0x0f));
				__m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * kk), _mm256_set1_epi8(3));
				__m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
				__m256 wsc = _mm256_set_m128(_mm_set1_ps(d * (float)scl[8 * h + 2 * kk + 1]),
							     _mm_set1_ps(d * (float)scl[8 * h + 2 * kk]));
				tokens32(NT, 1, 0, x, 256 * b + 128 * h + 32 * kk, q, wsc, acc);
			}
		}
	}
	store(NT, acc, mt, y, ldy);
}

INLINE void rowf(const int NT, const int ty, int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0,
		 float *y, int64_t ldy)
{
	const float *x[WEFT_NT];
	__m256 acc[2][WEFT_NT];
	for (int t = 0; t < NT; t++) {
		x[t] = a->f + (t0 + t) * a->f_stride;
		acc[0][t] = acc[1][t] = _mm256_setzero_ps();
	}
	int64_t i = 0;
	for (; i + 16 <= k; i += 16) {
		_mm_prefetch((const char *)w + i * (ty == TF32 ? 4 : 2) + PREFETCH, _MM_HINT_T0);
		__m256 w0 = fload(ty, w, i), w1 = fload(ty, w, i + 8);
		for (int t = 0; t < NT; t++) {
			acc[0][t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + i), acc[0][t]);
			acc[1][t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[t] + i + 8), acc[1][t]);
		}
	}
	float tail[WEFT_NT] = {0};
	for (; i < k; i++) {
		float wv = fscalar(ty, w, i);
		for (int t = 0; t < NT; t++)
			tail[t] += wv * x[t][i];
	}
	for (int t = 0; t < NT; t++)
		y[t * ldy] = hsum8(_mm256_add_ps(acc[0][t], acc[1][t])) + tail[t];
}

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

static void round_f16(float *y, const float *x, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
	for (; i < n; i++)
		y[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

/* As ref_dot.c's: x + 0x7fff + (bit 16 of x), the high half; NaN: the high
 * half with the quiet bit set. */
static void round_bf16(float *f, uint16_t *h, const float *x, int64_t n)
{
	const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
	const __m256i r = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(64);
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		const __m256i b = _mm256_castps_si256(_mm256_loadu_ps(x + i));
		const __m256i hi = _mm256_srli_epi32(b, 16);
		const __m256i rn = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(r, _mm256_and_si256(hi, one))), 16);
		const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(b, abs), inf);
		const __m256i v = _mm256_blendv_epi8(rn, _mm256_or_si256(hi, quiet), nan);
		_mm256_storeu_ps(f + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
		if (h)
			_mm_storeu_si128((__m128i *)(h + i),
					 _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
	}
	for (; i < n; i++) {
		const uint16_t bv = weft_fp32_to_bf16(x[i]);
		f[i] = weft_bf16_to_fp32(bv);
		if (h)
			h[i] = bv;
	}
}

void weft_kern_avx2_init(weft_kern *k)
{
	k->round_f16 = round_f16;
	k->round_bf16 = round_bf16;
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
	k->dot[WEFT_TYPE_BF16] = k_bf16;
}

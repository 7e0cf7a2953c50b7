/* gemm_avx2.c - AVX2 + FMA + F16C register-tiled GEMM for weft_matmul
 * with T > 1 tokens (as gemm_avx512.c at 256 bits).
 *
 * A call computes a block of rows x tokens (matmul.c sizes it so the
 * block's weights stay in L2); inside it, token groups of C run over the
 * rows in groups of R, and each micro-kernel keeps an R x C tile of
 * 8-lane accumulators in registers, so each weight vector is decoded once
 * for C tokens and each activation vector is loaded once for R rows.
 *
 *   Blocks of 32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and K-quants (Q4_K,
 *   Q5_K, Q6_K): 2 x 4 tiles; per 32 weights the decode of dot_avx2.c,
 *   then per (row, token) vpmaddubsw + vpmaddwd (+ the activation's -c*sum),
 *   a conversion and an FMA by scale(w) * scale(x).  Mins (Q4_1, Q5_1,
 *   Q4_K, Q5_K) 4 tokens per vector from weft_qact.st.
 *   Floats (F32, F16, BF16): 3 x 4 tiles of fp32 FMA; dot_avx2.c's rowf
 *   keeps two accumulators per output (values 16m .. 16m+7 and
 *   16m+8 .. 16m+15), which would not fit the registers twice, so they
 *   are two passes over k, the first parked in memory.
 *
 * Every output is computed by the same sequence of floating-point
 * operations as dot_avx2.c's row kernel computes it (edge tiles only
 * have fewer rows / tokens), so a token's result depends neither on the
 * thread count nor on the tokens beside it (tests/unit/test_matmul.c
 * batch_equals_single).  Note: like dot_avx2.c's scalar mins / tails,
 * this relies on -std=c11 (no FP contraction of a * b + c). */
#include "ggml_blocks.h"
#include "avx2_int.h"
#include "ggml_types.h"
#include "matmul_int.h"

#include <immintrin.h>
#include <string.h>

/* the tile loops must be fully unrolled to keep the accumulators in
 * registers (-O2 does not do it by itself) */
#define UNROLL _Pragma("GCC unroll 16")

/* ---- float types ---- */

#define FR 3 /* rows per tile */
#define FC 4 /* tokens per tile */

INLINE void fpass(const int R, const int C, const int ty, int64_t k16, const uint8_t *w, uint64_t rb,
		  const float *const *x, int off, __m256 acc[FR][FC])
{
	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int t = 0; t < C; t++)
			acc[r][t] = _mm256_setzero_ps();
	for (int64_t i = off; i < k16; i += 16) {
		__m256 wv[FR];
		UNROLL
		for (int r = 0; r < R; r++)
			wv[r] = fload(ty, w + r * rb, i);
		UNROLL
		for (int t = 0; t < C; t++) {
			__m256 xv = _mm256_loadu_ps(x[t] + i);
			UNROLL
			for (int r = 0; r < R; r++)
				acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
		}
	}
}

/* As rowf: acc0 values 16m .. 16m+7, acc1 16m+8 .. 16m+15, a scalar tail
 * past the last 16, y = hsum8(acc0 + acc1) + tail.  Two R x C tiles of
 * accumulators would not fit the registers: two passes, acc0 parked. */
INLINE void tilef(const int R, const int C, const int ty, int64_t k, const uint8_t *w, uint64_t rb,
		  const float *const *x, float *y, int64_t ldy)
{
	const int64_t k16 = k / 16 * 16;
	__m256 acc0[FR][FC], acc1[FR][FC];
	fpass(R, C, ty, k16, w, rb, x, 0, acc0);
	fpass(R, C, ty, k16, w, rb, x, 8, acc1);
	UNROLL
	for (int r = 0; r < R; r++) {
		const uint8_t *wr = w + r * rb;
		float tail[FC] = {0};
		for (int64_t i = k16; i < k; i++) {
			float wv = fscalar(ty, wr, i);
			UNROLL
			for (int t = 0; t < C; t++)
				tail[t] += wv * x[t][i];
		}
		UNROLL
		for (int t = 0; t < C; t++)
			y[t * ldy + r] = hsum8(_mm256_add_ps(acc0[r][t], acc1[r][t])) + tail[t];
	}
}

#define BY_C(R)                                                                                      \
	switch (C) {                                                                                 \
	case 4: tilef(R, 4, ty, k, w, rb, x, y, ldy); break;                                         \
	case 3: tilef(R, 3, ty, k, w, rb, x, y, ldy); break;                                         \
	case 2: tilef(R, 2, ty, k, w, rb, x, y, ldy); break;                                         \
	default: tilef(R, 1, ty, k, w, rb, x, y, ldy); break;                                        \
	}

INLINE void gemmf(const int ty, int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1,
		  const weft_qact *a, int64_t t0, int64_t t1, float *Y, int64_t ldy)
{
	for (int64_t t = t0; t < t1; t += FC) {
		int C = t1 - t < FC ? (int)(t1 - t) : FC;
		const float *x[FC];
		for (int i = 0; i < C; i++)
			x[i] = a->f + (t + i) * a->f_stride;
		int64_t r = r0;
		for (; r + FR <= r1; r += FR) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			BY_C(FR)
		}
		for (; r < r1; r++) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			BY_C(1)
		}
	}
}

/* ---- integer types ---- */

#define QR 2 /* rows per tile */
#define QC 4 /* tokens per tile (weft_qact.st holds 4 per vector) */

enum { T40, T41, T50, T51, T80, TQ4K, TQ5K, TQ6K };

typedef struct qtok {
	const int8_t *q;
	const float *dl;
	const int32_t *corr;
} qtok;

/* 16 bytes of nibbles as 32 bytes: low nibbles, then high nibbles. */
/* R x C partial products of 32 values at i: as dot_avx2.c's tokens32. */
INLINE void mac32(const int R, const int C, const int CORR, const int SGN, const qtok *x, int64_t i,
		  const __m256i *q, const __m256 *wsc, __m256 acc[QR][QC])
{
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i wu[QR];
	UNROLL
	for (int r = 0; r < R; r++)
		wu[r] = SGN ? _mm256_sign_epi8(q[r], q[r]) : q[r];
	UNROLL
	for (int t = 0; t < C; t++) {
		__m256i xq = _mm256_loadu_si256((const __m256i *)(x[t].q + i));
		__m256i cr = CORR ? _mm256_loadu_si256((const __m256i *)(x[t].corr + i / 4)) : _mm256_setzero_si256();
		__m256 xd = _mm256_loadu_ps(x[t].dl + i / 4);
		UNROLL
		for (int r = 0; r < R; r++) {
			__m256i xs = SGN ? _mm256_sign_epi8(xq, q[r]) : xq;
			__m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(wu[r], xs), ones);
			if (CORR)
				s = _mm256_add_epi32(s, cr);
			acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(wsc[r], xd), acc[r][t]);
		}
	}
}

INLINE void store_tile(const int R, const int C, __m256 acc[QR][QC], const __m128 *mt4, float *y, int64_t ldy)
{
	UNROLL
	for (int r = 0; r < R; r++) {
		float mt[4];
		_mm_storeu_ps(mt, mt4[r]);
		UNROLL
		for (int t = 0; t < C; t++)
			y[t * ldy + r] = hsum8(acc[r][t]) + mt[t];
	}
}

/* As row32: mt += m * s block by block (4 tokens per vector from st). */
INLINE void tile32(const int R, const int C, const int ty, int64_t k, const uint8_t *w, uint64_t rb,
		   const qtok *x, const float *st, float *y, int64_t ldy)
{
	const int bytes = (int)(ty == T40 ? WEFT_SZ(q4_0) : ty == T41 ? WEFT_SZ(q4_1) : ty == T50 ? WEFT_SZ(q5_0) : ty == T51 ? WEFT_SZ(q5_1) : WEFT_SZ(q8_0));
	const int mins = ty == T41 || ty == T51;
	__m256 acc[QR][QC];
	__m128 mt4[QR];
	UNROLL
	for (int r = 0; r < R; r++) {
		mt4[r] = _mm_setzero_ps();
		UNROLL
		for (int t = 0; t < C; t++)
			acc[r][t] = _mm256_setzero_ps();
	}
	for (int64_t g = 0; g < k / 32; g++) {
		__m256i q[QR];
		__m256 wsc[QR];
		UNROLL
		for (int r = 0; r < R; r++) {
			const uint8_t *b = w + r * rb + g * bytes;
			switch (ty) {
			case T40: q[r] = nib(b + WEFT_OFF(q4_0, qs)); break;
			case T41: q[r] = nib(b + WEFT_OFF(q4_1, qs)); break;
			case T50: q[r] = _mm256_or_si256(nib(b + WEFT_OFF(q5_0, qs)), bits16(ld32(b + WEFT_OFF(q5_0, qh)))); break;
			case T51: q[r] = _mm256_or_si256(nib(b + WEFT_OFF(q5_1, qs)), bits16(ld32(b + WEFT_OFF(q5_1, qh)))); break;
			default: q[r] = _mm256_loadu_si256((const __m256i *)(b + WEFT_OFF(q8_0, qs))); break;
			}
			wsc[r] = _mm256_set1_ps(h2f(b));
			if (mins)
				mt4[r] = _mm_add_ps(mt4[r], _mm_mul_ps(_mm_set1_ps(h2f(b + WEFT_OFF(q4_1, m))), _mm_loadu_ps(st + 4 * g)));
		}
		if (ty == T80)
			mac32(R, C, 0, 1, x, 32 * g, q, wsc, acc);
		else
			mac32(R, C, !mins, 0, x, 32 * g, q, wsc, acc);
	}
	store_tile(R, C, acc, mt4, y, ldy);
}

/* As dot_avx2.c's scale_min_k4 (d * scale as float, mins as int). */
INLINE void scale_min_k4(const uint8_t *s, float d, float *sc, float *m)
{
	for (int j = 0; j < 8; j++) {
		int a, b;
		weft_scale_min_k4(j, s, &a, &b);
		sc[j] = d * (float)a;
		m[j] = (float)b;
	}
}

/* As row_q45k / row_q6k.  Mins: mt -= dmin * d(x) * summ, summ an integer
 * below 2^24, so exact in float (fmadd of integers) whatever the order. */
INLINE void tilek(const int R, const int C, const int ty, int64_t k, const uint8_t *w, uint64_t rb,
		  const qtok *x, const float *st, float *y, int64_t ldy)
{
	const int bytes = (int)(ty == TQ4K ? WEFT_SZ(q4_K) : ty == TQ5K ? WEFT_SZ(q5_K) : WEFT_SZ(q6_K));
	__m256 acc[QR][QC];
	__m128 mt4[QR];
	UNROLL
	for (int r = 0; r < R; r++) {
		mt4[r] = _mm_setzero_ps();
		UNROLL
		for (int t = 0; t < C; t++)
			acc[r][t] = _mm256_setzero_ps();
	}
	for (int64_t b = 0; b < k / 256; b++) {
		if (ty == TQ6K) {
			for (int h = 0; h < 2; h++)
				for (int kk = 0; kk < 4; kk++) {
					__m256i q[QR];
					__m256 wsc[QR];
					UNROLL
					for (int r = 0; r < R; r++) {
						const uint8_t *wb = w + r * rb + b * bytes;
						float d = h2f(wb + WEFT_OFF(q6_K, d));
						const int8_t *scl = (const int8_t *)(wb + WEFT_OFF(q6_K, scales));
						__m256i qh = _mm256_loadu_si256((const __m256i *)(wb + WEFT_OFF(q6_K, qh) + 32 * h));
						__m256i l = _mm256_loadu_si256((const __m256i *)(wb + WEFT_OFF(q6_K, ql) + 64 * h + 32 * (kk & 1)));
						__m256i lo = _mm256_and_si256(kk < 2 ? l : _mm256_srli_epi16(l, 4), _mm256_set1_epi8(0x0f));
						__m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * kk), _mm256_set1_epi8(3));
						q[r] = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
						wsc[r] = _mm256_set_m128(_mm_set1_ps(d * (float)scl[8 * h + 2 * kk + 1]),
									 _mm_set1_ps(d * (float)scl[8 * h + 2 * kk]));
					}
					mac32(R, C, 1, 0, x, 256 * b + 128 * h + 32 * kk, q, wsc, acc);
				}
			continue;
		}
		const int q5 = ty == TQ5K;
		float sc[QR][8];
		__m128 dl4 = _mm_set_ps(C > 3 ? x[3].dl[64 * b] : 0.0f, C > 2 ? x[2].dl[64 * b] : 0.0f,
					C > 1 ? x[1].dl[64 * b] : 0.0f, x[0].dl[64 * b]);
		UNROLL
		for (int r = 0; r < R; r++) {
			const uint8_t *wb = w + r * rb + b * bytes;
			float m[8];
			scale_min_k4(wb + WEFT_OFF(q4_K, scales), h2f(wb), sc[r], m);
			__m128 summ = _mm_setzero_ps();
			for (int j = 0; j < 8; j++)
				summ = _mm_fmadd_ps(_mm_set1_ps(m[j]), _mm_loadu_ps(st + 32 * b + 4 * j), summ);
			mt4[r] = _mm_sub_ps(mt4[r], _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(h2f(wb + WEFT_OFF(q4_K, dmin))), dl4), summ));
		}
		for (int j = 0; j < 8; j++) {
			__m256i q[QR];
			__m256 wsc[QR];
			UNROLL
			for (int r = 0; r < R; r++) {
				const uint8_t *wb = w + r * rb + b * bytes;
				__m256i v = _mm256_loadu_si256((const __m256i *)(wb + (q5 ? WEFT_OFF(q5_K, qs) : WEFT_OFF(q4_K, qs)) + 32 * (j / 2)));
				q[r] = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0f));
				if (q5) {
					__m256i qh = _mm256_loadu_si256((const __m256i *)(wb + WEFT_OFF(q5_K, qh)));
					__m256i bit = _mm256_set1_epi8((char)(1 << j));
					__m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
					q[r] = _mm256_or_si256(q[r], _mm256_and_si256(hb, _mm256_set1_epi8(16)));
				}
				wsc[r] = _mm256_set1_ps(sc[r][j]);
			}
			mac32(R, C, 0, 0, x, 256 * b + 32 * j, q, wsc, acc);
		}
	}
	store_tile(R, C, acc, mt4, y, ldy);
}

#define BY_CQ(TILE, R)                                                                               \
	switch (C) {                                                                                 \
	case 4: TILE(R, 4, ty, k, w, rb, x, st, y, ldy); break;                                      \
	case 3: TILE(R, 3, ty, k, w, rb, x, st, y, ldy); break;                                      \
	case 2: TILE(R, 2, ty, k, w, rb, x, st, y, ldy); break;                                      \
	default: TILE(R, 1, ty, k, w, rb, x, st, y, ldy); break;                                     \
	}

INLINE void gemmq(const int ty, int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1,
		  const weft_qact *a, int64_t t0, int64_t t1, float *Y, int64_t ldy)
{
	const int kq = ty >= TQ4K, st_used = ty == T41 || ty == T51 || ty == TQ4K || ty == TQ5K;
	for (int64_t t = t0; t < t1; t += QC) {
		int C = t1 - t < QC ? (int)(t1 - t) : QC;
		qtok x[QC];
		for (int i = 0; i < C; i++) {
			x[i].q = a->q + (t + i) * a->q_stride;
			x[i].dl = a->dl + (t + i) * a->l_stride;
			x[i].corr = a->corr + (t + i) * a->l_stride;
		}
		const float *st = st_used ? a->st + t * a->g_stride : NULL; /* t is a multiple of 4 */
		int64_t r = r0;
		for (; r + QR <= r1; r += QR) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			if (kq)
				BY_CQ(tilek, QR)
			else
				BY_CQ(tile32, QR)
		}
		for (; r < r1; r++) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			if (kq)
				BY_CQ(tilek, 1)
			else
				BY_CQ(tile32, 1)
		}
	}
}

/* ---- entry points ---- */

#define GEMM(name, call)                                                                             \
	static void name(int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1,           \
			 const weft_qact *a, int64_t t0, int64_t t1, float *Y, int64_t ldy)           \
	{                                                                                            \
		call;                                                                                \
	}

GEMM(g_f32, gemmf(TF32, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_f16, gemmf(TF16, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_bf16, gemmf(TBF16, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q4_0, gemmq(T40, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q4_1, gemmq(T41, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q5_0, gemmq(T50, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q5_1, gemmq(T51, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q8_0, gemmq(T80, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q4_k, gemmq(TQ4K, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q5_k, gemmq(TQ5K, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q6_k, gemmq(TQ6K, k, W, rb, r0, r1, a, t0, t1, Y, ldy))

void weft_gemm_avx2_init(weft_kern *k)
{
	k->gemm[WEFT_TYPE_F32] = g_f32;
	k->gemm[WEFT_TYPE_F16] = g_f16;
	k->gemm[WEFT_TYPE_BF16] = g_bf16;
	k->gemm[WEFT_TYPE_Q4_0] = g_q4_0;
	k->gemm[WEFT_TYPE_Q4_1] = g_q4_1;
	k->gemm[WEFT_TYPE_Q5_0] = g_q5_0;
	k->gemm[WEFT_TYPE_Q5_1] = g_q5_1;
	k->gemm[WEFT_TYPE_Q8_0] = g_q8_0;
	k->gemm[WEFT_TYPE_Q4_K] = g_q4_k;
	k->gemm[WEFT_TYPE_Q5_K] = g_q5_k;
	k->gemm[WEFT_TYPE_Q6_K] = g_q6_k;
}

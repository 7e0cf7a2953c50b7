/* gemm_avx512.c - AVX-512 (+ VNNI) register-tiled GEMM for weft_matmul
 * with T > 1 tokens.
 *
 * A call computes a block of rows x tokens (matmul.c sizes it so the
 * block's weights stay in L2); inside it, token groups of C run over the
 * rows in groups of R, and each micro-kernel keeps an R x C tile of
 * 16-lane accumulators in registers, so each weight vector is decoded
 * once for C tokens and each activation vector is loaded once for R rows.
 *
 *   Blocks of 32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): 4 x 4 tiles.  Per 64
 *   weights: decode2 (as dot_avx512.c) and a scale per lane, then per
 *   (row, token) one vpdpbusd started from the activation's -c*sum, a
 *   conversion and an FMA by scale(w) * scale(x).  The mins of Q4_1 /
 *   Q5_1 accumulate 4 tokens per vector from the activations' interleaved
 *   fp16 sums (weft_qact.st).
 *   K-quants (Q4_K, Q5_K, Q6_K): 4 x 4 tiles, per superblock the scales
 *   (and mins) unpacked once per row, then per 64 weights as above; the
 *   mins term 4 tokens per vector from the tokens' block sums.
 *   Floats (F32, F16, BF16): 4 x 6 tiles of fp32 FMA (F16/BF16 weights
 *   widened on load) against the activations rounded to the vec_dot type;
 *   F32 / F16 with k > 1024 in k blocks of <= 1024 values, the tiles'
 *   accumulators parked in memory between blocks.
 *
 * Every output is computed by the same sequence of floating-point
 * operations as dot_avx512.c's row kernel computes it (edge tiles only
 * have fewer rows / tokens), so results depend neither on how the work is
 * split across threads nor on how many tokens a call has: chunked
 * prefill, prefill and decode agree bit for bit (tests/unit/test_matmul.c
 * batch_equals_single, tests/unit/test_model.c). */
#include "ggml_blocks.h"
#include "ggml_types.h"
#include "matmul_int.h"
#include "avx512_int.h"

#include "util.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* ---- blocks of 32 ---- */

/* the tile loops must be fully unrolled to keep the accumulators in
 * registers (-O2 does not do it by itself) */
#define UNROLL _Pragma("GCC unroll 16")

#define QR 4 /* rows per tile */
#define QC 4 /* tokens per tile */

typedef struct qtok {
	const int8_t *q;
	const float *dl, *s;
	const int32_t *corr;
} qtok;

/* The horizontal sums of four vectors, each exactly as
 * _mm512_reduce_add_ps computes it (upper + lower 256 bits, then 128, then
 * lanes (0+2) + (1+3)), but transposed: four results for ~10 instructions
 * instead of ~40.  Lane r of the result is the sum of a[r]. */
static inline __m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
	const __m512 t01 = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, 0x44), _mm512_shuffle_f32x4(a0, a1, 0xee));
	const __m512 t23 = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, 0x44), _mm512_shuffle_f32x4(a2, a3, 0xee));
	/* 128-bit chunk r: a_r's upper + lower 256 bits, halved again */
	const __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(t01, t23, 0x88), _mm512_shuffle_f32x4(t01, t23, 0xdd));
	const __m512 v = _mm512_add_ps(u, _mm512_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
	const __m512 w = _mm512_add_ps(v, _mm512_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
	return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), w));
}

/* mt[r][t] for Q4_1 / Q5_1, 4 tokens per vector: the same operations, in
 * the same order, as dot_avx512.c's row32 (mt += m0 * s0 + m1 * s1 per
 * pair of blocks, then mt += m * s for a lone last block), so results
 * match the T = 1 path bit for bit.  st: the tokens' sums, 4 per block. */
INLINE void mins_tile(const int R, int64_t nb, int bytes, const uint8_t *w, uint64_t rb, const float *st,
		      float mt[QR][QC])
{
	UNROLL
	for (int r = 0; r < R; r++) {
		const uint8_t *wr = w + r * rb;
		__m128 m = _mm_setzero_ps();
		int64_t g = 0;
		for (; g + 2 <= nb; g += 2) {
			__m128 m0 = _mm_set1_ps(h2f(wr + g * bytes + 2)), m1 = _mm_set1_ps(h2f(wr + (g + 1) * bytes + 2));
			m = _mm_add_ps(m, _mm_add_ps(_mm_mul_ps(m0, _mm_loadu_ps(st + 4 * g)),
						     _mm_mul_ps(m1, _mm_loadu_ps(st + 4 * g + 4))));
		}
		if (g < nb)
			m = _mm_add_ps(m, _mm_mul_ps(_mm_set1_ps(h2f(wr + g * bytes + 2)), _mm_loadu_ps(st + 4 * g)));
		_mm_storeu_ps(mt[r], m);
	}
}

INLINE void tile32(const int R, const int C, const int ty, int64_t k, const uint8_t *w, uint64_t rb,
		   const qtok *x, const float *st, float *y, int64_t ldy)
{
	const int bytes = (int)(ty == T40 ? WEFT_SZ(q4_0) : ty == T41 ? WEFT_SZ(q4_1) : ty == T50 ? WEFT_SZ(q5_0) : ty == T51 ? WEFT_SZ(q5_1) : WEFT_SZ(q8_0));
	const int mins = ty == T41 || ty == T51, corr = !mins;
	const int64_t nb = k / 32;
	float mt[QR][QC] = {{0}};
	if (mins)
		mins_tile(R, nb, bytes, w, rb, st, mt);
	__m512 acc[QR][QC];
	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int t = 0; t < C; t++)
			acc[r][t] = _mm512_setzero_ps();
	int64_t g = 0;
	for (; g + 2 <= nb; g += 2) {
		__m512i q[QR];
		__m512 sc[QR];
		UNROLL
		for (int r = 0; r < R; r++) {
			const uint8_t *b0 = w + r * rb + g * bytes;
			q[r] = decode2(ty, b0, b0 + bytes);
			sc[r] = sc2(h2f(b0), h2f(b0 + bytes));
		}
		UNROLL
		for (int t = 0; t < C; t++) {
			__m512i xq = _mm512_loadu_si512((const void *)(x[t].q + 32 * g));
			__m512i cr = corr ? _mm512_loadu_si512((const void *)(x[t].corr + 8 * g)) : _mm512_setzero_si512();
			__m512 xd = _mm512_loadu_ps(x[t].dl + 8 * g);
			UNROLL
			for (int r = 0; r < R; r++) {
				__m512i s = _mm512_dpbusd_epi32(cr, q[r], xq);
				acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(sc[r], xd), acc[r][t]);
			}
		}
	}
	if (g < nb) {
		const __mmask16 m = 0x00ff;
		__m512i q[QR];
		__m512 sc[QR];
		UNROLL
		for (int r = 0; r < R; r++) {
			const uint8_t *b0 = w + r * rb + g * bytes;
			q[r] = decode2(ty, b0, b0);
			sc[r] = sc2(h2f(b0), 0);
		}
		UNROLL
		for (int t = 0; t < C; t++) {
			__m512i xq = _mm512_maskz_loadu_epi32(m, x[t].q + 32 * g);
			__m512i cr = corr ? _mm512_maskz_loadu_epi32(m, x[t].corr + 8 * g) : _mm512_setzero_si512();
			__m512 xd = _mm512_maskz_loadu_ps(m, x[t].dl + 8 * g);
			UNROLL
			for (int r = 0; r < R; r++) {
				__m512i s = _mm512_dpbusd_epi32(cr, q[r], xq);
				acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(sc[r], xd), acc[r][t]);
			}
		}
	}
	if (R == 4) {
		UNROLL
		for (int t = 0; t < C; t++)
			_mm_storeu_ps(y + t * ldy, _mm_add_ps(reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]),
							    _mm_setr_ps(mt[0][t], mt[1][t], mt[2][t], mt[3][t])));
		return;
	}
	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int t = 0; t < C; t++)
			y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]) + mt[r][t];
}

INLINE void gemm32(const int ty, int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1,
		   const weft_qact *a, int64_t t0, int64_t t1, float *Y, int64_t ldy)
{
	const int mins = ty == T41 || ty == T51;
	for (int64_t t = t0; t < t1; t += QC) {
		int C = t1 - t < QC ? (int)(t1 - t) : QC;
		qtok x[QC];
		for (int i = 0; i < C; i++) {
			x[i].q = a->q + (t + i) * a->q_stride;
			x[i].dl = a->dl + (t + i) * a->l_stride;
			x[i].corr = a->corr + (t + i) * a->l_stride;
			x[i].s = a->s + (t + i) * a->g_stride;
		}
		const float *st = mins ? a->st + t * a->g_stride : NULL; /* t is a multiple of 4 */
		int64_t r = r0;
		for (; r + QR <= r1; r += QR) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			switch (C) {
			case 4: tile32(QR, 4, ty, k, w, rb, x, st, y, ldy); break;
			case 3: tile32(QR, 3, ty, k, w, rb, x, st, y, ldy); break;
			case 2: tile32(QR, 2, ty, k, w, rb, x, st, y, ldy); break;
			default: tile32(QR, 1, ty, k, w, rb, x, st, y, ldy); break;
			}
		}
		for (; r < r1; r++) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			switch (C) {
			case 4: tile32(1, 4, ty, k, w, rb, x, st, y, ldy); break;
			case 3: tile32(1, 3, ty, k, w, rb, x, st, y, ldy); break;
			case 2: tile32(1, 2, ty, k, w, rb, x, st, y, ldy); break;
			default: tile32(1, 1, ty, k, w, rb, x, st, y, ldy); break;
			}
		}
	}
}

/* ---- K-quants (superblocks of 256, activations Q8_K): 4 x 4 tiles ---- */

enum { TQ4K, TQ5K, TQ6K };

/* Per row and superblock: the sub-block scales as float (8, Q6_K 16) and,
 * for Q4_K / Q5_K, the 6-bit mins as float (the values of dot_avx512.c's
 * scale_min_k4, unpacked 4 at a time as ggml does). */
INLINE void kscales(const int ty, const uint8_t *w, float *sc, float *m)
{
	if (ty == TQ6K) {
		__m128i s8 = _mm_loadu_si128((const __m128i *)(w + WEFT_OFF(q6_K, scales)));
		_mm512_storeu_ps(sc, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(s8)), _mm512_set1_ps(h2f(w + WEFT_OFF(q6_K, d)))));
		return;
	}
	uint32_t u[3];
	memcpy(u, w + WEFT_OFF(q4_K, scales), WEFT_K_SCALE_SIZE);
	const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
	uint64_t scl = (uint64_t)(u[0] & m6) | (uint64_t)((u[2] & m4) | ((u[0] >> 6) & m2) << 4) << 32;
	uint64_t mnl = (uint64_t)(u[1] & m6) | (uint64_t)(((u[2] >> 4) & m4) | ((u[1] >> 6) & m2) << 4) << 32;
	_mm256_storeu_ps(sc, _mm256_mul_ps(_mm256_set1_ps(h2f(w)),
					   _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)scl)))));
	_mm256_storeu_ps(m, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mnl))));
}

/* Chunk c (values 64c .. 64c+63) of a superblock: unsigned quants and a
 * scale per lane. */
INLINE void kchunk(const int ty, const uint8_t *w, int c, const float *sc, __m512i *q, __m512 *wsc)
{
	if (ty == TQ6K) {
		int h = c >> 1, j = c & 1;
		__m512i ql = _mm512_loadu_si512((const void *)(w + WEFT_OFF(q6_K, ql) + 64 * h));
		__m256i qh = _mm256_loadu_si256((const __m256i *)(w + WEFT_OFF(q6_K, qh) + 32 * h));
		__m512i qhv = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
		__m512i lo = _mm512_and_si512(j ? _mm512_srli_epi16(ql, 4) : ql, _mm512_set1_epi8(0x0f));
		__m512i sh = _mm512_inserti64x4(_mm512_set1_epi16((short)(4 * j)), _mm256_set1_epi16((short)(4 * j + 2)), 1);
		__m512i hi = _mm512_and_si512(_mm512_srlv_epi16(qhv, sh), _mm512_set1_epi8(3));
		*q = _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
		const __m512i idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
		*wsc = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_loadu_ps(sc + 8 * h + 4 * j)));
		return;
	}
	const int q5 = ty == TQ5K;
	const uint8_t *qs = w + (q5 ? WEFT_OFF(q5_K, qs) : WEFT_OFF(q4_K, qs));
	const __m512i sh = _mm512_set_epi64(4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL,
					    4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL, 0, 0, 0, 0);
	__m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
	__m512i qq = _mm512_inserti64x4(_mm512_castsi256_si512(v), v, 1);
	qq = _mm512_and_si512(_mm512_srlv_epi16(qq, sh), _mm512_set1_epi8(0x0f));
	if (q5) {
		__m256i qh = _mm256_loadu_si256((const __m256i *)(w + WEFT_OFF(q5_K, qh)));
		__m512i qhv = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
		__m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))),
						 _mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);
		__mmask64 hm = _mm512_test_epi8_mask(qhv, bit);
		qq = _mm512_mask_add_epi8(qq, hm, qq, _mm512_set1_epi8(16));
	}
	*q = qq;
	*wsc = sc2(sc[2 * c], sc[2 * c + 1]);
}

typedef struct ktok {
	const int8_t *q;
	const float *dl;
	const int32_t *corr, *bs;
} ktok;

INLINE void tilek(const int R, const int C, const int ty, int64_t k, const uint8_t *w, uint64_t rb,
		  const ktok *x, const float *st, float *y, int64_t ldy)
{
	const int bytes = (int)(ty == TQ4K ? WEFT_SZ(q4_K) : ty == TQ5K ? WEFT_SZ(q5_K) : WEFT_SZ(q6_K)), corr = ty == TQ6K;
	__m512 acc[QR][QC];
	__m128 mt4[QR];
	UNROLL
	for (int r = 0; r < R; r++)
		mt4[r] = _mm_setzero_ps();
	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int t = 0; t < C; t++)
			acc[r][t] = _mm512_setzero_ps();
	for (int64_t b = 0; b < k / 256; b++) {
		float sc[QR][16], m[QR][8];
		/* mins, 4 tokens per vector, as row_q45k's mt -= dmin * d * summ
		 * (summ: an integer below 2^24, exact in float whatever the order) */
		__m128 dl4 = _mm_setzero_ps();
		if (ty != TQ6K)
			dl4 = _mm_set_ps(C > 3 ? x[3].dl[64 * b] : 0.0f, C > 2 ? x[2].dl[64 * b] : 0.0f,
					 C > 1 ? x[1].dl[64 * b] : 0.0f, x[0].dl[64 * b]);
		UNROLL
		for (int r = 0; r < R; r++) {
			const uint8_t *wb = w + r * rb + b * bytes;
			kscales(ty, wb, sc[r], m[r]);
			if (ty != TQ6K) {
				__m128 summ = _mm_setzero_ps();
				for (int j = 0; j < 8; j++)
					summ = _mm_fmadd_ps(_mm_set1_ps(m[r][j]), _mm_loadu_ps(st + 32 * b + 4 * j), summ);
				mt4[r] = _mm_sub_ps(mt4[r], _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(h2f(wb + WEFT_OFF(q4_K, dmin))), dl4), summ));
			}
		}
		for (int c = 0; c < 4; c++) {
			__m512i q[QR];
			__m512 wsc[QR];
			UNROLL
			for (int r = 0; r < R; r++)
				kchunk(ty, w + r * rb + b * bytes, c, sc[r], &q[r], &wsc[r]);
			int64_t i = 256 * b + 64 * c;
			UNROLL
			for (int t = 0; t < C; t++) {
				__m512i xq = _mm512_loadu_si512((const void *)(x[t].q + i));
				__m512i cr = corr ? _mm512_loadu_si512((const void *)(x[t].corr + i / 4)) : _mm512_setzero_si512();
				__m512 xd = _mm512_loadu_ps(x[t].dl + i / 4);
				UNROLL
				for (int r = 0; r < R; r++) {
					__m512i s = _mm512_dpbusd_epi32(cr, q[r], xq);
					acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wsc[r], xd), acc[r][t]);
				}
			}
		}
	}
	if (R == 4) {
		float mt[4][4];
		UNROLL
		for (int r = 0; r < 4; r++)
			_mm_storeu_ps(mt[r], mt4[r]);
		UNROLL
		for (int t = 0; t < C; t++)
			_mm_storeu_ps(y + t * ldy, _mm_add_ps(reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]),
							    _mm_setr_ps(mt[0][t], mt[1][t], mt[2][t], mt[3][t])));
		return;
	}
	UNROLL
	for (int r = 0; r < R; r++) {
		float mt[4];
		_mm_storeu_ps(mt, mt4[r]);
		UNROLL
		for (int t = 0; t < C; t++)
			y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]) + mt[t];
	}
}

INLINE void gemmk(const int ty, int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1,
		  const weft_qact *a, int64_t t0, int64_t t1, float *Y, int64_t ldy)
{
	for (int64_t t = t0; t < t1; t += QC) {
		int C = t1 - t < QC ? (int)(t1 - t) : QC;
		ktok x[QC];
		for (int i = 0; i < C; i++) {
			x[i].q = a->q + (t + i) * a->q_stride;
			x[i].dl = a->dl + (t + i) * a->l_stride;
			x[i].corr = a->corr + (t + i) * a->l_stride;
			x[i].bs = a->bs + (t + i) * a->g_stride;
		}
		const float *st = ty != TQ6K ? a->st + t * a->g_stride : NULL; /* t is a multiple of 4 */
		int64_t r = r0;
		for (; r + QR <= r1; r += QR) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			switch (C) {
			case 4: tilek(QR, 4, ty, k, w, rb, x, st, y, ldy); break;
			case 3: tilek(QR, 3, ty, k, w, rb, x, st, y, ldy); break;
			case 2: tilek(QR, 2, ty, k, w, rb, x, st, y, ldy); break;
			default: tilek(QR, 1, ty, k, w, rb, x, st, y, ldy); break;
			}
		}
		for (; r < r1; r++) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			switch (C) {
			case 4: tilek(1, 4, ty, k, w, rb, x, st, y, ldy); break;
			case 3: tilek(1, 3, ty, k, w, rb, x, st, y, ldy); break;
			case 2: tilek(1, 2, ty, k, w, rb, x, st, y, ldy); break;
			default: tilek(1, 1, ty, k, w, rb, x, st, y, ldy); break;
			}
		}
	}
}

/* ---- float types ---- */

#define FR 4 /* rows per tile */
#define FC 6 /* tokens per tile */

/* The same arithmetic as dot_avx512.c's rowf, so results match the
 * T = 1 path bit for bit: accumulator 0 takes values 32m .. 32m+15 and
 * the tail, accumulator 1 values 32m+16 .. 32m+31, y = sum(acc0 + acc1).
 * Two R x C tiles of both would not fit the registers, so the two are
 * separate passes over values i0 .. i1 (a multiple of 32 long unless i1
 * is k), each accumulator continuing from its value parked in `park`
 * (unless `first`); `last`: the block ends at k, so the outputs are
 * reduced and stored.  park == NULL: one block, 0 .. k. */
INLINE void tilef(const int R, const int C, const int ty, int64_t i0, int64_t i1, int first, int last,
		  const uint8_t *w, uint64_t rb, const float *const *x, float *y, int64_t ldy, __m512 *park)
{
	__m512 acc0[FR][FC];
	for (int pass = 0; pass < 2; pass++) {
		__m512 acc[FR][FC];
		UNROLL
		for (int r = 0; r < R; r++)
			UNROLL
			for (int t = 0; t < C; t++)
				acc[r][t] = first ? _mm512_setzero_ps() : park[(pass * FR + r) * FC + t];
		int64_t i = i0;
		for (; i + 32 <= i1; i += 32) {
			__m512 wv[FR];
			UNROLL
			for (int r = 0; r < R; r++)
				wv[r] = fload(ty, w + r * rb, i + 16 * pass, 0xffff);
			UNROLL
			for (int t = 0; t < C; t++) {
				__m512 xv = _mm512_loadu_ps(x[t] + i + 16 * pass);
				UNROLL
				for (int r = 0; r < R; r++)
					acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
			}
		}
		for (; pass == 0 && i < i1; i += 16) {
			__mmask16 m = i1 - i >= 16 ? 0xffff : (__mmask16)((1u << (i1 - i)) - 1);
			__m512 wv[FR];
			UNROLL
			for (int r = 0; r < R; r++)
				wv[r] = fload(ty, w + r * rb, i, m);
			UNROLL
			for (int t = 0; t < C; t++) {
				__m512 xv = _mm512_maskz_loadu_ps(m, x[t] + i);
				UNROLL
				for (int r = 0; r < R; r++)
					acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
			}
		}
		if (!last) {
			UNROLL
			for (int r = 0; r < R; r++)
				UNROLL
				for (int t = 0; t < C; t++)
					park[(pass * FR + r) * FC + t] = acc[r][t];
			continue;
		}
		if (pass == 1 && R == 4) {
			UNROLL
			for (int t = 0; t < C; t++)
				_mm_storeu_ps(y + t * ldy, reduce4(_mm512_add_ps(acc0[0][t], acc[0][t]),
								   _mm512_add_ps(acc0[1][t], acc[1][t]),
								   _mm512_add_ps(acc0[2][t], acc[2][t]),
								   _mm512_add_ps(acc0[3][t], acc[3][t])));
			continue;
		}
		UNROLL
		for (int r = 0; r < R; r++)
			UNROLL
			for (int t = 0; t < C; t++) {
				if (pass == 0)
					acc0[r][t] = acc[r][t];
				else
					y[t * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r][t], acc[r][t]));
			}
	}
}

#define BY_C(R, ...)                                                                           \
	switch (C) {                                                                                 \
	case 6: tilef(R, 6, ty, __VA_ARGS__); break;                                                 \
	case 5: tilef(R, 5, ty, __VA_ARGS__); break;                                                 \
	case 4: tilef(R, 4, ty, __VA_ARGS__); break;                                                 \
	case 3: tilef(R, 3, ty, __VA_ARGS__); break;                                                 \
	case 2: tilef(R, 2, ty, __VA_ARGS__); break;                                                 \
	default: tilef(R, 1, ty, __VA_ARGS__); break;                                                \
	}

#define FKB 1024 /* values per k block, at most */
#define FKR 64   /* rows per chunk of a k-blocked task (a multiple of FR) */
#define FPARK ((FKR / FR + FR - 1) * 2 * FR * FC) /* row tiles, then lone rows */

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
			BY_C(FR, 0, k, 1, 1, w, rb, x, y, ldy, NULL)
		}
		for (; r < r1; r++) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			BY_C(1, 0, k, 1, 1, w, rb, x, y, ldy, NULL)
		}
	}
}

/* k > FKB: k in blocks of at most FKB values (equal multiples of 32 but
 * the last), so the C tokens' values of a block stay in L1 while every
 * row of a chunk of FKR rows uses them (matmul.c gives such tasks more
 * rows); the accumulators are parked in `park` (FPARK vectors) between
 * blocks, each still taking its values in rowf's order. */
INLINE void gemmf_kb(const int ty, int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1,
		     const weft_qact *a, int64_t t0, int64_t t1, float *Y, int64_t ldy, __m512 *park)
{
	const int64_t nb = (k + FKB - 1) / FKB, bs = ((k + nb - 1) / nb + 31) / 32 * 32;
	for (int64_t t = t0; t < t1; t += FC) {
		int C = t1 - t < FC ? (int)(t1 - t) : FC;
		const float *x[FC];
		for (int i = 0; i < C; i++)
			x[i] = a->f + (t + i) * a->f_stride;
		for (int64_t rc = r0; rc < r1; rc += FKR) {
			int64_t rc1 = r1 - rc < FKR ? r1 : rc + FKR;
			for (int64_t i0 = 0; i0 < k; i0 += bs) {
				int64_t i1 = k - i0 <= bs ? k : i0 + bs;
				int first = i0 == 0, last = i1 == k;
				int64_t r = rc;
				__m512 *p = park;
				for (; r + FR <= rc1; r += FR, p += 2 * FR * FC) {
					const uint8_t *w = W + r * rb;
					float *y = Y + t * ldy + r;
					BY_C(FR, i0, i1, first, last, w, rb, x, y, ldy, p)
				}
				for (; r < rc1; r++, p += 2 * FR * FC) {
					const uint8_t *w = W + r * rb;
					float *y = Y + t * ldy + r;
					BY_C(1, i0, i1, first, last, w, rb, x, y, ldy, p)
				}
				if (last)
					break;
			}
		}
	}
}

/* ---- BF16 weights, bf16 activations: vdpbf16ps ---- */

/* As dot_avx512.c's rowbh: even 32-value chunks into one accumulator per
 * output, odd ones into another, y = sum(acc0 + acc1); two tiles of both
 * would not fit the registers, so the even chunks are a first pass whose
 * accumulators are parked, as tilef does. */
INLINE void tilebh(const int R, const int C, int64_t k, const uint8_t *w, uint64_t rb, const uint16_t *const *x,
		   float *y, int64_t ldy)
{
	__m512 acc0[FR][FC];
	for (int pass = 0; pass < 2; pass++) {
		__m512 acc[FR][FC];
		UNROLL
		for (int r = 0; r < R; r++)
			UNROLL
			for (int t = 0; t < C; t++)
				acc[r][t] = _mm512_setzero_ps();
		for (int64_t i = 32 * pass; i < k; i += 64) {
			const __mmask32 m = k - i >= 32 ? 0xffffffffu : (__mmask32)((1u << (k - i)) - 1);
			__m512bh wv[FR];
			UNROLL
			for (int r = 0; r < R; r++)
				wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(m, (const uint16_t *)(w + r * rb) + i);
			UNROLL
			for (int t = 0; t < C; t++) {
				const __m512bh xv = (__m512bh)_mm512_loadu_si512((const void *)(x[t] + i));
				UNROLL
				for (int r = 0; r < R; r++)
					acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv);
			}
		}
		if (pass == 0) {
			UNROLL
			for (int r = 0; r < R; r++)
				UNROLL
				for (int t = 0; t < C; t++)
					acc0[r][t] = acc[r][t];
			continue;
		}
		if (R == 4) {
			UNROLL
			for (int t = 0; t < C; t++)
				_mm_storeu_ps(y + t * ldy, reduce4(_mm512_add_ps(acc0[0][t], acc[0][t]),
								   _mm512_add_ps(acc0[1][t], acc[1][t]),
								   _mm512_add_ps(acc0[2][t], acc[2][t]),
								   _mm512_add_ps(acc0[3][t], acc[3][t])));
			return;
		}
		UNROLL
		for (int r = 0; r < R; r++)
			UNROLL
			for (int t = 0; t < C; t++)
				y[t * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r][t], acc[r][t]));
	}
}

#define BY_C_BH(R)                                                                                 \
	switch (C) {                                                                                 \
	case 6: tilebh(R, 6, k, w, rb, x, y, ldy); break;                                            \
	case 5: tilebh(R, 5, k, w, rb, x, y, ldy); break;                                            \
	case 4: tilebh(R, 4, k, w, rb, x, y, ldy); break;                                            \
	case 3: tilebh(R, 3, k, w, rb, x, y, ldy); break;                                            \
	case 2: tilebh(R, 2, k, w, rb, x, y, ldy); break;                                            \
	default: tilebh(R, 1, k, w, rb, x, y, ldy); break;                                           \
	}

static int use_dpbf16;

static void g_bf16_dp(int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1, const weft_qact *a,
		      int64_t t0, int64_t t1, float *Y, int64_t ldy)
{
	if (!use_dpbf16 || !a->h) {
		gemmf(TBF16, k, W, rb, r0, r1, a, t0, t1, Y, ldy);
		return;
	}
	for (int64_t t = t0; t < t1; t += FC) {
		int C = t1 - t < FC ? (int)(t1 - t) : FC;
		const uint16_t *x[FC];
		for (int i = 0; i < C; i++)
			x[i] = a->h + (t + i) * a->h_stride;
		int64_t r = r0;
		for (; r + FR <= r1; r += FR) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			BY_C_BH(FR)
		}
		for (; r < r1; r++) {
			const uint8_t *w = W + r * rb;
			float *y = Y + t * ldy + r;
			BY_C_BH(1)
		}
	}
}

/* ---- activations: Q8_0 / Q8_1 blocks of 32 ---- */

/* As matmul.c's quant_q8 (ggml's quantize_row_q8_0 / q8_1): the same
 * float operations (x * (127 / amax), rounded to nearest even), so the
 * quants are bit-identical. */
static void quant_q8_avx512(const weft_qact *a, int64_t t, const float *x, int q81, int c)
{
	int8_t *q = a->q + t * a->q_stride;
	float *dl = a->dl + t * a->l_stride;
	int32_t *corr = a->corr + t * a->l_stride, *bs = a->bs + t * a->g_stride;
	const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
	const __m256i ones = _mm256_set1_epi8(1), negc = _mm256_set1_epi32(-c);
	for (int64_t g = 0; g < a->k / 32; g++) {
		__m512 x0 = _mm512_loadu_ps(x + 32 * g), x1 = _mm512_loadu_ps(x + 32 * g + 16);
		float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(x0, absmask), _mm512_and_ps(x1, absmask)));
		float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
		__m512 idv = _mm512_set1_ps(id);
		__m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x0, idv)));
		__m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x1, idv)));
		__m256i qv = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
		_mm256_storeu_si256((__m256i *)(q + 32 * g), qv);
		__m256i s4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, qv);
		_mm256_storeu_si256((__m256i *)(corr + 8 * g), _mm256_mullo_epi32(s4, negc));
		float dr = weft_fp16_to_fp32(weft_fp32_to_fp16(d));
		_mm256_storeu_ps(dl + 8 * g, _mm256_set1_ps(dr));
		__m128i s2 = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
		s2 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0x4e));
		s2 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1));
		int sum = _mm_cvtsi128_si32(s2);
		bs[g] = sum;
		if (q81)
			a->s[t * a->g_stride + g] = weft_fp16_to_fp32(weft_fp32_to_fp16(d * (float)sum));
	}
}

/* ---- entry points ---- */

#define GEMM(name, call)                                                                             \
	static void name(int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1,           \
			 const weft_qact *a, int64_t t0, int64_t t1, float *Y, int64_t ldy)           \
	{                                                                                            \
		call;                                                                                \
	}

GEMM(g_q4_0, gemm32(T40, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q4_1, gemm32(T41, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q5_0, gemm32(T50, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q5_1, gemm32(T51, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q8_0, gemm32(T80, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q4_k, gemmk(TQ4K, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q5_k, gemmk(TQ5K, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM(g_q6_k, gemmk(TQ6K, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
/* Float weights: the k-blocked and the plain loops in separate functions
 * (sharing one, they spill); the parked accumulators on the heap (~58 KiB:
 * thread stacks may be small), the plain loop if that fails. */
#define GEMM_NI(name, call) __attribute__((noinline)) GEMM(name, call)
GEMM_NI(g_f32_1, gemmf(TF32, k, W, rb, r0, r1, a, t0, t1, Y, ldy))
GEMM_NI(g_f16_1, gemmf(TF16, k, W, rb, r0, r1, a, t0, t1, Y, ldy))

#define GEMM_F(name, ty, one)                                                                        \
	static void name(int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1,           \
			 const weft_qact *a, int64_t t0, int64_t t1, float *Y, int64_t ldy)           \
	{                                                                                            \
		__m512 *park = k > FKB ? aligned_alloc(64, FPARK * sizeof(__m512)) : NULL;      \
		if (!park) {                                                                         \
			one(k, W, rb, r0, r1, a, t0, t1, Y, ldy);                                    \
			return;                                                                      \
		}                                                                                    \
		gemmf_kb(ty, k, W, rb, r0, r1, a, t0, t1, Y, ldy, park);                             \
		free(park);                                                                          \
	}
GEMM_F(g_f32, TF32, g_f32_1)
GEMM_F(g_f16, TF16, g_f16_1)

void weft_gemm_avx512_init(weft_kern *k, int have_bf16)
{
	use_dpbf16 = have_bf16;
	k->gemm[WEFT_TYPE_Q4_0] = g_q4_0;
	k->gemm[WEFT_TYPE_Q4_1] = g_q4_1;
	k->gemm[WEFT_TYPE_Q5_0] = g_q5_0;
	k->gemm[WEFT_TYPE_Q5_1] = g_q5_1;
	k->gemm[WEFT_TYPE_Q8_0] = g_q8_0;
	k->gemm[WEFT_TYPE_Q4_K] = g_q4_k;
	k->gemm[WEFT_TYPE_Q5_K] = g_q5_k;
	k->gemm[WEFT_TYPE_Q6_K] = g_q6_k;
	k->gemm[WEFT_TYPE_F32] = g_f32;
	k->gemm[WEFT_TYPE_F16] = g_f16;
	k->gemm[WEFT_TYPE_BF16] = g_bf16_dp;
	k->quant_q8 = quant_q8_avx512;
}

/* sgemm_avx512.c - weft_sgemm with AVX-512: register tiles of R <= 6 rows
 * of A by 64 columns of B (24 accumulators), the k loop broadcasting one A
 * value per row against four B vectors, so no horizontal sums are needed.
 * Column tails use masked loads and stores. */
#include <immintrin.h>

#include "ops_int.h"

#define TR 6  /* rows per tile */
#define TV 4  /* 16-float vectors per tile row (64 columns) */

static inline __mmask16 tmask(int64_t left)
{
	return left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
}

static inline __attribute__((always_inline)) void tile(const int R, int64_t K, const float *A, int64_t lda,
						       const float *B, int64_t ldb, float *C, int64_t ldc,
						       int64_t ncol)
{
	__m512 acc[TR][TV];
	__mmask16 m[TV];
#pragma GCC unroll 4
	for (int v = 0; v < TV; v++)
		m[v] = tmask(ncol - 16 * v);
#pragma GCC unroll 6
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int v = 0; v < TV; v++)
			acc[r][v] = _mm512_setzero_ps();
	if (ncol == 64) {
		for (int64_t k = 0; k < K; k++) {
			const float *b = B + k * ldb;
			const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32),
				     b3 = _mm512_loadu_ps(b + 48);
#pragma GCC unroll 6
			for (int r = 0; r < R; r++) {
				const __m512 a = _mm512_set1_ps(A[r * lda + k]);
				acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
				acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
				acc[r][2] = _mm512_fmadd_ps(a, b2, acc[r][2]);
				acc[r][3] = _mm512_fmadd_ps(a, b3, acc[r][3]);
			}
		}
	} else {
		for (int64_t k = 0; k < K; k++) {
			const float *b = B + k * ldb;
			__m512 bv[TV];
#pragma GCC unroll 4
			for (int v = 0; v < TV; v++)
				bv[v] = _mm512_maskz_loadu_ps(m[v], b + 16 * v);
#pragma GCC unroll 6
			for (int r = 0; r < R; r++) {
				const __m512 a = _mm512_set1_ps(A[r * lda + k]);
#pragma GCC unroll 4
				for (int v = 0; v < TV; v++)
					acc[r][v] = _mm512_fmadd_ps(a, bv[v], acc[r][v]);
			}
		}
	}
#pragma GCC unroll 6
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int v = 0; v < TV; v++)
			_mm512_mask_storeu_ps(C + r * ldc + 16 * v, m[v], acc[r][v]);
}

void weft_sgemm_avx512(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
		       float *C, int64_t ldc)
{
	WEFT_SGEMM_DRIVER(64)
}

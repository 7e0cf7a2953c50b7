/* sgemm_avx2.c - weft_sgemm with AVX2 + FMA: register tiles of R <= 6 rows
 * of A by 16 columns of B (12 accumulators), as sgemm_avx512.c; column
 * tails through maskload / maskstore. */
#include <immintrin.h>

#include "ops_int.h"

#define TR 6

static inline __m256i tmask(int64_t left)
{
	const int l = left >= 8 ? 8 : left <= 0 ? 0 : (int)left;
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) void tile(const int R, int64_t K, const float *A, int64_t lda,
						       const float *B, int64_t ldb, float *C, int64_t ldc,
						       int64_t ncol)
{
	__m256 acc[TR][2];
	const __m256i m0 = tmask(ncol), m1 = tmask(ncol - 8);
#pragma GCC unroll 6
	for (int r = 0; r < R; r++)
		acc[r][0] = acc[r][1] = _mm256_setzero_ps();
	for (int64_t k = 0; k < K; k++) {
		const float *b = B + k * ldb;
		const __m256 b0 = ncol >= 8 ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
		const __m256 b1 = ncol >= 16 ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1);
#pragma GCC unroll 6
		for (int r = 0; r < R; r++) {
			const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
			acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
			acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
		}
	}
#pragma GCC unroll 6
	for (int r = 0; r < R; r++) {
		_mm256_maskstore_ps(C + r * ldc, m0, acc[r][0]);
		_mm256_maskstore_ps(C + r * ldc + 8, m1, acc[r][1]);
	}
}

void weft_sgemm_avx2(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
		     float *C, int64_t ldc)
{
	WEFT_SGEMM_DRIVER(16)
}

/* sgemm.c - weft_sgemm, a plain float32 row-major GEMM for the shapes
 * attention produces (Q K^T with short K, P V with long K), and its scalar
 * reference.  Each C[i][j] is summed over k in increasing order, one fused
 * multiply-add at a time in the SIMD variants (plain multiply-add here), so
 * a result never depends on how a caller splits the work. */
#include "backend.h"
#include "ops_int.h"

void weft_sgemm_ref(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
		    float *C, int64_t ldc)
{
	for (int64_t i = 0; i < M; i++) {
		float *c = C + i * ldc;
		for (int64_t j = 0; j < N; j++)
			c[j] = 0.0f;
		for (int64_t k = 0; k < K; k++) {
			const float a = A[i * lda + k];
			const float *b = B + k * ldb;
			for (int64_t j = 0; j < N; j++)
				c[j] += a * b[j];
		}
	}
}

void weft_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
		int64_t ldc)
{
	weft_ops_get()->sgemm(M, N, K, A, lda, B, ldb, C, ldc);
}

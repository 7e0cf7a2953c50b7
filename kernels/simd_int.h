/* simd_int.h - vector expf for the AVX2 and AVX-512 kernels (included by
 * *_avx2.c and *_avx512.c only).  Not installed.
 *
 * exp(x) = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 (two-part
 * ln 2), e^r from Cephes' degree-7 polynomial (1 + r + r^2 P(r)); about
 * 1 ulp from expf.  exp(-inf) = 0, exp(x) = 0 below about -87.3 (no
 * subnormals in the AVX2 version), +inf above 88.72; the AVX2 version
 * saturates at exp(88.37) for 88.37 < x <= 88.72.  NaN gives a number. */
#ifndef WEFT_SIMD_INT_H
#define WEFT_SIMD_INT_H

#include <immintrin.h>
#include <math.h>

#define WEFT_EXP_P0 1.9875691500e-4f
#define WEFT_EXP_P1 1.3981999507e-3f
#define WEFT_EXP_P2 8.3334519073e-3f
#define WEFT_EXP_P3 4.1665795894e-2f
#define WEFT_EXP_P4 1.6666665459e-1f
#define WEFT_EXP_P5 5.0000001201e-1f
#define WEFT_LN2_HI 0.693145751953125f
#define WEFT_LN2_LO 1.428606765330187045e-6f
#define WEFT_LOG2E 1.44269504088896341f

#if defined(__AVX512F__)
static inline __m512 weft_exp16(__m512 x)
{
	/* scalef does the 2^n exactly, including overflow and subnormals */
	const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
	const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(WEFT_LOG2E)),
					      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(WEFT_LN2_HI), xc);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(WEFT_LN2_LO), r);
	__m512 p = _mm512_set1_ps(WEFT_EXP_P0);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WEFT_EXP_P1));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WEFT_EXP_P2));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WEFT_EXP_P3));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WEFT_EXP_P4));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WEFT_EXP_P5));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
static inline __m256 weft_exp8(__m256 x)
{
	const __m256 lo = _mm256_set1_ps(-87.3365478515625f);
	const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.37f));
	const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(WEFT_LOG2E)),
					 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(WEFT_LN2_HI), xc);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(WEFT_LN2_LO), r);
	__m256 p = _mm256_set1_ps(WEFT_EXP_P0);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WEFT_EXP_P1));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WEFT_EXP_P2));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WEFT_EXP_P3));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WEFT_EXP_P4));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WEFT_EXP_P5));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
	__m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
	y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
	return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(88.72283935546875f), _CMP_GT_OQ));
}
#endif

#endif

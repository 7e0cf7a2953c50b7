/* avx2_int.h - helpers shared by the AVX2 matmul kernels (dot_avx2.c: one
 * row x up to WEFT_NT tokens; gemm_avx2.c: register tiles), which must
 * decode and sum exactly alike for a token's result not to depend on the
 * batch.  Included by *_avx2.c, and by llamacpp_avx512.c for h2f, nib and
 * hsum8 (ggml's hsum_float_8 order).  Not installed. */
#ifndef WEFT_AVX2_INT_H
#define WEFT_AVX2_INT_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

INLINE float h2f(const uint8_t *p)
{
	uint16_t h;
	memcpy(&h, p, 2);
	return _cvtsh_ss(h);
}

INLINE uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

INLINE float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

INLINE __m256i nib(const uint8_t *p)
{
	__m128i q = _mm_loadu_si128((const __m128i *)p);
	return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
}

/* 0x10 in byte j where bit j of qh is set (ggml's bytes_from_bits_32). */
INLINE __m256i bits16(uint32_t qh)
{
	const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
	__m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
	b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL));
	return _mm256_and_si256(_mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(16));
}

enum { TF32, TF16, TBF16 };

INLINE __m256 fload(const int ty, const uint8_t *w, int64_t i)
{
	switch (ty) {
	case TF32: return _mm256_loadu_ps((const float *)w + i);
	case TF16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
	default:
		return _mm256_castsi256_ps(_mm256_slli_epi32(
			_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16));
	}
}

INLINE float fscalar(const int ty, const uint8_t *w, int64_t i)
{
	uint16_t h;
	float f;
	switch (ty) {
	case TF32: memcpy(&f, w + 4 * i, 4); return f;
	case TF16: memcpy(&h, w + 2 * i, 2); return _cvtsh_ss(h);
	default: {
		memcpy(&h, w + 2 * i, 2);
		uint32_t u = (uint32_t)h << 16;
		memcpy(&f, &u, 4);
		return f;
	}
	}
}

#endif

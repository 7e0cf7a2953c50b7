/* avx512_int.h - block decoders shared by the AVX-512 matmul kernels
 * (dot_avx512.c: one row x up to WEFT_NT tokens; gemm_avx512.c: register
 * tiles).  Included by *_avx512.c only.  Not installed. */
#ifndef WEFT_AVX512_INT_H
#define WEFT_AVX512_INT_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "ggml_blocks.h"

#define INLINE static inline __attribute__((always_inline))

INLINE float h2f(const uint8_t *p)
{
	uint16_t h;
	memcpy(&h, p, 2);
	return _cvtsh_ss(h);
}

/* Lanes 0-7 a, lanes 8-15 b. */
INLINE __m512 sc2(float a, float b)
{
	return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

/* Nibbles of two 16-byte Q4 fields as 64 bytes: lo(a), hi(a), lo(b), hi(b). */
INLINE __m512i nib2(const uint8_t *a, const uint8_t *b)
{
	__m128i qa = _mm_loadu_si128((const __m128i *)a), qb = _mm_loadu_si128((const __m128i *)b);
	__m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(qa)),
				       _mm256_broadcastsi128_si256(qb), 1);
	const __m512i sh = _mm512_set_epi64(4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL, 0, 0,
					    4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL, 0, 0);
	return _mm512_and_si512(_mm512_srlv_epi16(v, sh), _mm512_set1_epi8(0x0f));
}

INLINE uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* ---- blocks of 32: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 ---- */

enum { T40, T41, T50, T51, T80 };

/* Decode blocks b0, b1 (b1 == b0 for a lone last block, whose upper half
 * the caller masks off). */
INLINE __m512i decode2(const int ty, const uint8_t *b0, const uint8_t *b1)
{
	switch (ty) {
	case T40: return nib2(b0 + WEFT_OFF(q4_0, qs), b1 + WEFT_OFF(q4_0, qs));
	case T41: return nib2(b0 + WEFT_OFF(q4_1, qs), b1 + WEFT_OFF(q4_1, qs));
	case T50: case T51: {
		const size_t qh = ty == T50 ? WEFT_OFF(q5_0, qh) : WEFT_OFF(q5_1, qh),
			     qs = ty == T50 ? WEFT_OFF(q5_0, qs) : WEFT_OFF(q5_1, qs);
		__m512i q = nib2(b0 + qs, b1 + qs);
		__mmask64 hm = (__mmask64)ld32(b0 + qh) | (__mmask64)ld32(b1 + qh) << 32;
		return _mm512_or_si512(q, _mm512_maskz_mov_epi8(hm, _mm512_set1_epi8(16)));
	}
	default: {
		__m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + WEFT_OFF(q8_0, qs)))),
					       _mm256_loadu_si256((const __m256i *)(b1 + WEFT_OFF(q8_0, qs))), 1);
		return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
	}
	}
}

/* ---- float types ---- */

enum { TF32, TF16, TBF16 };

INLINE __m512 fload(const int ty, const uint8_t *w, int64_t i, __mmask16 m)
{
	switch (ty) {
	case TF32: return _mm512_maskz_loadu_ps(m, (const float *)w + i);
	case TF16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i));
	default:
		return _mm512_castsi512_ps(_mm512_slli_epi32(
			_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i)), 16));
	}
}

#endif

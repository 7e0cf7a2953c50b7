/* ops_avx512.c - the float ops with AVX-512 F/BW/VL/DQ (16 lanes; tails
 * with masked loads and stores, so no scalar tails).  Same numerics as the
 * references in ops.c (double sums where they use them; RoPE, GELU, add and
 * the conversions bit-identical), except exp: see simd_int.h.  Attention kernels are in attention_avx512.c. */
#include <immintrin.h>
#include <math.h>

#include "ops_int.h"
#include "simd_int.h"

static inline __mmask16 tail16(int64_t left)
{
	return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* Sum of the 16 lanes of v, each widened to double, added into acc. */
static inline __m512d add_wide(__m512d acc, __m512 v)
{
	acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
	return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

static void rmsnorm_512(float *y, const float *x, const float *w, int64_t n, float eps)
{
	__m512d acc = _mm512_setzero_pd();
	for (int64_t i = 0; i < n; i += 16) {
		const __m512 v = _mm512_maskz_loadu_ps(tail16(n - i), x + i);
		acc = add_wide(acc, _mm512_mul_ps(v, v));
	}
	const float mean = (float)(_mm512_reduce_add_pd(acc) / (double)n);
	const __m512 scale = _mm512_set1_ps(1.0f / sqrtf(mean + eps));
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		__m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale);
		if (w)
			v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
		_mm512_mask_storeu_ps(y + i, m, v);
	}
}

static void layernorm_512(float *y, const float *x, const float *w, const float *b, int64_t n, float eps)
{
	__m512d acc = _mm512_setzero_pd();
	for (int64_t i = 0; i < n; i += 16)
		acc = add_wide(acc, _mm512_maskz_loadu_ps(tail16(n - i), x + i));
	const float mean = (float)(_mm512_reduce_add_pd(acc) / (double)n);
	const __m512 vmean = _mm512_set1_ps(mean);
	acc = _mm512_setzero_pd();
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		const __m512 v = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vmean);
		acc = add_wide(acc, _mm512_mul_ps(v, v));
	}
	const __m512 scale = _mm512_set1_ps(1.0f / sqrtf((float)(_mm512_reduce_add_pd(acc) / (double)n) + eps));
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		__m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmean), scale);
		if (w)
			v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
		if (b)
			v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
		_mm512_mask_storeu_ps(y + i, m, v);
	}
}

static void rope_512(float *x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float freq_base,
		     float freq_scale, int neox)
{
	float cs[2 * WEFT_ROPE_CHUNK], c[2 * WEFT_ROPE_CHUNK], s[2 * WEFT_ROPE_CHUNK];
	const int64_t half = rot_dim / 2;
	for (int64_t i0 = 0; i0 < half; i0 += WEFT_ROPE_CHUNK) {
		const int64_t i1 = i0 + WEFT_ROPE_CHUNK < half ? i0 + WEFT_ROPE_CHUNK : half, np = i1 - i0;
		weft_rope_cache(cs, i0, i1, rot_dim, pos, freq_base, freq_scale);
		if (neox) { /* pairs (i, i + half): cos and sin per pair */
			for (int64_t i = 0; i < np; i++) {
				c[i] = cs[2 * i];
				s[i] = cs[2 * i + 1];
			}
			for (int64_t h = 0; h < n_heads; h++) {
				float *v0 = x + h * head_dim + i0, *v1 = v0 + half;
				for (int64_t i = 0; i < np; i += 16) {
					const __mmask16 m = tail16(np - i);
					const __m512 a = _mm512_maskz_loadu_ps(m, v0 + i), bb = _mm512_maskz_loadu_ps(m, v1 + i);
					const __m512 vc = _mm512_maskz_loadu_ps(m, c + i), vs = _mm512_maskz_loadu_ps(m, s + i);
					_mm512_mask_storeu_ps(v0 + i, m, _mm512_sub_ps(_mm512_mul_ps(a, vc), _mm512_mul_ps(bb, vs)));
					_mm512_mask_storeu_ps(v1 + i, m, _mm512_add_ps(_mm512_mul_ps(a, vs), _mm512_mul_ps(bb, vc)));
				}
			}
		} else { /* adjacent pairs: cos and sin duplicated across each pair */
			const __m512 neg_even = _mm512_castsi512_ps(_mm512_set1_epi64(0x80000000LL));
			for (int64_t i = 0; i < np; i++) {
				c[2 * i] = c[2 * i + 1] = cs[2 * i];
				s[2 * i] = s[2 * i + 1] = cs[2 * i + 1];
			}
			for (int64_t h = 0; h < n_heads; h++) {
				float *v = x + h * head_dim + 2 * i0;
				for (int64_t i = 0; i < 2 * np; i += 16) {
					const __mmask16 m = tail16(2 * np - i);
					const __m512 a = _mm512_maskz_loadu_ps(m, v + i);
					const __m512 sw = _mm512_permute_ps(a, 0xb1); /* (b, a) per pair */
					const __m512 vc = _mm512_maskz_loadu_ps(m, c + i), vs = _mm512_maskz_loadu_ps(m, s + i);
					/* even lanes a*c - b*s, odd lanes b*c + a*s (no FMA:
					 * bit-identical to the reference) */
					const __m512 bs = _mm512_xor_ps(_mm512_mul_ps(sw, vs), neg_even);
					_mm512_mask_storeu_ps(v + i, m, _mm512_add_ps(_mm512_mul_ps(a, vc), bs));
				}
			}
		}
	}
}

static void softmax_512(float *x, int64_t n)
{
	if (n <= 0)
		return;
	__m512 vmax = _mm512_set1_ps(-INFINITY);
	for (int64_t i = 0; i < n; i += 16)
		vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail16(n - i), x + i));
	const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
	__m512d acc = _mm512_setzero_pd();
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		const __m512 e = _mm512_maskz_mov_ps(m, weft_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), max)));
		_mm512_mask_storeu_ps(x + i, m, e);
		acc = add_wide(acc, e);
	}
	const __m512 inv = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(acc)));
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		_mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
	}
}

static inline __m512 silu16(__m512 x)
{
	const __m512 e = weft_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
	return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static void swiglu_512(float *y, const float *gate, const float *up, int64_t n)
{
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		const __m512 g = silu16(_mm512_maskz_loadu_ps(m, gate + i));
		_mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, up + i)));
	}
}

static void silu_512(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		_mm512_mask_storeu_ps(x + i, m, silu16(_mm512_maskz_loadu_ps(m, x + i)));
	}
}

static void xsigmoid_512(float *x, int64_t n, float a, float c)
{
	const __m512 va = _mm512_set1_ps(a), vc = _mm512_set1_ps(c), one = _mm512_set1_ps(1.0f);
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
		const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
		const __m512 z = _mm512_fmadd_ps(vc, v3, _mm512_mul_ps(va, v));
		const __m512 e = weft_exp16(_mm512_sub_ps(_mm512_setzero_ps(), z));
		_mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(v, _mm512_add_ps(one, e)));
	}
}

/* tab[fp16(x)] for 16 lanes (the table has a padding entry, so the 32-bit
 * gather at index 65535 stays inside). */
static inline __m512 table16(const uint16_t *tab, __m512 x)
{
	const __m256i h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	const __m512i g = _mm512_i32gather_epi32(_mm512_cvtepu16_epi32(h), (const void *)tab, 2);
	return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
}

static void gelu_512(float *x, int64_t n)
{
	const uint16_t *tab = weft_gelu_table();
	const __m512 lo = _mm512_set1_ps(-10.0f), hi = _mm512_set1_ps(10.0f);
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
		__m512 r = table16(tab, v);
		r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, lo, _CMP_LE_OQ), _mm512_setzero_ps());
		r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, hi, _CMP_GE_OQ), v);
		_mm512_mask_storeu_ps(x + i, m, r);
	}
}

static void gelu_quick_512(float *x, int64_t n)
{
	const uint16_t *tab = weft_gelu_quick_table();
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		_mm512_mask_storeu_ps(x + i, m, table16(tab, _mm512_maskz_loadu_ps(m, x + i)));
	}
}

static void add_512(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		_mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i)));
	}
}

static void f32_to_f16_512(uint16_t *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
		_mm256_mask_storeu_epi16(y + i, m, h);
	}
}

static void f16_to_f32_512(float *y, const uint16_t *x, int64_t n)
{
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = tail16(n - i);
		_mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
	}
}

const weft_ops_vt weft_ops_avx512_vt = {
	.name = "avx512",
	.rmsnorm = rmsnorm_512,
	.layernorm = layernorm_512,
	.rope = rope_512,
	.softmax = softmax_512,
	.swiglu = swiglu_512,
	.gelu = gelu_512,
	.gelu_quick = gelu_quick_512,
	.silu = silu_512,
	.xsigmoid = xsigmoid_512,
	.add = add_512,
	.f32_to_f16 = f32_to_f16_512,
	.f16_to_f32 = f16_to_f32_512,
	.attn_rows = weft_attn_rows_avx512,
	.attn_rows_grp = weft_attn_rows_grp_avx512,
	.attn_mass = weft_attn_mass_avx512,
	.attn_kv_types = 1u << WEFT_TYPE_F16 | 1u << WEFT_TYPE_F32,
	.attn_ext = WEFT_ATTN_EXT_KCHAN | WEFT_ATTN_EXT_KIVI | WEFT_ATTN_EXT_GEAR | WEFT_ATTN_EXT_VIEW,
	.sgemm = weft_sgemm_avx512,
};

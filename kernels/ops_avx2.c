/* ops_avx2.c - the float ops with AVX2 + FMA + F16C (8 lanes; float tails
 * through maskload/maskstore, half tails through a small buffer).  Same
 * numerics as the references in ops.c (double sums where they use them;
 * RoPE, GELU, add and the conversions bit-identical), except exp: see
 * simd_int.h.  Attention kernels are in attention_avx2.c. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "ops_int.h"
#include "simd_int.h"

/* Lane mask for the first min(left, 8) lanes. */
static inline __m256i tail8(int64_t left)
{
	const int l = left >= 8 ? 8 : (int)left;
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256 ld(const float *p, int64_t left)
{
	return left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail8(left));
}

static inline void stv(float *p, int64_t left, __m256 v)
{
	if (left >= 8)
		_mm256_storeu_ps(p, v);
	else
		_mm256_maskstore_ps(p, tail8(left), v);
}

/* acc + the 8 lanes of v widened to double (two 4-lane halves). */
static inline __m256d add_wide(__m256d acc, __m256 v)
{
	acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
	return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static inline double hsum_pd(__m256d v)
{
	__m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
	return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static inline float hmax_ps(__m256 v)
{
	__m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_max_ps(s, _mm_movehl_ps(s, s));
	s = _mm_max_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static void rmsnorm_avx2(float *y, const float *x, const float *w, int64_t n, float eps)
{
	__m256d acc = _mm256_setzero_pd();
	for (int64_t i = 0; i < n; i += 8) {
		const __m256 v = ld(x + i, n - i);
		acc = add_wide(acc, _mm256_mul_ps(v, v));
	}
	const float mean = (float)(hsum_pd(acc) / (double)n);
	const __m256 scale = _mm256_set1_ps(1.0f / sqrtf(mean + eps));
	for (int64_t i = 0; i < n; i += 8) {
		__m256 v = _mm256_mul_ps(ld(x + i, n - i), scale);
		if (w)
			v = _mm256_mul_ps(v, ld(w + i, n - i));
		stv(y + i, n - i, v);
	}
}

static void layernorm_avx2(float *y, const float *x, const float *w, const float *b, int64_t n, float eps)
{
	__m256d acc = _mm256_setzero_pd();
	for (int64_t i = 0; i < n; i += 8)
		acc = add_wide(acc, ld(x + i, n - i));
	const float mean = (float)(hsum_pd(acc) / (double)n);
	const __m256 vmean = _mm256_set1_ps(mean);
	acc = _mm256_setzero_pd();
	for (int64_t i = 0; i < n; i += 8) {
		__m256 v = _mm256_sub_ps(ld(x + i, n - i), vmean);
		v = _mm256_and_ps(v, _mm256_castsi256_ps(tail8(n - i)));
		acc = add_wide(acc, _mm256_mul_ps(v, v));
	}
	const __m256 scale = _mm256_set1_ps(1.0f / sqrtf((float)(hsum_pd(acc) / (double)n) + eps));
	for (int64_t i = 0; i < n; i += 8) {
		__m256 v = _mm256_mul_ps(_mm256_sub_ps(ld(x + i, n - i), vmean), scale);
		if (w)
			v = _mm256_mul_ps(v, ld(w + i, n - i));
		if (b)
			v = _mm256_add_ps(v, ld(b + i, n - i));
		stv(y + i, n - i, v);
	}
}

static void rope_avx2(float *x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float freq_base,
		      float freq_scale, int neox)
{
	float cs[2 * WEFT_ROPE_CHUNK], c[2 * WEFT_ROPE_CHUNK], s[2 * WEFT_ROPE_CHUNK];
	const int64_t half = rot_dim / 2;
	for (int64_t i0 = 0; i0 < half; i0 += WEFT_ROPE_CHUNK) {
		const int64_t i1 = i0 + WEFT_ROPE_CHUNK < half ? i0 + WEFT_ROPE_CHUNK : half, np = i1 - i0;
		weft_rope_cache(cs, i0, i1, rot_dim, pos, freq_base, freq_scale);
		if (neox) {
			for (int64_t i = 0; i < np; i++) {
				c[i] = cs[2 * i];
				s[i] = cs[2 * i + 1];
			}
			for (int64_t h = 0; h < n_heads; h++) {
				float *v0 = x + h * head_dim + i0, *v1 = v0 + half;
				for (int64_t i = 0; i < np; i += 8) {
					const __m256 a = ld(v0 + i, np - i), bb = ld(v1 + i, np - i);
					const __m256 vc = ld(c + i, np - i), vs = ld(s + i, np - i);
					stv(v0 + i, np - i, _mm256_sub_ps(_mm256_mul_ps(a, vc), _mm256_mul_ps(bb, vs)));
					stv(v1 + i, np - i, _mm256_add_ps(_mm256_mul_ps(a, vs), _mm256_mul_ps(bb, vc)));
				}
			}
		} else {
			for (int64_t i = 0; i < np; i++) {
				c[2 * i] = c[2 * i + 1] = cs[2 * i];
				s[2 * i] = s[2 * i + 1] = cs[2 * i + 1];
			}
			for (int64_t h = 0; h < n_heads; h++) {
				float *v = x + h * head_dim + 2 * i0;
				for (int64_t i = 0; i < 2 * np; i += 8) {
					const __m256 a = ld(v + i, 2 * np - i);
					const __m256 sw = _mm256_permute_ps(a, 0xb1);
					const __m256 vc = ld(c + i, 2 * np - i), vs = ld(s + i, 2 * np - i);
					/* even lanes a*c - b*s, odd lanes b*c + a*s */
					stv(v + i, 2 * np - i, _mm256_addsub_ps(_mm256_mul_ps(a, vc), _mm256_mul_ps(sw, vs)));
				}
			}
		}
	}
}

static void softmax_avx2(float *x, int64_t n)
{
	if (n <= 0)
		return;
	const __m256 ninf = _mm256_set1_ps(-INFINITY);
	__m256 vmax = ninf;
	for (int64_t i = 0; i < n; i += 8)
		vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, ld(x + i, n - i), _mm256_castsi256_ps(tail8(n - i))));
	const __m256 max = _mm256_set1_ps(hmax_ps(vmax));
	__m256d acc = _mm256_setzero_pd();
	for (int64_t i = 0; i < n; i += 8) {
		__m256 e = weft_exp8(_mm256_sub_ps(ld(x + i, n - i), max));
		e = _mm256_and_ps(e, _mm256_castsi256_ps(tail8(n - i)));
		stv(x + i, n - i, e);
		acc = add_wide(acc, e);
	}
	const __m256 inv = _mm256_set1_ps((float)(1.0 / hsum_pd(acc)));
	for (int64_t i = 0; i < n; i += 8)
		stv(x + i, n - i, _mm256_mul_ps(ld(x + i, n - i), inv));
}

static inline __m256 silu8(__m256 x)
{
	const __m256 e = weft_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
	return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static void swiglu_avx2(float *y, const float *gate, const float *up, int64_t n)
{
	for (int64_t i = 0; i < n; i += 8)
		stv(y + i, n - i, _mm256_mul_ps(silu8(ld(gate + i, n - i)), ld(up + i, n - i)));
}

static void silu_avx2(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i += 8)
		stv(x + i, n - i, silu8(ld(x + i, n - i)));
}

static void xsigmoid_avx2(float *x, int64_t n, float a, float c)
{
	const __m256 va = _mm256_set1_ps(a), vc = _mm256_set1_ps(c), one = _mm256_set1_ps(1.0f);
	for (int64_t i = 0; i < n; i += 8) {
		const __m256 v = ld(x + i, n - i);
		const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
		const __m256 z = _mm256_fmadd_ps(vc, v3, _mm256_mul_ps(va, v));
		const __m256 e = weft_exp8(_mm256_sub_ps(_mm256_setzero_ps(), z));
		stv(x + i, n - i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
	}
}

/* tab[fp16(x)] for 8 lanes (32-bit gathers; the table has a padding entry). */
static inline __m256 table8(const uint16_t *tab, __m256 x)
{
	const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256i g = _mm256_i32gather_epi32((const int *)(const void *)tab, _mm256_cvtepu16_epi32(h), 2);
	g = _mm256_and_si256(g, _mm256_set1_epi32(0xffff));
	const __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(g), _mm256_extracti128_si256(g, 1));
	return _mm256_cvtph_ps(p);
}

static void gelu_avx2(float *x, int64_t n)
{
	const uint16_t *tab = weft_gelu_table();
	const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
	for (int64_t i = 0; i < n; i += 8) {
		const __m256 v = ld(x + i, n - i);
		__m256 r = table8(tab, v);
		r = _mm256_blendv_ps(r, _mm256_setzero_ps(), _mm256_cmp_ps(v, lo, _CMP_LE_OQ));
		r = _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, hi, _CMP_GE_OQ));
		stv(x + i, n - i, r);
	}
}

static void gelu_quick_avx2(float *x, int64_t n)
{
	const uint16_t *tab = weft_gelu_quick_table();
	for (int64_t i = 0; i < n; i += 8)
		stv(x + i, n - i, table8(tab, ld(x + i, n - i)));
}

static void add_avx2(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i += 8)
		stv(y + i, n - i, _mm256_add_ps(ld(y + i, n - i), ld(x + i, n - i)));
}

static void f32_to_f16_avx2(uint16_t *y, const float *x, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((void *)(y + i),
				 _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	if (i < n) {
		uint16_t buf[8];
		_mm_storeu_si128((void *)buf, _mm256_cvtps_ph(ld(x + i, n - i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
		memcpy(y + i, buf, sizeof(uint16_t) * (size_t)(n - i));
	}
}

static void f16_to_f32_avx2(float *y, const uint16_t *x, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const void *)(x + i))));
	if (i < n) {
		uint16_t buf[8] = {0};
		memcpy(buf, x + i, sizeof(uint16_t) * (size_t)(n - i));
		stv(y + i, n - i, _mm256_cvtph_ps(_mm_loadu_si128((const void *)buf)));
	}
}

const weft_ops_vt weft_ops_avx2_vt = {
	.name = "avx2",
	.rmsnorm = rmsnorm_avx2,
	.layernorm = layernorm_avx2,
	.rope = rope_avx2,
	.softmax = softmax_avx2,
	.swiglu = swiglu_avx2,
	.gelu = gelu_avx2,
	.gelu_quick = gelu_quick_avx2,
	.silu = silu_avx2,
	.xsigmoid = xsigmoid_avx2,
	.add = add_avx2,
	.f32_to_f16 = f32_to_f16_avx2,
	.f16_to_f32 = f16_to_f32_avx2,
	.attn_rows = weft_attn_rows_avx2,
	.attn_mass = weft_attn_mass_avx2,
	.attn_kv_types = 1u << WEFT_TYPE_F16,
	.attn_ext = 0,
	.sgemm = weft_sgemm_avx2,
};

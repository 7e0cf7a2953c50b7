/* attention_avx2.c - the attention kernels with AVX2 + FMA + F16C; the
 * same blocked online softmax as attention_avx512.c, 8 lanes, with scalar
 * tails when head_dim is not a multiple of 8. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "ops_int.h"
#include "simd_int.h"
#include "util.h"

#define KB 64 /* keys per block */

static inline __m256 ld_h(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const void *)p));
}

static inline float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline float dot_f16(const float *q, const uint16_t *k, int hd)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	int d = 0;
	for (; d + 16 <= hd; d += 16) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), ld_h(k + d), a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), ld_h(k + d + 8), a1);
	}
	for (; d + 8 <= hd; d += 8)
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), ld_h(k + d), a0);
	float s = hsum(_mm256_add_ps(a0, a1));
	for (; d < hd; d++)
		s += q[d] * weft_fp16_to_fp32(k[d]);
	return s;
}

/* q . K[j] for 8 keys (hd a multiple of 8): one accumulator per key, then
 * a transposing reduction of the 8. */
static inline __attribute__((always_inline)) __m256 dot8_keys(const float *q, const uint16_t *K, int hd)
{
	__m256 acc[8], r1[4], r2[2];
#pragma GCC unroll 8
	for (int j = 0; j < 8; j++)
		acc[j] = _mm256_setzero_ps();
	for (int d = 0; d < hd; d += 8) {
		const __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
		for (int j = 0; j < 8; j++)
			acc[j] = _mm256_fmadd_ps(qv, ld_h(K + (int64_t)j * hd + d), acc[j]);
	}
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++) /* 128-bit halves: keys i, i+4 */
		r1[i] = _mm256_add_ps(_mm256_permute2f128_ps(acc[i], acc[i + 4], 0x20),
				      _mm256_permute2f128_ps(acc[i], acc[i + 4], 0x31));
#pragma GCC unroll 2
	for (int i = 0; i < 2; i++)
		r2[i] = _mm256_add_ps(_mm256_shuffle_ps(r1[i], r1[i + 2], 0x44), _mm256_shuffle_ps(r1[i], r1[i + 2], 0xee));
	const __m256 r3 = _mm256_add_ps(_mm256_shuffle_ps(r2[0], r2[1], 0x88), _mm256_shuffle_ps(r2[0], r2[1], 0xdd));
	/* lane 4b + c holds key {0,2,1,3}[c] + 4b */
	return _mm256_permutevar8x32_ps(r3, _mm256_setr_epi32(0, 2, 1, 3, 4, 6, 5, 7));
}

/* s[j] = scale * (q . K[j]) for j < nb; returns their max. */
static float scores(float *s, const float *q, const uint16_t *K, int nb, int hd, float scale)
{
	const __m256 vs = _mm256_set1_ps(scale);
	__m256 vm = _mm256_set1_ps(-INFINITY);
	int j = 0;
	if (hd % 8 == 0)
		for (; j + 8 <= nb; j += 8) {
			const __m256 v = _mm256_mul_ps(dot8_keys(q, K + (int64_t)j * hd, hd), vs);
			_mm256_storeu_ps(s + j, v);
			vm = _mm256_max_ps(vm, v);
		}
	__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
	m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
	m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
	float m = _mm_cvtss_f32(m4);
	for (; j < nb; j++) {
		s[j] = dot_f16(q, K + (int64_t)j * hd, hd) * scale;
		m = s[j] > m ? s[j] : m;
	}
	return m;
}

/* acc[0..hd) += sum_j p[j] * V[j] for nb rows of V. */
static void acc_pv(float *acc, const float *p, const uint16_t *V, int nb, int hd)
{
	int d = 0;
	for (; d + 32 <= hd; d += 32) {
		__m256 a0 = _mm256_loadu_ps(acc + d), a1 = _mm256_loadu_ps(acc + d + 8);
		__m256 a2 = _mm256_loadu_ps(acc + d + 16), a3 = _mm256_loadu_ps(acc + d + 24);
		const uint16_t *v = V + d;
		for (int j = 0; j < nb; j++, v += hd) {
			const __m256 pj = _mm256_set1_ps(p[j]);
			a0 = _mm256_fmadd_ps(pj, ld_h(v), a0);
			a1 = _mm256_fmadd_ps(pj, ld_h(v + 8), a1);
			a2 = _mm256_fmadd_ps(pj, ld_h(v + 16), a2);
			a3 = _mm256_fmadd_ps(pj, ld_h(v + 24), a3);
		}
		_mm256_storeu_ps(acc + d, a0);
		_mm256_storeu_ps(acc + d + 8, a1);
		_mm256_storeu_ps(acc + d + 16, a2);
		_mm256_storeu_ps(acc + d + 24, a3);
	}
	for (; d + 8 <= hd; d += 8) {
		__m256 a0 = _mm256_loadu_ps(acc + d);
		const uint16_t *v = V + d;
		for (int j = 0; j < nb; j++, v += hd)
			a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), ld_h(v), a0);
		_mm256_storeu_ps(acc + d, a0);
	}
	for (; d < hd; d++) {
		float a = acc[d];
		for (int j = 0; j < nb; j++)
			a += p[j] * weft_fp16_to_fp32(V[(int64_t)j * hd + d]);
		acc[d] = a;
	}
}

/* p[j] = exp(s[j] - m) for j < nb; returns their sum (lanes, then tail). */
static float exp_block(float *p, const float *s, int nb, float m)
{
	const __m256 vm = _mm256_set1_ps(m);
	__m256 vl = _mm256_setzero_ps();
	int j = 0;
	for (; j + 8 <= nb; j += 8) {
		const __m256 e = weft_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
		_mm256_storeu_ps(p + j, e);
		vl = _mm256_add_ps(vl, e);
	}
	if (j < nb) { /* the tail through a padded buffer, same vector exp */
		float buf[8] = {0};
		memcpy(buf, s + j, sizeof(float) * (size_t)(nb - j));
		const __m256 keep = _mm256_castsi256_ps(
			_mm256_cmpgt_epi32(_mm256_set1_epi32(nb - j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
		const __m256 e = _mm256_and_ps(weft_exp8(_mm256_sub_ps(_mm256_loadu_ps(buf), vm)), keep);
		_mm256_storeu_ps(buf, e);
		memcpy(p + j, buf, sizeof(float) * (size_t)(nb - j));
		vl = _mm256_add_ps(vl, e);
	}
	return hsum(vl);
}

void weft_attn_rows_avx2(const weft_attn_args *a, int h, int64_t t0, int64_t t1, float *st)
{
	const int hd = a->hd;
	const int g = h / (a->n_head / a->n_head_kv);
	const uint16_t *K = (const uint16_t *)a->K + weft_attn_head0(a, g) * hd,
		       *V = (const uint16_t *)a->V + weft_attn_head0(a, g) * hd;
	float acc[WEFT_ATTN_MAX_HD];
	float s[KB];
	for (int64_t t = t0; t < t1; t++) {
		const float *q = a->Q + (t * a->n_head + h) * hd;
		float *o = a->out + (t * a->n_head + h) * hd;
		const int64_t n = weft_attn_visible(a, g, t);
		float m = -INFINITY, l = 0.0f;
		memset(acc, 0, sizeof(float) * (size_t)hd);
		for (int64_t jb = 0; jb < n; jb += KB) {
			const int nb = n - jb < KB ? (int)(n - jb) : KB;
			const float bm = scores(s, q, K + jb * hd, nb, hd, a->scale);
			if (bm > m) {
				if (l > 0.0f) {
					const float r = expf(m - bm);
					for (int d = 0; d < hd; d++)
						acc[d] *= r;
					l *= r;
				}
				m = bm;
			}
			l += exp_block(s, s, nb, m);
			acc_pv(acc, s, V + jb * hd, nb, hd);
		}
		const float inv = l > 0.0f ? 1.0f / l : 0.0f;
		for (int d = 0; d < hd; d++)
			o[d] = acc[d] * inv;
		if (st) {
			st[2 * (t - t0)] = n > 0 ? m : 0.0f;
			st[2 * (t - t0) + 1] = l;
		}
	}
}

void weft_attn_mass_avx2(const weft_attn_args *a, int g, int64_t j0, int64_t j1, int64_t t0, int64_t t1,
			 const float *st)
{
	const int hd = a->hd, rep = a->n_head / a->n_head_kv;
	const uint16_t *K = (const uint16_t *)a->K + weft_attn_head0(a, g) * hd;
	float loc[WEFT_MASS_BLOCK] = {0}, s[WEFT_MASS_BLOCK];
	for (int h = g * rep; h < (g + 1) * rep; h++)
		for (int64_t t = t0; t < t1; t++) {
			const int64_t n = weft_attn_visible(a, g, t);
			const int nb = (int)((n < j1 ? n : j1) - j0);
			const float *sp = st + ((t - t0) * a->n_head + h) * 2;
			if (nb <= 0 || !(sp[1] > 0.0f))
				continue;
			const float *q = a->Q + (t * a->n_head + h) * hd;
			scores(s, q, K + j0 * hd, nb, hd, a->scale);
			exp_block(s, s, nb, sp[0]);
			const float inv = 1.0f / sp[1];
			for (int j = 0; j < nb; j++)
				loc[j] += s[j] * inv;
		}
	float *mass = a->mass + g * a->mass_stride;
	for (int64_t j = j0; j < j1; j++)
		mass[j] += loc[j - j0];
}

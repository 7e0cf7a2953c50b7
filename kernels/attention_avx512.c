/* attention_avx512.c - the attention kernels with AVX-512 (see
 * attention.c for the scheme).  Keys are taken in blocks of KB: their
 * scores (one dot product of hd each), the block max, then the weights
 * exp(s - m) as vectors and the weighted V rows added into an accumulator
 * of hd floats; the accumulator and denominator are rescaled only when the
 * running max grows (at most once per block). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "ops_int.h"
#include "simd_int.h"
#include "util.h"

#define KB 64 /* keys per block */

static inline __mmask16 tail16(int64_t left)
{
	return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

static inline __m512 ld_h(__mmask16 m, const uint16_t *p)
{
	return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

/* 16 K or V values from element i of p: IEEE half (F = 0) or float (F = 1,
 * weft_attn_args.kv_type F32) */
static inline __attribute__((always_inline)) __m512 ldkv(const int F, __mmask16 m, const void *p, int64_t i)
{
	return F ? _mm512_maskz_loadu_ps(m, (const float *)p + i) : ld_h(m, (const uint16_t *)p + i);
}

static inline __attribute__((always_inline)) __m512 ldkv_full(const int F, const void *p, int64_t i)
{
	return F ? _mm512_loadu_ps((const float *)p + i)
		 : _mm512_cvtph_ps(_mm256_loadu_si256((const void *)((const uint16_t *)p + i)));
}

/* q . k for a float q and a half k of hd values. */
static inline __attribute__((always_inline)) float dot_kv(const int F, const float *q, const void *k, int64_t k0,
							  int hd)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
	int d = 0;
	for (; d + 32 <= hd; d += 32) {
		a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), ldkv_full(F, k, k0 + d), a0);
		a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d + 16), ldkv_full(F, k, k0 + d + 16), a1);
	}
	for (; d < hd; d += 16) {
		const __mmask16 m = tail16(hd - d);
		a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), ldkv(F, m, k, k0 + d), a0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

/* s[j] = scale * (q . K[j]) for 16 keys (hd a multiple of 16): one
 * accumulator per key, then a transposing reduction of the 16 (46 ops for
 * 16 keys instead of a full horizontal sum per key). */
static inline __attribute__((always_inline)) __m512 dot16_keys(const int F, const float *q, const void *K, int64_t k0,
							       int hd)
{
	__m512 acc[16];
#pragma GCC unroll 16
	for (int j = 0; j < 16; j++)
		acc[j] = _mm512_setzero_ps();
	for (int d = 0; d < hd; d += 16) {
		const __m512 qv = _mm512_loadu_ps(q + d);
#pragma GCC unroll 16
		for (int j = 0; j < 16; j++)
			acc[j] = _mm512_fmadd_ps(qv, ldkv_full(F, K, k0 + (int64_t)j * hd + d), acc[j]);
	}
	__m512 r1[8], r2[4], r3[2];
#pragma GCC unroll 8
	for (int i = 0; i < 8; i++) /* 256-bit halves: keys i, i+8 */
		r1[i] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[i], acc[i + 8], 0x44),
				      _mm512_shuffle_f32x4(acc[i], acc[i + 8], 0xee));
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++) /* 128-bit blocks: keys i, i+8, i+4, i+12 */
		r2[i] = _mm512_add_ps(_mm512_shuffle_f32x4(r1[i], r1[i + 4], 0x88),
				      _mm512_shuffle_f32x4(r1[i], r1[i + 4], 0xdd));
#pragma GCC unroll 2
	for (int i = 0; i < 2; i++)
		r3[i] = _mm512_add_ps(_mm512_shuffle_ps(r2[i], r2[i + 2], 0x44), _mm512_shuffle_ps(r2[i], r2[i + 2], 0xee));
	const __m512 r4 = _mm512_add_ps(_mm512_shuffle_ps(r3[0], r3[1], 0x88), _mm512_shuffle_ps(r3[0], r3[1], 0xdd));
	/* lane 4b + c holds key {0,2,1,3}[c] + {0,8,4,12}[b]; put key j in lane j */
	const __m512i perm = _mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15);
	return _mm512_permutexvar_ps(perm, r4);
}

/* acc[0..hd) += sum_j p[j] * V[j] for nb rows of V (hd halves each). */
static inline __attribute__((always_inline)) void acc_pv(const int F, float *acc, const float *p, const void *V,
							 int64_t v0, int nb, int hd)
{
	for (int d = 0; d < hd; d += 64) {
		const __mmask16 m0 = tail16(hd - d), m1 = tail16(hd - d - 16 < 0 ? 0 : hd - d - 16),
				m2 = tail16(hd - d - 32 < 0 ? 0 : hd - d - 32), m3 = tail16(hd - d - 48 < 0 ? 0 : hd - d - 48);
		__m512 a0 = _mm512_loadu_ps(acc + d), a1 = _mm512_loadu_ps(acc + d + 16);
		__m512 a2 = _mm512_loadu_ps(acc + d + 32), a3 = _mm512_loadu_ps(acc + d + 48);
		int64_t v = v0 + d;
		if (m3 == 0xffff) {
			for (int j = 0; j < nb; j++, v += hd) {
				const __m512 pj = _mm512_set1_ps(p[j]);
				a0 = _mm512_fmadd_ps(pj, ldkv_full(F, V, v), a0);
				a1 = _mm512_fmadd_ps(pj, ldkv_full(F, V, v + 16), a1);
				a2 = _mm512_fmadd_ps(pj, ldkv_full(F, V, v + 32), a2);
				a3 = _mm512_fmadd_ps(pj, ldkv_full(F, V, v + 48), a3);
			}
		} else {
			for (int j = 0; j < nb; j++, v += hd) {
				const __m512 pj = _mm512_set1_ps(p[j]);
				a0 = _mm512_fmadd_ps(pj, ldkv(F, m0, V, v), a0);
				a1 = _mm512_fmadd_ps(pj, ldkv(F, m1, V, v + 16), a1);
				a2 = _mm512_fmadd_ps(pj, ldkv(F, m2, V, v + 32), a2);
				a3 = _mm512_fmadd_ps(pj, ldkv(F, m3, V, v + 48), a3);
			}
		}
		_mm512_storeu_ps(acc + d, a0);
		_mm512_storeu_ps(acc + d + 16, a1);
		_mm512_storeu_ps(acc + d + 32, a2);
		_mm512_storeu_ps(acc + d + 48, a3);
	}
}

/* s[j] = scale * (q . K[j]) for j < nb; *max = their max. */
static inline __attribute__((always_inline)) void scores(const int F, float *s, const float *q, const void *K,
							 int64_t k0, int nb, int hd, float scale, float *max)
{
	const __m512 vs = _mm512_set1_ps(scale);
	__m512 vm = _mm512_set1_ps(-INFINITY);
	int j = 0;
	if (hd % 16 == 0)
		for (; j + 16 <= nb; j += 16) {
			const __m512 v = _mm512_mul_ps(dot16_keys(F, q, K, k0 + (int64_t)j * hd, hd), vs);
			_mm512_storeu_ps(s + j, v);
			vm = _mm512_max_ps(vm, v);
		}
	float m = _mm512_reduce_max_ps(vm);
	for (; j < nb; j++) {
		s[j] = dot_kv(F, q, K, k0 + (int64_t)j * hd, hd) * scale;
		m = s[j] > m ? s[j] : m;
	}
	*max = m;
}

/* Unpack n = 16 codes of b bits (kernels.h packing) as 16 floats. */
static inline __m512 unpack16(const uint8_t *p, int bits)
{
	__m128i x;
	if (bits == 8) {
		x = _mm_loadu_si128((const void *)p);
	} else if (bits == 4) {
		const __m128i b = _mm_loadl_epi64((const void *)p);
		x = _mm_and_si128(_mm_unpacklo_epi64(b, _mm_srli_epi16(b, 4)), _mm_set1_epi8(0x0f));
	} else {
		int32_t w;
		memcpy(&w, p, 4);
		const __m128i b = _mm_cvtsi32_si128(w);
		x = _mm_unpacklo_epi64(_mm_unpacklo_epi32(b, _mm_srli_epi16(b, 2)),
				       _mm_unpacklo_epi32(_mm_srli_epi16(b, 4), _mm_srli_epi16(b, 6)));
		x = _mm_and_si128(x, _mm_set1_epi8(0x03));
	}
	return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(x));
}

/* Unpack n = 32 codes of b bits as two vectors of 16 (codes 0-15, 16-31). */
static inline void unpack32(const uint8_t *p, int bits, __m512 *lo, __m512 *hi)
{
	__m128i a, b;
	if (bits == 8) {
		a = _mm_loadu_si128((const void *)p);
		b = _mm_loadu_si128((const void *)(p + 16));
	} else if (bits == 4) {
		const __m128i x = _mm_loadu_si128((const void *)p), m = _mm_set1_epi8(0x0f);
		a = _mm_and_si128(x, m);
		b = _mm_and_si128(_mm_srli_epi16(x, 4), m);
	} else {
		const __m128i x = _mm_loadl_epi64((const void *)p), m = _mm_set1_epi8(0x03);
		a = _mm_and_si128(_mm_unpacklo_epi64(x, _mm_srli_epi16(x, 2)), m);
		b = _mm_and_si128(_mm_unpacklo_epi64(_mm_srli_epi16(x, 4), _mm_srli_epi16(x, 6)), m);
	}
	*lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(a));
	*hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
}

/* The KIVI prefix of KV head g for one query qk (kd channels): per block of
 * 32 rows, the scores as sum_c (q_c s_c) code_c + sum_c q_c m_c (one fma per
 * channel and 16 rows), the block's softmax update, then each row's value
 * groups dequantized into the accumulator.  (m, l, acc) as rows_impl. */
static void kivi_prefix(const weft_attn_args *a, int g, const float *qk, float *m, float *l, float *acc)
{
	const weft_attn_kivi *kq = a->kivi;
	const int hd = a->hd, kd = weft_attn_kd(a), vg = kq->vgroup, kb = kq->kbits, vb = kq->vbits;
	const size_t kbb = weft_kivi_kblock_bytes(kd, kb), vrb = weft_kivi_vrow_bytes(hd, vg, vb);
	const size_t kper = (size_t)WEFT_KIVI_BLOCK * (size_t)kb / 8, vper = 4 + (size_t)vg * (size_t)vb / 8;
	float p[WEFT_KIVI_BLOCK], qs[WEFT_ATTN_MAX_HD], sb[WEFT_KIVI_BLOCK];
	if (vg != 16 && vg != 32) {
		weft_attn_kivi_ref(a, g, qk, m, l, acc);
		return;
	}
	/* GEAR: the keys' low-rank term of row r is A_k[r] . (B_k q); the
	 * values' sum over rows of p_r A_v[r] (w, rescaled with acc), times B_v
	 * at the end; outliers added where they fall */
	const int R = kq->rank > 0 ? kq->rank : 0, nlr = R ? kq->lr_n[g] : 0;
	float bq[64], w[64] = {0};
	for (int i = 0; i < R && i < 64; i++) {
		float t = 0;
		for (int c = 0; c < kd; c++)
			t += kq->kbasis[g][i * kd + c] * qk[c];
		bq[i] = t;
	}
	int64_t ko = 0, vo = 0;
	for (int b = 0; b < kq->n[g] / WEFT_KIVI_BLOCK; b++) {
		const uint8_t *blk = kq->kb[g] + (size_t)b * kbb, *codes = blk + (size_t)kd * 4;
		const uint16_t *sc = (const uint16_t *)blk, *mn = sc + kd;
		__m512 c0 = _mm512_setzero_ps();
		for (int c = 0; c < kd; c += 16) { /* q_c s_c, and sum_c q_c m_c */
			const __mmask16 mk = tail16(kd - c);
			const __m512 qv = _mm512_maskz_loadu_ps(mk, qk + c);
			_mm512_mask_storeu_ps(qs + c, mk, _mm512_mul_ps(qv, ld_h(mk, sc + c)));
			c0 = _mm512_fmadd_ps(qv, ld_h(mk, mn + c), c0);
		}
		__m512 s0 = _mm512_set1_ps(_mm512_reduce_add_ps(c0)), s1 = s0;
		for (int c = 0; c < kd; c++) {
			__m512 lo, hi;
			unpack32(codes + (size_t)c * kper, kb, &lo, &hi);
			const __m512 wc = _mm512_set1_ps(qs[c]);
			s0 = _mm512_fmadd_ps(wc, lo, s0);
			s1 = _mm512_fmadd_ps(wc, hi, s1);
		}
		if (R || kq->ko) { /* GEAR's key terms, row by row */
			_mm512_storeu_ps(sb, s0);
			_mm512_storeu_ps(sb + 16, s1);
			for (int r = 0; r < WEFT_KIVI_BLOCK && b * WEFT_KIVI_BLOCK + r < nlr; r++)
				for (int i = 0; i < R; i++)
					sb[r] += _cvtsh_ss(kq->ka[g][(int64_t)(b * WEFT_KIVI_BLOCK + r) * R + i]) * bq[i];
			for (; kq->ko && ko < kq->ko_n[g] && kq->ko[g][ko].row < (b + 1) * WEFT_KIVI_BLOCK; ko++)
				sb[kq->ko[g][ko].row - b * WEFT_KIVI_BLOCK] += qk[kq->ko[g][ko].chan] * _cvtsh_ss(kq->ko[g][ko].val);
			s0 = _mm512_loadu_ps(sb);
			s1 = _mm512_loadu_ps(sb + 16);
		}
		const __m512 vs = _mm512_set1_ps(a->scale);
		s0 = _mm512_mul_ps(s0, vs);
		s1 = _mm512_mul_ps(s1, vs);
		const float bm = _mm512_reduce_max_ps(_mm512_max_ps(s0, s1));
		if (bm > *m) {
			if (*l > 0.0f) {
				const float f = expf(*m - bm);
				const __m512 vr = _mm512_set1_ps(f);
				for (int d = 0; d < hd; d += 16)
					_mm512_storeu_ps(acc + d, _mm512_mul_ps(_mm512_loadu_ps(acc + d), vr));
				for (int i = 0; i < R; i++)
					w[i] *= f;
				*l *= f;
			}
			*m = bm;
		}
		const __m512 vm = _mm512_set1_ps(*m);
		const __m512 e0 = weft_exp16(_mm512_sub_ps(s0, vm)), e1 = weft_exp16(_mm512_sub_ps(s1, vm));
		_mm512_storeu_ps(p, e0);
		_mm512_storeu_ps(p + 16, e1);
		*l += _mm512_reduce_add_ps(_mm512_add_ps(e0, e1));
		const uint8_t *vrow = kq->vb[g] + (size_t)b * WEFT_KIVI_BLOCK * vrb;
		for (int r = 0; r < WEFT_KIVI_BLOCK; r++, vrow += vrb)
			for (int gi = 0; gi < hd / vg; gi++) {
				const uint8_t *gp = vrow + (size_t)gi * vper;
				uint16_t hs, hm;
				memcpy(&hs, gp, 2);
				memcpy(&hm, gp + 2, 2);
				const __m512 ws = _mm512_set1_ps(p[r] * weft_fp16_to_fp32(hs)),
					     wm = _mm512_set1_ps(p[r] * weft_fp16_to_fp32(hm));
				float *ac = acc + gi * vg;
				if (vg == 32) {
					__m512 lo, hi;
					unpack32(gp + 4, vb, &lo, &hi);
					_mm512_storeu_ps(ac, _mm512_add_ps(_mm512_fmadd_ps(ws, lo, _mm512_loadu_ps(ac)), wm));
					_mm512_storeu_ps(ac + 16,
							 _mm512_add_ps(_mm512_fmadd_ps(ws, hi, _mm512_loadu_ps(ac + 16)), wm));
				} else { /* vg == 16 */
					_mm512_storeu_ps(ac, _mm512_add_ps(_mm512_fmadd_ps(ws, unpack16(gp + 4, vb),
											  _mm512_loadu_ps(ac)), wm));
				}
			}
		for (int r = 0; r < WEFT_KIVI_BLOCK && b * WEFT_KIVI_BLOCK + r < nlr; r++)
			for (int i = 0; i < R; i++)
				w[i] += p[r] * _cvtsh_ss(kq->va[g][(int64_t)(b * WEFT_KIVI_BLOCK + r) * R + i]);
		for (; kq->vo && vo < kq->vo_n[g] && kq->vo[g][vo].row < (b + 1) * WEFT_KIVI_BLOCK; vo++)
			acc[kq->vo[g][vo].chan] += p[kq->vo[g][vo].row - b * WEFT_KIVI_BLOCK] * _cvtsh_ss(kq->vo[g][vo].val);
	}
	for (int i = 0; i < R; i++) /* the values' low-rank term, folded in */
		for (int d = 0; d < hd; d++)
			acc[d] += w[i] * kq->vbasis[g][i * hd + d];
}

/* The KIVI prefix for the R query heads of KV head g at once (head size 64,
 * value groups of 32: SmolLM2, Llama): each block's codes are unpacked once
 * for all R heads, the value accumulators stay in registers, and each value
 * group's minimum term is summed as a scalar and added once per block. */
static inline __attribute__((always_inline)) void kivi_grp64(const int R, const weft_attn_args *a, int g,
							     const float *const *qk, float *m, float *l, float *const *acc)
{
	const weft_attn_kivi *kq = a->kivi;
	const int kd = weft_attn_kd(a), kb = kq->kbits, vb = kq->vbits;
	const size_t kbb = weft_kivi_kblock_bytes(kd, kb), vrb = weft_kivi_vrow_bytes(64, 32, vb);
	const size_t kper = (size_t)WEFT_KIVI_BLOCK * (size_t)kb / 8, vper = 4 + (size_t)32 * (size_t)vb / 8;
	float qs[4][WEFT_ATTN_MAX_HD], p[4][WEFT_KIVI_BLOCK];
	__m512 av[4][4];
	_Pragma("GCC unroll 4") for (int r = 0; r < R; r++)
		_Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
			av[r][i] = _mm512_loadu_ps(acc[r] + 16 * i);
	const __m512 vs = _mm512_set1_ps(a->scale);
	for (int b = 0; b < kq->n[g] / WEFT_KIVI_BLOCK; b++) {
		const uint8_t *blk = kq->kb[g] + (size_t)b * kbb, *codes = blk + (size_t)kd * 4;
		const uint16_t *sc = (const uint16_t *)blk, *mn = sc + kd;
		__m512 s0[4], s1[4];
		_Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
			__m512 c0 = _mm512_setzero_ps();
			for (int c = 0; c < kd; c += 16) {
				const __mmask16 mk = tail16(kd - c);
				const __m512 qv = _mm512_maskz_loadu_ps(mk, qk[r] + c);
				_mm512_mask_storeu_ps(qs[r] + c, mk, _mm512_mul_ps(qv, ld_h(mk, sc + c)));
				c0 = _mm512_fmadd_ps(qv, ld_h(mk, mn + c), c0);
			}
			s0[r] = s1[r] = _mm512_set1_ps(_mm512_reduce_add_ps(c0));
		}
		for (int c = 0; c < kd; c++) {
			__m512 lo, hi;
			unpack32(codes + (size_t)c * kper, kb, &lo, &hi);
			_Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
				const __m512 w = _mm512_set1_ps(qs[r][c]);
				s0[r] = _mm512_fmadd_ps(w, lo, s0[r]);
				s1[r] = _mm512_fmadd_ps(w, hi, s1[r]);
			}
		}
		_Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
			s0[r] = _mm512_mul_ps(s0[r], vs);
			s1[r] = _mm512_mul_ps(s1[r], vs);
			const float bm = _mm512_reduce_max_ps(_mm512_max_ps(s0[r], s1[r]));
			if (bm > m[r]) {
				if (l[r] > 0.0f) {
					const float f = expf(m[r] - bm);
					const __m512 vr = _mm512_set1_ps(f);
					_Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
						av[r][i] = _mm512_mul_ps(av[r][i], vr);
					l[r] *= f;
				}
				m[r] = bm;
			}
			const __m512 vm = _mm512_set1_ps(m[r]);
			const __m512 e0 = weft_exp16(_mm512_sub_ps(s0[r], vm)), e1 = weft_exp16(_mm512_sub_ps(s1[r], vm));
			_mm512_storeu_ps(p[r], e0);
			_mm512_storeu_ps(p[r] + 16, e1);
			l[r] += _mm512_reduce_add_ps(_mm512_add_ps(e0, e1));
		}
		/* each row's value scale times its weight, per head, and the
		 * minimum terms summed: the group headers of 16 rows at a time */
		const uint8_t *vrow = kq->vb[g] + (size_t)b * WEFT_KIVI_BLOCK * vrb;
		float wv[4][2][WEFT_KIVI_BLOCK];
		const __m512i rows16 = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
							  _mm512_set1_epi32((int)vrb));
		_Pragma("GCC unroll 2") for (int gi = 0; gi < 2; gi++)
			_Pragma("GCC unroll 2") for (int half = 0; half < 2; half++) {
				const __m512i hdr = _mm512_i32gather_epi32(rows16, vrow + (size_t)half * 16 * vrb + (size_t)gi * vper, 1);
				const __m512 fs = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hdr)),
					     fm = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(hdr, 16)));
				_Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
					const __m512 pv = _mm512_loadu_ps(p[r] + 16 * half);
					_mm512_storeu_ps(wv[r][gi] + 16 * half, _mm512_mul_ps(pv, fs));
					const __m512 ms = _mm512_set1_ps(_mm512_reduce_add_ps(_mm512_mul_ps(pv, fm)));
					av[r][2 * gi] = _mm512_add_ps(av[r][2 * gi], ms);
					av[r][2 * gi + 1] = _mm512_add_ps(av[r][2 * gi + 1], ms);
				}
			}
		for (int j = 0; j < WEFT_KIVI_BLOCK; j++, vrow += vrb)
			_Pragma("GCC unroll 2") for (int gi = 0; gi < 2; gi++) {
				__m512 lo, hi;
				unpack32(vrow + (size_t)gi * vper + 4, vb, &lo, &hi);
				_Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
					const __m512 ws = _mm512_set1_ps(wv[r][gi][j]);
					av[r][2 * gi] = _mm512_fmadd_ps(ws, lo, av[r][2 * gi]);
					av[r][2 * gi + 1] = _mm512_fmadd_ps(ws, hi, av[r][2 * gi + 1]);
				}
			}
	}
	_Pragma("GCC unroll 4") for (int r = 0; r < R; r++)
		_Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
			_mm512_storeu_ps(acc[r] + 16 * i, av[r][i]);
}

/* The KIVI prefix for R query heads of KV head g. */
static void kivi_group(const weft_attn_args *a, int g, int R, const float *const *qk, float *m, float *l,
		       float *const *acc)
{
	if (a->hd == 64 && a->kivi->vgroup == 32 && R <= 4 && a->kivi->rank == 0 && !a->kivi->ko && !a->kivi->vo) {
		switch (R) { /* R known at compile time: the accumulators live in registers */
		case 1: kivi_grp64(1, a, g, qk, m, l, acc); return;
		case 2: kivi_grp64(2, a, g, qk, m, l, acc); return;
		case 3: kivi_grp64(3, a, g, qk, m, l, acc); return;
		default: kivi_grp64(4, a, g, qk, m, l, acc); return;
		}
	}
	for (int r = 0; r < R; r++)
		kivi_prefix(a, g, qk[r], &m[r], &l[r], acc[r]);
}

/* The rows KV head g shares with another layer (MiniCache views), F16: per
 * block of KB entries the scaled scores, the softmax update, then each
 * entry's value row times its weight and scale into the accumulator. */
static void view_prefix(const weft_attn_args *a, int g, const float *q, float *m, float *l, float *acc)
{
	const weft_attn_view *v = a->view;
	const int hd = a->hd;
	float s[KB];
	for (int32_t e0 = 0; e0 < v->n[g]; e0 += KB) {
		const int nb = v->n[g] - e0 < KB ? v->n[g] - e0 : KB;
		float bm = -INFINITY;
		for (int j = 0; j < nb; j++) {
			const int64_t r = v->head_off[g] + v->idx[g][e0 + j];
			s[j] = v->ks[g][e0 + j] * dot_kv(0, q, v->K, r * hd, hd) * a->scale;
			bm = s[j] > bm ? s[j] : bm;
		}
		if (bm > *m) {
			if (*l > 0.0f) {
				const float f = expf(*m - bm);
				const __m512 vr = _mm512_set1_ps(f);
				for (int d = 0; d < hd; d += 16)
					_mm512_storeu_ps(acc + d, _mm512_mul_ps(_mm512_loadu_ps(acc + d), vr));
				*l *= f;
			}
			*m = bm;
		}
		for (int j = 0; j < nb; j++) {
			const float p = expf(s[j] - *m);
			const int64_t r = v->head_off[g] + v->idx[g][e0 + j];
			const __m512 w = _mm512_set1_ps(p * v->vs[g][e0 + j]);
			*l += p;
			for (int d = 0; d < hd; d += 16) {
				const __mmask16 mk = tail16(hd - d);
				_mm512_mask_storeu_ps(acc + d, mk, _mm512_fmadd_ps(w, ldkv(0, mk, v->V, r * hd + d), _mm512_loadu_ps(acc + d)));
			}
		}
	}
}

/* The plain rows of KV head g seen by query q (n of them) into the online
 * softmax (m, l, acc). */
static inline __attribute__((always_inline)) void plain_rows(const int F, const weft_attn_args *a, int g, const float *q,
							     int64_t n, float *pm, float *pl, float *acc)
{
	const int hd = a->hd, kd = weft_attn_kd(a);
	const int64_t kbase = weft_attn_head0(a, g) * kd, vbase = weft_attn_head0(a, g) * hd;
	float s[KB], m = *pm, l = *pl;
	for (int64_t jb = 0; jb < n; jb += KB) {
		const int nb = n - jb < KB ? (int)(n - jb) : KB;
		float bm;
		scores(F, s, q, a->K, kbase + jb * kd, nb, kd, a->scale, &bm);
		if (bm > m) { /* new running max: rescale */
			if (l > 0.0f) {
				const float r = expf(m - bm);
				const __m512 vr = _mm512_set1_ps(r);
				for (int d = 0; d < hd; d += 16)
					_mm512_storeu_ps(acc + d, _mm512_mul_ps(_mm512_loadu_ps(acc + d), vr));
				l *= r;
			}
			m = bm;
		}
		const __m512 vm = _mm512_set1_ps(m);
		__m512 vl = _mm512_setzero_ps();
		for (int j = 0; j < nb; j += 16) {
			const __mmask16 mk = tail16(nb - j);
			const __m512 e = _mm512_maskz_mov_ps(mk, weft_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s + j), vm)));
			_mm512_mask_storeu_ps(s + j, mk, e);
			vl = _mm512_add_ps(vl, e);
		}
		l += _mm512_reduce_add_ps(vl);
		acc_pv(F, acc, s, a->V, vbase + jb * hd, nb, hd);
	}
	*pm = m, *pl = l;
}

/* out = acc / l; the row statistics. */
static inline void finish_row(const weft_attn_args *a, float *o, const float *acc, float m, float l, float *st2)
{
	const int hd = a->hd;
	const __m512 inv = _mm512_set1_ps(l > 0.0f ? 1.0f / l : 0.0f);
	for (int d = 0; d < hd; d += 16) {
		const __mmask16 mk = tail16(hd - d);
		_mm512_mask_storeu_ps(o + d, mk, _mm512_mul_ps(_mm512_loadu_ps(acc + d), inv));
	}
	if (st2) {
		st2[0] = l > 0.0f ? m : 0.0f;
		st2[1] = l;
	}
}

static inline __attribute__((always_inline)) void rows_impl(const int F, const weft_attn_args *a, int h, int64_t t0,
							    int64_t t1, float *st)
{
	const int hd = a->hd;
	const int g = h / (a->n_head / a->n_head_kv);
	float acc[WEFT_ATTN_MAX_HD + 64]; /* padded to whole groups of 64 */
	float qb[WEFT_ATTN_MAX_HD];
	for (int64_t t = t0; t < t1; t++) {
		const float *q = weft_attn_qk(a, g, a->Q + (t * a->n_head + h) * hd, qb);
		float m = -INFINITY, l = 0.0f;
		memset(acc, 0, sizeof(float) * (size_t)(hd + 64));
		if (a->kivi)
			kivi_prefix(a, g, q, &m, &l, acc);
		if (a->view)
			view_prefix(a, g, q, &m, &l, acc);
		plain_rows(F, a, g, q, weft_attn_visible(a, g, t), &m, &l, acc);
		finish_row(a, a->out + (t * a->n_head + h) * hd, acc, m, l, st ? st + 2 * (t - t0) : NULL);
	}
}

/* All the query heads of KV head g for rows t0 .. t1 - 1 (no statistics):
 * the KIVI prefix read once for the group. */
void weft_attn_rows_grp_avx512(const weft_attn_args *a, int g, int64_t t0, int64_t t1)
{
	const int hd = a->hd, R = a->n_head / a->n_head_kv;
	if (R > 8 || a->kv_type != WEFT_TYPE_F16) {
		for (int h = g * R; h < (g + 1) * R; h++)
			weft_attn_rows_avx512(a, h, t0, t1, NULL);
		return;
	}
	float accb[8][WEFT_ATTN_MAX_HD + 64], qb[8][WEFT_ATTN_MAX_HD];
	for (int64_t t = t0; t < t1; t++) {
		const float *q[8];
		float *acc[8], m[8], l[8];
		for (int r = 0; r < R; r++) {
			q[r] = weft_attn_qk(a, g, a->Q + (t * a->n_head + g * R + r) * hd, qb[r]);
			acc[r] = accb[r];
			m[r] = -INFINITY, l[r] = 0.0f;
			memset(acc[r], 0, sizeof(float) * (size_t)(hd + 64));
		}
		for (int r0 = 0; a->kivi && r0 < R; r0 += 4)
			kivi_group(a, g, R - r0 < 4 ? R - r0 : 4, q + r0, m + r0, l + r0, acc + r0);
		for (int r = 0; r < R; r++) {
			plain_rows(0, a, g, q[r], weft_attn_visible(a, g, t), &m[r], &l[r], acc[r]);
			finish_row(a, a->out + (t * a->n_head + g * R + r) * hd, acc[r], m[r], l[r], NULL);
		}
	}
}

static inline __attribute__((always_inline)) void mass_impl(const int F, const weft_attn_args *a, int g, int64_t j0,
							    int64_t j1, int64_t t0, int64_t t1, const float *st)
{
	const int hd = a->hd, kd = weft_attn_kd(a), rep = a->n_head / a->n_head_kv;
	const void *K = a->K;
	const int64_t base = weft_attn_head0(a, g) * kd;
	float loc[WEFT_MASS_BLOCK] = {0}, s[WEFT_MASS_BLOCK], qb[WEFT_ATTN_MAX_HD];
	for (int h = g * rep; h < (g + 1) * rep; h++)
		for (int64_t t = t0; t < t1; t++) {
			const int64_t n = weft_attn_visible(a, g, t);
			const int nb = (int)((n < j1 ? n : j1) - j0);
			const float *sp = st + ((t - t0) * a->n_head + h) * 2;
			if (nb <= 0 || !(sp[1] > 0.0f))
				continue;
			const float *q = weft_attn_qk(a, g, a->Q + (t * a->n_head + h) * hd, qb);
			float bm;
			scores(F, s, q, K, base + j0 * kd, nb, kd, a->scale, &bm);
			const __m512 vm = _mm512_set1_ps(sp[0]), inv = _mm512_set1_ps(1.0f / sp[1]);
			for (int j = 0; j < nb; j += 16) {
				const __mmask16 mk = tail16(nb - j);
				const __m512 e = weft_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s + j), vm));
				_mm512_mask_storeu_ps(loc + j, mk, _mm512_fmadd_ps(e, inv, _mm512_maskz_loadu_ps(mk, loc + j)));
			}
		}
	float *mass = a->mass + g * a->mass_stride;
	for (int64_t j = j0; j < j1; j += 16) {
		const __mmask16 mk = tail16(j1 - j);
		_mm512_mask_storeu_ps(mass + j, mk,
				      _mm512_add_ps(_mm512_maskz_loadu_ps(mk, mass + j), _mm512_maskz_loadu_ps(mk, loc + j - j0)));
	}
}

/* Half K/V, or float K/V (kv_type F32): the same code instantiated twice. */
void weft_attn_rows_avx512(const weft_attn_args *a, int h, int64_t t0, int64_t t1, float *st)
{
	if (a->kv_type == WEFT_TYPE_F32)
		rows_impl(1, a, h, t0, t1, st);
	else
		rows_impl(0, a, h, t0, t1, st);
}

void weft_attn_mass_avx512(const weft_attn_args *a, int g, int64_t j0, int64_t j1, int64_t t0, int64_t t1,
			   const float *st)
{
	if (a->kv_type == WEFT_TYPE_F32)
		mass_impl(1, a, g, j0, j1, t0, t1, st);
	else
		mass_impl(0, a, g, j0, j1, t0, t1, st);
}

/* ref_dot.c - scalar reference row kernels for weft_matmul, one per weight
 * type, following ggml's generic vec_dot_<type>_<vec_dot_type> arithmetic:
 * exact integer sums per block, then float scales.  Every SIMD kernel is
 * tested against these (tests/unit/test_matmul.c). */
#include "ggml_blocks.h"
#include "ggml_types.h"
#include "matmul_int.h"
#include "util.h"

#include <string.h>

#define SZ(T) WEFT_SZ(T)

static float ldh(const uint8_t *p) { return weft_fp16_to_fp32((uint16_t)(p[0] | p[1] << 8)); }

static float ldf(const uint8_t *p)
{
	float f;
	memcpy(&f, p, 4);
	return f;
}

/* Block scale of 32-group g of a Q8_0 / Q8_1 token. */
#define XD(g) (dl[(g) * 8])

static float dot_q4_0(int64_t k, const uint8_t *w, const int8_t *x, const float *dl, const float *s)
{
	float sum = 0;
	for (int64_t g = 0; g < k / 32; g++, w += SZ(q4_0), x += 32) {
		const uint8_t *qs = w + WEFT_OFF(q4_0, qs);
		int sumi = 0;
		for (int j = 0; j < 16; j++)
			sumi += ((qs[j] & 0xf) - 8) * x[j] + ((qs[j] >> 4) - 8) * x[j + 16];
		sum += (float)sumi * ldh(w) * XD(g);
	}
	return sum;
}

static float dot_q4_1(int64_t k, const uint8_t *w, const int8_t *x, const float *dl, const float *s)
{
	float sum = 0;
	for (int64_t g = 0; g < k / 32; g++, w += SZ(q4_1), x += 32) {
		const uint8_t *qs = w + WEFT_OFF(q4_1, qs);
		int sumi = 0;
		for (int j = 0; j < 16; j++)
			sumi += (qs[j] & 0xf) * x[j] + (qs[j] >> 4) * x[j + 16];
		sum += ldh(w) * XD(g) * (float)sumi + ldh(w + WEFT_OFF(q4_1, m)) * s[g];
	}
	return sum;
}

/* The 32 5-bit quants of a Q5 block (qh at h, nibbles at qs). */
static void q5_unpack(const uint8_t *h, const uint8_t *qs, int *q)
{
	uint32_t qh = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
	for (int j = 0; j < 16; j++) {
		q[j] = (qs[j] & 0xf) | (int)((qh >> j) & 1) << 4;
		q[j + 16] = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
	}
}

static float dot_q5_0(int64_t k, const uint8_t *w, const int8_t *x, const float *dl, const float *s)
{
	float sum = 0;
	int q[32];
	for (int64_t g = 0; g < k / 32; g++, w += SZ(q5_0), x += 32) {
		q5_unpack(w + WEFT_OFF(q5_0, qh), w + WEFT_OFF(q5_0, qs), q);
		int sumi = 0;
		for (int j = 0; j < 32; j++)
			sumi += (q[j] - 16) * x[j];
		sum += (float)sumi * ldh(w) * XD(g);
	}
	return sum;
}

static float dot_q5_1(int64_t k, const uint8_t *w, const int8_t *x, const float *dl, const float *s)
{
	float sum = 0;
	int q[32];
	for (int64_t g = 0; g < k / 32; g++, w += SZ(q5_1), x += 32) {
		q5_unpack(w + WEFT_OFF(q5_1, qh), w + WEFT_OFF(q5_1, qs), q);
		int sumi = 0;
		for (int j = 0; j < 32; j++)
			sumi += q[j] * x[j];
		sum += ldh(w) * XD(g) * (float)sumi + ldh(w + WEFT_OFF(q5_1, m)) * s[g];
	}
	return sum;
}

static float dot_q8_0(int64_t k, const uint8_t *w, const int8_t *x, const float *dl, const float *s)
{
	float sum = 0;
	for (int64_t g = 0; g < k / 32; g++, w += SZ(q8_0), x += 32) {
		const int8_t *qs = (const int8_t *)(w + WEFT_OFF(q8_0, qs));
		int sumi = 0;
		for (int j = 0; j < 32; j++)
			sumi += qs[j] * x[j];
		sum += (float)sumi * ldh(w) * XD(g);
	}
	return sum;
}

/* Q4_K (qh NULL) and Q5_K: sumf += d*dx*sum_j sc_j*isum_j - dmin*dx*sum_j m_j*bsum_j.
 * d, dmin and the scales stand at the same offsets in both. */
static float dot_q45_k(int64_t k, const uint8_t *w, int q5, const int8_t *x, const float *dl)
{
	float sum = 0;
	const size_t bytes = q5 ? SZ(q5_K) : SZ(q4_K);
	for (int64_t b = 0; b < k / WEFT_QK_K; b++, w += bytes, x += WEFT_QK_K) {
		const uint8_t *qh = q5 ? w + WEFT_OFF(q5_K, qh) : NULL,
			      *qs = q5 ? w + WEFT_OFF(q5_K, qs) : w + WEFT_OFF(q4_K, qs);
		int sumi = 0, summ = 0;
		for (int c = 0; c < 4; c++) {
			for (int half = 0; half < 2; half++) {
				int sc, m, is = 0, bs = 0;
				weft_scale_min_k4(2 * c + half, w + WEFT_OFF(q4_K, scales), &sc, &m);
				for (int l = 0; l < 32; l++) {
					int q = half ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0xf;
					if (qh && (qh[l] >> (2 * c + half) & 1))
						q += 16;
					int xv = x[64 * c + 32 * half + l];
					is += q * xv;
					bs += xv;
				}
				sumi += sc * is;
				summ += m * bs;
			}
		}
		float dx = dl[b * 64];
		sum += ldh(w) * dx * (float)sumi - ldh(w + WEFT_OFF(q4_K, dmin)) * dx * (float)summ;
	}
	return sum;
}

static float dot_q4_k(int64_t k, const uint8_t *w, const int8_t *x, const float *dl, const float *s)
{
	return dot_q45_k(k, w, 0, x, dl);
}

static float dot_q5_k(int64_t k, const uint8_t *w, const int8_t *x, const float *dl, const float *s)
{
	return dot_q45_k(k, w, 1, x, dl);
}

/* Q6_K: sumf += d*dx*sum over 16-groups of sc * sum (q-32)*x. */
static float dot_q6_k(int64_t k, const uint8_t *w, const int8_t *x, const float *dl, const float *s)
{
	float sum = 0;
	for (int64_t b = 0; b < k / WEFT_QK_K; b++, w += SZ(q6_K), x += WEFT_QK_K) {
		const uint8_t *ql = w + WEFT_OFF(q6_K, ql), *qh = w + WEFT_OFF(q6_K, qh);
		const int8_t *sc = (const int8_t *)(w + WEFT_OFF(q6_K, scales));
		int isum[16] = {0};
		for (int h = 0; h < 2; h++)
			for (int l = 0; l < 32; l++)
				for (int kk = 0; kk < 4; kk++) {
					uint8_t lb = ql[64 * h + l + 32 * (kk & 1)];
					int lo = kk < 2 ? lb & 0xf : lb >> 4;
					int q = (lo | ((qh[32 * h + l] >> (2 * kk)) & 3) << 4) - 32;
					isum[8 * h + l / 16 + 2 * kk] += q * x[128 * h + 32 * kk + l];
				}
		int sumi = 0;
		for (int j = 0; j < 16; j++)
			sumi += sc[j] * isum[j];
		sum += ldh(w + WEFT_OFF(q6_K, d)) * dl[b * 64] * (float)sumi;
	}
	return sum;
}

typedef float (*qdot_fn)(int64_t k, const uint8_t *w, const int8_t *x, const float *dl, const float *s);

static void qrow(qdot_fn f, int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt, float *y,
		 int64_t ldy)
{
	for (int t = 0; t < nt; t++) {
		int64_t tt = t0 + t;
		y[t * ldy] = f(k, w, a->q + tt * a->q_stride, a->dl + tt * a->l_stride,
			       a->s ? a->s + tt * a->g_stride : NULL);
	}
}

#define QROW(name)                                                                                   \
	static void row_##name(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt,   \
			       float *y, int64_t ldy)                                                \
	{                                                                                            \
		qrow(dot_##name, k, w, a, t0, nt, y, ldy);                                           \
	}
QROW(q4_0)
QROW(q4_1)
QROW(q5_0)
QROW(q5_1)
QROW(q8_0)
QROW(q4_k)
QROW(q5_k)
QROW(q6_k)

/* Float types: double accumulation, like ggml's scalar ggml_vec_dot_f16. */
static void row_f32(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt, float *y, int64_t ldy)
{
	for (int t = 0; t < nt; t++) {
		const float *x = a->f + (t0 + t) * a->f_stride;
		double sum = 0;
		for (int64_t i = 0; i < k; i++)
			sum += (double)(ldf(w + 4 * i) * x[i]);
		y[t * ldy] = (float)sum;
	}
}

static void row_f16(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt, float *y, int64_t ldy)
{
	for (int t = 0; t < nt; t++) {
		const float *x = a->f + (t0 + t) * a->f_stride;
		double sum = 0;
		for (int64_t i = 0; i < k; i++)
			sum += (double)(ldh(w + 2 * i) * x[i]);
		y[t * ldy] = (float)sum;
	}
}

static void row_bf16(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt, float *y, int64_t ldy)
{
	for (int t = 0; t < nt; t++) {
		const float *x = a->f + (t0 + t) * a->f_stride;
		double sum = 0;
		for (int64_t i = 0; i < k; i++)
			sum += (double)(weft_bf16_to_fp32((uint16_t)(w[2 * i] | w[2 * i + 1] << 8)) * x[i]);
		y[t * ldy] = (float)sum;
	}
}

static void round_bf16(float *f, uint16_t *h, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		const uint16_t b = weft_fp32_to_bf16(x[i]);
		f[i] = weft_bf16_to_fp32(b);
		if (h)
			h[i] = b;
	}
}

static void round_f16(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = weft_fp16_to_fp32(weft_fp32_to_fp16(x[i]));
}

const weft_kern weft_kern_ref = {
	.round_f16 = round_f16,
	.round_bf16 = round_bf16,
	.dot = {
		[WEFT_TYPE_F32] = row_f32, [WEFT_TYPE_F16] = row_f16, [WEFT_TYPE_BF16] = row_bf16,
		[WEFT_TYPE_Q4_0] = row_q4_0, [WEFT_TYPE_Q4_1] = row_q4_1, [WEFT_TYPE_Q5_0] = row_q5_0,
		[WEFT_TYPE_Q5_1] = row_q5_1, [WEFT_TYPE_Q8_0] = row_q8_0, [WEFT_TYPE_Q4_K] = row_q4_k,
		[WEFT_TYPE_Q5_K] = row_q5_k, [WEFT_TYPE_Q6_K] = row_q6_k,
	},
};

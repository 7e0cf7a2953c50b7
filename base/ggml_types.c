/* ggml_types.c - ggml tensor type table, reference dequantization and
 * round-to-nearest quantization.  See ggml_types.h.
 *
 * Block layouts are those of ggml's ggml-common.h (all little-endian, fp16
 * scales stored as IEEE half).  Blocks are read with memcpy-free byte
 * access, so source data may have any alignment. */
#include "ggml_blocks.h"
#include "ggml_types.h"
#include "util.h"

#include <math.h>
#include <string.h>

#define SZ(T) (uint32_t)WEFT_SZ(T)

/* Types with a known size.  Ids that are not WEFT_TYPE_* constants (the
 * IQ/TQ/MXFP4 families) are listed so files using them can be opened and
 * walked; weft cannot dequantize them. */
static const weft_type_info type_table[WEFT_TYPE_COUNT] = {
	[WEFT_TYPE_F32] = {"f32", 1, 4, 1},
	[WEFT_TYPE_F16] = {"f16", 1, 2, 1},
	[WEFT_TYPE_Q4_0] = {"q4_0", WEFT_QK, SZ(q4_0), 1},
	[WEFT_TYPE_Q4_1] = {"q4_1", WEFT_QK, SZ(q4_1), 1},
	[WEFT_TYPE_Q5_0] = {"q5_0", WEFT_QK, SZ(q5_0), 1},
	[WEFT_TYPE_Q5_1] = {"q5_1", WEFT_QK, SZ(q5_1), 1},
	[WEFT_TYPE_Q8_0] = {"q8_0", WEFT_QK, SZ(q8_0), 1},
	[WEFT_TYPE_Q8_1] = {"q8_1", WEFT_QK, SZ(q8_1), 1},
	[WEFT_TYPE_Q2_K] = {"q2_K", WEFT_QK_K, SZ(q2_K), 1},
	[WEFT_TYPE_Q3_K] = {"q3_K", WEFT_QK_K, SZ(q3_K), 1},
	[WEFT_TYPE_Q4_K] = {"q4_K", WEFT_QK_K, SZ(q4_K), 1},
	[WEFT_TYPE_Q5_K] = {"q5_K", WEFT_QK_K, SZ(q5_K), 1},
	[WEFT_TYPE_Q6_K] = {"q6_K", WEFT_QK_K, SZ(q6_K), 1},
	[WEFT_TYPE_Q8_K] = {"q8_K", WEFT_QK_K, SZ(q8_K), 1},
	[16] = {"iq2_xxs", WEFT_QK_K, 66, 0},
	[17] = {"iq2_xs", WEFT_QK_K, 74, 0},
	[18] = {"iq3_xxs", WEFT_QK_K, 98, 0},
	[19] = {"iq1_s", WEFT_QK_K, 50, 0},
	[20] = {"iq4_nl", 32, 18, 0},
	[21] = {"iq3_s", WEFT_QK_K, 110, 0},
	[22] = {"iq2_s", WEFT_QK_K, 82, 0},
	[23] = {"iq4_xs", WEFT_QK_K, 136, 0},
	[WEFT_TYPE_I8] = {"i8", 1, 1, 1},
	[WEFT_TYPE_I16] = {"i16", 1, 2, 1},
	[WEFT_TYPE_I32] = {"i32", 1, 4, 1},
	[WEFT_TYPE_I64] = {"i64", 1, 8, 1},
	[WEFT_TYPE_F64] = {"f64", 1, 8, 1},
	[29] = {"iq1_m", WEFT_QK_K, 56, 0},
	[WEFT_TYPE_BF16] = {"bf16", 1, 2, 1},
	[34] = {"tq1_0", WEFT_QK_K, 54, 0},
	[35] = {"tq2_0", WEFT_QK_K, 66, 0},
	[39] = {"mxfp4", 32, 17, 0},
};

const weft_type_info *weft_type_get(uint32_t type)
{
	if (type >= WEFT_TYPE_COUNT || !type_table[type].name)
		return NULL;
	return &type_table[type];
}

uint64_t weft_type_row_bytes(uint32_t type, uint64_t n)
{
	const weft_type_info *t = weft_type_get(type);
	uint64_t r;
	if (!t || n % t->block)
		return 0;
	if (weft_mul_overflow(n / t->block, t->bytes, &r))
		return 0;
	return r;
}

/* ---- little-endian loads ------------------------------------------------ */

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

static float ldh(const uint8_t *p) { return weft_fp16_to_fp32(ld16(p)); }

static void st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void st32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void sth(uint8_t *p, float f) { st16(p, weft_fp32_to_fp16(f)); }

/* ---- dequantization, one block at a time ------------------------------- */

static void dq_q4_0(const uint8_t *b, float *y)
{
	const uint8_t *qs = b + WEFT_OFF(q4_0, qs);
	float d = ldh(b);
	for (int j = 0; j < 16; j++) {
		y[j] = (float)((qs[j] & 0xf) - 8) * d;
		y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
	}
}

static void dq_q4_1(const uint8_t *b, float *y)
{
	const uint8_t *qs = b + WEFT_OFF(q4_1, qs);
	float d = ldh(b), m = ldh(b + WEFT_OFF(q4_1, m));
	for (int j = 0; j < 16; j++) {
		y[j] = (float)(qs[j] & 0xf) * d + m;
		y[j + 16] = (float)(qs[j] >> 4) * d + m;
	}
}

/* Q5: the fifth bit of value j is bit j of qh. */
static void dq_q5_0(const uint8_t *b, float *y)
{
	float d = ldh(b);
	uint32_t qh = ld32(b + WEFT_OFF(q5_0, qh));
	const uint8_t *qs = b + WEFT_OFF(q5_0, qs);
	for (int j = 0; j < 16; j++) {
		int lo = (qs[j] & 0xf) | (int)((qh >> j) & 1) << 4;
		int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
		y[j] = (float)(lo - 16) * d;
		y[j + 16] = (float)(hi - 16) * d;
	}
}

static void dq_q5_1(const uint8_t *b, float *y)
{
	float d = ldh(b), m = ldh(b + WEFT_OFF(q5_1, m));
	uint32_t qh = ld32(b + WEFT_OFF(q5_1, qh));
	const uint8_t *qs = b + WEFT_OFF(q5_1, qs);
	for (int j = 0; j < 16; j++) {
		int lo = (qs[j] & 0xf) | (int)((qh >> j) & 1) << 4;
		int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
		y[j] = (float)lo * d + m;
		y[j + 16] = (float)hi * d + m;
	}
}

static void dq_q8_0(const uint8_t *b, float *y)
{
	float d = ldh(b);
	for (int j = 0; j < 32; j++)
		y[j] = (float)(int8_t)b[WEFT_OFF(q8_0, qs) + j] * d;
}

static void dq_q8_1(const uint8_t *b, float *y)
{
	float d = ldh(b); /* s = d * sum(q) is unused here */
	for (int j = 0; j < 32; j++)
		y[j] = (float)(int8_t)b[WEFT_OFF(q8_1, qs) + j] * d;
}

/* Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
 * Value i = 128h + 32j + l: 2 bits at shift 2j of qs[32h + l], group
 * 8h + 2j + (l >= 16). */
static void dq_q2_k(const uint8_t *b, float *y)
{
	const uint8_t *sc = b + WEFT_OFF(q2_K, scales), *qs = b + WEFT_OFF(q2_K, qs);
	float d = ldh(b + WEFT_OFF(q2_K, d)), dmin = ldh(b + WEFT_OFF(q2_K, dmin));
	for (int h = 0; h < 2; h++)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 32; l++) {
				uint8_t s = sc[8 * h + 2 * j + (l >= 16)];
				int q = (qs[32 * h + l] >> (2 * j)) & 3;
				float dl = d * (float)(s & 0xf), ml = dmin * (float)(s >> 4);
				y[128 * h + 32 * j + l] = dl * (float)q - ml;
			}
}

/* Q3_K: hmask[32], qs[64], scales[12] (16 packed 6-bit scales, biased by
 * 32), d.  Like Q2_K plus a high bit from hmask: when it is clear, 4 is
 * subtracted. */
static void dq_q3_k(const uint8_t *b, float *y)
{
	const uint8_t *hm = b + WEFT_OFF(q3_K, hmask), *qs = b + WEFT_OFF(q3_K, qs), *s = b + WEFT_OFF(q3_K, scales);
	float d = ldh(b + WEFT_OFF(q3_K, d));
	int sc[16];
	for (int i = 0; i < 16; i++) {
		int lo = i < 8 ? s[i] & 0xf : s[i - 8] >> 4;
		int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
		sc[i] = (lo | hi << 4) - 32;
	}
	for (int h = 0; h < 2; h++)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 32; l++) {
				float dl = d * (float)sc[8 * h + 2 * j + (l >= 16)];
				int q = (qs[32 * h + l] >> (2 * j)) & 3;
				if (!(hm[l] & (1u << (4 * h + j))))
					q -= 4;
				y[128 * h + 32 * j + l] = dl * (float)q;
			}
}

/* Q4_K (qh NULL) and Q5_K: per 64-value chunk c, 32 low nibbles of
 * qs[32c..] use group 2c, 32 high nibbles group 2c+1; Q5_K adds 16 where
 * bit 2c (low) or 2c+1 (high) of qh[l] is set. */
static void dq_q45_k(const uint8_t *b, const uint8_t *qs, const uint8_t *qh, float *y)
{
	float d = ldh(b), dmin = ldh(b + WEFT_OFF(q4_K, dmin));
	const uint8_t *s = b + WEFT_OFF(q4_K, scales); /* the same in Q5_K */
	for (int c = 0; c < 4; c++) {
		int sc, m;
		weft_scale_min_k4(2 * c, s, &sc, &m);
		float d1 = d * (float)sc, m1 = dmin * (float)m;
		weft_scale_min_k4(2 * c + 1, s, &sc, &m);
		float d2 = d * (float)sc, m2 = dmin * (float)m;
		for (int l = 0; l < 32; l++) {
			int lo = qs[32 * c + l] & 0xf, hi = qs[32 * c + l] >> 4;
			if (qh) {
				lo += (qh[l] >> (2 * c) & 1) ? 16 : 0;
				hi += (qh[l] >> (2 * c + 1) & 1) ? 16 : 0;
			}
			y[64 * c + l] = d1 * (float)lo - m1;
			y[64 * c + 32 + l] = d2 * (float)hi - m2;
		}
	}
}

/* Q6_K: ql[128], qh[64], int8 scales[16], d.  Per 128-value half h and
 * l < 32, four values at l, l+32, l+64, l+96 (quarters k = 0..3): low 4
 * bits from ql[64h + l + 32(k&1)] (low nibble for k < 2, else high), 2 high
 * bits at shift 2k of qh[32h + l]; scale scales[8h + l/16 + 2k]. */
static void dq_q6_k(const uint8_t *b, float *y)
{
	const uint8_t *ql = b + WEFT_OFF(q6_K, ql), *qh = b + WEFT_OFF(q6_K, qh);
	const int8_t *sc = (const int8_t *)(b + WEFT_OFF(q6_K, scales));
	float d = ldh(b + WEFT_OFF(q6_K, d));
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++)
			for (int k = 0; k < 4; k++) {
				uint8_t lb = ql[64 * h + l + 32 * (k & 1)];
				int lo = k < 2 ? lb & 0xf : lb >> 4;
				int q = (lo | ((qh[32 * h + l] >> (2 * k)) & 3) << 4) - 32;
				y[128 * h + 32 * k + l] = d * (float)sc[8 * h + l / 16 + 2 * k] * (float)q;
			}
}

/* Q8_K: float d, int8 qs[256], int16 bsums[16] (unused here). */
static void dq_q8_k(const uint8_t *b, float *y)
{
	uint32_t u = ld32(b);
	float d;
	memcpy(&d, &u, 4);
	for (int j = 0; j < WEFT_QK_K; j++)
		y[j] = d * (float)(int8_t)b[WEFT_OFF(q8_K, qs) + j];
}

int weft_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
	const weft_type_info *t = weft_type_get(type);
	if (!t || !t->can_dequant) {
		weft_error("cannot dequantize tensor type %s", t ? t->name : "unknown");
		return -1;
	}
	if (n < 0 || n % t->block) {
		weft_error("dequantize %s: %lld values is not a multiple of block size %u", t->name,
			   (long long)n, t->block);
		return -1;
	}
	const uint8_t *s = src;
	int64_t nb = n / t->block;
	for (int64_t i = 0; i < nb; i++, s += t->bytes) {
		float *y = dst + i * t->block;
		switch (type) {
		case WEFT_TYPE_F32: {
			uint32_t u = ld32(s);
			memcpy(y, &u, 4);
			break;
		}
		case WEFT_TYPE_F16: *y = ldh(s); break;
		case WEFT_TYPE_BF16: *y = weft_bf16_to_fp32(ld16(s)); break;
		case WEFT_TYPE_F64: {
			uint64_t u = ld64(s);
			double v;
			memcpy(&v, &u, 8);
			*y = (float)v;
			break;
		}
		case WEFT_TYPE_I8: *y = (float)(int8_t)s[0]; break;
		case WEFT_TYPE_I16: *y = (float)(int16_t)ld16(s); break;
		case WEFT_TYPE_I32: *y = (float)(int32_t)ld32(s); break;
		case WEFT_TYPE_I64: *y = (float)(int64_t)ld64(s); break;
		case WEFT_TYPE_Q4_0: dq_q4_0(s, y); break;
		case WEFT_TYPE_Q4_1: dq_q4_1(s, y); break;
		case WEFT_TYPE_Q5_0: dq_q5_0(s, y); break;
		case WEFT_TYPE_Q5_1: dq_q5_1(s, y); break;
		case WEFT_TYPE_Q8_0: dq_q8_0(s, y); break;
		case WEFT_TYPE_Q8_1: dq_q8_1(s, y); break;
		case WEFT_TYPE_Q2_K: dq_q2_k(s, y); break;
		case WEFT_TYPE_Q3_K: dq_q3_k(s, y); break;
		case WEFT_TYPE_Q4_K: dq_q45_k(s, s + WEFT_OFF(q4_K, qs), NULL, y); break;
		case WEFT_TYPE_Q5_K: dq_q45_k(s, s + WEFT_OFF(q5_K, qs), s + WEFT_OFF(q5_K, qh), y); break;
		case WEFT_TYPE_Q6_K: dq_q6_k(s, y); break;
		case WEFT_TYPE_Q8_K: dq_q8_k(s, y); break;
		default: return -1; /* unreachable: can_dequant covers the above */
		}
	}
	return 0;
}

/* ---- reference quantization (as ggml's quantize_row_*_ref) -------------- */

/* (int)v clamped to [lo, hi]; NaN gives lo.  Truncates like a C cast. */
static int clampi(float v, int lo, int hi)
{
	if (!(v >= (float)lo))
		return lo;
	if (v >= (float)hi)
		return hi;
	return (int)v;
}

/* Value with the largest magnitude (first one on ties), as ggml picks it. */
static float absmax_signed(const float *x, int n)
{
	float amax = 0, max = 0;
	for (int j = 0; j < n; j++)
		if (amax < fabsf(x[j])) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	return max;
}

static void minmax(const float *x, int n, float *mn, float *mx)
{
	*mn = x[0];
	*mx = x[0];
	for (int j = 1; j < n; j++) {
		if (x[j] < *mn)
			*mn = x[j];
		if (x[j] > *mx)
			*mx = x[j];
	}
}

static void q_q4_0(const float *x, uint8_t *b)
{
	float d = absmax_signed(x, 32) / -8, id = d != 0 ? 1.0f / d : 0.0f;
	sth(b, d);
	for (int j = 0; j < 16; j++) {
		int lo = clampi(x[j] * id + 8.5f, 0, 15), hi = clampi(x[j + 16] * id + 8.5f, 0, 15);
		b[WEFT_OFF(q4_0, qs) + j] = (uint8_t)(lo | hi << 4);
	}
}

static void q_q4_1(const float *x, uint8_t *b)
{
	float mn, mx;
	minmax(x, 32, &mn, &mx);
	float d = (mx - mn) / 15, id = d != 0 ? 1.0f / d : 0.0f;
	sth(b, d);
	sth(b + WEFT_OFF(q4_1, m), mn);
	for (int j = 0; j < 16; j++) {
		int lo = clampi((x[j] - mn) * id + 0.5f, 0, 15);
		int hi = clampi((x[j + 16] - mn) * id + 0.5f, 0, 15);
		b[WEFT_OFF(q4_1, qs) + j] = (uint8_t)(lo | hi << 4);
	}
}

/* Pack 32 5-bit values: low nibbles into qs, fifth bits into qh. */
static void pack5(const int *q, uint8_t *qh4, uint8_t *qs)
{
	uint32_t qh = 0;
	for (int j = 0; j < 16; j++) {
		qs[j] = (uint8_t)((q[j] & 0xf) | (q[j + 16] & 0xf) << 4);
		qh |= (uint32_t)(q[j] >> 4 & 1) << j;
		qh |= (uint32_t)(q[j + 16] >> 4 & 1) << (j + 16);
	}
	st32(qh4, qh);
}

static void q_q5_0(const float *x, uint8_t *b)
{
	float d = absmax_signed(x, 32) / -16, id = d != 0 ? 1.0f / d : 0.0f;
	int q[32];
	for (int j = 0; j < 32; j++)
		q[j] = clampi(x[j] * id + 16.5f, 0, 31);
	sth(b, d);
	pack5(q, b + WEFT_OFF(q5_0, qh), b + WEFT_OFF(q5_0, qs));
}

static void q_q5_1(const float *x, uint8_t *b)
{
	float mn, mx;
	minmax(x, 32, &mn, &mx);
	float d = (mx - mn) / 31, id = d != 0 ? 1.0f / d : 0.0f;
	int q[32];
	for (int j = 0; j < 32; j++)
		q[j] = clampi((x[j] - mn) * id + 0.5f, 0, 31);
	sth(b, d);
	sth(b + WEFT_OFF(q5_1, m), mn);
	pack5(q, b + WEFT_OFF(q5_1, qh), b + WEFT_OFF(q5_1, qs));
}

/* Q8_0 / Q8_1: d = amax / 127, q = round(x / d) (half away from zero). */
static float q8_block(const float *x, uint8_t *qs)
{
	float amax = 0;
	for (int j = 0; j < 32; j++)
		amax = fmaxf(amax, fabsf(x[j]));
	float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
	for (int j = 0; j < 32; j++) {
		float r = roundf(x[j] * id);
		qs[j] = (uint8_t)(int8_t)(r < 0 ? -clampi(-r, 0, 127) : clampi(r, 0, 127));
	}
	return d;
}

int weft_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
	const weft_type_info *t = weft_type_get(type);
	if (!t) {
		weft_error("cannot quantize to unknown tensor type %u", type);
		return -1;
	}
	if (n < 0 || n % t->block) {
		weft_error("quantize %s: %lld values is not a multiple of block size %u", t->name,
			   (long long)n, t->block);
		return -1;
	}
	uint8_t *b = dst;
	int64_t nb = n / t->block;
	for (int64_t i = 0; i < nb; i++, b += t->bytes) {
		const float *x = src + i * t->block;
		switch (type) {
		case WEFT_TYPE_F32: {
			uint32_t u;
			memcpy(&u, x, 4);
			st32(b, u);
			break;
		}
		case WEFT_TYPE_F16: st16(b, weft_fp32_to_fp16(*x)); break;
		case WEFT_TYPE_BF16: st16(b, weft_fp32_to_bf16(*x)); break;
		case WEFT_TYPE_Q4_0: q_q4_0(x, b); break;
		case WEFT_TYPE_Q4_1: q_q4_1(x, b); break;
		case WEFT_TYPE_Q5_0: q_q5_0(x, b); break;
		case WEFT_TYPE_Q5_1: q_q5_1(x, b); break;
		case WEFT_TYPE_Q8_0: sth(b, q8_block(x, b + WEFT_OFF(q8_0, qs))); break;
		case WEFT_TYPE_Q8_1: {
			float d = q8_block(x, b + WEFT_OFF(q8_1, qs));
			int sum = 0;
			for (int j = 0; j < 32; j++)
				sum += (int8_t)b[WEFT_OFF(q8_1, qs) + j];
			sth(b, d);
			sth(b + WEFT_OFF(q8_1, s), (float)sum * d);
			break;
		}
		default:
			weft_error("cannot quantize to tensor type %s", t->name);
			return -1;
		}
	}
	return 0;
}

/* kivi.c - KIVI quantization of KV rows (kernels.h "KIVI-quantized KV
 * rows"): the scalar quantizers and dequantizers the KV cache (lib/kv.c),
 * the stream codec and the scalar attention reference share.
 *
 * Each group of values x gets min m and step s as IEEE halves, chosen so
 * that every x lies in [m, m + (2^b - 1) s]: m is the largest half <= min(x)
 * and s the smallest half with m + (2^b - 1) s >= max(x).  Codes are
 * round((x - m) / s), so |x - (s * code + m)| <= s / 2 (plus float
 * rounding); an all-equal group has s = 0 and m the nearest half. */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "util.h"

#define HALF_MAX 65504.0f

/* The largest half <= x, and the smallest half >= x (|x| <= HALF_MAX). */
static uint16_t half_floor(float x)
{
	uint16_t h = weft_fp32_to_fp16(x);
	if (weft_fp16_to_fp32(h) > x)
		h = (h & 0x8000) ? (uint16_t)(h + 1) : h == 0 ? 0x8001 : (uint16_t)(h - 1);
	return h;
}

static uint16_t half_ceil(float x)
{
	uint16_t h = weft_fp32_to_fp16(x);
	if (weft_fp16_to_fp32(h) < x)
		h = (h & 0x8000) ? ((h & 0x7fff) == 0 ? 1 : (uint16_t)(h - 1)) : (uint16_t)(h + 1);
	return h;
}

void weft_kivi_pack(const uint8_t *codes, int n, int bits, uint8_t *dst)
{
	const int nb = n * bits / 8, per = 8 / bits;
	memset(dst, 0, (size_t)nb);
	for (int i = 0; i < nb; i++)
		for (int j = 0; j < per; j++)
			dst[i] |= (uint8_t)(codes[i + j * nb] << (j * bits));
}

void weft_kivi_unpack(const uint8_t *src, int n, int bits, uint8_t *codes)
{
	const int nb = n * bits / 8, per = 8 / bits, mask = (1 << bits) - 1;
	for (int i = 0; i < nb; i++)
		for (int j = 0; j < per; j++)
			codes[i + j * nb] = (uint8_t)(src[i] >> (j * bits) & mask);
}

int weft_kivi_quant_group(const float *x, int64_t stride, int n, int bits, uint16_t *mh, uint16_t *sh, uint8_t *codes)
{
	float mn = INFINITY, mx = -INFINITY;
	for (int i = 0; i < n; i++) {
		const float v = x[i * stride];
		if (!(fabsf(v) <= HALF_MAX))
			return -1;
		mn = v < mn ? v : mn;
		mx = v > mx ? v : mx;
	}
	const int levels = (1 << bits) - 1;
	if (mx == mn) {
		*mh = weft_fp32_to_fp16(mn);
		*sh = 0;
		memset(codes, 0, (size_t)n);
		return 0;
	}
	*mh = half_floor(mn);
	const float m = weft_fp16_to_fp32(*mh);
	*sh = half_ceil((mx - m) / (float)levels);
	float s = weft_fp16_to_fp32(*sh);
	while (m + (float)levels * s < mx) /* float rounding of the division */
		s = weft_fp16_to_fp32(++*sh);
	const float inv = 1.0f / s;
	for (int i = 0; i < n; i++) {
		const float c = floorf((x[i * stride] - m) * inv + 0.5f);
		codes[i] = (uint8_t)(c < 0 ? 0 : c > (float)levels ? levels : c);
	}
	return 0;
}

int weft_kivi_quant_keys(const float *k, int64_t ld, int kd, int bits, uint8_t *blk)
{
	uint16_t *sc = (uint16_t *)blk, *mn = sc + kd;
	uint8_t *q = blk + (size_t)kd * 4, codes[WEFT_KIVI_BLOCK];
	const size_t per = (size_t)WEFT_KIVI_BLOCK * (size_t)bits / 8;
	uint16_t s, m;
	for (int c = 0; c < kd; c++) {
		if (weft_kivi_quant_group(k + c, ld, WEFT_KIVI_BLOCK, bits, &m, &s, codes) != 0)
			return -1;
		/* halves may be unaligned in a caller's buffer: copy bytes */
		memcpy(sc + c, &s, 2);
		memcpy(mn + c, &m, 2);
		weft_kivi_pack(codes, WEFT_KIVI_BLOCK, bits, q + (size_t)c * per);
	}
	return 0;
}

void weft_kivi_dequant_keys(const uint8_t *blk, int kd, int bits, float *out)
{
	const uint8_t *q = blk + (size_t)kd * 4;
	const size_t per = (size_t)WEFT_KIVI_BLOCK * (size_t)bits / 8;
	uint8_t codes[WEFT_KIVI_BLOCK];
	for (int c = 0; c < kd; c++) {
		uint16_t s, m;
		memcpy(&s, blk + 2 * (size_t)c, 2);
		memcpy(&m, blk + 2 * ((size_t)kd + (size_t)c), 2);
		const float fs = weft_fp16_to_fp32(s), fm = weft_fp16_to_fp32(m);
		weft_kivi_unpack(q + (size_t)c * per, WEFT_KIVI_BLOCK, bits, codes);
		for (int r = 0; r < WEFT_KIVI_BLOCK; r++)
			out[r * kd + c] = fs * (float)codes[r] + fm;
	}
}

int weft_kivi_quant_vrow(const float *v, int hd, int vgroup, int bits, uint8_t *row)
{
	const size_t per = 4 + (size_t)vgroup * (size_t)bits / 8;
	uint8_t codes[1024];
	for (int g = 0; g < hd / vgroup; g++) {
		uint8_t *p = row + (size_t)g * per;
		uint16_t s, m;
		if (vgroup > 1024 || weft_kivi_quant_group(v + g * vgroup, 1, vgroup, bits, &m, &s, codes) != 0)
			return -1;
		memcpy(p, &s, 2);
		memcpy(p + 2, &m, 2);
		weft_kivi_pack(codes, vgroup, bits, p + 4);
	}
	return 0;
}

void weft_kivi_dequant_vrow(const uint8_t *row, int hd, int vgroup, int bits, float *out)
{
	const size_t per = 4 + (size_t)vgroup * (size_t)bits / 8;
	uint8_t codes[1024];
	for (int g = 0; g < hd / vgroup && vgroup <= 1024; g++) {
		const uint8_t *p = row + (size_t)g * per;
		uint16_t s, m;
		memcpy(&s, p, 2);
		memcpy(&m, p + 2, 2);
		const float fs = weft_fp16_to_fp32(s), fm = weft_fp16_to_fp32(m);
		weft_kivi_unpack(p + 4, vgroup, bits, codes);
		for (int i = 0; i < vgroup; i++)
			out[g * vgroup + i] = fs * (float)codes[i] + fm;
	}
}

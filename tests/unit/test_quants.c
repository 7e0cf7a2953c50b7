/* test_quants.c - ggml types: table, dequantization of hand-built blocks,
 * reference quantization (bytes and round-trip error), fp16/bf16 edge cases,
 * and rows of the real SmolLM2 model against gguf-py. */
#include "ggml_types.h"
#include "gguf.h"
#include "util.h"

#include "test.h"

#include <float.h>
#include <stdint.h>
#include <unistd.h>

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t f2u(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static float u2f(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* Dequantize one block at an odd address (unaligned reads). */
static int deq(uint32_t type, const uint8_t *blk, size_t nbytes, float *y, int64_t n)
{
	static uint8_t buf[1024];
	memcpy(buf + 1, blk, nbytes);
	return weft_dequantize_row(type, buf + 1, y, n);
}

static void type_table(void)
{
	static const struct {
		uint32_t id;
		const char *name;
		uint32_t block, bytes;
	} want[] = {
		{WEFT_TYPE_F32, "f32", 1, 4}, {WEFT_TYPE_F16, "f16", 1, 2}, {WEFT_TYPE_BF16, "bf16", 1, 2},
		{WEFT_TYPE_Q4_0, "q4_0", 32, 18}, {WEFT_TYPE_Q4_1, "q4_1", 32, 20},
		{WEFT_TYPE_Q5_0, "q5_0", 32, 22}, {WEFT_TYPE_Q5_1, "q5_1", 32, 24},
		{WEFT_TYPE_Q8_0, "q8_0", 32, 34}, {WEFT_TYPE_Q8_1, "q8_1", 32, 36},
		{WEFT_TYPE_Q2_K, "q2_K", 256, 84}, {WEFT_TYPE_Q3_K, "q3_K", 256, 110},
		{WEFT_TYPE_Q4_K, "q4_K", 256, 144}, {WEFT_TYPE_Q5_K, "q5_K", 256, 176},
		{WEFT_TYPE_Q6_K, "q6_K", 256, 210}, {WEFT_TYPE_Q8_K, "q8_K", 256, 292},
		{WEFT_TYPE_I8, "i8", 1, 1}, {WEFT_TYPE_I16, "i16", 1, 2}, {WEFT_TYPE_I32, "i32", 1, 4},
		{WEFT_TYPE_I64, "i64", 1, 8}, {WEFT_TYPE_F64, "f64", 1, 8},
	};
	for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
		const weft_type_info *t = weft_type_get(want[k].id);
		CHECK(t != NULL);
		if (!t)
			continue;
		CHECK_STR(t->name, want[k].name);
		CHECK_EQ_INT(t->block, want[k].block);
		CHECK_EQ_INT(t->bytes, want[k].bytes);
		CHECK(t->can_dequant);
	}
	CHECK(weft_type_get(4) == NULL && weft_type_get(5) == NULL && weft_type_get(31) == NULL);
	CHECK(weft_type_get(WEFT_TYPE_COUNT) == NULL && weft_type_get(UINT32_MAX) == NULL);
	CHECK(weft_type_get(16) && !weft_type_get(16)->can_dequant); /* iq2_xxs: size only */
	CHECK_EQ_INT(weft_type_row_bytes(WEFT_TYPE_Q4_1, 576), 18 * 20);
	CHECK_EQ_INT(weft_type_row_bytes(WEFT_TYPE_Q6_K, 512), 420);
	CHECK_EQ_INT(weft_type_row_bytes(WEFT_TYPE_Q4_0, 33), 0);
	CHECK_EQ_INT(weft_type_row_bytes(99, 32), 0);
	CHECK_EQ_INT(weft_type_row_bytes(WEFT_TYPE_F64, UINT64_MAX / 4), 0); /* overflow */
	float y[32];
	uint8_t z[64] = {0};
	CHECK_EQ_INT(weft_dequantize_row(WEFT_TYPE_Q4_0, z, y, 31), -1);
	CHECK_STR(weft_errmsg(), "dequantize q4_0: 31 values is not a multiple of block size 32");
	CHECK_EQ_INT(weft_dequantize_row(16, z, y, 256), -1);
	CHECK_STR(weft_errmsg(), "cannot dequantize tensor type iq2_xxs");
	CHECK_EQ_INT(weft_dequantize_row(99, z, y, 1), -1);
	CHECK_STR(weft_errmsg(), "cannot dequantize tensor type unknown");
	CHECK_EQ_INT(weft_quantize_row(WEFT_TYPE_Q4_K, y, z, 256), -1);
	CHECK_STR(weft_errmsg(), "cannot quantize to tensor type q4_K");
}

static void dequant_float_types(void)
{
	float y[8];
	/* f32 1.0, -2.5 */
	const uint8_t f32[] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0};
	CHECK_EQ_INT(deq(WEFT_TYPE_F32, f32, sizeof f32, y, 2), 0);
	CHECK(y[0] == 1.0f && y[1] == -2.5f);
	/* f16: 1, -2, 65504, 2^-24, 1/3 rounded (0x3555 = 0.333251953125), inf, -0, nan */
	const uint8_t f16[] = {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00,
			       0x55, 0x35, 0x00, 0x7c, 0x00, 0x80, 0x00, 0x7e};
	CHECK_EQ_INT(deq(WEFT_TYPE_F16, f16, sizeof f16, y, 8), 0);
	CHECK(y[0] == 1 && y[1] == -2 && y[2] == 65504 && y[3] == 5.9604644775390625e-08f);
	CHECK(y[4] == 0.333251953125f && isinf(y[5]) && y[5] > 0);
	CHECK(y[6] == 0 && signbit(y[6]) && isnan(y[7]));
	/* bf16: 1, -5, inf, 2^-133 (subnormal) */
	const uint8_t bf16[] = {0x80, 0x3f, 0xa0, 0xc0, 0x80, 0x7f, 0x01, 0x00};
	CHECK_EQ_INT(deq(WEFT_TYPE_BF16, bf16, sizeof bf16, y, 4), 0);
	CHECK(y[0] == 1 && y[1] == -5 && isinf(y[2]) && y[3] == ldexpf(1, -133));
	/* f64 -0.75 = 0xbfe8000000000000 */
	const uint8_t f64[] = {0, 0, 0, 0, 0, 0, 0xe8, 0xbf};
	CHECK_EQ_INT(deq(WEFT_TYPE_F64, f64, 8, y, 1), 0);
	CHECK(y[0] == -0.75f);
	/* integers: i8 -3, i16 -300 (0xfed4), i32 70000 (0x11170), i64 -1 */
	const uint8_t i8[] = {0xfd}, i16[] = {0xd4, 0xfe}, i32[] = {0x70, 0x11, 0x01, 0x00};
	const uint8_t i64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	CHECK(deq(WEFT_TYPE_I8, i8, 1, y, 1) == 0 && y[0] == -3);
	CHECK(deq(WEFT_TYPE_I16, i16, 2, y, 1) == 0 && y[0] == -300);
	CHECK(deq(WEFT_TYPE_I32, i32, 4, y, 1) == 0 && y[0] == 70000);
	CHECK(deq(WEFT_TYPE_I64, i64, 8, y, 1) == 0 && y[0] == -1);
}

/* Blocks of 32: layouts from ggml-common.h, expected values on paper. */
static void dequant_q_32(void)
{
	uint8_t b[40];
	float y[64];

	/* q8_0: d = 0.5 (0x3800); q0 = -128, q1 = 127, qj = j - 16 */
	put16(b, 0x3800);
	for (int j = 0; j < 32; j++)
		b[2 + j] = (uint8_t)(j - 16);
	b[2] = 0x80;
	b[3] = 0x7f;
	CHECK_EQ_INT(deq(WEFT_TYPE_Q8_0, b, 34, y, 32), 0);
	CHECK(y[0] == -64 && y[1] == 63.5f && y[2] == -7 && y[16] == 0 && y[31] == 7.5f);

	/* q8_1: d = 1 (0x3c00), s ignored, qj = j - 16 */
	put16(b, 0x3c00);
	put16(b + 2, 0x1234);
	for (int j = 0; j < 32; j++)
		b[4 + j] = (uint8_t)(j - 16);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q8_1, b, 36, y, 32), 0);
	CHECK(y[0] == -16 && y[31] == 15);

	/* q4_0: d = 2 (0x4000); byte j = j | (15 - j) << 4:
	 * y[j] = (j - 8) * 2, y[j + 16] = (7 - j) * 2 */
	put16(b, 0x4000);
	for (int j = 0; j < 16; j++)
		b[2 + j] = (uint8_t)(j | (15 - j) << 4);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q4_0, b, 18, y, 32), 0);
	CHECK(y[0] == -16 && y[8] == 0 && y[15] == 14 && y[16] == 14 && y[31] == -16);
	for (int j = 0; j < 16; j++)
		CHECK(y[j] == (float)((j - 8) * 2) && y[j + 16] == (float)((7 - j) * 2));

	/* q4_1: d = 0.5 (0x3800), m = -1 (0xbc00); byte j = j | (j ^ 5) << 4 */
	put16(b, 0x3800);
	put16(b + 2, 0xbc00);
	for (int j = 0; j < 16; j++)
		b[4 + j] = (uint8_t)(j | (j ^ 5) << 4);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q4_1, b, 20, y, 32), 0);
	CHECK(y[0] == -1 && y[1] == -0.5f && y[15] == 6.5f && y[16] == 1.5f && y[21] == -1);
	for (int j = 0; j < 16; j++)
		CHECK(y[j] == j * 0.5f - 1 && y[j + 16] == (j ^ 5) * 0.5f - 1);

	/* q5_0: d = 1, qh = 0x0000ffff (fifth bit set for values 0..15),
	 * byte j = j | j << 4: y[j] = j, y[j + 16] = j - 16 */
	put16(b, 0x3c00);
	put32(b + 2, 0x0000ffff);
	for (int j = 0; j < 16; j++)
		b[6 + j] = (uint8_t)(j | j << 4);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q5_0, b, 22, y, 32), 0);
	CHECK(y[0] == 0 && y[15] == 15 && y[16] == -16 && y[31] == -1);
	for (int j = 0; j < 16; j++)
		CHECK(y[j] == j && y[j + 16] == j - 16);

	/* q5_1: d = 0.5, m = 2, qh = 0xffff0000, byte j = (15 - j) | j << 4:
	 * y[j] = (15 - j) / 2 + 2, y[j + 16] = (j + 16) / 2 + 2 */
	put16(b, 0x3800);
	put16(b + 2, 0x4000);
	put32(b + 4, 0xffff0000u);
	for (int j = 0; j < 16; j++)
		b[8 + j] = (uint8_t)((15 - j) | j << 4);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q5_1, b, 24, y, 32), 0);
	CHECK(y[0] == 9.5f && y[15] == 2 && y[16] == 10 && y[31] == 17.5f);
	for (int j = 0; j < 16; j++)
		CHECK(y[j] == (15 - j) * 0.5f + 2 && y[j + 16] == (j + 16) * 0.5f + 2);

	/* two blocks in a row: the second one starts at byte 18 */
	uint8_t two[36];
	put16(two, 0x3c00);
	memset(two + 2, 0x88, 16); /* all zero */
	put16(two + 18, 0x3c00);
	memset(two + 20, 0xf0, 16); /* low 0 -> -8, high 15 -> 7 */
	CHECK_EQ_INT(deq(WEFT_TYPE_Q4_0, two, 36, y, 64), 0);
	CHECK(y[0] == 0 && y[31] == 0 && y[32] == -8 && y[48] == 7);
}

/* Q4_K / Q5_K scale field: d = 1, dmin = 0.5, 8 groups with
 *   sc = [1, 2, 3, 4, 21, 6, 7, 8], m = [0, 1, 2, 3, 33, 2, 3, 4]
 * packed as: s[0..3] = sc0..3 (s[0] carries bit 4 of sc4 in its top 2 bits:
 * 0x40 | 1), s[4..7] = m0..3 (s[4] = 0x80: m0 = 0, top bits give m4 += 32),
 * s[8..11] = sc4..7 low nibbles | m4..7 low nibbles << 4. */
static const uint8_t KSCALES[12] = {0x41, 2, 3, 4, 0x80, 1, 2, 3, 0x15, 0x26, 0x37, 0x48};
static const float KSC[8] = {1, 2, 3, 4, 21, 6, 7, 8}, KM[8] = {0, 1, 2, 3, 33, 2, 3, 4};

static void dequant_q4_k(void)
{
	uint8_t b[144];
	float y[256];
	put16(b, 0x3c00);
	put16(b + 2, 0x3800);
	memcpy(b + 4, KSCALES, 12);
	for (int i = 0; i < 128; i++) /* qs: low nibble i % 16, high 15 - i % 16 */
		b[16 + i] = (uint8_t)((i % 16) | (15 - i % 16) << 4);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q4_K, b, sizeof b, y, 256), 0);
	/* chunk c: y[64c + l] = sc[2c] * (l % 16) - m[2c] / 2,
	 *          y[64c + 32 + l] = sc[2c + 1] * (15 - l % 16) - m[2c + 1] / 2 */
	CHECK(y[0] == 0 && y[1] == 1 && y[32] == 29.5f && y[69] == 14);
	CHECK(y[131] == 46.5f && y[255] == -2);
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++) {
			CHECK(y[64 * c + l] == KSC[2 * c] * (l % 16) - KM[2 * c] / 2);
			CHECK(y[64 * c + 32 + l] == KSC[2 * c + 1] * (15 - l % 16) - KM[2 * c + 1] / 2);
		}
}

static void dequant_q5_k(void)
{
	uint8_t b[176];
	float y[256];
	put16(b, 0x3c00);
	put16(b + 2, 0x3800);
	memcpy(b + 4, KSCALES, 12);
	for (int l = 0; l < 32; l++) /* qh: bit 0 (chunk 0 low) for l < 16, bit 7 (chunk 3 high) else */
		b[16 + l] = l < 16 ? 0x01 : 0x80;
	for (int i = 0; i < 128; i++)
		b[48 + i] = (uint8_t)((i % 16) | (15 - i % 16) << 4);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q5_K, b, sizeof b, y, 256), 0);
	CHECK(y[1] == 17 && y[17] == 1 && y[224] == 118 && y[255] == 126 && y[69] == 14);
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++) {
			int lo = l % 16 + (c == 0 && l < 16 ? 16 : 0);
			int hi = 15 - l % 16 + (c == 3 && l >= 16 ? 16 : 0);
			CHECK(y[64 * c + l] == KSC[2 * c] * lo - KM[2 * c] / 2);
			CHECK(y[64 * c + 32 + l] == KSC[2 * c + 1] * hi - KM[2 * c + 1] / 2);
		}
}

/* Q6_K: d = 0.5, scales[i] = i - 8.  ql: half 0 = 0x21 (first 32) / 0x65,
 * half 1 = 0x43 / 0x87; qh: half 0 = 0xe4 (2-bit pairs 0,1,2,3 for quarters
 * 0..3), half 1 = 0x1b (3,2,1,0).  Quarter k of half h takes its low 4 bits
 * from ql[64h + l + 32(k & 1)] (low nibble for k < 2), so q - 32 is
 *   h0: k0 1-32 = -31, k1 5+16-32 = -11, k2 2+32-32 = 2, k3 6+48-32 = 22
 *   h1: k0 3+48-32 = 19, k1 7+32-32 = 7, k2 4+16-32 = -12, k3 8-32 = -24
 * and y[128h + 32k + l] = 0.5 * scales[8h + l/16 + 2k] * q. */
static void dequant_q6_k(void)
{
	static const int Q[2][4] = {{-31, -11, 2, 22}, {19, 7, -12, -24}};
	uint8_t b[210];
	float y[256];
	memset(b, 0x21, 32);
	memset(b + 32, 0x65, 32);
	memset(b + 64, 0x43, 32);
	memset(b + 96, 0x87, 32);
	memset(b + 128, 0xe4, 32);
	memset(b + 160, 0x1b, 32);
	for (int i = 0; i < 16; i++)
		b[192 + i] = (uint8_t)(int8_t)(i - 8);
	put16(b + 208, 0x3800);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q6_K, b, sizeof b, y, 256), 0);
	CHECK(y[0] == 124 && y[32] == 33 && y[80] == -3 && y[127] == -11);
	CHECK(y[128] == 0 && y[160] == 7 && y[208] == -30 && y[255] == -84);
	for (int h = 0; h < 2; h++)
		for (int k = 0; k < 4; k++)
			for (int l = 0; l < 32; l++)
				CHECK(y[128 * h + 32 * k + l] == 0.5f * (float)(8 * h + l / 16 + 2 * k - 8) * (float)Q[h][k]);
}

/* Q2_K: scales[i] = i | (15 - i) << 4 (scale i, min 15 - i), d = 1,
 * dmin = 0.5; qs[0..31] = 0xe4 (2-bit values 0,1,2,3 at shifts 0,2,4,6),
 * qs[32..63] = 0x1b (3,2,1,0).  y[128h + 32j + l] uses group
 * g = 8h + 2j + (l >= 16): g * q - 0.5 * (15 - g), q = h ? 3 - j : j. */
static void dequant_q2_k(void)
{
	uint8_t b[84];
	float y[256];
	for (int i = 0; i < 16; i++)
		b[i] = (uint8_t)(i | (15 - i) << 4);
	memset(b + 16, 0xe4, 32);
	memset(b + 48, 0x1b, 32);
	put16(b + 80, 0x3c00);
	put16(b + 82, 0x3800);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q2_K, b, sizeof b, y, 256), 0);
	CHECK(y[0] == -7.5f && y[16] == -7 && y[37] == -4.5f && y[116] == 17);
	CHECK(y[128] == 20.5f && y[200] == 10.5f && y[255] == 0);
	for (int h = 0; h < 2; h++)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 32; l++) {
				int g = 8 * h + 2 * j + (l >= 16), q = h ? 3 - j : j;
				CHECK(y[128 * h + 32 * j + l] == (float)(g * q) - 0.5f * (float)(15 - g));
			}
}

/* Q3_K: d = 0.25; 16 six-bit scales v_i = 24 + i (so v_i - 32 = i - 8):
 * low nibbles (8 + i) & 15 packed s[j] = low_j | low_(j+8) << 4 =
 * (8 + j) | j << 4, high 2 bits (1 for i < 8, 2 for i >= 8) packed in
 * s[8..11] = 1 | 1 << 2 | 2 << 4 | 2 << 6 = 0xa5.  qs all 0xe4 (q = j at
 * shift 2j); hmask[l] = 0x0f for l < 16 (bits of half 0), 0xf0 else: where
 * the bit 4h + j is clear, 4 is subtracted. */
static void dequant_q3_k(void)
{
	uint8_t b[110];
	float y[256];
	for (int l = 0; l < 32; l++)
		b[l] = l < 16 ? 0x0f : 0xf0;
	memset(b + 32, 0xe4, 64);
	for (int j = 0; j < 8; j++)
		b[96 + j] = (uint8_t)((8 + j) | j << 4);
	memset(b + 104, 0xa5, 4);
	put16(b + 108, 0x3400);
	CHECK_EQ_INT(deq(WEFT_TYPE_Q3_K, b, sizeof b, y, 256), 0);
	CHECK(y[0] == 0 && y[16] == 7 && y[35] == -1.5f && y[127] == 0.25f);
	CHECK(y[128] == 0 && y[193] == -2 && y[255] == 5.25f);
	for (int h = 0; h < 2; h++)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 32; l++) {
				int g = 8 * h + 2 * j + (l >= 16);
				int set = (h == 0) == (l < 16);
				int q = j - (set ? 0 : 4);
				CHECK(y[128 * h + 32 * j + l] == 0.25f * (float)(g - 8) * (float)q);
			}
}

static void dequant_q8_k(void)
{
	uint8_t b[292];
	float y[256];
	put32(b, f2u(0.5f));
	for (int j = 0; j < 256; j++)
		b[4 + j] = (uint8_t)(j - 128);
	memset(b + 260, 0x55, 32); /* bsums: ignored */
	CHECK_EQ_INT(deq(WEFT_TYPE_Q8_K, b, sizeof b, y, 256), 0);
	CHECK(y[0] == -64 && y[128] == 0 && y[255] == 63.5f);
}

/* Input and expected bytes from gguf-py 0.19 (gguf.quants.quantize), which
 * mirrors ggml's quantize_row_*_ref:
 *   x = [((j*13) % 32 - 12) / 8 for j in range(32)]; x[5] = -2.7; x[20] = 1.9
 *   quantize(np.float32(x).reshape(1, 32), GGMLQuantizationType.Q4_0) ... */
static void quantize_matches_ggml(void)
{
	static const uint8_t q4_0[] = {0x66, 0x35, 0x94, 0xe8, 0x7d, 0xc6, 0xeb, 0xa0, 0xf9, 0x8e,
				       0xc7, 0x5b, 0xa4, 0xf9, 0x8e, 0xd7, 0x6c, 0xb5};
	static const uint8_t q4_1[] = {0x6a, 0x35, 0x66, 0xc1, 0x94, 0xe8, 0x7d, 0xc6, 0xeb, 0xa0,
				       0xf9, 0x8e, 0xc7, 0x5b, 0xa4, 0xf9, 0x8e, 0xd7, 0x6c, 0xb5};
	static const uint8_t q5_0[] = {0x66, 0x31, 0xd6, 0x5a, 0x7b, 0xbd, 0x37, 0xd1, 0xfa, 0x8c, 0xb6,
				       0x40, 0xd1, 0xfb, 0x9d, 0xb7, 0x49, 0xe2, 0x0c, 0xae, 0xc7, 0x59};
	static const uint8_t q5_1[] = {0x3d, 0x31, 0x66, 0xc1, 0xd6, 0x5a, 0xfb, 0xbd, 0x47, 0xd1, 0xfb, 0x9d,
				       0xc7, 0x40, 0xe2, 0x0c, 0xad, 0xb7, 0x59, 0xf3, 0x0d, 0xae, 0xc8, 0x6a};
	static const uint8_t q8_0[] = {0x71, 0x25, 0xb9, 0x06, 0x52, 0xe3, 0x2f, 0x81, 0x0c, 0x58, 0xe8, 0x35,
				       0xc5, 0x12, 0x5e, 0xee, 0x3b, 0xcb, 0x18, 0x64, 0xf4, 0x41, 0x59, 0x1d,
				       0x6a, 0xfa, 0x47, 0xd7, 0x23, 0x70, 0x00, 0x4c, 0xdd, 0x29};
	static const struct {
		uint32_t type;
		const uint8_t *bytes;
		size_t n;
	} c[] = {
		{WEFT_TYPE_Q4_0, q4_0, sizeof q4_0}, {WEFT_TYPE_Q4_1, q4_1, sizeof q4_1},
		{WEFT_TYPE_Q5_0, q5_0, sizeof q5_0}, {WEFT_TYPE_Q5_1, q5_1, sizeof q5_1},
		{WEFT_TYPE_Q8_0, q8_0, sizeof q8_0},
	};
	float x[32];
	for (int j = 0; j < 32; j++)
		x[j] = (float)((j * 13) % 32 - 12) / 8;
	x[5] = -2.7f;
	x[20] = 1.9f;
	for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
		uint8_t out[64];
		CHECK_EQ_INT(weft_quantize_row(c[k].type, x, out, 32), 0);
		for (size_t i = 0; i < c[k].n; i++)
			if (out[i] != c[k].bytes[i]) {
				FAILF("%s byte %zu: 0x%02x, expected 0x%02x", weft_type_get(c[k].type)->name, i,
				      out[i], c[k].bytes[i]);
				break;
			}
	}
}

/* Quantize then dequantize pseudo-random rows: error within the format's
 * step (plus fp16 rounding of the scales). */
static void quantize_roundtrip(void)
{
	enum { N = 1024 };
	static float x[N], y[N];
	static uint8_t q[N * 4];
	uint32_t s = 12345;
	for (int i = 0; i < N; i++) {
		s = s * 1664525u + 1013904223u;
		x[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * (i % 64 < 32 ? 4.0f : 0.01f);
	}
	x[100] = 0; /* a block of zeros */
	for (int i = 64; i < 96; i++)
		x[i] = 0;
	static const uint32_t types[] = {WEFT_TYPE_Q4_0, WEFT_TYPE_Q4_1, WEFT_TYPE_Q5_0, WEFT_TYPE_Q5_1,
					 WEFT_TYPE_Q8_0, WEFT_TYPE_Q8_1, WEFT_TYPE_F16, WEFT_TYPE_BF16,
					 WEFT_TYPE_F32};
	for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
		uint32_t t = types[k];
		const weft_type_info *ti = weft_type_get(t);
		CHECK_EQ_INT(weft_quantize_row(t, x, q, N), 0);
		CHECK_EQ_INT(weft_dequantize_row(t, q, y, N), 0);
		for (int b0 = 0; b0 < N; b0 += 32) {
			float mn = x[b0], mx = x[b0], amax = 0;
			for (int j = b0; j < b0 + 32; j++) {
				mn = fminf(mn, x[j]);
				mx = fmaxf(mx, x[j]);
				amax = fmaxf(amax, fabsf(x[j]));
			}
			double tol;
			switch (t) {
			case WEFT_TYPE_Q4_0: tol = amax / 8 * 1.01; break; /* one step at the clamped end */
			case WEFT_TYPE_Q5_0: tol = amax / 16 * 1.01; break;
			case WEFT_TYPE_Q4_1: tol = (mx - mn) / 15 * 0.51 + 1e-3 * amax; break;
			case WEFT_TYPE_Q5_1: tol = (mx - mn) / 31 * 0.51 + 1e-3 * amax; break;
			case WEFT_TYPE_Q8_0:
			case WEFT_TYPE_Q8_1: tol = amax / 127 * 0.51 + 1e-3 * amax; break;
			case WEFT_TYPE_F16: tol = amax / 2048 + 6e-8; break;
			case WEFT_TYPE_BF16: tol = amax / 256; break;
			default: tol = 0;
			}
			for (int j = b0; j < b0 + 32; j++)
				if (!(fabs((double)y[j] - x[j]) <= tol)) {
					FAILF("%s: x[%d] = %.9g -> %.9g (tol %g)", ti->name, j, x[j], y[j], tol);
					j = N;
					b0 = N;
				}
		}
		if (t != WEFT_TYPE_F16 && t != WEFT_TYPE_BF16 && t != WEFT_TYPE_F32)
			for (int j = 64; j < 96; j++)
				CHECK(y[j] == 0); /* zeros survive exactly */
	}
	/* nan input does not crash (value unspecified); q8_0 of all-equal */
	float nanx[32];
	for (int j = 0; j < 32; j++)
		nanx[j] = j == 3 ? NAN : 1.0f;
	CHECK_EQ_INT(weft_quantize_row(WEFT_TYPE_Q4_1, nanx, q, 32), 0);
	CHECK_EQ_INT(weft_quantize_row(WEFT_TYPE_Q8_0, nanx, q, 32), 0);
	for (int j = 0; j < 32; j++)
		nanx[j] = -3.0f;
	CHECK_EQ_INT(weft_quantize_row(WEFT_TYPE_Q8_0, nanx, q, 32), 0);
	CHECK_EQ_INT(weft_dequantize_row(WEFT_TYPE_Q8_0, q, y, 32), 0);
	CHECK_NEAR(y[0], -3.0, 3.0 / 2048);
	CHECK_EQ_INT(weft_quantize_row(WEFT_TYPE_Q4_0, x, q, 33), -1);
	CHECK_STR(weft_errmsg(), "quantize q4_0: 33 values is not a multiple of block size 32");
}

static void fp16_edges(void)
{
	/* to fp32 */
	CHECK(weft_fp16_to_fp32(0x0001) == ldexpf(1, -24));
	CHECK(weft_fp16_to_fp32(0x03ff) == ldexpf(1023, -24)); /* largest subnormal */
	CHECK(weft_fp16_to_fp32(0x0400) == ldexpf(1, -14));    /* smallest normal */
	CHECK(weft_fp16_to_fp32(0x8001) == -ldexpf(1, -24));
	CHECK(weft_fp16_to_fp32(0x7bff) == 65504);
	CHECK(isinf(weft_fp16_to_fp32(0x7c00)) && weft_fp16_to_fp32(0xfc00) < 0);
	CHECK(isnan(weft_fp16_to_fp32(0x7e00)) && isnan(weft_fp16_to_fp32(0x7c01)));
	CHECK(signbit(weft_fp16_to_fp32(0x8000)) && weft_fp16_to_fp32(0x8000) == 0);
	/* from fp32, round to nearest even */
	CHECK_EQ_INT(weft_fp32_to_fp16(1.0f), 0x3c00);
	CHECK_EQ_INT(weft_fp32_to_fp16(-0.0f), 0x8000);
	CHECK_EQ_INT(weft_fp32_to_fp16(65504.0f), 0x7bff);
	CHECK_EQ_INT(weft_fp32_to_fp16(65519.0f), 0x7bff); /* below the midpoint 65520 */
	CHECK_EQ_INT(weft_fp32_to_fp16(65520.0f), 0x7c00); /* tie rounds to even: inf */
	CHECK_EQ_INT(weft_fp32_to_fp16(1e9f), 0x7c00);
	CHECK_EQ_INT(weft_fp32_to_fp16(-1e9f), 0xfc00);
	CHECK_EQ_INT(weft_fp32_to_fp16(INFINITY), 0x7c00);
	uint16_t h = weft_fp32_to_fp16(NAN);
	CHECK((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
	CHECK_EQ_INT(weft_fp32_to_fp16(1.0f + ldexpf(1, -11)), 0x3c00);     /* tie -> even */
	CHECK_EQ_INT(weft_fp32_to_fp16(1.0f + 3 * ldexpf(1, -11)), 0x3c02); /* tie -> even */
	CHECK_EQ_INT(weft_fp32_to_fp16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01);
	CHECK_EQ_INT(weft_fp32_to_fp16(ldexpf(1, -24)), 0x0001);
	CHECK_EQ_INT(weft_fp32_to_fp16(ldexpf(1, -25)), 0x0000);     /* tie -> even 0 */
	CHECK_EQ_INT(weft_fp32_to_fp16(ldexpf(3, -25)), 0x0002);     /* 1.5 units: tie -> 2 */
	CHECK_EQ_INT(weft_fp32_to_fp16(ldexpf(1.0001f, -25)), 0x0001);
	CHECK_EQ_INT(weft_fp32_to_fp16(ldexpf(1, -30)), 0x0000);
	CHECK_EQ_INT(weft_fp32_to_fp16(-ldexpf(1, -24)), 0x8001);
	CHECK_EQ_INT(weft_fp32_to_fp16(ldexpf(2047, -25)), 0x0400); /* 1023.5 units -> normal */
	CHECK_EQ_INT(weft_fp32_to_fp16(ldexpf(1, -14)), 0x0400);
	CHECK_EQ_INT(weft_fp32_to_fp16(FLT_MIN), 0x0000);
	/* every half survives a round trip */
	for (uint32_t u = 0; u < 0x10000; u++) {
		float f = weft_fp16_to_fp32((uint16_t)u);
		if (isnan(f))
			continue;
		if (weft_fp32_to_fp16(f) != u) {
			FAILF("fp16 0x%04x does not round-trip", u);
			break;
		}
	}
}

static void bf16_edges(void)
{
	CHECK_EQ_INT(weft_fp32_to_bf16(1.0f), 0x3f80);
	CHECK_EQ_INT(weft_fp32_to_bf16(-5.0f), 0xc0a0);
	CHECK_EQ_INT(weft_fp32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);     /* tie -> even */
	CHECK_EQ_INT(weft_fp32_to_bf16(1.0f + 3 * ldexpf(1, -8)), 0x3f82); /* tie -> even */
	CHECK_EQ_INT(weft_fp32_to_bf16(u2f(0x3f808001)), 0x3f81);           /* above the tie */
	CHECK_EQ_INT(weft_fp32_to_bf16(FLT_MAX), 0x7f80);                   /* rounds to inf */
	CHECK_EQ_INT(weft_fp32_to_bf16(INFINITY), 0x7f80);
	CHECK_EQ_INT(weft_fp32_to_bf16(-INFINITY), 0xff80);
	CHECK_EQ_INT(weft_fp32_to_bf16(u2f(0x00010000)), 0x0001); /* subnormal kept */
	uint16_t h = weft_fp32_to_bf16(u2f(0x7f800001));          /* signalling nan stays nan */
	CHECK((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0);
	h = weft_fp32_to_bf16(u2f(0xffffffff));
	CHECK((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0);
	CHECK(weft_bf16_to_fp32(0x3f80) == 1.0f && weft_bf16_to_fp32(0x0001) == ldexpf(1, -133));
	CHECK(isnan(weft_bf16_to_fp32(0x7fc0)) && isinf(weft_bf16_to_fp32(0xff80)));
	for (uint32_t u = 0; u < 0x10000; u++) {
		float f = weft_bf16_to_fp32((uint16_t)u);
		if (!isnan(f) && weft_fp32_to_bf16(f) != u) {
			FAILF("bf16 0x%04x does not round-trip", u);
			break;
		}
	}
}

/* Rows of real tensors against gguf-py 0.19 (numpy dequantize):
 *   r = gguf.GGUFReader(path); t = {t.name: t for t in r.tensors}[name]
 *   gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1, int(t.shape[0]))[row][i]
 * printed with %.9g. */
static void smollm2_rows(void)
{
	static const struct {
		const char *name;
		int row, i;
		double want;
	} v[] = {
		{"blk.0.ffn_down.weight", 0, 0, -0.330810547}, /* q4_1 */
		{"blk.0.ffn_down.weight", 0, 1, 0.346069336},
		{"blk.0.ffn_down.weight", 0, 2, 0.0753173828},
		{"blk.0.ffn_down.weight", 0, 3, -0.466186523},
		{"blk.0.ffn_down.weight", 0, 16, -0.6015625},
		{"blk.0.ffn_down.weight", 0, 31, -0.0600585938},
		{"blk.0.ffn_down.weight", 0, 32, 0.0416259766},
		{"blk.0.ffn_down.weight", 0, 1535, 0.0640869141},
		{"blk.0.ffn_down.weight", 575, 0, -0.040222168},
		{"blk.0.ffn_down.weight", 575, 100, -0.145111084},
		{"blk.0.ffn_down.weight", 575, 1535, -0.181365967},
		{"token_embd.weight", 1, 0, -0.0238037109}, /* q8_0 */
		{"token_embd.weight", 1, 1, -0.0158691406},
		{"token_embd.weight", 1, 2, -0.0396728516},
		{"token_embd.weight", 1, 31, 1.00769043},
		{"token_embd.weight", 1, 32, -0.0258331299},
		{"token_embd.weight", 1, 575, -0.128437042},
		{"token_embd.weight", 49151, 0, 0.011505127},
		{"token_embd.weight", 49151, 575, -0.0417022705},
		{"blk.0.attn_norm.weight", 0, 0, 0.0139770508}, /* f32 */
		{"blk.0.attn_norm.weight", 0, 1, 0.0238037109},
		{"blk.0.attn_norm.weight", 0, 2, -0.0197753906},
		{"blk.0.attn_norm.weight", 0, 575, -0.0383300781},
		{"output_norm.weight", 0, 0, 1.7578125},
		{"output_norm.weight", 0, 575, 1.984375},
	};
	const char *path = t_smollm2_path();
	if (!path)
		SKIP("SmolLM2 GGUF absent (scripts/fetch-models)");
	weft_gguf *g = weft_gguf_open(path);
	if (!g) {
		FAILF("%s", weft_errmsg());
		return;
	}
	static float row[1536];
	for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
		const weft_gguf_tensor *t = weft_gguf_find_tensor(g, v[k].name);
		if (!t || t->ne[0] > 1536) {
			FAILF("tensor %s missing", v[k].name);
			break;
		}
		uint64_t rb = weft_type_row_bytes(t->type, (uint64_t)t->ne[0]);
		const uint8_t *src = (const uint8_t *)t->data + rb * (uint64_t)v[k].row;
		CHECK_EQ_INT(weft_dequantize_row(t->type, src, row, t->ne[0]), 0);
		CHECK_NEAR(row[v[k].i], v[k].want, 1e-8 + fabs(v[k].want) * 1e-8);
	}
	weft_gguf_close(g);
}

int main(void)
{
	t_suite = "quants";
	(void)t_shared_dir;
	(void)t_read_file;
	RUN(type_table);
	RUN(dequant_float_types);
	RUN(dequant_q_32);
	RUN(dequant_q4_k);
	RUN(dequant_q5_k);
	RUN(dequant_q6_k);
	RUN(dequant_q2_k);
	RUN(dequant_q3_k);
	RUN(dequant_q8_k);
	RUN(quantize_matches_ggml);
	RUN(quantize_roundtrip);
	RUN(fp16_edges);
	RUN(bf16_edges);
	RUN(smollm2_rows);
	TEST_MAIN_END();
}

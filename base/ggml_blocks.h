/* ggml_blocks.h - the block layouts of ggml's quantized types, as ggml's
 * ggml-common.h declares them, with their sizes checked at compile time.
 * Internal (not installed): the one place a block's bytes are described;
 * the dequantizer (ggml_types.c) and every matmul kernel (kernels/) take
 * block sizes and field offsets from here.
 *
 * Kernels read blocks through byte pointers (any alignment), so offsets
 * are taken with offsetof(), e.g. w + offsetof(weft_block_q6_K, d), and
 * blocks are stepped with sizeof(). */
#ifndef WEFT_GGML_BLOCKS_H
#define WEFT_GGML_BLOCKS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_QK 32      /* values per block of the legacy types */
#define WEFT_QK_K 256   /* values per super-block of the K-quants */
#define WEFT_K_SCALE_SIZE 12

typedef uint16_t weft_half; /* IEEE half, little-endian */

typedef struct { weft_half d; uint8_t qs[WEFT_QK / 2]; } weft_block_q4_0;
typedef struct { weft_half d, m; uint8_t qs[WEFT_QK / 2]; } weft_block_q4_1;
typedef struct { weft_half d; uint8_t qh[4]; uint8_t qs[WEFT_QK / 2]; } weft_block_q5_0;
typedef struct { weft_half d, m; uint8_t qh[4]; uint8_t qs[WEFT_QK / 2]; } weft_block_q5_1;
typedef struct { weft_half d; int8_t qs[WEFT_QK]; } weft_block_q8_0;
typedef struct { weft_half d, s; int8_t qs[WEFT_QK]; } weft_block_q8_1;

typedef struct {
	uint8_t scales[WEFT_QK_K / 16]; /* low nibble scale, high nibble min */
	uint8_t qs[WEFT_QK_K / 4];
	weft_half d, dmin;
} weft_block_q2_K;
typedef struct {
	uint8_t hmask[WEFT_QK_K / 8];
	uint8_t qs[WEFT_QK_K / 4];
	uint8_t scales[12];
	weft_half d;
} weft_block_q3_K;
typedef struct {
	weft_half d, dmin;
	uint8_t scales[WEFT_K_SCALE_SIZE]; /* 6-bit scales and mins (weft_scale_min_k4) */
	uint8_t qs[WEFT_QK_K / 2];
} weft_block_q4_K;
typedef struct {
	weft_half d, dmin;
	uint8_t scales[WEFT_K_SCALE_SIZE];
	uint8_t qh[WEFT_QK_K / 8];
	uint8_t qs[WEFT_QK_K / 2];
} weft_block_q5_K;
typedef struct {
	uint8_t ql[WEFT_QK_K / 2];
	uint8_t qh[WEFT_QK_K / 4];
	int8_t scales[WEFT_QK_K / 16];
	weft_half d;
} weft_block_q6_K;
typedef struct {
	float d;
	int8_t qs[WEFT_QK_K];
	int16_t bsums[WEFT_QK_K / 16];
} weft_block_q8_K;

static_assert(sizeof(weft_block_q4_0) == 18, "q4_0 block");
static_assert(sizeof(weft_block_q4_1) == 20, "q4_1 block");
static_assert(sizeof(weft_block_q5_0) == 22, "q5_0 block");
static_assert(sizeof(weft_block_q5_1) == 24, "q5_1 block");
static_assert(sizeof(weft_block_q8_0) == 34, "q8_0 block");
static_assert(sizeof(weft_block_q8_1) == 36, "q8_1 block");
static_assert(sizeof(weft_block_q2_K) == 84, "q2_K block");
static_assert(sizeof(weft_block_q3_K) == 110, "q3_K block");
static_assert(sizeof(weft_block_q4_K) == 144, "q4_K block");
static_assert(sizeof(weft_block_q5_K) == 176, "q5_K block");
static_assert(sizeof(weft_block_q6_K) == 210, "q6_K block");
static_assert(sizeof(weft_block_q8_K) == 292, "q8_K block");

/* Byte offset of field f in block type T (weft_block_T), and its size. */
#define WEFT_OFF(T, f) offsetof(weft_block_##T, f)
#define WEFT_SZ(T) sizeof(weft_block_##T)

#endif

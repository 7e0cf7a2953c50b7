/* ggml_types.h - ggml tensor types as stored in GGUF files: block sizes,
 * byte sizes and reference (scalar C) dequantization to float32.
 * Block layouts follow ggml's ggml-common.h; see man/weft-stream.5 for the
 * list weft supports. */
#ifndef WEFT_GGML_TYPES_H
#define WEFT_GGML_TYPES_H

#include <stddef.h>
#include <stdint.h>

enum weft_ggml_type {
	WEFT_TYPE_F32 = 0, WEFT_TYPE_F16 = 1, WEFT_TYPE_Q4_0 = 2, WEFT_TYPE_Q4_1 = 3,
	WEFT_TYPE_Q5_0 = 6, WEFT_TYPE_Q5_1 = 7, WEFT_TYPE_Q8_0 = 8, WEFT_TYPE_Q8_1 = 9,
	WEFT_TYPE_Q2_K = 10, WEFT_TYPE_Q3_K = 11, WEFT_TYPE_Q4_K = 12, WEFT_TYPE_Q5_K = 13,
	WEFT_TYPE_Q6_K = 14, WEFT_TYPE_Q8_K = 15,
	WEFT_TYPE_I8 = 24, WEFT_TYPE_I16 = 25, WEFT_TYPE_I32 = 26, WEFT_TYPE_I64 = 27,
	WEFT_TYPE_F64 = 28, WEFT_TYPE_BF16 = 30,
	WEFT_TYPE_COUNT = 40
};

typedef struct weft_type_info {
	const char *name;     /* "q4_K", as ggml names it */
	uint32_t block;       /* values per block */
	uint32_t bytes;       /* bytes per block */
	int can_dequant;      /* weft_dequantize_row supports it */
} weft_type_info;

/* Info for a type id; NULL for ids weft does not know (sizes unknown). */
const weft_type_info *weft_type_get(uint32_t type);

/* Bytes needed for a row of n values (n must be a multiple of the block);
 * returns 0 on an unknown type or n not a multiple. */
uint64_t weft_type_row_bytes(uint32_t type, uint64_t n);

/* Dequantize n values (a multiple of the block size) from src to dst.
 * Returns 0, or -1 with an error for an unsupported type / bad n. */
int weft_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Quantize n float32 values to type (reference, round-to-nearest, used by
 * tests and fixture generators).  Supported: F32, F16, BF16, Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1.  Returns 0 or -1. */
int weft_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* 6-bit scale and min number j (0..7) of a Q4_K / Q5_K block's 12-byte
 * scale field (ggml's get_scale_min_k4): the one decoder of it that the
 * dequantizer and every matmul kernel use. */
static inline void weft_scale_min_k4(int j, const uint8_t *s, int *sc, int *m)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*m = s[j + 4] & 63;
	} else {
		*sc = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
		*m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
	}
}

#endif

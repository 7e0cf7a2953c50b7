/* gguf_util.h - what test_gguf.c and test_gguf_bad.c share: expecting a
 * file to fail with an exact message, and a file with everything in it. */
#ifndef WEFT_TEST_GGUF_UTIL_H
#define WEFT_TEST_GGUF_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gguf.h"
#include "gguf_build.h"
#include "test.h"
#include "util.h"

/* Open bytes expecting failure with exactly this message. */
#define EXPECT_FAIL_EX(buf, n, lim, msg)                                           \
	do {                                                                       \
		weft_error("(no error)");                                          \
		weft_gguf *g_ = weft_gguf_open_mem_ex((buf), (n), (lim));          \
		CHECK(g_ == NULL);                                                 \
		weft_gguf_close(g_);                                               \
		CHECK_STR(weft_errmsg(), (msg));                                   \
	} while (0)
#define EXPECT_FAIL(buf, n, msg) EXPECT_FAIL_EX(buf, n, NULL, msg)

/* Finish the builder and expect failure. */
#define EXPECT_BUILD_FAIL(b, msg)                                                  \
	do {                                                                       \
		size_t n_;                                                         \
		uint8_t *f_ = gb_finish((b), &n_);                                 \
		EXPECT_FAIL(f_, n_, msg);                                          \
		free(f_);                                                          \
		gb_free(b);                                                        \
	} while (0)

static inline weft_gguf *open_built(gguf_builder *b, uint8_t **file, size_t *n)
{
	*file = gb_finish(b, n);
	weft_gguf *g = weft_gguf_open_mem(*file, *n);
	if (!g)
		printf("# open failed: %s\n", weft_errmsg());
	return g;
}

static const char *const WORDS[] __attribute__((unused)) = {"alpha", "", "gamma \xce\xb3", "d"};

/* A file with every metadata type, nested arrays, and two tensors. */
static inline void build_everything(gguf_builder *b, uint32_t version)
{
	gb_init(b, version);
	gb_kv_u8(b, "u8", 200);
	gb_kv_i8(b, "i8", -100);
	gb_kv_u16(b, "u16", 65535);
	gb_kv_i16(b, "i16", -32768);
	gb_kv_u32(b, "u32", 4000000000u);
	gb_kv_i32(b, "i32", -2000000000);
	gb_kv_f32(b, "f32", 1.5f);
	gb_kv_bool(b, "bool", 1);
	gb_kv_str(b, "str", "hello");
	gb_kv_u64(b, "u64", UINT64_MAX);
	gb_kv_i64(b, "i64", INT64_MIN);
	gb_kv_f64(b, "f64", -0.125);
	gb_kv_arr(b, "arr.i32", WEFT_GGUF_INT32, 3, (int32_t[]){-1, 0, 7});
	gb_kv_arr(b, "arr.f32", WEFT_GGUF_FLOAT32, 2, (float[]){0.5f, -2});
	gb_kv_arr(b, "arr.u8", WEFT_GGUF_UINT8, 2, (uint8_t[]){1, 255});
	gb_kv_arr(b, "arr.bool", WEFT_GGUF_BOOL, 3, (uint8_t[]){1, 0, 1});
	gb_kv_arr(b, "arr.u64", WEFT_GGUF_UINT64, 1, (uint64_t[]){1ull << 40});
	gb_kv_arr(b, "arr.f64", WEFT_GGUF_FLOAT64, 1, (double[]){3.25});
	gb_kv_arr(b, "arr.empty", WEFT_GGUF_INT16, 0, NULL);
	gb_kv_arr_str(b, "arr.str", 4, WORDS);
	/* nested: [[1, 2], [], [[ "x" ]]] is not expressible (mixed types),
	 * so: [[1, 2], [3]] of int16 and [[["x", "yz"]]] of strings */
	gb_begin_kv(b, "nest.i16", WEFT_GGUF_ARRAY);
	gb_arr_hdr(b, WEFT_GGUF_ARRAY, 2);
	gb_arr_hdr(b, WEFT_GGUF_INT16, 2);
	gb_raw(b, (int16_t[]){1, -2}, 4);
	gb_arr_hdr(b, WEFT_GGUF_INT16, 1);
	gb_raw(b, (int16_t[]){3}, 2);
	gb_begin_kv(b, "nest.str", WEFT_GGUF_ARRAY);
	gb_arr_hdr(b, WEFT_GGUF_ARRAY, 1);
	gb_arr_hdr(b, WEFT_GGUF_ARRAY, 1);
	gb_arr_hdr(b, WEFT_GGUF_STRING, 2);
	gb_str(b, "x");
	gb_str(b, "yz");
	float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	gb_tensor(b, "w", WEFT_TYPE_F32, 2, (int64_t[]){4, 2}, w, sizeof w);
	gb_tensor(b, "blk.0.attn_q.weight", WEFT_TYPE_Q8_0, 1, (int64_t[]){32}, NULL, 34);
}

#endif

/* test_gguf_bad.c - GGUF reader on hostile files: every truncation, bad
 * headers, metadata, alignment and tensors, each failing cleanly with its
 * exact one-line message. */
#include "ggml_types.h"
#include "gguf.h"
#include "util.h"

#include "gguf_build.h"
#include "gguf_util.h"
#include "test.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Every proper prefix of a valid file fails cleanly with a one-line message;
 * a few are checked exactly. */
static void truncated_everywhere(void)
{
	gguf_builder b;
	size_t n;
	build_everything(&b, 3);
	uint8_t *f = gb_finish(&b, &n);
	CHECK_EQ_INT((n - b.data_at) % 32, 2); /* the file ends with q8_0 data: 34 bytes */
	for (size_t k = 0; k < n; k++) {
		/* a fresh allocation of exactly k bytes, so ASan sees any overread */
		uint8_t *p = malloc(k ? k : 1);
		memcpy(p, f, k);
		weft_error("(no error)");
		weft_gguf *g = weft_gguf_open_mem(p, k);
		const char *m = weft_errmsg();
		if (g || !(starts_with(m, "truncated file: ") || starts_with(m, "not a GGUF file (") ||
			   (starts_with(m, "tensor '") && strstr(m, "outside the file")))) {
			FAILF("prefix %zu: %s", k, g ? "opened" : m);
			weft_gguf_close(g);
		}
		if (strchr(m, '\n'))
			FAILF("prefix %zu: newline in message", k);
		free(p);
	}
	EXPECT_FAIL(f, 0, "not a GGUF file (0 bytes)");
	EXPECT_FAIL(f, 3, "not a GGUF file (3 bytes)");
	EXPECT_FAIL(f, 10, "truncated file: header needs 24 bytes, file has 10");
	EXPECT_FAIL(f, 100, "truncated file: n_kv 22 exceeds remaining 76 bytes"); /* 14 bytes per kv */
	free(f);
	gb_free(&b);

	/* a small file, so that the counts fit and later fields are reached */
	char want[200];
	size_t k0;
	gb_init(&b, 3);
	gb_kv_str(&b, "general.architecture", "test");
	gb_kv_i8(&b, "i8", -1);
	gb_tensor(&b, "blk.0.attn_q.weight", WEFT_TYPE_Q8_0, 1, (int64_t[]){32}, NULL, 34);
	f = gb_finish(&b, &n);
	k0 = b.kvs_at + b.kv_at[1] + 5; /* inside key 1's length */
	snprintf(want, sizeof want,
		 "truncated file: metadata key 1 string length needs 8 bytes at offset %zu, 5 remain", k0 - 5);
	EXPECT_FAIL(f, k0, want);
	k0 = b.kvs_at + b.kv_at[1] + 8 + 2 + 1; /* inside kv 1's type */
	snprintf(want, sizeof want,
		 "truncated file: metadata 'i8' value type needs 4 bytes at offset %zu, 1 remain", k0 - 1);
	EXPECT_FAIL(f, k0, want);
	k0 = b.kvs_at + b.kv_at[1] + 8 + 2 + 4; /* at kv 1's value */
	snprintf(want, sizeof want, "truncated file: metadata 'i8' value needs 1 bytes at offset %zu, 0 remain", k0);
	EXPECT_FAIL(f, k0, want);
	k0 = b.infos_at + b.t[0].at_type + 3;
	snprintf(want, sizeof want,
		 "truncated file: tensor 'blk.0.attn_q.weight' type needs 4 bytes at offset %zu, 3 remain", k0 - 3);
	EXPECT_FAIL(f, k0, want);
	EXPECT_FAIL(f, n - 1, "tensor 'blk.0.attn_q.weight': data [0, 34) outside the file (data section is 33 bytes)");
	CHECK(b.data_at > b.infos_at + b.infos.n); /* padding present */
	snprintf(want, sizeof want,
		 "truncated file: data section at offset %zu is past the end of the file (%zu bytes)",
		 b.data_at, b.data_at - 1);
	EXPECT_FAIL(f, b.data_at - 1, want);
	free(f);
	gb_free(&b);
}

static void bad_header(void)
{
	gguf_builder b;
	size_t n;
	gb_init(&b, 3);
	gb_kv_u32(&b, "k", 1);
	uint8_t *f = gb_finish(&b, &n);
	weft_gguf *g = weft_gguf_open_mem(f, n);
	CHECK(g != NULL);
	weft_gguf_close(g);

	memcpy(f, "GGUX", 4);
	EXPECT_FAIL(f, n, "not a GGUF file (magic \"GGUX\")");
	memcpy(f, "\x00\x01GG", 4);
	EXPECT_FAIL(f, n, "not a GGUF file (magic \"\\x00\\x01GG\")");
	memcpy(f, "GGUF", 4);
	gb_put_u32(f + 4, 1);
	EXPECT_FAIL(f, n, "unsupported GGUF version 1 (obsolete; only versions 2 and 3 are supported)");
	gb_put_u32(f + 4, 4);
	EXPECT_FAIL(f, n, "unsupported GGUF version 4 (only versions 2 and 3 are supported)");
	gb_put_u32(f + 4, 0);
	EXPECT_FAIL(f, n, "unsupported GGUF version 0 (only versions 2 and 3 are supported)");
	gb_put_u32(f + 4, 0x03000000); /* 3 written big-endian */
	EXPECT_FAIL(f, n,
		    "unsupported GGUF version 50331648 (0x03000000): wrong endianness (byte-swapped file?)");
	gb_put_u32(f + 4, 3);

	/* giant counts: rejected before any allocation */
	gb_put_u64(f + 16, 1ull << 40);
	EXPECT_FAIL(f, n, "n_kv 1099511627776 exceeds limit 1048576");
	gb_put_u64(f + 16, 1000);
	EXPECT_FAIL(f, n, "truncated file: n_kv 1000 exceeds remaining 17 bytes");
	weft_gguf_limits big = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, 8};
	gb_put_u64(f + 16, UINT64_MAX);
	EXPECT_FAIL_EX(f, n, &big, "truncated file: n_kv 18446744073709551615 exceeds remaining 17 bytes");
	gb_put_u64(f + 16, 1);
	gb_put_u64(f + 8, UINT64_MAX);
	EXPECT_FAIL(f, n, "n_tensors 18446744073709551615 exceeds limit 1048576");
	EXPECT_FAIL_EX(f, n, &big, "truncated file: n_tensors 18446744073709551615 exceeds remaining 17 bytes");
	gb_put_u64(f + 8, 1); /* 24 bytes needed, 17 remain */
	EXPECT_FAIL(f, n, "truncated file: n_tensors 1 exceeds remaining 17 bytes");
	gb_put_u64(f + 8, 0);
	weft_gguf_limits one = {.max_kv = 1};
	g = weft_gguf_open_mem_ex(f, n, &one);
	CHECK(g != NULL);
	weft_gguf_close(g);
	free(f);
	gb_free(&b);
}

static void bad_metadata(void)
{
	gguf_builder b;
	size_t n;
	uint8_t *f;

	gb_init(&b, 3);
	gb_kv_u32(&b, "a", 1);
	gb_kv_u32(&b, "a", 2);
	EXPECT_BUILD_FAIL(&b, "duplicate metadata key 'a'");

	gb_init(&b, 3);
	gb_kv_u32(&b, "a\n\x01", 1);
	gb_kv_u32(&b, "a\n\x01", 2);
	EXPECT_BUILD_FAIL(&b, "duplicate metadata key 'a\\x0a\\x01'");

	gb_init(&b, 3);
	gb_kv_u32(&b, "ok", 1);
	gb_kv_u32(&b, "", 2);
	EXPECT_BUILD_FAIL(&b, "metadata key 1 is empty");

	gb_init(&b, 3);
	gb_begin_kv(&b, "k", 13);
	gb_u64(&b, 0);
	EXPECT_BUILD_FAIL(&b, "metadata 'k': unknown value type 13");

	gb_init(&b, 3);
	gb_begin_kv(&b, "k", WEFT_GGUF_ARRAY);
	gb_arr_hdr(&b, 0xffffffffu, 0);
	gb_u64(&b, 0);
	EXPECT_BUILD_FAIL(&b, "metadata 'k': unknown array element type 4294967295");

	gb_init(&b, 3);
	gb_kv_bool(&b, "b", 2);
	EXPECT_BUILD_FAIL(&b, "metadata 'b': bool value 2 is not 0 or 1");

	gb_init(&b, 3);
	gb_kv_arr(&b, "bs", WEFT_GGUF_BOOL, 3, (uint8_t[]){0, 1, 255});
	EXPECT_BUILD_FAIL(&b, "metadata 'bs': bool element 2 value 255 is not 0 or 1");

	/* giant string lengths */
	gb_init(&b, 3);
	gb_kv_u32(&b, "x", 1);
	gb_u64(&b, 1000000); /* key 1 length */
	gb_raw(&b, "abc", 3);
	gb_raw(&b, "0123456789", 10);
	b.n_kv = 2;
	EXPECT_BUILD_FAIL(&b, "truncated file: metadata key 1 string length 1000000 exceeds remaining 13 bytes");

	gb_init(&b, 3);
	gb_begin_kv(&b, "s", WEFT_GGUF_STRING);
	gb_u64(&b, UINT64_MAX);
	gb_raw(&b, "abcdefgh", 8);
	EXPECT_BUILD_FAIL(&b, "truncated file: metadata 's' string length 18446744073709551615 exceeds remaining 8 bytes");

	gb_init(&b, 3);
	gb_begin_kv(&b, "toks", WEFT_GGUF_ARRAY);
	gb_arr_hdr(&b, WEFT_GGUF_STRING, 3);
	gb_str(&b, "a");
	gb_u64(&b, 1ull << 62);
	gb_raw(&b, "bcdefghijklmnop", 15);
	EXPECT_BUILD_FAIL(&b, "truncated file: metadata 'toks' element 1 string length 4611686018427387904 exceeds remaining 15 bytes");

	gb_init(&b, 3);
	gb_kv_str(&b, "s", "hello");
	f = gb_finish(&b, &n);
	weft_gguf_limits lim = {.max_string = 4};
	EXPECT_FAIL_EX(f, n, &lim, "metadata 's' string length 5 exceeds limit 4");
	lim.max_string = 5;
	weft_gguf *g = weft_gguf_open_mem_ex(f, n, &lim);
	CHECK(g != NULL);
	weft_gguf_close(g);
	free(f);
	gb_free(&b);

	/* giant array counts */
	gb_init(&b, 3);
	gb_begin_kv(&b, "a", WEFT_GGUF_ARRAY);
	gb_arr_hdr(&b, WEFT_GGUF_UINT32, 1ull << 60);
	gb_raw(&b, "0123456789abcdef", 16);
	f = gb_finish(&b, &n);
	EXPECT_FAIL(f, n, "metadata 'a': array count 1152921504606846976 exceeds limit 268435456");
	lim = (weft_gguf_limits){.max_array = UINT64_MAX};
	EXPECT_FAIL_EX(f, n, &lim, "truncated file: metadata 'a' array count 1152921504606846976 exceeds remaining 16 bytes");
	free(f);
	gb_free(&b);

	gb_init(&b, 3); /* 5 uint32 need 20 bytes */
	gb_kv_arr(&b, "a", WEFT_GGUF_UINT32, 4, (uint32_t[]){1, 2, 3, 4});
	gb_put_u64(b.kvs.p + b.kv_at[0] + 8 + 1 + 4 + 4, 5);
	EXPECT_BUILD_FAIL(&b, "truncated file: metadata 'a' array count 5 exceeds remaining 16 bytes");

	gb_init(&b, 3); /* nested arrays need 12 bytes each */
	gb_begin_kv(&b, "n", WEFT_GGUF_ARRAY);
	gb_arr_hdr(&b, WEFT_GGUF_ARRAY, 2);
	gb_arr_hdr(&b, WEFT_GGUF_INT8, 0);
	gb_raw(&b, "abcd", 4);
	EXPECT_BUILD_FAIL(&b, "truncated file: metadata 'n' array count 2 exceeds remaining 16 bytes");

	/* nesting depth: 8 levels are fine, 9 are not */
	for (int depth = 8; depth <= 9; depth++) {
		gb_init(&b, 3);
		gb_begin_kv(&b, "deep", WEFT_GGUF_ARRAY);
		for (int d = 1; d < depth; d++)
			gb_arr_hdr(&b, WEFT_GGUF_ARRAY, 1);
		gb_arr_hdr(&b, WEFT_GGUF_UINT8, 1);
		gb_u8(&b, 42);
		f = gb_finish(&b, &n);
		g = weft_gguf_open_mem(f, n);
		if (depth == 8) {
			CHECK(g != NULL);
			const weft_gguf_value *v = g ? weft_gguf_get(g, "deep") : NULL;
			for (int d = 1; v && d < depth; d++)
				v = &v->v.arr.vals[0];
			CHECK(v && v->v.arr.type == WEFT_GGUF_UINT8 && weft_gguf_arr_i64(v, 0) == 42);
			lim = (weft_gguf_limits){.max_depth = 7};
			EXPECT_FAIL_EX(f, n, &lim, "metadata 'deep': arrays nested deeper than 7");
		} else {
			CHECK(g == NULL);
			CHECK_STR(weft_errmsg(), "metadata 'deep': arrays nested deeper than 8");
		}
		weft_gguf_close(g);
		free(f);
		gb_free(&b);
	}

	/* a deep, wide nest of empty arrays stays bounded by the file size */
	gb_init(&b, 3);
	gb_begin_kv(&b, "wide", WEFT_GGUF_ARRAY);
	gb_arr_hdr(&b, WEFT_GGUF_ARRAY, 1000);
	for (int i = 0; i < 1000; i++)
		gb_arr_hdr(&b, WEFT_GGUF_FLOAT64, 0);
	f = gb_finish(&b, &n);
	g = weft_gguf_open_mem(f, n);
	CHECK(g && weft_gguf_get(g, "wide")->v.arr.n == 1000);
	weft_gguf_close(g);
	free(f);
	gb_free(&b);
}

static void bad_alignment(void)
{
	static const struct {
		uint32_t a;
		const char *msg;
	} cases[] = {
		{0, "general.alignment 0 is not a power of two"},
		{3, "general.alignment 3 is not a power of two"},
		{0x80000001u, "general.alignment 2147483649 is not a power of two"},
	};
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		gguf_builder b;
		gb_init(&b, 3);
		gb_kv_u32(&b, "general.alignment", cases[k].a);
		EXPECT_BUILD_FAIL(&b, cases[k].msg);
	}
	gguf_builder b;
	gb_init(&b, 3);
	gb_kv_i32(&b, "general.alignment", 32);
	EXPECT_BUILD_FAIL(&b, "general.alignment must be uint32, not int32");
}

static void bad_tensors(void)
{
	gguf_builder b;
	const int64_t ne1[1] = {8};

	gb_init(&b, 3);
	gb_tensor(&b, "x", WEFT_TYPE_F32, 1, ne1, NULL, 32);
	gb_tensor(&b, "x", WEFT_TYPE_F32, 1, ne1, NULL, 32);
	EXPECT_BUILD_FAIL(&b, "duplicate tensor name 'x'");

	gb_init(&b, 3);
	gb_tensor(&b, "x", WEFT_TYPE_F32, 5, (int64_t[]){8, 1, 1, 1, 1}, NULL, 32);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': n_dims 5 > 4");

	gb_init(&b, 3);
	gb_tensor(&b, "x", WEFT_TYPE_F32, 2, (int64_t[]){8, -3}, NULL, 32);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': ne[1]=-3 is negative");

	gb_init(&b, 3);
	gb_tensor(&b, "x", WEFT_TYPE_F32, 1, (int64_t[]){INT64_MIN}, NULL, 32);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': ne[0]=-9223372036854775808 is negative");

	gb_init(&b, 3);
	gb_tensor(&b, "blk.0.attn_q.weight", WEFT_TYPE_F32, 2, (int64_t[]){1ll << 32, 1ll << 32}, NULL, 32);
	EXPECT_BUILD_FAIL(&b, "tensor 'blk.0.attn_q.weight': dims overflow");

	gb_init(&b, 3);
	gb_tensor(&b, "x", WEFT_TYPE_F32, 4, (int64_t[]){3, INT64_MAX, 1, 1}, NULL, 32);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': dims overflow");

	gb_init(&b, 3); /* element count fits int64, byte count does not */
	gb_tensor(&b, "x", WEFT_TYPE_F64, 2, (int64_t[]){1ll << 31, 1ll << 31}, NULL, 32);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': size overflow");

	gb_init(&b, 3); /* a zero dim: no overflow whatever the others */
	gb_tensor(&b, "x", WEFT_TYPE_F32, 4, (int64_t[]){0, INT64_MAX, INT64_MAX, INT64_MAX}, NULL, 0);
	{
		size_t n;
		uint8_t *f = gb_finish(&b, &n);
		weft_gguf *g = weft_gguf_open_mem(f, n);
		CHECK(g && g->tensors[0].nbytes == 0);
		weft_gguf_close(g);
		free(f);
		gb_free(&b);
	}

	gb_init(&b, 3);
	gb_tensor(&b, "x", 99, 1, ne1, NULL, 32);
	EXPECT_BUILD_FAIL(&b, "unknown tensor type 99 for tensor 'x'");

	gb_init(&b, 3);
	gb_tensor(&b, "x", 4, 1, ne1, NULL, 32); /* Q4_2, removed from ggml */
	EXPECT_BUILD_FAIL(&b, "unknown tensor type 4 for tensor 'x'");

	gb_init(&b, 3);
	gb_tensor(&b, "x", WEFT_TYPE_Q4_0, 2, (int64_t[]){33, 2}, NULL, 64);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': ne[0]=33 not a multiple of block size 32 for q4_0");

	gb_init(&b, 3);
	gb_tensor(&b, "x", WEFT_TYPE_Q6_K, 1, (int64_t[]){128}, NULL, 210);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': ne[0]=128 not a multiple of block size 256 for q6_K");

	gb_init(&b, 3); /* an IQ type is opened (sizes known) though not dequantized */
	gb_tensor(&b, "iq", 23, 1, (int64_t[]){256}, NULL, 136);
	{
		size_t n;
		uint8_t *f = gb_finish(&b, &n);
		weft_gguf *g = weft_gguf_open_mem(f, n);
		CHECK(g && g->tensors[0].nbytes == 136);
		weft_gguf_close(g);
		free(f);
		gb_free(&b);
	}

	char longname[65];
	memset(longname, 'n', 64);
	longname[64] = 0;
	gb_init(&b, 3);
	gb_tensor(&b, "ok", WEFT_TYPE_F32, 1, ne1, NULL, 32);
	gb_tensor(&b, longname, WEFT_TYPE_F32, 1, ne1, NULL, 32);
	EXPECT_BUILD_FAIL(&b, "tensor 1 name length 64 >= 64");
	longname[63] = 0;
	gb_init(&b, 3);
	gb_tensor(&b, longname, WEFT_TYPE_F32, 1, ne1, NULL, 32);
	{
		size_t n;
		uint8_t *f = gb_finish(&b, &n);
		weft_gguf *g = weft_gguf_open_mem(f, n);
		CHECK(g && weft_gguf_find_tensor(g, longname));
		weft_gguf_close(g);
		free(f);
		gb_free(&b);
	}

	gb_init(&b, 3);
	gb_tensor(&b, "x", WEFT_TYPE_F32, 1, ne1, NULL, 32);
	gb_b_u64(&b.infos, 1ull << 40); /* second tensor's name length */
	gb_append(&b.infos, "abcdefghijklmnopqrstuvwxyz", 26);
	b.n_tensors = 2;
	b.pad_data = 0;
	EXPECT_BUILD_FAIL(&b, "truncated file: tensor 1 name string length 1099511627776 exceeds remaining 58 bytes"); /* 26 + 32 of data */

	/* offsets */
	gb_init(&b, 3);
	gb_tensor_info(&b, "x", WEFT_TYPE_F32, 1, ne1, 17);
	gb_append(&b.data, longname, 60);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': offset 17 not aligned to 32");

	gb_init(&b, 3);
	gb_tensor(&b, "a", WEFT_TYPE_F32, 1, ne1, NULL, 32);
	gb_tensor_info(&b, "x", WEFT_TYPE_F32, 1, (int64_t[]){16}, 32);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': data [32, 96) outside the file (data section is 32 bytes)");

	gb_init(&b, 3);
	gb_tensor(&b, "a", WEFT_TYPE_F32, 1, ne1, NULL, 32);
	gb_tensor_info(&b, "x", WEFT_TYPE_F32, 1, ne1, UINT64_MAX - 31);
	EXPECT_BUILD_FAIL(&b, "tensor 'x': data offset 18446744073709551584 + size 32 overflows");

	gb_init(&b, 3);
	gb_tensor_info(&b, "a", WEFT_TYPE_F32, 1, (int64_t[]){16}, 0);
	gb_tensor_info(&b, "b", WEFT_TYPE_F32, 1, (int64_t[]){16}, 32);
	gb_append(&b.data, longname, 63);
	gb_append(&b.data, longname, 33);
	EXPECT_BUILD_FAIL(&b, "tensor 'b': data [32, 96) overlaps tensor 'a' [0, 64)");

	gb_init(&b, 3); /* same, listed in the other order */
	gb_tensor_info(&b, "b", WEFT_TYPE_F32, 1, (int64_t[]){16}, 32);
	gb_tensor_info(&b, "a", WEFT_TYPE_F32, 1, (int64_t[]){16}, 0);
	gb_append(&b.data, longname, 63);
	gb_append(&b.data, longname, 33);
	EXPECT_BUILD_FAIL(&b, "tensor 'b': data [32, 96) overlaps tensor 'a' [0, 64)");

	gb_init(&b, 3); /* a big tensor covering a later small one */
	gb_tensor_info(&b, "big", WEFT_TYPE_F32, 1, (int64_t[]){64}, 0);
	gb_tensor_info(&b, "mid", WEFT_TYPE_F32, 1, (int64_t[]){8}, 32);
	gb_tensor_info(&b, "end", WEFT_TYPE_F32, 1, (int64_t[]){8}, 256);
	for (int i = 0; i < 8; i++)
		gb_append(&b.data, longname, 36);
	EXPECT_BUILD_FAIL(&b, "tensor 'mid': data [32, 64) overlaps tensor 'big' [0, 256)");

	gb_init(&b, 3); /* identical offsets */
	gb_tensor_info(&b, "p", WEFT_TYPE_I8, 1, (int64_t[]){1}, 0);
	gb_tensor_info(&b, "q", WEFT_TYPE_I8, 1, (int64_t[]){1}, 0);
	gb_append(&b.data, "z", 1);
	EXPECT_BUILD_FAIL(&b, "tensor 'q': data [0, 1) overlaps tensor 'p' [0, 1)");
}

int main(void)
{
	t_suite = "gguf";
	RUN(truncated_everywhere);
	RUN(bad_header);
	RUN(bad_metadata);
	RUN(bad_alignment);
	RUN(bad_tensors);
	TEST_MAIN_END();
}

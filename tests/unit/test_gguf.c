/* test_gguf.c - GGUF reader: round trips, lookups, zero copy, hostile files
 * (exact error messages) and the real vocab / SmolLM2 files. */
#include "ggml_types.h"
#include "gguf.h"
#include "util.h"

#include "gguf_build.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

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

static weft_gguf *open_built(gguf_builder *b, uint8_t **file, size_t *n)
{
	*file = gb_finish(b, n);
	weft_gguf *g = weft_gguf_open_mem(*file, *n);
	if (!g)
		printf("# open failed: %s\n", weft_errmsg());
	return g;
}

static const char *const WORDS[] = {"alpha", "", "gamma \xce\xb3", "d"};

/* A file with every metadata type, nested arrays, and two tensors. */
static void build_everything(gguf_builder *b, uint32_t version)
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

static void check_everything(const weft_gguf *g, uint32_t version)
{
	const weft_gguf_value *v;
	CHECK_EQ_INT(g->version, version);
	CHECK_EQ_INT(g->n_kv, 22);
	CHECK_EQ_INT(g->n_tensors, 2);
	CHECK_EQ_INT(g->alignment, 32);
	CHECK((v = weft_gguf_get(g, "u8")) && v->type == WEFT_GGUF_UINT8 && v->v.u64 == 200);
	CHECK((v = weft_gguf_get(g, "i8")) && v->type == WEFT_GGUF_INT8 && v->v.i64 == -100);
	CHECK((v = weft_gguf_get(g, "u16")) && v->v.u64 == 65535);
	CHECK((v = weft_gguf_get(g, "i16")) && v->v.i64 == -32768);
	CHECK((v = weft_gguf_get(g, "u32")) && v->v.u64 == 4000000000u);
	CHECK((v = weft_gguf_get(g, "i32")) && v->v.i64 == -2000000000);
	CHECK((v = weft_gguf_get(g, "f32")) && v->type == WEFT_GGUF_FLOAT32 && v->v.f64 == 1.5);
	CHECK((v = weft_gguf_get(g, "bool")) && v->type == WEFT_GGUF_BOOL && v->v.u64 == 1);
	CHECK((v = weft_gguf_get(g, "str")) && weft_gguf_str_eq(v->v.str, "hello"));
	CHECK((v = weft_gguf_get(g, "u64")) && v->v.u64 == UINT64_MAX);
	CHECK((v = weft_gguf_get(g, "i64")) && v->v.i64 == INT64_MIN);
	CHECK((v = weft_gguf_get(g, "f64")) && v->type == WEFT_GGUF_FLOAT64 && v->v.f64 == -0.125);
	CHECK(weft_gguf_get(g, "absent") == NULL);
	CHECK(weft_gguf_get(g, "u") == NULL);

	CHECK_EQ_INT(weft_gguf_get_arr(g, "arr.i32", WEFT_GGUF_INT32, &v), 0);
	CHECK_EQ_INT(v->v.arr.n, 3);
	CHECK_EQ_INT(weft_gguf_arr_i64(v, 0), -1);
	CHECK_EQ_INT(weft_gguf_arr_i64(v, 2), 7);
	CHECK_EQ_INT(weft_gguf_arr_i64(v, 3), 0); /* out of range */
	CHECK_EQ_INT(weft_gguf_get_arr(g, "arr.f32", WEFT_GGUF_FLOAT32, &v), 0);
	CHECK(weft_gguf_arr_f64(v, 0) == 0.5 && weft_gguf_arr_f64(v, 1) == -2);
	CHECK_EQ_INT(weft_gguf_get_arr(g, "arr.u8", WEFT_GGUF_NTYPES, &v), 0);
	CHECK_EQ_INT(weft_gguf_arr_i64(v, 1), 255);
	CHECK_EQ_INT(weft_gguf_get_arr(g, "arr.bool", WEFT_GGUF_BOOL, &v), 0);
	CHECK(weft_gguf_arr_i64(v, 0) == 1 && weft_gguf_arr_i64(v, 1) == 0);
	CHECK_EQ_INT(weft_gguf_get_arr(g, "arr.u64", WEFT_GGUF_UINT64, &v), 0);
	CHECK_EQ_INT(weft_gguf_arr_i64(v, 0), 1ll << 40);
	CHECK_EQ_INT(weft_gguf_get_arr(g, "arr.f64", WEFT_GGUF_FLOAT64, &v), 0);
	CHECK(weft_gguf_arr_f64(v, 0) == 3.25);
	CHECK_EQ_INT(weft_gguf_get_arr(g, "arr.empty", WEFT_GGUF_INT16, &v), 0);
	CHECK_EQ_INT(v->v.arr.n, 0);
	CHECK_EQ_INT(weft_gguf_get_arr(g, "arr.str", WEFT_GGUF_STRING, &v), 0);
	CHECK_EQ_INT(v->v.arr.n, 4);
	for (int i = 0; i < 4; i++)
		CHECK(weft_gguf_str_eq(v->v.arr.strs[i], WORDS[i]));

	CHECK_EQ_INT(weft_gguf_get_arr(g, "nest.i16", WEFT_GGUF_ARRAY, &v), 0);
	CHECK_EQ_INT(v->v.arr.n, 2);
	const weft_gguf_value *a0 = &v->v.arr.vals[0], *a1 = &v->v.arr.vals[1];
	CHECK(a0->type == WEFT_GGUF_ARRAY && a0->v.arr.type == WEFT_GGUF_INT16 && a0->v.arr.n == 2);
	CHECK(weft_gguf_arr_i64(a0, 0) == 1 && weft_gguf_arr_i64(a0, 1) == -2);
	CHECK(a1->v.arr.n == 1 && weft_gguf_arr_i64(a1, 0) == 3);
	CHECK_EQ_INT(weft_gguf_get_arr(g, "nest.str", WEFT_GGUF_ARRAY, &v), 0);
	const weft_gguf_value *inner = &v->v.arr.vals[0].v.arr.vals[0];
	CHECK(inner->v.arr.type == WEFT_GGUF_STRING && inner->v.arr.n == 2);
	CHECK(weft_gguf_str_eq(inner->v.arr.strs[0], "x") && weft_gguf_str_eq(inner->v.arr.strs[1], "yz"));

	const weft_gguf_tensor *t = weft_gguf_find_tensor(g, "w");
	CHECK(t != NULL);
	if (t) {
		CHECK(t->n_dims == 2 && t->ne[0] == 4 && t->ne[1] == 2 && t->ne[2] == 1 && t->ne[3] == 1);
		CHECK(t->type == WEFT_TYPE_F32 && t->offset == 0 && t->nbytes == 32);
		float x[8];
		CHECK_EQ_INT(weft_dequantize_row(t->type, t->data, x, 8), 0);
		CHECK(x[0] == 1 && x[7] == 8);
	}
	t = weft_gguf_find_tensor(g, "blk.0.attn_q.weight");
	CHECK(t && t->type == WEFT_TYPE_Q8_0 && t->offset == 32 && t->nbytes == 34);
	CHECK(weft_gguf_find_tensor(g, "blk.0.attn_q") == NULL);
	CHECK(weft_gguf_find_tensor(g, "") == NULL);
}

static void roundtrip_v3(void)
{
	gguf_builder b;
	uint8_t *f;
	size_t n;
	build_everything(&b, 3);
	weft_gguf *g = open_built(&b, &f, &n);
	CHECK(g != NULL);
	if (g) {
		check_everything(g, 3);
		CHECK_EQ_INT(g->header_size, b.infos_at + b.infos.n);
		CHECK_EQ_INT(g->data_offset, b.data_at);
		CHECK_EQ_INT(g->data_offset % 32, 0);
	}
	weft_gguf_close(g);
	free(f);
	gb_free(&b);
}

static void roundtrip_v2(void)
{
	gguf_builder b;
	uint8_t *f;
	size_t n;
	build_everything(&b, 2);
	weft_gguf *g = open_built(&b, &f, &n);
	CHECK(g != NULL);
	if (g)
		check_everything(g, 2);
	weft_gguf_close(g);
	free(f);
	gb_free(&b);
}

static void getters(void)
{
	gguf_builder b;
	uint8_t *f;
	size_t n;
	build_everything(&b, 3);
	weft_gguf *g = open_built(&b, &f, &n);
	CHECK(g != NULL);
	if (!g)
		return;
	uint32_t u = 77;
	int64_t i = 0;
	float x = 0;
	int bo = 5;
	weft_gguf_str s = {0};
	const weft_gguf_value *v = NULL;
	CHECK_EQ_INT(weft_gguf_get_u32(g, "absent", &u), 1);
	CHECK_EQ_INT(u, 77);
	CHECK_EQ_INT(weft_gguf_get_u32(g, "u8", &u), 0);
	CHECK_EQ_INT(u, 200);
	CHECK_EQ_INT(weft_gguf_get_u32(g, "u32", &u), 0);
	CHECK_EQ_INT(u, 4000000000u);
	CHECK_EQ_INT(weft_gguf_get_u32(g, "i8", &u), -1);
	CHECK_STR(weft_errmsg(), "metadata 'i8' value -100 out of range for uint32");
	CHECK_EQ_INT(weft_gguf_get_u32(g, "u64", &u), -1);
	CHECK_STR(weft_errmsg(), "metadata 'u64' value 18446744073709551615 out of range for uint32");
	CHECK_EQ_INT(weft_gguf_get_u32(g, "str", &u), -1);
	CHECK_STR(weft_errmsg(), "metadata 'str' is string, expected an integer");
	CHECK_EQ_INT(weft_gguf_get_u32(g, "f32", &u), -1);
	CHECK_STR(weft_errmsg(), "metadata 'f32' is float32, expected an integer");
	CHECK_EQ_INT(weft_gguf_get_i64(g, "i64", &i), 0);
	CHECK(i == INT64_MIN);
	CHECK_EQ_INT(weft_gguf_get_i64(g, "u32", &i), 0);
	CHECK_EQ_INT(i, 4000000000u);
	CHECK_EQ_INT(weft_gguf_get_i64(g, "u64", &i), -1);
	CHECK_STR(weft_errmsg(), "metadata 'u64' value 18446744073709551615 out of range for int64");
	CHECK_EQ_INT(weft_gguf_get_f32(g, "f32", &x), 0);
	CHECK(x == 1.5f);
	CHECK_EQ_INT(weft_gguf_get_f32(g, "f64", &x), 0);
	CHECK(x == -0.125f);
	CHECK_EQ_INT(weft_gguf_get_f32(g, "i16", &x), 0);
	CHECK(x == -32768.0f);
	CHECK_EQ_INT(weft_gguf_get_f32(g, "bool", &x), -1);
	CHECK_STR(weft_errmsg(), "metadata 'bool' is bool, expected a number");
	CHECK_EQ_INT(weft_gguf_get_bool(g, "bool", &bo), 0);
	CHECK_EQ_INT(bo, 1);
	CHECK_EQ_INT(weft_gguf_get_bool(g, "u8", &bo), -1);
	CHECK_STR(weft_errmsg(), "metadata 'u8' is uint8, expected bool");
	CHECK_EQ_INT(weft_gguf_get_str(g, "str", &s), 0);
	CHECK(s.len == 5 && memcmp(s.ptr, "hello", 5) == 0);
	CHECK_EQ_INT(weft_gguf_get_str(g, "arr.str", &s), -1);
	CHECK_STR(weft_errmsg(), "metadata 'arr.str' is array, expected string");
	CHECK_EQ_INT(weft_gguf_get_arr(g, "arr.str", WEFT_GGUF_INT32, &v), -1);
	CHECK_STR(weft_errmsg(), "metadata 'arr.str' is array of string, expected array of int32");
	CHECK_EQ_INT(weft_gguf_get_arr(g, "str", WEFT_GGUF_NTYPES, &v), -1);
	CHECK_STR(weft_errmsg(), "metadata 'str' is string, expected array");
	CHECK_EQ_INT(weft_gguf_get_arr(g, "nope", WEFT_GGUF_NTYPES, &v), 1);
	CHECK_STR(weft_gguf_type_name(WEFT_GGUF_FLOAT64), "float64");
	CHECK_STR(weft_gguf_type_name(99), "unknown");
	weft_gguf_close(g);
	free(f);
	gb_free(&b);
}

static void alignment(void)
{
	static const uint32_t aligns[] = {1, 8, 64, 4096};
	for (size_t k = 0; k < sizeof aligns / sizeof *aligns; k++) {
		gguf_builder b;
		uint8_t *f;
		size_t n;
		gb_init(&b, 3);
		gb_kv_str(&b, "general.architecture", "test");
		gb_align(&b, aligns[k]);
		gb_tensor(&b, "a", WEFT_TYPE_F16, 1, (int64_t[]){3}, (uint16_t[]){0x3c00, 0x4000, 0xc000}, 6);
		gb_tensor(&b, "b", WEFT_TYPE_I8, 1, (int64_t[]){1}, (int8_t[]){-5}, 1);
		weft_gguf *g = open_built(&b, &f, &n);
		CHECK(g != NULL);
		if (g) {
			CHECK_EQ_INT(g->alignment, aligns[k]);
			CHECK_EQ_INT(g->data_offset % aligns[k], 0);
			CHECK_EQ_INT(g->data_offset, b.data_at);
			const weft_gguf_tensor *t = weft_gguf_find_tensor(g, "b");
			CHECK(t && t->offset % aligns[k] == 0 && t->offset >= 6);
			float x[3];
			t = weft_gguf_find_tensor(g, "a");
			CHECK(t && weft_dequantize_row(t->type, t->data, x, 3) == 0);
			CHECK(x[0] == 1 && x[1] == 2 && x[2] == -2);
		}
		weft_gguf_close(g);
		free(f);
		gb_free(&b);
	}
}

/* Tensors listed out of offset order, gaps between them, zero-size ones. */
static void tensor_layout(void)
{
	gguf_builder b;
	uint8_t *f;
	size_t n;
	gb_init(&b, 3);
	gb_tensor_info(&b, "late", WEFT_TYPE_F32, 1, (int64_t[]){8}, 64);
	gb_tensor_info(&b, "early", WEFT_TYPE_F32, 1, (int64_t[]){8}, 0);
	gb_tensor_info(&b, "empty", WEFT_TYPE_Q4_K, 2, (int64_t[]){256, 0}, 32);
	gb_tensor_info(&b, "scalar", WEFT_TYPE_F32, 0, NULL, 128);
	for (int i = 0; i < 132; i++)
		gb_b_u8(&b.data, (uint8_t)i);
	weft_gguf *g = open_built(&b, &f, &n);
	CHECK(g != NULL);
	if (g) {
		const weft_gguf_tensor *t = weft_gguf_find_tensor(g, "late");
		CHECK(t && t->nbytes == 32 && ((const uint8_t *)t->data)[0] == 64);
		t = weft_gguf_find_tensor(g, "empty");
		CHECK(t && t->nbytes == 0 && t->ne[1] == 0);
		t = weft_gguf_find_tensor(g, "scalar");
		CHECK(t && t->n_dims == 1 && t->ne[0] == 1 && t->nbytes == 4);
		CHECK_EQ_INT(g->tensors[1].offset, 0);
	}
	weft_gguf_close(g);
	free(f);
	gb_free(&b);
}

/* Many tensors and keys: the hash tables find each one. */
static void lookup_many(void)
{
	gguf_builder b;
	uint8_t *f;
	size_t n;
	char name[64];
	gb_init(&b, 3);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "key.%d", i);
		gb_kv_i32(&b, name, i);
	}
	for (int i = 0; i < 250; i++) {
		snprintf(name, sizeof name, "blk.%d.ffn_up.weight", i);
		gb_tensor(&b, name, WEFT_TYPE_I32, 1, (int64_t[]){1}, (int32_t[]){i}, 4);
	}
	weft_gguf *g = open_built(&b, &f, &n);
	CHECK(g != NULL);
	if (g) {
		for (int i = 0; i < 200; i++) {
			int64_t v = -1;
			snprintf(name, sizeof name, "key.%d", i);
			CHECK(weft_gguf_get_i64(g, name, &v) == 0 && v == i);
		}
		for (int i = 0; i < 250; i++) {
			snprintf(name, sizeof name, "blk.%d.ffn_up.weight", i);
			const weft_gguf_tensor *t = weft_gguf_find_tensor(g, name);
			float x = -1;
			CHECK(t && t == &g->tensors[i]);
			CHECK(t && weft_dequantize_row(t->type, t->data, &x, 1) == 0 && x == (float)i);
		}
		CHECK(weft_gguf_find_tensor(g, "blk.250.ffn_up.weight") == NULL);
	}
	weft_gguf_close(g);
	free(f);
	gb_free(&b);
}

/* weft_gguf_open maps the file: pointers lie inside the mapping. */
static void zero_copy_mmap(void)
{
	gguf_builder b;
	uint8_t *f;
	size_t n;
	char path[] = "/tmp/weft-test-gguf-XXXXXX";
	build_everything(&b, 3);
	f = gb_finish(&b, &n);
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, f, n) == (ssize_t)n);
	close(fd);
	weft_gguf *g = weft_gguf_open(path);
	unlink(path);
	CHECK(g != NULL);
	if (g) {
		check_everything(g, 3);
		CHECK(g->base != f && g->size == n);
		for (uint64_t i = 0; i < g->n_tensors; i++) {
			const uint8_t *d = g->tensors[i].data;
			CHECK(d >= g->base + g->data_offset && d + g->tensors[i].nbytes <= g->base + g->size);
		}
		const weft_gguf_value *v = weft_gguf_get(g, "str");
		CHECK(v && (const uint8_t *)v->v.str.ptr > g->base &&
		      (const uint8_t *)v->v.str.ptr < g->base + g->size);
		CHECK(memcmp(g->base, f, n) == 0);
	}
	weft_gguf_close(g);
	/* open_mem does not copy either */
	g = weft_gguf_open_mem(f, n);
	CHECK(g && g->base == f && (const uint8_t *)g->tensors[0].data == f + b.data_at);
	weft_gguf_close(g);
	free(f);
	gb_free(&b);

	CHECK(weft_gguf_open("/nonexistent/weft.gguf") == NULL);
	CHECK_STR(weft_errmsg(), "No such file or directory");
	CHECK(weft_gguf_open("/tmp") == NULL);
	CHECK_STR(weft_errmsg(), "not a regular file");
	CHECK(weft_gguf_open("/dev/null") == NULL);
	CHECK_STR(weft_errmsg(), "not a regular file");
}

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

/* ---- real files ---- */

static void vocab_files(void)
{
	static const struct {
		const char *file, *model;
		uint64_t n_tokens, n_merges;
		const char *tok1, *last;
	} v[] = {
		/* values read with gguf-py 0.19 (GGUFReader) */
		{"ggml-vocab-gpt-2.gguf", "gpt2", 50257, 50000, "\"", "<|endoftext|>"},
		{"ggml-vocab-llama-spm.gguf", "llama", 32000, 0, "<s>", "\xe7\xbb\x99"},
		{"ggml-vocab-phi-3.gguf", "llama", 32064, 0, "<s>", "[PAD32063]"},
		{"ggml-vocab-starcoder.gguf", "gpt2", 49152, 48872, "<fim_prefix>", "sdb"},
	};
	const char *dir = t_shared_dir();
	if (!dir)
		SKIP("../shared absent");
	for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
		char path[4200];
		snprintf(path, sizeof path, "%s/vocab/%s", dir, v[k].file);
		weft_gguf *g = weft_gguf_open(path);
		if (!g) {
			FAILF("%s: %s", v[k].file, weft_errmsg());
			continue;
		}
		weft_gguf_str s;
		const weft_gguf_value *toks, *tt, *merges;
		CHECK(g->version == 3 && g->n_tensors == 0);
		CHECK(weft_gguf_get_str(g, "tokenizer.ggml.model", &s) == 0 && weft_gguf_str_eq(s, v[k].model));
		CHECK(weft_gguf_get_arr(g, "tokenizer.ggml.tokens", WEFT_GGUF_STRING, &toks) == 0);
		CHECK(weft_gguf_get_arr(g, "tokenizer.ggml.token_type", WEFT_GGUF_INT32, &tt) == 0);
		if (toks && tt) {
			CHECK_EQ_INT(toks->v.arr.n, v[k].n_tokens);
			CHECK_EQ_INT(tt->v.arr.n, toks->v.arr.n);
			CHECK(weft_gguf_str_eq(toks->v.arr.strs[1], v[k].tok1));
			CHECK(weft_gguf_str_eq(toks->v.arr.strs[v[k].n_tokens - 1], v[k].last));
		}
		int r = weft_gguf_get_arr(g, "tokenizer.ggml.merges", WEFT_GGUF_STRING, &merges);
		CHECK_EQ_INT(r, v[k].n_merges ? 0 : 1);
		if (!r)
			CHECK_EQ_INT(merges->v.arr.n, v[k].n_merges);
		weft_gguf_close(g);
	}
	/* a few more facts, and the same file through open_mem */
	char path[4200];
	size_t len;
	snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", dir);
	char *buf = t_read_file(path, &len);
	weft_gguf *g = buf ? weft_gguf_open_mem(buf, len) : NULL;
	CHECK(g != NULL);
	if (g) {
		const weft_gguf_value *sc, *tt;
		int add_bos = 0;
		uint32_t u = 0;
		CHECK(weft_gguf_get_arr(g, "tokenizer.ggml.scores", WEFT_GGUF_FLOAT32, &sc) == 0);
		CHECK(weft_gguf_arr_f64(sc, 1000) == -741.0);
		CHECK(weft_gguf_get_arr(g, "tokenizer.ggml.token_type", WEFT_GGUF_INT32, &tt) == 0);
		CHECK(weft_gguf_arr_i64(tt, 0) == 2 && weft_gguf_arr_i64(tt, 1) == 3 && weft_gguf_arr_i64(tt, 3) == 6);
		CHECK(weft_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos) == 0 && add_bos == 1);
		CHECK(weft_gguf_get_u32(g, "llama.vocab_size", &u) == 0 && u == 32000);
		CHECK(weft_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) == 0 && u == 2);
		CHECK_EQ_INT(g->n_kv, 22);
		CHECK_EQ_INT(g->data_offset, g->header_size); /* no tensors: no padding */
		CHECK_EQ_INT(g->data_offset, 723869);
	}
	weft_gguf_close(g);
	free(buf);
}

/* Facts checked with gguf-py 0.19's GGUFReader. */
static void smollm2(void)
{
	const char *path = t_smollm2_path();
	if (!path)
		SKIP("SmolLM2 GGUF absent (scripts/fetch-models)");
	weft_gguf *g = weft_gguf_open(path);
	if (!g) {
		FAILF("%s", weft_errmsg());
		return;
	}
	uint32_t u = 0;
	float f = 0;
	weft_gguf_str s;
	const weft_gguf_value *a;
	CHECK_EQ_INT(g->version, 3);
	CHECK_EQ_INT(g->n_tensors, 272);
	CHECK_EQ_INT(g->n_kv, 33);
	CHECK_EQ_INT(g->alignment, 32);
	CHECK_EQ_INT(g->data_offset, 1785664);
	CHECK(weft_gguf_get_str(g, "general.architecture", &s) == 0 && weft_gguf_str_eq(s, "llama"));
	CHECK(weft_gguf_get_u32(g, "llama.block_count", &u) == 0 && u == 30);
	CHECK(weft_gguf_get_u32(g, "llama.embedding_length", &u) == 0 && u == 576);
	CHECK(weft_gguf_get_u32(g, "llama.feed_forward_length", &u) == 0 && u == 1536);
	CHECK(weft_gguf_get_u32(g, "llama.attention.head_count", &u) == 0 && u == 9);
	CHECK(weft_gguf_get_u32(g, "llama.attention.head_count_kv", &u) == 0 && u == 3);
	CHECK(weft_gguf_get_f32(g, "llama.rope.freq_base", &f) == 0 && f == 100000.0f);
	CHECK(weft_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f) == 0 && f == 1e-5f);
	CHECK(weft_gguf_get_str(g, "tokenizer.ggml.pre", &s) == 0 && weft_gguf_str_eq(s, "smollm"));
	CHECK(weft_gguf_get_arr(g, "tokenizer.ggml.tokens", WEFT_GGUF_STRING, &a) == 0 && a->v.arr.n == 49152);
	CHECK(weft_gguf_str_eq(a->v.arr.strs[1], "<|im_start|>"));
	CHECK(weft_gguf_get_arr(g, "tokenizer.ggml.merges", WEFT_GGUF_STRING, &a) == 0 && a->v.arr.n == 48900);
	CHECK(weft_gguf_str_eq(a->v.arr.strs[0], "\xc4\xa0 t"));
	CHECK(weft_gguf_get_str(g, "tokenizer.chat_template", &s) == 0 && s.len == 368);
	int counts[WEFT_TYPE_COUNT] = {0};
	for (uint64_t i = 0; i < g->n_tensors; i++)
		counts[g->tensors[i].type]++;
	CHECK_EQ_INT(counts[WEFT_TYPE_Q4_1], 210);
	CHECK_EQ_INT(counts[WEFT_TYPE_F32], 61);
	CHECK_EQ_INT(counts[WEFT_TYPE_Q8_0], 1);
	const weft_gguf_tensor *t = weft_gguf_find_tensor(g, "token_embd.weight");
	CHECK(t && t->type == WEFT_TYPE_Q8_0 && t->ne[0] == 576 && t->ne[1] == 49152);
	CHECK(t && t->offset == 0 && t->nbytes == 30081024);
	t = weft_gguf_find_tensor(g, "blk.0.ffn_down.weight");
	CHECK(t && t->type == WEFT_TYPE_Q4_1 && t->ne[0] == 1536 && t->ne[1] == 576);
	CHECK(t && t->nbytes == 552960 && g->data_offset + t->offset == 31868992);
	CHECK(weft_gguf_find_tensor(g, "output.weight") == NULL); /* tied embeddings */
	CHECK(weft_gguf_find_tensor(g, "blk.29.ffn_up.weight") != NULL);
	weft_gguf_close(g);
}

int main(void)
{
	t_suite = "gguf";
	RUN(roundtrip_v3);
	RUN(roundtrip_v2);
	RUN(getters);
	RUN(alignment);
	RUN(tensor_layout);
	RUN(lookup_many);
	RUN(zero_copy_mmap);
	RUN(truncated_everywhere);
	RUN(bad_header);
	RUN(bad_metadata);
	RUN(bad_alignment);
	RUN(bad_tensors);
	RUN(vocab_files);
	RUN(smollm2);
	TEST_MAIN_END();
}

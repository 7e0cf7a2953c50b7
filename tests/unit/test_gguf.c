/* test_gguf.c - GGUF reader: round trips, lookups, zero copy and the real
 * vocab / SmolLM2 files (hostile files: test_gguf_bad.c). */
#include "ggml_types.h"
#include "gguf.h"
#include "util.h"

#include "gguf_build.h"
#include "gguf_util.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

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
	RUN(vocab_files);
	RUN(smollm2);
	TEST_MAIN_END();
}

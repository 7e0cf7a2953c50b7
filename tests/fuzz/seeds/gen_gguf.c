/* gen_gguf.c - write the seed corpus for fuzz_gguf (tests/fuzz/seeds/gguf).
 *   cc -std=c11 -D_DEFAULT_SOURCE -Ilib -Itests/unit -o /tmp/gen_gguf \
 *      tests/fuzz/seeds/gen_gguf.c lib/gguf.c lib/ggml_types.c lib/util.c -lm
 *   /tmp/gen_gguf tests/fuzz/seeds/gguf
 * Each seed is a small valid GGUF file (< 4 KB). */
#include "ggml_types.h"
#include "gguf.h"
#include "util.h"

#include "gguf_build.h"

#include <stdio.h>

static int save(const char *dir, const char *name, gguf_builder *b)
{
	char path[4096];
	size_t n;
	uint8_t *f = gb_finish(b, &n);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	int ok = fp && fwrite(f, 1, n, fp) == n;
	if (fp && fclose(fp))
		ok = 0;
	weft_gguf *g = weft_gguf_open_mem(f, n);
	if (!ok)
		fprintf(stderr, "gen_gguf: cannot write %s\n", path);
	if (!g) {
		fprintf(stderr, "gen_gguf: %s does not open: %s\n", name, weft_errmsg());
		ok = 0;
	}
	weft_gguf_close(g);
	printf("%s: %zu bytes\n", path, n);
	free(f);
	gb_free(b);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	int rc = 0;
	gguf_builder b;

	gb_init(&b, 3); /* header only */
	rc |= save(dir, "empty.gguf", &b);

	gb_init(&b, 3); /* every metadata type */
	gb_kv_str(&b, "general.architecture", "llama");
	gb_kv_u8(&b, "u8", 7);
	gb_kv_i8(&b, "i8", -7);
	gb_kv_u16(&b, "u16", 700);
	gb_kv_i16(&b, "i16", -700);
	gb_kv_u32(&b, "llama.block_count", 2);
	gb_kv_i32(&b, "i32", -70000);
	gb_kv_f32(&b, "llama.rope.freq_base", 10000.0f);
	gb_kv_bool(&b, "tokenizer.ggml.add_bos_token", 1);
	gb_kv_u64(&b, "u64", 1ull << 40);
	gb_kv_i64(&b, "i64", -(1ll << 40));
	gb_kv_f64(&b, "f64", 0.1);
	static const char *const toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "a", "b", "ab"};
	gb_kv_arr_str(&b, "tokenizer.ggml.tokens", 7, toks);
	gb_kv_arr(&b, "tokenizer.ggml.scores", WEFT_GGUF_FLOAT32, 3, (float[]){0, -1.5f, -2});
	gb_kv_arr(&b, "tokenizer.ggml.token_type", WEFT_GGUF_INT32, 3, (int32_t[]){2, 3, 1});
	gb_kv_arr(&b, "bools", WEFT_GGUF_BOOL, 2, (uint8_t[]){0, 1});
	gb_kv_arr(&b, "u64s", WEFT_GGUF_UINT64, 2, (uint64_t[]){1, 2});
	gb_begin_kv(&b, "nested", WEFT_GGUF_ARRAY);
	gb_arr_hdr(&b, WEFT_GGUF_ARRAY, 2);
	gb_arr_hdr(&b, WEFT_GGUF_INT16, 2);
	gb_raw(&b, (int16_t[]){1, -2}, 4);
	gb_arr_hdr(&b, WEFT_GGUF_STRING, 1);
	gb_str(&b, "x");
	rc |= save(dir, "metadata.gguf", &b);

	gb_init(&b, 3); /* arrays nested 8 deep (the limit) */
	gb_begin_kv(&b, "deep", WEFT_GGUF_ARRAY);
	for (int d = 1; d < 8; d++)
		gb_arr_hdr(&b, WEFT_GGUF_ARRAY, 1);
	gb_arr_hdr(&b, WEFT_GGUF_UINT8, 1);
	gb_u8(&b, 1);
	rc |= save(dir, "deep.gguf", &b);

	/* one block of every dequantizable type; quantizable ones hold real data */
	static const uint32_t types[] = {
		WEFT_TYPE_F32, WEFT_TYPE_F16, WEFT_TYPE_BF16, WEFT_TYPE_Q4_0, WEFT_TYPE_Q4_1,
		WEFT_TYPE_Q5_0, WEFT_TYPE_Q5_1, WEFT_TYPE_Q8_0, WEFT_TYPE_Q8_1, WEFT_TYPE_I8,
		WEFT_TYPE_I16, WEFT_TYPE_I32, WEFT_TYPE_I64, WEFT_TYPE_F64};
	static const uint32_t ktypes[] = {WEFT_TYPE_Q2_K, WEFT_TYPE_Q3_K, WEFT_TYPE_Q4_K,
					  WEFT_TYPE_Q5_K, WEFT_TYPE_Q6_K, WEFT_TYPE_Q8_K};
	float x[32];
	uint8_t q[300];
	for (int j = 0; j < 32; j++)
		x[j] = (float)(j - 12) / 7;
	gb_init(&b, 3);
	gb_kv_str(&b, "general.architecture", "test");
	gb_align(&b, 16);
	for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
		const weft_type_info *t = weft_type_get(types[k]);
		int64_t ne[2] = {32 % t->block ? t->block : 32, 1};
		memset(q, 0x5a, sizeof q);
		weft_quantize_row(types[k], x, q, ne[0]); /* fails (keeps 0x5a) for ints */
		gb_tensor(&b, t->name, types[k], 2, ne, q, weft_type_row_bytes(types[k], (uint64_t)ne[0]));
	}
	rc |= save(dir, "types.gguf", &b);

	gb_init(&b, 3);
	gb_align(&b, 8);
	for (size_t k = 0; k < sizeof ktypes / sizeof *ktypes; k++) {
		const weft_type_info *t = weft_type_get(ktypes[k]);
		for (size_t i = 0; i < sizeof q; i++)
			q[i] = (uint8_t)(i * 37 + k);
		q[0] = 0x00, q[1] = 0x3c; /* a sane fp16 where most K blocks keep d */
		gb_tensor(&b, t->name, ktypes[k], 1, (int64_t[]){256}, q, t->bytes);
	}
	rc |= save(dir, "ktypes.gguf", &b);

	gb_init(&b, 2); /* version 2, a small model-like layout */
	gb_kv_str(&b, "general.architecture", "llama");
	gb_kv_u32(&b, "llama.embedding_length", 32);
	gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
	static const char *const merges[] = {"a b", "\xc4\xa0 t"};
	gb_kv_arr_str(&b, "tokenizer.ggml.merges", 2, merges);
	gb_tensor(&b, "token_embd.weight", WEFT_TYPE_Q8_0, 2, (int64_t[]){32, 2}, NULL, 68);
	gb_tensor(&b, "output_norm.weight", WEFT_TYPE_F32, 1, (int64_t[]){32}, x, sizeof x);
	gb_tensor(&b, "blk.0.attn_q.weight", WEFT_TYPE_Q4_1, 2, (int64_t[]){32, 1}, NULL, 20);
	gb_tensor(&b, "empty", WEFT_TYPE_F16, 2, (int64_t[]){0, 4}, NULL, 0);
	rc |= save(dir, "model_v2.gguf", &b);
	return rc;
}

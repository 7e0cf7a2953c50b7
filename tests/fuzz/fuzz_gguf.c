/* fuzz_gguf.c - libFuzzer harness for the GGUF reader.
 *
 * Parses the input with weft_gguf_open_mem, then walks everything a file
 * that opened promises is safe: every kv (nested arrays, strings, scalar
 * elements), every tensor's first and last data byte, and the first block
 * of each tensor through weft_dequantize_row.  Failing inputs must leave a
 * one-line error message.  Seeds: tests/fuzz/seeds/gguf (see its README). */
#include "ggml_types.h"
#include "gguf.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void walk_value(const weft_gguf_value *v, int depth)
{
	if (depth > 64)
		abort(); /* the reader's depth limit failed */
	switch (v->type) {
	case WEFT_GGUF_STRING:
		if (v->v.str.len)
			sink += (uint8_t)v->v.str.ptr[0] + (uint8_t)v->v.str.ptr[v->v.str.len - 1];
		break;
	case WEFT_GGUF_ARRAY:
		for (uint64_t i = 0; i < v->v.arr.n; i++) {
			if (v->v.arr.type == WEFT_GGUF_STRING) {
				weft_gguf_str s = v->v.arr.strs[i];
				if (s.len)
					sink += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
			} else if (v->v.arr.type == WEFT_GGUF_ARRAY) {
				walk_value(&v->v.arr.vals[i], depth + 1);
			} else {
				sink += (uint64_t)weft_gguf_arr_i64(v, i);
				double d = weft_gguf_arr_f64(v, i);
				sink += d == d;
			}
		}
		break;
	default:
		sink += v->v.u64;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* copy into an exact-size buffer so ASan catches any overread */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	weft_gguf *g = weft_gguf_open_mem(buf, size);
	if (!g) {
		const char *m = weft_errmsg();
		if (!m[0] || strchr(m, '\n'))
			abort(); /* every failure has a one-line message */
		free(buf);
		return 0;
	}
	for (uint64_t i = 0; i < g->n_kv; i++) {
		const weft_gguf_kv *kv = &g->kv[i];
		if (kv->key.len == 0)
			abort();
		sink += (uint8_t)kv->key.ptr[kv->key.len - 1];
		walk_value(&kv->val, 0);
		char key[80];
		if (kv->key.len < sizeof key && !memchr(kv->key.ptr, 0, kv->key.len)) {
			memcpy(key, kv->key.ptr, kv->key.len);
			key[kv->key.len] = 0;
			if (weft_gguf_get(g, key) != &kv->val)
				abort(); /* lookup must find the (unique) key */
			uint32_t u;
			int64_t i64;
			float f;
			int b;
			weft_gguf_str s;
			const weft_gguf_value *a;
			sink += (uint64_t)weft_gguf_get_u32(g, key, &u) + (uint64_t)weft_gguf_get_i64(g, key, &i64);
			sink += (uint64_t)weft_gguf_get_f32(g, key, &f) + (uint64_t)weft_gguf_get_bool(g, key, &b);
			sink += (uint64_t)weft_gguf_get_str(g, key, &s);
			sink += (uint64_t)weft_gguf_get_arr(g, key, WEFT_GGUF_NTYPES, &a);
		}
	}
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const weft_gguf_tensor *t = &g->tensors[i];
		const uint8_t *d = t->data;
		if (t->nbytes) {
			sink += d[0] + d[t->nbytes - 1];
			const weft_type_info *ti = weft_type_get(t->type);
			float out[256];
			if (ti && ti->can_dequant && ti->block <= 256 && t->nbytes >= ti->bytes)
				sink += (uint64_t)weft_dequantize_row(t->type, d, out, ti->block);
		}
		char name[64];
		if (t->name.len < sizeof name && !memchr(t->name.ptr, 0, t->name.len)) {
			memcpy(name, t->name.ptr, t->name.len);
			name[t->name.len] = 0;
			if (weft_gguf_find_tensor(g, name) != t)
				abort();
		}
	}
	weft_gguf_close(g);
	free(buf);
	return 0;
}

/* gguf_build.h - build GGUF files in memory for tests (header-only).
 *
 *   gguf_builder b;
 *   gb_init(&b, 3);                       // version
 *   gb_kv_u32(&b, "llama.block_count", 2);
 *   gb_kv_arr(&b, "xs", WEFT_GGUF_INT32, 3, (int32_t[]){1, 2, 3});
 *   gb_tensor(&b, "w", WEFT_TYPE_F32, 2, (int64_t[]){4, 2}, floats, 32);
 *   size_t n; uint8_t *file = gb_finish(&b, &n);   // malloc'ed
 *   ... corrupt with gb_put_u32/u64 at the offsets recorded in b ...
 *   free(file); gb_free(&b);
 *
 * Lower-level writers (gb_begin_kv, gb_arr_hdr, gb_u32, gb_str, ...) build
 * any value, nested arrays included, or deliberately broken bytes.  Offsets
 * recorded in the builder (kv_at[], t[].at_*) are relative to their
 * section; after gb_finish, kvs_at / infos_at / data_at give the sections'
 * file offsets, so a field's file offset is e.g. infos_at + t[i].at_type. */
#ifndef WEFT_GGUF_BUILD_H
#define WEFT_GGUF_BUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_types.h"
#include "gguf.h"

#define GB_MAX 256

typedef struct gb_bytes {
	uint8_t *p;
	size_t n, cap;
} gb_bytes;

typedef struct gb_tensor_at {
	size_t at_name, at_ndims, at_ne, at_type, at_offset; /* within infos */
} gb_tensor_at;

typedef struct gguf_builder {
	uint32_t version;
	uint32_t align;           /* padding used for the data section and tensors */
	uint64_t n_kv, n_tensors; /* written to the header (may be overridden) */
	gb_bytes kvs, infos, data;
	size_t kv_at[GB_MAX];     /* start of kv i within kvs */
	gb_tensor_at t[GB_MAX];
	size_t kvs_at, infos_at, data_at; /* set by gb_finish */
	int pad_data;             /* pad before the data section when there are
				     tensors (default 1) */
} gguf_builder;

static inline void gb_grow(gb_bytes *b, size_t n)
{
	if (b->n + n > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->n + n)
			c *= 2;
		b->p = realloc(b->p, c);
		b->cap = c;
	}
}

static inline void gb_append(gb_bytes *b, const void *p, size_t n)
{
	gb_grow(b, n);
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

static inline void gb_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void gb_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void gb_b_u8(gb_bytes *b, uint8_t v) { gb_append(b, &v, 1); }
static inline void gb_b_u32(gb_bytes *b, uint32_t v)
{
	uint8_t x[4];
	gb_put_u32(x, v);
	gb_append(b, x, 4);
}
static inline void gb_b_u64(gb_bytes *b, uint64_t v)
{
	uint8_t x[8];
	gb_put_u64(x, v);
	gb_append(b, x, 8);
}
static inline void gb_b_strn(gb_bytes *b, const char *s, size_t n)
{
	gb_b_u64(b, n);
	gb_append(b, s, n);
}
static inline void gb_b_str(gb_bytes *b, const char *s) { gb_b_strn(b, s, strlen(s)); }

static inline void gb_init(gguf_builder *b, uint32_t version)
{
	memset(b, 0, sizeof *b);
	b->version = version;
	b->align = 32;
	b->pad_data = 1;
}

static inline void gb_free(gguf_builder *b)
{
	free(b->kvs.p);
	free(b->infos.p);
	free(b->data.p);
	memset(b, 0, sizeof *b);
}

/* ---- metadata: low level (append to the kv section) ---- */
static inline void gb_u8(gguf_builder *b, uint8_t v) { gb_b_u8(&b->kvs, v); }
static inline void gb_u32(gguf_builder *b, uint32_t v) { gb_b_u32(&b->kvs, v); }
static inline void gb_u64(gguf_builder *b, uint64_t v) { gb_b_u64(&b->kvs, v); }
static inline void gb_raw(gguf_builder *b, const void *p, size_t n) { gb_append(&b->kvs, p, n); }
static inline void gb_str(gguf_builder *b, const char *s) { gb_b_str(&b->kvs, s); }
static inline void gb_strn(gguf_builder *b, const char *s, size_t n) { gb_b_strn(&b->kvs, s, n); }

/* Start a kv pair: key and value type; the value follows. */
static inline void gb_begin_kv(gguf_builder *b, const char *key, uint32_t type)
{
	if (b->n_kv < GB_MAX)
		b->kv_at[b->n_kv] = b->kvs.n;
	b->n_kv++;
	gb_str(b, key);
	gb_u32(b, type);
}

/* Array header: element type and count; the elements follow. */
static inline void gb_arr_hdr(gguf_builder *b, uint32_t elem_type, uint64_t n)
{
	gb_u32(b, elem_type);
	gb_u64(b, n);
}

/* ---- metadata: one call per kv ---- */
static inline void gb_kv_u8(gguf_builder *b, const char *k, uint8_t v) { gb_begin_kv(b, k, WEFT_GGUF_UINT8); gb_u8(b, v); }
static inline void gb_kv_i8(gguf_builder *b, const char *k, int8_t v) { gb_begin_kv(b, k, WEFT_GGUF_INT8); gb_u8(b, (uint8_t)v); }
static inline void gb_kv_u16(gguf_builder *b, const char *k, uint16_t v)
{
	gb_begin_kv(b, k, WEFT_GGUF_UINT16);
	gb_raw(b, (uint8_t[]){(uint8_t)v, (uint8_t)(v >> 8)}, 2);
}
static inline void gb_kv_i16(gguf_builder *b, const char *k, int16_t v)
{
	gb_begin_kv(b, k, WEFT_GGUF_INT16);
	gb_raw(b, (uint8_t[]){(uint8_t)v, (uint8_t)((uint16_t)v >> 8)}, 2);
}
static inline void gb_kv_u32(gguf_builder *b, const char *k, uint32_t v) { gb_begin_kv(b, k, WEFT_GGUF_UINT32); gb_u32(b, v); }
static inline void gb_kv_i32(gguf_builder *b, const char *k, int32_t v) { gb_begin_kv(b, k, WEFT_GGUF_INT32); gb_u32(b, (uint32_t)v); }
static inline void gb_kv_u64(gguf_builder *b, const char *k, uint64_t v) { gb_begin_kv(b, k, WEFT_GGUF_UINT64); gb_u64(b, v); }
static inline void gb_kv_i64(gguf_builder *b, const char *k, int64_t v) { gb_begin_kv(b, k, WEFT_GGUF_INT64); gb_u64(b, (uint64_t)v); }
static inline void gb_kv_bool(gguf_builder *b, const char *k, int v) { gb_begin_kv(b, k, WEFT_GGUF_BOOL); gb_u8(b, (uint8_t)v); }
static inline void gb_kv_str(gguf_builder *b, const char *k, const char *s) { gb_begin_kv(b, k, WEFT_GGUF_STRING); gb_str(b, s); }
static inline void gb_kv_f32(gguf_builder *b, const char *k, float v)
{
	uint32_t u;
	memcpy(&u, &v, 4);
	gb_begin_kv(b, k, WEFT_GGUF_FLOAT32);
	gb_u32(b, u);
}
static inline void gb_kv_f64(gguf_builder *b, const char *k, double v)
{
	uint64_t u;
	memcpy(&u, &v, 8);
	gb_begin_kv(b, k, WEFT_GGUF_FLOAT64);
	gb_u64(b, u);
}

/* Array of n scalars given as host (little-endian) values of the element
 * type's size, e.g. (int32_t[]){...} for WEFT_GGUF_INT32. */
static inline void gb_kv_arr(gguf_builder *b, const char *k, uint32_t elem_type, uint64_t n, const void *elems)
{
	static const uint8_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
	gb_begin_kv(b, k, WEFT_GGUF_ARRAY);
	gb_arr_hdr(b, elem_type, n);
	gb_raw(b, elems, (size_t)n * (elem_type < 13 ? sz[elem_type] : 0));
}

static inline void gb_kv_arr_str(gguf_builder *b, const char *k, uint64_t n, const char *const *s)
{
	gb_begin_kv(b, k, WEFT_GGUF_ARRAY);
	gb_arr_hdr(b, WEFT_GGUF_STRING, n);
	for (uint64_t i = 0; i < n; i++)
		gb_str(b, s[i]);
}

/* general.alignment = a, and use it for padding. */
static inline void gb_align(gguf_builder *b, uint32_t a)
{
	gb_kv_u32(b, "general.alignment", a);
	b->align = a;
}

/* ---- tensors ---- */

/* Tensor info with an explicit offset (no data appended). */
static inline void gb_tensor_info(gguf_builder *b, const char *name, uint32_t type, uint32_t n_dims,
			   const int64_t *ne, uint64_t offset)
{
	gb_tensor_at *a = &b->t[b->n_tensors < GB_MAX ? b->n_tensors : GB_MAX - 1];
	b->n_tensors++;
	a->at_name = b->infos.n;
	gb_b_str(&b->infos, name);
	a->at_ndims = b->infos.n;
	gb_b_u32(&b->infos, n_dims);
	a->at_ne = b->infos.n;
	for (uint32_t j = 0; j < n_dims; j++)
		gb_b_u64(&b->infos, (uint64_t)ne[j]);
	a->at_type = b->infos.n;
	gb_b_u32(&b->infos, type);
	a->at_offset = b->infos.n;
	gb_b_u64(&b->infos, offset);
}

/* Pad the data section to the alignment. */
static inline void gb_pad_data(gguf_builder *b)
{
	while (b->data.n % b->align)
		gb_b_u8(&b->data, 0);
}

/* Tensor whose data (nbytes from data, or zeros when data is NULL) is
 * appended to the data section at the next aligned offset (the file ends
 * right after the last tensor's bytes). */
static inline void gb_tensor(gguf_builder *b, const char *name, uint32_t type, uint32_t n_dims,
		      const int64_t *ne, const void *data, size_t nbytes)
{
	gb_pad_data(b);
	gb_tensor_info(b, name, type, n_dims, ne, b->data.n);
	if (data) {
		gb_append(&b->data, data, nbytes);
	} else if (nbytes) {
		gb_grow(&b->data, nbytes);
		memset(b->data.p + b->data.n, 0, nbytes);
		b->data.n += nbytes;
	}
}

/* Assemble the file (malloc'ed; *len set).  The builder stays usable for
 * its recorded offsets. */
static inline uint8_t *gb_finish(gguf_builder *b, size_t *len)
{
	gb_bytes f = {0};
	gb_append(&f, "GGUF", 4);
	gb_b_u32(&f, b->version);
	gb_b_u64(&f, b->n_tensors);
	gb_b_u64(&f, b->n_kv);
	b->kvs_at = f.n;
	gb_append(&f, b->kvs.p, b->kvs.n);
	b->infos_at = f.n;
	gb_append(&f, b->infos.p, b->infos.n);
	if (b->pad_data && b->n_tensors)
		while (f.n % b->align)
			gb_b_u8(&f, 0);
	b->data_at = f.n;
	gb_append(&f, b->data.p, b->data.n);
	if (!f.p)
		f.p = malloc(1);
	*len = f.n;
	return f.p;
}

#endif

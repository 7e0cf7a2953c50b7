/* gguf.c - zero-copy GGUF reader (v2, v3).  See gguf.h.
 *
 * Parsing is a single bounds-checked pass over the bytes.  Every count is
 * checked against the bytes left before anything is allocated, so the
 * memory used is bounded by a small multiple of the file size whatever the
 * header claims.  All allocations of one file live in an arena freed by
 * weft_gguf_close(). */
#include "gguf.h"
#include "ggml_types.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define HEADER_BYTES 24        /* magic, version, n_tensors, n_kv */
#define DEFAULT_ALIGNMENT 32
#define MAX_NAME 64            /* ggml's GGML_MAX_NAME: names are < 64 bytes */
#define MIN_KV_BYTES 14        /* key length + 1-byte key + type + 1-byte value */
#define MIN_TENSOR_BYTES 24    /* name length + n_dims + type + offset */

typedef unsigned long long ull;

/* ---- arena -------------------------------------------------------------- */

typedef union arena_blk {
	union arena_blk *next;
	max_align_t align;
} arena_blk;

typedef struct gguf_priv {
	void *map;              /* mmap'ed region (NULL for open_mem) */
	size_t map_len;
	arena_blk *blocks;      /* every allocation, freed on close */
	uint64_t *kv_ht, kv_cap;        /* open addressing: index + 1, 0 = empty */
	uint64_t *tensor_ht, tensor_cap;
} gguf_priv;

static void *arena_alloc(gguf_priv *pv, uint64_t n, uint64_t size)
{
	uint64_t bytes;
	if (weft_mul_overflow(n, size, &bytes) || bytes > SIZE_MAX - sizeof(arena_blk)) {
		weft_error("out of memory (%llu x %llu bytes)", (ull)n, (ull)size);
		return NULL;
	}
	arena_blk *b = weft_calloc(1, sizeof(arena_blk) + (size_t)bytes);
	if (!b)
		return NULL;
	b->next = pv->blocks;
	pv->blocks = b;
	return b + 1;
}

/* ---- hash tables over names --------------------------------------------- */

static uint64_t hash_bytes(const char *s, uint64_t n) { return weft_fnv1a(WEFT_FNV_INIT, s, (size_t)n); }

static int str_eq_bytes(weft_gguf_str a, const char *s, uint64_t n)
{
	return a.len == n && (n == 0 || memcmp(a.ptr, s, (size_t)n) == 0);
}

/* Allocate a table for n names (load factor <= 1/2). */
static uint64_t *ht_new(gguf_priv *pv, uint64_t n, uint64_t *cap)
{
	uint64_t c = 8;
	while (c < 2 * n)
		c *= 2;
	*cap = c;
	return arena_alloc(pv, c, sizeof(uint64_t));
}

/* Slot holding name s, or the empty slot where it would go.  The name of
 * entry i is name_at(ctx, i). */
typedef weft_gguf_str (*name_fn)(const void *ctx, uint64_t i);

static uint64_t *ht_slot(uint64_t *ht, uint64_t cap, const char *s, uint64_t n, name_fn name_at,
			 const void *ctx)
{
	uint64_t i = hash_bytes(s, n) & (cap - 1);
	while (ht[i] && !str_eq_bytes(name_at(ctx, ht[i] - 1), s, n))
		i = (i + 1) & (cap - 1);
	return &ht[i];
}

static weft_gguf_str kv_name(const void *g, uint64_t i) { return ((const weft_gguf *)g)->kv[i].key; }
static weft_gguf_str tensor_name(const void *g, uint64_t i)
{
	return ((const weft_gguf *)g)->tensors[i].name;
}

/* ---- the parser --------------------------------------------------------- */

typedef struct parser {
	const uint8_t *p;
	uint64_t size, pos;
	weft_gguf_limits lim;
	gguf_priv *pv;
	char ctx[160];          /* "metadata 'key'", "tensor 'name'": for messages */
} parser;

static uint64_t left(const parser *P) { return P->size - P->pos; }

/* Printable rendering of a name for messages (long names are cut). */
static const char *esc(weft_gguf_str s, char *buf, size_t n)
{
	uint64_t show = s.len > 64 ? 64 : s.len;
	weft_escape(s.ptr, (size_t)show, buf, n - 4);
	if (show < s.len)
		strcat(buf, "...");
	return buf;
}

/* Ensure n more bytes; on failure record "truncated file: <ctx> <field>
 * needs ...". */
static int need(parser *P, uint64_t n, const char *field)
{
	if (n <= left(P))
		return 0;
	weft_error("truncated file: %s %s needs %llu bytes at offset %llu, %llu remain", P->ctx, field,
		   (ull)n, (ull)P->pos, (ull)left(P));
	return -1;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static int rd_u32(parser *P, uint32_t *v, const char *field)
{
	if (need(P, 4, field))
		return -1;
	*v = get32(P->p + P->pos);
	P->pos += 4;
	return 0;
}

static int rd_u64(parser *P, uint64_t *v, const char *field)
{
	if (need(P, 8, field))
		return -1;
	*v = get64(P->p + P->pos);
	P->pos += 8;
	return 0;
}

/* Read a string; elem is the array index for messages (UINT64_MAX: none). */
static int rd_str(parser *P, weft_gguf_str *s, uint64_t elem)
{
	char where[48] = "";
	uint64_t len;
	if (elem != UINT64_MAX)
		snprintf(where, sizeof where, " element %llu", (ull)elem);
	if (left(P) < 8) {
		weft_error("truncated file: %s%s string length needs 8 bytes at offset %llu, %llu remain",
			   P->ctx, where, (ull)P->pos, (ull)left(P));
		return -1;
	}
	len = get64(P->p + P->pos);
	P->pos += 8;
	if (len > left(P)) {
		weft_error("truncated file: %s%s string length %llu exceeds remaining %llu bytes", P->ctx,
			   where, (ull)len, (ull)left(P));
		return -1;
	}
	if (len > P->lim.max_string) {
		weft_error("%s%s string length %llu exceeds limit %llu", P->ctx, where, (ull)len,
			   (ull)P->lim.max_string);
		return -1;
	}
	s->ptr = (const char *)P->p + P->pos;
	s->len = len;
	P->pos += len;
	return 0;
}

/* Bytes of a scalar value type; 0 for string, array and unknown types. */
static uint32_t scalar_size(uint32_t t)
{
	static const uint8_t sz[WEFT_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
	return t < WEFT_GGUF_NTYPES ? sz[t] : 0;
}

/* Fewest bytes one element of type t can occupy in the file. */
static uint64_t min_elem_bytes(uint32_t t)
{
	if (t == WEFT_GGUF_STRING)
		return 8;
	if (t == WEFT_GGUF_ARRAY)
		return 12; /* element type + count */
	return scalar_size(t);
}

/* Decode the scalar of type t at p into v. */
static void decode_scalar(uint32_t t, const uint8_t *p, weft_gguf_value *v)
{
	v->type = t;
	switch (t) {
	case WEFT_GGUF_UINT8: case WEFT_GGUF_BOOL: v->v.u64 = p[0]; break;
	case WEFT_GGUF_INT8: v->v.i64 = (int8_t)p[0]; break;
	case WEFT_GGUF_UINT16: v->v.u64 = (uint16_t)(p[0] | p[1] << 8); break;
	case WEFT_GGUF_INT16: v->v.i64 = (int16_t)(p[0] | p[1] << 8); break;
	case WEFT_GGUF_UINT32: v->v.u64 = get32(p); break;
	case WEFT_GGUF_INT32: v->v.i64 = (int32_t)get32(p); break;
	case WEFT_GGUF_UINT64: v->v.u64 = get64(p); break;
	case WEFT_GGUF_INT64: v->v.i64 = (int64_t)get64(p); break;
	case WEFT_GGUF_FLOAT32: {
		uint32_t u = get32(p);
		float f;
		memcpy(&f, &u, 4);
		v->v.f64 = f;
		break;
	}
	case WEFT_GGUF_FLOAT64: {
		uint64_t u = get64(p);
		memcpy(&v->v.f64, &u, 8);
		break;
	}
	}
}

static int parse_array(parser *P, weft_gguf_value *v, uint32_t depth);

/* Parse a value of (already read) type t into v. */
static int parse_value(parser *P, uint32_t t, weft_gguf_value *v, uint32_t depth)
{
	if (t == WEFT_GGUF_STRING) {
		v->type = t;
		return rd_str(P, &v->v.str, UINT64_MAX);
	}
	if (t == WEFT_GGUF_ARRAY)
		return parse_array(P, v, depth + 1);
	if (t >= WEFT_GGUF_NTYPES) {
		weft_error("%s: unknown value type %u", P->ctx, t);
		return -1;
	}
	uint32_t n = scalar_size(t);
	if (need(P, n, "value"))
		return -1;
	decode_scalar(t, P->p + P->pos, v);
	if (t == WEFT_GGUF_BOOL && v->v.u64 > 1) {
		weft_error("%s: bool value %llu is not 0 or 1", P->ctx, (ull)v->v.u64);
		return -1;
	}
	P->pos += n;
	return 0;
}

/* Parse an array (element type, count, elements) at nesting depth
 * (1 = a top-level array). */
static int parse_array(parser *P, weft_gguf_value *v, uint32_t depth)
{
	uint32_t et;
	uint64_t n;
	memset(v, 0, sizeof *v);
	v->type = WEFT_GGUF_ARRAY;
	if (depth > P->lim.max_depth) {
		weft_error("%s: arrays nested deeper than %u", P->ctx, P->lim.max_depth);
		return -1;
	}
	if (rd_u32(P, &et, "array type") || rd_u64(P, &n, "array count"))
		return -1;
	if (et >= WEFT_GGUF_NTYPES) {
		weft_error("%s: unknown array element type %u", P->ctx, et);
		return -1;
	}
	if (n > P->lim.max_array) {
		weft_error("%s: array count %llu exceeds limit %llu", P->ctx, (ull)n, (ull)P->lim.max_array);
		return -1;
	}
	if (n > left(P) / min_elem_bytes(et)) {
		weft_error("truncated file: %s array count %llu exceeds remaining %llu bytes", P->ctx,
			   (ull)n, (ull)left(P));
		return -1;
	}
	v->v.arr.type = et;
	v->v.arr.n = n;
	if (et == WEFT_GGUF_STRING) {
		if (n && !(v->v.arr.strs = arena_alloc(P->pv, n, sizeof(weft_gguf_str))))
			return -1;
		for (uint64_t i = 0; i < n; i++)
			if (rd_str(P, &v->v.arr.strs[i], i))
				return -1;
	} else if (et == WEFT_GGUF_ARRAY) {
		if (n && !(v->v.arr.vals = arena_alloc(P->pv, n, sizeof(weft_gguf_value))))
			return -1;
		for (uint64_t i = 0; i < n; i++)
			if (parse_array(P, &v->v.arr.vals[i], depth + 1))
				return -1;
	} else {
		const uint8_t *raw = P->p + P->pos;
		v->v.arr.raw = raw;
		P->pos += n * scalar_size(et); /* fits: checked against left() */
		if (et == WEFT_GGUF_BOOL)
			for (uint64_t i = 0; i < n; i++)
				if (raw[i] > 1) {
					weft_error("%s: bool element %llu value %u is not 0 or 1", P->ctx,
						   (ull)i, raw[i]);
					return -1;
				}
	}
	return 0;
}

static int parse_header(parser *P, weft_gguf *g, uint64_t *n_tensors, uint64_t *n_kv)
{
	char m[32];
	if (P->size < 4) {
		weft_error("not a GGUF file (%llu bytes)", (ull)P->size);
		return -1;
	}
	if (memcmp(P->p, GGUF_MAGIC, 4) != 0) {
		weft_escape((const char *)P->p, 4, m, sizeof m);
		weft_error("not a GGUF file (magic \"%s\")", m);
		return -1;
	}
	if (P->size < HEADER_BYTES) {
		weft_error("truncated file: header needs %d bytes, file has %llu", HEADER_BYTES,
			   (ull)P->size);
		return -1;
	}
	uint32_t ver = get32(P->p + 4);
	if (ver != 0 && (ver & 0xffff) == 0) {
		weft_error("unsupported GGUF version %u (0x%08x): wrong endianness (byte-swapped file?)", ver,
			   ver);
		return -1;
	}
	if (ver == 1) {
		weft_error("unsupported GGUF version 1 (obsolete; only versions 2 and 3 are supported)");
		return -1;
	}
	if (ver != 2 && ver != 3) {
		weft_error("unsupported GGUF version %u (only versions 2 and 3 are supported)", ver);
		return -1;
	}
	g->version = ver;
	*n_tensors = get64(P->p + 8);
	*n_kv = get64(P->p + 16);
	P->pos = HEADER_BYTES;
	if (*n_kv > P->lim.max_kv) {
		weft_error("n_kv %llu exceeds limit %llu", (ull)*n_kv, (ull)P->lim.max_kv);
		return -1;
	}
	if (*n_tensors > P->lim.max_tensors) {
		weft_error("n_tensors %llu exceeds limit %llu", (ull)*n_tensors, (ull)P->lim.max_tensors);
		return -1;
	}
	if (*n_kv > left(P) / MIN_KV_BYTES) {
		weft_error("truncated file: n_kv %llu exceeds remaining %llu bytes", (ull)*n_kv,
			   (ull)left(P));
		return -1;
	}
	if (*n_tensors > left(P) / MIN_TENSOR_BYTES) {
		weft_error("truncated file: n_tensors %llu exceeds remaining %llu bytes", (ull)*n_tensors,
			   (ull)left(P));
		return -1;
	}
	return 0;
}

static int parse_kvs(parser *P, weft_gguf *g, uint64_t n_kv)
{
	gguf_priv *pv = P->pv;
	char nb[96];
	if (!(g->kv = arena_alloc(pv, n_kv, sizeof *g->kv)) ||
	    !(pv->kv_ht = ht_new(pv, n_kv, &pv->kv_cap)))
		return -1;
	for (uint64_t i = 0; i < n_kv; i++) {
		weft_gguf_kv *kv = &g->kv[i];
		uint32_t t;
		snprintf(P->ctx, sizeof P->ctx, "metadata key %llu", (ull)i);
		if (rd_str(P, &kv->key, UINT64_MAX))
			return -1;
		if (kv->key.len == 0) {
			weft_error("metadata key %llu is empty", (ull)i);
			return -1;
		}
		uint64_t *slot = ht_slot(pv->kv_ht, pv->kv_cap, kv->key.ptr, kv->key.len, kv_name, g);
		if (*slot) {
			weft_error("duplicate metadata key '%s'", esc(kv->key, nb, sizeof nb));
			return -1;
		}
		*slot = i + 1;
		g->n_kv = i + 1; /* visible to kv_name() from now on */
		snprintf(P->ctx, sizeof P->ctx, "metadata '%s'", esc(kv->key, nb, sizeof nb));
		if (rd_u32(P, &t, "value type") || parse_value(P, t, &kv->val, 0))
			return -1;
	}
	g->n_kv = n_kv;
	return 0;
}

static int set_alignment(weft_gguf *g)
{
	const weft_gguf_value *a = weft_gguf_get(g, "general.alignment");
	g->alignment = DEFAULT_ALIGNMENT;
	if (!a)
		return 0;
	if (a->type != WEFT_GGUF_UINT32) {
		weft_error("general.alignment must be uint32, not %s", weft_gguf_type_name(a->type));
		return -1;
	}
	uint64_t al = a->v.u64;
	if (al == 0 || (al & (al - 1))) {
		weft_error("general.alignment %llu is not a power of two", (ull)al);
		return -1;
	}
	g->alignment = (uint32_t)al;
	return 0;
}

/* Parse tensor info i: name, dims, type, offset; compute nbytes. */
static int parse_tensor_info(parser *P, weft_gguf *g, uint64_t i)
{
	gguf_priv *pv = P->pv;
	weft_gguf_tensor *t = &g->tensors[i];
	char nb[96];
	uint32_t n_dims;
	snprintf(P->ctx, sizeof P->ctx, "tensor %llu name", (ull)i);
	if (rd_str(P, &t->name, UINT64_MAX))
		return -1;
	if (t->name.len >= MAX_NAME) {
		weft_error("tensor %llu name length %llu >= %d", (ull)i, (ull)t->name.len, MAX_NAME);
		return -1;
	}
	const char *name = esc(t->name, nb, sizeof nb);
	uint64_t *slot = ht_slot(pv->tensor_ht, pv->tensor_cap, t->name.ptr, t->name.len, tensor_name, g);
	if (*slot) {
		weft_error("duplicate tensor name '%s'", name);
		return -1;
	}
	*slot = i + 1;
	g->n_tensors = i + 1;
	snprintf(P->ctx, sizeof P->ctx, "tensor '%s'", name);
	if (rd_u32(P, &n_dims, "n_dims"))
		return -1;
	if (n_dims > 4) {
		weft_error("tensor '%s': n_dims %u > 4", name, n_dims);
		return -1;
	}
	t->n_dims = n_dims ? n_dims : 1; /* a 0-d tensor is one value */
	for (int j = 0; j < 4; j++)
		t->ne[j] = 1;
	for (uint32_t j = 0; j < n_dims; j++) {
		uint64_t u;
		if (rd_u64(P, &u, "dims"))
			return -1;
		t->ne[j] = (int64_t)u;
		if (t->ne[j] < 0) {
			weft_error("tensor '%s': ne[%u]=%lld is negative", name, j, (long long)t->ne[j]);
			return -1;
		}
	}
	uint64_t nel = 1, rows = 1;
	for (int j = 0; j < 4; j++)
		if (weft_mul_overflow(nel, (uint64_t)t->ne[j], &nel) || nel > INT64_MAX) {
			weft_error("tensor '%s': dims overflow", name);
			return -1;
		}
	if (rd_u32(P, &t->type, "type"))
		return -1;
	const weft_type_info *ti = weft_type_get(t->type);
	if (!ti) {
		weft_error("unknown tensor type %u for tensor '%s'", t->type, name);
		return -1;
	}
	if (t->ne[0] % ti->block) {
		weft_error("tensor '%s': ne[0]=%lld not a multiple of block size %u for %s", name,
			   (long long)t->ne[0], ti->block, ti->name);
		return -1;
	}
	/* nbytes = ne[0] / block * bytes * ne[1] * ne[2] * ne[3] */
	t->nbytes = 0;
	if (t->ne[0] > 0) {
		uint64_t row;
		rows = (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3]; /* <= nel */
		if (weft_mul_overflow((uint64_t)t->ne[0] / ti->block, ti->bytes, &row) ||
		    weft_mul_overflow(row, rows, &t->nbytes)) {
			weft_error("tensor '%s': size overflow", name);
			return -1;
		}
	}
	return rd_u64(P, &t->offset, "offset");
}

typedef struct span {
	uint64_t off, idx;
} span;

static int span_cmp(const void *a, const void *b)
{
	const span *x = a, *y = b;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Place the data section and check every tensor's bytes: aligned, inside
 * the file, not overlapping another tensor. */
static int place_tensors(parser *P, weft_gguf *g)
{
	char n1[96], n2[96];
	uint64_t avail, n = g->n_tensors;
	g->data_offset = g->header_size;
	if (n == 0)
		return 0; /* like ggml: no padding needed without tensors */
	uint64_t pad = (g->alignment - g->header_size % g->alignment) % g->alignment;
	if (weft_add_overflow(g->header_size, pad, &g->data_offset) || g->data_offset > P->size) {
		weft_error("truncated file: data section at offset %llu is past the end of the file (%llu bytes)",
			   (ull)g->header_size + pad, (ull)P->size);
		return -1;
	}
	avail = P->size - g->data_offset;
	span *sp = arena_alloc(P->pv, n, sizeof *sp);
	if (!sp)
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		weft_gguf_tensor *t = &g->tensors[i];
		const char *name = esc(t->name, n1, sizeof n1);
		uint64_t end;
		if (t->offset % g->alignment) {
			weft_error("tensor '%s': offset %llu not aligned to %u", name, (ull)t->offset,
				   g->alignment);
			return -1;
		}
		if (weft_add_overflow(t->offset, t->nbytes, &end)) {
			weft_error("tensor '%s': data offset %llu + size %llu overflows", name,
				   (ull)t->offset, (ull)t->nbytes);
			return -1;
		}
		if (end > avail) {
			weft_error("tensor '%s': data [%llu, %llu) outside the file (data section is %llu bytes)",
				   name, (ull)t->offset, (ull)end, (ull)avail);
			return -1;
		}
		t->data = P->p + g->data_offset + t->offset;
		sp[i].off = t->offset;
		sp[i].idx = i;
	}
	qsort(sp, (size_t)n, sizeof *sp, span_cmp);
	uint64_t max_end = 0, owner = 0;
	for (uint64_t k = 0; k < n; k++) {
		const weft_gguf_tensor *t = &g->tensors[sp[k].idx];
		if (!t->nbytes)
			continue;
		if (t->offset < max_end) {
			const weft_gguf_tensor *o = &g->tensors[owner];
			weft_error("tensor '%s': data [%llu, %llu) overlaps tensor '%s' [%llu, %llu)",
				   esc(t->name, n1, sizeof n1), (ull)t->offset, (ull)(t->offset + t->nbytes),
				   esc(o->name, n2, sizeof n2), (ull)o->offset, (ull)(o->offset + o->nbytes));
			return -1;
		}
		max_end = t->offset + t->nbytes;
		owner = sp[k].idx;
	}
	return 0;
}

static int parse(parser *P, weft_gguf *g)
{
	gguf_priv *pv = P->pv;
	uint64_t n_tensors, n_kv;
	snprintf(P->ctx, sizeof P->ctx, "header");
	if (parse_header(P, g, &n_tensors, &n_kv) || parse_kvs(P, g, n_kv) || set_alignment(g))
		return -1;
	if (n_tensors > left(P) / MIN_TENSOR_BYTES) {
		weft_error("truncated file: n_tensors %llu exceeds remaining %llu bytes", (ull)n_tensors,
			   (ull)left(P));
		return -1;
	}
	if (!(g->tensors = arena_alloc(pv, n_tensors, sizeof *g->tensors)) ||
	    !(pv->tensor_ht = ht_new(pv, n_tensors, &pv->tensor_cap)))
		return -1;
	for (uint64_t i = 0; i < n_tensors; i++)
		if (parse_tensor_info(P, g, i))
			return -1;
	g->n_tensors = n_tensors;
	g->header_size = P->pos;
	return place_tensors(P, g);
}

/* ---- public API --------------------------------------------------------- */

static weft_gguf *open_bytes(const void *buf, uint64_t n, const weft_gguf_limits *lim, void *map,
			     size_t map_len)
{
	static const weft_gguf_limits defaults = {1u << 20, 1u << 20, 1u << 30, 1u << 28, 8};
	weft_gguf *g = weft_calloc(1, sizeof *g);
	gguf_priv *pv = weft_calloc(1, sizeof *pv);
	if (!g || !pv) {
		free(g);
		free(pv);
		if (map)
			munmap(map, map_len);
		return NULL;
	}
	pv->map = map;
	pv->map_len = map_len;
	g->priv = pv;
	g->base = buf;
	g->size = n;
	g->alignment = DEFAULT_ALIGNMENT;
	parser P = {.p = buf, .size = n, .lim = defaults, .pv = pv};
	if (lim) {
		if (lim->max_kv) P.lim.max_kv = lim->max_kv;
		if (lim->max_tensors) P.lim.max_tensors = lim->max_tensors;
		if (lim->max_string) P.lim.max_string = lim->max_string;
		if (lim->max_array) P.lim.max_array = lim->max_array;
		if (lim->max_depth) P.lim.max_depth = lim->max_depth;
	}
	if (parse(&P, g)) {
		weft_gguf_close(g);
		return NULL;
	}
	return g;
}

weft_gguf *weft_gguf_open_mem_ex(const void *buf, size_t n, const weft_gguf_limits *lim)
{
	static const uint8_t empty[1];
	return open_bytes(buf ? buf : empty, buf ? n : 0, lim, NULL, 0);
}

weft_gguf *weft_gguf_open_mem(const void *buf, size_t n) { return weft_gguf_open_mem_ex(buf, n, NULL); }

weft_gguf *weft_gguf_open(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		weft_error("%s", strerror(errno)); /* "x.gguf: No such file or directory" */
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		weft_error("cannot stat: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		weft_error("not a regular file");
		close(fd);
		return NULL;
	}
	if ((uint64_t)st.st_size > SIZE_MAX) {
		weft_error("file too large to map (%llu bytes)", (ull)st.st_size);
		close(fd);
		return NULL;
	}
	size_t len = (size_t)st.st_size;
	void *map = NULL;
	if (len) {
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			weft_error("cannot mmap: %s", strerror(errno));
			close(fd);
			return NULL;
		}
	}
	close(fd);
	if (!map)
		return weft_gguf_open_mem(NULL, 0);
	return open_bytes(map, len, NULL, map, len);
}

void weft_gguf_close(weft_gguf *g)
{
	if (!g)
		return;
	gguf_priv *pv = g->priv;
	if (pv) {
		for (arena_blk *b = pv->blocks, *next; b; b = next) {
			next = b->next;
			free(b);
		}
		if (pv->map)
			munmap(pv->map, pv->map_len);
		free(pv);
	}
	free(g);
}

static const weft_gguf_kv *find_kv(const weft_gguf *g, const char *key)
{
	const gguf_priv *pv = g ? g->priv : NULL;
	if (!pv || !pv->kv_ht || !key)
		return NULL;
	uint64_t i = *ht_slot(pv->kv_ht, pv->kv_cap, key, strlen(key), kv_name, g);
	return i ? &g->kv[i - 1] : NULL;
}

const weft_gguf_value *weft_gguf_get(const weft_gguf *g, const char *key)
{
	const weft_gguf_kv *kv = find_kv(g, key);
	return kv ? &kv->val : NULL;
}

const weft_gguf_tensor *weft_gguf_find_tensor(const weft_gguf *g, const char *name)
{
	const gguf_priv *pv = g ? g->priv : NULL;
	if (!pv || !pv->tensor_ht || !name)
		return NULL;
	uint64_t i = *ht_slot(pv->tensor_ht, pv->tensor_cap, name, strlen(name), tensor_name, g);
	return i ? &g->tensors[i - 1] : NULL;
}

const char *weft_gguf_type_name(uint32_t type)
{
	static const char *const names[WEFT_GGUF_NTYPES] = {
		"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
		"bool", "string", "array", "uint64", "int64", "float64"};
	return type < WEFT_GGUF_NTYPES ? names[type] : "unknown";
}

int weft_gguf_str_eq(weft_gguf_str s, const char *c) { return c && str_eq_bytes(s, c, strlen(c)); }

static int is_signed(uint32_t t)
{
	return t == WEFT_GGUF_INT8 || t == WEFT_GGUF_INT16 || t == WEFT_GGUF_INT32 || t == WEFT_GGUF_INT64;
}

static int is_unsigned(uint32_t t)
{
	return t == WEFT_GGUF_UINT8 || t == WEFT_GGUF_UINT16 || t == WEFT_GGUF_UINT32 ||
	       t == WEFT_GGUF_UINT64;
}

/* Look up key for a getter: 1 when absent, -1 (error set) when its type is
 * not one the getter accepts (ok(type) false). */
static int getter(const weft_gguf *g, const char *key, int (*ok)(uint32_t), const char *want,
		  const weft_gguf_value **out)
{
	const weft_gguf_value *v = weft_gguf_get(g, key);
	if (!v)
		return 1;
	if (!ok(v->type)) {
		weft_error("metadata '%s' is %s, expected %s", key, weft_gguf_type_name(v->type), want);
		return -1;
	}
	*out = v;
	return 0;
}

static int is_int(uint32_t t) { return is_signed(t) || is_unsigned(t); }
static int is_num(uint32_t t) { return is_int(t) || t == WEFT_GGUF_FLOAT32 || t == WEFT_GGUF_FLOAT64; }
static int is_bool(uint32_t t) { return t == WEFT_GGUF_BOOL; }
static int is_str(uint32_t t) { return t == WEFT_GGUF_STRING; }
static int is_arr(uint32_t t) { return t == WEFT_GGUF_ARRAY; }

int weft_gguf_get_u32(const weft_gguf *g, const char *key, uint32_t *out)
{
	const weft_gguf_value *v;
	int r = getter(g, key, is_int, "an integer", &v);
	if (r)
		return r;
	if (is_signed(v->type) ? v->v.i64 < 0 || v->v.i64 > (int64_t)UINT32_MAX : v->v.u64 > UINT32_MAX) {
		if (is_signed(v->type))
			weft_error("metadata '%s' value %lld out of range for uint32", key, (long long)v->v.i64);
		else
			weft_error("metadata '%s' value %llu out of range for uint32", key, (ull)v->v.u64);
		return -1;
	}
	*out = (uint32_t)(is_signed(v->type) ? (uint64_t)v->v.i64 : v->v.u64);
	return 0;
}

int weft_gguf_get_i64(const weft_gguf *g, const char *key, int64_t *out)
{
	const weft_gguf_value *v;
	int r = getter(g, key, is_int, "an integer", &v);
	if (r)
		return r;
	if (!is_signed(v->type) && v->v.u64 > INT64_MAX) {
		weft_error("metadata '%s' value %llu out of range for int64", key, (ull)v->v.u64);
		return -1;
	}
	*out = is_signed(v->type) ? v->v.i64 : (int64_t)v->v.u64;
	return 0;
}

int weft_gguf_get_f32(const weft_gguf *g, const char *key, float *out)
{
	const weft_gguf_value *v;
	int r = getter(g, key, is_num, "a number", &v);
	if (r)
		return r;
	if (is_signed(v->type))
		*out = (float)v->v.i64;
	else if (is_unsigned(v->type))
		*out = (float)v->v.u64;
	else
		*out = (float)v->v.f64;
	return 0;
}

int weft_gguf_get_bool(const weft_gguf *g, const char *key, int *out)
{
	const weft_gguf_value *v;
	int r = getter(g, key, is_bool, "bool", &v);
	if (!r)
		*out = v->v.u64 != 0;
	return r;
}

int weft_gguf_get_str(const weft_gguf *g, const char *key, weft_gguf_str *out)
{
	const weft_gguf_value *v;
	int r = getter(g, key, is_str, "string", &v);
	if (!r)
		*out = v->v.str;
	return r;
}

int weft_gguf_get_arr(const weft_gguf *g, const char *key, uint32_t elem_type,
		      const weft_gguf_value **out)
{
	const weft_gguf_value *v;
	int r = getter(g, key, is_arr, "array", &v);
	if (r)
		return r;
	if (elem_type < WEFT_GGUF_NTYPES && v->v.arr.type != elem_type) {
		weft_error("metadata '%s' is array of %s, expected array of %s", key,
			   weft_gguf_type_name(v->v.arr.type), weft_gguf_type_name(elem_type));
		return -1;
	}
	*out = v;
	return 0;
}

/* Element i of a scalar array, decoded. */
static int arr_elem(const weft_gguf_value *a, uint64_t i, weft_gguf_value *e)
{
	if (!a || a->type != WEFT_GGUF_ARRAY || i >= a->v.arr.n || !scalar_size(a->v.arr.type))
		return -1;
	decode_scalar(a->v.arr.type, a->v.arr.raw + i * scalar_size(a->v.arr.type), e);
	return 0;
}

double weft_gguf_arr_f64(const weft_gguf_value *arr, uint64_t i)
{
	weft_gguf_value e;
	if (arr_elem(arr, i, &e))
		return 0;
	if (is_signed(e.type))
		return (double)e.v.i64;
	if (is_unsigned(e.type) || e.type == WEFT_GGUF_BOOL)
		return (double)e.v.u64;
	return e.v.f64;
}

int64_t weft_gguf_arr_i64(const weft_gguf_value *arr, uint64_t i)
{
	weft_gguf_value e;
	if (arr_elem(arr, i, &e))
		return 0;
	if (is_signed(e.type))
		return e.v.i64;
	if (is_unsigned(e.type) || e.type == WEFT_GGUF_BOOL)
		return (int64_t)e.v.u64;
	/* float: truncate, 0 when not representable */
	if (!(e.v.f64 > -9223372036854775808.0 && e.v.f64 < 9223372036854775808.0))
		return 0;
	return (int64_t)e.v.f64;
}

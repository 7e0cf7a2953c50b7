/* kv.h - the KV cache of a decoder-only LLM.
 *
 * For each layer and KV head the cache holds rows: a key (after RoPE, at
 * the position it was computed for) and a value, each stored in the
 * layer's storage type, and the row's original position.  Heads hold
 * ragged numbers of rows (len): a compressed cache (kvcompress) may keep
 * different rows per layer and head, so position and row index differ
 * once rows are dropped.  n_past is the logical position of the next token.
 *
 * Storage types are ggml types, so the attention kernels and the stream
 * codec read them with the library's block layouts:
 *   WEFT_KV_F16   IEEE half, the default (llama.cpp's default cache)
 *   WEFT_KV_F32   float32: exact, twice the memory
 *   WEFT_KV_Q8_0  blocks of 32 int8 values with an fp16 scale (llama.cpp's
 *                 -ctk/-ctv q8_0), about half of F16; head size a multiple
 *                 of 32; read by the scalar attention kernels
 * A layer records its own type and its key and value widths (k_dim, v_dim:
 * head_dim today; the room for channel-pruned keys).
 *
 * The forward pass (model_llama.c) appends each layer's new rows with
 * weft_kv_append and attends over weft_kv_attn_args; a failed forward
 * rolls the cache back to weft_kv_save's state. */
#ifndef WEFT_KV_H
#define WEFT_KV_H

#include <stddef.h>
#include <stdint.h>

#include "ggml_types.h"
#include "kernels.h"

typedef enum weft_kv_type {
	WEFT_KV_F32 = WEFT_TYPE_F32,
	WEFT_KV_F16 = WEFT_TYPE_F16,
	WEFT_KV_Q8_0 = WEFT_TYPE_Q8_0
} weft_kv_type;

typedef struct weft_kv_layer {
	weft_kv_type type;
	int k_dim, v_dim;       /* values per key row and per value row */
	size_t k_row, v_row;    /* bytes per key row and per value row */
	void *k, *v;            /* [n_head_kv][cap] rows */
	int32_t *pos;           /* [n_head_kv][cap]: each row's position, -1 unused */
} weft_kv_layer;

typedef struct weft_kv {
	int n_layer, n_head_kv, head_dim;
	int64_t cap;            /* rows per (layer, head) */
	int64_t n_past;         /* logical position of the next token */
	weft_kv_layer *layer;   /* [n_layer] */
	int32_t *len;           /* [n_layer][n_head_kv]: rows in use */
} weft_kv;

/* "f16", "f32", "q8_0"; NULL for a type that is not a KV type. */
const char *weft_kv_type_name(weft_kv_type t);
/* The KV type named s (as weft_kv_type_name, or upper case); -1 unknown. */
int weft_kv_type_parse(const char *s);

/* A cache of n_layer x n_head_kv heads of head_dim values with room for
 * cap rows per head, every layer of storage type t.  NULL + error (a type
 * that cannot store head_dim values, sizes too large, out of memory). */
weft_kv *weft_kv_alloc(int n_layer, int n_head_kv, int head_dim, int64_t cap, weft_kv_type t);
void weft_kv_free(weft_kv *kv);
/* Grow capacity to at least cap rows per head (keeps contents): 0 / -1. */
int weft_kv_reserve(weft_kv *kv, int64_t cap);

/* Row r of head h of layer l. */
static inline void *weft_kv_krow(const weft_kv *kv, int l, int h, int64_t r)
{
	const weft_kv_layer *L = &kv->layer[l];
	return (char *)L->k + ((size_t)h * (size_t)kv->cap + (size_t)r) * L->k_row;
}
static inline void *weft_kv_vrow(const weft_kv *kv, int l, int h, int64_t r)
{
	const weft_kv_layer *L = &kv->layer[l];
	return (char *)L->v + ((size_t)h * (size_t)kv->cap + (size_t)r) * L->v_row;
}

/* Append n rows to every head of layer l: keys k and values v as float32
 * [n][n_head_kv][head_dim], converted to the layer's type, at positions
 * pos0 .. pos0 + n - 1; advances the layer's len.  The caller checked the
 * room (weft_kv_room).  0 / -1. */
int weft_kv_append(weft_kv *kv, int l, int64_t n, const float *k, const float *v, int64_t pos0);
/* The same with row t at position pos0 + pos[t] (pos NULL: pos0 + t). */
int weft_kv_append_at(weft_kv *kv, int l, int64_t n, const float *k, const float *v, int64_t pos0, const int32_t *pos);
/* 0 when every head has room for n more rows, else -1 + error. */
int weft_kv_room(const weft_kv *kv, int64_t n);

/* Keep only rows keep[0..n_keep-1] (strictly increasing, < len) of head h
 * of layer l, in that order, at the head's first rows (positions kept
 * with them): 0, or -1 + error for a bad keep list. */
int weft_kv_compact(weft_kv *kv, int l, int h, const int32_t *keep, int64_t n_keep);

/* The cache's state (n_past and every len) before a forward pass, to roll
 * a failed one back: rows appended since are forgotten. */
typedef struct weft_kv_state {
	int64_t n_past;
	int32_t *len;
} weft_kv_state;
int weft_kv_save(const weft_kv *kv, weft_kv_state *s);   /* 0 / -1 (out of memory) */
void weft_kv_restore(weft_kv *kv, const weft_kv_state *s);
void weft_kv_state_free(weft_kv_state *s);

/* Bytes of the rows in use (keys + values + positions): the memory a
 * compressed cache really takes. */
uint64_t weft_kv_bytes(const weft_kv *kv);

/* Attention arguments reading layer l's rows (K, V, kv_type,
 * kv_head_rows, kv_len; the caller sets the rest). */
void weft_kv_attn_args(const weft_kv *kv, int l, weft_attn_args *a);

#endif

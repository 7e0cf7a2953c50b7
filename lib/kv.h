/* kv.h - the KV cache of a decoder-only LLM.
 *
 * For each layer and KV head the cache holds rows: a key (after RoPE, at
 * the position it was computed for) and a value, each stored in the
 * layer's storage type, and the row's original position.  Heads hold
 * ragged numbers of rows (len): a compressed cache (kvcompress) may keep
 * different rows per layer and head, so position and row index differ
 * once rows are dropped.  n_past is the logical position of the next token.
 *
 * Each head has its own capacity (hoff: head h's rows are hoff[h] ..
 * hoff[h+1] - 1 of its layer's arrays), so a head-wise compressed cache
 * (adakv, duo) read back from a stream takes the memory of the rows it
 * kept, not of the longest head times the heads.
 *
 * Storage types are ggml types, so the attention kernels and the stream
 * codec read them with the library's block layouts:
 *   WEFT_KV_F16   IEEE half, the default (llama.cpp's default cache)
 *   WEFT_KV_F32   float32: exact, twice the memory
 *   WEFT_KV_Q8_0  blocks of 32 int8 values with an fp16 scale (llama.cpp's
 *                 -ctk/-ctv q8_0), about half of F16; head size a multiple
 *                 of 32; read by the scalar attention kernels
 * Compressed layouts on top of them (kvcompress; each layer its own):
 *   channel-pruned keys (ThinK): k_dim < head_dim key channels, the kept
 *                 channel indices in k_chan; new rows drop the same ones
 *   KIVI / GEAR:  q != NULL: each head's oldest rows are quantized
 *                 (kernels.h "KIVI-quantized KV rows"), the newest
 *                 `residual` to residual + 31 rows stay in the layer's
 *                 plain rows; len counts the plain rows, q->n the quantized
 *                 ones (weft_kv_rows: both)
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

/* The quantized (older) rows of a KIVI / GEAR layer, per head. */
typedef struct weft_kvq {
	int kbits, vbits;       /* 2, 4 or 8 */
	int vgroup;             /* value channels per group (32, or head_dim when smaller) */
	int residual;           /* newest rows kept plain (128 by default) */
	size_t kblk, vrow;      /* bytes per key block (32 rows), per value row */
	int32_t *n;             /* [n_head_kv] rows quantized (a multiple of 32) */
	int32_t *cap;           /* [n_head_kv] rows room is allocated for */
	uint8_t **kb, **vb;     /* [n_head_kv] key blocks, value rows */
	int32_t **pos;          /* [n_head_kv] the rows' positions */
	/* GEAR terms (rank 0, no outliers: plain KIVI); they cover the rows
	 * quantized by kvcompress, not the ones decode quantizes later */
	int rank;
	int32_t *lr_n;          /* [n_head_kv] rows with low-rank terms */
	uint16_t **ka, **va;    /* [n_head_kv] A [lr_n][rank], halves */
	float **kbasis, **vbasis; /* [n_head_kv] B [rank][k_dim or head_dim] */
	int32_t *ko_n, *vo_n;   /* [n_head_kv] outliers */
	weft_kivi_outlier **ko, **vo;
	weft_attn_kivi view;    /* what the attention kernels read (kept current) */
} weft_kvq;

/* MiniCache: rows of this layer shared with an earlier layer (its rows,
 * scaled), per head. */
typedef struct weft_kvview {
	int src;                /* the layer whose rows are shared */
	int32_t *n;             /* [n_head_kv] entries */
	int32_t **idx;          /* [n_head_kv]: rows of layer src */
	int32_t **pos;          /* [n_head_kv]: their positions */
	float **ks, **vs;       /* [n_head_kv]: key and value scales */
	weft_attn_view view;    /* what the attention kernels read */
} weft_kvview;

typedef struct weft_kv_layer {
	weft_kv_type type;
	int k_dim, v_dim;       /* values per key row and per value row */
	size_t k_row, v_row;    /* bytes per key row and per value row */
	void *k, *v;            /* rows, head h's from row hoff[h] */
	int32_t *pos;           /* each row's position, -1 unused */
	int64_t *hoff;          /* [n_head_kv + 1]: head h's rows hoff[h] .. hoff[h+1]-1 */
	int32_t *k_chan;        /* [n_head_kv][k_dim]: the key channels kept
				 * (increasing), when k_dim < head_dim; else NULL */
	weft_kvq *q;            /* quantized older rows (KIVI, GEAR), or NULL */
	weft_kvview *mv;        /* rows shared with an earlier layer (MiniCache), or NULL */
} weft_kv_layer;

typedef struct weft_kv {
	int n_layer, n_head_kv, head_dim;
	int64_t cap;            /* the largest head capacity: the row stride of
				 * per-row statistics ([n_layer][n_head_kv][cap]) */
	int64_t n_past;         /* logical position of the next token */
	weft_kv_layer *layer;   /* [n_layer] */
	int32_t *len;           /* [n_layer][n_head_kv]: plain rows in use */
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
/* Give every head of every layer room for exactly its rows plus extra
 * (growing or shrinking it): after compression, the memory of what was
 * kept.  0 / -1. */
int weft_kv_fit(weft_kv *kv, int64_t extra);
/* Reallocate layer l with head h's capacity cap[h] (>= its rows), keeping
 * contents; cap NULL: every head len + extra.  0 / -1. */
int weft_kv_layer_fit(weft_kv *kv, int l, const int64_t *cap, int64_t extra);

/* Row r (a plain row) of head h of layer l. */
static inline void *weft_kv_krow(const weft_kv *kv, int l, int h, int64_t r)
{
	const weft_kv_layer *L = &kv->layer[l];
	return (char *)L->k + (size_t)(L->hoff[h] + r) * L->k_row;
}
static inline void *weft_kv_vrow(const weft_kv *kv, int l, int h, int64_t r)
{
	const weft_kv_layer *L = &kv->layer[l];
	return (char *)L->v + (size_t)(L->hoff[h] + r) * L->v_row;
}
/* The positions of head h's plain rows. */
static inline int32_t *weft_kv_pos(const weft_kv *kv, int l, int h)
{
	return kv->layer[l].pos + kv->layer[l].hoff[h];
}
/* Rows head h of layer l holds: quantized + plain (+ shared: MiniCache). */
static inline int64_t weft_kv_rows(const weft_kv *kv, int l, int h)
{
	const weft_kv_layer *L = &kv->layer[l];
	return (int64_t)kv->len[(size_t)l * kv->n_head_kv + h] + (L->q ? L->q->n[h] : 0) + (L->mv ? L->mv->n[h] : 0);
}
/* Position of row r (0 .. weft_kv_rows - 1: quantized rows first, then
 * plain rows, then shared ones; only the first two are in position order). */
static inline int32_t weft_kv_row_pos(const weft_kv *kv, int l, int h, int64_t r)
{
	const weft_kv_layer *L = &kv->layer[l];
	const int64_t nq = L->q ? L->q->n[h] : 0, np = kv->len[(size_t)l * kv->n_head_kv + h];
	return r < nq ? L->q->pos[h][r] : r < nq + np ? weft_kv_pos(kv, l, h)[r - nq] : L->mv->pos[h][r - nq - np];
}

/* Append n rows to every head of layer l: keys k and values v as float32
 * [n][n_head_kv][head_dim], converted to the layer's type (and to its
 * kept key channels), at positions pos0 .. pos0 + n - 1; advances the
 * layer's len.  The caller checked the room (weft_kv_room).  0 / -1. */
int weft_kv_append(weft_kv *kv, int l, int64_t n, const float *k, const float *v, int64_t pos0);
/* The same with row t at position pos0 + pos[t] (pos NULL: pos0 + t). */
int weft_kv_append_at(weft_kv *kv, int l, int64_t n, const float *k, const float *v, int64_t pos0, const int32_t *pos);
/* 0 when every head has room for n more rows, else -1 + error. */
int weft_kv_room(const weft_kv *kv, int64_t n);
/* Room for n more rows in every head beyond what it holds (grows only the
 * heads that need it, to their rows + n + slack): 0 / -1. */
int weft_kv_reserve_extra(weft_kv *kv, int64_t n);

/* Keep only plain rows keep[0..n_keep-1] (strictly increasing, < len) of
 * head h of layer l, in that order, at the head's first rows (positions
 * kept with them): 0, or -1 + error for a bad keep list. */
int weft_kv_compact(weft_kv *kv, int l, int h, const int32_t *keep, int64_t n_keep);

/* The cache's state (n_past and every len) before a forward pass, to roll
 * a failed one back: rows appended since are forgotten.  Saving first
 * settles KIVI layers (their rows beyond the plain window are quantized),
 * so the saved state is the one a failed pass returns to. */
typedef struct weft_kv_state {
	int64_t n_past;
	int32_t *len;
} weft_kv_state;
int weft_kv_save(weft_kv *kv, weft_kv_state *s);   /* 0 / -1 (out of memory, bad value) */
void weft_kv_restore(weft_kv *kv, const weft_kv_state *s);
void weft_kv_state_free(weft_kv_state *s);

/* Bytes of the rows in use (keys + values + positions, quantized rows with
 * their scales, GEAR terms, kept-channel lists): the memory a compressed
 * cache really takes. */
uint64_t weft_kv_bytes(const weft_kv *kv);
/* The same for an uncompressed F16 cache of the same model and n_past. */
uint64_t weft_kv_bytes_f16(const weft_kv *kv);

/* Attention arguments reading layer l's rows (K, V, kv_type,
 * kv_head_rows, kv_head_off, kv_len, key channels, quantized prefix; the
 * caller sets the rest). */
void weft_kv_attn_args(const weft_kv *kv, int l, weft_attn_args *a);

/* ---- compressed layouts (kvq.c) ---- */

/* Drop key channels of layer l: keep[h][i] (k_dim increasing channels per
 * head) of every plain row; the layer must hold full keys.  0 / -1. */
int weft_kv_prune_channels(weft_kv *kv, int l, int k_dim, const int32_t *keep);

/* Turn layer l into a KIVI layer (kbits, vbits in {2, 4, 8}, the newest
 * `residual` rows plain) and quantize its rows beyond that window: 0, or
 * -1 + error (a value that is not finite, a layer already quantized,
 * head_dim not a multiple of the value group). */
int weft_kv_quantize(weft_kv *kv, int l, int kbits, int vbits, int residual);
/* A KIVI layer l with no rows quantized yet, for a reader (kvstream.c). */
int weft_kvq_init(weft_kv *kv, int l, int kbits, int vbits, int residual);
/* Room for n quantized rows in head h of layer l's quantized part.  0 / -1. */
int weft_kvq_reserve(weft_kv *kv, int l, int h, int64_t n);
/* Quantize the oldest plain rows of each head of KIVI layer l beyond its
 * window, in blocks of 32 (what decode does as the cache grows).  0 / -1. */
int weft_kv_settle(weft_kv *kv, int l);
void weft_kvq_free(weft_kvq *q, int n_head_kv);
/* The plain rows of head h of KIVI layer l that settling would quantize
 * now (*n of them, a multiple of 32) as float32: K [n][k_dim], V
 * [n][head_dim] (malloc'ed).  0 / -1. */
int weft_kvq_take(weft_kv *kv, int l, int h, float **K, float **V, int64_t *n);
/* Quantize n rows (float32, a multiple of 32, positions pos) onto the end
 * of head h's quantized rows.  0 / -1 (a value that is not finite). */
int weft_kvq_append_rows(weft_kv *kv, int l, int h, const float *K, const float *V, const int32_t *pos, int64_t n);
/* Forget head h's first n plain rows (after quantizing them). */
int weft_kvq_drop_front(weft_kv *kv, int l, int h, int64_t n);
/* Refresh q->view after its arrays changed. */
void weft_kvq_sync(weft_kvq *q);
/* Layer l's view of layer src's rows (MiniCache), no entries yet, and its
 * release. */
int weft_kvview_init(weft_kv *kv, int l, int src);
void weft_kvview_free(weft_kvview *v, int n_head_kv);

#endif

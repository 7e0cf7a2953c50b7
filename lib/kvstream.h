/* kvstream.h - a model's KV cache and logits as weft stream frames: the
 * codec prefill, decode and every later KV stage share (frame layout in
 * man 1 prefill and man 5 weft-stream).
 *
 *   kvcache  one per cache: model geometry, n_past, storage type, the
 *            token history, weft.numerics when llama.cpp's arithmetic
 *            computed it
 *   kv       one per layer, in order: k, v, len, pos (+ mass, window_q,
 *            q_mean, q_cov when scored); F16/F32 rows as F16/F32
 *            [n_head_kv, L, head_dim], quantized rows as U8 [n_head_kv, L,
 *            row bytes]; compressed layers add k_chan (channel-pruned
 *            keys: k is [n_head_kv, L, k_dim]) or the KIVI / GEAR tensors
 *            (weft.kv_type KIVI / GEAR; man 5 weft-stream)
 *   logits   the next-token logits after the last position
 *
 * Every frame carries weft.model, so a stage refuses a cache or logits from
 * another model. */
#ifndef WEFT_KVSTREAM_H
#define WEFT_KVSTREAM_H

#include <stdint.h>
#include <stdio.h>

#include "kv.h"
#include "model.h"
#include "stream.h"

/* ---- writing ---- */

/* What weft_kv_write writes beside the rows. */
typedef struct weft_kv_write_args {
	const int32_t *hist;     /* token ids at positions 0..n_past-1 (-1 where an
				  * embedding was fed) */
	int64_t n_hist;
	const float *logits;     /* n_vocab next-token logits; NULL: no logits frame */
	int llamacpp;            /* mark the cache weft.numerics = llama.cpp */
	const float *mass;       /* [n_layer][n_head_kv][mass_stride] attention mass
				  * received per row, or NULL */
	int64_t mass_stride;     /* 0: kv->cap */
	int64_t mass_queries;    /* queries that added to mass (weft.mass_queries; 0: not written) */
	const float *window_q;   /* [n_layer][n_window][n_head][head_dim] last
				  * queries, or NULL */
	int n_window;
	const float *q_mean;     /* [n_layer][n_head][head_dim] mean pre-RoPE query, or NULL */
	const float *q_cov;      /* [n_layer][n_head][head_dim][head_dim] their covariance */
	int64_t q_count;         /* queries averaged (weft.q_count) */
	const char *methods;     /* KV methods applied (weft.kv_methods), or NULL */
} weft_kv_write_args;

/* The kvcache frame, kv frames of every layer and the logits frame.
 * 0, or -1 with an error (write errors included). */
int weft_kv_write(FILE *out, const weft_model *m, const weft_kv *kv, const weft_kv_write_args *w);

/* The cache coded for disk or the network (kvcompress --pack; lib/kvpack.c):
 * each head's keys and values quantized per channel over blocks of 32 rows
 * with `bits` bits (2..8), delta coded along the rows, zlib-deflated, with
 * a CRC-32 of each layer's payload; readers take it like a plain cache
 * (rows back as F16).  Plain layouts only (channel-pruned keys included):
 * -1 + error for a KIVI, GEAR or merged layer. */
int weft_kv_write_packed(FILE *out, const weft_model *m, const weft_kv *kv, const weft_kv_write_args *w, int bits);

/* The single frames weft_kv_write is made of (NULL + error). */
weft_frame *weft_kvcache_frame(const weft_model *m, const weft_kv *kv, const int32_t *hist, int64_t n_hist);
/* mass: optional [n_head_kv][mass_stride] scores of this layer. */
weft_frame *weft_kv_layer_frame(const weft_model *m, const weft_kv *kv, int layer, const float *mass,
				int64_t mass_stride);
weft_frame *weft_logits_frame(const weft_model *m, const float *logits, int64_t n_past);

/* ---- reading ---- */

/* A cache being read from a stream, frame by frame.  Zero it, set the
 * options, feed it every frame with weft_kv_read, then weft_kv_read_end. */
typedef struct weft_kv_in {
	/* options */
	int64_t extra_cap;       /* rows of room to add beyond the cached ones */
	int want_llamacpp;       /* refuse a cache not computed with llama.cpp's
				  * numerics (--numerics llama.cpp) */
	/* results */
	weft_kv *kv;             /* NULL until the kvcache frame */
	int32_t *hist;           /* [n_hist] token history (malloc'ed) */
	int64_t n_hist;
	float *logits;           /* [n_vocab] when have_logits */
	int have_logits;
	int llamacpp;            /* the cache carries weft.numerics = llama.cpp */
	int next_layer;          /* layers read so far */
	/* statistics for KV methods, when the frames carry them (prefill --mass,
	 * --window-q, --q-stats; kvcompress keeps them with the rows) */
	float *mass;             /* [n_layer][n_head_kv][mass_stride], row order of each head */
	int64_t mass_stride;     /* n_past */
	int64_t mass_queries;    /* weft.mass_queries (0: absent) */
	int have_mass;
	float *window_q;         /* [n_layer][n_window][n_head][head_dim] */
	int n_window;
	float *q_mean, *q_cov;   /* [n_layer][n_head][head_dim](*[head_dim]) */
	int64_t q_count;
	char methods[256];       /* weft.kv_methods of the kvcache frame ("" none) */
	int packed;              /* the cache came packed (its bits), else 0 */
	int head_tag;            /* private: the kvcache frame's layout */
} weft_kv_in;

/* Take frame f if it belongs to a KV cache: 1 (a kvcache, kv or logits
 * frame, checked and loaded), 0 (another kind: the caller's), or -1 with an
 * error "frame N: ..." (another model, a second cache, layers out of
 * order, bad shapes, an unknown storage type ...). */
int weft_kv_read(weft_kv_in *in, const weft_model *m, const weft_frame *f);
/* After the last frame: 0 when a whole cache was read (and its logits when
 * need_logits), else -1 with "no KV cache in the input", "KV cache has 3 of
 * 30 layers (truncated stream?)" or "no logits frame after the KV cache
 * (truncated stream?)". */
int weft_kv_read_end(const weft_kv_in *in, const weft_model *m, int need_logits);
/* Free what weft_kv_read allocated (not in itself). */
void weft_kv_in_free(weft_kv_in *in);

#endif

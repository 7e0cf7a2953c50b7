/* kvstream.h - a model's KV cache and logits as weft stream frames
 * (see man 1 prefill for the frame layout).
 *
 *   kvcache  one per cache: model geometry, n_past, the token history
 *   kv       one per layer, in order: k, v, len, pos (+ mass if scored)
 *   logits   the next-token logits after the last position
 *
 * Every frame carries weft.model, so a stage refuses a cache or logits from
 * another model. */
#ifndef WEFT_KVSTREAM_H
#define WEFT_KVSTREAM_H

#include <stdint.h>

#include "model.h"
#include "stream.h"

/* The kvcache frame.  hist: the n_hist token ids at positions 0..n_past-1
 * (-1 where an embedding, not a token, was fed). */
weft_frame *weft_kvcache_frame(const weft_model *m, const weft_kv *kv, const int32_t *hist, int64_t n_hist);
/* The kv frame of one layer.  mass: optional [n_head_kv][kv->cap] scores
 * of this layer (written as tensor "mass"), NULL for none. */
weft_frame *weft_kv_layer_frame(const weft_model *m, const weft_kv *kv, int layer, const float *mass);
/* The logits frame for the position after n_past - 1. */
weft_frame *weft_logits_frame(const weft_model *m, const float *logits, int64_t n_past);

/* Start a cache from a kvcache frame: checks the model fingerprint and
 * geometry, allocates room for the cached rows plus extra_cap more, returns
 * the token history (malloc'ed) in *hist / *n_hist.  NULL + error. */
weft_kv *weft_kv_begin(const weft_model *m, const weft_frame *f, int64_t extra_cap, int32_t **hist,
		       int64_t *n_hist);
/* Fill layer rows from a kv frame (layers must arrive in order 0..n-1;
 * *next_layer tracks that).  0 / -1 with "frame N: ..." errors. */
int weft_kv_load_layer(weft_kv *kv, const weft_model *m, const weft_frame *f, int *next_layer);
/* Read logits (must be n_vocab floats) from a logits frame into out. */
int weft_logits_load(const weft_model *m, const weft_frame *f, float *out);

#endif

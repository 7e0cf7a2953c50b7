/* kvstream_int.h - internals of the KV stream codec: the tensors of a
 * KIVI / GEAR layer (kvstream_q.c).  Not installed. */
#ifndef WEFT_KVSTREAM_INT_H
#define WEFT_KVSTREAM_INT_H

#include "kv.h"
#include "kvstream.h"
#include "stream.h"

#pragma GCC visibility push(hidden)

/* Add layer l's quantized-part tensors (zero-filled) and keys to f. */
int weft_kvq_frame_add(weft_frame *f, const weft_kv *kv, int l);
/* Fill them (after every tensor of f was added). */
void weft_kvq_frame_fill(weft_frame *f, const weft_kv *kv, int l);
/* Read them into layer l (plain rows already read): 0, or -1 + error. */
int weft_kvq_frame_read(weft_kv *kv, int l, const weft_frame *f, int gear);
/* The same for a MiniCache layer's shared rows (weft.kv_type MERGED). */
int weft_kvview_frame_add(weft_frame *f, const weft_kv *kv, int l);
void weft_kvview_frame_fill(weft_frame *f, const weft_kv *kv, int l);
int weft_kvview_frame_read(weft_kv *kv, int l, const weft_frame *f);

/* kvpack.c: a kvpack frame's own keys (after read_head took the rest), a
 * kvpackl frame (1, or -1 + error). */
int weft_kvpack_read_head(weft_kv_in *in, const weft_frame *f);
int weft_kvpack_read_layer(weft_kv_in *in, const weft_model *m, const weft_frame *f);

#pragma GCC visibility pop

#endif

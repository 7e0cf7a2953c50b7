/* bind_int.h - internal: weft_bind, the tensor lookup with shape and type
 * checks that the model loaders (model.c, vision.c) share. */
#ifndef WEFT_BIND_INT_H
#define WEFT_BIND_INT_H

#include <stdint.h>

#include "gguf.h"

/* Internal: hidden from libweft.so's exports. */
#pragma GCC visibility push(hidden)

enum {
	WEFT_USE_MATMUL, /* a weight matrix weft_matmul supports */
	WEFT_USE_ROWS,   /* any type weft_dequantize_row supports */
	WEFT_USE_F32,    /* float32 only */
};

/* Find tensor fmt (printf-style, with layer i) and check that its dims are
 * exactly [ne0] (ne1 <= 0) or [ne0, ne1] and its type suits use.
 * optional: absent is not an error (NULL, no error).  Otherwise NULL with
 * *err set and a one-line error naming the tensor; once *err is set,
 * later calls only look tensors up. */
const weft_gguf_tensor *weft_bind(const weft_gguf *g, int optional, int use, int64_t ne0, int64_t ne1,
				  const char *fmt, int i, int *err);

/* Model fingerprints: FNV-1a of v's 8 little-endian bytes into *h; and of
 * the tensor table (names, types, dims, offsets) into h, returned. */
void weft_hash_int(uint64_t *h, int64_t v);
uint64_t weft_hash_tensors(const weft_gguf *g, uint64_t h);

#pragma GCC visibility pop

#endif

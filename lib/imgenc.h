/* imgenc.h - images through a vision encoder: each image decoded,
 * preprocessed as the mmproj's family expects (one tile, or SmolVLM's
 * grid of tiles plus a global one), and the tiles of all images encoded in
 * batches; each tile then comes out as an embd tile (embd.h) with the
 * processor's wrapper text.  What encode-image runs for a stream, and what
 * an in-process run (eval) runs for an item. */
#ifndef WEFT_IMGENC_H
#define WEFT_IMGENC_H

#include "embd.h"
#include "image.h"
#include "kernels.h"
#include "vision.h"

typedef struct weft_imgenc_opts {
	int batch;               /* tiles per encoder call (<= 0: 16) */
	weft_image_opts image;   /* pixel limit, EXIF, alpha flags */
	int alpha;               /* -1: the family's loader (mlp drops alpha,
				  * idefics3 composites onto white); 0 white; 1 drop */
	unsigned stats;          /* statistics for pruning methods (prune.h):
				  * WEFT_IMGENC_KEYS, WEFT_IMGENC_ATTN */
	int flowcut;             /* FlowCut inside the encoder: patches kept
				  * per tile (0: none); tiles then carry the
				  * pruning record (embd.h) */
} weft_imgenc_opts;

#define WEFT_IMGENC_KEYS 1u      /* the last block's keys (vision.h) */
#define WEFT_IMGENC_ATTN 2u      /* attention received per layer */

typedef struct weft_imgenc weft_imgenc;

/* An encoder for v (both v and pool outlive it).  NULL + error. */
weft_imgenc *weft_imgenc_new(const weft_vision *v, weft_pool *pool, const weft_imgenc_opts *o);
void weft_imgenc_free(weft_imgenc *e);

/* Decode and preprocess the image at path ("-": standard input) and queue
 * its tiles, encoding every full batch.  Returns the image's index (0, 1,
 * ... in the order added), or -1 with an error (the image's problem, for
 * the caller to prefix with its name; or the encoder's). */
int weft_imgenc_add(weft_imgenc *e, const char *path);
/* Encode the tiles still queued: 0 / -1. */
int weft_imgenc_flush(weft_imgenc *e);
/* Forget the images (buffers are kept for the next ones). */
void weft_imgenc_reset(weft_imgenc *e);

int weft_imgenc_count(const weft_imgenc *e);
int weft_imgenc_tiles(const weft_imgenc *e, int image);
/* Tile t of image i (after the flush), as placeholder number `number`
 * fills it: embeddings, saliency, grid, wrapper text, the encoder's
 * fingerprint and the image's path.  Pointers into e stay valid until the
 * next call of this function, reset or free; vocab and placeholder are
 * left NULL for the caller. */
void weft_imgenc_tile(weft_imgenc *e, int i, int t, int number, weft_embd_tile *out);

/* Seconds spent in the encoder, and its calls, since creation. */
double weft_imgenc_seconds(const weft_imgenc *e);
int weft_imgenc_calls(const weft_imgenc *e);
/* Decoder warnings tolerated (WEFT_IMAGE_LENIENT) since creation. */
unsigned weft_imgenc_warnings(const weft_imgenc *e);

#endif

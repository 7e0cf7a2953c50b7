/* embd.h - the embd frame: one image tile's embeddings in a weft stream
 * (encode-image writes them in place of an <image N> placeholder; prefill,
 * prune-tokens and eval read them).  Keys in keys.h; layout in man 5
 * weft-stream.
 *
 * Tensors: embd F32 [n_tokens, n_embd] (the projector's output, one row
 * per LLM position) and optionally saliency F32 [n_layers, n_patches]
 * (vision.h: the attention each patch gets, per encoder layer run).
 * Statistics encode-image exports only when asked (--stats), for the
 * pruning methods that need them: keys F32 [n_patches, key_dim] (the last
 * block run's keys) and attn_recv F32 [n_layers, n_patches] (attention
 * received, mean over heads and queries, for encoders with a class token).
 * A tile pruned by prune-tokens (prune.h) holds only its kept rows and
 * records how they were made: kept I32 [n_tokens] (each row's token index
 * in the unpruned tile, ascending), and where rows were merged merge_row,
 * merge_src I32 [n_merge] and merge_w F32 [n_merge]: row merge_row[i] is
 * the sum over its entries of merge_w[i] x unpruned row merge_src[i];
 * keys weft.n_orig (tokens before pruning), weft.pruned (method and
 * budget), weft.positions (keep or repack).
 * Wrapper text: the text the model's processor puts around the tile's
 * rows (weft.prefix / weft.suffix, "<...>" pieces are special tokens):
 * nothing for LLaVA (mlp); Idefics3Processor's
 * "<fake_token_around_image><row_r_col_c>" ... for SmolVLM tiles. */
#ifndef WEFT_EMBD_H
#define WEFT_EMBD_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"
#include "vision.h"

typedef struct weft_embd_tile {
	int image;                 /* image number N (of <image N>), 1-based */
	int tile, tiles;           /* this tile, tiles of the image */
	int rows, cols;            /* tile grid (0, 0: one tile, no grid) */
	const char *saliency_kind; /* "cls_attn" or "attn_recv" (or NULL) */
	int patch_side;            /* encoder patches per side */
	int merge;                 /* patches per LLM token side (pixel shuffle) */
	const char *mmproj;        /* vision model fingerprint, 16 hex digits */
	const char *source;        /* image file name (or NULL) */
	const char *prefix, *suffix; /* wrapper text ("" for none) */
	const char *vocab;         /* tokenizer fingerprint of the prompt, or NULL */
	const char *placeholder;   /* the placeholder's text, or NULL */
	int64_t n_tokens, n_embd;
	const float *embd;         /* [n_tokens][n_embd] */
	int64_t n_sal_layers, n_patches;
	const float *saliency;     /* [n_sal_layers][n_patches] or NULL */
	/* statistics exported on request (NULL: absent) */
	int64_t key_dim;
	const float *keys;         /* [n_patches][key_dim] */
	const float *attn_recv;    /* [n_sal_layers][n_patches] */
	/* the pruning record (n_orig == 0: not pruned) */
	int64_t n_orig;            /* tokens before pruning (n_tokens may be 0) */
	const int32_t *kept;       /* [n_tokens] ascending indices into the unpruned tile */
	int64_t n_merge;
	const int32_t *merge_row, *merge_src; /* [n_merge] */
	const float *merge_w;      /* [n_merge] */
	const char *pruned;        /* "METHOD keep=N ...", or NULL */
	int repack;                /* positions re-packed (1) or kept (0) */
} weft_embd_tile;

/* An embd frame holding t (copied).  NULL + error. */
weft_frame *weft_embd_frame(const weft_embd_tile *t);
/* Read an embd frame: checks its tensors (shapes, every value finite, a
 * pruning record's indices in range and ascending) and points t's strings
 * and arrays into f (valid while f lives).  0, or -1 with "frame N: ..."
 * errors. */
int weft_embd_read(const weft_frame *f, weft_embd_tile *t);

/* The wrapper text around tile t of an image cut into a rows x cols grid
 * (rows == 0: a single tile) as the projector family's processor writes
 * it, into pre and suf (cap bytes each). */
void weft_embd_wrapper(weft_proj_type proj, int rows, int cols, int t, char *pre, char *suf, size_t cap);

#endif

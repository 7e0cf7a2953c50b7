/* prune.h - visual-token pruning: every method behind one budget semantics
 * (man 1 prune-tokens).
 *
 * Methods form a family (registry.h, lib/prune_methods.def): each is one
 * file lib/prune_<name>.c and acts at one of three places:
 *
 *   WEFT_PRUNE_AT_EMBD     on embd tiles between encode-image and prefill
 *                          (weft_prune_tiles): random, pool, cls, visionzip,
 *                          divprune, prumerge, vispruner, hiprune, cdpruner
 *   WEFT_PRUNE_AT_ENCODER  inside the vision encoder (encode-image --prune):
 *                          flowcut
 *   WEFT_PRUNE_AT_LLM      inside the LLM's forward pass, between layers
 *                          (a directive prefill honours, weft_prune_llm):
 *                          fastv, pdrop, sparsevlm, dart
 *
 * Budget (every method): `keep` tokens, or `ratio` of them (kept =
 * round(ratio x n), at least 1), per unit: an image's tiles together
 * (WEFT_PRUNE_IMAGE, the default), each tile (WEFT_PRUNE_TILE) or every
 * tile of the prompt (WEFT_PRUNE_GLOBAL).  A unit with no more tokens than
 * its budget passes through unchanged.  For LLM-stage methods the budget is
 * the number of visual tokens the (first) drop keeps.
 *
 * Kept rows stay in their original order; each records the index of the
 * token it was kept as (a merged row: its anchor token), so positions can
 * be kept (the default: RoPE at the original positions) or re-packed. */
#ifndef WEFT_PRUNE_H
#define WEFT_PRUNE_H

#include <stdint.h>
#include <stdio.h>

#include "embd.h"
#include "model.h"
#include "prompt.h"
#include "registry.h"
#include "stream.h"
#include "tokenizer.h"

typedef enum { WEFT_PRUNE_AT_EMBD = 0, WEFT_PRUNE_AT_ENCODER, WEFT_PRUNE_AT_LLM } weft_prune_stage;
typedef enum { WEFT_PRUNE_IMAGE = 0, WEFT_PRUNE_TILE, WEFT_PRUNE_GLOBAL } weft_prune_scope;

typedef struct weft_prune_opts {
	const char *method;     /* registered name */
	int64_t keep;           /* tokens kept per unit (> 0), or 0: ratio */
	double ratio;           /* fraction kept, in (0, 1] (0 with keep: unset) */
	weft_prune_scope scope;
	int repack;             /* re-pack positions (0: keep them) */
	const char *params;     /* "name=value,..." over the method's defaults
				 * (list values joined by '/'), or NULL */
	const float *text;      /* [n_text][n_embd]: embeddings of the prompt's
				 * text tokens (cdpruner; weft_prune_text) */
	int64_t n_text;
	weft_pool *pool;        /* threads for the similarity matrices, or NULL */
} weft_prune_opts;

/* The family of pruning methods (--list). */
const weft_family *weft_prune_family(void);
/* Where method `name` acts; -1 + error for an unknown name. */
int weft_prune_stage_of(const char *name);
/* The statistics encode-image must export for method `name` (its
 * --stats option; for an in-process caller such as eval-interleaved that
 * encodes the images itself): WEFT_PRUNE_NEEDS_KEYS (--stats keys, imgenc.h's
 * WEFT_IMGENC_KEYS) and WEFT_PRUNE_NEEDS_ATTN (--stats attn,
 * WEFT_IMGENC_ATTN), read from the method's registry row; 0 for none or an
 * unknown name. */
#define WEFT_PRUNE_NEEDS_KEYS 1u
#define WEFT_PRUNE_NEEDS_ATTN 2u
unsigned weft_prune_encoder_stats(const char *name);
/* Check o: a known method, a budget (or none, for LLM-stage methods with
 * defaults), known parameters in range.  0, or -1 with one line ("unknown
 * pruning method 'x' (known: ...)", "budget 0", "--ratio 1.5 is not in
 * (0, 1]", "unknown parameter 'x' for visionzip (known: contextual,
 * layer)" ...). */
int weft_prune_check(const weft_prune_opts *o);
/* "visionzip keep=64 scope=image contextual=0.15625 layer=-1": o as
 * recorded in weft.pruned (static storage, until the next call). */
const char *weft_prune_describe(const weft_prune_opts *o);

/* ---- between encode-image and prefill ---- */

/* One pruned tile: `tile` is the input tile's metadata with the kept rows
 * and the pruning record (weft_embd_frame writes it); the arrays it points
 * to are owned here. */
typedef struct weft_prune_out {
	weft_embd_tile tile;
	int passed;             /* its unit was within budget: tile unchanged */
	float *embd;
	int32_t *kept, *merge_row, *merge_src;
	float *merge_w;
	char *pruned;
} weft_prune_out;

/* Prune tiles[0..n) (an embd-stage method; units as o->scope says, an
 * image's tiles being consecutive tiles of one image number): out[i] is
 * tiles[i] pruned.  Every tile must come from one vision model, carry the
 * statistics the method needs and not be pruned already.  0, or -1 with an
 * error naming the tile ("tile 3 (image 2): no keys; run encode-image
 * --stats keys"). */
int weft_prune_tiles(const weft_prune_opts *o, const weft_embd_tile *tiles, int n, weft_prune_out *out);
void weft_prune_out_free(weft_prune_out *o);

/* Embeddings of the text tokens of the prompt (ids[n], -1 entries and
 * control tokens skipped) from model m's token_embd, for cdpruner:
 * [*n_text][n_embd], malloc'ed.  NULL + error. */
float *weft_prune_text(const weft_model *m, const weft_vocab *voc, const int32_t *ids, int64_t n, int64_t *n_text);

/* ---- inside the LLM ---- */

/* The directive frame (kind "prune") for an LLM-stage method, and reading
 * one back (o's strings point into f).  NULL / -1 + error. */
weft_frame *weft_prune_directive(const weft_prune_opts *o);
int weft_prune_directive_read(const weft_frame *f, weft_prune_opts *o);

typedef struct weft_prune_llm weft_prune_llm;
/* The drop of o (an LLM-stage method) for prompt p on model m: its visual
 * tokens are p's embedding rows.  attach() sets extra's drop hook.  NULL +
 * error (a layer beyond the model's, positions re-packed ...). */
weft_prune_llm *weft_prune_llm_new(const weft_prune_opts *o, const weft_model *m, const weft_prompt *p);
void weft_prune_llm_attach(weft_prune_llm *d, weft_fwd_extra *extra);
/* After the forward pass: what was dropped, one line per drop
 * ("layer 2: 576 -> 288 visual tokens"), for -v. */
void weft_prune_llm_report(const weft_prune_llm *d, FILE *out);
/* After the forward pass: the visual tokens the first drop kept (all of
 * them when nothing was dropped); for an in-process caller's record. */
int64_t weft_prune_llm_kept(const weft_prune_llm *d);
void weft_prune_llm_free(weft_prune_llm *d);

/* The attention row i of a drop hook's rows gave at layer rows->layer - 1,
 * averaged over heads: out[j] for the pass's rows j <= i (0 after i),
 * softmax over every cached row of that layer (earlier turns included).
 * One query against the cached keys: no N x N matrix. */
void weft_prune_attn_row(const weft_fwd_rows *r, int64_t i, float *out);

#endif

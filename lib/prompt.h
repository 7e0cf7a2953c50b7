/* prompt.h - the prompt assembler: tokens frames and embd frames (in
 * stream order) become the model's input sequence, as the model's
 * processor would build it.
 *
 * Token ids go in as they are.  An embd frame contributes its wrapper
 * prefix, its embedding rows and its wrapper suffix; wrapper text is
 * tokenized as the processor's expanded prompt string is, lazily, so a
 * tile's suffix and the next tile's prefix form one text fragment: every
 * "<...>" piece is its special token, the text between is tokenized with
 * special-token parsing and no BOS.
 *
 * The result: ids[n] (a token id per position, -1 where an embedding row
 * is fed) and rows[n_rows][n_embd] (the embd frames' rows, in order), plus
 * a span per tile saying where its rows landed.
 *
 * Positions: entry i goes at position pos[i] (from 0 at the prompt's
 * start; the forward pass adds the cache's n_past).  They run 0, 1, 2 ...
 * unless a tile was pruned with its positions kept (prune.h): its rows then
 * stand at the positions of the tokens they were kept as, and the tile
 * still spans all of its unpruned tokens' positions, so the prompt spans
 * n_pos >= n positions. */
#ifndef WEFT_PROMPT_H
#define WEFT_PROMPT_H

#include <stdint.h>

#include "embd.h"
#include "model.h"
#include "stream.h"
#include "tokenizer.h"

/* Where one embd tile's rows stand in the prompt. */
typedef struct weft_prompt_span {
	int64_t pos;            /* first entry (index into ids) */
	int64_t n;              /* rows */
	int64_t pos0, n_pos;    /* first position and positions spanned (n_orig
				 * of a tile pruned with positions kept, else n) */
	int image, tile;        /* weft_embd_tile.image / .tile */
} weft_prompt_span;

typedef struct weft_prompt {
	int32_t *ids;           /* [n]: token ids, -1 for embedding rows */
	int32_t *pos;           /* [n]: positions (see above) */
	int64_t n;
	int64_t n_pos;          /* positions spanned (pos[n-1] + 1) */
	float *rows;            /* [n_rows][n_embd] */
	int64_t n_rows;
	weft_prompt_span *spans;/* [n_spans], in prompt order */
	int n_spans;
	/* private */
	const weft_model *m;
	const weft_vocab *voc;
	uint64_t vocab_fp;
	size_t cap, cap_pos, cap_rows, cap_spans; /* elements (rows for cap_rows) */
	char *wrap;             /* wrapper text not tokenized yet */
	size_t wrap_len, wrap_cap;
} weft_prompt;

/* An empty prompt for model m with vocabulary voc (both outlive it). */
void weft_prompt_init(weft_prompt *p, const weft_model *m, const weft_vocab *voc);
void weft_prompt_free(weft_prompt *p);

/* Append token ids (each checked against the vocabulary).  0 / -1. */
int weft_prompt_add_ids(weft_prompt *p, const int32_t *ids, int64_t n);
/* Append an embd tile read from frame f (f->index names it in errors):
 * checks its width against the model, its vocabulary fingerprint when it
 * has one, and that each "<...>" piece of its wrapper text is a token of
 * the vocabulary.  f may be NULL for a tile made in process (imgenc.h):
 * then no fingerprint is checked and errors name no frame.  0 / -1. */
int weft_prompt_add_tile(weft_prompt *p, const weft_embd_tile *t, const weft_frame *f);
/* Take frame f if it belongs to the prompt: tokens (vocabulary checked)
 * and embd frames are added (1), an unfilled image placeholder is an error
 * ("run encode-image before prefill"), other kinds are the caller's (0).
 * -1 with an error "frame N: ...". */
int weft_prompt_add_frame(weft_prompt *p, const weft_frame *f);
/* Tokenize the pending wrapper text (call after the last frame).  0 / -1. */
int weft_prompt_finish(weft_prompt *p);

/* The token history by position (malloc'ed, [n_pos]): the id at each
 * position, -1 where an embedding row or a pruned token stands.  NULL +
 * error. */
int32_t *weft_prompt_history(const weft_prompt *p);

/* The model's input rows [n][n_embd] (malloc'ed): token embeddings
 * (token_embd, dequantized as the forward pass does) and the embd rows in
 * place.  NULL + error. */
float *weft_prompt_input_rows(const weft_prompt *p);

#endif

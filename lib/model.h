/* model.h - decoder-only LLMs from llama.cpp GGUF files: general.architecture
 * "llama" (Llama-2/3, TinyLlama, Vicuna, SmolLM2) and "qwen2".  The forward
 * pass (lib/model_llama.c) reads top to bottom like llama2.c's forward().
 *
 * Weights stay in the GGUF mapping (no copies); tensor names and metadata
 * keys are llama.cpp's (src/llama-arch.cpp). */
#ifndef WEFT_MODEL_H
#define WEFT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "kernels.h"
#include "kv.h"

typedef struct weft_hparams {
	char arch[32];          /* "llama" or "qwen2" */
	int n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim, n_vocab;
	int n_ctx_train;        /* {arch}.context_length */
	int rope_dim;           /* dims rotated per head ({arch}.rope.dimension_count, default head_dim) */
	int rope_neox;          /* 0 for llama, 1 for qwen2 */
	float rope_base, rope_freq_scale; /* freq_scale = 1 / rope.scaling.factor for linear scaling */
	float rms_eps;
	int tied_output;        /* output.weight absent: token_embd used */
} weft_hparams;

typedef struct weft_layer_w {
	const weft_gguf_tensor *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv;
	const weft_gguf_tensor *ffn_norm, *w_gate, *w_up, *w_down;
} weft_layer_w;

typedef struct weft_model {
	const weft_gguf *g;     /* not owned */
	weft_hparams hp;
	const weft_gguf_tensor *tok_embd, *out_norm, *output;
	weft_layer_w *layers;
	uint64_t fingerprint;
} weft_model;

/* Bind a model to an open GGUF: read hyper-parameters, find and check every
 * tensor (names, shapes, supported types).  NULL + error naming the tensor
 * or key on failure ("missing tensor 'blk.3.ffn_up.weight'", "unsupported
 * architecture 'gpt2'", "tensor 'x': shape [a, b], expected [c, d]"...). */
weft_model *weft_model_load(const weft_gguf *g);
void weft_model_free(weft_model *m);
/* 0 when every matrix of m has a weight type whose llama.cpp arithmetic
 * the "llama.cpp" kernel level reproduces (weft_kernels_llamacpp_exact),
 * else -1 + an error naming the first tensor that has not. */
int weft_model_check_llamacpp(const weft_model *m);

/* A KV cache for m (kv.h): cap rows per head, F16 or of type t. */
weft_kv *weft_kv_new(const weft_model *m, int64_t cap);
weft_kv *weft_kv_new_type(const weft_model *m, int64_t cap, weft_kv_type t);

/* ---- prune-tokens (prune.h): token positions and in-LLM token drops ----
 * The rows still in a forward pass, as a drop hook sees them before layer
 * `layer` runs (after layer - 1 has). */
typedef struct weft_fwd_rows {
	const weft_model *m;
	const weft_kv *kv;
	weft_pool *pool;
	int layer;              /* the layer about to run */
	int64_t n;              /* rows still in the pass */
	const int32_t *src;     /* [n] each row's index among the call's T inputs */
	const int32_t *pos;     /* [n] each row's position - pos_base */
	int64_t pos_base;
	float *x;               /* [n][n_embd] residual stream entering `layer`
				 * (a hook may rewrite rows it keeps: merging) */
	const float *q;         /* [n][n_head][head_dim] queries of layer - 1, after
				 * RoPE (NULL before layer 0) */
} weft_fwd_rows;

/* A drop hook: fill keep[0..*n_keep) with the rows (indices into the n
 * rows, ascending) that go on to `layer` and later; leaving *n_keep == n
 * keeps every row.  The last row (the logits') must stay.  0, or -1 with
 * an error. */
typedef int (*weft_fwd_drop_fn)(void *ctx, const weft_fwd_rows *rows, int32_t *keep, int64_t *n_keep);

/* Optional inputs and outputs of a forward pass. */
typedef struct weft_fwd_extra {
	/* attention mass received per cached row: [n_layer][n_head_kv][cap],
	 * accumulated over all queries of the call (NULL to skip) */
	float *mass;
	/* queries (after RoPE) of the last n_window tokens of the call:
	 * [n_layer][n_window][n_head][head_dim] (NULL to skip) */
	float *window_q;
	int n_window;
	/* input positions: token t at kv->n_past + pos[t] (strictly
	 * increasing, below pos_span), and n_past then advances by pos_span
	 * (NULL: token t at kv->n_past + t, span T) */
	const int32_t *pos;
	int64_t pos_span;
	/* in-LLM token drop (fastv, pdrop, sparsevlm, dart): called before
	 * every layer; dropped rows skip the later layers, which cache no
	 * keys or values for them.  With a hook the call runs as one chunk and
	 * returns the last row's logits only (NULL: no drops). */
	weft_fwd_drop_fn drop;
	void *drop_ctx;
	/* pre-RoPE query statistics (expected attention, kvcompress): sums of
	 * the queries [n_layer][n_head][head_dim] and of their outer products
	 * [n_layer][n_head][head_dim][head_dim] over the call's tokens from
	 * index q_skip on (NULL to skip; accumulated, so zero them first) */
	double *q_sum, *q_sq;
	int64_t q_skip;
} weft_fwd_extra;

/* Run T tokens (ids) or T embedding rows (embd [T][n_embd], when ids is
 * NULL) through the model at positions kv->n_past.. (or extra->pos), appending their keys
 * and values to kv (which must have room) and advancing n_past.  On
 * failure the cache is as it was before the call.  Processes
 * at most `chunk` tokens at a time (<= 0: 512) so activations stay bounded.
 * logits: [n_vocab] for the last token (NULL to skip), or when all_logits
 * is set, [T][n_vocab].  Returns 0, or -1 with an error. */
int weft_model_forward(const weft_model *m, weft_pool *pool, weft_kv *kv, const int32_t *ids,
		       const float *embd, int64_t T, int64_t chunk, float *logits, int all_logits,
		       weft_fwd_extra *extra);

#endif

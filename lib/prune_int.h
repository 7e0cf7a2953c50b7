/* prune_int.h - what the pruning methods (lib/prune_<name>.c) share with
 * the module (prune.c): the unit of tokens a method selects from, the
 * selection it returns, its parameters.  Internal: hidden from libweft.so. */
#ifndef WEFT_PRUNE_INT_H
#define WEFT_PRUNE_INT_H

#include <stdint.h>

#include "prune.h"
#include "registry.h"

#pragma GCC visibility push(hidden)

#define PRUNE_MAX_PARAMS 8
#define PRUNE_MAX_LIST 8

/* A method's parameters: its defaults (the registry line) with the user's
 * values over them. */
typedef struct prune_params {
	int n;
	char name[PRUNE_MAX_PARAMS][24];
	double v[PRUNE_MAX_PARAMS][PRUNE_MAX_LIST];
	int len[PRUNE_MAX_PARAMS];
} prune_params;

/* The first value of parameter `name` (which the method declares). */
double prune_param(const prune_params *p, const char *name);
/* All values of `name`: their count, *v pointing at them. */
int prune_param_list(const prune_params *p, const char *name, const double **v);

/* The tokens a method selects from: the rows of one or more tiles, in
 * order.  Token i is row idx[i] of tile tile[i]. */
typedef struct prune_unit {
	int64_t n, d;
	const float *embd;             /* [n][d] */
	const int32_t *tile, *idx;     /* [n] */
	const weft_embd_tile *tiles;   /* [n_tiles] */
	const int64_t *first;          /* [n_tiles] first token of each tile */
	int n_tiles;
	int tile0;                     /* tiles[0]'s number in the stream, for messages */
	const float *text;             /* [n_text][d] (cdpruner) */
	int64_t n_text;
	int index;                     /* the unit's number, for messages and seeds */
	weft_pool *pool;               /* or NULL */
} prune_unit;

/* Token-level statistics of the unit (errors name the tile and the
 * encode-image option that exports what is missing):
 * saliency at encoder layer `layer` (< 0: from the last), a token summing
 * its patches; attention received at `layer`; keys [n][*dk] (a token:
 * the mean of its patches' keys), malloc'ed.  0 / -1, NULL + error. */
int prune_saliency(const prune_unit *u, int layer, float *out);
int prune_attn_recv(const prune_unit *u, int layer, float *out);
float *prune_keys(const prune_unit *u, int64_t *dk);
/* Token grid side of token i's tile (tokens per row). */
int prune_side(const prune_unit *u, int64_t i);

/* What a method returns: kept tokens (unit indices, any order, unique)
 * and merges: the row kept as token `anchor` becomes the sum of w x token
 * src over its entries (a kept token without entries is copied). */
typedef struct prune_sel {
	int64_t n, cap;
	int32_t *keep;
	int64_t n_merge, cap_merge;
	int32_t *m_anchor, *m_src;
	float *m_w;
} prune_sel;

int prune_sel_keep(prune_sel *s, int64_t i);
int prune_sel_merge(prune_sel *s, int64_t anchor, int64_t src, float w);

/* Helpers the methods share. */
/* Indices of the k largest of v[0..n) (ties: lower index first), in
 * descending order of value, into out[k]. */
void prune_topk(const float *v, int64_t n, int64_t k, int32_t *out);
void prune_topk_d(const double *v, int64_t n, int64_t k, int32_t *out);
/* Dot product in double precision. */
double prune_dot_d(const float *a, const float *b, int64_t d);
/* Unit-norm copy of rows [n][d] (a zero row stays zero), malloc'ed. */
float *prune_normalized(const float *x, int64_t n, int64_t d);
float prune_dot(const float *a, const float *b, int64_t d);
/* Cosine similarities of the rows of x [n][d]: [n][n] float32 (sgemm of
 * the unit-norm rows, row blocks spread over pool), malloc'ed; NULL +
 * error. */
float *prune_gram(const float *x, int64_t n, int64_t d, weft_pool *pool);

/* An embd-stage method: select at most `budget` tokens of u (< u->n). */
typedef int (*prune_select_fn)(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s);

/* An LLM-stage method's state across the drops of one forward pass. */
typedef struct prune_llm_ctx {
	const weft_model *m;
	const prune_params *p;
	int64_t n_vis;                 /* visual tokens of the prompt */
	int64_t budget;                /* visual tokens the first drop keeps */
	const uint8_t *is_vis;         /* [T]: input t is a visual token */
	int64_t T;
	/* a method's own state (sparsevlm: its raters), freed by free() */
	void *state;
	/* the report */
	int n_drops;
	int drop_layer[PRUNE_MAX_LIST];
	int64_t drop_from[PRUNE_MAX_LIST], drop_to[PRUNE_MAX_LIST];
} prune_llm_ctx;

/* An LLM-stage method's hook body: as weft_fwd_drop_fn. */
typedef int (*prune_drop_fn)(prune_llm_ctx *c, const weft_fwd_rows *r, int32_t *keep, int64_t *n_keep);
/* Keep the text rows and the visual rows whose score is among the k best
 * (score[j] for row j; non-visual rows ignored): keep[] ascending. */
int64_t prune_llm_keep_top(const prune_llm_ctx *c, const weft_fwd_rows *r, const float *score, int64_t k,
			   int32_t *keep);
/* The attention row i would give at layer r->layer, from r->x (that
 * layer's keys of rows 0..i and row i's query), averaged over heads:
 * out[r->n].  0 / -1. */
int prune_llm_next_attn_row(const weft_fwd_rows *r, int64_t i, float *out);
/* Visual rows among r's rows. */
int64_t prune_llm_n_vis(const prune_llm_ctx *c, const weft_fwd_rows *r);

/* The drop function and parameters of o's method (an LLM-stage one). */
int prune_lookup_llm(const weft_prune_opts *o, prune_params *p, prune_drop_fn *drop);

#define WEFT_PRUNE_METHOD(ID, name, stage, flags, summary, params, needs) \
	int prune_##name##_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s); \
	int prune_##name##_drop(prune_llm_ctx *c, const weft_fwd_rows *r, int32_t *keep, int64_t *n_keep);
#include "prune_methods.def"
#undef WEFT_PRUNE_METHOD

#pragma GCC visibility pop

#endif

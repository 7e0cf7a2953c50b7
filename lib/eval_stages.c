/* eval_stages.c - eval-interleaved's pruning (--prune) and KV-compression
 * (--kv) stages (eval_run.h): the library calls prune-tokens, encode-image
 * --prune, prefill's in-LLM drop and kvcompress make, run in process on
 * each item. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "eval_run.h"
#include "kvm.h"
#include "prune.h"
#include "util.h"

static weft_eval_stage stage_table[WEFT_EVAL_MAX_STAGES];

static weft_eval_stage *new_stage(weft_eval_run_opts *o)
{
	if (o->stages && o->stages != stage_table) {
		weft_error("stages given twice");
		return NULL;
	}
	if (o->n_stages == WEFT_EVAL_MAX_STAGES) {
		weft_error("at most %d stages", WEFT_EVAL_MAX_STAGES);
		return NULL;
	}
	o->stages = stage_table;
	weft_eval_stage *s = &stage_table[o->n_stages];
	memset(s, 0, sizeof *s);
	return s;
}

static int has_stage(const weft_eval_run_opts *o, const char *name)
{
	for (int i = 0; i < o->n_stages; i++)
		if (strcmp(o->stages[i].name, name) == 0)
			return 1;
	return 0;
}

/* ---- --prune ---- */

typedef struct prune_ctx {
	weft_prune_opts o;
	char *spec;                  /* the copy o's strings point into */
	char params[1024];           /* the method's -P parameters */
	char desc[1024];             /* weft_prune_describe's, recorded */
	int n_out;
	weft_prune_out *out;         /* embd stage: the item's pruned tiles */
	float *text;                 /* cdpruner: the prompt's text embeddings */
	weft_prune_llm *drop;        /* LLM stage: the item's drop */
} prune_ctx;

/* spec's fields into c->o; 0 / -1 + error. */
static int parse_prune(prune_ctx *c)
{
	char *save = NULL, *end;
	c->o.method = strtok_r(c->spec, ":", &save);
	if (!c->o.method) {
		weft_error("no method (METHOD[:keep=N|:ratio=R][:KEY=VALUE...])");
		return -1;
	}
	for (char *kv = strtok_r(NULL, ":", &save); kv; kv = strtok_r(NULL, ":", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq || eq == kv) {
			weft_error("'%s' is not KEY=VALUE", kv);
			return -1;
		}
		*eq = 0;
		const char *v = eq + 1;
		if (strcmp(kv, "keep") == 0) {
			c->o.keep = strtoll(v, &end, 10);
			if (!*v || *end || c->o.keep <= 0) {
				weft_error("keep=%s: %s", v, c->o.keep == 0 && !*end && *v ? "a budget of 0 tokens keeps nothing"
											  : "expected a count of tokens");
				return -1;
			}
			c->o.ratio = 0;
		} else if (strcmp(kv, "ratio") == 0) {
			c->o.ratio = strtod(v, &end);
			if (!*v || *end || !(c->o.ratio > 0 && c->o.ratio <= 1)) {
				weft_error("ratio=%s is not in (0, 1]", v);
				return -1;
			}
			c->o.keep = 0;
		} else if (strcmp(kv, "scope") == 0) {
			if (strcmp(v, "image") == 0) c->o.scope = WEFT_PRUNE_IMAGE;
			else if (strcmp(v, "tile") == 0) c->o.scope = WEFT_PRUNE_TILE;
			else if (strcmp(v, "global") == 0) c->o.scope = WEFT_PRUNE_GLOBAL;
			else {
				weft_error("scope=%s is not image, tile or global", v);
				return -1;
			}
		} else if (strcmp(kv, "positions") == 0) {
			if (strcmp(v, "keep") && strcmp(v, "repack")) {
				weft_error("positions=%s is not keep or repack", v);
				return -1;
			}
			c->o.repack = strcmp(v, "repack") == 0;
		} else {
			const size_t k = strlen(c->params);
			if (k + strlen(kv) + strlen(v) + 3 > sizeof c->params) {
				weft_error("too many parameters");
				return -1;
			}
			snprintf(c->params + k, sizeof c->params - k, "%s%s=%s", k ? "," : "", kv, v);
		}
	}
	c->o.params = c->params;
	return 0;
}

static void prune_end(void *ctx)
{
	prune_ctx *c = ctx;
	for (int i = 0; i < c->n_out; i++)
		weft_prune_out_free(&c->out[i]);
	free(c->out);
	c->out = NULL;
	c->n_out = 0;
	free(c->text);
	c->text = NULL;
	weft_prune_llm_free(c->drop);
	c->drop = NULL;
}

/* An embd-stage method on the item's tiles, as prune-tokens runs it. */
static int prune_tiles(void *ctx, weft_eval_state *s)
{
	prune_ctx *c = ctx;
	if (s->n_tiles == 0)
		return 0;
	weft_prune_opts o = c->o;
	o.pool = s->pool;
	if (strcmp(o.method, "cdpruner") == 0) { /* prune-tokens -m: the prompt's text */
		if (!(c->text = weft_prune_text(s->m, s->voc, s->text->ids, s->text->n_ids, &o.n_text)))
			return -1;
		o.text = c->text;
	}
	if (!(c->out = weft_calloc((size_t)s->n_tiles, sizeof *c->out)))
		return -1;
	if (weft_prune_tiles(&o, s->tiles, s->n_tiles, c->out) != 0)
		return -1;
	c->n_out = s->n_tiles;
	for (int i = 0; i < s->n_tiles; i++)
		if (!c->out[i].passed)
			s->tiles[i] = c->out[i].tile;
	return 0;
}

/* An LLM-stage method: its drop attached to the forward pass, as prefill
 * honours prune-tokens' directive. */
static int prune_llm(void *ctx, weft_eval_state *s)
{
	prune_ctx *c = ctx;
	if (s->prompt->n_rows == 0) /* no visual tokens: prune-tokens writes no directive */
		return 0;
	if (!(c->drop = weft_prune_llm_new(&c->o, s->m, s->prompt)))
		return -1;
	weft_prune_llm_attach(c->drop, s->extra);
	return 0;
}

static int64_t prune_llm_kept(void *ctx)
{
	const prune_ctx *c = ctx;
	return c->drop ? weft_prune_llm_kept(c->drop) : -1;
}

/* flowcut: the encoder prunes (o->flowcut_*); nothing left to do here. */
static int prune_nothing(void *ctx, weft_eval_state *s)
{
	(void)ctx, (void)s;
	return 0;
}

int weft_eval_add_prune(weft_eval_run_opts *o, const char *spec)
{
	prune_ctx *c = weft_calloc(1, sizeof *c);
	weft_eval_stage *s = NULL;
	if (!c || !(c->spec = weft_strndup(spec, strlen(spec))))
		goto fail;
	if (has_stage(o, "prune")) {
		weft_error("one pruning stage per run");
		goto fail;
	}
	if (parse_prune(c) != 0 || weft_prune_check(&c->o) != 0)
		goto fail;
	const int at = weft_prune_stage_of(c->o.method);
	if (at == WEFT_PRUNE_AT_ENCODER && !c->o.keep && !(c->o.ratio > 0)) {
		weft_error("%s: no budget: give keep=N or ratio=R", c->o.method);
		goto fail;
	}
	snprintf(c->desc, sizeof c->desc, "%s", weft_prune_describe(&c->o));
	if (!(s = new_stage(o)))
		goto fail;
	s->name = "prune";
	s->params = c->desc;
	s->ctx = c;
	s->end = prune_end;
	if (at == WEFT_PRUNE_AT_EMBD) {
		s->at = WEFT_EVAL_AT_TILES;
		s->run = prune_tiles;
		o->enc_stats |= weft_prune_encoder_stats(c->o.method); /* WEFT_IMGENC_* */
	} else if (at == WEFT_PRUNE_AT_LLM) {
		s->at = WEFT_EVAL_AT_PROMPT;
		s->run = prune_llm;
		s->visual_kept = prune_llm_kept;
	} else {
		s->at = WEFT_EVAL_AT_TILES;
		s->run = prune_nothing;
		o->flowcut_keep = c->o.keep;
		o->flowcut_ratio = c->o.keep ? 0 : c->o.ratio;
	}
	o->n_stages++;
	return 0;
fail:
	if (c)
		free(c->spec);
	free(c);
	weft_error_prefix("--prune %s", spec);
	return -1;
}

/* ---- --kv ---- */

typedef struct kv_ctx {
	char *spec;
	weft_kvm_opts o;
	char desc[600];
	int32_t *hist;
	float *q_mean, *q_cov;
} kv_ctx;

static void kv_end(void *ctx)
{
	kv_ctx *c = ctx;
	free(c->hist);
	free(c->q_mean);
	free(c->q_cov);
	c->hist = NULL;
	c->q_mean = c->q_cov = NULL;
}

/* The spec on the prefilled cache, with the statistics of the prefill,
 * as kvcompress applies it to prefill's stream. */
static int kv_run(void *ctx, weft_eval_state *s)
{
	kv_ctx *c = ctx;
	const weft_prompt *pr = s->prompt;
	const weft_fwd_extra *x = s->extra;
	const weft_hparams *hp = &s->m->hp;
	enum { QSTAT_SKIP = 4 }; /* prefill --q-stats' */
	weft_kvm_stats st = {.mass = x->mass, .mass_stride = s->kv->cap, .mass_queries = pr->n, .window_q = x->window_q,
			     .n_window = x->n_window};
	if (x->q_sum) {
		const size_t nqs = (size_t)hp->n_layer * hp->n_head * hp->head_dim;
		const int64_t n = pr->n > QSTAT_SKIP ? pr->n - QSTAT_SKIP : 0;
		if (!(c->q_mean = weft_malloc(nqs * sizeof *c->q_mean)) ||
		    !(c->q_cov = weft_malloc(nqs * hp->head_dim * sizeof *c->q_cov)))
			return -1;
		weft_kvm_qstats(hp, x->q_sum, x->q_sq, n, c->q_mean, c->q_cov);
		st.q_mean = c->q_mean, st.q_cov = c->q_cov, st.q_count = n;
	}
	if (!(c->hist = weft_prompt_history(pr)))
		return -1;
	weft_kvm_opts o = c->o;
	o.pool = s->pool;
	return weft_kvm_apply(c->spec, &o, hp, s->kv, &st, c->hist, pr->n_pos, NULL, 0);
}

int weft_eval_add_kv(weft_eval_run_opts *o, const char *spec, double ratio)
{
	kv_ctx *c = weft_calloc(1, sizeof *c);
	weft_eval_stage *s = NULL;
	unsigned needs;
	int n_window;
	if (!c || !(c->spec = weft_strndup(spec, strlen(spec))))
		goto fail;
	c->o = (weft_kvm_opts){.ratio = ratio, .image_ratio = -1}; /* as kvcompress --ratio */
	if (has_stage(o, "kv")) {
		weft_error("one KV stage per run (several methods: --kv A,B)");
		goto fail;
	}
	if (weft_kvm_check(spec, &c->o, NULL) != 0 || weft_kvm_needs(spec, &c->o, &needs, &n_window) != 0 ||
	    !(s = new_stage(o)))
		goto fail;
	snprintf(c->desc, sizeof c->desc, "%s ratio=%g", spec, c->o.ratio);
	s->name = "kv";
	s->params = c->desc;
	s->at = WEFT_EVAL_AT_CACHE;
	s->needs = (needs & WEFT_KVM_NEEDS_MASS ? WEFT_EVAL_NEEDS_MASS : 0) |
		   (needs & WEFT_KVM_NEEDS_WINDOW_Q ? WEFT_EVAL_NEEDS_WINDOW_Q : 0) |
		   (needs & WEFT_KVM_NEEDS_QSTATS ? WEFT_EVAL_NEEDS_QSTATS : 0);
	s->n_window = n_window;
	s->run = kv_run;
	s->ctx = c;
	s->end = kv_end;
	o->n_stages++;
	return 0;
fail:
	if (c)
		free(c->spec);
	free(c);
	weft_error_prefix("--kv %s", spec);
	return -1;
}

void weft_eval_stages_free(weft_eval_run_opts *o)
{
	for (int i = 0; i < o->n_stages; i++) {
		weft_eval_stage *s = (weft_eval_stage *)&o->stages[i];
		if (s->end)
			s->end(s->ctx);
		if (strcmp(s->name, "prune") == 0)
			free(((prune_ctx *)s->ctx)->spec);
		else
			free(((kv_ctx *)s->ctx)->spec);
		free(s->ctx);
	}
	o->n_stages = 0;
	o->stages = NULL;
}

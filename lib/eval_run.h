/* eval_run.h - running benchmark items in process through libweft, as the
 * shell pipeline runs them:
 *
 *   tokenize --chat | encode-image | prefill | decode --greedy
 *
 * The model, its tokenizer and the mmproj are loaded once; each item then
 * goes: chat template (chat.h) -> text and placeholders (textprompt.h) ->
 * images encoded into embd tiles (imgenc.h) -> [AT_TILES stages] ->
 * prompt assembled (prompt.h) -> [AT_PROMPT stages] -> prefill
 * (weft_model_forward into one KV cache, reused from item to item) ->
 * [AT_CACHE stages] -> decode (generate.h), or the likelihood of each
 * option's text given the prompt, from the prompt's cache (restored after
 * each option).
 *
 * Stages are the hook points later methods plug into, one option each:
 * visual-token pruning (prune-tokens) at AT_TILES, directives for the
 * forward pass at AT_PROMPT, KV-cache compression (kvcompress) at
 * AT_CACHE.  A stage that fails fails its item, not the run. */
#ifndef WEFT_EVAL_RUN_H
#define WEFT_EVAL_RUN_H

#include <stdint.h>

#include "embd.h"
#include "eval.h"
#include "image.h"
#include "kernels.h"
#include "kv.h"
#include "model.h"
#include "prompt.h"
#include "sample.h"
#include "textprompt.h"
#include "tokenizer.h"

typedef enum weft_eval_hook {
	WEFT_EVAL_AT_TILES,   /* the item's embd tiles, before the prompt is assembled */
	WEFT_EVAL_AT_PROMPT,  /* the assembled prompt, before prefill */
	WEFT_EVAL_AT_CACHE    /* the prefilled KV cache and next logits, before decode */
} weft_eval_hook;

/* What a stage sees of the item being run. */
typedef struct weft_eval_state {
	const weft_model *m;
	const weft_vocab *voc;
	weft_pool *pool;
	const weft_eval_item *item;
	const weft_text_prompt *text;  /* the tokenized user turn and placeholders */
	/* AT_TILES: the tiles in prompt order (one run of tiles per placeholder).
	 * A stage may lower n_tokens and point embd (and saliency) at memory it
	 * owns until the item ends. */
	weft_embd_tile *tiles;
	int n_tiles;
	weft_prompt *prompt;           /* AT_PROMPT and AT_CACHE */
	weft_kv *kv;                   /* AT_CACHE: compact rows with weft_kv_compact */
	float *logits;                 /* AT_CACHE: the next token's */
	/* AT_PROMPT: the forward pass's extras, for a stage to attach a hook
	 * (an in-LLM drop); AT_CACHE: what the stages' needs asked for */
	weft_fwd_extra *extra;
} weft_eval_state;

#define WEFT_EVAL_NEEDS_MASS 1u     /* prefill accumulates attention mass */
#define WEFT_EVAL_NEEDS_WINDOW_Q 2u /* prefill keeps the last n_window queries */
#define WEFT_EVAL_NEEDS_QSTATS 4u   /* prefill sums the queries (from token 4 on) */

typedef struct weft_eval_stage {
	const char *name;              /* "prune-tokens", "kvcompress" ... */
	const char *params;            /* "method=snapkv ratio=0.5": recorded in the config */
	weft_eval_hook at;
	unsigned needs;                /* WEFT_EVAL_NEEDS_* */
	int n_window;                  /* with NEEDS_WINDOW_Q */
	int (*run)(void *ctx, weft_eval_state *s); /* 0, or -1 + error */
	void *ctx;
	/* optional: after the prefill, the visual tokens the LLM kept (an
	 * in-LLM drop's), for the record; < 0: as assembled */
	int64_t (*visual_kept)(void *ctx);
	void (*end)(void *ctx);        /* optional: the item is over (free its memory) */
} weft_eval_stage;

typedef struct weft_eval_run_opts {
	int threads;                   /* <= 0: all CPUs */
	int64_t ctx;                   /* context limit; <= 0: the model's */
	int64_t chunk;                 /* forward chunk; <= 0: 512 (prefill's) */
	int kv_type;                   /* a weft_kv_type; < 0: F16 */
	int llamacpp;                  /* --numerics llama.cpp (the caller forced the level) */
	const char *tmpl;              /* chat template name; NULL: the GGUF's */
	int no_chat;                   /* the prompt as it is, no template */
	const char *system;            /* system message, or NULL */
	int64_t n_predict;             /* tokens to generate at most */
	weft_sampler_params sp;
	const char *const *stops;
	int n_stops;
	int likelihood;                /* multiple choice by each option's likelihood */
	int ll_sum;                    /* rank by the sum of log-probabilities (default:
					* their mean per token, SEED-Bench-2's loss) */
	int batch;                     /* tiles per encoder call (<= 0: 16) */
	weft_image_opts image;
	int alpha;                     /* -1 by family, 0 white, 1 drop (encode-image's) */
	unsigned enc_stats;            /* encoder statistics to export (imgenc.h --stats) */
	int64_t flowcut_keep;          /* FlowCut in the encoder: patches kept per tile, */
	double flowcut_ratio;          /* or this fraction of them (0, 0: none) */
	const weft_eval_stage *stages;
	int n_stages;
} weft_eval_run_opts;

typedef struct weft_eval_runner weft_eval_runner;

/* Load the model (and mmproj when not NULL) for o.  NULL + error naming
 * the file ("tiny.gguf: no chat template ... choose one with --template"). */
weft_eval_runner *weft_eval_runner_new(const char *model, const char *mmproj, const weft_eval_run_opts *o);
void weft_eval_runner_free(weft_eval_runner *r);
/* Fingerprints (16 hex digits) of the model, its tokenizer and the mmproj
 * ("" without one); the chat template's name ("none"). */
const char *weft_eval_runner_model_fp(const weft_eval_runner *r);
const char *weft_eval_runner_vocab_fp(const weft_eval_runner *r);
const char *weft_eval_runner_mmproj_fp(const weft_eval_runner *r);
const char *weft_eval_runner_template(const weft_eval_runner *r);
int weft_eval_runner_threads(const weft_eval_runner *r);

/* One item's outcome. */
typedef struct weft_eval_out {
	char *error;                   /* the item failed: why (malloc'ed) */
	char *text;                    /* the generated text (malloc'ed) */
	size_t text_len;
	int32_t *tokens;               /* the generated ids */
	int64_t n_tokens;
	const char *stop;              /* "eog", "stop", "length"; "likelihood" */
	int choice;                    /* likelihood: the option chosen, else -1 */
	double *option_ll;             /* likelihood: each option's score */
	int n_options;
	int64_t visual_in, visual_kept, prompt_tokens;
	uint64_t kv_bytes;             /* the cache's bytes at its largest */
	double tokenize_ms, encode_ms, prefill_ms, ttft_ms, decode_ms, total_ms;
} weft_eval_out;

/* Run item it of set s.  0 when it ran (out filled), -1 when it failed
 * (out->error says why; the runner stays usable). */
int weft_eval_run_item(weft_eval_runner *r, const weft_eval_set *s, const weft_eval_item *it, weft_eval_out *out);
void weft_eval_out_free(weft_eval_out *out);

/* ---- the stages of eval-interleaved's options (eval_stages.c) ---- */

/* --prune SPEC: "METHOD[:keep=N|:ratio=R][:scope=image|tile|global]
 * [:positions=keep|repack][:PARAM=VALUE...]", prune-tokens' options (and
 * its -P parameters) for any method of prune.h: an embd-stage method runs
 * on the item's tiles (weft_prune_tiles, with the encoder statistics it
 * needs added to o->enc_stats; cdpruner conditioned on the prompt's text),
 * an LLM-stage one attaches its drop to the forward pass
 * (weft_prune_llm_new), flowcut prunes inside the encoder (o->flowcut_*).
 * The stage is added to o->stages (a static array of
 * WEFT_EVAL_MAX_STAGES).  0, or -1 + error ("--prune: unknown pruning
 * method 'x' (known: ...)"). */
#define WEFT_EVAL_MAX_STAGES 8
int weft_eval_add_prune(weft_eval_run_opts *o, const char *spec);
/* --kv SPEC [--kv-ratio R]: a kvcompress method spec (kvm.h: "snapkv",
 * "snapkv:ratio=0.75", "adakv:scorer=tova,kivi4") with kvcompress's
 * --ratio (the fraction removed by methods without a ratio= or budget=
 * parameter, and duo's share of streaming heads), applied to the prefilled
 * cache before decode or likelihood scoring (weft_kvm_apply).  The prefill
 * collects the statistics the methods need (weft_kvm_needs).  0, or -1 +
 * error. */
int weft_eval_add_kv(weft_eval_run_opts *o, const char *spec, double ratio);
/* Free what the add functions allocated (the stages' contexts). */
void weft_eval_stages_free(weft_eval_run_opts *o);

#endif

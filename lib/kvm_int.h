/* kvm_int.h - internals of the KV-cache methods (kvm.c, kvm_*.c): the run
 * context every method gets, and the helpers they share.  Not installed. */
#ifndef WEFT_KVM_INT_H
#define WEFT_KVM_INT_H

#include <stdint.h>

#include "kvm.h"

#pragma GCC visibility push(hidden)

enum { KVM_EVICT = 1, KVM_HEADWISE = 2, KVM_CHANNELS = 4, KVM_QUANT = 8, KVM_MERGE = 16, KVM_STREAMING = 32 };
enum { KVM_NEED_MASS = 1, KVM_NEED_WINDOW = 2, KVM_NEED_QSTATS = 4 };

#define KVM_MAX_PARAMS 8

enum {
#define WEFT_KV_METHOD(ID, fn, name, flags, needs, summary, params, needs_text) KVM_ID_##ID,
#include "kv_methods.def"
#undef WEFT_KV_METHOD
	KVM_ID_COUNT
};

typedef struct kvm_run kvm_run;

/* Scores of layer l: sc[h * stride + j] for plain row j < len of head h;
 * higher is kept.  0 / -1 + error. */
typedef int (*kvm_score_fn)(kvm_run *r, int l, float *sc, int64_t stride);

typedef struct kvm_def {
	weft_method m;
	int id;
	unsigned flags, needs;
	int (*run)(kvm_run *r);
} kvm_def;

/* One method's application. */
struct kvm_run {
	const kvm_def *def;
	const weft_hparams *hp;
	weft_kv *kv;
	weft_kvm_stats *st;
	const int32_t *hist;
	int64_t n_hist;
	const weft_kvm_opts *o;
	int n_par;                      /* its ":key=value" parameters */
	const char *pkey[KVM_MAX_PARAMS], *pval[KVM_MAX_PARAMS];
	double ratio;                   /* effective (a ratio= parameter wins) */
	int64_t budget;
	double image_ratio;
	int check_only;                 /* weft_kvm_check: parse and check, no change */
	char *notes;
	size_t notes_cap;
};

/* The table (kv_methods.def). */
#define WEFT_KV_METHOD(ID, fn, name, flags, needs, summary, params, needs_text) int weft_kvm_run_##fn(kvm_run *r);
#include "kv_methods.def"
#undef WEFT_KV_METHOD
const kvm_def *weft_kvm_def_named(const char *name);
/* The score function of an eviction method (adakv wraps one), or NULL. */
kvm_score_fn kvm_scorer(const kvm_def *d);
int kvm_score_random(kvm_run *r, int l, float *sc, int64_t stride);
int kvm_score_streamingllm(kvm_run *r, int l, float *sc, int64_t stride);
int kvm_score_knorm(kvm_run *r, int l, float *sc, int64_t stride);
int kvm_score_observed(kvm_run *r, int l, float *sc, int64_t stride);
int kvm_score_snapkv(kvm_run *r, int l, float *sc, int64_t stride);
/* The notes of the methods that keep snapkv's window (snapkv, adakv with
 * its scorer): a head not longer than the window, a budget under it. */
void kvm_snapkv_notes(kvm_run *r);
int kvm_score_tova(kvm_run *r, int l, float *sc, int64_t stride);
int kvm_score_expected_attention(kvm_run *r, int l, float *sc, int64_t stride);
int kvm_score_keydiff(kvm_run *r, int l, float *sc, int64_t stride);

/* ---- parameters and notes ---- */

/* Parameter key as a number (dflt when absent); -1 + error when it does
 * not parse or lies outside lo..hi (*out untouched). */
int kvm_par(const kvm_run *r, const char *key, double dflt, double lo, double hi, double *out);
/* Parameter key as a string, or NULL. */
const char *kvm_par_str(const kvm_run *r, const char *key);
/* Append a note ("snapkv: ...") for the user. */
void kvm_note(kvm_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- rows ---- */

/* Key (kd values) / value (head_dim values) of plain row j of head h of
 * layer l as float32: into buf. */
void kvm_key(const kvm_run *r, int l, int h, int64_t j, float *buf);
void kvm_value(const kvm_run *r, int l, int h, int64_t j, float *buf);
/* Whether row j of head h of layer l is an image row (history -1). */
int kvm_is_image(const kvm_run *r, int l, int h, int64_t j);
/* 0 when layer l holds only plain rows of full keys, else -1 + error
 * naming what (an eviction after quantization, merging ...). */
int kvm_plain_layer(const kvm_run *r, int l, const char *what);

/* ---- eviction ---- */

/* Rows to keep of T in layer l (pyramid budgets), or -1 for the default. */
typedef int64_t (*kvm_keep_fn)(kvm_run *r, int l, int64_t T);
/* Score every layer, keep each head's top rows (image and text rows
 * separately when image_ratio is set), compact.  0 / -1. */
int kvm_evict(kvm_run *r, kvm_score_fn score, kvm_keep_fn keep);
/* Keep plain rows keep[0..n) (increasing) of head h of layer l, with their
 * statistics.  0 / -1. */
int kvm_keep_rows(kvm_run *r, int l, int h, const int32_t *keep, int64_t n);
/* Indices of the n largest of x[0..T) into idx (ties: lower index first;
 * NaN lowest), sorted increasing.  0 / -1 (out of memory). */
int kvm_top(const float *x, int64_t T, int64_t n, int32_t *idx);
/* The rows kept of T by the run's ratio / budget. */
int64_t kvm_n_kept(const kvm_run *r, int64_t T, double ratio);

/* ---- statistics ---- */

/* The last w window queries of layer l ([w][n_head][head_dim]) and the
 * position of the first of them, or NULL + error naming the prefill option
 * when the stream has fewer than w. */
const float *kvm_window(const kvm_run *r, int l, int w, int64_t *pos0);
/* Attention of window query q (head_dim values, at position qpos) over the
 * plain rows of head g of layer l it can see (position <= qpos): out[j]
 * (0 for rows it cannot see), softmax over the visible rows. */
void kvm_attn_row(const kvm_run *r, int l, int g, const float *q, int64_t qpos, double *out);
/* The same for W queries at once (query i: q + i * ldq, at position
 * qpos0 + i) into P [W][T] (T: the head's rows), with one float32 GEMM:
 * what scoring a window costs.  0 / -1 (out of memory). */
int kvm_attn_rows(const kvm_run *r, int l, int g, const float *q, int64_t ldq, int W, int64_t qpos0, float *P);
/* Head g's plain keys as float32 [T][k_dim] (malloc'ed), NULL on error. */
float *kvm_keys(const kvm_run *r, int l, int g);
/* RoPE angle frequency of pair i (theta = pos * freq), and the channels
 * (c0, c1) the pair rotates in the model's layout (adjacent for llama,
 * halves for qwen2). */
double kvm_rope_freq(const weft_hparams *hp, int i);
void kvm_rope_pair(const weft_hparams *hp, int i, int *c0, int *c1);

#pragma GCC visibility pop

#endif

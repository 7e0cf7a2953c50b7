/* kvm.h - KV-cache compression methods (kvcompress, and any in-process
 * caller such as eval-interleaved): eviction by score (uniform across
 * heads, or head-wise budgets), key-channel pruning, quantization,
 * cross-layer merging, applied to a weft_kv in place.
 *
 * Methods form a family (registry.h, lib/kv_methods.def, kvcompress(1)
 * METHODS); a spec names one or more, applied left to right:
 *
 *     "snapkv"  "snapkv,kivi:bits=4"  "adakv:scorer=tova:alpha=0.1"
 *
 * each optionally with ":key=value" parameters from its row's params.
 * Eviction methods remove a fraction `ratio` of each head's rows
 * (kvpress's compression_ratio: keep max(1, int(T * (1 - ratio))) of T)
 * or keep `budget` rows per head; a method may override them with
 * ratio= / budget= parameters.  Rows are always kept in position order.
 *
 * Score-based methods need statistics the prefill that made the cache
 * wrote (weft_kvm_stats, read from the stream by kvstream.c); applying a
 * method without them fails with an error naming the prefill option.
 * Evicting compacts the statistics with the rows, so a cache written back
 * and compressed again by another process gives the same result as one
 * spec with both methods. */
#ifndef WEFT_KVM_H
#define WEFT_KVM_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "kv.h"
#include "model.h"
#include "registry.h"

/* Statistics of the prefill that wrote the cache (NULL / 0: absent). */
typedef struct weft_kvm_stats {
	float *mass;            /* [n_layer][n_head_kv][mass_stride]: attention received
				 * by each head's rows (prefill --mass); compacted with them */
	int64_t mass_stride;
	int64_t mass_queries;   /* queries summed into mass (0: n_past) */
	const float *window_q;  /* [n_layer][n_window][n_head][head_dim]: the last
				 * n_window queries, after RoPE (prefill --window-q) */
	int n_window;
	const float *q_mean;    /* [n_layer][n_head][head_dim]: mean query before RoPE,
				 * tokens 4 on (prefill --q-stats) */
	const float *q_cov;     /* [n_layer][n_head][head_dim][head_dim]: their covariance */
	int64_t q_count;
} weft_kvm_stats;

typedef struct weft_kvm_opts {
	double ratio;           /* fraction of each head's rows removed, in [0, 1) */
	int64_t budget;         /* rows kept per head instead (0: ratio) */
	double image_ratio;     /* < 0: ratio for every row; else the fraction of
				 * image rows (history -1) removed, text rows by ratio */
	uint64_t seed;          /* random */
	weft_pool *pool;        /* threads for scoring (NULL: inline) */
} weft_kvm_opts;

/* The family (for --list and the registry tests). */
const weft_family *weft_kvm_family(void);

/* What spec needs, without applying it: 0, or -1 + an error (unknown
 * method or parameter, bad value, a statistic st lacks: "snapkv needs the
 * last 64 queries: run prefill with --window-q 64", an order that cannot
 * work such as eviction after quantization). */
int weft_kvm_check(const char *spec, const weft_kvm_opts *o, const weft_kvm_stats *st);

/* What spec's methods need from the prefill that makes the cache (for an
 * in-process caller such as eval-interleaved, which runs the forward pass
 * itself): WEFT_KVM_NEEDS_* bits in *needs, and with WINDOW_Q the number
 * of last queries *n_window.  0, or -1 + error (as weft_kvm_check). */
#define WEFT_KVM_NEEDS_MASS 1u      /* attention mass received (prefill --mass) */
#define WEFT_KVM_NEEDS_WINDOW_Q 2u  /* the last n_window queries (prefill --window-q N) */
#define WEFT_KVM_NEEDS_QSTATS 4u    /* query mean and covariance (prefill --q-stats) */
int weft_kvm_needs(const char *spec, const weft_kvm_opts *o, unsigned *needs, int *n_window);

/* Apply spec to kv (a cache of the model with hyper-parameters hp; hist:
 * its n_hist token ids, -1 for image rows; st: statistics, compacted with
 * the rows).  Notes for the user (a budget larger than the cache passed
 * through, a method that changed nothing) go to notes (may be NULL).
 * 0, or -1 + error; on error the cache may be partly compressed. */
int weft_kvm_apply(const char *spec, const weft_kvm_opts *o, const weft_hparams *hp, weft_kv *kv,
		   weft_kvm_stats *st, const int32_t *hist, int64_t n_hist, char *notes, size_t notes_cap);

/* The mean and (population) covariance of the queries from a forward
 * pass's sums (weft_fwd_extra.q_sum, q_sq over n queries), as kvpress
 * computes them: q_mean [n_layer][n_head][head_dim], q_cov
 * [n_layer][n_head][head_dim][head_dim] (zeros when n is 0). */
void weft_kvm_qstats(const weft_hparams *hp, const double *q_sum, const double *q_sq, int64_t n, float *q_mean,
		     float *q_cov);

/* Prefill in bounded KV memory (prefill --kv-budget; kvm_stream.c): run T
 * tokens (ids, or embedding rows embd when ids is NULL) through m into kv in
 * chunks of `chunk`, and after each chunk cut every head back to `budget`
 * rows with spec, whose methods must all stream (random, streamingllm,
 * knorm, observed, h2o, snapkv, tova, keydiff; statistics from the chunk).
 * The cache never holds more than budget + chunk rows per head (*peak_rows:
 * the most any head held).  logits: the last token's.  0, or -1 + error. */
int weft_kvm_prefill_bounded(const weft_model *m, weft_pool *pool, weft_kv *kv, const int32_t *ids, const float *embd,
			     int64_t T, int64_t chunk, float *logits, const char *spec, int64_t budget,
			     const int32_t *hist, int64_t n_hist, int64_t *peak_rows);

/* Rows kept of T by kvpress's rule: max(1, int(T * (1 - ratio))). */
int64_t weft_kvm_n_kept(int64_t T, double ratio);

#endif

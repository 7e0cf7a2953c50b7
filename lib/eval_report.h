/* eval_report.h - eval-interleaved's results: the run file (a JSONL
 * journal: a header line with the configuration, then one record per item
 * as it completes), the summary computed from it, the paired comparison
 * of two runs, the merge of shards, and resuming (man 1 eval-interleaved
 * FILES).
 *
 * Every summary is computed from records as a run file holds them: read
 * back, or (a run's own summary) kept as they were written, every value
 * as it reads back; so a run's own summary, `summary run.jsonl`, and the
 * summary of merged shards go through the same code and agree apart from
 * timings. */
#ifndef WEFT_EVAL_REPORT_H
#define WEFT_EVAL_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "eval.h"
#include "eval_run.h"

/* ---- the configuration (the run file's header) ---- */

typedef struct weft_eval_config {
	const char *kind;              /* "run" or "score" */
	const weft_eval_set *set;
	const char *model, *mmproj;    /* paths (NULL: none) */
	const weft_eval_runner *runner; /* fingerprints and template (NULL for score) */
	const char *preds;             /* score: the predictions file */
	char preds_sha256[65];
	const weft_eval_run_opts *run; /* NULL for score */
	const weft_score_opts *score;
	int metric;                    /* forced metric or -1 */
	const char *mc_prompt;         /* NULL: the readers' defaults */
	int shard_i, shard_n;          /* shard i of n (n = 1: whole) */
} weft_eval_config;

/* The header line (JSON + '\n', malloc'ed): the configuration and its
 * config_id, the SHA-256 of everything that decides the records (dataset,
 * fingerprints, options, stages; not paths, threads or the shard). */
char *weft_eval_header(const weft_eval_config *c);

/* ---- records ---- */

/* One item's record line (JSON + '\n', malloc'ed): out may be NULL for a
 * predictions file (score), error overrides. */
char *weft_eval_record(const weft_eval_item *it, const weft_eval_out *out, const char *prediction, size_t len,
		       const weft_score *sc, const char *error, int64_t rss_kb);

/* A run file read back. */
typedef struct weft_eval_rec {
	int64_t index;
	char *id, *category;
	int failed;
	double score;
	int timed;                     /* has a time object */
	double ttft_ms, encode_ms, prefill_ms, decode_ms, total_ms, tokenize_ms;
	int64_t gen_tokens, prompt_tokens, visual_in, visual_kept, rss_kb;
	uint64_t kv_bytes;
	char *line;                    /* the record as written (no '\n') */
} weft_eval_rec;

typedef struct weft_eval_log {
	char *path;
	char *header;                  /* the header line (no '\n') */
	char config_id[65];
	char dataset_sha256[65];
	int64_t dataset_items;
	int shard_i, shard_n;
	weft_eval_rec *recs;           /* in file order */
	int64_t n;
	size_t cap;                    /* recs allocated */
	int64_t good_bytes;            /* bytes up to the last complete record */
	int torn;                      /* the file ends in an incomplete line */
} weft_eval_log;

/* Read a run file.  A last line cut short (a killed run) is left out and
 * reported in torn / good_bytes; any other bad line is an error ("line 7:
 * not a record").  0 / -1 + error. */
int weft_eval_log_read(weft_eval_log *log, const char *path);
void weft_eval_log_free(weft_eval_log *log);
/* A run file being written, kept in memory (its summary then needs no
 * reading back): log_init with its header line (0 / -1), then each record
 * made by record_kept: weft_eval_record's line, and its record appended to
 * log as the line reads back (no line kept; NULL + error). */
int weft_eval_log_init(weft_eval_log *log, const char *path, const char *header);
char *weft_eval_record_kept(weft_eval_log *log, const weft_eval_item *it, const weft_eval_out *out,
			    const char *prediction, size_t len, const weft_score *sc, const char *error, int64_t rss_kb);

/* Whether item index belongs to shard i of n. */
static inline int weft_eval_in_shard(int64_t index, int i, int n) { return n <= 1 || index % n == i; }
/* Items of a dataset of n_items in shard i of n. */
int64_t weft_eval_shard_items(int64_t n_items, int i, int n);

/* ---- writing a run file ---- */

/* Records are appended with one write(2) each as items complete (a
 * killed run keeps every finished record), and a helper thread
 * fdatasync()s them without holding the run up, at most once a second (a
 * record reaches the disk within about a second of its item; closing
 * syncs the rest). */
typedef struct weft_eval_journal weft_eval_journal;

/* A new run file at path holding header; or, with resume_at >= 0, the
 * existing one cut to its first resume_at bytes (its complete records)
 * and appended to.  NULL + error. */
weft_eval_journal *weft_eval_journal_open(const char *path, const char *header, int64_t resume_at);
/* Append one record line.  0 / -1 + error ("No space left on device"). */
int weft_eval_journal_write(weft_eval_journal *j, const char *line);
/* No more records: the helper thread syncs the rest now, while the
 * caller goes on (optional; close waits for it). */
void weft_eval_journal_finish(weft_eval_journal *j);
/* Sync and close: 0 / -1 + error.  Frees j either way. */
int weft_eval_journal_close(weft_eval_journal *j);

/* ---- summary, comparison, merge ---- */

typedef struct weft_eval_boot {
	int resamples;                 /* >= 1000 */
	uint64_t seed;
} weft_eval_boot;

/* The summary of a run file (JSON text, malloc'ed; NULL + error). */
char *weft_eval_summary(const weft_eval_log *log, const weft_eval_boot *b);
/* Paired comparison of b against a: accuracy difference (b - a) and TTFT
 * ratio (b / a) with bootstrap CIs over the items both ran.  Refuses runs
 * over different datasets or different items. */
char *weft_eval_compare(const weft_eval_log *a, const weft_eval_log *b, const weft_eval_boot *boot);
/* Merge the shards logs[0..n-1] (the same configuration, shards 0..k-1 of
 * k, each complete) into one run file written to out: their header
 * without the shard, the records in dataset order.  0 / -1 + error. */
int weft_eval_merge(weft_eval_log *const *logs, int n, FILE *out);

/* A PNG at png: accuracy (with its 95 % CI) and mean TTFT against the
 * mean visual tokens kept per item (x "visual") or the mean KV-cache bytes
 * per item (x "kv"), one point per summary file, drawn by gnuplot (on
 * PATH; Debian: gnuplot-nox).  Written atomically.  0 / -1 + error. */
int weft_eval_plot(const char *const *summaries, int n, const char *x, const char *title, const char *png);

/* Percentile bootstrap CI of the mean of x[n] (resampled with
 * replacement, b->resamples times, seeded): lo/hi at 2.5 % and 97.5 %
 * (linear interpolation between order statistics, numpy's default). */
void weft_eval_bootstrap_mean(const double *x, int64_t n, const weft_eval_boot *b, double *lo, double *hi);

#endif

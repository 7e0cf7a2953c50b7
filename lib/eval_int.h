/* eval_int.h - internal: what the eval files share (text helpers with
 * Python's semantics for the metrics, the readers' interface). */
#ifndef WEFT_EVAL_INT_H
#define WEFT_EVAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "eval.h"

/* Internal: hidden from libweft.so's exports. */
#pragma GCC visibility push(hidden)

/* ---- growable strings (eval_text.c) ---- */

typedef struct ev_wstr {
	char *s;               /* NUL-terminated once anything was added */
	size_t n, cap;
	int oom;               /* an allocation failed: s is no longer complete */
} ev_wstr;

void ev_wstr_addn(ev_wstr *w, const char *s, size_t n);
void ev_wstr_add(ev_wstr *w, const char *s);
void ev_wstr_reserve(ev_wstr *w, size_t k); /* room for k more bytes */
void ev_wstr_addf(ev_wstr *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Take the string (never NULL unless out of memory): "" when empty. */
char *ev_wstr_take(ev_wstr *w);

/* ---- text with Python's semantics ---- */

/* Python 3's str.isspace for a code point. */
int ev_py_isspace(uint32_t c);
/* Decode one UTF-8 sequence at s (< end): the code point, *k its length
 * (an invalid byte decodes as itself, length 1). */
uint32_t ev_utf8_next(const char *s, const char *end, int *k);
/* Python 3's str.lower(): the simple lower case of Python's own Unicode
 * database (wt_uni_lower, the tokenizer's table made from str.lower), and
 * U+0130 as i + U+0307; the context-dependent final sigma is not (capital
 * sigma always becomes U+03C3).  Invalid UTF-8 becomes U+FFFD first.
 * malloc'ed, *out_len set; NULL on out of memory. */
char *ev_py_lower(const char *s, size_t n, size_t *out_len);
/* Python 3's str.strip() (Unicode whitespace): the span [*b, *e). */
void ev_py_strip_ws(const char *s, size_t n, size_t *b, size_t *e);
/* Python 3's len(str.split()) */
size_t ev_py_count_words(const char *s, size_t n);
/* " ".join(str.split()) (malloc'ed, NUL-terminated). */
char *ev_py_join_words(const char *s, size_t n, size_t *out_len);
/* Code points of s (malloc'ed), *n set. */
uint32_t *ev_utf8_codepoints(const char *s, size_t len, size_t *n);
/* Last occurrence of needle[k] in s[n] (byte offset), -1 none: str.rfind. */
int64_t ev_mem_rfind(const char *s, size_t n, const char *needle, size_t k);
/* 1 when needle occurs in s[n]. */
int ev_mem_has(const char *s, size_t n, const char *needle, size_t k);
/* A copy of s[n] that is valid UTF-8: invalid bytes become U+FFFD. */
char *ev_utf8_sanitize(const char *s, size_t n, size_t *out_len);

/* ---- readers (bench_*.c) ---- */

/* What a reader works with: the file's bytes, the set being filled, the
 * options, and an item appender. */
typedef struct weft_eval_rd {
	weft_eval_set *set;
	const weft_eval_read_opts *o;
	const char *data;      /* the whole file (NUL-terminated) */
	size_t len;
	size_t cap;            /* items allocated */
} weft_eval_rd;

/* A new zeroed item at the end of the set (index set; line given), or
 * NULL on out of memory. */
weft_eval_item *ev_rd_new_item(weft_eval_rd *r, int64_t line);
/* Record a per-item error (printf-style; the first one stays). */
void ev_item_error(weft_eval_item *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Remember an unknown field name (once). */
void ev_rd_unknown(weft_eval_rd *r, const char *key);
/* An image file path relative to the dataset's directory. */
int ev_item_add_path(weft_eval_rd *r, weft_eval_item *it, const char *rel);
/* Placeholders: rewrite "<image>" as numbered "<image N>" (counting from
 * the highest number seen before), and check that the numbers used are
 * exactly 1..n_images (else an item error naming the mismatch). */
int ev_item_number_placeholders(weft_eval_item *it, char **text);
int ev_item_check_placeholders(weft_eval_item *it);
/* The gold option from an answer letter (item error when outside the
 * options), and the default metric. */
void ev_item_set_gold_letter(weft_eval_item *it, const char *letter);
/* The prompt "question\nA. opt\nB. opt...\n\ninstruction" that the
 * MMMU-style readers build (lmms-eval's layout). */
char *ev_prompt_with_choices(const char *question, char *const *choices, int n, const char *instruction);
/* A string value of JSON (strings as they are, numbers printed), malloc'ed;
 * NULL when v is neither. */
char *ev_json_text(const json_t *v);
/* Python literal list "['a', "b"]" (as MMMU's HF options): its strings.
 * 0, or -1 with an error. */
int ev_py_list_parse(const char *s, char ***out, int *n);
/* JSONL driver: calls line(r, obj, it) for each line holding a JSON
 * object; a malformed line becomes an item with an error. */
int ev_rd_jsonl(weft_eval_rd *r, void (*line)(weft_eval_rd *r, json_t *obj, weft_eval_item *it));
/* Mark JSON keys not in known[] (NULL-terminated) unknown. */
void ev_rd_check_keys(weft_eval_rd *r, json_t *obj, const char *const *known);

/* The readers, from bench_readers.def: read the whole file into r->set;
 * 0 or -1 + error for a file-level problem.  detect: 1 when a JSON object
 * (the first line) looks like this format (JSONL readers). */
#define WEFT_BENCH_READER(ID, name, summary) \
	int ev_bench_read_##name(weft_eval_rd *r); \
	int ev_bench_detect_##name(const json_t *first);
#include "bench_readers.def"
#undef WEFT_BENCH_READER

/* ---- metrics ---- */
int ev_metric_mc_score(const weft_eval_item *it, const char *pred, size_t len, const weft_score_opts *o,
		    weft_score *out);

/* ---- bootstrap (eval_summary.c) ---- */

/* Percentile bootstrap CI (2.5 %, 97.5 %, numpy's linear percentiles) of
 * a statistic of x[n] (and y[n], paired: the same draw for both):
 * mean(x), mean(y - x) or sum(y) / sum(x); b->resamples draws of n
 * indices from splitmix64 seeded with b->seed.  NaN when n is 0. */
enum { EV_STAT_MEAN, EV_STAT_DIFF, EV_STAT_RATIO };
struct weft_eval_boot;
void ev_bootstrap(const double *x, const double *y, int64_t n, int stat, const struct weft_eval_boot *b, double *lo,
		  double *hi);

/* ---- hashing ---- */
void ev_sha256(const void *data, size_t len, unsigned char out[32]);
void ev_sha256_hex(const void *data, size_t len, char out[65]);

#pragma GCC visibility pop

#endif

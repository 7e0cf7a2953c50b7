/* eval.h - benchmark items for eval-interleaved: one item model, the
 * readers that fill it from each input format, and the metrics that score
 * a prediction against an item (man 1 eval-interleaved, man 5 weft-bench).
 *
 * Readers are a method family (registry.h, lib/bench_readers.def): weft's
 * own JSONL, MMMU-style JSONL, MuirBench-style JSONL, VLMEvalKit TSV.
 * Metrics are another (lib/metrics.def): mc, vqa, exact, anls; and the
 * multiple-choice answer extraction rules a third (also in metrics.def):
 * mmmu (MMMU's official parse_multi_choice_response), lmms (lmms-eval's),
 * mmmu-pro (MMMU-Pro's evaluate.py).
 *
 * Every item's prompt is one text, the user turn, holding "<image N>"
 * placeholders for its images (N from 1); a reader that gets "<image>"
 * placeholders or ordered text/image parts numbers them.  A problem with
 * one item (a count mismatch, an answer letter outside the options, a
 * malformed line) is recorded in the item's error and the set goes on;
 * problems with the whole file (unreadable, not the format) fail the read. */
#ifndef WEFT_EVAL_H
#define WEFT_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* ---- the item model ---- */

#define WEFT_EVAL_MAX_CHOICES 26 /* A .. Z */

typedef enum weft_eval_image_kind {
	WEFT_EVAL_IMAGE_PATH,   /* a file */
	WEFT_EVAL_IMAGE_BASE64  /* base64 bytes in the dataset file (TSV) */
} weft_eval_image_kind;

typedef struct weft_eval_image {
	weft_eval_image_kind kind;
	char *path;            /* PATH: resolved against the dataset's directory */
	int64_t off, len;      /* BASE64: the cell's bytes in the dataset file */
} weft_eval_image;

typedef struct weft_eval_item {
	int64_t index;         /* position in the dataset, from 0 */
	int64_t line;          /* line (JSONL) or row (TSV) of the file, from 1 */
	char *id, *category;   /* category "" when the format has none */
	int metric;            /* a WEFT_METRIC_* */
	char *prompt;          /* the user turn, "<image N>" placeholders */
	weft_eval_image *images;
	int n_images;
	char **choices;        /* option texts (A, B, ...) */
	int n_choices;
	char **answers;        /* references (vqa: the annotators' answers) */
	int n_answers;
	int gold;              /* mc: the gold option's index; -1 otherwise */
	char *error;           /* the reader's per-item error, or NULL */
} weft_eval_item;

/* A dataset read into memory. */
typedef struct weft_eval_set {
	char *path, *dir;      /* the file, and the directory images are relative to */
	const char *format;    /* the reader's name */
	char sha256[65];       /* of the file's bytes, hex */
	weft_eval_item *items;
	int64_t n;
	char **unknown;        /* fields no reader rule uses, each once, in order met */
	int n_unknown;
} weft_eval_set;

typedef struct weft_eval_read_opts {
	const char *format;    /* a reader's name; NULL: detect (see weft-bench(5)) */
	int metric;            /* a WEFT_METRIC_* for every item; -1: the items' own */
	const char *mc_prompt; /* instruction after the options, for the readers that
				* list them (NULL: WEFT_EVAL_MC_PROMPT) */
} weft_eval_read_opts;

#define WEFT_EVAL_MC_PROMPT "Answer with the option's letter from the given choices directly."

/* Read the dataset at path into s (zeroed first).  0, or -1 with an error
 * naming the file ("not a TSV file with a question column", "duplicate id
 * 'x' (lines 3 and 9)", ...).  Per-item problems land in items[i].error. */
int weft_eval_read(weft_eval_set *s, const char *path, const weft_eval_read_opts *o);
void weft_eval_set_free(weft_eval_set *s);
/* The readers (registry.h). */
const weft_family *weft_eval_readers(void);

/* The bytes of image im of set s (a file's contents, or a TSV cell's
 * decoded base64), malloc'ed; NULL + error ("image 2: bad base64 at
 * character 17"). */
unsigned char *weft_eval_image_bytes(const weft_eval_set *s, const weft_eval_image *im, size_t *len);

/* ---- metrics ---- */

enum weft_metric_id {
#define WEFT_METRIC(ID, name, summary) WEFT_METRIC_##ID,
#define WEFT_MC_EXTRACT(ID, name, summary)
#include "metrics.def"
#undef WEFT_METRIC
#undef WEFT_MC_EXTRACT
	WEFT_METRIC_COUNT
};

enum weft_mc_extract_id {
#define WEFT_METRIC(ID, name, summary)
#define WEFT_MC_EXTRACT(ID, name, summary) WEFT_MC_##ID,
#include "metrics.def"
#undef WEFT_METRIC
#undef WEFT_MC_EXTRACT
	WEFT_MC_COUNT
};

const weft_family *weft_metrics(void);
const weft_family *weft_mc_extractors(void);
/* Metric / extractor by name: its id, or -1 with "unknown metric 'x'
 * (known: ...)". */
int weft_metric_find(const char *name);
int weft_mc_extract_find(const char *name);
const char *weft_metric_name(int metric);
const char *weft_mc_extract_name(int mode);

/* How a prediction is scored. */
typedef struct weft_score_opts {
	int extract;           /* mc: a WEFT_MC_* rule */
	int random_fallback;   /* mc: an unparsed answer becomes a seeded random
				* option (to reproduce published numbers) */
	uint64_t seed;         /* for the fallback, with the item's id */
} weft_score_opts;

typedef struct weft_score {
	double score;          /* 0 .. 1 */
	char *extracted;       /* mc: the letter ("" unparsed); else the normalised
				* prediction (malloc'ed) */
	const char *rule;      /* what matched: "paren", "space", "period",
				* "content", "answer-line", "random", "none"
				* (mc); the metric's name otherwise */
} weft_score;

/* Score prediction (UTF-8, len bytes) against item it.  0, or -1 with an
 * error (out of memory); free out->extracted. */
int weft_metric_score(const weft_eval_item *it, const char *prediction, size_t len, const weft_score_opts *o,
		      weft_score *out);

/* Score option `choice` (chosen by likelihood) of mc item it: rule
 * "likelihood".  0 / -1 (out of memory). */
int weft_metric_score_choice(const weft_eval_item *it, int choice, weft_score *out);

/* A predictions file (JSONL, one {"id": ..., "prediction": ...} per line;
 * "response" or "text" also name the prediction) matched to the items of
 * s by id: preds[i] / lens[i] for item i (malloc'ed), and the file's
 * SHA-256.  -1 + error naming the line for a malformed line, an id not in
 * s, an id given twice, or an item of s without a prediction. */
int weft_eval_read_preds(const weft_eval_set *s, const char *path, char ***preds, size_t **lens, char sha256[65]);

/* The option a multiple-choice response names under rule mode: its index,
 * or -1 when none (rule "none"; or "random" with random_fallback).  *rule
 * says what matched. */
int weft_mc_extract(int mode, const char *response, size_t len, char *const *choices, int n_choices,
		    const weft_score_opts *o, const char *id, const char **rule);

/* Python's random.Random(seed).choice over n options (MT19937 seeded as
 * CPython seeds an int, then _randbelow): the option's index. */
int weft_py_random_choice(uint64_t seed, int n);

/* VQAv2's official accuracy (vqaEval.py): the prediction normalised
 * (punctuation, digits, articles, contractions), the references given
 * punctuation processing when they disagree, mean over each reference left
 * out of min(1, matches among the others / 3).  *norm gets the normalised
 * prediction (malloc'ed) when not NULL.  -1 on out of memory. */
double weft_vqa_accuracy(const char *pred, size_t len, char *const *answers, int n, char **norm);
/* ANLS (threshold 0.5) of pred against the best of answers. */
double weft_anls(const char *pred, size_t len, char *const *answers, int n);
/* exact: 1 when the normalised prediction equals a normalised answer. */
double weft_exact_match(const char *pred, size_t len, char *const *answers, int n, char **norm);

#endif

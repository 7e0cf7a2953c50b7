/* eval_summary.c - what a run file adds up to: the summary (accuracy with
 * a bootstrap CI, per category, costs and timings), the paired comparison
 * of two runs, and the merge of shards (eval_report.h). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "eval_report.h"
#include "util.h"

/* ---- bootstrap ---- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n): the high half of a 64 x 64-bit product. */
static int64_t draw(uint64_t *s, int64_t n) { return (int64_t)(((unsigned __int128)splitmix64(s) * (uint64_t)n) >> 64); }

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* numpy.percentile's default (linear) on sorted v[n]. */
static double percentile(const double *v, int n, double p)
{
	const double h = (n - 1) * p / 100.0;
	const int lo = (int)floor(h);
	return lo + 1 < n ? v[lo] + (h - lo) * (v[lo + 1] - v[lo]) : v[n - 1];
}

void ev_bootstrap(const double *x, const double *y, int64_t n, int stat, const weft_eval_boot *b, double *lo,
		      double *hi)
{
	*lo = *hi = NAN;
	const int B = b->resamples > 0 ? b->resamples : 1000;
	double *v = n ? weft_malloc((size_t)B * sizeof *v) : NULL;
	if (!v)
		return;
	uint64_t s = b->seed;
	for (int k = 0; k < B; k++) {
		double sx = 0, sy = 0;
		for (int64_t i = 0; i < n; i++) {
			const int64_t j = draw(&s, n);
			sx += x[j];
			sy += y ? y[j] : 0;
		}
		v[k] = stat == EV_STAT_MEAN ? sx / n : stat == EV_STAT_DIFF ? (sy - sx) / n : sy / sx;
	}
	qsort(v, (size_t)B, sizeof *v, cmp_double);
	*lo = percentile(v, B, 2.5);
	*hi = percentile(v, B, 97.5);
	free(v);
}

void weft_eval_bootstrap_mean(const double *x, int64_t n, const weft_eval_boot *b, double *lo, double *hi)
{
	ev_bootstrap(x, NULL, n, EV_STAT_MEAN, b, lo, hi);
}

/* ---- summary ---- */

static int cmp_rec(const void *a, const void *b)
{
	const weft_eval_rec *x = *(weft_eval_rec *const *)a, *y = *(weft_eval_rec *const *)b;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The log's records by index (pointers into it, malloc'ed). */
static weft_eval_rec **sorted(const weft_eval_log *log)
{
	weft_eval_rec **v = weft_malloc(((size_t)log->n + 1) * sizeof *v);
	if (!v)
		return NULL;
	for (int64_t i = 0; i < log->n; i++)
		v[i] = &log->recs[i];
	qsort(v, (size_t)log->n, sizeof *v, cmp_rec);
	return v;
}

static json_t *ci(double lo, double hi) { return isnan(lo) ? json_null() : json_pack("[f,f]", lo, hi); }

static double median(double *v, int64_t n)
{
	if (!n)
		return NAN;
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static json_t *real_or_null(double x) { return isnan(x) || isinf(x) ? json_null() : json_real(x); }

/* Per category: n, failed, accuracy (categories in order of first sight
 * in index order). */
static json_t *categories(weft_eval_rec **v, int64_t n)
{
	json_t *c = json_object();
	for (int64_t i = 0; i < n; i++) {
		json_t *e = json_object_get(c, v[i]->category);
		if (!e) {
			e = json_pack("{s:I, s:I, s:f}", "n", (json_int_t)0, "failed", (json_int_t)0, "sum", 0.0);
			json_object_set_new(c, v[i]->category, e);
		}
		json_object_set_new(e, "n", json_integer(json_integer_value(json_object_get(e, "n")) + 1));
		json_object_set_new(e, "failed", json_integer(json_integer_value(json_object_get(e, "failed")) + v[i]->failed));
		json_object_set_new(e, "sum", json_real(json_real_value(json_object_get(e, "sum")) + v[i]->score));
	}
	const char *k;
	json_t *e;
	json_object_foreach(c, k, e) {
		const double acc = json_real_value(json_object_get(e, "sum")) / (double)json_integer_value(json_object_get(e, "n"));
		json_object_del(e, "sum");
		json_object_set_new(e, "accuracy", json_real(acc));
	}
	return c;
}

/* Timings (the part of a summary that varies between runs). */
static json_t *timings(weft_eval_rec **v, int64_t n)
{
	double *ttft = weft_malloc(((size_t)n + 1) * sizeof *ttft), *pre = weft_malloc(((size_t)n + 1) * sizeof *pre);
	double s_ttft = 0, s_enc = 0, s_pre = 0, s_dec = 0, s_tot = 0, s_tok = 0;
	int64_t k = 0, gen = 0, prompt = 0, rss = 0;
	for (int64_t i = 0; ttft && pre && i < n; i++) {
		const weft_eval_rec *r = v[i];
		if (!r->timed)
			continue;
		ttft[k] = r->ttft_ms;
		pre[k++] = r->prefill_ms;
		s_ttft += r->ttft_ms, s_enc += r->encode_ms, s_pre += r->prefill_ms, s_dec += r->decode_ms;
		s_tot += r->total_ms, s_tok += r->tokenize_ms;
		gen += r->gen_tokens;
		prompt += r->prompt_tokens;
		rss = r->rss_kb > rss ? r->rss_kb : rss;
	}
	json_t *t = json_object();
	if (k) {
		const double pipeline = s_tok + s_enc + s_pre + s_dec;
		json_object_set_new(t, "items_timed", json_integer(k));
		json_object_set_new(t, "ttft_ms", json_pack("{s:o, s:o}", "mean", real_or_null(s_ttft / k), "median",
							    real_or_null(median(ttft, k))));
		json_object_set_new(t, "prefill_ms", json_pack("{s:o, s:o}", "mean", real_or_null(s_pre / k), "median",
							       real_or_null(median(pre, k))));
		json_object_set_new(t, "encode_ms_mean", real_or_null(s_enc / k));
		json_object_set_new(t, "decode_ms_mean", real_or_null(s_dec / k));
		json_object_set_new(t, "prefill_tokens_per_s", real_or_null(prompt / (s_pre / 1e3)));
		json_object_set_new(t, "decode_tokens_per_s", real_or_null(gen / (s_dec / 1e3)));
		json_object_set_new(t, "items_per_s", real_or_null(k / (s_tot / 1e3)));
		json_object_set_new(t, "harness_ms", real_or_null(s_tot - pipeline));
		json_object_set_new(t, "peak_rss_kb", json_integer(rss));
	}
	free(ttft);
	free(pre);
	return t;
}

char *weft_eval_summary(const weft_eval_log *log, const weft_eval_boot *b)
{
	weft_eval_rec **v = sorted(log);
	double *score = weft_malloc(((size_t)log->n + 1) * sizeof *score);
	json_error_t err;
	json_t *h = json_loads(log->header, 0, &err);
	char *out = NULL;
	if (!v || !score || !h)
		goto out;
	int64_t failed = 0, vin = 0, vkept = 0, prompt = 0, gen = 0, ran = 0;
	uint64_t kv_max = 0;
	double sum = 0, sum_ok = 0, kv_sum = 0;
	for (int64_t i = 0; i < log->n; i++) {
		const weft_eval_rec *r = v[i];
		score[i] = r->score;
		sum += r->score;
		failed += r->failed;
		if (r->failed)
			continue;
		sum_ok += r->score;
		ran++;
		vin += r->visual_in, vkept += r->visual_kept, prompt += r->prompt_tokens, gen += r->gen_tokens;
		kv_sum += (double)r->kv_bytes;
		kv_max = r->kv_bytes > kv_max ? r->kv_bytes : kv_max;
	}
	const int64_t n = log->n, expect = weft_eval_shard_items(log->dataset_items, log->shard_i, log->shard_n);
	double lo, hi;
	ev_bootstrap(score, NULL, n, EV_STAT_MEAN, b, &lo, &hi);
	json_t *s = json_pack("{s:i, s:s, s:O, s:s}", "weft_eval_summary", 1, "config_id", log->config_id, "config",
			      json_object_get(h, "config"), "dataset_sha256", log->dataset_sha256);
	json_object_set_new(s, "items", json_integer(expect));
	json_object_set_new(s, "done", json_integer(n));
	json_object_set_new(s, "failed", json_integer(failed));
	json_object_set_new(s, "complete", json_boolean(n == expect));
	json_object_set_new(s, "accuracy", real_or_null(n ? sum / n : NAN));
	json_object_set_new(s, "accuracy_ci95", ci(lo, hi));
	json_object_set_new(s, "accuracy_ran", real_or_null(ran ? sum_ok / ran : NAN));
	json_object_set_new(s, "bootstrap", json_pack("{s:i, s:I}", "resamples", b->resamples, "seed", (json_int_t)b->seed));
	json_object_set_new(s, "categories", categories(v, n));
	json_object_set_new(s, "cost", json_pack("{s:o, s:o, s:o, s:o, s:o, s:I}", "visual_tokens_mean",
						 real_or_null(ran ? (double)vin / ran : NAN), "visual_kept_mean",
						 real_or_null(ran ? (double)vkept / ran : NAN), "prompt_tokens_mean",
						 real_or_null(ran ? (double)prompt / ran : NAN), "gen_tokens_mean",
						 real_or_null(ran ? (double)gen / ran : NAN), "kv_bytes_mean",
						 real_or_null(ran ? kv_sum / ran : NAN), "kv_bytes_max", (json_int_t)kv_max));
	json_object_set_new(s, "run", json_pack("{s:O, s:O, s:O, s:O}", "paths", json_object_get(h, "paths"), "threads",
						json_object_get(h, "threads"), "shard", json_object_get(h, "shard"),
						"version", json_object_get(h, "version")));
	json_object_set_new(s, "time", timings(v, n));
	out = json_dumps(s, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	json_decref(s);
out:
	if (!out)
		weft_error("out of memory");
	json_decref(h);
	free(v);
	free(score);
	return out;
}

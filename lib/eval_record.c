/* eval_record.c - the run file: its header (the configuration), the item
 * records, and reading one back (eval_report.h; the format is in man 1
 * eval-interleaved FILES). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "eval_int.h"
#include "eval_report.h"
#include "kv.h"
#include "util.h"

/* ---- header ---- */

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *run_options(const weft_eval_run_opts *o)
{
	json_t *stops = json_array(), *stages = json_array();
	for (int i = 0; i < o->n_stops; i++)
		json_array_append_new(stops, json_string(o->stops[i]));
	static const char *const hooks[] = {"tiles", "prompt", "cache"};
	for (int i = 0; i < o->n_stages; i++)
		json_array_append_new(stages, json_pack("{s:s, s:s, s:s}", "name", o->stages[i].name, "params",
							o->stages[i].params ? o->stages[i].params : "", "at",
							hooks[o->stages[i].at]));
	return json_pack("{s:s, s:I, s:f, s:i, s:f, s:f, s:f, s:i, s:I, s:o, s:I, s:I, s:s, s:s, s:o, s:s, s:I, s:i, "
			 "s:b, s:o}",
			 "scoring", o->likelihood ? "likelihood" : "generate", "n_predict", (json_int_t)o->n_predict,
			 "temp", (double)o->sp.temp, "top_k", o->sp.top_k, "top_p", (double)o->sp.top_p, "min_p",
			 (double)o->sp.min_p, "repeat_penalty", (double)o->sp.repeat_penalty, "repeat_last_n",
			 o->sp.repeat_last_n, "seed", (json_int_t)o->sp.seed, "stops", stops, "ctx", (json_int_t)o->ctx,
			 "chunk", (json_int_t)(o->chunk > 0 ? o->chunk : 512), "kv_type",
			 weft_kv_type_name(o->kv_type >= 0 ? (weft_kv_type)o->kv_type : WEFT_KV_F16), "numerics",
			 o->llamacpp ? "llama.cpp" : "weft", "system", str_or_null(o->system), "ll_norm",
			 o->ll_sum ? "sum" : "mean", "max_pixels", (json_int_t)o->image.max_pixels, "alpha", o->alpha,
			 "exif", !(o->image.flags & WEFT_IMAGE_NO_EXIF), "stages", stages);
}

char *weft_eval_header(const weft_eval_config *c)
{
	const weft_eval_runner *r = c->runner;
	json_t *cfg = json_pack("{s:s, s:s, s:s, s:o, s:o}", "kind", c->kind, "dataset_sha256", c->set->sha256, "format",
				c->set->format, "metric", str_or_null(c->metric >= 0 ? weft_metric_name(c->metric) : NULL),
				"mc_prompt", str_or_null(c->mc_prompt));
	json_object_set_new(cfg, "mc_extract", json_string(weft_mc_extract_name(c->score->extract)));
	json_object_set_new(cfg, "random_fallback", c->score->random_fallback ? json_integer((json_int_t)c->score->seed)
									 : json_false());
	if (r) {
		json_object_set_new(cfg, "model", json_string(weft_eval_runner_model_fp(r)));
		json_object_set_new(cfg, "vocab", json_string(weft_eval_runner_vocab_fp(r)));
		json_object_set_new(cfg, "mmproj", c->mmproj ? json_string(weft_eval_runner_mmproj_fp(r)) : json_null());
		json_object_set_new(cfg, "template", json_string(weft_eval_runner_template(r)));
	}
	if (c->run)
		json_object_set_new(cfg, "options", run_options(c->run));
	if (c->preds)
		json_object_set_new(cfg, "preds_sha256", json_string(c->preds_sha256));
	char *canon = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	char id[65] = "";
	if (canon)
		ev_sha256_hex(canon, strlen(canon), id);
	free(canon);
	json_t *paths = json_pack("{s:s, s:o, s:o, s:o}", "dataset", c->set->path, "model", str_or_null(c->model),
				  "mmproj", str_or_null(c->mmproj), "preds", str_or_null(c->preds));
	json_t *h = json_pack("{s:i, s:s, s:s, s:o, s:I, s:[i,i], s:o, s:o}", "weft_eval", 1, "version", WEFT_VERSION,
			      "config_id", id, "config", cfg, "dataset_items", (json_int_t)c->set->n, "shard",
			      c->shard_i, c->shard_n > 0 ? c->shard_n : 1, "paths", paths, "threads",
			      r ? json_integer(weft_eval_runner_threads(r)) : json_null());
	char *s = h ? json_dumps(h, JSON_COMPACT) : NULL;
	json_decref(h);
	if (!s) {
		weft_error("out of memory");
		return NULL;
	}
	ev_wstr w = {.s = s, .n = strlen(s), .cap = strlen(s) + 1};
	ev_wstr_add(&w, "\n");
	return ev_wstr_take(&w);
}

/* ---- records ---- */

/* The record is written directly (a record per item: jansson's object
 * building and dumping cost more than the harness's whole budget), in the
 * bytes jansson would write: keys in order, strings escaped as json_dumps
 * escapes them (", \, control characters; UTF-8 as is, invalid sequences
 * replaced by U+FFFD first), reals as jsonp_dtostr prints them. */
static void put_str(ev_wstr *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	ev_wstr_addn(w, "\"", 1);
	size_t run = 0; /* bytes copied as they are */
	for (size_t i = 0; i < n; i++) {
		const unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		ev_wstr_addn(w, s + run, i - run);
		run = i + 1;
		char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
		size_t k = 2;
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default: k = 6;
		}
		ev_wstr_addn(w, e, k);
	}
	ev_wstr_addn(w, s + run, n - run);
	ev_wstr_addn(w, "\"", 1);
}

/* ASCII but NUL: written as it is (no UTF-8 repair needed) */
static int plain_ascii(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (unsigned char)s[i] - 1u < 0x7fu)
		i++;
	return i == n;
}

static void put_text(ev_wstr *w, const char *s, size_t n)
{
	if (plain_ascii(s, n)) {
		put_str(w, s, n);
		return;
	}
	size_t k;
	char *v = ev_utf8_sanitize(s, n, &k);
	if (v)
		put_str(w, v, k);
	else
		w->oom = 1;
	free(v);
}

/* %PRId64 by hand: a record has a number per generated token, and
 * snprintf's were a third of the record's cost */
static void put_int(ev_wstr *w, int64_t v)
{
	char b[24], *p = b + sizeof b;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	ev_wstr_addn(w, p, (size_t)(b + sizeof b - p));
}

/* jansson's jsonp_dtostr: %.*g, ".0" when it reads as an integer, no '+'
 * or leading zeros in the exponent (values are finite: json_real refuses
 * others) */
static void put_real(ev_wstr *w, double v, int precision, double *back)
{
	char b[64];
	int k = snprintf(b, sizeof b - 3, "%.*g", precision, v);
	if (k < 0 || k >= (int)sizeof b - 3) {
		w->oom = 1;
		return;
	}
	if (!strchr(b, '.') && !strchr(b, 'e'))
		memcpy(b + k, ".0", 3), k += 2;
	char *e = strchr(b, 'e');
	if (e) {
		char *start = e + 1, *end = start + 1;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, (size_t)(b + k - end) + 1);
			k -= (int)(end - start);
		}
	}
	if (back) /* the value as the text reads back (jansson: strtod) */
		*back = strtod(b, NULL);
	ev_wstr_addn(w, b, (size_t)k);
}

static void put_key(ev_wstr *w, const char *k)
{
	ev_wstr_addn(w, ",\"", 2);
	ev_wstr_add(w, k);
	ev_wstr_addn(w, "\":", 2);
}

/* The record line; back[7], if given, gets its timings as they read back. */
static char *record(const weft_eval_item *it, const weft_eval_out *out, const char *prediction, size_t len,
		    const weft_score *sc, const char *error, int64_t rss_kb, double *back)
{
	const int failed = error != NULL, ok = !failed && sc;
	ev_wstr w = {0};
	ev_wstr_reserve(&w, 1024 + len + (out ? (size_t)out->n_tokens * 12 : 0));
	ev_wstr_add(&w, "{\"index\":");
	put_int(&w, it->index);
	put_key(&w, "id");
	put_text(&w, it->id, strlen(it->id));
	put_key(&w, "category");
	put_text(&w, it->category, strlen(it->category));
	put_key(&w, "metric");
	put_str(&w, weft_metric_name(it->metric), strlen(weft_metric_name(it->metric)));
	put_key(&w, "prediction");
	if (!failed && prediction)
		put_text(&w, prediction, len);
	else
		ev_wstr_add(&w, "null");
	put_key(&w, "extracted");
	if (ok)
		put_text(&w, sc->extracted, strlen(sc->extracted));
	else
		ev_wstr_add(&w, "null");
	put_key(&w, "rule");
	if (ok)
		put_str(&w, sc->rule, strlen(sc->rule));
	else
		ev_wstr_add(&w, "null");
	put_key(&w, "answer");
	if (it->metric == WEFT_METRIC_MC && it->gold >= 0) {
		const char l = (char)('A' + it->gold);
		put_str(&w, &l, 1);
	} else {
		ev_wstr_addn(&w, "[", 1);
		for (int i = 0; i < it->n_answers; i++) {
			if (i)
				ev_wstr_addn(&w, ",", 1);
			put_text(&w, it->answers[i], strlen(it->answers[i]));
		}
		ev_wstr_addn(&w, "]", 1);
	}
	put_key(&w, "score");
	put_real(&w, ok ? sc->score : 0.0, 17, NULL);
	put_key(&w, "error");
	if (failed)
		put_text(&w, error, strlen(error));
	else
		ev_wstr_add(&w, "null");
	if (out && !failed) {
		put_key(&w, "stop");
		put_str(&w, out->stop, strlen(out->stop));
		put_key(&w, "tokens");
		ev_wstr_addn(&w, "[", 1);
		for (int64_t i = 0; i < out->n_tokens; i++) {
			if (i)
				ev_wstr_addn(&w, ",", 1);
			put_int(&w, out->tokens[i]);
		}
		ev_wstr_addn(&w, "]", 1);
		if (out->option_ll) {
			put_key(&w, "option_ll");
			ev_wstr_addn(&w, "[", 1);
			for (int i = 0; i < out->n_options; i++) {
				if (i)
					ev_wstr_addn(&w, ",", 1);
				put_real(&w, out->option_ll[i], 17, NULL);
			}
			ev_wstr_addn(&w, "]", 1);
		}
		static const char *const ik[] = {"visual_tokens", "visual_kept", "prompt_tokens", "gen_tokens", "kv_bytes"};
		const int64_t iv[] = {out->visual_in, out->visual_kept, out->prompt_tokens, out->n_tokens,
				      (int64_t)out->kv_bytes};
		for (int i = 0; i < 5; i++) {
			put_key(&w, ik[i]);
			put_int(&w, iv[i]);
		}
		/* timings last, at microsecond precision */
		const double tps = out->decode_ms > 0 ? out->n_tokens / (out->decode_ms / 1e3) : 0;
		static const char *const tk[] = {"tokenize_ms", "encode_ms", "prefill_ms", "ttft_ms",
						 "decode_ms",   "decode_tps", "total_ms"};
		const double tv[] = {out->tokenize_ms, out->encode_ms, out->prefill_ms, out->ttft_ms,
				     out->decode_ms,   tps,           out->total_ms};
		ev_wstr_add(&w, ",\"time\":{");
		for (int i = 0; i < 7; i++) {
			if (i)
				ev_wstr_addn(&w, ",", 1);
			put_str(&w, tk[i], strlen(tk[i]));
			ev_wstr_addn(&w, ":", 1);
			put_real(&w, tv[i], 9, back ? &back[i] : NULL);
		}
		ev_wstr_add(&w, ",\"rss_kb\":");
		put_int(&w, rss_kb);
		ev_wstr_addn(&w, "}", 1);
	}
	ev_wstr_add(&w, "}\n");
	return ev_wstr_take(&w);
}

char *weft_eval_record(const weft_eval_item *it, const weft_eval_out *out, const char *prediction, size_t len,
		       const weft_score *sc, const char *error, int64_t rss_kb)
{
	return record(it, out, prediction, len, sc, error, rss_kb, NULL);
}

/* ---- reading a run file ---- */

static double num(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static int parse_header(weft_eval_log *log, const char *line, size_t n)
{
	json_error_t err;
	json_t *h = json_loadb(line, n, 0, &err);
	const char *id = json_string_value(json_object_get(h, "config_id"));
	json_t *cfg = json_object_get(h, "config"), *shard = json_object_get(h, "shard");
	const char *sha = json_string_value(json_object_get(cfg, "dataset_sha256"));
	if (!json_is_object(h) || json_integer_value(json_object_get(h, "weft_eval")) != 1 || !id || strlen(id) != 64 ||
	    !sha || strlen(sha) != 64 || !json_is_array(shard)) {
		json_decref(h);
		weft_error("line 1: not an eval-interleaved run file (no weft_eval header)");
		return -1;
	}
	memcpy(log->config_id, id, 65);
	memcpy(log->dataset_sha256, sha, 65);
	log->dataset_items = json_integer_value(json_object_get(h, "dataset_items"));
	log->shard_i = (int)json_integer_value(json_array_get(shard, 0));
	log->shard_n = (int)json_integer_value(json_array_get(shard, 1));
	json_decref(h);
	if (log->shard_n < 1 || log->shard_i < 0 || log->shard_i >= log->shard_n || log->dataset_items < 1) {
		weft_error("line 1: bad shard or item count in the header");
		return -1;
	}
	return (log->header = weft_strndup(line, n)) ? 0 : -1;
}

static int parse_record(weft_eval_rec *r, const char *line, size_t n)
{
	json_error_t err;
	json_t *o = json_loadb(line, n, 0, &err);
	json_t *idx = json_object_get(o, "index"), *id = json_object_get(o, "id");
	if (!json_is_object(o) || !json_is_integer(idx) || !json_is_string(id) ||
	    !json_is_number(json_object_get(o, "score"))) {
		json_decref(o);
		return -1;
	}
	memset(r, 0, sizeof *r);
	r->index = json_integer_value(idx);
	r->id = weft_strndup(json_string_value(id), json_string_length(id));
	const char *cat = json_string_value(json_object_get(o, "category"));
	r->category = weft_strndup(cat ? cat : "", cat ? strlen(cat) : 0);
	r->failed = !json_is_null(json_object_get(o, "error"));
	r->score = num(o, "score");
	r->gen_tokens = json_integer_value(json_object_get(o, "gen_tokens"));
	r->prompt_tokens = json_integer_value(json_object_get(o, "prompt_tokens"));
	r->visual_in = json_integer_value(json_object_get(o, "visual_tokens"));
	r->visual_kept = json_integer_value(json_object_get(o, "visual_kept"));
	r->kv_bytes = (uint64_t)json_integer_value(json_object_get(o, "kv_bytes"));
	json_t *t = json_object_get(o, "time");
	if ((r->timed = json_is_object(t))) {
		r->tokenize_ms = num(t, "tokenize_ms");
		r->encode_ms = num(t, "encode_ms");
		r->prefill_ms = num(t, "prefill_ms");
		r->ttft_ms = num(t, "ttft_ms");
		r->decode_ms = num(t, "decode_ms");
		r->total_ms = num(t, "total_ms");
		r->rss_kb = json_integer_value(json_object_get(t, "rss_kb"));
	}
	json_decref(o);
	r->line = weft_strndup(line, n);
	return r->id && r->category && r->line ? 0 : -1;
}

int weft_eval_log_read(weft_eval_log *log, const char *path)
{
	memset(log, 0, sizeof *log);
	FILE *f = fopen(path, "rb");
	if (!f) {
		weft_error("%s", strerror(errno));
		return -1;
	}
	ev_wstr w = {0};
	char buf[1 << 16];
	size_t k;
	while ((k = fread(buf, 1, sizeof buf, f)) > 0)
		ev_wstr_addn(&w, buf, k);
	fclose(f);
	char *data = ev_wstr_take(&w);
	if (!data)
		return -1;
	log->path = weft_strndup(path, strlen(path));
	const char *p = data, *end = data + strlen(data);
	int64_t ln = 0;
	int rc = -1;
	if (p == end) {
		weft_error("empty file");
		goto out;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		ln++;
		if (!nl) { /* a line cut short by a kill: left out */
			log->torn = 1;
			if (ln == 1) {
				weft_error("line 1: incomplete header");
				goto out;
			}
			break;
		}
		const size_t n = (size_t)(nl - p);
		if (ln == 1) {
			if (parse_header(log, p, n) != 0)
				goto out;
		} else if (n) {
			if (weft_grow(&log->recs, &log->cap, (size_t)log->n + 1, sizeof *log->recs) != 0)
				goto out;
			if (parse_record(&log->recs[log->n], p, n) != 0) {
				weft_error("line %" PRId64 ": not an item record", ln);
				goto out;
			}
			if (log->recs[log->n].index < 0 || log->recs[log->n].index >= log->dataset_items) {
				log->n++;
				weft_error("line %" PRId64 ": item index out of range", ln);
				goto out;
			}
			log->n++;
		}
		p = nl + 1;
		log->good_bytes = p - data;
	}
	rc = 0;
out:
	free(data);
	if (rc)
		weft_eval_log_free(log);
	return rc;
}

int weft_eval_log_init(weft_eval_log *log, const char *path, const char *header)
{
	memset(log, 0, sizeof *log);
	size_t n = strlen(header);
	n -= n && header[n - 1] == '\n';
	if (parse_header(log, header, n) != 0 || !(log->path = weft_strndup(path, strlen(path)))) {
		weft_eval_log_free(log);
		return -1;
	}
	return 0;
}

/* A string as its record reads back: put_text's UTF-8 repair applied. */
static char *text_as_written(const char *s)
{
	const size_t n = strlen(s);
	size_t k;
	return plain_ascii(s, n) ? weft_strndup(s, n) : ev_utf8_sanitize(s, n, &k);
}

/* What parse_record reads from the line record() writes: the timings as
 * put_real printed them (test eval.record_bytes holds the two equal). */
char *weft_eval_record_kept(weft_eval_log *log, const weft_eval_item *it, const weft_eval_out *out,
			    const char *prediction, size_t len, const weft_score *sc, const char *error, int64_t rss_kb)
{
	if (weft_grow(&log->recs, &log->cap, (size_t)log->n + 1, sizeof *log->recs) != 0)
		return NULL;
	double tv[7];
	char *line = record(it, out, prediction, len, sc, error, rss_kb, tv);
	weft_eval_rec *r = &log->recs[log->n];
	memset(r, 0, sizeof *r);
	const int failed = error != NULL;
	r->index = it->index;
	r->failed = failed;
	r->score = !failed && sc ? sc->score : 0.0; /* %.17g: exact */
	if ((r->timed = out && !failed)) {
		r->gen_tokens = out->n_tokens;
		r->prompt_tokens = out->prompt_tokens;
		r->visual_in = out->visual_in;
		r->visual_kept = out->visual_kept;
		r->kv_bytes = out->kv_bytes;
		r->tokenize_ms = tv[0], r->encode_ms = tv[1], r->prefill_ms = tv[2];
		r->ttft_ms = tv[3], r->decode_ms = tv[4], r->total_ms = tv[6]; /* tv[5]: decode_tps */
		r->rss_kb = rss_kb;
	}
	r->id = text_as_written(it->id);
	r->category = text_as_written(it->category);
	if (!line || !r->id || !r->category) {
		free(r->id);
		free(r->category);
		free(line);
		return NULL;
	}
	log->n++;
	return line;
}

void weft_eval_log_free(weft_eval_log *log)
{
	for (int64_t i = 0; i < log->n; i++) {
		free(log->recs[i].id);
		free(log->recs[i].category);
		free(log->recs[i].line);
	}
	free(log->recs);
	free(log->header);
	free(log->path);
	memset(log, 0, sizeof *log);
}

int64_t weft_eval_shard_items(int64_t n_items, int i, int n)
{
	if (n <= 1)
		return n_items;
	return n_items / n + (i < n_items % n ? 1 : 0);
}

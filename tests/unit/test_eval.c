/* test_eval.c - eval-interleaved's library: the readers on the committed
 * fixtures (tests/data/eval, scripts/gen-eval-fixtures.py), the run file,
 * summaries and their bootstrap, and likelihood scoring's reuse of the
 * prompt's KV cache against one uninterrupted forward pass.  The expected
 * prompts below are the layouts the readers document (lmms-eval's for
 * MMMU, VLMEvalKit's for its TSV), written out by hand. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <unistd.h>

#include "chat.h"
#include "eval.h"
#include "eval_int.h"
#include "eval_report.h"
#include "eval_run.h"
#include "gguf.h"
#include "model.h"
#include "test.h"
#include "textprompt.h"
#include "tokenizer_int.h"
#include "util.h"

#define D "tests/data/eval/"

static int read_set(weft_eval_set *s, const char *path)
{
	weft_eval_read_opts o = {.metric = -1};
	if (weft_eval_read(s, path, &o) != 0) {
		FAILF("%s: %s", path, weft_errmsg());
		return -1;
	}
	return 0;
}

static void reader_weft(void)
{
	weft_eval_set s;
	if (read_set(&s, D "weft.jsonl"))
		return;
	CHECK_STR(s.format, "weft");
	CHECK_EQ_INT(s.n, 7);
	CHECK_EQ_INT(s.n_unknown, 1);
	CHECK_STR(s.unknown[0], "wording");
	for (int64_t i = 0; i < s.n; i++)
		if (s.items[i].error)
			FAILF("item %lld: %s", (long long)i, s.items[i].error);
	const weft_eval_item *it = &s.items[1]; /* content parts; the answer as option text */
	CHECK_STR(it->prompt, "Compare<image 1>and<image 2>. Which is wider?");
	CHECK_EQ_INT(it->n_images, 2);
	CHECK_STR(it->images[1].path, "tests/data/eval/img/tall.png");
	CHECK_EQ_INT(it->metric, WEFT_METRIC_MC);
	CHECK_EQ_INT(it->gold, 0);
	CHECK_EQ_INT(s.items[2].metric, WEFT_METRIC_EXACT);
	CHECK_STR(s.items[2].answers[0], "3");
	CHECK_EQ_INT(s.items[3].metric, WEFT_METRIC_VQA);
	CHECK_EQ_INT(s.items[3].n_answers, 10);
	CHECK_EQ_INT(s.items[4].metric, WEFT_METRIC_ANLS);
	CHECK_EQ_INT(s.items[5].n_images, 0);
	CHECK_STR(s.items[6].category, "color");
	weft_eval_set_free(&s);
}

static void reader_mmmu(void)
{
	weft_eval_set s;
	if (read_set(&s, D "mmmu.jsonl"))
		return;
	CHECK_STR(s.format, "mmmu");
	CHECK_EQ_INT(s.n, 3);
	const weft_eval_item *a = &s.items[0], *b = &s.items[1], *c = &s.items[2];
	CHECK(!a->error && !b->error && !c->error);
	CHECK_EQ_INT(a->n_choices, 3);
	CHECK_STR(a->choices[2], "it's blue");
	CHECK_STR(a->prompt, "Which colour is shown in <image 1>?\nA. red\nB. green\nC. it's blue\n\n"
			     "Answer with the option's letter from the given choices directly.");
	CHECK_STR(a->category, "Art");
	CHECK_STR(b->id, "2");
	CHECK_STR(b->category, "");
	CHECK_STR(b->prompt, "<image 1> is wider than which?\nA. <image 2>\nB. nothing\n\n"
			     "Answer with the option's letter from the given choices directly.");
	CHECK_EQ_INT(b->n_images, 2);
	CHECK_EQ_INT(c->metric, WEFT_METRIC_EXACT);
	CHECK_EQ_INT(c->n_answers, 2);
	CHECK_STR(c->answers[1], "four");
	CHECK_STR(c->category, "Math");
	CHECK_STR(c->prompt, "How many sides has <image 1>?\n\nAnswer the question using a single word or phrase.");
	weft_eval_set_free(&s);
}

/* The shared MMMU-Pro sample, unmodified. */
static void reader_mmmu_pro_sample(void)
{
	weft_eval_set s;
	if (access("../shared/data/mmmu-pro-sample/data.jsonl", R_OK) != 0)
		SKIP("../shared/data/mmmu-pro-sample/data.jsonl not found");
	if (read_set(&s, "../shared/data/mmmu-pro-sample/data.jsonl"))
		return;
	CHECK_EQ_INT(s.n, 21);
	for (int64_t i = 0; i < s.n; i++)
		if (s.items[i].error)
			FAILF("mmmu-pro-sample item %lld: %s", (long long)i, s.items[i].error);
	CHECK_STR(s.items[0].category, "Clinical_Medicine");
	CHECK_STR(s.items[11].category, "ai2d");
	CHECK_EQ_INT(s.items[5].n_images, 5);
	weft_eval_set_free(&s);
}

static void reader_muirbench(void)
{
	weft_eval_set s;
	if (read_set(&s, D "muir.jsonl"))
		return;
	CHECK_STR(s.format, "muirbench");
	CHECK(!s.items[0].error && !s.items[1].error);
	CHECK_STR(s.items[0].prompt, "Which image matches <image>?\nA. <image>\nB. <image>\n\n"
				     "Answer with the option's letter from the given choices directly.");
	CHECK_EQ_INT(s.items[0].n_images, 3);
	CHECK_EQ_INT(s.items[0].gold, 1);
	CHECK_STR(s.items[1].category, "Counting");
	weft_eval_set_free(&s);
}

static void reader_vlmevalkit(void)
{
	weft_eval_set s;
	if (read_set(&s, D "bench.tsv"))
		return;
	CHECK_STR(s.format, "vlmevalkit");
	CHECK_EQ_INT(s.n, 5);
	CHECK_STR(s.items[0].prompt, "<image 1>\nHint: Look closely.\nQuestion: What colour is it?\nOptions:\nA. red\n"
				     "B. green\nPlease select the correct answer from the options above. \n");
	CHECK_EQ_INT(s.items[0].n_images, 1);
	/* the image decodes to the PNG it was made from */
	size_t n, m;
	unsigned char *png = weft_eval_image_bytes(&s, &s.items[0].images[0], &n);
	weft_eval_image file = {.kind = WEFT_EVAL_IMAGE_PATH, .path = D "img/red.png"};
	unsigned char *want = weft_eval_image_bytes(&s, &file, &m);
	CHECK(png && want && n == m && memcmp(png, want, n) == 0);
	free(png);
	free(want);
	/* row 2 names row 1's image by index; row 3 holds two */
	CHECK(!s.items[1].error);
	CHECK_EQ_INT(s.items[1].n_images, 1);
	CHECK_EQ_INT(s.items[1].images[0].off, s.items[0].images[0].off);
	CHECK_EQ_INT(s.items[2].n_images, 2);
	CHECK(strncmp(s.items[2].prompt, "Question: Is <image 1> wider", 28) == 0);
	CHECK_EQ_INT(s.items[2].n_choices, 3);
	/* a broken base64 cell fails when its image is read */
	CHECK(weft_eval_image_bytes(&s, &s.items[3].images[0], &n) == NULL);
	CHECK(strstr(weft_errmsg(), "bad base64 at character 1") != NULL);
	/* a quoted cell with a tab and doubled quotes; no options: exact */
	CHECK_STR(s.items[4].prompt, "<image 1>\nSay \"tall\"\tquoted");
	CHECK_EQ_INT(s.items[4].metric, WEFT_METRIC_EXACT);
	CHECK_STR(s.items[4].answers[0], "tall");
	weft_eval_set_free(&s);
}

static void reader_errors(void)
{
	weft_eval_set s;
	if (read_set(&s, D "bad.jsonl"))
		return;
	static const char *const want[] = {
		NULL, "malformed JSON", "<image 2> but the item has 1 image", "image 2 (tests/data/eval/img/tall.png) has no <image 2> placeholder",
		NULL, NULL, "duplicate id (first on line 1)", "answer 'D' is outside the options A..B", "unknown metric 'bleu'",
		"not a JSON object", NULL};
	CHECK_EQ_INT(s.n, 11);
	for (int64_t i = 0; i < s.n && i < 11; i++) {
		const char *e = s.items[i].error;
		if ((want[i] == NULL) != (e == NULL) || (e && !strstr(e, want[i])))
			FAILF("item %lld: error '%s', expected '%s'", (long long)i, e ? e : "(none)", want[i] ? want[i] : "(none)");
	}
	weft_eval_set_free(&s);
	/* file-level problems */
	CHECK(weft_eval_read(&s, D "nonexistent.jsonl", NULL) == -1);
	CHECK(strstr(weft_errmsg(), "No such file") != NULL);
	CHECK(weft_eval_read(&s, D "img/red.png", NULL) == -1);
	CHECK(strstr(weft_errmsg(), "not a JSONL file") != NULL);
	weft_eval_read_opts o = {.format = "tsv", .metric = -1};
	CHECK(weft_eval_read(&s, D "weft.jsonl", &o) == -1);
	CHECK(strstr(weft_errmsg(), "unknown input format 'tsv'") != NULL);
	o.format = "vlmevalkit";
	CHECK(weft_eval_read(&s, D "weft.jsonl", &o) == -1);
	CHECK(strstr(weft_errmsg(), "not a TSV file") != NULL);
	/* many duplicates, in no order: each later copy names its first line */
	char path[] = "/tmp/weft-test-eval-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		FAILF("temporary file");
		return;
	}
	const int N = 3000;
	for (int i = 0; i < N; i++) /* ids: 0..999 shuffled, three times over */
		fprintf(f, "{\"id\": \"x%d\", \"question\": \"q\", \"answer\": \"a\"}\n", (i * 7919) % 1000);
	fclose(f);
	if (!read_set(&s, path)) {
		int bad = 0;
		for (int i = 0; i < N; i++) {
			int f0 = -1;
			for (int j = 0; j < i && f0 < 0; j++)
				if ((j * 7919) % 1000 == (i * 7919) % 1000)
					f0 = j;
			char msg[64];
			snprintf(msg, sizeof msg, "duplicate id (first on line %d)", f0 + 1);
			const char *e = s.items[i].error;
			bad += f0 < 0 ? e != NULL : !e || strcmp(e, msg) != 0;
		}
		CHECK_EQ_INT(bad, 0);
		weft_eval_set_free(&s);
	}
	unlink(path);
}

/* A run file written with the library and read back. */
static void run_file(void)
{
	weft_eval_set s;
	if (read_set(&s, D "weft.jsonl"))
		return;
	weft_score_opts so = {0};
	weft_eval_config c = {.kind = "score", .set = &s, .score = &so, .metric = -1, .shard_n = 1, .preds = "p"};
	char *h = weft_eval_header(&c);
	char path[] = "/tmp/weft-test-eval-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!h || !f) {
		FAILF("header or temporary file");
		return;
	}
	fputs(h, f);
	/* scores 1, 0, 0.5, 1, 0, failed, 1 */
	const double sc[7] = {1, 0, 0.5, 1, 0, 0, 1};
	for (int i = 0; i < 7; i++) {
		weft_score w = {.score = sc[i], .extracted = "x", .rule = "exact"};
		char *line = weft_eval_record(&s.items[i], NULL, "p", 1, i == 5 ? NULL : &w, i == 5 ? "boom" : NULL, 0);
		fputs(line, f);
		free(line);
	}
	fputs("{\"index\":7,\"id\":\"torn", f); /* a record cut short */
	fclose(f);
	weft_eval_log log;
	CHECK_EQ_INT(weft_eval_log_read(&log, path), 0);
	CHECK_EQ_INT(log.n, 7);
	CHECK_EQ_INT(log.torn, 1);
	CHECK_EQ_INT(log.recs[5].failed, 1);
	weft_eval_boot b = {.resamples = 1000, .seed = 7};
	char *sum = weft_eval_summary(&log, &b);
	json_error_t err;
	json_t *j = sum ? json_loads(sum, 0, &err) : NULL;
	CHECK(j != NULL);
	/* (1 + 0 + 0.5 + 1 + 0 + 0 + 1) / 7 */
	CHECK_NEAR(json_real_value(json_object_get(j, "accuracy")), 3.5 / 7, 1e-9);
	CHECK_NEAR(json_real_value(json_object_get(j, "accuracy_ran")), 3.5 / 6, 1e-9);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "failed")), 1);
	CHECK(json_is_true(json_object_get(j, "complete")));
	json_t *color = json_object_get(json_object_get(j, "categories"), "color");
	/* color: items 0, 3, 6: scores 1, 1, 1 */
	CHECK_NEAR(json_real_value(json_object_get(color, "accuracy")), 1.0, 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(color, "n")), 3);
	json_t *ci = json_object_get(j, "accuracy_ci95");
	CHECK(json_real_value(json_array_get(ci, 0)) < 0.5 && json_real_value(json_array_get(ci, 1)) > 0.5);
	/* the same seed, the same summary */
	char *sum2 = weft_eval_summary(&log, &b);
	CHECK(sum2 && strcmp(sum, sum2) == 0);
	free(sum2);
	json_decref(j);
	free(sum);
	weft_eval_log_free(&log);
	/* a file that is not a run file */
	CHECK_EQ_INT(weft_eval_log_read(&log, D "weft.jsonl"), -1);
	CHECK(strstr(weft_errmsg(), "not an eval-interleaved run file") != NULL);
	unlink(path);
	free(h);
	weft_eval_set_free(&s);
}

/* weft_eval_record_kept (a run's records kept in memory) writes the line
 * weft_eval_record writes and keeps the values weft_eval_log_read reads
 * back from it: timings rounded as printed, 1e-7 and 1e9 included. */
static void log_in_memory(const weft_eval_set *s, const weft_eval_item *it, const char *line, const weft_eval_out *out,
			  const char *pred, size_t len, const weft_score *sc, const char *error)
{
	weft_eval_config c = {.kind = "score", .set = s, .metric = -1, .shard_n = 1, .preds = "p"};
	weft_score_opts so = {0};
	c.score = &so;
	char *h = weft_eval_header(&c);
	char path[] = "/tmp/weft-test-evlog-XXXXXX";
	const int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!h || !f) {
		FAILF("header or temporary file");
		free(h);
		return;
	}
	fputs(h, f);
	fputs(line, f);
	fclose(f);
	weft_eval_log rd, mem;
	CHECK_EQ_INT(weft_eval_log_read(&rd, path), 0);
	CHECK_EQ_INT(weft_eval_log_init(&mem, path, h), 0);
	char *kept = weft_eval_record_kept(&mem, it, out, pred, len, sc, error, 4242);
	CHECK(kept && strcmp(kept, line) == 0);
	free(kept);
	if (rd.n == 1 && mem.n == 1) {
		const weft_eval_rec *a = &rd.recs[0], *b = &mem.recs[0];
		CHECK(strcmp(rd.header, mem.header) == 0 && strcmp(rd.config_id, mem.config_id) == 0);
		CHECK(a->index == b->index && a->failed == b->failed && a->timed == b->timed);
		CHECK(strcmp(a->id, b->id) == 0 && strcmp(a->category, b->category) == 0);
		CHECK(a->gen_tokens == b->gen_tokens && a->prompt_tokens == b->prompt_tokens &&
		      a->visual_in == b->visual_in && a->visual_kept == b->visual_kept && a->kv_bytes == b->kv_bytes &&
		      a->rss_kb == b->rss_kb);
		const double va[] = {a->score,     a->tokenize_ms, a->encode_ms, a->prefill_ms,
				     a->ttft_ms,   a->decode_ms,   a->total_ms};
		const double vb[] = {b->score,     b->tokenize_ms, b->encode_ms, b->prefill_ms,
				     b->ttft_ms,   b->decode_ms,   b->total_ms};
		for (int i = 0; i < 7; i++)
			if (memcmp(&va[i], &vb[i], sizeof va[i]) != 0)
				FAILF("item %" PRId64 ": value %d read back %.17g, kept %.17g", it->index, i, va[i], vb[i]);
	} else
		FAILF("records read %" PRId64 ", kept %" PRId64, rd.n, mem.n);
	weft_eval_log_free(&rd);
	weft_eval_log_free(&mem);
	unlink(path);
	free(h);
}

/* The record is written without jansson; it must be the bytes json_dumps
 * writes for the same values (what it was before, and what reading back
 * expects): control characters, quotes, backslashes, DEL, invalid UTF-8,
 * reals that print as integers, tiny and huge exponents. */
static void record_bytes(void)
{
	weft_eval_set s;
	if (read_set(&s, D "weft.jsonl"))
		return;
	static const char pred[] = "a\"b\\c\n\t\r\b\f\x01\x1f\x7f/\xc3\xa9\xff\xe2\x82 end";
	int32_t toks[3] = {0, -1, 2147483647};
	double ll[4] = {-0.25, 3.0, 1e-300, -1.5e300};
	weft_eval_out out = {.tokens = toks, .n_tokens = 3, .stop = "eog", .option_ll = ll, .n_options = 4,
			     .visual_in = 64, .visual_kept = 7, .prompt_tokens = 1234567, .kv_bytes = 1ull << 40,
			     .tokenize_ms = 0.001, .encode_ms = 12.3456789012, .prefill_ms = 100, .ttft_ms = 1e-7,
			     .decode_ms = 2.5, .total_ms = 1e9};
	weft_score sc = {.score = 1.0 / 3, .extracted = "B\x02", .rule = "letter"};
	for (int k = 0; k < 3 && !t_failed; k++) {
		const weft_eval_item *it = &s.items[k];
		const int failed = k == 2;
		char *line = weft_eval_record(it, failed ? NULL : &out, pred, sizeof pred - 1, failed ? NULL : &sc,
					      failed ? "bad \"x\"\n" : NULL, 4242);
		/* the same record through jansson */
		size_t n;
		char *v;
#define TXT(str, len) (v = ev_utf8_sanitize(str, len, &n), json_stringn(v, n))
		json_t *r = json_object();
		json_object_set_new(r, "index", json_integer(it->index));
		json_object_set_new(r, "id", json_string(it->id));
		json_object_set_new(r, "category", json_string(it->category));
		json_object_set_new(r, "metric", json_string(weft_metric_name(it->metric)));
		json_t *t = failed ? json_null() : TXT(pred, sizeof pred - 1);
		if (!failed)
			free(v);
		json_object_set_new(r, "prediction", t);
		json_object_set_new(r, "extracted", failed ? json_null() : json_string(sc.extracted));
		json_object_set_new(r, "rule", failed ? json_null() : json_string(sc.rule));
		json_t *ans = json_array();
		for (int i = 0; i < it->n_answers; i++)
			json_array_append_new(ans, json_string(it->answers[i]));
		if (it->metric == WEFT_METRIC_MC && it->gold >= 0) {
			json_decref(ans);
			char l[2] = {(char)('A' + it->gold), 0};
			ans = json_string(l);
		}
		json_object_set_new(r, "answer", ans);
		json_object_set_new(r, "score", json_real(failed ? 0.0 : sc.score));
		json_object_set_new(r, "error", failed ? json_string("bad \"x\"\n") : json_null());
		if (!failed) {
			json_object_set_new(r, "stop", json_string("eog"));
			json_t *ta = json_array(), *la = json_array();
			for (int i = 0; i < 3; i++)
				json_array_append_new(ta, json_integer(toks[i]));
			for (int i = 0; i < 4; i++)
				json_array_append_new(la, json_real(ll[i]));
			json_object_set_new(r, "tokens", ta);
			json_object_set_new(r, "option_ll", la);
			json_object_set_new(r, "visual_tokens", json_integer(64));
			json_object_set_new(r, "visual_kept", json_integer(7));
			json_object_set_new(r, "prompt_tokens", json_integer(1234567));
			json_object_set_new(r, "gen_tokens", json_integer(3));
			json_object_set_new(r, "kv_bytes", json_integer((json_int_t)(1ull << 40)));
		}
		char *a = json_dumps(r, JSON_COMPACT);
		json_decref(r);
		char *want = NULL;
		if (a && !failed) {
			json_t *tj = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}", "tokenize_ms", out.tokenize_ms,
					       "encode_ms", out.encode_ms, "prefill_ms", out.prefill_ms, "ttft_ms",
					       out.ttft_ms, "decode_ms", out.decode_ms, "decode_tps", 3 / 2.5e-3,
					       "total_ms", out.total_ms, "rss_kb", (json_int_t)4242);
			char *b = json_dumps(tj, JSON_COMPACT | JSON_REAL_PRECISION(9));
			json_decref(tj);
			want = malloc(strlen(a) + strlen(b) + 16);
			a[strlen(a) - 1] = 0;
			sprintf(want, "%s,\"time\":%s}\n", a, b);
			free(b);
		} else if (a) {
			want = malloc(strlen(a) + 2);
			sprintf(want, "%s\n", a);
		}
		free(a);
		if (!line || !want || strcmp(line, want) != 0)
			FAILF("item %d: record\n  %s  differs from jansson's\n  %s", k, line ? line : "(null)",
			      want ? want : "(null)");
		if (line)
			log_in_memory(&s, it, line, failed ? NULL : &out, pred, sizeof pred - 1, failed ? NULL : &sc,
				      failed ? "bad \"x\"\n" : NULL);
		free(line);
		free(want);
#undef TXT
	}
	weft_eval_set_free(&s);
}

static void bootstrap(void)
{
	double x[100];
	for (int i = 0; i < 100; i++)
		x[i] = i % 2;
	weft_eval_boot b = {.resamples = 2000, .seed = 1};
	double lo, hi, lo2, hi2;
	weft_eval_bootstrap_mean(x, 100, &b, &lo, &hi);
	/* mean 0.5, standard error 0.05: about 0.5 -+ 1.96 * 0.05 */
	CHECK(lo > 0.38 && lo < 0.42 && hi > 0.58 && hi < 0.62);
	weft_eval_bootstrap_mean(x, 100, &b, &lo2, &hi2);
	CHECK(lo == lo2 && hi == hi2);
	for (int i = 0; i < 100; i++)
		x[i] = 1;
	weft_eval_bootstrap_mean(x, 100, &b, &lo, &hi);
	CHECK(lo == 1 && hi == 1);
	weft_eval_bootstrap_mean(x, 0, &b, &lo, &hi);
	CHECK(isnan(lo) && isnan(hi));
	/* shards: every index in exactly one, sizes add up */
	int64_t tot = 0;
	for (int i = 0; i < 3; i++)
		tot += weft_eval_shard_items(10, i, 3);
	CHECK_EQ_INT(tot, 10);
	CHECK_EQ_INT(weft_eval_shard_items(10, 0, 3), 4);
	CHECK_EQ_INT(weft_eval_shard_items(10, 2, 3), 3);
	CHECK(weft_eval_in_shard(7, 1, 3) && !weft_eval_in_shard(7, 0, 3));
}

static double logprob(const float *l, int n, int t)
{
	double mx = l[0], s = 0;
	for (int i = 1; i < n; i++)
		mx = l[i] > mx ? l[i] : mx;
	for (int i = 0; i < n; i++)
		s += exp(l[i] - mx);
	return l[t] - mx - log(s);
}

/* Likelihood scoring from the prompt's cache equals the log-probabilities
 * of prompt + option run in one forward pass. */
/* ev_py_lower (the scoring rules' lower case) against Python's str.lower()
 * for every code point from U+0080 (tests/data/eval/py-lower.txt, written
 * by scripts/gen-py-lower.py from Python itself: the ones that change),
 * 4096 consecutive code points a string; then invalid UTF-8 (U+FFFD) and
 * a mixed string. */
static void py_lower(void)
{
	FILE *f = fopen(D "py-lower.txt", "r");
	uint32_t *map = calloc(0x110000 * 2, sizeof *map); /* [c][0..1]: its lower case, 0 = itself */
	if (!f || !map) {
		FAILF(D "py-lower.txt: %s", f ? "out of memory" : "cannot open");
		free(map);
		if (f)
			fclose(f);
		return;
	}
	char line[128];
	int n_map = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned c, a, b = 0;
		if (line[0] != '#' && sscanf(line, "%x: %x %x", &c, &a, &b) >= 2 && c < 0x110000)
			map[2 * c] = a, map[2 * c + 1] = b, n_map++;
	}
	fclose(f);
	CHECK(n_map > 1000);
	enum { CHUNK = 4096 };
	char *in = malloc(CHUNK * 4), *want = malloc(CHUNK * 8);
	for (uint32_t c0 = 0x80; in && want && c0 < 0x110000 && !t_failed; c0 += CHUNK) {
		size_t ni = 0, nw = 0;
		for (uint32_t c = c0; c < c0 + CHUNK && c < 0x110000; c++) {
			if (c >= 0xd800 && c < 0xe000)
				continue;
			ni += wt_utf8_put(c, (unsigned char *)in + ni);
			nw += wt_utf8_put(map[2 * c] ? map[2 * c] : c, (unsigned char *)want + nw);
			if (map[2 * c + 1])
				nw += wt_utf8_put(map[2 * c + 1], (unsigned char *)want + nw);
		}
		size_t nl;
		char *low = ev_py_lower(in, ni, &nl);
		if (!low || nl != nw || memcmp(low, want, nw) != 0) {
			size_t k = 0;
			while (low && k < nl && k < nw && low[k] == want[k])
				k++;
			FAILF("U+%04X..: lower case differs from Python's at byte %zu of %zu", (unsigned)c0, k, nw);
		}
		free(low);
	}
	free(in);
	free(want);
	free(map);
	/* invalid bytes become U+FFFD; ASCII, Latin-1, U+0130, Roman numerals (PCRE2 left these alone) */
	static const char mixed[] = "AbC \xff\xc3\x80 \xc4\xb0 \xe2\x85\xab \xce\xa3";
	static const char mixed_lo[] = "abc \xef\xbf\xbd\xc3\xa0 i\xcc\x87 \xe2\x85\xbb \xcf\x83";
	size_t nl;
	char *low = ev_py_lower(mixed, sizeof mixed - 1, &nl);
	CHECK(low && nl == sizeof mixed_lo - 1 && memcmp(low, mixed_lo, nl) == 0 && low[nl] == 0);
	free(low);
	low = ev_py_lower("", 0, &nl);
	CHECK(low && nl == 0 && low[0] == 0);
	free(low);
}

static void likelihood_reuse(void)
{
	const char *model = "tests/data/vlm/tiny-llava-llm-f32.gguf";
	char *choices[] = {"red", "a green leaf", "blue"};
	weft_eval_item it = {.id = "q", .category = "", .metric = WEFT_METRIC_MC, .prompt = "Which colour?",
			     .choices = choices, .n_choices = 3, .gold = 0};
	weft_eval_run_opts ro = {.n_predict = 4, .kv_type = WEFT_KV_F32, .tmpl = "vicuna", .likelihood = 1, .threads = 1};
	weft_eval_runner *r = weft_eval_runner_new(model, NULL, &ro);
	weft_eval_set s = {0};
	weft_eval_out out;
	if (!r)
		SKIP("%s", weft_errmsg());
	CHECK_EQ_INT(weft_eval_run_item(r, &s, &it, &out), 0);
	CHECK_EQ_INT(out.n_options, 3);
	/* the reference: one pass over the whole text */
	weft_gguf *g = weft_gguf_open(model);
	weft_model *m = g ? weft_model_load(g) : NULL;
	weft_vocab *v = g ? weft_vocab_load(g) : NULL;
	weft_pool *pool = weft_pool_new(1);
	if (!m || !v || !pool) {
		FAILF("load: %s", weft_errmsg());
		return;
	}
	weft_chat_msg msg = {"user", it.prompt};
	char *text = weft_chat_render(weft_chat_from_name("vicuna"), &msg, 1, 1);
	weft_text_prompt tp;
	CHECK_EQ_INT(weft_text_prompt_build(&tp, v, text, strlen(text), WEFT_TEXT_BOS | WEFT_TEXT_SPECIAL), 0);
	for (int c = 0; c < 3; c++) {
		int32_t *ids = malloc((size_t)(tp.n_ids + 64) * sizeof *ids);
		memcpy(ids, tp.ids, (size_t)tp.n_ids * sizeof *ids);
		int32_t *opt = NULL;
		size_t n = 0, cap = 0;
		weft_tokenize(v, choices[c], strlen(choices[c]), 0, &opt, &n, &cap);
		memcpy(ids + tp.n_ids, opt, n * sizeof *ids);
		const int64_t T = tp.n_ids + (int64_t)n;
		weft_kv *kv = weft_kv_new_type(m, T, WEFT_KV_F32);
		float *logits = malloc((size_t)T * m->hp.n_vocab * sizeof *logits);
		CHECK_EQ_INT(weft_model_forward(m, pool, kv, ids, NULL, T, 512, logits, 1, NULL), 0);
		double ll = 0;
		for (size_t i = 0; i < n; i++)
			ll += logprob(logits + (size_t)(tp.n_ids - 1 + (int64_t)i) * m->hp.n_vocab, m->hp.n_vocab, opt[i]);
		CHECK_NEAR(out.option_ll[c], ll / (double)n, 1e-4);
		free(ids), free(opt), free(logits);
		weft_kv_free(kv);
	}
	int best = 0;
	for (int c = 1; c < 3; c++)
		best = out.option_ll[c] > out.option_ll[best] ? c : best;
	CHECK_EQ_INT(out.choice, best);
	weft_text_prompt_free(&tp);
	free(text);
	weft_eval_out_free(&out);
	weft_pool_free(pool);
	weft_vocab_free(v);
	weft_model_free(m);
	weft_gguf_close(g);
	weft_eval_runner_free(r);
}

int main(void)
{
	t_suite = "eval";
	RUN(reader_weft);
	RUN(reader_mmmu);
	RUN(reader_mmmu_pro_sample);
	RUN(reader_muirbench);
	RUN(reader_vlmevalkit);
	RUN(reader_errors);
	RUN(run_file);
	RUN(record_bytes);
	RUN(py_lower);
	RUN(bootstrap);
	RUN(likelihood_reuse);
	TEST_MAIN_END();
}

/* fuzz_eval.c - libFuzzer harness for eval-interleaved's parsers of
 * untrusted files: the benchmark readers (weft JSONL, MMMU, MuirBench,
 * VLMEvalKit TSV with base64 images), the run-file reader, and the
 * predictions reader.  Any bytes must read or fail with one error, never
 * crash, leak or hang; what reads is then used as eval-interleaved uses
 * it (every item scored by every metric, every image's bytes fetched, a
 * run file summarised and compared with itself).
 *
 * The first byte picks the parser: 0 detect, 1 weft, 2 mmmu, 3 muirbench,
 * 4 vlmevalkit, 5 a run file, 6 a predictions file for a fixed gold set;
 * the rest is the file (an in-memory file, /proc/self/fd/N).  Seeds:
 * tests/fuzz/seeds/eval (the fixtures of tests/data/eval, prefixed). */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "eval.h"
#include "eval_report.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

/* data as a file: its path in path[] (a memfd; closed by the caller) */
static int as_file(const void *data, size_t size, char *path, size_t cap)
{
	const int fd = memfd_create("fuzz-eval", 0);
	if (fd < 0)
		abort();
	const char *p = data;
	while (size) {
		const ssize_t k = write(fd, p, size);
		if (k <= 0)
			abort();
		p += k;
		size -= (size_t)k;
	}
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

static void use_set(const weft_eval_set *s)
{
	static const char *const preds[] = {"(B)", "The answer is A.", "two dogs", "", "\xff\xfe B \xc3"};
	for (int64_t i = 0; i < s->n; i++) {
		const weft_eval_item *it = &s->items[i];
		if (it->error) {
			sink += strlen(it->error);
			continue;
		}
		sink += strlen(it->id) + strlen(it->category);
		for (int k = 0; k < it->n_images; k++) {
			size_t len;
			if (it->images[k].kind != WEFT_EVAL_IMAGE_BASE64)
				continue; /* a path could name any file (/dev/zero) */
			unsigned char *b = weft_eval_image_bytes(s, &it->images[k], &len);
			if (b && len)
				sink += b[0] + b[len - 1];
			free(b);
		}
		for (size_t p = 0; p < sizeof preds / sizeof preds[0]; p++)
			for (int x = 0; x < WEFT_MC_COUNT; x++) {
				weft_score_opts so = {.extract = x, .random_fallback = (int)(p & 1), .seed = 7};
				weft_score sc = {0};
				if (weft_metric_score(it, preds[p], strlen(preds[p]), &so, &sc) == 0) {
					if (!(sc.score >= 0 && sc.score <= 1))
						abort(); /* a score outside [0, 1] */
					free(sc.extracted);
				}
			}
		if (it->metric == WEFT_METRIC_MC)
			for (int c = 0; c < it->n_choices; c++) {
				weft_score sc = {0};
				if (weft_metric_score_choice(it, c, &sc) == 0)
					free(sc.extracted);
			}
	}
}

static void use_log(weft_eval_log *log)
{
	const weft_eval_boot b = {.resamples = 1000, .seed = 1};
	char *s = weft_eval_summary(log, &b);
	if (s)
		sink += strlen(s);
	free(s);
	s = weft_eval_compare(log, log, &b);
	if (s)
		sink += strlen(s);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const formats[] = {NULL, "weft", "mmmu", "muirbench", "vlmevalkit"};
	static const char gold[] = "{\"id\": \"a\", \"question\": \"Q?\", \"choices\": [\"x\", \"y\"], \"answer\": \"B\"}\n"
				   "{\"id\": \"b\", \"question\": \"R?\", \"answer\": [\"two\", \"2\"], \"metric\": \"vqa\"}\n";
	if (size < 1)
		return 0;
	const int mode = data[0] % 7;
	char path[64];
	const int fd = as_file(data + 1, size - 1, path, sizeof path);
	if (mode <= 4) {
		weft_eval_set s;
		weft_eval_read_opts o = {.format = formats[mode], .metric = -1};
		if (weft_eval_read(&s, path, &o) == 0) {
			use_set(&s);
			weft_eval_set_free(&s);
		} else if (!weft_errmsg()[0] || strchr(weft_errmsg(), '\n'))
			abort(); /* one line */
	} else if (mode == 5) {
		weft_eval_log log;
		if (weft_eval_log_read(&log, path) == 0) {
			use_log(&log);
			weft_eval_log_free(&log);
		}
	} else {
		char gpath[64];
		const int gfd = as_file(gold, sizeof gold - 1, gpath, sizeof gpath);
		weft_eval_set s;
		weft_eval_read_opts o = {.metric = -1};
		if (weft_eval_read(&s, gpath, &o) != 0)
			abort(); /* the fixed gold set reads */
		char **preds;
		size_t *lens;
		char sha[65];
		if (weft_eval_read_preds(&s, path, &preds, &lens, sha) == 0) {
			for (int64_t i = 0; i < s.n; i++) {
				weft_score sc = {0};
				weft_score_opts so = {0};
				if (preds[i] && weft_metric_score(&s.items[i], preds[i], lens[i], &so, &sc) == 0)
					free(sc.extracted);
				free(preds[i]);
			}
			free(preds);
			free(lens);
		}
		weft_eval_set_free(&s);
		close(gfd);
	}
	close(fd);
	return 0;
}

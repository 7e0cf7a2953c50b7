/* bench_llm.c - llama-bench's pp/tg measurement for weft's engine.
 *
 *   bench_llm MODEL.gguf THREADS [PP] [TG] [REPS]
 *
 * pp: PP random tokens prefilled into an empty cache (one call, chunk 512);
 * tg: TG tokens decoded one at a time from an empty cache, as llama-bench
 * does.  Best of REPS (default 3).  Also prints the weights' bytes read per
 * decoded token, a measured memory read bandwidth, and the resulting
 * fraction of the bandwidth bound, and peak RSS. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kernels.h"
#include "model.h"
#include "util.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
	const uint64_t *buf;
	size_t n;
	uint64_t sums[64];
} bw_ctx;

static void bw_task(void *ctx, int task, int n_tasks)
{
	bw_ctx *c = ctx;
	size_t lo = c->n * (size_t)task / (size_t)n_tasks, hi = c->n * (size_t)(task + 1) / (size_t)n_tasks;
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (size_t i = lo; i + 4 <= hi; i += 4) {
		s0 += c->buf[i];
		s1 += c->buf[i + 1];
		s2 += c->buf[i + 2];
		s3 += c->buf[i + 3];
	}
	c->sums[task % 64] = s0 + s1 + s2 + s3;
}

/* Read bandwidth in GB/s over a 512 MiB buffer with the pool's threads. */
static double read_bandwidth(weft_pool *p)
{
	size_t n = (512u << 20) / 8;
	uint64_t *buf = malloc(n * 8);
	if (!buf)
		return 0;
	for (size_t i = 0; i < n; i++)
		buf[i] = i;
	bw_ctx c = {.buf = buf, .n = n};
	double best = 1e9;
	for (int r = 0; r < 5; r++) {
		double t = now();
		weft_pool_run(p, weft_pool_size(p), bw_task, &c);
		t = now() - t;
		if (t < best)
			best = t;
	}
	free(buf);
	return (double)n * 8 / best / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_llm MODEL.gguf THREADS [PP] [TG] [REPS]\n");
		return 2;
	}
	int threads = atoi(argv[2]);
	int64_t pp = argc > 3 ? atoll(argv[3]) : 512, tg = argc > 4 ? atoll(argv[4]) : 128;
	int reps = argc > 5 ? atoi(argv[5]) : 3;
	weft_gguf *g = weft_gguf_open(argv[1]);
	weft_model *m = g ? weft_model_load(g) : NULL;
	weft_pool *pool = weft_pool_new(threads);
	if (!m || !pool) {
		fprintf(stderr, "bench_llm: %s: %s\n", argv[1], weft_errmsg());
		return 1;
	}
	const weft_hparams *hp = &m->hp;
	int32_t *ids = malloc((size_t)(pp > tg ? pp : tg) * 4);
	float *logits = malloc((size_t)hp->n_vocab * 4);
	srand(1);
	for (int64_t i = 0; i < (pp > tg ? pp : tg); i++)
		ids[i] = rand() % hp->n_vocab;
	double best_pp = 1e9, best_tg = 1e9;
	for (int r = 0; r < reps; r++) {
		weft_kv *kv = weft_kv_new(m, pp > tg ? pp : tg);
		double t = now();
		if (weft_model_forward(m, pool, kv, ids, NULL, pp, 512, logits, 0, NULL) != 0) {
			fprintf(stderr, "bench_llm: %s\n", weft_errmsg());
			return 1;
		}
		t = now() - t;
		if (t < best_pp)
			best_pp = t;
		weft_kv_free(kv);
		kv = weft_kv_new(m, tg);
		t = now();
		for (int64_t i = 0; i < tg; i++)
			if (weft_model_forward(m, pool, kv, &ids[i], NULL, 1, 1, logits, 0, NULL) != 0) {
				fprintf(stderr, "bench_llm: %s\n", weft_errmsg());
				return 1;
			}
		t = now() - t;
		if (t < best_tg)
			best_tg = t;
		weft_kv_free(kv);
	}
	/* bytes of weights streamed per decoded token: every tensor but the
	 * token embedding table (one row read) */
	uint64_t bytes = 0;
	for (uint64_t i = 0; i < g->n_tensors; i++)
		if (!m->tok_embd || &g->tensors[i] != m->tok_embd || m->hp.tied_output)
			bytes += g->tensors[i].nbytes;
	struct rusage ru; /* before the bandwidth test's buffer */
	getrusage(RUSAGE_SELF, &ru);
	double bw = read_bandwidth(pool);
	double tg_s = (double)tg / best_tg;
	printf("pp%" PRId64 " %.2f t/s  tg%" PRId64 " %.2f t/s  weights/token %.1f MB  read bw %.1f GB/s  "
	       "bound %.1f t/s  tg/bound %.0f%%  peak RSS %ld MB  kernels %s\n",
	       pp, (double)pp / best_pp, tg, tg_s, bytes / 1e6, bw, bw * 1e9 / bytes, 100 * tg_s / (bw * 1e9 / bytes),
	       ru.ru_maxrss / 1024, weft_kernels_level());
	free(ids);
	free(logits);
	weft_pool_free(pool);
	weft_model_free(m);
	weft_gguf_close(g);
	return 0;
}

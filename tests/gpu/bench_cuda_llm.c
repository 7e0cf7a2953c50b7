/* bench_cuda_llm.c - weft's pp/tg on a CUDA device, measured as
 * tests/bench/bench_llm.c (llama-bench's way) measures the CPU:
 *
 *   bench_cuda_llm MODEL.gguf [PP] [TG] [REPS]
 *
 * pp: PP random tokens prefilled into an empty device cache (one call,
 * chunk 512); tg: TG tokens decoded one at a time from an empty cache.
 * Best of REPS (default 3), after one warm-up (weights uploaded).  Also the
 * weights' bytes read per decoded token and the bandwidth that implies
 * (WEFT_HBM_GBS: the GPU's peak, for the fraction).  Built by make CUDA=1;
 * run by tests/gpu/run --bench.  Written without a GPU: not yet run. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cuda_int.h"
#include "kernels.h"
#include "model.h"
#include "model_cuda_int.h"
#include "util.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Seconds for n tokens through a fresh device cache: one call of n
 * (prefill) or n calls of one (decode); -1 on failure. */
static double run(const weft_model *m, weft_pool *pool, const int32_t *ids, int64_t n, int one_by_one, float *logits)
{
	weft_kv *kv = weft_kv_new(m, n);
	if (!kv || weft_model_cuda_attach(m, kv, 0) != 0)
		return -1;
	double t = now();
	int rc = 0;
	if (one_by_one)
		for (int64_t i = 0; i < n && !rc; i++)
			rc = weft_model_forward(m, pool, kv, &ids[i], NULL, 1, 1, logits, 0, NULL);
	else
		rc = weft_model_forward(m, pool, kv, ids, NULL, n, 512, logits, 0, NULL);
	t = now() - t;
	weft_model_cuda_detach();
	weft_kv_free(kv);
	return rc ? -1 : t;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_cuda_llm MODEL.gguf [PP] [TG] [REPS]\n");
		return 2;
	}
	const int64_t pp = argc > 2 ? atoll(argv[2]) : 512, tg = argc > 3 ? atoll(argv[3]) : 128;
	const int reps = argc > 4 ? atoi(argv[4]) : 3;
	char why[256];
	if (weft_cuda_device_count(why, sizeof why) <= 0) {
		fprintf(stderr, "bench_cuda_llm: no CUDA device (%s)\n", why);
		return 1;
	}
	weft_gguf *g = weft_gguf_open(argv[1]);
	weft_model *m = g ? weft_model_load(g) : NULL;
	weft_pool *pool = weft_pool_new(1);
	int32_t *ids = malloc((size_t)(pp > tg ? pp : tg) * 4);
	float *logits = m ? malloc((size_t)m->hp.n_vocab * 4) : NULL;
	if (!m || !pool || !ids || !logits) {
		fprintf(stderr, "bench_cuda_llm: %s: %s\n", argv[1], weft_errmsg());
		return 1;
	}
	srand(1);
	for (int64_t i = 0; i < (pp > tg ? pp : tg); i++)
		ids[i] = rand() % m->hp.n_vocab;
	double best_pp = 1e9, best_tg = 1e9;
	for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
		const double a = run(m, pool, ids, pp, 0, logits), b = run(m, pool, ids, tg, 1, logits);
		if (a < 0 || b < 0) {
			fprintf(stderr, "bench_cuda_llm: %s\n", weft_errmsg());
			return 1;
		}
		if (r >= 0) {
			best_pp = a < best_pp ? a : best_pp;
			best_tg = b < best_tg ? b : best_tg;
		}
	}
	uint64_t bytes = 0; /* every tensor but the token embedding table (one row read) */
	for (uint64_t i = 0; i < g->n_tensors; i++)
		if (&g->tensors[i] != m->tok_embd || m->hp.tied_output)
			bytes += g->tensors[i].nbytes;
	const double tg_s = (double)tg / best_tg, gbs = tg_s * (double)bytes / 1e9;
	const char *hbm = getenv("WEFT_HBM_GBS");
	printf("weft cuda %s: pp%" PRId64 " %.2f t/s  tg%" PRId64 " %.2f t/s  weights/token %.1f MB  %.1f GB/s", argv[1],
	       pp, (double)pp / best_pp, tg, tg_s, (double)bytes / 1e6, gbs);
	if (hbm && atof(hbm) > 0)
		printf(" (%.0f%% of %s GB/s)", 100.0 * gbs / atof(hbm), hbm);
	printf("  on %s\n", weft_cuda_device_name());
	weft_cuda_weights_free();
	free(ids);
	free(logits);
	weft_pool_free(pool);
	weft_model_free(m);
	weft_gguf_close(g);
	return 0;
}

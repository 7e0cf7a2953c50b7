/* bench_matmul.c - weft_matmul throughput at SmolLM2-135M shapes.
 *
 *   [LEVELS="avx2 avx512"] bench_matmul [threads...]   (default: all levels; 1 2)
 *
 * For Q4_1, Q8_0, F16 weights, each kernel level this CPU has, and each
 * thread count: GFLOP/s and GB/s of weights read for decode (T=1) and
 * prefill (T=512) at shapes k x n_out.  Decode cycles through copies of
 * the weights totalling >= 128 MB so they stream from memory, as in a real
 * model.  Then the matmul-only time of one SmolLM2-135M token (30 layers
 * of q,k,v,o,gate,up,down + the 49152-row output) as tokens/s. */
#include "ggml_types.h"
#include "kernels.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
	int64_t k, n;
	int per_token; /* matmuls of this shape per token (30 layers) */
} shape;

static const shape shapes[] = {{576, 576, 60}, {576, 192, 60}, {576, 1536, 60}, {1536, 576, 30}, {576, 49152, 1}};

static float frand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Seconds per call of W (copies rotating) x T tokens. */
static double time_mm(weft_pool *p, uint32_t t, uint8_t **w, int ncopy, shape s, const float *x, int64_t T,
		      float *y)
{
	double flops = 2.0 * (double)s.k * (double)s.n * (double)T, budget = 0.3;
	int reps = 0;
	double t0 = now(), el;
	do {
		for (int i = 0; i < 4; i++, reps++)
			if (weft_matmul(p, t, w[reps % ncopy], s.k, s.n, x, T, y, s.n) != 0) {
				fprintf(stderr, "bench_matmul: %s\n", weft_errmsg());
				exit(1);
			}
		el = now() - t0;
	} while (el < budget && (double)reps * flops < 4e12);
	return el / reps;
}

int main(int argc, char **argv)
{
	int threads[8] = {1, 2}, nth = 2;
	if (argc > 1) {
		nth = 0;
		for (int i = 1; i < argc && nth < 8; i++)
			threads[nth++] = atoi(argv[i]);
	}
	const uint32_t types[] = {WEFT_TYPE_Q4_1, WEFT_TYPE_Q8_0, WEFT_TYPE_F16};
	const char *levels[] = {"scalar", "avx2", "avx512"};
	const int64_t Ts[] = {1, 512};
	unsigned seed = 1;
	float *x = malloc(sizeof(float) * 1536 * 512), *y = malloc(sizeof(float) * 49152 * 512);
	for (int i = 0; i < 1536 * 512; i++)
		x[i] = frand(&seed);
	const char *only = getenv("LEVELS"); /* e.g. "avx2 avx512" */
	for (int li = 0; li < 3; li++) {
		if (only && !strstr(only, levels[li]))
			continue;
		if (weft_kernels_force(levels[li]) != 0) {
			printf("level %s: not on this CPU\n", levels[li]);
			continue;
		}
		for (int ti = 0; ti < 3; ti++) {
			uint32_t type = types[ti];
			for (int hi = 0; hi < nth; hi++) {
				weft_pool *p = weft_pool_new(threads[hi]);
				double tok_s[2] = {0, 0};
				for (int Ti = 0; Ti < 2; Ti++) {
					int64_t T = Ts[Ti];
					if (li == 0 && T > 1 && type != WEFT_TYPE_Q8_0)
						continue; /* scalar prefill: slow, one type is enough */
					for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
						shape s = shapes[si];
						uint64_t rb = weft_type_row_bytes(type, (uint64_t)s.k) * (uint64_t)s.n;
						int ncopy = T == 1 ? (int)((128u << 20) / rb) + 1 : 1;
						uint8_t **w = malloc(sizeof *w * (size_t)ncopy);
						float *row = malloc(sizeof(float) * (size_t)s.k);
						for (int c = 0; c < ncopy; c++) {
							w[c] = malloc(rb);
							if (c) {
								memcpy(w[c], w[0], rb);
								continue;
							}
							for (int64_t o = 0; o < s.n; o++) {
								for (int64_t i = 0; i < s.k; i++)
									row[i] = frand(&seed);
								weft_quantize_row(type, row, w[c] + (uint64_t)o * (rb / (uint64_t)s.n), s.k);
							}
						}
						double sec = time_mm(p, type, w, ncopy, s, x, T, y);
						tok_s[Ti] += sec * s.per_token;
						printf("%-6s %-4s t=%d T=%-3lld %5lldx%-5lld %9.1f us %7.1f GFLOP/s %6.1f GB/s weights\n",
						       levels[li], weft_type_get(type)->name, threads[hi], (long long)T,
						       (long long)s.k, (long long)s.n, sec * 1e6,
						       2.0 * (double)(s.k * s.n * T) / sec * 1e-9,
						       (double)rb / sec * 1e-9 * (T == 1 ? 1 : 1));
						for (int c = 0; c < ncopy; c++)
							free(w[c]);
						free(w), free(row);
					}
				}
				printf("%-6s %-4s t=%d  SmolLM2-135M matmuls only: decode %.1f tok/s", levels[li],
				       weft_type_get(type)->name, threads[hi], 1.0 / tok_s[0]);
				if (tok_s[1] > 0)
					printf(", prefill %.1f tok/s", 512.0 / tok_s[1]);
				printf("\n");
				fflush(stdout);
				weft_pool_free(p);
			}
		}
	}
	free(x), free(y);
	return 0;
}

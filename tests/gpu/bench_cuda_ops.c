/* bench_cuda_ops.c - timings of the CUDA kernels alone (no forward pass
 * exists yet): weft_cuda_matmul at decode (T = 1: weight bytes per second,
 * the fraction of HBM bandwidth when WEFT_HBM_GBS names the GPU's peak, e.g.
 * 3350 for an H100 SXM) and prefill (T = 512: tokens per second) on
 * SmolLM2-135M and Llama-3.2-1B projection shapes, and decode attention over
 * long F16 caches.  Built by make CUDA=1 (build-cuda/tests/bench_cuda_ops,
 * not a test: tests/gpu/run --bench runs it).  Random weights: the figures
 * are the kernels', not a model's.  Prints one line per case. */
#include "cuda_int.h"
#include "ggml_types.h"
#include "kernels.h"
#include "util.h"

#include <math.h>
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

static void *dev_random(size_t bytes, int floats)
{
	uint8_t *h = malloc(bytes);
	uint32_t s = 12345;
	for (size_t i = 0; i < bytes; i++) {
		s = s * 1664525u + 1013904223u;
		h[i] = (uint8_t)(s >> 24);
	}
	if (floats) /* sane float32 values in [-1, 1] */
		for (size_t i = 0; i + 4 <= bytes; i += 4) {
			float f = (float)((h[i] | h[i + 1] << 8) % 20001) / 10000.0f - 1.0f;
			memcpy(h + i, &f, 4);
		}
	void *d = weft_cuda_alloc(bytes);
	if (!d || weft_cuda_upload(d, h, bytes)) {
		fprintf(stderr, "bench_cuda_ops: %s\n", weft_errmsg());
		exit(1);
	}
	free(h);
	return d;
}

/* Fill with quantized blocks whose scales are sane (random bytes make
 * random half scales, NaN and Inf included: fine for timing, but keep
 * them finite). */
static void *dev_weights(uint32_t t, int64_t k, int64_t n)
{
	const uint64_t rb = weft_type_row_bytes(t, (uint64_t)k);
	float *row = malloc((size_t)k * 4);
	uint8_t *w = malloc(rb * (uint64_t)n);
	for (int64_t i = 0; i < k; i++)
		row[i] = (float)((i * 7919) % 2001) / 1000.0f - 1.0f;
	const uint32_t qt = t == WEFT_TYPE_Q4_K || t == WEFT_TYPE_Q5_K || t == WEFT_TYPE_Q6_K ? WEFT_TYPE_Q8_0 : t;
	if (qt != t) { /* no K-quant quantizer: bytes as they come, scales set */
		for (uint64_t i = 0; i < rb * (uint64_t)n; i++)
			w[i] = (uint8_t)(i * 2654435761u >> 13);
		const int bytes = (int)weft_type_get(t)->bytes;
		for (uint64_t b = 0; b < rb * (uint64_t)n / (uint64_t)bytes; b++) {
			uint8_t *blk = w + b * (uint64_t)bytes;
			uint16_t h = weft_fp32_to_fp16(0.001f);
			memcpy(t == WEFT_TYPE_Q6_K ? blk + 208 : blk, &h, 2);
			if (t != WEFT_TYPE_Q6_K)
				memcpy(blk + 2, &h, 2);
		}
	} else {
		for (int64_t o = 0; o < n; o++)
			if (weft_quantize_row(t, row, w + (uint64_t)o * rb, k)) {
				fprintf(stderr, "bench_cuda_ops: %s\n", weft_errmsg());
				exit(1);
			}
	}
	void *d = weft_cuda_alloc(rb * (uint64_t)n);
	if (!d || weft_cuda_upload(d, w, rb * (uint64_t)n))
		exit(1);
	free(w);
	free(row);
	return d;
}

/* Seconds per call: the best of 5 runs of `reps` calls. */
#define TIME(reps, call)                                                         \
	({                                                                       \
		double best_ = 1e30;                                             \
		for (int r_ = 0; r_ < 6; r_++) {                                 \
			weft_cuda_sync();                                        \
			double t0_ = now();                                      \
			for (int i_ = 0; i_ < (reps); i_++)                      \
				if (call) {                                      \
					fprintf(stderr, "bench_cuda_ops: %s\n", weft_errmsg()); \
					exit(1);                                 \
				}                                                \
			weft_cuda_sync();                                        \
			double s_ = (now() - t0_) / (reps);                      \
			if (r_ > 0 && s_ < best_) /* run 0 warms up */           \
				best_ = s_;                                      \
		}                                                                \
		best_;                                                           \
	})

int main(void)
{
	char why[256];
	if (weft_cuda_device_count(why, sizeof why) == 0) {
		printf("SKIP bench_cuda_ops: no CUDA device (%s)\n", why);
		return 0;
	}
	if (weft_cuda_init(0)) {
		fprintf(stderr, "bench_cuda_ops: %s\n", weft_errmsg());
		return 1;
	}
	const char *e = getenv("WEFT_HBM_GBS");
	const double peak = e ? atof(e) : 0;
	printf("# %s; peak %s GB/s\n", weft_cuda_device_name(), e ? e : "unknown (set WEFT_HBM_GBS)");
	static const uint32_t types[] = {WEFT_TYPE_Q4_0, WEFT_TYPE_Q4_1, WEFT_TYPE_Q8_0, WEFT_TYPE_Q4_K,
					 WEFT_TYPE_Q5_K, WEFT_TYPE_Q6_K, WEFT_TYPE_F16, WEFT_TYPE_BF16};
	static const struct {
		const char *name;
		int64_t k, n;
	} shapes[] = {{"smollm2 ffn_up", 576, 1536}, {"smollm2 ffn_down", 1536, 576}, {"1b ffn_up", 2048, 8192},
		      {"1b ffn_down", 8192, 2048}};
	float *dx = dev_random((size_t)512 * 8192 * 4, 1), *dy = dev_random((size_t)512 * 8192 * 4, 1);
	for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
		for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
			const uint32_t t = types[ti];
			const int64_t k = shapes[si].k, n = shapes[si].n;
			if (k % weft_type_get(t)->block)
				continue;
			void *dw = dev_weights(t, k, n);
			const double wb = (double)weft_type_row_bytes(t, (uint64_t)k) * (double)n;
			const double s1 = TIME(50, weft_cuda_matmul(t, dw, k, n, dx, 1, dy, n, 0));
			const double s512 = TIME(3, weft_cuda_matmul(t, dw, k, n, dx, 512, dy, n, 0));
			printf("matmul %-5s %-16s k %5lld n %5lld  T=1 %8.1f us %7.1f GB/s", weft_type_get(t)->name,
			       shapes[si].name, (long long)k, (long long)n, s1 * 1e6, wb / s1 / 1e9);
			if (peak > 0)
				printf(" (%.2f of peak)", wb / s1 / 1e9 / peak);
			printf("  T=512 %8.1f us %8.0f tokens/s %6.2f TOPS\n", s512 * 1e6, 512 / s512,
			       2.0 * (double)k * (double)n * 512 / s512 / 1e12);
			weft_cuda_free(dw);
		}
	/* decode attention: 1 query over L cached rows per KV head */
	static const struct {
		int n_head, n_head_kv, hd;
		int32_t L;
	} at[] = {{9, 3, 64, 4096}, {32, 8, 64, 4096}, {32, 8, 128, 16384}};
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		int32_t len[8];
		for (int g = 0; g < at[i].n_head_kv; g++)
			len[g] = at[i].L;
		const size_t kvb = (size_t)at[i].n_head_kv * (size_t)at[i].L * (size_t)at[i].hd * 2;
		void *dk = dev_random(kvb, 0), *dv = dev_random(kvb, 0);
		weft_cuda_attn a = {.dQ = dx, .dK = dk, .dV = dv, .kv_type = WEFT_TYPE_F16, .kv_head_rows = at[i].L,
				    .kv_len = len, .T = 1, .n_head = at[i].n_head, .n_head_kv = at[i].n_head_kv,
				    .hd = at[i].hd, .scale = 0.125f, .dout = dy};
		const double s = TIME(50, weft_cuda_attention(&a));
		printf("attention f16 decode heads %d/%d hd %d L %d  %8.1f us %7.1f GB/s", at[i].n_head, at[i].n_head_kv,
		       at[i].hd, at[i].L, s * 1e6, 2.0 * (double)kvb / s / 1e9);
		if (peak > 0)
			printf(" (%.2f of peak)", 2.0 * (double)kvb / s / 1e9 / peak);
		a.T = 512; /* prefill: 512 queries at the end of the cache */
		const double sp = TIME(3, weft_cuda_attention(&a));
		printf("  prefill T=512 %8.1f us\n", sp * 1e6);
		weft_cuda_free(dk);
		weft_cuda_free(dv);
	}
	return 0;
}

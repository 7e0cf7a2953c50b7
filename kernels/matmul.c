/* matmul.c - weft_matmul: convert the activations to the weight type's
 * vec_dot type once per call (as llama.cpp's quantize_row_q8_0 / q8_1 /
 * q8_K on x86 do, so quantized values match bit for bit), then split the
 * output rows across the pool.  Within a task, each group of WEFT_NT
 * tokens runs over the task's rows, so a block of weight rows stays in
 * cache while every token uses it, and the kernel decodes each weight
 * block once for WEFT_NT tokens. */
#include "ggml_blocks.h"
#include "ggml_types.h"
#include "kernels.h"
#include "backend.h"
#include "matmul_int.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef TASK_BYTES
#define TASK_BYTES (48 * 1024) /* weight bytes per task, at most, when T > 1 */
#endif
/* Float weights with k > FLOAT_KB: rows per task as if the rows were
 * FLOAT_KB long (the AVX-512 GEMM runs over k in blocks of ~1024 values,
 * each block's activations reused from L1 by every row of the task). */
#define FLOAT_KB 1024
#ifndef FLOAT_TASK_BYTES
#define FLOAT_TASK_BYTES (128 * 1024)
#endif
#ifndef GEMM_TOKENS
#define GEMM_TOKENS 96 /* tokens per GEMM task (a multiple of the tiles' 4 and 6) */
#endif

int weft_matmul_supported(uint32_t wtype)
{
	return wtype < 32 && weft_kern_ref.dot[wtype] != NULL;
}

int weft_act_corr_offset(uint32_t wtype)
{
	switch (wtype) {
	case WEFT_TYPE_Q4_0: return 8;
	case WEFT_TYPE_Q5_0: return 16;
	case WEFT_TYPE_Q8_0: return 128;
	case WEFT_TYPE_Q6_K: return 32;
	default: return 0;
	}
}

/* The vec_dot type of a weight type (as ggml's type_traits_cpu). */
static uint32_t vec_dot_type(uint32_t wtype)
{
	switch (wtype) {
	case WEFT_TYPE_Q4_0: case WEFT_TYPE_Q5_0: case WEFT_TYPE_Q8_0: return WEFT_TYPE_Q8_0;
	case WEFT_TYPE_Q4_1: case WEFT_TYPE_Q5_1: return WEFT_TYPE_Q8_1;
	case WEFT_TYPE_Q4_K: case WEFT_TYPE_Q5_K: case WEFT_TYPE_Q6_K: return WEFT_TYPE_Q8_K;
	default: return wtype;
	}
}

/* Round to nearest, ties to even, for |v| < 2^22 (as _mm256_round_ps with
 * _MM_ROUND_NEAREST, and ggml's nearest_int). */
static float rne(float v)
{
	volatile float big = 12582912.0f; /* keeps the compiler from folding */
	return (v + big) - big;
}

static float fp16_round(float f) { return weft_fp16_to_fp32(weft_fp32_to_fp16(f)); }

/* Fill the per-lane arrays of 32 quants starting at value i. */
static void lanes32(const weft_qact *a, int64_t t, int64_t i, float d, int c)
{
	const int8_t *q = a->q + t * a->q_stride + i;
	for (int l = 0; l < 8; l++) {
		a->dl[t * a->l_stride + i / 4 + l] = d;
		int s4 = q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3];
		a->corr[t * a->l_stride + i / 4 + l] = -c * s4;
	}
}

/* Q8_0 / Q8_1 blocks of 32, as ggml's AVX2 quantize_row_q8_0 / q8_1. */
void weft_act_quant_q8_ref(const weft_qact *a, int64_t t, const float *x, int q81, int c)
{
	int8_t *q = a->q + t * a->q_stride;
	for (int64_t g = 0; g < a->k / 32; g++) {
		const float *xb = x + 32 * g;
		float amax = 0;
		for (int j = 0; j < 32; j++)
			amax = fmaxf(amax, fabsf(xb[j]));
		float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
		int sum = 0;
		for (int j = 0; j < 32; j++) {
			int v = (int)rne(xb[j] * id);
			v = v > 127 ? 127 : v < -128 ? -128 : v;
			q[32 * g + j] = (int8_t)v;
			sum += v;
		}
		lanes32(a, t, 32 * g, fp16_round(d), c);
		a->bs[t * a->g_stride + g] = sum;
		if (q81)
			a->s[t * a->g_stride + g] = fp16_round(d * (float)sum);
	}
}

/* Q8_K blocks of 256, as ggml's quantize_row_q8_K_ref. */
static void quant_q8k(const weft_qact *a, int64_t t, const float *x, int c)
{
	int8_t *q = a->q + t * a->q_stride;
	for (int64_t b = 0; b < a->k / WEFT_QK_K; b++) {
		const float *xb = x + WEFT_QK_K * b;
		int8_t *qb = q + WEFT_QK_K * b;
		float max = 0, amax = 0;
		for (int j = 0; j < WEFT_QK_K; j++)
			if (fabsf(xb[j]) > amax) {
				amax = fabsf(xb[j]);
				max = xb[j];
			}
		float iscale = amax != 0.0f ? -127.f / max : 0.0f, d = amax != 0.0f ? 1 / iscale : 0.0f;
		for (int j = 0; j < WEFT_QK_K; j++) {
			int v = amax != 0.0f ? (int)rne(iscale * xb[j]) : 0;
			qb[j] = (int8_t)(v > 127 ? 127 : v);
		}
		for (int g = 0; g < 8; g++) {
			int sum = 0;
			for (int j = 0; j < 32; j++)
				sum += qb[32 * g + j];
			a->bs[t * a->g_stride + 8 * b + g] = sum;
			lanes32(a, t, WEFT_QK_K * b + 32 * g, d, c);
		}
	}
}

static void convert_token(const weft_kern *kt, const weft_qact *a, uint32_t vtype, int c, int64_t t, const float *x)
{
	float *f = a->f ? a->f + t * a->f_stride : NULL;
	switch (vtype) {
	case WEFT_TYPE_Q8_0:
	case WEFT_TYPE_Q8_1: {
		(kt->quant_q8 ? kt->quant_q8 : weft_act_quant_q8_ref)(a, t, x, vtype == WEFT_TYPE_Q8_1, c);
		break;
	}
	case WEFT_TYPE_Q8_K: quant_q8k(a, t, x, c); break;
	case WEFT_TYPE_F16: kt->round_f16(f, x, a->k); break;
	case WEFT_TYPE_BF16: {
		uint16_t *h = a->h ? a->h + t * a->h_stride : NULL; /* the same values as bf16, zero-padded */
		kt->round_bf16(f, h, x, a->k);
		if (h)
			memset(h + a->k, 0, (size_t)(a->h_stride - a->k) * sizeof *h);
		break;
	}
	default: memcpy(f, x, (size_t)a->k * sizeof *f); break;
	}
	if (a->st) { /* for GEMM tiles: Q8_1 s, Q8_K bs */
		float *st = a->st + t / 4 * 4 * a->g_stride + t % 4;
		for (int64_t g = 0; g < a->k / 32; g++)
			st[4 * g] = vtype == WEFT_TYPE_Q8_1 ? a->s[t * a->g_stride + g] : (float)a->bs[t * a->g_stride + g];
	}
}

static int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }

typedef struct job {
	const weft_kern *kt; /* the level's table, read once per call */
	weft_dot_fn dot;
	weft_gemm_fn gemm;
	int64_t n_rb; /* GEMM: row blocks */
	uint32_t vtype;
	int corr;
	const uint8_t *W;
	uint64_t row_bytes;
	int64_t k, n_out, T, rows_per_task, ldy;
	const float *X;
	float *Y;
	weft_qact a;
} job;

static void convert_task(void *ctx, int task, int n_tasks)
{
	job *j = ctx;
	for (int64_t t = task; t < j->T; t += n_tasks)
		convert_token(j->kt, &j->a, j->vtype, j->corr, t, j->X + t * j->k);
}

static void matmul_task(void *ctx, int task, int n_tasks)
{
	job *j = ctx;
	int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task;
	if (r1 > j->n_out)
		r1 = j->n_out;
	for (int64_t t = 0; t < j->T; t += WEFT_NT) {
		int nt = j->T - t < WEFT_NT ? (int)(j->T - t) : WEFT_NT;
		for (int64_t r = r0; r < r1; r++)
			j->dot(j->k, j->W + r * j->row_bytes, &j->a, t, nt, j->Y + t * j->ldy + r, j->ldy);
	}
}

/* Task = (token block, row block), row blocks varying fastest. */
static void gemm_task(void *ctx, int task, int n_tasks)
{
	(void)n_tasks;
	job *j = ctx;
	int64_t tb = task / j->n_rb, rbk = task % j->n_rb;
	int64_t r0 = rbk * j->rows_per_task, r1 = r0 + j->rows_per_task;
	int64_t t0 = tb * GEMM_TOKENS, t1 = t0 + GEMM_TOKENS;
	if (r1 > j->n_out)
		r1 = j->n_out;
	if (t1 > j->T)
		t1 = j->T;
	j->gemm(j->k, j->W, j->row_bytes, r0, r1, &j->a, t0, t1, j->Y, j->ldy);
}

int weft_matmul(weft_pool *p, uint32_t wtype, const void *W, int64_t k, int64_t n_out, const float *X,
		int64_t T, float *Y, int64_t ldy)
{
	return weft_matmul_ex(p, wtype, W, k, n_out, X, T, Y, ldy, 0);
}

int weft_matmul_ex(weft_pool *p, uint32_t wtype, const void *W, int64_t k, int64_t n_out, const float *X,
		   int64_t T, float *Y, int64_t ldy, unsigned flags)
{
	const weft_type_info *ti = weft_type_get(wtype);
	if (!weft_matmul_supported(wtype)) {
		weft_error("matmul: unsupported weight type %s", ti ? ti->name : "unknown");
		return -1;
	}
	if (k <= 0 || k % ti->block) {
		weft_error("matmul: k = %lld is not a positive multiple of the %s block size %u", (long long)k,
			   ti->name, ti->block);
		return -1;
	}
	if (n_out < 0 || T < 0 || ldy < n_out) {
		weft_error("matmul: bad shape (n_out %lld, T %lld, ldy %lld)", (long long)n_out, (long long)T,
			   (long long)ldy);
		return -1;
	}
	if (!n_out || !T)
		return 0;
	job j = {.vtype = vec_dot_type(wtype), .corr = weft_act_corr_offset(wtype), .W = W, .k = k,
		 .n_out = n_out, .T = T, .ldy = ldy, .X = X, .Y = Y};
	if ((flags & WEFT_MATMUL_F32_ACT) && (j.vtype == WEFT_TYPE_F16 || j.vtype == WEFT_TYPE_BF16))
		j.vtype = WEFT_TYPE_F32; /* the float kernels read a->f as it is */
	j.row_bytes = weft_type_row_bytes(wtype, (uint64_t)k);
	j.kt = weft_kern_get();
	j.dot = j.kt->dot[wtype];
	j.gemm = T > 1 ? j.kt->gemm[wtype] : NULL;
	if (n_out % 8 == 0 && j.kt->dot8[wtype]) {
		j.dot = j.kt->dot8[wtype];
		j.gemm = T > 1 ? j.kt->gemm8[wtype] : NULL;
	}

	/* one allocation for the converted activations */
	weft_qact *a = &j.a;
	a->k = k;
	int quant = j.vtype == WEFT_TYPE_Q8_0 || j.vtype == WEFT_TYPE_Q8_1 || j.vtype == WEFT_TYPE_Q8_K;
	size_t bytes;
	if (quant) {
		a->q_stride = (k + 63) / 64 * 64;
		a->l_stride = pad16(k / 4);
		a->g_stride = pad16(k / 32);
		bytes = (size_t)T * ((size_t)a->q_stride + 8 * (size_t)a->l_stride + 8 * (size_t)a->g_stride);
		if (j.vtype != WEFT_TYPE_Q8_0 && j.gemm)
			bytes += (size_t)(T + 3) / 4 * 16 * (size_t)a->g_stride; /* st */
	} else {
		a->f_stride = pad16(k);
		bytes = (size_t)T * 4 * (size_t)a->f_stride;
		if (j.vtype == WEFT_TYPE_BF16 && j.kt->bf16_act) {
			a->h_stride = (k + 31) / 32 * 32;
			bytes += (size_t)T * 2 * (size_t)a->h_stride;
		}
	}
	uint8_t *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
	if (!buf) {
		weft_error("out of memory");
		return -1;
	}
	if (quant) {
		a->q = (int8_t *)buf;
		a->dl = (float *)(buf + (size_t)T * a->q_stride);
		a->corr = (int32_t *)(a->dl + T * a->l_stride);
		a->bs = a->corr + T * a->l_stride;
		a->s = (float *)(a->bs + T * a->g_stride);
		if (j.vtype != WEFT_TYPE_Q8_0 && j.gemm) {
			a->st = a->s + T * a->g_stride;
			memset(a->st, 0, (size_t)(T + 3) / 4 * 16 * (size_t)a->g_stride);
		}
	} else {
		a->f = (float *)buf;
		if (a->h_stride)
			a->h = (uint16_t *)(a->f + T * a->f_stride);
	}
	int nth = weft_pool_size(p);
	weft_pool_run(p, T < nth ? (int)T : nth, convert_task, &j);

	if (j.gemm) {
		int64_t per = (int64_t)(TASK_BYTES / j.row_bytes) / 4 * 4;
		if (k > FLOAT_KB && (wtype == WEFT_TYPE_F16 || wtype == WEFT_TYPE_F32)) {
			per = (int64_t)(FLOAT_TASK_BYTES / weft_type_row_bytes(wtype, FLOAT_KB)) / 4 * 4;
			/* but at least 4 tasks per thread */
			int64_t n_tb = (T + GEMM_TOKENS - 1) / GEMM_TOKENS;
			while (per > 4 && (n_out + per - 1) / per * n_tb < 4 * nth)
				per -= 4;
		}
		if (per < 4)
			per = 4;
		j.rows_per_task = per;
		j.n_rb = (n_out + per - 1) / per;
		int64_t n_tasks = j.n_rb * ((T + GEMM_TOKENS - 1) / GEMM_TOKENS);
		weft_pool_run(p, (int)n_tasks, gemm_task, &j);
		free(buf);
		return 0;
	}

	/* row split: enough tasks to balance threads; for T > 1 small enough
	 * that a task's rows stay in cache while all tokens pass over them */
	int64_t per = (n_out + 4 * nth - 1) / (4 * nth);
	if (T > 1) {
		int64_t fit = (int64_t)(TASK_BYTES / j.row_bytes);
		if (fit < 1)
			fit = 1;
		if (per > fit)
			per = fit;
	}
	if (per < 1)
		per = 1;
	if (nth == 1 && T == 1)
		per = n_out;
	j.rows_per_task = per;
	int64_t n_tasks = (n_out + per - 1) / per;
	weft_pool_run(p, (int)n_tasks, matmul_task, &j);
	free(buf);
	return 0;
}

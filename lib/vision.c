/* vision.c - CLIP / SigLIP vision encoders and their projectors from
 * llama.cpp mmproj GGUF files (see vision.h): the forward pass (loading
 * is vision_load.c).  It follows transformers
 * (CLIPVisionTransformer, Idefics3VisionTransformer, LlavaMultiModalProjector,
 * Idefics3Connector) in float32:
 *
 *   x = patch_embd(pixels) (+ class token first) + position_embd
 *   x = pre_ln(x)                                    (when present)
 *   for each block run:
 *       h = ln1(x); q, k, v = h Wq + bq, ...
 *       x += softmax(q k^T / sqrt(hd)) v  Wo + bo     (bidirectional)
 *       x += act(ln2(x) Wup + bup) Wdown + bdown
 *   idefics3: x = post_ln(x); pixel shuffle; x Wfc
 *   mlp:      drop the class token; gelu_erf(x W0 + b0) W2 + b2
 *
 * Attention never holds a full N x N matrix: each task takes one image,
 * one head and a block of ATT_QB queries, scores them against every key
 * with weft_sgemm (keys transposed per head once per layer), softmaxes the
 * rows, records saliency, and multiplies by the values in place. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind_int.h"
#include "flowcut_int.h"
#include "ggml_types.h"
#include "util.h"
#include "vision.h"

#define ATT_QB 64            /* queries per attention task */
/* float32 activations for F16/BF16 matrices: transformers' arithmetic */
#define MM WEFT_MATMUL_F32_ACT
#define BATCH_BYTES (256u << 20) /* activation budget that bounds a sub-batch */

/* ---- forward: row-parallel helpers ---- */

enum { R_LN, R_BIAS, R_BIAS_ACT, R_ADD_BIAS };

typedef struct rows_job {
	int op;
	float *y;           /* [rows][n] */
	const float *x;     /* R_LN source, R_ADD_BIAS addend [rows][n] */
	const float *w, *b;
	int64_t rows, n;
	float eps;
	weft_act act;
} rows_job;

static void act_row(float *x, int64_t n, weft_act act)
{
	switch (act) {
	case WEFT_ACT_GELU: weft_gelu_f32(x, n); break;
	case WEFT_ACT_GELU_QUICK: weft_gelu_quick_f32(x, n); break;
	case WEFT_ACT_SILU: weft_silu(x, n); break;
	}
}

static void rows_task(void *ctx, int task, int n_tasks)
{
	const rows_job *j = ctx;
	const int64_t r0 = j->rows * task / n_tasks, r1 = j->rows * (task + 1) / n_tasks;
	for (int64_t r = r0; r < r1; r++) {
		float *y = j->y + r * j->n;
		switch (j->op) {
		case R_LN:
			weft_layernorm(y, j->x + r * j->n, j->w, j->b, j->n, j->eps);
			break;
		case R_BIAS:
		case R_BIAS_ACT:
			if (j->b)
				weft_add(y, j->b, j->n);
			if (j->op == R_BIAS_ACT)
				act_row(y, j->n, j->act);
			break;
		case R_ADD_BIAS: /* y += (x + b), x being scratch: transformers' order */
			if (j->b)
				weft_add((float *)j->x + r * j->n, j->b, j->n);
			weft_add(y, j->x + r * j->n, j->n);
			break;
		}
	}
}

static void run_rows(weft_pool *p, rows_job j)
{
	int n_tasks = weft_pool_size(p) * 4;
	if (n_tasks > j.rows)
		n_tasks = (int)j.rows;
	if (n_tasks > 0)
		weft_pool_run(p, n_tasks, rows_task, &j);
}

/* y = x W (+ b, + activation). */
static int linear(weft_pool *p, const weft_gguf_tensor *W, const float *b, const float *x, int64_t rows, float *y,
		  int act, weft_act which)
{
	const int64_t k = W->ne[0], n = W->ne[1];
	if (weft_matmul_ex(p, W->type, W->data, k, n, x, rows, y, n, MM) != 0)
		return -1;
	if (b || act)
		run_rows(p, (rows_job){.op = act ? R_BIAS_ACT : R_BIAS, .y = y, .b = b, .rows = rows, .n = n, .act = which});
	return 0;
}

/* ---- forward: attention ---- */

typedef struct attn_job {
	const weft_vision_hparams *hp;
	int B, N;             /* images, tokens per image */
	const float *Q, *V;   /* [B*N][D] */
	const float *Kt;      /* [B][H][hd][N]: keys transposed per head */
	float *out;           /* [B*N][D] */
	float *sal;           /* scratch: CLS rows [B][H][N], or column sums [B][H][nqb][N]; NULL */
	float *recv;          /* scratch: column sums [B][H][nqb][N] with a class token; NULL */
	int nqb;              /* query blocks per (image, head) */
	atomic_int err;
} attn_job;

typedef struct pack_job {
	const weft_vision_hparams *hp;
	int B, N;
	const float *K;
	float *Kt;
} pack_job;

static void pack_task(void *ctx, int task, int n_tasks)
{
	(void)n_tasks;
	const pack_job *j = ctx;
	const int H = j->hp->n_head, hd = j->hp->head_dim, D = j->hp->n_embd;
	const int b = task / H, h = task % H;
	float *kt = j->Kt + (size_t)task * hd * j->N;
	for (int t0 = 0; t0 < j->N; t0 += 16) { /* 16 keys: whole cache lines of kt */
		const int nt = j->N - t0 < 16 ? j->N - t0 : 16;
		const float *k = j->K + ((size_t)b * j->N + t0) * D + (size_t)h * hd;
		for (int e = 0; e < hd; e++)
			for (int t = 0; t < nt; t++)
				kt[(size_t)e * j->N + t0 + t] = k[(size_t)t * D + e];
	}
}

/* One (image, head, block of queries): scores = q K^T (weft_sgemm against
 * the transposed keys), scaled and softmaxed row by row, saliency taken from
 * them, then out = p V straight into the head's columns. */
static void attn_task(void *ctx, int task, int n_tasks)
{
	(void)n_tasks;
	attn_job *j = ctx;
	const int H = j->hp->n_head, hd = j->hp->head_dim, D = j->hp->n_embd, N = j->N;
	const int qb = task % j->nqb, bh = task / j->nqb, b = bh / H, h = bh % H;
	const int q0 = qb * ATT_QB, nq = N - q0 < ATT_QB ? N - q0 : ATT_QB;
	const float scale = 1.0f / sqrtf((float)hd);
	float *s = malloc((size_t)nq * N * sizeof(float));
	if (!s) {
		j->err = 1;
		return;
	}
	const size_t row0 = ((size_t)b * N + q0) * D + (size_t)h * hd;
	weft_sgemm(nq, N, hd, j->Q + row0, D, j->Kt + (size_t)bh * hd * N, N, s, N);
	for (int t = 0; t < nq; t++) {
		float *row = s + (size_t)t * N;
		for (int k = 0; k < N; k++)
			row[k] *= scale;
		weft_softmax(row, N);
	}
	if (j->sal && j->hp->has_cls && q0 == 0) /* the class token is query 0 */
		memcpy(j->sal + (size_t)bh * N, s, (size_t)N * sizeof(float));
	float *cs = j->hp->has_cls ? j->recv : j->sal; /* column sums: attention received */
	if (cs) {
		float *col = cs + ((size_t)bh * j->nqb + qb) * N;
		memset(col, 0, (size_t)N * sizeof(float));
		for (int t = 0; t < nq; t++)
			weft_add(col, s + (size_t)t * N, N);
	}
	weft_sgemm(nq, hd, N, s, N, j->V + (size_t)b * N * D + (size_t)h * hd, D, j->out + row0, D);
	free(s);
}

/* ---- forward ---- */

typedef struct scratch {
	float *x, *h, *q, *k, *v, *a, *f, *kt, *sal, *recv;
} scratch;

static void scratch_free(scratch *s)
{
	free(s->x), free(s->h), free(s->q), free(s->k), free(s->v), free(s->a), free(s->f);
	free(s->kt), free(s->sal), free(s->recv);
}

/* Per-image statistics of block l from the per-head scratch of N tokens:
 * dst[n_patches] = the class token's row (cls) or the column sums,
 * averaged; with FlowCut, patch i of the scratch is patch idx[i] (the
 * pruned ones 0). */
static void reduce_stat(const weft_vision_hparams *hp, const float *scr, int b, int nqb, int cls, int N,
			const int32_t *idx, float *dst)
{
	const int H = hp->n_head, off = hp->has_cls ? 1 : 0, np = N - off;
	memset(dst, 0, (size_t)hp->n_patches * sizeof(float));
	const float norm = cls ? 1.0f / H : 1.0f / ((float)H * N);
	for (int h = 0; h < H; h++)
		for (int q = 0; q < (cls ? 1 : nqb); q++) {
			const float *row = scr + (((size_t)b * H + h) * (cls ? 1 : nqb) + q) * N + off;
			for (int i = 0; i < np; i++)
				dst[idx ? idx[i] : i] += row[i] * norm;
		}
}

/* Encode images [0, B) of pixels into out at image offset img0. */
static int encode_batch(const weft_vision *v, weft_pool *p, const float *pixels, int B, int img0,
			weft_vision_out *out, scratch *s)
{
	const weft_vision_hparams *hp = &v->hp;
	const int D = hp->n_embd, P = hp->patch_size, side = hp->n_side, np = hp->n_patches;
	const int S = hp->image_size, kp = 3 * P * P;
	int N = hp->n_pos; /* tokens in flight: FlowCut makes fewer */
	int64_t R = (int64_t)B * N;

	/* patch embedding: im2col rows of (c, ky, kx), times the kernel */
	float *cols = s->f; /* [B*np][3 P P] fits in the FFN buffer */
	for (int b = 0; b < B; b++)
		for (int py = 0; py < side; py++)
			for (int px = 0; px < side; px++) {
				float *row = cols + ((size_t)b * np + (size_t)py * side + px) * kp;
				for (int c = 0; c < 3; c++)
					for (int ky = 0; ky < P; ky++)
						memcpy(row + (c * P + ky) * P,
						       pixels + (((size_t)b * 3 + c) * S + (size_t)py * P + ky) * S + (size_t)px * P,
						       (size_t)P * sizeof(float));
			}
	if (weft_matmul_ex(p, WEFT_TYPE_F32, v->patch_w, kp, D, cols, (int64_t)B * np, s->h, D, MM) != 0)
		return -1;
	const int off = hp->has_cls ? 1 : 0;
	for (int b = 0; b < B; b++) {
		for (int t = 0; t < N; t++) {
			float *x = s->x + ((size_t)b * N + t) * D;
			if (t < off)
				memcpy(x, v->cls, (size_t)D * sizeof(float));
			else {
				memcpy(x, s->h + ((size_t)b * np + t - off) * D, (size_t)D * sizeof(float));
				if (v->patch_b)
					weft_add(x, v->patch_b, D);
			}
			weft_add(x, v->pos + (size_t)t * D, D);
		}
	}
	if (v->pre_ln_w)
		run_rows(p, (rows_job){.op = R_LN, .y = s->x, .x = s->x, .w = v->pre_ln_w, .b = v->pre_ln_b, .rows = R,
				       .n = D, .eps = hp->eps});

	const int H = hp->n_head;
	flowcut fc = {0}; /* FlowCut: one image at a time (weft_vision_encode) */
	if (out->flowcut && flowcut_begin(&fc, np, out->flowcut) != 0)
		return -1;
	const int32_t *map = NULL; /* scratch patch -> grid patch, under FlowCut */
	int rc = -1;
	for (int l = 0; l < hp->n_layer_run; l++) {
		const int nqb = (N + ATT_QB - 1) / ATT_QB;
		R = (int64_t)B * N;
		map = out->flowcut ? fc.idx : NULL;
		const weft_vision_layer *L = &v->layers[l];
		run_rows(p, (rows_job){.op = R_LN, .y = s->h, .x = s->x, .w = L->ln1_w, .b = L->ln1_b, .rows = R, .n = D,
				       .eps = hp->eps});
		if (linear(p, L->q_w, L->q_b, s->h, R, s->q, 0, 0) || linear(p, L->k_w, L->k_b, s->h, R, s->k, 0, 0) ||
		    linear(p, L->v_w, L->v_b, s->h, R, s->v, 0, 0))
			goto out;
		pack_job pj = {hp, B, N, s->k, s->kt};
		weft_pool_run(p, B * H, pack_task, &pj);
		attn_job aj = {hp, B, N, s->q, s->v, s->kt, s->a,
			       out->saliency || out->flowcut || (out->attn_recv && !hp->has_cls) ? s->sal : NULL,
			       out->attn_recv && hp->has_cls ? s->recv : NULL, nqb, 0};
		weft_pool_run(p, B * H * nqb, attn_task, &aj);
		if (aj.err) {
			weft_error("vision attention: out of memory");
			goto out;
		}
		const size_t so = (size_t)hp->n_layer_run * np;
		for (int b = 0; b < B; b++) { /* reduce the per-head scratch */
			float *sal = out->saliency ? out->saliency + (size_t)(img0 + b) * so + (size_t)l * np : NULL;
			float *rcv = out->attn_recv ? out->attn_recv + (size_t)(img0 + b) * so + (size_t)l * np : NULL;
			if (sal)
				reduce_stat(hp, s->sal, b, nqb, hp->has_cls, N, map, sal);
			if (rcv && hp->has_cls)
				reduce_stat(hp, s->recv, b, nqb, 0, N, map, rcv);
			else if (rcv)
				reduce_stat(hp, s->sal, b, nqb, 0, N, map, rcv);
			if (out->keys && l == hp->n_layer_run - 1) { /* the patches' keys, class token dropped */
				float *kd = out->keys + (size_t)(img0 + b) * np * D;
				if (map)
					memset(kd, 0, (size_t)np * D * sizeof(float));
				for (int i = 0; i < N - (hp->has_cls ? 1 : 0); i++)
					memcpy(kd + (size_t)(map ? map[i] : i) * D, s->k + ((size_t)b * N + (hp->has_cls ? 1 : 0) + i) * D,
					       (size_t)D * sizeof(float));
			}
		}
		/* x += a Wo + bo */
		if (weft_matmul_ex(p, L->o_w->type, L->o_w->data, D, D, s->a, R, s->h, D, MM) != 0)
			goto out;
		run_rows(p, (rows_job){.op = R_ADD_BIAS, .y = s->x, .x = s->h, .b = L->o_b, .rows = R, .n = D});
		/* x += act(ln2(x) Wup + bup) Wdown + bdown */
		run_rows(p, (rows_job){.op = R_LN, .y = s->h, .x = s->x, .w = L->ln2_w, .b = L->ln2_b, .rows = R, .n = D,
				       .eps = hp->eps});
		if (linear(p, L->up_w, L->up_b, s->h, R, s->f, 1, hp->act) != 0)
			goto out;
		if (weft_matmul_ex(p, L->down_w->type, L->down_w->data, hp->n_ff, D, s->f, R, s->h, D, MM) != 0)
			goto out;
		run_rows(p, (rows_job){.op = R_ADD_BIAS, .y = s->x, .x = s->h, .b = L->down_b, .rows = R, .n = D});
		if (out->flowcut) { /* FlowCut: fewer patches for the next blocks */
			if (flowcut_layer(&fc, hp, l, s->sal, s->v, s->x) != 0)
				goto out;
			N = fc.n + 1;
		}
	}
	rc = 0;
out:
	if (out->flowcut) {
		if (rc == 0)
			memcpy(out->kept + (size_t)img0 * out->flowcut, fc.idx, (size_t)out->flowcut * sizeof(int32_t));
		flowcut_end(&fc);
	}
	if (rc != 0)
		return -1;

	const int nt = out->flowcut ? out->flowcut : hp->n_tokens; /* tokens out per image */
	float *dst = out->embd + (size_t)img0 * nt * hp->n_embd_out;
	if (hp->proj == WEFT_PROJ_MLP) {
		/* drop the class token; mm.0 -> GELU (erf) -> mm.2 */
		for (int b = 0; b < B; b++)
			memcpy(s->h + (size_t)b * nt * D, s->x + ((size_t)b * N + off) * D, (size_t)nt * D * sizeof(float));
		const int64_t T = (int64_t)B * nt;
		if (linear(p, v->mm0_w, v->mm0_b, s->h, T, s->f, 0, 0) != 0)
			return -1;
		weft_gelu_erf(s->f, T * v->mm_hidden);
		return linear(p, v->mm2_w, v->mm2_b, s->f, T, dst, 0, 0);
	}
	/* idefics3: post-LN, pixel shuffle, fc */
	if (hp->post_ln)
		run_rows(p, (rows_job){.op = R_LN, .y = s->x, .x = s->x, .w = v->post_ln_w, .b = v->post_ln_b, .rows = R,
				       .n = D, .eps = hp->eps});
	const int sf = hp->scale_factor, ts = side / sf;
	const size_t kd = (size_t)D * sf * sf;
	for (int b = 0; b < B; b++)
		for (int ti = 0; ti < ts; ti++)
			for (int tj = 0; tj < ts; tj++) {
				float *row = s->f + ((size_t)b * hp->n_tokens + (size_t)ti * ts + tj) * kd;
				for (int dr = 0; dr < sf; dr++)
					for (int dc = 0; dc < sf; dc++) {
						const size_t patch = (size_t)(ti * sf + dr) * side + (size_t)tj * sf + dc;
						memcpy(row + ((size_t)dr * sf + dc) * D, s->x + ((size_t)b * N + patch) * D,
						       (size_t)D * sizeof(float));
					}
			}
	return linear(p, v->fc_w, NULL, s->f, (int64_t)B * hp->n_tokens, dst, 0, 0);
}

int weft_vision_encode(const weft_vision *v, weft_pool *pool, const float *pixels, int n_img, weft_vision_out *out)
{
	const weft_vision_hparams *hp = &v->hp;
	if (n_img < 0 || !out || !out->embd || (n_img && !pixels)) {
		weft_error("vision: bad arguments");
		return -1;
	}
	if (out->flowcut && (!hp->has_cls || hp->proj != WEFT_PROJ_MLP || !out->kept || out->flowcut < 1 ||
			     out->flowcut >= hp->n_patches)) {
		weft_error(!hp->has_cls || hp->proj != WEFT_PROJ_MLP
				   ? "FlowCut needs an encoder with a class token and an mlp projector (LLaVA's CLIP)"
				   : "FlowCut: %d patches asked of %d", out->flowcut, hp->n_patches);
		return -1;
	}
	if (n_img == 0)
		return 0;
	const int D = hp->n_embd, N = hp->n_pos;
	/* widest per-token row of the FFN buffer: n_ff, im2col, mm hidden, shuffle */
	size_t fw = (size_t)hp->n_ff;
	if ((size_t)3 * hp->patch_size * hp->patch_size > fw)
		fw = (size_t)3 * hp->patch_size * hp->patch_size;
	if ((size_t)v->mm_hidden > fw)
		fw = (size_t)v->mm_hidden;
	if ((size_t)D * hp->scale_factor * hp->scale_factor > fw)
		fw = (size_t)D * hp->scale_factor * hp->scale_factor;
	const size_t per_img = (size_t)N * (7 * (size_t)D + fw) * sizeof(float);
	int sub = (int)(BATCH_BYTES / per_img);
	if (sub < 1)
		sub = 1;
	if (sub > n_img || out->flowcut)
		sub = out->flowcut ? 1 : n_img;
	const int nqb = (N + ATT_QB - 1) / ATT_QB;
	const size_t act = (size_t)sub * N * D;
	scratch s = {0};
	s.x = malloc(act * sizeof(float)), s.h = malloc(act * sizeof(float)), s.q = malloc(act * sizeof(float));
	s.k = malloc(act * sizeof(float)), s.v = malloc(act * sizeof(float)), s.a = malloc(act * sizeof(float));
	s.f = malloc((size_t)sub * N * fw * sizeof(float));
	s.kt = malloc(act * sizeof(float));
	const int want_sal = out->saliency || out->flowcut || (out->attn_recv && !hp->has_cls),
		  want_recv = out->attn_recv && hp->has_cls;
	if (want_sal)
		s.sal = malloc((size_t)sub * hp->n_head * (hp->has_cls ? 1 : nqb) * N * sizeof(float));
	if (want_recv)
		s.recv = malloc((size_t)sub * hp->n_head * nqb * N * sizeof(float));
	int rc = 0;
	if (!s.x || !s.h || !s.q || !s.k || !s.v || !s.a || !s.f || !s.kt || (want_sal && !s.sal) || (want_recv && !s.recv)) {
		weft_error("vision: out of memory for a batch of %d images", sub);
		rc = -1;
	}
	const size_t img_floats = (size_t)3 * hp->image_size * hp->image_size;
	for (int i0 = 0; i0 < n_img && rc == 0; i0 += sub) {
		const int B = n_img - i0 < sub ? n_img - i0 : sub;
		rc = encode_batch(v, pool, pixels + (size_t)i0 * img_floats, B, i0, out, &s);
	}
	scratch_free(&s);
	return rc;
}

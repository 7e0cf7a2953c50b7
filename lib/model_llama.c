/* model_llama.c - the forward pass of llama-family decoders (llama, qwen2),
 * as llama.cpp's llm_build_llama / llm_build_qwen2 compute it:
 *
 *   x = token_embd[id]                       (or a given embedding row)
 *   for each layer:
 *     h = rmsnorm(x) * attn_norm
 *     q, k, v = h Wq (+bq), h Wk (+bk), h Wv (+bv)
 *     q, k = rope(q, pos), rope(k, pos)       normal pairs for llama (its
 *                                             Q/K rows were permuted by the
 *                                             converter), NEOX halves for qwen2
 *     cache k, v                             (kv.c: F16 by default, as
 *                                             llama.cpp's cache)
 *     x += attention(q, cached k, v) Wo      causal, grouped KV heads
 *     h = rmsnorm(x) * ffn_norm
 *     x += (silu(h Wgate) * h Wup) Wdown
 *   logits = (rmsnorm(x) * output_norm) Wout  (Wout = token_embd when tied)
 *
 * Tokens go through in chunks of at most `chunk` rows, so the activations
 * are bounded whatever the prompt length.  Every projection is a
 * weft_matmul (activations quantized to the weight's vec_dot type, as
 * llama.cpp does); row-wise work is spread over the pool.
 *
 * Positions and drops (prune-tokens): each row of a chunk carries its
 * input index (src) and position offset (rpos); RoPE and the cache use
 * base + rpos.  A drop hook (weft_fwd_extra.drop) may remove rows between
 * layers (drop_rows below): later layers run on fewer rows and cache no
 * keys or values for the dropped ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_types.h"
#include "model.h"
#include "model_cuda_int.h"
#include "util.h"

typedef struct fwd {
	const weft_model *m;
	weft_kv *kv;
	weft_fwd_extra *extra;
	const int32_t *ids;     /* or embd */
	const float *embd;
	int64_t T, c0, n;       /* whole call, first token of the chunk, chunk rows */
	int64_t base;           /* kv->n_past when the call began */
	int32_t *src, *rpos;    /* [n] each row's input index and position - base */
	int layer;
	const weft_layer_w *L;
	/* activations of the chunk */
	float *x;               /* [n][n_embd] residual stream */
	float *h;               /* [n][n_embd] normed input / projection output */
	float *q, *k, *v;       /* [n][n_head*hd], [n][n_head_kv*hd] x 2 */
	float *att;             /* [n][n_head*hd] */
	float *gate, *up;       /* [n][n_ff] */
	int err;
} fwd;

enum step { EMBED, ATTN_NORM, QKV_ROPE, RESIDUAL, FFN_NORM, SWIGLU };

static void bias_add(float *y, const weft_gguf_tensor *b, int64_t n)
{
	if (b)
		weft_add(y, b->data, n);
}

/* One row t of the chunk for a step. */
static void row(fwd *f, enum step s, int64_t t)
{
	const weft_hparams *hp = &f->m->hp;
	const int64_t d = hp->n_embd, hd = hp->head_dim, dq = hp->n_head * hd, dkv = hp->n_head_kv * hd;
	float *x = f->x + t * d, *h = f->h + t * d;
	switch (s) {
	case EMBED:
		if (f->ids) {
			const weft_gguf_tensor *te = f->m->tok_embd;
			const uint64_t rb = weft_type_row_bytes(te->type, (uint64_t)d);
			if (weft_dequantize_row(te->type, (const uint8_t *)te->data + rb * (uint64_t)f->ids[f->src[t]],
						x, d) != 0)
				f->err = 1;
		} else {
			memcpy(x, f->embd + f->src[t] * d, sizeof(float) * (size_t)d);
		}
		break;
	case ATTN_NORM:
		weft_rmsnorm(h, x, f->L->attn_norm->data, d, hp->rms_eps);
		break;
	case QKV_ROPE: {
		float *q = f->q + t * dq, *k = f->k + t * dkv, *v = f->v + t * dkv;
		const int64_t pos = f->base + f->rpos[t];
		bias_add(q, f->L->bq, dq);
		bias_add(k, f->L->bk, dkv);
		bias_add(v, f->L->bv, dkv);
		weft_rope(q, hp->n_head, hd, hp->rope_dim, pos, hp->rope_base, hp->rope_freq_scale, hp->rope_neox);
		weft_rope(k, hp->n_head_kv, hd, hp->rope_dim, pos, hp->rope_base, hp->rope_freq_scale, hp->rope_neox);
		/* queries of the call's last n_window tokens, for KV scoring */
		weft_fwd_extra *e = f->extra;
		const int64_t w = f->src[t] - (f->T - (e ? e->n_window : 0));
		if (e && e->window_q && w >= 0)
			memcpy(e->window_q + ((int64_t)f->layer * e->n_window + w) * dq, q, sizeof(float) * (size_t)dq);
		break;
	}
	case RESIDUAL:
		weft_add(x, h, d);
		break;
	case FFN_NORM:
		weft_rmsnorm(h, x, f->L->ffn_norm->data, d, hp->rms_eps);
		break;
	case SWIGLU:
		weft_swiglu(f->gate + t * hp->n_ff, f->gate + t * hp->n_ff, f->up + t * hp->n_ff, hp->n_ff);
		break;
	}
}

typedef struct rows_job {
	fwd *f;
	enum step s;
} rows_job;

static void rows_task(void *ctx, int task, int n_tasks)
{
	rows_job *j = ctx;
	const int64_t n = j->f->n;
	for (int64_t t = n * task / n_tasks; t < n * (task + 1) / n_tasks; t++)
		row(j->f, j->s, t);
}

/* Run a row step over the chunk's rows, spread across the pool. */
static void rows(weft_pool *p, fwd *f, enum step s)
{
	rows_job j = {f, s};
	/* small steps are not worth waking the pool */
	int n_tasks = f->n * f->m->hp.n_embd < 16384 ? 1 : weft_pool_size(p);
	if (n_tasks > f->n)
		n_tasks = (int)f->n;
	weft_pool_run(p, n_tasks, rows_task, &j);
}

/* Pre-RoPE query statistics (weft_fwd_extra.q_sum, q_sq; kvcompress's
 * expected attention): one task per query head sums its rows of the chunk
 * (bias added, as the row step will), so no two tasks share an element. */
static void qstats_task(void *ctx, int task, int n_tasks)
{
	fwd *f = ctx;
	const weft_hparams *hp = &f->m->hp;
	const int64_t hd = hp->head_dim, dq = hp->n_head * hd;
	weft_fwd_extra *e = f->extra;
	double *sum = e->q_sum + ((int64_t)f->layer * hp->n_head + task) * hd;
	double *sq = e->q_sq + (((int64_t)f->layer * hp->n_head + task) * hd) * hd;
	const float *b = f->L->bq ? (const float *)f->L->bq->data + task * hd : NULL;
	float q[1024];
	for (int64_t t = 0; t < f->n && hd <= 1024; t++) {
		if (f->c0 + t < e->q_skip)
			continue;
		for (int64_t i = 0; i < hd; i++)
			q[i] = f->q[t * dq + task * hd + i] + (b ? b[i] : 0.0f);
		for (int64_t i = 0; i < hd; i++) {
			sum[i] += q[i];
			for (int64_t j = 0; j < hd; j++)
				sq[i * hd + j] += (double)q[i] * q[j];
		}
	}
}

static int matmul(weft_pool *p, const weft_gguf_tensor *w, const float *X, int64_t T, float *Y)
{
	return weft_matmul(p, w->type, w->data, w->ne[0], w->ne[1], X, T, Y, w->ne[1]);
}

/* Check the inputs and the cache's room before anything changes. */
static int check_call(const weft_model *m, const weft_kv *kv, const int32_t *ids, const float *embd, int64_t T,
		      const weft_fwd_extra *extra)
{
	const weft_hparams *hp = &m->hp;
	if (T < 0 || (T > 0 && !ids && !embd)) {
		weft_error("forward: no input (%lld tokens)", (long long)T);
		return -1;
	}
	if (kv->n_layer != hp->n_layer || kv->n_head_kv != hp->n_head_kv || kv->head_dim != hp->head_dim) {
		weft_error("forward: KV cache geometry (%d layers, %d KV heads, head size %d) is not the model's",
			   kv->n_layer, kv->n_head_kv, kv->head_dim);
		return -1;
	}
	if (extra && extra->window_q && extra->n_window < 0) {
		weft_error("forward: negative query window %d", extra->n_window);
		return -1;
	}
	for (int64_t t = 0; ids && t < T; t++)
		if (ids[t] < 0 || ids[t] >= hp->n_vocab) {
			weft_error("forward: token %d at %lld is outside the vocabulary (%d tokens)", ids[t],
				   (long long)t, hp->n_vocab);
			return -1;
		}
	for (int l = 0; l < hp->n_layer; l++) /* channel-pruned keys (k_chan) are extended by weft_kv_append */
		if ((kv->layer[l].k_dim != hp->head_dim && !kv->layer[l].k_chan) || kv->layer[l].v_dim != hp->head_dim) {
			weft_error("forward: KV cache layer %d holds channel-pruned rows (%d key, %d value channels), "
				   "which the forward pass cannot extend", l, kv->layer[l].k_dim, kv->layer[l].v_dim);
			return -1;
		}
	if (weft_kv_room(kv, T) != 0) {
		weft_error_prefix("forward");
		return -1;
	}
	const int64_t span = extra && extra->pos ? extra->pos_span : T;
	if (kv->n_past < 0 || span < T || span > INT32_MAX - kv->n_past) {
		weft_error("forward: position %lld out of range", (long long)(kv->n_past + span));
		return -1;
	}
	for (int64_t t = 0; extra && extra->pos && t < T; t++)
		if (extra->pos[t] < 0 || extra->pos[t] >= span || (t && extra->pos[t] <= extra->pos[t - 1])) {
			weft_error("forward: position %d of input %lld is not increasing or not below the span %lld",
				   extra->pos[t], (long long)t, (long long)span);
			return -1;
		}
	return 0;
}

/* ---- in-LLM token drop (prune-tokens' fastv, pdrop, sparsevlm, dart) ----
 * Before layer f->layer: ask the hook which rows go on, and keep only
 * those rows of the residual stream, their input indices and positions.
 * The cache of the layers already run keeps every row; the later layers
 * append only the kept ones.  0 / -1. */
static int drop_rows(fwd *f, weft_pool *pool, const weft_fwd_extra *e, int32_t *keep)
{
	const weft_hparams *hp = &f->m->hp;
	weft_fwd_rows r = {.m = f->m, .kv = f->kv, .pool = pool, .layer = f->layer, .n = f->n, .src = f->src,
			   .pos = f->rpos, .pos_base = f->base, .x = f->x, .q = f->layer ? f->q : NULL};
	int64_t n_keep = f->n;
	if (e->drop(e->drop_ctx, &r, keep, &n_keep) != 0)
		return -1;
	if (n_keep == f->n)
		return 0;
	if (n_keep < 1 || n_keep > f->n || keep[n_keep - 1] != f->n - 1) {
		weft_error("forward: a token drop before layer %d must keep the last row (kept %lld of %lld)", f->layer,
			   (long long)n_keep, (long long)f->n);
		return -1;
	}
	const int64_t d = hp->n_embd;
	for (int64_t i = 0; i < n_keep; i++) {
		if (keep[i] < 0 || keep[i] >= f->n || (i && keep[i] <= keep[i - 1])) {
			weft_error("forward: token drop before layer %d: kept row %d out of order", f->layer, keep[i]);
			return -1;
		}
		if (keep[i] != i) {
			memmove(f->x + i * d, f->x + (int64_t)keep[i] * d, sizeof(float) * (size_t)d);
			f->src[i] = f->src[keep[i]];
			f->rpos[i] = f->rpos[keep[i]];
		}
	}
	f->n = n_keep;
	return 0;
}

int weft_model_forward(const weft_model *m, weft_pool *pool, weft_kv *kv, const int32_t *ids,
		       const float *embd, int64_t T, int64_t chunk, float *logits, int all_logits,
		       weft_fwd_extra *extra)
{
	const weft_hparams *hp = &m->hp;
	if (check_call(m, kv, ids, embd, T, extra) != 0)
		return -1;
	if (T == 0)
		return 0;
#if WEFT_CUDA
	if (weft_model_cuda_attached(kv)) /* the cache is on the device (model_cuda.c) */
		return weft_model_forward_cuda(m, kv, ids, embd, T, chunk, logits, all_logits, extra);
#endif
	const int dropping = extra && extra->drop;
	if (dropping && all_logits) {
		weft_error("forward: a token drop gives the last row's logits only");
		return -1;
	}
	/* a drop needs every row of the prompt at the layer it acts on */
	const int64_t C = dropping ? T : chunk <= 0 || chunk > T ? (T < 512 ? T : 512) : chunk;
	const int64_t d = hp->n_embd, hd = hp->head_dim, dq = hp->n_head * hd, dkv = hp->n_head_kv * hd,
		      ff = hp->n_ff, H = hp->n_head_kv;

	fwd f = {.m = m, .kv = kv, .extra = extra, .ids = ids, .embd = embd, .T = T, .base = kv->n_past};
	const size_t per_row = (size_t)(2 * d + 2 * dq + 2 * dkv + 2 * ff);
	float *buf = weft_malloc(sizeof(float) * per_row * (size_t)C);
	int32_t *ibuf = weft_malloc(sizeof(int32_t) * 3 * (size_t)C);
	if (!buf || !ibuf) {
		free(buf);
		free(ibuf);
		return -1;
	}
	f.src = ibuf;
	f.rpos = ibuf + C;
	f.x = buf;
	f.h = f.x + C * d;
	f.q = f.h + C * d;
	f.att = f.q + C * dq;
	f.k = f.att + C * dq;
	f.v = f.k + C * dkv;
	f.gate = f.v + C * dkv;
	f.up = f.gate + C * ff;
	int rc = -1;
	weft_kv_state saved;
	if (weft_kv_save(kv, &saved) != 0) {
		free(buf);
		free(ibuf);
		return -1;
	}

	for (f.c0 = 0; f.c0 < T; f.c0 += C) {
		f.n = T - f.c0 < C ? T - f.c0 : C;
		for (int64_t t = 0; t < f.n; t++) {
			f.src[t] = (int32_t)(f.c0 + t);
			f.rpos[t] = extra && extra->pos ? extra->pos[f.c0 + t] : (int32_t)(f.c0 + t);
		}
		rows(pool, &f, EMBED);
		if (f.err) {
			weft_error("forward: cannot read the token embeddings");
			goto out;
		}
		for (f.layer = 0; f.layer < hp->n_layer; f.layer++) {
			f.L = &m->layers[f.layer];
			const weft_layer_w *L = f.L;
			if (dropping && drop_rows(&f, pool, extra, ibuf + 2 * C) != 0)
				goto out;

			/* attention */
			rows(pool, &f, ATTN_NORM);
			if (matmul(pool, L->wq, f.h, f.n, f.q) || matmul(pool, L->wk, f.h, f.n, f.k) ||
			    matmul(pool, L->wv, f.h, f.n, f.v))
				goto out;
			if (extra && extra->q_sum && extra->q_sq) /* kvcompress statistics, before RoPE */
				weft_pool_run(pool, hp->n_head, qstats_task, &f);
			rows(pool, &f, QKV_ROPE);
			if (weft_kv_append_at(kv, f.layer, f.n, f.k, f.v, f.base, f.rpos) != 0)
				goto out;
			weft_attn_args a = {
				.Q = f.q, .T = f.n, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .hd = (int)hd,
				.scale = 1.0f / sqrtf((float)hd), .out = f.att,
				.mass = extra && extra->mass ? extra->mass + (int64_t)f.layer * H * kv->cap : NULL,
				.mass_stride = kv->cap,
			};
			weft_kv_attn_args(kv, f.layer, &a);
			weft_attention(pool, &a);
			if (matmul(pool, L->wo, f.att, f.n, f.h))
				goto out;
			rows(pool, &f, RESIDUAL);

			/* feed-forward */
			rows(pool, &f, FFN_NORM);
			if (matmul(pool, L->w_gate, f.h, f.n, f.gate) || matmul(pool, L->w_up, f.h, f.n, f.up))
				goto out;
			rows(pool, &f, SWIGLU);
			if (matmul(pool, L->w_down, f.gate, f.n, f.h))
				goto out;
			rows(pool, &f, RESIDUAL);
		}
		/* output head: every row, or the call's last */
		if (logits && (all_logits || f.src[f.n - 1] == T - 1)) {
			const int64_t r0 = all_logits ? 0 : f.n - 1;
			for (int64_t t = r0; t < f.n; t++)
				weft_rmsnorm(f.h + t * d, f.x + t * d, m->out_norm->data, d, hp->rms_eps);
			float *y = all_logits ? logits + f.c0 * hp->n_vocab : logits;
			if (matmul(pool, m->output, f.h + r0 * d, f.n - r0, y))
				goto out;
		}
	}
	kv->n_past = f.base + (extra && extra->pos ? extra->pos_span : T);
	rc = 0;
out:
	if (rc != 0)
		weft_kv_restore(kv, &saved);
	weft_kv_state_free(&saved);
	free(buf);
	free(ibuf);
	return rc;
}

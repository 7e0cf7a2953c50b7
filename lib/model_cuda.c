/* model_cuda.c - the forward pass of llama-family decoders (llama, qwen2)
 * on a CUDA device, step for step what model_llama.c computes on the CPU:
 *
 *   x = token_embd[id] (dequantized on the host, one row per token) or
 *       the given embedding row, uploaded per chunk
 *   for each layer (every step a kernels/cuda op on device buffers):
 *     h = rmsnorm(x) * attn_norm
 *     q, k, v = h Wq (+bq), h Wk (+bk), h Wv (+bv)
 *     q, k = rope(q, pos), rope(k, pos)      (normal or NEOX, per-token
 *                                            positions as the CPU's)
 *     k, v stored as the next rows of each head of the device cache
 *                                            (F16 or F32, the host layout)
 *     x += attention(q, cached k, v) Wo
 *     h = rmsnorm(x) * ffn_norm
 *     x += (silu(h Wgate) * h Wup) Wdown
 *   logits = (rmsnorm(x) * output_norm) Wout  for the rows asked for
 *
 * Same entry semantics as weft_model_forward: chunks of at most `chunk`
 * rows (<= 0: 512), positions kv->n_past + t (or extra->pos, n_past
 * advancing by pos_span), the last token's logits or all of them, the
 * cache rolled back on failure.  Weights are uploaded once (weight cache,
 * kernels/cuda/cuda_mem.c) and stay in the GGUF's types.
 *
 * COMPILED, NOT RUN ON A GPU (see model_cuda_int.h): until tests/gpu/run
 * has passed on a GPU machine, treat its results as unverified.
 *
 * Without CUDA=1 this file compiles to nothing. */
#if WEFT_CUDA
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_int.h"
#include "ggml_types.h"
#include "model_cuda_int.h"
#include "util.h"

typedef struct dlayer {
	void *k, *v;            /* device rows, the host layer's layout */
	int64_t *hoff;          /* the host hoff [n_head_kv + 1] when attached */
} dlayer;

/* The attached cache and the activations (one process, one cache). */
static struct {
	const weft_model *m;
	weft_kv *kv;
	dlayer *L;
	float *act;             /* device activations for C rows */
	int64_t C;
	int32_t *dpos;          /* device [C] positions */
	float *lg;              /* device [LG_ROWS][n_vocab] logits */
} D;

enum { LG_ROWS = 64 }; /* logits rows computed at a time */

static const void *dw(const weft_gguf_tensor *t)
{
	return weft_cuda_weight(t->data, (size_t)t->nbytes);
}

/* Upload every tensor the pass reads (token_embd only when tied: the
 * embedding rows are read on the host). */
static int upload_weights(const weft_model *m)
{
	if (!dw(m->out_norm) || !dw(m->output))
		return -1;
	for (int l = 0; l < m->hp.n_layer; l++) {
		const weft_layer_w *L = &m->layers[l];
		const weft_gguf_tensor *t[] = {L->attn_norm, L->wq, L->wk, L->wv, L->wo, L->bq, L->bk, L->bv,
					       L->ffn_norm, L->w_gate, L->w_up, L->w_down};
		for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
			if (t[i] && !dw(t[i]))
				return -1;
	}
	return 0;
}

/* What the device path cannot compute: one error line. */
static int check_support(const weft_model *m, const weft_kv *kv)
{
	const weft_hparams *hp = &m->hp;
	if (kv->n_layer != hp->n_layer || kv->n_head_kv != hp->n_head_kv || kv->head_dim != hp->head_dim) {
		weft_error("cuda forward: the KV cache's geometry is not the model's");
		return -1;
	}
	if (hp->head_dim > 256) {
		weft_error("cuda forward: head size %d (the CUDA attention takes up to 256)", hp->head_dim);
		return -1;
	}
	for (int l = 0; l < kv->n_layer; l++) {
		const weft_kv_layer *L = &kv->layer[l];
		if (L->type != WEFT_KV_F16 && L->type != WEFT_KV_F32) {
			weft_error("cuda forward: a %s KV cache is not supported on CUDA (f16 and f32 are)",
				   weft_kv_type_name(L->type) ? weft_kv_type_name(L->type) : "?");
			return -1;
		}
		if (L->q || L->mv || L->k_chan || L->k_dim != hp->head_dim || L->v_dim != hp->head_dim) {
			weft_error("cuda forward: KV cache layer %d is compressed (%s), which the CUDA path does not "
				   "read; use --device cpu",
				   l, L->q ? "KIVI/GEAR" : L->mv ? "MiniCache" : "channel-pruned keys");
			return -1;
		}
	}
	const weft_gguf_tensor *out[] = {m->output};
	for (int l = -1; l < hp->n_layer; l++) {
		const weft_layer_w *L = l >= 0 ? &m->layers[l] : NULL;
		const weft_gguf_tensor *lw[] = {L ? L->wq : out[0], L ? L->wk : NULL, L ? L->wv : NULL,
						L ? L->wo : NULL, L ? L->w_gate : NULL, L ? L->w_up : NULL,
						L ? L->w_down : NULL};
		for (int i = 0; i < 7; i++)
			if (lw[i] && !weft_cuda_matmul_supported(lw[i]->type)) {
				weft_error("cuda forward: tensor '%.*s' is %s, which has no CUDA kernel", (int)lw[i]->name.len,
					   lw[i]->name.ptr, weft_type_get(lw[i]->type)->name);
				return -1;
			}
	}
	return 0;
}

/* Rows in use of head h of layer l, between host and device (dir 0: up). */
static int move_rows(const weft_kv *kv, int l, int dir)
{
	const weft_kv_layer *L = &kv->layer[l];
	const dlayer *dl = &D.L[l];
	for (int h = 0; h < kv->n_head_kv; h++) {
		const int64_t n = kv->len[(size_t)l * kv->n_head_kv + h], r0 = L->hoff[h];
		if (n <= 0)
			continue;
		char *hk = (char *)L->k + (size_t)r0 * L->k_row, *hv = (char *)L->v + (size_t)r0 * L->v_row;
		char *dk = (char *)dl->k + (size_t)r0 * L->k_row, *dv = (char *)dl->v + (size_t)r0 * L->v_row;
		const size_t kb = (size_t)n * L->k_row, vb = (size_t)n * L->v_row;
		if (dir == 0 ? weft_cuda_upload(dk, hk, kb) || weft_cuda_upload(dv, hv, vb)
			     : weft_cuda_download(hk, dk, kb) || weft_cuda_download(hv, dv, vb))
			return -1;
	}
	return 0;
}

void weft_model_cuda_detach(void)
{
	for (int l = 0; D.L && D.kv && l < D.kv->n_layer; l++) {
		weft_cuda_free(D.L[l].k);
		weft_cuda_free(D.L[l].v);
		free(D.L[l].hoff);
	}
	free(D.L);
	weft_cuda_free(D.act);
	weft_cuda_free(D.dpos);
	weft_cuda_free(D.lg);
	memset(&D, 0, sizeof D);
}

int weft_model_cuda_attach(const weft_model *m, weft_kv *kv, int dev)
{
	if (D.kv) {
		weft_error("cuda forward: a KV cache is already on the device");
		return -1;
	}
	if (check_support(m, kv) != 0 || weft_cuda_init(dev) != 0 || upload_weights(m) != 0)
		return -1;
	D.m = m;
	D.kv = kv;
	if (!(D.L = weft_calloc((size_t)kv->n_layer, sizeof *D.L)))
		goto fail;
	const int H = kv->n_head_kv;
	for (int l = 0; l < kv->n_layer; l++) {
		const weft_kv_layer *L = &kv->layer[l];
		const int64_t rows = L->hoff[H];
		dlayer *dl = &D.L[l];
		if (!(dl->hoff = weft_malloc(sizeof(int64_t) * (size_t)(H + 1))))
			goto fail;
		memcpy(dl->hoff, L->hoff, sizeof(int64_t) * (size_t)(H + 1));
		if (!(dl->k = weft_cuda_alloc((size_t)(rows > 0 ? rows : 1) * L->k_row)) ||
		    !(dl->v = weft_cuda_alloc((size_t)(rows > 0 ? rows : 1) * L->v_row)) || move_rows(kv, l, 0) != 0)
			goto fail;
	}
	return 0;
fail:
	weft_error_prefix("cuda forward: attaching the KV cache");
	weft_model_cuda_detach();
	return -1;
}

int weft_model_cuda_attached(const weft_kv *kv)
{
	return kv && D.kv == kv;
}

/* 0 when the host cache's layout is still the one on the device. */
static int same_layout(const weft_kv *kv)
{
	for (int l = 0; l < kv->n_layer; l++)
		if (memcmp(D.L[l].hoff, kv->layer[l].hoff, sizeof(int64_t) * (size_t)(kv->n_head_kv + 1)) != 0) {
			weft_error("cuda forward: the KV cache was resized on the host while on the device");
			return -1;
		}
	return 0;
}

int weft_model_cuda_download(weft_kv *kv)
{
	if (!weft_model_cuda_attached(kv)) {
		weft_error("cuda forward: this KV cache is not on the device");
		return -1;
	}
	if (same_layout(kv) != 0)
		return -1;
	for (int l = 0; l < kv->n_layer; l++)
		if (move_rows(kv, l, 1) != 0)
			return -1;
	return 0;
}

/* The chunk's state: device activation pointers and host bookkeeping. */
typedef struct dfwd {
	const weft_model *m;
	weft_kv *kv;
	int64_t n, base;
	const int32_t *rpos;    /* [n] positions - base */
	float *x, *h, *q, *k, *v, *att, *gate, *up;
	int64_t *row0;          /* host [n_head_kv] */
} dfwd;

static int mm(const weft_gguf_tensor *w, const float *X, int64_t T, float *Y)
{
	const void *d = dw(w);
	return d ? weft_cuda_matmul(w->type, d, w->ne[0], w->ne[1], X, T, Y, w->ne[1], 0) : -1;
}

static int bias(float *y, const weft_gguf_tensor *b, int64_t rows)
{
	return b ? weft_cuda_add_rows(y, dw(b), rows, b->ne[0]) : 0;
}

/* Append the chunk's keys and values to layer l (device rows, host len
 * and positions), as weft_kv_append_at does. */
static int append(dfwd *f, int l)
{
	weft_kv *kv = f->kv;
	const weft_kv_layer *L = &kv->layer[l];
	const int H = kv->n_head_kv, hd = kv->head_dim;
	int32_t *len = kv->len + (size_t)l * H;
	for (int h = 0; h < H; h++)
		f->row0[h] = L->hoff[h] + len[h];
	if (weft_cuda_kv_store(D.L[l].k, L->type, f->k, f->n, H, hd, f->row0) ||
	    weft_cuda_kv_store(D.L[l].v, L->type, f->v, f->n, H, hd, f->row0))
		return -1;
	for (int h = 0; h < H; h++) {
		int32_t *pos = L->pos + f->row0[h];
		for (int64_t t = 0; t < f->n; t++)
			pos[t] = (int32_t)(f->base + f->rpos[t]);
		len[h] += (int32_t)f->n;
	}
	return 0;
}

/* One layer over the chunk's rows. */
static int layer(dfwd *f, int l)
{
	const weft_hparams *hp = &f->m->hp;
	const weft_layer_w *L = &f->m->layers[l];
	const int64_t n = f->n, d = hp->n_embd, hd = hp->head_dim;
	const weft_kv_layer *KL = &f->kv->layer[l];
	if (weft_cuda_rmsnorm(f->h, f->x, dw(L->attn_norm), n, d, hp->rms_eps) || mm(L->wq, f->h, n, f->q) ||
	    mm(L->wk, f->h, n, f->k) || mm(L->wv, f->h, n, f->v) || bias(f->q, L->bq, n) || bias(f->k, L->bk, n) ||
	    bias(f->v, L->bv, n) ||
	    weft_cuda_rope(f->q, n, hp->n_head, hd, hp->rope_dim, D.dpos, hp->rope_base, hp->rope_freq_scale,
			   hp->rope_neox) ||
	    weft_cuda_rope(f->k, n, hp->n_head_kv, hd, hp->rope_dim, D.dpos, hp->rope_base, hp->rope_freq_scale,
			   hp->rope_neox) ||
	    append(f, l))
		return -1;
	weft_cuda_attn a = {.dQ = f->q, .dK = D.L[l].k, .dV = D.L[l].v, .kv_type = (uint32_t)KL->type,
			    .kv_len = f->kv->len + (size_t)l * hp->n_head_kv, .kv_head_off = KL->hoff, .T = n,
			    .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .hd = (int)hd,
			    .scale = 1.0f / sqrtf((float)hd), .dout = f->att};
	return weft_cuda_attention(&a) || mm(L->wo, f->att, n, f->h) || weft_cuda_add(f->x, f->h, n * d) ||
			       weft_cuda_rmsnorm(f->h, f->x, dw(L->ffn_norm), n, d, hp->rms_eps) ||
			       mm(L->w_gate, f->h, n, f->gate) || mm(L->w_up, f->h, n, f->up) ||
			       weft_cuda_swiglu(f->gate, f->gate, f->up, n * hp->n_ff) || mm(L->w_down, f->gate, n, f->h) ||
			       weft_cuda_add(f->x, f->h, n * d)
		       ? -1
		       : 0;
}

/* Device activations for C rows (kept between calls). */
static int reserve_act(const weft_hparams *hp, int64_t C)
{
	if (C <= D.C)
		return 0;
	const int64_t d = hp->n_embd, dq = (int64_t)hp->n_head * hp->head_dim,
		      dkv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
	weft_cuda_free(D.act);
	weft_cuda_free(D.dpos);
	weft_cuda_free(D.lg);
	D.C = 0;
	D.act = weft_cuda_alloc(sizeof(float) * (size_t)(2 * d + 2 * dq + 2 * dkv + 2 * ff) * (size_t)C);
	D.dpos = weft_cuda_alloc(sizeof(int32_t) * (size_t)C);
	D.lg = weft_cuda_alloc(sizeof(float) * LG_ROWS * (size_t)hp->n_vocab);
	if (!D.act || !D.dpos || !D.lg)
		return -1;
	D.C = C;
	return 0;
}

/* The chunk's input rows (token embeddings dequantized on the host, as
 * model_llama.c's EMBED step) and positions to the device. */
static int inputs(dfwd *f, const int32_t *ids, const float *embd, int64_t c0, float *xh, int32_t *ph)
{
	const weft_model *m = f->m;
	const int64_t d = m->hp.n_embd;
	for (int64_t t = 0; t < f->n; t++) {
		if (ids) {
			const weft_gguf_tensor *te = m->tok_embd;
			const uint64_t rb = weft_type_row_bytes(te->type, (uint64_t)d);
			if (weft_dequantize_row(te->type, (const uint8_t *)te->data + rb * (uint64_t)ids[c0 + t], xh + t * d,
						d) != 0) {
				weft_error("forward: cannot read the token embeddings");
				return -1;
			}
		} else {
			memcpy(xh + t * d, embd + (c0 + t) * d, sizeof(float) * (size_t)d);
		}
		ph[t] = (int32_t)(f->base + f->rpos[t]);
	}
	return weft_cuda_upload(f->x, xh, sizeof(float) * (size_t)(f->n * d)) ||
			       weft_cuda_upload(D.dpos, ph, sizeof(int32_t) * (size_t)f->n)
		       ? -1
		       : 0;
}

int weft_model_forward_cuda(const weft_model *m, weft_kv *kv, const int32_t *ids, const float *embd, int64_t T,
			    int64_t chunk, float *logits, int all_logits, const weft_fwd_extra *extra)
{
	const weft_hparams *hp = &m->hp;
	if (!weft_model_cuda_attached(kv) || D.m != m) {
		weft_error("cuda forward: the KV cache or model is not the one attached to the device");
		return -1;
	}
	if (extra && (extra->mass || (extra->window_q && extra->n_window > 0) || extra->drop || extra->q_sum ||
		      extra->q_sq)) {
		weft_error("forward: attention mass, query windows, query statistics and in-LLM token drops are not "
			   "supported on CUDA; use --device cpu");
		return -1;
	}
	if (same_layout(kv) != 0 || check_support(m, kv) != 0)
		return -1;
	if (T == 0)
		return 0;
	const int64_t C = chunk <= 0 || chunk > T ? (T < 512 ? T : 512) : chunk;
	const int64_t d = hp->n_embd, dq = (int64_t)hp->n_head * hp->head_dim,
		      dkv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff, nv = hp->n_vocab;
	if (reserve_act(hp, C) != 0)
		return -1;
	float *xh = weft_malloc(sizeof(float) * (size_t)(C * d));
	int32_t *ih = weft_malloc(sizeof(int32_t) * 2 * (size_t)C);
	int64_t *row0 = weft_malloc(sizeof(int64_t) * (size_t)kv->n_head_kv);
	weft_kv_state saved = {0};
	int rc = -1, saved_ok = 0;
	if (!xh || !ih || !row0 || weft_kv_save(kv, &saved) != 0)
		goto out;
	saved_ok = 1;
	dfwd f = {.m = m, .kv = kv, .base = kv->n_past, .rpos = ih, .row0 = row0};
	f.x = D.act;
	f.h = f.x + C * d;
	f.q = f.h + C * d;
	f.att = f.q + C * dq;
	f.k = f.att + C * dq;
	f.v = f.k + C * dkv;
	f.gate = f.v + C * dkv;
	f.up = f.gate + C * ff;
	for (int64_t c0 = 0; c0 < T; c0 += C) {
		f.n = T - c0 < C ? T - c0 : C;
		for (int64_t t = 0; t < f.n; t++)
			ih[t] = extra && extra->pos ? extra->pos[c0 + t] : (int32_t)(c0 + t);
		if (inputs(&f, ids, embd, c0, xh, ih + C) != 0)
			goto out;
		for (int l = 0; l < hp->n_layer; l++)
			if (layer(&f, l) != 0)
				goto out;
		/* output head: every row, or the call's last */
		if (logits && (all_logits || c0 + f.n == T)) {
			const int64_t r0 = all_logits ? 0 : f.n - 1;
			float *y = all_logits ? logits + c0 * nv : logits;
			if (weft_cuda_rmsnorm(f.h + r0 * d, f.x + r0 * d, dw(m->out_norm), f.n - r0, d, hp->rms_eps))
				goto out;
			for (int64_t t = r0; t < f.n; t += LG_ROWS) {
				const int64_t nr = f.n - t < LG_ROWS ? f.n - t : LG_ROWS;
				if (mm(m->output, f.h + t * d, nr, D.lg) ||
				    weft_cuda_download(y + (t - r0) * nv, D.lg, sizeof(float) * (size_t)(nr * nv)))
					goto out;
			}
		}
	}
	if (weft_cuda_sync() != 0)
		goto out;
	kv->n_past = f.base + (extra && extra->pos ? extra->pos_span : T);
	rc = 0;
out:
	if (rc != 0 && saved_ok)
		weft_kv_restore(kv, &saved);
	if (saved_ok)
		weft_kv_state_free(&saved);
	free(xh);
	free(ih);
	free(row0);
	return rc;
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int weft_model_cuda_unused;
#endif

/* kvq.c - the KV cache's compressed layouts (kv.h): channel-pruned keys
 * (ThinK) and KIVI-quantized older rows (KIVI, with GEAR's terms added by
 * kvm_gear.c).  The quantizers themselves are kernels/kivi.c's, shared
 * with the attention kernels' references. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "util.h"

/* A plain row of n values of L's type (F16 or F32) as float32. */
static void plain_f32(const weft_kv_layer *L, const void *row, int n, float *out)
{
	if (L->type == WEFT_KV_F32)
		memcpy(out, row, sizeof(float) * (size_t)n);
	else
		weft_f16_to_f32(out, row, n);
}

int weft_kv_prune_channels(weft_kv *kv, int l, int k_dim, const int32_t *keep)
{
	weft_kv_layer *L = &kv->layer[l];
	const int H = kv->n_head_kv, D = kv->head_dim;
	if (L->k_chan || L->k_dim != D) {
		weft_error("layer %d: key channels already pruned", l);
		return -1;
	}
	if (L->q) {
		weft_error("layer %d: key channels cannot be pruned after quantization (put think before kivi/gear)", l);
		return -1;
	}
	if (L->type != WEFT_KV_F16 && L->type != WEFT_KV_F32) {
		weft_error("layer %d: key channels can be pruned in f16 and f32 caches only (this one is %s)", l,
			   weft_kv_type_name(L->type));
		return -1;
	}
	if (k_dim < 1 || k_dim > D) {
		weft_error("layer %d: %d key channels kept of %d", l, k_dim, D);
		return -1;
	}
	for (int h = 0; h < H; h++)
		for (int i = 0; i < k_dim; i++) {
			const int32_t c = keep[(size_t)h * k_dim + i];
			if (c < 0 || c >= D || (i > 0 && c <= keep[(size_t)h * k_dim + i - 1])) {
				weft_error("layer %d head %d: kept key channel %d out of order or range", l, h, c);
				return -1;
			}
		}
	const size_t es = L->type == WEFT_KV_F32 ? 4 : 2, nrow = (size_t)k_dim * es;
	const int64_t rows = L->hoff[H];
	char *nk = weft_malloc((size_t)rows * nrow);
	int32_t *chan = weft_malloc((size_t)H * (size_t)k_dim * sizeof *chan);
	if (!nk || !chan) {
		free(nk), free(chan);
		return -1;
	}
	memcpy(chan, keep, (size_t)H * (size_t)k_dim * sizeof *chan);
	for (int h = 0; h < H; h++)
		for (int64_t r = 0; r < kv->len[(size_t)l * H + h]; r++) {
			const char *src = weft_kv_krow(kv, l, h, r);
			char *dst = nk + (size_t)(L->hoff[h] + r) * nrow;
			for (int i = 0; i < k_dim; i++)
				memcpy(dst + (size_t)i * es, src + (size_t)chan[(size_t)h * k_dim + i] * es, es);
		}
	free(L->k);
	L->k = nk;
	L->k_dim = k_dim;
	L->k_row = nrow;
	L->k_chan = chan;
	return 0;
}

void weft_kvq_sync(weft_kvq *q)
{
	weft_attn_kivi *v = &q->view;
	v->kbits = q->kbits;
	v->vbits = q->vbits;
	v->vgroup = q->vgroup;
	v->n = q->n;
	v->kb = (const uint8_t *const *)q->kb;
	v->vb = (const uint8_t *const *)q->vb;
	v->rank = q->rank;
	v->lr_n = q->lr_n;
	v->ka = (const uint16_t *const *)q->ka;
	v->va = (const uint16_t *const *)q->va;
	v->kbasis = (const float *const *)q->kbasis;
	v->vbasis = (const float *const *)q->vbasis;
	v->ko_n = q->ko_n;
	v->vo_n = q->vo_n;
	v->ko = (const weft_kivi_outlier *const *)q->ko;
	v->vo = (const weft_kivi_outlier *const *)q->vo;
}

static void free_ptrs(void **p, int n)
{
	for (int i = 0; p && i < n; i++)
		free(p[i]);
	free(p);
}

void weft_kvq_free(weft_kvq *q, int H)
{
	if (!q)
		return;
	free(q->n);
	free(q->cap);
	free_ptrs((void **)q->kb, H);
	free_ptrs((void **)q->vb, H);
	free_ptrs((void **)q->pos, H);
	free(q->lr_n);
	free_ptrs((void **)q->ka, H);
	free_ptrs((void **)q->va, H);
	free_ptrs((void **)q->kbasis, H);
	free_ptrs((void **)q->vbasis, H);
	free(q->ko_n);
	free(q->vo_n);
	free_ptrs((void **)q->ko, H);
	free_ptrs((void **)q->vo, H);
	free(q);
}

int weft_kvq_init(weft_kv *kv, int l, int kbits, int vbits, int residual)
{
	weft_kv_layer *L = &kv->layer[l];
	const int H = kv->n_head_kv, D = kv->head_dim;
	const int vg = D < 32 ? D : 32;
	if (L->q) {
		weft_error("layer %d is already quantized", l);
		return -1;
	}
	if ((kbits != 2 && kbits != 4 && kbits != 8) || (vbits != 2 && vbits != 4 && vbits != 8)) {
		weft_error("KIVI: %d-bit keys, %d-bit values: 2, 4 or 8 bits", kbits, vbits);
		return -1;
	}
	if (D % vg || (vg * vbits) % 8 || residual < 0) {
		weft_error("KIVI: head size %d is not a multiple of the value group %d", D, vg);
		return -1;
	}
	if (L->type != WEFT_KV_F16 && L->type != WEFT_KV_F32) {
		weft_error("layer %d: KIVI quantizes an f16 or f32 cache (this one is %s)", l, weft_kv_type_name(L->type));
		return -1;
	}
	weft_kvq *q = weft_calloc(1, sizeof *q);
	if (!q)
		return -1;
	q->kbits = kbits;
	q->vbits = vbits;
	q->vgroup = vg;
	q->residual = residual;
	q->kblk = weft_kivi_kblock_bytes(L->k_dim, kbits);
	q->vrow = weft_kivi_vrow_bytes(D, vg, vbits);
	q->n = weft_calloc((size_t)H, sizeof *q->n);
	q->cap = weft_calloc((size_t)H, sizeof *q->cap);
	q->kb = weft_calloc((size_t)H, sizeof *q->kb);
	q->vb = weft_calloc((size_t)H, sizeof *q->vb);
	q->pos = weft_calloc((size_t)H, sizeof *q->pos);
	if (!q->n || !q->cap || !q->kb || !q->vb || !q->pos) {
		weft_kvq_free(q, H);
		return -1;
	}
	weft_kvq_sync(q);
	L->q = q;
	return 0;
}

int weft_kvq_reserve(weft_kv *kv, int l, int h, int64_t n)
{
	weft_kvq *q = kv->layer[l].q;
	if (n <= q->cap[h])
		return 0;
	if (n > INT32_MAX / 2) {
		weft_error("KIVI: %lld rows too many", (long long)n);
		return -1;
	}
	int64_t c = q->cap[h] * 3 / 2 > n ? q->cap[h] * 3 / 2 : n;
	c = (c + WEFT_KIVI_BLOCK - 1) / WEFT_KIVI_BLOCK * WEFT_KIVI_BLOCK;
	uint8_t *kb = realloc(q->kb[h], (size_t)c / WEFT_KIVI_BLOCK * q->kblk);
	if (kb)
		q->kb[h] = kb;
	uint8_t *vb = kb ? realloc(q->vb[h], (size_t)c * q->vrow) : NULL;
	if (vb)
		q->vb[h] = vb;
	int32_t *pos = vb ? realloc(q->pos[h], (size_t)c * sizeof *pos) : NULL;
	if (!pos) {
		weft_error("out of memory");
		return -1;
	}
	q->pos[h] = pos;
	q->cap[h] = (int32_t)c;
	weft_kvq_sync(q);
	return 0;
}

int weft_kvq_append_rows(weft_kv *kv, int l, int h, const float *K, const float *V, const int32_t *pos, int64_t n)
{
	weft_kv_layer *L = &kv->layer[l];
	weft_kvq *q = L->q;
	const int D = kv->head_dim, kd = L->k_dim;
	if (n % WEFT_KIVI_BLOCK || weft_kvq_reserve(kv, l, h, q->n[h] + n) != 0) {
		if (n % WEFT_KIVI_BLOCK)
			weft_error("KIVI: %lld rows are not whole blocks of 32", (long long)n);
		return -1;
	}
	for (int64_t b = 0; b < n; b += WEFT_KIVI_BLOCK) {
		int bad = weft_kivi_quant_keys(K + (size_t)b * kd, kd, kd, q->kbits,
					       q->kb[h] + (size_t)(q->n[h] + b) / WEFT_KIVI_BLOCK * q->kblk) != 0;
		for (int r = 0; !bad && r < WEFT_KIVI_BLOCK; r++)
			bad = weft_kivi_quant_vrow(V + (size_t)(b + r) * D, D, q->vgroup, q->vbits,
						   q->vb[h] + (size_t)(q->n[h] + b + r) * q->vrow) != 0;
		if (bad) {
			weft_error("layer %d head %d: a key or value of rows %lld..%lld is not finite (NaN, Inf or beyond "
				   "the half range): cannot quantize it", l, h, (long long)b, (long long)b + WEFT_KIVI_BLOCK - 1);
			return -1;
		}
	}
	memcpy(q->pos[h] + q->n[h], pos, (size_t)n * sizeof *pos);
	q->n[h] += (int32_t)n;
	weft_kvq_sync(q);
	return 0;
}

int weft_kvq_take(weft_kv *kv, int l, int h, float **K, float **V, int64_t *n)
{
	const weft_kv_layer *L = &kv->layer[l];
	const int D = kv->head_dim, kd = L->k_dim;
	const int64_t len = kv->len[(size_t)l * kv->n_head_kv + h];
	*n = len - L->q->residual >= WEFT_KIVI_BLOCK ? (len - L->q->residual) / WEFT_KIVI_BLOCK * WEFT_KIVI_BLOCK : 0;
	*K = weft_malloc(sizeof(float) * (size_t)(*n > 0 ? *n : 1) * (size_t)kd);
	*V = weft_malloc(sizeof(float) * (size_t)(*n > 0 ? *n : 1) * (size_t)D);
	if (!*K || !*V) {
		free(*K), free(*V);
		*K = *V = NULL;
		return -1;
	}
	for (int64_t r = 0; r < *n; r++) {
		plain_f32(L, weft_kv_krow(kv, l, h, r), kd, *K + (size_t)r * kd);
		plain_f32(L, weft_kv_vrow(kv, l, h, r), D, *V + (size_t)r * D);
	}
	return 0;
}

int weft_kvq_drop_front(weft_kv *kv, int l, int h, int64_t n)
{
	const int32_t len = kv->len[(size_t)l * kv->n_head_kv + h];
	weft_kv_layer *L = &kv->layer[l];
	const int64_t rest = len - n;
	int32_t *pos = weft_kv_pos(kv, l, h);
	memmove(weft_kv_krow(kv, l, h, 0), weft_kv_krow(kv, l, h, n), (size_t)rest * L->k_row);
	memmove(weft_kv_vrow(kv, l, h, 0), weft_kv_vrow(kv, l, h, n), (size_t)rest * L->v_row);
	memmove(pos, pos + n, (size_t)rest * sizeof *pos);
	for (int64_t r = rest; r < len; r++)
		pos[r] = -1;
	kv->len[(size_t)l * kv->n_head_kv + h] = (int32_t)rest;
	return 0;
}

int weft_kv_settle(weft_kv *kv, int l)
{
	weft_kvq *q = kv->layer[l].q;
	if (!q)
		return 0;
	int rc = 0;
	for (int h = 0; rc == 0 && h < kv->n_head_kv; h++) {
		float *K, *V;
		int64_t n;
		if (weft_kvq_take(kv, l, h, &K, &V, &n) != 0)
			return -1;
		if (n > 0 && (rc = weft_kvq_append_rows(kv, l, h, K, V, weft_kv_pos(kv, l, h), n)) == 0)
			weft_kvq_drop_front(kv, l, h, n);
		free(K), free(V);
	}
	return rc;
}

/* 0 when every value of layer l's plain rows can be quantized (finite,
 * within the half range), else -1 + an error naming the first that cannot. */
static int check_finite(const weft_kv *kv, int l)
{
	const weft_kv_layer *L = &kv->layer[l];
	const int H = kv->n_head_kv;
	float buf[4096];
	for (int h = 0; h < H; h++)
		for (int64_t r = 0; r < kv->len[(size_t)l * H + h]; r++)
			for (int kvi = 0; kvi < 2; kvi++) {
				const int n = kvi ? L->v_dim : L->k_dim;
				plain_f32(L, kvi ? weft_kv_vrow(kv, l, h, r) : weft_kv_krow(kv, l, h, r), n < 4096 ? n : 4096, buf);
				for (int i = 0; i < n && i < 4096; i++)
					if (!(fabsf(buf[i]) <= 65504.0f)) {
						weft_error("layer %d head %d row %lld: %s channel %d is %g: cannot quantize "
							   "a value that is not finite (or beyond the half range)", l, h,
							   (long long)r, kvi ? "value" : "key", i, (double)buf[i]);
						return -1;
					}
			}
	return 0;
}

int weft_kv_quantize(weft_kv *kv, int l, int kbits, int vbits, int residual)
{
	if (weft_kvq_init(kv, l, kbits, vbits, residual) != 0)
		return -1;
	if (check_finite(kv, l) != 0) {
		weft_kvq_free(kv->layer[l].q, kv->n_head_kv);
		kv->layer[l].q = NULL;
		return -1;
	}
	if (weft_kv_settle(kv, l) != 0) {
		weft_kvq_free(kv->layer[l].q, kv->n_head_kv);
		kv->layer[l].q = NULL;
		return -1;
	}
	return 0;
}

void weft_kvview_free(weft_kvview *v, int H)
{
	if (!v)
		return;
	free(v->n);
	free_ptrs((void **)v->idx, H);
	free_ptrs((void **)v->pos, H);
	free_ptrs((void **)v->ks, H);
	free_ptrs((void **)v->vs, H);
	free(v);
}

int weft_kvview_init(weft_kv *kv, int l, int src)
{
	const int H = kv->n_head_kv;
	weft_kv_layer *L = &kv->layer[l];
	if (L->mv || src < 0 || src >= l || kv->layer[src].mv || kv->layer[src].q || kv->layer[src].k_chan ||
	    kv->layer[src].type != L->type) {
		weft_error("layer %d cannot share layer %d's rows", l, src);
		return -1;
	}
	weft_kvview *v = weft_calloc(1, sizeof *v);
	if (!v)
		return -1;
	v->src = src;
	v->n = weft_calloc((size_t)H, sizeof *v->n);
	v->idx = weft_calloc((size_t)H, sizeof *v->idx);
	v->pos = weft_calloc((size_t)H, sizeof *v->pos);
	v->ks = weft_calloc((size_t)H, sizeof *v->ks);
	v->vs = weft_calloc((size_t)H, sizeof *v->vs);
	if (!v->n || !v->idx || !v->pos || !v->ks || !v->vs) {
		weft_kvview_free(v, H);
		return -1;
	}
	L->mv = v;
	return 0;
}

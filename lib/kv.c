/* kv.c - the KV cache (see kv.h). */
#include "kv.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *weft_kv_type_name(weft_kv_type t)
{
	switch (t) {
	case WEFT_KV_F16: return "f16";
	case WEFT_KV_F32: return "f32";
	case WEFT_KV_Q8_0: return "q8_0";
	}
	return NULL;
}

int weft_kv_type_parse(const char *s)
{
	static const weft_kv_type all[] = {WEFT_KV_F16, WEFT_KV_F32, WEFT_KV_Q8_0};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		const char *n = weft_kv_type_name(all[i]);
		size_t k = 0;
		while (n[k] && s[k] && (s[k] == n[k] || s[k] == n[k] - 'a' + 'A'))
			k++;
		if (!n[k] && !s[k])
			return (int)all[i];
	}
	return -1;
}

/* Allocate layer L's rows for cap rows per head (positions -1). */
static int layer_alloc(const weft_kv *kv, weft_kv_layer *L, int64_t cap)
{
	uint64_t rows, kb, vb;
	if (cap < 1 || weft_mul_overflow((uint64_t)kv->n_head_kv, (uint64_t)cap, &rows) ||
	    weft_mul_overflow(rows, L->k_row, &kb) || weft_mul_overflow(rows, L->v_row, &vb) || kb > SIZE_MAX / 2 ||
	    vb > SIZE_MAX / 2 || rows > SIZE_MAX / 8) {
		weft_error("KV cache: %lld rows too large", (long long)cap);
		return -1;
	}
	L->k = weft_malloc((size_t)kb);
	L->v = weft_malloc((size_t)vb);
	L->pos = weft_malloc((size_t)rows * sizeof *L->pos);
	if (!L->k || !L->v || !L->pos)
		return -1;
	for (uint64_t i = 0; i < rows; i++)
		L->pos[i] = -1;
	return 0;
}

static void layer_free(weft_kv_layer *L)
{
	free(L->k);
	free(L->v);
	free(L->pos);
	L->k = L->v = NULL;
	L->pos = NULL;
}

weft_kv *weft_kv_alloc(int n_layer, int n_head_kv, int head_dim, int64_t cap, weft_kv_type t)
{
	const uint64_t rb = weft_kv_type_name(t) ? weft_type_row_bytes(t, (uint64_t)(head_dim > 0 ? head_dim : 0)) : 0;
	if (!weft_kv_type_name(t) || head_dim < 1 || !rb) {
		weft_error("KV cache: type %s cannot hold rows of %d values", weft_kv_type_name(t) ? weft_kv_type_name(t) : "?",
			   head_dim);
		return NULL;
	}
	if (n_layer < 1 || n_head_kv < 1) {
		weft_error("KV cache: %d layers of %d heads", n_layer, n_head_kv);
		return NULL;
	}
	weft_kv *kv = weft_calloc(1, sizeof *kv);
	if (!kv)
		return NULL;
	kv->n_layer = n_layer;
	kv->n_head_kv = n_head_kv;
	kv->head_dim = head_dim;
	kv->cap = cap;
	kv->layer = weft_calloc((size_t)n_layer, sizeof *kv->layer);
	kv->len = weft_calloc((size_t)n_layer * (size_t)n_head_kv, sizeof *kv->len);
	if (!kv->layer || !kv->len)
		goto fail;
	for (int l = 0; l < n_layer; l++) {
		weft_kv_layer *L = &kv->layer[l];
		L->type = t;
		L->k_dim = L->v_dim = head_dim;
		L->k_row = L->v_row = (size_t)rb;
		if (layer_alloc(kv, L, cap) != 0)
			goto fail;
	}
	return kv;
fail:
	weft_kv_free(kv);
	return NULL;
}

void weft_kv_free(weft_kv *kv)
{
	if (!kv)
		return;
	for (int l = 0; kv->layer && l < kv->n_layer; l++)
		layer_free(&kv->layer[l]);
	free(kv->layer);
	free(kv->len);
	free(kv);
}

int weft_kv_reserve(weft_kv *kv, int64_t cap)
{
	if (cap <= kv->cap)
		return 0;
	const int H = kv->n_head_kv;
	weft_kv_layer *nl = weft_calloc((size_t)kv->n_layer, sizeof *nl);
	if (!nl)
		return -1;
	for (int l = 0; l < kv->n_layer; l++) {
		weft_kv_layer *o = &kv->layer[l], *n = &nl[l];
		*n = *o;
		if (layer_alloc(kv, n, cap) != 0) {
			for (int i = 0; i <= l; i++)
				layer_free(&nl[i]);
			free(nl);
			return -1;
		}
		for (int h = 0; h < H; h++) {
			const size_t rows = (size_t)kv->len[l * H + h], so = (size_t)h * (size_t)kv->cap,
				     dn = (size_t)h * (size_t)cap;
			memcpy((char *)n->k + dn * n->k_row, (char *)o->k + so * o->k_row, rows * o->k_row);
			memcpy((char *)n->v + dn * n->v_row, (char *)o->v + so * o->v_row, rows * o->v_row);
			memcpy(n->pos + dn, o->pos + so, rows * sizeof *n->pos);
		}
	}
	for (int l = 0; l < kv->n_layer; l++)
		layer_free(&kv->layer[l]);
	free(kv->layer);
	kv->layer = nl;
	kv->cap = cap;
	return 0;
}

/* n float32 values into a row of type t. */
static void store_row(weft_kv_type t, void *dst, const float *src, int n)
{
	switch (t) {
	case WEFT_KV_F32: memcpy(dst, src, sizeof(float) * (size_t)n); break;
	case WEFT_KV_F16: weft_f32_to_f16(dst, src, n); break;
	default: weft_quantize_row(t, src, dst, n); break; /* the type's row size was checked at allocation */
	}
}

int weft_kv_room(const weft_kv *kv, int64_t n)
{
	for (int64_t i = 0; i < (int64_t)kv->n_layer * kv->n_head_kv; i++)
		if (kv->len[i] < 0 || kv->len[i] > kv->cap || n > kv->cap - kv->len[i]) {
			weft_error("KV cache full (%d rows held, %lld new, capacity %lld)", kv->len[i], (long long)n,
				   (long long)kv->cap);
			return -1;
		}
	return 0;
}

int weft_kv_append(weft_kv *kv, int l, int64_t n, const float *k, const float *v, int64_t pos0)
{
	return weft_kv_append_at(kv, l, n, k, v, pos0, NULL);
}

int weft_kv_append_at(weft_kv *kv, int l, int64_t n, const float *k, const float *v, int64_t pos0, const int32_t *pos)
{
	const int H = kv->n_head_kv, D = kv->head_dim;
	const weft_kv_layer *L = &kv->layer[l];
	if (L->k_dim != D || L->v_dim != D) {
		weft_error("KV cache: layer %d holds keys of %d and values of %d channels; new rows have %d", l, L->k_dim,
			   L->v_dim, D);
		return -1;
	}
	int32_t *len = kv->len + (size_t)l * H;
	for (int h = 0; h < H; h++) {
		if (n > kv->cap - len[h]) {
			weft_error("KV cache full (%d rows held, %lld new, capacity %lld)", len[h], (long long)n,
				   (long long)kv->cap);
			return -1;
		}
		for (int64_t t = 0; t < n; t++) {
			const int64_t r = len[h] + t;
			store_row(L->type, weft_kv_krow(kv, l, h, r), k + (t * H + h) * D, D);
			store_row(L->type, weft_kv_vrow(kv, l, h, r), v + (t * H + h) * D, D);
			L->pos[(size_t)h * (size_t)kv->cap + (size_t)r] = (int32_t)(pos0 + (pos ? pos[t] : t));
		}
		len[h] += (int32_t)n;
	}
	return 0;
}

int weft_kv_compact(weft_kv *kv, int l, int h, const int32_t *keep, int64_t n_keep)
{
	int32_t *len = &kv->len[(size_t)l * kv->n_head_kv + h];
	const weft_kv_layer *L = &kv->layer[l];
	for (int64_t i = 0; i < n_keep; i++)
		if (keep[i] < 0 || keep[i] >= *len || (i > 0 && keep[i] <= keep[i - 1])) {
			weft_error("KV compaction: kept row %d (entry %lld) is out of order or outside the %d rows held",
				   keep[i], (long long)i, *len);
			return -1;
		}
	int32_t *pos = L->pos + (size_t)h * (size_t)kv->cap;
	for (int64_t i = 0; i < n_keep; i++) {
		if (keep[i] == i)
			continue;
		memmove(weft_kv_krow(kv, l, h, i), weft_kv_krow(kv, l, h, keep[i]), L->k_row);
		memmove(weft_kv_vrow(kv, l, h, i), weft_kv_vrow(kv, l, h, keep[i]), L->v_row);
		pos[i] = pos[keep[i]];
	}
	for (int64_t i = n_keep; i < *len; i++)
		pos[i] = -1;
	*len = (int32_t)n_keep;
	return 0;
}

int weft_kv_save(const weft_kv *kv, weft_kv_state *s)
{
	const size_t n = (size_t)kv->n_layer * (size_t)kv->n_head_kv;
	s->n_past = kv->n_past;
	s->len = weft_malloc(n * sizeof *s->len);
	if (!s->len)
		return -1;
	memcpy(s->len, kv->len, n * sizeof *s->len);
	return 0;
}

void weft_kv_restore(weft_kv *kv, const weft_kv_state *s)
{
	const int H = kv->n_head_kv;
	for (int l = 0; l < kv->n_layer; l++)
		for (int h = 0; h < H; h++) {
			int32_t *pos = kv->layer[l].pos + (size_t)h * (size_t)kv->cap;
			for (int32_t r = s->len[l * H + h]; r < kv->len[l * H + h]; r++)
				pos[r] = -1;
		}
	memcpy(kv->len, s->len, (size_t)kv->n_layer * (size_t)H * sizeof *kv->len);
	kv->n_past = s->n_past;
}

void weft_kv_state_free(weft_kv_state *s)
{
	free(s->len);
	s->len = NULL;
}

uint64_t weft_kv_bytes(const weft_kv *kv)
{
	uint64_t b = 0;
	for (int l = 0; l < kv->n_layer; l++)
		for (int h = 0; h < kv->n_head_kv; h++)
			b += (uint64_t)kv->len[l * kv->n_head_kv + h] *
			     (kv->layer[l].k_row + kv->layer[l].v_row + sizeof(int32_t));
	return b;
}

void weft_kv_attn_args(const weft_kv *kv, int l, weft_attn_args *a)
{
	const weft_kv_layer *L = &kv->layer[l];
	a->K = L->k;
	a->V = L->v;
	a->kv_type = (uint32_t)L->type;
	a->kv_head_rows = kv->cap;
	a->kv_len = kv->len + (size_t)l * kv->n_head_kv;
}

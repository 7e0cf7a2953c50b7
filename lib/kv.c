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

/* Allocate layer L's rows: head h gets cap[h] rows (positions -1).  On
 * failure L is left without arrays. */
static int layer_alloc(const weft_kv *kv, weft_kv_layer *L, const int64_t *cap)
{
	const int H = kv->n_head_kv;
	uint64_t rows = 0, kb, vb;
	for (int h = 0; h < H; h++) {
		if (cap[h] < 1 || cap[h] > INT32_MAX) {
			weft_error("KV cache: %lld rows too large", (long long)cap[h]);
			return -1;
		}
		rows += (uint64_t)cap[h];
	}
	if (weft_mul_overflow(rows, L->k_row, &kb) || weft_mul_overflow(rows, L->v_row, &vb) || kb > SIZE_MAX / 2 ||
	    vb > SIZE_MAX / 2 || rows > SIZE_MAX / 8) {
		weft_error("KV cache: %llu rows too large", (unsigned long long)rows);
		return -1;
	}
	L->k = weft_malloc((size_t)kb);
	L->v = weft_malloc((size_t)vb);
	L->pos = weft_malloc((size_t)rows * sizeof *L->pos);
	L->hoff = weft_malloc(((size_t)H + 1) * sizeof *L->hoff);
	if (!L->k || !L->v || !L->pos || !L->hoff) {
		free(L->k), free(L->v), free(L->pos), free(L->hoff);
		L->k = L->v = NULL, L->pos = NULL, L->hoff = NULL;
		return -1;
	}
	L->hoff[0] = 0;
	for (int h = 0; h < H; h++)
		L->hoff[h + 1] = L->hoff[h] + cap[h];
	for (uint64_t i = 0; i < rows; i++)
		L->pos[i] = -1;
	return 0;
}

static void layer_free(weft_kv_layer *L, int H)
{
	free(L->k);
	free(L->v);
	free(L->pos);
	free(L->hoff);
	free(L->k_chan);
	weft_kvq_free(L->q, H);
	weft_kvview_free(L->mv, H);
	L->mv = NULL;
	L->k = L->v = NULL;
	L->pos = NULL;
	L->hoff = NULL;
	L->k_chan = NULL;
	L->q = NULL;
}

/* kv->cap = the largest head capacity of any layer. */
static void update_cap(weft_kv *kv)
{
	int64_t c = 1;
	for (int l = 0; l < kv->n_layer; l++)
		for (int h = 0; kv->layer[l].hoff && h < kv->n_head_kv; h++)
			if (kv->layer[l].hoff[h + 1] - kv->layer[l].hoff[h] > c)
				c = kv->layer[l].hoff[h + 1] - kv->layer[l].hoff[h];
	kv->cap = c;
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
	int64_t *caps = weft_malloc((size_t)n_head_kv * sizeof *caps);
	if (!kv->layer || !kv->len || !caps)
		goto fail;
	for (int h = 0; h < n_head_kv; h++)
		caps[h] = cap;
	for (int l = 0; l < n_layer; l++) {
		weft_kv_layer *L = &kv->layer[l];
		L->type = t;
		L->k_dim = L->v_dim = head_dim;
		L->k_row = L->v_row = (size_t)rb;
		if (layer_alloc(kv, L, caps) != 0)
			goto fail;
	}
	free(caps);
	return kv;
fail:
	free(caps);
	weft_kv_free(kv);
	return NULL;
}

void weft_kv_free(weft_kv *kv)
{
	if (!kv)
		return;
	for (int l = 0; kv->layer && l < kv->n_layer; l++)
		layer_free(&kv->layer[l], kv->n_head_kv);
	free(kv->layer);
	free(kv->len);
	free(kv);
}

int weft_kv_layer_fit(weft_kv *kv, int l, const int64_t *cap, int64_t extra)
{
	const int H = kv->n_head_kv;
	weft_kv_layer *o = &kv->layer[l], n = *o;
	int64_t caps[64] = {0}, *cp = H <= 64 ? caps : weft_malloc((size_t)H * sizeof *cp);
	if (!cp)
		return -1;
	for (int h = 0; h < H; h++) {
		const int64_t have = kv->len[(size_t)l * H + h];
		cp[h] = cap ? cap[h] : have + extra;
		if (cp[h] < have)
			cp[h] = have;
		if (cp[h] < 1)
			cp[h] = 1;
	}
	const int rc = layer_alloc(kv, &n, cp);
	if (cp != caps)
		free(cp);
	if (rc != 0)
		return -1;
	if (o->hoff)
		for (int h = 0; h < H; h++) {
			const size_t rows = (size_t)kv->len[(size_t)l * H + h], so = (size_t)o->hoff[h],
				     dn = (size_t)n.hoff[h];
			memcpy((char *)n.k + dn * n.k_row, (char *)o->k + so * o->k_row, rows * o->k_row);
			memcpy((char *)n.v + dn * n.v_row, (char *)o->v + so * o->v_row, rows * o->v_row);
			memcpy(n.pos + dn, o->pos + so, rows * sizeof *n.pos);
		}
	free(o->k), free(o->v), free(o->pos), free(o->hoff);
	*o = n;
	update_cap(kv);
	return 0;
}

/* Grow every head whose capacity is short: to cap rows (absolute), or, when
 * extra, to its rows held + n with an eighth of slack. */
static int reserve_heads(weft_kv *kv, int64_t n, int extra)
{
	const int H = kv->n_head_kv;
	int64_t caps[64] = {0}, *cp = H <= 64 ? caps : weft_malloc((size_t)H * sizeof *cp);
	if (!cp)
		return -1;
	int rc = 0;
	for (int l = 0; rc == 0 && l < kv->n_layer; l++) {
		const weft_kv_layer *L = &kv->layer[l];
		int grow = 0;
		for (int h = 0; h < H; h++) {
			const int64_t have = kv->len[(size_t)l * H + h], want = extra ? have + n : n;
			cp[h] = L->hoff[h + 1] - L->hoff[h];
			if (want > cp[h])
				cp[h] = extra ? want + want / 8 : want, grow = 1;
		}
		if (grow)
			rc = weft_kv_layer_fit(kv, l, cp, 0);
	}
	if (cp != caps)
		free(cp);
	return rc;
}

int weft_kv_reserve(weft_kv *kv, int64_t cap) { return reserve_heads(kv, cap, 0); }

int weft_kv_reserve_extra(weft_kv *kv, int64_t n) { return reserve_heads(kv, n, 1); }

int weft_kv_fit(weft_kv *kv, int64_t extra)
{
	for (int l = 0; l < kv->n_layer; l++)
		if (weft_kv_layer_fit(kv, l, NULL, extra) != 0)
			return -1;
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
	for (int l = 0; l < kv->n_layer; l++)
		for (int h = 0; h < kv->n_head_kv; h++) {
			const int32_t have = kv->len[l * kv->n_head_kv + h];
			const int64_t cap = kv->layer[l].hoff[h + 1] - kv->layer[l].hoff[h];
			if (have < 0 || have > cap || n > cap - have) {
				weft_error("KV cache full (%d rows held, %lld new, capacity %lld)", have, (long long)n,
					   (long long)cap);
				return -1;
			}
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
	if ((L->k_dim != D && !L->k_chan) || L->v_dim != D) {
		weft_error("KV cache: layer %d holds keys of %d and values of %d channels; new rows have %d", l, L->k_dim,
			   L->v_dim, D);
		return -1;
	}
	int32_t *len = kv->len + (size_t)l * H;
	float kb[4096];
	for (int h = 0; h < H; h++) {
		if (n > L->hoff[h + 1] - L->hoff[h] - len[h]) {
			weft_error("KV cache full (%d rows held, %lld new, capacity %lld)", len[h], (long long)n,
				   (long long)(L->hoff[h + 1] - L->hoff[h]));
			return -1;
		}
		const int32_t *chan = L->k_chan ? L->k_chan + (size_t)h * L->k_dim : NULL;
		for (int64_t t = 0; t < n; t++) {
			const int64_t r = len[h] + t;
			const float *kr = k + (t * H + h) * D;
			if (chan) { /* the kept channels only */
				for (int i = 0; i < L->k_dim && i < 4096; i++)
					kb[i] = kr[chan[i]];
				kr = kb;
			}
			store_row(L->type, weft_kv_krow(kv, l, h, r), kr, L->k_dim);
			store_row(L->type, weft_kv_vrow(kv, l, h, r), v + (t * H + h) * D, D);
			weft_kv_pos(kv, l, h)[r] = (int32_t)(pos0 + (pos ? pos[t] : t));
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
	int32_t *pos = weft_kv_pos(kv, l, h);
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

int weft_kv_save(weft_kv *kv, weft_kv_state *s)
{
	const size_t n = (size_t)kv->n_layer * (size_t)kv->n_head_kv;
	s->len = NULL;
	for (int l = 0; l < kv->n_layer; l++)
		if (kv->layer[l].q && weft_kv_settle(kv, l) != 0)
			return -1;
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
			int32_t *pos = weft_kv_pos(kv, l, h);
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
	const int H = kv->n_head_kv;
	for (int l = 0; l < kv->n_layer; l++) {
		const weft_kv_layer *L = &kv->layer[l];
		for (int h = 0; h < H; h++)
			b += (uint64_t)kv->len[l * H + h] * (L->k_row + L->v_row + sizeof(int32_t));
		if (L->k_chan)
			b += (uint64_t)H * (uint64_t)L->k_dim * sizeof(int32_t);
		const weft_kvq *q = L->q;
		for (int h = 0; q && h < H; h++) {
			b += (uint64_t)q->n[h] / WEFT_KIVI_BLOCK * q->kblk + (uint64_t)q->n[h] * (q->vrow + sizeof(int32_t));
			if (q->rank > 0 && q->lr_n[h] > 0)
				b += (uint64_t)q->lr_n[h] * (uint64_t)q->rank * 4 +
				     (uint64_t)q->rank * (uint64_t)(L->k_dim + L->v_dim) * sizeof(float);
			b += (uint64_t)((q->ko_n ? q->ko_n[h] : 0) + (q->vo_n ? q->vo_n[h] : 0)) * sizeof(weft_kivi_outlier);
		}
		for (int h = 0; L->mv && h < H; h++) /* row index, position, two scales */
			b += (uint64_t)L->mv->n[h] * 16;
	}
	return b;
}

uint64_t weft_kv_bytes_f16(const weft_kv *kv)
{
	return (uint64_t)kv->n_layer * (uint64_t)kv->n_head_kv * (uint64_t)kv->n_past *
	       ((uint64_t)kv->head_dim * 4 + sizeof(int32_t));
}

void weft_kv_attn_args(const weft_kv *kv, int l, weft_attn_args *a)
{
	const weft_kv_layer *L = &kv->layer[l];
	a->K = L->k;
	a->V = L->v;
	a->kv_type = (uint32_t)L->type;
	a->kv_head_rows = kv->cap;
	a->kv_head_off = L->hoff;
	a->kv_len = kv->len + (size_t)l * kv->n_head_kv;
	a->k_dim = L->k_chan ? L->k_dim : 0;
	a->k_chan = L->k_chan;
	a->kivi = L->q ? &L->q->view : NULL;
	a->view = NULL;
	if (L->mv) { /* the shared layer's arrays as they are now (decode grows them) */
		weft_attn_view *v = &L->mv->view;
		const weft_kv_layer *S = &kv->layer[L->mv->src];
		v->K = S->k;
		v->V = S->v;
		v->head_off = S->hoff;
		v->n = L->mv->n;
		v->idx = (const int32_t *const *)L->mv->idx;
		v->ks = (const float *const *)L->mv->ks;
		v->vs = (const float *const *)L->mv->vs;
		a->view = v;
	}
}

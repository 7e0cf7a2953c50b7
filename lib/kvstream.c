/* kvstream.c - see kvstream.h. */
#include "kvstream.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int set_model(weft_frame *f, const weft_model *m)
{
	char fp[17];
	weft_fingerprint_hex(m->fingerprint, fp);
	return weft_frame_set(f, "weft.model", fp);
}

/* Integer metadata value, or -1 with an error naming the frame and key. */
static int64_t meta_int(const weft_frame *f, const char *key)
{
	const char *s = weft_frame_get(f, key);
	char *end;
	if (!s || !*s) {
		weft_error("frame %" PRIu64 ": %s frame lacks %s", f->index, weft_frame_kind(f), key);
		return -1;
	}
	long long v = strtoll(s, &end, 10);
	if (*end || v < 0) {
		weft_error("frame %" PRIu64 ": %s is not a count", f->index, key);
		return -1;
	}
	return v;
}

/* The tensor `name` with the given dtype and shape, or NULL + error. */
static const weft_tensor *want_tensor(const weft_frame *f, const char *name, weft_dtype dt, int ndim,
				      const int64_t *shape)
{
	const weft_tensor *t = weft_frame_tensor(f, name);
	if (!t) {
		weft_error("frame %" PRIu64 ": %s frame lacks tensor '%s'", f->index, weft_frame_kind(f), name);
		return NULL;
	}
	int ok = t->dtype == dt && t->ndim == ndim;
	for (int i = 0; ok && i < ndim; i++)
		ok = t->shape[i] == shape[i];
	if (!ok) {
		weft_error("frame %" PRIu64 ": tensor '%s' has the wrong dtype or shape for this model", f->index, name);
		return NULL;
	}
	return t;
}

weft_frame *weft_kvcache_frame(const weft_model *m, const weft_kv *kv, const int32_t *hist, int64_t n_hist)
{
	weft_frame *f = weft_frame_new("kvcache");
	int64_t shape[1] = {n_hist};
	if (!f || set_model(f, m) || weft_frame_setf(f, "weft.n_layer", "%d", kv->n_layer) ||
	    weft_frame_setf(f, "weft.n_head_kv", "%d", kv->n_head_kv) ||
	    weft_frame_setf(f, "weft.head_dim", "%d", kv->head_dim) ||
	    weft_frame_setf(f, "weft.n_past", "%" PRId64, kv->n_past) ||
	    (kv->type == WEFT_KV_F32 && weft_frame_set(f, "weft.kv_type", "F32")) ||
	    !weft_frame_add(f, "tokens", WEFT_DT_I32, 1, shape, hist)) {
		weft_frame_free(f);
		return NULL;
	}
	return f;
}

weft_frame *weft_kv_layer_frame(const weft_model *m, const weft_kv *kv, int layer, const float *mass)
{
	int H = kv->n_head_kv, D = kv->head_dim;
	const int32_t *len = kv->len + (size_t)layer * H;
	const weft_dtype dt = kv->type == WEFT_KV_F32 ? WEFT_DT_F32 : WEFT_DT_F16;
	const size_t e = weft_kv_elt(kv);
	int64_t L = 0;
	for (int h = 0; h < H; h++)
		if (len[h] > L)
			L = len[h];
	weft_frame *f = weft_frame_new("kv");
	int64_t s3[3] = {H, L, D}, s2[2] = {H, L}, s1[1] = {H};
	weft_tensor *tk, *tv, *tp, *tm = NULL;
	if (!f || set_model(f, m) || weft_frame_setf(f, "weft.layer", "%d", layer) ||
	    !(tk = weft_frame_add(f, "k", dt, 3, s3, NULL)) || !(tv = weft_frame_add(f, "v", dt, 3, s3, NULL)) ||
	    !weft_frame_add(f, "len", WEFT_DT_I32, 1, s1, len) ||
	    !(tp = weft_frame_add(f, "pos", WEFT_DT_I32, 2, s2, NULL)) ||
	    (mass && !(tm = weft_frame_add(f, "mass", WEFT_DT_F32, 2, s2, NULL)))) {
		weft_frame_free(f);
		return NULL;
	}
	/* data pointers are stable now: no more tensors are added */
	tk = (weft_tensor *)weft_frame_tensor(f, "k");
	tv = (weft_tensor *)weft_frame_tensor(f, "v");
	tp = (weft_tensor *)weft_frame_tensor(f, "pos");
	if (mass)
		tm = (weft_tensor *)weft_frame_tensor(f, "mass");
	for (int h = 0; h < H; h++) {
		size_t src = (size_t)h * (size_t)kv->cap * (size_t)D, dst = (size_t)h * (size_t)L * (size_t)D;
		size_t rows = (size_t)len[h];
		memcpy((char *)tk->data + dst * e, (const char *)kv->k[layer] + src * e, rows * (size_t)D * e);
		memcpy((char *)tv->data + dst * e, (const char *)kv->v[layer] + src * e, rows * (size_t)D * e);
		int32_t *pos = (int32_t *)tp->data + (size_t)h * (size_t)L;
		memcpy(pos, kv->pos[layer] + (size_t)h * (size_t)kv->cap, rows * 4);
		for (size_t r = rows; r < (size_t)L; r++)
			pos[r] = -1;
		if (tm)
			memcpy((float *)tm->data + (size_t)h * (size_t)L, mass + (size_t)h * (size_t)kv->cap, rows * 4);
	}
	return f;
}

weft_frame *weft_logits_frame(const weft_model *m, const float *logits, int64_t n_past)
{
	weft_frame *f = weft_frame_new("logits");
	int64_t shape[1] = {m->hp.n_vocab};
	if (!f || set_model(f, m) || weft_frame_setf(f, "weft.n_past", "%" PRId64, n_past) ||
	    !weft_frame_add(f, "logits", WEFT_DT_F32, 1, shape, logits)) {
		weft_frame_free(f);
		return NULL;
	}
	return f;
}

weft_kv *weft_kv_begin(const weft_model *m, const weft_frame *f, int64_t extra_cap, int32_t **hist,
		       int64_t *n_hist)
{
	if (weft_frame_check_fp(f, "weft.model", m->fingerprint) != 0)
		return NULL;
	int64_t nl = meta_int(f, "weft.n_layer"), nh = meta_int(f, "weft.n_head_kv"), hd = meta_int(f, "weft.head_dim"),
		np = meta_int(f, "weft.n_past");
	if (nl < 0 || nh < 0 || hd < 0 || np < 0)
		return NULL;
	if (nl != m->hp.n_layer || nh != m->hp.n_head_kv || hd != m->hp.head_dim) {
		weft_error("frame %" PRIu64 ": cache geometry %" PRId64 "x%" PRId64 "x%" PRId64
			   " does not match the model (%d layers, %d KV heads, head size %d)",
			   f->index, nl, nh, hd, m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim);
		return NULL;
	}
	const weft_tensor *t = weft_frame_tensor(f, "tokens");
	if (!t || t->dtype != WEFT_DT_I32 || t->ndim != 1 || t->shape[0] != np) {
		weft_error("frame %" PRIu64 ": kvcache 'tokens' must be I32 [n_past]", f->index);
		return NULL;
	}
	const char *ty = weft_frame_get(f, "weft.kv_type");
	if (ty && strcmp(ty, "F16") != 0 && strcmp(ty, "F32") != 0) {
		weft_error("frame %" PRIu64 ": unknown weft.kv_type '%.16s' (F16 or F32)", f->index, ty);
		return NULL;
	}
	weft_kv *kv = weft_kv_new_type(m, np + extra_cap > 0 ? np + extra_cap : 1,
				       ty && strcmp(ty, "F32") == 0 ? WEFT_KV_F32 : WEFT_KV_F16);
	if (!kv)
		return NULL;
	kv->n_past = np;
	*hist = weft_malloc((size_t)(np ? np : 1) * sizeof **hist);
	if (!*hist) {
		weft_kv_free(kv);
		return NULL;
	}
	memcpy(*hist, t->data, (size_t)np * 4);
	*n_hist = np;
	return kv;
}

int weft_kv_load_layer(weft_kv *kv, const weft_model *m, const weft_frame *f, int *next_layer)
{
	if (weft_frame_check_fp(f, "weft.model", m->fingerprint) != 0)
		return -1;
	int64_t layer = meta_int(f, "weft.layer");
	if (layer < 0)
		return -1;
	if (layer >= kv->n_layer) {
		weft_error("frame %" PRIu64 ": kv frame for layer %" PRId64 ", but the model has %d layers", f->index,
			   layer, kv->n_layer);
		return -1;
	}
	if (layer != *next_layer) {
		weft_error("frame %" PRIu64 ": kv frame for layer %" PRId64 ", expected layer %d", f->index, layer,
			   *next_layer);
		return -1;
	}
	int H = kv->n_head_kv, D = kv->head_dim;
	int64_t s1[1] = {H};
	const weft_tensor *tl = want_tensor(f, "len", WEFT_DT_I32, 1, s1);
	if (!tl)
		return -1;
	const weft_tensor *tk = weft_frame_tensor(f, "k");
	int64_t L = tk && tk->ndim == 3 ? tk->shape[1] : -1;
	int64_t s3[3] = {H, L, D}, s2[2] = {H, L};
	const weft_tensor *tv, *tp;
	const weft_dtype dt = kv->type == WEFT_KV_F32 ? WEFT_DT_F32 : WEFT_DT_F16;
	const size_t e = weft_kv_elt(kv);
	if (!(tk = want_tensor(f, "k", dt, 3, s3)) || !(tv = want_tensor(f, "v", dt, 3, s3)) ||
	    !(tp = want_tensor(f, "pos", WEFT_DT_I32, 2, s2)))
		return -1;
	const int32_t *len = tl->data;
	for (int h = 0; h < H; h++)
		if (len[h] < 0 || len[h] > L || len[h] > kv->n_past) {
			weft_error("frame %" PRIu64 ": kv len[%d] = %d out of range", f->index, h, len[h]);
			return -1;
		}
	if (L > kv->cap && weft_kv_reserve(kv, L) != 0)
		return -1;
	for (int h = 0; h < H; h++) {
		size_t dst = (size_t)h * (size_t)kv->cap * (size_t)D, src = (size_t)h * (size_t)L * (size_t)D;
		memcpy((char *)kv->k[layer] + dst * e, (const char *)tk->data + src * e, (size_t)len[h] * (size_t)D * e);
		memcpy((char *)kv->v[layer] + dst * e, (const char *)tv->data + src * e, (size_t)len[h] * (size_t)D * e);
		memcpy(kv->pos[layer] + (size_t)h * (size_t)kv->cap, (const int32_t *)tp->data + (size_t)h * (size_t)L,
		       (size_t)len[h] * 4);
		kv->len[(size_t)layer * H + h] = len[h];
	}
	(*next_layer)++;
	return 0;
}

int weft_logits_load(const weft_model *m, const weft_frame *f, float *out)
{
	if (weft_frame_check_fp(f, "weft.model", m->fingerprint) != 0)
		return -1;
	int64_t shape[1] = {m->hp.n_vocab};
	const weft_tensor *t = want_tensor(f, "logits", WEFT_DT_F32, 1, shape);
	if (!t)
		return -1;
	memcpy(out, t->data, (size_t)m->hp.n_vocab * 4);
	return 0;
}

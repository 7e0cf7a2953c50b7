/* kvstream.c - see kvstream.h. */
#include "kvstream.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "util.h"

static int set_model(weft_frame *f, const weft_model *m)
{
	char fp[17];
	weft_fingerprint_hex(m->fingerprint, fp);
	return weft_frame_set(f, WEFT_KEY_MODEL, fp);
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

/* How a layer's rows are stored in a kv frame: F16 / F32 values, or the
 * bytes of a quantized row (U8). */
static weft_dtype row_dtype(weft_kv_type t)
{
	return t == WEFT_KV_F32 ? WEFT_DT_F32 : t == WEFT_KV_F16 ? WEFT_DT_F16 : WEFT_DT_U8;
}

static int64_t row_elems(const weft_kv_layer *L)
{
	return L->type == WEFT_KV_F32 ? (int64_t)L->k_row / 4 : L->type == WEFT_KV_F16 ? (int64_t)L->k_row / 2
										     : (int64_t)L->k_row;
}

/* The weft.kv_type value of a storage type ("F32", "Q8_0"); F16 is the
 * default and not written. */
static void type_tag(weft_kv_type t, char *buf, size_t n)
{
	const char *s = weft_kv_type_name(t);
	size_t i = 0;
	for (; s[i] && i + 1 < n; i++)
		buf[i] = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
	buf[i] = 0;
}

/* ---- writing ---- */

weft_frame *weft_kvcache_frame(const weft_model *m, const weft_kv *kv, const int32_t *hist, int64_t n_hist)
{
	weft_frame *f = weft_frame_new(WEFT_KIND_KVCACHE);
	int64_t shape[1] = {n_hist};
	char tag[16];
	type_tag(kv->layer[0].type, tag, sizeof tag);
	if (!f || set_model(f, m) || weft_frame_setf(f, WEFT_KEY_N_LAYER, "%d", kv->n_layer) ||
	    weft_frame_setf(f, WEFT_KEY_N_HEAD_KV, "%d", kv->n_head_kv) ||
	    weft_frame_setf(f, WEFT_KEY_HEAD_DIM, "%d", kv->head_dim) ||
	    weft_frame_setf(f, WEFT_KEY_N_PAST, "%" PRId64, kv->n_past) ||
	    (kv->layer[0].type != WEFT_KV_F16 && weft_frame_set(f, WEFT_KEY_KV_TYPE, tag)) ||
	    !weft_frame_add(f, "tokens", WEFT_DT_I32, 1, shape, hist)) {
		weft_frame_free(f);
		return NULL;
	}
	return f;
}

weft_frame *weft_kv_layer_frame(const weft_model *m, const weft_kv *kv, int layer, const float *mass)
{
	const int H = kv->n_head_kv;
	const weft_kv_layer *Ly = &kv->layer[layer];
	const int32_t *len = kv->len + (size_t)layer * H;
	const int64_t E = row_elems(Ly);
	int64_t L = 0;
	for (int h = 0; h < H; h++)
		if (len[h] > L)
			L = len[h];
	weft_frame *f = weft_frame_new(WEFT_KIND_KV);
	int64_t s3[3] = {H, L, E}, s2[2] = {H, L}, s1[1] = {H};
	char tag[16];
	type_tag(Ly->type, tag, sizeof tag);
	if (!f || set_model(f, m) || weft_frame_setf(f, WEFT_KEY_LAYER, "%d", layer) ||
	    (Ly->type != kv->layer[0].type && weft_frame_set(f, WEFT_KEY_KV_TYPE, tag)) ||
	    !weft_frame_add(f, "k", row_dtype(Ly->type), 3, s3, NULL) ||
	    !weft_frame_add(f, "v", row_dtype(Ly->type), 3, s3, NULL) ||
	    !weft_frame_add(f, "len", WEFT_DT_I32, 1, s1, len) || !weft_frame_add(f, "pos", WEFT_DT_I32, 2, s2, NULL) ||
	    (mass && !weft_frame_add(f, "mass", WEFT_DT_F32, 2, s2, NULL))) {
		weft_frame_free(f);
		return NULL;
	}
	/* data pointers are stable now: no more tensors are added */
	char *tk = weft_frame_tensor(f, "k")->data, *tv = weft_frame_tensor(f, "v")->data;
	int32_t *tp = weft_frame_tensor(f, "pos")->data;
	float *tm = mass ? weft_frame_tensor(f, "mass")->data : NULL;
	for (int h = 0; h < H; h++) {
		const size_t rows = (size_t)len[h], dst = (size_t)h * (size_t)L;
		memcpy(tk + dst * Ly->k_row, weft_kv_krow(kv, layer, h, 0), rows * Ly->k_row);
		memcpy(tv + dst * Ly->v_row, weft_kv_vrow(kv, layer, h, 0), rows * Ly->v_row);
		int32_t *pos = tp + dst;
		memcpy(pos, Ly->pos + (size_t)h * (size_t)kv->cap, rows * 4);
		for (size_t r = rows; r < (size_t)L; r++)
			pos[r] = -1;
		if (tm)
			memcpy(tm + dst, mass + (size_t)h * (size_t)kv->cap, rows * 4);
	}
	return f;
}

weft_frame *weft_logits_frame(const weft_model *m, const float *logits, int64_t n_past)
{
	weft_frame *f = weft_frame_new(WEFT_KIND_LOGITS);
	int64_t shape[1] = {m->hp.n_vocab};
	if (!f || set_model(f, m) || weft_frame_setf(f, WEFT_KEY_N_PAST, "%" PRId64, n_past) ||
	    !weft_frame_add(f, "logits", WEFT_DT_F32, 1, shape, logits)) {
		weft_frame_free(f);
		return NULL;
	}
	return f;
}

/* Write frame f (freeing it); -1 when it is NULL or the write fails. */
static int put(FILE *out, weft_frame *f)
{
	int rc = f ? weft_frame_write(out, f) : -1;
	weft_frame_free(f);
	return rc;
}

int weft_kv_write(FILE *out, const weft_model *m, const weft_kv *kv, const weft_kv_write_args *w)
{
	const weft_hparams *hp = &m->hp;
	weft_frame *hf = weft_kvcache_frame(m, kv, w->hist, w->n_hist);
	if (hf && w->llamacpp && weft_frame_set(hf, WEFT_KEY_NUMERICS, "llama.cpp") != 0) {
		weft_frame_free(hf);
		return -1;
	}
	if (put(out, hf) != 0)
		return -1;
	for (int l = 0; l < kv->n_layer; l++) {
		const float *mass = w->mass ? w->mass + (size_t)l * kv->n_head_kv * (size_t)kv->cap : NULL;
		weft_frame *lf = weft_kv_layer_frame(m, kv, l, mass);
		if (lf && w->window_q) {
			const int64_t s3[3] = {w->n_window, hp->n_head, hp->head_dim};
			const size_t per = (size_t)w->n_window * (size_t)hp->n_head * (size_t)hp->head_dim;
			if (!weft_frame_add(lf, "window_q", WEFT_DT_F32, 3, s3, w->window_q + (size_t)l * per)) {
				weft_frame_free(lf);
				return -1;
			}
		}
		if (put(out, lf) != 0)
			return -1;
	}
	return w->logits ? put(out, weft_logits_frame(m, w->logits, kv->n_past)) : 0;
}

/* ---- reading ---- */

/* A storage type named by a weft.kv_type value (absent: dflt). */
static int frame_type(const weft_frame *f, int dflt)
{
	const char *ty = weft_frame_get(f, WEFT_KEY_KV_TYPE);
	if (!ty)
		return dflt;
	int t = weft_kv_type_parse(ty);
	if (t < 0 || strcmp(ty, weft_kv_type_name((weft_kv_type)t)) == 0) { /* written upper case */
		weft_error("frame %" PRIu64 ": unknown weft.kv_type '%.16s' (F16, F32 or Q8_0)", f->index, ty);
		return -1;
	}
	return t;
}

static int read_head(weft_kv_in *in, const weft_model *m, const weft_frame *f)
{
	if (in->kv) {
		weft_error("frame %" PRIu64 ": a second kvcache frame", f->index);
		return -1;
	}
	if (weft_frame_check_fp(f, WEFT_KEY_MODEL, m->fingerprint) != 0)
		return -1;
	const char *num = weft_frame_get(f, WEFT_KEY_NUMERICS);
	in->llamacpp = num && strcmp(num, "llama.cpp") == 0;
	if (in->want_llamacpp && !in->llamacpp) {
		weft_error("frame %" PRIu64 ": --numerics llama.cpp: this KV cache was computed with weft's numerics; "
			   "prefill it with --numerics llama.cpp too",
			   f->index);
		return -1;
	}
	int64_t nl = meta_int(f, WEFT_KEY_N_LAYER), nh = meta_int(f, WEFT_KEY_N_HEAD_KV),
		hd = meta_int(f, WEFT_KEY_HEAD_DIM), np = meta_int(f, WEFT_KEY_N_PAST);
	if (nl < 0 || nh < 0 || hd < 0 || np < 0)
		return -1;
	if (nl != m->hp.n_layer || nh != m->hp.n_head_kv || hd != m->hp.head_dim) {
		weft_error("frame %" PRIu64 ": cache geometry %" PRId64 "x%" PRId64 "x%" PRId64
			   " does not match the model (%d layers, %d KV heads, head size %d)",
			   f->index, nl, nh, hd, m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim);
		return -1;
	}
	const weft_tensor *t = weft_frame_tensor(f, "tokens");
	if (!t || t->dtype != WEFT_DT_I32 || t->ndim != 1 || t->shape[0] != np) {
		weft_error("frame %" PRIu64 ": kvcache 'tokens' must be I32 [n_past]", f->index);
		return -1;
	}
	const int ty = frame_type(f, WEFT_KV_F16);
	if (ty < 0)
		return -1;
	if (np > INT32_MAX || in->extra_cap < 0 || in->extra_cap > INT32_MAX - np) {
		weft_error("frame %" PRIu64 ": n_past %" PRId64 " out of range", f->index, np);
		return -1;
	}
	if (!(in->kv = weft_kv_new_type(m, np + in->extra_cap > 0 ? np + in->extra_cap : 1, (weft_kv_type)ty))) {
		weft_error_prefix("frame %" PRIu64, f->index);
		return -1;
	}
	in->kv->n_past = np;
	if (!(in->hist = weft_malloc((size_t)(np ? np : 1) * sizeof *in->hist)))
		return -1;
	memcpy(in->hist, t->data, (size_t)np * 4);
	in->n_hist = np;
	return 1;
}

static int read_layer(weft_kv_in *in, const weft_model *m, const weft_frame *f)
{
	weft_kv *kv = in->kv;
	if (!kv) {
		weft_error("frame %" PRIu64 ": kv frame without a kvcache frame before it", f->index);
		return -1;
	}
	if (weft_frame_check_fp(f, WEFT_KEY_MODEL, m->fingerprint) != 0)
		return -1;
	int64_t layer = meta_int(f, WEFT_KEY_LAYER);
	if (layer < 0)
		return -1;
	if (layer >= kv->n_layer) {
		weft_error("frame %" PRIu64 ": kv frame for layer %" PRId64 ", but the model has %d layers", f->index,
			   layer, kv->n_layer);
		return -1;
	}
	if (layer != in->next_layer) {
		weft_error("frame %" PRIu64 ": kv frame for layer %" PRId64 ", expected layer %d", f->index, layer,
			   in->next_layer);
		return -1;
	}
	const int ty = frame_type(f, kv->layer[0].type);
	if (ty < 0)
		return -1;
	if (ty != (int)kv->layer[layer].type) {
		weft_error("frame %" PRIu64 ": kv frame of storage type %s in a %s cache", f->index,
			   weft_kv_type_name((weft_kv_type)ty), weft_kv_type_name(kv->layer[layer].type));
		return -1;
	}
	const int H = kv->n_head_kv;
	const weft_kv_layer *Ly = &kv->layer[layer];
	int64_t s1[1] = {H};
	const weft_tensor *tl = want_tensor(f, "len", WEFT_DT_I32, 1, s1);
	if (!tl)
		return -1;
	const weft_tensor *tk = weft_frame_tensor(f, "k");
	const int64_t L = tk && tk->ndim == 3 ? tk->shape[1] : -1;
	int64_t s3[3] = {H, L, row_elems(Ly)}, s2[2] = {H, L};
	const weft_tensor *tv, *tp;
	if (!(tk = want_tensor(f, "k", row_dtype(Ly->type), 3, s3)) ||
	    !(tv = want_tensor(f, "v", row_dtype(Ly->type), 3, s3)) || !(tp = want_tensor(f, "pos", WEFT_DT_I32, 2, s2)))
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
		const size_t src = (size_t)h * (size_t)L, rows = (size_t)len[h];
		memcpy(weft_kv_krow(kv, (int)layer, h, 0), (const char *)tk->data + src * Ly->k_row, rows * Ly->k_row);
		memcpy(weft_kv_vrow(kv, (int)layer, h, 0), (const char *)tv->data + src * Ly->v_row, rows * Ly->v_row);
		memcpy(Ly->pos + (size_t)h * (size_t)kv->cap, (const int32_t *)tp->data + src, rows * 4);
		kv->len[(size_t)layer * H + h] = len[h];
	}
	in->next_layer++;
	return 1;
}

static int read_logits(weft_kv_in *in, const weft_model *m, const weft_frame *f)
{
	if (weft_frame_check_fp(f, WEFT_KEY_MODEL, m->fingerprint) != 0)
		return -1;
	int64_t shape[1] = {m->hp.n_vocab};
	const weft_tensor *t = want_tensor(f, "logits", WEFT_DT_F32, 1, shape);
	if (!t)
		return -1;
	if (!in->logits && !(in->logits = weft_malloc((size_t)m->hp.n_vocab * sizeof *in->logits)))
		return -1;
	memcpy(in->logits, t->data, (size_t)m->hp.n_vocab * 4);
	in->have_logits = 1;
	return 1;
}

int weft_kv_read(weft_kv_in *in, const weft_model *m, const weft_frame *f)
{
	const char *kind = weft_frame_kind(f);
	if (strcmp(kind, WEFT_KIND_KVCACHE) == 0)
		return read_head(in, m, f);
	if (strcmp(kind, WEFT_KIND_KV) == 0)
		return read_layer(in, m, f);
	if (strcmp(kind, WEFT_KIND_LOGITS) == 0)
		return read_logits(in, m, f);
	return 0;
}

int weft_kv_read_end(const weft_kv_in *in, const weft_model *m, int need_logits)
{
	if (!in->kv) {
		weft_error("no KV cache in the input");
		return -1;
	}
	if (in->next_layer != m->hp.n_layer) {
		weft_error("KV cache has %d of %d layers (truncated stream?)", in->next_layer, m->hp.n_layer);
		return -1;
	}
	if (need_logits && !in->have_logits) {
		weft_error("no logits frame after the KV cache (truncated stream?)");
		return -1;
	}
	return 0;
}

void weft_kv_in_free(weft_kv_in *in)
{
	weft_kv_free(in->kv);
	free(in->hist);
	free(in->logits);
	in->kv = NULL;
	in->hist = NULL;
	in->logits = NULL;
}

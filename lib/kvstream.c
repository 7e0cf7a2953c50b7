/* kvstream.c - see kvstream.h. */
#include "kvstream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "kvstream_int.h"
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

/* How a layer's plain rows are stored in a kv frame: F16 / F32 values, or
 * the bytes of a quantized row (U8). */
static weft_dtype row_dtype(weft_kv_type t)
{
	return t == WEFT_KV_F32 ? WEFT_DT_F32 : t == WEFT_KV_F16 ? WEFT_DT_F16 : WEFT_DT_U8;
}

/* Elements of a row of n values as the frame stores it. */
static int64_t row_elems(const weft_kv_layer *L, size_t row_bytes, int n)
{
	return L->type == WEFT_KV_F32 || L->type == WEFT_KV_F16 ? n : (int64_t)row_bytes;
}

/* The weft.kv_type value of a layer ("F32", "Q8_0", "KIVI", "GEAR"); F16
 * is the default and not written. */
static void type_tag(const weft_kv_layer *L, char *buf, size_t n)
{
	if (L->q) {
		snprintf(buf, n, "%s", L->q->rank > 0 || L->q->ko_n ? "GEAR" : "KIVI");
		return;
	}
	if (L->mv) {
		snprintf(buf, n, "MERGED");
		return;
	}
	const char *s = weft_kv_type_name(L->type);
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
	type_tag(&kv->layer[0], tag, sizeof tag);
	if (!f || set_model(f, m) || weft_frame_setf(f, WEFT_KEY_N_LAYER, "%d", kv->n_layer) ||
	    weft_frame_setf(f, WEFT_KEY_N_HEAD_KV, "%d", kv->n_head_kv) ||
	    weft_frame_setf(f, WEFT_KEY_HEAD_DIM, "%d", kv->head_dim) ||
	    weft_frame_setf(f, WEFT_KEY_N_PAST, "%" PRId64, kv->n_past) ||
	    (strcmp(tag, "F16") != 0 && weft_frame_set(f, WEFT_KEY_KV_TYPE, tag)) ||
	    !weft_frame_add(f, "tokens", WEFT_DT_I32, 1, shape, hist)) {
		weft_frame_free(f);
		return NULL;
	}
	return f;
}

weft_frame *weft_kv_layer_frame(const weft_model *m, const weft_kv *kv, int layer, const float *mass,
				int64_t mass_stride)
{
	const int H = kv->n_head_kv;
	const weft_kv_layer *Ly = &kv->layer[layer];
	const int32_t *len = kv->len + (size_t)layer * H;
	int64_t L = 0, N = 0;
	for (int h = 0; h < H; h++) {
		L = len[h] > L ? len[h] : L;
		N += len[h];
	}
	/* heads of equal length: [n_head_kv, L, ...]; ragged heads (head-wise
	 * compression): concatenated [sum of len, ...], no padding stored */
	const int ragged = N != L * H;
	const int64_t ek = row_elems(Ly, Ly->k_row, Ly->k_dim), ev = row_elems(Ly, Ly->v_row, Ly->v_dim);
	int64_t sk[3] = {H, L, ek}, sv[3] = {H, L, ev}, s2[2] = {H, L}, s1[1] = {H}, sc[2] = {H, Ly->k_dim};
	if (ragged)
		sk[0] = sv[0] = s2[0] = N, sk[1] = ek, sv[1] = ev;
	const int nd = ragged ? 2 : 3;
	weft_frame *f = weft_frame_new(WEFT_KIND_KV);
	char tag[16], tag0[16];
	type_tag(Ly, tag, sizeof tag);
	type_tag(&kv->layer[0], tag0, sizeof tag0);
	if (!f || set_model(f, m) || weft_frame_setf(f, WEFT_KEY_LAYER, "%d", layer) ||
	    (strcmp(tag, tag0) != 0 && weft_frame_set(f, WEFT_KEY_KV_TYPE, tag)) ||
	    !weft_frame_add(f, "k", row_dtype(Ly->type), nd, sk, NULL) ||
	    !weft_frame_add(f, "v", row_dtype(Ly->type), nd, sv, NULL) ||
	    !weft_frame_add(f, "len", WEFT_DT_I32, 1, s1, len) || !weft_frame_add(f, "pos", WEFT_DT_I32, nd - 1, s2, NULL) ||
	    (mass && !Ly->q && !weft_frame_add(f, "mass", WEFT_DT_F32, nd - 1, s2, NULL)) ||
	    (Ly->k_chan && !weft_frame_add(f, "k_chan", WEFT_DT_I32, 2, sc, Ly->k_chan)) ||
	    (Ly->q && weft_kvq_frame_add(f, kv, layer) != 0) || (Ly->mv && weft_kvview_frame_add(f, kv, layer) != 0)) {
		weft_frame_free(f);
		return NULL;
	}
	/* data pointers are stable now: no more tensors are added */
	char *tk = weft_frame_tensor(f, "k")->data, *tv = weft_frame_tensor(f, "v")->data;
	int32_t *tp = weft_frame_tensor(f, "pos")->data;
	float *tm = mass && !Ly->q ? weft_frame_tensor(f, "mass")->data : NULL;
	const int64_t ms = mass_stride > 0 ? mass_stride : kv->cap;
	size_t dst = 0;
	for (int h = 0; h < H; h++) {
		const size_t rows = (size_t)len[h];
		if (!ragged)
			dst = (size_t)h * (size_t)L;
		memcpy(tk + dst * Ly->k_row, weft_kv_krow(kv, layer, h, 0), rows * Ly->k_row);
		memcpy(tv + dst * Ly->v_row, weft_kv_vrow(kv, layer, h, 0), rows * Ly->v_row);
		int32_t *pos = tp + dst;
		memcpy(pos, weft_kv_pos(kv, layer, h), rows * 4);
		for (size_t r = rows; !ragged && r < (size_t)L; r++)
			pos[r] = -1;
		if (tm)
			memcpy(tm + dst, mass + (size_t)h * (size_t)ms, rows * 4);
		dst += rows;
	}
	if (Ly->q)
		weft_kvq_frame_fill(f, kv, layer);
	if (Ly->mv)
		weft_kvview_frame_fill(f, kv, layer);
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

/* Layer l's statistics (window queries, query statistics) into lf. */
static int add_stats(weft_frame *lf, const weft_model *m, int l, const weft_kv_write_args *w)
{
	const weft_hparams *hp = &m->hp;
	const size_t hd = (size_t)hp->head_dim, nh = (size_t)hp->n_head;
	if (w->window_q) {
		const int64_t s3[3] = {w->n_window, hp->n_head, hp->head_dim};
		const size_t per = (size_t)w->n_window * nh * hd;
		if (!weft_frame_add(lf, "window_q", WEFT_DT_F32, 3, s3, w->window_q + (size_t)l * per))
			return -1;
	}
	if (w->q_mean && w->q_cov) {
		const int64_t s2[2] = {hp->n_head, hp->head_dim}, s3[3] = {hp->n_head, hp->head_dim, hp->head_dim};
		if (!weft_frame_add(lf, "q_mean", WEFT_DT_F32, 2, s2, w->q_mean + (size_t)l * nh * hd) ||
		    !weft_frame_add(lf, "q_cov", WEFT_DT_F32, 3, s3, w->q_cov + (size_t)l * nh * hd * hd) ||
		    weft_frame_setf(lf, WEFT_KEY_Q_COUNT, "%" PRId64, w->q_count) != 0)
			return -1;
	}
	if (w->mass && w->mass_queries > 0 && weft_frame_setf(lf, WEFT_KEY_MASS_QUERIES, "%" PRId64, w->mass_queries) != 0)
		return -1;
	return 0;
}

int weft_kv_write(FILE *out, const weft_model *m, const weft_kv *kv, const weft_kv_write_args *w)
{
	weft_frame *hf = weft_kvcache_frame(m, kv, w->hist, w->n_hist);
	if (hf && ((w->llamacpp && weft_frame_set(hf, WEFT_KEY_NUMERICS, "llama.cpp") != 0) ||
		   (w->methods && *w->methods && weft_frame_set(hf, WEFT_KEY_KV_METHODS, w->methods) != 0))) {
		weft_frame_free(hf);
		return -1;
	}
	if (put(out, hf) != 0)
		return -1;
	const int64_t ms = w->mass_stride > 0 ? w->mass_stride : kv->cap;
	for (int l = 0; l < kv->n_layer; l++) {
		const float *mass = w->mass ? w->mass + (size_t)l * kv->n_head_kv * (size_t)ms : NULL;
		weft_frame *lf = weft_kv_layer_frame(m, kv, l, mass, ms);
		if (lf && add_stats(lf, m, l, w) != 0) {
			weft_frame_free(lf);
			return -1;
		}
		if (put(out, lf) != 0)
			return -1;
	}
	return w->logits ? put(out, weft_logits_frame(m, w->logits, kv->n_past)) : 0;
}

/* ---- reading ---- */

/* The layout named by a weft.kv_type value (absent: dflt): a storage
 * type, or KV_TAG_KIVI / KV_TAG_GEAR (quantized older rows over F16 plain
 * rows). */
#define KV_TAG_KIVI 1000
#define KV_TAG_GEAR 1001
#define KV_TAG_MERGED 1002
static int frame_type(const weft_frame *f, int dflt)
{
	const char *ty = weft_frame_get(f, WEFT_KEY_KV_TYPE);
	if (!ty)
		return dflt;
	if (strcmp(ty, "KIVI") == 0)
		return KV_TAG_KIVI;
	if (strcmp(ty, "GEAR") == 0)
		return KV_TAG_GEAR;
	if (strcmp(ty, "MERGED") == 0)
		return KV_TAG_MERGED;
	int t = weft_kv_type_parse(ty);
	if (t < 0 || strcmp(ty, weft_kv_type_name((weft_kv_type)t)) == 0) { /* written upper case */
		weft_error("frame %" PRIu64 ": unknown weft.kv_type '%.16s' (F16, F32, Q8_0, KIVI, GEAR or MERGED): a cache "
			   "from a newer weft?",
			   f->index, ty);
		return -1;
	}
	return t;
}

static weft_kv_type plain_type(int tag)
{
	return tag >= KV_TAG_KIVI ? WEFT_KV_F16 : (weft_kv_type)tag;
}

/* Layer l's plain rows become of type t (no rows held yet). */
static int layer_retype(weft_kv *kv, int l, weft_kv_type t)
{
	weft_kv_layer *L = &kv->layer[l];
	const uint64_t rb = weft_type_row_bytes(t, (uint64_t)kv->head_dim);
	if (!weft_kv_type_name(t) || !rb) {
		weft_error("KV cache: type %s cannot hold rows of %d values", weft_kv_type_name(t) ? weft_kv_type_name(t) : "?",
			   kv->head_dim);
		return -1;
	}
	L->type = t;
	L->k_row = L->v_row = (size_t)rb;
	return weft_kv_layer_fit(kv, l, NULL, 1);
}

/* A kv frame's k_chan tensor: layer l's keys hold those channels. */
static int set_channels(weft_kv *kv, int l, const weft_frame *f, const weft_tensor *tc)
{
	weft_kv_layer *L = &kv->layer[l];
	const int H = kv->n_head_kv, D = kv->head_dim;
	if (tc->dtype != WEFT_DT_I32 || tc->ndim != 2 || tc->shape[0] != H || tc->shape[1] < 1 || tc->shape[1] > D ||
	    (L->type != WEFT_KV_F16 && L->type != WEFT_KV_F32)) {
		weft_error("frame %" PRIu64 ": k_chan must be I32 [n_head_kv, k_dim <= head_dim] in an f16/f32 cache",
			   f->index);
		return -1;
	}
	/* the layer holds no rows yet: pruning it checks the list */
	const int rc = weft_kv_prune_channels(kv, l, (int)tc->shape[1], tc->data);
	if (rc != 0)
		weft_error_prefix("frame %" PRIu64, f->index);
	return rc;
}

/* Copy tensor `name` of frame f (dtype F32, shape given) into *dst at
 * element offset off of an array of total elements (allocated on first
 * use).  0 absent or copied, -1 + error. */
static int take_stat(const weft_frame *f, const char *name, int ndim, const int64_t *shape, float **dst, size_t total,
		     size_t off)
{
	const weft_tensor *t = weft_frame_tensor(f, name);
	if (!t)
		return 0;
	if (!(t = want_tensor(f, name, WEFT_DT_F32, ndim, shape)))
		return -1;
	if (!*dst && !(*dst = weft_calloc(total, sizeof(float))))
		return -1;
	memcpy(*dst + off, t->data, (size_t)t->nelem * sizeof(float));
	return 0;
}

/* The statistics a kv frame carries (mass, window_q, q_mean, q_cov). */
static int read_stats(weft_kv_in *in, const weft_model *m, int l, const weft_frame *f)
{
	const weft_kv *kv = in->kv;
	const int H = kv->n_head_kv, NH = m->hp.n_head, hd = m->hp.head_dim, NL = kv->n_layer;
	const weft_tensor *tm = weft_frame_tensor(f, "mass");
	if (tm) {
		const weft_tensor *tp = weft_frame_tensor(f, "pos"); /* checked: mass has its shape */
		if (!(tm = want_tensor(f, "mass", WEFT_DT_F32, tp->ndim, tp->shape)))
			return -1;
		in->mass_stride = kv->n_past > 0 ? kv->n_past : 1;
		if (!in->mass && !(in->mass = weft_calloc((size_t)NL * H * (size_t)in->mass_stride, sizeof(float))))
			return -1;
		size_t src = 0;
		for (int h = 0; h < H; h++) {
			if (tp->ndim == 2)
				src = (size_t)h * (size_t)tp->shape[1];
			memcpy(in->mass + ((size_t)l * H + h) * (size_t)in->mass_stride, (const float *)tm->data + src,
			       (size_t)kv->len[(size_t)l * H + h] * 4);
			src += (size_t)kv->len[(size_t)l * H + h];
		}
		in->have_mass = 1;
		const char *mq = weft_frame_get(f, WEFT_KEY_MASS_QUERIES);
		if (mq && (in->mass_queries = meta_int(f, WEFT_KEY_MASS_QUERIES)) < 0)
			return -1;
	}
	const weft_tensor *tw = weft_frame_tensor(f, "window_q");
	if (tw) {
		if (!in->window_q)
			in->n_window = tw->ndim == 3 ? (int)tw->shape[0] : -1;
		const int64_t s3[3] = {in->n_window, NH, hd};
		const size_t per = (size_t)(in->n_window > 0 ? in->n_window : 0) * (size_t)NH * (size_t)hd;
		if (take_stat(f, "window_q", 3, s3, &in->window_q, per * (size_t)NL, per * (size_t)l) != 0)
			return -1;
	}
	const int64_t s2[2] = {NH, hd}, s3[3] = {NH, hd, hd};
	if (take_stat(f, "q_mean", 2, s2, &in->q_mean, (size_t)NL * NH * hd, (size_t)l * NH * hd) != 0 ||
	    take_stat(f, "q_cov", 3, s3, &in->q_cov, (size_t)NL * NH * hd * hd, (size_t)l * NH * hd * hd) != 0)
		return -1;
	if (weft_frame_get(f, WEFT_KEY_Q_COUNT) && (in->q_count = meta_int(f, WEFT_KEY_Q_COUNT)) < 0)
		return -1;
	return 0;
}

static int read_head(weft_kv_in *in, const weft_model *m, const weft_frame *f)
{
	if (in->kv) {
		weft_error("frame %" PRIu64 ": a second KV cache", f->index);
		return -1;
	}
	if (weft_frame_check_fp(f, WEFT_KEY_MODEL, m->fingerprint) != 0)
		return -1;
	const char *meth = weft_frame_get(f, WEFT_KEY_KV_METHODS);
	snprintf(in->methods, sizeof in->methods, "%s", meth ? meth : "");
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
	in->head_tag = ty;
	/* each layer gets its heads' rows + extra_cap as its frame arrives */
	if (!(in->kv = weft_kv_new_type(m, 1, plain_type(ty)))) {
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
	const int ty = frame_type(f, in->head_tag);
	if (ty < 0)
		return -1;
	weft_kv_layer *Ly = &kv->layer[layer];
	if (plain_type(ty) != Ly->type) {
		if (layer_retype(kv, (int)layer, plain_type(ty)) != 0) {
			weft_error_prefix("frame %" PRIu64, f->index);
			return -1;
		}
	}
	const int H = kv->n_head_kv;
	int64_t s1[1] = {H};
	const weft_tensor *tl = want_tensor(f, "len", WEFT_DT_I32, 1, s1), *tc = weft_frame_tensor(f, "k_chan");
	if (!tl)
		return -1;
	if (tc && set_channels(kv, (int)layer, f, tc) != 0)
		return -1;
	const weft_tensor *tk = weft_frame_tensor(f, "k");
	/* [n_head_kv, L, row] (heads padded to L), or [sum of len, row] */
	const int ragged = tk && tk->ndim == 2, nd = ragged ? 2 : 3;
	const int64_t L = tk && tk->ndim == 3 ? tk->shape[1] : -1, N = ragged ? tk->shape[0] : -1;
	const int64_t ek = row_elems(Ly, Ly->k_row, Ly->k_dim), ev = row_elems(Ly, Ly->v_row, Ly->v_dim);
	int64_t sk[3] = {H, L, ek}, sv[3] = {H, L, ev}, s2[2] = {H, L};
	if (ragged)
		sk[0] = sv[0] = s2[0] = N, sk[1] = ek, sv[1] = ev;
	const weft_tensor *tv, *tp;
	if (!(tk = want_tensor(f, "k", row_dtype(Ly->type), nd, sk)) ||
	    !(tv = want_tensor(f, "v", row_dtype(Ly->type), nd, sv)) ||
	    !(tp = want_tensor(f, "pos", WEFT_DT_I32, nd - 1, s2)))
		return -1;
	const int32_t *len = tl->data;
	int64_t sum = 0;
	for (int h = 0; h < H; h++) {
		if (len[h] < 0 || (!ragged && len[h] > L) || len[h] > kv->n_past) {
			weft_error("frame %" PRIu64 ": kv len[%d] = %d out of range", f->index, h, len[h]);
			return -1;
		}
		sum += len[h];
	}
	if (ragged && sum != N) {
		weft_error("frame %" PRIu64 ": kv len sums to %" PRId64 ", the rows are %" PRId64, f->index, sum, N);
		return -1;
	}
	int64_t caps[64], *cp = H <= 64 ? caps : weft_malloc((size_t)H * sizeof *cp);
	if (!cp)
		return -1;
	for (int h = 0; h < H; h++)
		cp[h] = (int64_t)len[h] + in->extra_cap;
	const int rc = weft_kv_layer_fit(kv, (int)layer, cp, 0);
	if (cp != caps)
		free(cp);
	if (rc != 0)
		return -1;
	size_t src = 0;
	for (int h = 0; h < H; h++) {
		const size_t rows = (size_t)len[h];
		if (!ragged)
			src = (size_t)h * (size_t)L;
		memcpy(weft_kv_krow(kv, (int)layer, h, 0), (const char *)tk->data + src * Ly->k_row, rows * Ly->k_row);
		memcpy(weft_kv_vrow(kv, (int)layer, h, 0), (const char *)tv->data + src * Ly->v_row, rows * Ly->v_row);
		memcpy(weft_kv_pos(kv, (int)layer, h), (const int32_t *)tp->data + src, rows * 4);
		kv->len[(size_t)layer * H + h] = len[h];
		src += rows;
	}
	if ((ty == KV_TAG_KIVI || ty == KV_TAG_GEAR) && weft_kvq_frame_read(kv, (int)layer, f, ty == KV_TAG_GEAR) != 0)
		return -1;
	if (ty == KV_TAG_MERGED && weft_kvview_frame_read(kv, (int)layer, f) != 0)
		return -1;
	if (read_stats(in, m, (int)layer, f) != 0)
		return -1;
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
	if (strcmp(kind, WEFT_KIND_KVPACK) == 0) /* packed: the same header (kvpack.c) */
		return read_head(in, m, f) < 0 || weft_kvpack_read_head(in, f) != 0 ? -1 : 1;
	if (strcmp(kind, WEFT_KIND_KVPACKL) == 0)
		return weft_kvpack_read_layer(in, m, f);
	if (strcmp(kind, WEFT_KIND_KV) == 0) {
		if (in->packed) {
			weft_error("frame %" PRIu64 ": a kv frame in a packed cache", f->index);
			return -1;
		}
		return read_layer(in, m, f);
	}
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
	free(in->mass);
	free(in->window_q);
	free(in->q_mean);
	free(in->q_cov);
	in->kv = NULL;
	in->hist = NULL;
	in->logits = NULL;
	in->mass = in->window_q = in->q_mean = in->q_cov = NULL;
}

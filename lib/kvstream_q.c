/* kvstream_q.c - the tensors of a KIVI / GEAR layer in its kv frame (man 5
 * weft-stream):
 *   weft.kivi  "KBITS,VBITS,RESIDUAL"
 *   qn    I32 [n_head_kv]     rows quantized per head (multiples of 32)
 *   kq    U8  [NQ/32, key block bytes]
 *   vq    U8  [NQ, value row bytes]
 *   qpos  I32 [NQ]            their positions
 * and for GEAR (weft.kv_type GEAR, weft.gear_rank R):
 *   lr_n  I32 [n_head_kv]; ka, va F16 [NLR, R];
 *   kbasis F32 [n_head_kv, R, k_dim]; vbasis F32 [n_head_kv, R, head_dim];
 *   ko_n, vo_n I32 [n_head_kv]; ko, vo I32 [NO, 2]: row, and
 *   channel | (value as a half) << 16.
 * A MiniCache layer (weft.kv_type MERGED, weft.kv_merged = the layer whose
 * rows it shares):
 *   m_n   I32 [n_head_kv]; m_idx, m_pos I32 [NM]; m_ks, m_vs F32 [NM]:
 *   per entry the shared layer's row, its position, the key and value
 *   scales.
 * Heads are concatenated, in order, without padding: NQ, NLR, NO, NM are
 * the sums of the per-head counts. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "kvstream_int.h"
#include "util.h"

static int64_t sum_of(const int32_t *x, int n)
{
	int64_t m = 0;
	for (int i = 0; x && i < n; i++)
		m += x[i];
	return m;
}

int weft_kvq_frame_add(weft_frame *f, const weft_kv *kv, int l)
{
	const weft_kv_layer *L = &kv->layer[l];
	const weft_kvq *q = L->q;
	const int H = kv->n_head_kv;
	const int64_t NQ = sum_of(q->n, H);
	const int64_t s1[1] = {H}, sk[2] = {NQ / WEFT_KIVI_BLOCK, (int64_t)q->kblk}, sv[2] = {NQ, (int64_t)q->vrow},
		      sp[1] = {NQ};
	if (weft_frame_setf(f, WEFT_KEY_KIVI, "%d,%d,%d", q->kbits, q->vbits, q->residual) ||
	    !weft_frame_add(f, "qn", WEFT_DT_I32, 1, s1, q->n) || !weft_frame_add(f, "kq", WEFT_DT_U8, 2, sk, NULL) ||
	    !weft_frame_add(f, "vq", WEFT_DT_U8, 2, sv, NULL) || !weft_frame_add(f, "qpos", WEFT_DT_I32, 1, sp, NULL))
		return -1;
	if (q->rank <= 0 && !q->ko_n)
		return 0;
	const int64_t NLR = sum_of(q->lr_n, H), NKO = sum_of(q->ko_n, H), NVO = sum_of(q->vo_n, H);
	const int64_t sa[2] = {NLR, q->rank}, skb[3] = {H, q->rank, L->k_dim}, svb[3] = {H, q->rank, L->v_dim},
		      sko[2] = {NKO, 2}, svo[2] = {NVO, 2};
	static const int32_t zeros[1024];
	if (H > 1024)
		return -1;
	return weft_frame_setf(f, WEFT_KEY_GEAR_RANK, "%d", q->rank) ||
			       !weft_frame_add(f, "lr_n", WEFT_DT_I32, 1, s1, q->lr_n ? q->lr_n : zeros) ||
			       !weft_frame_add(f, "ka", WEFT_DT_F16, 2, sa, NULL) ||
			       !weft_frame_add(f, "va", WEFT_DT_F16, 2, sa, NULL) ||
			       !weft_frame_add(f, "kbasis", WEFT_DT_F32, 3, skb, NULL) ||
			       !weft_frame_add(f, "vbasis", WEFT_DT_F32, 3, svb, NULL) ||
			       !weft_frame_add(f, "ko_n", WEFT_DT_I32, 1, s1, q->ko_n ? q->ko_n : zeros) ||
			       !weft_frame_add(f, "vo_n", WEFT_DT_I32, 1, s1, q->vo_n ? q->vo_n : zeros) ||
			       !weft_frame_add(f, "ko", WEFT_DT_I32, 2, sko, NULL) ||
			       !weft_frame_add(f, "vo", WEFT_DT_I32, 2, svo, NULL)
		       ? -1
		       : 0;
}

static void put_outliers(int32_t *dst, const weft_kivi_outlier *o, int32_t n)
{
	for (int32_t i = 0; i < n; i++) {
		dst[2 * i] = o[i].row;
		dst[2 * i + 1] = (int32_t)((uint32_t)o[i].chan | (uint32_t)o[i].val << 16);
	}
}

void weft_kvq_frame_fill(weft_frame *f, const weft_kv *kv, int l)
{
	const weft_kv_layer *L = &kv->layer[l];
	const weft_kvq *q = L->q;
	const int H = kv->n_head_kv;
	uint8_t *tk = weft_frame_tensor(f, "kq")->data, *tv = weft_frame_tensor(f, "vq")->data;
	int32_t *tp = weft_frame_tensor(f, "qpos")->data;
	for (int h = 0; h < H; h++) {
		if (q->n[h] == 0) /* every row still in the F16 residual: no blocks (NULL buffers) */
			continue;
		memcpy(tk, q->kb[h], (size_t)q->n[h] / WEFT_KIVI_BLOCK * q->kblk);
		memcpy(tv, q->vb[h], (size_t)q->n[h] * q->vrow);
		memcpy(tp, q->pos[h], (size_t)q->n[h] * sizeof *tp);
		tk += (size_t)q->n[h] / WEFT_KIVI_BLOCK * q->kblk, tv += (size_t)q->n[h] * q->vrow, tp += q->n[h];
	}
	const weft_tensor *ka = weft_frame_tensor(f, "ka");
	if (!ka)
		return;
	uint16_t *pka = ka->data, *pva = weft_frame_tensor(f, "va")->data;
	float *pkb = weft_frame_tensor(f, "kbasis")->data, *pvb = weft_frame_tensor(f, "vbasis")->data;
	int32_t *pko = weft_frame_tensor(f, "ko")->data, *pvo = weft_frame_tensor(f, "vo")->data;
	const int64_t R = q->rank;
	for (int h = 0; h < H; h++) {
		if (R > 0 && q->lr_n) {
			memcpy(pka, q->ka[h], (size_t)(q->lr_n[h] * R) * 2);
			memcpy(pva, q->va[h], (size_t)(q->lr_n[h] * R) * 2);
			pka += q->lr_n[h] * R, pva += q->lr_n[h] * R;
			memcpy(pkb + (size_t)h * (size_t)(R * L->k_dim), q->kbasis[h], (size_t)(R * L->k_dim) * 4);
			memcpy(pvb + (size_t)h * (size_t)(R * L->v_dim), q->vbasis[h], (size_t)(R * L->v_dim) * 4);
		}
		if (q->ko_n) {
			put_outliers(pko, q->ko[h], q->ko_n[h]);
			put_outliers(pvo, q->vo[h], q->vo_n[h]);
			pko += 2 * q->ko_n[h], pvo += 2 * q->vo_n[h];
		}
	}
}

static const weft_tensor *want(const weft_frame *f, const char *name, weft_dtype dt, int ndim, const int64_t *shape)
{
	const weft_tensor *t = weft_frame_tensor(f, name);
	int ok = t && t->dtype == dt && t->ndim == ndim;
	for (int i = 0; ok && i < ndim; i++)
		ok = shape[i] < 0 || t->shape[i] == shape[i];
	if (!ok)
		weft_error("frame %" PRIu64 ": quantized kv frame: tensor '%s' missing or of the wrong dtype or shape",
			   f->index, name);
	return ok ? t : NULL;
}

/* Outliers of one head: n entries from src, rows < nq, channels < nc,
 * rows increasing. */
static weft_kivi_outlier *get_outliers(const weft_frame *f, const int32_t *src, int h, int32_t n, int32_t nq, int nc)
{
	weft_kivi_outlier *o = weft_malloc((size_t)(n > 0 ? n : 1) * sizeof *o);
	for (int32_t i = 0; o && i < n; i++) {
		o[i].row = src[2 * i];
		o[i].chan = (uint16_t)((uint32_t)src[2 * i + 1] & 0xffff);
		o[i].val = (uint16_t)((uint32_t)src[2 * i + 1] >> 16);
		if (o[i].row < 0 || o[i].row >= nq || o[i].chan >= nc || (i > 0 && o[i].row < o[i - 1].row)) {
			weft_error("frame %" PRIu64 ": GEAR outlier %d of head %d out of range", f->index, i, h);
			free(o);
			return NULL;
		}
	}
	return o;
}

/* Per-head counts c[H] (each >= 0, c[h] <= lim[h] when lim) summing to
 * total: 0, or -1 + error naming tensor what. */
static int counts_ok(const weft_frame *f, const char *what, const int32_t *c, const int32_t *lim, int H, int64_t total)
{
	int64_t s = 0;
	for (int h = 0; h < H; h++) {
		if (c[h] < 0 || (lim && c[h] > lim[h])) {
			weft_error("frame %" PRIu64 ": %s[%d] = %d out of range", f->index, what, h, c[h]);
			return -1;
		}
		s += c[h];
	}
	if (s != total) {
		weft_error("frame %" PRIu64 ": %s sums to %lld, its tensor holds %lld", f->index, what, (long long)s,
			   (long long)total);
		return -1;
	}
	return 0;
}

static int read_gear(weft_kv *kv, int l, const weft_frame *f)
{
	weft_kv_layer *L = &kv->layer[l];
	weft_kvq *q = L->q;
	const int H = kv->n_head_kv;
	const char *rs = weft_frame_get(f, WEFT_KEY_GEAR_RANK);
	const int R = rs ? atoi(rs) : -1;
	const int64_t s1[1] = {H}, sa[2] = {-1, R}, skb[3] = {H, R, L->k_dim}, svb[3] = {H, R, L->v_dim}, so[2] = {-1, 2};
	const weft_tensor *tln, *tka, *tva, *tkb, *tvb, *tkn, *tvn, *tko, *tvo;
	if (R < 0 || R > 64) {
		weft_error("frame %" PRIu64 ": GEAR layer without a valid weft.gear_rank", f->index);
		return -1;
	}
	if (!(tln = want(f, "lr_n", WEFT_DT_I32, 1, s1)) || !(tka = want(f, "ka", WEFT_DT_F16, 2, sa)) ||
	    !(tva = want(f, "va", WEFT_DT_F16, 2, sa)) || !(tkb = want(f, "kbasis", WEFT_DT_F32, 3, skb)) ||
	    !(tvb = want(f, "vbasis", WEFT_DT_F32, 3, svb)) || !(tkn = want(f, "ko_n", WEFT_DT_I32, 1, s1)) ||
	    !(tvn = want(f, "vo_n", WEFT_DT_I32, 1, s1)) || !(tko = want(f, "ko", WEFT_DT_I32, 2, so)) ||
	    !(tvo = want(f, "vo", WEFT_DT_I32, 2, so)))
		return -1;
	if (tva->shape[0] != tka->shape[0] || counts_ok(f, "lr_n", tln->data, q->n, H, tka->shape[0]) ||
	    counts_ok(f, "ko_n", tkn->data, NULL, H, tko->shape[0]) || counts_ok(f, "vo_n", tvn->data, NULL, H, tvo->shape[0]))
		return -1;
	q->rank = R;
	q->lr_n = weft_calloc((size_t)H, sizeof *q->lr_n);
	q->ka = weft_calloc((size_t)H, sizeof *q->ka);
	q->va = weft_calloc((size_t)H, sizeof *q->va);
	q->kbasis = weft_calloc((size_t)H, sizeof *q->kbasis);
	q->vbasis = weft_calloc((size_t)H, sizeof *q->vbasis);
	q->ko_n = weft_calloc((size_t)H, sizeof *q->ko_n);
	q->vo_n = weft_calloc((size_t)H, sizeof *q->vo_n);
	q->ko = weft_calloc((size_t)H, sizeof *q->ko);
	q->vo = weft_calloc((size_t)H, sizeof *q->vo);
	if (!q->lr_n || !q->ka || !q->va || !q->kbasis || !q->vbasis || !q->ko_n || !q->vo_n || !q->ko || !q->vo)
		return -1;
	const uint16_t *pka = tka->data, *pva = tva->data;
	const int32_t *pko = tko->data, *pvo = tvo->data;
	for (int h = 0; h < H; h++) {
		const int32_t ln = ((const int32_t *)tln->data)[h], kn = ((const int32_t *)tkn->data)[h],
			      vn = ((const int32_t *)tvn->data)[h];
		q->lr_n[h] = ln;
		q->ka[h] = weft_malloc((size_t)(ln * R + 1) * 2);
		q->va[h] = weft_malloc((size_t)(ln * R + 1) * 2);
		q->kbasis[h] = weft_malloc((size_t)(R * L->k_dim + 1) * 4);
		q->vbasis[h] = weft_malloc((size_t)(R * L->v_dim + 1) * 4);
		if (!q->ka[h] || !q->va[h] || !q->kbasis[h] || !q->vbasis[h])
			return -1;
		memcpy(q->ka[h], pka, (size_t)(ln * R) * 2);
		memcpy(q->va[h], pva, (size_t)(ln * R) * 2);
		pka += ln * R, pva += ln * R;
		memcpy(q->kbasis[h], (const float *)tkb->data + (size_t)h * (size_t)(R * L->k_dim), (size_t)(R * L->k_dim) * 4);
		memcpy(q->vbasis[h], (const float *)tvb->data + (size_t)h * (size_t)(R * L->v_dim), (size_t)(R * L->v_dim) * 4);
		q->ko_n[h] = kn;
		q->vo_n[h] = vn;
		if (!(q->ko[h] = get_outliers(f, pko, h, kn, q->n[h], L->k_dim)) ||
		    !(q->vo[h] = get_outliers(f, pvo, h, vn, q->n[h], L->v_dim)))
			return -1;
		pko += 2 * kn, pvo += 2 * vn;
	}
	return 0;
}

int weft_kvq_frame_read(weft_kv *kv, int l, const weft_frame *f, int gear)
{
	const int H = kv->n_head_kv;
	const char *ks = weft_frame_get(f, WEFT_KEY_KIVI);
	int kb, vb, res;
	char tail;
	if (!ks || sscanf(ks, "%d,%d,%d%c", &kb, &vb, &res, &tail) != 3) {
		weft_error("frame %" PRIu64 ": quantized kv frame without a valid weft.kivi", f->index);
		return -1;
	}
	if (weft_kvq_init(kv, l, kb, vb, res) != 0) {
		weft_error_prefix("frame %" PRIu64, f->index);
		return -1;
	}
	weft_kvq *q = kv->layer[l].q;
	const int64_t s1[1] = {H}, sp[1] = {-1};
	const weft_tensor *tn = want(f, "qn", WEFT_DT_I32, 1, s1), *tp = tn ? want(f, "qpos", WEFT_DT_I32, 1, sp) : NULL;
	if (!tp)
		return -1;
	const int64_t NQ = tp->shape[0];
	const int64_t sk[2] = {NQ / WEFT_KIVI_BLOCK, (int64_t)q->kblk}, sv[2] = {NQ, (int64_t)q->vrow};
	const weft_tensor *tk = want(f, "kq", WEFT_DT_U8, 2, sk), *tv = tk ? want(f, "vq", WEFT_DT_U8, 2, sv) : NULL;
	if (!tv || counts_ok(f, "qn", tn->data, NULL, H, NQ) != 0)
		return -1;
	const uint8_t *pk = tk->data, *pv = tv->data;
	const int32_t *pp = tp->data;
	for (int h = 0; h < H; h++) {
		const int32_t n = ((const int32_t *)tn->data)[h];
		if (n % WEFT_KIVI_BLOCK || n + (int64_t)kv->len[(size_t)l * H + h] > kv->n_past) {
			weft_error("frame %" PRIu64 ": qn[%d] = %d out of range", f->index, h, n);
			return -1;
		}
		if (weft_kvq_reserve(kv, l, h, n > 0 ? n : WEFT_KIVI_BLOCK) != 0)
			return -1;
		memcpy(q->kb[h], pk, (size_t)n / WEFT_KIVI_BLOCK * q->kblk);
		memcpy(q->vb[h], pv, (size_t)n * q->vrow);
		memcpy(q->pos[h], pp, (size_t)n * 4);
		pk += (size_t)n / WEFT_KIVI_BLOCK * q->kblk, pv += (size_t)n * q->vrow, pp += n;
		q->n[h] = n;
	}
	if (gear && read_gear(kv, l, f) != 0)
		return -1;
	weft_kvq_sync(q);
	return 0;
}

/* ---- MiniCache views ---- */

#define KEY_MERGED "weft.kv_merged"

int weft_kvview_frame_add(weft_frame *f, const weft_kv *kv, int l)
{
	const weft_kvview *v = kv->layer[l].mv;
	const int H = kv->n_head_kv;
	const int64_t N = sum_of(v->n, H), s1[1] = {H}, sn[1] = {N};
	return weft_frame_setf(f, KEY_MERGED, "%d", v->src) || !weft_frame_add(f, "m_n", WEFT_DT_I32, 1, s1, v->n) ||
			       !weft_frame_add(f, "m_idx", WEFT_DT_I32, 1, sn, NULL) ||
			       !weft_frame_add(f, "m_pos", WEFT_DT_I32, 1, sn, NULL) ||
			       !weft_frame_add(f, "m_ks", WEFT_DT_F32, 1, sn, NULL) ||
			       !weft_frame_add(f, "m_vs", WEFT_DT_F32, 1, sn, NULL)
		       ? -1
		       : 0;
}

void weft_kvview_frame_fill(weft_frame *f, const weft_kv *kv, int l)
{
	const weft_kvview *v = kv->layer[l].mv;
	int32_t *idx = weft_frame_tensor(f, "m_idx")->data, *pos = weft_frame_tensor(f, "m_pos")->data;
	float *ks = weft_frame_tensor(f, "m_ks")->data, *vs = weft_frame_tensor(f, "m_vs")->data;
	for (int h = 0; h < kv->n_head_kv; h++) {
		const size_t n = (size_t)v->n[h];
		memcpy(idx, v->idx[h], n * 4), memcpy(pos, v->pos[h], n * 4);
		memcpy(ks, v->ks[h], n * 4), memcpy(vs, v->vs[h], n * 4);
		idx += n, pos += n, ks += n, vs += n;
	}
}

int weft_kvview_frame_read(weft_kv *kv, int l, const weft_frame *f)
{
	const int H = kv->n_head_kv;
	const char *ss = weft_frame_get(f, KEY_MERGED);
	char *end;
	const long src = ss ? strtol(ss, &end, 10) : -1;
	if (!ss || *end || src < 0 || src >= l) {
		weft_error("frame %" PRIu64 ": MERGED kv frame without a valid weft.kv_merged (an earlier layer)", f->index);
		return -1;
	}
	if (weft_kvview_init(kv, l, (int)src) != 0) {
		weft_error_prefix("frame %" PRIu64, f->index);
		return -1;
	}
	weft_kvview *v = kv->layer[l].mv;
	const int64_t s1[1] = {H}, sn[1] = {-1};
	const weft_tensor *tn = want(f, "m_n", WEFT_DT_I32, 1, s1), *ti = tn ? want(f, "m_idx", WEFT_DT_I32, 1, sn) : NULL;
	const int64_t sm[1] = {ti ? ti->shape[0] : 0};
	const weft_tensor *tp = ti ? want(f, "m_pos", WEFT_DT_I32, 1, sm) : NULL, *tk = tp ? want(f, "m_ks", WEFT_DT_F32, 1, sm) : NULL,
			  *tv = tk ? want(f, "m_vs", WEFT_DT_F32, 1, sm) : NULL;
	if (!tv || counts_ok(f, "m_n", tn->data, NULL, H, sm[0]) != 0)
		return -1;
	const int32_t *pi = ti->data, *pp = tp->data;
	const float *pk = tk->data, *pv = tv->data;
	for (int h = 0; h < H; h++) {
		const int32_t n = ((const int32_t *)tn->data)[h], rows = kv->len[(size_t)src * H + h];
		v->idx[h] = weft_malloc((size_t)(n + 1) * 4), v->pos[h] = weft_malloc((size_t)(n + 1) * 4);
		v->ks[h] = weft_malloc((size_t)(n + 1) * 4), v->vs[h] = weft_malloc((size_t)(n + 1) * 4);
		if (!v->idx[h] || !v->pos[h] || !v->ks[h] || !v->vs[h])
			return -1;
		for (int32_t e = 0; e < n; e++)
			if (pi[e] < 0 || pi[e] >= rows) {
				weft_error("frame %" PRIu64 ": m_idx %d of head %d outside layer %ld's %d rows", f->index, pi[e], h,
					   src, rows);
				return -1;
			}
		memcpy(v->idx[h], pi, (size_t)n * 4), memcpy(v->pos[h], pp, (size_t)n * 4);
		memcpy(v->ks[h], pk, (size_t)n * 4), memcpy(v->vs[h], pv, (size_t)n * 4);
		v->n[h] = n;
		pi += n, pp += n, pk += n, pv += n;
	}
	return 0;
}

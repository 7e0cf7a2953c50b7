/* attention.c - weft_attention: the driver that splits the work across the
 * pool, and the scalar reference kernels.
 *
 * Output pass: one task per (query head, block of ATTN_ROWS query rows);
 * each row is an online softmax over its visible keys (running max m,
 * denominator l, accumulator of weighted V rows), so no score matrix
 * exists.  Every row is computed by the same code whatever the split, and
 * each task writes its own rows, so the pool path equals the inline path
 * bit for bit.
 *
 * Mass (optional): the normalized weight of key j in row t is
 * exp(s_tj - m_t) / l_t, known only once the row is done.  So the output
 * pass also records (m_t, l_t) per row, and a second pass, one task per
 * (KV head, block of WEFT_MASS_BLOCK keys), recomputes the scores of those
 * keys against every query of the group and adds the weights to mass.  Each
 * mass element is owned by one task and summed in a fixed order (heads,
 * then rows), so it too is deterministic.  The statistics live in a fixed
 * stack buffer; long prompts are processed in chunks of query rows of a
 * size that depends only on n_head. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "ggml_types.h"
#include "ops_int.h"
#include "util.h"

#define ATTN_ROWS 8     /* query rows per output task */
#define ATTN_STATS 4096 /* floats of row statistics per chunk (on the stack) */

/* ---- scalar reference kernels ---- */

/* Row j of KV head g as float32 (n values: kd for K, hd for V): F32 rows
 * in place, any other type dequantized into buf. */
static const float *row_f32(const weft_attn_args *a, const void *base, int g, int64_t j, int n, float *buf)
{
	const void *r = weft_attn_row(a, base, g, j);
	if (a->kv_type == WEFT_TYPE_F32)
		return r;
	if (a->kv_type == WEFT_TYPE_F16) /* the common case, without a type switch */
		for (int d = 0; d < n; d++)
			buf[d] = weft_fp16_to_fp32(((const uint16_t *)r)[d]);
	else
		weft_dequantize_row(a->kv_type, r, buf, n); /* type checked by the driver */
	return buf;
}

static float dot_ref(const float *q, const float *k, int hd)
{
	float s = 0.0f;
	for (int d = 0; d < hd; d++)
		s += q[d] * k[d];
	return s;
}

/* One key of score s and value v into the online softmax (m, l, acc). */
static void online_add(float s, const float *v, int hd, float *m, float *l, float *acc)
{
	if (s > *m) { /* new max: rescale what we have */
		const float r = expf(*m - s);
		for (int d = 0; d < hd; d++)
			acc[d] *= r;
		*l *= r;
		*m = s;
	}
	const float p = expf(s - *m);
	*l += p;
	for (int d = 0; d < hd; d++)
		acc[d] += p * v[d];
}

/* Row r's low-rank term sum_i A[r][i] B[i][:] (n values) added to x. */
static void add_lowrank(const uint16_t *A, const float *B, int rank, int64_t r, int n, float *x)
{
	for (int i = 0; i < rank; i++) {
		const float c = weft_fp16_to_fp32(A[r * rank + i]);
		for (int d = 0; d < n; d++)
			x[d] += c * B[(int64_t)i * n + d];
	}
}

void weft_attn_kivi_ref(const weft_attn_args *a, int g, const float *qk, float *m, float *l, float *acc)
{
	const weft_attn_kivi *kv = a->kivi;
	const int hd = a->hd, kd = weft_attn_kd(a), n = kv->n[g];
	const size_t kbb = weft_kivi_kblock_bytes(kd, kv->kbits), vrb = weft_kivi_vrow_bytes(hd, kv->vgroup, kv->vbits);
	float kb[WEFT_KIVI_BLOCK * WEFT_ATTN_MAX_HD], vb[WEFT_ATTN_MAX_HD];
	int64_t ko = 0, vo = 0; /* next outliers */
	for (int r = 0; r < n; r++) {
		float *k = kb + (r % WEFT_KIVI_BLOCK) * kd;
		if (r % WEFT_KIVI_BLOCK == 0)
			weft_kivi_dequant_keys(kv->kb[g] + (size_t)(r / WEFT_KIVI_BLOCK) * kbb, kd, kv->kbits, kb);
		weft_kivi_dequant_vrow(kv->vb[g] + (size_t)r * vrb, hd, kv->vgroup, kv->vbits, vb);
		if (kv->rank > 0 && r < kv->lr_n[g]) {
			add_lowrank(kv->ka[g], kv->kbasis[g], kv->rank, r, kd, k);
			add_lowrank(kv->va[g], kv->vbasis[g], kv->rank, r, hd, vb);
		}
		for (; kv->ko && ko < kv->ko_n[g] && kv->ko[g][ko].row == r; ko++)
			k[kv->ko[g][ko].chan] += weft_fp16_to_fp32(kv->ko[g][ko].val);
		for (; kv->vo && vo < kv->vo_n[g] && kv->vo[g][vo].row == r; vo++)
			vb[kv->vo[g][vo].chan] += weft_fp16_to_fp32(kv->vo[g][vo].val);
		online_add(dot_ref(qk, k, kd) * a->scale, vb, hd, m, l, acc);
	}
}

void weft_attn_view_ref(const weft_attn_args *a, int g, const float *q, float *m, float *l, float *acc)
{
	const weft_attn_view *v = a->view;
	const int hd = a->hd;
	const int64_t rb = weft_attn_bytes(a, hd);
	float kb[WEFT_ATTN_MAX_HD], vb[WEFT_ATTN_MAX_HD];
	for (int32_t e = 0; e < v->n[g]; e++) {
		const int64_t r = v->head_off[g] + v->idx[g][e];
		const void *kr = (const char *)v->K + r * rb, *vr = (const char *)v->V + r * rb;
		if (a->kv_type == WEFT_TYPE_F32) {
			memcpy(kb, kr, sizeof(float) * (size_t)hd);
			memcpy(vb, vr, sizeof(float) * (size_t)hd);
		} else if (a->kv_type == WEFT_TYPE_F16) {
			for (int d = 0; d < hd; d++)
				kb[d] = weft_fp16_to_fp32(((const uint16_t *)kr)[d]), vb[d] = weft_fp16_to_fp32(((const uint16_t *)vr)[d]);
		} else {
			weft_dequantize_row(a->kv_type, kr, kb, hd);
			weft_dequantize_row(a->kv_type, vr, vb, hd);
		}
		for (int d = 0; d < hd; d++)
			vb[d] *= v->vs[g][e];
		online_add(v->ks[g][e] * dot_ref(q, kb, hd) * a->scale, vb, hd, m, l, acc);
	}
}

void weft_attn_rows_ref(const weft_attn_args *a, int h, int64_t t0, int64_t t1, float *st)
{
	const int hd = a->hd, kd = weft_attn_kd(a);
	const int g = h / (a->n_head / a->n_head_kv);
	float acc[WEFT_ATTN_MAX_HD], kb[WEFT_ATTN_MAX_HD], vb[WEFT_ATTN_MAX_HD], qb[WEFT_ATTN_MAX_HD];
	for (int64_t t = t0; t < t1; t++) {
		const float *q = weft_attn_qk(a, g, a->Q + (t * a->n_head + h) * hd, qb);
		float *o = a->out + (t * a->n_head + h) * hd;
		const int64_t n = weft_attn_visible(a, g, t);
		float m = -INFINITY, l = 0.0f;
		memset(acc, 0, sizeof(float) * (size_t)hd);
		if (a->kivi)
			weft_attn_kivi_ref(a, g, q, &m, &l, acc);
		if (a->view)
			weft_attn_view_ref(a, g, q, &m, &l, acc);
		for (int64_t j = 0; j < n; j++)
			online_add(dot_ref(q, row_f32(a, a->K, g, j, kd, kb), kd) * a->scale, row_f32(a, a->V, g, j, hd, vb),
				   hd, &m, &l, acc);
		const float inv = l > 0.0f ? 1.0f / l : 0.0f;
		for (int d = 0; d < hd; d++)
			o[d] = acc[d] * inv;
		if (st) {
			st[2 * (t - t0)] = l > 0.0f ? m : 0.0f;
			st[2 * (t - t0) + 1] = l;
		}
	}
}

void weft_attn_mass_ref(const weft_attn_args *a, int g, int64_t j0, int64_t j1, int64_t t0, int64_t t1,
			const float *st)
{
	const int hd = a->hd, kd = weft_attn_kd(a), rep = a->n_head / a->n_head_kv;
	float loc[WEFT_MASS_BLOCK] = {0}, kb[WEFT_ATTN_MAX_HD], qb[WEFT_ATTN_MAX_HD];
	for (int h = g * rep; h < (g + 1) * rep; h++)
		for (int64_t t = t0; t < t1; t++) {
			const int64_t n = weft_attn_visible(a, g, t);
			const int64_t je = n < j1 ? n : j1;
			const float m = st[((t - t0) * a->n_head + h) * 2], l = st[((t - t0) * a->n_head + h) * 2 + 1];
			if (je <= j0 || !(l > 0.0f))
				continue;
			const float inv = 1.0f / l;
			const float *q = weft_attn_qk(a, g, a->Q + (t * a->n_head + h) * hd, qb);
			for (int64_t j = j0; j < je; j++)
				loc[j - j0] += expf(dot_ref(q, row_f32(a, a->K, g, j, kd, kb), kd) * a->scale - m) * inv;
		}
	float *mass = a->mass + g * a->mass_stride;
	for (int64_t j = j0; j < j1; j++)
		mass[j] += loc[j - j0];
}

/* ---- the driver ---- */

typedef struct attn_job {
	const weft_attn_args *a;
	const weft_ops_vt *vt;
	int64_t t0, t1;	  /* query rows of this chunk */
	int64_t n_tblk;	  /* row blocks per head */
	int64_t n_jblk;	  /* key blocks per KV head (mass pass) */
	float *st;	  /* [t1 - t0][n_head][2], or NULL */
} attn_job;

static void rows_task(void *ctx, int task, int n_tasks)
{
	const attn_job *jb = ctx;
	const int h = (int)(task / jb->n_tblk);
	const int64_t r0 = jb->t0 + (task % jb->n_tblk) * ATTN_ROWS;
	const int64_t r1 = r0 + ATTN_ROWS < jb->t1 ? r0 + ATTN_ROWS : jb->t1;
	float st[2 * ATTN_ROWS];
	jb->vt->attn_rows(jb->a, h, r0, r1, jb->st ? st : NULL);
	if (jb->st) /* scatter into the [row][head] layout attn_mass reads */
		for (int64_t t = r0; t < r1; t++) {
			float *d = jb->st + ((t - jb->t0) * jb->a->n_head + h) * 2;
			d[0] = st[2 * (t - r0)];
			d[1] = st[2 * (t - r0) + 1];
		}
}

static void grp_task(void *ctx, int task, int n_tasks)
{
	const attn_job *jb = ctx;
	const int g = (int)(task / jb->n_tblk);
	const int64_t r0 = jb->t0 + (task % jb->n_tblk) * ATTN_ROWS;
	jb->vt->attn_rows_grp(jb->a, g, r0, r0 + ATTN_ROWS < jb->t1 ? r0 + ATTN_ROWS : jb->t1);
}

static void mass_task(void *ctx, int task, int n_tasks)
{
	const attn_job *jb = ctx;
	const weft_attn_args *a = jb->a;
	const int g = (int)(task / jb->n_jblk);
	const int64_t j0 = (task % jb->n_jblk) * WEFT_MASS_BLOCK;
	/* keys that some row of this chunk sees */
	const int64_t n = weft_attn_visible(a, g, jb->t1 - 1);
	if (j0 >= n)
		return;
	const int64_t j1 = j0 + WEFT_MASS_BLOCK < n ? j0 + WEFT_MASS_BLOCK : n;
	jb->vt->attn_mass(a, g, j0, j1, jb->t0, jb->t1, jb->st);
}

void weft_attention(weft_pool *p, const weft_attn_args *a)
{
	weft_attention_vt(p, a, weft_ops_get());
}

void weft_attention_vt(weft_pool *p, const weft_attn_args *a, const weft_ops_vt *vt)
{
	if (a->T <= 0 || a->n_head <= 0)
		return;
	if (a->hd <= 0 || a->hd > WEFT_ATTN_MAX_HD || a->n_head_kv <= 0 || a->n_head % a->n_head_kv) {
		weft_error("attention: unsupported shape (n_head %d, n_head_kv %d, head_dim %d)", a->n_head,
			   a->n_head_kv, a->hd);
		memset(a->out, 0, sizeof(float) * (size_t)(a->T * a->n_head * a->hd));
		return;
	}
	if (a->kv_type != WEFT_TYPE_F16 && a->kv_type != WEFT_TYPE_F32 &&
	    (a->kv_type >= 64 || weft_type_row_bytes(a->kv_type, (uint64_t)a->hd) == 0 ||
	     !weft_type_get(a->kv_type)->can_dequant)) {
		weft_error("attention: cannot read K/V rows of type %u with %d values", a->kv_type, a->hd);
		memset(a->out, 0, sizeof(float) * (size_t)(a->T * a->n_head * a->hd));
		return;
	}
	if ((a->k_chan && (a->k_dim < 1 || a->k_dim > a->hd)) ||
	    (a->kivi && (a->kivi->vgroup < 1 || a->hd % a->kivi->vgroup || a->kivi->vgroup > 1024))) {
		weft_error("attention: bad compressed layout (key channels %d, value group %d, head_dim %d)", a->k_dim,
			   a->kivi ? a->kivi->vgroup : 0, a->hd);
		memset(a->out, 0, sizeof(float) * (size_t)(a->T * a->n_head * a->hd));
		return;
	}
	/* K/V rows of a type, or a layout, this level has no kernels for: the
	 * references */
	const unsigned ext = weft_attn_ext_needed(a);
	const int own = a->kv_type < 64 && (vt->attn_kv_types >> a->kv_type & 1) && (vt->attn_ext & ext) == ext;
	attn_job jb = {.a = a, .vt = own ? vt : &weft_ops_scalar_vt};
	if (!a->mass && a->kivi && jb.vt->attn_rows_grp) { /* a quantized prefix: read once per KV head */
		jb.t0 = 0;
		jb.t1 = a->T;
		jb.n_tblk = (a->T + ATTN_ROWS - 1) / ATTN_ROWS;
		weft_pool_run(p, (int)(jb.n_tblk * a->n_head_kv), grp_task, &jb);
		return;
	}
	if (!a->mass) {
		jb.t0 = 0;
		jb.t1 = a->T;
		jb.n_tblk = (a->T + ATTN_ROWS - 1) / ATTN_ROWS;
		weft_pool_run(p, (int)(jb.n_tblk * a->n_head), rows_task, &jb);
		return;
	}
	float st[ATTN_STATS];
	int64_t chunk = ATTN_STATS / 2 / a->n_head;
	if (chunk < 1)
		chunk = 1;
	int64_t max_kv = 0;
	for (int g = 0; g < a->n_head_kv; g++)
		max_kv = a->kv_len[g] > max_kv ? a->kv_len[g] : max_kv;
	float *heap = NULL;
	jb.st = st;
	if (chunk == 1 && 2 * a->n_head > ATTN_STATS) { /* > 2048 heads: not on the stack */
		heap = weft_malloc(sizeof(float) * 2 * (size_t)a->n_head);
		if (!heap) {
			memset(a->out, 0, sizeof(float) * (size_t)(a->T * a->n_head * a->hd));
			return;
		}
		jb.st = heap;
	}
	jb.n_jblk = (max_kv + WEFT_MASS_BLOCK - 1) / WEFT_MASS_BLOCK;
	for (int64_t t0 = 0; t0 < a->T; t0 += chunk) {
		jb.t0 = t0;
		jb.t1 = t0 + chunk < a->T ? t0 + chunk : a->T;
		jb.n_tblk = (jb.t1 - t0 + ATTN_ROWS - 1) / ATTN_ROWS;
		weft_pool_run(p, (int)(jb.n_tblk * a->n_head), rows_task, &jb);
		if (jb.n_jblk > 0)
			weft_pool_run(p, (int)(jb.n_jblk * a->n_head_kv), mass_task, &jb);
	}
	free(heap);
}

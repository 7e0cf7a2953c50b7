/* kvm_minicache.c - MiniCache (Liu et al. 2024): cross-layer merging.
 * From the layer at `from` of the depth on, layers pair up (a, a + 1).
 * For each row of each head, the key's (and the value's) directions in
 * the two layers are merged by spherical interpolation at `t` (0.6:
 * SLERP(e_a, e_b, t) = (sin((1-t) w) e_a + sin(t w) e_b) / sin w, w their
 * angle), each layer keeping its own magnitude; the `gamma` fraction of
 * rows whose directions differ most (angle of key or value) keep both
 * layers' own rows.  Layer a then holds |x_a| e, and layer b only, per
 * merged row, the scale |x_b| / |x_a| of layer a's row (kv.h views:
 * attention reads layer a's rows scaled) plus its retained rows.  Both
 * layers of a pair must hold the same rows: run minicache first (or after
 * a method that keeps the same positions in every layer). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_int.h"
#include "util.h"

static double norm(const float *x, int d)
{
	double s = 0;
	for (int i = 0; i < d; i++)
		s += (double)x[i] * x[i];
	return sqrt(s);
}

/* The angle between a and b (norms na, nb), and into out the SLERP of
 * their directions at t (a unit vector). */
static double slerp(const float *a, const float *b, double na, double nb, int d, double t, float *out)
{
	double dot = 0;
	for (int i = 0; i < d; i++)
		dot += (double)a[i] * b[i] / (na * nb);
	dot = dot > 1 ? 1 : dot < -1 ? -1 : dot;
	const double w = acos(dot), sw = sin(w);
	const double ca = w > 1e-6 ? sin((1 - t) * w) / sw : 1 - t, cb = w > 1e-6 ? sin(t * w) / sw : t;
	double n = 0;
	for (int i = 0; i < d; i++) {
		out[i] = (float)(ca * a[i] / na + cb * b[i] / nb);
		n += (double)out[i] * out[i];
	}
	n = sqrt(n);
	for (int i = 0; i < d && n > 0; i++)
		out[i] = (float)(out[i] / n);
	return w;
}

static void store(const weft_kv_layer *L, void *dst, const float *x, int d)
{
	if (L->type == WEFT_KV_F32)
		memcpy(dst, x, sizeof(float) * (size_t)d);
	else
		weft_f32_to_f16(dst, x, d);
}

typedef struct {
	double d;
	int32_t j;
} far;

static int by_far(const void *x, const void *y)
{
	const far *a = x, *b = y;
	return a->d != b->d ? (a->d < b->d) - (a->d > b->d) : (a->j > b->j) - (a->j < b->j);
}

/* Merge head h of layers a and b = a + 1. */
static int merge_head(kvm_run *r, int a, int h, double t, double gamma, far *fr, float *buf)
{
	weft_kv *kv = r->kv;
	const int H = kv->n_head_kv, d = kv->head_dim, b = a + 1;
	const weft_kv_layer *La = &kv->layer[a], *Lb = &kv->layer[b];
	const int64_t T = kv->len[(size_t)a * H + h];
	float *ka = buf, *kb = ka + d, *va = kb + d, *vb = va + d, *e = vb + d;
	unsigned char *keep = calloc((size_t)(T > 0 ? T : 1), 1);
	weft_kvview *v = Lb->mv;
	int32_t *kept = malloc(sizeof(int32_t) * (size_t)(T > 0 ? T : 1));
	if (!keep || !kept || !(v->idx[h] = malloc(sizeof(int32_t) * (size_t)(T + 1))) ||
	    !(v->pos[h] = malloc(sizeof(int32_t) * (size_t)(T + 1))) || !(v->ks[h] = malloc(sizeof(float) * (size_t)(T + 1))) ||
	    !(v->vs[h] = malloc(sizeof(float) * (size_t)(T + 1)))) {
		free(keep), free(kept);
		return -1;
	}
	for (int64_t j = 0; j < T; j++) { /* angles: the rows that differ most stay apart */
		kvm_key(r, a, h, j, ka), kvm_key(r, b, h, j, kb), kvm_value(r, a, h, j, va), kvm_value(r, b, h, j, vb);
		const double n[4] = {norm(ka, d), norm(kb, d), norm(va, d), norm(vb, d)};
		double w = INFINITY;
		if (n[0] > 0 && n[1] > 0 && n[2] > 0 && n[3] > 0) {
			const double wk = slerp(ka, kb, n[0], n[1], d, t, e), wv = slerp(va, vb, n[2], n[3], d, t, e);
			w = wk > wv ? wk : wv;
		}
		fr[j] = (far){w, (int32_t)j};
	}
	qsort(fr, (size_t)T, sizeof *fr, by_far);
	const int64_t n_ret = (int64_t)ceil(gamma * (double)T);
	for (int64_t i = 0; i < T; i++)
		keep[fr[i].j] = i < n_ret || isinf(fr[i].d);
	int64_t nk = 0;
	int32_t nv = 0;
	const int32_t *pos = weft_kv_pos(kv, a, h);
	for (int64_t j = 0; j < T; j++) {
		if (keep[j]) {
			kept[nk++] = (int32_t)j;
			continue;
		}
		kvm_key(r, a, h, j, ka), kvm_key(r, b, h, j, kb), kvm_value(r, a, h, j, va), kvm_value(r, b, h, j, vb);
		const double nka = norm(ka, d), nkb = norm(kb, d), nva = norm(va, d), nvb = norm(vb, d);
		slerp(ka, kb, nka, nkb, d, t, e);
		for (int i = 0; i < d; i++)
			e[i] = (float)(e[i] * nka);
		store(La, weft_kv_krow(kv, a, h, j), e, d);
		slerp(va, vb, nva, nvb, d, t, e);
		for (int i = 0; i < d; i++)
			e[i] = (float)(e[i] * nva);
		store(La, weft_kv_vrow(kv, a, h, j), e, d);
		v->idx[h][nv] = (int32_t)j;
		v->pos[h][nv] = pos[j];
		v->ks[h][nv] = (float)(nkb / nka);
		v->vs[h][nv++] = (float)(nvb / nva);
	}
	v->n[h] = nv;
	const int rc = kvm_keep_rows(r, b, h, kept, nk);
	free(keep), free(kept);
	return rc;
}

int weft_kvm_run_minicache(kvm_run *r)
{
	double from, t, gamma;
	if (kvm_par(r, "from", 0.5, 0, 1, &from) != 0 || kvm_par(r, "t", 0.6, 0, 1, &t) != 0 ||
	    kvm_par(r, "gamma", 0.05, 0, 1, &gamma) != 0)
		return -1;
	if (r->check_only)
		return 0;
	weft_kv *kv = r->kv;
	const int L = kv->n_layer, H = kv->n_head_kv, d = kv->head_dim;
	int64_t maxT = 1;
	for (int i = 0; i < L * H; i++)
		maxT = kv->len[i] > maxT ? kv->len[i] : maxT;
	far *fr = malloc(sizeof(far) * (size_t)maxT);
	float *buf = malloc(sizeof(float) * 5 * (size_t)d);
	int rc = !fr || !buf ? -1 : 0, pairs = 0;
	for (int a = (int)ceil(from * L); rc == 0 && a + 1 < L; a += 2) {
		const weft_kv_layer *La = &kv->layer[a], *Lb = &kv->layer[a + 1];
		if (La->q || Lb->q || La->k_chan || Lb->k_chan || La->mv || Lb->mv ||
		    La->type != WEFT_KV_F16 || Lb->type != WEFT_KV_F16) {
			weft_error("minicache: layers %d and %d are not plain f16 layers with full keys (minicache merges an "
				   "f16 cache, first)", a, a + 1);
			rc = -1;
			break;
		}
		for (int h = 0; rc == 0 && h < H; h++) {
			const int64_t T = kv->len[(size_t)a * H + h];
			if (kv->len[(size_t)(a + 1) * H + h] != T ||
			    memcmp(weft_kv_pos(kv, a, h), weft_kv_pos(kv, a + 1, h), sizeof(int32_t) * (size_t)T) != 0) {
				weft_error("minicache: layers %d and %d hold different rows in head %d (run minicache before "
					   "evicting)", a, a + 1, h);
				rc = -1;
			}
		}
		if (rc == 0 && (rc = weft_kvview_init(kv, a + 1, a)) == 0)
			for (int h = 0; rc == 0 && h < H; h++)
				rc = merge_head(r, a, h, t, gamma, fr, buf);
		pairs++;
	}
	if (rc == 0)
		kvm_note(r, "%d layer pairs merged", pairs);
	free(fr), free(buf);
	return rc;
}

/* kvm_gear.c - GEAR (Kang et al. 2024): the rows KIVI would quantize are
 * first stripped of their `outliers` fraction of largest-magnitude entries
 * (kept exactly, as halves: the sparse part S), then quantized KIVI-style
 * (D = Q(X - S), `bits` bits for keys and values), and the quantization
 * residual R = X - S - D is approximated by its best rank-`rank`
 * factorization A B (B: the top right singular vectors of R, by subspace
 * iteration on R^T R; A = R B^T as halves).  The attention kernels add
 * A B and S to the dequantized rows (kernels.h); rows decode quantizes
 * later get plain KIVI.  GEAR's own defaults (its Llama-3 scripts): 2
 * bits, rank 2, 2 % outliers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_int.h"
#include "util.h"

/* The k-th largest of x[0..n) (quickselect on a copy). */
static float kth_largest(const float *x, int64_t n, int64_t k)
{
	float *a = malloc(sizeof(float) * (size_t)n);
	if (!a)
		return INFINITY;
	memcpy(a, x, sizeof(float) * (size_t)n);
	int64_t lo = 0, hi = n - 1;
	while (lo < hi) {
		const float p = a[lo + (hi - lo) / 2];
		int64_t i = lo, j = hi;
		while (i <= j) {
			while (a[i] > p)
				i++;
			while (a[j] < p)
				j--;
			if (i <= j) {
				const float t = a[i];
				a[i++] = a[j];
				a[j--] = t;
			}
		}
		if (k - 1 <= j)
			hi = j;
		else if (k - 1 >= i)
			lo = i;
		else
			break;
	}
	const float v = a[k - 1];
	free(a);
	return v;
}

/* The n_out largest |x| of X [n][d] out into a row-sorted list (zeroed in
 * X): *out (malloc'ed), its length *n_got. */
static int take_outliers(float *X, int64_t n, int d, double frac, weft_kivi_outlier **out, int32_t *n_got)
{
	const int64_t total = n * d, want = (int64_t)(frac * (double)total);
	*out = weft_malloc(sizeof **out * (size_t)(want > 0 ? want : 1));
	*n_got = 0;
	if (!*out)
		return -1;
	if (want <= 0)
		return 0;
	float *mag = weft_malloc(sizeof(float) * (size_t)total);
	if (!mag)
		return -1;
	for (int64_t i = 0; i < total; i++)
		mag[i] = fabsf(X[i]);
	const float t = kth_largest(mag, total, want);
	int64_t above = 0;
	for (int64_t i = 0; i < total; i++)
		above += mag[i] > t;
	int64_t at = want - above; /* entries equal to t to take, in row order */
	for (int64_t i = 0; i < total && *n_got < want; i++)
		if (mag[i] > t || (mag[i] == t && at-- > 0)) {
			(*out)[(*n_got)++] = (weft_kivi_outlier){(int32_t)(i / d), (uint16_t)(i % d), weft_fp32_to_fp16(X[i])};
			X[i] = 0;
		}
	free(mag);
	return 0;
}

/* B [rank][d]: the top right singular vectors of R [n][d] (subspace
 * iteration on G = R^T R, deterministic start); A [n][rank] = R B^T. */
static int low_rank(const float *R, int64_t n, int d, int rank, float *B, uint16_t *A)
{
	double *G = weft_calloc((size_t)d * (size_t)d, sizeof(double)), *V = weft_malloc(sizeof(double) * (size_t)rank * d),
	       *W = weft_malloc(sizeof(double) * (size_t)rank * d);
	if (!G || !V || !W) {
		free(G), free(V), free(W);
		return -1;
	}
	float *Rt = weft_malloc(sizeof(float) * (size_t)n * d), *Gf = weft_malloc(sizeof(float) * (size_t)d * d);
	if (!Rt || !Gf) {
		free(G), free(V), free(W), free(Rt), free(Gf);
		return -1;
	}
	for (int64_t r = 0; r < n; r++) /* G = R^T R, one GEMM */
		for (int i = 0; i < d; i++)
			Rt[(size_t)i * n + r] = R[r * d + i];
	weft_sgemm(d, d, n, Rt, n, R, d, Gf, d);
	for (int i = 0; i < d * d; i++)
		G[i] = Gf[i];
	free(Rt), free(Gf);
	for (int k = 0; k < rank; k++)
		for (int i = 0; i < d; i++)
			V[k * d + i] = (i == k % d ? 1.0 : 0.0) + 0.01 * (double)((i * 7 + k * 13) % 11);
	for (int it = 0; it < 60; it++) {
		for (int k = 0; k < rank; k++) /* W = G V, then Gram-Schmidt */
			for (int i = 0; i < d; i++) {
				double s = 0;
				for (int j = 0; j < d; j++)
					s += G[i * d + j] * V[k * d + j];
				W[k * d + i] = s;
			}
		for (int k = 0; k < rank; k++) {
			for (int m = 0; m < k; m++) {
				double dot = 0;
				for (int i = 0; i < d; i++)
					dot += W[k * d + i] * W[m * d + i];
				for (int i = 0; i < d; i++)
					W[k * d + i] -= dot * W[m * d + i];
			}
			double nn = 0;
			for (int i = 0; i < d; i++)
				nn += W[k * d + i] * W[k * d + i];
			nn = sqrt(nn);
			for (int i = 0; i < d; i++)
				W[k * d + i] = nn > 0 ? W[k * d + i] / nn : 0;
		}
		memcpy(V, W, sizeof(double) * (size_t)rank * d);
	}
	for (int k = 0; k < rank; k++)
		for (int i = 0; i < d; i++)
			B[k * d + i] = (float)V[k * d + i];
	for (int64_t r = 0; r < n; r++)
		for (int k = 0; k < rank; k++) {
			double s = 0;
			for (int i = 0; i < d; i++)
				s += (double)R[r * d + i] * B[k * d + i];
			A[r * rank + k] = weft_fp32_to_fp16((float)s);
		}
	free(G), free(V), free(W);
	return 0;
}

/* X [n][d] -> what GEAR stores: outliers out of X, X left as the part to
 * quantize, A / B the residual's factors.  keys: quantized per channel over
 * blocks of 32 rows, else per row. */
static int gear_matrix(float *X, int64_t n, int d, int keys, const weft_kvq *q, double frac, int rank,
		       weft_kivi_outlier **out, int32_t *n_out, uint16_t *A, float *B)
{
	if (take_outliers(X, n, d, frac, out, n_out) != 0)
		return -1;
	float *R = weft_malloc(sizeof(float) * (size_t)n * d);
	uint8_t *buf = weft_malloc(q->kblk > q->vrow ? q->kblk : q->vrow);
	int rc = !R || !buf ? -1 : 0;
	for (int64_t b = 0; rc == 0 && keys && b < n; b += WEFT_KIVI_BLOCK) {
		if (weft_kivi_quant_keys(X + b * d, d, d, q->kbits, buf) != 0)
			rc = -1;
		else
			weft_kivi_dequant_keys(buf, d, q->kbits, R + b * d);
	}
	for (int64_t r = 0; rc == 0 && !keys && r < n; r++) {
		if (weft_kivi_quant_vrow(X + r * d, d, q->vgroup, q->vbits, buf) != 0)
			rc = -1;
		else
			weft_kivi_dequant_vrow(buf, d, q->vgroup, q->vbits, R + r * d);
	}
	if (rc != 0)
		weft_error("gear: a key or value is not finite (NaN, Inf or beyond the half range): cannot quantize it");
	for (int64_t i = 0; rc == 0 && i < n * d; i++)
		R[i] = X[i] - R[i];
	if (rc == 0 && rank > 0)
		rc = low_rank(R, n, d, rank, B, A);
	free(R), free(buf);
	return rc;
}

/* GEAR's arrays of layer l's quantized part, one slot per head. */
static int gear_alloc(weft_kvq *q, int H, int rank)
{
	q->rank = rank;
	q->lr_n = weft_calloc((size_t)H, sizeof *q->lr_n);
	q->ka = weft_calloc((size_t)H, sizeof *q->ka);
	q->va = weft_calloc((size_t)H, sizeof *q->va);
	q->kbasis = weft_calloc((size_t)H, sizeof *q->kbasis);
	q->vbasis = weft_calloc((size_t)H, sizeof *q->vbasis);
	q->ko_n = weft_calloc((size_t)H, sizeof *q->ko_n);
	q->vo_n = weft_calloc((size_t)H, sizeof *q->vo_n);
	q->ko = weft_calloc((size_t)H, sizeof *q->ko);
	q->vo = weft_calloc((size_t)H, sizeof *q->vo);
	return q->lr_n && q->ka && q->va && q->kbasis && q->vbasis && q->ko_n && q->vo_n && q->ko && q->vo ? 0 : -1;
}

static int gear_head(weft_kv *kv, int l, int h, double frac, int rank)
{
	weft_kvq *q = kv->layer[l].q;
	const int kd = kv->layer[l].k_dim, D = kv->head_dim;
	float *K, *V;
	int64_t n;
	if (weft_kvq_take(kv, l, h, &K, &V, &n) != 0)
		return -1;
	q->ka[h] = weft_malloc(sizeof(uint16_t) * (size_t)(n * rank + 1));
	q->va[h] = weft_malloc(sizeof(uint16_t) * (size_t)(n * rank + 1));
	q->kbasis[h] = weft_calloc((size_t)(rank * kd + 1), sizeof(float));
	q->vbasis[h] = weft_calloc((size_t)(rank * D + 1), sizeof(float));
	int rc = !q->ka[h] || !q->va[h] || !q->kbasis[h] || !q->vbasis[h] ? -1 : 0;
	if (rc == 0 && n > 0)
		rc = gear_matrix(K, n, kd, 1, q, frac, rank, &q->ko[h], &q->ko_n[h], q->ka[h], q->kbasis[h]) ||
				     gear_matrix(V, n, D, 0, q, frac, rank, &q->vo[h], &q->vo_n[h], q->va[h], q->vbasis[h])
			     ? -1
			     : 0;
	if (rc == 0 && n == 0 && (!(q->ko[h] = weft_malloc(sizeof **q->ko)) || !(q->vo[h] = weft_malloc(sizeof **q->vo))))
		rc = -1;
	if (rc == 0 && n > 0 && (rc = weft_kvq_append_rows(kv, l, h, K, V, weft_kv_pos(kv, l, h), n)) == 0)
		weft_kvq_drop_front(kv, l, h, n);
	q->lr_n[h] = rc == 0 ? (int32_t)n : 0;
	free(K), free(V);
	return rc;
}

int weft_kvm_run_gear(kvm_run *r)
{
	double bits, rank, frac, res;
	if (kvm_par(r, "bits", 2, 2, 8, &bits) != 0 || kvm_par(r, "rank", 2, 0, 64, &rank) != 0 ||
	    kvm_par(r, "outliers", 0.02, 0, 0.5, &frac) != 0 || kvm_par(r, "residual", 128, 0, 1 << 30, &res) != 0)
		return -1;
	if (bits != 2 && bits != 4 && bits != 8) {
		weft_error("gear: %g bits: 2, 4 or 8", bits);
		return -1;
	}
	if (r->check_only)
		return 0;
	weft_kv *kv = r->kv;
	for (int l = 0; l < kv->n_layer; l++) {
		if (kv->layer[l].type != WEFT_KV_F16) {
			weft_error("gear: the cache holds %s rows; GEAR quantizes an f16 cache (prefill --kv-type f16)",
				   weft_kv_type_name(kv->layer[l].type));
			return -1;
		}
		if (weft_kvq_init(kv, l, (int)bits, (int)bits, (int)res) != 0 ||
		    gear_alloc(kv->layer[l].q, kv->n_head_kv, (int)rank) != 0)
			return -1;
		for (int h = 0; h < kv->n_head_kv; h++)
			if (gear_head(kv, l, h, frac, (int)rank) != 0)
				return -1;
		weft_kvq_sync(kv->layer[l].q);
	}
	return 0;
}

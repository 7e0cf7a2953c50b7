/* kvm_expected_attention.c - Expected Attention (kvpress
 * ExpectedAttentionPress, Devoto et al. 2025): future queries are modelled
 * as Gaussian, N(mu, Sigma) from the prefill's queries before RoPE (tokens
 * 4 on: prefill --q-stats), rotated by RoPE averaged over the next
 * `future` positions (R = mean over p of the rotation at p, in the
 * model's pair layout).  A key k (after RoPE) then expects attention
 * exp(k.mu'/sqrt(d) + k Sigma' k / 2d), with mu' = R mu, Sigma' = R Sigma
 * R^T; softmax over the rows after the sinks, mean over the group's query
 * heads, times |v|; the sinks score the maximum + 1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_int.h"
#include "util.h"

/* The averaged rotation: pair i of channels (c0, c1) maps (x0, x1) to
 * (C x0 - S x1, S x0 + C x1) with C, S the mean cos and sin over the
 * positions; channels beyond rope_dim unrotated. */
static void avg_rotation(const weft_hparams *hp, int64_t p0, int n, double *R)
{
	const int d = hp->head_dim;
	memset(R, 0, sizeof(double) * (size_t)d * (size_t)d);
	for (int c = hp->rope_dim; c < d; c++)
		R[c * d + c] = 1;
	for (int i = 0; i < hp->rope_dim / 2; i++) {
		const double f = kvm_rope_freq(hp, i);
		double C = 0, S = 0;
		for (int p = 0; p < n; p++) {
			C += cos((double)(p0 + p) * f);
			S += sin((double)(p0 + p) * f);
		}
		C /= n, S /= n;
		int c0, c1;
		kvm_rope_pair(hp, i, &c0, &c1);
		R[c0 * d + c0] = C, R[c0 * d + c1] = -S;
		R[c1 * d + c0] = S, R[c1 * d + c1] = C;
	}
}

/* mu' = R mu and Sigma' = R Sigma R^T of query head h of layer l. */
static void rotated_stats(const kvm_run *r, int l, int h, const double *R, double *mu, double *cov, double *tmp)
{
	const int d = r->hp->head_dim;
	const float *m = r->st->q_mean + ((size_t)l * r->hp->n_head + h) * d;
	const float *S = r->st->q_cov + (((size_t)l * r->hp->n_head + h) * d) * d;
	for (int i = 0; i < d; i++) {
		double s = 0;
		for (int j = 0; j < d; j++)
			s += R[i * d + j] * m[j];
		mu[i] = s;
	}
	for (int i = 0; i < d; i++) /* tmp = R Sigma */
		for (int j = 0; j < d; j++) {
			double s = 0;
			for (int k = 0; k < d; k++)
				s += R[i * d + k] * S[k * d + j];
			tmp[i * d + j] = s;
		}
	for (int i = 0; i < d; i++) /* cov = tmp R^T */
		for (int j = 0; j < d; j++) {
			double s = 0;
			for (int k = 0; k < d; k++)
				s += tmp[i * d + k] * R[j * d + k];
			cov[i * d + j] = s;
		}
}

int kvm_score_expected_attention(kvm_run *r, int l, float *sc, int64_t stride)
{
	double sinks, fut, use_cov, vnorm;
	if (kvm_par(r, "sinks", 4, 0, 1 << 30, &sinks) || kvm_par(r, "future", 512, 1, 1 << 20, &fut) ||
	    kvm_par(r, "cov", 1, 0, 1, &use_cov) || kvm_par(r, "vnorm", 1, 0, 1, &vnorm))
		return -1;
	const weft_kv *kv = r->kv;
	const weft_kv_layer *L = &kv->layer[l];
	const int H = kv->n_head_kv, NH = r->hp->n_head, rep = NH / H, d = r->hp->head_dim, ns = (int)sinks;
	if (L->k_chan) {
		weft_error("expected-attention: layer %d has pruned key channels: run it before think", l);
		return -1;
	}
	double *R = weft_malloc(sizeof(double) * (size_t)d * d * 3), *mu = weft_malloc(sizeof(double) * (size_t)d),
	       *s = weft_malloc(sizeof(double) * (size_t)(stride + 1)), *acc = weft_malloc(sizeof(double) * (size_t)(stride + 1));
	float *k = weft_malloc(sizeof(float) * (size_t)d), *C = weft_malloc(sizeof(float) * (size_t)d * d),
	      *Y = weft_malloc(sizeof(float) * (size_t)(stride + 1) * d), *K = NULL;
	int rc = !R || !mu || !s || !acc || !k || !C || !Y ? -1 : 0;
	if (rc == 0)
		avg_rotation(r->hp, kv->n_past, (int)fut, R);
	double *cov = R + (size_t)d * d, *tmp = cov + (size_t)d * d;
	float mx = -INFINITY;
	for (int g = 0; rc == 0 && g < H; g++) {
		const int64_t T = kv->len[(size_t)l * H + g], n = T > ns ? T - ns : 0;
		free(K);
		if (!(K = kvm_keys(r, l, g))) {
			rc = -1;
			break;
		}
		const float *Ks = K + (size_t)ns * d; /* the rows after the sinks */
		for (int64_t j = ns; j < T; j++)
			acc[j] = 0;
		for (int h = g * rep; h < (g + 1) * rep; h++) {
			rotated_stats(r, l, h, R, mu, cov, tmp);
			for (int i = 0; i < d * d; i++)
				C[i] = (float)cov[i];
			if (use_cov != 0 && n > 0) /* Y = K Sigma': the quadratic forms k Sigma' k as row dots */
				weft_sgemm(n, d, d, Ks, d, C, d, Y, d);
			double m = -INFINITY, sum = 0;
			for (int64_t j = ns; j < T; j++) {
				const float *kj = K + (size_t)j * d, *yj = Y + (size_t)(j - ns) * d;
				double a = 0, b = 0;
				for (int i = 0; i < d; i++) {
					a += kj[i] * mu[i];
					b += use_cov != 0 ? (double)kj[i] * yj[i] : 0.0;
				}
				s[j] = a / sqrt((double)d) + b / d / 2;
				m = s[j] > m ? s[j] : m;
			}
			for (int64_t j = ns; j < T; j++)
				sum += exp(s[j] - m);
			for (int64_t j = ns; j < T; j++)
				acc[j] += exp(s[j] - m) / sum;
		}
		for (int64_t j = ns; j < T; j++) {
			double v = acc[j] / rep;
			if (vnorm != 0) {
				kvm_value(r, l, g, j, k);
				double nn = 0;
				for (int i = 0; i < d; i++)
					nn += (double)k[i] * k[i];
				v *= sqrt(nn);
			}
			sc[(size_t)g * (size_t)stride + (size_t)j] = (float)v;
			mx = (float)v > mx ? (float)v : mx;
		}
	}
	for (int g = 0; rc == 0 && g < H; g++)
		for (int64_t j = 0; j < ns && j < kv->len[(size_t)l * H + g]; j++)
			sc[(size_t)g * (size_t)stride + (size_t)j] = (mx > -INFINITY ? mx : 0.0f) + 1.0f;
	free(R), free(mu), free(s), free(acc), free(k), free(C), free(Y), free(K);
	return rc;
}

int weft_kvm_run_expected_attention(kvm_run *r)
{
	double x;
	if (kvm_par(r, "sinks", 4, 0, 1 << 30, &x) || kvm_par(r, "future", 512, 1, 1 << 20, &x) ||
	    kvm_par(r, "cov", 1, 0, 1, &x) || kvm_par(r, "vnorm", 1, 0, 1, &x))
		return -1;
	return kvm_evict(r, kvm_score_expected_attention, NULL);
}

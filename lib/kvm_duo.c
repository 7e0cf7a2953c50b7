/* kvm_duo.c - DuoAttention (Xiao et al. 2024; kvpress DuoAttentionPress):
 * retrieval heads keep every row, streaming heads only the first `sinks`
 * and the last `recent`.  The ratio is the fraction of the model's KV
 * heads made streaming (kvpress's head_compression_ratio): those with the
 * lowest scores.
 *
 * Scores come without downloading DuoAttention's patterns: by default they
 * are kvpress's on-the-fly scores (duo_attention_on_the_fly) computed from
 * this prompt as the calibration text: per layer, the mean query before
 * RoPE (prefill --q-stats) and the mean key before RoPE (the cache's keys,
 * un-rotated at their positions) are placed at positions 0..499, and the
 * score of a head is the area under the cumulated attention curve of the
 * last query, averaged over the group (a local head scores low).  scores=FILE
 * reads them instead, n_layer lines of n_head_kv numbers (DuoAttention's
 * full_attention_heads.tsv layout, clipped to [0, 1]), e.g. computed once
 * on a calibration prompt and kept. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_int.h"
#include "util.h"

#define DUO_QLEN 500

/* Rotate x (head_dim values, model layout) by RoPE at position p (sign -1:
 * undo it). */
static void rope(const weft_hparams *hp, double *x, double p)
{
	for (int i = 0; i < hp->rope_dim / 2; i++) {
		int c0, c1;
		kvm_rope_pair(hp, i, &c0, &c1);
		const double t = p * kvm_rope_freq(hp, i), c = cos(t), s = sin(t), a = x[c0], b = x[c1];
		x[c0] = a * c - b * s;
		x[c1] = a * s + b * c;
	}
}

/* kvpress's on-the-fly score of KV head g of layer l. */
static double head_score(const kvm_run *r, int l, int g)
{
	const weft_kv *kv = r->kv;
	const int d = kv->head_dim, NH = r->hp->n_head, rep = NH / kv->n_head_kv;
	const int64_t T = kv->len[(size_t)l * kv->n_head_kv + g];
	const int32_t *pos = weft_kv_pos(kv, l, g);
	double kbar[1024] = {0}, x[1024], q[1024], att[DUO_QLEN];
	float k[1024];
	for (int64_t j = 0; j < T; j++) {
		kvm_key(r, l, g, j, k);
		for (int c = 0; c < d; c++)
			x[c] = k[c];
		rope(r->hp, x, -(double)pos[j]);
		for (int c = 0; c < d; c++)
			kbar[c] += x[c] / (double)T;
	}
	double total = 0;
	for (int h = g * rep; h < (g + 1) * rep; h++) {
		const float *qm = r->st->q_mean + ((size_t)l * NH + h) * d;
		for (int c = 0; c < d; c++)
			q[c] = qm[c];
		rope(r->hp, q, DUO_QLEN - 1);
		double mx = -INFINITY, sum = 0, cum = 0, area = 0;
		for (int j = 0; j < DUO_QLEN; j++) {
			for (int c = 0; c < d; c++)
				x[c] = kbar[c];
			rope(r->hp, x, j);
			double s = 0;
			for (int c = 0; c < d; c++)
				s += q[c] * x[c];
			att[j] = s / sqrt((double)d);
			mx = att[j] > mx ? att[j] : mx;
		}
		for (int j = 0; j < DUO_QLEN; j++)
			sum += exp(att[j] - mx);
		for (int j = 0; j < DUO_QLEN; j++) {
			cum += exp(att[j] - mx) / sum;
			area += cum;
		}
		total += area / DUO_QLEN;
	}
	return total / rep;
}

/* Scores from a file: n_layer lines of n_head_kv numbers. */
static int read_scores(const kvm_run *r, const char *path, double *sc)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		weft_error("duo: scores=%s: %s", path, strerror(errno));
		return -1;
	}
	const int n = r->kv->n_layer * r->kv->n_head_kv;
	for (int i = 0; i < n; i++)
		if (fscanf(f, "%lf", &sc[i]) != 1 || !isfinite(sc[i])) {
			weft_error("duo: scores=%s: expected %d lines of %d numbers (layers x KV heads)", path,
				   r->kv->n_layer, r->kv->n_head_kv);
			fclose(f);
			return -1;
		}
	fclose(f);
	for (int i = 0; i < n; i++)
		sc[i] = sc[i] < 0 ? 0 : sc[i] > 1 ? 1 : sc[i];
	return 0;
}

typedef struct {
	double s;
	int i;
} ranked;

static int by_score(const void *a, const void *b)
{
	const ranked *x = a, *y = b;
	return x->s != y->s ? (x->s > y->s) - (x->s < y->s) : x->i - y->i;
}

int weft_kvm_run_duo(kvm_run *r)
{
	double sinks, recent;
	if (kvm_par(r, "sinks", 128, 0, 1 << 30, &sinks) != 0 || kvm_par(r, "recent", 256, 0, 1 << 30, &recent) != 0)
		return -1;
	if (r->check_only)
		return 0;
	weft_kv *kv = r->kv;
	const int H = kv->n_head_kv, n = kv->n_layer * H;
	const char *file = kvm_par_str(r, "scores");
	if (kv->head_dim > 1024) {
		weft_error("duo: head size %d too large", kv->head_dim);
		return -1;
	}
	double *sc = weft_malloc(sizeof(double) * (size_t)n);
	ranked *rk = weft_malloc(sizeof(ranked) * (size_t)n);
	int32_t *idx = NULL;
	int rc = !sc || !rk ? -1 : 0;
	if (rc == 0 && file)
		rc = read_scores(r, file, sc);
	for (int l = 0; rc == 0 && !file && l < kv->n_layer; l++)
		for (int g = 0; g < H; g++)
			sc[l * H + g] = head_score(r, l, g);
	const int n_stream = (int)nearbyint(n * r->ratio);
	for (int i = 0; rc == 0 && i < n; i++)
		rk[i] = (ranked){sc[i], i};
	if (rc == 0)
		qsort(rk, (size_t)n, sizeof *rk, by_score);
	int64_t maxT = 1;
	for (int i = 0; i < n; i++)
		maxT = kv->len[i] > maxT ? kv->len[i] : maxT;
	if (rc == 0 && !(idx = weft_malloc(sizeof(int32_t) * (size_t)maxT)))
		rc = -1;
	for (int s = 0; rc == 0 && s < n_stream; s++) {
		const int l = rk[s].i / H, g = rk[s].i % H;
		const int64_t T = kv->len[rk[s].i];
		if ((rc = kvm_plain_layer(r, l, "evict")) != 0)
			break;
		if (T <= (int64_t)(sinks + recent))
			continue;
		int64_t m = 0;
		for (int64_t j = 0; j < T; j++)
			if (j < (int64_t)sinks || j >= T - (int64_t)recent)
				idx[m++] = (int32_t)j;
		rc = kvm_keep_rows(r, l, g, idx, m);
	}
	if (rc == 0)
		kvm_note(r, "%d of %d heads streaming (sinks %d, recent %d)", n_stream, n, (int)sinks, (int)recent);
	free(sc), free(rk), free(idx);
	return rc;
}

/* kvm_snapkv.c - SnapKV (kvpress SnapKVPress, Li et al. 2024): each query
 * of the last `window` positions attends (softmax over every row it can
 * see) to the rows of its KV head; for the rows before the window, the
 * weights are averaged over the window's queries, smoothed by an average
 * pool (kernel 5, zero padding counted, as F.avg_pool1d), then averaged
 * over the query heads of the group.  The window's own rows score the
 * layer's maximum + 1: always kept.  Rows before the window are "the
 * first T - window rows" of each head, as in kvpress. */
#include <math.h>
#include <stdlib.h>

#include "kvm_int.h"
#include "util.h"

int kvm_score_snapkv(kvm_run *r, int l, float *sc, int64_t stride)
{
	double w, kern;
	if (kvm_par(r, "window", 64, 1, 1 << 16, &w) != 0 || kvm_par(r, "kernel", 5, 1, 1001, &kern) != 0)
		return -1;
	const weft_kv *kv = r->kv;
	const int H = kv->n_head_kv, NH = r->hp->n_head, rep = NH / H, hd = r->hp->head_dim, W = (int)w,
		  K = (int)kern;
	int64_t p0;
	const float *wq = kvm_window(r, l, W, &p0);
	if (!wq)
		return -1;
	float *P = weft_malloc(sizeof(float) * (size_t)W * (size_t)(stride + 1));
	double *avg = weft_malloc(sizeof(double) * (size_t)(stride + 1)), *grp = weft_malloc(sizeof(double) * (size_t)(stride + 1));
	if (!P || !avg || !grp) {
		free(P), free(avg), free(grp);
		return -1;
	}
	float mx = -INFINITY;
	for (int g = 0; g < H; g++) {
		const int64_t T = kv->len[(size_t)l * H + g], n = T - W > 0 ? T - W : 0;
		for (int64_t j = 0; j < n; j++)
			grp[j] = 0;
		for (int h = g * rep; h < (g + 1) * rep; h++) {
			if (kvm_attn_rows(r, l, g, wq + (size_t)h * hd, (int64_t)NH * hd, W, p0, P) != 0) {
				free(P), free(avg), free(grp);
				return -1;
			}
			for (int64_t j = 0; j < n; j++)
				avg[j] = 0;
			for (int i = 0; i < W; i++)
				for (int64_t j = 0; j < n; j++)
					avg[j] += P[(size_t)i * T + j];
			for (int64_t j = 0; j < n; j++) {
				double s = 0; /* avg_pool1d(kernel K, padding K/2, stride 1), zeros counted */
				for (int64_t t = j - K / 2; t <= j - K / 2 + K - 1; t++)
					s += t >= 0 && t < n ? avg[t] / W : 0;
				grp[j] += s / K;
			}
		}
		for (int64_t j = 0; j < n; j++) {
			sc[(size_t)g * (size_t)stride + (size_t)j] = (float)(grp[j] / rep);
			mx = sc[(size_t)g * (size_t)stride + (size_t)j] > mx ? sc[(size_t)g * (size_t)stride + (size_t)j] : mx;
		}
	}
	for (int g = 0; g < H; g++) /* the window: the layer's max + 1 */
		for (int64_t j = kv->len[(size_t)l * H + g] - W; j < kv->len[(size_t)l * H + g]; j++)
			if (j >= 0)
				sc[(size_t)g * (size_t)stride + (size_t)j] = (mx > -INFINITY ? mx : 0.0f) + 1.0f;
	free(P), free(avg), free(grp);
	return 0;
}

void kvm_snapkv_notes(kvm_run *r)
{
	double w;
	if (r->check_only || kvm_par(r, "window", 64, 1, 1 << 16, &w) != 0)
		return;
	for (int i = 0; i < r->kv->n_layer * r->kv->n_head_kv; i++)
		if (r->kv->len[i] <= (int64_t)w) {
			kvm_note(r, "a head holds %d rows, not more than the window (%d): kept whole", r->kv->len[i], (int)w);
			break;
		}
	/* the window's rows always stay: a budget under the window keeps only
	 * window rows, and the first rows (the attention sink) go */
	for (int i = 0; r->image_ratio < 0 && i < r->kv->n_layer * r->kv->n_head_kv; i++) {
		const int64_t T = r->kv->len[i], n = kvm_n_kept(r, T, r->ratio);
		if (T > (int64_t)w && n < (int64_t)w) {
			kvm_note(r, "the budget (%lld of a head's %lld rows) is under the window (%d): only window rows stay, "
				    "the first rows (the attention sink) go; a window under the budget keeps them",
				 (long long)n, (long long)T, (int)w);
			break;
		}
	}
}

int weft_kvm_run_snapkv(kvm_run *r)
{
	double w, k;
	if (kvm_par(r, "window", 64, 1, 1 << 16, &w) != 0 || kvm_par(r, "kernel", 5, 1, 1001, &k) != 0)
		return -1;
	if (r->check_only)
		return 0;
	kvm_snapkv_notes(r);
	return kvm_evict(r, kvm_score_snapkv, NULL);
}

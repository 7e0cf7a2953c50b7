/* kvm_pyramidkv.c - PyramidKV (kvpress PyramidKVPress, Cai et al. 2024):
 * SnapKV's scores, and per-layer budgets from kvpress's get_layer_budget:
 * with c = window + T (1 - ratio), min = (c - window) / beta, max =
 * 2 (c - window) - min (capped at T - window), layer l keeps
 * round(max - l (max - min) / (n_layer - 1)) rows (Python's round: half
 * to even), or round(T (1 - ratio)) when the pyramid does not fit.  With
 * --budget N, ratio = 1 - N / T. */
#include <math.h>

#include "kvm_int.h"

static int64_t layer_budget(kvm_run *r, int l, int64_t T)
{
	double w, beta;
	if (kvm_par(r, "window", 64, 1, 1 << 16, &w) != 0 || kvm_par(r, "beta", 20, 1, 1e9, &beta) != 0)
		return -1;
	const double ratio = r->budget > 0 ? 1.0 - (double)(r->budget < T ? r->budget : T) / (double)T : r->ratio;
	if (ratio == 0)
		return T;
	const double cap = w + (double)T * (1 - ratio);
	double mn = (cap - w) / beta, mx = (cap - w) * 2 - mn;
	if (mx >= (double)T - w) {
		mx = (double)T - w;
		mn = (cap - w) * 2 - mx;
	}
	if (!((double)T >= mx && mx >= mn && mn >= w)) {
		const double k = nearbyint((double)T * (1 - ratio));
		return k < 1 ? 1 : (int64_t)k;
	}
	const int L = r->hp->n_layer;
	const double steps = L > 1 ? (mx - mn) / (L - 1) : 0.0;
	return (int64_t)nearbyint(mx - l * steps);
}

int weft_kvm_run_pyramidkv(kvm_run *r)
{
	double w, k, b;
	if (kvm_par(r, "window", 64, 1, 1 << 16, &w) != 0 || kvm_par(r, "kernel", 5, 1, 1001, &k) != 0 ||
	    kvm_par(r, "beta", 20, 1, 1e9, &b) != 0)
		return -1;
	return kvm_evict(r, kvm_score_snapkv, layer_budget);
}

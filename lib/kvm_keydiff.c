/* kvm_keydiff.c - KeyDiff (kvpress KeyDiffPress, Park et al. 2025): the
 * anchor is the mean of the unit-normalized keys of the head; score
 * -cos(k, anchor), so the keys least like the rest are kept.  weft's pick
 * among kvpress's recent presses: it needs nothing but the cache (no
 * statistics, no extra forward passes, unlike KVzip which leads kvpress's
 * RULER table but scores by reconstructing the context, 2-3x a prefill),
 * so it runs as a separate Unix stage and between prefill chunks. */
#include <math.h>
#include <stdlib.h>

#include "kvm_int.h"
#include "util.h"

int kvm_score_keydiff(kvm_run *r, int l, float *sc, int64_t stride)
{
	const int H = r->kv->n_head_kv, kd = r->kv->layer[l].k_dim;
	float k[4096];
	double anchor[4096];
	for (int h = 0; h < H; h++) {
		const int64_t T = r->kv->len[(size_t)l * H + h];
		for (int c = 0; c < kd; c++)
			anchor[c] = 0;
		for (int64_t j = 0; j < T; j++) { /* F.normalize(keys, dim=-1).mean(rows) */
			kvm_key(r, l, h, j, k);
			double n = 0;
			for (int c = 0; c < kd; c++)
				n += (double)k[c] * k[c];
			n = sqrt(n) > 1e-12 ? sqrt(n) : 1e-12;
			for (int c = 0; c < kd; c++)
				anchor[c] += k[c] / n;
		}
		double an = 0;
		for (int c = 0; c < kd; c++) {
			anchor[c] /= (double)(T > 0 ? T : 1);
			an += anchor[c] * anchor[c];
		}
		an = sqrt(an) > 1e-8 ? sqrt(an) : 1e-8;
		for (int64_t j = 0; j < T; j++) { /* -F.cosine_similarity(keys, anchor) */
			kvm_key(r, l, h, j, k);
			double d = 0, n = 0;
			for (int c = 0; c < kd; c++)
				d += k[c] * anchor[c], n += (double)k[c] * k[c];
			n = sqrt(n) > 1e-8 ? sqrt(n) : 1e-8;
			sc[(size_t)h * (size_t)stride + (size_t)j] = (float)(-d / (n * an));
		}
	}
	return 0;
}

int weft_kvm_run_keydiff(kvm_run *r)
{
	return kvm_evict(r, kvm_score_keydiff, NULL);
}

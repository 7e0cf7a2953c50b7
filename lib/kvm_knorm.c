/* kvm_knorm.c - KNorm (kvpress KnormPress, Devoto et al. 2024): score
 * -|k|, so the keys of the smallest L2 norm are kept. */
#include <math.h>

#include "kvm_int.h"

int kvm_score_knorm(kvm_run *r, int l, float *sc, int64_t stride)
{
	const int H = r->kv->n_head_kv, kd = r->kv->layer[l].k_dim;
	float k[4096];
	for (int h = 0; h < H; h++)
		for (int64_t j = 0; j < r->kv->len[(size_t)l * H + h]; j++) {
			kvm_key(r, l, h, j, k);
			double s = 0;
			for (int c = 0; c < kd; c++)
				s += (double)k[c] * k[c];
			sc[(size_t)h * (size_t)stride + (size_t)j] = (float)-sqrt(s);
		}
	return 0;
}

int weft_kvm_run_knorm(kvm_run *r)
{
	return kvm_evict(r, kvm_score_knorm, NULL);
}

/* kvm_think.c - ThinK (kvpress ThinKPress, Xu et al. 2024): key channels
 * scored by the mean squared query of the last `window` positions
 * (averaged over the group's query heads) times the mean squared key; the
 * int(head_dim * ratio) lowest are dropped.  kvpress zeroes them (no
 * memory saved); here the keys lose them (kv.h channel-pruned keys), the
 * attention kernels read the kept channels, and rows decode appends lose
 * the same channels (kvpress keeps new keys whole: a documented
 * difference). */
#include <math.h>
#include <stdlib.h>

#include "kvm_int.h"
#include "util.h"

int weft_kvm_run_think(kvm_run *r)
{
	double w;
	const double ratio = r->ratio; /* think:ratio=R, else --ratio */
	if (kvm_par(r, "window", 32, 1, 1 << 16, &w) != 0)
		return -1;
	if (r->check_only)
		return 0;
	weft_kv *kv = r->kv;
	const int H = kv->n_head_kv, NH = r->hp->n_head, rep = NH / H, d = kv->head_dim, W = (int)w;
	const int n_pruned = (int)(d * ratio);
	if (n_pruned == 0) {
		kvm_note(r, "ratio %g of %d channels drops none", ratio, d);
		return 0;
	}
	int32_t *keep = weft_malloc(sizeof(int32_t) * (size_t)H * (size_t)d), idx[4096];
	float *score = weft_malloc(sizeof(float) * (size_t)d), *k = weft_malloc(sizeof(float) * (size_t)d);
	int rc = !keep || !score || !k || d > 4096 ? -1 : 0;
	for (int l = 0; rc == 0 && l < kv->n_layer; l++) {
		int64_t p0;
		const float *q = kvm_window(r, l, W, &p0);
		if (!q || (rc = kvm_plain_layer(r, l, "think")) != 0) {
			rc = -1;
			break;
		}
		for (int g = 0; g < H; g++) {
			const int64_t T = kv->len[(size_t)l * H + g];
			for (int c = 0; c < d; c++) {
				double qn = 0;
				for (int h = g * rep; h < (g + 1) * rep; h++) {
					double s = 0;
					for (int i = 0; i < W; i++) {
						const float x = q[((size_t)i * NH + h) * d + c];
						s += (double)x * x;
					}
					qn += s / W;
				}
				score[c] = (float)(qn / rep);
			}
			double *kn = weft_calloc((size_t)d, sizeof(double));
			if (!kn) {
				rc = -1;
				break;
			}
			for (int64_t j = 0; j < T; j++) {
				kvm_key(r, l, g, j, k);
				for (int c = 0; c < d; c++)
					kn[c] += (double)k[c] * k[c];
			}
			for (int c = 0; c < d; c++)
				score[c] *= (float)(kn[c] / (double)(T > 0 ? T : 1));
			free(kn);
			if (kvm_top(score, d, d - n_pruned, idx) != 0) {
				rc = -1;
				break;
			}
			for (int c = 0; c < d - n_pruned; c++)
				keep[(size_t)g * (size_t)(d - n_pruned) + (size_t)c] = idx[c];
		}
		if (rc == 0)
			rc = weft_kv_prune_channels(kv, l, d - n_pruned, keep);
	}
	free(keep), free(score), free(k);
	return rc;
}

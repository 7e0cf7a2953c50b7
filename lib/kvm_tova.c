/* kvm_tova.c - TOVA (kvpress TOVAPress, Oren et al. 2024): the last
 * query's attention over the rows, averaged over every query head (all
 * groups), the same scores for every KV head; the last row scores the
 * maximum + 1.  Heads must hold the same positions (not after head-wise
 * compression). */
#include <math.h>
#include <stdlib.h>

#include "kvm_int.h"
#include "util.h"

int kvm_score_tova(kvm_run *r, int l, float *sc, int64_t stride)
{
	const weft_kv *kv = r->kv;
	const int H = kv->n_head_kv, NH = r->hp->n_head, rep = NH / H, hd = r->hp->head_dim;
	const int64_t T = kv->len[(size_t)l * H];
	for (int g = 1; g < H; g++)
		for (int64_t j = 0; j < T; j++)
			if (kv->len[(size_t)l * H + g] != T || weft_kv_pos(kv, l, g)[j] != weft_kv_pos(kv, l, 0)[j]) {
				weft_error("tova: the heads of layer %d hold different rows (head-wise compressed?)", l);
				return -1;
			}
	int64_t p0;
	const float *q = kvm_window(r, l, 1, &p0);
	double *att = weft_malloc(sizeof(double) * (size_t)(T + 1)), *sum = weft_calloc((size_t)(T + 1), sizeof(double));
	if (!q || !att || !sum) {
		free(att), free(sum);
		return -1;
	}
	for (int h = 0; h < NH; h++) {
		kvm_attn_row(r, l, h / rep, q + (size_t)h * hd, p0, att);
		for (int64_t j = 0; j + 1 < T; j++)
			sum[j] += att[j];
	}
	float mx = -INFINITY;
	for (int64_t j = 0; j + 1 < T; j++) {
		const float s = (float)(sum[j] / NH);
		for (int g = 0; g < H; g++)
			sc[(size_t)g * (size_t)stride + (size_t)j] = s;
		mx = s > mx ? s : mx;
	}
	for (int g = 0; g < H && T > 0; g++)
		sc[(size_t)g * (size_t)stride + (size_t)(T - 1)] = (mx > -INFINITY ? mx : 0.0f) + 1.0f;
	free(att), free(sum);
	return 0;
}

int weft_kvm_run_tova(kvm_run *r)
{
	return kvm_evict(r, kvm_score_tova, NULL);
}

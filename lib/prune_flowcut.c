/* prune_flowcut.c - flowcut (FlowCut, TungChintao/FlowCut,
 * flowcut/modeling_clip_flowcut.py and utils_flowcut.py), inside the vision
 * encoder (encode-image --prune flowcut; the steps vision.c calls between
 * blocks, flowcut_int.h): after each block, every patch's score is
 *   (a / sum a + s / sum s) x |mean_h v|_1
 * with a the class query's attention to it (mean over heads), s the
 * softmax over tokens of the class token's value against its value (no
 * scaling; mean over heads), and the L1 norm of its value averaged over
 * heads; scores accumulate as c = (c + score) / 2.  With rpl = n_run - 2 -
 * l blocks left before the last, at every even rpl the patches drop to the
 * best max(n - r, target) by c (kept in order), r = round((n - target) /
 * sqrt(rpl) (1 - (H / H_max)^2)) from the entropy H of the class
 * attention; at rpl = 0, to the target.  Later blocks run on the patches
 * left: the encoder itself gets faster.  For encoders with a class token
 * (LLaVA's CLIP); the reference prunes one image at a time, as here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowcut_int.h"
#include "prune_int.h"
#include "util.h"

int flowcut_begin(flowcut *f, int n_patches, int target)
{
	memset(f, 0, sizeof *f);
	f->target = target;
	f->n = n_patches;
	f->idx = weft_malloc((size_t)n_patches * sizeof *f->idx);
	f->cum = weft_malloc((size_t)n_patches * sizeof *f->cum);
	if (!f->idx || !f->cum) {
		flowcut_end(f);
		return -1;
	}
	for (int i = 0; i < n_patches; i++)
		f->idx[i] = i;
	return 0;
}

void flowcut_end(flowcut *f)
{
	free(f->idx);
	free(f->cum);
	memset(f, 0, sizeof *f);
}

/* round() of torch: half to even */
static int64_t round_even(double x) { return (int64_t)nearbyint(x); }

int flowcut_layer(flowcut *f, const weft_vision_hparams *hp, int l, const float *cls, const float *v, float *x)
{
	const int n = f->n, T = n + 1, H = hp->n_head, hd = hp->head_dim, D = hp->n_embd;
	if (T <= f->target + 1)
		return 0;
	double *a = weft_calloc((size_t)n, sizeof *a), *s = weft_calloc((size_t)n, sizeof *s);
	double *w = weft_malloc((size_t)T * sizeof *w);
	int32_t *top = weft_malloc((size_t)n * sizeof *top);
	int rc = -1;
	if (!a || !s || !w || !top)
		goto out;
	for (int h = 0; h < H; h++) {
		for (int j = 0; j < n; j++)
			a[j] += cls[(int64_t)h * T + 1 + j] / H;
		/* the class token's value against every value, softmax over tokens */
		double mx = -INFINITY, sum = 0;
		for (int t = 0; t < T; t++) {
			w[t] = prune_dot_d(v + h * hd, v + (int64_t)t * D + h * hd, hd);
			mx = w[t] > mx ? w[t] : mx;
		}
		for (int t = 0; t < T; t++)
			sum += w[t] = exp(w[t] - mx);
		for (int j = 0; j < n; j++)
			s[j] += w[1 + j] / sum / H;
	}
	double sa = 0, ss = 0;
	for (int j = 0; j < n; j++)
		sa += a[j], ss += s[j];
	for (int j = 0; j < n; j++) {
		double l1 = 0;
		for (int e = 0; e < hd; e++) {
			double m = 0;
			for (int h = 0; h < H; h++)
				m += v[(int64_t)(1 + j) * D + h * hd + e];
			l1 += fabs(m / H);
		}
		const double sc = (a[j] / sa + s[j] / ss) * l1;
		f->cum[j] = l == 0 ? sc : 0.5 * f->cum[j] + 0.5 * sc;
	}
	const int rpl = hp->n_layer_run - 2 - l;
	if (((rpl % 2) + 2) % 2) {
		rc = 0;
		goto out;
	}
	int prune = T;
	if (rpl) {
		double ent = 0;
		for (int j = 0; j < n; j++) {
			const double pr = a[j] / sa;
			ent -= pr > 0 ? pr * log(pr) : 0;
		}
		const double er = ent / log((double)n);
		prune = (int)round_even((double)(n - f->target) / sqrt((double)rpl) * (1 - er * er));
	}
	int keep = T - prune > f->target + 1 ? T - prune : f->target + 1; /* tokens, class token included */
	prune_topk_d(f->cum, n, keep - 1, top);
	/* kept in order */
	uint8_t *k = weft_calloc((size_t)n, 1);
	if (!k)
		goto out;
	for (int i = 0; i < keep - 1; i++)
		k[top[i]] = 1;
	int q = 0;
	for (int j = 0; j < n; j++) {
		if (!k[j])
			continue;
		f->idx[q] = f->idx[j];
		f->cum[q] = f->cum[j];
		memmove(x + (int64_t)(1 + q) * D, x + (int64_t)(1 + j) * D, sizeof(float) * (size_t)D);
		q++;
	}
	free(k);
	f->n = q;
	rc = 0;
out:
	free(a), free(s), free(w), free(top);
	return rc;
}

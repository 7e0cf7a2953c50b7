/* kvm_adakv.c - AdaKV (kvpress AdaKVPress, Feng et al. 2024): head-wise
 * budgets.  A scorer (any eviction method's scores, snapkv by default)
 * scores every row of every head of a layer; each head first keeps its
 * top alpha * kept rows (at least 1), then the layer's remaining budget
 * (heads x kept) goes to the best remaining rows whatever their head.
 * kvpress only masks the rows it drops (attention_patch.py: "does not
 * reduce peak memory"); here they leave the cache: heads end with
 * different numbers of rows (kv.h's ragged heads), which the stream stores
 * without padding and decode attends over directly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_int.h"
#include "util.h"

kvm_score_fn kvm_scorer(const kvm_def *d)
{
	switch (d->id) {
	case KVM_ID_RANDOM: return kvm_score_random;
	case KVM_ID_STREAMINGLLM: return kvm_score_streamingllm;
	case KVM_ID_KNORM: return kvm_score_knorm;
	case KVM_ID_OBSERVED:
	case KVM_ID_H2O: return kvm_score_observed;
	case KVM_ID_SNAPKV:
	case KVM_ID_PYRAMIDKV: return kvm_score_snapkv;
	case KVM_ID_TOVA: return kvm_score_tova;
	case KVM_ID_EXPECTED_ATTENTION: return kvm_score_expected_attention;
	case KVM_ID_KEYDIFF: return kvm_score_keydiff;
	default: return NULL;
	}
}

typedef struct {
	float s;
	int32_t h, j;
} entry;

static int by_score(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return x->h != y->h ? (x->h > y->h) - (x->h < y->h) : (x->j > y->j) - (x->j < y->j);
}

/* Layer l: the kept rows of every head from scores sc. */
static int adakv_layer(kvm_run *r, int l, float *sc, int64_t stride, double alpha, entry *pool, int32_t *idx,
		       unsigned char *kept)
{
	weft_kv *kv = r->kv;
	const int H = kv->n_head_kv;
	int64_t total = 0, n_pool = 0;
	memset(kept, 0, (size_t)H * (size_t)stride);
	for (int h = 0; h < H; h++) {
		const int64_t T = kv->len[(size_t)l * H + h], n_kept = kvm_n_kept(r, T, r->ratio);
		int64_t n_safe = (int64_t)((double)n_kept * alpha);
		if (alpha > 0)
			n_safe = n_kept > 0 ? (n_safe > 1 ? n_safe : 1) : 0;
		total += n_kept;
		if (kvm_top(sc + (size_t)h * (size_t)stride, T, n_safe, idx) != 0)
			return -1;
		for (int64_t i = 0; i < n_safe; i++)
			kept[(size_t)h * (size_t)stride + (size_t)idx[i]] = 1;
		total -= n_safe;
		for (int64_t j = 0; j < T; j++)
			if (!kept[(size_t)h * (size_t)stride + (size_t)j]) {
				const float s = sc[(size_t)h * (size_t)stride + (size_t)j];
				pool[n_pool++] = (entry){isnan(s) ? -INFINITY : s, h, (int32_t)j};
			}
	}
	qsort(pool, (size_t)n_pool, sizeof *pool, by_score);
	for (int64_t i = 0; i < total && i < n_pool; i++)
		kept[(size_t)pool[i].h * (size_t)stride + (size_t)pool[i].j] = 1;
	for (int h = 0; h < H; h++) {
		const int64_t T = kv->len[(size_t)l * H + h];
		int64_t n = 0;
		for (int64_t j = 0; j < T; j++)
			if (kept[(size_t)h * (size_t)stride + (size_t)j])
				idx[n++] = (int32_t)j;
		if (n < T && kvm_keep_rows(r, l, h, idx, n) != 0)
			return -1;
	}
	return 0;
}

int weft_kvm_run_adakv(kvm_run *r)
{
	double alpha;
	const char *sn = kvm_par_str(r, "scorer");
	const kvm_def *sd = weft_kvm_def_named(sn ? sn : "snapkv");
	kvm_score_fn score = sd ? kvm_scorer(sd) : NULL;
	if (!sd || kvm_par(r, "alpha", 0.2, 0, 1, &alpha) != 0)
		return -1;
	if (!score || sd->id == KVM_ID_ADAKV) {
		weft_error("adakv: scorer=%s is not a scoring method", sd->m.name);
		return -1;
	}
	if (r->image_ratio >= 0) {
		weft_error("adakv: --image-ratio is not supported (use a uniform method)");
		return -1;
	}
	if (r->check_only)
		return 0;
	if (score == kvm_score_snapkv)
		kvm_snapkv_notes(r);
	weft_kv *kv = r->kv;
	const int H = kv->n_head_kv;
	int64_t stride = 1;
	for (int i = 0; i < kv->n_layer * H; i++)
		stride = kv->len[i] > stride ? kv->len[i] : stride;
	float *sc = weft_malloc(sizeof(float) * (size_t)H * (size_t)stride);
	entry *pool = weft_malloc(sizeof(entry) * (size_t)H * (size_t)stride);
	int32_t *idx = weft_malloc(sizeof(int32_t) * (size_t)stride);
	unsigned char *kept = weft_malloc((size_t)H * (size_t)stride);
	int rc = !sc || !pool || !idx || !kept ? -1 : 0;
	for (int l = 0; rc == 0 && l < kv->n_layer; l++)
		if ((rc = kvm_plain_layer(r, l, "evict")) == 0 && (rc = score(r, l, sc, stride)) == 0)
			rc = adakv_layer(r, l, sc, stride, alpha, pool, idx, kept);
	free(sc), free(pool), free(idx), free(kept);
	return rc;
}

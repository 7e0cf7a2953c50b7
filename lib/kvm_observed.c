/* kvm_observed.c - ObservedAttention / H2O (kvpress
 * ObservedAttentionPress): the attention each row received during the
 * prefill (prefill --mass sums it over the queries and the heads of the
 * group), divided by the number of queries that could see the row and by
 * the group size: kvpress's attentions.sum(queries) / (T - j), averaged
 * over the group.  A query at position p sees rows at positions <= p; the
 * prefill's queries were the last mass_queries positions before n_past. */
#include "kvm_int.h"

int kvm_score_observed(kvm_run *r, int l, float *sc, int64_t stride)
{
	const weft_kv *kv = r->kv;
	const weft_kvm_stats *st = r->st;
	const int H = kv->n_head_kv, rep = r->hp->n_head / H;
	const int64_t q0 = st->mass_queries > 0 && st->mass_queries <= kv->n_past ? kv->n_past - st->mass_queries : 0;
	for (int h = 0; h < H; h++) {
		const float *m = st->mass + ((size_t)l * H + h) * (size_t)st->mass_stride;
		const int32_t *pos = weft_kv_pos(kv, l, h);
		for (int64_t j = 0; j < kv->len[(size_t)l * H + h]; j++) {
			const int64_t seen = kv->n_past - (pos[j] > q0 ? pos[j] : q0);
			sc[(size_t)h * (size_t)stride + (size_t)j] = seen > 0 ? m[j] / (float)seen / (float)rep : 0.0f;
		}
	}
	return 0;
}

int weft_kvm_run_observed(kvm_run *r)
{
	return kvm_evict(r, kvm_score_observed, NULL);
}

int weft_kvm_run_h2o(kvm_run *r)
{
	return kvm_evict(r, kvm_score_observed, NULL);
}

/* kvm_streamingllm.c - StreamingLLM (kvpress StreamingLLMPress): keep the
 * first `sinks` rows (attention sinks) and the most recent; of T rows,
 * rows sinks .. sinks + (T - kept) - 1 go.  Rows keep their RoPE
 * positions (kvpress without KeyRerotationPress). */
#include "kvm_int.h"

int kvm_score_streamingllm(kvm_run *r, int l, float *sc, int64_t stride)
{
	double sinks;
	if (kvm_par(r, "sinks", 4, 0, 1 << 30, &sinks) != 0)
		return -1;
	const int H = r->kv->n_head_kv;
	for (int h = 0; h < H; h++) {
		const int64_t T = r->kv->len[(size_t)l * H + h], pruned = T - kvm_n_kept(r, T, r->ratio);
		for (int64_t j = 0; j < T; j++)
			sc[(size_t)h * (size_t)stride + (size_t)j] = j >= (int64_t)sinks && j < (int64_t)sinks + pruned ? 0.0f : 1.0f;
	}
	return 0;
}

int weft_kvm_run_streamingllm(kvm_run *r)
{
	double sinks;
	if (kvm_par(r, "sinks", 4, 0, 1 << 30, &sinks) != 0)
		return -1;
	return kvm_evict(r, kvm_score_streamingllm, NULL);
}

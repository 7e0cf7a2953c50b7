/* kvm_random.c - random eviction (kvpress RandomPress): every row scored
 * uniformly at random.  kvpress draws with torch.rand; weft draws with its
 * own seeded generator (splitmix64 of seed, layer, head, row), so the law
 * is the same and the rows kept differ: tested against that definition,
 * not against kvpress's draws. */
#include "kvm_int.h"

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int kvm_score_random(kvm_run *r, int l, float *sc, int64_t stride)
{
	double seed;
	if (kvm_par(r, "seed", (double)r->o->seed, 0, 9007199254740992.0, &seed) != 0)
		return -1;
	const int H = r->kv->n_head_kv;
	for (int h = 0; h < H; h++)
		for (int64_t j = 0; j < r->kv->len[(size_t)l * H + h]; j++) {
			const uint64_t x = mix(mix(mix((uint64_t)seed) ^ (uint64_t)l) ^ ((uint64_t)h << 32 | (uint64_t)j));
			sc[(size_t)h * (size_t)stride + (size_t)j] = (float)((double)(x >> 11) / 9007199254740992.0);
		}
	return 0;
}

int weft_kvm_run_random(kvm_run *r)
{
	double seed;
	if (kvm_par(r, "seed", 0, 0, 9007199254740992.0, &seed) != 0)
		return -1;
	return kvm_evict(r, kvm_score_random, NULL);
}

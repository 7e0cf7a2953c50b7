/* prune_random.c - random: a uniformly random subset of the budget's size
 * (the baseline every method should beat).  Seeded: param seed, mixed with
 * the unit's number, so a run is reproducible and the units of a stream
 * differ.  No reference repository; its test checks the subset's size,
 * order and reproducibility. */
#include <stdlib.h>

#include "prune_int.h"
#include "util.h"

/* splitmix64 (Steele, Lea, Flood 2014). */
static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int prune_random_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s)
{
	int32_t *ix = weft_malloc((size_t)u->n * sizeof *ix);
	if (!ix)
		return -1;
	uint64_t st = (uint64_t)prune_param(p, "seed") * 0x100000001b3ull + (uint64_t)u->index;
	for (int64_t i = 0; i < u->n; i++)
		ix[i] = (int32_t)i;
	int rc = 0;
	/* a partial Fisher-Yates shuffle: the first `budget` entries */
	for (int64_t i = 0; i < budget && rc == 0; i++) {
		const int64_t j = i + (int64_t)(next(&st) % (uint64_t)(u->n - i));
		const int32_t t = ix[i];
		ix[i] = ix[j], ix[j] = t;
		rc = prune_sel_keep(s, ix[i]);
	}
	free(ix);
	return rc;
}

/* prune_pool.c - pool: each tile's token grid (side x side) average-pooled
 * to g x g with g = floor(sqrt(budget)) (at most the side), bins as
 * PyTorch's adaptive_avg_pool2d makes them: row bin i spans
 * [floor(i H / g), ceil((i + 1) H / g)), columns likewise.  A pooled
 * token is kept as its bin's first (top-left) token. */
#include <math.h>

#include "prune_int.h"

int prune_pool_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s)
{
	(void)p;
	const int64_t side = prune_side(u, 0), H = u->n / side, W = side;
	int64_t g = (int64_t)floor(sqrt((double)budget));
	if (g > H)
		g = H;
	if (g > W)
		g = W;
	for (int64_t bi = 0; bi < g; bi++) {
		const int64_t r0 = bi * H / g, r1 = ((bi + 1) * H + g - 1) / g;
		for (int64_t bj = 0; bj < g; bj++) {
			const int64_t c0 = bj * W / g, c1 = ((bj + 1) * W + g - 1) / g;
			const int64_t anchor = r0 * W + c0;
			const float w = 1.0f / (float)((r1 - r0) * (c1 - c0));
			if (prune_sel_keep(s, anchor) != 0)
				return -1;
			for (int64_t r = r0; r < r1; r++)
				for (int64_t c = c0; c < c1; c++)
					if (prune_sel_merge(s, anchor, r * W + c, w) != 0)
						return -1;
		}
	}
	return 0;
}

/* flowcut_int.h - FlowCut inside the vision encoder (lib/prune_flowcut.c),
 * the steps vision.c takes between its blocks when weft_vision_out asks
 * for it.  Internal: hidden from libweft.so. */
#ifndef WEFT_FLOWCUT_INT_H
#define WEFT_FLOWCUT_INT_H

#include <stdint.h>

#include "vision.h"

#pragma GCC visibility push(hidden)

/* One image's state: target patches, patches left (n), each one's index
 * in the unpruned grid and cumulative score. */
typedef struct flowcut {
	int target, n;
	int32_t *idx;
	double *cum;
} flowcut;

int flowcut_begin(flowcut *f, int n_patches, int target);
void flowcut_end(flowcut *f);
/* After block l (of n_layer_run) ran on the class token and f->n patches:
 * score the patches from the block's attention (cls: the class query's
 * softmax rows per head, [n_head][1 + n]) and values (v: [1 + n][n_embd]),
 * and, at FlowCut's pruning layers, keep the best: x's rows ([1 + n]
 * [n_embd], the block's output) are compacted in place, f->n shrinks.
 * 0 / -1. */
int flowcut_layer(flowcut *f, const weft_vision_hparams *hp, int l, const float *cls, const float *v, float *x);

#pragma GCC visibility pop

#endif

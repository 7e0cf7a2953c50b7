/* prune_cls.c - cls (FasterVLM, Theia-4869/FasterVLM): keep the tokens the
 * [CLS] token attends to most in the vision tower's feature layer (the
 * last block run: transformers' attentions[-2] for LLaVA-1.5's
 * vision_feature_layer -2), attention averaged over heads; encoders
 * without a class token give the attention each token receives instead. */
#include <stdlib.h>

#include "prune_int.h"
#include "util.h"

int prune_cls_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s)
{
	float *a = weft_malloc((size_t)u->n * sizeof *a);
	int32_t *top = weft_malloc((size_t)budget * sizeof *top);
	int rc = -1;
	if (a && top && prune_saliency(u, (int)prune_param(p, "layer"), a) == 0) {
		prune_topk(a, u->n, budget, top);
		rc = 0;
		for (int64_t i = 0; i < budget && rc == 0; i++)
			rc = prune_sel_keep(s, top[i]);
	}
	free(a);
	free(top);
	return rc;
}

/* prune_cdpruner.c - cdpruner (CDPruner, Theia-4869/CDPruner,
 * llava/model/llava_arch.py encode_images): a conditional DPP over the
 * visual tokens, its kernel L = diag(r) S diag(r) with S the cosine
 * similarities of the projected embeddings and r the instruction
 * relevance: the mean over the prompt's text embeddings of sign x cos(
 * token, text) (sign -1 as the reference's LLaVA code), min-max scaled to
 * (0, 1] (+1e-6), and with theta > 0 passed through exp(theta / (2 (1 -
 * theta)) r) (the reference's commented option).  Greedy MAP inference
 * (Chen et al.'s fast algorithm, as the reference): pick the largest
 * marginal gain d_j^2, update every token's Cholesky row and gain.
 * The reference embeds the instruction with CLIP's text tower; the stream
 * has none, so the text is the LLM's input embeddings of the prompt's text
 * tokens, in the same space as the projected visual tokens.  Stops early
 * (fewer tokens) when the kernel's rank is exhausted. */
#include <math.h>
#include <stdlib.h>

#include "prune_int.h"
#include "util.h"

int prune_cdpruner_select(const prune_unit *u, int64_t budget, const prune_params *p, prune_sel *s)
{
	const int64_t n = u->n, d = u->d;
	if (!u->text || u->n_text < 1) {
		weft_error("cdpruner needs the prompt's text embeddings: run prune-tokens with -m MODEL.gguf");
		return -1;
	}
	float *xn = prune_normalized(u->embd, n, d), *tn = prune_normalized(u->text, u->n_text, d);
	float *L = prune_gram(u->embd, n, d, u->pool);
	float *r = weft_malloc((size_t)n * sizeof *r), *di2 = weft_malloc((size_t)n * sizeof *di2);
	float *c = weft_malloc((size_t)budget * (size_t)n * sizeof *c);
	double *tm = weft_calloc((size_t)d, sizeof *tm);
	int rc = -1;
	if (!xn || !tn || !L || !r || !di2 || !c || !tm)
		goto out;
	const double sign = prune_param(p, "sign"), theta = prune_param(p, "theta");
	/* the mean over the text of the cosines = the cosine's dot with the
	 * mean unit text vector */
	for (int64_t m = 0; m < u->n_text; m++)
		for (int64_t e = 0; e < d; e++)
			tm[e] += tn[m * d + e];
	float lo = INFINITY, hi = -INFINITY;
	for (int64_t i = 0; i < n; i++) {
		double acc = 0;
		for (int64_t e = 0; e < d; e++)
			acc += (double)xn[i * d + e] * tm[e];
		r[i] = (float)(sign * acc / (double)u->n_text);
		lo = r[i] < lo ? r[i] : lo;
		hi = r[i] > hi ? r[i] : hi;
	}
	for (int64_t i = 0; i < n; i++) {
		r[i] = (r[i] - lo + 1e-6f) / (hi - lo);
		if (theta > 0)
			r[i] = expf((float)(theta / (2 * (1 - theta))) * r[i]);
	}
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < n; j++)
			L[i * n + j] *= r[i] * r[j];
	for (int64_t i = 0; i < n; i++)
		di2[i] = L[i * n + i];
	rc = 0;
	for (int64_t k = 0; k < budget && rc == 0; k++) {
		int64_t j = 0;
		for (int64_t i = 1; i < n; i++)
			if (di2[i] > di2[j])
				j = i;
		if (!(di2[j] > 0))
			break; /* the kernel's rank is exhausted */
		rc = prune_sel_keep(s, j);
		const float sq = sqrtf(di2[j]);
		float *e = c + k * n;
		for (int64_t i = 0; i < n; i++) {
			double acc = L[j * n + i];
			for (int64_t t = 0; t < k; t++)
				acc -= (double)c[t * n + j] * c[t * n + i];
			e[i] = (float)(acc / sq);
		}
		for (int64_t i = 0; i < n; i++)
			di2[i] -= e[i] * e[i];
		di2[j] = -INFINITY;
	}
out:
	free(xn), free(tn), free(L), free(tm), free(r), free(di2), free(c);
	return rc;
}

/* llm_ref.h - reader for the reference-logit files (.ref) that
 * scripts/gen-llm-fixtures.py writes next to the tiny GGUFs in tests/data/llm:
 * "WREF", version 1, n_vocab, n_prompts, n_sets, then 16-byte set names
 * ("f32", "f16kv", "f16kv-deq"), then per prompt: T, T token ids, and for
 * each set T x n_vocab float32 logits.  Header-only, for the unit tests. */
#ifndef WEFT_LLM_REF_H
#define WEFT_LLM_REF_H

#include <stdint.h>
#include <string.h>

#include "test.h"

typedef struct ref_prompt {
	int T;
	int32_t *ids;
	float *logits[4]; /* per set: [T][n_vocab] */
} ref_prompt;

typedef struct ref {
	int n_vocab, n_prompts, n_sets;
	char names[4][17];
	ref_prompt p[8];
	char *buf;
} ref;

static uint32_t rd32(const char *p)
{
	const uint8_t *u = (const uint8_t *)p;
	return u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static int ref_load(const char *path, ref *r)
{
	size_t n;
	memset(r, 0, sizeof *r);
	r->buf = t_read_file(path, &n);
	if (!r->buf || n < 20 || memcmp(r->buf, "WREF", 4) || rd32(r->buf + 4) != 1)
		return -1;
	r->n_vocab = (int)rd32(r->buf + 8);
	r->n_prompts = (int)rd32(r->buf + 12);
	r->n_sets = (int)rd32(r->buf + 16);
	if (r->n_prompts > 8 || r->n_sets > 4)
		return -1;
	size_t o = 20;
	for (int s = 0; s < r->n_sets; s++, o += 16)
		memcpy(r->names[s], r->buf + o, 16);
	for (int i = 0; i < r->n_prompts; i++) {
		ref_prompt *p = &r->p[i];
		p->T = (int)rd32(r->buf + o);
		o += 4;
		p->ids = (int32_t *)(r->buf + o); /* t_read_file's buffer is malloc-aligned; offsets are x4 */
		o += 4 * (size_t)p->T;
		for (int s = 0; s < r->n_sets; s++) {
			p->logits[s] = (float *)(r->buf + o);
			o += 4 * (size_t)p->T * (size_t)r->n_vocab;
		}
		if (o > n)
			return -1;
	}
	return o == n ? 0 : -1;
}

/* Index of the logit set called name, -1 if absent. */
__attribute__((unused)) static int ref_set_index(const ref *r, const char *name)
{
	for (int s = 0; s < r->n_sets; s++)
		if (!strcmp(r->names[s], name))
			return s;
	return -1;
}

/* Logits [T][n_vocab] of one prompt in the set called name, NULL if absent. */
__attribute__((unused)) static const float *ref_logits(const ref *r, int prompt, const char *name)
{
	int s = ref_set_index(r, name);
	return s < 0 ? NULL : r->p[prompt].logits[s];
}

#endif

/* model_util.h - opening a model and reading id lines in the LLM tests
 * (test_model.c, test_llamacpp_parity.c, tests/gpu/test_cuda_forward.c). */
#ifndef WEFT_TEST_MODEL_UTIL_H
#define WEFT_TEST_MODEL_UTIL_H

#include "gguf.h"
#include "model.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct loaded {
	weft_gguf *g;
	weft_model *m;
} loaded;

static inline int open_model(const char *path, loaded *l)
{
	l->m = NULL;
	l->g = weft_gguf_open(path);
	if (!l->g)
		return -1;
	l->m = weft_model_load(l->g);
	return l->m ? 0 : -1;
}

static inline void close_model(loaded *l)
{
	weft_model_free(l->m);
	weft_gguf_close(l->g);
}

/* Up to max integers from s (a line of ids); how many were read. */
static inline int parse_ids(const char *s, int32_t *ids, int max)
{
	int n = 0;
	char *end;
	while (n < max) {
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		ids[n++] = (int32_t)v;
		s = end;
	}
	return n;
}

/* The index of the largest of x[0..n) (the first on a tie). */
static inline int32_t argmax(const float *x, int n)
{
	int32_t b = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

#endif

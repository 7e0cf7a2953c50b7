/* model_util.h - opening a model in the LLM tests (test_model.c,
 * test_llamacpp_parity.c). */
#ifndef WEFT_TEST_MODEL_UTIL_H
#define WEFT_TEST_MODEL_UTIL_H

#include "gguf.h"
#include "model.h"

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

#endif

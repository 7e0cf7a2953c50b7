/* bind.c - find a GGUF tensor by name and check its shape and type for
 * the use a model makes of it (shared by the LLM and vision loaders). */
#include <stdio.h>
#include <string.h>

#include "bind_int.h"
#include "ggml_types.h"
#include "kernels.h"
#include "util.h"


/* Find tensor name (printf-style, with layer i) and check its dims and
 * type.  optional: absent is not an error (returns NULL, no error). */
const weft_gguf_tensor *weft_bind(const weft_gguf *g, int optional, int use, int64_t ne0, int64_t ne1,
				    const char *fmt, int i, int *err)
{
	char name[96];
	snprintf(name, sizeof name, fmt, i);
	const weft_gguf_tensor *t = weft_gguf_find_tensor(g, name);
	if (!t) {
		if (!optional && !*err) {
			weft_error("missing tensor '%s'", name);
			*err = 1;
		}
		return NULL;
	}
	if (*err)
		return t;
	int want_dims = ne1 > 0 ? 2 : 1;
	int ok = 1;
	for (uint32_t d = 0; d < 4; d++)
		ok &= t->ne[d] == (d == 0 ? ne0 : d == 1 && ne1 > 0 ? ne1 : 1);
	if (!ok || (int)t->n_dims > want_dims) {
		char got[96];
		int n = snprintf(got, sizeof got, "[%lld", (long long)t->ne[0]);
		for (uint32_t d = 1; d < t->n_dims && n > 0 && (size_t)n < sizeof got; d++)
			n += snprintf(got + n, sizeof got - (size_t)n, ", %lld", (long long)t->ne[d]);
		if (ne1 > 0)
			weft_error("tensor '%s': shape %s], expected [%lld, %lld]", name, got, (long long)ne0,
				   (long long)ne1);
		else
			weft_error("tensor '%s': shape %s], expected [%lld]", name, got, (long long)ne0);
		*err = 1;
		return NULL;
	}
	const weft_type_info *ti = weft_type_get(t->type);
	int type_ok = use == WEFT_USE_F32 ? t->type == WEFT_TYPE_F32
		    : use == WEFT_USE_ROWS ? ti && ti->can_dequant
				      : weft_matmul_supported(t->type);
	if (type_ok && ti && !weft_type_row_bytes(t->type, (uint64_t)ne0))
		type_ok = 0;
	if (!type_ok) {
		if (ti)
			weft_error("tensor '%s': unsupported type %s", name, ti->name);
		else
			weft_error("tensor '%s': unsupported type %u", name, t->type);
		*err = 1;
		return NULL;
	}
	return t;
}


void weft_hash_int(uint64_t *h, int64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (8 * i));
	*h = weft_fnv1a(*h, b, 8);
}

uint64_t weft_hash_tensors(const weft_gguf *g, uint64_t h)
{
	weft_hash_int(&h, (int64_t)g->n_tensors);
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const weft_gguf_tensor *t = &g->tensors[i];
		weft_hash_int(&h, (int64_t)t->name.len);
		h = weft_fnv1a(h, t->name.ptr, (size_t)t->name.len);
		weft_hash_int(&h, t->type);
		weft_hash_int(&h, t->n_dims);
		for (int d = 0; d < 4; d++)
			weft_hash_int(&h, t->ne[d]);
		weft_hash_int(&h, (int64_t)t->offset);
	}
	return h;
}

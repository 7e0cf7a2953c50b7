/* vlm_ref.h - reader for the reference files (.vref) that
 * scripts/gen-vlm-fixtures.py writes next to the tiny VLM GGUFs in
 * tests/data/vlm: "WVLM", u32 version 1, u32 n_records; per record u32
 * name length, the name, u32 dtype (0 f32, 1 i32, 2 text), u32 ndim, ndim
 * u32 dims, then the data.  Header-only, for the unit tests. */
#ifndef WEFT_VLM_REF_H
#define WEFT_VLM_REF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

typedef struct vref_rec {
	char name[128];
	int dtype, ndim;
	int64_t dims[4];
	int64_t n;       /* elements (bytes for text) */
	void *data;      /* aligned copy */
} vref_rec;

typedef struct vref {
	int n;
	vref_rec *r;
} vref;

static uint32_t vref_u32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void vref_free(vref *v)
{
	for (int i = 0; i < v->n; i++)
		free(v->r[i].data);
	free(v->r);
	memset(v, 0, sizeof *v);
}

/* 0, or -1 when the file is missing or malformed. */
static int vref_load(const char *path, vref *v)
{
	size_t len, o = 12;
	memset(v, 0, sizeof *v);
	unsigned char *b = (unsigned char *)t_read_file(path, &len);
	if (!b || len < 12 || memcmp(b, "WVLM", 4) || vref_u32(b + 4) != 1) {
		free(b);
		return -1;
	}
	uint32_t n = vref_u32(b + 8);
	if (n > 100000 || !(v->r = calloc(n ? n : 1, sizeof *v->r))) {
		free(b);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		vref_rec *r = &v->r[i];
		if (o + 4 > len)
			goto bad;
		uint32_t nl = vref_u32(b + o);
		o += 4;
		if (nl >= sizeof r->name || o + nl + 8 > len)
			goto bad;
		memcpy(r->name, b + o, nl);
		o += nl;
		r->dtype = (int)vref_u32(b + o);
		r->ndim = (int)vref_u32(b + o + 4);
		o += 8;
		if (r->ndim < 0 || r->ndim > 4 || r->dtype < 0 || r->dtype > 2 || o + 4 * (size_t)r->ndim > len)
			goto bad;
		r->n = 1;
		for (int d = 0; d < r->ndim; d++, o += 4)
			r->n *= r->dims[d] = vref_u32(b + o);
		size_t bytes = (size_t)r->n * (r->dtype == 2 ? 1 : 4);
		if (o + bytes > len || !(r->data = calloc(bytes + 1, 1)))
			goto bad;
		memcpy(r->data, b + o, bytes);
		o += bytes;
		v->n++;
	}
	free(b);
	return 0;
bad:
	free(b);
	vref_free(v);
	return -1;
}

static const vref_rec *vref_get(const vref *v, const char *name)
{
	for (int i = 0; i < v->n; i++)
		if (strcmp(v->r[i].name, name) == 0)
			return &v->r[i];
	return NULL;
}

#endif

/* tokenizer_map.c - the tokenizers' string hash map and output buffer. */
#include "tokenizer.h"
#include "tokenizer_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- hashing */

uint64_t wt_hash(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 29;
		s += 8;
		n -= 8;
	}
	if (n) {
		uint64_t w = 0;
		memcpy(&w, s, n);
		h = (h ^ w) * 0x94d049bb133111ebULL;
	}
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return h;
}

int wt_strmap_init(wt_strmap *m, uint32_t expect)
{
	memset(m, 0, sizeof *m);
	uint32_t slots = 16;
	while (slots < expect * 2u + 16)
		slots *= 2;
	m->mask = slots - 1;
	m->cap = expect + 16;
	m->slot = weft_malloc(slots * sizeof *m->slot);
	m->key = weft_malloc(m->cap * sizeof *m->key);
	m->klen = weft_malloc(m->cap * sizeof *m->klen);
	m->val = weft_malloc(m->cap * sizeof *m->val);
	if (!m->slot || !m->key || !m->klen || !m->val)
		return -1;
	memset(m->slot, 0xff, slots * sizeof *m->slot);
	return 0;
}

void wt_strmap_free(wt_strmap *m)
{
	free(m->slot);
	free(m->key);
	free(m->klen);
	free(m->val);
	memset(m, 0, sizeof *m);
}

static int strmap_grow(wt_strmap *m)
{
	uint32_t slots = (m->mask + 1) * 2;
	int32_t *ns = weft_malloc(slots * sizeof *ns);
	if (!ns)
		return -1;
	memset(ns, 0xff, slots * sizeof *ns);
	for (uint32_t e = 0; e < m->n; e++) {
		uint32_t i = (uint32_t)wt_hash(m->key[e], m->klen[e]) & (slots - 1);
		while (ns[i] >= 0)
			i = (i + 1) & (slots - 1);
		ns[i] = (int32_t)e;
	}
	free(m->slot);
	m->slot = ns;
	m->mask = slots - 1;
	return 0;
}

int wt_strmap_put(wt_strmap *m, const char *k, size_t n, int32_t v, int overwrite)
{
	uint32_t i = (uint32_t)wt_hash(k, n) & m->mask;
	for (; m->slot[i] >= 0; i = (i + 1) & m->mask) {
		int32_t e = m->slot[i];
		if (m->klen[e] == n && memcmp(m->key[e], k, n) == 0) {
			if (overwrite)
				m->val[e] = v;
			return 0;
		}
	}
	if (m->n == m->cap) {
		uint32_t nc = m->cap * 2;
		const char **nk = weft_realloc(m->key, nc * sizeof *nk);
		if (!nk)
			return -1;
		m->key = nk;
		uint32_t *nl = weft_realloc(m->klen, nc * sizeof *nl);
		if (!nl)
			return -1;
		m->klen = nl;
		int32_t *nv = weft_realloc(m->val, nc * sizeof *nv);
		if (!nv)
			return -1;
		m->val = nv;
		m->cap = nc;
	}
	uint32_t e = m->n++;
	m->key[e] = k;
	m->klen[e] = (uint32_t)n;
	m->val[e] = v;
	m->slot[i] = (int32_t)e;
	if (m->n * 2 > m->mask)
		return strmap_grow(m);
	return 0;
}

int32_t wt_strmap_get(const wt_strmap *m, const char *k, size_t n)
{
	uint32_t i = (uint32_t)wt_hash(k, n) & m->mask;
	for (; m->slot[i] >= 0; i = (i + 1) & m->mask) {
		int32_t e = m->slot[i];
		if (m->klen[e] == n && memcmp(m->key[e], k, n) == 0)
			return m->val[e];
	}
	return -1;
}

int wt_push(wt_out *o, int32_t id)
{
	if (*o->n == *o->cap) {
		size_t nc = *o->cap ? *o->cap * 2 : 256;
		int32_t *p = weft_realloc(*o->ids, nc * sizeof *p);
		if (!p)
			return -1;
		*o->ids = p;
		*o->cap = nc;
	}
	(*o->ids)[(*o->n)++] = id;
	return 0;
}

/* tokenizer_spm.c - SentencePiece BPE ("llama" tokenizer model) as
 * llama.cpp's llm_tokenizer_spm: spaces become U+2581, an optional space
 * prefix, bigram merges by token score (highest first, leftmost on ties),
 * and byte fallback (<0xXX>) for characters that form no token. */
#include "tokenizer.h"
#include "tokenizer_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

typedef struct spm_sym {
	uint32_t start, len;
	int32_t prev, next;
} spm_sym;

typedef struct spm_big {
	float score;
	int32_t left, right;
	uint32_t size;
} spm_big;

typedef struct spm_state {
	const weft_vocab *v;
	const char *t;
	spm_sym *sym;
	spm_big *heap;
	size_t hn;
} spm_state;

/* a goes before b: higher score, then smaller left index */
static int before(const spm_big *a, const spm_big *b)
{
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void push(spm_state *s, spm_big e)
{
	size_t i = s->hn++;
	while (i) {
		size_t p = (i - 1) / 2;
		if (!before(&e, &s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static spm_big pop(spm_state *s)
{
	spm_big top = s->heap[0], last = s->heap[--s->hn];
	size_t i = 0, n = s->hn;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && before(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!before(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n)
		s->heap[i] = last;
	return top;
}

static void try_bigram(spm_state *s, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return;
	uint32_t size = s->sym[l].len + s->sym[r].len;
	int32_t id = wt_strmap_get(&s->v->tok, s->t + s->sym[l].start, size);
	if (id < 0)
		return;
	push(s, (spm_big){ s->v->score[id], l, r, size });
}

int wt_spm_tokenize(const weft_vocab *v, const char *text, size_t len, int prefix, wt_out *o)
{
	size_t spaces = 0;
	for (size_t i = 0; i < len; i++)
		spaces += text[i] == ' ';
	size_t n = len + (size_t)!!prefix * 3 + spaces * 2;
	if (n >= UINT32_MAX / 2) {
		weft_error("text too long for one call (%zu bytes)", len);
		return -1;
	}
	char *t = weft_malloc(n + 1);
	spm_sym *sym = weft_malloc(n * sizeof *sym);
	spm_big *heap = weft_malloc(3 * n * sizeof *heap);
	int rc = -1;
	if (!t || !sym || !heap)
		goto out;
	size_t k = 0;
	if (prefix)
		memcpy(t, "\xe2\x96\x81", 3), k = 3;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ')
			memcpy(t + k, "\xe2\x96\x81", 3), k += 3;
		else
			t[k++] = text[i];
	}
	/* one symbol per UTF-8 character (the input was validated) */
	int32_t ns = 0;
	for (size_t off = 0; off < n;) {
		unsigned c = (unsigned char)t[off];
		size_t cl = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		if (cl > n - off)
			cl = n - off;
		sym[ns] = (spm_sym){ (uint32_t)off, (uint32_t)cl, ns - 1, off + cl < n ? ns + 1 : -1 };
		ns++;
		off += cl;
	}
	spm_state s = { v, t, sym, heap, 0 };
	for (int32_t i = 1; i < ns; i++)
		try_bigram(&s, i - 1, i);
	while (s.hn) {
		spm_big b = pop(&s);
		spm_sym *l = &sym[b.left], *r = &sym[b.right];
		if (!l->len || !r->len || l->len + r->len != b.size)
			continue; /* stale */
		l->len += r->len;
		r->len = 0;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = b.left;
		try_bigram(&s, l->prev, b.left);
		try_bigram(&s, b.left, l->next);
	}
	for (int32_t i = ns ? 0 : -1; i >= 0; i = sym[i].next) {
		int32_t id = wt_strmap_get(&v->tok, t + sym[i].start, sym[i].len);
		if (id >= 0) {
			if (wt_push(o, id) != 0)
				goto out;
			continue;
		}
		for (uint32_t j = 0; j < sym[i].len; j++) { /* byte fallback */
			unsigned char c = (unsigned char)t[sym[i].start + j];
			id = v->spm_byte[c] >= 0 ? v->spm_byte[c] : v->unk;
			if (id < 0) {
				weft_error("no token for byte 0x%02X and no unknown token", c);
				goto out;
			}
			if (wt_push(o, id) != 0)
				goto out;
		}
	}
	rc = 0;
out:
	free(t);
	free(sym);
	free(heap);
	return rc;
}

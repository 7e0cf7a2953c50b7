/* tokenizer_bpe.c - BPE ("gpt2" and "gemma4" tokenizer models): the words
 * of the pre-tokenizer (tokenizer_pre.c), GPT-2 byte encoding (or raw UTF-8
 * characters with <0xXX> byte fallback for SPM-style BPE such as Gemma 4)
 * and merges by rank, as llama.cpp's llm_tokenizer_bpe_session. */
#include "tokenizer.h"
#include "tokenizer_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ byte encoding */

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others
 * to U+0100 upwards in byte order. */
static uint32_t byte_cpt(int b)
{
	if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
		return (uint32_t)b;
	uint32_t k = 0;
	for (int c = 0; c < b; c++)
		if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)))
			k++;
	return 256 + k;
}

/* Lenient decoder as llama.cpp's unicode_cpt_from_utf8 (+ U+FFFD on error). */
static uint32_t cpt_lenient(const unsigned char *s, size_t n, size_t *i)
{
	unsigned c = s[*i];
	if (!(c & 0x80)) {
		(*i)++;
		return c;
	}
	size_t need = !(c & 0x40) ? 0 : !(c & 0x20) ? 1 : !(c & 0x10) ? 2 : !(c & 0x08) ? 3 : 0;
	int ok = need && *i + need < n;
	for (size_t k = 1; ok && k <= need; k++)
		ok = (s[*i + k] & 0xC0) == 0x80;
	if (!ok) {
		(*i)++;
		return 0xFFFD;
	}
	uint32_t r = c & (0x3Fu >> need);
	for (size_t k = 1; k <= need; k++)
		r = (r << 6) | (s[*i + k] & 0x3F);
	*i += need + 1;
	return r;
}

/* Inverse of byte_cpt, -1 for code points outside the mapping. */
static int cpt_byte(uint32_t c)
{
	if (c < 256)
		return byte_cpt((int)c) == c ? (int)c : -1;
	if (c < 256 + 33)
		return (int)(c - 256);             /* 0x00-0x20 */
	if (c < 256 + 67)
		return (int)(0x7F + (c - 256 - 33)); /* 0x7F-0xA0 */
	return c == 256 + 67 ? 0xAD : -1;
}

char *wt_bpe_decode_alloc(const char *s, size_t n, size_t *out_len)
{
	size_t cap = n + 16, o = 0;
	char *out = weft_malloc(cap);
	if (!out)
		return NULL;
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		uint32_t c = cpt_lenient(u, n, &i);
		int b = cpt_byte(c);
		if (b >= 0) {
			out[o++] = (char)b;
		} else { /* llama.cpp: "[UNK_BYTE_0x" + hex of the character + text + "]" */
			uint8_t e[4];
			size_t k = c <= 0x10FFFF ? wt_utf8_put(c, e) : 0;
			size_t need = o + 13 + 2 * k + n + 2;
			if (need > cap) {
				cap = need * 2;
				char *nb = weft_realloc(out, cap);
				if (!nb) {
					free(out);
					return NULL;
				}
				out = nb;
			}
			memcpy(out + o, "[UNK_BYTE_0x", 12);
			o += 12;
			for (size_t j = 0; j < k; j++)
				o += (size_t)snprintf(out + o, 3, "%02x", e[j]);
			memcpy(out + o, s, n);
			o += n;
			out[o++] = ']';
		}
		if (o + 8 > cap) {
			cap = cap * 2 + 16;
			char *nb = weft_realloc(out, cap);
			if (!nb) {
				free(out);
				return NULL;
			}
			out = nb;
		}
	}
	*out_len = o;
	return out;
}

/* ------------------------------------------------------------------- setup */

static uint32_t pair_slot(uint64_t key, uint32_t mask)
{
	return (uint32_t)((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask;
}

static int32_t piece_get_or_add(weft_vocab *v, const char *s, size_t n, char **xp)
{
	int32_t id = wt_strmap_get(&v->piece, s, n);
	if (id >= 0)
		return id;
	memcpy(*xp, s, n);
	id = (int32_t)v->piece.n; /* tokens first, so extra ids are >= v->n */
	if (wt_strmap_put(&v->piece, *xp, n, id, 0) != 0)
		return -2;
	*xp += n;
	return id;
}

int wt_bpe_setup(weft_vocab *v, const char *pre, const weft_gguf_value *merges)
{
	if (wt_pre_setup(v, pre) != 0)
		return -1;
	if (v->pre_flags & WT_PRE_NO_BOS)
		v->bos = -1;

	/* byte encoding tables */
	for (int b = 0; b < 256; b++) {
		v->benc_len[b] = (uint8_t)wt_utf8_put(byte_cpt(b), v->benc[b]);
		char c = (char)b, hex[8];
		if (v->pre_flags & WT_PRE_RAW_BYTES) { /* byte fallback tokens are <0xXX> */
			snprintf(hex, sizeof hex, "<0x%02X>", b);
			v->byte_tok[b] = wt_strmap_get(&v->tok, hex, 6);
		} else {
			v->byte_tok[b] = wt_strmap_get(&v->tok, &c, 1);
		}
	}

	/* pieces: tokens, then merge halves that are not tokens */
	uint64_t nm = merges->v.arr.n, xbytes = 0;
	if (nm > (1u << 28)) {
		weft_error("tokenizer.ggml.merges: too many merges");
		return -1;
	}
	for (uint64_t i = 0; i < nm; i++)
		xbytes += merges->v.arr.strs[i].len;
	if (wt_strmap_init(&v->piece, (uint32_t)v->n + (uint32_t)nm) != 0)
		return -1;
	for (int32_t i = 0; i < v->n; i++)
		if (wt_strmap_put(&v->piece, v->arena + v->off[i], v->len[i], i, 1) != 0)
			return -1;
	v->xarena = weft_malloc(xbytes + 1);
	if (!v->xarena)
		return -1;
	char *xp = v->xarena;
	for (uint64_t i = 0; i < nm; i++) {
		weft_gguf_str s = merges->v.arr.strs[i];
		const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
		if (!sp)
			continue;
		size_t a = (size_t)(sp - s.ptr);
		if (piece_get_or_add(v, s.ptr, a, &xp) < -1 ||
		    piece_get_or_add(v, sp + 1, s.len - a - 1, &xp) < -1)
			return -1;
	}
	for (int b = 0; b < 256; b++)
		v->byte_piece[b] = wt_strmap_get(&v->piece, (const char *)v->benc[b], v->benc_len[b]);

	uint32_t slots = 64;
	while (slots < nm * 2 + 64)
		slots *= 2;
	v->pairs = weft_malloc(slots * sizeof *v->pairs);
	if (!v->pairs)
		return -1;
	memset(v->pairs, 0xff, slots * sizeof *v->pairs);
	v->pair_mask = slots - 1;
	char *cat = NULL;
	size_t catcap = 0;
	for (uint64_t i = 0; i < nm; i++) {
		weft_gguf_str s = merges->v.arr.strs[i];
		const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
		if (!sp)
			continue;
		size_t a = (size_t)(sp - s.ptr), bl = s.len - a - 1;
		int32_t l = wt_strmap_get(&v->piece, s.ptr, a), r = wt_strmap_get(&v->piece, sp + 1, bl);
		if (a + bl > catcap) {
			catcap = (a + bl) * 2 + 64;
			char *nc = weft_realloc(cat, catcap);
			if (!nc) {
				free(cat);
				return -1;
			}
			cat = nc;
		}
		memcpy(cat, s.ptr, a);
		memcpy(cat + a, sp + 1, bl);
		uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
		uint32_t k = pair_slot(key, v->pair_mask);
		while (v->pairs[k].key != UINT64_MAX && v->pairs[k].key != key)
			k = (k + 1) & v->pair_mask;
		if (v->pairs[k].key == key)
			continue; /* first (lowest) rank wins */
		v->pairs[k].key = key;
		v->pairs[k].rank = (int32_t)i;
		v->pairs[k].merged = wt_strmap_get(&v->piece, cat, a + bl);
	}
	free(cat);
	return 0;
}

void wt_bpe_free(weft_vocab *v)
{
	wt_pre_free(v);
	wt_strmap_free(&v->piece);
	free(v->xarena);
	free(v->pairs);
	v->xarena = NULL;
	v->pairs = NULL;
}

/* ---------------------------------------------------------------- tokenize */

typedef struct heap_ent {
	uint64_t key; /* rank << 32 | left */
	int32_t right;
	uint32_t size;
} heap_ent;

typedef struct bpe_scratch {
	int32_t *pid, *prev, *next;
	uint32_t *start, *slen;
	heap_ent *heap;
	size_t hn, wcap, hcap;
	char *enc;
} bpe_scratch;

static const wt_pair *pair_find(const weft_vocab *v, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return NULL;
	uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
	for (uint32_t k = pair_slot(key, v->pair_mask);; k = (k + 1) & v->pair_mask) {
		if (v->pairs[k].key == key)
			return &v->pairs[k];
		if (v->pairs[k].key == UINT64_MAX)
			return NULL;
	}
}

static void heap_push(bpe_scratch *s, heap_ent e)
{
	size_t i = s->hn++;
	while (i) {
		size_t p = (i - 1) / 2;
		if (s->heap[p].key <= e.key)
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static heap_ent heap_pop(bpe_scratch *s)
{
	heap_ent top = s->heap[0], last = s->heap[--s->hn];
	size_t i = 0, n = s->hn;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && s->heap[c + 1].key < s->heap[c].key)
			c++;
		if (last.key <= s->heap[c].key)
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n)
		s->heap[i] = last;
	return top;
}

static void add_bigram(const weft_vocab *v, bpe_scratch *s, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return;
	const wt_pair *p = pair_find(v, s->pid[l], s->pid[r]);
	if (!p)
		return;
	heap_push(s, (heap_ent){ (uint64_t)(uint32_t)p->rank << 32 | (uint32_t)l, r, s->slen[l] + s->slen[r] });
}

static int emit_symbol(const weft_vocab *v, const unsigned char *w, uint32_t start, uint32_t len,
		       int32_t pid, wt_out *o)
{
	if (pid >= 0 && pid < v->n)
		return wt_push(o, pid);
	/* not a token: llama.cpp looks up each byte alone (each byte of its
	 * byte-level encoding, or the <0xXX> token of each raw byte) */
	for (uint32_t i = 0; i < len; i++) {
		unsigned b = w[start + i];
		if (v->pre_flags & WT_PRE_RAW_BYTES) {
			if (v->byte_tok[b] >= 0 && wt_push(o, v->byte_tok[b]) != 0)
				return -1;
			continue;
		}
		for (int k = 0; k < v->benc_len[b]; k++) {
			int32_t id = v->byte_tok[v->benc[b][k]];
			if (id >= 0 && wt_push(o, id) != 0)
				return -1;
		}
	}
	return 0;
}

/* Merge one pre-tokenized word (raw bytes).  The initial symbols are its
 * bytes (byte-level BPE: each stands for its byte-level character) or its
 * UTF-8 characters (raw-byte BPE). */
static int bpe_word(const weft_vocab *v, bpe_scratch *s, const unsigned char *w, uint32_t n, wt_out *o)
{
	int raw = !!(v->pre_flags & WT_PRE_RAW_BYTES);
	uint32_t nl = 0;
	if (v->pre_flags & WT_PRE_NEWLINE_WORDS)
		while (nl < n && w[nl] == '\n')
			nl++;
	if (v->ignore_merges || nl == n) {
		size_t e = 0;
		if (raw) {
			memcpy(s->enc, w, n);
			e = n;
		} else {
			for (uint32_t i = 0; i < n; i++) {
				memcpy(s->enc + e, v->benc[w[i]], v->benc_len[w[i]]);
				e += v->benc_len[w[i]];
			}
		}
		int32_t id = wt_strmap_get(&v->tok, s->enc, e);
		if (id >= 0)
			return wt_push(o, id);
	}
	uint32_t ns = 0;
	for (uint32_t i = 0; i < n; ns++) {
		uint32_t l = 1;
		if (raw) { /* llama.cpp's unicode_len_utf8 of the lead byte, clamped */
			unsigned c = w[i];
			l = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
			if (l > n - i)
				l = n - i;
			s->pid[ns] = wt_strmap_get(&v->piece, (const char *)w + i, l);
		} else {
			s->pid[ns] = v->byte_piece[w[i]];
		}
		s->start[ns] = i;
		s->slen[ns] = l;
		s->prev[ns] = (int32_t)ns - 1;
		i += l;
		s->next[ns] = i < n ? (int32_t)ns + 1 : -1;
	}
	if (ns == 1)
		return emit_symbol(v, w, 0, n, s->pid[0], o);
	s->hn = 0;
	for (uint32_t i = 1; i < ns; i++)
		add_bigram(v, s, (int32_t)i - 1, (int32_t)i);
	while (s->hn) {
		heap_ent e = heap_pop(s);
		int32_t l = (int32_t)(uint32_t)e.key, r = e.right;
		if (!s->slen[l] || !s->slen[r] || s->slen[l] + s->slen[r] != e.size)
			continue; /* stale */
		const wt_pair *p = pair_find(v, s->pid[l], s->pid[r]);
		s->pid[l] = p ? p->merged : -1;
		s->slen[l] += s->slen[r];
		s->slen[r] = 0;
		s->next[l] = s->next[r];
		if (s->next[r] >= 0)
			s->prev[s->next[r]] = l;
		add_bigram(v, s, s->prev[l], l);
		add_bigram(v, s, l, s->next[l]);
	}
	for (int32_t i = 0; i >= 0; i = s->next[i])
		if (emit_symbol(v, w, s->start[i], s->slen[i], s->pid[i], o) != 0)
			return -1;
	return 0;
}

static int scratch_words(bpe_scratch *s, size_t n)
{
	if (n <= s->wcap)
		return 0;
	size_t c = n + 64;
	free(s->pid), free(s->prev), free(s->next), free(s->start), free(s->slen), free(s->heap), free(s->enc);
	s->pid = weft_malloc(c * sizeof *s->pid);
	s->prev = weft_malloc(c * sizeof *s->prev);
	s->next = weft_malloc(c * sizeof *s->next);
	s->start = weft_malloc(c * sizeof *s->start);
	s->slen = weft_malloc(c * sizeof *s->slen);
	s->hcap = 3 * c;
	s->heap = weft_malloc(s->hcap * sizeof *s->heap);
	s->enc = weft_malloc(2 * c);
	if (!s->pid || !s->prev || !s->next || !s->start || !s->slen || !s->heap || !s->enc) {
		s->wcap = 0;
		return -1;
	}
	s->wcap = c;
	return 0;
}

static void scratch_free(bpe_scratch *s)
{
	free(s->pid), free(s->prev), free(s->next), free(s->start), free(s->slen), free(s->heap), free(s->enc);
}

int wt_bpe_tokenize(const weft_vocab *v, const char *text, size_t len, wt_out *o)
{
	char *esc = NULL;
	if (v->pre_flags & WT_PRE_ESCAPE_SPACES) { /* ' ' -> U+2581 */
		size_t spaces = 0;
		for (size_t i = 0; i < len; i++)
			spaces += text[i] == ' ';
		if (spaces) {
			esc = weft_malloc(len + 2 * spaces + 1);
			if (!esc)
				return -1;
			size_t k = 0;
			for (size_t i = 0; i < len; i++) {
				if (text[i] == ' ')
					memcpy(esc + k, "\xe2\x96\x81", 3), k += 3;
				else
					esc[k++] = text[i];
			}
			text = esc;
			len = k;
		}
	}
	bpe_scratch s;
	memset(&s, 0, sizeof s);
	wt_seg *w = NULL;
	size_t nw = 0;
	int rc = -1;
	if (wt_pre_split(v, text, len, &w, &nw) != 0)
		goto out;
	for (size_t k = 0; k < nw; k++) {
		if (scratch_words(&s, w[k].len) != 0 ||
		    bpe_word(v, &s, (const unsigned char *)text + w[k].off, w[k].len, o) != 0)
			goto out;
	}
	rc = 0;
out:
	free(w);
	free(esc);
	scratch_free(&s);
	return rc;
}

/* tokenizer_detok.c - token texts as they read in the output (llama.cpp's
 * token_to_piece, cached per token at load time) and detokenize, with
 * llama.cpp's clean-up of spaces. */
#include "tokenizer.h"
#include "tokenizer_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Piece of a token as llama.cpp's token_to_piece(special=true) renders it. */
int wt_build_pieces(weft_vocab *v)
{
	size_t cap = 1024, used = 0;
	char *buf = weft_malloc(cap);
	v->poff = weft_malloc(((size_t)v->n + 1) * sizeof *v->poff);
	if (!buf || !v->poff) {
		free(buf);
		return -1;
	}
	for (int32_t i = 0; i < v->n; i++) {
		size_t tn;
		const char *t = v->arena + v->off[i];
		tn = v->len[i];
		char *tmp = NULL, byte;
		const char *src = NULL;
		size_t sn = 0;
		uint16_t a = v->attr[i];
		if (a & (TA_UNKNOWN | TA_CONTROL | TA_USER_DEFINED)) {
			src = t;
			sn = tn;
		} else if (a & TA_NORMAL) {
			if (v->kind == WEFT_VOCAB_BPE && !(v->pre_flags & WT_PRE_ESCAPE_SPACES)) {
				tmp = (char *)wt_bpe_decode_alloc(t, tn, &sn);
				if (!tmp) {
					free(buf);
					return -1;
				}
				src = tmp;
			} else { /* "▁" -> " " */
				tmp = weft_malloc(tn + 1);
				if (!tmp) {
					free(buf);
					return -1;
				}
				for (size_t k = 0; k < tn;) {
					if (k + 3 <= tn && memcmp(t + k, "\xe2\x96\x81", 3) == 0) {
						tmp[sn++] = ' ';
						k += 3;
					} else {
						tmp[sn++] = t[k++];
					}
				}
				src = tmp;
			}
		} else if (a & TA_BYTE) {
			/* llama.cpp: strtol of the two characters after "<0x" */
			char hex[3] = { 0, 0, 0 };
			if (tn >= 4)
				memcpy(hex, t + 3, tn >= 5 ? 2 : 1);
			byte = (char)strtol(hex, NULL, 16);
			src = &byte;
			sn = 1;
		}
		if (used + sn + 1 > cap) {
			while (used + sn + 1 > cap)
				cap *= 2;
			char *nb = weft_realloc(buf, cap);
			if (!nb) {
				free(tmp);
				free(buf);
				return -1;
			}
			buf = nb;
		}
		v->poff[i] = (uint32_t)used;
		if (sn)
			memcpy(buf + used, src, sn);
		used += sn;
		free(tmp);
	}
	v->poff[v->n] = (uint32_t)used;
	v->pieces = buf;
	return 0;
}

/* ----------------------------------------------------------- detokenizing */

int weft_token_to_piece(const weft_vocab *v, int32_t id, int special, char *buf, size_t cap)
{
	if (id < 0 || id >= v->n) {
		weft_error("token id %d out of range (vocabulary has %d)", (int)id, (int)v->n);
		return -1;
	}
	if (!special && (v->attr[id] & (TA_UNKNOWN | TA_CONTROL)))
		return 0;
	size_t pn = v->poff[id + 1] - v->poff[id];
	if (buf && cap)
		memcpy(buf, v->pieces + v->poff[id], pn < cap ? pn : cap);
	return (int)pn;
}

/* llama.cpp's clean_up_tokenization_spaces passes. */
static size_t clean_spaces(char *t, size_t total)
{
	size_t n1 = total, o = total ? 1 : 0;
	for (size_t i = 1; i < n1; i++) { /* " ?", " !", " .", " ," */
		char x = t[i];
		if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
			o--;
		t[o++] = x;
	}
	size_t n2 = o;
	o = n2 ? 1 : 0;
	for (size_t i = 1; i < n2; i++) { /* " ' " */
		char x = t[i];
		if (x == '\'' && i + 1 < n2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
			o--;
			t[++i] = 0;
		}
		t[o++] = x;
	}
	size_t n3 = o;
	o = n3 ? 1 : 0;
	for (size_t i = 1; i < n3; i++) { /* " 's", " 'm", " 're", " 've" */
		char x = t[i];
		if (t[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
			char x1 = t[i + 1];
			if (x1 == 's' || x1 == 'm')
				o--;
			else if (i + 2 < n3 && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e')))
				o--;
		}
		t[o++] = x;
	}
	return o;
}

char *weft_detokenize(const weft_vocab *v, const int32_t *ids, size_t n, int special, size_t *out_len)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (ids[i] < 0 || ids[i] >= v->n) {
			weft_error("token id %d out of range (vocabulary has %d)", (int)ids[i], (int)v->n);
			return NULL;
		}
		total += v->poff[ids[i] + 1] - v->poff[ids[i]];
	}
	char *out = weft_malloc(total + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	int remove_space = v->add_space_prefix;
	for (size_t i = 0; i < n; i++) {
		int32_t id = ids[i];
		if (!special && (v->attr[id] & (TA_UNKNOWN | TA_CONTROL))) {
			remove_space = 0;
			continue;
		}
		const char *p = v->pieces + v->poff[id];
		size_t pn = v->poff[id + 1] - v->poff[id];
		if (remove_space && pn && *p == ' ')
			p++, pn--;
		remove_space = 0;
		memcpy(out + o, p, pn);
		o += pn;
	}
	if (v->clean_spaces)
		o = clean_spaces(out, o);
	out[o] = 0;
	if (out_len)
		*out_len = o;
	return out;
}

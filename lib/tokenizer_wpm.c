/* tokenizer_wpm.c - WordPiece ("bert" tokenizer model) as llama.cpp's
 * llm_tokenizer_wpm_session: BertNormalizer-style words (split at
 * whitespace; punctuation, ASCII symbols and CJK ideographs as words of their
 * own; control characters dropped; optionally lower-cased and with accents
 * stripped), then per word the longest vocabulary entries from the left,
 * after a U+2581 that marks the start of a word (llama.cpp's converter writes
 * word-initial pieces with it and continuation pieces without "##").  A word
 * that cannot be covered becomes the unknown token.
 *
 * As in llama.cpp, stripping accents maps each code point to the first code
 * point of its canonical decomposition (so a precomposed Hangul syllable
 * becomes its leading jamo) and drops combining marks; lower-casing is the
 * simple mapping of UnicodeData.txt.  The tables are in tokenizer_unicode.c. */
#include "tokenizer.h"
#include "tokenizer_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int wt_wpm_setup(weft_vocab *v, const weft_gguf *g)
{
	int b;
	v->wpm_lower = 1; /* llama.cpp's defaults */
	if (weft_gguf_get_bool(g, "tokenizer.ggml.normalizer.lowercase", &b) == 0)
		v->wpm_lower = b;
	v->wpm_strip = v->wpm_lower;
	if (weft_gguf_get_bool(g, "tokenizer.ggml.normalizer.strip_accents", &b) == 0)
		v->wpm_strip = b;
	v->max_token_len = 0;
	for (int32_t i = 0; i < v->n; i++)
		if (v->len[i] > v->max_token_len)
			v->max_token_len = v->len[i];
	return 0;
}

/* CJK ideograph blocks of BERT's _is_chinese_char (with its 0x2B920 bound). */
static int is_cjk(uint32_t c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
	       (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
	       (c >= 0x2B920 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Longest-match pieces of one normalized word w (starting with U+2581). */
static int word_pieces(const weft_vocab *v, const char *w, size_t n, wt_out *o)
{
	size_t first = *o->n;
	for (size_t i = 0; i < n;) {
		size_t j = n - i > (size_t)v->max_token_len + 1 ? i + v->max_token_len + 1 : n;
		int32_t id = -1;
		for (; j > i; j--)
			if ((id = wt_strmap_get(&v->tok, w + i, j - i)) >= 0)
				break;
		if (id < 0) { /* not covered: drop what was found */
			*o->n = first;
			break;
		}
		if (wt_push(o, id) != 0)
			return -1;
		i = j;
	}
	if (*o->n == first) {
		if (v->unk < 0) {
			weft_error("no token for a word and no unknown token");
			return -1;
		}
		return wt_push(o, v->unk);
	}
	return 0;
}

int wt_wpm_tokenize(const weft_vocab *v, const char *text, size_t len, wt_out *o)
{
	/* one output code point is at most 4 bytes and each input one at least 1 */
	if (len > (SIZE_MAX - 8) / 4) {
		weft_error("text too long for one call (%zu bytes)", len);
		return -1;
	}
	char *w = weft_malloc(4 * len + 8);
	if (!w)
		return -1;
	const unsigned char *s = (const unsigned char *)text;
	size_t wn = 3; /* the word being built, after its U+2581 */
	memcpy(w, "\xe2\x96\x81", 3);
	int rc = 0;
	for (size_t i = 0; i < len && rc == 0;) {
		uint32_t c = wt_utf8_next(s, len, &i);
		if (v->wpm_strip)
			c = wt_uni_nfd_first(c);
		int cls = wt_uni_class(c);
		int alone = 0;
		if (wt_is_space(c)) {
			alone = -1;
		} else if (c == 0 || c == 0xFFFD || cls == WT_U_CONTROL || (v->wpm_strip && cls == WT_U_MARK)) {
			continue;
		} else if (cls == WT_U_PUNCT || (c < 0x7F && cls == WT_U_SYMBOL) || is_cjk(c)) {
			alone = 1;
		}
		if (alone && wn > 3) { /* end the current word */
			rc = word_pieces(v, w, wn, o);
			wn = 3;
		}
		if (alone < 0)
			continue;
		wn += wt_utf8_put(v->wpm_lower ? wt_uni_lower(c) : c, (unsigned char *)w + wn);
		if (alone && rc == 0) {
			rc = word_pieces(v, w, wn, o);
			wn = 3;
		}
	}
	if (rc == 0 && wn > 3)
		rc = word_pieces(v, w, wn, o);
	free(w);
	return rc;
}

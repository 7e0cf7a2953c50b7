/* tokenizer_unicode.c - UTF-8 helpers and code point properties for the
 * tokenizers: llama.cpp's whitespace set, general category classes, simple
 * lower-case mapping and the first code point of the canonical decomposition,
 * from tables generated out of the Unicode Character Database 15.1
 * (tokenizer_unidata_int.h, scripts/gen-unicode-tables): the version llama.cpp's
 * own tables come from, so WordPiece normalizes as llama.cpp does. */
#include "tokenizer.h"
#include "tokenizer_int.h"

#include <stddef.h>
#include <stdint.h>

#include "tokenizer_unidata_int.h"

uint32_t wt_utf8_next(const unsigned char *s, size_t n, size_t *i)
{
	unsigned c = s[*i];
	if (c < 0x80) {
		(*i)++;
		return c;
	}
	size_t need = c < 0xC0 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
	if (!need || *i + need >= n) { /* not a lead byte, or truncated (callers validate) */
		(*i)++;
		return 0xFFFD;
	}
	uint32_t r = c & (0x3Fu >> need);
	for (size_t k = 1; k <= need; k++)
		r = (r << 6) | (s[*i + k] & 0x3F);
	*i += need + 1;
	return r;
}

size_t wt_utf8_put(uint32_t c, unsigned char *o)
{
	if (c < 0x80) {
		o[0] = (unsigned char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (unsigned char)(0xC0 | (c >> 6));
		o[1] = (unsigned char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (c >> 12));
		o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (c >> 18));
	o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (c & 0x3F));
	return 4;
}

int wt_is_space(uint32_t c)
{
	if (c <= 0x20)
		return c == ' ' || (c >= 0x09 && c <= 0x0D);
	if (c < 0x85)
		return 0;
	return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
	       c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

int wt_uni_class(uint32_t c)
{
	if (c >= 0x110000)
		return WT_U_UNDEFINED;
	size_t lo = 0, hi = sizeof uni_class / sizeof uni_class[0];
	while (hi - lo > 1) { /* last range starting at or before c */
		size_t mid = (lo + hi) / 2;
		if ((uni_class[mid] >> 3) <= c)
			lo = mid;
		else
			hi = mid;
	}
	return (int)(uni_class[lo] & 7);
}

uint32_t wt_uni_lower(uint32_t c)
{
	size_t lo = 0, hi = sizeof uni_lower / sizeof uni_lower[0];
	if (c < uni_lower[0].start)
		return c;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (uni_lower[mid].start <= c)
			lo = mid;
		else
			hi = mid;
	}
	uint32_t d = c - uni_lower[lo].start;
	if (d % uni_lower[lo].stride == 0 && d / uni_lower[lo].stride < uni_lower[lo].count)
		return (uint32_t)((int32_t)c + uni_lower[lo].delta);
	return c;
}

uint32_t wt_uni_nfd_first(uint32_t c)
{
	size_t lo = 0, hi = sizeof uni_nfd / sizeof uni_nfd[0];
	if (c < uni_nfd[0].first)
		return c;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (uni_nfd[mid].first <= c)
			lo = mid;
		else
			hi = mid;
	}
	return c <= uni_nfd[lo].last ? uni_nfd[lo].nfd : c;
}

/* eval_text.c - text helpers for the eval files: growable strings, and the
 * few Python string operations the official scoring scripts use, with
 * Python 3's semantics (Unicode whitespace, lower case), plus SHA-256. */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "tokenizer_int.h"
#include "util.h"

/* ---- growable strings ---- */

static int wstr_room(ev_wstr *w, size_t k)
{
	if (w->oom || weft_grow(&w->s, &w->cap, w->n + k + 1, 1) != 0) {
		w->oom = 1;
		return -1;
	}
	return 0;
}

void ev_wstr_addn(ev_wstr *w, const char *s, size_t n)
{
	if (wstr_room(w, n) != 0)
		return;
	memcpy(w->s + w->n, s, n);
	w->n += n;
	w->s[w->n] = 0;
}

void ev_wstr_add(ev_wstr *w, const char *s) { ev_wstr_addn(w, s, strlen(s)); }

void ev_wstr_reserve(ev_wstr *w, size_t k) { wstr_room(w, k); }

void ev_wstr_addf(ev_wstr *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (k < 0 || wstr_room(w, (size_t)k) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(w->s + w->n, (size_t)k + 1, fmt, ap);
	va_end(ap);
	w->n += (size_t)k;
}

char *ev_wstr_take(ev_wstr *w)
{
	if (w->oom) {
		free(w->s);
		memset(w, 0, sizeof *w);
		weft_error("out of memory");
		return NULL;
	}
	char *s = w->s ? w->s : weft_strndup("", 0);
	memset(w, 0, sizeof *w);
	return s;
}

/* ---- UTF-8 and Python's whitespace ---- */

uint32_t ev_utf8_next(const char *s, const char *end, int *k)
{
	const unsigned char *p = (const unsigned char *)s;
	const size_t avail = (size_t)(end - s);
	uint32_t c = p[0];
	int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
	if (n <= 1 || (size_t)n > avail) {
		*k = 1;
		return c;
	}
	uint32_t v = c & (0xffu >> (n + 1));
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*k = 1;
			return c;
		}
		v = v << 6 | (p[i] & 0x3f);
	}
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
		*k = 1;
		return c;
	}
	*k = n;
	return v;
}

int ev_py_isspace(uint32_t c)
{
	/* CPython's _PyUnicode_IsWhitespace: bidirectional WS, B, S or Zs */
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
	       c == 0x3000;
}

void ev_py_strip_ws(const char *s, size_t n, size_t *b, size_t *e)
{
	size_t i = 0, last = 0;
	int k;
	*b = n;
	while (i < n) {
		uint32_t c = ev_utf8_next(s + i, s + n, &k);
		if (!ev_py_isspace(c)) {
			if (*b == n)
				*b = i;
			last = i + (size_t)k;
		}
		i += (size_t)k;
	}
	*e = *b == n ? n : last;
}

/* Calls fn(ctx, word, len) for each word of s (Python's str.split()). */
static void each_word(const char *s, size_t n, void (*fn)(void *, const char *, size_t), void *ctx)
{
	size_t i = 0, start = 0;
	int in = 0, k;
	while (i < n) {
		uint32_t c = ev_utf8_next(s + i, s + n, &k);
		const int sp = ev_py_isspace(c);
		if (!sp && !in) {
			in = 1;
			start = i;
		} else if (sp && in) {
			in = 0;
			fn(ctx, s + start, i - start);
		}
		i += (size_t)k;
	}
	if (in)
		fn(ctx, s + start, n - start);
}

static void count_word(void *ctx, const char *w, size_t n) { ++*(size_t *)ctx; }

size_t ev_py_count_words(const char *s, size_t n)
{
	size_t c = 0;
	each_word(s, n, count_word, &c);
	return c;
}

static void join_word(void *ctx, const char *w, size_t n)
{
	ev_wstr *o = ctx;
	if (o->n)
		ev_wstr_addn(o, " ", 1);
	ev_wstr_addn(o, w, n);
}

char *ev_py_join_words(const char *s, size_t n, size_t *out_len)
{
	ev_wstr o = {0};
	each_word(s, n, join_word, &o);
	*out_len = o.n;
	return ev_wstr_take(&o);
}

uint32_t *ev_utf8_codepoints(const char *s, size_t len, size_t *n)
{
	uint32_t *cp = weft_malloc((len + 1) * sizeof *cp);
	size_t i = 0, m = 0;
	int k;
	if (!cp)
		return NULL;
	while (i < len) {
		cp[m++] = ev_utf8_next(s + i, s + len, &k);
		i += (size_t)k;
	}
	*n = m;
	return cp;
}

char *ev_utf8_sanitize(const char *s, size_t n, size_t *out_len)
{
	ev_wstr o = {0};
	size_t i = 0;
	int k;
	ev_wstr_addn(&o, "", 0);
	while (i < n) {
		const unsigned char c = (unsigned char)s[i];
		ev_utf8_next(s + i, s + n, &k);
		if (c >= 0x80 && k == 1)
			ev_wstr_add(&o, "\xef\xbf\xbd");
		else if (c == 0) /* JSON can carry it, C strings not */
			ev_wstr_add(&o, "\xef\xbf\xbd");
		else
			ev_wstr_addn(&o, s + i, (size_t)k);
		i += (size_t)k;
	}
	*out_len = o.n;
	return ev_wstr_take(&o);
}

/* ---- lower case ---- */

char *ev_py_lower(const char *s, size_t n, size_t *out_len)
{
	char *o = weft_malloc(n + 1);
	if (!o)
		return NULL;
	int ascii = 1;
	for (size_t i = 0; i < n; i++) {
		const unsigned char c = (unsigned char)s[i];
		ascii &= c < 0x80;
		o[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	o[n] = 0;
	*out_len = n;
	if (ascii || n == 0)
		return o;
	/* Unicode: the input made valid UTF-8 first, then code point by code
	 * point (a lower-case letter takes at most 3 / 2 of its upper case's
	 * bytes: 2 -> 3 for U+023A, and U+0130) */
	size_t vlen;
	char *v = ev_utf8_sanitize(s, n, &vlen), *u = v ? weft_malloc(vlen + vlen / 2 + 1) : NULL;
	if (!u) {
		free(v);
		return o; /* cannot happen short of memory: ASCII-lowered */
	}
	size_t k = 0;
	for (const char *p = v, *end = v + vlen; p < end;) {
		int len;
		const uint32_t c = ev_utf8_next(p, end, &len);
		p += len;
		if (c == 0x130) { /* SpecialCasing.txt's one unconditional lower case: i + U+0307 */
			memcpy(u + k, "i\xcc\x87", 3);
			k += 3;
		} else
			k += wt_utf8_put(wt_uni_lower(c), (unsigned char *)u + k);
	}
	u[k] = 0;
	free(v);
	free(o);
	*out_len = k;
	return u;
}

/* ---- searching ---- */

int64_t ev_mem_rfind(const char *s, size_t n, const char *needle, size_t k)
{
	if (k > n)
		return -1;
	for (size_t i = n - k + 1; i-- > 0;)
		if (memcmp(s + i, needle, k) == 0)
			return (int64_t)i;
	return -1;
}

int ev_mem_has(const char *s, size_t n, const char *needle, size_t k)
{
	if (k == 0)
		return 1;
	return k <= n && memmem(s, n, needle, k) != NULL;
}

/* ---- SHA-256 (FIPS 180-4) ---- */

static const uint32_t K256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static void sha_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		const uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		const uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	for (int i = 0; i < 64; i++) {
		const uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
		const uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		k = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void ev_sha256(const void *data, size_t len, unsigned char out[32])
{
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	const unsigned char *p = data;
	size_t i = 0;
	for (; i + 64 <= len; i += 64)
		sha_block(h, p + i);
	unsigned char tail[128] = {0};
	const size_t r = len - i;
	memcpy(tail, p + i, r);
	tail[r] = 0x80;
	const size_t tl = r + 9 <= 64 ? 64 : 128;
	const uint64_t bits = (uint64_t)len * 8;
	for (int b = 0; b < 8; b++)
		tail[tl - 1 - b] = (unsigned char)(bits >> (8 * b));
	for (size_t j = 0; j < tl; j += 64)
		sha_block(h, tail + j);
	for (int j = 0; j < 8; j++)
		for (int b = 0; b < 4; b++)
			out[4 * j + b] = (unsigned char)(h[j] >> (24 - 8 * b));
}

void ev_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[32];
	ev_sha256(data, len, d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- Python literal lists ---- */

static void put_utf8(ev_wstr *w, uint32_t c)
{
	unsigned char b[4];
	ev_wstr_addn(w, (const char *)b, wt_utf8_put(c, b));
}

/* One string literal at *p ('...' or "...", with Python's escapes). */
static char *py_string(const char **p)
{
	const char *s = *p;
	const char q = *s++;
	ev_wstr w = {0};
	ev_wstr_add(&w, "");
	while (*s && *s != q) {
		if (*s != '\\') {
			ev_wstr_addn(&w, s++, 1);
			continue;
		}
		s++;
		const char e = *s ? *s++ : 0;
		const char *simple = strchr("\\'\"abfnrtv", e);
		if (e && simple) {
			static const char out[] = "\\'\"\a\b\f\n\r\t\v";
			ev_wstr_addn(&w, &out[simple - "\\'\"abfnrtv"], 1);
		} else if (e == 'x' || e == 'u' || e == 'U') {
			const int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
			uint32_t c = 0;
			for (int i = 0; i < digits; i++, s++) {
				const char h = *s;
				const int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
					    : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
				if (v < 0) {
					free(w.s);
					weft_error("bad \\%c escape", e);
					return NULL;
				}
				c = c << 4 | (uint32_t)v;
			}
			put_utf8(&w, c > 0x10ffff ? 0xfffd : c);
		} else if (e >= '0' && e <= '7') {
			uint32_t c = (uint32_t)(e - '0');
			for (int i = 0; i < 2 && *s >= '0' && *s <= '7'; i++)
				c = c * 8 + (uint32_t)(*s++ - '0');
			put_utf8(&w, c);
		} else if (e == '\n') {
			/* line continuation */
		} else {
			ev_wstr_addn(&w, "\\", 1);
			if (e)
				ev_wstr_addn(&w, &e, 1);
		}
	}
	if (*s != q) {
		free(w.s);
		weft_error("unterminated string");
		return NULL;
	}
	*p = s + 1;
	return ev_wstr_take(&w);
}

int ev_py_list_parse(const char *s, char ***out, int *n)
{
	char **v = NULL;
	int k = 0;
	*out = NULL;
	*n = 0;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s++ != '[') {
		weft_error("not a list");
		return -1;
	}
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (*s == ']')
			break;
		if (*s == 'u' || *s == 'r') /* u'..' prefixes; raw strings are not expected */
			s++;
		char *e = NULL;
		if (*s == '\'' || *s == '"') {
			e = py_string(&s);
		} else {
			const char *b = s;
			while (*s && *s != ',' && *s != ']' && *s != ' ')
				s++;
			if (s > b)
				e = weft_strndup(b, (size_t)(s - b));
			else
				weft_error("expected a string at '%.10s'", b);
		}
		char **nv = e ? realloc(v, (size_t)(k + 1) * sizeof *nv) : NULL;
		if (!nv) {
			free(e);
			goto fail;
		}
		v = nv;
		v[k++] = e;
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (*s == ',')
			s++;
		else if (*s != ']') {
			weft_error("expected ',' or ']' at '%.10s'", s);
			goto fail;
		}
	}
	*out = v;
	*n = k;
	return 0;
fail:
	for (int i = 0; i < k; i++)
		free(v[i]);
	free(v);
	return -1;
}

/* util.c - see util.h. */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char errbuf[1024];

void weft_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	for (char *p = errbuf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void weft_error_prefix(const char *fmt, ...)
{
	char prefix[512], old[sizeof errbuf];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, errbuf, sizeof old);
	size_t n = strlen(prefix);
	if (n > sizeof errbuf - 3)
		n = sizeof errbuf - 3;
	memcpy(errbuf, prefix, n);
	errbuf[n] = ':';
	errbuf[n + 1] = ' ';
	size_t room = sizeof errbuf - n - 2;
	size_t k = strnlen(old, room - 1);
	memcpy(errbuf + n + 2, old, k);
	errbuf[n + 2 + k] = 0;
}

const char *weft_errmsg(void) { return errbuf; }

void *weft_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		weft_error("out of memory (%zu bytes)", n);
	return p;
}

void *weft_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		weft_error("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *weft_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		weft_error("out of memory (%zu bytes)", n);
	return q;
}

char *weft_strndup(const char *s, size_t n)
{
	char *p = weft_malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

int weft_mul_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

int weft_add_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

uint64_t weft_fnv1a(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float weft_fp16_to_fp32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	if (exp == 0) {
		/* zero or subnormal: man * 2^-24 */
		float f = (float)man * (1.0f / 16777216.0f);
		return sign ? -f : f;
	}
	if (exp == 31)
		return bits_f32(sign | 0x7f800000u | (man << 13));
	return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t weft_fp32_to_fp16(float f)
{
	uint32_t x = f32_bits(f);
	uint32_t sign = (x >> 16) & 0x8000;
	uint32_t ax = x & 0x7fffffff;
	if (ax >= 0x7f800000) /* inf or nan */
		return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 : 0));
	if (ax >= 0x477ff000) /* rounds to >= 65520: overflow to inf */
		return (uint16_t)(sign | 0x7c00);
	if (ax < 0x38800000) { /* subnormal half or zero */
		float a = bits_f32(ax) * 16777216.0f; /* scale to units of 2^-24 */
		uint32_t m = (uint32_t)a;
		float rem = a - (float)m;
		if (rem > 0.5f || (rem == 0.5f && (m & 1)))
			m++;
		return (uint16_t)(sign | m);
	}
	uint32_t e = (ax >> 23) - 112, man = ax & 0x7fffff;
	uint32_t h = (e << 10) | (man >> 13);
	uint32_t rest = man & 0x1fff;
	if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
		h++; /* may carry into the exponent, which is correct */
	return (uint16_t)(sign | h);
}

float weft_bf16_to_fp32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t weft_fp32_to_bf16(float f)
{
	uint32_t x = f32_bits(f);
	if ((x & 0x7fffffff) > 0x7f800000) /* nan: keep it a (quiet) nan */
		return (uint16_t)((x >> 16) | 64);
	x += 0x7fff + ((x >> 16) & 1);
	return (uint16_t)(x >> 16);
}

void weft_escape(const char *s, size_t n, char *out, size_t max_out)
{
	size_t o = 0;
	if (!max_out)
		return;
	for (size_t i = 0; i < n && o + 5 < max_out; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, max_out - o, "\\x%02x", c);
	}
	out[o < max_out ? o : max_out - 1] = 0;
}

int weft_grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16;
	while (c < need) {
		if (c > SIZE_MAX / 2 / size) {
			weft_error("out of memory");
			return -1;
		}
		c *= 2;
	}
	void **pp = p;
	void *np = weft_realloc(*pp, c * size);
	if (!np)
		return -1;
	*pp = np;
	*cap = c;
	return 0;
}

/* util.h - errors, allocation and small helpers shared by libweft.
 *
 * Error convention: a library function that fails returns -1 (or NULL) and
 * records a one-line message with weft_error(); the caller (a tool) prints it
 * prefixed with its own name and the input's name.  Messages never end in a
 * newline and never contain one. */
#ifndef WEFT_UTIL_H
#define WEFT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define WEFT_VERSION "0.1.0"

#if defined(__GNUC__)
#define WEFT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define WEFT_PRINTF(a, b)
#endif

/* Record an error message (printf-style) for the calling thread. */
void weft_error(const char *fmt, ...) WEFT_PRINTF(1, 2);
/* Prefix the current message: "<prefix>: <old message>". */
void weft_error_prefix(const char *fmt, ...) WEFT_PRINTF(1, 2);
/* The last recorded message ("" if none). */
const char *weft_errmsg(void);

/* Allocation that records "out of memory" on failure (returns NULL). */
void *weft_malloc(size_t n);
void *weft_calloc(size_t n, size_t size);
void *weft_realloc(void *p, size_t n);
char *weft_strndup(const char *s, size_t n);

/* Make room for `need` elements of `size` bytes in the growable array *p
 * of capacity *cap (elements): doubles it (from 16) as needed.  0, or -1
 * with "out of memory" (the array is kept). */
int weft_grow(void *p, size_t *cap, size_t need, size_t size);

/* Overflow-checked size arithmetic: return 0 on success, -1 on overflow. */
int weft_mul_overflow(uint64_t a, uint64_t b, uint64_t *out);
int weft_add_overflow(uint64_t a, uint64_t b, uint64_t *out);

/* 64-bit FNV-1a, incremental: start with WEFT_FNV_INIT. */
#define WEFT_FNV_INIT 0xcbf29ce484222325ULL
uint64_t weft_fnv1a(uint64_t h, const void *data, size_t n);

/* IEEE half and bfloat16 conversions (round to nearest even). */
float weft_fp16_to_fp32(uint16_t h);
uint16_t weft_fp32_to_fp16(float f);
float weft_bf16_to_fp32(uint16_t h);
uint16_t weft_fp32_to_bf16(float f);

/* Print a printable, escaped rendering of bytes (for messages): at most
 * max_out bytes written to out including the NUL. */
void weft_escape(const char *s, size_t n, char *out, size_t max_out);

#endif

/* tokenizer_int.h - internals shared by tokenizer.c, tokenizer_bpe.c and
 * tokenizer_spm.c.  Not part of the public API. */
#ifndef WEFT_TOKENIZER_INT_H
#define WEFT_TOKENIZER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* Internal: hidden from libweft.so's exports. */
#pragma GCC visibility push(hidden)

/* Token attribute bits (llama.cpp's llama_token_attr numbering). */
enum {
	TA_UNKNOWN = 1 << 0, TA_UNUSED = 1 << 1, TA_NORMAL = 1 << 2, TA_CONTROL = 1 << 3,
	TA_USER_DEFINED = 1 << 4, TA_BYTE = 1 << 5, TA_LSTRIP = 1 << 7, TA_RSTRIP = 1 << 8
};

/* Open-addressing hash from byte strings to int32 (strings live elsewhere). */
typedef struct wt_strmap {
	uint32_t mask;          /* slots - 1 (power of two) */
	int32_t *slot;          /* entry index or -1 */
	const char **key;       /* per entry */
	uint32_t *klen;
	int32_t *val;
	uint32_t n, cap;
} wt_strmap;

uint64_t wt_hash(const void *p, size_t n);
int wt_strmap_init(wt_strmap *m, uint32_t expect);
void wt_strmap_free(wt_strmap *m);
/* Insert (overwrite=1 replaces an existing value).  -1 on out of memory. */
int wt_strmap_put(wt_strmap *m, const char *k, size_t n, int32_t v, int overwrite);
/* Value for k, or -1. */
int32_t wt_strmap_get(const wt_strmap *m, const char *k, size_t n);

/* BPE merge table: (left piece id, right piece id) -> rank, merged piece id. */
typedef struct wt_pair {
	uint64_t key;           /* left << 32 | right; UINT64_MAX = empty */
	int32_t rank, merged;
} wt_pair;

struct pcre2_real_code_8;

enum { WT_MAX_REGEX = 8 };

struct weft_vocab {
	int kind;               /* WEFT_VOCAB_SPM / BPE */
	int32_t n;              /* tokens */
	char *arena;            /* token texts, each NUL-terminated */
	uint32_t *off, *len;
	float *score;
	uint16_t *attr;         /* TA_* */
	uint8_t *ttype;         /* tokenizer.ggml.token_type as stored (0 when absent) */
	wt_strmap tok;          /* text -> token id */

	/* BPE */
	wt_strmap piece;        /* text -> piece id: tokens, then merge halves not in the vocab */
	char *xarena;           /* texts of the extra pieces */
	wt_pair *pairs;
	uint32_t pair_mask;
	int32_t byte_piece[256]; /* piece id of the byte-level character of each byte */
	int32_t byte_tok[256];  /* token whose text is that single raw byte (-1 if none) */
	uint8_t benc[256][3];   /* byte-level (GPT-2) encoding of each byte */
	uint8_t benc_len[256];
	struct pcre2_real_code_8 *re[WT_MAX_REGEX];
	int n_re;
	int ignore_merges;

	/* SPM */
	int32_t spm_byte[256];  /* <0xXX> (or the single byte) token, -1 if none */

	char pre[64];
	int clean_spaces, add_space_prefix, add_bos, add_eos;
	int32_t bos, eos, eot, eom, unk, pad;
	int32_t *eog; size_t n_eog;       /* sorted */
	int32_t *special; size_t n_special; /* longest text first */
	char *pieces; uint32_t *poff;     /* token_to_piece(special=1) cache */
	uint64_t fingerprint;
};

/* Growable scratch of one tokenize call. */
typedef struct wt_out {
	int32_t **ids;
	size_t *n, *cap;
} wt_out;

int wt_push(wt_out *o, int32_t id);

/* tokenizer_bpe.c */
int wt_bpe_setup(weft_vocab *v, const char *pre, const weft_gguf_value *merges);
void wt_bpe_free(weft_vocab *v);
int wt_bpe_tokenize(const weft_vocab *v, const char *text, size_t len, wt_out *o);
/* Byte-level decode of a token text (llama.cpp's llama_decode_text):
 * malloc'ed, length in *out_len; NULL when out of memory. */
char *wt_bpe_decode_alloc(const char *s, size_t n, size_t *out_len);

/* tokenizer_spm.c */
int wt_spm_tokenize(const weft_vocab *v, const char *text, size_t len, int prefix, wt_out *o);

#pragma GCC visibility pop

#endif

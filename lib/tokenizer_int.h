/* tokenizer_int.h - internals shared by tokenizer.c, tokenizer_bpe.c,
 * tokenizer_pre.c, tokenizer_spm.c, tokenizer_wpm.c and tokenizer_unicode.c.
 * Not part of the public API. */
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

/* Pre-tokenizer properties (llama.cpp's loader sets the same per name). */
enum {
	WT_PRE_IGNORE_MERGES = 1, /* a word that is a token is taken whole */
	WT_PRE_ADD_BOS = 2,       /* add BOS unless the metadata says otherwise */
	WT_PRE_KEEP_SPACES = 4,   /* no clean-up of " ?" / " 's" when detokenizing */
	WT_PRE_RAW_BYTES = 8,     /* no GPT-2 byte encoding: merges of UTF-8 characters, <0xXX> fallback */
	WT_PRE_ESCAPE_SPACES = 16, /* spaces become U+2581 before tokenizing (SPM-style BPE) */
	WT_PRE_NEWLINE_WORDS = 32, /* a word of newlines that is a token is taken whole (Gemma 4) */
	WT_PRE_FORCE_BOS = 64,    /* add BOS even when the metadata says not to (Gemma 4) */
	WT_PRE_NO_BOS = 128       /* no default BOS id (ChatGLM, GLM-4) */
};

/* Pre-tokenizer steps: a regex, or one of the splitters written out. */
enum { WT_STEP_REGEX = 0, WT_STEP_TRAILING_WS = 1, WT_STEP_DIGITS3 = 2 };

/* A piece of text: byte offset and length. */
typedef struct wt_seg {
	uint32_t off, len;
} wt_seg;

struct weft_vocab {
	int kind;               /* WEFT_VOCAB_SPM / BPE */
	char warning[192];      /* the first special id ignored (weft_vocab_warning) */
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
	struct pcre2_real_code_8 *re[WT_MAX_REGEX]; /* NULL for the steps written out */
	uint8_t pre_step[WT_MAX_REGEX]; /* WT_STEP_* */
	int n_re;
	int ignore_merges;
	int pre_flags;          /* WT_PRE_* */

	/* WPM */
	int wpm_lower, wpm_strip;   /* BertNormalizer: lower-case, strip accents */
	uint32_t max_token_len; /* bytes */

	/* SPM */
	int32_t spm_byte[256];  /* <0xXX> (or the single byte) token, -1 if none */

	char pre[64];
	int clean_spaces, add_space_prefix, add_bos, add_eos, add_sep;
	int32_t bos, eos, eot, eom, unk, pad, sep;
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

/* tokenizer_detok.c: v->pieces / v->poff, each token as
 * token_to_piece(special=1) renders it. */
int wt_build_pieces(weft_vocab *v);

/* tokenizer_bpe.c */
int wt_bpe_setup(weft_vocab *v, const char *pre, const weft_gguf_value *merges);
void wt_bpe_free(weft_vocab *v);
int wt_bpe_tokenize(const weft_vocab *v, const char *text, size_t len, wt_out *o);
/* Byte-level decode of a token text (llama.cpp's llama_decode_text):
 * malloc'ed, length in *out_len; NULL when out of memory. */
char *wt_bpe_decode_alloc(const char *s, size_t n, size_t *out_len);

/* tokenizer_pre.c: the pre-tokenizer named pre (regexes, flags; sets
 * v->pre, v->pre_flags, ignore_merges, add_bos, clean_spaces); -1 + error
 * for a name llama.cpp does not know or weft does not implement. */
int wt_pre_setup(weft_vocab *v, const char *pre);
void wt_pre_free(weft_vocab *v);
/* Split text into pre-tokenized words: *out malloc'ed (NULL when *nout = 0). */
int wt_pre_split(const weft_vocab *v, const char *text, size_t len, wt_seg **out, size_t *nout);

/* tokenizer_spm.c */
int wt_spm_tokenize(const weft_vocab *v, const char *text, size_t len, int prefix, wt_out *o);

/* tokenizer_wpm.c: WordPiece ("bert" tokenizer model) */
int wt_wpm_setup(weft_vocab *v, const weft_gguf *g);
int wt_wpm_tokenize(const weft_vocab *v, const char *text, size_t len, wt_out *o);

/* tokenizer_unicode.c: code point properties from the Unicode Character
 * Database (the version llama.cpp's tables come from), for WordPiece. */
enum {
	WT_U_NUMBER = 1, WT_U_LETTER = 2, WT_U_SEPARATOR = 3, WT_U_MARK = 4, WT_U_PUNCT = 5,
	WT_U_SYMBOL = 6, WT_U_CONTROL = 7, WT_U_UNDEFINED = 0
};
/* Decode the UTF-8 sequence at *i (advanced past it; input validated). */
uint32_t wt_utf8_next(const unsigned char *s, size_t n, size_t *i);
size_t wt_utf8_put(uint32_t c, unsigned char *o);
/* llama.cpp's whitespace set (White_Space of PropList.txt). */
int wt_is_space(uint32_t c);
/* General category class (WT_U_*) of a code point. */
int wt_uni_class(uint32_t c);
/* Simple lower-case mapping (UnicodeData.txt), c itself when none. */
uint32_t wt_uni_lower(uint32_t c);
/* First code point of the canonical decomposition (NFD), c itself when none. */
uint32_t wt_uni_nfd_first(uint32_t c);

#pragma GCC visibility pop

#endif

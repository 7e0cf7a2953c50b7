/* tokenizer.h - llama.cpp-compatible tokenizers read from GGUF metadata.
 *
 * Supports tokenizer.ggml.model "gpt2" (byte-level BPE with the pre-tokenizer
 * regexes named by tokenizer.ggml.pre, via PCRE2), "gemma4" (BPE over UTF-8
 * characters with spaces as U+2581 and <0xXX> byte fallback), "llama"
 * (SentencePiece BPE with byte fallback and space prefix: Llama 2, Gemma 1-3,
 * Phi-3, ...) and "bert" (WordPiece with BERT's normalizer).  Results match
 * llama.cpp's llama_tokenize / llama_detokenize for the same GGUF.  Not
 * supported: "t5" (Unigram), "rwkv", "plamo2".
 *
 * Invalid UTF-8 in the input is rejected with the error "invalid UTF-8 at
 * byte N" (N = 0-based offset of the first bad sequence; overlongs,
 * surrogates and code points above U+10FFFF count as invalid), where
 * llama.cpp would silently substitute U+FFFD.
 *
 * Pre-tokenizers: every name of llama.cpp's loader (default, gpt-2 family,
 * llama3/llama-bpe, qwen2, qwen35, starcoder/smollm, falcon, deepseek-llm,
 * deepseek-coder, deepseek-v3, gpt-4o/llama4, tekken, chameleon, gemma4,
 * afmoe, tiny_aya, superbpe, ... see tokenizer_pre.c) except kimi-k2, which
 * fails to load ("pre-tokenizer 'kimi-k2' is not supported").  A name
 * llama.cpp does not know fails to load as it does there ("unknown
 * pre-tokenizer 'x'"); an empty or missing name means "default".
 *
 * Special ids follow llama.cpp's loader, including its defaults (BPE without
 * metadata: BOS = EOS = 11) and its detection of EOT / FIM / end-of-generation
 * tokens by text.  Where several texts qualify as EOT, llama.cpp's choice
 * depends on hash order; weft takes the lowest id that is not EOS.
 *
 * The vocabulary copies what it needs: the weft_gguf may be closed after
 * weft_vocab_load().  A loaded vocabulary is read-only and may be used from
 * several threads at once. */
#ifndef WEFT_TOKENIZER_H
#define WEFT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct weft_vocab weft_vocab;

enum weft_vocab_kind { WEFT_VOCAB_SPM = 1, WEFT_VOCAB_BPE = 2, WEFT_VOCAB_WPM = 3 };

/* Token attributes (tokenizer.ggml.token_type numbering). */
enum weft_token_type {
	WEFT_TOKEN_UNDEFINED = 0, WEFT_TOKEN_NORMAL = 1, WEFT_TOKEN_UNKNOWN = 2,
	WEFT_TOKEN_CONTROL = 3, WEFT_TOKEN_USER_DEFINED = 4, WEFT_TOKEN_UNUSED = 5,
	WEFT_TOKEN_BYTE = 6
};

/* Load the tokenizer from a GGUF (a vocab-only file works).  NULL + error. */
weft_vocab *weft_vocab_load(const weft_gguf *g);
void weft_vocab_free(weft_vocab *v);
/* What loading tolerated, or NULL: a special token id (bos, eos, ...) outside
 * the vocabulary, ignored for the default as llama.cpp does. */
const char *weft_vocab_warning(const weft_vocab *v);

int weft_vocab_kind(const weft_vocab *v);
int32_t weft_vocab_size(const weft_vocab *v);
/* Special ids, -1 when the model has none. */
int32_t weft_vocab_bos(const weft_vocab *v);
int32_t weft_vocab_eos(const weft_vocab *v);
int32_t weft_vocab_eot(const weft_vocab *v);
int32_t weft_vocab_unk(const weft_vocab *v);
int32_t weft_vocab_pad(const weft_vocab *v);
/* Whether to add BOS / EOS when tokenizing a whole prompt (metadata). */
int weft_vocab_add_bos(const weft_vocab *v);
int weft_vocab_add_eos(const weft_vocab *v);
/* Separator ([SEP] of BERT vocabularies, -1 when none) and whether
 * llama.cpp appends it to a whole prompt (after the text, where EOS would
 * go; WordPiece vocabularies by default). */
int32_t weft_vocab_sep(const weft_vocab *v);
int weft_vocab_add_sep(const weft_vocab *v);
/* Pre-tokenizer name in use ("gpt2", "llama3", "qwen2", "smollm", ...). */
const char *weft_vocab_pre(const weft_vocab *v);
/* Token text as stored in the vocab (e.g. "Ġthe", "▁the", "<0x0A>"). */
const char *weft_vocab_text(const weft_vocab *v, int32_t id, size_t *len);
int weft_vocab_type(const weft_vocab *v, int32_t id);
/* Id of an exact token text, -1 if none. */
int32_t weft_vocab_find(const weft_vocab *v, const char *text, size_t len);
/* Whether id ends generation (EOS, EOT, or another end-of-generation token). */
int weft_vocab_is_eog(const weft_vocab *v, int32_t id);
/* 64-bit fingerprint of the tokenizer (model, pre, tokens, merges):
 * streams record it so stages refuse tokens from another vocabulary. */
uint64_t weft_vocab_fingerprint(const weft_vocab *v);

/* Tokenize len bytes of UTF-8 text, appending ids to *ids (realloc'ed;
 * *n and *cap track its length and capacity).  parse_special: recognise
 * control/user-defined token texts in the input (e.g. "<|im_start|>").
 * No BOS/EOS is added here.  Returns 0, or -1 with an error. */
int weft_tokenize(const weft_vocab *v, const char *text, size_t len, int parse_special,
		  int32_t **ids, size_t *n, size_t *cap);

/* Text of one token as it reads in the output (byte-level decoded, "▁" to
 * space, <0xXX> to the byte).  special: render control tokens as their
 * text (otherwise they produce nothing).  Writes up to cap bytes; returns
 * the full length needed, or -1 for an invalid id. */
int weft_token_to_piece(const weft_vocab *v, int32_t id, int special, char *buf, size_t cap);

/* Detokenize ids into a malloc'ed NUL-terminated string like llama.cpp's
 * llama_detokenize(remove_special=0, unparse_special=special): for SPM the
 * leading space added by the space prefix is removed.  Returns NULL + error. */
char *weft_detokenize(const weft_vocab *v, const int32_t *ids, size_t n, int special, size_t *out_len);

#endif

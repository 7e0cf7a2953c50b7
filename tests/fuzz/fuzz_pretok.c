/* fuzz_pretok.c - libFuzzer harness for every pre-tokenizer and for
 * WordPiece.  The first input byte picks a pre-tokenizer name, the rest is
 * the text.  Each name is loaded once over a small byte-level vocabulary
 * built in memory (all 256 byte-level characters, a few merges), or a
 * raw-byte one (<0xXX> tokens, U+2581) for the SPM-style names, so that
 * every text must tokenize (or fail with the invalid-UTF-8 error alone) and
 * detokenize back to itself up to llama.cpp's clean-up of spaces (except for
 * "whitespace", see below): the pre-tokenizer's pieces must cover the text
 * exactly once.  Names past the
 * list run the WordPiece vocabulary bert-bge from $WEFT_VOCAB_DIR (default
 * ~/.cache/weft/vocab/llama.cpp-0.3.36, scripts/fetch-vocab) when present:
 * ids in range, at most one [UNK] per word. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/gguf_build.h"
#include "gguf.h"
#include "tokenizer.h"
#include "tokenizer_int.h"
#include "util.h"
#include "../unit/tok_cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"default", "gpt-2", "llama-bpe", "dbrx", "glm4", "jais-2", "starcoder", "smollm", "qwen2", "stablelm2",
	"qwen35", "laguna", "ufakzeka", "falcon", "deepseek-llm", "deepseek-coder", "deepseek-v3", "spark2_5",
	"youtu", "poro-chat", "bloom", "viking", "gpt-4o", "tekken", "granite-embed-multi-97m", "chameleon",
	"seed-coder", "bailingmoe", "exaone-moe", "minicpm5", "trillion", "tiny_aya", "afmoe", "superbpe",
	"gemma4", "sarvam-moe", "whitespace" /* raw bytes */
};
enum { N_NAMES = sizeof names / sizeof names[0], FIRST_RAW = N_NAMES - 3 };

static weft_vocab *vocabs[N_NAMES], *wpm;
static int loaded;

/* GPT-2's bytes_to_unicode as UTF-8. */
static void byte_char(int b, char *out)
{
	int k = 0, c = b;
	if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
		for (int x = 0; x < b; x++)
			k += !((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF));
		c = 256 + k;
	}
	if (c < 0x80) {
		out[0] = (char)c, out[1] = 0;
	} else {
		out[0] = (char)(0xC0 | (c >> 6)), out[1] = (char)(0x80 | (c & 0x3F)), out[2] = 0;
	}
}

static weft_vocab *build(const char *pre, int raw)
{
	static char store[300][16];
	const char *toks[300], *merges[8];
	int32_t types[300];
	size_t nt = 0, nm = 0;
	for (int b = 0; b < 256; b++) {
		if (raw)
			snprintf(store[nt], sizeof store[nt], "<0x%02X>", b);
		else
			byte_char(b, store[nt]);
		types[nt] = raw ? WEFT_TOKEN_BYTE : WEFT_TOKEN_NORMAL;
		toks[nt] = store[nt];
		nt++;
	}
	static const char *const extra_bl[] = { "\xc4\xa0t", "he", "\xc4\xa0the", "in", "\xc4\x8a\xc4\x8a", NULL };
	static const char *const merge_bl[] = { "\xc4\xa0 t", "h e", "\xc4\xa0t he", "i n", "\xc4\x8a \xc4\x8a", NULL };
	static const char *const extra_raw[] = { "\xe2\x96\x81", "t", "h", "e", "\xe2\x96\x81t", "he",
						  "\xe2\x96\x81the", "\n", "\n\n", NULL };
	static const char *const merge_raw[] = { "\xe2\x96\x81 t", "h e", "\xe2\x96\x81t he", "\n \n", NULL };
	const char *const *ex = raw ? extra_raw : extra_bl, *const *mg = raw ? merge_raw : merge_bl;
	for (; *ex; ex++)
		types[nt] = WEFT_TOKEN_NORMAL, toks[nt++] = *ex;
	for (; *mg; mg++)
		merges[nm++] = *mg;
	toks[nt] = "<|endoftext|>", types[nt++] = WEFT_TOKEN_CONTROL;
	gguf_builder b;
	gb_init(&b, 3);
	gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
	gb_kv_str(&b, "tokenizer.ggml.pre", pre);
	gb_kv_arr_str(&b, "tokenizer.ggml.tokens", nt, toks);
	gb_kv_arr(&b, "tokenizer.ggml.token_type", WEFT_GGUF_INT32, nt, types);
	gb_kv_arr_str(&b, "tokenizer.ggml.merges", nm, merges);
	size_t n;
	uint8_t *file = gb_finish(&b, &n);
	weft_gguf *g = weft_gguf_open_mem(file, n);
	weft_vocab *v = g ? weft_vocab_load(g) : NULL;
	if (!v) {
		fprintf(stderr, "fuzz_pretok: %s: %s\n", pre, weft_errmsg());
		abort();
	}
	weft_gguf_close(g);
	free(file);
	gb_free(&b);
	return v;
}


static void load_all(void)
{
	for (int i = 0; i < N_NAMES; i++)
		vocabs[i] = build(names[i], i >= FIRST_RAW);
	char path[4096];
	const char *d = getenv("WEFT_VOCAB_DIR"), *h = getenv("HOME");
	if (d)
		snprintf(path, sizeof path, "%s/ggml-vocab-bert-bge.gguf", d);
	else
		snprintf(path, sizeof path, "%s/.cache/weft/vocab/llama.cpp-0.3.36/ggml-vocab-bert-bge.gguf",
			 h ? h : ".");
	weft_gguf *g = weft_gguf_open(path);
	if (g) {
		wpm = weft_vocab_load(g);
		weft_gguf_close(g);
	}
	loaded = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!loaded)
		load_all();
	if (size < 1)
		return 0;
	int which = data[0] % (N_NAMES + 1), ps = data[0] >= 128;
	weft_vocab *v = which < N_NAMES ? vocabs[which] : wpm;
	if (!v)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	int32_t *ids = NULL;
	size_t n = 0, cap = 0;
	if (weft_tokenize(v, text, len, ps, &ids, &n, &cap) != 0) {
		if (strncmp(weft_errmsg(), "invalid UTF-8 at byte ", 22) != 0)
			abort();
		free(ids);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= weft_vocab_size(v))
			abort();
	size_t dl;
	char *d = weft_detokenize(v, ids, n, 1, &dl);
	if (!d)
		abort();
	/* the text again, U+2581 read as a space in raw-byte vocabularies; not
	 * for WordPiece (lossy) nor "whitespace", whose tokens llama.cpp renders
	 * through the byte-level decoder although it does not byte-encode them */
	if (v != wpm && strcmp(names[which], "whitespace") != 0) {
		char *want = malloc(len + 1);
		size_t wl = 0;
		for (size_t i = 0; i < len; i++) {
			if (which >= FIRST_RAW && i + 3 <= len && !memcmp(text + i, "\xe2\x96\x81", 3)) {
				want[wl++] = ' ';
				i += 2;
			} else {
				want[wl++] = text[i];
			}
		}
		if (v->clean_spaces)
			wl = cleanup(want, wl);
		if (dl != wl || memcmp(d, want, wl) != 0)
			abort();
		free(want);
	}
	free(d);
	free(ids);
	return 0;
}

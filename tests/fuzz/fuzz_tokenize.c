/* fuzz_tokenize.c - libFuzzer harness for the tokenizers: the gpt-2 (BPE)
 * and llama-spm (SPM) vocabularies from $WEFT_FUZZ_VOCAB_DIR (default
 * ../shared/data/vocab; without them every input is a no-op) tokenize the
 * input with special-token parsing on and off, and detokenize the ids.
 * Invalid UTF-8 must give the one error; valid input must round-trip:
 * BPE exactly up to llama.cpp's clean-up of " ?" / " 's" spaces (gpt-2 uses
 * it), SPM exactly (U+2581 reads as a space) when special tokens are not
 * parsed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"
#include "util.h"
#include "../unit/tok_cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static weft_vocab *bpe, *spm;
static int loaded;

static weft_vocab *load(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, name);
	weft_gguf *g = weft_gguf_open(path);
	if (!g)
		return NULL;
	weft_vocab *v = weft_vocab_load(g);
	weft_gguf_close(g);
	return v;
}


static void run(weft_vocab *v, const char *text, size_t size, int ps, int check)
{
	int32_t *ids = NULL;
	size_t n = 0, cap = 0;
	if (weft_tokenize(v, text, size, ps, &ids, &n, &cap) != 0) {
		if (strncmp(weft_errmsg(), "invalid UTF-8 at byte ", 22) != 0)
			abort();
		free(ids);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= weft_vocab_size(v))
			abort();
	size_t dl;
	char *d = weft_detokenize(v, ids, n, 1, &dl);
	if (!d)
		abort();
	if (check) {
		char *want = malloc(size + 1);
		memcpy(want, text, size);
		size_t wl = size;
		if (weft_vocab_kind(v) == WEFT_VOCAB_BPE) {
			wl = cleanup(want, size);
		} else { /* SPM reads a literal U+2581 as a space */
			wl = 0;
			for (size_t i = 0; i < size; i++) {
				if (i + 3 <= size && memcmp(text + i, "\xe2\x96\x81", 3) == 0) {
					want[wl++] = ' ';
					i += 2;
				} else {
					want[wl++] = text[i];
				}
			}
		}
		if (dl != wl || memcmp(d, want, wl) != 0)
			abort();
		free(want);
	}
	free(d);
	free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!loaded) {
		const char *dir = getenv("WEFT_FUZZ_VOCAB_DIR");
		if (!dir)
			dir = "../shared/data/vocab";
		bpe = load(dir, "gpt-2");
		spm = load(dir, "llama-spm");
		loaded = 1;
	}
	if (!bpe || !spm)
		return 0;
	const char *text = (const char *)data;
	run(bpe, text, size, 0, 1);
	run(bpe, text, size, 1, 1);
	run(spm, text, size, 0, 1);
	run(spm, text, size, 1, 0);
	return 0;
}

/* test_tokenizer.c - tokenizer parity with llama.cpp's test vectors
 * (shared/data/vocab), special tokens, pieces, errors, SmolLM2 ids. */
#include "test.h"
#include "gguf_build.h"

#include "gguf.h"
#include "tokenizer.h"
#include "tokenizer_int.h" /* kind and clean_spaces, to predict round trips */
#include "util.h"

#include <dirent.h>
#include <stdint.h>
#include "tok_cleanup.h"

static weft_vocab *load_vocab(const char *name)
{
	const char *d = t_shared_dir();
	if (!d)
		return NULL;
	char path[4200];
	snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", d, name);
	weft_gguf *g = weft_gguf_open(path);
	if (!g) {
		fprintf(stderr, "%s: %s\n", path, weft_errmsg());
		return NULL;
	}
	weft_vocab *v = weft_vocab_load(g);
	if (!v)
		fprintf(stderr, "%s: %s\n", path, weft_errmsg());
	weft_gguf_close(g);
	return v;
}


/* Check every vector of one vocab file (DIR/ggml-vocab-NAME.gguf with its
 * .inp / .out) as llama.cpp's test-tokenizer-0 does (no BOS, special tokens
 * not parsed), then the round trip where the tokenizer is lossless (not
 * WordPiece, which lower-cases and drops accents).  clean: < 0 asks the
 * vocabulary whether llama.cpp cleans up spaces when detokenizing.  Counts
 * the vectors in *total and those that matched in *ok.  Returns 0, -1 when
 * the vector files are missing or -2 when the vocabulary does not load
 * (nothing checked). */
static int check_vectors_in(const char *dir, const char *name, int clean, size_t *ok, size_t *total)
{
	char path[4200];
	*ok = *total = 0;
	snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, name);
	weft_gguf *g = weft_gguf_open(path);
	weft_vocab *v = g ? weft_vocab_load(g) : NULL;
	if (g)
		weft_gguf_close(g);
	if (!v) {
		FAILF("cannot load vocab %s: %s", name, weft_errmsg());
		return -2;
	}
	if (clean < 0)
		clean = v->clean_spaces;
	int lossless = v->kind != WEFT_VOCAB_WPM;
	size_t ilen, olen;
	snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf.inp", dir, name);
	char *inp = t_read_file(path, &ilen);
	snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf.out", dir, name);
	char *out = t_read_file(path, &olen);
	int rc = 0;
	if (!inp || !out) {
		rc = -1;
		goto done;
	}
	/* inputs are separated by this line; the last one ends the file */
	static const char sep[] = "\n__ggml_vocab_test__\n";
	size_t pos = 0;
	char *line = out;
	int32_t *ids = NULL;
	size_t n = 0, cap = 0;
	while (pos < ilen) {
		char *next = strstr(inp + pos, sep); /* the .inp files hold no NUL */
		size_t slen = next ? (size_t)(next - (inp + pos)) : ilen - pos;
		char *s = inp + pos;
		size_t nvec = (*total)++;
		pos = next ? (size_t)(next - inp) + strlen(sep) : ilen;
		if (!*line) {
			FAILF("%s: more inputs than output lines", name);
			break;
		}
		char *eol = strchr(line, '\n'), *c = line;
		if (eol)
			*eol = 0;
		line = eol ? eol + 1 : line + strlen(line);
		n = 0;
		if (weft_tokenize(v, s, slen, 0, &ids, &n, &cap) != 0) {
			FAILF("%s vector %zu: %s", name, nvec, weft_errmsg());
			continue;
		}
		size_t k = 0;
		int bad = 0;
		for (;;) {
			while (*c == ' ')
				c++;
			if (!*c)
				break;
			long want = strtol(c, &c, 10);
			if (k >= n || ids[k] != want) {
				char esc[200];
				weft_escape(s, slen, esc, sizeof esc);
				FAILF("%s vector %zu \"%s\": id %zu is %ld, expected %ld", name, nvec, esc, k,
				      k < n ? (long)ids[k] : -1L, want);
				bad = 1;
				break;
			}
			k++;
		}
		if (!bad && k != n) {
			char esc[200];
			weft_escape(s, slen, esc, sizeof esc);
			FAILF("%s vector %zu \"%s\": %zu ids, expected %zu", name, nvec, esc, n, k);
			bad = 1;
		}
		if (!bad && lossless) { /* round trip */
			size_t dl;
			char *dt = weft_detokenize(v, ids, n, 1, &dl);
			char *want = malloc(slen + 1);
			memcpy(want, s, slen);
			size_t wl = clean ? cleanup(want, slen) : slen;
			if (!dt || dl != wl || memcmp(dt, want, wl) != 0) {
				char esc[200], esc2[200];
				weft_escape(s, slen, esc, sizeof esc);
				weft_escape(dt ? dt : "", dt ? dl : 0, esc2, sizeof esc2);
				FAILF("%s vector %zu: detokenized \"%s\" from \"%s\"", name, nvec, esc2, esc);
				bad = 1;
			}
			free(dt);
			free(want);
		}
		*ok += !bad;
	}
	if (*line)
		FAILF("%s: more output lines than inputs", name);
	free(ids);
done:
	free(inp);
	free(out);
	weft_vocab_free(v);
	return rc;
}

static void check_vectors(const char *name, int clean)
{
	const char *d = t_shared_dir();
	if (!d)
		SKIP("no shared data (../shared/data)");
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/vocab", d);
	size_t ok, total;
	if (check_vectors_in(dir, name, clean, &ok, &total) == -1)
		FAILF("cannot read test vectors for %s", name);
}

/* llama.cpp's own vocabularies (scripts/fetch-vocab): one test per
 * ggml-vocab-*.gguf, named tokenizer.llamacpp_vocab_NAME, each checked on
 * all of its vectors; a vocabulary without vectors must load (or, for a
 * tokenizer model weft does not implement, is a visible SKIP). */
static const char *vocab_dir(void)
{
	static char buf[4096];
	const char *env = getenv("WEFT_VOCAB_DIR");
	if (env) {
		snprintf(buf, sizeof buf, "%s", env);
	} else {
		const char *c = getenv("WEFT_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
		if (c)
			snprintf(buf, sizeof buf, "%s/vocab/llama.cpp-0.3.36", c);
		else if (x)
			snprintf(buf, sizeof buf, "%s/weft/vocab/llama.cpp-0.3.36", x);
		else
			snprintf(buf, sizeof buf, "%s/.cache/weft/vocab/llama.cpp-0.3.36", h ? h : ".");
	}
	return buf;
}

static char cur_vocab[256];

static void one_llamacpp_vocab(void)
{
	const char *dir = vocab_dir();
	char path[4400];
	snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, cur_vocab);
	snprintf(path + strlen(path), sizeof path - strlen(path), ".inp");
	FILE *f = fopen(path, "rb");
	if (!f) { /* no vectors: it must load, unless its model is one weft lacks */
		path[strlen(path) - 4] = 0;
		weft_gguf *g = weft_gguf_open(path);
		weft_vocab *v = g ? weft_vocab_load(g) : NULL;
		if (g)
			weft_gguf_close(g);
		if (!v && strstr(weft_errmsg(), "unsupported tokenizer model"))
			SKIP("%s (no test vectors either)", weft_errmsg());
		if (!v) {
			FAILF("%s: %s", path, weft_errmsg());
			return;
		}
		int32_t *ids = NULL;
		size_t n = 0, cap = 0;
		CHECK(weft_tokenize(v, "Hello world", 11, 0, &ids, &n, &cap) == 0 && n > 0);
		free(ids);
		weft_vocab_free(v);
		printf("INFO tokenizer.llamacpp_vocab_%s: loads, tokenizes; no test vectors in llama.cpp's models/\n",
		       cur_vocab);
		return;
	}
	fclose(f);
	size_t ok, total;
	if (check_vectors_in(dir, cur_vocab, -1, &ok, &total) == 0)
		printf("INFO tokenizer.llamacpp_vocab_%s: %zu/%zu vectors match llama.cpp\n", cur_vocab, ok, total);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void llamacpp_vocabs(void)
{
	const char *dir = vocab_dir();
	DIR *d = opendir(dir);
	if (!d) {
		printf("SKIP tokenizer.llamacpp_vocabs: %s absent (run scripts/fetch-vocab)\n", dir);
		return;
	}
	char *names[256];
	size_t nn = 0;
	for (struct dirent *e; (e = readdir(d)) && nn < 256;) {
		size_t l = strlen(e->d_name);
		if (strncmp(e->d_name, "ggml-vocab-", 11) == 0 && l > 16 && l - 16 < sizeof cur_vocab &&
		    strcmp(e->d_name + l - 5, ".gguf") == 0) {
			names[nn] = malloc(l - 15);
			memcpy(names[nn], e->d_name + 11, l - 16);
			names[nn++][l - 16] = 0;
		}
	}
	closedir(d);
	qsort(names, nn, sizeof *names, cmp_str);
	if (!nn)
		printf("SKIP tokenizer.llamacpp_vocabs: no ggml-vocab-*.gguf in %s (run scripts/fetch-vocab)\n", dir);
	for (size_t i = 0; i < nn; i++) {
		char tname[300];
		snprintf(cur_vocab, sizeof cur_vocab, "%s", names[i]);
		snprintf(tname, sizeof tname, "llamacpp_vocab_%s", names[i]);
		t_run(tname, one_llamacpp_vocab);
		free(names[i]);
	}
}

/* A tiny gpt2 vocabulary whose tokenizer.ggml.pre is pre (NULL: no key),
 * with tokenizer.ggml.bos_token_id = bos when bos >= 0. */
static weft_vocab *tiny_bpe_bos(const char *pre, long bos)
{
	static const char *const toks[] = { "a", "b", "ab" }, *const merges[] = { "a b" };
	gguf_builder b;
	gb_init(&b, 3);
	gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
	if (pre)
		gb_kv_str(&b, "tokenizer.ggml.pre", pre);
	gb_kv_arr_str(&b, "tokenizer.ggml.tokens", 3, toks);
	gb_kv_arr_str(&b, "tokenizer.ggml.merges", 1, merges);
	if (bos >= 0)
		gb_kv_u32(&b, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
	size_t n;
	uint8_t *file = gb_finish(&b, &n);
	weft_gguf *g = weft_gguf_open_mem(file, n);
	weft_vocab *v = g ? weft_vocab_load(g) : NULL;
	weft_gguf_close(g);
	free(file);
	gb_free(&b);
	return v;
}

static weft_vocab *tiny_bpe(const char *pre) { return tiny_bpe_bos(pre, -1); }

/* finding 7 of issue 14: a special id outside the vocabulary keeps the
 * default id, as llama.cpp does, and is reported (the tools print it) */
static void special_id_out_of_range(void)
{
	weft_vocab *ok = tiny_bpe_bos("gpt-2", 2), *bad = tiny_bpe_bos("gpt-2", 3), *far = tiny_bpe_bos("gpt-2", 4000000000L);
	CHECK(ok && bad && far);
	if (ok && bad && far) {
		CHECK_EQ_INT(weft_vocab_bos(ok), 2);
		CHECK(weft_vocab_warning(ok) == NULL);
		CHECK_EQ_INT(weft_vocab_bos(bad), -1); /* llama.cpp's BPE default (11) is outside 3 tokens too */
		CHECK_STR(weft_vocab_warning(bad),
			  "tokenizer.ggml.bos_token_id = 3 is outside the vocabulary (3 tokens); using -1 instead");
		CHECK(weft_vocab_warning(far) && strstr(weft_vocab_warning(far), "= 4000000000 is outside"));
	}
	weft_vocab_free(ok);
	weft_vocab_free(bad);
	weft_vocab_free(far);
}

/* llama.cpp refuses a pre-tokenizer name it does not know; weft too, in one
 * line; a known one weft lacks says so; none at all means "default". */
static void pre_tokenizer_names(void)
{
	weft_vocab *v = tiny_bpe("no-such-pre");
	CHECK(v == NULL);
	CHECK_STR(weft_errmsg(), "tokenizer: unknown pre-tokenizer 'no-such-pre'");
	weft_vocab_free(v);
	v = tiny_bpe("kimi-k2");
	CHECK(v == NULL);
	CHECK_STR(weft_errmsg(), "tokenizer: pre-tokenizer 'kimi-k2' is not supported");
	weft_vocab_free(v);
	static const char *const known[] = { "deepseek-llm", "qwen35", "gemma4", "llama4", "tekken", "chameleon",
					     "spark2_5", "youtu", "jais-2", "exaone-moe", "laguna", "ufakzeka",
					     "granite-embed-multi-97m", "sarvam-moe", "whitespace", "glm4",
					     "tiny_aya", "cohere2moe", "afmoe", "superbpe" };
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		v = tiny_bpe(known[i]);
		if (!v) {
			FAILF("%s: %s", known[i], weft_errmsg());
			continue;
		}
		CHECK_STR(weft_vocab_pre(v), known[i]);
		int32_t *ids = NULL;
		size_t n = 0, cap = 0;
		CHECK(weft_tokenize(v, "ab", 2, 0, &ids, &n, &cap) == 0 && n == 1 && ids[0] == 2);
		free(ids);
		weft_vocab_free(v);
	}
	v = tiny_bpe(NULL);
	CHECK(v && strcmp(weft_vocab_pre(v), "default") == 0);
	weft_vocab_free(v);
	v = tiny_bpe("");
	CHECK(v && strcmp(weft_vocab_pre(v), "default") == 0);
	weft_vocab_free(v);
	v = tiny_bpe("glm4"); /* ChatGLM's loader has no default BOS */
	CHECK(v && weft_vocab_bos(v) == -1);
	weft_vocab_free(v);
}

static void vectors_gpt2(void) { check_vectors("gpt-2", 1); }
static void vectors_starcoder(void) { check_vectors("starcoder", 1); }
static void vectors_llama_spm(void) { check_vectors("llama-spm", 0); }
static void vectors_phi3(void) { check_vectors("phi-3", 0); }

static int ids_eq(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void special_tokens(void)
{
	if (!t_shared_dir())
		SKIP("no shared data (../shared/data)");
	weft_vocab *g = load_vocab("gpt-2"), *s = load_vocab("llama-spm");
	if (!g || !s) {
		FAILF("cannot load vocabs: %s", weft_errmsg());
		goto out;
	}
	int32_t *ids = NULL, *ref = NULL;
	size_t n = 0, cap = 0, rn = 0, rcap = 0;
	/* gpt-2: "<|endoftext|>" is a control token */
	CHECK(weft_tokenize(g, "a<|endoftext|>b", 15, 1, &ids, &n, &cap) == 0);
	CHECK(n == 3 && ids[1] == 50256);
	n = 0;
	CHECK(weft_tokenize(g, "a<|endoftext|>b", 15, 0, &ids, &n, &cap) == 0);
	CHECK(n > 3);
	for (size_t i = 0; i < n; i++)
		CHECK(ids[i] != 50256);
	/* llama-spm: text after a special token gets the space prefix again */
	n = 0;
	CHECK(weft_tokenize(s, "<s>Hi there</s>", 15, 1, &ids, &n, &cap) == 0);
	CHECK(weft_tokenize(s, "Hi there", 8, 0, &ref, &rn, &rcap) == 0);
	CHECK(n == rn + 2 && ids[0] == 1 && ids[n - 1] == 2 && ids_eq(ids + 1, n - 2, ref, rn));
	/* special tokens render only when asked */
	size_t dl;
	char *d = weft_detokenize(s, ids, n, 1, &dl);
	CHECK_STR(d, "<s> Hi there</s>");
	free(d);
	d = weft_detokenize(s, ids, n, 0, &dl);
	CHECK_STR(d, " Hi there"); /* the leading space is only removed from the first token */
	free(d);
	free(ids);
	free(ref);
out:
	weft_vocab_free(g);
	weft_vocab_free(s);
}

static void special_ids(void)
{
	if (!t_shared_dir())
		SKIP("no shared data (../shared/data)");
	weft_vocab *g = load_vocab("gpt-2"), *s = load_vocab("llama-spm"), *p = load_vocab("phi-3"),
		   *sc = load_vocab("starcoder");
	if (!g || !s || !p || !sc) {
		FAILF("cannot load vocabs: %s", weft_errmsg());
		goto out;
	}
	CHECK_EQ_INT(weft_vocab_kind(g), WEFT_VOCAB_BPE);
	CHECK_EQ_INT(weft_vocab_kind(s), WEFT_VOCAB_SPM);
	CHECK_EQ_INT(weft_vocab_size(g), 50257);
	CHECK_EQ_INT(weft_vocab_bos(g), 50256);
	CHECK_EQ_INT(weft_vocab_eos(g), 50256);
	CHECK_EQ_INT(weft_vocab_add_bos(g), 0);
	CHECK_STR(weft_vocab_pre(g), "gpt-2");
	CHECK_STR(weft_vocab_pre(sc), "starcoder");
	CHECK_EQ_INT(weft_vocab_bos(s), 1);
	CHECK_EQ_INT(weft_vocab_eos(s), 2);
	CHECK_EQ_INT(weft_vocab_unk(s), 0);
	CHECK_EQ_INT(weft_vocab_pad(s), -1);
	CHECK_EQ_INT(weft_vocab_add_bos(s), 1);
	CHECK_EQ_INT(weft_vocab_add_eos(s), 0);
	CHECK(weft_vocab_is_eog(s, 2) && !weft_vocab_is_eog(s, 1));
	/* phi-3 (values from llama.cpp's own loader) */
	CHECK_EQ_INT(weft_vocab_eos(p), 32000);
	CHECK_EQ_INT(weft_vocab_eot(p), 32007);
	CHECK_EQ_INT(weft_vocab_pad(p), 32000);
	CHECK(weft_vocab_is_eog(p, 2) && weft_vocab_is_eog(p, 32000) && weft_vocab_is_eog(p, 32007));
	CHECK(!weft_vocab_is_eog(p, 32001) && !weft_vocab_is_eog(p, -1));
	size_t len;
	CHECK_STR(weft_vocab_text(s, 13, &len), "<0x0A>");
	CHECK_EQ_INT(weft_vocab_type(s, 13), WEFT_TOKEN_BYTE);
	CHECK_EQ_INT(weft_vocab_type(s, 1), WEFT_TOKEN_CONTROL);
	CHECK_EQ_INT(weft_vocab_find(g, "Hello", 5), 15496);
	CHECK_EQ_INT(weft_vocab_find(g, "no such token", 13), -1);
	CHECK(weft_vocab_text(g, 50257, NULL) == NULL);
	CHECK(weft_vocab_fingerprint(g) != weft_vocab_fingerprint(sc));
	weft_vocab *g2 = load_vocab("gpt-2");
	CHECK(g2 && weft_vocab_fingerprint(g) == weft_vocab_fingerprint(g2));
	weft_vocab_free(g2);
out:
	weft_vocab_free(g);
	weft_vocab_free(s);
	weft_vocab_free(p);
	weft_vocab_free(sc);
}

static void pieces(void)
{
	if (!t_shared_dir())
		SKIP("no shared data (../shared/data)");
	weft_vocab *g = load_vocab("gpt-2"), *s = load_vocab("llama-spm");
	if (!g || !s) {
		FAILF("cannot load vocabs: %s", weft_errmsg());
		goto out;
	}
	char buf[64];
	int32_t nl = weft_vocab_find(s, "<0x0A>", 6), ff = weft_vocab_find(s, "<0xFF>", 6);
	CHECK(nl >= 0 && ff >= 0);
	CHECK_EQ_INT(weft_token_to_piece(s, nl, 0, buf, sizeof buf), 1);
	CHECK(buf[0] == '\n');
	CHECK_EQ_INT(weft_token_to_piece(s, ff, 0, buf, sizeof buf), 1);
	CHECK((unsigned char)buf[0] == 0xFF);
	CHECK_EQ_INT(weft_token_to_piece(s, 1, 0, buf, sizeof buf), 0);   /* <s>, control */
	CHECK_EQ_INT(weft_token_to_piece(s, 1, 1, buf, sizeof buf), 3);
	CHECK(memcmp(buf, "<s>", 3) == 0);
	int32_t the = weft_vocab_find(s, "\xe2\x96\x81the", 6);
	CHECK_EQ_INT(weft_token_to_piece(s, the, 0, buf, sizeof buf), 4);
	CHECK(memcmp(buf, " the", 4) == 0);
	CHECK_EQ_INT(weft_token_to_piece(s, the, 0, buf, 2), 4);          /* needs 4, wrote 2 */
	CHECK_EQ_INT(weft_token_to_piece(g, weft_vocab_find(g, "\xc4\xa0the", 5), 0, buf, sizeof buf), 4);
	CHECK(memcmp(buf, " the", 4) == 0);
	CHECK_EQ_INT(weft_token_to_piece(g, weft_vocab_find(g, "\xc4\x8a", 2), 0, buf, sizeof buf), 1);
	CHECK(buf[0] == '\n');
	CHECK_EQ_INT(weft_token_to_piece(g, 50257, 0, buf, sizeof buf), -1);
	CHECK_EQ_INT(weft_token_to_piece(g, -1, 0, buf, sizeof buf), -1);
	/* SPM: the space prefix is removed by detokenize, byte tokens join up */
	int32_t ids[] = { the, weft_vocab_find(s, "<0xE2>", 6), weft_vocab_find(s, "<0x82>", 6),
			  weft_vocab_find(s, "<0xAC>", 6) };
	size_t dl;
	char *d = weft_detokenize(s, ids, 4, 0, &dl);
	CHECK_STR(d, "the\xe2\x82\xac");
	free(d);
	int32_t bad = 99999;
	CHECK(weft_detokenize(s, &bad, 1, 0, &dl) == NULL);
out:
	weft_vocab_free(g);
	weft_vocab_free(s);
}

static void invalid_utf8_and_empty(void)
{
	if (!t_shared_dir())
		SKIP("no shared data (../shared/data)");
	weft_vocab *g = load_vocab("gpt-2"), *s = load_vocab("llama-spm");
	if (!g || !s) {
		FAILF("cannot load vocabs: %s", weft_errmsg());
		goto out;
	}
	int32_t *ids = NULL;
	size_t n = 0, cap = 0;
	static const struct { const char *s; size_t len; const char *err; } bad[] = {
		{ "ab\xff", 3, "invalid UTF-8 at byte 2" },
		{ "\xc0\x80", 2, "invalid UTF-8 at byte 0" },          /* overlong */
		{ "ok \xe6\x97", 5, "invalid UTF-8 at byte 3" },       /* truncated */
		{ "x\xed\xa0\x80", 4, "invalid UTF-8 at byte 1" },     /* surrogate */
		{ "\xf4\x90\x80\x80", 4, "invalid UTF-8 at byte 0" },  /* > U+10FFFF */
		{ "caf\xc3\xa9\x80", 6, "invalid UTF-8 at byte 5" },   /* stray continuation */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_EQ_INT(weft_tokenize(g, bad[i].s, bad[i].len, 0, &ids, &n, &cap), -1);
		CHECK_STR(weft_errmsg(), bad[i].err);
		CHECK_EQ_INT(weft_tokenize(s, bad[i].s, bad[i].len, 1, &ids, &n, &cap), -1);
		CHECK_STR(weft_errmsg(), bad[i].err);
	}
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(weft_tokenize(g, "", 0, 1, &ids, &n, &cap), 0);
	CHECK_EQ_INT(weft_tokenize(s, "", 0, 1, &ids, &n, &cap), 0);
	CHECK_EQ_INT(n, 0);
	/* NUL is valid UTF-8 */
	CHECK_EQ_INT(weft_tokenize(g, "a\0b", 3, 0, &ids, &n, &cap), 0);
	CHECK_EQ_INT(n, 3);
	size_t dl;
	char *d = weft_detokenize(g, ids, 0, 0, &dl);
	CHECK(d && dl == 0 && d[0] == 0);
	free(d);
	free(ids);
out:
	weft_vocab_free(g);
	weft_vocab_free(s);
}

static void long_input(void)
{
	if (!t_shared_dir())
		SKIP("no shared data (../shared/data)");
	weft_vocab *g = load_vocab("gpt-2"), *s = load_vocab("llama-spm");
	if (!g || !s) {
		FAILF("cannot load vocabs: %s", weft_errmsg());
		goto out;
	}
	static const char *const parts[] = {
		"The quick brown fox jumps over the lazy dog. ", "It's 3.14159 o'clock\n\n", "    indented();\n",
		"\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8" "apple\xe5\xb7\xa5\xe4\xbd\x9c ", "\xf0\x9f\xa6\x99\xf0\x9f\x9a\x80 ",
		"\xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe ", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "\t\t\t", "1234567890",
		"<|endoftext|>", "</s>", "   ", "!!!???..." };
	size_t cap = (1 << 20) + 64, len = 0;
	char *text = malloc(cap);
	unsigned r = 12345;
	while (len < (1 << 20)) {
		r = r * 1103515245u + 12345u;
		const char *p = parts[(r >> 16) % (sizeof parts / sizeof parts[0])];
		size_t k = strlen(p);
		if (len + k > cap - 1)
			break;
		memcpy(text + len, p, k);
		len += k;
	}
	/* one long run without spaces too */
	memset(text + len / 2, 'x', 20000);
	int32_t *ids = NULL;
	size_t n = 0, ncap = 0, dl;
	CHECK_EQ_INT(weft_tokenize(g, text, len, 1, &ids, &n, &ncap), 0);
	CHECK(n > len / 8);
	char *d = weft_detokenize(g, ids, n, 1, &dl);
	CHECK(d != NULL);
	free(d);
	n = 0;
	CHECK_EQ_INT(weft_tokenize(s, text, len, 0, &ids, &n, &ncap), 0);
	d = weft_detokenize(s, ids, n, 1, &dl);
	CHECK(d && dl == len && memcmp(d, text, len) == 0);
	free(d);
	free(ids);
	free(text);
out:
	weft_vocab_free(g);
	weft_vocab_free(s);
}

/* Expected ids from llama.cpp (0.3.36 vendor tree):
 *   llama-tokenize -m SmolLM2-135M-Instruct.Q4_1.gguf -p TEXT --ids --no-bos --log-disable
 *   (add --no-parse-special for the parse_special = 0 rows; -p expands \n and \t) */
static void smollm2(void)
{
	const char *path = t_smollm2_path();
	if (!path)
		SKIP("SmolLM2 GGUF absent (scripts/fetch-models)");
	weft_gguf *gg = weft_gguf_open(path);
	weft_vocab *v = gg ? weft_vocab_load(gg) : NULL;
	if (gg)
		weft_gguf_close(gg);
	if (!v) {
		FAILF("cannot load %s: %s", path, weft_errmsg());
		return;
	}
	static const struct { const char *text; int ps; int32_t ids[80]; size_t n; } cases[] = {
		{ "<|im_start|>user\nHello<|im_end|>", 1, { 1, 4093, 198, 19556, 2 }, 5 },
		{ "<|im_start|>user\nHello<|im_end|>", 0,
		  { 44, 108, 306, 79, 3738, 108, 46, 4093, 198, 19556, 44, 108, 306, 79, 486, 108, 46 }, 17 },
		{ "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2? "
		  "I'll pay $1,234.56!<|im_end|>\n<|im_start|>assistant\n", 1,
		  { 1, 9690, 198, 2683, 359, 253, 5356, 11173, 30, 2, 198, 1, 4093, 198, 1780, 314, 216, 34, 27,
		    34, 47, 339, 3060, 2290, 1885, 33, 28, 34, 35, 36, 30, 37, 38, 17, 2, 198, 1, 520, 9531, 198 }, 40 },
		{ "Hello world", 1, { 19556, 905 }, 2 },
		{ "  indented\tcode();\n\n", 1, { 216, 641, 6574, 197, 4635, 35040, 1116 }, 7 },
		{ "na\xc3\xafve caf\xc3\xa9 \xe2\x80\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xa6\x99", 1,
		  { 3546, 46494, 37366, 816, 17097, 241, 115, 40993, 179, 120, 248, 15107, 116, 243 }, 14 },
	};
	int32_t *ids = NULL;
	size_t n = 0, cap = 0;
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		n = 0;
		if (weft_tokenize(v, cases[c].text, strlen(cases[c].text), cases[c].ps, &ids, &n, &cap) != 0) {
			FAILF("case %zu: %s", c, weft_errmsg());
			break;
		}
		for (size_t i = 0; i < n || i < cases[c].n; i++)
			if (i >= n || i >= cases[c].n || ids[i] != cases[c].ids[i]) {
				FAILF("case %zu: id %zu is %d, expected %d", c, i, i < n ? (int)ids[i] : -1,
				      i < cases[c].n ? (int)cases[c].ids[i] : -1);
				break;
			}
		size_t dl;
		char *d = weft_detokenize(v, ids, n, 1, &dl);
		CHECK(d && strcmp(d, cases[c].text) == 0); /* smollm keeps spaces as they are */
		free(d);
	}
	CHECK_STR(weft_vocab_pre(v), "smollm");
	CHECK_EQ_INT(weft_vocab_bos(v), 1);
	CHECK_EQ_INT(weft_vocab_eos(v), 2);
	CHECK_EQ_INT(weft_vocab_eot(v), 0);
	CHECK_EQ_INT(weft_vocab_pad(v), 2);
	CHECK_EQ_INT(weft_vocab_add_bos(v), 0);
	CHECK(weft_vocab_is_eog(v, 0) && weft_vocab_is_eog(v, 2) && weft_vocab_is_eog(v, 4));
	CHECK(!weft_vocab_is_eog(v, 1));
	free(ids);
	weft_vocab_free(v);
}

int main(void)
{
	t_suite = "tokenizer";
	RUN(vectors_gpt2);
	RUN(vectors_starcoder);
	RUN(vectors_llama_spm);
	RUN(vectors_phi3);
	llamacpp_vocabs();
	RUN(pre_tokenizer_names);
	RUN(special_tokens);
	RUN(special_ids);
	RUN(special_id_out_of_range);
	RUN(pieces);
	RUN(invalid_utf8_and_empty);
	RUN(long_input);
	RUN(smollm2);
	TEST_MAIN_END();
}

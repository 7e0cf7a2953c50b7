/* test_perplexity.c - lib/perplexity.c against an independent computation.
 *
 * The tiny fixtures' reference files (tests/data/llm/tiny-*-f32.ref, written by
 * scripts/gen-llm-fixtures.py) hold transformers' logits at every position
 * of a few prompts.  A text made of prompt prefixes, one per window, has an
 * expected perplexity that follows from those logits alone (a window starts
 * from an empty cache at position 0, so its logits are the prompt's): the
 * straightforward long-double log-softmax, summed over the second half of
 * each window, is compared with weft_perplexity() running weft's forward
 * pass.  Also: BOS replacement of each window's first token, --chunks, odd
 * contexts, the partial last window dropped, the log-softmax itself, the
 * tokenization rule (BOS when the vocabulary asks for it), and errors. */
#include "gguf.h"
#include "model.h"
#include "perplexity.h"
#include "tokenizer.h"
#include "util.h"

#include "llm_ref.h"
#include "test.h"

#include <stdint.h>

#define DATA "tests/data/llm/"

/* reference files: tests/unit/llm_ref.h */

/* the prompts at least n_ctx long */
static int long_prompts(const ref *r, int n_ctx, int *out)
{
	int k = 0;
	for (int i = 0; i < r->n_prompts; i++)
		if (r->p[i].T >= n_ctx)
			out[k++] = i;
	return k;
}

/* ---- the independent computation ---- */

/* -log softmax(logits)[tok], in long double, no tricks beyond the max */
static long double direct_nll(const float *lg, int nv, int tok)
{
	long double mx = lg[0], s = 0;
	for (int i = 1; i < nv; i++)
		mx = lg[i] > mx ? lg[i] : mx;
	for (int i = 0; i < nv; i++)
		s += expl((long double)lg[i] - mx);
	return -((long double)lg[tok] - mx - logl(s));
}

typedef struct expect {
	double ppl, err;
	long count;
} expect;

/* Windows w = 0..n_win-1 are prompt pr[w % np]'s first n_ctx tokens: score
 * positions n_ctx/2 .. n_ctx-2 against the next token. */
static expect expected(const ref *r, int set, const int *pr, int np, int n_win, int n_ctx)
{
	long double s = 0, s2 = 0;
	long count = 0;
	for (int w = 0; w < n_win; w++) {
		int p = pr[w % np];
		for (int t = n_ctx / 2; t <= n_ctx - 2; t++) {
			long double v = direct_nll(r->p[p].logits[set] + (size_t)t * r->n_vocab, r->n_vocab, r->p[p].ids[t + 1]);
			s += v;
			s2 += v * v;
			count++;
		}
	}
	long double mean = s / count, var = s2 / count - mean * mean;
	expect e = {(double)expl(mean), 0, count};
	e.err = (double)(sqrtl(var / (count - 1)) * expl(mean));
	return e;
}

/* the text: those windows back to back, then `tail` more tokens */
static int32_t *build_text(const ref *r, const int *pr, int np, int n_win, int n_ctx, int tail, size_t *n)
{
	int32_t *ids = malloc(sizeof *ids * ((size_t)n_win * n_ctx + (size_t)tail));
	*n = 0;
	for (int w = 0; w < n_win; w++)
		for (int t = 0; t < n_ctx; t++)
			ids[(*n)++] = r->p[pr[w % np]].ids[t];
	for (int t = 0; t < tail; t++)
		ids[(*n)++] = r->p[pr[0]].ids[t];
	return ids;
}

typedef struct loaded {
	weft_gguf *g;
	weft_model *m;
	ref r;
} loaded;

static int load(const char *name, loaded *l)
{
	char path[256];
	memset(l, 0, sizeof *l);
	snprintf(path, sizeof path, DATA "%s.gguf", name);
	if (!(l->g = weft_gguf_open(path)) || !(l->m = weft_model_load(l->g)))
		return -1;
	snprintf(path, sizeof path, DATA "%s.ref", name);
	return ref_load(path, &l->r);
}

static void unload(loaded *l)
{
	weft_model_free(l->m);
	weft_gguf_close(l->g);
	free(l->r.buf);
}

static const char *fixtures[] = {"tiny-llama-f32", "tiny-qwen2-f32"};

static int progress_calls, progress_last;
static double progress_ppl;
static void on_progress(void *user, int chunk, int n_chunk, double ppl)
{
	(void)user;
	progress_calls++;
	progress_last = chunk;
	progress_ppl = ppl;
	if (n_chunk < chunk)
		progress_last = -1;
}

/* ---- tests ---- */

/* weft_ppl_nll is the log-softmax, to double precision */
static void nll_is_log_softmax(void)
{
	float lg[1000];
	uint64_t x = 12345;
	for (int i = 0; i < 1000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		lg[i] = (float)((double)(x >> 11) / 9007199254740992.0 * 40.0 - 20.0);
	}
	for (int tok = 0; tok < 1000; tok += 97)
		CHECK_NEAR(weft_ppl_nll(lg, 1000, tok), (double)direct_nll(lg, 1000, tok), 1e-5);
	float flat[4] = {3, 3, 3, 3};
	CHECK_NEAR(weft_ppl_nll(flat, 4, 2), log(4.0), 1e-12);
}

/* Several contexts (even, odd), 3 windows plus a partial one that must be
 * dropped; F16 KV cache so compare with the "f16kv" reference set. */
static void tiny_vs_reference(void)
{
	for (size_t f = 0; f < sizeof fixtures / sizeof *fixtures; f++) {
		loaded l;
		if (load(fixtures[f], &l) != 0) {
			FAILF("%s: %s", fixtures[f], weft_errmsg());
			unload(&l);
			return;
		}
		int set = ref_set_index(&l.r, "f16kv");
		CHECK(set >= 0);
		static const int ctxs[] = {16, 15, 8, 3};
		for (size_t c = 0; c < sizeof ctxs / sizeof *ctxs && set >= 0; c++) {
			int n_ctx = ctxs[c], pr[8], np = long_prompts(&l.r, n_ctx, pr);
			CHECK(np >= 2);
			size_t n;
			int32_t *ids = build_text(&l.r, pr, np, 3, n_ctx, n_ctx - 1, &n);
			expect e = expected(&l.r, set, pr, np, 3, n_ctx);
			weft_ppl_result res;
			progress_calls = 0;
			int rc = weft_perplexity(l.m, NULL, ids, n, n_ctx, 0, -1, 0, on_progress, NULL, &res);
			if (rc != 0)
				FAILF("%s, ctx %d: %s", fixtures[f], n_ctx, weft_errmsg());
			CHECK_EQ_INT(res.n_chunk, 3);
			CHECK_EQ_INT(res.count, e.count);
			CHECK_EQ_INT(res.count, 3 * (n_ctx - n_ctx / 2 - 1));
			CHECK_EQ_INT(res.n_tokens, (long)n);
			CHECK_NEAR(res.ppl / e.ppl, 1, 1e-3);
			CHECK_NEAR(res.ppl_err / e.err, 1, 1e-3);
			CHECK_NEAR(exp(res.nll / res.count), res.ppl, 1e-9 * res.ppl);
			CHECK_EQ_INT(progress_calls, 3);
			CHECK_EQ_INT(progress_last, 3);
			CHECK_NEAR(progress_ppl, res.ppl, 1e-12 * res.ppl);
			free(ids);
		}
		unload(&l);
	}
}

/* bos >= 0 replaces each window's first token for the run (not in the
 * scored text): windows starting with the wrong token then give exactly
 * the result of the right one; without bos they differ. */
static void bos_replaces_first_token(void)
{
	loaded l;
	if (load("tiny-llama-f32", &l) != 0) {
		FAILF("%s", weft_errmsg());
		unload(&l);
		return;
	}
	const int n_ctx = 16;
	int pr[8], np = long_prompts(&l.r, n_ctx, pr);
	int first_tok = l.r.p[pr[0]].ids[0];
	int one[1] = {pr[0]}; /* every window: the same prompt */
	size_t n;
	int32_t *ids = build_text(&l.r, one, 1, 2, n_ctx, 0, &n);
	weft_ppl_result want, got, plain;
	CHECK(np >= 1);
	CHECK(weft_perplexity(l.m, NULL, ids, n, n_ctx, 0, -1, 0, NULL, NULL, &want) == 0);
	int other = (first_tok + 7) % l.r.n_vocab;
	ids[0] = ids[n_ctx] = other;
	CHECK(weft_perplexity(l.m, NULL, ids, n, n_ctx, 0, first_tok, 0, NULL, NULL, &got) == 0);
	CHECK(weft_perplexity(l.m, NULL, ids, n, n_ctx, 0, -1, 0, NULL, NULL, &plain) == 0);
	CHECK(got.ppl == want.ppl);
	CHECK(plain.ppl != want.ppl);
	/* the same window twice: the running estimate is flat, var is the window's */
	expect e = expected(&l.r, ref_set_index(&l.r, "f16kv"), one, 1, 2, n_ctx);
	CHECK_NEAR(want.ppl / e.ppl, 1, 1e-3);
	free(ids);
	unload(&l);
}

/* max_chunks limits the windows; forward chunking does not change results */
static void chunks_and_batch(void)
{
	loaded l;
	if (load("tiny-qwen2-f32", &l) != 0) {
		FAILF("%s", weft_errmsg());
		unload(&l);
		return;
	}
	const int n_ctx = 16;
	int pr[8], np = long_prompts(&l.r, n_ctx, pr);
	size_t n;
	int32_t *ids = build_text(&l.r, pr, np, 4, n_ctx, 0, &n);
	weft_ppl_result a, b, c;
	CHECK(weft_perplexity(l.m, NULL, ids, n, n_ctx, 2, -1, 0, NULL, NULL, &a) == 0);
	CHECK_EQ_INT(a.n_chunk, 2);
	CHECK_EQ_INT(a.count, 2 * 7);
	expect e = expected(&l.r, ref_set_index(&l.r, "f16kv"), pr, np, 2, n_ctx);
	CHECK_NEAR(a.ppl / e.ppl, 1, 1e-3);
	CHECK(weft_perplexity(l.m, NULL, ids, n, n_ctx, 99, -1, 0, NULL, NULL, &b) == 0);
	CHECK_EQ_INT(b.n_chunk, 4);
	weft_pool *pool = weft_pool_new(2);
	CHECK(weft_perplexity(l.m, pool, ids, n, n_ctx, 0, -1, 3, NULL, NULL, &c) == 0);
	CHECK_NEAR(c.ppl / b.ppl, 1, 1e-5);
	weft_pool_free(pool);
	free(ids);
	unload(&l);
}

static void errors(void)
{
	loaded l;
	if (load("tiny-llama-f32", &l) != 0) {
		FAILF("%s", weft_errmsg());
		unload(&l);
		return;
	}
	int32_t ids[64] = {0};
	weft_ppl_result r;
	CHECK(weft_perplexity(l.m, NULL, ids, 31, 16, 0, -1, 0, NULL, NULL, &r) == -1);
	CHECK_STR(weft_errmsg(), "you need at least 32 tokens to evaluate perplexity with a context of 16; "
				 "the text tokenizes to only 31 tokens");
	CHECK(weft_perplexity(l.m, NULL, ids, 64, 2, 0, -1, 0, NULL, NULL, &r) == -1);
	CHECK_STR(weft_errmsg(), "context 2 too small (at least 3: half of it is scored)");
	ids[40] = 320;
	CHECK(weft_perplexity(l.m, NULL, ids, 64, 16, 0, -1, 0, NULL, NULL, &r) == -1);
	CHECK_STR(weft_errmsg(), "token 40: id 320 out of range (vocabulary 320)");
	ids[40] = 0;
	CHECK(weft_perplexity(l.m, NULL, ids, 64, 16, 0, 320, 0, NULL, NULL, &r) == -1);
	CHECK_STR(weft_errmsg(), "BOS id 320 out of range (vocabulary 320)");
	unload(&l);
}

/* BOS first exactly when the vocabulary's add_bos says so; no special parsing */
static void tokenize_rule(void)
{
	const char *paths[2] = {DATA "tiny-llama-f32.gguf", NULL};
	char spm[4200];
	const char *sh = t_shared_dir();
	if (sh) {
		snprintf(spm, sizeof spm, "%s/vocab/ggml-vocab-llama-spm.gguf", sh);
		paths[1] = spm;
	}
	int saw_bos = 0;
	for (int i = 0; i < 2 && paths[i]; i++) {
		weft_gguf *g = weft_gguf_open(paths[i]);
		weft_vocab *v = g ? weft_vocab_load(g) : NULL;
		if (!v) {
			FAILF("%s: %s", paths[i], weft_errmsg());
			weft_gguf_close(g);
			return;
		}
		const char *text = "Hello world </s> again";
		int32_t *a = NULL, *b = NULL;
		size_t na = 0, nb = 0, cap = 0;
		CHECK(weft_ppl_tokenize(v, text, strlen(text), &a, &na) == 0);
		CHECK(weft_tokenize(v, text, strlen(text), 0, &b, &nb, &cap) == 0);
		int bos = weft_vocab_add_bos(v) ? 1 : 0;
		saw_bos |= bos;
		CHECK_EQ_INT(na, nb + (size_t)bos);
		if (bos && na > 0)
			CHECK_EQ_INT(a[0], weft_vocab_bos(v));
		if (na == nb + (size_t)bos && nb > 0)
			CHECK(memcmp(a + bos, b, nb * sizeof *a) == 0);
		free(a);
		free(b);
		weft_vocab_free(v);
		weft_gguf_close(g);
	}
	if (!t_failed && !saw_bos)
		SKIP("../shared absent: only a vocabulary without add_bos checked");
}

int main(void)
{
	t_suite = "perplexity";
	RUN(nll_is_log_softmax);
	RUN(tiny_vs_reference);
	RUN(bos_replaces_first_token);
	RUN(chunks_and_batch);
	RUN(errors);
	RUN(tokenize_rule);
	TEST_MAIN_END();
}

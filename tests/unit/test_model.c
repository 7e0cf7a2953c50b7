/* test_model.c - the LLM forward pass (lib/model.c, lib/model_llama.c).
 *
 * Fixtures (tests/data/llm, written by scripts/gen-llm-fixtures.py): tiny
 * random llama and qwen2 models against transformers' logits at every
 * position.  Errors are measured per row relative to the row's max |logit|.
 *   F32 weights vs transformers with keys/values rounded to half ("f16kv",
 *     llama.cpp's and weft's F16 cache): <= 1e-4; vs plain float32
 *     transformers: <= 1e-2 (the F16 cache alone), and <= 1e-4 with weft's
 *     F32 KV cache (WEFT_KV_F32).
 *   Quantized weights vs transformers on the same dequantized weights
 *     ("f16kv-deq"): the activation rounding to the vec_dot type (F16, Q8_0,
 *     Q8_1, Q8_K as llama.cpp): <= 2e-3 (F16), 0.05 (Q8_0, Q4_0, Q4_1),
 *     0.02 (Q4_K_M); vs the float32 model and vs weft's run of the F32
 *     file, the weights' rounding too: <= 5e-3, 0.06 (Q8_0), 0.6 (4-bit),
 *     0.1 (Q4_K_M).  See quant_bound() for the measured values.
 * Chunked prefill (1, 3, all) and token-by-token decode equal one prefill;
 * the embeddings path equals the token path; attention mass sums to the
 * number of queries.  Bad GGUFs: exact one-line errors.  The comparisons
 * with llama.cpp itself are test_llamacpp_parity.c. */
#include "ggml_types.h"
#include "gguf.h"
#include "kernels.h"
#include "keys.h"
#include "kvstream.h"
#include "model.h"
#include "tokenizer.h"
#include "util.h"

#include "gguf_build.h"
#include "llm_ref.h"
#include "model_util.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

#define DATA "tests/data/llm/"

/* max over rows of max|a - b| / max|b| */
static double rel_err(const float *a, const float *b, int T, int nv)
{
	double worst = 0;
	for (int t = 0; t < T; t++) {
		double mx = 0, md = 0;
		for (int i = 0; i < nv; i++) {
			mx = fmax(mx, fabs(b[(size_t)t * nv + i]));
			md = fmax(md, fabs((double)a[(size_t)t * nv + i] - b[(size_t)t * nv + i]));
		}
		worst = fmax(worst, mx > 0 ? md / mx : md);
	}
	return worst;
}

/* ---- running a model ---- */

/* The tiny fixtures run inline (NULL pool: a pool only adds hand-off cost
 * at this size and on a loaded machine); pool_equals_inline and SmolLM2
 * use `pool`. */
static weft_pool *pool, *tiny_pool;

/* All logits of ids through a fresh cache, prefilled in chunks of `chunk`
 * calls of weft_model_forward (each call itself chunked by `inner`). */
static float *run_type(const weft_model *m, const int32_t *ids, int T, int chunk, int inner, weft_kv_type type)
{
	weft_kv *kv = weft_kv_new_type(m, T, type);
	float *lg = malloc(sizeof(float) * (size_t)T * (size_t)m->hp.n_vocab);
	if (!kv || !lg)
		goto fail;
	for (int t = 0; t < T; t += chunk) {
		int n = T - t < chunk ? T - t : chunk;
		if (weft_model_forward(m, tiny_pool, kv, ids + t, NULL, n, inner, lg + (size_t)t * m->hp.n_vocab, 1, NULL))
			goto fail;
	}
	if (kv->n_past != T)
		goto fail;
	weft_kv_free(kv);
	return lg;
fail:
	weft_kv_free(kv);
	free(lg);
	return NULL;
}

static float *run(const weft_model *m, const int32_t *ids, int T, int chunk, int inner)
{
	return run_type(m, ids, T, chunk, inner, WEFT_KV_F16);
}

static const char *arches[] = {"tiny-llama", "tiny-qwen2"};

/* ---- fixtures: float32 weights ---- */

static void f32_vs_transformers(void)
{
	for (int a = 0; a < 2; a++) {
		char path[256];
		ref r;
		loaded l;
		snprintf(path, sizeof path, DATA "%s-f32.ref", arches[a]);
		if (ref_load(path, &r) != 0) {
			FAILF("cannot read %s", path);
			free(r.buf);
			return;
		}
		snprintf(path, sizeof path, DATA "%s-f32.gguf", arches[a]);
		if (open_model(path, &l) != 0) {
			FAILF("%s: %s", path, weft_errmsg());
			free(r.buf);
			close_model(&l);
			return;
		}
		CHECK_EQ_INT(l.m->hp.n_vocab, r.n_vocab);
		double e16 = 0, e32 = 0, f32kv = 0;
		for (int i = 0; i < r.n_prompts; i++) {
			float *lg = run(l.m, r.p[i].ids, r.p[i].T, r.p[i].T, 0);
			/* the F32 cache, in chunks of 3 so cached rows are read back */
			float *lg32 = run_type(l.m, r.p[i].ids, r.p[i].T, 3, 0, WEFT_KV_F32);
			if (!lg || !lg32) {
				FAILF("%s: forward: %s", path, weft_errmsg());
				free(lg), free(lg32);
				break;
			}
			e16 = fmax(e16, rel_err(lg, ref_logits(&r, i, "f16kv"), r.p[i].T, r.n_vocab));
			e32 = fmax(e32, rel_err(lg, ref_logits(&r, i, "f32"), r.p[i].T, r.n_vocab));
			f32kv = fmax(f32kv, rel_err(lg32, ref_logits(&r, i, "f32"), r.p[i].T, r.n_vocab));
			free(lg), free(lg32);
		}
		printf("# %s-f32: max rel err %.3g vs transformers (f16 kv), %.3g vs float32; with weft's F32 KV "
		       "cache %.3g vs float32\n",
		       arches[a], e16, e32, f32kv);
		CHECK(e16 <= 1e-4);
		CHECK(e32 <= 1e-2);
		CHECK(f32kv <= 1e-4);
		close_model(&l);
		free(r.buf);
	}
}

/* ---- fixtures: quantized weights ---- */

/* Bounds (measured on these fixtures: F16 7.6e-4 / 1.2e-3, Q8_0 0.023 /
 * 0.028, Q4_0 and Q4_1 0.027 / 0.39; llama.cpp's own run of the same files
 * is 0.017-0.022 from the dequantized reference for 8 and 4 bits):
 *   deq: vs transformers on the same dequantized weights, so only the
 *        activations' rounding to the vec_dot type (F16, Q8_0, Q8_1) differs;
 *   total: vs the float32 model (and vs weft's F32 run): the 4-bit rounding
 *        of d-64 random weights moves logits by up to ~0.4 of the largest. */
static void quant_bound(const char *q, double *deq, double *total)
{
	int f16 = !strcmp(q, "f16"), q8 = !strcmp(q, "q8_0");
	*deq = f16 ? 2e-3 : 0.05;
	*total = f16 ? 5e-3 : q8 ? 0.06 : 0.6;
}

static void quantized_vs_transformers(void)
{
	static const char *qs[] = {"f16", "q8_0", "q4_0", "q4_1"};
	char bad[256] = "";
	for (int a = 0; a < 2; a++) {
		char path[256];
		ref r32;
		loaded l32;
		snprintf(path, sizeof path, DATA "%s-f32.ref", arches[a]);
		CHECK(ref_load(path, &r32) == 0);
		snprintf(path, sizeof path, DATA "%s-f32.gguf", arches[a]);
		CHECK(open_model(path, &l32) == 0);
		for (int qi = 0; qi < 4 && !t_failed; qi++) {
			ref r;
			loaded l;
			snprintf(path, sizeof path, DATA "%s-%s.ref", arches[a], qs[qi]);
			CHECK(ref_load(path, &r) == 0);
			snprintf(path, sizeof path, DATA "%s-%s.gguf", arches[a], qs[qi]);
			if (open_model(path, &l) != 0)
				FAILF("%s: %s", path, weft_errmsg());
			double ed = 0, et = 0, ew = 0, bd, bt;
			for (int i = 0; !t_failed && i < r.n_prompts; i++) {
				float *lg = run(l.m, r.p[i].ids, r.p[i].T, r.p[i].T, 0);
				float *l32g = run(l32.m, r.p[i].ids, r.p[i].T, r.p[i].T, 0);
				if (!lg || !l32g) {
					FAILF("%s: forward: %s", path, weft_errmsg());
				} else {
					ed = fmax(ed, rel_err(lg, ref_logits(&r, i, "f16kv-deq"), r.p[i].T, r.n_vocab));
					et = fmax(et, rel_err(lg, ref_logits(&r32, i, "f16kv"), r.p[i].T, r.n_vocab));
					ew = fmax(ew, rel_err(lg, l32g, r.p[i].T, r.n_vocab));
				}
				free(lg);
				free(l32g);
			}
			quant_bound(qs[qi], &bd, &bt);
			printf("# %s-%s: max rel err %.3g vs transformers on its dequantized weights (bound %.3g), "
			       "%.3g vs the float32 model, %.3g vs weft's F32 run (bound %.3g)\n",
			       arches[a], qs[qi], ed, bd, et, ew, bt);
			if (!(ed <= bd) || !(et <= bt) || !(ew <= bt))
				snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " %s-%s", arches[a], qs[qi]);
			close_model(&l);
			free(r.buf);
		}
		close_model(&l32);
		free(r32.buf);
	}
	if (bad[0])
		FAILF("over the bounds:%s", bad);
}

static void kquant_vs_transformers(void)
{
	ref r;
	loaded l;
	CHECK(ref_load(DATA "tiny-llama256-q4_k_m.ref", &r) == 0);
	if (open_model(DATA "tiny-llama256-q4_k_m.gguf", &l) != 0)
		FAILF("%s", weft_errmsg());
	int types = 0;
	for (uint64_t i = 0; !t_failed && i < l.g->n_tensors; i++)
		types |= (l.g->tensors[i].type == WEFT_TYPE_Q4_K) | (l.g->tensors[i].type == WEFT_TYPE_Q6_K) << 1;
	CHECK(t_failed || types == 3);
	double ed = 0, et = 0;
	for (int i = 0; !t_failed && i < r.n_prompts; i++) {
		float *lg = run(l.m, r.p[i].ids, r.p[i].T, r.p[i].T, 0);
		if (!lg) {
			FAILF("forward: %s", weft_errmsg());
			break;
		}
		ed = fmax(ed, rel_err(lg, ref_logits(&r, i, "f16kv-deq"), r.p[i].T, r.n_vocab));
		et = fmax(et, rel_err(lg, ref_logits(&r, i, "f16kv"), r.p[i].T, r.n_vocab));
		free(lg);
	}
	printf("# tiny-llama256-q4_k_m: max rel err %.3g vs transformers on its dequantized weights, %.3g vs "
	       "the float32 model\n",
	       ed, et);
	if (!t_failed && (!(ed <= 0.02) || !(et <= 0.1)))
		FAILF("errors %.3g (bound 0.02), %.3g (bound 0.1)", ed, et);
	close_model(&l);
	free(r.buf);
}

/* ---- chunking, decode, embeddings, extras ---- */

static const char *all_fixtures[] = {"tiny-llama-f32", "tiny-qwen2-f32", "tiny-llama-q4_1", "tiny-qwen2-q8_0",
				     "tiny-llama256-q4_k_m"};

/* the longest prompt of a fixture's reference */
static int longest(const char *name, ref *r, loaded *l)
{
	char path[256];
	l->g = NULL;
	l->m = NULL;
	snprintf(path, sizeof path, DATA "%s.ref", name);
	if (ref_load(path, r) != 0) {
		FAILF("cannot read %s", path);
		return -1;
	}
	snprintf(path, sizeof path, DATA "%s.gguf", name);
	if (open_model(path, l) != 0) {
		FAILF("%s: %s", path, weft_errmsg());
		return -1;
	}
	return r->n_prompts - 1;
}

static void chunked_prefill(void)
{
	for (size_t f = 0; f < sizeof all_fixtures / sizeof *all_fixtures && !t_failed; f++) {
		ref r;
		loaded l;
		int i = longest(all_fixtures[f], &r, &l);
		if (i >= 0) {
			const int T = r.p[i].T, nv = r.n_vocab;
			float *one = run(l.m, r.p[i].ids, T, T, 0);
			/* calls of 1 and 3 tokens; one call chunked internally by 1 and 3 */
			float *c1 = run(l.m, r.p[i].ids, T, 1, 0), *c3 = run(l.m, r.p[i].ids, T, 3, 0);
			float *i1 = run(l.m, r.p[i].ids, T, T, 1), *i3 = run(l.m, r.p[i].ids, T, T, 3);
			if (!one || !c1 || !c3 || !i1 || !i3)
				FAILF("%s: forward: %s", all_fixtures[f], weft_errmsg());
			else if (rel_err(c1, one, T, nv) > 1e-6 || rel_err(c3, one, T, nv) > 1e-6 ||
				 rel_err(i1, one, T, nv) > 1e-6 || rel_err(i3, one, T, nv) > 1e-6)
				FAILF("%s: chunked logits differ: %.3g %.3g %.3g %.3g", all_fixtures[f],
				      rel_err(c1, one, T, nv), rel_err(c3, one, T, nv), rel_err(i1, one, T, nv),
				      rel_err(i3, one, T, nv));
			free(one), free(c1), free(c3), free(i1), free(i3);
		}
		close_model(&l);
		free(r.buf);
	}
}

/* prefill 10 tokens, then one token at a time with last-token logits only,
 * in a cache grown with weft_kv_reserve as it fills */
static void decode_equals_prefill(void)
{
	for (size_t f = 0; f < sizeof all_fixtures / sizeof *all_fixtures && !t_failed; f++) {
		ref r;
		loaded l;
		int i = longest(all_fixtures[f], &r, &l);
		if (i >= 0) {
			const int T = r.p[i].T, nv = r.n_vocab, P = 10;
			float *one = run(l.m, r.p[i].ids, T, T, 0), *lg = malloc(sizeof(float) * (size_t)nv);
			weft_kv *kv = weft_kv_new(l.m, P);
			CHECK(one && kv && weft_model_forward(l.m, tiny_pool, kv, r.p[i].ids, NULL, P, 0, lg, 0, NULL) == 0);
			CHECK(!t_failed && rel_err(lg, one + (size_t)(P - 1) * nv, 1, nv) <= 1e-6);
			for (int t = P; t < T && !t_failed; t++) {
				CHECK(weft_kv_reserve(kv, t + 1) == 0 && kv->cap == t + 1);
				CHECK(weft_model_forward(l.m, tiny_pool, kv, r.p[i].ids + t, NULL, 1, 0, lg, 0, NULL) == 0);
				if (!t_failed && rel_err(lg, one + (size_t)t * nv, 1, nv) > 1e-6)
					FAILF("%s: token %d: decode differs from prefill by %.3g", all_fixtures[f], t,
					      rel_err(lg, one + (size_t)t * nv, 1, nv));
			}
			CHECK(t_failed || (kv->n_past == T && kv->len[0] == T && kv->layer[0].pos[T - 1] == T - 1));
			weft_kv_free(kv);
			free(one);
			free(lg);
		}
		close_model(&l);
		free(r.buf);
	}
}

static void embeddings_path(void)
{
	ref r;
	loaded l;
	int i = longest("tiny-qwen2-q4_0", &r, &l);
	if (i >= 0) {
		const int T = r.p[i].T, nv = r.n_vocab, d = l.m->hp.n_embd;
		const weft_gguf_tensor *te = l.m->tok_embd;
		float *e = malloc(sizeof(float) * (size_t)T * (size_t)d), *lg = malloc(sizeof(float) * (size_t)T * nv);
		for (int t = 0; t < T; t++)
			CHECK(weft_dequantize_row(te->type,
						  (const uint8_t *)te->data +
							  weft_type_row_bytes(te->type, (uint64_t)d) * (uint64_t)r.p[i].ids[t],
						  e + (size_t)t * d, d) == 0);
		float *one = run(l.m, r.p[i].ids, T, T, 0);
		weft_kv *kv = weft_kv_new(l.m, T);
		CHECK(one && kv && weft_model_forward(l.m, tiny_pool, kv, NULL, e, T, 7, lg, 1, NULL) == 0);
		CHECK(t_failed || rel_err(lg, one, T, nv) == 0);
		weft_kv_free(kv);
		free(one), free(e), free(lg);
	}
	close_model(&l);
	free(r.buf);
}

/* mass: every query spreads weight 1 over the rows it sees, so per layer
 * and KV head the mass sums to queries x heads per group; window_q holds
 * the last n_window queries whatever the chunking */
static void extra_outputs(void)
{
	ref r;
	loaded l;
	int i = longest("tiny-llama-f32", &r, &l);
	if (i >= 0) {
		const weft_hparams *hp = &l.m->hp;
		const int T = r.p[i].T, NL = hp->n_layer, H = hp->n_head_kv, W = 5,
			  qn = hp->n_head * hp->head_dim;
		weft_kv *kv = weft_kv_new(l.m, T + 4);
		float *mass = calloc((size_t)NL * H * (size_t)kv->cap, sizeof(float));
		float *wq1 = calloc((size_t)NL * W * qn, sizeof(float)), *wq2 = calloc((size_t)NL * W * qn, sizeof(float));
		weft_fwd_extra x = {.mass = mass, .window_q = wq1, .n_window = W};
		CHECK(weft_model_forward(l.m, tiny_pool, kv, r.p[i].ids, NULL, T, 0, NULL, 0, &x) == 0);
		for (int ly = 0; ly < NL && !t_failed; ly++)
			for (int g = 0; g < H; g++) {
				double s = 0;
				for (int j = 0; j < T; j++)
					s += mass[((size_t)ly * H + g) * (size_t)kv->cap + j];
				CHECK_NEAR(s, (double)T * (hp->n_head / H), 1e-3);
				/* the first row is seen by every query: it gets the most */
				CHECK(mass[((size_t)ly * H + g) * (size_t)kv->cap] > 0);
			}
		weft_kv_free(kv);
		kv = weft_kv_new(l.m, T);
		x.mass = NULL;
		x.window_q = wq2;
		CHECK(weft_model_forward(l.m, tiny_pool, kv, r.p[i].ids, NULL, T, 3, NULL, 0, &x) == 0);
		CHECK(memcmp(wq1, wq2, sizeof(float) * (size_t)NL * W * qn) == 0);
		int nz = 0;
		for (size_t j = 0; j < (size_t)NL * W * qn; j++)
			nz += wq1[j] != 0;
		CHECK(nz > NL * W * qn / 2);
		weft_kv_free(kv);
		free(mass), free(wq1), free(wq2);
	}
	close_model(&l);
	free(r.buf);
}

/* the pool changes nothing: every output is computed by one task */
static void pool_equals_inline(void)
{
	ref r;
	loaded l;
	int i = longest("tiny-qwen2-q4_1", &r, &l);
	if (i >= 0) {
		const int T = r.p[i].T, nv = r.n_vocab;
		float *a = run(l.m, r.p[i].ids, T, T, 0);
		tiny_pool = pool;
		float *b = run(l.m, r.p[i].ids, T, T, 0);
		tiny_pool = NULL;
		CHECK(a && b && memcmp(a, b, sizeof(float) * (size_t)T * nv) == 0);
		free(a), free(b);
	}
	close_model(&l);
	free(r.buf);
}

static void fingerprint_stable(void)
{
	loaded a, b, c;
	CHECK(open_model(DATA "tiny-llama-f32.gguf", &a) == 0);
	CHECK(open_model(DATA "tiny-llama-f32.gguf", &b) == 0);
	CHECK(open_model(DATA "tiny-llama-q4_0.gguf", &c) == 0);
	if (!t_failed) {
		CHECK(a.m->fingerprint == b.m->fingerprint);
		CHECK(a.m->fingerprint != c.m->fingerprint);
		CHECK_STR(a.m->hp.arch, "llama");
		CHECK_EQ_INT(a.m->hp.rope_neox, 0);
		CHECK_NEAR(a.m->hp.rope_freq_scale, 0.5, 0);
		CHECK_EQ_INT(a.m->hp.tied_output, 0);
		CHECK_EQ_INT(a.m->hp.n_head_kv, 2);
	}
	close_model(&a), close_model(&b), close_model(&c);
}

/* A kv frame whose layer is past the model's last must be refused before
 * anything is copied (a hostile stream appending one more frame). */
static void kv_frame_layer_bounds(void)
{
	loaded l;
	if (open_model(DATA "tiny-llama-f32.gguf", &l) != 0) {
		FAILF("open: %s", weft_errmsg());
		return;
	}
	const int32_t ids[3] = {5, 9, 12};
	weft_kv *kv = weft_kv_new(l.m, 3), *kv2 = weft_kv_new(l.m, 3);
	CHECK(kv && kv2 && weft_model_forward(l.m, tiny_pool, kv, ids, NULL, 3, 0, NULL, 0, NULL) == 0);
	weft_frame *f = kv ? weft_kv_layer_frame(l.m, kv, 1, NULL, 0) : NULL;
	CHECK(f && weft_frame_set(f, WEFT_KEY_LAYER, "2") == 0);
	if (!t_failed) {
		kv2->n_past = 3;
		weft_kv_in in = {.kv = kv2, .next_layer = 2}; /* as after the two real layers */
		CHECK(weft_kv_read(&in, l.m, f) == -1);
		CHECK_STR(weft_errmsg(), "frame 0: kv frame for layer 2, but the model has 2 layers");
		CHECK_EQ_INT(in.next_layer, 2);
	}
	weft_frame_free(f);
	weft_kv_free(kv);
	weft_kv_free(kv2);
	close_model(&l);
}

/* ---- bad input ---- */

enum { NL = 1, D = 32, FF = 64, NH = 4, NKV = 2, HD = 8, NV = 16 };

/* a valid tiny model, with one change (what, per the switch below) */
static uint8_t *build(int what, size_t *len)
{
	gguf_builder b;
	gb_init(&b, 3);
	const char *arch = what == 1 ? "gpt2" : what == 2 || what == 8 ? "qwen2" : "llama";
	char k[96];
	gb_kv_str(&b, "general.architecture", arch);
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
	if (what != 3)
		gb_kv_u32(&b, KEY("block_count"), NL);
	gb_kv_u32(&b, KEY("context_length"), what == 14 ? 0 : 64);
	gb_kv_u32(&b, KEY("embedding_length"), D);
	gb_kv_u32(&b, KEY("feed_forward_length"), FF);
	gb_kv_u32(&b, KEY("attention.head_count"), NH);
	if (what == 4)
		gb_kv_str(&b, KEY("attention.head_count_kv"), "two");
	else
		gb_kv_u32(&b, KEY("attention.head_count_kv"), what == 9 ? 3 : NKV);
	gb_kv_f32(&b, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
	if (what == 5)
		gb_kv_str(&b, KEY("rope.scaling.type"), "yarn");
	if (what == 10)
		gb_kv_u32(&b, KEY("vocab_size"), NV + 1);
#undef KEY
	static float zeros[D * FF * 4];
	const int64_t sh_norm[1] = {D};
	gb_tensor(&b, "token_embd.weight", WEFT_TYPE_F32, 2, (int64_t[]){D, NV}, zeros, 4 * D * NV);
	gb_tensor(&b, "output_norm.weight", WEFT_TYPE_F32, 1, sh_norm, zeros, 4 * D);
	gb_tensor(&b, "blk.0.attn_norm.weight", what == 6 ? WEFT_TYPE_F16 : WEFT_TYPE_F32, 1, sh_norm, zeros,
		  what == 6 ? 2 * D : 4 * D);
	gb_tensor(&b, "blk.0.attn_q.weight", WEFT_TYPE_F32, 2, (int64_t[]){D, NH * HD}, zeros, 4 * D * NH * HD);
	gb_tensor(&b, "blk.0.attn_k.weight", WEFT_TYPE_F32, 2, (int64_t[]){D, what == 7 ? D : NKV * HD}, zeros,
		  4 * D * (what == 7 ? D : NKV * HD));
	gb_tensor(&b, "blk.0.attn_v.weight", WEFT_TYPE_F32, 2, (int64_t[]){D, NKV * HD}, zeros, 4 * D * NKV * HD);
	gb_tensor(&b, "blk.0.attn_output.weight", WEFT_TYPE_F32, 2, (int64_t[]){NH * HD, D}, zeros, 4 * D * NH * HD);
	gb_tensor(&b, "blk.0.ffn_norm.weight", WEFT_TYPE_F32, 1, sh_norm, zeros, 4 * D);
	gb_tensor(&b, "blk.0.ffn_gate.weight", WEFT_TYPE_F32, 2, (int64_t[]){D, FF}, zeros, 4 * D * FF);
	if (what != 11)
		gb_tensor(&b, "blk.0.ffn_up.weight", WEFT_TYPE_F32, 2, (int64_t[]){D, FF}, zeros, 4 * D * FF);
	if (what == 12) /* a type weft cannot multiply by */
		gb_tensor(&b, "blk.0.ffn_down.weight", WEFT_TYPE_I32, 2, (int64_t[]){FF, D}, zeros, 4 * D * FF);
	else
		gb_tensor(&b, "blk.0.ffn_down.weight", WEFT_TYPE_F32, 2, (int64_t[]){FF, D}, zeros, 4 * D * FF);
	if (what == 8) { /* qwen2 with two of its three biases */
		gb_tensor(&b, "blk.0.attn_q.bias", WEFT_TYPE_F32, 1, (int64_t[]){NH * HD}, zeros, 4 * NH * HD);
		gb_tensor(&b, "blk.0.attn_k.bias", WEFT_TYPE_F32, 1, (int64_t[]){NKV * HD}, zeros, 4 * NKV * HD);
	}
	if (what == 13)
		gb_tensor(&b, "output.weight", WEFT_TYPE_F32, 3, (int64_t[]){D, NV, 2}, zeros, 4 * D * NV * 2);
	uint8_t *f = gb_finish(&b, len);
	gb_free(&b);
	return f;
}

static void bad_models(void)
{
	static const char *want[] = {
		NULL,
		"unsupported architecture 'gpt2' (weft runs llama and qwen2)",
		"missing tensor 'blk.0.attn_q.bias'",
		"missing key 'llama.block_count'",
		"key 'llama.attention.head_count_kv': ",
		"unsupported RoPE scaling 'yarn'",
		"tensor 'blk.0.attn_norm.weight': unsupported type f16",
		"tensor 'blk.0.attn_k.weight': shape [32, 32], expected [32, 16]",
		"missing tensor 'blk.0.attn_v.bias'",
		"unsupported hyper-parameters: 1 layers, embedding 32, feed-forward 64, 4 heads, 3 KV heads",
		"tensor 'token_embd.weight': 16 rows, but llama.vocab_size is 17",
		"missing tensor 'blk.0.ffn_up.weight'",
		"tensor 'blk.0.ffn_down.weight': unsupported type i32",
		"tensor 'output.weight': shape [32, 16, 2], expected [32, 16]",
		"key 'llama.context_length' is 0 (a model needs a training context length)",
	};
	for (int what = 0; what < (int)(sizeof want / sizeof *want); what++) {
		size_t n;
		uint8_t *f = build(what, &n);
		weft_gguf *g = weft_gguf_open_mem(f, n);
		if (!g) {
			FAILF("case %d: gguf: %s", what, weft_errmsg());
			free(f);
			continue;
		}
		weft_model *m = weft_model_load(g);
		if (!want[what]) {
			if (!m)
				FAILF("valid model rejected: %s", weft_errmsg());
		} else if (m) {
			FAILF("case %d loaded, expected '%s'", what, want[what]);
		} else if (strncmp(weft_errmsg(), want[what], strlen(want[what])) ||
			   (want[what][strlen(want[what]) - 1] != ' ' && strlen(weft_errmsg()) != strlen(want[what]))) {
			FAILF("case %d: error '%s', expected '%s'", what, weft_errmsg(), want[what]);
		}
		weft_model_free(m);
		weft_gguf_close(g);
		free(f);
	}
}

/* bad calls: exact messages, nothing changed */
static void bad_forward(void)
{
	size_t n;
	uint8_t *f = build(0, &n);
	weft_gguf *g = weft_gguf_open_mem(f, n);
	weft_model *m = g ? weft_model_load(g) : NULL;
	CHECK(m != NULL);
	if (m) {
		weft_kv *kv = weft_kv_new(m, 4);
		float lg[NV];
		int32_t ids[5] = {1, 2, 3, NV, 4};
		CHECK(weft_model_forward(m, tiny_pool, kv, ids, NULL, 5, 0, lg, 0, NULL) == -1);
		CHECK_STR(weft_errmsg(), "forward: token 16 at 3 is outside the vocabulary (16 tokens)");
		ids[3] = 0;
		CHECK(weft_model_forward(m, tiny_pool, kv, ids, NULL, 5, 0, lg, 0, NULL) == -1);
		CHECK_STR(weft_errmsg(), "forward: KV cache full (0 rows held, 5 new, capacity 4)");
		CHECK(weft_model_forward(m, tiny_pool, kv, ids, NULL, 4, 0, lg, 0, NULL) == 0);
		CHECK_EQ_INT(kv->n_past, 4);
		/* zero weights: uniform logits */
		for (int i = 0; i < NV; i++)
			CHECK_NEAR(lg[i], 0, 0);
		weft_kv_free(kv);
	}
	weft_model_free(m);
	weft_gguf_close(g);
	free(f);
}

int main(void)
{
	t_suite = "model";
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	pool = weft_pool_new(nproc < 2 ? 2 : nproc > 4 ? 4 : (int)nproc);
	RUN(f32_vs_transformers);
	RUN(quantized_vs_transformers);
	RUN(kquant_vs_transformers);
	RUN(chunked_prefill);
	RUN(decode_equals_prefill);
	RUN(embeddings_path);
	RUN(extra_outputs);
	RUN(pool_equals_inline);
	RUN(fingerprint_stable);
	RUN(kv_frame_layer_bounds);
	RUN(bad_models);
	RUN(bad_forward);
	weft_pool_free(pool);
	TEST_MAIN_END();
}

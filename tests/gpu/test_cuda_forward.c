/* test_cuda_forward.c - the device-resident forward pass (lib/model_cuda.c)
 * against the CPU path (lib/model_llama.c).  Built only by `make CUDA=1`;
 * without a usable CUDA device every GPU test prints a SKIP line (one test
 * checks the no-device error instead).  Written and compile-checked on
 * machines without a GPU: tests/gpu/run runs it on one.
 *
 * Tolerances (the CPU path is the reference; the GPU sums in another
 * order, so re-quantized activations may flip an int8 rounding, which the
 * CPU parity tests measured near 1e-2 relative for quantized weights):
 *   logits     max |gpu - cpu| <= TOL * max |cpu| over every row, TOL
 *              1e-3 for F32/F16 weights, 3e-2 for quantized ones; and the
 *              arg-max of every row the same unless the CPU's top two are
 *              within 1e-2 * max |cpu| (a near tie)
 *   KV rows    downloaded F32 cache: max |gpu - cpu| <= TOL * max |cpu|;
 *              lengths, positions and n_past identical
 *   SmolLM2    teacher-forced on the CPU's own greedy continuation of the
 *              12 prompts of tests/data/llm/smollm2-greedy.txt: the GPU's
 *              arg-max is the CPU's token at every step, or prefers another
 *              by less than NEAR_TIE (0.5) logits, the rule of
 *              tests/unit/test_llamacpp_parity.c; at least 95% exact;
 *              free-running identical continuations reported. */
#include "test.h"

#include "cuda_int.h"
#include "ggml_types.h"
#include "kernels.h"
#include "model.h"
#include "model_cuda_int.h"
#include "tokenizer.h"
#include "util.h"

#include "model_util.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>

#define DATA "tests/data/llm/"
#define NEAR_TIE 0.5
#define MIN_AGREE 0.95

static int have_dev;
static char why[256];
static weft_pool *pool;

#define NEED_DEV()                                                    \
	do {                                                          \
		if (!have_dev)                                        \
			SKIP("no CUDA device (%s)", why);             \
	} while (0)

static const char *const fixtures[] = {
	"tiny-llama-f32", "tiny-llama-f16", "tiny-llama-q4_0", "tiny-llama-q4_1", "tiny-llama-q8_0",
	"tiny-llama256-q4_k_m", "tiny-qwen2-f32", "tiny-qwen2-f16", "tiny-qwen2-q4_0", "tiny-qwen2-q4_1",
	"tiny-qwen2-q8_0",
};

static float tol_for(const weft_model *m)
{
	const uint32_t t = m->layers[0].wq->type;
	return t == WEFT_TYPE_F32 || t == WEFT_TYPE_F16 ? 1e-3f : 3e-2f;
}

/* rows x nv logits: within tol of the reference, same arg-max up to near
 * ties.  0, or -1 after a FAIL naming what. */
static int close_logits(const char *what, const float *ref, const float *got, int64_t rows, int nv, float tol)
{
	for (int64_t r = 0; r < rows; r++) {
		const float *a = ref + r * nv, *b = got + r * nv;
		float amax = 0, dmax = 0;
		for (int i = 0; i < nv; i++) {
			amax = fmaxf(amax, fabsf(a[i]));
			dmax = fmaxf(dmax, fabsf(a[i] - b[i]));
		}
		if (!(dmax <= tol * amax)) {
			FAILF("%s row %lld: logits differ by %g (bound %g)", what, (long long)r, (double)dmax,
			      (double)(tol * amax));
			return -1;
		}
		const int32_t ia = argmax(a, nv), ib = argmax(b, nv);
		if (ia != ib && a[ia] - a[ib] > 1e-2f * amax) {
			FAILF("%s row %lld: arg-max %d on the GPU, %d on the CPU (margin %g)", what, (long long)r, ib, ia,
			      (double)(a[ia] - a[ib]));
			return -1;
		}
	}
	return 0;
}

/* The downloaded cache against the CPU's: lengths, positions, n_past
 * exactly; rows (F32 caches, or F16 widened) within tol. */
static int close_kv(const char *what, const weft_kv *a, const weft_kv *b, float tol)
{
	if (a->n_past != b->n_past) {
		FAILF("%s: n_past %lld on the GPU, %lld on the CPU", what, (long long)b->n_past, (long long)a->n_past);
		return -1;
	}
	for (int l = 0; l < a->n_layer; l++)
		for (int h = 0; h < a->n_head_kv; h++) {
			const int64_t n = a->len[l * a->n_head_kv + h];
			if (b->len[l * a->n_head_kv + h] != n ||
			    memcmp(weft_kv_pos(a, l, h), weft_kv_pos(b, l, h), sizeof(int32_t) * (size_t)n) != 0) {
				FAILF("%s: layer %d head %d: lengths or positions differ", what, l, h);
				return -1;
			}
			float amax = 0, dmax = 0;
			const int hd = a->head_dim, f16 = a->layer[l].type == WEFT_KV_F16;
			for (int64_t r = 0; r < n; r++)
				for (int kvv = 0; kvv < 2; kvv++) {
					const void *ra = kvv ? weft_kv_vrow(a, l, h, r) : weft_kv_krow(a, l, h, r);
					const void *rb = kvv ? weft_kv_vrow(b, l, h, r) : weft_kv_krow(b, l, h, r);
					for (int i = 0; i < hd; i++) {
						const float x = f16 ? weft_fp16_to_fp32(((const uint16_t *)ra)[i]) : ((const float *)ra)[i];
						const float y = f16 ? weft_fp16_to_fp32(((const uint16_t *)rb)[i]) : ((const float *)rb)[i];
						amax = fmaxf(amax, fabsf(x));
						dmax = fmaxf(dmax, fabsf(x - y));
					}
				}
			if (!(dmax <= tol * amax + (f16 ? 1e-3f * amax : 0))) {
				FAILF("%s: layer %d head %d: cached rows differ by %g (bound %g)", what, l, h, (double)dmax,
				      (double)(tol * amax));
				return -1;
			}
		}
	return 0;
}

/* One fixture, one cache type: T tokens (in chunks of 16; with gapped
 * positions when pos != NULL) on both paths, every row's logits and the
 * cache compared. */
static void one_fixture(const char *name, weft_kv_type kt, const int32_t *pos)
{
	char path[256], what[300];
	snprintf(path, sizeof path, DATA "%s.gguf", name);
	snprintf(what, sizeof what, "%s %s cache%s", name, weft_kv_type_name(kt), pos ? " gapped positions" : "");
	loaded l;
	if (open_model(path, &l) != 0) {
		FAILF("%s: %s", path, weft_errmsg());
		return;
	}
	enum { T = 37 };
	const int nv = l.m->hp.n_vocab;
	int32_t ids[T];
	for (int t = 0; t < T; t++)
		ids[t] = (int32_t)((t * 7919 + 13) % nv);
	weft_fwd_extra ex = {.pos = pos, .pos_span = pos ? pos[T - 1] + 1 : 0};
	float *ref = malloc(sizeof(float) * T * (size_t)nv), *got = malloc(sizeof(float) * T * (size_t)nv);
	weft_kv *kc = weft_kv_new_type(l.m, T + 4, kt), *kg = weft_kv_new_type(l.m, T + 4, kt);
	CHECK(ref && got && kc && kg);
	if (!t_failed) {
		CHECK(weft_model_forward(l.m, pool, kc, ids, NULL, T, 16, ref, 1, pos ? &ex : NULL) == 0);
		if (weft_model_cuda_attach(l.m, kg, 0) != 0)
			FAILF("%s: attach: %s", what, weft_errmsg());
	}
	if (!t_failed) {
		if (weft_model_forward(l.m, pool, kg, ids, NULL, T, 16, got, 1, pos ? &ex : NULL) != 0)
			FAILF("%s: forward: %s", what, weft_errmsg());
		else if (close_logits(what, ref, got, T, nv, tol_for(l.m)) == 0) {
			CHECK(weft_model_cuda_download(kg) == 0);
			close_kv(what, kc, kg, tol_for(l.m));
		}
		weft_model_cuda_detach();
	}
	weft_kv_free(kc);
	weft_kv_free(kg);
	free(ref);
	free(got);
	close_model(&l);
}

static void test_logits_tiny(void)
{
	NEED_DEV();
	int32_t gaps[37];
	for (int t = 0; t < 37; t++)
		gaps[t] = t * 2 + (t > 20 ? 5 : 0);
	int n = 0;
	for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0] && !t_failed; i++) {
		one_fixture(fixtures[i], WEFT_KV_F32, NULL);
		if (!t_failed)
			one_fixture(fixtures[i], WEFT_KV_F16, NULL);
		n++;
	}
	if (!t_failed)
		one_fixture("tiny-qwen2-q8_0", WEFT_KV_F16, gaps);
	if (!t_failed)
		one_fixture("tiny-llama-q4_0", WEFT_KV_F32, gaps);
	printf("# %d tiny models, f32 and f16 caches, 37 tokens in chunks of 16: GPU logits within tolerance\n", n);
}

/* Prefill on the CPU, upload the cache (what decode does with a stream's
 * cache), then decode 6 greedy steps on both paths; and prefill on the GPU,
 * decode there, download: the same cache as the CPU's. */
static void decode_model(const char *name)
{
	char path[256];
	snprintf(path, sizeof path, DATA "%s.gguf", name);
	loaded l;
	if (open_model(path, &l) != 0) {
		FAILF("%s: %s", path, weft_errmsg());
		return;
	}
	enum { P = 20, S = 6 };
	const int nv = l.m->hp.n_vocab;
	const float tol = tol_for(l.m);
	int32_t ids[P];
	for (int t = 0; t < P; t++)
		ids[t] = (int32_t)((t * 104729 + 5) % nv);
	float *lc = malloc(sizeof(float) * (size_t)nv), *lg = malloc(sizeof(float) * (size_t)nv);
	weft_kv *kc = weft_kv_new(l.m, P + S), *kg = weft_kv_new(l.m, P + S);
	CHECK(lc && lg && kc && kg);
	/* prefill on the CPU for both; then the GPU's copy goes up */
	CHECK(!t_failed && weft_model_forward(l.m, pool, kc, ids, NULL, P, 7, lc, 0, NULL) == 0);
	CHECK(!t_failed && weft_model_forward(l.m, pool, kg, ids, NULL, P, 7, lg, 0, NULL) == 0);
	if (!t_failed && weft_model_cuda_attach(l.m, kg, 0) != 0)
		FAILF("%s: attach: %s", name, weft_errmsg());
	for (int s = 0; s < S && !t_failed; s++) {
		int32_t tok = argmax(lc, nv);
		CHECK(weft_model_forward(l.m, pool, kc, &tok, NULL, 1, 1, lc, 0, NULL) == 0);
		if (weft_model_forward(l.m, pool, kg, &tok, NULL, 1, 1, lg, 0, NULL) != 0)
			FAILF("%s step %d: %s", name, s, weft_errmsg());
		char what[300];
		snprintf(what, sizeof what, "%s uploaded cache, decode step %d", name, s);
		if (!t_failed)
			close_logits(what, lc, lg, 1, nv, tol);
	}
	if (!t_failed) {
		CHECK(weft_model_cuda_download(kg) == 0);
		close_kv("decode after upload", kc, kg, tol);
	}
	weft_model_cuda_detach();
	weft_kv_free(kg);
	/* prefill and decode on the GPU from an empty cache */
	kg = weft_kv_new(l.m, P + S);
	CHECK(kg != NULL);
	if (!t_failed && weft_model_cuda_attach(l.m, kg, 0) != 0)
		FAILF("%s: attach: %s", name, weft_errmsg());
	if (!t_failed && weft_model_forward(l.m, pool, kg, ids, NULL, P, 7, lg, 0, NULL) != 0)
		FAILF("%s: GPU prefill: %s", name, weft_errmsg());
	for (int s = 0; s < S && !t_failed; s++) {
		int32_t tok = (int32_t)((s * 31 + 3) % nv);
		if (weft_model_forward(l.m, pool, kg, &tok, NULL, 1, 1, lg, 0, NULL) != 0)
			FAILF("%s step %d: %s", name, s, weft_errmsg());
	}
	weft_kv_free(kc);
	kc = weft_kv_new(l.m, P + S);
	CHECK(kc && weft_model_forward(l.m, pool, kc, ids, NULL, P, 7, lc, 0, NULL) == 0);
	for (int s = 0; s < S && !t_failed; s++) {
		int32_t tok = (int32_t)((s * 31 + 3) % nv);
		CHECK(weft_model_forward(l.m, pool, kc, &tok, NULL, 1, 1, lc, 0, NULL) == 0);
	}
	if (!t_failed) {
		close_logits("GPU prefill + decode, last step", lc, lg, 1, nv, tol);
		CHECK(weft_model_cuda_download(kg) == 0);
		close_kv("GPU prefill + decode", kc, kg, tol);
	}
	weft_model_cuda_detach();
	weft_kv_free(kc);
	weft_kv_free(kg);
	free(lc);
	free(lg);
	close_model(&l);
}

static void test_prefill_decode(void)
{
	NEED_DEV();
	decode_model("tiny-llama-q4_0");
	if (!t_failed)
		decode_model("tiny-qwen2-q8_0");
	if (!t_failed)
		decode_model("tiny-llama256-q4_k_m");
}

/* What the device path refuses, in one line, leaving the cache as it was. */
static void test_refusals(void)
{
	NEED_DEV();
	loaded l;
	CHECK(open_model(DATA "tiny-llama256-q4_k_m.gguf", &l) == 0); /* head size 64: a q8_0 cache */
	if (t_failed)
		return;
	weft_kv *k8 = weft_kv_new_type(l.m, 8, WEFT_KV_Q8_0), *kv = weft_kv_new(l.m, 8);
	CHECK(k8 && kv);
	CHECK_EQ_INT(weft_model_cuda_attach(l.m, k8, 0), -1);
	CHECK(strstr(weft_errmsg(), "q8_0 KV cache is not supported on CUDA") != NULL);
	CHECK_EQ_INT(weft_model_cuda_attach(l.m, kv, 0), 0);
	CHECK_EQ_INT(weft_model_cuda_attach(l.m, kv, 0), -1); /* one at a time */
	float *mass = calloc((size_t)l.m->hp.n_layer * l.m->hp.n_head_kv * 8, sizeof(float));
	weft_fwd_extra ex = {.mass = mass};
	int32_t id = 1;
	CHECK_EQ_INT(weft_model_forward(l.m, pool, kv, &id, NULL, 1, 0, NULL, 0, &ex), -1);
	CHECK(strstr(weft_errmsg(), "not supported on CUDA") != NULL && strchr(weft_errmsg(), '\n') == NULL);
	CHECK_EQ_INT(kv->n_past, 0);
	CHECK_EQ_INT(kv->len[0], 0);
	weft_model_cuda_detach();
	free(mass);
	weft_kv_free(k8);
	weft_kv_free(kv);
	close_model(&l);
}

/* Runs everywhere: without a device, attaching fails with one line. */
static void test_attach_without_device(void)
{
	if (have_dev)
		SKIP("a CUDA device is present");
	loaded l;
	CHECK(open_model(DATA "tiny-llama-f32.gguf", &l) == 0);
	if (t_failed)
		return;
	weft_kv *kv = weft_kv_new(l.m, 8);
	CHECK_EQ_INT(weft_model_cuda_attach(l.m, kv, 0), -1);
	CHECK(strncmp(weft_errmsg(), "cuda: no usable device (", 24) == 0);
	CHECK(!weft_model_cuda_attached(kv));
	int32_t id = 1;
	CHECK_EQ_INT(weft_model_forward(l.m, pool, kv, &id, NULL, 1, 0, NULL, 0, NULL), 0); /* the CPU path */
	weft_kv_free(kv);
	close_model(&l);
}

/* SmolLM2 Q4_1 on the 12 prompts: the CPU's free-running greedy
 * continuation (32 tokens), then the GPU teacher-forced on it. */
static void test_smollm2_greedy(void)
{
	NEED_DEV();
	const char *path = t_smollm2_path();
	if (!path)
		SKIP("SmolLM2 GGUF absent (scripts/fetch-models)");
	char *txt = t_read_file(DATA "smollm2-greedy.txt", NULL);
	loaded l;
	CHECK(txt != NULL);
	if (t_failed || open_model(path, &l) != 0) {
		FAILF("%s: %s", path, weft_errmsg());
		free(txt);
		return;
	}
	enum { G = 32 };
	const int nv = l.m->hp.n_vocab;
	float *lc = malloc(sizeof(float) * (size_t)nv), *lg = malloc(sizeof(float) * (size_t)nv);
	int32_t P[512], cpu[G];
	int nP = 0, n_prompts = 0, n_steps = 0, n_agree = 0, n_free_same = 0;
	double worst = 0;
	char *save = NULL;
	for (char *line = strtok_r(txt, "\n", &save); line && !t_failed; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'P')
			nP = parse_ids(line + 1, P, 512);
		if (line[0] != 'G' || nP <= 0)
			continue;
		/* the CPU's greedy continuation */
		weft_kv *kv = weft_kv_new(l.m, nP + G + 1);
		CHECK(kv && weft_model_forward(l.m, pool, kv, P, NULL, nP, 0, lc, 0, NULL) == 0);
		for (int i = 0; i < G && !t_failed; i++) {
			cpu[i] = argmax(lc, nv);
			CHECK(weft_model_forward(l.m, pool, kv, &cpu[i], NULL, 1, 0, lc, 0, NULL) == 0);
		}
		weft_kv_free(kv);
		/* the GPU, teacher-forced */
		kv = weft_kv_new(l.m, nP + G + 1);
		CHECK(kv && weft_model_cuda_attach(l.m, kv, 0) == 0);
		if (!t_failed && weft_model_forward(l.m, pool, kv, P, NULL, nP, 0, lg, 0, NULL) != 0)
			FAILF("prompt %d: GPU prefill: %s", n_prompts, weft_errmsg());
		for (int i = 0; i < G && !t_failed; i++) {
			const int32_t a = argmax(lg, nv);
			const double margin = (double)lg[a] - lg[cpu[i]];
			n_steps++;
			if (a == cpu[i]) {
				n_agree++;
			} else {
				printf("# smollm2 prompt %d step %d: the GPU prefers %d to the CPU's %d by %.3f logits\n",
				       n_prompts, i, a, cpu[i], margin);
				worst = margin > worst ? margin : worst;
				if (margin >= NEAR_TIE)
					FAILF("prompt %d step %d: the GPU's choice %d beats the CPU's %d by %.3f logits",
					      n_prompts, i, a, cpu[i], margin);
			}
			if (weft_model_forward(l.m, pool, kv, &cpu[i], NULL, 1, 0, lg, 0, NULL) != 0)
				FAILF("prompt %d step %d: %s", n_prompts, i, weft_errmsg());
		}
		weft_model_cuda_detach();
		weft_kv_free(kv);
		/* the GPU free-running: reported */
		kv = weft_kv_new(l.m, nP + G + 1);
		CHECK(kv && weft_model_cuda_attach(l.m, kv, 0) == 0);
		CHECK(!t_failed && weft_model_forward(l.m, pool, kv, P, NULL, nP, 0, lg, 0, NULL) == 0);
		int same = 1;
		for (int i = 0; i < G && !t_failed && same; i++) {
			int32_t a = argmax(lg, nv);
			same = a == cpu[i];
			CHECK(weft_model_forward(l.m, pool, kv, &a, NULL, 1, 0, lg, 0, NULL) == 0);
		}
		n_free_same += same;
		weft_model_cuda_detach();
		weft_kv_free(kv);
		n_prompts++;
	}
	printf("# smollm2 on %s: teacher-forced, the GPU's greedy choice is the CPU's at %d of %d steps (largest "
	       "disagreement %.3f logits, bound %.1f); free-running, %d of %d 32-token continuations identical\n",
	       weft_cuda_device_name(), n_agree, n_steps, worst, NEAR_TIE, n_free_same, n_prompts);
	CHECK(n_prompts >= 10);
	if (n_agree < MIN_AGREE * n_steps)
		FAILF("the GPU agrees with the CPU's greedy choice at only %d of %d steps", n_agree, n_steps);
	free(lc);
	free(lg);
	free(txt);
	close_model(&l);
}

int main(void)
{
	t_suite = "cuda_forward";
	have_dev = weft_cuda_device_count(why, sizeof why) > 0;
	pool = weft_pool_new(0);
	if (have_dev && weft_cuda_init(0)) {
		printf("FAIL cuda_forward.init: %s\n", weft_errmsg());
		return 1;
	}
	if (have_dev)
		printf("# cuda device: %s (CPU reference kernels %s)\n", weft_cuda_device_name(), weft_kernels_level());
	t_run("attach_without_device", test_attach_without_device);
	t_run("logits_tiny", test_logits_tiny);
	t_run("prefill_decode", test_prefill_decode);
	t_run("refusals", test_refusals);
	t_run("smollm2_greedy", test_smollm2_greedy);
	weft_pool_free(pool);
	TEST_MAIN_END();
}

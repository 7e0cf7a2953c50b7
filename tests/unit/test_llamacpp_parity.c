/* test_llamacpp_parity.c - the LLM forward pass against llama.cpp itself.
 * SmolLM2-135M (when fetched): greedy continuations compared with
 * llama.cpp's (tests/data/llm/smollm2-greedy.txt), with weft's kernels
 * (teacher-forced agreement up to near ties) and with the llama.cpp kernel
 * level (token-identical); the tiny Q4_0 / Q4_1 / Q8_0 models' logits bit
 * for bit against llama.cpp's (tests/data/llm/llamacpp-logits.txt). */
#include "ggml_types.h"
#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "tokenizer.h"
#include "util.h"

#include "model_util.h"
#include "test.h"

#include <jansson.h>
#include <stdint.h>
#include <unistd.h>

#define DATA "tests/data/llm/"

static weft_pool *pool;

/* ---- SmolLM2 vs llama.cpp ---- */

/* Teacher-forced disagreements larger than this many logits fail the test.
 * The noise floor, measured (2026-11-23) on these 384 steps: llama.cpp with
 * flash attention off agrees with its own flash-attention-on fixture at
 * 375/384 steps, worst margin 0.237; weft 370/384 (worst 0.33) on AVX-512,
 * 375/384 (0.26) scalar, 0.44 worst on AVX2.  Differences start as last-bit
 * summation-order effects that flip an int8 rounding when activations are
 * re-quantized (Q8_1/Q8_0) and settle near 1e-2 relative by layer 3, in
 * llama.cpp against itself as in weft.  A real bug (wrong RoPE, norm,
 * quantization) moves logits by whole units. */
#define NEAR_TIE 0.5
/* At least this fraction of teacher-forced steps must agree exactly. */
#define MIN_AGREE 0.95
/* SmolLM2 against llama.cpp's greedy continuations (12 prompts, 32 tokens).
 *
 * With weft's own kernels, free-running token identity is reported, not
 * asserted: with a 135M Q4_1 model many steps are near ties that 1-ulp
 * summation-order differences flip (llama.cpp itself changes 7 of these 12
 * continuations when its flash attention is switched off), after which the
 * two continuations go separate ways.  What is asserted is teacher-forced
 * agreement: fed llama.cpp's own tokens, weft's arg-max is llama.cpp's
 * choice at every step, or weft prefers another token by less than
 * NEAR_TIE logits (WEFT_STRICT_PARITY=1: no ties).
 *
 * With the llama.cpp kernel level (exact != 0), which reproduces
 * llama.cpp's arithmetic, every step must agree and every free-running
 * continuation must be token-identical. */
static void greedy_vs_llama_cpp(int exact)
{
	const char *path = t_smollm2_path();
	if (!path)
		SKIP("SmolLM2 GGUF absent (scripts/fetch-models)");
	if (exact && weft_kernels_force("llama.cpp") != 0)
		SKIP("this CPU lacks the AVX-512 level whose llama.cpp build the llama.cpp level reproduces");
	char *txt = t_read_file(DATA "smollm2-greedy.txt", NULL);
	loaded l;
	CHECK(txt != NULL);
	if (t_failed || open_model(path, &l) != 0) {
		FAILF("%s: %s", path, weft_errmsg());
		free(txt);
		return;
	}
	weft_vocab *voc = weft_vocab_load(l.g);
	CHECK(voc != NULL);
	const int nv = l.m->hp.n_vocab,
		  strict = exact || (getenv("WEFT_STRICT_PARITY") && atoi(getenv("WEFT_STRICT_PARITY")));
	float *lg = malloc(sizeof(float) * (size_t)nv);
	int32_t P[512], G[64];
	int nP = 0, nG = 0, n_prompts = 0, n_free_same = 0, n_steps = 0, n_agree = 0, seen = 0, stride = 1;
#if defined(__SANITIZE_ADDRESS__)
	stride = 3; /* a third of the prompts under ASan: the same code paths, a third of the time */
#endif
	double worst = 0;
	char *text = NULL, *save = NULL;
	for (char *line = strtok_r(txt, "\n", &save); line && !t_failed; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'T' && line[1] == ' ') {
			free(text);
			json_t *j = json_loads(line + 2, JSON_DECODE_ANY, NULL);
			text = j && json_is_string(j) ? strdup(json_string_value(j)) : NULL;
			json_decref(j);
		} else if (line[0] == 'P') {
			nP = parse_ids(line + 1, P, 512);
		} else if (line[0] == 'G') {
			nG = parse_ids(line + 1, G, 64);
			CHECK(text && nP > 0 && nG == 32);
			if (t_failed)
				break;
			if (seen++ % stride)
				continue;
			/* weft's tokenizer gives llama.cpp's prompt ids */
			int32_t *ids = NULL;
			size_t n = 0, cap = 0;
			CHECK(weft_tokenize(voc, text, strlen(text), 1, &ids, &n, &cap) == 0);
			CHECK(n == (size_t)nP && memcmp(ids, P, sizeof(int32_t) * n) == 0);
			free(ids);
			/* teacher-forced: feed llama.cpp's tokens, compare choices */
			weft_kv *kv = weft_kv_new(l.m, nP + nG);
			CHECK(weft_model_forward(l.m, pool, kv, P, NULL, nP, 0, lg, 0, NULL) == 0);
			for (int i = 0; i < nG && !t_failed; i++) {
				int32_t a = argmax(lg, nv);
				double margin = (double)lg[a] - lg[G[i]];
				n_steps++;
				if (a == G[i]) {
					n_agree++;
				} else {
					printf("# smollm2 prompt %d step %d: weft prefers %d to llama.cpp's %d by %.3f logits\n",
					       n_prompts, i, a, G[i], margin);
					if (margin > worst)
						worst = margin;
					if (margin >= NEAR_TIE || strict)
						FAILF("prompt %d step %d: weft's choice %d beats llama.cpp's %d by %.3f logits",
						      n_prompts, i, a, G[i], margin);
				}
				CHECK(weft_model_forward(l.m, pool, kv, &G[i], NULL, 1, 0, lg, 0, NULL) == 0);
			}
			weft_kv_free(kv);
			/* free-running: reported */
			kv = weft_kv_new(l.m, nP + nG);
			CHECK(weft_model_forward(l.m, pool, kv, P, NULL, nP, 0, lg, 0, NULL) == 0);
			int same = 1;
			for (int i = 0; i < nG && !t_failed && same; i++) {
				int32_t a = argmax(lg, nv);
				same = a == G[i];
				CHECK(weft_model_forward(l.m, pool, kv, &a, NULL, 1, 0, lg, 0, NULL) == 0);
			}
			n_free_same += same;
			weft_kv_free(kv);
			n_prompts++;
		}
	}
	printf("# smollm2 (%s kernels): teacher-forced, weft's greedy choice is llama.cpp's at %d of %d steps "
	       "(largest disagreement %.3f logits, bound %.1f); free-running, %d of %d 32-token continuations "
	       "identical\n",
	       weft_kernels_level(), n_agree, n_steps, worst, strict ? 0.0 : NEAR_TIE, n_free_same, n_prompts);
	CHECK(n_prompts * stride >= 10);
	if (exact && n_free_same != n_prompts)
		FAILF("llama.cpp numerics: %d of %d continuations differ from llama.cpp's", n_prompts - n_free_same,
		      n_prompts);
	if (n_agree < MIN_AGREE * n_steps)
		FAILF("weft agrees with llama.cpp's greedy choice at only %d of %d steps", n_agree, n_steps);
	free(text);
	free(lg);
	free(txt);
	weft_vocab_free(voc);
	close_model(&l);
}

/* The llama.cpp kernel level against llama.cpp's own logits for the tiny
 * Q4_0 / Q4_1 / Q8_0 Llama and Qwen2 models (tests/data/llm/llamacpp-logits.txt,
 * from scripts/gen-llamacpp-fixtures): prompts under and over 64 tokens
 * (llama.cpp's two attention kernels), then single decode steps; every
 * logit bit for bit.  Runs without the SmolLM2 download. */
static void llamacpp_logits_tiny(void)
{
	if (weft_kernels_force("llama.cpp") != 0)
		SKIP("this CPU lacks the AVX-512 level whose llama.cpp build the llama.cpp level reproduces");
	char *txt = t_read_file(DATA "llamacpp-logits.txt", NULL);
	CHECK(txt != NULL);
	char model[256] = "";
	int np = 0, n = 0, n_cases = 0;
	int32_t ids[128];
	char *save = NULL;
	for (char *line = txt ? strtok_r(txt, "\n", &save) : NULL; line && !t_failed; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'C') {
			CHECK(sscanf(line, "C %200s %d %d", model, &np, &n) == 3 && np >= 1 && np <= n && n <= 128);
		} else if (line[0] == 'I') {
			CHECK(parse_ids(line + 1, ids, 128) == n);
		} else if (line[0] == 'L' && !t_failed) {
			char path[300];
			snprintf(path, sizeof path, DATA "%s", model);
			loaded l;
			if (open_model(path, &l) != 0) {
				FAILF("%s: %s", path, weft_errmsg());
				break;
			}
			const int nv = l.m->hp.n_vocab;
			float *want = malloc(sizeof(float) * (size_t)nv), *got = malloc(sizeof(float) * (size_t)nv);
			const char *q = line + 1;
			char *end;
			int k = 0;
			for (; k < nv; k++, q = end) {
				want[k] = strtof(q, &end);
				if (end == q)
					break;
			}
			CHECK(k == nv);
			weft_kv *kv = weft_kv_new(l.m, n);
			CHECK(weft_model_forward(l.m, pool, kv, ids, NULL, np, 0, got, 0, NULL) == 0);
			for (int i = np; i < n; i++)
				CHECK(weft_model_forward(l.m, pool, kv, ids + i, NULL, 1, 0, got, 0, NULL) == 0);
			int diff = 0;
			for (int i = 0; i < nv; i++)
				diff += memcmp(&got[i], &want[i], sizeof(float)) != 0;
			if (diff)
				FAILF("%s, %d prompt tokens + %d steps: %d of %d logits differ from llama.cpp's", model, np,
				      n - np, diff, nv);
			n_cases++;
			weft_kv_free(kv);
			free(want), free(got);
			close_model(&l);
		}
	}
	printf("# llama.cpp level: %d tiny-model cases bit-identical to llama.cpp's logits\n", n_cases);
	CHECK(n_cases >= 8);
	free(txt);
	weft_kernels_force(NULL);
}

static void smollm2_greedy_vs_llama_cpp(void) { greedy_vs_llama_cpp(0); }
static void smollm2_llamacpp_numerics(void)
{
	greedy_vs_llama_cpp(1);
	weft_kernels_force(NULL); /* back to the CPU's best level */
}

int main(void)
{
	t_suite = "model";
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	pool = weft_pool_new(nproc < 2 ? 2 : nproc > 4 ? 4 : (int)nproc);
	RUN(smollm2_greedy_vs_llama_cpp);
	RUN(smollm2_llamacpp_numerics);
	RUN(llamacpp_logits_tiny);
	weft_pool_free(pool);
	TEST_MAIN_END();
}

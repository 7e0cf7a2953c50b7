/* test_prune_llm.c - pruning inside the LLM and kept positions, against
 * transformers (tests/data/prune/llm.wst from scripts/gen-prune-fixtures.py:
 * the committed tiny LLaVA language model run layer by layer in float32,
 * each method's drop restated from its repository): with the F32 KV cache,
 * the last token's logits within 1e-4 and the image rows left after the
 * drops identical. */
#include <stdint.h>

#include "ggml_types.h"
#include "gguf.h"
#include "model.h"
#include "prune.h"
#include "stream.h"
#include "test.h"
#include "util.h"

static weft_gguf *g;
static weft_model *m;

static int load(void)
{
	if (m)
		return 0;
	if (!(g = weft_gguf_open("tests/data/vlm/tiny-llava-llm-f32.gguf")) || !(m = weft_model_load(g)))
		return -1;
	return 0;
}

/* Run ids/image (rows for -1 ids) with the drop of o (method "none": no
 * drop; pos: explicit positions) and compare with the frame's logits and
 * kept image rows (input indices). */
static void check_case(const int32_t *ids, int64_t T, const float *image, const weft_frame *e, const int32_t *pos,
		       int64_t span)
{
	const char *method = weft_frame_get(e, "weft.method");
	const weft_tensor *lt = weft_frame_tensor(e, "logits"), *kt = weft_frame_tensor(e, "kept");
	const int64_t d = m->hp.n_embd, V = m->hp.n_vocab;
	float *x = malloc(sizeof(float) * (size_t)(T * d)), *logits = malloc(sizeof(float) * (size_t)V);
	const uint64_t rb = weft_type_row_bytes(m->tok_embd->type, (uint64_t)d);
	int64_t r = 0;
	for (int64_t t = 0; t < T; t++) {
		if (ids[t] >= 0)
			weft_dequantize_row(m->tok_embd->type, (const uint8_t *)m->tok_embd->data + rb * (uint64_t)ids[t],
					    x + t * d, d);
		else
			memcpy(x + t * d, image + (r++) * d, sizeof(float) * (size_t)d);
	}
	weft_kv *kv = weft_kv_new_type(m, T, WEFT_KV_F32);
	weft_fwd_extra extra = {.pos = pos, .pos_span = span};
	weft_prune_llm *dl = NULL;
	if (strcmp(method, "none") && strcmp(method, "positions")) {
		weft_prune_opts o = {.method = method, .keep = atoi(weft_frame_get(e, "weft.keep")),
				     .params = weft_frame_get(e, "weft.params")};
		weft_prompt p = {.ids = (int32_t *)ids, .n = T};
		if (!(dl = weft_prune_llm_new(&o, m, &p))) {
			FAILF("%s: %s", method, weft_errmsg());
			goto out;
		}
		weft_prune_llm_attach(dl, &extra);
	}
	if (weft_model_forward(m, NULL, kv, NULL, x, T, 0, logits, 0, &extra) != 0) {
		FAILF("%s: forward: %s", method, weft_errmsg());
		goto out;
	}
	double mx = 0, scale = 0;
	for (int64_t v = 0; v < V; v++) {
		const double a = fabs(((const float *)lt->data)[v]);
		scale = a > scale ? a : scale;
		const double err = fabs(logits[v] - ((const float *)lt->data)[v]);
		mx = err > mx ? err : mx;
	}
	if (mx / (scale > 1 ? scale : 1) > 1e-4)
		FAILF("%s %s: logits differ from transformers' by %g (scale %g)", method, weft_frame_get(e, "weft.params"),
		      mx, scale);
	/* the image rows the last layer holds (head 0), by position */
	if (kt->nelem) {
		const int l = m->hp.n_layer - 1;
		int64_t k = 0;
		for (int32_t j = 0; j < kv->len[l * kv->n_head_kv]; j++) {
			const int32_t p = kv->layer[l].pos[j];
			if (ids[p] >= 0)
				continue;
			if (k >= (int64_t)kt->nelem || ((const int32_t *)kt->data)[k] != p)
				FAILF("%s: image row %lld at position %d, transformers keeps %d", method, (long long)k, p,
				      k < (int64_t)kt->nelem ? ((const int32_t *)kt->data)[k] : -1);
			k++;
		}
		if (k != (int64_t)kt->nelem)
			FAILF("%s: %lld image rows left, transformers leaves %llu", method, (long long)k,
			      (unsigned long long)kt->nelem);
	}
	if (!t_failed)
		printf("# %s %s: max logit error %.2g (scale %.3g)\n", method, weft_frame_get(e, "weft.params"), mx, scale);
out:
	weft_prune_llm_free(dl);
	weft_kv_free(kv);
	free(x);
	free(logits);
}

static void against_transformers(void)
{
	if (load() != 0)
		SKIP("tests/data/vlm/tiny-llava-llm-f32.gguf absent or unreadable");
	FILE *f = fopen("tests/data/prune/llm.wst", "rb");
	if (!f)
		SKIP("tests/data/prune/llm.wst absent (scripts/gen-prune-fixtures.py)");
	weft_reader *r = weft_reader_new(f);
	weft_frame *fr, *in = NULL, *posf = NULL;
	int cases = 0;
	while (weft_reader_next(r, &fr) == 1) {
		const char *k = weft_frame_kind(fr);
		if (strcmp(k, "llm_input") == 0) {
			in = fr;
			continue;
		}
		if (strcmp(k, "llm_positions") == 0) {
			posf = fr;
			continue;
		}
		const weft_tensor *it = weft_frame_tensor(in, "ids"), *im = weft_frame_tensor(in, "image");
		const int32_t *ids = it->data;
		const int64_t T = (int64_t)it->nelem;
		if (strcmp(weft_frame_get(fr, "weft.method"), "positions") == 0) {
			/* the kept image rows at their own positions, the rest as they stand */
			const weft_tensor *kp = weft_frame_tensor(posf, "kept");
			int32_t *sid = malloc(sizeof(int32_t) * (size_t)T), *pos = malloc(sizeof(int32_t) * (size_t)T);
			float *simg = malloc(sizeof(float) * (size_t)(im->shape[0] * im->shape[1]));
			int64_t n = 0, ni = 0, first = -1;
			for (int64_t t = 0; t < T; t++) {
				if (ids[t] < 0 && first < 0)
					first = t;
				int take = ids[t] >= 0;
				for (uint64_t q = 0; !take && q < kp->nelem; q++)
					take = ((const int32_t *)kp->data)[q] == t - first;
				if (!take)
					continue;
				if (ids[t] < 0)
					memcpy(simg + (ni++) * im->shape[1], (const float *)im->data + (t - first) * im->shape[1],
					       sizeof(float) * (size_t)im->shape[1]);
				sid[n] = ids[t];
				pos[n++] = (int32_t)t;
			}
			check_case(sid, n, simg, fr, pos, T);
			free(sid), free(pos), free(simg);
		} else {
			check_case(ids, T, im->data, fr, NULL, 0);
		}
		cases++;
		weft_frame_free(fr);
		if (t_failed)
			break;
	}
	weft_frame_free(in);
	weft_frame_free(posf);
	weft_reader_free(r);
	fclose(f);
	if (!t_failed && cases < 7)
		FAILF("only %d cases in llm.wst", cases);
}

/* The drop hook's contract: the last row stays; a prompt without images
 * runs unchanged; a layer beyond the model is refused. */
static void contract(void)
{
	if (load() != 0)
		SKIP("tests/data/vlm/tiny-llava-llm-f32.gguf absent");
	int32_t ids[8] = {1, 5, 6, 7, 8, 9, 10, 11};
	weft_prompt p = {.ids = ids, .n = 8};
	weft_prune_opts o = {.method = "fastv", .params = "layer=1"};
	weft_prune_llm *d = weft_prune_llm_new(&o, m, &p);
	CHECK(d != NULL);
	weft_fwd_extra extra = {0};
	weft_prune_llm_attach(d, &extra);
	CHECK(extra.drop == NULL); /* no visual tokens: nothing to drop, chunking kept */
	weft_prune_llm_free(d);
	o.params = "layer=2";
	CHECK(weft_prune_llm_new(&o, m, &p) == NULL && strstr(weft_errmsg(), "layer 2 is not a layer between 1 and 1"));
	o = (weft_prune_opts){.method = "sparsevlm", .params = "after=1"};
	CHECK(weft_prune_llm_new(&o, m, &p) == NULL && strstr(weft_errmsg(), "after 1 is not a layer between 0 and 0"));
	o = (weft_prune_opts){.method = "cls", .keep = 4};
	CHECK(weft_prune_llm_new(&o, m, &p) == NULL && strstr(weft_errmsg(), "does not act inside the LLM"));
}

int main(void)
{
	t_suite = "prune_llm";
	RUN(against_transformers);
	RUN(contract);
	weft_model_free(m);
	weft_gguf_close(g);
	TEST_MAIN_END();
}

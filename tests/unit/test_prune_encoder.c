/* test_prune_encoder.c - the encoder's pruning statistics (encode-image
 * --stats: the last block's keys, attention received per block) and FlowCut
 * inside the vision encoder, against a
 * float64 torch restatement of the CLIP tower with the authors' FlowCut
 * steps (tests/data/prune/flowcut.wst and flowcut-mmproj.gguf from
 * scripts/gen-prune-fixtures.py): kept patches identical, projected rows
 * within 1e-4 (float32 through 6 blocks); budgets that take 1, 2 and 3
 * adaptive steps. */
#include <stdint.h>

#include "gguf.h"
#include "stream.h"
#include "test.h"
#include "util.h"
#include "vision.h"

static void flowcut_vs_reference(void)
{
	weft_gguf *g = weft_gguf_open("tests/data/prune/flowcut-mmproj.gguf");
	weft_vision *v = g ? weft_vision_load(g) : NULL;
	FILE *f = fopen("tests/data/prune/flowcut.wst", "rb");
	if (!v || !f) {
		if (f)
			fclose(f);
		weft_vision_free(v);
		weft_gguf_close(g);
		SKIP("tests/data/prune/flowcut-mmproj.gguf or flowcut.wst absent (scripts/gen-prune-fixtures.py)");
	}
	CHECK_EQ_INT(v->hp.n_layer_run, 6);
	CHECK_EQ_INT(v->hp.n_patches, 36);
	weft_reader *r = weft_reader_new(f);
	weft_frame *fr, *in = NULL;
	int cases = 0;
	double worst = 0;
	while (!t_failed && weft_reader_next(r, &fr) == 1) {
		if (strcmp(weft_frame_kind(fr), "flowcut_input") == 0) {
			in = fr;
			continue;
		}
		if (strcmp(weft_frame_kind(fr), "stats_expect") == 0) {
			const weft_tensor *ek = weft_frame_tensor(fr, "keys"), *er = weft_frame_tensor(fr, "attn_recv");
			float embd[36 * 48], keys[36 * 32], recv[6 * 36], sal[6 * 36];
			weft_vision_out out = {.embd = embd, .saliency = sal, .keys = keys, .attn_recv = recv};
			CHECK(weft_vision_encode(v, NULL, weft_frame_tensor(in, "pixels")->data, 1, &out) == 0);
			double wk = 0, wr = 0;
			for (int i = 0; i < 36 * 32; i++) {
				const double b = ((const float *)ek->data)[i], e = fabs(keys[i] - b) / (fabs(b) > 1 ? fabs(b) : 1);
				wk = e > wk ? e : wk;
			}
			for (int i = 0; i < 6 * 36; i++) {
				const double b = ((const float *)er->data)[i], e = fabs(recv[i] - b) / fabs(b);
				wr = e > wr ? e : wr;
			}
			if (wk > 1e-4 || wr > 1e-4)
				FAILF("statistics differ from the reference: keys %g, attention received %g (relative)", wk, wr);
			else
				printf("# --stats: keys within %.2g, attention received within %.2g (relative)\n", wk, wr);
			weft_frame_free(fr);
			continue;
		}
		const int keep = atoi(weft_frame_get(fr, "weft.keep"));
		const weft_tensor *ek = weft_frame_tensor(fr, "kept"), *ee = weft_frame_tensor(fr, "embd");
		const int64_t dout = v->hp.n_embd_out;
		float *embd = malloc(sizeof(float) * (size_t)(keep * dout));
		int32_t *kept = malloc(sizeof(int32_t) * (size_t)keep);
		weft_vision_out out = {.embd = embd, .flowcut = keep, .kept = kept};
		if (weft_vision_encode(v, NULL, weft_frame_tensor(in, "pixels")->data, 1, &out) != 0) {
			FAILF("keep %d: %s", keep, weft_errmsg());
		} else {
			for (int i = 0; i < keep; i++)
				if ((int64_t)ek->nelem != keep || kept[i] != ((const int32_t *)ek->data)[i])
					FAILF("keep %d: kept patch %d is %d, the reference's %d", keep, i, kept[i],
					      i < (int)ek->nelem ? ((const int32_t *)ek->data)[i] : -1);
			for (int64_t i = 0; !t_failed && i < keep * dout; i++) {
				const double b = ((const float *)ee->data)[i], e = fabs(embd[i] - b) / (fabs(b) > 1 ? fabs(b) : 1);
				worst = e > worst ? e : worst;
				if (e > 1e-4)
					FAILF("keep %d: value %lld is %g, the reference's %g", keep, (long long)i, embd[i], b);
			}
		}
		free(embd), free(kept);
		weft_frame_free(fr);
		cases++;
	}
	if (!t_failed)
		printf("# %d budgets, worst relative error of the projected rows %.2g\n", cases, worst);
	if (!t_failed && cases != 3)
		FAILF("%d cases in flowcut.wst, expected 3", cases);
	weft_frame_free(in);
	weft_reader_free(r);
	fclose(f);
	/* a budget the encoder cannot take */
	float e1[36 * 48];
	int32_t k1[36];
	weft_vision_out bad = {.embd = e1, .flowcut = 36, .kept = k1};
	float px[3 * 84 * 84] = {0};
	CHECK(weft_vision_encode(v, NULL, px, 1, &bad) != 0 && strstr(weft_errmsg(), "36 patches asked of 36"));
	weft_vision_free(v);
	weft_gguf_close(g);
}

int main(void)
{
	t_suite = "prune_encoder";
	RUN(flowcut_vs_reference);
	TEST_MAIN_END();
}

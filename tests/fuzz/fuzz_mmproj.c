/* fuzz_mmproj.c - libFuzzer harness for the vision-model loader and its
 * forward pass on hostile mmproj files.
 *
 * Opens the input as a GGUF, binds it with weft_vision_load (every failure
 * must leave a one-line message) and, when it loads and is small enough to
 * run quickly, encodes one mid-grey image with saliency, checking that the
 * outputs are written in full.  Seeds: tests/fuzz/seeds/mmproj
 * (make-seeds.py). */
#include "gguf.h"
#include "kernels.h"
#include "util.h"
#include "vision.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1); /* exact size: ASan sees overreads */
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	weft_gguf *g = weft_gguf_open_mem(buf, size);
	weft_vision *v = g ? weft_vision_load(g) : NULL;
	if (!v) {
		const char *m = weft_errmsg();
		if (!m[0] || strchr(m, '\n'))
			abort();
		weft_gguf_close(g);
		free(buf);
		return 0;
	}
	const weft_vision_hparams *hp = &v->hp;
	weft_preproc pp = weft_vision_preproc(v);
	if (pp.size != hp->image_size)
		abort();
	/* run only shapes that take microseconds */
	if ((int64_t)hp->n_pos * hp->n_embd <= 4096 && (int64_t)hp->n_pos * hp->n_ff <= 8192 && hp->n_layer_run <= 4 &&
	    (int64_t)hp->n_tokens * hp->n_embd_out <= 4096 && hp->image_size <= 64) {
		size_t npx = (size_t)3 * hp->image_size * hp->image_size;
		size_t ne = (size_t)hp->n_tokens * hp->n_embd_out, ns = (size_t)hp->n_layer_run * hp->n_patches;
		float *px = malloc(npx * sizeof(float));
		weft_vision_out out = {malloc(ne * sizeof(float) + 1), malloc(ns * sizeof(float) + 1)};
		if (px && out.embd && out.saliency) {
			for (size_t i = 0; i < npx; i++)
				px[i] = 0.25f;
			if (weft_vision_encode(v, NULL, px, 1, &out) != 0) {
				const char *m = weft_errmsg();
				if (!m[0] || strchr(m, '\n'))
					abort();
			}
		}
		free(px);
		free(out.embd);
		free(out.saliency);
	}
	weft_vision_free(v);
	weft_gguf_close(g);
	free(buf);
	return 0;
}

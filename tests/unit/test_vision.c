/* test_vision.c - the vision encoders (lib/vision.c) against transformers.
 *
 * Fixtures (scripts/gen-vlm-fixtures.py, tests/data/vlm): tiny random-init
 * LlavaForConditionalGeneration and Idefics3ForConditionalGeneration, their
 * mmproj files written by llama.cpp's own converters, and .vref files with
 * what transformers computes for real images from ../shared: the pixel
 * tensors, the projected image embeddings, the per-layer attention
 * saliency and the LLM's logits over the prompt with the image spliced in.
 * Bounds: pixels bit-exact (CRC-32); embeddings, saliency and logits within
 * 1e-4 of the reference's largest magnitude with F32 weights: logits with
 * weft's F32 KV cache against plain float32, and with the default F16 cache
 * against the reference whose K/V are rounded to F16 the same way. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ggml_types.h"
#include "gguf.h"
#include "image.h"
#include "model.h"
#include "test.h"
#include "util.h"
#include "vision.h"
#include "vlm_ref.h"

#define DATA "tests/data/vlm/"

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, int64_t n)
{
	double m = 0, d = 0;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - b[i]);
		if (!(e <= d))
			d = e;
		if (fabs(b[i]) > m)
			m = fabs(b[i]);
	}
	return m > 0 ? d / m : d;
}

/* Run one family's fixture: every image in the .vref. */
static void check_family(const char *fam, const char *mmproj_file, double tol_embd, double tol_logits)
{
	const char *shared = t_shared_dir();
	if (!shared)
		SKIP("../shared absent (real images)");
	char path[512];
	snprintf(path, sizeof path, DATA "tiny-%s.vref", fam);
	vref ref;
	if (vref_load(path, &ref) != 0)
		SKIP("%.200s absent (scripts/gen-vlm-fixtures.py)", path);
	snprintf(path, sizeof path, DATA "%s", mmproj_file);
	weft_gguf *g = weft_gguf_open(path);
	weft_vision *v = g ? weft_vision_load(g) : NULL;
	snprintf(path, sizeof path, DATA "tiny-%s-llm-f32.gguf", fam);
	weft_gguf *lg = weft_gguf_open(path);
	weft_model *m = lg ? weft_model_load(lg) : NULL;
	weft_pool *pool = weft_pool_new(2);
	if (!v || !m) {
		FAILF("load: %s", weft_errmsg());
		goto done;
	}
	const weft_vision_hparams *hp = &v->hp;
	const vref_rec *nl = vref_get(&ref, "meta/n_layer_run"), *itok = vref_get(&ref, "meta/image_token_id");
	CHECK(nl && itok);
	if (nl)
		CHECK_EQ_INT(hp->n_layer_run, ((int32_t *)nl->data)[0]);
	CHECK_EQ_INT(hp->n_embd_out, m->hp.n_embd);
	int n_images = 0;
	int n_px_bad = 0;
	double worst_embd = 0, worst_sal = 0, worst_logit = 0, worst_logit16 = 0;
	for (int i = 0; i < ref.n && !t_failed; i++) {
		const char *slash = strrchr(ref.r[i].name, '/');
		if (!slash || strcmp(slash, "/pixels_shape") != 0)
			continue;
		char img[128], key[192];
		snprintf(img, sizeof img, "%.*s", (int)(slash - ref.r[i].name), ref.r[i].name);
		const vref_rec *pshape = &ref.r[i];
#define REC(k) (snprintf(key, sizeof key, "%s/" k, img), vref_get(&ref, key))
		const vref_rec *embd = REC("embd"), *sal = REC("saliency"), *ids = REC("ids"), *lgt = REC("logits"),
			       *lgh = REC("logits_f16kv"), *rc = REC("rows_cols"), *pcrc = REC("pixels_crc32");
		if (!embd || !sal || !ids || !lgt || !lgh || !rc || !pcrc || pshape->n != 4 || lgh->n != lgt->n) {
			FAILF("%s: incomplete reference", img);
			break;
		}
		n_images++;
		/* pixels: the decoder flags of the reference pipelines
		 * (LLaVA: convert("RGB"); Idefics3: alpha onto white; no EXIF) */
		char ipath[4400];
		snprintf(ipath, sizeof ipath, "%s/%s", shared, img);
		weft_image_opts o = {.flags = WEFT_IMAGE_NO_EXIF |
					      (hp->proj == WEFT_PROJ_MLP ? WEFT_IMAGE_ALPHA_DROP : 0)};
		weft_image *im = weft_image_load(ipath, &o);
		weft_preproc pp = weft_vision_preproc(v);
		weft_pixels pix = {0};
		if (!im || weft_preprocess(im, &pp, &pix) != 0) {
			FAILF("%s: %s", img, weft_errmsg());
			weft_image_free(im);
			break;
		}
		weft_image_free(im);
		const int n_tiles = pix.n;
		const int32_t *ps = pshape->data;
		if (ps[0] != n_tiles || ps[1] != 3 || ps[2] != pix.h || ps[3] != pix.w) {
			FAILF("%s: %d tiles of %dx%d, reference %d of %dx%d", img, n_tiles, pix.h, pix.w, ps[0], ps[2], ps[3]);
			weft_pixels_free(&pix);
			break;
		}
		CHECK_EQ_INT(pix.rows, ((int32_t *)rc->data)[0]);
		CHECK_EQ_INT(pix.cols, ((int32_t *)rc->data)[1]);
		/* bit-exact preprocessing: the CRC-32 of the float32 bytes */
		const uLong crc = crc32(0L, (const Bytef *)pix.data, (uInt)((size_t)n_tiles * 3 * pix.h * pix.w * sizeof(float)));
		if ((uint32_t)crc != (uint32_t)((int32_t *)pcrc->data)[0])
			n_px_bad++;
		double e;
		const int64_t ne = (int64_t)n_tiles * hp->n_tokens * hp->n_embd_out;
		const int64_t ns = (int64_t)n_tiles * hp->n_layer_run * hp->n_patches;
		weft_vision_out out = {.embd = malloc(sizeof(float) * ne), .saliency = malloc(sizeof(float) * ns)};
		if (embd->n != ne || sal->n != ns) {
			FAILF("%s: reference shapes (embd %lld, saliency %lld) differ from weft's (%lld, %lld)", img,
			      (long long)embd->n, (long long)sal->n, (long long)ne, (long long)ns);
		} else if (weft_vision_encode(v, pool, pix.data, n_tiles, &out) != 0) {
			FAILF("%s: encode: %s", img, weft_errmsg());
		} else {
			e = rel_err(out.embd, embd->data, ne);
			worst_embd = e > worst_embd ? e : worst_embd;
			e = rel_err(out.saliency, sal->data, ns);
			worst_sal = e > worst_sal ? e : worst_sal;
		}
		weft_pixels_free(&pix);

		/* logits: the prompt's token embeddings with the image rows
		 * spliced in at the image-token positions, in order */
		const int64_t T = ids->n, d = m->hp.n_embd;
		const int32_t *id = ids->data;
		float *x = malloc(sizeof(float) * T * d), *logits = malloc(sizeof(float) * T * m->hp.n_vocab);
		int64_t next = 0;
		const uint64_t rb = weft_type_row_bytes(m->tok_embd->type, (uint64_t)d);
		for (int64_t t = 0; t < T && !t_failed; t++) {
			if (id[t] == ((int32_t *)itok->data)[0]) {
				if (next >= (int64_t)n_tiles * hp->n_tokens) {
					FAILF("%s: more image tokens than embeddings", img);
					break;
				}
				memcpy(x + t * d, out.embd + next++ * d, sizeof(float) * d);
			} else {
				CHECK(id[t] >= 0 && id[t] < m->hp.n_vocab);
				weft_dequantize_row(m->tok_embd->type, (const uint8_t *)m->tok_embd->data + rb * (uint64_t)id[t],
						    x + t * d, d);
			}
		}
		CHECK_EQ_INT(next, (int64_t)n_tiles * hp->n_tokens);
		/* F16 cache (the default) against the reference with F16 K/V,
		 * the F32 cache against plain float32 */
		for (int ty = 0; ty < 2 && !t_failed; ty++) {
			weft_kv *kv = weft_kv_new_type(m, T, ty ? WEFT_KV_F32 : WEFT_KV_F16);
			if (kv && weft_model_forward(m, pool, kv, NULL, x, T, 0, logits, 1, NULL) == 0) {
				e = rel_err(logits, ty ? lgt->data : lgh->data, lgt->n);
				double *w = ty ? &worst_logit : &worst_logit16;
				*w = e > *w ? e : *w;
			} else {
				FAILF("%s: forward: %s", img, weft_errmsg());
			}
			weft_kv_free(kv);
		}
		free(x);
		free(logits);
		free(out.embd);
		free(out.saliency);
#undef REC
	}
	printf("# %s (%s): %d images, pixels bit-exact for %d; relative error: embeddings %.3g, saliency %.3g, "
	       "logits %.3g with the F32 KV cache, %.3g with the F16 one against a reference with F16 K/V\n",
	       fam, mmproj_file, n_images, n_images - n_px_bad, worst_embd, worst_sal, worst_logit, worst_logit16);
	CHECK(n_images >= 2);
	CHECK_EQ_INT(n_px_bad, 0);
	if (worst_embd > tol_embd)
		FAILF("%s: embeddings relative error %.3g > %g", fam, worst_embd, tol_embd);
	if (worst_sal > tol_embd)
		FAILF("%s: saliency relative error %.3g > %g", fam, worst_sal, tol_embd);
	if (worst_logit16 > tol_logits)
		FAILF("%s: logits (F16 cache, F16 K/V reference) relative error %.3g > %g", fam, worst_logit16, tol_logits);
	if (worst_logit > tol_logits)
		FAILF("%s: logits (F32 cache) relative error %.3g > %g", fam, worst_logit, tol_logits);
done:
	weft_pool_free(pool);
	weft_model_free(m);
	weft_gguf_close(lg);
	weft_vision_free(v);
	weft_gguf_close(g);
	vref_free(&ref);
}

/* the file exactly as llama.cpp's legacy converter writes it: mm.0, mm.2
 * and the patch kernel in F16 even with --use-f32 (the reference model's
 * weights are rounded the same way); weft computes with F16 matrices in
 * float32, so the F32 bounds hold */
static void llava_vs_transformers(void)
{
	check_family("llava", "tiny-llava-mmproj-legacy.gguf", 1e-4, 1e-4);
}

static void idefics3_vs_transformers(void)
{
	check_family("idefics3", "tiny-idefics3-mmproj-f32.gguf", 1e-4, 1e-4);
}

/* F16 matrices from an F32 model: the weights' rounding (about 2^-11
 * relative per value) shows */
static void idefics3_f16_vs_transformers(void)
{
	check_family("idefics3", "tiny-idefics3-mmproj-f16.gguf", 3e-3, 3e-3);
}

/* ---- hostile mmproj files: the fixture with one field changed ---- */

static uint8_t *find(uint8_t *buf, size_t n, const char *s)
{
	size_t m = strlen(s);
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(buf + i, s, m) == 0)
			return buf + i;
	return NULL;
}

/* Load the idefics3 fixture with `from` replaced by `to` (same length), or
 * with a tensor's ne[1] set to ne1 (to == NULL): the loader must fail with
 * an error containing want. */
static void bad_case(const uint8_t *orig, size_t n, const char *from, const char *to, uint64_t ne1, const char *want)
{
	uint8_t *buf = malloc(n);
	memcpy(buf, orig, n);
	uint8_t *at = find(buf, n, from);
	if (!at) {
		FAILF("'%s' not in the fixture", from);
		free(buf);
		return;
	}
	if (to)
		memcpy(at, to, strlen(to));
	else /* tensor info: name, u32 n_dims, u64 ne[0], u64 ne[1] */
		for (int i = 0; i < 8; i++)
			at[strlen(from) + 4 + 8 + i] = (uint8_t)(ne1 >> (8 * i));
	weft_gguf *g = weft_gguf_open_mem(buf, n);
	weft_vision *v = g ? weft_vision_load(g) : NULL;
	if (v)
		FAILF("%s -> %s: loaded", from, to ? to : "(shape)");
	else if (!strstr(weft_errmsg(), want) || strchr(weft_errmsg(), '\n'))
		FAILF("%s: error '%s', expected '%s'", from, weft_errmsg(), want);
	weft_vision_free(v);
	weft_gguf_close(g);
	free(buf);
}

static void bad_mmproj(void)
{
	size_t n;
	uint8_t *orig = (uint8_t *)t_read_file(DATA "tiny-idefics3-mmproj-f32.gguf", &n);
	if (!orig)
		SKIP("fixture absent");
	bad_case(orig, n, "idefics3", "idefics9", 0, "unsupported projector type 'idefics9'");
	bad_case(orig, n, "v.blk.1.ln2.weight", "v.blk.1.ln2.weighX", 0, "missing tensor 'v.blk.1.ln2.weight'");
	bad_case(orig, n, "mm.model.fc.weight", "mm.model.fc.weighX", 0, "missing tensor 'mm.model.fc.weight'");
	bad_case(orig, n, "v.blk.0.attn_q.weight", NULL, 32,
		 "tensor 'v.blk.0.attn_q.weight': shape [64, 32], expected [64, 64]");
	bad_case(orig, n, "v.position_embd.weight", NULL, 15, "tensor 'v.position_embd.weight': shape [64, 15]");
	bad_case(orig, n, "clip.vision.patch_size", "clip.vision.patch_sizX", 0, "missing key 'clip.vision.patch_size'");
	bad_case(orig, n, "clip.vision.image_size", "clip.vision.image_sizX", 0, "missing key 'clip.vision.image_size'");
	free(orig);
	/* an LLM is not an mmproj */
	weft_gguf *g = weft_gguf_open(DATA "tiny-llava-llm-f32.gguf");
	weft_vision *v = g ? weft_vision_load(g) : NULL;
	CHECK(g && !v);
	if (g && !v)
		CHECK_STR(weft_errmsg(), "not an mmproj file (general.architecture 'llama', expected 'clip')");
	weft_vision_free(v);
	weft_gguf_close(g);
}

int main(void)
{
	t_suite = "vision";
	RUN(bad_mmproj);
	RUN(llava_vs_transformers);
	RUN(idefics3_vs_transformers);
	RUN(idefics3_f16_vs_transformers);
	TEST_MAIN_END();
}

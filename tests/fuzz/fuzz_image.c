/* fuzz_image.c - libFuzzer harness for image decoding and preprocessing.
 *
 * Decodes the input (PNG, JPEG or PNM by content) under a 2^16-pixel limit,
 * once with the defaults (damage is an error) and once dropping alpha,
 * ignoring EXIF and tolerating what the libraries only warn about
 * (WEFT_IMAGE_LENIENT); every decoded image goes through both processors with small sizes
 * (CLIP crop 32 with LLaVA padding, Idefics3 longest edge 96 in 32-pixel
 * tiles) so each run stays fast.  Failures must leave a one-line message.
 * Seeds: tests/fuzz/seeds/image (see its README). */
#include "image.h"
#include "preprocess.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile float sink;

static void check_error(void)
{
	const char *m = weft_errmsg();
	if (!m[0] || strchr(m, '\n'))
		abort(); /* every failure has a one-line message */
}

static void run(const weft_image *im, weft_preproc p)
{
	weft_pixels px;
	if (weft_preprocess(im, &p, &px)) {
		check_error();
		return;
	}
	size_t n = (size_t)px.n * 3 * (size_t)px.h * (size_t)px.w;
	sink += px.data[0] + px.data[n - 1];
	weft_pixels_free(&px);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* copy into an exact-size buffer so ASan catches any overread */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	for (int k = 0; k < 2; k++) {
		weft_image_opts o = {.max_pixels = 1 << 16,
				     .flags = k ? WEFT_IMAGE_ALPHA_DROP | WEFT_IMAGE_NO_EXIF | WEFT_IMAGE_LENIENT : 0};
		weft_image *im = weft_image_decode(buf, size, &o);
		if (!im) {
			check_error();
			continue;
		}
		if (im->w <= 0 || im->h <= 0 || (uint64_t)im->w * (uint64_t)im->h > (1u << 16))
			abort();
		sink += im->rgb[0] + im->rgb[(size_t)im->w * (size_t)im->h * 3 - 1];
		weft_preproc c = weft_preproc_llava15(), s = weft_preproc_smolvlm();
		c.size = 32;
		s.size = 32;
		s.longest_edge = 96;
		run(im, c);
		run(im, s);
		weft_image_free(im);
	}
	free(buf);
	return 0;
}

/* test_image_damage.c - damaged and hostile images: every bad input fails
 * with its exact one-line message, including every prefix of small files
 * (run under ASan by make check-asan: no crash, no leak); bit-flipped JPEG
 * entropy data and damaged PNG chunks are errors unless WEFT_IMAGE_LENIENT;
 * impossible headers are refused before anything large is allocated. */
#include "image.h"
#include "image_util.h"
#include "util.h"

static void expect_fail(const void *buf, size_t len, const weft_image_opts *o, const char *msg)
{
	weft_image *im = weft_image_decode(buf, len, o);
	if (im) {
		FAILF("decoded %zu bytes, expected \"%s\"", len, msg);
		weft_image_free(im);
		return;
	}
	if (msg[strlen(msg) - 1] == '*') { /* prefix match */
		if (strncmp(weft_errmsg(), msg, strlen(msg) - 1))
			FAILF("\"%s\", expected \"%s\"", weft_errmsg(), msg);
	} else {
		CHECK_STR(weft_errmsg(), msg);
	}
}

/* A PNG signature + IHDR (valid CRC) of the given size, then IEND. */
static size_t png_header(uint8_t *b, uint32_t w, uint32_t h)
{
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	memcpy(b, sig, 8);
	uint8_t *c = b + 8;
	c[0] = c[1] = c[2] = 0, c[3] = 13;
	memcpy(c + 4, "IHDR", 4);
	for (int i = 0; i < 4; i++)
		c[8 + i] = (uint8_t)(w >> (24 - 8 * i)), c[12 + i] = (uint8_t)(h >> (24 - 8 * i));
	c[16] = 8, c[17] = 2, c[18] = c[19] = c[20] = 0;
	uint32_t crc = (uint32_t)crc32(0, c + 4, 17);
	for (int i = 0; i < 4; i++)
		c[21 + i] = (uint8_t)(crc >> (24 - 8 * i));
	static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
	memcpy(c + 25, iend, 12);
	return 8 + 25 + 12;
}

static void bad_inputs(void)
{
	expect_fail("", 0, NULL, "not an image (empty input)");
	expect_fail("hello, world\n", 13, NULL, "not an image (unknown format)");
	expect_fail("GIF89a\1\0\1\0", 10, NULL, "unsupported image format (GIF)");
	expect_fail("P3\n1 1\n255\n0 0 0\n", 17, NULL, "unsupported image format (plain or PAM PNM (only binary P5/P6))");
	uint8_t b[64];
	size_t n = png_header(b, 0, 0);
	expect_fail(b, n, NULL, "image has zero width or height (0x0)");
	n = png_header(b, 100000, 100000);
	expect_fail(b, n, NULL, "image 100000x100000 exceeds the 67108864-pixel limit");
	n = png_header(b, 64, 64);
	weft_image_opts small = {.max_pixels = 1000};
	expect_fail(b, n, &small, "image 64x64 exceeds the 1000-pixel limit");
	n = png_header(b, 2, 2); /* valid header, IEND without IDAT */
	expect_fail(b, n, NULL, "corrupt PNG: *");
	expect_fail("P6 0 0 255\n", 11, NULL, "image has zero width or height (0x0)");
	expect_fail("P6 100000 100000 255\n", 21, NULL, "image 100000x100000 exceeds the 67108864-pixel limit");
	expect_fail("P6 1 1 70000\n", 13, NULL, "corrupt PNM: bad header");
	expect_fail("P6 1 x 255\n", 11, NULL, "corrupt PNM: bad header");
	expect_fail("\xff\xd8\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\xff\xd9", 14, NULL,
		    "corrupt JPEG: Invalid JPEG file structure: SOS before SOF");

	/* JPEG size limit and zero height, by editing SOF0 of a real file */
	uint8_t px[24 * 16];
	grey_blocks(px);
	jpg_spec s = {JCS_GRAYSCALE, JCS_GRAYSCALE, 0, NULL, 0};
	write_jpeg(tpath("z.jpg"), 24, 16, &s, px);
	size_t jl;
	uint8_t *j = slurp(tpath("z.jpg"), &jl);
	weft_image_opts tiny = {.max_pixels = 100};
	expect_fail(j, jl, &tiny, "image 24x16 exceeds the 100-pixel limit");
	size_t sof = 2;
	while (sof + 4 < jl && !(j[sof] == 0xff && j[sof + 1] == 0xc0))
		sof += 2 + (size_t)(j[sof + 2] << 8 | j[sof + 3]);
	CHECK(sof + 9 < jl);
	if (sof + 9 < jl) {
		j[sof + 5] = j[sof + 7] = 0xff, j[sof + 6] = j[sof + 8] = 0xdc; /* 65500 x 65500 */
		expect_fail(j, jl, NULL, "image 65500x65500 exceeds the 67108864-pixel limit");
		j[sof + 5] = j[sof + 6] = 0;
		expect_fail(j, jl, NULL, "image has zero width or height (65500x0)");
	}
	free(j);

	/* a flipped bit in PNG image data: CRC error */
	uint16_t smp[16 * 3];
	for (int i = 0; i < 48; i++)
		smp[i] = (uint16_t)(i * 5);
	png_spec ps = {PNG_COLOR_TYPE_RGB, 8, 0, NULL, 0, NULL, 0, NULL};
	write_png(tpath("crc.png"), 4, 4, &ps, smp);
	uint8_t *p = slurp(tpath("crc.png"), &n);
	p[n - 20] ^= 1;
	expect_fail(p, n, NULL, "corrupt PNG: *");
	free(p);

	weft_image *im = weft_image_load(tpath("does-not-exist.png"), NULL);
	CHECK(im == NULL);
	CHECK_STR(weft_errmsg(), "cannot open: No such file or directory");
}

/* ---- corrupt data: errors unless WEFT_IMAGE_LENIENT ---- */

static int same_pixels(const weft_image *a, const weft_image *b)
{
	return a && b && a->w == b->w && a->h == b->h && !memcmp(a->rgb, b->rgb, (size_t)a->w * a->h * 3);
}

/* 40 seeded one-bit flips in the entropy-coded data of a committed JPEG:
 * every flip libjpeg warns about (it decodes those as grey or shifted
 * blocks) must fail by default with a one-line "corrupt JPEG: " message;
 * a flip it does not notice (a coefficient's extra bits) decodes as in
 * lenient mode. */
static void jpeg_bitflips(void)
{
	size_t n;
	uint8_t *orig = slurp("tests/data/image/flip.jpg", &n), *buf = malloc(n ? n : 1);
	if (!orig || n < 16) {
		FAILF("cannot read tests/data/image/flip.jpg");
		goto out;
	}
	size_t sos = 2;
	while (sos + 4 < n && !(orig[sos] == 0xff && orig[sos + 1] == 0xda))
		sos += 2 + (size_t)(orig[sos + 2] << 8 | orig[sos + 3]);
	size_t start = sos + 2 + (size_t)(orig[sos + 2] << 8 | orig[sos + 3]), end = n - 2;
	weft_image_opts strict = {0}, lenient = {.flags = WEFT_IMAGE_LENIENT};
	unsigned r = 14;
	int warned = 0, rejected = 0;
	for (int k = 0; k < 40; k++) {
		memcpy(buf, orig, n);
		r = r * 1103515245u + 12345u;
		size_t pos = start + (r >> 8) % (end - start);
		buf[pos] ^= (uint8_t)(1u << ((r >> 4) & 7));
		weft_image *l = weft_image_decode(buf, n, &lenient);
		char lmsg[512];
		snprintf(lmsg, sizeof lmsg, "%s", l ? "" : weft_errmsg());
		weft_image *st = weft_image_decode(buf, n, &strict);
		const char *e = st ? "" : weft_errmsg();
		rejected += !st;
		if (l && l->warnings) {
			warned++;
			if (st)
				FAILF("flip %d (byte %zu): decoded although libjpeg warned %u times", k, pos, l->warnings);
			else if (strncmp(e, "corrupt JPEG: ", 14) || strchr(e, '\n'))
				FAILF("flip %d: message \"%s\"", k, e);
		} else if (l) {
			if (!same_pixels(st, l))
				FAILF("flip %d (byte %zu): strict and lenient decodes differ", k, pos);
		} else if (st || strcmp(e, lmsg)) {
			FAILF("flip %d: lenient \"%s\", strict \"%s\"", k, lmsg, e);
		}
		weft_image_free(l);
		weft_image_free(st);
	}
	CHECK(warned > 0);
	printf("INFO image.jpeg_bitflips: %d of 40 flipped JPEGs rejected, %d of them only warned about by libjpeg\n",
	       rejected, warned);
out:
	free(orig);
	free(buf);
}

/* A header patched to 8000x8000 (under the pixel limit) on a 3920-byte file:
 * refused before decoding, in both modes.  4:2:0 gives 1000x1000 luma and
 * 2 x 500x500 chroma blocks, each at least one bit of Huffman code:
 * 1500000 bits = 187500 bytes.  A PNG header the same: 8000 rows of 24000
 * bytes, at most 1032 of them per deflated byte. */
static void huge_headers(void)
{
	size_t n;
	uint8_t *j = slurp("tests/data/image/flip.jpg", &n);
	if (!j) {
		FAILF("cannot read tests/data/image/flip.jpg");
		return;
	}
	size_t sof = 2;
	while (sof + 4 < n && !(j[sof] == 0xff && j[sof + 1] == 0xc0))
		sof += 2 + (size_t)(j[sof + 2] << 8 | j[sof + 3]);
	CHECK(sof + 9 < n && n == 3920);
	j[sof + 5] = j[sof + 7] = 0x1f, j[sof + 6] = j[sof + 8] = 0x40;
	const char *msg = "corrupt JPEG: 8000x8000 needs at least 187500 bytes of coded data, the file has 3920";
	expect_fail(j, n, NULL, msg);
	expect_fail(j, n, &(weft_image_opts){.flags = WEFT_IMAGE_LENIENT}, msg);
	free(j);
	uint8_t b[64];
	n = png_header(b, 8000, 8000);
	expect_fail(b, n, NULL, "corrupt PNG: 8000x8000 needs at least 186046 bytes of compressed data, the file has 45");
}

/* A bad CRC in an ancillary chunk (tEXt after IHDR): libpng only warns and
 * drops the chunk; an error by default, tolerated and counted in lenient
 * mode with the pixels unchanged. */
static void png_ancillary_crc(void)
{
	uint16_t smp[16 * 3];
	for (int i = 0; i < 48; i++)
		smp[i] = (uint16_t)(i * 7);
	png_spec ps = {PNG_COLOR_TYPE_RGB, 8, 0, NULL, 0, NULL, 0, NULL};
	write_png(tpath("anc.png"), 4, 4, &ps, smp);
	size_t n;
	uint8_t *p = slurp(tpath("anc.png"), &n), *q = malloc(n + 32);
	weft_image *ref = weft_image_decode(p, n, NULL);
	static const uint8_t text[11] = {0, 0, 0, 3, 't', 'E', 'X', 't', 'k', 0, 'v'};
	memcpy(q, p, 33); /* signature, IHDR */
	memcpy(q + 33, text, 11);
	uint32_t crc = (uint32_t)crc32(0, text + 4, 7);
	for (int i = 0; i < 4; i++)
		q[44 + i] = (uint8_t)(crc >> (24 - 8 * i));
	memcpy(q + 48, p + 33, n - 33);
	weft_image *ok = weft_image_decode(q, n + 15, NULL);
	CHECK(ok && same_pixels(ok, ref) && ok->warnings == 0);
	q[43] ^= 1; /* 'v' -> 'w': the CRC no longer matches */
	expect_fail(q, n + 15, NULL, "corrupt PNG: tEXt: CRC error");
	weft_image *l = weft_image_decode(q, n + 15, &(weft_image_opts){.flags = WEFT_IMAGE_LENIENT});
	CHECK(l && same_pixels(l, ref) && l->warnings == 1);
	weft_image_free(ref);
	weft_image_free(ok);
	weft_image_free(l);
	free(p);
	free(q);
}

/* Every proper prefix of small files fails with "truncated ...". */
static void truncated_prefixes(void)
{
	uint16_t smp[9 * 7 * 4];
	for (int i = 0; i < 9 * 7 * 4; i++)
		smp[i] = (uint16_t)rnd(65536);
	static const struct { int ctype, depth, il; } pngs[] = {
		{PNG_COLOR_TYPE_RGB, 8, 0}, {PNG_COLOR_TYPE_RGB_ALPHA, 16, 1}, {PNG_COLOR_TYPE_GRAY, 2, 1}};
	for (int k = 0; k < 3; k++) {
		png_spec s = {pngs[k].ctype, pngs[k].depth, pngs[k].il, NULL, 0, NULL, 0, NULL};
		uint16_t m[9 * 7 * 4];
		for (int i = 0; i < 9 * 7 * 4; i++)
			m[i] = (uint16_t)(smp[i] >> (16 - pngs[k].depth));
		write_png(tpath("p.png"), 9, 7, &s, m);
		size_t n;
		uint8_t *f = slurp(tpath("p.png"), &n);
		weft_image *ok = weft_image_decode(f, n, NULL);
		CHECK(ok != NULL);
		weft_image_free(ok);
		for (size_t len = 1; len < n && !t_failed; len++) {
			uint8_t *cut = malloc(len); /* exact size: ASan sees any overread */
			memcpy(cut, f, len);
			expect_fail(cut, len, NULL, "truncated PNG");
			if (t_failed)
				FAILF("PNG %d cut at %zu of %zu: %s", k, len, n, weft_errmsg());
			free(cut);
		}
		free(f);
	}
	uint8_t rgb[16 * 16 * 3], app1[64];
	for (int i = 0; i < 16 * 16 * 3; i++)
		rgb[i] = (uint8_t)rnd(256);
	for (int prog = 0; prog < 2; prog++) {
		jpg_spec s = {JCS_RGB, JCS_YCbCr, prog, app1, exif_block(app1, 6, 1)};
		write_jpeg(tpath("p.jpg"), 16, 16, &s, rgb);
		size_t n;
		uint8_t *f = slurp(tpath("p.jpg"), &n);
		weft_image *ok = weft_image_decode(f, n, NULL);
		CHECK(ok != NULL);
		weft_image_free(ok);
		for (size_t len = 1; len < n && !t_failed; len++) {
			uint8_t *cut = malloc(len);
			memcpy(cut, f, len);
			expect_fail(cut, len, NULL, "truncated JPEG");
			if (t_failed)
				FAILF("JPEG prog %d cut at %zu of %zu: %s", prog, len, n, weft_errmsg());
			free(cut);
		}
		free(f);
	}
	const char pnm[] = "P6 # c\n2 2\n65535\n0123456789abcdefghijklmn";
	for (size_t len = 2; len < sizeof pnm - 1 && !t_failed; len++) {
		char *cut = malloc(len);
		memcpy(cut, pnm, len);
		expect_fail(cut, len, NULL, "truncated PNM");
		free(cut);
	}
}

/* ---- resampling and processors ---- */


int main(void)
{
	t_suite = "image";
	if (tmpdir_make("image-damage") != 0)
		return 1;
	RUN(bad_inputs);
	RUN(jpeg_bitflips);
	RUN(huge_headers);
	RUN(png_ancillary_crc);
	RUN(truncated_prefixes);
	tmpdir_remove();
	TEST_MAIN_END();
}

/* test_image.c - image decoding (PNG, JPEG, PNM) and preprocessing.
 *
 * Test images are written here with libpng / libjpeg into a temporary
 * directory, covering every PNG colour type, bit depth, interlacing and tRNS,
 * and greyscale / RGB / CMYK / YCCK / progressive / EXIF-rotated JPEGs; each
 * is checked pixel by pixel (damaged and hostile inputs:
 * test_image_damage.c).  Resampling is checked against CRCs of
 * PIL's output, and both processors against transformers' outputs for the
 * real images in ../shared (tests/data/image/hf-preprocess.txt, written by
 * scripts/gen-image-fixtures.py).  WEFT_IMAGE_DUMP=DIR writes the full
 * tensors for scripts/gen-image-fixtures.py --compare DIR. */
#include "image.h"
#include "image_util.h"
#include "preprocess.h"
#include "util.h"

/* ---- PNG ---- */

/* Every colour type x bit depth x interlace, random samples, with and
 * without alpha compositing. */
static void png_all_types(void)
{
	static const struct { int ctype, depth; } cases[] = {
		{PNG_COLOR_TYPE_GRAY, 1}, {PNG_COLOR_TYPE_GRAY, 2}, {PNG_COLOR_TYPE_GRAY, 4},
		{PNG_COLOR_TYPE_GRAY, 8}, {PNG_COLOR_TYPE_GRAY, 16}, {PNG_COLOR_TYPE_RGB, 8},
		{PNG_COLOR_TYPE_RGB, 16}, {PNG_COLOR_TYPE_PALETTE, 1}, {PNG_COLOR_TYPE_PALETTE, 2},
		{PNG_COLOR_TYPE_PALETTE, 4}, {PNG_COLOR_TYPE_PALETTE, 8}, {PNG_COLOR_TYPE_GRAY_ALPHA, 8},
		{PNG_COLOR_TYPE_GRAY_ALPHA, 16}, {PNG_COLOR_TYPE_RGB_ALPHA, 8}, {PNG_COLOR_TYPE_RGB_ALPHA, 16},
	};
	const int w = 13, h = 11;
	png_color pal[256];
	uint8_t palpha[256];
	for (int i = 0; i < 256; i++) {
		pal[i] = (png_color){(uint8_t)rnd(256), (uint8_t)rnd(256), (uint8_t)rnd(256)};
		palpha[i] = (uint8_t)rnd(256);
	}
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
		for (int il = 0; il < 2; il++)
			for (int trns = 0; trns < 2; trns++) {
				int ct = cases[ci].ctype, d = cases[ci].depth, nc = png_channels(ct);
				if (trns && (ct & PNG_COLOR_MASK_ALPHA))
					continue;
				unsigned maxv = (1u << d) - 1;
				if (ct == PNG_COLOR_TYPE_PALETTE)
					maxv = (1u << d) - 1 < 255 ? (1u << d) - 1 : 255;
				uint16_t smp[13 * 11 * 4];
				for (int i = 0; i < w * h * nc; i++)
					smp[i] = (uint16_t)rnd(maxv + 1);
				png_color_16 tc = {0};
				if (trns && ct != PNG_COLOR_TYPE_PALETTE) { /* make a few pixels match */
					tc.gray = tc.red = smp[0];
					tc.green = smp[ct == PNG_COLOR_TYPE_RGB ? 1 : 0];
					tc.blue = smp[ct == PNG_COLOR_TYPE_RGB ? 2 : 0];
					for (int i = 5; i < w * h; i += 7)
						memcpy(smp + i * nc, smp, (size_t)nc * sizeof *smp);
				}
				png_spec s = {ct, d, il, ct == PNG_COLOR_TYPE_PALETTE ? pal : NULL, (int)maxv + 1,
					      trns && ct == PNG_COLOR_TYPE_PALETTE ? palpha : NULL, (int)maxv + 1,
					      trns && ct != PNG_COLOR_TYPE_PALETTE ? &tc : NULL};
				const char *path = tpath("t.png");
				write_png(path, w, h, &s, smp);
				for (int drop = 0; drop < 2; drop++) {
					weft_image_opts o = {.flags = drop ? WEFT_IMAGE_ALPHA_DROP : 0};
					weft_image *im = weft_image_load(path, &o);
					if (!im) {
						FAILF("type %d depth %d: %s", ct, d, weft_errmsg());
						return;
					}
					CHECK_EQ_INT(im->w, w);
					CHECK_EQ_INT(im->format, WEFT_IMAGE_PNG);
					for (int i = 0; i < w * h && !t_failed; i++) {
						const uint16_t *p = smp + i * nc;
						unsigned rgb[3], a = 255;
						int hit = 0;
						if (ct == PNG_COLOR_TYPE_PALETTE) {
							rgb[0] = pal[p[0]].red, rgb[1] = pal[p[0]].green, rgb[2] = pal[p[0]].blue;
							a = trns ? palpha[p[0]] : 255;
						} else {
							for (int c = 0; c < 3; c++) {
								unsigned v = p[(ct & PNG_COLOR_MASK_COLOR) ? c : 0];
								rgb[c] = d == 16 ? v >> 8 : v * 255 / maxv;
							}
							if (ct & PNG_COLOR_MASK_ALPHA)
								a = d == 16 ? p[nc - 1] >> 8 : p[nc - 1];
							hit = trns && !memcmp(p, smp, (size_t)nc * sizeof *p);
							if (hit)
								a = 0;
						}
						for (int c = 0; c < 3; c++) {
							unsigned e = drop ? rgb[c] : over_white(rgb[c], a);
							if (im->rgb[3 * i + c] != e)
								FAILF("type %d depth %d il %d trns %d drop %d: px %d ch %d = %d, want %u",
								      ct, d, il, trns, drop, i, c, im->rgb[3 * i + c], e);
						}
					}
					weft_image_free(im);
				}
			}
}

/* The white compositing formula against values from PIL itself. */
static void png_alpha_composite_pil(void)
{
	static const unsigned v[][3] = {{0, 1, 254}, {200, 128, 227}, {13, 254, 14}, {255, 0, 255},
					{100, 77, 208}, {255, 1, 255}, {0, 255, 0}, {77, 200, 115}};
	uint16_t smp[8 * 4];
	for (int i = 0; i < 8; i++)
		smp[4 * i] = smp[4 * i + 1] = smp[4 * i + 2] = (uint16_t)v[i][0], smp[4 * i + 3] = (uint16_t)v[i][1];
	png_spec s = {PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, NULL, 0, NULL, 0, NULL};
	write_png(tpath("a.png"), 8, 1, &s, smp);
	weft_image *im = weft_image_load(tpath("a.png"), NULL);
	CHECK(im != NULL);
	for (int i = 0; im && i < 8; i++)
		CHECK_EQ_INT(im->rgb[3 * i], v[i][2]);
	weft_image_free(im);
}

/* ---- JPEG ---- */


static void jpeg_grey_exact(void)
{
	uint8_t px[24 * 16];
	grey_blocks(px);
	for (int prog = 0; prog < 2; prog++) {
		jpg_spec s = {JCS_GRAYSCALE, JCS_GRAYSCALE, prog, NULL, 0};
		write_jpeg(tpath("g.jpg"), 24, 16, &s, px);
		weft_image *im = weft_image_load(tpath("g.jpg"), NULL);
		if (!im) {
			FAILF("%s", weft_errmsg());
			return;
		}
		CHECK_EQ_INT(im->format, WEFT_IMAGE_JPEG);
		CHECK(im->w == 24 && im->h == 16);
		for (int i = 0; i < 24 * 16 && !t_failed; i++)
			for (int c = 0; c < 3; c++)
				CHECK_EQ_INT(im->rgb[3 * i + c], px[i]);
		weft_image_free(im);
	}
}

/* RGB (YCbCr in the file, and RGB stored as is), CMYK and YCCK, baseline
 * and progressive: flat colour blocks within 3 levels. */
static void jpeg_colour(void)
{
	static const uint8_t cols[6][4] = {{255, 0, 0, 0},     {0, 200, 40, 30},  {20, 40, 250, 90},
					   {128, 128, 128, 0}, {250, 250, 5, 200}, {9, 99, 199, 255}};
	uint8_t rgb[24 * 16 * 3], cmyk[24 * 16 * 4];
	for (int y = 0; y < 16; y++)
		for (int x = 0; x < 24; x++) {
			int b = (y / 8) * 3 + x / 8, i = y * 24 + x;
			memcpy(rgb + 3 * i, cols[b], 3);
			for (int c = 0; c < 4; c++) /* Adobe polarity: stored = 255 - ink */
				cmyk[4 * i + c] = (uint8_t)(255 - cols[b][c]);
		}
	static const struct { J_COLOR_SPACE in, file; } kinds[] = {
		{JCS_RGB, JCS_YCbCr}, {JCS_RGB, JCS_RGB}, {JCS_CMYK, JCS_CMYK}, {JCS_CMYK, JCS_YCCK}};
	for (int k = 0; k < 4; k++)
		for (int prog = 0; prog < 2; prog++) {
			jpg_spec s = {kinds[k].in, kinds[k].file, prog, NULL, 0};
			write_jpeg(tpath("c.jpg"), 24, 16, &s, kinds[k].in == JCS_RGB ? rgb : cmyk);
			weft_image *im = weft_image_load(tpath("c.jpg"), NULL);
			if (!im) {
				FAILF("kind %d: %s", k, weft_errmsg());
				return;
			}
			for (int i = 0; i < 24 * 16 && !t_failed; i++) {
				const uint8_t *src = kinds[k].in == JCS_RGB ? rgb + 3 * i : cols[(i / 24 / 8) * 3 + (i % 24) / 8];
				for (int c = 0; c < 3; c++) {
					int e = src[c];
					if (kinds[k].in == JCS_CMYK) /* PIL: (255-c)(255-k)/255 */
						e = (int)((255 - src[c]) * (255 - src[3]) / 255.0 + 0.5);
					int g = im->rgb[3 * i + c];
					if (g < e - 3 || g > e + 3)
						FAILF("kind %d prog %d px %d ch %d = %d, want %d", k, prog, i, c, g, e);
				}
			}
			weft_image_free(im);
		}
}


/* Orientations 1..8 against PIL's exif_transpose of a 3x2 block grid. */
static void jpeg_exif_orientation(void)
{
	static const int want[9][6] = {{0},
				       {0, 1, 2, 3, 4, 5}, {2, 1, 0, 5, 4, 3}, {5, 4, 3, 2, 1, 0},
				       {3, 4, 5, 0, 1, 2}, {0, 3, 1, 4, 2, 5}, {3, 0, 4, 1, 5, 2},
				       {5, 2, 4, 1, 3, 0}, {2, 5, 1, 4, 0, 3}};
	uint8_t px[24 * 16], app1[64];
	grey_blocks(px);
	for (int be = 0; be < 2; be++)
		for (int o = 1; o <= 8; o++) {
			jpg_spec s = {JCS_GRAYSCALE, JCS_GRAYSCALE, 0, app1, exif_block(app1, o, be)};
			write_jpeg(tpath("o.jpg"), 24, 16, &s, px);
			for (int noexif = 0; noexif < 2; noexif++) {
				weft_image_opts opt = {.flags = noexif ? WEFT_IMAGE_NO_EXIF : 0};
				weft_image *im = weft_image_load(tpath("o.jpg"), &opt);
				if (!im) {
					FAILF("%s", weft_errmsg());
					return;
				}
				CHECK_EQ_INT(im->orientation, o);
				int rot = !noexif && o >= 5, gw = rot ? 2 : 3;
				CHECK_EQ_INT(im->w, rot ? 16 : 24);
				for (int b = 0; b < 6 && !t_failed; b++) {
					int bx = b % gw, by = b / gw; /* centre of block b of the output */
					int v = im->rgb[3 * ((by * 8 + 4) * im->w + bx * 8 + 4)];
					int e = 20 + 40 * (noexif ? b : want[o][b]);
					if (v != e)
						FAILF("orientation %d be %d noexif %d: block %d = %d, want %d", o, be,
						      noexif, b, v, e);
				}
				weft_image_free(im);
			}
		}
	/* malformed Exif: ignored, never read out of bounds */
	uint8_t bad[64];
	size_t n = exif_block(bad, 6, 0);
	bad[10] = 0xf0; /* IFD0 offset past the end */
	jpg_spec s = {JCS_GRAYSCALE, JCS_GRAYSCALE, 0, bad, n};
	write_jpeg(tpath("o.jpg"), 24, 16, &s, px);
	weft_image *im = weft_image_load(tpath("o.jpg"), NULL);
	CHECK(im && im->orientation == 1 && im->w == 24);
	weft_image_free(im);
	n = exif_block(bad, 6, 0);
	bad[14] = 0xff; /* entry count far beyond the block */
	write_jpeg(tpath("o.jpg"), 24, 16, &s, px);
	im = weft_image_load(tpath("o.jpg"), NULL); /* entries in range still count */
	CHECK(im && im->orientation == 6 && im->w == 16);
	weft_image_free(im);
}

/* ---- PNM ---- */

static void pnm_decode(void)
{
	const char p6[] = "P6\n# comment\n2 1\n255\n\x01\x02\x03\xfd\xfe\xff";
	weft_image *im = weft_image_decode(p6, sizeof p6 - 1, NULL);
	CHECK(im && im->w == 2 && im->h == 1 && im->format == WEFT_IMAGE_PNM);
	if (im)
		CHECK(!memcmp(im->rgb, "\x01\x02\x03\xfd\xfe\xff", 6));
	weft_image_free(im);
	/* 16-bit grey, maxval 1000: PIL's round(v / 1000 * 255), half to even */
	static const unsigned v[] = {0, 1, 2, 499, 500, 501, 999, 1000, 1001}, e[] = {0, 0, 1, 127, 128, 128, 255, 255, 255};
	uint8_t buf[64];
	int hl = snprintf((char *)buf, sizeof buf, "P5 9 1 1000\n");
	for (int i = 0; i < 9; i++)
		buf[hl + 2 * i] = (uint8_t)(v[i] >> 8), buf[hl + 2 * i + 1] = (uint8_t)v[i];
	im = weft_image_decode(buf, (size_t)hl + 18, NULL);
	CHECK(im != NULL);
	for (int i = 0; im && i < 9; i++)
		CHECK_EQ_INT(im->rgb[3 * i + 1], e[i]);
	weft_image_free(im);
	const char p5[] = "P5 6 1 5\n\x00\x01\x02\x03\x04\x05";
	im = weft_image_decode(p5, sizeof p5 - 1, NULL);
	CHECK(im != NULL);
	for (int i = 0; im && i < 6; i++)
		CHECK_EQ_INT(im->rgb[3 * i], 51 * i);
	weft_image_free(im);
}

/* ---- inputs: content, not names; stdin ---- */

static void content_not_extension(void)
{
	uint8_t px[24 * 16];
	grey_blocks(px);
	jpg_spec s = {JCS_GRAYSCALE, JCS_GRAYSCALE, 0, NULL, 0};
	write_jpeg(tpath("really-a-jpeg.png"), 24, 16, &s, px);
	uint16_t smp[4] = {1, 2, 3, 4};
	png_spec ps = {PNG_COLOR_TYPE_GRAY, 8, 0, NULL, 0, NULL, 0, NULL};
	write_png(tpath("really-a-png.jpg"), 4, 1, &ps, smp);
	write_bytes(tpath("really-a-pnm.png"), "P5 1 1 255\n\x07", 12);
	weft_image *a = weft_image_load(tpath("really-a-jpeg.png"), NULL);
	weft_image *b = weft_image_load(tpath("really-a-png.jpg"), NULL);
	weft_image *c = weft_image_load(tpath("really-a-pnm.png"), NULL);
	CHECK(a && a->format == WEFT_IMAGE_JPEG && a->w == 24);
	CHECK(b && b->format == WEFT_IMAGE_PNG && b->w == 4 && b->rgb[9] == 4);
	CHECK(c && c->format == WEFT_IMAGE_PNM && c->rgb[0] == 7);
	weft_image_free(a);
	weft_image_free(b);
	weft_image_free(c);
	CHECK_STR(weft_image_format_name(WEFT_IMAGE_JPEG), "JPEG");
}

static void load_stdin(void)
{
	write_bytes(tpath("in.ppm"), "P6 1 1 255\n\x0a\x0b\x0c", 14);
	int saved = dup(0);
	if (!freopen(tpath("in.ppm"), "rb", stdin))
		SKIP("cannot reopen stdin");
	weft_image *im = weft_image_load("-", NULL);
	CHECK(im && im->w == 1 && im->rgb[2] == 0x0c);
	weft_image_free(im);
	dup2(saved, 0);
	close(saved);
	clearerr(stdin);
}

/* ---- bad inputs, exact messages ---- */

static weft_image *synthetic(int w, int h)
{
	weft_image *im = weft_image_new(w, h);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++)
				im->rgb[3 * (y * w + x) + c] = (uint8_t)((x * 37 + y * 91 + c * 53 + (x * y * 7) % 29) % 256);
	return im;
}

/* CRC-32 of PIL's Image.resize output for the same synthetic image. */
static void resize_matches_pil(void)
{
	static const struct { int w, h; weft_filter f; uint32_t crc; } cases[] = {
		{5, 4, WEFT_FILTER_BICUBIC, 0x221ffd8f},   {29, 17, WEFT_FILTER_LANCZOS, 0xcd7936ef},
		{13, 4, WEFT_FILTER_BICUBIC, 0xa90fcf82},  {6, 9, WEFT_FILTER_LANCZOS, 0x23cf95b0},
		{7, 7, WEFT_FILTER_BILINEAR, 0xbee86f42},  {31, 3, WEFT_FILTER_LANCZOS, 0xaae7fe2d},
		{2, 20, WEFT_FILTER_BICUBIC, 0x8502f70c},  /* 31x3: Pillow 13 goes vertical first */
	};
	weft_image *im = synthetic(13, 9);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		weft_image *r = weft_image_resize(im, cases[i].w, cases[i].h, cases[i].f);
		CHECK(r != NULL);
		if (r) {
			uint32_t crc = (uint32_t)crc32(0, r->rgb, (uInt)(r->w * r->h * 3));
			if (crc != cases[i].crc)
				FAILF("resize to %dx%d filter %d: crc %08x, PIL %08x", cases[i].w, cases[i].h,
				      cases[i].f, crc, cases[i].crc);
		}
		weft_image_free(r);
	}
	weft_image_free(im);
}

static void preprocess_shapes(void)
{
	weft_image *wide = synthetic(40, 20);
	weft_preproc l = weft_preproc_llava15(), s = weft_preproc_smolvlm();
	weft_pixels px;
	CHECK_EQ_INT(weft_preprocess(wide, &l, &px), 0);
	CHECK(px.n == 1 && px.c == 3 && px.h == 336 && px.w == 336);
	/* the padding band is the mean colour int(mean * 255) = (122, 116, 104) */
	if (px.data)
		CHECK_NEAR(px.data[0], ((float)(122 / 255.0) - l.mean[0]) / l.std[0], 0);
	weft_pixels_free(&px);
	/* 40x20 -> 2048x1024 -> 2 rows x 4 cols + global */
	CHECK_EQ_INT(weft_preprocess(wide, &s, &px), 0);
	CHECK(px.n == 9 && px.rows == 2 && px.cols == 4 && px.h == 512);
	weft_pixels_free(&px);
	s.split = 0;
	CHECK_EQ_INT(weft_preprocess(wide, &s, &px), 0);
	CHECK(px.n == 1 && px.rows == 0 && px.h == 512);
	weft_pixels_free(&px);
	weft_image_free(wide);
	weft_image *dot = synthetic(1, 1);
	s = weft_preproc_smolvlm();
	s.longest_edge = 512; /* one tile: no global image */
	CHECK_EQ_INT(weft_preprocess(dot, &s, &px), 0);
	CHECK(px.n == 1 && px.rows == 0);
	weft_pixels_free(&px);
	l.pad_square = 0;
	CHECK_EQ_INT(weft_preprocess(dot, &l, &px), 0);
	CHECK(px.n == 1 && px.h == 336);
	weft_pixels_free(&px);
	weft_image_free(dot);
}

/* LLaVA padding is resampled without building the padded square: the result
 * must equal building it (weft_image_new + copy) and preprocessing that. */
static void pad_square_implicit(void)
{
	static const int sz[][2] = {{40, 20}, {20, 40}, {3, 50}, {50, 3}, {336, 100}, {1, 2}, {2, 1}, {7, 336},
				    {400, 337}, {337, 400}, {1, 300}, {300, 1}, {31, 32}, {32, 31}, {1000, 9}};
	static const int sizes[] = {32, 336};
	for (size_t i = 0; i < sizeof sz / sizeof *sz && !t_failed; i++) {
		int w = sz[i][0], h = sz[i][1], s = w > h ? w : h;
		weft_image *im = synthetic(w, h), *sq = weft_image_new(s, s);
		for (size_t j = 0; j < (size_t)s * s; j++)
			sq->rgb[3 * j] = 122, sq->rgb[3 * j + 1] = 116, sq->rgb[3 * j + 2] = 104;
		int ox = w < h ? (s - w) / 2 : 0, oy = w > h ? (s - h) / 2 : 0;
		for (int y = 0; y < h; y++)
			memcpy(sq->rgb + ((size_t)(y + oy) * s + ox) * 3, im->rgb + (size_t)y * w * 3, (size_t)w * 3);
		static const weft_filter filt[] = {WEFT_FILTER_BICUBIC, WEFT_FILTER_LANCZOS, WEFT_FILTER_BILINEAR};
		for (size_t k = 0; k < 3 * sizeof sizes / sizeof *sizes; k++) {
			weft_preproc p = weft_preproc_llava15();
			p.size = sizes[k / 3];
			p.filter = filt[k % 3];
			weft_pixels a, b;
			CHECK_EQ_INT(weft_preprocess(im, &p, &a), 0);
			CHECK_EQ_INT(weft_preprocess(sq, &p, &b), 0);
			if (a.data && b.data) {
				size_t n = (size_t)3 * p.size * p.size, bad = 0;
				for (size_t j = 0; j < n; j++)
					bad += a.data[j] != b.data[j];
				if (bad)
					FAILF("%dx%d padded to %d -> %d (filter %d): %zu of %zu values differ", w, h, s,
					      p.size, (int)p.filter, bad, n);
			}
			weft_pixels_free(&a);
			weft_pixels_free(&b);
		}
		weft_image_free(im);
		weft_image_free(sq);
	}
	/* an extreme aspect stays cheap: 65536x1 pads to a 2^32-pixel square */
	weft_image *line = synthetic(65536, 1);
	weft_preproc p = weft_preproc_llava15();
	weft_pixels px;
	CHECK_EQ_INT(weft_preprocess(line, &p, &px), 0);
	CHECK(px.n == 1 && px.h == 336 && px.w == 336);
	weft_pixels_free(&px);
	weft_image_free(line);
}

/* Against transformers' PIL-backend processors on the shared real images. */
static void parity_hf(void)
{
	const char *shared = t_shared_dir();
	if (!shared)
		SKIP("../shared/data not found (set WEFT_SHARED)");
	FILE *f = fopen("tests/data/image/hf-preprocess.txt", "r");
	if (!f) {
		FAILF("tests/data/image/hf-preprocess.txt missing");
		return;
	}
	const char *dump = getenv("WEFT_IMAGE_DUMP");
	char line[1024], pipe[32], rel[512];
	weft_pixels px = {0};
	int n, h, w, rows, cols, have = 0, images = 0, step = 1;
	unsigned crc;
	double mean, worst = 0;
#if defined(__SANITIZE_ADDRESS__)
	step = 5; /* a fifth of the images under ASan: same code paths */
#endif
	while (fgets(line, sizeof line, f) && !t_failed) {
		long idx;
		double v;
		if (sscanf(line, "image %31s %511s %d %d %d %d %d %x %lf", pipe, rel, &n, &h, &w, &rows, &cols, &crc,
			   &mean) == 9) {
			weft_pixels_free(&px);
			have = 0;
			if (images++ % step)
				continue;
			char path[4700];
			snprintf(path, sizeof path, "%s/%s", shared, rel);
			int llava = !strcmp(pipe, "llava15");
			/* LLaVA's loader: convert("RGB") drops alpha; Image.open: no EXIF */
			weft_image_opts o = {.flags = WEFT_IMAGE_NO_EXIF | (llava ? WEFT_IMAGE_ALPHA_DROP : 0)};
			weft_image *im = weft_image_load(path, &o);
			weft_preproc p = llava ? weft_preproc_llava15() : weft_preproc_smolvlm();
			if (!im || weft_preprocess(im, &p, &px)) {
				FAILF("%s: %s", rel, weft_errmsg());
				weft_image_free(im);
				break;
			}
			weft_image_free(im);
			have = 1;
			if (px.n != n || px.h != h || px.w != w || px.rows != rows || px.cols != cols) {
				FAILF("%s %s: %dx%dx%d (%dx%d), expected %dx%dx%d (%dx%d)", pipe, rel, px.n, px.h,
				      px.w, px.rows, px.cols, n, h, w, rows, cols);
				break;
			}
			size_t total = (size_t)n * 3 * (size_t)h * (size_t)w;
			if (dump) {
				const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
				char dp[1024];
				snprintf(dp, sizeof dp, "%s/%s.%s.f32", dump, pipe, base);
				FILE *df = fopen(dp, "wb");
				if (df) {
					fwrite(px.data, sizeof(float), total, df);
					fclose(df);
				}
			}
			double sum = 0;
			for (size_t i = 0; i < total; i++)
				sum += px.data[i];
			if (fabs(sum / (double)total - mean) > 1e-6)
				FAILF("%s %s: mean %.9g, expected %.9g", pipe, rel, sum / (double)total, mean);
			unsigned got = (unsigned)crc32(0, (const Bytef *)px.data, (uInt)(total * sizeof(float)));
			if (got != crc)
				FAILF("%s %s: not bit-exact (crc %08x, expected %08x)", pipe, rel, got, crc);
		} else if (have && sscanf(line, "s %ld %lf", &idx, &v) == 2) {
			double d = fabs(px.data[idx] - v);
			worst = d > worst ? d : worst;
			if (d > 1e-6)
				FAILF("%s %s: value %ld = %.9g, expected %.9g", pipe, rel, idx, px.data[idx], v);
		}
	}
	weft_pixels_free(&px);
	fclose(f);
	if (!t_failed && images < 2)
		FAILF("fixture file has %d images", images);
}

int main(void)
{
	t_suite = "image";
	if (tmpdir_make("image") != 0)
		return 1;
	RUN(png_all_types);
	RUN(png_alpha_composite_pil);
	RUN(jpeg_grey_exact);
	RUN(jpeg_colour);
	RUN(jpeg_exif_orientation);
	RUN(pnm_decode);
	RUN(content_not_extension);
	RUN(load_stdin);
	RUN(resize_matches_pil);
	RUN(preprocess_shapes);
	RUN(pad_square_implicit);
	RUN(parity_hf);
	tmpdir_remove();
	TEST_MAIN_END();
}

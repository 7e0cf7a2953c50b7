/* test_image.c - image decoding (PNG, JPEG, PNM) and preprocessing.
 *
 * Test images are written here with libpng / libjpeg into a temporary
 * directory, covering every PNG colour type, bit depth, interlacing and tRNS,
 * and greyscale / RGB / CMYK / YCCK / progressive / EXIF-rotated JPEGs; each
 * is checked pixel by pixel.  Bad inputs must fail with their exact one-line
 * message, including every prefix of small files (run under ASan by make
 * check-asan: no crash, no leak).  Resampling is checked against CRCs of
 * PIL's output, and both processors against transformers' outputs for the
 * real images in ../shared (tests/data/image/hf-preprocess.txt, written by
 * scripts/gen-image-fixtures.py).  WEFT_IMAGE_DUMP=DIR writes the full
 * tensors for scripts/gen-image-fixtures.py --compare DIR. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <zlib.h>

#include <jpeglib.h>
#include <png.h>

#include "image.h"
#include "preprocess.h"
#include "test.h"
#include "util.h"

static char tmpdir[256];

static const char *tpath(const char *name)
{
	static char buf[2][512];
	static int k;
	k ^= 1;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static uint8_t *slurp(const char *path, size_t *len) { return (uint8_t *)t_read_file(path, len); }

/* ---- writers ---- */

typedef struct {
	int ctype, depth, interlace;
	const png_color *pal;
	int npal;
	const uint8_t *trns; /* palette alpha */
	int ntrns;
	const png_color_16 *trns_col; /* grey / RGB tRNS */
} png_spec;

static int png_channels(int ctype)
{
	switch (ctype) {
	case PNG_COLOR_TYPE_GRAY: case PNG_COLOR_TYPE_PALETTE: return 1;
	case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
	case PNG_COLOR_TYPE_RGB: return 3;
	default: return 4;
	}
}

/* Write samples (w*h*channels, raw values for the bit depth) as a PNG. */
static void write_png(const char *path, int w, int h, const png_spec *s, const uint16_t *samples)
{
	FILE *f = fopen(path, "wb");
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	if (setjmp(png_jmpbuf(png)))
		abort();
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, s->depth, s->ctype,
		     s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	if (s->pal)
		png_set_PLTE(png, info, s->pal, s->npal);
	if (s->trns || s->trns_col)
		png_set_tRNS(png, info, s->trns, s->ntrns, s->trns_col);
	png_write_info(png, info);
	int nc = png_channels(s->ctype);
	size_t rb = ((size_t)w * (size_t)nc * (size_t)s->depth + 7) / 8;
	uint8_t *rows = calloc((size_t)h, rb);
	png_bytep *rp = malloc((size_t)h * sizeof *rp);
	for (int y = 0; y < h; y++) {
		uint8_t *r = rows + (size_t)y * rb;
		rp[y] = r;
		for (int i = 0; i < w * nc; i++) {
			unsigned v = samples[(size_t)y * (size_t)w * (size_t)nc + (size_t)i];
			if (s->depth == 16) {
				r[2 * i] = (uint8_t)(v >> 8), r[2 * i + 1] = (uint8_t)v;
			} else if (s->depth == 8) {
				r[i] = (uint8_t)v;
			} else {
				int bit = i * s->depth;
				r[bit / 8] |= (uint8_t)(v << (8 - s->depth - bit % 8));
			}
		}
	}
	png_write_image(png, rp);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	fclose(f);
	free(rows);
	free(rp);
}

typedef struct {
	J_COLOR_SPACE in, file; /* input colour space, colour space in the file */
	int progressive;
	const uint8_t *app1; /* raw APP1 payload (Exif) or NULL */
	size_t app1_len;
} jpg_spec;

static void write_jpeg(const char *path, int w, int h, const jpg_spec *s, const uint8_t *px)
{
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr jerr;
	FILE *f = fopen(path, "wb");
	ci.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&ci);
	jpeg_stdio_dest(&ci, f);
	ci.image_width = (JDIMENSION)w;
	ci.image_height = (JDIMENSION)h;
	ci.in_color_space = s->in;
	ci.input_components = s->in == JCS_GRAYSCALE ? 1 : s->in == JCS_RGB ? 3 : 4;
	jpeg_set_defaults(&ci);
	jpeg_set_colorspace(&ci, s->file);
	jpeg_set_quality(&ci, 100, TRUE);
	for (int i = 0; i < ci.num_components; i++)
		ci.comp_info[i].h_samp_factor = ci.comp_info[i].v_samp_factor = 1;
	if (s->progressive)
		jpeg_simple_progression(&ci);
	jpeg_start_compress(&ci, TRUE);
	if (s->app1)
		jpeg_write_marker(&ci, JPEG_APP0 + 1, s->app1, (unsigned)s->app1_len);
	for (int y = 0; y < h; y++) {
		JSAMPROW r = (JSAMPROW)(px + (size_t)y * (size_t)w * (size_t)ci.input_components);
		jpeg_write_scanlines(&ci, &r, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	fclose(f);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	fwrite(p, 1, n, f);
	fclose(f);
}

/* PIL's alpha_composite of (v, a) over opaque white. */
static uint8_t over_white(unsigned v, unsigned a)
{
	if (a == 0)
		return 255;
	unsigned oa = a * 255 + 255 * (255 - a), c1 = a * 255 * 255 * 128 / oa, c2 = 255 * 128 - c1;
	unsigned t = v * c1 + 255 * c2 + (0x80 << 7);
	return (uint8_t)((((t >> 8) + t) >> 8) >> 7);
}

static uint32_t rng = 12345;
static unsigned rnd(unsigned n)
{
	rng = rng * 1103515245u + 12345u;
	return (rng >> 8) % n;
}

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

/* 24x16 greyscale, six flat 8x8 blocks: decodes exactly at quality 100. */
static void grey_blocks(uint8_t *px)
{
	for (int y = 0; y < 16; y++)
		for (int x = 0; x < 24; x++)
			px[y * 24 + x] = (uint8_t)(20 + 40 * ((y / 8) * 3 + x / 8));
}

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

/* An Exif APP1 payload with IFD0 holding one orientation entry. */
static size_t exif_block(uint8_t *b, int orient, int big_endian)
{
	static const uint8_t le[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 2, 0,
				     0x0f, 0x01, 2, 0, 4, 0, 0, 0, 'a', 'b', 'c', 0, /* Make */
				     0x12, 0x01, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t be[] = {'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
				     0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
	if (big_endian) {
		memcpy(b, be, sizeof be);
		b[6 + 8 + 2 + 8 + 1] = (uint8_t)orient;
		return sizeof be;
	}
	memcpy(b, le, sizeof le);
	b[6 + 8 + 2 + 12 + 8] = (uint8_t)orient;
	return sizeof le;
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
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/weft-image-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(png_all_types);
	RUN(png_alpha_composite_pil);
	RUN(jpeg_grey_exact);
	RUN(jpeg_colour);
	RUN(jpeg_exif_orientation);
	RUN(pnm_decode);
	RUN(content_not_extension);
	RUN(load_stdin);
	RUN(bad_inputs);
	RUN(jpeg_bitflips);
	RUN(huge_headers);
	RUN(png_ancillary_crc);
	RUN(truncated_prefixes);
	RUN(resize_matches_pil);
	RUN(preprocess_shapes);
	RUN(parity_hf);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	TEST_MAIN_END();
}

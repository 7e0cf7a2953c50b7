/* image_util.h - what the image tests share: a temporary directory, PNG
 * and JPEG writers (libpng / libjpeg), a seeded generator.  Header-only,
 * included once by test_image.c and test_image_damage.c. */
#ifndef WEFT_TEST_IMAGE_UTIL_H
#define WEFT_TEST_IMAGE_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <zlib.h>

#include <jpeglib.h>
#include <png.h>

#include "test.h"

static char tmpdir[256];

static inline const char *tpath(const char *name)
{
	static char buf[2][512];
	static int k;
	k ^= 1;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static inline uint8_t *slurp(const char *path, size_t *len) { return (uint8_t *)t_read_file(path, len); }

/* ---- writers ---- */

typedef struct {
	int ctype, depth, interlace;
	const png_color *pal;
	int npal;
	const uint8_t *trns; /* palette alpha */
	int ntrns;
	const png_color_16 *trns_col; /* grey / RGB tRNS */
} png_spec;

static inline int png_channels(int ctype)
{
	switch (ctype) {
	case PNG_COLOR_TYPE_GRAY: case PNG_COLOR_TYPE_PALETTE: return 1;
	case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
	case PNG_COLOR_TYPE_RGB: return 3;
	default: return 4;
	}
}

/* Write samples (w*h*channels, raw values for the bit depth) as a PNG. */
static inline void write_png(const char *path, int w, int h, const png_spec *s, const uint16_t *samples)
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

static inline void write_jpeg(const char *path, int w, int h, const jpg_spec *s, const uint8_t *px)
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

static inline void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	fwrite(p, 1, n, f);
	fclose(f);
}

/* PIL's alpha_composite of (v, a) over opaque white. */
static inline uint8_t over_white(unsigned v, unsigned a)
{
	if (a == 0)
		return 255;
	unsigned oa = a * 255 + 255 * (255 - a), c1 = a * 255 * 255 * 128 / oa, c2 = 255 * 128 - c1;
	unsigned t = v * c1 + 255 * c2 + (0x80 << 7);
	return (uint8_t)((((t >> 8) + t) >> 8) >> 7);
}

static uint32_t rng = 12345;
static inline unsigned rnd(unsigned n)
{
	rng = rng * 1103515245u + 12345u;
	return (rng >> 8) % n;
}

/* 24x16 greyscale, six flat 8x8 blocks: decodes exactly at quality 100. */
static inline void grey_blocks(uint8_t *px)
{
	for (int y = 0; y < 16; y++)
		for (int x = 0; x < 24; x++)
			px[y * 24 + x] = (uint8_t)(20 + 40 * ((y / 8) * 3 + x / 8));
}

/* An Exif APP1 payload with IFD0 holding one orientation entry. */
static inline size_t exif_block(uint8_t *b, int orient, int big_endian)
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

/* Make the temporary directory (TMPDIR or /tmp); 0 / -1. */
static inline int tmpdir_make(const char *what)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/weft-%s-XXXXXX", t && *t ? t : "/tmp", what);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return -1;
	}
	return 0;
}

static inline void tmpdir_remove(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

#endif

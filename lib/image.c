/* image.c - PNG (libpng), JPEG (libjpeg-turbo) and binary PNM decoding into
 * 8-bit RGB.  See image.h for the conversion rules and their reasons.
 *
 * libpng and libjpeg report errors by longjmp; every decoder keeps what it
 * allocates in a heap context whose pointer never changes after setjmp, so
 * the error path frees everything. */
#include "image.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#define MAX_FILE_BYTES (1ull << 30) /* weft_image_load refuses larger inputs */
#define MAX_JPEG_SCANS 1000         /* progressive scan-count bomb guard */

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

weft_image *weft_image_new(int w, int h)
{
	uint64_t n;
	if (w <= 0 || h <= 0 || weft_mul_overflow((uint64_t)w, (uint64_t)h, &n) ||
	    weft_mul_overflow(n, 3, &n) || n > SIZE_MAX) {
		weft_error("image %dx%d too large", w, h);
		return NULL;
	}
	weft_image *im = weft_calloc(1, sizeof *im);
	if (!im)
		return NULL;
	im->rgb = weft_malloc((size_t)n);
	if (!im->rgb) {
		free(im);
		return NULL;
	}
	im->w = w;
	im->h = h;
	im->orientation = 1;
	return im;
}

void weft_image_free(weft_image *im)
{
	if (im) {
		free(im->rgb);
		free(im);
	}
}

const char *weft_image_format_name(weft_image_format f)
{
	switch (f) {
	case WEFT_IMAGE_PNG: return "PNG";
	case WEFT_IMAGE_JPEG: return "JPEG";
	case WEFT_IMAGE_PNM: return "PNM";
	default: return "unknown";
	}
}

static int is_pnm_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Which format a (possibly short) buffer starts as.  A buffer shorter than
 * the magic that matches its beginning counts as that format, so that the
 * decoder reports it as truncated. */
weft_image_format weft_image_detect(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (!len)
		return WEFT_IMAGE_UNKNOWN;
	if (!memcmp(p, png_sig, len < 8 ? len : 8))
		return WEFT_IMAGE_PNG;
	static const uint8_t jpg[3] = {0xff, 0xd8, 0xff};
	if (!memcmp(p, jpg, len < 3 ? len : 3))
		return WEFT_IMAGE_JPEG;
	if (len >= 2 && p[0] == 'P' && (p[1] == '5' || p[1] == '6') && (len == 2 || is_pnm_space(p[2])))
		return WEFT_IMAGE_PNM;
	return WEFT_IMAGE_UNKNOWN;
}

/* Name a recognised but unsupported format, or NULL. */
static const char *unsupported_name(const uint8_t *p, size_t len)
{
	if (len >= 4 && !memcmp(p, "GIF8", 4))
		return "GIF";
	if (len >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4))
		return "WebP";
	if (len >= 2 && p[0] == 'B' && p[1] == 'M')
		return "BMP";
	if (len >= 4 && (!memcmp(p, "II*\0", 4) || !memcmp(p, "MM\0*", 4)))
		return "TIFF";
	if (len >= 3 && p[0] == 'P' && strchr("12347", p[1]) && p[1] && is_pnm_space(p[2]))
		return "plain or PAM PNM (only binary P5/P6)";
	return NULL;
}

/* Reject 0xN and too many pixels, before decoding. */
static int check_size(uint64_t w, uint64_t h, uint64_t max_pixels)
{
	if (!w || !h) {
		weft_error("image has zero width or height (%llux%llu)", (unsigned long long)w,
			   (unsigned long long)h);
		return -1;
	}
	if (w > INT32_MAX / 4 || h > INT32_MAX / 4 || w * h > max_pixels) {
		weft_error("image %llux%llu exceeds the %llu-pixel limit", (unsigned long long)w,
			   (unsigned long long)h, (unsigned long long)max_pixels);
		return -1;
	}
	return 0;
}

/* RGBA -> RGB: composite onto opaque white exactly as PIL's
 * Image.alpha_composite(white, im).convert("RGB") (7 extra bits of
 * precision, rounded divisions by 255), or just drop alpha. */
static void rgba_to_rgb(uint8_t *dst, const uint8_t *src, size_t npix, int drop)
{
	for (size_t i = 0; i < npix; i++, src += 4, dst += 3) {
		uint32_t a = src[3];
		if (drop || a == 255) {
			dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
			continue;
		}
		if (a == 0) {
			dst[0] = dst[1] = dst[2] = 255;
			continue;
		}
		uint32_t outa255 = a * 255 + 255 * (255 - a);
		uint32_t coef1 = a * 255 * 255 * 128 / outa255, coef2 = 255 * 128 - coef1;
		for (int c = 0; c < 3; c++) {
			uint32_t t = src[c] * coef1 + 255 * coef2 + (0x80 << 7);
			dst[c] = (uint8_t)(((((t >> 8) + t) >> 8)) >> 7);
		}
	}
}

/* ---- PNG ---- */

typedef struct {
	const uint8_t *buf;
	size_t len, pos;
	int truncated;
	unsigned warnings;
	char msg[256];
	uint8_t *px;
	png_bytep *rows;
	weft_image *im, *ret;
} png_ctx;

static void png_err_fn(png_structp png, png_const_charp msg)
{
	png_ctx *c = png_get_error_ptr(png);
	snprintf(c->msg, sizeof c->msg, "%s", msg);
	png_longjmp(png, 1);
}

/* What is left as warnings (libpng's opinions on ancillary chunks, such as
 * an sRGB profile it knows to be wrong) leaves the pixels intact: counted. */
static void png_warn_fn(png_structp png, png_const_charp msg)
{
	png_ctx *c = png_get_error_ptr(png);
	(void)msg;
	c->warnings++;
}

static void png_read_fn(png_structp png, png_bytep out, size_t n)
{
	png_ctx *c = png_get_io_ptr(png);
	if (n > c->len - c->pos) {
		c->truncated = 1;
		png_error(png, "truncated");
	}
	memcpy(out, c->buf + c->pos, n);
	c->pos += n;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static weft_image *decode_png(const uint8_t *buf, size_t len, const weft_image_opts *o)
{
	if (len < 8 + 8 + 13 + 4) {
		weft_error("truncated PNG");
		return NULL;
	}
	/* the size limit, straight from IHDR (libpng would say more cryptically) */
	if (!memcmp(buf + 12, "IHDR", 4)) {
		uint64_t w = be32(buf + 16), h = be32(buf + 20);
		if (check_size(w, h, o->max_pixels))
			return NULL;
		/* deflate codes at most 258 bytes in 2 bits: a header whose pixels
		 * the file cannot hold is corrupt, found before allocating them */
		static const int chans[7] = {1, 0, 3, 1, 2, 0, 4};
		uint64_t bits = (uint64_t)buf[24] * (buf[25] < 7 ? (unsigned)chans[buf[25]] : 0);
		uint64_t need = h * ((w * bits + 7) / 8) / 1032;
		if (len < need) { /* cut short, or a damaged header */
			if (memcmp(buf + len - 8, "IEND", 4))
				weft_error("truncated PNG");
			else
				weft_error("corrupt PNG: %llux%llu needs at least %llu bytes of compressed data, "
					   "the file has %zu", (unsigned long long)w, (unsigned long long)h,
					   (unsigned long long)need, len);
			return NULL;
		}
	}
	png_ctx *c = weft_calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->buf = buf;
	c->len = len;
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_err_fn, png_warn_fn);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		free(c);
		weft_error("out of memory (libpng)");
		return NULL;
	}
	if (setjmp(png_jmpbuf(png))) {
		if (c->truncated)
			weft_error("truncated PNG");
		else if (c->msg[0])
			weft_error("corrupt PNG: %s", c->msg);
		/* else: our own error, already recorded */
		goto out;
	}
	png_set_read_fn(png, c, png_read_fn);
	/* a bad CRC in any chunk is damage: an error (libpng only warns about
	 * ancillary chunks); libpng's benign errors (an sRGB profile it knows to
	 * be wrong, image data after the last row) stay warnings */
	if (!(o->flags & WEFT_IMAGE_LENIENT))
		png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
	png_set_user_limits(png, 0x7fffffff, 0x7fffffff); /* our limit applies */
	png_read_info(png, info);

	png_uint_32 w, h;
	int depth, ctype, ilace;
	png_get_IHDR(png, info, &w, &h, &depth, &ctype, &ilace, NULL, NULL);
	if (check_size(w, h, o->max_pixels))
		png_longjmp(png, 1);
	int has_alpha = (ctype & PNG_COLOR_MASK_ALPHA) != 0;
	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (png_get_valid(png, info, PNG_INFO_tRNS)) {
		png_set_tRNS_to_alpha(png);
		has_alpha = 1;
	}
	if (depth == 16)
		png_set_strip_16(png); /* the high byte, as PIL */
	if (!(ctype & PNG_COLOR_MASK_COLOR))
		png_set_gray_to_rgb(png);
	if (!has_alpha)
		png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	if (png_get_rowbytes(png, info) != (size_t)w * 4) {
		snprintf(c->msg, sizeof c->msg, "unexpected row layout");
		png_longjmp(png, 1);
	}
	c->px = weft_malloc((size_t)w * h * 4);
	c->rows = weft_malloc(h * sizeof *c->rows);
	c->im = weft_image_new((int)w, (int)h);
	if (!c->px || !c->rows || !c->im)
		png_longjmp(png, 1);
	for (png_uint_32 y = 0; y < h; y++)
		c->rows[y] = c->px + (size_t)y * w * 4;
	png_read_image(png, c->rows);
	png_read_end(png, NULL);
	rgba_to_rgb(c->im->rgb, c->px, (size_t)w * h, (o->flags & WEFT_IMAGE_ALPHA_DROP) || !has_alpha);
	c->im->format = WEFT_IMAGE_PNG;
	c->im->warnings = c->warnings;
	c->ret = c->im;
	c->im = NULL;
out:
	png_destroy_read_struct(&png, &info, NULL);
	free(c->px);
	free(c->rows);
	weft_image_free(c->im);
	weft_image *ret = c->ret;
	free(c);
	return ret;
}

/* ---- JPEG ---- */

typedef struct {
	struct jpeg_error_mgr pub;
	struct jpeg_progress_mgr prog;
	jmp_buf jb;
	int truncated, lenient;
	char msg[JMSG_LENGTH_MAX + 32];
	struct jpeg_decompress_struct ci;
	uint8_t *row;
	weft_image *im, *ret;
} jpg_ctx;

static void jpg_error_exit(j_common_ptr ci)
{
	jpg_ctx *c = (jpg_ctx *)ci->err;
	if (ci->err->msg_code == JERR_EMPTY_IMAGE)
		snprintf(c->msg, sizeof c->msg, "image has zero width or height (%ux%u)",
			 (unsigned)c->ci.image_width, (unsigned)c->ci.image_height);
	else {
		char m[JMSG_LENGTH_MAX];
		ci->err->format_message(ci, m);
		snprintf(c->msg, sizeof c->msg, "corrupt JPEG: %s", m);
	}
	longjmp(c->jb, 1);
}

/* libjpeg's warnings are mostly corrupt entropy-coded data, which it papers
 * over (grey or shifted blocks): errors unless WEFT_IMAGE_LENIENT, then only
 * counted, as PIL tolerates them.  Running out of data is always an error. */
static void jpg_emit_message(j_common_ptr ci, int level)
{
	jpg_ctx *c = (jpg_ctx *)ci->err;
	if (level >= 0)
		return;
	if (ci->err->msg_code == JWRN_JPEG_EOF) {
		c->truncated = 1;
		longjmp(c->jb, 1);
	}
	ci->err->num_warnings++;
	if (c->lenient)
		return;
	char m[JMSG_LENGTH_MAX];
	ci->err->format_message(ci, m);
	const char *t = m;
	static const char *const prefix[] = { "Corrupt JPEG data: ", "Warning: " };
	for (int i = 0; i < 2; i++)
		if (!strncmp(t, prefix[i], strlen(prefix[i])))
			t += strlen(prefix[i]);
	snprintf(c->msg, sizeof c->msg, "corrupt JPEG: %s", t);
	longjmp(c->jb, 1);
}

static void jpg_output_message(j_common_ptr ci) { (void)ci; }

static void jpg_progress(j_common_ptr ci)
{
	jpg_ctx *c = (jpg_ctx *)ci->err;
	if (c->ci.input_scan_number > MAX_JPEG_SCANS) {
		snprintf(c->msg, sizeof c->msg, "corrupt JPEG: more than %d scans", MAX_JPEG_SCANS);
		longjmp(c->jb, 1);
	}
}

static unsigned rd16(const uint8_t *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t rd32(const uint8_t *p, int le)
{
	return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : be32(p);
}

/* Orientation (1..8) from an APP1 Exif payload, 1 if absent or invalid. */
static int exif_orientation(const uint8_t *d, size_t n)
{
	if (n < 6 + 8 || memcmp(d, "Exif\0\0", 6))
		return 1;
	const uint8_t *t = d + 6;
	size_t tn = n - 6;
	int le;
	if (!memcmp(t, "II*\0", 4))
		le = 1;
	else if (!memcmp(t, "MM\0*", 4))
		le = 0;
	else
		return 1;
	uint32_t off = rd32(t + 4, le);
	if (off > tn || tn - off < 2)
		return 1;
	unsigned cnt = rd16(t + off, le);
	for (unsigned i = 0; i < cnt; i++) {
		size_t e = (size_t)off + 2 + (size_t)i * 12;
		if (e + 12 > tn)
			break;
		if (rd16(t + e, le) != 0x0112)
			continue;
		unsigned type = rd16(t + e + 2, le);
		uint32_t v = type == 3 ? rd16(t + e + 8, le) : type == 4 ? rd32(t + e + 8, le) : 0;
		return v >= 1 && v <= 8 ? (int)v : 1;
	}
	return 1;
}

static weft_image *decode_jpeg(const uint8_t *buf, size_t len, const weft_image_opts *o)
{
	jpg_ctx *c = weft_calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->lenient = !!(o->flags & WEFT_IMAGE_LENIENT);
	c->ci.err = jpeg_std_error(&c->pub);
	c->pub.error_exit = jpg_error_exit;
	c->pub.emit_message = jpg_emit_message;
	c->pub.output_message = jpg_output_message;
	if (setjmp(c->jb)) {
		if (c->truncated)
			weft_error("truncated JPEG");
		else if (c->msg[0])
			weft_error("%s", c->msg);
		goto out;
	}
	jpeg_create_decompress(&c->ci);
	c->prog.progress_monitor = jpg_progress;
	c->ci.progress = &c->prog;
	jpeg_mem_src(&c->ci, buf, (unsigned long)len);
	jpeg_save_markers(&c->ci, JPEG_APP0 + 1, 0xffff);
	jpeg_read_header(&c->ci, TRUE);
	if (check_size(c->ci.image_width, c->ci.image_height, o->max_pixels))
		longjmp(c->jb, 1);
	/* Huffman coding spends at least one bit on every block (its DC code):
	 * a header whose size the file cannot hold is corrupt, found here before
	 * anything of that size is allocated */
	if (!c->ci.arith_code) {
		uint64_t blocks = 0;
		for (int i = 0; i < c->ci.num_components; i++)
			blocks += (uint64_t)c->ci.comp_info[i].width_in_blocks * c->ci.comp_info[i].height_in_blocks;
		if (len < (blocks + 7) / 8) { /* cut short, or a damaged header */
			if (buf[len - 2] != 0xff || buf[len - 1] != 0xd9) {
				c->truncated = 1;
				longjmp(c->jb, 1);
			}
			snprintf(c->msg, sizeof c->msg,
				 "corrupt JPEG: %ux%u needs at least %llu bytes of coded data, the file has %zu",
				 (unsigned)c->ci.image_width, (unsigned)c->ci.image_height,
				 (unsigned long long)((blocks + 7) / 8), len);
			longjmp(c->jb, 1);
		}
	}
	switch (c->ci.jpeg_color_space) {
	case JCS_GRAYSCALE: c->ci.out_color_space = JCS_GRAYSCALE; break;
	case JCS_RGB:
	case JCS_YCbCr: c->ci.out_color_space = JCS_RGB; break;
	case JCS_CMYK:
	case JCS_YCCK: c->ci.out_color_space = JCS_CMYK; break;
	default:
		snprintf(c->msg, sizeof c->msg, "unsupported JPEG colour space (%d components)",
			 c->ci.num_components);
		longjmp(c->jb, 1);
	}
	int orient = 1;
	for (jpeg_saved_marker_ptr m = c->ci.marker_list; m; m = m->next)
		if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && !memcmp(m->data, "Exif\0\0", 6)) {
			orient = exif_orientation(m->data, m->data_length);
			break; /* the first Exif block, as PIL */
		}
	jpeg_start_decompress(&c->ci);
	int w = (int)c->ci.output_width, h = (int)c->ci.output_height, nc = c->ci.output_components;
	c->row = weft_malloc((size_t)w * 4);
	c->im = weft_image_new(w, h);
	if (!c->row || !c->im)
		longjmp(c->jb, 1);
	while (c->ci.output_scanline < c->ci.output_height) {
		uint8_t *dst = c->im->rgb + (size_t)c->ci.output_scanline * w * 3;
		JSAMPROW r = c->row;
		if (jpeg_read_scanlines(&c->ci, &r, 1) != 1) {
			c->truncated = 1;
			longjmp(c->jb, 1);
		}
		if (nc == 3) {
			memcpy(dst, c->row, (size_t)w * 3);
		} else if (nc == 1) {
			for (int x = 0; x < w; x++)
				dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = c->row[x];
		} else {
			/* Adobe-inverted CMYK ("CMYK;I" in PIL): stored value = 255 - ink;
			 * then PIL's cmyk2rgb: nk - nk*ink/255 with rounded division */
			for (int x = 0; x < w; x++) {
				const uint8_t *s = c->row + 4 * x;
				int nk = s[3]; /* 255 - k */
				for (int ch = 0; ch < 3; ch++) {
					int ink = 255 - s[ch], t = ink * nk + 128;
					int v = nk - (((t >> 8) + t) >> 8);
					dst[3 * x + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
				}
			}
		}
	}
	jpeg_finish_decompress(&c->ci);
	c->im->format = WEFT_IMAGE_JPEG;
	c->im->warnings = (unsigned)c->pub.num_warnings;
	c->im->orientation = orient;
	c->ret = c->im;
	c->im = NULL;
out:
	jpeg_destroy_decompress(&c->ci);
	free(c->row);
	weft_image_free(c->im);
	weft_image *ret = c->ret;
	free(c);
	return ret;
}

/* ---- PNM (binary P5 grey, P6 RGB) ---- */

/* Next header number; -1 truncated, -2 malformed. */
static long pnm_num(const uint8_t *p, size_t len, size_t *pos)
{
	for (;;) {
		if (*pos >= len)
			return -1;
		if (p[*pos] == '#') {
			while (*pos < len && p[*pos] != '\n' && p[*pos] != '\r')
				(*pos)++;
		} else if (is_pnm_space(p[*pos])) {
			(*pos)++;
		} else {
			break;
		}
	}
	if (p[*pos] < '0' || p[*pos] > '9')
		return -2;
	long v = 0;
	while (*pos < len && p[*pos] >= '0' && p[*pos] <= '9') {
		v = v * 10 + (p[*pos] - '0');
		if (v > 0x7fffffff)
			return -2;
		(*pos)++;
	}
	if (*pos >= len)
		return -1; /* a number must be followed by whitespace */
	return v;
}

static weft_image *decode_pnm(const uint8_t *p, size_t len, const weft_image_opts *o)
{
	int nc = p[1] == '6' ? 3 : 1;
	size_t pos = 2;
	long v[3];
	for (int i = 0; i < 3; i++) {
		v[i] = pnm_num(p, len, &pos);
		if (v[i] == -1) {
			weft_error("truncated PNM");
			return NULL;
		}
		if (v[i] < 0 || (i == 2 && (v[i] < 1 || v[i] > 65535))) {
			weft_error("corrupt PNM: bad header");
			return NULL;
		}
		if (i == 1 && check_size((uint64_t)v[0], (uint64_t)v[1], o->max_pixels))
			return NULL;
	}
	if (!is_pnm_space(p[pos])) {
		weft_error("corrupt PNM: bad header");
		return NULL;
	}
	pos++;
	long w = v[0], h = v[1], maxval = v[2];
	int bps = maxval > 255 ? 2 : 1;
	size_t need = (size_t)w * (size_t)h * (size_t)nc * (size_t)bps;
	if (len - pos < need) {
		weft_error("truncated PNM");
		return NULL;
	}
	weft_image *im = weft_image_new((int)w, (int)h);
	if (!im)
		return NULL;
	uint8_t lut[256];
	for (int i = 0; i < 256; i++) /* PIL: min(255, round(v / maxval * 255)) */
		lut[i] = (uint8_t)(i >= maxval ? 255 : rint((double)i / (double)maxval * 255.0));
	const uint8_t *s = p + pos;
	size_t n = (size_t)w * (size_t)h;
	for (size_t i = 0; i < n; i++)
		for (int ch = 0; ch < 3; ch++) {
			size_t k = i * (size_t)nc + (size_t)(nc == 3 ? ch : 0);
			uint8_t b;
			if (bps == 1) {
				b = maxval == 255 ? s[k] : lut[s[k]];
			} else {
				unsigned x = (unsigned)s[2 * k] << 8 | s[2 * k + 1];
				b = (uint8_t)(x >= (unsigned)maxval ? 255 : rint((double)x / (double)maxval * 255.0));
			}
			im->rgb[3 * i + (size_t)ch] = b;
		}
	im->format = WEFT_IMAGE_PNM;
	return im;
}

/* ---- orientation ---- */

/* Apply EXIF orientation o (2..8) as PIL.ImageOps.exif_transpose. */
static weft_image *orient(weft_image *im, int o)
{
	int w = im->w, h = im->h, swap = o >= 5;
	weft_image *r = weft_image_new(swap ? h : w, swap ? w : h);
	if (!r) {
		weft_image_free(im);
		return NULL;
	}
	for (int dy = 0; dy < r->h; dy++)
		for (int dx = 0; dx < r->w; dx++) {
			int sx, sy;
			switch (o) {
			case 2: sx = w - 1 - dx, sy = dy; break;          /* mirror left-right */
			case 3: sx = w - 1 - dx, sy = h - 1 - dy; break;  /* rotate 180 */
			case 4: sx = dx, sy = h - 1 - dy; break;          /* mirror top-bottom */
			case 5: sx = dy, sy = dx; break;                  /* transpose */
			case 6: sx = dy, sy = h - 1 - dx; break;          /* rotate 90 clockwise */
			case 7: sx = w - 1 - dy, sy = h - 1 - dx; break;  /* transverse */
			default: sx = w - 1 - dy, sy = dx; break;         /* 8: rotate 90 anticlockwise */
			}
			memcpy(r->rgb + 3 * ((size_t)dy * r->w + dx), im->rgb + 3 * ((size_t)sy * w + sx), 3);
		}
	r->format = im->format;
	r->orientation = im->orientation;
	weft_image_free(im);
	return r;
}

/* ---- entry points ---- */

weft_image *weft_image_decode(const void *buf, size_t len, const weft_image_opts *opts)
{
	weft_image_opts o = opts ? *opts : (weft_image_opts){0};
	if (!o.max_pixels)
		o.max_pixels = WEFT_IMAGE_MAX_PIXELS_DEFAULT;
	const uint8_t *p = buf;
	weft_image *im = NULL;
	if (!len) {
		weft_error("not an image (empty input)");
		return NULL;
	}
	switch (weft_image_detect(p, len)) {
	case WEFT_IMAGE_PNG: im = decode_png(p, len, &o); break;
	case WEFT_IMAGE_JPEG:
		if (len < 4) {
			weft_error("truncated JPEG");
			return NULL;
		}
		im = decode_jpeg(p, len, &o);
		break;
	case WEFT_IMAGE_PNM: im = decode_pnm(p, len, &o); break;
	default: {
		const char *u = unsupported_name(p, len);
		if (u)
			weft_error("unsupported image format (%s)", u);
		else
			weft_error("not an image (unknown format)");
		return NULL;
	}
	}
	if (im && im->orientation > 1 && !(o.flags & WEFT_IMAGE_NO_EXIF))
		im = orient(im, im->orientation);
	return im;
}

weft_image *weft_image_load(const char *path, const weft_image_opts *opts)
{
	int is_stdin = !strcmp(path, "-");
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (!f) {
		weft_error("cannot open: %s", strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = weft_malloc(cap);
	while (buf) {
		if (n == cap) {
			if (cap >= MAX_FILE_BYTES) {
				weft_error("file larger than %llu bytes", (unsigned long long)MAX_FILE_BYTES);
				free(buf);
				buf = NULL;
				break;
			}
			uint8_t *nb = weft_realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (!got) {
			if (ferror(f)) {
				weft_error("read error: %s", strerror(errno));
				free(buf);
				buf = NULL;
			}
			break;
		}
	}
	if (!is_stdin)
		fclose(f);
	if (!buf)
		return NULL;
	weft_image *im = weft_image_decode(buf, n, opts);
	free(buf);
	return im;
}

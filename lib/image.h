/* image.h - decode PNG, JPEG and binary PNM into 8-bit RGB.
 *
 * The format is detected from the content (magic bytes), never from a file
 * name.  Every failure returns NULL with a one-line message (weft_errmsg):
 * "not an image (unknown format)", "truncated PNG", "corrupt JPEG: ...",
 * "image 100000x100000 exceeds the 67108864-pixel limit", ...  libpng and
 * libjpeg errors never abort the process and never leak.
 *
 * Damage is an error by default: libjpeg's warnings (corrupt entropy-coded
 * data, which it would decode as grey or shifted blocks: "corrupt JPEG:
 * premature end of data segment") and a bad CRC in any PNG chunk ("corrupt
 * PNG: tEXt: CRC error").  WEFT_IMAGE_LENIENT tolerates them as PIL does.
 * A header announcing more pixels than the file could code (JPEG: one bit
 * per Huffman-coded block; PNG: deflate's 1032:1) is refused before anything
 * of that size is allocated, in both modes.
 *
 * Conversion to RGB follows what the Hugging Face image processors see:
 *
 *  - alpha (PNG RGBA / grey+alpha / tRNS) is composited onto opaque white
 *    with PIL's integer alpha_composite arithmetic, as transformers'
 *    convert_to_rgb does for CLIPImageProcessor and Idefics3ImageProcessor
 *    given a PIL image.  WEFT_IMAGE_ALPHA_DROP instead discards alpha, as
 *    PIL's convert("RGB") does: that is what LLaVA's own loader
 *    (Image.open(f).convert("RGB")), transformers' load_image() (paths and
 *    URLs) and llama.cpp (stb_image) feed the model.
 *  - 16-bit samples keep their high byte (as PIL does for 16-bit RGB/RGBA
 *    PNGs; PIL clips 16-bit greyscale to 255 instead, which we do not copy).
 *  - CMYK/YCCK JPEGs use the Adobe (inverted) convention, as PIL and
 *    Photoshop do, and PIL's CMYK->RGB integer formula.
 *  - JPEG EXIF orientation (APP1 Exif, IFD0 tag 0x0112) is applied by
 *    default, like transformers' load_image() (PIL.ImageOps.exif_transpose);
 *    WEFT_IMAGE_NO_EXIF keeps the stored orientation, as Image.open() alone,
 *    LLaVA's loader and llama.cpp do.
 *  - PNM maxval scaling is PIL's round(v / maxval * 255), half to even. */
#ifndef WEFT_IMAGE_H
#define WEFT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Default limit on width * height, checked from the header before any
 * pixel is decoded (decompression bombs). */
#define WEFT_IMAGE_MAX_PIXELS_DEFAULT (64ull << 20)

/* Flags for weft_image_opts.flags. */
#define WEFT_IMAGE_ALPHA_DROP 1 /* discard alpha instead of white compositing */
#define WEFT_IMAGE_NO_EXIF 2    /* ignore JPEG EXIF orientation */
#define WEFT_IMAGE_LENIENT 4    /* accept what libjpeg / libpng only warn about (corrupt JPEG
				   entropy data decoded as grey or shifted blocks, bad CRCs of PNG
				   ancillary chunks), as PIL does; counted in weft_image.warnings */

typedef struct {
	uint64_t max_pixels; /* 0: WEFT_IMAGE_MAX_PIXELS_DEFAULT */
	unsigned flags;      /* WEFT_IMAGE_* */
} weft_image_opts;

typedef enum {
	WEFT_IMAGE_UNKNOWN = 0,
	WEFT_IMAGE_PNG,
	WEFT_IMAGE_JPEG,
	WEFT_IMAGE_PNM,
} weft_image_format;

/* An 8-bit RGB image, rows top to bottom, 3 bytes per pixel, no padding. */
typedef struct {
	int w, h;
	uint8_t *rgb;
	weft_image_format format; /* what it was decoded from */
	int orientation;          /* EXIF orientation found (1..8; 1 if none) */
	unsigned warnings;        /* decoder warnings tolerated (WEFT_IMAGE_LENIENT) */
} weft_image;

/* The format of a buffer by its magic bytes. */
weft_image_format weft_image_detect(const void *buf, size_t len);
/* "PNG", "JPEG", "PNM" or "unknown". */
const char *weft_image_format_name(weft_image_format f);

/* Decode from memory.  opts may be NULL (defaults). */
weft_image *weft_image_decode(const void *buf, size_t len, const weft_image_opts *opts);
/* Decode a file; "-" reads standard input. */
weft_image *weft_image_load(const char *path, const weft_image_opts *opts);

/* A new w x h image (pixels uninitialised); NULL on overflow/OOM. */
weft_image *weft_image_new(int w, int h);
void weft_image_free(weft_image *im);

#endif

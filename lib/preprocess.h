/* preprocess.h - vision-encoder inputs from decoded images: PIL-exact
 * resampling and the float CHW tensors of two processor families.
 *
 *  - CLIP / LLaVA-1.5 (weft_preproc_llava15): LLaVA's expand2square (pad the
 *    shorter side, centred, with int(mean * 255) per channel), resize the
 *    shortest edge to 336 with PIL bicubic, centre crop 336 x 336, then
 *    (x / 255 - mean) / std with the OpenAI CLIP mean and std.  With
 *    pad_square = 0 it is transformers' CLIPImageProcessor as llava-hf's
 *    processor runs it (resize + crop only).
 *  - Idefics3 / SmolVLM (weft_preproc_smolvlm): the preprocessor_config of
 *    HuggingFaceTB/SmolVLM-256M-Instruct run by Idefics3ImageProcessor:
 *    resize so the longest edge is 2048 (height or width rounded up to even,
 *    everything capped at 4096), resize again so both sides are multiples of
 *    the 512 tile, cut the tiles row-major and add the whole image resized to
 *    512 x 512 last (no global image when it is one tile already); PIL
 *    Lanczos ("resample": 1) for every resize; mean = std = 0.5.
 *
 * Every resize works on 8-bit images exactly as Pillow 13's ImagingResample
 * does (separable, antialiased on downscale, fixed-point coefficients, 8-bit
 * rounding between the passes, vertical pass first only when the height
 * shrinks by more than twice as many pixels as the width), so outputs match
 * the PIL-backend transformers processors bit for bit given the same RGB
 * input.  Pillow < 13 always resizes horizontally first: where the order
 * differs results may move by one 8-bit level in some pixels. */
#ifndef WEFT_PREPROCESS_H
#define WEFT_PREPROCESS_H

#include "image.h"

typedef enum {
	WEFT_FILTER_BICUBIC = 0, /* PIL BICUBIC (a = -0.5, support 2) */
	WEFT_FILTER_LANCZOS,     /* PIL LANCZOS (support 3) */
	WEFT_FILTER_BILINEAR,    /* PIL BILINEAR (support 1) */
} weft_filter;

/* PIL-exact Image.resize((w, h), filter) of an 8-bit RGB image. */
weft_image *weft_image_resize(const weft_image *im, int w, int h, weft_filter f);

typedef enum { WEFT_PP_CLIP = 1, WEFT_PP_IDEFICS3 } weft_pp_kind;

typedef struct {
	weft_pp_kind kind;
	int size;         /* CLIP: shortest edge and crop; Idefics3: tile side */
	int longest_edge; /* Idefics3: longest edge of the first resize */
	int pad_square;   /* CLIP: LLaVA expand2square before resizing */
	int split;        /* Idefics3: tiles + global image (else one size x size) */
	weft_filter filter;
	float mean[3], std[3];
} weft_preproc;

/* The processors described above. */
weft_preproc weft_preproc_llava15(void);
weft_preproc weft_preproc_smolvlm(void);

/* n images of c x h x w floats (CHW, image after image).  For Idefics3,
 * rows x cols tiles come first and the global image last; rows = cols = 0
 * when the image was not split. */
typedef struct {
	int n, c, h, w;
	int rows, cols;
	float *data;
} weft_pixels;

/* Preprocess im; 0 on success (free with weft_pixels_free), -1 with a
 * one-line error. */
int weft_preprocess(const weft_image *im, const weft_preproc *p, weft_pixels *out);
void weft_pixels_free(weft_pixels *px);

#endif

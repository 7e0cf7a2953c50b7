/* preprocess.c - PIL-exact resampling and the CLIP / Idefics3 processors.
 * See preprocess.h. */
#include "preprocess.h"
#include "util.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- PIL resampling (Pillow's libImaging/Resample.c, 8 bits per channel) ---- */

/* Fixed-point coefficients: 8 bits of result, 2 bits of headroom for the
 * negative lobes, as PIL's PRECISION_BITS. */
#define PRECISION_BITS (32 - 8 - 2)

static double bicubic_filter(double x)
{
	const double a = -0.5;
	if (x < 0.0)
		x = -x;
	if (x < 1.0)
		return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
	if (x < 2.0)
		return (((x - 5) * x + 8) * x - 4) * a;
	return 0.0;
}

static double sinc_filter(double x)
{
	if (x == 0.0)
		return 1.0;
	x = x * M_PI;
	return sin(x) / x;
}

static double lanczos_filter(double x)
{
	if (-3.0 <= x && x < 3.0)
		return sinc_filter(x) * sinc_filter(x / 3);
	return 0.0;
}

static double bilinear_filter(double x)
{
	if (x < 0.0)
		x = -x;
	return x < 1.0 ? 1.0 - x : 0.0;
}

typedef struct {
	double (*fn)(double);
	double support;
} filter_def;

static const filter_def filters[] = {
	[WEFT_FILTER_BICUBIC] = {bicubic_filter, 2.0},
	[WEFT_FILTER_LANCZOS] = {lanczos_filter, 3.0},
	[WEFT_FILTER_BILINEAR] = {bilinear_filter, 1.0},
};

/* Per output pixel: the first input index, the count, and ksize fixed-point
 * weights (PIL's precompute_coeffs + normalize_coeffs_8bpc). */
typedef struct {
	int ksize;
	int *bounds; /* 2 per output: xmin, n */
	int32_t *k;  /* ksize per output */
} coeffs;

static int precompute(int in_size, int out_size, const filter_def *f, coeffs *c)
{
	double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
	double support = f->support * filterscale;
	double ksz = ceil(support) * 2 + 1;
	if (ksz * out_size > (double)(INT_MAX / 8)) {
		weft_error("resize %d -> %d too large", in_size, out_size);
		return -1;
	}
	c->ksize = (int)ksz;
	double *kk = weft_malloc((size_t)out_size * (size_t)c->ksize * sizeof *kk);
	c->bounds = weft_malloc((size_t)out_size * 2 * sizeof *c->bounds);
	c->k = weft_malloc((size_t)out_size * (size_t)c->ksize * sizeof *c->k);
	if (!kk || !c->bounds || !c->k) {
		free(kk);
		return -1;
	}
	for (int xx = 0; xx < out_size; xx++) {
		double center = 0.0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
		int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
		if (xmin < 0)
			xmin = 0;
		if (xmax > in_size)
			xmax = in_size;
		xmax -= xmin;
		double *k = kk + (size_t)xx * (size_t)c->ksize;
		int x;
		for (x = 0; x < xmax; x++) {
			double w = f->fn((x + xmin - center + 0.5) * ss);
			k[x] = w;
			ww += w;
		}
		for (x = 0; x < xmax; x++)
			if (ww != 0.0)
				k[x] /= ww;
		for (; x < c->ksize; x++)
			k[x] = 0;
		c->bounds[2 * xx] = xmin;
		c->bounds[2 * xx + 1] = xmax;
	}
	for (size_t i = 0; i < (size_t)out_size * (size_t)c->ksize; i++)
		c->k[i] = kk[i] < 0 ? (int32_t)(-0.5 + kk[i] * (1 << PRECISION_BITS))
				    : (int32_t)(0.5 + kk[i] * (1 << PRECISION_BITS));
	free(kk);
	return 0;
}

static void coeffs_free(coeffs *c)
{
	free(c->bounds);
	free(c->k);
}

static inline uint8_t clip8(int v)
{
	if (v >= (1 << PRECISION_BITS << 8))
		return 255;
	if (v <= 0)
		return 0;
	return (uint8_t)(v >> PRECISION_BITS);
}

/* Rows y0..y0+out->h-1 of in, resampled horizontally into out. */
static void pass_h(weft_image *out, const weft_image *in, int y0, const coeffs *c)
{
	for (int y = 0; y < out->h; y++) {
		const uint8_t *src = in->rgb + (size_t)(y + y0) * (size_t)in->w * 3;
		uint8_t *dst = out->rgb + (size_t)y * (size_t)out->w * 3;
		for (int xx = 0; xx < out->w; xx++) {
			int xmin = c->bounds[2 * xx], n = c->bounds[2 * xx + 1];
			const int32_t *k = c->k + (size_t)xx * (size_t)c->ksize;
			int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
			const uint8_t *p = src + (size_t)xmin * 3;
			for (int x = 0; x < n; x++, p += 3) {
				s0 += p[0] * k[x];
				s1 += p[1] * k[x];
				s2 += p[2] * k[x];
			}
			dst[3 * xx] = clip8(s0);
			dst[3 * xx + 1] = clip8(s1);
			dst[3 * xx + 2] = clip8(s2);
		}
	}
}

/* Vertical pass; bounds are relative to row y0 of in. */
static void pass_v(weft_image *out, const weft_image *in, int y0, const coeffs *c)
{
	size_t stride = (size_t)in->w * 3;
	for (int yy = 0; yy < out->h; yy++) {
		int ymin = c->bounds[2 * yy] - y0, n = c->bounds[2 * yy + 1];
		const int32_t *k = c->k + (size_t)yy * (size_t)c->ksize;
		uint8_t *dst = out->rgb + (size_t)yy * stride;
		for (size_t x = 0; x < stride; x++) {
			int s = 1 << (PRECISION_BITS - 1);
			const uint8_t *p = in->rgb + (size_t)ymin * stride + x;
			for (int y = 0; y < n; y++, p += stride)
				s += *p * k[y];
			dst[x] = clip8(s);
		}
	}
}

weft_image *weft_image_resize(const weft_image *im, int w, int h, weft_filter f)
{
	if (w <= 0 || h <= 0 || (unsigned)f > WEFT_FILTER_BILINEAR) {
		weft_error("bad resize to %dx%d", w, h);
		return NULL;
	}
	if (w == im->w && h == im->h) { /* PIL returns a copy */
		weft_image *r = weft_image_new(w, h);
		if (r)
			memcpy(r->rgb, im->rgb, (size_t)w * (size_t)h * 3);
		return r;
	}
	coeffs ch = {0}, cv = {0};
	weft_image *tmp = NULL, *out = NULL;
	if (precompute(im->w, w, &filters[f], &ch) || precompute(im->h, h, &filters[f], &cv))
		goto done;
	/* Pillow >= 13 runs the vertical pass first when the height shrinks by
	 * more than twice as many pixels as the width (Resample.c); earlier
	 * versions always go horizontal first.  The 8-bit rounding between the
	 * passes makes the order visible. */
	if (h < im->h && (int64_t)(im->h - h) > 2 * (int64_t)(im->w - w)) {
		tmp = weft_image_new(im->w, h);
		if (!tmp)
			goto done;
		pass_v(tmp, im, 0, &cv);
		if (w == im->w) {
			out = tmp;
			tmp = NULL;
		} else if ((out = weft_image_new(w, h)) != NULL) {
			pass_h(out, tmp, 0, &ch);
		}
		goto done;
	}
	const weft_image *src = im;
	int y0 = 0;
	if (w != im->w) {
		/* only the source rows the vertical pass will read */
		int first = cv.bounds[0], last = cv.bounds[2 * h - 2] + cv.bounds[2 * h - 1];
		if (h == im->h)
			first = 0, last = im->h;
		tmp = weft_image_new(w, last - first);
		if (!tmp)
			goto done;
		pass_h(tmp, im, first, &ch);
		src = tmp;
		y0 = first;
	}
	if (h != im->h) {
		out = weft_image_new(w, h);
		if (out)
			pass_v(out, src, y0, &cv);
	} else {
		out = tmp;
		tmp = NULL;
	}
done:
	coeffs_free(&ch);
	coeffs_free(&cv);
	weft_image_free(tmp);
	return out;
}

/* ---- processors ---- */

/* Largest intermediate image a processor builds (pixels): the shortest-edge
 * resize of a very elongated image (LLaVA's padded square is never built). */
#define MAX_WORK_PIXELS (1ull << 28)

static int work_size_ok(const weft_image *im, uint64_t w, uint64_t h)
{
	if (w * h > MAX_WORK_PIXELS) {
		weft_error("image %dx%d too elongated to preprocess (needs a %llux%llu intermediate)",
			   im->w, im->h, (unsigned long long)w, (unsigned long long)h);
		return 0;
	}
	return 1;
}

weft_preproc weft_preproc_llava15(void)
{
	return (weft_preproc){
		.kind = WEFT_PP_CLIP, .size = 336, .pad_square = 1, .filter = WEFT_FILTER_BICUBIC,
		.mean = {0.48145466, 0.4578275, 0.40821073}, /* OPENAI_CLIP_MEAN */
		.std = {0.26862954, 0.26130258, 0.27577711},  /* OPENAI_CLIP_STD */
	};
}

weft_preproc weft_preproc_smolvlm(void)
{
	return (weft_preproc){
		.kind = WEFT_PP_IDEFICS3, .size = 512, .longest_edge = 2048, .split = 1,
		.filter = WEFT_FILTER_LANCZOS, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.5f, 0.5f, 0.5f},
	};
}

void weft_pixels_free(weft_pixels *px)
{
	if (px) {
		free(px->data);
		px->data = NULL;
	}
}

/* Image i of out (size x size) from the region (x0, y0) of im:
 * float32((float32(x * (1/255)) - mean) / std), numpy's order of rounding. */
static void put_tile(weft_pixels *out, int i, const weft_image *im, int x0, int y0, const weft_preproc *p)
{
	size_t plane = (size_t)out->h * (size_t)out->w;
	float *d = out->data + (size_t)i * 3 * plane;
	float lut[3][256];
	for (int c = 0; c < 3; c++)
		for (int v = 0; v < 256; v++) {
			float r = (float)((double)v * (1.0 / 255.0));
			lut[c][v] = (r - p->mean[c]) / p->std[c];
		}
	for (int y = 0; y < out->h; y++) {
		const uint8_t *s = im->rgb + ((size_t)(y + y0) * (size_t)im->w + (size_t)x0) * 3;
		for (int x = 0; x < out->w; x++)
			for (int c = 0; c < 3; c++)
				d[(size_t)c * plane + (size_t)y * (size_t)out->w + (size_t)x] = lut[c][s[3 * x + c]];
	}
}

static int alloc_pixels(weft_pixels *out, int n, int size)
{
	memset(out, 0, sizeof *out);
	out->n = n, out->c = 3, out->h = out->w = size;
	out->data = weft_malloc((size_t)n * 3 * (size_t)size * (size_t)size * sizeof(float));
	return out->data ? 0 : -1;
}

/* Prefix sums of each output's weights: P[o * (ksize + 1) + i] = k[0..i). */
static int64_t *weight_prefix(const coeffs *c, int n)
{
	int64_t *pre = weft_malloc((size_t)n * (size_t)(c->ksize + 1) * sizeof *pre);
	for (int o = 0; pre && o < n; o++) {
		int64_t *P = pre + (size_t)o * (size_t)(c->ksize + 1);
		const int32_t *k = c->k + (size_t)o * (size_t)c->ksize;
		P[0] = 0;
		for (int i = 0; i < c->bounds[2 * o + 1]; i++)
			P[i + 1] = P[i] + k[i];
	}
	return pre;
}

/* Output o's taps [*a, *b) that fall on [lo, hi) of the input (the rest fall
 * on the background), and the background taps' summed weight. */
static int64_t split_taps(const coeffs *c, const int64_t *pre, int o, int lo, int hi, int *a, int *b)
{
	int xmin = c->bounds[2 * o], cnt = c->bounds[2 * o + 1];
	const int64_t *P = pre + (size_t)o * (size_t)(c->ksize + 1);
	int x0 = lo - xmin, x1 = hi - xmin;
	x0 = x0 < 0 ? 0 : x0 > cnt ? cnt : x0;
	x1 = x1 < x0 ? x0 : x1 > cnt ? cnt : x1;
	*a = x0, *b = x1;
	return P[x0] + (P[cnt] - P[x1]);
}

/* weft_image_resize(square, n, n, f) where square is im centred on an s x s
 * background of colour bg (LLaVA's expand2square), without building the
 * square: in each pass the background taps add bg * (their summed weight),
 * the same integers the per-tap loop adds, and the background rows all
 * resample to one row.  Costs about the image's pixels, not s * s. */
static weft_image *resize_padded(const weft_image *im, int s, const uint8_t bg[3], int n, weft_filter f)
{
	const int half = 1 << (PRECISION_BITS - 1);
	int ox = im->w < im->h ? (s - im->w) / 2 : 0, oy = im->w > im->h ? (s - im->h) / 2 : 0;
	coeffs ch = {0}, cv = {0};
	weft_image *tmp = NULL, *out = NULL;
	int64_t *ph = NULL, *pv = NULL;
	uint8_t *bgrow = NULL;
	if (precompute(s, n, &filters[f], &ch) || precompute(s, n, &filters[f], &cv))
		goto done;
	ph = weight_prefix(&ch, n);
	pv = weight_prefix(&cv, n);
	bgrow = weft_malloc((size_t)n * 3);
	if (!ph || !pv || !bgrow || !(tmp = weft_image_new(n, im->h)) || !(out = weft_image_new(n, n)))
		goto fail;
	/* horizontal pass: a background row, then the image's rows */
	for (int xx = 0; xx < n; xx++) {
		int a, b;
		int64_t w = split_taps(&ch, ph, xx, 0, 0, &a, &b);
		for (int c = 0; c < 3; c++)
			bgrow[3 * xx + c] = clip8((int)(half + bg[c] * w));
	}
	for (int y = 0; y < im->h; y++) {
		const uint8_t *row = im->rgb + (size_t)y * (size_t)im->w * 3;
		uint8_t *dst = tmp->rgb + (size_t)y * (size_t)n * 3;
		for (int xx = 0; xx < n; xx++) {
			int a, b, xmin = ch.bounds[2 * xx];
			int64_t wbg = split_taps(&ch, ph, xx, ox, ox + im->w, &a, &b);
			const int32_t *k = ch.k + (size_t)xx * (size_t)ch.ksize;
			int64_t s0 = half + bg[0] * wbg, s1 = half + bg[1] * wbg, s2 = half + bg[2] * wbg;
			for (int x = a; x < b; x++) {
				const uint8_t *p = row + (size_t)(xmin + x - ox) * 3;
				s0 += p[0] * k[x];
				s1 += p[1] * k[x];
				s2 += p[2] * k[x];
			}
			dst[3 * xx] = clip8((int)s0);
			dst[3 * xx + 1] = clip8((int)s1);
			dst[3 * xx + 2] = clip8((int)s2);
		}
	}
	/* vertical pass: rows [oy, oy + im->h) of the square are tmp's */
	size_t stride = (size_t)n * 3;
	for (int yy = 0; yy < n; yy++) {
		int a, b, ymin = cv.bounds[2 * yy];
		int64_t wbg = split_taps(&cv, pv, yy, oy, oy + im->h, &a, &b);
		const int32_t *k = cv.k + (size_t)yy * (size_t)cv.ksize;
		uint8_t *dst = out->rgb + (size_t)yy * stride;
		for (size_t x = 0; x < stride; x++) {
			int64_t acc = half + bgrow[x] * wbg;
			for (int y = a; y < b; y++)
				acc += tmp->rgb[(size_t)(ymin + y - oy) * stride + x] * k[y];
			dst[x] = clip8((int)acc);
		}
	}
	goto done;
fail:
	weft_image_free(out);
	out = NULL;
done:
	coeffs_free(&ch);
	coeffs_free(&cv);
	free(ph);
	free(pv);
	free(bgrow);
	weft_image_free(tmp);
	return out;
}

/* LLaVA expand2square + shortest-edge resize + centre crop. */
static int pp_clip(const weft_image *im, const weft_preproc *p, weft_pixels *out)
{
	weft_image *rs = NULL;
	int ret = -1;
	int nw, nh;
	if (p->pad_square && im->w != im->h) {
		/* the square's shortest-edge resize is p->size square: no crop */
		int s = im->w > im->h ? im->w : im->h;
		uint8_t bg[3];
		for (int c = 0; c < 3; c++)
			bg[c] = (uint8_t)(int)((double)p->mean[c] * 255);
		nw = nh = p->size;
		/* also when s == p->size: at scale 1 every filter's fixed-point
		 * weights are 1 on the centre tap and 0 elsewhere, so the result is
		 * the square itself, as weft_image_resize's copy */
		rs = resize_padded(im, s, bg, p->size, p->filter);
	} else {
		/* transformers' get_resize_output_image_size(default_to_square=False) */
		int shorter = im->w <= im->h ? im->w : im->h, longer = im->w <= im->h ? im->h : im->w;
		double nld = (double)p->size * (double)longer / (double)shorter;
		if (!work_size_ok(im, (uint64_t)p->size, (uint64_t)nld))
			return -1;
		int nl = (int)nld;
		nw = im->w <= im->h ? p->size : nl, nh = im->w <= im->h ? nl : p->size;
		rs = weft_image_resize(im, nw, nh, p->filter);
	}
	if (!rs || alloc_pixels(out, 1, p->size))
		goto done;
	put_tile(out, 0, rs, (nw - p->size) / 2, (nh - p->size) / 2, p);
	ret = 0;
done:
	weft_image_free(rs);
	return ret;
}

/* Idefics3ImageProcessor: longest-edge resize, tile-multiple resize, split. */
static int pp_idefics3(const weft_image *im, const weft_preproc *p, weft_pixels *out)
{
	const int T = p->size, cap = 4096; /* MAX_IMAGE_SIZE */
	int h = im->h, w = im->w;
	/* _resize_output_size_rescale_to_max_len */
	double ar = (double)w / h;
	if (w >= h) {
		w = p->longest_edge;
		h = (int)(w / ar);
		h += h % 2;
	} else {
		h = p->longest_edge;
		w = (int)(h * ar);
		w += w % 2;
	}
	h = h < 1 ? 1 : h;
	w = w < 1 ? 1 : w;
	/* _resize_output_size_scale_below_upper_bound */
	ar = (double)w / h;
	if (w >= h && w > cap) {
		w = cap;
		h = (int)(w / ar);
	} else if (h > w && h > cap) {
		h = cap;
		w = (int)(h * ar);
	}
	h = h < 1 ? 1 : h;
	w = w < 1 ? 1 : w;
	weft_image *a = weft_image_resize(im, w, h, p->filter), *b = NULL, *g = NULL;
	int ret = -1;
	if (!a)
		return -1;
	if (!p->split) {
		b = weft_image_resize(a, T, T, p->filter);
		if (!b || alloc_pixels(out, 1, T))
			goto done;
		put_tile(out, 0, b, 0, 0, p);
		ret = 0;
		goto done;
	}
	/* resize_for_vision_encoder */
	ar = (double)w / h;
	if (w >= h) {
		w = (int)ceil((double)w / T) * T;
		h = (int)(w / ar);
		h = (int)ceil((double)h / T) * T;
	} else {
		h = (int)ceil((double)h / T) * T;
		w = (int)(h * ar);
		w = (int)ceil((double)w / T) * T;
	}
	if (w <= 0 || h <= 0) {
		weft_error("image aspect ratio too extreme (%dx%d)", im->w, im->h);
		goto done;
	}
	b = weft_image_resize(a, w, h, p->filter);
	if (!b)
		goto done;
	if (h > T || w > T) {
		int rows = (h - T) / T + 1, cols = (w - T) / T + 1;
		g = weft_image_resize(b, T, T, p->filter);
		if (!g || alloc_pixels(out, rows * cols + 1, T))
			goto done;
		for (int r = 0; r < rows; r++)
			for (int c = 0; c < cols; c++)
				put_tile(out, r * cols + c, b, c * T, r * T, p);
		put_tile(out, rows * cols, g, 0, 0, p);
		out->rows = rows;
		out->cols = cols;
	} else {
		if (alloc_pixels(out, 1, T))
			goto done;
		put_tile(out, 0, b, 0, 0, p);
	}
	ret = 0;
done:
	weft_image_free(a);
	weft_image_free(b);
	weft_image_free(g);
	return ret;
}

int weft_preprocess(const weft_image *im, const weft_preproc *p, weft_pixels *out)
{
	memset(out, 0, sizeof *out);
	if (!im || im->w <= 0 || im->h <= 0 || p->size <= 0 || p->size > 8192 ||
	    (p->kind == WEFT_PP_IDEFICS3 && (p->longest_edge <= 0 || p->longest_edge > 4096))) {
		weft_error("bad preprocessing parameters");
		return -1;
	}
	if (p->kind == WEFT_PP_CLIP)
		return pp_clip(im, p, out);
	if (p->kind == WEFT_PP_IDEFICS3)
		return pp_idefics3(im, p, out);
	weft_error("unknown preprocessor kind %d", (int)p->kind);
	return -1;
}

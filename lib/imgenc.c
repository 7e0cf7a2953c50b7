/* imgenc.c - see imgenc.h. */
#include "imgenc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "preprocess.h"
#include "stream.h"
#include "util.h"

/* One image and, once encoded, its tiles' outputs. */
typedef struct img {
	char *path;
	int tiles, rows, cols; /* from preprocessing */
	float *embd;           /* [tiles][n_tokens][n_embd_out] */
	float *sal;            /* [tiles][n_layer_run][n_patches] */
	float *keys, *recv;    /* [tiles][n_patches][n_embd], like sal; or NULL */
	int32_t *kept;         /* [tiles][flowcut] or NULL */
} img;

struct weft_imgenc {
	const weft_vision *v;
	weft_pool *pool;
	weft_preproc pp;
	weft_image_opts io;
	char fp[17];
	/* tiles waiting for the encoder */
	int cap, n;
	size_t tile_floats, embd_floats, sal_floats, key_floats;
	unsigned stats;
	int flowcut, n_out;         /* FlowCut's patches kept; tokens out per tile */
	int32_t *kept;              /* [cap][flowcut] */
	char pruned[48];
	float *pixels, *embd, *sal, *keys, *recv; /* [cap][...] */
	int *owner, *tile;          /* per slot: image index and tile */
	img *imgs;
	int n_imgs;
	size_t cap_imgs;
	int calls;
	double seconds;
	unsigned warnings;
	char pre[96], suf[96];      /* the last tile's wrapper text */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

weft_imgenc *weft_imgenc_new(const weft_vision *v, weft_pool *pool, const weft_imgenc_opts *o)
{
	weft_imgenc *e = weft_calloc(1, sizeof *e);
	if (!e)
		return NULL;
	const weft_vision_hparams *hp = &v->hp;
	e->v = v;
	e->pool = pool;
	e->pp = weft_vision_preproc(v);
	e->io = o->image;
	/* each family's reference loader: LLaVA's convert("RGB") drops alpha,
	 * the Idefics3 processor composites onto white */
	if (o->alpha < 0 ? hp->proj == WEFT_PROJ_MLP : o->alpha)
		e->io.flags |= WEFT_IMAGE_ALPHA_DROP;
	weft_fingerprint_hex(v->fingerprint, e->fp);
	e->cap = o->batch > 0 ? o->batch : 16;
	e->tile_floats = (size_t)3 * hp->image_size * hp->image_size;
	if (o->flowcut && (!hp->has_cls || hp->proj != WEFT_PROJ_MLP)) {
		weft_error("flowcut needs an encoder with a class token and an mlp projector (LLaVA's CLIP)");
		free(e);
		return NULL;
	}
	/* a budget of every patch or more passes through */
	e->flowcut = o->flowcut < hp->n_patches ? o->flowcut : 0;
	e->n_out = o->flowcut ? o->flowcut : hp->n_tokens;
	snprintf(e->pruned, sizeof e->pruned, "flowcut keep=%d", o->flowcut);
	e->embd_floats = (size_t)e->n_out * hp->n_embd_out;
	e->sal_floats = (size_t)hp->n_layer_run * hp->n_patches;
	e->key_floats = (size_t)hp->n_patches * hp->n_embd;
	e->stats = o->stats;
	if (e->stats & WEFT_IMGENC_KEYS)
		e->keys = weft_malloc((size_t)e->cap * e->key_floats * sizeof(float));
	if (e->stats & WEFT_IMGENC_ATTN)
		e->recv = weft_malloc((size_t)e->cap * e->sal_floats * sizeof(float));
	if (e->flowcut)
		e->kept = weft_malloc((size_t)e->cap * (size_t)e->flowcut * sizeof(int32_t));
	e->pixels = weft_malloc((size_t)e->cap * e->tile_floats * sizeof(float));
	e->embd = weft_malloc((size_t)e->cap * e->embd_floats * sizeof(float));
	e->sal = weft_malloc((size_t)e->cap * e->sal_floats * sizeof(float));
	e->owner = weft_malloc((size_t)e->cap * sizeof *e->owner);
	e->tile = weft_malloc((size_t)e->cap * sizeof *e->tile);
	if (!e->pixels || !e->embd || !e->sal || !e->owner || !e->tile || ((e->stats & WEFT_IMGENC_KEYS) && !e->keys) ||
	    ((e->stats & WEFT_IMGENC_ATTN) && !e->recv) || (e->flowcut && !e->kept)) {
		weft_imgenc_free(e);
		return NULL;
	}
	return e;
}

void weft_imgenc_reset(weft_imgenc *e)
{
	for (int i = 0; i < e->n_imgs; i++) {
		free(e->imgs[i].path);
		free(e->imgs[i].embd);
		free(e->imgs[i].sal);
		free(e->imgs[i].keys);
		free(e->imgs[i].recv);
		free(e->imgs[i].kept);
	}
	e->n_imgs = 0;
	e->n = 0;
}

void weft_imgenc_free(weft_imgenc *e)
{
	if (!e)
		return;
	weft_imgenc_reset(e);
	free(e->imgs);
	free(e->pixels);
	free(e->embd);
	free(e->sal);
	free(e->keys);
	free(e->recv);
	free(e->kept);
	free(e->owner);
	free(e->tile);
	free(e);
}

int weft_imgenc_flush(weft_imgenc *e)
{
	if (!e->n)
		return 0;
	weft_vision_out out = {.embd = e->embd, .saliency = e->sal, .keys = e->keys, .attn_recv = e->recv,
			       .flowcut = e->flowcut, .kept = e->kept};
	const double t0 = now();
	if (weft_vision_encode(e->v, e->pool, e->pixels, e->n, &out) != 0)
		return -1;
	e->seconds += now() - t0;
	e->calls++;
	for (int i = 0; i < e->n; i++) {
		img *im = &e->imgs[e->owner[i]];
		const size_t t = (size_t)e->tile[i];
		memcpy(im->embd + t * e->embd_floats, e->embd + (size_t)i * e->embd_floats, e->embd_floats * 4);
		memcpy(im->sal + t * e->sal_floats, e->sal + (size_t)i * e->sal_floats, e->sal_floats * 4);
		if (e->keys)
			memcpy(im->keys + t * e->key_floats, e->keys + (size_t)i * e->key_floats, e->key_floats * 4);
		if (e->recv)
			memcpy(im->recv + t * e->sal_floats, e->recv + (size_t)i * e->sal_floats, e->sal_floats * 4);
		if (e->kept)
			memcpy(im->kept + t * (size_t)e->flowcut, e->kept + (size_t)i * e->flowcut, (size_t)e->flowcut * 4);
	}
	e->n = 0;
	return 0;
}

int weft_imgenc_add(weft_imgenc *e, const char *path)
{
	if (weft_grow(&e->imgs, &e->cap_imgs, (size_t)e->n_imgs + 1, sizeof *e->imgs) != 0)
		return -1;
	weft_image *pic = weft_image_load(path, &e->io);
	if (!pic)
		return -1;
	e->warnings += pic->warnings;
	weft_pixels px;
	if (weft_preprocess(pic, &e->pp, &px) != 0) {
		weft_image_free(pic);
		return -1;
	}
	weft_image_free(pic);
	const weft_vision_hparams *hp = &e->v->hp;
	if (px.c != 3 || px.h != hp->image_size || px.w != hp->image_size || px.n < 1) {
		weft_error("preprocessing gave %dx%dx%d tiles, the encoder takes 3x%dx%d", px.c, px.h, px.w,
			   hp->image_size, hp->image_size);
		weft_pixels_free(&px);
		return -1;
	}
	const int idx = e->n_imgs;
	img *im = &e->imgs[idx];
	*im = (img){.tiles = px.n, .rows = px.rows, .cols = px.cols};
	im->path = weft_strndup(path, strlen(path));
	im->embd = weft_malloc((size_t)px.n * e->embd_floats * sizeof(float));
	im->sal = weft_malloc((size_t)px.n * (e->sal_floats ? e->sal_floats : 1) * sizeof(float));
	if (e->keys)
		im->keys = weft_malloc((size_t)px.n * e->key_floats * sizeof(float));
	if (e->recv)
		im->recv = weft_malloc((size_t)px.n * (e->sal_floats ? e->sal_floats : 1) * sizeof(float));
	if (e->kept)
		im->kept = weft_malloc((size_t)px.n * (size_t)e->flowcut * sizeof(int32_t));
	e->n_imgs++; /* owned now: reset frees it */
	if (!im->path || !im->embd || !im->sal || (e->keys && !im->keys) || (e->recv && !im->recv) ||
	    (e->kept && !im->kept)) {
		weft_pixels_free(&px);
		return -1;
	}
	for (int t = 0; t < px.n; t++) {
		memcpy(e->pixels + (size_t)e->n * e->tile_floats, px.data + (size_t)t * e->tile_floats,
		       e->tile_floats * 4);
		e->owner[e->n] = idx;
		e->tile[e->n] = t;
		if (++e->n == e->cap && weft_imgenc_flush(e) != 0) {
			weft_pixels_free(&px);
			return -1;
		}
	}
	weft_pixels_free(&px);
	return idx;
}

int weft_imgenc_count(const weft_imgenc *e) { return e->n_imgs; }

int weft_imgenc_tiles(const weft_imgenc *e, int image)
{
	return image >= 0 && image < e->n_imgs ? e->imgs[image].tiles : 0;
}

void weft_imgenc_tile(weft_imgenc *e, int i, int t, int number, weft_embd_tile *out)
{
	const weft_vision_hparams *hp = &e->v->hp;
	const img *im = &e->imgs[i];
	weft_embd_wrapper(hp->proj, im->rows, im->cols, t, e->pre, e->suf, sizeof e->pre);
	*out = (weft_embd_tile){
		.image = number, .tile = t, .tiles = im->tiles, .rows = im->rows, .cols = im->cols,
		.saliency_kind = hp->has_cls ? "cls_attn" : "attn_recv", .patch_side = hp->n_side,
		.merge = hp->scale_factor > 0 ? hp->scale_factor : 1, .mmproj = e->fp,
		.source = strcmp(im->path, "-") == 0 ? "<stdin>" : im->path, .prefix = e->pre, .suffix = e->suf,
		.n_tokens = e->n_out, .n_embd = hp->n_embd_out, .embd = im->embd + (size_t)t * e->embd_floats,
		.n_sal_layers = hp->n_layer_run, .n_patches = hp->n_patches,
		.saliency = im->sal + (size_t)t * e->sal_floats,
		.key_dim = im->keys ? hp->n_embd : 0, .keys = im->keys ? im->keys + (size_t)t * e->key_floats : NULL,
		.attn_recv = im->recv ? im->recv + (size_t)t * e->sal_floats : NULL,
		/* FlowCut's record: the patches (= tokens for mlp) kept */
		.n_orig = e->flowcut ? hp->n_tokens : 0, .kept = im->kept ? im->kept + (size_t)t * e->flowcut : NULL,
		.pruned = e->flowcut ? e->pruned : NULL,
	};
}

double weft_imgenc_seconds(const weft_imgenc *e) { return e->seconds; }
int weft_imgenc_calls(const weft_imgenc *e) { return e->calls; }
unsigned weft_imgenc_warnings(const weft_imgenc *e) { return e->warnings; }

/* embd.c - see embd.h. */
#include "embd.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "util.h"

weft_frame *weft_embd_frame(const weft_embd_tile *t)
{
	const int64_t se[2] = {t->n_tokens, t->n_embd}, ss[2] = {t->n_sal_layers, t->n_patches};
	weft_frame *f = weft_frame_new(WEFT_KIND_EMBD);
	if (!f || weft_frame_setf(f, WEFT_KEY_IMAGE, "%d", t->image) || weft_frame_setf(f, WEFT_KEY_TILE, "%d", t->tile) ||
	    weft_frame_setf(f, WEFT_KEY_TILES, "%d", t->tiles) || weft_frame_setf(f, WEFT_KEY_ROWS, "%d", t->rows) ||
	    weft_frame_setf(f, WEFT_KEY_COLS, "%d", t->cols) ||
	    (t->saliency_kind && weft_frame_set(f, WEFT_KEY_SALIENCY, t->saliency_kind)) ||
	    weft_frame_setf(f, WEFT_KEY_PATCH_SIDE, "%d", t->patch_side) ||
	    weft_frame_setf(f, WEFT_KEY_MERGE, "%d", t->merge) ||
	    (t->mmproj && weft_frame_set(f, WEFT_KEY_MMPROJ, t->mmproj)) ||
	    (t->source && weft_frame_set(f, WEFT_KEY_SOURCE, t->source)) ||
	    weft_frame_set(f, WEFT_KEY_PREFIX, t->prefix ? t->prefix : "") ||
	    weft_frame_set(f, WEFT_KEY_SUFFIX, t->suffix ? t->suffix : "") ||
	    (t->vocab && weft_frame_set(f, WEFT_KEY_VOCAB, t->vocab)) ||
	    (t->placeholder && weft_frame_set(f, WEFT_KEY_PLACEHOLDER, t->placeholder)) ||
	    !weft_frame_add(f, "embd", WEFT_DT_F32, 2, se, t->embd) ||
	    (t->saliency && !weft_frame_add(f, "saliency", WEFT_DT_F32, 2, ss, t->saliency))) {
		weft_frame_free(f);
		return NULL;
	}
	return f;
}

/* An integer key's value (absent: dflt), or -1 with an error. */
static int int_key(const weft_frame *f, const char *key, int dflt, int *out)
{
	const char *s = weft_frame_get(f, key);
	if (!s) {
		*out = dflt;
		return 0;
	}
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > 1000000) {
		weft_error("frame %" PRIu64 ": %s '%.20s' is not a count", f->index, key, s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

int weft_embd_read(const weft_frame *f, weft_embd_tile *t)
{
	memset(t, 0, sizeof *t);
	const weft_tensor *e = weft_frame_tensor(f, "embd");
	if (!e || e->dtype != WEFT_DT_F32 || e->ndim != 2 || e->shape[0] < 1 || e->shape[1] < 1) {
		weft_error("frame %" PRIu64 ": embd frame without an F32 'embd' matrix [n_tokens, n_embd]", f->index);
		return -1;
	}
	t->n_tokens = e->shape[0];
	t->n_embd = e->shape[1];
	t->embd = e->data;
	for (uint64_t i = 0; i < e->nelem; i++)
		if (!isfinite(t->embd[i])) {
			weft_error("frame %" PRIu64 ": embedding row %" PRIu64 " is not finite", f->index,
				   i / (uint64_t)t->n_embd);
			return -1;
		}
	const weft_tensor *s = weft_frame_tensor(f, "saliency");
	if (s) {
		if (s->dtype != WEFT_DT_F32 || s->ndim != 2) {
			weft_error("frame %" PRIu64 ": 'saliency' must be an F32 matrix [n_layers, n_patches]", f->index);
			return -1;
		}
		t->n_sal_layers = s->shape[0];
		t->n_patches = s->shape[1];
		t->saliency = s->data;
	}
	if (int_key(f, WEFT_KEY_IMAGE, 0, &t->image) || int_key(f, WEFT_KEY_TILE, 0, &t->tile) ||
	    int_key(f, WEFT_KEY_TILES, 1, &t->tiles) || int_key(f, WEFT_KEY_ROWS, 0, &t->rows) ||
	    int_key(f, WEFT_KEY_COLS, 0, &t->cols) || int_key(f, WEFT_KEY_PATCH_SIDE, 0, &t->patch_side) ||
	    int_key(f, WEFT_KEY_MERGE, 1, &t->merge))
		return -1;
	t->saliency_kind = weft_frame_get(f, WEFT_KEY_SALIENCY);
	t->mmproj = weft_frame_get(f, WEFT_KEY_MMPROJ);
	t->source = weft_frame_get(f, WEFT_KEY_SOURCE);
	t->vocab = weft_frame_get(f, WEFT_KEY_VOCAB);
	t->placeholder = weft_frame_get(f, WEFT_KEY_PLACEHOLDER);
	t->prefix = weft_frame_get(f, WEFT_KEY_PREFIX);
	t->suffix = weft_frame_get(f, WEFT_KEY_SUFFIX);
	t->prefix = t->prefix ? t->prefix : "";
	t->suffix = t->suffix ? t->suffix : "";
	return 0;
}

void weft_embd_wrapper(weft_proj_type proj, int rows, int cols, int t, char *pre, char *suf, size_t cap)
{
	static const char fake[] = "<fake_token_around_image>";
	*pre = *suf = 0;
	if (proj != WEFT_PROJ_IDEFICS3)
		return;
	if (rows == 0) {
		snprintf(pre, cap, "%s<global-img>", fake);
		snprintf(suf, cap, "%s", fake);
	} else if (t < rows * cols) {
		const int r = t / cols + 1, c = t % cols + 1;
		snprintf(pre, cap, "%s<row_%d_col_%d>", fake, r, c);
		snprintf(suf, cap, "%s", c == cols ? "\n" : "");
	} else {
		snprintf(pre, cap, "\n%s<global-img>", fake);
		snprintf(suf, cap, "%s", fake);
	}
}

/* embd.c - see embd.h. */
#include "embd.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "util.h"

/* The pruning record and the optional statistics of t, into f: 0 / -1. */
static int add_extras(weft_frame *f, const weft_embd_tile *t)
{
	if (t->keys) {
		const int64_t sk[2] = {t->n_patches, t->key_dim};
		if (!weft_frame_add(f, "keys", WEFT_DT_F32, 2, sk, t->keys))
			return -1;
	}
	if (t->attn_recv) {
		const int64_t sa[2] = {t->n_sal_layers, t->n_patches};
		if (!weft_frame_add(f, "attn_recv", WEFT_DT_F32, 2, sa, t->attn_recv))
			return -1;
	}
	if (!t->n_orig)
		return 0;
	const int64_t sn[1] = {t->n_tokens}, sm[1] = {t->n_merge};
	if (weft_frame_setf(f, WEFT_KEY_N_ORIG, "%" PRId64, t->n_orig) ||
	    weft_frame_set(f, WEFT_KEY_POSITIONS, t->repack ? "repack" : "keep") ||
	    (t->pruned && weft_frame_set(f, WEFT_KEY_PRUNED, t->pruned)) ||
	    !weft_frame_add(f, "kept", WEFT_DT_I32, 1, sn, t->kept))
		return -1;
	if (t->n_merge && (!weft_frame_add(f, "merge_row", WEFT_DT_I32, 1, sm, t->merge_row) ||
			   !weft_frame_add(f, "merge_src", WEFT_DT_I32, 1, sm, t->merge_src) ||
			   !weft_frame_add(f, "merge_w", WEFT_DT_F32, 1, sm, t->merge_w)))
		return -1;
	return 0;
}

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
	    (t->saliency && !weft_frame_add(f, "saliency", WEFT_DT_F32, 2, ss, t->saliency)) || add_extras(f, t)) {
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

/* An F32/I32 tensor of frame f with the given shape (a dim < 0: any), or
 * NULL (absent: no error; present but wrong: error, *bad set). */
static const weft_tensor *tensor(const weft_frame *f, const char *name, weft_dtype dt, int ndim, int64_t d0,
				 int64_t d1, int *bad)
{
	const weft_tensor *x = weft_frame_tensor(f, name);
	if (!x)
		return NULL;
	if (x->dtype != dt || x->ndim != ndim || (d0 >= 0 && x->shape[0] != d0) ||
	    (ndim > 1 && d1 >= 0 && x->shape[1] != d1)) {
		weft_error("frame %" PRIu64 ": '%s' must be %s [%s%s]", f->index, name, weft_dtype_name(dt),
			   ndim == 1 ? "n" : "rows, ", ndim == 1 ? "" : "columns (see weft-stream(5))");
		*bad = 1;
		return NULL;
	}
	if (dt == WEFT_DT_F32)
		for (uint64_t i = 0; i < x->nelem; i++)
			if (!isfinite(((const float *)x->data)[i])) {
				weft_error("frame %" PRIu64 ": '%s' holds a value that is not finite", f->index, name);
				*bad = 1;
				return NULL;
			}
	return x;
}

/* The pruning record: n_orig, kept (ascending, < n_orig), merge entries. */
static int read_record(const weft_frame *f, weft_embd_tile *t)
{
	const char *s = weft_frame_get(f, WEFT_KEY_N_ORIG);
	int bad = 0;
	const weft_tensor *k = tensor(f, "kept", WEFT_DT_I32, 1, t->n_tokens, 0, &bad);
	if (bad)
		return -1;
	if (!s && !k)
		return 0;
	char *end;
	long long n = s ? strtoll(s, &end, 10) : 0;
	if (!s || !*s || *end || n < 1 || n > 100000000 || !k || n < t->n_tokens) {
		weft_error("frame %" PRIu64 ": pruned embd frame needs weft.n_orig (>= its rows) and 'kept' I32 [n_tokens]",
			   f->index);
		return -1;
	}
	t->n_orig = n;
	t->kept = k->data;
	for (int64_t i = 0; i < t->n_tokens; i++)
		if (t->kept[i] < 0 || t->kept[i] >= n || (i && t->kept[i] <= t->kept[i - 1])) {
			weft_error("frame %" PRIu64 ": 'kept' entry %" PRId64 " (%d) is out of order or not below weft.n_orig %lld",
				   f->index, i, t->kept[i], n);
			return -1;
		}
	const weft_tensor *mr = tensor(f, "merge_row", WEFT_DT_I32, 1, -1, 0, &bad);
	const weft_tensor *ms = mr ? tensor(f, "merge_src", WEFT_DT_I32, 1, mr->shape[0], 0, &bad) : NULL;
	const weft_tensor *mw = mr ? tensor(f, "merge_w", WEFT_DT_F32, 1, mr->shape[0], 0, &bad) : NULL;
	if (bad || (mr && (!ms || !mw))) {
		if (!bad)
			weft_error("frame %" PRIu64 ": 'merge_row' without 'merge_src' and 'merge_w'", f->index);
		return -1;
	}
	if (mr) {
		t->n_merge = mr->shape[0];
		t->merge_row = mr->data, t->merge_src = ms->data, t->merge_w = mw->data;
		for (int64_t i = 0; i < t->n_merge; i++)
			if (t->merge_row[i] < 0 || t->merge_row[i] >= t->n_tokens || t->merge_src[i] < 0 ||
			    t->merge_src[i] >= n) {
				weft_error("frame %" PRIu64 ": merge entry %" PRId64 " is out of range", f->index, i);
				return -1;
			}
	}
	const char *pos = weft_frame_get(f, WEFT_KEY_POSITIONS);
	if (pos && strcmp(pos, "keep") && strcmp(pos, "repack")) {
		weft_error("frame %" PRIu64 ": weft.positions '%.20s' is neither keep nor repack", f->index, pos);
		return -1;
	}
	t->repack = pos && strcmp(pos, "repack") == 0;
	t->pruned = weft_frame_get(f, WEFT_KEY_PRUNED);
	return 0;
}

int weft_embd_read(const weft_frame *f, weft_embd_tile *t)
{
	memset(t, 0, sizeof *t);
	const weft_tensor *e = weft_frame_tensor(f, "embd");
	/* a pruned tile may keep no rows of its own (another tile of its image
	 * kept them) */
	const int64_t min_rows = weft_frame_get(f, WEFT_KEY_N_ORIG) ? 0 : 1;
	if (!e || e->dtype != WEFT_DT_F32 || e->ndim != 2 || e->shape[0] < min_rows || e->shape[1] < 1) {
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
	int bad = 0;
	const weft_tensor *k = tensor(f, "keys", WEFT_DT_F32, 2, s ? t->n_patches : -1, -1, &bad);
	const weft_tensor *a = tensor(f, "attn_recv", WEFT_DT_F32, 2, s ? t->n_sal_layers : -1, s ? t->n_patches : -1, &bad);
	if (bad)
		return -1;
	if ((k || a) && !s) {
		weft_error("frame %" PRIu64 ": '%s' without 'saliency'", f->index, k ? "keys" : "attn_recv");
		return -1;
	}
	if (k)
		t->keys = k->data, t->key_dim = k->shape[1];
	if (a)
		t->attn_recv = a->data;
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
	return read_record(f, t);
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

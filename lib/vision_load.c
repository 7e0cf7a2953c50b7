/* vision_load.c - reading a CLIP / SigLIP mmproj GGUF into a weft_vision
 * (see vision.h): hyper-parameters from the clip.* keys, tensors bound by
 * llama.cpp's v.* / mm.* names and checked for shape and type, following
 * llama.cpp's clip.cpp (clip_model_loader), including the legacy LLaVA
 * files' swapped ffn_up / ffn_down detected by shape.  The forward pass is
 * vision.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind_int.h"
#include "ggml_types.h"
#include "util.h"
#include "vision.h"

/* ---- hyper-parameters ---- */

/* clip.* unsigned key: 0 found, 1 absent (error when required), -1 bad. */
static int key_u32(const weft_gguf *g, const char *key, int required, int *out)
{
	uint32_t v;
	int r = weft_gguf_get_u32(g, key, &v);
	if (r == 1 && required)
		weft_error("missing key '%s'", key);
	else if (r < 0)
		weft_error_prefix("key '%s'", key);
	else if (r == 0 && v > 1u << 20) {
		weft_error("key '%s': %u is out of range", key, v);
		return -1;
	}
	if (r == 0)
		*out = (int)v;
	return r == 1 && required ? -1 : r;
}

static int key_bool(const weft_gguf *g, const char *key, int *out)
{
	int r = weft_gguf_get_bool(g, key, out);
	if (r < 0)
		weft_error_prefix("key '%s'", key);
	return r;
}

static int key_rgb(const weft_gguf *g, const char *key, float out[3])
{
	const weft_gguf_value *a;
	int r = weft_gguf_get_arr(g, key, WEFT_GGUF_FLOAT32, &a);
	if (r < 0) {
		weft_error_prefix("key '%s'", key);
		return -1;
	}
	if (r == 1)
		return 1;
	if (a->v.arr.n != 3) {
		weft_error("key '%s': %llu values, expected 3", key, (unsigned long long)a->v.arr.n);
		return -1;
	}
	for (int i = 0; i < 3; i++)
		out[i] = (float)weft_gguf_arr_f64(a, (uint64_t)i);
	return 0;
}

static int read_hparams(const weft_gguf *g, weft_vision_hparams *hp)
{
	weft_gguf_str s;
	char esc[64];
	int r = weft_gguf_get_str(g, "general.architecture", &s);
	if (r != 0 || !weft_gguf_str_eq(s, "clip")) {
		if (r == 0)
			weft_escape(s.ptr, (size_t)s.len, esc, sizeof esc);
		weft_error("not an mmproj file (general.architecture %s%s%s, expected 'clip')", r == 0 ? "'" : "",
			   r == 0 ? esc : "missing", r == 0 ? "'" : "");
		return -1;
	}
	int has_vision = 1;
	if (key_bool(g, "clip.has_vision_encoder", &has_vision) < 0)
		return -1;
	if (!has_vision) {
		weft_error("mmproj file has no vision encoder (clip.has_vision_encoder is false)");
		return -1;
	}
	const char *pkey = "clip.vision.projector_type";
	r = weft_gguf_get_str(g, pkey, &s);
	if (r == 1)
		r = weft_gguf_get_str(g, pkey = "clip.projector_type", &s);
	if (r < 0) {
		weft_error_prefix("key '%s'", pkey);
		return -1;
	}
	if (r == 1) { /* the oldest LLaVA files: clip.has_llava_projector only */
		int llava = 0;
		if (key_bool(g, "clip.has_llava_projector", &llava) < 0)
			return -1;
		if (!llava) {
			weft_error("missing key 'clip.projector_type'");
			return -1;
		}
		hp->proj = WEFT_PROJ_MLP;
	} else if (weft_gguf_str_eq(s, "mlp")) {
		hp->proj = WEFT_PROJ_MLP;
	} else if (weft_gguf_str_eq(s, "idefics3")) {
		hp->proj = WEFT_PROJ_IDEFICS3;
	} else {
		weft_escape(s.ptr, (size_t)s.len, esc, sizeof esc);
		weft_error("unsupported projector type '%s' (weft runs mlp and idefics3)", esc);
		return -1;
	}
	if (key_u32(g, "clip.vision.embedding_length", 1, &hp->n_embd) < 0 ||
	    key_u32(g, "clip.vision.feed_forward_length", 1, &hp->n_ff) < 0 ||
	    key_u32(g, "clip.vision.block_count", 1, &hp->n_layer) < 0 ||
	    key_u32(g, "clip.vision.attention.head_count", 1, &hp->n_head) < 0 ||
	    key_u32(g, "clip.vision.image_size", 1, &hp->image_size) < 0 ||
	    key_u32(g, "clip.vision.patch_size", 1, &hp->patch_size) < 0)
		return -1;
	r = weft_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &hp->eps);
	if (r != 0) {
		if (r == 1)
			weft_error("missing key 'clip.vision.attention.layer_norm_epsilon'");
		else
			weft_error_prefix("key 'clip.vision.attention.layer_norm_epsilon'");
		return -1;
	}
	if (hp->n_embd < 1 || hp->n_embd > 16384 || hp->n_ff < 1 || hp->n_ff > 65536 || hp->n_layer < 1 ||
	    hp->n_layer > 256 || hp->n_head < 1 || hp->n_embd % hp->n_head || hp->patch_size < 1 ||
	    hp->image_size < hp->patch_size || hp->image_size > 4096 || hp->image_size % hp->patch_size ||
	    !(hp->eps > 0.0f && hp->eps < 1.0f)) {
		weft_error("unsupported hyper-parameters: embedding %d, feed-forward %d, %d blocks, %d heads, image %d, "
			   "patch %d, epsilon %g",
			   hp->n_embd, hp->n_ff, hp->n_layer, hp->n_head, hp->image_size, hp->patch_size, (double)hp->eps);
		return -1;
	}
	hp->head_dim = hp->n_embd / hp->n_head;
	hp->n_side = hp->image_size / hp->patch_size;
	hp->n_patches = hp->n_side * hp->n_side;
	if (hp->n_patches > 16384) { /* attention is quadratic in it; real encoders: <= 4096 */
		weft_error("unsupported hyper-parameters: %d x %d patches (image %d, patch %d; at most 16384)", hp->n_side,
			   hp->n_side, hp->image_size, hp->patch_size);
		return -1;
	}

	/* activation: clip.use_gelu -> tanh-GELU, clip.use_silu -> SiLU, else quick GELU */
	int gelu = 0, silu = 0;
	if (key_bool(g, "clip.use_gelu", &gelu) < 0 || key_bool(g, "clip.use_silu", &silu) < 0)
		return -1;
	if (gelu && silu) {
		weft_error("both clip.use_gelu and clip.use_silu are set");
		return -1;
	}
	hp->act = gelu ? WEFT_ACT_GELU : silu ? WEFT_ACT_SILU : WEFT_ACT_GELU_QUICK;

	/* layers run: the deepest feature layer, else every stored block */
	hp->n_layer_run = hp->n_layer;
	const weft_gguf_value *fl;
	r = weft_gguf_get_arr(g, "clip.vision.feature_layer", WEFT_GGUF_NTYPES, &fl);
	if (r < 0) {
		weft_error_prefix("key 'clip.vision.feature_layer'");
		return -1;
	}
	if (r == 0 && fl->v.arr.n > 0) {
		const uint32_t et = fl->v.arr.type;
		if (et == WEFT_GGUF_STRING || et == WEFT_GGUF_ARRAY || et == WEFT_GGUF_FLOAT32 || et == WEFT_GGUF_FLOAT64 ||
		    et == WEFT_GGUF_BOOL) {
			weft_error("key 'clip.vision.feature_layer': not an integer array");
			return -1;
		}
		if (fl->v.arr.n > 1) {
			weft_error("key 'clip.vision.feature_layer': only one feature layer is supported "
				   "(stacked feature layers are not)");
			return -1;
		}
		int64_t v = weft_gguf_arr_i64(fl, 0);
		if (v < 0 || v > hp->n_layer) {
			weft_error("key 'clip.vision.feature_layer': %lld is out of range (%d blocks)", (long long)v,
				   hp->n_layer);
			return -1;
		}
		hp->n_layer_run = (int)v;
	}

	if (hp->proj == WEFT_PROJ_MLP) {
		hp->mean[0] = 0.48145466f, hp->mean[1] = 0.4578275f, hp->mean[2] = 0.40821073f;
		hp->std[0] = 0.26862954f, hp->std[1] = 0.26130258f, hp->std[2] = 0.27577711f;
		hp->scale_factor = 1;
	} else {
		for (int i = 0; i < 3; i++)
			hp->mean[i] = hp->std[i] = 0.5f;
		hp->scale_factor = 2; /* the converter's default */
		hp->preproc_longest = 4 * hp->image_size;
		if (key_u32(g, "clip.vision.projector.scale_factor", 0, &hp->scale_factor) < 0 ||
		    key_u32(g, "clip.vision.preproc_image_size", 0, &hp->preproc_longest) < 0)
			return -1;
		if (hp->scale_factor < 1 || hp->n_side % hp->scale_factor || hp->preproc_longest < hp->image_size ||
		    hp->preproc_longest > 16384) {
			weft_error("unsupported idefics3 parameters: scale factor %d for %d x %d patches, "
				   "preprocessing size %d for %d-pixel tiles",
				   hp->scale_factor, hp->n_side, hp->n_side, hp->preproc_longest, hp->image_size);
			return -1;
		}
	}
	if (key_rgb(g, "clip.vision.image_mean", hp->mean) < 0 || key_rgb(g, "clip.vision.image_std", hp->std) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (!(hp->std[i] > 0.0f) || !isfinite(hp->mean[i])) {
			weft_error("bad clip.vision.image_mean / image_std");
			return -1;
		}
	return 0;
}

/* ---- tensors ---- */

typedef struct loader {
	const weft_gguf *g;
	float *arena;
	size_t used, cap;
	int err;
} loader;

/* Float32 copy of the n values of tensor t in the arena (on the sizing
 * pass, with no arena yet, only counted: a non-NULL marker is returned). */
static const float *to_arena(loader *L, const weft_gguf_tensor *t, int64_t n, const char *name)
{
	if (!L->arena)
		return L->used += (size_t)n, (const float *)L;
	float *d = L->arena + L->used;
	L->used += (size_t)n;
	if (weft_dequantize_row(t->type, t->data, d, n) != 0) {
		weft_error_prefix("tensor '%s'", name);
		L->err = 1;
		return NULL;
	}
	return d;
}

/* Float32 copy of tensor fmt (any dequantizable type) with exactly the
 * dims given; NULL when absent and optional. */
static const float *vec(loader *L, int optional, int64_t ne0, int64_t ne1, const char *fmt, int i)
{
	const weft_gguf_tensor *t = weft_bind(L->g, optional, WEFT_USE_ROWS, ne0, ne1, fmt, i, &L->err);
	if (!t || L->err)
		return NULL;
	return to_arena(L, t, ne0 * (ne1 > 0 ? ne1 : 1), fmt);
}

static const weft_gguf_tensor *mat(loader *L, int optional, int64_t ne0, int64_t ne1, const char *fmt, int i)
{
	return weft_bind(L->g, optional, WEFT_USE_MATMUL, ne0, ne1, fmt, i, &L->err);
}

/* The conv kernel v.patch_embd.weight, ne [p, p, 3, n_embd], as float32
 * rows of 3 p p values. */
static const float *patch_kernel(loader *L, const weft_vision_hparams *hp)
{
	const char *name = "v.patch_embd.weight";
	const weft_gguf_tensor *t = weft_gguf_find_tensor(L->g, name);
	const int64_t p = hp->patch_size, n = 3 * p * p * hp->n_embd;
	if (!t) {
		weft_error("missing tensor '%s'", name);
		L->err = 1;
		return NULL;
	}
	if (t->ne[0] != p || t->ne[1] != p || t->ne[2] != 3 || t->ne[3] != hp->n_embd) {
		weft_error("tensor '%s': shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, 3, %d]", name,
			   (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
			   (long long)p, (long long)p, hp->n_embd);
		L->err = 1;
		return NULL;
	}
	const weft_type_info *ti = weft_type_get(t->type);
	if (!ti || !ti->can_dequant || (uint64_t)n % ti->block) {
		weft_error("tensor '%s': unsupported type %s", name, ti ? ti->name : "unknown");
		L->err = 1;
		return NULL;
	}
	return to_arena(L, t, n, name);
}

/* Bind every tensor; with L->arena NULL only sizes the float copies. */
static int bind_all(weft_vision *v, loader *L)
{
	const weft_vision_hparams *hp = &v->hp;
	const int d = hp->n_embd, ff = hp->n_ff;
	v->patch_w = patch_kernel(L, hp);
	v->patch_b = vec(L, 1, d, 0, "v.patch_embd.bias", 0);
	v->cls = vec(L, 1, d, 0, "v.class_embd", 0);
	if (v->cls && hp->proj == WEFT_PROJ_IDEFICS3) {
		weft_error("tensor 'v.class_embd': the idefics3 (SigLIP) encoder has no class token");
		L->err = 1;
		return -1;
	}
	v->hp.has_cls = v->cls != NULL;
	v->hp.n_pos = hp->n_patches + (v->cls ? 1 : 0);
	v->pos = vec(L, 0, d, v->hp.n_pos, "v.position_embd.weight", 0);
	v->pre_ln_w = vec(L, 1, d, 0, "v.pre_ln.weight", 0);
	v->pre_ln_b = vec(L, 1, d, 0, "v.pre_ln.bias", 0);
	v->post_ln_w = vec(L, 1, d, 0, "v.post_ln.weight", 0);
	v->post_ln_b = vec(L, 1, d, 0, "v.post_ln.bias", 0);
	/* transformers' LLaVA takes hidden states before any post-LN */
	v->hp.post_ln = hp->proj == WEFT_PROJ_IDEFICS3 && v->post_ln_w;
	for (int i = 0; i < hp->n_layer && !L->err; i++) {
		weft_vision_layer *y = &v->layers[i];
		y->ln1_w = vec(L, 0, d, 0, "v.blk.%d.ln1.weight", i);
		y->ln1_b = vec(L, 1, d, 0, "v.blk.%d.ln1.bias", i);
		y->ln2_w = vec(L, 0, d, 0, "v.blk.%d.ln2.weight", i);
		y->ln2_b = vec(L, 1, d, 0, "v.blk.%d.ln2.bias", i);
		y->q_w = mat(L, 0, d, d, "v.blk.%d.attn_q.weight", i);
		y->k_w = mat(L, 0, d, d, "v.blk.%d.attn_k.weight", i);
		y->v_w = mat(L, 0, d, d, "v.blk.%d.attn_v.weight", i);
		y->o_w = mat(L, 0, d, d, "v.blk.%d.attn_out.weight", i);
		y->q_b = vec(L, 1, d, 0, "v.blk.%d.attn_q.bias", i);
		y->k_b = vec(L, 1, d, 0, "v.blk.%d.attn_k.bias", i);
		y->v_b = vec(L, 1, d, 0, "v.blk.%d.attn_v.bias", i);
		y->o_b = vec(L, 1, d, 0, "v.blk.%d.attn_out.bias", i);
		/* files from llama.cpp's legacy converters call the first MLP
		 * matrix (n_embd -> n_ff) ffn_down; clip.cpp swaps by shape */
		char nm[64];
		snprintf(nm, sizeof nm, "v.blk.%d.ffn_down.weight", i);
		const weft_gguf_tensor *dn = weft_gguf_find_tensor(L->g, nm);
		const int swapped = dn && dn->ne[0] == d && ff != d;
		const char *up = swapped ? "v.blk.%d.ffn_down.%s" : "v.blk.%d.ffn_up.%s";
		const char *down = swapped ? "v.blk.%d.ffn_up.%s" : "v.blk.%d.ffn_down.%s";
		char f_uw[48], f_ub[48], f_dw[48], f_db[48];
		snprintf(f_uw, sizeof f_uw, up, i, "weight");
		snprintf(f_ub, sizeof f_ub, up, i, "bias");
		snprintf(f_dw, sizeof f_dw, down, i, "weight");
		snprintf(f_db, sizeof f_db, down, i, "bias");
		y->up_w = mat(L, 0, d, ff, f_uw, 0);
		y->up_b = vec(L, 1, ff, 0, f_ub, 0);
		y->down_w = mat(L, 0, ff, d, f_dw, 0);
		y->down_b = vec(L, 1, d, 0, f_db, 0);
	}
	if (L->err)
		return -1;
	if (hp->proj == WEFT_PROJ_MLP) {
		const weft_gguf_tensor *t0 = weft_gguf_find_tensor(L->g, "mm.0.weight"),
				       *t2 = weft_gguf_find_tensor(L->g, "mm.2.weight");
		if (!t0 || !t2) {
			weft_error("missing tensor '%s' (LLaVA mlp projector)", t0 ? "mm.2.weight" : "mm.0.weight");
			return -1;
		}
		if (t0->ne[1] < 1 || t0->ne[1] > 65536 || t2->ne[1] < 1 || t2->ne[1] > 65536) {
			weft_error("tensor 'mm.0.weight' / 'mm.2.weight': bad shape");
			return -1;
		}
		v->mm_hidden = (int)t0->ne[1];
		v->hp.n_embd_out = (int)t2->ne[1];
		v->mm0_w = mat(L, 0, d, v->mm_hidden, "mm.0.weight", 0);
		v->mm0_b = vec(L, 0, v->mm_hidden, 0, "mm.0.bias", 0);
		v->mm2_w = mat(L, 0, v->mm_hidden, v->hp.n_embd_out, "mm.2.weight", 0);
		v->mm2_b = vec(L, 0, v->hp.n_embd_out, 0, "mm.2.bias", 0);
		v->hp.n_tokens = hp->n_patches;
	} else {
		const int64_t k = (int64_t)d * hp->scale_factor * hp->scale_factor;
		const weft_gguf_tensor *t = weft_gguf_find_tensor(L->g, "mm.model.fc.weight");
		if (!t) {
			weft_error("missing tensor 'mm.model.fc.weight' (idefics3 connector)");
			return -1;
		}
		if (t->ne[1] < 1 || t->ne[1] > 65536) {
			weft_error("tensor 'mm.model.fc.weight': bad shape");
			return -1;
		}
		v->hp.n_embd_out = (int)t->ne[1];
		v->fc_w = mat(L, 0, k, v->hp.n_embd_out, "mm.model.fc.weight", 0);
		v->hp.n_tokens = hp->n_patches / (hp->scale_factor * hp->scale_factor);
	}
	return L->err ? -1 : 0;
}

static uint64_t fingerprint(const weft_vision *v)
{
	const weft_vision_hparams *hp = &v->hp;
	uint64_t h = weft_fnv1a(WEFT_FNV_INIT, "clip", 5);
	const int64_t iv[] = {hp->proj,       hp->n_embd,       hp->n_ff,     hp->n_head,     hp->n_layer,
			      hp->n_layer_run, hp->image_size,  hp->patch_size, hp->act,      hp->scale_factor,
			      hp->n_embd_out,  hp->preproc_longest};
	for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++)
		weft_hash_int(&h, iv[i]);
	const float fv[] = {hp->eps, hp->mean[0], hp->mean[1], hp->mean[2], hp->std[0], hp->std[1], hp->std[2]};
	for (size_t i = 0; i < sizeof fv / sizeof fv[0]; i++) {
		uint32_t u;
		memcpy(&u, &fv[i], 4);
		weft_hash_int(&h, u);
	}
	return weft_hash_tensors(v->g, h);
}

weft_vision *weft_vision_load(const weft_gguf *g)
{
	weft_vision *v = weft_calloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->g = g;
	if (read_hparams(g, &v->hp) != 0)
		goto fail;
	if (!(v->layers = weft_calloc((size_t)v->hp.n_layer, sizeof *v->layers)))
		goto fail;
	loader L = {.g = g};
	if (bind_all(v, &L) != 0) /* sizing pass: checks names, shapes, types */
		goto fail;
	if (!(L.arena = weft_calloc(L.used ? L.used : 1, sizeof(float))))
		goto fail;
	v->arena = L.arena;
	L.cap = L.used;
	L.used = 0;
	if (bind_all(v, &L) != 0)
		goto fail;
	v->fingerprint = fingerprint(v);
	return v;
fail:
	weft_vision_free(v);
	return NULL;
}

void weft_vision_free(weft_vision *v)
{
	if (!v)
		return;
	free(v->layers);
	free(v->arena);
	free(v);
}

weft_preproc weft_vision_preproc(const weft_vision *v)
{
	const weft_vision_hparams *hp = &v->hp;
	weft_preproc p = hp->proj == WEFT_PROJ_MLP ? weft_preproc_llava15() : weft_preproc_smolvlm();
	p.size = hp->image_size;
	if (hp->proj == WEFT_PROJ_IDEFICS3)
		p.longest_edge = hp->preproc_longest;
	memcpy(p.mean, hp->mean, sizeof p.mean);
	memcpy(p.std, hp->std, sizeof p.std);
	return p;
}

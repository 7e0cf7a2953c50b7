/* vision.c - CLIP / SigLIP vision encoders and their projectors from
 * llama.cpp mmproj GGUF files (see vision.h).
 *
 * Loading follows llama.cpp's clip.cpp (clip_model_loader): clip.* keys,
 * v.* / mm.* tensor names, the legacy LLaVA files' swapped ffn_up /
 * ffn_down detected by shape.  The forward pass follows transformers
 * (CLIPVisionTransformer, Idefics3VisionTransformer, LlavaMultiModalProjector,
 * Idefics3Connector) in float32:
 *
 *   x = patch_embd(pixels) (+ class token first) + position_embd
 *   x = pre_ln(x)                                    (when present)
 *   for each block run:
 *       h = ln1(x); q, k, v = h Wq + bq, ...
 *       x += softmax(q k^T / sqrt(hd)) v  Wo + bo     (bidirectional)
 *       x += act(ln2(x) Wup + bup) Wdown + bdown
 *   idefics3: x = post_ln(x); pixel shuffle; x Wfc
 *   mlp:      drop the class token; gelu_erf(x W0 + b0) W2 + b2
 *
 * Attention never holds a full N x N matrix: each task takes one image,
 * one head and a block of ATT_QB queries, scores them against every key
 * with weft_sgemm (keys transposed per head once per layer), softmaxes the
 * rows, records saliency, and multiplies by the values in place. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind_int.h"
#include "flowcut_int.h"
#include "ggml_types.h"
#include "util.h"
#include "vision.h"

#define ATT_QB 64            /* queries per attention task */
/* float32 activations for F16/BF16 matrices: transformers' arithmetic */
#define MM WEFT_MATMUL_F32_ACT
#define BATCH_BYTES (256u << 20) /* activation budget that bounds a sub-batch */

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

/* ---- forward: row-parallel helpers ---- */

enum { R_LN, R_BIAS, R_BIAS_ACT, R_ADD_BIAS };

typedef struct rows_job {
	int op;
	float *y;           /* [rows][n] */
	const float *x;     /* R_LN source, R_ADD_BIAS addend [rows][n] */
	const float *w, *b;
	int64_t rows, n;
	float eps;
	weft_act act;
} rows_job;

static void act_row(float *x, int64_t n, weft_act act)
{
	switch (act) {
	case WEFT_ACT_GELU: weft_gelu_f32(x, n); break;
	case WEFT_ACT_GELU_QUICK: weft_gelu_quick_f32(x, n); break;
	case WEFT_ACT_SILU: weft_silu(x, n); break;
	}
}

static void rows_task(void *ctx, int task, int n_tasks)
{
	const rows_job *j = ctx;
	const int64_t r0 = j->rows * task / n_tasks, r1 = j->rows * (task + 1) / n_tasks;
	for (int64_t r = r0; r < r1; r++) {
		float *y = j->y + r * j->n;
		switch (j->op) {
		case R_LN:
			weft_layernorm(y, j->x + r * j->n, j->w, j->b, j->n, j->eps);
			break;
		case R_BIAS:
		case R_BIAS_ACT:
			if (j->b)
				weft_add(y, j->b, j->n);
			if (j->op == R_BIAS_ACT)
				act_row(y, j->n, j->act);
			break;
		case R_ADD_BIAS: /* y += (x + b), x being scratch: transformers' order */
			if (j->b)
				weft_add((float *)j->x + r * j->n, j->b, j->n);
			weft_add(y, j->x + r * j->n, j->n);
			break;
		}
	}
}

static void run_rows(weft_pool *p, rows_job j)
{
	int n_tasks = weft_pool_size(p) * 4;
	if (n_tasks > j.rows)
		n_tasks = (int)j.rows;
	if (n_tasks > 0)
		weft_pool_run(p, n_tasks, rows_task, &j);
}

/* y = x W (+ b, + activation). */
static int linear(weft_pool *p, const weft_gguf_tensor *W, const float *b, const float *x, int64_t rows, float *y,
		  int act, weft_act which)
{
	const int64_t k = W->ne[0], n = W->ne[1];
	if (weft_matmul_ex(p, W->type, W->data, k, n, x, rows, y, n, MM) != 0)
		return -1;
	if (b || act)
		run_rows(p, (rows_job){.op = act ? R_BIAS_ACT : R_BIAS, .y = y, .b = b, .rows = rows, .n = n, .act = which});
	return 0;
}

/* ---- forward: attention ---- */

typedef struct attn_job {
	const weft_vision_hparams *hp;
	int B, N;             /* images, tokens per image */
	const float *Q, *V;   /* [B*N][D] */
	const float *Kt;      /* [B][H][hd][N]: keys transposed per head */
	float *out;           /* [B*N][D] */
	float *sal;           /* scratch: CLS rows [B][H][N], or column sums [B][H][nqb][N]; NULL */
	float *recv;          /* scratch: column sums [B][H][nqb][N] with a class token; NULL */
	int nqb;              /* query blocks per (image, head) */
	atomic_int err;
} attn_job;

typedef struct pack_job {
	const weft_vision_hparams *hp;
	int B, N;
	const float *K;
	float *Kt;
} pack_job;

static void pack_task(void *ctx, int task, int n_tasks)
{
	(void)n_tasks;
	const pack_job *j = ctx;
	const int H = j->hp->n_head, hd = j->hp->head_dim, D = j->hp->n_embd;
	const int b = task / H, h = task % H;
	float *kt = j->Kt + (size_t)task * hd * j->N;
	for (int t0 = 0; t0 < j->N; t0 += 16) { /* 16 keys: whole cache lines of kt */
		const int nt = j->N - t0 < 16 ? j->N - t0 : 16;
		const float *k = j->K + ((size_t)b * j->N + t0) * D + (size_t)h * hd;
		for (int e = 0; e < hd; e++)
			for (int t = 0; t < nt; t++)
				kt[(size_t)e * j->N + t0 + t] = k[(size_t)t * D + e];
	}
}

/* One (image, head, block of queries): scores = q K^T (weft_sgemm against
 * the transposed keys), scaled and softmaxed row by row, saliency taken from
 * them, then out = p V straight into the head's columns. */
static void attn_task(void *ctx, int task, int n_tasks)
{
	(void)n_tasks;
	attn_job *j = ctx;
	const int H = j->hp->n_head, hd = j->hp->head_dim, D = j->hp->n_embd, N = j->N;
	const int qb = task % j->nqb, bh = task / j->nqb, b = bh / H, h = bh % H;
	const int q0 = qb * ATT_QB, nq = N - q0 < ATT_QB ? N - q0 : ATT_QB;
	const float scale = 1.0f / sqrtf((float)hd);
	float *s = malloc((size_t)nq * N * sizeof(float));
	if (!s) {
		j->err = 1;
		return;
	}
	const size_t row0 = ((size_t)b * N + q0) * D + (size_t)h * hd;
	weft_sgemm(nq, N, hd, j->Q + row0, D, j->Kt + (size_t)bh * hd * N, N, s, N);
	for (int t = 0; t < nq; t++) {
		float *row = s + (size_t)t * N;
		for (int k = 0; k < N; k++)
			row[k] *= scale;
		weft_softmax(row, N);
	}
	if (j->sal && j->hp->has_cls && q0 == 0) /* the class token is query 0 */
		memcpy(j->sal + (size_t)bh * N, s, (size_t)N * sizeof(float));
	float *cs = j->hp->has_cls ? j->recv : j->sal; /* column sums: attention received */
	if (cs) {
		float *col = cs + ((size_t)bh * j->nqb + qb) * N;
		memset(col, 0, (size_t)N * sizeof(float));
		for (int t = 0; t < nq; t++)
			weft_add(col, s + (size_t)t * N, N);
	}
	weft_sgemm(nq, hd, N, s, N, j->V + (size_t)b * N * D + (size_t)h * hd, D, j->out + row0, D);
	free(s);
}

/* ---- forward ---- */

typedef struct scratch {
	float *x, *h, *q, *k, *v, *a, *f, *kt, *sal, *recv;
} scratch;

static void scratch_free(scratch *s)
{
	free(s->x), free(s->h), free(s->q), free(s->k), free(s->v), free(s->a), free(s->f);
	free(s->kt), free(s->sal), free(s->recv);
}

/* Per-image statistics of block l from the per-head scratch of N tokens:
 * dst[n_patches] = the class token's row (cls) or the column sums,
 * averaged; with FlowCut, patch i of the scratch is patch idx[i] (the
 * pruned ones 0). */
static void reduce_stat(const weft_vision_hparams *hp, const float *scr, int b, int nqb, int cls, int N,
			const int32_t *idx, float *dst)
{
	const int H = hp->n_head, off = hp->has_cls ? 1 : 0, np = N - off;
	memset(dst, 0, (size_t)hp->n_patches * sizeof(float));
	const float norm = cls ? 1.0f / H : 1.0f / ((float)H * N);
	for (int h = 0; h < H; h++)
		for (int q = 0; q < (cls ? 1 : nqb); q++) {
			const float *row = scr + (((size_t)b * H + h) * (cls ? 1 : nqb) + q) * N + off;
			for (int i = 0; i < np; i++)
				dst[idx ? idx[i] : i] += row[i] * norm;
		}
}

/* Encode images [0, B) of pixels into out at image offset img0. */
static int encode_batch(const weft_vision *v, weft_pool *p, const float *pixels, int B, int img0,
			weft_vision_out *out, scratch *s)
{
	const weft_vision_hparams *hp = &v->hp;
	const int D = hp->n_embd, P = hp->patch_size, side = hp->n_side, np = hp->n_patches;
	const int S = hp->image_size, kp = 3 * P * P;
	int N = hp->n_pos; /* tokens in flight: FlowCut makes fewer */
	int64_t R = (int64_t)B * N;

	/* patch embedding: im2col rows of (c, ky, kx), times the kernel */
	float *cols = s->f; /* [B*np][3 P P] fits in the FFN buffer */
	for (int b = 0; b < B; b++)
		for (int py = 0; py < side; py++)
			for (int px = 0; px < side; px++) {
				float *row = cols + ((size_t)b * np + (size_t)py * side + px) * kp;
				for (int c = 0; c < 3; c++)
					for (int ky = 0; ky < P; ky++)
						memcpy(row + (c * P + ky) * P,
						       pixels + (((size_t)b * 3 + c) * S + (size_t)py * P + ky) * S + (size_t)px * P,
						       (size_t)P * sizeof(float));
			}
	if (weft_matmul_ex(p, WEFT_TYPE_F32, v->patch_w, kp, D, cols, (int64_t)B * np, s->h, D, MM) != 0)
		return -1;
	const int off = hp->has_cls ? 1 : 0;
	for (int b = 0; b < B; b++) {
		for (int t = 0; t < N; t++) {
			float *x = s->x + ((size_t)b * N + t) * D;
			if (t < off)
				memcpy(x, v->cls, (size_t)D * sizeof(float));
			else {
				memcpy(x, s->h + ((size_t)b * np + t - off) * D, (size_t)D * sizeof(float));
				if (v->patch_b)
					weft_add(x, v->patch_b, D);
			}
			weft_add(x, v->pos + (size_t)t * D, D);
		}
	}
	if (v->pre_ln_w)
		run_rows(p, (rows_job){.op = R_LN, .y = s->x, .x = s->x, .w = v->pre_ln_w, .b = v->pre_ln_b, .rows = R,
				       .n = D, .eps = hp->eps});

	const int H = hp->n_head;
	flowcut fc = {0}; /* FlowCut: one image at a time (weft_vision_encode) */
	if (out->flowcut && flowcut_begin(&fc, np, out->flowcut) != 0)
		return -1;
	const int32_t *map = NULL; /* scratch patch -> grid patch, under FlowCut */
	int rc = -1;
	for (int l = 0; l < hp->n_layer_run; l++) {
		const int nqb = (N + ATT_QB - 1) / ATT_QB;
		R = (int64_t)B * N;
		map = out->flowcut ? fc.idx : NULL;
		const weft_vision_layer *L = &v->layers[l];
		run_rows(p, (rows_job){.op = R_LN, .y = s->h, .x = s->x, .w = L->ln1_w, .b = L->ln1_b, .rows = R, .n = D,
				       .eps = hp->eps});
		if (linear(p, L->q_w, L->q_b, s->h, R, s->q, 0, 0) || linear(p, L->k_w, L->k_b, s->h, R, s->k, 0, 0) ||
		    linear(p, L->v_w, L->v_b, s->h, R, s->v, 0, 0))
			goto out;
		pack_job pj = {hp, B, N, s->k, s->kt};
		weft_pool_run(p, B * H, pack_task, &pj);
		attn_job aj = {hp, B, N, s->q, s->v, s->kt, s->a,
			       out->saliency || out->flowcut || (out->attn_recv && !hp->has_cls) ? s->sal : NULL,
			       out->attn_recv && hp->has_cls ? s->recv : NULL, nqb, 0};
		weft_pool_run(p, B * H * nqb, attn_task, &aj);
		if (aj.err) {
			weft_error("vision attention: out of memory");
			goto out;
		}
		const size_t so = (size_t)hp->n_layer_run * np;
		for (int b = 0; b < B; b++) { /* reduce the per-head scratch */
			float *sal = out->saliency ? out->saliency + (size_t)(img0 + b) * so + (size_t)l * np : NULL;
			float *rcv = out->attn_recv ? out->attn_recv + (size_t)(img0 + b) * so + (size_t)l * np : NULL;
			if (sal)
				reduce_stat(hp, s->sal, b, nqb, hp->has_cls, N, map, sal);
			if (rcv && hp->has_cls)
				reduce_stat(hp, s->recv, b, nqb, 0, N, map, rcv);
			else if (rcv)
				reduce_stat(hp, s->sal, b, nqb, 0, N, map, rcv);
			if (out->keys && l == hp->n_layer_run - 1) { /* the patches' keys, class token dropped */
				float *kd = out->keys + (size_t)(img0 + b) * np * D;
				if (map)
					memset(kd, 0, (size_t)np * D * sizeof(float));
				for (int i = 0; i < N - (hp->has_cls ? 1 : 0); i++)
					memcpy(kd + (size_t)(map ? map[i] : i) * D, s->k + ((size_t)b * N + (hp->has_cls ? 1 : 0) + i) * D,
					       (size_t)D * sizeof(float));
			}
		}
		/* x += a Wo + bo */
		if (weft_matmul_ex(p, L->o_w->type, L->o_w->data, D, D, s->a, R, s->h, D, MM) != 0)
			goto out;
		run_rows(p, (rows_job){.op = R_ADD_BIAS, .y = s->x, .x = s->h, .b = L->o_b, .rows = R, .n = D});
		/* x += act(ln2(x) Wup + bup) Wdown + bdown */
		run_rows(p, (rows_job){.op = R_LN, .y = s->h, .x = s->x, .w = L->ln2_w, .b = L->ln2_b, .rows = R, .n = D,
				       .eps = hp->eps});
		if (linear(p, L->up_w, L->up_b, s->h, R, s->f, 1, hp->act) != 0)
			goto out;
		if (weft_matmul_ex(p, L->down_w->type, L->down_w->data, hp->n_ff, D, s->f, R, s->h, D, MM) != 0)
			goto out;
		run_rows(p, (rows_job){.op = R_ADD_BIAS, .y = s->x, .x = s->h, .b = L->down_b, .rows = R, .n = D});
		if (out->flowcut) { /* FlowCut: fewer patches for the next blocks */
			if (flowcut_layer(&fc, hp, l, s->sal, s->v, s->x) != 0)
				goto out;
			N = fc.n + 1;
		}
	}
	rc = 0;
out:
	if (out->flowcut) {
		if (rc == 0)
			memcpy(out->kept + (size_t)img0 * out->flowcut, fc.idx, (size_t)out->flowcut * sizeof(int32_t));
		flowcut_end(&fc);
	}
	if (rc != 0)
		return -1;

	const int nt = out->flowcut ? out->flowcut : hp->n_tokens; /* tokens out per image */
	float *dst = out->embd + (size_t)img0 * nt * hp->n_embd_out;
	if (hp->proj == WEFT_PROJ_MLP) {
		/* drop the class token; mm.0 -> GELU (erf) -> mm.2 */
		for (int b = 0; b < B; b++)
			memcpy(s->h + (size_t)b * nt * D, s->x + ((size_t)b * N + off) * D, (size_t)nt * D * sizeof(float));
		const int64_t T = (int64_t)B * nt;
		if (linear(p, v->mm0_w, v->mm0_b, s->h, T, s->f, 0, 0) != 0)
			return -1;
		weft_gelu_erf(s->f, T * v->mm_hidden);
		return linear(p, v->mm2_w, v->mm2_b, s->f, T, dst, 0, 0);
	}
	/* idefics3: post-LN, pixel shuffle, fc */
	if (hp->post_ln)
		run_rows(p, (rows_job){.op = R_LN, .y = s->x, .x = s->x, .w = v->post_ln_w, .b = v->post_ln_b, .rows = R,
				       .n = D, .eps = hp->eps});
	const int sf = hp->scale_factor, ts = side / sf;
	const size_t kd = (size_t)D * sf * sf;
	for (int b = 0; b < B; b++)
		for (int ti = 0; ti < ts; ti++)
			for (int tj = 0; tj < ts; tj++) {
				float *row = s->f + ((size_t)b * hp->n_tokens + (size_t)ti * ts + tj) * kd;
				for (int dr = 0; dr < sf; dr++)
					for (int dc = 0; dc < sf; dc++) {
						const size_t patch = (size_t)(ti * sf + dr) * side + (size_t)tj * sf + dc;
						memcpy(row + ((size_t)dr * sf + dc) * D, s->x + ((size_t)b * N + patch) * D,
						       (size_t)D * sizeof(float));
					}
			}
	return linear(p, v->fc_w, NULL, s->f, (int64_t)B * hp->n_tokens, dst, 0, 0);
}

int weft_vision_encode(const weft_vision *v, weft_pool *pool, const float *pixels, int n_img, weft_vision_out *out)
{
	const weft_vision_hparams *hp = &v->hp;
	if (n_img < 0 || !out || !out->embd || (n_img && !pixels)) {
		weft_error("vision: bad arguments");
		return -1;
	}
	if (out->flowcut && (!hp->has_cls || hp->proj != WEFT_PROJ_MLP || !out->kept || out->flowcut < 1 ||
			     out->flowcut >= hp->n_patches)) {
		weft_error(!hp->has_cls || hp->proj != WEFT_PROJ_MLP
				   ? "FlowCut needs an encoder with a class token and an mlp projector (LLaVA's CLIP)"
				   : "FlowCut: %d patches asked of %d", out->flowcut, hp->n_patches);
		return -1;
	}
	if (n_img == 0)
		return 0;
	const int D = hp->n_embd, N = hp->n_pos;
	/* widest per-token row of the FFN buffer: n_ff, im2col, mm hidden, shuffle */
	size_t fw = (size_t)hp->n_ff;
	if ((size_t)3 * hp->patch_size * hp->patch_size > fw)
		fw = (size_t)3 * hp->patch_size * hp->patch_size;
	if ((size_t)v->mm_hidden > fw)
		fw = (size_t)v->mm_hidden;
	if ((size_t)D * hp->scale_factor * hp->scale_factor > fw)
		fw = (size_t)D * hp->scale_factor * hp->scale_factor;
	const size_t per_img = (size_t)N * (7 * (size_t)D + fw) * sizeof(float);
	int sub = (int)(BATCH_BYTES / per_img);
	if (sub < 1)
		sub = 1;
	if (sub > n_img || out->flowcut)
		sub = out->flowcut ? 1 : n_img;
	const int nqb = (N + ATT_QB - 1) / ATT_QB;
	const size_t act = (size_t)sub * N * D;
	scratch s = {0};
	s.x = malloc(act * sizeof(float)), s.h = malloc(act * sizeof(float)), s.q = malloc(act * sizeof(float));
	s.k = malloc(act * sizeof(float)), s.v = malloc(act * sizeof(float)), s.a = malloc(act * sizeof(float));
	s.f = malloc((size_t)sub * N * fw * sizeof(float));
	s.kt = malloc(act * sizeof(float));
	const int want_sal = out->saliency || out->flowcut || (out->attn_recv && !hp->has_cls),
		  want_recv = out->attn_recv && hp->has_cls;
	if (want_sal)
		s.sal = malloc((size_t)sub * hp->n_head * (hp->has_cls ? 1 : nqb) * N * sizeof(float));
	if (want_recv)
		s.recv = malloc((size_t)sub * hp->n_head * nqb * N * sizeof(float));
	int rc = 0;
	if (!s.x || !s.h || !s.q || !s.k || !s.v || !s.a || !s.f || !s.kt || (want_sal && !s.sal) || (want_recv && !s.recv)) {
		weft_error("vision: out of memory for a batch of %d images", sub);
		rc = -1;
	}
	const size_t img_floats = (size_t)3 * hp->image_size * hp->image_size;
	for (int i0 = 0; i0 < n_img && rc == 0; i0 += sub) {
		const int B = n_img - i0 < sub ? n_img - i0 : sub;
		rc = encode_batch(v, pool, pixels + (size_t)i0 * img_floats, B, i0, out, &s);
	}
	scratch_free(&s);
	return rc;
}

/* vision.h - vision encoders from llama.cpp mmproj GGUF files: a ViT
 * (CLIP or SigLIP) plus the projector that maps its patch features into an
 * LLM's embedding space.  The forward pass (lib/vision.c) reads top to
 * bottom like model_llama.c.
 *
 * Supported projector types (clip.projector_type):
 *   mlp       LLaVA-1.5: CLIP ViT with class token, pre-LN, quick-GELU (or
 *             GELU with clip.use_gelu), hidden state "feature layer" taken
 *             before any post-LN, class token dropped, then
 *             mm.0 -> GELU (erf, as transformers) -> mm.2.
 *   idefics3  SmolVLM / Idefics3: SigLIP ViT (no class token, tanh-GELU,
 *             post-LN), pixel shuffle by clip.vision.projector.scale_factor,
 *             then mm.model.fc (no bias).
 *
 * Layers run: clip.vision.feature_layer when present (one integer entry;
 * 0 is the embeddings, k the output of block k-1, as transformers'
 * hidden_states; stacked feature layers are refused), otherwise every
 * stored block.  llama.cpp's legacy LLaVA
 * converter already drops the last CLIP block (block_count = n - 1), so
 * running every stored block gives transformers' vision_feature_layer = -2.
 * (llama.cpp itself runs one block fewer: ggml-org/llama.cpp#25817.)
 *
 * Weights stay in the GGUF mapping; names are llama.cpp's (clip-impl.h). */
#ifndef WEFT_VISION_H
#define WEFT_VISION_H

#include <stdint.h>

#include "gguf.h"
#include "kernels.h"
#include "preprocess.h"

typedef enum { WEFT_PROJ_MLP = 1, WEFT_PROJ_IDEFICS3 } weft_proj_type;
typedef enum { WEFT_ACT_GELU_QUICK = 0, WEFT_ACT_GELU, WEFT_ACT_SILU } weft_act;

typedef struct weft_vision_hparams {
	weft_proj_type proj;
	int n_embd, n_ff, n_head, head_dim;
	int n_layer;            /* clip.vision.block_count (blocks stored) */
	int n_layer_run;        /* blocks run (see above) */
	int image_size, patch_size;
	int n_side;             /* image_size / patch_size */
	int n_patches;          /* n_side^2 */
	int n_pos;              /* n_patches (+1 with a class token) */
	int has_cls;            /* v.class_embd present */
	int post_ln;            /* v.post_ln applied (idefics3 only) */
	weft_act act;
	float eps;
	int scale_factor;       /* idefics3 pixel shuffle (1 for mlp) */
	int preproc_longest;    /* idefics3: clip.vision.preproc_image_size */
	int n_tokens;           /* LLM tokens per image (per tile) */
	int n_embd_out;         /* projector output width = the LLM's n_embd */
	float mean[3], std[3];  /* clip.vision.image_mean / image_std */
} weft_vision_hparams;

/* Matrices are used from the mapping (any weft_matmul type); vectors and
 * the patch kernel are converted to float32 once, at load (NULL: absent). */
typedef struct weft_vision_layer {
	const weft_gguf_tensor *q_w, *k_w, *v_w, *o_w, *up_w, *down_w;
	const float *ln1_w, *ln1_b, *q_b, *k_b, *v_b, *o_b, *ln2_w, *ln2_b, *up_b, *down_b;
} weft_vision_layer;

typedef struct weft_vision {
	const weft_gguf *g;     /* not owned */
	weft_vision_hparams hp;
	const float *patch_w;   /* [n_embd][3][patch][patch] */
	const float *patch_b, *pos, *cls, *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b;
	const weft_gguf_tensor *mm0_w, *mm2_w, *fc_w;
	const float *mm0_b, *mm2_b;
	int mm_hidden;          /* mlp: rows of mm.0 */
	weft_vision_layer *layers;
	uint64_t fingerprint;   /* FNV-1a over the hyper-parameters (eps, mean and std
				 * included) and the tensor table */
	float *arena;           /* owns the float32 copies */
} weft_vision;

/* Bind an mmproj GGUF: read clip.* keys, find and check every tensor.  NULL
 * with a one-line error naming the key or tensor on failure ("unsupported
 * projector type 'qwen2vl_merger'", "missing tensor 'v.blk.3.ln2.weight'",
 * "tensor 'mm.2.weight': shape [a, b], expected [c, d]"...). */
weft_vision *weft_vision_load(const weft_gguf *g);
void weft_vision_free(weft_vision *v);

/* The image preprocessing this encoder expects (tile size, mean/std and
 * the family's resize rules from preprocess.h). */
weft_preproc weft_vision_preproc(const weft_vision *v);

/* Per-patch saliency written by weft_vision_encode, [n_img][n_layer_run]
 * [n_patches] floats:
 *   with a class token (CLIP): the softmax weight the class-token query
 *     gives each patch key, averaged over heads (class key excluded);
 *   without (SigLIP): the attention each patch key receives, averaged over
 *     heads and over all queries.
 * Patch p is row p / n_side, column p % n_side.  For idefics3, LLM token t
 * covers the scale_factor x scale_factor block of patches at block row
 * t / (n_side / s), block column t % (n_side / s). */
typedef struct weft_vision_out {
	float *embd;            /* [n_img][n_tokens][n_embd_out] (required) */
	float *saliency;        /* see above, or NULL */
	/* statistics for visual-token pruning (prune.h), NULL to skip: the
	 * last block run's keys (k projection, bias added) of the patches,
	 * [n_img][n_patches][n_embd]; the attention each patch key receives,
	 * averaged over heads and every query (the class token's included),
	 * [n_img][n_layer_run][n_patches] (= saliency without a class token) */
	float *keys;
	float *attn_recv;
	/* FlowCut inside the encoder (prune.h; encoders with a class token):
	 * keep this many patches, 0 for none; embd then holds [n_img][flowcut]
	 * rows and kept [n_img][flowcut] their patch indices, ascending.
	 * Images are then encoded one at a time, as FlowCut does. */
	int flowcut;
	int32_t *kept;
} weft_vision_out;

/* Encode n_img preprocessed images (pixels: [n_img][3][image_size]
 * [image_size] CHW floats, as weft_preprocess writes them) as one batch.
 * Returns 0, or -1 with an error. */
int weft_vision_encode(const weft_vision *v, weft_pool *pool, const float *pixels, int n_img,
		       weft_vision_out *out);

#endif

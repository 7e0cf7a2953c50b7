/* model.c - bind a decoder-only LLM to an open GGUF (hyper-parameters,
 * tensor checks, fingerprint).  The forward pass is in model_llama.c, the
 * KV cache in kv.c.
 *
 * Keys and tensor names are llama.cpp's (src/llama-arch.cpp); the checks
 * follow llama_model::load_tensors: every tensor must be present with the
 * exact shape, in a type weft can compute with.  Errors are one line and
 * name the key or tensor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_types.h"
#include "kernels.h"
#include "bind_int.h"
#include "model.h"
#include "util.h"

/* ---- hyper-parameters ---- */

/* Read an unsigned key {arch}.suffix into *out; 0, 1 when absent (and not
 * required), -1 with an error. */
static int get_u32(const weft_gguf *g, const char *arch, const char *suffix, int required, uint32_t *out)
{
	char key[128];
	snprintf(key, sizeof key, "%s.%s", arch, suffix);
	int r = weft_gguf_get_u32(g, key, out);
	if (r == 1 && required) {
		weft_error("missing key '%s'", key);
		return -1;
	}
	if (r < 0)
		weft_error_prefix("key '%s'", key);
	return r;
}

static int get_f32(const weft_gguf *g, const char *arch, const char *suffix, float *out)
{
	char key[128];
	snprintf(key, sizeof key, "%s.%s", arch, suffix);
	int r = weft_gguf_get_f32(g, key, out);
	if (r < 0)
		weft_error_prefix("key '%s'", key);
	return r;
}

static int read_hparams(const weft_gguf *g, weft_hparams *hp)
{
	weft_gguf_str s;
	int r = weft_gguf_get_str(g, "general.architecture", &s);
	if (r == 1) {
		weft_error("missing key 'general.architecture'");
		return -1;
	}
	if (r < 0) {
		weft_error_prefix("key 'general.architecture'");
		return -1;
	}
	if (!weft_gguf_str_eq(s, "llama") && !weft_gguf_str_eq(s, "qwen2")) {
		char esc[64];
		weft_escape(s.ptr, (size_t)s.len, esc, sizeof esc);
		weft_error("unsupported architecture '%s' (weft runs llama and qwen2)", esc);
		return -1;
	}
	memcpy(hp->arch, s.ptr, (size_t)s.len);
	hp->arch[s.len] = 0;
	const char *a = hp->arch;
	hp->rope_neox = strcmp(a, "qwen2") == 0;

	uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv, n_ctx = 0, kl, vl, rope_dim;
	if (get_u32(g, a, "block_count", 1, &n_layer) < 0 || get_u32(g, a, "embedding_length", 1, &n_embd) < 0 ||
	    get_u32(g, a, "feed_forward_length", 1, &n_ff) < 0 ||
	    get_u32(g, a, "attention.head_count", 1, &n_head) < 0 || get_u32(g, a, "context_length", 1, &n_ctx) < 0)
		return -1;
	if (n_ctx == 0) {
		weft_error("key '%s.context_length' is 0 (a model needs a training context length)", a);
		return -1;
	}
	n_head_kv = n_head;
	if (get_u32(g, a, "attention.head_count_kv", 0, &n_head_kv) < 0)
		return -1;
	/* bounds keep every size product below far less than 2^63 */
	if (n_layer < 1 || n_layer > 4096 || n_embd < 1 || n_embd > 1 << 16 || n_ff < 1 || n_ff > 1 << 20 ||
	    n_head < 1 || n_head > 1024 || n_head_kv < 1 || n_head_kv > n_head || n_head % n_head_kv) {
		weft_error("unsupported hyper-parameters: %u layers, embedding %u, feed-forward %u, %u heads, "
			   "%u KV heads",
			   n_layer, n_embd, n_ff, n_head, n_head_kv);
		return -1;
	}
	kl = vl = n_embd % n_head ? 0 : n_embd / n_head;
	if (get_u32(g, a, "attention.key_length", 0, &kl) < 0 || get_u32(g, a, "attention.value_length", 0, &vl) < 0)
		return -1;
	if (kl < 1 || kl > 1024 || kl != vl) {
		weft_error("unsupported head size: key length %u, value length %u", kl, vl);
		return -1;
	}
	rope_dim = kl;
	if (get_u32(g, a, "rope.dimension_count", 0, &rope_dim) < 0)
		return -1;
	if (rope_dim > kl || rope_dim % 2) {
		weft_error("unsupported RoPE dimension count %u (head size %u)", rope_dim, kl);
		return -1;
	}
	hp->n_layer = (int)n_layer;
	hp->n_embd = (int)n_embd;
	hp->n_ff = (int)n_ff;
	hp->n_head = (int)n_head;
	hp->n_head_kv = (int)n_head_kv;
	hp->head_dim = (int)kl;
	hp->rope_dim = (int)rope_dim;
	hp->n_ctx_train = (int)(n_ctx > 0x7fffffff ? 0x7fffffff : n_ctx);

	hp->rms_eps = 1e-5f;
	hp->rope_base = 10000.0f;
	hp->rope_freq_scale = 1.0f;
	r = get_f32(g, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps);
	if (r == 1)
		weft_error("missing key '%s.attention.layer_norm_rms_epsilon'", a);
	if (r != 0 || get_f32(g, a, "rope.freq_base", &hp->rope_base) < 0)
		return -1;
	/* as llama.cpp: type none or linear (default); the factor from
	 * rope.scaling.factor, else the older rope.scale_linear; 0 = none */
	char key[128];
	snprintf(key, sizeof key, "%s.rope.scaling.type", a);
	r = weft_gguf_get_str(g, key, &s);
	if (r < 0) {
		weft_error_prefix("key '%s'", key);
		return -1;
	}
	if (r == 0 && !weft_gguf_str_eq(s, "none") && !weft_gguf_str_eq(s, "linear")) {
		char esc[64];
		weft_escape(s.ptr, (size_t)s.len, esc, sizeof esc);
		weft_error("unsupported RoPE scaling '%s'", esc);
		return -1;
	}
	float factor = 0.0f;
	r = get_f32(g, a, "rope.scaling.factor", &factor);
	if (r < 0 || (r == 1 && get_f32(g, a, "rope.scale_linear", &factor) < 0))
		return -1;
	if (!(hp->rms_eps > 0.0f && hp->rms_eps < 1.0f) || !(hp->rope_base > 0.0f) || !(factor >= 0.0f) ||
	    factor > 1e6f) {
		weft_error("bad hyper-parameters: rms epsilon %g, RoPE base %g, RoPE scaling factor %g",
			   (double)hp->rms_eps, (double)hp->rope_base, (double)factor);
		return -1;
	}
	hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
	return 0;
}

/* ---- tensors (weft_bind, lib/bind.c) ---- */

/* FNV-1a over the architecture, hyper-parameters and tensor table (names,
 * types, dims, offsets): cheap, and changes with any re-quantization or
 * different weights layout.  Floats enter by their bit patterns. */
static uint64_t fingerprint(const weft_gguf *g, const weft_hparams *hp)
{
	uint64_t h = WEFT_FNV_INIT;
	h = weft_fnv1a(h, hp->arch, strlen(hp->arch) + 1);
	const int64_t iv[] = {hp->n_layer, hp->n_embd, hp->n_ff, hp->n_head, hp->n_head_kv, hp->head_dim,
			      hp->n_vocab, hp->n_ctx_train, hp->rope_dim, hp->rope_neox, hp->tied_output};
	for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++)
		weft_hash_int(&h, iv[i]);
	const float fv[] = {hp->rope_base, hp->rope_freq_scale, hp->rms_eps};
	for (size_t i = 0; i < sizeof fv / sizeof fv[0]; i++) {
		uint32_t u;
		memcpy(&u, &fv[i], 4);
		weft_hash_int(&h, u);
	}
	return weft_hash_tensors(g, h);
}

weft_model *weft_model_load(const weft_gguf *g)
{
	weft_model *m = weft_calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->g = g;
	weft_hparams *hp = &m->hp;
	if (read_hparams(g, hp) != 0)
		goto fail;
	const int64_t d = hp->n_embd, dq = (int64_t)hp->n_head * hp->head_dim,
		      dkv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
	int err = 0;

	/* the vocabulary size comes from token_embd (checked against the key) */
	const weft_gguf_tensor *te = weft_gguf_find_tensor(g, "token_embd.weight");
	if (!te) {
		weft_error("missing tensor 'token_embd.weight'");
		goto fail;
	}
	uint32_t nv = 0;
	int r = get_u32(g, hp->arch, "vocab_size", 0, &nv);
	if (r < 0)
		goto fail;
	if (te->ne[1] < 1 || te->ne[1] > 0x7fffffff || (r == 0 && nv != te->ne[1])) {
		weft_error("tensor 'token_embd.weight': %lld rows, but %s.vocab_size is %u", (long long)te->ne[1],
			   hp->arch, nv);
		goto fail;
	}
	hp->n_vocab = (int)te->ne[1];

	m->tok_embd = weft_bind(g, 0, WEFT_USE_ROWS, d, hp->n_vocab, "token_embd.weight", 0, &err);
	if (weft_gguf_find_tensor(g, "rope_freqs.weight")) {
		weft_error("unsupported tensor 'rope_freqs.weight' (per-dimension RoPE frequency factors)");
		goto fail;
	}
	m->out_norm = weft_bind(g, 0, WEFT_USE_F32, d, 0, "output_norm.weight", 0, &err);
	m->output = weft_bind(g, 1, WEFT_USE_MATMUL, d, hp->n_vocab, "output.weight", 0, &err);
	if (err)
		goto fail;
	if (!m->output) {
		hp->tied_output = 1;
		m->output = weft_bind(g, 0, WEFT_USE_MATMUL, d, hp->n_vocab, "token_embd.weight", 0, &err);
		if (err) {
			weft_error_prefix("no 'output.weight' (tied to the token embeddings)");
			goto fail;
		}
	}
	m->layers = weft_calloc((size_t)hp->n_layer, sizeof *m->layers);
	if (!m->layers)
		goto fail;
	const int bias = hp->rope_neox; /* qwen2: q/k/v biases */
	for (int i = 0; i < hp->n_layer && !err; i++) {
		weft_layer_w *L = &m->layers[i];
		L->attn_norm = weft_bind(g, 0, WEFT_USE_F32, d, 0, "blk.%d.attn_norm.weight", i, &err);
		L->wq = weft_bind(g, 0, WEFT_USE_MATMUL, d, dq, "blk.%d.attn_q.weight", i, &err);
		L->wk = weft_bind(g, 0, WEFT_USE_MATMUL, d, dkv, "blk.%d.attn_k.weight", i, &err);
		L->wv = weft_bind(g, 0, WEFT_USE_MATMUL, d, dkv, "blk.%d.attn_v.weight", i, &err);
		L->bq = weft_bind(g, !bias, WEFT_USE_F32, dq, 0, "blk.%d.attn_q.bias", i, &err);
		L->bk = weft_bind(g, !bias, WEFT_USE_F32, dkv, 0, "blk.%d.attn_k.bias", i, &err);
		L->bv = weft_bind(g, !bias, WEFT_USE_F32, dkv, 0, "blk.%d.attn_v.bias", i, &err);
		L->wo = weft_bind(g, 0, WEFT_USE_MATMUL, dq, d, "blk.%d.attn_output.weight", i, &err);
		L->ffn_norm = weft_bind(g, 0, WEFT_USE_F32, d, 0, "blk.%d.ffn_norm.weight", i, &err);
		L->w_gate = weft_bind(g, 0, WEFT_USE_MATMUL, d, ff, "blk.%d.ffn_gate.weight", i, &err);
		L->w_up = weft_bind(g, 0, WEFT_USE_MATMUL, d, ff, "blk.%d.ffn_up.weight", i, &err);
		L->w_down = weft_bind(g, 0, WEFT_USE_MATMUL, ff, d, "blk.%d.ffn_down.weight", i, &err);
	}
	if (err)
		goto fail;
	m->fingerprint = fingerprint(g, hp);
	return m;
fail:
	weft_model_free(m);
	return NULL;
}

int weft_model_check_llamacpp(const weft_model *m)
{
	const weft_gguf_tensor *w[8];
	for (int l = -1; l < m->hp.n_layer; l++) {
		int n = 0;
		if (l < 0) {
			w[n++] = m->output;
		} else {
			const weft_layer_w *L = &m->layers[l];
			const weft_gguf_tensor *lw[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
			for (int i = 0; i < 7; i++)
				w[n++] = lw[i];
		}
		for (int i = 0; i < n; i++)
			if (!weft_kernels_llamacpp_exact(w[i]->type)) {
				weft_error("tensor '%.*s' is %s; llama.cpp's arithmetic is reproduced for Q4_0, Q4_1 and "
					   "Q8_0 weights only",
					   (int)w[i]->name.len, w[i]->name.ptr, weft_type_get(w[i]->type)->name);
				return -1;
			}
	}
	return 0;
}

void weft_model_free(weft_model *m)
{
	if (!m)
		return;
	free(m->layers);
	free(m);
}

/* ---- KV cache (kv.c) ---- */

weft_kv *weft_kv_new(const weft_model *m, int64_t cap)
{
	return weft_kv_new_type(m, cap, WEFT_KV_F16);
}

weft_kv *weft_kv_new_type(const weft_model *m, int64_t cap, weft_kv_type t)
{
	return weft_kv_alloc(m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, cap, t);
}

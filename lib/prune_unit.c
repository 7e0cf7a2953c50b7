/* prune_unit.c - token-level statistics of a pruning unit (from the
 * per-patch ones encode-image exports) and the helpers the methods share
 * (prune_int.h); the text embeddings cdpruner conditions on. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_types.h"
#include "kernels.h"
#include "tokenizer.h"
#include "prune_int.h"
#include "util.h"

/* Tile t's token grid: side ts, patches per token side s, patch side P;
 * -1 + error when its statistics do not tile its tokens. */
static int grid(const weft_embd_tile *t, int ti, int *P, int *s, int *ts)
{
	*s = t->merge > 0 ? t->merge : 1;
	*P = t->patch_side;
	if (*P < 1 || *P % *s || (int64_t)(*P / *s) * (*P / *s) != t->n_tokens || (int64_t)*P * *P != t->n_patches) {
		weft_error("tile %d (image %d): %" PRId64 " patches (side %d, %d per token side) do not cover its %" PRId64
			   " tokens",
			   ti, t->image, t->n_patches, *P, *s, t->n_tokens);
		return -1;
	}
	*ts = *P / *s;
	return 0;
}

/* out[i] = the sum of per-patch statistic src[layer] over token i's
 * patches, for every token of u.  which names it in errors. */
static int gather(const prune_unit *u, int layer, int attn_recv, float *out)
{
	for (int ti = 0; ti < u->n_tiles; ti++) {
		const weft_embd_tile *t = &u->tiles[ti];
		const float *src = attn_recv ? t->attn_recv : t->saliency;
		if (attn_recv && !src && t->saliency && t->saliency_kind && strcmp(t->saliency_kind, "attn_recv") == 0)
			src = t->saliency; /* encoders without a class token export it as saliency */
		if (!src) {
			weft_error("tile %d (image %d): no %s; run encode-image%s", ti + u->tile0, t->image,
				   attn_recv ? "attention received (attn_recv)" : "saliency",
				   attn_recv ? " --stats attn" : " (it exports saliency by default)");
			return -1;
		}
		const int64_t L = t->n_sal_layers, l = layer < 0 ? L + layer : layer;
		if (l < 0 || l >= L) {
			weft_error("tile %d (image %d): encoder layer %d asked, the frame has %" PRId64 " layers of %s", ti + u->tile0,
				   t->image, layer, L, attn_recv ? "attention received" : "saliency");
			return -1;
		}
		int P, s, ts;
		if (grid(t, ti + u->tile0, &P, &s, &ts) != 0)
			return -1;
		const float *row = src + l * t->n_patches;
		for (int64_t k = 0; k < t->n_tokens; k++) {
			const int br = (int)(k / ts), bc = (int)(k % ts);
			float acc = 0;
			for (int dr = 0; dr < s; dr++)
				for (int dc = 0; dc < s; dc++)
					acc += row[(int64_t)(br * s + dr) * P + bc * s + dc];
			out[u->first[ti] + k] = acc;
		}
	}
	return 0;
}

int prune_saliency(const prune_unit *u, int layer, float *out) { return gather(u, layer, 0, out); }
int prune_attn_recv(const prune_unit *u, int layer, float *out) { return gather(u, layer, 1, out); }

float *prune_keys(const prune_unit *u, int64_t *dk)
{
	*dk = 0;
	for (int ti = 0; ti < u->n_tiles; ti++) {
		const weft_embd_tile *t = &u->tiles[ti];
		if (!t->keys) {
			weft_error("tile %d (image %d): no keys; run encode-image --stats keys", ti + u->tile0, t->image);
			return NULL;
		}
		if (ti && t->key_dim != *dk) {
			weft_error("tile %d (image %d): keys of %" PRId64 " values beside %" PRId64, ti + u->tile0, t->image,
				   t->key_dim, *dk);
			return NULL;
		}
		*dk = t->key_dim;
	}
	float *k = weft_calloc((size_t)u->n * (size_t)*dk, sizeof(float));
	if (!k)
		return NULL;
	for (int ti = 0; ti < u->n_tiles; ti++) {
		const weft_embd_tile *t = &u->tiles[ti];
		int P, s, ts;
		if (grid(t, ti + u->tile0, &P, &s, &ts) != 0) {
			free(k);
			return NULL;
		}
		for (int64_t i = 0; i < t->n_tokens; i++) {
			float *y = k + (u->first[ti] + i) * *dk;
			const int br = (int)(i / ts), bc = (int)(i % ts);
			for (int dr = 0; dr < s; dr++)
				for (int dc = 0; dc < s; dc++)
					weft_add(y, t->keys + ((int64_t)(br * s + dr) * P + bc * s + dc) * *dk, *dk);
			if (s > 1)
				for (int64_t e = 0; e < *dk; e++)
					y[e] /= (float)(s * s);
		}
	}
	return k;
}

int prune_side(const prune_unit *u, int64_t i)
{
	const weft_embd_tile *t = &u->tiles[u->tile[i]];
	const int s = t->merge > 0 ? t->merge : 1;
	if (t->patch_side > 0 && t->patch_side % s == 0)
		return t->patch_side / s;
	int r = (int)floor(sqrt((double)t->n_tokens) + 0.5);
	return (int64_t)r * r == t->n_tokens ? r : (int)t->n_tokens;
}

/* ---- helpers ---- */

void prune_topk_d(const double *v, int64_t n, int64_t k, int32_t *out)
{
	/* a stable merge sort of the indices by falling value: ties keep the
	 * lower index first */
	int32_t *ix = malloc((size_t)(n ? n : 1) * 2 * sizeof *ix);
	if (!ix) {
		weft_error("out of memory");
		for (int64_t j = 0; j < k; j++)
			out[j] = (int32_t)j;
		return;
	}
	int32_t *a = ix, *b = ix + n;
	for (int64_t i = 0; i < n; i++)
		a[i] = (int32_t)i;
	for (int64_t w = 1; w < n; w *= 2) {
		for (int64_t lo = 0; lo < n; lo += 2 * w) {
			int64_t m = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, i = lo, j = m, o = lo;
			while (i < m && j < hi)
				b[o++] = v[a[j]] > v[a[i]] ? a[j++] : a[i++];
			while (i < m)
				b[o++] = a[i++];
			while (j < hi)
				b[o++] = a[j++];
		}
		int32_t *t = a;
		a = b, b = t;
	}
	memcpy(out, a, (size_t)k * sizeof *out);
	free(ix);
}

void prune_topk(const float *v, int64_t n, int64_t k, int32_t *out)
{
	double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
	if (!d) {
		weft_error("out of memory");
		for (int64_t j = 0; j < k; j++)
			out[j] = (int32_t)j;
		return;
	}
	for (int64_t i = 0; i < n; i++)
		d[i] = v[i];
	prune_topk_d(d, n, k, out);
	free(d);
}

double prune_dot_d(const float *a, const float *b, int64_t d)
{
	double s = 0;
	for (int64_t e = 0; e < d; e++)
		s += (double)a[e] * b[e];
	return s;
}

float prune_dot(const float *a, const float *b, int64_t d)
{
	double s = 0;
	for (int64_t e = 0; e < d; e++)
		s += (double)a[e] * b[e];
	return (float)s;
}

float *prune_normalized(const float *x, int64_t n, int64_t d)
{
	float *y = weft_malloc((size_t)n * (size_t)d * sizeof(float));
	if (!y)
		return NULL;
	for (int64_t i = 0; i < n; i++) {
		const float *a = x + i * d;
		const float nrm = sqrtf(prune_dot(a, a, d));
		for (int64_t e = 0; e < d; e++)
			y[i * d + e] = nrm > 0 ? a[e] / nrm : 0.0f;
	}
	return y;
}

typedef struct gram_job {
	const float *xn, *xt;
	float *g;
	int64_t n, d;
} gram_job;

static void gram_task(void *ctx, int task, int n_tasks)
{
	const gram_job *j = ctx;
	const int64_t r0 = j->n * task / n_tasks, r1 = j->n * (task + 1) / n_tasks;
	if (r1 > r0)
		weft_sgemm(r1 - r0, j->n, j->d, j->xn + r0 * j->d, j->d, j->xt, j->n, j->g + r0 * j->n, j->n);
}

float *prune_gram(const float *x, int64_t n, int64_t d, weft_pool *pool)
{
	float *xn = prune_normalized(x, n, d), *xt = weft_malloc((size_t)n * (size_t)d * sizeof *xt);
	float *g = weft_malloc((size_t)n * (size_t)n * sizeof *g);
	if (!xn || !xt || !g) {
		free(xn), free(xt), free(g);
		return NULL;
	}
	for (int64_t i = 0; i < n; i++)
		for (int64_t e = 0; e < d; e++)
			xt[e * n + i] = xn[i * d + e];
	gram_job j = {xn, xt, g, n, d};
	int tasks = pool ? weft_pool_size(pool) * 4 : 1;
	if (tasks > n)
		tasks = (int)(n > 0 ? n : 1);
	weft_pool_run(pool, tasks, gram_task, &j);
	free(xn), free(xt);
	return g;
}

/* ---- the prompt's text (cdpruner) ---- */

float *weft_prune_text(const weft_model *m, const weft_vocab *voc, const int32_t *ids, int64_t n, int64_t *n_text)
{
	const weft_gguf_tensor *te = m->tok_embd;
	const int64_t d = m->hp.n_embd;
	const uint64_t rb = weft_type_row_bytes(te->type, (uint64_t)d);
	float *x = weft_malloc((size_t)(n > 0 ? n : 1) * (size_t)d * sizeof(float));
	if (!x)
		return NULL;
	int64_t k = 0;
	for (int64_t i = 0; i < n; i++) {
		if (ids[i] < 0 || ids[i] >= m->hp.n_vocab || weft_vocab_type(voc, ids[i]) == 3 /* control */)
			continue;
		if (weft_dequantize_row(te->type, (const uint8_t *)te->data + rb * (uint64_t)ids[i], x + k * d, d) != 0) {
			free(x);
			weft_error("cannot read the token embeddings");
			return NULL;
		}
		k++;
	}
	if (!k) {
		free(x);
		weft_error("the prompt has no text tokens to condition on");
		return NULL;
	}
	*n_text = k;
	return x;
}

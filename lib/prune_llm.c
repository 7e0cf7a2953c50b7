/* prune_llm.c - the LLM-stage methods' common part (prune.h): the
 * directive frame prune-tokens writes and prefill reads, the drop hook the
 * forward pass calls between layers (model.h weft_fwd_extra.drop), the
 * budget, and the attention rows the methods score with. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_types.h"
#include "keys.h"
#include "prune_int.h"
#include "util.h"

struct weft_prune_llm {
	prune_llm_ctx c;
	prune_params p;
	prune_drop_fn drop;
	uint8_t *is_vis;
	char method[32];
};

/* ---- the directive ---- */

weft_frame *weft_prune_directive(const weft_prune_opts *o)
{
	if (weft_prune_check(o) != 0)
		return NULL;
	if (weft_prune_stage_of(o->method) != WEFT_PRUNE_AT_LLM) {
		weft_error("%s does not act inside the LLM", o->method);
		return NULL;
	}
	weft_frame *f = weft_frame_new(WEFT_KIND_PRUNE);
	if (!f || weft_frame_set(f, WEFT_KEY_METHOD, o->method) ||
	    (o->keep && weft_frame_setf(f, WEFT_KEY_KEEP, "%" PRId64, o->keep)) ||
	    (!o->keep && o->ratio > 0 && weft_frame_setf(f, WEFT_KEY_RATIO, "%.17g", o->ratio)) ||
	    (o->params && *o->params && weft_frame_set(f, WEFT_KEY_PARAMS, o->params)) ||
	    weft_frame_set(f, WEFT_KEY_PRUNED, weft_prune_describe(o))) {
		weft_frame_free(f);
		return NULL;
	}
	return f;
}

int weft_prune_directive_read(const weft_frame *f, weft_prune_opts *o)
{
	memset(o, 0, sizeof *o);
	o->method = weft_frame_get(f, WEFT_KEY_METHOD);
	const char *k = weft_frame_get(f, WEFT_KEY_KEEP), *r = weft_frame_get(f, WEFT_KEY_RATIO);
	char *end = NULL;
	if (k) {
		o->keep = strtoll(k, &end, 10);
		if (!*k || *end || o->keep < 1) {
			weft_error("frame %" PRIu64 ": prune directive with a bad weft.keep '%.20s'", f->index, k);
			return -1;
		}
	} else if (r) {
		o->ratio = strtod(r, &end);
		if (!*r || *end) {
			weft_error("frame %" PRIu64 ": prune directive with a bad weft.ratio '%.20s'", f->index, r);
			return -1;
		}
	}
	o->params = weft_frame_get(f, WEFT_KEY_PARAMS);
	if (!o->method) {
		weft_error("frame %" PRIu64 ": prune directive without weft.method", f->index);
		return -1;
	}
	if (weft_prune_check(o) != 0 || weft_prune_stage_of(o->method) != WEFT_PRUNE_AT_LLM) {
		if (weft_prune_stage_of(o->method) >= 0)
			weft_error("%s does not act inside the LLM", o->method);
		weft_error_prefix("frame %" PRIu64 ": prune directive", f->index);
		return -1;
	}
	return 0;
}

/* ---- the drop ---- */

static int hook(void *ctx, const weft_fwd_rows *r, int32_t *keep, int64_t *n_keep)
{
	weft_prune_llm *d = ctx;
	const int64_t before = prune_llm_n_vis(&d->c, r);
	if (d->drop(&d->c, r, keep, n_keep) != 0)
		return -1;
	/* the last row gives the logits: it stays, even when it is an image's */
	if (*n_keep < r->n && (*n_keep == 0 || keep[*n_keep - 1] != r->n - 1))
		keep[(*n_keep)++] = (int32_t)(r->n - 1);
	if (*n_keep < r->n && d->c.n_drops < PRUNE_MAX_LIST) {
		const int i = d->c.n_drops++;
		d->c.drop_layer[i] = r->layer;
		d->c.drop_from[i] = before;
		d->c.drop_to[i] = before - (r->n - *n_keep);
	}
	return 0;
}

/* Layer parameters within the model, increasing: layer(s) before which a
 * drop acts, 1 .. n_layer - 1; after, the layers whose output is pruned,
 * 0 .. n_layer - 2. */
static int check_layers(const weft_prune_llm *d, int n_layer)
{
	for (int i = 0; i < d->p.n; i++) {
		const int after = strcmp(d->p.name[i], "after") == 0;
		if (!after && strcmp(d->p.name[i], "layer") && strcmp(d->p.name[i], "layers"))
			continue;
		for (int j = 0; j < d->p.len[i]; j++) {
			const double v = d->p.v[i][j] + after;
			if (v < 1 || v >= n_layer || (j && v <= d->p.v[i][j - 1] + after)) {
				weft_error("%s: %s %g is not a layer between %d and %d of this model (increasing)", d->method,
					   d->p.name[i], d->p.v[i][j], 1 - after, n_layer - 1 - after);
				return -1;
			}
		}
	}
	return 0;
}

weft_prune_llm *weft_prune_llm_new(const weft_prune_opts *o, const weft_model *m, const weft_prompt *p)
{
	weft_prune_llm *d = weft_calloc(1, sizeof *d);
	if (!d)
		return NULL;
	if (prune_lookup_llm(o, &d->p, &d->drop) != 0) {
		free(d);
		return NULL;
	}
	snprintf(d->method, sizeof d->method, "%s", o->method);
	if (check_layers(d, m->hp.n_layer) != 0) {
		free(d);
		return NULL;
	}
	if (!(d->is_vis = weft_calloc((size_t)(p->n ? p->n : 1), 1))) {
		free(d);
		return NULL;
	}
	int64_t nv = 0;
	for (int64_t i = 0; i < p->n; i++)
		nv += d->is_vis[i] = p->ids[i] < 0;
	int64_t b = o->keep ? o->keep : (int64_t)floor((o->ratio > 0 ? o->ratio : 0.5) * (double)nv + 0.5);
	if (b < 1)
		b = 1;
	d->c = (prune_llm_ctx){.m = m, .p = &d->p, .n_vis = nv, .budget = b < nv ? b : nv, .is_vis = d->is_vis,
			       .T = p->n};
	return d;
}

void weft_prune_llm_attach(weft_prune_llm *d, weft_fwd_extra *extra)
{
	/* nothing to drop: no hook, so the pass keeps its chunking */
	if (d->c.n_vis == 0 || d->c.budget >= d->c.n_vis)
		return;
	extra->drop = hook;
	extra->drop_ctx = d;
}

void weft_prune_llm_report(const weft_prune_llm *d, FILE *out)
{
	if (d->c.n_vis == 0 || d->c.budget >= d->c.n_vis)
		fprintf(out, "%s: %" PRId64 " visual tokens, budget %" PRId64 ": nothing dropped\n", d->method, d->c.n_vis,
			d->c.budget);
	for (int i = 0; i < d->c.n_drops; i++)
		fprintf(out, "%s: before layer %d: %" PRId64 " -> %" PRId64 " visual tokens\n", d->method, d->c.drop_layer[i],
			d->c.drop_from[i], d->c.drop_to[i]);
}

int64_t weft_prune_llm_kept(const weft_prune_llm *d)
{
	return d->c.n_drops ? d->c.drop_to[0] : d->c.n_vis;
}

void weft_prune_llm_free(weft_prune_llm *d)
{
	if (!d)
		return;
	free(d->is_vis);
	free(d->c.state);
	free(d);
}

/* ---- what the methods share ---- */

int64_t prune_llm_n_vis(const prune_llm_ctx *c, const weft_fwd_rows *r)
{
	int64_t k = 0;
	for (int64_t j = 0; j < r->n; j++)
		k += c->is_vis[r->src[j]];
	return k;
}

int64_t prune_llm_keep_top(const prune_llm_ctx *c, const weft_fwd_rows *r, const float *score, int64_t k,
			   int32_t *keep)
{
	const int64_t nv = prune_llm_n_vis(c, r);
	float *sv = malloc((size_t)(nv ? nv : 1) * sizeof *sv);
	int32_t *rowof = malloc((size_t)(nv ? nv : 1) * sizeof *rowof), *top = malloc((size_t)(nv ? nv : 1) * sizeof *top);
	uint8_t *kept = calloc((size_t)r->n, 1);
	if (!sv || !rowof || !top || !kept) {
		free(sv), free(rowof), free(top), free(kept);
		return -1;
	}
	int64_t v = 0;
	for (int64_t j = 0; j < r->n; j++)
		if (c->is_vis[r->src[j]])
			rowof[v] = (int32_t)j, sv[v++] = score[j];
		else
			kept[j] = 1;
	if (k > nv)
		k = nv;
	prune_topk(sv, nv, k, top);
	for (int64_t i = 0; i < k; i++)
		kept[rowof[top[i]]] = 1;
	int64_t n = 0;
	for (int64_t j = 0; j < r->n; j++)
		if (kept[j])
			keep[n++] = (int32_t)j;
	free(sv), free(rowof), free(top), free(kept);
	return n;
}

void weft_prune_attn_row(const weft_fwd_rows *r, int64_t i, float *out)
{
	const weft_hparams *hp = &r->m->hp;
	const weft_kv *kv = r->kv;
	const int l = r->layer - 1, H = hp->n_head, G = hp->n_head_kv, hd = hp->head_dim;
	const float scale = 1.0f / sqrtf((float)hd);
	int64_t maxlen = 0;
	for (int g = 0; g < G; g++)
		if (kv->len[l * G + g] > maxlen)
			maxlen = kv->len[l * G + g];
	float *s = malloc((size_t)(maxlen ? maxlen : 1) * sizeof *s), *k = malloc((size_t)hd * sizeof *k);
	for (int64_t j = 0; j < r->n; j++)
		out[j] = 0;
	if (!s || !k) {
		free(s), free(k);
		return;
	}
	for (int h = 0; h < H; h++) {
		const int g = h / (H / G);
		const int64_t len = kv->len[l * G + g], first = len - r->n, upto = first + i + 1;
		const float *q = r->q + ((int64_t)i * H + h) * hd;
		float mx = -INFINITY;
		for (int64_t t = 0; t < upto; t++) {
			weft_dequantize_row((uint32_t)kv->layer[l].type, weft_kv_krow(kv, l, g, t), k, hd);
			s[t] = prune_dot(q, k, hd) * scale;
			mx = s[t] > mx ? s[t] : mx;
		}
		double sum = 0;
		for (int64_t t = 0; t < upto; t++)
			sum += s[t] = expf(s[t] - mx);
		for (int64_t j = 0; j <= i; j++)
			out[j] += (float)(s[first + j] / sum / H);
	}
	free(s), free(k);
}

/* The attention row i would give at layer r->layer (the one about to run)
 * to the pass's rows 0..i, from the residual stream entering it: that
 * layer's keys of every row and row i's query (PyramidDrop scores with the
 * next layer's attention).  out[n], 0 after i.  0 / -1. */
int prune_llm_next_attn_row(const weft_fwd_rows *r, int64_t i, float *out)
{
	const weft_model *m = r->m;
	const weft_hparams *hp = &m->hp;
	const weft_layer_w *L = &m->layers[r->layer];
	const int64_t d = hp->n_embd, H = hp->n_head, G = hp->n_head_kv, hd = hp->head_dim, n = i + 1;
	float *h = weft_malloc((size_t)n * (size_t)d * sizeof *h), *k = weft_malloc((size_t)n * (size_t)(G * hd) * sizeof *k);
	float *q = weft_malloc((size_t)(H * hd) * sizeof *q), *s = weft_malloc((size_t)n * sizeof *s);
	int rc = -1;
	if (!h || !k || !q || !s)
		goto out;
	for (int64_t j = 0; j < n; j++)
		weft_rmsnorm(h + j * d, r->x + j * d, L->attn_norm->data, d, hp->rms_eps);
	if (weft_matmul(r->pool, L->wk->type, L->wk->data, L->wk->ne[0], L->wk->ne[1], h, n, k, G * hd) != 0 ||
	    weft_matmul(r->pool, L->wq->type, L->wq->data, L->wq->ne[0], L->wq->ne[1], h + i * d, 1, q, H * hd) != 0)
		goto out;
	if (L->bq)
		weft_add(q, L->bq->data, H * hd);
	weft_rope(q, (int)H, (int)hd, hp->rope_dim, r->pos_base + r->pos[i], hp->rope_base, hp->rope_freq_scale,
		  hp->rope_neox);
	for (int64_t j = 0; j < n; j++) {
		if (L->bk)
			weft_add(k + j * G * hd, L->bk->data, G * hd);
		weft_rope(k + j * G * hd, (int)G, (int)hd, hp->rope_dim, r->pos_base + r->pos[j], hp->rope_base,
			  hp->rope_freq_scale, hp->rope_neox);
	}
	for (int64_t j = 0; j < r->n; j++)
		out[j] = 0;
	const float scale = 1.0f / sqrtf((float)hd);
	for (int64_t hh = 0; hh < H; hh++) {
		const int64_t g = hh / (H / G);
		float mx = -INFINITY;
		for (int64_t j = 0; j < n; j++) {
			s[j] = prune_dot(q + hh * hd, k + (j * G + g) * hd, hd) * scale;
			mx = s[j] > mx ? s[j] : mx;
		}
		double sum = 0;
		for (int64_t j = 0; j < n; j++)
			sum += s[j] = expf(s[j] - mx);
		for (int64_t j = 0; j < n; j++)
			out[j] += (float)(s[j] / sum / (double)H);
	}
	rc = 0;
out:
	free(h), free(k), free(q), free(s);
	return rc;
}

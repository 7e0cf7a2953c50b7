/* kvm_stream.c - prefill in bounded KV memory (prefill --kv-budget): the
 * prompt goes through the model chunk by chunk, and after every chunk a
 * streaming-capable method (kv_methods.def's KVM_STREAMING: random,
 * streamingllm, knorm, observed / h2o, snapkv, tova, keydiff) cuts each
 * head back to `budget` rows, so the cache never holds more than budget +
 * chunk rows per head however long the prompt.  The statistics such a
 * method needs come from the chunk itself: the attention mass accumulates
 * over the chunks (H2O's running sums, compacted with the rows); SnapKV's
 * and TOVA's window queries are the chunk's last ones.  Methods that need
 * the whole prompt (pyramidkv's per-layer budgets, expected-attention's
 * query statistics, adakv's and duo's head-wise budgets) or change the
 * layout (think, kivi, gear, minicache) cannot run this way. */
#include <stdlib.h>
#include <string.h>

#include "kvm_int.h"
#include "util.h"

/* Every method of spec streams; *need_mass, *window: what they need. */
static int streaming_spec(const char *spec, int *need_mass, int *window)
{
	char *copy = weft_strndup(spec, strlen(spec)), *save = NULL;
	int rc = copy ? 0 : -1;
	*need_mass = 0, *window = 0;
	for (char *it = copy ? strtok_r(copy, ",", &save) : NULL; rc == 0 && it; it = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(it, ':');
		if (colon)
			*colon = 0;
		const kvm_def *d = weft_kvm_def_named(it);
		if (!d) {
			rc = -1;
			break;
		}
		if (!(d->flags & KVM_STREAMING)) {
			weft_error("%s cannot run between prefill chunks (streaming methods: random, streamingllm, knorm, "
				   "observed, h2o, snapkv, tova, keydiff)", d->m.name);
			rc = -1;
			break;
		}
		*need_mass |= (d->needs & KVM_NEED_MASS) != 0;
		if (d->needs & KVM_NEED_WINDOW) {
			int w = d->id == KVM_ID_TOVA ? 1 : 64;
			const char *p = colon ? strstr(colon + 1, "window=") : NULL;
			if (p)
				w = atoi(p + 7);
			*window = w > *window ? w : *window;
		}
	}
	free(copy);
	return rc;
}

int weft_kvm_prefill_bounded(const weft_model *m, weft_pool *pool, weft_kv *kv, const int32_t *ids, const float *embd,
			     int64_t T, int64_t chunk, float *logits, const char *spec, int64_t budget,
			     const int32_t *hist, int64_t n_hist, int64_t *peak_rows)
{
	const weft_hparams *hp = &m->hp;
	int need_mass, W;
	if (streaming_spec(spec, &need_mass, &W) != 0)
		return -1;
	if (budget < 1 || chunk < 1) {
		weft_error("--kv-budget %lld rows with chunks of %lld", (long long)budget, (long long)chunk);
		return -1;
	}
	if (W > chunk) {
		weft_error("%s needs the last %d queries of each chunk: use --chunk %d or more", spec, W, W);
		return -1;
	}
	if (weft_kv_reserve_extra(kv, budget + chunk) != 0)
		return -1;
	const size_t H = (size_t)hp->n_head_kv, L = (size_t)hp->n_layer;
	weft_fwd_extra x = {0};
	if (need_mass && !(x.mass = weft_calloc(L * H * (size_t)kv->cap, sizeof(float))))
		return -1;
	if (W && !(x.window_q = weft_calloc(L * (size_t)W * (size_t)hp->n_head * (size_t)hp->head_dim, sizeof(float)))) {
		free(x.mass);
		return -1;
	}
	int rc = 0;
	*peak_rows = 0;
	for (int64_t c0 = 0; rc == 0 && c0 < T; c0 += chunk) {
		const int64_t n = T - c0 < chunk ? T - c0 : chunk;
		x.n_window = W ? (int)(W < n ? W : n) : 0;
		rc = weft_model_forward(m, pool, kv, ids ? ids + c0 : NULL, ids ? NULL : embd + c0 * hp->n_embd, n, n,
					c0 + n == T ? logits : NULL, 0, need_mass || W ? &x : NULL);
		for (size_t i = 0; rc == 0 && i < L * H; i++)
			*peak_rows = kv->len[i] > *peak_rows ? kv->len[i] : *peak_rows;
		int over = 0;
		for (size_t i = 0; i < L * H; i++)
			over |= kv->len[i] > budget;
		if (rc != 0 || !over)
			continue;
		weft_kvm_stats st = {.mass = x.mass, .mass_stride = kv->cap, .mass_queries = kv->n_past,
				     .window_q = x.window_q, .n_window = x.n_window};
		weft_kvm_opts o = {.budget = budget, .image_ratio = -1, .pool = pool};
		rc = weft_kvm_apply(spec, &o, hp, kv, &st, hist, n_hist, NULL, 0);
		if (rc == 0 && x.mass) /* rows past the kept ones start from zero mass */
			for (size_t l = 0; l < L; l++)
				for (size_t h = 0; h < H; h++)
					memset(x.mass + (l * H + h) * (size_t)kv->cap + kv->len[l * H + h], 0,
					       sizeof(float) * (size_t)(kv->cap - kv->len[l * H + h]));
	}
	free(x.mass), free(x.window_q);
	return rc;
}

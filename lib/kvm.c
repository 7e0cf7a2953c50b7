/* kvm.c - the KV-cache method family (kvm.h): the table, specs, checks, and
 * the helpers every method shares (kvm_int.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_int.h"
#include "util.h"

/* ---- the table ---- */

static const kvm_def defs[] = {
#define WEFT_KV_METHOD(ID, fn, name, flags, needs, summary, params, needs_text)                                  \
	{{name, summary, params, needs_text}, KVM_ID_##ID, (flags), (needs), weft_kvm_run_##fn},
#include "kv_methods.def"
#undef WEFT_KV_METHOD
};
static const weft_family family = {"KV method", defs, sizeof defs / sizeof defs[0], sizeof defs[0]};

const weft_family *weft_kvm_family(void)
{
	return &family;
}

const kvm_def *weft_kvm_def_named(const char *name)
{
	const int i = weft_family_find(&family, name);
	return i < 0 ? NULL : &defs[i];
}

int64_t weft_kvm_n_kept(int64_t T, double ratio)
{
	if (ratio >= 1.0)
		return 0;
	const int64_t n = (int64_t)((double)T * (1.0 - ratio)); /* Python's int(): truncation, in double */
	return n < 1 ? 1 : n;
}

void weft_kvm_qstats(const weft_hparams *hp, const double *q_sum, const double *q_sq, int64_t n, float *q_mean,
		     float *q_cov)
{
	const size_t hd = (size_t)hp->head_dim, nv = (size_t)hp->n_layer * (size_t)hp->n_head * hd;
	for (size_t i = 0; i < nv; i++)
		q_mean[i] = n ? (float)(q_sum[i] / (double)n) : 0.0f;
	for (size_t i = 0; i < nv; i++) {
		const size_t head = i / hd * hd; /* this head's first value */
		for (size_t j = 0; j < hd; j++) {
			const double mi = n ? q_sum[i] / (double)n : 0, mj = n ? q_sum[head + j] / (double)n : 0;
			q_cov[i * hd + j] = n ? (float)(q_sq[i * hd + j] / (double)n - mi * mj) : 0.0f;
		}
	}
}

/* ---- parameters and notes ---- */

/* Whether key names a parameter of def (its params "k=v ..."), ratio for a
 * method the ratio drives (eviction; duo's share of streaming heads; think's
 * share of key channels), or budget for an eviction method. */
static int known_param(const kvm_def *def, const char *key)
{
	if ((def->flags & KVM_EVICT) && strcmp(key, "budget") == 0)
		return 1;
	if ((def->flags & (KVM_EVICT | KVM_HEADWISE | KVM_CHANNELS)) && strcmp(key, "ratio") == 0)
		return 1;
	const char *p = def->m.params;
	const size_t n = strlen(key);
	while ((p = strstr(p, key)) != NULL) {
		if ((p == def->m.params || p[-1] == ' ') && (p[n] == '=' || p[n] == ' ' || !p[n]))
			return 1;
		p += n;
	}
	return 0;
}

const char *kvm_par_str(const kvm_run *r, const char *key)
{
	for (int i = r->n_par - 1; i >= 0; i--)
		if (strcmp(r->pkey[i], key) == 0)
			return r->pval[i];
	return NULL;
}

int kvm_par(const kvm_run *r, const char *key, double dflt, double lo, double hi, double *out)
{
	const char *s = kvm_par_str(r, key);
	if (!s) {
		*out = dflt;
		return 0;
	}
	char *end;
	errno = 0;
	const double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		weft_error("%s: %s=%s: expected a number in %g..%g", r->def->m.name, key, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

void kvm_note(kvm_run *r, const char *fmt, ...)
{
	if (!r->notes || r->check_only)
		return;
	size_t k = strlen(r->notes);
	if (k + 2 >= r->notes_cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = snprintf(r->notes + k, r->notes_cap - k, "%s: ", r->def->m.name);
	if (w > 0 && (size_t)w < r->notes_cap - k)
		k += (size_t)w;
	w = vsnprintf(r->notes + k, r->notes_cap - k, fmt, ap);
	va_end(ap);
	k = strlen(r->notes);
	if (k + 1 < r->notes_cap) {
		r->notes[k] = '\n';
		r->notes[k + 1] = 0;
	}
}

/* ---- specs ---- */

/* The default of parameter key in def's params ("window=64" -> 64), or dflt. */
static double param_default(const kvm_def *def, const char *key, double dflt)
{
	const char *p = def->m.params;
	const size_t n = strlen(key);
	while ((p = strstr(p, key)) != NULL) {
		if ((p == def->m.params || p[-1] == ' ') && p[n] == '=')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return dflt;
}

/* The statistics method r needs that st lacks: 0, or -1 + an error
 * naming the prefill option. */
static int check_needs(const kvm_run *r, const kvm_def *def, const weft_kvm_stats *st)
{
	const char *name = r->def->m.name;
	if (r->check_only && !st) /* weft_kvm_check without statistics: the spec alone */
		return 0;
	if ((def->needs & KVM_NEED_MASS) && !(st && st->mass)) {
		weft_error("%s needs the attention mass each row received: run prefill with --mass", name);
		return -1;
	}
	if (def->needs & KVM_NEED_WINDOW) {
		double w;
		if (kvm_par(r, "window", param_default(def, "window", 1), 1, 1 << 16, &w) != 0)
			return -1;
		if (!st || !st->window_q || st->n_window < (int)w) {
			weft_error("%s needs the last %d queries (the stream has %d): run prefill with --window-q %d", name,
				   (int)w, st && st->window_q ? st->n_window : 0, (int)w);
			return -1;
		}
	}
	if ((def->needs & KVM_NEED_QSTATS) && !(st && st->q_mean && st->q_cov) && !kvm_par_str(r, "scores")) {
		weft_error("%s needs the queries' mean and covariance: run prefill with --q-stats", name);
		return -1;
	}
	return 0;
}

/* One method of a spec, "name[:k=v]*" in s (modified), into r. */
static int parse_item(char *s, kvm_run *r)
{
	char *colon = strchr(s, ':');
	if (colon)
		*colon = 0;
	const char *name = s;
	static const char *const bits_alias[] = {"kivi2", "kivi4", "kivi8"};
	r->n_par = 0;
	for (int i = 0; i < 3; i++)
		if (strcmp(s, bits_alias[i]) == 0) { /* kivi4 = kivi:bits=4 */
			r->pkey[r->n_par] = "bits";
			r->pval[r->n_par++] = s + 4;
			name = "kivi";
		}
	if (!(r->def = weft_kvm_def_named(name)))
		return -1;
	for (char *p = colon ? colon + 1 : NULL; p && *p;) {
		char *next = strchr(p, ':'), *eq = strchr(p, '=');
		if (next)
			*next = 0;
		if (!eq || eq == p) {
			weft_error("%s: parameter '%s' is not KEY=VALUE", r->def->m.name, p);
			return -1;
		}
		*eq = 0;
		if (r->n_par == KVM_MAX_PARAMS) {
			weft_error("%s: too many parameters", r->def->m.name);
			return -1;
		}
		r->pkey[r->n_par] = p;
		r->pval[r->n_par++] = eq + 1;
		p = next ? next + 1 : NULL;
	}
	/* adakv takes its scorer's parameters too */
	const char *sn = r->def->id == KVM_ID_ADAKV ? kvm_par_str(r, "scorer") : NULL;
	const kvm_def *scorer = r->def->id != KVM_ID_ADAKV ? NULL : weft_kvm_def_named(sn ? sn : "snapkv");
	if (r->def->id == KVM_ID_ADAKV && !scorer)
		return -1;
	for (int i = 0; i < r->n_par; i++)
		if (!known_param(r->def, r->pkey[i]) && !(scorer && known_param(scorer, r->pkey[i]))) {
			weft_error("%s has no parameter '%s' (%s%s)", r->def->m.name, r->pkey[i],
				   *r->def->m.params ? r->def->m.params : "none",
				   r->def->flags & KVM_EVICT ? " ratio budget" : r->def->flags & (KVM_HEADWISE | KVM_CHANNELS) ? " ratio" : "");
			return -1;
		}
	double v;
	if (kvm_par(r, "ratio", r->ratio, 0, 0.999999999, &v) != 0)
		return -1;
	r->ratio = v;
	if (kvm_par(r, "budget", (double)r->budget, 0, 1e12, &v) != 0)
		return -1;
	r->budget = (int64_t)v;
	return 0;
}

/* What method r (its statistics from def) needs: the WEFT_KVM_NEEDS_*
 * bits into *needs, the longest query window into *n_window. */
static int add_needs(const kvm_run *r, const kvm_def *def, unsigned *needs, int *n_window)
{
	if (def->needs & KVM_NEED_MASS)
		*needs |= WEFT_KVM_NEEDS_MASS;
	if ((def->needs & KVM_NEED_QSTATS) && !kvm_par_str(r, "scores"))
		*needs |= WEFT_KVM_NEEDS_QSTATS;
	if (def->needs & KVM_NEED_WINDOW) {
		double w;
		if (kvm_par(r, "window", param_default(def, "window", 1), 1, 1 << 16, &w) != 0)
			return -1;
		*needs |= WEFT_KVM_NEEDS_WINDOW_Q;
		*n_window = (int)w > *n_window ? (int)w : *n_window;
	}
	return 0;
}

/* Parse, check and (unless check_only) apply every method of spec; with
 * needs (check_only), gather what the methods need instead of checking. */
static int run_spec_needs(const char *spec, const weft_kvm_opts *o, const weft_hparams *hp, weft_kv *kv,
			  weft_kvm_stats *st, const int32_t *hist, int64_t n_hist, char *notes, size_t cap,
			  int check_only, unsigned *needs, int *n_window);

static int run_spec(const char *spec, const weft_kvm_opts *o, const weft_hparams *hp, weft_kv *kv,
		    weft_kvm_stats *st, const int32_t *hist, int64_t n_hist, char *notes, size_t cap, int check_only)
{
	return run_spec_needs(spec, o, hp, kv, st, hist, n_hist, notes, cap, check_only, NULL, NULL);
}

int weft_kvm_needs(const char *spec, const weft_kvm_opts *o, unsigned *needs, int *n_window)
{
	*needs = 0;
	*n_window = 0;
	return run_spec_needs(spec, o, NULL, NULL, NULL, NULL, 0, NULL, 0, 1, needs, n_window);
}

static int run_spec_needs(const char *spec, const weft_kvm_opts *o, const weft_hparams *hp, weft_kv *kv,
			  weft_kvm_stats *st, const int32_t *hist, int64_t n_hist, char *notes, size_t cap,
			  int check_only, unsigned *needs_out, int *n_window)
{
	if (!(o->ratio >= 0 && o->ratio < 1) || o->budget < 0 || (o->image_ratio >= 1)) {
		weft_error("ratio %g outside [0, 1) (it is the fraction of rows removed, as in kvpress)",
			   !(o->ratio >= 0 && o->ratio < 1) ? o->ratio : o->image_ratio);
		return -1;
	}
	if (!spec || !*spec) {
		weft_error("no KV method given");
		return -1;
	}
	char *copy = weft_strndup(spec, strlen(spec));
	if (!copy)
		return -1;
	int rc = 0, quantized = 0, merged = 0;
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); rc == 0 && item; item = strtok_r(NULL, ",", &save)) {
		kvm_run r = {.hp = hp, .kv = kv, .st = st, .hist = hist, .n_hist = n_hist, .o = o, .ratio = o->ratio,
			     .budget = o->budget, .image_ratio = o->image_ratio, .check_only = check_only,
			     .notes = notes, .notes_cap = cap};
		if (parse_item(item, &r) != 0) {
			rc = -1;
			break;
		}
		const unsigned f = r.def->flags;
		if (quantized && (f & (KVM_EVICT | KVM_HEADWISE | KVM_CHANNELS | KVM_MERGE | KVM_QUANT))) {
			weft_error("%s after quantization: quantize last (e.g. --method snapkv,kivi4)", r.def->m.name);
			rc = -1;
		} else if (merged) {
			weft_error("%s after minicache is not supported: put minicache last", r.def->m.name);
			rc = -1;
		} else if (r.image_ratio >= 0 && (f & KVM_EVICT) && r.budget > 0) {
			weft_error("%s: --image-ratio goes with --ratio, not --budget", r.def->m.name);
			rc = -1;
		} else {
			const kvm_def *needs = r.def;
			const char *sc = kvm_par_str(&r, "scorer");
			if (sc && !(needs = weft_kvm_def_named(sc)))
				rc = -1;
			else if (!sc && r.def->id == KVM_ID_ADAKV)
				needs = weft_kvm_def_named("snapkv");
			if (rc == 0 && needs_out)
				rc = add_needs(&r, needs, needs_out, n_window);
			else if (rc == 0)
				rc = check_needs(&r, needs, st);
			if (rc == 0)
				rc = r.def->run(&r);
		}
		quantized |= (f & KVM_QUANT) != 0;
		merged |= (f & KVM_MERGE) != 0;
	}
	free(copy);
	return rc;
}

int weft_kvm_check(const char *spec, const weft_kvm_opts *o, const weft_kvm_stats *st)
{
	return run_spec(spec, o, NULL, NULL, (weft_kvm_stats *)st, NULL, 0, NULL, 0, 1);
}

int weft_kvm_apply(const char *spec, const weft_kvm_opts *o, const weft_hparams *hp, weft_kv *kv,
		   weft_kvm_stats *st, const int32_t *hist, int64_t n_hist, char *notes, size_t notes_cap)
{
	if (notes && notes_cap)
		notes[0] = 0;
	if (kv->n_layer != hp->n_layer || kv->n_head_kv != hp->n_head_kv || kv->head_dim != hp->head_dim) {
		weft_error("KV cache geometry does not match the model");
		return -1;
	}
	return run_spec(spec, o, hp, kv, st, hist, n_hist, notes, notes_cap, 0);
}

/* ---- rows ---- */

static void row_f32(const weft_kv_layer *L, const void *row, int n, float *buf)
{
	if (L->type == WEFT_KV_F32)
		memcpy(buf, row, sizeof(float) * (size_t)n);
	else if (L->type == WEFT_KV_F16)
		weft_f16_to_f32(buf, row, n);
	else
		weft_dequantize_row(L->type, row, buf, n);
}

void kvm_key(const kvm_run *r, int l, int h, int64_t j, float *buf)
{
	row_f32(&r->kv->layer[l], weft_kv_krow(r->kv, l, h, j), r->kv->layer[l].k_dim, buf);
}

void kvm_value(const kvm_run *r, int l, int h, int64_t j, float *buf)
{
	row_f32(&r->kv->layer[l], weft_kv_vrow(r->kv, l, h, j), r->kv->layer[l].v_dim, buf);
}

int kvm_is_image(const kvm_run *r, int l, int h, int64_t j)
{
	const int32_t p = weft_kv_pos(r->kv, l, h)[j];
	return r->hist && p >= 0 && p < r->n_hist && r->hist[p] < 0;
}

int kvm_plain_layer(const kvm_run *r, int l, const char *what)
{
	const weft_kv_layer *L = &r->kv->layer[l];
	if (L->q) {
		weft_error("%s: layer %d is quantized: %s before quantizing", r->def->m.name, l, what);
		return -1;
	}
	return 0;
}

/* ---- eviction ---- */

typedef struct {
	float s;
	int32_t i;
} scored;

static int by_score(const void *a, const void *b)
{
	const scored *x = a, *y = b;
	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

static int by_index(const void *a, const void *b)
{
	const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

int kvm_top(const float *x, int64_t T, int64_t n, int32_t *idx)
{
	scored *s = weft_malloc((size_t)(T > 0 ? T : 1) * sizeof *s);
	if (!s)
		return -1;
	for (int64_t i = 0; i < T; i++)
		s[i] = (scored){isnan(x[i]) ? -INFINITY : x[i], (int32_t)i};
	qsort(s, (size_t)T, sizeof *s, by_score);
	for (int64_t i = 0; i < n && i < T; i++)
		idx[i] = s[i].i;
	free(s);
	qsort(idx, (size_t)(n < T ? n : T), sizeof *idx, by_index);
	return 0;
}

int64_t kvm_n_kept(const kvm_run *r, int64_t T, double ratio)
{
	if (r->budget > 0)
		return r->budget < T ? r->budget : T;
	return weft_kvm_n_kept(T, ratio);
}

int kvm_keep_rows(kvm_run *r, int l, int h, const int32_t *keep, int64_t n)
{
	weft_kv *kv = r->kv;
	if (weft_kv_compact(kv, l, h, keep, n) != 0)
		return -1;
	weft_kvm_stats *st = r->st;
	if (st && st->mass) {
		float *m = st->mass + ((size_t)l * kv->n_head_kv + h) * (size_t)st->mass_stride;
		for (int64_t i = 0; i < n; i++)
			m[i] = m[keep[i]];
	}
	return 0;
}

/* Keep the top rows of head h by sc, image and text rows by their own
 * counts when the run splits them. */
static int evict_head(kvm_run *r, int l, int h, const float *sc, int64_t n_keep, int32_t *idx, float *tmp,
		      int32_t *map)
{
	const int64_t T = r->kv->len[(size_t)l * r->kv->n_head_kv + h];
	if (r->image_ratio < 0 || !r->hist) {
		if (n_keep >= T)
			return 0;
		return kvm_top(sc, T, n_keep, idx) || kvm_keep_rows(r, l, h, idx, n_keep) ? -1 : 0;
	}
	int64_t n = 0;
	for (int cls = 0; cls < 2; cls++) { /* image rows, then text rows */
		int64_t m = 0;
		for (int64_t j = 0; j < T; j++)
			if (kvm_is_image(r, l, h, j) == !cls) {
				tmp[m] = sc[j];
				map[m++] = (int32_t)j;
			}
		if (m == 0)
			continue;
		const int64_t k = weft_kvm_n_kept(m, cls ? r->ratio : r->image_ratio);
		if (kvm_top(tmp, m, k, idx + n) != 0)
			return -1;
		for (int64_t i = 0; i < k; i++)
			idx[n + i] = map[idx[n + i]];
		n += k;
	}
	qsort(idx, (size_t)n, sizeof *idx, by_index);
	return n < T ? kvm_keep_rows(r, l, h, idx, n) : 0;
}

int kvm_evict(kvm_run *r, kvm_score_fn score, kvm_keep_fn keep)
{
	if (r->check_only)
		return 0;
	weft_kv *kv = r->kv;
	const int H = kv->n_head_kv;
	int64_t before = 0, after = 0, maxT = 1;
	for (int i = 0; i < kv->n_layer * H; i++)
		maxT = kv->len[i] > maxT ? kv->len[i] : maxT;
	float *sc = weft_malloc(sizeof(float) * (size_t)H * (size_t)maxT), *tmp = weft_malloc(sizeof(float) * (size_t)maxT);
	int32_t *idx = weft_malloc(sizeof(int32_t) * (size_t)maxT), *map = weft_malloc(sizeof(int32_t) * (size_t)maxT);
	int rc = !sc || !tmp || !idx || !map ? -1 : 0;
	for (int l = 0; rc == 0 && l < kv->n_layer; l++) {
		if ((rc = kvm_plain_layer(r, l, "evict")) != 0 || (rc = score(r, l, sc, maxT)) != 0)
			break;
		for (int h = 0; rc == 0 && h < H; h++) {
			const int64_t T = kv->len[(size_t)l * H + h];
			const int64_t k = keep ? keep(r, l, T) : -1;
			before += T;
			rc = evict_head(r, l, h, sc + (size_t)h * (size_t)maxT, k >= 0 ? k : kvm_n_kept(r, T, r->ratio), idx,
					tmp, map);
			after += kv->len[(size_t)l * H + h];
		}
	}
	if (rc == 0 && before == after && (r->budget > 0 || r->ratio > 0))
		kvm_note(r, r->budget > 0 ? "budget %lld rows per head is not smaller than the cache: passed through"
					  : "nothing removed (%lld)",
			 (long long)r->budget);
	free(sc), free(tmp), free(idx), free(map);
	return rc;
}

/* ---- statistics ---- */

const float *kvm_window(const kvm_run *r, int l, int w, int64_t *pos0)
{
	const weft_kvm_stats *st = r->st;
	if (!st || !st->window_q || st->n_window < w || w < 1) {
		weft_error("%s needs the last %d queries: run prefill with --window-q %d", r->def->m.name, w, w);
		return NULL;
	}
	const size_t per = (size_t)r->hp->n_head * (size_t)r->hp->head_dim;
	*pos0 = r->kv->n_past - w;
	return st->window_q + ((size_t)l * (size_t)st->n_window + (size_t)(st->n_window - w)) * per;
}

void kvm_attn_row(const kvm_run *r, int l, int g, const float *q, int64_t qpos, double *out)
{
	const weft_kv *kv = r->kv;
	const weft_kv_layer *L = &kv->layer[l];
	const int64_t T = kv->len[(size_t)l * kv->n_head_kv + g];
	const int32_t *pos = weft_kv_pos(kv, l, g), *chan = L->k_chan ? L->k_chan + (size_t)g * L->k_dim : NULL;
	const double scale = 1.0 / sqrt((double)kv->head_dim);
	float k[4096];
	double mx = -INFINITY, sum = 0;
	for (int64_t j = 0; j < T; j++) {
		if (pos[j] > qpos) {
			out[j] = -INFINITY;
			continue;
		}
		kvm_key(r, l, g, j, k);
		double s = 0;
		for (int c = 0; c < L->k_dim && c < 4096; c++)
			s += (double)q[chan ? chan[c] : c] * k[c];
		out[j] = s * scale;
		mx = out[j] > mx ? out[j] : mx;
	}
	for (int64_t j = 0; j < T; j++)
		sum += out[j] == -INFINITY ? 0 : exp(out[j] - mx);
	for (int64_t j = 0; j < T; j++)
		out[j] = out[j] == -INFINITY || !(sum > 0) ? 0 : exp(out[j] - mx) / sum;
}

float *kvm_keys(const kvm_run *r, int l, int g)
{
	const int64_t T = r->kv->len[(size_t)l * r->kv->n_head_kv + g];
	const int kd = r->kv->layer[l].k_dim;
	float *K = weft_malloc(sizeof(float) * (size_t)(T > 0 ? T : 1) * (size_t)kd);
	for (int64_t j = 0; K && j < T; j++)
		kvm_key(r, l, g, j, K + (size_t)j * kd);
	return K;
}

int kvm_attn_rows(const kvm_run *r, int l, int g, const float *q, int64_t ldq, int W, int64_t qpos0, float *P)
{
	const weft_kv *kv = r->kv;
	const weft_kv_layer *L = &kv->layer[l];
	const int64_t T = kv->len[(size_t)l * kv->n_head_kv + g];
	const int kd = L->k_dim;
	const int32_t *pos = weft_kv_pos(kv, l, g), *chan = L->k_chan ? L->k_chan + (size_t)g * kd : NULL;
	float *K = kvm_keys(r, l, g), *Kt = weft_malloc(sizeof(float) * (size_t)(T > 0 ? T : 1) * (size_t)kd),
	      *Q = weft_malloc(sizeof(float) * (size_t)W * (size_t)kd);
	if (!K || !Kt || !Q) {
		free(K), free(Kt), free(Q);
		return -1;
	}
	for (int64_t j = 0; j < T; j++) /* K^T, the GEMM's [kd][T] */
		for (int c = 0; c < kd; c++)
			Kt[(size_t)c * T + j] = K[(size_t)j * kd + c];
	for (int i = 0; i < W; i++) /* the queries at the key's channels */
		for (int c = 0; c < kd; c++)
			Q[(size_t)i * kd + c] = q[(size_t)i * ldq + (chan ? chan[c] : c)];
	weft_sgemm(W, T, kd, Q, kd, Kt, T, P, T);
	const float scale = 1.0f / sqrtf((float)kv->head_dim);
	for (int i = 0; i < W; i++) {
		float *row = P + (size_t)i * T, mx = -INFINITY;
		double sum = 0;
		for (int64_t j = 0; j < T; j++) {
			row[j] = pos[j] <= qpos0 + i ? row[j] * scale : -INFINITY;
			mx = row[j] > mx ? row[j] : mx;
		}
		for (int64_t j = 0; j < T; j++)
			sum += row[j] == -INFINITY ? 0.0 : (double)(row[j] = expf(row[j] - mx));
		for (int64_t j = 0; j < T; j++)
			row[j] = row[j] == -INFINITY || !(sum > 0) ? 0.0f : (float)(row[j] / sum);
	}
	free(K), free(Kt), free(Q);
	return 0;
}

double kvm_rope_freq(const weft_hparams *hp, int i)
{
	return (double)hp->rope_freq_scale * pow((double)hp->rope_base, -2.0 * i / (double)hp->rope_dim);
}

void kvm_rope_pair(const weft_hparams *hp, int i, int *c0, int *c1)
{
	if (hp->rope_neox) {
		*c0 = i;
		*c1 = i + hp->rope_dim / 2;
	} else {
		*c0 = 2 * i;
		*c1 = 2 * i + 1;
	}
}

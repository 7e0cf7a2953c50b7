/* prune.c - the pruning module (prune.h): the method table, parameters,
 * budgets, units of tiles, and applying an embd-stage method's selection
 * to the tiles (kept rows, merged rows, the record). */
#include "prune.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune_int.h"
#include "util.h"

/* ---- the table (prune_methods.def) ---- */

enum { PER_TILE = 1 };
#define STAGE_EMBD WEFT_PRUNE_AT_EMBD
#define STAGE_ENCODER WEFT_PRUNE_AT_ENCODER
#define STAGE_LLM WEFT_PRUNE_AT_LLM
#define SELECT_EMBD(name) prune_##name##_select
#define SELECT_ENCODER(name) NULL
#define SELECT_LLM(name) NULL
#define DROP_EMBD(name) NULL
#define DROP_ENCODER(name) NULL
#define DROP_LLM(name) prune_##name##_drop

typedef struct prune_method_row {
	weft_method m;
	weft_prune_stage stage;
	int flags;
	prune_select_fn select;
	prune_drop_fn drop;
} prune_method_row;

static const prune_method_row methods[] = {
#define WEFT_PRUNE_METHOD(ID, name, stage, flags, summary, params, needs) \
	{{#name, summary, params, needs}, STAGE_##stage, flags, SELECT_##stage(name), DROP_##stage(name)},
#include "prune_methods.def"
#undef WEFT_PRUNE_METHOD
};

static const weft_family family = {"pruning method", methods, sizeof methods / sizeof methods[0], sizeof methods[0]};

const weft_family *weft_prune_family(void) { return &family; }

static const prune_method_row *find(const char *name)
{
	int i = weft_family_find(&family, name);
	return i < 0 ? NULL : &methods[i];
}

int weft_prune_stage_of(const char *name)
{
	const prune_method_row *r = find(name);
	return r ? (int)r->stage : -1;
}

unsigned weft_prune_encoder_stats(const char *name)
{
	const prune_method_row *r = find(name);
	if (!r)
		return 0;
	return (strstr(r->m.needs, "--stats keys") ? WEFT_PRUNE_NEEDS_KEYS : 0u) |
	       (strstr(r->m.needs, "--stats attn") ? WEFT_PRUNE_NEEDS_ATTN : 0u);
}

/* ---- parameters ---- */

double prune_param(const prune_params *p, const char *name)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->name[i], name) == 0)
			return p->v[i][0];
	return 0.0;
}

int prune_param_list(const prune_params *p, const char *name, const double **v)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->name[i], name) == 0) {
			*v = p->v[i];
			return p->len[i];
		}
	*v = NULL;
	return 0;
}

/* Parse "a=1 b=2/3" (sep ' ') or "a=1,b=2/3" (sep ',') into p: with
 * defaults, every name is new; else it must be one of p's.  0 / -1. */
static int parse_params(const char *s, char sep, int defaults, const char *method, prune_params *p)
{
	while (s && *s) {
		while (*s == sep || *s == ' ')
			s++;
		if (!*s)
			break;
		const char *eq = strchr(s, '='), *end = strchr(s, sep);
		if (!end)
			end = s + strlen(s);
		if (!eq || eq > end || eq == s || eq - s >= 24) {
			weft_error("parameter '%.*s' for %s is not NAME=VALUE", (int)(end - s), s, method);
			return -1;
		}
		int k = -1;
		for (int i = 0; i < p->n; i++)
			if ((size_t)(eq - s) == strlen(p->name[i]) && strncmp(p->name[i], s, (size_t)(eq - s)) == 0)
				k = i;
		if (k < 0 && !defaults) {
			char known[256] = "";
			for (int i = 0; i < p->n; i++)
				snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", p->name[i]);
			weft_error("unknown parameter '%.*s' for %s (known: %s)", (int)(eq - s), s, method,
				   p->n ? known : "none");
			return -1;
		}
		if (k < 0) {
			if (p->n == PRUNE_MAX_PARAMS)
				return -1;
			k = p->n++;
			memcpy(p->name[k], s, (size_t)(eq - s));
			p->name[k][eq - s] = 0;
		}
		p->len[k] = 0;
		for (const char *v = eq + 1; v < end;) {
			char *e;
			double x = strtod(v, &e);
			if (e == v || (e < end && *e != '/') || !isfinite(x) || p->len[k] == PRUNE_MAX_LIST) {
				weft_error("parameter %s of %s: '%.*s' is not a number (or a list of at most %d joined by '/')",
					   p->name[k], method, (int)(end - eq - 1), eq + 1, PRUNE_MAX_LIST);
				return -1;
			}
			p->v[k][p->len[k]++] = x;
			v = e < end ? e + 1 : e;
		}
		if (!p->len[k]) {
			weft_error("parameter %s of %s has no value", p->name[k], method);
			return -1;
		}
		s = end;
	}
	return 0;
}

static int get_params(const prune_method_row *r, const weft_prune_opts *o, prune_params *p)
{
	memset(p, 0, sizeof *p);
	if (parse_params(r->m.params, ' ', 1, r->m.name, p) != 0)
		return -1;
	return parse_params(o->params, ',', 0, r->m.name, p);
}

/* Range checks shared by the methods' parameters. */
static int check_params(const prune_method_row *r, const prune_params *p)
{
	for (int i = 0; i < p->n; i++)
		for (int j = 0; j < p->len[i]; j++) {
			const double v = p->v[i][j];
			const char *n = p->name[i];
			const int integer = strcmp(n, "contextual") && strcmp(n, "important") && strcmp(n, "alpha") &&
					    strcmp(n, "theta") && strcmp(n, "sign");
			int bad = integer && v != floor(v);
			if (!strcmp(n, "contextual") || !strcmp(n, "important") || !strcmp(n, "alpha"))
				bad |= !(v >= 0 && v <= 1);
			else if (!strcmp(n, "theta"))
				bad |= !(v >= 0 && v < 1);
			else if (!strcmp(n, "sign"))
				bad |= v != 1 && v != -1;
			else if (!strcmp(n, "layer") && r->stage == WEFT_PRUNE_AT_EMBD)
				bad |= v < -64 || v > 64;
			else if (!strcmp(n, "seed"))
				bad |= v < 0 || v > 4294967295.0;
			else
				bad |= v < (strcmp(n, "extra") && strcmp(n, "after") && strcmp(n, "recycle") && strcmp(n, "text_pivots") ? 1 : 0) ||
				       v > 1e6;
			if (bad) {
				weft_error("parameter %s of %s: %g is out of range", n, r->m.name, v);
				return -1;
			}
		}
	return 0;
}

int weft_prune_check(const weft_prune_opts *o)
{
	const prune_method_row *r = find(o->method);
	if (!r)
		return -1;
	if (o->keep < 0) {
		weft_error("--keep %" PRId64 " is negative", o->keep);
		return -1;
	}
	if (!o->keep && o->ratio == 0.0 && r->stage != WEFT_PRUNE_AT_LLM) {
		weft_error("no budget for %s: give --keep N or --ratio R", r->m.name);
		return -1;
	}
	if (!o->keep && !(o->ratio >= 0.0 && o->ratio <= 1.0)) {
		weft_error("--ratio %g is not in (0, 1]", o->ratio);
		return -1;
	}
	if (o->scope < WEFT_PRUNE_IMAGE || o->scope > WEFT_PRUNE_GLOBAL) {
		weft_error("bad pruning scope %d", (int)o->scope);
		return -1;
	}
	if (o->repack && r->stage == WEFT_PRUNE_AT_LLM) {
		weft_error("%s drops tokens inside the LLM, whose earlier layers cached them at their positions: "
			   "--positions repack is not possible",
			   r->m.name);
		return -1;
	}
	prune_params p;
	return get_params(r, o, &p) == 0 && check_params(r, &p) == 0 ? 0 : -1;
}

const char *weft_prune_describe(const weft_prune_opts *o)
{
	static char buf[512];
	static const char *scopes[] = {"image", "tile", "global"};
	const prune_method_row *r = find(o->method);
	prune_params p;
	if (!r || get_params(r, o, &p) != 0)
		return "";
	int k = o->keep ? snprintf(buf, sizeof buf, "%s keep=%" PRId64, r->m.name, o->keep)
			: o->ratio > 0 ? snprintf(buf, sizeof buf, "%s ratio=%g", r->m.name, o->ratio)
				       : snprintf(buf, sizeof buf, "%s", r->m.name);
	k += snprintf(buf + k, sizeof buf - (size_t)k, " scope=%s", scopes[o->scope]);
	for (int i = 0; i < p.n && (size_t)k < sizeof buf; i++) {
		k += snprintf(buf + k, sizeof buf - (size_t)k, " %s=", p.name[i]);
		for (int j = 0; j < p.len[i] && (size_t)k < sizeof buf; j++)
			k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%g", j ? "/" : "", p.v[i][j]);
	}
	return buf;
}

int prune_lookup_llm(const weft_prune_opts *o, prune_params *p, prune_drop_fn *drop)
{
	const prune_method_row *r = find(o->method);
	if (!r || weft_prune_check(o) != 0 || get_params(r, o, p) != 0)
		return -1;
	if (r->stage != WEFT_PRUNE_AT_LLM) {
		weft_error("%s does not act inside the LLM", r->m.name);
		return -1;
	}
	*drop = r->drop;
	return 0;
}

/* ---- selections ---- */

int prune_sel_keep(prune_sel *s, int64_t i)
{
	if (s->n == s->cap) {
		int64_t c = s->cap ? 2 * s->cap : 64;
		int32_t *k = weft_realloc(s->keep, (size_t)c * sizeof *k);
		if (!k)
			return -1;
		s->keep = k;
		s->cap = c;
	}
	s->keep[s->n++] = (int32_t)i;
	return 0;
}

int prune_sel_merge(prune_sel *s, int64_t anchor, int64_t src, float w)
{
	if (s->n_merge == s->cap_merge) {
		int64_t c = s->cap_merge ? 2 * s->cap_merge : 256;
		int32_t *a = weft_realloc(s->m_anchor, (size_t)c * sizeof *a);
		if (a)
			s->m_anchor = a;
		int32_t *b = a ? weft_realloc(s->m_src, (size_t)c * sizeof *b) : NULL;
		if (b)
			s->m_src = b;
		float *w2 = b ? weft_realloc(s->m_w, (size_t)c * sizeof *w2) : NULL;
		if (!w2)
			return -1;
		s->m_w = w2;
		s->cap_merge = c;
	}
	s->m_anchor[s->n_merge] = (int32_t)anchor;
	s->m_src[s->n_merge] = (int32_t)src;
	s->m_w[s->n_merge++] = w;
	return 0;
}

static void sel_free(prune_sel *s)
{
	free(s->keep);
	free(s->m_anchor);
	free(s->m_src);
	free(s->m_w);
	memset(s, 0, sizeof *s);
}

static int cmp_i32(const void *a, const void *b)
{
	const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

void weft_prune_out_free(weft_prune_out *o)
{
	free(o->embd);
	free(o->kept);
	free(o->merge_row);
	free(o->merge_src);
	free(o->merge_w);
	free(o->pruned);
	memset(o, 0, sizeof *o);
}

/* ---- applying a selection to the unit's tiles ---- */

/* Check s (kept tokens unique and in range, at most budget; merge anchors
 * kept) and write each tile's kept rows into out. */
static int apply_sel(const prune_unit *u, prune_sel *s, int64_t budget, const char *desc, int repack,
		     weft_prune_out *out)
{
	qsort(s->keep, (size_t)s->n, sizeof *s->keep, cmp_i32);
	if (s->n > budget) {
		weft_error("internal: %" PRId64 " tokens kept for a budget of %" PRId64, s->n, budget);
		return -1;
	}
	for (int64_t i = 0; i < s->n; i++)
		if (s->keep[i] < 0 || s->keep[i] >= u->n || (i && s->keep[i] == s->keep[i - 1])) {
			weft_error("internal: kept token %d out of range or twice", s->keep[i]);
			return -1;
		}
	const int64_t d = u->d;
	for (int t = 0; t < u->n_tiles; t++) {
		weft_prune_out *o = &out[t];
		const int64_t lo = u->first[t], hi = lo + u->tiles[t].n_tokens;
		int64_t a = 0, b = 0;
		while (a < s->n && s->keep[a] < lo)
			a++;
		for (b = a; b < s->n && s->keep[b] < hi; b++)
			;
		const int64_t nk = b - a;
		int64_t nm = 0;
		for (int64_t j = 0; j < s->n_merge; j++)
			nm += s->m_anchor[j] >= lo && s->m_anchor[j] < hi;
		o->embd = weft_calloc((size_t)(nk ? nk : 1) * (size_t)d, sizeof(float));
		o->kept = weft_malloc((size_t)(nk ? nk : 1) * sizeof(int32_t));
		o->merge_row = weft_malloc((size_t)(nm ? nm : 1) * sizeof(int32_t));
		o->merge_src = weft_malloc((size_t)(nm ? nm : 1) * sizeof(int32_t));
		o->merge_w = weft_malloc((size_t)(nm ? nm : 1) * sizeof(float));
		o->pruned = weft_strndup(desc, strlen(desc));
		if (!o->embd || !o->kept || !o->merge_row || !o->merge_src || !o->merge_w || !o->pruned)
			return -1;
		uint8_t *merged = weft_calloc((size_t)(nk ? nk : 1), 1);
		if (!merged)
			return -1;
		int64_t m = 0;
		for (int64_t j = 0; j < s->n_merge; j++) {
			const int32_t an = s->m_anchor[j], src = s->m_src[j];
			if (an < lo || an >= hi)
				continue;
			const int32_t *hit = bsearch(&an, s->keep + a, (size_t)nk, sizeof an, cmp_i32);
			if (!hit || src < lo || src >= hi) {
				weft_error("internal: merge into token %d (from %d) not kept or across tiles", an, src);
				free(merged);
				return -1;
			}
			const int64_t row = hit - (s->keep + a);
			merged[row] = 1;
			o->merge_row[m] = (int32_t)row;
			o->merge_src[m] = src - (int32_t)lo;
			o->merge_w[m++] = s->m_w[j];
			float *y = o->embd + row * d;
			const float *x = u->embd + (int64_t)src * d;
			for (int64_t e = 0; e < d; e++)
				y[e] += s->m_w[j] * x[e];
		}
		for (int64_t r = 0; r < nk; r++) {
			o->kept[r] = s->keep[a + r] - (int32_t)lo;
			if (!merged[r])
				memcpy(o->embd + r * d, u->embd + (int64_t)s->keep[a + r] * d, sizeof(float) * (size_t)d);
		}
		free(merged);
		o->tile = u->tiles[t];
		o->tile.n_tokens = nk;
		o->tile.embd = o->embd;
		o->tile.n_orig = u->tiles[t].n_tokens;
		o->tile.kept = o->kept;
		o->tile.n_merge = m;
		o->tile.merge_row = o->merge_row;
		o->tile.merge_src = o->merge_src;
		o->tile.merge_w = o->merge_w;
		o->tile.pruned = o->pruned;
		o->tile.repack = repack;
		/* the statistics served the selection; the record replaces them */
		o->tile.keys = NULL;
		o->tile.attn_recv = NULL;
	}
	return 0;
}

/* The budget of a unit of n tokens. */
static int64_t unit_budget(const weft_prune_opts *o, int64_t n)
{
	if (o->keep)
		return o->keep;
	int64_t b = (int64_t)floor(o->ratio * (double)n + 0.5);
	return b < 1 ? 1 : b;
}

/* Run method r over the tiles [t0, t1) as one unit (or, PER_TILE, each
 * tile with its share of the budget), writing out[t0 .. t1). */
static int prune_unit_run(const prune_method_row *r, const prune_params *p, const weft_prune_opts *o,
			  const weft_embd_tile *tiles, int t0, int t1, int index, weft_prune_out *out)
{
	int64_t n = 0;
	const int64_t d = tiles[t0].n_embd;
	for (int t = t0; t < t1; t++)
		n += tiles[t].n_tokens;
	const int64_t budget = unit_budget(o, n);
	if (budget >= n) {
		for (int t = t0; t < t1; t++)
			out[t] = (weft_prune_out){.tile = tiles[t], .passed = 1};
		return 0;
	}
	/* one tile's rows are used where they stand; several are concatenated */
	float *embd = t1 - t0 > 1 ? weft_malloc((size_t)n * (size_t)d * sizeof(float)) : NULL;
	int32_t *tile = weft_malloc((size_t)n * sizeof(int32_t)), *idx = weft_malloc((size_t)n * sizeof(int32_t));
	int64_t *first = weft_malloc((size_t)(t1 - t0) * sizeof(int64_t));
	int rc = -1;
	if ((t1 - t0 > 1 && !embd) || !tile || !idx || !first)
		goto out;
	int64_t k = 0;
	for (int t = t0; t < t1; t++) {
		first[t - t0] = k;
		if (embd)
			memcpy(embd + k * d, tiles[t].embd, sizeof(float) * (size_t)(tiles[t].n_tokens * d));
		for (int64_t i = 0; i < tiles[t].n_tokens; i++, k++)
			tile[k] = t - t0, idx[k] = (int32_t)i;
	}
	prune_unit u = {.n = n, .d = d, .embd = embd ? embd : tiles[t0].embd, .tile = tile, .idx = idx, .tiles = tiles + t0,
			.first = first, .n_tiles = t1 - t0, .tile0 = t0, .text = o->text, .n_text = o->n_text,
			.index = index, .pool = o->pool};
	prune_sel s = {0};
	const char *desc = weft_prune_describe(o);
	if (!(r->flags & PER_TILE) || t1 - t0 == 1) {
		rc = r->select(&u, budget, p, &s);
	} else {
		/* the budget split over the tiles by their tokens (largest remainder) */
		const int nt = t1 - t0;
		int64_t given = 0;
		int64_t *share = weft_calloc((size_t)nt, sizeof *share);
		uint8_t *bumped = weft_calloc((size_t)nt, 1);
		int32_t *zeros = weft_calloc((size_t)n, sizeof *zeros);
		if (!share || !bumped || !zeros) {
			free(share), free(bumped), free(zeros);
			goto out;
		}
		for (int t = 0; t < nt; t++)
			given += share[t] = budget * tiles[t0 + t].n_tokens / n;
		for (; given < budget; given++) {
			int best = -1;
			int64_t bf = -1;
			for (int t = 0; t < nt; t++) {
				const int64_t f = budget * tiles[t0 + t].n_tokens % n;
				if (!bumped[t] && f > bf)
					bf = f, best = t;
			}
			bumped[best] = 1;
			share[best]++;
		}
		free(bumped);
		rc = 0;
		for (int t = 0; t < t1 - t0 && rc == 0; t++) {
			prune_unit ut = u;
			ut.n = tiles[t0 + t].n_tokens;
			ut.embd = u.embd + first[t] * d;
			ut.tile = zeros;
			ut.idx = idx + first[t];
			ut.tiles = tiles + t0 + t;
			ut.first = first + t;
			ut.n_tiles = 1;
			ut.tile0 = t0 + t;
			prune_sel st = {0};
			const int64_t f0 = first[t];
			if (share[t] >= ut.n) {
				for (int64_t i = 0; i < ut.n && rc == 0; i++)
					rc = prune_sel_keep(&s, f0 + i);
			} else if (share[t] > 0) {
				/* tile-local indices back to the unit's */
				int64_t zero = 0;
				ut.first = &zero;
				rc = r->select(&ut, share[t], p, &st);
				for (int64_t i = 0; i < st.n && rc == 0; i++)
					rc = prune_sel_keep(&s, f0 + st.keep[i]);
				for (int64_t i = 0; i < st.n_merge && rc == 0; i++)
					rc = prune_sel_merge(&s, f0 + st.m_anchor[i], f0 + st.m_src[i], st.m_w[i]);
			}
			sel_free(&st);
		}
		free(share);
		free(zeros);
	}
	if (rc == 0)
		rc = apply_sel(&u, &s, budget, desc, o->repack, out + t0);
	sel_free(&s);
out:
	free(embd);
	free(tile);
	free(idx);
	free(first);
	return rc;
}

/* Tiles fit for method r: one vision model, not pruned yet, one width. */
static int check_tiles(const prune_method_row *r, const weft_embd_tile *tiles, int n)
{
	for (int i = 0; i < n; i++) {
		const weft_embd_tile *t = &tiles[i];
		if (t->n_orig) {
			weft_error("tile %d (image %d): already pruned (%s); prune-tokens runs once on a stream", i, t->image,
				   t->pruned ? t->pruned : "?");
			return -1;
		}
		if (t->n_embd != tiles[0].n_embd) {
			weft_error("tile %d (image %d): embeddings of width %" PRId64 " beside %" PRId64 " (two models?)", i,
				   t->image, t->n_embd, tiles[0].n_embd);
			return -1;
		}
		if ((t->mmproj || tiles[0].mmproj) &&
		    (!t->mmproj || !tiles[0].mmproj || strcmp(t->mmproj, tiles[0].mmproj) != 0)) {
			weft_error("tile %d (image %d): from another vision model (weft.mmproj %s, first tile %s)", i,
				   t->image, t->mmproj ? t->mmproj : "absent", tiles[0].mmproj ? tiles[0].mmproj : "absent");
			return -1;
		}
	}
	(void)r;
	return 0;
}

int weft_prune_tiles(const weft_prune_opts *o, const weft_embd_tile *tiles, int n, weft_prune_out *out)
{
	memset(out, 0, sizeof *out * (size_t)(n > 0 ? n : 0));
	if (weft_prune_check(o) != 0)
		return -1;
	const prune_method_row *r = find(o->method);
	if (r->stage != WEFT_PRUNE_AT_EMBD) {
		weft_error("%s acts %s, not on embd tiles", r->m.name,
			   r->stage == WEFT_PRUNE_AT_LLM ? "inside the LLM (a directive for prefill)" : "inside the vision encoder");
		return -1;
	}
	if (n <= 0)
		return 0;
	if (check_tiles(r, tiles, n) != 0)
		return -1;
	prune_params p;
	if (get_params(r, o, &p) != 0)
		return -1;
	int index = 0;
	for (int t0 = 0; t0 < n; index++) {
		int t1 = t0 + 1;
		if (o->scope == WEFT_PRUNE_GLOBAL)
			t1 = n;
		else if (o->scope == WEFT_PRUNE_IMAGE)
			while (t1 < n && tiles[t1].image == tiles[t0].image && tiles[t1].tile > tiles[t1 - 1].tile)
				t1++;
		if (prune_unit_run(r, &p, o, tiles, t0, t1, index, out) != 0) {
			weft_error_prefix("%s", r->m.name);
			for (int i = 0; i < n; i++)
				if (!out[i].passed)
					weft_prune_out_free(&out[i]);
			return -1;
		}
		t0 = t1;
	}
	return 0;
}

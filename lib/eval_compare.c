/* eval_compare.c - two runs on the same items compared (paired bootstrap),
 * and shards merged into one run file (eval_report.h). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "eval_report.h"
#include "util.h"

/* The record of each dataset index in log (NULL where none), or NULL +
 * error for an index recorded twice. */
static const weft_eval_rec **by_index(const weft_eval_log *log)
{
	const weft_eval_rec **v = weft_calloc((size_t)log->dataset_items + 1, sizeof *v);
	for (int64_t i = 0; v && i < log->n; i++) {
		const weft_eval_rec *r = &log->recs[i];
		if (v[r->index]) {
			weft_error("%s: item %" PRId64 " ('%s') recorded twice", log->path, r->index, r->id);
			free(v);
			return NULL;
		}
		v[r->index] = r;
	}
	return v;
}

static json_t *pair(double lo, double hi) { return isnan(lo) ? json_null() : json_pack("[f,f]", lo, hi); }
static json_t *num_or_null(double x) { return isnan(x) || isinf(x) ? json_null() : json_real(x); }

char *weft_eval_compare(const weft_eval_log *a, const weft_eval_log *b, const weft_eval_boot *boot)
{
	if (strcmp(a->dataset_sha256, b->dataset_sha256) != 0) {
		weft_error("%s and %s ran different datasets (sha256 %.12s... and %.12s...)", a->path, b->path,
			   a->dataset_sha256, b->dataset_sha256);
		return NULL;
	}
	const weft_eval_rec **ia = by_index(a), **ib = ia ? by_index(b) : NULL;
	const int64_t N = a->dataset_items;
	double *sa = weft_malloc((size_t)N * sizeof *sa + 8), *sb = weft_malloc((size_t)N * sizeof *sb + 8);
	double *ta = weft_malloc((size_t)N * sizeof *ta + 8), *tb = weft_malloc((size_t)N * sizeof *tb + 8);
	char *out = NULL;
	if (!ia || !ib || !sa || !sb || !ta || !tb)
		goto out;
	int64_t n = 0, nt = 0;
	for (int64_t i = 0; i < N; i++) {
		if (!ia[i] != !ib[i]) {
			const weft_eval_rec *r = ia[i] ? ia[i] : ib[i];
			weft_error("%s lacks item %" PRId64 " ('%s') that %s has: compare runs over the same items "
				   "(finish a run with --resume, merge shards first)",
				   ia[i] ? b->path : a->path, i, r->id, ia[i] ? a->path : b->path);
			goto out;
		}
		if (!ia[i])
			continue;
		if (strcmp(ia[i]->id, ib[i]->id) != 0) {
			weft_error("item %" PRId64 " is '%s' in %s but '%s' in %s", i, ia[i]->id, a->path, ib[i]->id, b->path);
			goto out;
		}
		sa[n] = ia[i]->score, sb[n] = ib[i]->score, n++;
		if (ia[i]->timed && ib[i]->timed && !ia[i]->failed && !ib[i]->failed)
			ta[nt] = ia[i]->ttft_ms, tb[nt] = ib[i]->ttft_ms, nt++;
	}
	if (n == 0) {
		weft_error("no items to compare");
		goto out;
	}
	double acc_a = 0, acc_b = 0, t_a = 0, t_b = 0, dlo, dhi, rlo, rhi;
	for (int64_t i = 0; i < n; i++)
		acc_a += sa[i], acc_b += sb[i];
	for (int64_t i = 0; i < nt; i++)
		t_a += ta[i], t_b += tb[i];
	ev_bootstrap(sa, sb, n, EV_STAT_DIFF, boot, &dlo, &dhi);
	ev_bootstrap(ta, tb, nt, EV_STAT_RATIO, boot, &rlo, &rhi);
	json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:b, s:I, s:f, s:f, s:f, s:o}", "weft_eval_compare", 1, "a", a->path,
			      "b", b->path, "dataset_sha256", a->dataset_sha256, "same_config",
			      strcmp(a->config_id, b->config_id) == 0, "items", (json_int_t)n, "accuracy_a", acc_a / n,
			      "accuracy_b", acc_b / n, "difference", (acc_b - acc_a) / n, "difference_ci95", pair(dlo, dhi));
	for (int k = 0; k < 2; k++) { /* each run's stages (--prune, --kv), from its header */
		json_t *h = json_loads(k ? b->header : a->header, 0, NULL);
		json_t *st = json_object_get(json_object_get(json_object_get(h, "config"), "options"), "stages");
		json_object_set(j, k ? "stages_b" : "stages_a", st ? st : json_null());
		json_decref(h);
	}
	json_object_set_new(j, "items_timed", json_integer(nt));
	json_object_set_new(j, "ttft_ms_a", num_or_null(nt ? t_a / nt : NAN));
	json_object_set_new(j, "ttft_ms_b", num_or_null(nt ? t_b / nt : NAN));
	json_object_set_new(j, "ttft_ratio", num_or_null(nt ? t_b / t_a : NAN));
	json_object_set_new(j, "ttft_ratio_ci95", pair(rlo, rhi));
	json_object_set_new(j, "bootstrap", json_pack("{s:i, s:I}", "resamples", boot->resamples, "seed", (json_int_t)boot->seed));
	out = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	json_decref(j);
	if (!out)
		weft_error("out of memory");
out:
	free(ia), free(ib), free(sa), free(sb), free(ta), free(tb);
	return out;
}

/* ---- merge ---- */

int weft_eval_merge(weft_eval_log *const *logs, int n, FILE *out)
{
	const weft_eval_log *L0 = logs[0];
	const int k = L0->shard_n;
	int *seen = weft_calloc((size_t)k, sizeof *seen);
	const weft_eval_rec **all = weft_calloc((size_t)L0->dataset_items + 1, sizeof *all);
	int rc = -1;
	if (!seen || !all)
		goto out;
	for (int i = 0; i < n; i++) {
		const weft_eval_log *L = logs[i];
		if (strcmp(L->config_id, L0->config_id) != 0) {
			weft_error("%s: another configuration than %s (config_id %.12s... vs %.12s...)", L->path, L0->path,
				   L->config_id, L0->config_id);
			goto out;
		}
		if (L->shard_n != k || seen[L->shard_i]++) {
			weft_error("%s: shard %d/%d %s", L->path, L->shard_i + 1, L->shard_n,
				   L->shard_n != k ? "belongs to another split" : "given twice");
			goto out;
		}
		const int64_t want = weft_eval_shard_items(L->dataset_items, L->shard_i, L->shard_n);
		if (L->n != want) {
			weft_error("%s: shard %d/%d has %" PRId64 " of its %" PRId64 " items (finish it with --resume)", L->path,
				   L->shard_i + 1, k, L->n, want);
			goto out;
		}
		for (int64_t j = 0; j < L->n; j++) {
			const weft_eval_rec *r = &L->recs[j];
			if (!weft_eval_in_shard(r->index, L->shard_i, k) || all[r->index]) {
				weft_error("%s: item %" PRId64 " ('%s') %s", L->path, r->index, r->id,
					   all[r->index] ? "recorded twice" : "is not in this shard");
				goto out;
			}
			all[r->index] = r;
		}
	}
	for (int i = 0; i < k; i++)
		if (!seen[i]) {
			weft_error("shard %d/%d is missing", i + 1, k);
			goto out;
		}
	/* the header, now of the whole dataset */
	json_error_t err;
	json_t *h = json_loads(L0->header, 0, &err);
	json_object_set_new(h, "shard", json_pack("[i,i]", 0, 1));
	char *hs = h ? json_dumps(h, JSON_COMPACT) : NULL;
	json_decref(h);
	if (!hs) {
		weft_error("out of memory");
		goto out;
	}
	fprintf(out, "%s\n", hs);
	free(hs);
	for (int64_t i = 0; i < L0->dataset_items; i++)
		if (all[i])
			fprintf(out, "%s\n", all[i]->line);
	rc = ferror(out) ? -1 : 0;
	if (rc)
		weft_error("write error");
out:
	free(seen);
	free(all);
	return rc;
}

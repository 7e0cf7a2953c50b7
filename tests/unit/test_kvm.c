/* test_kvm.c - the KV-cache methods (lib/kvm*.c) against NVIDIA's kvpress:
 * the rows each press keeps on the committed tiny random Llama
 * (tests/data/kvc/kvpress-kept.txt, written by
 * scripts/gen-kvpress-fixtures.py running kvpress 0.5.5 in transformers)
 * must be the rows weft keeps, for every method both have, at ratios
 * 0.25 / 0.5 / 0.75; plus the family's invariants and bad specs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "kv.h"
#include "kvm.h"
#include "model.h"
#include "test.h"
#include "util.h"

static const char *t_suite_name = "kvm";
#define DATA "tests/data/"

typedef struct prefilled {
	weft_gguf *g;
	weft_model *m;
	weft_kv *kv;
	float *mass, *window_q, *q_mean, *q_cov;
	weft_kvm_stats st;
} prefilled;

/* ids through the tiny model into an F32 cache (kvpress's keys are float32)
 * with every statistic: prefill --kv-type f32 --mass --window-q 64 --q-stats. */
static int prefill(prefilled *p, const char *path, const int32_t *ids, int T)
{
	memset(p, 0, sizeof *p);
	if (!(p->g = weft_gguf_open(path)) || !(p->m = weft_model_load(p->g)))
		return -1;
	const weft_hparams *hp = &p->m->hp;
	const size_t nq = (size_t)hp->n_layer * hp->n_head * hp->head_dim;
	p->kv = weft_kv_new_type(p->m, T, WEFT_KV_F32);
	p->mass = calloc((size_t)hp->n_layer * hp->n_head_kv * (size_t)T, sizeof(float));
	p->window_q = calloc(nq * 64, sizeof(float));
	p->q_mean = malloc(nq * sizeof(float));
	p->q_cov = malloc(nq * hp->head_dim * sizeof(float));
	double *qs = calloc(nq, sizeof(double)), *qq = calloc(nq * hp->head_dim, sizeof(double));
	weft_fwd_extra x = {.mass = p->mass, .window_q = p->window_q, .n_window = 64, .q_sum = qs, .q_sq = qq, .q_skip = 4};
	int rc = p->kv && p->mass && p->window_q && p->q_mean && p->q_cov && qs && qq
			 ? weft_model_forward(p->m, NULL, p->kv, ids, NULL, T, 0, NULL, 0, &x)
			 : -1;
	if (rc == 0)
		weft_kvm_qstats(hp, qs, qq, T - 4, p->q_mean, p->q_cov);
	free(qs), free(qq);
	p->st = (weft_kvm_stats){.mass = p->mass, .mass_stride = T, .mass_queries = T, .window_q = p->window_q,
				 .n_window = 64, .q_mean = p->q_mean, .q_cov = p->q_cov, .q_count = T - 4};
	return rc;
}

static void release(prefilled *p)
{
	weft_kv_free(p->kv);
	free(p->mass), free(p->window_q), free(p->q_mean), free(p->q_cov);
	weft_model_free(p->m);
	weft_gguf_close(p->g);
}

/* The fixture: the prompt, then lines of cases. */
typedef struct fixture {
	char *buf;
	int T;
	int32_t ids[512];
	double duo[64];
	int n_duo;
} fixture;

static int load_fixture(fixture *fx)
{
	size_t n;
	memset(fx, 0, sizeof *fx);
	if (!(fx->buf = t_read_file(DATA "kvc/kvpress-kept.txt", &n)))
		return -1;
	char *p = strstr(fx->buf, "\nprompt ");
	if (!p || sscanf(p, "\nprompt %d", &fx->T) != 1 || fx->T > 512)
		return -1;
	p = strchr(p + 8, ' ');
	for (int i = 0; i < fx->T; i++)
		fx->ids[i] = (int32_t)strtol(p, &p, 10);
	if ((p = strstr(fx->buf, "\nduo_scores ")) != NULL) {
		p += 12;
		while (fx->n_duo < 64 && *p && *p != '\n')
			fx->duo[fx->n_duo++] = strtod(p, &p);
	}
	return 0;
}

/* Kept rows of every case line of method `what` ("case" or "channels") at
 * ratio r: compares with the cache after weft applied spec. */
static int compare(const fixture *fx, const char *kind, const char *method, double ratio, const weft_kv *kv,
		   int *lines, char *why, size_t cap)
{
	char head[128];
	snprintf(head, sizeof head, "\n%s %s %g layer ", kind, method, ratio);
	int bad = 0;
	for (const char *p = strstr(fx->buf, head); p; p = strstr(p + 1, head)) {
		int l, h, off;
		if (sscanf(p + strlen(head), "%d head %d kept%n", &l, &h, &off) != 2)
			return -1;
		const char *q = p + strlen(head) + off;
		int32_t want[512];
		int n = 0;
		while (*q == ' ')
			want[n++] = (int32_t)strtol(q, (char **)&q, 10);
		(*lines)++;
		const int channels = strcmp(kind, "channels") == 0;
		const int32_t *got = channels ? (kv->layer[l].k_chan ? kv->layer[l].k_chan + h * kv->layer[l].k_dim : NULL)
					      : weft_kv_pos(kv, l, h);
		const int ng = channels ? (got ? kv->layer[l].k_dim : kv->head_dim) : kv->len[l * kv->n_head_kv + h];
		int same = ng == n;
		for (int i = 0; same && i < n; i++)
			same = got ? got[i] == want[i] : want[i] == i;
		if (!same && !bad++) {
			int d = 0;
			while (d < n && d < ng && (got ? got[d] : d) == want[d])
				d++;
			snprintf(why, cap, "%s %g layer %d head %d: %d rows kept, kvpress %d; first difference at %d (%d vs %d)",
				 method, ratio, l, h, ng, n, d, d < ng && got ? got[d] : -1, d < n ? want[d] : -1);
		}
	}
	return bad;
}

static void against_kvpress(const char *method, const char *spec, const char *kind)
{
	fixture fx;
	if (load_fixture(&fx) != 0) {
		free(fx.buf);
		FAILF("cannot read %skvc/kvpress-kept.txt", DATA);
		return;
	}
	const double ratios[] = {0.25, 0.5, 0.75};
	int lines = 0;
	for (int i = 0; i < 3; i++) {
		prefilled p;
		if (prefill(&p, DATA "llm/tiny-llama-f32.gguf", fx.ids, fx.T) != 0) {
			FAILF("prefill: %s", weft_errmsg());
			release(&p);
			break;
		}
		weft_kvm_opts o = {.ratio = ratios[i], .image_ratio = -1};
		if (weft_kvm_apply(spec, &o, &p.m->hp, p.kv, &p.st, NULL, 0, NULL, 0) != 0) {
			FAILF("%s: %s", spec, weft_errmsg());
			release(&p);
			break;
		}
		char why[256];
		if (compare(&fx, kind, method, ratios[i], p.kv, &lines, why, sizeof why) != 0)
			FAILF("%s", why);
		release(&p);
	}
	if (!t_failed && lines == 0)
		FAILF("no %s lines for %s in the fixture", kind, method);
	free(fx.buf);
}

static void knorm(void) { against_kvpress("knorm", "knorm", "case"); }
static void streamingllm(void) { against_kvpress("streamingllm", "streamingllm", "case"); }
static void observed(void) { against_kvpress("observed", "observed", "case"); }
static void snapkv(void) { against_kvpress("snapkv", "snapkv:window=32", "case"); }
static void pyramidkv(void) { against_kvpress("pyramidkv", "pyramidkv:window=32", "case"); }
static void tova(void) { against_kvpress("tova", "tova", "case"); }
static void expected_attention(void) { against_kvpress("expected-attention", "expected-attention", "case"); }
static void keydiff(void) { against_kvpress("keydiff", "keydiff", "case"); }
static void adakv(void) { against_kvpress("adakv", "adakv:window=32", "case"); }
static void duo(void) { against_kvpress("duo", "duo:sinks=4:recent=16", "case"); }
static void think(void) { against_kvpress("think", "think", "channels"); }

/* Every registered method: a name the family finds, a summary, and on the
 * tiny prefilled cache (all statistics present) it applies, keeps rows in
 * position order, never grows the cache, and the cache still decodes. */
static void family_invariants(void)
{
	const weft_family *fam = weft_kvm_family();
	fixture fx;
	if (load_fixture(&fx) != 0) {
		FAILF("fixture");
		return;
	}
	CHECK(fam->n >= 16);
	for (size_t i = 0; i < fam->n; i++) {
		const weft_method *m = weft_family_at(fam, i);
		CHECK(m->name && *m->name && m->summary && *m->summary && m->params && m->needs);
		CHECK_EQ_INT(weft_family_find(fam, m->name), (int)i);
		prefilled p;
		if (prefill(&p, DATA "llm/tiny-llama-f16.gguf", fx.ids, fx.T) != 0) {
			FAILF("prefill");
			release(&p);
			break;
		}
		/* an F16 cache as prefill writes it (KIVI quantizes F16 rows) */
		weft_kv_free(p.kv);
		p.kv = weft_kv_new(p.m, fx.T);
		memset(p.mass, 0, sizeof(float) * (size_t)p.m->hp.n_layer * p.m->hp.n_head_kv * (size_t)fx.T);
		weft_fwd_extra x = {.mass = p.mass};
		CHECK(weft_model_forward(p.m, NULL, p.kv, fx.ids, NULL, fx.T, 0, NULL, 0, &x) == 0);
		const uint64_t before = weft_kv_bytes(p.kv);
		char spec[64];
		snprintf(spec, sizeof spec, "%s%s", m->name,
			 strcmp(m->name, "duo") == 0 ? ":sinks=4:recent=8"
			 : strcmp(m->name, "kivi") == 0 || strcmp(m->name, "gear") == 0 ? ":residual=32"
			 : strcmp(m->name, "minicache") == 0 ? ":from=0" : "");
		weft_kvm_opts o = {.ratio = 0.5, .image_ratio = -1};
		if (weft_kvm_apply(spec, &o, &p.m->hp, p.kv, &p.st, NULL, 0, NULL, 0) != 0) {
			FAILF("%s: %s", m->name, weft_errmsg());
			release(&p);
			continue;
		}
		if (weft_kv_bytes(p.kv) > before || (strcmp(m->name, "minicache") == 0 && weft_kv_bytes(p.kv) > before * 0.7))
			FAILF("%s: %llu bytes after, %llu before", m->name, (unsigned long long)weft_kv_bytes(p.kv),
			      (unsigned long long)before);
		for (int l = 0; l < p.kv->n_layer; l++)
			for (int h = 0; h < p.kv->n_head_kv; h++)
				for (int64_t j = 1; j < weft_kv_rows(p.kv, l, h) - (p.kv->layer[l].mv ? p.kv->layer[l].mv->n[h] : 0); j++)
					if (weft_kv_row_pos(p.kv, l, h, j) <= weft_kv_row_pos(p.kv, l, h, j - 1))
						FAILF("%s: layer %d head %d: rows out of order at %lld", m->name, l, h, (long long)j);
		/* decode continues from it */
		float lg[512];
		const int32_t next = 7;
		CHECK(weft_kv_reserve_extra(p.kv, 2) == 0);
		if (weft_model_forward(p.m, NULL, p.kv, &next, NULL, 1, 0, lg, 0, NULL) != 0)
			FAILF("%s: forward after it: %s", m->name, weft_errmsg());
		release(&p);
	}
	free(fx.buf);
}

/* random: the kvpress count, the same rows for the same seed, others for
 * another (weft's own generator: kvpress's torch draws are not matched). */
static void random_rows(void)
{
	fixture fx;
	if (load_fixture(&fx) != 0) {
		FAILF("fixture");
		return;
	}
	int32_t kept[3][512];
	int n[3] = {0};
	for (int run = 0; run < 3; run++) {
		prefilled p;
		CHECK(prefill(&p, DATA "llm/tiny-llama-f32.gguf", fx.ids, fx.T) == 0);
		weft_kvm_opts o = {.ratio = 0.3, .image_ratio = -1, .seed = run == 2 ? 7 : 1};
		CHECK(weft_kvm_apply("random", &o, &p.m->hp, p.kv, &p.st, NULL, 0, NULL, 0) == 0);
		n[run] = p.kv->len[1];
		memcpy(kept[run], weft_kv_pos(p.kv, 0, 1), sizeof(int32_t) * (size_t)n[run]);
		release(&p);
	}
	CHECK_EQ_INT(n[0], (int)(fx.T * (1 - 0.3)));
	CHECK(n[0] == n[1] && memcmp(kept[0], kept[1], sizeof(int32_t) * (size_t)n[0]) == 0);
	CHECK(n[0] == n[2] && memcmp(kept[0], kept[2], sizeof(int32_t) * (size_t)n[0]) != 0);
	free(fx.buf);
}

static void n_kept_rule(void)
{
	/* Python's int(T * (1 - r)) in double, at least 1 */
	CHECK_EQ_INT(weft_kvm_n_kept(40, 0.9), 3); /* 40 * 0.09999999999999998 */
	CHECK_EQ_INT(weft_kvm_n_kept(150, 0.25), 112);
	CHECK_EQ_INT(weft_kvm_n_kept(3, 0.9), 1);
	CHECK_EQ_INT(weft_kvm_n_kept(10, 0), 10);
}

/* Specs and statistics: one clear error each. */
static void bad_specs(void)
{
	weft_kvm_opts o = {.ratio = 0.5, .image_ratio = -1};
	weft_kvm_stats none = {0};
	CHECK(weft_kvm_check("snapkv", &o, &none) == -1);
	CHECK_STR(weft_errmsg(), "snapkv needs the last 64 queries (the stream has 0): run prefill with --window-q 64");
	CHECK(weft_kvm_check("h2o", &o, &none) == -1);
	CHECK_STR(weft_errmsg(), "h2o needs the attention mass each row received: run prefill with --mass");
	CHECK(weft_kvm_check("expected-attention", &o, &none) == -1);
	CHECK_STR(weft_errmsg(), "expected-attention needs the queries' mean and covariance: run prefill with --q-stats");
	CHECK(weft_kvm_check("adakv:scorer=tova", &o, &none) == -1);
	CHECK_STR(weft_errmsg(), "adakv needs the last 1 queries (the stream has 0): run prefill with --window-q 1");
	CHECK(weft_kvm_check("snapk", &o, NULL) == -1);
	CHECK(strstr(weft_errmsg(), "unknown KV method 'snapk' (known: random, streamingllm,") == weft_errmsg());
	CHECK(weft_kvm_check("snapkv:windw=3", &o, NULL) == -1);
	CHECK_STR(weft_errmsg(), "snapkv has no parameter 'windw' (window=64 kernel=5 ratio budget)");
	CHECK(weft_kvm_check("snapkv:window=0", &o, NULL) == -1);
	CHECK_STR(weft_errmsg(), "snapkv: window=0: expected a number in 1..65536");
	CHECK(weft_kvm_check("kivi4,snapkv", &o, NULL) == -1);
	CHECK_STR(weft_errmsg(), "snapkv after quantization: quantize last (e.g. --method snapkv,kivi4)");
	CHECK(weft_kvm_check("kivi:bits=3", &o, NULL) == -1);
	CHECK_STR(weft_errmsg(), "kivi: 3 bits: 2, 4 or 8");
	CHECK(weft_kvm_check("knorm:ratio=1", &o, NULL) == -1);
	o.ratio = 1.0;
	CHECK(weft_kvm_check("knorm", &o, NULL) == -1);
	CHECK_STR(weft_errmsg(), "ratio 1 outside [0, 1) (it is the fraction of rows removed, as in kvpress)");
	o.ratio = 0.5;
	CHECK(weft_kvm_check("snapkv,kivi4", &o, NULL) == 0);
	CHECK(weft_kvm_check("adakv:scorer=knorm:alpha=0.5", &o, NULL) == 0);
	CHECK(weft_kvm_check("adakv:window=16", &o, NULL) == 0); /* the default scorer's parameter */
	/* the ratio in the spec for every method the ratio drives (kv.bench.sh's
	 * duo:ratio=0.75 was refused); budget for eviction only */
	CHECK(weft_kvm_check("duo:ratio=0.75", &o, NULL) == 0);
	CHECK(weft_kvm_check("think:ratio=0.5", &o, NULL) == 0);
	CHECK(weft_kvm_check("duo:budget=5", &o, NULL) == -1);
	CHECK_STR(weft_errmsg(), "duo has no parameter 'budget' (sinks=128 recent=256 scores=FILE ratio)");
	CHECK(weft_kvm_check("kivi4:ratio=0.5", &o, NULL) == -1);
}

int main(void)
{
	t_suite = t_suite_name;
	RUN(knorm);
	RUN(streamingllm);
	RUN(observed);
	RUN(snapkv);
	RUN(pyramidkv);
	RUN(tova);
	RUN(expected_attention);
	RUN(keydiff);
	RUN(adakv);
	RUN(duo);
	RUN(think);
	RUN(random_rows);
	RUN(n_kept_rule);
	RUN(bad_specs);
	RUN(family_invariants);
	TEST_MAIN_END();
}

/* bench_kvacc.c - retrieval accuracy under KV compression, in process (the
 * pipeline tokenize | prefill | kvcompress | decode, as library calls,
 * without re-reading the model and the stream for every run: what
 * eval-interleaved will do; it is not in main yet).
 *
 *   bench_kvacc MODEL.gguf SET.tsv [ITEMS] [THREADS]
 *
 * SET.tsv: id <TAB> answer <TAB> prompt (scripts/gen-kv-retrieval.py).  Per
 * item: the prompt (plain completion) prefilled once with every statistic
 * (prefill --mass --window-q 64 --q-stats), the cache kept as a stream in
 * memory; then for each form, the cache read back, compressed
 * (weft_kvm_apply, or packed and unpacked), and 6 tokens decoded greedily;
 * right when the text contains the answer.  Prints one line per form:
 * method, ratio ("-" for none), right, items, mean bytes / F16 bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "kvm.h"
#include "kvstream.h"
#include "model.h"
#include "tokenizer.h"
#include "util.h"

static const char *const evict[] = {"random", "streamingllm", "knorm", "observed", "snapkv", "pyramidkv", "tova",
				    "expected-attention", "keydiff", "adakv", "duo:sinks=16:recent=64", "think"};
static const char *const fixed[] = {"none", "kivi8", "kivi4", "kivi2", "gear", "minicache", "snapkv:ratio=0.5,kivi4",
				    "pack8", "pack4"};
static const double ratios[] = {0.25, 0.5, 0.75, 0.9};
#define N_EVICT (sizeof evict / sizeof evict[0])
#define N_FIXED (sizeof fixed / sizeof fixed[0])
#define N_FORMS (N_FIXED + N_EVICT * 4)

typedef struct textbuf {
	char s[512];
	size_t n;
} textbuf;

static int on_text(void *ctx, const char *s, size_t n)
{
	textbuf *t = ctx;
	for (size_t i = 0; i < n && t->n + 1 < sizeof t->s; i++)
		t->s[t->n++] = s[i];
	t->s[t->n] = 0;
	return 0;
}

/* The cache (stream bytes in memory) read back. */
static int read_back(const weft_model *m, const char *buf, size_t n, weft_kv_in *in)
{
	weft_reader *r = weft_reader_mem(buf, n);
	weft_frame *f;
	int rc;
	memset(in, 0, sizeof *in);
	in->extra_cap = 8;
	while ((rc = weft_reader_next(r, &f)) == 1) {
		if (weft_kv_read(in, m, f) < 0)
			rc = -1;
		weft_frame_free(f);
		if (rc < 0)
			break;
	}
	weft_reader_free(r);
	return rc == 0 ? weft_kv_read_end(in, m, 1) : -1;
}

/* One form on one item: 1 right, 0 wrong, -1 error; *frac its bytes. */
static int run_form(const weft_model *m, const weft_vocab *voc, weft_pool *pool, const char *buf, size_t n,
		    const char *spec, double ratio, const char *answer, double *frac)
{
	weft_kv_in in;
	char *pbuf = NULL;
	size_t pn = 0;
	if (strncmp(spec, "pack", 4) == 0) { /* transport: packed, then read back */
		if (read_back(m, buf, n, &in) != 0)
			return -1;
		FILE *f = open_memstream(&pbuf, &pn);
		weft_kv_write_args w = {.hist = in.hist, .n_hist = in.n_hist, .logits = in.logits};
		const int rc = weft_kv_write_packed(f, m, in.kv, &w, atoi(spec + 4));
		fclose(f);
		const uint64_t full = weft_kv_bytes_f16(in.kv);
		weft_kv_in_free(&in);
		if (rc != 0)
			return -1;
		*frac = (double)pn / (double)full;
		buf = pbuf, n = pn;
	}
	if (read_back(m, buf, n, &in) != 0) {
		free(pbuf);
		return -1;
	}
	weft_kvm_stats st = {.mass = in.have_mass ? in.mass : NULL, .mass_stride = in.mass_stride,
			     .mass_queries = in.mass_queries, .window_q = in.window_q, .n_window = in.n_window,
			     .q_mean = in.q_mean, .q_cov = in.q_cov, .q_count = in.q_count};
	weft_kvm_opts o = {.ratio = ratio, .image_ratio = -1, .pool = pool};
	int rc = strcmp(spec, "none") == 0 || pbuf ? 0 : weft_kvm_apply(spec, &o, &m->hp, in.kv, &st, in.hist, in.n_hist, NULL, 0);
	if (!pbuf)
		*frac = (double)weft_kv_bytes(in.kv) / (double)weft_kv_bytes_f16(in.kv);
	textbuf t = {{0}, 0};
	weft_gen_opts go = {.n_predict = 6, .ignore_eos = 1, .sp = {.temp = 0}, .on_text = on_text, .ctx = &t};
	weft_gen_result gr;
	if (rc == 0 && (rc = weft_kv_reserve_extra(in.kv, 8)) == 0)
		rc = weft_generate(m, voc, pool, in.kv, in.logits, in.hist, in.n_hist, &go, &gr);
	if (rc == 0)
		weft_gen_result_free(&gr);
	weft_kv_in_free(&in);
	free(pbuf);
	return rc != 0 ? -1 : strstr(t.s, answer) != NULL;
}

/* The item's prompt through the model with every statistic, as a stream in
 * memory (*buf, *n). */
static int prefill(const weft_model *m, const weft_vocab *voc, weft_pool *pool, const char *prompt, char **buf,
		   size_t *n)
{
	int32_t *ids = NULL;
	size_t T = 0, cap = 0;
	if (weft_vocab_add_bos(voc)) {
		const int32_t bos = weft_vocab_bos(voc);
		ids = malloc(sizeof *ids * 16), cap = 16;
		ids[T++] = bos;
	}
	if (weft_tokenize(voc, prompt, strlen(prompt), 0, &ids, &T, &cap) != 0)
		return -1;
	const weft_hparams *hp = &m->hp;
	const size_t nq = (size_t)hp->n_layer * hp->n_head * hp->head_dim;
	weft_kv *kv = weft_kv_new(m, (int64_t)T);
	float *lg = malloc(sizeof(float) * (size_t)hp->n_vocab), *mass = calloc((size_t)hp->n_layer * hp->n_head_kv * T, 4),
	      *wq = calloc(nq * 64, 4), *qm = malloc(nq * 4), *qc = malloc(nq * hp->head_dim * 4);
	double *qs = calloc(nq, 8), *qq = calloc(nq * hp->head_dim, 8);
	weft_fwd_extra x = {.mass = mass, .window_q = wq, .n_window = 64, .q_sum = qs, .q_sq = qq, .q_skip = 4};
	int rc = weft_model_forward(m, pool, kv, ids, NULL, (int64_t)T, 512, lg, 0, &x);
	if (rc == 0) {
		weft_kvm_qstats(hp, qs, qq, (int64_t)T - 4, qm, qc);
		FILE *f = open_memstream(buf, n);
		weft_kv_write_args w = {.hist = ids, .n_hist = (int64_t)T, .logits = lg, .mass = mass, .mass_queries = (int64_t)T,
					.window_q = wq, .n_window = 64, .q_mean = qm, .q_cov = qc, .q_count = (int64_t)T - 4};
		rc = weft_kv_write(f, m, kv, &w);
		fclose(f);
	}
	weft_kv_free(kv);
	free(ids), free(lg), free(mass), free(wq), free(qm), free(qc), free(qs), free(qq);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_kvacc MODEL.gguf SET.tsv [ITEMS] [THREADS]\n");
		return 2;
	}
	const int max_items = argc > 3 ? atoi(argv[3]) : 1000, threads = argc > 4 ? atoi(argv[4]) : 1;
	weft_gguf *g = weft_gguf_open(argv[1]);
	weft_model *m = g ? weft_model_load(g) : NULL;
	weft_vocab *voc = g ? weft_vocab_load(g) : NULL;
	weft_pool *pool = weft_pool_new(threads);
	FILE *set = fopen(argv[2], "r");
	if (!m || !voc || !pool || !set) {
		fprintf(stderr, "bench_kvacc: %s\n", set ? weft_errmsg() : "cannot open the set");
		return 1;
	}
	static int right[N_FORMS];
	static double frac[N_FORMS];
	int items = 0;
	static char line[1 << 16];
	while (items < max_items && fgets(line, sizeof line, set)) {
		char *id = line, *ans = strchr(id, '\t'), *prompt = ans ? strchr(ans + 1, '\t') : NULL;
		if (!prompt)
			continue;
		*ans++ = 0, *prompt++ = 0;
		prompt[strcspn(prompt, "\n")] = 0;
		char *buf = NULL;
		size_t n = 0;
		if (prefill(m, voc, pool, prompt, &buf, &n) != 0) {
			fprintf(stderr, "bench_kvacc: %s: %s\n", id, weft_errmsg());
			return 1;
		}
		for (size_t k = 0; k < N_FORMS; k++) {
			const char *spec = k < N_FIXED ? fixed[k] : evict[(k - N_FIXED) / 4];
			const double r = k < N_FIXED ? 0.5 : ratios[(k - N_FIXED) % 4];
			double fr = 0;
			const int ok = run_form(m, voc, pool, buf, n, spec, r, ans, &fr);
			if (ok < 0) {
				fprintf(stderr, "bench_kvacc: %s: %s: %s\n", id, spec, weft_errmsg());
				return 1;
			}
			right[k] += ok;
			frac[k] += fr;
		}
		free(buf);
		items++;
		fprintf(stderr, "%s done\n", id);
	}
	for (size_t k = 0; k < N_FORMS; k++)
		printf("%s\t%s\t%d\t%d\t%.4f\n", k < N_FIXED ? fixed[k] : evict[(k - N_FIXED) / 4],
		       k < N_FIXED ? "-" : (const char[][5]){"0.25", "0.5", "0.75", "0.9"}[(k - N_FIXED) % 4], right[k], items,
		       items ? frac[k] / items : 0);
	fclose(set);
	weft_pool_free(pool);
	weft_vocab_free(voc);
	weft_model_free(m);
	weft_gguf_close(g);
	return 0;
}

/* prefill - run a prompt (tokens stream, with image embeddings spliced in
 * from encode-image) through an LLM and write its KV cache, per layer, plus
 * the next-token logits (man 1 prefill). */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>

#include "common.h"
#include "gguf.h"
#include "keys.h"
#include "kvm.h"
#include "kvstream.h"
#include "model.h"
#include "prompt.h"
#include "prune.h"
#include "tokenizer.h"

static struct {
	const char *model, *output;
	const char *device; /* --device, else $WEFT_DEVICE */
	const char *kv_method; /* --kv-budget's method (kvcompress's streaming methods) */
	int64_t kv_budget;
	int threads, force, verbose, mass, llamacpp, q_stats;
	int dev; /* -1: cpu, else the CUDA device */
	int kv_type; /* -1: F16, or what an input cache holds; else a weft_kv_type */
	int64_t chunk, ctx, window_q;
} o = {.chunk = 512, .kv_type = -1};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s -m MODEL.gguf [OPTIONS] [FILE]\n"
		"Read a weft tokens stream (FILE or stdin), with image embeddings from\n"
		"encode-image spliced in where its embd frames stand, run it through the\n"
		"model and write the KV cache (a kvcache frame, one kv frame per layer) and\n"
		"the next-token logits.  A KV cache in the input is extended (multi-turn).\n"
		"\n"
		"  -m, --model FILE     GGUF model (arch llama or qwen2)\n"
		"  -t, --threads N      threads (default: all CPUs)\n"
		"      --chunk N        tokens per forward chunk (default 512)\n"
		"  -c, --ctx N          context limit (default: the model's training context)\n"
		"      --mass           write per-layer attention mass received per token\n"
		"      --window-q N     write the last N tokens' queries per layer\n"
		"      --kv-budget N    bounded KV memory: after each chunk keep N rows per head\n"
		"                       (at most N + --chunk held), with --kv-method\n"
		"      --kv-method SPEC the method doing it (default streamingllm; also\n"
		"                       random, knorm, observed, h2o, snapkv, tova, keydiff)\n"
		"      --q-stats        write per-layer mean and covariance of the queries\n"
		"                       (before RoPE, tokens 4 on: kvcompress's expected-attention)\n"
		"      --kv-type TYPE   KV cache values: f16 (default, as llama.cpp), f32 or q8_0\n"
		"      --numerics NAME  weft (default) or llama.cpp: reproduce llama.cpp's\n"
		"                       arithmetic bit for bit (Q4_0/Q4_1/Q8_0, f16 cache)\n"
		"      --device DEV     cpu (default; or $WEFT_DEVICE) or cuda[:N]: the LLM on\n"
		"                       CUDA device N (make CUDA=1; not yet run on a GPU)\n"
		"  -o, --output FILE    write to FILE (atomically) instead of stdout\n"
		"      --force          write binary output to a terminal\n"
		"  -v, --verbose        timing on stderr\n"
		"  -h, --help           this help\n"
		"  -V, --version        version\n",
		prog);
}

static void parse_options(int argc, char **argv)
{
	enum { O_CHUNK = 256, O_MASS, O_WINQ, O_FORCE, O_KVTYPE, O_NUMERICS, O_QSTATS, O_KVBUDGET, O_KVMETHOD, O_DEVICE };
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},  {"threads", required_argument, 0, 't'},
		{"chunk", required_argument, 0, O_CHUNK}, {"ctx", required_argument, 0, 'c'},
		{"kv-type", required_argument, 0, O_KVTYPE}, {"numerics", required_argument, 0, O_NUMERICS},
		{"mass", no_argument, 0, O_MASS},      {"window-q", required_argument, 0, O_WINQ},
		{"q-stats", no_argument, 0, O_QSTATS},    {"device", required_argument, 0, O_DEVICE},
		{"kv-budget", required_argument, 0, O_KVBUDGET}, {"kv-method", required_argument, 0, O_KVMETHOD},
		{"output", required_argument, 0, 'o'}, {"force", no_argument, 0, O_FORCE},
		{"verbose", no_argument, 0, 'v'},      {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},      {0, 0, 0, 0}};
	tool_init("prefill");
	int c;
	while ((c = getopt_long(argc, argv, "m:t:c:o:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'm': o.model = optarg; break;
		case 't': o.threads = (int)opt_int("--threads", optarg, 1, 1024); break;
		case O_CHUNK: o.chunk = opt_int("--chunk", optarg, 1, 1 << 20); break;
		case 'c': o.ctx = opt_int("--ctx", optarg, 1, (int64_t)1 << 30); break;
		case O_MASS: o.mass = 1; break;
		case O_QSTATS: o.q_stats = 1; break;
		case O_KVBUDGET: o.kv_budget = opt_int("--kv-budget", optarg, 1, INT32_MAX); break;
		case O_KVMETHOD: o.kv_method = optarg; break;
		case O_WINQ: o.window_q = opt_int("--window-q", optarg, 1, 1 << 16); break;
		case O_KVTYPE:
			if ((o.kv_type = weft_kv_type_parse(optarg)) < 0)
				die("--kv-type: '%s' is not f16, f32 or q8_0", optarg);
			break;
		case O_NUMERICS: o.llamacpp = opt_numerics(optarg); break;
		case O_DEVICE: o.device = optarg; break;
		case 'o': o.output = optarg; break;
		case O_FORCE: o.force = 1; break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': print_version(); break;
		default: usage(stderr); exit(2);
		}
	}
	o.dev = o.device ? opt_device("--device", o.device) : device_default();
	if (!o.model)
		die("no model given (-m MODEL.gguf); see --help");
	if (optind + 1 < argc)
		die("at most one input FILE");

	if (o.kv_method && !o.kv_budget)
		die("--kv-method goes with --kv-budget N");
	if (o.kv_budget && (o.mass || o.window_q || o.q_stats))
		die("--kv-budget: the statistics of a bounded prefill cover its last chunk only: not with --mass, --window-q, --q-stats");
	if (o.kv_budget && !o.kv_method)
		o.kv_method = "streamingllm";
	if (o.llamacpp && o.kv_type >= 0 && o.kv_type != WEFT_KV_F16)
		die("--numerics llama.cpp: llama.cpp's attention is reproduced for the f16 KV cache only");
	const int set[] = {o.kv_budget > 0, o.mass, o.window_q > 0, o.q_stats, o.llamacpp, o.kv_type == WEFT_KV_Q8_0};
	const char *const names[] = {"--kv-budget", "--mass", "--window-q", "--q-stats", "--numerics llama.cpp",
				     "--kv-type q8_0"};
	device_refuse(o.dev, 6, set, names);
	device_apply(o.dev);
	numerics_apply(o.llamacpp);
}


/* prune-tokens' in-LLM directive (kind prune), if the stream has one: its
 * frame (kept until the forward pass) and its options. */
static weft_frame *directive;
static weft_prune_opts directive_opts;

static int take_directive(weft_frame *f, const char *inname)
{
	if (strcmp(weft_frame_kind(f), WEFT_KIND_PRUNE) != 0)
		return 0;
	if (directive)
		die("%s: frame %" PRIu64 ": a second in-LLM pruning directive (one per prompt)", inname, f->index);
	if (weft_prune_directive_read(f, &directive_opts) != 0)
		die("%s: %s", inname, weft_errmsg());
	directive = f;
	return 1;
}

/* The input: a prompt (tokens and embd frames), after the KV cache it
 * extends, if any; other frames are passed on to out. */
static void read_input(weft_reader *r, const char *inname, weft_prompt *pr, weft_kv_in *kin, FILE *out)
{
	weft_frame *f;
	int rc;
	while ((rc = weft_reader_next(r, &f)) == 1) {
		if (take_directive(f, inname))
			continue;
		if (strcmp(weft_frame_kind(f), WEFT_KIND_KVCACHE) == 0 && (kin->kv || pr->n || pr->wrap_len))
			die("%s: frame %" PRIu64 ": a KV cache must come first in the stream, once", inname, f->index);
		int took = weft_prompt_add_frame(pr, f);
		if (took == 0)
			took = weft_kv_read(kin, pr->m, f); /* logits: superseded by this run's */
		if (took < 0)
			die("%s: %s", inname, weft_errmsg());
		if (took == 0 && weft_frame_write_raw(out, f) != 0)
			die_lib(out_name);
		weft_frame_free(f);
	}
	stream_done(r, rc, inname);
	if (weft_prompt_finish(pr) != 0)
		die("%s: %s", inname, weft_errmsg());
	if (kin->kv && weft_kv_read_end(kin, pr->m, 0) != 0)
		die("%s: %s", inname, weft_errmsg());
	if (pr->n == 0)
		die("%s: no tokens to prefill", inname);
}

/* The cache to extend (the input's, or a new one), with room for the
 * prompt, and its token history extended by the prompt. */
static weft_kv *prepare_cache(const weft_model *m, weft_kv_in *kin, const weft_prompt *pr, const char *inname)
{
	const weft_hparams *hp = &m->hp;
	const int64_t ctx = o.ctx ? o.ctx : (hp->n_ctx_train > 0 ? hp->n_ctx_train : 4096);
	weft_kv *kv = kin->kv;
	const int64_t n_past = kv ? kv->n_past : 0;
	/* (a prompt pruned with its positions kept spans more positions than rows) */
	if (n_past + pr->n_pos > ctx)
		die("%s: context length exceeded: %" PRId64 " cached + %" PRId64 " new positions > context %" PRId64, inname,
		    n_past, pr->n_pos, ctx);
	if (kv && o.kv_type >= 0 && (int)kv->layer[0].type != o.kv_type)
		die("%s: the input KV cache holds %s values, but --kv-type %s was asked for", inname,
		    weft_kv_type_name(kv->layer[0].type), weft_kv_type_name((weft_kv_type)o.kv_type));
	/* --kv-budget: room for the budget and a chunk, not the prompt */
	const int64_t room = o.kv_budget ? o.kv_budget + o.chunk : pr->n;
	if (!kv && !(kv = kin->kv = weft_kv_new_type(m, room, o.kv_type >= 0 ? (weft_kv_type)o.kv_type : WEFT_KV_F16)))
		die("%s: %s", o.model, weft_errmsg());
	if (weft_kv_reserve_extra(kv, room) != 0) /* per head: a compressed cache stays small */
		die_lib(NULL);
	/* the history is by position: -1 where an image row (or a pruned one) stands */
	int32_t *h = realloc(kin->hist, (size_t)(kin->n_hist + pr->n_pos) * 4), *ph = weft_prompt_history(pr);
	if (!h || !ph)
		die("out of memory");
	kin->hist = h;
	memcpy(h + kin->n_hist, ph, (size_t)pr->n_pos * 4);
	kin->n_hist += pr->n_pos;
	free(ph);
	return kv;
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	double t0 = now_seconds();
	tool_model tm = load_model(o.model);
	check_numerics(o.llamacpp, &tm, o.model);
	const weft_model *m = tm.m;
	const weft_hparams *hp = &m->hp;

	const char *inname;
	FILE *in = in_open(optind < argc ? argv[optind] : "-", &inname);
	FILE *out = out_open(o.output, 1, o.force);
	weft_reader *r = stream_open(in);
	weft_prompt pr;
	weft_prompt_init(&pr, m, tm.voc);
	weft_kv_in kin = {.want_llamacpp = o.llamacpp};
	read_input(r, inname, &pr, &kin, out);
	if (directive) { /* before anything runs */
		const int one = 1;
		const char *const what = "in-LLM pruning (prune-tokens' directive)";
		device_refuse(o.dev, 1, &one, &what);
	}
	weft_kv *kv = prepare_cache(m, &kin, &pr, inname);

	/* Run the model. */
	weft_pool *pool = weft_pool_new(o.threads);
	float *logits = malloc((size_t)hp->n_vocab * sizeof *logits);
	if (!pool || !logits)
		die_lib(NULL);
	weft_fwd_extra extra = {0};
	if (o.mass && !(extra.mass = calloc((size_t)hp->n_layer * hp->n_head_kv * (size_t)kv->cap, sizeof(float))))
		die("out of memory");
	if (o.window_q) {
		extra.n_window = (int)(o.window_q < pr.n ? o.window_q : pr.n);
		extra.window_q = calloc((size_t)hp->n_layer * extra.n_window * hp->n_head * hp->head_dim, sizeof(float));
		if (!extra.window_q)
			die("out of memory");
	}
	/* prune-tokens: kept tokens at their positions; an in-LLM drop */
	if (pr.n_pos != pr.n)
		extra.pos = pr.pos, extra.pos_span = pr.n_pos;
	weft_prune_llm *drop = NULL;
	if (directive) {
		if (!(drop = weft_prune_llm_new(&directive_opts, m, &pr)))
			die("%s: %s", inname, weft_errmsg());
		weft_prune_llm_attach(drop, &extra);
	}
	/* kvcompress's expected-attention: query statistics past the first
	 * QSTAT_SKIP tokens (its 4 sink tokens) */
	enum { QSTAT_SKIP = 4 };
	const size_t nqs = (size_t)hp->n_layer * hp->n_head * hp->head_dim;
	if (o.q_stats) {
		extra.q_sum = calloc(nqs, sizeof(double));
		extra.q_sq = calloc(nqs * hp->head_dim, sizeof(double));
		extra.q_skip = QSTAT_SKIP;
		if (!extra.q_sum || !extra.q_sq)
			die("out of memory");
	}
	device_attach(o.dev, m, kv, o.model); /* the cache on the device until it is written */
	double t1 = now_seconds();
	/* Token ids alone go in as ids; a prompt with embedding rows goes in as
	 * rows throughout (the same token embeddings the forward pass looks up). */
	float *x = pr.n_rows ? weft_prompt_input_rows(&pr) : NULL;
	if (pr.n_rows && !x)
		die_lib(NULL);
	if (o.kv_budget && (extra.pos || drop))
		die("%s: --kv-budget does not combine with a pruned prompt; prefill it whole and run kvcompress", inname);
	int64_t peak = 0;
	if (o.kv_budget ? weft_kvm_prefill_bounded(m, pool, kv, x ? NULL : pr.ids, x, pr.n, o.chunk, logits, o.kv_method,
						   o.kv_budget, kin.hist, kin.n_hist, &peak) != 0
			: weft_model_forward(m, pool, kv, x ? NULL : pr.ids, x, pr.n, o.chunk, logits, 0,
					     o.mass || o.window_q || o.q_stats || extra.pos || extra.drop ? &extra : NULL) != 0)
		die("%s: %s", o.model, weft_errmsg());
	double t2 = now_seconds();

	/* Write the cache and the logits. */
	weft_kv_write_args w = {.hist = kin.hist, .n_hist = kin.n_hist, .logits = logits, .llamacpp = o.llamacpp,
				.mass = extra.mass, .mass_queries = pr.n, .window_q = extra.window_q,
				.n_window = extra.n_window};
	float *q_mean = NULL, *q_cov = NULL;
	if (o.q_stats) { /* mean and covariance (kvcompress's expected-attention, duo) */
		const int64_t n = pr.n > QSTAT_SKIP ? pr.n - QSTAT_SKIP : 0;
		q_mean = malloc(nqs * sizeof *q_mean);
		q_cov = malloc(nqs * hp->head_dim * sizeof *q_cov);
		if (!q_mean || !q_cov)
			die("out of memory");
		weft_kvm_qstats(hp, extra.q_sum, extra.q_sq, n, q_mean, q_cov);
		w.q_mean = q_mean, w.q_cov = q_cov, w.q_count = n;
	}
	device_download(o.dev, kv);
	if (weft_kv_write(out, m, kv, &w) != 0)
		die_lib(out_name);
	out_close(out);
	if (o.verbose && o.kv_budget)
		fprintf(stderr, "%s: --kv-budget %" PRId64 " (%s): at most %" PRId64 " rows per head held, %" PRIu64 " bytes kept\n",
			prog, o.kv_budget, o.kv_method, peak, weft_kv_bytes(kv));
	if (o.verbose)
		fprintf(stderr, "%s: load %.3f s; prefill %" PRId64 " tokens%s in %.3f s (%.1f tokens/s), %d threads, kernels %s, device %s\n",
			prog, t1 - t0, pr.n, pr.n_rows ? " (image embeddings included)" : "", t2 - t1, pr.n / (t2 - t1),
			weft_pool_size(pool), weft_kernels_level(), device_label(o.dev));
	if (o.verbose && drop)
		weft_prune_llm_report(drop, stderr);

	device_detach(o.dev);
	weft_prune_llm_free(drop);
	weft_frame_free(directive);
	free(extra.mass);
	free(extra.window_q);
	free(extra.q_sum);
	free(extra.q_sq);
	free(q_mean);
	free(q_cov);
	free(logits);
	free(x);
	weft_prompt_free(&pr);
	weft_kv_in_free(&kin);
	weft_pool_free(pool);
	weft_reader_free(r);
	if (in != stdin)
		fclose(in);
	free_model(&tm);
	return 0;
}

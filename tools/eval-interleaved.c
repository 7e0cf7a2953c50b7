/* eval-interleaved - run and score interleaved image+text benchmarks, with
 * speed and memory in the same report (man 1 eval-interleaved).
 *
 *   eval-interleaved run -m M.gguf [--mmproj P.gguf] BENCH -o RUN.jsonl
 *   eval-interleaved score PREDS.jsonl --gold BENCH -o RUN.jsonl
 *   eval-interleaved summary RUN.jsonl
 *   eval-interleaved compare A.jsonl B.jsonl
 *   eval-interleaved merge SHARD.jsonl... -o RUN.jsonl
 *   eval-interleaved plot SUMMARY.json... -o PLOT.png
 *
 * Exit status: 0, 1 (an error: bad input, an unusable file), 2 (usage), 3
 * (the run finished but some items failed; their records say why). */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/resource.h>

#include "common.h"
#include "eval.h"
#include "eval_report.h"
#include "eval_run.h"
#include "kernels.h"
#include "kvm.h"
#include "prune.h"

#define MAX_STOPS 16
#define EXIT_ITEMS_FAILED 3

static struct {
	const char *model, *mmproj, *output, *summary, *format, *gold, *mc_prompt;
	int metric, verbose, resume, shard_i, shard_n;
	const char *stops[MAX_STOPS];
	weft_eval_run_opts run;
	weft_score_opts score;
	weft_eval_boot boot;
	const char *plot_x, *title;
	const char *kv;          /* --kv SPEC, with --kv-ratio */
	double kv_ratio;
} o = {.kv_ratio = 0.5, .metric = -1, .shard_n = 1, .boot = {.resamples = 1000},
       .run = {.n_predict = 32, .kv_type = -1, .alpha = -1,
	       .sp = {.temp = 0, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f, .repeat_last_n = 64}},
       .plot_x = "visual"};

static char **ops; /* the subcommand's operands */
static int n_ops;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s run -m MODEL.gguf [--mmproj MMPROJ.gguf] [OPTIONS] BENCH -o RUN.jsonl\n"
		"       %s score PREDS.jsonl --gold BENCH [OPTIONS] -o RUN.jsonl\n"
		"       %s summary RUN.jsonl      (summary JSON; also written by run, score, merge)\n"
		"       %s compare A.jsonl B.jsonl  (paired difference of two runs, bootstrap CIs)\n"
		"       %s merge SHARD.jsonl... -o RUN.jsonl\n"
		"       %s plot SUMMARY.json... -o PLOT.png [--x visual|kv] [--title T]\n"
		"Run an interleaved image+text benchmark through libweft (tokenize --chat |\n"
		"encode-image | prefill | decode, in process) and score it.\n"
		"\n"
		"Input and scoring:\n"
		"      --format NAME       input format (default: detected): see --list-formats\n"
		"      --metric NAME       score every item with NAME (default: per item): --list-metrics\n"
		"      --mc-extract RULE   multiple-choice answer extraction (default mmmu): --list-extractors\n"
		"      --mc-score HOW      generate (default) or likelihood (each option's text, SEED-Bench-2)\n"
		"      --ll-norm HOW       likelihood per token: mean (default) or sum\n"
		"      --random-fallback S an unparsed answer picks a random option (seed S) instead of\n"
		"                          counting wrong (to reproduce published numbers)\n"
		"      --mc-prompt TEXT    instruction after the options (MMMU/MuirBench/TSV prompts)\n"
		"Model (run; as the tools):\n"
		"  -m, --model FILE        GGUF LLM            --mmproj FILE   vision encoder GGUF\n"
		"      --template NAME     chat template (default: the GGUF's)   --no-chat  no template\n"
		"      --system TEXT       system message\n"
		"  -n, --n-predict N       tokens to generate (default 32)\n"
		"      --temp T  --top-k K  --top-p P  --min-p P  --repeat-penalty R  --repeat-last-n N\n"
		"                          sampling (default greedy: --temp 0)\n"
		"  -s, --seed S            sampling seed (default 0)      --stop TEXT  stop string\n"
		"  -t, --threads N         threads (default: all CPUs)    -c, --ctx N  context limit\n"
		"      --chunk N           prefill chunk (default 512)    --kv-type T  f16, f32, q8_0\n"
		"      --numerics NAME     weft (default) or llama.cpp\n"
		"      --batch N  --max-pixels N  --alpha-drop  --alpha-white  --no-exif   as encode-image\n"
		"Stages (in process, as the tools; recorded in the run's config):\n"
		"      --prune SPEC        visual-token pruning, METHOD[:keep=N|:ratio=R][:scope=S]\n"
		"                          [:positions=P][:PARAM=V...] as prune-tokens (any method:\n"
		"                          on the tiles, inside the LLM, flowcut in the encoder)\n"
		"      --kv SPEC           KV-cache compression after prefill, a kvcompress --method\n"
		"                          SPEC, e.g. snapkv:ratio=0.75 or kivi4\n"
		"      --kv-ratio R        its --ratio (default 0.5, as kvcompress)\n"
		"      --list-prune, --list-kv  the methods\n"
		"Runs:\n"
		"  -o, --output FILE       the run file (records as items complete)\n"
		"      --summary FILE      write the summary there (atomically) instead of stdout\n"
		"      --resume            keep the records already in the run file, run the rest\n"
		"      --shard I/N         run only items i with i mod N = I-1 (I from 1)\n"
		"      --bootstrap N       resamples for the CIs (default 1000, at least 1000)\n"
		"      --bootstrap-seed S  their seed (default 0)\n"
		"  -v, --verbose           list unknown input fields\n"
		"      --list-formats, --list-metrics, --list-extractors\n"
		"  -h, --help  -V, --version\n"
		"Exit status: 0; 1 error; 2 usage; 3 the run finished but items failed.\n",
		prog, prog, prog, prog, prog, prog);
}

/* ---- options ---- */

enum {
	O_MMPROJ = 256, O_SUMMARY, O_FORMAT, O_METRIC, O_EXTRACT, O_MCSCORE, O_LLNORM, O_FALLBACK, O_MCPROMPT,
	O_TEMPLATE, O_NOCHAT, O_SYSTEM, O_TEMP, O_GREEDY, O_TOPK, O_TOPP, O_MINP, O_RP, O_RLN, O_STOP, O_CHUNK,
	O_KVTYPE, O_NUMERICS, O_BATCH, O_MAXPIX, O_ADROP, O_AWHITE, O_NOEXIF, O_RESUME, O_SHARD, O_BOOT, O_BOOTSEED,
	O_GOLD, O_LFORMATS, O_LMETRICS, O_LEXTRACT, O_X, O_TITLE, O_PRUNE, O_KV, O_KVRATIO, O_LPRUNE, O_LKV
};

static const struct option opts[] = {
	{"model", required_argument, 0, 'm'}, {"mmproj", required_argument, 0, O_MMPROJ},
	{"output", required_argument, 0, 'o'}, {"summary", required_argument, 0, O_SUMMARY},
	{"format", required_argument, 0, O_FORMAT}, {"metric", required_argument, 0, O_METRIC},
	{"mc-extract", required_argument, 0, O_EXTRACT}, {"mc-score", required_argument, 0, O_MCSCORE},
	{"ll-norm", required_argument, 0, O_LLNORM}, {"random-fallback", required_argument, 0, O_FALLBACK},
	{"mc-prompt", required_argument, 0, O_MCPROMPT}, {"template", required_argument, 0, O_TEMPLATE},
	{"no-chat", no_argument, 0, O_NOCHAT}, {"system", required_argument, 0, O_SYSTEM},
	{"n-predict", required_argument, 0, 'n'}, {"temp", required_argument, 0, O_TEMP},
	{"greedy", no_argument, 0, O_GREEDY}, {"top-k", required_argument, 0, O_TOPK},
	{"top-p", required_argument, 0, O_TOPP}, {"min-p", required_argument, 0, O_MINP},
	{"repeat-penalty", required_argument, 0, O_RP}, {"repeat-last-n", required_argument, 0, O_RLN},
	{"seed", required_argument, 0, 's'}, {"stop", required_argument, 0, O_STOP},
	{"threads", required_argument, 0, 't'}, {"ctx", required_argument, 0, 'c'},
	{"chunk", required_argument, 0, O_CHUNK}, {"kv-type", required_argument, 0, O_KVTYPE},
	{"numerics", required_argument, 0, O_NUMERICS}, {"batch", required_argument, 0, O_BATCH},
	{"max-pixels", required_argument, 0, O_MAXPIX}, {"alpha-drop", no_argument, 0, O_ADROP},
	{"alpha-white", no_argument, 0, O_AWHITE}, {"no-exif", no_argument, 0, O_NOEXIF},
	{"resume", no_argument, 0, O_RESUME}, {"shard", required_argument, 0, O_SHARD},
	{"bootstrap", required_argument, 0, O_BOOT}, {"bootstrap-seed", required_argument, 0, O_BOOTSEED},
	{"gold", required_argument, 0, O_GOLD}, {"verbose", no_argument, 0, 'v'},
	{"list-formats", no_argument, 0, O_LFORMATS}, {"list-metrics", no_argument, 0, O_LMETRICS},
	{"list-extractors", no_argument, 0, O_LEXTRACT}, {"x", required_argument, 0, O_X},
	{"title", required_argument, 0, O_TITLE}, {"help", no_argument, 0, 'h'},
	{"prune", required_argument, 0, O_PRUNE}, {"kv", required_argument, 0, O_KV},
	{"kv-ratio", required_argument, 0, O_KVRATIO},
	{"list-prune", no_argument, 0, O_LPRUNE}, {"list-kv", no_argument, 0, O_LKV},
	{"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};

static int find_or_die(const weft_family *f, const char *opt, const char *name)
{
	const int k = weft_family_find(f, name);
	if (k < 0)
		die("%s: %s", opt, weft_errmsg());
	return k;
}

static void parse_shard(const char *s)
{
	int i, n, k;
	if (sscanf(s, "%d/%d%n", &i, &n, &k) != 2 || s[k] || n < 1 || n > 1000000 || i < 1 || i > n)
		die("--shard: expected I/N with 1 <= I <= N, got '%s'", s);
	o.shard_i = i - 1;
	o.shard_n = n;
}

/* The options of every subcommand (each takes the ones that concern it). */
static void option(int c)
{
	weft_eval_run_opts *r = &o.run;
	switch (c) {
	case 'm': o.model = optarg; break;
	case O_MMPROJ: o.mmproj = optarg; break;
	case 'o': o.output = optarg; break;
	case O_SUMMARY: o.summary = optarg; break;
	case O_FORMAT: o.format = weft_family_at(weft_eval_readers(), (size_t)find_or_die(weft_eval_readers(), "--format", optarg))->name; break;
	case O_METRIC: o.metric = find_or_die(weft_metrics(), "--metric", optarg); break;
	case O_EXTRACT: o.score.extract = find_or_die(weft_mc_extractors(), "--mc-extract", optarg); break;
	case O_MCSCORE:
		if (strcmp(optarg, "generate") && strcmp(optarg, "likelihood"))
			die("--mc-score: '%s' is not generate or likelihood", optarg);
		r->likelihood = optarg[0] == 'l';
		break;
	case O_LLNORM:
		if (strcmp(optarg, "mean") && strcmp(optarg, "sum"))
			die("--ll-norm: '%s' is not mean or sum", optarg);
		r->ll_sum = optarg[0] == 's';
		break;
	case O_FALLBACK:
		o.score.random_fallback = 1;
		o.score.seed = (uint64_t)opt_int("--random-fallback", optarg, 0, INT64_MAX);
		break;
	case O_MCPROMPT: o.mc_prompt = optarg; break;
	case O_TEMPLATE: r->tmpl = optarg; break;
	case O_NOCHAT: r->no_chat = 1; break;
	case O_SYSTEM: r->system = optarg; break;
	case 'n': r->n_predict = opt_int("-n", optarg, 1, 1 << 20); break;
	case O_TEMP: r->sp.temp = (float)opt_real("--temp", optarg, 0, 100); break;
	case O_GREEDY: r->sp.temp = 0; break;
	case O_TOPK: r->sp.top_k = (int)opt_int("--top-k", optarg, 0, 1000000000); break;
	case O_TOPP: r->sp.top_p = (float)opt_real("--top-p", optarg, 0, 1); break;
	case O_MINP: r->sp.min_p = (float)opt_real("--min-p", optarg, 0, 1); break;
	case O_RP: r->sp.repeat_penalty = (float)opt_real("--repeat-penalty", optarg, 0.01, 100); break;
	case O_RLN: r->sp.repeat_last_n = (int)opt_int("--repeat-last-n", optarg, 0, 1 << 20); break;
	case 's': r->sp.seed = (uint64_t)opt_int("--seed", optarg, 0, INT64_MAX); break;
	case O_STOP:
		if (r->n_stops == MAX_STOPS)
			die("--stop: at most %d stop strings", MAX_STOPS);
		if (!*optarg)
			die("--stop: empty stop string");
		o.stops[r->n_stops++] = optarg;
		break;
	case 't': r->threads = (int)opt_int("--threads", optarg, 1, 1024); break;
	case 'c': r->ctx = opt_int("--ctx", optarg, 1, (int64_t)1 << 30); break;
	case O_CHUNK: r->chunk = opt_int("--chunk", optarg, 1, 1 << 20); break;
	case O_KVTYPE:
		if ((r->kv_type = weft_kv_type_parse(optarg)) < 0)
			die("--kv-type: '%s' is not f16, f32 or q8_0", optarg);
		break;
	case O_NUMERICS: r->llamacpp = opt_numerics(optarg); break;
	case O_BATCH: r->batch = (int)opt_int("--batch", optarg, 1, 4096); break;
	case O_MAXPIX: r->image.max_pixels = (uint64_t)opt_int("--max-pixels", optarg, 1, (int64_t)1 << 40); break;
	case O_ADROP: r->alpha = 1; break;
	case O_AWHITE: r->alpha = 0; break;
	case O_NOEXIF: r->image.flags |= WEFT_IMAGE_NO_EXIF; break;
	case O_RESUME: o.resume = 1; break;
	case O_SHARD: parse_shard(optarg); break;
	case O_BOOT: o.boot.resamples = (int)opt_int("--bootstrap", optarg, 1000, 10000000); break;
	case O_BOOTSEED: o.boot.seed = (uint64_t)opt_int("--bootstrap-seed", optarg, 0, INT64_MAX); break;
	case O_GOLD: o.gold = optarg; break;
	case 'v': o.verbose = 1; break;
	case O_X:
		if (strcmp(optarg, "visual") && strcmp(optarg, "kv"))
			die("--x: '%s' is not visual or kv", optarg);
		o.plot_x = optarg;
		break;
	case O_TITLE: o.title = optarg; break;
	case O_PRUNE:
		if (weft_eval_add_prune(r, optarg) != 0)
			die("%s", weft_errmsg());
		break;
	case O_KV: o.kv = optarg; break;
	case O_KVRATIO:
		o.kv_ratio = opt_real("--kv-ratio", optarg, 0, 1);
		if (o.kv_ratio >= 1)
			die("--kv-ratio: %s is not below 1 (the fraction of rows removed, 0 <= R < 1)", optarg);
		break;
	case O_LPRUNE: weft_family_list(weft_prune_family(), stdout); exit(0);
	case O_LKV: weft_family_list(weft_kvm_family(), stdout); exit(0);
	case O_LFORMATS: weft_family_list(weft_eval_readers(), stdout); exit(0);
	case O_LMETRICS: weft_family_list(weft_metrics(), stdout); exit(0);
	case O_LEXTRACT: weft_family_list(weft_mc_extractors(), stdout); exit(0);
	case 'h': usage(stdout); exit(0);
	case 'V': print_version(); break;
	default: usage(stderr); exit(2);
	}
}

/* The subcommand's name, then its options; optind at its operands. */
static const char *parse_options(int argc, char **argv)
{
	tool_init("eval-interleaved");
	const char *cmd = NULL;
	if (argc > 1 && argv[1][0] != '-') {
		cmd = argv[1];
		argv++, argc--;
	}
	int c;
	while ((c = getopt_long(argc, argv, "m:o:n:s:t:c:vhV", opts, NULL)) != -1)
		option(c);
	ops = argv + optind;
	n_ops = argc - optind;
	if (!cmd) {
		fprintf(stderr, "%s: no subcommand (run, score, summary, compare, merge, plot); see --help\n", prog);
		exit(2);
	}
	o.run.stops = o.stops;
	if (o.kv && weft_eval_add_kv(&o.run, o.kv, o.kv_ratio) != 0)
		die("%s", weft_errmsg());
	numerics_apply(o.run.llamacpp);
	return cmd;
}

/* ---- the run file's summary ---- */

/* Read a run file or die naming it. */
static void read_log(weft_eval_log *log, const char *path)
{
	if (weft_eval_log_read(log, path) != 0)
		die("%s: %s", path, weft_errmsg());
}

/* The first item that failed in this process ("id: why"), for the line
 * a run that had failures ends with. */
static char first_failure[400];

/* The summary of log (freed); *failed / *n: its failed items / items. */
static char *summary_of(weft_eval_log *log, int64_t *failed, int64_t *n)
{
	char *s = weft_eval_summary(log, &o.boot);
	if (!s)
		die("%s: %s", log->path, weft_errmsg());
	*failed = 0;
	for (int64_t i = 0; i < log->n; i++)
		*failed += log->recs[i].failed;
	*n = log->n;
	weft_eval_log_free(log);
	return s;
}

/* Exit status 3 comes with one line saying so. */
static int items_failed(const char *path, int64_t failed, int64_t n)
{
	if (!failed)
		return 0;
	fprintf(stderr, "%s: %s: %" PRId64 " of %" PRId64 " items failed; their records say why%s%s%s\n", prog, path,
		failed, n, first_failure[0] ? " (first: " : "", first_failure, first_failure[0] ? ")" : "");
	return EXIT_ITEMS_FAILED;
}

/* Summary text s (freed) to --summary (atomically) or stdout. */
static void put_summary(char *s)
{
	FILE *f = out_open(o.summary, 0, 0);
	fprintf(f, "%s\n", s);
	out_close(f);
	free(s);
}

/* The summary of the run file at path, to --summary (atomically) or
 * stdout; with report, items_failed's status and line. */
static int write_summary(const char *path, int report)
{
	weft_eval_log log;
	int64_t failed, n;
	read_log(&log, path);
	put_summary(summary_of(&log, &failed, &n));
	return report ? items_failed(path, failed, n) : 0;
}

static int64_t peak_rss_kb(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? (int64_t)ru.ru_maxrss : 0;
}

static double now_s(void) { return now_seconds(); }

/* ---- run ---- */

/* The dataset, or die naming it; -v lists its unknown fields. */
static void read_set(weft_eval_set *set, const char *path)
{
	weft_eval_read_opts ro = {.format = o.format, .metric = o.metric, .mc_prompt = o.mc_prompt};
	if (weft_eval_read(set, path, &ro) != 0)
		die("%s: %s", path, weft_errmsg());
	if (o.verbose && set->n_unknown) {
		fprintf(stderr, "%s: %s: fields ignored (%s format):", prog, path, set->format);
		for (int i = 0; i < set->n_unknown; i++)
			fprintf(stderr, "%s %s", i ? "," : "", set->unknown[i]);
		fputc('\n', stderr);
	}
}

/* The run file: new, or with --resume the existing one's records kept
 * (done[i] set for each), when it was made with the same configuration;
 * its records so far in log. */
static weft_eval_journal *open_run_file(const char *header, const weft_eval_set *set, char *done, int64_t *n_done,
					weft_eval_log *log_out)
{
	struct stat st;
	int64_t resume_at = -1;
	weft_eval_log log;
	*n_done = 0;
	if (o.resume && stat(o.output, &st) == 0 && st.st_size > 0) {
		read_log(&log, o.output);
		const char *id = strstr(header, "\"config_id\":\"");
		if (!id || strncmp(id + 13, log.config_id, 64) != 0)
			die("%s: made with another configuration (config_id %.12s...); --resume continues only the same run",
			    o.output, log.config_id);
		if (log.shard_i != o.shard_i || log.shard_n != o.shard_n)
			die("%s: shard %d/%d, not --shard %d/%d", o.output, log.shard_i + 1, log.shard_n, o.shard_i + 1,
			    o.shard_n);
		for (int64_t i = 0; i < log.n; i++) {
			const weft_eval_rec *r = &log.recs[i];
			if (done[r->index] || !set->items[r->index].id || strcmp(set->items[r->index].id, r->id) != 0)
				die("%s: record of item %" PRId64 " ('%s') %s", o.output, r->index, r->id,
				    done[r->index] ? "appears twice" : "does not match the dataset");
			done[r->index] = 1;
			(*n_done)++;
		}
		resume_at = log.good_bytes;
	} else if (weft_eval_log_init(&log, o.output, header) != 0)
		die("%s: %s", o.output, weft_errmsg());
	weft_eval_journal *j = weft_eval_journal_open(o.output, header, resume_at);
	if (!j)
		die("%s: %s", o.output, weft_errmsg());
	*log_out = log;
	return j;
}

typedef struct tally {
	int64_t done, total, failed;
	double score, t0;
} tally;

/* items done/total, items/s, ETA, running accuracy: on a terminal only */
static void progress(const tally *t, int last)
{
	static int tty = -1; /* asked once, not per item */
	if (tty < 0)
		tty = isatty(STDERR_FILENO);
	if (!tty)
		return;
	const double dt = now_s() - t->t0, rate = dt > 0 ? t->done / dt : 0;
	const double eta = rate > 0 ? (t->total - t->done) / rate : 0;
	fprintf(stderr, "\r%s: %" PRId64 "/%" PRId64 " items, %.2f items/s, ETA %d:%02d, accuracy %.3f, %" PRId64 " failed  ",
		prog, t->done, t->total, rate, (int)eta / 60, (int)eta % 60, t->done ? t->score / t->done : 0.0,
		t->failed);
	if (last)
		fputc('\n', stderr);
}

/* Run, score and record one item. */
static void run_one(weft_eval_runner *r, const weft_eval_set *set, const weft_eval_item *it, weft_eval_journal *j,
		    weft_eval_log *log, tally *t)
{
	weft_eval_out out;
	weft_score sc = {0};
	int ok = weft_eval_run_item(r, set, it, &out) == 0;
	if (ok && (out.choice >= 0 ? weft_metric_score_choice(it, out.choice, &sc)
				   : weft_metric_score(it, out.text, out.text_len, &o.score, &sc)) != 0)
		die("%s", weft_errmsg());
	const int64_t rss = peak_rss_kb();
	char *line = weft_eval_record_kept(log, it, &out, out.text, out.text_len, ok ? &sc : NULL,
					   ok ? NULL : out.error, rss);
	if (!line || weft_eval_journal_write(j, line) != 0)
		die("%s: %s", o.output, weft_errmsg());
	if (!ok && !first_failure[0])
		snprintf(first_failure, sizeof first_failure, "%s: %s", it->id, out.error ? out.error : "failed");
	t->done++;
	t->failed += !ok;
	t->score += ok ? sc.score : 0;
	free(line);
	free(sc.extracted);
	weft_eval_out_free(&out);
}

/* The models load on a second thread while the dataset is read (neither
 * needs the other): a third of a millisecond of a tiny model's run. */
typedef struct loader {
	weft_eval_runner *r;
	char err[1024];
} loader;

static void *load_models(void *arg)
{
	loader *l = arg;
	if (!(l->r = weft_eval_runner_new(o.model, o.mmproj, &o.run)))
		snprintf(l->err, sizeof l->err, "%s", weft_errmsg());
	return NULL;
}

static int cmd_run(void)
{
	if (n_ops != 1)
		die("run: expected one BENCH file, got %d", n_ops);
	if (!o.model)
		die("run: no model given (-m MODEL.gguf); see --help");
	if (!o.output)
		die("run: no run file given (-o RUN.jsonl; records are written there as items complete)");
	out_check(o.output);
	if (o.summary)
		out_check(o.summary);
	loader ld = {0};
	pthread_t th;
	const int threaded = pthread_create(&th, NULL, load_models, &ld) == 0;
	weft_eval_set set;
	read_set(&set, ops[0]); /* a bad dataset is still reported first */
	if (threaded)
		pthread_join(th, NULL);
	else
		load_models(&ld);
	weft_eval_runner *r = ld.r;
	if (!r)
		die("%s", ld.err);
	weft_eval_config c = {.kind = "run", .set = &set, .model = o.model, .mmproj = o.mmproj, .runner = r,
			      .run = &o.run, .score = &o.score, .metric = o.metric, .mc_prompt = o.mc_prompt,
			      .shard_i = o.shard_i, .shard_n = o.shard_n};
	char *header = weft_eval_header(&c), *done = calloc((size_t)set.n, 1);
	if (!header || !done)
		die("out of memory");
	tally t = {.t0 = now_s(), .total = weft_eval_shard_items(set.n, o.shard_i, o.shard_n)};
	int64_t skipped;
	weft_eval_log log;
	weft_eval_journal *j = open_run_file(header, &set, done, &skipped, &log);
	t.total -= skipped;
	for (int64_t i = 0; i < set.n; i++) {
		if (!weft_eval_in_shard(i, o.shard_i, o.shard_n) || done[i])
			continue;
		run_one(r, &set, &set.items[i], j, &log, &t);
		progress(&t, 0);
	}
	progress(&t, 1);
	weft_eval_journal_finish(j); /* the last records sync while the summary is computed */
	free(header);
	free(done);
	weft_eval_runner_free(r);
	weft_eval_stages_free(&o.run);
	weft_eval_set_free(&set);
	int64_t failed, n;
	char *s = summary_of(&log, &failed, &n);
	if (weft_eval_journal_close(j) != 0) /* the run file on disk before its summary */
		die("%s: %s", o.output, weft_errmsg());
	put_summary(s);
	return items_failed(o.output, failed, n);
}

/* ---- score ---- */

static int cmd_score(void)
{
	if (n_ops != 1 || !o.gold)
		die("score: expected PREDS.jsonl --gold BENCH -o RUN.jsonl; see --help");
	if (!o.output)
		die("score: no run file given (-o RUN.jsonl)");
	out_check(o.output);
	weft_eval_set set;
	read_set(&set, o.gold);
	char **preds;
	size_t *lens;
	weft_eval_config c = {.kind = "score", .set = &set, .preds = ops[0], .score = &o.score, .metric = o.metric,
			      .mc_prompt = o.mc_prompt, .shard_n = 1};
	if (weft_eval_read_preds(&set, ops[0], &preds, &lens, c.preds_sha256) != 0)
		die("%s: %s", ops[0], weft_errmsg());
	char *header = weft_eval_header(&c);
	if (!header)
		die("%s", weft_errmsg());
	FILE *f = out_open(o.output, 0, 0);
	fputs(header, f);
	for (int64_t i = 0; i < set.n; i++) {
		const weft_eval_item *it = &set.items[i];
		weft_score sc = {0};
		const char *err = it->error ? it->error : !preds[i] ? "no prediction" : NULL;
		if (err && !first_failure[0])
			snprintf(first_failure, sizeof first_failure, "%s: %s", it->id, err);
		if (!err && weft_metric_score(it, preds[i], lens[i], &o.score, &sc) != 0)
			die("%s", weft_errmsg());
		char *line = weft_eval_record(it, NULL, preds[i], lens[i], err ? NULL : &sc, err, 0);
		if (!line)
			die("%s", weft_errmsg());
		fputs(line, f);
		free(line);
		free(sc.extracted);
		free(preds[i]);
	}
	out_close(f);
	free(preds);
	free(lens);
	free(header);
	weft_eval_set_free(&set);
	return write_summary(o.output, 1);
}

/* ---- summary, compare, merge, plot ---- */

static int cmd_summary(void)
{
	if (n_ops != 1)
		die("summary: expected one RUN.jsonl, got %d", n_ops);
	if (o.output && !o.summary)
		o.summary = o.output;
	write_summary(ops[0], 0);
	return 0;
}

static int cmd_compare(void)
{
	if (n_ops != 2)
		die("compare: expected two run files A.jsonl B.jsonl, got %d", n_ops);
	weft_eval_log a, b;
	read_log(&a, ops[0]);
	read_log(&b, ops[1]);
	char *s = weft_eval_compare(&a, &b, &o.boot);
	if (!s)
		die("%s", weft_errmsg());
	FILE *f = out_open(o.output, 0, 0);
	fprintf(f, "%s\n", s);
	out_close(f);
	free(s);
	weft_eval_log_free(&a);
	weft_eval_log_free(&b);
	return 0;
}

static int cmd_merge(void)
{
	if (n_ops < 1 || !o.output)
		die("merge: expected SHARD.jsonl... -o RUN.jsonl");
	weft_eval_log *logs = calloc((size_t)n_ops, sizeof *logs), **pl = calloc((size_t)n_ops, sizeof *pl);
	if (!logs || !pl)
		die("out of memory");
	for (int i = 0; i < n_ops; i++) {
		read_log(&logs[i], ops[i]);
		if (logs[i].torn)
			die("%s: its last record is cut short (the run was killed): finish it with --resume", ops[i]);
		pl[i] = &logs[i];
	}
	FILE *f = out_open(o.output, 0, 0);
	if (weft_eval_merge(pl, n_ops, f) != 0)
		die("%s", weft_errmsg());
	out_close(f);
	for (int i = 0; i < n_ops; i++)
		weft_eval_log_free(&logs[i]);
	free(logs);
	free(pl);
	return write_summary(o.output, 1);
}

static int cmd_plot(void)
{
	if (n_ops < 1 || !o.output)
		die("plot: expected SUMMARY.json... -o PLOT.png");
	out_check(o.output);
	if (weft_eval_plot((const char *const *)ops, n_ops, o.plot_x, o.title, o.output) != 0)
		die("%s", weft_errmsg());
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = parse_options(argc, argv);
	static const struct {
		const char *name;
		int (*fn)(void);
	} cmds[] = {{"run", cmd_run},		{"score", cmd_score}, {"summary", cmd_summary},
		    {"compare", cmd_compare}, {"merge", cmd_merge}, {"plot", cmd_plot}};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			return cmds[i].fn();
	fprintf(stderr, "%s: unknown subcommand '%s' (run, score, summary, compare, merge, plot); see --help\n", prog, cmd);
	return 2;
}

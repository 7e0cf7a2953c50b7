/* decode - generate text from a KV cache and logits written by prefill
 * (man 1 decode). */
#include <getopt.h>
#include <inttypes.h>

#include "common.h"
#include "gguf.h"
#include "keys.h"
#include "kvstream.h"
#include "model.h"
#include "generate.h"
#include "sample.h"
#include "tokenizer.h"

#define MAX_STOPS 16
#define MAX_NEW (1 << 20)

static struct {
	const char *model, *kv_out;
	const char *device; /* --device, else $WEFT_DEVICE */
	int threads, verbose, ignore_eos, tokens_out, force, n_stops, llamacpp;
	int dev; /* -1: cpu, else the CUDA device */
	int64_t n;
	const char *stops[MAX_STOPS];
	weft_sampler_params sp;
} o = {.n = 128, .sp = {.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
			.repeat_last_n = 64, .seed = 0}};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s -m MODEL.gguf [OPTIONS] [FILE]\n"
		"Read a KV cache and logits (from prefill) and generate text.\n"
		"\n"
		"  -m, --model FILE        GGUF model the cache was made with\n"
		"  -n, --n-predict N       tokens to generate (default 128; max %d)\n"
		"      --temp T            temperature (default 0.8; 0 = greedy)\n"
		"      --greedy            same as --temp 0\n"
		"      --top-k K           (default 40; 0 = off)\n"
		"      --top-p P           (default 0.95; 1 = off)\n"
		"      --min-p P           (default 0.05; 0 = off)\n"
		"      --repeat-penalty R  (default 1.0 = off)\n"
		"      --repeat-last-n N   history the penalty sees (default 64)\n"
		"  -s, --seed S            random seed (default 0)\n"
		"      --stop TEXT         stop when TEXT is generated (repeatable, max %d)\n"
		"      --ignore-eos        do not stop at end-of-generation tokens\n"
		"      --tokens            write a tokens stream of the generated ids, not text\n"
		"      --kv-out FILE       write the extended cache + logits to FILE for another turn\n"
		"  -t, --threads N         threads (default: all CPUs)\n"
		"      --numerics NAME     weft (default) or llama.cpp: reproduce llama.cpp's\n"
		"                          arithmetic bit for bit (Q4_0/Q4_1/Q8_0, f16 cache)\n"
		"      --device DEV        cpu (default; or $WEFT_DEVICE) or cuda[:N]: the LLM on\n"
		"                          CUDA device N (make CUDA=1; not yet run on a GPU)\n"
		"      --force             write a binary stream to a terminal\n"
		"  -v, --verbose           timing on stderr\n"
		"  -h, --help              this help\n"
		"  -V, --version           version\n",
		prog, MAX_NEW, MAX_STOPS);
}

/* Generated text to standard output as it becomes final. */
static int print_text(void *ctx, const char *s, size_t n)
{
	fwrite(s, 1, n, stdout);
	flush_or_die(stdout, "<stdout>"); /* stream the text, and stop at a full disk */
	return 0;
}

static void parse_options(int argc, char **argv)
{
	enum { O_TEMP = 256, O_GREEDY, O_TOPK, O_TOPP, O_MINP, O_RP, O_RLN, O_STOP, O_IEOS, O_TOK, O_KVOUT, O_FORCE, O_NUMERICS, O_DEVICE };
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},          {"n-predict", required_argument, 0, 'n'},
		{"temp", required_argument, 0, O_TEMP},        {"greedy", no_argument, 0, O_GREEDY},
		{"top-k", required_argument, 0, O_TOPK},       {"top-p", required_argument, 0, O_TOPP},
		{"min-p", required_argument, 0, O_MINP},       {"repeat-penalty", required_argument, 0, O_RP},
		{"repeat-last-n", required_argument, 0, O_RLN}, {"seed", required_argument, 0, 's'},
		{"stop", required_argument, 0, O_STOP},        {"ignore-eos", no_argument, 0, O_IEOS},
		{"tokens", no_argument, 0, O_TOK},             {"kv-out", required_argument, 0, O_KVOUT},
		{"threads", required_argument, 0, 't'},        {"force", no_argument, 0, O_FORCE},
		{"numerics", required_argument, 0, O_NUMERICS}, {"device", required_argument, 0, O_DEVICE},
		{"verbose", no_argument, 0, 'v'},              {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},              {0, 0, 0, 0}};
	tool_init("decode");
	int c;
	while ((c = getopt_long(argc, argv, "m:n:s:t:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'm': o.model = optarg; break;
		case 'n': o.n = opt_int("-n", optarg, 0, MAX_NEW); break;
		case O_TEMP: o.sp.temp = (float)opt_real("--temp", optarg, 0, 100); break;
		case O_GREEDY: o.sp.temp = 0; break;
		case O_TOPK: o.sp.top_k = (int)opt_int("--top-k", optarg, 0, 1000000000); break;
		case O_TOPP: o.sp.top_p = (float)opt_real("--top-p", optarg, 0, 1); break;
		case O_MINP: o.sp.min_p = (float)opt_real("--min-p", optarg, 0, 1); break;
		case O_RP: o.sp.repeat_penalty = (float)opt_real("--repeat-penalty", optarg, 0.01, 100); break;
		case O_RLN: o.sp.repeat_last_n = (int)opt_int("--repeat-last-n", optarg, 0, 1 << 20); break;
		case 's': o.sp.seed = (uint64_t)opt_int("--seed", optarg, 0, INT64_MAX); break;
		case O_STOP:
			if (o.n_stops == MAX_STOPS)
				die("--stop: at most %d stop strings", MAX_STOPS);
			if (!*optarg)
				die("--stop: empty stop string");
			o.stops[o.n_stops++] = optarg;
			break;
		case O_IEOS: o.ignore_eos = 1; break;
		case O_TOK: o.tokens_out = 1; break;
		case O_KVOUT: o.kv_out = optarg; break;
		case 't': o.threads = (int)opt_int("--threads", optarg, 1, 1024); break;
		case O_FORCE: o.force = 1; break;
		case O_NUMERICS: o.llamacpp = opt_numerics(optarg); break;
		case O_DEVICE: o.device = optarg; break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': print_version(); break;
		default: usage(stderr); exit(2);
		}
	}
	o.dev = o.device ? opt_device("--device", o.device) : device_default();
	const char *const what = "--numerics llama.cpp";
	device_refuse(o.dev, 1, &o.llamacpp, &what);
	device_apply(o.dev);
	numerics_apply(o.llamacpp);
	if (!o.model)
		die("no model given (-m MODEL.gguf); see --help");
	if (optind + 1 < argc)
		die("at most one input FILE");
}

/* The input: a KV cache and its logits (other frames are passed on to out
 * with --tokens). */
static void read_input(weft_reader *r, const char *inname, const weft_model *m, weft_kv_in *kin, FILE *out)
{
	weft_frame *f;
	int rc;
	while ((rc = weft_reader_next(r, &f)) == 1) {
		const char *kind = weft_frame_kind(f);
		if (strcmp(kind, WEFT_KIND_TOKENS) == 0 || strcmp(kind, WEFT_KIND_IMAGE) == 0)
			die("%s: frame %" PRIu64 ": %s frame before decode: run prefill first", inname, f->index, kind);
		int took = weft_kv_read(kin, m, f);
		if (took < 0)
			die("%s: %s", inname, weft_errmsg());
		if (took == 0 && o.tokens_out && weft_frame_write_raw(out, f) != 0)
			die_lib("<stdout>");
		weft_frame_free(f);
	}
	stream_done(r, rc, inname);
	if (weft_kv_read_end(kin, m, 1) != 0) {
		if (!kin->kv)
			die("%s: no KV cache in the input (pipe prefill's output into decode)", inname);
		die("%s: %s", inname, weft_errmsg());
	}
	const int64_t ctx = m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : INT64_MAX;
	if (kin->kv->n_past + o.n > ctx)
		die("%s: context length exceeded: %" PRId64 " cached + -n %" PRId64 " > context %" PRId64, inname,
		    kin->kv->n_past, o.n, ctx);
}

/* The generated ids as a tokens frame. */
static void write_tokens(FILE *out, const weft_vocab *voc, const int32_t *gen, int64_t n_gen)
{
	char fp[17];
	weft_fingerprint_hex(weft_vocab_fingerprint(voc), fp);
	weft_frame *tf = weft_frame_new(WEFT_KIND_TOKENS);
	int64_t shape[1] = {n_gen};
	if (!tf || weft_frame_set(tf, WEFT_KEY_VOCAB, fp) || !weft_frame_add(tf, "ids", WEFT_DT_I32, 1, shape, gen) ||
	    weft_frame_write(out, tf) != 0)
		die_lib("<stdout>");
	weft_frame_free(tf);
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	if (o.kv_out)
		out_check(o.kv_out); /* before the model runs */
	tool_model tm = load_model(o.model);
	check_numerics(o.llamacpp, &tm, o.model);
	const weft_model *m = tm.m;
	const weft_vocab *voc = tm.voc;

	const char *inname;
	FILE *in = in_open(optind < argc ? argv[optind] : "-", &inname);
	weft_reader *r = stream_open(in);
	FILE *out = o.tokens_out ? out_open(NULL, 1, o.force) : stdout;
	if (!o.tokens_out && isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOLBF, 0);
	weft_kv_in kin = {.extra_cap = o.n + 1, .want_llamacpp = o.llamacpp};
	read_input(r, inname, m, &kin, out);
	weft_kv *kv = kin.kv;
	float *logits = kin.logits;
	device_attach(o.dev, m, kv, o.model); /* uploaded once; back only for --kv-out */

	weft_pool *pool = weft_pool_new(o.threads);
	if (!pool)
		die_lib(NULL);
	/* stop strings apply to text (--tokens writes every token) */
	weft_gen_opts go = {.n_predict = o.n, .ignore_eos = o.ignore_eos, .stops = o.tokens_out ? NULL : o.stops,
			    .n_stops = o.tokens_out ? 0 : o.n_stops, .sp = o.sp, .finish_cache = o.kv_out != NULL,
			    .on_text = o.tokens_out ? NULL : print_text};
	weft_gen_result gr;
	if (weft_generate(m, voc, pool, kv, logits, kin.hist, kin.n_hist, &go, &gr) != 0)
		die("%s: %s", o.model, weft_errmsg());

	if (o.tokens_out)
		write_tokens(out, voc, gr.ids, gr.n);
	if (o.kv_out) {
		int32_t *hist = realloc(kin.hist, (size_t)(kin.n_hist + gr.n + 1) * sizeof *hist);
		if (!hist)
			die("out of memory");
		memcpy(hist + kin.n_hist, gr.ids, (size_t)gr.n * sizeof *hist);
		kin.hist = hist;
		kin.n_hist += gr.n;
		device_download(o.dev, kv);
		FILE *kf = out_open(o.kv_out, 1, 1);
		weft_kv_write_args w = {.hist = hist, .n_hist = kin.n_hist, .logits = logits, .llamacpp = o.llamacpp};
		if (weft_kv_write(kf, m, kv, &w) != 0)
			die_lib(o.kv_out);
		out_close(kf);
	}
	if (o.verbose)
		fprintf(stderr, "\n%s: %" PRId64 " tokens in %.3f s (%.2f tokens/s), %d threads, kernels %s, device %s\n", prog, gr.n,
			gr.seconds, gr.n / (gr.seconds > 0 ? gr.seconds : 1e-9), weft_pool_size(pool), weft_kernels_level(),
			device_label(o.dev));
	out_close(out);
	device_detach(o.dev);

	weft_gen_result_free(&gr);
	weft_kv_in_free(&kin);
	weft_pool_free(pool);
	weft_reader_free(r);
	if (in != stdin)
		fclose(in);
	free_model(&tm);
	return 0;
}

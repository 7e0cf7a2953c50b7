/* perplexity - perplexity of a text under an LLM, by llama-perplexity's
 * procedure so the figures compare (man 1 perplexity; lib/perplexity.h). */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>

#include "common.h"
#include "gguf.h"
#include "model.h"
#include "perplexity.h"
#include "tokenizer.h"

static struct {
	const char *model, *file;
	int threads, json, verbose, llamacpp;
	int64_t ctx, chunks, batch;
} o = {.ctx = 512, .batch = 512};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s -m MODEL.gguf -f FILE [OPTIONS]\n"
		"Compute the perplexity of a text (FILE, or - for stdin) the way llama.cpp's\n"
		"llama-perplexity does: windows of --ctx tokens from a fresh cache, the second\n"
		"half of each scored.  Prints the running estimate per window, then\n"
		"\"Final estimate: PPL = X +/- Y\".\n"
		"\n"
		"  -m, --model FILE     GGUF model (arch llama or qwen2)\n"
		"  -f, --file FILE      the text (UTF-8; - reads stdin)\n"
		"  -c, --ctx N          tokens per window (default 512)\n"
		"      --chunks N       evaluate at most N windows (default: all)\n"
		"  -t, --threads N      threads (default: all CPUs)\n"
		"      --batch N        tokens per forward chunk (default 512)\n"
		"      --numerics NAME  weft (default) or llama.cpp (its arithmetic; Q4_0/Q4_1/Q8_0)\n"
		"      --json           one JSON object on stdout instead of text\n"
		"  -v, --verbose        token counts and timing on stderr\n"
		"  -h, --help           this help\n"
		"  -V, --version        version\n",
		prog);
}

typedef struct {
	double *history;
	int json;
} progress_ctx;

static void on_chunk(void *user, int chunk, int n_chunk, double ppl)
{
	progress_ctx *p = user;
	p->history[chunk - 1] = ppl;
	if (!p->json) {
		printf("[%d]%.4f,", chunk, ppl);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	enum { O_CHUNKS = 256, O_BATCH, O_JSON, O_NUMERICS };
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},     {"file", required_argument, 0, 'f'},
		{"ctx", required_argument, 0, 'c'},       {"chunks", required_argument, 0, O_CHUNKS},
		{"threads", required_argument, 0, 't'},   {"batch", required_argument, 0, O_BATCH},
		{"json", no_argument, 0, O_JSON},         {"verbose", no_argument, 0, 'v'},
		{"numerics", required_argument, 0, O_NUMERICS},
		{"help", no_argument, 0, 'h'},            {"version", no_argument, 0, 'V'},
		{0, 0, 0, 0}};
	tool_init("perplexity");
	int c;
	while ((c = getopt_long(argc, argv, "m:f:c:t:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'm': o.model = optarg; break;
		case 'f': o.file = optarg; break;
		case 'c': o.ctx = opt_int("--ctx", optarg, 3, 1 << 20); break;
		case O_CHUNKS: o.chunks = opt_int("--chunks", optarg, 1, INT32_MAX); break;
		case 't': o.threads = (int)opt_int("--threads", optarg, 1, 1024); break;
		case O_BATCH: o.batch = opt_int("--batch", optarg, 1, 1 << 20); break;
		case O_JSON: o.json = 1; break;
		case O_NUMERICS: o.llamacpp = opt_numerics(optarg); break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': print_version(); break;
		default: usage(stderr); return 2;
		}
	}
	numerics_apply(o.llamacpp);
	if (!o.model)
		die("no model given (-m MODEL.gguf); see --help");
	if (!o.file)
		die("no text given (-f FILE, or -f - for stdin); see --help");
	if (optind < argc)
		die("unexpected argument '%s' (the text is given with -f FILE)", argv[optind]);

	/* The text first: a missing file is reported before the model loads. */
	const char *inname;
	FILE *in = in_open(o.file, &inname);
	size_t len;
	char *text = read_all(in, inname, &len);
	if (in != stdin)
		fclose(in);
	/* llama.cpp's -f drops one trailing newline */
	if (len > 0 && text[len - 1] == '\n')
		len--;

	double t0 = now_seconds();
	tool_model tm = load_model(o.model);
	check_numerics(o.llamacpp, &tm, o.model);
	const weft_model *m = tm.m;
	const weft_vocab *voc = tm.voc;
	if (weft_vocab_add_eos(voc))
		die("%s: the model adds EOS to every text; llama-perplexity refuses such models too", o.model);

	int32_t *ids;
	size_t n;
	if (weft_ppl_tokenize(voc, text, len, &ids, &n) != 0)
		die("%s: %s", inname, weft_errmsg());
	free(text);
	int32_t bos = weft_vocab_add_bos(voc) ? weft_vocab_bos(voc) : -1;
	if (n < 2 * (size_t)o.ctx)
		die("%s: you need at least %" PRId64 " tokens to evaluate perplexity with a context of %" PRId64
		    "; the text tokenizes to only %zu tokens",
		    inname, 2 * o.ctx, o.ctx, n);

	weft_pool *pool = weft_pool_new(o.threads);
	if (!pool)
		die_lib(NULL);
	size_t n_chunk = n / (size_t)o.ctx;
	if (o.chunks && (size_t)o.chunks < n_chunk)
		n_chunk = (size_t)o.chunks;
	progress_ctx pc = {.history = calloc(n_chunk, sizeof(double)), .json = o.json};
	if (!pc.history)
		die("out of memory");
	if (o.verbose)
		fprintf(stderr, "%s: %zu tokens, %zu windows of %" PRId64 ", %" PRId64 " tokens scored each\n", prog, n,
			n_chunk, o.ctx, o.ctx - o.ctx / 2 - 1);
	double t1 = now_seconds();
	weft_ppl_result r;
	if (weft_perplexity(m, pool, ids, n, (int)o.ctx, (int)o.chunks, bos, o.batch, on_chunk, &pc, &r) != 0)
		die("%s: %s", o.model, weft_errmsg());
	double t2 = now_seconds();

	if (o.json) {
		printf("{\"model\":\"");
		for (const char *s = o.model; *s; s++)
			if (*s == '"' || *s == '\\')
				printf("\\%c", *s);
			else if ((unsigned char)*s < 0x20)
				printf("\\u%04x", (unsigned char)*s);
			else
				putchar(*s);
		printf("\",\"n_ctx\":%" PRId64 ",\"n_tokens\":%" PRId64 ",\"n_chunk\":%d,\"scored\":%" PRId64
		       ",\"ppl\":%.6f,\"ppl_err\":%.6f,\"mean_nll\":%.9f,\"chunk_ppl\":[",
		       o.ctx, r.n_tokens, r.n_chunk, r.count, r.ppl, r.ppl_err, r.nll / (double)r.count);
		for (int i = 0; i < r.n_chunk; i++)
			printf("%s%.6f", i ? "," : "", pc.history[i]);
		printf("]}\n");
	} else {
		printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
	}
	out_close(stdout);
	if (o.verbose)
		fprintf(stderr, "%s: load %.3f s; %d windows in %.3f s (%.1f tokens/s), %d threads, kernels %s\n", prog,
			t1 - t0, r.n_chunk, t2 - t1, r.n_chunk * (double)o.ctx / (t2 - t1), weft_pool_size(pool),
			weft_kernels_level());

	free(pc.history);
	free(ids);
	weft_pool_free(pool);
	free_model(&tm);
	return 0;
}

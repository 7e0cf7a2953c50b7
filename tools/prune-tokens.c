/* prune-tokens - keep a budget of an image's visual tokens by a pruning
 * method (man 1 prune-tokens): between encode-image and prefill it
 * rewrites the embd frames (kept rows, merged rows, the record of both);
 * for a method that acts inside the LLM it adds a directive prefill
 * honours.  Every other frame passes through unchanged. */
#include <getopt.h>
#include <inttypes.h>

#include "common.h"
#include "embd.h"
#include "keys.h"
#include "prune.h"

static struct {
	weft_prune_opts p;
	const char *model, *output;
	char params[1024];
	int force, verbose, list, have_budget, threads;
} o;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s --method NAME (--keep N | --ratio R) [OPTIONS] [FILE]\n"
		"Read a weft stream (FILE or stdin) from encode-image and keep a budget of\n"
		"each image's visual tokens, chosen by a pruning method: the embd frames are\n"
		"rewritten with the kept (and merged) rows and a record of them; a method that\n"
		"acts inside the LLM (fastv, pdrop, sparsevlm, dart) adds a directive that\n"
		"prefill honours.  Other frames pass through unchanged.\n"
		"\n"
		"      --method NAME     the pruning method (--list shows them)\n"
		"      --keep N          visual tokens kept per unit (N >= 1)\n"
		"      --ratio R         or the fraction of them kept, 0 < R <= 1\n"
		"      --scope S         the unit a budget counts: image (default: an image's\n"
		"                        tiles together), tile, or global (the whole prompt)\n"
		"      --positions P     keep (default: kept tokens stay at their positions)\n"
		"                        or repack (positions renumbered)\n"
		"  -P, --param K=V       a method parameter (repeatable; lists joined by '/')\n"
		"  -m, --model FILE      the LLM GGUF (cdpruner: the prompt's text embeddings)\n"
		"  -t, --threads N       threads (default: all CPUs)\n"
		"      --list            list the methods, their parameters and needs\n"
		"  -o, --output FILE     write to FILE (atomically) instead of stdout\n"
		"      --force           write binary output to a terminal\n"
		"  -v, --verbose         what was kept, and timing, on stderr\n"
		"  -h, --help            this help\n"
		"  -V, --version         version\n",
		prog);
}

static void parse_options(int argc, char **argv)
{
	enum { O_METHOD = 256, O_KEEP, O_RATIO, O_SCOPE, O_POSITIONS, O_LIST, O_FORCE };
	static const struct option opts[] = {
		{"method", required_argument, 0, O_METHOD}, {"keep", required_argument, 0, O_KEEP},
		{"ratio", required_argument, 0, O_RATIO},   {"scope", required_argument, 0, O_SCOPE},
		{"positions", required_argument, 0, O_POSITIONS}, {"param", required_argument, 0, 'P'},
		{"model", required_argument, 0, 'm'},       {"list", no_argument, 0, O_LIST},
		{"threads", required_argument, 0, 't'},
		{"output", required_argument, 0, 'o'},      {"force", no_argument, 0, O_FORCE},
		{"verbose", no_argument, 0, 'v'},           {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},           {0, 0, 0, 0}};
	tool_init("prune-tokens");
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "P:m:t:o:vhV", opts, NULL)) != -1) {
		switch (c) {
		case O_METHOD: o.p.method = optarg; break;
		case O_KEEP:
			o.p.keep = strtoll(optarg, &end, 10);
			if (!*optarg || *end || o.p.keep < 0)
				die("--keep: expected a count of tokens, got '%s'", optarg);
			if (o.p.keep == 0)
				die("--keep 0: a budget of 0 tokens keeps nothing");
			o.p.ratio = 0, o.have_budget = 1;
			break;
		case O_RATIO:
			o.p.ratio = strtod(optarg, &end);
			if (!*optarg || *end || !(o.p.ratio > 0.0 && o.p.ratio <= 1.0))
				die("--ratio: '%s' is not in (0, 1]%s", optarg,
				    *optarg && !*end && o.p.ratio == 0.0 ? " (a budget of 0 tokens keeps nothing)" : "");
			o.p.keep = 0, o.have_budget = 1;
			break;
		case O_SCOPE:
			if (strcmp(optarg, "image") == 0) o.p.scope = WEFT_PRUNE_IMAGE;
			else if (strcmp(optarg, "tile") == 0) o.p.scope = WEFT_PRUNE_TILE;
			else if (strcmp(optarg, "global") == 0) o.p.scope = WEFT_PRUNE_GLOBAL;
			else die("--scope: '%s' is not image, tile or global", optarg);
			break;
		case O_POSITIONS:
			if (strcmp(optarg, "keep") && strcmp(optarg, "repack"))
				die("--positions: '%s' is not keep or repack", optarg);
			o.p.repack = strcmp(optarg, "repack") == 0;
			break;
		case 'P':
			if (strlen(o.params) + strlen(optarg) + 2 > sizeof o.params)
				die("--param: too many parameters");
			if (*o.params)
				strcat(o.params, ",");
			strcat(o.params, optarg);
			break;
		case 'm': o.model = optarg; break;
		case 't': o.threads = (int)opt_int("--threads", optarg, 1, 1024); break;
		case O_LIST: o.list = 1; break;
		case 'o': o.output = optarg; break;
		case O_FORCE: o.force = 1; break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': print_version(); break;
		default: usage(stderr); exit(2);
		}
	}
	if (o.list) {
		weft_family_list(weft_prune_family(), stdout);
		exit(0);
	}
	if (!o.p.method)
		die("no method given (--method NAME; --list shows them)");
	o.p.params = o.params;
	if (weft_prune_check(&o.p) != 0)
		die("%s", weft_errmsg());
	if (weft_prune_stage_of(o.p.method) == WEFT_PRUNE_AT_ENCODER)
		die("%s prunes inside the vision encoder: run encode-image --prune %s instead", o.p.method, o.p.method);
	if (optind + 1 < argc)
		die("at most one input FILE");
}

/* The whole stream (embd frames are a few MB each), in order. */
static weft_frame **read_frames(FILE *in, const char *inname, size_t *n_out)
{
	weft_reader *r = stream_open(in);
	weft_frame **fr = NULL, *f;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = weft_reader_next(r, &f)) == 1) {
		if (n == cap && !(fr = realloc(fr, (cap = cap ? 2 * cap : 64) * sizeof *fr)))
			die("out of memory");
		fr[n++] = f;
	}
	stream_done(r, rc, inname);
	weft_reader_free(r);
	*n_out = n;
	return fr;
}

/* cdpruner's condition: the embeddings of the prompt's text tokens. */
static float *text_embeddings(const tool_model *tm, weft_frame **fr, size_t n, const char *inname, int64_t *n_text)
{
	int32_t *ids = NULL;
	int64_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(weft_frame_kind(fr[i]), WEFT_KIND_TOKENS) != 0)
			continue;
		if (weft_frame_check_fp(fr[i], WEFT_KEY_VOCAB, weft_vocab_fingerprint(tm->voc)) != 0)
			die("%s: %s", inname, weft_errmsg());
		const weft_tensor *t = weft_frame_tensor(fr[i], "ids");
		if (!t || t->dtype != WEFT_DT_I32 || t->ndim != 1)
			die("%s: frame %" PRIu64 ": tokens frame without an I32 'ids' vector", inname, fr[i]->index);
		if (!(ids = realloc(ids, (size_t)(k + (int64_t)t->nelem + 1) * sizeof *ids)))
			die("out of memory");
		memcpy(ids + k, t->data, t->nelem * sizeof *ids);
		k += (int64_t)t->nelem;
	}
	float *x = weft_prune_text(tm->m, tm->voc, ids, k, n_text);
	if (!x)
		die("%s: %s", inname, weft_errmsg());
	free(ids);
	return x;
}

/* Prune the embd frames of fr (an embd-stage method) and write the
 * stream. */
static void prune_embd(weft_frame **fr, size_t n, const char *inname, FILE *out)
{
	weft_embd_tile *tiles = calloc(n ? n : 1, sizeof *tiles);
	size_t *at = calloc(n ? n : 1, sizeof *at);
	if (!tiles || !at)
		die("out of memory");
	int nt = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(weft_frame_kind(fr[i]), WEFT_KIND_EMBD) == 0) {
			if (weft_embd_read(fr[i], &tiles[nt]) != 0)
				die("%s: %s", inname, weft_errmsg());
			at[nt++] = i;
		}
	if (nt == 0 && o.verbose)
		fprintf(stderr, "%s: %s: no embd frames: the stream passes through unchanged\n", prog, inname);
	tool_model tm = {0};
	float *text = NULL;
	if (o.model && nt) {
		tm = load_model(o.model);
		text = text_embeddings(&tm, fr, n, inname, &o.p.n_text);
		if (tiles[0].n_embd != tm.m->hp.n_embd)
			die("%s: embeddings of width %" PRId64 " do not match %s's n_embd %d (another model's mmproj?)", inname,
			    tiles[0].n_embd, o.model, tm.m->hp.n_embd);
		o.p.text = text;
	}
	weft_prune_out *res = calloc((size_t)(nt ? nt : 1), sizeof *res);
	if (!res || (nt && !(o.p.pool = weft_pool_new(o.threads))))
		die("out of memory");
	const double t0 = now_seconds();
	if (nt && weft_prune_tiles(&o.p, tiles, nt, res) != 0)
		die("%s: %s", inname, weft_errmsg());
	const double t1 = now_seconds();
	int64_t before = 0, after = 0;
	for (size_t i = 0, k = 0; i < n; i++) {
		if (k < (size_t)nt && at[k] == i) {
			before += tiles[k].n_tokens;
			after += res[k].tile.n_tokens;
			if (o.verbose && res[k].passed)
				fprintf(stderr, "%s: image %d tile %d: within the budget, passed through\n", prog, tiles[k].image,
					tiles[k].tile);
			weft_frame *e = res[k].passed ? NULL : weft_embd_frame(&res[k].tile);
			if (res[k].passed ? weft_frame_write_raw(out, fr[i]) != 0 : !e || weft_frame_write(out, e) != 0)
				die_lib(out_name);
			weft_frame_free(e);
			weft_prune_out_free(&res[k++]);
		} else if (weft_frame_write_raw(out, fr[i]) != 0) {
			die_lib(out_name);
		}
	}
	if (o.verbose && nt)
		fprintf(stderr, "%s: %s: %d tiles, %" PRId64 " -> %" PRId64 " visual tokens in %.3f ms\n", prog,
			weft_prune_describe(&o.p), nt, before, after, (t1 - t0) * 1e3);
	free(res);
	weft_pool_free(o.p.pool);
	free(text);
	free(tiles);
	free(at);
	if (tm.g)
		free_model(&tm);
}

/* An LLM-stage method: the stream with the directive after it. */
static void add_directive(weft_frame **fr, size_t n, const char *inname, FILE *out)
{
	size_t n_embd = 0;
	for (size_t i = 0; i < n; i++) {
		const char *k = weft_frame_kind(fr[i]);
		if (strcmp(k, WEFT_KIND_PRUNE) == 0)
			die("%s: frame %" PRIu64 ": the stream already carries an in-LLM pruning directive (%s)", inname,
			    fr[i]->index, weft_frame_get(fr[i], WEFT_KEY_PRUNED) ? weft_frame_get(fr[i], WEFT_KEY_PRUNED) : "?");
		if (strcmp(k, WEFT_KIND_EMBD) == 0) {
			weft_embd_tile t;
			if (weft_embd_read(fr[i], &t) != 0)
				die("%s: %s", inname, weft_errmsg());
			n_embd++;
		}
		if (weft_frame_write_raw(out, fr[i]) != 0)
			die_lib(out_name);
	}
	if (!n_embd) {
		if (o.verbose)
			fprintf(stderr, "%s: %s: no embd frames: the stream passes through unchanged\n", prog, inname);
		return;
	}
	weft_frame *d = weft_prune_directive(&o.p);
	if (!d || weft_frame_write(out, d) != 0)
		die_lib(out_name);
	if (o.verbose)
		fprintf(stderr, "%s: directive for prefill: %s\n", prog, weft_frame_get(d, WEFT_KEY_PRUNED));
	weft_frame_free(d);
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	const int llm = weft_prune_stage_of(o.p.method) == WEFT_PRUNE_AT_LLM;
	const char *inname;
	FILE *in = in_open(optind < argc ? argv[optind] : "-", &inname);
	FILE *out = out_open(o.output, 1, o.force);
	size_t n;
	weft_frame **fr = read_frames(in, inname, &n);
	if (llm)
		add_directive(fr, n, inname, out);
	else
		prune_embd(fr, n, inname, out);
	out_close(out);
	for (size_t i = 0; i < n; i++)
		weft_frame_free(fr[i]);
	free(fr);
	if (in != stdin)
		fclose(in);
	return 0;
}

/* prefill - run a prompt (tokens stream) through an LLM and write its KV
 * cache, per layer, plus the next-token logits (man 1 prefill). */
#include <getopt.h>
#include <inttypes.h>

#include "common.h"
#include "gguf.h"
#include "kvstream.h"
#include "model.h"
#include "tokenizer.h"

static struct {
	const char *model, *output;
	int threads, force, verbose, mass;
	int64_t chunk, ctx, window_q;
} o = {.chunk = 512};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s -m MODEL.gguf [OPTIONS] [FILE]\n"
		"Read a weft tokens stream (FILE or stdin), run it through the model and\n"
		"write the KV cache (a kvcache frame, one kv frame per layer) and the\n"
		"next-token logits.  A KV cache in the input is extended (multi-turn).\n"
		"\n"
		"  -m, --model FILE     GGUF model (arch llama or qwen2)\n"
		"  -t, --threads N      threads (default: all CPUs)\n"
		"      --chunk N        tokens per forward chunk (default 512)\n"
		"  -c, --ctx N          context limit (default: the model's training context)\n"
		"      --mass           write per-layer attention mass received per token\n"
		"      --window-q N     write the last N tokens' queries per layer\n"
		"  -o, --output FILE    write to FILE (atomically) instead of stdout\n"
		"      --force          write binary output to a terminal\n"
		"  -v, --verbose        timing on stderr\n"
		"  -h, --help           this help\n"
		"  -V, --version        version\n",
		prog);
}

int main(int argc, char **argv)
{
	enum { O_CHUNK = 256, O_MASS, O_WINQ, O_FORCE };
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},  {"threads", required_argument, 0, 't'},
		{"chunk", required_argument, 0, O_CHUNK}, {"ctx", required_argument, 0, 'c'},
		{"mass", no_argument, 0, O_MASS},      {"window-q", required_argument, 0, O_WINQ},
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
		case O_WINQ: o.window_q = opt_int("--window-q", optarg, 1, 1 << 16); break;
		case 'o': o.output = optarg; break;
		case O_FORCE: o.force = 1; break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': print_version(); break;
		default: usage(stderr); return 2;
		}
	}
	if (!o.model)
		die("no model given (-m MODEL.gguf); see --help");
	if (optind + 1 < argc)
		die("at most one input FILE");

	double t0 = now_seconds();
	tool_model tm = load_model(o.model);
	const weft_model *m = tm.m;
	const weft_vocab *voc = tm.voc;
	uint64_t vocab_fp = weft_vocab_fingerprint(voc);
	const weft_hparams *hp = &m->hp;
	int64_t ctx = o.ctx ? o.ctx : (hp->n_ctx_train > 0 ? hp->n_ctx_train : 4096);

	const char *inname;
	FILE *in = in_open(optind < argc ? argv[optind] : "-", &inname);
	FILE *out = out_open(o.output, 1, o.force);
	weft_reader *r = weft_reader_new(in);
	if (!r)
		die_lib(NULL);

	/* Gather the prompt: tokens to run, and any cache to extend. */
	weft_kv *kv = NULL;
	int32_t *hist = NULL, *ids = NULL;
	int64_t n_hist = 0, n_ids = 0, cap_ids = 0;
	int next_layer = 0;
	weft_frame *f;
	int rc;
	while ((rc = weft_reader_next(r, &f)) == 1) {
		const char *kind = weft_frame_kind(f);
		if (strcmp(kind, "tokens") == 0) {
			const weft_tensor *t = weft_frame_tensor(f, "ids");
			if (weft_frame_check_fp(f, "weft.vocab", vocab_fp) != 0)
				die("%s: %s (tokenized for another model?)", inname, weft_errmsg());
			if (!t || t->dtype != WEFT_DT_I32 || t->ndim != 1)
				die("%s: frame %" PRIu64 ": tokens frame without an I32 'ids' vector", inname, f->index);
			const int32_t *src = t->data;
			for (uint64_t i = 0; i < t->nelem; i++) {
				if (src[i] < 0 || src[i] >= hp->n_vocab)
					die("%s: frame %" PRIu64 ": token id %" PRId32 " out of range (vocabulary %d)", inname,
					    f->index, src[i], hp->n_vocab);
				if (n_ids == cap_ids && !(ids = realloc(ids, (size_t)(cap_ids = cap_ids ? 2 * cap_ids : 1024) * 4)))
					die("out of memory");
				ids[n_ids++] = src[i];
			}
		} else if (strcmp(kind, "image") == 0) {
			const char *num = weft_frame_get(f, "weft.image");
			die("%s: frame %" PRIu64 ": image placeholder <image %s> is not filled; run encode-image before prefill",
			    inname, f->index, num ? num : "?");
		} else if (strcmp(kind, "kvcache") == 0) {
			if (kv || n_ids)
				die("%s: frame %" PRIu64 ": a KV cache must come first in the stream, once", inname, f->index);
			if (!(kv = weft_kv_begin(m, f, 0, &hist, &n_hist)))
				die("%s: %s", inname, weft_errmsg());
		} else if (strcmp(kind, "kv") == 0) {
			if (!kv)
				die("%s: frame %" PRIu64 ": kv frame without a kvcache frame before it", inname, f->index);
			if (weft_kv_load_layer(kv, m, f, &next_layer) != 0)
				die("%s: %s", inname, weft_errmsg());
		} else if (strcmp(kind, "logits") == 0) {
			/* superseded by the logits this run computes */
		} else if (weft_frame_write_raw(out, f) != 0) {
			die_lib(out_name);
		}
		weft_frame_free(f);
	}
	if (rc < 0)
		die("%s: %s", inname, weft_errmsg());
	if (kv && next_layer != hp->n_layer)
		die("%s: KV cache has %d of %d layers (truncated stream?)", inname, next_layer, hp->n_layer);
	if (n_ids == 0)
		die("%s: no tokens to prefill", inname);
	int64_t n_past = kv ? kv->n_past : 0;
	if (n_past + n_ids > ctx)
		die("%s: context length exceeded: %" PRId64 " cached + %" PRId64 " new tokens > context %" PRId64, inname,
		    n_past, n_ids, ctx);
	if (!kv && !(kv = weft_kv_new(m, n_ids)))
		die_lib(NULL);
	if (weft_kv_reserve(kv, n_past + n_ids) != 0)
		die_lib(NULL);
	int32_t *h2 = realloc(hist, (size_t)(n_hist + n_ids) * 4);
	if (!h2)
		die("out of memory");
	hist = h2;
	memcpy(hist + n_hist, ids, (size_t)n_ids * 4);
	n_hist += n_ids;

	/* Run the model. */
	weft_pool *pool = weft_pool_new(o.threads);
	if (!pool)
		die_lib(NULL);
	float *logits = malloc((size_t)hp->n_vocab * sizeof *logits);
	weft_fwd_extra extra = {0};
	if (o.mass && !(extra.mass = calloc((size_t)hp->n_layer * hp->n_head_kv * (size_t)kv->cap, sizeof(float))))
		die("out of memory");
	if (o.window_q) {
		extra.n_window = (int)(o.window_q < n_ids ? o.window_q : n_ids);
		extra.window_q = calloc((size_t)hp->n_layer * extra.n_window * hp->n_head * hp->head_dim, sizeof(float));
		if (!extra.window_q)
			die("out of memory");
	}
	if (!logits)
		die("out of memory");
	double t1 = now_seconds();
	if (weft_model_forward(m, pool, kv, ids, NULL, n_ids, o.chunk, logits, 0,
			       o.mass || o.window_q ? &extra : NULL) != 0)
		die("%s: %s", o.model, weft_errmsg());
	double t2 = now_seconds();

	/* Write the cache and the logits. */
	weft_frame *hf = weft_kvcache_frame(m, kv, hist, n_hist);
	if (!hf || weft_frame_write(out, hf) != 0)
		die_lib(out_name);
	weft_frame_free(hf);
	for (int l = 0; l < hp->n_layer; l++) {
		const float *mass = extra.mass ? extra.mass + (size_t)l * hp->n_head_kv * (size_t)kv->cap : NULL;
		weft_frame *lf = weft_kv_layer_frame(m, kv, l, mass);
		if (lf && extra.window_q) {
			int64_t s3[3] = {extra.n_window, hp->n_head, hp->head_dim};
			size_t per = (size_t)extra.n_window * hp->n_head * hp->head_dim;
			if (!weft_frame_add(lf, "window_q", WEFT_DT_F32, 3, s3, extra.window_q + (size_t)l * per))
				die_lib(NULL);
		}
		if (!lf || weft_frame_write(out, lf) != 0)
			die_lib(out_name);
		weft_frame_free(lf);
	}
	weft_frame *lg = weft_logits_frame(m, logits, kv->n_past);
	if (!lg || weft_frame_write(out, lg) != 0)
		die_lib(out_name);
	weft_frame_free(lg);
	out_close(out);
	if (o.verbose)
		fprintf(stderr, "%s: load %.3f s; prefill %" PRId64 " tokens in %.3f s (%.1f tokens/s), %d threads, kernels %s\n",
			prog, t1 - t0, n_ids, t2 - t1, n_ids / (t2 - t1), weft_pool_size(pool), weft_kernels_level());

	free(extra.mass);
	free(extra.window_q);
	free(logits);
	free(ids);
	free(hist);
	weft_pool_free(pool);
	weft_kv_free(kv);
	weft_reader_free(r);
	if (in != stdin)
		fclose(in);
	free_model(&tm);
	return 0;
}

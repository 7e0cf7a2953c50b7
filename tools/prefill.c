/* prefill - run a prompt (tokens stream, with image embeddings spliced in
 * from encode-image) through an LLM and write its KV cache, per layer, plus
 * the next-token logits (man 1 prefill). */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>

#include "common.h"
#include "ggml_types.h"
#include "gguf.h"
#include "kvstream.h"
#include "model.h"
#include "tokenizer.h"

static struct {
	const char *model, *output;
	int threads, force, verbose, mass, llamacpp;
	int kv_type; /* -1: F16, or what an input cache holds */
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
		"      --kv-type TYPE   KV cache values: f16 (default, as llama.cpp) or f32\n"
		"      --numerics NAME  weft (default) or llama.cpp: reproduce llama.cpp's\n"
		"                       arithmetic bit for bit (Q4_0/Q4_1/Q8_0, f16 cache)\n"
		"  -o, --output FILE    write to FILE (atomically) instead of stdout\n"
		"      --force          write binary output to a terminal\n"
		"  -v, --verbose        timing on stderr\n"
		"  -h, --help           this help\n"
		"  -V, --version        version\n",
		prog);
}

/* The prompt as the model will see it: a token id per position, or -1 where
 * an embedding row (from an embd frame) is fed instead; the rows in order;
 * and wrapper text (weft.prefix / weft.suffix) not tokenized yet. */
typedef struct prompt {
	int32_t *ids;
	int64_t n, cap;
	float *rows;           /* [n_rows][n_embd] */
	int64_t n_rows, cap_rows;
	char *wrap;
	size_t wrap_len, wrap_cap;
} prompt;

static void push_id(prompt *p, int32_t id)
{
	if (p->n == p->cap && !(p->ids = realloc(p->ids, (size_t)(p->cap = p->cap ? 2 * p->cap : 1024) * 4)))
		die("out of memory");
	p->ids[p->n++] = id;
}

static void add_wrap(prompt *p, const char *s)
{
	size_t k = strlen(s);
	if (p->wrap_len + k + 1 > p->wrap_cap) {
		p->wrap_cap = 2 * (p->wrap_len + k + 1);
		if (!(p->wrap = realloc(p->wrap, p->wrap_cap)))
			die("out of memory");
	}
	memcpy(p->wrap + p->wrap_len, s, k + 1);
	p->wrap_len += k;
}

/* Length of the special-token piece "<name>" at s (no space, '<' or '>'
 * inside), or 0. */
static size_t special_piece(const char *s, const char *end)
{
	if (*s != '<')
		return 0;
	for (const char *q = s + 1; q < end; q++) {
		if (*q == '>')
			return q > s + 1 ? (size_t)(q + 1 - s) : 0;
		if (*q == '<' || *q == ' ' || *q == '\n' || *q == '\t' || *q == '\r')
			return 0;
	}
	return 0;
}

/* Die unless every "<...>" piece of wrapper text s is one vocabulary token. */
static void check_pieces(const weft_vocab *voc, const char *s, const char *inname, const weft_frame *f)
{
	const char *end = s + strlen(s);
	for (const char *q = s; q < end; q++) {
		size_t k = special_piece(q, end);
		if (k && weft_vocab_find(voc, q, k) < 0)
			die("%s: frame %" PRIu64 ": the model's vocabulary lacks '%.*s' (wrong model for this stream?)",
			    inname, f->index, (int)k, q);
	}
}

/* Tokenize the pending wrapper text as the model's processor does: each
 * "<...>" piece is its special token, the text between is tokenized with
 * special-token parsing, no BOS. */
static void flush_wrap(prompt *p, const weft_vocab *voc, int n_vocab, const char *inname)
{
	if (!p->wrap_len)
		return;
	const char *s = p->wrap, *end = s + p->wrap_len, *seg = s;
	int32_t *tmp = NULL;
	size_t n = 0, cap = 0;
	for (const char *q = s; q < end; q++) {
		size_t k = special_piece(q, end);
		if (!k)
			continue;
		if (weft_tokenize(voc, seg, (size_t)(q - seg), 1, &tmp, &n, &cap) != 0)
			die("%s: wrapper text: %s", inname, weft_errmsg());
		int32_t id = weft_vocab_find(voc, q, k);
		if (id < 0)
			die("%s: the model's vocabulary lacks '%.*s' (wrong model for this stream?)", inname, (int)k, q);
		if (n == cap && !(tmp = realloc(tmp, (cap = cap ? 2 * cap : 64) * 4)))
			die("out of memory");
		tmp[n++] = id;
		q += k - 1;
		seg = q + 1;
	}
	if (weft_tokenize(voc, seg, (size_t)(end - seg), 1, &tmp, &n, &cap) != 0)
		die("%s: wrapper text: %s", inname, weft_errmsg());
	for (size_t i = 0; i < n; i++) {
		if (tmp[i] < 0 || tmp[i] >= n_vocab)
			die("%s: wrapper token %" PRId32 " out of range (vocabulary %d)", inname, tmp[i], n_vocab);
		push_id(p, tmp[i]);
	}
	free(tmp);
	p->wrap_len = 0;
}

/* An embd frame: wrapper prefix, the embedding rows, wrapper suffix.  The
 * suffix waits, so that it joins the next tile's prefix into one text
 * fragment, as the processor's expanded prompt string is tokenized whole. */
static void add_embd(prompt *p, const weft_frame *f, const weft_model *m, const weft_vocab *voc,
		     uint64_t vocab_fp, const char *inname)
{
	const weft_hparams *hp = &m->hp;
	const weft_tensor *t = weft_frame_tensor(f, "embd");
	if (!t || t->dtype != WEFT_DT_F32 || t->ndim != 2 || t->shape[0] < 1)
		die("%s: frame %" PRIu64 ": embd frame without an F32 'embd' matrix [n_tokens, n_embd]", inname,
		    f->index);
	if (t->shape[1] != hp->n_embd)
		die("%s: frame %" PRIu64 ": embedding width %" PRId64
		    " does not match the model's n_embd %d (mmproj for another LLM?)",
		    inname, f->index, t->shape[1], hp->n_embd);
	if (weft_frame_get(f, "weft.vocab") && weft_frame_check_fp(f, "weft.vocab", vocab_fp) != 0)
		die("%s: %s (tokenized for another model?)", inname, weft_errmsg());
	const char *pre = weft_frame_get(f, "weft.prefix"), *suf = weft_frame_get(f, "weft.suffix");
	pre = pre ? pre : "";
	suf = suf ? suf : "";
	check_pieces(voc, pre, inname, f);
	check_pieces(voc, suf, inname, f);
	const float *src = t->data;
	int64_t rows = t->shape[0], d = hp->n_embd;
	for (int64_t i = 0; i < rows * d; i++)
		if (!isfinite(src[i]))
			die("%s: frame %" PRIu64 ": embedding row %" PRId64 " is not finite", inname, f->index, i / d);
	add_wrap(p, pre);
	flush_wrap(p, voc, hp->n_vocab, inname);
	if (p->n_rows + rows > p->cap_rows) {
		p->cap_rows = 2 * (p->n_rows + rows);
		if (!(p->rows = realloc(p->rows, (size_t)p->cap_rows * (size_t)d * sizeof(float))))
			die("out of memory");
	}
	memcpy(p->rows + (size_t)p->n_rows * (size_t)d, src, (size_t)(rows * d) * sizeof(float));
	p->n_rows += rows;
	for (int64_t i = 0; i < rows; i++)
		push_id(p, -1);
	add_wrap(p, suf);
}

/* The model's input rows for a mixed prompt: token embeddings (token_embd,
 * dequantized as the forward pass does) and the embd frames' rows. */
static float *input_rows(const weft_model *m, const prompt *p)
{
	const weft_gguf_tensor *te = m->tok_embd;
	const int64_t d = m->hp.n_embd;
	const uint64_t rb = weft_type_row_bytes(te->type, (uint64_t)d);
	float *x = malloc((size_t)p->n * (size_t)d * sizeof(float));
	if (!x)
		die("out of memory");
	int64_t r = 0;
	for (int64_t i = 0; i < p->n; i++) {
		float *dst = x + (size_t)i * (size_t)d;
		if (p->ids[i] >= 0) {
			if (weft_dequantize_row(te->type, (const uint8_t *)te->data + rb * (uint64_t)p->ids[i], dst, d) != 0)
				die("%s", weft_errmsg());
		} else {
			memcpy(dst, p->rows + (size_t)r++ * (size_t)d, (size_t)d * sizeof(float));
		}
	}
	return x;
}

int main(int argc, char **argv)
{
	enum { O_CHUNK = 256, O_MASS, O_WINQ, O_FORCE, O_KVTYPE, O_NUMERICS };
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},  {"threads", required_argument, 0, 't'},
		{"chunk", required_argument, 0, O_CHUNK}, {"ctx", required_argument, 0, 'c'},
		{"kv-type", required_argument, 0, O_KVTYPE}, {"numerics", required_argument, 0, O_NUMERICS},
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
		case O_KVTYPE:
			if (strcmp(optarg, "f16") == 0)
				o.kv_type = WEFT_KV_F16;
			else if (strcmp(optarg, "f32") == 0)
				o.kv_type = WEFT_KV_F32;
			else
				die("--kv-type: '%s' is not f16 or f32", optarg);
			break;
		case O_NUMERICS: o.llamacpp = opt_numerics(optarg); break;
		case 'o': o.output = optarg; break;
		case O_FORCE: o.force = 1; break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': print_version(); break;
		default: usage(stderr); return 2;
		}
	}
	numerics_apply(o.llamacpp);
	if (!o.model)
		die("no model given (-m MODEL.gguf); see --help");
	if (optind + 1 < argc)
		die("at most one input FILE");

	if (o.llamacpp && o.kv_type == WEFT_KV_F32)
		die("--numerics llama.cpp: llama.cpp's attention is reproduced for the f16 KV cache only");

	double t0 = now_seconds();
	tool_model tm = load_model(o.model);
	check_numerics(o.llamacpp, &tm, o.model);
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
	int32_t *hist = NULL;
	int64_t n_hist = 0;
	prompt pr = {0};
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
			flush_wrap(&pr, voc, hp->n_vocab, inname);
			for (uint64_t i = 0; i < t->nelem; i++) {
				if (src[i] < 0 || src[i] >= hp->n_vocab)
					die("%s: frame %" PRIu64 ": token id %" PRId32 " out of range (vocabulary %d)", inname,
					    f->index, src[i], hp->n_vocab);
				push_id(&pr, src[i]);
			}
		} else if (strcmp(kind, "embd") == 0) {
			add_embd(&pr, f, m, voc, vocab_fp, inname);
		} else if (strcmp(kind, "image") == 0) {
			const char *num = weft_frame_get(f, "weft.image");
			die("%s: frame %" PRIu64 ": image placeholder <image %s> is not filled; run encode-image before prefill",
			    inname, f->index, num ? num : "?");
		} else if (strcmp(kind, "kvcache") == 0) {
			if (kv || pr.n || pr.wrap_len)
				die("%s: frame %" PRIu64 ": a KV cache must come first in the stream, once", inname, f->index);
			check_cache_numerics(o.llamacpp, f, inname);
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
	flush_wrap(&pr, voc, hp->n_vocab, inname);
	const int32_t *ids = pr.ids;
	const int64_t n_ids = pr.n;
	if (kv && next_layer != hp->n_layer)
		die("%s: KV cache has %d of %d layers (truncated stream?)", inname, next_layer, hp->n_layer);
	if (n_ids == 0)
		die("%s: no tokens to prefill", inname);
	int64_t n_past = kv ? kv->n_past : 0;
	if (n_past + n_ids > ctx)
		die("%s: context length exceeded: %" PRId64 " cached + %" PRId64 " new tokens > context %" PRId64, inname,
		    n_past, n_ids, ctx);
	if (kv && o.kv_type >= 0 && (int)kv->type != o.kv_type)
		die("%s: the input KV cache holds %s values, but --kv-type %s was asked for", inname,
		    kv->type == WEFT_KV_F32 ? "f32" : "f16", o.kv_type == WEFT_KV_F32 ? "f32" : "f16");
	if (!kv && !(kv = weft_kv_new_type(m, n_ids, o.kv_type == WEFT_KV_F32 ? WEFT_KV_F32 : WEFT_KV_F16)))
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
	/* Token ids alone go in as ids; a prompt with embedding rows goes in as
	 * rows throughout (the same token embeddings the forward pass looks up). */
	float *x = pr.n_rows ? input_rows(m, &pr) : NULL;
	if (weft_model_forward(m, pool, kv, x ? NULL : ids, x, n_ids, o.chunk, logits, 0,
			       o.mass || o.window_q ? &extra : NULL) != 0)
		die("%s: %s", o.model, weft_errmsg());
	double t2 = now_seconds();

	/* Write the cache and the logits. */
	weft_frame *hf = weft_kvcache_frame(m, kv, hist, n_hist);
	mark_numerics(o.llamacpp, hf, out_name);
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
		fprintf(stderr, "%s: load %.3f s; prefill %" PRId64 " tokens%s in %.3f s (%.1f tokens/s), %d threads, kernels %s\n",
			prog, t1 - t0, n_ids, pr.n_rows ? " (image embeddings included)" : "", t2 - t1, n_ids / (t2 - t1),
			weft_pool_size(pool), weft_kernels_level());

	free(extra.mass);
	free(extra.window_q);
	free(logits);
	free(x);
	free(pr.ids);
	free(pr.rows);
	free(pr.wrap);
	free(hist);
	weft_pool_free(pool);
	weft_kv_free(kv);
	weft_reader_free(r);
	if (in != stdin)
		fclose(in);
	free_model(&tm);
	return 0;
}

/* eval_run.c - see eval_run.h. */
#define _GNU_SOURCE /* memfd_create */
#include "eval_run.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "eval_int.h"
#include "generate.h"
#include "imgenc.h"
#include "stream.h"
#include "util.h"
#include "vision.h"

struct weft_eval_runner {
	weft_eval_run_opts o;
	weft_gguf *g, *gv;
	weft_model *m;
	weft_vocab *voc;
	weft_vision *v;
	weft_pool *pool;
	weft_imgenc *enc;
	int tmpl;
	unsigned text_flags;
	weft_kv *kv;
	weft_kv_state empty;           /* the cache with no rows, restored per item */
	int kv_dirty;                  /* a KV stage changed its layout: make it anew */
	float *logits;
	int64_t ctx;
	char model_fp[17], vocab_fp[17], mmproj_fp[17];
	/* per item, kept between items */
	weft_embd_tile *tiles;
	int n_tiles;
	size_t cap_tiles;
	ev_wstr wrap;                  /* the tiles' wrapper text */
	float *ll_logits;              /* likelihood: [T][n_vocab] */
	int64_t ll_cap;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

weft_eval_runner *weft_eval_runner_new(const char *model, const char *mmproj, const weft_eval_run_opts *o)
{
	weft_eval_runner *r = weft_calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->o = *o;
	const char *bad = model;
	if (!(r->g = weft_gguf_open(model)) || !(r->m = weft_model_load(r->g)) || !(r->voc = weft_vocab_load(r->g)))
		goto fail;
	if (o->llamacpp && weft_model_check_llamacpp(r->m) != 0) {
		weft_error_prefix("--numerics llama.cpp");
		goto fail;
	}
	r->tmpl = WEFT_CHAT_NONE;
	if (!o->no_chat && (r->tmpl = weft_chat_pick(r->g, o->tmpl)) == WEFT_CHAT_NONE) {
		if (o->tmpl)
			bad = "--template";
		else {
			char msg[512];
			snprintf(msg, sizeof msg, "%s", weft_errmsg());
			weft_error("%s (or --no-chat)", msg);
		}
		goto fail;
	}
	r->text_flags = WEFT_TEXT_SPECIAL | WEFT_TEXT_IMAGES | (weft_vocab_add_bos(r->voc) ? WEFT_TEXT_BOS : 0);
	weft_fingerprint_hex(r->m->fingerprint, r->model_fp);
	weft_fingerprint_hex(weft_vocab_fingerprint(r->voc), r->vocab_fp);
	if (!(r->pool = weft_pool_new(o->threads)))
		goto fail;
	if (mmproj) {
		bad = mmproj;
		if (!(r->gv = weft_gguf_open(mmproj)) || !(r->v = weft_vision_load(r->gv)))
			goto fail;
		if (r->v->hp.n_embd_out != r->m->hp.n_embd) {
			weft_error("projector output width %d does not match %s's n_embd %d (mmproj for another LLM?)",
				   r->v->hp.n_embd_out, model, r->m->hp.n_embd);
			goto fail;
		}
		weft_fingerprint_hex(r->v->fingerprint, r->mmproj_fp);
		/* encode-image --stats, --prune flowcut (its --keep / --ratio) */
		const int np = r->v->hp.n_patches, fr = (int)(o->flowcut_ratio * np + 0.5);
		weft_imgenc_opts eo = {.batch = o->batch, .image = o->image, .alpha = o->alpha, .stats = o->enc_stats,
				       .flowcut = o->flowcut_keep ? (int)o->flowcut_keep : o->flowcut_ratio > 0 ? (fr > 0 ? fr : 1) : 0};
		if (!(r->enc = weft_imgenc_new(r->v, r->pool, &eo)))
			goto fail;
	}
	bad = model;
	r->ctx = o->ctx > 0 ? o->ctx : r->m->hp.n_ctx_train > 0 ? r->m->hp.n_ctx_train : 4096;
	if (!(r->kv = weft_kv_new_type(r->m, 256, o->kv_type >= 0 ? (weft_kv_type)o->kv_type : WEFT_KV_F16)) ||
	    weft_kv_save(r->kv, &r->empty) != 0 ||
	    !(r->logits = weft_malloc((size_t)r->m->hp.n_vocab * sizeof *r->logits)))
		goto fail;
	return r;
fail:
	weft_error_prefix("%s", bad);
	weft_eval_runner_free(r);
	return NULL;
}

void weft_eval_runner_free(weft_eval_runner *r)
{
	if (!r)
		return;
	weft_kv_state_free(&r->empty);
	weft_kv_free(r->kv);
	free(r->logits);
	free(r->tiles);
	free(r->wrap.s);
	free(r->ll_logits);
	weft_imgenc_free(r->enc);
	weft_vision_free(r->v);
	weft_gguf_close(r->gv);
	weft_pool_free(r->pool);
	weft_vocab_free(r->voc);
	weft_model_free(r->m);
	weft_gguf_close(r->g);
	free(r);
}

const char *weft_eval_runner_model_fp(const weft_eval_runner *r) { return r->model_fp; }
const char *weft_eval_runner_vocab_fp(const weft_eval_runner *r) { return r->vocab_fp; }
const char *weft_eval_runner_mmproj_fp(const weft_eval_runner *r) { return r->mmproj_fp; }
const char *weft_eval_runner_template(const weft_eval_runner *r) { return weft_chat_name(r->tmpl); }
int weft_eval_runner_threads(const weft_eval_runner *r) { return weft_pool_size(r->pool); }

void weft_eval_out_free(weft_eval_out *out)
{
	free(out->error);
	free(out->text);
	free(out->tokens);
	free(out->option_ll);
	memset(out, 0, sizeof *out);
}

/* The item fails: the message (with the library's last error when asked). */
static int fail(weft_eval_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(weft_eval_out *out, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (!out->error)
		out->error = weft_strndup(buf, strlen(buf));
	return -1;
}

/* ---- text ---- */

/* The user turn through the chat template, tokenized with placeholders. */
static int tokenize_item(weft_eval_runner *r, const weft_eval_item *it, weft_text_prompt *tp, weft_eval_out *out)
{
	char *text = NULL;
	if (r->tmpl != WEFT_CHAT_NONE) {
		weft_chat_msg msgs[2];
		size_t n = 0;
		if (r->o.system)
			msgs[n++] = (weft_chat_msg){"system", r->o.system};
		msgs[n++] = (weft_chat_msg){"user", it->prompt};
		if (!(text = weft_chat_render(r->tmpl, msgs, n, 1)))
			return fail(out, "chat template: %s", weft_errmsg());
	}
	const char *t = text ? text : it->prompt;
	const int rc = weft_text_prompt_build(tp, r->voc, t, strlen(t), r->text_flags);
	free(text);
	return rc == 0 ? 0 : fail(out, "tokenize: %s", weft_errmsg());
}

/* ---- images ---- */

/* A path the image loader can open for image im: its file, or a memory
 * file holding a TSV cell's decoded bytes (*fd to close after). */
static int image_path(const weft_eval_set *s, const weft_eval_image *im, char *buf, size_t cap, int *fd)
{
	*fd = -1;
	if (im->kind == WEFT_EVAL_IMAGE_PATH) {
		snprintf(buf, cap, "%s", im->path);
		return 0;
	}
	size_t len;
	unsigned char *bytes = weft_eval_image_bytes(s, im, &len);
	if (!bytes)
		return -1;
	int f = memfd_create("weft-eval-image", MFD_CLOEXEC);
	if (f < 0) {
		weft_error("memfd_create: %s", strerror(errno));
		free(bytes);
		return -1;
	}
	size_t done = 0;
	while (done < len) {
		const ssize_t k = write(f, bytes + done, len - done);
		if (k <= 0) {
			weft_error("memory file: %s", strerror(errno));
			free(bytes);
			close(f);
			return -1;
		}
		done += (size_t)k;
	}
	free(bytes);
	*fd = f;
	snprintf(buf, cap, "/proc/self/fd/%d", f);
	return 0;
}

/* Encode the item's images and lay their tiles out in prompt order. */
static int encode_images(weft_eval_runner *r, const weft_eval_set *s, const weft_eval_item *it,
			 const weft_text_prompt *tp, weft_eval_out *out)
{
	r->n_tiles = 0;
	r->wrap.n = 0;
	if (it->n_images == 0)
		return tp->n_images ? fail(out, "%d <image> placeholders but no images", tp->n_images) : 0;
	if (!r->enc)
		return fail(out, "the item has images but no --mmproj was given");
	weft_imgenc_reset(r->enc);
	for (int i = 0; i < it->n_images; i++) {
		char path[4096];
		int fd;
		if (image_path(s, &it->images[i], path, sizeof path, &fd) != 0 || weft_imgenc_add(r->enc, path) < 0) {
			const weft_eval_image *im = &it->images[i];
			if (fd >= 0)
				close(fd);
			return fail(out, "image %d (%s): %s", i + 1, im->kind == WEFT_EVAL_IMAGE_PATH ? im->path : "base64",
				    weft_errmsg());
		}
		if (fd >= 0)
			close(fd);
	}
	if (weft_imgenc_flush(r->enc) != 0)
		return fail(out, "vision encoder: %s", weft_errmsg());
	/* one run of tiles per placeholder */
	int n = 0;
	for (int k = 0; k < tp->n_parts; k++) {
		const int img = tp->parts[k].image;
		if (img > it->n_images)
			return fail(out, "<image %d> but the item has %d images", img, it->n_images);
		n += img ? weft_imgenc_tiles(r->enc, img - 1) : 0;
	}
	if (weft_grow(&r->tiles, &r->cap_tiles, (size_t)n, sizeof *r->tiles) != 0)
		return fail(out, "out of memory");
	r->n_tiles = n;
	return 0;
}

/* Wrapper strings: imgenc_tile's pointers are valid only until its next
 * call, so each tile's prefix and suffix go into r->wrap as they come. */
static int collect_tiles(weft_eval_runner *r, const weft_text_prompt *tp, weft_eval_out *out)
{
	size_t *offs = weft_malloc((size_t)(r->n_tiles + 1) * 2 * sizeof *offs);
	if (!offs)
		return fail(out, "out of memory");
	r->wrap.n = 0;
	r->wrap.oom = 0;
	int k = 0;
	for (int p = 0; p < tp->n_parts; p++) {
		const int img = tp->parts[p].image;
		for (int t = 0; img && t < weft_imgenc_tiles(r->enc, img - 1); t++, k++) {
			weft_imgenc_tile(r->enc, img - 1, t, img, &r->tiles[k]);
			offs[2 * k] = r->wrap.n;
			ev_wstr_addn(&r->wrap, r->tiles[k].prefix, strlen(r->tiles[k].prefix) + 1);
			offs[2 * k + 1] = r->wrap.n;
			ev_wstr_addn(&r->wrap, r->tiles[k].suffix, strlen(r->tiles[k].suffix) + 1);
		}
	}
	if (r->wrap.oom) {
		free(offs);
		return fail(out, "out of memory");
	}
	for (int i = 0; i < r->n_tiles; i++) {
		r->tiles[i].prefix = r->wrap.s + offs[2 * i];
		r->tiles[i].suffix = r->wrap.s + offs[2 * i + 1];
		out->visual_in += r->tiles[i].n_tokens;
	}
	free(offs);
	return 0;
}

/* ---- stages ---- */

static int run_stages(weft_eval_runner *r, weft_eval_hook at, weft_eval_state *st, weft_eval_out *out)
{
	for (int i = 0; i < r->o.n_stages; i++) {
		const weft_eval_stage *sg = &r->o.stages[i];
		if (sg->at == at && sg->run(sg->ctx, st) != 0)
			return fail(out, "%s: %s", sg->name, weft_errmsg());
	}
	return 0;
}

static void end_stages(weft_eval_runner *r)
{
	for (int i = 0; i < r->o.n_stages; i++)
		if (r->o.stages[i].end)
			r->o.stages[i].end(r->o.stages[i].ctx);
}

static unsigned stage_needs(const weft_eval_runner *r, int *n_window)
{
	unsigned needs = 0;
	*n_window = 0;
	for (int i = 0; i < r->o.n_stages; i++) {
		needs |= r->o.stages[i].needs;
		if (r->o.stages[i].n_window > *n_window)
			*n_window = r->o.stages[i].n_window;
	}
	return needs;
}

/* ---- prompt, prefill ---- */

/* Token runs and tiles in the text's order (prefill's read_input). */
static int assemble(weft_eval_runner *r, const weft_text_prompt *tp, weft_prompt *pr, weft_eval_out *out)
{
	int k = 0;
	for (int p = 0; p < tp->n_parts; p++) {
		const weft_text_part *pt = &tp->parts[p];
		if (!pt->image) {
			if (weft_prompt_add_ids(pr, tp->ids + pt->off, pt->n) != 0)
				return fail(out, "prompt: %s", weft_errmsg());
			continue;
		}
		for (int t = 0; t < weft_imgenc_tiles(r->enc, pt->image - 1); t++, k++)
			if (weft_prompt_add_tile(pr, &r->tiles[k], NULL) != 0)
				return fail(out, "image %d: %s", pt->image, weft_errmsg());
	}
	if (weft_prompt_finish(pr) != 0)
		return fail(out, "prompt: %s", weft_errmsg());
	if (pr->n == 0)
		return fail(out, "no tokens to prefill");
	out->visual_kept = pr->n_rows;
	out->prompt_tokens = pr->n;
	return 0;
}

/* The prompt through the model into the (emptied) cache, with room for
 * `room` more rows; extra gets what the stages need. */
static int prefill(weft_eval_runner *r, const weft_prompt *pr, int64_t room, weft_fwd_extra *extra,
		   weft_eval_out *out)
{
	/* (a prompt pruned with its positions kept spans more positions than rows) */
	if (pr->n_pos + room > r->ctx)
		return fail(out, "context length exceeded: %" PRId64 " prompt positions + %" PRId64 " new tokens > context %" PRId64,
			    pr->n_pos, room, r->ctx);
	if (r->kv_dirty) { /* compressed last item: a fresh cache */
		weft_kv_state_free(&r->empty);
		weft_kv_free(r->kv);
		if (!(r->kv = weft_kv_new_type(r->m, 256, r->o.kv_type >= 0 ? (weft_kv_type)r->o.kv_type : WEFT_KV_F16)) ||
		    weft_kv_save(r->kv, &r->empty) != 0)
			return fail(out, "KV cache: %s", weft_errmsg());
		r->kv_dirty = 0;
	} else {
		weft_kv_restore(r->kv, &r->empty);
	}
	if (weft_kv_reserve(r->kv, pr->n + room) != 0)
		return fail(out, "KV cache: %s", weft_errmsg());
	int n_window;
	const unsigned needs = stage_needs(r, &n_window);
	const weft_hparams *hp = &r->m->hp;
	if ((needs & WEFT_EVAL_NEEDS_MASS) &&
	    !(extra->mass = weft_calloc((size_t)hp->n_layer * (size_t)hp->n_head_kv * (size_t)r->kv->cap, sizeof(float))))
		return fail(out, "out of memory");
	if (needs & WEFT_EVAL_NEEDS_WINDOW_Q) {
		extra->n_window = (int)(n_window < pr->n ? n_window : pr->n);
		const size_t nq = (size_t)hp->n_layer * (size_t)extra->n_window * (size_t)hp->n_head * (size_t)hp->head_dim;
		if (!(extra->window_q = weft_calloc(nq, sizeof(float))))
			return fail(out, "out of memory");
	}
	if (needs & WEFT_EVAL_NEEDS_QSTATS) { /* prefill --q-stats: from token 4 on */
		const size_t nqs = (size_t)hp->n_layer * (size_t)hp->n_head * (size_t)hp->head_dim;
		extra->q_skip = 4;
		if (!(extra->q_sum = weft_calloc(nqs, sizeof(double))) ||
		    !(extra->q_sq = weft_calloc(nqs * (size_t)hp->head_dim, sizeof(double))))
			return fail(out, "out of memory");
	}
	if (pr->n_pos != pr->n) /* pruned, positions kept */
		extra->pos = pr->pos, extra->pos_span = pr->n_pos;
	float *x = pr->n_rows ? weft_prompt_input_rows(pr) : NULL;
	if (pr->n_rows && !x)
		return fail(out, "prompt: %s", weft_errmsg());
	const int rc = weft_model_forward(r->m, r->pool, r->kv, x ? NULL : pr->ids, x, pr->n,
					  r->o.chunk > 0 ? r->o.chunk : 512, r->logits, 0,
					  needs || extra->pos || extra->drop ? extra : NULL);
	free(x);
	return rc == 0 ? 0 : fail(out, "prefill: %s", weft_errmsg());
}

/* ---- decode ---- */

static int keep_text(void *ctx, const char *s, size_t n) { return 0; }

static int generate(weft_eval_runner *r, const weft_prompt *pr, weft_eval_out *out)
{
	/* a text callback makes weft_generate keep the text as decode prints it */
	weft_gen_opts go = {.n_predict = r->o.n_predict, .stops = r->o.stops, .n_stops = r->o.n_stops, .sp = r->o.sp,
			    .on_text = keep_text};
	weft_gen_result gr;
	int32_t *hist = weft_prompt_history(pr); /* by position, as prefill writes it for decode */
	if (!hist)
		return fail(out, "out of memory");
	const int rc = weft_generate(r->m, r->voc, r->pool, r->kv, r->logits, hist, pr->n_pos, &go, &gr);
	free(hist);
	if (rc != 0) {
		weft_gen_result_free(&gr);
		return fail(out, "decode: %s", weft_errmsg());
	}
	out->tokens = gr.ids;
	out->n_tokens = gr.n;
	out->stop = gr.stop == WEFT_GEN_EOG ? "eog" : gr.stop == WEFT_GEN_STOP ? "stop" : "length";
	out->text = gr.text;
	out->text_len = gr.text_len;
	return out->text ? 0 : fail(out, "decode: no text");
}

/* log-softmax of logits[n] at token t. */
static double logprob(const float *logits, int n, int32_t t)
{
	float mx = logits[0];
	for (int i = 1; i < n; i++)
		mx = logits[i] > mx ? logits[i] : mx;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += exp((double)logits[i] - mx);
	return (double)logits[t] - mx - log(sum);
}

/* Each option's log-likelihood given the prompt (SEED-Bench-2's protocol:
 * the option whose text the model finds likeliest), from the prompt's
 * cache: every option runs after it, and the cache is rolled back. */
static int likelihood(weft_eval_runner *r, const weft_eval_item *it, weft_eval_out *out)
{
	const int nv = r->m->hp.n_vocab;
	weft_kv_state st = {0};
	int32_t *ids = NULL;
	size_t n_ids = 0, cap = 0;
	int rc = -1;
	out->stop = "likelihood";
	out->option_ll = weft_calloc((size_t)it->n_choices, sizeof *out->option_ll);
	float *first = weft_malloc((size_t)nv * sizeof *first);
	if (!out->option_ll || !first || weft_kv_save(r->kv, &st) != 0) {
		fail(out, "out of memory");
		goto out;
	}
	memcpy(first, r->logits, (size_t)nv * sizeof *first);
	out->n_options = it->n_choices;
	double best = 0;
	for (int c = 0; c < it->n_choices; c++) {
		n_ids = 0;
		if (weft_tokenize(r->voc, it->choices[c], strlen(it->choices[c]), 0, &ids, &n_ids, &cap) != 0 || !n_ids) {
			fail(out, "option %c: %s", 'A' + c, n_ids ? weft_errmsg() : "no tokens");
			goto out;
		}
		const int64_t T = (int64_t)n_ids;
		if (T > r->ll_cap) {
			float *b = weft_realloc(r->ll_logits, (size_t)T * (size_t)nv * sizeof *b);
			if (!b) {
				fail(out, "out of memory");
				goto out;
			}
			r->ll_logits = b;
			r->ll_cap = T;
		}
		if (weft_kv_reserve(r->kv, r->kv->n_past + T) != 0 ||
		    weft_model_forward(r->m, r->pool, r->kv, ids, NULL, T, r->o.chunk > 0 ? r->o.chunk : 512, r->ll_logits, 1,
				       NULL) != 0) {
			fail(out, "option %c: %s", 'A' + c, weft_errmsg());
			goto out;
		}
		const uint64_t b = weft_kv_bytes(r->kv);
		out->kv_bytes = b > out->kv_bytes ? b : out->kv_bytes;
		double ll = logprob(first, nv, ids[0]);
		for (int64_t i = 1; i < T; i++)
			ll += logprob(r->ll_logits + (size_t)(i - 1) * nv, nv, ids[i]);
		out->option_ll[c] = r->o.ll_sum ? ll : ll / (double)T;
		weft_kv_restore(r->kv, &st);
		if (c == 0 || out->option_ll[c] > best) {
			best = out->option_ll[c];
			out->choice = c;
		}
	}
	char letter[2] = {(char)('A' + out->choice), 0};
	out->text = weft_strndup(letter, 1);
	out->text_len = 1;
	rc = out->text ? 0 : fail(out, "out of memory");
out:
	weft_kv_state_free(&st);
	free(first);
	free(ids);
	return rc;
}

/* ---- an item ---- */

int weft_eval_run_item(weft_eval_runner *r, const weft_eval_set *s, const weft_eval_item *it, weft_eval_out *out)
{
	memset(out, 0, sizeof *out);
	out->choice = -1;
	if (it->error)
		return fail(out, "%s", it->error);
	if (r->o.likelihood && it->metric == WEFT_METRIC_MC)
		for (int c = 0; c < it->n_choices; c++)
			if (strstr(it->choices[c], "<image"))
				return fail(out, "option %c is an image: likelihood scoring needs text options", 'A' + c);
	const double t0 = now_ms();
	weft_text_prompt tp;
	weft_prompt pr;
	weft_prompt_init(&pr, r->m, r->voc);
	weft_fwd_extra extra = {0};
	weft_eval_state st = {.m = r->m, .voc = r->voc, .pool = r->pool, .item = it, .text = &tp, .prompt = &pr,
			      .extra = &extra};
	int rc = -1;
	if (tokenize_item(r, it, &tp, out) != 0)
		goto done_pr;
	const double t1 = now_ms();
	if (encode_images(r, s, it, &tp, out) != 0 || collect_tiles(r, &tp, out) != 0)
		goto done;
	const double t2 = now_ms();
	st.tiles = r->tiles;
	st.n_tiles = r->n_tiles;
	if (run_stages(r, WEFT_EVAL_AT_TILES, &st, out) != 0 || assemble(r, &tp, &pr, out) != 0 ||
	    run_stages(r, WEFT_EVAL_AT_PROMPT, &st, out) != 0)
		goto done;
	const int ll = r->o.likelihood && it->metric == WEFT_METRIC_MC;
	int64_t room = r->o.n_predict + 1;
	if (ll) /* the longest option's tokens, as their characters bound them */
		for (int c = 0, k; c < it->n_choices; c++)
			room = (k = (int)strlen(it->choices[c]) + 2) > room ? k : room;
	if (prefill(r, &pr, room, &extra, out) != 0)
		goto done;
	const double t3 = now_ms();
	for (int i = 0; i < r->o.n_stages; i++) { /* an in-LLM drop: the visual tokens it kept */
		const int64_t k = r->o.stages[i].visual_kept ? r->o.stages[i].visual_kept(r->o.stages[i].ctx) : -1;
		out->visual_kept = k >= 0 ? k : out->visual_kept;
	}
	st.kv = r->kv;
	st.logits = r->logits;
	for (int i = 0; i < r->o.n_stages; i++)
		r->kv_dirty |= r->o.stages[i].at == WEFT_EVAL_AT_CACHE;
	if (run_stages(r, WEFT_EVAL_AT_CACHE, &st, out) != 0)
		goto done;
	out->kv_bytes = weft_kv_bytes(r->kv);
	const double t4 = now_ms();
	if ((ll ? likelihood(r, it, out) : generate(r, &pr, out)) != 0)
		goto done;
	if (!ll) {
		const uint64_t b = weft_kv_bytes(r->kv);
		out->kv_bytes = b > out->kv_bytes ? b : out->kv_bytes;
	}
	const double t5 = now_ms();
	out->tokenize_ms = t1 - t0;
	out->encode_ms = t2 - t1;
	out->prefill_ms = t3 - t2;
	out->ttft_ms = t4 - t0;
	out->decode_ms = t5 - t4;
	out->total_ms = t5 - t0;
	rc = 0;
done:
	weft_text_prompt_free(&tp);
done_pr:
	end_stages(r);
	weft_prompt_free(&pr);
	free(extra.mass);
	free(extra.window_q);
	free(extra.q_sum);
	free(extra.q_sq);
	return rc;
}

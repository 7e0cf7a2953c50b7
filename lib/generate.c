/* generate.c - see generate.h. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* Text with stop strings: bytes that could still begin a stop string are
 * held back until the next piece decides. */
typedef struct textout {
	char *buf;
	size_t len, cap, held, keep;
	const weft_gen_opts *o;
	int failed;
} textout;

static int emit(textout *t, const char *s, size_t n)
{
	if (n && t->o->on_text && !t->failed && t->o->on_text(t->o->ctx, s, n) != 0)
		t->failed = 1;
	return t->failed ? -1 : 0;
}

/* Append a piece: 1 when a stop string was completed, 0, -1 on error. */
static int text_add(textout *t, const char *piece, size_t n)
{
	if (weft_grow(&t->buf, &t->cap, t->len + n + 1, 1) != 0)
		return -1;
	memcpy(t->buf + t->len, piece, n);
	t->len += n;
	t->buf[t->len] = 0;
	const weft_gen_opts *o = t->o;
	for (int i = 0; i < o->n_stops; i++) {
		const size_t sl = strlen(o->stops[i]), from = t->held > sl ? t->held - sl : 0;
		const char *hit = strstr(t->buf + from, o->stops[i]);
		if (hit) {
			const size_t upto = (size_t)(hit - t->buf);
			if (emit(t, t->buf + t->held, upto - t->held) != 0)
				return -1;
			t->len = t->held = upto; /* the text ends before the stop string */
			t->buf[t->len] = 0;
			return 1;
		}
	}
	if (t->len > t->held + t->keep) {
		const size_t upto = t->len - t->keep;
		if (emit(t, t->buf + t->held, upto - t->held) != 0)
			return -1;
		t->held = upto;
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The token's text appended; 1 at a stop string, 0, -1 on error. */
static int add_token(textout *t, const weft_vocab *voc, int32_t tok, char **piece, size_t *cap)
{
	int k = weft_token_to_piece(voc, tok, 0, *piece, *cap);
	if (k > (int)*cap) {
		char *p = weft_realloc(*piece, (size_t)k);
		if (!p)
			return -1;
		*piece = p;
		*cap = (size_t)k;
		k = weft_token_to_piece(voc, tok, 0, *piece, *cap);
	}
	return k > 0 ? text_add(t, *piece, (size_t)k) : 0;
}

int weft_generate(const weft_model *m, const weft_vocab *voc, weft_pool *pool, weft_kv *kv, float *logits,
		  const int32_t *hist, int64_t n_hist, const weft_gen_opts *o, weft_gen_result *r)
{
	memset(r, 0, sizeof *r);
	const int want_text = o->on_text || o->n_stops;
	textout txt = {.o = o};
	for (int i = 0; i < o->n_stops; i++)
		if (strlen(o->stops[i]) > txt.keep)
			txt.keep = strlen(o->stops[i]);
	txt.keep = txt.keep ? txt.keep - 1 : 0;
	size_t piece_cap = 256;
	char *piece = weft_malloc(piece_cap);
	weft_sampler *smp = weft_sampler_new(&o->sp, m->hp.n_vocab);
	r->ids = weft_malloc((size_t)(o->n_predict + 1) * sizeof *r->ids);
	int rc = -1;
	if (!piece || !smp || !r->ids)
		goto out;
	for (int64_t i = 0; i < n_hist; i++)
		if (hist[i] >= 0)
			weft_sampler_accept(smp, hist[i]);
	int pending = 0; /* the last sampled token not yet run through the model */
	const double t0 = now();
	while (r->n < o->n_predict) {
		int32_t tok = weft_sampler_sample(smp, logits);
		if (!o->ignore_eos && weft_vocab_is_eog(voc, tok)) {
			r->stop = WEFT_GEN_EOG;
			break;
		}
		r->ids[r->n++] = tok;
		weft_sampler_accept(smp, tok);
		pending = 1;
		if (want_text) {
			const int s = add_token(&txt, voc, tok, &piece, &piece_cap);
			if (s < 0)
				goto fail_text;
			if (s > 0) {
				r->stop = WEFT_GEN_STOP;
				break;
			}
		}
		if (r->n >= o->n_predict && !o->finish_cache)
			break;
		if (weft_model_forward(m, pool, kv, &tok, NULL, 1, 1, logits, 0, NULL) != 0)
			goto out;
		pending = 0;
	}
	if (pending && o->finish_cache &&
	    weft_model_forward(m, pool, kv, &r->ids[r->n - 1], NULL, 1, 1, logits, 0, NULL) != 0)
		goto out;
	r->seconds = now() - t0;
	if (want_text) { /* what is held back is final now */
		if (emit(&txt, txt.buf + txt.held, txt.len - txt.held) != 0)
			goto fail_text;
		r->text = txt.buf ? txt.buf : weft_strndup("", 0);
		r->text_len = txt.len;
		txt.buf = NULL;
	}
	rc = 0;
	goto out;
fail_text:
	if (txt.failed)
		weft_error("stopped by the text callback");
out:
	free(txt.buf);
	free(piece);
	weft_sampler_free(smp);
	return rc;
}

void weft_gen_result_free(weft_gen_result *r)
{
	free(r->ids);
	free(r->text);
	r->ids = NULL;
	r->text = NULL;
}

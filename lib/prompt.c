/* prompt.c - see prompt.h. */
#include "prompt.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_types.h"
#include "keys.h"
#include "util.h"

void weft_prompt_init(weft_prompt *p, const weft_model *m, const weft_vocab *voc)
{
	memset(p, 0, sizeof *p);
	p->m = m;
	p->voc = voc;
	p->vocab_fp = weft_vocab_fingerprint(voc);
}

void weft_prompt_free(weft_prompt *p)
{
	free(p->ids);
	free(p->pos);
	free(p->rows);
	free(p->spans);
	free(p->wrap);
	memset(p, 0, sizeof *p);
}

/* Append id at position pos (the prompt then spans up to pos + 1). */
static int push_at(weft_prompt *p, int32_t id, int64_t pos)
{
	if (pos > INT32_MAX - 1) {
		weft_error("prompt: position %" PRId64 " out of range", pos);
		return -1;
	}
	if (weft_grow(&p->ids, &p->cap, (size_t)p->n + 1, sizeof *p->ids) != 0 ||
	    weft_grow(&p->pos, &p->cap_pos, (size_t)p->n + 1, sizeof *p->pos) != 0)
		return -1;
	p->ids[p->n] = id;
	p->pos[p->n++] = (int32_t)pos;
	p->n_pos = pos + 1;
	return 0;
}

static int push_id(weft_prompt *p, int32_t id)
{
	return push_at(p, id, p->n_pos);
}

static int add_wrap(weft_prompt *p, const char *s)
{
	const size_t k = strlen(s);
	if (weft_grow(&p->wrap, &p->wrap_cap, p->wrap_len + k + 1, 1) != 0)
		return -1;
	memcpy(p->wrap + p->wrap_len, s, k + 1);
	p->wrap_len += k;
	return 0;
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

/* -1 + error unless every "<...>" piece of wrapper text s is one token. */
static int check_pieces(const weft_prompt *p, const char *s, const weft_frame *f)
{
	const char *end = s + strlen(s);
	for (const char *q = s; q < end; q++) {
		const size_t k = special_piece(q, end);
		if (k && weft_vocab_find(p->voc, q, k) < 0) {
			weft_error("the model's vocabulary lacks '%.*s' (wrong model for this stream?)", (int)k, q);
			if (f)
				weft_error_prefix("frame %" PRIu64, f->index);
			return -1;
		}
	}
	return 0;
}

/* Tokenize the pending wrapper text into the prompt. */
static int flush_wrap(weft_prompt *p)
{
	if (!p->wrap_len)
		return 0;
	const char *s = p->wrap, *end = s + p->wrap_len, *seg = s;
	int32_t *tmp = NULL;
	size_t n = 0, cap = 0;
	int rc = -1;
	for (const char *q = s; q < end; q++) {
		const size_t k = special_piece(q, end);
		if (!k)
			continue;
		if (weft_tokenize(p->voc, seg, (size_t)(q - seg), 1, &tmp, &n, &cap) != 0) {
			weft_error_prefix("wrapper text");
			goto out;
		}
		const int32_t id = weft_vocab_find(p->voc, q, k);
		if (id < 0) {
			weft_error("the model's vocabulary lacks '%.*s' (wrong model for this stream?)", (int)k, q);
			goto out;
		}
		if (weft_grow(&tmp, &cap, n + 1, sizeof *tmp) != 0)
			goto out;
		tmp[n++] = id;
		q += k - 1;
		seg = q + 1;
	}
	if (weft_tokenize(p->voc, seg, (size_t)(end - seg), 1, &tmp, &n, &cap) != 0) {
		weft_error_prefix("wrapper text");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (tmp[i] < 0 || tmp[i] >= p->m->hp.n_vocab) {
			weft_error("wrapper token %" PRId32 " out of range (vocabulary %d)", tmp[i], p->m->hp.n_vocab);
			goto out;
		}
		if (push_id(p, tmp[i]) != 0)
			goto out;
	}
	p->wrap_len = 0;
	rc = 0;
out:
	free(tmp);
	return rc;
}

int weft_prompt_add_ids(weft_prompt *p, const int32_t *ids, int64_t n)
{
	if (flush_wrap(p) != 0)
		return -1;
	for (int64_t i = 0; i < n; i++) {
		if (ids[i] < 0 || ids[i] >= p->m->hp.n_vocab) {
			weft_error("token id %" PRId32 " out of range (vocabulary %d)", ids[i], p->m->hp.n_vocab);
			return -1;
		}
		if (push_id(p, ids[i]) != 0)
			return -1;
	}
	return 0;
}

int weft_prompt_add_tile(weft_prompt *p, const weft_embd_tile *t, const weft_frame *f)
{
	const int64_t d = p->m->hp.n_embd;
	if (t->n_embd != d) {
		weft_error("embedding width %" PRId64 " does not match the model's n_embd %" PRId64
			   " (mmproj for another LLM?)", t->n_embd, d);
		if (f)
			weft_error_prefix("frame %" PRIu64, f->index);
		return -1;
	}
	if (t->vocab && f && weft_frame_check_fp(f, WEFT_KEY_VOCAB, p->vocab_fp) != 0)
		return -1;
	if (check_pieces(p, t->prefix, f) != 0 || check_pieces(p, t->suffix, f) != 0)
		return -1;
	if (add_wrap(p, t->prefix) != 0 || flush_wrap(p) != 0)
		return -1;
	if (weft_grow(&p->rows, &p->cap_rows, (size_t)(p->n_rows + t->n_tokens), (size_t)d * sizeof *p->rows) != 0 ||
	    weft_grow(&p->spans, &p->cap_spans, (size_t)p->n_spans + 1, sizeof *p->spans) != 0)
		return -1;
	/* a tile pruned with its positions kept spans its unpruned positions */
	const int keep_pos = t->n_orig && t->kept && !t->repack;
	const int64_t base = p->n_pos;
	p->spans[p->n_spans++] = (weft_prompt_span){.pos = p->n, .n = t->n_tokens, .pos0 = base,
						    .n_pos = keep_pos ? t->n_orig : t->n_tokens,
						    .image = t->image, .tile = t->tile};
	if (t->n_tokens) /* a tile pruned to nothing has no rows (and rows may still be NULL) */
		memcpy(p->rows + (size_t)p->n_rows * (size_t)d, t->embd, (size_t)(t->n_tokens * d) * sizeof(float));
	p->n_rows += t->n_tokens;
	for (int64_t i = 0; i < t->n_tokens; i++)
		if (push_at(p, -1, keep_pos ? base + t->kept[i] : base + i) != 0)
			return -1;
	if (keep_pos)
		p->n_pos = base + t->n_orig;
	return add_wrap(p, t->suffix);
}

int weft_prompt_add_frame(weft_prompt *p, const weft_frame *f)
{
	const char *kind = weft_frame_kind(f);
	if (strcmp(kind, WEFT_KIND_TOKENS) == 0) {
		if (weft_frame_check_fp(f, WEFT_KEY_VOCAB, p->vocab_fp) != 0)
			return -1;
		const weft_tensor *t = weft_frame_tensor(f, "ids");
		if (!t || t->dtype != WEFT_DT_I32 || t->ndim != 1) {
			weft_error("frame %" PRIu64 ": tokens frame without an I32 'ids' vector", f->index);
			return -1;
		}
		if (weft_prompt_add_ids(p, t->data, (int64_t)t->nelem) != 0) {
			weft_error_prefix("frame %" PRIu64, f->index);
			return -1;
		}
		return 1;
	}
	if (strcmp(kind, WEFT_KIND_EMBD) == 0) {
		weft_embd_tile t;
		return weft_embd_read(f, &t) == 0 && weft_prompt_add_tile(p, &t, f) == 0 ? 1 : -1;
	}
	if (strcmp(kind, WEFT_KIND_IMAGE) == 0) {
		const char *num = weft_frame_get(f, WEFT_KEY_IMAGE);
		weft_error("frame %" PRIu64 ": image placeholder <image %s> is not filled; run encode-image before prefill",
			   f->index, num ? num : "?");
		return -1;
	}
	return 0;
}

int weft_prompt_finish(weft_prompt *p)
{
	return flush_wrap(p);
}

int32_t *weft_prompt_history(const weft_prompt *p)
{
	int32_t *h = weft_malloc((size_t)(p->n_pos ? p->n_pos : 1) * sizeof *h);
	if (!h)
		return NULL;
	for (int64_t i = 0; i < p->n_pos; i++)
		h[i] = -1;
	for (int64_t i = 0; i < p->n; i++)
		h[p->pos[i]] = p->ids[i];
	return h;
}

float *weft_prompt_input_rows(const weft_prompt *p)
{
	const weft_gguf_tensor *te = p->m->tok_embd;
	const int64_t d = p->m->hp.n_embd;
	const uint64_t rb = weft_type_row_bytes(te->type, (uint64_t)d);
	float *x = weft_malloc((size_t)(p->n ? p->n : 1) * (size_t)d * sizeof(float));
	if (!x)
		return NULL;
	int64_t r = 0;
	for (int64_t i = 0; i < p->n; i++) {
		float *dst = x + (size_t)i * (size_t)d;
		if (p->ids[i] >= 0) {
			if (weft_dequantize_row(te->type, (const uint8_t *)te->data + rb * (uint64_t)p->ids[i], dst, d) != 0) {
				free(x);
				return NULL;
			}
		} else {
			memcpy(dst, p->rows + (size_t)r++ * (size_t)d, (size_t)d * sizeof(float));
		}
	}
	return x;
}

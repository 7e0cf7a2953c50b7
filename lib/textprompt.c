/* textprompt.c - see textprompt.h. */
#include "textprompt.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Parse "<image>" or "<image N>" at p; returns its length (number 0 for a
 * bare placeholder) or 0. */
static size_t image_marker(const char *p, const char *end, int *number)
{
	static const char tag[] = "<image";
	const size_t tl = sizeof tag - 1;
	if ((size_t)(end - p) < tl + 1 || memcmp(p, tag, tl) != 0)
		return 0;
	const char *q = p + tl;
	if (*q == '>') {
		*number = 0;
		return tl + 1;
	}
	if (*q != ' ')
		return 0;
	q++;
	long n = 0;
	const char *digits = q;
	while (q < end && *q >= '0' && *q <= '9' && n < 1000000)
		n = n * 10 + (*q++ - '0');
	if (q == digits || q >= end || *q != '>' || n < 1)
		return 0;
	*number = (int)n;
	return (size_t)(q + 1 - p);
}

static int add_part(weft_text_prompt *p, weft_text_part part, size_t *cap)
{
	if (weft_grow(&p->parts, cap, (size_t)p->n_parts + 1, sizeof *p->parts) != 0)
		return -1;
	p->parts[p->n_parts++] = part;
	return 0;
}

/* Tokenize text[len] onto the ids; a part for the tokens added since start. */
static int add_run(weft_text_prompt *p, const weft_vocab *v, const char *text, size_t len, int special,
		   int64_t start, size_t *cap_ids, size_t *cap_parts)
{
	size_t n = (size_t)p->n_ids;
	if (len && weft_tokenize(v, text, len, special, &p->ids, &n, cap_ids) != 0)
		return -1;
	p->n_ids = (int64_t)n;
	if (p->n_ids == start)
		return 0;
	return add_part(p, (weft_text_part){.off = start, .n = p->n_ids - start}, cap_parts);
}

int weft_text_prompt_build(weft_text_prompt *p, const weft_vocab *v, const char *text, size_t len, unsigned flags)
{
	memset(p, 0, sizeof *p);
	size_t cap_ids = 0, cap_parts = 0;
	int next = 1;
	const int special = (flags & WEFT_TEXT_SPECIAL) != 0;
	int64_t start = 0;
	if (flags & WEFT_TEXT_BOS) {
		if (weft_vocab_bos(v) < 0) {
			weft_error("--bos: the model has no BOS token");
			return -1;
		}
		if (!(p->ids = weft_malloc(16 * sizeof *p->ids)))
			return -1;
		cap_ids = 16;
		p->ids[p->n_ids++] = weft_vocab_bos(v);
	}
	const char *q = text, *end = text + len, *seg = text;
	while ((flags & WEFT_TEXT_IMAGES) && q < end) {
		const char *lt = memchr(q, '<', (size_t)(end - q));
		if (!lt)
			break;
		int number;
		const size_t k = image_marker(lt, end, &number);
		if (!k) {
			q = lt + 1;
			continue;
		}
		if (add_run(p, v, seg, (size_t)(lt - seg), special, start, &cap_ids, &cap_parts) != 0)
			goto fail;
		const int img = number ? number : next;
		if (add_part(p, (weft_text_part){.image = img, .text_off = (size_t)(lt - text), .text_len = k},
			     &cap_parts) != 0)
			goto fail;
		p->n_images++;
		p->max_image = img > p->max_image ? img : p->max_image;
		next = img + 1;
		start = p->n_ids;
		q = seg = lt + k;
	}
	if (add_run(p, v, seg, (size_t)(end - seg), special, start, &cap_ids, &cap_parts) != 0)
		goto fail;
	if (flags & WEFT_TEXT_ENDS) {
		const int32_t ends[2] = {weft_vocab_add_eos(v) ? weft_vocab_eos(v) : -1,
					 weft_vocab_add_sep(v) ? weft_vocab_sep(v) : -1};
		start = p->n_ids;
		for (int k = 0; k < 2; k++)
			if (ends[k] >= 0) {
				if (weft_grow(&p->ids, &cap_ids, (size_t)p->n_ids + 1, sizeof *p->ids) != 0)
					goto fail;
				p->ids[p->n_ids++] = ends[k];
			}
		if (p->n_ids > start) { /* joins the last run when it ends the prompt */
			weft_text_part *last = p->n_parts ? &p->parts[p->n_parts - 1] : NULL;
			if (last && !last->image && last->off + last->n == start)
				last->n = p->n_ids - last->off;
			else if (add_part(p, (weft_text_part){.off = start, .n = p->n_ids - start}, &cap_parts) != 0)
				goto fail;
		}
	}
	return 0;
fail:
	weft_text_prompt_free(p);
	return -1;
}

void weft_text_prompt_free(weft_text_prompt *p)
{
	free(p->ids);
	free(p->parts);
	memset(p, 0, sizeof *p);
}

/* bench_weft.c - weft's own JSONL benchmark schema (man 5 weft-bench):
 *
 *   {"id": "q1", "category": "color",
 *    "question": "What colour is <image 1>?", "images": ["img/a.png"],
 *    "choices": ["red", "green"], "answer": "A", "metric": "mc"}
 *
 * or the content as ordered parts instead of question + images:
 *
 *   "content": [{"type": "text", "text": "Compare"}, {"image": "a.png"},
 *               "and", {"type": "image", "image": "b.png"}]
 *
 * The question (or the parts' text, an "<image k>" for the k-th image
 * part) is the whole user turn: choices are not added to it.  answer: an
 * option letter or an option's text (mc), a string, or a list of
 * references (vqa's annotators).  metric defaults to mc with choices and
 * exact without. */
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "util.h"

static const char *const known[] = {"id",	   "category", "question", "content", "images", "image",
				    "choices",  "options",  "answer",   "answers", "metric", NULL};

int ev_bench_detect_weft(const json_t *first) { return 1; }

/* content parts -> prompt text and images. */
static int read_content(weft_eval_rd *r, json_t *parts, weft_eval_item *it)
{
	if (!json_is_array(parts)) {
		ev_item_error(it, "content is not a list of parts");
		return 0;
	}
	ev_wstr w = {0};
	ev_wstr_add(&w, "");
	size_t i;
	json_t *p;
	json_array_foreach(parts, i, p) {
		json_t *text = json_is_object(p) ? json_object_get(p, "text") : p;
		json_t *img = json_is_object(p) ? json_object_get(p, "image") : NULL;
		if (json_is_object(p) && !img)
			img = json_object_get(p, "path");
		const char *type = json_string_value(json_object_get(p, "type"));
		if (type && strcmp(type, "text") && strcmp(type, "image")) {
			ev_item_error(it, "content part %zu: unknown type '%.40s'", i + 1, type);
		} else if (json_is_string(text) && !img && (!type || !strcmp(type, "text"))) {
			ev_wstr_add(&w, json_string_value(text));
		} else if (json_is_string(img) && (!type || !strcmp(type, "image"))) {
			if (ev_item_add_path(r, it, json_string_value(img)) != 0)
				w.oom = 1;
			ev_wstr_addf(&w, "<image %d>", it->n_images);
		} else {
			ev_item_error(it, "content part %zu is neither text nor an image path", i + 1);
		}
	}
	it->prompt = ev_wstr_take(&w);
	return it->prompt ? 0 : -1;
}

/* A list of strings (numbers printed); an item error otherwise. */
static char **string_list(json_t *v, int *n, weft_eval_item *it, const char *what)
{
	if (!json_is_array(v)) {
		ev_item_error(it, "%s is not a list", what);
		return NULL;
	}
	char **out = weft_calloc(json_array_size(v) + 1, sizeof *out);
	size_t i;
	json_t *e;
	*n = 0;
	json_array_foreach(v, i, e) {
		if (!out || !(out[i] = ev_json_text(e))) {
			ev_item_error(it, "%s %zu is not a string", what, i + 1);
			break;
		}
		*n = (int)i + 1;
	}
	return out;
}

static void read_answer(json_t *a, json_t *choices, weft_eval_item *it)
{
	if (json_is_array(a)) {
		it->answers = string_list(a, &it->n_answers, it, "answer");
	} else if (a) {
		char *s = ev_json_text(a);
		if (!s) {
			ev_item_error(it, "answer is neither a string, a number nor a list");
		} else if (choices) {
			ev_item_set_gold_letter(it, s);
		} else if ((it->answers = weft_malloc(sizeof *it->answers))) {
			it->answers[0] = s;
			it->n_answers = 1;
			s = NULL;
		}
		free(s);
	}
	if (!a)
		ev_item_error(it, "no answer");
}

static void line(weft_eval_rd *r, json_t *obj, weft_eval_item *it)
{
	ev_rd_check_keys(r, obj, known);
	json_t *id = json_object_get(obj, "id"), *cat = json_object_get(obj, "category");
	if (id && !(it->id = ev_json_text(id)))
		ev_item_error(it, "id is neither a string nor a number");
	it->category = cat ? ev_json_text(cat) : NULL;
	if (!it->category)
		it->category = weft_strndup("", 0);

	json_t *q = json_object_get(obj, "question"), *content = json_object_get(obj, "content");
	json_t *images = json_object_get(obj, "images"), *image = json_object_get(obj, "image");
	if (q && content) {
		ev_item_error(it, "both question and content");
	} else if (content) {
		if (images || image)
			ev_item_error(it, "images come inside content, not beside it");
		read_content(r, content, it);
	} else if (json_is_string(q)) {
		it->prompt = weft_strndup(json_string_value(q), json_string_length(q));
		if (images && !json_is_array(images))
			ev_item_error(it, "images is not a list of paths");
		size_t i;
		json_t *p;
		json_array_foreach(images, i, p) {
			if (!json_is_string(p))
				ev_item_error(it, "image %zu is not a path", i + 1);
			else
				ev_item_add_path(r, it, json_string_value(p));
		}
		if (json_is_string(image) && !images)
			ev_item_add_path(r, it, json_string_value(image));
	} else {
		ev_item_error(it, q ? "question is not a string" : "no question (or content)");
	}
	if (!it->prompt)
		it->prompt = weft_strndup("", 0);

	json_t *choices = json_object_get(obj, "choices");
	if (!choices)
		choices = json_object_get(obj, "options");
	if (choices) {
		it->choices = string_list(choices, &it->n_choices, it, "choice");
		if (it->n_choices > WEFT_EVAL_MAX_CHOICES)
			ev_item_error(it, "%d choices (at most %d)", it->n_choices, WEFT_EVAL_MAX_CHOICES);
	}
	json_t *a = json_object_get(obj, "answer");
	read_answer(a ? a : json_object_get(obj, "answers"), choices, it);
	if (!choices && it->n_answers)
		it->metric = WEFT_METRIC_EXACT;
	json_t *m = json_object_get(obj, "metric");
	if (m) {
		const int k = json_is_string(m) ? weft_metric_find(json_string_value(m)) : -1;
		if (k < 0)
			ev_item_error(it, "metric: %s", json_is_string(m) ? weft_errmsg() : "not a string");
		else
			it->metric = k;
	}
	ev_item_check_placeholders(it);
}

int ev_bench_read_weft(weft_eval_rd *r) { return ev_rd_jsonl(r, line); }

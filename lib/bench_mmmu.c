/* bench_mmmu.c - MMMU-style JSONL (MMMU, MMMU-Pro as exported from their
 * Hugging Face datasets):
 *
 *   {"id": "validation_Art_1", "question": "... <image 1> ...",
 *    "options": "['a', 'b']" or ["a", "b"], "answer": "B",
 *    "image_1": "images/x.png", ..., "question_type": "multiple-choice"}
 *
 * The prompt is lmms-eval's (tasks/mmmu/utils.py construct_prompt): the
 * question, the options as "A. text" lines, a blank line and the
 * instruction (--mc-prompt); an open question gets "Answer the question
 * using a single word or phrase." instead, and the exact metric.  Image N
 * is the image_N field.  Without an id the item's id is its line number;
 * the category is the category or subject field, else the subject in the
 * id (MMMU's "split_Subject_N"), else the one in image_1's file name
 * ("split_Subject_N_k.png"), or its source prefix ("ai2d_00053.png"). */
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "util.h"

#define OPEN_PROMPT "Answer the question using a single word or phrase."

static const char *const known[] = {"id", "question", "options", "answer", "question_type", "subject", "category",
				    NULL};

int ev_bench_detect_mmmu(const json_t *first)
{
	return json_object_get(first, "options") && json_object_get(first, "question") &&
	       !json_object_get(first, "choices");
}

static int all_digits(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* MMMU's extract_subset_name: "split_(.+?)_\d+$" -> the middle. */
static char *subset(const char *s, size_t n)
{
	const char *u1 = memchr(s, '_', n), *u2 = NULL;
	for (const char *p = s + n; p-- > s;)
		if (*p == '_') {
			u2 = p;
			break;
		}
	if (!u1 || u2 <= u1 + 1 || !all_digits(u2 + 1, (size_t)(s + n - u2 - 1)))
		return NULL;
	return weft_strndup(u1 + 1, (size_t)(u2 - u1 - 1));
}

/* The category from image_1's file name. */
static char *category_from_image(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	const char *dot = strrchr(b, '.');
	size_t n = dot ? (size_t)(dot - b) : strlen(b);
	const char *u = NULL;
	for (const char *p = b + n; p-- > b;)
		if (*p == '_') {
			u = p;
			break;
		}
	if (!u || !all_digits(u + 1, (size_t)(b + n - u - 1)))
		return NULL;
	char *c = subset(b, (size_t)(u - b)); /* without the image number */
	if (!c && all_digits(u + 1, (size_t)(b + n - u - 1)) && memchr(b, '_', n) == u && u > b)
		c = weft_strndup(b, (size_t)(u - b)); /* source_N */
	return c;
}

/* options: a list, or the Python repr of one (MMMU's parquet). */
static void read_options(json_t *v, weft_eval_item *it)
{
	if (json_is_string(v)) {
		if (ev_py_list_parse(json_string_value(v), &it->choices, &it->n_choices) != 0)
			ev_item_error(it, "options: %s", weft_errmsg());
	} else if (json_is_array(v)) {
		it->choices = weft_calloc(json_array_size(v) + 1, sizeof *it->choices);
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (!it->choices || !(it->choices[i] = ev_json_text(e))) {
				ev_item_error(it, "option %zu is not a string", i + 1);
				break;
			}
			it->n_choices = (int)i + 1;
		}
	} else {
		ev_item_error(it, "options is neither a list nor a string");
	}
	if (it->n_choices > WEFT_EVAL_MAX_CHOICES)
		ev_item_error(it, "%d options (at most %d)", it->n_choices, WEFT_EVAL_MAX_CHOICES);
}

/* image_1 .. image_N (a missing or null one before the last: an error). */
static void read_images(weft_eval_rd *r, json_t *obj, weft_eval_item *it)
{
	int max = 0;
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		if (strncmp(key, "image_", 6) == 0 && all_digits(key + 6, strlen(key + 6)) && !json_is_null(v)) {
			const long k = strtol(key + 6, NULL, 10);
			max = k > max && k < 1000 ? (int)k : max;
		} else if (strncmp(key, "image_", 6) != 0 || !all_digits(key + 6, strlen(key + 6))) {
			int known_key = 0;
			for (int i = 0; known[i]; i++)
				known_key |= strcmp(known[i], key) == 0;
			if (!known_key)
				ev_rd_unknown(r, key);
		}
	}
	for (int k = 1; k <= max; k++) {
		char name[24];
		snprintf(name, sizeof name, "image_%d", k);
		json_t *p = json_object_get(obj, name);
		if (!json_is_string(p)) {
			ev_item_error(it, "%s is %s", name, p && !json_is_null(p) ? "not a path" : "missing");
			return;
		}
		ev_item_add_path(r, it, json_string_value(p));
	}
}

static void line(weft_eval_rd *r, json_t *obj, weft_eval_item *it)
{
	json_t *id = json_object_get(obj, "id"), *q = json_object_get(obj, "question");
	if (id && !(it->id = ev_json_text(id)))
		ev_item_error(it, "id is neither a string nor a number");
	read_images(r, obj, it);
	json_t *cat = json_object_get(obj, "category");
	if (!cat)
		cat = json_object_get(obj, "subject");
	it->category = cat ? ev_json_text(cat) : NULL;
	if (!it->category && it->id)
		it->category = subset(it->id, strlen(it->id));
	if (!it->category && it->n_images)
		it->category = category_from_image(it->images[0].path);
	if (!it->category)
		it->category = weft_strndup("", 0);

	const char *type = json_string_value(json_object_get(obj, "question_type"));
	const int open = type && strcmp(type, "open") == 0;
	json_t *opts = json_object_get(obj, "options"), *a = json_object_get(obj, "answer");
	if (!open)
		read_options(opts, it);
	if (!json_is_string(q)) {
		ev_item_error(it, q ? "question is not a string" : "no question");
		it->prompt = weft_strndup("", 0);
	} else if (open) {
		ev_wstr w = {0};
		ev_wstr_addf(&w, "%s\n\n%s", json_string_value(q), OPEN_PROMPT);
		it->prompt = ev_wstr_take(&w);
	} else {
		const char *ins = r->o && r->o->mc_prompt ? r->o->mc_prompt : WEFT_EVAL_MC_PROMPT;
		it->prompt = ev_prompt_with_choices(json_string_value(q), it->choices, it->n_choices, ins);
	}
	char *ans = a ? ev_json_text(a) : NULL;
	if (!open) {
		ev_item_set_gold_letter(it, ans);
	} else if (ans) {
		it->metric = WEFT_METRIC_EXACT;
		if (ans[0] != '[' || ev_py_list_parse(ans, &it->answers, &it->n_answers) != 0) {
			if ((it->answers = weft_malloc(sizeof *it->answers))) {
				it->answers[0] = ans;
				it->n_answers = 1;
				ans = NULL;
			}
		}
	} else {
		ev_item_error(it, "no answer");
	}
	free(ans);
	if (it->prompt)
		ev_item_check_placeholders(it);
}

int ev_bench_read_mmmu(weft_eval_rd *r) { return ev_rd_jsonl(r, line); }

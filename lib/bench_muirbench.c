/* bench_muirbench.c - MuirBench-style JSONL (its Hugging Face dataset
 * exported with the images as files):
 *
 *   {"idx": "muir_1", "task": "Image-Text Matching",
 *    "question": "Which <image> ...", "options": ["<image>", "a cat"],
 *    "answer": "A", "image_list": ["img/1.png", "img/2.png"]}
 *
 * "<image>" placeholders, in the question and then in the options, take
 * the images of image_list in order.  The prompt lists the options as for
 * MMMU (the question, "A. text" lines, a blank line, the instruction). */
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "util.h"

static const char *const known[] = {"idx", "id", "task", "category", "question", "options", "answer", "image_list",
				    NULL};

int ev_bench_detect_muirbench(const json_t *first) { return json_object_get(first, "image_list") != NULL; }

static void line(weft_eval_rd *r, json_t *obj, weft_eval_item *it)
{
	ev_rd_check_keys(r, obj, known);
	json_t *id = json_object_get(obj, "idx");
	if (!id)
		id = json_object_get(obj, "id");
	if (id && !(it->id = ev_json_text(id)))
		ev_item_error(it, "idx is neither a string nor a number");
	json_t *cat = json_object_get(obj, "task");
	if (!cat)
		cat = json_object_get(obj, "category");
	it->category = cat ? ev_json_text(cat) : NULL;
	if (!it->category)
		it->category = weft_strndup("", 0);

	json_t *list = json_object_get(obj, "image_list");
	size_t i;
	json_t *p;
	if (list && !json_is_array(list))
		ev_item_error(it, "image_list is not a list");
	json_array_foreach(list, i, p) {
		if (!json_is_string(p))
			ev_item_error(it, "image_list %zu is not a path", i + 1);
		else
			ev_item_add_path(r, it, json_string_value(p));
	}
	json_t *opts = json_object_get(obj, "options");
	if (json_is_array(opts)) {
		it->choices = weft_calloc(json_array_size(opts) + 1, sizeof *it->choices);
		json_array_foreach(opts, i, p) {
			if (!it->choices || !(it->choices[i] = ev_json_text(p))) {
				ev_item_error(it, "option %zu is not a string", i + 1);
				break;
			}
			it->n_choices = (int)i + 1;
		}
	} else if (json_is_string(opts)) {
		if (ev_py_list_parse(json_string_value(opts), &it->choices, &it->n_choices) != 0)
			ev_item_error(it, "options: %s", weft_errmsg());
	} else {
		ev_item_error(it, "no options");
	}
	if (it->n_choices > WEFT_EVAL_MAX_CHOICES)
		ev_item_error(it, "%d options (at most %d)", it->n_choices, WEFT_EVAL_MAX_CHOICES);
	json_t *q = json_object_get(obj, "question");
	const char *ins = r->o && r->o->mc_prompt ? r->o->mc_prompt : WEFT_EVAL_MC_PROMPT;
	if (!json_is_string(q))
		ev_item_error(it, "no question");
	it->prompt = ev_prompt_with_choices(json_is_string(q) ? json_string_value(q) : "", it->choices, it->n_choices,
					    ins);
	char *ans = ev_json_text(json_object_get(obj, "answer"));
	ev_item_set_gold_letter(it, ans);
	free(ans);
	if (it->prompt)
		ev_item_check_placeholders(it);
}

int ev_bench_read_muirbench(weft_eval_rd *r) { return ev_rd_jsonl(r, line); }

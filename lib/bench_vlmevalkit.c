/* bench_vlmevalkit.c - VLMEvalKit's TSV datasets (MMBench, SEEDBench,
 * MMMU, ... as VLMEvalKit downloads them; pandas' to_csv with sep='\t':
 * a field holding a tab, a newline or '"' is quoted, '"' doubled).
 *
 * Columns: index, image (base64; a Python-repr list of them for several
 * images; a cell of at most 64 characters names another row's index, whose
 * image is used - VLMEvalKit's dump_image), question, hint, A, B, ...
 * (options, empty = absent), answer, category (or l2-category); image_path
 * instead of image for files.  The prompt is VLMEvalKit's multiple-choice
 * one (ImageMCQDataset.build_prompt): "Hint: ...\n" when there is a hint,
 * "Question: ...\n", "Options:\n" with "A. text\n" lines, then "Please
 * select the correct answer from the options above. \n" (or --mc-prompt);
 * the images come first, "<image k>\n" each, unless the question places
 * them with <image N> itself.  Without options the prompt is the question
 * and the answer a string (or a Python-repr list of references). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "util.h"

#define TSV_MC_PROMPT "Please select the correct answer from the options above. \n"

int ev_bench_detect_vlmevalkit(const json_t *first) { return 0; /* by the .tsv extension */ }

typedef struct cell {
	size_t off, len;       /* content in the file (inside the quotes) */
	int quoted;
} cell;

/* Split the row at *p into cells (at most max); *p moves to the next
 * row.  The cell count, or -1 for an unterminated quote. */
static int row_cells(const char *data, size_t n, size_t *p, cell *c, int max)
{
	size_t i = *p;
	int k = 0;
	for (;;) {
		cell x = {i, 0, 0};
		if (i < n && data[i] == '"') {
			x.quoted = 1;
			x.off = ++i;
			for (;; i++) {
				if (i >= n)
					return -1;
				if (data[i] == '"') {
					if (i + 1 < n && data[i + 1] == '"') {
						i++;
						continue;
					}
					break;
				}
			}
			x.len = i - x.off;
			i++;
		} else {
			while (i < n && data[i] != '\t' && data[i] != '\n')
				i++;
			x.len = i - x.off;
			if (x.len && data[x.off + x.len - 1] == '\r' && (i >= n || data[i] == '\n'))
				x.len--;
		}
		if (k < max)
			c[k] = x;
		k++;
		if (i < n && data[i] == '\t') {
			i++;
			continue;
		}
		while (i < n && data[i] != '\n') /* junk after a closing quote */
			i++;
		*p = i < n ? i + 1 : n;
		return k;
	}
}

static char *cell_text(const char *data, const cell *c)
{
	ev_wstr w = {0};
	ev_wstr_add(&w, "");
	for (size_t i = 0; i < c->len; i++) {
		ev_wstr_addn(&w, data + c->off + i, 1);
		if (c->quoted && data[c->off + i] == '"')
			i++;
	}
	return ev_wstr_take(&w);
}

enum { C_INDEX, C_IMAGE, C_PATH, C_QUESTION, C_HINT, C_ANSWER, C_CATEGORY, C_L2, C_FIXED };
static const char *const fixed[C_FIXED] = {"index", "image", "image_path", "question", "hint", "answer", "category",
					   "l2-category"};
#define MAXCOL 256

typedef struct tsv {
	int col[C_FIXED];      /* column of each fixed name, -1 absent */
	int opt[WEFT_EVAL_MAX_CHOICES];
	int ncols;
} tsv;

static int header(weft_eval_rd *r, const cell *c, int n, tsv *t)
{
	for (int i = 0; i < C_FIXED; i++)
		t->col[i] = -1;
	for (int i = 0; i < WEFT_EVAL_MAX_CHOICES; i++)
		t->opt[i] = -1;
	t->ncols = n;
	for (int j = 0; j < n && j < MAXCOL; j++) {
		char *name = cell_text(r->data, &c[j]);
		if (!name)
			return -1;
		int used = 0;
		for (int i = 0; i < C_FIXED; i++)
			if (strcmp(name, fixed[i]) == 0)
				t->col[i] = j, used = 1;
		if (strlen(name) == 1 && name[0] >= 'A' && name[0] <= 'Z')
			t->opt[name[0] - 'A'] = j, used = 1;
		if (!used)
			ev_rd_unknown(r, name);
		free(name);
	}
	if (t->col[C_QUESTION] < 0 || t->col[C_INDEX] < 0 || (t->col[C_IMAGE] < 0 && t->col[C_PATH] < 0)) {
		weft_error("not a VLMEvalKit TSV file: its header lacks %s",
			   t->col[C_INDEX] < 0 ? "index" : t->col[C_QUESTION] < 0 ? "question" : "image (or image_path)");
		return -1;
	}
	return 0;
}

static int add_b64(weft_eval_item *it, size_t off, size_t len)
{
	weft_eval_image *im = weft_realloc(it->images, (size_t)(it->n_images + 1) * sizeof *im);
	if (!im)
		return -1;
	it->images = im;
	im[it->n_images++] = (weft_eval_image){.kind = WEFT_EVAL_IMAGE_BASE64, .off = (int64_t)off, .len = (int64_t)len};
	return 0;
}

/* An image cell: one base64 string, or a list of quoted ones. */
static void image_cell(const char *data, const cell *c, weft_eval_item *it)
{
	const char *s = data + c->off;
	if (c->len && s[0] == '[') {
		size_t i = 1;
		while (i < c->len) {
			const char q = s[i];
			if (q == '\'' || q == '"') {
				size_t j = i + 1;
				while (j < c->len && s[j] != q)
					j++;
				if (j >= c->len) {
					ev_item_error(it, "image list: unterminated string");
					return;
				}
				add_b64(it, c->off + i + 1, j - i - 1);
				i = j + 1;
			} else {
				i++;
			}
		}
		if (it->n_images == 0)
			ev_item_error(it, "empty image list");
	} else {
		add_b64(it, c->off, c->len);
	}
}

static int nonempty(const char *s) { return s && *s && strcmp(s, "nan") != 0; }

static void build_prompt(weft_eval_rd *r, weft_eval_item *it, const char *question, const char *hint)
{
	ev_wstr w = {0};
	ev_wstr_add(&w, "");
	if (!strstr(question, "<image"))
		for (int k = 1; k <= it->n_images; k++)
			ev_wstr_addf(&w, "<image %d>\n", k);
	if (it->n_choices) {
		if (nonempty(hint))
			ev_wstr_addf(&w, "Hint: %s\n", hint);
		ev_wstr_addf(&w, "Question: %s\nOptions:\n", question);
		for (int i = 0; i < it->n_choices; i++)
			ev_wstr_addf(&w, "%c. %s\n", 'A' + i, it->choices[i]);
		ev_wstr_add(&w, r->o && r->o->mc_prompt ? r->o->mc_prompt : TSV_MC_PROMPT);
	} else {
		ev_wstr_add(&w, question);
	}
	it->prompt = ev_wstr_take(&w);
}

/* One row into it; the prompt waits for the images (build_prompt): its
 * question and hint go to q[0], q[1]. */
static void row(weft_eval_rd *r, const tsv *t, const cell *c, int n, weft_eval_item *it, char **q)
{
	char *v[C_FIXED] = {0};
	for (int i = 0; i < C_FIXED; i++)
		if (t->col[i] >= 0 && t->col[i] < n && i != C_IMAGE)
			v[i] = cell_text(r->data, &c[t->col[i]]);
	it->id = v[C_INDEX], v[C_INDEX] = NULL;
	it->category = nonempty(v[C_CATEGORY]) ? v[C_CATEGORY] : nonempty(v[C_L2]) ? v[C_L2] : weft_strndup("", 0);
	if (it->category == v[C_CATEGORY])
		v[C_CATEGORY] = NULL;
	if (it->category == v[C_L2])
		v[C_L2] = NULL;
	if (n != t->ncols)
		ev_item_error(it, "%d fields, the header has %d", n, t->ncols);
	for (int i = 0; i < WEFT_EVAL_MAX_CHOICES; i++) {
		char *o = t->opt[i] >= 0 && t->opt[i] < n ? cell_text(r->data, &c[t->opt[i]]) : NULL;
		if (!nonempty(o)) {
			free(o);
			continue;
		}
		if (i != it->n_choices)
			ev_item_error(it, "option %c without option %c", 'A' + i, 'A' + it->n_choices);
		char **ch = weft_realloc(it->choices, (size_t)(it->n_choices + 1) * sizeof *ch);
		if (!ch) {
			free(o);
			break;
		}
		it->choices = ch;
		ch[it->n_choices++] = o;
	}
	if (t->col[C_IMAGE] >= 0 && t->col[C_IMAGE] < n && c[t->col[C_IMAGE]].len > 64)
		image_cell(r->data, &c[t->col[C_IMAGE]], it);
	else if (t->col[C_IMAGE] < 0 && nonempty(v[C_PATH])) {
		char **paths = NULL;
		int k = 0;
		if (v[C_PATH][0] == '[' && ev_py_list_parse(v[C_PATH], &paths, &k) == 0) {
			for (int i = 0; i < k; i++)
				ev_item_add_path(r, it, paths[i]), free(paths[i]);
			free(paths);
		} else {
			ev_item_add_path(r, it, v[C_PATH]);
		}
	}
	q[0] = v[C_QUESTION] ? v[C_QUESTION] : weft_strndup("", 0);
	q[1] = v[C_HINT];
	v[C_QUESTION] = v[C_HINT] = NULL;
	if (it->n_choices) {
		ev_item_set_gold_letter(it, nonempty(v[C_ANSWER]) ? v[C_ANSWER] : NULL);
	} else if (nonempty(v[C_ANSWER])) {
		if (v[C_ANSWER][0] != '[' || ev_py_list_parse(v[C_ANSWER], &it->answers, &it->n_answers) != 0) {
			if ((it->answers = weft_malloc(sizeof *it->answers))) {
				it->answers[0] = v[C_ANSWER], v[C_ANSWER] = NULL;
				it->n_answers = 1;
			}
		}
	}
	for (int i = 0; i < C_FIXED; i++)
		free(v[i]);
}

/* Image cells of at most 64 characters name the row whose image to use. */
static void resolve_refs(weft_eval_rd *r, const tsv *t, cell *refs)
{
	weft_eval_set *s = r->set;
	for (int64_t i = 0; i < s->n; i++) {
		weft_eval_item *it = &s->items[i];
		if (refs[i].len == 0 || it->n_images)
			continue;
		char *name = cell_text(r->data, &refs[i]);
		int64_t j = 0;
		while (name && j < s->n && !(s->items[j].id && strcmp(s->items[j].id, name) == 0))
			j++;
		if (!name || j == s->n)
			ev_item_error(it, "image refers to index '%.64s', which no row has", name ? name : "");
		else if (refs[j].len && s->items[j].n_images == 0)
			ev_item_error(it, "image refers to index '%s', whose image is itself a reference", name);
		else
			for (int k = 0; k < s->items[j].n_images; k++)
				add_b64(it, (size_t)s->items[j].images[k].off, (size_t)s->items[j].images[k].len);
		free(name);
	}
}

int ev_bench_read_vlmevalkit(weft_eval_rd *r)
{
	cell *c = weft_malloc(MAXCOL * sizeof *c), *refs = NULL;
	char **q = NULL; /* question and hint per item */
	size_t cap_refs = 0, cap_q = 0;
	size_t p = 0;
	tsv t;
	int rc = -1, n = c ? row_cells(r->data, r->len, &p, c, MAXCOL) : -1;
	if (n <= 1 || header(r, c, n > MAXCOL ? MAXCOL : n, &t) != 0) {
		if (c && n <= 1)
			weft_error("not a TSV file (its first line has no tab)");
		goto out;
	}
	for (int64_t line = 2; p < r->len; line++) {
		n = row_cells(r->data, r->len, &p, c, MAXCOL);
		if (n == 1 && c[0].len == 0)
			continue; /* an empty line */
		weft_eval_item *it = ev_rd_new_item(r, line);
		if (!it || weft_grow(&refs, &cap_refs, (size_t)r->set->n, sizeof *refs) != 0 ||
		    weft_grow(&q, &cap_q, (size_t)r->set->n * 2, sizeof *q) != 0)
			goto out;
		refs[it->index] = (cell){0};
		q[2 * it->index] = q[2 * it->index + 1] = NULL;
		if (n < 0) {
			ev_item_error(it, "unterminated quoted field");
			p = r->len;
			char id[32];
			snprintf(id, sizeof id, "row %" PRId64, line);
			it->id = weft_strndup(id, strlen(id));
			it->category = weft_strndup("", 0);
			it->prompt = weft_strndup("", 0);
			break;
		}
		row(r, &t, c, n > MAXCOL ? MAXCOL : n, it, q + 2 * it->index);
		const int ic = t.col[C_IMAGE];
		if (ic >= 0 && ic < n && c[ic].len > 0 && c[ic].len <= 64)
			refs[it->index] = c[ic];
	}
	resolve_refs(r, &t, refs);
	for (int64_t i = 0; i < r->set->n; i++) {
		weft_eval_item *it = &r->set->items[i];
		if (q[2 * i])
			build_prompt(r, it, q[2 * i], q[2 * i + 1]);
		if (it->prompt)
			ev_item_check_placeholders(it);
	}
	rc = 0;
out:
	for (int64_t i = 0; q && i < 2 * r->set->n; i++)
		free(q[i]);
	free(q);
	free(c);
	free(refs);
	return rc;
}

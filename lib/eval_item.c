/* eval_item.c - datasets: reading a file with the reader its format
 * needs (bench_readers.def), and the item helpers the readers share. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval_int.h"
#include "util.h"

/* ---- the reader family ---- */

typedef struct reader_row {
	weft_method m;
	int (*read)(weft_eval_rd *r);
	int (*detect)(const json_t *first);
} reader_row;

enum {
#define WEFT_BENCH_READER(ID, name, summary) READER_##ID,
#include "bench_readers.def"
#undef WEFT_BENCH_READER
	READER_COUNT
};

static const reader_row readers[READER_COUNT] = {
#define WEFT_BENCH_READER(ID, name, summary) \
	[READER_##ID] = {{#name, summary, "", ""}, ev_bench_read_##name, ev_bench_detect_##name},
#include "bench_readers.def"
#undef WEFT_BENCH_READER
};

static const weft_family reader_family = {"input format", readers, READER_COUNT, sizeof readers[0]};

const weft_family *weft_eval_readers(void) { return &reader_family; }

/* ---- items ---- */

weft_eval_item *ev_rd_new_item(weft_eval_rd *r, int64_t line)
{
	weft_eval_set *s = r->set;
	if (weft_grow(&s->items, &r->cap, (size_t)s->n + 1, sizeof *s->items) != 0)
		return NULL;
	weft_eval_item *it = &s->items[s->n];
	memset(it, 0, sizeof *it);
	it->index = s->n++;
	it->line = line;
	it->gold = -1;
	it->metric = WEFT_METRIC_EXACT;
	return it;
}

void ev_item_error(weft_eval_item *it, const char *fmt, ...)
{
	if (it->error)
		return;
	va_list ap;
	va_start(ap, fmt);
	char buf[512];
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	it->error = weft_strndup(buf, strlen(buf));
}

void ev_rd_unknown(weft_eval_rd *r, const char *key)
{
	weft_eval_set *s = r->set;
	for (int i = 0; i < s->n_unknown; i++)
		if (strcmp(s->unknown[i], key) == 0)
			return;
	char **u = weft_realloc(s->unknown, (size_t)(s->n_unknown + 1) * sizeof *u);
	if (!u)
		return;
	s->unknown = u;
	if ((u[s->n_unknown] = weft_strndup(key, strlen(key))))
		s->n_unknown++;
}

void ev_rd_check_keys(weft_eval_rd *r, json_t *obj, const char *const *known)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		int k = 0;
		while (known[k] && strcmp(known[k], key) != 0)
			k++;
		if (!known[k])
			ev_rd_unknown(r, key);
	}
}

int ev_item_add_path(weft_eval_rd *r, weft_eval_item *it, const char *rel)
{
	weft_eval_image *im = weft_realloc(it->images, (size_t)(it->n_images + 1) * sizeof *im);
	if (!im)
		return -1;
	it->images = im;
	im = &im[it->n_images];
	memset(im, 0, sizeof *im);
	im->kind = WEFT_EVAL_IMAGE_PATH;
	ev_wstr w = {0};
	if (rel[0] != '/' && r->set->dir[0])
		ev_wstr_addf(&w, "%s/", r->set->dir);
	ev_wstr_add(&w, rel);
	if (!(im->path = ev_wstr_take(&w)))
		return -1;
	it->n_images++;
	return 0;
}

/* The next "<image>" / "<image N>" in s (textprompt.c's syntax): its
 * start, *len and *number (0 for a bare one); NULL when none. */
static const char *next_placeholder(const char *s, size_t *len, int *number)
{
	for (const char *p = strstr(s, "<image"); p; p = strstr(p + 1, "<image")) {
		const char *q = p + 6;
		if (*q == '>') {
			*len = 7;
			*number = 0;
			return p;
		}
		if (*q++ != ' ')
			continue;
		long n = 0;
		const char *d = q;
		while (*q >= '0' && *q <= '9' && n < 1000000)
			n = n * 10 + (*q++ - '0');
		if (q == d || *q != '>' || n < 1)
			continue;
		*len = (size_t)(q + 1 - p);
		*number = (int)n;
		return p;
	}
	return NULL;
}

int ev_item_check_placeholders(weft_eval_item *it)
{
	int *used = weft_calloc((size_t)it->n_images + 1, sizeof *used);
	if (!used)
		return -1;
	int next = 1, count = 0, bare = 0, max = 0;
	size_t len;
	int number;
	for (const char *p = next_placeholder(it->prompt, &len, &number); p;
	     p = next_placeholder(p + len, &len, &number)) {
		const int img = number ? number : next;
		bare += number == 0;
		count++;
		max = img > max ? img : max;
		if (img <= it->n_images)
			used[img - 1] = 1;
		next = img + 1;
	}
	if (max > it->n_images) {
		if (bare == count)
			ev_item_error(it, "%d <image> placeholder%s but %d image%s", count, count == 1 ? "" : "s",
				      it->n_images, it->n_images == 1 ? "" : "s");
		else
			ev_item_error(it, "<image %d> but the item has %d image%s", max, it->n_images,
				      it->n_images == 1 ? "" : "s");
	}
	for (int i = 0; i < it->n_images && !it->error; i++)
		if (!used[i]) {
			if (bare == count && count)
				ev_item_error(it, "%d <image> placeholder%s but %d images", count, count == 1 ? "" : "s",
					      it->n_images);
			else
				ev_item_error(it, "image %d (%s) has no <image %d> placeholder", i + 1,
					      it->images[i].kind == WEFT_EVAL_IMAGE_PATH ? it->images[i].path : "base64",
					      i + 1);
		}
	free(used);
	return 0;
}

void ev_item_set_gold_letter(weft_eval_item *it, const char *letter)
{
	it->metric = WEFT_METRIC_MC;
	if (!letter) {
		ev_item_error(it, "no answer");
		return;
	}
	const size_t n = strlen(letter);
	if (n == 1 && letter[0] >= 'A' && letter[0] <= 'Z') {
		if (letter[0] - 'A' >= it->n_choices)
			ev_item_error(it, "answer '%c' is outside the options A..%c", letter[0], 'A' + it->n_choices - 1);
		else
			it->gold = letter[0] - 'A';
	} else {
		for (int i = 0; i < it->n_choices && it->gold < 0; i++)
			if (strcmp(it->choices[i], letter) == 0)
				it->gold = i;
		if (it->gold < 0) {
			char esc[80];
			weft_escape(letter, n, esc, sizeof esc);
			ev_item_error(it, "answer '%s' is neither an option letter nor an option's text", esc);
		}
	}
	if (it->gold >= 0) {
		char l[2] = {(char)('A' + it->gold), 0};
		char **a = weft_malloc(sizeof *a);
		if (a && (a[0] = weft_strndup(l, 1))) {
			it->answers = a;
			it->n_answers = 1;
		} else {
			free(a);
		}
	}
}

char *ev_prompt_with_choices(const char *question, char *const *choices, int n, const char *instruction)
{
	ev_wstr w = {0};
	ev_wstr_add(&w, question);
	for (int i = 0; i < n; i++)
		ev_wstr_addf(&w, "\n%c. %s", 'A' + i, choices[i]);
	if (instruction && *instruction)
		ev_wstr_addf(&w, "\n\n%s", instruction);
	return ev_wstr_take(&w);
}

char *ev_json_text(const json_t *v)
{
	char buf[64];
	if (json_is_string(v))
		return weft_strndup(json_string_value(v), json_string_length(v));
	if (json_is_integer(v))
		snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
	else
		return NULL;
	return weft_strndup(buf, strlen(buf));
}

/* ---- JSONL ---- */

int ev_rd_jsonl(weft_eval_rd *r, void (*line)(weft_eval_rd *r, json_t *obj, weft_eval_item *it))
{
	const char *p = r->data, *end = r->data + r->len;
	for (int64_t ln = 1; p < end; ln++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		size_t b = 0, k = (size_t)(e - p);
		while (b < k && (p[b] == ' ' || p[b] == '\t' || p[b] == '\r'))
			b++;
		if (b < k) {
			weft_eval_item *it = ev_rd_new_item(r, ln);
			if (!it)
				return -1;
			json_error_t err;
			json_t *obj = json_loadb(p, k, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
			if (!obj)
				ev_item_error(it, "malformed JSON: %s (column %d)", err.text, err.column);
			else if (!json_is_object(obj))
				ev_item_error(it, "not a JSON object");
			else
				line(r, obj, it);
			json_decref(obj);
		}
		p = e + 1;
	}
	return 0;
}

/* ---- reading a dataset ---- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		weft_error("%s", strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		weft_error("is a directory");
		return NULL;
	}
	ev_wstr w = {0};
	char buf[1 << 16];
	size_t k;
	while ((k = fread(buf, 1, sizeof buf, f)) > 0)
		ev_wstr_addn(&w, buf, k);
	const int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(w.s);
		weft_error("read error");
		return NULL;
	}
	*len = w.n;
	return ev_wstr_take(&w);
}

static int detect(const char *path, const char *data, size_t len)
{
	const size_t pl = strlen(path);
	if (pl > 4 && strcmp(path + pl - 4, ".tsv") == 0)
		return READER_VLMEVALKIT;
	const char *nl = memchr(data, '\n', len);
	json_error_t err;
	json_t *first = json_loadb(data, nl ? (size_t)(nl - data) : len, 0, &err);
	int found = -1;
	if (!json_is_object(first)) {
		weft_error("not a JSONL file (first line: %s) nor a .tsv file; name the format with --format",
			   first ? "not a JSON object" : err.text);
	} else {
		for (int i = 0; i < READER_COUNT && found < 0; i++)
			if (readers[i].detect && readers[i].detect(first))
				found = i;
	}
	json_decref(first);
	return found;
}

/* The metric asked for, and what it needs: mc needs choices; another
 * metric on an item with choices is scored against the gold option's text. */
static void item_finish(weft_eval_item *it, int metric)
{
	if (!it->category)
		it->category = weft_strndup("", 0);
	if (!it->prompt)
		it->prompt = weft_strndup("", 0);
	if (!it->id) {
		char id[32];
		snprintf(id, sizeof id, "%" PRId64, it->line);
		it->id = weft_strndup(id, strlen(id));
	}
	if (!it->category || !it->prompt || !it->id) {
		ev_item_error(it, "out of memory");
		return;
	}
	if (metric >= 0)
		it->metric = metric;
	if (it->metric == WEFT_METRIC_MC && it->n_choices == 0)
		ev_item_error(it, "metric mc but no choices");
	if (it->metric != WEFT_METRIC_MC && it->gold >= 0 && it->n_answers == 1) {
		char *t = weft_strndup(it->choices[it->gold], strlen(it->choices[it->gold]));
		if (t) {
			free(it->answers[0]);
			it->answers[0] = t;
		}
	}
	if (it->metric != WEFT_METRIC_MC && it->n_answers == 0)
		ev_item_error(it, "no answer");
}

/* The items that have an id, sorted by id then index (duplicates: the
 * first is the lowest index); n log n where a pairwise check was n^2. */
typedef struct id_entry {
	const char *id;
	int64_t index;
} id_entry;

static int cmp_id_entry(const void *a, const void *b)
{
	const id_entry *x = a, *y = b;
	const int c = strcmp(x->id, y->id);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

static id_entry *id_index(const weft_eval_set *s, int64_t *n)
{
	id_entry *e = weft_malloc(((size_t)s->n + 1) * sizeof *e);
	int64_t k = 0;
	for (int64_t i = 0; e && i < s->n; i++)
		if (s->items[i].id)
			e[k++] = (id_entry){s->items[i].id, i};
	if (e)
		qsort(e, (size_t)k, sizeof *e, cmp_id_entry);
	*n = k;
	return e;
}

int weft_eval_read(weft_eval_set *s, const char *path, const weft_eval_read_opts *o)
{
	memset(s, 0, sizeof *s);
	weft_eval_rd r = {.set = s, .o = o};
	const char *slash = strrchr(path, '/');
	s->path = weft_strndup(path, strlen(path));
	s->dir = slash ? weft_strndup(path, (size_t)(slash - path) + (slash == path)) : weft_strndup("", 0);
	char *data = s->path && s->dir ? read_file(path, &r.len) : NULL;
	if (!data)
		goto fail;
	if (r.len == 0) {
		weft_error("empty file");
		goto fail;
	}
	ev_sha256_hex(data, r.len, s->sha256);
	r.data = data;
	int fmt = o && o->format ? weft_family_find(&reader_family, o->format) : detect(path, data, r.len);
	if (fmt < 0)
		goto fail;
	s->format = readers[fmt].m.name;
	if (readers[fmt].read(&r) != 0)
		goto fail;
	if (s->n == 0) {
		weft_error("no items");
		goto fail;
	}
	free(data);
	data = NULL;
	for (int64_t i = 0; i < s->n; i++)
		item_finish(&s->items[i], o ? o->metric : -1);
	/* duplicate ids: the later ones fail (results are keyed by index and id) */
	int64_t n_ids;
	id_entry *ids = id_index(s, &n_ids);
	if (!ids)
		goto fail;
	for (int64_t i = 1, first = 0; i < n_ids; i++) { /* first: the lowest index of i's run */
		if (strcmp(ids[i - 1].id, ids[i].id) != 0)
			first = i;
		else
			ev_item_error(&s->items[ids[i].index], "duplicate id (first on line %" PRId64 ")",
				      s->items[ids[first].index].line);
	}
	free(ids);
	return 0;
fail:
	free(data);
	weft_eval_set_free(s);
	return -1;
}

static void item_free(weft_eval_item *it)
{
	free(it->id);
	free(it->category);
	free(it->prompt);
	for (int i = 0; i < it->n_images; i++)
		free(it->images[i].path);
	free(it->images);
	for (int i = 0; i < it->n_choices; i++)
		free(it->choices[i]);
	free(it->choices);
	for (int i = 0; i < it->n_answers; i++)
		free(it->answers[i]);
	free(it->answers);
	free(it->error);
}

void weft_eval_set_free(weft_eval_set *s)
{
	for (int64_t i = 0; i < s->n; i++)
		item_free(&s->items[i]);
	free(s->items);
	for (int i = 0; i < s->n_unknown; i++)
		free(s->unknown[i]);
	free(s->unknown);
	free(s->path);
	free(s->dir);
	memset(s, 0, sizeof *s);
}

/* ---- image bytes ---- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static unsigned char *b64_decode(const char *s, size_t n, size_t *len)
{
	unsigned char *out = weft_malloc(n / 4 * 3 + 3);
	if (!out)
		return NULL;
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const unsigned char c = (unsigned char)s[i];
		if (c == '=') {
			pad++;
			continue;
		}
		const int v = b64_value(c);
		if (v < 0 || pad) {
			weft_error("bad base64 at character %zu", i + 1);
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[k++] = (unsigned char)(acc >> bits);
		}
	}
	if (k == 0 || pad > 2) {
		weft_error("bad base64 (%s)", k == 0 ? "no data" : "padding");
		free(out);
		return NULL;
	}
	*len = k;
	return out;
}

unsigned char *weft_eval_image_bytes(const weft_eval_set *s, const weft_eval_image *im, size_t *len)
{
	const char *path = im->kind == WEFT_EVAL_IMAGE_PATH ? im->path : s->path;
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		weft_error("%s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	unsigned char *buf = NULL;
	size_t n = im->kind == WEFT_EVAL_IMAGE_PATH ? 0 : (size_t)im->len;
	if (im->kind == WEFT_EVAL_IMAGE_PATH) {
		if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
			weft_error("%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
			close(fd);
			return NULL;
		}
		n = (size_t)st.st_size;
	}
	if (!(buf = weft_malloc(n + 1))) {
		close(fd);
		return NULL;
	}
	size_t got = 0;
	while (got < n) {
		const ssize_t k = pread(fd, buf + got, n - got, (im->kind == WEFT_EVAL_IMAGE_PATH ? 0 : im->off) + (off_t)got);
		if (k <= 0) {
			weft_error("%s: %s", path, k < 0 ? strerror(errno) : "file shrank while reading");
			free(buf);
			close(fd);
			return NULL;
		}
		got += (size_t)k;
	}
	close(fd);
	if (im->kind == WEFT_EVAL_IMAGE_PATH) {
		*len = n;
		return buf;
	}
	unsigned char *dec = b64_decode((const char *)buf, n, len);
	free(buf);
	return dec;
}

/* ---- predictions ---- */

/* Item index of id in s (the first with it), or -1: a binary search of
 * id_index's entries. */
static int64_t find_id(const id_entry *ids, int64_t n, const char *id)
{
	int64_t lo = 0, hi = n;
	while (lo < hi) {
		const int64_t mid = lo + (hi - lo) / 2;
		if (strcmp(ids[mid].id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && strcmp(ids[lo].id, id) == 0 ? ids[lo].index : -1;
}

int weft_eval_read_preds(const weft_eval_set *s, const char *path, char ***preds, size_t **lens, char sha256[65])
{
	size_t len;
	char *data = read_file(path, &len);
	char **p = weft_calloc((size_t)s->n + 1, sizeof *p);
	size_t *l = weft_calloc((size_t)s->n + 1, sizeof *l);
	int64_t *line_of = weft_calloc((size_t)s->n + 1, sizeof *line_of), n_ids = 0;
	id_entry *ids = id_index(s, &n_ids);
	int rc = -1;
	if (!data || !p || !l || !line_of || !ids)
		goto out;
	ev_sha256_hex(data, len, sha256);
	const char *q = data, *end = data + len;
	for (int64_t ln = 1; q < end; ln++) {
		const char *nl = memchr(q, '\n', (size_t)(end - q)), *e = nl ? nl : end;
		const char *b = q;
		while (b < e && (*b == ' ' || *b == '\t' || *b == '\r'))
			b++;
		if (b == e) { /* a blank line */
			q = e + 1;
			continue;
		}
		json_error_t err;
		json_t *o = json_loadb(q, (size_t)(e - q), JSON_REJECT_DUPLICATES, &err);
		q = e + 1;
		if (!json_is_object(o)) {
			weft_error("line %" PRId64 ": %s", ln, o ? "not a JSON object" : err.text);
			json_decref(o);
			goto out;
		}
		char *id = ev_json_text(json_object_get(o, "id"));
		json_t *v = json_object_get(o, "prediction");
		v = v ? v : json_object_get(o, "response");
		v = v ? v : json_object_get(o, "text");
		const int64_t k = id ? find_id(ids, n_ids, id) : -1;
		if (!id || !json_is_string(v) || k < 0 || p[k]) {
			if (!id)
				weft_error("line %" PRId64 ": no id", ln);
			else if (!json_is_string(v))
				weft_error("line %" PRId64 ": no prediction (a string: prediction, response or text)", ln);
			else if (k < 0)
				weft_error("line %" PRId64 ": id '%.80s' is not in the gold file", ln, id);
			else
				weft_error("line %" PRId64 ": id '%.80s' again (first on line %" PRId64 ")", ln, id, line_of[k]);
			free(id);
			json_decref(o);
			goto out;
		}
		free(id);
		p[k] = weft_strndup(json_string_value(v), json_string_length(v));
		l[k] = json_string_length(v);
		line_of[k] = ln;
		json_decref(o);
		if (!p[k])
			goto out;
	}
	for (int64_t i = 0; i < s->n; i++)
		if (!p[i] && !(s->items[i].error && find_id(ids, n_ids, s->items[i].id) != i)) {
			weft_error("no prediction for id '%.80s' (gold line %" PRId64 ")", s->items[i].id, s->items[i].line);
			goto out;
		}
	rc = 0;
out:
	if (rc) {
		for (int64_t i = 0; p && i < s->n; i++)
			free(p[i]);
		free(p);
		free(l);
	} else {
		*preds = p;
		*lens = l;
	}
	free(line_of);
	free(ids);
	free(data);
	return rc;
}

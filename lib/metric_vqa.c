/* metric_vqa.c - VQAv2 accuracy as the official evaluation computes it
 * (GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py,
 * VQAEval.evaluate, processPunctuation, processDigitArticle), with Python
 * 3's string semantics:
 *
 *   prediction: newlines and tabs become spaces, strip(); punctuation:
 *     each of ; : / ' [ ] " ( ) = + \ _ > < @ ` , ? is deleted when the
 *     text has it next to a space or has digit,digit anywhere, else
 *     replaced by a space; then '.' not followed by a digit is deleted
 *     (the first 32 only: the script passes re.UNICODE, 32, as sub's
 *     count); digits/articles: lower(), split(), none/zero..ten -> 0..10,
 *     a/an/the dropped, contractions restored (the script's table, curly
 *     apostrophes included), joined by spaces
 *   references: punctuation processing only, and only when they disagree
 *   score: for each reference left out, min(1, matching others / 3); the
 *     mean over references
 *
 * lmms-eval and VLMEvalKit process references fully and always (a known
 * difference, see reference.md); this is the official rule. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "util.h"

static const char *const contractions[][2] = {
	{"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"}, {"couldnt", "couldn't"},
	{"couldn'tve", "couldn’t’ve"}, {"couldnt’ve", "couldn’t’ve"}, {"didnt", "didn’t"}, {"doesnt", "doesn’t"},
	{"dont", "don’t"}, {"hadnt", "hadn’t"}, {"hadnt’ve", "hadn’t’ve"}, {"hadn'tve", "hadn’t’ve"},
	{"hasnt", "hasn’t"}, {"havent", "haven’t"}, {"hed", "he’d"}, {"hed’ve", "he’d’ve"}, {"he’dve", "he’d’ve"},
	{"hes", "he’s"}, {"howd", "how’d"}, {"howll", "how’ll"}, {"hows", "how’s"}, {"Id’ve", "I’d’ve"},
	{"I’dve", "I’d’ve"}, {"Im", "I’m"}, {"Ive", "I’ve"}, {"isnt", "isn’t"}, {"itd", "it’d"}, {"itd’ve", "it’d’ve"},
	{"it’dve", "it’d’ve"}, {"itll", "it’ll"}, {"let’s", "let’s"}, {"maam", "ma’am"}, {"mightnt", "mightn’t"},
	{"mightnt’ve", "mightn’t’ve"}, {"mightn’tve", "mightn’t’ve"}, {"mightve", "might’ve"}, {"mustnt", "mustn’t"},
	{"mustve", "must’ve"}, {"neednt", "needn’t"}, {"notve", "not’ve"}, {"oclock", "o’clock"},
	{"oughtnt", "oughtn’t"}, {"ow’s’at", "’ow’s’at"}, {"’ows’at", "’ow’s’at"}, {"’ow’sat", "’ow’s’at"},
	{"shant", "shan’t"}, {"shed’ve", "she’d’ve"}, {"she’dve", "she’d’ve"}, {"she’s", "she’s"},
	{"shouldve", "should’ve"}, {"shouldnt", "shouldn’t"}, {"shouldnt’ve", "shouldn’t’ve"},
	{"shouldn’tve", "shouldn’t’ve"}, {"somebody’d", "somebodyd"}, {"somebodyd’ve", "somebody’d’ve"},
	{"somebody’dve", "somebody’d’ve"}, {"somebodyll", "somebody’ll"}, {"somebodys", "somebody’s"},
	{"someoned", "someone’d"}, {"someoned’ve", "someone’d’ve"}, {"someone’dve", "someone’d’ve"},
	{"someonell", "someone’ll"}, {"someones", "someone’s"}, {"somethingd", "something’d"},
	{"somethingd’ve", "something’d’ve"}, {"something’dve", "something’d’ve"}, {"somethingll", "something’ll"},
	{"thats", "that’s"}, {"thered", "there’d"}, {"thered’ve", "there’d’ve"}, {"there’dve", "there’d’ve"},
	{"therere", "there’re"}, {"theres", "there’s"}, {"theyd", "they’d"}, {"theyd’ve", "they’d’ve"},
	{"they’dve", "they’d’ve"}, {"theyll", "they’ll"}, {"theyre", "they’re"}, {"theyve", "they’ve"},
	{"twas", "’twas"}, {"wasnt", "wasn’t"}, {"wed’ve", "we’d’ve"}, {"we’dve", "we’d’ve"}, {"weve", "we've"},
	{"werent", "weren’t"}, {"whatll", "what’ll"}, {"whatre", "what’re"}, {"whats", "what’s"},
	{"whatve", "what’ve"}, {"whens", "when’s"}, {"whered", "where’d"}, {"wheres", "where's"},
	{"whereve", "where’ve"}, {"whod", "who’d"}, {"whod’ve", "who’d’ve"}, {"who’dve", "who’d’ve"},
	{"wholl", "who’ll"}, {"whos", "who’s"}, {"whove", "who've"}, {"whyll", "why’ll"}, {"whyre", "why’re"},
	{"whys", "why’s"}, {"wont", "won’t"}, {"wouldve", "would’ve"}, {"wouldnt", "wouldn’t"},
	{"wouldnt’ve", "wouldn’t’ve"}, {"wouldn’tve", "wouldn’t’ve"}, {"yall", "y’all"}, {"yall’ll", "y’all’ll"},
	{"y’allll", "y’all’ll"}, {"yall’d’ve", "y’all’d’ve"}, {"y’alld’ve", "y’all’d’ve"}, {"y’all’dve", "y’all’d’ve"},
	{"youd", "you’d"}, {"youd’ve", "you’d’ve"}, {"you’dve", "you’d’ve"}, {"youll", "you’ll"},
	{"youre", "you’re"}, {"youve", "you’ve"}};

static const char *const numbers[][2] = {{"none", "0"}, {"zero", "0"}, {"one", "1"},   {"two", "2"},
					  {"three", "3"}, {"four", "4"}, {"five", "5"}, {"six", "6"},
					  {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"}};

static const char punct[] = ";:/'[]\"()=+\\_><@`,?";

/* Python 3's re: \d is any Unicode decimal digit (PCRE2 with UCP). */
static pcre2_code *re_comma, *re_period;
static pthread_once_t re_once = PTHREAD_ONCE_INIT;

static void re_init(void)
{
	int err;
	PCRE2_SIZE off;
	const uint32_t f = PCRE2_UTF | PCRE2_UCP;
	re_comma = pcre2_compile((PCRE2_SPTR) "\\d,\\d", PCRE2_ZERO_TERMINATED, f, &err, &off, NULL);
	re_period = pcre2_compile((PCRE2_SPTR) "\\.(?!\\d)", PCRE2_ZERO_TERMINATED, f, &err, &off, NULL);
}

/* Matches of re in s (valid UTF-8) from offset at, up to max: their start
 * offsets into pos; the count, -1 on error. */
static int matches(const pcre2_code *re, const char *s, size_t n, size_t *pos, int max)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md)
		return -1;
	int k = 0;
	size_t at = 0;
	while (k < max && at <= n) {
		const int rc = pcre2_match(re, (PCRE2_SPTR)s, n, at, 0, md, NULL);
		if (rc < 0)
			break;
		const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		pos[k++] = ov[0];
		at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
	}
	pcre2_match_data_free(md);
	return k;
}

/* str.replace(p, rep) for a one-byte p. */
static char *replace_char(const char *s, char p, const char *rep)
{
	ev_wstr o = {0};
	ev_wstr_add(&o, "");
	for (; *s; s++) {
		if (*s == p)
			ev_wstr_add(&o, rep);
		else
			ev_wstr_addn(&o, s, 1);
	}
	return ev_wstr_take(&o);
}

/* processPunctuation(in) (in: valid UTF-8, NUL-terminated). */
static char *process_punctuation(const char *in)
{
	pthread_once(&re_once, re_init);
	if (!re_comma || !re_period) {
		weft_error("cannot compile the VQA punctuation patterns");
		return NULL;
	}
	const size_t n = strlen(in);
	size_t pos[32];
	const int comma = matches(re_comma, in, n, pos, 1) > 0;
	char *out = weft_strndup(in, n);
	for (const char *p = punct; *p && out; p++) {
		const char sp[3] = {*p, ' ', 0}, ps[3] = {' ', *p, 0};
		const int del = strstr(in, sp) || strstr(in, ps) || comma;
		char *o = replace_char(out, *p, del ? "" : " ");
		free(out);
		out = o;
	}
	if (!out)
		return NULL;
	/* periodStrip.sub("", out, re.UNICODE): at most 32 removals */
	const size_t m = strlen(out);
	const int k = matches(re_period, out, m, pos, 32);
	ev_wstr o = {0};
	ev_wstr_add(&o, "");
	size_t from = 0;
	for (int i = 0; i < k; i++) {
		ev_wstr_addn(&o, out + from, pos[i] - from);
		from = pos[i] + 1;
	}
	ev_wstr_addn(&o, out + from, m - from);
	free(out);
	return ev_wstr_take(&o);
}

static void digit_article_word(void *ctx, const char *w, size_t n);

/* processDigitArticle(in). */
static char *process_digit_article(const char *in)
{
	size_t ln;
	char *low = ev_py_lower(in, strlen(in), &ln);
	if (!low)
		return NULL;
	ev_wstr o = {0};
	ev_wstr_add(&o, "");
	/* split() into words, through the joiner below */
	size_t i = 0, start = 0;
	int inw = 0, k;
	while (i <= ln) {
		const int end = i == ln;
		const int sp = end || ev_py_isspace(ev_utf8_next(low + i, low + ln, &k));
		if (end)
			k = 1;
		if (!sp && !inw) {
			inw = 1;
			start = i;
		} else if (sp && inw) {
			inw = 0;
			digit_article_word(&o, low + start, i - start);
		}
		i += (size_t)k;
	}
	free(low);
	return ev_wstr_take(&o);
}

static int word_is(const char *w, size_t n, const char *s) { return strlen(s) == n && memcmp(w, s, n) == 0; }

static void digit_article_word(void *ctx, const char *w, size_t n)
{
	ev_wstr *o = ctx;
	for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
		if (word_is(w, n, numbers[i][0])) {
			w = numbers[i][1];
			n = strlen(w);
			break;
		}
	if (word_is(w, n, "a") || word_is(w, n, "an") || word_is(w, n, "the"))
		return;
	for (size_t i = 0; i < sizeof contractions / sizeof contractions[0]; i++)
		if (word_is(w, n, contractions[i][0])) {
			w = contractions[i][1];
			n = strlen(w);
			break;
		}
	if (o->n)
		ev_wstr_add(o, " ");
	ev_wstr_addn(o, w, n);
}

/* The prediction's normalisation (evaluate()'s resAns). */
static char *normalise_prediction(const char *pred, size_t len)
{
	size_t n;
	char *s = ev_utf8_sanitize(pred, len, &n);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n' || s[i] == '\t')
			s[i] = ' ';
	size_t b, e;
	ev_py_strip_ws(s, n, &b, &e);
	s[e] = 0;
	char *p = process_punctuation(s + b);
	free(s);
	char *d = p ? process_digit_article(p) : NULL;
	free(p);
	return d;
}

double weft_vqa_accuracy(const char *pred, size_t len, char *const *answers, int n, char **norm)
{
	char *res = normalise_prediction(pred, len);
	char **gt = weft_calloc((size_t)n + 1, sizeof *gt);
	double acc = -1;
	if (!res || !gt)
		goto out;
	int differ = 0;
	for (int i = 1; i < n; i++)
		differ |= strcmp(answers[i], answers[0]) != 0;
	for (int i = 0; i < n; i++) {
		size_t k;
		char *a = ev_utf8_sanitize(answers[i], strlen(answers[i]), &k);
		gt[i] = differ && a ? process_punctuation(a) : a;
		if (differ)
			free(a);
		if (!gt[i])
			goto out;
	}
	double sum = 0;
	for (int i = 0; i < n; i++) {
		int match = 0;
		for (int j = 0; j < n; j++)
			match += j != i && strcmp(gt[j], res) == 0;
		sum += match >= 3 ? 1.0 : match / 3.0;
	}
	acc = n ? sum / n : 0.0;
out:
	for (int i = 0; gt && i < n; i++)
		free(gt[i]);
	free(gt);
	if (norm && acc >= 0)
		*norm = res;
	else
		free(res);
	return acc;
}

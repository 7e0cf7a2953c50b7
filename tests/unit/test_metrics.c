/* test_metrics.c - eval-interleaved's metrics against golden values.
 *
 * tests/data/eval/metrics-golden.jsonl holds what the harnesses' own
 * Python gives (scripts/gen-eval-metrics.py: MMMU's, lmms-eval's and
 * MMMU-Pro's parse_multi_choice_response, the official vqaEval.py,
 * lmms-eval's anls, Python's random.choice); every line is checked here.
 * The hand-checked cases below were worked out on paper from the rules'
 * text (the comments say how) and agree with the golden file where both
 * have them. */
#include <jansson.h>

#include "eval.h"
#include "test.h"
#include "util.h"

static int golden_count[4];

static char **strings(json_t *a, int *n)
{
	*n = (int)json_array_size(a);
	char **s = calloc((size_t)*n + 1, sizeof *s);
	for (int i = 0; i < *n; i++)
		s[i] = (char *)json_string_value(json_array_get(a, (size_t)i));
	return s;
}

static void golden(void)
{
	json_error_t err;
	FILE *f = fopen("tests/data/eval/metrics-golden.jsonl", "r");
	if (!f)
		SKIP("tests/data/eval/metrics-golden.jsonl not found (run from the repository root)");
	char line[8192];
	int ln = 0;
	while (fgets(line, sizeof line, f)) {
		ln++;
		json_t *o = json_loads(line, 0, &err);
		if (!o) {
			FAILF("line %d: %s", ln, err.text);
			break;
		}
		const char *kind = json_string_value(json_object_get(o, "kind"));
		if (strcmp(kind, "mc") == 0) {
			const char *resp = json_string_value(json_object_get(o, "response"));
			int n;
			char **ch = strings(json_object_get(o, "choices"), &n);
			const int mode = weft_mc_extract_find(json_string_value(json_object_get(o, "mode")));
			const char *rule;
			const int got = weft_mc_extract(mode, resp, strlen(resp), ch, n, NULL, "x", &rule);
			const char *want = json_string_value(json_object_get(o, "letter"));
			const int want_i = want[0] ? want[0] - 'A' : -1;
			if (got != want_i || strcmp(rule, json_string_value(json_object_get(o, "rule"))) != 0)
				FAILF("line %d (%s, '%s'): got %d by %s, expected %d by %s", ln,
				      json_string_value(json_object_get(o, "mode")), resp, got, rule, want_i,
				      json_string_value(json_object_get(o, "rule")));
			free(ch);
			golden_count[0]++;
		} else if (strcmp(kind, "vqa") == 0 || strcmp(kind, "anls") == 0) {
			const char *p = json_string_value(json_object_get(o, "prediction"));
			int n;
			char **a = strings(json_object_get(o, "answers"), &n);
			char *norm = NULL;
			const int vqa = kind[0] == 'v';
			const double s = vqa ? weft_vqa_accuracy(p, strlen(p), a, n, &norm) : weft_anls(p, strlen(p), a, n);
			const double want = json_number_value(json_object_get(o, "score"));
			if (s != want)
				FAILF("line %d (%s '%s'): %.17g, expected %.17g", ln, kind, p, s, want);
			if (vqa && strcmp(norm, json_string_value(json_object_get(o, "normalised"))) != 0)
				FAILF("line %d: normalised '%s', expected '%s'", ln, norm,
				      json_string_value(json_object_get(o, "normalised")));
			free(norm);
			free(a);
			golden_count[vqa ? 1 : 2]++;
		} else if (strcmp(kind, "random") == 0) {
			const uint64_t seed = (uint64_t)json_integer_value(json_object_get(o, "seed"));
			const int n = (int)json_integer_value(json_object_get(o, "n"));
			const int got = weft_py_random_choice(seed, n);
			if (got != json_integer_value(json_object_get(o, "index")))
				FAILF("line %d: random.Random(%llu).choice(range(%d)) = %lld, got %d", ln,
				      (unsigned long long)seed, n, (long long)json_integer_value(json_object_get(o, "index")),
				      got);
			golden_count[3]++;
		}
		json_decref(o);
	}
	fclose(f);
	if (!golden_count[0] || !golden_count[1] || !golden_count[2] || !golden_count[3])
		FAILF("golden file lacks a kind (%d mc, %d vqa, %d anls, %d random)", golden_count[0], golden_count[1],
		      golden_count[2], golden_count[3]);
}

/* Hand-checked multiple-choice cases. */
static void mc_hand(void)
{
	char *opts[] = {"cat", "dog", "a red apple", "none"};
	const char *rule;
	/* "(B)" anywhere wins over a bare letter */
	CHECK_EQ_INT(weft_mc_extract(WEFT_MC_MMMU, "A or (B)", 8, opts, 4, NULL, "x", &rule), 1);
	CHECK_STR(rule, "paren");
	/* mmmu wants " B " (padded): "B." is stripped to "B" first, so " B " */
	CHECK_EQ_INT(weft_mc_extract(WEFT_MC_MMMU, "B.", 2, opts, 4, NULL, "x", &rule), 1);
	CHECK_STR(rule, "space");
	/* "xB." : stripping leaves " xB ", no " B " for mmmu; lmms finds "B " */
	CHECK_EQ_INT(weft_mc_extract(WEFT_MC_MMMU, "xB.", 3, opts, 4, NULL, "x", &rule), -1);
	CHECK_STR(rule, "none");
	CHECK_EQ_INT(weft_mc_extract(WEFT_MC_LMMS, "xB.", 3, opts, 4, NULL, "x", &rule), 1);
	/* two bare letters: the later one (rfind of " X ") */
	CHECK_EQ_INT(weft_mc_extract(WEFT_MC_MMMU, "C not A", 7, opts, 4, NULL, "x", &rule), 0);
	/* option text only counts for answers over 5 words: "it is a red apple" has 5 */
	CHECK_EQ_INT(weft_mc_extract(WEFT_MC_MMMU, "it is a red apple", 17, opts, 4, NULL, "x", &rule), -1);
	CHECK_EQ_INT(weft_mc_extract(WEFT_MC_MMMU, "I think it is a red apple", 25, opts, 4, NULL, "x", &rule), 2);
	CHECK_STR(rule, "content");
	/* mmmu-pro: exactly one letter after the last "Answer:" */
	CHECK_EQ_INT(weft_mc_extract(WEFT_MC_MMMU_PRO, "(A) Answer: D", 13, opts, 4, NULL, "x", &rule), 3);
	CHECK_STR(rule, "answer-line");
	/* the random fallback, only on request, seeded per item */
	weft_score_opts so = {.random_fallback = 1, .seed = 42};
	const int r1 = weft_mc_extract(WEFT_MC_MMMU, "no idea", 7, opts, 4, &so, "item-1", &rule);
	CHECK_STR(rule, "random");
	CHECK(r1 >= 0 && r1 < 4);
	CHECK_EQ_INT(weft_mc_extract(WEFT_MC_MMMU, "no idea", 7, opts, 4, &so, "item-1", &rule), r1);
}

/* Hand-checked VQA accuracy (official vqaEval.py rules). */
static void vqa_hand(void)
{
	char *ten2[10] = {"2", "2", "2", "2", "2", "2", "2", "2", "2", "2"};
	char *norm = NULL;
	/* "two" -> "2" (number words), ten agreeing annotators: 1 */
	CHECK_EQ_INT((int)(weft_vqa_accuracy("two", 3, ten2, 10, &norm) * 1000), 1000);
	CHECK_STR(norm, "2");
	free(norm);
	/* articles dropped: "the 2" -> "2" */
	CHECK_EQ_INT((int)(weft_vqa_accuracy("The 2", 5, ten2, 10, NULL) * 1000), 1000);
	/* 2 of 10 say "cat": leaving out a "cat" one leaves 1 match (1/3), a
	 * non-cat one 2 (2/3): (2 * 1/3 + 8 * 2/3) / 10 = 0.6 */
	char *mixed[10] = {"cat", "cat", "dog", "dog", "dog", "dog", "dog", "dog", "dog", "dog"};
	CHECK_NEAR(weft_vqa_accuracy("a cat", 5, mixed, 10, NULL), 0.6, 1e-15);
	/* punctuation next to digits: "1,000" has digit,digit so ',' is
	 * deleted: "1000" */
	char *thousand[10] = {"1000", "1000", "1000", "1000", "1000", "1000", "1000", "1000", "1000", "1000"};
	CHECK_EQ_INT((int)(weft_vqa_accuracy("1,000", 5, thousand, 10, NULL) * 1000), 1000);
	/* '.' before a digit stays: "3.5" matches "3.5", not "35" */
	char *pi[10] = {"35", "35", "35", "35", "35", "35", "35", "35", "35", "35"};
	CHECK_EQ_INT((int)(weft_vqa_accuracy("3.5", 3, pi, 10, &norm) * 1000), 0);
	CHECK_STR(norm, "3.5");
	free(norm);
	/* "don't": ''' not next to a space -> replaced by a space: "don t" */
	char *dont[10] = {"dont", "dont", "dont", "dont", "dont", "dont", "dont", "dont", "dont", "dont"};
	CHECK_EQ_INT((int)(weft_vqa_accuracy("don't", 5, dont, 10, &norm) * 1000), 0);
	CHECK_STR(norm, "don t");
	free(norm);
}

/* Hand-checked ANLS and exact match. */
static void anls_exact_hand(void)
{
	char *hello[] = {"hello"};
	/* "helo": distance 1 over max length 5 -> 0.8 */
	CHECK_NEAR(weft_anls("helo", 4, hello, 1), 0.8, 1e-15);
	/* "help": distance 2 -> 0.6; "hxxxo": 3 -> 0.4 < 0.5 -> 0 */
	CHECK_NEAR(weft_anls("help", 4, hello, 1), 0.6, 1e-15);
	CHECK_NEAR(weft_anls("hxxxo", 5, hello, 1), 0.0, 0);
	/* case and whitespace are normalised before the distance */
	CHECK_NEAR(weft_anls("  HELLO ", 8, hello, 1), 1.0, 0);
	char *ans[] = {"New York", "NYC"};
	char *norm = NULL;
	CHECK_NEAR(weft_exact_match("  new   york. ", 14, ans, 2, &norm), 1.0, 0);
	CHECK_STR(norm, "new york");
	free(norm);
	CHECK_NEAR(weft_exact_match("\"nyc\"!", 6, ans, 2, NULL), 1.0, 0);
	CHECK_NEAR(weft_exact_match("new-york", 8, ans, 2, NULL), 0.0, 0);
	char *purple[] = {"purple"};
	CHECK_NEAR(weft_exact_match("Purple.", 7, purple, 1, NULL), 1.0, 0);
	CHECK_NEAR(weft_exact_match("Purple triangle", 15, purple, 1, NULL), 0.0, 0);
}

/* weft_metric_score on items: the rule names and extracted forms. */
static void score_items(void)
{
	char *opts[] = {"red", "green", "blue"};
	char *gold[] = {"B"};
	weft_eval_item it = {.id = "q", .metric = WEFT_METRIC_MC, .choices = opts, .n_choices = 3, .answers = gold,
			     .n_answers = 1, .gold = 1};
	weft_score_opts o = {.extract = WEFT_MC_MMMU};
	weft_score s;
	CHECK_EQ_INT(weft_metric_score(&it, "(B) green", 9, &o, &s), 0);
	CHECK_STR(s.extracted, "B");
	CHECK_STR(s.rule, "paren");
	CHECK_NEAR(s.score, 1, 0);
	free(s.extracted);
	CHECK_EQ_INT(weft_metric_score(&it, "purple", 6, &o, &s), 0);
	CHECK_STR(s.extracted, "");
	CHECK_STR(s.rule, "none");
	CHECK_NEAR(s.score, 0, 0);
	free(s.extracted);
	char *refs[] = {"Paris"};
	weft_eval_item ex = {.id = "e", .metric = WEFT_METRIC_EXACT, .answers = refs, .n_answers = 1, .gold = -1};
	CHECK_EQ_INT(weft_metric_score(&ex, "paris!", 6, &o, &s), 0);
	CHECK_STR(s.rule, "exact");
	CHECK_NEAR(s.score, 1, 0);
	free(s.extracted);
	/* invalid UTF-8 in a prediction is scored, never a crash */
	CHECK_EQ_INT(weft_metric_score(&ex, "par\xffis", 6, &o, &s), 0);
	CHECK_NEAR(s.score, 0, 0);
	free(s.extracted);
}

/* The families list what metrics.def names. */
static void families(void)
{
	CHECK_EQ_INT(weft_metric_find("vqa"), WEFT_METRIC_VQA);
	CHECK_EQ_INT(weft_mc_extract_find("mmmu-pro"), WEFT_MC_MMMU_PRO);
	CHECK_EQ_INT(weft_metric_find("bleu"), -1);
	CHECK(strstr(weft_errmsg(), "unknown metric 'bleu'") != NULL);
	CHECK_STR(weft_metric_name(WEFT_METRIC_ANLS), "anls");
	CHECK_EQ_INT((int)weft_metrics()->n, WEFT_METRIC_COUNT);
	for (size_t i = 0; i < weft_mc_extractors()->n; i++) {
		const weft_method *m = weft_family_at(weft_mc_extractors(), i);
		CHECK(m->name && m->summary && *m->summary);
	}
}

int main(void)
{
	t_suite = "metrics";
	RUN(golden);
	RUN(mc_hand);
	RUN(vqa_hand);
	RUN(anls_exact_hand);
	RUN(score_items);
	RUN(families);
	TEST_MAIN_END();
}

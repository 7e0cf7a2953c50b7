/* metric_mc.c - multiple choice: which option a generated answer names,
 * by the rules of the harnesses whose published numbers weft compares
 * with, transcribed from their Python:
 *
 *   mmmu      MMMU-Benchmark/MMMU mmmu/utils/eval_utils.py
 *             parse_multi_choice_response (also eval/eval_utils.py)
 *   lmms      EvolvingLMMs-Lab/lmms-eval tasks/mmmu/utils.py
 *             parse_multi_choice_response: "A " without the leading space,
 *             then "A.", and " A " again when ranking several candidates
 *   mmmu-pro  MMMU mmmu-pro/evaluate.py: the one letter after the last
 *             "Answer:", else the lmms rule
 *
 * Python's semantics are kept: str.strip(c) for each of , . ! ? ; : ' in
 * turn, substring tests, str.lower() (Unicode), len(str.split()) (Unicode
 * whitespace), rfind and numpy's argmax (the first of equal maxima).
 * Where those scripts draw random.choice for an unparsed answer, weft
 * counts it wrong unless random_fallback asks for the draw (seeded per
 * item: weft_py_random_choice). */
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "util.h"

/* ---- Python's random.choice ---- */

#define MT_N 624
typedef struct mt19937 {
	uint32_t mt[MT_N];
	int i;
} mt19937;

static void mt_init(mt19937 *m, uint32_t s)
{
	m->mt[0] = s;
	for (int i = 1; i < MT_N; i++)
		m->mt[i] = 1812433253u * (m->mt[i - 1] ^ (m->mt[i - 1] >> 30)) + (uint32_t)i;
	m->i = MT_N;
}

/* CPython's init_by_array. */
static void mt_init_array(mt19937 *m, const uint32_t *key, int len)
{
	mt_init(m, 19650218u);
	int i = 1, j = 0;
	for (int k = MT_N > len ? MT_N : len; k; k--) {
		m->mt[i] = (m->mt[i] ^ ((m->mt[i - 1] ^ (m->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
		i++, j++;
		if (i >= MT_N) {
			m->mt[0] = m->mt[MT_N - 1];
			i = 1;
		}
		if (j >= len)
			j = 0;
	}
	for (int k = MT_N - 1; k; k--) {
		m->mt[i] = (m->mt[i] ^ ((m->mt[i - 1] ^ (m->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
		if (++i >= MT_N) {
			m->mt[0] = m->mt[MT_N - 1];
			i = 1;
		}
	}
	m->mt[0] = 0x80000000u;
}

static uint32_t mt_next(mt19937 *m)
{
	if (m->i >= MT_N) {
		for (int k = 0; k < MT_N; k++) {
			const uint32_t y = (m->mt[k] & 0x80000000u) | (m->mt[(k + 1) % MT_N] & 0x7fffffffu);
			m->mt[k] = m->mt[(k + 397) % MT_N] ^ (y >> 1) ^ (y & 1 ? 0x9908b0dfu : 0);
		}
		m->i = 0;
	}
	uint32_t y = m->mt[m->i++];
	y ^= y >> 11;
	y ^= (y << 7) & 0x9d2c5680u;
	y ^= (y << 15) & 0xefc60000u;
	return y ^ (y >> 18);
}

int weft_py_random_choice(uint64_t seed, int n)
{
	if (n <= 0)
		return -1;
	/* random.seed(int): the absolute value's 32-bit words, low first */
	const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
	mt19937 m;
	mt_init_array(&m, key, key[1] ? 2 : 1);
	int k = 0; /* n.bit_length() */
	while ((n >> k) != 0)
		k++;
	for (;;) { /* _randbelow_with_getrandbits */
		const uint32_t r = mt_next(&m) >> (32 - k);
		if (r < (uint32_t)n)
			return (int)r;
	}
}

/* ---- the rules ---- */

typedef struct resp {
	char *s;       /* " " + response stripped + " " */
	size_t n;
	char *low;     /* its lower case (made when a rule needs it) */
	size_t nlow;
	char *opt_low[WEFT_EVAL_MAX_CHOICES]; /* the options' lower case (content rule) */
	size_t n_opt_low[WEFT_EVAL_MAX_CHOICES];
} resp;

/* response.strip(c) for each c in turn, then padded with spaces. */
static int resp_init(resp *r, const char *s, size_t n)
{
	size_t b = 0, e = n;
	memset(r, 0, sizeof *r);
	for (const char *c = ",.!?;:'"; *c; c++) {
		while (b < e && s[b] == *c)
			b++;
		while (e > b && s[e - 1] == *c)
			e--;
	}
	r->n = e - b + 2;
	r->s = weft_malloc(r->n + 1);
	if (!r->s)
		return -1;
	r->s[0] = ' ';
	memcpy(r->s + 1, s + b, e - b);
	r->s[r->n - 1] = ' ';
	r->s[r->n] = 0;
	return 0;
}

static int resp_lower(resp *r)
{
	if (!r->low)
		r->low = ev_py_lower(r->s, r->n, &r->nlow);
	return r->low ? 0 : -1;
}

static void resp_free(resp *r)
{
	free(r->s);
	free(r->low);
	for (int i = 0; i < WEFT_EVAL_MAX_CHOICES; i++)
		free(r->opt_low[i]);
}

/* Candidates whose "<pre>X<post>" occurs. */
static int find_pattern(const resp *r, int n, const char *pre, const char *post, int *cand)
{
	int k = 0;
	const size_t a = strlen(pre), b = strlen(post);
	char pat[8];
	memcpy(pat, pre, a);
	memcpy(pat + a + 1, post, b + 1);
	for (int i = 0; i < n; i++) {
		pat[a] = (char)('A' + i);
		if (ev_mem_has(r->s, r->n, pat, a + 1 + b))
			cand[k++] = i;
	}
	return k;
}

/* Options whose lower-cased text occurs in the lower-cased response. */
static int find_content(resp *r, char *const *choices, int n, int *cand)
{
	int k = 0;
	if (resp_lower(r) != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (!r->opt_low[i] && !(r->opt_low[i] = ev_py_lower(choices[i], strlen(choices[i]), &r->n_opt_low[i])))
			return -1;
		if (ev_mem_has(r->low, r->nlow, r->opt_low[i], r->n_opt_low[i]))
			cand[k++] = i;
	}
	return k;
}

/* candidates[argmax(rfind positions)]: brack "(X)", letter " X ", or the
 * option text (lower-cased by find_content) when content. */
static int last_candidate(const resp *r, const int *cand, int k, int content, int brack)
{
	int best = cand[0];
	int64_t best_pos = 0;
	for (int j = 0; j < k; j++) {
		int64_t pos;
		if (content) {
			pos = ev_mem_rfind(r->low, r->nlow, r->opt_low[cand[j]], r->n_opt_low[cand[j]]);
		} else {
			const char pat[3] = {brack ? '(' : ' ', (char)('A' + cand[j]), brack ? ')' : ' '};
			pos = ev_mem_rfind(r->s, r->n, pat, 3);
		}
		if (j == 0 || pos > best_pos) {
			best_pos = pos;
			best = cand[j];
		}
	}
	return best;
}

/* The shared body of the three rules; lmms: "X " then "X." steps. */
static int parse(const char *s, size_t n, char *const *choices, int nc, int lmms, const char **rule)
{
	resp r;
	int cand[WEFT_EVAL_MAX_CHOICES], k, out = -1;
	if (resp_init(&r, s, n) != 0) {
		resp_free(&r);
		return -2;
	}
	int brack = 0, content = 0;
	if ((k = find_pattern(&r, nc, "(", ")", cand)) > 0) {
		brack = 1;
		*rule = "paren";
	} else if ((k = find_pattern(&r, nc, lmms ? "" : " ", " ", cand)) > 0) {
		*rule = "space";
	} else if (lmms && (k = find_pattern(&r, nc, "", ".", cand)) > 0) {
		*rule = "period";
	} else if (ev_py_count_words(r.s, r.n) > 5 && (k = find_content(&r, choices, nc, cand)) != 0) {
		if (k < 0)
			goto out;
		content = 1;
		*rule = "content";
	} else {
		k = 0;
		*rule = "none";
	}
	out = k == 0 ? -1 : k == 1 ? cand[0] : last_candidate(&r, cand, k, content, brack);
out:
	resp_free(&r);
	return k < 0 ? -2 : out;
}

/* MMMU-Pro: the one choice letter in what follows the last "Answer:". */
static int answer_line(const char *s, size_t n, int nc)
{
	const int64_t p = ev_mem_rfind(s, n, "Answer:", 7);
	if (p < 0)
		return -1;
	size_t b, e;
	const char *a = s + p + 7;
	ev_py_strip_ws(a, n - (size_t)p - 7, &b, &e);
	int found = -1, count = 0;
	for (int i = 0; i < nc; i++)
		if (memchr(a + b, 'A' + i, e - b)) {
			found = i;
			count++;
		}
	return count == 1 ? found : -1;
}

int weft_mc_extract(int mode, const char *response, size_t len, char *const *choices, int n_choices,
		    const weft_score_opts *o, const char *id, const char **rule)
{
	int got = -1;
	*rule = "none";
	if (n_choices <= 0 || n_choices > WEFT_EVAL_MAX_CHOICES)
		return -1;
	if (mode == WEFT_MC_MMMU_PRO && (got = answer_line(response, len, n_choices)) >= 0) {
		*rule = "answer-line";
		return got;
	}
	got = parse(response, len, choices, n_choices, mode != WEFT_MC_MMMU, rule);
	if (got == -2) {
		*rule = "none";
		return -2;
	}
	if (got < 0 && o && o->random_fallback) {
		const uint64_t h = weft_fnv1a(WEFT_FNV_INIT, id ? id : "", id ? strlen(id) : 0);
		got = weft_py_random_choice(o->seed ^ h, n_choices);
		*rule = "random";
	}
	return got;
}

int ev_metric_mc_score(const weft_eval_item *it, const char *pred, size_t len, const weft_score_opts *o,
		       weft_score *out)
{
	const int got = weft_mc_extract(o->extract, pred, len, it->choices, it->n_choices, o, it->id, &out->rule);
	if (got == -2)
		return -1;
	char letter[2] = {got >= 0 ? (char)('A' + got) : 0, 0};
	out->extracted = weft_strndup(letter, strlen(letter));
	out->score = got >= 0 && got == it->gold ? 1.0 : 0.0;
	return out->extracted ? 0 : -1;
}

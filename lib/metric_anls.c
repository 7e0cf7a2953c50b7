/* metric_anls.c - ANLS as lmms-eval computes it (lmms_eval/api/metrics.py
 * anls, after Qwen-VL's infographicsvqa_eval.py): for each reference,
 * both strings stripped, lower-cased and their whitespace runs collapsed;
 * the Levenshtein distance over code points divided by the longer of the
 * two original strings (in code points: Python's len(s.upper()), which
 * differs only where upper case expands, as for 'ß'); the score is
 * 1 - the smallest such ratio, 0 when below the threshold 0.5. */
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "util.h"

/* Python 3's " ".join(s.strip().lower().split()) as code points. */
static uint32_t *prepare(const char *s, size_t n, size_t *m)
{
	size_t k, w;
	char *v = ev_utf8_sanitize(s, n, &k);
	char *low = v ? ev_py_lower(v, k, &k) : NULL;
	char *j = low ? ev_py_join_words(low, k, &w) : NULL;
	uint32_t *cp = j ? ev_utf8_codepoints(j, w, m) : NULL;
	free(v);
	free(low);
	free(j);
	return cp;
}

static size_t levenshtein(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, size_t *row)
{
	for (size_t j = 0; j <= nb; j++)
		row[j] = j;
	for (size_t i = 1; i <= na; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= nb; j++) {
			const size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

double weft_anls(const char *pred, size_t len, char *const *answers, int n)
{
	size_t np, lp;
	uint32_t *p = prepare(pred, len, &np);
	uint32_t *raw = ev_utf8_codepoints(pred, len, &lp);
	double best = -1;
	if (!p || !raw)
		goto out;
	for (int i = 0; i < n; i++) {
		size_t na, la;
		uint32_t *a = prepare(answers[i], strlen(answers[i]), &na);
		uint32_t *ra = ev_utf8_codepoints(answers[i], strlen(answers[i]), &la);
		size_t *row = weft_malloc((np + 1) * sizeof *row);
		if (!a || !ra || !row) {
			free(a), free(ra), free(row);
			best = -1;
			goto out;
		}
		const size_t dist = levenshtein(a, na, p, np, row);
		const size_t length = la > lp ? la : lp;
		const double v = length == 0 ? 0.0 : (double)dist / (double)length;
		if (best < 0 || v < best)
			best = v;
		free(a), free(ra), free(row);
	}
out:
	free(p);
	free(raw);
	if (n == 0)
		return 0;
	if (best < 0)
		return -1;
	const double r = 1 - best;
	return r < 0.5 ? 0 : r;
}

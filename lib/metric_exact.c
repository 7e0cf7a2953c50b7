/* metric_exact.c - exact match after a documented normalisation (weft's
 * own rule; eval-interleaved(1) METRICS): both sides lower-cased
 * (Python's str.lower()), whitespace runs collapsed to one space, and
 * whitespace and the characters . , ! ? ; : ' " removed from both ends;
 * 1 when the prediction equals any reference. */
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "util.h"

static int edge(char c) { return c == ' ' || strchr(".,!?;:'\"", c) != NULL; }

/* The normalised form of s (malloc'ed). */
static char *normalise(const char *s, size_t n)
{
	size_t k, w;
	char *v = ev_utf8_sanitize(s, n, &k);
	char *low = v ? ev_py_lower(v, k, &k) : NULL;
	char *j = low ? ev_py_join_words(low, k, &w) : NULL;
	free(v);
	free(low);
	if (!j)
		return NULL;
	size_t b = 0, e = w;
	while (b < e && edge(j[b]))
		b++;
	while (e > b && edge(j[e - 1]))
		e--;
	memmove(j, j + b, e - b);
	j[e - b] = 0;
	return j;
}

double weft_exact_match(const char *pred, size_t len, char *const *answers, int n, char **norm)
{
	char *p = normalise(pred, len);
	if (!p)
		return -1;
	double score = 0;
	for (int i = 0; i < n && score == 0; i++) {
		char *a = normalise(answers[i], strlen(answers[i]));
		if (!a) {
			free(p);
			return -1;
		}
		score = strcmp(a, p) == 0;
		free(a);
	}
	if (norm)
		*norm = p;
	else
		free(p);
	return score;
}

/* tok_cleanup.h - llama.cpp's clean_up_tokenization_spaces (see
 * weft_detokenize), restated for tests and fuzz harnesses that predict BPE
 * round trips: " ?" " !" " ." " ," lose the space, " ' " loses both, and a
 * space before 's 'm 're 've goes. */
#ifndef WEFT_TEST_TOK_CLEANUP_H
#define WEFT_TEST_TOK_CLEANUP_H
#include <stddef.h>

static inline size_t cleanup(char *t, size_t total)
{
	size_t o = total ? 1 : 0, n = total;
	for (size_t i = 1; i < n; i++) {
		char x = t[i];
		if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
			o--;
		t[o++] = x;
	}
	n = o, o = n ? 1 : 0;
	for (size_t i = 1; i < n; i++) {
		char x = t[i];
		if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
			o--;
			t[++i] = 0;
		}
		t[o++] = x;
	}
	n = o, o = n ? 1 : 0;
	for (size_t i = 1; i < n; i++) {
		char x = t[i];
		if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
			char x1 = t[i + 1];
			if (x1 == 's' || x1 == 'm' ||
			    (i + 2 < n && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e'))))
				o--;
		}
		t[o++] = x;
	}
	return o;
}

#endif

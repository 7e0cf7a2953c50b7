/* test.h - a tiny unit-test harness.  Each test binary prints one line per
 * test case: "PASS suite.name", "FAIL suite.name: why (file:line)" or
 * "SKIP suite.name: why"; tests/run counts them.  Header-only. */
#ifndef WEFT_TEST_H
#define WEFT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *t_suite = "unit";
static int t_failed, t_skipped, t_any_fail;
static char t_why[512];

#define FAILF(...)                                                                 \
	do {                                                                       \
		if (!t_failed) {                                                   \
			int t_n_ = snprintf(t_why, sizeof t_why, __VA_ARGS__);     \
			if (t_n_ >= 0 && (size_t)t_n_ < sizeof t_why)              \
				snprintf(t_why + t_n_, sizeof t_why - (size_t)t_n_,  \
					 " (%s:%d)", __FILE__, __LINE__);          \
		}                                                                  \
		t_failed = 1;                                                      \
	} while (0)

#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c))                                                          \
			FAILF("check failed: %s", #c);                             \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                         \
	do {                                                                       \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);            \
		if (t_a_ != t_b_)                                                  \
			FAILF("%s == %lld, expected %s == %lld", #a, t_a_, #b, t_b_); \
	} while (0)

#define CHECK_STR(a, b)                                                            \
	do {                                                                       \
		const char *t_a_ = (a), *t_b_ = (b);                               \
		if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                     \
			FAILF("%s is \"%s\", expected \"%s\"", #a, t_a_ ? t_a_ : "(null)", \
			      t_b_ ? t_b_ : "(null)");                             \
	} while (0)

#define CHECK_NEAR(a, b, tol)                                                      \
	do {                                                                       \
		double t_a_ = (double)(a), t_b_ = (double)(b);                     \
		if (!(fabs(t_a_ - t_b_) <= (tol)))                                 \
			FAILF("%s = %.9g, expected %.9g (tol %g)", #a, t_a_, t_b_, (double)(tol)); \
	} while (0)

/* Mark the running test skipped (visible in the summary) and return. */
#define SKIP(...)                                                                  \
	do {                                                                       \
		snprintf(t_why, sizeof t_why, __VA_ARGS__);                        \
		t_skipped = 1;                                                     \
		return;                                                            \
	} while (0)

static void t_run(const char *name, void (*fn)(void))
{
	t_failed = t_skipped = 0;
	t_why[0] = 0;
	fn();
	if (t_failed) {
		printf("FAIL %s.%s: %s\n", t_suite, name, t_why);
		t_any_fail = 1;
	} else if (t_skipped) {
		printf("SKIP %s.%s: %s\n", t_suite, name, t_why);
	} else {
		printf("PASS %s.%s\n", t_suite, name);
	}
	fflush(stdout);
}

#define RUN(fn) t_run(#fn, fn)
#define TEST_MAIN_END() return t_any_fail ? 1 : 0

/* The SmolLM2-135M-Instruct Q4_1 GGUF scripts/fetch-models puts in the
 * cache ($WEFT_SMOLLM2, else $WEFT_CACHE/models, $XDG_CACHE_HOME/weft/models
 * or ~/.cache/weft/models), or NULL when it is not there. */
__attribute__((unused)) static const char *t_smollm2_path(void)
{
	static char p[4096];
	const char *m = getenv("WEFT_SMOLLM2"), *c = getenv("WEFT_CACHE"), *x = getenv("XDG_CACHE_HOME"),
		   *h = getenv("HOME");
	if (m)
		snprintf(p, sizeof p, "%s", m);
	else if (c)
		snprintf(p, sizeof p, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", c);
	else if (x)
		snprintf(p, sizeof p, "%s/weft/models/SmolLM2-135M-Instruct.Q4_1.gguf", x);
	else
		snprintf(p, sizeof p, "%s/.cache/weft/models/SmolLM2-135M-Instruct.Q4_1.gguf", h ? h : "");
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	fclose(f);
	return p;
}

/* Path to ../shared/data (or $WEFT_SHARED/data); NULL when absent. */
__attribute__((unused)) static const char *t_shared_dir(void)
{
	static char buf[4096];
	const char *env = getenv("WEFT_SHARED");
	snprintf(buf, sizeof buf, "%s/data", env ? env : "../shared");
	FILE *f = NULL;
	char probe[4200];
	snprintf(probe, sizeof probe, "%s/vocab/ggml-vocab-gpt-2.gguf", buf);
	f = fopen(probe, "rb");
	if (!f)
		return NULL;
	fclose(f);
	return buf;
}

/* Read a whole file into a malloc'ed buffer (NUL-terminated); NULL on error. */
__attribute__((unused)) static char *t_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n + 1 >= cap)
			buf = realloc(buf, cap *= 2);
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		if (!got)
			break;
		n += got;
	}
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

#endif

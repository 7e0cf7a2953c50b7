/* eval_plot.c - accuracy and TTFT against visual-token budget (or KV
 * bytes) from several summaries, drawn by gnuplot (eval_report.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eval_int.h"
#include "eval_report.h"
#include "util.h"

typedef struct point {
	double x, acc, lo, hi, ttft;
} point;

static int cmp_point(const void *a, const void *b)
{
	const double x = ((const point *)a)->x, y = ((const point *)b)->x;
	return x < y ? -1 : x > y;
}

/* gnuplot on PATH (so a missing one is one clear message). */
static int have_gnuplot(void)
{
	const char *path = getenv("PATH");
	if (!path)
		return 0;
	char buf[4096];
	for (const char *p = path; *p;) {
		const char *e = strchr(p, ':');
		const size_t n = e ? (size_t)(e - p) : strlen(p);
		snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)n, n ? p : ".");
		if (access(buf, X_OK) == 0)
			return 1;
		p += n + (e != NULL);
	}
	return 0;
}

static int read_point(const char *path, const char *x, point *pt)
{
	json_error_t err;
	json_t *s = json_load_file(path, 0, &err);
	json_t *cost = json_object_get(s, "cost"), *ci = json_object_get(s, "accuracy_ci95");
	json_t *xv = json_object_get(cost, strcmp(x, "kv") == 0 ? "kv_bytes_mean" : "visual_kept_mean");
	json_t *acc = json_object_get(s, "accuracy");
	json_t *ttft = json_object_get(json_object_get(json_object_get(s, "time"), "ttft_ms"), "mean");
	if (!s || !json_integer_value(json_object_get(s, "weft_eval_summary"))) {
		weft_error("%s: %s", path, s ? "not an eval-interleaved summary" : err.text);
		json_decref(s);
		return -1;
	}
	if (!json_is_number(xv) || !json_is_number(acc)) {
		weft_error("%s: no %s or accuracy (a run with no item done?)", path,
			   strcmp(x, "kv") == 0 ? "cost.kv_bytes_mean" : "cost.visual_kept_mean");
		json_decref(s);
		return -1;
	}
	pt->x = json_number_value(xv);
	pt->acc = json_number_value(acc);
	pt->lo = json_is_array(ci) ? json_number_value(json_array_get(ci, 0)) : pt->acc;
	pt->hi = json_is_array(ci) ? json_number_value(json_array_get(ci, 1)) : pt->acc;
	pt->ttft = json_is_number(ttft) ? json_number_value(ttft) : NAN;
	json_decref(s);
	return 0;
}

/* Run gnuplot on script; its stderr's first line in the error. */
static int gnuplot(const char *script, const char *errfile)
{
	ev_wstr cmd = {0};
	ev_wstr_addf(&cmd, "exec gnuplot 2>'%s'", errfile);
	char *c = ev_wstr_take(&cmd);
	FILE *p = c ? popen(c, "w") : NULL;
	free(c);
	if (!p) {
		weft_error("cannot run gnuplot: %s", strerror(errno));
		return -1;
	}
	fputs(script, p);
	const int st = pclose(p);
	if (st == 0)
		return 0;
	char line[256] = "";
	FILE *e = fopen(errfile, "r");
	if (e) {
		if (!fgets(line, sizeof line, e))
			line[0] = 0;
		fclose(e);
	}
	line[strcspn(line, "\n")] = 0;
	weft_error("gnuplot failed (status %d)%s%s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, *line ? ": " : "", line);
	return -1;
}

int weft_eval_plot(const char *const *summaries, int n, const char *x, const char *title, const char *png)
{
	if (!have_gnuplot()) {
		weft_error("gnuplot is not on PATH (Debian: apt-get install gnuplot-nox)");
		return -1;
	}
	if (strchr(png, '\'')) {
		weft_error("%s: a quote in the file name", png);
		return -1;
	}
	point *pts = weft_calloc((size_t)n, sizeof *pts);
	if (!pts)
		return -1;
	for (int i = 0; i < n; i++)
		if (read_point(summaries[i], x, &pts[i]) != 0) {
			free(pts);
			return -1;
		}
	qsort(pts, (size_t)n, sizeof *pts, cmp_point);
	ev_wstr tmp = {0}, err = {0}, sc = {0};
	ev_wstr_addf(&tmp, "%s.tmp.%d.png", png, (int)getpid());
	ev_wstr_addf(&err, "%s.tmp.%d.err", png, (int)getpid());
	char safe[200];
	snprintf(safe, sizeof safe, "%s", title ? title : "accuracy and time to first token");
	for (char *q = safe; *q; q++)
		if (*q == '"' || *q == '\\' || *q == '\n')
			*q = ' ';
	ev_wstr_addf(&sc, "set terminal pngcairo size 900,600 font ',10'\nset output '%s'\nset title \"%s\"\n"
			  "set xlabel '%s'\nset ylabel 'accuracy'\nset y2label 'TTFT, ms (mean)'\n"
			  "set yrange [0:1]\nset ytics nomirror\nset y2tics\nset grid\nset key top left\n$d << EOD\n",
		     tmp.s, safe, strcmp(x, "kv") == 0 ? "KV cache per item, bytes (mean)" : "visual tokens kept per item (mean)");
	for (int i = 0; i < n; i++) { /* NaN: gnuplot leaves the point out */
		char t[32];
		snprintf(t, sizeof t, isnan(pts[i].ttft) ? "NaN" : "%.9g", pts[i].ttft);
		ev_wstr_addf(&sc, "%.9g %.9g %.9g %.9g %s\n", pts[i].x, pts[i].acc, pts[i].lo, pts[i].hi, t);
	}
	ev_wstr_add(&sc, "EOD\n");
	ev_wstr_add(&sc, "plot $d using 1:2:3:4 with yerrorlines lw 2 title 'accuracy (95% CI)' axes x1y1, "
			 "$d using 1:5 with linespoints lw 2 title 'TTFT' axes x1y2\n");
	char *script = ev_wstr_take(&sc);
	int rc = -1;
	if (tmp.s && err.s && script && gnuplot(script, err.s) == 0) {
		if (rename(tmp.s, png) != 0)
			weft_error("%s: %s", png, strerror(errno));
		else
			rc = 0;
	}
	if (tmp.s && rc)
		unlink(tmp.s);
	if (err.s)
		unlink(err.s);
	free(tmp.s);
	free(err.s);
	free(script);
	free(pts);
	return rc;
}

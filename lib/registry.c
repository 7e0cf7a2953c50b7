/* registry.c - see registry.h. */
#include "registry.h"

#include <string.h>

#include "util.h"

const weft_method *weft_family_at(const weft_family *f, size_t i)
{
	return i < f->n ? (const weft_method *)((const char *)f->rows + i * f->stride) : NULL;
}

const char *weft_family_names(const weft_family *f, char *buf, size_t cap)
{
	size_t k = 0;
	buf[0] = 0;
	for (size_t i = 0; i < f->n && cap; i++) {
		const weft_method *m = weft_family_at(f, i);
		if (!m->name)
			continue;
		int w = snprintf(buf + k, cap - k, "%s%s", k ? ", " : "", m->name);
		if (w < 0 || (size_t)w >= cap - k)
			break;
		k += (size_t)w;
	}
	return buf;
}

int weft_family_find(const weft_family *f, const char *name)
{
	for (size_t i = 0; name && i < f->n; i++) {
		const weft_method *m = weft_family_at(f, i);
		if (m->name && strcmp(m->name, name) == 0)
			return (int)i;
	}
	char esc[64], known[512];
	weft_escape(name ? name : "", name ? strlen(name) : 0, esc, sizeof esc);
	weft_error("unknown %s '%s' (known: %s)", f->what, esc, weft_family_names(f, known, sizeof known));
	return -1;
}

void weft_family_list(const weft_family *f, FILE *out)
{
	for (size_t i = 0; i < f->n; i++) {
		const weft_method *m = weft_family_at(f, i);
		if (!m->name)
			continue;
		fprintf(out, "%s\t%s\n", m->name, m->summary);
		if (m->params && *m->params)
			fprintf(out, "\tparams: %s\n", m->params);
		if (m->needs && *m->needs)
			fprintf(out, "\tneeds: %s\n", m->needs);
	}
}

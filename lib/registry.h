/* registry.h - how a method family (chat templates today; pruning
 * methods, KV methods, benchmark readers and metrics next) lists its
 * members.
 *
 * A family keeps an X-macro list, lib/<family>.def, one line per member:
 *
 *     WEFT_CHAT_TEMPLATE(CHATML, chatml, "ChatML: <|im_start|>role ...")
 *
 * and includes it to generate, from that one line, the member's enum
 * constant, the declaration of its functions (render_chatml ...) and its
 * row of the family's table.  Each row starts with a weft_method, so the
 * helpers below, a tool's --list option and the tests that walk every
 * member serve every family.  Adding a member is one file (its functions),
 * one line in the .def, and one section of the tool's man page
 * (tests/tools/registry.sh checks that --list and the man page agree). */
#ifndef WEFT_REGISTRY_H
#define WEFT_REGISTRY_H

#include <stddef.h>
#include <stdio.h>

typedef struct weft_method {
	const char *name;     /* what users type (--method NAME) */
	const char *summary;  /* one line, for --list */
	const char *params;   /* its parameters with defaults, "k=v ..." ("" none) */
	const char *needs;    /* what its input must carry ("" nothing) */
} weft_method;

/* The members of a family's table: n rows of `stride` bytes, each
 * beginning with a weft_method. */
typedef struct weft_family {
	const char *what;     /* "chat template", "pruning method" ... */
	const void *rows;
	size_t n, stride;
} weft_family;

/* Member i's weft_method. */
const weft_method *weft_family_at(const weft_family *f, size_t i);
/* Index of the member called name, or -1 with the error "unknown WHAT
 * 'name' (known: a, b, c)". */
int weft_family_find(const weft_family *f, const char *name);
/* "a, b, c" (static storage, built once per family table). */
const char *weft_family_names(const weft_family *f, char *buf, size_t cap);
/* One line per member, "NAME<tab>SUMMARY", then "<tab>params: ..." and
 * "<tab>needs: ..." lines where not empty: a tool's --list output. */
void weft_family_list(const weft_family *f, FILE *out);

#endif

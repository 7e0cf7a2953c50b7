/* chat.h - built-in chat templates for the model families weft targets.
 *
 * Renders a conversation into prompt text the way llama.cpp's built-in
 * templates (llama_chat_apply_template) do, so the tokens match a user's
 * llama.cpp run.  The template is picked by name or detected from the
 * GGUF's tokenizer.chat_template (Jinja source) by distinctive markers. */
#ifndef WEFT_CHAT_H
#define WEFT_CHAT_H

#include <stddef.h>

#include "gguf.h"
#include "registry.h"

/* The templates, from chat_templates.def (registry.h). */
enum weft_chat_tmpl {
	WEFT_CHAT_NONE = 0,
#define WEFT_CHAT_TEMPLATE(ID, name, summary) WEFT_CHAT_##ID,
#include "chat_templates.def"
#undef WEFT_CHAT_TEMPLATE
	WEFT_CHAT_COUNT
};

typedef struct weft_chat_msg {
	const char *role;     /* "system", "user" or "assistant" */
	const char *content;
} weft_chat_msg;

/* Template by name (a name of chat_templates.def, or "llava" for vicuna);
 * WEFT_CHAT_NONE with an error when unknown. */
int weft_chat_from_name(const char *name);
/* Canonical name of a template ("chatml", ...). */
const char *weft_chat_name(int tmpl);
/* Detect from Jinja source (tokenizer.chat_template); WEFT_CHAT_NONE when no
 * known marker is found. */
int weft_chat_detect(const char *jinja, size_t len);
/* Comma-separated list of template names (and the alias llava), for --help. */
const char *weft_chat_names(void);
/* The templates as a family (registry.h): member i is template i + 1. */
const weft_family *weft_chat_family(void);

/* The template for the model in g: the one called name when name is not
 * NULL, else the one detected from tokenizer.chat_template.
 * WEFT_CHAT_NONE with an error when the name is unknown, or the GGUF has
 * no template or one not recognised ("choose one with --template"). */
int weft_chat_pick(const weft_gguf *g, const char *name);

/* Render messages to a malloc'ed NUL-terminated prompt.  add_assistant:
 * end with the assistant turn's opening, ready for generation.  Returns NULL
 * with an error (unknown template, unknown role). */
char *weft_chat_render(int tmpl, const weft_chat_msg *msgs, size_t n, int add_assistant);

#endif

/* chat.h - built-in chat templates for the model families weft targets.
 *
 * Renders a conversation into prompt text the way llama.cpp's built-in
 * templates (llama_chat_apply_template) do, so the tokens match a user's
 * llama.cpp run.  The template is picked by name or detected from the
 * GGUF's tokenizer.chat_template (Jinja source) by distinctive markers. */
#ifndef WEFT_CHAT_H
#define WEFT_CHAT_H

#include <stddef.h>

enum weft_chat_tmpl {
	WEFT_CHAT_NONE = 0,
	WEFT_CHAT_CHATML,   /* <|im_start|>role\n...<|im_end|>\n  (SmolLM2, generic) */
	WEFT_CHAT_QWEN2,    /* ChatML with Qwen2's default system message */
	WEFT_CHAT_SMOLVLM,  /* <|im_start|>User: ...<end_of_utterance>\nAssistant: */
	WEFT_CHAT_VICUNA,   /* LLaVA-1.5 / Vicuna v1.1: "USER: ... ASSISTANT:" */
	WEFT_CHAT_LLAMA2,   /* [INST] <<SYS>> ... [/INST] */
	WEFT_CHAT_LLAMA3,   /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
	WEFT_CHAT_COUNT
};

typedef struct weft_chat_msg {
	const char *role;     /* "system", "user" or "assistant" */
	const char *content;
} weft_chat_msg;

/* Template by name ("chatml", "qwen2", "smolvlm", "vicuna", "llava", "llama2",
 * "llama3"); WEFT_CHAT_NONE when unknown. */
int weft_chat_from_name(const char *name);
/* Canonical name of a template ("chatml", ...). */
const char *weft_chat_name(int tmpl);
/* Detect from Jinja source (tokenizer.chat_template); WEFT_CHAT_NONE when no
 * known marker is found. */
int weft_chat_detect(const char *jinja, size_t len);
/* Comma-separated list of template names, for --help. */
const char *weft_chat_names(void);

/* Render messages to a malloc'ed NUL-terminated prompt.  add_assistant:
 * end with the assistant turn's opening, ready for generation.  Returns NULL
 * with an error (unknown template, unknown role). */
char *weft_chat_render(int tmpl, const weft_chat_msg *msgs, size_t n, int add_assistant);

#endif

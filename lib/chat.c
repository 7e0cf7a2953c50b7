/* chat.c - built-in chat templates (see chat.h).
 *
 * Each renderer reproduces one branch of llama.cpp's llm_chat_apply_template
 * (src/llama-chat.cpp) byte for byte, and weft_chat_detect() follows the
 * marker checks of llm_chat_detect_template in the same order.  Deliberate
 * differences from llama.cpp:
 *
 *  - Roles are checked: anything but "system", "user" or "assistant" is an
 *    error, where llama.cpp passes unknown roles through (chatml, llama3) or
 *    silently drops or mislabels them (vicuna, smolvlm, llama2).
 *  - qwen2 is not a llama.cpp built-in: llama.cpp renders Qwen2 models with
 *    plain chatml.  Ours follows Qwen2's own Jinja template, which opens with
 *    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" when the
 *    first message is not a system message; otherwise it is chatml.  Detection
 *    never returns it (a Qwen2 template is detected as chatml, as in
 *    llama.cpp); pick it by name.
 *  - llama.cpp has four llama2 variants.  Ours is LLM_CHAT_TEMPLATE_LLAMA_2_SYS
 *    (system message wrapped in <<SYS>>, contents verbatim, no <s> between
 *    turns).  llama.cpp's name "llama2" is the variant without <<SYS>> (system
 *    text + "\n"), and Meta's Llama-2-chat template is detected as the
 *    variant that strips whitespace around each message; the three agree on
 *    any conversation without a system message and without whitespace at the
 *    ends of messages.  Every llama2 variant is detected as ours; the Mistral
 *    [INST] variants are not (WEFT_CHAT_NONE). */
#include "chat.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Name lookup without touching the error message. */
static int lookup_name(const char *name);

/* ---- detection ---------------------------------------------------------- */

struct text {
	const char *p;
	size_t n;
};

static int has(struct text t, const char *needle)
{
	size_t k = strlen(needle);
	if (k > t.n)
		return 0;
	for (size_t i = 0; i + k <= t.n; i++)
		if (t.p[i] == needle[0] && memcmp(t.p + i, needle, k) == 0)
			return 1;
	return 0;
}

int weft_chat_detect(const char *jinja, size_t len)
{
	if (!jinja)
		return WEFT_CHAT_NONE;
	struct text t = { jinja, len };

	/* llama.cpp first accepts a bare template name in place of Jinja: ours,
	 * and those of its llama2 and Mistral variants (which would otherwise
	 * fall to the "starts with mistral" check below). */
	static const struct { const char *name; int tmpl; } aliases[] = {
		{ "llama2-sys", WEFT_CHAT_LLAMA2 }, { "llama2-sys-bos", WEFT_CHAT_LLAMA2 },
		{ "llama2-sys-strip", WEFT_CHAT_LLAMA2 }, { "mistral-v1", WEFT_CHAT_NONE },
		{ "mistral-v3", WEFT_CHAT_NONE }, { "mistral-v3-tekken", WEFT_CHAT_NONE },
		{ "mistral-v7", WEFT_CHAT_NONE }, { "mistral-v7-tekken", WEFT_CHAT_NONE },
	};
	char name[24];
	if (len < sizeof name && !memchr(jinja, 0, len)) {
		memcpy(name, jinja, len);
		name[len] = 0;
		int byname = lookup_name(name);
		if (byname != WEFT_CHAT_NONE)
			return byname;
		for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
			if (strcmp(name, aliases[i].name) == 0)
				return aliases[i].tmpl;
	}

	/* The checks below are llama.cpp's, in its order, up to the last family
	 * we render (llama3); families we do not render yield NONE but keep
	 * their place so that precedence is the same. */
	if (has(t, "<|im_start|>")) {
		if (has(t, "<|im_sep|>"))
			return WEFT_CHAT_NONE; /* phi4 */
		/* SmolVLM uses <|im_start|> as BOS but is not chatml */
		return has(t, "<end_of_utterance>") ? WEFT_CHAT_SMOLVLM : WEFT_CHAT_CHATML;
	}
	if ((len >= 7 && memcmp(jinja, "mistral", 7) == 0) || has(t, "[INST]")) {
		if (has(t, "[SYSTEM_PROMPT]") || has(t, "' [INST] ' + system_message") ||
		    has(t, "[AVAILABLE_TOOLS]"))
			return WEFT_CHAT_NONE; /* mistral v1, v3, v3-tekken, v7 */
		return WEFT_CHAT_LLAMA2;       /* any llama2 variant */
	}
	if ((has(t, "<|assistant|>") && has(t, "<|end|>")) ||  /* phi3 */
	    has(t, "[gMASK]<sop>") ||                             /* chatglm4 */
	    (has(t, "<|assistant|>") && has(t, "<|user|>")) ||    /* falcon3, glmedge, exaone-moe */
	    (has(t, "<|{{ item['role'] }}|>") && has(t, "<|begin_of_image|>")) || /* glmedge */
	    (has(t, "<|user|>") && has(t, "<|endoftext|>")) ||    /* zephyr */
	    has(t, "bos_token + message['role']") ||              /* monarch */
	    has(t, "<start_of_turn>") ||                          /* gemma */
	    has(t, "'\\n\\nAssistant: ' + eos_token") ||          /* orion */
	    has(t, "GPT4 Correct "))                              /* openchat */
		return WEFT_CHAT_NONE;
	if (has(t, "USER: ") && has(t, "ASSISTANT: "))
		return has(t, "SYSTEM: ") ? WEFT_CHAT_NONE /* vicuna-orca */ : WEFT_CHAT_VICUNA;
	if ((has(t, "### Instruction:") && has(t, "<|EOT|>")) ||  /* deepseek */
	    (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>"))) /* command-r */
		return WEFT_CHAT_NONE;
	if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>"))
		return WEFT_CHAT_LLAMA3;
	return WEFT_CHAT_NONE;
}

/* ---- rendering ---------------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
	int failed;
};

static void put_n(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (n >= b->cap - b->n) {
		size_t cap = b->cap ? b->cap : 256;
		while (n >= cap - b->n) {
			if (cap > SIZE_MAX / 2) {
				weft_error("chat prompt too large");
				b->failed = 1;
				return;
			}
			cap *= 2;
		}
		char *p = weft_realloc(b->p, cap);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void put(struct buf *b, const char *s) { put_n(b, s, strlen(s)); }

/* Content without leading and trailing whitespace (C isspace, as llama.cpp's
 * trim()). */
static void put_trimmed(struct buf *b, const char *s)
{
	size_t i = 0, j = strlen(s);
	while (i < j && strchr(" \t\n\v\f\r", s[i]))
		i++;
	while (j > i && strchr(" \t\n\v\f\r", s[j - 1]))
		j--;
	put_n(b, s + i, j - i);
}

enum role { SYSTEM, USER, ASSISTANT };

static int role_of(const char *r)
{
	if (strcmp(r, "system") == 0)
		return SYSTEM;
	if (strcmp(r, "user") == 0)
		return USER;
	if (strcmp(r, "assistant") == 0)
		return ASSISTANT;
	return -1;
}

static void chatml(struct buf *b, const weft_chat_msg *m, size_t n, int add, int qwen2)
{
	if (qwen2 && n > 0 && role_of(m[0].role) != SYSTEM)
		put(b, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
	for (size_t i = 0; i < n; i++) {
		put(b, "<|im_start|>");
		put(b, m[i].role);
		put(b, "\n");
		put(b, m[i].content);
		put(b, "<|im_end|>\n");
	}
	if (add)
		put(b, "<|im_start|>assistant\n");
}

static void render_chatml(struct buf *b, const weft_chat_msg *m, size_t n, int add)
{
	chatml(b, m, n, add, 0);
}

static void render_qwen2(struct buf *b, const weft_chat_msg *m, size_t n, int add)
{
	chatml(b, m, n, add, 1);
}

static void render_smolvlm(struct buf *b, const weft_chat_msg *m, size_t n, int add)
{
	put(b, "<|im_start|>"); /* SmolVLM's BOS */
	for (size_t i = 0; i < n; i++) {
		switch (role_of(m[i].role)) {
		case SYSTEM:
			put(b, m[i].content);
			put(b, "\n\n");
			break;
		case USER:
			put(b, "User: ");
			put(b, m[i].content);
			put(b, "<end_of_utterance>\n");
			break;
		default:
			put(b, "Assistant: ");
			put(b, m[i].content);
			put(b, "<end_of_utterance>\n");
		}
	}
	if (add)
		put(b, "Assistant:");
}

static void render_vicuna(struct buf *b, const weft_chat_msg *m, size_t n, int add)
{
	for (size_t i = 0; i < n; i++) {
		switch (role_of(m[i].role)) {
		case SYSTEM:
			put(b, m[i].content);
			put(b, "\n\n");
			break;
		case USER:
			put(b, "USER: ");
			put(b, m[i].content);
			put(b, "\n");
			break;
		default:
			put(b, "ASSISTANT: ");
			put(b, m[i].content);
			put(b, "</s>\n");
		}
	}
	if (add)
		put(b, "ASSISTANT:");
}

/* llama2 ends every user turn with " [/INST]", which already is the opening
 * of the assistant's reply: add_assistant changes nothing (as in llama.cpp). */
static void render_llama2(struct buf *b, const weft_chat_msg *m, size_t n, int add)
{
	int inside_turn = 1;
	put(b, "[INST] ");
	for (size_t i = 0; i < n; i++) {
		if (!inside_turn) {
			inside_turn = 1;
			put(b, "[INST] ");
		}
		switch (role_of(m[i].role)) {
		case SYSTEM:
			put(b, "<<SYS>>\n");
			put(b, m[i].content);
			put(b, "\n<</SYS>>\n\n");
			break;
		case USER:
			put(b, m[i].content);
			put(b, " [/INST]");
			break;
		default:
			put(b, m[i].content);
			put(b, "</s>");
			inside_turn = 0;
		}
	}
}

/* No <|begin_of_text|>: that is the BOS the tokenizer adds. */
static void render_llama3(struct buf *b, const weft_chat_msg *m, size_t n, int add)
{
	for (size_t i = 0; i < n; i++) {
		put(b, "<|start_header_id|>");
		put(b, m[i].role);
		put(b, "<|end_header_id|>\n\n");
		put_trimmed(b, m[i].content);
		put(b, "<|eot_id|>");
	}
	if (add)
		put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* ---- the table (chat_templates.def) ---- */

typedef struct chat_template {
	weft_method m;
	void (*render)(struct buf *b, const weft_chat_msg *m, size_t n, int add);
} chat_template;

static const chat_template templates[WEFT_CHAT_COUNT - 1] = {
#define WEFT_CHAT_TEMPLATE(ID, name, summary) [WEFT_CHAT_##ID - 1] = {{#name, summary, "", ""}, render_##name},
#include "chat_templates.def"
#undef WEFT_CHAT_TEMPLATE
};

static const weft_family family = {"chat template", templates, WEFT_CHAT_COUNT - 1, sizeof templates[0]};

const weft_family *weft_chat_family(void) { return &family; }

static char names[256];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void build_names(void)
{
	weft_family_names(&family, names, sizeof names);
	strncat(names, ", llava", sizeof names - strlen(names) - 1);
}

const char *weft_chat_names(void)
{
	pthread_once(&names_once, build_names);
	return names;
}

const char *weft_chat_name(int tmpl)
{
	if (tmpl == WEFT_CHAT_NONE)
		return "none";
	if (tmpl < 0 || tmpl >= WEFT_CHAT_COUNT)
		return "unknown";
	return templates[tmpl - 1].m.name;
}

static int lookup_name(const char *name)
{
	if (!name)
		return WEFT_CHAT_NONE;
	if (strcmp(name, "llava") == 0)
		return WEFT_CHAT_VICUNA;
	for (int t = WEFT_CHAT_NONE + 1; t < WEFT_CHAT_COUNT; t++)
		if (strcmp(name, templates[t - 1].m.name) == 0)
			return t;
	return WEFT_CHAT_NONE;
}

int weft_chat_from_name(const char *name)
{
	int t = lookup_name(name);
	if (t == WEFT_CHAT_NONE) {
		char esc[64];
		weft_escape(name ? name : "", name ? strlen(name) : 0, esc, sizeof esc);
		weft_error("unknown chat template '%s' (known: %s)", esc, weft_chat_names());
	}
	return t;
}

int weft_chat_pick(const weft_gguf *g, const char *name)
{
	if (name)
		return weft_chat_from_name(name);
	weft_gguf_str s;
	if (weft_gguf_get_str(g, "tokenizer.chat_template", &s) != 0) {
		weft_error("no tokenizer.chat_template; choose one with --template (%s)", weft_chat_names());
		return WEFT_CHAT_NONE;
	}
	const int t = weft_chat_detect(s.ptr, (size_t)s.len);
	if (t == WEFT_CHAT_NONE)
		weft_error("chat template in tokenizer.chat_template not recognised; choose one with --template (%s)",
			   weft_chat_names());
	return t;
}

char *weft_chat_render(int tmpl, const weft_chat_msg *msgs, size_t n, int add_assistant)
{
	if (tmpl <= WEFT_CHAT_NONE || tmpl >= WEFT_CHAT_COUNT) {
		weft_error("unknown chat template (%d)", tmpl);
		return NULL;
	}
	if (n > 0 && !msgs) {
		weft_error("no chat messages");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!msgs[i].role || !msgs[i].content) {
			weft_error("chat message %zu has no %s", i + 1,
				   msgs[i].role ? "content" : "role");
			return NULL;
		}
		if (role_of(msgs[i].role) < 0) {
			char esc[64];
			weft_escape(msgs[i].role, strlen(msgs[i].role), esc, sizeof esc);
			weft_error("unknown chat role '%s'", esc);
			return NULL;
		}
	}

	struct buf b = { 0 };
	put_n(&b, "", 0); /* an empty conversation still gives "" */
	templates[tmpl - 1].render(&b, msgs, n, add_assistant);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

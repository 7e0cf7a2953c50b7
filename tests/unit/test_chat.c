/* test_chat.c - chat templates: rendering, names, detection, errors.
 *
 * Expected renderings: every string below for chatml, smolvlm, vicuna,
 * llama2 and llama3 was printed by a throwaway C++ program (not in the repo)
 * that linked llama.cpp's own src/llama-chat.cpp (llama-cpp-python 0.3.36's
 * vendored llama.cpp) and called llm_chat_apply_template() with the
 * conversations below; llama2 is LLM_CHAT_TEMPLATE_LLAMA_2_SYS ("llama2-sys").
 * qwen2 is not a llama.cpp built-in: its strings were rendered with Python's
 * jinja2 from Qwen2-Instruct's tokenizer_config chat_template (QWEN2_JINJA
 * below).  The detection cases were likewise checked against llama.cpp's
 * llm_chat_detect_template(). */
#include "chat.h"
#include "gguf.h"
#include "test.h"
#include "util.h"

enum { C_SINGLE, C_SYSTEM, C_MULTI, C_WS, C_EMPTY, C_COUNT };

static const weft_chat_msg conv_single[] = { { "user", "Hello!" } };
static const weft_chat_msg conv_system[] = {
	{ "system", "You are terse." },
	{ "user", "Hi there" },
};
static const weft_chat_msg conv_multi[] = {
	{ "user", "What is 2+2?" },
	{ "assistant", "4" },
	{ "user", "And 3+3?" },
};
/* whitespace at the ends of messages: only llama3 trims it */
static const weft_chat_msg conv_ws[] = {
	{ "system", "  sys  " },
	{ "user", " padded\n" },
	{ "assistant", "\tok " },
	{ "user", "x" },
};

static const struct {
	const weft_chat_msg *m;
	size_t n;
} convs[C_COUNT] = {
	[C_SINGLE] = { conv_single, 1 },
	[C_SYSTEM] = { conv_system, 2 },
	[C_MULTI] = { conv_multi, 3 },
	[C_WS] = { conv_ws, 4 },
	[C_EMPTY] = { conv_single, 0 },
};

static const struct expect {
	int tmpl, conv, add;
	const char *out;
} expected[] = {
	{ WEFT_CHAT_CHATML, C_SINGLE, 0,
	  "<|im_start|>user\nHello!<|im_end|>\n" },
	{ WEFT_CHAT_CHATML, C_SINGLE, 1,
	  "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n" },
	{ WEFT_CHAT_CHATML, C_SYSTEM, 0,
	  "<|im_start|>system\n"
	  "You are terse.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi there<|im_end|>\n" },
	{ WEFT_CHAT_CHATML, C_SYSTEM, 1,
	  "<|im_start|>system\n"
	  "You are terse.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi there<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ WEFT_CHAT_CHATML, C_MULTI, 0,
	  "<|im_start|>user\n"
	  "What is 2+2?<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "4<|im_end|>\n"
	  "<|im_start|>user\n"
	  "And 3+3?<|im_end|>\n" },
	{ WEFT_CHAT_CHATML, C_MULTI, 1,
	  "<|im_start|>user\n"
	  "What is 2+2?<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "4<|im_end|>\n"
	  "<|im_start|>user\n"
	  "And 3+3?<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ WEFT_CHAT_CHATML, C_WS, 0,
	  "<|im_start|>system\n"
	  "  sys  <|im_end|>\n"
	  "<|im_start|>user\n"
	  " padded\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "\tok <|im_end|>\n"
	  "<|im_start|>user\n"
	  "x<|im_end|>\n" },
	{ WEFT_CHAT_CHATML, C_WS, 1,
	  "<|im_start|>system\n"
	  "  sys  <|im_end|>\n"
	  "<|im_start|>user\n"
	  " padded\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "\tok <|im_end|>\n"
	  "<|im_start|>user\n"
	  "x<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ WEFT_CHAT_CHATML, C_EMPTY, 0,
	  "" },
	{ WEFT_CHAT_CHATML, C_EMPTY, 1,
	  "<|im_start|>assistant\n" },
	{ WEFT_CHAT_QWEN2, C_SINGLE, 0,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hello!<|im_end|>\n" },
	{ WEFT_CHAT_QWEN2, C_SINGLE, 1,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hello!<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ WEFT_CHAT_QWEN2, C_SYSTEM, 0,
	  "<|im_start|>system\n"
	  "You are terse.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi there<|im_end|>\n" },
	{ WEFT_CHAT_QWEN2, C_SYSTEM, 1,
	  "<|im_start|>system\n"
	  "You are terse.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi there<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ WEFT_CHAT_QWEN2, C_MULTI, 0,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "What is 2+2?<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "4<|im_end|>\n"
	  "<|im_start|>user\n"
	  "And 3+3?<|im_end|>\n" },
	{ WEFT_CHAT_QWEN2, C_MULTI, 1,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "What is 2+2?<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "4<|im_end|>\n"
	  "<|im_start|>user\n"
	  "And 3+3?<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ WEFT_CHAT_QWEN2, C_WS, 0,
	  "<|im_start|>system\n"
	  "  sys  <|im_end|>\n"
	  "<|im_start|>user\n"
	  " padded\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "\tok <|im_end|>\n"
	  "<|im_start|>user\n"
	  "x<|im_end|>\n" },
	{ WEFT_CHAT_QWEN2, C_WS, 1,
	  "<|im_start|>system\n"
	  "  sys  <|im_end|>\n"
	  "<|im_start|>user\n"
	  " padded\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "\tok <|im_end|>\n"
	  "<|im_start|>user\n"
	  "x<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ WEFT_CHAT_QWEN2, C_EMPTY, 0,
	  "" },
	{ WEFT_CHAT_QWEN2, C_EMPTY, 1,
	  "<|im_start|>assistant\n" },
	{ WEFT_CHAT_SMOLVLM, C_SINGLE, 0,
	  "<|im_start|>User: Hello!<end_of_utterance>\n" },
	{ WEFT_CHAT_SMOLVLM, C_SINGLE, 1,
	  "<|im_start|>User: Hello!<end_of_utterance>\nAssistant:" },
	{ WEFT_CHAT_SMOLVLM, C_SYSTEM, 0,
	  "<|im_start|>You are terse.\n\n"
	  "User: Hi there<end_of_utterance>\n" },
	{ WEFT_CHAT_SMOLVLM, C_SYSTEM, 1,
	  "<|im_start|>You are terse.\n\n"
	  "User: Hi there<end_of_utterance>\n"
	  "Assistant:" },
	{ WEFT_CHAT_SMOLVLM, C_MULTI, 0,
	  "<|im_start|>User: What is 2+2?<end_of_utterance>\n"
	  "Assistant: 4<end_of_utterance>\n"
	  "User: And 3+3?<end_of_utterance>\n" },
	{ WEFT_CHAT_SMOLVLM, C_MULTI, 1,
	  "<|im_start|>User: What is 2+2?<end_of_utterance>\n"
	  "Assistant: 4<end_of_utterance>\n"
	  "User: And 3+3?<end_of_utterance>\n"
	  "Assistant:" },
	{ WEFT_CHAT_SMOLVLM, C_WS, 0,
	  "<|im_start|>  sys  \n\n"
	  "User:  padded\n"
	  "<end_of_utterance>\n"
	  "Assistant: \tok <end_of_utterance>\n"
	  "User: x<end_of_utterance>\n" },
	{ WEFT_CHAT_SMOLVLM, C_WS, 1,
	  "<|im_start|>  sys  \n\n"
	  "User:  padded\n"
	  "<end_of_utterance>\n"
	  "Assistant: \tok <end_of_utterance>\n"
	  "User: x<end_of_utterance>\n"
	  "Assistant:" },
	{ WEFT_CHAT_SMOLVLM, C_EMPTY, 0,
	  "<|im_start|>" },
	{ WEFT_CHAT_SMOLVLM, C_EMPTY, 1,
	  "<|im_start|>Assistant:" },
	{ WEFT_CHAT_VICUNA, C_SINGLE, 0,
	  "USER: Hello!\n" },
	{ WEFT_CHAT_VICUNA, C_SINGLE, 1,
	  "USER: Hello!\nASSISTANT:" },
	{ WEFT_CHAT_VICUNA, C_SYSTEM, 0,
	  "You are terse.\n\nUSER: Hi there\n" },
	{ WEFT_CHAT_VICUNA, C_SYSTEM, 1,
	  "You are terse.\n\nUSER: Hi there\nASSISTANT:" },
	{ WEFT_CHAT_VICUNA, C_MULTI, 0,
	  "USER: What is 2+2?\nASSISTANT: 4</s>\nUSER: And 3+3?\n" },
	{ WEFT_CHAT_VICUNA, C_MULTI, 1,
	  "USER: What is 2+2?\n"
	  "ASSISTANT: 4</s>\n"
	  "USER: And 3+3?\n"
	  "ASSISTANT:" },
	{ WEFT_CHAT_VICUNA, C_WS, 0,
	  "  sys  \n\nUSER:  padded\n\nASSISTANT: \tok </s>\nUSER: x\n" },
	{ WEFT_CHAT_VICUNA, C_WS, 1,
	  "  sys  \n\n"
	  "USER:  padded\n\n"
	  "ASSISTANT: \tok </s>\n"
	  "USER: x\n"
	  "ASSISTANT:" },
	{ WEFT_CHAT_VICUNA, C_EMPTY, 0,
	  "" },
	{ WEFT_CHAT_VICUNA, C_EMPTY, 1,
	  "ASSISTANT:" },
	{ WEFT_CHAT_LLAMA2, C_SINGLE, 0,
	  "[INST] Hello! [/INST]" },
	{ WEFT_CHAT_LLAMA2, C_SINGLE, 1,
	  "[INST] Hello! [/INST]" },
	{ WEFT_CHAT_LLAMA2, C_SYSTEM, 0,
	  "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST]" },
	{ WEFT_CHAT_LLAMA2, C_SYSTEM, 1,
	  "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST]" },
	{ WEFT_CHAT_LLAMA2, C_MULTI, 0,
	  "[INST] What is 2+2? [/INST]4</s>[INST] And 3+3? [/INST]" },
	{ WEFT_CHAT_LLAMA2, C_MULTI, 1,
	  "[INST] What is 2+2? [/INST]4</s>[INST] And 3+3? [/INST]" },
	{ WEFT_CHAT_LLAMA2, C_WS, 0,
	  "[INST] <<SYS>>\n"
	  "  sys  \n"
	  "<</SYS>>\n\n"
	  " padded\n"
	  " [/INST]\tok </s>"
	  "[INST] x [/INST]" },
	{ WEFT_CHAT_LLAMA2, C_WS, 1,
	  "[INST] <<SYS>>\n"
	  "  sys  \n"
	  "<</SYS>>\n\n"
	  " padded\n"
	  " [/INST]\tok </s>"
	  "[INST] x [/INST]" },
	{ WEFT_CHAT_LLAMA2, C_EMPTY, 0,
	  "[INST] " },
	{ WEFT_CHAT_LLAMA2, C_EMPTY, 1,
	  "[INST] " },
	{ WEFT_CHAT_LLAMA3, C_SINGLE, 0,
	  "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>" },
	{ WEFT_CHAT_LLAMA3, C_SINGLE, 1,
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "Hello!<|eot_id|>"
	  "<|start_header_id|>assistant<|end_header_id|>\n\n" },
	{ WEFT_CHAT_LLAMA3, C_SYSTEM, 0,
	  "<|start_header_id|>system<|end_header_id|>\n\n"
	  "You are terse.<|eot_id|>"
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "Hi there<|eot_id|>" },
	{ WEFT_CHAT_LLAMA3, C_SYSTEM, 1,
	  "<|start_header_id|>system<|end_header_id|>\n\n"
	  "You are terse.<|eot_id|>"
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "Hi there<|eot_id|>"
	  "<|start_header_id|>assistant<|end_header_id|>\n\n" },
	{ WEFT_CHAT_LLAMA3, C_MULTI, 0,
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "What is 2+2?<|eot_id|>"
	  "<|start_header_id|>assistant<|end_header_id|>\n\n"
	  "4<|eot_id|>"
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "And 3+3?<|eot_id|>" },
	{ WEFT_CHAT_LLAMA3, C_MULTI, 1,
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "What is 2+2?<|eot_id|>"
	  "<|start_header_id|>assistant<|end_header_id|>\n\n"
	  "4<|eot_id|>"
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "And 3+3?<|eot_id|>"
	  "<|start_header_id|>assistant<|end_header_id|>\n\n" },
	{ WEFT_CHAT_LLAMA3, C_WS, 0,
	  "<|start_header_id|>system<|end_header_id|>\n\n"
	  "sys<|eot_id|>"
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "padded<|eot_id|>"
	  "<|start_header_id|>assistant<|end_header_id|>\n\n"
	  "ok<|eot_id|>"
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "x<|eot_id|>" },
	{ WEFT_CHAT_LLAMA3, C_WS, 1,
	  "<|start_header_id|>system<|end_header_id|>\n\n"
	  "sys<|eot_id|>"
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "padded<|eot_id|>"
	  "<|start_header_id|>assistant<|end_header_id|>\n\n"
	  "ok<|eot_id|>"
	  "<|start_header_id|>user<|end_header_id|>\n\n"
	  "x<|eot_id|>"
	  "<|start_header_id|>assistant<|end_header_id|>\n\n" },
	{ WEFT_CHAT_LLAMA3, C_EMPTY, 0,
	  "" },
	{ WEFT_CHAT_LLAMA3, C_EMPTY, 1,
	  "<|start_header_id|>assistant<|end_header_id|>\n\n" },
};

static void check_template(int tmpl)
{
	int seen = 0;
	for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
		const struct expect *e = &expected[i];
		if (e->tmpl != tmpl)
			continue;
		seen++;
		char *got = weft_chat_render(tmpl, convs[e->conv].m, convs[e->conv].n, e->add);
		if (!got) {
			FAILF("%s conv %d add %d: NULL (%s)", weft_chat_name(tmpl), e->conv,
			      e->add, weft_errmsg());
			return;
		}
		if (strcmp(got, e->out) != 0) {
			char g[200], w[200];
			weft_escape(got, strlen(got), g, sizeof g);
			weft_escape(e->out, strlen(e->out), w, sizeof w);
			FAILF("%s conv %d add %d: got \"%s\", expected \"%s\"",
			      weft_chat_name(tmpl), e->conv, e->add, g, w);
		}
		free(got);
	}
	CHECK_EQ_INT(seen, 2 * C_COUNT);
}

static void render_chatml(void) { check_template(WEFT_CHAT_CHATML); }
static void render_qwen2(void) { check_template(WEFT_CHAT_QWEN2); }
static void render_smolvlm(void) { check_template(WEFT_CHAT_SMOLVLM); }
static void render_vicuna(void) { check_template(WEFT_CHAT_VICUNA); }
static void render_llama2(void) { check_template(WEFT_CHAT_LLAMA2); }
static void render_llama3(void) { check_template(WEFT_CHAT_LLAMA3); }

/* Invariants every registered template (chat_templates.def) must keep,
 * walked over the family table: a lookup by its listed name finds it; a
 * summary; the user's text appears verbatim; the assistant opening only
 * appends; a longer conversation extends a shorter one; an unknown role
 * is refused. */
static void every_template(void)
{
	const weft_family *fam = weft_chat_family();
	CHECK_EQ_INT(fam->n, WEFT_CHAT_COUNT - 1);
	const weft_chat_msg conv[] = {{"system", "Be brief."}, {"user", "What is 2+2?"}, {"assistant", "4"},
				      {"user", "And 3+3?"}};
	for (size_t i = 0; i < fam->n && !t_failed; i++) {
		const weft_method *m = weft_family_at(fam, i);
		const int t = (int)i + 1;
		CHECK(m && m->name && m->summary && *m->summary);
		CHECK_EQ_INT(weft_family_find(fam, m->name), (int)i);
		CHECK_EQ_INT(weft_chat_from_name(m->name), t);
		char *two = weft_chat_render(t, conv, 2, 0), *two_a = weft_chat_render(t, conv, 2, 1),
		     *four = weft_chat_render(t, conv, 4, 1);
		CHECK(two && two_a && four);
		if (two && two_a && four) {
			if (!strstr(two, "What is 2+2?") || !strstr(four, "And 3+3?"))
				FAILF("%s: the user's text is not in the prompt", m->name);
			if (strncmp(two_a, two, strlen(two)) != 0)
				FAILF("%s: the assistant opening does not extend the prompt", m->name);
			if (strncmp(four, two, strlen(two)) != 0)
				FAILF("%s: a longer conversation does not extend the shorter one", m->name);
		}
		free(two), free(two_a), free(four);
		const weft_chat_msg bad[] = {{"tool", "x"}};
		CHECK(weft_chat_render(t, bad, 1, 1) == NULL);
		CHECK_STR(weft_errmsg(), "unknown chat role 'tool'");
	}
	CHECK_EQ_INT(weft_family_find(fam, "alpaca"), -1);
	CHECK_STR(weft_errmsg(),
		  "unknown chat template 'alpaca' (known: chatml, qwen2, smolvlm, vicuna, llama2, llama3)");
}

static void names(void)
{
	static const char *const all[] = { "chatml", "qwen2", "smolvlm", "vicuna",
					   "llama2", "llama3" };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		int t = weft_chat_from_name(all[i]);
		CHECK(t > WEFT_CHAT_NONE && t < WEFT_CHAT_COUNT);
		CHECK_STR(weft_chat_name(t), all[i]);
		CHECK(strstr(weft_chat_names(), all[i]) != NULL);
	}
	CHECK_EQ_INT(weft_chat_from_name("llava"), WEFT_CHAT_VICUNA);
	CHECK(strstr(weft_chat_names(), "llava") != NULL);
	CHECK_STR(weft_chat_name(WEFT_CHAT_NONE), "none");
	CHECK_STR(weft_chat_name(-1), "unknown");
	CHECK_STR(weft_chat_name(WEFT_CHAT_COUNT), "unknown");

	CHECK_EQ_INT(weft_chat_from_name("ChatML"), WEFT_CHAT_NONE);
	CHECK(strncmp(weft_errmsg(), "unknown chat template 'ChatML'", 30) == 0);
	CHECK_EQ_INT(weft_chat_from_name(""), WEFT_CHAT_NONE);
	CHECK_EQ_INT(weft_chat_from_name(NULL), WEFT_CHAT_NONE);
	CHECK_EQ_INT(weft_chat_from_name("none"), WEFT_CHAT_NONE);
}

static void errors(void)
{
	weft_chat_msg m[2] = { { "user", "hi" }, { "tool", "{}" } };
	CHECK(weft_chat_render(WEFT_CHAT_CHATML, m, 2, 1) == NULL);
	CHECK_STR(weft_errmsg(), "unknown chat role 'tool'");
	m[1].role = "bad\nrole";
	CHECK(weft_chat_render(WEFT_CHAT_LLAMA3, m, 2, 1) == NULL);
	CHECK_STR(weft_errmsg(), "unknown chat role 'bad\\x0arole'");
	m[1].role = "User"; /* roles are case-sensitive, as in the Jinja templates */
	CHECK(weft_chat_render(WEFT_CHAT_VICUNA, m, 2, 1) == NULL);
	CHECK_STR(weft_errmsg(), "unknown chat role 'User'");
	m[1].role = "assistant";
	m[1].content = NULL;
	CHECK(weft_chat_render(WEFT_CHAT_SMOLVLM, m, 2, 1) == NULL);
	CHECK_STR(weft_errmsg(), "chat message 2 has no content");
	m[1].content = "ok";
	CHECK(weft_chat_render(WEFT_CHAT_NONE, m, 2, 1) == NULL);
	CHECK_STR(weft_errmsg(), "unknown chat template (0)");
	CHECK(weft_chat_render(WEFT_CHAT_COUNT, m, 2, 1) == NULL);
	CHECK(weft_chat_render(-3, m, 2, 1) == NULL);
	CHECK(weft_chat_render(WEFT_CHAT_CHATML, NULL, 1, 1) == NULL);
	char *ok = weft_chat_render(WEFT_CHAT_CHATML, NULL, 0, 0);
	CHECK_STR(ok, "");
	free(ok);
}

/* A long conversation exercises buffer growth; checks length and ends. */
static void long_conversation(void)
{
	enum { N = 2000 };
	static weft_chat_msg m[N];
	for (size_t i = 0; i < N; i++) {
		m[i].role = i % 2 ? "assistant" : "user";
		m[i].content = "0123456789abcdef0123456789abcdef";
	}
	char *s = weft_chat_render(WEFT_CHAT_CHATML, m, N, 1);
	CHECK(s != NULL);
	if (!s)
		return;
	size_t per_user = strlen("<|im_start|>user\n<|im_end|>\n") + 32;
	size_t per_asst = strlen("<|im_start|>assistant\n<|im_end|>\n") + 32;
	size_t want = N / 2 * (per_user + per_asst) + strlen("<|im_start|>assistant\n");
	CHECK_EQ_INT(strlen(s), want);
	CHECK(strncmp(s, "<|im_start|>user\n0123", 21) == 0);
	free(s);
}

/* Qwen2-Instruct's chat_template (tokenizer_config.json). */
#define QWEN2_JINJA                                                                          \
	"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" \
	"{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"        \
	"{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}" \
	"{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

/* SmolLM2-Instruct's chat_template, as stored in its GGUF. */
#define SMOLLM2_JINJA                                                                        \
	"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" \
	"{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "       \
	"Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "    \
	"message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"  \
	"{{ '<|im_start|>assistant\n' }}{% endif %}"

/* Real templates (or distinctive excerpts of them) and what llama.cpp's
 * llm_chat_detect_template() makes of them, mapped to weft's templates
 * (families weft does not render: WEFT_CHAT_NONE). */
static const struct {
	const char *what, *jinja;
	int want;
} detect_cases[] = {
	{ "SmolLM2", SMOLLM2_JINJA, WEFT_CHAT_CHATML },
	{ "Qwen2 (chatml in llama.cpp)", QWEN2_JINJA, WEFT_CHAT_CHATML },
	{ "SmolVLM",
	  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
	  "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
	  "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
	  "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
	  "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}",
	  WEFT_CHAT_SMOLVLM },
	{ "vicuna-13b-1.1",
	  "{%- for message in messages %}{%- if message['role'] == 'system' -%}"
	  "{{- '' + message['content'] + '\n\n' -}}{%- else -%}{%- if message['role'] == 'user' -%}"
	  "{{-'USER: ' + message['content'] + '\n'-}}{%- else -%}"
	  "{{-'ASSISTANT: ' + message['content'] + '</s>\n' -}}{%- endif -%}{%- endif -%}"
	  "{%- endfor -%}{%- if add_generation_prompt -%}{{-'ASSISTANT:'-}}{%- endif -%}",
	  WEFT_CHAT_VICUNA },
	{ "Orca-Vicuna",
	  "{{-'SYSTEM: ' + message['content'] + '\n' -}}{{-'USER: ' + message['content'] + '\n'-}}"
	  "{{-'ASSISTANT: ' + message['content'] + '</s>\n' -}}",
	  WEFT_CHAT_NONE },
	{ "Llama-3",
	  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
	  "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] "
	  "| trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
	  "{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
	  WEFT_CHAT_LLAMA3 },
	{ "Mistral-7B-Instruct-v0.2 (llama2 in llama.cpp)",
	  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
	  "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
	  "{{ message['content'] + eos_token}}{% endif %}{% endfor %}",
	  WEFT_CHAT_LLAMA2 },
	{ "llama2 with <<SYS>>",
	  "{{- '[INST] <<SYS>>\\n' + messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}",
	  WEFT_CHAT_LLAMA2 },
	{ "Llama-2-chat (strip variant)",
	  "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
	  "{% set content = '<<SYS>>\\n' + system_message %}",
	  WEFT_CHAT_LLAMA2 },
	{ "mistral v1", "{{ ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}",
	  WEFT_CHAT_NONE },
	{ "mistral v7", "{{ '[SYSTEM_PROMPT]' + s + '[/SYSTEM_PROMPT]' }}{{ '[INST]' + c + '[/INST]' }}",
	  WEFT_CHAT_NONE },
	{ "text starting with 'mistral'", "mistral is not a template name", WEFT_CHAT_LLAMA2 },
	{ "phi4", "{{'<|im_start|>' + message['role'] + '<|im_sep|>' + message['content'] + '<|im_end|>'}}",
	  WEFT_CHAT_NONE },
	{ "phi3", "{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n'}}"
		  "{{ '<|assistant|>\n' }}",
	  WEFT_CHAT_NONE },
	{ "gemma", "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}",
	  WEFT_CHAT_NONE },
	/* precedence, as in llama.cpp's order of checks */
	{ "chatml before llama3", "<|im_start|><|start_header_id|><|end_header_id|>", WEFT_CHAT_CHATML },
	{ "vicuna before llama3", "USER: ASSISTANT: <|start_header_id|><|end_header_id|>",
	  WEFT_CHAT_VICUNA },
	{ "zephyr before llama3", "<|user|><|endoftext|><|start_header_id|><|end_header_id|>",
	  WEFT_CHAT_NONE },
	{ "openchat before vicuna", "GPT4 Correct USER: ASSISTANT: ", WEFT_CHAT_NONE },
	{ "command-r before llama3",
	  "<|START_OF_TURN_TOKEN|><|USER_TOKEN|><|start_header_id|><|end_header_id|>", WEFT_CHAT_NONE },
	{ "llama3 needs both markers", "<|start_header_id|>", WEFT_CHAT_NONE },
	/* a bare template name is accepted, as llama.cpp does */
	{ "name chatml", "chatml", WEFT_CHAT_CHATML },
	{ "name llama3", "llama3", WEFT_CHAT_LLAMA3 },
	{ "name llava", "llava", WEFT_CHAT_VICUNA },
	{ "name llama2-sys-strip", "llama2-sys-strip", WEFT_CHAT_LLAMA2 },
	{ "name mistral-v3", "mistral-v3", WEFT_CHAT_NONE },
	{ "empty", "", WEFT_CHAT_NONE },
	{ "no markers", "{{ messages }}", WEFT_CHAT_NONE },
};

static void detect(void)
{
	for (size_t i = 0; i < sizeof detect_cases / sizeof detect_cases[0]; i++) {
		const char *j = detect_cases[i].jinja;
		int got = weft_chat_detect(j, strlen(j));
		if (got != detect_cases[i].want)
			FAILF("%s: detected %s, expected %s", detect_cases[i].what,
			      weft_chat_name(got), weft_chat_name(detect_cases[i].want));
	}
	CHECK_EQ_INT(weft_chat_detect(NULL, 0), WEFT_CHAT_NONE);
}

/* Only the first len bytes count, and they need no NUL. */
static void detect_len(void)
{
	const char *s = "{{ x }}<|start_header_id|>a<|end_header_id|>";
	size_t n = strlen(s);
	CHECK_EQ_INT(weft_chat_detect(s, n), WEFT_CHAT_LLAMA3);
	CHECK_EQ_INT(weft_chat_detect(s, n - 1), WEFT_CHAT_NONE);
	char buf[12];
	memcpy(buf, "<|im_start|>", 12); /* no NUL */
	CHECK_EQ_INT(weft_chat_detect(buf, 12), WEFT_CHAT_CHATML);
	CHECK_EQ_INT(weft_chat_detect(buf, 11), WEFT_CHAT_NONE);
	CHECK_EQ_INT(weft_chat_detect("chatml!", 6), WEFT_CHAT_CHATML);
}

/* The chat_template stored in the real SmolLM2 GGUF, read with lib/gguf.h. */
static void detect_smollm2_gguf(void)
{
	const char *path = t_smollm2_path();
	if (!path)
		SKIP("SmolLM2 GGUF absent (scripts/fetch-models)");
	weft_gguf *g = weft_gguf_open(path);
	if (!g) {
		FAILF("weft_gguf_open: %s", weft_errmsg());
		return;
	}
	weft_gguf_str tmpl = { 0 };
	CHECK_EQ_INT(weft_gguf_get_str(g, "tokenizer.chat_template", &tmpl), 0);
	CHECK_EQ_INT(weft_chat_detect(tmpl.ptr, (size_t)tmpl.len), WEFT_CHAT_CHATML);
	CHECK(tmpl.len == strlen(SMOLLM2_JINJA) &&
	      memcmp(tmpl.ptr, SMOLLM2_JINJA, (size_t)tmpl.len) == 0);
	weft_gguf_close(g);
}

int main(void)
{
	t_suite = "chat";
	(void)t_shared_dir; /* test.h helpers this suite does not need */
	(void)t_read_file;
	RUN(render_chatml);
	RUN(render_qwen2);
	RUN(render_smolvlm);
	RUN(render_vicuna);
	RUN(render_llama2);
	RUN(render_llama3);
	RUN(names);
	RUN(every_template);
	RUN(errors);
	RUN(long_conversation);
	RUN(detect);
	RUN(detect_len);
	RUN(detect_smollm2_gguf);
	TEST_MAIN_END();
}

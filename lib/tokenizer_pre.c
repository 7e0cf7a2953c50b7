/* tokenizer_pre.c - BPE pre-tokenizers: the splitting steps named by
 * tokenizer.ggml.pre (PCRE2 regexes, JIT, and a few splitters written out),
 * applied as llama.cpp's unicode_regex_split applies them: each step inside
 * the pieces produced by the previous one, text between matches kept as a
 * piece of its own.
 *
 * llama.cpp runs its regexes in three ways, and the PCRE2 patterns here give
 * the same pieces for each:
 *  - hand-written splitters for the GPT-2, Llama-3, Qwen2 and Qwen3.5 regexes:
 *    the same pieces as a backtracking engine on each piece as its own
 *    subject (the regex itself is used here);
 *  - std::regex on a "collapsed" text where each non-ASCII code point stands
 *    for its category (for regexes with \p{..}): \p{Lu}, \p{Ll}, ... mean
 *    \p{L} there, and [^a-z] inside a letter look-ahead takes every
 *    non-ASCII letter;
 *  - std::wregex on code points (the other regexes), where every non-ASCII
 *    whitespace character is first replaced by U+000B: such characters never
 *    match a literal range of a class ("[\x{800}-\x{4E00}]" here leaves out
 *    U+1680, U+2000-U+200A, U+2028, ..., U+3000), and \s is llama.cpp's
 *    whitespace set (with U+0085).
 * Letter / number classes come from PCRE2's Unicode tables, which may differ
 * from llama.cpp's (Unicode 15.1) for recently assigned code points; the
 * splitters written out here use tokenizer_unicode.c's, which are llama.cpp's. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer.h"
#include "tokenizer_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTRACT "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define R_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define R_LLAMA3 CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define R_QWEN2 CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define R_QWEN35 CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
	"\\s+(?!\\S)|\\s+"
/* letters that are not ASCII lower case, then letters that are not ASCII
 * upper case (llama.cpp's look-ahead form of GPT-4o's case classes) */
#define UPPERISH "(?:(?=\\p{L})[^a-z])"
#define LOWERISH "(?:(?=\\p{L})[^A-Z])"
#define R_GPT4O "[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "*" LOWERISH "+" CONTRACT "?|[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "+" \
	LOWERISH "*" CONTRACT "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define R_TEKKEN "[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "*" LOWERISH "+|[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "+" LOWERISH "*|" \
	"\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define UPPERISH_M "(?:(?=[\\p{L}\\p{M}])[^a-z])"
#define LOWERISH_M "(?:(?=[\\p{L}\\p{M}])[^A-Z])"
#define R_GRANITE97 "[^\\r\\n\\p{L}\\p{N}]?" UPPERISH_M "*" LOWERISH_M "+" CONTRACT "?|[^\\r\\n\\p{L}\\p{N}]?" \
	UPPERISH_M "+" LOWERISH_M "*" CONTRACT "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* GPT-4o's case classes as llama.cpp runs them on collapsed text: all letters */
#define R_CASES(digits) "[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]*[\\p{L}\\p{M}]+" CONTRACT "?|[^\\r\\n\\p{L}\\p{N}]?" \
	"[\\p{L}\\p{M}]+[\\p{L}\\p{M}]*" CONTRACT "?|" digits "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define R_DEEPSEEK3 "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
/* CJK, Hangul and the blocks between (U+0800-U+4E00) without whitespace */
#define R_CJK_WIDE "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{167F}\\x{1681}-\\x{1FFF}\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}" \
	"\\x{2030}-\\x{205E}\\x{2060}-\\x{2FFF}\\x{3001}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
#define R_KANA "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+"
#define R_PORO " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"

/* Steps that are not regexes (their own code below). */
static const char S_TRAILING_WS[] = "<trailing whitespace>", S_DIGITS3[] = "<digits by threes>";

static const char *const re_default[] = { "[\\p{P}\\$\\+<=>\\^~\\|]+", R_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL };
static const char *const re_gpt2[] = { R_GPT2, NULL };
static const char *const re_llama3[] = { R_LLAMA3, NULL };
static const char *const re_jais2[] = { CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
	"\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|"
	"\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}", NULL };
static const char *const re_qwen2[] = { R_QWEN2, NULL };
static const char *const re_qwen35[] = { R_QWEN35, NULL };
static const char *const re_laguna[] = { "[^\\n]+|[\\n]+", R_QWEN2, NULL };
static const char *const re_ufakzeka[] = {
	"[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL };
static const char *const re_starcoder[] = { "\\p{N}", R_GPT2, NULL };
static const char *const re_falcon[] = { "[\\p{P}\\$\\+<=>\\^~\\|`]+", R_GPT2, "[0-9][0-9][0-9]", NULL };
static const char *const re_deepseek_coder[] = { "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", R_CJK_WIDE, "\\p{N}", NULL };
static const char *const re_deepseek_llm[] = {
	"[\r\n]",
	"\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}"
	"\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}"
	"\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
	"\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"
	"\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}"
	"\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"
	"\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
	"\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}"
	"\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
	"\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"
	"\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}"
	"\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
	"\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
	/* ASCII and full-width punctuation, quotes, U+3001-U+3002 (U+3000 is whitespace) */
	"\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3001}-\\x{3002}]+",
	S_TRAILING_WS, R_CJK_WIDE, "\\p{N}+", NULL };
static const char *const re_deepseek3[] = {
	"\\p{N}{1,3}", R_KANA, R_DEEPSEEK3 " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+", NULL };
static const char *const re_spark2_5[] = {
	"\\p{N}{1,3}", R_KANA, R_DEEPSEEK3 " ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+", "\\p{N}", NULL };
static const char *const re_youtu[] = {
	"[\\x{AC00}-\\x{D7A3}\\x{3131}-\\x{318E}]+|[\\x{FF01}\\x{2026}\\x{201C}\\x{201D}\\x{2018}\\x{2019}\\x{2014}"
	"\\x{FF1A}\\x{FF1B}\\x{FF0C}\\x{3001}-\\x{303F}\\x{FE30}-\\x{FE4F}]+|[\\x{3105}-\\x{312F}]+|"
	"[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
	R_CASES("\\p{N}"), NULL };
static const char *const re_poro[] = { R_PORO, NULL };
static const char *const re_viking[] = { R_PORO, "\\p{N}", NULL };
static const char *const re_gpt4o[] = { R_GPT4O, NULL };
static const char *const re_tekken[] = { R_TEKKEN, NULL };
static const char *const re_granite97[] = { R_GRANITE97, NULL };
static const char *const re_chameleon[] = {
	"<sentinel:[0-9]+>", "(?:IMGIMG)(?:(?:A|B|C|D|E|F|G|H|I){1,4})Z", "(?:[\\t\\n]|    |  )", "\\p{N}",
	"[\\p{P}!-/:-@\\[-`{-~]", R_GPT2, NULL };
static const char *const re_seed_coder[] = {
	CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL };
static const char *const re_bailingmoe[] = {
	"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
	"\\s*[\\r\\n]|\\s+(?!\\S)|\\s+", NULL };
static const char *const re_exaone_moe[] = {
	CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|"
	"\\s*[\\r\\n]|\\s+(?!\\S)|\\s+", NULL };
static const char *const re_minicpm5[] = {
	"\\p{N}{1,3}",
	CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL };
static const char *const re_newlines[] = { "[^\\n]+|[\\n]+", NULL };
static const char *const re_tiny_aya[] = { S_DIGITS3, R_CASES("\\p{N}{1,3}"), NULL };
static const char *const re_afmoe[] = {
	S_DIGITS3,
	"[\\x{4E00}-\\x{9FFF}\\x{3400}-\\x{4DBF}\\x{8C48}-\\x{FAFF}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}\\x{FF65}-\\x{FF9F}"
	"\\x{2F00}-\\x{2FDF}\\x{E40}-\\x{E7F}\\x{E80}-\\x{EFF}\\x{1780}-\\x{17FF}\\x{1000}-\\x{109F}\\x{AA60}-\\x{AA7F}"
	"\\x{A9E0}-\\x{A9FF}\\x{AC00}-\\x{D7AF}\\x{1100}-\\x{11FF}]+",
	R_DEEPSEEK3 " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL };
/* std::wregex's \\d: ASCII digits; an empty match is a split point */
static const char *const re_superbpe[] = { "\\p{N}+", "(?=(?:[0-9]{3})+(?![0-9]))", NULL };
static const char *const re_whitespace[] = { "\\S+", NULL };

typedef struct pre_def {
	const char *names;      /* '|'-separated tokenizer.ggml.pre values */
	const char *const *re;
	int flags;              /* WT_PRE_* */
} pre_def;

enum { IGN = WT_PRE_IGNORE_MERGES, BOS = WT_PRE_ADD_BOS, KEEP = WT_PRE_KEEP_SPACES, RAW = WT_PRE_RAW_BYTES,
       ESC = WT_PRE_ESCAPE_SPACES, NLW = WT_PRE_NEWLINE_WORDS, FBOS = WT_PRE_FORCE_BOS };

/* The names and flags of llama.cpp's llama_vocab::impl::load. */
static const pre_def pre_defs[] = {
	{ "default", re_default, 0 },
	{ "llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|jina-v5-nano", re_llama3, IGN | BOS },
	{ "dbrx|smaug-bpe|chatglm-bpe", re_llama3, 0 },
	{ "glm4|glm5", re_llama3, IGN },
	{ "jais-2", re_jais2, 0 },
	{ "gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|modern-bert|exaone4|"
	  "mpt|olmo|jais|jina-v1-en|jina-v2-code|roberta-bpe", re_gpt2, 0 },
	{ "trillion|granite-docling", re_gpt2, KEEP },
	{ "starcoder|refact|codeshell|exaone|minerva-7b|mellum2", re_starcoder, 0 },
	{ "smollm|command-r", re_starcoder, KEEP },
	{ "qwen2|deepseek-r1-qwen|kormo|f2llmv2|hunyuan|solar-open|grok-2", re_qwen2, KEEP },
	{ "stablelm2|megrez", re_qwen2, 0 },
	{ "qwen35", re_qwen35, KEEP },
	{ "laguna", re_laguna, KEEP },
	{ "ufakzeka", re_ufakzeka, KEEP },
	{ "falcon", re_falcon, 0 },
	{ "deepseek-llm", re_deepseek_llm, KEEP },
	{ "deepseek-coder", re_deepseek_coder, KEEP },
	{ "deepseek-v3|hunyuan-dense|hy_v4|joyai-llm", re_deepseek3, KEEP },
	{ "spark2_5", re_spark2_5, KEEP },
	{ "youtu", re_youtu, KEEP | IGN },
	{ "poro-chat", re_poro, KEEP },
	{ "bloom|gpt3-finnish", re_poro, 0 },
	{ "viking", re_viking, KEEP },
	{ "gpt-4o|llama4|kanana2|talkie|minimax-m2", re_gpt4o, KEEP },
	{ "tekken", re_tekken, KEEP | IGN | BOS },
	{ "granite-embed-multi-97m", re_granite97, KEEP | IGN },
	{ "chameleon", re_chameleon, KEEP | BOS },
	{ "seed-coder", re_seed_coder, KEEP },
	{ "bailingmoe|bailingmoe2|llada-moe", re_bailingmoe, KEEP },
	{ "exaone-moe", re_exaone_moe, 0 },
	{ "minicpm5", re_minicpm5, IGN },
	{ "gemma4|granite-embed-multi-311m", re_newlines, RAW | ESC | NLW | FBOS },
	{ "sarvam-moe", re_newlines, RAW | ESC | KEEP },
	{ "whitespace", re_whitespace, RAW },
	{ "tiny_aya|cohere2moe", re_tiny_aya, KEEP },
	{ "afmoe", re_afmoe, KEEP },
	{ "superbpe", re_superbpe, KEEP },
	{ NULL, NULL, 0 }
};

/* Names llama.cpp knows whose pre-tokenizers weft does not implement. */
static const char *const pre_unsupported = "kimi-k2";

static int name_in(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, '|');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		if (k == n && memcmp(p, name, n) == 0)
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

/* llama.cpp's whitespace set (\s). */
#define WS_SET "\\t\\n\\x0b\\f\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

/* Rewrite \s, \S and \p{Lx} as described at the top of the file. */
static char *translate(const char *re)
{
	/* each 2-character escape grows to at most the set and 3 brackets */
	size_t n = strlen(re), cap = n + (n / 2 + 1) * (sizeof WS_SET + 3) + 1, o = 0;
	char *out = weft_malloc(cap);
	if (!out)
		return NULL;
	int inside = 0;
	for (size_t i = 0; i < n; i++) {
		const char *add = NULL;
		size_t skip = 0;
		if (re[i] == '\\' && i + 1 < n) {
			char c = re[i + 1];
			if (c == 's')
				add = inside ? WS_SET : "[" WS_SET "]", skip = 1;
			else if (c == 'S' && !inside)
				add = "[^" WS_SET "]", skip = 1;
			else if (c == 'p' && i + 5 < n + 1 && re[i + 2] == '{' && re[i + 3] == 'L' &&
				 re[i + 4] != '}' && re[i + 5] == '}')
				add = "\\p{L}", skip = 5;
			else {
				out[o++] = re[i];
				out[o++] = re[++i];
				continue;
			}
		} else if (re[i] == '[' && !inside) {
			inside = 1;
		} else if (re[i] == ']' && inside) {
			inside = 0;
		}
		if (add) {
			size_t k = strlen(add);
			memcpy(out + o, add, k);
			o += k;
			i += skip;
		} else {
			out[o++] = re[i];
		}
	}
	out[o] = 0;
	return out;
}

int wt_pre_setup(weft_vocab *v, const char *pre)
{
	const pre_def *d = NULL;
	for (const pre_def *p = pre_defs; p->names; p++)
		if (name_in(p->names, pre)) {
			d = p;
			break;
		}
	if (!d && *pre) { /* llama.cpp refuses unknown names too */
		if (name_in(pre_unsupported, pre))
			weft_error("pre-tokenizer '%s' is not supported", pre);
		else
			weft_error("unknown pre-tokenizer '%s'", pre);
		return -1;
	}
	if (!d) /* empty: llama.cpp's "default" (with a warning there) */
		d = &pre_defs[0];
	snprintf(v->pre, sizeof v->pre, "%s", d == &pre_defs[0] ? "default" : pre);
	v->pre_flags = d->flags;
	v->ignore_merges = !!(d->flags & WT_PRE_IGNORE_MERGES);
	v->add_bos = !!(d->flags & WT_PRE_ADD_BOS);
	v->clean_spaces = !(d->flags & WT_PRE_KEEP_SPACES);

	for (int i = 0; d->re[i]; i++) {
		if (d->re[i] == S_TRAILING_WS || d->re[i] == S_DIGITS3) {
			v->pre_step[v->n_re] = d->re[i] == S_TRAILING_WS ? WT_STEP_TRAILING_WS : WT_STEP_DIGITS3;
			v->re[v->n_re++] = NULL;
			continue;
		}
		char *pat = translate(d->re[i]);
		if (!pat)
			return -1;
		int err;
		PCRE2_SIZE eoff;
		pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
					      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &eoff, NULL);
		free(pat);
		if (!c) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(err, msg, sizeof msg);
			weft_error("pre-tokenizer regex %d: %s at offset %zu", i, (const char *)msg, (size_t)eoff);
			return -1;
		}
		pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
		v->pre_step[v->n_re] = WT_STEP_REGEX;
		v->re[v->n_re++] = c;
	}
	return 0;
}

void wt_pre_free(weft_vocab *v)
{
	for (int i = 0; i < v->n_re; i++)
		if (v->re[i])
			pcre2_code_free(v->re[i]);
	v->n_re = 0;
}

/* ---------------------------------------------------------------- splitting */

typedef struct split_state {
	wt_seg *a, *b;
	size_t na, nb, capa, capb;
	pcre2_match_data *md;
	pcre2_match_context *mc;
	pcre2_jit_stack *js;
} split_state;

static int seg_push(wt_seg **s, size_t *n, size_t *cap, size_t off, size_t len)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		wt_seg *p = weft_realloc(*s, nc * sizeof *p);
		if (!p)
			return -1;
		*s = p;
		*cap = nc;
	}
	(*s)[(*n)++] = (wt_seg){ (uint32_t)off, (uint32_t)len };
	return 0;
}

/* Apply regex re inside each segment of s->a, writing the pieces to s->b. */
static int split_regex(const pcre2_code *re, split_state *s, const char *text)
{
	for (size_t k = 0; k < s->na; k++) {
		const char *subj = text + s->a[k].off;
		size_t len = s->a[k].len, pos = 0, gap = 0;
		while (pos < len) {
			int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, pos, PCRE2_NO_UTF_CHECK, s->md, s->mc);
			if (rc == PCRE2_ERROR_NOMATCH)
				break;
			if (rc < 0) {
				PCRE2_UCHAR msg[160];
				pcre2_get_error_message(rc, msg, sizeof msg);
				weft_error("pre-tokenizer: %s", (const char *)msg);
				return -1;
			}
			PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
			size_t ms = ov[0], me = ov[1];
			if (ms > gap && seg_push(&s->b, &s->nb, &s->capb, s->a[k].off + gap, ms - gap))
				return -1;
			if (me > ms) {
				if (seg_push(&s->b, &s->nb, &s->capb, s->a[k].off + ms, me - ms))
					return -1;
				pos = me;
			} else { /* empty match: a split point; step over one character */
				pos = me + 1;
				while (pos < len && ((unsigned char)subj[pos] & 0xC0) == 0x80)
					pos++;
			}
			gap = me;
		}
		if (gap < len && seg_push(&s->b, &s->nb, &s->capb, s->a[k].off + gap, len - gap))
			return -1;
	}
	return 0;
}

/* "\s+$": the whitespace that ends each segment becomes a piece of its own
 * (scanned backwards: the regex costs time quadratic in a run of spaces). */
static int split_trailing_ws(split_state *s, const char *text)
{
	for (size_t k = 0; k < s->na; k++) {
		const unsigned char *p = (const unsigned char *)text + s->a[k].off;
		size_t len = s->a[k].len, end = len;
		while (end > 0) {
			size_t st = end - 1;
			while (st > 0 && (p[st] & 0xC0) == 0x80)
				st--;
			size_t i = st;
			if (!wt_is_space(wt_utf8_next(p, end, &i)))
				break;
			end = st;
		}
		if (end > 0 && seg_push(&s->b, &s->nb, &s->capb, s->a[k].off, end))
			return -1;
		if (end < len && seg_push(&s->b, &s->nb, &s->capb, s->a[k].off + end, len - end))
			return -1;
	}
	return 0;
}

/* llama.cpp's digit grouping for AFMoE and tiny_aya: each run of numbers
 * (\\p{N}) is cut into its first n % 3 and then groups of three; the text
 * before a run stays with the run's first group (as llama.cpp has it). */
static int split_digits3(split_state *s, const char *text)
{
	for (size_t k = 0; k < s->na; k++) {
		const unsigned char *p = (const unsigned char *)text + s->a[k].off;
		size_t len = s->a[k].len, prev = 0;
		for (size_t i = 0; i < len;) {
			size_t j = i;
			if (wt_uni_class(wt_utf8_next(p, len, &j)) != WT_U_NUMBER) {
				i = j;
				continue;
			}
			size_t cnt = 0, e = i; /* the run: cnt code points, ending at e */
			for (size_t q = i; q < len;) {
				size_t r = q;
				if (wt_uni_class(wt_utf8_next(p, len, &r)) != WT_U_NUMBER)
					break;
				cnt++, e = r, q = r;
			}
			size_t rem = cnt % 3, c = 0, q = i;
			while (q < e) { /* cut after rem, then after every third code point */
				wt_utf8_next(p, len, &q);
				c++;
				if (c == rem || (c > rem && (c - rem) % 3 == 0)) {
					if (seg_push(&s->b, &s->nb, &s->capb, s->a[k].off + prev, q - prev))
						return -1;
					prev = q;
				}
			}
			i = e;
		}
		if (prev < len && seg_push(&s->b, &s->nb, &s->capb, s->a[k].off + prev, len - prev))
			return -1;
	}
	return 0;
}

int wt_pre_split(const weft_vocab *v, const char *text, size_t len, wt_seg **out, size_t *nout)
{
	split_state s;
	memset(&s, 0, sizeof s);
	int rc = -1;
	*out = NULL;
	*nout = 0;
	if (len >= UINT32_MAX) {
		weft_error("text too long for one call (%zu bytes)", len);
		return -1;
	}
	s.md = pcre2_match_data_create(1, NULL);
	s.mc = pcre2_match_context_create(NULL);
	s.js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
	if (!s.md || !s.mc || !s.js) {
		weft_error("out of memory (PCRE2 match data)");
		goto out;
	}
	pcre2_jit_stack_assign(s.mc, NULL, s.js);
	if (seg_push(&s.a, &s.na, &s.capa, 0, len))
		goto out;
	for (int i = 0; i < v->n_re; i++) {
		s.nb = 0;
		int rc2 = v->pre_step[i] == WT_STEP_TRAILING_WS ? split_trailing_ws(&s, text)
			: v->pre_step[i] == WT_STEP_DIGITS3 ? split_digits3(&s, text)
			: split_regex(v->re[i], &s, text);
		if (rc2 != 0)
			goto out;
		wt_seg *t = s.a;
		s.a = s.b;
		s.b = t;
		size_t tc = s.capa;
		s.capa = s.capb;
		s.capb = tc;
		s.na = s.nb;
	}
	*out = s.a;
	*nout = s.na;
	s.a = NULL;
	rc = 0;
out:
	free(s.a);
	free(s.b);
	if (s.md)
		pcre2_match_data_free(s.md);
	if (s.mc)
		pcre2_match_context_free(s.mc);
	if (s.js)
		pcre2_jit_stack_free(s.js);
	return rc;
}

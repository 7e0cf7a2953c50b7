/* tokenizer_bpe.c - byte-level BPE ("gpt2" tokenizer model): pre-tokenizer
 * regexes chosen by tokenizer.ggml.pre (PCRE2, JIT), GPT-2 byte encoding and
 * merges by rank.
 *
 * Pre-tokenizing follows llama.cpp's unicode_regex_split: the regexes of a
 * pre-tokenizer are applied in order, each one inside the pieces produced by
 * the previous one, and text between matches is kept as a piece of its own.
 * llama.cpp's hand-written splitters for the GPT-2, Llama-3 and Qwen2 regexes
 * give the same pieces as a backtracking engine running these regexes on each
 * piece as its own subject, with two adjustments made here: \s / \S use
 * llama.cpp's whitespace set (which includes U+0085), and \p{Lu}, \p{Ll}, ...
 * mean \p{L} (llama.cpp collapses all letter classes).  Letter / number
 * classes come from PCRE2's Unicode tables, which may differ from llama.cpp's
 * for code points assigned in recent Unicode versions. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer.h"
#include "tokenizer_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ pre-tokenizers */

#define R_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define R_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
	"\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define R_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
	"\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define R_GPT4O "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" \
	"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?" \
	"[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" \
	"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|" \
	"\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* Regex lists of llama.cpp's llm_tokenizer_bpe, by pre-tokenizer type. */
static const char *const re_default[] = { "[\\p{P}\\$\\+<=>\\^~\\|]+", R_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL };
static const char *const re_gpt2[] = { R_GPT2, NULL };
static const char *const re_llama3[] = { R_LLAMA3, NULL };
static const char *const re_qwen2[] = { R_QWEN2, NULL };
static const char *const re_starcoder[] = { "\\p{N}", R_GPT2, NULL };
static const char *const re_falcon[] = {
	"[\\p{P}\\$\\+<=>\\^~\\|`]+", R_GPT2, "[0-9][0-9][0-9]", NULL };
static const char *const re_deepseek_coder[] = {
	"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+",
	"\\p{N}", NULL };
static const char *const re_deepseek3[] = {
	"\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
	"[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
	" ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+", NULL };
static const char *const re_poro[] = { " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+", NULL };
static const char *const re_viking[] = { " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+", "\\p{N}", NULL };
static const char *const re_gpt4o[] = { R_GPT4O, NULL };
static const char *const re_seed_coder[] = {
	"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}|"
	" ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL };
static const char *const re_bailingmoe[] = {
	"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
	"\\s*[\\r\\n]|\\s+(?!\\S)|\\s+", NULL };
static const char *const re_minicpm5[] = {
	"\\p{N}{1,3}",
	"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+|"
	" ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL };

enum { F_IGNORE_MERGES = 1, F_ADD_BOS = 2, F_KEEP_SPACES = 4 };

typedef struct pre_def {
	const char *names;      /* '|'-separated tokenizer.ggml.pre values */
	const char *const *re;
	int flags;
} pre_def;

static const pre_def pre_defs[] = {
	{ "default", re_default, 0 },
	{ "llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|jina-v5-nano", re_llama3,
	  F_IGNORE_MERGES | F_ADD_BOS },
	{ "dbrx|smaug-bpe", re_llama3, 0 },
	{ "chatglm-bpe", re_llama3, 0 },
	{ "glm4|glm5", re_llama3, F_IGNORE_MERGES },
	{ "gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|modern-bert|exaone4|"
	  "mpt|olmo|jais|jina-v1-en|jina-v2-code|roberta-bpe", re_gpt2, 0 },
	{ "trillion|granite-docling", re_gpt2, F_KEEP_SPACES },
	{ "starcoder|refact|codeshell|exaone|minerva-7b|mellum2", re_starcoder, 0 },
	{ "smollm|command-r", re_starcoder, F_KEEP_SPACES },
	{ "qwen2|deepseek-r1-qwen|kormo|f2llmv2|hunyuan|solar-open|grok-2", re_qwen2, F_KEEP_SPACES },
	{ "stablelm2|megrez", re_qwen2, 0 },
	{ "falcon", re_falcon, 0 },
	{ "deepseek-coder", re_deepseek_coder, F_KEEP_SPACES },
	{ "deepseek-v3|hunyuan-dense|hy_v4|joyai-llm", re_deepseek3, F_KEEP_SPACES },
	{ "poro-chat", re_poro, F_KEEP_SPACES },
	{ "bloom|gpt3-finnish", re_poro, 0 },
	{ "viking", re_viking, F_KEEP_SPACES },
	{ "gpt-4o|llama4|kanana2|talkie|minimax-m2", re_gpt4o, F_KEEP_SPACES },
	{ "seed-coder", re_seed_coder, F_KEEP_SPACES },
	{ "bailingmoe|bailingmoe2|llada-moe", re_bailingmoe, F_KEEP_SPACES },
	{ "minicpm5", re_minicpm5, F_IGNORE_MERGES },
	{ NULL, NULL, 0 }
};

/* Names llama.cpp knows whose pre-tokenizers weft does not implement. */
static const char *const pre_unsupported =
	"deepseek-llm|spark2_5|youtu|jais-2|gemma4|granite-embed-multi-311m|sarvam-moe|whitespace|"
	"qwen35|tekken|chameleon|exaone-moe|granite-embed-multi-97m|tiny_aya|cohere2moe|superbpe|"
	"kimi-k2|ufakzeka|afmoe|laguna";

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
	size_t n = strlen(re), cap = n * 8 + 64, o = 0;
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

/* ------------------------------------------------------------ byte encoding */

static size_t utf8_put(uint32_t c, uint8_t *o)
{
	if (c < 0x80) {
		o[0] = (uint8_t)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (uint8_t)(0xC0 | (c >> 6));
		o[1] = (uint8_t)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (uint8_t)(0xE0 | (c >> 12));
		o[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
		o[2] = (uint8_t)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (uint8_t)(0xF0 | (c >> 18));
	o[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
	o[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
	o[3] = (uint8_t)(0x80 | (c & 0x3F));
	return 4;
}

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others
 * to U+0100 upwards in byte order. */
static uint32_t byte_cpt(int b)
{
	if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
		return (uint32_t)b;
	uint32_t k = 0;
	for (int c = 0; c < b; c++)
		if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)))
			k++;
	return 256 + k;
}

/* Lenient decoder as llama.cpp's unicode_cpt_from_utf8 (+ U+FFFD on error). */
static uint32_t cpt_lenient(const unsigned char *s, size_t n, size_t *i)
{
	unsigned c = s[*i];
	if (!(c & 0x80)) {
		(*i)++;
		return c;
	}
	size_t need = !(c & 0x40) ? 0 : !(c & 0x20) ? 1 : !(c & 0x10) ? 2 : !(c & 0x08) ? 3 : 0;
	int ok = need && *i + need < n;
	for (size_t k = 1; ok && k <= need; k++)
		ok = (s[*i + k] & 0xC0) == 0x80;
	if (!ok) {
		(*i)++;
		return 0xFFFD;
	}
	uint32_t r = c & (0x3Fu >> need);
	for (size_t k = 1; k <= need; k++)
		r = (r << 6) | (s[*i + k] & 0x3F);
	*i += need + 1;
	return r;
}

/* Inverse of byte_cpt, -1 for code points outside the mapping. */
static int cpt_byte(uint32_t c)
{
	if (c < 256)
		return byte_cpt((int)c) == c ? (int)c : -1;
	if (c < 256 + 33)
		return (int)(c - 256);             /* 0x00-0x20 */
	if (c < 256 + 67)
		return (int)(0x7F + (c - 256 - 33)); /* 0x7F-0xA0 */
	return c == 256 + 67 ? 0xAD : -1;
}

char *wt_bpe_decode_alloc(const char *s, size_t n, size_t *out_len)
{
	size_t cap = n + 16, o = 0;
	char *out = weft_malloc(cap);
	if (!out)
		return NULL;
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		uint32_t c = cpt_lenient(u, n, &i);
		int b = cpt_byte(c);
		if (b >= 0) {
			out[o++] = (char)b;
		} else { /* llama.cpp: "[UNK_BYTE_0x" + hex of the character + text + "]" */
			uint8_t e[4];
			size_t k = c <= 0x10FFFF ? utf8_put(c, e) : 0;
			size_t need = o + 13 + 2 * k + n + 2;
			if (need > cap) {
				cap = need * 2;
				char *nb = weft_realloc(out, cap);
				if (!nb) {
					free(out);
					return NULL;
				}
				out = nb;
			}
			memcpy(out + o, "[UNK_BYTE_0x", 12);
			o += 12;
			for (size_t j = 0; j < k; j++)
				o += (size_t)snprintf(out + o, 3, "%02x", e[j]);
			memcpy(out + o, s, n);
			o += n;
			out[o++] = ']';
		}
		if (o + 8 > cap) {
			cap = cap * 2 + 16;
			char *nb = weft_realloc(out, cap);
			if (!nb) {
				free(out);
				return NULL;
			}
			out = nb;
		}
	}
	*out_len = o;
	return out;
}

/* ------------------------------------------------------------------- setup */

static uint32_t pair_slot(uint64_t key, uint32_t mask)
{
	return (uint32_t)((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask;
}

static int32_t piece_get_or_add(weft_vocab *v, const char *s, size_t n, char **xp)
{
	int32_t id = wt_strmap_get(&v->piece, s, n);
	if (id >= 0)
		return id;
	memcpy(*xp, s, n);
	id = (int32_t)v->piece.n; /* tokens first, so extra ids are >= v->n */
	if (wt_strmap_put(&v->piece, *xp, n, id, 0) != 0)
		return -2;
	*xp += n;
	return id;
}

int wt_bpe_setup(weft_vocab *v, const char *pre, const weft_gguf_value *merges)
{
	const pre_def *d = NULL;
	for (const pre_def *p = pre_defs; p->names; p++)
		if (name_in(p->names, pre)) {
			d = p;
			break;
		}
	if (!d && *pre && name_in(pre_unsupported, pre)) {
		weft_error("pre-tokenizer '%s' is not supported", pre);
		return -1;
	}
	if (!d) /* empty or unknown: llama.cpp's "default" (documented in tokenizer.h) */
		d = &pre_defs[0];
	snprintf(v->pre, sizeof v->pre, "%s", d == &pre_defs[0] ? "default" : pre);
	v->ignore_merges = !!(d->flags & F_IGNORE_MERGES);
	v->add_bos = !!(d->flags & F_ADD_BOS);
	v->clean_spaces = !(d->flags & F_KEEP_SPACES);

	for (int i = 0; d->re[i]; i++) {
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
		v->re[v->n_re++] = c;
	}

	/* byte encoding tables */
	for (int b = 0; b < 256; b++) {
		v->benc_len[b] = (uint8_t)utf8_put(byte_cpt(b), v->benc[b]);
		char c = (char)b;
		v->byte_tok[b] = wt_strmap_get(&v->tok, &c, 1);
	}

	/* pieces: tokens, then merge halves that are not tokens */
	uint64_t nm = merges->v.arr.n, xbytes = 0;
	if (nm > (1u << 28)) {
		weft_error("tokenizer.ggml.merges: too many merges");
		return -1;
	}
	for (uint64_t i = 0; i < nm; i++)
		xbytes += merges->v.arr.strs[i].len;
	if (wt_strmap_init(&v->piece, (uint32_t)v->n + (uint32_t)nm) != 0)
		return -1;
	for (int32_t i = 0; i < v->n; i++)
		if (wt_strmap_put(&v->piece, v->arena + v->off[i], v->len[i], i, 1) != 0)
			return -1;
	v->xarena = weft_malloc(xbytes + 1);
	if (!v->xarena)
		return -1;
	char *xp = v->xarena;
	for (uint64_t i = 0; i < nm; i++) {
		weft_gguf_str s = merges->v.arr.strs[i];
		const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
		if (!sp)
			continue;
		size_t a = (size_t)(sp - s.ptr);
		if (piece_get_or_add(v, s.ptr, a, &xp) < -1 ||
		    piece_get_or_add(v, sp + 1, s.len - a - 1, &xp) < -1)
			return -1;
	}
	for (int b = 0; b < 256; b++)
		v->byte_piece[b] = wt_strmap_get(&v->piece, (const char *)v->benc[b], v->benc_len[b]);

	uint32_t slots = 64;
	while (slots < nm * 2 + 64)
		slots *= 2;
	v->pairs = weft_malloc(slots * sizeof *v->pairs);
	if (!v->pairs)
		return -1;
	memset(v->pairs, 0xff, slots * sizeof *v->pairs);
	v->pair_mask = slots - 1;
	char *cat = NULL;
	size_t catcap = 0;
	for (uint64_t i = 0; i < nm; i++) {
		weft_gguf_str s = merges->v.arr.strs[i];
		const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
		if (!sp)
			continue;
		size_t a = (size_t)(sp - s.ptr), bl = s.len - a - 1;
		int32_t l = wt_strmap_get(&v->piece, s.ptr, a), r = wt_strmap_get(&v->piece, sp + 1, bl);
		if (a + bl > catcap) {
			catcap = (a + bl) * 2 + 64;
			char *nc = weft_realloc(cat, catcap);
			if (!nc) {
				free(cat);
				return -1;
			}
			cat = nc;
		}
		memcpy(cat, s.ptr, a);
		memcpy(cat + a, sp + 1, bl);
		uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
		uint32_t k = pair_slot(key, v->pair_mask);
		while (v->pairs[k].key != UINT64_MAX && v->pairs[k].key != key)
			k = (k + 1) & v->pair_mask;
		if (v->pairs[k].key == key)
			continue; /* first (lowest) rank wins */
		v->pairs[k].key = key;
		v->pairs[k].rank = (int32_t)i;
		v->pairs[k].merged = wt_strmap_get(&v->piece, cat, a + bl);
	}
	free(cat);
	return 0;
}

void wt_bpe_free(weft_vocab *v)
{
	for (int i = 0; i < v->n_re; i++)
		pcre2_code_free(v->re[i]);
	v->n_re = 0;
	wt_strmap_free(&v->piece);
	free(v->xarena);
	free(v->pairs);
	v->xarena = NULL;
	v->pairs = NULL;
}

/* ---------------------------------------------------------------- tokenize */

typedef struct seg {
	uint32_t off, len;
} seg;

typedef struct heap_ent {
	uint64_t key; /* rank << 32 | left */
	int32_t right;
	uint32_t size;
} heap_ent;

typedef struct bpe_scratch {
	seg *a, *b;
	size_t na, nb, capa, capb;
	int32_t *pid, *prev, *next;
	uint32_t *start, *slen;
	heap_ent *heap;
	size_t hn, wcap, hcap;
	char *enc;
	pcre2_match_data *md;
	pcre2_match_context *mc;
	pcre2_jit_stack *js;
} bpe_scratch;

static int seg_push(seg **s, size_t *n, size_t *cap, uint32_t off, uint32_t len)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		seg *p = weft_realloc(*s, nc * sizeof *p);
		if (!p)
			return -1;
		*s = p;
		*cap = nc;
	}
	(*s)[(*n)++] = (seg){ off, len };
	return 0;
}

static const wt_pair *pair_find(const weft_vocab *v, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return NULL;
	uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
	for (uint32_t k = pair_slot(key, v->pair_mask);; k = (k + 1) & v->pair_mask) {
		if (v->pairs[k].key == key)
			return &v->pairs[k];
		if (v->pairs[k].key == UINT64_MAX)
			return NULL;
	}
}

static void heap_push(bpe_scratch *s, heap_ent e)
{
	size_t i = s->hn++;
	while (i) {
		size_t p = (i - 1) / 2;
		if (s->heap[p].key <= e.key)
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static heap_ent heap_pop(bpe_scratch *s)
{
	heap_ent top = s->heap[0], last = s->heap[--s->hn];
	size_t i = 0, n = s->hn;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && s->heap[c + 1].key < s->heap[c].key)
			c++;
		if (last.key <= s->heap[c].key)
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n)
		s->heap[i] = last;
	return top;
}

static void add_bigram(const weft_vocab *v, bpe_scratch *s, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return;
	const wt_pair *p = pair_find(v, s->pid[l], s->pid[r]);
	if (!p)
		return;
	heap_push(s, (heap_ent){ (uint64_t)(uint32_t)p->rank << 32 | (uint32_t)l, r, s->slen[l] + s->slen[r] });
}

static int emit_symbol(const weft_vocab *v, const unsigned char *w, uint32_t start, uint32_t len,
		       int32_t pid, wt_out *o)
{
	if (pid >= 0 && pid < v->n)
		return wt_push(o, pid);
	/* not a token: llama.cpp looks up each byte of the encoded text alone */
	for (uint32_t i = 0; i < len; i++) {
		unsigned b = w[start + i];
		for (int k = 0; k < v->benc_len[b]; k++) {
			int32_t id = v->byte_tok[v->benc[b][k]];
			if (id >= 0 && wt_push(o, id) != 0)
				return -1;
		}
	}
	return 0;
}

/* Merge one pre-tokenized word (raw bytes; one initial symbol per byte). */
static int bpe_word(const weft_vocab *v, bpe_scratch *s, const unsigned char *w, uint32_t n, wt_out *o)
{
	if (v->ignore_merges) {
		size_t e = 0;
		for (uint32_t i = 0; i < n; i++) {
			memcpy(s->enc + e, v->benc[w[i]], v->benc_len[w[i]]);
			e += v->benc_len[w[i]];
		}
		int32_t id = wt_strmap_get(&v->tok, s->enc, e);
		if (id >= 0)
			return wt_push(o, id);
	}
	if (n == 1)
		return emit_symbol(v, w, 0, 1, v->byte_piece[w[0]], o);
	for (uint32_t i = 0; i < n; i++) {
		s->pid[i] = v->byte_piece[w[i]];
		s->start[i] = i;
		s->slen[i] = 1;
		s->prev[i] = (int32_t)i - 1;
		s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
	}
	s->hn = 0;
	for (uint32_t i = 1; i < n; i++)
		add_bigram(v, s, (int32_t)i - 1, (int32_t)i);
	while (s->hn) {
		heap_ent e = heap_pop(s);
		int32_t l = (int32_t)(uint32_t)e.key, r = e.right;
		if (!s->slen[l] || !s->slen[r] || s->slen[l] + s->slen[r] != e.size)
			continue; /* stale */
		const wt_pair *p = pair_find(v, s->pid[l], s->pid[r]);
		s->pid[l] = p ? p->merged : -1;
		s->slen[l] += s->slen[r];
		s->slen[r] = 0;
		s->next[l] = s->next[r];
		if (s->next[r] >= 0)
			s->prev[s->next[r]] = l;
		add_bigram(v, s, s->prev[l], l);
		add_bigram(v, s, l, s->next[l]);
	}
	for (int32_t i = 0; i >= 0; i = s->next[i])
		if (emit_symbol(v, w, s->start[i], s->slen[i], s->pid[i], o) != 0)
			return -1;
	return 0;
}

static int scratch_words(bpe_scratch *s, size_t n)
{
	if (n <= s->wcap)
		return 0;
	size_t c = n + 64;
	free(s->pid), free(s->prev), free(s->next), free(s->start), free(s->slen), free(s->heap), free(s->enc);
	s->pid = weft_malloc(c * sizeof *s->pid);
	s->prev = weft_malloc(c * sizeof *s->prev);
	s->next = weft_malloc(c * sizeof *s->next);
	s->start = weft_malloc(c * sizeof *s->start);
	s->slen = weft_malloc(c * sizeof *s->slen);
	s->hcap = 3 * c;
	s->heap = weft_malloc(s->hcap * sizeof *s->heap);
	s->enc = weft_malloc(2 * c);
	if (!s->pid || !s->prev || !s->next || !s->start || !s->slen || !s->heap || !s->enc) {
		s->wcap = 0;
		return -1;
	}
	s->wcap = c;
	return 0;
}

static void scratch_free(bpe_scratch *s)
{
	free(s->a), free(s->b);
	free(s->pid), free(s->prev), free(s->next), free(s->start), free(s->slen), free(s->heap), free(s->enc);
	if (s->md)
		pcre2_match_data_free(s->md);
	if (s->mc)
		pcre2_match_context_free(s->mc);
	if (s->js)
		pcre2_jit_stack_free(s->js);
}

/* Apply regex re inside each segment of s->a, writing the pieces to s->b. */
static int split_once(const pcre2_code *re, bpe_scratch *s, const char *text)
{
	s->nb = 0;
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
			if (ms > gap && seg_push(&s->b, &s->nb, &s->capb, (uint32_t)(s->a[k].off + gap),
						  (uint32_t)(ms - gap)))
				return -1;
			if (me > ms) {
				if (seg_push(&s->b, &s->nb, &s->capb, (uint32_t)(s->a[k].off + ms), (uint32_t)(me - ms)))
					return -1;
				pos = me;
			} else { /* empty match: a split point; step over one character */
				pos = me + 1;
				while (pos < len && ((unsigned char)subj[pos] & 0xC0) == 0x80)
					pos++;
			}
			gap = me;
		}
		if (gap < len && seg_push(&s->b, &s->nb, &s->capb, (uint32_t)(s->a[k].off + gap),
					  (uint32_t)(len - gap)))
			return -1;
	}
	seg *t = s->a;
	s->a = s->b;
	s->b = t;
	size_t tc = s->capa;
	s->capa = s->capb;
	s->capb = tc;
	s->na = s->nb;
	return 0;
}

int wt_bpe_tokenize(const weft_vocab *v, const char *text, size_t len, wt_out *o)
{
	if (len >= UINT32_MAX) {
		weft_error("text too long for one call (%zu bytes)", len);
		return -1;
	}
	bpe_scratch s;
	memset(&s, 0, sizeof s);
	int rc = -1;
	s.md = pcre2_match_data_create(1, NULL);
	s.mc = pcre2_match_context_create(NULL);
	s.js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
	if (!s.md || !s.mc || !s.js) {
		weft_error("out of memory (PCRE2 match data)");
		goto out;
	}
	pcre2_jit_stack_assign(s.mc, NULL, s.js);
	if (seg_push(&s.a, &s.na, &s.capa, 0, (uint32_t)len))
		goto out;
	for (int i = 0; i < v->n_re; i++)
		if (split_once(v->re[i], &s, text) != 0)
			goto out;
	for (size_t k = 0; k < s.na; k++) {
		if (scratch_words(&s, s.a[k].len) != 0 ||
		    bpe_word(v, &s, (const unsigned char *)text + s.a[k].off, s.a[k].len, o) != 0)
			goto out;
	}
	rc = 0;
out:
	scratch_free(&s);
	return rc;
}

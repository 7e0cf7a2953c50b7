/* tokenizer.c - vocabulary loading, special tokens, special-token
 * partitioning and dispatch to the BPE / SPM / WordPiece tokenizers
 * (tokenizer_bpe.c, tokenizer_spm.c, tokenizer_wpm.c).  See tokenizer.h.
 *
 * The rules follow llama.cpp's llama-vocab.cpp (llama_vocab::impl::load,
 * tokenizer_st_partition); the code is our own. */
#define _GNU_SOURCE /* memmem */
#include "tokenizer.h"
#include "tokenizer_int.h"
#include "util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- loading */

static int str_is(weft_gguf_str s, const char *c)
{
	return weft_gguf_str_eq(s, c);
}

static int in_list(const char *t, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == n && memcmp(*list, t, n) == 0)
			return 1;
	return 0;
}

/* Token texts llama.cpp recognises by name (llama_vocab::impl::load). */
static const char *const eot_names[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
	"<end_of_utterance>", NULL };
static const char *const eom_names[] = { "<|eom_id|>", NULL };
static const char *const fim_pre_names[] = {
	"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
	"<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL };
static const char *const fim_suf_names[] = {
	"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
	"<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL };
static const char *const fim_mid_names[] = {
	"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
	"<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL };
static const char *const fim_pad_names[] = { "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL };
static const char *const fim_rep_names[] = {
	"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL };
static const char *const fim_sep_names[] = { "<|file_sep|>", NULL };
static const char *const eog_names[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
	"<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
	"<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
	"<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[", NULL };

static const char *tok_text(const weft_vocab *v, int32_t id, size_t *n)
{
	*n = v->len[id];
	return v->arena + v->off[id];
}

static int tok_is(const weft_vocab *v, int32_t id, const char *s)
{
	size_t n;
	const char *t = tok_text(v, id, &n);
	return strlen(s) == n && memcmp(s, t, n) == 0;
}

/* Auto-detect a special id by text when the metadata gave none.  llama.cpp
 * walks a hash map, so its pick among several candidates depends on hash
 * order; weft takes the lowest id, preferring one that is not avoid (for EOT:
 * not EOS), which agrees with llama.cpp on SmolLM2 (0 '<|endoftext|>') and
 * Phi-3 (32007 '<|end|>'). */
static void detect(weft_vocab *v, int32_t *id, const char *const *names, int32_t avoid)
{
	if (*id >= 0)
		return;
	for (int32_t i = 0; i < v->n; i++) {
		size_t n;
		const char *t = tok_text(v, i, &n);
		if (in_list(t, n, names) && (*id < 0 || *id == avoid))
			*id = i;
	}
	if (*id >= 0)
		v->attr[*id] |= TA_CONTROL;
}

static int eog_add(weft_vocab *v, int32_t id)
{
	if (id < 0 || id >= v->n)
		return 0;
	for (size_t i = 0; i < v->n_eog; i++)
		if (v->eog[i] == id)
			return 0;
	int32_t *p = weft_realloc(v->eog, (v->n_eog + 1) * sizeof *p);
	if (!p)
		return -1;
	v->eog = p;
	v->eog[v->n_eog++] = id;
	return 0;
}

static void eog_remove(weft_vocab *v, int32_t id)
{
	for (size_t i = 0; i < v->n_eog; i++)
		if (v->eog[i] == id) {
			v->eog[i] = v->eog[--v->n_eog];
			return;
		}
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Read an optional special-token id key (llama.cpp: ignored when out of range). */
/* A special id from the header; one outside the vocabulary keeps the
 * default, as llama.cpp does ("bad special token"), and is reported through
 * weft_vocab_warning(). */
static void get_id(weft_vocab *v, const weft_gguf *g, const char *key, int32_t *id, int32_t n)
{
	if (*id >= n)
		*id = -1;
	uint32_t u;
	if (weft_gguf_get_u32(g, key, &u) != 0)
		return;
	if (u < (uint32_t)n)
		*id = (int32_t)u;
	else if (!v->warning[0])
		snprintf(v->warning, sizeof v->warning, "%s = %" PRIu32 " is outside the vocabulary (%" PRId32
			 " tokens); using %" PRId32 " instead", key, u, n, *id);
}

static void get_flag(const weft_gguf *g, const char *key, int *out)
{
	int b;
	if (weft_gguf_get_bool(g, key, &b) == 0)
		*out = b;
}

static int load_tokens(weft_vocab *v, const weft_gguf *g)
{
	const weft_gguf_value *toks, *sc = NULL, *tt = NULL;
	if (weft_gguf_get_arr(g, "tokenizer.ggml.tokens", WEFT_GGUF_STRING, &toks) != 0) {
		weft_error("tokenizer.ggml.tokens: missing or not an array of strings");
		return -1;
	}
	if (toks->v.arr.n == 0 || toks->v.arr.n > (1u << 30)) {
		weft_error("tokenizer.ggml.tokens: bad token count %llu", (unsigned long long)toks->v.arr.n);
		return -1;
	}
	int32_t n = v->n = (int32_t)toks->v.arr.n;
	int r = weft_gguf_get_arr(g, "tokenizer.ggml.scores", WEFT_GGUF_NTYPES, &sc);
	if (r == 0 && ((sc->v.arr.type != WEFT_GGUF_FLOAT32 && sc->v.arr.type != WEFT_GGUF_INT32) ||
		       sc->v.arr.n < (uint64_t)n)) {
		weft_error("tokenizer.ggml.scores: invalid type or count");
		return -1;
	}
	if (r != 0)
		sc = NULL;
	r = weft_gguf_get_arr(g, "tokenizer.ggml.token_type", WEFT_GGUF_NTYPES, &tt);
	if (r == 0 && (tt->v.arr.type != WEFT_GGUF_INT32 || tt->v.arr.n < (uint64_t)n)) {
		weft_error("tokenizer.ggml.token_type: invalid type or count");
		return -1;
	}
	if (r != 0)
		tt = NULL;

	size_t total = 0;
	for (int32_t i = 0; i < n; i++)
		total += toks->v.arr.strs[i].len ? toks->v.arr.strs[i].len + 1 : 32;
	if (total >= UINT32_MAX) {
		weft_error("tokenizer.ggml.tokens: texts too large");
		return -1;
	}
	v->arena = weft_malloc(total);
	v->off = weft_malloc((size_t)n * sizeof *v->off);
	v->len = weft_malloc((size_t)n * sizeof *v->len);
	v->score = weft_malloc((size_t)n * sizeof *v->score);
	v->attr = weft_malloc((size_t)n * sizeof *v->attr);
	v->ttype = weft_malloc((size_t)n);
	if (!v->arena || !v->off || !v->len || !v->score || !v->attr || !v->ttype ||
	    wt_strmap_init(&v->tok, (uint32_t)n) != 0)
		return -1;
	size_t pos = 0;
	for (int32_t i = 0; i < n; i++) {
		weft_gguf_str s = toks->v.arr.strs[i];
		v->off[i] = (uint32_t)pos;
		if (s.len) {
			memcpy(v->arena + pos, s.ptr, s.len);
			v->len[i] = (uint32_t)s.len;
		} else { /* llama.cpp renames empty tokens */
			v->len[i] = (uint32_t)snprintf(v->arena + pos, 32, "[EMPTY_%d]", (int)i);
		}
		v->arena[pos + v->len[i]] = 0;
		pos += v->len[i] + 1;
		v->score[i] = !sc ? 0.0f : (float)weft_gguf_arr_f64(sc, (uint64_t)i);
		int64_t ty = tt ? weft_gguf_arr_i64(tt, (uint64_t)i) : WEFT_TOKEN_NORMAL;
		v->ttype[i] = (uint8_t)(ty >= 0 && ty <= 6 ? ty : 0);
		static const uint16_t map[7] = { 0, TA_NORMAL, TA_UNKNOWN, TA_CONTROL,
						 TA_USER_DEFINED, TA_UNUSED, TA_BYTE };
		v->attr[i] = ty >= 0 && ty <= 6 ? map[ty] : 0;
		if (wt_strmap_put(&v->tok, v->arena + v->off[i], v->len[i], i, 1) != 0)
			return -1;
	}
	return 0;
}

static void set_model_attrs(weft_vocab *v, const weft_gguf *g)
{
	weft_gguf_str name = { "", 0 }, pre = { "", 0 }, arch = { "", 0 };
	weft_gguf_get_str(g, "general.name", &name);
	weft_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
	weft_gguf_get_str(g, "general.architecture", &arch);
	char lname[256];
	size_t nn = name.len < sizeof lname - 1 ? (size_t)name.len : sizeof lname - 1;
	for (size_t i = 0; i < nn; i++)
		lname[i] = (char)tolower((unsigned char)name.ptr[i]);
	lname[nn] = 0;
	char spre[128], sarch[128];
	snprintf(spre, sizeof spre, "%.*s", (int)(pre.len < 127 ? pre.len : 127), pre.ptr);
	snprintf(sarch, sizeof sarch, "%.*s", (int)(arch.len < 127 ? arch.len : 127), arch.ptr);
	if (strstr(spre, "jina-v2-de") || strstr(spre, "jina-v2-es") || strstr(spre, "jina-v2-code") ||
	    strstr(sarch, "nomic-bert-moe") || strstr(sarch, "jina-bert-v3")) {
		int32_t id = weft_vocab_find(v, "<mask>", 6);
		if (id >= 0)
			v->attr[id] |= TA_LSTRIP;
	} else if (strstr(lname, "phi-3") || strstr(lname, "phi3")) {
		for (size_t i = 0; i < v->n_special; i++)
			v->attr[v->special[i]] |= TA_RSTRIP;
		int32_t id = weft_vocab_find(v, "</s>", 4);
		if (id >= 0)
			v->attr[id] |= TA_RSTRIP;
		static const char *const off[] = { "<unk>", "<s>", "<|endoftext|>" };
		for (int k = 0; k < 3; k++) {
			id = weft_vocab_find(v, off[k], strlen(off[k]));
			if (id >= 0)
				v->attr[id] &= (uint16_t)~TA_RSTRIP;
		}
	} else if (strstr(lname, "modern-bert")) {
		int32_t id = weft_vocab_find(v, "[MASK]", 6);
		if (id >= 0)
			v->attr[id] |= TA_LSTRIP;
	}
}

static int finish_special(weft_vocab *v, const weft_gguf *g)
{
	int32_t n = v->n, fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1,
		fim_sep = -1, mask = -1;
	get_id(v, g, "tokenizer.ggml.bos_token_id", &v->bos, n);
	get_id(v, g, "tokenizer.ggml.eos_token_id", &v->eos, n);
	get_id(v, g, "tokenizer.ggml.eot_token_id", &v->eot, n);
	get_id(v, g, "tokenizer.ggml.eom_token_id", &v->eom, n);
	get_id(v, g, "tokenizer.ggml.unknown_token_id", &v->unk, n);
	get_id(v, g, "tokenizer.ggml.seperator_token_id", &v->sep, n);
	get_id(v, g, "tokenizer.ggml.padding_token_id", &v->pad, n);
	get_id(v, g, "tokenizer.ggml.mask_token_id", &mask, n);
	get_id(v, g, "tokenizer.ggml.fim_pre_token_id", &fim_pre, n);
	get_id(v, g, "tokenizer.ggml.fim_suf_token_id", &fim_suf, n);
	get_id(v, g, "tokenizer.ggml.fim_mid_token_id", &fim_mid, n);
	get_id(v, g, "tokenizer.ggml.fim_pad_token_id", &fim_pad, n);
	get_id(v, g, "tokenizer.ggml.fim_rep_token_id", &fim_rep, n);
	get_id(v, g, "tokenizer.ggml.fim_sep_token_id", &fim_sep, n);
	get_id(v, g, "tokenizer.ggml.prefix_token_id", &fim_pre, n);
	get_id(v, g, "tokenizer.ggml.suffix_token_id", &fim_suf, n);
	get_id(v, g, "tokenizer.ggml.middle_token_id", &fim_mid, n);
	get_flag(g, "tokenizer.ggml.add_bos_token", &v->add_bos);
	get_flag(g, "tokenizer.ggml.add_eos_token", &v->add_eos);
	get_flag(g, "tokenizer.ggml.add_sep_token", &v->add_sep);
	if (v->pre_flags & WT_PRE_FORCE_BOS) /* llama.cpp's override for Gemma 4 */
		v->add_bos = 1;

	detect(v, &v->eot, eot_names, v->eos);
	detect(v, &v->eom, eom_names, -1);
	detect(v, &fim_pre, fim_pre_names, -1);
	detect(v, &fim_suf, fim_suf_names, -1);
	detect(v, &fim_mid, fim_mid_names, -1);
	detect(v, &fim_pad, fim_pad_names, -1);
	detect(v, &fim_rep, fim_rep_names, -1);
	detect(v, &fim_sep, fim_sep_names, -1);

	for (int32_t i = 0; i < n; i++) {
		size_t tn;
		const char *t = tok_text(v, i, &tn);
		if ((v->attr[i] & TA_CONTROL) && memmem(t, tn, "unused", 6))
			v->attr[i] |= TA_UNUSED;
	}
	if (eog_add(v, fim_pad) || eog_add(v, fim_rep) || eog_add(v, fim_sep))
		return -1;
	for (int32_t i = 0; i < n; i++) {
		size_t tn;
		const char *t = tok_text(v, i, &tn);
		if (in_list(t, tn, eog_names)) {
			if (eog_add(v, i))
				return -1;
			v->attr[i] |= TA_CONTROL;
		}
		if (tok_is(v, i, "<|channel|>") || tok_is(v, i, "<|message|>") ||
		    tok_is(v, i, "<|start|>") || tok_is(v, i, "<|constrain|>"))
			v->attr[i] = TA_USER_DEFINED;
	}
	if (eog_add(v, v->eos) || eog_add(v, v->eot) || eog_add(v, v->eom))
		return -1;
	/* o200k_harmony / solar-open: "<|end|>" is not end-of-generation there */
	int has_return = 0, has_call = 0, has_end = 0, has_flush = 0, has_marker = 0;
	int32_t end_id = -1, s_id = -1;
	for (size_t k = 0; k < v->n_eog; k++) {
		int32_t id = v->eog[k];
		if (tok_is(v, id, "<|return|>"))
			has_return = 1;
		else if (tok_is(v, id, "<|call|>") || tok_is(v, id, "<|calls|>"))
			has_call = 1;
		else if (tok_is(v, id, "<|flush|>"))
			has_flush = 1;
		else if (tok_is(v, id, "<|end|>"))
			has_end = 1, end_id = id;
		if (tok_is(v, id, "<|tool_response>") || tok_is(v, id, "<|plamo:eos|>"))
			has_marker = 1;
		else if (tok_is(v, id, "</s>"))
			s_id = id;
	}
	if ((has_return && has_call && has_end) || (has_call && has_flush && has_end)) {
		eog_remove(v, end_id);
		v->attr[end_id] = TA_USER_DEFINED;
	}
	if (has_marker && s_id >= 0) {
		eog_remove(v, s_id);
		v->attr[s_id] = TA_NORMAL;
	}
	if (v->n_eog) /* qsort and bsearch want a real array, even for no element */
		qsort(v->eog, v->n_eog, sizeof *v->eog, cmp_i32);

	/* special tokens: control, user-defined and unknown, longest first */
	size_t ns = 0;
	for (int32_t i = 0; i < n; i++)
		if (v->attr[i] & (TA_CONTROL | TA_USER_DEFINED | TA_UNKNOWN))
			ns++;
	v->special = weft_malloc((ns ? ns : 1) * sizeof *v->special);
	if (!v->special)
		return -1;
	for (int32_t i = 0; i < n; i++)
		if (v->attr[i] & (TA_CONTROL | TA_USER_DEFINED | TA_UNKNOWN))
			v->special[v->n_special++] = i;
	/* sort by length, longest first, then by id (llama.cpp's sort is not stable) */
	uint64_t *key = weft_malloc((ns ? ns : 1) * sizeof *key);
	if (!key)
		return -1;
	for (size_t k = 0; k < ns; k++)
		key[k] = (uint64_t)(UINT32_MAX - v->len[v->special[k]]) << 32 | (uint32_t)v->special[k];
	qsort(key, ns, sizeof *key, cmp_u64);
	for (size_t k = 0; k < ns; k++)
		v->special[k] = (int32_t)(uint32_t)key[k];
	free(key);

	if (wt_build_pieces(v) != 0)
		return -1;
	set_model_attrs(v, g);
	return 0;
}

static void fingerprint(weft_vocab *v, const weft_gguf *g)
{
	uint64_t h = WEFT_FNV_INIT;
	weft_gguf_str s = { "", 0 };
	weft_gguf_get_str(g, "tokenizer.ggml.model", &s);
	h = weft_fnv1a(h, s.ptr, s.len);
	h = weft_fnv1a(h, "\n", 1);
	h = weft_fnv1a(h, v->pre, strlen(v->pre));
	h = weft_fnv1a(h, "\n", 1);
	for (int32_t i = 0; i < v->n; i++)
		h = weft_fnv1a(h, v->arena + v->off[i], v->len[i] + 1); /* with the NUL */
	const weft_gguf_value *m;
	if (weft_gguf_get_arr(g, "tokenizer.ggml.merges", WEFT_GGUF_STRING, &m) == 0) {
		h = weft_fnv1a(h, "\n", 1);
		for (uint64_t i = 0; i < m->v.arr.n; i++) {
			h = weft_fnv1a(h, m->v.arr.strs[i].ptr, m->v.arr.strs[i].len);
			h = weft_fnv1a(h, "", 1);
		}
	}
	v->fingerprint = h;
}

weft_vocab *weft_vocab_load(const weft_gguf *g)
{
	weft_gguf_str model;
	if (weft_gguf_get_str(g, "tokenizer.ggml.model", &model) != 0) {
		weft_error("tokenizer.ggml.model: missing or not a string");
		return NULL;
	}
	weft_vocab *v = weft_calloc(1, sizeof *v);
	if (!v)
		return NULL;
	if (str_is(model, "llama")) {
		v->kind = WEFT_VOCAB_SPM;
		v->bos = 1, v->eos = 2, v->unk = 0;
		v->add_space_prefix = 1, v->add_bos = 1;
		snprintf(v->pre, sizeof v->pre, "default");
	} else if (str_is(model, "gpt2")) {
		v->kind = WEFT_VOCAB_BPE;
		v->bos = 11, v->eos = 11, v->unk = -1; /* llama.cpp's BPE defaults */
		v->clean_spaces = 1;
	} else if (str_is(model, "gemma4")) { /* SPM-style BPE, ids from the metadata */
		v->kind = WEFT_VOCAB_BPE;
		v->bos = v->eos = v->unk = -1;
		v->clean_spaces = 1;
	} else if (str_is(model, "bert")) {
		v->kind = WEFT_VOCAB_WPM;
		v->bos = 101, v->eos = -1, v->unk = 100, v->sep = 102; /* llama.cpp's WPM defaults */
		v->clean_spaces = 1, v->add_bos = 1, v->add_sep = 1;
		snprintf(v->pre, sizeof v->pre, "default");
	} else {
		weft_error("unsupported tokenizer model '%.*s' (weft reads 'llama', 'gpt2', 'gemma4' and 'bert')",
			   (int)(model.len > 64 ? 64 : model.len), model.ptr);
		free(v);
		return NULL;
	}
	if (v->kind != WEFT_VOCAB_WPM)
		v->sep = -1;
	v->eot = v->eom = -1;
	v->pad = v->kind == WEFT_VOCAB_WPM ? 0 : -1;
	if (load_tokens(v, g) != 0)
		goto fail;
	if (v->kind == WEFT_VOCAB_BPE) {
		weft_gguf_str pre = { "", 0 };
		const weft_gguf_value *merges;
		if (weft_gguf_get_str(g, "tokenizer.ggml.pre", &pre) < 0)
			goto fail;
		if (str_is(model, "gemma4")) /* llama.cpp ignores the key there */
			pre = (weft_gguf_str){ "gemma4", 6 };
		if (weft_gguf_get_arr(g, "tokenizer.ggml.merges", WEFT_GGUF_STRING, &merges) != 0) {
			weft_error("tokenizer.ggml.merges: missing or not an array of strings");
			goto fail;
		}
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)(pre.len < 63 ? pre.len : 63), pre.ptr);
		if (wt_bpe_setup(v, name, merges) != 0)
			goto fail;
	} else if (v->kind == WEFT_VOCAB_WPM) {
		if (wt_wpm_setup(v, g) != 0)
			goto fail;
	} else {
		for (int b = 0; b < 256; b++) {
			char hex[8];
			snprintf(hex, sizeof hex, "<0x%02X>", b);
			int32_t id = wt_strmap_get(&v->tok, hex, 6);
			if (id < 0) {
				char c = (char)b;
				id = wt_strmap_get(&v->tok, &c, 1);
			}
			v->spm_byte[b] = id;
		}
	}
	get_flag(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);
	if (finish_special(v, g) != 0)
		goto fail;
	fingerprint(v, g);
	return v;
fail:
	weft_error_prefix("tokenizer");
	weft_vocab_free(v);
	return NULL;
}

void weft_vocab_free(weft_vocab *v)
{
	if (!v)
		return;
	wt_bpe_free(v);
	wt_strmap_free(&v->tok);
	free(v->arena);
	free(v->off);
	free(v->len);
	free(v->score);
	free(v->attr);
	free(v->ttype);
	free(v->eog);
	free(v->special);
	free(v->pieces);
	free(v->poff);
	free(v);
}

/* -------------------------------------------------------------- accessors */

int weft_vocab_kind(const weft_vocab *v) { return v->kind; }
int32_t weft_vocab_size(const weft_vocab *v) { return v->n; }
int32_t weft_vocab_bos(const weft_vocab *v) { return v->bos; }
const char *weft_vocab_warning(const weft_vocab *v) { return v->warning[0] ? v->warning : NULL; }
int32_t weft_vocab_eos(const weft_vocab *v) { return v->eos; }
int32_t weft_vocab_eot(const weft_vocab *v) { return v->eot; }
int32_t weft_vocab_unk(const weft_vocab *v) { return v->unk; }
int32_t weft_vocab_pad(const weft_vocab *v) { return v->pad; }
int weft_vocab_add_bos(const weft_vocab *v) { return v->add_bos; }
int weft_vocab_add_eos(const weft_vocab *v) { return v->add_eos; }
int32_t weft_vocab_sep(const weft_vocab *v) { return v->sep; }
int weft_vocab_add_sep(const weft_vocab *v) { return v->add_sep; }
const char *weft_vocab_pre(const weft_vocab *v) { return v->pre; }
uint64_t weft_vocab_fingerprint(const weft_vocab *v) { return v->fingerprint; }

const char *weft_vocab_text(const weft_vocab *v, int32_t id, size_t *len)
{
	if (id < 0 || id >= v->n) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = v->len[id];
	return v->arena + v->off[id];
}

int weft_vocab_type(const weft_vocab *v, int32_t id)
{
	return id >= 0 && id < v->n ? v->ttype[id] : -1;
}

int32_t weft_vocab_find(const weft_vocab *v, const char *text, size_t len)
{
	return wt_strmap_get(&v->tok, text, len);
}

int weft_vocab_is_eog(const weft_vocab *v, int32_t id)
{
	return id >= 0 && v->n_eog && bsearch(&id, v->eog, v->n_eog, sizeof *v->eog, cmp_i32) != NULL;
}

/* ------------------------------------------------------------- tokenizing */

/* Offset of the first invalid UTF-8 sequence (RFC 3629: no overlongs,
 * surrogates or code points above U+10FFFF), or len when valid. */
static size_t utf8_check(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		unsigned lo = 0x80, hi = 0xBF;
		if (c >= 0xC2 && c <= 0xDF)
			n = 1;
		else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else
			return i;
		if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= n; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
		i += n + 1;
	}
	return len;
}

/* A piece of the input: raw text [off, off+len) or a special token. */
typedef struct frag {
	size_t off, len;
	int32_t tok; /* -1 for text */
} frag;

static int ascii_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* llama.cpp's tokenizer_st_partition: for each special token in turn (longest
 * first), split every text fragment at its occurrences, left to right. */
static int partition(const weft_vocab *v, const char *text, size_t len, int parse_special,
		     frag **out, size_t *nout)
{
	size_t cap = 16, n = 1;
	frag *f = weft_malloc(cap * sizeof *f), *g = NULL;
	if (!f)
		return -1;
	f[0] = (frag){ 0, len, -1 };
	for (size_t si = 0; si < v->n_special; si++) {
		int32_t id = v->special[si];
		uint16_t a = v->attr[id];
		if (!parse_special && (a & (TA_CONTROL | TA_UNKNOWN)))
			continue;
		size_t tn;
		const char *t = tok_text(v, id, &tn);
		if (!memmem(text, len, t, tn))
			continue;
		size_t gcap = n * 2 + 8, gn = 0;
		g = weft_malloc(gcap * sizeof *g);
		if (!g)
			goto oom;
		for (size_t k = 0; k < n; k++) {
			if (gn + 3 > gcap) {
				gcap *= 2;
				frag *ng = weft_realloc(g, gcap * sizeof *g);
				if (!ng)
					goto oom;
				g = ng;
			}
			if (f[k].tok >= 0) {
				g[gn++] = f[k];
				continue;
			}
			size_t off = f[k].off, rem = f[k].len;
			for (;;) {
				const char *m = memmem(text + off, rem, t, tn);
				if (!m) {
					if (rem)
						g[gn++] = (frag){ off, rem, -1 };
					break;
				}
				size_t mo = (size_t)(m - text), left = mo - off;
				if (a & TA_LSTRIP)
					while (left && ascii_space((unsigned char)text[off + left - 1]))
						left--;
				if (left)
					g[gn++] = (frag){ off, left, -1 };
				g[gn++] = (frag){ mo, tn, id };
				rem -= (mo - off) + tn;
				off = mo + tn;
				if (a & TA_RSTRIP)
					while (rem && ascii_space((unsigned char)text[off]))
						off++, rem--;
				if (!rem)
					break;
				if (gn + 3 > gcap) {
					gcap *= 2;
					frag *ng = weft_realloc(g, gcap * sizeof *g);
					if (!ng)
						goto oom;
					g = ng;
				}
			}
		}
		free(f);
		f = g;
		n = gn;
		g = NULL;
	}
	*out = f;
	*nout = n;
	return 0;
oom:
	free(f);
	free(g);
	return -1;
}

int weft_tokenize(const weft_vocab *v, const char *text, size_t len, int parse_special,
		  int32_t **ids, size_t *n, size_t *cap)
{
	if (!len)
		return 0;
	size_t bad = utf8_check((const unsigned char *)text, len);
	if (bad != len) {
		weft_error("invalid UTF-8 at byte %zu", bad);
		return -1;
	}
	frag *f;
	size_t nf;
	if (partition(v, text, len, parse_special, &f, &nf) != 0)
		return -1;
	wt_out o = { ids, n, cap };
	int rc = 0, prev_special = 1;
	for (size_t k = 0; k < nf && rc == 0; k++) {
		if (f[k].tok >= 0) {
			rc = wt_push(&o, f[k].tok);
			prev_special = 1;
		} else if (v->kind == WEFT_VOCAB_BPE) {
			rc = wt_bpe_tokenize(v, text + f[k].off, f[k].len, &o);
		} else if (v->kind == WEFT_VOCAB_WPM) {
			rc = wt_wpm_tokenize(v, text + f[k].off, f[k].len, &o);
		} else {
			rc = wt_spm_tokenize(v, text + f[k].off, f[k].len,
					     v->add_space_prefix && prev_special, &o);
			prev_special = 0;
		}
	}
	free(f);
	return rc;
}

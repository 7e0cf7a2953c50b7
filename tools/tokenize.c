/* tokenize - text to a weft tokens stream (or ids), and back with -d.
 *
 * Image placeholders "<image>" and "<image N>" in the text become image
 * frames between token frames, for encode-image to fill later. */
#include <getopt.h>
#include <inttypes.h>

#include "keys.h"
#include "chat.h"
#include "common.h"
#include "gguf.h"
#include "tokenizer.h"

enum { OUT_STREAM, OUT_IDS, OUT_PIECES };

static struct {
	const char *model, *file, *output, *system, *tmpl, *inname;
	int chat, bos, parse_special, images, out, detok, force, special_out;
} o = {.bos = -1, .parse_special = 1, .images = 1};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s -m MODEL.gguf [OPTIONS] [TEXT...]\n"
		"       %s -m MODEL.gguf -d [FILE]\n"
		"Tokenize TEXT (the arguments joined by spaces; stdin when none) with the\n"
		"tokenizer of MODEL (a vocab-only GGUF works) and write a weft tokens stream.\n"
		"\"<image>\" and \"<image N>\" become image placeholder frames.\n"
		"\n"
		"  -m, --model FILE        GGUF file holding the tokenizer (required)\n"
		"  -f, --file FILE         read the text from FILE ('-' = stdin)\n"
		"  -c, --chat              render the text as a user turn in the chat template,\n"
		"                          ending with the assistant's opening\n"
		"      --system TEXT       system message (with --chat)\n"
		"      --template NAME     chat template: %s\n"
		"                          (default: detected from tokenizer.chat_template)\n"
		"      --list-templates    list the chat templates and exit\n"
		"      --bos, --no-bos     add / do not add BOS (default: model metadata)\n"
		"      --no-parse-special  treat special-token texts (\"<|im_start|>\") as plain text\n"
		"      --no-images         treat \"<image>\" as plain text\n"
		"      --ids               print ids as text, space-separated, one line\n"
		"      --pieces            print \"id<TAB>piece\" lines\n"
		"  -d, --detokenize        read ids (text) or a tokens stream from FILE or stdin\n"
		"                          and print the text\n"
		"      --special           with -d: render control tokens as their text\n"
		"  -o, --output FILE       write to FILE (created atomically) instead of stdout\n"
		"      --force             write a binary stream even to a terminal\n"
		"  -h, --help              this help\n"
		"  -V, --version           version\n",
		prog, prog, weft_chat_names());
}

/* ---- input text ---- */

static char *join_args(int argc, char **argv, size_t *len)
{
	size_t n = 0;
	for (int i = 0; i < argc; i++)
		n += strlen(argv[i]) + 1;
	char *s = malloc(n + 1), *p = s;
	if (!s)
		die("out of memory");
	for (int i = 0; i < argc; i++) {
		size_t k = strlen(argv[i]);
		memcpy(p, argv[i], k);
		p += k;
		if (i + 1 < argc)
			*p++ = ' ';
	}
	*p = 0;
	*len = (size_t)(p - s);
	return s;
}

/* ---- output ---- */

typedef struct {
	FILE *out;
	const weft_vocab *v;
	char fp[17];
	int32_t *ids;
	size_t n, cap;
	int next_image; /* number for the next bare <image> */
	int printed;    /* --ids: items already on the line */
} emitter;

static void flush_tokens(emitter *e)
{
	if (o.out == OUT_STREAM) {
		if (e->n == 0)
			return;
		weft_frame *f = weft_frame_new(WEFT_KIND_TOKENS);
		int64_t shape[1] = {(int64_t)e->n};
		if (!f || weft_frame_set(f, WEFT_KEY_VOCAB, e->fp) || !weft_frame_add(f, "ids", WEFT_DT_I32, 1, shape, e->ids) ||
		    weft_frame_write(e->out, f))
			die_lib(out_name);
		weft_frame_free(f);
	} else {
		char piece[256];
		for (size_t i = 0; i < e->n; i++) {
			if (o.out == OUT_IDS) {
				fprintf(e->out, e->printed++ ? " %" PRId32 : "%" PRId32, e->ids[i]);
				continue;
			}
			int k = weft_token_to_piece(e->v, e->ids[i], 1, piece, sizeof piece);
			char esc[1100];
			weft_escape(piece, k < 0 ? 0 : (size_t)(k < (int)sizeof piece ? k : (int)sizeof piece), esc,
				    sizeof esc);
			fprintf(e->out, "%" PRId32 "\t%s\n", e->ids[i], esc);
		}
	}
	e->n = 0;
}

static void emit_image(emitter *e, int number, const char *text, size_t len)
{
	flush_tokens(e);
	if (o.out == OUT_STREAM) {
		weft_frame *f = weft_frame_new(WEFT_KIND_IMAGE);
		char *t = weft_strndup(text, len);
		if (!f || !t || weft_frame_setf(f, WEFT_KEY_IMAGE, "%d", number) || weft_frame_set(f, WEFT_KEY_PLACEHOLDER, t) ||
		    weft_frame_set(f, WEFT_KEY_VOCAB, e->fp) || weft_frame_write(e->out, f))
			die_lib(out_name);
		free(t);
		weft_frame_free(f);
	} else if (o.out == OUT_IDS) {
		fprintf(e->out, e->printed++ ? " <image %d>" : "<image %d>", number);
	} else {
		fprintf(e->out, "-\t<image %d>\n", number);
	}
}

static void tokenize_text(emitter *e, const char *text, size_t len)
{
	if (weft_tokenize(e->v, text, len, o.parse_special, &e->ids, &e->n, &e->cap) != 0)
		die_lib(o.inname);
}

/* Parse "<image>" or "<image N>" at p; returns its length or 0. */
static size_t image_marker(const char *p, const char *end, int *number)
{
	static const char tag[] = "<image";
	size_t tl = sizeof tag - 1;
	if ((size_t)(end - p) < tl + 1 || memcmp(p, tag, tl) != 0)
		return 0;
	const char *q = p + tl;
	if (*q == '>') {
		*number = 0;
		return tl + 1;
	}
	if (*q != ' ')
		return 0;
	q++;
	long n = 0;
	const char *digits = q;
	while (q < end && *q >= '0' && *q <= '9' && n < 1000000)
		n = n * 10 + (*q++ - '0');
	if (q == digits || q >= end || *q != '>' || n < 1)
		return 0;
	*number = (int)n;
	return (size_t)(q + 1 - p);
}

static void emit_prompt(emitter *e, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *seg = text;
	while (o.images && p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (!lt)
			break;
		int number;
		size_t k = image_marker(lt, end, &number);
		if (!k) {
			p = lt + 1;
			continue;
		}
		tokenize_text(e, seg, (size_t)(lt - seg));
		emit_image(e, number ? number : e->next_image, lt, k);
		e->next_image = (number ? number : e->next_image) + 1;
		p = seg = lt + k;
	}
	tokenize_text(e, seg, (size_t)(end - seg));
	flush_tokens(e);
	if (o.out == OUT_IDS)
		fputc('\n', e->out);
}

/* ---- detokenize ---- */

/* Without --special, drop the BOS the model adds and the EOS it appends, as
 * llama_detokenize(remove_special=true) does, so text round-trips. */
static void detok_ids(const weft_vocab *v, const int32_t *ids, size_t n, FILE *out)
{
	size_t len;
	if (!o.special_out) {
		if (n && weft_vocab_add_bos(v) && ids[0] == weft_vocab_bos(v))
			ids++, n--;
		if (n && weft_vocab_add_eos(v) && ids[n - 1] == weft_vocab_eos(v))
			n--;
	}
	char *s = weft_detokenize(v, ids, n, o.special_out, &len);
	if (!s)
		die_lib("detokenize");
	fwrite(s, 1, len, out);
	free(s);
}

static void detokenize(const weft_vocab *v, const char *path, FILE *out)
{
	const char *name;
	FILE *in = in_open(path, &name);
	int c = getc(in);
	if (c != EOF)
		ungetc(c, in);
	if (c == EOF || (c >= '0' && c <= '9') || c == ' ' || c == '\n' || c == '\t' || c == '[' || c == '-') {
		/* ids as text: integers separated by spaces, commas or brackets */
		size_t len, n = 0, cap = 0;
		char *text = read_all(in, name, &len), *p = text;
		int32_t *ids = NULL;
		while (*p) {
			if (strchr(" \t\r\n,[]", *p)) {
				p++;
				continue;
			}
			char *end;
			errno = 0;
			long id = strtol(p, &end, 10);
			if (end == p || errno || id < 0 || id >= weft_vocab_size(v))
				die("%s: not a token id for this vocabulary (%d tokens) at byte %zu", name,
				    (int)weft_vocab_size(v), (size_t)(p - text));
			if (n == cap && !(ids = realloc(ids, (cap = cap ? 2 * cap : 256) * sizeof *ids)))
				die("out of memory");
			ids[n++] = (int32_t)id;
			p = end;
		}
		detok_ids(v, ids, n, out);
		free(ids);
		free(text);
	} else {
		weft_reader *r = stream_open(in);
		weft_frame *f;
		int rc;
		while ((rc = weft_reader_next(r, &f)) == 1) {
			const char *kind = weft_frame_kind(f);
			if (strcmp(kind, WEFT_KIND_TOKENS) == 0) {
				const weft_tensor *t = weft_frame_tensor(f, "ids");
				if (weft_frame_check_fp(f, WEFT_KEY_VOCAB, weft_vocab_fingerprint(v)) != 0)
					die("%s: %s", name, weft_errmsg());
				if (!t || t->dtype != WEFT_DT_I32 || t->ndim != 1)
					die("%s: frame %" PRIu64 ": tokens frame without an I32 'ids' vector", name, f->index);
				const int32_t *ids = t->data;
				for (uint64_t i = 0; i < t->nelem; i++)
					if (ids[i] < 0 || ids[i] >= weft_vocab_size(v))
						die("%s: frame %" PRIu64 ": token id %" PRId32 " out of range", name, f->index,
						    ids[i]);
				detok_ids(v, ids, t->nelem, out);
			} else if (strcmp(kind, WEFT_KIND_IMAGE) == 0) {
				const char *num = weft_frame_get(f, WEFT_KEY_IMAGE);
				fprintf(out, "<image %s>", num ? num : "?");
			}
			weft_frame_free(f);
		}
		stream_done(r, rc, name);
		weft_reader_free(r);
	}
	if (in != stdin)
		fclose(in);
}

/* ---- main ---- */

static int chat_template(const weft_gguf *g)
{
	if (o.tmpl) {
		int t = weft_chat_from_name(o.tmpl);
		if (t == WEFT_CHAT_NONE)
			die("--template: unknown template '%s' (known: %s)", o.tmpl, weft_chat_names());
		return t;
	}
	weft_gguf_str s;
	if (weft_gguf_get_str(g, "tokenizer.chat_template", &s) == 0) {
		int t = weft_chat_detect(s.ptr, (size_t)s.len);
		if (t != WEFT_CHAT_NONE)
			return t;
		die("%s: chat template in tokenizer.chat_template not recognised; choose one with --template (%s)",
		    o.model, weft_chat_names());
	}
	die("%s: no tokenizer.chat_template; choose one with --template (%s)", o.model, weft_chat_names());
}

int main(int argc, char **argv)
{
	enum { O_SYSTEM = 256, O_TEMPLATE, O_LIST, O_BOS, O_NOBOS, O_NOPS, O_NOIMG, O_IDS, O_PIECES, O_FORCE, O_SPECIAL };
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},     {"file", required_argument, 0, 'f'},
		{"chat", no_argument, 0, 'c'},            {"system", required_argument, 0, O_SYSTEM},
		{"template", required_argument, 0, O_TEMPLATE}, {"list-templates", no_argument, 0, O_LIST},
		{"bos", no_argument, 0, O_BOS},
		{"no-bos", no_argument, 0, O_NOBOS},      {"no-parse-special", no_argument, 0, O_NOPS},
		{"no-images", no_argument, 0, O_NOIMG},   {"ids", no_argument, 0, O_IDS},
		{"pieces", no_argument, 0, O_PIECES},     {"detokenize", no_argument, 0, 'd'},
		{"special", no_argument, 0, O_SPECIAL},   {"output", required_argument, 0, 'o'},
		{"force", no_argument, 0, O_FORCE},       {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},         {0, 0, 0, 0}};
	tool_init("tokenize");
	int c;
	while ((c = getopt_long(argc, argv, "m:f:cdo:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'm': o.model = optarg; break;
		case 'f': o.file = optarg; break;
		case 'c': o.chat = 1; break;
		case 'd': o.detok = 1; break;
		case 'o': o.output = optarg; break;
		case O_SYSTEM: o.system = optarg; break;
		case O_TEMPLATE: o.tmpl = optarg; break;
		case O_LIST: weft_family_list(weft_chat_family(), stdout); return 0;
		case O_BOS: o.bos = 1; break;
		case O_NOBOS: o.bos = 0; break;
		case O_NOPS: o.parse_special = 0; break;
		case O_NOIMG: o.images = 0; break;
		case O_IDS: o.out = OUT_IDS; break;
		case O_PIECES: o.out = OUT_PIECES; break;
		case O_FORCE: o.force = 1; break;
		case O_SPECIAL: o.special_out = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': print_version(); break;
		default: usage(stderr); return 2;
		}
	}
	if (!o.model)
		die("no model given (-m MODEL.gguf); see --help");
	if (o.file && optind < argc)
		die("give the text either as arguments or with --file, not both");
	if (o.system && !o.chat)
		die("--system needs --chat");

	weft_gguf *g = weft_gguf_open(o.model);
	if (!g)
		die("%s: %s", o.model, weft_errmsg());
	weft_vocab *v = weft_vocab_load(g);
	if (!v)
		die("%s: %s", o.model, weft_errmsg());

	if (o.detok) {
		if (optind + 1 < argc)
			die("-d takes at most one FILE");
		FILE *out = out_open(o.output, 0, 0);
		detokenize(v, optind < argc ? argv[optind] : "-", out);
		out_close(out);
		weft_vocab_free(v);
		weft_gguf_close(g);
		return 0;
	}

	size_t len;
	char *text;
	if (optind < argc) {
		text = join_args(argc - optind, argv + optind, &len);
		o.inname = "<arguments>";
	} else {
		FILE *in = in_open(o.file, &o.inname);
		text = read_all(in, o.inname, &len);
		if (in != stdin)
			fclose(in);
	}
	if (o.chat) {
		int tmpl = chat_template(g);
		weft_chat_msg msgs[2];
		size_t n = 0;
		if (o.system)
			msgs[n++] = (weft_chat_msg){"system", o.system};
		msgs[n++] = (weft_chat_msg){"user", text};
		char *prompt = weft_chat_render(tmpl, msgs, n, 1);
		if (!prompt)
			die_lib("--chat");
		free(text);
		text = prompt;
		len = strlen(prompt);
	}

	emitter e = {.v = v, .next_image = 1};
	weft_fingerprint_hex(weft_vocab_fingerprint(v), e.fp);
	e.out = out_open(o.output, o.out == OUT_STREAM, o.force);
	int bos = o.bos >= 0 ? o.bos : weft_vocab_add_bos(v);
	if (bos) {
		if (weft_vocab_bos(v) < 0)
			die("%s: --bos: the model has no BOS token", o.model);
		e.ids = malloc(16 * sizeof *e.ids);
		if (!e.ids)
			die("out of memory");
		e.cap = 16;
		e.ids[e.n++] = weft_vocab_bos(v);
	}
	emit_prompt(&e, text, len);
	out_close(e.out);
	free(e.ids);
	free(text);
	weft_vocab_free(v);
	weft_gguf_close(g);
	return 0;
}

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
#include "textprompt.h"
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

/* The prompt's parts: token runs as tokens frames (or ids / pieces as
 * text), placeholders as image frames. */
static void emit_prompt(FILE *out, const weft_vocab *v, const weft_text_prompt *tp, const char *text)
{
	char fp[17];
	weft_fingerprint_hex(weft_vocab_fingerprint(v), fp);
	int printed = 0; /* --ids: items already on the line */
	for (int k = 0; k < tp->n_parts; k++) {
		const weft_text_part *pt = &tp->parts[k];
		const int32_t *ids = tp->ids + pt->off;
		weft_frame *f = NULL;
		if (o.out == OUT_STREAM && !pt->image) {
			const int64_t shape[1] = {pt->n};
			if (!(f = weft_frame_new(WEFT_KIND_TOKENS)) || weft_frame_set(f, WEFT_KEY_VOCAB, fp) ||
			    !weft_frame_add(f, "ids", WEFT_DT_I32, 1, shape, ids))
				die_lib(NULL);
		} else if (o.out == OUT_STREAM) {
			char *t = weft_strndup(text + pt->text_off, pt->text_len);
			if (!t || !(f = weft_frame_new(WEFT_KIND_IMAGE)) || weft_frame_setf(f, WEFT_KEY_IMAGE, "%d", pt->image) ||
			    weft_frame_set(f, WEFT_KEY_PLACEHOLDER, t) || weft_frame_set(f, WEFT_KEY_VOCAB, fp))
				die_lib(NULL);
			free(t);
		} else if (pt->image) {
			if (o.out == OUT_IDS)
				fprintf(out, printed++ ? " <image %d>" : "<image %d>", pt->image);
			else
				fprintf(out, "-\t<image %d>\n", pt->image);
		} else {
			char piece[256], esc[1100];
			for (int64_t i = 0; i < pt->n; i++) {
				if (o.out == OUT_IDS) {
					fprintf(out, printed++ ? " %" PRId32 : "%" PRId32, ids[i]);
					continue;
				}
				int n = weft_token_to_piece(v, ids[i], 1, piece, sizeof piece);
				weft_escape(piece, n < 0 ? 0 : (size_t)(n < (int)sizeof piece ? n : (int)sizeof piece), esc,
					    sizeof esc);
				fprintf(out, "%" PRId32 "\t%s\n", ids[i], esc);
			}
		}
		if (f && weft_frame_write(out, f) != 0)
			die_lib(out_name);
		weft_frame_free(f);
	}
	if (o.out == OUT_IDS)
		fputc('\n', out);
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
		if (n && weft_vocab_add_sep(v) && ids[n - 1] == weft_vocab_sep(v))
			n--;
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
	if (weft_vocab_warning(v))
		fprintf(stderr, "%s: warning: %s: %s\n", prog, o.model, weft_vocab_warning(v));

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
		int tmpl = weft_chat_pick(g, o.tmpl);
		if (tmpl == WEFT_CHAT_NONE) {
			if (o.tmpl)
				die("--template: %s", weft_errmsg());
			die("%s: %s", o.model, weft_errmsg());
		}
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

	const int bos = o.bos >= 0 ? o.bos : weft_vocab_add_bos(v);
	weft_text_prompt tp;
	if (weft_text_prompt_build(&tp, v, text, len,
				   (bos ? WEFT_TEXT_BOS | WEFT_TEXT_ENDS : 0) | (o.parse_special ? WEFT_TEXT_SPECIAL : 0) |
					   (o.images ? WEFT_TEXT_IMAGES : 0)) != 0)
		die("%s: %s", bos && weft_vocab_bos(v) < 0 ? o.model : o.inname, weft_errmsg());
	FILE *out = out_open(o.output, o.out == OUT_STREAM, o.force);
	emit_prompt(out, v, &tp, text);
	out_close(out);
	weft_text_prompt_free(&tp);
	free(text);
	weft_vocab_free(v);
	weft_gguf_close(g);
	return 0;
}

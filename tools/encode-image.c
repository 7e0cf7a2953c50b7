/* encode-image - fill a tokens stream's image placeholders with vision-encoder
 * embeddings (man 1 encode-image).
 *
 * The input stream (from tokenize) is read whole: it holds token ids and
 * placeholders only, so it is small.  Image N is argument N.  Every image is
 * decoded, preprocessed as the mmproj's family expects and cut into tiles;
 * the tiles of all images are encoded in batches of --batch; then the stream
 * is written again with each placeholder replaced by one embd frame per tile
 * and every other frame passed on byte for byte. */
#include <getopt.h>
#include <inttypes.h>

#include "common.h"
#include "embd.h"
#include "gguf.h"
#include "keys.h"
#include "image.h"
#include "imgenc.h"
#include "prune.h"
#include "vision.h"

static struct {
	const char *mmproj, *input, *output;
	int threads, force, verbose;
	int64_t batch, max_pixels;
	unsigned img_flags;
	int alpha;          /* -1: by family (mlp drop, idefics3 white), 0 white, 1 drop */
	unsigned stats;     /* --stats: statistics for prune-tokens (imgenc.h) */
	const char *prune;  /* --prune: a pruning method acting inside the encoder */
	int64_t keep;       /* its budget: --keep N or --ratio R */
	double ratio;
} o = {.batch = 16, .alpha = -1};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s --mmproj MMPROJ.gguf [OPTIONS] [IMAGE...]\n"
		"Read a weft tokens stream (stdin, or -i FILE) holding <image N> placeholders,\n"
		"encode IMAGE N (PNG, JPEG or binary PNM) with the vision encoder and projector\n"
		"of MMPROJ, and write the stream with each placeholder replaced by embd frames\n"
		"(one per image tile).\n"
		"\n"
		"      --mmproj FILE     llama.cpp mmproj GGUF (projector mlp or idefics3; required)\n"
		"  -i, --input FILE      read the stream from FILE instead of stdin\n"
		"                        (then one IMAGE may be '-', read from stdin)\n"
		"  -t, --threads N       threads (default: all CPUs)\n"
		"      --batch N         tiles per encoder call (default 16)\n"
		"      --max-pixels N    refuse images larger than N pixels (default %llu)\n"
		"      --alpha-drop      discard alpha (default for mlp / LLaVA)\n"
		"      --alpha-white     composite alpha onto white (default for idefics3)\n"
		"      --no-exif         ignore JPEG EXIF orientation\n"
		"      --lenient         accept image damage that libjpeg/libpng only warn about,\n"
		"                        as PIL does (default: an error)\n"
		"      --stats LIST      also export, for prune-tokens: keys (the last block's\n"
		"                        keys), attn (attention received per layer); comma-separated\n"
		"      --prune METHOD    prune visual tokens inside the encoder (flowcut), keeping\n"
		"      --keep N          N tokens per tile, or\n"
		"      --ratio R         the fraction R of them (see prune-tokens(1))\n"
		"  -o, --output FILE     write to FILE (atomically) instead of stdout\n"
		"      --force           write binary output to a terminal\n"
		"  -v, --verbose         timing on stderr\n"
		"  -h, --help            this help\n"
		"  -V, --version         version\n",
		prog, (unsigned long long)WEFT_IMAGE_MAX_PIXELS_DEFAULT);
}

/* The image number of a placeholder frame, or die. */
static int placeholder_number(const weft_frame *f, const char *inname)
{
	const char *s = weft_frame_get(f, WEFT_KEY_IMAGE);
	char *end;
	long n = s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || n < 1 || n > 1000000)
		die("%s: frame %" PRIu64 ": image frame without a valid weft.image number", inname, f->index);
	return (int)n;
}

/* --stats keys,attn */
static unsigned parse_stats(const char *s)
{
	unsigned m = 0;
	while (*s) {
		const size_t k = strcspn(s, ",");
		if (k == 4 && strncmp(s, "keys", 4) == 0)
			m |= WEFT_IMGENC_KEYS;
		else if (k == 4 && strncmp(s, "attn", 4) == 0)
			m |= WEFT_IMGENC_ATTN;
		else
			die("--stats: '%.*s' is not keys or attn", (int)k, s);
		s += k + (s[k] == ',');
	}
	return m;
}

/* --prune METHOD with its budget: a method acting inside the encoder. */
static void check_prune(void)
{
	if (!o.prune) {
		if (o.keep || o.ratio > 0)
			die("--keep / --ratio without --prune METHOD");
		return;
	}
	const int st = weft_prune_stage_of(o.prune);
	if (st < 0)
		die("--prune: %s", weft_errmsg());
	if (st != WEFT_PRUNE_AT_ENCODER)
		die("--prune %s: that method acts %s: run prune-tokens --method %s", o.prune,
		    st == WEFT_PRUNE_AT_LLM ? "inside the LLM" : "on embd frames", o.prune);
	if (!o.keep && !(o.ratio > 0))
		die("--prune %s: no budget: give --keep N or --ratio R", o.prune);
}

static void parse_options(int argc, char **argv)
{
	enum { O_MMPROJ = 256, O_BATCH, O_MAXPIX, O_ALPHA, O_ALPHA_WHITE, O_NOEXIF, O_LENIENT, O_FORCE, O_STATS, O_PRUNE,
	       O_KEEP, O_RATIO };
	static const struct option opts[] = {
		{"mmproj", required_argument, 0, O_MMPROJ}, {"input", required_argument, 0, 'i'},
		{"threads", required_argument, 0, 't'},     {"batch", required_argument, 0, O_BATCH},
		{"max-pixels", required_argument, 0, O_MAXPIX}, {"alpha-drop", no_argument, 0, O_ALPHA},
		{"alpha-white", no_argument, 0, O_ALPHA_WHITE},
		{"no-exif", no_argument, 0, O_NOEXIF},      {"lenient", no_argument, 0, O_LENIENT},
		{"output", required_argument, 0, 'o'},      {"stats", required_argument, 0, O_STATS},
		{"prune", required_argument, 0, O_PRUNE},   {"keep", required_argument, 0, O_KEEP},
		{"ratio", required_argument, 0, O_RATIO},
		{"force", no_argument, 0, O_FORCE},         {"verbose", no_argument, 0, 'v'},
		{"help", no_argument, 0, 'h'},              {"version", no_argument, 0, 'V'},
		{0, 0, 0, 0}};
	tool_init("encode-image");
	int c;
	while ((c = getopt_long(argc, argv, "i:t:o:vhV", opts, NULL)) != -1) {
		switch (c) {
		case O_MMPROJ: o.mmproj = optarg; break;
		case 'i': o.input = optarg; break;
		case 't': o.threads = (int)opt_int("--threads", optarg, 1, 1024); break;
		case O_BATCH: o.batch = opt_int("--batch", optarg, 1, 4096); break;
		case O_MAXPIX: o.max_pixels = opt_int("--max-pixels", optarg, 1, (int64_t)1 << 40); break;
		case O_ALPHA: o.alpha = 1; break;
		case O_ALPHA_WHITE: o.alpha = 0; break;
		case O_NOEXIF: o.img_flags |= WEFT_IMAGE_NO_EXIF; break;
		case O_LENIENT: o.img_flags |= WEFT_IMAGE_LENIENT; break;
		case O_STATS: o.stats |= parse_stats(optarg); break;
		case O_PRUNE: o.prune = optarg; break;
		case O_KEEP:
			if ((o.keep = opt_int("--keep", optarg, 0, 1 << 20)) == 0)
				die("--keep 0: a budget of 0 tokens keeps nothing");
			o.ratio = 0;
			break;
		case O_RATIO:
			o.ratio = opt_real("--ratio", optarg, 0, 1);
			if (o.ratio == 0)
				die("--ratio 0: a budget of 0 tokens keeps nothing");
			o.keep = 0;
			break;
		case 'o': o.output = optarg; break;
		case O_FORCE: o.force = 1; break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': print_version(); break;
		default: usage(stderr); exit(2);
		}
	}
	if (!o.mmproj)
		die("no vision model given (--mmproj MMPROJ.gguf); see --help");
	check_prune();
}

/* The whole input stream (it holds token ids and placeholders only, so it
 * is small); marks the images its placeholders use. */
static weft_frame **read_stream(const char *inname, FILE *in, char **paths, int *used, int n_img, size_t *n_out,
				 int *n_ph)
{
	weft_reader *r = stream_open(in);
	weft_frame **frames = NULL, *f;
	size_t n_frames = 0, cap_frames = 0;
	int rc, n_placeholders = 0;
	while ((rc = weft_reader_next(r, &f)) == 1) {
		if (strcmp(weft_frame_kind(f), WEFT_KIND_IMAGE) == 0) {
			int n = placeholder_number(f, inname);
			if (n > n_img)
				die("%s: frame %" PRIu64 ": stream has <image %d> but only %d image%s given", inname, f->index,
				    n, n_img, n_img == 1 ? "" : "s");
			used[n - 1] = 1;
			n_placeholders++;
		}
		if (n_frames == cap_frames &&
		    !(frames = realloc(frames, (cap_frames = cap_frames ? 2 * cap_frames : 64) * sizeof *frames)))
			die("out of memory");
		frames[n_frames++] = f;
	}
	stream_done(r, rc, inname);
	weft_reader_free(r);
	for (int i = 0; i < n_img; i++)
		if (!used[i])
			die("%s: image '%s' (%d) has no <image> placeholder in the stream", inname, paths[i], i + 1);
	*n_out = n_frames;
	*n_ph = n_placeholders;
	return frames;
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	const int n_img = argc - optind;
	char **paths = argv + optind;
	int *used = calloc((size_t)n_img + 1, sizeof *used), stdin_image = 0;
	if (!used)
		die("out of memory");
	for (int i = 0; i < n_img; i++)
		if (strcmp(paths[i], "-") == 0) {
			if (!o.input || strcmp(o.input, "-") == 0)
				die("image %d is '-' but standard input carries the stream; give the stream with -i FILE", i + 1);
			if (stdin_image++)
				die("image %d: only one image can be read from standard input ('-')", i + 1);
		}

	/* The encoder. */
	double t0 = now_seconds();
	weft_gguf *g = weft_gguf_open(o.mmproj);
	if (!g)
		die("%s: %s", o.mmproj, weft_errmsg());
	weft_vision *v = weft_vision_load(g);
	if (!v)
		die("%s: %s", o.mmproj, weft_errmsg());

	/* The whole input stream. */
	const char *inname;
	FILE *in = in_open(o.input, &inname);
	size_t n_frames;
	int n_placeholders;
	weft_frame **frames = read_stream(inname, in, paths, used, n_img, &n_frames, &n_placeholders), *f;
	if (in != stdin)
		fclose(in);

	/* Decode, preprocess and encode every image once. */
	FILE *out = out_open(o.output, 1, o.force);
	weft_pool *pool = weft_pool_new(o.threads);
	const int n_patches = v->hp.n_patches;
	const int fc = !o.prune ? 0 : o.keep ? (int)o.keep : (int)(o.ratio * n_patches + 0.5) > 0 ? (int)(o.ratio * n_patches + 0.5) : 1;
	weft_imgenc_opts eo = {.batch = (int)o.batch, .alpha = o.alpha, .stats = o.stats, .flowcut = fc,
			       .image = {.max_pixels = (uint64_t)o.max_pixels, .flags = o.img_flags}};
	weft_imgenc *enc = pool ? weft_imgenc_new(v, pool, &eo) : NULL;
	if (!enc)
		die("%s: %s", o.mmproj, weft_errmsg());
	double t1 = now_seconds();
	int n_tiles = 0;
	for (int i = 0; i < n_img; i++) {
		if (weft_imgenc_add(enc, paths[i]) < 0)
			die("%s: %s", strcmp(paths[i], "-") == 0 ? "<stdin>" : paths[i], weft_errmsg());
		n_tiles += weft_imgenc_tiles(enc, i);
	}
	if (weft_imgenc_flush(enc) != 0)
		die("%s: %s", o.mmproj, weft_errmsg());
	double t2 = now_seconds();

	/* The stream again, placeholders filled. */
	for (size_t k = 0; k < n_frames; k++) {
		f = frames[k];
		if (strcmp(weft_frame_kind(f), WEFT_KIND_IMAGE) == 0) {
			const int n = placeholder_number(f, inname);
			for (int t = 0; t < weft_imgenc_tiles(enc, n - 1); t++) {
				weft_embd_tile tile;
				weft_imgenc_tile(enc, n - 1, t, n, &tile);
				tile.vocab = weft_frame_get(f, WEFT_KEY_VOCAB);
				tile.placeholder = weft_frame_get(f, WEFT_KEY_PLACEHOLDER);
				weft_frame *e = weft_embd_frame(&tile);
				if (!e || weft_frame_write(out, e) != 0)
					die_lib(out_name);
				weft_frame_free(e);
			}
		} else if (weft_frame_write_raw(out, f) != 0) {
			die_lib(out_name);
		}
		weft_frame_free(f);
	}
	out_close(out);
	if (o.verbose) {
		const double enc_s = weft_imgenc_seconds(enc);
		const int calls = weft_imgenc_calls(enc);
		fprintf(stderr,
			"%s: load %.3f s; %d image%s, %d placeholder%s, %d tiles: decode+preprocess %.3f s, "
			"encode %.3f s in %d call%s (%.2f tiles/s), %d threads, kernels %s\n",
			prog, t1 - t0, n_img, n_img == 1 ? "" : "s", n_placeholders, n_placeholders == 1 ? "" : "s",
			n_tiles, t2 - t1 - enc_s, enc_s, calls, calls == 1 ? "" : "s", enc_s > 0 ? n_tiles / enc_s : 0.0,
			weft_pool_size(pool), weft_kernels_level());
		if (weft_imgenc_warnings(enc))
			fprintf(stderr, "%s: --lenient: %u image decoder warning%s tolerated\n", prog,
				weft_imgenc_warnings(enc), weft_imgenc_warnings(enc) == 1 ? "" : "s");
	}
	free(used);
	free(frames);
	weft_imgenc_free(enc);
	weft_pool_free(pool);
	weft_vision_free(v);
	weft_gguf_close(g);
	return 0;
}

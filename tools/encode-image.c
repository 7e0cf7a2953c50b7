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
#include "preprocess.h"
#include "vision.h"

static struct {
	const char *mmproj, *input, *output;
	int threads, force, verbose;
	int64_t batch, max_pixels;
	unsigned img_flags;
	int alpha;          /* -1: by family (mlp drop, idefics3 white), 0 white, 1 drop */
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
		"  -o, --output FILE     write to FILE (atomically) instead of stdout\n"
		"      --force           write binary output to a terminal\n"
		"  -v, --verbose         timing on stderr\n"
		"  -h, --help            this help\n"
		"  -V, --version         version\n",
		prog, (unsigned long long)WEFT_IMAGE_MAX_PIXELS_DEFAULT);
}

/* One image argument and, once encoded, its tiles' outputs. */
typedef struct img {
	const char *path;
	int used;              /* referenced by a placeholder */
	int tiles, rows, cols; /* from preprocessing */
	float *embd;           /* [tiles][n_tokens][n_embd_out] */
	float *sal;            /* [tiles][n_layer_run][n_patches] */
} img;

/* Tiles waiting for the encoder. */
typedef struct batcher {
	const weft_vision *v;
	weft_pool *pool;
	int cap, n;
	size_t tile_floats, embd_floats, sal_floats;
	float *pixels, *embd, *sal; /* [cap][...] */
	img **owner;                /* per slot: image and tile index */
	int *tile;
	int calls;
	double seconds;
} batcher;

static void flush_batch(batcher *b)
{
	if (!b->n)
		return;
	weft_vision_out out = {.embd = b->embd, .saliency = b->sal};
	double t0 = now_seconds();
	if (weft_vision_encode(b->v, b->pool, b->pixels, b->n, &out) != 0)
		die("%s: %s", o.mmproj, weft_errmsg());
	b->seconds += now_seconds() - t0;
	b->calls++;
	for (int i = 0; i < b->n; i++) {
		img *im = b->owner[i];
		size_t t = (size_t)b->tile[i];
		memcpy(im->embd + t * b->embd_floats, b->embd + (size_t)i * b->embd_floats, b->embd_floats * 4);
		memcpy(im->sal + t * b->sal_floats, b->sal + (size_t)i * b->sal_floats, b->sal_floats * 4);
	}
	b->n = 0;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = n && size ? calloc(n, size) : malloc(1);
	if (!p)
		die("out of memory");
	return p;
}

/* Decode, preprocess and queue image im's tiles. */
static void add_image(batcher *b, img *im, const weft_preproc *pp, int number)
{
	const char *name = strcmp(im->path, "-") == 0 ? "<stdin>" : im->path;
	weft_image_opts io = {.max_pixels = (uint64_t)o.max_pixels, .flags = o.img_flags};
	weft_image *pic = weft_image_load(im->path, &io);
	if (!pic)
		die("%s: %s", name, weft_errmsg());
	weft_pixels px;
	if (weft_preprocess(pic, pp, &px) != 0)
		die("%s: %s", name, weft_errmsg());
	const weft_vision_hparams *hp = &b->v->hp;
	if (px.c != 3 || px.h != hp->image_size || px.w != hp->image_size || px.n < 1)
		die("%s: image %d: preprocessing gave %dx%dx%d tiles, the encoder takes 3x%dx%d", name, number, px.c,
		    px.h, px.w, hp->image_size, hp->image_size);
	im->tiles = px.n;
	im->rows = px.rows;
	im->cols = px.cols;
	im->embd = xcalloc((size_t)px.n * b->embd_floats, sizeof(float));
	im->sal = xcalloc((size_t)px.n * b->sal_floats, sizeof(float));
	for (int t = 0; t < px.n; t++) {
		memcpy(b->pixels + (size_t)b->n * b->tile_floats, px.data + (size_t)t * b->tile_floats,
		       b->tile_floats * 4);
		b->owner[b->n] = im;
		b->tile[b->n] = t;
		if (++b->n == b->cap)
			flush_batch(b);
	}
	weft_pixels_free(&px);
	weft_image_free(pic);
}

/* The embd frame for tile t of image number n (1-based), filling
 * placeholder ph. */
static weft_frame *embd_frame(const weft_vision *v, const img *im, int n, int t, const weft_frame *ph,
			      const char *fp)
{
	const weft_vision_hparams *hp = &v->hp;
	char pre[96], suf[96];
	weft_embd_wrapper(hp->proj, im->rows, im->cols, t, pre, suf, sizeof pre);
	const size_t ef = (size_t)hp->n_tokens * hp->n_embd_out, sf = (size_t)hp->n_layer_run * hp->n_patches;
	weft_embd_tile tile = {
		.image = n, .tile = t, .tiles = im->tiles, .rows = im->rows, .cols = im->cols,
		.saliency_kind = hp->has_cls ? "cls_attn" : "attn_recv", .patch_side = hp->n_side,
		.merge = hp->scale_factor > 0 ? hp->scale_factor : 1, .mmproj = fp,
		.source = strcmp(im->path, "-") == 0 ? "<stdin>" : im->path, .prefix = pre, .suffix = suf,
		.vocab = weft_frame_get(ph, WEFT_KEY_VOCAB), .placeholder = weft_frame_get(ph, WEFT_KEY_PLACEHOLDER),
		.n_tokens = hp->n_tokens, .n_embd = hp->n_embd_out, .embd = im->embd + (size_t)t * ef,
		.n_sal_layers = hp->n_layer_run, .n_patches = hp->n_patches, .saliency = im->sal + (size_t)t * sf,
	};
	weft_frame *f = weft_embd_frame(&tile);
	if (!f)
		die_lib(NULL);
	return f;
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

static void parse_options(int argc, char **argv)
{
	enum { O_MMPROJ = 256, O_BATCH, O_MAXPIX, O_ALPHA, O_ALPHA_WHITE, O_NOEXIF, O_FORCE };
	static const struct option opts[] = {
		{"mmproj", required_argument, 0, O_MMPROJ}, {"input", required_argument, 0, 'i'},
		{"threads", required_argument, 0, 't'},     {"batch", required_argument, 0, O_BATCH},
		{"max-pixels", required_argument, 0, O_MAXPIX}, {"alpha-drop", no_argument, 0, O_ALPHA},
		{"alpha-white", no_argument, 0, O_ALPHA_WHITE},
		{"no-exif", no_argument, 0, O_NOEXIF},      {"output", required_argument, 0, 'o'},
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
}

/* The whole input stream (it holds token ids and placeholders only, so it
 * is small); marks the images its placeholders use. */
static weft_frame **read_stream(const char *inname, FILE *in, img *imgs, int n_img, size_t *n_out, int *n_ph)
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
			imgs[n - 1].used = 1;
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
		if (!imgs[i].used)
			die("%s: image '%s' (%d) has no <image> placeholder in the stream", inname, imgs[i].path, i + 1);
	*n_out = n_frames;
	*n_ph = n_placeholders;
	return frames;
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	int n_img = argc - optind, stdin_image = 0;
	img *imgs = xcalloc((size_t)n_img, sizeof *imgs);
	for (int i = 0; i < n_img; i++) {
		imgs[i].path = argv[optind + i];
		if (strcmp(imgs[i].path, "-") == 0) {
			if (!o.input || strcmp(o.input, "-") == 0)
				die("image %d is '-' but standard input carries the stream; give the stream with -i FILE", i + 1);
			if (stdin_image++)
				die("image %d: only one image can be read from standard input ('-')", i + 1);
		}
	}

	/* The encoder. */
	double t0 = now_seconds();
	weft_gguf *g = weft_gguf_open(o.mmproj);
	if (!g)
		die("%s: %s", o.mmproj, weft_errmsg());
	weft_vision *v = weft_vision_load(g);
	if (!v)
		die("%s: %s", o.mmproj, weft_errmsg());
	const weft_vision_hparams *hp = &v->hp;
	weft_preproc pp = weft_vision_preproc(v);
	/* each family's reference loader: LLaVA's convert("RGB") drops alpha,
	 * the Idefics3 processor composites onto white */
	if (o.alpha < 0 ? hp->proj == WEFT_PROJ_MLP : o.alpha)
		o.img_flags |= WEFT_IMAGE_ALPHA_DROP;
	char fp[17];
	weft_fingerprint_hex(v->fingerprint, fp);

	/* The whole input stream. */
	const char *inname;
	FILE *in = in_open(o.input, &inname);
	size_t n_frames;
	int n_placeholders;
	weft_frame **frames = read_stream(inname, in, imgs, n_img, &n_frames, &n_placeholders), *f;
	if (in != stdin)
		fclose(in);

	/* Decode, preprocess and encode every image once. */
	FILE *out = out_open(o.output, 1, o.force);
	batcher b = {.v = v, .cap = (int)o.batch};
	b.tile_floats = (size_t)3 * hp->image_size * hp->image_size;
	b.embd_floats = (size_t)hp->n_tokens * hp->n_embd_out;
	b.sal_floats = (size_t)hp->n_layer_run * hp->n_patches;
	b.pixels = xcalloc((size_t)b.cap * b.tile_floats, sizeof(float));
	b.embd = xcalloc((size_t)b.cap * b.embd_floats, sizeof(float));
	b.sal = xcalloc((size_t)b.cap * b.sal_floats, sizeof(float));
	b.owner = xcalloc((size_t)b.cap, sizeof *b.owner);
	b.tile = xcalloc((size_t)b.cap, sizeof *b.tile);
	if (!(b.pool = weft_pool_new(o.threads)))
		die_lib(NULL);
	double t1 = now_seconds();
	int n_tiles = 0;
	for (int i = 0; i < n_img; i++) {
		add_image(&b, &imgs[i], &pp, i + 1);
		n_tiles += imgs[i].tiles;
	}
	flush_batch(&b);
	double t2 = now_seconds();

	/* The stream again, placeholders filled. */
	for (size_t k = 0; k < n_frames; k++) {
		f = frames[k];
		if (strcmp(weft_frame_kind(f), WEFT_KIND_IMAGE) == 0) {
			int n = placeholder_number(f, inname);
			const img *im = &imgs[n - 1];
			for (int t = 0; t < im->tiles; t++) {
				weft_frame *e = embd_frame(v, im, n, t, f, fp);
				if (weft_frame_write(out, e) != 0)
					die_lib(out_name);
				weft_frame_free(e);
			}
		} else if (weft_frame_write_raw(out, f) != 0) {
			die_lib(out_name);
		}
		weft_frame_free(f);
	}
	out_close(out);
	if (o.verbose)
		fprintf(stderr,
			"%s: load %.3f s; %d image%s, %d placeholder%s, %d tiles: decode+preprocess %.3f s, "
			"encode %.3f s in %d call%s (%.2f tiles/s), %d threads, kernels %s\n",
			prog, t1 - t0, n_img, n_img == 1 ? "" : "s", n_placeholders, n_placeholders == 1 ? "" : "s",
			n_tiles, t2 - t1 - b.seconds, b.seconds, b.calls, b.calls == 1 ? "" : "s",
			b.seconds > 0 ? n_tiles / b.seconds : 0.0, weft_pool_size(b.pool), weft_kernels_level());

	for (int i = 0; i < n_img; i++) {
		free(imgs[i].embd);
		free(imgs[i].sal);
	}
	free(imgs);
	free(frames);
	free(b.pixels);
	free(b.embd);
	free(b.sal);
	free(b.owner);
	free(b.tile);
	weft_pool_free(b.pool);
	weft_vision_free(v);
	weft_gguf_close(g);
	return 0;
}

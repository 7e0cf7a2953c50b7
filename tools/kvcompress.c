/* kvcompress - compress a KV cache stream (from prefill) with one or more
 * KV methods (evict, head-wise budgets, key channels, quantization,
 * cross-layer merging) and write it back, for decode (man 1 kvcompress). */
#include <getopt.h>
#include <inttypes.h>

#include "common.h"
#include "keys.h"
#include "kvm.h"
#include "kvstream.h"
#include "model.h"

static struct {
	const char *model, *output, *method;
	int threads, force, verbose, list, drop_stats, pack_bits, unpack;
	weft_kvm_opts kvm;
} o = {.kvm = {.image_ratio = -1}};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s -m MODEL.gguf --method SPEC [OPTIONS] [FILE]\n"
		"Read a KV cache stream (prefill's output: FILE or stdin), compress the cache\n"
		"with the KV methods of SPEC, applied left to right, and write it back.\n"
		"\n"
		"  -m, --model FILE      GGUF model the cache was made with\n"
		"      --method SPEC     METHOD[:KEY=VALUE...][,METHOD...], e.g. snapkv,\n"
		"                        snapkv,kivi4, adakv:scorer=tova (see --list)\n"
		"      --ratio R         fraction of each head's rows removed, 0 <= R < 1\n"
		"                        (kvpress's compression_ratio; default 0.5)\n"
		"      --budget N        rows kept per head instead of a ratio\n"
		"      --image-ratio R   fraction of image rows removed (text rows: --ratio)\n"
		"      --seed S          seed of the random method (default 0)\n"
		"      --list            list the methods, their parameters and needs\n"
		"      --pack            code the cache for disk or the network: quantized per\n"
		"                        channel, delta and zlib coded, CRC-checked (decode,\n"
		"                        prefill and kvcompress read it back)\n"
		"      --pack-bits N     bits per value when packing, 2..8 (default 8)\n"
		"      --unpack          write a packed input back as a plain cache\n"
		"      --drop-stats      do not pass the statistics on (mass, window queries,\n"
		"                        query statistics): a smaller stream; later KV methods\n"
		"                        that need them then cannot run\n"
		"  -t, --threads N       threads (default: all CPUs)\n"
		"  -o, --output FILE     write to FILE (atomically) instead of stdout\n"
		"      --force           write binary output to a terminal\n"
		"  -v, --verbose         bytes before and after, time, notes on stderr\n"
		"  -h, --help            this help\n"
		"  -V, --version         version\n",
		prog);
}

static void parse_options(int argc, char **argv)
{
	enum { O_METHOD = 256, O_RATIO, O_BUDGET, O_IMAGE_RATIO, O_SEED, O_LIST, O_FORCE, O_DROP, O_PACK, O_PACKBITS,
	       O_UNPACK };
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},          {"method", required_argument, 0, O_METHOD},
		{"ratio", required_argument, 0, O_RATIO},      {"budget", required_argument, 0, O_BUDGET},
		{"image-ratio", required_argument, 0, O_IMAGE_RATIO}, {"seed", required_argument, 0, O_SEED},
		{"list", no_argument, 0, O_LIST},              {"threads", required_argument, 0, 't'},
		{"drop-stats", no_argument, 0, O_DROP},         {"pack", no_argument, 0, O_PACK},
		{"pack-bits", required_argument, 0, O_PACKBITS}, {"unpack", no_argument, 0, O_UNPACK},
		{"output", required_argument, 0, 'o'},         {"force", no_argument, 0, O_FORCE},
		{"verbose", no_argument, 0, 'v'},              {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},              {0, 0, 0, 0}};
	tool_init("kvcompress");
	int c, have_ratio = 0;
	o.kvm.ratio = 0.5;
	while ((c = getopt_long(argc, argv, "m:t:o:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'm': o.model = optarg; break;
		case O_METHOD: o.method = optarg; break;
		case O_RATIO:
			o.kvm.ratio = opt_real("--ratio", optarg, 0, 1);
			if (o.kvm.ratio >= 1)
				die("--ratio: %s is not below 1 (the fraction of rows removed, 0 <= R < 1)", optarg);
			have_ratio = 1;
			break;
		case O_BUDGET: o.kvm.budget = opt_int("--budget", optarg, 1, INT32_MAX); break;
		case O_IMAGE_RATIO:
			o.kvm.image_ratio = opt_real("--image-ratio", optarg, 0, 1);
			if (o.kvm.image_ratio >= 1)
				die("--image-ratio: %s is not below 1 (the fraction of image rows removed)", optarg);
			break;
		case O_SEED: o.kvm.seed = (uint64_t)opt_int("--seed", optarg, 0, INT64_MAX); break;
		case O_LIST: o.list = 1; break;
		case O_DROP: o.drop_stats = 1; break;
		case O_PACK: o.pack_bits = o.pack_bits ? o.pack_bits : 8; break;
		case O_PACKBITS: o.pack_bits = (int)opt_int("--pack-bits", optarg, 2, 8); break;
		case O_UNPACK: o.unpack = 1; break;
		case 't': o.threads = (int)opt_int("--threads", optarg, 1, 1024); break;
		case 'o': o.output = optarg; break;
		case O_FORCE: o.force = 1; break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': print_version(); break;
		default: usage(stderr); exit(2);
		}
	}
	if (o.list) {
		weft_family_list(weft_kvm_family(), stdout);
		exit(0);
	}
	if (o.pack_bits && o.unpack)
		die("--pack and --unpack are exclusive");
	if (!o.method && !o.pack_bits && !o.unpack)
		die("no method given (--method SPEC); see --list");
	if (have_ratio && o.kvm.budget)
		die("--ratio and --budget are exclusive");
	if (!o.model)
		die("no model given (-m MODEL.gguf); see --help");
	if (optind + 1 < argc)
		die("at most one input FILE");
	if (o.method && weft_kvm_check(o.method, &o.kvm, NULL) != 0) /* the spec; statistics with the input */
		die("--method %s: %s", o.method, weft_errmsg());
}

/* Read the cache (with its statistics and logits); other frames are
 * passed on to out as they come. */
static void read_input(weft_reader *r, const char *inname, const weft_model *m, weft_kv_in *kin, FILE *out)
{
	weft_frame *f;
	int rc;
	while ((rc = weft_reader_next(r, &f)) == 1) {
		const int took = weft_kv_read(kin, m, f);
		if (took < 0)
			die("%s: %s", inname, weft_errmsg());
		if (took == 0 && weft_frame_write_raw(out, f) != 0)
			die_lib(out_name);
		weft_frame_free(f);
	}
	stream_done(r, rc, inname);
	if (weft_kv_read_end(kin, m, 0) != 0) {
		if (!kin->kv)
			die("%s: no KV cache in the input (pipe prefill's output into kvcompress)", inname);
		die("%s: %s", inname, weft_errmsg());
	}
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	tool_model tm = load_model(o.model);
	const weft_model *m = tm.m;
	const char *inname;
	FILE *in = in_open(optind < argc ? argv[optind] : "-", &inname);
	FILE *out = out_open(o.output, 1, o.force);
	weft_reader *r = stream_open(in);
	weft_kv_in kin = {0};
	read_input(r, inname, m, &kin, out);
	weft_kv *kv = kin.kv;

	weft_kvm_stats st = {.mass = kin.have_mass ? kin.mass : NULL, .mass_stride = kin.mass_stride,
			     .mass_queries = kin.mass_queries, .window_q = kin.window_q, .n_window = kin.n_window,
			     .q_mean = kin.q_mean, .q_cov = kin.q_cov, .q_count = kin.q_count};
	if (!(o.kvm.pool = weft_pool_new(o.threads)))
		die_lib(NULL);
	const uint64_t b0 = weft_kv_bytes(kv);
	char notes[2048];
	const double t0 = now_seconds();
	notes[0] = 0;
	if (o.method && weft_kvm_apply(o.method, &o.kvm, &m->hp, kv, &st, kin.hist, kin.n_hist, notes, sizeof notes) != 0)
		die("%s: %s", inname, weft_errmsg());
	const double t1 = now_seconds();

	char methods[512];
	snprintf(methods, sizeof methods, "%s%s%s", kin.methods, *kin.methods && o.method ? "," : "", o.method ? o.method : "");
	weft_kv_write_args w = {.hist = kin.hist, .n_hist = kin.n_hist, .logits = kin.have_logits ? kin.logits : NULL,
				.llamacpp = kin.llamacpp, .mass = st.mass, .mass_stride = st.mass_stride,
				.mass_queries = st.mass_queries, .window_q = st.window_q, .n_window = st.n_window,
				.q_mean = st.q_mean, .q_cov = st.q_cov, .q_count = st.q_count, .methods = methods};
	if (o.drop_stats)
		w.mass = NULL, w.window_q = NULL, w.q_mean = w.q_cov = NULL;
	if (o.pack_bits ? weft_kv_write_packed(out, m, kv, &w, o.pack_bits) != 0 : weft_kv_write(out, m, kv, &w) != 0)
		die("%s: %s", o.pack_bits && !ferror(out) ? inname : out_name, weft_errmsg());
	out_close(out);
	for (char *nl, *p = notes; *p; p = nl + 1) { /* one line per note */
		nl = strchr(p, '\n');
		fprintf(stderr, "%s: note: %.*s\n", prog, (int)(nl - p), p);
	}
	if (o.verbose) {
		const uint64_t b1 = weft_kv_bytes(kv), f16 = weft_kv_bytes_f16(kv);
		fprintf(stderr, "%s: %s: %" PRIu64 " -> %" PRIu64 " bytes (%.4f of the input, %.4f of F16) in %.3f s\n",
			prog, o.method ? o.method : o.pack_bits ? "pack" : "unpack", b0, b1, b0 ? (double)b1 / (double)b0 : 0, f16 ? (double)b1 / (double)f16 : 0,
			t1 - t0);
	}
	weft_kv_in_free(&kin);
	weft_pool_free(o.kvm.pool);
	weft_reader_free(r);
	if (in != stdin)
		fclose(in);
	free_model(&tm);
	return 0;
}

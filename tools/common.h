/* common.h - what every weft tool shares: its name in messages, fatal
 * errors, atomic output files, refusing binary output to a terminal.
 * Header-only, included once by each tools/<tool>.c. */
#ifndef WEFT_TOOLS_COMMON_H
#define WEFT_TOOLS_COMMON_H

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "gguf.h"
#include "model.h"
#include "stream.h"
#include "tokenizer.h"
#include "util.h"

static const char *prog = "weft";
static char *out_tmp;      /* temporary output file, removed on failure */
static char *volatile sig_tmp; /* the same, for the signal handler */
static char *out_final;    /* its final name */
static const char *out_name = "<stdout>"; /* the output's name in messages */

/* SIGINT, SIGTERM, SIGHUP: remove the temporary output file, then die of
 * the signal as without the handler (status 128 + signal). */
static void on_fatal_signal(int sig)
{
	char *t = sig_tmp;
	if (t)
		unlink(t);
	signal(sig, SIG_DFL);
	raise(sig);
}

static inline void tool_init(const char *name)
{
	prog = name;
	weft_stream_set_tool(name);
	/* SIGPIPE keeps its default action: a closed pipe ends the tool
	 * quietly with the conventional status 141, as for any Unix filter
	 * (a pipe is never a temporary file).  A signal ignored at start
	 * (nohup) stays ignored. */
	const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct sigaction sa, old;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_fatal_signal;
		sigemptyset(&sa.sa_mask);
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
	}
}

static inline void discard_output(void)
{
	if (out_tmp) {
		sig_tmp = NULL;
		unlink(out_tmp);
		free(out_tmp);
		out_tmp = NULL;
	}
}

/* Print "prog: message" and exit 1, removing any partial output file. */
__attribute__((noreturn, format(printf, 1, 2))) static inline void die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	discard_output();
	exit(1);
}

/* die() with the library's last error message. */
__attribute__((noreturn)) static inline void die_lib(const char *what)
{
	if (what)
		die("%s: %s", what, weft_errmsg());
	die("%s", weft_errmsg());
}

/* Die unless path can become an output file (checked before any work, so
 * a tool never runs a model to fail at the end).  Returns the mode the new
 * file gets: an existing file's own, else what '>' would give (0666 less
 * the umask); or 0 when path exists and is not a regular file (a device
 * such as /dev/null, a FIFO): that is written in place, never replaced. */
static inline mode_t out_check(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			die("%s: is a directory", path);
		if (!S_ISREG(st.st_mode))
			return 0;
		return st.st_mode & 07777;
	}
	const mode_t u = umask(0);
	umask(u);
	return 0666 & ~u;
}

/* Open the output: stdout for NULL or "-", else a temporary file beside
 * path that out_close() renames into place (removed on failure or on
 * SIGINT/SIGTERM/SIGHUP).  binary: refuse a terminal unless force (like
 * gzip). */
static inline FILE *out_open(const char *path, int binary, int force)
{
	if (!path || strcmp(path, "-") == 0) {
		if (binary && !force && isatty(STDOUT_FILENO))
			die("refusing to write a binary stream to a terminal (redirect it, pipe it, or use --force)");
		return stdout;
	}
	out_name = path;
	const mode_t mode = out_check(path);
	if (mode == 0) { /* a device or FIFO: written as '>' would */
		FILE *f = fopen(path, "wb");
		if (!f)
			die("%s: cannot open: %s", path, strerror(errno));
		return f;
	}
	size_t n = strlen(path) + 16;
	out_tmp = malloc(n);
	out_final = strdup(path);
	if (!out_tmp || !out_final)
		die("out of memory");
	snprintf(out_tmp, n, "%s.tmp.XXXXXX", path);
	int fd = mkstemp(out_tmp);
	if (fd < 0) {
		int e = errno;
		free(out_tmp);
		out_tmp = NULL;
		die("%s: cannot create: %s", path, strerror(e));
	}
	sig_tmp = out_tmp;
	if (fchmod(fd, mode) != 0)
		die("%s: %s", path, strerror(errno));
	FILE *f = fdopen(fd, "wb");
	if (!f)
		die("%s: %s", path, strerror(errno));
	return f;
}

/* Flush f now, dying on a write error with its own errno (disk full, a
 * closed pipe) rather than one a later call would leave. */
static inline void flush_or_die(FILE *f, const char *name)
{
	errno = 0;
	if (fflush(f) != 0 || ferror(f))
		die("%s: write error: %s", name, strerror(errno ? errno : EIO));
}

/* Flush and close the output, reporting write errors (disk full); rename a
 * temporary file into place. */
static inline void out_close(FILE *f)
{
	const char *name = f == stdout ? "<stdout>" : out_name;
	flush_or_die(f, name);
	if (f != stdout && !out_tmp) { /* a device or FIFO, written in place */
		if (fclose(f) != 0)
			die("%s: write error: %s", name, strerror(errno));
	} else if (f != stdout) {
		if (fclose(f) != 0)
			die("%s: write error: %s", name, strerror(errno));
		if (rename(out_tmp, out_final) != 0)
			die("%s: cannot rename into place: %s", name, strerror(errno));
		sig_tmp = NULL;
		free(out_tmp);
		free(out_final);
		out_tmp = out_final = NULL;
	} else if (fclose(stdout) != 0 && errno != EPIPE) {
		die("%s: write error: %s", name, strerror(errno));
	}
}

/* Open an input file ("-" = stdin).  name_out gets a name for messages. */
static inline FILE *in_open(const char *path, const char **name_out)
{
	if (!path || strcmp(path, "-") == 0) {
		*name_out = "<stdin>";
		return stdin;
	}
	FILE *f = fopen(path, "rb");
	if (!f)
		die("%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
		die("%s: is a directory", path);
	*name_out = path;
	return f;
}

/* A stream reader over in (or die). */
static inline weft_reader *stream_open(FILE *in)
{
	weft_reader *r = weft_reader_new(in);
	if (!r)
		die("%s", weft_errmsg());
	return r;
}

/* After a reader loop ended with rc: die on a read error, and on an empty
 * stream (no frames: a stage before this one failed, or the wrong file). */
static inline void stream_done(const weft_reader *r, int rc, const char *name)
{
	if (rc < 0)
		die("%s: %s", name, weft_errmsg());
	if (weft_reader_count(r) == 0)
		die("%s: empty stream (no frames)", name);
}

/* Whole contents of in, NUL-terminated (*len excludes the NUL). */
static inline char *read_all(FILE *in, const char *name, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		die("out of memory");
	for (;;) {
		if (n + 1 >= cap) {
			char *b = realloc(buf, cap *= 2);
			if (!b)
				die("out of memory");
			buf = b;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, in);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(in))
		die("%s: read error: %s", name, strerror(errno ? errno : EIO));
	buf[n] = 0;
	*len = n;
	return buf;
}

/* An integer option value in lo..hi, or die naming the option. */
static inline int64_t opt_int(const char *opt, const char *s, int64_t lo, int64_t hi)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		die("%s: expected a number in %lld..%lld, got '%s'", opt, (long long)lo, (long long)hi, s);
	return v;
}

/* A real option value in lo..hi, or die naming the option. */
static inline double opt_real(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || end == s || !(v >= lo && v <= hi))
		die("%s: expected a number in %.15g..%.15g, got '%s'", opt, lo, hi, s);
	return v;
}

/* Monotonic clock in seconds, for -v timings. */
static inline double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A model file opened for a tool: the mapping, the network, the tokenizer. */
typedef struct tool_model {
	weft_gguf *g;
	weft_model *m;
	weft_vocab *voc;
} tool_model;

/* Open path as a runnable model with its tokenizer, or die naming it. */
static inline tool_model load_model(const char *path)
{
	tool_model t = {0};
	if (!(t.g = weft_gguf_open(path)) || !(t.m = weft_model_load(t.g)) || !(t.voc = weft_vocab_load(t.g)))
		die("%s: %s", path, weft_errmsg());
	if (weft_vocab_warning(t.voc))
		fprintf(stderr, "%s: warning: %s: %s\n", prog, path, weft_vocab_warning(t.voc));
	return t;
}

/* --numerics NAME (prefill, decode, perplexity): "weft" (the fastest
 * kernels this CPU has) or "llama.cpp" (the kernel level that reproduces a
 * native AVX-512 build of llama.cpp bit for bit, kernels/llamacpp_avx512.c).
 * Returns 1 for llama.cpp; the last occurrence wins, and
 * numerics_apply() selects it once the options are read. */
static inline int opt_numerics(const char *s)
{
	if (strcmp(s, "weft") == 0)
		return 0;
	if (strcmp(s, "llama.cpp") != 0)
		die("--numerics: '%s' is not weft or llama.cpp", s);
	return 1;
}

static inline void numerics_apply(int llamacpp)
{
	if (llamacpp && weft_kernels_force("llama.cpp") != 0)
		die("--numerics llama.cpp: this CPU lacks the AVX-512 level (F, DQ, BW, VL, VNNI) whose llama.cpp build it reproduces");
}

/* --device cpu|cuda[:N] (default: $WEFT_DEVICE, else cpu): -1 for the CPU,
 * N for CUDA device N.  device_apply() checks the choice once the options
 * are read: CUDA needs a build with `make CUDA=1` and a usable device;
 * then the LLM's forward pass runs there (lib/model_cuda.c: compiled, not
 * yet run on a GPU), its KV cache attached to the device by
 * device_attach() and copied back by device_download() for a stream. */
static inline int opt_device(const char *opt, const char *s)
{
	if (strcmp(s, "cpu") == 0)
		return -1;
	if (strncmp(s, "cuda", 4) == 0 && (!s[4] || s[4] == ':')) {
		if (!s[4])
			return 0;
		char *end;
		errno = 0;
		long n = strtol(s + 5, &end, 10);
		if (s[5] >= '0' && s[5] <= '9' && !*end && !errno && n <= 1024)
			return (int)n;
	}
	die("%s: '%s' is not cpu, cuda or cuda:N", opt, s);
}

static inline int device_default(void)
{
	const char *e = getenv("WEFT_DEVICE");
	return e && *e ? opt_device("WEFT_DEVICE", e) : -1;
}

/* "cuda" or "cuda:N" for messages. */
static inline const char *device_arg(int dev)
{
	static char name[16];
	snprintf(name, sizeof name, dev ? "cuda:%d" : "cuda", dev);
	return name;
}

/* Check the device choice; returns it. */
static inline int device_apply(int dev)
{
	if (dev < 0)
		return dev;
	char why[320];
	int n = weft_device_count(why, sizeof why);
	if (n == 0)
		die("--device %s: %s", device_arg(dev), why);
	if (dev >= n)
		die("--device %s: this machine has %d CUDA device%s", device_arg(dev), n, n == 1 ? "" : "s");
	return dev;
}

/* What -v reports: "cpu", or "cuda:N (the GPU's name)". */
static inline const char *device_label(int dev)
{
	static char s[300];
	if (dev < 0)
		return "cpu";
	const char *name = weft_device_name();
	if (*name)
		snprintf(s, sizeof s, "cuda:%d (%s)", dev, name);
	else
		snprintf(s, sizeof s, "cuda:%d", dev);
	return s;
}

/* Options the device path does not offer: die naming the first one set
 * (names[i] goes with set[i]). */
static inline void device_refuse(int dev, int n, const int *set, const char *const *names)
{
	for (int i = 0; dev >= 0 && i < n; i++)
		if (set[i])
			die("--device %s: %s runs on the CPU only; use --device cpu", device_arg(dev), names[i]);
}

/* Move kv to the device for the forward passes (weights uploaded once);
 * nothing for the CPU. */
static inline void device_attach(int dev, const weft_model *m, weft_kv *kv, const char *model_path)
{
	if (dev >= 0 && weft_device_attach(m, kv, dev) != 0)
		die("%s: --device %s: %s", model_path, device_arg(dev), weft_errmsg());
}

/* Copy the device cache back into kv (before writing it); nothing for
 * the CPU. */
static inline void device_download(int dev, weft_kv *kv)
{
	if (dev >= 0 && weft_device_download(kv) != 0)
		die("--device %s: %s", device_arg(dev), weft_errmsg());
}

static inline void device_detach(int dev)
{
	if (dev >= 0)
		weft_device_detach();
}

/* With llama.cpp numerics, every matrix of the model must be of a weight
 * type that level reproduces. */
static inline void check_numerics(int llamacpp, const tool_model *t, const char *path)
{
	if (llamacpp && weft_model_check_llamacpp(t->m) != 0)
		die("%s: --numerics llama.cpp: %s", path, weft_errmsg());
}

static inline void free_model(tool_model *t)
{
	weft_vocab_free(t->voc);
	weft_model_free(t->m);
	weft_gguf_close(t->g);
}

static inline void print_version(void)
{
	printf("%s (weft) %s\n", prog, WEFT_VERSION);
	exit(0);
}

#endif

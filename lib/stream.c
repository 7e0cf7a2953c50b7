/* stream.c - the weft stream format: frames that are safetensors blobs.
 * See stream.h and man/weft-stream.5. */
#include "keys.h"
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

/* ---- dtypes ---- */

static const struct {
	const char *name;
	size_t size;
} dtypes[WEFT_DT_COUNT] = {
	[WEFT_DT_BOOL] = {"BOOL", 1}, [WEFT_DT_U8] = {"U8", 1},   [WEFT_DT_I8] = {"I8", 1},
	[WEFT_DT_U16] = {"U16", 2},   [WEFT_DT_I16] = {"I16", 2}, [WEFT_DT_F16] = {"F16", 2},
	[WEFT_DT_BF16] = {"BF16", 2}, [WEFT_DT_U32] = {"U32", 4}, [WEFT_DT_I32] = {"I32", 4},
	[WEFT_DT_F32] = {"F32", 4},   [WEFT_DT_U64] = {"U64", 8}, [WEFT_DT_I64] = {"I64", 8},
	[WEFT_DT_F64] = {"F64", 8},
};

const char *weft_dtype_name(weft_dtype t) { return (unsigned)t < WEFT_DT_COUNT ? dtypes[t].name : "?"; }
size_t weft_dtype_size(weft_dtype t) { return (unsigned)t < WEFT_DT_COUNT ? dtypes[t].size : 0; }

int weft_dtype_parse(const char *s)
{
	for (int i = 0; i < WEFT_DT_COUNT; i++)
		if (strcmp(s, dtypes[i].name) == 0)
			return i;
	return -1;
}

/* ---- frames in memory ---- */

weft_frame *weft_frame_new(const char *kind)
{
	weft_frame *f = weft_calloc(1, sizeof *f);
	if (f && kind && weft_frame_set(f, WEFT_KEY_KIND, kind) != 0) {
		weft_frame_free(f);
		return NULL;
	}
	return f;
}

void weft_frame_free(weft_frame *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->n_meta; i++) {
		free(f->meta[i].key);
		free(f->meta[i].val);
	}
	for (int i = 0; i < f->n_tensors; i++)
		free(f->tensors[i].name);
	free(f->meta);
	free(f->tensors);
	free(f->data);
	free(f->header);
	free(f);
}

const char *weft_frame_get(const weft_frame *f, const char *key)
{
	for (int i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta[i].key, key) == 0)
			return f->meta[i].val;
	return NULL;
}

const char *weft_frame_kind(const weft_frame *f)
{
	const char *k = weft_frame_get(f, WEFT_KEY_KIND);
	return k ? k : "";
}

int weft_frame_set(weft_frame *f, const char *key, const char *val)
{
	char *v = weft_strndup(val, strlen(val));
	if (!v)
		return -1;
	for (int i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta[i].key, key) == 0) {
			free(f->meta[i].val);
			f->meta[i].val = v;
			return 0;
		}
	if (f->n_meta == f->meta_cap) {
		int cap = f->meta_cap ? 2 * f->meta_cap : 8;
		weft_meta *m = weft_realloc(f->meta, (size_t)cap * sizeof *m);
		if (!m) {
			free(v);
			return -1;
		}
		f->meta = m;
		f->meta_cap = cap;
	}
	char *k = weft_strndup(key, strlen(key));
	if (!k) {
		free(v);
		return -1;
	}
	f->meta[f->n_meta].key = k;
	f->meta[f->n_meta].val = v;
	f->n_meta++;
	return 0;
}

int weft_frame_setf(weft_frame *f, const char *key, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return weft_frame_set(f, key, buf);
}

/* Ensure room for `more` data bytes; data pointers of tensors are rebased. */
static int reserve_data(weft_frame *f, uint64_t more)
{
	uint64_t need;
	if (weft_add_overflow(f->data_len, more, &need) || need > SIZE_MAX / 2) {
		weft_error("frame data too large");
		return -1;
	}
	if (need <= f->data_cap && f->data)
		return 0;
	uint64_t cap = f->data_cap ? f->data_cap : 256;
	while (cap < need)
		cap *= 2;
	uint8_t *d = weft_realloc(f->data, (size_t)cap);
	if (!d)
		return -1;
	f->data = d;
	f->data_cap = cap;
	for (int i = 0; i < f->n_tensors; i++)
		f->tensors[i].data = d + f->tensors[i].begin;
	return 0;
}

static int valid_shape(int ndim, const int64_t *shape, uint64_t *nelem)
{
	uint64_t n = 1;
	if (ndim < 0 || ndim > WEFT_MAX_DIMS)
		return -1;
	for (int i = 0; i < ndim; i++)
		if (shape[i] < 0 || weft_mul_overflow(n, (uint64_t)shape[i], &n))
			return -1;
	*nelem = n;
	return 0;
}

weft_tensor *weft_frame_add(weft_frame *f, const char *name, weft_dtype t, int ndim,
			    const int64_t *shape, const void *data)
{
	uint64_t nelem, nbytes;
	if ((unsigned)t >= WEFT_DT_COUNT || valid_shape(ndim, shape, &nelem) ||
	    weft_mul_overflow(nelem, weft_dtype_size(t), &nbytes)) {
		weft_error("tensor '%s': bad dtype or shape", name);
		return NULL;
	}
	if (weft_frame_tensor(f, name)) {
		weft_error("tensor '%s' added twice", name);
		return NULL;
	}
	if (f->n_tensors == f->tensors_cap) {
		int cap = f->tensors_cap ? 2 * f->tensors_cap : 4;
		weft_tensor *ts = weft_realloc(f->tensors, (size_t)cap * sizeof *ts);
		if (!ts)
			return NULL;
		f->tensors = ts;
		f->tensors_cap = cap;
	}
	/* Keep every tensor aligned to 8 bytes in memory; the writer lays
	 * them out again without holes. */
	uint64_t pad = (8 - f->data_len % 8) % 8;
	if (reserve_data(f, pad + nbytes) != 0)
		return NULL;
	memset(f->data + f->data_len, 0, pad);
	f->data_len += pad;
	weft_tensor *x = &f->tensors[f->n_tensors];
	memset(x, 0, sizeof *x);
	if (!(x->name = weft_strndup(name, strlen(name))))
		return NULL;
	x->dtype = t;
	x->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		x->shape[i] = shape[i];
	x->nelem = nelem;
	x->begin = f->data_len;
	x->end = f->data_len + nbytes;
	x->data = f->data + x->begin;
	if (data)
		memcpy(x->data, data, (size_t)nbytes);
	else
		memset(x->data, 0, (size_t)nbytes);
	f->data_len += nbytes;
	f->n_tensors++;
	return x;
}

const weft_tensor *weft_frame_tensor(const weft_frame *f, const char *name)
{
	for (int i = 0; i < f->n_tensors; i++)
		if (strcmp(f->tensors[i].name, name) == 0)
			return &f->tensors[i];
	return NULL;
}

/* ---- writing ---- */

static char tool_name[64] = "weft";

void weft_stream_set_tool(const char *tool) { snprintf(tool_name, sizeof tool_name, "%s", tool); }

static uint32_t crc_of(const uint8_t *p, uint64_t n)
{
	uLong c = crc32_z(0L, Z_NULL, 0);
	return (uint32_t)crc32_z(c, n ? p : Z_NULL, (z_size_t)n);
}

static int write_all(FILE *out, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, out) != n) {
		weft_error("write error: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	return 0;
}

static int write_frame_bytes(FILE *out, const char *hdr, uint64_t hlen, const weft_frame *f,
			     const uint8_t *data, uint64_t dlen)
{
	uint8_t len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (uint8_t)(hlen >> (8 * i));
	errno = 0;
	if (write_all(out, len8, 8) || write_all(out, hdr, (size_t)hlen) ||
	    write_all(out, data, (size_t)dlen))
		return -1;
	(void)f;
	return 0;
}

/* Order in which tensors are laid out: by element size, largest first, so
 * that every tensor starts aligned to its element size without gaps. */
static int *layout_order(const weft_frame *f)
{
	int *ord = weft_malloc((size_t)(f->n_tensors ? f->n_tensors : 1) * sizeof *ord);
	if (!ord)
		return NULL;
	int k = 0;
	for (size_t sz = 8; sz >= 1; sz /= 2)
		for (int i = 0; i < f->n_tensors; i++)
			if (weft_dtype_size(f->tensors[i].dtype) == sz)
				ord[k++] = i;
	return ord;
}

int weft_frame_write(FILE *out, weft_frame *f)
{
	int rc = -1;
	int *ord = layout_order(f);
	uint8_t *packed = NULL;
	char *hdr = NULL;
	json_t *root = NULL;
	if (!ord)
		return -1;
	uint64_t total = 0;
	for (int i = 0; i < f->n_tensors; i++)
		total += f->tensors[i].end - f->tensors[i].begin;
	packed = weft_malloc((size_t)total);
	if (!packed)
		goto done;
	root = json_object();
	json_t *meta = json_object();
	if (!root || !meta) {
		json_decref(meta);
		weft_error("out of memory");
		goto done;
	}
	json_object_set_new(root, "__metadata__", meta);
	uint64_t off = 0;
	for (int k = 0; k < f->n_tensors; k++) {
		const weft_tensor *x = &f->tensors[ord[k]];
		uint64_t nb = x->end - x->begin;
		memcpy(packed + off, x->data, (size_t)nb);
		json_t *shape = json_array();
		for (int d = 0; d < x->ndim; d++)
			json_array_append_new(shape, json_integer(x->shape[d]));
		json_t *t = json_pack("{s:s, s:o, s:[I,I]}", "dtype", weft_dtype_name(x->dtype), "shape",
				      shape, "data_offsets", (json_int_t)off, (json_int_t)(off + nb));
		if (!t || json_object_set_new(root, x->name, t) != 0) {
			weft_error("out of memory");
			goto done;
		}
		off += nb;
	}
	char crc[9];
	snprintf(crc, sizeof crc, "%08" PRIx32, crc_of(packed, total));
	if (weft_frame_setf(f, WEFT_KEY_VERSION, "%d", WEFT_STREAM_VERSION) || weft_frame_set(f, WEFT_KEY_CRC, crc) ||
	    weft_frame_setf(f, WEFT_KEY_TOOL, "%s %s", tool_name, WEFT_VERSION))
		goto done;
	/* Metadata in a stable order: weft.* keys first as set, then the rest. */
	for (int i = 0; i < f->n_meta; i++)
		json_object_set_new(meta, f->meta[i].key, json_string(f->meta[i].val));
	hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!hdr) {
		weft_error("cannot encode frame header (metadata must be valid UTF-8)");
		goto done;
	}
	size_t hlen = strlen(hdr);
	size_t padded = (hlen + 7) / 8 * 8; /* data starts 8-aligned */
	char *h2 = weft_realloc(hdr, padded + 1);
	if (!h2)
		goto done;
	hdr = h2;
	memset(hdr + hlen, ' ', padded - hlen);
	rc = write_frame_bytes(out, hdr, padded, f, packed, total);
done:
	json_decref(root);
	free(hdr);
	free(packed);
	free(ord);
	return rc;
}

int weft_frame_write_raw(FILE *out, const weft_frame *f)
{
	if (!f->header) {
		weft_error("frame was not read from a stream");
		return -1;
	}
	return write_frame_bytes(out, f->header, f->header_len, f, f->data, f->data_len);
}

/* ---- reading ---- */

struct weft_reader {
	FILE *in;
	const uint8_t *mem;
	size_t mem_len, mem_pos;
	uint64_t count;
	weft_reader_limits lim;
};

static void default_limits(weft_reader_limits *lim)
{
	lim->max_header = 16u << 20;
	lim->max_data = 64ull << 30;
	const char *env = getenv("WEFT_MAX_FRAME");
	if (env && *env) {
		char *end;
		unsigned long long v = strtoull(env, &end, 10);
		if (*end == 0 && v > 0)
			lim->max_data = v;
	}
}

weft_reader *weft_reader_new(FILE *in)
{
	weft_reader *r = weft_calloc(1, sizeof *r);
	if (r) {
		r->in = in;
		default_limits(&r->lim);
	}
	return r;
}

weft_reader *weft_reader_mem(const void *buf, size_t n)
{
	weft_reader *r = weft_calloc(1, sizeof *r);
	if (r) {
		r->mem = buf;
		r->mem_len = n;
		default_limits(&r->lim);
	}
	return r;
}

void weft_reader_set_limits(weft_reader *r, const weft_reader_limits *lim) { r->lim = *lim; }
void weft_reader_free(weft_reader *r) { free(r); }
uint64_t weft_reader_count(const weft_reader *r) { return r->count; }

/* Read up to n bytes; returns bytes read (short only at end of input or on
 * an I/O error, reported through *ioerr). */
static size_t rd(weft_reader *r, void *buf, size_t n, int *ioerr)
{
	if (r->mem) {
		size_t k = r->mem_len - r->mem_pos < n ? r->mem_len - r->mem_pos : n;
		memcpy(buf, r->mem + r->mem_pos, k);
		r->mem_pos += k;
		return k;
	}
	size_t got = fread(buf, 1, n, r->in);
	if (got < n && ferror(r->in))
		*ioerr = errno ? errno : EIO;
	return got;
}

static int looks_like_text(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] < 0x09 || (b[i] > 0x0d && b[i] < 0x20) || b[i] == 0x7f)
			return 0;
	return 1;
}

/* What a file starting with b (8 bytes) is, when recognisable. */
static const char *file_kind(const uint8_t *b)
{
	static const struct { const char *magic; size_t n; const char *what; } kinds[] = {
		{"GGUF", 4, "a GGUF file"}, {"\xff\xd8\xff", 3, "a JPEG image"}, {"\x89PNG", 4, "a PNG image"},
		{"\x1f\x8b", 2, "gzip data"}, {"\x28\xb5\x2f\xfd", 4, "zstd data"}, {"\x7f" "ELF", 4, "an ELF executable"},
		{"PK\x03\x04", 4, "a zip archive"},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (memcmp(b, kinds[i].magic, kinds[i].n) == 0)
			return kinds[i].what;
	if (b[0] == 'P' && b[1] >= '1' && b[1] <= '6' && (b[2] == '\n' || b[2] == ' ' || b[2] == '\r'))
		return "a PNM image";
	return NULL;
}

static int get_int(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int cmp_begin(const void *a, const void *b)
{
	const weft_tensor *x = a, *y = b;
	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Parse the JSON header into f (metadata, tensor table) and set data_len. */
static int parse_header(weft_frame *f, const weft_reader_limits *lim)
{
	json_error_t jerr;
	json_t *root = json_loadb(f->header, (size_t)f->header_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		weft_error("bad header JSON: %s", jerr.text);
		return -1;
	}
	int rc = -1;
	if (!json_is_object(root)) {
		weft_error("bad header: not a JSON object");
		goto done;
	}
	json_t *meta = json_object_get(root, "__metadata__");
	if (!meta || !json_is_object(meta)) {
		weft_error("not a weft frame: no __metadata__");
		goto done;
	}
	const char *key;
	json_t *val;
	json_object_foreach(meta, key, val) {
		if (!json_is_string(val)) {
			weft_error("bad header: metadata '%.60s' is not a string", key);
			goto done;
		}
		if (weft_frame_set(f, key, json_string_value(val)) != 0)
			goto done;
	}
	const char *ver = weft_frame_get(f, WEFT_KEY_VERSION);
	if (!ver) {
		weft_error("not a weft frame: no weft.version");
		goto done;
	}
	if (strcmp(ver, "1") != 0) {
		char esc[64];
		weft_escape(ver, strlen(ver), esc, sizeof esc);
		weft_error("unsupported stream version '%s' (this reader supports %d)", esc, WEFT_STREAM_VERSION);
		goto done;
	}
	if (!weft_frame_get(f, WEFT_KEY_KIND) || !weft_frame_get(f, WEFT_KEY_CRC)) {
		weft_error("bad header: weft.kind or weft.crc32 missing");
		goto done;
	}
	size_t n = json_object_size(root) - 1;
	if (n > 0) {
		f->tensors = weft_calloc(n, sizeof *f->tensors);
		if (!f->tensors)
			goto done;
		f->tensors_cap = (int)n;
	}
	json_object_foreach(root, key, val) {
		if (strcmp(key, "__metadata__") == 0)
			continue;
		weft_tensor *x = &f->tensors[f->n_tensors];
		json_t *dt = json_object_get(val, "dtype"), *sh = json_object_get(val, "shape"),
		       *off = json_object_get(val, "data_offsets");
		int t = json_is_string(dt) ? weft_dtype_parse(json_string_value(dt)) : -1;
		if (!json_is_object(val) || t < 0 || !json_is_array(sh) || !json_is_array(off) ||
		    json_array_size(off) != 2) {
			weft_error("bad header: tensor '%.60s': missing or unknown dtype, shape or data_offsets", key);
			goto done;
		}
		if (json_array_size(sh) > WEFT_MAX_DIMS) {
			weft_error("bad header: tensor '%.60s': %zu dims > %d", key, json_array_size(sh), WEFT_MAX_DIMS);
			goto done;
		}
		x->name = weft_strndup(key, strlen(key));
		if (!x->name)
			goto done;
		f->n_tensors++;
		x->dtype = (weft_dtype)t;
		x->ndim = (int)json_array_size(sh);
		for (int d = 0; d < x->ndim; d++) {
			uint64_t v;
			if (get_int(json_array_get(sh, (size_t)d), &v) || v > INT64_MAX) {
				weft_error("bad header: tensor '%.60s': bad shape", key);
				goto done;
			}
			x->shape[d] = (int64_t)v;
		}
		uint64_t nbytes;
		if (valid_shape(x->ndim, x->shape, &x->nelem) ||
		    weft_mul_overflow(x->nelem, weft_dtype_size(x->dtype), &nbytes)) {
			weft_error("bad header: tensor '%.60s': shape overflows", key);
			goto done;
		}
		if (get_int(json_array_get(off, 0), &x->begin) || get_int(json_array_get(off, 1), &x->end) ||
		    x->end < x->begin || x->end - x->begin != nbytes) {
			weft_error("bad header: tensor '%.60s': data_offsets do not match shape and dtype", key);
			goto done;
		}
		if (x->begin % weft_dtype_size(x->dtype)) {
			weft_error("bad header: tensor '%.60s': offset %" PRIu64 " not aligned for %s", key,
				   x->begin, weft_dtype_name(x->dtype));
			goto done;
		}
	}
	/* Tensors must tile the data section exactly, as safetensors requires. */
	if (f->n_tensors > 1)
		qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_begin);
	uint64_t end = 0;
	for (int i = 0; i < f->n_tensors; i++) {
		if (f->tensors[i].begin != end) {
			weft_error("bad header: tensor '%.60s': data_offsets leave a gap or overlap", f->tensors[i].name);
			goto done;
		}
		end = f->tensors[i].end;
	}
	if (end > lim->max_data) {
		weft_error("declared data size %" PRIu64 " exceeds the limit %" PRIu64 " (WEFT_MAX_FRAME)", end,
			   lim->max_data);
		goto done;
	}
	f->data_len = end;
	rc = 0;
done:
	json_decref(root);
	return rc;
}

static int read_data(weft_reader *r, weft_frame *f)
{
	/* Grow the buffer as bytes arrive, so a truncated stream that declares
	 * a huge frame does not allocate it up front. */
	uint64_t have = 0, want = f->data_len;
	int ioerr = 0;
	if (!f->data && !(f->data = weft_malloc(1))) /* never NULL, even when empty */
		return -1;
	while (have < want) {
		uint64_t chunk = want - have < (64u << 20) ? want - have : (64u << 20);
		uint64_t need = have + chunk;
		if (need > f->data_cap) {
			uint64_t cap = f->data_cap ? f->data_cap : 4096;
			while (cap < need)
				cap *= 2;
			if (cap > want)
				cap = want;
			uint8_t *d = weft_realloc(f->data, (size_t)cap);
			if (!d)
				return -1;
			f->data = d;
			f->data_cap = cap;
		}
		size_t got = rd(r, f->data + have, (size_t)chunk, &ioerr);
		have += got;
		if (got < chunk) {
			if (ioerr)
				weft_error("read error: %s", strerror(ioerr));
			else
				weft_error("truncated: %" PRIu64 " of %" PRIu64 " data bytes", have, want);
			return -1;
		}
	}
	for (int i = 0; i < f->n_tensors; i++)
		f->tensors[i].data = f->data + f->tensors[i].begin;
	char crc[9];
	snprintf(crc, sizeof crc, "%08" PRIx32, crc_of(f->data, f->data_len));
	const char *want_crc = weft_frame_get(f, WEFT_KEY_CRC);
	if (strcmp(crc, want_crc) != 0) {
		char esc[32];
		weft_escape(want_crc, strlen(want_crc), esc, sizeof esc);
		weft_error("bad CRC32 (header says %s, data has %s)", esc, crc);
		return -1;
	}
	return 0;
}

int weft_reader_next(weft_reader *r, weft_frame **out)
{
	uint8_t len8[8];
	int ioerr = 0;
	uint64_t idx = r->count;
	*out = NULL;
	size_t got = rd(r, len8, 8, &ioerr);
	if (got == 0 && !ioerr)
		return 0;
	if (got < 8) {
		if (ioerr)
			weft_error("frame %" PRIu64 ": read error: %s", idx, strerror(ioerr));
		else
			weft_error("frame %" PRIu64 ": truncated: %zu of 8 header-length bytes", idx, got);
		return -1;
	}
	uint64_t hlen = 0;
	for (int i = 0; i < 8; i++)
		hlen |= (uint64_t)len8[i] << (8 * i);
	const int bad_len = hlen > r->lim.max_header || hlen < 8 || hlen % 8;
	if (idx == 0 && (bad_len || file_kind(len8))) {
		/* what the input is instead, when recognisable */
		const char *kind = file_kind(len8);
		if (kind)
			weft_error("frame 0: not a weft stream (the input is %s)", kind);
		else if (looks_like_text(len8, 8))
			weft_error("frame 0: not a weft stream (input starts with text)");
		else if (bad_len)
			weft_error("frame 0: not a weft stream (header length %" PRIu64 " is not a multiple of 8 in 8..%" PRIu64
				   ")", hlen, r->lim.max_header);
		if (kind || bad_len)
			return -1;
	}
	if (bad_len) {
		weft_error("frame %" PRIu64 ": header length %" PRIu64 " is not a multiple of 8 in 8..%" PRIu64
			   " (corrupt stream)", idx, hlen, r->lim.max_header);
		return -1;
	}
	weft_frame *f = weft_calloc(1, sizeof *f);
	if (!f)
		return -1;
	f->index = idx;
	f->header_len = hlen;
	f->header = weft_malloc((size_t)hlen + 1);
	if (!f->header)
		goto fail;
	got = rd(r, f->header, (size_t)hlen, &ioerr);
	if (got < hlen) {
		if (ioerr)
			weft_error("read error: %s", strerror(ioerr));
		else
			weft_error("truncated: %zu of %" PRIu64 " header bytes", got, hlen);
		goto fail;
	}
	f->header[hlen] = 0;
	if (parse_header(f, &r->lim) != 0) {
		if (idx == 0 && (f->header[0] != '{' || !weft_frame_get(f, WEFT_KEY_VERSION)))
			weft_error_prefix("not a weft stream");
		goto fail;
	}
	if (read_data(r, f) != 0)
		goto fail;
	r->count++;
	*out = f;
	return 1;
fail:
	weft_error_prefix("frame %" PRIu64, idx);
	weft_frame_free(f);
	return -1;
}

/* ---- provenance ---- */

void weft_fingerprint_hex(uint64_t fp, char buf[17]) { snprintf(buf, 17, "%016" PRIx64, fp); }

int weft_frame_check_fp(const weft_frame *f, const char *key, uint64_t expected)
{
	char want[17];
	weft_fingerprint_hex(expected, want);
	const char *have = weft_frame_get(f, key);
	const char *what = strcmp(key, WEFT_KEY_VOCAB) == 0 ? "vocabulary" : "model";
	if (!have) {
		weft_error("frame %" PRIu64 ": %s frame carries no %s fingerprint (%s)", f->index, weft_frame_kind(f),
			   what, key);
		return -1;
	}
	if (strcmp(have, want) != 0) {
		char esc[40];
		weft_escape(have, strlen(have), esc, sizeof esc);
		const char *tool = weft_frame_get(f, WEFT_KEY_TOOL);
		char tesc[80];
		weft_escape(tool ? tool : "?", tool ? strlen(tool) : 1, tesc, sizeof tesc);
		weft_error("frame %" PRIu64 ": stream is for another %s (%s %s, written by %s; this %s is %s)", f->index,
			   what, key, esc, tesc, what, want);
		return -1;
	}
	return 0;
}

/* inspect - print GGUF files and weft streams, human-readably or as JSON.
 * A stream is read frame by frame (CRC checked), so inspect also validates. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>

#include "keys.h"
#include "common.h"
#include "ggml_types.h"
#include "gguf.h"

static int opt_json, opt_values = 8, opt_no_tensors, opt_no_meta;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS] [FILE...]\n"
		"Print a GGUF file (metadata and tensor table) or a weft stream (one entry\n"
		"per frame), detected by content.  FILE '-' or none reads a stream from stdin.\n"
		"\n"
		"  -j, --json          JSON: one document per GGUF, one line per stream frame\n"
		"  -n, --values N      show at most N array elements / tensor values (default 8)\n"
		"  -T, --no-tensors    omit the tensor table\n"
		"  -M, --no-metadata   omit metadata\n"
		"  -h, --help          this help\n"
		"  -V, --version       version\n"
		"\n"
		"Exit status: 0 when every input was read completely, 1 otherwise.\n",
		prog);
}

/* ---- GGUF ---- */

static json_t *gguf_scalar_json(uint32_t type, const weft_gguf_value *v)
{
	switch (type) {
	case WEFT_GGUF_BOOL: return json_boolean(v->v.u64);
	case WEFT_GGUF_FLOAT32:
	case WEFT_GGUF_FLOAT64: return json_real(v->v.f64);
	case WEFT_GGUF_INT8: case WEFT_GGUF_INT16: case WEFT_GGUF_INT32: case WEFT_GGUF_INT64:
		return json_integer(v->v.i64);
	case WEFT_GGUF_STRING: return json_stringn_nocheck(v->v.str.ptr, (size_t)v->v.str.len);
	default: return json_integer((json_int_t)v->v.u64);
	}
}

static json_t *gguf_value_json(const weft_gguf_value *v, int limit)
{
	if (v->type != WEFT_GGUF_ARRAY)
		return gguf_scalar_json(v->type, v);
	json_t *a = json_array();
	uint64_t n = v->v.arr.n, shown = limit < 0 || (uint64_t)limit > n ? n : (uint64_t)limit;
	for (uint64_t i = 0; i < shown; i++) {
		weft_gguf_value e = {.type = v->v.arr.type};
		if (e.type == WEFT_GGUF_STRING)
			e.v.str = v->v.arr.strs[i];
		else if (e.type == WEFT_GGUF_ARRAY)
			e = v->v.arr.vals[i];
		else if (e.type == WEFT_GGUF_FLOAT32 || e.type == WEFT_GGUF_FLOAT64)
			e.v.f64 = weft_gguf_arr_f64(v, i);
		else
			e.v.i64 = weft_gguf_arr_i64(v, i);
		json_array_append_new(a, gguf_value_json(&e, limit));
	}
	return a;
}

static void print_json_value_text(const weft_gguf_value *v)
{
	json_t *j = gguf_value_json(v, opt_values);
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
	if (v->type == WEFT_GGUF_ARRAY) {
		printf("%s[%" PRIu64 "] %s%s", weft_gguf_type_name(v->v.arr.type), v->v.arr.n, s ? s : "?",
		       v->v.arr.n > (uint64_t)opt_values ? " ..." : "");
	} else {
		printf("%s %s", weft_gguf_type_name(v->type), s ? s : "?");
	}
	free(s);
	json_decref(j);
}

static const char *type_name(uint32_t t)
{
	const weft_type_info *ti = weft_type_get(t);
	return ti ? ti->name : "?";
}

static int inspect_gguf(const char *path)
{
	weft_gguf *g = weft_gguf_open(path);
	if (!g) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, weft_errmsg());
		return 1;
	}
	if (opt_json) {
		json_t *root = json_pack("{s:s, s:s, s:i, s:i, s:I, s:I}", "file", path, "format", "gguf", "version",
					 (int)g->version, "alignment", (int)g->alignment, "n_kv", (json_int_t)g->n_kv,
					 "n_tensors", (json_int_t)g->n_tensors);
		if (!opt_no_meta) {
			json_t *m = json_object();
			for (uint64_t i = 0; i < g->n_kv; i++) {
				char *k = weft_strndup(g->kv[i].key.ptr, (size_t)g->kv[i].key.len);
				json_object_set_new(m, k, gguf_value_json(&g->kv[i].val, opt_values));
				free(k);
			}
			json_object_set_new(root, "metadata", m);
		}
		if (!opt_no_tensors) {
			json_t *ts = json_array();
			for (uint64_t i = 0; i < g->n_tensors; i++) {
				const weft_gguf_tensor *t = &g->tensors[i];
				json_t *ne = json_array();
				for (uint32_t d = 0; d < t->n_dims; d++)
					json_array_append_new(ne, json_integer(t->ne[d]));
				json_array_append_new(
					ts, json_pack("{s:s%, s:s, s:o, s:I, s:I}", "name", t->name.ptr, (size_t)t->name.len,
						      "type", type_name(t->type), "ne", ne, "offset", (json_int_t)t->offset,
						      "nbytes", (json_int_t)t->nbytes));
			}
			json_object_set_new(root, "tensors", ts);
		}
		json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(root);
	} else {
		printf("%s: GGUF v%" PRIu32 ", %" PRIu64 " metadata keys, %" PRIu64 " tensors, alignment %" PRIu32 "\n",
		       path, g->version, g->n_kv, g->n_tensors, g->alignment);
		if (!opt_no_meta)
			for (uint64_t i = 0; i < g->n_kv; i++) {
				printf("  %.*s = ", (int)g->kv[i].key.len, g->kv[i].key.ptr);
				print_json_value_text(&g->kv[i].val);
				putchar('\n');
			}
		if (!opt_no_tensors) {
			uint64_t total = 0;
			printf("  %-40s %-6s %-24s %12s %12s\n", "tensor", "type", "ne", "offset", "bytes");
			for (uint64_t i = 0; i < g->n_tensors; i++) {
				const weft_gguf_tensor *t = &g->tensors[i];
				char ne[64] = "";
				size_t o = 0;
				for (uint32_t d = 0; d < t->n_dims && o < sizeof ne; d++)
					o += (size_t)snprintf(ne + o, sizeof ne - o, d ? ",%" PRId64 : "%" PRId64, t->ne[d]);
				printf("  %-40.*s %-6s %-24s %12" PRIu64 " %12" PRIu64 "\n", (int)t->name.len, t->name.ptr,
				       type_name(t->type), ne, t->offset, t->nbytes);
				total += t->nbytes;
			}
			printf("  total tensor data: %" PRIu64 " bytes\n", total);
		}
	}
	weft_gguf_close(g);
	return 0;
}

/* ---- streams ---- */

static double elem_f64(const weft_tensor *t, uint64_t i)
{
	const uint8_t *p = (const uint8_t *)t->data + i * weft_dtype_size(t->dtype);
	union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64;
		int64_t i64; float f32; double f64; } u;
	memcpy(&u, p, weft_dtype_size(t->dtype));
	switch (t->dtype) {
	case WEFT_DT_BOOL: case WEFT_DT_U8: return u.u8;
	case WEFT_DT_I8: return u.i8;
	case WEFT_DT_U16: return u.u16;
	case WEFT_DT_I16: return u.i16;
	case WEFT_DT_F16: return weft_fp16_to_fp32(u.u16);
	case WEFT_DT_BF16: return weft_bf16_to_fp32(u.u16);
	case WEFT_DT_U32: return u.u32;
	case WEFT_DT_I32: return u.i32;
	case WEFT_DT_F32: return u.f32;
	case WEFT_DT_U64: return (double)u.u64;
	case WEFT_DT_I64: return (double)u.i64;
	case WEFT_DT_F64: return u.f64;
	default: return 0;
	}
}

static json_t *frame_json(const weft_frame *f)
{
	json_t *meta = json_object(), *ts = json_array();
	for (int i = 0; i < f->n_meta; i++)
		json_object_set_new(meta, f->meta[i].key, json_string(f->meta[i].val));
	for (int i = 0; i < f->n_tensors; i++) {
		const weft_tensor *t = &f->tensors[i];
		json_t *shape = json_array(), *vals = json_array();
		for (int d = 0; d < t->ndim; d++)
			json_array_append_new(shape, json_integer(t->shape[d]));
		uint64_t shown = t->nelem < (uint64_t)opt_values ? t->nelem : (uint64_t)opt_values;
		for (uint64_t k = 0; k < shown; k++) {
			double v = elem_f64(t, k);
			int is_int = t->dtype != WEFT_DT_F16 && t->dtype != WEFT_DT_BF16 && t->dtype != WEFT_DT_F32 &&
				     t->dtype != WEFT_DT_F64;
			json_array_append_new(vals, is_int ? json_integer((json_int_t)v) : json_real(v));
		}
		json_array_append_new(ts, json_pack("{s:s, s:s, s:o, s:o}", "name", t->name, "dtype",
						    weft_dtype_name(t->dtype), "shape", shape, "values", vals));
	}
	return json_pack("{s:I, s:s, s:I, s:o, s:o}", "frame", (json_int_t)f->index, "kind", weft_frame_kind(f),
			 "bytes", (json_int_t)(8 + f->header_len + f->data_len), "metadata", meta, "tensors", ts);
}

static void print_frame_text(const weft_frame *f)
{
	printf("frame %" PRIu64 ": %s, %" PRIu64 " bytes\n", f->index, weft_frame_kind(f),
	       8 + f->header_len + f->data_len);
	if (!opt_no_meta)
		for (int i = 0; i < f->n_meta; i++)
			if (strcmp(f->meta[i].key, WEFT_KEY_KIND) != 0)
				printf("  %s = %s\n", f->meta[i].key, f->meta[i].val);
	if (opt_no_tensors)
		return;
	for (int i = 0; i < f->n_tensors; i++) {
		const weft_tensor *t = &f->tensors[i];
		printf("  %s %s [", t->name, weft_dtype_name(t->dtype));
		for (int d = 0; d < t->ndim; d++)
			printf(d ? ", %" PRId64 : "%" PRId64, t->shape[d]);
		printf("]");
		uint64_t shown = t->nelem < (uint64_t)opt_values ? t->nelem : (uint64_t)opt_values;
		for (uint64_t k = 0; k < shown; k++)
			printf(k ? " %.6g" : " = %.6g", elem_f64(t, k));
		printf("%s\n", shown < t->nelem ? " ..." : "");
	}
}

static int inspect_stream(FILE *in, const char *name)
{
	weft_reader *r = weft_reader_new(in);
	weft_frame *f;
	int rc;
	if (!r)
		die_lib(name);
	while ((rc = weft_reader_next(r, &f)) == 1) {
		if (opt_json) {
			json_t *j = frame_json(f);
			json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			putchar('\n');
			json_decref(j);
		} else {
			print_frame_text(f);
		}
		weft_frame_free(f);
	}
	const int empty = rc == 0 && weft_reader_count(r) == 0;
	if (rc < 0)
		fprintf(stderr, "%s: %s: %s\n", prog, name, weft_errmsg());
	else if (empty) /* as every tool: a stage before failed, or the wrong file */
		fprintf(stderr, "%s: %s: empty stream (no frames)\n", prog, name);
	else if (!opt_json)
		printf("%s: %" PRIu64 " frame%s\n", name, weft_reader_count(r), weft_reader_count(r) == 1 ? "" : "s");
	weft_reader_free(r);
	return rc < 0 || empty;
}

static int inspect_path(const char *path)
{
	const char *name;
	FILE *in = in_open(path, &name);
	if (in != stdin) {
		char magic[4];
		size_t got = fread(magic, 1, 4, in);
		if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
			fclose(in);
			return inspect_gguf(path);
		}
		rewind(in);
	}
	int rc = inspect_stream(in, name);
	if (in != stdin)
		fclose(in);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, 0, 'j'},        {"values", required_argument, 0, 'n'},
		{"no-tensors", no_argument, 0, 'T'},  {"no-metadata", no_argument, 0, 'M'},
		{"help", no_argument, 0, 'h'},        {"version", no_argument, 0, 'V'},
		{0, 0, 0, 0}};
	tool_init("inspect");
	int c;
	while ((c = getopt_long(argc, argv, "jn:TMhV", opts, NULL)) != -1) {
		switch (c) {
		case 'j': opt_json = 1; break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 1000000)
				die("--values: expected a count 0..1000000, got '%s'", optarg);
			opt_values = (int)v;
			break;
		}
		case 'T': opt_no_tensors = 1; break;
		case 'M': opt_no_meta = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': print_version(); break;
		default: usage(stderr); return 2;
		}
	}
	int bad = 0;
	if (optind == argc)
		bad |= inspect_path("-");
	for (int i = optind; i < argc; i++)
		bad |= inspect_path(argv[i]);
	out_close(stdout);
	return bad;
}

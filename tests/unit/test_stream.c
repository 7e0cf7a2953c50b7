/* test_stream.c - weft stream format: round trips, pass-through, and every
 * kind of broken input with its exact message. */
#include <stdint.h>
#include <zlib.h>

#include "stream.h"
#include "test.h"
#include "util.h"

/* Serialize frames to memory with the library writer. */
static uint8_t *write_frames(weft_frame **fs, int n, size_t *len)
{
	char *buf = NULL;
	FILE *m = open_memstream(&buf, len);
	for (int i = 0; i < n; i++)
		if (weft_frame_write(m, fs[i]) != 0)
			return NULL;
	fclose(m);
	return (uint8_t *)buf;
}

/* A frame by hand: header JSON (padded to 8) + data. */
static uint8_t *raw_frame(const char *json, const void *data, size_t dlen, size_t *len)
{
	size_t h = strlen(json), hp = (h + 7) / 8 * 8;
	uint8_t *b = calloc(1, 8 + hp + dlen);
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)hp >> (8 * i));
	memcpy(b + 8, json, h);
	memset(b + 8 + h, ' ', hp - h);
	if (dlen)
		memcpy(b + 8 + hp, data, dlen);
	*len = 8 + hp + dlen;
	return b;
}

static char crc_hex[9];
static const char *crc_of(const void *p, size_t n)
{
	snprintf(crc_hex, sizeof crc_hex, "%08lx", crc32(0, p, (uInt)n));
	return crc_hex;
}

/* Read all frames from memory; returns the count, or -(count+1) on error. */
static int read_all(const uint8_t *buf, size_t len, char *err, size_t errcap)
{
	weft_reader *r = weft_reader_mem(buf, len);
	weft_frame *f;
	int n = 0, rc;
	while ((rc = weft_reader_next(r, &f)) == 1) {
		n++;
		weft_frame_free(f);
	}
	weft_reader_free(r);
	if (rc < 0) {
		snprintf(err, errcap, "%s", weft_errmsg());
		return -(n + 1);
	}
	return n;
}

static weft_frame *sample_frame(void)
{
	weft_frame *f = weft_frame_new("kv");
	int32_t ids[5] = {1, -2, 3, 40000, 5};
	float k[6] = {0.5f, -1.25f, 3, 4, 5, 6};
	uint8_t b[3] = {7, 8, 9};
	double d[2] = {1e300, -2.5};
	int64_t s1[1] = {5}, s2[2] = {2, 3}, s3[1] = {3}, s4[2] = {1, 2};
	weft_frame_add(f, "ids", WEFT_DT_I32, 1, s1, ids);
	weft_frame_add(f, "bytes", WEFT_DT_U8, 1, s3, b);
	weft_frame_add(f, "k", WEFT_DT_F32, 2, s2, k);
	weft_frame_add(f, "d", WEFT_DT_F64, 2, s4, d);
	weft_frame_set(f, "weft.model", "0123456789abcdef");
	weft_frame_set(f, "layer", "3");
	return f;
}

static void round_trip(void)
{
	weft_stream_set_tool("test");
	weft_frame *fs[2] = {sample_frame(), weft_frame_new("image")};
	weft_frame_set(fs[1], "weft.image", "2");
	size_t len;
	uint8_t *buf = write_frames(fs, 2, &len);
	CHECK(buf != NULL);
	weft_reader *r = weft_reader_mem(buf, len);
	weft_frame *f;
	CHECK_EQ_INT(weft_reader_next(r, &f), 1);
	CHECK_STR(weft_frame_kind(f), "kv");
	CHECK_STR(weft_frame_get(f, "layer"), "3");
	CHECK_STR(weft_frame_get(f, "weft.version"), "1");
	CHECK_STR(weft_frame_get(f, "weft.tool"), "test " WEFT_VERSION);
	CHECK_EQ_INT(f->n_tensors, 4);
	const weft_tensor *t = weft_frame_tensor(f, "ids");
	CHECK(t && t->dtype == WEFT_DT_I32 && t->ndim == 1 && t->shape[0] == 5);
	CHECK(t && ((int32_t *)t->data)[3] == 40000 && ((int32_t *)t->data)[1] == -2);
	t = weft_frame_tensor(f, "k");
	CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && ((float *)t->data)[1] == -1.25f);
	t = weft_frame_tensor(f, "d");
	CHECK(t && ((double *)t->data)[0] == 1e300);
	for (int i = 0; i < f->n_tensors; i++) /* laid out aligned to element size */
		CHECK((uintptr_t)f->tensors[i].data % weft_dtype_size(f->tensors[i].dtype) == 0);
	t = weft_frame_tensor(f, "bytes");
	CHECK(t && ((uint8_t *)t->data)[2] == 9);
	CHECK_STR(weft_frame_get(f, "weft.crc32"), crc_of(f->data, f->data_len));
	weft_frame_free(f);
	CHECK_EQ_INT(weft_reader_next(r, &f), 1);
	CHECK_STR(weft_frame_kind(f), "image");
	CHECK_EQ_INT(f->n_tensors, 0);
	CHECK_EQ_INT(f->data_len, 0);
	weft_frame_free(f);
	CHECK_EQ_INT(weft_reader_next(r, &f), 0);
	CHECK_EQ_INT(weft_reader_count(r), 2);
	weft_reader_free(r);
	weft_frame_free(fs[0]);
	weft_frame_free(fs[1]);
	free(buf);
}

static void header_is_safetensors(void)
{
	/* 8-byte length, JSON header padded with spaces to a multiple of 8,
	 * __metadata__ first, data_offsets tiling the data section. */
	weft_frame *f = weft_frame_new("tokens");
	int32_t ids[2] = {1, 2};
	int64_t s[1] = {2};
	weft_frame_add(f, "ids", WEFT_DT_I32, 1, s, ids);
	size_t len;
	uint8_t *buf = write_frames(&f, 1, &len);
	uint64_t h = 0;
	for (int i = 0; i < 8; i++)
		h |= (uint64_t)buf[i] << (8 * i);
	CHECK_EQ_INT(h % 8, 0);
	CHECK_EQ_INT(len, 8 + h + 8);
	CHECK(memcmp(buf + 8, "{\"__metadata__\":{\"weft.kind\":\"tokens\"", 37) == 0);
	char *json = strndup((char *)buf + 8, h);
	CHECK(strstr(json, "\"ids\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}") != NULL);
	free(json);
	free(buf);
	weft_frame_free(f);
}

static void pass_through_is_byte_exact(void)
{
	weft_frame *f0 = sample_frame();
	size_t len;
	uint8_t *buf = write_frames(&f0, 1, &len);
	weft_reader *r = weft_reader_mem(buf, len);
	weft_frame *f;
	CHECK_EQ_INT(weft_reader_next(r, &f), 1);
	char *out = NULL;
	size_t olen;
	FILE *m = open_memstream(&out, &olen);
	CHECK_EQ_INT(weft_frame_write_raw(m, f), 0);
	fclose(m);
	CHECK_EQ_INT(olen, len);
	CHECK(olen == len && memcmp(out, buf, len) == 0);
	free(out);
	weft_frame_free(f);
	weft_reader_free(r);
	weft_frame_free(f0);
	free(buf);
}

static void every_truncation_fails_cleanly(void)
{
	weft_frame *fs[2] = {sample_frame(), sample_frame()};
	size_t len;
	uint8_t *buf = write_frames(fs, 2, &len);
	size_t first = len / 2; /* both frames have the same size */
	char err[1100];
	for (size_t cut = 0; cut < len; cut++) {
		int n = read_all(buf, cut, err, sizeof err);
		if (cut == 0)
			CHECK_EQ_INT(n, 0);
		else if (cut == first)
			CHECK_EQ_INT(n, 1);
		else {
			CHECK(n < 0);
			CHECK(strstr(err, cut < first ? "frame 0: truncated" : "frame 1: truncated") != NULL);
		}
	}
	CHECK_EQ_INT(read_all(buf, 5, err, sizeof err), -1);
	CHECK_STR(err, "frame 0: truncated: 5 of 8 header-length bytes");
	CHECK_EQ_INT(read_all(buf, len - 3, err, sizeof err), -2);
	char want[128];
	uint64_t dl = fs[1]->tensors[0].end; /* unused: size computed below */
	(void)dl;
	weft_reader *r = weft_reader_mem(buf, len);
	weft_frame *f;
	weft_reader_next(r, &f);
	snprintf(want, sizeof want, "frame 1: truncated: %llu of %llu data bytes", (unsigned long long)f->data_len - 3,
		 (unsigned long long)f->data_len);
	CHECK_STR(err, want);
	weft_frame_free(f);
	weft_reader_free(r);
	weft_frame_free(fs[0]);
	weft_frame_free(fs[1]);
	free(buf);
}

static void bad_crc(void)
{
	weft_frame *f0 = sample_frame();
	size_t len;
	uint8_t *buf = write_frames(&f0, 1, &len);
	char err[1100], want[200], stored[9];
	snprintf(stored, sizeof stored, "%s", weft_frame_get(f0, "weft.crc32"));
	buf[len - 1] ^= 0x40;
	CHECK_EQ_INT(read_all(buf, len, err, sizeof err), -1);
	snprintf(want, sizeof want, "frame 0: bad CRC32 (header says %s, data has ", stored);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	free(buf);
	weft_frame_free(f0);
}

/* Hand-made headers: each must fail with exactly this message. */
static void bad_headers(void)
{
	static const struct {
		const char *json, *err;
	} cases[] = {
		{"{\"__metadata__\":{\"weft.version\":\"2\",\"weft.kind\":\"tokens\",\"weft.crc32\":\"00000000\"}}",
		 "frame 0: unsupported stream version '2' (this reader supports 1)"},
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
		 "frame 0: not a weft stream: not a weft frame: no __metadata__"},
		{"{\"__metadata__\":{\"weft.kind\":\"tokens\"}}",
		 "frame 0: not a weft stream: not a weft frame: no weft.version"},
		{"[1,2,3]", "frame 0: not a weft stream: bad header: not a JSON object"},
		{"{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":\"0\"},"
		 "\"t\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}",
		 "frame 0: bad header: tensor 't': missing or unknown dtype, shape or data_offsets"},
		{"{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":\"0\"},"
		 "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}",
		 "frame 0: bad header: tensor 't': data_offsets do not match shape and dtype"},
		{"{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":\"0\"},"
		 "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
		 "frame 0: bad header: tensor 't': data_offsets leave a gap or overlap"},
		{"{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":\"0\"},"
		 "\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
		 "frame 0: bad header: tensor 't': 9 dims > 8"},
		{"{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":\"0\"},"
		 "\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
		 "frame 0: bad header: tensor 't': shape overflows"},
		{"{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":\"0\"},"
		 "\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
		 "frame 0: bad header: tensor 't': bad shape"},
		{"{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.kind\":\"y\",\"weft.crc32\":\"0\"}}",
		 "frame 0: not a weft stream: bad header JSON: duplicate object key near '\"weft.kind\"'"},
		{"{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":7}}",
		 "frame 0: bad header: metadata 'weft.crc32' is not a string"},
		{"{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\"}}",
		 "frame 0: bad header: weft.kind or weft.crc32 missing"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		size_t len;
		uint8_t *buf = raw_frame(cases[i].json, "\0\0\0\0", 4, &len);
		char err[1100];
		int n = read_all(buf, len - (strstr(cases[i].json, "data_offsets") ? 0 : 4), err, sizeof err);
		CHECK_EQ_INT(n, -1);
		CHECK_STR(err, cases[i].err);
		free(buf);
	}
}

static void oversized_and_foreign(void)
{
	char err[1100];
	/* header length 2^40 */
	uint8_t big[16] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}'};
	CHECK_EQ_INT(read_all(big, sizeof big, err, sizeof err), -1);
	CHECK_STR(err, "frame 0: not a weft stream (header length 1099511627776 is not a multiple of 8 in 8..16777216)");
	/* files piped in by mistake are named */
	const uint8_t gguf[16] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 7}, jpeg[16] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J'};
	CHECK_EQ_INT(read_all(gguf, sizeof gguf, err, sizeof err), -1);
	CHECK_STR(err, "frame 0: not a weft stream (the input is a GGUF file)");
	CHECK_EQ_INT(read_all(jpeg, sizeof jpeg, err, sizeof err), -1);
	CHECK_STR(err, "frame 0: not a weft stream (the input is a JPEG image)");
	/* a later frame whose header length is off the 8-byte grid (a flipped
	 * bit) is called corrupt, not a CRC mismatch */
	{
		size_t l1;
		uint8_t *one = raw_frame("{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":\"00000000\"}}",
					 NULL, 0, &l1);
		uint8_t *two = malloc(2 * l1);
		memcpy(two, one, l1);
		memcpy(two + l1, one, l1);
		two[l1] ^= 1;
		CHECK_EQ_INT(read_all(two, 2 * l1, err, sizeof err), -2); /* the first frame reads */
		if (strstr(err, "is not a multiple of 8 in 8..16777216 (corrupt stream)") == NULL || strncmp(err, "frame 1: ", 9))
			FAILF("flipped header length: '%s'", err);
		free(one), free(two);
	}
	/* plain text piped in by mistake */
	const char *text = "Hello, this is not a stream\n";
	CHECK_EQ_INT(read_all((const uint8_t *)text, strlen(text), err, sizeof err), -1);
	CHECK_STR(err, "frame 0: not a weft stream (input starts with text)");
	/* a declared data size above the limit is refused before any read */
	size_t len;
	uint8_t *buf = raw_frame("{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":\"0\"},"
				 "\"t\":{\"dtype\":\"U8\",\"shape\":[100000000000],\"data_offsets\":[0,100000000000]}}",
				 NULL, 0, &len);
	weft_reader *r = weft_reader_mem(buf, len);
	weft_reader_limits lim = {.max_header = 1 << 20, .max_data = 1 << 30};
	weft_reader_set_limits(r, &lim);
	weft_frame *f;
	CHECK_EQ_INT(weft_reader_next(r, &f), -1);
	CHECK_STR(weft_errmsg(),
		  "frame 0: declared data size 100000000000 exceeds the limit 1073741824 (WEFT_MAX_FRAME)");
	weft_reader_free(r);
	/* under the default (64 GiB) limit the same frame is merely truncated,
	 * and nothing near its declared size is allocated */
	free(buf);
	buf = raw_frame("{\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"x\",\"weft.crc32\":\"0\"},"
			"\"t\":{\"dtype\":\"U8\",\"shape\":[50000000000],\"data_offsets\":[0,50000000000]}}",
			NULL, 0, &len);
	CHECK_EQ_INT(read_all(buf, len, err, sizeof err), -1);
	CHECK_STR(err, "frame 0: truncated: 0 of 50000000000 data bytes");
	free(buf);
}

static void reads_foreign_safetensors_layout(void)
{
	/* Written the way Python's safetensors would (tensors sorted by name,
	 * unpadded header): readable, CRC checked. */
	float v[2] = {1.5f, -2};
	int32_t w[1] = {7};
	uint8_t data[12];
	memcpy(data, v, 8);
	memcpy(data + 8, w, 4);
	char json[512];
	snprintf(json, sizeof json,
		 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		 "\"__metadata__\":{\"weft.version\":\"1\",\"weft.kind\":\"logits\",\"weft.crc32\":\"%s\"},"
		 "\"b\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[8,12]}}",
		 crc_of(data, 12));
	size_t len;
	uint8_t *buf = raw_frame(json, data, 12, &len);
	weft_reader *r = weft_reader_mem(buf, len);
	weft_frame *f;
	CHECK_EQ_INT(weft_reader_next(r, &f), 1);
	const weft_tensor *a = weft_frame_tensor(f, "a"), *b = weft_frame_tensor(f, "b");
	CHECK(a && b && ((float *)a->data)[1] == -2 && b->ndim == 0 && b->nelem == 1 && *(int32_t *)b->data == 7);
	weft_frame_free(f);
	weft_reader_free(r);
	free(buf);
}

static void fingerprint_check(void)
{
	weft_frame *f = weft_frame_new("tokens");
	weft_frame_set(f, "weft.vocab", "00000000000000ff");
	weft_frame_set(f, "weft.tool", "tokenize 0.1.0");
	CHECK_EQ_INT(weft_frame_check_fp(f, "weft.vocab", 0xff), 0);
	CHECK_EQ_INT(weft_frame_check_fp(f, "weft.vocab", 0xfe), -1);
	CHECK_STR(weft_errmsg(), "frame 0: stream is for another vocabulary (weft.vocab 00000000000000ff, "
				 "written by tokenize 0.1.0; this vocabulary is 00000000000000fe)");
	CHECK_EQ_INT(weft_frame_check_fp(f, "weft.model", 1), -1);
	CHECK_STR(weft_errmsg(), "frame 0: tokens frame carries no model fingerprint (weft.model)");
	weft_frame_free(f);
}

static void builder_errors(void)
{
	weft_frame *f = weft_frame_new("x");
	int64_t s[2] = {2, -1};
	CHECK(weft_frame_add(f, "t", WEFT_DT_F32, 2, s, NULL) == NULL);
	CHECK_STR(weft_errmsg(), "tensor 't': bad dtype or shape");
	s[1] = 2;
	CHECK(weft_frame_add(f, "t", WEFT_DT_F32, 2, s, NULL) != NULL);
	CHECK(weft_frame_add(f, "t", WEFT_DT_F32, 2, s, NULL) == NULL);
	CHECK_STR(weft_errmsg(), "tensor 't' added twice");
	weft_frame_free(f);
}

static void write_error_reported(void)
{
	FILE *full = fopen("/dev/full", "wb");
	if (!full)
		SKIP("/dev/full not available");
	setvbuf(full, NULL, _IONBF, 0);
	weft_frame *f = sample_frame();
	CHECK_EQ_INT(weft_frame_write(full, f), -1);
	CHECK_STR(weft_errmsg(), "write error: No space left on device");
	fclose(full);
	weft_frame_free(f);
}

static void empty_tensors(void)
{
	/* zero-element tensors (and a frame of only those) round-trip, with
	 * non-NULL data pointers */
	weft_frame *f0 = weft_frame_new("x");
	int64_t s[2] = {0, 3};
	CHECK(weft_frame_add(f0, "e", WEFT_DT_F32, 2, s, NULL) != NULL);
	CHECK(f0->tensors[0].data != NULL);
	size_t len;
	uint8_t *buf = write_frames(&f0, 1, &len);
	weft_reader *r = weft_reader_mem(buf, len);
	weft_frame *f;
	CHECK_EQ_INT(weft_reader_next(r, &f), 1);
	const weft_tensor *t = weft_frame_tensor(f, "e");
	CHECK(t && t->nelem == 0 && t->data != NULL && t->shape[0] == 0 && t->shape[1] == 3);
	weft_frame_free(f);
	weft_reader_free(r);
	weft_frame_free(f0);
	free(buf);
}

static void dtype_names(void)
{
	for (int t = 0; t < WEFT_DT_COUNT; t++)
		CHECK_EQ_INT(weft_dtype_parse(weft_dtype_name((weft_dtype)t)), t);
	CHECK_EQ_INT(weft_dtype_parse("Q4_0"), -1);
	CHECK_EQ_INT(weft_dtype_size(WEFT_DT_BF16), 2);
	CHECK_EQ_INT(weft_dtype_size(WEFT_DT_I64), 8);
}

int main(void)
{
	t_suite = "stream";
	RUN(round_trip);
	RUN(header_is_safetensors);
	RUN(pass_through_is_byte_exact);
	RUN(every_truncation_fails_cleanly);
	RUN(bad_crc);
	RUN(bad_headers);
	RUN(oversized_and_foreign);
	RUN(reads_foreign_safetensors_layout);
	RUN(fingerprint_check);
	RUN(builder_errors);
	RUN(write_error_reported);
	RUN(empty_tensors);
	RUN(dtype_names);
	TEST_MAIN_END();
}

/* stream.h - the weft stream format (see man 5 weft-stream).
 *
 * A stream is a sequence of frames.  Each frame is one complete safetensors
 * blob: an 8-byte little-endian header length, a JSON header (tensor table
 * plus "__metadata__" string map), then the raw tensor data.  weft's
 * reserved metadata keys:
 *   weft.version  format version ("1")
 *   weft.kind     frame kind: tokens, image, embd, kv, logits, text, ...
 *   weft.crc32    CRC-32 (zlib) of the data section, 8 lower-case hex digits
 *   weft.tool     tool and version that wrote the frame ("tokenize 0.1.0")
 *   weft.vocab    tokenizer fingerprint (frames holding token ids)
 *   weft.model    model fingerprint (frames tied to one model's weights)
 * Readers hold one frame at a time; frames a tool does not consume are
 * written on byte-for-byte (weft_write_raw). */
#ifndef WEFT_STREAM_H
#define WEFT_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WEFT_STREAM_VERSION 1
#define WEFT_MAX_DIMS 8

typedef enum weft_dtype {
	WEFT_DT_BOOL, WEFT_DT_U8, WEFT_DT_I8, WEFT_DT_U16, WEFT_DT_I16, WEFT_DT_F16,
	WEFT_DT_BF16, WEFT_DT_U32, WEFT_DT_I32, WEFT_DT_F32, WEFT_DT_U64, WEFT_DT_I64,
	WEFT_DT_F64, WEFT_DT_COUNT
} weft_dtype;

/* safetensors dtype string ("F32") and element size. */
const char *weft_dtype_name(weft_dtype t);
size_t weft_dtype_size(weft_dtype t);
/* Parse a dtype string; -1 when unknown. */
int weft_dtype_parse(const char *s);

typedef struct weft_tensor {
	char *name;
	weft_dtype dtype;
	int ndim;
	int64_t shape[WEFT_MAX_DIMS];
	uint64_t nelem;
	uint64_t begin, end;     /* byte range within the data section */
	void *data;              /* points into the frame's data section */
} weft_tensor;

typedef struct weft_meta {
	char *key;
	char *val;
} weft_meta;

typedef struct weft_frame {
	uint64_t index;          /* 0-based position in the stream (reader) */
	int n_meta;
	weft_meta *meta;
	int n_tensors;
	weft_tensor *tensors;
	uint8_t *data;           /* data section */
	uint64_t data_len;
	char *header;            /* JSON header bytes as read (for pass-through) */
	uint64_t header_len;
	/* private: capacity bookkeeping */
	uint64_t data_cap;
	int meta_cap, tensors_cap;
} weft_frame;

/* ---- building frames ---- */

/* New empty frame of the given kind (sets weft.kind).  NULL on OOM. */
weft_frame *weft_frame_new(const char *kind);
void weft_frame_free(weft_frame *f);
/* Set (or replace) a metadata string; returns 0 / -1. */
int weft_frame_set(weft_frame *f, const char *key, const char *val);
int weft_frame_setf(weft_frame *f, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Metadata value or NULL. */
const char *weft_frame_get(const weft_frame *f, const char *key);
/* Frame kind (weft.kind) or "" */
const char *weft_frame_kind(const weft_frame *f);
/* Add a tensor, copying nbytes = nelem * dtype size from data (data may be
 * NULL: zero-filled).  Returns the tensor (its data pointer is writable until
 * the next add) or NULL. */
weft_tensor *weft_frame_add(weft_frame *f, const char *name, weft_dtype t, int ndim,
			    const int64_t *shape, const void *data);
/* Tensor by name or NULL. */
const weft_tensor *weft_frame_tensor(const weft_frame *f, const char *name);

/* ---- writing ---- */

/* Tool name recorded in weft.tool by every frame written ("tokenize"). */
void weft_stream_set_tool(const char *tool);
/* Serialize: adds weft.version, weft.crc32 and weft.tool, then writes.
 * Returns 0, or -1 with an error (write errors included). */
int weft_frame_write(FILE *out, weft_frame *f);
/* Write a frame exactly as it was read (pass-through). */
int weft_frame_write_raw(FILE *out, const weft_frame *f);

/* ---- reading ---- */

typedef struct weft_reader weft_reader;

typedef struct weft_reader_limits {
	uint64_t max_header;     /* default 16 MiB */
	uint64_t max_data;       /* default 64 GiB; env WEFT_MAX_FRAME overrides */
} weft_reader_limits;

/* Reader over a FILE (not closed by weft_reader_free).  NULL on OOM. */
weft_reader *weft_reader_new(FILE *in);
/* Reader over memory (for fuzzing and tests). */
weft_reader *weft_reader_mem(const void *buf, size_t n);
void weft_reader_set_limits(weft_reader *r, const weft_reader_limits *lim);
void weft_reader_free(weft_reader *r);
/* Read the next frame into a new frame object.
 * Returns 1 (frame read; free with weft_frame_free), 0 at a clean end of
 * stream, or -1 with an error message "frame N: ...". */
int weft_reader_next(weft_reader *r, weft_frame **out);
/* Number of frames read so far. */
uint64_t weft_reader_count(const weft_reader *r);


/* Format a 64-bit fingerprint as 16 lower-case hex digits into buf[17]. */
void weft_fingerprint_hex(uint64_t fp, char buf[17]);

/* Check that frame f carries key (e.g. "weft.vocab") equal to expected;
 * returns 0, or -1 with "frame N: stream is for another vocab/model (...)". */
int weft_frame_check_fp(const weft_frame *f, const char *key, uint64_t expected);

#endif

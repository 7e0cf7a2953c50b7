/* gguf.h - read-only, zero-copy reader for llama.cpp GGUF files (v2, v3).
 *
 * The file is mmap'ed; strings and tensor data point into the mapping and
 * stay valid until weft_gguf_close().  Everything an attacker controls
 * (counts, lengths, dims, offsets, alignment, names) is validated in
 * weft_gguf_open(); a file that opens is safe to walk.  On failure the open
 * functions return NULL with a one-line message in weft_errmsg() that names
 * the problem (the caller adds the file name). */
#ifndef WEFT_GGUF_H
#define WEFT_GGUF_H

#include <stddef.h>
#include <stdint.h>

/* Metadata value types (GGUF spec numbering). */
enum weft_gguf_type {
	WEFT_GGUF_UINT8 = 0, WEFT_GGUF_INT8 = 1, WEFT_GGUF_UINT16 = 2,
	WEFT_GGUF_INT16 = 3, WEFT_GGUF_UINT32 = 4, WEFT_GGUF_INT32 = 5,
	WEFT_GGUF_FLOAT32 = 6, WEFT_GGUF_BOOL = 7, WEFT_GGUF_STRING = 8,
	WEFT_GGUF_ARRAY = 9, WEFT_GGUF_UINT64 = 10, WEFT_GGUF_INT64 = 11,
	WEFT_GGUF_FLOAT64 = 12,
	WEFT_GGUF_NTYPES
};

/* A string inside the mapping: NOT NUL-terminated. */
typedef struct weft_gguf_str {
	const char *ptr;
	uint64_t len;
} weft_gguf_str;

typedef struct weft_gguf_value weft_gguf_value;
struct weft_gguf_value {
	uint32_t type;          /* enum weft_gguf_type */
	union {
		uint64_t u64;   /* UINT8/16/32/64, BOOL (0 or 1) */
		int64_t i64;    /* INT8/16/32/64 */
		double f64;     /* FLOAT32/64 */
		weft_gguf_str str;
		struct {
			uint32_t type;   /* element type */
			uint64_t n;      /* element count */
			const uint8_t *raw; /* scalar elements, packed little-endian, may be unaligned */
			weft_gguf_str *strs;   /* STRING elements (allocated index) */
			weft_gguf_value *vals; /* ARRAY elements (nested arrays) */
		} arr;
	} v;
};

typedef struct weft_gguf_kv {
	weft_gguf_str key;
	weft_gguf_value val;
} weft_gguf_kv;

typedef struct weft_gguf_tensor {
	weft_gguf_str name;
	uint32_t n_dims;        /* 1..4 */
	int64_t ne[4];          /* ne[0] fastest; unused dims are 1 */
	uint32_t type;          /* enum weft_ggml_type */
	uint64_t offset;        /* relative to the data section */
	uint64_t nbytes;        /* size of the tensor's data */
	const void *data;       /* into the mapping */
} weft_gguf_tensor;

typedef struct weft_gguf {
	const uint8_t *base;    /* start of the file bytes */
	uint64_t size;          /* file size */
	uint32_t version;
	uint32_t alignment;
	uint64_t data_offset;   /* file offset of the data section */
	uint64_t n_kv;
	weft_gguf_kv *kv;
	uint64_t n_tensors;
	weft_gguf_tensor *tensors;
	uint64_t header_size;   /* bytes from file start to the end of tensor infos */
	/* private */
	void *priv;
} weft_gguf;

/* Limits applied to untrusted files (override with the _ex variants; a zero
 * field keeps its default).  Every count is also checked against the bytes
 * left in the file before anything is allocated. */
typedef struct weft_gguf_limits {
	uint64_t max_kv;          /* default 1<<20 */
	uint64_t max_tensors;     /* default 1<<20 */
	uint64_t max_string;      /* default 1<<30 bytes (must also fit in file) */
	uint64_t max_array;       /* default 1<<28 elements (must also fit in file) */
	uint32_t max_depth;       /* nested array depth, default 8 */
} weft_gguf_limits;

/* Open and validate a file (mmap).  NULL + weft_errmsg() on failure. */
weft_gguf *weft_gguf_open(const char *path);
/* Parse a buffer in memory (not copied: must outlive the result). */
weft_gguf *weft_gguf_open_mem(const void *buf, size_t n);
weft_gguf *weft_gguf_open_mem_ex(const void *buf, size_t n, const weft_gguf_limits *lim);
void weft_gguf_close(weft_gguf *g);

/* Metadata lookup by key (NULL when absent). */
const weft_gguf_value *weft_gguf_get(const weft_gguf *g, const char *key);
/* Typed getters: return 0 on success, 1 when the key is absent (out is left
 * untouched), -1 on a type mismatch or out-of-range value (error set).
 * Integer getters accept any integer type whose value fits. */
int weft_gguf_get_u32(const weft_gguf *g, const char *key, uint32_t *out);
int weft_gguf_get_i64(const weft_gguf *g, const char *key, int64_t *out);
int weft_gguf_get_f32(const weft_gguf *g, const char *key, float *out);
int weft_gguf_get_bool(const weft_gguf *g, const char *key, int *out);
int weft_gguf_get_str(const weft_gguf *g, const char *key, weft_gguf_str *out);
/* Array of the given element type (any for WEFT_GGUF_NTYPES). */
int weft_gguf_get_arr(const weft_gguf *g, const char *key, uint32_t elem_type,
		      const weft_gguf_value **out);
/* Element i of a scalar array as double / int64 (no bounds check beyond i < n). */
double weft_gguf_arr_f64(const weft_gguf_value *arr, uint64_t i);
int64_t weft_gguf_arr_i64(const weft_gguf_value *arr, uint64_t i);

/* Compare a GGUF string with a C string. */
int weft_gguf_str_eq(weft_gguf_str s, const char *c);

/* Tensor lookup by name (NULL when absent). */
const weft_gguf_tensor *weft_gguf_find_tensor(const weft_gguf *g, const char *name);

/* Name of a metadata value type ("uint32", "string", ...). */
const char *weft_gguf_type_name(uint32_t type);

#endif

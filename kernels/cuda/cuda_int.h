/* cuda_int.h - the CUDA backend's host API (the .cu files of kernels/cuda), in C: no
 * CUDA type crosses it, so lib/ and tools/ can call it from C11 without
 * CUDA headers.  Internal (not installed, hidden from libweft.so).  Built
 * only by `make CUDA=1` (which defines WEFT_CUDA=1 for every object);
 * callers test WEFT_CUDA before calling.
 *
 * UNTESTED ON A GPU: this code was written and compile-checked on machines
 * without an NVIDIA GPU.  tests/gpu/test_cuda_ops.c checks every op against
 * the CPU scalar references and tests/gpu/run runs it on a GPU machine;
 * until that has run, treat results as unverified.
 *
 * Pointers named d* are device pointers (from weft_cuda_alloc or
 * weft_cuda_weight); every other pointer is host memory.  Ops are enqueued
 * on one stream in order; weft_cuda_download and weft_cuda_sync wait for
 * them.  Every function returns 0 (or a pointer) on success and -1 (NULL)
 * with weft_error("cuda: ...") on failure, a failed kernel launch
 * included.
 *
 * Semantics: each op computes what its CPU scalar reference computes
 * (kernels/ref_dot.c, kernels/matmul.c, kernels/ops.c,
 * kernels/attention.c), with the same rounding points: activations are
 * converted to the weight type's vec_dot type exactly as weft_matmul does
 * (Q8_0 / Q8_1 with fp16-rounded scales, Q8_K, F16, BF16; the quants are
 * bit-identical), integer block sums are exact, and only the order of the
 * float sums differs (float instead of double accumulation where the
 * reference uses double). */
#ifndef WEFT_CUDA_INT_H
#define WEFT_CUDA_INT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(hidden)

/* ---- devices and memory ---- */

/* Number of CUDA devices usable by this process: > 0, or 0 with the reason
 * in why (no driver, no device, driver too old ...). */
int weft_cuda_device_count(char *why, size_t why_len);
/* Use device `dev` for this process (call before any other op); resets
 * nothing.  -1 when it does not exist. */
int weft_cuda_init(int dev);
/* Name and total memory of the device in use ("" / 0 before init). */
const char *weft_cuda_device_name(void);
size_t weft_cuda_device_memory(void);

void *weft_cuda_alloc(size_t bytes);
void weft_cuda_free(void *d);
int weft_cuda_upload(void *d, const void *host, size_t bytes);
int weft_cuda_download(void *host, const void *d, size_t bytes);
int weft_cuda_memset0(void *d, size_t bytes);
/* Device-to-device copy. */
int weft_cuda_copy(void *d_dst, const void *d_src, size_t bytes);
int weft_cuda_sync(void);

/* The device copy of a weight tensor (bytes at host, e.g. in the mapped
 * GGUF): uploaded on first request, then the same device pointer for the
 * same host pointer (the size must match).  weft_cuda_weights_free
 * releases them all. */
const void *weft_cuda_weight(const void *host, size_t bytes);
void weft_cuda_weights_free(void);
/* Bytes of weights uploaded so far. */
size_t weft_cuda_weights_bytes(void);

/* ---- matrix multiplication (kernels/cuda/cuda_matmul.cu) ---- */

/* Whether weft_cuda_matmul supports weight type wtype: F32, F16, BF16,
 * Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K. */
int weft_cuda_matmul_supported(uint32_t wtype);
/* dY[t*ldy + o] = sum_i W[o][i] * dX[t*k + i] for t < T, o < n_out, as
 * weft_matmul_ex (flags: WEFT_MATMUL_F32_ACT, kernels.h).  dW: n_out rows of
 * weft_type_row_bytes(wtype, k) bytes, dequantized in the kernel.  T <= 8:
 * the mat-vec kernel (one warp per weight row, the row decoded once for
 * all tokens); larger T: the same kernel over tiles of 8 tokens. */
int weft_cuda_matmul(uint32_t wtype, const void *dW, int64_t k, int64_t n_out, const float *dX, int64_t T,
		     float *dY, int64_t ldy, unsigned flags);

/* ---- row ops (kernels/cuda/cuda_ops.cu); rows of n floats, contiguous ---- */

/* weft_rmsnorm / weft_layernorm on each of `rows` rows (dw, db may be NULL). */
int weft_cuda_rmsnorm(float *dy, const float *dx, const float *dw, int64_t rows, int64_t n, float eps);
int weft_cuda_layernorm(float *dy, const float *dx, const float *dw, const float *db, int64_t rows, int64_t n,
			float eps);
/* weft_rope on T tokens of n_heads heads of head_dim floats (dx
 * [T][n_heads][head_dim], in place), token t at position dpos[t] (device
 * int32). */
int weft_cuda_rope(float *dx, int64_t T, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const int32_t *dpos,
		   float freq_base, float freq_scale, int neox);
/* weft_softmax on each row. */
int weft_cuda_softmax(float *dx, int64_t rows, int64_t n);
/* Element-wise over n floats (as kernels.h): */
int weft_cuda_swiglu(float *dy, const float *dgate, const float *dup, int64_t n);
int weft_cuda_silu(float *dx, int64_t n);
int weft_cuda_gelu(float *dx, int64_t n);           /* ggml's f16-table tanh GELU (weft_gelu) */
int weft_cuda_gelu_quick(float *dx, int64_t n);     /* the f16-table quick GELU (weft_gelu_quick) */
int weft_cuda_gelu_f32(float *dx, int64_t n);       /* float tanh GELU (weft_gelu_f32) */
int weft_cuda_gelu_quick_f32(float *dx, int64_t n); /* weft_gelu_quick_f32 */
int weft_cuda_gelu_erf(float *dx, int64_t n);       /* exact erf GELU (weft_gelu_erf) */
int weft_cuda_add(float *dy, const float *dx, int64_t n);

/* ---- attention (kernels/cuda/cuda_attn.cu) ---- */

/* weft_attention's plain layouts (kernels.h: weft_attn_args without mass,
 * key channels, KIVI or views), with device Q, K, V, out and host kv_len /
 * kv_head_off (copied per call).  kv_type: WEFT_TYPE_F16 or WEFT_TYPE_F32;
 * hd <= 256.  Query t of head h sees the first kv_len[g] - T + t + 1 rows
 * of KV head g = h / (n_head / n_head_kv) (the last T rows are the T query
 * tokens).  T <= 8: split-K over the cache (partial softmax states merged
 * by a second kernel); larger T: tiles of query rows over tiles of keys in
 * shared memory, online softmax; never a T x L matrix. */
typedef struct weft_cuda_attn {
	const float *dQ;         /* [T][n_head][hd] */
	const void *dK, *dV;     /* rows of kv_type, row_bytes = hd * (2 or 4) */
	uint32_t kv_type;
	int64_t kv_head_rows;    /* rows between KV heads (when kv_head_off is NULL) */
	const int32_t *kv_len;   /* host [n_head_kv] */
	const int64_t *kv_head_off; /* host [n_head_kv] or NULL */
	int64_t T;
	int n_head, n_head_kv, hd;
	float scale;
	float *dout;             /* [T][n_head][hd] */
} weft_cuda_attn;
int weft_cuda_attention(const weft_cuda_attn *a);

/* ---- the forward pass's helpers (kernels/cuda/cuda_kv.cu) ---- */

/* dy[r*n + i] += db[i] for r < rows (a bias on every row). */
int weft_cuda_add_rows(float *dy, const float *db, int64_t rows, int64_t n);
/* Store n tokens' rows dsrc [n][n_head_kv][hd] (float) into a device KV
 * cache of type F16 or F32 (rows of hd values): token t of head h to row
 * row0[h] + t (row0: host [n_head_kv], copied per call). */
int weft_cuda_kv_store(void *dcache, uint32_t type, const float *dsrc, int64_t n, int n_head_kv, int hd,
		       const int64_t *row0);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif

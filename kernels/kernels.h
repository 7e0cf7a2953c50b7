/* kernels.h - weft's compute kernels behind one backend table (backend.h).
 *
 * Every op has a portable scalar C reference (kernels/ref_*.c).  Optimized
 * variants (AVX2+FMA+F16C, AVX-512, VNNI, BF16) are picked once at run time
 * from CPUID; WEFT_KERNELS=scalar|avx2|avx512 forces a level (for tests and
 * benchmarks).  Every optimized kernel is tested against its reference
 * (tests/unit/test_matmul.c, test_ops.c).
 *
 * Layout conventions: row-major; a weight matrix is a GGUF tensor with
 * ne[0] = k (input features, contiguous) and ne[1] = n_out rows, in any
 * ggml type weft supports; activations are float32. */
#ifndef WEFT_KERNELS_H
#define WEFT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- threads ---- */

typedef struct weft_pool weft_pool;

/* A pool of n_threads workers (the caller counts as one); n_threads <= 0
 * means one per online CPU.  NULL + weft_error on failure. */
weft_pool *weft_pool_new(int n_threads);
void weft_pool_free(weft_pool *p);
int weft_pool_size(const weft_pool *p);
/* Run fn(ctx, task, n_tasks) for every task in [0, n_tasks), spread across
 * the pool; returns when all have finished.  p may be NULL (runs inline). */
void weft_pool_run(weft_pool *p, int n_tasks, void (*fn)(void *ctx, int task, int n_tasks), void *ctx);

/* ---- the backend in use ---- */

/* Name of the level in use: "scalar", "avx2", "avx512" (AVX-512 F/BW/VL,
 * plus "+vnni", "+bf16" when used), or "llama.cpp" (see
 * weft_kernels_force). */
const char *weft_kernels_level(void);
/* Force a level for this process ("scalar", "avx2", "avx512",
 * "llama.cpp"), or with NULL the best level this CPU has; returns 0, or -1
 * when the CPU lacks it.  Call before any kernel runs (or between runs).  "llama.cpp" (CPUs with the AVX-512 level) reproduces the
 * arithmetic of llama.cpp's CPU backend built for such a CPU, bit for bit,
 * for the cases weft_kernels_llamacpp_exact() and llamacpp_avx512.c list. */
int weft_kernels_force(const char *level);
/* Whether the "llama.cpp" level reproduces llama.cpp's matmul for weight
 * type wtype (Q4_0, Q4_1, Q8_0). */
int weft_kernels_llamacpp_exact(uint32_t wtype);

/* ---- matrix multiplication ---- */

/* Whether weft_matmul supports weight type wtype (F32, F16, BF16, Q8_0,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K at least). */
int weft_matmul_supported(uint32_t wtype);

/* Y[t*ldy + o] = sum_i W[o][i] * X[t*k + i]   for t < T, o < n_out.
 * W: n_out rows of k values of type wtype, each row
 * weft_type_row_bytes(wtype, k) bytes, contiguous.  As llama.cpp's CPU
 * backend does, the activations are first converted to the weight type's
 * vec_dot type (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for
 * K-quants, F16 for F16, BF16 for BF16, F32 for F32), so results match
 * llama.cpp's up to float summation order.  Returns 0, or -1 with an error
 * (unsupported type, k not a multiple of the block, out of memory). */
int weft_matmul(weft_pool *p, uint32_t wtype, const void *W, int64_t k, int64_t n_out,
		const float *X, int64_t T, float *Y, int64_t ldy);

/* The same with flags: WEFT_MATMUL_F32_ACT keeps the activations in
 * float32 for F16 and BF16 weights (no rounding to the vec_dot type: what
 * transformers computes, rather than llama.cpp); no effect on other
 * types. */
#define WEFT_MATMUL_F32_ACT 1u
int weft_matmul_ex(weft_pool *p, uint32_t wtype, const void *W, int64_t k, int64_t n_out, const float *X,
		   int64_t T, float *Y, int64_t ldy, unsigned flags);

/* ---- element-wise and row ops (single thread; callers split work) ---- */

/* y = x / sqrt(mean(x^2) + eps) * w   (w may be NULL: no scale). */
void weft_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
/* y = (x - mean) / sqrt(var + eps) * w + b   (w, b may be NULL). */
void weft_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n, float eps);
/* Rotary embedding in place on n_heads heads of head_dim floats at position
 * pos, rotating the first rot_dim dims of each head.  neox = 0: pairs
 * (2i, 2i+1) (llama.cpp "normal", used for arch llama); neox = 1: pairs
 * (i, i + rot_dim/2) (qwen2).  theta_i = pos * freq_scale * base^(-2i/rot_dim). */
void weft_rope(float *x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos,
	       float freq_base, float freq_scale, int neox);
/* In-place softmax of n floats. */
void weft_softmax(float *x, int64_t n);
/* y = silu(gate) * up  (SwiGLU). */
void weft_swiglu(float *y, const float *gate, const float *up, int64_t n);
/* In place: tanh-approximation GELU; quick GELU x*sigmoid(1.702x); SiLU. */
void weft_gelu(float *x, int64_t n);
void weft_gelu_quick(float *x, int64_t n);
void weft_silu(float *x, int64_t n);
/* The same at float precision (no f16 tables), as transformers computes
 * them: tanh-GELU, quick GELU, and exact erf-GELU. */
void weft_gelu_f32(float *x, int64_t n);
void weft_gelu_quick_f32(float *x, int64_t n);
void weft_gelu_erf(float *x, int64_t n);
/* y += x */
void weft_add(float *y, const float *x, int64_t n);
/* float32 <-> IEEE half, n values */
void weft_f32_to_f16(uint16_t *y, const float *x, int64_t n);
void weft_f16_to_f32(float *y, const uint16_t *x, int64_t n);

/* C[i][j] = sum_k A[i][k] B[k][j] for i < M, j < N: float32, row-major with
 * leading dimensions lda, ldb, ldc; single thread (callers split work).
 * Each element sums over k in order, so results do not depend on the
 * split.  Used by the vision encoders' attention. */
void weft_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
		int64_t ldc);

/* ---- attention ---- */

/* Causal multi-head attention with grouped KV heads, never materialising
 * the T x L score matrix (online softmax, one query row at a time).
 *
 *   Q     [T][n_head][hd] float32: the queries of T consecutive new tokens
 *   K, V  rows of hd values of ggml type kv_type (the KV cache's storage
 *         type): row j of KV head g at K + (g * kv_head_rows + j) *
 *         weft_type_row_bytes(kv_type, hd) bytes (V likewise).  Every
 *         level reads F16 (IEEE half) rows; the scalar and AVX-512 levels
 *         read F32 rows; the scalar references dequantize any type
 *         weft_dequantize_row reads (Q8_0 ...), and a level lacking a
 *         kernel for kv_type falls back to them
 *   kv_len[g]  keys held for KV head g; the LAST T of them belong to the T
 *         query tokens, in order, so query t sees the first kv_len[g]-T+t+1
 *   out   [T][n_head][hd] float32
 *   mass  optional [n_head_kv][mass_stride]: mass[g][j] += softmax weight
 *         query t of head h (in group g) gives key j, summed over t and h
 *         (attention received: H2O / FastV-style scores); NULL to skip.
 * Query head h uses KV head h / (n_head / n_head_kv); scale is usually
 * 1/sqrt(hd).  Work is split over heads and queries across the pool. */
typedef struct weft_attn_args {
	const float *Q;
	const void *K, *V;      /* rows of kv_type */
	uint32_t kv_type;       /* WEFT_TYPE_F16, WEFT_TYPE_F32, ... (ggml_types.h) */
	int64_t kv_head_rows;   /* rows between KV heads */
	const int32_t *kv_len;  /* [n_head_kv] */
	int64_t T;
	int n_head, n_head_kv, hd;
	float scale;
	float *out;
	float *mass;
	int64_t mass_stride;
} weft_attn_args;
void weft_attention(weft_pool *p, const weft_attn_args *a);

#endif

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
 * 1/sqrt(hd).  Work is split over heads and queries across the pool.
 *
 * Compressed caches (lib/kv.h, kvcompress) add, each optional (NULL / 0:
 * absent):
 *   kv_head_off  [n_head_kv]: row j of KV head g is row kv_head_off[g] + j
 *         (heads of different capacities: a head-wise compressed cache)
 *         instead of g * kv_head_rows + j
 *   k_dim, k_chan  keys of k_dim < hd channels (ThinK): a key row holds
 *         channels k_chan[g * k_dim + i] of the key, i < k_dim (increasing),
 *         the others dropped; the query is read at those channels
 *   kivi  each head's oldest rows quantized (weft_attn_kivi), attended
 *         before the plain rows: kv_len[g] counts the plain rows only
 *   view  rows shared with another layer (MiniCache), each scaled
 *         (weft_attn_view), attended before the plain rows
 * A level's attn_ext flags (ops_int.h) name the layouts its kernels read;
 * the driver sends the others to the scalar references. */
typedef struct weft_attn_kivi weft_attn_kivi;
/* Rows of another layer's cache (same storage type, full keys), entry e of
 * KV head g being that layer's row idx[g][e] of head g, its key times
 * ks[g][e] and its value times vs[g][e]. */
typedef struct weft_attn_view {
	const void *K, *V;
	const int64_t *head_off;          /* the other layer's kv_head_off */
	const int32_t *n;                 /* [n_head_kv] entries */
	const int32_t *const *idx;
	const float *const *ks, *const *vs;
} weft_attn_view;
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
	/* compressed layouts (above) */
	const int64_t *kv_head_off;
	int k_dim;
	const int32_t *k_chan;
	const weft_attn_kivi *kivi;
	const weft_attn_view *view;
} weft_attn_args;
void weft_attention(weft_pool *p, const weft_attn_args *a);

/* ---- KIVI-quantized KV rows (KIVI, Liu et al. 2024) ----
 *
 * Keys are quantized per channel over blocks of WEFT_KIVI_BLOCK rows, values
 * per row over groups of vgroup channels, asymmetrically with b = 2, 4 or 8
 * bits: x ~ scale * code + min, code in 0 .. 2^b - 1, scale and min IEEE half.
 *   key block (kd channels, 32 rows): scale[kd], min[kd] (halves), then per
 *             channel the 32 rows' codes packed (below): weft_kivi_kblock_bytes
 *   value row (hd channels): per group of vgroup channels scale, min
 *             (halves) and the group's codes packed: weft_kivi_vrow_bytes
 * n codes of b bits pack into n*b/8 bytes, 8/b codes per byte: byte i holds
 * codes i + j*(n*b/8) in bits j*b .. j*b+b-1 (for 4 bits: codes i and
 * i+16 of 32, as ggml's Q4_0), so a SIMD kernel unpacks whole vectors with
 * shifts and masks.
 * GEAR (Kang et al. 2024) adds to the quantized rows a low-rank residual
 * (row r: sum_i A[r][i] B[i][:], A as halves) and sparse outliers. */
#define WEFT_KIVI_BLOCK 32
typedef struct weft_kivi_outlier {
	int32_t row;            /* quantized row (increasing) */
	uint16_t chan;          /* channel (of the stored key row / value row) */
	uint16_t val;           /* the value to add, IEEE half */
} weft_kivi_outlier;
struct weft_attn_kivi {
	int kbits, vbits, vgroup;
	const int32_t *n;                 /* [n_head_kv] rows quantized (a multiple of 32) */
	const uint8_t *const *kb;         /* [n_head_kv]: n/32 key blocks */
	const uint8_t *const *vb;         /* [n_head_kv]: n value rows */
	/* GEAR corrections: rank 0 and no outliers for plain KIVI */
	int rank;
	const int32_t *lr_n;              /* [n_head_kv] rows having low-rank terms (<= n) */
	const uint16_t *const *ka, *const *va;   /* [n_head_kv]: A [lr_n][rank] halves */
	const float *const *kbasis, *const *vbasis; /* [n_head_kv]: B [rank][kd or hd] */
	const int32_t *ko_n, *vo_n;       /* [n_head_kv] outliers */
	const weft_kivi_outlier *const *ko, *const *vo;
};
static inline size_t weft_kivi_kblock_bytes(int kd, int bits)
{
	return (size_t)kd * (4 + (size_t)WEFT_KIVI_BLOCK * (size_t)bits / 8);
}
static inline size_t weft_kivi_vrow_bytes(int hd, int vgroup, int bits)
{
	return (size_t)(hd / vgroup) * (4 + (size_t)vgroup * (size_t)bits / 8);
}
/* Quantize 32 key rows (row r at k + r * ld, kd channels) into a block, and
 * back (out [32][kd]).  -1 (nothing written) when a value is not finite. */
int weft_kivi_quant_keys(const float *k, int64_t ld, int kd, int bits, uint8_t *blk);
void weft_kivi_dequant_keys(const uint8_t *blk, int kd, int bits, float *out);
/* One value row of hd channels (groups of vgroup, which divides hd). */
int weft_kivi_quant_vrow(const float *v, int hd, int vgroup, int bits, uint8_t *row);
void weft_kivi_dequant_vrow(const uint8_t *row, int hd, int vgroup, int bits, float *out);
/* One group: n values x[i * stride] -> min *mh and step *sh (halves: every
 * value within half a step of sh * code + mh) and n codes of b bits (one
 * per byte); -1 for a value that is not finite or beyond the half range. */
int weft_kivi_quant_group(const float *x, int64_t stride, int n, int bits, uint16_t *mh, uint16_t *sh, uint8_t *codes);
/* Pack / unpack n codes of b bits (n*b a multiple of 8). */
void weft_kivi_pack(const uint8_t *codes, int n, int bits, uint8_t *dst);
void weft_kivi_unpack(const uint8_t *src, int n, int bits, uint8_t *codes);

#endif

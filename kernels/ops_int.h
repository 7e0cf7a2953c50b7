/* ops_int.h - internals of the float ops and attention (ops*.c,
 * attention*.c).  Not installed.
 *
 * Each SIMD level provides one table of function pointers, which
 * becomes the ops of its backend (backend.h); the public weft_rmsnorm()
 * etc. call through the backend in use.  Tests call each level's table
 * directly via weft_backend_at(). */
#ifndef WEFT_OPS_INT_H
#define WEFT_OPS_INT_H

#include <stdint.h>

#include "ggml_types.h"
#include "kernels.h"

/* Internal: hidden from libweft.so's exports. */
#pragma GCC visibility push(hidden)

/* Largest head_dim weft_attention accepts (its accumulators live on the stack). */
#define WEFT_ATTN_MAX_HD 1024

typedef struct weft_ops_vt {
	const char *name;
	void (*rmsnorm)(float *y, const float *x, const float *w, int64_t n, float eps);
	void (*layernorm)(float *y, const float *x, const float *w, const float *b, int64_t n, float eps);
	void (*rope)(float *x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos,
		     float freq_base, float freq_scale, int neox);
	void (*softmax)(float *x, int64_t n);
	void (*swiglu)(float *y, const float *gate, const float *up, int64_t n);
	void (*gelu)(float *x, int64_t n);
	void (*gelu_quick)(float *x, int64_t n);
	void (*silu)(float *x, int64_t n);
	/* x = x / (1 + exp(-(a x + c x^3))): tanh-GELU, quick GELU, SiLU at
	 * float precision (weft_gelu_f32 etc.) */
	void (*xsigmoid)(float *x, int64_t n, float a, float c);
	void (*add)(float *y, const float *x, int64_t n);
	void (*f32_to_f16)(uint16_t *y, const float *x, int64_t n);
	void (*f16_to_f32)(float *y, const uint16_t *x, int64_t n);
	/* Attention rows t0 <= t < t1 of query head h (see weft_attention).
	 * When st is not NULL, st[2*(t - t0)] = the row's max scaled score and
	 * st[2*(t - t0) + 1] = its softmax denominator (0 when the row sees no
	 * key). */
	void (*attn_rows)(const weft_attn_args *a, int h, int64_t t0, int64_t t1, float *st);
	/* mass[g][j] += the normalized weight of key j, for j0 <= j < j1 (at
	 * most WEFT_MASS_BLOCK), from every query row t0 <= t < t1 of every head
	 * of group g; st as written by attn_rows, laid out
	 * st[((t - t0) * n_head + h) * 2 + {0,1}].  Sums over h, then t. */
	void (*attn_mass)(const weft_attn_args *a, int g, int64_t j0, int64_t j1, int64_t t0, int64_t t1,
			  const float *st);
	/* optional: rows t0 <= t < t1 of every query head of KV head g at once,
	 * no statistics (KIVI caches: the quantized prefix is read once for the
	 * group); NULL: attn_rows per head */
	void (*attn_rows_grp)(const weft_attn_args *a, int g, int64_t t0, int64_t t1);
	/* the K/V row types attn_rows / attn_mass read: bit t for ggml type t
	 * (weft_attn_args.kv_type); other types go to the scalar references */
	uint64_t attn_kv_types;
	/* the compressed layouts (weft_attn_args) attn_rows / attn_mass read:
	 * WEFT_ATTN_EXT_* bits; every level reads kv_head_off */
	unsigned attn_ext;
	/* weft_sgemm (sgemm*.c) */
	void (*sgemm)(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
		      float *C, int64_t ldc);
} weft_ops_vt;

#define WEFT_SGEMM_DECL(sfx)                                                                       \
	void weft_sgemm_##sfx(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, \
			      int64_t ldb, float *C, int64_t ldc);
/* The body of a SIMD weft_sgemm: column panels of COLS, row tiles of 6 (then
 * the remaining 1..5 rows) through the file's tile(R, K, A, lda, B, ldb, C,
 * ldc, ncol). */
#define WEFT_SGEMM_DRIVER(COLS)                                                                       \
	for (int64_t j = 0; j < N; j += (COLS)) {                                                     \
		const int64_t ncol = N - j < (COLS) ? N - j : (COLS);                                 \
		int64_t i = 0;                                                                        \
		for (; i + 6 <= M; i += 6)                                                            \
			tile(6, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, ncol);         \
		switch (M - i) {                                                                      \
		case 5: tile(5, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, ncol); break; \
		case 4: tile(4, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, ncol); break; \
		case 3: tile(3, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, ncol); break; \
		case 2: tile(2, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, ncol); break; \
		case 1: tile(1, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, ncol); break; \
		default: break;                                                                       \
		}                                                                                     \
	}

WEFT_SGEMM_DECL(ref)
WEFT_SGEMM_DECL(avx2)
WEFT_SGEMM_DECL(avx512)

#define WEFT_MASS_BLOCK 256

extern const weft_ops_vt weft_ops_scalar_vt, weft_ops_avx2_vt, weft_ops_avx512_vt;

/* The attention kernels of each level (attention*.c). */
#define WEFT_ATTN_DECL(sfx)                                                                          \
	void weft_attn_rows_##sfx(const weft_attn_args *a, int h, int64_t t0, int64_t t1, float *st); \
	void weft_attn_mass_##sfx(const weft_attn_args *a, int g, int64_t j0, int64_t j1, int64_t t0,   \
				  int64_t t1, const float *st);
WEFT_ATTN_DECL(ref)
WEFT_ATTN_DECL(avx2)
WEFT_ATTN_DECL(avx512)
void weft_attn_rows_grp_avx512(const weft_attn_args *a, int g, int64_t t0, int64_t t1);

/* Overrides of llama.cpp's level (llamacpp_avx512.c) on a copy of the
 * AVX-512 table. */
void weft_ops_llamacpp_init(weft_ops_vt *vt);

/* weft_attention with the kernels of table vt (for tests). */
void weft_attention_vt(weft_pool *p, const weft_attn_args *a, const weft_ops_vt *vt);

/* ggml's GELU tables: entry i = fp16(gelu(fp16 value i)), with one padding
 * entry (65537 in all, so a 32-bit gather at index 65535 stays inside). */
const uint16_t *weft_gelu_table(void);
const uint16_t *weft_gelu_quick_table(void);

/* cos/sin of rope pairs i0 <= i < i1 into cs[2*(i-i0)], cs[2*(i-i0)+1],
 * with theta computed as ggml does (powf(base, -2/rot_dim), iterated
 * products from pos; see ops.c). */
void weft_rope_cache(float *cs, int64_t i0, int64_t i1, int64_t rot_dim, int64_t pos, float freq_base,
		     float freq_scale);
#define WEFT_ROPE_CHUNK 128 /* pairs per weft_rope_cache call in the kernels */
/* The scalar RoPE loop (ops.c's reference, the llama.cpp level's): each
 * pair (p0, p1) of each head rotated by rot with its cos c and sin s;
 * pairs adjacent, or NEOX halves. */
void weft_rope_pairs(float *x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float freq_base,
		     float freq_scale, int neox, void (*rot)(float *p0, float *p1, float c, float s));

#define WEFT_ATTN_EXT_KCHAN 1u /* channel-pruned keys (k_dim, k_chan) */
#define WEFT_ATTN_EXT_KIVI 2u  /* a KIVI-quantized prefix without GEAR terms */
#define WEFT_ATTN_EXT_GEAR 4u  /* ... with them */
#define WEFT_ATTN_EXT_VIEW 8u  /* rows shared with another layer (view) */

/* The layouts a needs beyond plain rows (WEFT_ATTN_EXT_* bits). */
static inline unsigned weft_attn_ext_needed(const weft_attn_args *a)
{
	unsigned e = a->k_chan ? WEFT_ATTN_EXT_KCHAN : 0;
	if (a->kivi)
		e |= a->kivi->rank > 0 || a->kivi->ko || a->kivi->vo ? WEFT_ATTN_EXT_GEAR : WEFT_ATTN_EXT_KIVI;
	if (a->view)
		e |= WEFT_ATTN_EXT_VIEW;
	return e;
}

/* Values per key row: k_dim for channel-pruned keys, else hd. */
static inline int weft_attn_kd(const weft_attn_args *a)
{
	return a->k_chan ? a->k_dim : a->hd;
}

/* Bytes per row of n values of a's cache type. */
static inline int64_t weft_attn_bytes(const weft_attn_args *a, int n)
{
	return a->kv_type == 0 ? 4 * (int64_t)n : a->kv_type == 1 ? 2 * (int64_t)n
	     : (int64_t)weft_type_row_bytes(a->kv_type, (uint64_t)n);
}

/* Bytes per V row (and per K row of an unpruned cache). */
static inline int64_t weft_attn_row_bytes(const weft_attn_args *a)
{
	return weft_attn_bytes(a, a->hd);
}

/* Index of KV head g's first row (kv_head_off, or g * kv_head_rows). */
static inline int64_t weft_attn_head0(const weft_attn_args *a, int g)
{
	return a->kv_head_off ? a->kv_head_off[g] : (int64_t)g * a->kv_head_rows;
}

/* Row j of KV head g of base (a->K or a->V). */
static inline const void *weft_attn_row(const weft_attn_args *a, const void *base, int g, int64_t j)
{
	const int n = base == a->K ? weft_attn_kd(a) : a->hd;
	return (const char *)base + (weft_attn_head0(a, g) + j) * weft_attn_bytes(a, n);
}

/* The query q read at the key's channels: q itself, or gathered into buf. */
static inline const float *weft_attn_qk(const weft_attn_args *a, int g, const float *q, float *buf)
{
	if (!a->k_chan)
		return q;
	const int32_t *c = a->k_chan + (int64_t)g * a->k_dim;
	for (int i = 0; i < a->k_dim; i++)
		buf[i] = q[c[i]];
	return buf;
}

/* The scalar reference over a KIVI (or GEAR) prefix of KV head g for one
 * query: updates the online softmax state (*m, *l, acc[hd]) as attn_rows
 * does for plain rows (attention.c). */
void weft_attn_kivi_ref(const weft_attn_args *a, int g, const float *qk, float *m, float *l, float *acc);
/* The same over a view (rows shared with another layer). */
void weft_attn_view_ref(const weft_attn_args *a, int g, const float *q, float *m, float *l, float *acc);

/* Visible keys of query row t with kv head g: kv_len[g] - T + t + 1 (<= 0:
 * none). */
static inline int64_t weft_attn_visible(const weft_attn_args *a, int g, int64_t t)
{
	return (int64_t)a->kv_len[g] - a->T + t + 1;
}

#pragma GCC visibility pop

#endif

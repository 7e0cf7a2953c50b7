/* matmul_int.h - internals shared by the matmul engine (matmul.c,
 * backend.c, ref_dot.c, dot_avx2.c, dot_avx512.c).  Not installed.
 *
 * weft_matmul converts the activations once per call into a weft_qact (the
 * weight type's vec_dot type, as llama.cpp's quantize_row_q8_0 / q8_1 /
 * q8_K would, but laid out for SIMD), then calls one row kernel per
 * (weight row, group of up to WEFT_NT tokens). */
#ifndef WEFT_MATMUL_INT_H
#define WEFT_MATMUL_INT_H

#include <stddef.h>
#include <stdint.h>

/* Internal: hidden from libweft.so's exports. */
#pragma GCC visibility push(hidden)

#define WEFT_NT 4 /* tokens per kernel call, at most */

/* Converted activations of T tokens of k values.  Token t's arrays start
 * at q + t*q_stride etc.; q_stride is a multiple of 64 bytes.
 *   Integer vec_dot types (Q8_0, Q8_1, Q8_K):
 *     q[k]      int8 quants
 *     dl[k/4]   the block scale of each group of 4 values (lane-expanded:
 *               fp16-rounded d for Q8_0/Q8_1, float d for Q8_K)
 *     corr[k/4] -c * (sum of the 4 quants), c = the weight type's zero
 *               offset (8 Q4_0, 16 Q5_0, 128 Q8_0, 32 Q6_K), else 0
 *     bs[k/32]  int sum of each 32 quants
 *     s[k/32]   Q8_1 only: fp16(d * bs), as ggml's block_q8_1.s
 *     st        Q8_1 and Q8_K, GEMM path only: s (Q8_1) or bs as float
 *               (Q8_K) of tokens 4i .. 4i+3 interleaved: token t's value
 *               for group g at st[(t/4*4) * g_stride + 4g + t%4] (lanes
 *               past the last token are 0)
 *   Float vec_dot types (F32, F16, BF16):
 *     f[k]      the activations rounded to the vec_dot type, as float
 *     h[k]      BF16 only, for levels with bf16 dot-product instructions:
 *               the same values as bf16, zero-padded to h_stride (a
 *               multiple of 32); NULL otherwise */
typedef struct weft_qact {
	int64_t k;
	int8_t *q;
	float *dl, *s, *st, *f;
	uint16_t *h;
	int32_t *corr, *bs;
	int64_t q_stride, l_stride, g_stride, f_stride, h_stride; /* elements per token */
} weft_qact;

/* One weight row (k values of the kernel's type, at w) times tokens
 * t0 .. t0+nt-1 (nt <= WEFT_NT): y[t * ldy] = dot(w, token t0 + t). */
typedef void (*weft_dot_fn)(int64_t k, const uint8_t *w, const weft_qact *a, int64_t t0, int nt,
			    float *y, int64_t ldy);

/* Rows r0 .. r1-1 of W (rb bytes apart) times tokens t0 .. t1-1:
 * Y[t * ldy + r] = dot(row r, token t).  Each output must come out bit
 * for bit as the level's dot kernel computes it, whatever block it falls
 * in (thread counts, and a token alone or in a batch, give identical
 * results).  t0 is a multiple of 4 (weft_qact.st). */
typedef void (*weft_gemm_fn)(int64_t k, const uint8_t *W, uint64_t rb, int64_t r0, int64_t r1,
			     const weft_qact *a, int64_t t0, int64_t t1, float *Y, int64_t ldy);

/* Kernel tables, indexed by weight type; NULL dot entries fall back to
 * the level below; NULL gemm entries to the dot kernel. */
typedef struct weft_kern {
	weft_dot_fn dot[32];
	weft_gemm_fn gemm[32]; /* T > 1 (needs the same level's dot entry) */
	/* Where not NULL, used instead of dot / gemm for weights whose row
	 * count is a multiple of 8 (the llama.cpp level: llama.cpp repacks
	 * those Q4_0 matrices into 8-row groups, with another summation
	 * order) */
	weft_dot_fn dot8[32];
	weft_gemm_fn gemm8[32];
	/* y[i] = x[i] rounded to IEEE half (nearest even), as float */
	void (*round_f16)(float *y, const float *x, int64_t n);
	/* f[i] = x[i] rounded to bf16 (nearest even, NaN kept quiet, as
	 * weft_fp32_to_bf16), as float; and the bf16 values in h when h is not
	 * NULL */
	void (*round_bf16)(float *f, uint16_t *h, const float *x, int64_t n);
	/* token t of a (Q8_0, or Q8_1 when q81) from x, zero offset c, as
	 * matmul.c's scalar quant_q8 (bit-identical); NULL: that one */
	void (*quant_q8)(const weft_qact *a, int64_t t, const float *x, int q81, int c);
	/* BF16 weights: the dot and gemm entries want weft_qact.h (AVX-512 BF16
	 * dot products) */
	int bf16_act;
} weft_kern;

extern const weft_kern weft_kern_ref;
void weft_kern_avx2_init(weft_kern *k);   /* fills the entries it has */
void weft_kern_avx512_init(weft_kern *k, int have_bf16);
void weft_gemm_avx512_init(weft_kern *k, int have_bf16);
void weft_gemm_avx2_init(weft_kern *k);
void weft_kern_llamacpp_init(weft_kern *k); /* llamacpp_avx512.c */

/* The scalar Q8_0 / Q8_1 activation quantizer (kern->quant_q8's oracle). */
void weft_act_quant_q8_ref(const weft_qact *a, int64_t t, const float *x, int q81, int c);

/* Zero offset c of a weight type's quants (see corr above). */
int weft_act_corr_offset(uint32_t wtype);

#pragma GCC visibility pop

#endif

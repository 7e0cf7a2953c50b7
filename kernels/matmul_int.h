/* matmul_int.h - internals shared by the matmul engine (matmul.c,
 * dispatch.c, ref_dot.c, dot_avx2.c, dot_avx512.c).  Not installed.
 *
 * weft_matmul converts the activations once per call into a weft_act (the
 * weight type's vec_dot type, as llama.cpp's quantize_row_q8_0 / q8_1 /
 * q8_K would, but laid out for SIMD), then calls one row kernel per
 * (weight row, group of up to WEFT_NT tokens). */
#ifndef WEFT_MATMUL_INT_H
#define WEFT_MATMUL_INT_H

#include <stddef.h>
#include <stdint.h>

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
 *   Float vec_dot types (F32, F16, BF16):
 *     f[k]      the activations rounded to the vec_dot type, as float */
typedef struct weft_act {
	int64_t k;
	int8_t *q;
	float *dl, *s, *f;
	int32_t *corr, *bs;
	int64_t q_stride, l_stride, g_stride, f_stride; /* elements per token */
} weft_act;

/* One weight row (k values of the kernel's type, at w) times tokens
 * t0 .. t0+nt-1 (nt <= WEFT_NT): y[t * ldy] = dot(w, token t0 + t). */
typedef void (*weft_dot_fn)(int64_t k, const uint8_t *w, const weft_act *a, int64_t t0, int nt,
			    float *y, int64_t ldy);

/* Kernel tables, indexed by weight type; NULL entries fall back to the
 * level below. */
typedef struct weft_kern {
	const char *name;
	weft_dot_fn dot[32];
	/* y[i] = x[i] rounded to IEEE half (nearest even), as float */
	void (*round_f16)(float *y, const float *x, int64_t n);
} weft_kern;

extern const weft_kern weft_kern_ref;
void weft_kern_avx2_init(weft_kern *k);   /* fills the entries it has */
void weft_kern_avx512_init(weft_kern *k, int have_bf16);

/* The table in use (after CPUID / WEFT_KERNELS); never NULL. */
const weft_kern *weft_kern_get(void);

/* Zero offset c of a weight type's quants (see corr above). */
int weft_act_corr_offset(uint32_t wtype);

#endif

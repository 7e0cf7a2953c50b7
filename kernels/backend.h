/* backend.h - the one table of compute backends (internal, not installed).
 *
 * A backend is everything a forward pass computes with: its matmul kernels
 * (weft_kern, matmul_int.h) and its float ops and attention kernels
 * (weft_ops_vt, ops_int.h).  One CPU probe (backend.c) decides which CPU
 * levels can run; one pointer names the backend in use, chosen once from
 * the CPU's best level or WEFT_KERNELS, and changed by weft_kernels_force()
 * (the tools' --numerics).  A GPU backend will be one more entry.
 *
 *   scalar     portable C references of every kernel (the oracle)
 *   avx2       AVX2 + FMA + F16C
 *   avx512     AVX-512 F, DQ, BW, VL and VNNI (+ BF16 dot products where
 *              the CPU has AVX512_BF16: name "avx512+vnni+bf16")
 *   llama.cpp  the avx512 backend with llama.cpp's own arithmetic in place
 *              of weft's (llamacpp_avx512.c), on the same CPUs
 *
 * Each level starts as a copy of the one below and overrides the kernels
 * it has, so a missing kernel falls back to a slower but equal one. */
#ifndef WEFT_BACKEND_H
#define WEFT_BACKEND_H

#include "matmul_int.h"
#include "ops_int.h"

#pragma GCC visibility push(hidden)

typedef enum weft_level {
	WEFT_LEVEL_SCALAR,
	WEFT_LEVEL_AVX2,
	WEFT_LEVEL_AVX512,
	WEFT_LEVEL_LLAMACPP,
	WEFT_LEVEL_N
} weft_level;

typedef struct weft_backend {
	const char *name;  /* as weft_kernels_level() reports it */
	weft_level level;
	weft_kern mm;      /* matmul row kernels and GEMM tiles */
	weft_ops_vt ops;   /* norms, RoPE, activations, attention, sgemm */
} weft_backend;

/* The backend in use; never NULL. */
const weft_backend *weft_backend_get(void);
/* The backend of a level, or NULL when this CPU cannot run it. */
const weft_backend *weft_backend_at(weft_level level);
/* Make level the one in use: 0, or -1 when this CPU cannot run it. */
int weft_backend_select(weft_level level);
/* The level named "scalar", "avx2", "avx512" or "llama.cpp"; -1 for
 * another name. */
int weft_level_parse(const char *name);

/* Shorthands for the kernels of the backend in use. */
static inline const weft_kern *weft_kern_get(void) { return &weft_backend_get()->mm; }
static inline const weft_ops_vt *weft_ops_get(void) { return &weft_backend_get()->ops; }

#pragma GCC visibility pop

#endif

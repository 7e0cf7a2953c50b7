/* cuda_common.cuh - helpers shared by the CUDA backend's .cu files: the
 * error check, the stream, scratch memory, half/bf16 conversions with the
 * CPU's rounding, warp reductions.  Internal; C++ (nvcc) only. */
#ifndef WEFT_CUDA_COMMON_CUH
#define WEFT_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

extern "C" {
#include "util.h"
#include "ggml_types.h"
#include "ggml_blocks.h"
}
#include "cuda_int.h"

#pragma GCC visibility push(hidden)

/* The stream every op is enqueued on (cuda_mem.cu). */
cudaStream_t weft_cuda_stream(void);
/* Scratch device memory of at least `bytes`, slot 0..3 (grows, kept
 * between calls; valid until the next call for the same slot). */
void *weft_cuda_scratch(int slot, size_t bytes);
/* -1 with weft_error("cuda: <what>: <message>") when e is an error. */
int weft_cuda_err(cudaError_t e, const char *what);
/* The error, if any, of the last launch on this thread. */
static inline int weft_cuda_launched(const char *what) { return weft_cuda_err(cudaGetLastError(), what); }

#pragma GCC visibility pop

#define WARP 32

static __device__ __forceinline__ float warp_sum(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

static __device__ __forceinline__ float warp_max(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

static __device__ __forceinline__ int warp_isum(int v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

/* Little-endian loads at any alignment. */
static __device__ __forceinline__ uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static __device__ __forceinline__ float ldh(const uint8_t *p) { return __half2float(__ushort_as_half(ld16(p))); }
static __device__ __forceinline__ float ldbf(const uint8_t *p) { return __uint_as_float((uint32_t)ld16(p) << 16); }
static __device__ __forceinline__ float ldf(const uint8_t *p)
{
	return __uint_as_float((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* x rounded to IEEE half (nearest even), as float (weft_fp32_to_fp16). */
static __device__ __forceinline__ float round_h(float x) { return __half2float(__float2half_rn(x)); }

/* x rounded to bf16 as weft_fp32_to_bf16: nearest even, NaN kept quiet. */
static __device__ __forceinline__ float round_bf(float x)
{
	uint32_t u = __float_as_uint(x);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return __uint_as_float((u | 0x00400000u) & 0xffff0000u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return __uint_as_float(u & 0xffff0000u);
}

/* Round to nearest, ties to even (the CPU's rne). */
static __device__ __forceinline__ int rne_i(float v) { return __float2int_rn(v); }

static inline unsigned cdiv(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

#endif

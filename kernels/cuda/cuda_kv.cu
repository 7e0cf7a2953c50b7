/* cuda_kv.cu - what the device-resident forward pass (lib/model_cuda.c)
 * needs beyond the ops: a bias added to every row, and new key/value rows
 * stored into a device KV cache laid out as the host's (lib/kv.h: each
 * head's rows from its own row offset, rows of head_dim F16 or F32
 * values).  F16 rounding is __float2half_rn, nearest even, as
 * weft_fp32_to_fp16.  UNTESTED ON A GPU (see cuda_int.h). */
#include "cuda_common.cuh"

__global__ void add_rows_k(float *Y, const float *b, int64_t rows, int64_t n)
{
	const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < rows * n)
		Y[i] += b[i % n];
}

extern "C" int weft_cuda_add_rows(float *dy, const float *db, int64_t rows, int64_t n)
{
	if (rows < 0 || n <= 0) {
		weft_error("cuda add_rows: bad shape (%lld rows of %lld)", (long long)rows, (long long)n);
		return -1;
	}
	if (rows)
		add_rows_k<<<cdiv(rows * n, 256), 256, 0, weft_cuda_stream()>>>(dy, db, rows, n);
	return weft_cuda_launched("add_rows");
}

/* One thread per value: token t, head h, channel i of src [n][H][hd] to
 * row row0[h] + t of the cache. */
template <int F16>
__global__ void kv_store_k(uint8_t *dst, const float *src, int64_t n, int H, int hd, const int64_t *row0)
{
	const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n * H * hd)
		return;
	const int64_t c = i % hd, h = (i / hd) % H, t = i / ((int64_t)hd * H);
	const int64_t r = row0[h] + t;
	if (F16)
		((__half *)dst)[r * hd + c] = __float2half_rn(src[i]);
	else
		((float *)dst)[r * hd + c] = src[i];
}

extern "C" int weft_cuda_kv_store(void *dcache, uint32_t type, const float *dsrc, int64_t n, int n_head_kv, int hd,
				  const int64_t *row0)
{
	if ((type != WEFT_TYPE_F16 && type != WEFT_TYPE_F32) || n < 0 || n_head_kv <= 0 || hd <= 0) {
		weft_error("cuda kv_store: bad arguments (type %u, %lld rows, %d heads of %d)", type, (long long)n,
			   n_head_kv, hd);
		return -1;
	}
	if (!n)
		return 0;
	cudaStream_t st = weft_cuda_stream();
	int64_t *d0 = (int64_t *)weft_cuda_scratch(3, (size_t)n_head_kv * 8);
	if (!d0 || weft_cuda_err(cudaMemcpyAsync(d0, row0, (size_t)n_head_kv * 8, cudaMemcpyHostToDevice, st),
				 "kv_store offsets"))
		return -1;
	const int64_t total = n * n_head_kv * hd;
	if (type == WEFT_TYPE_F16)
		kv_store_k<1><<<cdiv(total, 256), 256, 0, st>>>((uint8_t *)dcache, dsrc, n, n_head_kv, hd, d0);
	else
		kv_store_k<0><<<cdiv(total, 256), 256, 0, st>>>((uint8_t *)dcache, dsrc, n, n_head_kv, hd, d0);
	return weft_cuda_launched("kv_store");
}

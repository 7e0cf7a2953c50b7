/* cuda_ops.cu - the row and element-wise ops (RMSNorm, LayerNorm, RoPE,
 * softmax, SwiGLU, SiLU, the GELUs, add) with kernels/ops.c's numerics:
 * the norms' and softmax's sums in double, 1/sqrtf, RoPE's angle from the
 * same float recurrence (theta *= theta_scale, theta_scale computed on the
 * host with the C library's powf), the f16-table GELUs as the value of the
 * table's formula at the f16-rounded input, rounded to f16.  The device
 * expf/tanhf/cosf/sinf/erff differ from glibc's by an ulp or two.
 * UNTESTED ON A GPU (see cuda_int.h). */
#include "cuda_common.cuh"

#include <math.h>

#define NT 256 /* threads per row block */

/* Block-wide double sum (NT threads). */
static __device__ double block_dsum(double v, double *sh)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	if (threadIdx.x % WARP == 0)
		sh[threadIdx.x / WARP] = v;
	__syncthreads();
	double s = 0.0;
	for (int w = 0; w < NT / WARP; w++)
		s += sh[w];
	__syncthreads();
	return s;
}

static __device__ float block_max(float v, float *sh)
{
	v = warp_max(v);
	if (threadIdx.x % WARP == 0)
		sh[threadIdx.x / WARP] = v;
	__syncthreads();
	float m = sh[0];
	for (int w = 1; w < NT / WARP; w++)
		m = fmaxf(m, sh[w]);
	__syncthreads();
	return m;
}

__global__ void __launch_bounds__(NT) rmsnorm_k(float *Y, const float *X, const float *w, int64_t n, float eps)
{
	__shared__ double sh[NT / WARP];
	const float *x = X + blockIdx.x * n;
	float *y = Y + blockIdx.x * n;
	double s = 0.0;
	for (int64_t i = threadIdx.x; i < n; i += NT)
		s += (double)__fmul_rn(x[i], x[i]);
	s = block_dsum(s, sh);
	const float mean = (float)(s / (double)n);
	const float scale = 1.0f / sqrtf(mean + eps);
	for (int64_t i = threadIdx.x; i < n; i += NT)
		y[i] = w ? __fmul_rn(__fmul_rn(x[i], scale), w[i]) : __fmul_rn(x[i], scale);
}

__global__ void __launch_bounds__(NT) layernorm_k(float *Y, const float *X, const float *w, const float *b, int64_t n,
						  float eps)
{
	__shared__ double sh[NT / WARP];
	const float *x = X + blockIdx.x * n;
	float *y = Y + blockIdx.x * n;
	double s = 0.0;
	for (int64_t i = threadIdx.x; i < n; i += NT)
		s += (double)x[i];
	const float mean = (float)(block_dsum(s, sh) / (double)n);
	double var = 0.0;
	for (int64_t i = threadIdx.x; i < n; i += NT) {
		const float v = x[i] - mean;
		var += (double)__fmul_rn(v, v);
	}
	var = block_dsum(var, sh);
	const float scale = 1.0f / sqrtf((float)(var / (double)n) + eps);
	for (int64_t i = threadIdx.x; i < n; i += NT) {
		float v = __fmul_rn(x[i] - mean, scale);
		if (w)
			v = __fmul_rn(v, w[i]);
		if (b)
			v += b[i];
		y[i] = v;
	}
}

/* One thread per (token, head, pair i < rot_dim/2). */
__global__ void rope_k(float *X, int64_t T, int64_t n_heads, int64_t hd, int64_t half, const int32_t *pos,
		       float theta_scale, float freq_scale, int neox)
{
	const int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (id >= T * n_heads * half)
		return;
	const int64_t i = id % half, h = id / half % n_heads, t = id / half / n_heads;
	float theta = (float)pos[t];
	for (int64_t j = 0; j < i; j++) /* the reference's recurrence, for the same rounding */
		theta = __fmul_rn(theta, theta_scale);
	const float a = __fmul_rn(freq_scale, theta), c = cosf(a), s = sinf(a);
	float *v = X + (t * n_heads + h) * hd;
	float *p0 = neox ? v + i : v + 2 * i, *p1 = neox ? v + i + half : v + 2 * i + 1;
	const float x0 = *p0, x1 = *p1;
	*p0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
	*p1 = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
}

__global__ void __launch_bounds__(NT) softmax_k(float *X, int64_t n)
{
	__shared__ double sh[NT / WARP];
	__shared__ float shf[NT / WARP];
	float *x = X + blockIdx.x * n;
	float m = -INFINITY;
	for (int64_t i = threadIdx.x; i < n; i += NT)
		m = x[i] > m ? x[i] : m;
	m = block_max(m, shf);
	double s = 0.0;
	for (int64_t i = threadIdx.x; i < n; i += NT) {
		x[i] = expf(x[i] - m);
		s += (double)x[i];
	}
	s = block_dsum(s, sh);
	const float inv = (float)(1.0 / s);
	for (int64_t i = threadIdx.x; i < n; i += NT)
		x[i] *= inv;
}

enum { A_SILU, A_GELU_TAB, A_GELU_QUICK_TAB, A_GELU_F32, A_GELU_QUICK_F32, A_GELU_ERF };

static __device__ __forceinline__ float silu1(float x) { return x / (1.0f + expf(-x)); }

static __device__ float act1(int op, float v)
{
	switch (op) {
	case A_SILU: return silu1(v);
	case A_GELU_TAB: { /* weft_gelu: table[fp16(v)] = fp16(gelu(fp16(v))) */
		if (v <= -10.0f)
			return 0.0f;
		if (!(v < 10.0f))
			return v;
		const float x = round_h(v);
		const float k = 0.79788456080286535587989211986876f;
		return round_h(0.5f * x * (1.0f + tanhf(k * x * (1.0f + 0.044715f * x * x))));
	}
	case A_GELU_QUICK_TAB: {
		const float x = round_h(v);
		return round_h(x * (1.0f / (1.0f + expf(-1.702f * x))));
	}
	case A_GELU_F32: { /* xsigmoid with a = 2 sqrt(2/pi), c = a * 0.044715 */
		const float a = 1.5957691216057308f, c = a * 0.044715f;
		return v / (1.0f + expf(-(a * v + c * (v * v * v))));
	}
	case A_GELU_QUICK_F32: return v / (1.0f + expf(-(1.702f * v + 0.0f * (v * v * v))));
	default: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
	}
}

__global__ void act_k(float *x, int64_t n, int op)
{
	const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		x[i] = act1(op, x[i]);
}

__global__ void swiglu_k(float *y, const float *g, const float *u, int64_t n)
{
	const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = __fmul_rn(silu1(g[i]), u[i]);
}

__global__ void add_k(float *y, const float *x, int64_t n)
{
	const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] += x[i];
}

/* ---- host ---- */

static int rows_ok(int64_t rows, int64_t n, const char *op)
{
	if (rows < 0 || n <= 0 || rows > 0x7fffffff) {
		weft_error("cuda %s: bad shape (%lld rows of %lld)", op, (long long)rows, (long long)n);
		return 0;
	}
	return 1;
}

extern "C" int weft_cuda_rmsnorm(float *dy, const float *dx, const float *dw, int64_t rows, int64_t n, float eps)
{
	if (!rows_ok(rows, n, "rmsnorm"))
		return -1;
	if (rows)
		rmsnorm_k<<<(unsigned)rows, NT, 0, weft_cuda_stream()>>>(dy, dx, dw, n, eps);
	return weft_cuda_launched("rmsnorm");
}

extern "C" int weft_cuda_layernorm(float *dy, const float *dx, const float *dw, const float *db, int64_t rows,
				   int64_t n, float eps)
{
	if (!rows_ok(rows, n, "layernorm"))
		return -1;
	if (rows)
		layernorm_k<<<(unsigned)rows, NT, 0, weft_cuda_stream()>>>(dy, dx, dw, db, n, eps);
	return weft_cuda_launched("layernorm");
}

extern "C" int weft_cuda_rope(float *dx, int64_t T, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
			      const int32_t *dpos, float freq_base, float freq_scale, int neox)
{
	if (T < 0 || n_heads <= 0 || rot_dim <= 0 || rot_dim > head_dim || rot_dim % 2) {
		weft_error("cuda rope: bad shape (%lld heads, head_dim %lld, rot_dim %lld)", (long long)n_heads,
			   (long long)head_dim, (long long)rot_dim);
		return -1;
	}
	const int64_t half = rot_dim / 2, n = T * n_heads * half;
	const float theta_scale = powf(freq_base, -2.0f / (float)rot_dim); /* host powf, as the reference */
	if (n)
		rope_k<<<cdiv(n, 256), 256, 0, weft_cuda_stream()>>>(dx, T, n_heads, head_dim, half, dpos, theta_scale,
								     freq_scale, neox);
	return weft_cuda_launched("rope");
}

extern "C" int weft_cuda_softmax(float *dx, int64_t rows, int64_t n)
{
	if (!rows_ok(rows, n, "softmax"))
		return -1;
	if (rows)
		softmax_k<<<(unsigned)rows, NT, 0, weft_cuda_stream()>>>(dx, n);
	return weft_cuda_launched("softmax");
}

static int act(float *dx, int64_t n, int op)
{
	if (n > 0)
		act_k<<<cdiv(n, 256), 256, 0, weft_cuda_stream()>>>(dx, n, op);
	return weft_cuda_launched("activation");
}

extern "C" int weft_cuda_silu(float *dx, int64_t n) { return act(dx, n, A_SILU); }
extern "C" int weft_cuda_gelu(float *dx, int64_t n) { return act(dx, n, A_GELU_TAB); }
extern "C" int weft_cuda_gelu_quick(float *dx, int64_t n) { return act(dx, n, A_GELU_QUICK_TAB); }
extern "C" int weft_cuda_gelu_f32(float *dx, int64_t n) { return act(dx, n, A_GELU_F32); }
extern "C" int weft_cuda_gelu_quick_f32(float *dx, int64_t n) { return act(dx, n, A_GELU_QUICK_F32); }
extern "C" int weft_cuda_gelu_erf(float *dx, int64_t n) { return act(dx, n, A_GELU_ERF); }

extern "C" int weft_cuda_swiglu(float *dy, const float *dgate, const float *dup, int64_t n)
{
	if (n > 0)
		swiglu_k<<<cdiv(n, 256), 256, 0, weft_cuda_stream()>>>(dy, dgate, dup, n);
	return weft_cuda_launched("swiglu");
}

extern "C" int weft_cuda_add(float *dy, const float *dx, int64_t n)
{
	if (n > 0)
		add_k<<<cdiv(n, 256), 256, 0, weft_cuda_stream()>>>(dy, dx, n);
	return weft_cuda_launched("add");
}

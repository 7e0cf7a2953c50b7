/* cuda_matmul.cu - weft_cuda_matmul: the activations converted on the
 * device to the weight type's vec_dot type exactly as kernels/matmul.c
 * does (Q8_0 / Q8_1 blocks of 32 with fp16-rounded scales, Q8_K blocks of
 * 256, F16 or BF16 rounding; the quants come out bit-identical), then one
 * warp per weight row: each lane decodes one 32-value group of the row
 * into int8 quants in registers (never expanded in memory) and takes its
 * integer dot products with up to 8 tokens (dp4a), scaled as
 * kernels/ref_dot.c scales them; K-quant super-blocks are 8 lanes whose
 * integer sums are reduced exactly before the float scales.  The lanes'
 * float partials are summed by a warp reduction, so only the order of the
 * float sums differs from the reference.
 *
 * T > 8 runs the same kernel over tiles of 8 tokens (grid.y); a tiled
 * shared-memory GEMM for prefill is future work (PERF TODO).
 * UNTESTED ON A GPU (see cuda_int.h). */
#include "cuda_common.cuh"

#include "kernels.h" /* WEFT_MATMUL_F32_ACT */

#define TT 8  /* tokens per warp pass */
#define WPB 4 /* warps (weight rows) per block */

/* Converted activations: quantized (q, dq, s, bs) or float (f). */
typedef struct act {
	const int8_t *q;  /* [T][k] */
	const float *dq;  /* [T][k/32] block scale (fp16-rounded for Q8_0/Q8_1, Q8_K's d repeated) */
	const float *s;   /* [T][k/32] Q8_1: fp16(d * sum) */
	const int *bs;    /* [T][k/32] sum of the 32 quants */
	const float *f;   /* [T][k] */
} act;

/* ---- activation conversion ---- */

/* One warp per (token, 32-group): as weft_act_quant_q8_ref. */
__global__ void quant_q8(const float *X, int64_t k, int64_t n, int q81, int8_t *q, float *dq, float *s, int *bs)
{
	const int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / WARP;
	const int lane = threadIdx.x % WARP;
	if (w >= n) /* n = T * k/32 */
		return;
	const float x = X[w * 32 + lane];
	const float amax = warp_max(fabsf(x));
	const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
	int v = rne_i(__fmul_rn(x, id));
	v = v > 127 ? 127 : v < -128 ? -128 : v;
	q[w * 32 + lane] = (int8_t)v;
	const int sum = warp_isum(v);
	if (lane == 0) {
		dq[w] = round_h(d);
		bs[w] = sum;
		if (q81)
			s[w] = round_h(__fmul_rn(d, (float)sum));
	}
}

/* One warp per (token, 256-block), 8 values per lane: as matmul.c's
 * quant_q8k (the max is the first value of the largest magnitude). */
__global__ void quant_q8k(const float *X, int64_t n, int8_t *q, float *dq, int *bs)
{
	const int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / WARP;
	const int lane = threadIdx.x % WARP;
	if (w >= n) /* n = T * k/256 */
		return;
	const float *x = X + w * 256 + lane * 8;
	float amax = 0.0f;
	int idx = 0x7fffffff;
	for (int i = 0; i < 8; i++)
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			idx = lane * 8 + i;
		}
	for (int o = 16; o > 0; o >>= 1) {
		const float oa = __shfl_xor_sync(0xffffffffu, amax, o);
		const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
		if (oa > amax || (oa == amax && oi < idx)) {
			amax = oa;
			idx = oi;
		}
	}
	const float max = amax != 0.0f ? X[w * 256 + idx] : 0.0f;
	const float iscale = amax != 0.0f ? -127.f / max : 0.0f, d = amax != 0.0f ? 1.0f / iscale : 0.0f;
	int sum = 0;
	for (int i = 0; i < 8; i++) {
		int v = amax != 0.0f ? rne_i(__fmul_rn(iscale, x[i])) : 0;
		v = v > 127 ? 127 : v;
		q[w * 256 + lane * 8 + i] = (int8_t)v;
		sum += v;
	}
	sum += __shfl_xor_sync(0xffffffffu, sum, 1);
	sum += __shfl_xor_sync(0xffffffffu, sum, 2);
	if (lane % 4 == 0) {
		bs[w * 8 + lane / 4] = sum;
		dq[w * 8 + lane / 4] = d;
	}
}

/* mode 0: as is; 1: rounded to half; 2: rounded to bf16. */
__global__ void round_act(const float *X, int64_t n, int mode, float *f)
{
	const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		f[i] = mode == 1 ? round_h(X[i]) : mode == 2 ? round_bf(X[i]) : X[i];
}

/* ---- weight decoding: group g (32 values) of a row into 8 packed int8x4 ---- */

static __device__ __forceinline__ int pack4(int a, int b, int c, int d)
{
	return (a & 255) | (b & 255) << 8 | (c & 255) << 16 | (int)((unsigned)(d & 255) << 24);
}

/* Nibbles of qs[0..15]: low nibbles are values 0..15, high 16..31; plus
 * bit j of qh32 (5-bit types), minus off. */
static __device__ __forceinline__ void nib32(const uint8_t *qs, uint32_t qh32, int five, int off, int *wq)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		int lo[4], hi[4];
#pragma unroll
		for (int e = 0; e < 4; e++) {
			const int j = 4 * i + e;
			lo[e] = (qs[j] & 15) + (five ? (int)((qh32 >> j) & 1) << 4 : 0) - off;
			hi[e] = (qs[j] >> 4) + (five ? (int)((qh32 >> (j + 16)) & 1) << 4 : 0) - off;
		}
		wq[i] = pack4(lo[0], lo[1], lo[2], lo[3]);
		wq[i + 4] = pack4(hi[0], hi[1], hi[2], hi[3]);
	}
}

static __device__ __forceinline__ uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The 32 activation quants of token t, group g (32-byte aligned). */
static __device__ __forceinline__ void ldx(const act &a, int64_t k, int64_t t, int64_t g, int *xq)
{
	const int4 *p = (const int4 *)(a.q + t * k + 32 * g);
	const int4 u = p[0], v = p[1];
	xq[0] = u.x, xq[1] = u.y, xq[2] = u.z, xq[3] = u.w;
	xq[4] = v.x, xq[5] = v.y, xq[6] = v.z, xq[7] = v.w;
}

static __device__ __forceinline__ int dot8(const int *wq, const int *xq, int i0, int i1)
{
	int s = 0;
#pragma unroll
	for (int i = i0; i < i1; i++)
		s = __dp4a(wq[i], xq[i], s);
	return s;
}

/* Sum over the 8 lanes of a K-quant super-block. */
static __device__ __forceinline__ int sum8(int v)
{
	v += __shfl_xor_sync(0xffffffffu, v, 1);
	v += __shfl_xor_sync(0xffffffffu, v, 2);
	v += __shfl_xor_sync(0xffffffffu, v, 4);
	return v;
}

/* The end of every mat-vec kernel: each of the warp's nt token sums
 * reduced across its lanes, lane 0 writing it to y[t * ldy]. */
static __device__ __forceinline__ void store_rows(const float (&acc)[TT], int nt, int lane, float *y, int64_t ldy)
{
#pragma unroll
	for (int t = 0; t < TT; t++) {
		if (t >= nt)
			break;
		const float v = warp_sum(acc[t]);
		if (lane == 0)
			y[t * ldy] = v;
	}
}

template <int TY> struct wt;
#define WT(T_, bytes_) template <> struct wt<T_> { static const int B = bytes_; };
WT(WEFT_TYPE_Q4_0, 18) WT(WEFT_TYPE_Q4_1, 20) WT(WEFT_TYPE_Q5_0, 22) WT(WEFT_TYPE_Q5_1, 24)
WT(WEFT_TYPE_Q8_0, 34) WT(WEFT_TYPE_Q4_K, 144) WT(WEFT_TYPE_Q5_K, 176) WT(WEFT_TYPE_Q6_K, 210)

/* Legacy types (blocks of 32): one lane per block. */
template <int TY>
__global__ void __launch_bounds__(WPB * WARP) mmv_q(const uint8_t *W, uint64_t rb, int64_t k, int64_t n_out, act a,
						  int64_t T, float *Y, int64_t ldy)
{
	const int lane = threadIdx.x % WARP;
	const int64_t r = (int64_t)blockIdx.x * WPB + threadIdx.x / WARP, t0 = (int64_t)blockIdx.y * TT;
	if (r >= n_out)
		return;
	const int nt = T - t0 < TT ? (int)(T - t0) : TT;
	const int64_t ng = k / 32;
	const uint8_t *row = W + r * rb;
	float acc[TT];
#pragma unroll
	for (int t = 0; t < TT; t++)
		acc[t] = 0.0f;
	for (int64_t g = lane; g < ng; g += WARP) {
		const uint8_t *b = row + g * wt<TY>::B;
		int wq[8];
		float d = ldh(b), m = 0.0f;
		if (TY == WEFT_TYPE_Q4_0)
			nib32(b + 2, 0, 0, 8, wq);
		else if (TY == WEFT_TYPE_Q4_1)
			m = ldh(b + 2), nib32(b + 4, 0, 0, 0, wq);
		else if (TY == WEFT_TYPE_Q5_0)
			nib32(b + 6, ld32(b + 2), 1, 16, wq);
		else if (TY == WEFT_TYPE_Q5_1)
			m = ldh(b + 2), nib32(b + 8, ld32(b + 4), 1, 0, wq);
		else
#pragma unroll
			for (int i = 0; i < 8; i++)
				wq[i] = (int)ld32(b + 2 + 4 * i);
#pragma unroll
		for (int t = 0; t < TT; t++) {
			if (t >= nt)
				break;
			int xq[8];
			ldx(a, k, t0 + t, g, xq);
			const int sumi = dot8(wq, xq, 0, 8);
			const int64_t gi = (t0 + t) * ng + g;
			if (TY == WEFT_TYPE_Q4_1 || TY == WEFT_TYPE_Q5_1)
				acc[t] += d * a.dq[gi] * (float)sumi + m * a.s[gi];
			else
				acc[t] += (float)sumi * d * a.dq[gi];
		}
	}
	store_rows(acc, nt, lane, Y + t0 * ldy + r, ldy);
}

/* K-quants (super-blocks of 256): lane = one 32-group, 8 lanes a block. */
template <int TY>
__global__ void __launch_bounds__(WPB * WARP) mmv_k(const uint8_t *W, uint64_t rb, int64_t k, int64_t n_out, act a,
						  int64_t T, float *Y, int64_t ldy)
{
	const int lane = threadIdx.x % WARP;
	const int64_t r = (int64_t)blockIdx.x * WPB + threadIdx.x / WARP, t0 = (int64_t)blockIdx.y * TT;
	if (r >= n_out)
		return;
	const int nt = T - t0 < TT ? (int)(T - t0) : TT;
	const int64_t ng = k / 32;
	const uint8_t *row = W + r * rb;
	float acc[TT];
#pragma unroll
	for (int t = 0; t < TT; t++)
		acc[t] = 0.0f;
	for (int64_t g0 = 0; g0 < ng; g0 += WARP) { /* every lane runs every pass (shuffles) */
		const int64_t g = g0 + lane;
		const int on = g < ng, gl = lane % 8;
		const uint8_t *b = row + (on ? g / 8 : 0) * wt<TY>::B;
		int wq[8] = {0}, sc = 0, mn = 0, sc2 = 0;
		float d = 0.0f, dmin = 0.0f;
		if (on && TY != WEFT_TYPE_Q6_K) {
			const int c = gl / 2, half = gl % 2;
			const uint8_t *qs = b + (TY == WEFT_TYPE_Q5_K ? 48 : 16) + 32 * c, *qh = b + 16;
			d = ldh(b), dmin = ldh(b + 2);
			const uint8_t *s = b + 4;
			if (gl < 4)
				sc = s[gl] & 63, mn = s[gl + 4] & 63;
			else
				sc = (s[gl + 4] & 0xf) | (s[gl - 4] >> 6) << 4, mn = (s[gl + 4] >> 4) | (s[gl] >> 6) << 4;
#pragma unroll
			for (int i = 0; i < 8; i++) {
				int v[4];
#pragma unroll
				for (int e = 0; e < 4; e++) {
					const int l = 4 * i + e;
					v[e] = half ? qs[l] >> 4 : qs[l] & 15;
					if (TY == WEFT_TYPE_Q5_K)
						v[e] += ((qh[l] >> gl) & 1) << 4;
				}
				wq[i] = pack4(v[0], v[1], v[2], v[3]);
			}
		} else if (on) { /* Q6_K: group gl = 4h + kk */
			const int h = gl / 4, kk = gl % 4;
			const uint8_t *ql = b + 64 * h + 32 * (kk & 1), *qh = b + 128 + 32 * h;
			const int8_t *scl = (const int8_t *)(b + 192);
			d = ldh(b + 208);
			sc = scl[8 * h + 2 * kk], sc2 = scl[8 * h + 2 * kk + 1];
#pragma unroll
			for (int i = 0; i < 8; i++) {
				int v[4];
#pragma unroll
				for (int e = 0; e < 4; e++) {
					const int l = 4 * i + e;
					const int lo = kk < 2 ? ql[l] & 15 : ql[l] >> 4;
					v[e] = (lo | ((qh[l] >> (2 * kk)) & 3) << 4) - 32;
				}
				wq[i] = pack4(v[0], v[1], v[2], v[3]);
			}
		}
#pragma unroll
		for (int t = 0; t < TT; t++) {
			if (t >= nt)
				break;
			int xq[8] = {0}, p1 = 0, p2 = 0;
			if (on)
				ldx(a, k, t0 + t, g, xq);
			if (TY == WEFT_TYPE_Q6_K) {
				p1 = sc * dot8(wq, xq, 0, 4) + sc2 * dot8(wq, xq, 4, 8);
			} else {
				p1 = sc * dot8(wq, xq, 0, 8);
				p2 = on ? mn * a.bs[(t0 + t) * ng + g] : 0;
			}
			const int sumi = sum8(p1), summ = TY == WEFT_TYPE_Q6_K ? 0 : sum8(p2);
			if (on && gl == 0) {
				const float dx = a.dq[(t0 + t) * ng + g];
				if (TY == WEFT_TYPE_Q6_K)
					acc[t] += d * dx * (float)sumi;
				else
					acc[t] += d * dx * (float)sumi - dmin * dx * (float)summ;
			}
		}
	}
	store_rows(acc, nt, lane, Y + t0 * ldy + r, ldy);
}

/* Float weights (F32, F16, BF16): lane = 32 consecutive values. */
template <int TY>
__global__ void __launch_bounds__(WPB * WARP) mmv_f(const uint8_t *W, uint64_t rb, int64_t k, int64_t n_out, act a,
						  int64_t T, float *Y, int64_t ldy)
{
	const int lane = threadIdx.x % WARP;
	const int64_t r = (int64_t)blockIdx.x * WPB + threadIdx.x / WARP, t0 = (int64_t)blockIdx.y * TT;
	if (r >= n_out)
		return;
	const int nt = T - t0 < TT ? (int)(T - t0) : TT;
	const uint8_t *row = W + r * rb;
	float acc[TT];
#pragma unroll
	for (int t = 0; t < TT; t++)
		acc[t] = 0.0f;
	/* 8 values per lane per pass, consecutive lanes on consecutive values */
	for (int64_t i0 = 8 * lane; i0 < k; i0 += 8 * WARP) {
		const int n8 = k - i0 < 8 ? (int)(k - i0) : 8;
		float w[8];
#pragma unroll
		for (int e = 0; e < 8; e++)
			w[e] = e >= n8 ? 0.0f
			     : TY == WEFT_TYPE_F32 ? ldf(row + 4 * (i0 + e))
			     : TY == WEFT_TYPE_F16 ? ldh(row + 2 * (i0 + e))
						   : ldbf(row + 2 * (i0 + e));
#pragma unroll
		for (int t = 0; t < TT; t++) {
			if (t >= nt)
				break;
			const float *x = a.f + (t0 + t) * k + i0;
			float s = 0.0f;
#pragma unroll
			for (int e = 0; e < 8; e++)
				s += e < n8 ? w[e] * x[e] : 0.0f;
			acc[t] += s;
		}
	}
	store_rows(acc, nt, lane, Y + t0 * ldy + r, ldy);
}

/* ---- the host side ---- */

extern "C" int weft_cuda_matmul_supported(uint32_t wtype)
{
	switch (wtype) {
	case WEFT_TYPE_F32: case WEFT_TYPE_F16: case WEFT_TYPE_BF16: case WEFT_TYPE_Q8_0: case WEFT_TYPE_Q4_0:
	case WEFT_TYPE_Q4_1: case WEFT_TYPE_Q5_0: case WEFT_TYPE_Q5_1: case WEFT_TYPE_Q4_K: case WEFT_TYPE_Q5_K:
	case WEFT_TYPE_Q6_K:
		return 1;
	default:
		return 0;
	}
}

static size_t al256(size_t n) { return (n + 255) / 256 * 256; }

extern "C" int weft_cuda_matmul(uint32_t wtype, const void *dW, int64_t k, int64_t n_out, const float *dX, int64_t T,
				float *dY, int64_t ldy, unsigned flags)
{
	const weft_type_info *ti = weft_type_get(wtype);
	if (!weft_cuda_matmul_supported(wtype)) {
		weft_error("cuda matmul: unsupported weight type %s", ti ? ti->name : "unknown");
		return -1;
	}
	if (k <= 0 || k % ti->block) {
		weft_error("cuda matmul: k = %lld is not a positive multiple of the %s block size %u", (long long)k,
			   ti->name, ti->block);
		return -1;
	}
	if (n_out < 0 || T < 0 || ldy < n_out || T > 65535LL * TT) {
		weft_error("cuda matmul: bad shape (n_out %lld, T %lld, ldy %lld)", (long long)n_out, (long long)T,
			   (long long)ldy);
		return -1;
	}
	if (!n_out || !T)
		return 0;
	cudaStream_t st = weft_cuda_stream();
	const uint64_t rb = weft_type_row_bytes(wtype, (uint64_t)k);
	const int64_t ng = k / 32;
	act a = {};
	const int flt = wtype == WEFT_TYPE_F32 || wtype == WEFT_TYPE_F16 || wtype == WEFT_TYPE_BF16;
	if (flt) {
		float *f = (float *)weft_cuda_scratch(0, (size_t)(T * k) * 4);
		if (!f)
			return -1;
		const int mode = (flags & WEFT_MATMUL_F32_ACT) || wtype == WEFT_TYPE_F32 ? 0 : wtype == WEFT_TYPE_F16 ? 1 : 2;
		round_act<<<cdiv(T * k, 256), 256, 0, st>>>(dX, T * k, mode, f);
		a.f = f;
	} else {
		const size_t qb = al256((size_t)(T * k)), gb = al256((size_t)(T * ng) * 4);
		uint8_t *buf = (uint8_t *)weft_cuda_scratch(0, qb + 3 * gb);
		if (!buf)
			return -1;
		int8_t *q = (int8_t *)buf;
		float *dq = (float *)(buf + qb), *s = (float *)(buf + qb + gb);
		int *bs = (int *)(buf + qb + 2 * gb);
		a.q = q, a.dq = dq, a.s = s, a.bs = bs;
		if (wtype == WEFT_TYPE_Q4_K || wtype == WEFT_TYPE_Q5_K || wtype == WEFT_TYPE_Q6_K)
			quant_q8k<<<cdiv(T * (k / 256) * WARP, 128), 128, 0, st>>>(dX, T * (k / 256), q, dq, bs);
		else
			quant_q8<<<cdiv(T * ng * WARP, 128), 128, 0, st>>>(dX, k, T * ng,
									 wtype == WEFT_TYPE_Q4_1 || wtype == WEFT_TYPE_Q5_1, q,
									 dq, s, bs);
	}
	if (weft_cuda_launched("matmul activation conversion"))
		return -1;
	const dim3 grid(cdiv(n_out, WPB), cdiv(T, TT));
	const uint8_t *w = (const uint8_t *)dW;
#define L(K, TY) K<TY><<<grid, WPB * WARP, 0, st>>>(w, rb, k, n_out, a, T, dY, ldy); break
	switch (wtype) {
	case WEFT_TYPE_Q4_0: L(mmv_q, WEFT_TYPE_Q4_0);
	case WEFT_TYPE_Q4_1: L(mmv_q, WEFT_TYPE_Q4_1);
	case WEFT_TYPE_Q5_0: L(mmv_q, WEFT_TYPE_Q5_0);
	case WEFT_TYPE_Q5_1: L(mmv_q, WEFT_TYPE_Q5_1);
	case WEFT_TYPE_Q8_0: L(mmv_q, WEFT_TYPE_Q8_0);
	case WEFT_TYPE_Q4_K: L(mmv_k, WEFT_TYPE_Q4_K);
	case WEFT_TYPE_Q5_K: L(mmv_k, WEFT_TYPE_Q5_K);
	case WEFT_TYPE_Q6_K: L(mmv_k, WEFT_TYPE_Q6_K);
	case WEFT_TYPE_F32: L(mmv_f, WEFT_TYPE_F32);
	case WEFT_TYPE_F16: L(mmv_f, WEFT_TYPE_F16);
	default: L(mmv_f, WEFT_TYPE_BF16);
	}
#undef L
	return weft_cuda_launched("matmul");
}

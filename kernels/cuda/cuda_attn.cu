/* cuda_attn.cu - weft_cuda_attention: causal GQA attention over an F16 or
 * F32 KV cache with ragged per-head row counts (kv_len, kv_head_off), as
 * kernels/attention.c's reference computes it (query t of T sees the first
 * kv_len[g] - T + t + 1 rows of its KV head; online softmax; no T x L
 * matrix).
 *
 *   T <= 8 (decode): split-K.  Grid (head, query, split); each of a
 *     block's 4 warps runs the reference's per-key online softmax over
 *     every 4th key of the split (lanes own head dimensions, the score is a
 *     warp sum), the block merges its 4 states, and a second kernel merges
 *     the splits' (m, l, acc) per query.
 *   T > 8 (prefill): tiles of 8 query rows (one warp each) of one head
 *     over tiles of 32 keys (16 when hd > 128) staged in shared memory as
 *     float; a warp scores a tile at once (lane = key) and updates its
 *     row's softmax state per tile.
 * Sums are in another order than the reference's per-key recurrence, so
 * results agree to float rounding, not bit for bit.
 * UNTESTED ON A GPU (see cuda_int.h). */
#include "cuda_common.cuh"

#include <math.h>

#define MAXV 8        /* head dims per lane: hd <= 256 */
#define DEC_WARPS 4
#define PRE_ROWS 8

typedef struct dargs {
	const float *Q;
	const uint8_t *K, *V;
	int64_t row_bytes, kv_head_rows;
	const int32_t *kv_len;      /* device */
	const int64_t *kv_head_off; /* device or NULL */
	int64_t T;
	int n_head, rep, hd;
	float scale;
	float *out;
} dargs;

template <int F16> static __device__ __forceinline__ float kvval(const uint8_t *row, int d)
{
	return F16 ? __half2float(((const __half *)row)[d]) : ((const float *)row)[d];
}

static __device__ __forceinline__ const uint8_t *kvrow(const dargs &a, const uint8_t *base, int g, int64_t j)
{
	const int64_t h0 = a.kv_head_off ? a.kv_head_off[g] : (int64_t)g * a.kv_head_rows;
	return base + (h0 + j) * a.row_bytes;
}

/* ---- decode: split-K ---- */

/* part: [n_head][T][nsplit] states of hd + 2 floats (acc..., m, l). */
template <int F16>
__global__ void __launch_bounds__(DEC_WARPS * WARP) attn_split(dargs a, int64_t chunk, int nsplit, float *part)
{
	__shared__ float sh[DEC_WARPS][MAXV * WARP + 2];
	const int h = blockIdx.x, lane = threadIdx.x % WARP, w = threadIdx.x / WARP, g = h / a.rep;
	const int64_t t = blockIdx.y, sp = blockIdx.z;
	const int64_t n = (int64_t)a.kv_len[g] - a.T + t + 1;
	const int64_t j0 = sp * chunk, j1 = j0 + chunk < n ? j0 + chunk : n;
	const float *q = a.Q + (t * a.n_head + h) * a.hd;
	float qv[MAXV], acc[MAXV];
#pragma unroll
	for (int i = 0; i < MAXV; i++) {
		const int d = lane + WARP * i;
		qv[i] = d < a.hd ? q[d] : 0.0f;
		acc[i] = 0.0f;
	}
	float m = -INFINITY, l = 0.0f;
	for (int64_t j = j0 + w; j < j1; j += DEC_WARPS) {
		const uint8_t *kr = kvrow(a, a.K, g, j), *vr = kvrow(a, a.V, g, j);
		float s = 0.0f;
#pragma unroll
		for (int i = 0; i < MAXV; i++) {
			const int d = lane + WARP * i;
			if (d < a.hd)
				s += qv[i] * kvval<F16>(kr, d);
		}
		s = warp_sum(s) * a.scale;
		if (s > m) {
			const float r = expf(m - s);
#pragma unroll
			for (int i = 0; i < MAXV; i++)
				acc[i] *= r;
			l *= r;
			m = s;
		}
		const float p = expf(s - m);
		l += p;
#pragma unroll
		for (int i = 0; i < MAXV; i++) {
			const int d = lane + WARP * i;
			if (d < a.hd)
				acc[i] += p * kvval<F16>(vr, d);
		}
	}
#pragma unroll
	for (int i = 0; i < MAXV; i++)
		sh[w][lane + WARP * i] = acc[i];
	if (lane == 0)
		sh[w][MAXV * WARP] = m, sh[w][MAXV * WARP + 1] = l;
	__syncthreads();
	if (w)
		return;
	float M = -INFINITY;
	for (int u = 0; u < DEC_WARPS; u++)
		if (sh[u][MAXV * WARP + 1] > 0.0f)
			M = fmaxf(M, sh[u][MAXV * WARP]);
	float L = 0.0f, o[MAXV] = {0};
	for (int u = 0; u < DEC_WARPS; u++) {
		const float lu = sh[u][MAXV * WARP + 1];
		if (!(lu > 0.0f))
			continue;
		const float e = expf(sh[u][MAXV * WARP] - M);
		L += lu * e;
#pragma unroll
		for (int i = 0; i < MAXV; i++)
			o[i] += sh[u][lane + WARP * i] * e;
	}
	float *ps = part + ((h * a.T + t) * nsplit + sp) * (a.hd + 2);
#pragma unroll
	for (int i = 0; i < MAXV; i++) {
		const int d = lane + WARP * i;
		if (d < a.hd)
			ps[d] = o[i];
	}
	if (lane == 0)
		ps[a.hd] = M, ps[a.hd + 1] = L;
}

/* One warp per (head, query): merge the splits. */
__global__ void attn_merge(dargs a, int nsplit, const float *part)
{
	const int h = blockIdx.x, lane = threadIdx.x;
	const int64_t t = blockIdx.y;
	const float *ps = part + (h * a.T + t) * nsplit * (a.hd + 2);
	float M = -INFINITY;
	for (int s = 0; s < nsplit; s++)
		if (ps[s * (a.hd + 2) + a.hd + 1] > 0.0f)
			M = fmaxf(M, ps[s * (a.hd + 2) + a.hd]);
	float L = 0.0f, o[MAXV] = {0};
	for (int s = 0; s < nsplit; s++) {
		const float *p = ps + s * (a.hd + 2);
		if (!(p[a.hd + 1] > 0.0f))
			continue;
		const float e = expf(p[a.hd] - M);
		L += p[a.hd + 1] * e;
#pragma unroll
		for (int i = 0; i < MAXV; i++) {
			const int d = lane + WARP * i;
			if (d < a.hd)
				o[i] += p[d] * e;
		}
	}
	const float inv = L > 0.0f ? 1.0f / L : 0.0f;
	float *out = a.out + (t * a.n_head + h) * a.hd;
#pragma unroll
	for (int i = 0; i < MAXV; i++) {
		const int d = lane + WARP * i;
		if (d < a.hd)
			out[d] = o[i] * inv;
	}
}

/* ---- prefill: query tiles over key tiles in shared memory ---- */

template <int F16> __global__ void __launch_bounds__(PRE_ROWS * WARP) attn_tiled(dargs a, int kt)
{
	extern __shared__ float smem[];
	const int hd = a.hd, ks = hd + 1; /* padded key rows: lane = key reads without bank conflicts */
	float *Ks = smem, *Vs = Ks + kt * ks, *Qs = Vs + kt * hd;
	const int h = blockIdx.y, lane = threadIdx.x % WARP, w = threadIdx.x / WARP, g = h / a.rep;
	const int64_t t = (int64_t)blockIdx.x * PRE_ROWS + w;
	const int64_t tl = (int64_t)blockIdx.x * PRE_ROWS + PRE_ROWS - 1 < a.T ? (int64_t)blockIdx.x * PRE_ROWS + PRE_ROWS - 1
										 : a.T - 1;
	const int64_t base = (int64_t)a.kv_len[g] - a.T + 1;
	const int64_t n = t < a.T ? base + t : 0, nmax = base + tl; /* keys row t sees; the tile's most */
	float *qs = Qs + w * hd;
	for (int d = lane; d < hd; d += WARP)
		qs[d] = t < a.T ? a.Q[(t * a.n_head + h) * hd + d] : 0.0f;
	float acc[MAXV] = {0}, m = -INFINITY, l = 0.0f;
	for (int64_t j0 = 0; j0 < nmax; j0 += kt) {
		__syncthreads(); /* the previous tile is consumed */
		for (int e = threadIdx.x; e < kt * hd; e += PRE_ROWS * WARP) {
			const int jj = e / hd, d = e % hd;
			const int64_t j = j0 + jj;
			float kv = 0.0f, vv = 0.0f;
			if (j < nmax) {
				kv = kvval<F16>(kvrow(a, a.K, g, j), d);
				vv = kvval<F16>(kvrow(a, a.V, g, j), d);
			}
			Ks[jj * ks + d] = kv;
			Vs[jj * hd + d] = vv;
		}
		__syncthreads();
		const int64_t j = j0 + lane;
		const int valid = lane < kt && j < n;
		float s = -INFINITY;
		if (valid) {
			float dot = 0.0f;
			for (int d = 0; d < hd; d++)
				dot += qs[d] * Ks[lane * ks + d];
			s = dot * a.scale;
		}
		const float mc = warp_max(s);
		if (mc == -INFINITY) /* no key of this tile visible to this row (warp-uniform) */
			continue;
		const float mn = fmaxf(m, mc), r = expf(m - mn);
		const float p = valid ? expf(s - mn) : 0.0f;
		l = l * r + warp_sum(p);
#pragma unroll
		for (int i = 0; i < MAXV; i++)
			acc[i] *= r;
		const int nk = kt < 32 ? kt : 32;
		for (int jj = 0; jj < nk; jj++) {
			const float pj = __shfl_sync(0xffffffffu, p, jj);
			if (pj == 0.0f)
				continue;
#pragma unroll
			for (int i = 0; i < MAXV; i++) {
				const int d = lane + WARP * i;
				if (d < hd)
					acc[i] += pj * Vs[jj * hd + d];
			}
		}
		m = mn;
	}
	if (t >= a.T)
		return;
	const float inv = l > 0.0f ? 1.0f / l : 0.0f;
	float *out = a.out + (t * a.n_head + h) * hd;
#pragma unroll
	for (int i = 0; i < MAXV; i++) {
		const int d = lane + WARP * i;
		if (d < hd)
			out[d] = acc[i] * inv;
	}
}

/* ---- host ---- */

extern "C" int weft_cuda_attention(const weft_cuda_attn *x)
{
	if (x->T <= 0 || x->n_head <= 0)
		return 0;
	if (x->hd <= 0 || x->hd > MAXV * WARP || x->n_head_kv <= 0 || x->n_head % x->n_head_kv) {
		weft_error("cuda attention: unsupported shape (n_head %d, n_head_kv %d, head_dim %d; head_dim <= %d)",
			   x->n_head, x->n_head_kv, x->hd, MAXV * WARP);
		return -1;
	}
	if (x->kv_type != WEFT_TYPE_F16 && x->kv_type != WEFT_TYPE_F32) {
		weft_error("cuda attention: K/V rows of type %u (F16 or F32 only)", x->kv_type);
		return -1;
	}
	int64_t max_len = 0;
	for (int g = 0; g < x->n_head_kv; g++) {
		if (x->kv_len[g] < x->T) {
			weft_error("cuda attention: KV head %d holds %d rows, fewer than the %lld queries", g, x->kv_len[g],
				   (long long)x->T);
			return -1;
		}
		max_len = x->kv_len[g] > max_len ? x->kv_len[g] : max_len;
	}
	cudaStream_t st = weft_cuda_stream();
	/* kv_len and kv_head_off to the device */
	const size_t lb = (size_t)x->n_head_kv * 8;
	uint8_t *meta = (uint8_t *)weft_cuda_scratch(1, 2 * lb);
	if (!meta)
		return -1;
	if (weft_cuda_err(cudaMemcpyAsync(meta, x->kv_len, (size_t)x->n_head_kv * 4, cudaMemcpyHostToDevice, st),
			  "attention lengths") ||
	    (x->kv_head_off && weft_cuda_err(cudaMemcpyAsync(meta + lb, x->kv_head_off, lb, cudaMemcpyHostToDevice, st),
					     "attention offsets")))
		return -1;
	dargs a;
	a.Q = x->dQ;
	a.K = (const uint8_t *)x->dK;
	a.V = (const uint8_t *)x->dV;
	a.row_bytes = (int64_t)x->hd * (x->kv_type == WEFT_TYPE_F16 ? 2 : 4);
	a.kv_head_rows = x->kv_head_rows;
	a.kv_len = (const int32_t *)meta;
	a.kv_head_off = x->kv_head_off ? (const int64_t *)(meta + lb) : NULL;
	a.T = x->T;
	a.n_head = x->n_head;
	a.rep = x->n_head / x->n_head_kv;
	a.hd = x->hd;
	a.scale = x->scale;
	a.out = x->dout;
	const int f16 = x->kv_type == WEFT_TYPE_F16;
	if (x->T <= 8) {
		/* splits of >= 64 keys, about 4 blocks per SM-sized share of work */
		int nsplit = (int)((max_len + 255) / 256);
		nsplit = nsplit < 1 ? 1 : nsplit > 64 ? 64 : nsplit;
		const int64_t chunk = (max_len + nsplit - 1) / nsplit;
		float *part = (float *)weft_cuda_scratch(2, (size_t)x->n_head * (size_t)x->T * (size_t)nsplit *
								  (size_t)(x->hd + 2) * 4);
		if (!part)
			return -1;
		const dim3 grid((unsigned)x->n_head, (unsigned)x->T, (unsigned)nsplit);
		if (f16)
			attn_split<1><<<grid, DEC_WARPS * WARP, 0, st>>>(a, chunk, nsplit, part);
		else
			attn_split<0><<<grid, DEC_WARPS * WARP, 0, st>>>(a, chunk, nsplit, part);
		if (weft_cuda_launched("attention (split)"))
			return -1;
		attn_merge<<<dim3((unsigned)x->n_head, (unsigned)x->T), WARP, 0, st>>>(a, nsplit, part);
		return weft_cuda_launched("attention (merge)");
	}
	const int kt = x->hd <= 128 ? 32 : 16;
	const size_t shm = ((size_t)kt * (x->hd + 1) + (size_t)kt * x->hd + (size_t)PRE_ROWS * x->hd) * 4;
	const dim3 grid(cdiv(x->T, PRE_ROWS), (unsigned)x->n_head);
	if (f16)
		attn_tiled<1><<<grid, PRE_ROWS * WARP, shm, st>>>(a, kt);
	else
		attn_tiled<0><<<grid, PRE_ROWS * WARP, shm, st>>>(a, kt);
	return weft_cuda_launched("attention (tiled)");
}

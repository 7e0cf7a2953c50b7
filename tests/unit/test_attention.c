/* test_attention.c - attention: every CPU level against a naive
 * full-matrix computation in double (masses included), the pool path
 * against the inline path, odd shapes, the public entry; and the
 * llama.cpp level (--numerics llama.cpp): its ops and its flash attention
 * against ggml's own row orders. */
#include <stdint.h>

#include "backend.h"
#include "kernels.h"
#include "ops_int.h"
#include "ops_util.h"
#include "test.h"
#include "util.h"

typedef struct attn_case {
	int64_t T;
	int n_head, n_head_kv, hd;
	int32_t kv_len[4];
	float qmag;
} attn_case;

typedef struct attn_data {
	weft_attn_args a;
	uint16_t *K, *V;
	float *Q;
	int64_t stride, mstride;
} attn_data;

static void attn_make(attn_data *d, const attn_case *c)
{
	memset(d, 0, sizeof *d);
	int64_t maxkv = 0;
	for (int g = 0; g < c->n_head_kv; g++)
		maxkv = c->kv_len[g] > maxkv ? c->kv_len[g] : maxkv;
	d->stride = (maxkv + 3) * c->hd; /* gaps between heads */
	d->mstride = maxkv + 5;
	d->K = malloc(sizeof(uint16_t) * (size_t)(d->stride * c->n_head_kv));
	d->V = malloc(sizeof(uint16_t) * (size_t)(d->stride * c->n_head_kv));
	for (int64_t i = 0; i < d->stride * c->n_head_kv; i++) {
		d->K[i] = weft_fp32_to_fp16(frand(1.0f));
		d->V[i] = weft_fp32_to_fp16(frand(2.0f));
	}
	d->Q = rand_vec(c->T * c->n_head * c->hd, c->qmag);
	d->a = (weft_attn_args){.Q = d->Q,
				.K = d->K,
				.V = d->V,
				.kv_type = WEFT_TYPE_F16,
				.kv_head_rows = d->stride / c->hd,
				.kv_len = c->kv_len,
				.T = c->T,
				.n_head = c->n_head,
				.n_head_kv = c->n_head_kv,
				.hd = c->hd,
				.scale = 1.0f / sqrtf((float)c->hd)};
}

static void attn_free(attn_data *d)
{
	free(d->K), free(d->V), free(d->Q);
}

/* Naive: the full score matrix of each head in double. */
static void attn_naive(const attn_data *d, double *out, double *mass)
{
	const weft_attn_args *a = &d->a;
	const int rep = a->n_head / a->n_head_kv, hd = a->hd;
	for (int h = 0; h < a->n_head; h++) {
		const int g = h / rep;
		const int64_t L = a->kv_len[g];
		double *S = malloc(sizeof(double) * (size_t)(a->T * L));
		for (int64_t t = 0; t < a->T; t++) {
			const int64_t n = L - a->T + t + 1;
			double mx = -INFINITY, sum = 0;
			for (int64_t j = 0; j < L; j++) {
				double s = 0;
				for (int k = 0; k < hd; k++)
					s += (double)a->Q[(t * a->n_head + h) * hd + k] *
					     weft_fp16_to_fp32(d->K[g * d->stride + j * hd + k]);
				S[t * L + j] = j < n ? s * a->scale : -INFINITY;
				mx = S[t * L + j] > mx ? S[t * L + j] : mx;
			}
			for (int64_t j = 0; j < L; j++)
				sum += n > 0 ? exp(S[t * L + j] - mx) : 0;
			double *o = out + (t * a->n_head + h) * hd;
			for (int k = 0; k < hd; k++)
				o[k] = 0;
			for (int64_t j = 0; j < n; j++) {
				const double p = exp(S[t * L + j] - mx) / sum;
				for (int k = 0; k < hd; k++)
					o[k] += p * weft_fp16_to_fp32(d->V[g * d->stride + j * hd + k]);
				mass[g * d->mstride + j] += p;
			}
		}
		free(S);
	}
}

static void attn_case_check(const attn_case *c, weft_pool *pool)
{
	attn_data d;
	attn_make(&d, c);
	const int64_t no = c->T * c->n_head * c->hd, nm = c->n_head_kv * d.mstride;
	double *eo = calloc((size_t)no, sizeof(double)), *em = calloc((size_t)nm, sizeof(double));
	attn_naive(&d, eo, em);
	float *out = malloc(sizeof(float) * (size_t)no), *out2 = malloc(sizeof(float) * (size_t)no);
	float *mass = malloc(sizeof(float) * (size_t)nm), *mass2 = malloc(sizeof(float) * (size_t)nm);
	for (int lvl = 0; lvl < N_CPU_LEVELS; lvl++) {
		const weft_ops_vt *vt = ops_at(lvl);
		if (!vt)
			continue;
		for (int with_mass = 0; with_mass < 2; with_mass++) {
			for (int64_t i = 0; i < nm; i++)
				mass[i] = 1.0f; /* mass accumulates */
			d.a.out = out;
			d.a.mass = with_mass ? mass : NULL;
			d.a.mass_stride = d.mstride;
			weft_attention_vt(NULL, &d.a, vt);
			/* per row: relative to the row's largest |value| */
			double worst = 0;
			for (int64_t r = 0; r < c->T * c->n_head; r++) {
				double mx = 1e-30, err = 0;
				for (int k = 0; k < c->hd; k++) {
					mx = fmax(mx, fabs(eo[r * c->hd + k]));
					err = fmax(err, fabs(out[r * c->hd + k] - eo[r * c->hd + k]));
				}
				if (eo[r * c->hd] == 0 && mx == 1e-30)
					mx = 1; /* a row with no keys: zeros */
				worst = fmax(worst, err / mx);
			}
			if (!(worst <= 1e-5))
				FAILF("%s T=%lld hd=%d kv=%d,%d,%d: out rel err %g", vt->name, (long long)c->T, c->hd,
				      c->kv_len[0], c->kv_len[1], c->kv_len[2], worst);
			if (with_mass) {
				for (int64_t i = 0; i < nm; i++)
					if (!(fabs(mass[i] - 1.0 - em[i]) <= 1e-5 * (1 + em[i]))) {
						FAILF("%s T=%lld: mass[%lld] = %g, expected %g", vt->name, (long long)c->T,
						      (long long)i, mass[i] - 1.0, em[i]);
						break;
					}
			}
			/* the pool path is bit-identical */
			if (pool) {
				for (int64_t i = 0; i < nm; i++)
					mass2[i] = 1.0f;
				d.a.out = out2;
				d.a.mass = with_mass ? mass2 : NULL;
				weft_attention_vt(pool, &d.a, vt);
				CHECK(memcmp(out, out2, sizeof(float) * (size_t)no) == 0);
				if (with_mass)
					CHECK(memcmp(mass, mass2, sizeof(float) * (size_t)nm) == 0);
			}
		}
	}
	/* float32 K/V (the same values widened): every level's kernels (the
	 * AVX-512 ones read them, the others fall back to the references)
	 * give the naive result */
	const int64_t nkv = d.stride * c->n_head_kv;
	float *Kf = malloc(sizeof(float) * (size_t)nkv), *Vf = malloc(sizeof(float) * (size_t)nkv);
	for (int64_t i = 0; i < nkv; i++)
		Kf[i] = weft_fp16_to_fp32(d.K[i]), Vf[i] = weft_fp16_to_fp32(d.V[i]);
	for (int lvl = 0; lvl < N_CPU_LEVELS; lvl++) {
		const weft_ops_vt *vt = ops_at(lvl);
		if (!vt)
			continue;
		weft_attn_args a32 = d.a;
		a32.K = Kf, a32.V = Vf, a32.kv_type = WEFT_TYPE_F32;
		for (int64_t i = 0; i < nm; i++)
			mass[i] = 0.0f;
		a32.out = out, a32.mass = mass, a32.mass_stride = d.mstride;
		weft_attention_vt(pool, &a32, vt);
		double worst = 0;
		for (int64_t r = 0; r < c->T * c->n_head; r++) { /* per row, as above */
			double mx = 1e-30, err = 0;
			for (int k = 0; k < c->hd; k++) {
				mx = fmax(mx, fabs(eo[r * c->hd + k]));
				err = fmax(err, fabs(out[r * c->hd + k] - eo[r * c->hd + k]));
			}
			worst = fmax(worst, eo[r * c->hd] == 0 && mx == 1e-30 ? err : err / mx);
		}
		for (int64_t i = 0; i < nm; i++)
			worst = fmax(worst, fabs(mass[i] - em[i]) / (1 + em[i]));
		if (!(worst <= 1e-5))
			FAILF("%s f32 K/V T=%lld hd=%d: rel err %g", vt->name, (long long)c->T, c->hd, worst);
	}
	/* Q8_0 K/V rows (a quantized cache): every level (all fall back to the
	 * scalar references, which dequantize each row) equals the scalar
	 * reference over the dequantized rows as F32, bit for bit */
	if (c->hd % 32 == 0) {
		const int64_t rb = (int64_t)weft_type_row_bytes(WEFT_TYPE_Q8_0, (uint64_t)c->hd), rows = nkv / c->hd;
		uint8_t *Kq = malloc((size_t)(rows * rb)), *Vq = malloc((size_t)(rows * rb));
		for (int64_t r = 0; r < rows; r++) {
			CHECK(weft_quantize_row(WEFT_TYPE_Q8_0, Kf + r * c->hd, Kq + r * rb, c->hd) == 0 &&
			      weft_quantize_row(WEFT_TYPE_Q8_0, Vf + r * c->hd, Vq + r * rb, c->hd) == 0 &&
			      weft_dequantize_row(WEFT_TYPE_Q8_0, Kq + r * rb, Kf + r * c->hd, c->hd) == 0 &&
			      weft_dequantize_row(WEFT_TYPE_Q8_0, Vq + r * rb, Vf + r * c->hd, c->hd) == 0);
		}
		weft_attn_args ad = d.a;
		ad.K = Kf, ad.V = Vf, ad.kv_type = WEFT_TYPE_F32, ad.out = out, ad.mass = mass, ad.mass_stride = d.mstride;
		for (int64_t i = 0; i < nm; i++)
			mass[i] = 0.0f;
		weft_attention_vt(pool, &ad, ref());
		for (int lvl = 0; lvl < WEFT_LEVEL_N; lvl++) {
			const weft_ops_vt *vt = ops_at(lvl);
			if (!vt)
				continue;
			weft_attn_args aq = d.a;
			aq.K = Kq, aq.V = Vq, aq.kv_type = WEFT_TYPE_Q8_0, aq.out = out2, aq.mass = mass2;
			aq.mass_stride = d.mstride;
			for (int64_t i = 0; i < nm; i++)
				mass2[i] = 0.0f;
			weft_attention_vt(pool, &aq, vt);
			if (memcmp(out, out2, sizeof(float) * (size_t)(c->T * c->n_head * c->hd)) ||
			    memcmp(mass, mass2, sizeof(float) * (size_t)nm))
				FAILF("%s q8_0 K/V T=%lld hd=%d: differs from the reference over the dequantized rows",
				      vt->name, (long long)c->T, c->hd);
		}
		free(Kq), free(Vq);
	}
	free(Kf), free(Vf);
	free(eo), free(em), free(out), free(out2), free(mass), free(mass2);
	attn_free(&d);
}

static void test_attention(void)
{
	weft_pool *pool = weft_pool_new(3);
	CHECK(pool != NULL);
	const int64_t Ts[] = {1, 5, 16};
	for (int i = 0; i < 3; i++)
		for (int extra = 0; extra <= 9; extra += 9) {
			const int32_t L = (int32_t)(Ts[i] + extra);
			attn_case c = {Ts[i], 9, 3, 64, {L, L, L}, 1.0f};
			attn_case_check(&c, pool);
			/* different kv_len per KV head */
			attn_case c2 = {Ts[i], 9, 3, 64, {L, L + 4, L + 70}, 1.0f};
			attn_case_check(&c2, pool);
		}
	weft_pool_free(pool);
}

static void test_attention_shapes(void)
{
	weft_pool *pool = weft_pool_new(2);
	/* head dims off the vector width, MHA, MQA, peaked softmax, long
	 * rows (several key blocks), a row chunked mass (T > 227 rows) */
	attn_case cs[] = {
		{5, 4, 4, 72, {14, 14, 14, 14}, 1.0f},	   {7, 6, 1, 40, {300, 0, 0, 0}, 1.0f},
		{3, 2, 2, 13, {3, 9, 0, 0}, 1.0f},	   {4, 9, 3, 64, {140, 260, 600, 0}, 6.0f},
		{2, 2, 1, 128, {520, 0, 0, 0}, 3.0f},	   {300, 9, 3, 64, {309, 300, 320, 0}, 1.0f},
		{6, 3, 3, 64, {4, 6, 8, 0}, 1.0f}, /* kv_len < T: first rows see nothing */
	};
	for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
		attn_case_check(&cs[i], pool);
	weft_pool_free(pool);
}

static void test_attention_public(void)
{
	/* weft_attention (current level) equals its table's direct call */
	attn_case c = {5, 9, 3, 64, {14, 14, 14}, 1.0f};
	attn_data d;
	attn_make(&d, &c);
	const int64_t no = c.T * c.n_head * c.hd;
	float *o1 = malloc(sizeof(float) * no), *o2 = malloc(sizeof(float) * no);
	d.a.out = o1;
	weft_attention(NULL, &d.a);
	d.a.out = o2;
	weft_attention_vt(NULL, &d.a, weft_ops_get());
	CHECK(memcmp(o1, o2, sizeof(float) * no) == 0);
	free(o1), free(o2);
	attn_free(&d);
}

/* The llama.cpp level's ops (kernels/llamacpp_avx512.c).  RoPE is ggml's
 * rotate_pairs as gcc contracts it (x0 c - x1 s with the c product fused,
 * x0 s + x1 c with the s product fused), bit for bit; SwiGLU is within
 * float error of the scalar reference (ggml's exp polynomial); attention,
 * whose weighted V sum is kept in IEEE half as ggml's is, is within that
 * rounding of the naive result, with and without mass, and the pool path
 * is bit-identical.  Identity with llama.cpp itself, token for token, is
 * test_model's smollm2_llamacpp_numerics. */
static double attn_row_err(const float *out, const double *eo, int64_t rows, int hd)
{
	double worst = 0;
	for (int64_t r = 0; r < rows; r++) {
		double mx = 1e-30, err = 0;
		for (int k = 0; k < hd; k++) {
			mx = fmax(mx, fabs(eo[r * hd + k]));
			err = fmax(err, fabs(out[r * hd + k] - eo[r * hd + k]));
		}
		worst = fmax(worst, eo[r * hd] == 0 && mx == 1e-30 ? err : err / mx);
	}
	return worst;
}

/* ggml's two flash-attention kernels restated in scalar C, for one row t of
 * head h (F16 K/V; head_dim a multiple of 64 for the first): what the
 * llama.cpp level must give bit for bit. */
static float h16(float x) { return weft_fp16_to_fp32(weft_fp32_to_fp16(x)); }

static float ggml_v_expf1(float x) /* ggml_v_expf, AVX-512, one lane */
{
	const float z = fmaf(x, 0x1.715476p+0f, 0x1.8p23f), n = z - 0x1.8p23f;
	const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x)), u = b * b;
	const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
			     u, fmaf(0x1.ffffecp-1f, b, 1.0f));
	return fabsf(n) > 192.0f ? (n <= 0.0f ? 0.0f : INFINITY) : ldexpf(j, (int)n);
}

static float reduce16(const float *v) /* gcc's _mm512_reduce_add_ps */
{
	float t8[8], t4[4];
	for (int l = 0; l < 8; l++)
		t8[l] = v[8 + l] + v[l];
	for (int l = 0; l < 4; l++)
		t4[l] = t8[4 + l] + t8[l];
	return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

static void ggml_fa_row(const attn_data *d, int h, int64_t t, int tiled, float *o)
{
	const weft_attn_args *a = &d->a;
	const int hd = a->hd, g = h / (a->n_head / a->n_head_kv);
	const uint16_t *K = d->K + g * d->stride, *V = d->V + g * d->stride;
	const float *q = a->Q + (t * a->n_head + h) * hd;
	const int64_t n = (int64_t)a->kv_len[g] - a->T + t + 1;
	float acc[128] = {0}, M = -INFINITY, S = 0.0f;
	if (!tiled) { /* ggml_compute_forward_flash_attn_ext_f16_one_chunk */
		for (int64_t j = 0; j < n; j++) {
			float lane[64] = {0}, v[16];
			for (int i = 0; i < hd; i += 64)
				for (int l = 0; l < 64; l++)
					lane[l] = fmaf(weft_fp16_to_fp32(K[j * hd + i + l]), h16(q[i + l]), lane[l]);
			for (int l = 0; l < 16; l++)
				v[l] = (lane[l] + lane[32 + l]) + (lane[16 + l] + lane[48 + l]);
			const float s = (float)(double)reduce16(v) * a->scale, Mold = M;
			float ms = 1.0f, vs = 1.0f;
			if (s > M) {
				M = s;
				ms = expf(Mold - M);
				for (int k = 0; k < hd; k++)
					acc[k] = h16(acc[k] * ms);
			} else {
				vs = expf(s - M);
			}
			for (int k = 0; k < hd; k++)
				acc[k] = h16(fmaf(weft_fp16_to_fp32(V[j * hd + k]), vs, acc[k]));
			S = fmaf(S, ms, vs);
		}
	} else { /* ggml_compute_forward_flash_attn_ext_tiled: tiles of 64 keys */
		for (int64_t ic = 0; ic < n; ic += 64) {
			float p[64], tmax = -INFINITY;
			for (int tk = 0; tk < 64; tk++) {
				float sc = 0.0f;
				for (int k = 0; k < hd && ic + tk < n; k++)
					sc = fmaf(q[k], weft_fp16_to_fp32(K[(ic + tk) * hd + k]), sc);
				p[tk] = ic + tk < n ? sc * a->scale : -INFINITY;
				tmax = tmax > p[tk] ? tmax : p[tk];
			}
			const float Mnew = fmaxf(M, tmax);
			if (Mnew > M) {
				const float ms = expf(M - Mnew);
				for (int k = 0; k < hd; k++)
					acc[k] *= ms;
				S *= ms;
			}
			M = Mnew;
			double sum = 0;
			for (int g16 = 0; g16 < 64; g16 += 16) {
				for (int l = 0; l < 16; l++)
					p[g16 + l] = ggml_v_expf1(p[g16 + l] - M);
				sum += (double)reduce16(p + g16);
			}
			S = (float)((double)S + sum);
			for (int k = 0; k < hd; k++)
				for (int tk = 0; tk < 64 && ic + tk < n; tk++)
					acc[k] = fmaf(p[tk], weft_fp16_to_fp32(V[(ic + tk) * hd + k]), acc[k]);
		}
	}
	const float inv = S == 0.0f ? 0.0f : 1.0f / S;
	for (int k = 0; k < hd; k++)
		o[k] = acc[k] * inv;
}

static void test_llamacpp_ops(void)
{
	const weft_ops_vt *v = ops_at(WEFT_LEVEL_LLAMACPP), *r = ref();
	if (!v)
		SKIP("this CPU lacks the AVX-512 level whose llama.cpp build the llama.cpp level reproduces");
	const int64_t rots[][2] = {{64, 64}, {64, 32}, {128, 128}, {80, 80}, {2, 2}};
	for (size_t c = 0; c < sizeof rots / sizeof rots[0]; c++)
		for (int neox = 0; neox < 2; neox++) {
			const int64_t hd = rots[c][0], rot = rots[c][1], nh = 3, pos = 1000 + 77 * (int64_t)c;
			float *x = rand_vec(nh * hd, 3), *y = dup_vec(x, nh * hd), *e = dup_vec(x, nh * hd);
			float cs[2 * 64];
			weft_rope_cache(cs, 0, rot / 2, rot, pos, 100000.0f, 1.0f);
			for (int64_t h = 0; h < nh; h++)
				for (int64_t i = 0; i < rot / 2; i++) {
					const int64_t i0 = h * hd + (neox ? i : 2 * i), i1 = i0 + (neox ? rot / 2 : 1);
					const float co = cs[2 * i], si = cs[2 * i + 1];
					e[i0] = fmaf(x[i0], co, -(x[i1] * si));
					e[i1] = fmaf(x[i0], si, x[i1] * co);
				}
			v->rope(y, nh, hd, rot, pos, 100000.0f, 1.0f, neox);
			CHECK(memcmp(y, e, sizeof(float) * (size_t)(nh * hd)) == 0);
			r->rope(x, nh, hd, rot, pos, 100000.0f, 1.0f, neox);
			CHECK(max_rel_f(y, x, nh * hd, 1.0) <= 1e-6);
			free(x), free(y), free(e);
		}
	for (int si = 0; si < N_SIZES; si++) {
		const int n = sizes[si];
		float *g = rand_vec(n, 12), *u = rand_vec(n, 2), *ya = rand_vec(n, 1), *yb = dup_vec(ya, n);
		r->swiglu(ya, g, u, n), v->swiglu(yb, g, u, n);
		if (max_rel_f(yb, ya, n, 1e-6) > 4e-6)
			FAILF("llama.cpp swiglu n=%d: %g", n, max_rel_f(yb, ya, n, 1e-6));
		free(g), free(u), free(ya), free(yb);
	}
	float g[16] = {-200, -104, -100, -88, -87, -1e-30f, 0, 1e-30f, 1, 20, 80, 88, 89, 100, 150, 200}, u[16];
	float ya[16], yb[16];
	for (int i = 0; i < 16; i++)
		u[i] = 1.0f;
	r->swiglu(ya, g, u, 16), v->swiglu(yb, g, u, 16);
	for (int i = 0; i < 16; i++)
		CHECK_NEAR(yb[i], ya[i], 4e-6 * fabs(ya[i]) + 1e-37);

	weft_pool *pool = weft_pool_new(3);
	const attn_case cs[] = {{1, 9, 3, 64, {1, 1, 1}, 1.0f},	    {5, 9, 3, 64, {14, 18, 84}, 1.0f},
				{16, 9, 3, 64, {16, 16, 16}, 4.0f},  {2, 2, 1, 128, {520, 0, 0, 0}, 3.0f},
				{3, 4, 4, 72, {9, 9, 9, 9}, 1.0f},   {6, 3, 3, 64, {4, 6, 8, 0}, 1.0f},
				/* 64 rows or more: llama.cpp's tiled kernel, float32 sums */
				{70, 9, 3, 64, {70, 100, 200}, 2.0f}, {64, 4, 2, 72, {64, 64, 0, 0}, 1.0f}};
	double worst_out = 0, worst_mass = 0, worst_tiled = 0;
	for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
		const attn_case *c = &cs[i];
		attn_data d;
		attn_make(&d, c);
		const int64_t no = c->T * c->n_head * c->hd, nm = c->n_head_kv * d.mstride;
		double *eo = calloc((size_t)no, sizeof(double)), *em = calloc((size_t)nm, sizeof(double));
		attn_naive(&d, eo, em);
		float *o1 = malloc(sizeof(float) * no), *o2 = malloc(sizeof(float) * no);
		float *m1 = calloc((size_t)nm, sizeof(float)), *m2 = calloc((size_t)nm, sizeof(float));
		d.a.out = o1, d.a.mass = m1, d.a.mass_stride = d.mstride;
		weft_attention_vt(NULL, &d.a, v);
		d.a.out = o2, d.a.mass = m2;
		weft_attention_vt(pool, &d.a, v);
		CHECK(memcmp(o1, o2, sizeof(float) * no) == 0 && memcmp(m1, m2, sizeof(float) * nm) == 0);
		const double e = attn_row_err(o1, eo, c->T * c->n_head, c->hd);
		if (c->T >= 64)
			worst_tiled = fmax(worst_tiled, e);
		else
			worst_out = fmax(worst_out, e);
		for (int64_t j = 0; j < nm; j++)
			worst_mass = fmax(worst_mass, fabs(m1[j] - em[j]) / (1 + em[j]));
		d.a.mass = NULL; /* without mass: the same outputs */
		weft_attention_vt(pool, &d.a, v);
		CHECK(memcmp(o1, o2, sizeof(float) * no) == 0);
		free(eo), free(em), free(o1), free(o2), free(m1), free(m2);
		attn_free(&d);
	}
	/* bit for bit against the restatement: decode-sized and prompt-sized
	 * batches, kv_len < T (rows that see nothing), head dims 64 and 128 */
	const attn_case ex[] = {{1, 9, 3, 64, {130, 7, 1}, 2.0f}, {5, 4, 2, 128, {40, 5, 0, 0}, 1.0f},
				{70, 9, 3, 64, {70, 100, 200}, 2.0f}, {66, 2, 1, 128, {60, 0, 0, 0}, 3.0f}};
	for (size_t i = 0; i < sizeof ex / sizeof ex[0] && !t_failed; i++) {
		const attn_case *c = &ex[i];
		attn_data d;
		attn_make(&d, c);
		const int64_t no = c->T * c->n_head * c->hd;
		float *o1 = malloc(sizeof(float) * no), e[128];
		d.a.out = o1, d.a.mass = NULL;
		weft_attention_vt(pool, &d.a, v);
		for (int64_t t = 0; t < c->T && !t_failed; t++)
			for (int h = 0; h < c->n_head; h++) {
				ggml_fa_row(&d, h, t, c->T >= 64, e);
				if (memcmp(e, o1 + (t * c->n_head + h) * c->hd, sizeof(float) * (size_t)c->hd)) {
					FAILF("llama.cpp attention T=%lld hd=%d row %lld head %d differs from ggml's order",
					      (long long)c->T, c->hd, (long long)t, h);
					break;
				}
			}
		free(o1);
		attn_free(&d);
	}
	printf("# llama.cpp attention: out rel err %.2g (half accumulator), %.2g (tiled), mass %.2g\n", worst_out,
	       worst_tiled, worst_mass);
	CHECK(worst_out <= 1e-2);
	CHECK(worst_tiled <= 1e-5);
	CHECK(worst_out > 1e-5); /* the half-precision accumulator shows */
	CHECK(worst_mass <= 5e-4);
	weft_pool_free(pool);
}

int main(void)
{
	t_suite = "attention";
	RUN(test_attention);
	RUN(test_attention_shapes);
	RUN(test_attention_public);
	RUN(test_llamacpp_ops);
	TEST_MAIN_END();
}

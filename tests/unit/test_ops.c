/* test_ops.c - the float ops and attention: scalar references against
 * double-precision formulas and hand-checked cases, every SIMD level
 * against the scalar reference, attention against a naive full-matrix
 * computation in double, and the pool path against the inline path. */
#include <stdint.h>

#include "backend.h"
#include "kernels.h"
#include "ops_int.h"
#include "test.h"
#include "util.h"

/* The CPU levels whose ops are compared with the scalar reference (the
 * llama.cpp level has its own tests: test_llamacpp_ops). */
#define N_CPU_LEVELS WEFT_LEVEL_LLAMACPP
static const char *lvl_names[N_CPU_LEVELS] = {"scalar", "avx2", "avx512"};

/* The ops of a level's backend, or NULL when this CPU lacks it. */
static const weft_ops_vt *ops_at(weft_level lvl)
{
	const weft_backend *b = weft_backend_at(lvl);
	return b ? &b->ops : NULL;
}
static const int sizes[] = {1, 7, 64, 576, 1000};
#define N_SIZES (int)(sizeof sizes / sizeof sizes[0])

/* deterministic pseudo-random floats in [-r, r) */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static float frand(float r)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0) * r;
}

static float *rand_vec(int64_t n, float r)
{
	float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
	for (int64_t i = 0; i < n; i++)
		v[i] = frand(r);
	return v;
}

static float *dup_vec(const float *x, int64_t n)
{
	float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
	memcpy(v, x, sizeof(float) * (size_t)n);
	return v;
}

/* max |a-b| / (|b| + floor) over n */
static double max_rel(const float *a, const double *b, int64_t n, double floor)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - b[i]) / (fabs(b[i]) + floor);
		if (!(e <= m))
			m = e;
	}
	return m;
}

static double max_rel_f(const float *a, const float *b, int64_t n, double floor)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - (double)b[i]) / (fabs((double)b[i]) + floor);
		if (!(e <= m))
			m = e;
	}
	return m;
}

static const weft_ops_vt *ref(void)
{
	return ops_at(WEFT_LEVEL_SCALAR);
}

/* ---- scalar references vs double formulas ---- */

static void test_rmsnorm_ref(void)
{
	for (int si = 0; si < N_SIZES; si++) {
		int n = sizes[si];
		float *x = rand_vec(n, 3), *w = rand_vec(n, 2), *y = rand_vec(n, 1);
		double *e = malloc(sizeof(double) * (size_t)n), ss = 0;
		for (int i = 0; i < n; i++)
			ss += (double)x[i] * x[i];
		double sc = 1.0 / sqrt(ss / n + 1e-5);
		for (int i = 0; i < n; i++)
			e[i] = x[i] * sc * w[i];
		ref()->rmsnorm(y, x, w, n, 1e-5f);
		CHECK(max_rel(y, e, n, 1e-3) < 1e-6);
		for (int i = 0; i < n; i++)
			e[i] = x[i] * sc;
		ref()->rmsnorm(y, x, NULL, n, 1e-5f);
		CHECK(max_rel(y, e, n, 1e-3) < 1e-6);
		free(x), free(w), free(y), free(e);
	}
	/* constant vector: x / |x| exactly, times w */
	float x[8], y[8], w[8];
	for (int i = 0; i < 8; i++)
		x[i] = -2.5f, w[i] = (float)i;
	ref()->rmsnorm(y, x, w, 8, 0.0f);
	for (int i = 0; i < 8; i++)
		CHECK_NEAR(y[i], -(double)i, 1e-6);
	/* in place */
	ref()->rmsnorm(x, x, NULL, 8, 0.0f);
	CHECK_NEAR(x[3], -1.0, 1e-7);
}

static void test_layernorm_ref(void)
{
	for (int si = 1; si < N_SIZES; si++) {
		int n = sizes[si];
		float *x = rand_vec(n, 3), *w = rand_vec(n, 2), *b = rand_vec(n, 1), *y = rand_vec(n, 1);
		for (int i = 0; i < n; i++)
			x[i] += 1.5f; /* a non-zero mean */
		double *e = malloc(sizeof(double) * (size_t)n), s = 0, v = 0;
		for (int i = 0; i < n; i++)
			s += x[i];
		s /= n;
		for (int i = 0; i < n; i++)
			v += (x[i] - s) * (x[i] - s);
		double sc = 1.0 / sqrt(v / n + 1e-5);
		for (int i = 0; i < n; i++)
			e[i] = (x[i] - s) * sc * w[i] + b[i];
		ref()->layernorm(y, x, w, b, n, 1e-5f);
		CHECK(max_rel(y, e, n, 1e-2) < 2e-6);
		for (int i = 0; i < n; i++)
			e[i] = (x[i] - s) * sc;
		ref()->layernorm(y, x, NULL, NULL, n, 1e-5f);
		CHECK(max_rel(y, e, n, 1e-2) < 2e-6);
		free(x), free(w), free(b), free(y), free(e);
	}
	/* constant vector: zero variance, output = b */
	float x[5] = {4, 4, 4, 4, 4}, b[5] = {1, 2, 3, 4, 5}, y[5];
	ref()->layernorm(y, x, NULL, b, 5, 1e-5f);
	for (int i = 0; i < 5; i++)
		CHECK(y[i] == b[i]);
	/* [-1, 1]: mean 0, variance 1 */
	float z[2] = {-1, 1};
	ref()->layernorm(y, z, NULL, NULL, 2, 0.0f);
	CHECK(y[0] == -1.0f && y[1] == 1.0f);
}

/* rope in double; ggml_theta = 1: theta from float iterations as ggml does,
 * else exact pos * scale * base^(-2i/rot). */
static void rope_double(double *o, const float *x, int64_t nh, int64_t hd, int64_t rot, int64_t pos, float base,
			float fs, int neox, int ggml_theta)
{
	float th = (float)pos, ts = powf(base, -2.0f / (float)rot);
	for (int64_t h = 0; h < nh; h++)
		for (int64_t d = 0; d < hd; d++)
			o[h * hd + d] = x[h * hd + d];
	for (int64_t i = 0; i < rot / 2; i++) {
		double a = ggml_theta ? (double)(fs * th) : (double)pos * fs * pow(base, -2.0 * (double)i / (double)rot);
		th *= ts;
		for (int64_t h = 0; h < nh; h++) {
			int64_t i0 = h * hd + (neox ? i : 2 * i), i1 = h * hd + (neox ? i + rot / 2 : 2 * i + 1);
			double x0 = x[i0], x1 = x[i1];
			o[i0] = x0 * cos(a) - x1 * sin(a);
			o[i1] = x0 * sin(a) + x1 * cos(a);
		}
	}
}

static void test_rope_ref(void)
{
	const int64_t nh = 3, hd = 64;
	float *x = rand_vec(nh * hd, 2), *y = malloc(sizeof(float) * nh * hd);
	double *e = malloc(sizeof(double) * nh * hd);
	/* pos 0 is the identity */
	for (int neox = 0; neox < 2; neox++) {
		memcpy(y, x, sizeof(float) * nh * hd);
		ref()->rope(y, nh, hd, hd, 0, 10000.0f, 1.0f, neox);
		CHECK(memcmp(x, y, sizeof(float) * nh * hd) == 0);
	}
	/* hand case: head_dim 2, pos 1, base anything: rotate (1, 0) by 1 rad */
	float p[2] = {1, 0};
	ref()->rope(p, 1, 2, 2, 1, 10000.0f, 1.0f, 0);
	CHECK_NEAR(p[0], cos(1.0), 1e-7);
	CHECK_NEAR(p[1], sin(1.0), 1e-7);
	/* freq_scale 0.5 at pos 2 is pos 1 */
	float q[2] = {0, 1};
	ref()->rope(q, 1, 2, 2, 2, 10000.0f, 0.5f, 1);
	CHECK_NEAR(q[0], -sin(1.0), 1e-7);
	CHECK_NEAR(q[1], cos(1.0), 1e-7);
	struct {
		int64_t rot, pos;
		float base, fs;
		int neox;
	} cs[] = {{64, 3, 10000, 1, 0}, {64, 17, 10000, 1, 1}, {32, 5, 100000, 1, 0},
		  {48, 9, 1e6f, 0.25f, 1}, {64, 1000, 10000, 1, 0}, {40, 4097, 500000, 1, 1}};
	for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
		memcpy(y, x, sizeof(float) * nh * hd);
		ref()->rope(y, nh, hd, cs[c].rot, cs[c].pos, cs[c].base, cs[c].fs, cs[c].neox);
		/* theta as ggml computes it: tight */
		rope_double(e, x, nh, hd, cs[c].rot, cs[c].pos, cs[c].base, cs[c].fs, cs[c].neox, 1);
		if (max_rel(y, e, nh * hd, 0.1) > 2e-6)
			FAILF("rope case %zu vs ggml theta: %g", c, max_rel(y, e, nh * hd, 0.1));
		/* exact theta: float iteration error grows with pos */
		if (cs[c].pos < 100) {
			rope_double(e, x, nh, hd, cs[c].rot, cs[c].pos, cs[c].base, cs[c].fs, cs[c].neox, 0);
			if (max_rel(y, e, nh * hd, 0.1) > 2e-5)
				FAILF("rope case %zu vs exact theta: %g", c, max_rel(y, e, nh * hd, 0.1));
		}
		/* dims past rot_dim untouched */
		for (int64_t h = 0; h < nh; h++)
			CHECK(memcmp(y + h * hd + cs[c].rot, x + h * hd + cs[c].rot, sizeof(float) * (size_t)(hd - cs[c].rot)) == 0);
	}
	free(x), free(y), free(e);
}

static void test_softmax_ref(void)
{
	for (int si = 0; si < N_SIZES; si++) {
		int n = sizes[si];
		float *x = rand_vec(n, 8);
		double *e = malloc(sizeof(double) * (size_t)n), mx = -INFINITY, s = 0;
		for (int i = 0; i < n; i++)
			mx = x[i] > mx ? x[i] : mx;
		for (int i = 0; i < n; i++)
			s += exp(x[i] - mx);
		for (int i = 0; i < n; i++)
			e[i] = exp(x[i] - mx) / s;
		ref()->softmax(x, n);
		CHECK(max_rel(x, e, n, 0) < 1e-6);
		free(x), free(e);
	}
	float u[7];
	for (int i = 0; i < 7; i++)
		u[i] = 1000.0f; /* large equal values: uniform, no overflow */
	ref()->softmax(u, 7);
	for (int i = 0; i < 7; i++)
		CHECK_NEAR(u[i], 1.0 / 7, 1e-7);
	float v[3] = {0, -INFINITY, 0};
	ref()->softmax(v, 3);
	CHECK(v[0] == 0.5f && v[1] == 0.0f && v[2] == 0.5f);
}

static double d_silu(double x)
{
	return x / (1 + exp(-x));
}

static void test_activations_ref(void)
{
	const int n = 1000;
	float *x = rand_vec(n, 12), *u = rand_vec(n, 2), *y = malloc(sizeof(float) * n);
	double *e = malloc(sizeof(double) * n);
	for (int i = 0; i < n; i++)
		e[i] = d_silu(x[i]) * u[i];
	ref()->swiglu(y, x, u, n);
	CHECK(max_rel(y, e, n, 1e-6) < 1e-6);
	for (int i = 0; i < n; i++)
		e[i] = d_silu(x[i]);
	memcpy(y, x, sizeof(float) * n);
	ref()->silu(y, n);
	CHECK(max_rel(y, e, n, 1e-6) < 1e-6);
	CHECK_NEAR(y[0], e[0], 1e-5);
	/* float-precision GELUs (vision encoders), against double math */
	for (int i = 0; i < n; i++) {
		double t = 3 * x[i];
		e[i] = 0.5 * t * (1 + tanh(sqrt(2 / M_PI) * t * (1 + 0.044715 * t * t)));
		y[i] = (float)t;
	}
	ref()->xsigmoid(y, n, 1.5957691216057308f, 1.5957691216057308f * 0.044715f);
	CHECK(max_rel(y, e, n, 1e-6) < 2e-6);
	for (int i = 0; i < n; i++) {
		double t = 3 * x[i];
		e[i] = t / (1 + exp(-1.702 * t));
		y[i] = (float)t;
	}
	ref()->xsigmoid(y, n, 1.702f, 0.0f);
	CHECK(max_rel(y, e, n, 1e-6) < 2e-6);
	for (int i = 0; i < n; i++) {
		double t = 3 * x[i];
		e[i] = 0.5 * t * (1 + erf(t / sqrt(2.0)));
		y[i] = (float)t;
	}
	weft_gelu_erf(y, n);
	/* 1 + erff(x) cancels for x << 0 (as in torch's float GELU): absolute
	 * error about ulp(1) |x|, hence the floor */
	CHECK(max_rel(y, e, n, 0.05) < 4e-6);
	/* GELU (tanh approximation) through ggml's f16 table: f16-precise */
	for (int i = 0; i < n; i++) {
		double t = x[i];
		e[i] = 0.5 * t * (1 + tanh(sqrt(2 / M_PI) * t * (1 + 0.044715 * t * t)));
	}
	memcpy(y, x, sizeof(float) * n);
	ref()->gelu(y, n);
	for (int i = 0; i < n; i++)
		if (fabs(y[i] - e[i]) > 2e-3 * (fabs(x[i]) + fabs(e[i])) + 1e-6) {
			FAILF("gelu(%g) = %g, expected %g", x[i], y[i], e[i]);
			break;
		}
	float g[6] = {-10.0f, -10.5f, 10.0f, 37.0f, 0.0f, 1.0f};
	ref()->gelu(g, 6);
	CHECK(g[0] == 0 && g[1] == 0 && g[2] == 10.0f && g[3] == 37.0f && g[4] == 0);
	/* f16-representable x: exactly fp16(float formula), as llama.cpp */
	CHECK(g[5] == weft_fp16_to_fp32(weft_fp32_to_fp16(0.5f * (1.0f + tanhf(0.7978845608f * 1.044715f)))));
	for (int i = 0; i < n; i++)
		e[i] = (double)x[i] / (1 + exp(-1.702 * x[i]));
	memcpy(y, x, sizeof(float) * n);
	ref()->gelu_quick(y, n);
	for (int i = 0; i < n; i++)
		if (fabs(y[i] - e[i]) > 2e-3 * (fabs(x[i]) + fabs(e[i])) + 1e-6) {
			FAILF("gelu_quick(%g) = %g, expected %g", x[i], y[i], e[i]);
			break;
		}
	free(x), free(u), free(y), free(e);
}

static void test_add_convert_ref(void)
{
	float y[3] = {1, 2, 3}, x[3] = {0.5f, -2, 1e30f};
	ref()->add(y, x, 3);
	CHECK(y[0] == 1.5f && y[1] == 0 && y[2] == 1e30f);
	/* every half round-trips */
	uint16_t *h = malloc(sizeof(uint16_t) * 65536), *h2 = malloc(sizeof(uint16_t) * 65536);
	float *f = malloc(sizeof(float) * 65536);
	for (int i = 0; i < 65536; i++)
		h[i] = (uint16_t)i;
	ref()->f16_to_f32(f, h, 65536);
	ref()->f32_to_f16(h2, f, 65536);
	int bad = 0;
	for (int i = 0; i < 65536; i++)
		if (isnan(f[i]) ? (h2[i] & 0x7c00) != 0x7c00 || !(h2[i] & 0x3ff) : h2[i] != h[i])
			bad++;
	CHECK_EQ_INT(bad, 0);
	float c[5] = {1.0f, 65504.0f, 1e6f, 1.0f + 1.0f / 4096, 5.96046448e-8f};
	uint16_t o[5];
	ref()->f32_to_f16(o, c, 5);
	CHECK(o[0] == 0x3c00 && o[1] == 0x7bff && o[2] == 0x7c00 && o[3] == 0x3c00 && o[4] == 0x0001);
	free(h), free(h2), free(f);
}

/* ---- SIMD levels vs the scalar reference ---- */

static void check_level(int lvl)
{
	const weft_ops_vt *v = ops_at(lvl), *r = ref();
	if (!v)
		SKIP("this CPU lacks %s", lvl_names[lvl]);
	for (int si = 0; si < N_SIZES; si++) {
		const int n = sizes[si];
		float *x = rand_vec(n, 6), *w = rand_vec(n, 2), *b = rand_vec(n, 1);
		float *ya = rand_vec(n, 1), *yb = dup_vec(ya, n);
		r->rmsnorm(ya, x, w, n, 1e-6f);
		v->rmsnorm(yb, x, w, n, 1e-6f);
		if (max_rel_f(yb, ya, n, 1e-6) > 1e-6)
			FAILF("rmsnorm n=%d: %g", n, max_rel_f(yb, ya, n, 1e-6));
		r->rmsnorm(ya, x, NULL, n, 1e-6f);
		v->rmsnorm(yb, x, NULL, n, 1e-6f);
		CHECK(max_rel_f(yb, ya, n, 1e-6) <= 1e-6);
		r->layernorm(ya, x, w, b, n, 1e-5f);
		v->layernorm(yb, x, w, b, n, 1e-5f);
		if (max_rel_f(yb, ya, n, 1e-3) > 2e-6)
			FAILF("layernorm n=%d: %g", n, max_rel_f(yb, ya, n, 1e-3));
		r->layernorm(ya, x, NULL, NULL, n, 1e-5f);
		v->layernorm(yb, x, NULL, NULL, n, 1e-5f);
		CHECK(max_rel_f(yb, ya, n, 1e-3) <= 2e-6);
		memcpy(ya, x, sizeof(float) * n), memcpy(yb, x, sizeof(float) * n);
		r->softmax(ya, n), v->softmax(yb, n);
		if (max_rel_f(yb, ya, n, 1e-30) > 2e-6)
			FAILF("softmax n=%d: %g", n, max_rel_f(yb, ya, n, 1e-30));
		r->swiglu(ya, x, w, n), v->swiglu(yb, x, w, n);
		if (max_rel_f(yb, ya, n, 1e-6) > 2e-6)
			FAILF("swiglu n=%d: %g", n, max_rel_f(yb, ya, n, 1e-6));
		memcpy(ya, x, sizeof(float) * n), memcpy(yb, x, sizeof(float) * n);
		r->silu(ya, n), v->silu(yb, n);
		if (max_rel_f(yb, ya, n, 1e-6) > 2e-6)
			FAILF("silu n=%d: %g", n, max_rel_f(yb, ya, n, 1e-6));
		for (int i = 0; i < n; i++) /* tanh-GELU and quick GELU, float precision, out to exp overflow */
			ya[i] = yb[i] = x[i] * 30.0f;
		r->xsigmoid(ya, n, 1.5957691f, 0.0713548f), v->xsigmoid(yb, n, 1.5957691f, 0.0713548f);
		if (max_rel_f(yb, ya, n, 1e-6) > 4e-6)
			FAILF("xsigmoid n=%d: %g", n, max_rel_f(yb, ya, n, 1e-6));
		for (int i = 0; i < n; i++) /* reach the GELU clamps */
			ya[i] = yb[i] = x[i] * 2.5f;
		r->gelu(ya, n), v->gelu(yb, n);
		CHECK(memcmp(ya, yb, sizeof(float) * n) == 0);
		memcpy(ya, x, sizeof(float) * n), memcpy(yb, x, sizeof(float) * n);
		r->gelu_quick(ya, n), v->gelu_quick(yb, n);
		CHECK(memcmp(ya, yb, sizeof(float) * n) == 0);
		memcpy(ya, w, sizeof(float) * n), memcpy(yb, w, sizeof(float) * n);
		r->add(ya, x, n), v->add(yb, x, n);
		CHECK(memcmp(ya, yb, sizeof(float) * n) == 0);
		uint16_t *ha = malloc(sizeof(uint16_t) * n), *hb = malloc(sizeof(uint16_t) * n);
		for (int i = 0; i < n; i++)
			ya[i] = x[i] * (i % 3 == 0 ? 1e-4f : i % 3 == 1 ? 1.0f : 2e4f); /* subnormal, normal, inf */
		r->f32_to_f16(ha, ya, n), v->f32_to_f16(hb, ya, n);
		CHECK(memcmp(ha, hb, sizeof(uint16_t) * n) == 0);
		r->f16_to_f32(ya, ha, n), v->f16_to_f32(yb, ha, n);
		CHECK(memcmp(ya, yb, sizeof(float) * n) == 0);
		free(x), free(w), free(b), free(ya), free(yb), free(ha), free(hb);
	}
	/* silu/softmax at the exp range edges */
	float e1[10] = {-200, -100, -88, -87, 0, 1e-30f, 80, 88, 100, -INFINITY};
	float e2[10];
	memcpy(e2, e1, sizeof e1);
	r->silu(e1, 9), v->silu(e2, 9);
	for (int i = 0; i < 9; i++)
		CHECK_NEAR(e2[i], e1[i], 1e-6 * fabs(e1[i]) + 1e-30);
	/* rope, both layouts, rot_dim < head_dim, odd pair counts: bit-identical */
	const int64_t rots[][2] = {{64, 64}, {64, 32}, {128, 128}, {80, 80}, {96, 44}, {576, 576}, {2, 2}};
	for (size_t c = 0; c < sizeof rots / sizeof rots[0]; c++)
		for (int neox = 0; neox < 2; neox++) {
			const int64_t hd = rots[c][0], rot = rots[c][1], nh = 5;
			float *x = rand_vec(nh * hd, 2), *y = dup_vec(x, nh * hd);
			r->rope(x, nh, hd, rot, 77 + (int64_t)c, 10000.0f, 1.0f, neox);
			v->rope(y, nh, hd, rot, 77 + (int64_t)c, 10000.0f, 1.0f, neox);
			if (memcmp(x, y, sizeof(float) * (size_t)(nh * hd)))
				FAILF("rope hd=%lld rot=%lld neox=%d: %g", (long long)hd, (long long)rot, neox,
				      max_rel_f(y, x, nh * hd, 1e-2));
			free(x), free(y);
		}
}

static void test_avx2_vs_scalar(void)
{
	check_level(WEFT_LEVEL_AVX2);
}

static void test_avx512_vs_scalar(void)
{
	check_level(WEFT_LEVEL_AVX512);
}

/* One backend table: selecting a level makes its backend the one the
 * public functions and both kernel shorthands use, under its one name. */
static void test_backend_table(void)
{
	const weft_backend *start = weft_backend_get();
	CHECK(start != NULL && ops_at(WEFT_LEVEL_SCALAR) != NULL);
	for (int lvl = 0; lvl < WEFT_LEVEL_N; lvl++) {
		const weft_backend *b = weft_backend_at(lvl);
		if (!b) {
			CHECK_EQ_INT(weft_backend_select(lvl), -1);
			continue;
		}
		CHECK_EQ_INT((int)b->level, lvl);
		CHECK_EQ_INT(weft_backend_select(lvl), 0);
		CHECK(weft_backend_get() == b && weft_ops_get() == &b->ops && weft_kern_get() == &b->mm);
		CHECK(strcmp(weft_kernels_level(), b->name) == 0);
		/* the public level names select the same backend */
		CHECK_EQ_INT(weft_kernels_force(lvl == WEFT_LEVEL_AVX512 ? "avx512" : b->name), 0);
		CHECK(weft_backend_get() == b);
		float x[3] = {1, 2, 3}, y[3];
		weft_rmsnorm(y, x, NULL, 3, 0.0f);
		CHECK_NEAR(y[2], 3 / sqrt(14.0 / 3), 1e-6);
	}
	CHECK_EQ_INT(weft_level_parse("avx2"), WEFT_LEVEL_AVX2);
	CHECK_EQ_INT(weft_level_parse("sse9"), -1);
	CHECK_EQ_INT(weft_kernels_force("sse9"), -1);
	CHECK_EQ_INT(weft_backend_select(WEFT_LEVEL_N), -1);
	CHECK_EQ_INT(weft_kernels_force(NULL), 0); /* the CPU's best level */
	CHECK(weft_backend_get() == start || getenv("WEFT_KERNELS"));
	CHECK_EQ_INT(weft_backend_select(start->level), 0);
}

/* ---- attention ---- */

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

/* weft_sgemm at every level: odd shapes and leading dimensions against a
 * double-precision product; within a level, row blocks computed apart are
 * bit-identical to the whole (per-element order of summation). */
static void test_sgemm(void)
{
	const int64_t shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {6, 64, 64}, {13, 70, 64}, {64, 1024, 64},
				     {64, 64, 1024}, {5, 129, 200}, {12, 16, 17}};
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
		const int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
		const int64_t lda = K + 3, ldb = N + 5, ldc = N + 2;
		float *A = rand_vec(M * lda, 1.0f), *B = rand_vec(K * ldb, 1.0f);
		float *C = malloc(sizeof(float) * (size_t)(M * ldc)), *C2 = malloc(sizeof(float) * (size_t)(M * ldc));
		double *E = calloc((size_t)(M * N), sizeof(double));
		for (int64_t i = 0; i < M; i++)
			for (int64_t j = 0; j < N; j++)
				for (int64_t k = 0; k < K; k++)
					E[i * N + j] += (double)A[i * lda + k] * B[k * ldb + j];
		for (int lvl = 0; lvl < N_CPU_LEVELS; lvl++) {
			const weft_ops_vt *vt = ops_at(lvl);
			if (!vt)
				continue;
			for (int64_t i = 0; i < M * ldc; i++)
				C[i] = C2[i] = -7.0f; /* padding must stay untouched */
			vt->sgemm(M, N, K, A, lda, B, ldb, C, ldc);
			double worst = 0;
			for (int64_t i = 0; i < M; i++) {
				for (int64_t j = 0; j < N; j++)
					worst = fmax(worst, fabs(C[i * ldc + j] - E[i * N + j]) / (sqrt((double)K) + fabs(E[i * N + j])));
				for (int64_t j = N; j < ldc; j++)
					CHECK(C[i * ldc + j] == -7.0f);
			}
			if (!(worst <= 1e-6))
				FAILF("%s sgemm %lldx%lldx%lld: rel err %g", vt->name, (long long)M, (long long)N, (long long)K,
				      worst);
			for (int64_t i0 = 0; i0 < M; i0 += 5) /* rows in blocks of 5 */
				vt->sgemm(M - i0 < 5 ? M - i0 : 5, N, K, A + i0 * lda, lda, B, ldb, C2 + i0 * ldc, ldc);
			CHECK(memcmp(C, C2, sizeof(float) * (size_t)(M * ldc)) == 0);
		}
		free(A), free(B), free(C), free(C2), free(E);
	}
}

int main(void)
{
	t_suite = "ops";
	RUN(test_rmsnorm_ref);
	RUN(test_layernorm_ref);
	RUN(test_rope_ref);
	RUN(test_softmax_ref);
	RUN(test_activations_ref);
	RUN(test_add_convert_ref);
	RUN(test_avx2_vs_scalar);
	RUN(test_avx512_vs_scalar);
	RUN(test_backend_table);
	RUN(test_attention);
	RUN(test_attention_shapes);
	RUN(test_attention_public);
	RUN(test_sgemm);
	RUN(test_llamacpp_ops);
	TEST_MAIN_END();
}

/* test_ops.c - the float ops: scalar references against double-precision
 * formulas and hand-checked cases, every SIMD level against the scalar
 * reference, the backend table, and sgemm (attention: test_attention.c). */
#include <stdint.h>

#include "backend.h"
#include "kernels.h"
#include "ops_int.h"
#include "ops_util.h"
#include "test.h"
#include "util.h"

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
	RUN(test_sgemm);
	TEST_MAIN_END();
}

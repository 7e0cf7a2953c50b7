/* test_cuda_ops.c - every CUDA op (kernels/cuda/cuda_int.h) against the CPU
 * scalar references (WEFT_KERNELS level "scalar": kernels/ref_dot.c,
 * kernels/ops.c, kernels/attention.c) on random inputs, at decode shapes
 * (1 row / token) and prefill shapes (64 .. 512 rows), the idea of ggml's
 * test-backend-ops.  Built only by `make CUDA=1`; without a usable CUDA
 * device every GPU test prints a SKIP line (and the one test that needs no
 * device checks that weft_cuda_init then fails with one clear message).
 *
 * Tolerances (stated per test below) allow for float summation order only:
 * the CUDA kernels quantize activations exactly as the CPU does, so a
 * quantization mismatch would show as an error far above them.
 *   matmul       |gpu - ref| <= 1e-4 * max|ref| over the output (+1e-6)
 *   norms, rope, softmax, swiglu, silu, float GELUs
 *                |gpu - ref| <= 1e-5 * |ref| + 1e-6 (norm/rope: + 1e-5 abs)
 *   f16-table GELUs  within 2 f16 ulps: 2e-3 * |ref| + 1e-6
 *   attention    |gpu - ref| <= 2e-5 + 1e-4 * |ref| */
#define RAND_WEIGHTS_SEED 0x2545F4914F6CDD1DULL
#include "rand_weights.h"
#include "test.h"

#include "cuda_int.h"
#include "ggml_types.h"
#include "kernels.h"
#include "util.h"

#include <stdint.h>

static int have_dev;
static char why[256];

#define NEED_DEV()                                                    \
	do {                                                          \
		if (!have_dev)                                        \
			SKIP("no CUDA device (%s)", why);             \
	} while (0)

/* Device copy of n bytes of host memory (aborts the test on failure). */
static void *dup_dev(const void *h, size_t n)
{
	void *d = weft_cuda_alloc(n);
	if (!d || weft_cuda_upload(d, h, n)) {
		fprintf(stderr, "%s\n", weft_errmsg());
		abort();
	}
	return d;
}

static void get(void *h, const void *d, size_t n)
{
	if (weft_cuda_download(h, d, n)) {
		fprintf(stderr, "%s\n", weft_errmsg());
		abort();
	}
}

static float *randv(int64_t n, float scale, float off)
{
	float *x = malloc((size_t)n * sizeof *x);
	for (int64_t i = 0; i < n; i++)
		x[i] = scale * frand() + off;
	return x;
}

/* Largest |a[i] - b[i]| / (rel * |b[i]| + abs); > 1 fails.  *at: where. */
static double worst(const float *a, const float *b, int64_t n, double rel, double abs_, int64_t *at)
{
	double w = 0;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - (double)b[i]) / (rel * fabs((double)b[i]) + abs_);
		if (!(e <= w)) { /* NaN counts as worst */
			w = e != e ? INFINITY : e;
			if (at)
				*at = i;
		}
	}
	return w;
}

#define CHECK_CLOSE(gpu, ref, n, rel, abs_, what, ...)                                                       \
	do {                                                                                                 \
		int64_t at_ = 0;                                                                             \
		double w_ = worst(gpu, ref, n, rel, abs_, &at_);                                             \
		if (!(w_ <= 1.0))                                                                            \
			FAILF(what ": [%lld] gpu %.9g ref %.9g (%.3g x tolerance)", __VA_ARGS__, (long long)at_, \
			      (double)(gpu)[at_], (double)(ref)[at_], w_);                                   \
	} while (0)

/* ---- matmul ---- */

static const uint32_t mm_types[] = {WEFT_TYPE_F32, WEFT_TYPE_F16, WEFT_TYPE_BF16, WEFT_TYPE_Q8_0,
				    WEFT_TYPE_Q4_0, WEFT_TYPE_Q4_1, WEFT_TYPE_Q5_0, WEFT_TYPE_Q5_1,
				    WEFT_TYPE_Q4_K, WEFT_TYPE_Q5_K, WEFT_TYPE_Q6_K};

typedef struct mshape {
	int64_t k, n_out, T;
} mshape;

/* decode (T = 1), odd small batches, prefill (64, 512); SmolLM2-like and
 * 1.2B-like widths */
static const mshape mm_shapes[] = {
	{576, 576, 1}, {1536, 576, 1}, {2048, 2048, 1}, {256, 33, 3}, {512, 7, 17}, {96, 33, 9},
	{37, 9, 5},    {576, 1536, 64}, {2048, 256, 64}, {1536, 96, 512}, {4864, 40, 1},
};

static void matmul_case(uint32_t t, mshape s, unsigned flags)
{
	const uint64_t rb = weft_type_row_bytes(t, (uint64_t)s.k);
	uint8_t *w = make_weights(t, s.k, s.n_out);
	float *x = malloc((size_t)(s.k * s.T) * sizeof *x);
	for (int64_t i = 0; i < s.k * s.T; i++)
		x[i] = frand() * (i % 97 == 0 ? 4.0f : 1.0f) + 0.1f;
	const int64_t ldy = s.n_out + 3; /* a stride wider than the rows */
	float *ref = calloc((size_t)(ldy * s.T), sizeof *ref), *got = calloc((size_t)(ldy * s.T), sizeof *got);
	CHECK_EQ_INT(weft_matmul_ex(NULL, t, w, s.k, s.n_out, x, s.T, ref, ldy, flags), 0);
	const void *dw = dup_dev(w, rb * (uint64_t)s.n_out);
	float *dx = dup_dev(x, (size_t)(s.k * s.T) * 4), *dy = dup_dev(got, (size_t)(ldy * s.T) * 4);
	if (weft_cuda_matmul(t, dw, s.k, s.n_out, dx, s.T, dy, ldy, flags))
		FAILF("%s", weft_errmsg());
	get(got, dy, (size_t)(ldy * s.T) * 4);
	double mx = 0;
	for (int64_t i = 0; i < ldy * s.T; i++)
		mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
	CHECK_CLOSE(got, ref, ldy * s.T, 0.0, 1e-4 * mx + 1e-6, "%s k %lld n_out %lld T %lld flags %u",
		    weft_type_get(t)->name, (long long)s.k, (long long)s.n_out, (long long)s.T, flags);
	weft_cuda_free((void *)dw);
	weft_cuda_free(dx);
	weft_cuda_free(dy);
	free(w), free(x), free(ref), free(got);
}

static void test_matmul(void)
{
	NEED_DEV();
	for (size_t ti = 0; ti < sizeof mm_types / sizeof mm_types[0]; ti++) {
		CHECK(weft_cuda_matmul_supported(mm_types[ti]));
		for (size_t si = 0; si < sizeof mm_shapes / sizeof mm_shapes[0]; si++)
			if (mm_shapes[si].k % weft_type_get(mm_types[ti])->block == 0)
				matmul_case(mm_types[ti], mm_shapes[si], 0);
	}
	/* float activations kept as float32 */
	matmul_case(WEFT_TYPE_F16, (mshape){576, 100, 1}, WEFT_MATMUL_F32_ACT);
	matmul_case(WEFT_TYPE_BF16, (mshape){576, 100, 64}, WEFT_MATMUL_F32_ACT);
}

/* argument checks come before any device call: these run everywhere */
static void test_matmul_errors(void)
{
	CHECK(!weft_cuda_matmul_supported(WEFT_TYPE_Q3_K));
	CHECK_EQ_INT(weft_cuda_matmul(WEFT_TYPE_Q4_K, NULL, 32, 1, NULL, 1, NULL, 1, 0), -1);
	CHECK_STR(weft_errmsg(), "cuda matmul: k = 32 is not a positive multiple of the q4_K block size 256");
}

/* ---- row ops ---- */

static void test_norms(void)
{
	NEED_DEV();
	static const int64_t rows[] = {1, 300}, ns[] = {576, 2048, 37};
	for (int ri = 0; ri < 2; ri++)
		for (int ni = 0; ni < 3; ni++)
			for (int ln = 0; ln < 2; ln++)
				for (int wb = 0; wb < 2; wb++) {
					const int64_t R = rows[ri], n = ns[ni];
					float *x = randv(R * n, 2.0f, 0.5f), *w = randv(n, 1.0f, 0.0f), *b = randv(n, 1.0f, 0.0f);
					float *ref = malloc((size_t)(R * n) * 4), *got = malloc((size_t)(R * n) * 4);
					for (int64_t r = 0; r < R; r++)
						if (ln)
							weft_layernorm(ref + r * n, x + r * n, wb ? w : NULL, wb ? b : NULL, n, 1e-5f);
						else
							weft_rmsnorm(ref + r * n, x + r * n, wb ? w : NULL, n, 1e-6f);
					float *dx = dup_dev(x, (size_t)(R * n) * 4), *dw = dup_dev(w, (size_t)n * 4),
					      *db = dup_dev(b, (size_t)n * 4), *dy = weft_cuda_alloc((size_t)(R * n) * 4);
					int rc = ln ? weft_cuda_layernorm(dy, dx, wb ? dw : NULL, wb ? db : NULL, R, n, 1e-5f)
						    : weft_cuda_rmsnorm(dy, dx, wb ? dw : NULL, R, n, 1e-6f);
					if (rc)
						FAILF("%s", weft_errmsg());
					get(got, dy, (size_t)(R * n) * 4);
					CHECK_CLOSE(got, ref, R * n, 1e-5, 1e-5, "%s rows %lld n %lld weights %d",
						    ln ? "layernorm" : "rmsnorm", (long long)R, (long long)n, wb);
					weft_cuda_free(dx), weft_cuda_free(dw), weft_cuda_free(db), weft_cuda_free(dy);
					free(x), free(w), free(b), free(ref), free(got);
				}
}

static void test_rope(void)
{
	NEED_DEV();
	static const struct {
		int64_t T, nh, hd, rot;
		float base;
	} cs[] = {{1, 9, 64, 64, 10000.0f}, {200, 9, 64, 64, 10000.0f}, {64, 14, 64, 32, 1000000.0f}, {3, 4, 128, 128, 500000.0f}};
	for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++)
		for (int neox = 0; neox < 2; neox++) {
			const int64_t T = cs[c].T, n = T * cs[c].nh * cs[c].hd;
			float *x = randv(n, 1.0f, 0.0f), *ref = malloc((size_t)n * 4), *got = malloc((size_t)n * 4);
			int32_t *pos = malloc((size_t)T * 4);
			memcpy(ref, x, (size_t)n * 4);
			for (int64_t t = 0; t < T; t++) {
				pos[t] = (int32_t)(t * 3 + (c == 0 ? 4000 : 7)); /* gaps, as a pruned prompt has */
				weft_rope(ref + t * cs[c].nh * cs[c].hd, cs[c].nh, cs[c].hd, cs[c].rot, pos[t], cs[c].base,
					  c == 2 ? 0.5f : 1.0f, neox);
			}
			float *dx = dup_dev(x, (size_t)n * 4);
			int32_t *dp = dup_dev(pos, (size_t)T * 4);
			if (weft_cuda_rope(dx, T, cs[c].nh, cs[c].hd, cs[c].rot, dp, cs[c].base, c == 2 ? 0.5f : 1.0f, neox))
				FAILF("%s", weft_errmsg());
			get(got, dx, (size_t)n * 4);
			CHECK_CLOSE(got, ref, n, 1e-5, 1e-5, "rope case %zu neox %d", c, neox);
			weft_cuda_free(dx), weft_cuda_free(dp);
			free(x), free(ref), free(got), free(pos);
		}
}

static void test_softmax(void)
{
	NEED_DEV();
	static const int64_t rows[] = {1, 64}, ns[] = {1, 1000, 49152};
	for (int ri = 0; ri < 2; ri++)
		for (int ni = 0; ni < 3; ni++) {
			const int64_t R = rows[ri], n = ns[ni];
			float *x = randv(R * n, 8.0f, 0.0f), *ref = malloc((size_t)(R * n) * 4), *got = malloc((size_t)(R * n) * 4);
			memcpy(ref, x, (size_t)(R * n) * 4);
			for (int64_t r = 0; r < R; r++)
				weft_softmax(ref + r * n, n);
			float *dx = dup_dev(x, (size_t)(R * n) * 4);
			if (weft_cuda_softmax(dx, R, n))
				FAILF("%s", weft_errmsg());
			get(got, dx, (size_t)(R * n) * 4);
			CHECK_CLOSE(got, ref, R * n, 1e-5, 1e-9, "softmax rows %lld n %lld", (long long)R, (long long)n);
			weft_cuda_free(dx);
			free(x), free(ref), free(got);
		}
}

/* Element-wise ops: decode (576 values) and prefill (512 x 1536) sizes. */
typedef int (*cuda_act_fn)(float *dx, int64_t n);
typedef void (*cpu_act_fn)(float *x, int64_t n);

static void act_case(const char *name, cpu_act_fn cpu, cuda_act_fn gpu, double rel)
{
	static const int64_t ns[] = {576, 512 * 1536};
	for (int ni = 0; ni < 2; ni++) {
		const int64_t n = ns[ni];
		float *x = randv(n, 6.0f, 0.0f), *ref = malloc((size_t)n * 4), *got = malloc((size_t)n * 4);
		x[0] = -12.0f, x[1] = 11.0f, x[2] = 0.0f; /* the tables' edges */
		memcpy(ref, x, (size_t)n * 4);
		cpu(ref, n);
		float *dx = dup_dev(x, (size_t)n * 4);
		if (gpu(dx, n))
			FAILF("%s", weft_errmsg());
		get(got, dx, (size_t)n * 4);
		CHECK_CLOSE(got, ref, n, rel, 1e-6, "%s n %lld", name, (long long)n);
		weft_cuda_free(dx);
		free(x), free(ref), free(got);
	}
}

static void test_activations(void)
{
	NEED_DEV();
	act_case("silu", weft_silu, weft_cuda_silu, 1e-5);
	act_case("gelu", weft_gelu, weft_cuda_gelu, 2e-3);
	act_case("gelu_quick", weft_gelu_quick, weft_cuda_gelu_quick, 2e-3);
	act_case("gelu_f32", weft_gelu_f32, weft_cuda_gelu_f32, 1e-5);
	act_case("gelu_quick_f32", weft_gelu_quick_f32, weft_cuda_gelu_quick_f32, 1e-5);
	act_case("gelu_erf", weft_gelu_erf, weft_cuda_gelu_erf, 1e-5);
}

static void test_swiglu_add(void)
{
	NEED_DEV();
	static const int64_t ns[] = {1536, 512 * 1536};
	for (int ni = 0; ni < 2; ni++) {
		const int64_t n = ns[ni];
		float *g = randv(n, 6.0f, 0.0f), *u = randv(n, 2.0f, 0.0f), *ref = malloc((size_t)n * 4),
		      *got = malloc((size_t)n * 4);
		weft_swiglu(ref, g, u, n);
		float *dg = dup_dev(g, (size_t)n * 4), *du = dup_dev(u, (size_t)n * 4), *dy = weft_cuda_alloc((size_t)n * 4);
		if (weft_cuda_swiglu(dy, dg, du, n))
			FAILF("%s", weft_errmsg());
		get(got, dy, (size_t)n * 4);
		CHECK_CLOSE(got, ref, n, 1e-5, 1e-6, "swiglu n %lld", (long long)n);
		memcpy(ref, g, (size_t)n * 4);
		weft_add(ref, u, n);
		if (weft_cuda_add(dg, du, n))
			FAILF("%s", weft_errmsg());
		get(got, dg, (size_t)n * 4);
		CHECK_CLOSE(got, ref, n, 0.0, 1e-30, "add n %lld (exact)", (long long)n);
		weft_cuda_free(dg), weft_cuda_free(du), weft_cuda_free(dy);
		free(g), free(u), free(ref), free(got);
	}
}

/* ---- attention ---- */

typedef struct acase {
	int64_t T;
	int n_head, n_head_kv, hd;
	int32_t len[4];  /* kv_len per KV head (>= T) */
	int off;         /* 1: heads at kv_head_off (ragged capacities, in reverse order) */
} acase;

static const acase att_cases[] = {
	{1, 9, 3, 64, {1000, 37, 513}, 0},      /* SmolLM2 decode, ragged heads */
	{1, 9, 3, 64, {1, 2, 3}, 1},
	{4, 32, 8, 128, {700, 4, 64, 4100}, 1}, /* 4 queries: the split-K path */
	{8, 4, 4, 96, {8, 9, 300, 17}, 0},
	{64, 9, 3, 64, {164, 64, 71}, 0},       /* prefill over a prefix */
	{300, 8, 2, 128, {300, 555}, 1},
	{65, 2, 1, 256, {65}, 0},               /* hd 256: the 16-key tiles */
	{9, 3, 3, 40, {9, 40, 100}, 1},         /* hd not a multiple of 32 */
};

static void attn_case(const acase *c, uint32_t kv_type)
{
	const int hd = c->hd, G = c->n_head_kv;
	const int64_t eb = kv_type == WEFT_TYPE_F16 ? 2 : 4;
	int64_t cap = 0, head_rows = 0, off[4];
	for (int g = 0; g < G; g++)
		head_rows = c->len[g] + 5 > head_rows ? c->len[g] + 5 : head_rows; /* spare rows past each head's end */
	for (int g = G - 1; g >= 0; g--) { /* kv_head_off: heads packed in reverse order */
		off[g] = cap;
		cap += c->len[g] + 2;
	}
	const int64_t rows = c->off ? cap : head_rows * G;
	uint8_t *K = malloc((size_t)(rows * hd * eb)), *V = malloc((size_t)(rows * hd * eb));
	for (int64_t i = 0; i < rows * hd; i++) {
		const float k = frand(), v = frand();
		if (eb == 2) {
			((uint16_t *)K)[i] = weft_fp32_to_fp16(k);
			((uint16_t *)V)[i] = weft_fp32_to_fp16(v);
		} else {
			((float *)K)[i] = k;
			((float *)V)[i] = v;
		}
	}
	const int64_t nq = c->T * c->n_head * hd;
	float *Q = randv(nq, 1.0f, 0.0f), *ref = malloc((size_t)nq * 4), *got = malloc((size_t)nq * 4);
	const float scale = 1.0f / sqrtf((float)hd) * 3.0f; /* peaky: the online rescaling matters */
	weft_attn_args a = {.Q = Q, .K = K, .V = V, .kv_type = kv_type, .kv_head_rows = head_rows, .kv_len = c->len,
			    .T = c->T, .n_head = c->n_head, .n_head_kv = G, .hd = hd, .scale = scale, .out = ref,
			    .kv_head_off = c->off ? off : NULL};
	weft_attention(NULL, &a);
	float *dq = dup_dev(Q, (size_t)nq * 4), *dout = weft_cuda_alloc((size_t)nq * 4);
	void *dk = dup_dev(K, (size_t)(rows * hd * eb)), *dv = dup_dev(V, (size_t)(rows * hd * eb));
	weft_cuda_attn ca = {.dQ = dq, .dK = dk, .dV = dv, .kv_type = kv_type, .kv_head_rows = head_rows,
			     .kv_len = c->len, .kv_head_off = c->off ? off : NULL, .T = c->T, .n_head = c->n_head,
			     .n_head_kv = G, .hd = hd, .scale = scale, .dout = dout};
	if (weft_cuda_attention(&ca))
		FAILF("%s", weft_errmsg());
	get(got, dout, (size_t)nq * 4);
	CHECK_CLOSE(got, ref, nq, 1e-4, 2e-5, "attention %s T %lld heads %d/%d hd %d off %d",
		    weft_type_get(kv_type)->name, (long long)c->T, c->n_head, G, hd, c->off);
	weft_cuda_free(dq), weft_cuda_free(dout), weft_cuda_free(dk), weft_cuda_free(dv);
	free(K), free(V), free(Q), free(ref), free(got);
}

static void test_attention(void)
{
	NEED_DEV();
	for (size_t i = 0; i < sizeof att_cases / sizeof att_cases[0]; i++) {
		attn_case(&att_cases[i], WEFT_TYPE_F16);
		attn_case(&att_cases[i], WEFT_TYPE_F32);
	}
}

static void test_attention_errors(void)
{
	int32_t len[1] = {4};
	weft_cuda_attn ca = {.kv_type = WEFT_TYPE_Q8_0, .kv_len = len, .T = 1, .n_head = 1, .n_head_kv = 1, .hd = 64};
	CHECK_EQ_INT(weft_cuda_attention(&ca), -1);
	CHECK_STR(weft_errmsg(), "cuda attention: K/V rows of type 8 (F16 or F32 only)");
	ca.kv_type = WEFT_TYPE_F16;
	ca.hd = 512;
	CHECK_EQ_INT(weft_cuda_attention(&ca), -1);
}

/* ---- memory ---- */

static void test_weights_cache(void)
{
	NEED_DEV();
	static uint8_t w[4096];
	for (size_t i = 0; i < sizeof w; i++)
		w[i] = (uint8_t)rnd();
	const size_t before = weft_cuda_weights_bytes();
	const void *d1 = weft_cuda_weight(w, sizeof w), *d2 = weft_cuda_weight(w, sizeof w);
	CHECK(d1 != NULL && d1 == d2);
	CHECK_EQ_INT(weft_cuda_weights_bytes() - before, sizeof w);
	uint8_t back[4096];
	get(back, d1, sizeof back);
	CHECK(memcmp(back, w, sizeof w) == 0);
	CHECK(weft_cuda_weight(w, 100) == NULL); /* another size for the same tensor */
	weft_cuda_weights_free();
	CHECK_EQ_INT(weft_cuda_weights_bytes(), 0);
}

/* Runs everywhere: without a device, init fails with one message. */
static void test_init_without_device(void)
{
	if (have_dev)
		SKIP("a CUDA device is present");
	CHECK_EQ_INT(weft_cuda_init(0), -1);
	CHECK(strncmp(weft_errmsg(), "cuda: no usable device (", 24) == 0);
	CHECK(strchr(weft_errmsg(), '\n') == NULL);
}

int main(void)
{
	t_suite = "cuda";
	CHECK_EQ_INT(weft_kernels_force("scalar"), 0); /* the references */
	have_dev = weft_cuda_device_count(why, sizeof why) > 0;
	if (have_dev && weft_cuda_init(0)) {
		printf("FAIL cuda.init: %s\n", weft_errmsg());
		return 1;
	}
	if (have_dev)
		printf("# cuda device: %s, %.1f GiB\n", weft_cuda_device_name(),
		       (double)weft_cuda_device_memory() / (1024.0 * 1024 * 1024));
	t_run("init_without_device", test_init_without_device);
	t_run("matmul", test_matmul);
	t_run("matmul_errors", test_matmul_errors);
	t_run("norms", test_norms);
	t_run("rope", test_rope);
	t_run("softmax", test_softmax);
	t_run("activations", test_activations);
	t_run("swiglu_add", test_swiglu_add);
	t_run("attention", test_attention);
	t_run("attention_errors", test_attention_errors);
	t_run("weights_cache", test_weights_cache);
	TEST_MAIN_END();
}

/* ops.c - scalar references of the float ops (norms, RoPE, softmax,
 * activations, conversions), ggml's GELU tables, and the public
 * weft_rmsnorm() etc., which call the ops of the backend in use.
 *
 * Numerics follow llama.cpp's CPU backend (ggml-cpu/ops.cpp, vec.h):
 *   rmsnorm    sum of float x*x in double; scale = 1/sqrtf(mean + eps);
 *              y = (x * scale) * w
 *   layernorm  mean from a double sum; variance from double sums of float
 *              (x - mean)^2; y = ((x - mean) * scale) * w + b
 *   rope       theta_scale = powf(base, -2/rot_dim), theta = pos, then
 *              theta *= theta_scale per pair; angle = freq_scale * theta;
 *              cosf/sinf (no YaRN: ext_factor 0, attn_factor 1)
 *   softmax    exp(x - max), sum in double, times (float)(1/sum)
 *   gelu       ggml's default f16 table: x <= -10 -> 0, x >= 10 -> x, else
 *              table[fp16(x)] = fp16(tanh-GELU(fp16(x))); so results are
 *              f16-precise (about 1e-3 relative), bit-identical to
 *              llama.cpp's CPU backend
 *   gelu_quick likewise ggml's f16 table of x / (1 + expf(-1.702 x)), for
 *              every x
 *   silu       x / (1 + expf(-x)); swiglu silu(gate) * up
 * and, for vision encoders that must match transformers rather than
 * llama.cpp, float-precision activations without the f16 tables:
 *   gelu_f32        tanh-GELU as x * sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3)
 *   gelu_quick_f32  x * sigmoid(1.702 x)
 *   gelu_erf        0.5 x (1 + erf(x / sqrt 2)) (scalar; projector only)
 * The SIMD levels use their own vector expf (about 1 ulp), so they agree
 * with these references to a few ulp, not bit for bit (llama.cpp's own
 * SIMD and scalar tails differ the same way). */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "backend.h"
#include "ops_int.h"
#include "util.h"

/* ---- scalar references ---- */

static void rmsnorm_ref(float *y, const float *x, const float *w, int64_t n, float eps)
{
	double sum = 0.0;
	for (int64_t i = 0; i < n; i++)
		sum += (double)(x[i] * x[i]);
	const float mean = (float)(sum / (double)n);
	const float scale = 1.0f / sqrtf(mean + eps);
	if (w)
		for (int64_t i = 0; i < n; i++)
			y[i] = (x[i] * scale) * w[i];
	else
		for (int64_t i = 0; i < n; i++)
			y[i] = x[i] * scale;
}

static void layernorm_ref(float *y, const float *x, const float *w, const float *b, int64_t n, float eps)
{
	double sum = 0.0;
	for (int64_t i = 0; i < n; i++)
		sum += (double)x[i];
	const float mean = (float)(sum / (double)n);
	double var = 0.0;
	for (int64_t i = 0; i < n; i++) {
		const float v = x[i] - mean;
		var += (double)(v * v);
	}
	const float scale = 1.0f / sqrtf((float)(var / (double)n) + eps);
	for (int64_t i = 0; i < n; i++) {
		float v = (x[i] - mean) * scale;
		if (w)
			v *= w[i];
		if (b)
			v += b[i];
		y[i] = v;
	}
}

void weft_rope_cache(float *cs, int64_t i0, int64_t i1, int64_t rot_dim, int64_t pos, float freq_base,
		     float freq_scale)
{
	const float theta_scale = powf(freq_base, -2.0f / (float)rot_dim);
	float theta = (float)pos;
	for (int64_t i = 0; i < i1; i++) {
		if (i >= i0) {
			const float a = freq_scale * theta;
			cs[2 * (i - i0)] = cosf(a);
			cs[2 * (i - i0) + 1] = sinf(a);
		}
		theta *= theta_scale;
	}
}

void weft_rope_pairs(float *x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float freq_base,
		     float freq_scale, int neox, void (*rot)(float *p0, float *p1, float c, float s))
{
	float cs[2 * WEFT_ROPE_CHUNK];
	const int64_t half = rot_dim / 2;
	for (int64_t i0 = 0; i0 < half; i0 += WEFT_ROPE_CHUNK) {
		const int64_t i1 = i0 + WEFT_ROPE_CHUNK < half ? i0 + WEFT_ROPE_CHUNK : half;
		weft_rope_cache(cs, i0, i1, rot_dim, pos, freq_base, freq_scale);
		for (int64_t h = 0; h < n_heads; h++) {
			float *v = x + h * head_dim;
			for (int64_t i = i0; i < i1; i++) {
				float *p0 = neox ? v + i : v + 2 * i;
				rot(p0, neox ? v + i + half : v + 2 * i + 1, cs[2 * (i - i0)], cs[2 * (i - i0) + 1]);
			}
		}
	}
}

static void rot_plain(float *p0, float *p1, float c, float s)
{
	const float a = *p0, b = *p1;
	*p0 = a * c - b * s;
	*p1 = a * s + b * c;
}

static void rope_ref(float *x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float freq_base,
		     float freq_scale, int neox)
{
	weft_rope_pairs(x, n_heads, head_dim, rot_dim, pos, freq_base, freq_scale, neox, rot_plain);
}

static void softmax_ref(float *x, int64_t n)
{
	if (n <= 0)
		return;
	float max = -INFINITY;
	for (int64_t i = 0; i < n; i++)
		max = x[i] > max ? x[i] : max;
	double sum = 0.0;
	for (int64_t i = 0; i < n; i++) {
		x[i] = expf(x[i] - max);
		sum += (double)x[i];
	}
	const float inv = (float)(1.0 / sum);
	for (int64_t i = 0; i < n; i++)
		x[i] *= inv;
}

static inline float silu1(float x)
{
	return x / (1.0f + expf(-x));
}

static void swiglu_ref(float *y, const float *gate, const float *up, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = silu1(gate[i]) * up[i];
}

static void silu_ref(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = silu1(x[i]);
}

static void xsigmoid_ref(float *x, int64_t n, float a, float c)
{
	for (int64_t i = 0; i < n; i++) {
		const float v = x[i];
		x[i] = v / (1.0f + expf(-(a * v + c * (v * v * v))));
	}
}

static void gelu_ref(float *x, int64_t n)
{
	const uint16_t *tab = weft_gelu_table();
	for (int64_t i = 0; i < n; i++) {
		const float v = x[i];
		if (v <= -10.0f)
			x[i] = 0.0f;
		else if (v < 10.0f)
			x[i] = weft_fp16_to_fp32(tab[weft_fp32_to_fp16(v)]);
	}
}

static void gelu_quick_ref(float *x, int64_t n)
{
	const uint16_t *tab = weft_gelu_quick_table();
	for (int64_t i = 0; i < n; i++)
		x[i] = weft_fp16_to_fp32(tab[weft_fp32_to_fp16(x[i])]);
}

static void add_ref(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] += x[i];
}

static void f32_to_f16_ref(uint16_t *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = weft_fp32_to_fp16(x[i]);
}

static void f16_to_f32_ref(float *y, const uint16_t *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = weft_fp16_to_fp32(x[i]);
}

const weft_ops_vt weft_ops_scalar_vt = {
	.name = "scalar",
	.rmsnorm = rmsnorm_ref,
	.layernorm = layernorm_ref,
	.rope = rope_ref,
	.softmax = softmax_ref,
	.swiglu = swiglu_ref,
	.gelu = gelu_ref,
	.gelu_quick = gelu_quick_ref,
	.silu = silu_ref,
	.xsigmoid = xsigmoid_ref,
	.add = add_ref,
	.f32_to_f16 = f32_to_f16_ref,
	.f16_to_f32 = f16_to_f32_ref,
	.attn_rows = weft_attn_rows_ref,
	.attn_mass = weft_attn_mass_ref,
	.attn_kv_types = ~(uint64_t)0, /* any type weft_dequantize_row reads */
	.attn_ext = WEFT_ATTN_EXT_KCHAN | WEFT_ATTN_EXT_KIVI | WEFT_ATTN_EXT_GEAR | WEFT_ATTN_EXT_VIEW,
	.sgemm = weft_sgemm_ref,
};

/* ---- GELU tables (built once, 128 KiB each) ---- */

static uint16_t gelu_tab[65537], gelu_quick_tab[65537];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void gelu_init(void)
{
	const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;
	for (uint32_t i = 0; i < 65536; i++) {
		const float x = weft_fp16_to_fp32((uint16_t)i);
		const float g = 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * (1.0f + 0.044715f * x * x)));
		const float q = x * (1.0f / (1.0f + expf(-1.702f * x)));
		gelu_tab[i] = weft_fp32_to_fp16(g);
		gelu_quick_tab[i] = weft_fp32_to_fp16(q);
	}
}

const uint16_t *weft_gelu_table(void)
{
	pthread_once(&gelu_once, gelu_init);
	return gelu_tab;
}

const uint16_t *weft_gelu_quick_table(void)
{
	pthread_once(&gelu_once, gelu_init);
	return gelu_quick_tab;
}

/* ---- the public API ---- */

void weft_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
	weft_ops_get()->rmsnorm(y, x, w, n, eps);
}

void weft_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n, float eps)
{
	weft_ops_get()->layernorm(y, x, w, b, n, eps);
}

void weft_rope(float *x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float freq_base,
	       float freq_scale, int neox)
{
	weft_ops_get()->rope(x, n_heads, head_dim, rot_dim, pos, freq_base, freq_scale, neox);
}

void weft_softmax(float *x, int64_t n)
{
	weft_ops_get()->softmax(x, n);
}

void weft_swiglu(float *y, const float *gate, const float *up, int64_t n)
{
	weft_ops_get()->swiglu(y, gate, up, n);
}

void weft_gelu(float *x, int64_t n)
{
	weft_ops_get()->gelu(x, n);
}

void weft_gelu_quick(float *x, int64_t n)
{
	weft_ops_get()->gelu_quick(x, n);
}

void weft_silu(float *x, int64_t n)
{
	weft_ops_get()->silu(x, n);
}

/* 2 sqrt(2/pi): 0.5 (1 + tanh(u)) = sigmoid(2u) */
#define GELU_2K 1.5957691216057308f

void weft_gelu_f32(float *x, int64_t n)
{
	weft_ops_get()->xsigmoid(x, n, GELU_2K, GELU_2K * 0.044715f);
}

void weft_gelu_quick_f32(float *x, int64_t n)
{
	weft_ops_get()->xsigmoid(x, n, 1.702f, 0.0f);
}

void weft_gelu_erf(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void weft_add(float *y, const float *x, int64_t n)
{
	weft_ops_get()->add(y, x, n);
}

void weft_f32_to_f16(uint16_t *y, const float *x, int64_t n)
{
	weft_ops_get()->f32_to_f16(y, x, n);
}

void weft_f16_to_f32(float *y, const uint16_t *x, int64_t n)
{
	weft_ops_get()->f16_to_f32(y, x, n);
}

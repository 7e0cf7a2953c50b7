/* test_cuda_emul.c - the CUDA forward pass's host logic (lib/model_cuda.c:
 * chunking, positions, the device cache's layout, appends, attention
 * arguments, logits rows, upload/download, rollback, refusals) run without
 * a GPU: model_cuda.c is compiled here against an emulation of the
 * kernels/cuda host API (cuda_int.h) in host memory whose ops call the CPU
 * kernels the CPU forward pass calls.  So the emulated device path must
 * give the CPU path's logits and cache bit for bit; anything else is a
 * bookkeeping bug in model_cuda.c.  The CUDA kernels themselves are
 * tests/gpu's (test_cuda_ops, test_cuda_forward) on a GPU.
 *
 * In a `make CUDA=1` build the real API is in libweft, so this test
 * SKIPs there (tests/gpu/test_cuda_forward runs the real thing). */
#include "test.h"

#if !WEFT_CUDA
#undef WEFT_CUDA
#define WEFT_CUDA 1
#include "model_cuda.c" /* the code under test, with the emulated API below */

#include "model_util.h"

#include <stdlib.h>
#include <string.h>

static weft_pool *pool;
static int fail_matmul_after = -1; /* emulate a kernel failure after N matmuls */

/* ---- the emulated device: host memory, the CPU kernels ---- */

int weft_cuda_device_count(char *why, size_t why_len) { return 1; }
int weft_cuda_init(int dev) { return dev == 0 ? 0 : -1; }
const char *weft_cuda_device_name(void) { return "emulated"; }
size_t weft_cuda_device_memory(void) { return 0; }
void *weft_cuda_alloc(size_t bytes) { return weft_malloc(bytes ? bytes : 1); }
void weft_cuda_free(void *d) { free(d); }
int weft_cuda_upload(void *d, const void *host, size_t bytes)
{
	memcpy(d, host, bytes);
	return 0;
}
int weft_cuda_download(void *host, const void *d, size_t bytes)
{
	memcpy(host, d, bytes);
	return 0;
}
int weft_cuda_memset0(void *d, size_t bytes)
{
	memset(d, 0, bytes);
	return 0;
}
int weft_cuda_copy(void *d_dst, const void *d_src, size_t bytes)
{
	memcpy(d_dst, d_src, bytes);
	return 0;
}
int weft_cuda_sync(void) { return 0; }
const void *weft_cuda_weight(const void *host, size_t bytes) { return host; }
void weft_cuda_weights_free(void) {}
size_t weft_cuda_weights_bytes(void) { return 0; }
int weft_cuda_matmul_supported(uint32_t wtype) { return weft_matmul_supported(wtype); }
int weft_cuda_matmul(uint32_t wtype, const void *dW, int64_t k, int64_t n_out, const float *dX, int64_t T,
		     float *dY, int64_t ldy, unsigned flags)
{
	if (fail_matmul_after == 0) {
		weft_error("cuda: emulated kernel failure");
		return -1;
	}
	if (fail_matmul_after > 0)
		fail_matmul_after--;
	return weft_matmul_ex(pool, wtype, dW, k, n_out, dX, T, dY, ldy, flags);
}
int weft_cuda_rmsnorm(float *dy, const float *dx, const float *dw, int64_t rows, int64_t n, float eps)
{
	for (int64_t r = 0; r < rows; r++)
		weft_rmsnorm(dy + r * n, dx + r * n, dw, n, eps);
	return 0;
}
int weft_cuda_rope(float *dx, int64_t T, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const int32_t *dpos,
		   float freq_base, float freq_scale, int neox)
{
	for (int64_t t = 0; t < T; t++)
		weft_rope(dx + t * n_heads * head_dim, n_heads, head_dim, rot_dim, dpos[t], freq_base, freq_scale, neox);
	return 0;
}
int weft_cuda_swiglu(float *dy, const float *dgate, const float *dup, int64_t n)
{
	weft_swiglu(dy, dgate, dup, n);
	return 0;
}
int weft_cuda_add(float *dy, const float *dx, int64_t n)
{
	weft_add(dy, dx, n);
	return 0;
}
int weft_cuda_add_rows(float *dy, const float *db, int64_t rows, int64_t n)
{
	for (int64_t r = 0; r < rows; r++)
		weft_add(dy + r * n, db, n);
	return 0;
}
int weft_cuda_kv_store(void *dcache, uint32_t type, const float *dsrc, int64_t n, int n_head_kv, int hd,
		       const int64_t *row0)
{
	for (int64_t t = 0; t < n; t++)
		for (int h = 0; h < n_head_kv; h++)
			for (int i = 0; i < hd; i++) {
				const float x = dsrc[(t * n_head_kv + h) * hd + i];
				const int64_t at = (row0[h] + t) * hd + i;
				if (type == WEFT_TYPE_F16)
					((uint16_t *)dcache)[at] = weft_fp32_to_fp16(x);
				else
					((float *)dcache)[at] = x;
			}
	return 0;
}
int weft_cuda_attention(const weft_cuda_attn *x)
{
	weft_attn_args a = {.Q = x->dQ, .K = x->dK, .V = x->dV, .kv_type = x->kv_type, .kv_head_rows = x->kv_head_rows,
			    .kv_len = x->kv_len, .T = x->T, .n_head = x->n_head, .n_head_kv = x->n_head_kv, .hd = x->hd,
			    .scale = x->scale, .out = x->dout, .kv_head_off = x->kv_head_off};
	weft_attention(pool, &a);
	return 0;
}

/* ---- the tests ---- */

/* weft_model_forward as a CUDA build's model_llama.c dispatches it (this
 * build's has no hook): an attached cache goes to model_cuda.c. */
static int fwd(const weft_model *m, weft_kv *kv, const int32_t *ids, const float *embd, int64_t T, int64_t chunk,
	       float *logits, int all, weft_fwd_extra *e)
{
	if (weft_model_cuda_attached(kv))
		return weft_model_forward_cuda(m, kv, ids, embd, T, chunk, logits, all, e);
	return weft_model_forward(m, pool, kv, ids, embd, T, chunk, logits, all, e);
}

#define DATA "tests/data/llm/"

static const char *const fixtures[] = {
	"tiny-llama-f32", "tiny-llama-f16", "tiny-llama-q4_0", "tiny-llama-q4_1", "tiny-llama-q8_0",
	"tiny-llama256-q4_k_m", "tiny-qwen2-f32", "tiny-qwen2-f16", "tiny-qwen2-q4_0", "tiny-qwen2-q4_1",
	"tiny-qwen2-q8_0",
};

/* Two caches hold the same rows, positions, lengths and n_past. */
static int same_kv(const weft_kv *a, const weft_kv *b)
{
	if (a->n_past != b->n_past)
		return 0;
	for (int l = 0; l < a->n_layer; l++)
		for (int h = 0; h < a->n_head_kv; h++) {
			const int64_t n = a->len[l * a->n_head_kv + h];
			const weft_kv_layer *L = &a->layer[l];
			if (b->len[l * a->n_head_kv + h] != n ||
			    memcmp(weft_kv_pos(a, l, h), weft_kv_pos(b, l, h), 4 * (size_t)n) ||
			    (n && (memcmp(weft_kv_krow(a, l, h, 0), weft_kv_krow(b, l, h, 0), (size_t)n * L->k_row) ||
				   memcmp(weft_kv_vrow(a, l, h, 0), weft_kv_vrow(b, l, h, 0), (size_t)n * L->v_row))))
				return 0;
		}
	return 1;
}

/* T tokens (or embedding rows) in chunks of `chunk`, every row's logits
 * (or the last's), optionally at gapped positions; the emulated device
 * path against the CPU's. */
static void one(const char *name, weft_kv_type kt, int64_t chunk, int all, int gapped, int rows)
{
	char path[256];
	snprintf(path, sizeof path, DATA "%s.gguf", name);
	loaded l;
	if (open_model(path, &l) != 0) {
		FAILF("%s: %s", path, weft_errmsg());
		return;
	}
	enum { T = 37 };
	const int nv = l.m->hp.n_vocab, d = l.m->hp.n_embd;
	int32_t ids[T], pos[T];
	float *embd = malloc(sizeof(float) * T * (size_t)d);
	for (int t = 0; t < T; t++) {
		ids[t] = (int32_t)((t * 7919 + 13) % nv);
		pos[t] = gapped ? t * 2 + (t > 20 ? 5 : 0) : t;
		for (int i = 0; i < d; i++)
			embd[t * d + i] = (float)((t * 31 + i * 17) % 97) / 97.0f - 0.5f;
	}
	weft_fwd_extra ex = {.pos = pos, .pos_span = pos[T - 1] + 1};
	float *ref = calloc((size_t)T * nv, sizeof(float)), *got = calloc((size_t)T * nv, sizeof(float));
	weft_kv *kc = weft_kv_new_type(l.m, T + 3, kt), *kg = weft_kv_new_type(l.m, T + 3, kt);
	CHECK(ref && got && kc && kg && embd);
	const int32_t *in = rows ? NULL : ids;
	const float *ein = rows ? embd : NULL;
	CHECK(!t_failed && weft_model_forward(l.m, pool, kc, in, ein, T, chunk, ref, all, gapped ? &ex : NULL) == 0);
	CHECK(!t_failed && weft_model_cuda_attach(l.m, kg, 0) == 0);
	CHECK(!t_failed && weft_model_cuda_attached(kg));
	CHECK(!t_failed && fwd(l.m, kg, in, ein, T, chunk, got, all, gapped ? &ex : NULL) == 0);
	if (!t_failed && memcmp(ref, got, sizeof(float) * (size_t)(all ? T : 1) * nv) != 0)
		FAILF("%s %s cache, chunk %lld%s%s: logits differ from the CPU path's", name, weft_kv_type_name(kt),
		      (long long)chunk, gapped ? ", gapped positions" : "", rows ? ", embedding rows" : "");
	/* the device rows are the CPU's once downloaded (the host copy was stale) */
	CHECK(!t_failed && weft_model_cuda_download(kg) == 0);
	if (!t_failed && !same_kv(kc, kg))
		FAILF("%s %s cache: the downloaded cache differs from the CPU's", name, weft_kv_type_name(kt));
	weft_model_cuda_detach();
	CHECK(!weft_model_cuda_attached(kg));
	weft_kv_free(kc);
	weft_kv_free(kg);
	free(ref);
	free(got);
	free(embd);
	close_model(&l);
}

static void test_logits_and_cache(void)
{
	for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0] && !t_failed; i++) {
		one(fixtures[i], WEFT_KV_F32, 16, 1, 0, 0);
		if (!t_failed)
			one(fixtures[i], WEFT_KV_F16, 0, 0, 0, 0);
	}
	if (!t_failed)
		one("tiny-qwen2-q8_0", WEFT_KV_F16, 5, 1, 1, 0); /* gapped positions */
	if (!t_failed)
		one("tiny-llama-q4_0", WEFT_KV_F32, 8, 0, 1, 1); /* embedding rows */
	if (!t_failed)
		one("tiny-llama-f16", WEFT_KV_F16, 100, 1, 0, 1);
}

/* A cache prefilled on the CPU, uploaded, extended by decode steps on the
 * device, then a second turn prefilled there: the CPU's logits and cache. */
static void test_upload_decode(void)
{
	loaded l;
	CHECK(open_model(DATA "tiny-qwen2-q4_1.gguf", &l) == 0);
	if (t_failed)
		return;
	enum { P = 19, S = 9 };
	const int nv = l.m->hp.n_vocab;
	int32_t ids[P];
	for (int t = 0; t < P; t++)
		ids[t] = (int32_t)((t * 104729 + 5) % nv);
	float *lc = malloc(sizeof(float) * (size_t)nv), *lg = malloc(sizeof(float) * (size_t)nv);
	weft_kv *kc = weft_kv_new(l.m, P + S + P), *kg = weft_kv_new(l.m, P + S + P);
	CHECK(lc && lg && kc && kg);
	CHECK(!t_failed && weft_model_forward(l.m, pool, kc, ids, NULL, P, 7, lc, 0, NULL) == 0);
	CHECK(!t_failed && fwd(l.m, kg, ids, NULL, P, 7, lg, 0, NULL) == 0);
	CHECK(!t_failed && weft_model_cuda_attach(l.m, kg, 0) == 0);
	/* the host rows are cleared: the device must have its own copy */
	for (int lay = 0; lay < kg->n_layer && !t_failed; lay++)
		memset(kg->layer[lay].k, 0, (size_t)kg->layer[lay].hoff[kg->n_head_kv] * kg->layer[lay].k_row);
	for (int s = 0; s < S && !t_failed; s++) {
		int32_t tok = (int32_t)((s * 37 + 1) % nv);
		CHECK(weft_model_forward(l.m, pool, kc, &tok, NULL, 1, 1, lc, 0, NULL) == 0);
		CHECK(fwd(l.m, kg, &tok, NULL, 1, 1, lg, 0, NULL) == 0);
		if (!t_failed && memcmp(lc, lg, sizeof(float) * (size_t)nv) != 0)
			FAILF("decode step %d after upload: logits differ", s);
	}
	CHECK(!t_failed && weft_model_forward(l.m, pool, kc, ids, NULL, P, 4, lc, 0, NULL) == 0);
	CHECK(!t_failed && fwd(l.m, kg, ids, NULL, P, 4, lg, 0, NULL) == 0);
	CHECK(!t_failed && memcmp(lc, lg, sizeof(float) * (size_t)nv) == 0);
	CHECK(!t_failed && weft_model_cuda_download(kg) == 0 && same_kv(kc, kg));
	weft_model_cuda_detach();
	weft_kv_free(kc);
	weft_kv_free(kg);
	free(lc);
	free(lg);
	close_model(&l);
}

/* Refusals and rollback: one error line, the cache as it was. */
static void test_refusals(void)
{
	loaded l;
	CHECK(open_model(DATA "tiny-llama256-q4_k_m.gguf", &l) == 0); /* head size 64: q8_0 allowed */
	if (t_failed)
		return;
	const weft_hparams *hp = &l.m->hp;
	weft_kv *k8 = weft_kv_new_type(l.m, 8, WEFT_KV_Q8_0), *kv = weft_kv_new(l.m, 16);
	CHECK(k8 && kv);
	CHECK_EQ_INT(weft_model_cuda_attach(l.m, k8, 0), -1);
	CHECK_STR(weft_errmsg(), "cuda forward: a q8_0 KV cache is not supported on CUDA (f16 and f32 are)");
	CHECK_EQ_INT(weft_model_cuda_attach(l.m, kv, 0), 0);
	CHECK_EQ_INT(weft_model_cuda_attach(l.m, kv, 0), -1);
	CHECK_STR(weft_errmsg(), "cuda forward: a KV cache is already on the device");
	int32_t ids[4] = {1, 2, 3, 4};
	float *mass = calloc((size_t)hp->n_layer * hp->n_head_kv * 16, sizeof(float));
	weft_fwd_extra ex = {.mass = mass};
	CHECK_EQ_INT(fwd(l.m, kv, ids, NULL, 4, 0, NULL, 0, &ex), -1);
	CHECK(strstr(weft_errmsg(), "not supported on CUDA; use --device cpu") != NULL);
	CHECK_EQ_INT(kv->n_past, 0);
	/* a kernel failing midway: rolled back */
	CHECK_EQ_INT(fwd(l.m, kv, ids, NULL, 2, 0, NULL, 0, NULL), 0);
	fail_matmul_after = 5;
	CHECK_EQ_INT(fwd(l.m, kv, ids, NULL, 4, 0, NULL, 0, NULL), -1);
	fail_matmul_after = -1;
	CHECK_STR(weft_errmsg(), "cuda: emulated kernel failure");
	CHECK_EQ_INT(kv->n_past, 2);
	CHECK_EQ_INT(kv->len[0], 2);
	/* a host-side resize while attached is caught */
	CHECK_EQ_INT(weft_kv_reserve(kv, 64), 0);
	CHECK_EQ_INT(fwd(l.m, kv, ids, NULL, 1, 0, NULL, 0, NULL), -1);
	CHECK_STR(weft_errmsg(), "cuda forward: the KV cache was resized on the host while on the device");
	weft_model_cuda_detach();
	free(mass);
	weft_kv_free(k8);
	weft_kv_free(kv);
	close_model(&l);
}

int main(void)
{
	t_suite = "cuda_emul";
	pool = weft_pool_new(2);
	RUN(test_logits_and_cache);
	RUN(test_upload_decode);
	RUN(test_refusals);
	weft_pool_free(pool);
	TEST_MAIN_END();
}
#else
static void test_all(void)
{
	SKIP("a CUDA build has the real API (tests/gpu/test_cuda_forward runs it)");
}

int main(void)
{
	t_suite = "cuda_emul";
	RUN(test_all);
	TEST_MAIN_END();
}
#endif

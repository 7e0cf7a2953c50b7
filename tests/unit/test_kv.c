/* test_kv.c - the KV cache module (lib/kv.c) and its stream codec
 * (lib/kvstream.c): storage types, append, compaction, roll-back, growth,
 * byte counts, and a quantized (Q8_0) cache through the forward pass and
 * through a stream. */
#include <stdint.h>
#include <stdio.h>

#include "ggml_types.h"
#include "gguf.h"
#include "kernels.h"
#include "keys.h"
#include "kv.h"
#include "kvstream.h"
#include "model.h"
#include "test.h"
#include "util.h"

static const char *t_suite_name = "kv";

static uint64_t rng = 88172645463325252ULL;
static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void types_and_errors(void)
{
	CHECK_STR(weft_kv_type_name(WEFT_KV_Q8_0), "q8_0");
	CHECK_EQ_INT(weft_kv_type_parse("F32"), WEFT_KV_F32);
	CHECK_EQ_INT(weft_kv_type_parse("f16"), WEFT_KV_F16);
	CHECK_EQ_INT(weft_kv_type_parse("q8_0"), WEFT_KV_Q8_0);
	CHECK_EQ_INT(weft_kv_type_parse("q4_0"), -1);
	CHECK_EQ_INT(weft_kv_type_parse("f1"), -1);
	CHECK(weft_kv_alloc(2, 2, 48, 4, WEFT_KV_Q8_0) == NULL);
	CHECK_STR(weft_errmsg(), "KV cache: type q8_0 cannot hold rows of 48 values");
	CHECK(weft_kv_alloc(2, 2, 16, 4, (weft_kv_type)WEFT_TYPE_Q4_K) == NULL);
	CHECK(weft_kv_alloc(0, 2, 16, 4, WEFT_KV_F16) == NULL);
}

/* Rows come back as the type stores them: F32 exactly, F16 rounded to
 * half, Q8_0 as its quantize/dequantize round trip; positions follow. */
static void append_roundtrip(void)
{
	const weft_kv_type types[] = {WEFT_KV_F32, WEFT_KV_F16, WEFT_KV_Q8_0};
	const int H = 3, D = 64, n = 5;
	float k[5 * 3 * 64], v[5 * 3 * 64], back[64], want[64];
	uint8_t q[64 * 2];
	for (int i = 0; i < n * H * D; i++)
		k[i] = frand() * 3, v[i] = frand();
	for (int ti = 0; ti < 3; ti++) {
		weft_kv *kv = weft_kv_alloc(2, H, D, 8, types[ti]);
		CHECK(kv != NULL);
		if (!kv)
			return;
		CHECK_EQ_INT(weft_kv_append(kv, 1, 2, k, v, 10), 0);
		CHECK_EQ_INT(weft_kv_append(kv, 1, 3, k + 2 * H * D, v + 2 * H * D, 12), 0);
		CHECK_EQ_INT(kv->len[1 * H + 2], 5);
		CHECK_EQ_INT(kv->len[0], 0);
		for (int h = 0; h < H; h++)
			for (int t = 0; t < n; t++) {
				const float *src = k + (t * H + h) * D;
				CHECK(weft_dequantize_row(types[ti], weft_kv_krow(kv, 1, h, t), back, D) == 0);
				switch (types[ti]) {
				case WEFT_KV_F32: memcpy(want, src, sizeof want); break;
				case WEFT_KV_F16:
					for (int d = 0; d < D; d++)
						want[d] = weft_fp16_to_fp32(weft_fp32_to_fp16(src[d]));
					break;
				default:
					weft_quantize_row(WEFT_TYPE_Q8_0, src, q, D);
					weft_dequantize_row(WEFT_TYPE_Q8_0, q, want, D);
					break;
				}
				CHECK(memcmp(back, want, sizeof want) == 0);
				CHECK_EQ_INT(kv->layer[1].pos[h * kv->cap + t], 10 + t);
			}
		/* no room for 4 more */
		CHECK_EQ_INT(weft_kv_room(kv, 4), -1);
		CHECK_STR(weft_errmsg(), "KV cache full (5 rows held, 4 new, capacity 8)");
		CHECK_EQ_INT(weft_kv_append(kv, 1, 4, k, v, 0), -1);
		CHECK_EQ_INT(kv->len[1 * H], 5);
		/* bytes of the rows held: 3 heads x 5 rows of (k + v + position) */
		CHECK_EQ_INT(weft_kv_bytes(kv), 3 * 5 * (2 * weft_type_row_bytes(types[ti], D) + 4));
		/* growth keeps rows and positions */
		uint8_t before[4096];
		memcpy(before, weft_kv_vrow(kv, 1, 2, 4), kv->layer[1].v_row);
		CHECK_EQ_INT(weft_kv_reserve(kv, 40), 0);
		CHECK_EQ_INT(kv->cap, 40);
		CHECK(memcmp(before, weft_kv_vrow(kv, 1, 2, 4), kv->layer[1].v_row) == 0);
		CHECK_EQ_INT(kv->layer[1].pos[2 * kv->cap + 4], 14);
		CHECK_EQ_INT(kv->layer[1].pos[2 * kv->cap + 5], -1);
		weft_kv_free(kv);
	}
}

static void compact_and_restore(void)
{
	const int H = 2, D = 32;
	float k[6 * 2 * 32], v[6 * 2 * 32];
	for (int i = 0; i < 6 * H * D; i++)
		k[i] = (float)i, v[i] = -(float)i;
	weft_kv *kv = weft_kv_alloc(1, H, D, 6, WEFT_KV_F32);
	CHECK(kv && weft_kv_append(kv, 0, 6, k, v, 100) == 0);
	if (t_failed)
		return;
	kv->n_past = 106;
	weft_kv_state st;
	CHECK_EQ_INT(weft_kv_save(kv, &st), 0);

	const int32_t keep[] = {0, 2, 5};
	CHECK_EQ_INT(weft_kv_compact(kv, 0, 1, keep, 3), 0);
	CHECK_EQ_INT(kv->len[1], 3);
	CHECK_EQ_INT(kv->len[0], 6); /* the other head untouched */
	for (int i = 0; i < 3; i++) {
		const float *kr = weft_kv_krow(kv, 0, 1, i), *vr = weft_kv_vrow(kv, 0, 1, i);
		CHECK(kr[0] == k[(keep[i] * H + 1) * D] && vr[D - 1] == v[(keep[i] * H + 1) * D + D - 1]);
		CHECK_EQ_INT(kv->layer[0].pos[kv->cap + i], 100 + keep[i]);
	}
	CHECK_EQ_INT(kv->layer[0].pos[kv->cap + 3], -1);
	CHECK_EQ_INT(weft_kv_bytes(kv), (6 + 3) * (2 * D * 4 + 4));

	const int32_t bad1[] = {1, 1}, bad2[] = {0, 3};
	CHECK_EQ_INT(weft_kv_compact(kv, 0, 0, bad1, 2), -1);
	CHECK_STR(weft_errmsg(), "KV compaction: kept row 1 (entry 1) is out of order or outside the 6 rows held");
	CHECK_EQ_INT(weft_kv_compact(kv, 0, 1, bad2, 2), -1); /* head 1 holds 3 rows now */
	CHECK_EQ_INT(kv->len[1], 3);

	/* roll back rows appended after the save */
	weft_kv *kv2 = weft_kv_alloc(1, H, D, 8, WEFT_KV_F16);
	CHECK(kv2 && weft_kv_append(kv2, 0, 2, k, v, 0) == 0);
	kv2->n_past = 2;
	weft_kv_state s2;
	CHECK_EQ_INT(weft_kv_save(kv2, &s2), 0);
	CHECK_EQ_INT(weft_kv_append(kv2, 0, 3, k, v, 2), 0);
	kv2->n_past = 5;
	weft_kv_restore(kv2, &s2);
	CHECK_EQ_INT(kv2->n_past, 2);
	CHECK_EQ_INT(kv2->len[0], 2);
	CHECK_EQ_INT(kv2->layer[0].pos[2], -1);
	CHECK_EQ_INT(kv2->layer[0].pos[1], 1);
	weft_kv_state_free(&s2);
	weft_kv_state_free(&st);
	weft_kv_free(kv2);
	weft_kv_free(kv);
}

/* A Q8_0 cache through the forward pass: its logits stay near the F32
 * cache's (int8 keys and values), a failed call leaves it as it was, and
 * written to a stream and read back it continues exactly as in memory. */
static void q8_0_forward_and_stream(void)
{
	weft_gguf *g = weft_gguf_open("tests/data/llm/tiny-llama256-q4_k_m.gguf");
	weft_model *m = g ? weft_model_load(g) : NULL;
	CHECK(m != NULL);
	if (!m) {
		weft_gguf_close(g);
		return;
	}
	const int nv = m->hp.n_vocab, T = 40;
	int32_t ids[41];
	for (int i = 0; i < T + 1; i++)
		ids[i] = (i * 37 + 11) % nv;
	weft_kv *k32 = weft_kv_new_type(m, T + 1, WEFT_KV_F32), *k8 = weft_kv_new_type(m, T + 1, WEFT_KV_Q8_0);
	float *l32 = malloc(sizeof(float) * (size_t)nv), *l8 = malloc(sizeof(float) * (size_t)nv),
	      *l8b = malloc(sizeof(float) * (size_t)nv);
	CHECK(k32 && k8 && weft_model_forward(m, NULL, k32, ids, NULL, T, 16, l32, 0, NULL) == 0 &&
	      weft_model_forward(m, NULL, k8, ids, NULL, T, 16, l8, 0, NULL) == 0);
	double md = 0, mx = 0;
	for (int i = 0; i < nv && !t_failed; i++) {
		md = fmax(md, fabs((double)l8[i] - l32[i]));
		mx = fmax(mx, fabs((double)l32[i]));
	}
	if (!(md <= 0.02 * mx))
		FAILF("q8_0 cache logits differ from the f32 cache's by %g (max |logit| %g)", md, mx);

	/* a failed call (a token outside the vocabulary) changes nothing */
	const int32_t bad[2] = {1, nv + 5};
	const uint64_t bytes = weft_kv_bytes(k8);
	CHECK_EQ_INT(weft_model_forward(m, NULL, k8, bad, NULL, 2, 0, l8b, 0, NULL), -1);
	CHECK_EQ_INT(k8->n_past, T);
	CHECK_EQ_INT(weft_kv_bytes(k8), bytes);

	/* through a stream */
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	weft_kv_write_args w = {.hist = ids, .n_hist = T, .logits = l8};
	CHECK(mem && weft_kv_write(mem, m, k8, &w) == 0);
	fclose(mem);
	weft_reader *r = weft_reader_mem(buf, len);
	weft_kv_in in = {.extra_cap = 1};
	weft_frame *f;
	int rc, kvtype_key = 0;
	while ((rc = weft_reader_next(r, &f)) == 1) {
		const char *ty = weft_frame_get(f, WEFT_KEY_KV_TYPE);
		kvtype_key |= ty && strcmp(ty, "Q8_0") == 0;
		CHECK_EQ_INT(weft_kv_read(&in, m, f), 1);
		weft_frame_free(f);
	}
	CHECK(rc == 0 && kvtype_key && weft_kv_read_end(&in, m, 1) == 0);
	if (!t_failed) {
		CHECK_EQ_INT(in.kv->layer[0].type, WEFT_KV_Q8_0);
		CHECK(memcmp(in.logits, l8, sizeof(float) * (size_t)nv) == 0);
		CHECK(weft_model_forward(m, NULL, k8, ids + T, NULL, 1, 0, l8, 0, NULL) == 0 &&
		      weft_model_forward(m, NULL, in.kv, ids + T, NULL, 1, 0, l8b, 0, NULL) == 0);
		CHECK(memcmp(l8, l8b, sizeof(float) * (size_t)nv) == 0);
	}
	weft_kv_in_free(&in);
	weft_reader_free(r);
	free(buf);
	free(l32), free(l8), free(l8b);
	weft_kv_free(k32);
	weft_kv_free(k8);
	weft_model_free(m);
	weft_gguf_close(g);
}

int main(void)
{
	t_suite = t_suite_name;
	RUN(types_and_errors);
	RUN(append_roundtrip);
	RUN(compact_and_restore);
	RUN(q8_0_forward_and_stream);
	TEST_MAIN_END();
}

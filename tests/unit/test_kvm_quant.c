/* test_kvm_quant.c - the compressed KV layouts: KIVI quantizers (round trip
 * within half a step; outlier channels, all-equal groups, zeros, the half
 * range; NaN/Inf refused), the attention kernels over quantized prefixes,
 * channel-pruned keys and ragged heads (every SIMD level against the scalar
 * reference, the reference against naive attention over the dequantized
 * rows), and the stream codec's round trip of each layout (same logits
 * after reading back). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gguf.h"
#include "kv.h"
#include "kvm.h"
#include "kvstream.h"
#include "model.h"
#include "ops_int.h"
#include "test.h"
#include "util.h"

static const char *t_suite_name = "kvq";

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static float frand(float r)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0) * r;
}

/* ---- quantizers ---- */

static void pack_roundtrip(void)
{
	const int bits[] = {2, 4, 8}, ns[] = {16, 32};
	for (int b = 0; b < 3; b++)
		for (int k = 0; k < 2; k++) {
			uint8_t c[32], back[32], p[32];
			for (int i = 0; i < ns[k]; i++)
				c[i] = (uint8_t)((i * 7 + 3) % (1 << bits[b]));
			weft_kivi_pack(c, ns[k], bits[b], p);
			weft_kivi_unpack(p, ns[k], bits[b], back);
			CHECK(memcmp(c, back, (size_t)ns[k]) == 0);
		}
	/* the documented layout: 4 bits, byte i = code i | code i+16 << 4 */
	uint8_t c[32], p[16];
	for (int i = 0; i < 32; i++)
		c[i] = (uint8_t)(i & 15);
	weft_kivi_pack(c, 32, 4, p);
	CHECK_EQ_INT(p[3], 3 | 3 << 4);
}

/* Key groups: each channel over 32 rows; value rows: groups of vg. */
static float max_err_keys(const float *k, int kd, int bits, float *step)
{
	uint8_t blk[4096];
	float back[32 * 64];
	if (weft_kivi_quant_keys(k, kd, kd, bits, blk) != 0)
		return INFINITY;
	weft_kivi_dequant_keys(blk, kd, bits, back);
	float worst = 0;
	*step = 0;
	for (int c = 0; c < kd; c++) {
		uint16_t s;
		memcpy(&s, blk + 2 * c, 2);
		const float fs = weft_fp16_to_fp32(s);
		*step = fs > *step ? fs : *step;
		for (int r = 0; r < 32; r++) {
			/* the bound: half a step, float rounding aside */
			const float e = fabsf(k[r * kd + c] - back[r * kd + c]) - 0.5f * fs * (1 + 1e-5f);
			worst = e > worst ? e : worst;
		}
	}
	return worst;
}

static void quant_bounds(void)
{
	const int bits[] = {2, 4, 8};
	float k[32 * 64];
	for (int b = 0; b < 3; b++)
		for (int kind = 0; kind < 6; kind++) {
			for (int r = 0; r < 32; r++)
				for (int c = 0; c < 64; c++) {
					float x = frand(1.0f);
					if (kind == 1 && c == 5)
						x *= 300; /* an outlier channel */
					if (kind == 2)
						x = 0.75f; /* all equal */
					if (kind == 3)
						x = 0;
					if (kind == 4)
						x = c % 2 ? 65504.0f : -65504.0f; /* the half range */
					if (kind == 5)
						x = 1e-6f * frand(1.0f); /* tiny, subnormal steps */
					k[r * 64 + c] = x;
				}
			float step;
			const float e = max_err_keys(k, 64, bits[b], &step);
			if (!(e <= 1e-7f))
				FAILF("%d bits, case %d: error exceeds half a step by %g", bits[b], kind, (double)e);
			if (kind == 2 || kind == 3 || kind == 4)
				CHECK(e <= 0 && step == 0); /* representable constants: exact */
		}
	/* values: groups of 32 and of 16 channels */
	for (int b = 0; b < 3; b++)
		for (int vg = 16; vg <= 32; vg += 16) {
			float v[64], back[64];
			uint8_t row[256];
			for (int i = 0; i < 64; i++)
				v[i] = frand(2.0f) + (i == 9 ? 40.0f : 0.0f);
			CHECK(weft_kivi_quant_vrow(v, 64, vg, bits[b], row) == 0);
			weft_kivi_dequant_vrow(row, 64, vg, bits[b], back);
			for (int g = 0; g < 64 / vg; g++) {
				uint16_t s;
				memcpy(&s, row + (size_t)g * (4 + (size_t)vg * bits[b] / 8), 2);
				for (int i = g * vg; i < (g + 1) * vg; i++)
					if (!(fabsf(v[i] - back[i]) <= 0.5f * weft_fp16_to_fp32(s) * (1 + 1e-5f) + 1e-7f))
						FAILF("value %d (%d bits, group %d): %g vs %g", i, bits[b], vg, (double)v[i], (double)back[i]);
			}
		}
	/* 8 bits is far finer than 2: the bound scales with the step */
	float s2, s8;
	for (int i = 0; i < 32 * 64; i++)
		k[i] = frand(1.0f);
	max_err_keys(k, 64, 2, &s2);
	max_err_keys(k, 64, 8, &s8);
	CHECK(s8 < s2 / 50);
}

static void nonfinite_refused(void)
{
	float k[32 * 16];
	uint8_t blk[2048];
	const float bad[] = {NAN, INFINITY, -INFINITY, 1e6f};
	for (int i = 0; i < 4; i++) {
		for (int j = 0; j < 32 * 16; j++)
			k[j] = frand(1.0f);
		k[37] = bad[i];
		CHECK_EQ_INT(weft_kivi_quant_keys(k, 16, 16, 4, blk), -1);
		CHECK_EQ_INT(weft_kivi_quant_vrow(k + 32, 16, 16, 4, blk), -1);
	}
	/* through the cache: an error naming the row, the cache unchanged */
	weft_kv *kv = weft_kv_alloc(1, 2, 16, 80, WEFT_KV_F16);
	float kr[70 * 2 * 16], vr[70 * 2 * 16];
	for (int i = 0; i < 70 * 2 * 16; i++)
		kr[i] = frand(1.0f), vr[i] = frand(1.0f);
	vr[(5 * 2 + 1) * 16 + 3] = INFINITY;
	CHECK(kv && weft_kv_append(kv, 0, 70, kr, vr, 0) == 0);
	CHECK_EQ_INT(weft_kv_quantize(kv, 0, 4, 4, 16), -1);
	CHECK_STR(weft_errmsg(), "layer 0 head 1 row 5: value channel 3 is inf: cannot quantize a value that is not "
				 "finite (or beyond the half range)");
	CHECK(kv && kv->layer[0].q == NULL && kv->len[0] == 70 && kv->len[1] == 70);
	weft_kv_free(kv);
}

/* ---- attention over compressed layouts ---- */

/* A layer of H heads of D: head g holds nq[g] KIVI rows and np[g] plain F16
 * rows (ragged capacities), optionally channel-pruned keys; plus the same
 * rows dequantized, for the naive reference. */
typedef struct layout {
	weft_kv *kv;
	float *kref, *vref; /* [H][rows][D]: keys with dropped channels zero */
	int rows[4];
} layout;

static void build(layout *x, int H, int D, const int *nq, const int *np, int bits, int kd)
{
	memset(x, 0, sizeof *x);
	const int maxr = 400;
	x->kv = weft_kv_alloc(1, H, D, maxr, WEFT_KV_F16);
	x->kref = calloc((size_t)H * maxr * D, sizeof(float));
	x->vref = calloc((size_t)H * maxr * D, sizeof(float));
	float *k = malloc(sizeof(float) * (size_t)H * D), *v = malloc(sizeof(float) * (size_t)H * D);
	/* the same number of rows appended to every head, then compacted per head */
	int most = 0;
	for (int g = 0; g < H; g++)
		most = nq[g] + np[g] > most ? nq[g] + np[g] : most;
	for (int t = 0; t < most; t++) {
		for (int i = 0; i < H * D; i++)
			k[i] = frand(1.0f) + (i % D == 3 ? 4.0f : 0.0f), v[i] = frand(1.5f);
		weft_kv_append(x->kv, 0, 1, k, v, t);
	}
	int32_t keep[400], chan[4 * 64];
	for (int g = 0; g < H; g++) {
		for (int i = 0; i < nq[g] + np[g]; i++)
			keep[i] = i;
		weft_kv_compact(x->kv, 0, g, keep, nq[g] + np[g]);
		for (int i = 0; i < kd; i++) /* drop every third channel, roughly */
			chan[g * kd + i] = (int32_t)((int64_t)i * D / kd + (g % 2 && i * D / kd + 1 < (i + 1) * D / kd));
	}
	if (kd < D)
		weft_kv_prune_channels(x->kv, 0, kd, chan);
	if (bits) {
		weft_kvq_init(x->kv, 0, bits, bits, 0);
		for (int g = 0; g < H; g++) {
			float *K = malloc(sizeof(float) * (size_t)(nq[g] + 1) * kd), *V = malloc(sizeof(float) * (size_t)(nq[g] + 1) * D);
			for (int r = 0; r < nq[g]; r++) {
				weft_f16_to_f32(K + (size_t)r * kd, weft_kv_krow(x->kv, 0, g, r), kd);
				weft_f16_to_f32(V + (size_t)r * D, weft_kv_vrow(x->kv, 0, g, r), D);
			}
			if (nq[g] > 0) {
				weft_kvq_append_rows(x->kv, 0, g, K, V, weft_kv_pos(x->kv, 0, g), nq[g]);
				weft_kvq_drop_front(x->kv, 0, g, nq[g]);
			}
			free(K), free(V);
		}
	}
	weft_kv_fit(x->kv, 0); /* heads of their own capacities */
	/* the reference rows: dequantized prefix, then plain rows */
	const weft_kv_layer *L = &x->kv->layer[0];
	for (int g = 0; g < H; g++) {
		const int q = L->q ? L->q->n[g] : 0;
		float kb[32 * 64], vb[64], kr[64];
		x->rows[g] = q + x->kv->len[g];
		for (int r = 0; r < x->rows[g]; r++) {
			float *dk = x->kref + ((size_t)g * maxr + r) * D, *dv = x->vref + ((size_t)g * maxr + r) * D;
			if (r < q) {
				if (r % 32 == 0)
					weft_kivi_dequant_keys(L->q->kb[g] + (size_t)(r / 32) * L->q->kblk, kd, bits, kb);
				memcpy(kr, kb + (r % 32) * kd, sizeof(float) * (size_t)kd);
				weft_kivi_dequant_vrow(L->q->vb[g] + (size_t)r * L->q->vrow, D, L->q->vgroup, bits, vb);
			} else {
				weft_f16_to_f32(kr, weft_kv_krow(x->kv, 0, g, r - q), kd);
				weft_f16_to_f32(vb, weft_kv_vrow(x->kv, 0, g, r - q), D);
			}
			for (int i = 0; i < kd; i++)
				dk[L->k_chan ? L->k_chan[g * kd + i] : i] = kr[i];
			memcpy(dv, vb, sizeof(float) * (size_t)D);
		}
	}
	free(k), free(v);
}

/* Naive attention of T queries (the last T rows of each head are theirs). */
static void naive(const layout *x, const float *Q, int T, int NH, int H, int D, double *out)
{
	const int rep = NH / H;
	for (int h = 0; h < NH; h++) {
		const int g = h / rep, n = x->rows[g];
		for (int t = 0; t < T; t++) {
			const int vis = n - T + t + 1;
			double s[400], mx = -INFINITY, sum = 0;
			for (int j = 0; j < vis; j++) {
				double d = 0;
				for (int i = 0; i < D; i++)
					d += (double)Q[(t * NH + h) * D + i] * x->kref[((size_t)g * 400 + j) * D + i];
				s[j] = d / sqrt((double)D);
				mx = s[j] > mx ? s[j] : mx;
			}
			for (int j = 0; j < vis; j++)
				sum += exp(s[j] - mx);
			for (int i = 0; i < D; i++) {
				double o = 0;
				for (int j = 0; j < vis; j++)
					o += exp(s[j] - mx) / sum * x->vref[((size_t)g * 400 + j) * D + i];
				out[(t * NH + h) * D + i] = o;
			}
		}
	}
}

static void attn_layouts(void)
{
	static const struct {
		int H, D, bits, kd, T;
		int nq[4], np[4];
	} cases[] = {
		{2, 64, 4, 64, 1, {64, 96}, {40, 7}},	/* KIVI-4, ragged heads, a decode step */
		{2, 64, 2, 64, 3, {128, 32}, {5, 129}},	/* KIVI-2, 3 queries */
		{2, 64, 8, 64, 1, {32, 0}, {1, 60}},	/* KIVI-8, one head without a prefix */
		{2, 16, 4, 16, 2, {32, 64}, {9, 3}},	/* head size 16: value groups of 16 */
		{2, 64, 0, 40, 2, {0, 0}, {70, 33}},	/* channel-pruned keys, ragged */
		{2, 64, 4, 48, 1, {64, 32}, {12, 20}},	/* both */
		{3, 64, 0, 64, 4, {0, 0, 0}, {50, 9, 130}}, /* plain ragged (kv_head_off) */
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const int H = cases[c].H, D = cases[c].D, T = cases[c].T, NH = 3 * H;
		layout x;
		build(&x, H, D, cases[c].nq, cases[c].np, cases[c].bits, cases[c].kd);
		float *Q = malloc(sizeof(float) * (size_t)T * NH * D), *out = malloc(sizeof(float) * (size_t)T * NH * D),
		      *ref = malloc(sizeof(float) * (size_t)T * NH * D);
		double *want = malloc(sizeof(double) * (size_t)T * NH * D);
		for (int i = 0; i < T * NH * D; i++)
			Q[i] = frand(2.0f);
		naive(&x, Q, T, NH, H, D, want);
		weft_attn_args a = {.Q = Q, .T = T, .n_head = NH, .n_head_kv = H, .hd = D, .scale = 1.0f / sqrtf((float)D)};
		weft_kv_attn_args(x.kv, 0, &a);
		for (int lvl = 0; lvl < WEFT_LEVEL_LLAMACPP; lvl++) {
			const weft_backend *b = weft_backend_at((weft_level)lvl);
			if (!b)
				continue;
			a.out = lvl == 0 ? ref : out;
			weft_attention_vt(NULL, &a, &b->ops);
			double worst = 0;
			for (int i = 0; i < T * NH * D; i++) {
				const double e = lvl == 0 ? fabs(ref[i] - want[i]) : fabs(out[i] - ref[i]);
				worst = e > worst ? e : worst;
			}
			/* the reference equals naive attention over the dequantized rows;
			 * SIMD levels equal the reference up to summation order */
			if (!(worst <= 2e-5))
				FAILF("case %zu, level %s: max abs error %g", c, b->name, worst);
		}
		free(Q), free(out), free(ref), free(want), free(x.kref), free(x.vref);
		weft_kv_free(x.kv);
	}
}

/* MiniCache views: layer 1 shares some of layer 0's rows (scaled) and keeps
 * its own others; every level equals naive attention over those rows. */
static void attn_view(void)
{
	const int H = 2, D = 64, NH = 6, N = 90, T = 2;
	weft_kv *kv = weft_kv_alloc(2, H, D, N, WEFT_KV_F16);
	float k[2 * 64], v[2 * 64];
	for (int t = 0; t < N; t++)
		for (int l = 0; l < 2; l++) {
			for (int i = 0; i < H * D; i++)
				k[i] = frand(1.0f), v[i] = frand(1.0f);
			weft_kv_append(kv, l, 1, k, v, t);
		}
	CHECK(weft_kvview_init(kv, 1, 0) == 0);
	weft_kvview *vw = kv->layer[1].mv;
	float *Kr = malloc(sizeof(float) * H * N * D), *Vr = malloc(sizeof(float) * H * N * D);
	int rows[2] = {0, 0};
	for (int g = 0; g < H; g++) {
		int32_t keep[90];
		int nk = 0;
		vw->idx[g] = malloc(sizeof(int32_t) * N), vw->pos[g] = malloc(sizeof(int32_t) * N);
		vw->ks[g] = malloc(sizeof(float) * N), vw->vs[g] = malloc(sizeof(float) * N);
		for (int j = 0; j < N - T; j++) /* every third row kept apart, the others shared */
			if (j % 3 == g) {
				keep[nk++] = j;
			} else {
				const int e = vw->n[g]++;
				vw->idx[g][e] = j, vw->pos[g][e] = j, vw->ks[g][e] = 0.5f + frand(0.4f), vw->vs[g][e] = 1.5f + frand(0.4f);
				float kk[64], vv[64];
				weft_f16_to_f32(kk, weft_kv_krow(kv, 0, g, j), D);
				weft_f16_to_f32(vv, weft_kv_vrow(kv, 0, g, j), D);
				for (int i = 0; i < D; i++)
					Kr[(g * N + rows[g]) * D + i] = kk[i] * vw->ks[g][e], Vr[(g * N + rows[g]) * D + i] = vv[i] * vw->vs[g][e];
				rows[g]++;
			}
		for (int j = N - T; j < N; j++) /* the queries' own rows, last */
			keep[nk++] = j;
		weft_kv_compact(kv, 1, g, keep, nk);
		for (int i = 0; i < nk; i++, rows[g]++) {
			weft_f16_to_f32(Kr + (g * N + rows[g]) * D, weft_kv_krow(kv, 1, g, i), D);
			weft_f16_to_f32(Vr + (g * N + rows[g]) * D, weft_kv_vrow(kv, 1, g, i), D);
		}
	}
	float Q[2 * 6 * 64], out[2 * 6 * 64];
	double want[2 * 6 * 64];
	for (int i = 0; i < T * NH * D; i++)
		Q[i] = frand(2.0f);
	for (int h = 0; h < NH; h++) { /* naive: every row visible but the later query's */
		const int g = h / 3;
		for (int t = 0; t < T; t++) {
			double sc[90], mx = -INFINITY, sum = 0;
			const int vis = rows[g] - T + t + 1;
			for (int j = 0; j < vis; j++) {
				double d = 0;
				for (int i = 0; i < D; i++)
					d += (double)Q[(t * NH + h) * D + i] * Kr[(g * N + j) * D + i];
				sc[j] = d / 8.0;
				mx = sc[j] > mx ? sc[j] : mx;
			}
			for (int j = 0; j < vis; j++)
				sum += exp(sc[j] - mx);
			for (int i = 0; i < D; i++) {
				double o = 0;
				for (int j = 0; j < vis; j++)
					o += exp(sc[j] - mx) / sum * Vr[(g * N + j) * D + i];
				want[(t * NH + h) * D + i] = o;
			}
		}
	}
	weft_attn_args a = {.Q = Q, .T = T, .n_head = NH, .n_head_kv = H, .hd = D, .scale = 0.125f, .out = out};
	weft_kv_attn_args(kv, 1, &a);
	CHECK(a.view != NULL);
	for (int lvl = 0; lvl < WEFT_LEVEL_LLAMACPP; lvl++) {
		const weft_backend *b = weft_backend_at((weft_level)lvl);
		if (!b)
			continue;
		weft_attention_vt(NULL, &a, &b->ops);
		double worst = 0;
		for (int i = 0; i < T * NH * D; i++)
			worst = fabs(out[i] - want[i]) > worst ? fabs(out[i] - want[i]) : worst;
		if (!(worst <= 2e-5))
			FAILF("level %s: max abs error %g", b->name, worst);
	}
	free(Kr), free(Vr);
	weft_kv_free(kv);
}

/* Layer 1 head 0's quantized rows as decoded (KIVI rows plus GEAR's terms)
 * against the uncompressed cache's: the summed absolute error of keys and
 * values. */
static double recon_error(const weft_kv *kv, const weft_kv *ref)
{
	const weft_kvq *q = kv->layer[1].q;
	const int kd = kv->layer[1].k_dim, D = kv->head_dim;
	float kb[32 * 64], vb[64], kr[64], vr[64];
	double e = 0;
	int32_t ko = 0, vo = 0;
	for (int r = 0; r < q->n[0]; r++) {
		if (r % 32 == 0)
			weft_kivi_dequant_keys(q->kb[0] + (size_t)(r / 32) * q->kblk, kd, q->kbits, kb);
		float *k = kb + (r % 32) * kd;
		weft_kivi_dequant_vrow(q->vb[0] + (size_t)r * q->vrow, D, q->vgroup, q->vbits, vb);
		for (int i = 0; q->rank > 0 && r < q->lr_n[0] && i < q->rank; i++)
			for (int d = 0; d < D; d++) {
				k[d] += weft_fp16_to_fp32(q->ka[0][r * q->rank + i]) * q->kbasis[0][i * kd + d];
				vb[d] += weft_fp16_to_fp32(q->va[0][r * q->rank + i]) * q->vbasis[0][i * D + d];
			}
		for (; q->ko && ko < q->ko_n[0] && q->ko[0][ko].row == r; ko++)
			k[q->ko[0][ko].chan] += weft_fp16_to_fp32(q->ko[0][ko].val);
		for (; q->vo && vo < q->vo_n[0] && q->vo[0][vo].row == r; vo++)
			vb[q->vo[0][vo].chan] += weft_fp16_to_fp32(q->vo[0][vo].val);
		weft_f16_to_f32(kr, weft_kv_krow(ref, 1, 0, r), D);
		weft_f16_to_f32(vr, weft_kv_vrow(ref, 1, 0, r), D);
		for (int d = 0; d < D; d++)
			e += fabs(k[d] - kr[d]) + fabs(vb[d] - vr[d]);
	}
	return e;
}

/* GEAR's terms (low rank, outliers) at every level equal the scalar
 * reference's, on the tiny model's cache; and they bring the rows closer
 * to the originals than 2-bit KIVI alone. */
static void attn_gear(void)
{
	weft_gguf *gg = weft_gguf_open("tests/data/llm/tiny-llama-f16.gguf");
	weft_model *m = gg ? weft_model_load(gg) : NULL;
	if (!m) {
		FAILF("model");
		weft_gguf_close(gg);
		return;
	}
	const int T = 150, NH = m->hp.n_head, D = m->hp.head_dim;
	int32_t ids[150];
	for (int i = 0; i < T; i++)
		ids[i] = 3 + (i * 53) % 300;
	double err[2];
	for (int v = 0; v < 2; v++) {
		weft_kv *kv = weft_kv_new(m, T), *ref = weft_kv_new(m, T);
		CHECK(weft_model_forward(m, NULL, kv, ids, NULL, T, 0, NULL, 0, NULL) == 0);
		CHECK(weft_model_forward(m, NULL, ref, ids, NULL, T, 0, NULL, 0, NULL) == 0);
		weft_kvm_opts o = {.image_ratio = -1};
		CHECK(weft_kvm_apply(v ? "gear:residual=16:rank=2:outliers=0.05" : "kivi2:residual=16", &o, &m->hp, kv, NULL,
				     NULL, 0, NULL, 0) == 0);
		float Q[6 * 16 * 2], out[6 * 16 * 2], sref[6 * 16 * 2];
		for (int i = 0; i < 2 * NH * D; i++)
			Q[i] = frand(3.0f);
		weft_attn_args a = {.Q = Q, .T = 1, .n_head = NH, .n_head_kv = m->hp.n_head_kv, .hd = D,
				    .scale = 1.0f / sqrtf((float)D)};
		weft_kv_attn_args(kv, 1, &a);
		CHECK(a.kivi && (!v || (a.kivi->rank == 2 && a.kivi->ko)));
		for (int lvl = 0; lvl < WEFT_LEVEL_LLAMACPP; lvl++) {
			const weft_backend *be = weft_backend_at((weft_level)lvl);
			if (!be)
				continue;
			a.out = lvl == 0 ? sref : out;
			weft_attention_vt(NULL, &a, &be->ops);
			double worst = 0;
			for (int i = 0; lvl > 0 && i < NH * D; i++)
				worst = fabs(out[i] - sref[i]) > worst ? fabs(out[i] - sref[i]) : worst;
			if (!(worst <= 2e-5))
				FAILF("%s, level %s: max abs error %g against the reference", v ? "gear" : "kivi", be->name, worst);
		}
		err[v] = recon_error(kv, ref);
		weft_kv_free(kv), weft_kv_free(ref);
	}
	if (!(err[1] < 0.85 * err[0]))
		FAILF("GEAR's reconstruction error %g is not well below 2-bit KIVI's %g", err[1], err[0]);
	weft_model_free(m);
	weft_gguf_close(gg);
}

/* The AVX-512 level reads KIVI prefixes and pruned keys itself (no fallback). */
static void simd_levels_declare(void)
{
	const weft_backend *b = weft_backend_at(WEFT_LEVEL_AVX512);
	if (!b)
		SKIP("this CPU lacks the AVX-512 level");
	CHECK((b->ops.attn_ext & (WEFT_ATTN_EXT_KIVI | WEFT_ATTN_EXT_KCHAN)) == (WEFT_ATTN_EXT_KIVI | WEFT_ATTN_EXT_KCHAN));
	CHECK((weft_backend_at(WEFT_LEVEL_SCALAR)->ops.attn_ext & WEFT_ATTN_EXT_GEAR) != 0);
}

/* ---- stream round trips ---- */

/* The tiny model's cache of 150 tokens, compressed by spec, written and read
 * back: the same rows and the same next-token logits. */
static void stream_roundtrip_spec(const char *spec)
{
	weft_gguf *g = weft_gguf_open("tests/data/llm/tiny-llama-f16.gguf");
	weft_model *m = g ? weft_model_load(g) : NULL;
	if (!m) {
		FAILF("model: %s", weft_errmsg());
		weft_gguf_close(g);
		return;
	}
	const int T = 150;
	int32_t ids[150], hist[150];
	for (int i = 0; i < T; i++)
		ids[i] = hist[i] = 3 + (i * 37) % 300;
	weft_kv *kv = weft_kv_new(m, T);
	float *wq = calloc((size_t)m->hp.n_layer * 64 * m->hp.n_head * m->hp.head_dim, sizeof(float));
	weft_fwd_extra x = {.window_q = wq, .n_window = 64};
	CHECK(kv && weft_model_forward(m, NULL, kv, ids, NULL, T, 0, NULL, 0, &x) == 0);
	weft_kvm_stats st = {.window_q = wq, .n_window = 64};
	weft_kvm_opts o = {.ratio = 0.5, .image_ratio = -1};
	if (weft_kvm_apply(spec, &o, &m->hp, kv, &st, hist, T, NULL, 0) != 0)
		FAILF("%s: %s", spec, weft_errmsg());
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	weft_kv_write_args w = {.hist = hist, .n_hist = T};
	CHECK(f && weft_kv_write(f, m, kv, &w) == 0);
	fclose(f);
	weft_reader *r = weft_reader_mem(buf, n);
	weft_kv_in in = {.extra_cap = 2};
	weft_frame *fr;
	int rc;
	while ((rc = weft_reader_next(r, &fr)) == 1) {
		if (weft_kv_read(&in, m, fr) < 0)
			FAILF("%s: read: %s", spec, weft_errmsg());
		weft_frame_free(fr);
	}
	CHECK(rc == 0 && weft_kv_read_end(&in, m, 0) == 0);
	CHECK(in.kv && weft_kv_bytes(in.kv) == weft_kv_bytes(kv));
	float l1[512], l2[512];
	const int32_t next = 11;
	CHECK(weft_kv_reserve_extra(kv, 2) == 0);
	CHECK(weft_model_forward(m, NULL, kv, &next, NULL, 1, 0, l1, 0, NULL) == 0);
	CHECK(in.kv && weft_model_forward(m, NULL, in.kv, &next, NULL, 1, 0, l2, 0, NULL) == 0);
	CHECK(memcmp(l1, l2, sizeof(float) * (size_t)m->hp.n_vocab) == 0);
	weft_kv_in_free(&in);
	weft_reader_free(r);
	free(buf), free(wq);
	weft_kv_free(kv);
	weft_model_free(m);
	weft_gguf_close(g);
}

static void stream_kivi(void) { stream_roundtrip_spec("kivi2:residual=32"); }
static void stream_gear(void) { stream_roundtrip_spec("gear:residual=32"); }
static void stream_think(void) { stream_roundtrip_spec("think"); }
static void stream_ragged(void) { stream_roundtrip_spec("adakv:window=16"); }
static void stream_minicache(void) { stream_roundtrip_spec("minicache:from=0:gamma=0.1"); }
static void stream_all(void) { stream_roundtrip_spec("adakv:window=16,think:window=16,kivi4:residual=32"); }

/* A layout this version does not know is refused, naming it. */
static void newer_layout_refused(void)
{
	weft_gguf *g = weft_gguf_open("tests/data/llm/tiny-llama-f16.gguf");
	weft_model *m = g ? weft_model_load(g) : NULL;
	weft_kv *kv = m ? weft_kv_new(m, 4) : NULL;
	weft_frame *f = kv ? weft_kvcache_frame(m, kv, (const int32_t[]){1, 2, 3, 4}, 0) : NULL;
	CHECK(f && weft_frame_set(f, "weft.kv_type", "KIVI9") == 0);
	weft_kv_in in = {0};
	CHECK(f && weft_kv_read(&in, m, f) == -1);
	CHECK_STR(weft_errmsg(), "frame 0: unknown weft.kv_type 'KIVI9' (F16, F32, Q8_0, KIVI, GEAR or MERGED): a cache from a newer weft?");
	weft_kv_in_free(&in);
	weft_frame_free(f);
	weft_kv_free(kv);
	weft_model_free(m);
	weft_gguf_close(g);
}

/* Damaged compressed frames (built, then edited in memory: no CRC in the
 * way) are refused, one message each, never read out of bounds. */
static void damaged_frames(void)
{
	weft_gguf *g = weft_gguf_open("tests/data/llm/tiny-llama-f16.gguf");
	weft_model *m = g ? weft_model_load(g) : NULL;
	if (!m) {
		FAILF("model");
		weft_gguf_close(g);
		return;
	}
	const int T = 150;
	int32_t ids[150];
	for (int i = 0; i < T; i++)
		ids[i] = 3 + (i * 41) % 300;
	static const struct {
		const char *spec, *tensor, *want;
		int index, value;
	} cases[] = {
		{"kivi4:residual=16", "qn", "qn[0] = -1 out of range", 0, -1},
		{"kivi4:residual=16", "qn", "qn sums to", 0, 64},
		{"gear:residual=16", "ko_n", "ko_n sums to", 1, 1000},
		{"gear:residual=16", "ko", "GEAR outlier 0 of head 0 out of range", 0, 100000},
		{"minicache:from=0", "m_idx", "outside layer 0's", 0, 100000},
		{"adakv:window=16", "len", "kv len sums to", 0, 3},
		{"think", "k_chan", "kept key channel 0 out of order or range", 1, 0},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		weft_kv *kv = weft_kv_new(m, T);
		float *wq = calloc((size_t)2 * 64 * m->hp.n_head * m->hp.head_dim, sizeof(float));
		weft_fwd_extra x = {.window_q = wq, .n_window = 64};
		CHECK(weft_model_forward(m, NULL, kv, ids, NULL, T, 0, NULL, 0, &x) == 0);
		weft_kvm_stats st = {.window_q = wq, .n_window = 64};
		weft_kvm_opts o = {.ratio = 0.5, .image_ratio = -1};
		CHECK(weft_kvm_apply(cases[c].spec, &o, &m->hp, kv, &st, NULL, 0, NULL, 0) == 0);
		weft_frame *hf = weft_kvcache_frame(m, kv, ids, T);
		const int layer = strcmp(cases[c].tensor, "m_idx") == 0 ? 1 : 0;
		weft_frame *lf0 = weft_kv_layer_frame(m, kv, 0, NULL, 0), *lf = layer ? weft_kv_layer_frame(m, kv, 1, NULL, 0) : lf0;
		const weft_tensor *t = lf ? weft_frame_tensor(lf, cases[c].tensor) : NULL;
		if (!hf || !t) {
			FAILF("case %zu: no tensor %s", c, cases[c].tensor);
		} else {
			((int32_t *)t->data)[cases[c].index] = cases[c].value;
			weft_kv_in in = {.extra_cap = 1};
			int rc = weft_kv_read(&in, m, hf);
			if (rc == 1 && layer)
				rc = weft_kv_read(&in, m, lf0);
			if (rc == 1)
				rc = weft_kv_read(&in, m, lf);
			if (rc != -1 || !strstr(weft_errmsg(), cases[c].want))
				FAILF("case %zu (%s %s): rc %d, '%s'", c, cases[c].spec, cases[c].tensor, rc, weft_errmsg());
			weft_kv_in_free(&in);
		}
		weft_frame_free(hf);
		weft_frame_free(lf0);
		if (layer)
			weft_frame_free(lf);
		weft_kv_free(kv);
		free(wq);
	}
	weft_model_free(m);
	weft_gguf_close(g);
}

int main(void)
{
	t_suite = t_suite_name;
	RUN(pack_roundtrip);
	RUN(quant_bounds);
	RUN(nonfinite_refused);
	RUN(attn_layouts);
	RUN(attn_view);
	RUN(attn_gear);
	RUN(simd_levels_declare);
	RUN(stream_kivi);
	RUN(stream_gear);
	RUN(stream_think);
	RUN(stream_ragged);
	RUN(stream_minicache);
	RUN(stream_all);
	RUN(newer_layout_refused);
	RUN(damaged_frames);
	TEST_MAIN_END();
}

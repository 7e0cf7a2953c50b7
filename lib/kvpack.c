/* kvpack.c - a KV cache coded for disk or the network (kvcompress --pack),
 * CacheGen-style: quantized, delta coded, entropy coded, checked.
 *
 *   kvpack   one, first: the kvcache frame's metadata and token history,
 *            plus weft.pack_bits
 *   kvpackl  one per layer, in order: weft.layer, weft.raw_bytes (the
 *            payload's size), weft.raw_crc32 (its CRC-32); tensor z (U8:
 *            the payload, zlib-deflated, level 9)
 *   logits   as prefill writes it
 *
 * A layer's payload (little-endian): i32 k_dim, then when it is below the
 * head size i32 channels [n_head_kv][k_dim] (ThinK); then per head: i32
 * len, i32 positions delta coded (each minus the one before), and for keys
 * then values: per block of up to 32 rows, per channel, an IEEE half
 * minimum and step (all blocks' first), then the codes (bits bits, one per
 * byte), each minus the row's before it in its block, mod 256, channel by
 * channel (rows of a channel are alike: CacheGen's observation; the deltas
 * are small and zlib codes them short).  Every value is within half a step
 * of its decoded value (kernels/kivi.c's quantizer per channel).
 *
 * The stream's own CRC-32 per frame catches corruption in transit; the
 * payload's catches a codec fault.  Readers (decode, kvcompress, prefill)
 * take packed frames like plain ones (kvstream.c). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "keys.h"
#include "kvstream.h"
#include "kvstream_int.h"
#include "util.h"

#define KEY_PACK_BITS "weft.pack_bits"
#define KEY_RAW_BYTES "weft.raw_bytes"
#define KEY_RAW_CRC "weft.raw_crc32"

/* ---- a growable byte buffer ---- */

typedef struct buf {
	uint8_t *p;
	size_t n, cap;
	int err;
} buf;

static void put(buf *b, const void *x, size_t n)
{
	if (b->err)
		return;
	if (b->n + n > b->cap) {
		size_t c = b->cap ? b->cap : 1 << 16;
		while (c < b->n + n)
			c *= 2;
		uint8_t *q = realloc(b->p, c);
		if (!q) {
			b->err = 1;
			return;
		}
		b->p = q, b->cap = c;
	}
	memcpy(b->p + b->n, x, n);
	b->n += n;
}

static void put32(buf *b, int32_t v)
{
	const uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put(b, x, 4);
}

/* ---- packing ---- */

/* Rows [T][d] of one head (float32): per block of up to 32 rows, halves
 * then codes, into hdr and codes. */
static int pack_matrix(const float *X, int64_t T, int d, int bits, buf *hdr, buf *codes)
{
	uint8_t c[32], dlt[32];
	for (int64_t b0 = 0; b0 < T; b0 += 32) {
		const int n = T - b0 < 32 ? (int)(T - b0) : 32;
		for (int ch = 0; ch < d; ch++) {
			uint16_t mh, sh;
			if (weft_kivi_quant_group(X + b0 * d + ch, d, n, bits, &mh, &sh, c) != 0) {
				weft_error("--pack: a key or value is not finite (NaN, Inf or beyond the half range)");
				return -1;
			}
			put(hdr, &mh, 2);
			put(hdr, &sh, 2);
			for (int r = 0; r < n; r++)
				dlt[r] = (uint8_t)(c[r] - (r ? c[r - 1] : 0));
			put(codes, dlt, (size_t)n);
		}
	}
	return 0;
}

/* Layer l's payload into out. */
static int layer_payload(const weft_kv *kv, int l, int bits, buf *out)
{
	const weft_kv_layer *L = &kv->layer[l];
	const int H = kv->n_head_kv, D = kv->head_dim, kd = L->k_dim;
	put32(out, kd);
	for (int i = 0; L->k_chan && i < H * kd; i++)
		put32(out, L->k_chan[i]);
	int rc = 0;
	for (int h = 0; rc == 0 && h < H; h++) {
		const int64_t T = kv->len[(size_t)l * H + h];
		const int32_t *pos = weft_kv_pos(kv, l, h);
		put32(out, (int32_t)T);
		for (int64_t j = 0; j < T; j++)
			put32(out, pos[j] - (j ? pos[j - 1] : 0));
		float *X = weft_malloc(sizeof(float) * (size_t)(T > 0 ? T : 1) * (size_t)D);
		buf hdr = {0}, codes = {0};
		if (!X)
			return -1;
		for (int kvi = 0; rc == 0 && kvi < 2; kvi++) {
			const int d = kvi ? D : kd;
			for (int64_t j = 0; j < T; j++) {
				const void *row = kvi ? weft_kv_vrow(kv, l, h, j) : weft_kv_krow(kv, l, h, j);
				if (L->type == WEFT_KV_F32)
					memcpy(X + j * d, row, sizeof(float) * (size_t)d);
				else
					weft_dequantize_row(L->type, row, X + j * d, d);
			}
			hdr.n = codes.n = 0;
			if ((rc = pack_matrix(X, T, d, bits, &hdr, &codes)) == 0) {
				put(out, hdr.p, hdr.n);
				put(out, codes.p, codes.n);
				rc = hdr.err || codes.err ? -1 : 0;
			}
		}
		free(X), free(hdr.p), free(codes.p);
	}
	return rc == 0 && !out->err ? 0 : -1;
}

int weft_kv_write_packed(FILE *out, const weft_model *m, const weft_kv *kv, const weft_kv_write_args *w, int bits)
{
	if (bits < 2 || bits > 8) {
		weft_error("--pack: %d bits (2 to 8)", bits);
		return -1;
	}
	for (int l = 0; l < kv->n_layer; l++)
		if (kv->layer[l].q || kv->layer[l].mv) {
			weft_error("--pack: layer %d is %s: pack a cache of plain rows (kivi, gear and minicache "
				   "already code the cache; --pack codes the rest)", l, kv->layer[l].q ? "quantized" : "merged");
			return -1;
		}
	weft_frame *hf = weft_kvcache_frame(m, kv, w->hist, w->n_hist);
	if (!hf || weft_frame_set(hf, WEFT_KEY_KIND, WEFT_KIND_KVPACK) || weft_frame_setf(hf, KEY_PACK_BITS, "%d", bits) ||
	    (w->llamacpp && weft_frame_set(hf, WEFT_KEY_NUMERICS, "llama.cpp")) ||
	    (w->methods && *w->methods && weft_frame_set(hf, WEFT_KEY_KV_METHODS, w->methods)) || weft_frame_write(out, hf)) {
		weft_frame_free(hf);
		return -1;
	}
	weft_frame_free(hf);
	for (int l = 0; l < kv->n_layer; l++) {
		buf raw = {0};
		if (layer_payload(kv, l, bits, &raw) != 0) {
			free(raw.p);
			return -1;
		}
		uLongf zn = compressBound((uLong)raw.n);
		uint8_t *z = weft_malloc(zn ? zn : 1);
		weft_frame *f = z ? weft_frame_new(WEFT_KIND_KVPACKL) : NULL;
		int rc = !f || compress2(z, &zn, raw.p, (uLong)raw.n, 9) != Z_OK ? -1 : 0;
		const int64_t shape[1] = {(int64_t)zn};
		char fp[17];
		weft_fingerprint_hex(m->fingerprint, fp);
		if (rc == 0 &&
		    (weft_frame_set(f, WEFT_KEY_MODEL, fp) || weft_frame_setf(f, WEFT_KEY_LAYER, "%d", l) ||
		     weft_frame_setf(f, KEY_RAW_BYTES, "%zu", raw.n) ||
		     weft_frame_setf(f, KEY_RAW_CRC, "%08lx", crc32(0L, raw.p, (uInt)raw.n)) ||
		     !weft_frame_add(f, "z", WEFT_DT_U8, 1, shape, z) || weft_frame_write(out, f)))
			rc = -1;
		else if (rc != 0)
			weft_error("--pack: zlib failed on layer %d", l);
		weft_frame_free(f);
		free(z), free(raw.p);
		if (rc != 0)
			return -1;
	}
	if (!w->logits)
		return 0;
	weft_frame *lf = weft_logits_frame(m, w->logits, kv->n_past);
	const int rc = lf && weft_frame_write(out, lf) == 0 ? 0 : -1;
	weft_frame_free(lf);
	return rc;
}

/* ---- unpacking ---- */

typedef struct rd {
	const uint8_t *p;
	size_t n, at;
	int err;
} rd;

static const uint8_t *take(rd *r, size_t n)
{
	if (r->err || n > r->n - r->at) {
		r->err = 1;
		return NULL;
	}
	r->at += n;
	return r->p + r->at - n;
}

static int32_t get32(rd *r)
{
	const uint8_t *x = take(r, 4);
	return x ? (int32_t)((uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24) : 0;
}

/* One head's matrix [T][d] back to float32 into X. */
static void unpack_matrix(rd *r, int64_t T, int d, float *X)
{
	const int64_t nb = (T + 31) / 32;
	const uint8_t *hdr = take(r, (size_t)nb * (size_t)d * 4), *codes = take(r, (size_t)T * (size_t)d);
	if (!hdr || !codes)
		return;
	for (int64_t b = 0; b < nb; b++) {
		const int n = T - b * 32 < 32 ? (int)(T - b * 32) : 32;
		for (int ch = 0; ch < d; ch++) {
			uint16_t mh, sh;
			memcpy(&mh, hdr + ((size_t)b * d + ch) * 4, 2);
			memcpy(&sh, hdr + ((size_t)b * d + ch) * 4 + 2, 2);
			const float m = weft_fp16_to_fp32(mh), s = weft_fp16_to_fp32(sh);
			uint8_t c = 0;
			for (int i = 0; i < n; i++) {
				c = (uint8_t)(c + codes[i]);
				X[(b * 32 + i) * d + ch] = s * (float)c + m;
			}
			codes += n;
		}
	}
}

int weft_kvpack_read_head(weft_kv_in *in, const weft_frame *f)
{
	const char *b = weft_frame_get(f, KEY_PACK_BITS);
	in->packed = b ? atoi(b) : 0;
	if (in->packed < 2 || in->packed > 8) {
		weft_error("frame %" PRIu64 ": kvpack frame without weft.pack_bits 2..8", f->index);
		return -1;
	}
	return 0;
}

/* The payload of layer l into the cache (rows F16). */
static int unpack_layer(weft_kv_in *in, int l, rd *r, const weft_frame *f)
{
	weft_kv *kv = in->kv;
	const int H = kv->n_head_kv, D = kv->head_dim, kd = get32(r);
	if (r->err || kd < 1 || kd > D) {
		weft_error("frame %" PRIu64 ": packed layer: key width %d of %d", f->index, kd, D);
		return -1;
	}
	if (kd < D) {
		int32_t *chan = weft_malloc(sizeof(int32_t) * (size_t)H * kd);
		for (int i = 0; chan && i < H * kd; i++)
			chan[i] = get32(r);
		const int rc = !chan || r->err || weft_kv_prune_channels(kv, l, kd, chan) != 0 ? -1 : 0;
		free(chan);
		if (rc != 0) {
			weft_error("frame %" PRIu64 ": packed layer: bad key channels", f->index);
			return -1;
		}
	}
	const size_t at = r->at;
	int64_t caps[1024] = {0};
	for (int h = 0; h < H && h < 1024; h++) { /* the lengths first: each head's room */
		const int32_t T = get32(r);
		if (r->err || T < 0 || T > kv->n_past) {
			weft_error("frame %" PRIu64 ": packed layer: head %d holds %d rows", f->index, h, T);
			return -1;
		}
		caps[h] = T + in->extra_cap;
		take(r, (size_t)T * 4);
		take(r, ((size_t)(T + 31) / 32 * (size_t)(kd + D) * 4) + (size_t)T * (size_t)(kd + D));
	}
	if (H > 1024 || r->err || weft_kv_layer_fit(kv, l, caps, 0) != 0) {
		weft_error("frame %" PRIu64 ": packed layer truncated", f->index);
		return -1;
	}
	r->at = at;
	const weft_kv_layer *L = &kv->layer[l];
	for (int h = 0; h < H; h++) {
		const int32_t T = get32(r);
		int32_t *pos = weft_kv_pos(kv, l, h), p = 0;
		for (int32_t j = 0; j < T; j++)
			pos[j] = p += get32(r);
		float *X = weft_malloc(sizeof(float) * (size_t)(T > 0 ? T : 1) * (size_t)D);
		if (!X)
			return -1;
		for (int kvi = 0; kvi < 2; kvi++) {
			const int d = kvi ? D : kd;
			unpack_matrix(r, T, d, X);
			for (int32_t j = 0; !r->err && j < T; j++)
				weft_f32_to_f16(kvi ? weft_kv_vrow(kv, l, h, j) : weft_kv_krow(kv, l, h, j), X + (size_t)j * d, d);
		}
		free(X);
		kv->len[(size_t)l * H + h] = T;
		(void)L;
	}
	if (r->err || r->at != r->n) {
		weft_error("frame %" PRIu64 ": packed layer: payload of the wrong size", f->index);
		return -1;
	}
	return 0;
}

int weft_kvpack_read_layer(weft_kv_in *in, const weft_model *m, const weft_frame *f)
{
	weft_kv *kv = in->kv;
	if (!kv || !in->packed) {
		weft_error("frame %" PRIu64 ": kvpackl frame without a kvpack frame before it", f->index);
		return -1;
	}
	if (weft_frame_check_fp(f, WEFT_KEY_MODEL, m->fingerprint) != 0)
		return -1;
	const char *ls = weft_frame_get(f, WEFT_KEY_LAYER), *rs = weft_frame_get(f, KEY_RAW_BYTES),
		   *cs = weft_frame_get(f, KEY_RAW_CRC);
	const long l = ls ? strtol(ls, NULL, 10) : -1;
	const unsigned long long raw = rs ? strtoull(rs, NULL, 10) : 0;
	const weft_tensor *z = weft_frame_tensor(f, "z");
	if (l != in->next_layer || l >= kv->n_layer || !rs || !cs || !z || z->dtype != WEFT_DT_U8 || z->ndim != 1 ||
	    raw > ((unsigned long long)1 << 40)) {
		weft_error("frame %" PRIu64 ": kvpackl frame for layer %ld, expected layer %d with weft.raw_bytes, "
			   "weft.raw_crc32 and tensor z", f->index, l, in->next_layer);
		return -1;
	}
	uint8_t *p = weft_malloc(raw ? raw : 1);
	uLongf n = (uLongf)raw;
	if (!p)
		return -1;
	if (uncompress(p, &n, z->data, (uLong)z->nelem) != Z_OK || n != raw) {
		weft_error("frame %" PRIu64 ": packed layer %ld does not inflate to its %llu bytes (corrupt?)", f->index, l, raw);
		free(p);
		return -1;
	}
	char want[16];
	snprintf(want, sizeof want, "%08lx", crc32(0L, p, (uInt)n));
	if (strcmp(want, cs) != 0) {
		weft_error("frame %" PRIu64 ": packed layer %ld: payload CRC-32 %s, expected %.16s", f->index, l, want, cs);
		free(p);
		return -1;
	}
	rd r = {p, n, 0, 0};
	const int rc = unpack_layer(in, (int)l, &r, f);
	free(p);
	if (rc == 0)
		in->next_layer++;
	return rc == 0 ? 1 : -1;
}

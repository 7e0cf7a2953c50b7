/* kvm_kivi.c - KIVI (Liu et al. 2024): every layer's rows beyond the
 * newest `residual` (to residual + 31) quantized, keys per channel over
 * blocks of 32 rows, values per row over groups of 32 channels, with
 * kbits / vbits bits (bits sets both): kv.h's KIVI layers, attended over
 * directly by decode (kernels.h "KIVI-quantized KV rows"), which
 * quantizes further rows as the cache grows.  kivi2, kivi4 and kivi8 are
 * short for kivi:bits=N. */
#include "kvm_int.h"
#include "util.h"

int weft_kvm_run_kivi(kvm_run *r)
{
	double bits, kb, vb, res;
	if (kvm_par(r, "bits", 4, 2, 8, &bits) != 0 || kvm_par(r, "kbits", bits, 2, 8, &kb) != 0 ||
	    kvm_par(r, "vbits", bits, 2, 8, &vb) != 0 || kvm_par(r, "residual", 128, 0, 1 << 30, &res) != 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		const double b = i == 0 ? bits : i == 1 ? kb : vb;
		if (b != 2 && b != 4 && b != 8) {
			weft_error("kivi: %g bits: 2, 4 or 8", b);
			return -1;
		}
	}
	if (r->check_only)
		return 0;
	for (int l = 0; l < r->kv->n_layer; l++) {
		if (r->kv->layer[l].type != WEFT_KV_F16) {
			weft_error("kivi: the cache holds %s rows; KIVI quantizes an f16 cache (prefill --kv-type f16)",
				   weft_kv_type_name(r->kv->layer[l].type));
			return -1;
		}
		if (weft_kv_quantize(r->kv, l, (int)kb, (int)vb, (int)res) != 0)
			return -1;
	}
	return 0;
}

/* model_cuda_int.h - the LLM forward pass on a CUDA device (model_cuda.c),
 * built only by `make CUDA=1` (WEFT_CUDA=1).  Internal: hidden from
 * libweft.so; no CUDA type crosses it.
 *
 * COMPILED, NOT RUN ON A GPU: written and compile-checked on machines
 * without an NVIDIA GPU; tests/gpu/test_cuda_forward.c (run by
 * tests/gpu/run) checks it against the CPU path on a GPU machine.
 *
 * One cache at a time is "attached": its keys and values live on the
 * device (same per-head row layout as the host cache, lib/kv.h) while the
 * host weft_kv keeps the bookkeeping (len, positions, n_past) current.
 * While attached, weft_model_forward on that cache runs on the device
 * (model_llama.c dispatches after its argument checks) and the host rows
 * are stale until weft_model_cuda_download.  Host code must not resize,
 * compact or compress an attached cache. */
#ifndef WEFT_MODEL_CUDA_INT_H
#define WEFT_MODEL_CUDA_INT_H

#include <stdint.h>

#include "kv.h"
#include "model.h"

#pragma GCC visibility push(hidden)

#if WEFT_CUDA
/* Select CUDA device dev, upload m's weights (once: the weight cache) and
 * kv's rows, and attach kv.  -1 + one error line for what the device path
 * does not support: KV types other than f16/f32, KIVI/GEAR, MiniCache or
 * channel-pruned (ThinK) layers, head size > 256, a weight type without a
 * CUDA kernel; or a cache already attached. */
int weft_model_cuda_attach(const weft_model *m, weft_kv *kv, int dev);
/* Whether kv is the attached cache. */
int weft_model_cuda_attached(const weft_kv *kv);
/* Copy the attached cache's rows in use back into the host cache (before
 * writing a KV stream).  0 / -1. */
int weft_model_cuda_download(weft_kv *kv);
/* Forget the attached cache (its device rows are freed; the weights stay
 * cached).  The host rows are whatever the last download left. */
void weft_model_cuda_detach(void);
/* weft_model_forward on the device, for the attached kv (the caller
 * checked the arguments: model_llama.c's check_call).  Refuses, in one
 * error line, attention mass, query windows, query statistics and
 * in-LLM token drops. */
int weft_model_forward_cuda(const weft_model *m, weft_kv *kv, const int32_t *ids, const float *embd, int64_t T,
			    int64_t chunk, float *logits, int all_logits, const weft_fwd_extra *extra);
#endif

#pragma GCC visibility pop

#endif

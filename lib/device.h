/* device.h - where the LLM's forward passes run: the CPU (always), or a
 * CUDA device in a libweft built with `make CUDA=1` (lib/model_cuda.c:
 * compiled and checked against a CPU emulation, not yet run on a GPU).
 * In a build without CUDA the calls fail saying so. */
#ifndef WEFT_DEVICE_H
#define WEFT_DEVICE_H

#include <stddef.h>

#include "kv.h"
#include "model.h"

/* CUDA devices usable here: their number, or 0 with why[] saying why
 * there is none ("no usable CUDA device (...)", or "this weft was built
 * without CUDA (build it with make CUDA=1)"). */
int weft_device_count(char *why, size_t why_len);
/* The name of the CUDA device in use ("" when none or unknown). */
const char *weft_device_name(void);
/* Run m's forward passes on CUDA device dev, kv's cache held there (the
 * weights uploaded once); weft_model_forward then runs on the device.
 * 0 / -1 + error. */
int weft_device_attach(const weft_model *m, weft_kv *kv, int dev);
/* Copy the device's cache back into kv (before kv is read or written
 * out).  0 / -1 + error. */
int weft_device_download(weft_kv *kv);
/* Back to the CPU; the device's copies freed. */
void weft_device_detach(void);

#endif

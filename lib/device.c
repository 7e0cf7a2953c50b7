/* device.c - the public face of the CUDA path (device.h): the internal
 * calls of kernels/cuda and lib/model_cuda.c in a CUDA build, a clear
 * refusal otherwise, so the tools need no #if. */
#include <stdio.h>

#include "device.h"
#include "util.h"
#if WEFT_CUDA
#include "cuda/cuda_int.h"
#include "model_cuda_int.h"
#else
#define NO_CUDA "this weft was built without CUDA (build it with make CUDA=1)"
#endif

int weft_device_count(char *why, size_t why_len)
{
#if WEFT_CUDA
	char w[256];
	const int n = weft_cuda_device_count(w, sizeof w);
	if (n == 0 && why_len)
		snprintf(why, why_len, "no usable CUDA device (%s)", w);
	return n;
#else
	if (why_len)
		snprintf(why, why_len, NO_CUDA);
	return 0;
#endif
}

const char *weft_device_name(void)
{
#if WEFT_CUDA
	const char *s = weft_cuda_device_name();
	return s ? s : "";
#else
	return "";
#endif
}

int weft_device_attach(const weft_model *m, weft_kv *kv, int dev)
{
#if WEFT_CUDA
	return weft_model_cuda_attach(m, kv, dev);
#else
	(void)m, (void)kv, (void)dev;
	weft_error(NO_CUDA);
	return -1;
#endif
}

int weft_device_download(weft_kv *kv)
{
#if WEFT_CUDA
	return weft_model_cuda_download(kv);
#else
	(void)kv;
	weft_error(NO_CUDA);
	return -1;
#endif
}

void weft_device_detach(void)
{
#if WEFT_CUDA
	weft_model_cuda_detach();
#endif
}

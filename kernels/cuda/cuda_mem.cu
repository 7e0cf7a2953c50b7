/* cuda_mem.cu - the CUDA backend's device, stream, memory and weight
 * cache (kernels/cuda/cuda_int.h).  UNTESTED ON A GPU (see cuda_int.h). */
#include "cuda_common.cuh"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cudaStream_t stream;
static int stream_made;
static char dev_name[256];
static size_t dev_mem;

int weft_cuda_err(cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		return 0;
	weft_error("cuda: %s: %s", what, cudaGetErrorString(e));
	return -1;
}

cudaStream_t weft_cuda_stream(void)
{
	if (!stream_made && cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess)
		stream_made = 1;
	return stream_made ? stream : 0;
}

int weft_cuda_device_count(char *why, size_t why_len)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess || n <= 0) {
		/* cudart says "driver version is insufficient" when there is no
		 * driver at all: name that case */
		void *drv = e == cudaErrorInsufficientDriver ? dlopen("libcuda.so.1", RTLD_LAZY) : (void *)1;
		if (why && why_len)
			snprintf(why, why_len, "%s", !drv ? "no NVIDIA driver: libcuda.so.1 not found"
						     : e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device");
		if (drv && drv != (void *)1)
			dlclose(drv);
		cudaGetLastError(); /* clear it */
		return 0;
	}
	return n;
}

int weft_cuda_init(int dev)
{
	char why[200];
	int n = weft_cuda_device_count(why, sizeof why);
	if (n == 0) {
		weft_error("cuda: no usable device (%s)", why);
		return -1;
	}
	if (dev < 0 || dev >= n) {
		weft_error("cuda: no device %d (%d present)", dev, n);
		return -1;
	}
	if (weft_cuda_err(cudaSetDevice(dev), "cudaSetDevice"))
		return -1;
	cudaDeviceProp p;
	if (weft_cuda_err(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties"))
		return -1;
	snprintf(dev_name, sizeof dev_name, "%.200s (sm_%d%d)", p.name, p.major, p.minor);
	dev_mem = p.totalGlobalMem;
	return weft_cuda_stream() ? 0 : weft_cuda_err(cudaGetLastError(), "cudaStreamCreate");
}

const char *weft_cuda_device_name(void) { return dev_name; }
size_t weft_cuda_device_memory(void) { return dev_mem; }

void *weft_cuda_alloc(size_t bytes)
{
	void *d = NULL;
	if (weft_cuda_err(cudaMalloc(&d, bytes ? bytes : 1), "cudaMalloc"))
		return NULL;
	return d;
}

void weft_cuda_free(void *d)
{
	if (d)
		cudaFree(d);
}

int weft_cuda_upload(void *d, const void *host, size_t bytes)
{
	cudaStream_t s = weft_cuda_stream();
	if (weft_cuda_err(cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, s), "upload"))
		return -1;
	/* the host buffer may be freed or reused when we return */
	return weft_cuda_err(cudaStreamSynchronize(s), "upload");
}

int weft_cuda_download(void *host, const void *d, size_t bytes)
{
	cudaStream_t s = weft_cuda_stream();
	if (weft_cuda_err(cudaMemcpyAsync(host, d, bytes, cudaMemcpyDeviceToHost, s), "download"))
		return -1;
	return weft_cuda_err(cudaStreamSynchronize(s), "download");
}

int weft_cuda_memset0(void *d, size_t bytes)
{
	return weft_cuda_err(cudaMemsetAsync(d, 0, bytes, weft_cuda_stream()), "memset");
}

int weft_cuda_copy(void *d_dst, const void *d_src, size_t bytes)
{
	return weft_cuda_err(cudaMemcpyAsync(d_dst, d_src, bytes, cudaMemcpyDeviceToDevice, weft_cuda_stream()),
			     "copy");
}

int weft_cuda_sync(void)
{
	return weft_cuda_err(cudaStreamSynchronize(weft_cuda_stream()), "sync");
}

/* ---- scratch ---- */

static void *scratch[4];
static size_t scratch_cap[4];

void *weft_cuda_scratch(int slot, size_t bytes)
{
	if (bytes <= scratch_cap[slot])
		return scratch[slot];
	/* kernels still queued may read the old buffer */
	if (scratch[slot] && weft_cuda_sync())
		return NULL;
	cudaFree(scratch[slot]);
	scratch[slot] = NULL;
	scratch_cap[slot] = 0;
	size_t cap = bytes < 1u << 20 ? 1u << 20 : bytes + bytes / 4;
	void *d = weft_cuda_alloc(cap);
	if (!d)
		return NULL;
	scratch[slot] = d;
	scratch_cap[slot] = cap;
	return d;
}

/* ---- the weight cache: host pointer -> device copy (open addressing) ---- */

typedef struct wentry {
	const void *host;
	void *dev;
	size_t bytes;
} wentry;
static wentry *wtab;
static size_t wcap, wcount, wbytes;

static size_t whash(const void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull); }

static int wgrow(void)
{
	size_t ncap = wcap ? 2 * wcap : 256;
	wentry *n = (wentry *)weft_calloc(ncap, sizeof *n);
	if (!n)
		return -1;
	for (size_t i = 0; i < wcap; i++)
		if (wtab[i].host) {
			size_t j = whash(wtab[i].host) & (ncap - 1);
			while (n[j].host)
				j = (j + 1) & (ncap - 1);
			n[j] = wtab[i];
		}
	free(wtab);
	wtab = n;
	wcap = ncap;
	return 0;
}

const void *weft_cuda_weight(const void *host, size_t bytes)
{
	if (2 * (wcount + 1) > wcap && wgrow())
		return NULL;
	size_t j = whash(host) & (wcap - 1);
	for (; wtab[j].host; j = (j + 1) & (wcap - 1))
		if (wtab[j].host == host) {
			if (wtab[j].bytes != bytes) {
				weft_error("cuda: weight at %p uploaded with %zu bytes, asked for %zu", host, wtab[j].bytes,
					   bytes);
				return NULL;
			}
			return wtab[j].dev;
		}
	void *d = weft_cuda_alloc(bytes);
	if (!d)
		return NULL;
	if (weft_cuda_upload(d, host, bytes)) {
		cudaFree(d);
		return NULL;
	}
	wtab[j].host = host;
	wtab[j].dev = d;
	wtab[j].bytes = bytes;
	wcount++;
	wbytes += bytes;
	return d;
}

void weft_cuda_weights_free(void)
{
	for (size_t i = 0; i < wcap; i++)
		if (wtab[i].host)
			cudaFree(wtab[i].dev);
	free(wtab);
	wtab = NULL;
	wcap = wcount = wbytes = 0;
}

size_t weft_cuda_weights_bytes(void) { return wbytes; }

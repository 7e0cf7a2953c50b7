/* dispatch.c - pick the kernel level once from CPUID (and the OS's saved
 * register state), or from WEFT_KERNELS=scalar|avx2|avx512|llama.cpp /
 * weft_kernels_force ("llama.cpp": llamacpp_avx512.c's reproduction of
 * llama.cpp's arithmetic, on CPUs with the AVX-512 level).  SIMD kernels are only called after this check;
 * this file is compiled without SIMD flags. */
#include "ggml_types.h"
#include "kernels.h"
#include "matmul_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

enum { LVL_SCALAR, LVL_AVX2, LVL_AVX512, LVL_LLAMACPP, N_LVL };

static int cpu_max = -1, cpu_bf16;
static weft_kern tables[N_LVL];
static char names[N_LVL][32];
static _Atomic(const weft_kern *) current;

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xgetbv0(void)
{
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (unsigned long long)hi << 32 | lo;
}
#endif

/* Highest level this CPU and OS support (0 scalar, 1 avx2, 2 avx512). */
static void detect(void)
{
	cpu_max = LVL_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	int osxsave = c >> 27 & 1, fma = c >> 12 & 1, f16c = c >> 29 & 1, avx = c >> 28 & 1;
	if (!osxsave || !avx)
		return;
	unsigned long long xcr0 = xgetbv0();
	if ((xcr0 & 6) != 6) /* SSE and AVX state */
		return;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return;
	int avx2 = b >> 5 & 1, f = b >> 16 & 1, dq = b >> 17 & 1, bw = b >> 30 & 1, vl = b >> 31 & 1;
	int vnni = c >> 11 & 1;
	if (avx2 && fma && f16c)
		cpu_max = LVL_AVX2;
	if (cpu_max == LVL_AVX2 && f && dq && bw && vl && vnni && (xcr0 & 0xe0) == 0xe0)
		cpu_max = LVL_AVX512;
	unsigned a1, b1, c1, d1;
	if (cpu_max == LVL_AVX512 && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1))
		cpu_bf16 = a1 >> 5 & 1;
#endif
}

/* Build the tables: each level starts as a copy of the one below and
 * overrides the kernels it has. */
static void build(void)
{
	tables[LVL_SCALAR] = weft_kern_ref;
	tables[LVL_AVX2] = weft_kern_ref;
	tables[LVL_AVX512] = weft_kern_ref;
#if defined(__x86_64__)
	if (cpu_max >= LVL_AVX2) {
		weft_kern_avx2_init(&tables[LVL_AVX2]);
		weft_gemm_avx2_init(&tables[LVL_AVX2]);
		tables[LVL_AVX512] = tables[LVL_AVX2];
	}
	if (cpu_max >= LVL_AVX512) {
		weft_kern_avx512_init(&tables[LVL_AVX512], cpu_bf16);
		weft_gemm_avx512_init(&tables[LVL_AVX512], cpu_bf16);
		/* a gemm entry must match its level's dot entry: keep an AVX2
		 * gemm only where the row kernel is still the AVX2 one */
		for (int i = 0; i < 32; i++)
			if (tables[LVL_AVX512].gemm[i] == tables[LVL_AVX2].gemm[i] &&
			    tables[LVL_AVX512].dot[i] != tables[LVL_AVX2].dot[i])
				tables[LVL_AVX512].gemm[i] = NULL;
		/* llama.cpp's arithmetic as its AVX-512 build does it */
		tables[LVL_LLAMACPP] = tables[LVL_AVX512];
		weft_kern_llamacpp_init(&tables[LVL_LLAMACPP]);
	}
#endif
	strcpy(names[LVL_SCALAR], "scalar");
	strcpy(names[LVL_AVX2], "avx2");
	strcpy(names[LVL_AVX512], cpu_bf16 ? "avx512+vnni+bf16" : "avx512+vnni");
	strcpy(names[LVL_LLAMACPP], "llama.cpp");
	for (int i = 0; i < N_LVL; i++)
		tables[i].name = names[i];
}

static int level_of(const char *s)
{
	if (!strcmp(s, "scalar"))
		return LVL_SCALAR;
	if (!strcmp(s, "avx2"))
		return LVL_AVX2;
	if (!strcmp(s, "avx512"))
		return LVL_AVX512;
	if (!strcmp(s, "llama.cpp"))
		return LVL_LLAMACPP;
	return -1;
}

/* A level this CPU can run: llama.cpp's is emulated on the AVX-512 level. */
static int usable(int want)
{
	return want >= 0 && (want <= cpu_max || (want == LVL_LLAMACPP && cpu_max == LVL_AVX512));
}

static void init_once(void)
{
	detect();
	build();
	int lvl = cpu_max;
	const char *env = getenv("WEFT_KERNELS");
	if (env && *env) {
		int want = level_of(env);
		if (usable(want))
			lvl = want;
	}
	atomic_store(&current, &tables[lvl]);
}

#include <pthread.h>
static pthread_once_t once = PTHREAD_ONCE_INIT;

const weft_kern *weft_kern_get(void)
{
	const weft_kern *k = atomic_load_explicit(&current, memory_order_acquire);
	if (k)
		return k;
	pthread_once(&once, init_once);
	return atomic_load(&current);
}

const char *weft_kernels_level(void) { return weft_kern_get()->name; }

int weft_kernels_force(const char *level)
{
	weft_kern_get();
	int want = level ? level_of(level) : cpu_max;
	if (!usable(want))
		return -1;
	atomic_store(&current, &tables[want]);
	return 0;
}

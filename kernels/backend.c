/* backend.c - the CPU probe and the backend table (see backend.h).
 *
 * The probe reads CPUID and the OS's saved register state (XGETBV) once;
 * the tables are built from it once; WEFT_KERNELS=scalar|avx2|avx512|
 * llama.cpp picks a level at start-up (an unknown name or a level this CPU
 * lacks is ignored: the best level runs), weft_kernels_force() later.
 * SIMD kernels are only ever called through a table this probe allowed;
 * this file is compiled without SIMD flags. */
#include "backend.h"
#include "kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static const char *const level_names[WEFT_LEVEL_N] = {"scalar", "avx2", "avx512", "llama.cpp"};

static struct {
	weft_level max; /* best CPU level (scalar, avx2 or avx512) */
	int bf16;       /* AVX512_BF16 */
} cpu;

static weft_backend table[WEFT_LEVEL_N];
static int usable[WEFT_LEVEL_N];
static _Atomic(const weft_backend *) current;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xgetbv0(void)
{
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (unsigned long long)hi << 32 | lo;
}
#endif

static void probe(void)
{
	cpu.max = WEFT_LEVEL_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	const int osxsave = c >> 27 & 1, fma = c >> 12 & 1, f16c = c >> 29 & 1, avx = c >> 28 & 1;
	if (!osxsave || !avx)
		return;
	const unsigned long long xcr0 = xgetbv0();
	if ((xcr0 & 6) != 6 || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) /* SSE and AVX state */
		return;
	const int avx2 = b >> 5 & 1, f = b >> 16 & 1, dq = b >> 17 & 1, bw = b >> 30 & 1, vl = b >> 31 & 1;
	const int vnni = c >> 11 & 1;
	if (avx2 && fma && f16c)
		cpu.max = WEFT_LEVEL_AVX2;
	/* the AVX-512 kernels use VNNI throughout, and the opmask/ZMM state */
	if (cpu.max == WEFT_LEVEL_AVX2 && f && dq && bw && vl && vnni && (xcr0 & 0xe0) == 0xe0)
		cpu.max = WEFT_LEVEL_AVX512;
	unsigned a1, b1, c1, d1;
	if (cpu.max == WEFT_LEVEL_AVX512 && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1))
		cpu.bf16 = a1 >> 5 & 1;
#endif
}

/* Each level a copy of the one below with its own kernels over it. */
static void build(void)
{
	weft_backend *s = &table[WEFT_LEVEL_SCALAR];
	s->mm = weft_kern_ref;
	s->ops = weft_ops_scalar_vt;
	usable[WEFT_LEVEL_SCALAR] = 1;
#if defined(__x86_64__)
	if (cpu.max >= WEFT_LEVEL_AVX2) {
		weft_backend *b2 = &table[WEFT_LEVEL_AVX2];
		*b2 = *s;
		weft_kern_avx2_init(&b2->mm);
		weft_gemm_avx2_init(&b2->mm);
		b2->ops = weft_ops_avx2_vt;
		usable[WEFT_LEVEL_AVX2] = 1;
	}
	if (cpu.max >= WEFT_LEVEL_AVX512) {
		weft_backend *b5 = &table[WEFT_LEVEL_AVX512], *b2 = &table[WEFT_LEVEL_AVX2];
		*b5 = *b2;
		weft_kern_avx512_init(&b5->mm, cpu.bf16);
		weft_gemm_avx512_init(&b5->mm, cpu.bf16);
		/* a gemm entry must match its level's dot entry: keep an AVX2
		 * gemm only where the row kernel is still the AVX2 one */
		for (int i = 0; i < 32; i++)
			if (b5->mm.gemm[i] == b2->mm.gemm[i] && b5->mm.dot[i] != b2->mm.dot[i])
				b5->mm.gemm[i] = NULL;
		b5->ops = weft_ops_avx512_vt;
		usable[WEFT_LEVEL_AVX512] = 1;

		weft_backend *lc = &table[WEFT_LEVEL_LLAMACPP];
		*lc = *b5;
		weft_kern_llamacpp_init(&lc->mm);
		weft_ops_llamacpp_init(&lc->ops);
		lc->ops.name = level_names[WEFT_LEVEL_LLAMACPP];
		usable[WEFT_LEVEL_LLAMACPP] = 1;
	}
#endif
	for (int i = 0; i < WEFT_LEVEL_N; i++) {
		table[i].level = (weft_level)i;
		table[i].name = level_names[i];
	}
	if (cpu.bf16)
		table[WEFT_LEVEL_AVX512].name = "avx512+vnni+bf16";
	else if (usable[WEFT_LEVEL_AVX512])
		table[WEFT_LEVEL_AVX512].name = "avx512+vnni";
}

static void init(void)
{
	probe();
	build();
	int lvl = (int)cpu.max;
	const char *env = getenv("WEFT_KERNELS");
	if (env && *env) {
		int want = weft_level_parse(env);
		if (want >= 0 && usable[want])
			lvl = want;
	}
	atomic_store(&current, &table[lvl]);
}

const weft_backend *weft_backend_get(void)
{
	const weft_backend *b = atomic_load_explicit(&current, memory_order_acquire);
	if (b)
		return b;
	pthread_once(&once, init);
	return atomic_load(&current);
}

const weft_backend *weft_backend_at(weft_level level)
{
	pthread_once(&once, init);
	return level >= 0 && level < WEFT_LEVEL_N && usable[level] ? &table[level] : NULL;
}

int weft_backend_select(weft_level level)
{
	const weft_backend *b = weft_backend_at(level);
	if (!b)
		return -1;
	atomic_store(&current, b);
	return 0;
}

int weft_level_parse(const char *name)
{
	for (int i = 0; i < WEFT_LEVEL_N; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

/* ---- the public API (kernels.h) ---- */

const char *weft_kernels_level(void)
{
	return weft_backend_get()->name;
}

int weft_kernels_force(const char *level)
{
	pthread_once(&once, init);
	int want = level ? weft_level_parse(level) : (int)cpu.max;
	return want < 0 ? -1 : weft_backend_select((weft_level)want);
}

/* pool.c - a persistent pthread pool for the kernels.
 *
 * weft_pool_run publishes a job by bumping a generation counter; workers
 * spin on it briefly (decode issues a few hundred small jobs per token, so
 * waking through the kernel each time would dominate), then sleep on a
 * futex.  Tasks are claimed with a compare-and-swap on a (generation,
 * index) word; the caller works too, then waits until every task is done
 * (not for every worker: a preempted worker costs nothing).  Which thread
 * runs a task never changes its result: callers split work so that each
 * output is computed by one task. */
#include "kernels.h"
#include "util.h"

#include <limits.h>
#include <stdint.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPIN_WORKER 20000 /* pause-loops before a worker sleeps */
#define SPIN_YIELD 2000   /* pause-loops before the caller starts yielding */

struct weft_pool {
	int n; /* threads, caller included */
	pthread_t *th;
	atomic_int gen, sleepers, stop;
	/* (generation << 32) | next task index: a worker claims a task with a
	 * compare-and-swap that fails once the job it saw is over, so a worker
	 * that wakes late never touches a newer job's tasks by mistake */
	_Atomic uint64_t claim;
	atomic_int completed;
	int n_tasks;
	void (*fn)(void *ctx, int task, int n_tasks);
	void *ctx;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void futex_wait(atomic_int *a, int val)
{
	syscall(SYS_futex, (int *)a, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(atomic_int *a) { syscall(SYS_futex, (int *)a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0); }

/* Run tasks of job generation g until none are left to claim. */
static void run_tasks(weft_pool *p, uint32_t g)
{
	void (*fn)(void *, int, int) = p->fn;
	void *ctx = p->ctx;
	int n_tasks = p->n_tasks;
	uint64_t v = atomic_load_explicit(&p->claim, memory_order_acquire);
	for (;;) {
		if ((uint32_t)(v >> 32) != g || (int)(uint32_t)v >= n_tasks)
			return;
		if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, v + 1, memory_order_acq_rel,
							   memory_order_acquire))
			continue; /* v reloaded */
		fn(ctx, (int)(uint32_t)v, n_tasks);
		atomic_fetch_add_explicit(&p->completed, 1, memory_order_release);
		v = atomic_load_explicit(&p->claim, memory_order_acquire);
	}
}

static void *worker(void *arg)
{
	weft_pool *p = arg;
	int seen = 0;
	for (;;) {
		int g, spins = SPIN_WORKER;
		while ((g = atomic_load(&p->gen)) == seen) {
			if (spins > 0) {
				spins--;
				cpu_relax();
				continue;
			}
			atomic_fetch_add(&p->sleepers, 1);
			futex_wait(&p->gen, seen);
			atomic_fetch_sub(&p->sleepers, 1);
		}
		seen = g;
		if (atomic_load(&p->stop))
			return NULL;
		run_tasks(p, (uint32_t)g);
	}
}

static int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

weft_pool *weft_pool_new(int n_threads)
{
	if (n_threads <= 0)
		n_threads = online_cpus();
	weft_pool *p = weft_calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = n_threads;
	if (n_threads > 1) {
		p->th = weft_calloc((size_t)n_threads - 1, sizeof *p->th);
		if (!p->th) {
			weft_pool_free(p);
			return NULL;
		}
	}
	for (int i = 0; i < n_threads - 1; i++) {
		if (pthread_create(&p->th[i], NULL, worker, p) != 0) {
			p->n = i + 1; /* the workers started so far */
			weft_pool_free(p);
			weft_error("cannot start thread %d of %d", i + 2, n_threads);
			return NULL;
		}
	}
	return p;
}

void weft_pool_free(weft_pool *p)
{
	if (!p)
		return;
	if (p->th) {
		atomic_store(&p->stop, 1);
		atomic_fetch_add(&p->gen, 1);
		futex_wake_all(&p->gen);
		for (int i = 0; i < p->n - 1; i++)
			pthread_join(p->th[i], NULL);
		free(p->th);
	}
	free(p);
}

int weft_pool_size(const weft_pool *p) { return p ? p->n : 1; }

void weft_pool_run(weft_pool *p, int n_tasks, void (*fn)(void *ctx, int task, int n_tasks), void *ctx)
{
	if (n_tasks <= 0)
		return;
	if (!p || p->n == 1 || n_tasks == 1) {
		for (int t = 0; t < n_tasks; t++)
			fn(ctx, t, n_tasks);
		return;
	}
	/* Publish the job, then its generation.  The caller works too and
	 * waits only for the tasks, never for a worker that is asleep or
	 * preempted: on a busy machine the job simply runs on fewer threads. */
	uint32_t g = (uint32_t)atomic_load(&p->gen) + 1;
	p->fn = fn;
	p->ctx = ctx;
	p->n_tasks = n_tasks;
	atomic_store_explicit(&p->completed, 0, memory_order_relaxed);
	atomic_store_explicit(&p->claim, (uint64_t)g << 32, memory_order_release);
	atomic_store(&p->gen, (int)g); /* seq_cst: publishes the job above */
	if (atomic_load(&p->sleepers))
		futex_wake_all(&p->gen);
	run_tasks(p, g);
	int spins = 0;
	while (atomic_load_explicit(&p->completed, memory_order_acquire) < n_tasks) {
		if (++spins < SPIN_YIELD)
			cpu_relax();
		else
			sched_yield();
	}
}

/* bench_walltime.c - a command's wall time, without the shell's help.
 *
 *   bench_walltime OUT COMMAND [ARG]...
 *
 * Runs COMMAND (PATH searched) and writes its wall time in seconds, from
 * just before fork to just after waitpid, to the file OUT; exits with the
 * command's status.  The benchmarks used `date +%s.%N` before and after,
 * which counts a date process's exit and the next one's start as the
 * command's: about 0.5 % of a 280 ms run here. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_walltime OUT COMMAND [ARG]...\n");
		return 2;
	}
	const double t0 = now();
	const pid_t pid = fork();
	if (pid < 0) {
		perror("bench_walltime: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	const double dt = now() - t0;
	FILE *f = fopen(argv[1], "w");
	if (!f || fprintf(f, "%.6f\n", dt) < 0 || fclose(f) != 0) {
		perror(argv[1]);
		return 2;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

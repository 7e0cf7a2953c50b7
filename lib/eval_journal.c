/* eval_journal.c - the run file as it is written: one write(2) per
 * record, synced to disk by a helper thread (eval_report.h) at most once
 * per SYNC_INTERVAL: a group commit, since one fdatasync costs about as
 * much as a whole item of the tiny models (5 ms on ext4 here), and a sync
 * per record slowed a 1000-item run from 1.9 s to 3.8 s. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval_report.h"
#include "util.h"

#define SYNC_INTERVAL_NS 1000000000L /* 1 s */

struct weft_eval_journal {
	int fd;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t written, synced;      /* records */
	int stop, sync_err, final_err;
};

/* Every SYNC_INTERVAL, sync what was written since the last sync.  Writers
 * do not wake it (a wake-up per record cost the run a context switch each,
 * several ms on a busy machine); finish() does, and it syncs the rest
 * while the run computes its summary. */
static void *syncer(void *arg)
{
	weft_eval_journal *j = arg;
	pthread_mutex_lock(&j->mu);
	while (!j->stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += SYNC_INTERVAL_NS % 1000000000L;
		until.tv_sec += SYNC_INTERVAL_NS / 1000000000L + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!j->stop && pthread_cond_timedwait(&j->cv, &j->mu, &until) == 0)
			;
		if (j->stop || j->written == j->synced)
			continue;
		const uint64_t upto = j->written;
		pthread_mutex_unlock(&j->mu);
		const int rc = fdatasync(j->fd);
		pthread_mutex_lock(&j->mu);
		if (rc != 0 && !j->sync_err)
			j->sync_err = errno;
		j->synced = upto;
	}
	pthread_mutex_unlock(&j->mu);
	if (fdatasync(j->fd) != 0) /* the rest (the header, with no records) */
		j->final_err = errno;
	return NULL;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		const ssize_t k = write(fd, s, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			weft_error("%s", k < 0 ? strerror(errno) : "write returned 0");
			return -1;
		}
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

weft_eval_journal *weft_eval_journal_open(const char *path, const char *header, int64_t resume_at)
{
	weft_eval_journal *j = weft_calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->fd = open(path, resume_at >= 0 ? O_WRONLY | O_APPEND : O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0666);
	if (j->fd < 0) {
		weft_error("%s", strerror(errno));
		free(j);
		return NULL;
	}
	if ((resume_at >= 0 && ftruncate(j->fd, resume_at) != 0) ||
	    (resume_at < 0 && write_all(j->fd, header, strlen(header)) != 0)) {
		if (resume_at >= 0)
			weft_error("%s", strerror(errno));
		close(j->fd);
		free(j);
		return NULL;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&j->th, NULL, syncer, j) != 0) {
		weft_error("cannot start the sync thread");
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
		close(j->fd);
		free(j);
		return NULL;
	}
	return j;
}

int weft_eval_journal_write(weft_eval_journal *j, const char *line)
{
	if (write_all(j->fd, line, strlen(line)) != 0)
		return -1;
	pthread_mutex_lock(&j->mu);
	j->written++;
	const int err = j->sync_err;
	pthread_mutex_unlock(&j->mu);
	if (err) {
		weft_error("fdatasync: %s", strerror(err));
		return -1;
	}
	return 0;
}

void weft_eval_journal_finish(weft_eval_journal *j)
{
	pthread_mutex_lock(&j->mu);
	j->stop = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

int weft_eval_journal_close(weft_eval_journal *j)
{
	weft_eval_journal_finish(j);
	pthread_join(j->th, NULL);
	int rc = 0;
	if (!j->sync_err)
		j->sync_err = j->final_err;
	if (j->sync_err) {
		weft_error("fdatasync: %s", strerror(j->sync_err));
		rc = -1;
	}
	if (close(j->fd) != 0 && !rc) {
		weft_error("%s", strerror(errno));
		rc = -1;
	}
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
	return rc;
}

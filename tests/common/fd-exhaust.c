// SPDX-License-Identifier: MIT
/* Out of file descriptors on purpose, with stderr kept in a log file. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd-exhaust.h"

static int highest_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int hi = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (atoi(de->d_name) > hi)
			hi = atoi(de->d_name);
	closedir(d);
	return hi;
}

static void give_back(struct tu_fd_exhaust *x)
{
	while (x->nfill)
		close(x->fill[--x->nfill]);
	setrlimit(RLIMIT_NOFILE, &x->old);
	fflush(stderr);
	dup2(x->saved_err, 2);
	close(x->saved_err);
	x->saved_err = -1;
}

void tu_fd_exhaust_begin(struct tu_fd_exhaust *x)
{
	struct rlimit lim;
	int e;

	strcpy(x->logpath, "/tmp/nvemu-test-fdx-log-XXXXXX");
	x->nfill = 0;
	x->logfd = mkstemp(x->logpath);
	assert_true(x->logfd >= 0);
	x->saved_err = dup(2);
	assert_true(x->saved_err >= 0);
	fflush(stderr);
	dup2(x->logfd, 2);

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &x->old), 0);
	/* A low limit keeps the filling short. */
	lim = x->old;
	lim.rlim_cur = highest_fd() + 8;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	while (x->nfill < TU_FD_EXHAUST_MAX && (x->fill[x->nfill] = dup(x->logfd)) >= 0)
		x->nfill++;
	e = errno;
	if (x->nfill == TU_FD_EXHAUST_MAX || e != EMFILE) {
		int n = x->nfill;

		give_back(x);
		fail_msg("cannot run out of fds: %d filled, %s", n, strerror(e));
	}
}

void tu_fd_exhaust_end(struct tu_fd_exhaust *x)
{
	give_back(x);
}

unsigned tu_fd_exhaust_log_lines(const struct tu_fd_exhaust *x, const char *needle)
{
	FILE *f = fopen(x->logpath, "r");
	char line[512];
	unsigned n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

void tu_fd_exhaust_free(struct tu_fd_exhaust *x)
{
	close(x->logfd);
	unlink(x->logpath);
}

double tu_cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

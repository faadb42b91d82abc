/* SPDX-License-Identifier: MIT */
/*
 * Running the test process out of file descriptors, for the accept loops
 * that must rest rather than spin when accept() fails with EMFILE: stderr
 * goes to a log file the test reads afterwards, the descriptor limit is
 * lowered and what is left of it is filled.
 */
#ifndef NVEMU_TEST_FD_EXHAUST_H
#define NVEMU_TEST_FD_EXHAUST_H

#include <sys/resource.h>

#define TU_FD_EXHAUST_MAX 4096

struct tu_fd_exhaust {
	char logpath[40];
	int logfd;     /* stderr while exhausted */
	int saved_err; /* the real stderr */
	struct rlimit old;
	int nfill;
	int fill[TU_FD_EXHAUST_MAX];
};

/* stderr to a new log file, then no descriptor left: the next accept() gets EMFILE. */
void tu_fd_exhaust_begin(struct tu_fd_exhaust *x);
/* Descriptors, the limit and stderr back. */
void tu_fd_exhaust_end(struct tu_fd_exhaust *x);
/* Lines of the log containing needle (after tu_fd_exhaust_end()). */
unsigned tu_fd_exhaust_log_lines(const struct tu_fd_exhaust *x, const char *needle);
/* Closes and removes the log. */
void tu_fd_exhaust_free(struct tu_fd_exhaust *x);

/* User plus system CPU time of the process so far. */
double tu_cpu_seconds(void);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The back-off of an accept loop. Out of descriptors or memory, accept()
 * fails while the pending connection stays queued and the listener
 * readable, so polling it again at once would spin. The loop stops polling
 * the listener for NVEMU_ACCEPT_BACKOFF_MS, then tries again, and logs one
 * line per NVEMU_ACCEPT_LOG_SEC about it. How a loop stops and resumes
 * polling is its own (an epoll set, a timer of the daemon's loop); this is
 * the policy and its state.
 */
#ifndef NVEMU_UTIL_ACCEPT_BACKOFF_H
#define NVEMU_UTIL_ACCEPT_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/* How long a listener rests after accept ran out of descriptors or memory. */
#define NVEMU_ACCEPT_BACKOFF_MS 100
/* At most one log line per this many seconds about such failures. */
#define NVEMU_ACCEPT_LOG_SEC 10

struct nvemu_accept_backoff {
	uint64_t resume_ns; /* CLOCK_MONOTONIC time to poll the listener again; 0: polling it */
	uint64_t log_ns;    /* of the last line logged */
	uint64_t missed;    /* failures not logged since */
};

/* EMFILE, ENFILE, ENOMEM, ENOBUFS: retrying at once cannot succeed. */
bool nvemu_accept_exhausted(int err);

/* A rest of NVEMU_ACCEPT_BACKOFF_MS starts now: the caller stops polling the listener. */
void nvemu_accept_backoff_rest(struct nvemu_accept_backoff *b);

static inline bool nvemu_accept_backoff_resting(const struct nvemu_accept_backoff *b)
{
	return b->resume_ns != 0;
}

/* Nanoseconds left of the rest; 0 once it is over (or none started). */
uint64_t nvemu_accept_backoff_left_ns(const struct nvemu_accept_backoff *b);

/* The caller polls the listener again. */
static inline void nvemu_accept_backoff_end(struct nvemu_accept_backoff *b)
{
	b->resume_ns = 0;
}

/*
 * May a line about an accept failure be logged now (one per
 * NVEMU_ACCEPT_LOG_SEC)? If so, *missed is the failures since the last line
 * that were not logged.
 */
bool nvemu_accept_backoff_log_ok(struct nvemu_accept_backoff *b, uint64_t *missed);

#endif

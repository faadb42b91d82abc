// SPDX-License-Identifier: MIT
/* The rest of an accept loop out of descriptors, and its rate-limited log line. */
#include <errno.h>
#include <time.h>

#include "accept-backoff.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool nvemu_accept_exhausted(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
}

void nvemu_accept_backoff_rest(struct nvemu_accept_backoff *b)
{
	b->resume_ns = now_ns() + NVEMU_ACCEPT_BACKOFF_MS * 1000000ull;
}

uint64_t nvemu_accept_backoff_left_ns(const struct nvemu_accept_backoff *b)
{
	uint64_t now = now_ns();

	return b->resume_ns > now ? b->resume_ns - now : 0;
}

bool nvemu_accept_backoff_log_ok(struct nvemu_accept_backoff *b, uint64_t *missed)
{
	uint64_t now = now_ns();

	if (b->log_ns && now - b->log_ns < NVEMU_ACCEPT_LOG_SEC * 1000000000ull) {
		b->missed++;
		return false;
	}
	b->log_ns = now;
	*missed = b->missed;
	b->missed = 0;
	return true;
}

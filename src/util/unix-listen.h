/* SPDX-License-Identifier: MIT */
/*
 * Listening unix sockets for local peers (the MCTP router, vfio-user): the
 * socket is owner-only whatever the umask, a path is only ever taken over
 * from a dead server, and an accept loop out of descriptors rests instead
 * of spinning on a listener that stays readable.
 */
#ifndef NVEMU_UNIX_LISTEN_H
#define NVEMU_UNIX_LISTEN_H

#include <stdbool.h>
#include <stdint.h>

#include <nvemu/error.h>

/*
 * Bind a socket of type (SOCK_STREAM, SOCK_SEQPACKET) at path with mode 0600
 * and listen. An existing path is replaced only when it is a socket nobody
 * accepts on (connect gets ECONNREFUSED); a live socket is -EADDRINUSE, any
 * other file -EEXIST. what names the socket in messages. Returns the
 * non-blocking, close-on-exec fd or a negative errno (err set).
 */
int nvemu_unix_listen(const char *path, int type, int backlog, const char *what,
		      struct nvemu_error *err);

/* How long a listener rests after accept ran out of descriptors or memory. */
#define NVEMU_ACCEPT_BACKOFF_MS 100
/* At most one log line per this many seconds about such failures. */
#define NVEMU_ACCEPT_LOG_SEC 10

/* EMFILE, ENFILE, ENOMEM, ENOBUFS: retrying at once cannot succeed. */
bool nvemu_accept_exhausted(int err);

struct nvemu_ratelimit {
	uint64_t last_ns;
	uint64_t suppressed;
};

/*
 * True when a line may be logged now (at most one per interval_ns); the
 * caller may report rl->suppressed, the lines skipped since, then zero it.
 */
bool nvemu_ratelimit_ok(struct nvemu_ratelimit *rl, uint64_t interval_ns);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Listening unix sockets for local peers (the MCTP router, vfio-user): the
 * socket is owner-only whatever the umask, and a path is only ever taken
 * over from a dead server.
 */
#ifndef NVEMU_UNIX_LISTEN_H
#define NVEMU_UNIX_LISTEN_H

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

#endif

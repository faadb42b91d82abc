/* SPDX-License-Identifier: MIT */
/*
 * The raw JSON-RPC client rpc-raw and rpc-stress share: connect to nvemud's
 * unix socket, send bytes as they are, and read replies one JSON value at a
 * time (several may arrive in one read, or one across many).
 */
#ifndef NVEMU_TEST_RPC_CLIENT_H
#define NVEMU_TEST_RPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* read_reply results besides 0 (a reply); also the tools' exit codes. */
#define CLIENT_BAD     1 /* malformed reply, or out of memory */
#define CLIENT_CLOSED  3 /* the server closed before a whole reply */
#define CLIENT_TIMEOUT 4

/* Bytes past the last reply, kept for the next client_read on the same connection. */
struct client_buf {
	char *buf;
	size_t len, cap;
};

long long client_now_ms(void);
/* A connected socket, or -1 (errno set). */
int client_connect(const char *path, bool nonblock);
/*
 * All of buf, or -errno. A non-blocking socket waits for room. The server
 * may close on us after replying to garbage: EPIPE is reported, not raised.
 */
int client_send(int fd, const void *buf, size_t len);
/* The next reply within timeout_ms: 0 and *out, or a CLIENT_* code (*out NULL). */
int client_read(int fd, struct client_buf *cb, int timeout_ms, json_t **out);
void client_buf_free(struct client_buf *cb);

#endif

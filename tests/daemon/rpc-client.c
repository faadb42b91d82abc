// SPDX-License-Identifier: MIT
/* The raw JSON-RPC client of the daemon tests' tools (rpc-client.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "rpc-client.h"

long long client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int client_connect(const char *path, bool nonblock)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int client_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = {.fd = fd, .events = POLLOUT};

				poll(&pfd, 1, 1000);
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Parse one value off the front of cb; 1 if complete, 0 if more is needed, -1 bad. */
static int take(struct client_buf *cb, json_t **out)
{
	json_error_t jerr;
	size_t skip = 0;

	while (skip < cb->len && strchr(" \t\r\n", cb->buf[skip]))
		skip++;
	if (skip == cb->len)
		return 0;
	*out = json_loadb(cb->buf + skip, cb->len - skip, JSON_DISABLE_EOF_CHECK, &jerr);
	if (*out) {
		size_t used = skip + (size_t)jerr.position;

		memmove(cb->buf, cb->buf + used, cb->len - used);
		cb->len -= used;
		return 1;
	}
	if (json_error_code(&jerr) == json_error_premature_end_of_input)
		return 0;
	fprintf(stderr, "malformed reply: %s\n", jerr.text);
	return -1;
}

static int take_result(struct client_buf *cb, json_t **out)
{
	int t = take(cb, out);

	return t > 0 ? 0 : t < 0 ? CLIENT_BAD : -1;
}

int client_read(int fd, struct client_buf *cb, int timeout_ms, json_t **out)
{
	long long deadline = client_now_ms() + timeout_ms;
	int t;

	*out = NULL;
	t = take_result(cb, out);
	if (t >= 0)
		return t;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long long left = deadline - client_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return CLIENT_TIMEOUT;
		if (cb->len + 4096 > cb->cap) {
			size_t cap = cb->cap ? cb->cap * 2 : 1 << 16;
			char *nb = realloc(cb->buf, cap);

			if (!nb)
				return CLIENT_BAD;
			cb->buf = nb;
			cb->cap = cap;
		}
		n = recv(fd, cb->buf + cb->len, cb->cap - cb->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return CLIENT_CLOSED;
		cb->len += (size_t)n;
		t = take_result(cb, out);
		if (t >= 0)
			return t;
	}
}

void client_buf_free(struct client_buf *cb)
{
	free(cb->buf);
	*cb = (struct client_buf){0};
}

// SPDX-License-Identifier: MIT
/*
 * rpc-stress: hostile RPC clients for the daemon tests.
 *
 *   rpc-stress pieces SOCKET
 *       One client sends a request of almost 1 MiB (a deeply repetitive
 *       params object) in pieces of 1 to 16 bytes; between pieces a second
 *       client keeps sending small requests and must get every reply while
 *       the big one is still incomplete. Then the big one must be answered
 *       (it names an unknown parameter: a -32602 error proves it was parsed).
 *       Exit 0 on success, 1 with a message otherwise.
 *   rpc-stress hold SOCKET N SECS
 *       Open up to N connections (non-blocking connect), keep them SECS
 *       seconds without sending anything, close them; prints how many
 *       connected.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define BIG (1024 * 1024 - 4096)

static int connect_to(const char *path, bool nonblock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };

				poll(&p, 1, 1000);
				continue;
			}
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One newline-terminated reply within timeout_ms, parsed; NULL on timeout or close. */
static json_t *read_line(int fd, int timeout_ms)
{
	static char buf[1 << 16];
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, timeout_ms) != 1)
			return NULL;
		n = recv(fd, buf + len, 1, 0);
		if (n <= 0)
			return NULL;
		if (buf[len] == '\n')
			return json_loadb(buf, len, 0, NULL);
		if (++len == sizeof(buf))
			return NULL;
	}
}

static int fail(const char *msg)
{
	fprintf(stderr, "rpc-stress: %s\n", msg);
	return 1;
}

static int pieces(const char *path)
{
	static const char head[] =
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"bdev_list\",\"params\":{\"pad\":[";
	static const char tail[] = "{}]}}\n";
	char *req = malloc(BIG + 64);
	size_t len, off = 0, next_probe = 0;
	unsigned probes = 0, seed = 12345;
	int a, b;
	json_t *r;

	if (!req)
		return fail("out of memory");
	len = strlen(head);
	memcpy(req, head, len);
	/* Nested and comma-separated: every piece holds a closing brace. */
	while (len + 16 < BIG) {
		memcpy(req + len, "{\"a\":[{}]},", 11);
		len += 11;
	}
	memcpy(req + len, tail, strlen(tail));
	len += strlen(tail);

	a = connect_to(path, false);
	b = connect_to(path, false);
	if (a < 0 || b < 0)
		return fail("cannot connect");
	while (off < len - 1) {
		size_t n;

		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 16;
		if (n > len - 1 - off)
			n = len - 1 - off;
		if (send_all(a, req + off, n))
			return fail("the big request's connection was closed early");
		off += n;
		if (off >= next_probe) {
			char probe[128];

			/* The other client is served while the big request is incomplete. */
			snprintf(probe, sizeof(probe),
				 "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"rpc_get_methods\"}\n",
				 100 + probes);
			if (send_all(b, probe, strlen(probe)))
				return fail("probe send failed");
			r = read_line(b, 10000);
			if (!r || json_integer_value(json_object_get(r, "id")) != 100 + probes ||
			    !json_is_array(json_object_get(r, "result"))) {
				fprintf(stderr, "rpc-stress: probe %u not answered at byte %zu of %zu\n",
					probes, off, len);
				return 1;
			}
			json_decref(r);
			probes++;
			next_probe += 32 * 1024;
		}
	}
	/* Nothing may have answered the big one before its last byte. */
	{
		struct pollfd p = { .fd = a, .events = POLLIN };

		if (poll(&p, 1, 0) == 1)
			return fail("a reply came before the request was complete");
	}
	if (send_all(a, req + len - 1, 1))
		return fail("last byte");
	r = read_line(a, 30000);
	if (!r)
		return fail("no reply to the big request");
	if (json_integer_value(json_object_get(json_object_get(r, "error"), "code")) != -32602 ||
	    !strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
		    "pad: unknown parameter")) {
		char *s = json_dumps(r, 0);

		fprintf(stderr, "rpc-stress: unexpected reply to the big request: %s\n", s);
		return 1;
	}
	json_decref(r);
	printf("%u probes answered during a %zu-byte request\n", probes, len);
	if (probes < 16)
		return fail("too few probes");
	close(a);
	close(b);
	free(req);
	return 0;
}

static int hold(const char *path, int n, int secs)
{
	int *fds = calloc((size_t)n, sizeof(*fds)), got = 0;
	struct timespec ts = { secs, 0 };

	if (!fds)
		return fail("out of memory");
	for (int i = 0; i < n; i++) {
		fds[i] = connect_to(path, true);
		if (fds[i] >= 0)
			got++;
	}
	printf("%d\n", got);
	fflush(stdout);
	nanosleep(&ts, NULL);
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "pieces"))
		return pieces(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "hold"))
		return hold(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: rpc-stress pieces SOCKET | hold SOCKET N SECS\n");
	return 2;
}

// SPDX-License-Identifier: MIT
/*
 * rpc-stress: hostile RPC clients for the daemon tests.
 *
 *   rpc-stress pieces SOCKET
 *       One client sends a request of almost 1 MiB (a repetitive params
 *       object, a closing brace in every piece) in pieces of 1 to 64 bytes;
 *       after each piece a second client sends a small request and must get
 *       its reply before the next piece, while the big one is incomplete.
 *       A server that re-parses the whole buffer per piece does about a
 *       megabyte of work per reply and does not get through within
 *       PIECES_BUDGET_S. Then the big one must be answered (it names an
 *       unknown parameter: a -32602 error proves it was parsed whole).
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
/* About 30 times what a server that frames incrementally needs, sanitizers included. */
#define PIECES_BUDGET_S 90

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

/* The one reply to the one request outstanding, within timeout_ms; NULL on timeout or close. */
static json_t *read_line(int fd, int timeout_ms)
{
	static char buf[1 << 16];
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, timeout_ms) != 1)
			return NULL;
		n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n <= 0)
			return NULL;
		len += (size_t)n;
		if (buf[len - 1] == '\n')
			return json_loadb(buf, len - 1, 0, NULL);
		if (len == sizeof(buf))
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
	size_t len, off = 0;
	unsigned probes = 0, seed = 12345;
	time_t start = time(NULL);
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
	/* All but the closing brace and newline, which complete the request. */
	while (off < len - 2) {
		size_t n;

		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 64;
		if (n > len - 2 - off)
			n = len - 2 - off;
		if (send_all(a, req + off, n))
			return fail("the big request's connection was closed early");
		off += n;
		{
			char probe[128];

			/* The other client is served while the big request is incomplete. */
			snprintf(probe, sizeof(probe),
				 "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"nvme_subsystem_list\"}\n",
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
		}
		if (time(NULL) - start > PIECES_BUDGET_S) {
			fprintf(stderr,
				"rpc-stress: after %u replies, %zu of %zu bytes in %d s: each reply waits for the partial request to be re-parsed\n",
				probes, off, len, PIECES_BUDGET_S);
			return 1;
		}
	}
	/* Nothing may have answered the big one before its last byte. */
	{
		struct pollfd p = { .fd = a, .events = POLLIN };

		if (poll(&p, 1, 0) == 1)
			return fail("a reply came before the request was complete");
	}
	if (send_all(a, req + len - 2, 2))
		return fail("last bytes");
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
	printf("%u requests answered during a %zu-byte request in %ld s\n", probes, len,
	       (long)(time(NULL) - start));
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

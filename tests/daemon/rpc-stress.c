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
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rpc-client.h"

#define BIG (1024 * 1024 - 4096)
/* About 30 times what a server that frames incrementally needs, sanitizers included. */
#define PIECES_BUDGET_S 90

static int fail(const char *msg)
{
	fprintf(stderr, "rpc-stress: %s\n", msg);
	return 1;
}

/* The big request: nested and comma-separated, so that every piece holds a closing brace. */
static char *big_request(size_t *len)
{
	static const char head[] =
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"bdev_list\",\"params\":{\"pad\":[";
	static const char tail[] = "{}]}}\n";
	char *req = malloc(BIG + 64);

	if (!req)
		return NULL;
	*len = strlen(head);
	memcpy(req, head, *len);
	while (*len + 16 < BIG) {
		memcpy(req + *len, "{\"a\":[{}]},", 11);
		*len += 11;
	}
	memcpy(req + *len, tail, strlen(tail));
	*len += strlen(tail);
	return req;
}

/* The other client is served while the big request is incomplete: one request, its reply. */
static int probe(int fd, struct client_buf *cb, unsigned id)
{
	char req[128];
	json_t *r;
	int ok;

	snprintf(req, sizeof(req),
		 "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"nvme_subsystem_list\"}\n", id);
	if (client_send(fd, req, strlen(req)))
		return -1;
	if (client_read(fd, cb, 10000, &r))
		return -1;
	ok = json_integer_value(json_object_get(r, "id")) == id &&
	     json_is_array(json_object_get(r, "result"));
	json_decref(r);
	return ok ? 0 : -1;
}

/* The big request's reply must be the unknown-parameter error: it was parsed whole. */
static int check_big_reply(int fd, struct client_buf *cb)
{
	json_t *r, *err;
	const char *msg;

	if (client_read(fd, cb, 30000, &r))
		return fail("no reply to the big request");
	err = json_object_get(r, "error");
	msg = json_string_value(json_object_get(err, "message"));
	if (json_integer_value(json_object_get(err, "code")) != -32602 || !msg ||
	    !strstr(msg, "pad: unknown parameter")) {
		char *s = json_dumps(r, 0);

		fprintf(stderr, "rpc-stress: unexpected reply to the big request: %s\n", s);
		free(s);
		json_decref(r);
		return 1;
	}
	json_decref(r);
	return 0;
}

/* Send all of req but its last 2 bytes in 1..64-byte pieces on a, probing on b after each. */
static int send_pieces(int a, int b, const char *req, size_t len, unsigned *probes)
{
	struct client_buf cb = {0};
	time_t start = time(NULL);
	unsigned seed = 12345;
	size_t off = 0;
	int ret = 0;

	while (!ret && off < len - 2) {
		size_t n;

		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 64;
		if (n > len - 2 - off)
			n = len - 2 - off;
		if (client_send(a, req + off, n)) {
			ret = fail("the big request's connection was closed early");
			break;
		}
		off += n;
		if (probe(b, &cb, 100 + *probes)) {
			fprintf(stderr, "rpc-stress: probe %u not answered at byte %zu of %zu\n",
				*probes, off, len);
			ret = 1;
			break;
		}
		(*probes)++;
		if (time(NULL) - start > PIECES_BUDGET_S) {
			fprintf(stderr,
				"rpc-stress: after %u replies, %zu of %zu bytes in %d s: each "
				"reply waits for the partial request to be re-parsed\n",
				*probes, off, len, PIECES_BUDGET_S);
			ret = 1;
		}
	}
	client_buf_free(&cb);
	return ret;
}

static int pieces(const char *path)
{
	struct client_buf cb = {0};
	time_t start = time(NULL);
	unsigned probes = 0;
	struct pollfd p;
	size_t len;
	char *req = big_request(&len);
	int a, b, ret;

	if (!req)
		return fail("out of memory");
	a = client_connect(path, false);
	b = client_connect(path, false);
	if (a < 0 || b < 0)
		return fail("cannot connect");
	ret = send_pieces(a, b, req, len, &probes);
	/* Nothing may have answered the big one before its last byte. */
	p = (struct pollfd){.fd = a, .events = POLLIN};
	if (!ret && poll(&p, 1, 0) == 1)
		ret = fail("a reply came before the request was complete");
	if (!ret && client_send(a, req + len - 2, 2))
		ret = fail("last bytes");
	if (!ret)
		ret = check_big_reply(a, &cb);
	if (!ret)
		printf("%u requests answered during a %zu-byte request in %ld s\n", probes, len,
		       (long)(time(NULL) - start));
	client_buf_free(&cb);
	close(a);
	close(b);
	free(req);
	return ret;
}

static int hold(const char *path, int n, int secs)
{
	int *fds = calloc((size_t)n, sizeof(*fds)), got = 0;
	struct timespec ts = {secs, 0};

	if (!fds)
		return fail("out of memory");
	for (int i = 0; i < n; i++) {
		fds[i] = client_connect(path, true);
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

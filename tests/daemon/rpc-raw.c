// SPDX-License-Identifier: MIT
/*
 * rpc-raw: send raw bytes to a unix socket and print the reply, for the
 * daemon tests' bad-input cases that nvemu-rpc cannot produce.
 *
 *   rpc-raw [options] SOCKET [DATA]      DATA, or stdin when absent
 *     -b N      send DATA followed by N filler bytes inside a JSON string
 *               (builds an oversized but otherwise valid request)
 *     -c        close right after sending, without reading (disconnect mid-request)
 *     -S SECS   after sending, hold the connection open this long without reading
 *               (a stalled half request); prints "stalled" when done
 *     -n N      open N connections, send DATA on each, then read every reply;
 *               prints how many replies were complete
 *     -h        half-close (shutdown the write side) after sending: the server
 *               sees end of input while the reply can still come back
 *     -m N      read N replies on the one connection (pipelined requests)
 *     -t SECS   reply timeout (default 10)
 *
 * Exit: 0 a reply (or the requested action) completed, 3 closed without a
 * reply, 4 timeout, 1 other errors. The reply is printed compact on one line.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <jansson.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The server may close on us after replying to garbage: EPIPE is not our failure. */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/* Bytes past the first reply, kept for the next read_reply on the same connection. */
struct rbuf {
	char *buf;
	size_t len, cap;
};

/* Parse one value off the front of rb; 1 if complete, 0 if more is needed, -1 bad. */
static int take(struct rbuf *rb, json_t **out)
{
	json_error_t jerr;
	size_t skip = 0;

	while (skip < rb->len && strchr(" \t\r\n", rb->buf[skip]))
		skip++;
	if (skip == rb->len)
		return 0;
	*out = json_loadb(rb->buf + skip, rb->len - skip, JSON_DISABLE_EOF_CHECK, &jerr);
	if (*out) {
		size_t used = skip + (size_t)jerr.position;

		memmove(rb->buf, rb->buf + used, rb->len - used);
		rb->len -= used;
		return 1;
	}
	if (json_error_code(&jerr) == json_error_premature_end_of_input)
		return 0;
	fprintf(stderr, "rpc-raw: malformed reply: %s\n", jerr.text);
	return -1;
}

/* Returns 0 and the reply, 3 if closed first, 4 on timeout. */
static int read_reply(int fd, struct rbuf *rb, int timeout_ms, json_t **out)
{
	long long deadline = now_ms() + timeout_ms;
	int t;

	*out = NULL;
	t = take(rb, out);
	if (t)
		return t > 0 ? 0 : 1;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return 4;
		if (rb->len + 4096 > rb->cap) {
			size_t cap = rb->cap ? rb->cap * 2 : 1 << 16;
			char *nb = realloc(rb->buf, cap);

			if (!nb)
				return 1;
			rb->buf = nb;
			rb->cap = cap;
		}
		n = recv(fd, rb->buf + rb->len, rb->cap - rb->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 3;
		rb->len += n;
		t = take(rb, out);
		if (t)
			return t > 0 ? 0 : 1;
	}
}

static char *read_stdin(size_t *len)
{
	size_t cap = 4096;
	char *buf = malloc(cap);
	size_t n;

	*len = 0;
	while (buf && (n = fread(buf + *len, 1, cap - *len, stdin)) > 0) {
		*len += n;
		if (*len == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	return buf;
}

int main(int argc, char **argv)
{
	size_t big = 0, len;
	double stall = 0, timeout = 10;
	bool close_early = false, half_close = false;
	int nconn = 1, nreplies = 1, opt, ret = 0;
	char *data;
	int *fds;

	while ((opt = getopt(argc, argv, "b:chS:n:m:t:")) != -1) {
		switch (opt) {
		case 'b':
			big = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			close_early = true;
			break;
		case 'h':
			half_close = true;
			break;
		case 'S':
			stall = atof(optarg);
			break;
		case 'n':
			nconn = atoi(optarg);
			break;
		case 'm':
			nreplies = atoi(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: rpc-raw [-b N] [-c] [-h] [-m N] [-S SECS] [-n N] [-t SECS] "
					"SOCKET [DATA]\n");
			return 1;
		}
	}
	if (optind >= argc || nconn < 1 || nconn > 4096) {
		fprintf(stderr, "rpc-raw: need a socket path\n");
		return 1;
	}
	if (optind + 1 < argc) {
		data = strdup(argv[optind + 1]);
		len = strlen(data);
	} else {
		data = read_stdin(&len);
	}
	if (!data)
		return 1;
	if (big) {
		static const char tail[] = "\"}}\n";
		char *nb = realloc(data, len + big + sizeof(tail));

		if (!nb)
			return 1;
		data = nb;
		memset(data + len, 'A', big);
		memcpy(data + len + big, tail, sizeof(tail));
		len += big + sizeof(tail) - 1;
	}

	fds = calloc(nconn, sizeof(*fds));
	if (!fds)
		return 1;
	for (int i = 0; i < nconn; i++) {
		fds[i] = connect_to(argv[optind]);
		if (fds[i] < 0) {
			fprintf(stderr, "rpc-raw: connect %s: %s\n", argv[optind], strerror(errno));
			free(data);
			free(fds);
			return 1;
		}
		/* A send error after a partial write is fine: the server may refuse early. */
		send_all(fds[i], data, len);
		if (half_close)
			shutdown(fds[i], SHUT_WR);
	}
	free(data);
	data = NULL;
	if (close_early) {
		for (int i = 0; i < nconn; i++)
			close(fds[i]);
		printf("closed\n");
		free(fds);
		return 0;
	}
	if (stall > 0) {
		struct timespec ts = { (time_t)stall, (long)((stall - (time_t)stall) * 1e9) };

		nanosleep(&ts, NULL);
		printf("stalled\n");
		free(fds);
		return 0;
	}
	if (nconn > 1) {
		int ok = 0;

		for (int i = 0; i < nconn; i++) {
			struct rbuf rb = { 0 };
			json_t *r;

			if (!read_reply(fds[i], &rb, (int)(timeout * 1000), &r) &&
			    json_object_get(r, "result"))
				ok++;
			json_decref(r);
			free(rb.buf);
			close(fds[i]);
		}
		printf("%d\n", ok);
		free(fds);
		return ok == nconn ? 0 : 1;
	}

	struct rbuf rb = { 0 };

	for (int k = 0; k < nreplies && !ret; k++) {
		json_t *r;
		char *s;

		ret = read_reply(fds[0], &rb, (int)(timeout * 1000), &r);
		if (!ret) {
			s = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
			printf("%s\n", s ? s : "");
			free(s);
			json_decref(r);
		} else if (ret == 3) {
			printf("closed\n");
		} else if (ret == 4) {
			printf("timeout\n");
		}
	}
	close(fds[0]);
	free(rb.buf);
	free(data);
	free(fds);
	return ret;
}

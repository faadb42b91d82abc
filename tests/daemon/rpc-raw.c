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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "rpc-client.h"

struct opts {
	size_t big;
	double stall, timeout;
	bool close_early, half_close;
	int nconn, nreplies;
	const char *sock, *data;
};

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

static int usage(void)
{
	fprintf(stderr, "usage: rpc-raw [-b N] [-c] [-h] [-m N] [-S SECS] [-n N] [-t SECS] "
			"SOCKET [DATA]\n");
	return 1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int opt;

	*o = (struct opts){.timeout = 10, .nconn = 1, .nreplies = 1};
	while ((opt = getopt(argc, argv, "b:chS:n:m:t:")) != -1) {
		switch (opt) {
		case 'b':
			o->big = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			o->close_early = true;
			break;
		case 'h':
			o->half_close = true;
			break;
		case 'S':
			o->stall = atof(optarg);
			break;
		case 'n':
			o->nconn = atoi(optarg);
			break;
		case 'm':
			o->nreplies = atoi(optarg);
			break;
		case 't':
			o->timeout = atof(optarg);
			break;
		default:
			return usage();
		}
	}
	if (optind >= argc || o->nconn < 1 || o->nconn > 4096) {
		fprintf(stderr, "rpc-raw: need a socket path\n");
		return 1;
	}
	o->sock = argv[optind];
	o->data = optind + 1 < argc ? argv[optind + 1] : NULL;
	return 0;
}

/* The bytes to send: DATA or stdin, with -b's filler inside a JSON string. */
static char *load_data(const struct opts *o, size_t *len)
{
	static const char tail[] = "\"}}\n";
	char *data, *nb;

	if (o->data) {
		data = strdup(o->data);
		*len = data ? strlen(data) : 0;
	} else {
		data = read_stdin(len);
	}
	if (!data || !o->big)
		return data;
	nb = realloc(data, *len + o->big + sizeof(tail));
	if (!nb) {
		free(data);
		return NULL;
	}
	data = nb;
	memset(data + *len, 'A', o->big);
	memcpy(data + *len + o->big, tail, sizeof(tail));
	*len += o->big + sizeof(tail) - 1;
	return data;
}

/* -n: one reply per connection; prints how many were results. */
static int read_many(const struct opts *o, int *fds)
{
	int ok = 0;

	for (int i = 0; i < o->nconn; i++) {
		struct client_buf cb = {0};
		json_t *r;

		if (!client_read(fds[i], &cb, (int)(o->timeout * 1000), &r) &&
		    json_object_get(r, "result"))
			ok++;
		json_decref(r);
		client_buf_free(&cb);
		close(fds[i]);
	}
	printf("%d\n", ok);
	return ok == o->nconn ? 0 : 1;
}

/* -m: the replies on the one connection, each printed compact on a line. */
static int read_replies(const struct opts *o, int fd)
{
	struct client_buf cb = {0};
	int ret = 0;

	for (int k = 0; k < o->nreplies && !ret; k++) {
		json_t *r;
		char *s;

		ret = client_read(fd, &cb, (int)(o->timeout * 1000), &r);
		if (!ret) {
			s = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
			printf("%s\n", s ? s : "");
			free(s);
			json_decref(r);
		} else if (ret == CLIENT_CLOSED) {
			printf("closed\n");
		} else if (ret == CLIENT_TIMEOUT) {
			printf("timeout\n");
		}
	}
	close(fd);
	client_buf_free(&cb);
	return ret;
}

/* What to do once everything is sent: close, stall, or read replies. */
static int after_send(const struct opts *o, int *fds)
{
	if (o->close_early) {
		for (int i = 0; i < o->nconn; i++)
			close(fds[i]);
		printf("closed\n");
		return 0;
	}
	if (o->stall > 0) {
		struct timespec ts = {(time_t)o->stall,
				      (long)((o->stall - (time_t)o->stall) * 1e9)};

		nanosleep(&ts, NULL);
		printf("stalled\n");
		return 0;
	}
	if (o->nconn > 1)
		return read_many(o, fds);
	return read_replies(o, fds[0]);
}

int main(int argc, char **argv)
{
	struct opts o;
	size_t len;
	char *data;
	int *fds, ret;

	if (parse_opts(argc, argv, &o))
		return 1;
	data = load_data(&o, &len);
	fds = calloc(o.nconn, sizeof(*fds));
	if (!data || !fds) {
		free(data);
		free(fds);
		return 1;
	}
	for (int i = 0; i < o.nconn; i++) {
		fds[i] = client_connect(o.sock, false);
		if (fds[i] < 0) {
			fprintf(stderr, "rpc-raw: connect %s: %s\n", o.sock, strerror(errno));
			free(data);
			free(fds);
			return 1;
		}
		/* A send error after a partial write is fine: the server may refuse early. */
		client_send(fds[i], data, len);
		if (o.half_close)
			shutdown(fds[i], SHUT_WR);
	}
	free(data);
	ret = after_send(&o, fds);
	free(fds);
	return ret;
}

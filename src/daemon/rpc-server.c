// SPDX-License-Identifier: MIT
/* The unix socket side of the control plane: framing, buffering, many clients. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop.h"
#include "rpc-server.h"
#include "rpc.h"

#define READ_CHUNK 65536
#define MAX_CLIENTS 4096
#define MAX_PENDING_OUT (16u << 20) /* a client that never reads is dropped */

struct client {
	struct rpc_server *srv;
	int fd;
	struct loop_src *src;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off;
	bool closing;	 /* close once out is flushed */
	bool may_parse;	 /* a '}' or ']' arrived since the last incomplete parse */
	struct client *prev, *next;
};

struct rpc_server {
	struct nvemud *d;
	int fd;
	char *path;
	struct loop_src *src;
	struct client *clients;
	unsigned nr_clients;
	dev_t dev;
	ino_t ino;
};

static void client_free(struct client *c)
{
	struct rpc_server *srv = c->srv;

	loop_del(c->src);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nr_clients--;
	free(c->in);
	free(c->out);
	free(c);
}

static void client_update_events(struct client *c)
{
	uint32_t ev = c->closing ? 0 : EPOLLIN;

	if (c->out_len > c->out_off)
		ev |= EPOLLOUT;
	loop_mod_fd(c->src, ev | EPOLLRDHUP);
}

/* Returns false when the client was freed. */
static bool client_flush(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			client_free(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->closing) {
			client_free(c);
			return false;
		}
	}
	client_update_events(c);
	return true;
}

static void client_queue(struct client *c, json_t *resp)
{
	char *s;
	size_t len;

	if (!resp)
		return;
	s = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
	if (!s)
		return;
	len = strlen(s);
	if (c->out_len - c->out_off + len + 1 > MAX_PENDING_OUT) {
		free(s);
		c->closing = true;
		c->out_len = c->out_off = 0;
		return;
	}
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len + 1 > SIZE_MAX / 2) {
		free(s);
		return;
	}
	{
		char *n = realloc(c->out, c->out_len + len + 1);

		if (!n) {
			free(s);
			c->closing = true;
			return;
		}
		c->out = n;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	free(s);
}

/* Incomplete input (wait for more) as opposed to malformed input. */
static bool incomplete(const json_error_t *err, const char *buf, size_t len)
{
	enum json_error_code code = json_error_code(err);
	unsigned char last = len ? (unsigned char)buf[len - 1] : 0;

	if (code == json_error_premature_end_of_input)
		return true;
	if ((size_t)err->position < len)
		return false;
	/* A keyword or number cut short ("tru"), or a UTF-8 sequence cut short. */
	if (code == json_error_invalid_syntax &&
	    ((last >= 'a' && last <= 'z') || (last >= '0' && last <= '9') || last == '.' ||
	     last == '-' || last == '+' || last == 'E'))
		return true;
	return code == json_error_invalid_utf8 && (last & 0x80);
}

/* First byte of a pending request that can't start an object: parse now, don't wait. */
static bool starts_scalar(const char *p, size_t len)
{
	return len && *p != '{' && *p != '[';
}

static void client_process(struct client *c, bool eof)
{
	struct nvemud *d = c->srv->d;
	size_t off = 0;

	while (!c->closing) {
		const char *p;
		size_t len;
		json_error_t err;
		json_t *req;

		while (off < c->in_len && (c->in[off] == ' ' || c->in[off] == '\n' ||
					   c->in[off] == '\r' || c->in[off] == '\t'))
			off++;
		p = c->in + off;
		len = c->in_len - off;
		if (!len || (!c->may_parse && !eof && !starts_scalar(p, len)))
			break;
		req = json_loadb(p, len, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &err);
		/*
		 * A bare number may go on in the next read; it is an invalid request
		 * either way, so answering it now is harmless.
		 */
		if (!req) {
			if (!eof && incomplete(&err, p, len)) {
				c->may_parse = false;
				if (len > RPC_MAX_REQUEST) {
					client_queue(c, rpc_error_response(
								NULL, RPC_ERR_INVALID_REQUEST,
								"request exceeds 1 MiB"));
					c->closing = true;
				}
				break;
			}
			{
				char msg[300];

				snprintf(msg, sizeof(msg), "parse error: %s at byte %d", err.text,
					 err.position);
				client_queue(c, rpc_error_response(NULL, RPC_ERR_PARSE, msg));
			}
			/* The stream can't be resynchronised reliably. */
			c->closing = true;
			break;
		}
		if ((size_t)err.position > RPC_MAX_REQUEST) {
			json_decref(req);
			client_queue(c, rpc_error_response(NULL, RPC_ERR_INVALID_REQUEST,
							   "request exceeds 1 MiB"));
			c->closing = true;
			break;
		}
		off += (size_t)err.position;
		nvemud_log(d, NVEMUD_LOG_TRACE, "client %d: request of %d bytes", c->fd,
			   err.position);
		client_queue(c, nvemud_rpc_call(d, req));
		json_decref(req);
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
}

static void client_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct client *c = arg;
	bool eof = false;

	if (revents & EPOLLIN) {
		/* Bounded per wakeup, so one busy client can't starve the rest. */
		for (int rounds = 0; rounds < 16 && !c->closing; rounds++) {
			ssize_t n;

			if (c->in_cap - c->in_len < READ_CHUNK) {
				size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK * 2;
				char *nb;

				if (cap > RPC_MAX_REQUEST + 2 * READ_CHUNK)
					cap = RPC_MAX_REQUEST + 2 * READ_CHUNK;
				if (cap <= c->in_len) {
					/* Full: over 1 MiB of request not yet parsed. */
					c->may_parse = true;
					client_process(c, false);
					if (c->in_cap - c->in_len == 0 && !c->closing) {
						client_queue(c, rpc_error_response(
									NULL, RPC_ERR_INVALID_REQUEST,
									"request exceeds 1 MiB"));
						c->closing = true;
					}
					break;
				}
				nb = realloc(c->in, cap);
				if (!nb) {
					client_free(c);
					return;
				}
				c->in = nb;
				c->in_cap = cap;
			}
			n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					eof = true;
				break;
			}
			if (n == 0) {
				eof = true;
				break;
			}
			if (memchr(c->in + c->in_len, '}', (size_t)n) ||
			    memchr(c->in + c->in_len, ']', (size_t)n) ||
			    memchr(c->in + c->in_len, '\n', (size_t)n))
				c->may_parse = true;
			c->in_len += (size_t)n;
			if (c->in_len > RPC_MAX_REQUEST)
				c->may_parse = true; /* so the size check runs */
			client_process(c, false);
		}
	}
	if (eof || (revents & (EPOLLHUP | EPOLLERR))) {
		/* End of input completes what is left (or makes it a parse error). */
		if (!c->closing)
			client_process(c, true);
		c->closing = true;
	}
	client_flush(c);
}

static void accept_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct rpc_server *srv = arg;

	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *c;

		if (cfd < 0)
			return;
		if (srv->nr_clients >= MAX_CLIENTS) {
			nvemud_log(srv->d, NVEMUD_LOG_WARN, "too many RPC clients; refusing one");
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		c->srv = srv;
		c->fd = cfd;
		c->src = loop_add_fd(srv->d->loop, cfd, EPOLLIN | EPOLLRDHUP, client_cb, c);
		if (!c->src) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = srv->clients;
		if (c->next)
			c->next->prev = c;
		srv->clients = c;
		srv->nr_clients++;
		nvemud_log(srv->d, NVEMUD_LOG_TRACE, "client %d connected", cfd);
	}
}

/* Is something answering on path? */
static bool socket_alive(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	alive = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 ||
		errno == EAGAIN;
	close(fd);
	return alive;
}

int rpc_server_start(struct nvemud *d, const char *path, struct nvemu_error *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct rpc_server *srv;
	struct stat st;
	mode_t old;
	int fd, ret;

	if (strlen(path) >= sizeof(addr.sun_path))
		return nvemu_error_set(err, -ENAMETOOLONG, "socket path %s: at most %zu bytes",
				       path, sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return nvemu_error_set(err, -EEXIST,
					       "%s exists and is not a socket; not replacing it",
					       path);
		if (socket_alive(&addr))
			return nvemu_error_set(err, -EADDRINUSE,
					       "another nvemud is already serving %s", path);
		nvemud_log(d, NVEMUD_LOG_INFO, "replacing stale socket %s", path);
		if (unlink(path) && errno != ENOENT)
			return nvemu_error_set(err, -errno, "cannot remove stale socket %s: %s",
					       path, strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nvemu_error_set(err, -errno, "socket: %s", strerror(errno));
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (ret < 0 || chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		close(fd);
		return nvemu_error_set(err, ret, "cannot listen on %s: %s", path, strerror(-ret));
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv || !(srv->path = strdup(path))) {
		free(srv);
		close(fd);
		unlink(path);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	if (stat(path, &st) == 0) {
		srv->dev = st.st_dev;
		srv->ino = st.st_ino;
	}
	srv->d = d;
	srv->fd = fd;
	srv->src = loop_add_fd(d->loop, fd, EPOLLIN, accept_cb, srv);
	if (!srv->src) {
		close(fd);
		unlink(path);
		free(srv->path);
		free(srv);
		return nvemu_error_set(err, -ENOMEM, "cannot watch the socket");
	}
	d->server = srv;
	nvemud_log(d, NVEMUD_LOG_INFO, "listening on %s", path);
	return 0;
}

void rpc_server_stop(struct nvemud *d)
{
	struct rpc_server *srv = d->server;
	struct stat st;

	if (!srv)
		return;
	loop_del(srv->src);
	close(srv->fd);
	while (srv->clients)
		client_free(srv->clients);
	/* Only remove the file if it is still ours. */
	if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
		unlink(srv->path);
	free(srv->path);
	free(srv);
	d->server = NULL;
}

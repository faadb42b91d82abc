// SPDX-License-Identifier: MIT
/* The unix socket side of the control plane: framing, buffering, many clients. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "event-loop.h"
#include "rpc-framer.h"
#include "rpc-server.h"
#include "rpc.h"
#include "util/accept-backoff.h"
#include "util/unix-listen.h"

#define READ_CHUNK 65536
#define MAX_CLIENTS 4096
#define MAX_PENDING_OUT (16u << 20) /* a client that never reads is dropped */
/* Per client and wakeup: bytes read and requests run, so that others get their turn. */
#define READ_BUDGET (64u << 10)
#define REQ_BUDGET 8

struct client {
	struct rpc_server *srv;
	int fd;
	struct loop_src *src;
	char *in;
	size_t in_len, in_cap;
	size_t in_off;		 /* start of the value being framed */
	struct rpc_framer fr;
	char *out;
	size_t out_len, out_off;
	bool closing;		 /* close once out is flushed */
	bool eof;		 /* no more input */
	bool backlog;		 /* complete input left after the per-wakeup budget */
	struct rpc_pending *pending; /* a request whose reply comes later */
	LIST_ENTRY(client) link;
};

struct rpc_server {
	struct nvemud *d;
	int fd;
	char *path;
	struct loop_src *src;
	/* Made at start: they must work when no descriptor is left. */
	struct loop_src *resume;  /* runs clients with a backlog, after other events */
	struct loop_src *backoff; /* accept paused (EMFILE, ...) */
	bool resume_armed;
	struct nvemu_accept_backoff accept; /* also rate-limits the too-many-clients line */
	LIST_HEAD(, client) clients;
	unsigned nr_clients;
	dev_t dev;
	ino_t ino;
	bool activated; /* the socket is systemd's (socket activation): never unlinked */
};

static void client_free(struct client *c)
{
	struct rpc_server *srv = c->srv;

	/* The method goes on; its reply is dropped. */
	rpc_pending_cancel(c->pending);
	loop_del(c->src);
	close(c->fd);
	LIST_REMOVE(c, link);
	srv->nr_clients--;
	free(c->in);
	free(c->out);
	free(c);
}

static void client_update_events(struct client *c)
{
	/* While a reply is pending or requests are queued, read no more (back-pressure). */
	uint32_t ev = c->closing || c->eof || c->pending || c->backlog ? 0 : EPOLLIN | EPOLLRDHUP;

	if (c->out_len > c->out_off)
		ev |= EPOLLOUT;
	loop_mod_fd(c->src, ev);
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
		if ((c->closing || (c->eof && !c->backlog)) && !c->pending) {
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

static void too_large(struct client *c)
{
	client_queue(c, rpc_error_response(NULL, RPC_ERR_INVALID_REQUEST,
					   "request exceeds 1 MiB"));
	c->closing = true;
}

static void schedule_resume(struct rpc_server *srv);
static void client_reply(void *arg, json_t *resp);

/*
 * Run the complete requests in the buffer, at most REQ_BUDGET of them. Each
 * byte is framed once however many reads it took to arrive.
 */
static void client_process(struct client *c)
{
	struct nvemud *d = c->srv->d;
	unsigned handled = 0;

	c->backlog = false;
	while (!c->closing && !c->pending) {
		json_error_t err;
		size_t len;
		json_t *req;

		if (!c->fr.started) {
			while (c->in_off < c->in_len &&
			       (c->in[c->in_off] == ' ' || c->in[c->in_off] == '\n' ||
				c->in[c->in_off] == '\r' || c->in[c->in_off] == '\t'))
				c->in_off++;
		}
		if (c->in_off == c->in_len)
			break;
		if (handled == REQ_BUDGET) {
			c->backlog = true;
			schedule_resume(c->srv);
			break;
		}
		len = rpc_framer_scan(&c->fr, c->in + c->in_off, c->in_len - c->in_off, c->eof);
		if (!len) {
			if (c->in_len - c->in_off > RPC_MAX_REQUEST)
				too_large(c);
			break;
		}
		if (len > RPC_MAX_REQUEST) {
			too_large(c);
			break;
		}
		req = json_loadb(c->in + c->in_off, len, JSON_DECODE_ANY, &err);
		if (!req) {
			char msg[300];

			snprintf(msg, sizeof(msg), "parse error: %s at byte %d", err.text,
				 err.position);
			client_queue(c, rpc_error_response(NULL, RPC_ERR_PARSE, msg));
			/* The stream can't be resynchronised reliably. */
			c->closing = true;
			break;
		}
		c->in_off += len;
		rpc_framer_reset(&c->fr);
		handled++;
		nvemud_log(d, NVEMUD_LOG_TRACE, "client %d: request of %zu bytes", c->fd, len);
		{
			struct rpc_pending *p;
			json_t *resp = nvemud_rpc_call_async(d, req, client_reply, c, &p);

			c->pending = p;
			client_queue(c, resp);
		}
		json_decref(req);
	}
	/* Drop what was consumed, so the buffer holds at most one request in the making. */
	if (c->in_off) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
}

/* A deferred reply is ready (from the loop): send it and go on with what is queued. */
static void client_reply(void *arg, json_t *resp)
{
	struct client *c = arg;

	c->pending = NULL;
	client_queue(c, resp);
	client_process(c);
	client_flush(c);
}

static void resume_cb(struct loop_src *src, void *arg)
{
	struct rpc_server *srv = arg;
	struct client *c, *next;

	srv->resume_armed = false;
	/* Round robin: each client with a backlog gets one more budget, then the loop goes on. */
	for (c = LIST_FIRST(&srv->clients); c; c = next) {
		next = LIST_NEXT(c, link);
		if (!c->backlog)
			continue;
		client_process(c);
		if (!client_flush(c))
			continue;
	}
}

static void schedule_resume(struct rpc_server *srv)
{
	if (!srv->resume_armed && !loop_timer_arm(srv->resume, 0, false))
		srv->resume_armed = true;
}

static void client_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct client *c = arg;
	size_t budget = READ_BUDGET;

	if ((revents & EPOLLIN) && !c->pending && !c->backlog) {
		while (budget && !c->closing && !c->eof) {
			size_t want;
			ssize_t n;

			if (c->in_cap - c->in_len < READ_CHUNK) {
				size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK * 2;
				char *nb;

				if (cap > RPC_MAX_REQUEST + 2 * READ_CHUNK)
					cap = RPC_MAX_REQUEST + 2 * READ_CHUNK;
				if (cap <= c->in_len) {
					/* Full: over 1 MiB of one request not yet complete. */
					too_large(c);
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
			want = c->in_cap - c->in_len;
			if (want > budget)
				want = budget;
			n = recv(fd, c->in + c->in_len, want, MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					c->eof = true;
				break;
			}
			if (n == 0) {
				c->eof = true;
				break;
			}
			c->in_len += (size_t)n;
			budget -= (size_t)n;
			client_process(c);
			if (c->pending || c->backlog)
				break;
		}
	}
	if (revents & EPOLLERR) {
		client_free(c);
		return;
	}
	if (revents & EPOLLHUP) {
		/* Gone for good: nobody to answer; a running method finishes anyway. */
		c->eof = true;
		if (c->pending) {
			client_free(c);
			return;
		}
	}
	/* End of input completes what is left (or makes it a parse error). */
	if (c->eof && !c->closing && !c->pending)
		client_process(c);
	client_flush(c);
}

static void backoff_cb(struct loop_src *src, void *arg)
{
	struct rpc_server *srv = arg;

	nvemu_accept_backoff_end(&srv->accept);
	loop_mod_fd(srv->src, EPOLLIN);
}

/* One line per NVEMU_ACCEPT_LOG_SEC at most, counting what it stands for. */
static void accept_log(struct rpc_server *srv, int err)
{
	uint64_t missed;

	if (!nvemu_accept_backoff_log_ok(&srv->accept, &missed))
		return;
	if (err)
		nvemud_log(srv->d, NVEMUD_LOG_WARN,
			   "RPC accept: %s (%llu time(s) since the last message); pausing accepts "
			   "for %u ms",
			   strerror(err), (unsigned long long)missed + 1, NVEMU_ACCEPT_BACKOFF_MS);
	else
		nvemud_log(srv->d, NVEMUD_LOG_WARN,
			   "too many RPC clients (%u): refused %llu connection(s) since the last "
			   "message",
			   MAX_CLIENTS, (unsigned long long)missed + 1);
}

/* Pending connections stay queued; polling them now would spin. */
static void accept_rest(struct rpc_server *srv, int err)
{
	accept_log(srv, err);
	if (nvemu_accept_backoff_resting(&srv->accept))
		return;
	nvemu_accept_backoff_rest(&srv->accept);
	if (loop_timer_arm(srv->backoff, NVEMU_ACCEPT_BACKOFF_MS, false))
		nvemu_accept_backoff_end(&srv->accept); /* no timer: keep polling */
	else
		loop_mod_fd(srv->src, 0);
}

static void accept_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct rpc_server *srv = arg;

	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *c;

		if (cfd < 0) {
			if (nvemu_accept_exhausted(errno))
				accept_rest(srv, errno);
			return;
		}
		if (srv->nr_clients >= MAX_CLIENTS) {
			accept_log(srv, 0);
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
		LIST_INSERT_HEAD(&srv->clients, c, link);
		srv->nr_clients++;
		nvemud_log(srv->d, NVEMUD_LOG_TRACE, "client %d connected", cfd);
	}
}

static int server_new(struct nvemud *d, int fd, const char *path, bool activated,
		      struct nvemu_error *err);

int rpc_server_start(struct nvemud *d, const char *path, struct nvemu_error *err)
{
	int fd = nvemu_unix_listen(path, SOCK_STREAM, 128, "RPC", err);

	if (fd < 0)
		return fd;
	return server_new(d, fd, path, false, err);
}

int rpc_server_adopt(struct nvemud *d, int fd, const char *path, struct nvemu_error *err)
{
	return server_new(d, fd, path, true, err);
}

static int server_new(struct nvemud *d, int fd, const char *path, bool activated,
		      struct nvemu_error *err)
{
	struct rpc_server *srv;
	struct stat st;

	srv = calloc(1, sizeof(*srv));
	if (!srv || !(srv->path = strdup(path))) {
		free(srv);
		close(fd);
		if (!activated)
			unlink(path);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	if (stat(path, &st) == 0) {
		srv->dev = st.st_dev;
		srv->ino = st.st_ino;
	}
	srv->d = d;
	srv->activated = activated;
	LIST_INIT(&srv->clients);
	srv->fd = fd;
	srv->src = loop_add_fd(d->loop, fd, EPOLLIN, accept_cb, srv);
	srv->resume = loop_add_disarmed_timer(d->loop, resume_cb, srv);
	srv->backoff = loop_add_disarmed_timer(d->loop, backoff_cb, srv);
	if (!srv->src || !srv->resume || !srv->backoff) {
		loop_del(srv->src);
		loop_del(srv->resume);
		loop_del(srv->backoff);
		close(fd);
		if (!activated)
			unlink(path);
		free(srv->path);
		free(srv);
		return nvemu_error_set(err, -ENOMEM, "cannot watch the socket");
	}
	d->server = srv;
	nvemud_log(d, NVEMUD_LOG_INFO, "listening on %s%s", path,
		   activated ? " (socket activation)" : "");
	return 0;
}

void rpc_server_stop(struct nvemud *d)
{
	struct rpc_server *srv = d->server;
	struct stat st;

	if (!srv)
		return;
	loop_del(srv->src);
	loop_del(srv->resume);
	loop_del(srv->backoff);
	if (srv->fd >= 0)
		close(srv->fd);
	while (!LIST_EMPTY(&srv->clients))
		client_free(LIST_FIRST(&srv->clients));
	/* Only remove the file if it is still ours. */
	if (!srv->activated && stat(srv->path, &st) == 0 && st.st_dev == srv->dev &&
	    st.st_ino == srv->ino)
		unlink(srv->path);
	free(srv->path);
	free(srv);
	d->server = NULL;
}

void rpc_server_close_listener(struct nvemud *d)
{
	struct rpc_server *srv = d->server;
	struct stat st;

	if (!srv || srv->fd < 0)
		return;
	/* Clients stay (the live update's reply is still to go out): only the listener goes. */
	loop_del(srv->src);
	srv->src = NULL;
	loop_del(srv->backoff);
	srv->backoff = NULL;
	close(srv->fd);
	srv->fd = -1;
	if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
		unlink(srv->path);
	/* The file is gone: rpc_server_stop() must not remove a successor's. */
	srv->ino = 0;
	srv->dev = 0;
}

// SPDX-License-Identifier: MIT
/*
 * The kernel half of the userspace AF_MCTP: preload clients connect over a
 * unix SOCK_SEQPACKET socket, and the router plays the host's MCTP stack
 * (local EID, tag allocation, routing by network and EID) and the bus. A
 * message to an endpoint is packetized with the endpoint's transmission unit
 * and fed through nvemu_mctp_ep_rx(), the endpoint's packets are reassembled
 * here and the message is handed to the client that owns the tag, so the
 * path is the one a real bus takes. Nobody owning an EID means no answer.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/mctp.h>

#include "mctp-internal.h"
#include "util/accept-backoff.h"
#include "util/unix-listen.h"

/*
 * Linux keeps an unanswered tag for 6 s (mctp_key_lifetime). A preallocated
 * tag (SIOCMCTPALLOCTAG) is kept as long as it is used: one not sent on for
 * as long may go to another client, so that a client that allocates tags and
 * never drops them cannot take all eight of an endpoint for good. Once taken
 * over, the owner's next message with it gets another tag, as if newly
 * allocated.
 */
#define TAG_LIFETIME_NS (6ULL * 1000000000ULL)
#define MAX_BINDS	8
/*
 * Preload clients connected at once (each holds a descriptor of the daemon);
 * more are accepted and closed at once, so they fail fast.
 */
#define MAX_CLIENTS 64

struct router_client {
	struct nvemu_mctp_router *r;
	int fd;
	int ack_fd; /* SEND_RESULTs go here (HELLO); -1: the client wants none */
	bool dead;
	struct {
		unsigned int net;
		uint8_t type;
	} bind[MAX_BINDS];
	unsigned int nbind;
	LIST_ENTRY(router_client) link;
};

struct router_tag {
	struct router_client *client; /* NULL: free */
	uint8_t client_tag;	      /* what the client passed (TO, PREALLOC, tag) */
	uint8_t addr;		      /* the EID the client addressed */
	uint64_t expires;	      /* may be taken over after this (CLOCK_MONOTONIC ns) */
};

struct router_ep {
	struct nvemu_mctp_router *r;
	struct nvemu_mctp_ep *ep;
	struct nvemu_mctp_link from_ep; /* the endpoint's replies come here */
	struct nvemu_mctp_link to_ep;	/* our packets go into the endpoint */
	struct mctp_reasm reasm;
	struct router_tag tags[8];
	LIST_ENTRY(router_ep) link;
};

struct nvemu_mctp_router {
	int lfd, epfd, tfd;
	/* accept ran out of fds: the listener is out of epfd until tfd fires */
	struct nvemu_accept_backoff accept;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint8_t local_eid;
	LIST_HEAD(, router_client) clients;
	LIST_HEAD(, router_ep) eps;
	unsigned int nclients;
	uint8_t *buf; /* one wire message: header, type byte slot, body */
	uint64_t tag_lifetime_ns; /* TAG_LIFETIME_NS; shorter in tests */
};

#define WIRE_BUF (sizeof(struct nvemu_mctp_wire) + NVEMU_MCTP_MAX_MSG)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int to_ep_tx(void *ctx, const uint8_t *pkt, size_t len)
{
	struct router_ep *re = ctx;

	nvemu_mctp_ep_rx(re->ep, &re->from_ep, pkt, len);
	return 0;
}

static void client_send(struct router_client *c, const struct nvemu_mctp_wire *w,
			const uint8_t *body, size_t len)
{
	struct iovec iov[2] = {
		{.iov_base = (void *)w, .iov_len = sizeof(*w)},
		{.iov_base = (void *)body, .iov_len = len},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

	if (c->dead)
		return;
	/* A client that does not read loses messages, as a full socket queue would. */
	if (sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
	    errno != ENOBUFS)
		c->dead = true;
}

static void deliver(struct router_ep *re, const struct mctp_reasm_slot *s)
{
	struct nvemu_mctp_router *r = re->r;
	struct nvemu_mctp_wire w = {
		.op = NVEMU_MCTP_WIRE_RECV,
		.type = s->buf[0],
		.eid = s->src,
		.net = nvemu_mctp_ep_net(re->ep),
	};
	uint8_t tag = s->flags & NVEMU_MCTP_HDR_TAG_MASK;
	struct router_client *c;

	if (!(s->flags & NVEMU_MCTP_HDR_TO)) {
		struct router_tag *t = &re->tags[tag];

		if (!t->client)
			return; /* nobody waits for it: unexpected tag */
		w.tag = t->client_tag & MCTP_TAG_MASK;
		client_send(t->client, &w, s->buf + 1, s->len - 1);
		if (!(t->client_tag & MCTP_TAG_PREALLOC))
			t->client = NULL;
		return;
	}
	/* A request from the endpoint: to every socket bound to its type. */
	w.tag = MCTP_TAG_OWNER | tag;
	LIST_FOREACH(c, &r->clients, link)
		for (unsigned int i = 0; i < c->nbind; i++)
			if ((c->bind[i].net == MCTP_NET_ANY || c->bind[i].net == w.net) &&
			    c->bind[i].type == (w.type & 0x7f)) {
				client_send(c, &w, s->buf + 1, s->len - 1);
				break;
			}
}

static int from_ep_tx(void *ctx, const uint8_t *pkt, size_t len)
{
	struct router_ep *re = ctx;
	struct mctp_reasm_slot *s;

	if (len < NVEMU_MCTP_HDR_LEN || pkt[1] != re->r->local_eid)
		return 0; /* not for the host: nobody else is on this bus */
	if (mctp_reasm_push(&re->reasm, &re->from_ep, pkt, len, &s) == MCTP_RX_DONE) {
		deliver(re, s);
		mctp_reasm_release(s);
	}
	return 0;
}

static struct router_ep *route(struct nvemu_mctp_router *r, unsigned int net, uint8_t eid)
{
	struct router_ep *re, *only = NULL;
	unsigned int n = 0;

	LIST_FOREACH(re, &r->eps, link) {
		if (nvemu_mctp_ep_net(re->ep) != net)
			continue;
		if (eid != NVEMU_MCTP_EID_NULL && nvemu_mctp_ep_eid(re->ep) == eid)
			return re;
		only = re;
		n++;
	}
	/* The null EID reaches the endpoint if it is alone on the network. */
	return eid == NVEMU_MCTP_EID_NULL && n == 1 ? only : NULL;
}

/*
 * A holder that has hung up but whose hang-up is not handled yet (another
 * client's send came first in this batch): the kernel would have freed its
 * tags at close(), so do it now.
 */
static bool client_gone(struct router_client *c)
{
	struct pollfd pf = {.fd = c->fd, .events = POLLRDHUP};

	if (!c->dead && poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLRDHUP | POLLERR)))
		c->dead = true;
	return c->dead;
}

static int tag_get(struct router_ep *re, struct router_client *c, uint8_t ctag, uint8_t addr)
{
	uint64_t now = now_ns();
	int i;

	if (ctag & MCTP_TAG_PREALLOC) {
		for (i = 0; i < 8; i++) {
			struct router_tag *t = &re->tags[i];

			if (t->client == c && t->client_tag == ctag && t->addr == addr) {
				t->expires = now + re->r->tag_lifetime_ns;
				return i;
			}
		}
	}
	for (i = 0; i < 8; i++) {
		struct router_tag *t = &re->tags[i];

		/* Unanswered, or preallocated and unused, for the lifetime. */
		if (t->client && t->expires < now)
			t->client = NULL;
		if (!t->client) {
			t->client = c;
			t->client_tag = ctag;
			t->addr = addr;
			t->expires = now + re->r->tag_lifetime_ns;
			return i;
		}
	}
	/* All taken: free those of holders that hung up meanwhile, then look again. */
	for (i = 0; i < 8; i++) {
		struct router_tag *t = &re->tags[i];

		if (t->client != c && client_gone(t->client)) {
			t->client = c;
			t->client_tag = ctag;
			t->addr = addr;
			t->expires = now + re->r->tag_lifetime_ns;
			return i;
		}
	}
	return -EBUSY;
}

/* 0 or a positive errno: all eight tags to the peer are in use (the kernel's EAGAIN). */
static int send_to_ep(struct router_client *c, struct router_ep *re,
		      const struct nvemu_mctp_wire *w, uint8_t *msg, size_t len)
{
	uint8_t flags;

	if (w->tag & MCTP_TAG_OWNER) {
		int tag = tag_get(re, c, w->tag, w->eid);

		if (tag < 0)
			return EAGAIN;
		flags = NVEMU_MCTP_HDR_TO | tag;
	} else {
		flags = w->tag & MCTP_TAG_MASK;
	}
	msg[0] = w->type;
	nvemu_mctp_fragment(w->eid, c->r->local_eid, flags, msg, len, nvemu_mctp_ep_mtu(re->ep),
			    &re->to_ep);
	return 0;
}

/* Only a tag owner's send can fail (no tag), and only its sender waits for the verdict. */
static void send_result(struct router_client *c, const struct nvemu_mctp_wire *req, int err)
{
	struct nvemu_mctp_wire w = {.op = NVEMU_MCTP_WIRE_SEND_RESULT, .net = (uint32_t)err};

	/* The client waits for it; a full queue means it stopped waiting. */
	if (c->ack_fd >= 0 && (req->tag & MCTP_TAG_OWNER))
		send(c->ack_fd, &w, sizeof(w), MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void client_send_msg(struct router_client *c, const struct nvemu_mctp_wire *w, uint8_t *msg,
			    size_t len)
{
	struct nvemu_mctp_router *r = c->r;
	struct router_ep *re;
	int err = 0;

	if (w->eid != NVEMU_MCTP_EID_BCAST) {
		/* No route: dropped, the requester times out (nothing answers). */
		re = route(r, w->net, w->eid);
		if (re)
			err = send_to_ep(c, re, w, msg, len);
		send_result(c, w, err);
		return;
	}
	/* The broadcast EID reaches every endpoint on the network, as on a shared bus. */
	LIST_FOREACH(re, &r->eps, link)
		if (nvemu_mctp_ep_net(re->ep) == w->net)
			send_to_ep(c, re, w, msg, len);
	send_result(c, w, 0);
}

/* Descriptors passed with a message: the HELLO socket is kept, anything else closed. */
static int take_fds(struct msghdr *mh, bool keep_first)
{
	int kept = -1;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;
		int *fds;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(cm);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, fds + i, sizeof(fd));
			if (keep_first && kept < 0)
				kept = fd;
			else
				close(fd);
		}
	}
	return kept;
}

static void client_drop_tag(struct router_client *c, uint8_t addr, uint8_t ctag)
{
	struct router_ep *re;

	LIST_FOREACH(re, &c->r->eps, link)
		for (int i = 0; i < 8; i++)
			if (re->tags[i].client == c && re->tags[i].client_tag == ctag &&
			    re->tags[i].addr == addr)
				re->tags[i].client = NULL;
}

static void client_free(struct router_client *c)
{
	struct nvemu_mctp_router *r = c->r;
	struct router_ep *re;

	LIST_FOREACH(re, &r->eps, link)
		for (int i = 0; i < 8; i++)
			if (re->tags[i].client == c)
				re->tags[i].client = NULL;
	LIST_REMOVE(c, link);
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->ack_fd >= 0)
		close(c->ack_fd);
	r->nclients--;
	free(c);
}

static void client_read(struct router_client *c)
{
	struct nvemu_mctp_router *r = c->r;
	const size_t hl = sizeof(struct nvemu_mctp_wire);

	/* Bounded, so one chatty client cannot starve the loop; epoll is level triggered. */
	for (int i = 0; i < 64 && !c->dead; i++) {
		struct nvemu_mctp_wire w;
		struct iovec iov[2] = {
			{.iov_base = &w, .iov_len = hl},
			/* body lands after a slot for the type byte */
			{.iov_base = r->buf + 1, .iov_len = NVEMU_MCTP_MAX_MSG - 1},
		};
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(4 * sizeof(int))];
		} cbuf;
		struct msghdr mh = {.msg_iov = iov,
				    .msg_iovlen = 2,
				    .msg_control = cbuf.buf,
				    .msg_controllen = sizeof(cbuf.buf)};
		ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		int fd;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->dead = true;
			return;
		}
		if (n == 0) {
			/* SEQPACKET reads 0 for an empty record as for the end: only a hang-up ends it. */
			struct pollfd pf = {.fd = c->fd, .events = POLLIN | POLLRDHUP};

			if (poll(&pf, 1, 0) < 0 || (pf.revents & (POLLHUP | POLLRDHUP | POLLERR)))
				c->dead = true;
			continue;
		}
		fd = take_fds(&mh, (size_t)n >= hl && w.op == NVEMU_MCTP_WIRE_HELLO &&
					   !(mh.msg_flags & MSG_CTRUNC));
		if ((size_t)n < hl || (mh.msg_flags & MSG_TRUNC)) {
			if (fd >= 0)
				close(fd);
			continue; /* malformed or over NVEMU_MCTP_MAX_MSG: dropped */
		}
		switch (w.op) {
		case NVEMU_MCTP_WIRE_HELLO:
			if (fd >= 0) {
				if (c->ack_fd >= 0)
					close(c->ack_fd);
				c->ack_fd = fd;
			}
			break;
		case NVEMU_MCTP_WIRE_SEND:
			client_send_msg(c, &w, r->buf, n - hl + 1);
			break;
		case NVEMU_MCTP_WIRE_BIND:
			if (c->nbind < MAX_BINDS) {
				c->bind[c->nbind].net = w.net;
				c->bind[c->nbind].type = w.type & 0x7f;
				c->nbind++;
			}
			break;
		case NVEMU_MCTP_WIRE_DROPTAG:
			client_drop_tag(c, w.eid, w.tag);
			break;
		default:
			break;
		}
	}
}

static void reap(struct nvemu_mctp_router *r)
{
	struct router_client *c, *n;

	for (c = LIST_FIRST(&r->clients); c; c = n) {
		n = LIST_NEXT(c, link);
		if (c->dead)
			client_free(c);
	}
}

static int arm_rest_timer(struct nvemu_mctp_router *r)
{
	struct itimerspec its = {.it_value.tv_nsec = NVEMU_ACCEPT_BACKOFF_MS * 1000000L};

	nvemu_accept_backoff_rest(&r->accept);
	return timerfd_settime(r->tfd, 0, &its, NULL);
}

/* Out of descriptors or memory: rest the listener, which stays readable, for a while. */
static void accept_rest(struct nvemu_mctp_router *r, int err)
{
	uint64_t missed;

	if (epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->lfd, NULL) || arm_rest_timer(r)) {
		/* Cannot rest: keep the listener rather than lose it. */
		nvemu_accept_backoff_end(&r->accept);
		epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->lfd,
			  &(struct epoll_event){.events = EPOLLIN, .data.ptr = r});
		return;
	}
	if (nvemu_accept_backoff_log_ok(&r->accept, &missed))
		fprintf(stderr,
			"mctp router %s: accept: %s; not accepting for %d ms (%llu more such "
			"failures not logged)\n",
			r->path, strerror(err), NVEMU_ACCEPT_BACKOFF_MS,
			(unsigned long long)missed);
}

static void accept_resume(struct nvemu_mctp_router *r)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
	uint64_t exp;

	if (read(r->tfd, &exp, sizeof(exp)) < 0 || !nvemu_accept_backoff_resting(&r->accept))
		return;
	if (!epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->lfd, &ev) || errno == EEXIST)
		nvemu_accept_backoff_end(&r->accept);
	else /* still short of memory: rest again */
		arm_rest_timer(r);
}

static void accept_clients(struct nvemu_mctp_router *r)
{
	for (;;) {
		int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN};
		struct router_client *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (nvemu_accept_exhausted(errno))
				accept_rest(r, errno);
			return;
		}
		if (r->nclients >= MAX_CLIENTS) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			accept_rest(r, ENOMEM);
			return;
		}
		c->r = r;
		c->fd = fd;
		c->ack_fd = -1;
		ev.data.ptr = c;
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			return;
		}
		LIST_INSERT_HEAD(&r->clients, c, link);
		r->nclients++;
	}
}

int nvemu_mctp_router_handle(struct nvemu_mctp_router *r)
{
	struct epoll_event ev[16];
	int n = epoll_wait(r->epfd, ev, 16, 0);
	bool accept_ready = false;

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct router_client *c = ev[i].data.ptr;

		if (ev[i].data.ptr == r) {
			accept_ready = true;
			continue;
		}
		if (ev[i].data.ptr == &r->tfd) {
			accept_resume(r);
			continue;
		}
		if (ev[i].events & EPOLLIN)
			client_read(c);
		else if (ev[i].events & (EPOLLHUP | EPOLLERR))
			c->dead = true;
	}
	/* Only now: an event later in ev[] may name a client freed earlier. */
	reap(r);
	/* After the reaping, so clients that just left free their seats. */
	if (accept_ready)
		accept_clients(r);
	return n;
}

int nvemu_mctp_router_create(const char *path, struct nvemu_mctp_router **out,
			     struct nvemu_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct epoll_event ev = {.events = EPOLLIN};
	struct nvemu_mctp_router *r;
	int ret;

	if (!path || !*path)
		path = NVEMU_MCTP_SOCKET_DEFAULT;
	if (strlen(path) >= sizeof(sa.sun_path))
		return nvemu_error_set(err, -ENAMETOOLONG,
				       "mctp socket: path longer than %zu bytes",
				       sizeof(sa.sun_path) - 1);
	r = calloc(1, sizeof(*r));
	if (!r)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	r->lfd = r->epfd = r->tfd = -1;
	LIST_INIT(&r->clients);
	LIST_INIT(&r->eps);
	r->local_eid = NVEMU_MCTP_ROUTER_LOCAL_EID;
	r->tag_lifetime_ns = TAG_LIFETIME_NS;
	strcpy(r->path, path);
	r->buf = malloc(WIRE_BUF);
	if (!r->buf) {
		ret = nvemu_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (r->epfd < 0 || r->tfd < 0 ||
	    epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->tfd,
		      &(struct epoll_event){.events = EPOLLIN, .data.ptr = &r->tfd})) {
		ret = nvemu_error_set(err, -errno, "mctp router epoll: %m");
		goto fail;
	}
	/* Owner-only; a live router's socket is never taken over, a stale one is. */
	ret = nvemu_unix_listen(path, SOCK_SEQPACKET, 64, "mctp router", err);
	if (ret < 0)
		goto fail;
	r->lfd = ret;
	ev.data.ptr = r;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->lfd, &ev)) {
		ret = nvemu_error_set(err, -errno, "mctp router epoll: %m");
		unlink(path);
		goto fail;
	}
	*out = r;
	return 0;
fail:
	if (r->lfd >= 0)
		close(r->lfd);
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->tfd >= 0)
		close(r->tfd);
	free(r->buf);
	free(r);
	return ret;
}

void nvemu_mctp_router_destroy(struct nvemu_mctp_router *r)
{
	if (!r)
		return;
	while (!LIST_EMPTY(&r->eps))
		nvemu_mctp_router_remove_ep(r, LIST_FIRST(&r->eps)->ep);
	while (!LIST_EMPTY(&r->clients))
		client_free(LIST_FIRST(&r->clients));
	close(r->epfd);
	close(r->tfd);
	close(r->lfd);
	unlink(r->path);
	free(r->buf);
	free(r);
}

int nvemu_mctp_router_fd(const struct nvemu_mctp_router *r)
{
	return r->epfd;
}

void nvemu_mctp_router_set_local_eid(struct nvemu_mctp_router *r, uint8_t eid)
{
	r->local_eid = eid;
}

unsigned int nvemu_mctp_router_clients(const struct nvemu_mctp_router *r)
{
	return r->nclients;
}

void mctp_router_set_tag_lifetime(struct nvemu_mctp_router *r, uint64_t ns)
{
	r->tag_lifetime_ns = ns;
}

int nvemu_mctp_router_add_ep(struct nvemu_mctp_router *r, struct nvemu_mctp_ep *ep,
			     struct nvemu_error *err)
{
	struct router_ep *re;

	LIST_FOREACH(re, &r->eps, link)
		if (re->ep == ep)
			return nvemu_error_set(err, -EEXIST, "mctp endpoint already routed");
	re = calloc(1, sizeof(*re));
	if (!re)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	re->r = r;
	re->ep = ep;
	re->from_ep.tx_packet = from_ep_tx;
	re->from_ep.ctx = re;
	re->to_ep.tx_packet = to_ep_tx;
	re->to_ep.ctx = re;
	LIST_INSERT_HEAD(&r->eps, re, link);
	return 0;
}

void nvemu_mctp_router_remove_ep(struct nvemu_mctp_router *r, struct nvemu_mctp_ep *ep)
{
	struct router_ep *re;

	LIST_FOREACH(re, &r->eps, link) {
		if (re->ep != ep)
			continue;
		LIST_REMOVE(re, link);
		nvemu_mctp_ep_link_gone(ep, &re->from_ep);
		mctp_reasm_free(&re->reasm);
		free(re);
		return;
	}
}

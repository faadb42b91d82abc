// SPDX-License-Identifier: MIT
/*
 * libnvemu-mctp-preload.so: a userspace AF_MCTP for kernels without MCTP.
 *
 *   LD_PRELOAD=libnvemu-mctp-preload.so NVEMU_MCTP_SOCKET=/path nvme id-ctrl mctp:1,9
 *
 * socket(AF_MCTP, SOCK_DGRAM, 0) returns a unix SOCK_SEQPACKET socket
 * connected to nvemud's MCTP router; sendmsg/recvmsg (and the send/recv
 * variants), bind, setsockopt(SOL_MCTP) and the SIOCMCTPALLOCTAG /
 * SIOCMCTPDROPTAG ioctls are translated to the router's wire messages
 * (struct nvemu_mctp_wire). Every operation is one-way, so the fd stays a
 * real datagram-like fd: poll, select, epoll and O_NONBLOCK work on it
 * unchanged and need no interposing. A preload keeps process-wide state by
 * nature: the table of the fds that are MCTP sockets.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/mctp.h>

#include <nvemu/mctp.h>

#ifndef AF_MCTP
#define AF_MCTP 45
#endif
#ifndef SOL_MCTP
#define SOL_MCTP 285
#endif

#define EXPORT __attribute__((visibility("default")))

struct psock {
	int ctl; /* the router's SEND_RESULTs (HELLO); -1 if it could not be set up */
	bool bound;
	bool addr_ext;
	uint8_t tags[256]; /* preallocated tags per peer EID, a bit each */
	uint8_t *buf;	   /* one wire message */
};

#define WIRE_BUF (sizeof(struct nvemu_mctp_wire) + NVEMU_MCTP_MAX_MSG)

static struct {
	int (*socket)(int, int, int);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*close)(int);
	int (*ioctl)(int, unsigned long, ...);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recv_chk)(int, void *, size_t, size_t, int);
	ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
} real;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct psock **socks;
static size_t nsocks;

static void init(void)
{
	real.socket = dlsym(RTLD_NEXT, "socket");
	real.bind = dlsym(RTLD_NEXT, "bind");
	real.close = dlsym(RTLD_NEXT, "close");
	real.ioctl = dlsym(RTLD_NEXT, "ioctl");
	real.setsockopt = dlsym(RTLD_NEXT, "setsockopt");
	real.sendmsg = dlsym(RTLD_NEXT, "sendmsg");
	real.sendto = dlsym(RTLD_NEXT, "sendto");
	real.send = dlsym(RTLD_NEXT, "send");
	real.recvmsg = dlsym(RTLD_NEXT, "recvmsg");
	real.recvfrom = dlsym(RTLD_NEXT, "recvfrom");
	real.recv = dlsym(RTLD_NEXT, "recv");
	real.recv_chk = dlsym(RTLD_NEXT, "__recv_chk");
	real.recvfrom_chk = dlsym(RTLD_NEXT, "__recvfrom_chk");
}

#define INIT() pthread_once(&init_once, init)

static struct psock *lookup(int fd)
{
	struct psock *ps = NULL;

	if (fd < 0)
		return NULL;
	pthread_mutex_lock(&lock);
	if ((size_t)fd < nsocks)
		ps = socks[fd];
	pthread_mutex_unlock(&lock);
	return ps;
}

static int track(int fd, struct psock *ps)
{
	int ret = 0;

	pthread_mutex_lock(&lock);
	if ((size_t)fd >= nsocks) {
		size_t n = (size_t)fd + 64;
		struct psock **t = realloc(socks, n * sizeof(*t));

		if (!t) {
			ret = -1;
			goto out;
		}
		memset(t + nsocks, 0, (n - nsocks) * sizeof(*t));
		socks = t;
		nsocks = n;
	}
	socks[fd] = ps;
out:
	pthread_mutex_unlock(&lock);
	return ret;
}

static struct psock *untrack(int fd)
{
	struct psock *ps = NULL;

	pthread_mutex_lock(&lock);
	if (fd >= 0 && (size_t)fd < nsocks) {
		ps = socks[fd];
		socks[fd] = NULL;
	}
	pthread_mutex_unlock(&lock);
	return ps;
}

static const char *sock_path(void)
{
	const char *p = getenv("NVEMU_MCTP_SOCKET");

	return p && *p ? p : NVEMU_MCTP_SOCKET_DEFAULT;
}

/*
 * A second channel for the router's verdict on each send: our end of a
 * socketpair, the other end passed to the router. Data keeps arriving on
 * the main socket only, so poll() and recvmsg() on it need nothing else.
 */
static int hello(int fd)
{
	struct nvemu_mctp_wire w = {.op = NVEMU_MCTP_WIRE_HELLO};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct iovec iov = {.iov_base = &w, .iov_len = sizeof(w)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf.buf,
			    .msg_controllen = sizeof(cbuf.buf)};
	struct cmsghdr *cm;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	memset(&cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &sv[1], sizeof(int));
	if (real.sendmsg(fd, &mh, MSG_NOSIGNAL) < 0) {
		real.close(sv[0]);
		real.close(sv[1]);
		return -1;
	}
	real.close(sv[1]);
	{
		struct timeval tv = {.tv_sec = 1};

		real.setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	return sv[0];
}

/*
 * The router's verdict on the tag-owner send just made: 0 or an errno. A
 * router that does not answer within a second (none of this version)
 * counts as sent. The socket has SO_RCVTIMEO: one blocking recv, no poll.
 */
static int send_result(struct psock *ps)
{
	struct nvemu_mctp_wire w;

	if (ps->ctl < 0)
		return 0;
	for (;;) {
		ssize_t n = real.recv(ps->ctl, &w, sizeof(w), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(w))
			return 0;
		if (w.op == NVEMU_MCTP_WIRE_SEND_RESULT)
			return w.net > 4095 ? EIO : (int)w.net;
	}
}

EXPORT int socket(int domain, int type, int protocol)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	const char *path = sock_path();
	struct psock *ps;
	int fd, e;

	INIT();
	if (domain != AF_MCTP)
		return real.socket(domain, type, protocol);
	if (base != SOCK_DGRAM) {
		errno = ESOCKTNOSUPPORT;
		return -1;
	}
	if (protocol) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = real.socket(AF_UNIX, SOCK_SEQPACKET | (type & SOCK_CLOEXEC), 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		static int warned;

		e = errno;
		if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
			fprintf(stderr,
				"nvemu-mctp-preload: no MCTP router at %s: %s "
				"(set NVEMU_MCTP_SOCKET; is nvemud running?)\n",
				path, strerror(e));
		real.close(fd);
		errno = e;
		return -1;
	}
	if ((type & SOCK_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		goto fail;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		goto fail;
	ps->buf = malloc(WIRE_BUF);
	/* NVEMU_MCTP_SEND_RESULT=0: no verdicts (sendmsg never fails with EAGAIN), one wait less. */
	ps->ctl = getenv("NVEMU_MCTP_SEND_RESULT") && !strcmp(getenv("NVEMU_MCTP_SEND_RESULT"), "0") ?
			  -1 :
			  hello(fd);
	if (!ps->buf || track(fd, ps)) {
		if (ps->ctl >= 0)
			real.close(ps->ctl);
		free(ps->buf);
		free(ps);
		goto fail;
	}
	return fd;
fail:
	e = errno ? errno : ENOMEM;
	real.close(fd);
	errno = e;
	return -1;
}

EXPORT int close(int fd)
{
	struct psock *ps;

	INIT();
	ps = untrack(fd);
	if (ps) {
		if (ps->ctl >= 0)
			real.close(ps->ctl);
		free(ps->buf);
		free(ps);
	}
	return real.close(fd);
}

static int wire_send(int fd, const struct nvemu_mctp_wire *w, const struct iovec *iov,
		     size_t iovcnt, int flags)
{
	struct iovec v[1 + 64];
	struct msghdr mh = {.msg_iov = v, .msg_iovlen = 1 + iovcnt};

	if (iovcnt > 64) {
		errno = EMSGSIZE;
		return -1;
	}
	v[0].iov_base = (void *)w;
	v[0].iov_len = sizeof(*w);
	if (iovcnt) /* iov may be NULL then, which memcpy must not see */
		memcpy(v + 1, iov, iovcnt * sizeof(*iov));
	return real.sendmsg(fd, &mh, (flags & MSG_DONTWAIT) | MSG_NOSIGNAL) < 0 ? -1 : 0;
}

EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	const struct sockaddr_mctp *sm = (const struct sockaddr_mctp *)addr;
	struct nvemu_mctp_wire w = {.op = NVEMU_MCTP_WIRE_BIND};
	struct psock *ps;

	INIT();
	ps = lookup(fd);
	if (!ps)
		return real.bind(fd, addr, len);
	if (!addr || len < sizeof(*sm)) {
		errno = EINVAL;
		return -1;
	}
	if (sm->smctp_family != AF_MCTP) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	if (ps->bound) {
		errno = EINVAL;
		return -1;
	}
	w.net = sm->smctp_network;
	w.eid = sm->smctp_addr.s_addr;
	w.type = sm->smctp_type;
	if (wire_send(fd, &w, NULL, 0, 0))
		return -1;
	ps->bound = true;
	return 0;
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	const struct sockaddr_mctp *sm;
	struct nvemu_mctp_wire w = {.op = NVEMU_MCTP_WIRE_SEND};
	struct psock *ps;
	size_t len = 0;
	int e;

	INIT();
	ps = lookup(fd);
	if (!ps)
		return real.sendmsg(fd, msg, flags);
	sm = msg->msg_name;
	if (!sm || msg->msg_namelen < sizeof(*sm) || sm->smctp_family != AF_MCTP ||
	    (sm->smctp_tag & ~(MCTP_TAG_MASK | MCTP_TAG_OWNER | MCTP_TAG_PREALLOC))) {
		errno = EINVAL;
		return -1;
	}
	if ((sm->smctp_tag & MCTP_TAG_PREALLOC) &&
	    (!(sm->smctp_tag & MCTP_TAG_OWNER) ||
	     !(ps->tags[sm->smctp_addr.s_addr] & (1u << (sm->smctp_tag & MCTP_TAG_MASK))))) {
		errno = sm->smctp_tag & MCTP_TAG_OWNER ? ENOENT : EINVAL;
		return -1;
	}
	for (size_t i = 0; i < (size_t)msg->msg_iovlen; i++)
		len += msg->msg_iov[i].iov_len;
	if (len > NVEMU_MCTP_MAX_MSG - 1) {
		errno = EMSGSIZE;
		return -1;
	}
	w.net = sm->smctp_network;
	w.eid = sm->smctp_addr.s_addr;
	w.type = sm->smctp_type;
	w.tag = sm->smctp_tag;
	if (wire_send(fd, &w, msg->msg_iov, msg->msg_iovlen, flags))
		return -1;
	/* As AF_MCTP: EAGAIN when every tag to the peer is taken (only a tag owner needs one). */
	e = sm->smctp_tag & MCTP_TAG_OWNER ? send_result(ps) : 0;
	if (e) {
		errno = e;
		return -1;
	}
	return len;
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
		      socklen_t alen)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {
		.msg_name = (void *)addr, .msg_namelen = alen, .msg_iov = &iov, .msg_iovlen = 1};

	INIT();
	if (!lookup(fd))
		return real.sendto(fd, buf, len, flags, addr, alen);
	return sendmsg(fd, &mh, flags);
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	INIT();
	if (!lookup(fd))
		return real.send(fd, buf, len, flags);
	/* AF_MCTP has no connect(): every send needs an address. */
	errno = EINVAL;
	return -1;
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	const size_t hl = sizeof(struct nvemu_mctp_wire);
	struct nvemu_mctp_wire w;
	struct psock *ps;
	size_t body, off = 0;
	ssize_t n;

	INIT();
	ps = lookup(fd);
	if (!ps)
		return real.recvmsg(fd, msg, flags);
	do {
		n = real.recv(fd, ps->buf, WIRE_BUF, flags & (MSG_DONTWAIT | MSG_PEEK));
		if (n <= 0)
			return n;
	} while ((size_t)n < hl && !(flags & MSG_PEEK));
	if ((size_t)n < hl) {
		errno = EIO;
		return -1;
	}
	memcpy(&w, ps->buf, hl);
	body = n - hl;
	msg->msg_flags = 0;
	for (size_t i = 0; i < (size_t)msg->msg_iovlen && off < body; i++) {
		size_t c = msg->msg_iov[i].iov_len;

		if (c > body - off)
			c = body - off;
		if (!c)
			continue; /* a zero-length entry (a size probe) may have no buffer */
		memcpy(msg->msg_iov[i].iov_base, ps->buf + hl + off, c);
		off += c;
	}
	if (off < body)
		msg->msg_flags |= MSG_TRUNC;
	if (msg->msg_name && msg->msg_namelen) {
		struct sockaddr_mctp sm = {
			.smctp_family = AF_MCTP,
			.smctp_network = w.net,
			.smctp_addr.s_addr = w.eid,
			.smctp_type = w.type,
			.smctp_tag = w.tag,
		};
		size_t c = msg->msg_namelen < sizeof(sm) ? msg->msg_namelen : sizeof(sm);

		memcpy(msg->msg_name, &sm, c);
		msg->msg_namelen = sizeof(sm);
	}
	msg->msg_controllen = 0;
	return (flags & MSG_TRUNC) ? (ssize_t)body : (ssize_t)off;
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
			socklen_t *alen)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_name = addr,
			    .msg_namelen = addr && alen ? *alen : 0,
			    .msg_iov = &iov,
			    .msg_iovlen = 1};
	ssize_t n;

	INIT();
	if (!lookup(fd))
		return real.recvfrom(fd, buf, len, flags, addr, alen);
	n = recvmsg(fd, &mh, flags);
	if (n >= 0 && addr && alen)
		*alen = mh.msg_namelen;
	return n;
}

EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	INIT();
	if (!lookup(fd))
		return real.recv(fd, buf, len, flags);
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	INIT();
	if (!lookup(fd))
		return real.recv_chk(fd, buf, len, buflen, flags);
	if (len > buflen)
		abort();
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
			      struct sockaddr *addr, socklen_t *alen)
{
	INIT();
	if (!lookup(fd))
		return real.recvfrom_chk(fd, buf, len, buflen, flags, addr, alen);
	if (len > buflen)
		abort();
	return recvfrom(fd, buf, len, flags, addr, alen);
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct psock *ps;

	INIT();
	ps = lookup(fd);
	if (!ps || level != SOL_MCTP)
		return real.setsockopt(fd, level, name, val, len);
	if (name != MCTP_OPT_ADDR_EXT) {
		errno = ENOPROTOOPT;
		return -1;
	}
	if (!val || len < sizeof(int)) {
		errno = EINVAL;
		return -1;
	}
	ps->addr_ext = !!*(const int *)val;
	return 0;
}

static int tag_ioctl(int fd, struct psock *ps, unsigned long req, struct mctp_ioc_tag_ctl *ctl)
{
	struct nvemu_mctp_wire w = {.op = NVEMU_MCTP_WIRE_DROPTAG};
	const uint8_t want = MCTP_TAG_OWNER | MCTP_TAG_PREALLOC;
	uint8_t *bits;

	if (!ctl) {
		errno = EFAULT;
		return -1;
	}
	bits = &ps->tags[ctl->peer_addr];
	if (ctl->flags) {
		errno = EINVAL;
		return -1;
	}
	if (req == SIOCMCTPALLOCTAG) {
		if (ctl->tag) {
			errno = EINVAL;
			return -1;
		}
		for (int t = 0; t < 8; t++) {
			if (!(*bits & (1u << t))) {
				*bits |= 1u << t;
				ctl->tag = want | t;
				return 0;
			}
		}
		errno = EBUSY;
		return -1;
	}
	if ((ctl->tag & ~MCTP_TAG_MASK) != want || !(*bits & (1u << (ctl->tag & MCTP_TAG_MASK)))) {
		errno = EINVAL;
		return -1;
	}
	*bits &= ~(1u << (ctl->tag & MCTP_TAG_MASK));
	/* The router frees its bus tag; nothing comes back. */
	w.eid = ctl->peer_addr;
	w.tag = ctl->tag;
	wire_send(fd, &w, NULL, 0, MSG_DONTWAIT);
	return 0;
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	struct psock *ps;
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	INIT();
	ps = lookup(fd);
	if (ps && (req == SIOCMCTPALLOCTAG || req == SIOCMCTPDROPTAG))
		return tag_ioctl(fd, ps, req, arg);
	return real.ioctl(fd, req, arg);
}

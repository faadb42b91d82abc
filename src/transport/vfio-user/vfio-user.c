// SPDX-License-Identifier: MIT
/*
 * vfio-user server (QEMU docs/interop/vfio-user.rst, as QEMU's hw/vfio-user
 * client speaks it): one unix socket, one client at a time, serving the
 * PCIe function of one controller (src/transport/pcie).
 *
 * Guest memory shared by fd (memory-backend-memfd,share=on) is mmap'ed and
 * handed to the controller as pointers; memory mapped without an fd is
 * reached with DMA_READ/DMA_WRITE round trips, during which requests the
 * client sends are queued and handled afterwards, in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <endian.h>
#include <linux/vfio.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>

#include <nvemu/ctrl-state.h>
#include <nvemu/pcie.h>
#include <nvemu/request.h>
#include <nvemu/vfio-user.h>

#include "util/accept-backoff.h"
#include "util/lebuf.h"
#include "util/unix-listen.h"
#include "vfu-proto.h"

#define VFU_MAX_FDS 16		/* what we accept per message; QEMU's limit too */
#define VFU_DEF_XFER (1u << 20)
/*
 * DMA mappings a client may hold, those unmapped while the controller runs
 * (kept until its reset) included: each can be an mmap, and QEMU maps only
 * a handful of RAM regions. Advertised as max_dma_maps.
 */
#define VFU_MAX_DMA_REGIONS 4096
#define VFU_PGSIZE 4096u
/*
 * Requests a client may queue while the server waits for the reply to its
 * own DMA_READ/DMA_WRITE; beyond either limit the client is disconnected.
 */
#define VFU_MAX_DEFERRED 1024
#define VFU_MAX_DEFERRED_BYTES (16u << 20)

struct vfu_msg {
	struct vfu_hdr hdr;
	uint8_t *buf; /* the whole message, header included */
	int fds[VFU_MAX_FDS];
	unsigned nfds;
	STAILQ_ENTRY(vfu_msg) link; /* in the deferred queue */
};

struct vfu_dma {
	uint64_t iova, size;
	void *ptr; /* NULL: not shared, use DMA_READ/DMA_WRITE */
	bool writable;
	/* Kept with the mapping so a live update can hand it on (-1: none). */
	int fd;
	uint64_t offset;
};

struct nvemu_vfu_server {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct nvemu_vfu_params p;
	struct nvemu_ctrl *ctrl;
	struct nvemu_pcie_ctrl *pc;
	int epfd, listen_fd, client_fd, timer_fd;

	bool negotiated;
	bool dead; /* client gone or protocol broken; torn down at top level */
	unsigned depth; /* nesting of handlers (DMA round trips) */
	uint32_t client_max_xfer;
	uint16_t next_id;

	/* receive state */
	struct vfu_msg *rx;
	size_t rx_got;
	STAILQ_HEAD(, vfu_msg) deferred;
	unsigned nr_deferred;
	size_t deferred_bytes;

	/* accept ran out of descriptors: the listener is out of epfd while it rests */
	struct nvemu_accept_backoff accept;

	struct vfu_dma *dma; /* sorted by iova, non-overlapping */
	unsigned nr_dma, dma_cap;
	/* Mappings unmapped while the controller ran: kept until its next reset. */
	struct vfu_dma *zombie;
	unsigned nr_zombie, zombie_cap;

	/* BAR0 doorbell pages the client may mmap: fd offset = BAR0 offset */
	int db_fd;
	void *db_mem;
	size_t db_len;

	int *msix_fd;
	unsigned nr_msix;
	bool msix_on;
	int intx_fd;
	bool intx_masked;

	bool released; /* handed to another process: the socket file stays */
	uint8_t *pcie_state; /* restored, loaded by nvemu_vfu_server_restore_queues() */
	size_t pcie_state_len;

	struct nvemu_vfu_stats st;
};

static void vlog(struct nvemu_vfu_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void vlog(struct nvemu_vfu_server *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->p.verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "vfio-user %s: ", s->path);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Logged whatever the verbosity: the operator has to act on these. */
static void vwarn(struct nvemu_vfu_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void vwarn(struct nvemu_vfu_server *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "vfio-user %s: ", s->path);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, for poll(); 0 once it passed. */
static int ms_left(uint64_t deadline)
{
	uint64_t now = now_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

void nvemu_vfu_params_init(struct nvemu_vfu_params *p)
{
	memset(p, 0, sizeof(*p));
	p->dma_timeout_ms = 5000;
	p->max_data_xfer = VFU_DEF_XFER;
	p->map_doorbells = true;
}

/* ---- messages */

static void msg_free(struct vfu_msg *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	free(m->buf);
	free(m);
}

static int take_fds(struct vfu_msg *m, struct msghdr *mh)
{
	int bad = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[VFU_MAX_FDS * 2];

		if (n > VFU_MAX_FDS * 2)
			n = VFU_MAX_FDS * 2;
		memcpy(fds, CMSG_DATA(c), n * sizeof(int));
		for (unsigned i = 0; i < n; i++) {
			if (m->nfds < VFU_MAX_FDS) {
				m->fds[m->nfds++] = fds[i];
			} else {
				close(fds[i]);
				bad = -EMSGSIZE;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		bad = -EMSGSIZE;
	return bad;
}

/*
 * Read what is available of the next message. 1: *out holds a complete
 * message; 0: would block; <0: the connection is unusable.
 */
static int recv_msg(struct nvemu_vfu_server *s, struct vfu_msg **out)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VFU_MAX_FDS * 2)];
		struct cmsghdr align;
	} cbuf;

	for (;;) {
		struct vfu_msg *m = s->rx;
		struct iovec iov;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		size_t want;
		ssize_t n;

		if (!m) {
			m = calloc(1, sizeof(*m));
			if (!m)
				return -ENOMEM;
			s->rx = m;
			s->rx_got = 0;
		}
		if (s->rx_got < sizeof(m->hdr)) {
			iov.iov_base = (uint8_t *)&m->hdr + s->rx_got;
			want = sizeof(m->hdr) - s->rx_got;
		} else {
			iov.iov_base = m->buf + s->rx_got;
			want = m->hdr.size - s->rx_got;
		}
		iov.iov_len = want;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		n = recvmsg(s->client_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		if (take_fds(m, &mh))
			return -EMSGSIZE;
		s->rx_got += n;
		if (s->rx_got == sizeof(m->hdr)) {
			if (m->hdr.size < sizeof(m->hdr) ||
			    m->hdr.size > sizeof(m->hdr) + 64 + s->p.max_data_xfer)
				return -EMSGSIZE;
			m->buf = malloc(m->hdr.size);
			if (!m->buf)
				return -ENOMEM;
			memcpy(m->buf, &m->hdr, sizeof(m->hdr));
		}
		if (s->rx_got >= sizeof(m->hdr) && s->rx_got == m->hdr.size) {
			s->rx = NULL;
			s->rx_got = 0;
			*out = m;
			return 1;
		}
	}
}

static int send_all(struct nvemu_vfu_server *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	/* One deadline for the whole message: a trickling reader cannot stretch it. */
	uint64_t deadline = now_ms() + s->p.dma_timeout_ms;

	if (s->client_fd < 0 || s->dead)
		return -ENOTCONN;
	while (len) {
		ssize_t n = send(s->client_fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd pfd = { .fd = s->client_fd, .events = POLLOUT };

				if (!ms_left(deadline) || poll(&pfd, 1, ms_left(deadline)) <= 0) {
					vlog(s, "client does not read: disconnecting it");
					s->dead = true;
					return -ETIMEDOUT;
				}
				continue;
			}
			s->dead = true;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* Reply to m with body (which follows the header); nothing for NO_REPLY. */
static int reply(struct nvemu_vfu_server *s, const struct vfu_msg *m, const void *body,
		 size_t len)
{
	uint8_t stackbuf[256];
	uint8_t *buf = stackbuf;
	struct vfu_hdr h = {
		.id = m->hdr.id,
		.command = m->hdr.command,
		.size = (uint32_t)(sizeof(h) + len),
		.flags = VFU_REPLY,
	};
	int ret;

	if (m->hdr.flags & VFU_NO_REPLY)
		return 0;
	if (sizeof(h) + len > sizeof(stackbuf)) {
		buf = malloc(sizeof(h) + len);
		if (!buf)
			return -ENOMEM;
	}
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), body, len);
	ret = send_all(s, buf, sizeof(h) + len);
	if (buf != stackbuf)
		free(buf);
	return ret;
}

static int reply_err(struct nvemu_vfu_server *s, const struct vfu_msg *m, int err)
{
	struct vfu_hdr h = {
		.id = m->hdr.id,
		.command = m->hdr.command,
		.size = sizeof(h),
		.flags = VFU_REPLY | VFU_ERROR,
		.error = (uint32_t)err,
	};

	s->st.errors++;
	vlog(s, "command %u: error %s", m->hdr.command, strerror(err));
	if (m->hdr.flags & VFU_NO_REPLY)
		return 0;
	return send_all(s, &h, sizeof(h));
}

/* Queue a request for later; a client that floods the queue is cut off. */
static int defer(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	if (s->nr_deferred >= VFU_MAX_DEFERRED ||
	    s->deferred_bytes + m->hdr.size > VFU_MAX_DEFERRED_BYTES) {
		vwarn(s,
		      "more than %u requests or %u bytes queued during a DMA round trip: "
		      "disconnecting the client",
		      VFU_MAX_DEFERRED, VFU_MAX_DEFERRED_BYTES);
		msg_free(m);
		return -ENOBUFS;
	}
	s->nr_deferred++;
	s->deferred_bytes += m->hdr.size;
	STAILQ_INSERT_TAIL(&s->deferred, m, link);
	return 0;
}

static struct vfu_msg *undefer(struct nvemu_vfu_server *s)
{
	struct vfu_msg *m = STAILQ_FIRST(&s->deferred);

	if (!m)
		return NULL;
	STAILQ_REMOVE_HEAD(&s->deferred, link);
	s->nr_deferred--;
	s->deferred_bytes -= m->hdr.size;
	return m;
}

/*
 * Send a request of ours and wait for its reply; requests that arrive in the
 * meantime are deferred. Returns the reply (caller frees) or NULL. The wait
 * is bounded as a whole, however much else the client sends meanwhile.
 */
static struct vfu_msg *request(struct nvemu_vfu_server *s, const void *buf, size_t len,
			       uint16_t id)
{
	uint64_t deadline = now_ms() + s->p.dma_timeout_ms;

	if (send_all(s, buf, len))
		return NULL;
	for (;;) {
		struct vfu_msg *m = NULL;
		int r = recv_msg(s, &m);

		if (r < 0) {
			s->dead = true;
			return NULL;
		}
		if (r == 0) {
			struct pollfd pfd = { .fd = s->client_fd, .events = POLLIN };

			r = ms_left(deadline) ? poll(&pfd, 1, ms_left(deadline)) : 0;
			if (r <= 0) {
				vlog(s, "no reply to DMA request %u", id);
				s->dead = true;
				return NULL;
			}
			continue;
		}
		if ((m->hdr.flags & VFU_TYPE_MASK) == VFU_REPLY) {
			if (m->hdr.id == id)
				return m;
			vlog(s, "unexpected reply id %u", m->hdr.id);
			msg_free(m);
		} else if (defer(s, m)) {
			s->dead = true;
			return NULL;
		}
		if (!ms_left(deadline)) {
			vlog(s, "no reply to DMA request %u", id);
			s->dead = true;
			return NULL;
		}
	}
}

/* ---- guest memory */

static struct vfu_dma *dma_find(struct nvemu_vfu_server *s, uint64_t addr)
{
	unsigned lo = 0, hi = s->nr_dma;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		struct vfu_dma *d = &s->dma[mid];

		if (addr < d->iova)
			hi = mid;
		else if (addr - d->iova >= d->size)
			lo = mid + 1;
		else
			return d;
	}
	return NULL;
}

static void *host_map(void *ctx, uint64_t addr, size_t len)
{
	struct nvemu_vfu_server *s = ctx;
	struct vfu_dma *d = dma_find(s, addr);

	if (!d || !d->ptr || !d->writable || len > d->size - (addr - d->iova))
		return NULL;
	return (uint8_t *)d->ptr + (addr - d->iova);
}

static int dma_msg(struct nvemu_vfu_server *s, bool write, uint64_t addr, void *buf,
		   uint32_t len)
{
	size_t size = VFU_DMARW_DATA + (write ? len : 0);
	struct vfu_dma_rw *rq;
	struct vfu_msg *rp;
	uint16_t id = s->next_id++;
	int ret = 0;

	if (size < sizeof(*rq))
		size = sizeof(*rq);
	rq = calloc(1, size);
	if (!rq)
		return -ENOMEM;
	rq->hdr.id = id;
	rq->hdr.command = write ? VFU_CMD_DMA_WRITE : VFU_CMD_DMA_READ;
	rq->hdr.size = (uint32_t)size;
	rq->hdr.flags = VFU_REQUEST;
	rq->offset = addr;
	rq->count = len;
	if (write)
		memcpy((uint8_t *)rq + VFU_DMARW_DATA, buf, len);
	s->st.dma_msgs++;
	rp = request(s, rq, size, id);
	free(rq);
	if (!rp)
		return -EIO;
	if (rp->hdr.flags & VFU_ERROR) {
		ret = -(int)(rp->hdr.error ? rp->hdr.error : EIO);
	} else if (!write) {
		if (rp->hdr.size < VFU_DMARW_DATA + len)
			ret = -EIO;
		else
			memcpy(buf, rp->buf + VFU_DMARW_DATA, len);
	}
	msg_free(rp);
	return ret;
}

static int host_rw(struct nvemu_vfu_server *s, bool write, uint64_t addr, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		struct vfu_dma *d = dma_find(s, addr);
		uint64_t n;
		int r;

		if (!d || (write && !d->writable))
			return -EFAULT;
		n = d->size - (addr - d->iova);
		if (n > len)
			n = len;
		if (d->ptr) {
			uint8_t *g = (uint8_t *)d->ptr + (addr - d->iova);

			if (write)
				memcpy(g, p, n);
			else
				memcpy(p, g, n);
		} else {
			uint32_t max = s->client_max_xfer < s->p.max_data_xfer ?
				       s->client_max_xfer : s->p.max_data_xfer;

			if (n > max)
				n = max;
			r = dma_msg(s, write, addr, p, (uint32_t)n);
			if (r)
				return r;
		}
		addr += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int host_dma_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return host_rw(ctx, false, addr, buf, len);
}

static int host_dma_write(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	return host_rw(ctx, true, addr, (void *)buf, len);
}

static void signal_fd(struct nvemu_vfu_server *s, int fd)
{
	uint64_t one = 1;

	if (fd < 0)
		return;
	if (write(fd, &one, sizeof(one)) == sizeof(one))
		s->st.irqs++;
}

static void host_msix_notify(void *ctx, uint16_t vector)
{
	struct nvemu_vfu_server *s = ctx;

	if (s->msix_on && vector < s->nr_msix)
		signal_fd(s, s->msix_fd[vector]);
}

/* INTx is automasked: one signal per assertion until the client unmasks. */
static void host_intx_set(void *ctx, bool asserted)
{
	struct nvemu_vfu_server *s = ctx;

	if (asserted && !s->intx_masked && s->intx_fd >= 0) {
		s->intx_masked = true;
		signal_fd(s, s->intx_fd);
	}
}

static const struct nvemu_pci_host_ops vfu_host_ops = {
	.dma_read = host_dma_read,
	.dma_write = host_dma_write,
	.map = host_map,
	.msix_notify = host_msix_notify,
	.intx_set = host_intx_set,
};

static void dma_unmap_one(struct vfu_dma *d)
{
	if (d->ptr)
		munmap(d->ptr, d->size);
	d->ptr = NULL;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static void zombies_free(struct nvemu_vfu_server *s)
{
	for (unsigned i = 0; i < s->nr_zombie; i++)
		dma_unmap_one(&s->zombie[i]);
	s->nr_zombie = 0;
}

/*
 * May the controller hold pointers into guest memory? Queues while it is
 * enabled, data buffers while commands are in flight (a reset does not end
 * those a backend or a suspend still holds).
 */
static bool dma_in_use(struct nvemu_vfu_server *s)
{
	return (nvemu_ctrl_get_cc(s->ctrl) & 1) || nvemu_pcie_ctrl_busy(s->pc);
}

/* Unmap what was kept for the controller once it can no longer reach it. */
static void zombies_reap(struct nvemu_vfu_server *s)
{
	if (s->nr_zombie && !dma_in_use(s))
		zombies_free(s);
}

/* Drop a mapping; the controller may still hold pointers into it. */
static void dma_retire(struct nvemu_vfu_server *s, struct vfu_dma *d)
{
	if (d->ptr && dma_in_use(s)) {
		if (s->nr_zombie == s->zombie_cap) {
			unsigned cap = s->zombie_cap ? s->zombie_cap * 2 : 8;
			struct vfu_dma *z = realloc(s->zombie, cap * sizeof(*z));

			if (!z) {
				dma_unmap_one(d);
				return;
			}
			s->zombie = z;
			s->zombie_cap = cap;
		}
		/* A zombie is never handed over (a live update waits for none): its fd can go. */
		if (d->fd >= 0)
			close(d->fd);
		d->fd = -1;
		s->zombie[s->nr_zombie++] = *d;
		d->ptr = NULL;
		return;
	}
	dma_unmap_one(d);
}

/* The client is gone: every mapping goes, as soon as nothing can reach it. */
static void dma_clear(struct nvemu_vfu_server *s)
{
	for (unsigned i = 0; i < s->nr_dma; i++)
		dma_retire(s, &s->dma[i]);
	s->nr_dma = 0;
	zombies_reap(s);
}

static void irqs_clear(struct nvemu_vfu_server *s)
{
	for (unsigned i = 0; i < s->nr_msix; i++) {
		if (s->msix_fd[i] >= 0)
			close(s->msix_fd[i]);
		s->msix_fd[i] = -1;
	}
	s->msix_on = false;
	if (s->intx_fd >= 0)
		close(s->intx_fd);
	s->intx_fd = -1;
	s->intx_masked = false;
	nvemu_pcie_msix_ext_enable(s->pc, false);
}

/* ---- command handlers */

static int parse_cap_u64(const char *json, const char *key, uint64_t *val)
{
	char pat[64];
	const char *p;
	char *end;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(json, pat);
	if (!p)
		return -ENOENT;
	p += strlen(pat);
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p++ != ':')
		return -EINVAL;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	*val = strtoull(p, &end, 10);
	return errno ? -errno : 0;
}

static int cmd_version(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	size_t body = m->hdr.size - sizeof(m->hdr);
	const struct vfu_version *v = (const void *)m->buf;
	char caps[256];
	uint8_t out[sizeof(struct vfu_version) - sizeof(struct vfu_hdr) + sizeof(caps)];
	struct vfu_version rv = { .major = VFU_MAJOR, .minor = VFU_MINOR };
	uint64_t val;
	int n;

	if (body < 4 || v->major != VFU_MAJOR)
		return reply_err(s, m, ENOTSUP);
	s->client_max_xfer = VFU_DEF_XFER;
	if (body > 4) {
		const char *json = (const char *)v->caps;
		size_t jlen = body - 4;

		if (json[jlen - 1] != '\0')
			return reply_err(s, m, EINVAL);
		if (!parse_cap_u64(json, "max_data_xfer_size", &val) && val >= 4096)
			s->client_max_xfer = val > UINT32_MAX ? UINT32_MAX : (uint32_t)val;
	}
	n = snprintf(caps, sizeof(caps),
		     "{\"capabilities\":{\"max_msg_fds\":%u,\"max_data_xfer_size\":%u,"
		     "\"pgsizes\":%u,\"max_dma_maps\":%u}}",
		     VFU_MAX_FDS, s->p.max_data_xfer, VFU_PGSIZE, VFU_MAX_DMA_REGIONS);
	memcpy(out, &rv.major, 2);
	memcpy(out + 2, &rv.minor, 2);
	memcpy(out + 4, caps, n + 1);
	s->negotiated = true;
	return reply(s, m, out, 4 + n + 1);
}

/* Index of the first mapping at or above iova. */
static unsigned dma_insert_pos(const struct nvemu_vfu_server *s, uint64_t iova)
{
	unsigned lo = 0, hi = s->nr_dma;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (s->dma[mid].iova < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int cmd_dma_map(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	const struct vfu_dma_map *rq = (const void *)m->buf;
	struct vfu_dma d = { .fd = -1 };
	unsigned i;

	if (m->hdr.size < sizeof(*rq) || m->nfds > 1)
		return reply_err(s, m, EINVAL);
	if (!rq->size || rq->iova + rq->size < rq->iova ||
	    !(rq->flags & VFIO_DMA_MAP_FLAG_READ))
		return reply_err(s, m, EINVAL);
	if (s->nr_dma + s->nr_zombie >= VFU_MAX_DMA_REGIONS) {
		vlog(s, "dma map: %u mappings held (%u awaiting a reset): the limit",
		     s->nr_dma + s->nr_zombie, s->nr_zombie);
		return reply_err(s, m, ENOSPC);
	}
	/* Sorted and disjoint: only the neighbours of the insertion point can overlap. */
	i = dma_insert_pos(s, rq->iova);
	if ((i < s->nr_dma && s->dma[i].iova < rq->iova + rq->size) ||
	    (i > 0 && rq->iova - s->dma[i - 1].iova < s->dma[i - 1].size))
		return reply_err(s, m, EEXIST);
	d.iova = rq->iova;
	d.size = rq->size;
	d.writable = rq->flags & VFIO_DMA_MAP_FLAG_WRITE;
	if (m->nfds == 1) {
		int prot = PROT_READ | (d.writable ? PROT_WRITE : 0);
		void *p;

		if ((rq->offset | rq->size) & (VFU_PGSIZE - 1))
			return reply_err(s, m, EINVAL);
		p = mmap(NULL, rq->size, prot, MAP_SHARED, m->fds[0], (off_t)rq->offset);
		if (p == MAP_FAILED)
			return reply_err(s, m, errno);
		d.ptr = p;
		d.fd = m->fds[0];
		d.offset = rq->offset;
		m->fds[0] = -1;
	}
	if (s->nr_dma == s->dma_cap) {
		unsigned cap = s->dma_cap ? s->dma_cap * 2 : 16;
		struct vfu_dma *nd = realloc(s->dma, cap * sizeof(*nd));

		if (!nd) {
			dma_unmap_one(&d);
			return reply_err(s, m, ENOMEM);
		}
		s->dma = nd;
		s->dma_cap = cap;
	}
	i = dma_insert_pos(s, d.iova);
	memmove(&s->dma[i + 1], &s->dma[i], (s->nr_dma - i) * sizeof(d));
	s->dma[i] = d;
	s->nr_dma++;
	s->st.dma_maps++;
	vlog(s, "dma map %#llx+%#llx %s", (unsigned long long)d.iova,
	     (unsigned long long)d.size, d.ptr ? "mmap" : "msg");
	return reply(s, m, NULL, 0);
}

static int cmd_dma_unmap(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	const struct vfu_dma_unmap *rq = (const void *)m->buf;
	uint64_t end;
	unsigned i, j;

	if (m->hdr.size < sizeof(*rq))
		return reply_err(s, m, EINVAL);
	if (rq->flags & VFIO_DMA_UNMAP_FLAG_ALL) {
		for (i = 0; i < s->nr_dma; i++)
			dma_retire(s, &s->dma[i]);
		s->nr_dma = 0;
		s->st.dma_unmaps++;
		return reply(s, m, NULL, 0);
	}
	if (rq->flags || !rq->size || rq->iova + rq->size < rq->iova)
		return reply_err(s, m, EINVAL);
	end = rq->iova + rq->size;
	/* a mapping cut in two is refused, as the kernel's type1 IOMMU does */
	for (i = 0; i < s->nr_dma; i++) {
		struct vfu_dma *d = &s->dma[i];
		bool overlap = d->iova < end && rq->iova < d->iova + d->size;
		bool inside = d->iova >= rq->iova && d->iova + d->size <= end;

		if (overlap && !inside)
			return reply_err(s, m, EINVAL);
	}
	for (i = j = 0; i < s->nr_dma; i++) {
		struct vfu_dma *d = &s->dma[i];

		if (d->iova >= rq->iova && d->iova + d->size <= end) {
			dma_retire(s, d);
			continue;
		}
		s->dma[j++] = *d;
	}
	s->nr_dma = j;
	s->st.dma_unmaps++;
	return reply(s, m, NULL, 0);
}

static int cmd_device_info(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	struct vfio_device_info info = {
		.argsz = sizeof(info),
		.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
		.num_regions = VFIO_PCI_NUM_REGIONS,
		.num_irqs = VFIO_PCI_NUM_IRQS,
	};
	const struct vfio_device_info *rq = (const void *)(m->buf + sizeof(m->hdr));

	if (m->hdr.size < sizeof(m->hdr) + 16 || rq->argsz < 16)
		return reply_err(s, m, EINVAL);
	return reply(s, m, &info, 16);
}

/*
 * The doorbell pages in a memfd of this connection (a client that goes away
 * keeps its mapping, so the next one gets fresh memory). The fd covers
 * BAR0 up to the end of the doorbells so its offsets are BAR0 offsets.
 */
static int db_mem_get(struct nvemu_vfu_server *s)
{
	size_t len = NVEMU_PCIE_DB_OFF + nvemu_pcie_db_area_size(s->pc);
	void *p;
	int fd;

	if (s->db_fd >= 0)
		return 0;
	fd = memfd_create("nvemu-doorbells", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len)) {
		close(fd);
		return -errno;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return -errno;
	}
	s->db_fd = fd;
	s->db_mem = p;
	s->db_len = len;
	nvemu_pcie_db_attach(s->pc, (uint8_t *)p + NVEMU_PCIE_DB_OFF);
	return 0;
}

static void db_mem_put(struct nvemu_vfu_server *s)
{
	if (s->db_fd < 0)
		return;
	nvemu_pcie_db_attach(s->pc, NULL);
	munmap(s->db_mem, s->db_len);
	close(s->db_fd);
	s->db_fd = -1;
	s->db_mem = NULL;
}

/* A reply carrying one descriptor (SCM_RIGHTS with its first byte). */
static int reply_fd(struct nvemu_vfu_server *s, const struct vfu_msg *m, const void *body,
		    size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct vfu_hdr h = {
		.id = m->hdr.id,
		.command = m->hdr.command,
		.size = (uint32_t)(sizeof(h) + len),
		.flags = VFU_REPLY,
	};
	uint8_t buf[256];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(h) + len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	ssize_t n;

	if (m->hdr.flags & VFU_NO_REPLY)
		return 0;
	if (sizeof(h) + len > sizeof(buf))
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	memset(&u, 0, sizeof(u));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	do
		n = sendmsg(s->client_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		/* Nothing went out: wait for room like any reply, then send it whole. */
		struct pollfd pfd = { .fd = s->client_fd, .events = POLLOUT };

		if (poll(&pfd, 1, (int)s->p.dma_timeout_ms) <= 0) {
			s->dead = true;
			return -ETIMEDOUT;
		}
		do
			n = sendmsg(s->client_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
	}
	if (n < 0) {
		s->dead = true;
		return -errno;
	}
	/* The descriptor went with the first byte; the rest is plain data. */
	return send_all(s, buf + n, sizeof(h) + len - (size_t)n);
}

static int cmd_region_info(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	const struct vfio_region_info *rq = (const void *)(m->buf + sizeof(m->hdr));
	struct {
		struct vfio_region_info info;
		struct vfu_sparse_mmap1 sparse;
	} r;
	struct vfio_region_info *info = &r.info;

	if (m->hdr.size < sizeof(m->hdr) + sizeof(*info) || rq->argsz < sizeof(*info))
		return reply_err(s, m, EINVAL);
	if (rq->index >= VFIO_PCI_NUM_REGIONS)
		return reply_err(s, m, EINVAL);
	memset(&r, 0, sizeof(r));
	info->argsz = sizeof(*info);
	info->index = rq->index;
	if (rq->index == VFIO_PCI_CONFIG_REGION_INDEX) {
		info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		info->size = NVEMU_PCIE_CFG_SIZE;
	} else if (rq->index == VFIO_PCI_BAR0_REGION_INDEX) {
		int ret;

		/* registers stay messages; the doorbell pages may be mapped */
		info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		info->size = NVEMU_PCIE_BAR0_SIZE;
		info->argsz = sizeof(r);
		if (!s->p.map_doorbells) {
			info->argsz = sizeof(*info);
			return reply(s, m, info, sizeof(*info));
		}
		/* Too small for the capability: say how much, offer no mapping (as VFIO does). */
		if (rq->argsz < sizeof(r))
			return reply(s, m, info, sizeof(*info));
		ret = db_mem_get(s);
		if (ret) {
			vlog(s, "doorbell memory: %s; doorbells stay messages", strerror(-ret));
			info->argsz = sizeof(*info);
			return reply(s, m, info, sizeof(*info));
		}
		info->flags |= VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS;
		info->cap_offset = sizeof(*info);
		info->offset = 0; /* into the fd sent along */
		r.sparse.header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
		r.sparse.header.version = 1;
		r.sparse.nr_areas = 1;
		r.sparse.area.offset = NVEMU_PCIE_DB_OFF;
		r.sparse.area.size = nvemu_pcie_db_area_size(s->pc);
		return reply_fd(s, m, &r, sizeof(r), s->db_fd);
	}
	return reply(s, m, info, sizeof(*info));
}

static int cmd_irq_info(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	const struct vfio_irq_info *rq = (const void *)(m->buf + sizeof(m->hdr));
	struct vfio_irq_info info;

	if (m->hdr.size < sizeof(m->hdr) + sizeof(info) || rq->argsz < sizeof(info))
		return reply_err(s, m, EINVAL);
	if (rq->index >= VFIO_PCI_NUM_IRQS)
		return reply_err(s, m, EINVAL);
	memset(&info, 0, sizeof(info));
	info.argsz = sizeof(info);
	info.index = rq->index;
	info.flags = VFIO_IRQ_INFO_EVENTFD;
	switch (rq->index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		info.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
		info.count = 1;
		break;
	case VFIO_PCI_MSIX_IRQ_INDEX:
		info.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_NORESIZE;
		info.count = s->nr_msix;
		break;
	default: /* no MSI capability, no error/request interrupts */
		info.count = 0;
		break;
	}
	return reply(s, m, &info, sizeof(info));
}

static void intx_unmask(struct nvemu_vfu_server *s)
{
	s->intx_masked = false;
	if (nvemu_pcie_intx_level(s->pc))
		host_intx_set(s, true);
}

/* One SET_IRQS request: the fields of vfio_irq_set taken apart, after checking. */
struct irq_set {
	uint32_t index, start, count;
	uint32_t data;	      /* VFIO_IRQ_SET_DATA_* */
	uint32_t action;      /* VFIO_IRQ_SET_ACTION_* */
	const uint8_t *bools; /* DATA_BOOL: one byte per vector */
};

/* 0, or the errno to refuse the request with. */
static int set_irqs_parse(struct nvemu_vfu_server *s, const struct vfu_msg *m, struct irq_set *is)
{
	const struct vfio_irq_set *rq = (const void *)(m->buf + sizeof(m->hdr));
	size_t body = m->hdr.size - sizeof(m->hdr);
	uint32_t max;

	if (body < sizeof(*rq) || rq->argsz < sizeof(*rq))
		return EINVAL;
	is->data = rq->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
	is->action = rq->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
	if (__builtin_popcount(is->data) != 1 || __builtin_popcount(is->action) != 1 ||
	    (rq->flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)))
		return EINVAL;
	switch (rq->index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		max = 1;
		break;
	case VFIO_PCI_MSIX_IRQ_INDEX:
		max = s->nr_msix;
		break;
	default:
		max = 0;
		break;
	}
	if (rq->start > max || rq->count > max - rq->start)
		return EINVAL;
	if (is->data == VFIO_IRQ_SET_DATA_EVENTFD) {
		/* QEMU sends no fds for a run of "no eventfd" (-1) vectors */
		if (is->action != VFIO_IRQ_SET_ACTION_TRIGGER || (m->nfds && m->nfds != rq->count))
			return EINVAL;
	} else if (m->nfds) {
		return EINVAL;
	}
	if (is->data == VFIO_IRQ_SET_DATA_BOOL && body < sizeof(*rq) + rq->count)
		return EINVAL;
	is->index = rq->index;
	is->start = rq->start;
	is->count = rq->count;
	is->bools = m->buf + sizeof(m->hdr) + sizeof(*rq);
	return 0;
}

/* Does the request act on vector i of its range (DATA_NONE: all; DATA_BOOL: those set)? */
static bool irq_set_on(const struct irq_set *is, uint32_t i)
{
	return is->data == VFIO_IRQ_SET_DATA_NONE || is->bools[i];
}

static void set_irqs_intx(struct nvemu_vfu_server *s, struct vfu_msg *m, const struct irq_set *is)
{
	if (is->action != VFIO_IRQ_SET_ACTION_TRIGGER) {
		if (is->count && irq_set_on(is, 0)) {
			if (is->action == VFIO_IRQ_SET_ACTION_MASK)
				s->intx_masked = true;
			else if (is->action == VFIO_IRQ_SET_ACTION_UNMASK)
				intx_unmask(s);
		}
		return;
	}
	if (is->data == VFIO_IRQ_SET_DATA_EVENTFD) {
		if (s->intx_fd >= 0)
			close(s->intx_fd);
		s->intx_fd = -1;
		if (m->nfds) {
			s->intx_fd = m->fds[0];
			m->fds[0] = -1;
		}
		s->intx_masked = false;
		if (s->intx_fd >= 0 && nvemu_pcie_intx_level(s->pc))
			host_intx_set(s, true);
	} else if (is->data == VFIO_IRQ_SET_DATA_NONE && is->count == 0) {
		if (s->intx_fd >= 0)
			close(s->intx_fd);
		s->intx_fd = -1;
	} else if (is->count && irq_set_on(is, 0)) {
		signal_fd(s, s->intx_fd);
	}
}

/* ACTION_TRIGGER on MSI-X: tear down, attach eventfds, or fire vectors. */
static void set_irqs_msix_trigger(struct nvemu_vfu_server *s, struct vfu_msg *m,
				  const struct irq_set *is)
{
	uint32_t i;

	if (is->data == VFIO_IRQ_SET_DATA_NONE && is->count == 0) {
		for (i = 0; i < s->nr_msix; i++) {
			if (s->msix_fd[i] >= 0)
				close(s->msix_fd[i]);
			s->msix_fd[i] = -1;
		}
		s->msix_on = false;
		nvemu_pcie_msix_ext_enable(s->pc, false);
	} else if (is->data == VFIO_IRQ_SET_DATA_EVENTFD) {
		for (i = 0; i < is->count; i++) {
			int *slot = &s->msix_fd[is->start + i];

			if (*slot >= 0)
				close(*slot);
			*slot = -1;
			if (m->nfds) {
				*slot = m->fds[i];
				m->fds[i] = -1;
			}
		}
		if (is->count && !s->msix_on) {
			s->msix_on = true;
			nvemu_pcie_msix_ext_enable(s->pc, true);
		}
	} else {
		for (i = 0; i < is->count; i++)
			if (irq_set_on(is, i))
				signal_fd(s, s->msix_fd[is->start + i]);
	}
}

static int cmd_set_irqs(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	struct irq_set is;
	int err = set_irqs_parse(s, m, &is);

	if (err)
		return reply_err(s, m, err);
	switch (is.index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		set_irqs_intx(s, m, &is);
		break;
	case VFIO_PCI_MSIX_IRQ_INDEX:
		if (is.action == VFIO_IRQ_SET_ACTION_TRIGGER) {
			set_irqs_msix_trigger(s, m, &is);
			break;
		}
		/* MASK and UNMASK: the per-vector mask the client keeps outside the table */
		for (uint32_t i = 0; i < is.count; i++)
			if (irq_set_on(&is, i))
				nvemu_pcie_msix_ext_mask(s->pc, (uint16_t)(is.start + i),
							 is.action == VFIO_IRQ_SET_ACTION_MASK);
		break;
	default: /* no MSI, error or request interrupts: only an empty range */
		if (is.count)
			return reply_err(s, m, EINVAL);
		break;
	}
	return reply(s, m, NULL, 0);
}

/* Split an access into the naturally aligned sizes the register model takes. */
static unsigned access_size(uint64_t off, size_t left, bool cfg)
{
	if (!cfg && left >= 8 && !(off & 7))
		return 8;
	if (left >= 4 && !(off & 3))
		return 4;
	if (left >= 2 && !(off & 1))
		return 2;
	return 1;
}

static int region_access(struct nvemu_vfu_server *s, uint32_t region, uint64_t off,
			 uint8_t *data, uint32_t count, bool write)
{
	bool cfg;
	uint64_t limit;

	if (region == VFIO_PCI_CONFIG_REGION_INDEX) {
		cfg = true;
		limit = NVEMU_PCIE_CFG_SIZE;
	} else if (region == VFIO_PCI_BAR0_REGION_INDEX) {
		cfg = false;
		limit = NVEMU_PCIE_BAR0_SIZE;
	} else {
		return -EINVAL;
	}
	if (!count || off >= limit || count > limit - off)
		return -EINVAL;
	while (count) {
		unsigned sz = access_size(off, count, cfg);
		uint64_t v = 0;

		if (write) {
			memcpy(&v, data, sz);
			v = le64toh(v);
			if (cfg)
				nvemu_pcie_cfg_write(s->pc, (uint32_t)off, sz, (uint32_t)v);
			else
				nvemu_pcie_bar0_write(s->pc, off, sz, v);
		} else {
			v = cfg ? nvemu_pcie_cfg_read(s->pc, (uint32_t)off, sz) :
				  nvemu_pcie_bar0_read(s->pc, off, sz);
			v = htole64(v);
			memcpy(data, &v, sz);
		}
		off += sz;
		data += sz;
		count -= sz;
	}
	return 0;
}

static int cmd_region_rw(struct nvemu_vfu_server *s, struct vfu_msg *m, bool write)
{
	struct vfu_region_rw *rq = (void *)m->buf;
	int r;

	if (m->hdr.size < sizeof(*rq) || rq->count > s->p.max_data_xfer)
		return reply_err(s, m, EINVAL);
	if (write) {
		if (m->hdr.size - sizeof(*rq) < rq->count)
			return reply_err(s, m, EINVAL);
		s->st.region_writes++;
		r = region_access(s, rq->region, rq->offset, rq->data, rq->count, true);
		if (r)
			return reply_err(s, m, -r);
		return reply(s, m, &rq->offset, sizeof(*rq) - sizeof(rq->hdr));
	}
	s->st.region_reads++;
	uint8_t *out = malloc(sizeof(*rq) - sizeof(rq->hdr) + rq->count);

	if (!out)
		return reply_err(s, m, ENOMEM);
	memcpy(out, &rq->offset, sizeof(*rq) - sizeof(rq->hdr));
	r = region_access(s, rq->region, rq->offset, out + sizeof(*rq) - sizeof(rq->hdr),
			  rq->count, false);
	if (r) {
		free(out);
		return reply_err(s, m, -r);
	}
	r = reply(s, m, out, sizeof(*rq) - sizeof(rq->hdr) + rq->count);
	free(out);
	return r;
}

static int cmd_region_write_multi(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	size_t body = m->hdr.size - sizeof(m->hdr);
	const uint8_t *p = m->buf + sizeof(m->hdr);
	uint64_t cnt;

	if (body < 8)
		return reply_err(s, m, EINVAL);
	memcpy(&cnt, p, 8);
	if (cnt > (body - 8) / sizeof(struct vfu_wr_one))
		return reply_err(s, m, EINVAL);
	for (uint64_t i = 0; i < cnt; i++) {
		struct vfu_wr_one w;

		memcpy(&w, p + 8 + i * sizeof(w), sizeof(w));
		if (w.count > sizeof(w.data))
			return reply_err(s, m, EINVAL);
		s->st.region_writes++;
		if (region_access(s, w.region, w.offset, w.data, w.count, true))
			return reply_err(s, m, EINVAL);
	}
	return reply(s, m, NULL, 0);
}

static void device_reset(struct nvemu_vfu_server *s)
{
	nvemu_pcie_ctrl_reset(s->pc);
	/* the reset re-enabled the in-band MSI-X table; the client still owns it */
	if (s->msix_on)
		nvemu_pcie_msix_ext_enable(s->pc, true);
	zombies_reap(s);
}

static void trace_msg(struct nvemu_vfu_server *s, const struct vfu_msg *m)
{
	const struct vfu_region_rw *rw = (const void *)m->buf;
	uint64_t v = 0;

	if (!s->p.verbose || (s->st.messages > 3000 && s->st.messages % 100000))
		return;
	if ((m->hdr.command == VFU_CMD_REGION_READ || m->hdr.command == VFU_CMD_REGION_WRITE) &&
	    m->hdr.size >= sizeof(*rw)) {
		if (m->hdr.command == VFU_CMD_REGION_WRITE && rw->count <= 8 &&
		    m->hdr.size >= sizeof(*rw) + rw->count)
			memcpy(&v, rw->data, rw->count);
		vlog(s, "#%llu %s region %u off %#llx count %u val %#llx%s",
		     (unsigned long long)s->st.messages,
		     m->hdr.command == VFU_CMD_REGION_READ ? "read" : "write", rw->region,
		     (unsigned long long)rw->offset, rw->count, (unsigned long long)v,
		     m->hdr.flags & VFU_NO_REPLY ? " posted" : "");
	} else if (m->hdr.command == VFU_CMD_DEVICE_SET_IRQS && m->hdr.size >= 36) {
		const struct vfio_irq_set *is = (const void *)(m->buf + sizeof(m->hdr));

		vlog(s, "#%llu set_irqs index %u flags %#x start %u count %u fds %u",
		     (unsigned long long)s->st.messages, is->index, is->flags, is->start,
		     is->count, m->nfds);
	} else {
		vlog(s, "#%llu command %u size %u fds %u", (unsigned long long)s->st.messages,
		     m->hdr.command, m->hdr.size, m->nfds);
	}
}

static int handle(struct nvemu_vfu_server *s, struct vfu_msg *m)
{
	s->st.messages++;
	trace_msg(s, m);
	if ((m->hdr.flags & VFU_TYPE_MASK) != VFU_REQUEST) {
		vlog(s, "stray reply id %u", m->hdr.id);
		return 0;
	}
	if (!s->negotiated && m->hdr.command != VFU_CMD_VERSION)
		return reply_err(s, m, EINVAL);
	/*
	 * Only DMA_MAP and SET_IRQS use file descriptors. Some clients attach
	 * the region's fd to DMA_UNMAP too; it is closed unused (msg_free), as
	 * libvfio-user does.
	 */
	if (m->nfds && m->hdr.command != VFU_CMD_DMA_MAP && m->hdr.command != VFU_CMD_SET_IRQS &&
	    m->hdr.command != VFU_CMD_DMA_UNMAP)
		return reply_err(s, m, EINVAL);
	switch (m->hdr.command) {
	case VFU_CMD_VERSION:
		return cmd_version(s, m);
	case VFU_CMD_DMA_MAP:
		return cmd_dma_map(s, m);
	case VFU_CMD_DMA_UNMAP:
		return cmd_dma_unmap(s, m);
	case VFU_CMD_DEVICE_GET_INFO:
		return cmd_device_info(s, m);
	case VFU_CMD_DEVICE_GET_REGION_INFO:
		return cmd_region_info(s, m);
	case VFU_CMD_DEVICE_GET_IRQ_INFO:
		return cmd_irq_info(s, m);
	case VFU_CMD_DEVICE_SET_IRQS:
		return cmd_set_irqs(s, m);
	case VFU_CMD_REGION_READ:
		return cmd_region_rw(s, m, false);
	case VFU_CMD_REGION_WRITE:
		return cmd_region_rw(s, m, true);
	case VFU_CMD_REGION_WRITE_MULTI:
		return cmd_region_write_multi(s, m);
	case VFU_CMD_DEVICE_RESET:
		device_reset(s);
		return reply(s, m, NULL, 0);
	default:
		return reply_err(s, m, ENOSYS);
	}
}

/* ---- connection management */

static void client_close(struct nvemu_vfu_server *s)
{
	struct vfu_msg *m;

	if (s->client_fd < 0)
		return;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->client_fd, NULL);
	close(s->client_fd);
	s->client_fd = -1;
	msg_free(s->rx);
	s->rx = NULL;
	s->rx_got = 0;
	while ((m = undefer(s)))
		msg_free(m);
	/*
	 * Reset before the guest's memory goes: in-flight commands finish (or
	 * are abandoned) while their buffers are still mapped. Acknowledged
	 * writes were completed by the backend before their CQE was posted.
	 */
	irqs_clear(s);
	nvemu_pcie_ctrl_reset(s->pc);
	db_mem_put(s);
	dma_clear(s);
	s->negotiated = false;
	s->dead = false;
	s->st.disconnects++;
	vlog(s, "client disconnected");
}

/* epoll data of the server's fds */
enum { EV_LISTEN, EV_CLIENT, EV_TIMER };

static int client_events(struct nvemu_vfu_server *s);

/*
 * Out of descriptors or memory: the pending connection stays queued and the
 * listener readable, so take it out of the epoll set until the timer says
 * to try again, and say so once in a while.
 */
static void accept_rest(struct nvemu_vfu_server *s, int err)
{
	uint64_t missed;

	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
	nvemu_accept_backoff_rest(&s->accept);
	s->st.accept_errors++;
	if (nvemu_accept_backoff_log_ok(&s->accept, &missed))
		vwarn(s, "accept: %s; not accepting for %d ms (%llu more such failures not logged)",
		      strerror(err), NVEMU_ACCEPT_BACKOFF_MS, (unsigned long long)missed);
}

static void accept_resume(struct nvemu_vfu_server *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = EV_LISTEN };

	if (!nvemu_accept_backoff_resting(&s->accept) || nvemu_accept_backoff_left_ns(&s->accept))
		return;
	if (!epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &ev) || errno == EEXIST)
		nvemu_accept_backoff_end(&s->accept);
	else /* still short of memory: rest again */
		nvemu_accept_backoff_rest(&s->accept);
}

/*
 * Is the connected client gone? Its hang-up may sit in the same epoll batch
 * as the next client's connection (a VMM reconnecting at once): finish it
 * off here rather than turn the newcomer away.
 */
static bool client_gone(struct nvemu_vfu_server *s)
{
	struct pollfd pfd = { .fd = s->client_fd, .events = POLLIN | POLLRDHUP };

	if (!s->dead && poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR)))
		client_events(s); /* what it sent before hanging up, then EOF */
	if (s->dead || (pfd.revents & (POLLHUP | POLLERR)))
		client_close(s);
	return s->client_fd < 0;
}

static void do_accept(struct nvemu_vfu_server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = EV_CLIENT };

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (nvemu_accept_exhausted(errno))
				accept_rest(s, errno);
			return;
		}
		if (s->client_fd >= 0 && !client_gone(s)) {
			/* one client at a time: the next VMM fails fast instead of hanging */
			vlog(s, "refusing a second client");
			close(fd);
			continue;
		}
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			continue;
		}
		s->client_fd = fd;
		s->st.connects++;
		vlog(s, "client connected");
	}
}

static void rearm_timer(struct nvemu_vfu_server *s)
{
	uint64_t us = nvemu_pcie_ctrl_poll_interval_us(s->pc);
	struct itimerspec its = { 0 };

	if (nvemu_accept_backoff_resting(&s->accept)) {
		uint64_t rest = nvemu_accept_backoff_left_ns(&s->accept) / 1000;

		if (!us || rest < us)
			us = rest ? rest : 1;
	}
	if (us) {
		its.it_value.tv_sec = us / 1000000;
		its.it_value.tv_nsec = (long)(us % 1000000) * 1000;
	}
	timerfd_settime(s->timer_fd, 0, &its, NULL);
}

static int run_deferred(struct nvemu_vfu_server *s)
{
	int n = 0;

	while (!STAILQ_EMPTY(&s->deferred) && !s->dead) {
		struct vfu_msg *m = undefer(s);

		if (handle(s, m) < 0)
			s->dead = true;
		msg_free(m);
		n++;
	}
	return n;
}

static int client_events(struct nvemu_vfu_server *s)
{
	int n = 0;

	/* bounded, so one busy client cannot starve the rest of the loop */
	while (n < 256 && s->client_fd >= 0 && !s->dead) {
		struct vfu_msg *m = NULL;
		int r = recv_msg(s, &m);

		if (r == 0)
			break;
		if (r < 0) {
			s->dead = true;
			break;
		}
		if (handle(s, m) < 0)
			s->dead = true;
		msg_free(m);
		n++;
		n += run_deferred(s);
	}
	return n;
}

int nvemu_vfu_server_process(struct nvemu_vfu_server *s)
{
	struct epoll_event evs[4];
	bool accept_ready = false;
	int n, handled = 0;

	n = epoll_wait(s->epfd, evs, 4, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		switch (evs[i].data.fd) {
		case EV_LISTEN:
			/* after the client's events: its hang-up frees the seat */
			accept_ready = true;
			break;
		case EV_CLIENT:
			if (s->client_fd < 0)
				break;
			if (evs[i].events & (EPOLLHUP | EPOLLERR) && !(evs[i].events & EPOLLIN))
				s->dead = true;
			else
				handled += client_events(s);
			break;
		case EV_TIMER: {
			uint64_t exp;

			if (read(s->timer_fd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
				return -errno;
			break;
		}
		}
	}
	if (s->client_fd >= 0 && !s->dead)
		handled += nvemu_pcie_ctrl_poll(s->pc);
	if (s->dead && s->client_fd >= 0)
		client_close(s);
	if (accept_ready) {
		do_accept(s);
		handled++;
	}
	accept_resume(s);
	zombies_reap(s);
	rearm_timer(s);
	return handled;
}

/* ---- lifecycle */

/* The caller's parameters (or the defaults), with unset or too small values defaulted. */
static void params_apply(struct nvemu_vfu_params *p, const struct nvemu_vfu_params *params)
{
	if (params)
		*p = *params;
	else
		nvemu_vfu_params_init(p);
	if (!p->dma_timeout_ms)
		p->dma_timeout_ms = 5000;
	if (!p->max_data_xfer)
		p->max_data_xfer = VFU_DEF_XFER;
	if (p->max_data_xfer < 4096)
		p->max_data_xfer = 4096;
}

/* The epoll set the caller polls: the listener and the poll/back-off timer. */
static int server_watch(struct nvemu_vfu_server *s, struct nvemu_error *err)
{
	struct epoll_event ev = { .events = EPOLLIN };

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->epfd < 0 || s->timer_fd < 0)
		return nvemu_error_set(err, -errno, "vfio-user: %s", strerror(errno));
	ev.data.fd = EV_LISTEN;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &ev))
		return nvemu_error_set(err, -errno, "vfio-user: epoll: %s", strerror(errno));
	ev.data.fd = EV_TIMER;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->timer_fd, &ev))
		return nvemu_error_set(err, -errno, "vfio-user: epoll: %s", strerror(errno));
	return 0;
}

int nvemu_vfu_server_create(const char *path, struct nvemu_ctrl *ctrl,
			    const struct nvemu_vfu_params *params,
			    struct nvemu_vfu_server **out, struct nvemu_error *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct nvemu_vfu_server *s;
	int ret;

	if (!path || !*path || strlen(path) >= sizeof(addr.sun_path))
		return nvemu_error_set(err, -ENAMETOOLONG, "vfio-user socket path %s: empty or "
				       "longer than %zu bytes", path ? path : "(null)",
				       sizeof(addr.sun_path) - 1);
	if (!ctrl)
		return nvemu_error_set(err, -EINVAL, "no controller");

	s = calloc(1, sizeof(*s));
	if (!s)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	strcpy(s->path, path);
	STAILQ_INIT(&s->deferred);
	params_apply(&s->p, params);
	s->ctrl = ctrl;
	s->listen_fd = s->client_fd = s->timer_fd = s->epfd = s->intx_fd = s->db_fd = -1;
	s->client_max_xfer = VFU_DEF_XFER;

	/* The path first: a socket in use is the likelier mistake, and binds nothing. */
	ret = nvemu_unix_listen(path, SOCK_STREAM, 4, "vfio-user", err);
	if (ret < 0) {
		free(s);
		return ret;
	}
	s->listen_fd = ret;
	ret = nvemu_pcie_ctrl_create(ctrl, &vfu_host_ops, s, &s->pc, err);
	if (ret)
		goto fail;
	s->nr_msix = nvemu_pcie_msix_vectors(s->pc);
	s->msix_fd = malloc(sizeof(int) * (s->nr_msix ? s->nr_msix : 1));
	if (!s->msix_fd) {
		ret = nvemu_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < s->nr_msix; i++)
		s->msix_fd[i] = -1;

	ret = server_watch(s, err);
	if (ret)
		goto fail;
	*out = s;
	return 0;

fail:
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(path);
	}
	if (s->timer_fd >= 0)
		close(s->timer_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	nvemu_pcie_ctrl_destroy(s->pc);
	free(s->msix_fd);
	free(s);
	return ret;
}

void nvemu_vfu_server_destroy(struct nvemu_vfu_server *s)
{
	if (!s)
		return;
	client_close(s);
	close(s->listen_fd);
	if (!s->released)
		unlink(s->path);
	close(s->timer_fd);
	free(s->pcie_state);
	close(s->epfd);
	/*
	 * Commands still held (a suspended controller) or in a backend write
	 * into guest memory when they finish: leave their mappings in place
	 * rather than have them write into whatever is mapped there next.
	 */
	dma_clear(s);
	if (s->nr_zombie && nvemu_pcie_ctrl_busy(s->pc)) {
		vwarn(s, "commands still in flight: leaving %u guest memory mappings mapped",
		      s->nr_zombie);
		s->nr_zombie = 0;
	}
	zombies_free(s);
	nvemu_pcie_ctrl_destroy(s->pc);
	free(s->dma);
	free(s->zombie);
	free(s->msix_fd);
	free(s);
}

int nvemu_vfu_server_fd(const struct nvemu_vfu_server *s)
{
	return s->epfd;
}

const char *nvemu_vfu_server_path(const struct nvemu_vfu_server *s)
{
	return s->path;
}

struct nvemu_pcie_ctrl *nvemu_vfu_server_pcie(struct nvemu_vfu_server *s)
{
	return s->pc;
}

bool nvemu_vfu_server_needs_polling(const struct nvemu_vfu_server *s)
{
	return s->client_fd >= 0 && !s->dead && nvemu_pcie_db_needs_polling(s->pc);
}

int nvemu_vfu_server_poll(struct nvemu_vfu_server *s)
{
	if (!nvemu_vfu_server_needs_polling(s) || s->depth)
		return 0;
	return nvemu_pcie_db_poll(s->pc);
}

bool nvemu_vfu_server_connected(const struct nvemu_vfu_server *s)
{
	return s->client_fd >= 0;
}

void nvemu_vfu_server_stats(const struct nvemu_vfu_server *s, struct nvemu_vfu_stats *st)
{
	*st = s->st;
}

/* ---- live update: the server handed to another process */

#define HO_MAGIC   0x5556564eu /* "NVVU" */
#define HO_VERSION 1

/* fd into the list (its index on the wire), -1 stays -1. */
static int32_t ho_fd(int *fds, unsigned *nfds, int fd)
{
	if (fd < 0)
		return -1;
	fds[*nfds] = fd;
	return (int32_t)(*nfds)++;
}

static bool in_zombie(const struct nvemu_vfu_server *s, uint64_t addr, uint64_t len)
{
	for (unsigned i = 0; i < s->nr_zombie; i++)
		if (addr < s->zombie[i].iova + s->zombie[i].size && s->zombie[i].iova < addr + len)
			return true;
	return false;
}

/*
 * Mappings the guest dropped while the controller ran are kept for the
 * commands that may point into them. Once nothing but AERs is in flight
 * only the queues and the shadow doorbells can: free them unless those do.
 */
static bool zombies_unused(struct nvemu_vfu_server *s)
{
	struct nvemu_pcie_db_stats dbs;

	if (nvemu_ctrl_inflight(s->ctrl))
		return false;
	for (unsigned q = 0; q <= nvemu_ctrl_params(s->ctrl)->num_io_queues; q++) {
		for (int k = 0; k < 2; k++) {
			enum nvemu_state_scope sc = k ? NVEMU_STATE_CQ : NVEMU_STATE_SQ;
			const struct nvemu_state_field *fa = nvemu_ctrl_state_field(sc, "", "addr");
			const struct nvemu_state_field *fs = nvemu_ctrl_state_field(sc, "", "size");

			if (!nvemu_ctrl_state_queue_valid(s->ctrl, sc, q))
				continue;
			if (in_zombie(s, nvemu_ctrl_state_get(s->ctrl, fa, q, 0),
				      nvemu_ctrl_state_get(s->ctrl, fs, q, 0) * (k ? 16u : 64u)))
				return false;
		}
	}
	nvemu_pcie_db_stats(s->pc, &dbs);
	return !dbs.shadow || (!in_zombie(s, dbs.shadow_addr, VFU_PGSIZE) &&
			       !in_zombie(s, dbs.eventidx_addr, VFU_PGSIZE));
}

int nvemu_vfu_server_save(struct nvemu_vfu_server *s, uint8_t **blob, size_t *len, int **fdsp,
			  unsigned *nfdsp, struct nvemu_error *err)
{
	struct lebuf_w w = { 0 };
	uint8_t *pcie = NULL;
	size_t pcie_len = 0;
	unsigned nfds = 0;
	int *fds;
	int ret;

	if (s->dead || s->depth || s->rx_got || s->nr_deferred)
		return nvemu_error_set(err, -EAGAIN,
				       "vfio-user %s: a message is still being handled; try again",
				       s->path);
	if (s->nr_zombie && zombies_unused(s))
		zombies_free(s);
	if (s->nr_zombie)
		return nvemu_error_set(err, -EBUSY,
				       "vfio-user %s: the guest unmapped memory the controller's queues are in",
				       s->path);
	ret = nvemu_pcie_ctrl_save(s->pc, &pcie, &pcie_len, err);
	if (ret)
		return ret;
	fds = malloc(sizeof(*fds) * (4 + s->nr_msix + s->nr_dma));
	if (!fds) {
		free(pcie);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	lebuf_put32(&w, HO_MAGIC);
	lebuf_put32(&w, HO_VERSION);
	lebuf_put(&w, &(uint8_t[4]){ s->client_fd >= 0, s->negotiated, s->msix_on, s->intx_masked }, 4);
	lebuf_put32(&w, s->client_max_xfer);
	lebuf_put32(&w, s->next_id);
	lebuf_put32(&w, (uint32_t)ho_fd(fds, &nfds, s->listen_fd));
	lebuf_put32(&w, (uint32_t)ho_fd(fds, &nfds, s->client_fd));
	lebuf_put32(&w, (uint32_t)ho_fd(fds, &nfds, s->db_fd));
	lebuf_put32(&w, (uint32_t)ho_fd(fds, &nfds, s->intx_fd));
	lebuf_put64(&w, s->db_fd >= 0 ? s->db_len : 0);
	lebuf_put32(&w, s->nr_msix);
	for (unsigned i = 0; i < s->nr_msix; i++)
		lebuf_put32(&w, (uint32_t)ho_fd(fds, &nfds, s->msix_fd[i]));
	lebuf_put32(&w, s->nr_dma);
	for (unsigned i = 0; i < s->nr_dma; i++) {
		const struct vfu_dma *d = &s->dma[i];

		lebuf_put64(&w, d->iova);
		lebuf_put64(&w, d->size);
		lebuf_put64(&w, d->offset);
		lebuf_put32(&w, d->writable);
		lebuf_put32(&w, (uint32_t)ho_fd(fds, &nfds, d->ptr ? d->fd : -1));
	}
	lebuf_put32(&w, (uint32_t)pcie_len);
	lebuf_put(&w, pcie, pcie_len);
	free(pcie);
	if (w.oom) {
		free(w.p);
		free(fds);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	*blob = w.p;
	*len = w.len;
	*fdsp = fds;
	*nfdsp = nfds;
	return 0;
}

void nvemu_vfu_server_release(struct nvemu_vfu_server *s)
{
	if (!s)
		return;
	/* The new process owns the guest now: nothing here may touch it again. */
	nvemu_pcie_ctrl_detach_host(s->pc);
	irqs_clear(s);
	s->released = true;
	nvemu_vfu_server_destroy(s);
}

/* A copy of handed fd number idx (-1: none), or -2 when idx is out of range. */
static int ho_dup(const int *fds, unsigned nfds, uint32_t idx)
{
	int fd;

	if ((int32_t)idx == -1)
		return -1;
	if (idx >= nfds)
		return -2;
	fd = fcntl(fds[idx], F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -2 : fd;
}

int nvemu_vfu_server_restore(const char *path, struct nvemu_ctrl *ctrl,
			     const struct nvemu_vfu_params *params, const uint8_t *blob, size_t len,
			     const int *fds, unsigned nfds, struct nvemu_vfu_server **out,
			     struct nvemu_error *err)
{
	struct lebuf_r r = { .p = blob, .len = len };
	struct nvemu_vfu_server *s;
	uint8_t flags[4] = { 0 };
	uint32_t lfd, cfd, dfd, ifd, n, plen;
	uint64_t db_len;
	int ret = -EINVAL;

	if (!path || strlen(path) >= sizeof(s->path) || !ctrl)
		return nvemu_error_set(err, -EINVAL, "vfio-user restore: bad path or controller");
	if (lebuf_get32(&r) != HO_MAGIC || lebuf_get32(&r) != HO_VERSION)
		return nvemu_error_set(err, -EINVAL, "vfio-user restore: not an nvemu vfio-user state (version 1)");
	s = calloc(1, sizeof(*s));
	if (!s)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	strcpy(s->path, path);
	STAILQ_INIT(&s->deferred);
	params_apply(&s->p, params);
	s->ctrl = ctrl;
	s->listen_fd = s->client_fd = s->timer_fd = s->epfd = s->intx_fd = s->db_fd = -1;
	s->released = true; /* until it is whole: a failure must not unlink the live socket */

	if (r.len - r.off >= 4)
		memcpy(flags, r.p + r.off, 4);
	r.off += 4;
	s->client_max_xfer = lebuf_get32(&r);
	s->next_id = (uint16_t)lebuf_get32(&r);
	lfd = lebuf_get32(&r);
	cfd = lebuf_get32(&r);
	dfd = lebuf_get32(&r);
	ifd = lebuf_get32(&r);
	db_len = lebuf_get64(&r);
	if (r.bad || r.off > r.len)
		goto bad;
	s->listen_fd = ho_dup(fds, nfds, lfd);
	if (s->listen_fd < 0) {
		s->listen_fd = -1;
		goto bad;
	}
	ret = nvemu_pcie_ctrl_create(ctrl, &vfu_host_ops, s, &s->pc, err);
	if (ret)
		goto fail;
	ret = -EINVAL;
	s->nr_msix = nvemu_pcie_msix_vectors(s->pc);
	s->msix_fd = malloc(sizeof(int) * (s->nr_msix ? s->nr_msix : 1));
	if (!s->msix_fd) {
		ret = nvemu_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < s->nr_msix; i++)
		s->msix_fd[i] = -1;
	if (server_watch(s, err)) {
		ret = -errno;
		goto fail;
	}
	s->negotiated = flags[1];
	s->msix_on = flags[2];
	s->intx_masked = flags[3];
	if (flags[0]) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = EV_CLIENT };

		s->client_fd = ho_dup(fds, nfds, cfd);
		if (s->client_fd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->client_fd, &ev)) {
			if (s->client_fd < 0)
				s->client_fd = -1;
			goto bad;
		}
		s->st.connects++;
	}
	s->intx_fd = ho_dup(fds, nfds, ifd);
	if (s->intx_fd == -2) {
		s->intx_fd = -1;
		goto bad;
	}
	if ((int32_t)dfd != -1) {
		if (db_len != NVEMU_PCIE_DB_OFF + nvemu_pcie_db_area_size(s->pc))
			goto bad;
		s->db_fd = ho_dup(fds, nfds, dfd);
		if (s->db_fd < 0) {
			s->db_fd = -1;
			goto bad;
		}
		s->db_mem = mmap(NULL, db_len, PROT_READ | PROT_WRITE, MAP_SHARED, s->db_fd, 0);
		if (s->db_mem == MAP_FAILED) {
			s->db_mem = NULL;
			close(s->db_fd);
			s->db_fd = -1;
			goto bad;
		}
		s->db_len = db_len;
	}
	n = lebuf_get32(&r);
	if (r.bad || n != s->nr_msix)
		goto bad;
	for (unsigned i = 0; i < n; i++) {
		int fd = ho_dup(fds, nfds, lebuf_get32(&r));

		if (fd == -2 || r.bad)
			goto bad;
		s->msix_fd[i] = fd;
	}
	n = lebuf_get32(&r);
	if (r.bad || n > VFU_MAX_DMA_REGIONS)
		goto bad;
	s->dma = calloc(n ? n : 1, sizeof(*s->dma));
	if (!s->dma) {
		ret = nvemu_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	s->dma_cap = n ? n : 1;
	for (unsigned i = 0; i < n; i++) {
		struct vfu_dma d = { .fd = -1 };

		d.iova = lebuf_get64(&r);
		d.size = lebuf_get64(&r);
		d.offset = lebuf_get64(&r);
		d.writable = lebuf_get32(&r);
		d.fd = ho_dup(fds, nfds, lebuf_get32(&r));
		/* Sorted, disjoint, page-sized: as cmd_dma_map left them. */
		if (r.bad || d.fd == -2 || !d.size || d.iova + d.size < d.iova ||
		    (i && s->dma[i - 1].iova + s->dma[i - 1].size > d.iova) ||
		    ((d.offset | d.size) & (VFU_PGSIZE - 1))) {
			if (d.fd >= 0)
				close(d.fd);
			goto bad;
		}
		if (d.fd >= 0) {
			d.ptr = mmap(NULL, d.size, PROT_READ | (d.writable ? PROT_WRITE : 0),
				     MAP_SHARED, d.fd, (off_t)d.offset);
			if (d.ptr == MAP_FAILED) {
				close(d.fd);
				goto bad;
			}
		}
		s->dma[s->nr_dma++] = d;
	}
	plen = lebuf_get32(&r);
	if (r.bad || plen != r.len - r.off)
		goto bad;
	s->pcie_state = malloc(plen ? plen : 1);
	if (!s->pcie_state) {
		ret = nvemu_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	memcpy(s->pcie_state, r.p + r.off, plen);
	s->pcie_state_len = plen;
	s->released = false;
	*out = s;
	return 0;
bad:
	ret = nvemu_error_set(err, -EINVAL, "vfio-user restore: truncated or inconsistent state");
fail:
	/* Nothing of the guest is touched: the handing process still serves it. */
	if (s->pc) {
		nvemu_pcie_ctrl_detach_host(s->pc);
		if (s->client_fd < 0) {
			irqs_clear(s);
			db_mem_put(s);
		}
	}
	s->released = true;
	nvemu_vfu_server_destroy(s);
	return ret;
}

int nvemu_vfu_server_restore_queues(struct nvemu_vfu_server *s, struct nvemu_error *err)
{
	int ret;

	if (!s->pcie_state)
		return nvemu_error_set(err, -EINVAL, "vfio-user: nothing to restore");
	ret = nvemu_pcie_ctrl_load(s->pc, s->pcie_state, s->pcie_state_len,
				   s->db_mem ? (uint8_t *)s->db_mem + NVEMU_PCIE_DB_OFF : NULL, err);
	free(s->pcie_state);
	s->pcie_state = NULL;
	return ret;
}

void nvemu_vfu_server_pause(struct nvemu_vfu_server *s, bool paused)
{
	nvemu_pcie_ctrl_pause(s->pc, paused);
}

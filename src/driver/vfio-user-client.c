// SPDX-License-Identifier: MIT
/*
 * vfio-user client (QEMU docs/interop/vfio-user.rst, version 0.0): the
 * driver's side of the socket nvemu's own server (src/transport/vfio-user)
 * and libvfio-user serve. One request in flight at a time; every reply is
 * awaited against one deadline and checked (id, command, size, fds) before
 * use, so a broken or hostile server ends in an error, never a crash or a
 * hang. Memory is shared by fd (memfd), so the server never needs
 * DMA_READ/DMA_WRITE round trips; those it sends anyway are refused.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pci-dev.h"
#include "transport/vfio-user/vfu-proto.h"

#define CLIENT_MAX_FDS	 8u	    /* fds we accept with one message */
#define CLIENT_MAX_XFER	 (1u << 20) /* data bytes per region message we offer and accept */
#define CLIENT_MAX_CAPS	 4096u	    /* VERSION capabilities JSON */
#define CLIENT_MAX_REPLY (sizeof(struct vfu_hdr) + 64 + CLIENT_MAX_XFER)
#define CLIENT_MAX_MMAP	 (1ull << 32)

struct vfu_client {
	struct nvemu_pci_dev dev; /* first: the ops get it */
	int fd;
	unsigned timeout_ms;
	uint16_t next_id;
	uint32_t max_xfer; /* what both ends take */
	unsigned max_fds;  /* fds the server takes per message */
	unsigned nirq[3];  /* INTx, MSI, MSI-X vectors */
	size_t map_len[NVEMU_PCI_NR_REGIONS]; /* of region[i].map or .part */
};

/* A received message: the whole of it, and the fds that came with it. */
struct vfu_rx {
	struct vfu_hdr hdr;
	uint8_t *buf;
	int fds[CLIENT_MAX_FDS];
	unsigned nfds;
};

static void rx_free(struct vfu_rx *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
	free(m->buf);
	m->buf = NULL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for events on the socket until deadline; -ETIMEDOUT when it passed. */
static int wait_fd(struct vfu_client *c, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = events};
		uint64_t now = now_ms();
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(deadline - now > 60000 ? 60000 : deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_msg(struct vfu_client *c, const void *buf, size_t len, const int *fds,
		    unsigned nfds, uint64_t deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} cbuf;
	const uint8_t *p = buf;

	if (nfds > 16)
		return -EINVAL;
	while (len) {
		struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (nfds) { /* the fds go with the first byte */
			struct cmsghdr *cm;

			mh.msg_control = cbuf.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
		}
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			int r;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			r = wait_fd(c, POLLOUT, deadline);
			if (r)
				return r;
			continue;
		}
		nfds = 0;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Keep up to CLIENT_MAX_FDS fds a message carries; more is a protocol error. */
static int take_fds(struct vfu_rx *m, struct msghdr *mh)
{
	int bad = (mh->msg_flags & MSG_CTRUNC) ? -EPROTO : 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		unsigned n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (m->nfds < CLIENT_MAX_FDS) {
				m->fds[m->nfds++] = fd;
			} else {
				close(fd);
				bad = -EPROTO;
			}
		}
	}
	return bad;
}

static int recv_part(struct vfu_client *c, struct vfu_rx *m, void *dst, size_t len,
		     uint64_t deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CLIENT_MAX_FDS * 2)];
		struct cmsghdr align;
	} cbuf;
	uint8_t *p = dst;

	while (len) {
		struct iovec iov = {.iov_base = p, .iov_len = len};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;
		int r;

		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			r = wait_fd(c, POLLIN, deadline);
			if (r)
				return r;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		r = take_fds(m, &mh);
		if (r)
			return r;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One whole message, its size bounded before anything is allocated. */
static int recv_msg(struct vfu_client *c, struct vfu_rx *m, uint64_t deadline)
{
	int r;

	memset(m, 0, sizeof(*m));
	r = recv_part(c, m, &m->hdr, sizeof(m->hdr), deadline);
	if (r)
		return r;
	if (m->hdr.size < sizeof(m->hdr) || m->hdr.size > CLIENT_MAX_REPLY)
		return -EPROTO;
	m->buf = malloc(m->hdr.size);
	if (!m->buf)
		return -ENOMEM;
	memcpy(m->buf, &m->hdr, sizeof(m->hdr));
	return recv_part(c, m, m->buf + sizeof(m->hdr), m->hdr.size - sizeof(m->hdr), deadline);
}

/* A request of the server's (DMA_READ/WRITE...): we shared everything by fd, so refuse it. */
static int refuse(struct vfu_client *c, const struct vfu_rx *m, uint64_t deadline)
{
	struct vfu_hdr h = {
		.id = m->hdr.id,
		.command = m->hdr.command,
		.size = sizeof(h),
		.flags = VFU_REPLY | VFU_ERROR,
		.error = ENOTSUP,
	};

	if (m->hdr.flags & VFU_NO_REPLY)
		return 0;
	return send_msg(c, &h, sizeof(h), NULL, 0, deadline);
}

static int fail(struct vfu_client *c, int r)
{
	if (r == -ETIMEDOUT || r == -EPROTO || r == -ECONNRESET || r == -EPIPE || r == -ENOMEM)
		c->dev.broken = true;
	return r;
}

/*
 * Send a request (req starts with a struct vfu_hdr whose id, command, size
 * and flags this fills) and wait for its reply into *rp (caller frees with
 * rx_free). The server's error comes back as its negative errno.
 */
static int call(struct vfu_client *c, uint16_t cmd, void *req, size_t len, const int *fds,
		unsigned nfds, struct vfu_rx *rp)
{
	uint64_t deadline = now_ms() + c->timeout_ms;
	struct vfu_hdr *h = req;
	int r;

	if (c->dev.broken)
		return -ENODEV;
	h->id = c->next_id++;
	h->command = cmd;
	h->size = (uint32_t)len;
	h->flags = VFU_REQUEST;
	h->error = 0;
	r = send_msg(c, req, len, fds, nfds, deadline);
	if (r)
		return fail(c, r == -EAGAIN ? -ETIMEDOUT : r);
	for (;;) {
		r = recv_msg(c, rp, deadline);
		if (r) {
			rx_free(rp);
			return fail(c, r);
		}
		if ((rp->hdr.flags & VFU_TYPE_MASK) == VFU_REQUEST) {
			r = refuse(c, rp, deadline);
			rx_free(rp);
			if (r)
				return fail(c, r);
			continue;
		}
		if ((rp->hdr.flags & VFU_TYPE_MASK) != VFU_REPLY || rp->hdr.id != h->id ||
		    rp->hdr.command != cmd) {
			rx_free(rp);
			return fail(c, -EPROTO);
		}
		if (rp->hdr.flags & VFU_ERROR) {
			r = rp->hdr.error && rp->hdr.error < 4096 ? -(int)rp->hdr.error : -EIO;
			rx_free(rp);
			return r;
		}
		return 0;
	}
}

/* A request whose reply carries nothing we need (and must carry no fds). */
static int call_simple(struct vfu_client *c, uint16_t cmd, void *req, size_t len, const int *fds,
		       unsigned nfds)
{
	struct vfu_rx rp;
	int r = call(c, cmd, req, len, fds, nfds, &rp);

	if (r)
		return r;
	r = rp.nfds ? fail(c, -EPROTO) : 0;
	rx_free(&rp);
	return r;
}

/* ---- regions */

static int rw_chunk(struct vfu_client *c, bool write, bool post, unsigned region, uint64_t off,
		    void *buf, uint32_t n)
{
	size_t len = sizeof(struct vfu_region_rw) + (write ? n : 0);
	struct vfu_region_rw *rq = malloc(len);
	struct vfu_rx rp;
	int r;

	if (!rq)
		return -ENOMEM;
	rq->offset = off;
	rq->region = region;
	rq->count = n;
	if (write)
		memcpy(rq->data, buf, n);
	if (post) {
		uint64_t deadline = now_ms() + c->timeout_ms;

		rq->hdr = (struct vfu_hdr){.id = c->next_id++,
					   .command = VFU_CMD_REGION_WRITE,
					   .size = (uint32_t)len,
					   .flags = VFU_REQUEST | VFU_NO_REPLY};
		r = send_msg(c, rq, len, NULL, 0, deadline);
		free(rq);
		return r ? fail(c, r) : 0;
	}
	r = call(c, write ? VFU_CMD_REGION_WRITE : VFU_CMD_REGION_READ, rq, len, NULL, 0, &rp);
	free(rq);
	if (r)
		return r;
	{
		const struct vfu_region_rw *rr = (const void *)rp.buf;
		size_t want = sizeof(*rr) + (write ? 0 : n);

		if (rp.nfds || rp.hdr.size != want || rr->offset != off || rr->region != region ||
		    rr->count != n)
			r = fail(c, -EPROTO);
		else if (!write)
			memcpy(buf, rr->data, n);
	}
	rx_free(&rp);
	return r;
}

static int region_rw(struct vfu_client *c, bool write, bool post, unsigned region, uint64_t off,
		     void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		uint32_t n = len > c->max_xfer ? c->max_xfer : (uint32_t)len;
		int r = rw_chunk(c, write, post, region, off, p, n);

		if (r)
			return r;
		off += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int vfu_region_read(struct nvemu_pci_dev *d, unsigned region, uint64_t off, void *buf,
			   size_t len)
{
	return region_rw((struct vfu_client *)d, false, false, region, off, buf, len);
}

static int vfu_region_write(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
			    size_t len)
{
	return region_rw((struct vfu_client *)d, true, false, region, off, (void *)buf, len);
}

static int vfu_region_post(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
			   size_t len)
{
	return region_rw((struct vfu_client *)d, true, true, region, off, (void *)buf, len);
}

/* ---- DMA */

static int vfu_dma_map(struct nvemu_pci_dev *d, void *vaddr, size_t len, int fd, uint64_t fd_off,
		       uint64_t iova)
{
	struct vfu_dma_map rq = {
		.argsz = sizeof(rq) - sizeof(rq.hdr),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.offset = fd_off,
		.iova = iova,
		.size = len,
	};

	if (fd < 0)
		return -EINVAL; /* memory the server cannot map is never offered */
	return call_simple((struct vfu_client *)d, VFU_CMD_DMA_MAP, &rq, sizeof(rq), &fd, 1);
}

static int vfu_dma_unmap(struct nvemu_pci_dev *d, uint64_t iova, size_t len)
{
	struct vfu_dma_unmap rq = {
		.argsz = sizeof(rq) - sizeof(rq.hdr),
		.iova = iova,
		.size = len,
	};

	return call_simple((struct vfu_client *)d, VFU_CMD_DMA_UNMAP, &rq, sizeof(rq), NULL, 0);
}

/* ---- interrupts */

static unsigned vfu_irq_count(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind)
{
	struct vfu_client *c = (struct vfu_client *)d;

	return kind <= NVEMU_PCI_IRQ_MSIX ? c->nirq[kind] : 0;
}

struct irq_msg {
	struct vfu_hdr hdr;
	struct vfio_irq_set set;
} __attribute__((packed));

static int irq_msg(struct vfu_client *c, uint32_t flags, unsigned index, unsigned start,
		   unsigned count, const int *fds, unsigned nfds)
{
	struct irq_msg rq = {.set = {.argsz = sizeof(rq.set),
				     .flags = flags,
				     .index = index,
				     .start = start,
				     .count = count}};

	return call_simple(c, VFU_CMD_SET_IRQS, &rq, sizeof(rq), fds, nfds);
}

static int vfu_irq_set(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind, const int *efds,
		       unsigned n)
{
	struct vfu_client *c = (struct vfu_client *)d;
	unsigned per = c->max_fds ? c->max_fds : 1;

	if (kind > NVEMU_PCI_IRQ_MSIX || n > c->nirq[kind])
		return -EINVAL;
	if (!n)
		return irq_msg(c, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, kind, 0, 0,
			       NULL, 0);
	for (unsigned i = 0; i < n; i += per) {
		unsigned k = n - i < per ? n - i : per;
		int r = irq_msg(c, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, kind, i,
				k, efds + i, k);

		if (r)
			return r;
	}
	return 0;
}

static int vfu_irq_unmask(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind, unsigned vector)
{
	struct vfu_client *c = (struct vfu_client *)d;

	if (kind > NVEMU_PCI_IRQ_MSIX || vector >= c->nirq[kind])
		return -EINVAL;
	return irq_msg(c, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, kind, vector, 1,
		       NULL, 0);
}

static int vfu_reset(struct nvemu_pci_dev *d)
{
	struct vfu_hdr rq;

	return call_simple((struct vfu_client *)d, VFU_CMD_DEVICE_RESET, &rq, sizeof(rq), NULL, 0);
}

static void vfu_close(struct nvemu_pci_dev *d)
{
	struct vfu_client *c = (struct vfu_client *)d;

	for (unsigned i = 0; i < NVEMU_PCI_NR_REGIONS; i++)
		if (d->region[i].map || d->region[i].part)
			munmap(d->region[i].map ? d->region[i].map : d->region[i].part,
			       c->map_len[i]);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* The server hung up: no request notices while doorbells go through memory. */
static int vfu_alive(struct nvemu_pci_dev *d)
{
	struct vfu_client *c = (struct vfu_client *)d;
	struct pollfd pfd = {.fd = c->fd, .events = POLLRDHUP};

	if (d->broken)
		return -ENODEV;
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR | POLLRDHUP)))
		return fail(c, -ECONNRESET);
	return 0;
}

static const struct nvemu_pci_dev_ops vfu_client_ops = {
	.alive = vfu_alive,
	.name = "vfio-user",
	.region_read = vfu_region_read,
	.region_write = vfu_region_write,
	.region_post = vfu_region_post,
	.dma_map = vfu_dma_map,
	.dma_unmap = vfu_dma_unmap,
	.irq_count = vfu_irq_count,
	.irq_set = vfu_irq_set,
	.irq_unmask = vfu_irq_unmask,
	.reset = vfu_reset,
	.close = vfu_close,
};

/* ---- setup */

/* An unsigned number after "key": in a NUL-terminated JSON text, or -ENOENT. */
static int caps_u64(const char *json, const char *key, uint64_t *val)
{
	char pat[64];
	const char *p;
	char *end;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(json, pat);
	if (!p)
		return -ENOENT;
	p += strlen(pat);
	p += strspn(p, " \t\r\n");
	if (*p++ != ':')
		return -EPROTO;
	p += strspn(p, " \t\r\n");
	if (*p < '0' || *p > '9')
		return -EPROTO;
	errno = 0;
	*val = strtoull(p, &end, 10);
	return errno ? -EPROTO : 0;
}

static int negotiate(struct vfu_client *c, struct nvemu_error *err)
{
	char caps[128];
	uint8_t buf[sizeof(struct vfu_hdr) + 4 + sizeof(caps)];
	struct vfu_version *rq = (void *)buf;
	char json[CLIENT_MAX_CAPS + 1];
	struct vfu_rx rp;
	size_t body;
	uint64_t v;
	int n, r;

	n = snprintf(caps, sizeof(caps),
		     "{\"capabilities\":{\"max_msg_fds\":%u,\"max_data_xfer_size\":%u}}",
		     CLIENT_MAX_FDS, CLIENT_MAX_XFER);
	rq->major = VFU_MAJOR;
	rq->minor = VFU_MINOR;
	memcpy(rq->caps, caps, (size_t)n + 1);
	r = call(c, VFU_CMD_VERSION, rq, sizeof(struct vfu_hdr) + 4 + (size_t)n + 1, NULL, 0, &rp);
	if (r)
		return nvemu_error_set(err, r, "%s: version: %s", c->dev.addr, strerror(-r));
	body = rp.hdr.size - sizeof(struct vfu_hdr);
	rq = (void *)rp.buf;
	if (body < 4 || rp.nfds || rq->major != VFU_MAJOR || body - 4 > CLIENT_MAX_CAPS) {
		rx_free(&rp);
		return nvemu_error_set(err, fail(c, -EPROTO), "%s: version: bad reply",
				       c->dev.addr);
	}
	memcpy(json, rq->caps, body - 4);
	json[body - 4] = '\0';
	rx_free(&rp);
	c->max_xfer = CLIENT_MAX_XFER;
	c->max_fds = 1;
	if (!caps_u64(json, "max_data_xfer_size", &v) && v >= 4096 && v < c->max_xfer)
		c->max_xfer = (uint32_t)v;
	if (!caps_u64(json, "max_msg_fds", &v) && v >= 1)
		c->max_fds = v > 16 ? 16 : (unsigned)v;
	return 0;
}

static int get_info(struct vfu_client *c, uint16_t cmd, void *body, size_t len, void *out,
		    size_t out_len, struct vfu_rx *keep)
{
	uint8_t buf[sizeof(struct vfu_hdr) + 64];
	struct vfu_rx rp;
	int r;

	memcpy(buf + sizeof(struct vfu_hdr), body, len);
	r = call(c, cmd, buf, sizeof(struct vfu_hdr) + len, NULL, 0, &rp);
	if (r)
		return r;
	if (rp.hdr.size < sizeof(struct vfu_hdr) + out_len || (rp.nfds && !keep)) {
		rx_free(&rp);
		return fail(c, -EPROTO);
	}
	memcpy(out, rp.buf + sizeof(struct vfu_hdr), out_len);
	if (keep)
		*keep = rp;
	else
		rx_free(&rp);
	return 0;
}

/* Map a region the server offers for mmap as one piece (no sparse areas). */
static void region_mmap(struct vfu_client *c, unsigned idx, const struct vfio_region_info *ri,
			struct vfu_rx *rp)
{
	void *p;

	if (!(ri->flags & VFIO_REGION_INFO_FLAG_MMAP) || (ri->flags & VFIO_REGION_INFO_FLAG_CAPS) ||
	    rp->nfds != 1 || ri->size > CLIENT_MAX_MMAP || (ri->size & 4095) || (ri->offset & 4095))
		return;
	p = mmap(NULL, ri->size, PROT_READ | PROT_WRITE, MAP_SHARED, rp->fds[0], (off_t)ri->offset);
	if (p == MAP_FAILED)
		return;
	c->dev.region[idx].map = p;
	c->map_len[idx] = ri->size;
}

#define CLIENT_MAX_INFO 256u /* region info with capabilities we ask for */

int nvemu_vfu_sparse_area(const uint8_t *info, uint32_t len, uint64_t *off, uint64_t *size)
{
	struct vfio_region_info ri;
	uint32_t at;
	unsigned hops = 0;

	if (len < sizeof(ri))
		return -ENOENT;
	memcpy(&ri, info, sizeof(ri));
	if (!(ri.flags & VFIO_REGION_INFO_FLAG_CAPS) || !(ri.flags & VFIO_REGION_INFO_FLAG_MMAP))
		return -ENOENT;
	at = ri.cap_offset;
	/* capability offsets only go forward, so the walk ends */
	while (at >= sizeof(ri) && at <= len - sizeof(struct vfio_info_cap_header) && hops++ < 16) {
		struct vfio_info_cap_header h;
		struct vfio_region_info_cap_sparse_mmap sp;

		memcpy(&h, info + at, sizeof(h));
		if (h.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP && at <= len - sizeof(sp)) {
			memcpy(&sp, info + at, sizeof(sp));
			for (uint32_t a = 0; a < sp.nr_areas && a < 16 &&
					     (uint64_t)at + sizeof(sp) + (a + 1ull) * sizeof(sp.areas[0]) <= len;
			     a++) {
				struct vfio_region_sparse_mmap_area ar;

				memcpy(&ar, info + at + sizeof(sp) + a * sizeof(ar), sizeof(ar));
				if (!ar.size || (ar.offset & 4095) || (ar.size & 4095) ||
				    ar.size > CLIENT_MAX_MMAP || ar.offset > ri.size ||
				    ar.size > ri.size - ar.offset)
					continue;
				*off = ar.offset;
				*size = ar.size;
				return 0;
			}
		}
		if (h.next <= at)
			break;
		at = h.next;
	}
	return -ENOENT;
}

/* Map the sparse area the capability offers (the NVMe doorbells), if any. */
static void region_mmap_sparse(struct vfu_client *c, unsigned idx, const uint8_t *info,
			       uint32_t len, struct vfu_rx *rp)
{
	struct vfio_region_info ri;
	uint64_t off, size;
	void *p;

	memcpy(&ri, info, sizeof(ri));
	if (rp->nfds != 1 || (ri.offset & 4095) || ri.offset > CLIENT_MAX_MMAP ||
	    nvemu_vfu_sparse_area(info, len, &off, &size))
		return;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, rp->fds[0], (off_t)(ri.offset + off));
	if (p == MAP_FAILED)
		return;
	c->dev.region[idx].part = p;
	c->dev.region[idx].part_off = off;
	c->dev.region[idx].part_len = size;
	c->map_len[idx] = size;
}

/* The region's info again with room for its capabilities (the server said how much). */
static void region_caps(struct vfu_client *c, unsigned idx, uint32_t argsz)
{
	struct vfio_region_info rq = {.argsz = argsz, .index = idx};
	uint8_t info[CLIENT_MAX_INFO];
	struct vfio_region_info ri;
	struct vfu_rx rp;

	if (argsz <= sizeof(rq) || argsz > sizeof(info))
		return;
	if (get_info(c, VFU_CMD_DEVICE_GET_REGION_INFO, &rq, sizeof(rq), info, sizeof(rq), &rp))
		return;
	/* all that was asked for came, about the same region */
	if (rp.hdr.size - sizeof(struct vfu_hdr) >= argsz) {
		memcpy(info, rp.buf + sizeof(struct vfu_hdr), argsz);
		memcpy(&ri, info, sizeof(ri));
		if (ri.index == idx)
			region_mmap_sparse(c, idx, info, argsz, &rp);
	}
	rx_free(&rp);
}

static int probe_regions(struct vfu_client *c, struct nvemu_error *err)
{
	struct vfio_device_info di = {.argsz = 16};
	int r = get_info(c, VFU_CMD_DEVICE_GET_INFO, &di, 16, &di, 16, NULL);

	if (r)
		return nvemu_error_set(err, r, "%s: device info: %s", c->dev.addr, strerror(-r));
	if (!(di.flags & VFIO_DEVICE_FLAGS_PCI))
		return nvemu_error_set(err, -ENODEV, "%s: not a PCI device", c->dev.addr);
	for (unsigned i = 0; i < NVEMU_PCI_NR_REGIONS && i < di.num_regions; i++) {
		struct vfio_region_info ri = {.argsz = sizeof(ri), .index = i};
		struct vfu_rx rp;

		if (i == 6) /* expansion ROM */
			continue;
		r = get_info(c, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), &ri, sizeof(ri),
			     &rp);
		if (r)
			return nvemu_error_set(err, r, "%s: region %u info: %s", c->dev.addr, i,
					       strerror(-r));
		if (ri.index != i) {
			rx_free(&rp);
			return nvemu_error_set(err, fail(c, -EPROTO),
					       "%s: region %u info: bad reply", c->dev.addr, i);
		}
		c->dev.region[i].size = ri.size;
		c->dev.region[i].readable = ri.flags & VFIO_REGION_INFO_FLAG_READ;
		c->dev.region[i].writable = ri.flags & VFIO_REGION_INFO_FLAG_WRITE;
		region_mmap(c, i, &ri, &rp);
		rx_free(&rp);
		if (!c->dev.region[i].map && ri.argsz > sizeof(ri))
			region_caps(c, i, ri.argsz);
	}
	for (unsigned i = 0; i < 3 && i < di.num_irqs; i++) {
		struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = i};

		r = get_info(c, VFU_CMD_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), &ii, sizeof(ii),
			     NULL);
		if (r)
			return nvemu_error_set(err, r, "%s: irq %u info: %s", c->dev.addr, i,
					       strerror(-r));
		/* vectors are 16-bit in PCI (MSI-X has at most 2048) */
		c->nirq[i] = (ii.flags & VFIO_IRQ_INFO_EVENTFD) && ii.count <= 2048 ? ii.count : 0;
	}
	return 0;
}

static int connect_socket(const char *path, struct nvemu_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, r;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return nvemu_error_set(err, -EINVAL, "traddr: a socket path of 1 to %zu bytes",
				       sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nvemu_error_set(err, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = -errno;
		close(fd);
		return nvemu_error_set(err, r, "%s: connect: %s", path, strerror(-r));
	}
	return fd;
}

int nvemu_vfu_client_open(const char *path, unsigned timeout_ms, struct nvemu_pci_dev **out,
			  struct nvemu_error *err)
{
	struct vfu_client *c;
	int fd, r;

	fd = connect_socket(path, err);
	if (fd < 0)
		return fd;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	nvemu_pci_dev_init(&c->dev, &vfu_client_ops, path);
	c->fd = fd;
	c->timeout_ms = timeout_ms ? timeout_ms : 5000;
	c->max_xfer = 4096;
	r = negotiate(c, err);
	if (!r)
		r = probe_regions(c, err);
	if (!r &&
	    (c->dev.region[0].size < 0x2000 || c->dev.region[NVEMU_PCI_REGION_CFG].size < 256))
		r = nvemu_error_set(err, -ENODEV, "%s: BAR0 or config space missing or too small",
				    path);
	if (r) {
		vfu_close(&c->dev);
		return r;
	}
	*out = &c->dev;
	return 0;
}

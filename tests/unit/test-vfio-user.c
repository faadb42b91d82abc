// SPDX-License-Identifier: MIT
/*
 * vfio-user server: a client in this process speaks the protocol the way
 * QEMU's vfio-user-pci does (version, region/IRQ info, config space and
 * BAR0 accesses, DMA map of a memfd, MSI-X eventfds) while the server runs
 * its loop in a thread. The controller is enabled and an Identify runs
 * through queues in client memory, shared by fd and, separately, reached
 * only through DMA_READ/DMA_WRITE messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include <nvemu/nvemu.h>
#include "engine/nvemu-internal.h"
#include <nvemu/pcie.h>
#include <nvemu/vfio-user.h>

#include "fd-exhaust.h"
#include "transport/vfio-user/vfu-proto.h"

#define TEST_SN "NVEMU-VFU-0001"
#define IOVA 0x100000ull
#define MEMSZ (1u << 20)
#define ASQ (IOVA)
#define ACQ (IOVA + 0x1000)
#define DATA (IOVA + 0x2000)
#define AQ_ENTRIES 16

struct env {
	struct nvemu_subsys *subsys;
	struct nvemu_ctrl *ctrl;
	struct nvemu_vfu_server *srv;
	pthread_t thr;
	atomic_bool stop;
	atomic_bool pause, paused; /* hold the server loop, e.g. to batch events */
	atomic_uint wakeups;	   /* times the server fd was readable */
	uint16_t port;
	char path[108];
	int fd;
	uint16_t id;
	/* guest memory: a memfd shared by fd, or plain memory reached by DMA messages */
	int memfd;
	uint8_t *mem;
	unsigned dma_reqs; /* DMA_READ/DMA_WRITE requests the client answered */
	uint16_t sq_tail, cq_head;
	bool phase;
};

static bool cl_send_may_fail;

static void *server_thread(void *arg)
{
	struct env *e = arg;

	while (!atomic_load(&e->stop)) {
		struct pollfd pfd = { .fd = nvemu_vfu_server_fd(e->srv), .events = POLLIN };

		if (atomic_load(&e->pause)) {
			atomic_store(&e->paused, true);
			usleep(100);
			continue;
		}
		atomic_store(&e->paused, false);
		if (poll(&pfd, 1, nvemu_vfu_server_needs_polling(e->srv) ? 1 : 10) > 0) {
			atomic_fetch_add(&e->wakeups, 1);
			nvemu_vfu_server_process(e->srv);
		} else
			nvemu_vfu_server_process(e->srv); /* timers */
		nvemu_vfu_server_poll(e->srv); /* mapped doorbells */
	}
	return NULL;
}

static int cl_connect(struct env *e)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(a.sun_path, e->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void cl_send(struct env *e, uint16_t id, uint16_t cmd, uint32_t flags, const void *body,
		    size_t len, const int *fds, unsigned nfds)
{
	struct vfu_hdr h = { .id = id, .command = cmd, .size = (uint32_t)(sizeof(h) + len),
			     .flags = flags };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)body, len } };
	union {
		char b[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} cb;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };

	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	{
		ssize_t n = sendmsg(e->fd, &mh, MSG_NOSIGNAL);

		/* A flood may be cut off by the server mid-way: that is what it tests. */
		if (cl_send_may_fail && n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return;
		assert_int_equal(n, (ssize_t)h.size);
	}
}

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* One whole message; NULL on EOF/timeout. */
static uint8_t *cl_recv(struct env *e)
{
	struct vfu_hdr h;
	uint8_t *m;

	if (read_full(e->fd, &h, sizeof(h)))
		return NULL;
	assert_true(h.size >= sizeof(h) && h.size < (4u << 20));
	m = malloc(h.size);
	memcpy(m, &h, sizeof(h));
	assert_int_equal(read_full(e->fd, m + sizeof(h), h.size - sizeof(h)), 0);
	return m;
}

/* Answer a DMA_READ/DMA_WRITE the server sent, from e->mem (based at IOVA). */
static void cl_serve_dma(struct env *e, uint8_t *m)
{
	struct vfu_dma_rw *rq = (void *)m;
	uint64_t off = rq->offset - IOVA;

	assert_true(rq->hdr.command == VFU_CMD_DMA_READ || rq->hdr.command == VFU_CMD_DMA_WRITE);
	assert_true(rq->hdr.size >= 32);
	assert_true(rq->offset >= IOVA && off + rq->count <= MEMSZ);
	e->dma_reqs++;
	if (rq->hdr.command == VFU_CMD_DMA_READ) {
		size_t sz = VFU_DMARW_DATA + rq->count + 4;
		uint8_t *r = calloc(1, sz);

		memcpy(r + sizeof(struct vfu_hdr), m + sizeof(struct vfu_hdr), 12);
		memcpy(r + VFU_DMARW_DATA, e->mem + off, rq->count);
		cl_send(e, rq->hdr.id, rq->hdr.command, VFU_REPLY, r + sizeof(struct vfu_hdr),
			sz - sizeof(struct vfu_hdr), NULL, 0);
		free(r);
	} else {
		assert_true(rq->hdr.size >= VFU_DMARW_DATA + rq->count);
		memcpy(e->mem + off, m + VFU_DMARW_DATA, rq->count);
		cl_send(e, rq->hdr.id, rq->hdr.command, VFU_REPLY, NULL, 0, NULL, 0);
	}
}

/*
 * Send a request and wait for its reply, serving the server's DMA requests
 * meanwhile. Returns 0 or the errno of an error reply; *reply (when non-NULL)
 * gets the reply message.
 */
static int cl_call_fds(struct env *e, uint16_t cmd, const void *body, size_t len,
		       const int *fds, unsigned nfds, uint8_t **reply)
{
	uint16_t id = ++e->id;

	cl_send(e, id, cmd, VFU_REQUEST, body, len, fds, nfds);
	for (;;) {
		uint8_t *m = cl_recv(e);
		struct vfu_hdr *h = (void *)m;

		assert_non_null(m);
		if ((h->flags & VFU_TYPE_MASK) == VFU_REQUEST) {
			cl_serve_dma(e, m);
			free(m);
			continue;
		}
		assert_int_equal(h->id, id);
		assert_int_equal(h->command, cmd);
		if (h->flags & VFU_ERROR) {
			int err = (int)h->error;

			free(m);
			assert_true(err > 0);
			return err;
		}
		if (reply)
			*reply = m;
		else
			free(m);
		return 0;
	}
}

static int cl_call(struct env *e, uint16_t cmd, const void *body, size_t len, uint8_t **reply)
{
	return cl_call_fds(e, cmd, body, len, NULL, 0, reply);
}

static int cl_version(struct env *e, uint16_t major, char **caps)
{
	const char *json = "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,"
			   "\"pgsizes\":4096,\"max_dma_maps\":65535,\"migration\":{\"pgsize\":4096,"
			   "\"max_bitmap_size\":268435456},\"write_multiple\":true}}";
	size_t len = 4 + strlen(json) + 1;
	uint8_t *body = malloc(len), *rp = NULL;
	uint16_t minor = 0;
	int r;

	memcpy(body, &major, 2);
	memcpy(body + 2, &minor, 2);
	memcpy(body + 4, json, strlen(json) + 1);
	r = cl_call(e, VFU_CMD_VERSION, body, len, &rp);
	free(body);
	if (r)
		return r;
	struct vfu_version *v = (void *)rp;

	assert_int_equal(v->major, 0);
	assert_int_equal(v->minor, 0);
	/* QEMU reads the reply into a buffer the size of its request */
	assert_true(v->hdr.size <= sizeof(struct vfu_hdr) + len);
	assert_int_equal(rp[v->hdr.size - 1], '\0');
	if (caps)
		*caps = strdup(v->caps);
	free(rp);
	return 0;
}

static int region_rw(struct env *e, uint32_t region, uint64_t off, void *data, uint32_t count,
		     bool write)
{
	size_t len = 16 + (write ? count : 0);
	uint8_t *b = calloc(1, len), *rp = NULL;
	int r;

	memcpy(b, &off, 8);
	memcpy(b + 8, &region, 4);
	memcpy(b + 12, &count, 4);
	if (write)
		memcpy(b + 16, data, count);
	r = cl_call(e, write ? VFU_CMD_REGION_WRITE : VFU_CMD_REGION_READ, b, len, &rp);
	free(b);
	if (r)
		return r;
	struct vfu_region_rw *rw = (void *)rp;

	assert_int_equal(rw->count, count);
	assert_true(rw->offset == off);
	if (!write) {
		assert_int_equal(rw->hdr.size, sizeof(*rw) + count);
		memcpy(data, rw->data, count);
	}
	free(rp);
	return 0;
}

/* A write the client does not wait for (QEMU posts BAR writes). */
static void region_post(struct env *e, uint32_t region, uint64_t off, const void *data,
			uint32_t count)
{
	uint8_t b[16 + 8];

	memcpy(b, &off, 8);
	memcpy(b + 8, &region, 4);
	memcpy(b + 12, &count, 4);
	memcpy(b + 16, data, count);
	cl_send(e, ++e->id, VFU_CMD_REGION_WRITE, VFU_REQUEST | VFU_NO_REPLY, b, 16 + count,
		NULL, 0);
}

static uint32_t cfg32(struct env *e, uint32_t off)
{
	uint32_t v = 0;

	assert_int_equal(region_rw(e, VFIO_PCI_CONFIG_REGION_INDEX, off, &v, 4, false), 0);
	return v;
}

static uint64_t bar_rd(struct env *e, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	assert_int_equal(region_rw(e, VFIO_PCI_BAR0_REGION_INDEX, off, &v, size, false), 0);
	return v;
}

static void bar_wr(struct env *e, uint64_t off, unsigned size, uint64_t v)
{
	assert_int_equal(region_rw(e, VFIO_PCI_BAR0_REGION_INDEX, off, &v, size, true), 0);
}

static void server_pause(struct env *e)
{
	atomic_store(&e->pause, true);
	while (!atomic_load(&e->paused))
		usleep(100);
}

static void server_resume(struct env *e)
{
	atomic_store(&e->pause, false);
}

static int setup_with(void **state, const struct nvemu_vfu_params *vp)
{
	struct env *e = calloc(1, sizeof(*e));
	struct nvemu_error err = { 0 };
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	uint16_t port, cntlid;
	uint32_t nsid;

	nvemu_subsys_params_init(&sp);
	sp.serial = TEST_SN;
	sp.model = "nvemu vfio-user test";
	assert_int_equal(nvemu_subsys_create(&sp, &e->subsys, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	assert_int_equal(nvemu_subsys_add_port(e->subsys, &pp, &port, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl(e->subsys, port, &cntlid, &err), 0);
	e->port = port;
	assert_int_equal(nvemu_subsys_add_ns(e->subsys, 1024, &nsid, &err), 0);
	e->ctrl = nvemu_subsys_ctrl(e->subsys, cntlid);
	assert_int_equal(nvemu_ctrl_attach_ns(e->ctrl, nsid, &err), 0);

	snprintf(e->path, sizeof(e->path), "/tmp/nvemu-test-vfu-%d.sock", getpid());
	assert_int_equal(nvemu_vfu_server_create(e->path, e->ctrl, vp, &e->srv, &err), 0);
	atomic_store(&e->stop, false);
	assert_int_equal(pthread_create(&e->thr, NULL, server_thread, e), 0);
	e->fd = cl_connect(e);
	e->memfd = -1;
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL);
}

/* A short DMA reply timeout, for tests that wait it out. */
static int setup_fast(void **state)
{
	struct nvemu_vfu_params vp;

	nvemu_vfu_params_init(&vp);
	vp.dma_timeout_ms = 500;
	return setup_with(state, &vp);
}

/* Set while test_accept_out_of_fds holds every descriptor: a failed assert must not leave it so. */
static struct tu_fd_exhaust *fdx_active;

static int teardown(void **state)
{
	struct env *e = *state;
	struct stat st;

	if (fdx_active) {
		tu_fd_exhaust_end(fdx_active);
		tu_fd_exhaust_free(fdx_active);
		fdx_active = NULL;
	}

	if (e->fd >= 0)
		close(e->fd);
	atomic_store(&e->stop, true);
	pthread_join(e->thr, NULL);
	nvemu_vfu_server_destroy(e->srv);
	assert_int_equal(stat(e->path, &st), -1); /* socket removed */
	nvemu_subsys_destroy(e->subsys);
	if (e->memfd >= 0) {
		munmap(e->mem, MEMSZ);
		close(e->memfd);
	} else {
		free(e->mem);
	}
	free(e);
	return 0;
}

static void test_version(void **state)
{
	struct env *e = *state;
	uint8_t *rp = NULL;
	char *caps = NULL;
	uint64_t v = 0;

	/* nothing before the version is negotiated */
	assert_int_equal(region_rw(e, VFIO_PCI_CONFIG_REGION_INDEX, 0, &v, 4, false), EINVAL);
	assert_int_equal(cl_version(e, 1, NULL), ENOTSUP);
	assert_int_equal(cl_call(e, VFU_CMD_DEVICE_GET_INFO, &(uint32_t[4]){ 16 }, 16, &rp),
			 EINVAL);
	assert_int_equal(cl_version(e, 0, &caps), 0);
	assert_non_null(strstr(caps, "\"capabilities\""));
	assert_non_null(strstr(caps, "\"max_msg_fds\":16"));
	assert_non_null(strstr(caps, "\"max_data_xfer_size\":1048576"));
	assert_null(strstr(caps, "migration"));
	free(caps);
	/* an unknown command gets an error, and the connection stays usable */
	assert_int_equal(cl_call(e, 99, NULL, 0, NULL), ENOSYS);
	assert_int_equal(cl_call(e, VFU_CMD_DEVICE_GET_INFO, &(uint32_t[4]){ 16 }, 16, &rp), 0);
	free(rp);
}

static void test_info(void **state)
{
	struct env *e = *state;
	struct vfio_region_info ri;
	struct vfio_irq_info ii;
	uint8_t *rp;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	assert_int_equal(cl_call(e, VFU_CMD_DEVICE_GET_INFO, &(uint32_t[4]){ 16 }, 16, &rp), 0);
	struct vfio_device_info *di = (void *)(rp + sizeof(struct vfu_hdr));

	assert_int_equal(di->num_regions, VFIO_PCI_NUM_REGIONS);
	assert_int_equal(di->num_irqs, VFIO_PCI_NUM_IRQS);
	assert_int_equal(di->flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
	free(rp);

	for (uint32_t idx = 0; idx <= VFIO_PCI_NUM_REGIONS; idx++) {
		memset(&ri, 0, sizeof(ri));
		ri.argsz = sizeof(ri);
		ri.index = idx;
		int r = cl_call(e, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), &rp);

		if (idx == VFIO_PCI_NUM_REGIONS) {
			assert_int_equal(r, EINVAL);
			continue;
		}
		assert_int_equal(r, 0);
		memcpy(&ri, rp + sizeof(struct vfu_hdr), sizeof(ri));
		free(rp);
		assert_int_equal(ri.index, idx);
		if (idx == VFIO_PCI_CONFIG_REGION_INDEX) {
			assert_int_equal(ri.size, NVEMU_PCIE_CFG_SIZE);
			assert_int_equal(ri.flags, VFIO_REGION_INFO_FLAG_READ |
						   VFIO_REGION_INFO_FLAG_WRITE);
		} else if (idx == VFIO_PCI_BAR0_REGION_INDEX) {
			assert_true(ri.size >= 16384);
			assert_int_equal(ri.size, NVEMU_PCIE_BAR0_SIZE);
			assert_false(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
			assert_true(ri.flags & VFIO_REGION_INFO_FLAG_WRITE);
		} else {
			assert_int_equal(ri.size, 0);
		}
	}
	/* argsz too small */
	memset(&ri, 0, sizeof(ri));
	ri.argsz = 8;
	assert_int_equal(cl_call(e, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL), EINVAL);

	memset(&ii, 0, sizeof(ii));
	ii.argsz = sizeof(ii);
	ii.index = VFIO_PCI_MSIX_IRQ_INDEX;
	assert_int_equal(cl_call(e, VFU_CMD_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), &rp), 0);
	memcpy(&ii, rp + sizeof(struct vfu_hdr), sizeof(ii));
	free(rp);
	assert_true(ii.flags & VFIO_IRQ_INFO_EVENTFD);
	/* one vector per I/O queue plus the admin queue's */
	assert_int_equal(ii.count, e->ctrl->p.num_io_queues + 1);
	ii.index = VFIO_PCI_INTX_IRQ_INDEX;
	assert_int_equal(cl_call(e, VFU_CMD_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), &rp), 0);
	memcpy(&ii, rp + sizeof(struct vfu_hdr), sizeof(ii));
	free(rp);
	assert_int_equal(ii.count, 1);
	assert_true(ii.flags & VFIO_IRQ_INFO_AUTOMASKED);
	ii.index = VFIO_PCI_NUM_IRQS;
	assert_int_equal(cl_call(e, VFU_CMD_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL), EINVAL);
}

static void test_config(void **state)
{
	struct env *e = *state;
	struct nvemu_vendor v;
	uint32_t id, cls, bar0, x;
	uint8_t ptr, buf[NVEMU_PCIE_CFG_SIZE];
	bool msix = false, exp = false;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	nvemu_vendor_build_default(&v);
	id = cfg32(e, 0);
	assert_int_equal(id & 0xffff, e->subsys->vendor.pci_vid);
	assert_int_equal(id >> 16, e->subsys->vendor.pci_did);
	cls = cfg32(e, 8);
	assert_int_equal(cls >> 8, 0x010802); /* mass storage, NVM, NVMe */
	x = cfg32(e, 0x2c);
	assert_int_equal(x & 0xffff, e->subsys->vendor.pci_svid);
	bar0 = cfg32(e, 0x10);
	assert_int_equal(bar0 & 0x7, 0x4); /* memory, 64-bit */

	/* the whole space in one message, as QEMU reads it */
	assert_int_equal(region_rw(e, VFIO_PCI_CONFIG_REGION_INDEX, 0, buf, sizeof(buf), false),
			 0);
	assert_int_equal(buf[0x0b], 0x01);
	assert_int_equal(buf[0x0a], 0x08);
	assert_int_equal(buf[0x09], 0x02);
	assert_true(buf[0x06] & 0x10); /* capability list */
	for (ptr = buf[0x34], x = 0; ptr && x < 48; ptr = buf[ptr + 1], x++) {
		if (buf[ptr] == 0x11)
			msix = true;
		if (buf[ptr] == 0x10)
			exp = true;
	}
	assert_true(msix);
	assert_true(exp);

	/* out of range / unknown regions */
	assert_int_equal(region_rw(e, VFIO_PCI_CONFIG_REGION_INDEX, NVEMU_PCIE_CFG_SIZE - 2, &x,
				   4, false), EINVAL);
	assert_int_equal(region_rw(e, VFIO_PCI_BAR2_REGION_INDEX, 0, &x, 4, false), EINVAL);
	assert_int_equal(region_rw(e, VFIO_PCI_BAR0_REGION_INDEX, NVEMU_PCIE_BAR0_SIZE, &x, 4,
				   false), EINVAL);
}

static void test_bar0_regs(void **state)
{
	struct env *e = *state;
	uint64_t cap;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	cap = bar_rd(e, 0x00, 8);
	assert_true((cap & 0xffff) >= 1); /* MQES */
	assert_true(cap & (1ull << 16));  /* CQR */
	assert_true(cap & (1ull << 37));  /* CSS: NVM command set */
	assert_int_equal((cap >> 32) & 0xf, 0); /* DSTRD */
	assert_int_equal(bar_rd(e, 0x00, 4), cap & 0xffffffff);
	assert_int_equal(bar_rd(e, 0x04, 4), cap >> 32);
	assert_int_equal(bar_rd(e, 0x08, 4), 0x00020000); /* VS 2.0 */
	assert_int_equal(bar_rd(e, 0x1c, 4) & 1, 0);	  /* CSTS.RDY */
	/* AQA is read/write; CMBLOC/CMBSZ read 0 */
	bar_wr(e, 0x24, 4, 0x000f000f);
	assert_int_equal(bar_rd(e, 0x24, 4), 0x000f000f);
	assert_int_equal(bar_rd(e, 0x38, 4), 0);
	assert_int_equal(bar_rd(e, 0x3c, 4), 0);
}

/* ---- the controller driven through queues in client memory */

static void mem_init(struct env *e, bool shared)
{
	struct vfu_dma_map dm = { 0 };
	int r;

	if (shared) {
		e->memfd = memfd_create("guest", MFD_CLOEXEC);
		assert_true(e->memfd >= 0);
		assert_int_equal(ftruncate(e->memfd, MEMSZ), 0);
		e->mem = mmap(NULL, MEMSZ, PROT_READ | PROT_WRITE, MAP_SHARED, e->memfd, 0);
		assert_true(e->mem != MAP_FAILED);
	} else {
		e->mem = calloc(1, MEMSZ);
	}
	dm.argsz = 32;
	dm.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	dm.offset = 0;
	dm.iova = IOVA;
	dm.size = MEMSZ;
	if (shared)
		r = cl_call_fds(e, VFU_CMD_DMA_MAP, &dm.argsz, sizeof(dm) - sizeof(dm.hdr),
				&e->memfd, 1, NULL);
	else
		r = cl_call(e, VFU_CMD_DMA_MAP, &dm.argsz, sizeof(dm) - sizeof(dm.hdr), NULL);
	assert_int_equal(r, 0);
}

static int set_msix(struct env *e, uint32_t start, uint32_t count, const int *fds)
{
	struct vfio_irq_set is = {
		.argsz = sizeof(is),
		.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = VFIO_PCI_MSIX_IRQ_INDEX,
		.start = start,
		.count = count,
	};

	return cl_call_fds(e, VFU_CMD_DEVICE_SET_IRQS, &is, sizeof(is), fds, fds ? count : 0,
			   NULL);
}

static void ctrl_enable(struct env *e)
{
	int i;

	memset(e->mem, 0, 0x2000);
	e->sq_tail = e->cq_head = 0;
	e->phase = true;
	bar_wr(e, 0x24, 4, (AQ_ENTRIES - 1) << 16 | (AQ_ENTRIES - 1));
	bar_wr(e, 0x28, 8, ASQ);
	bar_wr(e, 0x30, 8, ACQ);
	assert_int_equal(bar_rd(e, 0x28, 8), ASQ);
	bar_wr(e, 0x14, 4, 6u << 16 | 4u << 20 | 1); /* IOSQES, IOCQES, EN */
	for (i = 0; i < 1000 && !(bar_rd(e, 0x1c, 4) & 1); i++)
		usleep(1000);
	assert_int_equal(bar_rd(e, 0x1c, 4) & 3, 1); /* RDY, no CFS */
}

/* Submit through the admin SQ with a posted doorbell write; returns the CQE. */
static struct nvemu_cqe admin_cmd(struct env *e, struct nvemu_sqe *sqe)
{
	struct nvemu_cqe cqe;
	uint32_t db;
	int i;

	memcpy(e->mem + (ASQ - IOVA) + e->sq_tail * 64, sqe, 64);
	e->sq_tail = (e->sq_tail + 1) % AQ_ENTRIES;
	db = e->sq_tail;
	region_post(e, VFIO_PCI_BAR0_REGION_INDEX, NVEMU_PCIE_DB_OFF, &db, 4);
	/* a read cannot pass the posted write: the command has been fetched */
	for (i = 0; i < 1000; i++) {
		(void)bar_rd(e, 0x1c, 4);
		memcpy(&cqe, e->mem + (ACQ - IOVA) + e->cq_head * 16, 16);
		if ((le16toh(cqe.status) & 1) == e->phase)
			break;
		usleep(1000);
	}
	assert_int_equal(le16toh(cqe.status) & 1, e->phase);
	assert_int_equal(cqe.cid, sqe->cid);
	assert_int_equal(le16toh(cqe.sqid), 0);
	e->cq_head = (e->cq_head + 1) % AQ_ENTRIES;
	if (!e->cq_head)
		e->phase = !e->phase;
	bar_wr(e, NVEMU_PCIE_DB_OFF + 4, 4, e->cq_head);
	return cqe;
}

static void identify_ctrl(struct env *e)
{
	struct nvemu_sqe sqe = { 0 };
	struct nvemu_cqe cqe;
	struct nvme_id_ctrl id;
	char sn[sizeof(id.sn) + 1];

	memset(e->mem + (DATA - IOVA), 0xa5, 4096);
	sqe.opc = nvme_admin_identify;
	sqe.cid = 0x1234;
	sqe.dptr1 = htole64(DATA);
	sqe.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	cqe = admin_cmd(e, &sqe);
	assert_int_equal(le16toh(cqe.status) >> 1, 0);
	memcpy(&id, e->mem + (DATA - IOVA), sizeof(id));
	memcpy(sn, id.sn, sizeof(id.sn));
	sn[sizeof(id.sn)] = 0;
	assert_int_equal(strncmp(sn, TEST_SN, strlen(TEST_SN)), 0);
	assert_int_equal(le16toh(id.vid), e->subsys->vendor.pci_vid);
	assert_int_equal(le16toh(id.ssvid), e->subsys->vendor.pci_svid);

	/* an invalid opcode comes back as such, through the same path */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = 0xfe;
	sqe.cid = 7;
	cqe = admin_cmd(e, &sqe);
	assert_int_equal((le16toh(cqe.status) >> 1) & 0x7ff, NVME_SC_INVALID_OPCODE);
}

static void test_identify_shared(void **state)
{
	struct env *e = *state;
	struct nvemu_vfu_stats st;
	uint64_t cnt = 0;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_int_equal(cl_version(e, 0, NULL), 0);
	mem_init(e, true);
	assert_int_equal(set_msix(e, 0, 1, &efd), 0);
	/* more fds than the count says, vectors beyond the table */
	int two[2] = { efd, efd };

	assert_int_equal(set_msix(e, 0, 1, NULL) == 0, 1);
	assert_int_equal(cl_call_fds(e, VFU_CMD_DEVICE_SET_IRQS,
				     &(struct vfio_irq_set){ .argsz = sizeof(struct vfio_irq_set),
					     .flags = VFIO_IRQ_SET_DATA_EVENTFD |
						      VFIO_IRQ_SET_ACTION_TRIGGER,
					     .index = VFIO_PCI_MSIX_IRQ_INDEX, .count = 1 },
				     sizeof(struct vfio_irq_set), two, 2, NULL), EINVAL);
	assert_int_equal(set_msix(e, e->ctrl->p.num_io_queues + 1, 1, &efd), EINVAL);
	assert_int_equal(set_msix(e, 0, 1, &efd), 0);
	ctrl_enable(e);
	identify_ctrl(e);
	assert_int_equal(e->dma_reqs, 0); /* all through the mapping */
	assert_int_equal(read(efd, &cnt, sizeof(cnt)), (ssize_t)sizeof(cnt));
	assert_true(cnt >= 1);
	nvemu_vfu_server_stats(e->srv, &st);
	assert_int_equal(st.dma_maps, 1);
	assert_true(st.irqs >= 1);
	close(efd);
}

static void test_identify_unshared(void **state)
{
	struct env *e = *state;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	mem_init(e, false);
	ctrl_enable(e);
	identify_ctrl(e);
	/* SQE fetch, data and CQE went through DMA_READ/DMA_WRITE messages */
	assert_true(e->dma_reqs >= 3);
}

static void test_dma_map_errors(void **state)
{
	struct env *e = *state;
	struct vfu_dma_map dm = { 0 };
	struct vfu_dma_unmap du = { 0 };

	assert_int_equal(cl_version(e, 0, NULL), 0);
	mem_init(e, true);
	dm.argsz = 32;
	dm.flags = VFIO_DMA_MAP_FLAG_READ;
	dm.iova = IOVA + 0x1000; /* overlaps */
	dm.size = 0x1000;
	assert_int_equal(cl_call(e, VFU_CMD_DMA_MAP, &dm.argsz, 32, NULL), EEXIST);
	dm.iova = IOVA + MEMSZ;
	dm.size = 0;
	assert_int_equal(cl_call(e, VFU_CMD_DMA_MAP, &dm.argsz, 32, NULL), EINVAL);
	/* unaligned offset with an fd */
	dm.size = 0x1000;
	dm.offset = 0x10;
	assert_int_equal(cl_call_fds(e, VFU_CMD_DMA_MAP, &dm.argsz, 32, &e->memfd, 1, NULL),
			 EINVAL);
	/* half of a mapping cannot be unmapped */
	du.argsz = 24;
	du.iova = IOVA;
	du.size = MEMSZ / 2;
	assert_int_equal(cl_call(e, VFU_CMD_DMA_UNMAP, &du.argsz, 24, NULL), EINVAL);
	du.size = MEMSZ;
	assert_int_equal(cl_call(e, VFU_CMD_DMA_UNMAP, &du.argsz, 24, NULL), 0);
	/* now the range is free again */
	dm.iova = IOVA;
	dm.offset = 0;
	assert_int_equal(cl_call(e, VFU_CMD_DMA_MAP, &dm.argsz, 32, NULL), 0);
	du.flags = VFIO_DMA_UNMAP_FLAG_ALL;
	du.iova = du.size = 0;
	assert_int_equal(cl_call(e, VFU_CMD_DMA_UNMAP, &du.argsz, 24, NULL), 0);
	/* an fd on a command that takes none */
	assert_int_equal(cl_call_fds(e, VFU_CMD_DEVICE_GET_INFO, &(uint32_t[4]){ 16 }, 16,
				     &e->memfd, 1, NULL), EINVAL);
}

static void test_reset_and_reconnect(void **state)
{
	struct env *e = *state;
	struct nvemu_vfu_stats st;
	uint8_t byte;
	int other, i;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	mem_init(e, true);
	ctrl_enable(e);
	identify_ctrl(e);

	/* VFIO_DEVICE_RESET: the controller is disabled, then works again */
	assert_int_equal(cl_call(e, VFU_CMD_DEVICE_RESET, NULL, 0, NULL), 0);
	assert_int_equal(bar_rd(e, 0x1c, 4) & 1, 0);
	assert_int_equal(bar_rd(e, 0x14, 4) & 1, 0);
	ctrl_enable(e);
	identify_ctrl(e);

	/* a second VMM is turned away while the first is connected */
	other = cl_connect(e);
	assert_int_equal(read(other, &byte, 1), 0);
	close(other);

	/* the first goes away without a word: the controller is reset */
	close(e->fd);
	for (i = 0; i < 1000 && nvemu_vfu_server_connected(e->srv); i++)
		usleep(1000);
	assert_false(nvemu_vfu_server_connected(e->srv));
	e->fd = cl_connect(e);
	e->id = 0;
	assert_int_equal(cl_version(e, 0, NULL), 0);
	assert_int_equal(bar_rd(e, 0x1c, 4) & 1, 0);
	/* the old mappings are gone with the old client; map again and run */
	munmap(e->mem, MEMSZ);
	close(e->memfd);
	mem_init(e, true);
	ctrl_enable(e);
	identify_ctrl(e);
	nvemu_vfu_server_stats(e->srv, &st);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.disconnects, 1);
}

static void test_socket_in_use(void **state)
{
	struct env *e = *state;
	struct nvemu_error err = { 0 };
	struct nvemu_vfu_server *s2 = NULL;
	char path[] = "/tmp/nvemu-test-vfu-XXXXXX";
	int fd = mkstemp(path);

	/* the socket is alive: a second server on it is refused */
	assert_int_equal(nvemu_vfu_server_create(e->path, e->ctrl, NULL, &s2, &err), -EADDRINUSE);
	/* a regular file is never replaced */
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(nvemu_vfu_server_create(path, e->ctrl, NULL, &s2, &err), -EEXIST);
	unlink(path);
}

/* A second controller of the subsystem, for a second server. */
static struct nvemu_ctrl *second_ctrl(struct env *e)
{
	struct nvemu_error err = { 0 };
	uint16_t cntlid;

	assert_int_equal(nvemu_subsys_add_ctrl(e->subsys, e->port, &cntlid, &err), 0);
	return nvemu_subsys_ctrl(e->subsys, cntlid);
}

static void test_socket_owner_only(void **state)
{
	struct env *e = *state;
	struct nvemu_ctrl *c2 = second_ctrl(e);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct nvemu_error err = { 0 };
	struct nvemu_vfu_server *s2 = NULL;
	struct stat st;
	mode_t old;
	int fd, r;

	snprintf(a.sun_path, sizeof(a.sun_path), "/tmp/nvemu-test-vfu-%d-2.sock", getpid());
	unlink(a.sun_path);
	/* a stale socket: bound, its server gone; it is replaced */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	old = umask(0);
	r = nvemu_vfu_server_create(a.sun_path, c2, NULL, &s2, &err);
	umask(old);
	assert_int_equal(r, 0);
	assert_int_equal(stat(a.sun_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	nvemu_vfu_server_destroy(s2);
	assert_int_equal(stat(a.sun_path, &st), -1);
}

/* A server that does not accept (stopped, backlog full) is alive, not stale. */
static void test_socket_in_use_busy(void **state)
{
	struct env *e = *state;
	struct nvemu_error err = { 0 };
	struct nvemu_vfu_server *s2 = NULL;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st0, st1;
	int q[64], n = 0;

	assert_int_equal(stat(e->path, &st0), 0);
	server_pause(e);
	strcpy(a.sun_path, e->path);
	for (n = 0; n < 64; n++) {
		q[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		assert_true(q[n] >= 0);
		if (connect(q[n], (struct sockaddr *)&a, sizeof(a))) {
			assert_int_equal(errno, EAGAIN); /* the backlog is full */
			close(q[n]);
			break;
		}
	}
	assert_true(n < 64);
	/* neither a hang on the full backlog nor a takeover */
	assert_int_equal(nvemu_vfu_server_create(e->path, second_ctrl(e), NULL, &s2, &err),
			 -EADDRINUSE);
	assert_non_null(strstr(err.msg, "another process"));
	assert_int_equal(stat(e->path, &st1), 0);
	assert_int_equal(st1.st_ino, st0.st_ino);
	while (n--)
		close(q[n]);
	server_resume(e);
	/* the first server still serves its client */
	assert_int_equal(cl_version(e, 0, NULL), 0);
}

/*
 * A VMM that disconnects and connects again at once: the hang-up and the new
 * connection reach the server in one batch; the newcomer is served.
 */
static void test_reconnect_at_once(void **state)
{
	struct env *e = *state;
	struct nvemu_vfu_stats st;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	for (int i = 0; i < 20; i++) {
		server_pause(e);
		close(e->fd);
		e->fd = cl_connect(e);
		server_resume(e);
		e->id = 0;
		assert_int_equal(cl_version(e, 0, NULL), 0);
	}
	nvemu_vfu_server_stats(e->srv, &st);
	assert_int_equal(st.connects, 21);
	assert_int_equal(st.disconnects, 20);
}

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* DMA_UNMAP with the region's fd attached (as some clients send it) is accepted. */
static void test_dma_unmap_with_fd(void **state)
{
	struct env *e = *state;
	struct vfu_dma_unmap du = { .argsz = 24, .iova = IOVA, .size = MEMSZ };
	struct vfu_dma_map dm = { .argsz = 32, .iova = IOVA, .size = MEMSZ,
				  .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE };
	unsigned fds;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	mem_init(e, true);
	ctrl_enable(e);
	identify_ctrl(e);
	fds = count_fds();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cl_call_fds(e, VFU_CMD_DMA_UNMAP, &du.argsz, 24, &e->memfd, 1,
					     NULL), 0);
		/* the range is free again: map it anew and run through it */
		assert_int_equal(cl_call_fds(e, VFU_CMD_DMA_MAP, &dm.argsz, 32, &e->memfd, 1,
					     NULL), 0);
		identify_ctrl(e);
	}
	/* the server kept none of the fds it was sent */
	assert_int_equal(count_fds(), fds);
}

/* Requests flooding in while the server waits for its DMA_READ reply cut the client off. */
static void test_flood_during_dma(void **state)
{
	struct env *e = *state;
	struct timeval tv = { .tv_sec = 3 };
	struct nvemu_sqe sqe = { .opc = nvme_admin_identify, .cid = 1 };
	uint32_t db = 1, info[4] = { 16 };
	struct vfu_hdr *h;
	uint8_t *m, byte;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	mem_init(e, false);
	ctrl_enable(e);
	sqe.dptr1 = htole64(DATA);
	sqe.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	memcpy(e->mem + (ASQ - IOVA), &sqe, 64);
	region_post(e, VFIO_PCI_BAR0_REGION_INDEX, NVEMU_PCIE_DB_OFF, &db, 4);
	m = cl_recv(e); /* the SQE fetch, left unanswered */
	assert_non_null(m);
	h = (void *)m;
	assert_int_equal(h->command, VFU_CMD_DMA_READ);
	free(m);
	cl_send_may_fail = true;
	for (int i = 0; i < 1100; i++)
		cl_send(e, ++e->id, VFU_CMD_DEVICE_GET_INFO, VFU_REQUEST | VFU_NO_REPLY, info,
			sizeof(info), NULL, 0);
	cl_send_may_fail = false;
	/* cut off at once, not after the 5 s DMA timeout */
	setsockopt(e->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* EOF, or a reset for the requests it never read; not the receive timeout */
	errno = 0;
	assert_true(read(e->fd, &byte, 1) <= 0);
	assert_true(errno == 0 || errno == ECONNRESET);
	for (int i = 0; i < 1000 && nvemu_vfu_server_connected(e->srv); i++)
		usleep(1000);
	assert_false(nvemu_vfu_server_connected(e->srv));
}

/* Stray replies do not stretch the wait for a DMA reply beyond its timeout. */
static void test_dma_wait_bounded(void **state)
{
	struct env *e = *state;
	struct timeval tv = { .tv_sec = 3 };
	struct nvemu_sqe sqe = { .opc = nvme_admin_identify, .cid = 1 };
	uint32_t db = 1;
	uint8_t *m, byte;
	bool cut = false;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	mem_init(e, false);
	ctrl_enable(e);
	sqe.dptr1 = htole64(DATA);
	sqe.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	memcpy(e->mem + (ASQ - IOVA), &sqe, 64);
	region_post(e, VFIO_PCI_BAR0_REGION_INDEX, NVEMU_PCIE_DB_OFF, &db, 4);
	m = cl_recv(e);
	assert_non_null(m);
	free(m);
	/* a reply to nothing every 50 ms for up to 3 s; the timeout is 500 ms */
	for (int i = 0; i < 60 && !cut; i++) {
		struct pollfd p = { .fd = e->fd, .events = POLLIN };
		struct vfu_hdr rh = { .id = 0x7777, .command = VFU_CMD_DMA_READ,
				      .size = sizeof(rh), .flags = VFU_REPLY };

		if (send(e->fd, &rh, sizeof(rh), MSG_NOSIGNAL) != sizeof(rh))
			cut = true;
		if (poll(&p, 1, 50) == 1)
			cut = true;
	}
	assert_true(cut);
	setsockopt(e->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	errno = 0;
	assert_true(read(e->fd, &byte, 1) <= 0);
	assert_true(errno == 0 || errno == ECONNRESET);
}

/*
 * Out of descriptors, the listener rests instead of spinning (the pending
 * connection keeps it readable), says so once, and serves the client once
 * descriptors are free again.
 */
static void test_accept_out_of_fds(void **state)
{
	struct env *e = *state;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	static struct tu_fd_exhaust fdx;
	struct nvemu_vfu_stats st;
	unsigned wake0, wakes;
	double cpu0, cpu, secs;
	struct timespec t0, t1;
	bool was_connected;
	int cfd;

	/* free the seat: the next client would be accepted */
	close(e->fd);
	e->fd = -1;
	for (int i = 0; i < 1000 && nvemu_vfu_server_connected(e->srv); i++)
		usleep(1000);
	assert_false(nvemu_vfu_server_connected(e->srv));

	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	tu_fd_exhaust_begin(&fdx);
	fdx_active = &fdx;
	strcpy(a.sun_path, e->path);
	assert_int_equal(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	wake0 = atomic_load(&e->wakeups);
	cpu0 = tu_cpu_seconds();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* At least 1 s, and until the server tried at least once (a loaded machine may delay it). */
	usleep(1000 * 1000);
	for (int i = 0; i < 100; i++) {
		nvemu_vfu_server_stats(e->srv, &st);
		if (st.accept_errors)
			break;
		usleep(100 * 1000);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	wakes = atomic_load(&e->wakeups) - wake0;
	cpu = tu_cpu_seconds() - cpu0;
	nvemu_vfu_server_stats(e->srv, &st);
	/* Read before the descriptors come back: then the waiting client gets in at once. */
	was_connected = nvemu_vfu_server_connected(e->srv);
	tu_fd_exhaust_end(&fdx);
	fdx_active = NULL;
	assert_false(was_connected);

	/*
	 * Rests ~100 ms per try: about ten wake-ups a second, not thousands.
	 * The bounds scale with the time that really passed, so that a
	 * machine busy with other work cannot fail a correct back-off.
	 */
	print_message("# out of fds for %.2f s: %u wake-ups, %u accept failures, %.3f s CPU\n",
		      secs, wakes, (unsigned)st.accept_errors, cpu);
	assert_true(st.accept_errors >= 1 && st.accept_errors <= 30 * secs);
	assert_true(wakes <= 60 * secs);
	assert_true(cpu < 0.5 * secs);
	/* one line, not one per failure */
	assert_int_equal(tu_fd_exhaust_log_lines(&fdx, "not accepting"), 1);
	tu_fd_exhaust_free(&fdx);

	/* descriptors are back: the waiting client is served (within 10 s, even loaded) */
	for (int i = 0; i < 10000 && !nvemu_vfu_server_connected(e->srv); i++)
		usleep(1000);
	assert_true(nvemu_vfu_server_connected(e->srv));
	e->fd = cfd;
	e->id = 0;
	assert_int_equal(cl_version(e, 0, NULL), 0);
}

/*
 * A command held by a suspend when its client went away runs on resume,
 * once the next client enabled the controller: it writes its data into the
 * old client's memory, which must still be mapped there, not into whatever
 * (the new client's memory) was mapped at its address since.
 */
static void test_held_command_outlives_client(void **state)
{
	struct env *e = *state;
	struct nvemu_sqe sqe = { .opc = nvme_admin_identify, .cid = 9 };
	uint8_t want[4096];
	uint32_t db;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	mem_init(e, true);
	ctrl_enable(e);
	identify_ctrl(e);
	server_pause(e);
	nvemu_ctrl_suspend(e->ctrl, false);
	server_resume(e);
	sqe.dptr1 = htole64(DATA);
	sqe.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	memcpy(e->mem + (ASQ - IOVA) + e->sq_tail * 64, &sqe, 64);
	db = ++e->sq_tail % AQ_ENTRIES;
	region_post(e, VFIO_PCI_BAR0_REGION_INDEX, NVEMU_PCIE_DB_OFF, &db, 4);
	(void)bar_rd(e, 0x1c, 4); /* fetched, and held */
	assert_true(nvemu_pcie_ctrl_busy(nvemu_vfu_server_pcie(e->srv)));

	/* the client goes away: the controller is reset, its mappings retired */
	close(e->fd);
	for (int i = 0; i < 1000 && nvemu_vfu_server_connected(e->srv); i++)
		usleep(1000);
	assert_false(nvemu_vfu_server_connected(e->srv));

	/* the next client maps its memory and enables the controller */
	e->fd = cl_connect(e);
	e->id = 0;
	assert_int_equal(cl_version(e, 0, NULL), 0);
	munmap(e->mem, MEMSZ);
	close(e->memfd);
	mem_init(e, true);
	ctrl_enable(e);
	memset(want, 0x5a, sizeof(want));
	memcpy(e->mem + (DATA - IOVA), want, sizeof(want));

	/* resumed, the held Identify runs and writes its data: not into ours */
	server_pause(e);
	nvemu_ctrl_resume(e->ctrl);
	assert_false(nvemu_pcie_ctrl_busy(nvemu_vfu_server_pcie(e->srv)));
	server_resume(e);
	assert_memory_equal(e->mem + (DATA - IOVA), want, sizeof(want));
	identify_ctrl(e);
}

/* BAR0 region info with room for capabilities: the doorbell pages, with a memfd. */
static int region_info_sparse(struct env *e, uint32_t argsz, uint8_t *out, size_t outlen)
{
	struct vfio_region_info ri = { .argsz = argsz, .index = VFIO_PCI_BAR0_REGION_INDEX };
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { out, outlen };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
			     .msg_controllen = sizeof(cb.b) };
	struct cmsghdr *c;
	int fd = -1;
	ssize_t n;

	cl_send(e, ++e->id, VFU_CMD_DEVICE_GET_REGION_INFO, VFU_REQUEST, &ri, sizeof(ri), NULL, 0);
	n = recvmsg(e->fd, &mh, MSG_WAITALL);
	assert_true(n >= (ssize_t)(sizeof(struct vfu_hdr) + sizeof(ri)));
	assert_int_equal(((struct vfu_hdr *)out)->size, n);
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_type == SCM_RIGHTS) {
			assert_int_equal(c->cmsg_len, CMSG_LEN(sizeof(int)));
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
		}
	return fd;
}

static void test_doorbells_mapped(void **state)
{
	struct env *e = *state;
	struct {
		struct vfu_hdr h;
		struct vfio_region_info info;
		struct vfu_sparse_mmap1 sp;
	} r;
	struct nvemu_pcie_db_stats st;
	struct nvemu_sqe sqe = { .opc = nvme_admin_identify, .cid = 9, .cdw10 = 1 };
	struct nvemu_cqe cqe;
	volatile uint32_t *db;
	int fd, i;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	/* too small for the capability: its size, no mapping, no fd */
	memset(&r, 0, sizeof(r));
	fd = region_info_sparse(e, sizeof(r.info), (uint8_t *)&r, sizeof(r.h) + sizeof(r.info));
	assert_int_equal(fd, -1);
	assert_int_equal(r.info.argsz, sizeof(r) - sizeof(r.h));
	assert_false(r.info.flags & (VFIO_REGION_INFO_FLAG_CAPS | VFIO_REGION_INFO_FLAG_MMAP));
	/* with room: the sparse area over the doorbells and the fd to map */
	fd = region_info_sparse(e, sizeof(r) - sizeof(r.h), (uint8_t *)&r, sizeof(r));
	assert_true(fd >= 0);
	assert_true(r.info.flags & VFIO_REGION_INFO_FLAG_CAPS);
	assert_true(r.info.flags & VFIO_REGION_INFO_FLAG_MMAP);
	assert_int_equal(r.info.cap_offset, sizeof(r.info));
	assert_int_equal(r.sp.header.id, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
	assert_int_equal(r.sp.header.next, 0);
	assert_int_equal(r.sp.nr_areas, 1);
	assert_int_equal(r.sp.area.offset, NVEMU_PCIE_DB_OFF);
	assert_int_equal(r.sp.area.size, 4096);
	db = mmap(NULL, r.sp.area.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		  (off_t)(r.info.offset + r.sp.area.offset));
	assert_true(db != MAP_FAILED);
	close(fd);

	/* an admin command rung through the mapping: no doorbell message */
	mem_init(e, true);
	ctrl_enable(e);
	assert_true(nvemu_vfu_server_needs_polling(e->srv));
	sqe.dptr1 = IOVA + 0x4000;
	memcpy(e->mem + (ASQ - IOVA), &sqe, 64);
	__atomic_store_n(&db[0], 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2000; i++) {
		memcpy(&cqe, e->mem + (ACQ - IOVA), 16);
		if (le16toh(cqe.status) & 1)
			break;
		usleep(1000);
	}
	assert_int_equal(le16toh(cqe.status), 1); /* phase 1, success */
	assert_int_equal(cqe.cid, 9);
	assert_memory_equal(e->mem + 0x4000 + 4, TEST_SN, strlen(TEST_SN));
	__atomic_store_n(&db[1], 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2000; i++) {
		server_pause(e);
		nvemu_pcie_db_stats(nvemu_vfu_server_pcie(e->srv), &st);
		server_resume(e);
		if (st.mem_writes == 2)
			break;
		usleep(1000);
	}
	assert_true(st.mapped);
	assert_int_equal(st.mem_writes, 2);
	assert_int_equal(st.msg_writes, 0);
	munmap((void *)db, 4096);
}

/* A caller that will not poll often keeps doorbells as messages. */
static void test_doorbells_not_offered(void **state)
{
	struct env *e = *state;
	struct {
		struct vfu_hdr h;
		struct vfio_region_info info;
		uint8_t caps[32];
	} r;

	assert_int_equal(cl_version(e, 0, NULL), 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(region_info_sparse(e, sizeof(r) - sizeof(r.h), (uint8_t *)&r,
					    sizeof(r.h) + sizeof(r.info)), -1);
	assert_int_equal(r.info.argsz, sizeof(r.info));
	assert_false(r.info.flags & (VFIO_REGION_INFO_FLAG_CAPS | VFIO_REGION_INFO_FLAG_MMAP));
}

static int setup_nomap(void **state)
{
	struct nvemu_vfu_params vp;

	nvemu_vfu_params_init(&vp);
	vp.map_doorbells = false;
	return setup_with(state, &vp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar0_regs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identify_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identify_unshared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_map_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_and_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_owner_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_in_use_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_unmap_with_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood_during_dma, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_wait_bounded, setup_fast, teardown),
		cmocka_unit_test_setup_teardown(test_accept_out_of_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_command_outlives_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_doorbells_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_doorbells_not_offered, setup_nomap, teardown),
	};

	/* TEST_FILTER=test_name (a glob) runs only the tests it matches */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}

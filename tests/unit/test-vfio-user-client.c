// SPDX-License-Identifier: MIT
/*
 * The vfio-user client (src/driver/vfio-user-client.c) against nvemu's own
 * vfio-user server running its loop in a thread: negotiation, regions,
 * config space, and an NVMe controller brought up by hand through the
 * PCI device layer (DMA memory shared by memfd, doorbells, an MSI-X
 * eventfd). Then scripted hostile servers: silence, oversized and
 * mismatched replies, fd floods, a hang-up, requests of their own.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>

#include <nvemu/nvemu.h>
#include <nvemu/pcie.h>
#include <nvemu/vfio-user.h>
#include "engine/nvemu-internal.h"

#include "driver/pci-dev.h"
#include "transport/vfio-user/vfu-proto.h"

#define TEST_SN "NVEMU-VFUC-0001"

struct env {
	struct nvemu_subsys *subsys;
	struct nvemu_ctrl *ctrl;
	struct nvemu_vfu_server *srv;
	pthread_t thr;
	atomic_bool stop;
	char path[108];
};

static void *server_thread(void *arg)
{
	struct env *e = arg;

	while (!atomic_load(&e->stop)) {
		struct pollfd pfd = {.fd = nvemu_vfu_server_fd(e->srv), .events = POLLIN};

		/* mapped doorbells: nothing wakes the server, so it polls them */
		poll(&pfd, 1, nvemu_vfu_server_needs_polling(e->srv) ? 1 : 10);
		nvemu_vfu_server_process(e->srv);
		nvemu_vfu_server_poll(e->srv);
		nvemu_subsys_poll(e->subsys);
	}
	return NULL;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct nvemu_error err = {0};
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	uint16_t port, cntlid;
	uint32_t nsid;

	nvemu_subsys_params_init(&sp);
	sp.serial = TEST_SN;
	sp.model = "nvemu vfio-user client test";
	assert_int_equal(nvemu_subsys_create(&sp, &e->subsys, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	assert_int_equal(nvemu_subsys_add_port(e->subsys, &pp, &port, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl(e->subsys, port, &cntlid, &err), 0);
	assert_int_equal(nvemu_subsys_add_ns(e->subsys, 1024, &nsid, &err), 0);
	e->ctrl = nvemu_subsys_ctrl(e->subsys, cntlid);
	assert_int_equal(nvemu_ctrl_attach_ns(e->ctrl, nsid, &err), 0);
	snprintf(e->path, sizeof(e->path), "/tmp/nvemu-test-vfuc-%d.sock", getpid());
	assert_int_equal(nvemu_vfu_server_create(e->path, e->ctrl, NULL, &e->srv, &err), 0);
	assert_int_equal(pthread_create(&e->thr, NULL, server_thread, e), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	atomic_store(&e->stop, true);
	pthread_join(e->thr, NULL);
	nvemu_vfu_server_destroy(e->srv);
	nvemu_subsys_destroy(e->subsys);
	free(e);
	return 0;
}

static struct nvemu_pci_dev *open_dev(const char *path)
{
	struct nvemu_error err = {0};
	struct nvemu_pci_dev *d = NULL;
	int r = nvemu_vfu_client_open(path, 2000, &d, &err);

	if (r)
		fprintf(stderr, "# open: %s\n", err.msg);
	assert_int_equal(r, 0);
	return d;
}

static void test_connect(void **state)
{
	struct env *e = *state;
	struct nvemu_pci_dev *d = open_dev(e->path);
	uint8_t cls[3];
	uint16_t vid;
	uint64_t cap;
	uint32_t vs;

	assert_int_equal(d->region[0].size, NVEMU_PCIE_BAR0_SIZE);
	assert_int_equal(d->region[NVEMU_PCI_REGION_CFG].size, NVEMU_PCIE_CFG_SIZE);
	assert_int_equal(d->region[2].size, 0);
	assert_null(d->region[0].map); /* the server traps every BAR0 access */
	assert_int_equal(d->ops->irq_count(d, NVEMU_PCI_IRQ_INTX), 1);
	assert_int_equal(d->ops->irq_count(d, NVEMU_PCI_IRQ_MSI), 0);
	assert_true(d->ops->irq_count(d, NVEMU_PCI_IRQ_MSIX) >= 2);

	assert_int_equal(nvemu_pci_read(d, NVEMU_PCI_REGION_CFG, 0, &vid, 2), 0);
	assert_int_equal(vid, e->subsys->vendor.pci_vid);
	assert_int_equal(nvemu_pci_read(d, NVEMU_PCI_REGION_CFG, 9, cls, 3), 0);
	assert_int_equal(cls[0], 0x02); /* NVMe */
	assert_int_equal(cls[1], 0x08);
	assert_int_equal(cls[2], 0x01);
	assert_int_equal(nvemu_pci_read64(d, 0, 0, &cap), 0);
	assert_int_equal(cap, nvemu_ctrl_get_cap(e->ctrl));
	assert_int_equal(nvemu_pci_read32(d, 0, 8, &vs), 0);
	assert_int_equal(vs, nvemu_ctrl_get_vs(e->ctrl));
	/* AQA round trip, posted and not */
	assert_int_equal(nvemu_pci_write32(d, 0, 0x24, 0x000f0007), 0);
	assert_int_equal(nvemu_pci_read32(d, 0, 0x24, &vs), 0);
	assert_int_equal(vs, 0x000f0007);
	vs = 0x00030003;
	assert_int_equal(nvemu_pci_post(d, 0, 0x24, &vs, 4), 0);
	assert_int_equal(nvemu_pci_read32(d, 0, 0x24, &vs), 0);
	assert_int_equal(vs, 0x00030003);
	/* out of the region: refused before anything is sent */
	assert_int_equal(nvemu_pci_read(d, 0, NVEMU_PCIE_BAR0_SIZE - 2, &cap, 4), -EINVAL);
	assert_int_equal(nvemu_pci_read(d, 3, 0, &cap, 4), -EINVAL);
	assert_int_equal(nvemu_pci_read(d, 99, 0, &cap, 4), -EINVAL);
	assert_false(d->broken);
	nvemu_pci_dev_close(d);
}

static bool wait_ready(struct nvemu_pci_dev *d, bool rdy)
{
	for (int i = 0; i < 2000; i++) {
		uint32_t csts;

		assert_int_equal(nvemu_pci_read32(d, 0, 0x1c, &csts), 0);
		if ((csts & 1) == rdy)
			return true;
		usleep(1000);
	}
	return false;
}

/* Admin queue in memfd memory, Identify Controller, the completion signalled on MSI-X 0. */
static void test_identify_by_hand(void **state)
{
	struct env *e = *state;
	struct nvemu_pci_dev *d = open_dev(e->path);
	struct nvemu_error err = {0};
	struct nvemu_pci_dma sq, cq, buf;
	struct nvemu_sqe cmd = {.opc = 0x06, .cid = 0x42, .cdw10 = 1};
	uint32_t *cqe, one = 1;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct pollfd pfd = {.fd = efd, .events = POLLIN};
	uint16_t cmdreg;

	assert_int_equal(nvemu_pci_dma_alloc(d, 16 * 64, &sq, &err), 0);
	assert_int_equal(nvemu_pci_dma_alloc(d, 16 * 16, &cq, &err), 0);
	assert_int_equal(nvemu_pci_dma_alloc(d, 4096, &buf, &err), 0);
	assert_true(sq.iova != cq.iova && cq.iova != buf.iova);
	assert_int_equal(d->ops->irq_set(d, NVEMU_PCI_IRQ_MSIX, &efd, 1), 0);
	cmdreg = 0x6;
	assert_int_equal(nvemu_pci_write(d, NVEMU_PCI_REGION_CFG, 4, &cmdreg, 2), 0);

	assert_int_equal(nvemu_pci_write32(d, 0, 0x24, 0x000f000f), 0);
	assert_int_equal(nvemu_pci_write64(d, 0, 0x28, sq.iova), 0);
	assert_int_equal(nvemu_pci_write64(d, 0, 0x30, cq.iova), 0);
	assert_int_equal(nvemu_pci_write32(d, 0, 0x14, 0x00460001), 0);
	assert_true(wait_ready(d, true));

	cmd.dptr1 = buf.iova;
	memcpy(sq.vaddr, &cmd, sizeof(cmd));
	assert_int_equal(nvemu_pci_post(d, 0, 0x1000, &one, 4), 0);
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	cqe = cq.vaddr;
	assert_int_equal(cqe[3] & 0xffff, 0x42);
	assert_int_equal((cqe[3] >> 16) & 1, 1); /* phase */
	assert_int_equal(cqe[3] >> 17, 0);	 /* status */
	assert_memory_equal((uint8_t *)buf.vaddr + 4, TEST_SN, strlen(TEST_SN));
	assert_int_equal(nvemu_pci_post(d, 0, 0x1004, &one, 4), 0);
	/* the doorbell pages were offered as a sparse mmap area and mapped: no messages */
	assert_null(d->region[0].map);
	assert_non_null(d->region[0].part);
	assert_int_equal(d->region[0].part_off, 0x1000);
	assert_int_equal(d->region[0].part_len, 4096);
	assert_int_equal(((volatile uint32_t *)d->region[0].part)[1], 1); /* CQ 0 head, as written */
	for (int i = 0; i < 2000; i++) {
		struct nvemu_pcie_db_stats st;

		nvemu_pcie_db_stats(nvemu_vfu_server_pcie(e->srv), &st);
		if (st.mem_writes == 2) {
			assert_int_equal(st.msg_writes, 0);
			break;
		}
		assert_true(i < 1999);
		usleep(1000);
	}

	/* a device reset disables the controller */
	assert_int_equal(d->ops->reset(d), 0);
	assert_true(wait_ready(d, false));
	assert_int_equal(d->ops->irq_set(d, NVEMU_PCI_IRQ_MSIX, NULL, 0), 0);
	/* memory the server cannot map is not offered */
	assert_int_equal(d->ops->dma_map(d, buf.vaddr, 4096, -1, 0, 1ull << 40), -EINVAL);
	nvemu_pci_dma_free(d, &buf);
	nvemu_pci_dma_free(d, &cq);
	nvemu_pci_dma_free(d, &sq);
	nvemu_pci_dma_free(d, &sq); /* twice: a no-op */
	close(efd);
	nvemu_pci_dev_close(d);
}

static void test_no_server(void **state)
{
	struct nvemu_error err = {0};
	struct nvemu_pci_dev *d = NULL;
	char longp[200];

	assert_int_equal(nvemu_vfu_client_open("/tmp/nvemu-no-such-socket", 100, &d, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "connect"));
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(nvemu_vfu_client_open(longp, 100, &d, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "traddr"));
	assert_null(d);
}

/* ---- hostile servers */

enum scenario {
	FS_SILENT,	/* never answers VERSION */
	FS_HUGE,	/* a reply announcing 4 GiB */
	FS_WRONG_ID,	/* a reply to another request */
	FS_HANGUP,	/* closes instead of answering */
	FS_SHORT_READ,	/* fewer data bytes than asked */
	FS_OWN_REQUEST, /* sends a DMA_READ of its own first */
	FS_FD_FLOOD,	/* attaches more fds than allowed */
	FS_ERROR,	/* an error reply, then a good one */
	FS_TRICKLE,	/* sends a reply one byte at a time, slower than the timeout */
	FS_SPARSE_OK,	/* BAR0 info with a sparse mmap area at 0x1000 and a memfd */
	FS_SPARSE_BAD,	/* the same with a capability loop and an area past the region */
};

struct fake {
	int lfd;
	char path[108];
	enum scenario sc;
	pthread_t thr;
	bool refused; /* the client answered our request with an error */
};

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void fake_reply(int fd, const struct vfu_hdr *rq, const void *body, size_t len,
		       uint16_t id_delta, const int *fds, unsigned nfds)
{
	struct vfu_hdr h = {.id = (uint16_t)(rq->id + id_delta),
			    .command = rq->command,
			    .size = (uint32_t)(sizeof(h) + len),
			    .flags = VFU_REPLY};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)body, len}};
	union {
		char b[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} cb;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};

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
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return;
}

/* The answers a well-behaved server gives while the client sets up. */
static bool fake_sparse_reply(int fd, const struct vfu_hdr *h, struct vfio_region_info *ri,
			      bool bad)
{
	struct {
		struct vfio_region_info info;
		struct vfu_sparse_mmap1 sp;
	} r;
	int mfd;

	if (ri->argsz < sizeof(r)) { /* say how much room the capability needs */
		ri->argsz = sizeof(r);
		fake_reply(fd, h, ri, sizeof(*ri), 0, NULL, 0);
		return true;
	}
	memset(&r, 0, sizeof(r));
	r.info = *ri;
	r.info.argsz = sizeof(r);
	r.info.flags |= VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS;
	r.info.cap_offset = sizeof(r.info);
	r.sp.header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
	r.sp.header.version = 1;
	r.sp.nr_areas = bad ? 1000000 : 1;
	r.sp.header.next = bad ? sizeof(r.info) : 0; /* bad: points at itself */
	r.sp.area.offset = bad ? 0x3000 : 0x1000;
	r.sp.area.size = bad ? 0x2000 : 0x1000; /* bad: past the 16 KiB region */
	mfd = memfd_create("fake-bar0", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, 0x4000))
		return false;
	fake_reply(fd, h, &r, sizeof(r), 0, &mfd, 1);
	close(mfd);
	return true;
}

static enum scenario fake_sc; /* for fake_setup_reply: the running scenario */

static bool fake_setup_reply(int fd, const struct vfu_hdr *h, const uint8_t *body)
{
	switch (h->command) {
	case VFU_CMD_VERSION: {
		static const char v[] = "\0\0\0\0{\"capabilities\":{\"max_msg_fds\":4}}";

		fake_reply(fd, h, v, sizeof(v), 0, NULL, 0);
		return true;
	}
	case VFU_CMD_DEVICE_GET_INFO: {
		struct vfio_device_info di = {.argsz = 16,
					      .flags = VFIO_DEVICE_FLAGS_PCI,
					      .num_regions = 9,
					      .num_irqs = 5};

		fake_reply(fd, h, &di, 16, 0, NULL, 0);
		return true;
	}
	case VFU_CMD_DEVICE_GET_REGION_INFO: {
		struct vfio_region_info ri;

		memcpy(&ri, body, sizeof(ri));
		ri.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		ri.size = ri.index == 0 ? 0x4000 : ri.index == 7 ? 0x1000 : 0;
		if (ri.index == 0 && (fake_sc == FS_SPARSE_OK || fake_sc == FS_SPARSE_BAD))
			return fake_sparse_reply(fd, h, &ri, fake_sc == FS_SPARSE_BAD);
		fake_reply(fd, h, &ri, sizeof(ri), 0, NULL, 0);
		return true;
	}
	case VFU_CMD_DEVICE_GET_IRQ_INFO: {
		struct vfio_irq_info ii;

		memcpy(&ii, body, sizeof(ii));
		ii.flags = VFIO_IRQ_INFO_EVENTFD;
		ii.count = ii.index == 2 ? 100000 : 1; /* more MSI-X vectors than PCI allows */
		fake_reply(fd, h, &ii, sizeof(ii), 0, NULL, 0);
		return true;
	}
	}
	return false;
}

static void fake_region_read(struct fake *f, int fd, const struct vfu_hdr *h, const uint8_t *body)
{
	struct vfu_region_rw rw;
	uint8_t out[64];
	size_t n;

	memcpy(&rw.offset, body, sizeof(rw) - sizeof(rw.hdr));
	n = rw.count < 32 ? rw.count : 32;
	memcpy(out, &rw.offset, 16);
	memset(out + 16, 0x5a, n);
	switch (f->sc) {
	case FS_HUGE: {
		struct vfu_hdr big = {.id = h->id,
				      .command = h->command,
				      .size = 0xfffffff0u,
				      .flags = VFU_REPLY};

		if (write(fd, &big, sizeof(big)) < 0)
			return;
		return;
	}
	case FS_WRONG_ID:
		fake_reply(fd, h, out, 16 + n, 1, NULL, 0);
		return;
	case FS_SHORT_READ:
		fake_reply(fd, h, out, 16 + n - 1, 0, NULL, 0);
		return;
	case FS_OWN_REQUEST: {
		struct vfu_hdr rq = {
			.id = 77, .command = VFU_CMD_DMA_READ, .size = 32, .flags = VFU_REQUEST};
		uint8_t msg[32] = {0};
		struct vfu_hdr rp;

		memcpy(msg, &rq, sizeof(rq));
		if (write(fd, msg, sizeof(msg)) < 0 || read_full(fd, &rp, sizeof(rp)))
			return;
		f->refused = rp.id == 77 && (rp.flags & VFU_ERROR) && rp.size == sizeof(rp);
		fake_reply(fd, h, out, 16 + n, 0, NULL, 0);
		return;
	}
	case FS_FD_FLOOD: {
		int fds[12];

		for (int i = 0; i < 12; i++)
			fds[i] = eventfd(0, EFD_CLOEXEC);
		fake_reply(fd, h, out, 16 + n, 0, fds, 12);
		for (int i = 0; i < 12; i++)
			close(fds[i]);
		return;
	}
	case FS_ERROR: {
		static bool once;
		struct vfu_hdr eh = {.id = h->id,
				     .command = h->command,
				     .size = 16,
				     .flags = VFU_REPLY | VFU_ERROR,
				     .error = EACCES};

		once = !once;
		if (once) {
			if (write(fd, &eh, sizeof(eh)) < 0)
				return;
			return;
		}
		fake_reply(fd, h, out, 16 + n, 0, NULL, 0);
		return;
	}
	case FS_TRICKLE: {
		struct vfu_hdr rh = {.id = h->id,
				     .command = h->command,
				     .size = (uint32_t)(16 + 16 + n),
				     .flags = VFU_REPLY};

		/* a header, then silence past the client's deadline */
		if (write(fd, &rh, sizeof(rh)) < 0)
			return;
		usleep(600 * 1000);
		return;
	}
	default:
		fake_reply(fd, h, out, 16 + n, 0, NULL, 0);
	}
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);

	while (fd >= 0) {
		struct vfu_hdr h;
		uint8_t *body;

		if (read_full(fd, &h, sizeof(h)) || h.size < sizeof(h) || h.size > (1u << 20))
			break;
		body = malloc(h.size - sizeof(h) + 1);
		if (read_full(fd, body, h.size - sizeof(h))) {
			free(body);
			break;
		}
		if (h.command == VFU_CMD_VERSION && f->sc == FS_SILENT) {
			free(body);
			read_full(fd, &h, 1); /* until the client gives up */
			break;
		}
		if (h.command == VFU_CMD_REGION_READ && f->sc == FS_HANGUP) {
			free(body);
			break;
		}
		if (!fake_setup_reply(fd, &h, body) && h.command == VFU_CMD_REGION_READ)
			fake_region_read(f, fd, &h, body);
		free(body);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void fake_start(struct fake *f, enum scenario sc)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	memset(f, 0, sizeof(*f));
	f->sc = sc;
	fake_sc = sc;
	snprintf(f->path, sizeof(f->path), "/tmp/nvemu-test-vfuc-fake-%d.sock", getpid());
	unlink(f->path);
	strcpy(a.sun_path, f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 1), 0);
	assert_int_equal(pthread_create(&f->thr, NULL, fake_thread, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thr, NULL);
	close(f->lfd);
	unlink(f->path);
}

static unsigned open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(dir);
	while (readdir(dir))
		n++;
	closedir(dir);
	return n;
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Open against the fake server, then one 8-byte BAR0 read: its result. */
static int fake_read(struct fake *f, enum scenario sc, struct nvemu_pci_dev **dp, uint8_t *out)
{
	struct nvemu_error err = {0};
	struct nvemu_pci_dev *d = NULL;
	int r;

	fake_start(f, sc);
	assert_int_equal(nvemu_vfu_client_open(f->path, 300, &d, &err), 0);
	/* hostile vector counts are not believed */
	assert_int_equal(d->ops->irq_count(d, NVEMU_PCI_IRQ_MSIX), 0);
	assert_int_equal(d->ops->irq_count(d, NVEMU_PCI_IRQ_INTX), 1);
	r = nvemu_pci_read(d, 0, 0, out, 8);
	*dp = d;
	return r;
}

static void test_hostile_silent(void **state)
{
	struct nvemu_error err = {0};
	struct nvemu_pci_dev *d = NULL;
	struct fake f;
	uint64_t t0 = ms_now();

	fake_start(&f, FS_SILENT);
	assert_int_equal(nvemu_vfu_client_open(f.path, 200, &d, &err), -ETIMEDOUT);
	assert_true(ms_now() - t0 < 3000);
	assert_non_null(strstr(err.msg, "version"));
	fake_stop(&f);
}

static void test_hostile_replies(void **state)
{
	static const struct {
		enum scenario sc;
		int err;
	} cases[] = {
		{FS_HUGE, -EPROTO},	  {FS_WRONG_ID, -EPROTO}, {FS_HANGUP, -ECONNRESET},
		{FS_SHORT_READ, -EPROTO}, {FS_FD_FLOOD, -EPROTO}, {FS_TRICKLE, -ETIMEDOUT},
	};
	unsigned before = open_fds();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nvemu_pci_dev *d;
		struct fake f;
		uint8_t buf[8];
		uint32_t v;

		assert_int_equal(fake_read(&f, cases[i].sc, &d, buf), cases[i].err);
		/* broken: nothing more goes out */
		assert_true(d->broken);
		assert_int_equal(nvemu_pci_read32(d, 0, 0, &v), -ENODEV);
		assert_int_equal(v, 0xffffffffu);
		nvemu_pci_dev_close(d);
		fake_stop(&f);
	}
	assert_int_equal(open_fds(), before); /* every fd that came in was closed */
}

static void test_hostile_own_request(void **state)
{
	struct nvemu_pci_dev *d;
	struct fake f;
	uint8_t buf[8];

	assert_int_equal(fake_read(&f, FS_OWN_REQUEST, &d, buf), 0);
	assert_int_equal(buf[0], 0x5a);
	nvemu_pci_dev_close(d);
	fake_stop(&f);
	assert_true(f.refused);
}

static void test_error_reply(void **state)
{
	struct nvemu_pci_dev *d;
	struct fake f;
	uint8_t buf[8] = {0};

	assert_int_equal(fake_read(&f, FS_ERROR, &d, buf), -EACCES);
	assert_false(d->broken); /* an error reply is an answer */
	assert_int_equal(nvemu_pci_read(d, 0, 0, buf, 8), 0);
	assert_int_equal(buf[7], 0x5a);
	nvemu_pci_dev_close(d);
	fake_stop(&f);
}

/* A sparse mmap area is mapped when sane, ignored when not; registers stay messages. */
static void test_sparse_mmap(void **state)
{
	unsigned before = open_fds();

	for (int bad = 0; bad < 2; bad++) {
		struct nvemu_pci_dev *d;
		struct fake f;
		uint8_t buf[8];
		uint32_t v = 7;

		assert_int_equal(fake_read(&f, bad ? FS_SPARSE_BAD : FS_SPARSE_OK, &d, buf), 0);
		assert_int_equal(buf[0], 0x5a); /* register read by message */
		assert_null(d->region[0].map);
		if (bad) {
			assert_null(d->region[0].part);
		} else {
			assert_non_null(d->region[0].part);
			assert_int_equal(d->region[0].part_off, 0x1000);
			assert_int_equal(d->region[0].part_len, 0x1000);
			/* a doorbell goes into the mapping, no message */
			assert_int_equal(nvemu_pci_write32(d, 0, 0x1008, 5), 0);
			assert_int_equal(((volatile uint32_t *)d->region[0].part)[2], 5);
			assert_int_equal(nvemu_pci_read32(d, 0, 0x1008, &v), 0);
			assert_int_equal(v, 5);
		}
		assert_false(d->broken);
		nvemu_pci_dev_close(d);
		fake_stop(&f);
	}
	assert_int_equal(open_fds(), before); /* the memfds came and went */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identify_by_hand, setup, teardown),
		cmocka_unit_test(test_no_server),
		cmocka_unit_test(test_hostile_silent),
		cmocka_unit_test(test_hostile_replies),
		cmocka_unit_test(test_hostile_own_request),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_sparse_mmap),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * vhost-user-blk exports: a client in this test plays the VMM (QEMU's
 * vhost-user-blk-pci) over a real unix socket, with guest memory in a
 * memfd and split rings in it, while the export runs on a small epoll loop
 * here. Covers negotiation, config space, I/O round trips through the
 * engine (data checked through an NVMe host of the same namespace),
 * read-only, LBA windows, hostile clients, detach, destroy with requests
 * in flight, GET_VRING_BASE waiting for them, and inflight resubmission
 * after a reconnect.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>

#include "fd-exhaust.h"
#include "test-util.h"
#include <nvemu/host.h>
#include <nvemu/vhost-blk.h>
#include "transport/vhost-user-blk/vblk-internal.h"

#define MEM_SIZE  (2u << 20)
#define QBASE(q)  ((uint64_t)(q)*0x4000u)
#define IND_BASE  0x10000u
#define HDR_BASE  0x18000u
#define ST_BASE	  0x1c000u
#define DATA_BASE 0x20000u
#define NUM	  64u

/* ---- a tiny event loop for the export */

struct th {
	int fd;
	nvemu_vblk_fd_cb cb;
	void *arg;
};

static void *l_add(void *loop, int fd, uint32_t events, nvemu_vblk_fd_cb cb, void *arg)
{
	struct th *h = calloc(1, sizeof(*h));
	struct epoll_event ev = {.events = events};

	h->fd = fd;
	h->cb = cb;
	h->arg = arg;
	ev.data.ptr = h;
	if (epoll_ctl(*(int *)loop, EPOLL_CTL_ADD, fd, &ev)) {
		free(h);
		return NULL;
	}
	return h;
}

static int l_mod(void *loop, void *handle, uint32_t events)
{
	struct th *h = handle;
	struct epoll_event ev = {.events = events, .data.ptr = h};

	return epoll_ctl(*(int *)loop, EPOLL_CTL_MOD, h->fd, &ev);
}

static void l_del(void *loop, void *handle)
{
	struct th *h = handle;

	epoll_ctl(*(int *)loop, EPOLL_CTL_DEL, h->fd, NULL);
	free(h); /* one event per epoll_wait: nothing else refers to it */
}

static const struct nvemu_vblk_loop_ops lops = {l_add, l_mod, l_del};

struct env {
	struct tu_env *tu;
	int ep;
	char dir[64], path[128], path2[128];
	struct nvemu_vblk *vb, *vb2;
	struct nvemu_bdev *ram, *delay;
	uint32_t delay_nsid;
	int logs;
	char last_log[256];
};

static void log_cb(void *arg, int level, const char *msg)
{
	struct env *e = arg;

	(void)level;
	e->logs++;
	if (getenv("VBLK_LOG"))
		fprintf(stderr, "log: %s\n", msg);
	snprintf(e->last_log, sizeof(e->last_log), "%s", msg);
}

static void pump(struct env *e, int ms)
{
	struct epoll_event ev;

	if (epoll_wait(e->ep, &ev, 1, ms) == 1) {
		struct th *h = ev.data.ptr;

		h->cb(h->fd, ev.events, h->arg);
	}
	nvemu_subsys_poll(e->tu->subsys);
}

#define PUMP_UNTIL(e, cond)                                                                        \
	do {                                                                                       \
		for (int _i = 0; _i < 3000 && !(cond); _i++)                                       \
			pump(e, 1);                                                                \
	} while (0)

static void params(struct env *e, struct nvemu_vblk_params *p, const char *path, uint32_t nsid)
{
	nvemu_vblk_params_init(p);
	p->ops = &lops;
	p->loop = &e->ep;
	p->log = log_cb;
	p->log_arg = e;
	p->socket_path = path;
	p->target.subsys = e->tu->subsys;
	p->target.nsid = nsid;
	p->num_queues = 2;
	p->queue_size = 128;
	p->serial = "vblk-serial-0001";
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct nvemu_bdev_delay_opts dopt = {.read_latency_us = 50000, .write_latency_us = 50000};
	struct nvemu_error err = {0};
	struct nvemu_ns_params np;
	void *tu;

	tu_setup(&tu);
	e->tu = tu;
	e->ep = epoll_create1(EPOLL_CLOEXEC);
	strcpy(e->dir, "/tmp/vblk-test-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/blk.sock", e->dir);
	snprintf(e->path2, sizeof(e->path2), "%s/blk2.sock", e->dir);
	/* Namespace 3: RAM behind a 50 ms delay, to hold requests in flight. */
	assert_int_equal(nvemu_bdev_ram_create("ram3", 1 << 20, 512, &e->ram, &err), 0);
	assert_int_equal(nvemu_bdev_delay_create("delay3", e->ram, &dopt, &e->delay, &err), 0);
	nvemu_ns_params_init(&np);
	np.bdev = e->delay;
	assert_int_equal(nvemu_subsys_add_ns_ex(e->tu->subsys, &np, &e->delay_nsid, &err), 0);
	*state = e;
	return 0;
}

static void destroyed(void *arg)
{
	(*(int *)arg)++;
}

static int teardown(void **state)
{
	struct env *e = *state;
	int done = 0;

	nvemu_vblk_destroy(e->vb, destroyed, &done);
	nvemu_vblk_destroy(e->vb2, destroyed, &done);
	PUMP_UNTIL(e, done == 2);
	assert_int_equal(done, 2);
	void *tu = e->tu;
	tu_teardown(&tu);
	nvemu_bdev_destroy(e->delay, NULL);
	nvemu_bdev_destroy(e->ram, NULL);
	close(e->ep);
	rmdir(e->dir);
	free(e);
	return 0;
}

static struct nvemu_vblk *export(struct env *e, struct nvemu_vblk_params *p)
{
	struct nvemu_error err = {0};
	struct nvemu_vblk *vb = NULL;

	if (nvemu_vblk_create(p, &vb, &err))
		fail_msg("create: %s", err.msg);
	return vb;
}

/* ---- the VMM side */

struct vm {
	struct env *e;
	int sock;
	int memfd;
	uint8_t *mem;
	int kick[2], call[2];
	uint16_t avail[2], used_seen[2], next_desc[2];
	uint64_t features;
	int inflight_fd;
};

static void vm_send(struct vm *vm, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		    const int *fds, unsigned nfds)
{
	uint32_t hdr[3] = {req, VHOST_USER_VERSION | flags, size};
	struct iovec iov[2] = {{hdr, 12}, {(void *)payload, size}};
	char cbuf[CMSG_SPACE(8 * sizeof(int))] = {0};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

	if (nfds) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	sendmsg(vm->sock, &mh, MSG_NOSIGNAL);
}

/* The reply to the last message; 0 when the server hung up. */
static ssize_t vm_recv(struct vm *vm, struct vhost_user_msg *m, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	uint8_t buf[12 + 512];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct pollfd pfd = {.fd = vm->sock, .events = POLLIN};
	ssize_t n;

	for (int i = 0; i < 3000 && poll(&pfd, 1, 0) == 0; i++)
		pump(vm->e, 1);
	n = recvmsg(vm->sock, &mh, MSG_DONTWAIT);
	if (n <= 0)
		return 0;
	if (fd) {
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		*fd = -1;
		if (cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
	}
	assert_int_equal(vblk_msg_parse(buf, (size_t)n, m), 0);
	assert_true(m->flags & VHOST_USER_REPLY);
	return n;
}

static uint64_t vm_get_u64(struct vm *vm, uint32_t req)
{
	struct vhost_user_msg m;

	vm_send(vm, req, 0, NULL, 0, NULL, 0);
	assert_true(vm_recv(vm, &m, NULL) > 0);
	assert_int_equal(m.request, req);
	return m.p.u64;
}

/* Send with NEED_REPLY and expect the ack: 0 ok, else the status or -1 hung up. */
static int64_t vm_ack(struct vm *vm, uint32_t req, const void *payload, uint32_t size,
		      const int *fds, unsigned nfds)
{
	struct vhost_user_msg m;

	vm_send(vm, req, VHOST_USER_NEED_REPLY, payload, size, fds, nfds);
	if (vm_recv(vm, &m, NULL) <= 0)
		return -1;
	return (int64_t)m.p.u64;
}

static void vm_u64(struct vm *vm, uint32_t req, uint64_t v)
{
	assert_int_equal(vm_ack(vm, req, &v, 8, NULL, 0), 0);
}

static bool vm_hung_up(struct vm *vm)
{
	struct vhost_user_msg m;

	return vm_recv(vm, &m, NULL) == 0;
}

static void vm_connect(struct env *e, struct vm *vm, const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	vm->e = e;
	vm->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_int_equal(connect(vm->sock, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void vm_mem(struct vm *vm)
{
	vm->memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_int_equal(ftruncate(vm->memfd, MEM_SIZE), 0);
	vm->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, vm->memfd, 0);
	assert_true(vm->mem != MAP_FAILED);
}

static struct vhost_user_mem one_region(struct vm *vm)
{
	struct vhost_user_mem t = {.nregions = 1};

	t.regions[0] = (struct vhost_user_region){
		.gpa = 0, .size = MEM_SIZE, .uva = (uintptr_t)vm->mem, .mmap_offset = 0};
	return t;
}

static void vm_negotiate(struct vm *vm, uint64_t want)
{
	uint64_t f = vm_get_u64(vm, VHOST_USER_GET_FEATURES);

	vm->features = f & want;
	vm_get_u64(vm, VHOST_USER_GET_PROTOCOL_FEATURES);
	/* As QEMU: no reply asked before REPLY_ACK is agreed. */
	vm_send(vm, VHOST_USER_SET_PROTOCOL_FEATURES, 0,
		&(uint64_t){1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK |
			    1ull << VHOST_USER_PROTOCOL_F_CONFIG |
			    1ull << VHOST_USER_PROTOCOL_F_MQ |
			    1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD},
		8, NULL, 0);
	vm_u64(vm, VHOST_USER_SET_FEATURES, vm->features);
}

static void vm_start_ring(struct vm *vm, unsigned q, uint32_t base)
{
	struct vhost_user_vring_state st = {q, NUM};
	struct vhost_user_vring_addr a = {.index = q,
					  .desc = (uintptr_t)vm->mem + QBASE(q),
					  .avail = (uintptr_t)vm->mem + QBASE(q) + 0x1000,
					  .used = (uintptr_t)vm->mem + QBASE(q) + 0x2000};
	uint64_t v;

	assert_int_equal(vm_ack(vm, VHOST_USER_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 0);
	st.num = base;
	assert_int_equal(vm_ack(vm, VHOST_USER_SET_VRING_BASE, &st, sizeof(st), NULL, 0), 0);
	assert_int_equal(vm_ack(vm, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	vm->call[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vm->kick[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	v = q;
	assert_int_equal(vm_ack(vm, VHOST_USER_SET_VRING_CALL, &v, 8, &vm->call[q], 1), 0);
	assert_int_equal(vm_ack(vm, VHOST_USER_SET_VRING_KICK, &v, 8, &vm->kick[q], 1), 0);
	st.num = 1;
	assert_int_equal(vm_ack(vm, VHOST_USER_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0), 0);
}

/* Connect, negotiate, share memory and start nq rings, as QEMU does at guest boot. */
static void vm_up(struct env *e, struct vm *vm, const char *path, unsigned nq, uint64_t want)
{
	struct vhost_user_mem t;
	uint8_t *mem = vm->mem;
	int memfd = vm->memfd;

	memset(vm, 0, sizeof(*vm));
	vm->mem = mem;
	vm->memfd = memfd;
	vm->inflight_fd = -1;
	vm_connect(e, vm, path);
	if (!vm->mem)
		vm_mem(vm);
	vm_negotiate(vm, want);
	t = one_region(vm);
	assert_int_equal(
		vm_ack(vm, VHOST_USER_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), &vm->memfd, 1),
		0);
	for (unsigned q = 0; q < nq; q++)
		vm_start_ring(vm, q, 0);
}

static void vm_close(struct vm *vm)
{
	if (vm->sock >= 0)
		close(vm->sock);
	for (unsigned q = 0; q < 2; q++) {
		if (vm->kick[q] > 0)
			close(vm->kick[q]);
		if (vm->call[q] > 0)
			close(vm->call[q]);
	}
	vm->sock = -1;
}

static void vm_free(struct vm *vm)
{
	vm_close(vm);
	if (vm->mem)
		munmap(vm->mem, MEM_SIZE);
	/* A zeroed struct vm holds no fds: 0 is never one of ours. */
	if (vm->memfd > 0)
		close(vm->memfd);
	if (vm->inflight_fd > 0)
		close(vm->inflight_fd);
	vm->mem = NULL;
	vm->memfd = -1;
	vm->inflight_fd = -1;
}

#define ALL_FEATURES (~(1ull << VIRTIO_F_RING_PACKED)) /* split rings unless a test asks */

/* ---- requests */

struct seg {
	uint64_t gpa;
	uint32_t len;
};

static struct vring_desc *desc(struct vm *vm, unsigned q)
{
	return (struct vring_desc *)(vm->mem + QBASE(q));
}

static struct vring_avail *avail(struct vm *vm, unsigned q)
{
	return (struct vring_avail *)(vm->mem + QBASE(q) + 0x1000);
}

static struct vring_used *used(struct vm *vm, unsigned q)
{
	return (struct vring_used *)(vm->mem + QBASE(q) + 0x2000);
}

/*
 * Put a request on ring q: header, data segments (device-writable for IN
 * and GET_ID), status. indirect: the chain goes in an indirect table.
 * Returns the head; the status byte is at ST_BASE + head.
 */
static uint16_t vm_req(struct vm *vm, unsigned q, uint32_t type, uint64_t sector,
		       const struct seg *s, unsigned n, bool indirect)
{
	bool w = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	struct vring_desc chain[16];
	uint16_t head = vm->next_desc[q];
	struct virtio_blk_outhdr *h = (void *)(vm->mem + HDR_BASE + head * 16);
	unsigned k = 0;

	*h = (struct virtio_blk_outhdr){.type = type, .sector = sector};
	chain[k++] = (struct vring_desc){.addr = HDR_BASE + head * 16, .len = 16};
	for (unsigned i = 0; i < n; i++)
		chain[k++] = (struct vring_desc){
			.addr = s[i].gpa, .len = s[i].len, .flags = w ? VRING_DESC_F_WRITE : 0};
	vm->mem[ST_BASE + head] = 0xee;
	chain[k++] =
		(struct vring_desc){.addr = ST_BASE + head, .len = 1, .flags = VRING_DESC_F_WRITE};
	if (indirect) {
		struct vring_desc *t = (void *)(vm->mem + IND_BASE + head * 256);

		for (unsigned i = 0; i < k; i++) {
			t[i] = chain[i];
			if (i + 1 < k) {
				t[i].flags |= VRING_DESC_F_NEXT;
				t[i].next = i + 1;
			}
		}
		desc(vm, q)[head] = (struct vring_desc){.addr = IND_BASE + head * 256,
							.len = k * 16,
							.flags = VRING_DESC_F_INDIRECT};
		vm->next_desc[q] = (head + 1) % NUM;
	} else {
		for (unsigned i = 0; i < k; i++) {
			uint16_t d = (head + i) % NUM;

			desc(vm, q)[d] = chain[i];
			if (i + 1 < k) {
				desc(vm, q)[d].flags |= VRING_DESC_F_NEXT;
				desc(vm, q)[d].next = (d + 1) % NUM;
			}
		}
		vm->next_desc[q] = (head + k) % NUM;
	}
	avail(vm, q)->ring[vm->avail[q] % NUM] = head;
	__atomic_store_n(&avail(vm, q)->idx, ++vm->avail[q], __ATOMIC_RELEASE);
	return head;
}

static void vm_kick(struct vm *vm, unsigned q)
{
	eventfd_write(vm->kick[q], 1);
}

/* Wait for the next used entry of ring q; returns its status byte (0xee: none). */
static uint8_t vm_wait(struct vm *vm, unsigned q, uint16_t head, uint32_t *len)
{
	struct vring_used *u = used(vm, q);

	PUMP_UNTIL(vm->e, __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != vm->used_seen[q]);
	if (u->idx == vm->used_seen[q])
		return 0xee;
	assert_int_equal(u->ring[vm->used_seen[q] % NUM].id, head);
	if (len)
		*len = u->ring[vm->used_seen[q] % NUM].len;
	vm->used_seen[q]++;
	return vm->mem[ST_BASE + head];
}

static uint8_t vm_io(struct vm *vm, unsigned q, uint32_t type, uint64_t sector, uint64_t gpa,
		     uint32_t len)
{
	struct seg s = {gpa, len};
	uint16_t head = vm_req(vm, q, type, sector, &s, len ? 1 : 0, false);

	vm_kick(vm, q);
	return vm_wait(vm, q, head, NULL);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

/* ---- tests */

static void test_negotiation(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct vhost_user_msg m;
	struct virtio_blk_config cfg;
	struct vhost_user_config c = {.offset = 0, .size = sizeof(cfg)};
	struct vm vm = {0};
	uint64_t f;

	params(e, &p, e->path, 2);
	p.ds_max = 3;
	e->vb = export(e, &p);
	memset(&vm, 0, sizeof(vm));
	vm_connect(e, &vm, e->path);
	f = vm_get_u64(&vm, VHOST_USER_GET_FEATURES);
	assert_true(f & 1ull << VIRTIO_F_VERSION_1);
	assert_true(f & 1ull << VIRTIO_RING_F_EVENT_IDX);
	assert_true(f & 1ull << VIRTIO_RING_F_INDIRECT_DESC);
	assert_true(f & 1ull << VIRTIO_BLK_F_MQ);
	assert_true(f & 1ull << VIRTIO_BLK_F_DISCARD);
	assert_false(f & 1ull << VIRTIO_BLK_F_RO);
	f = vm_get_u64(&vm, VHOST_USER_GET_PROTOCOL_FEATURES);
	assert_true(f & 1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD);
	assert_true(f & 1ull << VHOST_USER_PROTOCOL_F_CONFIG);
	assert_int_equal(vm_get_u64(&vm, VHOST_USER_GET_QUEUE_NUM), 2);
	assert_int_equal(vm_get_u64(&vm, VHOST_USER_GET_MAX_MEM_SLOTS), 3);
	vm_send(&vm, VHOST_USER_GET_CONFIG, 0, &c, 12 + sizeof(cfg), NULL, 0);
	assert_true(vm_recv(&vm, &m, NULL) > 0);
	assert_int_equal(m.p.config.size, sizeof(cfg));
	memcpy(&cfg, m.p.config.region, sizeof(cfg));
	assert_int_equal(cfg.capacity, 2048); /* namespace 2: 2048 x 512 B */
	assert_int_equal(cfg.blk_size, 512);
	assert_int_equal(cfg.num_queues, 2);
	assert_true(cfg.seg_max >= 1 && cfg.seg_max * cfg.size_max <= 512 * 1024);
	assert_int_equal(cfg.max_discard_seg, 1);
	/* A config read past the end gets an empty answer. */
	c.offset = sizeof(cfg);
	c.size = 8;
	vm_send(&vm, VHOST_USER_GET_CONFIG, 0, &c, 12 + 8, NULL, 0);
	assert_true(vm_recv(&vm, &m, NULL) > 0);
	assert_int_equal(m.p.config.size, 0);
	/* Features the server did not offer are refused. */
	assert_int_equal(vm_ack(&vm, VHOST_USER_SET_FEATURES, &(uint64_t){1ull << 63}, 8, NULL, 0),
			 -1);
	assert_int_equal(e->logs, 2); /* connected, then dropped */
	assert_non_null(strstr(e->last_log, "not offered"));
	vm_close(&vm);
}

static void test_io_round_trip(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct nvemu_vblk_info info;
	struct vm vm = {0};
	uint8_t *buf = malloc(8192), *nv = malloc(8192);
	uint32_t len = 0;

	params(e, &p, e->path, 1); /* namespace 1 is also attached to the NVMe host's controller */
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 2, ALL_FEATURES);
	assert_true(vm.features & 1ull << VIRTIO_RING_F_EVENT_IDX);

	/* Write 8 KiB through the export, read it back through it and through NVMe. */
	fill(vm.mem + DATA_BASE, 8192, 1);
	memcpy(buf, vm.mem + DATA_BASE, 8192);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_OUT, 16, DATA_BASE, 8192), VIRTIO_BLK_S_OK);
	memset(vm.mem + DATA_BASE, 0, 8192);
	assert_int_equal(vm_io(&vm, 1, VIRTIO_BLK_T_IN, 16, DATA_BASE, 8192), VIRTIO_BLK_S_OK);
	assert_memory_equal(vm.mem + DATA_BASE, buf, 8192);
	assert_int_equal(tu_rw(e->tu, nvme_cmd_read, 1, 16, 16, nv, 8192), 0);
	assert_memory_equal(nv, buf, 8192);
	/* The other way round: NVMe writes, the export reads. */
	fill(nv, 4096, 2);
	assert_int_equal(tu_rw(e->tu, nvme_cmd_write, 1, 100, 8, nv, 4096), 0);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 100, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	assert_memory_equal(vm.mem + DATA_BASE, nv, 4096);

	/* Scattered segments (a bounce buffer) and an indirect table. */
	struct seg s[3] = {
		{DATA_BASE + 0x10000, 512}, {DATA_BASE + 0x3000, 1024}, {DATA_BASE + 0x8000, 2560}};
	fill(vm.mem + DATA_BASE + 0x10000, 512, 3);
	fill(vm.mem + DATA_BASE + 0x3000, 1024, 4);
	fill(vm.mem + DATA_BASE + 0x8000, 2560, 5);
	uint16_t h = vm_req(&vm, 0, VIRTIO_BLK_T_OUT, 200, s, 3, true);
	vm_kick(&vm, 0);
	assert_int_equal(vm_wait(&vm, 0, h, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1);
	assert_int_equal(tu_rw(e->tu, nvme_cmd_read, 1, 200, 8, nv, 4096), 0);
	assert_memory_equal(nv, vm.mem + DATA_BASE + 0x10000, 512);
	assert_memory_equal(nv + 512, vm.mem + DATA_BASE + 0x3000, 1024);
	assert_memory_equal(nv + 1536, vm.mem + DATA_BASE + 0x8000, 2560);
	memset(vm.mem + DATA_BASE + 0x3000, 0, 1024);
	h = vm_req(&vm, 0, VIRTIO_BLK_T_IN, 200, s, 3, false);
	vm_kick(&vm, 0);
	assert_int_equal(vm_wait(&vm, 0, h, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 4097);
	assert_memory_equal(nv + 512, vm.mem + DATA_BASE + 0x3000, 1024);

	/* GET_ID, FLUSH, discard, write zeroes, an unknown type, a misaligned length. */
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_GET_ID, 0, DATA_BASE, 20), VIRTIO_BLK_S_OK);
	assert_memory_equal(vm.mem + DATA_BASE, "vblk-serial-0001\0\0\0\0", 20);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	struct virtio_blk_discard_write_zeroes *d = (void *)(vm.mem + DATA_BASE + 0x20000);
	*d = (struct virtio_blk_discard_write_zeroes){.sector = 16, .num_sectors = 8};
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_BASE + 0x20000, 16),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(tu_rw(e->tu, nvme_cmd_read, 1, 16, 8, nv, 4096), 0);
	memset(buf, 0, 4096);
	assert_memory_equal(nv, buf, 4096);
	*d = (struct virtio_blk_discard_write_zeroes){.sector = 100, .num_sectors = 8};
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_DISCARD, 0, DATA_BASE + 0x20000, 16),
			 VIRTIO_BLK_S_OK);
	/* Write zeroes that may unmap: Write Zeroes with DEAC. */
	assert_int_equal(tu_rw(e->tu, nvme_cmd_write, 1, 300, 8, buf + 4096, 4096), 0);
	*d = (struct virtio_blk_discard_write_zeroes){
		.sector = 300, .num_sectors = 8, .flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP};
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_BASE + 0x20000, 16),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(tu_rw(e->tu, nvme_cmd_read, 1, 300, 8, nv, 4096), 0);
	assert_memory_equal(nv, buf, 4096);
	d->flags = 1; /* discard takes no flags */
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_DISCARD, 0, DATA_BASE + 0x20000, 16),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(vm_io(&vm, 0, 99, 0, DATA_BASE, 512), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 0, DATA_BASE, 100), VIRTIO_BLK_S_IOERR);
	/* Past the end of the namespace (1024 sectors). */
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 1020, DATA_BASE, 4096), VIRTIO_BLK_S_IOERR);

	nvemu_vblk_get_info(e->vb, &info);
	assert_true(info.connected && info.attached);
	assert_int_equal(info.active_queues, 2);
	assert_int_equal(info.stats.writes, 2);
	assert_int_equal(info.stats.reads, 3);
	assert_int_equal(info.stats.get_ids, 1);
	assert_int_equal(info.stats.flushes, 1);
	assert_int_equal(info.stats.discards, 1);
	assert_int_equal(info.stats.write_zeroes, 2);
	assert_int_equal(info.stats.unsupported, 2);
	assert_int_equal(info.stats.ioerr, 2);
	assert_int_equal(info.stats.protocol_errors, 0);
	assert_int_not_equal(info.cntlid, 0);
	/* The export is an NVMe host: its controller counted the I/O. */
	assert_int_equal(nvemu_vblk_ctrl(e->vb)->smart.units_written, 16 + 8);
	assert_int_equal(nvemu_vblk_ctrl(e->vb)->smart.host_write_cmds, 2);
	vm_free(&vm);
	free(buf);
	free(nv);
}

static void test_readonly(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct nvemu_vblk_info info;
	struct vm vm = {0};
	uint8_t zero[4096] = {0};

	params(e, &p, e->path, 2);
	p.readonly = true;
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	assert_true(vm_get_u64(&vm, VHOST_USER_GET_FEATURES) & 1ull << VIRTIO_BLK_F_RO);
	assert_false(vm_get_u64(&vm, VHOST_USER_GET_FEATURES) & 1ull << VIRTIO_BLK_F_DISCARD);
	fill(vm.mem + DATA_BASE, 4096, 9);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_OUT, 0, DATA_BASE, 4096), VIRTIO_BLK_S_IOERR);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 0, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	assert_memory_equal(vm.mem + DATA_BASE, zero, 4096);
	nvemu_vblk_get_info(e->vb, &info);
	assert_true(info.readonly);
	assert_int_equal(info.stats.writes, 0);
	assert_int_equal(info.stats.ioerr, 1);
	vm_free(&vm);
}

static void test_lba_window(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct vhost_user_msg m;
	struct virtio_blk_config cfg;
	struct vhost_user_config c = {.offset = 0, .size = sizeof(cfg)};
	struct vm vm = {0};
	uint8_t nv[4096];

	params(e, &p, e->path, 1);
	p.target.first_lba = 100;
	p.target.nr_lbas = 200;
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	vm_send(&vm, VHOST_USER_GET_CONFIG, 0, &c, 12 + sizeof(cfg), NULL, 0);
	assert_true(vm_recv(&vm, &m, NULL) > 0);
	memcpy(&cfg, m.p.config.region, sizeof(cfg));
	assert_int_equal(cfg.capacity, 200);
	fill(vm.mem + DATA_BASE, 4096, 11);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_OUT, 0, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	assert_int_equal(tu_rw(e->tu, nvme_cmd_read, 1, 100, 8, nv, 4096), 0);
	assert_memory_equal(nv, vm.mem + DATA_BASE, 4096);
	/* The window's last sectors work, one past them does not. */
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 192, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 193, DATA_BASE, 4096), VIRTIO_BLK_S_IOERR);
	vm_free(&vm);

	/* A window outside the namespace is refused, naming the field. */
	struct nvemu_error err = {0};
	struct nvemu_vblk *bad = NULL;

	params(e, &p, e->path2, 1);
	p.target.first_lba = 1000;
	p.target.nr_lbas = 100;
	assert_int_equal(nvemu_vblk_create(&p, &bad, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "first_lba"));
}

/* A second export that must keep working while the first one's client misbehaves. */
static void check_other_export(struct env *e)
{
	struct vm vm = {0};

	vm_up(e, &vm, e->path2, 1, ALL_FEATURES);
	fill(vm.mem + DATA_BASE, 4096, 21);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_OUT, 8, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	vm_free(&vm);
}

static void two_exports(struct env *e, unsigned ds_max, const char *trusted)
{
	struct nvemu_vblk_params p;

	params(e, &p, e->path, 2);
	p.ds_max = ds_max;
	p.register_ds = trusted;
	e->vb = export(e, &p);
	params(e, &p, e->path2, 1);
	e->vb2 = export(e, &p);
}

static void expect_dropped(struct env *e, struct vm *vm, const char *why)
{
	struct nvemu_vblk_info info;

	assert_true(vm_hung_up(vm));
	assert_non_null(strstr(e->last_log, why));
	nvemu_vblk_get_info(e->vb, &info);
	assert_false(info.connected);
	assert_int_equal(info.stats.protocol_errors, 1);
	check_other_export(e);
}

static void test_hostile_messages(void **state)
{
	struct env *e = *state;
	struct vm vm = {0};
	uint8_t big[64] = {0};

	two_exports(e, 8, NULL);
	/* Unknown request. */
	memset(&vm, 0, sizeof(vm));
	vm_connect(e, &vm, e->path);
	vm_send(&vm, 200, 0, big, 8, NULL, 0);
	expect_dropped(e, &vm, "unknown");
	vm_close(&vm);
	/* A payload longer than any message; then a too-short one from the next client. */
	vm_connect(e, &vm, e->path);
	uint32_t hdr[3] = {VHOST_USER_SET_FEATURES, 1, 1u << 20};
	assert_int_equal(write(vm.sock, hdr, 12), 12);
	assert_true(vm_hung_up(&vm));
	assert_non_null(strstr(e->last_log, "payload"));
	vm_close(&vm);
	vm_connect(e, &vm, e->path);
	vm_send(&vm, VHOST_USER_SET_VRING_NUM, 0, big, 4, NULL, 0);
	assert_true(vm_hung_up(&vm));
	assert_non_null(strstr(e->last_log, "bad version, size"));
	vm_close(&vm);
	/* Ring index out of range, and a ring size that is not a power of 2. */
	vm_connect(e, &vm, e->path);
	struct vhost_user_vring_state st = {7, 64};
	vm_send(&vm, VHOST_USER_SET_VRING_NUM, 0, &st, sizeof(st), NULL, 0);
	assert_true(vm_hung_up(&vm));
	assert_non_null(strstr(e->last_log, "out of range"));
	vm_close(&vm);
	vm_connect(e, &vm, e->path);
	st = (struct vhost_user_vring_state){0, 100};
	vm_send(&vm, VHOST_USER_SET_VRING_NUM, 0, &st, sizeof(st), NULL, 0);
	assert_true(vm_hung_up(&vm));
	vm_close(&vm);
	check_other_export(e);
}

static void test_hostile_memory(void **state)
{
	struct env *e = *state;
	struct vhost_user_mem t;
	struct vm vm = {0};
	int fds[2];

	two_exports(e, 1, NULL);
	memset(&vm, 0, sizeof(vm));
	vm_mem(&vm);
	vm_connect(e, &vm, e->path);
	/* Two regions with ds_max 1. */
	t = one_region(&vm);
	t.nregions = 2;
	t.regions[0].size = MEM_SIZE / 2;
	t.regions[1] = (struct vhost_user_region){MEM_SIZE / 2, MEM_SIZE / 2,
						  (uintptr_t)vm.mem + MEM_SIZE / 2, MEM_SIZE / 2};
	fds[0] = fds[1] = vm.memfd;
	vm_send(&vm, VHOST_USER_SET_MEM_TABLE, 0, &t, 8 + 2 * sizeof(t.regions[0]), fds, 2);
	expect_dropped(e, &vm, "ds_max");
	vm_close(&vm);
	/* A region past the end of its file. */
	vm_connect(e, &vm, e->path);
	t = one_region(&vm);
	t.regions[0].mmap_offset = 4096;
	vm_send(&vm, VHOST_USER_SET_MEM_TABLE, 0, &t, 8 + sizeof(t.regions[0]), &vm.memfd, 1);
	assert_true(vm_hung_up(&vm));
	assert_non_null(strstr(e->last_log, "end of its file"));
	vm_close(&vm);
	/* Regions and fds that do not match. */
	vm_connect(e, &vm, e->path);
	t = one_region(&vm);
	vm_send(&vm, VHOST_USER_SET_MEM_TABLE, 0, &t, 8 + sizeof(t.regions[0]), NULL, 0);
	assert_true(vm_hung_up(&vm));
	vm_close(&vm);
	/* A ring outside guest memory. */
	vm_connect(e, &vm, e->path);
	vm_negotiate(&vm, ALL_FEATURES);
	assert_int_equal(
		vm_ack(&vm, VHOST_USER_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), &vm.memfd, 1),
		0);
	struct vhost_user_vring_state st = {0, NUM};
	struct vhost_user_vring_addr a = {.index = 0,
					  .desc = (uintptr_t)vm.mem + MEM_SIZE,
					  .avail = (uintptr_t)vm.mem,
					  .used = (uintptr_t)vm.mem};
	assert_int_equal(vm_ack(&vm, VHOST_USER_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 0);
	assert_int_equal(vm_ack(&vm, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), -1);
	assert_non_null(strstr(e->last_log, "outside"));
	vm_close(&vm);
	/* Inflight memory in a file shorter than it claims (touching it would SIGBUS). */
	struct vhost_user_inflight in = {.num_queues = 1, .queue_size = NUM};
	struct vhost_user_msg m;
	int infd = -1, small = memfd_create("small", MFD_CLOEXEC);

	vm_connect(e, &vm, e->path);
	vm_negotiate(&vm, ALL_FEATURES);
	vm_send(&vm, VHOST_USER_GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0);
	assert_true(vm_recv(&vm, &m, &infd) > 0);
	assert_true(infd >= 0);
	close(infd);
	in = m.p.inflight;
	assert_int_equal(ftruncate(small, 512), 0);
	assert_int_equal(vm_ack(&vm, VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &small, 1), -1);
	assert_non_null(strstr(e->last_log, "SET_INFLIGHT_FD"));
	close(small);
	vm_free(&vm);
	check_other_export(e);
}

static void test_register_ds(void **state)
{
	struct env *e = *state;
	char trusted[160];
	struct vhost_user_mem t;
	struct vm vm = {0};
	int fd;

	snprintf(trusted, sizeof(trusted), "%s/guest-ram", e->dir);
	fd = open(trusted, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_int_equal(ftruncate(fd, MEM_SIZE), 0);
	two_exports(e, 8, trusted);
	/* A memfd is not the registered file. */
	memset(&vm, 0, sizeof(vm));
	vm_mem(&vm);
	vm_connect(e, &vm, e->path);
	t = one_region(&vm);
	vm_send(&vm, VHOST_USER_SET_MEM_TABLE, 0, &t, 8 + sizeof(t.regions[0]), &vm.memfd, 1);
	expect_dropped(e, &vm, "registered file");
	vm_free(&vm);
	/* The registered file is accepted and I/O works through it. */
	memset(&vm, 0, sizeof(vm));
	vm.memfd = fd;
	vm.mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	fill(vm.mem + DATA_BASE, 4096, 5);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_OUT, 0, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	vm_free(&vm);
	unlink(trusted);
}

static void test_hostile_rings(void **state)
{
	struct env *e = *state;
	struct vm vm = {0};
	struct seg s = {DATA_BASE, 512};
	uint16_t h;

	two_exports(e, 8, NULL);
	/* A descriptor outside the memory regions. */
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	s.gpa = MEM_SIZE - 256;
	vm_req(&vm, 0, VIRTIO_BLK_T_IN, 0, &s, 1, false);
	vm_kick(&vm, 0);
	expect_dropped(e, &vm, "outside the memory regions");
	vm_free(&vm);
	/* A descriptor loop. */
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	s.gpa = DATA_BASE;
	h = vm_req(&vm, 0, VIRTIO_BLK_T_IN, 0, &s, 1, false);
	desc(&vm, 0)[(h + 2) % NUM].flags |= VRING_DESC_F_NEXT;
	desc(&vm, 0)[(h + 2) % NUM].next = (h + 2) % NUM;
	vm_kick(&vm, 0);
	assert_true(vm_hung_up(&vm));
	assert_non_null(strstr(e->last_log, "loops"));
	vm_free(&vm);
	/* A loop inside an indirect table. */
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	h = vm_req(&vm, 0, VIRTIO_BLK_T_IN, 0, &s, 1, true);
	struct vring_desc *t = (void *)(vm.mem + IND_BASE + h * 256);
	t[2].flags |= VRING_DESC_F_NEXT;
	t[2].next = 2;
	vm_kick(&vm, 0);
	assert_true(vm_hung_up(&vm));
	assert_non_null(strstr(e->last_log, "loops"));
	vm_free(&vm);
	/* The available index jumping past the ring size. */
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	avail(&vm, 0)->idx = NUM + 5;
	vm_kick(&vm, 0);
	assert_true(vm_hung_up(&vm));
	assert_non_null(strstr(e->last_log, "ring size"));
	vm_free(&vm);
	/* A request without a status byte. */
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	h = vm_req(&vm, 0, VIRTIO_BLK_T_OUT, 0, &s, 1, false);
	desc(&vm, 0)[(h + 1) % NUM].flags &= (uint16_t)~VRING_DESC_F_NEXT;
	vm_kick(&vm, 0);
	assert_true(vm_hung_up(&vm));
	assert_non_null(strstr(e->last_log, "status"));
	vm_free(&vm);
	check_other_export(e);
}

static void detached(void *arg)
{
	(*(int *)arg)++;
}

static void test_detach_attach(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct nvemu_vblk_target t = {e->tu->subsys, 2, 0, 0};
	struct nvemu_error err = {0};
	unsigned nr_ctrls = e->tu->subsys->nr_ctrls;
	struct vm vm = {0};
	int done = 0;

	params(e, &p, e->path, 2);
	e->vb = export(e, &p);
	assert_int_equal(e->tu->subsys->nr_ctrls, nr_ctrls + 1);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 0, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	assert_int_equal(nvemu_vblk_detach(e->vb, detached, &done), 0);
	assert_int_equal(done, 1);
	assert_null(nvemu_vblk_ctrl(e->vb));
	assert_int_equal(e->tu->subsys->nr_ctrls, nr_ctrls);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 0, DATA_BASE, 4096), VIRTIO_BLK_S_IOERR);
	assert_int_equal(nvemu_vblk_detach(e->vb, detached, &done), -ENOENT);
	assert_int_equal(nvemu_vblk_attach(e->vb, &t, &err), 0);
	assert_int_equal(nvemu_vblk_attach(e->vb, &t, &err), -EBUSY);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 0, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	/* A namespace detached from the export's controller behind its back: an error, no data. */
	assert_int_equal(nvemu_ctrl_detach_ns(nvemu_vblk_ctrl(e->vb), 2, &err), 0);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 0, DATA_BASE, 4096), VIRTIO_BLK_S_IOERR);
	vm_free(&vm);
}

/* Destroy while a detach waits for a request: both callbacks run, once, after it. */
static void test_destroy_during_detach(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct vm vm = {0};
	struct seg s = {DATA_BASE, 4096};
	int det = 0, done = 0;

	params(e, &p, e->path, e->delay_nsid);
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	vm_req(&vm, 0, VIRTIO_BLK_T_IN, 0, &s, 1, false);
	vm_kick(&vm, 0);
	for (int i = 0; i < 3; i++)
		pump(e, 1);
	assert_int_equal(nvemu_vblk_detach(e->vb, detached, &det), 0);
	assert_int_equal(det, 0);
	nvemu_vblk_destroy(e->vb, destroyed, &done);
	e->vb = NULL;
	assert_int_equal(det + done, 0);
	PUMP_UNTIL(e, done == 1);
	assert_int_equal(det, 1);
	assert_int_equal(done, 1);
	vm_free(&vm);
}

/* Suspend holds requests; GET_VRING_BASE waits for those in flight. */
static void test_suspend_and_stop(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct vhost_user_msg m;
	struct vm vm = {0};
	uint16_t h;
	struct seg s = {DATA_BASE, 4096};

	params(e, &p, e->path, e->delay_nsid);
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	nvemu_vblk_suspend(e->vb);
	h = vm_req(&vm, 0, VIRTIO_BLK_T_IN, 0, &s, 1, false);
	vm_kick(&vm, 0);
	for (int i = 0; i < 100; i++)
		pump(e, 1);
	assert_int_equal(used(&vm, 0)->idx, 0);
	nvemu_vblk_resume(e->vb);
	assert_int_equal(vm_wait(&vm, 0, h, NULL), VIRTIO_BLK_S_OK);

	h = vm_req(&vm, 0, VIRTIO_BLK_T_OUT, 0, &s, 1, false);
	vm_kick(&vm, 0);
	for (int i = 0; i < 5; i++)
		pump(e, 1);
	struct vhost_user_vring_state st = {0, 0};
	vm_send(&vm, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0);
	assert_true(vm_recv(&vm, &m, NULL) > 0);
	/* The answer came after the write completed. */
	assert_int_equal(used(&vm, 0)->idx, 2);
	assert_int_equal(m.p.state.num, 2);
	assert_int_equal(vm.mem[ST_BASE + h], VIRTIO_BLK_S_OK);
	vm_free(&vm);
}

static void test_destroy_inflight(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct vm vm = {0};
	struct seg s = {DATA_BASE, 4096};
	int done = 0;

	params(e, &p, e->path, e->delay_nsid);
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	vm_req(&vm, 0, VIRTIO_BLK_T_OUT, 0, &s, 1, false);
	vm_kick(&vm, 0);
	for (int i = 0; i < 5; i++)
		pump(e, 1);
	nvemu_vblk_destroy(e->vb, destroyed, &done);
	e->vb = NULL;
	assert_int_equal(done, 0); /* the write holds it */
	assert_int_equal(access(e->path, F_OK), -1);
	PUMP_UNTIL(e, done == 1);
	assert_int_equal(done, 1);
	vm_free(&vm);
}

/* A client that vanishes with a write in flight comes back and the write is resubmitted. */
static void test_inflight_reconnect(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct vhost_user_inflight in = {.num_queues = 1, .queue_size = NUM};
	struct vhost_user_msg m;
	struct nvemu_vblk_info info;
	struct vm vm = {0};
	struct seg s = {DATA_BASE, 4096};
	uint8_t *mem;
	int memfd, infd = -1;
	uint16_t h;

	params(e, &p, e->path, e->delay_nsid);
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 0, ALL_FEATURES);
	vm_send(&vm, VHOST_USER_GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0);
	assert_true(vm_recv(&vm, &m, &infd) > 0);
	assert_true(infd >= 0);
	in = m.p.inflight;
	vm_start_ring(&vm, 0, 0);
	fill(vm.mem + DATA_BASE, 4096, 77);
	h = vm_req(&vm, 0, VIRTIO_BLK_T_OUT, 8, &s, 1, false);
	vm_kick(&vm, 0);
	for (int i = 0; i < 5; i++)
		pump(e, 1);
	nvemu_vblk_get_info(e->vb, &info);
	assert_int_equal(info.inflight, 1);
	/* The VMM loses the back end: its guest memory and inflight memory stay. */
	mem = vm.mem;
	memfd = vm.memfd;
	vm_close(&vm);
	PUMP_UNTIL(e, (nvemu_vblk_get_info(e->vb, &info), !info.connected));
	assert_int_equal(used(&vm, 0)->idx, 0);

	memset(&vm, 0, sizeof(vm));
	vm.mem = mem;
	vm.memfd = memfd;
	vm.inflight_fd = -1;
	vm_connect(e, &vm, e->path);
	vm_negotiate(&vm, ALL_FEATURES);
	struct vhost_user_mem t = one_region(&vm);
	assert_int_equal(
		vm_ack(&vm, VHOST_USER_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), &vm.memfd, 1),
		0);
	assert_int_equal(vm_ack(&vm, VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &infd, 1), 0);
	vm.inflight_fd = infd;
	vm_start_ring(&vm, 0, 1);
	assert_int_equal(vm_wait(&vm, 0, h, NULL), VIRTIO_BLK_S_OK);
	nvemu_vblk_get_info(e->vb, &info);
	assert_int_equal(info.stats.resubmitted, 1);
	assert_int_equal(info.stats.writes, 2);
	vm_free(&vm);
}

/* ---- a packed-ring driver */

struct pring {
	uint16_t avail, used;
	bool avail_wrap, used_wrap;
	uint16_t nd[NUM]; /* slots of the chain with that id */
};

static struct vring_packed_desc *pdesc(struct vm *vm, unsigned q)
{
	return (struct vring_packed_desc *)(vm->mem + QBASE(q));
}

static uint16_t avail_bits(bool wrap)
{
	return wrap ? 1u << VRING_PACKED_DESC_F_AVAIL : 1u << VRING_PACKED_DESC_F_USED;
}

/* Like vm_req, on a packed ring; the id is the chain's first slot. */
static uint16_t vm_preq(struct vm *vm, struct pring *pr, uint32_t type, uint64_t sector,
			const struct seg *s, unsigned n, bool indirect)
{
	bool w = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	uint16_t id = pr->avail, first_flags = 0;
	struct vring_packed_desc chain[16];
	unsigned k = 0;

	*(struct virtio_blk_outhdr *)(vm->mem + HDR_BASE + id * 16) =
		(struct virtio_blk_outhdr){.type = type, .sector = sector};
	chain[k++] = (struct vring_packed_desc){.addr = HDR_BASE + id * 16, .len = 16};
	for (unsigned i = 0; i < n; i++)
		chain[k++] = (struct vring_packed_desc){
			.addr = s[i].gpa, .len = s[i].len, .flags = w ? VRING_DESC_F_WRITE : 0};
	vm->mem[ST_BASE + id] = 0xee;
	chain[k++] = (struct vring_packed_desc){
		.addr = ST_BASE + id, .len = 1, .flags = VRING_DESC_F_WRITE};
	if (indirect) {
		memcpy(vm->mem + IND_BASE + id * 256, chain, k * sizeof(chain[0]));
		chain[0] = (struct vring_packed_desc){
			.addr = IND_BASE + id * 256, .len = k * 16, .flags = VRING_DESC_F_INDIRECT};
		k = 1;
	}
	for (unsigned i = 0; i < k; i++) {
		struct vring_packed_desc *d = &pdesc(vm, 0)[pr->avail];
		uint16_t f = chain[i].flags | (i + 1 < k ? VRING_DESC_F_NEXT : 0) |
			     avail_bits(pr->avail_wrap);

		*d = chain[i];
		d->id = id;
		/* The first descriptor's flags go last: they hand the chain over. */
		if (i)
			d->flags = f;
		else
			first_flags = f;
		if (++pr->avail == NUM) {
			pr->avail = 0;
			pr->avail_wrap = !pr->avail_wrap;
		}
	}
	pr->nd[id] = (uint16_t)k;
	__atomic_store_n(&pdesc(vm, 0)[id].flags, first_flags, __ATOMIC_RELEASE);
	return id;
}

static uint8_t vm_pwait(struct vm *vm, struct pring *pr, uint16_t id)
{
	struct vring_packed_desc *d = &pdesc(vm, 0)[pr->used];
	uint16_t want = pr->used_wrap ? avail_bits(true) | 1u << VRING_PACKED_DESC_F_USED : 0;
	uint16_t mask = 1u << VRING_PACKED_DESC_F_AVAIL | 1u << VRING_PACKED_DESC_F_USED;

	PUMP_UNTIL(vm->e, (__atomic_load_n(&d->flags, __ATOMIC_ACQUIRE) & mask) == want);
	if ((d->flags & mask) != want)
		return 0xee;
	assert_int_equal(d->id, id);
	pr->used = (uint16_t)(pr->used + pr->nd[id]);
	if (pr->used >= NUM) {
		pr->used -= NUM;
		pr->used_wrap = !pr->used_wrap;
	}
	return vm->mem[ST_BASE + id];
}

/* Negotiate packed rings and start ring 0 (both wrap counters at 1). */
static void vm_packed_up(struct vm *vm)
{
	struct vhost_user_mem t;

	vm_negotiate(vm, ~0ull);
	assert_true(vm->features & 1ull << VIRTIO_F_RING_PACKED);
	t = one_region(vm);
	assert_int_equal(
		vm_ack(vm, VHOST_USER_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), &vm->memfd, 1),
		0);
	vm_start_ring(vm, 0, 1u << 15 | 1u << 31);
}

static void test_packed_hostile(void **state)
{
	struct env *e = *state;
	struct vm vm = {0};
	struct pring pr = {.avail_wrap = true, .used_wrap = true};
	struct seg s = {MEM_SIZE - 100, 512};

	two_exports(e, 8, NULL);
	/* A chain that never ends (NEXT on every slot). */
	vm_mem(&vm);
	vm_connect(e, &vm, e->path);
	vm.inflight_fd = -1;
	vm_packed_up(&vm);
	for (unsigned i = 0; i < NUM; i++)
		pdesc(&vm, 0)[i] = (struct vring_packed_desc){DATA_BASE, 16, 0,
							      VRING_DESC_F_NEXT | avail_bits(true)};
	vm_kick(&vm, 0);
	expect_dropped(e, &vm, "exceeds the ring size");
	vm_close(&vm);
	/* A data descriptor outside guest memory. */
	vm_connect(e, &vm, e->path);
	memset(vm.mem, 0, 0x4000);
	vm_packed_up(&vm);
	vm_preq(&vm, &pr, VIRTIO_BLK_T_IN, 0, &s, 1, false);
	vm_kick(&vm, 0);
	assert_true(vm_hung_up(&vm));
	assert_non_null(strstr(e->last_log, "outside the memory regions"));
	vm_free(&vm);
}

static void test_packed_ring(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct vhost_user_msg m;
	struct vm vm = {0};
	struct pring pr = {.avail_wrap = true, .used_wrap = true};
	uint8_t nv[4096];

	params(e, &p, e->path, 1);
	e->vb = export(e, &p);
	vm_mem(&vm);
	vm_connect(e, &vm, e->path);
	vm.inflight_fd = -1;
	vm_packed_up(&vm);
	/* Chains of 3, 4 and 1 (indirect) slots straddle the ring's end several times. */
	for (unsigned i = 0; i < 150; i++) {
		struct seg s[2] = {{DATA_BASE + (i % 8) * 0x2000, 2048},
				   {DATA_BASE + (i % 8) * 0x2000 + 2048, 2048}};
		uint16_t id;

		fill(vm.mem + s[0].gpa, 4096, i);
		id = vm_preq(&vm, &pr, VIRTIO_BLK_T_OUT, 8 * (i % 64), s, 1 + i % 2, i % 3 == 0);
		vm_kick(&vm, 0);
		assert_int_equal(vm_pwait(&vm, &pr, id), VIRTIO_BLK_S_OK);
		if (i % 2 == 0)
			continue; /* 2 KiB written; the 4 KiB ones are read back */
		assert_int_equal(tu_rw(e->tu, nvme_cmd_read, 1, 8 * (i % 64), 8, nv, 4096), 0);
		assert_memory_equal(nv, vm.mem + s[0].gpa, 4096);
		memset(vm.mem + s[0].gpa, 0, 4096);
		id = vm_preq(&vm, &pr, VIRTIO_BLK_T_IN, 8 * (i % 64), s, 2, i % 5 == 0);
		vm_kick(&vm, 0);
		assert_int_equal(vm_pwait(&vm, &pr, id), VIRTIO_BLK_S_OK);
		assert_memory_equal(nv, vm.mem + s[0].gpa, 4096);
	}
	/* GET_VRING_BASE: avail and used positions with their wrap counters. */
	struct vhost_user_vring_state st = {0, 0};

	vm_send(&vm, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0);
	assert_true(vm_recv(&vm, &m, NULL) > 0);
	assert_int_equal(m.p.state.num, (uint32_t)(pr.avail | pr.avail_wrap << 15) |
						(uint32_t)(pr.used | pr.used_wrap << 15) << 16);
	assert_int_equal(pr.avail, pr.used);
	vm_free(&vm);
}

/* Calls: one per batch, and none while the driver's used_event says it does not want one. */
static void test_calls_and_event_idx(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct vm vm = {0};
	struct seg s = {DATA_BASE, 512};
	eventfd_t v = 0;
	uint16_t h[4];

	params(e, &p, e->path, 2);
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	assert_true(vm.features & 1ull << VIRTIO_RING_F_EVENT_IDX);
	/* used_event 0: call once the first entry is used. */
	for (int i = 0; i < 4; i++)
		h[i] = vm_req(&vm, 0, VIRTIO_BLK_T_IN, (uint64_t)i, &s, 1, false);
	vm_kick(&vm, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(vm_wait(&vm, 0, h[i], NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(eventfd_read(vm.call[0], &v), 0);
	assert_int_equal(v, 1); /* four completions, one call */
	/* The driver asks for a call only after entry 100: none comes. */
	avail(&vm, 0)->ring[NUM] = 100;
	h[0] = vm_req(&vm, 0, VIRTIO_BLK_T_IN, 0, &s, 1, false);
	vm_kick(&vm, 0);
	assert_int_equal(vm_wait(&vm, 0, h[0], NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(eventfd_read(vm.call[0], &v), -1);
	/* The server published where it stands: the driver need not kick before that index. */
	uint16_t avail_event;

	memcpy(&avail_event, &used(&vm, 0)->ring[NUM], sizeof(avail_event));
	assert_int_equal(avail_event, vm.avail[0]);
	vm_free(&vm);
}

/* Regions added and removed one by one (CONFIGURE_MEM_SLOTS), then a device reset. */
static void test_mem_slots_and_reset(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct nvemu_vblk_info info;
	struct vhost_user_mem_one r = {0};
	struct vm vm = {0};

	params(e, &p, e->path, 2);
	p.ds_max = 2;
	e->vb = export(e, &p);
	vm_mem(&vm);
	vm_connect(e, &vm, e->path);
	vm.inflight_fd = -1;
	vm_negotiate(&vm, ALL_FEATURES);
	r.region = (struct vhost_user_region){0, MEM_SIZE / 2, (uintptr_t)vm.mem, 0};
	assert_int_equal(vm_ack(&vm, VHOST_USER_ADD_MEM_REG, &r, sizeof(r), &vm.memfd, 1), 0);
	r.region = (struct vhost_user_region){MEM_SIZE / 2, MEM_SIZE / 2,
					      (uintptr_t)vm.mem + MEM_SIZE / 2, MEM_SIZE / 2};
	assert_int_equal(vm_ack(&vm, VHOST_USER_ADD_MEM_REG, &r, sizeof(r), &vm.memfd, 1), 0);
	nvemu_vblk_get_info(e->vb, &info);
	assert_int_equal(info.nr_regions, 2);
	vm_start_ring(&vm, 0, 0);
	/* Data in the second region, header in the first. */
	fill(vm.mem + MEM_SIZE / 2, 4096, 3);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_OUT, 0, MEM_SIZE / 2, 4096), VIRTIO_BLK_S_OK);
	/* Removing it makes that data unreachable: the next such request drops the client. */
	assert_int_equal(vm_ack(&vm, VHOST_USER_REM_MEM_REG, &r, sizeof(r), NULL, 0), 0);
	nvemu_vblk_get_info(e->vb, &info);
	assert_int_equal(info.nr_regions, 1);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 0, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	/* A reset stops the rings; started again, they go on from the ring's indices. */
	vm_send(&vm, VHOST_USER_RESET_DEVICE, 0, NULL, 0, NULL, 0);
	nvemu_vblk_get_info(e->vb, &info);
	PUMP_UNTIL(e, (nvemu_vblk_get_info(e->vb, &info), info.active_queues == 0));
	assert_int_equal(info.active_queues, 0);
	vm_negotiate(&vm, ALL_FEATURES);
	close(vm.kick[0]);
	close(vm.call[0]);
	vm_start_ring(&vm, 0, vm.avail[0]);
	assert_int_equal(vm_io(&vm, 0, VIRTIO_BLK_T_IN, 0, DATA_BASE, 4096), VIRTIO_BLK_S_OK);
	/* A region past ds_max. */
	r.region.gpa = MEM_SIZE;
	r.region.uva = (uintptr_t)vm.mem + MEM_SIZE;
	r.region.mmap_offset = 0;
	r.region.size = 4096;
	assert_int_equal(vm_ack(&vm, VHOST_USER_ADD_MEM_REG, &r, sizeof(r), &vm.memfd, 1), 0);
	assert_int_equal(vm_ack(&vm, VHOST_USER_ADD_MEM_REG, &r, sizeof(r), &vm.memfd, 1), -1);
	assert_non_null(strstr(e->last_log, "ds_max"));
	vm_free(&vm);
}

/* Header and data in one descriptor, as some drivers lay requests out. */
static void test_header_with_data(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct vm vm = {0};
	uint8_t nv[4096];
	uint16_t h;

	params(e, &p, e->path, 1);
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	h = vm.next_desc[0];
	*(struct virtio_blk_outhdr *)(vm.mem + DATA_BASE) =
		(struct virtio_blk_outhdr){.type = VIRTIO_BLK_T_OUT, .sector = 40};
	fill(vm.mem + DATA_BASE + 16, 4096, 8);
	desc(&vm, 0)[h] = (struct vring_desc){DATA_BASE, 16 + 4096, VRING_DESC_F_NEXT, h + 1};
	desc(&vm, 0)[h + 1] = (struct vring_desc){ST_BASE + h, 1, VRING_DESC_F_WRITE, 0};
	avail(&vm, 0)->ring[0] = h;
	__atomic_store_n(&avail(&vm, 0)->idx, ++vm.avail[0], __ATOMIC_RELEASE);
	vm_kick(&vm, 0);
	assert_int_equal(vm_wait(&vm, 0, h, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(tu_rw(e->tu, nvme_cmd_read, 1, 40, 8, nv, 4096), 0);
	assert_memory_equal(nv, vm.mem + DATA_BASE + 16, 4096);
	vm_free(&vm);
}

/* A client that vanishes while GET_VRING_BASE waits for a request is noticed at once. */
static void test_gone_during_stop(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct nvemu_vblk_info info;
	struct vm vm = {0};
	struct seg s = {DATA_BASE, 4096};
	struct vhost_user_vring_state st = {0, 0};

	params(e, &p, e->path, e->delay_nsid);
	e->vb = export(e, &p);
	vm_up(e, &vm, e->path, 1, ALL_FEATURES);
	vm_req(&vm, 0, VIRTIO_BLK_T_IN, 0, &s, 1, false);
	vm_kick(&vm, 0);
	for (int i = 0; i < 3; i++)
		pump(e, 1);
	vm_send(&vm, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0);
	for (int i = 0; i < 3; i++)
		pump(e, 1);
	vm_close(&vm);
	for (int i = 0; i < 5; i++)
		pump(e, 1);
	nvemu_vblk_get_info(e->vb, &info);
	assert_false(info.connected);
	assert_int_equal(info.inflight, 1); /* the read goes on, its memory still mapped */
	PUMP_UNTIL(e, (nvemu_vblk_get_info(e->vb, &info), info.inflight == 0));
	assert_int_equal(info.inflight, 0);
	vm_free(&vm);
}

/* Out of descriptors, accept() fails and the listener rests instead of spinning. */
static void test_accept_out_of_fds(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct nvemu_vblk_info info;
	static struct tu_fd_exhaust fdx;
	struct vm vm = {0};
	double cpu0, cpu;
	int logs0;

	params(e, &p, e->path, 2);
	e->vb = export(e, &p);
	vm.sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	close(vm.sock);
	tu_fd_exhaust_begin(&fdx);
	/* The socket the client connects with is the last descriptor left. */
	close(fdx.fill[--fdx.nfill]);
	vm_connect(e, &vm, e->path);
	logs0 = e->logs;
	cpu0 = tu_cpu_seconds();
	for (int i = 0; i < 1000; i++)
		pump(e, 1);
	cpu = tu_cpu_seconds() - cpu0;
	nvemu_vblk_get_info(e->vb, &info);
	tu_fd_exhaust_end(&fdx);
	tu_fd_exhaust_free(&fdx);
	print_message("# out of fds for ~1 s: %u accept failures, %.3f s CPU\n",
		      (unsigned)info.stats.accept_errors, cpu);
	assert_false(info.connected);
	assert_true(info.stats.accept_errors >= 1 && info.stats.accept_errors <= 30);
	assert_true(cpu < 0.5);
	assert_int_equal(e->logs - logs0, 1); /* one line, not one per failure */
	assert_non_null(strstr(e->last_log, "not accepting"));
	/* Descriptors back: the waiting client is served. */
	assert_int_equal(vm_get_u64(&vm, VHOST_USER_GET_QUEUE_NUM), 2);
	vm_close(&vm);
}

static void test_params(void **state)
{
	struct env *e = *state;
	struct nvemu_vblk_params p;
	struct nvemu_error err = {0};
	struct nvemu_vblk *vb = NULL;

	params(e, &p, e->path, 2);
	p.queue_size = 100;
	assert_int_equal(nvemu_vblk_create(&p, &vb, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "queue_size"));
	params(e, &p, e->path, 2);
	p.serial = "123456789012345678901";
	assert_int_equal(nvemu_vblk_create(&p, &vb, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "serial"));
	params(e, &p, e->path, 9);
	assert_int_equal(nvemu_vblk_create(&p, &vb, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "nsid"));
	/* A live socket is never taken over. */
	params(e, &p, e->path, 2);
	e->vb = export(e, &p);
	assert_int_equal(nvemu_vblk_create(&p, &vb, &err), -EADDRINUSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_negotiation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lba_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_ds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_rings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_during_detach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_suspend_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_and_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packed_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packed_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mem_slots_and_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_with_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_during_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accept_out_of_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a vhost-user-blk export (src/transport/vhost-user-blk)
 * on arbitrary client messages over its real unix socket, exporting a RAM
 * namespace through the engine.
 *
 * Input: records, each starting with a byte op:
 *   op & 3 == 0: a message: u8 request, u8 flags (ORed into version 1),
 *                le16 payload length L, then L payload bytes. (op >> 2) & 3
 *                fds go with it: the guest memory memfd (64 KiB), or with
 *                op bit 4 fresh eventfds (kick/call).
 *   op & 3 == 1: raw bytes: le16 length L, then L bytes sent as they are
 *                (torn headers, wrong sizes).
 *   op & 3 == 2: guest memory: le16 offset, u8 length L, L bytes written
 *                into the memfd (rings, descriptors, requests), then every
 *                eventfd handed out is signalled (kicks).
 *   op & 3 == 3: the client hangs up and a new one connects.
 * After each record the export handles what arrived and the client drains
 * the replies. At the end the client hangs up: the export must notice and
 * be ready for the next one.
 *
 * Built by tests/fuzz/meson.build (CC=clang, -Dfuzz=true).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <nvemu/nvemu.h>
#include <nvemu/vhost-blk.h>

#include "transport/vhost-user-blk/vblk-internal.h"

#define MEMSZ	 (64u * 1024u)
#define MAX_H	 64
#define MAX_EVFD 16

struct h {
	int fd;
	uint32_t events;
	nvemu_vblk_fd_cb cb;
	void *arg;
	bool used;
};

static struct h hs[MAX_H];
static struct nvemu_vblk *vb;
static struct nvemu_subsys *subsys;
static char path[108];
static int memfd = -1;
static int evfds[MAX_EVFD];
static unsigned nr_evfds;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz-vhost-user: %s\n", what);
	abort();
}

static void *l_add(void *loop, int fd, uint32_t events, nvemu_vblk_fd_cb cb, void *arg)
{
	(void)loop;
	for (unsigned i = 0; i < MAX_H; i++) {
		if (!hs[i].used) {
			hs[i] = (struct h){fd, events, cb, arg, true};
			return &hs[i];
		}
	}
	return NULL;
}

static int l_mod(void *loop, void *handle, uint32_t events)
{
	(void)loop;
	((struct h *)handle)->events = events;
	return 0;
}

static void l_del(void *loop, void *handle)
{
	(void)loop;
	((struct h *)handle)->used = false;
}

static const struct nvemu_vblk_loop_ops lops = {l_add, l_mod, l_del};

/* One pass over the watched fds: each readable one's callback, once. */
static void run_loop(void)
{
	for (int pass = 0; pass < 4; pass++) {
		for (unsigned i = 0; i < MAX_H; i++) {
			struct pollfd p = {.fd = hs[i].fd, .events = POLLIN};

			if (!hs[i].used || !hs[i].events || poll(&p, 1, 0) != 1)
				continue;
			hs[i].cb(hs[i].fd, p.revents, hs[i].arg);
		}
		nvemu_subsys_poll(subsys);
	}
}

static void cleanup(void)
{
	nvemu_vblk_destroy(vb, NULL, NULL);
	nvemu_subsys_destroy(subsys);
	if (memfd >= 0)
		close(memfd);
}

static void init(void)
{
	struct nvemu_error err = {0};
	struct nvemu_subsys_params sp;
	struct nvemu_vblk_params p;
	uint32_t nsid = 0;

	nvemu_subsys_params_init(&sp);
	if (nvemu_subsys_create(&sp, &subsys, &err) ||
	    nvemu_subsys_add_ns(subsys, 1024, &nsid, &err))
		fail(err.msg);
	snprintf(path, sizeof(path), "/tmp/nvemu-fuzz-vblk.%d.sock", (int)getpid());
	nvemu_vblk_params_init(&p);
	p.ops = &lops;
	p.socket_path = path;
	p.target.subsys = subsys;
	p.target.nsid = nsid;
	p.num_queues = 2;
	p.queue_size = 64;
	p.ds_max = 4;
	p.serial = "fuzz";
	p.log = NULL;
	if (nvemu_vblk_create(&p, &vb, &err))
		fail(err.msg);
	memfd = memfd_create("fuzz-guest", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, MEMSZ))
		fail("memfd");
	atexit(cleanup);
}

static int client_connect(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)))
		fail("connect");
	run_loop();
	return s;
}

static void drain(int s)
{
	char buf[4096];

	while (recv(s, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void send_fds(int s, const void *buf, size_t len, const int *fds, unsigned n)
{
	char cbuf[CMSG_SPACE(3 * sizeof(int))] = {0};
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (n) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	}
	sendmsg(s, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static size_t message(int s, uint8_t op, const uint8_t *d, size_t n)
{
	uint8_t buf[12 + 4096];
	uint32_t hdr[3];
	int fds[3];
	unsigned nfds = (op >> 2) & 3;
	size_t len;

	if (n < 4)
		return n;
	len = (size_t)(d[2] | d[3] << 8);
	if (len > n - 4)
		len = n - 4;
	if (len > 4096)
		len = 4096;
	hdr[0] = d[0];
	hdr[1] = VHOST_USER_VERSION | (d[1] & ~VHOST_USER_VERSION_MASK);
	hdr[2] = (uint32_t)len;
	memcpy(buf, hdr, 12);
	memcpy(buf + 12, d + 4, len);
	for (unsigned i = 0; i < nfds; i++) {
		if (op & 16) {
			fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (nr_evfds < MAX_EVFD)
				evfds[nr_evfds++] = dup(fds[i]);
		} else {
			fds[i] = dup(memfd);
		}
	}
	send_fds(s, buf, 12 + len, fds, nfds);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	return 4 + len;
}

static size_t poke(const uint8_t *d, size_t n)
{
	size_t off, len;

	if (n < 3)
		return n;
	off = (size_t)(d[0] | d[1] << 8) % MEMSZ;
	len = d[2];
	if (len > n - 3)
		len = n - 3;
	if (len > MEMSZ - off)
		len = MEMSZ - off;
	if (pwrite(memfd, d + 3, len, (off_t)off) != (ssize_t)len)
		fail("pwrite");
	for (unsigned i = 0; i < nr_evfds; i++)
		eventfd_write(evfds[i], 1);
	return 3 + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zero[MEMSZ];
	int s;

	if (!vb)
		init();
	if (pwrite(memfd, zero, MEMSZ, 0) != MEMSZ)
		fail("pwrite");
	s = client_connect();
	for (size_t i = 0; i < size;) {
		uint8_t op = data[i++];
		size_t rest = size - i;

		if ((op & 3) == 0) {
			i += message(s, op, data + i, rest);
		} else if ((op & 3) == 1) {
			size_t len = rest >= 2 ? (size_t)(data[i] | data[i + 1] << 8) : 0;

			len = len > rest - (rest >= 2 ? 2 : rest) ? rest - (rest >= 2 ? 2 : rest)
								  : len;
			i += rest >= 2 ? 2 : rest;
			send(s, data + i, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			i += len;
		} else if ((op & 3) == 2) {
			i += poke(data + i, rest);
		} else {
			close(s);
			run_loop();
			s = client_connect();
		}
		run_loop();
		drain(s);
	}
	close(s);
	/* The export notices and accepts the next client. */
	for (int i = 0; i < 100; i++)
		run_loop();
	for (unsigned i = 0; i < nr_evfds; i++)
		close(evfds[i]);
	nr_evfds = 0;
	struct nvemu_vblk_info info;

	nvemu_vblk_get_info(vb, &info);
	if (info.connected || info.inflight)
		fail("the export still holds a client that hung up");
	return 0;
}

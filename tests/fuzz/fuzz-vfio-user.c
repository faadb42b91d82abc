// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the vfio-user server (src/transport/vfio-user) on arbitrary
 * client messages over its real unix socket, serving a PCIe controller
 * with one attached namespace.
 *
 * Input: records, each starting with a byte op:
 *   op & 3 != 3: a message: le16 command, u8 flags, le16 body length L,
 *                then L body bytes; the header's id counts up and its size
 *                is right. op bit 2 attaches a 1 MiB memfd (guest memory
 *                for DMA_MAP; any other command must close it).
 *   op & 3 == 3: raw bytes: le16 length L, then L bytes sent as they are
 *                (torn headers, wrong sizes).
 * After each record the server handles what arrived and the client drains
 * the replies. The client never answers the server's DMA_READ/DMA_WRITE
 * requests (both ends share this thread), so those time out after 1 ms. At
 * the end the client hangs up: the server must notice and be ready for the
 * next client, whatever came before.
 *
 * Built by tests/fuzz/meson.build (CC=clang, -Dfuzz=true).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <nvemu/nvemu.h>
#include <nvemu/vfio-user.h>

#include "transport/vfio-user/vfu-proto.h"

#define MEMSZ (1u << 20)
#define MAX_BODY 4096

static struct nvemu_vfu_server *srv;
static struct nvemu_subsys *subsys;
static char path[108];
static int memfd = -1;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz-vfio-user: %s\n", what);
	abort();
}

static void cleanup(void)
{
	nvemu_vfu_server_destroy(srv);
	nvemu_subsys_destroy(subsys);
	if (memfd >= 0)
		close(memfd);
}

static void init(void)
{
	struct nvemu_error err = { 0 };
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_vfu_params vp;
	uint16_t port = 0, cntlid = 0;
	uint32_t nsid = 0;

	nvemu_subsys_params_init(&sp);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	if (nvemu_subsys_create(&sp, &subsys, &err) ||
	    nvemu_subsys_add_port(subsys, &pp, &port, &err) ||
	    nvemu_subsys_add_ctrl(subsys, port, &cntlid, &err) ||
	    nvemu_subsys_add_ns(subsys, 1024, &nsid, &err) ||
	    nvemu_ctrl_attach_ns(nvemu_subsys_ctrl(subsys, cntlid), nsid, &err))
		fail(err.msg);
	nvemu_vfu_params_init(&vp);
	vp.dma_timeout_ms = 1;
	snprintf(path, sizeof(path), "/tmp/nvemu-fuzz-vfu.%d.sock", (int)getpid());
	if (nvemu_vfu_server_create(path, nvemu_subsys_ctrl(subsys, cntlid), &vp, &srv, &err))
		fail(err.msg);
	memfd = memfd_create("fuzz-guest-mem", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, MEMSZ))
		fail("memfd");
	atexit(cleanup);
}

/* Let the server handle what arrived, then read and drop its replies. */
static void pump(int fd)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} cb;
	static uint8_t buf[1 << 16];

	for (int i = 0; i < 8; i++)
		if (nvemu_vfu_server_process(srv) <= 0)
			break;
	nvemu_vfu_server_poll(srv); /* doorbell memory, once a REGION_INFO offered it */
	for (;;) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
				     .msg_controllen = sizeof(cb.b) };
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			break;
		/* Descriptors the server hands out are ours to close. */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

				for (int k = 0; k < nfd; k++) {
					int x;

					memcpy(&x, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
					close(x);
				}
			}
		}
	}
}

/* Send all of buf (with memfd attached if fds), pumping the server when the socket is full. */
static int send_buf(int fd, const void *b, size_t len, int with_fd)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	const uint8_t *p = b;

	while (len) {
		struct iovec iov = { (void *)p, len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (with_fd) {
			struct cmsghdr *c;

			mh.msg_control = cb.b;
			mh.msg_controllen = sizeof(cb.b);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &memfd, sizeof(int));
		}
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN)
				return -1; /* the server hung up: fine, it may refuse anything */
			pump(fd);
			if (!nvemu_vfu_server_connected(srv))
				return -1;
			continue;
		}
		with_fd = 0;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static unsigned rd(const uint8_t **d, size_t *n, unsigned bytes)
{
	unsigned v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		if (*n) {
			v |= (unsigned)**d << (8 * i);
			(*d)++;
			(*n)--;
		}
	}
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t msg[sizeof(struct vfu_hdr) + MAX_BODY];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	uint16_t id = 0;
	int fd;

	if (!srv)
		init();
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(a.sun_path, path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		fail("cannot connect to the server");
	pump(fd);
	if (!nvemu_vfu_server_connected(srv))
		fail("the server refused a client after the previous one hung up");
	while (size) {
		unsigned op = rd(&data, &size, 1), len;
		int r;

		if ((op & 3) == 3) {
			len = rd(&data, &size, 2) % (MAX_BODY + 1);
			if (len > size)
				len = (unsigned)size;
			r = send_buf(fd, data, len, 0);
		} else {
			struct vfu_hdr h = { .id = id++ };

			h.command = (uint16_t)rd(&data, &size, 2);
			h.flags = rd(&data, &size, 1);
			len = rd(&data, &size, 2) % (MAX_BODY + 1);
			if (len > size)
				len = (unsigned)size;
			h.size = (uint32_t)(sizeof(h) + len);
			memcpy(msg, &h, sizeof(h));
			memcpy(msg + sizeof(h), data, len);
			r = send_buf(fd, msg, sizeof(h) + len, op & 4);
		}
		data += len;
		size -= len;
		if (r)
			break;
		pump(fd);
		if (!nvemu_vfu_server_connected(srv))
			break; /* a protocol error: the server hung up on us */
	}
	close(fd);
	for (int i = 0; i < 16 && nvemu_vfu_server_connected(srv); i++)
		nvemu_vfu_server_process(srv);
	if (nvemu_vfu_server_connected(srv))
		fail("the server did not notice the client hanging up");
	return 0;
}

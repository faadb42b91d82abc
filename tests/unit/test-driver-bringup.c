/* SPDX-License-Identifier: MIT */
/*
 * Controller bring-up against broken NVMe/TCP targets. No real target
 * misbehaves on demand, so a scripted one plays the target side on
 * 127.0.0.1: it answers ICReq, Connect and Property Get/Set the way each
 * case needs (a controller that never sets CSTS.RDY, one with CSTS.CFS, a
 * bad ICResp, silence, a refused Connect). Each must fail within its bound
 * with an error that says what went wrong, and leave nothing behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-util.h"
#include "driver/driver-internal.h"

enum mode { NEVER_RDY, FATAL, BAD_ICRESP, SILENT, CONNECT_REFUSED };

struct fake {
	enum mode mode;
	int lfd;
	uint16_t port;
	pthread_t th;
};

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void respond(int fd, uint16_t cid, uint64_t val, uint16_t status)
{
	uint8_t r[24] = {0x05, 0, 24, 0, 24};

	memcpy(r + 8, &val, 8);
	memcpy(r + 20, &cid, 2);
	status = (uint16_t)(status << 1);
	memcpy(r + 22, &status, 2);
	send(fd, r, sizeof(r), MSG_NOSIGNAL);
}

/* The value the scripted controller gives for a Property Get at off. */
static uint64_t property(const struct fake *f, uint32_t off)
{
	switch (off) {
	case 0x00:
		return 31 | (1ull << 24) | (1ull << 37); /* MQES 31, TO 500 ms, NVM command set */
	case 0x08:
		return 0x10400;
	case 0x1c:
		return f->mode == FATAL ? 2 : 0; /* never RDY; CFS for FATAL */
	default:
		return 0;
	}
}

static void serve(struct fake *f, int fd)
{
	uint8_t ic[128], buf[8192 + 128];

	if (read_full(fd, ic, sizeof(ic)) || f->mode == SILENT) {
		while (recv(fd, buf, sizeof(buf), 0) > 0) /* until the host gives up */
			;
		return;
	}
	memset(ic, 0, sizeof(ic));
	ic[0] = 0x01;
	ic[2] = 128;
	ic[4] = 128;
	ic[8] = f->mode == BAD_ICRESP ? 1 : 0; /* PFV */
	ic[14] = 1;			       /* MAXH2CDATA 64 KiB */
	send(fd, ic, sizeof(ic), MSG_NOSIGNAL);
	for (;;) {
		uint32_t plen, off;
		uint16_t cid;

		if (read_full(fd, buf, 8))
			return;
		memcpy(&plen, buf + 4, 4);
		if (plen < 72 || plen > sizeof(buf) || read_full(fd, buf + 8, plen - 8))
			return;
		memcpy(&cid, buf + 10, 2);
		memcpy(&off, buf + 8 + 44, 4);
		if (buf[8] != 0x7f) {
			respond(fd, cid, 0, NVME_SC_INVALID_OPCODE);
			continue;
		}
		if (buf[12] == 0x01) /* Connect */
			respond(fd, cid, 1,
				f->mode == CONNECT_REFUSED ? NVME_SC_CONNECT_INVALID_HOST : 0);
		else if (buf[12] == 0x04) /* Property Get */
			respond(fd, cid, property(f, off), 0);
		else
			respond(fd, cid, 0, 0);
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);

	if (fd >= 0) {
		serve(f, fd);
		close(fd);
	}
	return NULL;
}

static struct fake *fake_start(enum mode m)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);

	assert_non_null(f);
	f->mode = m;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return f;
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	free(f);
}

static void quiet(void *arg, int level, const char *msg)
{
}

/* Connect to a fake target in mode m: must fail with rc, err mentioning what, within ms. */
static void expect_fail(enum mode m, int rc, const char *what, unsigned ms)
{
	struct fake *f = fake_start(m);
	struct nvemu_drv_trid trid = {.trtype = NVEMU_DRV_TRTYPE_TCP};
	struct nvemu_drv_opts o;
	struct nvemu_drv_ctrl *c = NULL;
	struct nvemu_error err = {0};
	uint64_t t0 = drv_now_ns();

	strcpy(trid.traddr, "127.0.0.1");
	snprintf(trid.trsvcid, sizeof(trid.trsvcid), "%u", f->port);
	strcpy(trid.subnqn, "nqn.2024-01.io.nvemu:fake");
	nvemu_drv_opts_init(&o);
	o.connect_timeout_ms = 300;
	o.admin_timeout_ms = 300;
	o.log = quiet;
	assert_int_equal(nvemu_drv_ctrl_connect(&trid, &o, &c, &err), rc);
	assert_null(c);
	if (!strstr(err.msg, what))
		fail_msg("error '%s' does not mention '%s'", err.msg, what);
	assert_true(drv_now_ns() - t0 < (uint64_t)ms * 1000000ull);
	fake_stop(f); /* the host closed its socket: the fake's thread ends */
}

static void test_never_ready(void **state)
{
	expect_fail(NEVER_RDY, -ETIMEDOUT, "CSTS.RDY within CAP.TO (500 ms)", 3000);
}

static void test_fatal_status(void **state)
{
	expect_fail(FATAL, -EIO, "CSTS.CFS", 2000);
}

static void test_bad_icresp(void **state)
{
	expect_fail(BAD_ICRESP, -EPROTO, "PFV 1", 2000);
}

static void test_silent_target(void **state)
{
	expect_fail(SILENT, -ETIMEDOUT, "no ICResp", 2000);
}

static void test_connect_refused(void **state)
{
	expect_fail(CONNECT_REFUSED, -EIO, "host not allowed", 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_never_ready),	cmocka_unit_test(test_fatal_status),
		cmocka_unit_test(test_bad_icresp),	cmocka_unit_test(test_silent_target),
		cmocka_unit_test(test_connect_refused),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

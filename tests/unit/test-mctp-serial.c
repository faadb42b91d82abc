/* SPDX-License-Identifier: MIT */
/*
 * DSP0253 serial binding: FCS, framing and escaping vectors, the streaming
 * decoder's resync, and two processes talking over a pty and a unix socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <nvemu/mctp.h>

/* Get Endpoint ID from EID 8 to EID 9, tag owner, tag 0. */
static const uint8_t get_eid_pkt[] = {0x01, 0x09, 0x08, 0xc8, 0x00, 0x81, 0x02};
/* The frame Linux's mctp-serial sends for it (FCS computed independently). */
static const uint8_t get_eid_frame[] = {0x7e, 0x01, 0x07, 0x01, 0x09, 0x08, 0xc8,
					0x00, 0x81, 0x02, 0x17, 0x6a, 0x7e};
/* A packet holding both special bytes, and its escaped frame. */
static const uint8_t esc_pkt[] = {0x01, 0x09, 0x08, 0xc8, 0x7e, 0x7d, 0x02};
static const uint8_t esc_frame[] = {0x7e, 0x01, 0x07, 0x01, 0x09, 0x08, 0xc8, 0x7d,
				    0x5e, 0x7d, 0x5d, 0x02, 0x52, 0x01, 0x7e};

struct got {
	int n;
	size_t len[8];
	uint8_t pkt[8][255];
};

static void got_pkt(void *ctx, const uint8_t *pkt, size_t len)
{
	struct got *g = ctx;

	assert_true(g->n < 8);
	memcpy(g->pkt[g->n], pkt, len);
	g->len[g->n++] = len;
}

static void fcs_vectors(void **state)
{
	(void)state;
	/* CRC-16/MCRF4XX check value: crc_ccitt seeded 0xFFFF, no final inversion. */
	assert_int_equal(nvemu_mctp_fcs16(0xffff, (const uint8_t *)"123456789", 9), 0x6f91);
	assert_int_equal(nvemu_mctp_fcs16(0xffff, NULL, 0), 0xffff);
	/* Incremental equals one shot. */
	assert_int_equal(nvemu_mctp_fcs16(nvemu_mctp_fcs16(0xffff, (const uint8_t *)"1234", 4),
					  (const uint8_t *)"56789", 5),
			 0x6f91);
}

static void encode_vectors(void **state)
{
	uint8_t out[NVEMU_MCTP_SERIAL_MAX_FRAME];
	uint8_t big[256];
	int n;

	(void)state;
	n = nvemu_mctp_serial_encode(get_eid_pkt, sizeof(get_eid_pkt), out, sizeof(out));
	assert_int_equal(n, sizeof(get_eid_frame));
	assert_memory_equal(out, get_eid_frame, n);
	n = nvemu_mctp_serial_encode(esc_pkt, sizeof(esc_pkt), out, sizeof(out));
	assert_int_equal(n, sizeof(esc_frame));
	assert_memory_equal(out, esc_frame, n);

	memset(big, 0x7e, sizeof(big));
	assert_int_equal(nvemu_mctp_serial_encode(big, 0, out, sizeof(out)), -EINVAL);
	/* A count of 0x7e would read as a flag: Linux never sends more than 68. */
	assert_int_equal(nvemu_mctp_serial_encode(big, 126, out, sizeof(out)), -EINVAL);
	/* Worst case: every byte escaped. */
	assert_int_equal(nvemu_mctp_serial_encode(big, 125, out, sizeof(out)), 3 + 250 + 3);
	assert_int_equal(nvemu_mctp_serial_encode(big, 125, out, 100), -ENOSPC);
}

static void decode_vectors(void **state)
{
	struct nvemu_mctp_serial_dec d;
	struct got g = {0};

	(void)state;
	nvemu_mctp_serial_dec_init(&d);
	assert_int_equal(
		nvemu_mctp_serial_dec_feed(&d, get_eid_frame, sizeof(get_eid_frame), got_pkt, &g),
		1);
	assert_int_equal(g.len[0], sizeof(get_eid_pkt));
	assert_memory_equal(g.pkt[0], get_eid_pkt, sizeof(get_eid_pkt));
	/* Byte by byte, as a slow line delivers it. */
	for (size_t i = 0; i < sizeof(esc_frame); i++)
		nvemu_mctp_serial_dec_feed(&d, &esc_frame[i], 1, got_pkt, &g);
	assert_int_equal(g.n, 2);
	assert_memory_equal(g.pkt[1], esc_pkt, sizeof(esc_pkt));
	assert_int_equal(d.frames, 2);
	assert_int_equal(d.bad_fcs + d.bad_frame, 0);
}

static void decode_resync(void **state)
{
	struct nvemu_mctp_serial_dec d;
	struct got g = {0};
	uint8_t buf[256];
	size_t n = 0;

	(void)state;
	nvemu_mctp_serial_dec_init(&d);
	/* Line noise, then a frame with a bad FCS, then a good one. */
	buf[n++] = 0x55;
	buf[n++] = 0x01;
	memcpy(buf + n, get_eid_frame, sizeof(get_eid_frame));
	buf[n + 10] ^= 0x01;
	n += sizeof(get_eid_frame);
	memcpy(buf + n, esc_frame, sizeof(esc_frame));
	n += sizeof(esc_frame);
	assert_int_equal(nvemu_mctp_serial_dec_feed(&d, buf, n, got_pkt, &g), 1);
	assert_int_equal(d.bad_fcs, 1);
	assert_memory_equal(g.pkt[0], esc_pkt, sizeof(esc_pkt));

	/* A frame cut short by the next frame's flag. */
	n = 0;
	memcpy(buf, get_eid_frame, 6);
	n = 6;
	memcpy(buf + n, get_eid_frame, sizeof(get_eid_frame));
	n += sizeof(get_eid_frame);
	assert_int_equal(nvemu_mctp_serial_dec_feed(&d, buf, n, got_pkt, &g), 1);
	assert_int_equal(d.bad_frame, 1);
	assert_memory_equal(g.pkt[1], get_eid_pkt, sizeof(get_eid_pkt));

	/* Two frames sharing one flag between them. */
	memcpy(buf, get_eid_frame, sizeof(get_eid_frame));
	memcpy(buf + sizeof(get_eid_frame), esc_frame + 1, sizeof(esc_frame) - 1);
	assert_int_equal(nvemu_mctp_serial_dec_feed(&d, buf,
						    sizeof(get_eid_frame) + sizeof(esc_frame) - 1,
						    got_pkt, &g),
			 2);

	/* Wrong revision, a count too small for a header, a missing closing flag. */
	memcpy(buf, get_eid_frame, sizeof(get_eid_frame));
	buf[1] = 0x02;
	assert_int_equal(nvemu_mctp_serial_dec_feed(&d, buf, sizeof(get_eid_frame), got_pkt, &g),
			 0);
	const uint8_t tiny[] = {0x7e, 0x01, 0x03, 0x01, 0x02, 0x03, 0x00, 0x00, 0x7e};

	assert_int_equal(nvemu_mctp_serial_dec_feed(&d, tiny, sizeof(tiny), got_pkt, &g), 0);
	memcpy(buf, get_eid_frame, sizeof(get_eid_frame));
	buf[sizeof(get_eid_frame) - 1] = 0x00;
	assert_int_equal(nvemu_mctp_serial_dec_feed(&d, buf, sizeof(get_eid_frame), got_pkt, &g),
			 0);
	assert_int_equal(g.n, 4);
	/* And it still decodes afterwards. */
	assert_int_equal(
		nvemu_mctp_serial_dec_feed(&d, get_eid_frame, sizeof(get_eid_frame), got_pkt, &g),
		1);
}

/* ---- two processes ---- */

static void echo(void *ctx, const uint8_t *msg, size_t len, struct nvemu_mctp_reply *reply)
{
	uint8_t rsp[NVEMU_MCTP_MAX_MSG];

	(void)ctx;
	memcpy(rsp, msg, len);
	for (size_t i = 1; i < len; i++)
		rsp[i] ^= 0xff;
	nvemu_mctp_reply_send(reply, rsp, len);
}

static int write_frame(int fd, const uint8_t *pkt, size_t len)
{
	uint8_t f[NVEMU_MCTP_SERIAL_MAX_FRAME];
	int n = nvemu_mctp_serial_encode(pkt, len, f, sizeof(f));

	return n > 0 && write(fd, f, n) == n ? 0 : -1;
}

/* Read frames until want packets arrived (or 5 s passed). */
static int read_pkts(int fd, struct got *g, int want)
{
	struct nvemu_mctp_serial_dec d;
	uint8_t buf[512];

	nvemu_mctp_serial_dec_init(&d);
	while (g->n < want) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			return -1;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		nvemu_mctp_serial_dec_feed(&d, buf, n, got_pkt, g);
	}
	return 0;
}

/* The requester (a BMC): returns the exit status, 0 when every check passed. */
static int requester(int fd)
{
	const uint8_t rsp[] = {0x01, 0x08, 0x09, 0xc0, 0x00, 0x01, 0x02, 0x00, 0x09, 0x02, 0x00};
	struct got g = {0};
	uint8_t pkt[4 + 64];
	size_t total = 0;

	if (write_frame(fd, get_eid_pkt, sizeof(get_eid_pkt)) || read_pkts(fd, &g, 1))
		return 10;
	if (g.len[0] != sizeof(rsp) || memcmp(g.pkt[0], rsp, sizeof(rsp)))
		return 11;
	/* A 150-byte type 0x7e message in three packets, full of bytes to escape. */
	for (int i = 0; i < 3; i++) {
		size_t n = i < 2 ? 64 : 22;

		pkt[0] = 0x01;
		pkt[1] = 0x09;
		pkt[2] = 0x08;
		pkt[3] = 0x08 | 3 | i << 4 | (i == 0 ? 0x80 : 0) | (i == 2 ? 0x40 : 0);
		memset(pkt + 4, i & 1 ? 0x7d : 0x7e, n);
		if (i == 0)
			pkt[4] = 0x7e;
		if (write_frame(fd, pkt, 4 + n))
			return 12;
	}
	g.n = 0;
	if (read_pkts(fd, &g, 3))
		return 13;
	for (int i = 0; i < 3; i++) {
		uint8_t fl = g.pkt[i][3];

		if ((fl & 0x0f) != 3 || ((fl >> 4) & 3) != i || !!(fl & 0x80) != (i == 0) ||
		    !!(fl & 0x40) != (i == 2))
			return 14;
		for (size_t j = 4 + (i == 0); j < g.len[i]; j++)
			if (g.pkt[i][j] != (uint8_t)((i & 1 ? 0x7d : 0x7e) ^ 0xff))
				return 15;
		total += g.len[i] - 4;
	}
	return total == 150 ? 0 : 16;
}

static void run_pair(int responder_fd, int requester_fd)
{
	struct nvemu_mctp_ep_params p;
	struct nvemu_mctp_ep *ep;
	struct nvemu_mctp_serial *s;
	pid_t pid;
	int status = -1;

	nvemu_mctp_ep_params_init(&p);
	p.eid = 9;
	p.mtu = 128; /* the serial binding still sends 64-byte payloads */
	assert_int_equal(nvemu_mctp_ep_create(&p, &ep, NULL), 0);
	assert_int_equal(nvemu_mctp_ep_set_handler(ep, 0x7e, echo, NULL), 0);
	assert_int_equal(nvemu_mctp_serial_create(responder_fd, ep, &s, NULL), 0);

	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		close(responder_fd);
		_exit(requester(requester_fd));
	}
	close(requester_fd);
	fcntl(responder_fd, F_SETFL, fcntl(responder_fd, F_GETFL) | O_NONBLOCK);
	for (;;) {
		struct pollfd pf = {.fd = responder_fd, .events = POLLIN};

		if (poll(&pf, 1, 10000) <= 0)
			break;
		if (nvemu_mctp_serial_handle(s) < 0)
			break;
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(nvemu_mctp_serial_decoder(s)->frames, 4);
	assert_int_equal(nvemu_mctp_ep_stats(ep)->rx_messages, 2);
	nvemu_mctp_serial_destroy(s);
	nvemu_mctp_ep_destroy(ep);
	close(responder_fd);
}

static void over_pty(void **state)
{
	struct termios t;
	int master, slave;

	(void)state;
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0)
		fail_msg("no pty: posix_openpt: %s", strerror(errno)); /* fail, never skip */
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	/* What ldattach or a QEMU chardev does: a raw 8-bit line. */
	assert_int_equal(tcgetattr(slave, &t), 0);
	cfmakeraw(&t);
	assert_int_equal(tcsetattr(slave, TCSANOW, &t), 0);
	run_pair(master, slave);
}

static void over_unix_socket(void **state)
{
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	run_pair(sv[0], sv[1]);
}

/*
 * A peer that sends requests but reads nothing: the first reply that cannot
 * be written waits (1 s); the next ones are dropped at once instead of
 * waiting a second each.
 */
static void stalled_peer(void **state)
{
	struct nvemu_mctp_ep_params p;
	struct nvemu_mctp_ep *ep;
	struct nvemu_mctp_serial *s;
	uint8_t junk[4096], pkt[4 + 64];
	struct timespec t0, t1;
	int sv[2], small = 1024;
	double secs;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	/* the line is full: the peer never reads */
	memset(junk, 0, sizeof(junk));
	while (write(sv[0], junk, sizeof(junk)) > 0)
		;
	assert_int_equal(errno, EAGAIN);

	nvemu_mctp_ep_params_init(&p);
	p.eid = 9;
	assert_int_equal(nvemu_mctp_ep_create(&p, &ep, NULL), 0);
	assert_int_equal(nvemu_mctp_ep_set_handler(ep, 0x7e, echo, NULL), 0);
	assert_int_equal(nvemu_mctp_serial_create(sv[0], ep, &s, NULL), 0);
	/* five requests in a row, each with a one-packet reply */
	for (int i = 0; i < 5; i++) {
		memcpy(pkt, get_eid_pkt, sizeof(get_eid_pkt));
		pkt[3] = 0xc8 | i; /* SOM EOM TO, tag i */
		assert_int_equal(write_frame(sv[1], pkt, sizeof(get_eid_pkt)), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(nvemu_mctp_serial_handle(s), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("# replies to a stalled peer took %.2f s\n", secs);
	assert_int_equal(nvemu_mctp_ep_stats(ep)->rx_messages, 5);
	assert_true(secs < 3.0);
	nvemu_mctp_serial_destroy(s);
	nvemu_mctp_ep_destroy(ep);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fcs_vectors),	  cmocka_unit_test(encode_vectors),
		cmocka_unit_test(decode_vectors), cmocka_unit_test(decode_resync),
		cmocka_unit_test(over_pty),	  cmocka_unit_test(over_unix_socket),
		cmocka_unit_test(stalled_peer),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("mctp-serial", tests, NULL, NULL);
}

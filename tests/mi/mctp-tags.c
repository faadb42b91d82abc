/* SPDX-License-Identifier: MIT */
/*
 * Tag exhaustion as AF_MCTP has it, through libnvemu-mctp-preload.so: a
 * socket that holds all eight tags to a peer makes the next tag-owner send
 * (its own or another socket's) fail with EAGAIN at once, instead of
 * vanishing; a response that arrived meanwhile still waits on the socket for
 * poll() and recvfrom(); once the holder closes, sends work again.
 *
 *   mctp-tags NET EID      (prints TAP)
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/mctp.h>

#ifndef AF_MCTP
#define AF_MCTP 45
#endif

static int n_tests, failed;

static void ok(int cond, const char *what)
{
	n_tests++;
	if (!cond)
		failed = 1;
	printf("%sok %d - %s\n", cond ? "" : "not ", n_tests, what);
}

int main(int argc, char **argv)
{
	struct sockaddr_mctp a = {.smctp_family = AF_MCTP, .smctp_tag = MCTP_TAG_OWNER};
	const uint8_t get_eid[] = {0x81, 0x02}; /* control: request, instance 1, Get Endpoint ID */
	const uint8_t junk[] = {0x00};
	struct pollfd p;
	uint8_t rsp[64];
	int fa, fb, sent = 0;
	ssize_t n;
	char d[128];

	if (argc < 3)
		return 1;
	alarm(30); /* every wait below is bounded; this bounds the whole run too */
	a.smctp_network = strtoul(argv[1], NULL, 0);
	a.smctp_addr.s_addr = strtoul(argv[2], NULL, 0);
	fa = socket(AF_MCTP, SOCK_DGRAM, 0);
	fb = socket(AF_MCTP, SOCK_DGRAM, 0);
	ok(fa >= 0 && fb >= 0, "two AF_MCTP sockets");

	a.smctp_type = 0;
	ok(sendto(fa, get_eid, 2, 0, (struct sockaddr *)&a, sizeof(a)) == 2,
	   "A: Get Endpoint ID sent");
	/* Type 7Eh: the endpoint has no handler and never answers, so the tags stay taken. */
	a.smctp_type = 0x7e;
	for (int i = 0; i < 8; i++)
		sent += sendto(fa, junk, 1, 0, (struct sockaddr *)&a, sizeof(a)) == 1;
	snprintf(d, sizeof(d), "A: 8 unanswered requests take the 8 tags (%d sent)", sent);
	ok(sent == 8, d);
	errno = 0;
	ok(sendto(fa, junk, 1, 0, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EAGAIN,
	   "A: the 9th tag-owner send fails with EAGAIN");
	a.smctp_type = 0;
	errno = 0;
	ok(sendto(fb, get_eid, 2, 0, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EAGAIN,
	   "B: a tag-owner send to the same peer fails with EAGAIN, not silently");
	/* A response (TO clear) needs no tag: it still goes. */
	a.smctp_tag = 0;
	a.smctp_type = 0x7e;
	ok(sendto(fb, junk, 1, 0, (struct sockaddr *)&a, sizeof(a)) == 1,
	   "B: a message without TO is still sent");
	a.smctp_tag = MCTP_TAG_OWNER;
	p.fd = fa;
	p.events = POLLIN;
	ok(poll(&p, 1, 1000) == 1 && (p.revents & POLLIN),
	   "A: poll() sees the Get Endpoint ID response that came in meanwhile");
	n = recvfrom(fa, rsp, sizeof(rsp), MSG_DONTWAIT, NULL, NULL);
	ok(n >= 3 && rsp[0] == 0x01 && rsp[1] == 0x02 && rsp[2] == 0x00,
	   "A: recvfrom() returns it (instance 1, Get Endpoint ID, Success)");
	close(fa);
	a.smctp_type = 0;
	ok(sendto(fb, get_eid, 2, 0, (struct sockaddr *)&a, sizeof(a)) == 2,
	   "A closed: B's send goes");
	p.fd = fb;
	ok(poll(&p, 1, 2000) == 1, "B: the answer arrives");
	n = recvfrom(fb, rsp, sizeof(rsp), MSG_DONTWAIT, NULL, NULL);
	ok(n >= 3 && rsp[1] == 0x02 && rsp[2] == 0, "B: Get Endpoint ID Success");
	close(fb);
	printf("1..%d\n", n_tests);
	return failed;
}

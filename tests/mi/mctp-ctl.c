/* SPDX-License-Identifier: MIT */
/*
 * A minimal AF_MCTP requester written as a program for a kernel with MCTP
 * would be: socket(AF_MCTP, SOCK_DGRAM), SIOCMCTPALLOCTAG, sendto, poll,
 * recvfrom, SIOCMCTPDROPTAG. Run under libnvemu-mctp-preload.so it exercises
 * the preload and the router.
 *
 *   mctp-ctl NET EID TYPE HEXBYTES [TIMEOUT_MS]
 *
 * Sends one message of TYPE with the body HEXBYTES ("8102" = Get Endpoint ID)
 * and prints the response body in hex. Exit 0 on a response, 2 on timeout,
 * 1 on errors. With TYPE 0 the response must match the request's instance ID
 * and command.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/mctp.h>

#ifndef AF_MCTP
#define AF_MCTP 45
#endif

int main(int argc, char **argv)
{
	struct sockaddr_mctp addr = { .smctp_family = AF_MCTP }, from;
	struct mctp_ioc_tag_ctl ctl = { 0 };
	socklen_t flen = sizeof(from);
	uint8_t req[256], rsp[4096];
	size_t len = 0;
	struct pollfd p;
	ssize_t n;
	int fd, timeout = argc > 5 ? atoi(argv[5]) : 2000;

	if (argc < 5) {
		fprintf(stderr, "usage: mctp-ctl NET EID TYPE HEXBYTES [TIMEOUT_MS]\n");
		return 1;
	}
	for (const char *h = argv[4]; h[0] && h[1] && len < sizeof(req); h += 2)
		sscanf(h, "%2hhx", &req[len++]);

	fd = socket(AF_MCTP, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket(AF_MCTP)");
		return 1;
	}
	addr.smctp_network = strtoul(argv[1], NULL, 0);
	addr.smctp_addr.s_addr = strtoul(argv[2], NULL, 0);
	addr.smctp_type = strtoul(argv[3], NULL, 0);
	ctl.peer_addr = addr.smctp_addr.s_addr;
	if (ioctl(fd, SIOCMCTPALLOCTAG, &ctl)) {
		perror("SIOCMCTPALLOCTAG");
		return 1;
	}
	if ((ctl.tag & ~MCTP_TAG_MASK) != (MCTP_TAG_OWNER | MCTP_TAG_PREALLOC)) {
		fprintf(stderr, "allocated tag %#x lacks TO|PREALLOC\n", ctl.tag);
		return 1;
	}
	addr.smctp_tag = ctl.tag;
	if (sendto(fd, req, len, 0, (struct sockaddr *)&addr, sizeof(addr)) != (ssize_t)len) {
		perror("sendto");
		return 1;
	}
	p.fd = fd;
	p.events = POLLIN;
	if (poll(&p, 1, timeout) == 0) {
		fprintf(stderr, "timeout\n");
		return 2;
	}
	n = recvfrom(fd, rsp, sizeof(rsp), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	if (n < 0) {
		perror("recvfrom");
		return 1;
	}
	if (flen != sizeof(from) || from.smctp_family != AF_MCTP ||
	    from.smctp_network != addr.smctp_network || from.smctp_type != addr.smctp_type ||
	    (from.smctp_tag & MCTP_TAG_OWNER) || from.smctp_tag != (ctl.tag & MCTP_TAG_MASK)) {
		fprintf(stderr, "bad source address: family %u net %u type %#x tag %#x\n",
			from.smctp_family, from.smctp_network, from.smctp_type, from.smctp_tag);
		return 1;
	}
	if (addr.smctp_type == 0 && len >= 2 && n >= 2 &&
	    (rsp[0] != (req[0] & 0x1f) || rsp[1] != req[1])) {
		fprintf(stderr, "response to another request\n");
		return 1;
	}
	if (ioctl(fd, SIOCMCTPDROPTAG, &ctl)) {
		perror("SIOCMCTPDROPTAG");
		return 1;
	}
	/* Dropping twice is an error, as with the kernel. */
	if (!ioctl(fd, SIOCMCTPDROPTAG, &ctl) || errno != EINVAL) {
		fprintf(stderr, "second SIOCMCTPDROPTAG did not fail with EINVAL\n");
		return 1;
	}
	printf("eid=%u ", from.smctp_addr.s_addr);
	for (ssize_t i = 0; i < n; i++)
		printf("%02x", rsp[i]);
	printf("\n");
	close(fd);
	return 0;
}

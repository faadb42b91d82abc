/* SPDX-License-Identifier: MIT */
/*
 * A BMC-side receiver of NVMe-MI Asynchronous Event Messages, written as it
 * would be for a kernel with AF_MCTP: one socket sends the requests (tag
 * owner), another is bound to message type 4 and receives what the
 * endpoint sends on its own. Run under libnvemu-mctp-preload.so against
 * nvemud.
 *
 *   aem-receiver NET EID "CMD1" "CMD2"
 *
 * Enables the Composite Temperature AE (AERD 3 = 300 ms), runs CMD1 (which
 * must set the temperature to 330 K over RPC), receives the AEM and checks
 * every byte and the MIC, sees it retransmitted unchanged, acknowledges it
 * and sees no more; runs CMD2 (331 K), does not acknowledge and counts the
 * retransmissions (4, then silence). Prints TAP.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/mctp.h>

#ifndef AF_MCTP
#define AF_MCTP 45
#endif

#define AEI_CTEMP 0x06 /* NVMe-MI 2.1: Composite Temperature */
#define MAX_RETRIES 4

static int n_tests, failed;

static void ok(int cond, const char *what)
{
	n_tests++;
	if (!cond)
		failed = 1;
	printf("%sok %d - %s\n", cond ? "" : "not ", n_tests, what);
	fflush(stdout);
}

/* CRC-32C (Castagnoli), bitwise: independent of the project's table version. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
	}
	return ~c;
}

static struct sockaddr_mctp peer;
static int req_fd, aem_fd;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* body: after the type byte, MIC excluded; returns the response body length or -1. */
static int mi_request(const uint8_t *body, size_t len, uint8_t *rsp, size_t max)
{
	uint8_t msg[512];
	struct pollfd p = {.fd = req_fd, .events = POLLIN};
	struct sockaddr_mctp from;
	socklen_t fl = sizeof(from);
	uint32_t mic;
	ssize_t n;

	msg[0] = 0x84;
	memcpy(msg + 1, body, len);
	mic = crc32c(msg, len + 1);
	memcpy(msg + 1 + len, &mic, 4); /* little-endian host */
	peer.smctp_tag = MCTP_TAG_OWNER;
	if (sendto(req_fd, msg + 1, len + 4, 0, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		return -1;
	if (poll(&p, 1, 2000) != 1)
		return -1;
	n = recvfrom(req_fd, rsp, max, 0, (struct sockaddr *)&from, &fl);
	if (n < 8)
		return -1;
	/* Check the response MIC over type byte + body. */
	msg[0] = 0x84;
	memcpy(msg + 1, rsp, n - 4);
	memcpy(&mic, rsp + n - 4, 4);
	if (mic != crc32c(msg, n - 3))
		return -1;
	return (int)n - 4;
}

/* Configuration Set, Asynchronous Event: dw0 bits above the ID, data appended. */
static int config_set_ae(uint32_t dw0, const uint8_t *data, size_t dlen, uint8_t *rsp, size_t max)
{
	uint8_t b[64] = {0x08, 0, 0, 0x03 /* opcode: Configuration Set */};

	dw0 |= 0x04;
	memcpy(b + 7, &dw0, 4);
	if (dlen)
		memcpy(b + 15, data, dlen);
	return mi_request(b, 15 + dlen, rsp, max);
}

/* Wait up to ms for an AEM on the bound socket; its length (type byte first) or 0. */
static int recv_aem(uint8_t *m, size_t max, int ms, struct sockaddr_mctp *from)
{
	struct pollfd p = {.fd = aem_fd, .events = POLLIN};
	socklen_t fl = sizeof(*from);
	ssize_t n;

	if (poll(&p, 1, ms) != 1)
		return 0;
	n = recvfrom(aem_fd, m + 1, max - 1, 0, (struct sockaddr *)from, &fl);
	if (n <= 0)
		return 0;
	m[0] = from->smctp_type;
	return (int)n + 1;
}

static void expect_aem(const uint8_t *m, int len, uint8_t gen, uint8_t ctemp, const char *what)
{
	/* 84h, NMP: NMIMT 5 ROR 0, two reserved; list header; one occurrence; pad; MIC */
	const uint8_t want[24] = {0x84, 5 << 3, 0, 0, 1, 0, 17, 0, 0, 7, (uint8_t)(gen << 3),
				  9, 1, 0, AEI_CTEMP, 0, 0, 0, 0, 0, ctemp, 0, 0, 0};
	uint32_t mic;
	char d[160];

	snprintf(d, sizeof(d), "%s: 28 bytes", what);
	ok(len == 28, d);
	if (len != 28)
		return;
	snprintf(d, sizeof(d), "%s: header, occurrence list (generation %u, CTEMP %u) byte by byte",
		 what, gen, ctemp);
	ok(!memcmp(m, want, sizeof(want)), d);
	if (memcmp(m, want, sizeof(want))) {
		printf("# got ");
		for (int i = 0; i < len; i++)
			printf("%02x", m[i]);
		printf("\n");
	}
	memcpy(&mic, m + 24, 4);
	snprintf(d, sizeof(d), "%s: MIC", what);
	ok(mic == crc32c(m, 24), d);
}

int main(int argc, char **argv)
{
	/* AE Enable List: one item, CTEMP enabled. */
	const uint8_t enable[] = {1, 0, 8, 0, 5, 3, AEI_CTEMP, 0x80};
	struct sockaddr_mctp bind_addr = {.smctp_family = AF_MCTP};
	struct sockaddr_mctp from;
	uint8_t rsp[512], m[512], first[512];
	int n, first_len, retries;
	int64_t t0;

	if (argc < 5) {
		fprintf(stderr, "usage: aem-receiver NET EID CMD1 CMD2\n");
		return 1;
	}
	/* The preload is loaded already; the RPC commands run without it. */
	unsetenv("LD_PRELOAD");
	peer.smctp_family = AF_MCTP;
	peer.smctp_network = strtoul(argv[1], NULL, 0);
	peer.smctp_addr.s_addr = strtoul(argv[2], NULL, 0);
	peer.smctp_type = 0x84; /* NVMe-MI with the integrity check */
	req_fd = socket(AF_MCTP, SOCK_DGRAM, 0);
	aem_fd = socket(AF_MCTP, SOCK_DGRAM, 0);
	ok(req_fd >= 0 && aem_fd >= 0, "two AF_MCTP sockets");
	bind_addr.smctp_network = MCTP_NET_ANY;
	bind_addr.smctp_addr.s_addr = MCTP_ADDR_ANY;
	bind_addr.smctp_type = 4;
	ok(!bind(aem_fd, (struct sockaddr *)&bind_addr, sizeof(bind_addr)),
	   "bind() to message type 4");

	/* Configuration Get, AE: the supported list names CTEMP. */
	{
		uint8_t b[15] = {0x08, 0, 0, 0x04 /* Configuration Get */, 0, 0, 0, 0x04};

		n = mi_request(b, sizeof(b), rsp, sizeof(rsp));
		ok(n >= 8 && rsp[3] == 0 && rsp[7] == 12 && rsp[11] == 5,
		   "Configuration Get AE: Success, 12 supported AEs, header length 5");
		ok(n >= 8 + 5 + 3 * 7 && rsp[7 + 5 + 3 * 6 + 1] == AEI_CTEMP,
		   "  the 7th is Composite Temperature (06h)");
	}
	/* Enable CTEMP, AERD 3 (300 ms), AEMD 0. */
	n = config_set_ae(3u << 8, enable, sizeof(enable), rsp, sizeof(rsp));
	ok(n == 15 && rsp[3] == 0, "Configuration Set AE (enable CTEMP): Success");
	ok(n == 15 && !memcmp(rsp + 7, ((const uint8_t[]){0, 0, 7, 0, 0, 7, 0}), 7),
	   "  response: empty AE Occurrence List, generation 0");
	ok(recv_aem(m, sizeof(m), 300, &from) == 0, "no AEM before a change");

	ok(system(argv[3]) == 0, "CMD1: temperature 330 K over RPC");
	t0 = now_ms();
	n = recv_aem(m, sizeof(m), 2000, &from);
	ok(n > 0, "an AEM arrives on the bound socket");
	printf("# AEM latency %lld ms (RPC return to message)\n", (long long)(now_ms() - t0));
	ok(from.smctp_network == peer.smctp_network &&
	   from.smctp_addr.s_addr == peer.smctp_addr.s_addr && (from.smctp_type & 0x7f) == 4 &&
	   (from.smctp_type & 0x80) && (from.smctp_tag & MCTP_TAG_OWNER),
	   "  from the endpoint's (net, EID), type 4 with IC, the endpoint owns the tag");
	expect_aem(m, n, 1, 57, "AEM");
	memcpy(first, m, n);
	first_len = n;
	t0 = now_ms();
	n = recv_aem(m, sizeof(m), 1000, &from);
	ok(n > 0 && n == first_len && !memcmp(m, first, n), "not acknowledged: retransmitted unchanged");
	printf("# retransmitted after %lld ms (AERD 300 ms)\n", (long long)(now_ms() - t0));

	/* Acknowledge: Configuration Set AE with an empty list. */
	n = config_set_ae(3u << 8, NULL, 0, rsp, sizeof(rsp));
	ok(n == 15 && rsp[3] == 0 && rsp[7] == 0 && rsp[9] == 7,
	   "AEM Ack (Configuration Set AE, no enable list): Success, no occurrences since");
	/* A retransmission may have crossed the ack; then silence. */
	while (recv_aem(m, sizeof(m), 100, &from) > 0)
		;
	ok(recv_aem(m, sizeof(m), 1500, &from) == 0, "acknowledged: no more retransmissions");

	ok(system(argv[4]) == 0, "CMD2: temperature 331 K over RPC");
	n = recv_aem(m, sizeof(m), 2000, &from);
	expect_aem(m, n, 2, 58, "second AEM");
	retries = 0;
	while ((n = recv_aem(m, sizeof(m), 1000, &from)) > 0) {
		if (n == 28 && !memcmp(m, first, 4) && m[10] == 2 << 3 && m[20] == 58)
			retries++;
		else
			retries = 1000;
	}
	{
		char d[96];

		snprintf(d, sizeof(d), "never acknowledged: %d retransmissions, then none", retries);
		ok(retries == MAX_RETRIES, d);
	}
	/* Disable: the endpoint stops. */
	{
		const uint8_t disable[] = {1, 0, 8, 0, 5, 3, AEI_CTEMP, 0};

		n = config_set_ae(0, disable, sizeof(disable), rsp, sizeof(rsp));
		ok(n >= 8 && rsp[3] == 0, "Configuration Set AE (disable CTEMP): Success");
	}
	close(req_fd);
	close(aem_fd);
	printf("1..%d\n", n_tests);
	return failed;
}

// SPDX-License-Identifier: MIT
/*
 * NVMe-MI PCIe Command Set against nvemud through the AF_MCTP preload: the
 * configuration space read out of band is the one nvemud serves the
 * vfio-user guest (IDs agree with Read Controller Information, NVMe class
 * code, capability list), and a Configuration Write lands in it. Usage:
 * mi-pcie-cfg NET EID. TAP output.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/mctp.h>

static int n_tests, failed;

static void ok(int cond, const char *what)
{
	n_tests++;
	if (!cond)
		failed = 1;
	printf("%sok %d - %s\n", cond ? "" : "not ", n_tests, what);
}

/* CRC-32C, bitwise: independent of the project's implementation. */
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

static int fd;
static struct sockaddr_mctp peer;

/* body: the message after the type byte, without MIC; returns the response body length. */
static int request(const uint8_t *body, size_t len, uint8_t *rsp, size_t max)
{
	static uint8_t msg[8192];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint32_t mic;
	ssize_t n;

	msg[0] = 0x84;
	memcpy(msg + 1, body, len);
	mic = crc32c(msg, len + 1);
	memcpy(msg + 1 + len, &mic, 4);
	peer.smctp_tag = MCTP_TAG_OWNER;
	if (sendto(fd, msg + 1, len + 4, 0, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		return -1;
	if (poll(&p, 1, 5000) != 1)
		return -1;
	n = recv(fd, rsp, max, 0);
	if (n < 8)
		return -1;
	msg[0] = 0x84;
	memcpy(msg + 1, rsp, (size_t)n - 4);
	memcpy(&mic, rsp + n - 4, 4);
	if (mic != crc32c(msg, (size_t)n - 3))
		return -1;
	return (int)n - 4;
}

static int pcie(uint8_t opc, uint32_t len, uint32_t off, const uint8_t *data, uint8_t *rsp,
		size_t max)
{
	uint8_t b[64] = {4 << 3 /* NMIMT 4 */, 0, 0, opc};

	memcpy(b + 7, &len, 4);
	memcpy(b + 11, &off, 4);
	if (data)
		memcpy(b + 19, data, len);
	return request(b, 19 + (data ? len : 0), rsp, max);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int main(int argc, char **argv)
{
	static uint8_t rsp[8192], cfg[4096];
	uint8_t ci[64], line = 0x5a;
	int n;

	if (argc != 3) {
		fprintf(stderr, "usage: %s NET EID\n", argv[0]);
		return 2;
	}
	fd = socket(AF_MCTP, SOCK_DGRAM, 0);
	if (fd < 0) {
		printf("1..1\nnot ok 1 - socket(AF_MCTP): run with the preload\n");
		return 1;
	}
	peer.smctp_family = AF_MCTP;
	peer.smctp_network = (unsigned)atoi(argv[1]);
	peer.smctp_addr.s_addr = (uint8_t)atoi(argv[2]);
	peer.smctp_type = 0x84; /* NVMe-MI with the integrity check */

	/* Read NVMe-MI Data Structure, Controller Information of controller 1. */
	{
		uint8_t b[16] = {1 << 3 /* NMIMT 1 */, 0, 0, 0x00, 0, 0, 0, 1, 0, 0, 0x03};

		n = request(b, 15, rsp, sizeof(rsp));
		ok(n >= 7 + 32 && rsp[3] == 0, "Read Controller Information of controller 1");
		memcpy(ci, rsp + 7, 32);
	}
	n = pcie(0x00, 4096, 0, NULL, rsp, sizeof(rsp));
	ok(n == 7 + 4096 && rsp[3] == 0, "PCIe Configuration Read of all 4 KiB: success");
	memcpy(cfg, rsp + 7, 4096);
	ok(get16(cfg + 0) == get16(ci + 8) && get16(cfg + 2) == get16(ci + 10),
	   "VID/DID in configuration space = Controller Information's");
	ok(get16(cfg + 0x2c) == get16(ci + 12) && get16(cfg + 0x2e) == get16(ci + 14),
	   "SVID/SSID in configuration space = Controller Information's");
	ok(cfg[0x0b] == 0x01 && cfg[0x0a] == 0x08 && cfg[0x09] == 0x02,
	   "class code 010802h: an NVMe controller");
	ok(cfg[0x34] >= 0x40 && (cfg[6] & 0x10), "capability list present");
	n = pcie(0x00, 6, 0x2a, NULL, rsp, sizeof(rsp));
	ok(n >= 7 + 6 && !memcmp(rsp + 7, cfg + 0x2a, 6), "an unaligned 6-byte window reads the same");

	n = pcie(0x01, 1, 0x3c, &line, rsp, sizeof(rsp));
	ok(n >= 7 && rsp[3] == 0, "Configuration Write of Interrupt Line (3Ch): success");
	n = pcie(0x00, 4, 0x3c, NULL, rsp, sizeof(rsp));
	ok(n >= 7 + 4 && rsp[7] == 0x5a, "Interrupt Line reads back 5Ah from the function");
	n = pcie(0x00, 8, 4092, NULL, rsp, sizeof(rsp));
	ok(n >= 7 && rsp[3] == 0x04 && get16(rsp + 5) == 12,
	   "a window past 4 KiB: Invalid Parameter at the offset (byte 12)");
	n = pcie(0x02, 4, 0, NULL, rsp, sizeof(rsp));
	ok(n >= 7 && rsp[3] == 0x03, "Memory Read: Invalid Command Opcode");
	printf("1..%d\n", n_tests);
	return failed;
}

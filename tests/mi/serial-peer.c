// SPDX-License-Identifier: MIT
/*
 * A BMC-side MCTP-over-serial requester written from DSP0253 and DSP0236
 * alone, sharing no code with nvemu (its own FCS-16, byte stuffing, frame
 * parser and CRC-32C), so a test with it checks nvemu against the spec and
 * not against itself.
 *
 *   serial-peer pty:/dev/pts/N | unix:/PATH | tcp:HOST:PORT  EID  HEXMSG...
 *
 * Each HEXMSG is one message (type byte first; NVMe-MI messages get their
 * MIC appended here when the type byte has IC set). Every response message
 * is printed as hex on a line; a request without a response within 2 s
 * prints "timeout", one the other end closed the line for prints "closed".
 * "sleep" instead of a message holds the line for 1 s.
 * Exit 0 unless the line could not be used.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define FLAG   0x7e
#define ESCAPE 0x7d
#define OUR_EID 0x10

/* RFC 1662 FCS-16 computed bit by bit (DSP0253 uses it without the final inversion). */
static uint16_t fcs16(uint16_t fcs, const uint8_t *p, size_t n)
{
	while (n--) {
		fcs ^= *p++;
		for (int b = 0; b < 8; b++)
			fcs = (fcs & 1) ? (uint16_t)((fcs >> 1) ^ 0x8408) : (uint16_t)(fcs >> 1);
	}
	return fcs;
}

/* CRC-32C (Castagnoli), reflected, bit by bit: the NVMe-MI message integrity check. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;

	while (n--) {
		c ^= *p++;
		for (int b = 0; b < 8; b++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78 : c >> 1;
	}
	return ~c;
}

static int open_line(const char *spec)
{
	int fd = -1;

	if (!strncmp(spec, "pty:", 4)) {
		struct termios t;

		fd = open(spec + 4, O_RDWR | O_NOCTTY);
		if (fd >= 0 && !tcgetattr(fd, &t)) {
			cfmakeraw(&t);
			tcsetattr(fd, TCSANOW, &t);
		}
	} else if (!strncmp(spec, "unix:", 5)) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", spec + 5);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			close(fd);
			fd = -1;
		}
	} else if (!strncmp(spec, "tcp:", 4)) {
		char host[128];
		const char *c = strrchr(spec + 4, ':');
		struct addrinfo *ai;

		if (!c)
			return -1;
		snprintf(host, sizeof(host), "%.*s", (int)(c - spec - 4), spec + 4);
		if (getaddrinfo(host, c + 1, NULL, &ai))
			return -1;
		fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
	}
	return fd;
}

static void put_escaped(uint8_t *out, size_t *o, uint8_t b)
{
	if (b == FLAG || b == ESCAPE) {
		out[(*o)++] = ESCAPE;
		out[(*o)++] = b ^ 0x20;
	} else {
		out[(*o)++] = b;
	}
}

/* One packet in a frame: flag, revision 1, byte count, stuffed packet, FCS, flag. */
static int send_packet(int fd, const uint8_t *pkt, size_t len)
{
	uint8_t frame[600], hdr[2] = { 0x01, (uint8_t)len };
	uint16_t fcs = fcs16(fcs16(0xffff, hdr, 2), pkt, len);
	size_t o = 0;

	frame[o++] = FLAG;
	frame[o++] = 0x01;
	frame[o++] = (uint8_t)len;
	for (size_t i = 0; i < len; i++)
		put_escaped(frame, &o, pkt[i]);
	put_escaped(frame, &o, fcs >> 8);
	put_escaped(frame, &o, fcs & 0xff);
	frame[o++] = FLAG;
	return write(fd, frame, o) == (ssize_t)o ? 0 : -1;
}

/* Splits msg into packets of at most 64 payload bytes (the baseline unit). */
static int send_message(int fd, uint8_t eid, uint8_t tag, const uint8_t *msg, size_t len)
{
	uint8_t seq = 0;

	for (size_t off = 0; off < len || (!len && !off); seq = (seq + 1) & 3) {
		size_t n = len - off > 64 ? 64 : len - off;
		uint8_t pkt[68] = { 0x01, eid, OUR_EID, 0 };

		pkt[3] = 0x08 | tag | (uint8_t)(seq << 4);
		if (off == 0)
			pkt[3] |= 0x80;
		if (off + n == len)
			pkt[3] |= 0x40;
		memcpy(pkt + 4, msg + off, n);
		if (send_packet(fd, pkt, 4 + n))
			return -1;
		off += n;
		if (!len)
			break;
	}
	return 0;
}

struct rx {
	int state; /* 0: hunt flag, 1: revision, 2: count, 3: body, 4: fcs, 5: end flag */
	int esc;
	uint8_t count, buf[260], fcs[2];
	size_t pos, fpos;
	uint8_t msg[5000];
	size_t mlen;
	int in_msg;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A whole packet arrived: add it to the message; 1 when the message is complete. */
static int got_packet(struct rx *r, const uint8_t *pkt, size_t len)
{
	if (len < 4 || pkt[0] != 0x01 || pkt[1] != OUR_EID)
		return 0;
	if (pkt[3] & 0x80) {
		r->mlen = 0;
		r->in_msg = 1;
	}
	if (!r->in_msg || r->mlen + len - 4 > sizeof(r->msg))
		return 0;
	memcpy(r->msg + r->mlen, pkt + 4, len - 4);
	r->mlen += len - 4;
	if (pkt[3] & 0x40) {
		r->in_msg = 0;
		return 1;
	}
	return 0;
}

/* Feeds one received byte through the frame parser; 1 when a message completed. */
static int rx_byte(struct rx *r, uint8_t b)
{
	if (b == FLAG) {
		int done = 0;

		if (r->state == 5) {
			uint8_t hdr[2] = { 0x01, r->count };
			uint16_t fcs = fcs16(fcs16(0xffff, hdr, 2), r->buf, r->count);

			if (fcs == (uint16_t)(r->fcs[0] << 8 | r->fcs[1]))
				done = got_packet(r, r->buf, r->count);
		}
		r->state = 1;
		r->esc = 0;
		return done;
	}
	if (b == ESCAPE) {
		r->esc = 1;
		return 0;
	}
	if (r->esc) {
		b ^= 0x20;
		r->esc = 0;
	}
	switch (r->state) {
	case 1:
		r->state = b == 0x01 ? 2 : 0;
		break;
	case 2:
		r->count = b;
		r->pos = 0;
		r->fpos = 0;
		r->state = b ? 3 : 0;
		break;
	case 3:
		r->buf[r->pos++] = b;
		if (r->pos == r->count)
			r->state = 4;
		break;
	case 4:
		r->fcs[r->fpos++] = b;
		if (r->fpos == 2)
			r->state = 5;
		break;
	default:
		break;
	}
	return 0;
}

static int read_message(int fd, struct rx *r, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = now_ms();
		uint8_t buf[512];
		ssize_t n;

		if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
			return -1;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return -2; /* the other end closed the line */
		for (ssize_t i = 0; i < n; i++)
			if (rx_byte(r, buf[i]))
				return 0;
	}
}

static size_t parse_hex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (s[0] && s[1] && n < max) {
		unsigned v;

		if (sscanf(s, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

int main(int argc, char **argv)
{
	static struct rx r;
	uint8_t eid, msg[4200];
	int fd;

	if (argc < 4) {
		fprintf(stderr, "usage: %s LINE EID HEXMSG...\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	fd = open_line(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot open %s: %s\n", argv[0], argv[1], strerror(errno));
		return 1;
	}
	eid = (uint8_t)strtoul(argv[2], NULL, 0);
	for (int i = 3; i < argc; i++) {
		size_t len;

		if (!strcmp(argv[i], "sleep")) {
			sleep(1);
			continue;
		}
		len = parse_hex(argv[i], msg, sizeof(msg) - 4);
		if (len && (msg[0] & 0x80)) {
			uint32_t mic = crc32c(msg, len);

			for (int b = 0; b < 4; b++)
				msg[len++] = (uint8_t)(mic >> (8 * b));
		}
		if (send_message(fd, eid, (uint8_t)(i & 7), msg, len)) {
			printf("closed\n");
			continue;
		}
		switch (read_message(fd, &r, 2000)) {
		case 0:
			break;
		case -2:
			printf("closed\n");
			continue;
		default:
			printf("timeout\n");
			continue;
		}
		for (size_t j = 0; j < r.mlen; j++)
			printf("%02x", r.msg[j]);
		printf("\n");
	}
	fflush(stdout);
	close(fd);
	return 0;
}

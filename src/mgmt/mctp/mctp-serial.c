// SPDX-License-Identifier: MIT
/*
 * MCTP serial binding (DSP0253) as Linux's mctp-serial line discipline
 * speaks it: 7E | 01 | count | escaped packet | FCS hi | FCS lo | 7E, with the
 * FCS (crc_ccitt seeded 0xFFFF, not inverted) over revision, count and the
 * unescaped packet. Like Linux, the count and the FCS go out unescaped.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mctp-internal.h"

enum {
	DEC_IDLE, /* waiting for a flag */
	DEC_REV,  /* after the opening flag */
	DEC_COUNT,
	DEC_DATA,
	DEC_FCS_HI,
	DEC_FCS_LO,
	DEC_END, /* waiting for the closing flag */
};

uint16_t nvemu_mctp_fcs16(uint16_t fcs, const uint8_t *buf, size_t len)
{
	while (len--) {
		fcs ^= *buf++;
		for (int i = 0; i < 8; i++)
			fcs = (fcs & 1) ? (fcs >> 1) ^ 0x8408 : fcs >> 1;
	}
	return fcs;
}

static bool needs_escape(uint8_t c)
{
	return c == NVEMU_MCTP_SERIAL_FLAG || c == NVEMU_MCTP_SERIAL_ESC;
}

int nvemu_mctp_serial_encode(const uint8_t *pkt, size_t len, uint8_t *out, size_t out_len)
{
	uint8_t hdr[2] = {NVEMU_MCTP_SERIAL_REV, (uint8_t)len};
	uint16_t fcs;
	size_t o = 0;

	if (!len || len > NVEMU_MCTP_SERIAL_MAX_ENC)
		return -EINVAL;
	if (out_len < 3 + 2 * len + 3)
		return -ENOSPC;
	fcs = nvemu_mctp_fcs16(0xffff, hdr, 2);
	fcs = nvemu_mctp_fcs16(fcs, pkt, len);
	out[o++] = NVEMU_MCTP_SERIAL_FLAG;
	out[o++] = hdr[0];
	out[o++] = hdr[1];
	for (size_t i = 0; i < len; i++) {
		if (needs_escape(pkt[i])) {
			out[o++] = NVEMU_MCTP_SERIAL_ESC;
			out[o++] = pkt[i] ^ 0x20;
		} else {
			out[o++] = pkt[i];
		}
	}
	out[o++] = fcs >> 8;
	out[o++] = fcs & 0xff;
	out[o++] = NVEMU_MCTP_SERIAL_FLAG;
	return (int)o;
}

void nvemu_mctp_serial_dec_init(struct nvemu_mctp_serial_dec *d)
{
	memset(d, 0, sizeof(*d));
	d->state = DEC_IDLE;
}

/* A byte of a frame's body: unescaped and kept until the count is reached. */
static void dec_data(struct nvemu_mctp_serial_dec *d, uint8_t c)
{
	/* A flag inside a frame: the frame was cut, this may start the next. */
	if (c == NVEMU_MCTP_SERIAL_FLAG) {
		d->bad_frame++;
		d->state = DEC_REV;
		return;
	}
	if (!d->esc && c == NVEMU_MCTP_SERIAL_ESC) {
		d->esc = 1;
		return;
	}
	if (d->esc) {
		c ^= 0x20;
		d->esc = 0;
	}
	d->buf[d->pos++] = c;
	d->fcs = nvemu_mctp_fcs16(d->fcs, &c, 1);
	if (d->pos == d->len)
		d->state = DEC_FCS_HI;
}

/* The byte after the FCS: true when it closes a good frame. */
static bool dec_end(struct nvemu_mctp_serial_dec *d, uint8_t c)
{
	if (c != NVEMU_MCTP_SERIAL_FLAG) {
		d->bad_frame++;
		d->state = DEC_IDLE;
		return false;
	}
	/* The closing flag may also open the next frame. */
	d->state = DEC_REV;
	if (d->fcs != d->fcs_rx) {
		d->bad_fcs++;
		return false;
	}
	d->frames++;
	return true;
}

/* One byte through the decoder: true when it completed a good frame in d->buf. */
static bool dec_byte(struct nvemu_mctp_serial_dec *d, uint8_t c)
{
	switch (d->state) {
	case DEC_IDLE:
		if (c == NVEMU_MCTP_SERIAL_FLAG)
			d->state = DEC_REV;
		break;
	case DEC_REV:
		/* Back-to-back flags: the previous one closed a frame. */
		if (c == NVEMU_MCTP_SERIAL_FLAG)
			break;
		if (c != NVEMU_MCTP_SERIAL_REV) {
			d->bad_frame++;
			d->state = DEC_IDLE;
			break;
		}
		d->fcs = nvemu_mctp_fcs16(0xffff, &c, 1);
		d->state = DEC_COUNT;
		break;
	case DEC_COUNT:
		if (c == NVEMU_MCTP_SERIAL_FLAG || c < NVEMU_MCTP_HDR_LEN) {
			d->bad_frame++;
			d->state = c == NVEMU_MCTP_SERIAL_FLAG ? DEC_REV : DEC_IDLE;
			break;
		}
		d->fcs = nvemu_mctp_fcs16(d->fcs, &c, 1);
		d->len = c;
		d->pos = 0;
		d->esc = 0;
		d->state = DEC_DATA;
		break;
	case DEC_DATA:
		dec_data(d, c);
		break;
	case DEC_FCS_HI:
		d->fcs_rx = (uint16_t)c << 8;
		d->state = DEC_FCS_LO;
		break;
	case DEC_FCS_LO:
		d->fcs_rx |= c;
		d->state = DEC_END;
		break;
	case DEC_END:
		return dec_end(d, c);
	default:
		d->state = DEC_IDLE;
		break;
	}
	return false;
}

int nvemu_mctp_serial_dec_feed(struct nvemu_mctp_serial_dec *d, const uint8_t *buf, size_t len,
			       void (*pkt_cb)(void *ctx, const uint8_t *pkt, size_t len), void *ctx)
{
	int delivered = 0;

	for (size_t i = 0; i < len; i++) {
		if (!dec_byte(d, buf[i]))
			continue;
		delivered++;
		if (pkt_cb)
			pkt_cb(ctx, d->buf, d->len);
	}
	return delivered;
}

/* ---- a serial line carrying one endpoint ---- */

struct nvemu_mctp_serial {
	int fd;
	bool stalled; /* a write timed out: the peer reads nothing */
	struct nvemu_mctp_ep *ep;
	struct nvemu_mctp_link link;
	struct nvemu_mctp_serial_dec dec;
};

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			/* A peer that reads nothing for a second has gone away. */
			if (poll(&pfd, 1, 1000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

int nvemu_mctp_serial_tx_packet(void *ctx, const uint8_t *pkt, size_t len)
{
	struct nvemu_mctp_serial *s = ctx;
	uint8_t frame[NVEMU_MCTP_SERIAL_MAX_FRAME];
	int n = nvemu_mctp_serial_encode(pkt, len, frame, sizeof(frame));
	int ret;

	if (n < 0)
		return n;
	/*
	 * Once the peer stopped reading, drop packets until it drains the line
	 * rather than wait a second for each: a stuck peer costs one wait.
	 */
	if (s->stalled) {
		struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};

		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
			return -ETIMEDOUT;
		s->stalled = false;
	}
	ret = write_all(s->fd, frame, n);
	if (ret == -ETIMEDOUT)
		s->stalled = true;
	return ret;
}

int nvemu_mctp_serial_create(int fd, struct nvemu_mctp_ep *ep, struct nvemu_mctp_serial **out,
			     struct nvemu_error *err)
{
	struct nvemu_mctp_serial *s;

	if (fd < 0 || !ep)
		return nvemu_error_set(err, -EINVAL, "serial: needs an fd and an endpoint");
	s = calloc(1, sizeof(*s));
	if (!s)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	s->fd = fd;
	s->ep = ep;
	s->link.tx_packet = nvemu_mctp_serial_tx_packet;
	s->link.ctx = s;
	s->link.max_payload = NVEMU_MCTP_SERIAL_MAX_PKT - NVEMU_MCTP_HDR_LEN;
	nvemu_mctp_serial_dec_init(&s->dec);
	*out = s;
	return 0;
}

void nvemu_mctp_serial_destroy(struct nvemu_mctp_serial *s)
{
	if (!s)
		return;
	nvemu_mctp_ep_link_gone(s->ep, &s->link);
	free(s);
}

int nvemu_mctp_serial_fd(const struct nvemu_mctp_serial *s)
{
	return s->fd;
}

const struct nvemu_mctp_serial_dec *nvemu_mctp_serial_decoder(const struct nvemu_mctp_serial *s)
{
	return &s->dec;
}

static void serial_rx_pkt(void *ctx, const uint8_t *pkt, size_t len)
{
	struct nvemu_mctp_serial *s = ctx;

	nvemu_mctp_ep_rx(s->ep, &s->link, pkt, len);
}

int nvemu_mctp_serial_handle(struct nvemu_mctp_serial *s)
{
	uint8_t buf[4096];

	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(s->fd, buf, sizeof(buf));

		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* A pty whose other side closed reads EIO. */
			if (errno == EAGAIN)
				return 0;
			return errno == EIO ? -EPIPE : -errno;
		}
		nvemu_mctp_serial_dec_feed(&s->dec, buf, n, serial_rx_pkt, s);
	}
	return 0;
}

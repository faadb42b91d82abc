// SPDX-License-Identifier: MIT
/*
 * NVMe/TCP host: the receive state machine. Every PDU the target sends is
 * checked before it touches anything: type and lengths in the common
 * header, digests, the command it names (in flight, right direction), data
 * offsets against the command's buffer. Any violation kills the queue (the
 * core then resets the controller); nothing the target sends is held
 * beyond one header and the commands' own buffers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "driver/tcp-pdu.h"
#include "util/crc32c.h"

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static int fail(struct tcp_hq *hq, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct tcp_hq *hq, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hq->err, sizeof(hq->err), fmt, ap);
	va_end(ap);
	hq->dead = true;
	return rc;
}

/* Lengths the common header announces for each type; the rest is checked with the header. */
static int check_ch(struct tcp_hq *hq)
{
	uint8_t type = hq->hdr[0], flags = hq->hdr[1], hlen = hq->hdr[2];
	uint32_t plen = le32(hq->hdr + 4);
	uint32_t hd = (hq->hdgst && type != TCP_PDU_ICRESP && type != TCP_PDU_C2H_TERM) ? 4 : 0;

	if (!hq->ic_done != (type == TCP_PDU_ICRESP))
		return fail(hq, -EPROTO, "PDU type 0x%02x out of sequence", type);
	if (type != TCP_PDU_ICRESP && type != TCP_PDU_C2H_TERM && !!(flags & TCP_F_HDGST) != !!hd)
		return fail(hq, -EPROTO, "PDU type 0x%02x: header digest flag disagrees", type);
	switch (type) {
	case TCP_PDU_ICRESP:
		if (hlen != 128 || plen != 128)
			return fail(hq, -EPROTO, "ICResp: hlen %u plen %u", hlen, plen);
		break;
	case TCP_PDU_C2H_TERM:
		if (hlen != 24 || plen < 24 || plen > TCP_TERM_MAX_PLEN)
			return fail(hq, -EPROTO, "C2HTermReq: hlen %u plen %u", hlen, plen);
		break;
	case TCP_PDU_RSP:
	case TCP_PDU_R2T:
		if (hlen != 24 || plen != hlen + hd || hq->hdr[3])
			return fail(hq, -EPROTO, "PDU type 0x%02x: hlen %u pdo %u plen %u", type,
				    hlen, hq->hdr[3], plen);
		break;
	case TCP_PDU_C2H_DATA:
		if (hlen != 24 || plen < hlen + hd)
			return fail(hq, -EPROTO, "C2HData: hlen %u plen %u", hlen, plen);
		break;
	default:
		return fail(hq, -EPROTO, "unexpected PDU type 0x%02x", type);
	}
	hq->hdr_need = hlen + hd;
	return 0;
}

static int check_hdgst(struct tcp_hq *hq)
{
	uint32_t hlen = hq->hdr[2];

	if (hq->hdr_need == hlen)
		return 0;
	if (nvemu_crc32c(hq->hdr, hlen) != le32(hq->hdr + hlen))
		return fail(hq, -EBADMSG, "header digest error (PDU type 0x%02x)", hq->hdr[0]);
	return 0;
}

static int on_icresp(struct tcp_hq *hq)
{
	const uint8_t *p = hq->hdr;
	uint16_t pfv = le16(p + 8);
	uint8_t cpda = p[10], dgst = p[11];
	uint32_t maxh2c = le32(p + 12);

	if (pfv != 0)
		return fail(hq, -EPROTO, "ICResp: PFV %u", pfv);
	if (cpda > 31)
		return fail(hq, -EPROTO, "ICResp: CPDA %u", cpda);
	if (((dgst & 1) && !hq->hdgst) || ((dgst & 2) && !hq->ddgst))
		return fail(hq, -EPROTO, "ICResp: digests 0x%x not asked for", dgst);
	if (maxh2c < 4096 || maxh2c % 4)
		return fail(hq, -EPROTO, "ICResp: MAXH2CDATA %u", maxh2c);
	hq->hdgst = dgst & 1;
	hq->ddgst = dgst & 2;
	hq->cpda = cpda;
	hq->maxh2cdata = maxh2c;
	hq->ic_done = true;
	return 0;
}

static int on_rsp(struct tcp_hq *hq)
{
	const uint8_t *p = hq->hdr + 8;
	struct nvemu_cqe cqe = {
		.dw0 = le32(p),
		.dw1 = le32(p + 4),
		.sqhd = le16(p + 8),
		.sqid = le16(p + 10),
		.cid = le16(p + 12),
		.status = (uint16_t)(le16(p + 14) >> 1),
	};
	struct drv_req *req = drv_req_lookup(hq->qp, cqe.cid);

	/* Data of an I/O read that never fully arrived: the buffer would hold stale bytes. */
	if (req && !cqe.status && hq->qp->qid && req->dir == NVEMU_XFER_FROM_CTRL &&
	    req->xfered != req->len)
		return fail(hq, -EPROTO, "CID %u completed with %u of %u bytes", cqe.cid,
			    req->xfered, req->len);
	if (drv_complete(hq->qp, &cqe))
		return fail(hq, -EPROTO, "CapsuleResp for CID %u (SQID %u) not in flight", cqe.cid,
			    cqe.sqid);
	hq->completions++;
	return 0;
}

static int on_r2t(struct tcp_hq *hq)
{
	const uint8_t *p = hq->hdr;
	uint16_t cid = le16(p + 8), ttag = le16(p + 10);
	uint32_t off = le32(p + 12), len = le32(p + 16);
	struct drv_req *req = drv_req_lookup(hq->qp, cid);

	if (!req || req->dir != NVEMU_XFER_TO_CTRL)
		return fail(hq, -EPROTO, "R2T for CID %u, which has no data to send", cid);
	if (off != req->xfered || !len || len > req->len - off)
		return fail(hq, -EPROTO, "R2T for CID %u: offset %u length %u (sent %u of %u)", cid,
			    off, len, req->xfered, req->len);
	if (ht_send_h2c(hq, req, ttag, off, len))
		return fail(hq, -ENOMEM, "out of memory queueing H2CData");
	req->xfered += len;
	return 0;
}

static int on_c2h(struct tcp_hq *hq)
{
	const uint8_t *p = hq->hdr;
	uint8_t flags = p[1], pdo = p[3];
	uint32_t plen = le32(p + 4), off = le32(p + 12), datal = le32(p + 16);
	uint16_t cid = le16(p + 8);
	uint32_t dd = (flags & TCP_F_DDGST) ? 4 : 0;
	struct drv_req *req = drv_req_lookup(hq->qp, cid);

	if (!req || req->dir != NVEMU_XFER_FROM_CTRL)
		return fail(hq, -EPROTO, "C2HData for CID %u, which reads nothing", cid);
	if (!!dd != hq->ddgst)
		return fail(hq, -EPROTO, "C2HData: data digest flag disagrees");
	if (!datal || off != req->xfered || datal > req->len - off)
		return fail(hq, -EPROTO, "C2HData for CID %u: offset %u length %u (got %u of %u)",
			    cid, off, datal, req->xfered, req->len);
	if (pdo < hq->hdr_need || (uint64_t)pdo + datal + dd != plen)
		return fail(hq, -EPROTO, "C2HData: pdo %u datal %u plen %u", pdo, datal, plen);
	if ((flags & TCP_F_SUCCESS) && (!(flags & TCP_F_LAST) || off + datal != req->len))
		return fail(hq, -EPROTO, "C2HData: SUCCESS before the last byte");
	hq->rx_req = req;
	hq->rx_datal = datal;
	hq->rx_flags = flags;
	hq->pad_left = pdo - hq->hdr_need;
	hq->data_dst = (uint8_t *)req->buf + off;
	hq->data_left = datal;
	hq->crc = NVEMU_CRC32C_INIT;
	hq->ddgst_got = 0;
	hq->rx = hq->pad_left ? HT_RX_PAD : HT_RX_DATA;
	return 0;
}

static int on_header(struct tcp_hq *hq)
{
	int rc = check_hdgst(hq);

	if (rc)
		return rc;
	hq->rx = HT_RX_CH;
	hq->hdr_got = 0;
	switch (hq->hdr[0]) {
	case TCP_PDU_ICRESP:
		return on_icresp(hq);
	case TCP_PDU_RSP:
		return on_rsp(hq);
	case TCP_PDU_R2T:
		return on_r2t(hq);
	case TCP_PDU_C2H_DATA:
		return on_c2h(hq);
	default: /* C2HTermReq */
		return fail(hq, -ECONNRESET, "target ended the connection (C2HTermReq FES %u)",
			    le16(hq->hdr + 8));
	}
}

/* All data of a C2HData PDU arrived (digest checked): complete on SUCCESS. */
static int on_c2h_done(struct tcp_hq *hq)
{
	struct drv_req *req = hq->rx_req;
	struct nvemu_cqe cqe = {.cid = req->cid, .sqid = hq->qp->qid};

	req->xfered += hq->rx_datal;
	hq->rx_req = NULL;
	hq->rx = HT_RX_CH;
	if (!(hq->rx_flags & TCP_F_SUCCESS))
		return 0;
	if (drv_complete(hq->qp, &cqe))
		return fail(hq, -EPROTO, "C2HData SUCCESS for CID %u not in flight", cqe.cid);
	hq->completions++;
	return 0;
}

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* One step of the machine over buf; returns bytes used or -errno. */
static long rx_step(struct tcp_hq *hq, const uint8_t *buf, size_t len)
{
	size_t n;
	int rc = 0;

	switch (hq->rx) {
	case HT_RX_CH:
	case HT_RX_HDR:
		n = min_sz(len, (hq->rx == HT_RX_CH ? HT_CH_LEN : hq->hdr_need) - hq->hdr_got);
		memcpy(hq->hdr + hq->hdr_got, buf, n);
		hq->hdr_got += (uint32_t)n;
		if (hq->rx == HT_RX_CH && hq->hdr_got == HT_CH_LEN) {
			rc = check_ch(hq);
			hq->rx = HT_RX_HDR;
		} else if (hq->rx == HT_RX_HDR && hq->hdr_got == hq->hdr_need) {
			rc = on_header(hq);
		}
		break;
	case HT_RX_PAD:
		n = min_sz(len, hq->pad_left);
		hq->pad_left -= (uint32_t)n;
		if (!hq->pad_left)
			hq->rx = HT_RX_DATA;
		break;
	case HT_RX_DATA:
		n = min_sz(len, hq->data_left);
		/* The command may have been failed meanwhile: only write into a live slot. */
		if (!hq->rx_req->inflight)
			return fail(hq, -EPROTO, "command ended during its C2HData");
		memcpy(hq->data_dst, buf, n);
		if (hq->ddgst)
			hq->crc = nvemu_crc32c_update(hq->crc, buf, n);
		hq->data_dst += n;
		hq->data_left -= (uint32_t)n;
		if (!hq->data_left)
			rc = hq->ddgst ? (hq->rx = HT_RX_DDGST, 0) : on_c2h_done(hq);
		break;
	case HT_RX_DDGST:
		n = min_sz(len, 4 - hq->ddgst_got);
		memcpy(hq->ddgst_buf + hq->ddgst_got, buf, n);
		hq->ddgst_got += (uint32_t)n;
		if (hq->ddgst_got == 4) {
			if (nvemu_crc32c_final(hq->crc) != le32(hq->ddgst_buf))
				return fail(hq, -EBADMSG, "data digest error (CID %u)",
					    hq->rx_req->cid);
			rc = on_c2h_done(hq);
		}
		break;
	default:
		return fail(hq, -EPROTO, "bad receive state");
	}
	return rc ? rc : (long)n;
}

int ht_rx_feed(struct tcp_hq *hq, const uint8_t *buf, size_t len)
{
	while (len) {
		long n;

		if (hq->dead)
			return -EPROTO;
		n = rx_step(hq, buf, len);
		if (n < 0)
			return (int)n;
		buf += n;
		len -= (size_t)n;
	}
	return hq->dead ? -EPROTO : 0;
}

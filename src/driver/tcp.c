// SPDX-License-Identifier: MIT
/*
 * NVMe/TCP host transport: one non-blocking socket per queue, ICReq/ICResp,
 * Connect (admin and I/O queues, hostnqn/hostid), Property Get/Set,
 * CapsuleCmd with in-capsule data up to the queue's limit (8 KiB on the
 * admin queue, IOCCSZ on I/O queues), H2CData answering R2Ts, header and
 * data digests. Receiving is tcp-rx.c.
 *
 * Connecting a queue blocks for at most the caller's timeout (the socket
 * connect, ICResp and Connect each wait with poll); afterwards nothing
 * blocks: bytes that cannot be sent wait in the queue's transmit buffer
 * (EPOLLOUT through get_events) and receiving reads what is there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "driver/tcp-pdu.h"
#include "util/crc32c.h"

#define FCTYPE_PROP_SET 0x00
#define FCTYPE_CONNECT	0x01
#define FCTYPE_PROP_GET 0x04

struct tcp_hctrl {
	struct sockaddr_storage addr;
	socklen_t alen;
	uint16_t cntlid;
};

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

struct tcp_hq *ht_hq_new(struct nvemu_drv_qpair *qp)
{
	struct tcp_hq *hq = calloc(1, sizeof(*hq));

	if (!hq)
		return NULL;
	hq->rxbuf = malloc(HT_RXBUF);
	if (!hq->rxbuf) {
		free(hq);
		return NULL;
	}
	hq->qp = qp;
	hq->fd = -1;
	hq->maxh2cdata = 4096;
	return hq;
}

void ht_hq_free(struct tcp_hq *hq)
{
	if (!hq)
		return;
	if (hq->fd >= 0)
		close(hq->fd);
	free(hq->rxbuf);
	free(hq->tx);
	free(hq);
}

int ht_tx_append(struct tcp_hq *hq, const void *buf, size_t len)
{
	if (hq->tx_off && hq->tx_off == hq->tx_len)
		hq->tx_off = hq->tx_len = 0;
	if (hq->tx_len + len > hq->tx_cap) {
		size_t cap = hq->tx_cap ? hq->tx_cap : 16384;
		uint8_t *n;

		if (hq->tx_off) { /* reclaim what was sent before growing */
			memmove(hq->tx, hq->tx + hq->tx_off, hq->tx_len - hq->tx_off);
			hq->tx_len -= hq->tx_off;
			hq->tx_off = 0;
		}
		while (cap < hq->tx_len + len)
			cap *= 2;
		if (cap != hq->tx_cap) {
			n = realloc(hq->tx, cap);
			if (!n)
				return -ENOMEM;
			hq->tx = n;
			hq->tx_cap = cap;
		}
	}
	memcpy(hq->tx + hq->tx_len, buf, len);
	hq->tx_len += len;
	return 0;
}

static int tx_zeroes(struct tcp_hq *hq, size_t len)
{
	static const uint8_t z[256];

	return ht_tx_append(hq, z, len);
}

/* Send what the socket takes now; -errno when the connection is gone. */
static int tx_flush(struct tcp_hq *hq)
{
	while (hq->tx_off < hq->tx_len && hq->fd >= 0) {
		ssize_t n = send(hq->fd, hq->tx + hq->tx_off, hq->tx_len - hq->tx_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			snprintf(hq->err, sizeof(hq->err), "send: %s", strerror(errno));
			hq->dead = true;
			return -errno;
		}
		hq->tx_off += (size_t)n;
	}
	if (hq->tx_off == hq->tx_len)
		hq->tx_off = hq->tx_len = 0;
	return 0;
}

uint32_t ht_pdo(const struct tcp_hq *hq, uint32_t hlen)
{
	uint32_t off = hlen + (hq->hdgst ? 4 : 0), align = (hq->cpda + 1u) * 4;

	return (off + align - 1) / align * align;
}

/* Common header, PDU-specific header and header digest; pad up to pdo when there is data. */
static int tx_header(struct tcp_hq *hq, uint8_t *hdr, uint32_t hlen, uint32_t datal)
{
	uint32_t pdo = datal ? ht_pdo(hq, hlen) : 0;
	uint32_t dd = datal && hq->ddgst ? 4 : 0;
	uint8_t dg[4];
	int rc;

	hdr[1] = (uint8_t)((hq->hdgst ? TCP_F_HDGST : 0) | (dd ? TCP_F_DDGST : 0) | hdr[1]);
	hdr[2] = (uint8_t)hlen;
	hdr[3] = (uint8_t)pdo;
	put_le32(hdr + 4, (pdo ? pdo : hlen + (hq->hdgst ? 4 : 0)) + datal + dd);
	rc = ht_tx_append(hq, hdr, hlen);
	if (!rc && hq->hdgst) {
		put_le32(dg, nvemu_crc32c(hdr, hlen));
		rc = ht_tx_append(hq, dg, 4);
	}
	if (!rc && pdo > hlen + (hq->hdgst ? 4u : 0u))
		rc = tx_zeroes(hq, pdo - hlen - (hq->hdgst ? 4u : 0u));
	return rc;
}

static int tx_data(struct tcp_hq *hq, const void *data, uint32_t len)
{
	uint8_t dg[4];
	int rc = ht_tx_append(hq, data, len);

	if (!rc && hq->ddgst) {
		put_le32(dg, nvemu_crc32c(data, len));
		rc = ht_tx_append(hq, dg, 4);
	}
	return rc;
}

int ht_send_h2c(struct tcp_hq *hq, struct drv_req *req, uint16_t ttag, uint32_t off, uint32_t len)
{
	uint32_t end = off + len;

	while (off < end) {
		uint32_t n = end - off < hq->maxh2cdata ? end - off : hq->maxh2cdata;
		uint8_t h[24] = {TCP_PDU_H2C_DATA, off + n == end ? TCP_F_LAST : 0};
		int rc;

		put_le16(h + 8, req->cid);
		put_le16(h + 10, ttag);
		put_le32(h + 12, off);
		put_le32(h + 16, n);
		rc = tx_header(hq, h, sizeof(h), n);
		if (!rc)
			rc = tx_data(hq, (const uint8_t *)req->buf + off, n);
		if (rc)
			return rc;
		off += n;
	}
	return 0;
}

static int tcp_submit(struct nvemu_drv_qpair *qp, struct drv_req *req)
{
	struct tcp_hq *hq = qp->tr;
	uint8_t h[72] = {TCP_PDU_CMD};
	bool icd = req->dir == NVEMU_XFER_TO_CTRL && req->len <= hq->icd;
	struct nvemu_sqe sqe = req->cmd;
	int rc;

	if (!hq || hq->dead || !hq->ic_done)
		return -ENOTCONN;
	if (req->dir == NVEMU_XFER_BIDI)
		return -EINVAL;
	if (hq->tx_len - hq->tx_off > HT_TX_MAX)
		return -EAGAIN; /* the core's callers wait; the command timeout bounds it */
	sqe.flags = (uint8_t)((sqe.flags & 3) | 0x40) /* PSDT: SGL */;
	sqe.dptr1 = 0;
	sqe.dptr2 = (uint64_t)(req->dir == NVEMU_XFER_NONE ? 0 : req->len) |
		    (uint64_t)(icd ? TCP_SGL_INCAPSULE : TCP_SGL_TRANSPORT) << 56;
	memcpy(h + 8, &sqe, sizeof(sqe));
	rc = tx_header(hq, h, sizeof(h), icd ? req->len : 0);
	if (!rc && icd && req->len)
		rc = tx_data(hq, req->buf, req->len);
	if (rc)
		return rc;
	req->xfered = icd ? req->len : 0;
	rc = tx_flush(hq);
	if (rc) {
		drv_qpair_lost(qp, hq->err);
		return -ENOTCONN;
	}
	return 0;
}

static int tcp_process(struct nvemu_drv_qpair *qp, unsigned max)
{
	struct tcp_hq *hq = qp->tr;
	int rc;

	if (!hq || hq->dead)
		return -ENOTCONN;
	hq->completions = 0;
	if (tx_flush(hq))
		return -ECONNRESET;
	for (unsigned i = 0; i < 16 && (!max || hq->completions < max); i++) {
		ssize_t n = recv(hq->fd, hq->rxbuf, HT_RXBUF, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			snprintf(hq->err, sizeof(hq->err), "%s",
				 n ? strerror(errno) : "connection closed by the target");
			hq->dead = true;
			break;
		}
		rc = ht_rx_feed(hq, hq->rxbuf, (size_t)n);
		if (rc || (size_t)n < HT_RXBUF)
			break;
	}
	if (!hq->dead)
		tx_flush(hq);
	if (hq->dead) {
		drv_log(qp->ctrl, NVEMU_DRV_LOG_ERR, "queue %u: %s", qp->qid, hq->err);
		return -ECONNRESET;
	}
	return (int)hq->completions;
}

static int tcp_get_fd(struct nvemu_drv_qpair *qp)
{
	struct tcp_hq *hq = qp->tr;

	return hq ? hq->fd : -1;
}

static uint32_t tcp_get_events(struct nvemu_drv_qpair *qp)
{
	struct tcp_hq *hq = qp->tr;

	if (!hq || hq->dead)
		return 0;
	return POLLIN | (hq->tx_off < hq->tx_len ? POLLOUT : 0);
}

static uint32_t tcp_max_xfer(struct nvemu_drv_ctrl *ctrl)
{
	return HT_MAX_XFER;
}

/* ---- connecting a queue */

static int sock_connect(struct nvemu_drv_ctrl *ctrl, uint64_t deadline, struct nvemu_error *err)
{
	struct tcp_hctrl *tc = ctrl->tr;
	int fd, one = 1, soerr = 0;
	socklen_t sl = sizeof(soerr);
	struct pollfd pfd;

	fd = socket(tc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nvemu_error_set(err, -errno, "socket: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&tc->addr, tc->alen) && errno != EINPROGRESS) {
		soerr = errno;
		goto fail;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	for (;;) {
		uint64_t now = drv_now_ns();
		int n;

		if (now >= deadline) {
			soerr = ETIMEDOUT;
			goto fail;
		}
		n = poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1);
		if (n > 0)
			break;
		if (n < 0 && errno != EINTR) {
			soerr = errno;
			goto fail;
		}
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr)
		goto fail;
	return fd;
fail:
	close(fd);
	return nvemu_error_set(err, -soerr, "connect to %s:%s: %s", ctrl->trid.traddr,
			       ctrl->trid.trsvcid, strerror(soerr));
}

/* Send ICReq and wait for a valid ICResp. */
static int ic_exchange(struct tcp_hq *hq, const struct nvemu_drv_opts *o, uint64_t deadline,
		       struct nvemu_error *err)
{
	uint8_t req[128] = {TCP_PDU_ICREQ, 0, 128, 0, 128};
	struct pollfd pfd = {.fd = hq->fd};
	int rc;

	req[11] = (uint8_t)((o->hdgst ? 1 : 0) | (o->ddgst ? 2 : 0));
	hq->hdgst = o->hdgst; /* what we asked for: ICResp may only lower it */
	hq->ddgst = o->ddgst;
	if (ht_tx_append(hq, req, sizeof(req)))
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	while (!hq->ic_done) {
		uint64_t now = drv_now_ns();
		ssize_t n;

		if (tx_flush(hq))
			return nvemu_error_set(err, -ECONNRESET, "ICReq: %s", hq->err);
		n = recv(hq->fd, hq->rxbuf, 128, MSG_DONTWAIT); /* no more than ICResp */
		if (n > 0) {
			rc = ht_rx_feed(hq, hq->rxbuf, (size_t)n);
			if (rc)
				return nvemu_error_set(err, rc, "%s", hq->err);
			continue;
		}
		if (n == 0)
			return nvemu_error_set(err, -ECONNRESET, "connection closed before ICResp");
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return nvemu_error_set(err, -errno, "recv: %s", strerror(errno));
		if (now >= deadline)
			return nvemu_error_set(err, -ETIMEDOUT, "no ICResp in time");
		pfd.events = POLLIN | (hq->tx_len ? POLLOUT : 0);
		poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1);
	}
	return 0;
}

static int fabrics_connect(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp,
			   unsigned timeout_ms, struct nvemu_error *err)
{
	struct tcp_hctrl *tc = ctrl->tr;
	struct nvemu_sqe cmd = {.opc = nvme_admin_fabrics, .nsid = FCTYPE_CONNECT};
	struct nvemu_cqe cqe = {0};
	uint8_t *data = calloc(1, 1024);
	int rc;

	if (!data)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	cmd.cdw10 = (uint32_t)qp->qid << 16;
	cmd.cdw11 = (uint32_t)(qp->size - 1);
	cmd.cdw12 = qp->qid ? 0 : ctrl->opts.kato_ms;
	memcpy(data, ctrl->opts.hostid, 16);
	put_le16(data + 16, qp->qid ? tc->cntlid : 0xffff);
	memcpy(data + 256, ctrl->trid.subnqn, strnlen(ctrl->trid.subnqn, NVEMU_DRV_NQN_MAX - 1));
	memcpy(data + 512, ctrl->opts.hostnqn, strnlen(ctrl->opts.hostnqn, NVEMU_DRV_NQN_MAX - 1));
	rc = drv_exec_sync(qp, &cmd, data, 1024, timeout_ms, &cqe);
	free(data);
	if (rc == -EIO)
		return nvemu_error_set(
			err, rc, "Connect (queue %u) refused: status 0x%x%s", qp->qid, cqe.status,
			cqe.status == NVME_SC_CONNECT_INVALID_HOST ? " (host not allowed)"
			: cqe.status == NVME_SC_CONNECT_INVALID_PARAM
				? " (invalid parameters: subnqn?)"
				: "");
	if (rc)
		return nvemu_error_set(err, rc, "Connect (queue %u) failed: %s", qp->qid,
				       strerror(-rc));
	if (!qp->qid)
		ctrl->cntlid = tc->cntlid = (uint16_t)cqe.dw0;
	return 0;
}

static void tcp_qpair_delete(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp)
{
	ht_hq_free(qp->tr);
	qp->tr = NULL;
	qp->connected = false;
}

static int connect_queue(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp,
			 unsigned timeout_ms, struct nvemu_error *err)
{
	uint64_t deadline = drv_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct tcp_hq *hq;
	uint64_t left;
	int rc;

	tcp_qpair_delete(ctrl, qp);
	hq = ht_hq_new(qp);
	if (!hq)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	qp->tr = hq;
	hq->icd = HT_ADMIN_ICD; /* Connect's 1 KiB goes in the capsule */
	rc = sock_connect(ctrl, deadline, err);
	if (rc < 0)
		return rc;
	hq->fd = rc;
	rc = ic_exchange(hq, &ctrl->opts, deadline, err);
	if (rc)
		return rc;
	qp->connected = true;
	left = deadline > drv_now_ns() ? (deadline - drv_now_ns()) / 1000000ull + 1 : 1;
	rc = fabrics_connect(ctrl, qp, (unsigned)left, err);
	if (rc)
		return rc;
	if (qp->qid) {
		uint32_t ioccsz = ctrl->id.ioccsz;

		hq->icd = ioccsz > 4 ? (ioccsz - 4) * 16 : 0;
		if (hq->icd > HT_MAX_XFER)
			hq->icd = HT_MAX_XFER;
	}
	return 0;
}

static int tcp_connect_admin(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *aq,
			     unsigned timeout_ms, struct nvemu_error *err)
{
	return connect_queue(ctrl, aq, timeout_ms, err);
}

static int tcp_qpair_create(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp,
			    unsigned timeout_ms, struct nvemu_error *err)
{
	return connect_queue(ctrl, qp, timeout_ms, err);
}

/* ---- properties */

static int tcp_reg_read(struct nvemu_drv_ctrl *ctrl, uint32_t off, unsigned size, uint64_t *val)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_fabrics, .nsid = FCTYPE_PROP_GET};
	struct nvemu_cqe cqe = {0};
	int rc;

	cmd.cdw10 = size == 8 ? 1 : 0;
	cmd.cdw11 = off;
	rc = drv_exec_sync(ctrl->admin, &cmd, NULL, 0, ctrl->opts.admin_timeout_ms, &cqe);
	if (rc)
		return rc;
	*val = size == 8 ? ((uint64_t)cqe.dw1 << 32 | cqe.dw0) : cqe.dw0;
	return 0;
}

static int tcp_reg_write(struct nvemu_drv_ctrl *ctrl, uint32_t off, unsigned size, uint64_t val)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_fabrics, .nsid = FCTYPE_PROP_SET};

	cmd.cdw10 = size == 8 ? 1 : 0;
	cmd.cdw11 = off;
	cmd.cdw12 = (uint32_t)val;
	cmd.cdw13 = (uint32_t)(val >> 32);
	return drv_exec_sync(ctrl->admin, &cmd, NULL, 0, ctrl->opts.admin_timeout_ms, NULL);
}

/* ---- controller */

static int resolve(struct nvemu_drv_ctrl *ctrl, struct tcp_hctrl *tc, struct nvemu_error *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	int rc;

	if (ctrl->trid.adrfam == NVMF_ADDR_FAMILY_IP4)
		hints.ai_family = AF_INET;
	else if (ctrl->trid.adrfam == NVMF_ADDR_FAMILY_IP6)
		hints.ai_family = AF_INET6;
	rc = getaddrinfo(ctrl->trid.traddr, ctrl->trid.trsvcid[0] ? ctrl->trid.trsvcid : "4420",
			 &hints, &ai);
	if (rc)
		return nvemu_error_set(
			err, -EINVAL,
			"traddr/trsvcid: '%s' port '%s' is not a numeric address (%s)",
			ctrl->trid.traddr, ctrl->trid.trsvcid, gai_strerror(rc));
	memcpy(&tc->addr, ai->ai_addr, ai->ai_addrlen);
	tc->alen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int tcp_create(struct nvemu_drv_ctrl *ctrl, struct nvemu_error *err)
{
	struct nvemu_drv_opts *o = &ctrl->opts;
	struct tcp_hctrl *tc;
	static const uint8_t zero[16];
	char uu[37];
	int rc;

	if (!ctrl->trid.subnqn[0])
		return nvemu_error_set(err, -EINVAL, "subnqn: required for tcp");
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	rc = resolve(ctrl, tc, err);
	if (rc) {
		free(tc);
		return rc;
	}
	if (!memcmp(o->hostid, zero, 16))
		uuid_generate_random(o->hostid);
	if (!o->hostnqn[0]) {
		uuid_unparse_lower(o->hostid, uu);
		snprintf(o->hostnqn, sizeof(o->hostnqn), "nqn.2014-08.org.nvmexpress:uuid:%s", uu);
	}
	ctrl->tr = tc;
	return 0;
}

static void tcp_disconnect(struct nvemu_drv_ctrl *ctrl)
{
	tcp_qpair_delete(ctrl, ctrl->admin);
	for (unsigned i = 0; i < ctrl->nr_qps; i++)
		tcp_qpair_delete(ctrl, ctrl->qps[i]);
}

static void tcp_destroy(struct nvemu_drv_ctrl *ctrl)
{
	free(ctrl->tr);
	ctrl->tr = NULL;
}

const struct nvemu_drv_transport_ops drv_tcp_ops = {
	.name = "tcp",
	.trtype = NVEMU_DRV_TRTYPE_TCP,
	.fabrics = true,
	.create = tcp_create,
	.connect_admin = tcp_connect_admin,
	.reg_read = tcp_reg_read,
	.reg_write = tcp_reg_write,
	.qpair_create = tcp_qpair_create,
	.qpair_delete = tcp_qpair_delete,
	.submit = tcp_submit,
	.process = tcp_process,
	.get_fd = tcp_get_fd,
	.get_events = tcp_get_events,
	.max_xfer = tcp_max_xfer,
	.disconnect = tcp_disconnect,
	.destroy = tcp_destroy,
};

/* SPDX-License-Identifier: MIT */
/*
 * The NVMe/TCP host's receive path fed hand-made PDUs, as a broken or
 * hostile target would send them: each must end in a clear error (the
 * queue dies, the core resets the controller), never a wrong completion
 * or a write outside the command's buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test-util.h"
#include "driver/tcp-pdu.h"
#include "util/crc32c.h"

struct fx {
	struct nvemu_drv_ctrl ctrl;
	struct nvemu_drv_qpair *qp;
	struct tcp_hq *hq;
	int done, err;
	struct nvemu_cqe cqe;
	uint8_t buf[8192 + 64]; /* 64 guard bytes after the 8 KiB a command owns */
};

static void quiet(void *arg, int level, const char *msg)
{
}

static struct fx *fx_new(bool hdgst, bool ddgst)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	nvemu_drv_opts_init(&f->ctrl.opts);
	f->ctrl.opts.log = quiet;
	f->ctrl.ops = &drv_tcp_ops;
	f->ctrl.state = NVEMU_DRV_STATE_ENABLED;
	f->qp = drv_qpair_alloc(&f->ctrl, 1, 8);
	assert_non_null(f->qp);
	f->hq = ht_hq_new(f->qp);
	assert_non_null(f->hq);
	f->qp->tr = f->hq;
	f->qp->connected = true;
	f->hq->ic_done = true;
	f->hq->hdgst = hdgst;
	f->hq->ddgst = ddgst;
	f->hq->maxh2cdata = 4096;
	memset(f->buf, 0xa5, sizeof(f->buf));
	return f;
}

static void fx_free(struct fx *f)
{
	ht_hq_free(f->hq);
	drv_qpair_free(f->qp);
	free(f);
}

static void cb(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct fx *f = arg;

	f->done++;
	f->err = err;
	if (cqe)
		f->cqe = *cqe;
}

/* A command on the queue: opcode 0x02 reads len bytes into f->buf, 0x01 writes them. */
static uint16_t send_cmd(struct fx *f, uint8_t opc, uint32_t len)
{
	struct drv_req *req = drv_req_get(f->qp);

	assert_non_null(req);
	memset(&req->cmd, 0, sizeof(req->cmd));
	req->cmd.opc = opc;
	req->cmd.nsid = 1;
	req->buf = len ? f->buf : NULL;
	req->len = len;
	req->cb = cb;
	req->arg = f;
	assert_int_equal(drv_req_send(req), 0);
	f->hq->tx_len = f->hq->tx_off = 0; /* what the command sent does not matter here */
	return req->cid;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

/* A PDU: header (hlen bytes, plen computed), digests as the queue negotiated, data. */
static size_t pdu(struct fx *f, uint8_t *out, uint8_t type, uint8_t flags, const uint8_t *psh,
		  size_t pshlen, const uint8_t *data, uint32_t datal)
{
	uint32_t hlen = 8 + (uint32_t)pshlen, hd = f->hq->hdgst ? 4 : 0;
	uint32_t dd = datal && f->hq->ddgst ? 4 : 0, pdo = datal ? hlen + hd : 0;
	size_t n = 0;

	out[0] = type;
	out[1] = (uint8_t)(flags | (hd ? 1 : 0) | (dd ? 2 : 0));
	out[2] = (uint8_t)hlen;
	out[3] = (uint8_t)pdo;
	put32(out + 4, hlen + hd + datal + dd);
	memcpy(out + 8, psh, pshlen);
	n = hlen;
	if (hd) {
		put32(out + n, nvemu_crc32c(out, hlen));
		n += 4;
	}
	if (datal) {
		memcpy(out + n, data, datal);
		n += datal;
	}
	if (dd) {
		put32(out + n, nvemu_crc32c(data, datal));
		n += 4;
	}
	return n;
}

static size_t rsp(struct fx *f, uint8_t *out, uint16_t cid, uint16_t sqid, uint16_t status)
{
	uint8_t cqe[16] = {0};

	put16(cqe + 10, sqid);
	put16(cqe + 12, cid);
	put16(cqe + 14, (uint16_t)(status << 1));
	return pdu(f, out, TCP_PDU_RSP, 0, cqe, sizeof(cqe), NULL, 0);
}

static size_t c2h(struct fx *f, uint8_t *out, uint16_t cid, uint32_t off, const uint8_t *data,
		  uint32_t len, uint8_t flags)
{
	uint8_t h[16] = {0};

	put16(h, cid);
	put32(h + 4, off);
	put32(h + 8, len);
	return pdu(f, out, TCP_PDU_C2H_DATA, flags, h, sizeof(h), data, len);
}

static void test_good_read_and_write(void **state)
{
	struct fx *f = fx_new(true, true);
	static uint8_t out[16384], data[4096];
	uint8_t r2t[16] = {0};
	uint16_t cid;
	size_t n;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	/* a read answered by two C2HData, the second with SUCCESS: no CapsuleResp needed */
	cid = send_cmd(f, 0x02, 8192);
	n = c2h(f, out, cid, 0, data, 4096, 0);
	n += c2h(f, out + n, cid, 4096, data, 4096, TCP_F_LAST | TCP_F_SUCCESS);
	for (size_t i = 0; i < n; i++) /* one byte at a time: any split must work */
		assert_int_equal(ht_rx_feed(f->hq, out + i, 1), 0);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->err, 0);
	assert_memory_equal(f->buf + 4096, data, 4096);
	assert_int_equal(f->buf[8192], 0xa5);
	/* a write: R2T for 8 KiB is answered by two H2CData of MAXH2CDATA */
	cid = send_cmd(f, 0x01, 8192);
	put16(r2t, cid);
	put16(r2t + 2, 7);
	put32(r2t + 8, 8192);
	n = pdu(f, out, TCP_PDU_R2T, 0, r2t, sizeof(r2t), NULL, 0);
	assert_int_equal(ht_rx_feed(f->hq, out, n), 0);
	assert_int_equal(f->hq->tx_len, 2 * (24 + 4 + 4096 + 4));
	assert_int_equal(f->hq->tx[0], TCP_PDU_H2C_DATA);
	n = rsp(f, out, cid, 1, 0);
	assert_int_equal(ht_rx_feed(f->hq, out, n), 0);
	assert_int_equal(f->done, 2);
	assert_int_equal(f->err, 0);
	/* an error status is an error completion, not a dead queue */
	cid = send_cmd(f, 0x00, 0);
	n = rsp(f, out, cid, 1, NVME_SC_INVALID_FIELD);
	assert_int_equal(ht_rx_feed(f->hq, out, n), 0);
	assert_int_equal(f->err, -EIO);
	assert_int_equal(f->cqe.status, NVME_SC_INVALID_FIELD);
	fx_free(f);
}

/* Feed a bad PDU: the queue dies with want, the command stays in flight (the reset fails it). */
static void expect_dead(struct fx *f, const uint8_t *pdu_buf, size_t n, int want, const char *why)
{
	int done = f->done;

	assert_int_equal(ht_rx_feed(f->hq, pdu_buf, n), want);
	assert_true(f->hq->dead);
	assert_non_null(strstr(f->hq->err, why));
	assert_int_equal(f->done, done);
}

static void test_hostile_completions(void **state)
{
	static uint8_t out[16384], data[8192];
	struct fx *f;
	uint16_t cid;
	size_t n;

	/* a CQE for a command never sent */
	f = fx_new(false, false);
	send_cmd(f, 0x02, 4096);
	n = rsp(f, out, 5, 1, 0);
	expect_dead(f, out, n, -EPROTO, "not in flight");
	fx_free(f);
	/* a CID beyond the queue */
	f = fx_new(false, false);
	n = rsp(f, out, 0xffff, 1, 0);
	expect_dead(f, out, n, -EPROTO, "not in flight");
	fx_free(f);
	/* the wrong SQID */
	f = fx_new(false, false);
	cid = send_cmd(f, 0x00, 0);
	n = rsp(f, out, cid, 3, 0);
	expect_dead(f, out, n, -EPROTO, "not in flight");
	fx_free(f);
	/* a read completed with part of its data missing */
	f = fx_new(false, false);
	cid = send_cmd(f, 0x02, 8192);
	n = c2h(f, out, cid, 0, data, 4096, 0);
	n += rsp(f, out + n, cid, 1, 0);
	expect_dead(f, out, n, -EPROTO, "completed with 4096 of 8192");
	fx_free(f);
}

static void test_hostile_data(void **state)
{
	static uint8_t out[16384], data[8192];
	uint8_t r2t[16] = {0};
	struct fx *f;
	uint16_t cid;
	size_t n;

	/* C2HData larger than the command's buffer: nothing past it is written */
	f = fx_new(false, false);
	cid = send_cmd(f, 0x02, 4096);
	n = c2h(f, out, cid, 0, data, 8192, TCP_F_LAST);
	expect_dead(f, out, n, -EPROTO, "offset 0 length 8192");
	assert_int_equal(f->buf[4096], 0xa5);
	fx_free(f);
	/* C2HData out of order */
	f = fx_new(false, false);
	cid = send_cmd(f, 0x02, 8192);
	n = c2h(f, out, cid, 4096, data, 4096, TCP_F_LAST);
	expect_dead(f, out, n, -EPROTO, "offset 4096");
	fx_free(f);
	/* C2HData for a write */
	f = fx_new(false, false);
	cid = send_cmd(f, 0x01, 4096);
	n = c2h(f, out, cid, 0, data, 4096, TCP_F_LAST);
	expect_dead(f, out, n, -EPROTO, "reads nothing");
	fx_free(f);
	/* SUCCESS before the last byte */
	f = fx_new(false, false);
	cid = send_cmd(f, 0x02, 8192);
	n = c2h(f, out, cid, 0, data, 4096, TCP_F_LAST | TCP_F_SUCCESS);
	expect_dead(f, out, n, -EPROTO, "SUCCESS");
	fx_free(f);
	/* R2T for a read, and an R2T past the end of a write */
	f = fx_new(false, false);
	cid = send_cmd(f, 0x02, 4096);
	put16(r2t, cid);
	put32(r2t + 8, 4096);
	n = pdu(f, out, TCP_PDU_R2T, 0, r2t, sizeof(r2t), NULL, 0);
	expect_dead(f, out, n, -EPROTO, "no data to send");
	fx_free(f);
	f = fx_new(false, false);
	cid = send_cmd(f, 0x01, 4096);
	put16(r2t, cid);
	put32(r2t + 4, 0);
	put32(r2t + 8, 8192);
	n = pdu(f, out, TCP_PDU_R2T, 0, r2t, sizeof(r2t), NULL, 0);
	expect_dead(f, out, n, -EPROTO, "length 8192");
	assert_int_equal(f->hq->tx_len, 0);
	fx_free(f);
}

static void test_hostile_framing(void **state)
{
	static uint8_t out[16384], data[4096];
	struct fx *f;
	uint16_t cid;
	size_t n;

	/* header digest error */
	f = fx_new(true, false);
	cid = send_cmd(f, 0x00, 0);
	n = rsp(f, out, cid, 1, 0);
	out[n - 1] ^= 1;
	expect_dead(f, out, n, -EBADMSG, "header digest");
	fx_free(f);
	/* data digest error */
	f = fx_new(false, true);
	cid = send_cmd(f, 0x02, 4096);
	n = c2h(f, out, cid, 0, data, 4096, TCP_F_LAST | TCP_F_SUCCESS);
	out[n - 1] ^= 1;
	expect_dead(f, out, n, -EBADMSG, "data digest");
	fx_free(f);
	/* digest flag missing although negotiated */
	f = fx_new(true, false);
	n = rsp(f, out, 0, 1, 0);
	out[1] &= (uint8_t)~TCP_F_HDGST;
	expect_dead(f, out, n, -EPROTO, "digest flag");
	fx_free(f);
	/* CapsuleResp with a wrong length, an unknown PDU type, ICResp after IC */
	f = fx_new(false, false);
	n = rsp(f, out, 0, 1, 0);
	put32(out + 4, 4000);
	expect_dead(f, out, n, -EPROTO, "plen");
	fx_free(f);
	f = fx_new(false, false);
	memset(out, 0, 8);
	out[0] = 0x0c;
	expect_dead(f, out, 8, -EPROTO, "unexpected PDU type");
	fx_free(f);
	f = fx_new(false, false);
	memset(out, 0, 128);
	out[0] = TCP_PDU_ICRESP;
	out[2] = 128;
	put32(out + 4, 128);
	expect_dead(f, out, 8, -EPROTO, "out of sequence");
	fx_free(f);
	/* C2HTermReq ends the connection */
	f = fx_new(false, false);
	memset(out, 0, 24);
	out[0] = TCP_PDU_C2H_TERM;
	out[2] = 24;
	put32(out + 4, 24);
	put16(out + 8, 5);
	expect_dead(f, out, 24, -ECONNRESET, "C2HTermReq FES 5");
	fx_free(f);
	/* a short PDU is only waited for (the command timeout covers a target that stalls) */
	f = fx_new(false, false);
	cid = send_cmd(f, 0x00, 0);
	n = rsp(f, out, cid, 1, 0);
	assert_int_equal(ht_rx_feed(f->hq, out, n - 3), 0);
	assert_false(f->hq->dead);
	assert_int_equal(f->done, 0);
	assert_int_equal(ht_rx_feed(f->hq, out + n - 3, 3), 0);
	assert_int_equal(f->done, 1);
	fx_free(f);
}

static void test_icresp_checks(void **state)
{
	uint8_t ic[128] = {TCP_PDU_ICRESP, 0, 128, 0, 128};
	struct fx *f;

	/* a good one: digests only as asked, MAXH2CDATA kept */
	f = fx_new(true, true);
	f->hq->ic_done = false;
	ic[11] = 3;
	put32(ic + 12, 65536);
	assert_int_equal(ht_rx_feed(f->hq, ic, sizeof(ic)), 0);
	assert_true(f->hq->ic_done);
	assert_int_equal(f->hq->maxh2cdata, 65536);
	fx_free(f);
	/* digests we did not ask for, a tiny MAXH2CDATA, PFV 1 */
	f = fx_new(false, false);
	f->hq->ic_done = false;
	assert_int_equal(ht_rx_feed(f->hq, ic, sizeof(ic)), -EPROTO);
	fx_free(f);
	f = fx_new(true, true);
	f->hq->ic_done = false;
	put32(ic + 12, 512);
	assert_int_equal(ht_rx_feed(f->hq, ic, sizeof(ic)), -EPROTO);
	fx_free(f);
	f = fx_new(true, true);
	f->hq->ic_done = false;
	put32(ic + 12, 8192);
	put16(ic + 8, 1);
	assert_int_equal(ht_rx_feed(f->hq, ic, sizeof(ic)), -EPROTO);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_read_and_write),
		cmocka_unit_test(test_hostile_completions),
		cmocka_unit_test(test_hostile_data),
		cmocka_unit_test(test_hostile_framing),
		cmocka_unit_test(test_icresp_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

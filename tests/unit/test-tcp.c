/* SPDX-License-Identifier: MIT */
/*
 * The NVMe/TCP target spoken to with raw PDUs over 127.0.0.1 (an ephemeral
 * port). The target runs its built-in loop in a thread; the test thread is
 * the host and touches the model only before the thread starts.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "test-util.h"
#include "transport/tcp/tcp-internal.h"
#include "util/crc32c.h"

#define SUBNQN	"nqn.2024-01.io.nvemu:tcp-test"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
#define SERIAL	"NVEMU-TCP-0001"
#define TEST_MAXH2CDATA 4096u

struct srv {
	struct nvemu_subsys *s;
	struct nvemu_tcp_target *t;
	pthread_t th;
	atomic_int stop;
	uint16_t port;
};

static void *srv_main(void *arg)
{
	struct srv *sv = arg;

	while (!atomic_load(&sv->stop))
		nvemu_tcp_target_run_once(sv->t, 10);
	return NULL;
}

static struct srv *srv_new_q(bool allow_any, uint16_t num_io_queues);

static struct srv *srv_new(bool allow_any)
{
	return srv_new_q(allow_any, 4);
}

static struct srv *srv_new_q(bool allow_any, uint16_t num_io_queues)
{
	struct srv *sv = calloc(1, sizeof(*sv));
	struct nvemu_subsys_params sp;
	struct nvemu_tcp_target_params tp;
	struct nvemu_tcp_listener_info li;
	struct nvemu_error err = {0};
	uint32_t nsid;

	assert_non_null(sv);
	nvemu_subsys_params_init(&sp);
	sp.nqn = SUBNQN;
	sp.serial = SERIAL;
	assert_int_equal(nvemu_subsys_create(&sp, &sv->s, &err), 0);
	assert_int_equal(nvemu_subsys_add_ns(sv->s, 4096, &nsid, &err), 0);
	nvemu_tcp_target_params_init(&tp);
	tp.maxh2cdata = TEST_MAXH2CDATA; /* several H2CData PDUs per write */
	tp.num_io_queues = num_io_queues;
	assert_int_equal(nvemu_tcp_target_create(&tp, &sv->t, &err), 0);
	assert_int_equal(nvemu_tcp_add_listener(sv->t, sv->s, "127.0.0.1", "0", 0, &err), 0);
	assert_int_equal(nvemu_tcp_get_listener(sv->t, sv->s, 0, &li), 0);
	sv->port = (uint16_t)atoi(li.trsvcid);
	assert_true(sv->port > 0);
	if (!allow_any) {
		assert_int_equal(nvemu_tcp_set_allow_any_host(sv->t, sv->s, false, &err), 0);
		assert_int_equal(
			nvemu_tcp_add_host(sv->t, sv->s, "nqn.2024-01.io.nvemu:host-ok", &err), 0);
	}
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
	return sv;
}

static void srv_free(struct srv *sv)
{
	atomic_store(&sv->stop, 1);
	pthread_join(sv->th, NULL);
	nvemu_tcp_remove_subsys(sv->t, sv->s);
	nvemu_tcp_target_destroy(sv->t);
	nvemu_subsys_destroy(sv->s);
	free(sv);
}

/* ---- a tiny host */

struct cl {
	int fd;
	bool hdgst, ddgst;
	bool sqflow_off;
	uint16_t cid;
	unsigned r2ts, h2c_pdus, c2h_success;
	uint16_t cntlid;
};

static uint32_t crc(const void *b, size_t n)
{
	return nvemu_crc32c(b, n);
}

static void xsend(struct cl *c, const void *b, size_t n)
{
	assert_int_equal(send(c->fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* 0 on success, -1 on EOF/error/timeout */
static int xrecv(struct cl *c, void *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(c->fd, (uint8_t *)b + got, n - got, 0);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static struct cl *cl_open(struct srv *sv)
{
	struct cl *c = calloc(1, sizeof(*c));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(sv->port)};
	struct timeval tv = {.tv_sec = 5};
	int one = 1;

	assert_non_null(c);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return c;
}

static void cl_close(struct cl *c)
{
	close(c->fd);
	free(c);
}

static void cl_icreq(struct cl *c, bool hd, bool dd)
{
	struct tcp_icreq req = {.ch = {.type = TCP_PDU_ICREQ, .hlen = 128}};
	struct tcp_icresp rsp;

	req.ch.plen = htole32(128);
	req.digest = (hd ? 1 : 0) | (dd ? 2 : 0);
	xsend(c, &req, sizeof(req));
	assert_int_equal(xrecv(c, &rsp, sizeof(rsp)), 0);
	assert_int_equal(rsp.ch.type, TCP_PDU_ICRESP);
	assert_int_equal(le32toh(rsp.ch.plen), 128);
	assert_int_equal(rsp.digest, req.digest);
	assert_int_equal(le32toh(rsp.maxh2cdata), 4096);
	c->hdgst = hd;
	c->ddgst = dd;
}

/* Send a PDU with header hdr/hlen and optional data, with digests as negotiated. */
static void send_pdu(struct cl *c, void *hdr, uint8_t hlen, const void *data, uint32_t dlen)
{
	uint8_t buf[256 + 16384];
	struct tcp_ch *ch = hdr;
	uint32_t off = hlen;

	ch->hlen = hlen;
	if (c->hdgst)
		ch->flags |= TCP_F_HDGST;
	if (dlen && c->ddgst)
		ch->flags |= TCP_F_DDGST;
	off += c->hdgst ? 4 : 0;
	ch->pdo = dlen ? (uint8_t)off : 0;
	ch->plen = htole32(off + dlen + (dlen && c->ddgst ? 4 : 0));
	memcpy(buf, hdr, hlen);
	if (c->hdgst) {
		uint32_t v = htole32(crc(buf, hlen));

		memcpy(buf + hlen, &v, 4);
	}
	assert_true(dlen <= 16384);
	if (dlen)
		memcpy(buf + off, data, dlen);
	off += dlen;
	if (dlen && c->ddgst) {
		uint32_t v = htole32(crc(data, dlen));

		memcpy(buf + off, &v, 4);
		off += 4;
	}
	xsend(c, buf, off);
}

/* Receive one PDU: header into hdr (>= 160 bytes), data into *data (malloc'd). */
static int recv_pdu(struct cl *c, uint8_t *hdr, uint8_t **data, uint32_t *dlen)
{
	struct tcp_ch *ch = (struct tcp_ch *)hdr;
	uint32_t plen, rest, hd;

	*data = NULL;
	*dlen = 0;
	if (xrecv(c, hdr, 8))
		return -1;
	plen = le32toh(ch->plen);
	assert_true(plen >= ch->hlen && plen < (1u << 24));
	hd = (ch->flags & TCP_F_HDGST) ? 4 : 0;
	if (ch->type == TCP_PDU_C2H_TERM) {
		assert_true(plen <= 152);
		return xrecv(c, hdr + 8, plen - 8) ? -1 : 0;
	}
	if (xrecv(c, hdr + 8, ch->hlen + hd - 8))
		return -1;
	assert_int_equal(!!hd, c->hdgst);
	if (hd) {
		uint32_t v;

		memcpy(&v, hdr + ch->hlen, 4);
		assert_int_equal(le32toh(v), crc(hdr, ch->hlen));
	}
	rest = plen - ch->hlen - hd;
	if (rest) {
		uint32_t pad = ch->pdo - ch->hlen - hd, dd = (ch->flags & TCP_F_DDGST) ? 4 : 0;
		uint8_t *b = malloc(rest);

		assert_non_null(b);
		if (xrecv(c, b, rest)) {
			free(b);
			return -1;
		}
		*dlen = rest - pad - dd;
		*data = malloc(*dlen);
		memcpy(*data, b + pad, *dlen);
		if (dd) {
			uint32_t v;

			assert_true(c->ddgst);
			memcpy(&v, b + pad + *dlen, 4);
			assert_int_equal(le32toh(v), crc(*data, *dlen));
		}
		free(b);
	}
	return 0;
}

static void sqe_to_wire(const struct nvemu_sqe *in, uint8_t out[64])
{
	memcpy(out, in, 64); /* little-endian host */
}

/*
 * Run a command: out/olen go to the controller (in-capsule when inline,
 * else by R2T), in/ilen come back. Returns the status (libnvme encoding),
 * or -1 when the connection broke.
 */
static int cl_cmd(struct cl *c, struct nvemu_sqe *sqe, const void *out, uint32_t olen,
		  bool inline_data, void *in, uint32_t ilen, struct nvemu_cqe *cqe_out)
{
	struct tcp_cmd_pdu pdu = {.ch = {.type = TCP_PDU_CMD}};
	uint8_t hdr[256];
	uint32_t len = olen ? olen : ilen;

	sqe->cid = ++c->cid;
	sqe->flags = 0x40; /* PSDT: SGL */
	if (olen && inline_data)
		sqe->dptr2 = (uint64_t)TCP_SGL_INCAPSULE << 56 | len;
	else
		sqe->dptr2 = (uint64_t)TCP_SGL_TRANSPORT << 56 | len;
	sqe->dptr1 = 0;
	sqe_to_wire(sqe, pdu.sqe);
	send_pdu(c, &pdu, sizeof(pdu), out, olen && inline_data ? olen : 0);
	for (;;) {
		uint8_t *data;
		uint32_t dlen;
		struct tcp_ch *ch = (struct tcp_ch *)hdr;

		if (recv_pdu(c, hdr, &data, &dlen))
			return -1;
		if (ch->type == TCP_PDU_R2T) {
			struct tcp_r2t_pdu *r = (struct tcp_r2t_pdu *)hdr;
			uint32_t o = le32toh(r->r2to), l = le32toh(r->r2tl);

			c->r2ts++;
			assert_int_equal(le16toh(r->cccid), sqe->cid);
			assert_true(o + l <= olen);
			/* As a host does: the R2T's data in PDUs of at most MAXH2CDATA. */
			for (uint32_t done = 0; done < l;) {
				uint32_t n = l - done < TEST_MAXH2CDATA ? l - done : TEST_MAXH2CDATA;
				struct tcp_data_pdu d = {.ch = {.type = TCP_PDU_H2C_DATA}};

				d.ch.flags = done + n == l ? TCP_F_LAST : 0;
				d.cccid = r->cccid;
				d.ttag = r->ttag;
				d.datao = htole32(o + done);
				d.datal = htole32(n);
				send_pdu(c, &d, sizeof(d), (const uint8_t *)out + o + done, n);
				c->h2c_pdus++;
				done += n;
			}
		} else if (ch->type == TCP_PDU_C2H_DATA) {
			struct tcp_data_pdu *d = (struct tcp_data_pdu *)hdr;
			uint32_t o = le32toh(d->datao);

			assert_int_equal(le32toh(d->datal), dlen);
			assert_true(o + dlen <= ilen);
			memcpy((uint8_t *)in + o, data, dlen);
			free(data);
			if (d->ch.flags & TCP_F_SUCCESS) {
				c->c2h_success++;
				if (cqe_out)
					memset(cqe_out, 0, sizeof(*cqe_out));
				return 0;
			}
		} else if (ch->type == TCP_PDU_RSP) {
			struct nvemu_cqe cqe;

			memcpy(&cqe, hdr + 8, 16);
			assert_int_equal(cqe.cid, sqe->cid);
			if (cqe_out)
				*cqe_out = cqe;
			return cqe.status >> 1;
		} else {
			free(data);
			return -1;
		}
	}
}

static int cl_connect_d(struct cl *c, const struct nvmf_connect_data *d, uint16_t qid,
			struct nvemu_cqe *cqe)
{
	struct nvemu_sqe sqe = {.opc = 0x7f, .nsid = nvme_fabrics_type_connect};

	sqe.cdw10 = (uint32_t)qid << 16;
	sqe.cdw11 = qid ? 127u : 31u;
	return cl_cmd(c, &sqe, d, sizeof(*d), true, NULL, 0, cqe);
}

static int cl_connect(struct cl *c, const char *subnqn, const char *hostnqn, uint16_t qid,
		      uint16_t cntlid, uint32_t kato, struct nvemu_cqe *cqe)
{
	struct nvmf_connect_data d;
	struct nvemu_sqe sqe = {.opc = 0x7f, .nsid = nvme_fabrics_type_connect};

	memset(&d, 0, sizeof(d));
	d.cntlid = htole16(cntlid);
	snprintf(d.subsysnqn, sizeof(d.subsysnqn), "%s", subnqn);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", hostnqn);
	sqe.cdw10 = (uint32_t)qid << 16;
	sqe.cdw11 = (qid ? 127u : 31u) | (c->sqflow_off ? 4u << 16 : 0);
	sqe.cdw12 = kato;
	return cl_cmd(c, &sqe, &d, sizeof(d), true, NULL, 0, cqe);
}

static int prop_get(struct cl *c, uint32_t off, bool wide, uint64_t *v)
{
	struct nvemu_sqe sqe = {.opc = 0x7f, .nsid = nvme_fabrics_type_property_get};
	struct nvemu_cqe cqe;
	int st;

	sqe.cdw10 = wide;
	sqe.cdw11 = off;
	st = cl_cmd(c, &sqe, NULL, 0, false, NULL, 0, &cqe);
	*v = cqe.dw0 | (uint64_t)cqe.dw1 << 32;
	return st;
}

static int prop_set(struct cl *c, uint32_t off, uint32_t v)
{
	struct nvemu_sqe sqe = {.opc = 0x7f, .nsid = nvme_fabrics_type_property_set};

	sqe.cdw11 = off;
	sqe.cdw12 = v;
	return cl_cmd(c, &sqe, NULL, 0, false, NULL, 0, NULL);
}

/* ICReq, Connect admin, enable. */
static struct cl *cl_admin(struct srv *sv, bool digests)
{
	struct cl *c = cl_open(sv);
	struct nvemu_cqe cqe;
	uint64_t v;

	cl_icreq(c, digests, digests);
	assert_int_equal(cl_connect(c, SUBNQN, HOSTNQN, 0, 0xffff, 0, &cqe), 0);
	c->cntlid = cqe.dw0 & 0xffff;
	assert_true(c->cntlid >= 1);
	assert_int_equal(prop_set(c, NVEMU_REG_CC, 1 | 6u << 16 | 4u << 20), 0);
	assert_int_equal(prop_get(c, NVEMU_REG_CSTS, false, &v), 0);
	assert_int_equal(v & 1, 1);
	return c;
}

/* ---- tests */

static void test_crc32c(void **state)
{
	const char *s = "123456789";
	uint32_t a = nvemu_crc32c_update(NVEMU_CRC32C_INIT, s, 4);

	(void)state;
	assert_int_equal(crc(s, 9), 0xe3069283u);
	a = nvemu_crc32c_update(a, s + 4, 5);
	assert_int_equal(nvemu_crc32c_final(a), 0xe3069283u);
}

static void test_admin_and_io(void **state)
{
	struct srv *sv = srv_new(true);
	struct cl *a, *io;
	struct nvemu_cqe cqe;
	struct nvme_id_ctrl id;
	uint8_t wbuf[16384], rbuf[16384];
	struct nvemu_sqe sqe;
	uint64_t v;

	(void)state;
	a = cl_open(sv);
	cl_icreq(a, true, true);
	/* Property Get before Connect: Command Sequence Error */
	assert_status(prop_get(a, NVEMU_REG_CAP, true, &v),
		      NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR));
	assert_int_equal(cl_connect(a, SUBNQN, HOSTNQN, 0, 0xffff, 0, &cqe), 0);
	a->cntlid = cqe.dw0 & 0xffff;
	assert_true(a->cntlid >= 1);
	assert_int_equal(prop_get(a, NVEMU_REG_CAP, true, &v), 0);
	assert_int_equal(v & 0xffff, 127); /* MQES */
	assert_int_equal(prop_get(a, NVEMU_REG_VS, false, &v), 0);
	assert_int_equal(v, NVEMU_VS);
	/* CAP read as 4 bytes is an invalid field */
	assert_status(prop_get(a, NVEMU_REG_CAP, false, &v),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	assert_int_equal(prop_get(a, NVEMU_REG_CSTS, false, &v), 0);
	assert_int_equal(v & 1, 0);
	assert_int_equal(prop_set(a, NVEMU_REG_CC, 1 | 6u << 16 | 4u << 20), 0);
	assert_int_equal(prop_get(a, NVEMU_REG_CSTS, false, &v), 0);
	assert_int_equal(v & 1, 1);
	assert_int_equal(prop_get(a, NVEMU_REG_CC, false, &v), 0);
	assert_int_equal(v & 1, 1);

	/* Identify Controller through the engine, with the fabrics fields */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_admin_identify;
	sqe.cdw10 = NVME_IDENTIFY_CNS_CTRL;
	memset(&id, 0, sizeof(id));
	assert_int_equal(cl_cmd(a, &sqe, NULL, 0, false, &id, sizeof(id), NULL), 0);
	assert_memory_equal(id.sn, SERIAL, strlen(SERIAL));
	assert_string_equal(id.subnqn, SUBNQN);
	assert_int_equal(le32toh(id.ioccsz), (8192 + 64) / 16);
	assert_int_equal(le16toh(id.cntlid), a->cntlid);
	assert_int_equal(le16toh(id.maxcmd), 128);

	/* I/O queue 1 with SQ flow control disabled: reads end with C2HData SUCCESS */
	io = cl_open(sv);
	cl_icreq(io, true, true);
	io->sqflow_off = true;
	/* wrong controller ID */
	assert_status(cl_connect(io, SUBNQN, HOSTNQN, 1, a->cntlid + 100, 0, &cqe),
		      NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(cqe.dw0, (1u << 16) | 16);
	/* qid beyond the controller's queues */
	assert_status(cl_connect(io, SUBNQN, HOSTNQN, 9, a->cntlid, 0, &cqe),
		      NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(cqe.dw0, 42);
	assert_int_equal(cl_connect(io, SUBNQN, HOSTNQN, 1, a->cntlid, 0, &cqe), 0);

	for (unsigned i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i * 7 + 3);
	/* 16 KiB write by R2T, MAXH2CDATA 4 KiB: one R2T, four H2CData PDUs */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_cmd_write;
	sqe.nsid = 1;
	sqe.cdw10 = 8;
	sqe.cdw12 = 32 - 1;
	assert_int_equal(cl_cmd(io, &sqe, wbuf, sizeof(wbuf), false, NULL, 0, NULL), 0);
	assert_int_equal(io->r2ts, 1);
	assert_int_equal(io->h2c_pdus, 4);
	/* 4 KiB in-capsule write at LBA 100 */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_cmd_write;
	sqe.nsid = 1;
	sqe.cdw10 = 100;
	sqe.cdw12 = 8 - 1;
	assert_int_equal(cl_cmd(io, &sqe, wbuf + 8192, 4096, true, NULL, 0, NULL), 0);
	assert_int_equal(io->r2ts, 1);
	/* read back */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_cmd_read;
	sqe.nsid = 1;
	sqe.cdw10 = 8;
	sqe.cdw12 = 32 - 1;
	memset(rbuf, 0, sizeof(rbuf));
	assert_int_equal(cl_cmd(io, &sqe, NULL, 0, false, rbuf, sizeof(rbuf), NULL), 0);
	assert_memory_equal(rbuf, wbuf, sizeof(wbuf));
	assert_int_equal(io->c2h_success, 1);
	sqe.cdw10 = 100;
	sqe.cdw12 = 8 - 1;
	memset(rbuf, 0, sizeof(rbuf));
	assert_int_equal(cl_cmd(io, &sqe, NULL, 0, false, rbuf, 4096, NULL), 0);
	assert_memory_equal(rbuf, wbuf + 8192, 4096);
	/* an I/O error status comes back as a CapsuleResp */
	sqe.nsid = 7;
	assert_status(cl_cmd(io, &sqe, NULL, 0, false, rbuf, 4096, NULL),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_NS));
	/* Property Get on an I/O queue: Invalid Opcode */
	assert_status(prop_get(io, NVEMU_REG_CAP, true, &v),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE));

	/* several writes in flight on one queue, each with its own R2T */
	{
		struct tcp_cmd_pdu pdu[3];
		uint8_t hdr[256];
		unsigned r2t = 0, rsp = 0;

		for (int k = 0; k < 3; k++) {
			memset(&pdu[k], 0, sizeof(pdu[k]));
			pdu[k].ch.type = TCP_PDU_CMD;
			memset(&sqe, 0, sizeof(sqe));
			sqe.opc = nvme_cmd_write;
			sqe.cid = (uint16_t)(1000 + k);
			sqe.nsid = 1;
			sqe.cdw10 = 200 + 8 * k;
			sqe.cdw12 = 7;
			sqe.flags = 0x40;
			sqe.dptr2 = (uint64_t)TCP_SGL_TRANSPORT << 56 | 4096;
			sqe_to_wire(&sqe, pdu[k].sqe);
			send_pdu(io, &pdu[k], sizeof(pdu[k]), NULL, 0);
		}
		struct tcp_r2t_pdu got[3];

		while (r2t < 3) {
			uint8_t *data;
			uint32_t dlen;

			assert_int_equal(recv_pdu(io, hdr, &data, &dlen), 0);
			assert_int_equal(hdr[0], TCP_PDU_R2T);
			memcpy(&got[r2t++], hdr, sizeof(got[0]));
		}
		for (int k = 2; k >= 0; k--) {
			struct tcp_data_pdu d = {
				.ch = {.type = TCP_PDU_H2C_DATA, .flags = TCP_F_LAST}};

			d.cccid = got[k].cccid;
			d.ttag = got[k].ttag;
			d.datal = htole32(4096);
			send_pdu(io, &d, sizeof(d), wbuf, 4096);
		}
		while (rsp < 3) {
			uint8_t *data;
			uint32_t dlen;

			assert_int_equal(recv_pdu(io, hdr, &data, &dlen), 0);
			assert_int_equal(hdr[0], TCP_PDU_RSP);
			assert_int_equal(le16toh(*(uint16_t *)(hdr + 8 + 14)) >> 1, 0);
			rsp++;
		}
	}

	/* the admin connection closing ends the association: the I/O queue goes too */
	cl_close(a);
	{
		uint8_t b;

		assert_int_equal(recv(io->fd, &b, 1, 0), 0);
	}
	cl_close(io);
	srv_free(sv);
}

static void test_connect_refused(void **state)
{
	struct srv *sv = srv_new(false);
	struct cl *c = cl_open(sv);
	struct nvemu_cqe cqe;

	(void)state;
	cl_icreq(c, false, false);
	assert_status(cl_connect(c, "nqn.2024-01.io.nvemu:nope", HOSTNQN, 0, 0xffff, 0, &cqe),
		      NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(cqe.dw0, (1u << 16) | 256);
	assert_status(cl_connect(c, SUBNQN, HOSTNQN, 0, 0xffff, 0, &cqe),
		      NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_HOST));
	assert_true((cqe.status >> 1) & NVME_SC_DNR);
	assert_int_equal(cqe.dw0, (1u << 16) | 512);
	/* the allowed host gets in */
	assert_int_equal(cl_connect(c, SUBNQN, "nqn.2024-01.io.nvemu:host-ok", 0, 0xffff, 0, &cqe),
			 0);
	cl_close(c);
	srv_free(sv);
}

static void expect_term(struct cl *c, uint16_t fes, uint32_t fei)
{
	uint8_t hdr[256], *data, b;
	uint32_t dlen;
	struct tcp_term_pdu *t = (struct tcp_term_pdu *)hdr;

	assert_int_equal(recv_pdu(c, hdr, &data, &dlen), 0);
	assert_int_equal(t->ch.type, TCP_PDU_C2H_TERM);
	assert_int_equal(le16toh(t->fes), fes);
	assert_int_equal(le32toh(t->fei), fei);
	/* then the target closes */
	assert_int_equal(recv(c->fd, &b, 1, 0), 0);
}

static void check_alive(struct cl *a)
{
	uint64_t v;

	assert_int_equal(prop_get(a, NVEMU_REG_CSTS, false, &v), 0);
	assert_int_equal(v & 1, 1);
}

static void test_malformed(void **state)
{
	struct srv *sv = srv_new(true);
	struct cl *a = cl_admin(sv, true), *c;
	struct tcp_cmd_pdu cmd = {.ch = {.type = TCP_PDU_CMD}};

	(void)state;
	/* capsule before ICReq */
	c = cl_open(sv);
	send_pdu(c, &cmd, sizeof(cmd), NULL, 0);
	expect_term(c, TCP_FES_PDU_SEQ, 0);
	cl_close(c);
	check_alive(a);

	/* unknown PDU type */
	c = cl_open(sv);
	cl_icreq(c, false, false);
	{
		struct tcp_r2t_pdu bad = {.ch = {.type = 0x0b, .hlen = 24}};

		bad.ch.plen = htole32(24);
		xsend(c, &bad, sizeof(bad));
	}
	expect_term(c, TCP_FES_INVALID_HDR, 0);
	cl_close(c);
	check_alive(a);

	/* H2CData without an R2T */
	c = cl_open(sv);
	cl_icreq(c, false, false);
	{
		struct tcp_data_pdu d = {.ch = {.type = TCP_PDU_H2C_DATA}};
		uint8_t data[512] = {0};

		d.ttag = htole16(3);
		d.datal = htole32(sizeof(data));
		send_pdu(c, &d, sizeof(d), data, sizeof(data));
	}
	expect_term(c, TCP_FES_INVALID_HDR, 10);
	cl_close(c);
	check_alive(a);

	/* wrong header digest */
	c = cl_open(sv);
	cl_icreq(c, true, false);
	{
		uint8_t buf[76] = {0};
		struct tcp_ch *ch = (struct tcp_ch *)buf;

		ch->type = TCP_PDU_CMD;
		ch->flags = TCP_F_HDGST;
		ch->hlen = 72;
		ch->plen = htole32(76);
		buf[72] = 0x12; /* not the CRC */
		xsend(c, buf, sizeof(buf));
	}
	expect_term(c, TCP_FES_HDR_DIGEST, 0);
	cl_close(c);
	check_alive(a);

	/* in-capsule data over IOCCSZ */
	c = cl_open(sv);
	cl_icreq(c, false, false);
	{
		struct tcp_cmd_pdu big = {.ch = {.type = TCP_PDU_CMD, .hlen = 72, .pdo = 72}};

		big.ch.plen = htole32(72 + 65536);
		xsend(c, &big, sizeof(big));
	}
	expect_term(c, TCP_FES_LIMIT_EXCEEDED, 0);
	cl_close(c);

	/* bad HLEN */
	c = cl_open(sv);
	cl_icreq(c, false, false);
	{
		struct tcp_cmd_pdu bad = {.ch = {.type = TCP_PDU_CMD, .hlen = 40}};

		bad.ch.plen = htole32(72);
		xsend(c, &bad, sizeof(bad));
	}
	expect_term(c, TCP_FES_INVALID_HDR, 2);
	cl_close(c);

	/* ICReq with an unsupported PFV */
	c = cl_open(sv);
	{
		struct tcp_icreq req = {.ch = {.type = TCP_PDU_ICREQ, .hlen = 128}};

		req.ch.plen = htole32(128);
		req.pfv = htole16(1);
		xsend(c, &req, sizeof(req));
	}
	expect_term(c, TCP_FES_UNSUPPORTED, 8);
	cl_close(c);

	/* a data digest error fails that command only */
	{
		struct nvemu_sqe sqe = {.opc = nvme_cmd_write, .nsid = 1, .cdw12 = 0};
		struct tcp_cmd_pdu p = {.ch = {.type = TCP_PDU_CMD}};
		uint8_t buf[72 + 4 + 512 + 4] = {0};
		struct tcp_ch *ch = (struct tcp_ch *)buf;
		struct nvemu_cqe cqe;
		uint32_t v;

		c = cl_open(sv);
		cl_icreq(c, true, true);
		assert_int_equal(cl_connect(c, SUBNQN, HOSTNQN, 1, a->cntlid, 0, &cqe), 0);
		sqe.cid = 77;
		sqe.flags = 0x40;
		sqe.dptr2 = (uint64_t)TCP_SGL_INCAPSULE << 56 | 512;
		memcpy(p.sqe, &sqe, 64);
		memcpy(buf, &p, 72);
		ch->flags = TCP_F_HDGST | TCP_F_DDGST;
		ch->hlen = 72;
		ch->pdo = 76;
		ch->plen = htole32(sizeof(buf));
		v = htole32(crc(buf, 72));
		memcpy(buf + 72, &v, 4);
		v = 0xdeadbeef;
		memcpy(buf + 76 + 512, &v, 4);
		xsend(c, buf, sizeof(buf));
		{
			uint8_t hdr[256], *data;
			uint32_t dlen;

			assert_int_equal(recv_pdu(c, hdr, &data, &dlen), 0);
			assert_int_equal(hdr[0], TCP_PDU_RSP);
			memcpy(&cqe, hdr + 8, 16);
			assert_int_equal(cqe.cid, 77);
			assert_status(cqe.status >> 1, NVEMU_SC_GENERIC(NVME_SC_TRAN_TPORT_ERROR));
		}
		cl_close(c);
	}
	check_alive(a);
	cl_close(a);
	srv_free(sv);
}

static void test_discovery(void **state)
{
	struct srv *sv = srv_new(true);
	struct cl *c = cl_open(sv);
	struct nvemu_cqe cqe;
	struct nvemu_sqe sqe;
	uint8_t buf[2048];
	struct nvmf_discovery_log *log = (void *)buf;
	char port[16];
	uint64_t v;

	(void)state;
	cl_icreq(c, false, false);
	assert_int_equal(cl_connect(c, NVME_DISC_SUBSYS_NAME, HOSTNQN, 0, 0xffff, 0, &cqe), 0);
	assert_int_equal(prop_set(c, NVEMU_REG_CC, 1), 0);
	assert_int_equal(prop_get(c, NVEMU_REG_CSTS, false, &v), 0);
	assert_int_equal(v & 1, 1);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_admin_get_log_page;
	sqe.cdw10 = NVME_LOG_LID_DISCOVER | ((sizeof(buf) / 4 - 1) << 16);
	assert_int_equal(cl_cmd(c, &sqe, NULL, 0, false, buf, sizeof(buf), NULL), 0);
	assert_int_equal(le64toh(log->numrec), 1);
	assert_string_equal(log->entries[0].subnqn, SUBNQN);
	assert_string_equal(log->entries[0].traddr, "127.0.0.1");
	snprintf(port, sizeof(port), "%u", sv->port);
	assert_string_equal(log->entries[0].trsvcid, port);
	assert_int_equal(log->entries[0].trtype, NVMF_TRTYPE_TCP);
	assert_int_equal(le16toh(log->entries[0].cntlid), 0xffff);
	/* Identify Controller says discovery */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_admin_identify;
	sqe.cdw10 = NVME_IDENTIFY_CNS_CTRL;
	{
		struct nvme_id_ctrl id;

		assert_int_equal(cl_cmd(c, &sqe, NULL, 0, false, &id, sizeof(id), NULL), 0);
		assert_int_equal(id.cntrltype, NVME_CTRL_CNTRLTYPE_DISCOVERY);
		assert_string_equal(id.subnqn, NVME_DISC_SUBSYS_NAME);
		/* a buffer too small for it */
		assert_int_equal(cl_cmd(c, &sqe, NULL, 0, false, &id, 512, NULL),
				 NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVME_SC_DNR);
	}
	cl_close(c);
	srv_free(sv);
}

static void test_keep_alive_timeout(void **state)
{
	struct srv *sv = srv_new(true);
	struct cl *c = cl_open(sv);
	struct nvemu_cqe cqe;
	uint8_t b;

	(void)state;
	cl_icreq(c, false, false);
	assert_int_equal(cl_connect(c, SUBNQN, HOSTNQN, 0, 0xffff, 300, &cqe), 0);
	assert_int_equal(prop_set(c, NVEMU_REG_CC, 1 | 6u << 16 | 4u << 20), 0);
	/* no Keep Alive: the target ends the association within KATO + slack (not 5 s) */
	{
		uint64_t t0 = nvemu_now_ns();

		assert_int_equal(recv(c->fd, &b, 1, 0), 0);
		assert_true(nvemu_now_ns() - t0 < 3000000000ull);
	}
	cl_close(c);
	srv_free(sv);
}

/*
 * The target goes away while a host is connected with an AER outstanding:
 * ending the association completes the AER into the connection being
 * closed, which must not free it under the closer's feet.
 */
static void test_destroy_with_host(void **state)
{
	struct srv *sv = srv_new(true);
	struct cl *c = cl_admin(sv, false);
	struct tcp_cmd_pdu pdu = {.ch = {.type = TCP_PDU_CMD}};
	struct nvemu_sqe sqe = {.opc = nvme_admin_async_event};
	uint8_t b;

	(void)state;
	sqe.cid = ++c->cid;
	sqe.flags = 0x40;
	sqe.dptr2 = (uint64_t)TCP_SGL_TRANSPORT << 56;
	sqe_to_wire(&sqe, pdu.sqe);
	send_pdu(c, &pdu, sizeof(pdu), NULL, 0);
	for (int i = 0; i < 100 && !nvemu_tcp_nr_assocs(sv->t, sv->s); i++)
		usleep(10000);
	assert_int_equal(nvemu_tcp_nr_assocs(sv->t, sv->s), 1);
	usleep(100000); /* the AER reaches the engine */
	/* As nvemud at shutdown: the whole target first, with the subsystem still exposed. */
	atomic_store(&sv->stop, 1);
	pthread_join(sv->th, NULL);
	nvemu_tcp_target_destroy(sv->t);
	nvemu_subsys_destroy(sv->s);
	free(sv);
	/* The host sees the connection close (possibly after the aborted AER's response). */
	while (recv(c->fd, &b, 1, 0) > 0)
		;
	cl_close(c);
}

/* Stop/restart the loop thread, so the test thread may call the target API. */
static void srv_pause(struct srv *sv)
{
	atomic_store(&sv->stop, 1);
	pthread_join(sv->th, NULL);
}

static void srv_resume(struct srv *sv)
{
	atomic_store(&sv->stop, 0);
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

static void test_escape(void **state)
{
	char out[64];

	(void)state;
	tcp_escape(out, sizeof(out), "a\nb\\\x7f\xc3\xa9z", 64);
	assert_string_equal(out, "a\\x0ab\\x5c\\x7f\\xc3\\xa9z");
	/* the source is bounded by its length, the result by the destination */
	tcp_escape(out, sizeof(out), "abcdef", 3);
	assert_string_equal(out, "abc");
	tcp_escape(out, 8, "\n\n\n\n\n\n", 6);
	assert_true(strlen(out) < 8);
	assert_string_equal(out, "\\x0a");
}

/*
 * Connect NQN fields that are too long, unterminated, not UTF-8 or hold
 * control characters are refused before anything is copied (a 255-byte
 * hostnqn overran the controller's 224-byte copy).
 */
static void test_connect_nqn_fields(void **state)
{
	struct srv *sv = srv_new(true);
	struct cl *c = cl_open(sv);
	struct nvmf_connect_data d;
	struct nvemu_cqe cqe;
	const char *prefix = "nqn.2014-08.org.nvmexpress:uuid:";
	static const struct {
		size_t len; /* 0: as the bytes say */
		const char *tail;
	} bad[] = {{255, ""},		{256, ""},	 {224, ""},
		   {0, "x\n"},		{0, "\xff"},	 {0, "\xe0\x80\x80"},
		   {0, "\xed\xa0\x80"}, {0, "\xc2\x9b"}, {0, "\x7f"}};

	(void)state;
	cl_icreq(c, false, false);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&d, 0, sizeof(d));
		d.cntlid = htole16(0xffff);
		strcpy(d.subsysnqn, SUBNQN);
		if (bad[i].len) {
			memset(d.hostnqn, 'a', bad[i].len > 256 ? 256 : bad[i].len);
			memcpy(d.hostnqn, prefix, strlen(prefix));
		} else {
			snprintf(d.hostnqn, sizeof(d.hostnqn), "%s%s", prefix, bad[i].tail);
		}
		assert_status(cl_connect_d(c, &d, 0, &cqe),
			      NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM));
		assert_true((cqe.status >> 1) & NVME_SC_DNR);
		assert_int_equal(cqe.dw0, (1u << 16) | 512);
		/* and the same in the subsystem NQN */
		memcpy(d.subsysnqn, d.hostnqn, sizeof(d.subsysnqn));
		strcpy(d.hostnqn, HOSTNQN);
		assert_status(cl_connect_d(c, &d, 0, &cqe),
			      NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM));
		assert_int_equal(cqe.dw0, (1u << 16) | 256);
	}
	assert_int_equal(nvemu_tcp_nr_assocs(sv->t, sv->s), 0);
	/* 223 bytes is the longest NQN */
	memset(&d, 0, sizeof(d));
	d.cntlid = htole16(0xffff);
	strcpy(d.subsysnqn, SUBNQN);
	memset(d.hostnqn, 'b', 223);
	memcpy(d.hostnqn, prefix, strlen(prefix));
	assert_int_equal(cl_connect_d(c, &d, 0, &cqe), 0);
	cl_close(c);
	srv_free(sv);
}

/* I/O queues join an association only with its cntlid, hostnqn and hostid. */
static void test_io_connect_hostid(void **state)
{
	struct srv *sv = srv_new(true);
	struct cl *a = cl_admin(sv, false), *io = cl_open(sv);
	struct nvmf_connect_data d;
	struct nvemu_cqe cqe;

	(void)state;
	cl_icreq(io, false, false);
	memset(&d, 0, sizeof(d)); /* cl_admin connected with a zero hostid */
	d.cntlid = htole16(a->cntlid);
	strcpy(d.subsysnqn, SUBNQN);
	strcpy(d.hostnqn, HOSTNQN);
	d.hostid[15] = 1;
	assert_status(cl_connect_d(io, &d, 1, &cqe), NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(cqe.dw0, (1u << 16) | 0); /* IATTR: Connect data, offset of HOSTID */
	d.hostid[15] = 0;
	assert_int_equal(cl_connect_d(io, &d, 1, &cqe), 0);
	cl_close(io);
	cl_close(a);
	srv_free(sv);
}

/* Removing a host from the access list ends its live associations. */
static void test_remove_host_disconnects(void **state)
{
	struct srv *sv = srv_new(false);
	struct cl *c = cl_open(sv);
	struct nvemu_cqe cqe;
	struct nvemu_error err = {0};
	uint8_t b;

	(void)state;
	cl_icreq(c, false, false);
	assert_int_equal(cl_connect(c, SUBNQN, "nqn.2024-01.io.nvemu:host-ok", 0, 0xffff, 0, &cqe),
			 0);
	srv_pause(sv);
	assert_int_equal(nvemu_tcp_nr_assocs(sv->t, sv->s), 1);
	assert_int_equal(nvemu_tcp_remove_host(sv->t, sv->s, "nqn.2024-01.io.nvemu:host-ok", &err),
			 0);
	assert_int_equal(nvemu_tcp_nr_assocs(sv->t, sv->s), 0);
	srv_resume(sv);
	assert_int_equal(recv(c->fd, &b, 1, 0), 0);
	cl_close(c);
	srv_free(sv);
}

/*
 * KATO 0 disables Keep Alive; a host that vanishes is still found, by TCP
 * keep-alive probes on every accepted socket.
 */
static void test_socket_keepalive(void **state)
{
	struct srv *sv = srv_new(true);
	struct cl *c = cl_open(sv);
	int v = 0;
	socklen_t l = sizeof(v);

	(void)state;
	cl_icreq(c, false, false);
	srv_pause(sv);
	assert_false(LIST_EMPTY(&sv->t->conns));
	assert_int_equal(getsockopt(LIST_FIRST(&sv->t->conns)->fd, SOL_SOCKET, SO_KEEPALIVE, &v, &l), 0);
	assert_int_equal(v, 1);
	assert_int_equal(getsockopt(LIST_FIRST(&sv->t->conns)->fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &l), 0);
	assert_int_equal(v, 60);
	assert_int_equal(getsockopt(LIST_FIRST(&sv->t->conns)->fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &l), 0);
	assert_int_equal(v, 3);
	srv_resume(sv);
	cl_close(c);
	srv_free(sv);
}

/* The connection of I/O queue qid (the loop thread paused). */
static struct tcp_conn *io_conn(struct srv *sv, uint16_t qid)
{
	struct tcp_conn *c;

	LIST_FOREACH(c, &sv->t->conns, link)
		if (c->sq && tcp_conn_qid(c) == qid)
			return c;
	return NULL;
}

/*
 * Large data buffers are page aligned, go back to the queue's pool after
 * the command and serve the next large command (read or write) without a
 * new allocation; the pool empties after 2 s unused.
 */
static void test_buffer_pool(void **state)
{
	struct srv *sv = srv_new(true);
	const uint32_t len = 256u << 10;
	uint8_t *w = malloc(len), *r = malloc(len), *p;
	struct cl *a, *io;
	struct nvemu_cqe cqe;
	struct nvemu_sqe sqe;
	struct tcp_conn *c;
	uint32_t cap;

	(void)state;
	assert_non_null(w);
	assert_non_null(r);
	for (uint32_t i = 0; i < len; i++)
		w[i] = (uint8_t)(i * 13 + (i >> 12));
	a = cl_admin(sv, false);
	io = cl_open(sv);
	cl_icreq(io, false, false);
	assert_int_equal(cl_connect(io, SUBNQN, HOSTNQN, 1, a->cntlid, 0, &cqe), 0);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_cmd_write;
	sqe.nsid = 1;
	sqe.cdw12 = len / 512 - 1;
	assert_int_equal(cl_cmd(io, &sqe, w, len, false, NULL, 0, NULL), 0);
	assert_int_equal(io->r2ts, 1);
	srv_pause(sv);
	c = io_conn(sv, 1);
	assert_non_null(c);
	assert_int_equal(c->nr_pool, 1);
	p = c->pool[0].p;
	cap = c->pool[0].cap;
	assert_true(cap >= len);
	assert_int_equal((uintptr_t)p % 4096, 0);
	assert_int_equal(c->big_bytes, cap);
	srv_resume(sv);

	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_cmd_read;
	sqe.nsid = 1;
	sqe.cdw12 = len / 512 - 1;
	memset(r, 0, len);
	assert_int_equal(cl_cmd(io, &sqe, NULL, 0, false, r, len, NULL), 0);
	assert_memory_equal(r, w, len);
	srv_pause(sv);
	/* The same buffer served the read: nothing new was allocated. */
	assert_int_equal(c->nr_pool, 1);
	assert_ptr_equal(c->pool[0].p, p);
	assert_int_equal(c->big_bytes, cap);
	/* Unused for 2 s: freed by the tick. */
	c->pool_used_ns = nvemu_now_ns() - 3000000000ull;
	nvemu_tcp_target_tick(sv->t);
	assert_int_equal(c->nr_pool, 0);
	assert_int_equal(c->big_bytes, 0);
	srv_resume(sv);

	/* A smaller large write after that: a fresh aligned buffer, pooled again. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_cmd_write;
	sqe.nsid = 1;
	sqe.cdw10 = 1024;
	sqe.cdw12 = (64u << 10) / 512 - 1;
	assert_int_equal(cl_cmd(io, &sqe, w, 64u << 10, false, NULL, 0, NULL), 0);
	srv_pause(sv);
	assert_int_equal(c->nr_pool, 1);
	assert_int_equal((uintptr_t)c->pool[0].p % 4096, 0);
	assert_true(c->big_bytes <= sv->t->p.queue_buf_max);
	srv_resume(sv);
	cl_close(io);
	cl_close(a);
	srv_free(sv);
	free(w);
	free(r);
}

/* Set Features Number of Queues, then Connect that many I/O queues. */
static void connect_io_queues(struct srv *sv, unsigned want, unsigned expect)
{
	struct cl *a = cl_admin(sv, false), *extra;
	struct cl **io = calloc(expect, sizeof(*io));
	struct nvemu_sqe sqe;
	struct nvemu_cqe cqe;

	assert_non_null(io);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = nvme_admin_set_features;
	sqe.cdw10 = NVME_FEAT_FID_NUM_QUEUES;
	sqe.cdw11 = (want - 1) | (want - 1) << 16;
	assert_int_equal(cl_cmd(a, &sqe, NULL, 0, false, NULL, 0, &cqe), 0);
	assert_int_equal(cqe.dw0, (expect - 1) | (expect - 1) << 16);
	for (unsigned q = 1; q <= expect; q++) {
		io[q - 1] = cl_open(sv);
		cl_icreq(io[q - 1], false, false);
		assert_int_equal(cl_connect(io[q - 1], SUBNQN, HOSTNQN, (uint16_t)q, a->cntlid, 0,
					    &cqe),
				 0);
	}
	/* One past what the host was granted: refused, naming QID. */
	extra = cl_open(sv);
	cl_icreq(extra, false, false);
	assert_status(cl_connect(extra, SUBNQN, HOSTNQN, (uint16_t)(expect + 1), a->cntlid, 0,
				 &cqe),
		      NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM));
	cl_close(extra);
	srv_pause(sv);
	{
		struct nvemu_tcp_assoc_info ai;

		assert_int_equal(nvemu_tcp_get_assoc(sv->t, sv->s, 0, &ai), 0);
		assert_int_equal(ai.nr_io_queues, expect);
	}
	srv_resume(sv);
	for (unsigned q = 0; q < expect; q++)
		cl_close(io[q]);
	free(io);
	cl_close(a);
}

/* By default a host gets 128 I/O queues (Linux asks one per CPU). */
static void test_io_queue_count(void **state)
{
	struct srv *sv = srv_new_q(true, 0);

	(void)state;
	connect_io_queues(sv, 128, 128);
	srv_free(sv);
	sv = srv_new_q(true, 32);
	connect_io_queues(sv, 200, 32);
	srv_free(sv);
}

/* ---- in-process connections (no socket) */

/* Fails the next tx_item allocations (calloc is wrapped for this test). */
static atomic_int fail_tx_alloc;
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
	if (n == 1 && size == sizeof(struct tx_item) && atomic_load(&fail_tx_alloc) > 0) {
		atomic_fetch_sub(&fail_tx_alloc, 1);
		return NULL;
	}
	return __real_calloc(n, size);
}

static void feed_pdu(struct tcp_conn *c, void *hdr, uint8_t hlen, const void *data, uint32_t dlen)
{
	uint8_t buf[2048];
	struct tcp_ch *ch = hdr;

	assert_true(hlen + dlen <= sizeof(buf));
	ch->hlen = hlen;
	ch->pdo = dlen ? hlen : 0;
	ch->plen = htole32(hlen + dlen);
	memcpy(buf, hdr, hlen);
	if (dlen)
		memcpy(buf + hlen, data, dlen);
	tcp_conn_rx(c, buf, hlen + dlen);
}

static void feed_cmd(struct tcp_conn *c, struct nvemu_sqe *sqe, const void *data, uint32_t dlen)
{
	struct tcp_cmd_pdu pdu = {.ch = {.type = TCP_PDU_CMD}};

	sqe->flags = 0x40;
	sqe->dptr2 = (uint64_t)(dlen ? TCP_SGL_INCAPSULE : TCP_SGL_TRANSPORT) << 56 | dlen;
	sqe_to_wire(sqe, pdu.sqe);
	feed_pdu(c, &pdu, sizeof(pdu), data, dlen);
}

/*
 * A completion that cannot be queued (out of memory) is not dropped
 * silently: the connection ends, so the host sees the failure.
 */
static void test_response_alloc_failure(void **state)
{
	struct srv *sv = calloc(1, sizeof(*sv));
	struct nvemu_subsys_params sp;
	struct nvemu_tcp_target_params tp;
	struct nvemu_error err = {0};
	struct tcp_icreq ic = {.ch = {.type = TCP_PDU_ICREQ}};
	struct nvmf_connect_data d;
	struct nvemu_sqe sqe;
	struct tcp_conn *c;
	uint32_t nsid;

	(void)state;
	assert_non_null(sv);
	nvemu_subsys_params_init(&sp);
	sp.nqn = SUBNQN;
	sp.serial = SERIAL;
	assert_int_equal(nvemu_subsys_create(&sp, &sv->s, &err), 0);
	assert_int_equal(nvemu_subsys_add_ns(sv->s, 4096, &nsid, &err), 0);
	nvemu_tcp_target_params_init(&tp);
	assert_int_equal(nvemu_tcp_target_create(&tp, &sv->t, &err), 0);
	assert_int_equal(nvemu_tcp_add_listener(sv->t, sv->s, "127.0.0.1", "0", 0, &err), 0);
	c = tcp_conn_new(sv->t, NULL, -1);
	assert_non_null(c);
	feed_pdu(c, &ic, sizeof(ic), NULL, 0);
	memset(&d, 0, sizeof(d));
	d.cntlid = htole16(0xffff);
	strcpy(d.subsysnqn, SUBNQN);
	strcpy(d.hostnqn, HOSTNQN);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = 0x7f;
	sqe.nsid = nvme_fabrics_type_connect;
	sqe.cdw11 = 31;
	feed_cmd(c, &sqe, &d, sizeof(d));
	assert_int_equal(nvemu_tcp_nr_assocs(sv->t, sv->s), 1);
	/* Property Get CSTS whose response cannot be allocated (no sent item to reuse) */
	while (!STAILQ_EMPTY(&c->tx_free)) {
		struct tx_item *it = STAILQ_FIRST(&c->tx_free);

		STAILQ_REMOVE_HEAD(&c->tx_free, link);
		free(it);
	}
	c->nr_tx_free = 0;
	atomic_store(&fail_tx_alloc, 1);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = 0x7f;
	sqe.nsid = nvme_fabrics_type_property_get;
	sqe.cdw11 = NVEMU_REG_CSTS;
	feed_cmd(c, &sqe, NULL, 0);
	assert_int_equal(atomic_load(&fail_tx_alloc), 0);
	nvemu_tcp_target_tick(sv->t); /* c is freed here */
	assert_int_equal(nvemu_tcp_nr_assocs(sv->t, sv->s), 0);
	assert_true(LIST_EMPTY(&sv->t->conns));
	nvemu_tcp_remove_subsys(sv->t, sv->s);
	nvemu_tcp_target_destroy(sv->t);
	nvemu_subsys_destroy(sv->s);
	free(sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_admin_and_io),
		cmocka_unit_test(test_buffer_pool),
		cmocka_unit_test(test_io_queue_count),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_keep_alive_timeout),
		cmocka_unit_test(test_destroy_with_host),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_connect_nqn_fields),
		cmocka_unit_test(test_io_connect_hostid),
		cmocka_unit_test(test_remove_host_disconnects),
		cmocka_unit_test(test_socket_keepalive),
		cmocka_unit_test(test_response_alloc_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * MCTP endpoint: control messages byte for byte (DSP0236), reassembly and its
 * drops, fragmentation with the transmission unit, asynchronous replies, and
 * the router's wire protocol over a real unix socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/mctp.h>

#include <nvemu/mctp.h>

#include "fd-exhaust.h"
#include "mgmt/mctp/mctp-internal.h"

#define HOST 0x08
#define EID  0x09

/* A link that records what the endpoint sends. */
struct cap {
	struct nvemu_mctp_link link;
	int n;
	size_t len[80];
	uint8_t pkt[80][NVEMU_MCTP_HDR_LEN + NVEMU_MCTP_MAX_MTU];
};

static int cap_tx(void *ctx, const uint8_t *pkt, size_t len)
{
	struct cap *c = ctx;

	assert_true(c->n < 80);
	memcpy(c->pkt[c->n], pkt, len);
	c->len[c->n++] = len;
	return 0;
}

/* A handler that keeps the last message, replying now (echo) or later. */
struct hctx {
	int calls;
	size_t len;
	uint8_t msg[NVEMU_MCTP_MAX_MSG];
	bool defer;
	size_t reply_len;
	struct nvemu_mctp_reply *reply;
};

static void handler(void *ctx, const uint8_t *msg, size_t len, struct nvemu_mctp_reply *reply)
{
	struct hctx *h = ctx;
	uint8_t rsp[NVEMU_MCTP_MAX_MSG];

	h->calls++;
	h->len = len;
	memcpy(h->msg, msg, len);
	if (h->defer) {
		h->reply = reply;
		return;
	}
	memset(rsp, 0xa5, sizeof(rsp));
	rsp[0] = msg[0];
	assert_int_equal(nvemu_mctp_reply_send(reply, rsp, h->reply_len ? h->reply_len : 1), 0);
}

struct env {
	struct nvemu_mctp_ep *ep;
	struct cap *cap;
	struct hctx *h;
};

static int setup(void **state)
{
	struct nvemu_mctp_ep_params p;
	struct env *e = calloc(1, sizeof(*e));

	nvemu_mctp_ep_params_init(&p);
	p.eid = EID;
	for (int i = 0; i < 16; i++)
		p.uuid[i] = 0x10 + i;
	assert_int_equal(nvemu_mctp_ep_create(&p, &e->ep, NULL), 0);
	e->cap = calloc(1, sizeof(*e->cap));
	e->cap->link.tx_packet = cap_tx;
	e->cap->link.ctx = e->cap;
	e->h = calloc(1, sizeof(*e->h));
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	nvemu_mctp_ep_destroy(e->ep);
	free(e->cap);
	free(e->h);
	free(e);
	return 0;
}

/* One single-packet request from HOST with tag owner set. */
static void send1(struct env *e, uint8_t dest, uint8_t tag, const uint8_t *msg, size_t len)
{
	uint8_t pkt[NVEMU_MCTP_HDR_LEN + 256] = {0x01, dest, HOST,
						 NVEMU_MCTP_HDR_SOM | NVEMU_MCTP_HDR_EOM |
							 NVEMU_MCTP_HDR_TO | tag};

	memcpy(pkt + 4, msg, len);
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, 4 + len);
}

static void expect_pkt(struct cap *c, int i, const uint8_t *want, size_t len)
{
	assert_true(i < c->n);
	assert_int_equal(c->len[i], len);
	assert_memory_equal(c->pkt[i], want, len);
}

static void ctrl_get_eid(void **state)
{
	struct env *e = *state;
	const uint8_t req[] = {0x00, 0x81, 0x02};
	/* DSP0236 12.4: the configured EID is static, and the present one matches it (10b). */
	const uint8_t rsp[] = {0x01, HOST, EID, 0xc0, 0x00, 0x01, 0x02, 0x00, EID, 0x02, 0x00};
	/* DSP0236 12.1: a request longer than the command's is Invalid Length. */
	const uint8_t longer[] = {0x00, 0x82, 0x02, 0x00};
	const uint8_t r_longer[] = {0x01, HOST, EID, 0xc0, 0x00, 0x02, 0x02, 0x03};

	send1(e, EID, 0, req, sizeof(req));
	assert_int_equal(e->cap->n, 1);
	expect_pkt(e->cap, 0, rsp, sizeof(rsp));
	send1(e, EID, 0, longer, sizeof(longer));
	expect_pkt(e->cap, 1, r_longer, sizeof(r_longer));
}

/* DSP0236 12.2: control messages never carry IC; one with it set is dropped unanswered. */
static void ctrl_ic_bit_dropped(void **state)
{
	struct env *e = *state;
	const uint8_t req[] = {0x80, 0x81, 0x02};

	send1(e, EID, 0, req, sizeof(req));
	assert_int_equal(e->cap->n, 0);
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_type, 1);
}

static void ctrl_get_eid_null(void **state)
{
	struct env *e = *state;
	const uint8_t req[] = {0x00, 0x83, 0x02};
	/* Sent to the null EID as a bus owner does, answered from the real EID, tag kept. */
	const uint8_t rsp[] = {0x01, HOST, EID, 0xc5, 0x00, 0x03, 0x02, 0x00, EID, 0x02, 0x00};
	const uint8_t rsp0[] = {0x01, HOST, 0x00, 0xc5, 0x00, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00};

	send1(e, NVEMU_MCTP_EID_NULL, 5, req, sizeof(req));
	expect_pkt(e->cap, 0, rsp, sizeof(rsp));
	/* An endpoint without an EID yet answers from the null EID. */
	assert_int_equal(nvemu_mctp_ep_set_eid(e->ep, 0, NULL), 0);
	send1(e, NVEMU_MCTP_EID_NULL, 5, req, sizeof(req));
	expect_pkt(e->cap, 1, rsp0, sizeof(rsp0));
	/* ... and ignores its old one. */
	send1(e, EID, 5, req, sizeof(req));
	assert_int_equal(e->cap->n, 2);
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_header, 1);
}

static void ctrl_set_eid(void **state)
{
	struct env *e = *state;
	const uint8_t set[] = {0x00, 0x82, 0x01, 0x00, 0x20};
	const uint8_t rsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x02, 0x01, 0x00, 0x00, 0x20, 0x00};
	const uint8_t get[] = {0x00, 0x83, 0x02};
	/* Assigned over the configured one: static, present value differs (11b). */
	const uint8_t grsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x03, 0x02, 0x00, 0x20, 0x03, 0x00};
	const uint8_t bad_eid[] = {0x00, 0x84, 0x01, 0x00, 0xff};
	const uint8_t bad_rsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x04, 0x01, 0x02};
	const uint8_t null_eid[] = {0x00, 0x85, 0x01, 0x01, 0x00};
	const uint8_t null_rsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x05, 0x01, 0x02};
	const uint8_t short_req[] = {0x00, 0x87, 0x01, 0x00};
	const uint8_t short_rsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x07, 0x01, 0x03};
	/* DSP0236 8.2: EIDs 01h-07h are reserved. */
	const uint8_t reserved[] = {0x00, 0x88, 0x01, 0x00, 0x07};
	const uint8_t reserved_rsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x08, 0x01, 0x02};
	const uint8_t longer[] = {0x00, 0x89, 0x01, 0x00, 0x21, 0x00};
	const uint8_t longer_rsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x09, 0x01, 0x03};
	/* An assignment through the broadcast EID is refused (ERROR). */
	const uint8_t bcast[] = {0x00, 0x8a, 0x01, 0x00, 0x22};
	const uint8_t bcast_rsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x0a, 0x01, 0x01};
	/* Reset static EID goes back to the configured EID. */
	const uint8_t reset_static[] = {0x00, 0x86, 0x01, 0x02, 0x30};
	const uint8_t reset_rsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x06, 0x01, 0x00, 0x00, EID, 0x00};

	/* As mctpd assigns EIDs: Set Endpoint ID to the null EID. */
	send1(e, 0, 1, set, sizeof(set));
	expect_pkt(e->cap, 0, rsp, sizeof(rsp));
	assert_int_equal(nvemu_mctp_ep_eid(e->ep), 0x20);
	send1(e, 0x20, 1, get, sizeof(get));
	expect_pkt(e->cap, 1, grsp, sizeof(grsp));
	send1(e, 0x20, 1, bad_eid, sizeof(bad_eid));
	expect_pkt(e->cap, 2, bad_rsp, sizeof(bad_rsp));
	send1(e, 0x20, 1, null_eid, sizeof(null_eid));
	expect_pkt(e->cap, 3, null_rsp, sizeof(null_rsp));
	send1(e, 0x20, 1, short_req, sizeof(short_req));
	expect_pkt(e->cap, 4, short_rsp, sizeof(short_rsp));
	send1(e, 0x20, 1, reserved, sizeof(reserved));
	expect_pkt(e->cap, 5, reserved_rsp, sizeof(reserved_rsp));
	send1(e, 0x20, 1, longer, sizeof(longer));
	expect_pkt(e->cap, 6, longer_rsp, sizeof(longer_rsp));
	send1(e, NVEMU_MCTP_EID_BCAST, 1, bcast, sizeof(bcast));
	expect_pkt(e->cap, 7, bcast_rsp, sizeof(bcast_rsp));
	assert_int_equal(nvemu_mctp_ep_eid(e->ep), 0x20);
	/* The old EID no longer reaches it. */
	send1(e, EID, 1, get, sizeof(get));
	assert_int_equal(e->cap->n, 8);
	send1(e, 0x20, 1, reset_static, sizeof(reset_static));
	assert_int_equal(e->cap->n, 9);
	/* The reply comes from the EID in force when the request arrived. */
	assert_memory_equal(e->cap->pkt[8] + 4, reset_rsp + 4, sizeof(reset_rsp) - 4);
	assert_int_equal(nvemu_mctp_ep_eid(e->ep), EID);
}

/* An endpoint configured without an EID reports a dynamic one and has no static to reset to. */
static void ctrl_dynamic_eid(void **state)
{
	struct env *e = *state;
	const uint8_t set[] = {0x00, 0x82, 0x01, 0x00, 0x20};
	const uint8_t get[] = {0x00, 0x83, 0x02};
	const uint8_t grsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x03, 0x02, 0x00, 0x20, 0x00, 0x00};
	const uint8_t reset_static[] = {0x00, 0x86, 0x01, 0x02, 0x00};
	const uint8_t reset_rsp[] = {0x01, HOST, 0x20, 0xc1, 0x00, 0x06, 0x01, 0x02};

	assert_int_equal(nvemu_mctp_ep_set_eid(e->ep, 0, NULL), 0);
	send1(e, 0, 1, set, sizeof(set));
	send1(e, 0x20, 1, get, sizeof(get));
	expect_pkt(e->cap, 1, grsp, sizeof(grsp));
	send1(e, 0x20, 1, reset_static, sizeof(reset_static));
	expect_pkt(e->cap, 2, reset_rsp, sizeof(reset_rsp));
}

static void ctrl_get_uuid(void **state)
{
	struct env *e = *state;
	const uint8_t req[] = {0x00, 0x80, 0x03};
	uint8_t rsp[4 + 20] = {0x01, HOST, EID, 0xc2, 0x00, 0x00, 0x03, 0x00};

	for (int i = 0; i < 16; i++)
		rsp[8 + i] = 0x10 + i;
	send1(e, EID, 2, req, sizeof(req));
	expect_pkt(e->cap, 0, rsp, sizeof(rsp));
}

static void ctrl_version_and_types(void **state)
{
	struct env *e = *state;
	const uint8_t ver_base[] = {0x00, 0x81, 0x04, 0xff};
	/* DSP0236 12.6: every compatible version, 1.0 to 1.3.1. */
	const uint8_t r_base[] = {0x01, HOST, EID,  0xc0, 0x00, 0x01, 0x04, 0x00, 0x04,
				  0xf1, 0xf0, 0xff, 0x00, 0xf1, 0xf1, 0xff, 0x00, 0xf1,
				  0xf2, 0xff, 0x00, 0xf1, 0xf3, 0xf1, 0x00};
	const uint8_t ver_ctrl[] = {0x00, 0x81, 0x04, 0x00};
	const uint8_t ver_mi[] = {0x00, 0x82, 0x04, 0x04};
	const uint8_t r_mi_no[] = {0x01, HOST, EID, 0xc0, 0x00, 0x02, 0x04, 0x80};
	const uint8_t r_mi[] = {0x01, HOST, EID,  0xc0, 0x00, 0x02, 0x04,
				0x00, 0x01, 0xf1, 0xf2, 0xf0, 0x00};
	const uint8_t ver_short[] = {0x00, 0x83, 0x04};
	const uint8_t r_short[] = {0x01, HOST, EID, 0xc0, 0x00, 0x03, 0x04, 0x03};
	const uint8_t types[] = {0x00, 0x84, 0x05};
	const uint8_t r_types0[] = {0x01, HOST, EID, 0xc0, 0x00, 0x04, 0x05, 0x00, 0x01, 0x00};
	/* What mctpd looks for to find an NVMe-MI endpoint (seed 001). */
	const uint8_t r_types[] = {0x01, HOST, EID, 0xc0, 0x00, 0x04, 0x05, 0x00, 0x02, 0x00, 0x04};
	const uint8_t unsup[] = {0x00, 0x85, 0x0a};
	const uint8_t r_unsup[] = {0x01, HOST, EID, 0xc0, 0x00, 0x05, 0x0a, 0x05};

	send1(e, EID, 0, ver_base, sizeof(ver_base));
	expect_pkt(e->cap, 0, r_base, sizeof(r_base));
	send1(e, EID, 0, ver_ctrl, sizeof(ver_ctrl));
	expect_pkt(e->cap, 1, r_base, sizeof(r_base));
	send1(e, EID, 0, ver_mi, sizeof(ver_mi));
	expect_pkt(e->cap, 2, r_mi_no, sizeof(r_mi_no));
	send1(e, EID, 0, types, sizeof(types));
	expect_pkt(e->cap, 3, r_types0, sizeof(r_types0));

	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, NVEMU_MCTP_TYPE_NVME_MI, handler, e->h),
			 0);
	send1(e, EID, 0, ver_mi, sizeof(ver_mi));
	expect_pkt(e->cap, 4, r_mi, sizeof(r_mi));
	send1(e, EID, 0, types, sizeof(types));
	expect_pkt(e->cap, 5, r_types, sizeof(r_types));
	send1(e, EID, 0, ver_short, sizeof(ver_short));
	expect_pkt(e->cap, 6, r_short, sizeof(r_short));
	send1(e, EID, 0, unsup, sizeof(unsup));
	expect_pkt(e->cap, 7, r_unsup, sizeof(r_unsup));
	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0, handler, e->h), -EINVAL);
	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x80, handler, e->h), -EINVAL);
}

static void ctrl_no_reply(void **state)
{
	struct env *e = *state;
	const uint8_t rsp_msg[] = {0x00, 0x01, 0x02, 0x00, 0x09}; /* Rq clear: a response */
	const uint8_t dgram[] = {0x00, 0xc1, 0x02};		  /* datagram */
	const uint8_t tiny[] = {0x00, 0x81};

	send1(e, EID, 0, rsp_msg, sizeof(rsp_msg));
	send1(e, EID, 0, dgram, sizeof(dgram));
	send1(e, EID, 0, tiny, sizeof(tiny));
	assert_int_equal(e->cap->n, 0);
}

static void bad_packets(void **state)
{
	struct env *e = *state;
	const uint8_t get[] = {0x00, 0x81, 0x02};
	uint8_t pkt[8] = {0x02, EID, HOST, 0xc8, 0x00, 0x81, 0x02};
	const struct nvemu_mctp_ep_stats *st = nvemu_mctp_ep_stats(e->ep);

	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, 7); /* header version 2 */
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, 3); /* shorter than a header */
	send1(e, 0x33, 0, get, sizeof(get));		/* someone else's EID */
	assert_int_equal(st->drop_header, 3);
	/* A response (TO clear): the endpoint never asked anything. */
	pkt[0] = 0x01;
	pkt[3] = 0xc0;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, 7);
	assert_int_equal(st->drop_tag, 1);
	/* No handler for type 0x7e; NVMe-MI to the null EID. */
	const uint8_t t7e[] = {0x7e, 1, 2};
	const uint8_t mi[] = {0x84, 1, 2};

	send1(e, EID, 0, t7e, sizeof(t7e));
	assert_int_equal(st->drop_type, 1);
	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 4, handler, e->h), 0);
	send1(e, 0, 0, mi, sizeof(mi));
	assert_int_equal(st->drop_header, 4);
	assert_int_equal(e->h->calls, 0);
	/* A packet with a header but no payload is no message. */
	pkt[3] = 0xc8;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, 4);
	assert_int_equal(e->cap->n, 0);
	assert_int_equal(e->h->calls, 0);
}

/* Multi-packet message: n packets of sizes[i] payload, sequence from seq0. */
static void send_frag(struct env *e, uint8_t tag, const size_t *sizes, int n, const int *seqs,
		      uint8_t fill)
{
	for (int i = 0; i < n; i++) {
		uint8_t pkt[NVEMU_MCTP_HDR_LEN + NVEMU_MCTP_MAX_MTU];

		pkt[0] = 0x01;
		pkt[1] = EID;
		pkt[2] = HOST;
		pkt[3] = NVEMU_MCTP_HDR_TO | tag | (seqs[i] & 3) << 4;
		if (i == 0)
			pkt[3] |= NVEMU_MCTP_HDR_SOM;
		if (i == n - 1)
			pkt[3] |= NVEMU_MCTP_HDR_EOM;
		memset(pkt + 4, fill + i, sizes[i]);
		if (i == 0)
			pkt[4] = 0x7e; /* message type */
		nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, 4 + sizes[i]);
	}
}

static void reasm_multi(void **state)
{
	struct env *e = *state;
	const size_t sz[] = {64, 64, 64, 64, 64, 10};
	const int seq[] = {0, 1, 2, 3, 0, 1}; /* wraps modulo 4 */

	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x7e, handler, e->h), 0);
	send_frag(e, 3, sz, 6, seq, 0x40);
	assert_int_equal(e->h->calls, 1);
	assert_int_equal(e->h->len, 5 * 64 + 10);
	assert_int_equal(e->h->msg[0], 0x7e);
	assert_int_equal(e->h->msg[1], 0x40);
	assert_int_equal(e->h->msg[64], 0x41);
	assert_int_equal(e->h->msg[5 * 64 + 9], 0x45);
	/* The echo reply goes back with tag 3, TO clear. */
	assert_int_equal(e->cap->n, 1);
	assert_int_equal(e->cap->pkt[0][3], NVEMU_MCTP_HDR_SOM | NVEMU_MCTP_HDR_EOM | 3);
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->rx_messages, 1);
}

static void reasm_out_of_seq(void **state)
{
	struct env *e = *state;
	const size_t sz[] = {64, 64, 10};
	const int skip[] = {0, 2, 3};
	const int dup[] = {0, 0, 1};
	const int good[] = {0, 1, 2};

	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x7e, handler, e->h), 0);
	send_frag(e, 1, sz, 3, skip, 0);
	assert_int_equal(e->h->calls, 0);
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_seq, 1);
	/* After the bad packet the message is abandoned: the end is unexpected. */
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_tag, 1);
	send_frag(e, 1, sz, 3, dup, 0);
	assert_int_equal(e->h->calls, 0);
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_seq, 2);
	/* The same tag works again once the sequence is right. */
	send_frag(e, 1, sz, 3, good, 0);
	assert_int_equal(e->h->calls, 1);
	assert_int_equal(e->h->len, 138);
}

static void reasm_unexpected_tag(void **state)
{
	struct env *e = *state;
	uint8_t pkt[4 + 64] = {0x01, EID, HOST, NVEMU_MCTP_HDR_TO | 2 | 1 << 4};

	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x7e, handler, e->h), 0);
	/* A middle and an end packet with no start. */
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, sizeof(pkt));
	pkt[3] |= NVEMU_MCTP_HDR_EOM;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, sizeof(pkt));
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_tag, 2);
	/* A start with tag 2, then the end under tag 4: tag 4 was never started. */
	pkt[3] = NVEMU_MCTP_HDR_TO | 2 | NVEMU_MCTP_HDR_SOM;
	pkt[4] = 0x7e;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, sizeof(pkt));
	pkt[3] = NVEMU_MCTP_HDR_TO | 4 | 1 << 4 | NVEMU_MCTP_HDR_EOM;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, 4 + 10);
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_tag, 3);
	assert_int_equal(e->h->calls, 0);
	/* Same tag from another source EID is another message. */
	pkt[2] = 0x22;
	pkt[3] = NVEMU_MCTP_HDR_TO | 2 | 1 << 4 | NVEMU_MCTP_HDR_EOM;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, pkt, 4 + 10);
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_tag, 4);
	assert_int_equal(e->h->calls, 0);
}

static void reasm_interleaved(void **state)
{
	struct env *e = *state;
	uint8_t a[4 + 64] = {0x01, EID, HOST, 0x80 | 0x08 | 1};
	uint8_t b[4 + 64] = {0x01, EID, HOST, 0x80 | 0x08 | 2};

	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x7e, handler, e->h), 0);
	memset(a + 4, 0xaa, 64);
	memset(b + 4, 0xbb, 64);
	a[4] = b[4] = 0x7e;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, a, sizeof(a));
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, b, sizeof(b));
	a[3] = 0x40 | 0x08 | 1 | 1 << 4;
	b[3] = 0x40 | 0x08 | 2 | 1 << 4;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, b, 4 + 5);
	assert_int_equal(e->h->calls, 1);
	assert_int_equal(e->h->len, 69);
	assert_int_equal(e->h->msg[68], 0xbb);
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, a, 4 + 7);
	assert_int_equal(e->h->calls, 2);
	assert_int_equal(e->h->len, 71);
	assert_int_equal(e->h->msg[70], 0xaa);
}

/*
 * Packets that arrive while a handler runs (a link looping back) start new
 * messages; they must never take the slot whose buffer the handler reads.
 */
struct nest {
	struct env *e;
	int calls;
	bool intact;
};

static void nesting_handler(void *ctx, const uint8_t *msg, size_t len,
			    struct nvemu_mctp_reply *reply)
{
	struct nest *n = ctx;
	uint8_t copy[70];

	n->calls++;
	assert_int_equal(len, sizeof(copy));
	memcpy(copy, msg, len);
	/* More message starts than there are slots, from other sources. */
	for (int i = 0; i < 12; i++) {
		uint8_t p[4 + 64] = {0x01, EID, (uint8_t)(0x20 + i), 0x80 | 0x08 | 3};

		memset(p + 4, 0x11 * (i + 1), 64);
		p[4] = 0x7e;
		nvemu_mctp_ep_rx(n->e->ep, &n->e->cap->link, p, sizeof(p));
	}
	n->intact = !memcmp(copy, msg, len);
	nvemu_mctp_reply_drop(reply);
}

static void reasm_busy_slot_kept(void **state)
{
	struct env *e = *state;
	struct nest n = {.e = e};
	uint8_t a[4 + 64] = {0x01, EID, HOST, 0x80 | 0x08 | 1};

	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x7e, nesting_handler, &n), 0);
	memset(a + 4, 0xaa, 64);
	a[4] = 0x7e;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, a, sizeof(a));
	a[3] = 0x40 | 0x08 | 1 | 1 << 4;
	nvemu_mctp_ep_rx(e->ep, &e->cap->link, a, 4 + 6);
	assert_int_equal(n.calls, 1);
	assert_true(n.intact);
}

static void reasm_oversized(void **state)
{
	struct env *e = *state;
	size_t sz[130];
	int seq[130];
	int n = NVEMU_MCTP_MAX_MSG / 64 + 1;

	assert_true(n <= 130);
	for (int i = 0; i < n; i++) {
		sz[i] = 64;
		seq[i] = i;
	}
	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x7e, handler, e->h), 0);
	send_frag(e, 0, sz, n, seq, 0);
	assert_int_equal(e->h->calls, 0);
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_size, 1);
	/* Exactly the limit is fine. */
	send_frag(e, 0, sz, n - 1, seq, 0);
	assert_int_equal(e->h->calls, 1);
	assert_int_equal(e->h->len, NVEMU_MCTP_MAX_MSG);
}

static void check_frags(struct cap *c, size_t total, unsigned int mtu, uint8_t tag)
{
	int want = (total + mtu - 1) / mtu;
	size_t got = 0;

	assert_int_equal(c->n, want);
	for (int i = 0; i < c->n; i++) {
		uint8_t fl = c->pkt[i][3];

		assert_int_equal(c->pkt[i][0], 0x01);
		assert_int_equal(c->pkt[i][1], HOST);
		assert_int_equal(c->pkt[i][2], EID);
		assert_int_equal(!!(fl & NVEMU_MCTP_HDR_SOM), i == 0);
		assert_int_equal(!!(fl & NVEMU_MCTP_HDR_EOM), i == c->n - 1);
		assert_int_equal((fl >> 4) & 3, i & 3);
		assert_int_equal(fl & 0x0f, tag); /* TO clear */
		if (i < c->n - 1)
			assert_int_equal(c->len[i], 4 + mtu);
		got += c->len[i] - 4;
	}
	assert_int_equal(got, total);
}

static void fragment_mtu(void **state)
{
	struct env *e = *state;
	const uint8_t msg[] = {0x7e, 0x01};
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x7e, handler, e->h), 0);
	e->h->reply_len = 200;
	send1(e, EID, 6, msg, sizeof(msg));
	check_frags(e->cap, 200, 64, 6);
	assert_int_equal(e->cap->pkt[0][4], 0x7e);

	e->cap->n = 0;
	assert_int_equal(nvemu_mctp_ep_set_mtu(e->ep, 128, NULL), 0);
	send1(e, EID, 6, msg, sizeof(msg));
	check_frags(e->cap, 200, 128, 6);

	e->cap->n = 0;
	e->h->reply_len = 4224;
	assert_int_equal(nvemu_mctp_ep_set_mtu(e->ep, 4096, NULL), 0);
	send1(e, EID, 7, msg, sizeof(msg));
	check_frags(e->cap, 4224, 4096, 7);

	/* A binding limit (serial: 64) wins over the endpoint's unit. */
	e->cap->n = 0;
	e->cap->link.max_payload = 64;
	send1(e, EID, 7, msg, sizeof(msg));
	check_frags(e->cap, 4224, 64, 7);

	assert_int_equal(nvemu_mctp_ep_set_mtu(e->ep, 63, &err), -EINVAL);
	assert_int_equal(nvemu_mctp_ep_set_mtu(e->ep, 4097, NULL), -EINVAL);
	assert_int_equal(nvemu_mctp_ep_mtu(e->ep), 4096);
}

static void async_reply(void **state)
{
	struct env *e = *state;
	const uint8_t msg[] = {0x7e, 0x01};
	const uint8_t rsp[] = {0x7e, 0x99};
	const uint8_t want[] = {0x01, HOST, EID, 0xc4, 0x7e, 0x99};

	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x7e, handler, e->h), 0);
	e->h->defer = true;
	send1(e, EID, 4, msg, sizeof(msg));
	assert_int_equal(e->cap->n, 0);
	assert_non_null(e->h->reply);
	assert_int_equal(nvemu_mctp_reply_send(e->h->reply, rsp, sizeof(rsp)), 0);
	expect_pkt(e->cap, 0, want, sizeof(want));

	/* The link goes away before the answer: it is sent nowhere. */
	send1(e, EID, 4, msg, sizeof(msg));
	nvemu_mctp_ep_link_gone(e->ep, &e->cap->link);
	assert_int_equal(nvemu_mctp_reply_send(e->h->reply, rsp, sizeof(rsp)), 0);
	assert_int_equal(e->cap->n, 1);

	/* A dropped request (bad MIC) sends nothing. */
	send1(e, EID, 4, msg, sizeof(msg));
	nvemu_mctp_reply_drop(e->h->reply);
	assert_int_equal(e->cap->n, 1);

	/* Replies that never come are bounded. */
	for (int i = 0; i < 70; i++)
		send1(e, EID, 4, msg, sizeof(msg));
	assert_int_equal(e->h->calls, 3 + 64);
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->drop_busy, 6);
}

static void create_rules(void **state)
{
	struct nvemu_mctp_ep_params p;
	struct nvemu_mctp_ep *ep = NULL;
	struct nvemu_error err = {0};
	static const uint8_t zero[16];

	(void)state;
	nvemu_mctp_ep_params_init(&p);
	assert_int_equal(p.net, 1);
	assert_int_equal(p.mtu, 64);
	p.eid = 0xff;
	assert_int_equal(nvemu_mctp_ep_create(&p, &ep, &err), -EINVAL);
	assert_string_equal(err.msg, "eid: 0xff is the broadcast EID");
	p.eid = 9;
	p.mtu = 32;
	assert_int_equal(nvemu_mctp_ep_create(&p, &ep, &err), -EINVAL);
	p.mtu = 0;
	assert_int_equal(nvemu_mctp_ep_create(&p, &ep, &err), 0);
	assert_int_equal(nvemu_mctp_ep_mtu(ep), 64);
	assert_memory_not_equal(nvemu_mctp_ep_uuid(ep), zero, 16);
	assert_int_equal(nvemu_mctp_ep_set_eid(ep, 0xff, NULL), -EINVAL);
	nvemu_mctp_ep_destroy(ep);
}

/* ---- the router, spoken to over its socket without the preload ---- */

static int connect_router(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void wire_send(int fd, uint8_t type, uint8_t eid, uint8_t tag, uint32_t net,
		      const uint8_t *body, size_t len)
{
	uint8_t buf[sizeof(struct nvemu_mctp_wire) + 256];
	struct nvemu_mctp_wire w = {NVEMU_MCTP_WIRE_SEND, type, eid, tag, net};

	memcpy(buf, &w, sizeof(w));
	memcpy(buf + sizeof(w), body, len);
	assert_int_equal(send(fd, buf, sizeof(w) + len, 0), (ssize_t)(sizeof(w) + len));
}

static void pump(struct nvemu_mctp_router *r)
{
	struct pollfd p = {.fd = nvemu_mctp_router_fd(r), .events = POLLIN};

	while (poll(&p, 1, 50) > 0)
		nvemu_mctp_router_handle(r);
}

static ssize_t wire_recv(int fd, struct nvemu_mctp_wire *w, uint8_t *body, size_t len)
{
	uint8_t buf[sizeof(*w) + NVEMU_MCTP_MAX_MSG];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < (ssize_t)sizeof(*w))
		return -1;
	memcpy(w, buf, sizeof(*w));
	memcpy(body, buf + sizeof(*w), n - sizeof(*w) < len ? n - sizeof(*w) : len);
	return n - sizeof(*w);
}

/* A multi-packet NVMe-MI-sized echo through packetization both ways. */
static void router_echo_multi_packet(struct env *e, struct nvemu_mctp_router *r, int fd)
{
	uint8_t req[200], body[NVEMU_MCTP_MAX_MSG];
	struct nvemu_mctp_wire w;

	assert_int_equal(nvemu_mctp_ep_set_handler(e->ep, 0x7e, handler, e->h), 0);
	e->h->reply_len = 300;
	memset(req, 0x5a, sizeof(req));
	wire_send(fd, 0x7e, EID, MCTP_TAG_OWNER, 1, req, sizeof(req));
	pump(r);
	assert_int_equal(e->h->len, 201);
	assert_int_equal(wire_recv(fd, &w, body, sizeof(body)), 299);
	assert_int_equal(w.type, 0x7e);
	assert_int_equal(body[298], 0xa5);
}

/* A Set Endpoint ID through the router moves the route. */
static void router_set_eid_moves_route(struct nvemu_mctp_router *r, int fd)
{
	const uint8_t set[] = {0x82, 0x01, 0x00, 0x33}, get_eid[] = {0x81, 0x02};
	uint8_t body[NVEMU_MCTP_MAX_MSG];
	struct nvemu_mctp_wire w;

	wire_send(fd, 0x00, EID, MCTP_TAG_OWNER, 1, set, sizeof(set));
	pump(r);
	assert_int_equal(wire_recv(fd, &w, body, sizeof(body)), 6);
	assert_int_equal(w.eid, 0x33);
	wire_send(fd, 0x00, 0x33, MCTP_TAG_OWNER, 1, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(wire_recv(fd, &w, body, sizeof(body)), 6);
	assert_int_equal(body[3], 0x33);
}

static void router_wire(void **state)
{
	struct env *e = *state;
	struct nvemu_mctp_router *r = NULL;
	struct nvemu_mctp_wire w;
	char path[] = "/tmp/nvemu-test-mctp-XXXXXX";
	char sock[64];
	const uint8_t get_eid[] = {0x81, 0x02};
	uint8_t body[NVEMU_MCTP_MAX_MSG];
	int fd;

	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/s", path);
	assert_int_equal(nvemu_mctp_router_create(sock, &r, NULL), 0);
	assert_int_equal(nvemu_mctp_router_add_ep(r, e->ep, NULL), 0);
	assert_int_equal(nvemu_mctp_router_add_ep(r, e->ep, NULL), -EEXIST);
	fd = connect_router(sock);
	pump(r);
	assert_int_equal(nvemu_mctp_router_clients(r), 1);

	/* Get Endpoint ID, kernel-allocated tag. */
	wire_send(fd, 0x00, EID, MCTP_TAG_OWNER, 1, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(wire_recv(fd, &w, body, sizeof(body)), 6);
	assert_int_equal(w.op, NVEMU_MCTP_WIRE_RECV);
	assert_int_equal(w.type, 0x00);
	assert_int_equal(w.eid, EID);
	assert_int_equal(w.net, 1);
	assert_int_equal(w.tag & MCTP_TAG_OWNER, 0);
	assert_int_equal(body[0], 0x01);
	assert_int_equal(body[1], 0x02);
	assert_int_equal(body[2], 0x00);
	assert_int_equal(body[3], EID);
	/* The endpoint saw a real packet from the router's local EID 8. */
	assert_int_equal(nvemu_mctp_ep_stats(e->ep)->rx_packets, 1);

	/* Nobody owns EID 10 or network 2: silence. */
	wire_send(fd, 0x00, 10, MCTP_TAG_OWNER, 1, get_eid, sizeof(get_eid));
	wire_send(fd, 0x00, EID, MCTP_TAG_OWNER, 2, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(wire_recv(fd, &w, body, sizeof(body)), -1);

	/* A preallocated tag: answered with the client's tag value, until dropped. */
	wire_send(fd, 0x00, EID, MCTP_TAG_OWNER | MCTP_TAG_PREALLOC | 6, 1, get_eid,
		  sizeof(get_eid));
	pump(r);
	assert_int_equal(wire_recv(fd, &w, body, sizeof(body)), 6);
	assert_int_equal(w.tag, 6);

	router_echo_multi_packet(e, r, fd);
	router_set_eid_moves_route(r, fd);

	close(fd);
	pump(r);
	assert_int_equal(nvemu_mctp_router_clients(r), 0);
	nvemu_mctp_router_remove_ep(r, e->ep);
	nvemu_mctp_router_destroy(r);
	assert_int_equal(access(sock, F_OK), -1);
	rmdir(path);
}

/* Get Endpoint ID with each of the preallocated tags 0..7 at once: each is answered. */
static void prealloc_all(struct nvemu_mctp_router *r, int fd)
{
	const uint8_t get_eid[] = {0x81, 0x02};
	uint8_t body[NVEMU_MCTP_MAX_MSG];
	struct nvemu_mctp_wire w;
	unsigned seen = 0;

	for (uint8_t t = 0; t < 8; t++)
		wire_send(fd, 0x00, EID, MCTP_TAG_OWNER | MCTP_TAG_PREALLOC | t, 1, get_eid,
			  sizeof(get_eid));
	pump(r);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(wire_recv(fd, &w, body, sizeof(body)), 6);
		assert_true(w.tag < 8);
		seen |= 1u << w.tag;
	}
	assert_int_equal(seen, 0xff);
}

/*
 * An endpoint has eight tags. One client preallocating all of them blocks
 * others only while it uses them: a tag unused for the tag lifetime goes to
 * the next client that needs one, and the first client's later messages
 * with it still get their answer.
 */
static void router_tag_expiry(void **state)
{
	struct env *e = *state;
	struct nvemu_mctp_router *r = NULL;
	char path[] = "/tmp/nvemu-test-mctp-XXXXXX", sock[64];
	const uint8_t get_eid[] = {0x81, 0x02};
	uint8_t body[NVEMU_MCTP_MAX_MSG];
	struct nvemu_mctp_wire w;
	int a, b;

	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/s", path);
	assert_int_equal(nvemu_mctp_router_create(sock, &r, NULL), 0);
	mctp_router_set_tag_lifetime(r, 1000 * 1000000ull);
	assert_int_equal(nvemu_mctp_router_add_ep(r, e->ep, NULL), 0);
	a = connect_router(sock);
	b = connect_router(sock);
	pump(r);

	prealloc_all(r, a);
	/* All eight held and fresh: another client gets no tag, so no answer. */
	wire_send(b, 0x00, EID, MCTP_TAG_OWNER, 1, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(wire_recv(b, &w, body, sizeof(body)), -1);

	/* Unused for longer than the lifetime: the next request takes one over. */
	usleep(1200 * 1000);
	wire_send(b, 0x00, EID, MCTP_TAG_OWNER, 1, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(wire_recv(b, &w, body, sizeof(body)), 6);
	assert_int_equal(body[3], EID);
	assert_int_equal(w.tag & MCTP_TAG_OWNER, 0);

	/* The first client's preallocated tags still work, whichever it lost. */
	prealloc_all(r, a);

	close(a);
	close(b);
	pump(r);
	nvemu_mctp_router_remove_ep(r, e->ep);
	nvemu_mctp_router_destroy(r);
	rmdir(path);
}

/* Send a wire header with descriptors attached (SCM_RIGHTS). */
static void wire_send_fds(int fd, uint8_t op, const int *fds, int nfds)
{
	struct nvemu_mctp_wire w = {.op = op};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} cbuf;
	struct iovec iov = {.iov_base = &w, .iov_len = sizeof(w)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	memset(&cbuf, 0, sizeof(cbuf));
	if (nfds) {
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(fd, &mh, 0), (ssize_t)sizeof(w));
}

/* The verdict the router wrote on the HELLO socket: errno or -1 for none. */
static int send_result(int ctl)
{
	struct nvemu_mctp_wire w;

	if (recv(ctl, &w, sizeof(w), MSG_DONTWAIT) != (ssize_t)sizeof(w))
		return -1;
	assert_int_equal(w.op, NVEMU_MCTP_WIRE_SEND_RESULT);
	return (int)w.net;
}

/* An fd's peer is closed when reading it gives end of file. */
static bool peer_closed(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

/*
 * Tag exhaustion reported as AF_MCTP reports it (EAGAIN from sendmsg): a
 * client that said HELLO with a socket gets a SEND_RESULT for every SEND;
 * descriptors passed with any other message are closed, not kept.
 */
static void router_send_result(void **state)
{
	struct env *e = *state;
	struct nvemu_mctp_router *r = NULL;
	char path[] = "/tmp/nvemu-test-mctp-XXXXXX", sock[64];
	const uint8_t get_eid[] = {0x81, 0x02};
	uint8_t body[NVEMU_MCTP_MAX_MSG];
	struct nvemu_mctp_wire w;
	int a, b, sa[2], sb[2], junk[2];

	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/s", path);
	assert_int_equal(nvemu_mctp_router_create(sock, &r, NULL), 0);
	assert_int_equal(nvemu_mctp_router_add_ep(r, e->ep, NULL), 0);
	a = connect_router(sock);
	b = connect_router(sock);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sa), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sb), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, junk), 0);
	wire_send_fds(a, NVEMU_MCTP_WIRE_HELLO, &sa[1], 1);
	wire_send_fds(b, NVEMU_MCTP_WIRE_HELLO, &sb[1], 1);
	close(sa[1]);
	close(sb[1]);
	/* A descriptor riding on a BIND is not kept. */
	wire_send_fds(b, NVEMU_MCTP_WIRE_BIND, &junk[1], 1);
	close(junk[1]);
	pump(r);
	assert_true(peer_closed(junk[0]));

	/* A takes all eight tags with answered-later preallocated requests. */
	prealloc_all(r, a);
	for (int i = 0; i < 8; i++)
		assert_int_equal(send_result(sa[0]), 0);
	/* B: EAGAIN, at once, and nothing reaches the endpoint. */
	wire_send(b, 0x00, EID, MCTP_TAG_OWNER, 1, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(send_result(sb[0]), EAGAIN);
	assert_int_equal(wire_recv(b, &w, body, sizeof(body)), -1);
	/* A message without TO needs no tag: sent, and nobody waits for a verdict. */
	wire_send(b, 0x7e, EID, 0, 1, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(send_result(sb[0]), -1);
	/* A leaves: its tags are free, B's next send goes and is answered. */
	close(a);
	pump(r);
	assert_true(peer_closed(sa[0]));
	wire_send(b, 0x00, EID, MCTP_TAG_OWNER, 1, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(send_result(sb[0]), 0);
	assert_int_equal(wire_recv(b, &w, body, sizeof(body)), 6);
	/* A client without HELLO gets no results at all (older preloads). */
	close(b);
	pump(r);
	assert_true(peer_closed(sb[0]));
	close(sa[0]);
	close(sb[0]);
	close(junk[0]);
	nvemu_mctp_router_remove_ep(r, e->ep);
	nvemu_mctp_router_destroy(r);
	rmdir(path);
}

/* ---- the router's socket: owner-only, never another's, rests when out of fds ---- */

static void router_dir(char *dir, char *sock, size_t len)
{
	assert_non_null(mkdtemp(dir));
	snprintf(sock, len, "%s/s", dir);
}

static void get_eid_roundtrip(struct nvemu_mctp_router *r, int fd)
{
	const uint8_t get_eid[] = {0x81, 0x02};
	uint8_t body[NVEMU_MCTP_MAX_MSG];
	struct nvemu_mctp_wire w;

	wire_send(fd, 0x00, EID, MCTP_TAG_OWNER, 1, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(wire_recv(fd, &w, body, sizeof(body)), 6);
	assert_int_equal(body[3], EID);
}

static void router_socket_rules(void **state)
{
	struct env *e = *state;
	struct nvemu_mctp_router *r = NULL, *r2 = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/nvemu-test-mctp-XXXXXX", sock[64], file[80];
	struct nvemu_error err = {0};
	struct stat st, st2;
	mode_t old;
	int fd, ret;

	router_dir(dir, sock, sizeof(sock));
	/* A stale socket (its server gone) is replaced, and the new one is 0600 under umask 0. */
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	strcpy(sa.sun_path, sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	old = umask(0);
	ret = nvemu_mctp_router_create(sock, &r, &err);
	umask(old);
	assert_int_equal(ret, 0);
	assert_int_equal(stat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(nvemu_mctp_router_add_ep(r, e->ep, NULL), 0);

	/* A live router's socket is refused, and the first router goes on working. */
	assert_int_equal(nvemu_mctp_router_create(sock, &r2, &err), -EADDRINUSE);
	assert_non_null(strstr(err.msg, "another process"));
	assert_int_equal(stat(sock, &st2), 0);
	assert_int_equal(st2.st_ino, st.st_ino);
	pump(r); /* the probe's connection comes and goes */
	fd = connect_router(sock);
	pump(r);
	get_eid_roundtrip(r, fd);
	close(fd);

	/* A file that is not a socket is never removed. */
	snprintf(file, sizeof(file), "%s/f", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(nvemu_mctp_router_create(file, &r2, &err), -EEXIST);
	assert_int_equal(access(file, F_OK), 0);
	unlink(file);

	pump(r);
	nvemu_mctp_router_remove_ep(r, e->ep);
	nvemu_mctp_router_destroy(r);
	rmdir(dir);
}

/*
 * Like the kernel's AF_MCTP: an empty record is an empty message, not the
 * end of the client, and the broadcast EID reaches the endpoint.
 */
static void router_empty_record_and_broadcast(void **state)
{
	struct env *e = *state;
	struct nvemu_mctp_router *r = NULL;
	char dir[] = "/tmp/nvemu-test-mctp-XXXXXX", sock[64];
	const uint8_t get_eid[] = {0x81, 0x02};
	uint8_t body[NVEMU_MCTP_MAX_MSG];
	struct nvemu_mctp_wire w;
	int fd;

	router_dir(dir, sock, sizeof(sock));
	assert_int_equal(nvemu_mctp_router_create(sock, &r, NULL), 0);
	assert_int_equal(nvemu_mctp_router_add_ep(r, e->ep, NULL), 0);
	fd = connect_router(sock);
	pump(r);
	assert_int_equal(send(fd, "", 0, 0), 0);
	pump(r);
	get_eid_roundtrip(r, fd);

	wire_send(fd, 0x00, NVEMU_MCTP_EID_BCAST, MCTP_TAG_OWNER, 1, get_eid, sizeof(get_eid));
	pump(r);
	assert_int_equal(wire_recv(fd, &w, body, sizeof(body)), 6);
	assert_int_equal(w.eid, EID);
	assert_int_equal(body[3], EID);
	/* Another network's broadcast reaches nobody. */
	wire_send(fd, 0x00, NVEMU_MCTP_EID_BCAST, MCTP_TAG_OWNER, 2, get_eid, sizeof(get_eid));
	pump(r);
	assert_true(wire_recv(fd, &w, body, sizeof(body)) < 0);
	close(fd);
	pump(r);
	nvemu_mctp_router_remove_ep(r, e->ep);
	nvemu_mctp_router_destroy(r);
	unlink(sock);
	rmdir(dir);
}

static void router_max_clients(void **state)
{
	struct env *e = *state;
	struct nvemu_mctp_router *r = NULL;
	char dir[] = "/tmp/nvemu-test-mctp-XXXXXX", sock[64];
	int fds[70], shut = 0;
	char byte;

	router_dir(dir, sock, sizeof(sock));
	assert_int_equal(nvemu_mctp_router_create(sock, &r, NULL), 0);
	assert_int_equal(nvemu_mctp_router_add_ep(r, e->ep, NULL), 0);
	for (int i = 0; i < 70; i++) {
		fds[i] = connect_router(sock);
		pump(r);
	}
	assert_int_equal(nvemu_mctp_router_clients(r), 64);
	/* The ones beyond the limit were closed: they read end of file. */
	for (int i = 0; i < 70; i++)
		if (recv(fds[i], &byte, 1, MSG_DONTWAIT) == 0)
			shut++;
	assert_int_equal(shut, 6);
	/* A seat that comes free is taken by the next client. */
	close(fds[0]);
	close(fds[69]);
	pump(r);
	fds[0] = connect_router(sock);
	pump(r);
	assert_int_equal(nvemu_mctp_router_clients(r), 64);
	get_eid_roundtrip(r, fds[0]);
	for (int i = 0; i < 69; i++)
		close(fds[i]);
	pump(r);
	assert_int_equal(nvemu_mctp_router_clients(r), 0);
	nvemu_mctp_router_remove_ep(r, e->ep);
	nvemu_mctp_router_destroy(r);
	rmdir(dir);
}

/*
 * Out of descriptors, a pending connection keeps the listener readable: the
 * router must rest (its fd quiet) rather than spin, log once, then recover.
 */
static void router_accept_out_of_fds(void **state)
{
	struct env *e = *state;
	struct nvemu_mctp_router *r = NULL;
	char dir[] = "/tmp/nvemu-test-mctp-XXXXXX", sock[64];
	static struct tu_fd_exhaust fdx;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timespec t0, t;
	unsigned wakes = 0;
	double cpu;
	int cfd;

	router_dir(dir, sock, sizeof(sock));
	assert_int_equal(nvemu_mctp_router_create(sock, &r, NULL), 0);
	assert_int_equal(nvemu_mctp_router_add_ep(r, e->ep, NULL), 0);
	cfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	tu_fd_exhaust_begin(&fdx);
	strcpy(sa.sun_path, sock);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	/* An event loop's second: wake when the router fd is readable, handle it. */
	cpu = tu_cpu_seconds();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		struct pollfd p = {.fd = nvemu_mctp_router_fd(r), .events = POLLIN};

		if (poll(&p, 1, 10) > 0) {
			wakes++;
			nvemu_mctp_router_handle(r);
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 1000000000L);
	cpu = tu_cpu_seconds() - cpu;
	assert_int_equal(nvemu_mctp_router_clients(r), 0);
	tu_fd_exhaust_end(&fdx);

	print_message("# out of fds for 1 s: %u wake-ups, %.3f s CPU\n", wakes, cpu);
	/* ~100 ms rests: about ten wake-ups, not one per poll */
	assert_true(wakes >= 1 && wakes <= 40);
	assert_true(cpu < 0.5);
	assert_int_equal(tu_fd_exhaust_log_lines(&fdx, "not accepting"), 1);
	tu_fd_exhaust_free(&fdx);

	/* Descriptors are back: the waiting client gets in and is answered. */
	for (int i = 0; i < 100 && !nvemu_mctp_router_clients(r); i++)
		pump(r);
	assert_int_equal(nvemu_mctp_router_clients(r), 1);
	get_eid_roundtrip(r, cfd);
	close(cfd);
	pump(r);
	nvemu_mctp_router_remove_ep(r, e->ep);
	nvemu_mctp_router_destroy(r);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_rules),
		cmocka_unit_test_setup_teardown(ctrl_get_eid, setup, teardown),
		cmocka_unit_test_setup_teardown(ctrl_ic_bit_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(ctrl_dynamic_eid, setup, teardown),
		cmocka_unit_test_setup_teardown(ctrl_get_eid_null, setup, teardown),
		cmocka_unit_test_setup_teardown(ctrl_set_eid, setup, teardown),
		cmocka_unit_test_setup_teardown(ctrl_get_uuid, setup, teardown),
		cmocka_unit_test_setup_teardown(ctrl_version_and_types, setup, teardown),
		cmocka_unit_test_setup_teardown(ctrl_no_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_packets, setup, teardown),
		cmocka_unit_test_setup_teardown(reasm_multi, setup, teardown),
		cmocka_unit_test_setup_teardown(reasm_out_of_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(reasm_unexpected_tag, setup, teardown),
		cmocka_unit_test_setup_teardown(reasm_interleaved, setup, teardown),
		cmocka_unit_test_setup_teardown(reasm_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(reasm_busy_slot_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(fragment_mtu, setup, teardown),
		cmocka_unit_test_setup_teardown(async_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(router_wire, setup, teardown),
		cmocka_unit_test_setup_teardown(router_tag_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(router_send_result, setup, teardown),
		cmocka_unit_test_setup_teardown(router_socket_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(router_empty_record_and_broadcast, setup, teardown),
		cmocka_unit_test_setup_teardown(router_max_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(router_accept_out_of_fds, setup, teardown),
	};

	/* TEST_FILTER=name (a glob) runs only the tests it matches */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests_name("mctp", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
#ifndef NVEMU_MCTP_INTERNAL_H
#define NVEMU_MCTP_INTERNAL_H

#include <nvemu/mctp.h>

/*
 * Reassembly keyed by (link, source EID, TO, tag), as Linux keys its
 * reassembly. A few slots; a new message evicts the least recently used,
 * never one handed out complete and not released yet (a handler reading it).
 */
#define MCTP_REASM_SLOTS 8

struct mctp_reasm_slot {
	bool active;
	bool held; /* complete, in use until mctp_reasm_release() */
	const struct nvemu_mctp_link *link;
	uint8_t src, dest, flags; /* flags: TO | tag */
	uint8_t next_seq;
	uint64_t stamp;
	size_t len;
	uint8_t *buf; /* NVEMU_MCTP_MAX_MSG, allocated on first use */
};

struct mctp_reasm {
	struct mctp_reasm_slot slot[MCTP_REASM_SLOTS];
	uint64_t clock;
};

enum {
	MCTP_RX_MORE = 0, /* packet taken, message not complete */
	MCTP_RX_DONE = 1, /* *done holds a whole message; release it after use */
	MCTP_RX_DROP_HDR = -1,
	MCTP_RX_DROP_SEQ = -2,
	MCTP_RX_DROP_TAG = -3,
	MCTP_RX_DROP_SIZE = -4,
	MCTP_RX_NOMEM = -5,
	MCTP_RX_BUSY = -6, /* every slot holds a message being handled */
};

int mctp_reasm_push(struct mctp_reasm *r, const struct nvemu_mctp_link *link, const uint8_t *pkt,
		    size_t len, struct mctp_reasm_slot **done);
void mctp_reasm_release(struct mctp_reasm_slot *s);
/* Forget every message in progress from link (or all when link is NULL). */
void mctp_reasm_flush(struct mctp_reasm *r, const struct nvemu_mctp_link *link);
void mctp_reasm_free(struct mctp_reasm *r);

/*
 * mctp-control.c: answer a control request (msg starts with the type byte);
 * dest is the EID the request was sent to (the endpoint's, null or broadcast).
 */
void mctp_control_handle(struct nvemu_mctp_ep *ep, uint8_t dest, const uint8_t *msg, size_t len,
			 struct nvemu_mctp_reply *reply);
/* mctp.c: the EID configuration gave (0: none) and an assignment by a bus owner. */
uint8_t mctp_ep_static_eid(const struct nvemu_mctp_ep *ep);
void mctp_ep_assign_eid(struct nvemu_mctp_ep *ep, uint8_t eid);
/* mctp.c: what Get Message Type Support lists (type 0 and the handled ones). */
size_t mctp_ep_msg_types(const struct nvemu_mctp_ep *ep, uint8_t *types, size_t max);
bool mctp_ep_handles(const struct nvemu_mctp_ep *ep, uint8_t type);

/* mctp-mi.c's state kept in the endpoint. */
void mctp_ep_set_mi(struct nvemu_mctp_ep *ep, struct nvemu_mi_ep *mi);
struct nvemu_mi_ep *mctp_ep_mi(const struct nvemu_mctp_ep *ep);
/* The MI reply not yet answered by the running handle call; returns the previous one. */
struct nvemu_mctp_reply *mctp_ep_mi_pending(struct nvemu_mctp_ep *ep,
					    struct nvemu_mctp_reply *reply);
void mctp_ep_mi_answered(struct nvemu_mctp_reply *reply);
/* AEMs: remember the source of the MI request being handled; send to it with an owned tag. */
void mctp_ep_aem_bind(struct nvemu_mctp_ep *ep);
int mctp_ep_aem_send(struct nvemu_mctp_ep *ep, const uint8_t *msg, size_t len);

/* mctp-router.c: how long an owned tag lasts unanswered or unused (tests shorten it). */
void mctp_router_set_tag_lifetime(struct nvemu_mctp_router *r, uint64_t ns);

#endif

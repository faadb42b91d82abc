// SPDX-License-Identifier: MIT
/*
 * MCTP endpoint: packet checks, reassembly, fragmentation, replies and the
 * dispatch of messages by type (DSP0236 section 8).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <uuid/uuid.h>

#include "mctp-internal.h"

#define MCTP_MAX_REPLIES 64

struct nvemu_mctp_reply {
	struct nvemu_mctp_ep *ep;
	const struct nvemu_mctp_link *link; /* NULL once the link is gone */
	uint8_t dest, tag;
	LIST_ENTRY(nvemu_mctp_reply) link_entry; /* in the endpoint's pending replies */
};

struct nvemu_mctp_ep {
	unsigned int net;
	uint8_t eid;
	uint8_t static_eid; /* from configuration; Get Endpoint ID reports it as static */
	uint8_t uuid[16];
	unsigned int mtu;
	struct {
		nvemu_mctp_msg_fn fn;
		void *ctx;
	} handler[128];
	struct mctp_reasm reasm;
	LIST_HEAD(, nvemu_mctp_reply) replies;
	unsigned int nreplies;
	struct nvemu_mctp_ep_stats stats;
	struct nvemu_mi_ep *mi;
	struct nvemu_mctp_reply *mi_cur;
	/* Where AEMs go: the source of the request that enabled them. */
	const struct nvemu_mctp_link *aem_link;
	uint8_t aem_eid;
	uint8_t next_tag; /* tags the endpoint owns, round robin */
};

/* ---- reassembly ---- */

static struct mctp_reasm_slot *reasm_find(struct mctp_reasm *r, const struct nvemu_mctp_link *link,
					  uint8_t src, uint8_t flags)
{
	for (int i = 0; i < MCTP_REASM_SLOTS; i++) {
		struct mctp_reasm_slot *s = &r->slot[i];

		if (s->active && !s->held && s->link == link && s->src == src && s->flags == flags)
			return s;
	}
	return NULL;
}

int mctp_reasm_push(struct mctp_reasm *r, const struct nvemu_mctp_link *link, const uint8_t *pkt,
		    size_t len, struct mctp_reasm_slot **done)
{
	uint8_t fl, seq, key;
	struct mctp_reasm_slot *s;
	size_t plen;

	if (len < NVEMU_MCTP_HDR_LEN || (pkt[0] & 0x0f) != NVEMU_MCTP_HDR_VERSION ||
	    len - NVEMU_MCTP_HDR_LEN > NVEMU_MCTP_MAX_MTU)
		return MCTP_RX_DROP_HDR;
	fl = pkt[3];
	seq = (fl >> NVEMU_MCTP_HDR_SEQ_SHIFT) & NVEMU_MCTP_HDR_SEQ_MASK;
	key = fl & (NVEMU_MCTP_HDR_TO | NVEMU_MCTP_HDR_TAG_MASK);
	plen = len - NVEMU_MCTP_HDR_LEN;
	s = reasm_find(r, link, pkt[2], key);

	if (fl & NVEMU_MCTP_HDR_SOM) {
		/* A new start abandons whatever was in progress under the same key. */
		if (!s) {
			struct mctp_reasm_slot *old = NULL;

			for (int i = 0; i < MCTP_REASM_SLOTS; i++) {
				if (!r->slot[i].active) {
					s = &r->slot[i];
					break;
				}
				/* A held slot's buffer is being read: never evicted. */
				if (!r->slot[i].held && (!old || r->slot[i].stamp < old->stamp))
					old = &r->slot[i];
			}
			if (!s)
				s = old;
			if (!s)
				return MCTP_RX_BUSY;
		}
		if (!s->buf) {
			s->buf = malloc(NVEMU_MCTP_MAX_MSG);
			if (!s->buf)
				return MCTP_RX_NOMEM;
		}
		s->active = true;
		s->link = link;
		s->src = pkt[2];
		s->dest = pkt[1];
		s->flags = key;
		s->len = 0;
	} else {
		if (!s)
			return MCTP_RX_DROP_TAG;
		if (seq != s->next_seq) {
			s->active = false;
			return MCTP_RX_DROP_SEQ;
		}
	}
	if (s->len + plen > NVEMU_MCTP_MAX_MSG) {
		s->active = false;
		return MCTP_RX_DROP_SIZE;
	}
	memcpy(s->buf + s->len, pkt + NVEMU_MCTP_HDR_LEN, plen);
	s->len += plen;
	s->next_seq = (seq + 1) & NVEMU_MCTP_HDR_SEQ_MASK;
	s->stamp = ++r->clock;
	if (!(fl & NVEMU_MCTP_HDR_EOM))
		return MCTP_RX_MORE;
	if (!s->len) {
		s->active = false;
		return MCTP_RX_DROP_HDR;
	}
	s->held = true;
	*done = s;
	return MCTP_RX_DONE;
}

void mctp_reasm_release(struct mctp_reasm_slot *s)
{
	s->active = false;
	s->held = false;
}

void mctp_reasm_flush(struct mctp_reasm *r, const struct nvemu_mctp_link *link)
{
	for (int i = 0; i < MCTP_REASM_SLOTS; i++)
		if ((!link || r->slot[i].link == link) && !r->slot[i].held)
			r->slot[i].active = false;
}

void mctp_reasm_free(struct mctp_reasm *r)
{
	for (int i = 0; i < MCTP_REASM_SLOTS; i++) {
		free(r->slot[i].buf);
		r->slot[i].buf = NULL;
		r->slot[i].active = false;
	}
}

/* ---- fragmentation ---- */

int nvemu_mctp_fragment(uint8_t dest, uint8_t src, uint8_t flags, const uint8_t *msg, size_t len,
			unsigned int mtu, const struct nvemu_mctp_link *link)
{
	uint8_t pkt[NVEMU_MCTP_HDR_LEN + NVEMU_MCTP_MAX_MTU];
	uint8_t seq = 0;
	size_t off = 0;

	if (!len || len > NVEMU_MCTP_MAX_MSG || !link || !link->tx_packet)
		return -EINVAL;
	if (link->max_payload && link->max_payload < mtu)
		mtu = link->max_payload;
	if (mtu < 1 || mtu > NVEMU_MCTP_MAX_MTU)
		return -EINVAL;
	flags &= NVEMU_MCTP_HDR_TO | NVEMU_MCTP_HDR_TAG_MASK;
	while (off < len) {
		size_t n = len - off < mtu ? len - off : mtu;
		int ret;

		pkt[0] = NVEMU_MCTP_HDR_VERSION;
		pkt[1] = dest;
		pkt[2] = src;
		pkt[3] = flags | (seq << NVEMU_MCTP_HDR_SEQ_SHIFT);
		if (!off)
			pkt[3] |= NVEMU_MCTP_HDR_SOM;
		if (off + n == len)
			pkt[3] |= NVEMU_MCTP_HDR_EOM;
		memcpy(pkt + NVEMU_MCTP_HDR_LEN, msg + off, n);
		ret = link->tx_packet(link->ctx, pkt, NVEMU_MCTP_HDR_LEN + n);
		if (ret < 0)
			return ret;
		off += n;
		seq = (seq + 1) & NVEMU_MCTP_HDR_SEQ_MASK;
	}
	return 0;
}

/* ---- endpoint ---- */

void nvemu_mctp_ep_params_init(struct nvemu_mctp_ep_params *p)
{
	memset(p, 0, sizeof(*p));
	p->net = 1;
	p->mtu = NVEMU_MCTP_BTU;
}

int nvemu_mctp_ep_create(const struct nvemu_mctp_ep_params *p, struct nvemu_mctp_ep **out,
			 struct nvemu_error *err)
{
	static const uint8_t zero[16];
	struct nvemu_mctp_ep *ep;
	unsigned int mtu = p->mtu ? p->mtu : NVEMU_MCTP_BTU;

	if (p->eid == NVEMU_MCTP_EID_BCAST)
		return nvemu_error_set(err, -EINVAL, "eid: 0xff is the broadcast EID");
	if (mtu < NVEMU_MCTP_BTU || mtu > NVEMU_MCTP_MAX_MTU)
		return nvemu_error_set(err, -EINVAL, "mtu: %u..%u bytes", NVEMU_MCTP_BTU,
				       NVEMU_MCTP_MAX_MTU);
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	LIST_INIT(&ep->replies);
	ep->net = p->net;
	ep->eid = p->eid;
	ep->static_eid = p->eid;
	ep->mtu = mtu;
	if (memcmp(p->uuid, zero, 16))
		memcpy(ep->uuid, p->uuid, 16);
	else
		uuid_generate(ep->uuid);
	*out = ep;
	return 0;
}

void nvemu_mctp_ep_destroy(struct nvemu_mctp_ep *ep)
{
	struct nvemu_mctp_reply *r;

	if (!ep)
		return;
	while ((r = LIST_FIRST(&ep->replies))) {
		LIST_REMOVE(r, link_entry);
		free(r);
	}
	mctp_reasm_free(&ep->reasm);
	free(ep);
}

unsigned int nvemu_mctp_ep_net(const struct nvemu_mctp_ep *ep)
{
	return ep->net;
}

uint8_t nvemu_mctp_ep_eid(const struct nvemu_mctp_ep *ep)
{
	return ep->eid;
}

const uint8_t *nvemu_mctp_ep_uuid(const struct nvemu_mctp_ep *ep)
{
	return ep->uuid;
}

unsigned int nvemu_mctp_ep_mtu(const struct nvemu_mctp_ep *ep)
{
	return ep->mtu;
}

void nvemu_mctp_ep_set_net(struct nvemu_mctp_ep *ep, unsigned int net)
{
	ep->net = net;
}

int nvemu_mctp_ep_set_eid(struct nvemu_mctp_ep *ep, uint8_t eid, struct nvemu_error *err)
{
	if (eid == NVEMU_MCTP_EID_BCAST)
		return nvemu_error_set(err, -EINVAL, "eid: 0xff is the broadcast EID");
	ep->eid = eid;
	ep->static_eid = eid;
	return 0;
}

uint8_t mctp_ep_static_eid(const struct nvemu_mctp_ep *ep)
{
	return ep->static_eid;
}

void mctp_ep_assign_eid(struct nvemu_mctp_ep *ep, uint8_t eid)
{
	ep->eid = eid;
}

int nvemu_mctp_ep_set_mtu(struct nvemu_mctp_ep *ep, unsigned int mtu, struct nvemu_error *err)
{
	if (mtu < NVEMU_MCTP_BTU || mtu > NVEMU_MCTP_MAX_MTU)
		return nvemu_error_set(err, -EINVAL, "mtu: %u..%u bytes", NVEMU_MCTP_BTU,
				       NVEMU_MCTP_MAX_MTU);
	ep->mtu = mtu;
	return 0;
}

const struct nvemu_mctp_ep_stats *nvemu_mctp_ep_stats(const struct nvemu_mctp_ep *ep)
{
	return &ep->stats;
}

int nvemu_mctp_ep_set_handler(struct nvemu_mctp_ep *ep, uint8_t type, nvemu_mctp_msg_fn fn,
			      void *ctx)
{
	if (type == NVEMU_MCTP_TYPE_CONTROL || type > 0x7f)
		return -EINVAL;
	ep->handler[type].fn = fn;
	ep->handler[type].ctx = fn ? ctx : NULL;
	return 0;
}

size_t mctp_ep_msg_types(const struct nvemu_mctp_ep *ep, uint8_t *types, size_t max)
{
	size_t n = 0;

	if (max)
		types[n++] = NVEMU_MCTP_TYPE_CONTROL;
	for (unsigned int t = 1; t < 128 && n < max; t++)
		if (ep->handler[t].fn)
			types[n++] = t;
	return n;
}

void mctp_ep_set_mi(struct nvemu_mctp_ep *ep, struct nvemu_mi_ep *mi)
{
	ep->mi = mi;
}

struct nvemu_mi_ep *mctp_ep_mi(const struct nvemu_mctp_ep *ep)
{
	return ep->mi;
}

struct nvemu_mctp_reply *mctp_ep_mi_pending(struct nvemu_mctp_ep *ep,
					    struct nvemu_mctp_reply *reply)
{
	struct nvemu_mctp_reply *old = ep->mi_cur;

	ep->mi_cur = reply;
	return old;
}

void mctp_ep_mi_answered(struct nvemu_mctp_reply *reply)
{
	if (reply->ep->mi_cur == reply)
		reply->ep->mi_cur = NULL;
}

void mctp_ep_aem_bind(struct nvemu_mctp_ep *ep)
{
	if (!ep->mi_cur)
		return;
	ep->aem_link = ep->mi_cur->link;
	ep->aem_eid = ep->mi_cur->dest;
}

int mctp_ep_aem_send(struct nvemu_mctp_ep *ep, const uint8_t *msg, size_t len)
{
	uint8_t flags;
	int ret;

	if (!ep->aem_link)
		return -ENOTCONN;
	/* A request: the endpoint is the tag owner (DSP0236 8.4). */
	flags = NVEMU_MCTP_HDR_TO | (ep->next_tag++ & NVEMU_MCTP_HDR_TAG_MASK);
	ret = nvemu_mctp_fragment(ep->aem_eid, ep->eid, flags, msg, len, ep->mtu, ep->aem_link);
	if (!ret) {
		ep->stats.tx_messages++;
		ep->stats.tx_packets += (len + ep->mtu - 1) / ep->mtu;
	}
	return ret;
}

bool mctp_ep_handles(const struct nvemu_mctp_ep *ep, uint8_t type)
{
	return type < 128 && ep->handler[type].fn;
}

static void reply_unlink(struct nvemu_mctp_reply *r)
{
	LIST_REMOVE(r, link_entry);
	r->ep->nreplies--;
}

int nvemu_mctp_reply_send(struct nvemu_mctp_reply *r, const uint8_t *msg, size_t len)
{
	struct nvemu_mctp_ep *ep;
	int ret = 0;

	if (!r)
		return -EINVAL;
	ep = r->ep;
	if (!msg || !len) {
		ret = -EINVAL;
	} else if (r->link) {
		ret = nvemu_mctp_fragment(r->dest, ep->eid, r->tag, msg, len, ep->mtu, r->link);
		if (!ret) {
			ep->stats.tx_messages++;
			ep->stats.tx_packets += (len + ep->mtu - 1) / ep->mtu;
		}
	}
	reply_unlink(r);
	free(r);
	return ret;
}

void nvemu_mctp_reply_drop(struct nvemu_mctp_reply *r)
{
	if (!r)
		return;
	reply_unlink(r);
	free(r);
}

void nvemu_mctp_ep_link_gone(struct nvemu_mctp_ep *ep, const struct nvemu_mctp_link *link)
{
	struct nvemu_mctp_reply *r;

	LIST_FOREACH(r, &ep->replies, link_entry)
		if (r->link == link)
			r->link = NULL;
	if (ep->aem_link == link)
		ep->aem_link = NULL;
	mctp_reasm_flush(&ep->reasm, link);
}

static struct nvemu_mctp_reply *
reply_new(struct nvemu_mctp_ep *ep, const struct nvemu_mctp_link *link, uint8_t dest, uint8_t tag)
{
	struct nvemu_mctp_reply *r;

	if (ep->nreplies >= MCTP_MAX_REPLIES) {
		ep->stats.drop_busy++;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ep = ep;
	r->link = link;
	r->dest = dest;
	r->tag = tag & NVEMU_MCTP_HDR_TAG_MASK; /* a response: TO clear */
	LIST_INSERT_HEAD(&ep->replies, r, link_entry);
	ep->nreplies++;
	return r;
}

void nvemu_mctp_ep_rx(struct nvemu_mctp_ep *ep, const struct nvemu_mctp_link *link,
		      const uint8_t *pkt, size_t len)
{
	struct mctp_reasm_slot *s;
	struct nvemu_mctp_reply *reply;
	uint8_t type;
	int ret;

	ep->stats.rx_packets++;
	if (len < NVEMU_MCTP_HDR_LEN) {
		ep->stats.drop_header++;
		return;
	}
	if (pkt[1] != ep->eid && pkt[1] != NVEMU_MCTP_EID_NULL && pkt[1] != NVEMU_MCTP_EID_BCAST) {
		ep->stats.drop_header++;
		return;
	}
	/* The endpoint never sends requests, so no response can be expected. */
	if (!(pkt[3] & NVEMU_MCTP_HDR_TO)) {
		ep->stats.drop_tag++;
		return;
	}
	ret = mctp_reasm_push(&ep->reasm, link, pkt, len, &s);
	switch (ret) {
	case MCTP_RX_MORE:
		return;
	case MCTP_RX_DONE:
		break;
	case MCTP_RX_DROP_SEQ:
		ep->stats.drop_seq++;
		return;
	case MCTP_RX_DROP_TAG:
		ep->stats.drop_tag++;
		return;
	case MCTP_RX_DROP_SIZE:
		ep->stats.drop_size++;
		return;
	case MCTP_RX_BUSY:
		ep->stats.drop_busy++;
		return;
	default:
		ep->stats.drop_header++;
		return;
	}
	ep->stats.rx_messages++;
	type = s->buf[0] & ~NVEMU_MCTP_TYPE_IC;
	/* DSP0236 12.2: control messages carry no integrity check; IC set is malformed. */
	if (type == NVEMU_MCTP_TYPE_CONTROL && (s->buf[0] & NVEMU_MCTP_TYPE_IC)) {
		ep->stats.drop_type++;
		goto out;
	}
	/* Only control messages make sense to the null or broadcast EID. */
	if (type != NVEMU_MCTP_TYPE_CONTROL && s->dest != ep->eid) {
		ep->stats.drop_header++;
		goto out;
	}
	if (type != NVEMU_MCTP_TYPE_CONTROL && !ep->handler[type].fn) {
		ep->stats.drop_type++;
		goto out;
	}
	reply = reply_new(ep, link, s->src, s->flags);
	if (!reply)
		goto out;
	/* The slot stays busy while the handler runs: a nested rx cannot reuse it. */
	if (type == NVEMU_MCTP_TYPE_CONTROL)
		mctp_control_handle(ep, s->dest, s->buf, s->len, reply);
	else
		ep->handler[type].fn(ep->handler[type].ctx, s->buf, s->len, reply);
out:
	mctp_reasm_release(s);
}

// SPDX-License-Identifier: MIT
/*
 * NVMe-MI Asynchronous Event Messages (NVMe-MI 2.0, from TP6035):
 * Configuration Get/Set of the Asynchronous Event configuration (ID 04h),
 * occurrence tracking fed by the same change detection the health polls
 * use, and the AEM itself with its generation number, delay (AEMD) and
 * bounded retransmission (AERD) until a Configuration Set acknowledges it.
 *
 * Each Composite Controller Status change maps to its AE identifier
 * (enum nvemu_mi_aei); an occurrence carries one byte of occurrence
 * specific info: the new value (docs/nvme-mi.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mi-internal.h"
#include "util/crc32c.h"

#define NS_PER_100MS 100000000ULL

/* Request offsets of the AE Enable List fields (after the 16-byte MI request header). */
#define PEL_AEE_VER  17
#define PEL_AEE_TL   18
#define PEL_AEE_HL   20
#define PEL_AEE_ITEM 21

/* By Composite Controller Status bit; 0xff: no AE of its own. */
static const uint8_t ccs_aei[MI_AEM_CCS_BITS] = {
	[0] = NVEMU_MI_AEI_RDY,
	[1] = NVEMU_MI_AEI_CFS,
	[2] = NVEMU_MI_AEI_SHST,
	[3] = 0xff,
	[4] = NVEMU_MI_AEI_NSSRO,
	[5] = NVEMU_MI_AEI_CECO,
	[6] = NVEMU_MI_AEI_NAC,
	[7] = NVEMU_MI_AEI_FA,
	[8] = 0xff, /* CSTS summary */
	[9] = NVEMU_MI_AEI_CTEMP,
	[10] = NVEMU_MI_AEI_PDLU,
	[11] = NVEMU_MI_AEI_SPARE,
	[12] = NVEMU_MI_AEI_CWARN,
	[13] = NVEMU_MI_AEI_SANFM,
};

static const uint8_t supported[] = {
	NVEMU_MI_AEI_RDY,   NVEMU_MI_AEI_CFS,	NVEMU_MI_AEI_SHST,  NVEMU_MI_AEI_CECO,
	NVEMU_MI_AEI_NAC,   NVEMU_MI_AEI_FA,	NVEMU_MI_AEI_CTEMP, NVEMU_MI_AEI_PDLU,
	NVEMU_MI_AEI_SPARE, NVEMU_MI_AEI_CWARN, NVEMU_MI_AEI_SANFM, NVEMU_MI_AEI_NSSRO,
};

static bool is_supported(uint8_t id)
{
	for (size_t i = 0; i < sizeof(supported); i++)
		if (supported[i] == id)
			return true;
	return false;
}

static bool is_enabled(const struct mi_aem *a, uint8_t id)
{
	return a->enabled[id >> 3] & (1u << (id & 7));
}

static bool any_enabled(const struct mi_aem *a)
{
	for (size_t i = 0; i < sizeof(a->enabled); i++)
		if (a->enabled[i])
			return true;
	return false;
}

/* Controller-scoped AEs concern PCI functions: all of nvemu's are physical functions. */
static bool ctrl_scope_on(const struct mi_aem *a)
{
	return a->fa & 0x3; /* ENCFA or EMPFA */
}

void mi_aem_note(struct nvemu_mi_ep *ep, uint32_t ccs_flags, uint16_t cntlid,
		 const uint8_t info[MI_AEM_CCS_BITS])
{
	struct mi_aem *a = &ep->aem;

	if (cntlid && !ctrl_scope_on(a))
		return;
	for (unsigned bit = 0; bit < MI_AEM_CCS_BITS; bit++) {
		uint8_t id = ccs_aei[bit];
		unsigned i;

		if (id == 0xff || !(ccs_flags & (1u << bit)) || !is_enabled(a, id))
			continue;
		for (i = 0; i < a->nr_pend; i++)
			if (a->pend[i].id == id && a->pend[i].cid == cntlid)
				break;
		if (i == a->nr_pend) {
			if (a->nr_pend == MI_AEM_MAX_OCC) {
				a->overflow++;
				continue;
			}
			a->nr_pend++;
		}
		a->pend[i].id = id;
		a->pend[i].cid = cntlid;
		a->pend[i].info = info[bit];
	}
}

/* The AE Occurrence List: header and every pending occurrence. */
static size_t occ_list(const struct mi_aem *a, uint8_t *p)
{
	size_t n = MI_AEM_LIST_HDR;

	for (unsigned i = 0; i < a->nr_pend; i++) {
		const struct mi_aem_occ *o = &a->pend[i];
		uint32_t cid = htole32(o->cid);

		p[n + 0] = MI_AEM_OCC_HDR;  /* AELHLEN */
		p[n + 1] = MI_AEM_OSI_LEN;  /* AEOSIL */
		p[n + 2] = 0;		    /* AEOVSIL */
		p[n + 3] = o->id;	    /* AEOUI: AEOI */
		memcpy(p + n + 4, &cid, 4); /* AEOCIDI */
		p[n + 8] = 0;		    /* AESSI */
		p[n + 9] = o->info;
		n += MI_AEM_OCC_HDR + MI_AEM_OSI_LEN;
	}
	p[0] = (uint8_t)a->nr_pend; /* NUMAEO */
	p[1] = 0;		    /* AELVER */
	p[2] = n & 0xff;	    /* AEOLLI: total length, bits 22:0 */
	p[3] = (n >> 8) & 0xff;
	p[4] = (n >> 16) & 0x7f;
	p[5] = MI_AEM_LIST_HDR;	       /* AEOLHL */
	p[6] = (uint8_t)(a->gen << 3); /* AEMTI: generation number 7:3 */
	return n;
}

#define OCC_LIST_MAX (MI_AEM_LIST_HDR + MI_AEM_MAX_OCC * (MI_AEM_OCC_HDR + MI_AEM_OSI_LEN))

void mi_aem_config_get(struct nvemu_mi_ep *ep, struct mi_reply *r)
{
	uint8_t buf[5 + 3 * sizeof(supported)];
	size_t n = 5;

	for (size_t i = 0; i < sizeof(supported); i++) {
		uint16_t aesi = supported[i] | (is_enabled(&ep->aem, supported[i]) ? 0x8000 : 0);

		buf[n++] = 3; /* AESL */
		buf[n++] = aesi & 0xff;
		buf[n++] = aesi >> 8;
	}
	buf[0] = sizeof(supported); /* NUMAES */
	buf[1] = 0;		    /* AESLVER */
	buf[2] = n & 0xff;	    /* AEST: total length */
	buf[3] = n >> 8;
	buf[4] = 5; /* AESLHL */
	mi_send(r, NVME_MI_RESP_SUCCESS, NULL, buf, n, NULL, 0);
}

static void drop_msg(struct mi_aem *a)
{
	free(a->msg);
	a->msg = NULL;
	a->msg_len = 0;
	a->awaiting = false;
}

void mi_aem_config_set(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0,
		       const uint8_t *data, size_t dlen)
{
	struct mi_aem *a = &ep->aem;
	uint8_t list[OCC_LIST_MAX];
	unsigned numaee = 0;
	size_t n;

	if (dw0 >> 27) {
		mi_send_invalid_param(r, MI_PEL_DW0 + 3, 3); /* reserved 31:27 */
		return;
	}
	/* No data at all is an acknowledgement with an empty list, as is NUMAEE 0. */
	if (dlen) {
		uint16_t tl;

		if (dlen < 5) {
			mi_send_status(r, NVME_MI_RESP_INVALID_INPUT_SIZE);
			return;
		}
		numaee = data[0];
		tl = (uint16_t)(data[2] | data[3] << 8);
		if (data[1]) {
			mi_send_invalid_param(r, PEL_AEE_VER, 0);
			return;
		}
		if (data[4] != 5) {
			mi_send_invalid_param(r, PEL_AEE_HL, 0);
			return;
		}
		if (tl != 5 + 3 * numaee) {
			mi_send_invalid_param(r, PEL_AEE_TL, 0);
			return;
		}
		if (dlen != tl) {
			mi_send_status(r, NVME_MI_RESP_INVALID_INPUT_SIZE);
			return;
		}
		/* Validate every item before changing anything. */
		for (unsigned i = 0; i < numaee; i++) {
			const uint8_t *it = data + 5 + 3 * i;
			uint16_t pel = (uint16_t)(PEL_AEE_ITEM + 3 * i);

			if (it[0] != 3) {
				mi_send_invalid_param(r, pel, 0); /* AEEL */
				return;
			}
			if (!is_supported(it[1])) {
				mi_send_invalid_param(r, pel + 1, 0); /* AEEI 7:0 */
				return;
			}
			if (it[2] & 0x7f) {
				mi_send_invalid_param(r, pel + 2, 0); /* AEEI 14:8 reserved */
				return;
			}
		}
	}
	a->aerd = (dw0 >> 8) & 0xff;
	a->aemd = (dw0 >> 16) & 0xff;
	a->fa = (dw0 >> 24) & 0x7;
	for (unsigned i = 0; i < numaee; i++) {
		const uint8_t *it = data + 5 + 3 * i;
		uint8_t id = it[1];

		if (it[2] & 0x80) {
			a->enabled[id >> 3] |= (uint8_t)(1u << (id & 7));
		} else {
			unsigned k, j;

			a->enabled[id >> 3] &= (uint8_t) ~(1u << (id & 7));
			for (k = j = 0; k < a->nr_pend; k++)
				if (a->pend[k].id != id)
					a->pend[j++] = a->pend[k];
			a->nr_pend = j;
		}
	}
	if (!ctrl_scope_on(a)) {
		unsigned k, j;

		for (k = j = 0; k < a->nr_pend; k++)
			if (!a->pend[k].cid)
				a->pend[j++] = a->pend[k];
		a->nr_pend = j;
	}
	/* Any Set acknowledges the outstanding AEM. */
	drop_msg(a);
	if (numaee) {
		/* Without a binding (in process) there is nowhere to send AEMs. */
		a->bound = any_enabled(a) && a->ops;
		if (a->bound && a->ops->bind)
			a->ops->bind(a->arg);
	}
	/* The response reports what occurred since the AEM (or the enable). */
	n = occ_list(a, list);
	a->nr_pend = 0;
	a->pend_since_set = false;
	mi_send(r, NVME_MI_RESP_SUCCESS, NULL, list, n, NULL, 0);
}

void nvemu_mi_ep_set_aem_ops(struct nvemu_mi_ep *ep, const struct nvemu_mi_aem_ops *ops, void *arg)
{
	ep->aem.ops = ops;
	ep->aem.arg = arg;
	if (!ops)
		ep->aem.bound = false;
}

static int aem_send(struct mi_aem *a)
{
	if (!a->ops || !a->ops->send)
		return -ENOTCONN;
	return a->ops->send(a->arg, a->msg, a->msg_len);
}

static void aem_build(struct mi_aem *a)
{
	uint8_t buf[4 + OCC_LIST_MAX + 3 + MI_MIC_LEN];
	size_t n = 0;
	uint32_t mic;

	buf[n++] = NVME_MI_MSGTYPE_NVME;
	buf[n++] = NVEMU_MI_NMIMT_AE << 3; /* ROR 0: the endpoint's request; CSI 0 */
	buf[n++] = 0;
	buf[n++] = 0;
	n += occ_list(a, buf + n);
	while (n & 3)
		buf[n++] = 0;
	mic = htole32(nvemu_crc32c(buf, n));
	memcpy(buf + n, &mic, MI_MIC_LEN);
	n += MI_MIC_LEN;
	a->msg = malloc(n);
	if (!a->msg)
		return;
	memcpy(a->msg, buf, n);
	a->msg_len = n;
}

uint64_t nvemu_mi_ep_aem_poll(struct nvemu_mi_ep *ep, uint64_t now)
{
	struct mi_aem *a;
	uint64_t rd, next = 0;

	if (!ep || ep->dying || !any_enabled(&ep->aem))
		return 0;
	a = &ep->aem;
	mi_update_health(ep);
	rd = (a->aerd ? a->aerd : 1) * NS_PER_100MS;
	if (a->awaiting && now >= a->retry_at) {
		if (a->tries < NVEMU_MI_AEM_MAX_RETRIES) {
			a->tries++;
			a->resent++;
			aem_send(a);
			a->retry_at = now + rd;
		} else {
			drop_msg(a); /* given up: later events start a new AEM */
		}
	}
	if (!a->awaiting && a->nr_pend && a->bound) {
		if (!a->pend_since_set) {
			a->pend_since_set = true;
			a->first_at = now;
		}
		if (now >= a->first_at + a->aemd * NS_PER_100MS) {
			a->gen = (a->gen + 1) & 0x1f;
			aem_build(a);
			a->nr_pend = 0;
			a->pend_since_set = false;
			if (a->msg) {
				a->awaiting = true;
				a->tries = 0;
				a->sent++;
				aem_send(a);
				a->retry_at = now + rd;
			}
		} else {
			next = a->first_at + a->aemd * NS_PER_100MS;
		}
	}
	if (a->awaiting && (!next || a->retry_at < next))
		next = a->retry_at;
	/* Otherwise look at the model again soon. */
	return next ? next : now + NS_PER_100MS;
}

void nvemu_mi_ep_aem_stats(const struct nvemu_mi_ep *ep, uint64_t *sent, uint64_t *retransmitted)
{
	if (sent)
		*sent = ep->aem.sent;
	if (retransmitted)
		*retransmitted = ep->aem.resent;
}

void mi_aem_free(struct nvemu_mi_ep *ep)
{
	drop_msg(&ep->aem);
}

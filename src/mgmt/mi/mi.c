// SPDX-License-Identifier: MIT
/*
 * NVMe-MI Management Endpoint: message validation (type, MIC, ROR), the
 * response framing, change tracking for the health polls, the per-port
 * configuration and the VPD area. Commands live in mi-cmd.c (NMIMT 1) and
 * mi-admin.c (NMIMT 2).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mi-internal.h"
#include "util/crc32c.h"

/* ---- ports */

struct nvemu_port *mi_port_by_index(struct nvemu_subsys *subsys, unsigned idx)
{
	return idx < subsys->nr_ports ? &subsys->ports[idx] : NULL;
}

int mi_port_index(struct nvemu_subsys *subsys, uint16_t port_id)
{
	for (unsigned i = 0; i < subsys->nr_ports; i++)
		if (subsys->ports[i].id == port_id)
			return (int)i;
	return -1;
}

static struct nvemu_port *find_port(struct nvemu_subsys *subsys, uint16_t port_id)
{
	int i = mi_port_index(subsys, port_id);

	return i < 0 ? NULL : &subsys->ports[i];
}

static uint8_t default_freq(const struct nvemu_port *port)
{
	if (!port || port->p.type != NVEMU_PORT_TWO_WIRE)
		return 0;
	return port->p.two_wire.max_freq;
}

/* The configuration of a port, created with the defaults on first use. */
struct mi_port_cfg *mi_port_cfg(struct nvemu_mi_ep *ep, uint16_t port_id)
{
	struct mi_port_cfg *n;

	for (unsigned i = 0; i < ep->nr_pcfg; i++)
		if (ep->pcfg[i].port_id == port_id)
			return &ep->pcfg[i];
	n = realloc(ep->pcfg, (ep->nr_pcfg + 1) * sizeof(*n));
	if (!n)
		return NULL;
	ep->pcfg = n;
	n = &ep->pcfg[ep->nr_pcfg++];
	n->port_id = port_id;
	n->freq = default_freq(find_port(ep->subsys, port_id));
	n->mtu = NVEMU_MI_MTU_MIN;
	return n;
}

uint16_t nvemu_mi_ep_port(const struct nvemu_mi_ep *ep)
{
	return ep->port_id;
}

uint16_t nvemu_mi_ep_port_mtu(struct nvemu_mi_ep *ep, uint16_t port_id)
{
	for (unsigned i = 0; i < ep->nr_pcfg; i++)
		if (ep->pcfg[i].port_id == port_id)
			return ep->pcfg[i].mtu;
	return NVEMU_MI_MTU_MIN;
}

uint16_t nvemu_mi_ep_mtu(const struct nvemu_mi_ep *ep)
{
	for (unsigned i = 0; i < ep->nr_pcfg; i++)
		if (ep->pcfg[i].port_id == ep->port_id)
			return ep->pcfg[i].mtu;
	return NVEMU_MI_MTU_MIN;
}

void nvemu_mi_ep_set_mtu_cb(struct nvemu_mi_ep *ep, void (*cb)(void *arg, uint16_t mtu), void *arg)
{
	ep->mtu_cb = cb;
	ep->mtu_arg = arg;
}

void nvemu_mi_ep_set_mtu_max(struct nvemu_mi_ep *ep, uint16_t max)
{
	ep->mtu_max = max;
}

uint16_t nvemu_mi_ep_mtu_max(const struct nvemu_mi_ep *ep)
{
	return ep->mtu_max && ep->mtu_max < NVEMU_MI_MTU_MAX ? ep->mtu_max : NVEMU_MI_MTU_MAX;
}

void nvemu_mi_ep_set_ctrl0_alias(struct nvemu_mi_ep *ep, bool on)
{
	ep->ctrl0_alias = on;
}

bool nvemu_mi_ep_ctrl0_alias(const struct nvemu_mi_ep *ep)
{
	return ep->ctrl0_alias;
}

struct nvemu_ctrl *mi_ctrl_by_id(struct nvemu_mi_ep *ep, uint16_t id)
{
	struct nvemu_subsys *s = ep->subsys;
	struct nvemu_ctrl *ctrl = nvemu_subsys_ctrl(s, id);

	/* ctrls[] is sorted by ID: [0] is the lowest. */
	if (!ctrl && id == 0 && ep->ctrl0_alias && s->nr_ctrls)
		ctrl = s->ctrls[0];
	return ctrl;
}

int nvemu_mi_ep_set_port_mtu(struct nvemu_mi_ep *ep, uint16_t port_id, uint16_t mtu,
			     struct nvemu_error *err)
{
	struct mi_port_cfg *c;

	if (!find_port(ep->subsys, port_id))
		return nvemu_error_set(err, -ENOENT, "port: no port %u", port_id);
	if (mtu < NVEMU_MI_MTU_MIN || mtu > nvemu_mi_ep_mtu_max(ep))
		return nvemu_error_set(err, -EINVAL, "mtu: %u..%u", NVEMU_MI_MTU_MIN,
				       nvemu_mi_ep_mtu_max(ep));
	c = mi_port_cfg(ep, port_id);
	if (!c)
		return nvemu_error_set(err, -ENOMEM, "mtu: out of memory");
	if (c->mtu != mtu) {
		c->mtu = mtu;
		if (port_id == ep->port_id && ep->mtu_cb)
			ep->mtu_cb(ep->mtu_arg, mtu);
	}
	return 0;
}

uint8_t nvemu_mi_ep_smbus_freq(struct nvemu_mi_ep *ep, uint16_t port_id)
{
	struct nvemu_port *port = find_port(ep->subsys, port_id);

	if (!port || port->p.type != NVEMU_PORT_TWO_WIRE)
		return 0;
	for (unsigned i = 0; i < ep->nr_pcfg; i++)
		if (ep->pcfg[i].port_id == port_id)
			return ep->pcfg[i].freq;
	return default_freq(port);
}

int nvemu_mi_ep_set_smbus_freq(struct nvemu_mi_ep *ep, uint16_t port_id, uint8_t freq,
			       struct nvemu_error *err)
{
	struct nvemu_port *port = find_port(ep->subsys, port_id);
	struct mi_port_cfg *c;

	if (!port)
		return nvemu_error_set(err, -ENOENT, "port: no port %u", port_id);
	if (port->p.type != NVEMU_PORT_TWO_WIRE)
		return nvemu_error_set(err, -EINVAL, "port: %u is not a two-wire port", port_id);
	if (freq < NVME_MI_CONFIG_SMBUS_FREQ_100kHz || freq > port->p.two_wire.max_freq)
		return nvemu_error_set(err, -EINVAL, "smbus_freq: 1..%u (the port's maximum)",
				       port->p.two_wire.max_freq);
	c = mi_port_cfg(ep, port_id);
	if (!c)
		return nvemu_error_set(err, -ENOMEM, "smbus_freq: out of memory");
	c->freq = freq;
	return 0;
}

/* ---- VPD: an IPMI Platform Management FRU with a Product Info area */

static unsigned fru_field(uint8_t *p, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	while (n && s[n - 1] == ' ')
		n--;
	if (n > 63)
		n = 63;
	p[0] = 0xc0 | (uint8_t)n; /* 8-bit ASCII + Latin 1 */
	memcpy(p + 1, s, n);
	return 1 + (unsigned)n;
}

static uint8_t zero_sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return (uint8_t)-s;
}

static void vpd_init(struct nvemu_mi_ep *ep)
{
	struct nvemu_subsys *s = ep->subsys;
	uint8_t *v = ep->vpd, *pa = v + 8;
	unsigned n = 3, area;

	memset(v, 0, sizeof(ep->vpd));
	v[0] = 0x01; /* format version */
	v[4] = 1;    /* Product Info area at 8 (in 8-byte units) */
	v[7] = zero_sum(v, 7);

	pa[0] = 0x01;				      /* area format version */
	pa[2] = 0;				      /* language: English */
	n += fru_field(pa + n, "nvemu", 5);	      /* manufacturer */
	n += fru_field(pa + n, s->mn, sizeof(s->mn)); /* product name */
	n += fru_field(pa + n, s->mn, sizeof(s->mn)); /* part/model number */
	n += fru_field(pa + n, s->fr, sizeof(s->fr)); /* version */
	n += fru_field(pa + n, s->sn, sizeof(s->sn)); /* serial number */
	n += fru_field(pa + n, "", 0);		      /* asset tag */
	n += fru_field(pa + n, "", 0);		      /* FRU file id */
	pa[n++] = 0xc1;				      /* end of fields */
	area = (n + 1 + 7) / 8;			      /* + checksum, 8-byte units */
	pa[1] = (uint8_t)area;
	pa[area * 8 - 1] = zero_sum(pa, area * 8 - 1);
}

const uint8_t *nvemu_mi_ep_vpd(const struct nvemu_mi_ep *ep)
{
	return ep->vpd;
}

int nvemu_mi_ep_vpd_write(struct nvemu_mi_ep *ep, uint32_t off, const void *data, uint32_t len,
			  struct nvemu_error *err)
{
	if (off > sizeof(ep->vpd) || len > sizeof(ep->vpd) - off)
		return nvemu_error_set(err, -EINVAL, "vpd: offset + length beyond %zu bytes",
				       sizeof(ep->vpd));
	if (len)
		memcpy(ep->vpd + off, data, len);
	return 0;
}

/* ---- change tracking */

uint8_t mi_subsys_cwarn(struct nvemu_subsys *subsys, struct nvemu_ctrl *only)
{
	struct nvemu_health h;
	uint8_t cw;

	nvemu_subsys_get_health(subsys, &h);
	cw = h.critical_warning;
	if (h.avail_spare < h.spare_thresh)
		cw |= NVME_SMART_CRIT_SPARE;
	if (only) {
		cw |= only->temp_warning;
	} else {
		for (unsigned i = 0; i < subsys->nr_ctrls; i++)
			cw |= subsys->ctrls[i]->temp_warning;
	}
	return cw;
}

struct mi_ctrl_state *mi_ctrl_state(struct nvemu_mi_ep *ep, uint16_t cntlid)
{
	for (unsigned i = 0; i < ep->nr_cs; i++)
		if (ep->cs[i].cntlid == cntlid)
			return &ep->cs[i];
	return NULL;
}

static void ctrl_snap(struct nvemu_ctrl *ctrl, struct mi_ctrl_state *st)
{
	st->csts = nvemu_ctrl_get_csts(ctrl);
	st->en = nvemu_ctrl_get_cc(ctrl) & 1;
	st->nr_ns = ctrl->nr_ns;
	st->nr_changed_ns = ctrl->nr_changed_ns + ctrl->changed_ns_overflow;
	st->fw_slot = ctrl->fw.active_slot;
	if (st->fw_slot >= 1 && st->fw_slot <= NVEMU_FW_SLOTS_MAX)
		memcpy(st->fw_rev, ctrl->fw.slot_rev[st->fw_slot - 1], sizeof(st->fw_rev));
	else
		memset(st->fw_rev, 0, sizeof(st->fw_rev));
}

/* Flags (CCS layout) for what changed between two snapshots of a controller. */
static uint16_t ctrl_changes(const struct mi_ctrl_state *o, const struct mi_ctrl_state *n)
{
	uint32_t d = o->csts ^ n->csts;
	uint16_t f = 0;

	if (NVME_CSTS_RDY(d))
		f |= NVME_MI_CCS_RDY;
	if (NVME_CSTS_CFS(d))
		f |= NVME_MI_CCS_CFS;
	if (NVME_CSTS_SHST(d))
		f |= NVME_MI_CCS_SHST;
	if (NVME_CSTS_NSSRO(d))
		f |= NVME_MI_CCS_NSSRO;
	if (o->en != n->en)
		f |= NVME_MI_CCS_CECO;
	if (o->nr_ns != n->nr_ns || o->nr_changed_ns != n->nr_changed_ns)
		f |= NVME_MI_CCS_NAC;
	if (o->fw_slot != n->fw_slot || memcmp(o->fw_rev, n->fw_rev, sizeof(o->fw_rev)))
		f |= NVME_MI_CCS_FA;
	if (f)
		f |= NVME_MI_CCS_CSTS;
	return f;
}

void mi_update_health(struct nvemu_mi_ep *ep)
{
	struct nvemu_subsys *s = ep->subsys;
	struct mi_health_snap hn;
	struct nvemu_health h;
	uint16_t hf = 0, cf;
	unsigned i, j;

	nvemu_subsys_get_health(s, &h);
	hn.temp_k = h.temperature_k;
	hn.pdlu = h.percent_used;
	hn.spare = h.avail_spare;
	hn.cwarn = mi_subsys_cwarn(s, NULL);
	if (hn.temp_k != ep->hsnap.temp_k)
		hf |= NVME_MI_CCS_CTEMP;
	if (hn.pdlu != ep->hsnap.pdlu)
		hf |= NVME_MI_CCS_PDLU;
	if (hn.spare != ep->hsnap.spare)
		hf |= NVME_MI_CCS_SPARE;
	if (hn.cwarn != ep->hsnap.cwarn)
		hf |= NVME_MI_CCS_CCWARN;
	/* No status bit of its own: an AE only. */
	hn.sanfm = s->san.failed;
	if (hn.sanfm != ep->hsnap.sanfm) {
		uint8_t info[MI_AEM_CCS_BITS] = {[MI_AEM_SANFM_BIT] = hn.sanfm};

		mi_aem_note(ep, 1u << MI_AEM_SANFM_BIT, 0, info);
	}
	ep->hsnap = hn;
	ep->ccs |= hf;
	if (hf) {
		uint8_t info[MI_AEM_CCS_BITS] = {0};

		info[9] = mi_ctemp(hn.temp_k);
		info[10] = hn.pdlu;
		info[11] = hn.spare;
		info[12] = hn.cwarn;
		mi_aem_note(ep, hf, 0, info);
	}

	for (j = 0; j < ep->nr_cs; j++)
		ep->cs[j].seen = false;
	for (i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_ctrl *ctrl = s->ctrls[i];
		struct mi_ctrl_state *st = mi_ctrl_state(ep, ctrl->cntlid), now;

		if (!st) {
			struct mi_ctrl_state *n = realloc(ep->cs, (ep->nr_cs + 1) * sizeof(*n));

			if (!n)
				continue;
			ep->cs = n;
			st = &ep->cs[ep->nr_cs++];
			memset(st, 0, sizeof(*st));
			st->cntlid = ctrl->cntlid;
			ctrl_snap(ctrl, st);
		}
		now = *st;
		ctrl_snap(ctrl, &now);
		cf = ctrl_changes(st, &now);
		now.chsc |= cf | hf;
		ep->ccs |= cf;
		if (cf) {
			uint8_t info[MI_AEM_CCS_BITS] = {0};

			/* Indexed by Composite Controller Status bit. */
			info[0] = info[1] = info[2] = (uint8_t)(now.csts & 0xff);
			info[4] = (now.csts >> 4) & 1;
			info[5] = now.en;
			info[6] = (uint8_t)now.nr_ns;
			info[7] = now.fw_slot;
			mi_aem_note(ep, cf, ctrl->cntlid, info);
		}
		now.seen = true;
		*st = now;
	}
	/* Forget controllers that left the subsystem. */
	for (i = j = 0; j < ep->nr_cs; j++)
		if (ep->cs[j].seen)
			ep->cs[i++] = ep->cs[j];
	ep->nr_cs = i;
}

uint16_t nvemu_mi_ep_ccs(struct nvemu_mi_ep *ep)
{
	mi_update_health(ep);
	return ep->ccs;
}

/* ---- lifecycle */

int nvemu_mi_ep_create(struct nvemu_subsys *subsys, uint16_t two_wire_port_id,
		       struct nvemu_mi_ep **out, struct nvemu_error *err)
{
	struct nvemu_port *port;
	struct nvemu_mi_ep *ep;

	if (!subsys || !out)
		return nvemu_error_set(err, -EINVAL, "mi: subsystem and result required");
	port = find_port(subsys, two_wire_port_id);
	if (!port)
		return nvemu_error_set(err, -ENOENT, "port: no port %u", two_wire_port_id);
	if (port->p.type != NVEMU_PORT_TWO_WIRE && port->p.type != NVEMU_PORT_PCIE)
		return nvemu_error_set(err, -EINVAL,
				       "port: %u is neither a two-wire nor a PCIe port",
				       two_wire_port_id);
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return nvemu_error_set(err, -ENOMEM, "mi: out of memory");
	ep->subsys = subsys;
	ep->port_id = two_wire_port_id;
	ep->ctrl0_alias = true;
	vpd_init(ep);
	mi_update_health(ep);
	ep->ccs = 0; /* the state at creation is the baseline */
	for (unsigned i = 0; i < ep->nr_cs; i++)
		ep->cs[i].chsc = 0;
	*out = ep;
	return 0;
}

void mi_ep_free(struct nvemu_mi_ep *ep)
{
	mi_aem_free(ep);
	free(ep->pcfg);
	free(ep->cs);
	free(ep);
}

void nvemu_mi_ep_destroy(struct nvemu_mi_ep *ep)
{
	if (!ep)
		return;
	if (ep->inflight) {
		ep->dying = true; /* freed by the last completion */
		return;
	}
	mi_ep_free(ep);
}

/* ---- framing */

void mi_send(struct mi_reply *r, uint8_t status, const uint8_t nmresp[3], const void *a,
	     size_t alen, const void *b, size_t blen)
{
	uint8_t buf[MI_MSG_MAX + 64];
	size_t n = 0;
	uint32_t mic;

	if (8 + alen + blen + MI_MIC_LEN > sizeof(buf)) {
		/* Cannot happen with the sizes the commands use; fail safe. */
		status = NVME_MI_RESP_INTERNAL_ERR;
		nmresp = NULL;
		alen = blen = 0;
	}
	buf[n++] = NVME_MI_MSGTYPE_NVME;
	buf[n++] = MI_NMP_ROR | (r->nmp & 0x7f);
	buf[n++] = r->meb_resp ? 1 : 0; /* MEB */
	buf[n++] = 0;
	buf[n++] = status;
	if (nmresp)
		memcpy(buf + n, nmresp, 3);
	else
		memset(buf + n, 0, 3);
	n += 3;
	if (alen) {
		memcpy(buf + n, a, alen);
		n += alen;
	}
	if (blen) {
		memcpy(buf + n, b, blen);
		n += blen;
	}
	/* Messages are whole dwords (libnvme-mi rejects others): zero-pad. */
	while (n & 3)
		buf[n++] = 0;
	mic = htole32(nvemu_crc32c(buf, n));
	memcpy(buf + n, &mic, MI_MIC_LEN);
	n += MI_MIC_LEN;
	r->respond(r->ctx, buf, n);
}

void mi_send_invalid_param(struct mi_reply *r, uint16_t byte, uint8_t bit)
{
	uint8_t nmresp[3] = {(uint8_t)(bit & 7), (uint8_t)byte, (uint8_t)(byte >> 8)};

	mi_send(r, NVME_MI_RESP_INVALID_PARAM, nmresp, NULL, 0, NULL, 0);
}

/* Control Primitives (NVMe-MI 1.2 4.2): Pause, Resume, Abort, Get State, Replay. */
static void control_primitive(struct mi_reply *r, const uint8_t *msg, size_t len)
{
	uint8_t nmresp[3] = {0};

	if (len != 8) {
		mi_send_status(r, NVME_MI_RESP_INVALID_CMD_SIZE);
		return;
	}
	nmresp[0] = msg[5]; /* tag */
	if (msg[4] > 0x04) {
		mi_send(r, NVME_MI_RESP_INVALID_OPCODE, nmresp, NULL, 0, NULL, 0);
		return;
	}
	/*
	 * Commands run to completion before their response, so there is never
	 * anything to pause or abort; Get State reports the slot idle.
	 */
	mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, NULL, 0, NULL, 0);
}

void nvemu_mi_ep_handle(struct nvemu_mi_ep *ep, const uint8_t *msg, size_t len,
			nvemu_mi_respond_fn respond, void *ctx)
{
	struct mi_reply r = {.ep = ep, .respond = respond, .ctx = ctx};
	uint32_t mic;
	uint8_t nmimt;

	if (!ep || !msg || !respond || ep->dying)
		return;
	/* Message header + MIC at least; anything else is not NVMe-MI. */
	if (len < 4 + MI_MIC_LEN || msg[0] != NVME_MI_MSGTYPE_NVME)
		return;
	len -= MI_MIC_LEN;
	memcpy(&mic, msg + len, MI_MIC_LEN);
	if (le32toh(mic) != nvemu_crc32c(msg, len))
		return; /* NVMe-MI 1.2 3.1.1.1: discard on an integrity check failure */
	if (msg[1] & MI_NMP_ROR)
		return; /* a response: nothing to answer */
	r.nmp = msg[1];
	nmimt = MI_NMP_NMIMT(msg[1]);
	mi_update_health(ep);

	if (len < 8 || len + MI_MIC_LEN > MI_MSG_MAX) {
		mi_send_status(&r, NVME_MI_RESP_INVALID_CMD_SIZE);
		return;
	}
	if (msg[2] & 1) {
		/* Only Admin commands take their data from the MEB (its Command Support List). */
		if (nmimt != NVME_MI_MT_ADMIN) {
			mi_send_invalid_param(&r, MI_PEL_MEB, 0);
			return;
		}
		r.meb = true;
	}
	switch (nmimt) {
	case NVME_MI_MT_CONTROL:
		control_primitive(&r, msg, len);
		break;
	case NVME_MI_MT_MI:
		mi_cmd_handle(ep, msg, len, &r);
		break;
	case NVME_MI_MT_ADMIN:
		mi_admin_handle(ep, msg, len, &r);
		break;
	case NVME_MI_MT_PCIE:
		mi_pcie_handle(ep, msg, len, &r);
		break;
	default:
		mi_send_invalid_param(&r, MI_PEL_NMP, 3); /* NMIMT, bits 6:3 */
		break;
	}
}

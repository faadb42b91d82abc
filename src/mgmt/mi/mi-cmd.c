// SPDX-License-Identifier: MIT
/*
 * NVMe-MI commands (NMIMT 1): Read NVMe-MI Data Structure, NVM Subsystem
 * and Controller Health Status Poll, Configuration Get/Set, VPD Read/Write
 * and Reset, all answered from the subsystem model.
 */
#include <string.h>

#include "mi-internal.h"

#define MI_REQ_HDR_LEN sizeof(struct nvme_mi_mi_req_hdr)

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

/* NVMe-MI 1.2 Figure 108 CTEMP: Celsius, two's complement, saturating. */
uint8_t mi_ctemp(uint16_t kelvin)
{
	int c;

	if (!kelvin)
		return 0x80; /* no temperature data */
	c = (int)kelvin - 273;
	if (c >= 127)
		return 0x7f;
	if (c <= -60)
		return 0xc4;
	return (uint8_t)(int8_t)c;
}

/* ---- Read NVMe-MI Data Structure */

static uint8_t port_type(const struct nvemu_port *port)
{
	switch (port->p.type) {
	case NVEMU_PORT_PCIE:
		return 1;
	case NVEMU_PORT_TWO_WIRE:
		return 2;
	default:
		return 0; /* inactive: MI has no fabrics port type */
	}
}

static void read_port_info(struct nvemu_mi_ep *ep, struct mi_reply *r, unsigned idx)
{
	struct nvemu_port *port = mi_port_by_index(ep->subsys, idx);
	struct nvme_mi_read_port_info pi;
	uint8_t nmresp[3] = {0};

	if (!port) {
		mi_send_invalid_param(r, MI_PEL_DW0 + 2, 0); /* PORTID */
		return;
	}
	memset(&pi, 0, sizeof(pi));
	pi.portt = port_type(port);
	if (pi.portt)
		pi.mmctptus = htole16(nvemu_mi_ep_mtu_max(ep));
	/* The endpoint's own port carries its Management Endpoint Buffer. */
	pi.meb = htole32(port->id == ep->port_id ? NVEMU_MI_MEB_SIZE : 0);
	if (port->p.type == NVEMU_PORT_PCIE) {
		uint8_t speed = port->p.pcie.max_link_speed;

		pi.pcie.mps = 1; /* 256 bytes */
		pi.pcie.sls = speed ? (uint8_t)((1u << speed) - 1) : 0;
		pi.pcie.cls = speed;
		pi.pcie.mlw = port->p.pcie.max_link_width;
		pi.pcie.nlw = port->p.pcie.max_link_width;
		pi.pcie.pn = port->p.pcie.port_number;
	} else if (port->p.type == NVEMU_PORT_TWO_WIRE) {
		/* The FRU (VPD) device answers at the customary 0x53. */
		pi.smb.vpd_addr = 0x53;
		pi.smb.mvpd_freq = port->p.two_wire.max_freq;
		pi.smb.mme_addr = port->p.two_wire.address;
		pi.smb.mme_freq = port->p.two_wire.max_freq;
		pi.smb.nvmebm = 0; /* no NVMe Basic Management */
	}
	put_le16(nmresp, sizeof(pi));
	mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, &pi, sizeof(pi), NULL, 0);
}

static void read_ctrl_list(struct nvemu_mi_ep *ep, struct mi_reply *r, uint16_t start)
{
	struct nvemu_subsys *s = ep->subsys;
	uint8_t list[2 + 2 * NVME_ID_CTRL_LIST_MAX + 2];
	uint8_t nmresp[3] = {0};
	unsigned n = 0, len;

	for (unsigned i = 0; i < s->nr_ctrls && n < NVME_ID_CTRL_LIST_MAX; i++)
		if (s->ctrls[i]->cntlid >= start)
			put_le16(list + 2 + 2 * n++, s->ctrls[i]->cntlid);
	put_le16(list, (uint16_t)n);
	/* Padded to a dword with a zero entry, as the whole message must be. */
	if (!(n & 1))
		put_le16(list + 2 + 2 * n, 0);
	len = (2 + 2 * n + 3) & ~3u;
	put_le16(nmresp, (uint16_t)len);
	mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, list, len, NULL, 0);
}

static void read_ctrl_info(struct nvemu_mi_ep *ep, struct mi_reply *r, uint16_t cntlid)
{
	struct nvemu_subsys *s = ep->subsys;
	struct nvemu_ctrl *ctrl = mi_ctrl_by_id(ep, cntlid);
	struct nvme_mi_read_ctrl_info ci;
	uint8_t nmresp[3] = {0};
	int idx;

	if (!ctrl) {
		mi_send_invalid_param(r, MI_PEL_DW0, 0); /* CTRLID */
		return;
	}
	memset(&ci, 0, sizeof(ci));
	idx = mi_port_index(s, ctrl->p.port_id);
	ci.portid = idx < 0 ? 0xff : (uint8_t)idx;
	if (idx >= 0 && s->ports[idx].p.type == NVEMU_PORT_PCIE) {
		/* Bus 0, device 0, one function per controller. */
		ci.prii = 1;
		for (unsigned i = 0; i < s->nr_ctrls; i++)
			if (s->ctrls[i] == ctrl)
				ci.pri = htole16((uint16_t)(i & 7));
	}
	ci.vid = htole16(s->vendor.pci_vid);
	ci.did = htole16(s->vendor.pci_did);
	ci.ssvid = htole16(s->vendor.pci_svid);
	ci.ssid = htole16(s->vendor.pci_sdid);
	put_le16(nmresp, sizeof(ci));
	mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, &ci, sizeof(ci), NULL, 0);
}

static void read_opt_cmds(struct mi_reply *r)
{
	/* Optional commands that are implemented (NVMe-MI 1.2 Figure 117). */
	static const struct nvme_mi_osc cmds[] = {
		{NVME_MI_MT_MI, NVEMU_MI_OPC_VPD_READ},
		{NVME_MI_MT_MI, NVEMU_MI_OPC_VPD_WRITE},
		{NVME_MI_MT_MI, NVEMU_MI_OPC_RESET},
		{NVME_MI_MT_MI, NVEMU_MI_OPC_MEB_READ},
		{NVME_MI_MT_MI, NVEMU_MI_OPC_MEB_WRITE},
		{NVME_MI_MT_MI, NVEMU_MI_OPC_SHUTDOWN},
		{NVME_MI_MT_ADMIN, nvme_admin_set_features},
		{NVME_MI_MT_ADMIN, nvme_admin_ns_mgmt},
		{NVME_MI_MT_ADMIN, nvme_admin_fw_commit},
		{NVME_MI_MT_ADMIN, nvme_admin_fw_download},
		{NVME_MI_MT_ADMIN, nvme_admin_ns_attach},
		{NVME_MI_MT_ADMIN, nvme_admin_format_nvm},
		{NVME_MI_MT_ADMIN, nvme_admin_sanitize_nvm},
		{NVME_MI_MT_PCIE, NVEMU_MI_PCIE_CFG_READ},
		{NVME_MI_MT_PCIE, NVEMU_MI_PCIE_CFG_WRITE},
	};
	uint8_t buf[2 + sizeof(cmds)], nmresp[3] = {0};

	put_le16(buf, sizeof(cmds) / sizeof(cmds[0]));
	memcpy(buf + 2, cmds, sizeof(cmds));
	put_le16(nmresp, sizeof(buf));
	mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, buf, sizeof(buf), NULL, 0);
}

static void read_data(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0)
{
	uint16_t ctrlid = dw0 & 0xffff;
	uint8_t portid = (dw0 >> 16) & 0xff;
	uint8_t dtyp = dw0 >> 24;
	struct nvme_mi_read_nvm_ss_info si;
	uint8_t nmresp[3] = {0};

	switch (dtyp) {
	case nvme_mi_dtyp_subsys_info:
		memset(&si, 0, sizeof(si));
		si.nump = ep->subsys->nr_ports ? (uint8_t)(ep->subsys->nr_ports - 1) : 0;
		si.mjr = NVEMU_MI_VER_MAJOR;
		si.mnr = NVEMU_MI_VER_MINOR;
		put_le16(nmresp, sizeof(si));
		mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, &si, sizeof(si), NULL, 0);
		break;
	case nvme_mi_dtyp_port_info:
		read_port_info(ep, r, portid);
		break;
	case nvme_mi_dtyp_ctrl_list:
		/*
		 * The list starts at CTRLID (NVMe-MI 1.2 5.7); PORTID is not
		 * used. libnvme 1.3 puts its start ID in the PORTID byte and
		 * so gets the list from 0, a superset it filters itself.
		 */
		read_ctrl_list(ep, r, ctrlid);
		break;
	case nvme_mi_dtyp_ctrl_info:
		read_ctrl_info(ep, r, ctrlid);
		break;
	case nvme_mi_dtyp_opt_cmd_support:
		read_opt_cmds(r);
		break;
	case nvme_mi_dtyp_meb_support: {
		uint8_t list[64];
		size_t n = mi_admin_meb_list(list, sizeof(list));

		put_le16(nmresp, (uint16_t)n);
		mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, list, n, NULL, 0);
		break;
	}
	default:
		mi_send_invalid_param(r, MI_PEL_DW0 + 3, 0); /* DTYP */
		break;
	}
}

/* ---- health polls */

static void subsys_health_poll(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw1)
{
	struct nvemu_subsys *s = ep->subsys;
	struct nvme_mi_nvm_ss_health_status hs;
	struct nvemu_health h;
	bool cfs = false;
	uint8_t cw;

	nvemu_subsys_get_health(s, &h);
	cw = mi_subsys_cwarn(s, NULL);
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		if (NVME_CSTS_CFS(nvemu_ctrl_get_csts(s->ctrls[i])))
			cfs = true;

	memset(&hs, 0, sizeof(hs));
	/* NSS: Drive Functional, Reset Not Required, Port 0/1 PCIe Link Active. */
	hs.nss = (cfs ? 0 : 1u << 5) | 1u << 4;
	for (unsigned i = 0; i < 2 && i < s->nr_ports; i++)
		if (s->ports[i].p.type == NVEMU_PORT_PCIE)
			hs.nss |= i ? 1u << 2 : 1u << 3;
	/* SMART Warnings are active low. */
	hs.sw = ~cw & 0x3f;
	hs.ctemp = mi_ctemp(h.temperature_k);
	hs.pdlu = h.percent_used;
	hs.ccs = htole16(ep->ccs);
	mi_send(r, NVME_MI_RESP_SUCCESS, NULL, &hs, sizeof(hs), NULL, 0);
	if (dw1 & (1u << 31))
		ep->ccs = 0; /* CS: clear after reporting */
}

static uint16_t chsp_select(uint32_t dw1)
{
	uint16_t m = 0;

	if (dw1 & NVEMU_MI_CHSP_CSTS)
		m |= 0x1ff; /* RDY..FA and the CSTS change summary */
	if (dw1 & NVEMU_MI_CHSP_CTEMP)
		m |= NVME_MI_CCS_CTEMP;
	if (dw1 & NVEMU_MI_CHSP_PDLU)
		m |= NVME_MI_CCS_PDLU;
	if (dw1 & NVEMU_MI_CHSP_SPARE)
		m |= NVME_MI_CCS_SPARE;
	if (dw1 & NVEMU_MI_CHSP_CWARN)
		m |= NVME_MI_CCS_CCWARN;
	return m;
}

/*
 * Controller Health Status Poll (NVMe-MI 1.2 5.3). DW0: SCTLID 15:0,
 * MAXRENT 23:16 (0's based), INCF/INCPF/INCVF/ALL 31:24; DW1: property
 * selects and CCF. The response carries RENT entries of 16 bytes.
 */
static void ctrl_health_poll(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0, uint32_t dw1)
{
	struct nvemu_subsys *s = ep->subsys;
	struct nvme_mi_ctrl_health_status chds[255];
	unsigned max = ((dw0 >> 16) & 0xff) + 1, n = 0;
	uint16_t sctlid = dw0 & 0xffff, sel = chsp_select(dw1);
	/* Every controller is a physical function. */
	bool incl = dw0 & (NVEMU_MI_CHSP_INCF | NVEMU_MI_CHSP_INCPF);
	uint8_t nmresp[3] = {0};
	struct nvemu_health h;

	if (max > 255)
		max = 255; /* RENT is one byte */
	nvemu_subsys_get_health(s, &h);
	for (unsigned i = 0; incl && i < s->nr_ctrls && n < max; i++) {
		struct nvemu_ctrl *ctrl = s->ctrls[i];
		struct mi_ctrl_state *st = mi_ctrl_state(ep, ctrl->cntlid);
		struct nvme_mi_ctrl_health_status *e = &chds[n];
		uint32_t csts = nvemu_ctrl_get_csts(ctrl);
		uint16_t chsc = st ? st->chsc : 0, v;

		if (ctrl->cntlid < sctlid)
			continue;
		if (!(dw0 & NVEMU_MI_CHSP_ALL) && !(chsc & sel))
			continue;
		memset(e, 0, sizeof(*e));
		e->ctlid = htole16(ctrl->cntlid);
		v = csts & 0xf; /* RDY, CFS, SHST */
		v |= chsc &
		     (NVME_MI_CCS_NSSRO | NVME_MI_CCS_CECO | NVME_MI_CCS_NAC | NVME_MI_CCS_FA);
		e->csts = htole16(v);
		e->ctemp = htole16(h.temperature_k);
		e->pdlu = h.percent_used;
		e->spare = h.avail_spare;
		e->cwarn = mi_subsys_cwarn(s, ctrl);
		v = htole16(chsc);
		memcpy((uint8_t *)e + NVEMU_MI_CHDS_CHSC_OFF, &v, sizeof(v));
		if (st && (dw1 & NVEMU_MI_CHSP_CCF))
			st->chsc = 0;
		n++;
	}
	nmresp[2] = (uint8_t)n;
	mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, chds, n * sizeof(chds[0]), NULL, 0);
}

/* ---- Configuration Get / Set */

/* Configuration Get/Set DW0: CONFIGID 7:0, PORTID 31:24. */
#define MI_PEL_CFG_ID	(MI_PEL_DW0)
#define MI_PEL_CFG_PORT (MI_PEL_DW0 + 3)

static struct nvemu_port *cfg_port(struct nvemu_mi_ep *ep, uint32_t dw0, bool two_wire)
{
	struct nvemu_port *port = mi_port_by_index(ep->subsys, dw0 >> 24);

	if (!port)
		return NULL;
	if (two_wire && port->p.type != NVEMU_PORT_TWO_WIRE)
		return NULL;
	if (port->p.type != NVEMU_PORT_TWO_WIRE && port->p.type != NVEMU_PORT_PCIE)
		return NULL; /* no MCTP on this port */
	return port;
}

static void config_get(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0)
{
	uint8_t nmresp[3] = {0};
	struct nvemu_port *port;
	uint16_t pel = MI_PEL_CFG_PORT;

	switch (dw0 & 0xff) {
	case NVME_MI_CONFIG_SMBUS_FREQ:
		port = cfg_port(ep, dw0, true);
		if (!port)
			break;
		nmresp[0] = nvemu_mi_ep_smbus_freq(ep, port->id) & 0xf;
		mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, NULL, 0, NULL, 0);
		return;
	case NVEMU_MI_CONFIG_AE:
		mi_aem_config_get(ep, r);
		return;
	case NVME_MI_CONFIG_HEALTH_STATUS_CHANGE:
		/* Write-only configuration: nothing to report. */
		mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, NULL, 0, NULL, 0);
		return;
	case NVME_MI_CONFIG_MCTP_MTU:
		port = cfg_port(ep, dw0, false);
		if (!port)
			break;
		put_le16(nmresp, nvemu_mi_ep_port_mtu(ep, port->id));
		mi_send(r, NVME_MI_RESP_SUCCESS, nmresp, NULL, 0, NULL, 0);
		return;
	default:
		pel = MI_PEL_CFG_ID;
		break;
	}
	mi_send_invalid_param(r, pel, 0);
}

static void config_set(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0, uint32_t dw1,
		       const uint8_t *data, size_t dlen)
{
	struct nvemu_port *port;
	uint16_t pel = MI_PEL_CFG_PORT;
	uint16_t mtu;

	if ((dw0 & 0xff) == NVEMU_MI_CONFIG_AE) {
		mi_aem_config_set(ep, r, dw0, data, dlen);
		return;
	}
	if (dlen) {
		mi_send_status(r, NVME_MI_RESP_INVALID_CMD_SIZE);
		return;
	}
	switch (dw0 & 0xff) {
	case NVME_MI_CONFIG_SMBUS_FREQ:
		port = cfg_port(ep, dw0, true);
		if (!port)
			break;
		if (nvemu_mi_ep_set_smbus_freq(ep, port->id, (dw0 >> 8) & 0xf, NULL)) {
			pel = MI_PEL_DW0 + 1; /* the frequency, DW0 11:8 */
			break;
		}
		mi_send_status(r, NVME_MI_RESP_SUCCESS);
		return;
	case NVME_MI_CONFIG_HEALTH_STATUS_CHANGE:
		ep->ccs &= ~(uint16_t)(dw1 & MI_CCS_ALL);
		mi_send_status(r, NVME_MI_RESP_SUCCESS);
		return;
	case NVME_MI_CONFIG_MCTP_MTU:
		port = cfg_port(ep, dw0, false);
		mtu = dw1 & 0xffff;
		if (!port || !mi_port_cfg(ep, port->id))
			break;
		/* NVMe-MI 1.2 5.2: a unit the binding cannot carry is Invalid Parameter. */
		if (mtu < NVEMU_MI_MTU_MIN || mtu > nvemu_mi_ep_mtu_max(ep)) {
			pel = MI_PEL_DW1;
			break;
		}
		/* The new unit applies to the messages after this response. */
		mi_send_status(r, NVME_MI_RESP_SUCCESS);
		nvemu_mi_ep_set_port_mtu(ep, port->id, mtu, NULL);
		return;
	default:
		pel = MI_PEL_CFG_ID;
		break;
	}
	mi_send_invalid_param(r, pel, 0);
}

/* ---- VPD, Reset */

static void vpd_read(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0, uint32_t dw1)
{
	uint32_t off = dw0 & 0xffff, len = dw1 & 0xffff;

	if (off + len > sizeof(ep->vpd)) {
		mi_send_invalid_param(r, off >= sizeof(ep->vpd) ? MI_PEL_DW0 : MI_PEL_DW1, 0);
		return;
	}
	mi_send(r, NVME_MI_RESP_SUCCESS, NULL, ep->vpd + off, len, NULL, 0);
}

static void vpd_write(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0, uint32_t dw1,
		      const uint8_t *data, size_t dlen)
{
	uint32_t off = dw0 & 0xffff, len = dw1 & 0xffff;

	if (dlen != len) {
		mi_send_status(r, NVME_MI_RESP_INVALID_INPUT_SIZE);
		return;
	}
	if (nvemu_mi_ep_vpd_write(ep, off, data, len, NULL)) {
		mi_send_invalid_param(r, off >= sizeof(ep->vpd) ? MI_PEL_DW0 : MI_PEL_DW1, 0);
		return;
	}
	mi_send_status(r, NVME_MI_RESP_SUCCESS);
}

static void mi_reset(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0)
{
	struct nvemu_subsys *s = ep->subsys;

	if (dw0 >> 24) {
		/* Only type 0, NVM Subsystem Reset, is defined. */
		mi_send_invalid_param(r, MI_PEL_DW0 + 3, 0);
		return;
	}
	mi_send_status(r, NVME_MI_RESP_SUCCESS);
	for (unsigned i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_ctrl *ctrl = s->ctrls[i];
		struct mi_ctrl_state *st;

		if (nvemu_ctrl_get_cc(ctrl) & 1)
			nvemu_ctrl_set_cc(ctrl, 0);
		st = mi_ctrl_state(ep, ctrl->cntlid);
		if (st)
			st->chsc |= NVME_MI_CCS_NSSRO | NVME_MI_CCS_CSTS;
	}
	ep->ccs |= NVME_MI_CCS_NSSRO | NVME_MI_CCS_CSTS;
	/* The CECO/RDY changes the reset caused are picked up by the next poll. */
}

/*
 * Management Endpoint Buffer Read/Write (NVMe-MI 1.2 5.8, 5.9): DW0 the
 * offset, DW1 the length, within the NVEMU_MI_MEB_SIZE bytes the Port
 * Information of the endpoint's port reports.
 */
static void meb_read(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t off, uint32_t len)
{
	if (off >= sizeof(ep->meb) || len > sizeof(ep->meb) - off) {
		mi_send_invalid_param(r, off >= sizeof(ep->meb) ? MI_PEL_DW0 : MI_PEL_DW1, 0);
		return;
	}
	mi_send(r, NVME_MI_RESP_SUCCESS, NULL, ep->meb + off, len, NULL, 0);
}

static void meb_write(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t off, uint32_t len,
		      const uint8_t *data, size_t dlen)
{
	if (dlen != len) {
		mi_send_status(r, NVME_MI_RESP_INVALID_INPUT_SIZE);
		return;
	}
	if (off >= sizeof(ep->meb) || len > sizeof(ep->meb) - off) {
		mi_send_invalid_param(r, off >= sizeof(ep->meb) ? MI_PEL_DW0 : MI_PEL_DW1, 0);
		return;
	}
	memcpy(ep->meb + off, data, len);
	mi_send_status(r, NVME_MI_RESP_SUCCESS);
}

/*
 * Shutdown (NVMe-MI 1.2 5.11): every enabled controller of the subsystem
 * gets CC.SHN (normal 01b, or abrupt 10b with DW0 bit 0), exactly as if
 * its host had written CC: CSTS.SHST goes to "occurring", then "complete"
 * once the controller has flushed, visible in-band and to health polls.
 */
static void mi_shutdown(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0)
{
	struct nvemu_subsys *s = ep->subsys;
	uint32_t shn = dw0 & NVEMU_MI_SHUTDOWN_ABRUPT ? 2 : 1;

	if (dw0 & ~(uint32_t)NVEMU_MI_SHUTDOWN_ABRUPT) {
		mi_send_invalid_param(r, MI_PEL_DW0, 1); /* reserved 31:1 */
		return;
	}
	mi_send_status(r, NVME_MI_RESP_SUCCESS);
	for (unsigned i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_ctrl *ctrl = s->ctrls[i];
		uint32_t cc = nvemu_ctrl_get_cc(ctrl);

		if ((cc & 1) && !NVME_CC_SHN(cc))
			nvemu_ctrl_set_cc(ctrl, cc | shn << NVME_CC_SHN_SHIFT);
	}
}

void mi_cmd_handle(struct nvemu_mi_ep *ep, const uint8_t *msg, size_t len, struct mi_reply *r)
{
	const uint8_t *data = msg + MI_REQ_HDR_LEN;
	uint32_t dw0, dw1;
	size_t dlen;
	uint8_t opc;

	if (len < MI_REQ_HDR_LEN) {
		mi_send_status(r, NVME_MI_RESP_INVALID_CMD_SIZE);
		return;
	}
	opc = msg[4];
	memcpy(&dw0, msg + 8, 4);
	memcpy(&dw1, msg + 12, 4);
	dw0 = le32toh(dw0);
	dw1 = le32toh(dw1);
	dlen = len - MI_REQ_HDR_LEN;

	if (opc > NVEMU_MI_OPC_SHUTDOWN || opc == NVEMU_MI_OPC_SES_RECEIVE ||
	    opc == NVEMU_MI_OPC_SES_SEND) {
		/*
		 * SES Receive/Send are optional and there are no enclosure
		 * services behind this endpoint: Invalid Command Opcode, as for
		 * every optional command not implemented (NVMe-MI 1.2 4.1.2).
		 */
		mi_send_status(r, NVME_MI_RESP_INVALID_OPCODE);
		return;
	}
	if (dlen && opc != NVEMU_MI_OPC_VPD_WRITE && opc != nvme_mi_mi_opcode_configuration_set &&
	    opc != NVEMU_MI_OPC_MEB_WRITE) {
		mi_send_status(r, NVME_MI_RESP_INVALID_CMD_SIZE);
		return;
	}
	switch (opc) {
	case nvme_mi_mi_opcode_mi_data_read:
		read_data(ep, r, dw0);
		break;
	case nvme_mi_mi_opcode_subsys_health_status_poll:
		subsys_health_poll(ep, r, dw1);
		break;
	case NVEMU_MI_OPC_CTRL_HEALTH_POLL:
		ctrl_health_poll(ep, r, dw0, dw1);
		break;
	case nvme_mi_mi_opcode_configuration_set:
		config_set(ep, r, dw0, dw1, data, dlen);
		break;
	case nvme_mi_mi_opcode_configuration_get:
		config_get(ep, r, dw0);
		break;
	case NVEMU_MI_OPC_VPD_READ:
		vpd_read(ep, r, dw0, dw1);
		break;
	case NVEMU_MI_OPC_VPD_WRITE:
		vpd_write(ep, r, dw0, dw1, data, dlen);
		break;
	case NVEMU_MI_OPC_RESET:
		mi_reset(ep, r, dw0);
		break;
	case NVEMU_MI_OPC_MEB_READ:
		meb_read(ep, r, dw0, dw1);
		break;
	case NVEMU_MI_OPC_MEB_WRITE:
		meb_write(ep, r, dw0, dw1, data, dlen);
		break;
	case NVEMU_MI_OPC_SHUTDOWN:
		mi_shutdown(ep, r, dw0);
		break;
	}
}

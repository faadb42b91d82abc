// SPDX-License-Identifier: MIT
/*
 * NVMe Admin commands tunnelled over NVMe-MI (NMIMT 2, NVMe-MI 1.2 6).
 * The SQE dwords from the request header run through the same engine as
 * in-band commands (req->oob: whether or not a host enabled the
 * controller); the response carries CQE dwords 0, 1 and 3 and the window
 * of the command's data that DOFST/DLEN select.
 */
#include <stdlib.h>
#include <string.h>

#include "mi-internal.h"

#define MI_ADMIN_HDR_LEN sizeof(struct nvme_mi_admin_req_hdr)

struct mi_admin_ctx {
	struct nvemu_req req;
	struct mi_reply r;
	uint8_t *buf;
	uint32_t win_off, win_len; /* response data window (reads) */
	bool read;
};

/* NVMe-MI 1.2 Figure 136: commands that make no sense out-of-band. */
static bool prohibited(uint8_t opc)
{
	switch (opc) {
	case nvme_admin_delete_sq:
	case nvme_admin_create_sq:
	case nvme_admin_delete_cq:
	case nvme_admin_create_cq:
	case nvme_admin_abort_cmd:
	case nvme_admin_async_event:
	case nvme_admin_keep_alive:
	case nvme_admin_nvme_mi_send:
	case nvme_admin_nvme_mi_recv:
	case nvme_admin_dbbuf:
	case nvme_admin_fabrics:
		return true;
	default:
		return false;
	}
}

/*
 * Admin commands that may keep their data in the Management Endpoint
 * Buffer: those whose data can be larger than a BMC wants in one message.
 */
static const uint8_t meb_opcodes[] = {
	nvme_admin_get_log_page, nvme_admin_identify, nvme_admin_set_features,
	nvme_admin_get_features, nvme_admin_ns_mgmt,  nvme_admin_fw_download,
	nvme_admin_ns_attach,
};

bool mi_admin_meb_supported(uint8_t opc)
{
	return memchr(meb_opcodes, opc, sizeof(meb_opcodes)) != NULL;
}

/* NUMCMD, then (command type, opcode) pairs as in the Optionally Supported Command List. */
size_t mi_admin_meb_list(uint8_t *out, size_t size)
{
	size_t n = 2;

	out[0] = sizeof(meb_opcodes);
	out[1] = 0;
	for (size_t i = 0; i < sizeof(meb_opcodes) && n + 2 <= size; i++) {
		out[n++] = NVME_MI_MT_ADMIN;
		out[n++] = meb_opcodes[i];
	}
	return n;
}

static void admin_done(struct nvemu_req *req)
{
	struct mi_admin_ctx *c = req->transport_priv;
	struct nvemu_mi_ep *ep = c->r.ep;
	struct nvme_mi_admin_resp_hdr h; /* only the part after the status */
	const uint8_t *data = NULL;
	uint32_t dlen = 0;

	ep->inflight--;
	if (ep->dying) {
		if (!ep->inflight)
			mi_ep_free(ep);
		goto out;
	}
	if (c->read && !req->cqe.status && c->win_off < req->xfer_len) {
		data = c->buf + c->win_off;
		dlen = req->xfer_len - c->win_off;
		if (dlen > c->win_len)
			dlen = c->win_len;
	}
	h.cdw0 = htole32(req->cqe.dw0);
	h.cdw1 = htole32(req->cqe.dw1);
	h.cdw3 = htole32((uint32_t)req->cqe.status << 17 | req->cqe.cid);
	if (c->r.meb && data) {
		/* The window goes to the start of the MEB; the response says so and carries none.
		 */
		memcpy(ep->meb, data, dlen);
		c->r.meb_resp = true;
		data = NULL;
		dlen = 0;
	}
	mi_send(&c->r, NVME_MI_RESP_SUCCESS, NULL, &h.cdw0, 12, data, dlen);
out:
	free(c->buf);
	free(c);
}

/* The SQE from the request header's dwords (NVMe-MI 1.2 Figure 135). */
static void admin_sqe(struct nvemu_sqe *cmd, const struct nvme_mi_admin_req_hdr *h)
{
	cmd->opc = h->opcode;
	cmd->nsid = le32toh(h->cdw1);
	cmd->cdw2 = le32toh(h->cdw2);
	cmd->cdw3 = le32toh(h->cdw3);
	cmd->mptr = (uint64_t)le32toh(h->cdw5) << 32 | le32toh(h->cdw4);
	cmd->cdw10 = le32toh(h->cdw10);
	cmd->cdw11 = le32toh(h->cdw11);
	cmd->cdw12 = le32toh(h->cdw12);
	cmd->cdw13 = le32toh(h->cdw13);
	cmd->cdw14 = le32toh(h->cdw14);
	cmd->cdw15 = le32toh(h->cdw15);
}

/*
 * An MI status; for Invalid Parameter, *pel is the request byte of the
 * offending field (the Parameter Error Location).
 */

/* Host to controller: the request data is the command's. Returns an MI status. */
static uint8_t admin_write_buf(struct mi_admin_ctx *c, const uint8_t *rdata, uint32_t rlen,
			       bool dlenv, uint32_t dofst, uint32_t dlen, uint16_t *pel)
{
	/* The data is what follows the header; an offset into it means nothing. */
	if (dofst) {
		*pel = MI_PEL_ADMIN_DOFST;
		return NVME_MI_RESP_INVALID_PARAM;
	}
	/* libnvme leaves DLEN (and DLENV) clear on some writes. */
	if ((dlenv && dlen != rlen) || rlen > MI_ADMIN_DLEN_MAX)
		return NVME_MI_RESP_INVALID_INPUT_SIZE;
	if (rlen) {
		c->buf = malloc(rlen);
		if (!c->buf)
			return NVME_MI_RESP_INTERNAL_ERR;
		memcpy(c->buf, rdata, rlen);
	}
	c->req.buf_len = rlen;
	return NVME_MI_RESP_SUCCESS;
}

/*
 * Controller to host: a buffer for all of the command's data, of which the
 * response carries the DOFST/DLEN window. Returns an MI status.
 */
static uint8_t admin_read_buf(struct mi_admin_ctx *c, struct nvemu_ctrl *ctrl, bool dlenv,
			      uint32_t dofst, uint32_t dlen, uint16_t *pel)
{
	int64_t exp = nvemu_req_expected_len(ctrl, 0, &c->req.cmd);

	*pel = MI_PEL_ADMIN_DLEN;
	if (exp < 0)
		exp = 0; /* malformed: the engine says how */
	if (exp > MI_ADMIN_XFER_MAX)
		return NVME_MI_RESP_INVALID_PARAM;
	/* DLEN not valid (libnvme's Get Features): all of the data from the offset. */
	if (!dlenv)
		dlen = exp > dofst ? (uint32_t)exp - dofst : 0;
	if (dlen > MI_ADMIN_DLEN_MAX)
		dlen = MI_ADMIN_DLEN_MAX;
	/*
	 * A window beyond the data is Invalid Parameter; commands whose size
	 * the engine does not know (0: vendor, unsupported) get the buffer
	 * the window describes and answer for themselves.
	 */
	if (exp && dlen && (uint64_t)dofst + dlen > (uint64_t)exp) {
		if (dofst >= exp)
			*pel = MI_PEL_ADMIN_DOFST;
		return NVME_MI_RESP_INVALID_PARAM;
	}
	if (!exp) {
		exp = (int64_t)dofst + dlen;
		if (exp > MI_ADMIN_XFER_MAX)
			return NVME_MI_RESP_INVALID_PARAM;
	}
	c->read = true;
	c->win_off = dofst;
	c->win_len = dlen;
	c->buf = calloc(1, exp ? (size_t)exp : 1);
	if (!c->buf)
		return NVME_MI_RESP_INTERNAL_ERR;
	c->req.buf_len = (uint32_t)exp;
	return NVME_MI_RESP_SUCCESS;
}

/*
 * The request header's checks before any command is built; an MI status.
 * DOFST and DLEN count only when the flags say they are valid.
 */
static uint8_t admin_check(const struct nvme_mi_admin_req_hdr *h, uint32_t dofst, uint32_t dlen,
			   uint16_t *pel)
{
	uint8_t dir = h->opcode & 3;

	if (prohibited(h->opcode))
		return NVME_MI_RESP_INVALID_OPCODE;
	*pel = MI_PEL_OPCODE;
	if (dir == NVEMU_XFER_TO_CTRL + NVEMU_XFER_FROM_CTRL)
		return NVME_MI_RESP_INVALID_PARAM;
	*pel = MI_PEL_ADMIN_DOFST;
	if (dofst & 3)
		return NVME_MI_RESP_INVALID_PARAM;
	*pel = MI_PEL_ADMIN_DLEN;
	if ((dlen & 3) || dlen > MI_ADMIN_DLEN_MAX)
		return NVME_MI_RESP_INVALID_PARAM;
	return NVME_MI_RESP_SUCCESS;
}

/*
 * The MEB bit: a command of the MEB Command Support List, no data in the
 * message, and a DLEN (and DOFST, for writes) within the buffer. Writes
 * take MEB[DOFST, DOFST + DLEN); reads put their DOFST/DLEN window at the
 * start of the MEB. An MI status.
 */
static uint8_t admin_meb_check(const struct nvemu_mi_ep *ep, const struct nvme_mi_admin_req_hdr *h,
			       uint32_t rlen, bool dlenv, uint32_t dofst, uint32_t dlen,
			       uint16_t *pel)
{
	*pel = MI_PEL_MEB;
	if (!mi_admin_meb_supported(h->opcode))
		return NVME_MI_RESP_INVALID_PARAM;
	if (rlen)
		return NVME_MI_RESP_INVALID_INPUT_SIZE;
	*pel = MI_PEL_ADMIN_DLEN;
	if ((h->opcode & 3) == NVEMU_XFER_TO_CTRL) {
		if (!dlenv || dlen > sizeof(ep->meb))
			return NVME_MI_RESP_INVALID_PARAM;
		*pel = MI_PEL_ADMIN_DOFST;
		if (dofst > sizeof(ep->meb) - dlen)
			return NVME_MI_RESP_INVALID_PARAM;
	} else if (dlen > sizeof(ep->meb)) {
		return NVME_MI_RESP_INVALID_PARAM;
	}
	return NVME_MI_RESP_SUCCESS;
}

static void admin_fail(struct mi_reply *r, uint8_t status, uint16_t pel)
{
	if (status == NVME_MI_RESP_INVALID_PARAM)
		mi_send_invalid_param(r, pel, 0);
	else
		mi_send_status(r, status);
}

void mi_admin_handle(struct nvemu_mi_ep *ep, const uint8_t *msg, size_t len, struct mi_reply *r)
{
	struct nvme_mi_admin_req_hdr h;
	struct mi_admin_ctx *c;
	struct nvemu_ctrl *ctrl;
	uint32_t dofst, dlen, rlen;
	uint8_t dir, status;
	uint16_t pel = MI_PEL_ADMIN_CTLID;
	bool dlenv;

	if (len < MI_ADMIN_HDR_LEN) {
		mi_send_status(r, NVME_MI_RESP_INVALID_CMD_SIZE);
		return;
	}
	memcpy(&h, msg, sizeof(h));
	rlen = (uint32_t)(len - MI_ADMIN_HDR_LEN);
	dir = h.opcode & 3;
	dlenv = h.flags & MI_ADMIN_DLENV;
	dofst = h.flags & MI_ADMIN_DOFSTV ? le32toh(h.doff) : 0;
	dlen = dlenv ? le32toh(h.dlen) : 0;
	ctrl = mi_ctrl_by_id(ep, le16toh(h.ctrl_id));
	status = ctrl ? admin_check(&h, dofst, dlen, &pel) : NVME_MI_RESP_INVALID_PARAM;
	if (status) {
		admin_fail(r, status, pel);
		return;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		mi_send_status(r, NVME_MI_RESP_INTERNAL_ERR);
		return;
	}
	c->r = *r;
	admin_sqe(&c->req.cmd, &h);
	if (r->meb)
		status = admin_meb_check(ep, &h, rlen, dlenv, dofst, dlen, &pel);
	if (status)
		;
	else if (dir == NVEMU_XFER_TO_CTRL && r->meb)
		status = admin_write_buf(c, ep->meb + dofst, dlen, true, 0, dlen, &pel);
	else if (dir == NVEMU_XFER_TO_CTRL)
		status = admin_write_buf(c, msg + MI_ADMIN_HDR_LEN, rlen, dlenv, dofst, dlen, &pel);
	else if (rlen)
		status = NVME_MI_RESP_INVALID_INPUT_SIZE;
	else if (dir == NVEMU_XFER_FROM_CTRL)
		status = admin_read_buf(c, ctrl, dlenv, dofst, dlen, &pel);
	if (status) {
		admin_fail(r, status, pel);
		free(c->buf);
		free(c);
		return;
	}
	c->req.buf = c->buf;
	c->req.sqid = 0;
	c->req.oob = true;
	c->req.done = admin_done;
	c->req.transport_priv = c;
	ep->inflight++;
	nvemu_ctrl_submit(ctrl, &c->req);
}

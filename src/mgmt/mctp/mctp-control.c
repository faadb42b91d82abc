// SPDX-License-Identifier: MIT
/*
 * MCTP control messages (DSP0236 1.3, section 12): what a bus owner such as
 * mctpd needs to assign an EID and discover an NVMe-MI endpoint.
 */
#include <string.h>

#include "mctp-internal.h"

#define CTRL_RQ	      0x80
#define CTRL_D	      0x40
#define CTRL_IID_MASK 0x1f

/* EIDs 01h-07h are reserved (DSP0236 8.2). */
#define EID_FIRST_ASSIGNABLE 0x08

/* Get Endpoint ID byte 2 bits 1:0 (DSP0236 12.4, Table 15). */
#define EID_TYPE_DYNAMIC	 0x00
#define EID_TYPE_STATIC_MATCH	 0x02
#define EID_TYPE_STATIC_MISMATCH 0x03

/*
 * DSP0236 version entries: major, minor, update (0xF0 | BCD, FFh: none),
 * alpha. The base and control protocol versions are backward compatible,
 * so every version up to the implemented one is listed (DSP0236 12.6).
 */
static const uint8_t ver_mctp[][4] = {
	{0xf1, 0xf0, 0xff, 0x00}, /* 1.0 */
	{0xf1, 0xf1, 0xff, 0x00}, /* 1.1 */
	{0xf1, 0xf2, 0xff, 0x00}, /* 1.2 */
	{0xf1, 0xf3, 0xf1, 0x00}, /* 1.3.1 */
};
static const uint8_t ver_nvme_mi[][4] = {
	{0xf1, 0xf2, 0xf0, 0x00}, /* NVMe-MI 1.2 */
};

static void ctrl_reply(struct nvemu_mctp_reply *reply, uint8_t *rsp, size_t len, uint8_t cc)
{
	rsp[3] = cc;
	/* An error completion carries the completion code alone. */
	nvemu_mctp_reply_send(reply, rsp, cc == NVEMU_MCTP_CC_SUCCESS ? len : 4);
}

/* Set Endpoint ID (DSP0236 12.3); fills rsp from byte 4 and returns the completion code. */
static uint8_t set_eid(struct nvemu_mctp_ep *ep, uint8_t dest, const uint8_t *msg, size_t len,
		       uint8_t *rsp, size_t *rlen)
{
	uint8_t op, eid;

	if (len != 5)
		return NVEMU_MCTP_CC_INVALID_LENGTH;
	/* Only a bus owner addressing this endpoint assigns its EID, never a broadcast (8.2). */
	if (dest == NVEMU_MCTP_EID_BCAST)
		return NVEMU_MCTP_CC_ERROR;
	op = msg[3] & 0x3;
	eid = msg[4];
	if (op == 2) {
		/* Reset static EID: only an endpoint configured with one has it. */
		if (!mctp_ep_static_eid(ep))
			return NVEMU_MCTP_CC_INVALID_DATA;
		mctp_ep_assign_eid(ep, mctp_ep_static_eid(ep));
	} else if (op != 3) {
		if (eid < EID_FIRST_ASSIGNABLE || eid == NVEMU_MCTP_EID_BCAST)
			return NVEMU_MCTP_CC_INVALID_DATA;
		mctp_ep_assign_eid(ep, eid);
	}
	rsp[4] = 0x00; /* EID assignment accepted, no EID pool */
	rsp[5] = nvemu_mctp_ep_eid(ep);
	rsp[6] = 0; /* pool size */
	*rlen = 7;
	return NVEMU_MCTP_CC_SUCCESS;
}

/* Get MCTP Version Support; fills rsp from byte 4 and returns the completion code. */
static uint8_t get_version(struct nvemu_mctp_ep *ep, const uint8_t *msg, size_t len, uint8_t *rsp,
			   size_t *rlen)
{
	const uint8_t(*v)[4];
	size_t n;

	if (len != 4)
		return NVEMU_MCTP_CC_INVALID_LENGTH;
	if (msg[3] == 0xff || msg[3] == NVEMU_MCTP_TYPE_CONTROL) {
		v = ver_mctp;
		n = sizeof(ver_mctp) / sizeof(ver_mctp[0]);
	} else if (msg[3] == NVEMU_MCTP_TYPE_NVME_MI &&
		   mctp_ep_handles(ep, NVEMU_MCTP_TYPE_NVME_MI)) {
		v = ver_nvme_mi;
		n = sizeof(ver_nvme_mi) / sizeof(ver_nvme_mi[0]);
	} else {
		return NVEMU_MCTP_CC_TYPE_UNSUPPORTED;
	}
	rsp[4] = (uint8_t)n;
	memcpy(rsp + 5, v, n * 4);
	*rlen = 5 + n * 4;
	return NVEMU_MCTP_CC_SUCCESS;
}

/* Get Endpoint ID (DSP0236 12.4): a simple endpoint, static if configured so. */
static uint8_t get_eid(struct nvemu_mctp_ep *ep, uint8_t *rsp, size_t *rlen)
{
	uint8_t eid = nvemu_mctp_ep_eid(ep), st = mctp_ep_static_eid(ep);

	rsp[4] = eid;
	if (!st)
		rsp[5] = EID_TYPE_DYNAMIC;
	else
		rsp[5] = st == eid ? EID_TYPE_STATIC_MATCH : EID_TYPE_STATIC_MISMATCH;
	rsp[6] = 0x00; /* medium specific */
	*rlen = 7;
	return NVEMU_MCTP_CC_SUCCESS;
}

/* Request lengths of the commands without parameters; a strict peer refuses more (12.1). */
static bool bare_request(uint8_t cmd)
{
	return cmd == NVEMU_MCTP_CTRL_GET_EID || cmd == NVEMU_MCTP_CTRL_GET_UUID ||
	       cmd == NVEMU_MCTP_CTRL_GET_MSG_TYPES;
}

void mctp_control_handle(struct nvemu_mctp_ep *ep, uint8_t dest, const uint8_t *msg, size_t len,
			 struct nvemu_mctp_reply *reply)
{
	uint8_t rsp[4 + 2 + 128], cc;
	size_t n = 4;

	/* A response, a datagram or a message too short to name a command: no reply. */
	if (len < 3 || !(msg[1] & CTRL_RQ) || (msg[1] & CTRL_D)) {
		nvemu_mctp_reply_drop(reply);
		return;
	}
	memset(rsp, 0, sizeof(rsp));
	rsp[0] = NVEMU_MCTP_TYPE_CONTROL;
	rsp[1] = msg[1] & CTRL_IID_MASK;
	rsp[2] = msg[2];

	if (bare_request(msg[2]) && len != 3) {
		ctrl_reply(reply, rsp, n, NVEMU_MCTP_CC_INVALID_LENGTH);
		return;
	}
	switch (msg[2]) {
	case NVEMU_MCTP_CTRL_SET_EID:
		cc = set_eid(ep, dest, msg, len, rsp, &n);
		break;
	case NVEMU_MCTP_CTRL_GET_EID:
		cc = get_eid(ep, rsp, &n);
		break;
	case NVEMU_MCTP_CTRL_GET_UUID:
		memcpy(rsp + 4, nvemu_mctp_ep_uuid(ep), 16);
		n = 20;
		cc = NVEMU_MCTP_CC_SUCCESS;
		break;
	case NVEMU_MCTP_CTRL_GET_VERSION:
		cc = get_version(ep, msg, len, rsp, &n);
		break;
	case NVEMU_MCTP_CTRL_GET_MSG_TYPES:
		rsp[4] = mctp_ep_msg_types(ep, rsp + 5, sizeof(rsp) - 5);
		n = 5 + rsp[4];
		cc = NVEMU_MCTP_CC_SUCCESS;
		break;
	default:
		cc = NVEMU_MCTP_CC_UNSUPPORTED_CMD;
		break;
	}
	ctrl_reply(reply, rsp, n, cc);
}

// SPDX-License-Identifier: MIT
/*
 * Glue between an MCTP endpoint and an NVMe-MI endpoint: message type 4
 * goes to nvemu_mi_ep_handle(), its response back through the MCTP reply,
 * and a Configuration Set of the MCTP transmission unit reaches the MCTP
 * endpoint.
 *
 * nvemu_mi_ep_handle() responds exactly once, possibly later, or never for a
 * message it drops (bad MIC, a response, not NVMe-MI). The reply must be
 * completed in every case, so a message still unanswered when the call
 * returns is dropped here if it is one of those; otherwise the answer comes
 * later.
 */
#include <endian.h>
#include <string.h>

#include <nvemu/mi.h>

#include "mctp-internal.h"
#include "mgmt/mi/mi-msg.h"
#include "util/crc32c.h"

static void mi_respond(void *ctx, const uint8_t *resp, size_t len)
{
	struct nvemu_mctp_reply *reply = ctx;

	mctp_ep_mi_answered(reply);
	if (resp && len)
		nvemu_mctp_reply_send(reply, resp, len);
	else
		nvemu_mctp_reply_drop(reply);
}

static bool mi_dropped(const uint8_t *msg, size_t len)
{
	uint32_t mic;

	if (len < 4 + MI_MIC_LEN || len > MI_MSG_MAX ||
	    msg[0] != (NVEMU_MCTP_TYPE_IC | NVEMU_MCTP_TYPE_NVME_MI))
		return true;
	memcpy(&mic, msg + len - MI_MIC_LEN, MI_MIC_LEN);
	if (le32toh(mic) != nvemu_crc32c(msg, len - MI_MIC_LEN))
		return true;
	return msg[1] & MI_NMP_ROR;
}

static void mi_msg(void *ctx, const uint8_t *msg, size_t len, struct nvemu_mctp_reply *reply)
{
	struct nvemu_mctp_ep *ep = ctx;

	mctp_ep_mi_pending(ep, reply);
	nvemu_mi_ep_handle(mctp_ep_mi(ep), msg, len, mi_respond, reply);
	/* Not answered yet: either dropped, or an Admin command still running. */
	if (mctp_ep_mi_pending(ep, NULL) == reply && mi_dropped(msg, len))
		nvemu_mctp_reply_drop(reply);
}

static void mi_mtu_changed(void *arg, uint16_t mtu)
{
	nvemu_mctp_ep_set_mtu(arg, mtu, NULL);
}

static void aem_bind(void *arg)
{
	mctp_ep_aem_bind(arg);
}

static int aem_send(void *arg, const uint8_t *msg, size_t len)
{
	return mctp_ep_aem_send(arg, msg, len);
}

static const struct nvemu_mi_aem_ops aem_ops = {.bind = aem_bind, .send = aem_send};

int nvemu_mctp_ep_attach_mi(struct nvemu_mctp_ep *ep, struct nvemu_mi_ep *mi,
			    struct nvemu_error *err)
{
	int ret;

	if (!mi) {
		if (mctp_ep_mi(ep)) {
			nvemu_mi_ep_set_mtu_cb(mctp_ep_mi(ep), NULL, NULL);
			nvemu_mi_ep_set_aem_ops(mctp_ep_mi(ep), NULL, NULL);
		}
		nvemu_mctp_ep_set_handler(ep, NVEMU_MCTP_TYPE_NVME_MI, NULL, NULL);
		mctp_ep_set_mi(ep, NULL);
		return 0;
	}
	ret = nvemu_mctp_ep_set_mtu(ep, nvemu_mi_ep_mtu(mi), err);
	if (ret)
		return ret;
	mctp_ep_set_mi(ep, mi);
	nvemu_mi_ep_set_mtu_cb(mi, mi_mtu_changed, ep);
	nvemu_mi_ep_set_aem_ops(mi, &aem_ops, ep);
	return nvemu_mctp_ep_set_handler(ep, NVEMU_MCTP_TYPE_NVME_MI, mi_msg, ep);
}

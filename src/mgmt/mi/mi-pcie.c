// SPDX-License-Identifier: MIT
/*
 * The NVMe-MI PCIe Command Set (NMIMT 4): Configuration Read and Write of
 * the endpoint's PCIe function, through the ops the embedder gives
 * (nvemud: the configuration space a vfio-user guest sees). The request is
 * the 4-byte header, the opcode dword and three PCIe Request Dwords: 0 the
 * length, 1 the offset, 2 reserved; a write carries exactly length bytes.
 * Memory and I/O space commands are not offered.
 */
#include <string.h>

#include "mi-internal.h"

#define MI_PCIE_HDR_LEN 20 /* through PCIe Request Dword 2 */
#define MI_PEL_PCIE_LEN 8  /* PCIe Request Dword 0 */
#define MI_PEL_PCIE_OFF 12 /* PCIe Request Dword 1 */
/* The most a response carries: the message limit less header and MIC. */
#define MI_PCIE_XFER_MAX 4096u

void nvemu_mi_ep_set_pcie_ops(struct nvemu_mi_ep *ep, const struct nvemu_mi_pcie_ops *ops,
			      void *arg)
{
	ep->pcie_ops = ops;
	ep->pcie_arg = arg;
}

static int cfg_read(struct nvemu_mi_ep *ep, uint32_t off, uint32_t len, uint8_t *out)
{
	while (len) {
		unsigned size = !(off & 3) && len >= 4 ? 4 : 1;
		uint32_t v;

		if (ep->pcie_ops->cfg_read(ep->pcie_arg, ep->subsys, off, size, &v))
			return -1;
		for (unsigned i = 0; i < size; i++)
			*out++ = (uint8_t)(v >> (8 * i));
		off += size;
		len -= size;
	}
	return 0;
}

static int cfg_write(struct nvemu_mi_ep *ep, uint32_t off, uint32_t len, const uint8_t *in)
{
	while (len) {
		unsigned size = !(off & 3) && len >= 4 ? 4 : 1;
		uint32_t v = 0;

		for (unsigned i = 0; i < size; i++)
			v |= (uint32_t)in[i] << (8 * i);
		if (ep->pcie_ops->cfg_write(ep->pcie_arg, ep->subsys, off, size, v))
			return -1;
		in += size;
		off += size;
		len -= size;
	}
	return 0;
}

void mi_pcie_handle(struct nvemu_mi_ep *ep, const uint8_t *msg, size_t len, struct mi_reply *r)
{
	uint8_t data[MI_PCIE_XFER_MAX];
	uint32_t dlen, off, limit;
	uint8_t opc;

	if (len < MI_PCIE_HDR_LEN) {
		mi_send_status(r, NVME_MI_RESP_INVALID_CMD_SIZE);
		return;
	}
	opc = msg[4];
	if (opc != NVEMU_MI_PCIE_CFG_READ && opc != NVEMU_MI_PCIE_CFG_WRITE) {
		mi_send_status(r, NVME_MI_RESP_INVALID_OPCODE);
		return;
	}
	memcpy(&dlen, msg + MI_PEL_PCIE_LEN, 4);
	memcpy(&off, msg + MI_PEL_PCIE_OFF, 4);
	dlen = le32toh(dlen);
	off = le32toh(off);
	if (opc == NVEMU_MI_PCIE_CFG_READ && len != MI_PCIE_HDR_LEN) {
		mi_send_status(r, NVME_MI_RESP_INVALID_CMD_SIZE);
		return;
	}
	if (opc == NVEMU_MI_PCIE_CFG_WRITE && len - MI_PCIE_HDR_LEN != dlen) {
		mi_send_status(r, NVME_MI_RESP_INVALID_INPUT_SIZE);
		return;
	}
	if (!ep->pcie_ops) {
		mi_send_status(r, NVME_MI_RESP_PCIE_INACCESSIBLE);
		return;
	}
	limit = ep->pcie_ops->cfg_size < MI_PCIE_XFER_MAX ? ep->pcie_ops->cfg_size : MI_PCIE_XFER_MAX;
	if (!dlen || dlen > limit) {
		mi_send_invalid_param(r, MI_PEL_PCIE_LEN, 0);
		return;
	}
	if (off >= limit || dlen > limit - off) {
		mi_send_invalid_param(r, MI_PEL_PCIE_OFF, 0);
		return;
	}
	if (opc == NVEMU_MI_PCIE_CFG_WRITE) {
		if (cfg_write(ep, off, dlen, msg + MI_PCIE_HDR_LEN))
			mi_send_status(r, NVME_MI_RESP_PCIE_INACCESSIBLE);
		else
			mi_send_status(r, NVME_MI_RESP_SUCCESS);
		return;
	}
	if (cfg_read(ep, off, dlen, data)) {
		mi_send_status(r, NVME_MI_RESP_PCIE_INACCESSIBLE);
		return;
	}
	mi_send(r, NVME_MI_RESP_SUCCESS, NULL, data, dlen, NULL, 0);
}

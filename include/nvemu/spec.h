/* SPDX-License-Identifier: MIT */
/*
 * Spec structures that libnvme's <nvme/types.h> does not define: the
 * submission and completion queue entries, and status-code helpers.
 * Everything else (Identify, logs, feature ids, status codes) comes from
 * libnvme so that nvemu and the hosts it serves agree on one definition.
 */
#ifndef NVEMU_SPEC_H
#define NVEMU_SPEC_H

#include <stdint.h>
#include <nvme/types.h>

/* Submission queue entry (NVMe Base 2.0, Figure 88). Little-endian on the wire. */
struct nvemu_sqe {
	uint8_t opc;
	uint8_t flags; /* FUSE 1:0, PSDT 7:6 */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	uint64_t dptr1; /* PRP1, or the first half of an SGL descriptor */
	uint64_t dptr2; /* PRP2, or the second half */
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
};

/* Completion queue entry. status holds bits 15:1 of DW3 (no phase tag). */
struct nvemu_cqe {
	uint32_t dw0;
	uint32_t dw1;
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;
};

_Static_assert(sizeof(struct nvemu_sqe) == 64, "SQE is 64 bytes");
_Static_assert(sizeof(struct nvemu_cqe) == 16, "CQE is 16 bytes");

/*
 * A status as libnvme encodes it: SC in 7:0, SCT in 10:8, CRD 12:11,
 * M bit 13, DNR bit 14.
 */
#define NVEMU_STATUS(sct, sc) ((uint16_t)(((sct) << NVME_SCT_SHIFT) | (sc)))
#define NVEMU_SC_GENERIC(sc)  NVEMU_STATUS(NVME_SCT_GENERIC, sc)
#define NVEMU_SC_CMD(sc)      NVEMU_STATUS(NVME_SCT_CMD_SPECIFIC, sc)
#define NVEMU_SC_MEDIA(sc)    NVEMU_STATUS(NVME_SCT_MEDIA, sc)
#define NVEMU_DNR	      NVME_SC_DNR

static inline uint8_t nvemu_status_sct(uint16_t status)
{
	return (status >> NVME_SCT_SHIFT) & NVME_SCT_MASK;
}

static inline uint8_t nvemu_status_sc(uint16_t status)
{
	return status & NVME_SC_MASK;
}

/* Data transfer direction encoded in opcode bits 1:0. */
enum nvemu_xfer_dir {
	NVEMU_XFER_NONE = 0,
	NVEMU_XFER_TO_CTRL = 1,	  /* host to controller (write) */
	NVEMU_XFER_FROM_CTRL = 2, /* controller to host (read) */
	NVEMU_XFER_BIDI = 3,
};

static inline enum nvemu_xfer_dir nvemu_opc_dir(uint8_t opc)
{
	return (enum nvemu_xfer_dir)(opc & 3);
}

#define NVEMU_NSID_ALL 0xffffffffu

#endif

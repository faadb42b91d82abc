// SPDX-License-Identifier: MIT
/*
 * PCI configuration space of the NVMe function: a type 0 header with class
 * 01 08 02 (mass storage, NVM, NVMe I/O controller), BAR0 (64-bit memory),
 * and the Power Management, MSI-X and PCI Express capabilities; a primary
 * controller (SR-IOV PF) adds the SR-IOV extended capability at 0x100.
 * Writes go through a per-byte writable mask, which also makes BAR sizing
 * (all-ones in, size mask out) fall out naturally.
 */
#include "pcie-internal.h"

#define PCI_COMMAND	     0x04
#define PCI_STATUS	     0x06
#define PCI_BAR0	     0x10
#define PCI_CMD_MEM	     (1u << 1)
#define PCI_CMD_MASTER	     (1u << 2)
#define PCI_CMD_PARITY	     (1u << 6)
#define PCI_CMD_SERR	     (1u << 8)
#define PCI_CMD_INTX_DISABLE (1u << 10)
#define PCI_STATUS_INTX	     (1u << 3)
#define PCI_STATUS_CAP_LIST  (1u << 4)

#define MSIX_MC_ENABLE (1u << 15)
#define MSIX_MC_FMASK  (1u << 14)
#define EXP_DEVCTL_FLR (1u << 15)

static void put8(struct nvemu_pcie_ctrl *pc, uint32_t off, uint8_t v, uint8_t wmask)
{
	pc->cfg[off] = v;
	pc->wmask[off] = wmask;
}

static void put16(struct nvemu_pcie_ctrl *pc, uint32_t off, uint16_t v, uint16_t wmask)
{
	put8(pc, off, v & 0xff, wmask & 0xff);
	put8(pc, off + 1, v >> 8, wmask >> 8);
}

static void put32(struct nvemu_pcie_ctrl *pc, uint32_t off, uint32_t v, uint32_t wmask)
{
	put16(pc, off, v & 0xffff, wmask & 0xffff);
	put16(pc, off + 2, v >> 16, wmask >> 16);
}

static uint16_t get16(const struct nvemu_pcie_ctrl *pc, uint32_t off)
{
	return pc->cfg[off] | (uint16_t)pc->cfg[off + 1] << 8;
}

uint16_t pcie_cfg_command(const struct nvemu_pcie_ctrl *pc)
{
	return get16(pc, PCI_COMMAND);
}

uint16_t pcie_cfg_msix_mc(const struct nvemu_pcie_ctrl *pc)
{
	return get16(pc, NVEMU_PCIE_CAP_MSIX + 2);
}

static const struct nvemu_port *ctrl_port(const struct nvemu_ctrl *ctrl)
{
	const struct nvemu_subsys *s = ctrl->subsys;

	for (unsigned i = 0; i < s->nr_ports; i++)
		if (s->ports[i].id == ctrl->p.port_id)
			return &s->ports[i];
	return NULL;
}

/*
 * SR-IOV (PCIe 6.0 9.3.3). Each VF is its own vfio-user function, all of
 * them there from the start: TotalVFs = InitialVFs = NumVFs, VF Enable and
 * VF MSE set, read-only (the VFs come from nvemud's configuration).
 */
static void cfg_sriov(struct nvemu_pcie_ctrl *pc, const struct nvemu_virt_info *vi)
{
	uint32_t c = NVEMU_PCIE_ECAP_SRIOV;
	uint16_t n = vi->p.total_vfs;

	put32(pc, c, 0x0010u | 1u << 16, 0); /* ID 0010h, version 1, last */
	put32(pc, c + 0x04, 0, 0);	      /* SR-IOV Capabilities */
	put16(pc, c + 0x08, 1u << 0 | 1u << 3, 0); /* VF Enable, VF MSE */
	put16(pc, c + 0x0c, n, 0);		   /* InitialVFs */
	put16(pc, c + 0x0e, n, 0);		   /* TotalVFs */
	put16(pc, c + 0x10, n, 0);		   /* NumVFs */
	put16(pc, c + 0x14, 1, 0);		   /* First VF Offset */
	put16(pc, c + 0x16, 1, 0);		   /* VF Stride */
	put16(pc, c + 0x1a, pc->ctrl->subsys->vendor.pci_did, 0);
	put32(pc, c + 0x1c, 0x553, 0); /* Supported Page Sizes: 4K, 8K, 64K, 256K, 1M, 4M */
	put32(pc, c + 0x20, 1, 0x553); /* System Page Size: 4K */
	/* VF BAR0: the same 64-bit BAR0 as the PF's */
	put32(pc, c + 0x24, 0x4, ~(NVEMU_PCIE_BAR0_SIZE - 1));
	put32(pc, c + 0x28, 0, 0xffffffff);
}

/* A secondary controller's vectors follow its VI resources, which change while it exists. */
static void cfg_sync_msix(struct nvemu_pcie_ctrl *pc)
{
	uint32_t o = NVEMU_PCIE_CAP_MSIX + 2;
	uint16_t mc = (uint16_t)((get16(pc, o) & ~0x7ffu) | (nvemu_pcie_msix_vectors(pc) - 1u));

	pc->cfg[o] = mc & 0xff;
	pc->cfg[o + 1] = mc >> 8;
}

void pcie_cfg_init(struct nvemu_pcie_ctrl *pc)
{
	struct nvemu_virt_info vi;
	const struct nvemu_vendor *v = &pc->ctrl->subsys->vendor;
	const struct nvemu_port *port = ctrl_port(pc->ctrl);
	uint8_t speed = 3, width = 4; /* 8 GT/s x4 unless the port says otherwise */
	uint32_t e = NVEMU_PCIE_CAP_EXP;

	if (port && port->p.type == NVEMU_PORT_PCIE) {
		if (port->p.pcie.max_link_speed >= 1 && port->p.pcie.max_link_speed <= 5)
			speed = port->p.pcie.max_link_speed;
		if (port->p.pcie.max_link_width >= 1 && port->p.pcie.max_link_width <= 32)
			width = port->p.pcie.max_link_width;
	}
	memset(pc->cfg, 0, sizeof(pc->cfg));
	memset(pc->wmask, 0, sizeof(pc->wmask));

	put16(pc, 0x00, v->pci_vid, 0);
	put16(pc, 0x02, v->pci_did, 0);
	put16(pc, PCI_COMMAND, 0,
	      PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_PARITY | PCI_CMD_SERR | PCI_CMD_INTX_DISABLE);
	put16(pc, PCI_STATUS, PCI_STATUS_CAP_LIST, 0);
	put8(pc, 0x08, 0, 0);	 /* revision */
	put8(pc, 0x09, 0x02, 0); /* NVM Express I/O controller */
	put8(pc, 0x0a, 0x08, 0); /* Non-Volatile Memory controller */
	put8(pc, 0x0b, 0x01, 0); /* Mass storage */
	put8(pc, 0x0c, 0, 0xff); /* cache line size */
	put8(pc, 0x0e, 0, 0);	 /* header type 0, single function */
	/* BAR0: memory, 64-bit (bits 2:1 = 10b), not prefetchable */
	put32(pc, PCI_BAR0, 0x4, ~(NVEMU_PCIE_BAR0_SIZE - 1));
	put32(pc, PCI_BAR0 + 4, 0, 0xffffffff);
	put16(pc, 0x2c, v->pci_svid, 0);
	put16(pc, 0x2e, v->pci_sdid, 0);
	put8(pc, 0x34, NVEMU_PCIE_CAP_PM, 0);
	put8(pc, 0x3c, 0, 0xff); /* interrupt line */
	put8(pc, 0x3d, 1, 0);	 /* INTA# */

	/* Power Management: version 3, D0/D3hot, No_Soft_Reset */
	put8(pc, NVEMU_PCIE_CAP_PM, 0x01, 0);
	put8(pc, NVEMU_PCIE_CAP_PM + 1, NVEMU_PCIE_CAP_MSIX, 0);
	put16(pc, NVEMU_PCIE_CAP_PM + 2, 0x0003, 0);
	put16(pc, NVEMU_PCIE_CAP_PM + 4, 1u << 3, 0x0003);

	/* MSI-X: table and PBA in BAR0 */
	put8(pc, NVEMU_PCIE_CAP_MSIX, 0x11, 0);
	put8(pc, NVEMU_PCIE_CAP_MSIX + 1, NVEMU_PCIE_CAP_EXP, 0);
	put16(pc, NVEMU_PCIE_CAP_MSIX + 2, (uint16_t)(pc->nvec - 1),
	      MSIX_MC_ENABLE | MSIX_MC_FMASK);
	put32(pc, NVEMU_PCIE_CAP_MSIX + 4, NVEMU_PCIE_MSIX_TABLE_OFF | 0, 0);
	put32(pc, NVEMU_PCIE_CAP_MSIX + 8, NVEMU_PCIE_MSIX_PBA_OFF | 0, 0);

	/* PCI Express capability v2, endpoint */
	put8(pc, e, 0x10, 0);
	put8(pc, e + 1, 0, 0);
	put16(pc, e + 2, 0x0002, 0);
	/* DevCap: 256 B max payload, FLR capable */
	put32(pc, e + 4, 1u | 1u << 28, 0);
	/* DevCtl: errors reporting, relaxed ordering, MPS, no snoop, MRRS (512 B) */
	put16(pc, e + 8, 2u << 12 | 1u << 4 | 1u << 11, 0x7cff);
	put16(pc, e + 0xa, 0, 0);
	/* LinkCap: max speed/width, port number */
	put32(pc, e + 0xc,
	      speed | (uint32_t)width << 4 |
		      (uint32_t)(port && port->p.type == NVEMU_PORT_PCIE ? port->p.pcie.port_number
									 : 0)
			      << 24,
	      0);
	put16(pc, e + 0x10, 0, 0x01c3); /* LinkCtl: ASPM, RCB, CCC, ES */
	put16(pc, e + 0x12, speed | (uint16_t)width << 4, 0);
	/* DevCap2: completion timeout ranges A-D, disable supported */
	put32(pc, e + 0x24, 0x1f, 0);
	put16(pc, e + 0x28, 0, 0x040f);
	/* LinkCap2: supported speeds up to the max */
	put32(pc, e + 0x2c, ((1u << speed) - 1) << 1, 0);
	put16(pc, e + 0x30, speed, 0x000f);
	/* 0x100: no extended capabilities (the header reads 0) but SR-IOV on a primary */
	if (!nvemu_subsys_virt_info(pc->ctrl->subsys, pc->ctrl->cntlid, &vi))
		cfg_sriov(pc, &vi);
}

uint32_t nvemu_pcie_cfg_read(struct nvemu_pcie_ctrl *pc, uint32_t off, unsigned size)
{
	uint32_t v = 0;

	if ((size != 1 && size != 2 && size != 4) || off >= NVEMU_PCIE_CFG_SIZE ||
	    size > NVEMU_PCIE_CFG_SIZE - off)
		return size == 4 ? 0xffffffffu : (1u << (size * 8 % 32)) - 1;
	cfg_sync_msix(pc);
	for (unsigned i = 0; i < size; i++) {
		uint8_t b = pc->cfg[off + i];

		/* Status: Interrupt Status mirrors the INTx level. */
		if (off + i == PCI_STATUS && pc->intx)
			b |= PCI_STATUS_INTX;
		v |= (uint32_t)b << (8 * i);
	}
	return v;
}

void nvemu_pcie_cfg_write(struct nvemu_pcie_ctrl *pc, uint32_t off, unsigned size, uint32_t val)
{
	uint16_t old_cmd = pcie_cfg_command(pc), old_mc = pcie_cfg_msix_mc(pc);
	bool flr = false;

	if ((size != 1 && size != 2 && size != 4) || off >= NVEMU_PCIE_CFG_SIZE ||
	    size > NVEMU_PCIE_CFG_SIZE - off)
		return;
	for (unsigned i = 0; i < size; i++) {
		uint32_t o = off + i;
		uint8_t b = (uint8_t)(val >> (8 * i)), m = pc->wmask[o];

		/* Device Control: Initiate FLR is write-only, reads as 0. */
		if (o == NVEMU_PCIE_CAP_EXP + 9 && (b & (EXP_DEVCTL_FLR >> 8)))
			flr = true;
		pc->cfg[o] = (pc->cfg[o] & ~m) | (b & m);
	}
	if (flr) {
		nvemu_pcie_ctrl_reset(pc);
		return;
	}
	if (old_cmd != pcie_cfg_command(pc) || old_mc != pcie_cfg_msix_mc(pc))
		pcie_irq_update(pc);
}

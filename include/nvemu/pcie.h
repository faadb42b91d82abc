/* SPDX-License-Identifier: MIT */
/*
 * An NVMe controller as a PCI Express function (NVMe Base 2.0 + PCIe
 * transport 1.0): configuration space, BAR0 registers and doorbells, queues
 * in host memory, PRP/SGL data pointers, MSI-X / INTx interrupts.
 *
 * Transport-independent: the transport (vfio-user server, unit tests, the
 * fuzzer) owns the guest's memory and interrupt delivery and passes them in
 * as struct nvemu_pci_host_ops. Everything is single-threaded: call these
 * functions from one event loop. Backend completions (file bdevs) arrive
 * through nvemu_subsys_poll(), which the transport's loop keeps calling.
 *
 * BAR0 layout (64-bit, non-prefetchable memory BAR of NVEMU_PCIE_BAR0_SIZE):
 *   0x0000  controller registers (CAP, VS, INTMS, INTMC, CC, CSTS, NSSR,
 *           AQA, ASQ, ACQ, CMBLOC = CMBSZ = 0)
 *   0x1000  doorbells, CAP.DSTRD = 0: SQ y tail at 0x1000 + 8y, CQ y head
 *           at 0x1000 + 8y + 4 (y = 0..num_io_queues, at most 0x3000)
 *   0x4000  MSI-X table (BIR 0), 16 bytes per vector
 *   0x8000  MSI-X PBA (BIR 0)
 * No other BAR is implemented (BAR2..5 read 0 and size to 0).
 * The doorbell pages may also live in memory the host maps (see
 * nvemu_pcie_db_attach), and Doorbell Buffer Config (admin 7Ch, OACS bit
 * 8) adds shadow doorbells with EventIdx for I/O queues.
 *
 * MSI-X vectors: nvemu_pcie_msix_vectors() = num_io_queues + 1 (vector 0
 * serves the admin CQ). In-band, the table's per-vector Mask bits, the
 * Function Mask and the PBA work as the PCI spec says. A transport whose
 * client emulates the table itself (QEMU's vfio-user-pci traps the table
 * and PBA and asks for per-vector eventfds with VFIO_DEVICE_SET_IRQS)
 * calls nvemu_pcie_msix_ext_enable() and nvemu_pcie_msix_ext_mask()
 * instead; the in-band table is then ignored.
 *
 * Register accesses: BAR0 registers accept 4- and 8-byte accesses (8 on
 * CAP/ASQ/ACQ or split in two 4-byte halves, low first); 1- and 2-byte
 * reads work everywhere. Config space accepts 1, 2 and 4 bytes. Memory
 * Space Enable / Bus Master Enable are stored, not enforced (the VMM maps
 * the BAR; DMA goes through host ops the transport controls).
 */
#ifndef NVEMU_PCIE_H
#define NVEMU_PCIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nvemu/error.h>
#include <nvemu/model.h>

#define NVEMU_PCIE_CFG_SIZE	  0x1000u  /* PCIe extended configuration space */
#define NVEMU_PCIE_BAR0_SIZE	  0x10000u /* 64 KiB */
#define NVEMU_PCIE_DB_OFF	  0x1000u
#define NVEMU_PCIE_MSIX_TABLE_OFF 0x4000u
#define NVEMU_PCIE_MSIX_PBA_OFF	  0x8000u

/* Capability offsets in configuration space (the list starts at 0x34 -> 0x40). */
#define NVEMU_PCIE_CAP_PM   0x40u /* Power Management, -> 0x50 */
#define NVEMU_PCIE_CAP_MSIX 0x50u /* MSI-X, -> 0x60 */
#define NVEMU_PCIE_CAP_EXP  0x60u /* PCI Express (v2, endpoint), end of list */
#define NVEMU_PCIE_ECAP_SRIOV 0x100u /* SR-IOV extended capability, on a primary controller */

struct nvemu_pcie_ctrl;

/* The host (guest memory + interrupt lines) as the transport provides it. */
struct nvemu_pci_host_ops {
	/* Copy guest-physical memory; 0 on success, negative errno if unmapped. */
	int (*dma_read)(void *ctx, uint64_t addr, void *buf, size_t len);
	int (*dma_write)(void *ctx, uint64_t addr, const void *buf, size_t len);
	/*
	 * Optional: a pointer to len bytes of guest memory at addr when the
	 * guest shares it with this process (the whole range must be mapped),
	 * NULL otherwise. The pointer must stay valid until the queue using it
	 * is deleted; a transport that unmaps DMA regions under live queues
	 * must reset the controller first (nvemu_pcie_ctrl_reset).
	 */
	void *(*map)(void *ctx, uint64_t addr, size_t len);
	/* Signal MSI-X vector (the eventfd of that vector); may be NULL. */
	void (*msix_notify)(void *ctx, uint16_t vector);
	/* INTx (INTA#) level changed; may be NULL. */
	void (*intx_set)(void *ctx, bool asserted);
};

/*
 * Bind the controller to a PCIe function: registers, queues and interrupts
 * live in *out until nvemu_pcie_ctrl_destroy(). The controller must not be
 * bound to another transport (-EBUSY). ops and ctx must outlive *out.
 * Identify Controller then reports SGL support (Data Block, Segment, Last
 * Segment, Bit Bucket).
 */
int nvemu_pcie_ctrl_create(struct nvemu_ctrl *ctrl, const struct nvemu_pci_host_ops *ops, void *ctx,
			   struct nvemu_pcie_ctrl **out, struct nvemu_error *err);
/*
 * Resets the controller if enabled (in-flight commands are waited for a
 * bounded time, then abandoned: their completions are dropped), unbinds it.
 */
void nvemu_pcie_ctrl_destroy(struct nvemu_pcie_ctrl *pc);
struct nvemu_ctrl *nvemu_pcie_ctrl_engine(struct nvemu_pcie_ctrl *pc);

/*
 * Function Level Reset (VFIO_DEVICE_RESET, a guest that went away):
 * controller reset as CC.EN 1->0, configuration space and MSI-X state back
 * to power-on values. AQA/ASQ/ACQ keep their values as the spec allows.
 */
void nvemu_pcie_ctrl_reset(struct nvemu_pcie_ctrl *pc);
/*
 * Commands fetched and not completed yet, a reset ago included (a backend
 * still working on them, or held by a suspend): their data pointers from
 * map() are still in use, so the guest memory behind them must stay mapped.
 */
bool nvemu_pcie_ctrl_busy(const struct nvemu_pcie_ctrl *pc);

/* ---- live update: the function handed to another process (pcie-state.c) */

/* Paused, no SQ is fetched from: doorbells are recorded, commands wait in guest memory. */
void nvemu_pcie_ctrl_pause(struct nvemu_pcie_ctrl *pc, bool paused);
bool nvemu_pcie_ctrl_paused(const struct nvemu_pcie_ctrl *pc);
/*
 * The function's state (configuration space, MSI-X, doorbells, CQ phases,
 * shadow doorbells, the host's outstanding AERs) as a malloc'd blob.
 * -EBUSY unless paused with nothing in flight but AERs. Pending coalesced
 * interrupts are signalled first.
 */
int nvemu_pcie_ctrl_save(struct nvemu_pcie_ctrl *pc, uint8_t **blob, size_t *len,
			 struct nvemu_error *err);
/*
 * Load a blob into a new function whose engine controller has had its
 * state (registers, queues) restored, the guest memory behind its queues
 * mapped by the host ops; db_mem: the shared doorbell pages (their values
 * kept), or NULL. The function is left paused, the AERs resubmitted.
 */
int nvemu_pcie_ctrl_load(struct nvemu_pcie_ctrl *pc, const uint8_t *blob, size_t len,
			 void *db_mem, struct nvemu_error *err);
/* After a handover: nothing of the guest is touched again (host ops, rings, doorbells gone). */
void nvemu_pcie_ctrl_detach_host(struct nvemu_pcie_ctrl *pc);

/* ---- configuration space (off < NVEMU_PCIE_CFG_SIZE; size 1, 2 or 4) */

uint32_t nvemu_pcie_cfg_read(struct nvemu_pcie_ctrl *pc, uint32_t off, unsigned size);
void nvemu_pcie_cfg_write(struct nvemu_pcie_ctrl *pc, uint32_t off, unsigned size, uint32_t val);

/* ---- BAR0 (off < NVEMU_PCIE_BAR0_SIZE; size 1, 2, 4 or 8) */

uint64_t nvemu_pcie_bar0_read(struct nvemu_pcie_ctrl *pc, uint64_t off, unsigned size);
/* Doorbell writes process the queues (fetch, execute, post) before returning. */
void nvemu_pcie_bar0_write(struct nvemu_pcie_ctrl *pc, uint64_t off, unsigned size, uint64_t val);

/*
 * Deferred work: interrupt coalescing timers, queues stalled on a full CQ
 * or on exhausted request slots. Returns the number of things done. Call it
 * from the event loop at least every nvemu_pcie_ctrl_poll_interval_us().
 */
int nvemu_pcie_ctrl_poll(struct nvemu_pcie_ctrl *pc);
/* 0: nothing is pending; else the microseconds until a coalescing deadline. */
uint64_t nvemu_pcie_ctrl_poll_interval_us(struct nvemu_pcie_ctrl *pc);

/* ---- interrupts */

unsigned nvemu_pcie_msix_vectors(struct nvemu_pcie_ctrl *pc);
/* MSI-X Enable as the function sees it (config space, or the external state). */
bool nvemu_pcie_msix_enabled(struct nvemu_pcie_ctrl *pc);
/* Hand MSI-X masking/enable to the transport (see the top of this file). */
void nvemu_pcie_msix_ext_enable(struct nvemu_pcie_ctrl *pc, bool enabled);
/* Unmasking a vector with its pending bit set signals it. */
void nvemu_pcie_msix_ext_mask(struct nvemu_pcie_ctrl *pc, uint16_t vector, bool masked);
/* Current INTx level (MSI-X off, INTx not disabled, INTMS bit 0 clear). */
bool nvemu_pcie_intx_level(struct nvemu_pcie_ctrl *pc);

/* ---- debug: the state of one queue pair, as both sides see it */

struct nvemu_pcie_queue_debug {
	bool sq_valid;
	uint16_t sq_size;
	uint16_t sq_cqid;
	uint32_t driver_sq_tail; /* last SQ tail doorbell value */
	uint32_t device_sq_head; /* next entry the controller fetches */
	uint32_t sq_inflight;	 /* fetched, CQE not posted yet */
	bool cq_valid;
	uint16_t cq_size;
	uint16_t cq_iv;
	bool cq_ien;
	uint32_t driver_cq_head;  /* last CQ head doorbell value */
	uint32_t device_cq_tail;  /* next entry the controller posts */
	bool cq_phase;		  /* phase tag of the next entry */
	uint32_t cq_backlog;	  /* completions waiting for CQ space */
	uint64_t doorbell_errors; /* invalid doorbell writes (controller-wide) */
	uint64_t interrupts;	  /* MSI-X messages / INTx assertions on cq_iv */
};

/* -ENOENT when qid > num_io_queues. */
int nvemu_pcie_ctrl_debug(struct nvemu_pcie_ctrl *pc, uint16_t qid,
			  struct nvemu_pcie_queue_debug *out);

/* ---- doorbells without register accesses */

/*
 * Bytes of BAR0 from NVEMU_PCIE_DB_OFF that hold this function's
 * doorbells, in whole 4 KiB pages: what a transport may let the host map.
 */
uint32_t nvemu_pcie_db_area_size(const struct nvemu_pcie_ctrl *pc);
/*
 * mem (nvemu_pcie_db_area_size() bytes, 4-byte aligned) mirrors BAR0 from
 * NVEMU_PCIE_DB_OFF in memory the host writes directly (its mmap of the
 * doorbell pages); NULL detaches it. mem is zeroed. Register writes to the
 * doorbells keep working and are stored into mem too.
 */
void nvemu_pcie_db_attach(struct nvemu_pcie_ctrl *pc, void *mem);
/*
 * Something to poll: shared doorbells or shadow doorbells (Doorbell Buffer
 * Config) while the controller is ready. Nothing signals a change there,
 * so the transport's loop must keep calling nvemu_pcie_db_poll().
 */
bool nvemu_pcie_db_needs_polling(const struct nvemu_pcie_ctrl *pc);
/* Take new values from the shared and shadow doorbells; returns how many. */
int nvemu_pcie_db_poll(struct nvemu_pcie_ctrl *pc);

struct nvemu_pcie_db_stats {
	bool mapped;		/* shared doorbell memory attached */
	bool shadow;		/* Doorbell Buffer Config in effect */
	uint64_t shadow_addr;	/* its Shadow Doorbell buffer (PRP1) */
	uint64_t eventidx_addr; /* its EventIdx buffer (PRP2) */
	uint64_t msg_writes;	/* doorbell register writes (messages) */
	uint64_t mem_writes;	/* new values found in the shared doorbells */
	uint64_t shadow_updates; /* new values found in the Shadow Doorbell buffer */
	uint64_t polls;
};

void nvemu_pcie_db_stats(const struct nvemu_pcie_ctrl *pc, struct nvemu_pcie_db_stats *out);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A PCI function as a userspace driver reaches it: configuration space,
 * BARs (mapped or through read/write calls), DMA mappings of the driver's
 * memory, interrupts delivered on eventfds, and reset.
 *
 * Two implementations: a vfio-user client (vfio-user-client.c, a unix
 * socket to a server such as nvemud) and the kernel's VFIO (vfio-pci.c,
 * /dev/vfio container and group). The NVMe-over-PCIe host transport
 * (pcie.c) drives either through these ops only.
 *
 * Single-threaded: one caller at a time per device.
 */
#ifndef NVEMU_DRIVER_PCI_DEV_H
#define NVEMU_DRIVER_PCI_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nvemu/error.h>

/* Interrupt kinds, the values VFIO uses as IRQ indexes. */
enum nvemu_pci_irq {
	NVEMU_PCI_IRQ_INTX = 0,
	NVEMU_PCI_IRQ_MSI = 1,
	NVEMU_PCI_IRQ_MSIX = 2,
	NVEMU_PCI_IRQ_NONE = 3, /* polling */
};

/* Region indexes: BAR0..5 are 0..5, configuration space is 7 (as in VFIO). */
#define NVEMU_PCI_REGION_CFG 7u
#define NVEMU_PCI_NR_REGIONS 8u

struct nvemu_pci_region {
	uint64_t size; /* 0: not implemented */
	bool readable, writable;
	void *map; /* the whole region mapped into this process, or NULL */
	/* else one part of it mapped (a sparse mmap area: NVMe doorbells), or NULL */
	void *part;
	uint64_t part_off, part_len;
};

struct nvemu_pci_dev;

struct nvemu_pci_dev_ops {
	const char *name; /* "vfio-user", "vfio-pci" */
	/* Region access, off and len already checked against the region's size. */
	int (*region_read)(struct nvemu_pci_dev *d, unsigned region, uint64_t off, void *buf,
			   size_t len);
	int (*region_write)(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
			    size_t len);
	/*
	 * A write whose completion need not be waited for (doorbells): ordered
	 * before any later access. May be the same as region_write.
	 */
	int (*region_post)(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
			   size_t len);
	/*
	 * Let the device reach len bytes at vaddr (page aligned, from fd at
	 * fd_off: vfio-user shares the memory by fd) at the IOVA iova.
	 */
	int (*dma_map)(struct nvemu_pci_dev *d, void *vaddr, size_t len, int fd, uint64_t fd_off,
		       uint64_t iova);
	int (*dma_unmap)(struct nvemu_pci_dev *d, uint64_t iova, size_t len);
	/* Vectors of that kind the device offers (0: none). */
	unsigned (*irq_count)(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind);
	/* Deliver vectors 0..n-1 of kind to efds[i]; n == 0 turns kind off. */
	int (*irq_set)(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind, const int *efds,
		       unsigned n);
	/* INTx is masked by each delivery: unmask once the cause is handled. */
	int (*irq_unmask)(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind, unsigned vector);
	/* Function level reset: every DMA mapping and interrupt stays set. */
	int (*reset)(struct nvemu_pci_dev *d);
	/* Undo everything and free d. */
	void (*close)(struct nvemu_pci_dev *d);
	/*
	 * Optional: is the device still there? With doorbells in mapped
	 * memory no message may fail for weeks, so a server that went away
	 * is noticed here (0, or -errno with d->broken set). Must be cheap.
	 */
	int (*alive)(struct nvemu_pci_dev *d);
};

struct nvemu_pci_dev {
	const struct nvemu_pci_dev_ops *ops;
	char addr[128]; /* socket path or PCI address, for messages */
	struct nvemu_pci_region region[NVEMU_PCI_NR_REGIONS];
	uint64_t next_iova; /* bump allocator of device addresses */
	uint64_t iova_end;
	bool broken; /* the device side failed: nothing more is sent to it */
};

/*
 * Connect to a vfio-user server's socket. timeout_ms bounds every reply
 * (0: 5000); a server that breaks the protocol fails the call with
 * -EPROTO and marks the device broken.
 */
int nvemu_vfu_client_open(const char *path, unsigned timeout_ms, struct nvemu_pci_dev **out,
			  struct nvemu_error *err);
/*
 * The first usable area (page aligned, inside the region, not empty) of a
 * VFIO sparse mmap capability in a region info reply of len bytes, as a
 * server sent it: 0 and the area, or -ENOENT. Never reads past len.
 */
int nvemu_vfu_sparse_area(const uint8_t *info, uint32_t len, uint64_t *off, uint64_t *size);
/* Open a PCI function bound to vfio-pci, e.g. "0000:00:04.0". */
int nvemu_vfio_pci_open(const char *bdf, struct nvemu_pci_dev **out, struct nvemu_error *err);

void nvemu_pci_dev_close(struct nvemu_pci_dev *d);

/* Region access with bounds checks; mapped regions are accessed directly. */
int nvemu_pci_read(struct nvemu_pci_dev *d, unsigned region, uint64_t off, void *buf, size_t len);
int nvemu_pci_write(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
		    size_t len);
int nvemu_pci_post(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
		   size_t len);
int nvemu_pci_read32(struct nvemu_pci_dev *d, unsigned region, uint64_t off, uint32_t *val);
int nvemu_pci_read64(struct nvemu_pci_dev *d, unsigned region, uint64_t off, uint64_t *val);
int nvemu_pci_write32(struct nvemu_pci_dev *d, unsigned region, uint64_t off, uint32_t val);
int nvemu_pci_write64(struct nvemu_pci_dev *d, unsigned region, uint64_t off, uint64_t val);

/* Memory the device can reach: shared (memfd), page aligned, zeroed, mapped for DMA. */
struct nvemu_pci_dma {
	void *vaddr;
	uint64_t iova;
	size_t size;
	int fd;
};

int nvemu_pci_dma_alloc(struct nvemu_pci_dev *d, size_t size, struct nvemu_pci_dma *out,
			struct nvemu_error *err);
/* Unmaps from the device (unless it is broken) and frees; a zeroed dma is a no-op. */
void nvemu_pci_dma_free(struct nvemu_pci_dev *d, struct nvemu_pci_dma *dma);

/* Set the device's IOVA window (default: 4 GiB .. 256 TiB). */
void nvemu_pci_dev_init(struct nvemu_pci_dev *d, const struct nvemu_pci_dev_ops *ops,
			const char *addr);

#endif

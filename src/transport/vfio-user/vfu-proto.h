/* SPDX-License-Identifier: MIT */
/*
 * vfio-user wire format (QEMU docs/interop/vfio-user.rst, version 0.0 as
 * QEMU's client negotiates it). Host-endian: both ends share a machine.
 * The argsz-prefixed bodies reuse struct vfio_* from <linux/vfio.h>.
 */
#ifndef NVEMU_VFU_PROTO_H
#define NVEMU_VFU_PROTO_H

#include <stdint.h>
#include <linux/vfio.h>

struct vfu_hdr {
	uint16_t id;
	uint16_t command;
	uint32_t size; /* whole message, header included */
	uint32_t flags;
	uint32_t error;
};

enum {
	VFU_CMD_VERSION = 1,
	VFU_CMD_DMA_MAP = 2,
	VFU_CMD_DMA_UNMAP = 3,
	VFU_CMD_DEVICE_GET_INFO = 4,
	VFU_CMD_DEVICE_GET_REGION_INFO = 5,
	VFU_CMD_DEVICE_GET_REGION_IO_FDS = 6,
	VFU_CMD_DEVICE_GET_IRQ_INFO = 7,
	VFU_CMD_DEVICE_SET_IRQS = 8,
	VFU_CMD_REGION_READ = 9,
	VFU_CMD_REGION_WRITE = 10,
	VFU_CMD_DMA_READ = 11,
	VFU_CMD_DMA_WRITE = 12,
	VFU_CMD_DEVICE_RESET = 13,
	VFU_CMD_REGION_WRITE_MULTI = 15,
};
#define VFU_CMD_SET_IRQS VFU_CMD_DEVICE_SET_IRQS

#define VFU_REQUEST 0x0u
#define VFU_REPLY 0x1u
#define VFU_TYPE_MASK 0xfu
#define VFU_NO_REPLY 0x10u
#define VFU_ERROR 0x20u

#define VFU_MAJOR 0
#define VFU_MINOR 0

struct vfu_version {
	struct vfu_hdr hdr;
	uint16_t major;
	uint16_t minor;
	char caps[]; /* NUL-terminated JSON */
};

struct vfu_dma_map {
	struct vfu_hdr hdr;
	uint32_t argsz;
	uint32_t flags; /* VFIO_DMA_MAP_FLAG_READ/WRITE */
	uint64_t offset; /* into the fd passed along */
	uint64_t iova;
	uint64_t size;
};

struct vfu_dma_unmap {
	struct vfu_hdr hdr;
	uint32_t argsz;
	uint32_t flags; /* VFIO_DMA_UNMAP_FLAG_ALL */
	uint64_t iova;
	uint64_t size;
};

struct vfu_region_rw {
	struct vfu_hdr hdr;
	uint64_t offset;
	uint32_t region;
	uint32_t count;
	uint8_t data[];
};

/*
 * DMA_READ/DMA_WRITE (server to client). QEMU lays this out as a C struct
 * {hdr; u64 offset; u32 count; char data[]}: data starts at byte 28 while
 * the struct (and the smallest message QEMU accepts) is 32 bytes.
 */
struct vfu_dma_rw {
	struct vfu_hdr hdr;
	uint64_t offset;
	uint32_t count;
	uint8_t data[];
};
#define VFU_DMARW_DATA 28u
_Static_assert(sizeof(struct vfu_dma_rw) == 32, "QEMU VFIOUserDMARW layout");
_Static_assert(sizeof(struct vfu_region_rw) == 32, "QEMU VFIOUserRegionRW layout");

/* One write of a REGION_WRITE_MULTI message: {u64 wr_cnt; vfu_wr_one[wr_cnt]}. */
struct vfu_wr_one {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
	uint8_t data[8];
};

/*
 * A sparse mmap capability with one area (struct
 * vfio_region_info_cap_sparse_mmap ends in a flexible array, which cannot
 * sit inside another struct in ISO C).
 */
struct vfu_sparse_mmap1 {
	struct vfio_info_cap_header header;
	uint32_t nr_areas;
	uint32_t reserved;
	struct vfio_region_sparse_mmap_area area;
};
_Static_assert(sizeof(struct vfu_sparse_mmap1) ==
		       sizeof(struct vfio_region_info_cap_sparse_mmap) +
			       sizeof(struct vfio_region_sparse_mmap_area),
	       "VFIO sparse mmap capability layout");

#endif

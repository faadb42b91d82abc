// SPDX-License-Identifier: MIT
/*
 * A PCI function bound to the kernel's vfio-pci driver, through the legacy
 * container/group interface (/dev/vfio/vfio + /dev/vfio/<group>, type 1
 * IOMMU): BARs mmap'ed where the kernel allows (else pread/pwrite on the
 * device fd), the driver's memory mapped with VFIO_IOMMU_MAP_DMA at IOVAs
 * pci-dev.c hands out, interrupts as eventfds with VFIO_DEVICE_SET_IRQS.
 *
 * One process-private container per device: several devices of one
 * process each get their own, which type 1 allows.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "pci-dev.h"

struct vfio_pci {
	struct nvemu_pci_dev dev; /* first: the ops get it */
	int container, group, device;
	uint64_t reg_off[NVEMU_PCI_NR_REGIONS]; /* region offsets in the device fd */
	size_t map_len[NVEMU_PCI_NR_REGIONS];
	unsigned nirq[3];
};

static int vp_region_read(struct nvemu_pci_dev *d, unsigned region, uint64_t off, void *buf,
			  size_t len)
{
	struct vfio_pci *v = (struct vfio_pci *)d;
	ssize_t n = pread(v->device, buf, len, (off_t)(v->reg_off[region] + off));

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static int vp_region_write(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
			   size_t len)
{
	struct vfio_pci *v = (struct vfio_pci *)d;
	ssize_t n = pwrite(v->device, buf, len, (off_t)(v->reg_off[region] + off));

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static int vp_dma_map(struct nvemu_pci_dev *d, void *vaddr, size_t len, int fd, uint64_t fd_off,
		      uint64_t iova)
{
	struct vfio_pci *v = (struct vfio_pci *)d;
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)vaddr,
		.iova = iova,
		.size = len,
	};

	return ioctl(v->container, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
}

static int vp_dma_unmap(struct nvemu_pci_dev *d, uint64_t iova, size_t len)
{
	struct vfio_pci *v = (struct vfio_pci *)d;
	struct vfio_iommu_type1_dma_unmap m = {.argsz = sizeof(m), .iova = iova, .size = len};

	return ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &m) ? -errno : 0;
}

static unsigned vp_irq_count(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind)
{
	struct vfio_pci *v = (struct vfio_pci *)d;

	return kind <= NVEMU_PCI_IRQ_MSIX ? v->nirq[kind] : 0;
}

static int vp_irq_set(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind, const int *efds, unsigned n)
{
	struct vfio_pci *v = (struct vfio_pci *)d;
	struct vfio_irq_set *s;
	size_t len = sizeof(*s) + sizeof(int) * n;
	int r = 0;

	if (kind > NVEMU_PCI_IRQ_MSIX || n > v->nirq[kind])
		return -EINVAL;
	s = calloc(1, len);
	if (!s)
		return -ENOMEM;
	s->argsz = (uint32_t)len;
	s->flags = (n ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE) |
		   VFIO_IRQ_SET_ACTION_TRIGGER;
	s->index = kind;
	s->count = n;
	memcpy(s->data, efds, sizeof(int) * n);
	if (ioctl(v->device, VFIO_DEVICE_SET_IRQS, s))
		r = -errno;
	free(s);
	return r;
}

static int vp_irq_unmask(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind, unsigned vector)
{
	struct vfio_pci *v = (struct vfio_pci *)d;
	struct vfio_irq_set s = {
		.argsz = sizeof(s),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
		.index = kind,
		.start = vector,
		.count = 1,
	};

	return ioctl(v->device, VFIO_DEVICE_SET_IRQS, &s) ? -errno : 0;
}

static int vp_reset(struct nvemu_pci_dev *d)
{
	struct vfio_pci *v = (struct vfio_pci *)d;

	return ioctl(v->device, VFIO_DEVICE_RESET) ? -errno : 0;
}

static void vp_close(struct nvemu_pci_dev *d)
{
	struct vfio_pci *v = (struct vfio_pci *)d;

	for (unsigned i = 0; i < NVEMU_PCI_NR_REGIONS; i++)
		if (d->region[i].map)
			munmap(d->region[i].map, v->map_len[i]);
	/* closing the device and container drops its interrupts and DMA mappings */
	if (v->device >= 0)
		close(v->device);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	free(v);
}

static const struct nvemu_pci_dev_ops vfio_pci_ops = {
	.name = "vfio-pci",
	.region_read = vp_region_read,
	.region_write = vp_region_write,
	.region_post = vp_region_write,
	.dma_map = vp_dma_map,
	.dma_unmap = vp_dma_unmap,
	.irq_count = vp_irq_count,
	.irq_set = vp_irq_set,
	.irq_unmask = vp_irq_unmask,
	.reset = vp_reset,
	.close = vp_close,
};

/* The IOMMU group of a PCI address, from sysfs. */
static int find_group(const char *bdf, struct nvemu_error *err)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;
	char *end;
	long g;

	if (strchr(bdf, '/') || strlen(bdf) > 32)
		return nvemu_error_set(err, -EINVAL, "traddr: a PCI address such as 0000:00:04.0");
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return nvemu_error_set(err, -errno,
				       "%s: no IOMMU group (%s): is the IOMMU on "
				       "and the device bound to vfio-pci?",
				       bdf, strerror(errno));
	link[n] = '\0';
	errno = 0;
	g = strtol(basename(link), &end, 10);
	if (errno || *end || g < 0 || g > INT_MAX)
		return nvemu_error_set(err, -EINVAL, "%s: bad IOMMU group link %s", bdf, link);
	return (int)g;
}

static int open_container(struct vfio_pci *v, int group_nr, struct nvemu_error *err)
{
	struct vfio_group_status st = {.argsz = sizeof(st)};
	char path[64];

	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0)
		return nvemu_error_set(err, -errno, "/dev/vfio/vfio: %s", strerror(errno));
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    !ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU))
		return nvemu_error_set(err, -ENOTSUP, "VFIO: no type 1 IOMMU support");
	snprintf(path, sizeof(path), "/dev/vfio/%d", group_nr);
	v->group = open(path, O_RDWR | O_CLOEXEC);
	if (v->group < 0)
		return nvemu_error_set(err, -errno, "%s: %s", path, strerror(errno));
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &st))
		return nvemu_error_set(err, -errno, "%s: status: %s", path, strerror(errno));
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return nvemu_error_set(err, -EBUSY,
				       "%s: not viable: bind every device of "
				       "the group to vfio-pci",
				       path);
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container))
		return nvemu_error_set(err, -errno, "%s: set container: %s", path, strerror(errno));
	if (ioctl(v->container, VFIO_SET_IOMMU,
		  ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) ? VFIO_TYPE1v2_IOMMU
										: VFIO_TYPE1_IOMMU))
		return nvemu_error_set(err, -errno, "VFIO: set IOMMU: %s", strerror(errno));
	return 0;
}

static void map_region(struct vfio_pci *v, unsigned i, const struct vfio_region_info *ri)
{
	void *p;

	/* a kernel that traps part of the BAR refuses: pread/pwrite then */
	if (!(ri->flags & VFIO_REGION_INFO_FLAG_MMAP) || !ri->size || ri->size > (1ull << 32))
		return;
	p = mmap(NULL, ri->size, PROT_READ | PROT_WRITE, MAP_SHARED, v->device, (off_t)ri->offset);
	if (p == MAP_FAILED)
		return;
	v->dev.region[i].map = p;
	v->map_len[i] = ri->size;
}

static int probe_device(struct vfio_pci *v, struct nvemu_error *err)
{
	struct vfio_device_info di = {.argsz = sizeof(di)};

	if (ioctl(v->device, VFIO_DEVICE_GET_INFO, &di))
		return nvemu_error_set(err, -errno, "%s: device info: %s", v->dev.addr,
				       strerror(errno));
	if (!(di.flags & VFIO_DEVICE_FLAGS_PCI))
		return nvemu_error_set(err, -ENODEV, "%s: not a PCI device", v->dev.addr);
	for (unsigned i = 0; i < NVEMU_PCI_NR_REGIONS && i < di.num_regions; i++) {
		struct vfio_region_info ri = {.argsz = sizeof(ri), .index = i};

		if (i == 6 || ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &ri))
			continue;
		v->reg_off[i] = ri.offset;
		v->dev.region[i].size = ri.size;
		v->dev.region[i].readable = ri.flags & VFIO_REGION_INFO_FLAG_READ;
		v->dev.region[i].writable = ri.flags & VFIO_REGION_INFO_FLAG_WRITE;
		if (i != NVEMU_PCI_REGION_CFG)
			map_region(v, i, &ri);
	}
	for (unsigned i = 0; i < 3 && i < di.num_irqs; i++) {
		struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = i};

		if (!ioctl(v->device, VFIO_DEVICE_GET_IRQ_INFO, &ii) &&
		    (ii.flags & VFIO_IRQ_INFO_EVENTFD))
			v->nirq[i] = ii.count;
	}
	return 0;
}

int nvemu_vfio_pci_open(const char *bdf, struct nvemu_pci_dev **out, struct nvemu_error *err)
{
	struct vfio_pci *v;
	int g, r;

	if (!bdf || !*bdf)
		return nvemu_error_set(err, -EINVAL, "traddr: a PCI address such as 0000:00:04.0");
	g = find_group(bdf, err);
	if (g < 0)
		return g;
	v = calloc(1, sizeof(*v));
	if (!v)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	nvemu_pci_dev_init(&v->dev, &vfio_pci_ops, bdf);
	v->container = v->group = v->device = -1;
	r = open_container(v, g, err);
	if (!r) {
		v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
		if (v->device < 0)
			r = nvemu_error_set(err, -errno, "%s: get device: %s", bdf,
					    strerror(errno));
	}
	if (!r)
		r = probe_device(v, err);
	if (!r && (v->dev.region[0].size < 0x2000 || !v->dev.region[NVEMU_PCI_REGION_CFG].size))
		r = nvemu_error_set(err, -ENODEV, "%s: BAR0 or config space missing", bdf);
	if (r) {
		vp_close(&v->dev);
		return r;
	}
	*out = &v->dev;
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * The shared half of pci-dev.h: bounds-checked region access (direct on a
 * mapped region, else through the implementation's ops) and DMA memory.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "pci-dev.h"

#define IOVA_BASE (1ull << 32) /* clear of the x86 MSI window and low memory */
#define IOVA_END  (1ull << 48)
#define PAGE	  4096u

void nvemu_pci_dev_init(struct nvemu_pci_dev *d, const struct nvemu_pci_dev_ops *ops,
			const char *addr)
{
	d->ops = ops;
	snprintf(d->addr, sizeof(d->addr), "%s", addr);
	d->next_iova = IOVA_BASE;
	d->iova_end = IOVA_END;
}

void nvemu_pci_dev_close(struct nvemu_pci_dev *d)
{
	if (d)
		d->ops->close(d);
}

static int check(struct nvemu_pci_dev *d, unsigned region, uint64_t off, size_t len, bool write)
{
	const struct nvemu_pci_region *r;

	if (d->broken)
		return -ENODEV;
	if (region >= NVEMU_PCI_NR_REGIONS)
		return -EINVAL;
	r = &d->region[region];
	if (!len || off >= r->size || len > r->size - off)
		return -EINVAL;
	if (write ? !r->writable : !r->readable)
		return -EPERM;
	return 0;
}

/*
 * Registers are read and written with single accesses of their width, so
 * a 4-byte doorbell is one 4-byte store, never bytes.
 */
static void mmio_copy(void *dst, const void *src, size_t len)
{
	if (len == 4 && !((uintptr_t)dst & 3) && !((uintptr_t)src & 3))
		*(volatile uint32_t *)dst = *(const volatile uint32_t *)src;
	else if (len == 8 && !((uintptr_t)dst & 7) && !((uintptr_t)src & 7))
		*(volatile uint64_t *)dst = *(const volatile uint64_t *)src;
	else
		memcpy(dst, src, len);
}

/* The mapping that holds [off, off + len) of the region, at that offset; NULL: use messages. */
static uint8_t *mapped_at(const struct nvemu_pci_region *r, uint64_t off, size_t len)
{
	if (r->map)
		return (uint8_t *)r->map + off;
	if (r->part && off >= r->part_off && len <= r->part_len &&
	    off - r->part_off <= r->part_len - len)
		return (uint8_t *)r->part + (off - r->part_off);
	return NULL;
}

int nvemu_pci_read(struct nvemu_pci_dev *d, unsigned region, uint64_t off, void *buf, size_t len)
{
	int r = check(d, region, off, len, false);
	uint8_t *p;

	if (r)
		return r;
	p = mapped_at(&d->region[region], off, len);
	if (p) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		mmio_copy(buf, p, len);
		return 0;
	}
	return d->ops->region_read(d, region, off, buf, len);
}

static int write_common(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
			size_t len, bool post)
{
	int r = check(d, region, off, len, true);
	uint8_t *p;

	if (r)
		return r;
	p = mapped_at(&d->region[region], off, len);
	if (p) {
		/* the device must see queue entries written before the doorbell */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		mmio_copy(p, buf, len);
		return 0;
	}
	if (post)
		return d->ops->region_post(d, region, off, buf, len);
	return d->ops->region_write(d, region, off, buf, len);
}

int nvemu_pci_write(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
		    size_t len)
{
	return write_common(d, region, off, buf, len, false);
}

int nvemu_pci_post(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
		   size_t len)
{
	return write_common(d, region, off, buf, len, true);
}

int nvemu_pci_read32(struct nvemu_pci_dev *d, unsigned region, uint64_t off, uint32_t *val)
{
	uint32_t v;
	int r = nvemu_pci_read(d, region, off, &v, 4);

	*val = r ? 0xffffffffu : le32toh(v);
	return r;
}

int nvemu_pci_read64(struct nvemu_pci_dev *d, unsigned region, uint64_t off, uint64_t *val)
{
	uint64_t v;
	int r = nvemu_pci_read(d, region, off, &v, 8);

	*val = r ? ~0ull : le64toh(v);
	return r;
}

int nvemu_pci_write32(struct nvemu_pci_dev *d, unsigned region, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	return nvemu_pci_write(d, region, off, &v, 4);
}

int nvemu_pci_write64(struct nvemu_pci_dev *d, unsigned region, uint64_t off, uint64_t val)
{
	uint64_t v = htole64(val);

	return nvemu_pci_write(d, region, off, &v, 8);
}

int nvemu_pci_dma_alloc(struct nvemu_pci_dev *d, size_t size, struct nvemu_pci_dma *out,
			struct nvemu_error *err)
{
	size_t len = (size + PAGE - 1) & ~(size_t)(PAGE - 1);
	void *p;
	int fd, r;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!len || len < size)
		return nvemu_error_set(err, -EINVAL, "dma: bad size %zu", size);
	if (len > d->iova_end - d->next_iova)
		return nvemu_error_set(err, -ENOSPC, "%s: device address space exhausted", d->addr);
	fd = memfd_create("nvemu-dma", MFD_CLOEXEC);
	if (fd < 0)
		return nvemu_error_set(err, -errno, "dma: memfd: %s", strerror(errno));
	if (ftruncate(fd, (off_t)len)) {
		r = -errno;
		close(fd);
		return nvemu_error_set(err, r, "dma: %zu bytes: %s", len, strerror(-r));
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		close(fd);
		return nvemu_error_set(err, r, "dma: mmap %zu bytes: %s", len, strerror(-r));
	}
	r = d->broken ? -ENODEV : d->ops->dma_map(d, p, len, fd, 0, d->next_iova);
	if (r) {
		munmap(p, len);
		close(fd);
		return nvemu_error_set(err, r, "%s: DMA map of %zu bytes: %s", d->addr, len,
				       strerror(-r));
	}
	out->vaddr = p;
	out->iova = d->next_iova;
	out->size = len;
	out->fd = fd;
	/* never reused: a late access of the device to a freed range faults instead */
	d->next_iova += len + PAGE;
	return 0;
}

void nvemu_pci_dma_free(struct nvemu_pci_dev *d, struct nvemu_pci_dma *dma)
{
	if (!dma->vaddr)
		return;
	if (!d->broken)
		d->ops->dma_unmap(d, dma->iova, dma->size);
	munmap(dma->vaddr, dma->size);
	if (dma->fd >= 0)
		close(dma->fd);
	memset(dma, 0, sizeof(*dma));
	dma->fd = -1;
}

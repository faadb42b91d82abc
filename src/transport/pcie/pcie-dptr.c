// SPDX-License-Identifier: MIT
/*
 * Data pointers (NVMe Base 2.0 4.3): PRP1/PRP2 and PRP lists, SGLs (Data
 * Block, Bit Bucket, Segment, Last Segment; Address subtype only, as PCIe
 * has no keyed or offset descriptors). The walk turns DPTR into a list of
 * host segments; the data then moves through a bounce buffer, or straight
 * in guest memory when it is one mapped range.
 */
#include <stdlib.h>

#include "pcie-internal.h"

#define SGL_DATA      0x0
#define SGL_BUCKET    0x1
#define SGL_SEGMENT   0x2
#define SGL_LAST      0x3
#define PSDT_PRP      0
#define PSDT_RESERVED 3
/* Bounce buffers above this size are not kept for the next command. */
#define BOUNCE_KEEP (128u * 1024)
#define CHUNK	    64 /* PRP entries / SGL descriptors read at once */

struct sgl_desc {
	uint64_t addr;
	uint32_t len;
	uint8_t rsvd[3];
	uint8_t type; /* type 7:4, subtype 3:0 */
};
_Static_assert(sizeof(struct sgl_desc) == 16, "SGL descriptor is 16 bytes");

static const uint16_t st_prp_offset = NVEMU_SC_GENERIC(NVME_SC_PRP_INVALID_OFFSET) | NVEMU_DNR;
static const uint16_t st_sgl_len = NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR;
static const uint16_t st_sgl_type = NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_TYPE) | NVEMU_DNR;
static const uint16_t st_sgl_seg = NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_LAST) | NVEMU_DNR;
static const uint16_t st_sgl_count = NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_COUNT) | NVEMU_DNR;
static const uint16_t st_xfer = NVEMU_SC_GENERIC(NVME_SC_DATA_XFER_ERROR);
static const uint16_t st_internal = NVEMU_SC_GENERIC(NVME_SC_INTERNAL);

static int host_read(struct nvemu_pcie_ctrl *pc, uint64_t addr, void *buf, size_t len)
{
	void *p = pc->ops->map ? pc->ops->map(pc->ctx, addr, len) : NULL;

	if (p) {
		memcpy(buf, p, len);
		return 0;
	}
	return pc->ops->dma_read(pc->ctx, addr, buf, len);
}

static int host_write(struct nvemu_pcie_ctrl *pc, uint64_t addr, const void *buf, size_t len)
{
	void *p = pc->ops->map ? pc->ops->map(pc->ctx, addr, len) : NULL;

	if (p) {
		memcpy(p, buf, len);
		return 0;
	}
	return pc->ops->dma_write(pc->ctx, addr, buf, len);
}

static uint16_t seg_add(struct pcie_req *r, uint64_t addr, uint32_t len, bool bucket)
{
	struct pcie_seg *last = r->nsegs ? &r->segs[r->nsegs - 1] : NULL;

	if (!len)
		return 0;
	if (last && last->bucket == bucket && (bucket || last->addr + last->len == addr)) {
		last->len += len;
		return 0;
	}
	if (r->nsegs == r->segs_cap) {
		unsigned ncap = r->segs_cap ? r->segs_cap * 2 : 8;
		struct pcie_seg *n = realloc(r->segs, ncap * sizeof(*n));

		if (!n)
			return st_internal;
		r->segs = n;
		r->segs_cap = ncap;
	}
	r->segs[r->nsegs++] = (struct pcie_seg){addr, len, bucket};
	return 0;
}

/* ---- PRPs */

static uint16_t prp_map(struct nvemu_pcie_ctrl *pc, struct pcie_req *r, uint32_t len)
{
	const uint64_t psz = pc->page_size, mask = psz - 1;
	uint64_t prp1 = le64toh(r->req.cmd.dptr1), prp2 = le64toh(r->req.cmd.dptr2);
	uint64_t first, rem, list, npages;
	unsigned hops = 0;
	uint16_t st;

	/* A PRP entry's bits 1:0 are reserved (dword-aligned offset). */
	if (prp1 & 3)
		return st_prp_offset;
	first = psz - (prp1 & mask);
	if (first >= len)
		return seg_add(r, prp1, len, false);
	st = seg_add(r, prp1, (uint32_t)first, false);
	rem = len - first;
	if (st)
		return st;
	if (rem <= psz) {
		/* PRP2 is the second data page: no offset allowed. */
		if (prp2 & mask)
			return st_prp_offset;
		return seg_add(r, prp2, (uint32_t)rem, false);
	}
	/* PRP2 points to a PRP list; it may start at a qword offset in its page. */
	if (prp2 & 7)
		return st_prp_offset;
	list = prp2;
	npages = (rem + mask) / psz;
	while (npages) {
		uint64_t avail = (psz - (list & mask)) / 8;
		bool chained = npages > avail;
		uint64_t ndata = chained ? avail - 1 : npages, total = chained ? avail : npages;
		uint64_t ent[CHUNK];

		if (++hops > 8)
			return st_prp_offset;
		for (uint64_t i = 0; i < total; i += CHUNK) {
			unsigned n = total - i < CHUNK ? (unsigned)(total - i) : CHUNK;

			if (pc->ops->dma_read(pc->ctx, list + i * 8, ent, n * 8ull))
				return st_xfer;
			for (unsigned j = 0; j < n; j++) {
				uint64_t e = le64toh(ent[j]);

				if (i + j == ndata) {
					/* The last entry of a full list page chains to the next
					 * list. */
					if (e & mask)
						return st_prp_offset;
					list = e;
					break;
				}
				if (e & mask)
					return st_prp_offset;
				st = seg_add(r, e, (uint32_t)(rem < psz ? rem : psz), false);
				if (st)
					return st;
				rem -= rem < psz ? rem : psz;
			}
		}
		npages -= ndata;
	}
	return 0;
}

/* ---- SGLs */

static uint16_t sgl_data(struct pcie_req *r, const struct sgl_desc *d, bool to_ctrl,
			 uint64_t *total, uint32_t len)
{
	uint8_t type = d->type >> 4;
	uint32_t dlen = le32toh(d->len);
	uint64_t addr = le64toh(d->addr);

	/* Bit buckets describe read data to discard; data from the host has none. */
	if (type == SGL_BUCKET && to_ctrl)
		return 0;
	/* Identify reports SGLS bit 18 clear: an SGL longer than the data is invalid. */
	if (*total + dlen > len)
		return st_sgl_len;
	if (type == SGL_DATA && dlen && addr + dlen < addr)
		return st_sgl_len;
	*total += dlen;
	return seg_add(r, addr, dlen, type == SGL_BUCKET);
}

static uint16_t sgl_map(struct nvemu_pcie_ctrl *pc, struct pcie_req *r, uint32_t len, bool to_ctrl)
{
	struct sgl_desc d, chunk[CHUNK];
	uint64_t total = 0;
	unsigned ndesc = 1;
	uint16_t st;

	memcpy(&d, &r->req.cmd.dptr1, sizeof(d));
	if (d.type & 0xf)
		return st_sgl_type;
	switch (d.type >> 4) {
	case SGL_DATA:
	case SGL_BUCKET:
		st = sgl_data(r, &d, to_ctrl, &total, len);
		if (st)
			return st;
		return total == len ? 0 : st_sgl_len;
	case SGL_SEGMENT:
	case SGL_LAST:
		break;
	default:
		return st_sgl_type;
	}
	for (;;) {
		bool last = (d.type >> 4) == SGL_LAST, next = false;
		uint64_t addr = le64toh(d.addr);
		uint32_t n, slen = le32toh(d.len);

		if (!slen || slen % sizeof(d))
			return st_sgl_seg;
		n = slen / sizeof(d);
		if (n > PCIE_SGL_MAX_DESC || ndesc + n > PCIE_SGL_MAX_DESC)
			return st_sgl_count;
		ndesc += n;
		for (uint32_t i = 0; i < n; i += CHUNK) {
			unsigned c = n - i < CHUNK ? n - i : CHUNK;

			if (pc->ops->dma_read(pc->ctx, addr + (uint64_t)i * sizeof(d), chunk,
					      c * sizeof(d)))
				return st_xfer;
			for (unsigned j = 0; j < c; j++) {
				const struct sgl_desc *e = &chunk[j];

				if (e->type & 0xf)
					return st_sgl_type;
				switch (e->type >> 4) {
				case SGL_DATA:
				case SGL_BUCKET:
					st = sgl_data(r, e, to_ctrl, &total, len);
					if (st)
						return st;
					break;
				case SGL_SEGMENT:
				case SGL_LAST:
					/* Only as the last descriptor of a (non-last) segment. */
					if (last || i + j != n - 1)
						return st_sgl_seg;
					d = *e;
					next = true;
					break;
				default:
					return st_sgl_type;
				}
			}
		}
		if (!next) {
			/* A Segment must chain on; only a Last Segment ends the list. */
			if (!last)
				return st_sgl_seg;
			break;
		}
	}
	return total == len ? 0 : st_sgl_len;
}

/* ---- buffers */

uint16_t pcie_dptr_setup(struct nvemu_pcie_ctrl *pc, struct pcie_req *r, uint32_t len)
{
	struct nvemu_req *req = &r->req;
	uint8_t opc = req->cmd.opc, psdt = req->cmd.flags >> 6;
	bool to_ctrl = opc & 1, from_ctrl = (opc & 2) || !(opc & 3);
	uint32_t off = 0;
	uint16_t st;

	r->nsegs = 0;
	r->len = len;
	r->scatter = false;
	if (psdt == PSDT_RESERVED)
		return NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;
	st = psdt == PSDT_PRP ? prp_map(pc, r, len) : sgl_map(pc, r, len, to_ctrl);
	if (st)
		return st;

	if (pc->ops->map && r->nsegs == 1 && !r->segs[0].bucket && r->segs[0].len == len) {
		void *p = pc->ops->map(pc->ctx, r->segs[0].addr, len);

		if (p) {
			req->buf = p;
			req->buf_len = len;
			return 0;
		}
	}
	if (r->bounce_cap < len) {
		void *b;

		/* Page aligned: an O_DIRECT file backend takes it without a second copy. */
		if (posix_memalign(&b, 4096, len ? len : 1))
			return st_internal;
		free(r->bounce);
		r->bounce = b;
		r->bounce_cap = len;
	}
	if (to_ctrl) {
		for (unsigned i = 0; i < r->nsegs; i++) {
			const struct pcie_seg *s = &r->segs[i];

			if (!s->bucket &&
			    host_read(pc, s->addr, (uint8_t *)r->bounce + off, s->len))
				return st_xfer;
			off += s->len;
		}
	} else if (!(req->sqid && opc == nvme_cmd_read)) {
		/* Admin data the engine may only partly fill reaches the host as zeroes. */
		memset(r->bounce, 0, len);
	}
	r->scatter = from_ctrl;
	req->buf = r->bounce;
	req->buf_len = len;
	return 0;
}

uint16_t pcie_dptr_scatter(struct nvemu_pcie_ctrl *pc, struct pcie_req *r)
{
	uint32_t off = 0;
	uint16_t st = 0;

	for (unsigned i = 0; i < r->nsegs && off < r->len; i++) {
		const struct pcie_seg *s = &r->segs[i];

		if (!s->bucket && host_write(pc, s->addr, (uint8_t *)r->bounce + off, s->len)) {
			st = st_xfer;
			break;
		}
		off += s->len;
	}
	r->scatter = false;
	return st;
}

/* After a command: drop a large bounce buffer rather than keep it per slot. */
void pcie_dptr_release(struct pcie_req *r)
{
	if (r->bounce_cap > BOUNCE_KEEP) {
		free(r->bounce);
		r->bounce = NULL;
		r->bounce_cap = 0;
	}
}

void pcie_dptr_free(struct pcie_req *r)
{
	free(r->bounce);
	free(r->segs);
	r->bounce = NULL;
	r->segs = NULL;
	r->bounce_cap = 0;
	r->segs_cap = r->nsegs = 0;
}

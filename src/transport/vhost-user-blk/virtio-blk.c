/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk requests: each chain taken off a ring becomes one NVMe
 * command (Read, Write, Flush, Dataset Management Deallocate, Write
 * Zeroes) submitted on the export's controller, the ring's own I/O queue,
 * exactly like in-band NVMe I/O; GET_ID is answered here. The data buffer
 * is guest memory itself when the request's segments are contiguous in
 * this process, else a bounce buffer.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vblk-internal.h"

#define SECTOR	    512u
#define MAX_XFER    (512u * 1024u) /* the controller's MDTS */
#define SEG_SIZE    4096u	   /* size_max: MAX_XFER / SEG_SIZE segments at most */
#define MAX_WZ_LBAS 65536u	   /* Write Zeroes NLB is 16 bits */
#define ANSWER_NOW  0x80u	   /* prep(): answered here (GET_ID), status in the low bits */

uint64_t vblk_capacity(const struct nvemu_vblk *vb)
{
	return vb->attached ? vb->t.nr_lbas * (vb->lba_size / SECTOR) : 0;
}

uint64_t vblk_features(const struct nvemu_vblk *vb)
{
	uint64_t f = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
		     1ull << VIRTIO_RING_F_EVENT_IDX | 1ull << VHOST_USER_F_PROTOCOL_FEATURES |
		     1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX |
		     1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH |
		     1ull << VIRTIO_BLK_F_TOPOLOGY | 1ull << VIRTIO_BLK_F_MQ |
		     1ull << VIRTIO_F_RING_PACKED;

	if (vb->p.readonly)
		f |= 1ull << VIRTIO_BLK_F_RO;
	else
		f |= 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

static unsigned seg_max(const struct nvemu_vblk *vb)
{
	unsigned n = MAX_XFER / SEG_SIZE - 2;

	/* Without indirect descriptors header and status take two ring entries. */
	return vb->p.queue_size - 2u < n ? vb->p.queue_size - 2u : n;
}

void vblk_config(const struct nvemu_vblk *vb, struct virtio_blk_config *c)
{
	uint32_t bs = vb->lba_size ? vb->lba_size : SECTOR;
	uint32_t max_sectors = MAX_WZ_LBAS * (bs / SECTOR);

	memset(c, 0, sizeof(*c));
	c->capacity = htole64(vblk_capacity(vb));
	c->size_max = htole32(SEG_SIZE);
	c->seg_max = htole32(seg_max(vb));
	c->blk_size = htole32(bs);
	c->min_io_size = htole16(1);
	c->num_queues = htole16(vb->p.num_queues);
	c->max_discard_sectors = htole32(max_sectors);
	c->max_discard_seg = htole32(1);
	c->discard_sector_alignment = htole32(bs / SECTOR);
	c->max_write_zeroes_sectors = htole32(max_sectors);
	c->max_write_zeroes_seg = htole32(1);
	c->write_zeroes_may_unmap = 1;
}

/* ---- completion */

static void flush_call(struct vblk_queue *q)
{
	if (vblk_vring_notify_needed(&q->vr))
		vblk_queue_call(q);
}

/* Completions while the ring is being processed are signalled once, at its end. */
static void queue_done(struct vblk_queue *q, uint16_t head, uint16_t ndesc, uint32_t written)
{
	vblk_vring_push(&q->vr, head, ndesc, written);
	if (!q->processing)
		flush_call(q);
}

/* Answer a request without the engine. */
static void finish_now(struct vblk_queue *q, const struct vblk_chain *ch, uint8_t *status_byte,
		       uint8_t status, uint32_t written)
{
	struct nvemu_vblk *vb = q->vb;

	*status_byte = status;
	if (status == VIRTIO_BLK_S_IOERR)
		vb->st.ioerr++;
	else if (status == VIRTIO_BLK_S_UNSUPP)
		vb->st.unsupported++;
	queue_done(q, ch->head, ch->ndesc, written + 1);
}

static void scatter(const struct vblk_req *r)
{
	const uint8_t *p = r->bounce;

	for (unsigned i = 0; i < r->nr_segs; i++) {
		memcpy(r->segs[i].addr, p, r->segs[i].len);
		p += r->segs[i].len;
	}
}

static void req_free(struct vblk_req *r)
{
	if (r->bounce)
		r->vb->bounce_bytes -= r->nreq.buf_len;
	LIST_REMOVE(r, link);
	vblk_mem_put(r->mem);
	free(r->bounce);
	free(r->segs);
	free(r);
}

static void req_done(struct nvemu_req *nreq)
{
	struct vblk_req *r = (struct vblk_req *)nreq;
	struct nvemu_vblk *vb = r->vb;
	struct vblk_queue *q = r->q;
	uint8_t st = nreq->cqe.status ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;

	vb->inflight--;
	if (!q) {
		vb->orphans--;
		req_free(r);
		if (!vb->orphans)
			vblk_kick_all(vb);
		return;
	}
	if (st == VIRTIO_BLK_S_IOERR)
		vb->st.ioerr++;
	else if (r->type == VIRTIO_BLK_T_IN && r->bounce)
		scatter(r);
	*r->status = st;
	q->inflight--;
	queue_done(q, r->head, r->ndesc, st == VIRTIO_BLK_S_OK ? r->written : 1);
	req_free(r);
	if (q->full) {
		q->full = false;
		vblk_queue_process(q);
	}
	vblk_queue_idle(vb, q);
}

void vblk_orphan_queue(struct nvemu_vblk *vb, struct vblk_queue *q)
{
	struct vblk_req *r;

	LIST_FOREACH(r, &vb->reqs, link)
	{
		if (r->q == q) {
			r->q = NULL;
			q->inflight--;
			vb->orphans++;
		}
	}
}

/* ---- submission */

/* The data segments: readable ones after the 16-byte header, or writable ones before status. */
static unsigned data_segs(struct vblk_chain *ch, bool out, struct vblk_seg **first, uint64_t *len)
{
	unsigned n;

	*len = 0;
	if (out) {
		*first = &ch->seg[1];
		n = ch->nr_out - 1;
	} else {
		*first = &ch->seg[ch->nr_out];
		n = ch->nr - ch->nr_out;
		/* The status byte ends the last one. */
		if (--ch->seg[ch->nr - 1].len == 0)
			n--;
	}
	for (unsigned i = 0; i < n; i++)
		*len += (*first)[i].len;
	return n;
}

static bool contiguous(const struct vblk_seg *s, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		if (s[i - 1].addr + s[i - 1].len != s[i].addr)
			return false;
	return true;
}

/* Point the command at the data: guest memory itself, or a bounce buffer. */
static int map_data(struct vblk_req *r, struct vblk_seg *s, unsigned n, uint32_t len, bool out)
{
	uint8_t *p;

	if (contiguous(s, n)) {
		r->nreq.buf = n ? s[0].addr : NULL;
		return 0;
	}
	/* Page aligned: an O_DIRECT file backend takes it without a second copy. */
	if (posix_memalign(&r->bounce, 4096, len ? len : 1))
		return -ENOMEM;
	p = r->bounce;
	r->vb->bounce_bytes += len;
	r->nreq.buf = p;
	if (out) {
		for (unsigned i = 0; i < n; i++, p += s[i - 1].len)
			memcpy(p, s[i].addr, s[i].len);
		return 0;
	}
	r->segs = malloc(n * sizeof(*s));
	if (!r->segs)
		return -ENOMEM;
	memcpy(r->segs, s, n * sizeof(*s));
	r->nr_segs = n;
	return 0;
}

/* Sectors to LBAs inside the window; false when misaligned or out of range. */
static bool to_lbas(const struct nvemu_vblk *vb, uint64_t sector, uint64_t bytes, uint64_t *slba,
		    uint64_t *nlb)
{
	uint32_t spl = vb->lba_size / SECTOR;

	if (!bytes || bytes % vb->lba_size || sector % spl)
		return false;
	*slba = sector / spl;
	*nlb = bytes / vb->lba_size;
	if (*slba > vb->t.nr_lbas || *nlb > vb->t.nr_lbas - *slba)
		return false;
	*slba += vb->t.first_lba;
	return true;
}

static void set_rw(struct nvemu_sqe *c, uint8_t opc, uint32_t nsid, uint64_t slba, uint64_t nlb)
{
	c->opc = opc;
	c->nsid = htole32(nsid);
	c->cdw10 = htole32((uint32_t)slba);
	c->cdw11 = htole32((uint32_t)(slba >> 32));
	c->cdw12 = htole32((uint32_t)(nlb - 1));
}

/* Discard and write zeroes carry one 16-byte segment descriptor. */
static uint8_t prep_dwz(struct vblk_req *r, struct vblk_seg *s, unsigned n, uint64_t len)
{
	struct nvemu_vblk *vb = r->vb;
	struct virtio_blk_discard_write_zeroes d;
	uint64_t slba, nlb;
	uint32_t flags;

	if (len != sizeof(d) || n != 1)
		return VIRTIO_BLK_S_UNSUPP;
	memcpy(&d, s[0].addr, sizeof(d));
	flags = le32toh(d.flags);
	if (r->type == VIRTIO_BLK_T_DISCARD ? flags != 0
					    : (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
		return VIRTIO_BLK_S_UNSUPP;
	if (!to_lbas(vb, le64toh(d.sector), (uint64_t)le32toh(d.num_sectors) * SECTOR, &slba,
		     &nlb) ||
	    nlb > MAX_WZ_LBAS)
		return VIRTIO_BLK_S_IOERR;
	if (r->type == VIRTIO_BLK_T_DISCARD) {
		r->dsm = (struct nvme_dsm_range){.nlb = htole32((uint32_t)nlb),
						 .slba = htole64(slba)};
		r->nreq.cmd.opc = nvme_cmd_dsm;
		r->nreq.cmd.nsid = htole32(vb->t.nsid);
		r->nreq.cmd.cdw11 = htole32(NVME_DSMGMT_AD);
		r->nreq.buf = &r->dsm;
		r->nreq.buf_len = sizeof(r->dsm);
		vb->st.discards++;
	} else {
		set_rw(&r->nreq.cmd, nvme_cmd_write_zeroes, vb->t.nsid, slba, nlb);
		if (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			r->nreq.cmd.cdw12 |= htole32(1u << 25); /* DEAC */
		vb->st.write_zeroes++;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t prep_rw(struct vblk_req *r, uint64_t sector, struct vblk_seg *s, unsigned n,
		       uint64_t len)
{
	struct nvemu_vblk *vb = r->vb;
	bool out = r->type == VIRTIO_BLK_T_OUT;
	uint64_t slba, nlb;

	if (len > MAX_XFER || !to_lbas(vb, sector, len, &slba, &nlb))
		return VIRTIO_BLK_S_IOERR;
	if (map_data(r, s, n, (uint32_t)len, out))
		return VIRTIO_BLK_S_IOERR;
	set_rw(&r->nreq.cmd, out ? nvme_cmd_write : nvme_cmd_read, vb->t.nsid, slba, nlb);
	r->nreq.buf_len = (uint32_t)len;
	if (out) {
		vb->st.writes++;
		vb->st.write_bytes += len;
	} else {
		vb->st.reads++;
		vb->st.read_bytes += len;
		r->written = (uint32_t)len + 1;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t get_id(struct nvemu_vblk *vb, struct vblk_seg *s, unsigned n, uint32_t *written)
{
	char id[VIRTIO_BLK_ID_BYTES] = {0};
	size_t off = 0;

	memcpy(id, vb->serial, strnlen(vb->serial, sizeof(id)));
	for (unsigned i = 0; i < n && off < sizeof(id); i++) {
		size_t k = s[i].len < sizeof(id) - off ? s[i].len : sizeof(id) - off;

		memcpy(s[i].addr, id + off, k);
		off += k;
	}
	vb->st.get_ids++;
	*written = (uint32_t)off;
	return VIRTIO_BLK_S_OK;
}

/* Build the command; OK means it goes to the engine, else the status to answer. */
static uint8_t prep(struct vblk_req *r, struct vblk_chain *ch, uint32_t *written)
{
	struct nvemu_vblk *vb = r->vb;
	struct virtio_blk_outhdr h;
	struct vblk_seg *s;
	uint64_t len;
	unsigned n;
	bool out;

	memcpy(&h, ch->seg[0].addr, sizeof(h));
	r->type = (uint8_t)le32toh(h.type);
	out = r->type == VIRTIO_BLK_T_OUT || r->type == VIRTIO_BLK_T_DISCARD ||
	      r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	if (le32toh(h.type) > 0xff)
		return VIRTIO_BLK_S_UNSUPP;
	n = data_segs(ch, out, &s, &len);
	if (r->type == VIRTIO_BLK_T_GET_ID)
		return get_id(vb, s, n, written) | ANSWER_NOW;
	if (r->type != VIRTIO_BLK_T_IN && r->type != VIRTIO_BLK_T_FLUSH && !out)
		return VIRTIO_BLK_S_UNSUPP;
	if (!vb->attached || (out && vb->p.readonly))
		return VIRTIO_BLK_S_IOERR;
	r->written = 1;
	if (r->type == VIRTIO_BLK_T_FLUSH) {
		r->nreq.cmd.opc = nvme_cmd_flush;
		r->nreq.cmd.nsid = htole32(vb->t.nsid);
		vb->st.flushes++;
		return VIRTIO_BLK_S_OK;
	}
	if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT)
		return prep_rw(r, le64toh(h.sector), s, n, len);
	return prep_dwz(r, s, n, len);
}

static void start(struct vblk_queue *q, struct vblk_chain *ch)
{
	struct nvemu_vblk *vb = q->vb;
	struct vblk_req *r = calloc(1, sizeof(*r));
	const struct vblk_seg *last = &ch->seg[ch->nr - 1];
	uint8_t *status = last->addr + last->len - 1;
	uint32_t written = 0;
	uint8_t st;

	if (!r) {
		finish_now(q, ch, status, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	r->vb = vb;
	st = prep(r, ch, &written);
	if (st != VIRTIO_BLK_S_OK) {
		if (r->bounce)
			vb->bounce_bytes -= r->nreq.buf_len;
		free(r->bounce);
		free(r->segs);
		free(r);
		finish_now(q, ch, status, st & ~ANSWER_NOW, written);
		return;
	}
	r->q = q;
	r->head = ch->head;
	r->ndesc = ch->ndesc;
	r->status = status;
	r->mem = vb->conn->mem;
	vblk_mem_get(r->mem);
	r->nreq.sqid = q->idx + 1;
	r->nreq.done = req_done;
	r->nreq.transport_priv = r;
	LIST_INSERT_HEAD(&vb->reqs, r, link);
	q->inflight++;
	vb->inflight++;
	nvemu_ctrl_submit(vb->ctrl, &r->nreq);
}

/* A chain must start with the 16-byte header and end with a writable status byte. */
static bool well_formed(const struct vblk_chain *ch)
{
	return ch->nr_out >= 1 && ch->seg[0].len >= sizeof(struct virtio_blk_outhdr) &&
	       ch->nr > ch->nr_out;
}

static int take(struct vblk_queue *q, struct vblk_chain *ch, enum vblk_pop pop, const char *why)
{
	if (pop == VBLK_POP_ERR || !well_formed(ch)) {
		vblk_conn_fail(q->vb, "ring %u: %s", q->idx,
			       pop == VBLK_POP_ERR ? why : "request without header or status");
		return -EINVAL;
	}
	if (ch->seg[0].len > sizeof(struct virtio_blk_outhdr)) {
		/* Header and data in one descriptor: split it. */
		if (ch->nr >= VBLK_MAX_SEGS) {
			vblk_conn_fail(q->vb, "ring %u: descriptor chain too long", q->idx);
			return -EINVAL;
		}
		memmove(&ch->seg[2], &ch->seg[1], (ch->nr - 1) * sizeof(ch->seg[0]));
		ch->seg[1] =
			(struct vblk_seg){.addr = ch->seg[0].addr + 16, .len = ch->seg[0].len - 16};
		ch->seg[0].len = 16;
		ch->nr++;
		ch->nr_out++;
	}
	start(q, ch);
	return 0;
}

/*
 * Bounce buffers of one export stay near VBLK_BOUNCE_MAX: past it a ring
 * waits for its own requests to complete (one with none in flight still
 * goes on, so every ring progresses).
 */
static bool over_budget(const struct vblk_queue *q)
{
	return q->vb->bounce_bytes >= VBLK_BOUNCE_MAX && q->inflight;
}

/* Take chains until the ring is empty or as many are in flight as it holds. */
static int drain(struct vblk_queue *q)
{
	struct nvemu_vblk *vb = q->vb;
	struct vblk_chain *ch = &vb->chain;
	char why[128];

	while (q->resubmit_pos < q->nr_resubmit) {
		uint16_t head = q->resubmit[q->resubmit_pos++];

		if (take(q, ch, vblk_vring_walk(&q->vr, vb->conn->mem, head, ch, why, sizeof(why)),
			 why))
			return -EINVAL;
	}
	for (;;) {
		enum vblk_pop pop;

		while (q->inflight < q->vr.num && !over_budget(q)) {
			pop = vblk_vring_pop(&q->vr, vb->conn->mem, ch, why, sizeof(why));
			if (pop == VBLK_POP_EMPTY)
				break;
			if (take(q, ch, pop, why))
				return -EINVAL;
		}
		if (q->inflight >= q->vr.num || over_budget(q)) {
			q->full = true;
			return 0;
		}
		if (!vblk_vring_enable_notify(&q->vr))
			return 0;
	}
}

void vblk_queue_process(struct vblk_queue *q)
{
	struct nvemu_vblk *vb = q->vb;

	if (!vb->conn || !q->started || !q->enabled)
		return;
	if (vb->suspended || vb->orphans || q->processing || q->base_pending) {
		q->kicked = true;
		return;
	}
	q->processing = true;
	do {
		q->kicked = false;
		/* A broken ring drops the client, and q with it. */
		if (drain(q))
			return;
	} while (q->kicked && !q->full);
	q->processing = false;
	flush_call(q);
}

/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues in guest memory: taking descriptor chains off the
 * available ring, returning them on the used ring, event-index
 * suppression, and the inflight shared memory that lets a reconnecting
 * client's requests be resubmitted. The driver is untrusted: every index
 * is checked, every address translated within one memory region, each
 * descriptor read once into a local copy, and a chain visits at most as
 * many descriptors as its table holds (which also catches loops).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vblk-internal.h"

#define LOAD16(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE16(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

int vblk_vring_map(struct vblk_vring *vr, const struct vblk_mem *m, uint64_t desc_uva,
		   uint64_t avail_uva, uint64_t used_uva, char *why, size_t why_len)
{
	uint64_t n = vr->num;

	if (!n || (n & (n - 1))) {
		snprintf(why, why_len, "ring size %u is not a power of 2", vr->num);
		return -EINVAL;
	}
	if ((desc_uva & 15) || (avail_uva & 3) || (used_uva & 3)) {
		snprintf(why, why_len, "misaligned ring address");
		return -EINVAL;
	}
	if (vr->packed) {
		vr->pdesc = vblk_uva(m, desc_uva, 16 * n);
		vr->driver_ev = vblk_uva(m, avail_uva, sizeof(*vr->driver_ev));
		vr->device_ev = vblk_uva(m, used_uva, sizeof(*vr->device_ev));
		if (!vr->pdesc || !vr->driver_ev || !vr->device_ev) {
			snprintf(why, why_len, "ring outside the memory regions");
			return -EFAULT;
		}
		return 0;
	}
	vr->desc = vblk_uva(m, desc_uva, 16 * n);
	vr->avail = vblk_uva(m, avail_uva, 6 + 2 * n);
	vr->used = vblk_uva(m, used_uva, 6 + 8 * n);
	if (!vr->desc || !vr->avail || !vr->used) {
		snprintf(why, why_len, "ring outside the memory regions");
		return -EFAULT;
	}
	return 0;
}

static bool packed_avail(const struct vblk_vring *vr)
{
	uint16_t f = le16toh(LOAD16(&vr->pdesc[vr->last_avail].flags));
	bool avail = f & (1u << VRING_PACKED_DESC_F_AVAIL),
	     used = f & (1u << VRING_PACKED_DESC_F_USED);

	return avail == vr->avail_wrap && used != vr->avail_wrap;
}

int vblk_vring_pending(const struct vblk_vring *vr)
{
	if (vr->packed)
		return packed_avail(vr);
	uint16_t n = (uint16_t)(LOAD16(&vr->avail->idx) - vr->last_avail);

	return n > vr->num ? -1 : n;
}

static enum vblk_pop fail(char *why, size_t why_len, const char *msg)
{
	snprintf(why, why_len, "%s", msg);
	return VBLK_POP_ERR;
}

/* Enter an indirect table: it replaces the chain's descriptor table. */
static enum vblk_pop indirect(const struct vring_desc *d, const struct vblk_mem *m,
			      const struct vring_desc **table, unsigned *len, char *why,
			      size_t why_len)
{
	uint32_t l = le32toh(d->len);

	if (le16toh(d->flags) & VRING_DESC_F_NEXT)
		return fail(why, why_len, "indirect descriptor with NEXT");
	if (!l || l % sizeof(*d) || l / sizeof(*d) > VBLK_MAX_SEGS)
		return fail(why, why_len, "indirect table of bad length");
	*table = vblk_gpa(m, le64toh(d->addr), l);
	if (!*table)
		return fail(why, why_len, "indirect table outside the memory regions");
	*len = l / sizeof(*d);
	return VBLK_POP_OK;
}

static enum vblk_pop add_seg(struct vblk_chain *ch, uint64_t addr, uint32_t len, bool write,
			     const struct vblk_mem *m, char *why, size_t why_len)
{
	uint8_t *p;

	if (!write && ch->nr_out != ch->nr)
		return fail(why, why_len, "device-readable descriptor after a writable one");
	if (ch->nr >= VBLK_MAX_SEGS)
		return fail(why, why_len, "descriptor chain too long");
	p = vblk_gpa(m, addr, len);
	if (!p)
		return fail(why, why_len, "descriptor outside the memory regions");
	if (!len)
		return VBLK_POP_OK;
	ch->seg[ch->nr++] = (struct vblk_seg){.addr = p, .len = len, .write = write};
	if (write)
		ch->in_bytes += len;
	else
		ch->nr_out++;
	return VBLK_POP_OK;
}

enum vblk_pop vblk_vring_walk(struct vblk_vring *vr, const struct vblk_mem *m, uint16_t head,
			      struct vblk_chain *ch, char *why, size_t why_len)
{
	const struct vring_desc *table = vr->desc;
	unsigned len = vr->num, seen = 0, i = head;
	bool in_indirect = false;

	ch->head = head;
	ch->ndesc = 1;
	ch->nr = ch->nr_out = 0;
	ch->in_bytes = 0;
	if (head >= vr->num)
		return fail(why, why_len, "chain head out of range");
	for (;;) {
		struct vring_desc d;

		/* A table of len entries cannot hold a longer chain without a loop. */
		if (seen++ >= len)
			return fail(why, why_len,
				    "descriptor chain loops or exceeds the ring size");
		memcpy(&d, (const void *)&table[i], sizeof(d));
		if (le16toh(d.flags) & VRING_DESC_F_INDIRECT) {
			if (in_indirect || seen != 1)
				return fail(why, why_len, "indirect descriptor inside a chain");
			if (indirect(&d, m, &table, &len, why, why_len) != VBLK_POP_OK)
				return VBLK_POP_ERR;
			in_indirect = true;
			seen = 0;
			i = 0;
			continue;
		}
		if (add_seg(ch, le64toh(d.addr), le32toh(d.len),
			    le16toh(d.flags) & VRING_DESC_F_WRITE, m, why, why_len) != VBLK_POP_OK)
			return VBLK_POP_ERR;
		if (!(le16toh(d.flags) & VRING_DESC_F_NEXT))
			return VBLK_POP_OK;
		i = le16toh(d.next);
		if (i >= len)
			return fail(why, why_len, "descriptor next index out of range");
	}
}

/* A packed indirect table: every entry belongs to the chain (no NEXT). */
static enum vblk_pop packed_indirect(const struct vring_packed_desc *d, const struct vblk_mem *m,
				     struct vblk_chain *ch, char *why, size_t why_len)
{
	uint32_t l = le32toh(d->len);
	const struct vring_packed_desc *t;

	if (!l || l % sizeof(*d) || l / sizeof(*d) > VBLK_MAX_SEGS)
		return fail(why, why_len, "indirect table of bad length");
	t = vblk_gpa(m, le64toh(d->addr), l);
	if (!t)
		return fail(why, why_len, "indirect table outside the memory regions");
	for (unsigned i = 0; i < l / sizeof(*d); i++) {
		struct vring_packed_desc e;

		memcpy(&e, (const void *)&t[i], sizeof(e));
		if (le16toh(e.flags) & VRING_DESC_F_INDIRECT)
			return fail(why, why_len, "indirect descriptor inside a chain");
		if (add_seg(ch, le64toh(e.addr), le32toh(e.len),
			    le16toh(e.flags) & VRING_DESC_F_WRITE, m, why, why_len) != VBLK_POP_OK)
			return VBLK_POP_ERR;
	}
	return VBLK_POP_OK;
}

/* Walk a packed chain: consecutive slots from last_avail while NEXT is set. */
static enum vblk_pop packed_pop(struct vblk_vring *vr, const struct vblk_mem *m,
				struct vblk_chain *ch, char *why, size_t why_len)
{
	unsigned i = vr->last_avail, n = 0;
	struct vring_packed_desc d;

	ch->nr = ch->nr_out = 0;
	ch->in_bytes = 0;
	if (!packed_avail(vr))
		return VBLK_POP_EMPTY;
	/* The acquire load of the first flags orders the reads of the chain after it. */
	for (;;) {
		uint16_t f;

		memcpy(&d, (const void *)&vr->pdesc[i], sizeof(d));
		f = le16toh(d.flags);
		if (++n > vr->num)
			return fail(why, why_len, "descriptor chain exceeds the ring size");
		if (f & VRING_DESC_F_INDIRECT) {
			if (n != 1 || (f & VRING_DESC_F_NEXT))
				return fail(why, why_len, "indirect descriptor inside a chain");
			if (packed_indirect(&d, m, ch, why, why_len) != VBLK_POP_OK)
				return VBLK_POP_ERR;
		} else if (add_seg(ch, le64toh(d.addr), le32toh(d.len), f & VRING_DESC_F_WRITE, m,
				   why, why_len) != VBLK_POP_OK) {
			return VBLK_POP_ERR;
		}
		if (++i == vr->num)
			i = 0;
		if (!(f & VRING_DESC_F_NEXT))
			break;
	}
	ch->head = le16toh(d.id); /* the buffer id sits in the chain's last descriptor */
	ch->ndesc = (uint16_t)n;
	if (i <= vr->last_avail)
		vr->avail_wrap = !vr->avail_wrap;
	vr->last_avail = (uint16_t)i;
	return VBLK_POP_OK;
}

enum vblk_pop vblk_vring_pop(struct vblk_vring *vr, const struct vblk_mem *m, struct vblk_chain *ch,
			     char *why, size_t why_len)
{
	int pending;
	uint16_t head;

	if (vr->packed)
		return packed_pop(vr, m, ch, why, why_len);
	pending = vblk_vring_pending(vr);
	ch->ndesc = 1;
	if (pending < 0)
		return fail(why, why_len, "available index moved by more than the ring size");
	if (!pending)
		return VBLK_POP_EMPTY;
	/* LOAD16 of avail->idx above orders this read after it. */
	head = le16toh(vr->avail->ring[vr->last_avail & (vr->num - 1)]);
	if (vblk_vring_walk(vr, m, head, ch, why, why_len) != VBLK_POP_OK)
		return VBLK_POP_ERR;
	vr->last_avail++;
	if (vr->inflight) {
		vr->inflight->desc[head].counter = ++vr->counter;
		__atomic_store_n(&vr->inflight->desc[head].inflight, 1, __ATOMIC_RELEASE);
	}
	return VBLK_POP_OK;
}

static uint16_t *used_event(struct vblk_vring *vr)
{
	return &vr->avail->ring[vr->num];
}

static uint16_t *avail_event(struct vblk_vring *vr)
{
	return (uint16_t *)&vr->used->ring[vr->num];
}

/* A used descriptor in the next used slot; the flags, stored last, hand it over. */
static void packed_push(struct vblk_vring *vr, uint16_t id, uint16_t ndesc, uint32_t len)
{
	struct vring_packed_desc *d = &vr->pdesc[vr->used_idx];
	uint16_t f = vr->used_wrap
			     ? (1u << VRING_PACKED_DESC_F_AVAIL | 1u << VRING_PACKED_DESC_F_USED)
			     : 0;

	d->id = htole16(id);
	d->len = htole32(len);
	STORE16(&d->flags, htole16(f));
	vr->used_idx = (uint16_t)(vr->used_idx + (ndesc ? ndesc : 1));
	if (vr->used_idx >= vr->num) {
		vr->used_idx = (uint16_t)(vr->used_idx - vr->num);
		vr->used_wrap = !vr->used_wrap;
	}
}

void vblk_vring_push(struct vblk_vring *vr, uint16_t head, uint16_t ndesc, uint32_t len)
{
	struct vring_used_elem *e;

	if (vr->packed) {
		packed_push(vr, head, ndesc, len);
		return;
	}
	e = &vr->used->ring[vr->used_idx & (vr->num - 1)];
	if (vr->inflight)
		vr->inflight->last_batch_head = head;
	e->id = htole32(head);
	e->len = htole32(len);
	STORE16(&vr->used->idx, htole16(++vr->used_idx));
	if (vr->inflight) {
		__atomic_store_n(&vr->inflight->desc[head].inflight, 0, __ATOMIC_RELEASE);
		STORE16(&vr->inflight->used_idx, vr->used_idx);
	}
}

/* The driver's event suppression structure, as QEMU reads it. */
static bool packed_notify(struct vblk_vring *vr, bool valid, uint16_t old, uint16_t now)
{
	uint16_t flags = le16toh(LOAD16(&vr->driver_ev->flags));
	uint16_t off_wrap = le16toh(LOAD16(&vr->driver_ev->off_wrap));
	int off = off_wrap & 0x7fff;

	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !vr->event_idx || !valid)
		return true;
	if (vr->used_wrap != (off_wrap >> 15))
		off -= vr->num;
	return vring_need_event((uint16_t)off, now, old);
}

bool vblk_vring_notify_needed(struct vblk_vring *vr)
{
	uint16_t old = vr->signalled, now = vr->used_idx;
	bool valid = vr->signalled_valid;

	if (old == now)
		return false; /* nothing used since the last call (or the ring's start) */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vr->signalled = now;
	vr->signalled_valid = true;
	if (vr->packed)
		return packed_notify(vr, valid, old, now);
	if (!vr->event_idx)
		return !(LOAD16(&vr->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	return !valid || vring_need_event(le16toh(LOAD16(used_event(vr))), now, old);
}

bool vblk_vring_enable_notify(struct vblk_vring *vr)
{
	if (vr->packed) {
		/* Kicks stay enabled (the device structure is never changed): look again. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		return packed_avail(vr);
	}
	if (vr->event_idx)
		STORE16(avail_event(vr), htole16(vr->last_avail));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vblk_vring_pending(vr) != 0;
}

uint32_t vblk_vring_get_base(const struct vblk_vring *vr)
{
	if (!vr->packed)
		return vr->last_avail;
	return (uint32_t)(vr->last_avail | vr->avail_wrap << 15) |
	       (uint32_t)(vr->used_idx | vr->used_wrap << 15) << 16;
}

void vblk_vring_set_base(struct vblk_vring *vr, uint32_t base)
{
	vr->last_avail = (uint16_t)base;
	vr->used_idx = (uint16_t)base;
	if (!vr->packed)
		return;
	/* Packed: avail index and wrap counter, and the same for used in the upper half. */
	vr->last_avail = base & 0x7fff;
	vr->avail_wrap = base >> 15 & 1;
	if (base >> 16) {
		vr->used_idx = base >> 16 & 0x7fff;
		vr->used_wrap = base >> 31;
	} else {
		vr->used_idx = vr->last_avail;
		vr->used_wrap = vr->avail_wrap;
	}
}

static int by_counter(const void *a, const void *b, void *arg)
{
	const struct vblk_inflight_queue *q = arg;
	uint64_t ca = q->desc[*(const uint16_t *)a].counter;
	uint64_t cb = q->desc[*(const uint16_t *)b].counter;

	return ca < cb ? -1 : ca > cb;
}

int vblk_vring_inflight_start(struct vblk_vring *vr, uint16_t *heads, unsigned max)
{
	struct vblk_inflight_queue *q = vr->inflight;
	unsigned n = 0;

	if (!q)
		return 0;
	if (!q->version) {
		/* Fresh memory: nothing was in flight. */
		q->version = 1;
		if (!q->desc_num)
			q->desc_num = vr->num;
		return 0;
	}
	if (q->desc_num < vr->num)
		return -EINVAL;
	vr->used_idx = le16toh(LOAD16(&vr->used->idx));
	if (q->used_idx != vr->used_idx) {
		/* The used index went out but we died before clearing its entry. */
		if (q->last_batch_head < vr->num)
			q->desc[q->last_batch_head].inflight = 0;
		q->used_idx = vr->used_idx;
	}
	for (unsigned i = 0; i < vr->num && n < max; i++) {
		if (q->desc[i].inflight == 1) {
			heads[n++] = i;
			if (q->desc[i].counter > vr->counter)
				vr->counter = q->desc[i].counter;
		}
	}
	qsort_r(heads, n, sizeof(*heads), by_counter, q);
	vr->last_avail = (uint16_t)(vr->used_idx + n);
	return (int)n;
}

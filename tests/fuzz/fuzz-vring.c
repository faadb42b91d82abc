// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the split-ring descriptor-chain walker of the
 * vhost-user-blk export (src/transport/vhost-user-blk/vring.c) on an
 * arbitrary ring in guest memory.
 *
 * Input: byte 0 picks the ring size (2^(b % 9), 1..256) and whether event
 * index, inflight memory (split) and the packed layout (bit 6: descriptors
 * at 0, driver and device event structures at 0x1000 and 0x2000, both wrap
 * counters from bit 7) are in use; the rest is guest memory (up to
 * 64 KiB, zero-padded) with the descriptor table at 0, the available ring
 * at 0x1000, the used ring at 0x2000 and the inflight memory at 0x3000.
 * Every chain is taken until the ring is empty or broken, each one's
 * segments are checked to lie inside guest memory, and each is returned
 * on the used ring.
 *
 * Built by tests/fuzz/meson.build (CC=clang, -Dfuzz=true).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/vhost-user-blk/vblk-internal.h"

#define MEMSZ (64u * 1024u)

static uint8_t mem[MEMSZ] __attribute__((aligned(4096)));
static struct vblk_chain chain;

static void check(const struct vblk_chain *ch)
{
	for (unsigned i = 0; i < ch->nr; i++) {
		const struct vblk_seg *s = &ch->seg[i];

		if (s->addr < mem || s->addr + s->len > mem + MEMSZ || !s->len)
			abort();
		if (i < ch->nr_out && s->write)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vblk_mem m = {.refs = 1, .nr = 1};
	struct vblk_vring vr = {0};
	uint16_t heads[256];
	char why[128];

	if (size < 1)
		return 0;
	memset(mem, 0, sizeof(mem));
	memcpy(mem, data + 1, size - 1 < MEMSZ ? size - 1 : MEMSZ);
	m.r[0] = (struct vblk_region){.gpa = 0, .size = MEMSZ, .uva = 0x10000000, .host = mem};
	vr.num = (uint16_t)(1u << (data[0] % 9));
	vr.event_idx = data[0] & 0x10;
	vr.packed = data[0] & 0x40;
	vblk_vring_set_base(&vr, data[0] & 0x80 ? 1u << 15 | 1u << 31 : 0);
	if (vblk_vring_map(&vr, &m, 0x10000000, 0x10001000, 0x10002000, why, sizeof(why)))
		abort(); /* a good ring always maps */
	if ((data[0] & 0x20) && !vr.packed) {
		vr.inflight = (struct vblk_inflight_queue *)(mem + 0x3000);
		int n = vblk_vring_inflight_start(&vr, heads, vr.num);

		for (int i = 0; i < n; i++) {
			if (vblk_vring_walk(&vr, &m, heads[i], &chain, why, sizeof(why)) ==
			    VBLK_POP_OK)
				check(&chain);
		}
	}
	for (unsigned i = 0; i < 2u * vr.num + 2; i++) {
		enum vblk_pop r = vblk_vring_pop(&vr, &m, &chain, why, sizeof(why));

		if (r != VBLK_POP_OK)
			break;
		check(&chain);
		if (!vr.packed && chain.head >= vr.num)
			abort();
		vblk_vring_push(&vr, chain.head, chain.ndesc, (uint32_t)chain.in_bytes);
		if (i & 1)
			vblk_vring_notify_needed(&vr);
		vblk_vring_enable_notify(&vr);
	}
	return 0;
}

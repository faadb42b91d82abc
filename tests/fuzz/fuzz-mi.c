/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: NVMe-MI request messages into nvemu_mi_ep_handle() (the
 * MI message parser, MI commands and the Admin command tunnel).
 *
 * Build and run with meson (CC=clang, -Dfuzz=true; instrument the library
 * too for coverage, see tests/fuzz/meson.build):
 *   ninja -C build-fuzz tests/fuzz/fuzz-mi
 *   mkdir -p fuzz-out && build-fuzz/tests/fuzz/fuzz-mi -max_total_time=300 fuzz-out
 *
 * By hand, from the top of the tree (<builddir> holds config.h):
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc -I<builddir> \
 *         tests/fuzz/fuzz-mi.c src/engine/[a-z]*.c src/bdev/[a-z]*.c src/mgmt/mi/[a-z]*.c \
 *         src/util/[a-z]*.c -lnvme -luring -luuid -lisal -o fuzz-mi
 *   ./fuzz-mi -max_total_time=60 -timeout=10
 *
 * Input: u8 mode | message bytes. Mode bit 0 set: the message gets type
 * 0x84 and a correct MIC appended, so the fuzzer reaches the command
 * parsers; clear: the bytes go in as they are (MIC and framing checks).
 * Bits 3:1 pick the NMIMT forced into byte 1 (7: keep the fuzzer's byte).
 * Every response must be framed right: 0x84, ROR set, whole dwords, a
 * valid MIC, at most one per request. Asynchronous Event Messages (enabled
 * by an AE Enable List in the input) are polled after every input, the
 * clock advancing 100 ms a run: each must be a request of NMIMT 5 with a
 * valid MIC and an occurrence list whose length fits the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nvemu/mi.h>

#include "engine/nvemu-internal.h" /* subsys->tnvmcap */
#include "util/crc32c.h"

/* libFuzzer keeps the model between inputs; rebuilt now and then to bound growth. */
static struct nvemu_subsys *subsys;
static struct nvemu_mi_ep *ep;
static unsigned runs;
static int calls; /* responses to the current input */

static void aem_bind(void *arg)
{
	(void)arg;
}

static int aem_check(void *arg, const uint8_t *m, size_t len)
{
	uint32_t mic, ll;

	(void)arg;
	if (len < 4 + 7 + 4 || len % 4 || m[0] != 0x84 || m[1] != NVEMU_MI_NMIMT_AE << 3)
		__builtin_trap();
	memcpy(&mic, m + len - 4, 4);
	if (le32toh(mic) != nvemu_crc32c(m, len - 4))
		__builtin_trap();
	ll = m[6] | m[7] << 8 | (uint32_t)(m[8] & 0x7f) << 16;
	if (ll < 7 || 4 + ll > len - 4 || m[9] != 7)
		__builtin_trap();
	return 0;
}

static const struct nvemu_mi_aem_ops aem_ops = {.bind = aem_bind, .send = aem_check};

static uint8_t cfg_space[4096];

static int cfg_read(void *arg, struct nvemu_subsys *s, uint32_t off, unsigned size, uint32_t *v)
{
	(void)arg;
	(void)s;
	if (off + size > sizeof(cfg_space))
		abort(); /* the endpoint must have checked the window */
	*v = 0;
	memcpy(v, cfg_space + off, size);
	return 0;
}

static int cfg_write(void *arg, struct nvemu_subsys *s, uint32_t off, unsigned size, uint32_t v)
{
	(void)arg;
	(void)s;
	if (off + size > sizeof(cfg_space))
		abort();
	memcpy(cfg_space + off, &v, size);
	return 0;
}

static const struct nvemu_mi_pcie_ops cfg_ops = {
	.cfg_read = cfg_read, .cfg_write = cfg_write, .cfg_size = sizeof(cfg_space),
};

static void build(void)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	uint16_t pcie, tw, cntlid;
	uint32_t nsid;

	if (ep)
		nvemu_mi_ep_destroy(ep);
	if (subsys)
		nvemu_subsys_destroy(subsys);
	ep = NULL;
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:fuzz-mi";
	sp.serial = "FUZZ-MI";
	sp.nn = 16;
	sp.mnan = 16;
	if (nvemu_subsys_create(&sp, &subsys, NULL))
		abort();
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	nvemu_subsys_add_port(subsys, &pp, &pcie, NULL);
	nvemu_port_params_init(&pp, NVEMU_PORT_TWO_WIRE);
	pp.two_wire.max_freq = 3;
	nvemu_subsys_add_port(subsys, &pp, &tw, NULL);
	nvemu_ctrl_params_init(&cp);
	cp.port_id = pcie;
	nvemu_subsys_add_ctrl_ex(subsys, &cp, &cntlid, NULL);
	nvemu_subsys_add_ns(subsys, 64, &nsid, NULL);
	nvemu_ctrl_attach_ns(nvemu_subsys_ctrl(subsys, cntlid), nsid, NULL);
	/* Namespace Management may not hand out more than a little RAM. */
	subsys->tnvmcap = 1 << 20;
	if (nvemu_mi_ep_create(subsys, tw, &ep, NULL))
		abort();
	nvemu_mi_ep_set_aem_ops(ep, &aem_ops, NULL);
	/* PCIe Configuration Read/Write reach a plain 4 KiB space. */
	nvemu_mi_ep_set_pcie_ops(ep, &cfg_ops, NULL);
}

static void check(void *ctx, const uint8_t *r, size_t len)
{
	uint32_t mic;

	(void)ctx;
	if (++calls > 1 || len < 12 || len % 4 || r[0] != 0x84 || !(r[1] & 0x80))
		__builtin_trap();
	memcpy(&mic, r + len - 4, 4);
	if (le32toh(mic) != nvemu_crc32c(r, len - 4))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t msg[8192 + 4];
	uint8_t mode;
	size_t n;

	if (!ep || ++runs % 2000 == 0)
		build();
	if (!size)
		return 0;
	mode = data[0];
	n = size - 1 > 8192 ? 8192 : size - 1;
	memcpy(msg, data + 1, n);
	if (mode & 1) {
		uint32_t mic;

		if (n < 2) {
			memset(msg + n, 0, 2 - n);
			n = 2;
		}
		msg[0] = 0x84;
		if (((mode >> 1) & 7) != 7)
			msg[1] = (msg[1] & 0x81) | ((mode >> 1) & 7) << 3;
		mic = htole32(nvemu_crc32c(msg, n));
		memcpy(msg + n, &mic, 4);
		n += 4;
	}
	calls = 0;
	nvemu_mi_ep_handle(ep, msg, n, check, NULL);
	nvemu_subsys_poll(subsys);
	nvemu_mi_ep_aem_poll(ep, (uint64_t)runs * 100000000ULL);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: what a live update's taker reads from the handing
 * daemon (src/daemon/live-update.c, docs/live-update.md). The first byte
 * picks the parser:
 *   0  the handover document (nvemud_lu_parse), byte 1 the number of
 *      descriptors that came with it, the rest JSON
 *   1  the PCIe function's state blob (nvemu_pcie_ctrl_load) into a fresh
 *      function whose engine holds an admin and an I/O queue pair, then a
 *      doorbell on each SQ and a poll, as the new daemon would go on
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "rpc.h"
#include <nvemu/ctrl-state.h>
#include <nvemu/pcie.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM (64u * 1024)

static uint8_t *mem;

static int f_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	if (addr >= MEM || len > MEM - addr)
		return -1;
	memcpy(buf, mem + addr, len);
	return 0;
}

static int f_write(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	if (addr >= MEM || len > MEM - addr)
		return -1;
	memcpy(mem + addr, buf, len);
	return 0;
}

static void *f_map(void *ctx, uint64_t addr, size_t len)
{
	if (addr >= MEM || len > MEM - addr)
		return NULL;
	return mem + addr;
}

static void f_msix(void *ctx, uint16_t v) { (void)ctx; (void)v; }

static const struct nvemu_pci_host_ops ops = {
	.dma_read = f_read, .dma_write = f_write, .map = f_map, .msix_notify = f_msix,
};

static void set_q(struct nvemu_ctrl *ctrl, enum nvemu_state_scope sc, unsigned qid,
		  const char *name, uint64_t v)
{
	const struct nvemu_state_field *f = nvemu_ctrl_state_field(sc, "", name);

	if (f)
		nvemu_ctrl_state_set(ctrl, f, qid, 0, v);
}

static void pcie_state(const uint8_t *data, size_t size)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_subsys *s = NULL;
	struct nvemu_pcie_ctrl *pc = NULL;
	struct nvemu_ctrl *ctrl;
	uint16_t port, cntlid;
	uint32_t *db = NULL;

	mem = calloc(1, MEM);
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:fuzz-lu";
	if (!mem || nvemu_subsys_create(&sp, &s, NULL))
		goto out;
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	nvemu_ctrl_params_init(&cp);
	cp.num_io_queues = 1;
	cp.max_queue_entries = 64;
	if (nvemu_subsys_add_port(s, &pp, &port, NULL))
		goto out;
	cp.port_id = port;
	if (nvemu_subsys_add_ctrl_ex(s, &cp, &cntlid, NULL))
		goto out;
	ctrl = nvemu_subsys_ctrl(s, cntlid);
	if (nvemu_pcie_ctrl_create(ctrl, &ops, NULL, &pc, NULL))
		goto out;
	/* The engine's side as a snapshot restore leaves it: enabled, two queue pairs. */
	nvemu_ctrl_state_restore_begin(ctrl);
	for (unsigned q = 0; q < 2; q++) {
		nvemu_ctrl_state_queue_create(ctrl, NVEMU_STATE_CQ, q);
		nvemu_ctrl_state_queue_create(ctrl, NVEMU_STATE_SQ, q);
		set_q(ctrl, NVEMU_STATE_CQ, q, "qid", q);
		set_q(ctrl, NVEMU_STATE_CQ, q, "size", 16);
		set_q(ctrl, NVEMU_STATE_CQ, q, "addr", 0x1000 + q * 0x2000);
		set_q(ctrl, NVEMU_STATE_CQ, q, "ien", 1);
		set_q(ctrl, NVEMU_STATE_CQ, q, "iv", q);
		set_q(ctrl, NVEMU_STATE_SQ, q, "qid", q);
		set_q(ctrl, NVEMU_STATE_SQ, q, "size", 16);
		set_q(ctrl, NVEMU_STATE_SQ, q, "addr", 0x2000 + q * 0x2000);
		set_q(ctrl, NVEMU_STATE_SQ, q, "cqid", q);
	}
	nvemu_ctrl_state_set(ctrl, nvemu_ctrl_state_field(NVEMU_STATE_CTRL, "registers", "cc"), 0, 0,
			     0x00460001);
	nvemu_ctrl_state_set(ctrl, nvemu_ctrl_state_field(NVEMU_STATE_CTRL, "registers", "csts"), 0,
			     0, 1);
	nvemu_ctrl_state_restore_end(ctrl);
	db = calloc(1, nvemu_pcie_db_area_size(pc));
	if (!db)
		goto out;
	nvemu_ctrl_suspend(ctrl, false);
	if (nvemu_pcie_ctrl_load(pc, data, size, db, NULL) == 0) {
		/* Go on as the new daemon would: resume, doorbells, a poll. */
		nvemu_ctrl_resume(ctrl);
		nvemu_pcie_ctrl_pause(pc, false);
		nvemu_pcie_bar0_write(pc, 0x1000, 4, 1);
		nvemu_pcie_bar0_write(pc, 0x1008, 4, 1);
		nvemu_pcie_db_poll(pc);
		nvemu_pcie_ctrl_poll(pc);
		nvemu_subsys_poll(s);
	}
out:
	nvemu_pcie_ctrl_destroy(pc);
	if (s)
		nvemu_subsys_destroy(s);
	free(db);
	free(mem);
	mem = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (data[0] == 0) {
		struct rpc_err e = { 0 };
		json_t *root = NULL;

		if (!nvemud_lu_parse((const char *)data + 2, size - 2, data[1], &root, &e)) {
			/* Accepted: what lu_restore relies on holds. */
			json_t *c;
			size_t i;

			json_array_foreach(json_object_get(root, "controllers"), i, c) {
				json_t *v = json_object_get(c, "vfu"), *f;
				size_t k;

				if (!json_string_value(json_object_get(c, "name")))
					abort();
				if (!v)
					continue;
				json_array_foreach(json_object_get(v, "fds"), k, f)
					if (json_integer_value(f) < 0 || json_integer_value(f) >= data[1])
						abort();
			}
		}
		json_decref(root);
	} else if (data[0] == 1) {
		pcie_state(data + 1, size - 1);
	}
	return 0;
}

#ifdef FUZZ_STANDALONE
#include "standalone.h"

/* A seed with up to 8 edits, inserting bytes of the handover framing and its JSON. */
size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds)
{
	static const char alphabet[] = "\x00\x01\x02{}[]\":,";
	size_t len;

	(void)i;
	if (cap > 16384)
		cap = 16384;
	len = fuzz_seed_copy(seeds, buf, cap, rng);
	return fuzz_edit(buf, len, cap, rng, alphabet, sizeof(alphabet) - 1);
}
#endif

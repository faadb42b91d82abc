/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: reservation payloads. The first byte picks the input:
 *   even: a saved PTPL state (resv-ptpl.c) from the rest of the input;
 *         when it parses, it is saved and parsed back and must round-trip
 *   odd:  records of 24 bytes, each one reservation command (Register,
 *         Acquire, Release, Report, or an I/O) from one of three hosts on
 *         one namespace: u8 host | u8 opcode pick | u8 fuse | u8 len/16 |
 *         le32 cdw10 | le32 cdw11 | 8-byte key | 8-byte key
 * After every command the state must hold together: at most the
 * registrant limit, a single-holder reservation held by a registrant, no
 * reservation without registrants; a report must describe what is there.
 *
 * Built by tests/fuzz/meson.build with libFuzzer, and by tests/meson.build
 * as fuzz-resv-smoke (-DFUZZ_STANDALONE): corpus files given as arguments,
 * then FUZZ_ITERATIONS pseudo-random inputs.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/reservations.h"

#define NH 3

static struct nvemu_subsys *subsys;
static struct nvemu_host *hosts[NH];
static struct nvemu_ctrl *ctrls[NH];
static char ptpl_path[64];

static void die(const char *what)
{
	fprintf(stderr, "fuzz-resv: %s\n", what);
	abort();
}

static uint16_t exec(int h, uint16_t sqid, struct nvemu_sqe *cmd, void *buf, uint32_t len)
{
	return nvemu_host_exec(hosts[h], sqid, cmd, buf, len, NULL);
}

static void model_up(void)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	uint16_t port;
	uint32_t nsid;

	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:fuzz-resv";
	if (nvemu_subsys_create(&sp, &subsys, NULL))
		die("subsys");
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	nvemu_subsys_add_port(subsys, &pp, &port, NULL);
	if (nvemu_subsys_add_ns(subsys, 64, &nsid, NULL))
		die("ns");
	for (int i = 0; i < NH; i++) {
		struct nvemu_ctrl_params cp;
		struct nvemu_sqe cmd;
		uint16_t cntlid;
		uint8_t id[16] = {(uint8_t)(0x10 + i)};

		nvemu_ctrl_params_init(&cp);
		cp.port_id = port;
		cp.num_io_queues = 1;
		cp.compare_write = true;
		if (nvemu_subsys_add_ctrl_ex(subsys, &cp, &cntlid, NULL))
			die("ctrl");
		ctrls[i] = nvemu_subsys_ctrl(subsys, cntlid);
		nvemu_ctrl_attach_ns(ctrls[i], 1, NULL);
		nvemu_host_create(ctrls[i], &hosts[i], NULL);
		if (nvemu_host_enable(hosts[i]))
			die("enable");
		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_admin_create_cq;
		cmd.dptr1 = 0x10000;
		cmd.cdw10 = 1 | 15u << 16;
		cmd.cdw11 = 3;
		exec(i, 0, &cmd, NULL, 0);
		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_admin_create_sq;
		cmd.dptr1 = 0x20000;
		cmd.cdw10 = 1 | 15u << 16;
		cmd.cdw11 = 1 | 1u << 16;
		exec(i, 0, &cmd, NULL, 0);
		/* host 0: 64-bit id, host 1: 128-bit id, host 2: none */
		if (i < 2) {
			memset(&cmd, 0, sizeof(cmd));
			cmd.opc = nvme_admin_set_features;
			cmd.cdw10 = NVME_FEAT_FID_HOST_ID;
			cmd.cdw11 = (uint32_t)i;
			exec(i, 0, &cmd, id, 16);
		}
	}
	if (nvemu_ns_set_ptpl_file(subsys, 1, ptpl_path, NULL))
		die("ptpl file");
}

static void model_down(void)
{
	for (int i = 0; i < NH; i++)
		nvemu_host_destroy(hosts[i]);
	nvemu_subsys_destroy(subsys);
	unlink(ptpl_path);
}

static void check_state(const struct nvemu_resv *r)
{
	if (!r)
		return;
	if (r->nr_regs > NVEMU_RESV_MAX_REGS || r->rtype > 6)
		die("state out of bounds");
	if (r->rtype && !r->nr_regs)
		die("a reservation without registrants");
	if (r->rtype && r->rtype < NVME_RESERVATION_RTYPE_WEAR) {
		bool found = false;

		for (unsigned i = 0; i < r->nr_regs; i++)
			found |= !memcmp(&r->regs[i].host, &r->holder, sizeof(r->holder));
		if (!found)
			die("the holder is not a registrant");
	}
}

static void fuzz_ptpl(const uint8_t *data, size_t size)
{
	struct nvemu_resv *r = calloc(1, sizeof(*r)), *back = calloc(1, sizeof(*back));
	struct nvemu_ns ns = {0};
	char *text = NULL;
	FILE *f;
	long n;

	if (!r || !back)
		die("oom");
	if (nvemu_resv_ptpl_parse(r, (const char *)data, size) == 0) {
		check_state(r);
		/* round trip through the writer */
		r->ptpl_file = ptpl_path;
		ns.resv = r;
		if (nvemu_resv_ptpl_save(&ns))
			die("save");
		f = fopen(ptpl_path, "r");
		if (!f)
			die("reopen");
		text = calloc(1, 8192);
		n = (long)fread(text, 1, 8191, f);
		fclose(f);
		if (nvemu_resv_ptpl_parse(back, text, (size_t)n))
			die("a saved state does not parse");
		if (back->nr_regs != r->nr_regs || back->rtype != r->rtype || back->gen != r->gen ||
		    memcmp(back->regs, r->regs, r->nr_regs * sizeof(r->regs[0])))
			die("round trip changed the state");
		free(text);
		unlink(ptpl_path);
	}
	free(r);
	free(back);
}

static void fuzz_cmds(const uint8_t *data, size_t size)
{
	static const uint8_t opcs[] = {nvme_cmd_resv_register, nvme_cmd_resv_acquire,
				       nvme_cmd_resv_release,  nvme_cmd_resv_report,
				       nvme_cmd_write,	       nvme_cmd_read,
				       nvme_cmd_compare,       nvme_cmd_flush};
	static uint8_t buf[4096];
	struct nvemu_ns *ns;

	model_up();
	ns = nvemu_subsys_ns(subsys, 1);
	for (size_t off = 0; off + 24 <= size; off += 24) {
		const uint8_t *p = data + off;
		struct nvemu_sqe cmd = {.nsid = 1};
		int h = p[0] % NH;
		uint32_t len = (uint32_t)p[3] * 16;
		uint16_t st;

		cmd.opc = opcs[p[1] % sizeof(opcs)];
		/* fused halves only when asked for, and only ones that complete at once */
		cmd.flags = (p[2] & 0x80) && cmd.opc != nvme_cmd_compare ? p[2] & 3 : 0;
		memcpy(&cmd.cdw10, p + 4, 4);
		memcpy(&cmd.cdw11, p + 8, 4);
		if (cmd.opc == nvme_cmd_write || cmd.opc == nvme_cmd_read) {
			cmd.cdw10 &= 63;
			cmd.cdw11 = 0;
			cmd.cdw12 = 0;
			len = 512;
		}
		memset(buf, 0, sizeof(buf));
		memcpy(buf, p + 8, 16);
		st = exec(h, 1, &cmd, buf, len);
		check_state(ns->resv);
		/* NUMD of at least 2 dwords: the header's type and count came back */
		if (cmd.opc == nvme_cmd_resv_report && !st && le32toh(cmd.cdw10) >= 1 && ns->resv) {
			unsigned regctl = buf[5] | buf[6] << 8;

			if (regctl != ns->resv->nr_regs || buf[4] != ns->resv->rtype)
				die("report disagrees with the state");
		}
	}
	/* a pending fused first half is completed by the teardown (controller reset) */
	model_down();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ptpl_path[0])
		snprintf(ptpl_path, sizeof(ptpl_path), "/tmp/fuzz-resv-%d.ptpl", (int)getpid());
	if (!size)
		return 0;
	if (!(data[0] & 1))
		fuzz_ptpl(data + 1, size - 1);
	else
		fuzz_cmds(data + 1, size - 1);
	return 0;
}

#ifdef FUZZ_STANDALONE
#include "standalone.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return *s;
}

/* Mostly well-formed commands with keys from a small set, so keys match often. */
static size_t random_input(uint8_t *b, size_t cap, uint64_t *s)
{
	static const uint64_t keys[] = {0, 1, 0xa, 0xb};
	size_t n = 1;

	b[0] = 1;
	while (n + 24 <= cap && rnd(s) % 40) {
		uint8_t *p = b + n;
		uint32_t cdw10 = (uint32_t)(rnd(s) % 3) | (uint32_t)(1 + rnd(s) % 6) << 8;
		uint64_t k1 = keys[rnd(s) % 4], k2 = keys[rnd(s) % 4];

		if (rnd(s) % 8 == 0)
			cdw10 = (uint32_t)rnd(s);
		if (rnd(s) % 4 == 0)
			cdw10 |= 1u << 3; /* IEKEY */
		p[0] = (uint8_t)rnd(s);
		p[1] = (uint8_t)rnd(s);
		p[2] = (uint8_t)(rnd(s) % 16 == 0 ? 0x80 | (rnd(s) & 3) : 0);
		p[3] = (uint8_t)(rnd(s) % 8 == 0 ? rnd(s) : 1 + rnd(s) % 4);
		if (p[1] % 8 == 3)
			cdw10 = 1023; /* report: 4 KiB */
		memcpy(p + 4, &cdw10, 4);
		memset(p + 8, 0, 4);
		memcpy(p + 8, &k1, 8);
		memcpy(p + 16, &k2, 8);
		if (p[1] % 8 == 3 && rnd(s) % 2)
			p[8] = 1; /* EDS */
		n += 24;
	}
	return n;
}

/* Two saved states first (the parser's way in), then command sequences. */
size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds)
{
	static const char *states[] = {
		"\0nvemu-resv 1\nptpl 1\ngen 3\nrtype 1\nholder 0 0 "
		"10000000000000000000000000000000\nreg 0 0 10000000000000000000000000000000 a\n",
		"\0nvemu-resv 1\nrtype 6\nholder 0 3 00000000000000000000000000000000\n",
	};

	(void)seeds;
	if (i < sizeof(states) / sizeof(states[0])) {
		size_t n = 1 + strlen(states[i] + 1);

		memcpy(buf, states[i], n);
		return n;
	}
	return random_input(buf, cap < 2048 ? cap : 2048, rng);
}
#endif

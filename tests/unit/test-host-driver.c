/* SPDX-License-Identifier: MIT */
/*
 * What the Linux NVMe driver does at probe, and what a host does next,
 * through the in-process host on a model built with the public API only:
 * enable, Identify, queues, namespaces and their descriptors, AERs; then
 * data integrity on a RAM and a file namespace, attach/detach events,
 * firmware update, Format NVM, namespace management and shutdown.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test-util.h"

#define HD_NQN	    "nqn.2024-01.io.nvemu:host-driver"
#define HD_SN	    "HD-SN-0001"
#define HD_MN	    "nvemu host driver"
#define HD_FR	    "NVEMU1.0"
#define HD_NN	    64
#define HD_IOQ	    8
#define HD_MDTS	    5 /* 2^5 * 4 KiB = 128 KiB */
#define HD_MAX_XFER (4096u << HD_MDTS)
#define HD_AERL	    3

#define NS_RAM	     1
#define NS_FILE	     2
#define NS_SPARE     3 /* allocated, not attached at probe */
#define RAM_BLOCKS   8192
#define FILE_BLOCKS  32768
#define SPARE_BLOCKS 1024

#define MAX_AER (HD_AERL + 1)

static const uint8_t ram_uuid[16] = {0x6e, 0x76, 0x65, 0x6d, 0x75, 0x2d, 0x40, 0x01,
				     0x80, 0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
static const uint8_t ram_nguid[16] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
				      0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0};
static const uint8_t ram_eui64[8] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
static const uint8_t file_uuid[16] = {0x6e, 0x76, 0x65, 0x6d, 0x75, 0x2d, 0x40, 0x02,
				      0x80, 0x02, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44};

struct aer_slot {
	struct nvemu_req req;
	bool busy;  /* submitted, not completed */
	bool fired; /* completed, not consumed by the test */
};

struct hd_env {
	struct tu_env tu; /* first: the tu_* helpers take it */
	struct nvemu_bdev *file_bdev;
	char path[64];
	uint16_t cntlid;
	struct aer_slot aer[MAX_AER];
	uint16_t next_cid;
};

/* ---- asynchronous event requests, kept outstanding like the driver does */

static void aer_done(struct nvemu_req *req)
{
	struct aer_slot *s = req->transport_priv;

	s->busy = false;
	s->fired = true;
}

static void aer_submit(struct hd_env *env)
{
	for (unsigned i = 0; i < MAX_AER; i++) {
		struct aer_slot *s = &env->aer[i];

		if (s->busy || s->fired)
			continue;
		memset(&s->req, 0, sizeof(s->req));
		s->req.cmd.opc = nvme_admin_async_event;
		s->req.cmd.cid = 0x1000 + (uint16_t)i;
		s->req.done = aer_done;
		s->req.transport_priv = s;
		s->busy = true;
		nvemu_host_submit(env->tu.host, 0, &s->req);
		return;
	}
	fail_msg("no free AER slot");
}

/* Take one completed AER; false when none has completed. */
static bool aer_take(struct hd_env *env, struct nvemu_cqe *cqe)
{
	for (unsigned i = 0; i < MAX_AER; i++) {
		if (env->aer[i].fired) {
			env->aer[i].fired = false;
			*cqe = env->aer[i].req.cqe;
			return true;
		}
	}
	return false;
}

static unsigned aer_outstanding(struct hd_env *env)
{
	unsigned n = 0;

	for (unsigned i = 0; i < MAX_AER; i++)
		n += env->aer[i].busy;
	return n;
}

/* Expect exactly one Namespace Attribute Changed notice. */
static void expect_ns_changed_aen(struct hd_env *env)
{
	struct nvemu_cqe cqe = {0};

	assert_true(aer_take(env, &cqe));
	assert_success(cqe.status);
	assert_int_equal(cqe.dw0 & 0x7, NVME_AER_NOTICE);
	assert_int_equal((cqe.dw0 >> 8) & 0xff, 0);
	assert_int_equal((cqe.dw0 >> 16) & 0xff, NVME_LOG_LID_CHANGED_NS);
	assert_false(aer_take(env, &cqe));
}

/* ---- the model */

static void model_build(struct hd_env *env)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_ns_params np;
	struct nvemu_bdev_file_opts fo = {0};
	struct nvemu_error err = {0};
	uint16_t port;
	uint32_t nsid;
	int fd;

	nvemu_subsys_params_init(&sp);
	sp.nqn = HD_NQN;
	sp.serial = HD_SN;
	sp.model = HD_MN;
	sp.firmware_rev = HD_FR;
	sp.nn = HD_NN;
	sp.mnan = 16;
	assert_int_equal(nvemu_subsys_create(&sp, &env->tu.subsys, &err), 0);

	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	assert_int_equal(nvemu_subsys_add_port(env->tu.subsys, &pp, &port, &err), 0);

	nvemu_ctrl_params_init(&cp);
	cp.port_id = port;
	cp.num_io_queues = HD_IOQ;
	cp.mdts = HD_MDTS;
	cp.aerl = HD_AERL;
	cp.fw_slots = 4;
	cp.write_zeroes = cp.compare = cp.dsm = true;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->tu.subsys, &cp, &env->cntlid, &err), 0);
	env->tu.ctrl = nvemu_subsys_ctrl(env->tu.subsys, env->cntlid);
	assert_non_null(env->tu.ctrl);

	/* NS 1: RAM, every identifier given */
	nvemu_ns_params_init(&np);
	np.nsid = NS_RAM;
	np.nblocks = RAM_BLOCKS;
	np.has_uuid = np.has_nguid = np.has_eui64 = true;
	memcpy(np.uuid, ram_uuid, 16);
	memcpy(np.nguid, ram_nguid, 16);
	memcpy(np.eui64, ram_eui64, 8);
	assert_int_equal(nvemu_subsys_add_ns_ex(env->tu.subsys, &np, &nsid, &err), 0);
	assert_int_equal(nsid, NS_RAM);

	/* NS 2: a temporary file through io_uring; NGUID and EUI-64 generated */
	snprintf(env->path, sizeof(env->path), "/var/tmp/nvemu-hd-XXXXXX");
	fd = mkstemp(env->path);
	assert_true(fd >= 0);
	close(fd);
	fo.path = env->path;
	fo.blk_size = 512;
	fo.size = (uint64_t)FILE_BLOCKS * 512;
	if (nvemu_bdev_file_create("hd-file", &fo, &env->file_bdev, &err))
		fail_msg("file bdev: %s", err.msg);
	nvemu_ns_params_init(&np);
	np.nsid = NS_FILE;
	np.bdev = env->file_bdev;
	np.has_uuid = true;
	memcpy(np.uuid, file_uuid, 16);
	assert_int_equal(nvemu_subsys_add_ns_ex(env->tu.subsys, &np, &nsid, &err), 0);
	assert_int_equal(nvemu_subsys_ns(env->tu.subsys, NS_FILE) != NULL, 1);

	nvemu_ns_params_init(&np);
	np.nsid = NS_SPARE;
	np.nblocks = SPARE_BLOCKS;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->tu.subsys, &np, &nsid, &err), 0);

	/* Attached before the controller is enabled: no events yet. */
	assert_int_equal(nvemu_ctrl_attach_ns(env->tu.ctrl, NS_RAM, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(env->tu.ctrl, NS_FILE, &err), 0);

	assert_int_equal(nvemu_host_create(env->tu.ctrl, &env->tu.host, &err), 0);
}

/* ---- probe, as drivers/nvme/host/{pci,core}.c does it */

static void check_padded(const char *field, size_t len, const char *want)
{
	char buf[64];

	assert_true(len <= sizeof(buf));
	memset(buf, ' ', len);
	memcpy(buf, want, strlen(want));
	assert_memory_equal(field, buf, len);
}

static void identify_ctrl(struct hd_env *env, struct nvme_id_ctrl *id)
{
	memset(id, 0xa5, sizeof(*id));
	assert_success(tu_identify(&env->tu, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));
}

static void create_io_queues(struct hd_env *env)
{
	struct nvemu_sqe cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_cq;
	cmd.dptr1 = 0x100000;
	cmd.cdw10 = 1 | 127u << 16;
	cmd.cdw11 = 1 | 1u << 1; /* PC, IEN, vector 0 */
	assert_success(tu_admin(&env->tu, &cmd, NULL, 0, NULL));
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_sq;
	cmd.dptr1 = 0x200000;
	cmd.cdw10 = 1 | 127u << 16;
	cmd.cdw11 = 1 | 1u << 16; /* PC, CQID 1 */
	assert_success(tu_admin(&env->tu, &cmd, NULL, 0, NULL));
}

/* The list of active NSIDs (CNS 02h), 0-terminated; returns how many. */
static unsigned active_ns_list(struct hd_env *env, uint8_t cns, uint32_t *out, unsigned max)
{
	struct nvme_ns_list list;
	unsigned n = 0;

	memset(&list, 0xa5, sizeof(list));
	assert_success(tu_identify(&env->tu, cns, 0, 0, &list));
	while (n < NVME_ID_NS_LIST_MAX && list.ns[n]) {
		assert_true(n < max);
		out[n] = le32toh(list.ns[n]);
		if (n)
			assert_true(out[n] > out[n - 1]);
		n++;
	}
	return n;
}

static bool list_has(const uint32_t *list, unsigned n, uint32_t nsid)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] == nsid)
			return true;
	return false;
}

/* Walk the CNS 03h descriptor list and return the NID of type nidt. */
static const uint8_t *ns_desc_find(const uint8_t *buf, uint8_t nidt, uint8_t *nidl)
{
	size_t off = 0;

	while (off + 4 <= 4096) {
		const struct nvme_ns_id_desc *d = (const void *)(buf + off);

		if (!d->nidt)
			break;
		assert_true(off + 4 + d->nidl <= 4096);
		if (d->nidt == nidt) {
			*nidl = d->nidl;
			return buf + off + 4;
		}
		off += 4 + d->nidl;
	}
	return NULL;
}

static void check_ns(struct hd_env *env, uint32_t nsid)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(env->tu.subsys, nsid);
	struct nvme_id_ns id;
	uint8_t desc[4096];
	const uint8_t *nid;
	uint8_t nidl;

	assert_non_null(ns);
	memset(&id, 0xa5, sizeof(id));
	assert_success(tu_identify(&env->tu, NVME_IDENTIFY_CNS_NS, nsid, 0, &id));
	assert_int_equal(le64toh(id.nsze), ns->nblocks);
	assert_int_equal(le64toh(id.ncap), ns->nblocks);
	assert_int_equal(id.flbas & 0xf, 0);
	assert_true(id.nlbaf >= 1); /* 0's based: at least 512 B and 4 KiB */
	assert_int_equal(id.lbaf[0].ds, 9);
	assert_int_equal(id.lbaf[0].ms, 0);
	assert_int_equal(id.lbaf[1].ds, 12);
	assert_memory_equal(id.nguid, ns->nguid, 16);
	assert_memory_equal(id.eui64, ns->eui64, 8);

	memset(desc, 0xa5, sizeof(desc));
	assert_success(tu_identify(&env->tu, NVME_IDENTIFY_CNS_NS_DESC_LIST, nsid, 0, desc));
	nid = ns_desc_find(desc, NVME_NIDT_EUI64, &nidl);
	assert_non_null(nid);
	assert_int_equal(nidl, NVME_NIDT_EUI64_LEN);
	assert_memory_equal(nid, ns->eui64, 8);
	nid = ns_desc_find(desc, NVME_NIDT_NGUID, &nidl);
	assert_non_null(nid);
	assert_int_equal(nidl, NVME_NIDT_NGUID_LEN);
	assert_memory_equal(nid, ns->nguid, 16);
	nid = ns_desc_find(desc, NVME_NIDT_UUID, &nidl);
	assert_non_null(nid);
	assert_int_equal(nidl, NVME_NIDT_UUID_LEN);
	assert_memory_equal(nid, ns->uuid, 16);
}

/* Enable, Identify, Number of Queues, an I/O queue pair, AEN config, AERs. */
static void probe(struct hd_env *env)
{
	struct nvemu_ctrl *ctrl = env->tu.ctrl;
	struct nvme_id_ctrl id;
	uint32_t dw0 = 0;

	/* The driver disables first, then waits for RDY=0. */
	nvemu_ctrl_set_cc(ctrl, nvemu_ctrl_get_cc(ctrl) & ~NVME_CC_EN_MASK);
	assert_int_equal(nvemu_ctrl_get_csts(ctrl) & (1u << NVME_CSTS_RDY_SHIFT), 0);
	assert_int_equal(nvemu_host_enable(env->tu.host), 0);
	assert_int_equal(nvemu_ctrl_get_csts(ctrl) &
				 (1u << NVME_CSTS_RDY_SHIFT | 1u << NVME_CSTS_CFS_SHIFT),
			 1u << NVME_CSTS_RDY_SHIFT);

	identify_ctrl(env, &id);
	assert_int_equal(le16toh(id.cntlid), env->cntlid);

	/* Ask for more than the controller has; it grants what it has. */
	assert_success(
		tu_set_feature(&env->tu, NVME_FEAT_FID_NUM_QUEUES, false, 15 | 15u << 16, &dw0));
	assert_int_equal(dw0, (HD_IOQ - 1) | (HD_IOQ - 1) << 16);

	create_io_queues(env);

	/* nvme_enable_aen(): namespace attribute and firmware activation notices */
	assert_success(tu_set_feature(&env->tu, NVME_FEAT_FID_ASYNC_EVENT, false, 1u << 8 | 1u << 9,
				      NULL));
	aer_submit(env);
	aer_submit(env);
}

static int setup(void **state)
{
	struct hd_env *env = calloc(1, sizeof(*env));

	assert_non_null(env);
	model_build(env);
	probe(env);
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct hd_env *env = *state;

	if (!env)
		return 0;
	/* Disabling aborts the outstanding AERs: their reqs live in env. */
	nvemu_host_destroy(env->tu.host);
	for (unsigned i = 0; i < MAX_AER; i++)
		assert_false(env->aer[i].busy);
	nvemu_subsys_destroy(env->tu.subsys);
	if (env->file_bdev)
		assert_int_equal(nvemu_bdev_destroy(env->file_bdev, NULL), 0);
	unlink(env->path);
	free(env);
	*state = NULL;
	return 0;
}

static void test_probe(void **state)
{
	struct hd_env *env = *state;
	struct nvemu_ctrl *ctrl = env->tu.ctrl;
	uint64_t cap = nvemu_ctrl_get_cap(ctrl);
	struct nvme_id_ctrl id;
	struct nvme_id_ns idns;
	uint32_t list[16];
	uint16_t oacs, oncs;
	unsigned n;

	/* CAP as the driver reads it before enabling */
	assert_int_equal(NVME_CAP_MQES(cap) + 1, 1024);
	assert_true(NVME_CAP_CSS(cap) & NVME_CAP_CSS_NVM);
	assert_int_equal(NVME_CAP_MPSMIN(cap), 0);
	assert_true(nvemu_ctrl_get_vs(ctrl) >= 0x00010400);

	identify_ctrl(env, &id);
	check_padded(id.sn, sizeof(id.sn), HD_SN);
	check_padded(id.mn, sizeof(id.mn), HD_MN);
	check_padded(id.fr, sizeof(id.fr), HD_FR);
	assert_int_equal(le32toh(id.nn), HD_NN);
	assert_int_equal(id.mdts, HD_MDTS);
	assert_int_equal(id.aerl, HD_AERL);
	oacs = le16toh(id.oacs);
	assert_true(oacs & NVME_CTRL_OACS_FORMAT);
	assert_true(oacs & NVME_CTRL_OACS_FW);
	assert_true(oacs & NVME_CTRL_OACS_NS_MGMT);
	oncs = le16toh(id.oncs);
	assert_true(oncs & NVME_CTRL_ONCS_COMPARE);
	assert_true(oncs & NVME_CTRL_ONCS_DSM);
	assert_true(oncs & NVME_CTRL_ONCS_WRITE_ZEROES);
	assert_true(id.vwc & NVME_CTRL_VWC_PRESENT);
	assert_true(le32toh(id.oaes) & (1u << 8)); /* Namespace Attribute Notices */
	assert_string_equal(id.subnqn, HD_NQN);

	/* Number of Queues is only valid before I/O queues exist. */
	assert_status(tu_set_feature(&env->tu, NVME_FEAT_FID_NUM_QUEUES, false, 1 | 1u << 16, NULL),
		      NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR));

	n = active_ns_list(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, list, 16);
	assert_int_equal(n, 2);
	assert_int_equal(list[0], NS_RAM);
	assert_int_equal(list[1], NS_FILE);
	for (unsigned i = 0; i < n; i++)
		check_ns(env, list[i]);
	/* the ids we set are the ids we get */
	assert_memory_equal(nvemu_subsys_ns(env->tu.subsys, NS_RAM)->uuid, ram_uuid, 16);
	assert_memory_equal(nvemu_subsys_ns(env->tu.subsys, NS_RAM)->nguid, ram_nguid, 16);
	assert_memory_equal(nvemu_subsys_ns(env->tu.subsys, NS_FILE)->uuid, file_uuid, 16);

	/* An allocated but inactive NSID identifies as zeroes. */
	memset(&idns, 0xa5, sizeof(idns));
	assert_success(tu_identify(&env->tu, NVME_IDENTIFY_CNS_NS, NS_SPARE, 0, &idns));
	assert_int_equal(le64toh(idns.nsze), 0);
	assert_int_equal(le64toh(idns.ncap), 0);
	/* An NSID beyond NN is invalid. */
	{
		uint8_t buf[4096];
		uint16_t st = tu_identify(&env->tu, NVME_IDENTIFY_CNS_NS, HD_NN + 1, 0, buf);

		assert_status(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS));
		assert_dnr(st);
	}

	/* AERs stay outstanding, up to AERL + 1. */
	assert_int_equal(aer_outstanding(env), 2);
	aer_submit(env);
	aer_submit(env);
	assert_int_equal(aer_outstanding(env), MAX_AER);
	{
		struct nvemu_sqe cmd = {.opc = nvme_admin_async_event, .cid = 0x77};
		uint16_t st = tu_admin(&env->tu, &cmd, NULL, 0, NULL);

		assert_status(st, NVEMU_SC_CMD(NVME_SC_ASYNC_LIMIT));
		assert_dnr(st);
	}
	assert_int_equal(aer_outstanding(env), MAX_AER);
}

/* ---- I/O with data integrity */

struct io_range {
	uint64_t slba;
	uint32_t nlb;
};

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
}

static bool all_zero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

static uint16_t io_cmd(struct hd_env *env, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
		       void *buf, uint32_t len)
{
	return tu_rw(&env->tu, opc, nsid, slba, nlb, buf, len);
}

static void check_range(struct hd_env *env, uint32_t nsid, const struct io_range *r, uint32_t seed,
			bool zero)
{
	uint32_t len = r->nlb * 512;
	uint8_t *want = malloc(len), *got = malloc(len);

	assert_non_null(want);
	assert_non_null(got);
	memset(got, 0xa5, len);
	assert_success(io_cmd(env, nvme_cmd_read, nsid, r->slba, r->nlb, got, len));
	if (zero) {
		assert_true(all_zero(got, len));
	} else {
		fill_pattern(want, len, seed);
		assert_memory_equal(got, want, len);
	}
	free(want);
	free(got);
}

static void io_integrity(struct hd_env *env, uint32_t nsid, uint64_t nblocks)
{
	const struct io_range r[] = {
		{0, 1},	    {7, 8},
		{100, 255}, {1000, 33},
		{4000, 8},  {nblocks - HD_MAX_XFER / 512, HD_MAX_XFER / 512}, /* MDTS, at the end */
	};
	const unsigned nr = sizeof(r) / sizeof(r[0]);
	uint8_t *buf = malloc(HD_MAX_XFER + 512);
	struct nvemu_sqe cmd;
	struct nvme_dsm_range dsm;
	uint16_t st;

	assert_non_null(buf);
	for (unsigned i = 0; i < nr; i++) {
		fill_pattern(buf, r[i].nlb * 512, nsid * 100 + i);
		assert_success(io_cmd(env, nvme_cmd_write, nsid, r[i].slba, r[i].nlb, buf,
				      r[i].nlb * 512));
	}
	/* Read back only after all writes: an overlap would show. */
	for (unsigned i = 0; i < nr; i++)
		check_range(env, nsid, &r[i], nsid * 100 + i, false);

	/* Limits: beyond MDTS, beyond the namespace, a short host buffer */
	st = io_cmd(env, nvme_cmd_read, nsid, 0, HD_MAX_XFER / 512 + 1, buf, HD_MAX_XFER + 512);
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	assert_dnr(st);
	st = io_cmd(env, nvme_cmd_read, nsid, nblocks - 1, 2, buf, 1024);
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_LBA_RANGE));
	assert_dnr(st);

	/* Compare: match, then a one-byte mismatch */
	fill_pattern(buf, r[2].nlb * 512, nsid * 100 + 2);
	assert_success(
		io_cmd(env, nvme_cmd_compare, nsid, r[2].slba, r[2].nlb, buf, r[2].nlb * 512));
	buf[300] ^= 0x01;
	st = io_cmd(env, nvme_cmd_compare, nsid, r[2].slba, r[2].nlb, buf, r[2].nlb * 512);
	assert_int_equal(nvemu_status_sct(st), NVME_SCT_MEDIA);
	assert_int_equal(nvemu_status_sc(st), NVME_SC_COMPARE_FAILED);

	/* Dataset Management deallocate: one range, reads back zeroes */
	memset(&dsm, 0, sizeof(dsm));
	dsm.slba = htole64(r[2].slba);
	dsm.nlb = htole32(r[2].nlb);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_cmd_dsm;
	cmd.nsid = nsid;
	cmd.cdw10 = 0;	     /* NR: one range */
	cmd.cdw11 = 1u << 2; /* AD */
	assert_success(tu_io(&env->tu, &cmd, &dsm, sizeof(dsm), NULL));
	check_range(env, nsid, &r[2], 0, true);

	/* Write Zeroes */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_cmd_write_zeroes;
	cmd.nsid = nsid;
	cmd.cdw10 = (uint32_t)r[3].slba;
	cmd.cdw11 = (uint32_t)(r[3].slba >> 32);
	cmd.cdw12 = r[3].nlb - 1;
	assert_success(tu_io(&env->tu, &cmd, NULL, 0, NULL));
	check_range(env, nsid, &r[3], 0, true);

	/* The neighbours of what was erased are intact. */
	for (unsigned i = 0; i < nr; i++)
		if (i != 2 && i != 3)
			check_range(env, nsid, &r[i], nsid * 100 + i, false);

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_cmd_flush;
	cmd.nsid = nsid;
	assert_success(tu_io(&env->tu, &cmd, NULL, 0, NULL));

	/* A FUA write lands like any other. */
	memset(&cmd, 0, sizeof(cmd));
	fill_pattern(buf, 4096, nsid * 100 + 50);
	cmd.opc = nvme_cmd_write;
	cmd.nsid = nsid;
	cmd.cdw10 = 5000;
	cmd.cdw12 = 7 | 1u << 30; /* FUA */
	assert_success(tu_io(&env->tu, &cmd, buf, 4096, NULL));
	check_range(env, nsid, &(struct io_range){5000, 8}, nsid * 100 + 50, false);
	free(buf);
}

static void test_io_ram(void **state)
{
	io_integrity(*state, NS_RAM, RAM_BLOCKS);
}

static void test_io_file(void **state)
{
	io_integrity(*state, NS_FILE, FILE_BLOCKS);
}

static void test_io_inactive_ns(void **state)
{
	struct hd_env *env = *state;
	uint8_t buf[512];
	uint16_t st;

	st = io_cmd(env, nvme_cmd_read, NS_SPARE, 0, 1, buf, sizeof(buf));
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS));
	assert_dnr(st);
	st = io_cmd(env, nvme_cmd_read, 0, 0, 1, buf, sizeof(buf));
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS));
	assert_dnr(st);
}

/* ---- 32 commands in flight on the file namespace */

#define BURST	     32
#define BURST_BLOCKS 8

struct burst {
	struct nvemu_req req[BURST];
	uint8_t *buf[BURST];
	unsigned done;
};

static void burst_done(struct nvemu_req *req)
{
	((struct burst *)req->transport_priv)->done++;
}

static void burst_run(struct hd_env *env, struct burst *b, const uint8_t *opc)
{
	uint64_t deadline = nvemu_now_ns() + 10ull * 1000000000ull;

	b->done = 0;
	for (unsigned i = 0; i < BURST; i++) {
		struct nvemu_req *r = &b->req[i];

		memset(r, 0, sizeof(*r));
		r->cmd.opc = opc[i];
		r->cmd.cid = (uint16_t)i;
		r->cmd.nsid = NS_FILE;
		r->cmd.cdw10 = 2048 + i * BURST_BLOCKS;
		r->cmd.cdw12 = BURST_BLOCKS - 1;
		r->buf = b->buf[i];
		r->buf_len = BURST_BLOCKS * 512;
		r->done = burst_done;
		r->transport_priv = b;
		nvemu_host_submit(env->tu.host, 1, r);
	}
	while (b->done < BURST) {
		if (!nvemu_host_poll(env->tu.host))
			usleep(50);
		assert_true(nvemu_now_ns() < deadline);
	}
	for (unsigned i = 0; i < BURST; i++) {
		assert_success(b->req[i].cqe.status);
		assert_int_equal(b->req[i].cqe.cid, i);
		assert_int_equal(b->req[i].cqe.sqid, 1);
	}
}

static void test_async_burst(void **state)
{
	struct hd_env *env = *state;
	struct burst *b = calloc(1, sizeof(*b));
	uint8_t opc[BURST], want[BURST_BLOCKS * 512];

	assert_non_null(b);
	for (unsigned i = 0; i < BURST; i++) {
		b->buf[i] = malloc(BURST_BLOCKS * 512);
		assert_non_null(b->buf[i]);
		fill_pattern(b->buf[i], BURST_BLOCKS * 512, 7000 + i);
		opc[i] = nvme_cmd_write;
	}
	burst_run(env, b, opc);

	/* Half read what was written, half overwrite their own ranges. */
	for (unsigned i = 0; i < BURST; i++) {
		opc[i] = i & 1 ? nvme_cmd_write : nvme_cmd_read;
		if (opc[i] == nvme_cmd_read)
			memset(b->buf[i], 0xa5, BURST_BLOCKS * 512);
		else
			fill_pattern(b->buf[i], BURST_BLOCKS * 512, 9000 + i);
	}
	burst_run(env, b, opc);
	for (unsigned i = 0; i < BURST; i += 2) {
		fill_pattern(want, sizeof(want), 7000 + i);
		assert_memory_equal(b->buf[i], want, sizeof(want));
		assert_int_equal(b->req[i].xfer_len, BURST_BLOCKS * 512);
	}

	for (unsigned i = 0; i < BURST; i++) {
		opc[i] = nvme_cmd_read;
		memset(b->buf[i], 0xa5, BURST_BLOCKS * 512);
	}
	burst_run(env, b, opc);
	for (unsigned i = 0; i < BURST; i++) {
		fill_pattern(want, sizeof(want), i & 1 ? 9000 + i : 7000 + i);
		assert_memory_equal(b->buf[i], want, sizeof(want));
	}
	for (unsigned i = 0; i < BURST; i++)
		free(b->buf[i]);
	free(b);
}

/* ---- attach / detach raise events and fill the Changed Namespace List */

static void read_changed_ns(struct hd_env *env, uint32_t *list)
{
	assert_success(tu_get_log(&env->tu, NVME_LOG_LID_CHANGED_NS, NVEMU_NSID_ALL, 0, false, list,
				  4096));
	for (unsigned i = 0; i < 1024; i++)
		list[i] = le32toh(list[i]);
}

static void test_attach_detach(void **state)
{
	struct hd_env *env = *state;
	struct nvemu_error err = {0};
	uint32_t *log = malloc(4096), list[16];
	uint8_t buf[512];
	uint16_t st;

	assert_non_null(log);
	assert_int_equal(aer_outstanding(env), 2);
	assert_int_equal(nvemu_ctrl_attach_ns(env->tu.ctrl, NS_SPARE, &err), 0);
	expect_ns_changed_aen(env);
	assert_int_equal(aer_outstanding(env), 1);
	read_changed_ns(env, log);
	assert_int_equal(log[0], NS_SPARE);
	assert_int_equal(log[1], 0);
	/* Reading the log (RAE=0) cleared it. */
	read_changed_ns(env, log);
	assert_int_equal(log[0], 0);

	/* The driver rescans: the new namespace is there and usable. */
	assert_int_equal(active_ns_list(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, list, 16), 3);
	assert_int_equal(list[2], NS_SPARE);
	check_ns(env, NS_SPARE);
	fill_pattern(buf, sizeof(buf), 42);
	assert_success(io_cmd(env, nvme_cmd_write, NS_SPARE, 3, 1, buf, sizeof(buf)));
	check_range(env, NS_SPARE, &(struct io_range){3, 1}, 42, false);

	aer_submit(env);
	assert_int_equal(nvemu_ctrl_detach_ns(env->tu.ctrl, NS_SPARE, &err), 0);
	expect_ns_changed_aen(env);
	read_changed_ns(env, log);
	assert_int_equal(log[0], NS_SPARE);
	assert_int_equal(log[1], 0);
	assert_int_equal(active_ns_list(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, list, 16), 2);
	assert_false(list_has(list, 2, NS_SPARE));
	st = io_cmd(env, nvme_cmd_read, NS_SPARE, 3, 1, buf, sizeof(buf));
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS));

	/* With the notice masked (RAE=1 read), a second change waits for the log. */
	aer_submit(env);
	assert_int_equal(nvemu_ctrl_attach_ns(env->tu.ctrl, NS_SPARE, &err), 0);
	expect_ns_changed_aen(env);
	aer_submit(env);
	assert_success(
		tu_get_log(&env->tu, NVME_LOG_LID_CHANGED_NS, NVEMU_NSID_ALL, 0, true, log, 4096));
	assert_int_equal(le32toh(log[0]), NS_SPARE);
	assert_int_equal(nvemu_ctrl_detach_ns(env->tu.ctrl, NS_SPARE, &err), 0);
	assert_int_equal(aer_outstanding(env), 2);
	read_changed_ns(env, log);
	assert_int_equal(log[0], NS_SPARE);
	/* Unmasked by the RAE=0 read: the queued notice goes out now. */
	expect_ns_changed_aen(env);
	free(log);
}

/* ---- firmware download and commit */

static void fw_download(struct hd_env *env, const char *rev, size_t len, uint32_t chunk)
{
	uint8_t *img = malloc(len);
	struct nvemu_sqe cmd;

	assert_non_null(img);
	fill_pattern(img, len, 77);
	memcpy(img, rev, 8);
	for (size_t off = 0; off < len; off += chunk) {
		uint32_t n = len - off < chunk ? (uint32_t)(len - off) : chunk;

		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_admin_fw_download;
		cmd.cdw10 = n / 4 - 1;
		cmd.cdw11 = (uint32_t)(off / 4);
		assert_success(tu_admin(&env->tu, &cmd, img + off, n, NULL));
	}
	free(img);
}

static uint16_t fw_commit(struct hd_env *env, uint8_t slot, uint8_t ca)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_fw_commit};

	cmd.cdw10 = slot | (uint32_t)ca << 3;
	return tu_admin(&env->tu, &cmd, NULL, 0, NULL);
}

static void fw_slot_log(struct hd_env *env, struct nvme_firmware_slot *fs)
{
	memset(fs, 0xa5, sizeof(*fs));
	assert_success(tu_get_log(&env->tu, NVME_LOG_LID_FW_SLOT, NVEMU_NSID_ALL, 0, false, fs,
				  sizeof(*fs)));
}

static void test_firmware(void **state)
{
	struct hd_env *env = *state;
	struct nvme_firmware_slot fs;
	struct nvme_id_ctrl id;
	struct nvemu_cqe cqe = {0};
	uint32_t chunk;
	uint16_t st;

	identify_ctrl(env, &id);
	assert_int_equal((id.frmw >> 1) & 0x7, 4);
	chunk = id.fwug && id.fwug != 0xff ? id.fwug * 4096u : 4096u;
	fw_slot_log(env, &fs);
	assert_int_equal(fs.afi & 0x7, 1);
	assert_memory_equal(fs.frs[0], HD_FR, 8);

	/* CA=3: replace slot 2 and activate it now */
	fw_download(env, "NVEMU2.0", 4 * chunk, chunk);
	st = fw_commit(env, 2, 3);
	assert_success(st);
	identify_ctrl(env, &id);
	assert_memory_equal(id.fr, "NVEMU2.0", 8);
	fw_slot_log(env, &fs);
	assert_int_equal(fs.afi & 0x7, 2);
	assert_memory_equal(fs.frs[1], "NVEMU2.0", 8);
	assert_memory_equal(fs.frs[0], HD_FR, 8);
	/* An activation notice, if one was raised, names the Firmware Slot log. */
	while (aer_take(env, &cqe)) {
		assert_int_equal(cqe.dw0 & 0x7, NVME_AER_NOTICE);
		assert_int_equal((cqe.dw0 >> 16) & 0xff, NVME_LOG_LID_FW_SLOT);
	}

	/* An invalid slot */
	st = fw_commit(env, 5, 1);
	assert_status(st, NVEMU_SC_CMD(NVME_SC_FIRMWARE_SLOT));
	assert_dnr(st);

	/* CA=1: replace slot 3, activate at the next controller reset */
	fw_download(env, "NVEMU3.0", 2 * chunk, chunk);
	st = fw_commit(env, 3, 1);
	/* Success, or success that says a reset is needed */
	assert_true(st == 0 || (st & 0x7ff) == NVEMU_SC_CMD(NVME_SC_FW_NEEDS_CONV_RESET) ||
		    (st & 0x7ff) == NVEMU_SC_CMD(NVME_SC_FW_NEEDS_RESET));
	identify_ctrl(env, &id);
	assert_memory_equal(id.fr, "NVEMU2.0", 8);
	fw_slot_log(env, &fs);
	assert_int_equal(fs.afi & 0x7, 2);
	assert_int_equal((fs.afi >> 4) & 0x7, 3);
	assert_memory_equal(fs.frs[2], "NVEMU3.0", 8);

	/* Controller reset through CC.EN, then probe again */
	nvemu_ctrl_set_cc(env->tu.ctrl, nvemu_ctrl_get_cc(env->tu.ctrl) & ~NVME_CC_EN_MASK);
	assert_int_equal(nvemu_ctrl_get_csts(env->tu.ctrl) & (1u << NVME_CSTS_RDY_SHIFT), 0);
	assert_int_equal(aer_outstanding(env), 0);
	while (aer_take(env, &cqe))
		assert_status(cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	probe(env);
	identify_ctrl(env, &id);
	assert_memory_equal(id.fr, "NVEMU3.0", 8);
	fw_slot_log(env, &fs);
	assert_int_equal(fs.afi & 0x7, 3);
	assert_int_equal((fs.afi >> 4) & 0x7, 0);
	assert_memory_equal(fs.frs[1], "NVEMU2.0", 8);
	assert_memory_equal(fs.frs[2], "NVEMU3.0", 8);
}

/* ---- Format NVM */

static void test_format(void **state)
{
	struct hd_env *env = *state;
	struct nvme_id_ns id;
	struct nvemu_sqe cmd;
	uint8_t *buf = malloc(8 * 4096);
	uint16_t st;

	assert_non_null(buf);
	fill_pattern(buf, 8 * 512, 5);
	assert_success(io_cmd(env, nvme_cmd_write, NS_RAM, 0, 8, buf, 8 * 512));

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_format_nvm;
	cmd.nsid = NS_RAM;
	cmd.cdw10 = 7; /* no such LBA format */
	st = tu_admin(&env->tu, &cmd, NULL, 0, NULL);
	assert_status(st, NVEMU_SC_CMD(NVME_SC_INVALID_FORMAT));
	assert_dnr(st);

	cmd.cdw10 = 1 | 1u << 9; /* LBAF 1 (4 KiB), SES 1: user data erase */
	assert_success(tu_admin(&env->tu, &cmd, NULL, 0, NULL));

	memset(&id, 0xa5, sizeof(id));
	assert_success(tu_identify(&env->tu, NVME_IDENTIFY_CNS_NS, NS_RAM, 0, &id));
	assert_int_equal(id.flbas & 0xf, 1);
	assert_int_equal(le64toh(id.nsze), RAM_BLOCKS / 8);
	assert_int_equal(le64toh(id.ncap), RAM_BLOCKS / 8);

	/* Erased: reads return zeroes; LBAs are 4 KiB now */
	memset(buf, 0xa5, 8 * 4096);
	assert_success(io_cmd(env, nvme_cmd_read, NS_RAM, 0, 8, buf, 8 * 4096));
	assert_true(all_zero(buf, 8 * 4096));
	st = io_cmd(env, nvme_cmd_read, NS_RAM, RAM_BLOCKS / 8, 1, buf, 4096);
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_LBA_RANGE));
	/* A 512-byte buffer is too short for one 4 KiB block. */
	st = io_cmd(env, nvme_cmd_read, NS_RAM, 0, 1, buf, 512);
	assert_true(st != 0);

	fill_pattern(buf, 8 * 4096, 6);
	assert_success(io_cmd(env, nvme_cmd_write, NS_RAM, RAM_BLOCKS / 8 - 8, 8, buf, 8 * 4096));
	memset(buf, 0, 8 * 4096);
	assert_success(io_cmd(env, nvme_cmd_read, NS_RAM, RAM_BLOCKS / 8 - 8, 8, buf, 8 * 4096));
	{
		uint8_t *want = malloc(8 * 4096);

		assert_non_null(want);
		fill_pattern(want, 8 * 4096, 6);
		assert_memory_equal(buf, want, 8 * 4096);
		free(want);
	}
	/* The other namespace kept its format and data path. */
	memset(&id, 0, sizeof(id));
	assert_success(tu_identify(&env->tu, NVME_IDENTIFY_CNS_NS, NS_FILE, 0, &id));
	assert_int_equal(id.flbas & 0xf, 0);
	free(buf);
}

/* ---- Namespace Management and Attachment */

static uint16_t ns_attach_cmd(struct hd_env *env, uint32_t nsid, uint8_t sel, uint16_t cntlid)
{
	struct nvme_ctrl_list *cl = calloc(1, sizeof(*cl));
	struct nvemu_sqe cmd = {.opc = nvme_admin_ns_attach, .nsid = nsid};
	uint16_t st;

	assert_non_null(cl);
	cl->num = htole16(1);
	cl->identifier[0] = htole16(cntlid);
	cmd.cdw10 = sel;
	st = tu_admin(&env->tu, &cmd, cl, sizeof(*cl), NULL);
	free(cl);
	return st;
}

static void test_ns_mgmt(void **state)
{
	struct hd_env *env = *state;
	struct nvme_id_ns *id = calloc(1, sizeof(*id));
	struct nvemu_sqe cmd;
	struct nvemu_cqe cqe = {0};
	uint32_t list[16], nsid;
	uint8_t buf[4096];
	unsigned n;
	uint16_t st;

	assert_non_null(id);
	/* An LBA format the namespace can't have */
	id->nsze = id->ncap = htole64(2048);
	id->flbas = 5;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_ns_mgmt;
	cmd.cdw10 = 0; /* SEL: create */
	st = tu_admin(&env->tu, &cmd, id, sizeof(*id), NULL);
	assert_status(st, NVEMU_SC_CMD(NVME_SC_INVALID_FORMAT));
	assert_dnr(st);

	id->flbas = 0;
	memset(&cqe, 0, sizeof(cqe));
	assert_success(tu_admin(&env->tu, &cmd, id, sizeof(*id), &cqe));
	nsid = cqe.dw0;
	assert_true(nsid > NS_SPARE && nsid <= HD_NN);

	n = active_ns_list(env, NVME_IDENTIFY_CNS_ALLOCATED_NS_LIST, list, 16);
	assert_true(list_has(list, n, nsid));
	n = active_ns_list(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, list, 16);
	assert_false(list_has(list, n, nsid));
	memset(id, 0, sizeof(*id));
	assert_success(tu_identify(&env->tu, NVME_IDENTIFY_CNS_ALLOCATED_NS, nsid, 0, id));
	assert_int_equal(le64toh(id->nsze), 2048);
	st = io_cmd(env, nvme_cmd_read, nsid, 0, 1, buf, 512);
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS));

	/* Attach to this controller: a notice, and the namespace is active */
	assert_success(ns_attach_cmd(env, nsid, 0, env->cntlid));
	expect_ns_changed_aen(env);
	aer_submit(env);
	st = ns_attach_cmd(env, nsid, 0, env->cntlid);
	assert_status(st, NVEMU_SC_CMD(NVME_SC_NS_ALREADY_ATTACHED));
	assert_dnr(st);
	n = active_ns_list(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, list, 16);
	assert_true(list_has(list, n, nsid));
	check_ns(env, nsid);

	fill_pattern(buf, sizeof(buf), 1234);
	assert_success(io_cmd(env, nvme_cmd_write, nsid, 2040, 8, buf, sizeof(buf)));
	check_range(env, nsid, &(struct io_range){2040, 8}, 1234, false);

	assert_success(ns_attach_cmd(env, nsid, 1, env->cntlid)); /* detach */
	st = ns_attach_cmd(env, nsid, 1, env->cntlid);
	assert_status(st, NVEMU_SC_CMD(NVME_SC_NS_NOT_ATTACHED));
	assert_dnr(st);
	st = io_cmd(env, nvme_cmd_read, nsid, 0, 1, buf, 512);
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS));

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_ns_mgmt;
	cmd.nsid = nsid;
	cmd.cdw10 = 1; /* SEL: delete */
	assert_success(tu_admin(&env->tu, &cmd, NULL, 0, NULL));
	n = active_ns_list(env, NVME_IDENTIFY_CNS_ALLOCATED_NS_LIST, list, 16);
	assert_false(list_has(list, n, nsid));
	assert_true(list_has(list, n, NS_SPARE));
	assert_null(nvemu_subsys_ns(env->tu.subsys, nsid));
	free(id);
}

/* ---- shutdown: data the host wrote is in the file afterwards */

static void test_shutdown(void **state)
{
	struct hd_env *env = *state;
	struct nvemu_ctrl *ctrl = env->tu.ctrl;
	uint64_t deadline = nvemu_now_ns() + 10ull * 1000000000ull;
	uint8_t buf[4096], got[4096];
	int fd;

	fill_pattern(buf, sizeof(buf), 31337);
	assert_success(io_cmd(env, nvme_cmd_write, NS_FILE, 16, 8, buf, sizeof(buf)));

	nvemu_ctrl_set_cc(ctrl, nvemu_ctrl_get_cc(ctrl) | (uint32_t)NVME_CC_SHN_NORMAL
								  << NVME_CC_SHN_SHIFT);
	while (NVME_CSTS_SHST(nvemu_ctrl_get_csts(ctrl)) != NVME_CSTS_SHST_CMPLT) {
		if (!nvemu_host_poll(env->tu.host))
			usleep(100);
		assert_true(nvemu_now_ns() < deadline);
	}
	assert_false(nvemu_ctrl_get_csts(ctrl) & (1u << NVME_CSTS_CFS_SHIFT));

	fd = open(env->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, got, sizeof(got), 16 * 512), sizeof(got));
	close(fd);
	assert_memory_equal(got, buf, sizeof(got));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_inactive_ns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_detach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_firmware, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ns_mgmt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* Namespace Management, Namespace Attachment and Format NVM through the host. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test-util.h"

#define SC_DNR(sc)  (NVEMU_SC_CMD(sc) | NVEMU_DNR)
#define GEN_DNR(sc) (NVEMU_SC_GENERIC(sc) | NVEMU_DNR)

/* Exact status including DNR, and the command's Error Information log entry. */
#define assert_status_dnr(got, want) tu_assert_failed(env, (got), (want))

static uint16_t ns_create(struct tu_env *env, uint64_t nsze, uint64_t ncap, uint8_t flbas,
			  uint32_t cdw11, uint32_t *nsid)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_ns_mgmt, .cdw10 = 0, .cdw11 = cdw11};
	struct nvme_id_ns *id = calloc(1, sizeof(*id));
	struct nvemu_cqe cqe;
	uint16_t st;

	assert_non_null(id);
	id->nsze = htole64(nsze);
	id->ncap = htole64(ncap);
	id->flbas = flbas;
	st = tu_admin(env, &cmd, id, sizeof(*id), &cqe);
	if (nsid)
		*nsid = cqe.dw0;
	free(id);
	return st;
}

static uint16_t ns_delete(struct tu_env *env, uint32_t nsid)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_ns_mgmt, .nsid = nsid, .cdw10 = 1};

	return tu_admin(env, &cmd, NULL, 0, NULL);
}

/* num goes into the list header; the first min(num, 16) ids are copied. */
static uint16_t ns_attach(struct tu_env *env, uint32_t sel, uint32_t nsid, unsigned num,
			  const uint16_t *ids)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_ns_attach, .nsid = nsid, .cdw10 = sel};
	struct nvme_ctrl_list *l = calloc(1, sizeof(*l));
	uint16_t st;

	assert_non_null(l);
	l->num = htole16((uint16_t)num);
	for (unsigned i = 0; i < num && i < 16; i++)
		l->identifier[i] = htole16(ids[i]);
	st = tu_admin(env, &cmd, l, sizeof(*l), NULL);
	free(l);
	return st;
}

static uint16_t format(struct tu_env *env, uint32_t nsid, uint32_t cdw10)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_format_nvm, .nsid = nsid, .cdw10 = cdw10};

	return tu_admin(env, &cmd, NULL, 0, NULL);
}

#define FMT(lbaf, ses) ((uint32_t)(lbaf) | (uint32_t)(ses) << 9)

static bool active_list_has(struct tu_env *env, uint32_t nsid)
{
	uint32_t list[1024];

	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, 0, list));
	for (unsigned i = 0; i < 1024 && list[i]; i++)
		if (le32toh(list[i]) == nsid)
			return true;
	return false;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static uint16_t add_ctrl(struct tu_env *env)
{
	struct nvemu_ctrl_params cp;
	struct nvemu_error err = {0};
	uint16_t id;

	nvemu_ctrl_params_init(&cp);
	cp.port_id = env->subsys->ports[0].id;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->subsys, &cp, &id, &err), 0);
	return id;
}

/* ---- Namespace Management + Attachment */

static void test_lifecycle(void **state)
{
	struct tu_env *env = *state;
	uint8_t wbuf[4096], rbuf[4096];
	uint16_t ids[] = {nvemu_ctrl_cntlid(env->ctrl)};
	uint32_t nsid = 0;
	struct nvemu_ns *ns;

	assert_success(ns_create(env, 4096, 4096, 0, 0, &nsid));
	assert_int_equal(nsid, 3);
	ns = nvemu_subsys_ns(env->subsys, 3);
	assert_non_null(ns);
	assert_int_equal(ns->nblocks, 4096);
	assert_int_equal(nvemu_ns_lba_size(ns), 512);
	assert_false(nvemu_ctrl_ns_attached(env->ctrl, 3));
	assert_false(active_list_has(env, 3));

	assert_success(ns_attach(env, 0, 3, 1, ids));
	assert_true(nvemu_ctrl_ns_attached(env->ctrl, 3));
	assert_true(active_list_has(env, 3));
	assert_true(active_list_has(env, 1));

	memset(wbuf, 0xa5, sizeof(wbuf));
	assert_success(tu_rw(env, nvme_cmd_write, 3, 100, 8, wbuf, sizeof(wbuf)));
	memset(rbuf, 0, sizeof(rbuf));
	assert_success(tu_rw(env, nvme_cmd_read, 3, 100, 8, rbuf, sizeof(rbuf)));
	assert_memory_equal(wbuf, rbuf, sizeof(rbuf));

	assert_success(ns_attach(env, 1, 3, 1, ids));
	assert_false(nvemu_ctrl_ns_attached(env->ctrl, 3));
	assert_false(active_list_has(env, 3));
	assert_int_not_equal(tu_rw(env, nvme_cmd_read, 3, 0, 1, rbuf, 512), 0);

	assert_success(ns_delete(env, 3));
	assert_null(nvemu_subsys_ns(env->subsys, 3));
	/* The NSID is free again. */
	assert_success(ns_create(env, 8, 8, 1, 0, &nsid));
	assert_int_equal(nsid, 3);
	assert_int_equal(nvemu_ns_lba_size(nvemu_subsys_ns(env->subsys, 3)), 4096);
}

static void test_create_invalid(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_ns_mgmt};
	uint8_t small[64] = {0};
	uint32_t nsid;

	/* CSI other than NVM */
	assert_status_dnr(ns_create(env, 8, 8, 0, 2u << 24, NULL),
			  SC_DNR(NVME_SC_IOCS_NOT_SUPPORTED));
	/* LBA format index out of range, also through FLBAS bits 6:5 */
	assert_status_dnr(ns_create(env, 8, 8, 2, 0, NULL), SC_DNR(NVME_SC_INVALID_FORMAT));
	assert_status_dnr(ns_create(env, 8, 8, 1u << 5, 0, NULL), SC_DNR(NVME_SC_INVALID_FORMAT));
	/* extended LBA (no metadata exists) */
	assert_status_dnr(ns_create(env, 8, 8, 1u << 4, 0, NULL), SC_DNR(NVME_SC_INVALID_FORMAT));
	/* NSZE 0, NCAP > NSZE, NCAP < NSZE */
	assert_status_dnr(ns_create(env, 0, 0, 0, 0, NULL), GEN_DNR(NVME_SC_INVALID_FIELD));
	assert_status_dnr(ns_create(env, 8, 9, 0, 0, NULL), GEN_DNR(NVME_SC_INVALID_FIELD));
	assert_status_dnr(ns_create(env, 8, 4, 0, 0, NULL), SC_DNR(NVME_SC_THIN_PROV_NOT_SUPP));
	/* more than TNVMCAP */
	assert_status_dnr(ns_create(env, 1ull << 50, 1ull << 50, 0, 0, NULL),
			  SC_DNR(NVME_SC_NS_INSUFFICIENT_CAP));
	assert_status_dnr(ns_create(env, UINT64_MAX, UINT64_MAX, 1, 0, NULL),
			  SC_DNR(NVME_SC_NS_INSUFFICIENT_CAP));
	/* reserved SEL */
	cmd.cdw10 = 2;
	assert_status_dnr(tu_admin(env, &cmd, NULL, 0, NULL), GEN_DNR(NVME_SC_INVALID_FIELD));
	cmd.cdw10 = 0xf;
	assert_status_dnr(tu_admin(env, &cmd, NULL, 0, NULL), GEN_DNR(NVME_SC_INVALID_FIELD));
	/* data buffer smaller than the Identify Namespace structure */
	cmd.cdw10 = 0;
	tu_assert_failed(env, tu_admin(env, &cmd, small, sizeof(small), NULL),
			 NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
	assert_int_equal(env->subsys->nr_ns, 2);

	/* mnan reached */
	env->subsys->mnan = 3;
	assert_success(ns_create(env, 8, 8, 0, 0, &nsid));
	assert_int_equal(nsid, 3);
	assert_status_dnr(ns_create(env, 8, 8, 0, 0, NULL), SC_DNR(NVME_SC_NS_ID_UNAVAILABLE));
	assert_int_equal(env->subsys->nr_ns, 3);
}

/*
 * Namespaces the control plane created may already exceed TNVMCAP: the
 * capacity left saturates at 0 and a create fails cleanly.
 */
static void test_create_beyond_tnvmcap(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ctrl *id = calloc(1, sizeof(*id));
	uint64_t unvmcap;

	assert_non_null(id);
	/* The fixture's namespaces hold 1.5 MiB. */
	env->subsys->tnvmcap = 1 << 20;
	assert_status_dnr(ns_create(env, 8, 8, 0, 0, NULL), SC_DNR(NVME_SC_NS_INSUFFICIENT_CAP));
	assert_status_dnr(ns_create(env, 1, 1, 1, 0, NULL), SC_DNR(NVME_SC_NS_INSUFFICIENT_CAP));
	assert_int_equal(env->subsys->nr_ns, 2);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));
	memcpy(&unvmcap, id->unvmcap, sizeof(unvmcap));
	assert_int_equal(le64toh(unvmcap), 0);
	/* Exactly full: still nothing left. */
	env->subsys->tnvmcap = 3 << 19;
	assert_status_dnr(ns_create(env, 1, 1, 0, 0, NULL), SC_DNR(NVME_SC_NS_INSUFFICIENT_CAP));
	/* Room for 8 blocks, not 9. */
	env->subsys->tnvmcap += 8 * 512;
	assert_status_dnr(ns_create(env, 9, 9, 0, 0, NULL), SC_DNR(NVME_SC_NS_INSUFFICIENT_CAP));
	assert_success(ns_create(env, 8, 8, 0, 0, NULL));
	assert_int_equal(env->subsys->nr_ns, 3);
	free(id);
}

static void test_delete(void **state)
{
	struct tu_env *env = *state;
	uint8_t log[4096];
	uint32_t nsid;

	assert_status_dnr(ns_delete(env, 0), GEN_DNR(NVME_SC_INVALID_NS));
	assert_status_dnr(ns_delete(env, 99), GEN_DNR(NVME_SC_INVALID_FIELD));
	env->subsys->nn = 1000;
	assert_status_dnr(ns_delete(env, 1001), GEN_DNR(NVME_SC_INVALID_NS));
	assert_int_equal(env->subsys->nr_ns, 2);

	/* Deleting an attached namespace detaches it and reports the change. */
	memset(log, 0, sizeof(log));
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, NVEMU_NSID_ALL, 0, false, log,
				  sizeof(log)));
	assert_success(ns_delete(env, 1));
	assert_null(nvemu_subsys_ns(env->subsys, 1));
	assert_false(nvemu_ctrl_ns_attached(env->ctrl, 1));
	assert_int_equal(env->ctrl->nr_ns, 0);
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, NVEMU_NSID_ALL, 0, false, log,
				  sizeof(log)));
	assert_int_equal(le32toh(((uint32_t *)log)[0]), 1);
	assert_false(active_list_has(env, 1));

	/* 0xffffffff deletes every namespace. */
	assert_success(ns_create(env, 16, 16, 0, 0, &nsid));
	assert_int_equal(env->subsys->nr_ns, 2);
	assert_success(ns_delete(env, NVEMU_NSID_ALL));
	assert_int_equal(env->subsys->nr_ns, 0);
	assert_status_dnr(ns_delete(env, 2), GEN_DNR(NVME_SC_INVALID_FIELD));
}

static void test_attach_invalid(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_ns_attach, .nsid = 2};
	uint16_t me = nvemu_ctrl_cntlid(env->ctrl);
	uint16_t one[] = {me}, dup[] = {me, me}, unknown[] = {77};
	uint8_t small[16] = {0};
	uint16_t other, both[2];

	/* reserved SEL */
	assert_status_dnr(ns_attach(env, 2, 2, 1, one), GEN_DNR(NVME_SC_INVALID_FIELD));
	/* NSIDs */
	assert_status_dnr(ns_attach(env, 0, 0, 1, one), GEN_DNR(NVME_SC_INVALID_NS));
	assert_status_dnr(ns_attach(env, 0, NVEMU_NSID_ALL, 1, one),
			  GEN_DNR(NVME_SC_INVALID_FIELD));
	assert_status_dnr(ns_attach(env, 1, NVEMU_NSID_ALL, 1, one),
			  GEN_DNR(NVME_SC_INVALID_FIELD));
	assert_status_dnr(ns_attach(env, 0, 99, 1, one), GEN_DNR(NVME_SC_INVALID_FIELD));
	/* controller lists */
	assert_status_dnr(ns_attach(env, 0, 2, 0, one), SC_DNR(NVME_SC_CTRL_LIST_INVALID));
	assert_status_dnr(ns_attach(env, 0, 2, 1, unknown), SC_DNR(NVME_SC_CTRL_LIST_INVALID));
	assert_status_dnr(ns_attach(env, 0, 2, 2, dup), SC_DNR(NVME_SC_CTRL_LIST_INVALID));
	{
		uint16_t many[16];

		for (unsigned i = 0; i < 16; i++)
			many[i] = me;
		assert_status_dnr(ns_attach(env, 0, 2, 2048, many),
				  SC_DNR(NVME_SC_CTRL_LIST_INVALID));
	}
	/* attachment state */
	assert_status_dnr(ns_attach(env, 0, 1, 1, one), SC_DNR(NVME_SC_NS_ALREADY_ATTACHED));
	assert_status_dnr(ns_attach(env, 1, 2, 1, one), SC_DNR(NVME_SC_NS_NOT_ATTACHED));
	/* short buffer */
	tu_assert_failed(env, tu_admin(env, &cmd, small, sizeof(small), NULL),
			 NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
	assert_false(nvemu_ctrl_ns_attached(env->ctrl, 2));

	/* A list that fails for one controller changes none (atomic). */
	other = add_ctrl(env);
	both[0] = other;
	both[1] = me;
	assert_status_dnr(ns_attach(env, 0, 1, 2, both), SC_DNR(NVME_SC_NS_ALREADY_ATTACHED));
	assert_false(nvemu_ctrl_ns_attached(nvemu_subsys_ctrl(env->subsys, other), 1));
	{
		uint16_t mixed[] = {other, 77};

		assert_status_dnr(ns_attach(env, 0, 2, 2, mixed),
				  SC_DNR(NVME_SC_CTRL_LIST_INVALID));
		assert_false(nvemu_ctrl_ns_attached(nvemu_subsys_ctrl(env->subsys, other), 2));
	}

	/* Both at once, then both away. */
	assert_success(ns_attach(env, 0, 2, 2, both));
	assert_true(nvemu_ctrl_ns_attached(env->ctrl, 2));
	assert_true(nvemu_ctrl_ns_attached(nvemu_subsys_ctrl(env->subsys, other), 2));
	assert_int_equal(nvemu_subsys_ns(env->subsys, 2)->nr_attached, 2);
	assert_success(ns_attach(env, 1, 2, 2, both));
	assert_false(nvemu_ctrl_ns_attached(env->ctrl, 2));
	assert_false(nvemu_ctrl_ns_attached(nvemu_subsys_ctrl(env->subsys, other), 2));

	/* Attach to a controller other than the one processing the command. */
	one[0] = other;
	assert_success(ns_attach(env, 0, 2, 1, one));
	assert_true(nvemu_ctrl_ns_attached(nvemu_subsys_ctrl(env->subsys, other), 2));
	assert_false(nvemu_ctrl_ns_attached(env->ctrl, 2));
	/* Deleting it detaches it from that controller too. */
	assert_success(ns_delete(env, 2));
	assert_false(nvemu_ctrl_ns_attached(nvemu_subsys_ctrl(env->subsys, other), 2));
}

/* ---- Format NVM */

static void test_format_erase(void **state)
{
	struct tu_env *env = *state;
	uint8_t *buf = malloc(8192), *zero = calloc(1, 8192);
	struct nvme_id_ns *id = calloc(1, sizeof(*id));
	struct nvemu_ns *ns = nvemu_subsys_ns(env->subsys, 1);
	uint8_t log[4096];

	assert_non_null(buf);
	assert_non_null(zero);
	assert_non_null(id);
	memset(buf, 0x5a, 8192);
	assert_success(tu_rw(env, nvme_cmd_write, 1, 0, 16, buf, 8192));
	/* drain the Changed Namespace List */
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, NVEMU_NSID_ALL, 0, false, log,
				  sizeof(log)));

	assert_success(format(env, 1, FMT(1, 1)));
	assert_int_equal(ns->nblocks, 128);
	assert_int_equal(ns->lbaf, 1);
	assert_int_equal(nvemu_ns_lba_size(ns), 4096);
	assert_true(ns->ready);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS, 1, 0, id));
	assert_int_equal(le64toh(id->nsze), 128);
	assert_int_equal(id->flbas & 0xf, 1);
	/* erased data reads back as zeroes, in 4 KiB blocks now */
	memset(buf, 0xff, 8192);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 2, buf, 8192));
	assert_memory_equal(buf, zero, 8192);
	tu_assert_failed(env, tu_rw(env, nvme_cmd_read, 1, 128, 1, buf, 4096),
			 NVEMU_SC_GENERIC(NVME_SC_LBA_RANGE) | NVEMU_DNR);
	/* the change is reported in the Changed Namespace List */
	memset(log, 0, sizeof(log));
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, NVEMU_NSID_ALL, 0, false, log,
				  sizeof(log)));
	assert_int_equal(le32toh(((uint32_t *)log)[0]), 1);

	/* SES 0 keeps the data; back to 512 B */
	memset(buf, 0x33, 4096);
	assert_success(tu_rw(env, nvme_cmd_write, 1, 1, 1, buf, 4096));
	assert_success(format(env, 1, FMT(0, 0)));
	assert_int_equal(ns->nblocks, 1024);
	assert_int_equal(nvemu_ns_lba_size(ns), 512);
	memset(buf, 0, 8192);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 8, 8, buf, 4096));
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0x33);
	free(id);
	free(buf);
	free(zero);
}

static void test_format_invalid(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ns *ns = nvemu_subsys_ns(env->subsys, 1);
	struct nvemu_ns_params np;
	struct nvemu_bdev *bdev;
	struct nvemu_error err = {0};
	uint32_t nsid;

	assert_status_dnr(format(env, 1, FMT(2, 0)), SC_DNR(NVME_SC_INVALID_FORMAT));
	assert_status_dnr(format(env, 1, FMT(15, 0)), SC_DNR(NVME_SC_INVALID_FORMAT));
	assert_status_dnr(format(env, 1, 1u << 12), SC_DNR(NVME_SC_INVALID_FORMAT));  /* LBAFU */
	assert_status_dnr(format(env, 1, 1u << 4), SC_DNR(NVME_SC_INVALID_FORMAT));   /* MSET */
	assert_status_dnr(format(env, 1, 1u << 5), SC_DNR(NVME_SC_INVALID_FORMAT));   /* PI 1 */
	assert_status_dnr(format(env, 1, 3u << 5), SC_DNR(NVME_SC_INVALID_FORMAT));   /* PI 3 */
	assert_status_dnr(format(env, 1, 1u << 8), SC_DNR(NVME_SC_INVALID_FORMAT));   /* PIL */
	assert_status_dnr(format(env, 1, FMT(0, 2)), GEN_DNR(NVME_SC_INVALID_FIELD)); /* crypto */
	assert_status_dnr(format(env, 1, FMT(0, 7)), GEN_DNR(NVME_SC_INVALID_FIELD));
	assert_status_dnr(format(env, 0, FMT(1, 0)), GEN_DNR(NVME_SC_INVALID_NS));
	assert_status_dnr(format(env, 2, FMT(1, 0)), GEN_DNR(NVME_SC_INVALID_FIELD)); /* inactive */
	assert_status_dnr(format(env, 99, FMT(1, 0)), GEN_DNR(NVME_SC_INVALID_FIELD));
	env->subsys->nn = 1000;
	assert_status_dnr(format(env, 5000, FMT(1, 0)), GEN_DNR(NVME_SC_INVALID_NS));
	assert_int_equal(ns->nblocks, 1024);
	assert_int_equal(ns->lbaf, 0);

	/* A 4 KiB-block backend cannot hold 512-byte LBAs. */
	assert_int_equal(nvemu_bdev_ram_create("big", 1 << 20, 4096, &bdev, &err), 0);
	nvemu_ns_params_init(&np);
	np.lbaf = 1;
	np.bdev = bdev;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &np, &nsid, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, nsid, &err), 0);
	assert_status_dnr(format(env, nsid, FMT(0, 0)), SC_DNR(NVME_SC_INVALID_FORMAT));
	assert_int_equal(nvemu_subsys_ns(env->subsys, nsid)->nblocks, 256);
	/* ... and a format of every namespace fails as a whole. */
	assert_status_dnr(format(env, NVEMU_NSID_ALL, FMT(0, 0)), SC_DNR(NVME_SC_INVALID_FORMAT));
	assert_int_equal(ns->lbaf, 0);
	assert_success(format(env, nsid, FMT(1, 1)));
	assert_int_equal(nvemu_subsys_ns(env->subsys, nsid)->nblocks, 256);
	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, nsid, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, nsid, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(bdev, &err), 0);
}

static void test_format_all(void **state)
{
	struct tu_env *env = *state;
	uint16_t ids[] = {nvemu_ctrl_cntlid(env->ctrl)};
	uint8_t buf[4096];
	uint32_t nsid;

	assert_success(ns_create(env, 64, 64, 0, 0, &nsid));
	assert_success(ns_attach(env, 0, nsid, 1, ids));
	memset(buf, 0x77, sizeof(buf));
	assert_success(tu_rw(env, nvme_cmd_write, nsid, 0, 8, buf, sizeof(buf)));
	assert_success(tu_rw(env, nvme_cmd_write, 1, 0, 8, buf, sizeof(buf)));

	assert_success(format(env, NVEMU_NSID_ALL, FMT(1, 1)));
	assert_int_equal(nvemu_subsys_ns(env->subsys, 1)->nblocks, 128);
	assert_int_equal(nvemu_subsys_ns(env->subsys, nsid)->nblocks, 8);
	/* namespace 2 is not attached: untouched */
	assert_int_equal(nvemu_subsys_ns(env->subsys, 2)->nblocks, 2048);
	assert_int_equal(nvemu_subsys_ns(env->subsys, 2)->lbaf, 0);
	assert_success(tu_rw(env, nvme_cmd_read, nsid, 0, 1, buf, sizeof(buf)));
	assert_true(all_zero(buf, sizeof(buf)));
	memset(buf, 0xff, sizeof(buf));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 1, buf, sizeof(buf)));
	assert_true(all_zero(buf, sizeof(buf)));
}

/* A file backend completes the erase asynchronously (io_uring). */
static void test_format_file_backend(void **state)
{
	struct tu_env *env = *state;
	char path[] = "/tmp/nvemu-test-format-XXXXXX";
	struct nvemu_bdev_file_opts fo = {0};
	struct nvemu_ns_params np;
	struct nvemu_bdev *bdev;
	struct nvemu_error err = {0};
	uint8_t buf[4096];
	uint32_t nsid;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	fo.path = path;
	fo.size = 1 << 20;
	assert_int_equal(nvemu_bdev_file_create("fmtfile", &fo, &bdev, &err), 0);
	nvemu_ns_params_init(&np);
	np.bdev = bdev;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &np, &nsid, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, nsid, &err), 0);
	memset(buf, 0xc3, sizeof(buf));
	assert_success(tu_rw(env, nvme_cmd_write, nsid, 2040, 8, buf, sizeof(buf)));

	assert_success(format(env, nsid, FMT(1, 1)));
	assert_int_equal(nvemu_subsys_ns(env->subsys, nsid)->nblocks, 256);
	memset(buf, 0xff, sizeof(buf));
	assert_success(tu_rw(env, nvme_cmd_read, nsid, 255, 1, buf, sizeof(buf)));
	assert_true(all_zero(buf, sizeof(buf)));

	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, nsid, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, nsid, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(bdev, &err), 0);
	unlink(path);
}

static void aer_done(struct nvemu_req *req)
{
	*(bool *)req->transport_priv = true;
}

/* The command of another controller raises Namespace Attribute Changed here. */
static void test_attach_event(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe aer_cmd = {.opc = nvme_admin_async_event};
	uint16_t ids[] = {nvemu_ctrl_cntlid(env->ctrl)};
	struct nvemu_req aer;
	bool done = false;
	uint8_t log[4096];

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 1u << 8, NULL));
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, NVEMU_NSID_ALL, 0, false, log,
				  sizeof(log)));
	memset(&aer, 0, sizeof(aer));
	aer.cmd = aer_cmd;
	aer.transport_priv = &done;
	aer.done = aer_done;
	nvemu_host_submit(env->host, 0, &aer);
	assert_false(done);
	assert_success(ns_attach(env, 0, 2, 1, ids));
	assert_true(done);
	assert_int_equal(aer.cqe.status, 0);
	assert_int_equal(aer.cqe.dw0, NVME_AER_NOTICE | NVME_AER_NOTICE_NS_CHANGED << 8 |
					      NVME_LOG_LID_CHANGED_NS << 16);
	memset(log, 0, sizeof(log));
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, NVEMU_NSID_ALL, 0, false, log,
				  sizeof(log)));
	assert_int_equal(le32toh(((uint32_t *)log)[0]), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifecycle, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_invalid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_beyond_tnvmcap, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_delete, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_attach_invalid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_attach_event, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_format_erase, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_format_invalid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_format_all, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_format_file_backend, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

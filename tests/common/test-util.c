/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "test-util.h"

static struct tu_env *env_new(bool with_ns)
{
	struct tu_env *env = calloc(1, sizeof(*env));
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_error err = {0};
	uint16_t port, cntlid;
	uint32_t nsid;

	assert_non_null(env);
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:test";
	sp.serial = "NVEMU-TEST-0001";
	sp.model = "nvemu test";
	assert_int_equal(nvemu_subsys_create(&sp, &env->subsys, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	assert_int_equal(nvemu_subsys_add_port(env->subsys, &pp, &port, &err), 0);
	nvemu_ctrl_params_init(&cp);
	cp.port_id = port;
	cp.num_io_queues = 4;
	cp.compare_write = true;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->subsys, &cp, &cntlid, &err), 0);
	env->ctrl = nvemu_subsys_ctrl(env->subsys, cntlid);
	assert_non_null(env->ctrl);
	if (with_ns) {
		assert_int_equal(nvemu_subsys_add_ns(env->subsys, 1024, &nsid, &err), 0);
		assert_int_equal(nsid, 1);
		assert_int_equal(nvemu_subsys_add_ns(env->subsys, 2048, &nsid, &err), 0);
		assert_int_equal(nsid, 2);
		assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 1, &err), 0);
	}
	assert_int_equal(nvemu_host_create(env->ctrl, &env->host, &err), 0);
	return env;
}

int tu_setup_bare(void **state)
{
	*state = env_new(false);
	return 0;
}

void tu_enable_with_io_queue(struct tu_env *env)
{
	struct nvemu_sqe cmd;

	assert_int_equal(nvemu_host_enable(env->host), 0);
	/* What the Linux driver does at probe: queues, then an I/O queue pair. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 3 | 3u << 16, NULL));
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_cq;
	cmd.dptr1 = 0x10000;
	cmd.cdw10 = 1 | 63u << 16;
	cmd.cdw11 = 1 | 1u << 1; /* PC, IEN */
	assert_success(tu_admin(env, &cmd, NULL, 0, NULL));
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_sq;
	cmd.dptr1 = 0x20000;
	cmd.cdw10 = 1 | 63u << 16;
	cmd.cdw11 = 1 | 1u << 16; /* PC, CQID 1 */
	assert_success(tu_admin(env, &cmd, NULL, 0, NULL));
}

static void aer_done(struct nvemu_req *req)
{
	((struct tu_aer *)req->transport_priv)->done = true;
}

void tu_aer_submit(struct tu_env *env, struct tu_aer *a, uint16_t cid)
{
	memset(a, 0, sizeof(*a));
	a->req.cmd.opc = nvme_admin_async_event;
	a->req.cmd.cid = cid;
	a->req.done = aer_done;
	a->req.transport_priv = a;
	nvemu_host_submit(env->host, 0, &a->req);
}

int tu_setup(void **state)
{
	struct tu_env *env = env_new(true);

	tu_enable_with_io_queue(env);
	*state = env;
	return 0;
}

int tu_teardown(void **state)
{
	struct tu_env *env = *state;

	if (!env)
		return 0;
	nvemu_host_destroy(env->host);
	nvemu_subsys_destroy(env->subsys);
	free(env);
	*state = NULL;
	return 0;
}

/* What the Error Information log must show if the last tu_exec() command failed. */
static struct {
	struct tu_env *env;
	uint64_t count_before;
	uint16_t sqid, cid;
	uint32_t nsid;
} last;

uint16_t tu_exec(struct tu_env *env, uint16_t sqid, const struct nvemu_sqe *cmd, void *buf,
		 uint32_t len, struct nvemu_cqe *cqe)
{
	static uint16_t next_cid;
	struct nvemu_sqe c = *cmd;

	/* A CID of its own, so the log entry can only be this command's. */
	if (!c.cid)
		c.cid = 0xe000 | (next_cid++ & 0xfff);
	last.env = env;
	last.count_before = env->ctrl->err_count;
	last.sqid = sqid;
	last.cid = c.cid;
	last.nsid = c.nsid;
	return nvemu_host_exec(env->host, sqid, &c, buf, len, cqe);
}

uint16_t tu_admin(struct tu_env *env, struct nvemu_sqe *cmd, void *buf, uint32_t len,
		  struct nvemu_cqe *cqe)
{
	return tu_exec(env, 0, cmd, buf, len, cqe);
}

uint16_t tu_io(struct tu_env *env, struct nvemu_sqe *cmd, void *buf, uint32_t len,
	       struct nvemu_cqe *cqe)
{
	return tu_exec(env, 1, cmd, buf, len, cqe);
}

uint16_t tu_identify(struct tu_env *env, uint8_t cns, uint32_t nsid, uint16_t cntid, void *buf)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .nsid = nsid};

	cmd.cdw10 = cns | (uint32_t)cntid << 16;
	return tu_admin(env, &cmd, buf, 4096, NULL);
}

uint16_t tu_get_log(struct tu_env *env, uint8_t lid, uint32_t nsid, uint64_t offset, bool rae,
		    void *buf, uint32_t len)
{
	uint32_t numd = len / 4 - 1;
	struct nvemu_sqe cmd = {.opc = nvme_admin_get_log_page, .nsid = nsid};

	cmd.cdw10 = lid | (rae ? 1u << 15 : 0) | (numd & 0xffff) << 16;
	cmd.cdw11 = numd >> 16;
	cmd.cdw12 = (uint32_t)offset;
	cmd.cdw13 = (uint32_t)(offset >> 32);
	return tu_admin(env, &cmd, buf, len, NULL);
}

uint16_t tu_get_feature(struct tu_env *env, uint8_t fid, uint8_t sel, uint32_t cdw11, uint32_t *dw0)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_get_features};
	struct nvemu_cqe cqe;
	uint8_t buf[16] = {0};
	uint16_t st;

	cmd.cdw10 = fid | (uint32_t)sel << 8;
	cmd.cdw11 = cdw11;
	st = tu_admin(env, &cmd, buf, fid == NVME_FEAT_FID_HOST_ID ? 16 : 0, &cqe);
	if (dw0)
		*dw0 = cqe.dw0;
	return st;
}

uint16_t tu_set_feature(struct tu_env *env, uint8_t fid, bool save, uint32_t cdw11, uint32_t *dw0)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_set_features};
	struct nvemu_cqe cqe;
	uint16_t st;

	cmd.cdw10 = fid | (save ? 1u << 31 : 0);
	cmd.cdw11 = cdw11;
	st = tu_admin(env, &cmd, NULL, 0, &cqe);
	if (dw0)
		*dw0 = cqe.dw0;
	return st;
}

uint16_t tu_rw(struct tu_env *env, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
	       void *buf, uint32_t len)
{
	struct nvemu_sqe cmd = {.opc = opc, .nsid = nsid};

	cmd.cdw10 = (uint32_t)slba;
	cmd.cdw11 = (uint32_t)(slba >> 32);
	cmd.cdw12 = (nlb - 1) & 0xffff;
	return tu_io(env, &cmd, buf, len, NULL);
}

uint64_t tu_error_count(struct tu_env *env)
{
	struct nvme_error_log_page e;

	memset(&e, 0, sizeof(e));
	/* RAE: reading the log must not change the event state under test. */
	assert_int_equal(tu_get_log(env, NVME_LOG_LID_ERROR, 0, 0, true, &e, sizeof(e)), 0);
	return le64toh(e.error_count);
}

/* cmocka's equality check, reported at the caller's line. */
#define eq(a, b)                                                                                   \
	_assert_int_equal(cast_to_largest_integral_type(a), cast_to_largest_integral_type(b),      \
			  file, line)

void _tu_assert_error_logged(struct tu_env *env, uint64_t count_before, uint16_t sqid, uint16_t cid,
			     uint32_t nsid, uint16_t status, uint16_t parm_loc, const char *file,
			     int line)
{
	struct nvme_error_log_page e;

	memset(&e, 0, sizeof(e));
	eq(tu_get_log(env, NVME_LOG_LID_ERROR, 0, 0, true, &e, sizeof(e)), 0);
	eq(le64toh(e.error_count), count_before + 1);
	eq(le16toh(e.sqid), sqid);
	eq(le16toh(e.cmdid), cid);
	/* Bits 15:1 of the CQE's DW3 status, phase tag clear. */
	eq(le16toh(e.status_field), (uint16_t)(status << 1));
	eq(le16toh(e.parm_error_location), parm_loc);
	eq(le32toh(e.nsid), nsid);
}

void _tu_assert_failed(struct tu_env *env, uint16_t got, uint16_t want, const char *file, int line)
{
	/* The whole status: SCT, SC and DNR (More and CRD are never set). */
	eq(got, want);
	eq(last.env == env, 1);
	_tu_assert_error_logged(env, last.count_before, last.sqid, last.cid, last.nsid, want,
				0xffff, file, line);
}

uint16_t tu_expect_error(struct tu_env *env, uint16_t sqid, struct nvemu_sqe *cmd, void *buf,
			 uint32_t len, uint16_t want)
{
	uint16_t st = tu_exec(env, sqid, cmd, buf, len, NULL);

	tu_assert_failed(env, st, want);
	return st;
}

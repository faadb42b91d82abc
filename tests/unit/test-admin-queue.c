/* SPDX-License-Identifier: MIT */
/* Create/Delete I/O SQ/CQ, Abort and Keep Alive. */
#include <unistd.h>

#include "test-util.h"

#define SC_QID_INVALID	  NVEMU_SC_CMD(NVME_SC_QID_INVALID)
#define SC_CQ_INVALID	  NVEMU_SC_CMD(NVME_SC_CQ_INVALID)
#define SC_QUEUE_SIZE	  NVEMU_SC_CMD(NVME_SC_QUEUE_SIZE)
#define SC_INVALID_VECTOR NVEMU_SC_CMD(NVME_SC_INVALID_VECTOR)
#define SC_INVALID_QUEUE  NVEMU_SC_CMD(NVME_SC_INVALID_QUEUE)
#define SC_INVALID_FIELD  NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD)

#define CQ_PC  1u
#define CQ_IEN 2u

static uint16_t create_cq(struct tu_env *env, uint16_t qid, uint16_t entries, uint32_t flags,
			  uint16_t iv, uint64_t addr)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_create_cq, .dptr1 = addr};

	cmd.cdw10 = qid | (uint32_t)(uint16_t)(entries - 1) << 16;
	cmd.cdw11 = flags | (uint32_t)iv << 16;
	return tu_admin(env, &cmd, NULL, 0, NULL);
}

static uint16_t create_sq(struct tu_env *env, uint16_t qid, uint16_t entries, uint32_t flags,
			  uint16_t cqid, uint64_t addr)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_create_sq, .dptr1 = addr};

	cmd.cdw10 = qid | (uint32_t)(uint16_t)(entries - 1) << 16;
	cmd.cdw11 = flags | (uint32_t)cqid << 16;
	return tu_admin(env, &cmd, NULL, 0, NULL);
}

static uint16_t delete_q(struct tu_env *env, uint8_t opc, uint16_t qid)
{
	struct nvemu_sqe cmd = {.opc = opc, .cdw10 = qid};

	return tu_admin(env, &cmd, NULL, 0, NULL);
}

/* Failed with want and DNR, and left its Error Information log entry. */
#define expect(st, want) tu_assert_failed(env, (st), (want) | NVME_SC_DNR)

static uint16_t flush_on(struct tu_env *env, uint16_t sqid)
{
	struct nvemu_sqe cmd = {.opc = nvme_cmd_flush, .nsid = 1};

	return tu_exec(env, sqid, &cmd, NULL, 0, NULL);
}

/* ---- create */

static void test_fixture_queues(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl *c = env->ctrl;

	assert_true(c->cqs[1].valid);
	assert_true(c->sqs[1].valid);
	assert_int_equal(c->cqs[1].size, 64);
	assert_int_equal(c->sqs[1].size, 64);
	assert_int_equal(c->sqs[1].cqid, 1);
	assert_int_equal(c->cqs[1].nr_sqs, 1);
	assert_true(c->cqs[1].ien);
	assert_int_equal(c->cqs[1].addr, 0x10000);
	assert_int_equal(c->sqs[1].addr, 0x20000);
	assert_false(c->sqs[2].valid);
}

static void test_create_pair(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl *c = env->ctrl;
	uint16_t st;

	/* Before the SQ exists, I/O on it is refused by the engine. */
	expect(flush_on(env, 2), SC_QID_INVALID);
	assert_success(create_cq(env, 2, 16, CQ_PC | CQ_IEN, 2, 0x30000));
	assert_success(create_sq(env, 2, 16, 1 | 2u << 1, 2, 0x40000));
	assert_true(c->cqs[2].valid);
	assert_int_equal(c->cqs[2].iv, 2);
	assert_int_equal(c->cqs[2].nr_sqs, 1);
	assert_int_equal(c->sqs[2].prio, 2);
	assert_int_equal(c->sqs[2].cqid, 2);
	st = flush_on(env, 2);
	assert_int_not_equal(st & 0x7ff, SC_QID_INVALID);

	/* Every queue the controller has. */
	assert_success(create_cq(env, 4, 2, CQ_PC, 0, 0));
	assert_success(create_sq(env, 4, 2, 1, 4, 0));
	assert_success(create_sq(env, 3, 2, 1, 4, 0));
	assert_int_equal(c->cqs[4].nr_sqs, 2);
}

static void test_create_cq_qid(void **state)
{
	struct tu_env *env = *state;

	expect(create_cq(env, 0, 16, CQ_PC, 0, 0), SC_QID_INVALID);
	expect(create_cq(env, 1, 16, CQ_PC, 0, 0), SC_QID_INVALID); /* in use */
	expect(create_cq(env, 5, 16, CQ_PC, 0, 0), SC_QID_INVALID);
	expect(create_cq(env, 0xffff, 16, CQ_PC, 0, 0), SC_QID_INVALID);
	assert_true(env->ctrl->cqs[1].valid);
	assert_int_equal(env->ctrl->cqs[1].size, 64);
}

static void test_create_beyond_granted(void **state)
{
	struct tu_env *env = *state;

	assert_success(delete_q(env, nvme_admin_delete_sq, 1));
	assert_success(delete_q(env, nvme_admin_delete_cq, 1));
	/* 2 SQs, 3 CQs */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 1 | 2u << 16, NULL));
	assert_success(create_cq(env, 3, 16, CQ_PC, 0, 0));
	expect(create_cq(env, 4, 16, CQ_PC, 0, 0), SC_QID_INVALID);
	assert_success(create_sq(env, 2, 16, 1, 3, 0));
	expect(create_sq(env, 3, 16, 1, 3, 0), SC_QID_INVALID);
	/* Once queues exist the grant is fixed. */
	tu_assert_failed(env,
			 tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 3 | 3u << 16, NULL),
			 NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR));
	expect(create_cq(env, 4, 16, CQ_PC, 0, 0), SC_QID_INVALID);
}

static void test_create_cq_size(void **state)
{
	struct tu_env *env = *state;
	uint16_t mqe = env->ctrl->p.max_queue_entries; /* CAP.MQES + 1 */

	assert_int_equal(NVME_CAP_MQES(env->ctrl->cap) + 1, mqe);
	expect(create_cq(env, 2, 1, CQ_PC, 0, 0), SC_QUEUE_SIZE); /* QSIZE 0 */
	expect(create_cq(env, 2, (uint16_t)(mqe + 1), CQ_PC, 0, 0), SC_QUEUE_SIZE);
	expect(create_cq(env, 2, 0, CQ_PC, 0, 0), SC_QUEUE_SIZE); /* QSIZE 0xffff */
	assert_false(env->ctrl->cqs[2].valid);
	assert_success(create_cq(env, 2, mqe, CQ_PC, 0, 0));
	assert_int_equal(env->ctrl->cqs[2].size, mqe);
	assert_success(create_cq(env, 3, 2, CQ_PC, 0, 0));
}

static void test_create_sq_size(void **state)
{
	struct tu_env *env = *state;
	uint16_t mqe = env->ctrl->p.max_queue_entries;

	expect(create_sq(env, 2, 1, 1, 1, 0), SC_QUEUE_SIZE);
	expect(create_sq(env, 2, (uint16_t)(mqe + 1), 1, 1, 0), SC_QUEUE_SIZE);
	expect(create_sq(env, 2, 0, 1, 1, 0), SC_QUEUE_SIZE);
	assert_false(env->ctrl->sqs[2].valid);
	assert_int_equal(env->ctrl->cqs[1].nr_sqs, 1);
	assert_success(create_sq(env, 2, mqe, 1, 1, 0));
	assert_int_equal(env->ctrl->cqs[1].nr_sqs, 2);
}

static void test_create_contiguity(void **state)
{
	struct tu_env *env = *state;

	if (NVME_CAP_CQR(env->ctrl->cap)) {
		expect(create_cq(env, 2, 16, CQ_IEN, 0, 0x30000), SC_INVALID_FIELD);
		assert_success(create_cq(env, 2, 16, CQ_PC | CQ_IEN, 0, 0x30000));
		expect(create_sq(env, 2, 16, 0, 2, 0x40000), SC_INVALID_FIELD);
		assert_false(env->ctrl->sqs[2].valid);
	} else {
		assert_success(create_cq(env, 2, 16, CQ_IEN, 0, 0x30000));
		assert_false(env->ctrl->cqs[2].pc);
		assert_success(create_sq(env, 2, 16, 0, 2, 0x40000));
		assert_false(env->ctrl->sqs[2].pc);
	}
}

static void test_create_prp_offset(void **state)
{
	struct tu_env *env = *state;
	const uint16_t bad = NVEMU_SC_GENERIC(NVME_SC_PRP_INVALID_OFFSET);

	expect(create_cq(env, 2, 16, CQ_PC, 0, 0x30010), bad);
	expect(create_cq(env, 2, 16, CQ_PC, 0, 0x30800), bad);
	assert_success(create_cq(env, 2, 16, CQ_PC, 0, 0x31000));
	expect(create_sq(env, 2, 16, 1, 2, 0x40004), bad);
	assert_success(create_sq(env, 2, 16, 1, 2, 0x41000));
}

static void test_create_cq_vector(void **state)
{
	struct tu_env *env = *state;

	/* 4 I/O queues: MSI-X vectors 0..4. */
	expect(create_cq(env, 2, 16, CQ_PC | CQ_IEN, 5, 0), SC_INVALID_VECTOR);
	expect(create_cq(env, 2, 16, CQ_PC | CQ_IEN, 0xffff, 0), SC_INVALID_VECTOR);
	assert_false(env->ctrl->cqs[2].valid);
	assert_success(create_cq(env, 2, 16, CQ_PC | CQ_IEN, 4, 0));
	/* A polled queue's vector is not used. */
	assert_success(create_cq(env, 3, 16, CQ_PC, 0xffff, 0));
	assert_false(env->ctrl->cqs[3].ien);
	/* Several CQs may share a vector. */
	assert_success(create_cq(env, 4, 16, CQ_PC | CQ_IEN, 4, 0));
}

static void test_create_sq_cqid(void **state)
{
	struct tu_env *env = *state;

	expect(create_sq(env, 2, 16, 1, 0, 0), SC_CQ_INVALID); /* the admin CQ */
	expect(create_sq(env, 2, 16, 1, 2, 0), SC_CQ_INVALID); /* not created */
	expect(create_sq(env, 2, 16, 1, 5, 0), SC_CQ_INVALID); /* beyond the controller */
	expect(create_sq(env, 2, 16, 1, 0xffff, 0), SC_CQ_INVALID);
	assert_false(env->ctrl->sqs[2].valid);
}

static void test_create_sq_qid(void **state)
{
	struct tu_env *env = *state;

	expect(create_sq(env, 0, 16, 1, 1, 0), SC_QID_INVALID);
	expect(create_sq(env, 1, 16, 1, 1, 0), SC_QID_INVALID); /* in use */
	expect(create_sq(env, 5, 16, 1, 1, 0), SC_QID_INVALID);
	expect(create_sq(env, 0xffff, 16, 1, 1, 0), SC_QID_INVALID);
	assert_int_equal(env->ctrl->cqs[1].nr_sqs, 1);
}

/* ---- delete */

static void test_delete(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl *c = env->ctrl;

	expect(delete_q(env, nvme_admin_delete_cq, 1), SC_INVALID_QUEUE); /* SQ 1 uses it */
	assert_true(c->cqs[1].valid);
	assert_success(delete_q(env, nvme_admin_delete_sq, 1));
	assert_false(c->sqs[1].valid);
	assert_int_equal(c->cqs[1].nr_sqs, 0);
	expect(flush_on(env, 1), SC_QID_INVALID);
	expect(delete_q(env, nvme_admin_delete_sq, 1), SC_QID_INVALID);
	assert_success(delete_q(env, nvme_admin_delete_cq, 1));
	assert_false(c->cqs[1].valid);
	expect(delete_q(env, nvme_admin_delete_cq, 1), SC_QID_INVALID);

	/* The qid can be used again. */
	assert_success(create_cq(env, 1, 8, CQ_PC | CQ_IEN, 1, 0));
	assert_success(create_sq(env, 1, 8, 1, 1, 0));
	assert_int_equal(c->cqs[1].nr_sqs, 1);
	assert_int_equal(c->sqs[1].size, 8);
}

static void test_delete_invalid_qid(void **state)
{
	struct tu_env *env = *state;

	/* The admin queue is never deleted this way. */
	expect(delete_q(env, nvme_admin_delete_sq, 0), SC_QID_INVALID);
	expect(delete_q(env, nvme_admin_delete_cq, 0), SC_QID_INVALID);
	expect(delete_q(env, nvme_admin_delete_sq, 2), SC_QID_INVALID);
	expect(delete_q(env, nvme_admin_delete_cq, 2), SC_QID_INVALID);
	expect(delete_q(env, nvme_admin_delete_sq, 5), SC_QID_INVALID);
	expect(delete_q(env, nvme_admin_delete_cq, 5), SC_QID_INVALID);
	expect(delete_q(env, nvme_admin_delete_sq, 0xffff), SC_QID_INVALID);
	expect(delete_q(env, nvme_admin_delete_cq, 0xffff), SC_QID_INVALID);
	assert_true(env->ctrl->sqs[0].valid);
	assert_true(env->ctrl->cqs[0].valid);
}

static void test_shared_cq(void **state)
{
	struct tu_env *env = *state;

	assert_success(create_sq(env, 2, 16, 1, 1, 0));
	assert_success(create_sq(env, 3, 16, 1, 1, 0));
	assert_int_equal(env->ctrl->cqs[1].nr_sqs, 3);
	assert_success(delete_q(env, nvme_admin_delete_sq, 1));
	expect(delete_q(env, nvme_admin_delete_cq, 1), SC_INVALID_QUEUE);
	assert_success(delete_q(env, nvme_admin_delete_sq, 3));
	expect(delete_q(env, nvme_admin_delete_cq, 1), SC_INVALID_QUEUE);
	assert_success(delete_q(env, nvme_admin_delete_sq, 2));
	assert_success(delete_q(env, nvme_admin_delete_cq, 1));
}

static void test_reset_drops_queues(void **state)
{
	struct tu_env *env = *state;

	nvemu_ctrl_set_cc(env->ctrl, 0);
	assert_int_equal(nvemu_host_enable(env->host), 0);
	expect(delete_q(env, nvme_admin_delete_sq, 1), SC_QID_INVALID);
	assert_success(create_cq(env, 1, 16, CQ_PC, 0, 0));
	assert_success(create_sq(env, 1, 16, 1, 1, 0));
	assert_int_equal(env->ctrl->cqs[1].nr_sqs, 1);
}

/* ---- transport hooks */

static unsigned hook_calls;
static uint16_t hook_status;

static uint16_t hook_create_cq(struct nvemu_ctrl *ctrl, uint16_t qid, uint64_t addr, uint16_t size,
			       uint16_t iv, bool ien, bool pc)
{
	hook_calls++;
	assert_int_equal(qid, 2);
	assert_int_equal(addr, 0x30000);
	assert_int_equal(size, 32);
	assert_int_equal(iv, 3);
	assert_true(ien && pc);
	return hook_status;
}

static uint16_t hook_create_sq(struct nvemu_ctrl *ctrl, uint16_t qid, uint64_t addr, uint16_t size,
			       uint16_t cqid, uint8_t prio, bool pc)
{
	hook_calls++;
	assert_int_equal(qid, 2);
	assert_int_equal(cqid, 2);
	assert_int_equal(size, 8);
	assert_int_equal(prio, 1);
	return hook_status;
}

static uint16_t hook_delete(struct nvemu_ctrl *ctrl, uint16_t qid)
{
	hook_calls++;
	assert_int_equal(qid, 2);
	return hook_status;
}

static void test_transport_hooks(void **state)
{
	struct tu_env *env = *state;
	const struct nvemu_transport_ops *old = env->ctrl->tops;
	struct nvemu_transport_ops ops = *old;
	uint16_t fail = NVEMU_SC_GENERIC(NVME_SC_INTERNAL);

	ops.create_cq = hook_create_cq;
	ops.create_sq = hook_create_sq;
	ops.delete_cq = hook_delete;
	ops.delete_sq = hook_delete;
	env->ctrl->tops = &ops;
	hook_calls = 0;

	/* A failure of the transport is the command's status; nothing is created. */
	hook_status = fail;
	tu_assert_failed(env, create_cq(env, 2, 32, CQ_PC | CQ_IEN, 3, 0x30000), fail);
	assert_false(env->ctrl->cqs[2].valid);
	hook_status = 0;
	assert_success(create_cq(env, 2, 32, CQ_PC | CQ_IEN, 3, 0x30000));
	hook_status = fail;
	tu_assert_failed(env, create_sq(env, 2, 8, 1 | 1u << 1, 2, 0), fail);
	assert_int_equal(env->ctrl->cqs[2].nr_sqs, 0);
	hook_status = 0;
	assert_success(create_sq(env, 2, 8, 1 | 1u << 1, 2, 0));
	assert_int_equal(hook_calls, 4);
	/* Validation comes first: no call for an invalid command. */
	expect(create_cq(env, 2, 32, CQ_PC | CQ_IEN, 3, 0x30000), SC_QID_INVALID);
	assert_int_equal(hook_calls, 4);

	hook_status = fail;
	tu_assert_failed(env, delete_q(env, nvme_admin_delete_sq, 2), fail);
	assert_true(env->ctrl->sqs[2].valid);
	hook_status = 0;
	assert_success(delete_q(env, nvme_admin_delete_sq, 2));
	assert_success(delete_q(env, nvme_admin_delete_cq, 2));
	assert_int_equal(hook_calls, 7);
	env->ctrl->tops = old;
}

/* ---- Abort, Keep Alive */

static void test_abort(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_abort_cmd};
	struct nvemu_cqe cqe;

	/* Nothing is outstanding: the command was not aborted. */
	cmd.cdw10 = 1 | 0x1234u << 16;
	assert_success(tu_admin(env, &cmd, NULL, 0, &cqe));
	assert_int_equal(cqe.dw0 & 1, 1);
	cmd.cdw10 = 0 | 0x10u << 16;
	assert_success(tu_admin(env, &cmd, NULL, 0, &cqe));
	assert_int_equal(cqe.dw0 & 1, 1);

	cmd.cdw10 = 2 | 0x1234u << 16; /* SQ 2 does not exist */
	expect(tu_admin(env, &cmd, NULL, 0, &cqe), SC_INVALID_FIELD);
	cmd.cdw10 = 0xffff;
	expect(tu_admin(env, &cmd, NULL, 0, &cqe), SC_INVALID_FIELD);
}

static struct {
	struct nvemu_req req;
	bool done;
} pending_aer;

static void pending_done(struct nvemu_req *req)
{
	(void)req;
	pending_aer.done = true;
}

static void test_abort_skips_aer(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_abort_cmd};
	struct nvemu_cqe cqe;

	memset(&pending_aer, 0, sizeof(pending_aer));
	pending_aer.req.cmd.opc = nvme_admin_async_event;
	pending_aer.req.cmd.cid = 0x77;
	pending_aer.req.done = pending_done;
	nvemu_host_submit(env->host, 0, &pending_aer.req);
	assert_false(pending_aer.done);
	/* An outstanding AER stays outstanding. */
	cmd.cdw10 = 0 | 0x77u << 16;
	assert_success(tu_admin(env, &cmd, NULL, 0, &cqe));
	assert_int_equal(cqe.dw0 & 1, 1);
	assert_false(pending_aer.done);
	assert_int_equal(pending_aer.req.abort_status, 0);
}

static void test_keep_alive(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_keep_alive};
	uint64_t before = env->ctrl->last_keep_alive_ns;

	usleep(1000);
	assert_success(tu_admin(env, &cmd, NULL, 0, NULL));
	assert_true(env->ctrl->last_keep_alive_ns > before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fixture_queues, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_pair, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_cq_qid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_beyond_granted, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_cq_size, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_sq_size, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_contiguity, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_prp_offset, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_cq_vector, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_sq_cqid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_sq_qid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_delete, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_delete_invalid_qid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_shared_cq, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_reset_drops_queues, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_transport_hooks, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_abort, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_abort_skips_aer, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_keep_alive, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * The engine's side of admin command forwarding (admin-fwd.c): which
 * commands reach the owner, what it is given, its answer, the fallback,
 * and Abort / suspend timeout / controller reset while one is held.
 */
#include <stdlib.h>

#include "test-util.h"

/* The owner: wants Identify CNS 1 and Set Features FID 0Bh; holds what it takes. */
struct owner {
	bool decline;
	unsigned wants_calls, forwarded, cancelled;
	struct nvemu_req *held;
	_Alignas(8) uint8_t local[4096];
	uint16_t local_status;
	bool had_local;
};


static bool o_wants(void *priv, const struct nvemu_sqe *cmd)
{
	struct owner *o = priv;

	o->wants_calls++;
	return (cmd->opc == nvme_admin_identify && (cmd->cdw10 & 0xff) == 1) ||
	       (cmd->opc == nvme_admin_set_features && (cmd->cdw10 & 0xff) == 0x0b);
}

static bool o_forward(void *priv, struct nvemu_req *req, const void *local, uint16_t st)
{
	struct owner *o = priv;

	if (o->decline)
		return false;
	o->forwarded++;
	o->held = req;
	o->had_local = local != NULL;
	if (local)
		memcpy(o->local, local, sizeof(o->local));
	o->local_status = st;
	return true;
}

static void o_cancel(void *priv, struct nvemu_req *req)
{
	struct owner *o = priv;

	assert_ptr_equal(req, o->held);
	o->cancelled++;
}

static const struct nvemu_admin_fwd_ops o_ops = {
	.wants = o_wants, .forward = o_forward, .cancel = o_cancel,
};

struct areq {
	struct nvemu_req req;
	bool done;
	_Alignas(8) uint8_t buf[4096];
};

static void a_done(struct nvemu_req *req)
{
	((struct areq *)req)->done = true;
}

static void submit(struct tu_env *env, struct areq *a, uint8_t opc, uint32_t cdw10, uint32_t cdw11)
{
	memset(a, 0, sizeof(*a));
	a->req.cmd.opc = opc;
	a->req.cmd.cid = 0x1234;
	a->req.cmd.cdw10 = cdw10;
	a->req.cmd.cdw11 = cdw11;
	a->req.buf = a->buf;
	a->req.buf_len = opc == nvme_admin_identify ? sizeof(a->buf) : 0;
	a->req.done = a_done;
	nvemu_host_submit(env->host, 0, &a->req);
}

static void identify_forwarded_and_answered(void **state)
{
	struct tu_env *env = *state;
	struct owner o = {0};
	struct areq a;
	uint8_t page[4096];

	nvemu_ctrl_set_admin_fwd(env->ctrl, &o_ops, &o);
	submit(env, &a, nvme_admin_identify, 1, 0);
	assert_false(a.done);
	assert_int_equal(o.forwarded, 1);
	assert_true(o.had_local);
	assert_int_equal(o.local_status, 0);
	/* The engine's own Identify Controller goes along: the fixture's model number. */
	assert_memory_equal(((struct nvme_id_ctrl *)o.local)->mn, "nvemu test", 10);
	assert_int_equal(nvemu_ctrl_inflight(env->ctrl), 1);

	memset(page, 0xa5, sizeof(page));
	nvemu_req_fwd_complete(o.held, 0, 7, 0, page, sizeof(page));
	assert_true(a.done);
	assert_success(a.req.cqe.status);
	assert_int_equal(a.req.cqe.dw0, 7);
	assert_int_equal(a.req.xfer_len, 4096);
	assert_memory_equal(a.buf, page, sizeof(page));
	assert_int_equal(nvemu_ctrl_inflight(env->ctrl), 0);

	/* An error answer reaches the host as given, and is logged. */
	submit(env, &a, nvme_admin_identify, 1, 0);
	nvemu_req_fwd_complete(o.held, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR, 0, 0,
			       NULL, 0);
	assert_true(a.done);
	assert_int_equal(a.req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
	nvemu_ctrl_set_admin_fwd(env->ctrl, NULL, NULL);
}

static void not_wanted_not_forwarded(void **state)
{
	struct tu_env *env = *state;
	struct owner o = {0};
	_Alignas(8) uint8_t buf[4096];

	nvemu_ctrl_set_admin_fwd(env->ctrl, &o_ops, &o);
	assert_success(tu_identify(env, 0, 1, 0, buf)); /* CNS 0: not wanted */
	assert_success(tu_get_feature(env, 0x0b, 0, 0, NULL));
	assert_int_equal(o.forwarded, 0);
	assert_int_equal(o.wants_calls, 1); /* Get Features is never offered */
	/* A short buffer is refused by the engine, never offered. */
	{
		struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .cdw10 = 1};

		assert_int_not_equal(tu_admin(env, &cmd, buf, 100, NULL), 0);
		assert_int_equal(o.forwarded, 0);
	}
	/* Declined: the engine answers at once. */
	o.decline = true;
	assert_success(tu_identify(env, 1, 0, 0, buf));
	assert_memory_equal(((struct nvme_id_ctrl *)buf)->mn, "nvemu test", 10);
	nvemu_ctrl_set_admin_fwd(env->ctrl, NULL, NULL);
}

static void fallback_answers_as_the_engine(void **state)
{
	struct tu_env *env = *state;
	struct owner o = {0};
	struct areq a;
	uint32_t dw0 = 0;

	nvemu_ctrl_set_admin_fwd(env->ctrl, &o_ops, &o);
	submit(env, &a, nvme_admin_identify, 1, 0);
	nvemu_req_fwd_fallback(o.held);
	assert_true(a.done);
	assert_success(a.req.cqe.status);
	assert_memory_equal(((struct nvme_id_ctrl *)a.buf)->mn, "nvemu test", 10);

	/* Set Features answered by the owner: the engine's feature is untouched. */
	assert_success(tu_get_feature(env, 0x0b, 0, 0, &dw0));
	submit(env, &a, nvme_admin_set_features, 0x0b, 0x100);
	assert_int_equal(o.forwarded, 2);
	assert_false(o.had_local);
	nvemu_req_fwd_complete(o.held, 0, 0, 0, NULL, 0);
	assert_true(a.done);
	{
		uint32_t now = 0;

		assert_success(tu_get_feature(env, 0x0b, 0, 0, &now));
		assert_int_equal(now, dw0);
	}
	/* Fallback: the engine's Set Features runs and takes effect. */
	submit(env, &a, nvme_admin_set_features, 0x0b, 0x100);
	nvemu_req_fwd_fallback(o.held);
	assert_true(a.done);
	assert_success(a.req.cqe.status);
	assert_success(tu_get_feature(env, 0x0b, 0, 0, &dw0));
	assert_int_equal(dw0, 0x100);
	nvemu_ctrl_set_admin_fwd(env->ctrl, NULL, NULL);
}

static void abort_cancels(void **state)
{
	struct tu_env *env = *state;
	struct owner o = {0};
	struct nvemu_sqe ab = {.opc = nvme_admin_abort_cmd};
	struct nvemu_cqe cqe;
	struct areq a;

	nvemu_ctrl_set_admin_fwd(env->ctrl, &o_ops, &o);
	submit(env, &a, nvme_admin_identify, 1, 0);
	ab.cdw10 = (uint32_t)0x1234 << 16; /* SQ 0, CID 1234h */
	assert_success(tu_admin(env, &ab, NULL, 0, &cqe));
	assert_int_equal(cqe.dw0 & 1, 0); /* aborted */
	assert_int_equal(o.cancelled, 1);
	assert_false(a.done); /* the owner ends it from its loop */
	nvemu_req_fwd_abort(o.held);
	assert_true(a.done);
	assert_status(a.req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ));

	/* A suspend timeout aborts it likewise. */
	submit(env, &a, nvme_admin_identify, 1, 0);
	assert_int_equal(nvemu_ctrl_suspend(env->ctrl, false), 1);
	nvemu_ctrl_abort_inflight(env->ctrl);
	assert_int_equal(o.cancelled, 2);
	nvemu_req_fwd_abort(o.held);
	assert_true(a.done);
	assert_status(a.req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ));
	assert_int_equal(nvemu_ctrl_inflight(env->ctrl), 0);
	nvemu_ctrl_resume(env->ctrl);
	nvemu_ctrl_set_admin_fwd(env->ctrl, NULL, NULL);
}

static void reset_cancels(void **state)
{
	struct tu_env *env = *state;
	struct owner o = {0};
	struct areq a;

	nvemu_ctrl_set_admin_fwd(env->ctrl, &o_ops, &o);
	submit(env, &a, nvme_admin_identify, 1, 0);
	nvemu_ctrl_set_cc(env->ctrl, nvemu_ctrl_get_cc(env->ctrl) & ~1u);
	assert_int_equal(o.cancelled, 1);
	nvemu_req_fwd_abort(o.held);
	assert_true(a.done);
	assert_status(a.req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	assert_int_equal(nvemu_ctrl_inflight(env->ctrl), 0);
	nvemu_ctrl_set_admin_fwd(env->ctrl, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(identify_forwarded_and_answered, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(not_wanted_not_forwarded, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(fallback_answers_as_the_engine, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(abort_cancels, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(reset_cancels, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * SNAP's controller quirks, one test per bit, each run without the quirk
 * (the spec's behaviour) and with it: bit 0 Namespace Attribute Changed even
 * though the host disabled it, bit 1 the next one without a Changed
 * Namespace List read, bit 3 OACS Namespace Management, and the refused
 * bits. Bit 4 (no SGLs) needs the PCIe transport: test-pcie.c.
 */
#include <stdlib.h>
#include <string.h>

#include "test-util.h"

#define AEC_NS_ATTR (1u << 8)

struct aer {
	struct nvemu_req req;
	bool done;
};

static void aer_done(struct nvemu_req *req)
{
	((struct aer *)req->transport_priv)->done = true;
}

static void aer_submit(struct tu_env *env, struct aer *a, uint16_t cid)
{
	memset(a, 0, sizeof(*a));
	a->req.cmd.opc = nvme_admin_async_event;
	a->req.cmd.cid = cid;
	a->req.done = aer_done;
	a->req.transport_priv = a;
	nvemu_host_submit(env->host, 0, &a->req);
}

static void attach2(struct tu_env *env)
{
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 2, &err), 0);
}

static void detach2(struct tu_env *env)
{
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, 2, &err), 0);
}

static void set_quirks(struct tu_env *env, uint32_t q)
{
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_ctrl_set_quirks(env->ctrl, q, &err), 0);
}

/* The event's completion: Notice, Namespace Attribute Changed, log 04h. */
static void assert_ns_changed(struct aer *a)
{
	uint32_t dw0 = le32toh(a->req.cqe.dw0);

	assert_true(a->done);
	assert_int_equal(dw0 & 7, NVME_AER_NOTICE);
	assert_int_equal((dw0 >> 8) & 0xff, 0);
	assert_int_equal((dw0 >> 16) & 0xff, NVME_LOG_LID_CHANGED_NS);
}

/* Bit 0: the host cleared AEC bit 8; the event still comes with the quirk. */
static void test_bit0_forced_ns_attr_event(void **state)
{
	struct tu_env *env = *state;
	static struct aer a;
	static uint32_t list[1024];

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 0, NULL));
	aer_submit(env, &a, 0x7000);
	attach2(env);
	assert_false(a.done); /* the spec: disabled, not sent */
	detach2(env);
	assert_false(a.done);

	set_quirks(env, NVEMU_QUIRK_NS_ATTR_AEN_FORCE);
	attach2(env);
	assert_ns_changed(&a);
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, false, list, sizeof(list)));
	assert_int_equal(le32toh(list[0]), 2);
	/* Run-time change back: disabled again. */
	set_quirks(env, 0);
	aer_submit(env, &a, 0x7001);
	detach2(env);
	assert_false(a.done);
	nvemu_ctrl_abort_aers(env->ctrl);
}

/* Bit 1: without reading log 04h, a second change is reported only with the quirk. */
static void test_bit1_repeat_without_log_read(void **state)
{
	struct tu_env *env = *state;
	static struct aer a, b;
	static uint32_t list[1024];

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, AEC_NS_ATTR, NULL));
	aer_submit(env, &a, 0x7000);
	aer_submit(env, &b, 0x7001);
	attach2(env);
	assert_true(a.done != b.done);
	detach2(env);
	assert_true(!a.done || !b.done); /* the spec: masked until the log is read */
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, false, list, sizeof(list)));
	assert_true(a.done && b.done); /* the read unmasks: the queued one goes */

	set_quirks(env, NVEMU_QUIRK_NS_ATTR_AEN_REPEAT);
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, false, list, sizeof(list)));
	aer_submit(env, &a, 0x7002);
	aer_submit(env, &b, 0x7003);
	attach2(env);
	detach2(env);
	/* Both events went out with no log read in between. */
	assert_true(a.done && b.done);
	assert_ns_changed(&a);
	assert_ns_changed(&b);
}

/* Bit 3: OACS Namespace Management; nvemu supports it always, so set both ways. */
static void test_bit3_oacs_ns_mgmt(void **state)
{
	struct tu_env *env = *state;
	static struct nvme_id_ctrl id;

	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id));
	assert_true(le16toh(id.oacs) & NVME_CTRL_OACS_NS_MGMT);
	set_quirks(env, NVEMU_QUIRK_OACS_NS_MGMT);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id));
	assert_true(le16toh(id.oacs) & NVME_CTRL_OACS_NS_MGMT);
}

/* Bit 2 and bits above 4 are refused, at create and at run time, naming the field. */
static void test_undefined_bits(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl_params p;
	struct nvemu_error err = {0};
	uint16_t cntlid;

	assert_int_equal(nvemu_ctrl_set_quirks(env->ctrl, 1u << 2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "quirks"));
	assert_int_equal(nvemu_ctrl_set_quirks(env->ctrl, 1u << 5, &err), -EINVAL);
	assert_int_equal(env->ctrl->p.quirks, 0);
	nvemu_ctrl_params_init(&p);
	p.quirks = 1u << 2;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->subsys, &p, &cntlid, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "quirks"));
	p.quirks = NVEMU_QUIRKS_VALID;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->subsys, &p, &cntlid, &err), 0);
	assert_int_equal(nvemu_subsys_ctrl(env->subsys, cntlid)->p.quirks,
			 NVEMU_QUIRKS_VALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bit0_forced_ns_attr_event, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_bit1_repeat_without_log_read, tu_setup,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_bit3_oacs_ns_mgmt, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_undefined_bits, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

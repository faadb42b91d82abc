/* SPDX-License-Identifier: MIT */
/* Get Features / Set Features and the SMART/Health events they drive. */
#include "test-util.h"

/* Exact status, DNR included, and the command's Error Information log entry. */
#define assert_failed(got, want) tu_assert_failed(env, (got), (want))

#define SC_INVALID_FIELD (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define SC_NOT_SAVEABLE	 (NVEMU_SC_CMD(NVME_SC_FEATURE_NOT_SAVEABLE) | NVEMU_DNR)
#define CAP_SAVE	 1u
#define CAP_NS		 2u
#define CAP_CHANGE	 4u
#define TT(tmpth, tmpsel, thsel)                                                                   \
	((uint32_t)(tmpth) | (uint32_t)(tmpsel) << 16 | (uint32_t)(thsel) << 20)

/* An AER that outlives any one test: teardown aborts it if still outstanding. */
static struct aer_slot {
	struct nvemu_req req;
	bool done;
} aer;

static void aer_done(struct nvemu_req *req)
{
	(void)req;
	aer.done = true;
}

static void aer_submit(struct tu_env *env)
{
	memset(&aer, 0, sizeof(aer));
	aer.req.cmd.opc = nvme_admin_async_event;
	aer.req.cmd.cid = 0xae;
	aer.req.done = aer_done;
	nvemu_host_submit(env->host, 0, &aer.req);
	assert_false(aer.done);
}

static uint32_t aer_dw0(uint8_t type, uint8_t info, uint8_t lid)
{
	return type | (uint32_t)info << 8 | (uint32_t)lid << 16;
}

static void set_health(struct tu_env *env, uint16_t temp_k, uint8_t spare, uint8_t thresh,
		       uint8_t crit)
{
	struct nvemu_health h;
	struct nvemu_error err = {0};

	nvemu_subsys_get_health(env->subsys, &h);
	h.temperature_k = temp_k;
	h.avail_spare = spare;
	h.spare_thresh = thresh;
	h.critical_warning = crit;
	assert_int_equal(nvemu_subsys_set_health(env->subsys, &h, &err), 0);
}

static uint32_t get(struct tu_env *env, uint8_t fid, uint8_t sel, uint32_t cdw11)
{
	uint32_t dw0 = 0xdeadbeef;

	assert_success(tu_get_feature(env, fid, sel, cdw11, &dw0));
	return dw0;
}

static uint16_t feat_cmd(struct tu_env *env, uint8_t opc, uint32_t nsid, uint32_t cdw10,
			 uint32_t cdw11, void *buf, uint32_t len, struct nvemu_cqe *cqe)
{
	struct nvemu_sqe cmd = {.opc = opc, .nsid = nsid, .cdw10 = cdw10, .cdw11 = cdw11};

	return tu_admin(env, &cmd, buf, len, cqe);
}

static void reset_ctrl(struct tu_env *env)
{
	nvemu_ctrl_set_cc(env->ctrl, 0);
	assert_int_equal(nvemu_host_enable(env->host), 0);
}

/* ---- defaults */

static void test_defaults(void **state)
{
	struct tu_env *env = *state;

	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 0, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_POWER_MGMT, 0, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 0, 0)) & 0xffff, 343);
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 0, 1)) & 0xffff, 0);
	for (unsigned s = 1; s <= 8; s++) {
		assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, s, 0)) & 0xffff, 343);
		assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, s, 1)) & 0xffff, 0);
	}
	assert_int_equal(get(env, NVME_FEAT_FID_ERR_RECOVERY, 0, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_VOLATILE_WC, 0, 0), 1);
	/* The fixture asked for 4 + 4. */
	assert_int_equal(get(env, NVME_FEAT_FID_NUM_QUEUES, 0, 0), 3 | 3u << 16);
	assert_int_equal(get(env, NVME_FEAT_FID_NUM_QUEUES, 1, 0), 3 | 3u << 16);
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_COALESCE, 0, 0), 0);
	/* The admin queue's vector never coalesces. */
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_CONFIG, 0, 0), 1u << 16);
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_CONFIG, 0, 1), 1);
	assert_int_equal(get(env, NVME_FEAT_FID_WRITE_ATOMIC, 0, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_ASYNC_EVENT, 0, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_KATO, 0, 0), 0);
	assert_int_equal(env->ctrl->temp_warning, 0);
}

static void test_num_queues_before_set(void **state)
{
	struct tu_env *env = *state;

	/* Not set yet: both current and default report the controller's maximum. */
	assert_int_equal(nvemu_host_enable(env->host), 0);
	assert_false(env->ctrl->feat.num_queues_set);
	assert_int_equal(get(env, NVME_FEAT_FID_NUM_QUEUES, 0, 0), 3 | 3u << 16);
}

/* ---- Select */

struct cap_case {
	uint8_t fid;
	uint32_t caps;
	uint32_t cdw11;
};

static const struct cap_case cap_cases[] = {
	{NVME_FEAT_FID_ARBITRATION, CAP_SAVE | CAP_CHANGE, 0},
	{NVME_FEAT_FID_POWER_MGMT, CAP_SAVE | CAP_CHANGE, 0},
	{NVME_FEAT_FID_TEMP_THRESH, CAP_SAVE | CAP_CHANGE, 0},
	{NVME_FEAT_FID_ERR_RECOVERY, CAP_SAVE | CAP_CHANGE, 0},
	{NVME_FEAT_FID_VOLATILE_WC, CAP_SAVE | CAP_CHANGE, 0},
	{NVME_FEAT_FID_NUM_QUEUES, CAP_CHANGE, 0},
	{NVME_FEAT_FID_IRQ_COALESCE, CAP_SAVE | CAP_CHANGE, 0},
	{NVME_FEAT_FID_IRQ_CONFIG, CAP_SAVE | CAP_CHANGE, 0},
	{NVME_FEAT_FID_WRITE_ATOMIC, CAP_SAVE | CAP_CHANGE, 0},
	{NVME_FEAT_FID_ASYNC_EVENT, CAP_SAVE | CAP_CHANGE, 0},
	{NVME_FEAT_FID_TIMESTAMP, CAP_CHANGE, 0},
	{NVME_FEAT_FID_KATO, CAP_CHANGE, 0},
	{NVME_FEAT_FID_HOST_ID, CAP_CHANGE, 1},
};

static void test_sel_supported(void **state)
{
	struct tu_env *env = *state;

	for (size_t i = 0; i < sizeof(cap_cases) / sizeof(cap_cases[0]); i++) {
		const struct cap_case *c = &cap_cases[i];
		uint32_t caps = get(env, c->fid, 3, c->cdw11);

		if (caps != c->caps)
			fail_msg("FID %#x: capabilities %#x, expected %#x", c->fid, caps, c->caps);
		assert_false(caps & CAP_NS);
	}
}

static void test_sel_current_default_saved(void **state)
{
	struct tu_env *env = *state;
	uint32_t v1 = 0x01020303, v2 = 0x0a0b0c05;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ARBITRATION, false, v1, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 0, 0), v1);
	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 1, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 2, 0), 0);

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ARBITRATION, true, v2, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 0, 0), v2);
	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 1, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 2, 0), v2);

	/* A later non-saving Set leaves the saved value alone. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_ARBITRATION, false, v1, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 0, 0), v1);
	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 2, 0), v2);

	/* Reserved arbitration bits 7:3 are not kept. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_ARBITRATION, false, 0xff, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_ARBITRATION, 0, 0), 0x07);
}

static void test_sel_saved_not_saveable_is_default(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_KATO, false, 5000, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_KATO, 0, 0), 5000);
	assert_int_equal(get(env, NVME_FEAT_FID_KATO, 2, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_KATO, 1, 0), 0);
}

static void test_sel_reserved(void **state)
{
	struct tu_env *env = *state;

	for (uint8_t sel = 4; sel < 8; sel++) {
		uint16_t st = tu_get_feature(env, NVME_FEAT_FID_VOLATILE_WC, sel, 0, NULL);

		assert_failed(st, SC_INVALID_FIELD);
		assert_dnr(st);
	}
}

static void test_saved_restored_by_reset(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_VOLATILE_WC, true, 0, NULL));
	assert_success(tu_set_feature(env, NVME_FEAT_FID_ERR_RECOVERY, false, 77, NULL));
	assert_success(tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, true, TT(350, 0, 0), NULL));
	assert_success(tu_set_feature(env, NVME_FEAT_FID_KATO, false, 1000, NULL));
	reset_ctrl(env);
	assert_int_equal(get(env, NVME_FEAT_FID_VOLATILE_WC, 0, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_ERR_RECOVERY, 0, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 0, 0)) & 0xffff, 350);
	assert_int_equal(get(env, NVME_FEAT_FID_KATO, 0, 0), 0);
	/* Number of Queues may be set again after a reset. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 1 | 1u << 16, NULL));
}

/* ---- invalid commands common to every feature */

static void test_unknown_fid(void **state)
{
	struct tu_env *env = *state;
	static const uint8_t fids[] = {0x00,
				       NVME_FEAT_FID_LBA_RANGE,
				       NVME_FEAT_FID_AUTO_PST,
				       NVME_FEAT_FID_HOST_MEM_BUF,
				       NVME_FEAT_FID_HCTM,
				       0x7f,
				       NVME_FEAT_FID_WRITE_PROTECT,
				       0xc0,
				       0xff};

	for (size_t i = 0; i < sizeof(fids); i++) {
		for (uint8_t sel = 0; sel < 4; sel++) {
			uint16_t st = tu_get_feature(env, fids[i], sel, 0, NULL);

			assert_failed(st, SC_INVALID_FIELD);
			assert_dnr(st);
		}
		uint16_t st = tu_set_feature(env, fids[i], false, 0, NULL);

		assert_failed(st, SC_INVALID_FIELD);
		assert_dnr(st);
		st = tu_set_feature(env, fids[i], true, 0, NULL);
		assert_failed(st, SC_INVALID_FIELD);
		assert_dnr(st);
	}
}

static void test_not_saveable(void **state)
{
	struct tu_env *env = *state;
	static const uint8_t fids[] = {NVME_FEAT_FID_NUM_QUEUES, NVME_FEAT_FID_TIMESTAMP,
				       NVME_FEAT_FID_KATO, NVME_FEAT_FID_HOST_ID};

	for (size_t i = 0; i < sizeof(fids); i++) {
		uint16_t st = tu_set_feature(env, fids[i], true, 0, NULL);

		assert_failed(st, SC_NOT_SAVEABLE);
		assert_dnr(st);
	}
	/* Nothing changed. */
	assert_int_equal(get(env, NVME_FEAT_FID_NUM_QUEUES, 0, 0), 3 | 3u << 16);
}

static void test_set_nsid(void **state)
{
	struct tu_env *env = *state;
	uint16_t st;

	assert_success(feat_cmd(env, nvme_admin_set_features, NVEMU_NSID_ALL, NVME_FEAT_FID_KATO,
				10, NULL, 0, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_KATO, 0, 0), 10);
	st = feat_cmd(env, nvme_admin_set_features, 1, NVME_FEAT_FID_KATO, 20, NULL, 0, NULL);
	assert_failed(st, NVEMU_SC_CMD(NVME_SC_FEATURE_NOT_PER_NS) | NVEMU_DNR);
	assert_dnr(st);
	if (env->subsys->nn < 0xfffffffe) {
		st = feat_cmd(env, nvme_admin_set_features, env->subsys->nn + 1, NVME_FEAT_FID_KATO,
			      20, NULL, 0, NULL);
		assert_failed(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR);
		assert_dnr(st);
	}
	assert_int_equal(get(env, NVME_FEAT_FID_KATO, 0, 0), 10);
	/* Get ignores the NSID of a controller-wide feature. */
	assert_success(
		feat_cmd(env, nvme_admin_get_features, 1, NVME_FEAT_FID_KATO, 0, NULL, 0, NULL));
}

static void test_uuid_index(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {
		.opc = nvme_admin_get_features, .cdw10 = NVME_FEAT_FID_KATO, .cdw14 = 1};
	uint16_t st = tu_admin(env, &cmd, NULL, 0, NULL);

	assert_failed(st, SC_INVALID_FIELD);
	assert_dnr(st);
	cmd.opc = nvme_admin_set_features;
	st = tu_admin(env, &cmd, NULL, 0, NULL);
	assert_failed(st, SC_INVALID_FIELD);
}

/* ---- individual features */

static void test_power_mgmt(void **state)
{
	struct tu_env *env = *state;
	uint16_t st;

	for (uint32_t ps = 1; ps < 32; ps++) {
		st = tu_set_feature(env, NVME_FEAT_FID_POWER_MGMT, false, ps, NULL);
		assert_failed(st, SC_INVALID_FIELD);
		assert_dnr(st);
	}
	assert_success(tu_set_feature(env, NVME_FEAT_FID_POWER_MGMT, false, 2u << 5, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_POWER_MGMT, 0, 0), 2u << 5);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_POWER_MGMT, true, 0, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_POWER_MGMT, 2, 0), 0);
}

static void test_temp_threshold(void **state)
{
	struct tu_env *env = *state;
	uint16_t st;
	uint32_t dw0;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(350, 0, 0), NULL));
	assert_success(tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(270, 0, 1), NULL));
	assert_success(tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(330, 3, 0), NULL));
	dw0 = get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 0, 0));
	assert_int_equal(dw0, TT(350, 0, 0));
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 0, 1)), TT(270, 0, 1));
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 3, 0)), TT(330, 3, 0));
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 2, 0)) & 0xffff, 343);
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 1, TT(0, 0, 0)) & 0xffff, 343);
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 2, TT(0, 0, 0)) & 0xffff, 343);

	/* TMPSEL 1111b sets every sensor, composite included. */
	assert_success(
		tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(360, 0xf, 0), NULL));
	for (unsigned s = 0; s <= 8; s++)
		assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, s, 0)) & 0xffff, 360);
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 0, 1)) & 0xffff, 270);

	/* ...but cannot be read back as one value. */
	st = tu_get_feature(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 0xf, 0), NULL);
	assert_failed(st, SC_INVALID_FIELD);
	assert_dnr(st);
	for (unsigned s = 9; s < 0xf; s++) {
		st = tu_get_feature(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, s, 0), NULL);
		assert_failed(st, SC_INVALID_FIELD);
		st = tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(300, s, 0), NULL);
		assert_failed(st, SC_INVALID_FIELD);
		assert_dnr(st);
	}
	for (unsigned th = 2; th < 4; th++) {
		st = tu_get_feature(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 0, th), NULL);
		assert_failed(st, SC_INVALID_FIELD);
		assert_dnr(st);
		st = tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(300, 0, th), NULL);
		assert_failed(st, SC_INVALID_FIELD);
		assert_dnr(st);
	}
	assert_int_equal(get(env, NVME_FEAT_FID_TEMP_THRESH, 0, TT(0, 0, 0)) & 0xffff, 360);
}

static void test_err_recovery(void **state)
{
	struct tu_env *env = *state;
	uint16_t st;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ERR_RECOVERY, false, 0x1234, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_ERR_RECOVERY, 0, 0), 0x1234);
	/* DULBE needs NSFEAT bit 2, which no namespace reports. */
	st = tu_set_feature(env, NVME_FEAT_FID_ERR_RECOVERY, false, 1u << 16 | 5, NULL);
	assert_failed(st, SC_INVALID_FIELD);
	assert_dnr(st);
	assert_int_equal(get(env, NVME_FEAT_FID_ERR_RECOVERY, 0, 0), 0x1234);
}

static void test_volatile_wc(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_VOLATILE_WC, false, 0, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_VOLATILE_WC, 0, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_VOLATILE_WC, 1, 0), 1);
	assert_int_equal(get(env, NVME_FEAT_FID_VOLATILE_WC, 2, 0), 1);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_VOLATILE_WC, false, 0xffffffff, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_VOLATILE_WC, 0, 0), 1);
}

static void delete_queue_pair_1(struct tu_env *env)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_delete_sq, .cdw10 = 1};

	assert_success(tu_admin(env, &cmd, NULL, 0, NULL));
	cmd.opc = nvme_admin_delete_cq;
	assert_success(tu_admin(env, &cmd, NULL, 0, NULL));
}

static void test_num_queues(void **state)
{
	struct tu_env *env = *state;
	uint32_t dw0;
	uint16_t st;

	/* I/O queues exist (the fixture made pair 1): too late. */
	st = tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 0, NULL);
	assert_failed(st, NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR));
	assert_int_equal(get(env, NVME_FEAT_FID_NUM_QUEUES, 0, 0), 3 | 3u << 16);

	delete_queue_pair_1(env);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 1 | 2u << 16, &dw0));
	assert_int_equal(dw0, 1 | 2u << 16);
	assert_int_equal(get(env, NVME_FEAT_FID_NUM_QUEUES, 0, 0), 1 | 2u << 16);
	/* More than the controller has: granted the maximum (4, 0-based 3). */
	assert_success(
		tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 100 | 0xfffeu << 16, &dw0));
	assert_int_equal(dw0, 3 | 3u << 16);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 0, &dw0));
	assert_int_equal(dw0, 0);

	st = tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 0xffff, NULL);
	assert_failed(st, SC_INVALID_FIELD);
	assert_dnr(st);
	st = tu_set_feature(env, NVME_FEAT_FID_NUM_QUEUES, false, 0xffffu << 16, NULL);
	assert_failed(st, SC_INVALID_FIELD);
	assert_dnr(st);
	assert_int_equal(get(env, NVME_FEAT_FID_NUM_QUEUES, 0, 0), 0);
	assert_int_equal(get(env, NVME_FEAT_FID_NUM_QUEUES, 1, 0), 3 | 3u << 16);
}

static void test_irq_coalesce(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_IRQ_COALESCE, false, 0xffff0a05, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_COALESCE, 0, 0), 0x0a05);
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_COALESCE, 1, 0), 0);
}

static void test_irq_config(void **state)
{
	struct tu_env *env = *state;
	uint16_t st;

	/* 4 I/O queues: vectors 0..4. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_IRQ_CONFIG, false, 2 | 1u << 16, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_CONFIG, 0, 2), 2 | 1u << 16);
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_CONFIG, 1, 2), 2);
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_CONFIG, 0, 3), 3);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_IRQ_CONFIG, false, 4 | 1u << 16, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_CONFIG, 0, 4), 4 | 1u << 16);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_IRQ_CONFIG, true, 2, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_CONFIG, 0, 2), 2);
	assert_int_equal(get(env, NVME_FEAT_FID_IRQ_CONFIG, 2, 2), 2);

	st = tu_set_feature(env, NVME_FEAT_FID_IRQ_CONFIG, false, 5 | 1u << 16, NULL);
	assert_failed(st, SC_INVALID_FIELD);
	assert_dnr(st);
	st = tu_set_feature(env, NVME_FEAT_FID_IRQ_CONFIG, false, 0xffff, NULL);
	assert_failed(st, SC_INVALID_FIELD);
	st = tu_get_feature(env, NVME_FEAT_FID_IRQ_CONFIG, 0, 5, NULL);
	assert_failed(st, SC_INVALID_FIELD);
	assert_dnr(st);
}

static void test_write_atomic(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_WRITE_ATOMIC, false, 1, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_WRITE_ATOMIC, 0, 0), 1);
	assert_int_equal(get(env, NVME_FEAT_FID_WRITE_ATOMIC, 2, 0), 0);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_WRITE_ATOMIC, true, 1, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_WRITE_ATOMIC, 2, 0), 1);
}

static void test_async_event_cfg(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 0xffffffff, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_ASYNC_EVENT, 0, 0), 0x3ff);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 1u << 8, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_ASYNC_EVENT, 0, 0), 1u << 8);
	assert_int_equal(get(env, NVME_FEAT_FID_ASYNC_EVENT, 1, 0), 0);
}

static void test_kato(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_KATO, false, 120000, NULL));
	assert_int_equal(get(env, NVME_FEAT_FID_KATO, 0, 0), 120000);
	assert_int_equal(env->ctrl->feat.kato, 120000);
}

static void test_host_id(void **state)
{
	struct tu_env *env = *state;
	uint8_t id8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, id16[16], out[16];
	uint16_t st;

	for (int i = 0; i < 16; i++)
		id16[i] = (uint8_t)(0xa0 + i);
	/* 64-bit identifier */
	assert_success(feat_cmd(env, nvme_admin_set_features, 0, NVME_FEAT_FID_HOST_ID, 0, id8,
				sizeof(id8), NULL));
	memset(out, 0xee, sizeof(out));
	assert_success(feat_cmd(env, nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 0, out,
				sizeof(out), NULL));
	assert_memory_equal(out, id8, 8);
	assert_int_equal(out[8], 0xee); /* only 8 bytes transferred */

	/* 128-bit identifier (EXHID) */
	assert_success(feat_cmd(env, nvme_admin_set_features, 0, NVME_FEAT_FID_HOST_ID, 1, id16,
				sizeof(id16), NULL));
	assert_success(feat_cmd(env, nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 1, out,
				sizeof(out), NULL));
	assert_memory_equal(out, id16, 16);
	assert_true(env->ctrl->feat.host_id_ext);

	/* Default (SEL=1) is all zeroes. */
	assert_success(feat_cmd(env, nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID | 1u << 8, 1,
				out, sizeof(out), NULL));
	for (int i = 0; i < 16; i++)
		assert_int_equal(out[i], 0);

	/* The buffer is smaller than the identifier. */
	st = feat_cmd(env, nvme_admin_set_features, 0, NVME_FEAT_FID_HOST_ID, 1, id16, 8, NULL);
	assert_failed(st, NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
	st = feat_cmd(env, nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 1, out, 4, NULL);
	assert_failed(st, NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
	st = feat_cmd(env, nvme_admin_set_features, 0, NVME_FEAT_FID_HOST_ID, 0, NULL, 0, NULL);
	assert_failed(st, NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
	/* The failed Set did not change the identifier. */
	assert_success(feat_cmd(env, nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 1, out,
				sizeof(out), NULL));
	assert_memory_equal(out, id16, 16);
}

static uint64_t ts_of(const uint8_t *b)
{
	uint64_t ts = 0;

	for (int i = 0; i < 6; i++)
		ts |= (uint64_t)b[i] << (8 * i);
	return ts;
}

static void test_timestamp(void **state)
{
	struct tu_env *env = *state;
	uint8_t in[8] = {0}, out[8];
	uint64_t base = 1700000000000ull, ts;
	uint16_t st;

	for (int i = 0; i < 6; i++)
		in[i] = (uint8_t)(base >> (8 * i));
	assert_success(feat_cmd(env, nvme_admin_get_features, 0, NVME_FEAT_FID_TIMESTAMP, 0, out,
				sizeof(out), NULL));
	assert_int_equal((out[6] >> 1) & 7, 0); /* origin: reset */
	assert_success(feat_cmd(env, nvme_admin_set_features, 0, NVME_FEAT_FID_TIMESTAMP, 0, in,
				sizeof(in), NULL));
	assert_success(feat_cmd(env, nvme_admin_get_features, 0, NVME_FEAT_FID_TIMESTAMP, 0, out,
				sizeof(out), NULL));
	ts = ts_of(out);
	assert_true(ts >= base && ts < base + 10000);
	assert_int_equal((out[6] >> 1) & 7, 1); /* origin: set by the host */
	assert_int_equal(out[6] & 1, 0);	/* never stopped */

	assert_success(feat_cmd(env, nvme_admin_get_features, 0, NVME_FEAT_FID_TIMESTAMP | 1u << 8,
				0, out, sizeof(out), NULL));
	assert_int_equal(ts_of(out), 0);
	st = feat_cmd(env, nvme_admin_set_features, 0, NVME_FEAT_FID_TIMESTAMP, 0, in, 4, NULL);
	assert_failed(st, NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
}

/* A controller reached through a fabrics transport. */
static void test_fabrics_only_features(void **state)
{
	struct tu_env *env = *state;
	const struct nvemu_transport_ops *old = env->ctrl->tops;
	struct nvemu_transport_ops fab = *old;
	uint8_t id[16] = {1};
	uint16_t st;

	fab.fabrics = true;
	env->ctrl->tops = &fab;
	st = tu_get_feature(env, NVME_FEAT_FID_IRQ_COALESCE, 0, 0, NULL);
	assert_failed(st, SC_INVALID_FIELD);
	st = tu_set_feature(env, NVME_FEAT_FID_IRQ_CONFIG, false, 1, NULL);
	assert_failed(st, SC_INVALID_FIELD);
	assert_dnr(st);
	/* The Host Identifier comes with Connect. */
	st = feat_cmd(env, nvme_admin_set_features, 0, NVME_FEAT_FID_HOST_ID, 1, id, 16, NULL);
	assert_failed(st, NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR));
	st = feat_cmd(env, nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 0, id, 16, NULL);
	assert_failed(st, SC_INVALID_FIELD);
	env->ctrl->tops = old;
}

/* ---- health events */

static void test_temp_over_raises_aer(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false,
				      NVME_SMART_CRIT_TEMPERATURE, NULL));
	aer_submit(env);
	set_health(env, 330, 100, 10, 0);
	assert_false(aer.done);
	assert_int_equal(env->ctrl->temp_warning, 0);

	set_health(env, 343, 100, 10, 0); /* at the threshold counts */
	assert_true(aer.done);
	assert_success(aer.req.cqe.status);
	assert_int_equal(
		aer.req.cqe.dw0,
		aer_dw0(NVME_AER_SMART, NVME_AER_SMART_TEMPERATURE_THRESHOLD, NVME_LOG_LID_SMART));
	assert_int_equal(env->ctrl->temp_warning, NVME_SMART_CRIT_TEMPERATURE);

	/* Still over: no second event. */
	aer_submit(env);
	set_health(env, 360, 100, 10, 0);
	assert_false(aer.done);
	assert_int_equal(env->ctrl->temp_warning, NVME_SMART_CRIT_TEMPERATURE);

	/* Back in range clears the warning. */
	set_health(env, 300, 100, 10, 0);
	assert_int_equal(env->ctrl->temp_warning, 0);
	assert_false(aer.done);
}

static void test_temp_set_threshold_reevaluates(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 0xff, NULL));
	set_health(env, 320, 100, 10, 0);
	aer_submit(env);
	assert_false(aer.done);
	/* Lowering the threshold under the current temperature crosses it. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(310, 0, 0), NULL));
	assert_true(aer.done);
	assert_int_equal(
		aer.req.cqe.dw0,
		aer_dw0(NVME_AER_SMART, NVME_AER_SMART_TEMPERATURE_THRESHOLD, NVME_LOG_LID_SMART));
	assert_int_equal(env->ctrl->temp_warning, NVME_SMART_CRIT_TEMPERATURE);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(343, 0, 0), NULL));
	assert_int_equal(env->ctrl->temp_warning, 0);
	/* Sensor thresholds do not drive the composite warning. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(280, 1, 0), NULL));
	assert_int_equal(env->ctrl->temp_warning, 0);
}

static void test_temp_under(void **state)
{
	struct tu_env *env = *state;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false,
				      NVME_SMART_CRIT_TEMPERATURE, NULL));
	set_health(env, 300, 100, 10, 0);
	/* Under threshold 0 (the default) is off, however cold. */
	set_health(env, 1, 100, 10, 0);
	assert_int_equal(env->ctrl->temp_warning, 0);
	set_health(env, 300, 100, 10, 0);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_TEMP_THRESH, false, TT(280, 0, 1), NULL));
	aer_submit(env);
	set_health(env, 281, 100, 10, 0);
	assert_false(aer.done);
	set_health(env, 280, 100, 10, 0);
	assert_true(aer.done);
	assert_int_equal(
		aer.req.cqe.dw0,
		aer_dw0(NVME_AER_SMART, NVME_AER_SMART_TEMPERATURE_THRESHOLD, NVME_LOG_LID_SMART));
	assert_int_equal(env->ctrl->temp_warning, NVME_SMART_CRIT_TEMPERATURE);
}

static void test_temp_event_disabled(void **state)
{
	struct tu_env *env = *state;

	/* Spare warnings enabled, temperature not. */
	assert_success(
		tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, NVME_SMART_CRIT_SPARE, NULL));
	aer_submit(env);
	set_health(env, 400, 100, 10, 0);
	assert_false(aer.done);
	/* The warning is still reported through the SMART log. */
	assert_int_equal(env->ctrl->temp_warning, NVME_SMART_CRIT_TEMPERATURE);
	set_health(env, 400, 5, 10, 0);
	assert_true(aer.done);
	assert_int_equal(aer.req.cqe.dw0, aer_dw0(NVME_AER_SMART, NVME_AER_SMART_SPARE_THRESHOLD,
						  NVME_LOG_LID_SMART));
}

static void test_spare_and_reliability(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_health h;

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 0xff, NULL));
	aer_submit(env);
	set_health(env, 300, 10, 10, 0); /* equal is not below */
	assert_false(aer.done);
	set_health(env, 300, 9, 10, 0);
	assert_true(aer.done);
	assert_int_equal(aer.req.cqe.dw0, aer_dw0(NVME_AER_SMART, NVME_AER_SMART_SPARE_THRESHOLD,
						  NVME_LOG_LID_SMART));

	/* SMART events are masked until the host reads the log: clear the mask the way
	 * a log read does, then inject a reliability warning. */
	nvemu_ctrl_log_read(env->ctrl, NVME_LOG_LID_SMART, false);
	aer_submit(env);
	set_health(env, 300, 9, 10, NVME_SMART_CRIT_DEGRADED);
	assert_true(aer.done);
	assert_int_equal(
		aer.req.cqe.dw0,
		aer_dw0(NVME_AER_SMART, NVME_AER_SMART_SUBSYSTEM_RELIABILITY, NVME_LOG_LID_SMART));
	nvemu_subsys_get_health(env->subsys, &h);
	assert_int_equal(h.critical_warning, NVME_SMART_CRIT_DEGRADED);

	/* The same bit again is not new; another bit is. */
	nvemu_ctrl_log_read(env->ctrl, NVME_LOG_LID_SMART, false);
	aer_submit(env);
	set_health(env, 300, 9, 10, NVME_SMART_CRIT_DEGRADED);
	assert_false(aer.done);
	set_health(env, 300, 9, 10, NVME_SMART_CRIT_DEGRADED | NVME_SMART_CRIT_MEDIA);
	assert_true(aer.done);
	assert_int_equal(
		aer.req.cqe.dw0,
		aer_dw0(NVME_AER_SMART, NVME_AER_SMART_SUBSYSTEM_RELIABILITY, NVME_LOG_LID_SMART));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_num_queues_before_set, tu_setup_bare,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_sel_supported, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_sel_current_default_saved, tu_setup,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_sel_saved_not_saveable_is_default, tu_setup,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_sel_reserved, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_saved_restored_by_reset, tu_setup,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_fid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_not_saveable, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_set_nsid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_uuid_index, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_power_mgmt, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_temp_threshold, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_err_recovery, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_volatile_wc, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_num_queues, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_irq_coalesce, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_irq_config, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_async_event_cfg, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_kato, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_host_id, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_timestamp, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_fabrics_only_features, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_temp_over_raises_aer, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_temp_set_threshold_reevaluates, tu_setup,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_temp_under, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_temp_event_disabled, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_spare_and_reliability, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* Get Log Page: every supported log, offsets and lengths, RAE and AERs. */
#include <stdlib.h>

#include "test-util.h"

/* Exact status, DNR included, and the command's Error Information log entry. */
#define assert_failed(got, want) tu_assert_failed(env, (got), (want))

#define INVALID_FIELD (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define INVALID_LOG   (NVEMU_SC_CMD(NVME_SC_INVALID_LOG_PAGE) | NVEMU_DNR)

static uint8_t buf[8192];

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static uint64_t le128_lo(const uint8_t v[16])
{
	uint64_t lo;

	memcpy(&lo, v, 8);
	assert_true(all_zero(v + 8, 8));
	return le64toh(lo);
}

/* ---- 00h */

static void test_supported_log_pages(void **state)
{
	struct tu_env *env = *state;
	struct nvme_supported_log_pages *l = (void *)buf;
	static const uint8_t lids[] = {0, 1, 2, 3, 4, 5, 0x12, 0x80, 0x81};

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_SUPPORTED_LOG_PAGES, 0, 0, false, buf, 1024));
	for (size_t i = 0; i < sizeof(lids); i++) {
		assert_int_equal(le32toh(l->lid_support[lids[i]]) & 1, 1);
		l->lid_support[lids[i]] = 0;
	}
	/* nothing else is claimed */
	assert_true(all_zero(buf, 1024));
}

static void test_unknown_lid(void **state)
{
	struct tu_env *env = *state;
	static const uint8_t bad[] = {0x06, 0x07, 0x0c, 0x70, 0x82, 0xc0, 0xff};
	uint16_t st;

	for (size_t i = 0; i < sizeof(bad); i++) {
		st = tu_get_log(env, bad[i], 0, 0, false, buf, 512);
		assert_failed(st, INVALID_LOG);
		assert_dnr(st);
	}
}

/* ---- offsets and lengths */

static void test_offsets(void **state)
{
	struct tu_env *env = *state;
	struct nvme_smart_log smart;
	uint16_t st;

	/* not dword aligned */
	st = tu_get_log(env, NVME_LOG_LID_SMART, 0, 2, false, buf, 512);
	assert_failed(st, INVALID_FIELD);
	assert_dnr(st);
	assert_failed(tu_get_log(env, NVME_LOG_LID_SMART, 0, 513, false, buf, 4), INVALID_FIELD);
	/* past the end of the 512-byte log */
	st = tu_get_log(env, NVME_LOG_LID_SMART, 0, 516, false, buf, 4);
	assert_failed(st, INVALID_FIELD);
	assert_dnr(st);
	assert_failed(tu_get_log(env, NVME_LOG_LID_SMART, 0, 1ull << 32, false, buf, 4),
		      INVALID_FIELD);
	assert_failed(tu_get_log(env, NVME_LOG_LID_CMD_EFFECTS, 0, 4100, false, buf, 4),
		      INVALID_FIELD);
	/* exactly at the end: nothing left, zero-filled */
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_SMART, 0, 512, false, buf, 8));
	assert_true(all_zero(buf, 8));

	/* an offset read returns the same bytes as the whole log */
	assert_success(tu_get_log(env, NVME_LOG_LID_SMART, 0, 0, false, &smart, sizeof(smart)));
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_SMART, 0, 4, false, buf, 16));
	assert_memory_equal(buf, (uint8_t *)&smart + 4, 16);
	assert_int_equal(buf[16], 0xa5);
}

static void test_zero_fill_past_end(void **state)
{
	struct tu_env *env = *state;
	struct nvme_firmware_slot *fw = (void *)buf;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_FW_SLOT, 0, 0, false, buf, 2048));
	assert_int_equal(fw->afi & 7, 1);
	assert_true(all_zero(buf + 512, 2048 - 512));
	assert_int_equal(buf[2048], 0xa5);
}

static void test_buffer_too_small(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_get_log_page};
	uint16_t st;

	cmd.cdw10 = NVME_LOG_LID_SMART | 127u << 16; /* 512 bytes */
	st = tu_admin(env, &cmd, buf, 256, NULL);
	assert_failed(st, NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
	assert_dnr(st);
	/* NUMDU counts too */
	cmd.cdw10 = NVME_LOG_LID_SMART | 127u << 16;
	cmd.cdw11 = 1;
	assert_failed(tu_admin(env, &cmd, buf, sizeof(buf), NULL),
		      NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
}

static void test_index_offset_unsupported(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_get_log_page};

	cmd.cdw10 = NVME_LOG_LID_SMART | 127u << 16;
	cmd.cdw14 = 1u << 23; /* OT: index offsets */
	assert_failed(tu_admin(env, &cmd, buf, 512, NULL), INVALID_FIELD);
}

/* ---- 01h */

static void test_error_log(void **state)
{
	struct tu_env *env = *state;
	struct nvme_error_log_page *e = (void *)buf;
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .cid = 0x1234, .cdw10 = 0xff};
	uint16_t st1, st2;
	uint64_t base = env->ctrl->err_count;

	st1 = tu_admin(env, &cmd, buf, 4096, NULL);
	assert_failed(st1, INVALID_FIELD);
	cmd = (struct nvemu_sqe){.opc = 0xc5, .cid = 0x4321, .nsid = 1};
	st2 = tu_admin(env, &cmd, NULL, 0, NULL);
	assert_failed(st2, NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVEMU_DNR);

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_ERROR, 0, 0, false, buf, 4096));
	/* newest first */
	assert_int_equal(le64toh(e[0].error_count), base + 2);
	assert_int_equal(le16toh(e[0].cmdid), 0x4321);
	assert_int_equal(le16toh(e[0].sqid), 0);
	assert_int_equal(le16toh(e[0].status_field) >> 1, st2);
	assert_int_equal(le32toh(e[0].nsid), 1);
	assert_int_equal(le64toh(e[1].error_count), base + 1);
	assert_int_equal(le16toh(e[1].cmdid), 0x1234);
	assert_int_equal(le16toh(e[1].status_field) >> 1, st1);
	assert_int_equal((le16toh(e[1].status_field) >> 1) & 0xff, NVME_SC_INVALID_FIELD);
	assert_true(all_zero(&e[base + 2], 4096 - (base + 2) * sizeof(*e)));
}

static void test_error_log_wraps(void **state)
{
	struct tu_env *env = *state;
	struct nvme_error_log_page *e = (void *)buf;
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .cdw10 = 0xff};
	uint64_t total;

	for (unsigned i = 0; i < NVEMU_ERRLOG_ENTRIES + 10; i++) {
		cmd.cid = (uint16_t)i;
		assert_failed(tu_admin(env, &cmd, buf, 4096, NULL), INVALID_FIELD);
	}
	total = env->ctrl->err_count;
	assert_success(tu_get_log(env, NVME_LOG_LID_ERROR, NVEMU_NSID_ALL, 0, false, buf, 4096));
	for (unsigned i = 0; i < NVEMU_ERRLOG_ENTRIES; i++) {
		assert_int_equal(le64toh(e[i].error_count), total - i);
		assert_int_equal(le16toh(e[i].cmdid), NVEMU_ERRLOG_ENTRIES + 9 - i);
	}
}

/* ---- 02h */

static void test_smart_log(void **state)
{
	struct tu_env *env = *state;
	struct nvme_smart_log *l = (void *)buf;
	struct nvemu_health h;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_SMART, NVEMU_NSID_ALL, 0, false, buf, 512));
	assert_int_equal(l->critical_warning, 0);
	assert_int_equal(l->temperature[0] | l->temperature[1] << 8,
			 env->subsys->health.temperature_k);
	assert_int_equal(l->avail_spare, 100);
	assert_int_equal(l->spare_thresh, 10);
	assert_int_equal(l->percent_used, 0);
	assert_int_equal(le128_lo(l->power_cycles), env->subsys->power_cycles);
	assert_true(le128_lo(l->power_cycles) >= 1);
	assert_int_equal(le128_lo(l->power_on_hours), 0);
	assert_int_equal(le128_lo(l->num_err_log_entries), env->ctrl->err_count);
	assert_int_equal(le128_lo(l->media_errors), 0);

	/* spare below threshold and an injected warning */
	nvemu_subsys_get_health(env->subsys, &h);
	h.avail_spare = 5;
	h.percent_used = 42;
	h.critical_warning = NVME_SMART_CRIT_MEDIA;
	h.temperature_k = 320;
	assert_int_equal(nvemu_subsys_set_health(env->subsys, &h, NULL), 0);
	assert_success(tu_get_log(env, NVME_LOG_LID_SMART, 0, 0, false, buf, 512));
	assert_int_equal(l->critical_warning, NVME_SMART_CRIT_MEDIA | NVME_SMART_CRIT_SPARE);
	assert_int_equal(l->avail_spare, 5);
	assert_int_equal(l->percent_used, 42);
	assert_int_equal(l->temperature[0] | l->temperature[1] << 8, 320);
}

static void test_smart_nsid(void **state)
{
	struct tu_env *env = *state;
	uint16_t st;

	assert_success(tu_get_log(env, NVME_LOG_LID_SMART, 0, 0, false, buf, 512));
	assert_success(tu_get_log(env, NVME_LOG_LID_SMART, NVEMU_NSID_ALL, 0, false, buf, 512));
	assert_success(tu_get_log(env, NVME_LOG_LID_SMART, 1, 0, false, buf, 512));
	/* allocated but not attached, and unallocated */
	st = tu_get_log(env, NVME_LOG_LID_SMART, 2, 0, false, buf, 512);
	assert_failed(st, INVALID_FIELD);
	assert_dnr(st);
	assert_failed(tu_get_log(env, NVME_LOG_LID_SMART, 9, 0, false, buf, 512), INVALID_FIELD);
	assert_failed(tu_get_log(env, NVME_LOG_LID_SMART, 0xfffffffe, 0, false, buf, 512),
		      INVALID_FIELD);
}

/* Needs the I/O command handlers (io-cmd.c). */
static void test_smart_counts_io(void **state)
{
	struct tu_env *env = *state;
	struct nvme_smart_log *l = (void *)buf;
	static uint8_t data[1024 * 512];

	memset(data, 0x5a, sizeof(data));
	/* 1024 units of 512 bytes written: 2 data units after rounding up */
	assert_success(tu_rw(env, nvme_cmd_write, 1, 0, 1024, data, sizeof(data)));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 8, data, 8 * 512));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 8, 8, data, 8 * 512));
	assert_success(tu_get_log(env, NVME_LOG_LID_SMART, 0, 0, false, buf, 512));
	assert_int_equal(le128_lo(l->data_units_written), 2);
	assert_int_equal(le128_lo(l->data_units_read), 1);
	assert_int_equal(le128_lo(l->host_writes), 1);
	assert_int_equal(le128_lo(l->host_reads), 2);
}

/* ---- 03h */

static void test_fw_slot_log(void **state)
{
	struct tu_env *env = *state;
	struct nvme_firmware_slot *l = (void *)buf;
	char fr[8];

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_FW_SLOT, 0, 0, false, buf, 512));
	assert_int_equal(l->afi, 1);
	nvemu_strpad(fr, sizeof(fr), env->subsys->fr);
	assert_memory_equal(l->frs[0], fr, 8);
	assert_true(all_zero(l->frs[1], 8 * 6));

	memcpy(env->ctrl->fw.slot_rev[2], "NEXT    ", 8);
	env->ctrl->fw.next_slot = 3;
	assert_success(tu_get_log(env, NVME_LOG_LID_FW_SLOT, 0, 0, false, buf, 512));
	assert_int_equal(l->afi, 1 | 3 << 4);
	assert_memory_equal(l->frs[2], "NEXT    ", 8);
}

/* ---- 04h and RAE */

static void test_changed_ns_aer_rae(void **state)
{
	struct tu_env *env = *state;
	uint32_t *l = (void *)buf;
	struct tu_aer a1, a2;

	/* enable Namespace Attribute Notices */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 1u << 8, NULL));
	tu_aer_submit(env, &a1, 0x7000);
	assert_false(a1.done);

	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 2, NULL), 0);
	assert_true(a1.done);
	assert_int_equal(a1.req.cqe.status, 0);
	assert_int_equal(a1.req.cqe.dw0 & 0x7, NVME_AER_NOTICE);
	assert_int_equal((a1.req.cqe.dw0 >> 8) & 0xff, 0);
	assert_int_equal((a1.req.cqe.dw0 >> 16) & 0xff, NVME_LOG_LID_CHANGED_NS);

	/* RAE=1: the list stays and notices stay masked */
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, true, buf, 4096));
	assert_int_equal(le32toh(l[0]), 2);
	assert_true(all_zero(&l[1], 4096 - 4));
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, true, buf, 4096));
	assert_int_equal(le32toh(l[0]), 2);

	tu_aer_submit(env, &a2, 0x7000);
	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, 2, NULL), 0);
	assert_false(a2.done);

	/* RAE=0: returned once more, then cleared; the queued notice goes out */
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, false, buf, 4096));
	assert_int_equal(le32toh(l[0]), 2);
	assert_true(a2.done);
	assert_int_equal(a2.req.cqe.dw0 & 0xffffff,
			 NVME_AER_NOTICE | NVME_LOG_LID_CHANGED_NS << 16);
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, false, buf, 4096));
	assert_true(all_zero(buf, 4096));
}

static void test_changed_ns_overflow(void **state)
{
	struct tu_env *env = *state;
	uint32_t *l = (void *)buf;

	env->ctrl->changed_ns_overflow = true;
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, true, buf, 4096));
	assert_int_equal(le32toh(l[0]), 0xffffffff);
	assert_true(all_zero(&l[1], 4096 - 4));
	/* a partial read at an offset */
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 4, false, buf, 8));
	assert_true(all_zero(buf, 8));
	assert_false(env->ctrl->changed_ns_overflow);
	assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, false, buf, 4096));
	assert_int_equal(le32toh(l[0]), 0);
}

/* ---- 05h */

static void test_cmd_effects(void **state)
{
	struct tu_env *env = *state;
	struct nvme_cmd_effects_log *l = (void *)buf;
	struct nvemu_sqe cmd = {.opc = nvme_admin_get_log_page};
	uint32_t csupp = NVME_CMD_EFFECTS_CSUPP;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_CMD_EFFECTS, 0, 0, false, buf, 4096));
	assert_int_equal(le32toh(l->acs[nvme_admin_identify]), csupp);
	assert_int_equal(le32toh(l->acs[nvme_admin_get_log_page]), csupp);
	assert_int_equal(le32toh(l->acs[nvme_admin_ns_mgmt]) & 0x7,
			 csupp | NVME_CMD_EFFECTS_LBCC | NVME_CMD_EFFECTS_NCC);
	assert_true(le32toh(l->acs[nvme_admin_ns_attach]) & NVME_CMD_EFFECTS_NIC);
	assert_int_equal(le32toh(l->acs[0x7f]), 0);
	assert_int_equal(le32toh(l->acs[nvme_admin_security_send]), 0);
	assert_int_equal(le32toh(l->iocs[nvme_cmd_read]), csupp);
	assert_int_equal(le32toh(l->iocs[nvme_cmd_write]), csupp | NVME_CMD_EFFECTS_LBCC);
	assert_int_equal(le32toh(l->iocs[nvme_cmd_dsm]) & 1, 1);
	assert_int_equal(le32toh(l->iocs[nvme_cmd_write_uncor]), 0);
	assert_int_equal(le32toh(l->iocs[nvme_cmd_resv_register]), csupp);
	assert_true(all_zero(l->rsvd, sizeof(l->rsvd)));

	/* a command set other than NVM */
	cmd.cdw10 = NVME_LOG_LID_CMD_EFFECTS | 1023u << 16;
	cmd.cdw14 = (uint32_t)NVME_CSI_ZNS << 24;
	assert_failed(tu_admin(env, &cmd, buf, 4096, NULL), INVALID_FIELD);
}

static void test_cmd_effects_disabled_cmds(void **state)
{
	struct tu_env *env = *state;
	struct nvme_cmd_effects_log *l = (void *)buf;

	/* switch the optional commands off the way a custom controller would */
	env->ctrl->p.dsm = false;
	env->ctrl->p.write_zeroes = false;
	assert_success(tu_get_log(env, NVME_LOG_LID_CMD_EFFECTS, 0, 0, false, buf, 4096));
	assert_int_equal(le32toh(l->iocs[nvme_cmd_dsm]), 0);
	assert_int_equal(le32toh(l->iocs[nvme_cmd_write_zeroes]), 0);
	assert_int_equal(le32toh(l->iocs[nvme_cmd_read]), NVME_CMD_EFFECTS_CSUPP);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_supported_log_pages),
		T(test_unknown_lid),
		T(test_offsets),
		T(test_zero_fill_past_end),
		T(test_buffer_too_small),
		T(test_index_offset_unsupported),
		T(test_error_log),
		T(test_error_log_wraps),
		T(test_smart_log),
		T(test_smart_nsid),
		T(test_smart_counts_io),
		T(test_fw_slot_log),
		T(test_changed_ns_aer_rae),
		T(test_changed_ns_overflow),
		T(test_cmd_effects),
		T(test_cmd_effects_disabled_cmds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/* Per-controller command metrics (ctrl-metrics.c) through the in-process host. */
#include <string.h>

#include "test-util.h"

static uint64_t hist_total(const struct nvemu_class_metrics *c)
{
	uint64_t n = 0;

	for (unsigned i = 0; i <= NVEMU_LAT_BUCKETS; i++)
		n += c->lat_hist[i];
	return n;
}

static void test_counts_bytes_errors(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl_metrics before, m;
	struct nvemu_sqe cmd = {0};
	uint8_t data[4096] = {0}, id[4096];

	nvemu_ctrl_get_metrics(env->ctrl, &before);
	assert_success(tu_rw(env, nvme_cmd_write, 1, 0, 8, data, sizeof(data)));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 8, data, sizeof(data)));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 8, 1, data, 512));
	cmd.opc = nvme_cmd_flush;
	cmd.nsid = 1;
	assert_success(tu_io(env, &cmd, NULL, 0, NULL));
	/* Out of range: an error, counted by its status. */
	assert_int_not_equal(tu_rw(env, nvme_cmd_read, 1, 5000, 1, data, 512), 0);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));

	nvemu_ctrl_get_metrics(env->ctrl, &m);
	assert_int_equal(m.cls[NVEMU_CLASS_WRITE].cmds - before.cls[NVEMU_CLASS_WRITE].cmds, 1);
	assert_int_equal(m.cls[NVEMU_CLASS_WRITE].bytes - before.cls[NVEMU_CLASS_WRITE].bytes, 4096);
	assert_int_equal(m.cls[NVEMU_CLASS_READ].cmds - before.cls[NVEMU_CLASS_READ].cmds, 3);
	assert_int_equal(m.cls[NVEMU_CLASS_READ].bytes - before.cls[NVEMU_CLASS_READ].bytes,
			 4096 + 512);
	assert_int_equal(m.cls[NVEMU_CLASS_READ].errors - before.cls[NVEMU_CLASS_READ].errors, 1);
	assert_int_equal(m.cls[NVEMU_CLASS_FLUSH].cmds - before.cls[NVEMU_CLASS_FLUSH].cmds, 1);
	assert_true(m.cls[NVEMU_CLASS_ADMIN].cmds > before.cls[NVEMU_CLASS_ADMIN].cmds);
	assert_true(m.cls[NVEMU_CLASS_ADMIN].bytes - before.cls[NVEMU_CLASS_ADMIN].bytes >= 4096);
	/* LBA Out of Range (SCT 0, SC 80h) has its own counter. */
	for (unsigned i = 0; i < NVEMU_METRIC_STATUSES; i++)
		if (m.err[i].status == NVME_SC_LBA_RANGE) {
			assert_int_equal(m.err[i].count, 1);
			goto found;
		}
	fail_msg("LBA Out of Range not counted");
found:
	/* Every command timed, each in exactly one bucket. */
	for (unsigned c = 0; c < NVEMU_CLASS_NR; c++)
		assert_int_equal(hist_total(&m.cls[c]), m.cls[c].cmds);
	assert_true(nvemu_lat_bucket_us(0) < nvemu_lat_bucket_us(NVEMU_LAT_BUCKETS - 1));
	assert_string_equal(nvemu_cmd_class_name(NVEMU_CLASS_OTHER_IO), "other_io");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts_bytes_errors, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

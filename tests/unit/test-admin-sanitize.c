// SPDX-License-Identifier: MIT
/*
 * Sanitize (84h), the Sanitize Status log (81h), the completion event and
 * the Feature Identifiers Supported and Effects log (12h), through the
 * in-process host.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-util.h"

static uint8_t buf[4096];

static uint16_t sanitize(struct tu_env *env, uint32_t cdw10, uint32_t cdw11)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_sanitize_nvm, .cdw10 = cdw10, .cdw11 = cdw11};

	return tu_admin(env, &cmd, NULL, 0, NULL);
}

static struct nvme_sanitize_log_page *sanitize_log(struct tu_env *env)
{
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_SANITIZE, 0, 0, false, buf, 512));
	return (void *)buf;
}

/* Polls the delay bdev until the sanitize ends (5 s at most); it must have succeeded. */
static void wait_sanitized(struct tu_env *env, struct nvemu_bdev *dly)
{
	struct pollfd p = {.fd = nvemu_bdev_get_fd(dly), .events = POLLIN};

	for (int i = 0; i < 100 && (le16toh(sanitize_log(env)->sstat) & 7) ==
					   NVME_SANITIZE_SSTAT_STATUS_IN_PROGESS;
	     i++) {
		poll(&p, 1, 50);
		nvemu_bdev_poll(dly);
	}
	assert_int_equal(le16toh(sanitize_log(env)->sstat) & 7,
			 NVME_SANITIZE_SSTAT_STATUS_COMPLETE_SUCCESS);
}

static void fill(struct tu_env *env, uint32_t nsid, uint8_t v)
{
	uint8_t data[4096];

	memset(data, v, sizeof(data));
	assert_success(tu_rw(env, nvme_cmd_write, nsid, 0, 8, data, sizeof(data)));
}

static uint8_t first_byte(struct tu_env *env, uint32_t nsid, uint64_t slba)
{
	uint8_t data[512];

	assert_success(tu_rw(env, nvme_cmd_read, nsid, slba, 1, data, sizeof(data)));
	for (size_t i = 1; i < sizeof(data); i++)
		assert_int_equal(data[i], data[0]);
	return data[0];
}

static void test_identify_and_logs(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ctrl *id = (void *)buf;
	struct nvme_fid_supported_effects_log *fl = (void *)buf;
	struct nvme_sanitize_log_page *l;
	uint32_t e;

	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, buf));
	assert_int_equal(le32toh(id->sanicap) & 7, 7);

	l = sanitize_log(env);
	assert_int_equal(le16toh(l->sprog), 0xffff); /* none in progress */
	assert_int_equal(le16toh(l->sstat), NVME_SANITIZE_SSTAT_STATUS_NEVER_SANITIZED);
	for (size_t i = 0; i < sizeof(l->rsvd32); i++)
		assert_int_equal(l->rsvd32[i], 0);

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_get_log(env, NVME_LOG_LID_FID_SUPPORTED_EFFECTS, 0, 0, false, buf, 1024));
	e = le32toh(fl->fid_support[NVME_FEAT_FID_ARBITRATION]);
	assert_int_equal(e & 1, 1);
	assert_int_equal((e >> 20) & 0xfff, NVME_FID_SUPPORTED_EFFECTS_SCOPE_CTRL);
	assert_true(le32toh(fl->fid_support[NVME_FEAT_FID_NUM_QUEUES]) &
		    NVME_FID_SUPPORTED_EFFECTS_CCC);
	assert_int_equal(le32toh(fl->fid_support[NVME_FEAT_FID_HOST_ID]) & 1, 1);
	/* Not implemented: not claimed. */
	assert_int_equal(le32toh(fl->fid_support[NVME_FEAT_FID_LBA_RANGE]), 0);
	assert_int_equal(le32toh(fl->fid_support[0]), 0);
}

static void test_bad_fields(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_sanitize_nvm};

	cmd.cdw10 = 0; /* reserved action */
	tu_expect_error(env, 0, &cmd, NULL, 0, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
	cmd.cdw10 = 5;
	tu_expect_error(env, 0, &cmd, NULL, 0, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
	cmd.cdw10 = NVME_SANITIZE_SANACT_START_BLOCK_ERASE;
	cmd.nsid = 1; /* reserved: sanitize is subsystem-wide */
	tu_expect_error(env, 0, &cmd, NULL, 0, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
	/* Exit Failure Mode outside failure mode: nothing to do. */
	assert_success(sanitize(env, NVME_SANITIZE_SANACT_EXIT_FAILURE, 0));
	assert_int_equal(le16toh(sanitize_log(env)->sstat),
			 NVME_SANITIZE_SSTAT_STATUS_NEVER_SANITIZED);
}

static void test_block_erase(void **state)
{
	struct tu_env *env = *state;
	struct nvme_sanitize_log_page *l;
	struct tu_aer a;

	fill(env, 1, 0x5a);
	assert_int_equal(first_byte(env, 1, 0), 0x5a);
	tu_aer_submit(env, &a, 0x7000);
	assert_false(a.done);
	assert_success(sanitize(env, NVME_SANITIZE_SANACT_START_BLOCK_ERASE, 0));
	/* RAM completes at once: the operation is over, with its event. */
	assert_true(a.done);
	assert_int_equal(a.req.cqe.dw0 & 7, NVME_AER_CSS);
	assert_int_equal((a.req.cqe.dw0 >> 8) & 0xff, NVME_AER_CSS_NVM_SANITIZE_COMPLETED);
	assert_int_equal((a.req.cqe.dw0 >> 16) & 0xff, NVME_LOG_LID_SANITIZE);
	l = sanitize_log(env);
	assert_int_equal(le16toh(l->sstat) & 7, NVME_SANITIZE_SSTAT_STATUS_COMPLETE_SUCCESS);
	assert_int_equal(le32toh(l->scdw10), NVME_SANITIZE_SANACT_START_BLOCK_ERASE);
	assert_int_equal(le16toh(l->sprog), 0xffff);
	assert_int_equal(first_byte(env, 1, 0), 0);
}

static void test_overwrite_pattern(void **state)
{
	struct tu_env *env = *state;
	/* Three passes with inversion end on the pattern; two end on its inverse. */
	uint32_t three = NVME_SANITIZE_SANACT_START_OVERWRITE | 3u << 4 | 1u << 8;
	uint32_t two = NVME_SANITIZE_SANACT_START_OVERWRITE | 2u << 4 | 1u << 8;
	struct nvme_sanitize_log_page *l;

	fill(env, 1, 0x11);
	assert_success(sanitize(env, three, 0x3c3c3c3c));
	assert_int_equal(first_byte(env, 1, 0), 0x3c);
	assert_int_equal(first_byte(env, 1, 1023), 0x3c);
	/* Namespace 2 (not attached) is sanitized as well: the subsystem is. */
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 2, NULL), 0);
	assert_int_equal(first_byte(env, 2, 2047), 0x3c);
	l = sanitize_log(env);
	assert_int_equal(le16toh(l->sstat) & 7, NVME_SANITIZE_SSTAT_STATUS_COMPLETE_SUCCESS);
	assert_int_equal((le16toh(l->sstat) >> 3) & 0x1f, 3);

	assert_success(sanitize(env, two, 0x3c3c3c3c));
	assert_int_equal(first_byte(env, 1, 5), 0xc3);
}

/* A namespace on a delay bdev keeps the operation running long enough to look at it. */
static void test_in_progress(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_bdev_delay_opts o = {.read_latency_us = 1000, .write_latency_us = 100000};
	struct nvemu_bdev *ram, *dly;
	struct nvemu_error err = {0};
	struct nvemu_ns_params np;
	struct nvemu_sqe cmd = {0};
	uint8_t data[512] = {0};
	uint32_t nsid;

	assert_int_equal(nvemu_bdev_ram_create("sram", 1 << 20, 512, &ram, &err), 0);
	assert_int_equal(nvemu_bdev_delay_create("sdly", ram, &o, &dly, &err), 0);
	nvemu_ns_params_init(&np);
	np.bdev = dly;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &np, &nsid, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, nsid, &err), 0);

	assert_success(sanitize(env, NVME_SANITIZE_SANACT_START_CRYPTO_ERASE, 0));
	assert_int_equal(le16toh(sanitize_log(env)->sstat) & 7,
			 NVME_SANITIZE_SSTAT_STATUS_IN_PROGESS);
	/* I/O fails, Flush does not; Identify works, Namespace Management does not. */
	assert_status(tu_rw(env, nvme_cmd_read, 1, 0, 1, data, sizeof(data)),
		      NVEMU_SC_GENERIC(NVME_SC_SANITIZE_IN_PROGRESS));
	cmd.opc = nvme_cmd_flush;
	cmd.nsid = 1;
	assert_success(tu_io(env, &cmd, NULL, 0, NULL));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, buf));
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_ns_attach;
	assert_status(tu_admin(env, &cmd, buf, 4096, NULL),
		      NVEMU_SC_GENERIC(NVME_SC_SANITIZE_IN_PROGRESS));
	/* A second sanitize cannot overlap the first. */
	assert_status(sanitize(env, NVME_SANITIZE_SANACT_START_BLOCK_ERASE, 0),
		      NVEMU_SC_GENERIC(NVME_SC_SANITIZE_IN_PROGRESS));

	wait_sanitized(env, dly);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 1, data, sizeof(data)));

	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, nsid, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, nsid, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(dly, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(ram, &err), 0);
}

/* A read-only namespace cannot be erased: refused before anything starts. */
static void test_read_only(void **state)
{
	struct tu_env *env = *state;

	env->subsys->ns[0]->bdev->read_only = true;
	assert_status(sanitize(env, NVME_SANITIZE_SANACT_START_BLOCK_ERASE, 0),
		      NVEMU_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED));
	env->subsys->ns[0]->bdev->read_only = false;
	assert_int_equal(le16toh(sanitize_log(env)->sstat),
			 NVME_SANITIZE_SSTAT_STATUS_NEVER_SANITIZED);
}

/* ---- the subsystem's state_file: an nvemud restart is a power cycle */

static char state_dir[64], state_path[96];

static int state_setup(void **state)
{
	strcpy(state_dir, "/tmp/nvemu-sanstate-XXXXXX");
	assert_non_null(mkdtemp(state_dir));
	snprintf(state_path, sizeof(state_path), "%s/subsys.state", state_dir);
	return tu_setup(state);
}

static int state_teardown(void **state)
{
	char tmp[128];

	tu_teardown(state);
	unlink(state_path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", state_path);
	unlink(tmp);
	rmdir(state_dir);
	return 0;
}

static void write_state(const char *text)
{
	FILE *f = fopen(state_path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void read_state(char *out, size_t size)
{
	FILE *f = fopen(state_path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(out, 1, size - 1, f);
	out[n] = 0;
	fclose(f);
}

/*
 * What nvemud does at start: the subsystem with its state file, then its
 * namespace (bdev), then a controller.
 */
static struct tu_env *power_on(struct nvemu_bdev *bdev)
{
	struct tu_env *env = calloc(1, sizeof(*env));
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_ns_params np;
	struct nvemu_error err = {0};
	uint16_t port, cntlid;
	uint32_t nsid;

	assert_non_null(env);
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:again";
	assert_int_equal(nvemu_subsys_create(&sp, &env->subsys, &err), 0);
	assert_int_equal(nvemu_subsys_set_state_file(env->subsys, state_path, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	assert_int_equal(nvemu_subsys_add_port(env->subsys, &pp, &port, &err), 0);
	if (bdev) {
		nvemu_ns_params_init(&np);
		np.bdev = bdev;
		assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &np, &nsid, &err), 0);
	} else {
		assert_int_equal(nvemu_subsys_add_ns(env->subsys, 1024, &nsid, &err), 0);
	}
	nvemu_ctrl_params_init(&cp);
	cp.port_id = port;
	cp.num_io_queues = 4;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->subsys, &cp, &cntlid, &err), 0);
	env->ctrl = nvemu_subsys_ctrl(env->subsys, cntlid);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, nsid, &err), 0);
	assert_int_equal(nvemu_host_create(env->ctrl, &env->host, &err), 0);
	tu_enable_with_io_queue(env);
	return env;
}

static void power_off(struct tu_env *env)
{
	void *st = env;

	tu_teardown(&st);
}

/* NVMe Base 2.0, 5.24: the Sanitize Status log survives a power cycle. */
static void test_state_file_keeps_log(void **state)
{
	struct tu_env *env = *state, *again;
	struct nvemu_error err = {0};
	struct nvme_sanitize_log_page *l;
	char text[256];

	assert_int_equal(nvemu_subsys_set_state_file(env->subsys, state_path, &err), 0);
	assert_string_equal(nvemu_subsys_state_file(env->subsys), state_path);
	read_state(text, sizeof(text));
	assert_string_equal(text, "nvemu-subsys 1\nsanitize 0 0 0 0 0 0\n");
	assert_success(sanitize(env, NVME_SANITIZE_SANACT_START_OVERWRITE | 2u << 4, 0x5a5a5a5a));
	read_state(text, sizeof(text));
	assert_string_equal(text, "nvemu-subsys 1\nsanitize 0 0 11 23 5a5a5a5a 2\n");

	again = power_on(NULL);
	l = sanitize_log(again);
	assert_int_equal(le16toh(l->sstat) & 7, NVME_SANITIZE_SSTAT_STATUS_COMPLETE_SUCCESS);
	assert_int_equal((le16toh(l->sstat) >> 3) & 0x1f, 2);
	assert_int_equal(le32toh(l->scdw10), NVME_SANITIZE_SANACT_START_OVERWRITE | 2u << 4);
	assert_int_equal(le16toh(l->sprog), 0xffff);
	power_off(again);
}

/* 8.21.1: failure mode persists until Exit Failure Mode or a sanitize that succeeds. */
static void test_state_file_failure_mode(void **state)
{
	struct tu_env *env;
	uint8_t data[512];
	char text[256];

	(void)state;
	write_state("nvemu-subsys 1\nsanitize 0 1 3 2 0 0\n");
	env = power_on(NULL);
	assert_status(tu_rw(env, nvme_cmd_read, 1, 0, 1, data, sizeof(data)),
		      NVEMU_SC_GENERIC(NVME_SC_SANITIZE_FAILED));
	assert_int_equal(le16toh(sanitize_log(env)->sstat) & 7,
			 NVME_SANITIZE_SSTAT_STATUS_COMPLETED_FAILED);
	assert_success(sanitize(env, NVME_SANITIZE_SANACT_EXIT_FAILURE, 0));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 1, data, sizeof(data)));
	read_state(text, sizeof(text));
	assert_string_equal(text, "nvemu-subsys 1\nsanitize 0 0 3 2 0 0\n");
	power_off(env);
}

/* 8.21: a sanitize cut by a power loss goes on after it, restricting commands meanwhile. */
static void test_state_file_resumes(void **state)
{
	struct nvemu_bdev_delay_opts o = {.read_latency_us = 1000, .write_latency_us = 50000};
	struct nvemu_error err = {0};
	struct nvemu_bdev *ram, *dly;
	struct tu_env *env;
	uint8_t data[512];
	char text[256];

	(void)state;
	write_state("nvemu-subsys 1\nsanitize 1 0 2 2 0 0\n");
	assert_int_equal(nvemu_bdev_ram_create("rram", 1 << 20, 512, &ram, &err), 0);
	assert_int_equal(nvemu_bdev_delay_create("rdly", ram, &o, &dly, &err), 0);
	env = power_on(dly);
	assert_int_equal(le16toh(sanitize_log(env)->sstat) & 7,
			 NVME_SANITIZE_SSTAT_STATUS_IN_PROGESS);
	assert_status(tu_rw(env, nvme_cmd_read, 1, 0, 1, data, sizeof(data)),
		      NVEMU_SC_GENERIC(NVME_SC_SANITIZE_IN_PROGRESS));
	read_state(text, sizeof(text));
	assert_string_equal(text, "nvemu-subsys 1\nsanitize 1 0 2 2 0 0\n");
	wait_sanitized(env, dly);
	assert_int_equal(le32toh(sanitize_log(env)->scdw10),
			 NVME_SANITIZE_SANACT_START_BLOCK_ERASE);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 1, data, sizeof(data)));
	read_state(text, sizeof(text));
	assert_string_equal(text, "nvemu-subsys 1\nsanitize 0 0 1 2 0 0\n");
	power_off(env);
	assert_int_equal(nvemu_bdev_destroy(dly, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(ram, &err), 0);
}

/* A file that is not a saved state, or a place where none can be kept, is refused by name. */
static void test_state_file_refused(void **state)
{
	static const char *const bad[] = {
		"nvemu-subsys 2\nsanitize 0 0 0 0 0 0\n",
		"nvemu-subsys 1\nsanitize 0 0 0 0 0 0",	      /* cut */
		"nvemu-subsys 1\nsanitize 1 0 1 1 0 0\n",     /* running but not in progress */
		"nvemu-subsys 1\nsanitize 1 0 2 1 0 0\n",     /* running Exit Failure Mode */
		"nvemu-subsys 1\nsanitize 0 0 10000 0 0 0\n", /* SSTAT over 16 bits */
		"nvemu-subsys 1\nsanitize 0 0 0 0 0 20\n",    /* passes over 5 bits */
		"nvemu-subsys 1\nsanitize 0 0 0 0 0 0 \n",    /* trailing */
		"nvemu-subsys 1\nsanitize 0 2 0 0 0 0\n",
		"nvemu-subsys 1\nsanitize 0 0 A 0 0 0\n",
	};
	struct tu_env *env = *state;
	struct nvemu_error err = {0};
	char path[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_state(bad[i]);
		assert_int_equal(nvemu_subsys_set_state_file(env->subsys, state_path, &err),
				 -EINVAL);
		assert_non_null(strstr(err.msg, "state_file"));
		assert_null(nvemu_subsys_state_file(env->subsys));
	}
	snprintf(path, sizeof(path), "%s/none/x", state_dir);
	assert_int_equal(nvemu_subsys_set_state_file(env->subsys, path, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "directory"));
}

/* Once started a sanitize must outlive a power loss: one that could not be recorded does not start.
 */
static void test_state_file_unwritable(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_error err = {0};
	uint8_t data[512];

	fill(env, 1, 0x77);
	assert_int_equal(nvemu_subsys_set_state_file(env->subsys, state_path, &err), 0);
	assert_int_equal(unlink(state_path), 0);
	assert_int_equal(rmdir(state_dir), 0);
	assert_status(sanitize(env, NVME_SANITIZE_SANACT_START_BLOCK_ERASE, 0),
		      NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
	assert_int_equal(le16toh(sanitize_log(env)->sstat),
			 NVME_SANITIZE_SSTAT_STATUS_NEVER_SANITIZED);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 1, data, sizeof(data)));
	assert_int_equal(first_byte(env, 1, 0), 0x77);
	assert_int_equal(mkdir(state_dir, 0700), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identify_and_logs, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_bad_fields, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_block_erase, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_overwrite_pattern, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_in_progress, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_read_only, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_keeps_log, state_setup,
						state_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_failure_mode, state_setup,
						state_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_resumes, state_setup,
						state_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_refused, state_setup,
						state_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_unwritable, state_setup,
						state_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

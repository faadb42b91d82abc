/* SPDX-License-Identifier: MIT */
/* Firmware Image Download / Firmware Commit through the host. */
#include <stdlib.h>

#include "test-util.h"

#define SC_DNR(sc)		     (NVEMU_SC_CMD(sc) | NVEMU_DNR)
#define GEN_DNR(sc)		     (NVEMU_SC_GENERIC(sc) | NVEMU_DNR)
/* Exact status including DNR, and the command's Error Information log entry. */
#define assert_status_dnr(got, want) tu_assert_failed(env, (got), (want))

/* Commit actions */
#define CA_REPLACE     0
#define CA_REPLACE_ACT 1
#define CA_ACTIVATE    2
#define CA_NOW	       3

#define NEEDS_RESET NVEMU_SC_CMD(NVME_SC_FW_NEEDS_RESET)

static uint16_t fw_download(struct tu_env *env, uint32_t off, const void *data, uint32_t len)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_fw_download};

	cmd.cdw10 = len / 4 - 1;
	cmd.cdw11 = off / 4;
	return tu_admin(env, &cmd, (void *)data, len, NULL);
}

static uint16_t fw_commit(struct tu_env *env, unsigned fs, unsigned ca)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_fw_commit};

	cmd.cdw10 = fs | ca << 3;
	return tu_admin(env, &cmd, NULL, 0, NULL);
}

/* An nvemu image: the revision, then a body; downloaded in 3 pieces. */
static void download_image(struct tu_env *env, const char rev[8])
{
	uint8_t *img = malloc(12288);

	assert_non_null(img);
	for (unsigned i = 0; i < 12288; i++)
		img[i] = (uint8_t)(i * 7);
	memcpy(img, rev, 8);
	assert_success(fw_download(env, 0, img, 4096));
	assert_success(fw_download(env, 4096, img + 4096, 4096));
	assert_success(fw_download(env, 8192, img + 8192, 4096));
	assert_int_equal(env->ctrl->fw.image_len, 12288);
	free(img);
}

static void get_fr(struct tu_env *env, char fr[8])
{
	struct nvme_id_ctrl *id = calloc(1, sizeof(*id));

	assert_non_null(id);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));
	memcpy(fr, id->fr, 8);
	free(id);
}

static void get_slots(struct tu_env *env, struct nvme_firmware_slot *log)
{
	memset(log, 0, sizeof(*log));
	assert_success(
		tu_get_log(env, NVME_LOG_LID_FW_SLOT, NVEMU_NSID_ALL, 0, false, log, sizeof(*log)));
}

static void assert_fr(struct tu_env *env, const char *want)
{
	char fr[8];

	get_fr(env, fr);
	assert_memory_equal(fr, want, 8);
}

static void reset(struct tu_env *env)
{
	assert_int_equal(nvemu_host_shutdown(env->host), 0);
	assert_int_equal(nvemu_host_enable(env->host), 0);
}

static void test_initial(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ctrl *id = calloc(1, sizeof(*id));
	struct nvme_firmware_slot log;
	char want[8];

	assert_non_null(id);
	nvemu_strpad(want, 8, env->subsys->fr);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));
	assert_memory_equal(id->fr, want, 8);
	/* slot 1 read-only, 4 slots (the default), activation without reset */
	assert_int_equal(id->frmw, 1 | 4 << 1 | 1 << 4);
	get_slots(env, &log);
	assert_int_equal(log.afi, 1);
	assert_memory_equal(log.frs[0], want, 8);
	for (unsigned i = 1; i < 7; i++)
		assert_true(log.frs[i][0] == 0);
	free(id);
}

static void test_commit_replace(void **state)
{
	struct tu_env *env = *state;
	struct nvme_firmware_slot log;
	char orig[8];

	get_fr(env, orig);
	download_image(env, "NVEMU002");
	assert_success(fw_commit(env, 2, CA_REPLACE));
	assert_int_equal(env->ctrl->fw.image_len, 0); /* the image is consumed */
	get_slots(env, &log);
	assert_int_equal(log.afi, 1);
	assert_memory_equal(log.frs[1], "NVEMU002", 8);
	assert_fr(env, orig);
	/* not activated by a reset either */
	reset(env);
	assert_fr(env, orig);
	/* a second commit has no image left */
	assert_status_dnr(fw_commit(env, 2, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_IMAGE));
}

static void test_commit_replace_activate(void **state)
{
	struct tu_env *env = *state;
	struct nvme_firmware_slot log;
	char orig[8];
	uint16_t st;

	get_fr(env, orig);
	download_image(env, "NVEMU003");
	st = fw_commit(env, 3, CA_REPLACE_ACT);
	assert_int_equal(st, NEEDS_RESET); /* success with info, no DNR */
	get_slots(env, &log);
	assert_int_equal(log.afi, 1 | 3 << 4);
	assert_memory_equal(log.frs[2], "NVEMU003", 8);
	assert_fr(env, orig);

	reset(env);
	assert_fr(env, "NVEMU003");
	get_slots(env, &log);
	assert_int_equal(log.afi, 3);

	/* CA 2: back to slot 1 at the next reset */
	assert_int_equal(fw_commit(env, 1, CA_ACTIVATE), NEEDS_RESET);
	get_slots(env, &log);
	assert_int_equal(log.afi, 3 | 1 << 4);
	assert_fr(env, "NVEMU003");
	reset(env);
	assert_fr(env, orig);
	get_slots(env, &log);
	assert_int_equal(log.afi, 1);
}

static void test_commit_activate(void **state)
{
	struct tu_env *env = *state;
	struct nvme_firmware_slot log;

	/* CA 2 needs a slot holding an image */
	assert_status_dnr(fw_commit(env, 2, CA_ACTIVATE), SC_DNR(NVME_SC_FIRMWARE_IMAGE));
	assert_status_dnr(fw_commit(env, 0, CA_ACTIVATE), SC_DNR(NVME_SC_FIRMWARE_SLOT));
	/* the running slot: nothing to do */
	assert_success(fw_commit(env, 1, CA_ACTIVATE));
	get_slots(env, &log);
	assert_int_equal(log.afi, 1);

	download_image(env, "NVEMU-2A");
	assert_success(fw_commit(env, 2, CA_REPLACE));
	assert_int_equal(fw_commit(env, 2, CA_ACTIVATE), NEEDS_RESET);
	reset(env);
	assert_fr(env, "NVEMU-2A");
	get_slots(env, &log);
	assert_int_equal(log.afi, 2);
}

static void aer_done(struct nvemu_req *req)
{
	*(bool *)req->transport_priv = true;
}

static void test_commit_now(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_req aer;
	struct nvme_firmware_slot log;
	bool done = false;
	char orig[8];

	get_fr(env, orig);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 1u << 9, NULL));
	memset(&aer, 0, sizeof(aer));
	aer.cmd.opc = nvme_admin_async_event;
	aer.done = aer_done;
	aer.transport_priv = &done;
	nvemu_host_submit(env->host, 0, &aer);
	assert_false(done);

	download_image(env, "NVEMU004");
	/* FS 0: the controller picks a slot (the first empty writable one, 2) */
	assert_success(fw_commit(env, 0, CA_NOW));
	assert_fr(env, "NVEMU004");
	assert_true(done);
	assert_int_equal(aer.cqe.status, 0);
	assert_int_equal(aer.cqe.dw0, NVME_AER_NOTICE | NVME_AER_NOTICE_FW_ACT_STARTING << 8 |
					      NVME_LOG_LID_FW_SLOT << 16);
	get_slots(env, &log);
	assert_int_equal(log.afi, 2);
	assert_memory_equal(log.frs[1], "NVEMU004", 8);
	/* survives a reset */
	reset(env);
	assert_fr(env, "NVEMU004");

	/* CA 3 without a downloaded image activates what the slot holds */
	assert_success(fw_commit(env, 1, CA_NOW));
	assert_fr(env, orig);
	assert_status_dnr(fw_commit(env, 4, CA_NOW), SC_DNR(NVME_SC_FIRMWARE_IMAGE));
	assert_status_dnr(fw_commit(env, 0, CA_NOW), SC_DNR(NVME_SC_FIRMWARE_SLOT));

	/* FS 0 again: slot 3 is the next empty one */
	download_image(env, "NVEMU005");
	assert_success(fw_commit(env, 0, CA_REPLACE));
	get_slots(env, &log);
	assert_memory_equal(log.frs[2], "NVEMU005", 8);
	assert_int_equal(log.afi, 1);
}

static void test_commit_invalid(void **state)
{
	struct tu_env *env = *state;
	struct nvme_firmware_slot log;
	uint8_t img[64];
	char orig[8];

	get_fr(env, orig);
	/* no image downloaded */
	assert_status_dnr(fw_commit(env, 2, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_IMAGE));
	assert_status_dnr(fw_commit(env, 2, CA_REPLACE_ACT), SC_DNR(NVME_SC_FIRMWARE_IMAGE));
	/* slots beyond the 4 the controller has */
	assert_status_dnr(fw_commit(env, 5, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_SLOT));
	assert_status_dnr(fw_commit(env, 7, CA_ACTIVATE), SC_DNR(NVME_SC_FIRMWARE_SLOT));
	/* reserved and boot partition actions */
	for (unsigned ca = 4; ca < 8; ca++)
		assert_status_dnr(fw_commit(env, 2, ca), GEN_DNR(NVME_SC_INVALID_FIELD));

	/* slot 1 is read-only */
	download_image(env, "NVEMU009");
	assert_status_dnr(fw_commit(env, 1, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_SLOT));
	assert_status_dnr(fw_commit(env, 1, CA_REPLACE_ACT), SC_DNR(NVME_SC_FIRMWARE_SLOT));
	assert_status_dnr(fw_commit(env, 1, CA_NOW), SC_DNR(NVME_SC_FIRMWARE_SLOT));
	assert_status_dnr(fw_commit(env, 5, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_SLOT));
	/* the image survived the refused commits */
	assert_success(fw_commit(env, 4, CA_REPLACE));

	/* bad images: non-printable revision, leading space, too short */
	memset(img, 'A', sizeof(img));
	img[3] = 0x01;
	assert_success(fw_download(env, 0, img, sizeof(img)));
	assert_status_dnr(fw_commit(env, 2, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_IMAGE));
	/* consumed: nothing left to commit */
	assert_status_dnr(fw_commit(env, 2, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_IMAGE));
	memset(img, 'A', sizeof(img));
	img[0] = ' ';
	assert_success(fw_download(env, 0, img, sizeof(img)));
	assert_status_dnr(fw_commit(env, 2, CA_NOW), SC_DNR(NVME_SC_FIRMWARE_IMAGE));
	memset(img, 'A', sizeof(img));
	img[7] = 0x80;
	assert_success(fw_download(env, 0, img, sizeof(img)));
	assert_status_dnr(fw_commit(env, 2, CA_REPLACE_ACT), SC_DNR(NVME_SC_FIRMWARE_IMAGE));
	memcpy(img, "SHORT", 5);
	assert_success(fw_download(env, 0, img, 4));
	assert_status_dnr(fw_commit(env, 2, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_IMAGE));

	get_slots(env, &log);
	assert_int_equal(log.afi, 1);
	assert_true(log.frs[1][0] == 0);
	assert_memory_equal(log.frs[3], "NVEMU009", 8);
	assert_fr(env, orig);
}

static void test_download_invalid(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_fw_download};
	uint8_t img[4096];
	struct nvme_firmware_slot log;

	memset(img, 'B', sizeof(img));
	assert_success(fw_download(env, 0, img, 1024));
	/* overlap */
	assert_status_dnr(fw_download(env, 512, img, 1024), SC_DNR(NVME_SC_OVERLAPPING_RANGE));
	assert_status_dnr(fw_download(env, 1020, img, 8), SC_DNR(NVME_SC_OVERLAPPING_RANGE));
	/* gap */
	assert_status_dnr(fw_download(env, 2048, img, 1024), GEN_DNR(NVME_SC_INVALID_FIELD));
	assert_int_equal(env->ctrl->fw.image_len, 1024);
	/* beyond the 16 MiB image limit */
	cmd.cdw10 = 0;
	cmd.cdw11 = (16u << 20) / 4;
	assert_status_dnr(tu_admin(env, &cmd, img, 4, NULL), GEN_DNR(NVME_SC_INVALID_FIELD));
	cmd.cdw10 = 0xffffffff;
	cmd.cdw11 = 0xffffffff;
	assert_status_dnr(tu_admin(env, &cmd, img, sizeof(img), NULL),
			  GEN_DNR(NVME_SC_INVALID_FIELD));
	/* host buffer smaller than NUMD says */
	cmd.cdw10 = 2047;
	cmd.cdw11 = 1024 / 4;
	tu_assert_failed(env, tu_admin(env, &cmd, img, 4096, NULL),
			 NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
	assert_int_equal(env->ctrl->fw.image_len, 1024);
	/* the next piece still fits */
	assert_success(fw_download(env, 1024, img, 1024));
	assert_int_equal(env->ctrl->fw.image_len, 2048);

	/* offset 0 restarts the download */
	memcpy(img, "NVEMU-RS", 8);
	assert_success(fw_download(env, 0, img, 16));
	assert_int_equal(env->ctrl->fw.image_len, 16);
	assert_success(fw_commit(env, 3, CA_REPLACE));
	get_slots(env, &log);
	assert_memory_equal(log.frs[2], "NVEMU-RS", 8);
}

/* A controller with only the read-only slot cannot take any image. */
static void test_single_slot(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl_params cp;
	struct nvemu_error err = {0};
	struct tu_env env2 = {.subsys = env->subsys};
	struct nvme_id_ctrl *id = calloc(1, sizeof(*id));
	uint16_t cntlid;

	assert_non_null(id);
	nvemu_ctrl_params_init(&cp);
	cp.port_id = env->subsys->ports[0].id;
	cp.fw_slots = 1;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->subsys, &cp, &cntlid, &err), 0);
	env2.ctrl = nvemu_subsys_ctrl(env->subsys, cntlid);
	assert_int_equal(nvemu_host_create(env2.ctrl, &env2.host, &err), 0);
	assert_int_equal(nvemu_host_enable(env2.host), 0);

	assert_success(tu_identify(&env2, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));
	assert_int_equal(id->frmw, 1 | 1 << 1 | 1 << 4);
	download_image(&env2, "NVEMU-X1");
	tu_assert_failed(&env2, fw_commit(&env2, 0, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_SLOT));
	tu_assert_failed(&env2, fw_commit(&env2, 2, CA_REPLACE), SC_DNR(NVME_SC_FIRMWARE_SLOT));
	assert_success(fw_commit(&env2, 1, CA_ACTIVATE));
	/* the other controller's slots are its own */
	assert_int_equal(env->ctrl->fw.image_len, 0);
	nvemu_host_destroy(env2.host);
	free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_commit_replace, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_commit_replace_activate, tu_setup,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_commit_activate, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_commit_now, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_commit_invalid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_download_invalid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_single_slot, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

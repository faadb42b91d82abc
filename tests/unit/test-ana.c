/* SPDX-License-Identifier: MIT */
/*
 * Asymmetric Namespace Access and per-host namespace masking, through the
 * in-process host: Identify fields, the ANA log page (with and without RGO),
 * the ANA Change event, the Path Related statuses of I/O, and namespaces
 * that only listed hosts see.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-util.h"

#define HOST1 "nqn.2014-08.org.nvmexpress:uuid:11111111-1111-1111-1111-111111111111"
#define HOST2 "nqn.2014-08.org.nvmexpress:uuid:22222222-2222-2222-2222-222222222222"

static uint16_t port_of(struct tu_env *env)
{
	return env->ctrl->p.port_id;
}

/* The fixture with ANA reporting on (the controller exists already, so set it directly). */
static int setup_ana(void **state)
{
	int r = tu_setup(state);
	struct tu_env *env = *state;

	env->subsys->ana_reporting = true;
	return r;
}

static void aer_done(struct nvemu_req *req)
{
	*(bool *)req->transport_priv = true;
}

static void aer_submit(struct tu_env *env, struct nvemu_req *aer, bool *done)
{
	memset(aer, 0, sizeof(*aer));
	aer->cmd.opc = nvme_admin_async_event;
	aer->transport_priv = done;
	aer->done = aer_done;
	*done = false;
	nvemu_host_submit(env->host, 0, aer);
}

static uint16_t get_ana_log(struct tu_env *env, bool rgo, bool rae, void *buf, uint32_t len)
{
	struct nvemu_sqe cmd;
	uint32_t numd = len / 4 - 1;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_get_log_page;
	cmd.nsid = NVEMU_NSID_ALL;
	cmd.cdw10 = NVME_LOG_LID_ANA | (rgo ? 1u : 0u) << 8 | (rae ? 1u : 0u) << 15 |
		    (numd & 0xffff) << 16;
	cmd.cdw11 = numd >> 16;
	return tu_admin(env, &cmd, buf, len, NULL);
}

static void test_identify(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ctrl idc;
	struct nvme_id_ns idn;

	/* Off: nothing advertised, and the log page does not exist. */
	env->subsys->ana_reporting = false;
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, &idc));
	assert_false(idc.cmic & NVME_CTRL_CMIC_MULTI_ANA_REPORTING);
	assert_int_equal(idc.anacap, 0);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS, 1, 0, &idn));
	assert_int_equal(le32toh(idn.anagrpid), 0);
	{
		uint8_t log[4096];
		uint16_t st = get_ana_log(env, false, false, log, sizeof(log));

		assert_status(st, NVEMU_SC_CMD(NVME_SC_INVALID_LOG_PAGE));
	}

	env->subsys->ana_reporting = true;
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, &idc));
	assert_true(idc.cmic & NVME_CTRL_CMIC_MULTI_ANA_REPORTING);
	assert_true(idc.cmic & NVME_CTRL_CMIC_MULTI_CTRL);
	assert_true(le32toh(idc.oaes) & NVME_CTRL_OAES_ANA);
	assert_int_equal(idc.anatt, NVEMU_ANATT_S);
	assert_int_equal(idc.anacap & 0x1f, 0x1f);
	assert_int_equal(le32toh(idc.anagrpmax), NVEMU_ANAGRPMAX);
	assert_int_equal(le32toh(idc.nanagrpid), NVEMU_ANAGRPMAX);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS, 1, 0, &idn));
	assert_int_equal(le32toh(idn.anagrpid), 1); /* the NSID by default */
	assert_true(idn.nmic & NVME_NS_NMIC_SHARED);
	assert_int_equal(nvemu_ns_anagrpid(env->subsys, 2), 2);
}

static void test_log_page(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ns_params p;
	struct nvemu_error err;
	uint8_t log[4096];
	struct nvme_ana_log *hdr = (struct nvme_ana_log *)log;
	struct nvme_ana_group_desc *d;
	uint32_t nsid;

	/* Namespace 3 in group 1 with namespace 1; namespace 2 (group 2) is attached too. */
	nvemu_ns_params_init(&p);
	p.nblocks = 64;
	p.anagrpid = 1;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &p, &nsid, &err), 0);
	assert_int_equal(nsid, 3);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 3, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 2, &err), 0);
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 2, NVEMU_ANA_NON_OPTIMIZED, &err),
		0);

	memset(log, 0xaa, sizeof(log));
	assert_success(get_ana_log(env, false, false, log, sizeof(log)));
	assert_int_equal(le64toh(hdr->chgcnt), 1);
	assert_int_equal(le16toh(hdr->ngrps), 2);
	d = hdr->descs;
	assert_int_equal(le32toh(d->grpid), 1);
	assert_int_equal(le32toh(d->nnsids), 2);
	assert_int_equal(d->state, NVME_ANA_STATE_OPTIMIZED);
	assert_int_equal(le32toh(d->nsids[0]), 1);
	assert_int_equal(le32toh(d->nsids[1]), 3);
	d = (struct nvme_ana_group_desc *)((uint8_t *)d + sizeof(*d) + 2 * 4);
	assert_int_equal(le32toh(d->grpid), 2);
	assert_int_equal(le32toh(d->nnsids), 1);
	assert_int_equal(le64toh(d->chgcnt), 1);
	assert_int_equal(d->state, NVME_ANA_STATE_NONOPTIMIZED);
	assert_int_equal(le32toh(d->nsids[0]), 2);
	/* past the log: zeroes */
	assert_int_equal(((uint8_t *)d)[sizeof(*d) + 4], 0);

	/* RGO: the groups without their NSID lists. */
	memset(log, 0xaa, sizeof(log));
	assert_success(get_ana_log(env, true, false, log, sizeof(log)));
	assert_int_equal(le16toh(hdr->ngrps), 2);
	d = hdr->descs;
	assert_int_equal(le32toh(d->grpid), 1);
	assert_int_equal(le32toh(d->nnsids), 0);
	d = (struct nvme_ana_group_desc *)((uint8_t *)d + sizeof(*d));
	assert_int_equal(le32toh(d->grpid), 2);
	assert_int_equal(d->state, NVME_ANA_STATE_NONOPTIMIZED);

	/* An odd NSID count: the next descriptor starts at a 4-byte boundary only. */
	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, 3, &err), 0);
	memset(log, 0xaa, sizeof(log));
	assert_success(get_ana_log(env, false, false, log, sizeof(log)));
	{
		uint32_t v;
		size_t second = sizeof(*hdr) + sizeof(*d) + 4;

		memcpy(&v, log + sizeof(*hdr) + 4, 4);
		assert_int_equal(le32toh(v), 1); /* group 1: one NSID */
		memcpy(&v, log + second, 4);
		assert_int_equal(le32toh(v), 2); /* group 2 right after it */
		assert_int_equal(log[second + 16], NVME_ANA_STATE_NONOPTIMIZED);
		memcpy(&v, log + second + sizeof(*d), 4);
		assert_int_equal(le32toh(v), 2);
	}

	/* LSP bits other than RGO are reserved. */
	{
		struct nvemu_sqe cmd;

		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_admin_get_log_page;
		cmd.cdw10 = NVME_LOG_LID_ANA | 2u << 8 | 1023u << 16;
		tu_expect_error(env, 0, &cmd, log, sizeof(log),
				NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
	}
	/* Supported Log Pages lists it. */
	{
		struct nvme_supported_log_pages sl;

		assert_success(tu_get_log(env, NVME_LOG_LID_SUPPORTED_LOG_PAGES, 0, 0, false, &sl,
					  sizeof(sl)));
		assert_true(le32toh(sl.lid_support[NVME_LOG_LID_ANA]) & 1);
	}
}

static void test_io_status(void **state)
{
	struct tu_env *env = *state;
	static const struct {
		enum nvemu_ana_state st;
		uint16_t want;
	} cases[] = {
		{NVEMU_ANA_INACCESSIBLE, NVEMU_STATUS(NVME_SCT_PATH, NVME_SC_ANA_INACCESSIBLE)},
		{NVEMU_ANA_PERSISTENT_LOSS, NVEMU_STATUS(NVME_SCT_PATH, NVME_SC_ANA_PERSISTENT_LOSS)},
		{NVEMU_ANA_CHANGE, NVEMU_STATUS(NVME_SCT_PATH, NVME_SC_ANA_TRANSITION)},
	};
	struct nvemu_error err;
	uint8_t buf[512];
	struct nvme_id_ctrl idc;

	assert_success(tu_rw(env, nvme_cmd_write, 1, 0, 1, buf, sizeof(buf)));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nvemu_sqe cmd;
		uint16_t st;

		assert_int_equal(nvemu_port_set_ana_state(env->subsys, port_of(env), 1, cases[i].st,
							  &err),
				 0);
		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_cmd_read;
		cmd.nsid = 1;
		st = tu_expect_error(env, 1, &cmd, buf, sizeof(buf), cases[i].want);
		/* No DNR: the host retries on another path. */
		assert_false(st & NVEMU_DNR);
		/* Admin commands still work through this path. */
		assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, &idc));
	}
	/* Non-optimized still serves I/O; another group's state does not matter. */
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 1, NVEMU_ANA_NON_OPTIMIZED, &err),
		0);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 1, buf, sizeof(buf)));
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 2, NVEMU_ANA_INACCESSIBLE, &err),
		0);
	assert_success(tu_rw(env, nvme_cmd_write, 1, 0, 1, buf, sizeof(buf)));
	/* 0: every group. */
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 0, NVEMU_ANA_OPTIMIZED, &err), 0);
	{
		enum nvemu_ana_state st;

		assert_int_equal(nvemu_port_get_ana_state(env->subsys, port_of(env), 2, &st), 0);
		assert_int_equal(st, NVEMU_ANA_OPTIMIZED);
		assert_int_equal(nvemu_port_get_ana_state(env->subsys, port_of(env), 33, &st),
				 -ENOENT);
	}
}

static void test_change_event(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_error err;
	struct nvemu_req aer;
	bool done;
	uint8_t log[4096];
	struct nvme_ana_log *hdr = (struct nvme_ana_log *)log;

	/* Masked by default (Asynchronous Event Configuration bit 11 clear). */
	aer_submit(env, &aer, &done);
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 1, NVEMU_ANA_INACCESSIBLE, &err),
		0);
	assert_false(done);

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 1u << 11, NULL));
	/* A group no attached namespace is in: no event. */
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 5, NVEMU_ANA_INACCESSIBLE, &err),
		0);
	assert_false(done);
	/* The same state again is no change. */
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 1, NVEMU_ANA_INACCESSIBLE, &err),
		0);
	assert_false(done);
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 1, NVEMU_ANA_OPTIMIZED, &err), 0);
	assert_true(done);
	assert_int_equal(aer.cqe.status, 0);
	assert_int_equal(aer.cqe.dw0, NVME_AER_NOTICE | NVME_AER_NOTICE_ANA << 8 |
					      NVME_LOG_LID_ANA << 16);

	/* Until the log is read (without RAE) the next change is not reported. */
	aer_submit(env, &aer, &done);
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 1, NVEMU_ANA_CHANGE, &err), 0);
	assert_false(done);
	assert_success(get_ana_log(env, false, true, log, sizeof(log)));
	assert_false(done);
	assert_success(get_ana_log(env, false, false, log, sizeof(log)));
	assert_true(done); /* the pending change, now unmasked */
	assert_int_equal(le64toh(hdr->chgcnt), 4);
	assert_int_equal(hdr->descs[0].state, NVME_ANA_STATE_CHANGE);
}

static void test_api_errors(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_error err;
	struct nvemu_ns_params p;
	enum nvemu_ana_state st;

	assert_int_equal(nvemu_port_set_ana_state(env->subsys, 99, 1, NVEMU_ANA_OPTIMIZED, &err),
			 -ENOENT);
	assert_int_equal(nvemu_port_set_ana_state(env->subsys, port_of(env), 33,
						  NVEMU_ANA_OPTIMIZED, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "anagrpid"));
	assert_int_equal(nvemu_port_set_ana_state(env->subsys, port_of(env), 1,
						  (enum nvemu_ana_state)7, &err),
			 -EINVAL);
	env->subsys->ana_reporting = false;
	assert_int_equal(
		nvemu_port_set_ana_state(env->subsys, port_of(env), 1, NVEMU_ANA_OPTIMIZED, &err),
		-EPERM);
	/* Hosts read CMIC once: no switching under a controller. */
	assert_int_equal(nvemu_subsys_set_ana_reporting(env->subsys, true, &err), -EBUSY);
	nvemu_ns_params_init(&p);
	p.nblocks = 8;
	p.anagrpid = NVEMU_ANAGRPMAX + 1;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &p, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "anagrpid"));

	assert_int_equal(nvemu_ana_state_parse("NON_OPTIMIZED", &st), 0);
	assert_int_equal(st, NVEMU_ANA_NON_OPTIMIZED);
	assert_int_equal(nvemu_ana_state_parse("bogus", &st), -EINVAL);
	assert_string_equal(nvemu_ana_state_name(NVEMU_ANA_PERSISTENT_LOSS), "persistent_loss");
}

/* ---- masking */

static uint32_t add_masked_ns(struct tu_env *env)
{
	struct nvemu_ns_params p;
	struct nvemu_error err;
	uint32_t nsid;

	nvemu_ns_params_init(&p);
	p.nblocks = 64;
	p.no_auto_visible = true;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &p, &nsid, &err), 0);
	return nsid;
}

static bool in_active_list(struct tu_env *env, uint32_t nsid)
{
	uint32_t list[1024];

	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, 0, list));
	for (unsigned i = 0; i < 1024 && list[i]; i++)
		if (le32toh(list[i]) == nsid)
			return true;
	return false;
}

static void test_mask(void **state)
{
	struct tu_env *env = *state;
	static const uint8_t hostid[16] = {1};
	struct nvemu_error err;
	struct nvemu_req aer;
	struct nvme_id_ns idn;
	uint8_t buf[512], zero[sizeof(idn)] = {0};
	uint32_t nsid;
	bool done;

	/* A fabrics host: this controller belongs to HOST1. */
	nvemu_ctrl_set_host(env->ctrl, HOST1, hostid);
	nsid = add_masked_ns(env);
	assert_false(nvemu_ns_auto_visible(env->subsys, nsid));
	assert_false(nvemu_ns_visible(env->subsys, nsid, HOST1));
	assert_true(nvemu_ns_visible(env->subsys, nsid, "")); /* PCIe, no host NQN */
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, nsid, &err), -EPERM);
	assert_false(in_active_list(env, nsid));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS, nsid, 0, &idn));
	assert_memory_equal(&idn, zero, sizeof(idn));
	{
		struct nvemu_sqe cmd;

		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_cmd_read;
		cmd.nsid = nsid;
		tu_expect_error(env, 1, &cmd, buf, sizeof(buf),
				NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR);
	}

	/* Nor through the Namespace Attachment command. */
	{
		struct nvme_ctrl_list cl;
		struct nvemu_sqe cmd;

		memset(&cl, 0, sizeof(cl));
		cl.num = htole16(1);
		cl.identifier[0] = htole16(nvemu_ctrl_cntlid(env->ctrl));
		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_admin_ns_attach;
		cmd.nsid = nsid;
		tu_expect_error(env, 0, &cmd, &cl, sizeof(cl),
				NVEMU_SC_CMD(NVME_SC_CTRL_LIST_INVALID) | NVEMU_DNR);
		assert_false(in_active_list(env, nsid));
	}

	/* Adding HOST2 changes nothing for HOST1. */
	assert_int_equal(nvemu_ns_add_host(env->subsys, nsid, HOST2, &err), 0);
	assert_false(in_active_list(env, nsid));
	assert_string_equal(nvemu_ns_get_host(env->subsys, nsid, 0), HOST2);

	/* Adding HOST1 attaches it here with Namespace Attribute Changed. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 1u << 8, NULL));
	aer_submit(env, &aer, &done);
	assert_int_equal(nvemu_ns_add_host(env->subsys, nsid, HOST1, &err), 0);
	assert_true(done);
	assert_int_equal(aer.cqe.dw0, NVME_AER_NOTICE | NVME_AER_NOTICE_NS_CHANGED << 8 |
					      NVME_LOG_LID_CHANGED_NS << 16);
	assert_true(in_active_list(env, nsid));
	assert_success(tu_rw(env, nvme_cmd_write, nsid, 0, 1, buf, sizeof(buf)));
	assert_int_equal(nvemu_ns_add_host(env->subsys, nsid, HOST1, &err), -EEXIST);
	{
		uint32_t changed[1024];

		assert_success(tu_get_log(env, NVME_LOG_LID_CHANGED_NS, 0, 0, false, changed,
					  sizeof(changed)));
		assert_int_equal(le32toh(changed[0]), nsid);
	}

	/* Removing it detaches it, with the event again. */
	aer_submit(env, &aer, &done);
	assert_int_equal(nvemu_ns_remove_host(env->subsys, nsid, HOST1, &err), 0);
	assert_true(done);
	assert_false(in_active_list(env, nsid));
	assert_int_equal(nvemu_ns_remove_host(env->subsys, nsid, HOST1, &err), -ENOENT);
	assert_int_equal(nvemu_ns_remove_host(env->subsys, nsid, HOST2, &err), 0);
	assert_null(nvemu_ns_get_host(env->subsys, nsid, 0));
}

static void test_mask_connect(void **state)
{
	struct tu_env *env = *state;
	static const uint8_t hostid[16] = {2};
	struct nvemu_error err;
	uint32_t nsid = add_masked_ns(env);

	/*
	 * As a fabrics Connect does: every namespace attached first, then the
	 * host NQN set, which takes away what the host may not see.
	 */
	assert_int_equal(nvemu_ns_add_host(env->subsys, nsid, HOST2, &err), 0);
	nvemu_ctrl_detach_ns(env->ctrl, 1, NULL);
	env->ctrl->hostnqn[0] = 0;
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, nsid, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 1, &err), 0);
	nvemu_ctrl_set_host(env->ctrl, HOST1, hostid);
	assert_false(nvemu_ctrl_ns_attached(env->ctrl, nsid));
	assert_true(nvemu_ctrl_ns_attached(env->ctrl, 1));
	nvemu_ctrl_set_host(env->ctrl, HOST2, hostid);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, nsid, &err), 0);

	/* Masking applies only to namespaces created with no_auto_visible. */
	assert_int_equal(nvemu_ns_add_host(env->subsys, 1, HOST1, &err), -EPERM);
	assert_non_null(strstr(err.msg, "no_auto_visible"));
	assert_int_equal(nvemu_ns_add_host(env->subsys, 77, HOST1, &err), -ENOENT);
	assert_int_equal(nvemu_ns_add_host(env->subsys, nsid, "not an nqn", &err), -EINVAL);
	/* Bounded list. */
	for (unsigned i = 1; i < NVEMU_NS_HOSTS_MAX; i++) {
		char h[64];

		snprintf(h, sizeof(h), "nqn.2024-01.io.nvemu:host%u", i);
		assert_int_equal(nvemu_ns_add_host(env->subsys, nsid, h, &err), 0);
	}
	assert_int_equal(nvemu_ns_add_host(env->subsys, nsid, HOST1, &err), -ENOSPC);
	/* The list goes with the namespace (ASan checks the frees). */
	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, nsid, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, nsid, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identify, setup_ana, tu_teardown),
		cmocka_unit_test_setup_teardown(test_log_page, setup_ana, tu_teardown),
		cmocka_unit_test_setup_teardown(test_io_status, setup_ana, tu_teardown),
		cmocka_unit_test_setup_teardown(test_change_event, setup_ana, tu_teardown),
		cmocka_unit_test_setup_teardown(test_api_errors, setup_ana, tu_teardown),
		cmocka_unit_test_setup_teardown(test_mask, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_mask_connect, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

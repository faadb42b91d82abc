/* SPDX-License-Identifier: MIT */
/* The subsystem model: validation, lifecycle, attach/detach and events. */
#include <stdlib.h>

#include "test-util.h"

static struct nvemu_subsys *mk_subsys(const char *nqn)
{
	struct nvemu_subsys_params p;
	struct nvemu_subsys *s = NULL;
	struct nvemu_error err = {0};

	nvemu_subsys_params_init(&p);
	p.nqn = nqn;
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), 0);
	return s;
}

static void nqn_rules(void **state)
{
	struct nvemu_error err = {0};
	char longnqn[300];

	(void)state;
	assert_int_equal(nvemu_nqn_validate("nqn.2022-10.io.nvda.nvme:0", &err), 0);
	assert_int_equal(nvemu_nqn_validate("nqn.2014-08.org.nvmexpress.discovery", &err), 0);
	assert_int_equal(
		nvemu_nqn_validate(
			"nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555",
			&err),
		0);
	assert_int_equal(nvemu_nqn_validate("iqn.2022-10.io.x", &err), -EINVAL);
	assert_string_equal(err.msg, "nqn: must start with \"nqn.\"");
	assert_int_equal(nvemu_nqn_validate("nqn.22-10.io.x", &err), -EINVAL);
	assert_int_equal(nvemu_nqn_validate("nqn.2022-13.io.x", &err), -EINVAL);
	assert_int_equal(nvemu_nqn_validate("nqn.2022-10.", &err), -EINVAL);
	assert_int_equal(nvemu_nqn_validate("nqn.2022-10.io x", &err), -EINVAL);
	assert_int_equal(nvemu_nqn_validate("", &err), -EINVAL);
	assert_string_equal(err.msg, "nqn: required");
	memset(longnqn, 'a', sizeof(longnqn));
	memcpy(longnqn, "nqn.2022-10.io.x:", 17);
	longnqn[224] = 0;
	assert_int_equal(nvemu_nqn_validate(longnqn, &err), -EINVAL);
	assert_string_equal(err.msg, "nqn: at most 223 bytes");
	longnqn[223] = 0;
	assert_int_equal(nvemu_nqn_validate(longnqn, &err), 0);
}

static void subsys_params(void **state)
{
	struct nvemu_subsys_params p;
	struct nvemu_subsys *s = NULL;
	struct nvemu_error err = {0};

	(void)state;
	nvemu_subsys_params_init(&p);
	p.serial = "012345678901234567890"; /* 21 */
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "serial_number: at most 20 characters");
	p.serial = "bad\tserial";
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "serial_number: printable ASCII only");
	p.serial = "S1";
	p.model = "0123456789012345678901234567890123456789X";
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "model_number: at most 40 characters");
	p.model = NULL;
	p.nn = 0;
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), -EINVAL);
	p.nn = 10;
	p.mnan = 11;
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), -EINVAL);
	p.mnan = 10;
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), 0);
	assert_non_null(s);
	assert_true(strncmp(nvemu_subsys_nqn(s), "nqn.2014-08.org.nvmexpress:uuid:", 32) == 0);
	assert_int_equal(nvemu_nqn_validate(nvemu_subsys_nqn(s), NULL), 0);
	nvemu_subsys_destroy(s);
}

static void ports_and_ctrls(void **state)
{
	struct nvemu_subsys *s = mk_subsys("nqn.2024-01.io.nvemu:ports");
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_error err = {0};
	uint16_t pcie, tw, c1, c2;

	(void)state;
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	assert_int_equal(nvemu_subsys_add_port(s, &pp, &pcie, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_TWO_WIRE);
	assert_int_equal(nvemu_subsys_add_port(s, &pp, &tw, &err), 0);
	assert_int_not_equal(pcie, tw);
	pp.two_wire.address = 0x80;
	assert_int_equal(nvemu_subsys_add_port(s, &pp, NULL, &err), -EINVAL);

	assert_int_equal(nvemu_subsys_add_ctrl(s, tw, &c1, &err), -EINVAL);
	assert_int_equal(nvemu_subsys_add_ctrl(s, 99, &c1, &err), -ENOENT);
	assert_int_equal(nvemu_subsys_add_ctrl(s, pcie, &c1, &err), 0);
	assert_int_equal(c1, 1);
	nvemu_ctrl_params_init(&cp);
	cp.port_id = pcie;
	cp.cntlid = 1;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(s, &cp, &c2, &err), -EEXIST);
	cp.cntlid = 0;
	cp.mdts = 8;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(s, &cp, &c2, &err), -EINVAL);
	assert_string_equal(err.msg, "mdts: must be in 1..7");
	cp.mdts = 5;
	cp.num_io_queues = 0;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(s, &cp, &c2, &err), -EINVAL);
	cp.num_io_queues = 8;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(s, &cp, &c2, &err), 0);
	assert_int_equal(c2, 2);
	assert_ptr_equal(nvemu_ctrl_subsys(nvemu_subsys_ctrl(s, 2)), s);

	assert_int_equal(nvemu_subsys_remove_port(s, pcie, &err), -EBUSY);
	assert_int_equal(nvemu_subsys_remove_ctrl(s, 1, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ctrl(s, 1, &err), -ENOENT);
	assert_int_equal(nvemu_subsys_remove_ctrl(s, 2, &err), 0);
	assert_int_equal(nvemu_subsys_remove_port(s, pcie, &err), 0);
	assert_int_equal(nvemu_subsys_remove_port(s, pcie, &err), -ENOENT);
	nvemu_subsys_destroy(s);
}

static void single_ctrl(void **state)
{
	struct nvemu_subsys_params p;
	struct nvemu_port_params pp;
	struct nvemu_subsys *s;
	struct nvemu_error err = {0};
	uint16_t port, c;

	(void)state;
	nvemu_subsys_params_init(&p);
	p.single_ctrl = true;
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_TCP);
	assert_int_equal(nvemu_subsys_add_port(s, &pp, &port, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl(s, port, &c, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl(s, port, &c, &err), -EBUSY);
	nvemu_subsys_destroy(s);
}

/* Gateways of one subsystem hand out disjoint controller ID ranges. */
static void cntlid_range(void **state)
{
	struct nvemu_subsys_params p;
	struct nvemu_port_params pp;
	struct nvemu_subsys *s;
	struct nvemu_error err = {0};
	uint16_t port, c;

	(void)state;
	nvemu_subsys_params_init(&p);
	p.min_cntlid = 9;
	p.max_cntlid = 3;
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "min_cntlid"));
	p.max_cntlid = 0xfff0;
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), -EINVAL);
	p.min_cntlid = 100;
	p.max_cntlid = 101;
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_TCP);
	assert_int_equal(nvemu_subsys_add_port(s, &pp, &port, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl(s, port, &c, &err), 0);
	assert_int_equal(c, 100);
	assert_int_equal(nvemu_subsys_add_ctrl(s, port, &c, &err), 0);
	assert_int_equal(c, 101);
	assert_int_equal(nvemu_subsys_add_ctrl(s, port, &c, &err), -ENOSPC);
	assert_int_equal(nvemu_subsys_remove_ctrl(s, 100, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl(s, port, &c, &err), 0);
	assert_int_equal(c, 100);
	nvemu_subsys_destroy(s);
}

static void namespaces(void **state)
{
	struct nvemu_subsys_params p;
	struct nvemu_ns_params np;
	struct nvemu_subsys *s;
	struct nvemu_error err = {0};
	uint32_t nsid;

	(void)state;
	nvemu_subsys_params_init(&p);
	p.nn = 8;
	p.mnan = 3;
	assert_int_equal(nvemu_subsys_create(&p, &s, &err), 0);
	assert_int_equal(nvemu_subsys_add_ns(s, 1024, &nsid, &err), 0);
	assert_int_equal(nsid, 1);
	nvemu_ns_params_init(&np);
	np.nsid = 5;
	np.nblocks = 16;
	np.lbaf = 1;
	np.has_uuid = true;
	memset(np.uuid, 0xab, 16);
	assert_int_equal(nvemu_subsys_add_ns_ex(s, &np, &nsid, &err), 0);
	assert_int_equal(nsid, 5);
	assert_memory_equal(nvemu_subsys_ns(s, 5)->uuid, np.uuid, 16);
	assert_int_equal(nvemu_ns_lba_size(nvemu_subsys_ns(s, 5)), 4096);
	assert_int_equal(nvemu_subsys_add_ns_ex(s, &np, &nsid, &err), -EEXIST);
	assert_true(strncmp(err.msg, "nsid: 5 is already in use", 25) == 0);
	np.nsid = 9;
	assert_int_equal(nvemu_subsys_add_ns_ex(s, &np, &nsid, &err), -EINVAL);
	assert_string_equal(err.msg, "nsid: must be in 1..8");
	np.nsid = 0;
	np.lbaf = 7;
	assert_int_equal(nvemu_subsys_add_ns_ex(s, &np, &nsid, &err), -EINVAL);
	np.lbaf = 0;
	np.nblocks = 0;
	assert_int_equal(nvemu_subsys_add_ns_ex(s, &np, &nsid, &err), -EINVAL);
	np.nblocks = 8;
	assert_int_equal(nvemu_subsys_add_ns_ex(s, &np, &nsid, &err), 0);
	assert_int_equal(nsid, 2); /* the lowest free NSID */
	/* mnan = 3 reached */
	assert_int_equal(nvemu_subsys_add_ns(s, 8, &nsid, &err), -ENOSPC);
	/* generated identifiers differ between namespaces */
	assert_memory_not_equal(nvemu_subsys_ns(s, 1)->nguid, nvemu_subsys_ns(s, 2)->nguid, 16);
	assert_memory_equal(nvemu_subsys_ns(s, 1)->eui64, p.vendor.ieee_oui, 3);
	assert_int_equal(nvemu_subsys_remove_ns(s, 2, &err), 0);
	assert_null(nvemu_subsys_ns(s, 2));
	assert_int_equal(nvemu_subsys_remove_ns(s, 2, &err), -ENOENT);
	assert_int_equal(nvemu_subsys_resize_ns(s, 1, 2048, &err), 0);
	assert_int_equal(nvemu_subsys_ns(s, 1)->nblocks, 2048);
	assert_int_equal(nvemu_subsys_resize_ns(s, 1, 0, &err), -EINVAL);
	nvemu_subsys_destroy(s);
}

/* Attach/detach/resize on a live controller raise Namespace Attribute Changed. */
static void attach_events(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_error err = {0};
	struct nvemu_ctrl *ctrl = env->ctrl;

	assert_true(nvemu_ctrl_ns_attached(ctrl, 1));
	assert_false(nvemu_ctrl_ns_attached(ctrl, 2));
	/* enable the notice (AEC bit 8) so it is queued */
	ctrl->feat.async_event_cfg |= 1u << 8;
	assert_int_equal(nvemu_ctrl_attach_ns(ctrl, 2, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(ctrl, 2, &err), -EEXIST);
	assert_int_equal(nvemu_ctrl_attach_ns(ctrl, 7, &err), -ENOENT);
	assert_int_equal(ctrl->nr_changed_ns, 1);
	assert_int_equal(ctrl->changed_ns[0], 2);
	assert_int_equal(ctrl->nr_events, 1);
	assert_int_equal(ctrl->events[0].type, NVME_AER_NOTICE);
	assert_int_equal(ctrl->events[0].lid, NVME_LOG_LID_CHANGED_NS);
	/* attached: cannot be removed */
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, 2, &err), -EBUSY);
	assert_int_equal(nvemu_ctrl_detach_ns(ctrl, 2, &err), 0);
	assert_int_equal(nvemu_ctrl_detach_ns(ctrl, 2, &err), -ENOENT);
	assert_int_equal(ctrl->nr_changed_ns, 1); /* the same NSID is listed once */
	assert_int_equal(nvemu_subsys_resize_ns(env->subsys, 1, 4096, &err), 0);
	assert_int_equal(ctrl->nr_changed_ns, 2);
	assert_int_equal(ctrl->changed_ns[1], 1);
	assert_int_equal(ctrl->nr_events, 1); /* one pending notice coalesces */
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, 2, &err), 0);
}

/* An AER outstanding when a namespace is attached completes with the notice. */
static bool aer_done;
static void on_aer(struct nvemu_req *req)
{
	(void)req;
	aer_done = true;
}

static void aer_on_attach(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_error err = {0};
	struct nvemu_req aer = {.cmd = {.opc = nvme_admin_async_event, .cid = 77}, .done = on_aer};

	assert_success(tu_set_feature(env, NVME_FEAT_FID_ASYNC_EVENT, false, 1u << 8, NULL));
	aer_done = false;
	nvemu_host_submit(env->host, 0, &aer);
	assert_false(aer_done);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 2, &err), 0);
	assert_true(aer_done);
	assert_int_equal(aer.cqe.status, 0);
	assert_int_equal(aer.cqe.cid, 77);
	assert_int_equal(aer.cqe.dw0, NVME_AER_NOTICE | 0 << 8 | NVME_LOG_LID_CHANGED_NS << 16);
}

static void vendor_identity(void **state)
{
	struct nvemu_vendor v;
	struct nvemu_error err = {0};
	uint8_t oui[3];
	uint16_t id;

	(void)state;
	assert_int_equal(nvemu_vendor_parse_oui("ac-de-48", oui), 0);
	assert_int_equal(oui[0], 0xac);
	assert_int_equal(oui[2], 0x48);
	assert_int_equal(nvemu_vendor_parse_oui("acde48", oui), -EINVAL);
	assert_int_equal(nvemu_vendor_parse_oui("ac-de-4g", oui), -EINVAL);
	assert_int_equal(nvemu_vendor_parse_id16("ffff", &id), 0);
	assert_int_equal(id, 0xffff);
	assert_int_equal(nvemu_vendor_parse_id16("0x1b36", &id), 0);
	assert_int_equal(id, 0x1b36);
	assert_int_equal(nvemu_vendor_parse_id16("12345", &id), -EINVAL);
	assert_int_equal(nvemu_vendor_parse_id16("", &id), -EINVAL);

	nvemu_vendor_build_default(&v);
	setenv("NVEMU_PCI_VID", "1b36", 1);
	setenv("NVEMU_IEEE_OUI", "00-11-22", 1);
	assert_int_equal(nvemu_vendor_from_env(&v, &err), 0);
	assert_int_equal(v.pci_vid, 0x1b36);
	assert_int_equal(v.ieee_oui[1], 0x11);
	setenv("NVEMU_PCI_SDID", "zzzz", 1);
	assert_int_equal(nvemu_vendor_from_env(&v, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "NVEMU_PCI_SDID: 'zzzz' is not a 16-bit hex value such as ffff");
	unsetenv("NVEMU_PCI_SDID");
	setenv("NVEMU_IEEE_OUI", "nope", 1);
	assert_int_equal(nvemu_vendor_from_env(&v, &err), -EINVAL);
	assert_true(strncmp(err.msg, "NVEMU_IEEE_OUI:", 15) == 0);
	unsetenv("NVEMU_IEEE_OUI");
	unsetenv("NVEMU_PCI_VID");

	v = (struct nvemu_vendor){{0x00, 0x11, 0x22}, 0x1b36, 0x10, 0x1af4, 0x1100};
	assert_false(nvemu_vendor_is_placeholder(&v));
	v.pci_did = 0xffff;
	assert_true(nvemu_vendor_is_placeholder(&v));
	v.pci_did = 0x10;
	v.ieee_oui[0] = 0xac;
	v.ieee_oui[1] = 0xde;
	v.ieee_oui[2] = 0x48;
	assert_true(nvemu_vendor_is_placeholder(&v));
}

/* The seed's NVME_MI_DEV_* names are aliases; NVEMU_* wins when both are set. */
static void vendor_identity_aliases(void **state)
{
	struct nvemu_vendor v;
	struct nvemu_error err = {0};
	char buf[256];

	(void)state;
	nvemu_vendor_build_default(&v);
	setenv("NVME_MI_DEV_IEEE_OUI", "00-aa-bb", 1);
	setenv("NVME_MI_DEV_PCI_DID", "0x1234", 1);
	assert_int_equal(nvemu_vendor_from_env(&v, &err), 0);
	assert_int_equal(v.ieee_oui[1], 0xaa);
	assert_int_equal(v.pci_did, 0x1234);
	assert_int_equal(nvemu_vendor_env_shadowed(buf, sizeof(buf)), 0);
	/* Both set and different: NVEMU_* is used, and the conflict is reported. */
	setenv("NVEMU_PCI_DID", "5678", 1);
	assert_int_equal(nvemu_vendor_from_env(&v, &err), 0);
	assert_int_equal(v.pci_did, 0x5678);
	assert_int_equal(nvemu_vendor_env_shadowed(buf, sizeof(buf)), 1);
	assert_string_equal(buf, "NVME_MI_DEV_PCI_DID (NVEMU_PCI_DID wins)");
	/* A malformed alias names the variable it came from. */
	setenv("NVME_MI_DEV_PCI_SVID", "xyz", 1);
	assert_int_equal(nvemu_vendor_from_env(&v, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "NVME_MI_DEV_PCI_SVID: 'xyz' is not a 16-bit hex value such as ffff");
	unsetenv("NVME_MI_DEV_PCI_SVID");
	unsetenv("NVME_MI_DEV_IEEE_OUI");
	unsetenv("NVME_MI_DEV_PCI_DID");
	unsetenv("NVEMU_PCI_DID");
}

static void health_validation(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_health h;
	struct nvemu_error err = {0};

	nvemu_subsys_get_health(env->subsys, &h);
	assert_int_equal(h.avail_spare, 100);
	h.avail_spare = 101;
	assert_int_equal(nvemu_subsys_set_health(env->subsys, &h, &err), -EINVAL);
	assert_string_equal(err.msg, "available_spare: a percentage, 0..100");
	h.avail_spare = 50;
	h.critical_warning = 0x40;
	assert_int_equal(nvemu_subsys_set_health(env->subsys, &h, &err), -EINVAL);
	h.critical_warning = 0;
	h.temperature_k = 320;
	assert_int_equal(nvemu_subsys_set_health(env->subsys, &h, &err), 0);
	nvemu_subsys_get_health(env->subsys, &h);
	assert_int_equal(h.temperature_k, 320);
	assert_int_equal(h.avail_spare, 50);
}

/* CC/CSTS: enable, invalid CC sets CFS, shutdown reports SHST complete. */
static void registers(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl *ctrl = env->ctrl;
	uint64_t cap = nvemu_ctrl_get_cap(ctrl);

	assert_int_equal(NVME_CAP_MQES(cap), 1023);
	assert_int_equal(NVME_CAP_CQR(cap), 1);
	assert_true(NVME_CAP_CSS(cap) & NVME_CAP_CSS_NVM);
	assert_int_equal(nvemu_ctrl_get_vs(ctrl), 0x00020000);
	assert_false(nvemu_ctrl_get_csts(ctrl) & 1);
	/* MPS beyond MPSMAX: controller fatal status */
	nvemu_ctrl_set_cc(ctrl, 1 | 9u << NVME_CC_MPS_SHIFT);
	assert_int_equal(nvemu_ctrl_get_csts(ctrl) & 3, 2);
	nvemu_ctrl_set_cc(ctrl, 0);
	assert_int_equal(nvemu_host_enable(env->host), 0);
	assert_int_equal(nvemu_ctrl_get_csts(ctrl) & 3, 1);
	assert_int_equal(nvemu_host_shutdown(env->host), 0);
	assert_false(nvemu_ctrl_get_csts(ctrl) & 1);
	/* commands to a disabled controller fail */
	struct nvemu_sqe cmd = {.opc = nvme_admin_keep_alive};
	assert_int_not_equal(tu_admin(env, &cmd, NULL, 0, NULL), 0);
}

/* Suspend holds new commands; resume runs them. */
static void suspend_resume(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_req ka = {.cmd = {.opc = nvme_admin_keep_alive}, .done = on_aer};

	assert_int_equal(nvemu_ctrl_suspend(env->ctrl, false), 0);
	assert_true(nvemu_ctrl_is_suspended(env->ctrl));
	aer_done = false;
	nvemu_host_submit(env->host, 0, &ka);
	assert_false(aer_done);
	nvemu_ctrl_resume(env->ctrl);
	assert_true(aer_done);
	assert_int_equal(ka.cqe.status, 0);
	assert_false(nvemu_ctrl_is_suspended(env->ctrl));
}

static void bad_queue_and_opcode(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = 0x7f};
	uint8_t buf[512];
	uint16_t st;

	st = tu_admin(env, &cmd, NULL, 0, NULL);
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE));
	assert_dnr(st);
	st = nvemu_host_exec(env->host, 3, &(struct nvemu_sqe){.opc = nvme_cmd_read, .nsid = 1},
			     buf, sizeof(buf), NULL);
	assert_status(st, NVEMU_SC_CMD(NVME_SC_QID_INVALID));
	st = nvemu_host_exec(env->host, 1,
			     &(struct nvemu_sqe){.opc = nvme_cmd_read, .nsid = 1, .flags = 1}, buf,
			     sizeof(buf), NULL);
	assert_status(st, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	/* the error log counts them */
	assert_true(env->ctrl->err_count >= 3);
}

/* ---- commands before CC.EN, fabrics transports, transport hooks */

static void count_done(struct nvemu_req *req)
{
	(*(unsigned *)req->transport_priv)++;
}

static void set_flag(void *arg)
{
	*(unsigned *)arg = 1;
}

/* Before CC.EN=1 there is no queue at all: Command Sequence Error, logged, not Invalid QID. */
static void commands_before_enable(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl *ctrl = env->ctrl;
	const uint16_t seq = NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR);
	uint8_t buf[4096];
	uint16_t sqid;

	for (sqid = 0; sqid < 2; sqid++) {
		struct nvemu_sqe cmd = {.opc = sqid ? nvme_cmd_read : nvme_admin_identify,
					.nsid = 1,
					.cid = (uint16_t)(0x100 + sqid)};
		uint64_t before = ctrl->err_count;
		const struct nvme_error_log_page *e;
		struct nvemu_cqe cqe;

		assert_int_equal(nvemu_host_exec(env->host, sqid, &cmd, buf, sizeof(buf), &cqe),
				 seq);
		/* Get Log Page is refused too before CC.EN: read the ring directly. */
		assert_int_equal(ctrl->err_count, before + 1);
		e = &ctrl->errlog[(ctrl->err_count - 1) % NVEMU_ERRLOG_ENTRIES];
		assert_int_equal(le64toh(e->error_count), before + 1);
		assert_int_equal(le16toh(e->sqid), sqid);
		assert_int_equal(le16toh(e->cmdid), cmd.cid);
		assert_int_equal(le16toh(e->status_field), (uint16_t)(seq << 1));
		assert_int_equal(le16toh(e->parm_error_location), 0xffff);
	}
}

static struct {
	unsigned id_ctrl_calls, kato_calls;
	uint32_t kato_ms;
} hooks;

static void fake_id_ctrl(const struct nvemu_ctrl *ctrl, struct nvme_id_ctrl *id)
{
	(void)ctrl;
	hooks.id_ctrl_calls++;
	id->sgls = htole32(0x00100005);
	id->ioccsz = htole32(260);
	id->iorcsz = htole32(1);
}

static void fake_set_kato(struct nvemu_ctrl *ctrl, uint32_t kato_ms)
{
	(void)ctrl;
	hooks.kato_calls++;
	hooks.kato_ms = kato_ms;
}

static const struct nvemu_transport_ops fake_fabrics_ops = {
	.name = "fake-fabrics",
	.fabrics = true,
	.id_ctrl = fake_id_ctrl,
	.set_kato = fake_set_kato,
};

static void bind_fake(struct nvemu_ctrl *ctrl)
{
	struct nvemu_error err = {0};

	/* The fixture's host keeps submitting through the engine: only the ops change. */
	assert_int_equal(nvemu_ctrl_bind_transport(ctrl, NULL, NULL, &err), 0);
	assert_int_equal(nvemu_ctrl_bind_transport(ctrl, &fake_fabrics_ops, NULL, &err), 0);
}

/* Fabrics: no subsystem reset in CAP; CC.IOSQES/IOCQES are checked like on PCIe. */
static void fabrics_cap_and_cc(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl *ctrl = env->ctrl;
	const uint32_t en = 1u << NVME_CC_EN_SHIFT;
	const uint32_t sizes = 6u << NVME_CC_IOSQES_SHIFT | 4u << NVME_CC_IOCQES_SHIFT;

	assert_true(NVME_CAP_NSSRC(nvemu_ctrl_get_cap(ctrl))); /* loop: memory-based */
	bind_fake(ctrl);
	assert_false(NVME_CAP_NSSRC(nvemu_ctrl_get_cap(ctrl)));
	ctrl->aqa = 31 | 31u << 16;
	/* No entry sizes at all (or wrong ones): CSTS.CFS, never ready. */
	nvemu_ctrl_set_cc(ctrl, en);
	assert_int_equal(nvemu_ctrl_get_csts(ctrl) & 3, 2);
	nvemu_ctrl_set_cc(ctrl, 0);
	nvemu_ctrl_set_cc(ctrl, en | 7u << NVME_CC_IOSQES_SHIFT | 4u << NVME_CC_IOCQES_SHIFT);
	assert_int_equal(nvemu_ctrl_get_csts(ctrl) & 3, 2);
	nvemu_ctrl_set_cc(ctrl, 0);
	nvemu_ctrl_set_cc(ctrl, en | 6u << NVME_CC_IOSQES_SHIFT | 5u << NVME_CC_IOCQES_SHIFT);
	assert_int_equal(nvemu_ctrl_get_csts(ctrl) & 3, 2);
	nvemu_ctrl_set_cc(ctrl, 0);
	nvemu_ctrl_set_cc(ctrl, en | sizes);
	assert_int_equal(nvemu_ctrl_get_csts(ctrl) & 3, 1);
	nvemu_ctrl_set_cc(ctrl, 0);
}

/* The transport's Identify fields and keep-alive timer are reached through its ops. */
static void transport_hooks(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ctrl *id = calloc(1, sizeof(*id)), *direct = calloc(1, sizeof(*direct));
	uint32_t dw0 = 0;

	assert_non_null(id);
	assert_non_null(direct);
	memset(&hooks, 0, sizeof(hooks));
	bind_fake(env->ctrl);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));
	assert_int_equal(hooks.id_ctrl_calls, 1);
	assert_int_equal(le32toh(id->sgls), 0x00100005);
	assert_int_equal(le32toh(id->ioccsz), 260);
	/* NVMe-MI builds the same structure: it must read the same limits. */
	nvemu_fill_id_ctrl(env->ctrl, direct);
	assert_memory_equal(id, direct, sizeof(*id));

	assert_success(tu_set_feature(env, NVME_FEAT_FID_KATO, false, 5000, NULL));
	assert_int_equal(hooks.kato_calls, 1);
	assert_int_equal(hooks.kato_ms, 5000);
	assert_success(tu_get_feature(env, NVME_FEAT_FID_KATO, 0, 0, &dw0));
	assert_int_equal(dw0, 5000);
	assert_success(tu_set_feature(env, NVME_FEAT_FID_KATO, false, 0, NULL));
	assert_int_equal(hooks.kato_calls, 2);
	assert_int_equal(hooks.kato_ms, 0);
	free(id);
	free(direct);
}

/* A management controller's tunnelled command gets an answer even while suspended. */
static void oob_while_suspended(void **state)
{
	struct tu_env *env = *state;
	unsigned done = 0, held_done = 0;
	struct nvemu_req oob = {
		.cmd = {.opc = nvme_admin_get_features, .cdw10 = NVME_FEAT_FID_VOLATILE_WC},
		.oob = true,
		.done = count_done,
		.transport_priv = &done};
	struct nvemu_req inband = {.cmd = {.opc = nvme_admin_keep_alive},
				   .done = count_done,
				   .transport_priv = &held_done};

	nvemu_ctrl_suspend(env->ctrl, false);
	nvemu_host_submit(env->host, 0, &inband);
	assert_int_equal(held_done, 0); /* in-band commands wait for resume */
	nvemu_ctrl_submit(env->ctrl, &oob);
	assert_int_equal(done, 1);
	/* Command Interrupted without DNR: retry later. */
	assert_int_equal(oob.cqe.status, NVEMU_SC_GENERIC(NVME_SC_CMD_INTERRUPTED));
	nvemu_ctrl_resume(env->ctrl);
	assert_int_equal(held_done, 1);
	assert_int_equal(inband.cqe.status, 0);
	/* Not suspended: it runs. */
	nvemu_ctrl_submit(env->ctrl, &oob);
	assert_int_equal(done, 2);
	assert_int_equal(oob.cqe.status, 0);
	assert_int_equal(oob.cqe.dw0, 1);
}

/*
 * The teardown sequence: suspend, wait for idle, unbind, remove. Outstanding
 * AERs and commands held by the suspend complete (aborted); nothing is left.
 */
static void remove_ctrl_completes_aers_and_held(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ctrl_params cp;
	struct nvemu_error err = {0};
	struct nvemu_ctrl *ctrl;
	unsigned aer_done = 0, held_done = 0, idle = 0;
	struct nvemu_req aer = {.cmd = {.opc = nvme_admin_async_event},
				.done = count_done,
				.transport_priv = &aer_done};
	struct nvemu_req ka = {.cmd = {.opc = nvme_admin_keep_alive},
			       .done = count_done,
			       .transport_priv = &held_done};
	uint16_t cntlid;

	nvemu_ctrl_params_init(&cp);
	cp.port_id = env->ctrl->p.port_id;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->subsys, &cp, &cntlid, &err), 0);
	ctrl = nvemu_subsys_ctrl(env->subsys, cntlid);
	assert_int_equal(nvemu_ctrl_attach_ns(ctrl, 1, &err), 0);
	ctrl->aqa = 31 | 31u << 16;
	nvemu_ctrl_set_cc(ctrl, 1u << NVME_CC_EN_SHIFT | 6u << NVME_CC_IOSQES_SHIFT |
					4u << NVME_CC_IOCQES_SHIFT);
	assert_true(nvemu_ctrl_enabled(ctrl));
	nvemu_ctrl_submit(ctrl, &aer);
	assert_int_equal(nvemu_ctrl_suspend(ctrl, false), 0);
	nvemu_ctrl_submit(ctrl, &ka);
	assert_int_equal(aer_done + held_done, 0);
	/* AERs and held commands are not in flight: idle at once. */
	nvemu_ctrl_when_idle(ctrl, set_flag, &idle);
	assert_int_equal(idle, 1);
	assert_int_equal(nvemu_ctrl_bind_transport(ctrl, NULL, NULL, &err), 0);

	assert_int_equal(nvemu_subsys_remove_ctrl(env->subsys, cntlid, &err), 0);
	assert_int_equal(aer_done, 1);
	assert_int_equal(held_done, 1);
	assert_int_equal(aer.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	assert_int_equal(ka.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	assert_null(nvemu_subsys_ctrl(env->subsys, cntlid));
	assert_int_equal(nvemu_subsys_ns(env->subsys, 1)->nr_attached, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nqn_rules),
		cmocka_unit_test(subsys_params),
		cmocka_unit_test(ports_and_ctrls),
		cmocka_unit_test(single_ctrl),
		cmocka_unit_test(cntlid_range),
		cmocka_unit_test(namespaces),
		cmocka_unit_test(vendor_identity),
		cmocka_unit_test(vendor_identity_aliases),
		cmocka_unit_test_setup_teardown(attach_events, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(aer_on_attach, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(health_validation, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(registers, tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(suspend_resume, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(bad_queue_and_opcode, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(commands_before_enable, tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(fabrics_cap_and_cc, tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(transport_hooks, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(oob_while_suspended, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(remove_ctrl_completes_aers_and_held, tu_setup,
						tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

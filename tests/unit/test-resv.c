/* SPDX-License-Identifier: MIT */
/*
 * Reservations through the loop transport: three hosts (three controllers
 * of one subsystem, each with its own in-process host) share namespace 1.
 * Host A and B set 64-bit Host Identifiers, host C sets none (a host of its
 * own) unless a test gives it one.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/reservations.h"
#include "test-util.h"

#define CONFLICT      (NVEMU_SC_GENERIC(NVME_SC_RESERVATION_CONFLICT) | NVEMU_DNR)
#define INVALID_FIELD (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define HOSTID_FORMAT (NVEMU_SC_GENERIC(NVME_SC_HOSTID_FORMAT) | NVEMU_DNR)
#define KEY_A	      0xaaaa0000000000a1ull
#define KEY_B	      0xbbbb0000000000b2ull
#define KEY_C	      0xcccc0000000000c3ull
#define NH	      3

struct host {
	struct nvemu_ctrl *ctrl;
	struct nvemu_host *host;
};

struct env {
	struct nvemu_subsys *subsys;
	struct host h[NH];
};

static uint8_t buf[8192];
static uint32_t cur_nsid = 1; /* the namespace the helpers below address */

static uint16_t hexec(struct host *h, uint16_t sqid, struct nvemu_sqe *cmd, void *b, uint32_t len,
		      struct nvemu_cqe *cqe)
{
	return nvemu_host_exec(h->host, sqid, cmd, b, len, cqe);
}

static void host_up(struct host *h)
{
	struct nvemu_sqe cmd;

	assert_int_equal(nvemu_host_enable(h->host), 0);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_cq;
	cmd.dptr1 = 0x10000;
	cmd.cdw10 = 1 | 63u << 16;
	cmd.cdw11 = 1 | 1u << 1;
	assert_success(hexec(h, 0, &cmd, NULL, 0, NULL));
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_sq;
	cmd.dptr1 = 0x20000;
	cmd.cdw10 = 1 | 63u << 16;
	cmd.cdw11 = 1 | 1u << 16;
	assert_success(hexec(h, 0, &cmd, NULL, 0, NULL));
}

static uint16_t set_hostid(struct host *h, const uint8_t *id, bool ext)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_set_features};
	uint8_t b[16] = {0};

	memcpy(b, id, ext ? 16 : 8);
	cmd.cdw10 = NVME_FEAT_FID_HOST_ID;
	cmd.cdw11 = ext;
	return hexec(h, 0, &cmd, b, 16, NULL);
}

static struct env *env_new(const char *ptpl_file)
{
	struct env *e = calloc(1, sizeof(*e));
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_error err = {0};
	uint16_t port;
	uint32_t nsid;

	assert_non_null(e);
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:resv";
	assert_int_equal(nvemu_subsys_create(&sp, &e->subsys, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	assert_int_equal(nvemu_subsys_add_port(e->subsys, &pp, &port, &err), 0);
	assert_int_equal(nvemu_subsys_add_ns(e->subsys, 1024, &nsid, &err), 0);
	if (ptpl_file)
		assert_int_equal(nvemu_ns_set_ptpl_file(e->subsys, 1, ptpl_file, &err), 0);
	for (int i = 0; i < NH; i++) {
		struct nvemu_ctrl_params cp;
		uint16_t cntlid;

		nvemu_ctrl_params_init(&cp);
		cp.port_id = port;
		cp.num_io_queues = 2;
		assert_int_equal(nvemu_subsys_add_ctrl_ex(e->subsys, &cp, &cntlid, &err), 0);
		e->h[i].ctrl = nvemu_subsys_ctrl(e->subsys, cntlid);
		assert_int_equal(nvemu_ctrl_attach_ns(e->h[i].ctrl, 1, &err), 0);
		assert_int_equal(nvemu_host_create(e->h[i].ctrl, &e->h[i].host, &err), 0);
		host_up(&e->h[i]);
	}
	static const uint8_t ida[8] = {0xa1, 1, 2, 3, 4, 5, 6, 7}, idb[8] = {0xb2, 1, 2, 3};
	assert_success(set_hostid(&e->h[0], ida, false));
	assert_success(set_hostid(&e->h[1], idb, false));
	return e;
}

static void env_free(struct env *e)
{
	for (int i = 0; i < NH; i++)
		nvemu_host_destroy(e->h[i].host);
	nvemu_subsys_destroy(e->subsys);
	free(e);
}

static int setup(void **state)
{
	*state = env_new(NULL);
	return 0;
}

static int teardown(void **state)
{
	env_free(*state);
	return 0;
}

/* ---- command helpers */

static uint16_t reg(struct host *h, uint8_t action, bool iekey, uint8_t cptpl, uint64_t crkey,
		    uint64_t nrkey)
{
	struct nvemu_sqe cmd = {.opc = nvme_cmd_resv_register, .nsid = cur_nsid};
	uint64_t d[2] = {htole64(crkey), htole64(nrkey)};

	cmd.cdw10 = action | (iekey ? 1u << 3 : 0) | (uint32_t)cptpl << 30;
	return hexec(h, 1, &cmd, d, sizeof(d), NULL);
}

static uint16_t acq(struct host *h, uint8_t action, uint8_t rtype, uint64_t crkey, uint64_t prkey)
{
	struct nvemu_sqe cmd = {.opc = nvme_cmd_resv_acquire, .nsid = cur_nsid};
	uint64_t d[2] = {htole64(crkey), htole64(prkey)};

	cmd.cdw10 = action | (uint32_t)rtype << 8;
	return hexec(h, 1, &cmd, d, sizeof(d), NULL);
}

static uint16_t rel(struct host *h, uint8_t action, uint8_t rtype, uint64_t crkey)
{
	struct nvemu_sqe cmd = {.opc = nvme_cmd_resv_release, .nsid = cur_nsid};
	uint64_t d = htole64(crkey);

	cmd.cdw10 = action | (uint32_t)rtype << 8;
	return hexec(h, 1, &cmd, &d, sizeof(d), NULL);
}

static uint16_t report(struct host *h, bool eds, uint32_t len)
{
	struct nvemu_sqe cmd = {.opc = nvme_cmd_resv_report, .nsid = cur_nsid};

	memset(buf, 0xa5, sizeof(buf));
	cmd.cdw10 = len / 4 - 1;
	cmd.cdw11 = eds;
	return hexec(h, 1, &cmd, buf, len, NULL);
}

static uint16_t io(struct host *h, uint8_t opc)
{
	struct nvemu_sqe cmd = {.opc = opc, .nsid = cur_nsid};
	static uint8_t data[512];

	if (opc == nvme_cmd_dsm) {
		struct nvme_dsm_range r = {.nlb = htole32(1), .slba = htole64(8)};

		cmd.cdw11 = 1u << 2;
		return hexec(h, 1, &cmd, &r, sizeof(r), NULL);
	}
	if (opc == nvme_cmd_compare) {
		struct nvemu_sqe rd = {.opc = nvme_cmd_read, .nsid = 1};

		hexec(h, 1, &rd, data, sizeof(data), NULL); /* may be refused itself */
	}
	return hexec(h, 1, &cmd, data, sizeof(data), NULL);
}

static struct nvme_resv_status *rs(void)
{
	return (struct nvme_resv_status *)buf;
}

static unsigned regctl(void)
{
	return rs()->regctl[0] | rs()->regctl[1] << 8;
}

/* Normal data structure entry i of the last report. */
static struct nvme_registered_ctrl *ent(unsigned i)
{
	return &rs()->regctl_ds[i];
}

static uint16_t resv_log(struct host *h, struct nvme_resv_notification_log *l)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_get_log_page};

	cmd.cdw10 = NVME_LOG_LID_RESERVATION | (uint32_t)(sizeof(*l) / 4 - 1) << 16;
	return hexec(h, 0, &cmd, l, sizeof(*l), NULL);
}

/* ---- Register */

static void test_register(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0];

	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(a, 0, false, 0, 0, KEY_A)); /* same key again: no change */
	assert_status(reg(a, 0, false, 0, 0, KEY_B), CONFLICT);
	assert_success(report(a, false, 4096));
	assert_int_equal(le32toh(rs()->gen), 1);
	assert_int_equal(regctl(), 1);
	assert_int_equal(le64toh(ent(0)->rkey), KEY_A);
	assert_int_equal(le16toh(ent(0)->cntlid), nvemu_ctrl_cntlid(a->ctrl));
	assert_int_equal(((uint8_t *)&ent(0)->hostid)[0], 0xa1);
	assert_int_equal(ent(0)->rcsts, 0);

	/* Replace: the current key must match unless IEKEY */
	assert_status(reg(a, 2, false, 0, KEY_B, KEY_C), CONFLICT);
	assert_success(reg(a, 2, false, 0, KEY_A, KEY_C));
	assert_success(reg(a, 2, true, 0, 0x1234, KEY_A));
	assert_success(report(a, false, 4096));
	assert_int_equal(le64toh(ent(0)->rkey), KEY_A);
	assert_int_equal(le32toh(rs()->gen), 3);

	/* Unregister */
	assert_status(reg(a, 1, false, 0, KEY_B, 0), CONFLICT);
	assert_success(reg(a, 1, false, 0, KEY_A, 0));
	assert_status(reg(a, 1, true, 0, 0, 0), CONFLICT); /* not registered */
	assert_status(reg(a, 2, true, 0, 0, KEY_A), CONFLICT);
	assert_success(report(a, false, 4096));
	assert_int_equal(regctl(), 0);
	assert_int_equal(le32toh(rs()->gen), 4);
}

static void test_register_invalid(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0];
	struct nvemu_sqe cmd = {.opc = nvme_cmd_resv_register, .nsid = cur_nsid};
	uint64_t d[2] = {0};

	assert_status(reg(a, 3, false, 0, 0, KEY_A), INVALID_FIELD);
	assert_status(reg(a, 0, false, 1, 0, KEY_A), INVALID_FIELD); /* CPTPL 01b reserved */
	/* PTPL cannot be set on a namespace without a PTPL file */
	assert_status(reg(a, 0, false, 3, 0, KEY_A), INVALID_FIELD);
	/* a data buffer shorter than the 16 bytes of keys */
	assert_status(hexec(a, 1, &cmd, d, 8, NULL),
		      NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
	/* the other reservation commands */
	assert_status(acq(a, 3, 1, 0, 0), INVALID_FIELD);
	assert_status(acq(a, 0, 0, 0, 0), INVALID_FIELD);
	assert_status(acq(a, 0, 7, 0, 0), INVALID_FIELD);
	assert_status(rel(a, 2, 1, 0), INVALID_FIELD);
	/* a namespace that is not attached */
	cmd.nsid = 2;
	assert_status(hexec(a, 1, &cmd, d, 16, NULL),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR);
}

/* ---- Acquire and the access rules */

static void test_acquire(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1], *c = &e->h[2];

	assert_status(acq(a, 0, 1, KEY_A, 0), CONFLICT); /* not registered */
	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	assert_status(acq(a, 0, 1, KEY_B, 0), CONFLICT); /* wrong key */
	assert_success(acq(a, 0, NVME_RESERVATION_RTYPE_WE, KEY_A, 0));
	assert_success(acq(a, 0, NVME_RESERVATION_RTYPE_WE, KEY_A, 0)); /* again: no change */
	assert_status(acq(a, 0, NVME_RESERVATION_RTYPE_EA, KEY_A, 0), CONFLICT);
	assert_status(acq(b, 0, NVME_RESERVATION_RTYPE_WE, KEY_B, 0), CONFLICT);
	assert_status(acq(c, 0, NVME_RESERVATION_RTYPE_WE, KEY_C, 0), CONFLICT);
	assert_success(report(b, false, 4096));
	assert_int_equal(rs()->rtype, NVME_RESERVATION_RTYPE_WE);
	assert_int_equal(regctl(), 2);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(ent(i)->rcsts,
				 le64toh(ent(i)->rkey) == KEY_A ? 1 : 0); /* only A holds it */
	/* Acquire does not change the generation */
	assert_int_equal(le32toh(rs()->gen), 2);
}

static const uint8_t read_ops[] = {nvme_cmd_read, nvme_cmd_compare, nvme_cmd_verify};
static const uint8_t write_ops[] = {nvme_cmd_write, nvme_cmd_write_zeroes, nvme_cmd_flush,
				    nvme_cmd_dsm};

static void check_access(struct host *h, bool can_read, bool can_write, uint8_t rtype)
{
	for (size_t i = 0; i < sizeof(read_ops); i++) {
		uint16_t st = io(h, read_ops[i]);

		if (can_read) {
			if (st)
				fail_msg("rtype %u: read op %02x refused (%04x)", rtype,
					 read_ops[i], st);
		} else if ((st & 0x7ff) != (CONFLICT & 0x7ff)) {
			fail_msg("rtype %u: read op %02x: %04x, want a conflict", rtype,
				 read_ops[i], st);
		}
	}
	for (size_t i = 0; i < sizeof(write_ops); i++) {
		uint16_t st = io(h, write_ops[i]);

		if (can_write) {
			if (st)
				fail_msg("rtype %u: write op %02x refused (%04x)", rtype,
					 write_ops[i], st);
		} else if ((st & 0x7ff) != (CONFLICT & 0x7ff) || !(st & NVEMU_DNR)) {
			fail_msg("rtype %u: write op %02x: %04x, want a conflict", rtype,
				 write_ops[i], st);
		}
	}
}

/*
 * The spec's table: the holder does everything; registrants may write
 * under the registrants-only and all-registrants types and read under all
 * but Exclusive Access; everyone reads under the Write Exclusive types.
 */
static void test_conflict_table(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1], *c = &e->h[2];
	static const struct {
		bool reg_read, reg_write, other_read;
	} t[7] = {
		[1] = {true, false, true}, [2] = {false, false, false}, [3] = {true, true, true},
		[4] = {true, true, false}, [5] = {true, true, true},	[6] = {true, true, false},
	};

	check_access(c, true, true, 0); /* no reservation */
	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	for (uint8_t rtype = 1; rtype <= 6; rtype++) {
		assert_success(acq(a, 0, rtype, KEY_A, 0));
		check_access(a, true, true, rtype);
		check_access(b, t[rtype].reg_read, t[rtype].reg_write, rtype);
		check_access(c, t[rtype].other_read, false, rtype);
		/* reservation commands are never in conflict */
		assert_success(report(c, false, 4096));
		assert_int_equal(rs()->rtype, rtype);
		assert_success(rel(a, 0, rtype, KEY_A));
	}
	check_access(c, true, true, 0);
}

/*
 * Base 2.1 Figure 646: Format NVM, Sanitize, Namespace Attachment and
 * Namespace Management (delete) are in the write command group.
 */
static void test_admin_write_group(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1], *c = &e->h[2];
	struct nvemu_sqe cmd;
	uint16_t ctrls[2] = {htole16(1), 0};

	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	assert_success(acq(a, 0, NVME_RESERVATION_RTYPE_WERO, KEY_A, 0));
	/* A non-registrant may not format, sanitize, detach or delete the namespace. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_format_nvm;
	cmd.nsid = 1;
	assert_status(hexec(c, 0, &cmd, NULL, 0, NULL), CONFLICT);
	cmd.nsid = NVME_NSID_ALL;
	assert_status(hexec(c, 0, &cmd, NULL, 0, NULL), CONFLICT);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_sanitize_nvm;
	cmd.cdw10 = NVME_SANITIZE_SANACT_START_BLOCK_ERASE;
	assert_status(hexec(c, 0, &cmd, NULL, 0, NULL), CONFLICT);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_ns_attach;
	cmd.nsid = 1;
	cmd.cdw10 = NVME_NS_ATTACH_SEL_CTRL_DEATTACH;
	memset(buf, 0, 4096);
	memcpy(buf, ctrls, sizeof(ctrls));
	assert_status(hexec(c, 0, &cmd, buf, 4096, NULL), CONFLICT);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_ns_mgmt;
	cmd.nsid = 1;
	cmd.cdw10 = NVME_NS_MGMT_SEL_DELETE;
	assert_status(hexec(c, 0, &cmd, NULL, 0, NULL), CONFLICT);
	/* Other admin commands are not affected. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_identify;
	cmd.nsid = 1;
	assert_success(hexec(c, 0, &cmd, buf, 4096, NULL));
	/* A registrant may, under a registrants-only reservation: Format NVM goes through. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_format_nvm;
	cmd.nsid = 1;
	assert_success(hexec(b, 0, &cmd, NULL, 0, NULL));
	assert_success(hexec(a, 0, &cmd, NULL, 0, NULL));
	/* Without a reservation, anyone may. */
	assert_success(rel(a, 0, NVME_RESERVATION_RTYPE_WERO, KEY_A));
	assert_success(hexec(c, 0, &cmd, NULL, 0, NULL));
}

/* ---- Preempt */

static void test_preempt(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1], *c = &e->h[2];
	struct nvme_resv_notification_log l;
	struct nvemu_sqe aer = {.opc = nvme_admin_async_event};
	struct nvemu_cqe cqe;

	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	assert_success(reg(c, 0, false, 0, 0, KEY_C));
	assert_success(acq(a, 0, NVME_RESERVATION_RTYPE_WE, KEY_A, 0));
	/* a key nobody has */
	assert_status(acq(b, 1, NVME_RESERVATION_RTYPE_EA, KEY_B, 0x999), CONFLICT);
	/* key 0 when it is not the holder's: Invalid Field */
	assert_status(acq(b, 1, NVME_RESERVATION_RTYPE_EA, KEY_B, 0), INVALID_FIELD);
	/* preempting a plain registrant: C goes, A keeps the reservation */
	assert_success(acq(b, 1, NVME_RESERVATION_RTYPE_EA, KEY_B, KEY_C));
	assert_success(report(b, false, 4096));
	assert_int_equal(regctl(), 2);
	assert_int_equal(rs()->rtype, NVME_RESERVATION_RTYPE_WE);
	assert_success(resv_log(c, &l));
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
	assert_int_equal(le32toh(l.nsid), 1);
	assert_int_equal(le64toh(l.lpc), 1);
	assert_int_equal(l.nalp, 0);
	assert_status(io(c, nvme_cmd_write), CONFLICT);

	/* preempting the holder: B holds it now, with its type; A gets a notice via AEN */
	assert_success(acq(b, 2, NVME_RESERVATION_RTYPE_EA, KEY_B, KEY_A));
	assert_success(report(b, false, 4096));
	assert_int_equal(regctl(), 1);
	assert_int_equal(rs()->rtype, NVME_RESERVATION_RTYPE_EA);
	assert_int_equal(le64toh(ent(0)->rkey), KEY_B);
	assert_int_equal(ent(0)->rcsts, 1);
	assert_int_equal(le32toh(rs()->gen), 5);
	assert_success(hexec(a, 0, &aer, NULL, 0, &cqe));
	assert_int_equal(cqe.dw0 & 7, 6); /* I/O command specific status */
	assert_int_equal((cqe.dw0 >> 8) & 0xff, 0);
	assert_int_equal((cqe.dw0 >> 16) & 0xff, NVME_LOG_LID_RESERVATION);
	assert_success(resv_log(a, &l));
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
	assert_success(resv_log(a, &l)); /* read: the log is empty again */
	assert_int_equal(l.rnlpt, 0);
	assert_int_equal(le64toh(l.lpc), 0);
	assert_status(io(a, nvme_cmd_read), CONFLICT);
	assert_success(io(b, nvme_cmd_write));
}

static void test_preempt_all_registrants(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1], *c = &e->h[2];

	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	assert_success(reg(c, 0, false, 0, 0, KEY_C));
	assert_success(acq(a, 0, NVME_RESERVATION_RTYPE_EAAR, KEY_A, 0));
	/* every registrant holds an all-registrants reservation */
	assert_success(report(a, false, 4096));
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(ent(i)->rcsts, 1);
	assert_success(acq(b, 0, NVME_RESERVATION_RTYPE_EAAR, KEY_B, 0));
	/* the holder leaving does not end it while registrants remain */
	assert_success(reg(a, 1, false, 0, KEY_A, 0));
	assert_success(report(b, false, 4096));
	assert_int_equal(rs()->rtype, NVME_RESERVATION_RTYPE_EAAR);
	assert_status(io(a, nvme_cmd_read), CONFLICT);
	/* key 0: everyone else goes and B takes the new type */
	assert_success(acq(b, 1, NVME_RESERVATION_RTYPE_WE, KEY_B, 0));
	assert_success(report(b, false, 4096));
	assert_int_equal(regctl(), 1);
	assert_int_equal(rs()->rtype, NVME_RESERVATION_RTYPE_WE);
	assert_status(io(c, nvme_cmd_write), CONFLICT);
	assert_success(io(c, nvme_cmd_read));
}

static void test_preempt_no_reservation(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1];

	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	assert_status(acq(a, 1, 1, KEY_A, KEY_C), CONFLICT);
	assert_success(acq(a, 1, 1, KEY_A, KEY_B));
	assert_success(report(a, false, 4096));
	assert_int_equal(regctl(), 1);
	assert_int_equal(rs()->rtype, 0); /* nothing acquired */
}

/* ---- Preempt and Abort: the preempted host's commands still running are aborted */

struct pending {
	struct nvemu_req req;
	bool done;
};

static void pending_done(struct nvemu_req *req)
{
	((struct pending *)req)->done = true;
}

static void test_preempt_and_abort(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1];
	struct nvemu_bdev_delay_opts o = {.read_latency_us = 50000, .write_latency_us = 50000};
	struct nvemu_error err = {0};
	struct nvemu_bdev *ram, *dly;
	struct nvemu_ns_params np;
	struct pending w = {0}, w2 = {0};
	static uint8_t data[512];

	assert_int_equal(nvemu_bdev_ram_create("pa-ram", 1 << 20, 512, &ram, &err), 0);
	assert_int_equal(nvemu_bdev_delay_create("pa-dly", ram, &o, &dly, &err), 0);
	nvemu_ns_params_init(&np);
	np.nsid = 2;
	np.bdev = dly;
	assert_int_equal(nvemu_subsys_add_ns_ex(e->subsys, &np, NULL, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(a->ctrl, 2, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(b->ctrl, 2, &err), 0);
	cur_nsid = 2;
	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	assert_success(acq(a, 0, NVME_RESERVATION_RTYPE_WE, KEY_A, 0));
	/* A's writes are in the delay bdev for 50 ms ... */
	w.req.cmd = (struct nvemu_sqe){.opc = nvme_cmd_write, .nsid = 2, .cid = 0x77};
	w.req.buf = data;
	w.req.buf_len = sizeof(data);
	w.req.done = pending_done;
	w2 = w;
	w2.req.cmd.cid = 0x78;
	nvemu_host_submit(a->host, 1, &w.req);
	nvemu_host_submit(a->host, 1, &w2.req);
	assert_false(w.done);
	/* ... when B preempts A with Preempt and Abort */
	assert_success(acq(b, 2, NVME_RESERVATION_RTYPE_EA, KEY_B, KEY_A));
	for (int i = 0; i < 500 && !(w.done && w2.done); i++) {
		poll(NULL, 0, 2);
		nvemu_host_poll(a->host);
	}
	assert_true(w.done && w2.done);
	assert_int_equal(w.req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ));
	assert_int_equal(w2.req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ));
	/* what A sends from now on meets the new reservation */
	assert_status(io(a, nvme_cmd_write), CONFLICT);
	cur_nsid = 1;
	assert_int_equal(nvemu_ctrl_detach_ns(a->ctrl, 2, &err), 0);
	assert_int_equal(nvemu_ctrl_detach_ns(b->ctrl, 2, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ns(e->subsys, 2, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(dly, NULL), 0);
	assert_int_equal(nvemu_bdev_destroy(ram, NULL), 0);
}

/* ---- Release and Clear */

static void test_release_clear(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1], *c = &e->h[2];
	struct nvme_resv_notification_log l;

	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	assert_status(rel(c, 0, 1, KEY_C), CONFLICT); /* not registered */
	assert_status(rel(a, 0, 1, KEY_B), CONFLICT); /* wrong key */
	assert_success(rel(a, 0, 1, KEY_A));	      /* nothing held: success */
	assert_success(acq(a, 0, NVME_RESERVATION_RTYPE_WERO, KEY_A, 0));
	assert_success(rel(b, 0, NVME_RESERVATION_RTYPE_WERO, KEY_B)); /* not the holder */
	assert_success(report(a, false, 4096));
	assert_int_equal(rs()->rtype, NVME_RESERVATION_RTYPE_WERO);
	assert_status(rel(a, 0, NVME_RESERVATION_RTYPE_WE, KEY_A), INVALID_FIELD);
	assert_success(rel(a, 0, NVME_RESERVATION_RTYPE_WERO, KEY_A));
	assert_success(report(a, false, 4096));
	assert_int_equal(rs()->rtype, 0);
	assert_int_equal(regctl(), 2);
	assert_success(resv_log(b, &l));
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
	assert_success(resv_log(a, &l)); /* the host that released is not told */
	assert_int_equal(l.rnlpt, 0);

	/* Clear: every registration and the reservation go */
	assert_success(acq(a, 0, NVME_RESERVATION_RTYPE_EA, KEY_A, 0));
	assert_success(rel(b, 1, 0, KEY_B));
	assert_success(report(a, false, 4096));
	assert_int_equal(regctl(), 0);
	assert_int_equal(rs()->rtype, 0);
	assert_int_equal(le32toh(rs()->gen), 3);
	assert_success(resv_log(a, &l));
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_RESERVATION_PREEMPTED);
	assert_success(io(c, nvme_cmd_write));
}

static void test_unregister_holder(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1];
	struct nvme_resv_notification_log l;

	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	assert_success(acq(a, 0, NVME_RESERVATION_RTYPE_EARO, KEY_A, 0));
	assert_success(reg(a, 1, false, 0, KEY_A, 0));
	assert_success(report(b, false, 4096));
	assert_int_equal(rs()->rtype, 0);
	assert_success(resv_log(b, &l));
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
}

/* ---- Report */

static void test_report_formats(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *c = &e->h[2];
	static const uint8_t idc[16] = {0xc3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	struct nvme_registered_ctrl_ext *x;

	assert_success(set_hostid(c, idc, true));
	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(c, 0, false, 0, 0, KEY_C));
	assert_success(acq(c, 0, NVME_RESERVATION_RTYPE_WE, KEY_C, 0));
	/* a 128-bit identifier does not fit the normal data structure */
	assert_status(report(a, false, 4096), HOSTID_FORMAT);
	assert_success(report(a, true, 4096));
	assert_int_equal(regctl(), 2);
	assert_int_equal(rs()->rtype, NVME_RESERVATION_RTYPE_WE);
	x = &rs()->regctl_eds[1];
	assert_int_equal(le16toh(x->cntlid), nvemu_ctrl_cntlid(c->ctrl));
	assert_int_equal(x->rcsts, 1);
	assert_int_equal(le64toh(x->rkey), KEY_C);
	assert_memory_equal(x->hostid, idc, 16);
	x = &rs()->regctl_eds[0];
	assert_int_equal(x->hostid[0], 0xa1);
	assert_int_equal(x->rcsts, 0);
	/* bytes past the data are zero; a short buffer gets a prefix */
	assert_int_equal(buf[64 + 2 * 64], 0);
	assert_success(report(a, true, 8));
	assert_int_equal(buf[8], 0xa5);
	assert_int_equal(le32toh(rs()->gen), 2);
}

static void test_anonymous_and_host_id(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *c = &e->h[2];
	static const uint8_t ida[8] = {0xa1, 1, 2, 3, 4, 5, 6, 7};

	/* C never set a Host Identifier: it is a host of its own, reported with zeroes */
	assert_success(reg(c, 0, false, 0, 0, KEY_C));
	assert_success(report(a, false, 4096));
	assert_int_equal(regctl(), 1);
	assert_true(((uint8_t *)&ent(0)->hostid)[0] == 0 && ((uint8_t *)&ent(0)->hostid)[7] == 0);
	assert_int_equal(le16toh(ent(0)->cntlid), nvemu_ctrl_cntlid(c->ctrl));
	/* a registered host keeps its identifier */
	assert_status(set_hostid(c, ida, false), NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR));
	assert_success(reg(c, 1, false, 0, KEY_C, 0));
	/* C takes A's identifier: the same host, so it sees A's registration */
	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(set_hostid(c, ida, false));
	assert_success(acq(c, 0, NVME_RESERVATION_RTYPE_EA, KEY_A, 0));
	assert_success(io(a, nvme_cmd_write));
	assert_success(io(c, nvme_cmd_read));
	assert_status(io(&e->h[1], nvme_cmd_read), CONFLICT);
}

/* ---- notification mask, features */

static void test_notification_mask(void **state)
{
	struct env *e = *state;
	struct host *a = &e->h[0], *b = &e->h[1];
	struct nvme_resv_notification_log l;
	struct nvemu_sqe cmd = {.opc = nvme_admin_set_features, .nsid = 1};
	struct nvemu_cqe cqe;

	cmd.cdw10 = NVME_FEAT_FID_RESV_MASK;
	cmd.cdw11 = NVME_FEAT_RESV_NOTIFY_REGPRE;
	assert_success(hexec(a, 0, &cmd, NULL, 0, NULL));
	cmd.cdw11 = 1; /* reserved bit */
	assert_status(hexec(a, 0, &cmd, NULL, 0, NULL), INVALID_FIELD);
	cmd.opc = nvme_admin_get_features;
	cmd.cdw11 = 0;
	assert_success(hexec(a, 0, &cmd, NULL, 0, &cqe));
	assert_int_equal(cqe.dw0, NVME_FEAT_RESV_NOTIFY_REGPRE);
	cmd.nsid = 5;
	assert_status(hexec(a, 0, &cmd, NULL, 0, NULL),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR);

	assert_success(reg(a, 0, false, 0, 0, KEY_A));
	assert_success(reg(b, 0, false, 0, 0, KEY_B));
	assert_success(acq(b, 1, 1, KEY_B, KEY_A));
	assert_success(resv_log(a, &l));
	assert_int_equal(l.rnlpt, 0); /* masked */

	/* Reservation Persistence without a PTPL file: reads 0, cannot be set */
	cmd.nsid = 1;
	cmd.cdw10 = NVME_FEAT_FID_RESV_PERSIST;
	assert_success(hexec(a, 0, &cmd, NULL, 0, &cqe));
	assert_int_equal(cqe.dw0, 0);
	cmd.opc = nvme_admin_set_features;
	cmd.cdw11 = 1;
	assert_status(hexec(a, 0, &cmd, NULL, 0, NULL), INVALID_FIELD);
}

static void test_identify(void **state)
{
	struct env *e = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .nsid = 1};
	struct nvme_id_ns *ns = (void *)buf;
	struct nvme_id_ctrl *id = (void *)buf;

	cmd.cdw10 = NVME_IDENTIFY_CNS_NS;
	assert_success(hexec(&e->h[0], 0, &cmd, buf, 4096, NULL));
	assert_int_equal(ns->rescap, 0xfe); /* every type, IEKEY; no PTPL without a file */
	cmd.nsid = 0;
	cmd.cdw10 = NVME_IDENTIFY_CNS_CTRL;
	assert_success(hexec(&e->h[0], 0, &cmd, buf, 4096, NULL));
	assert_true(le16toh(id->oncs) & NVME_CTRL_ONCS_RESERVATIONS);
}

/* ---- Persist Through Power Loss */

static void test_ptpl(void **state)
{
	char path[] = "/tmp/nvemu-resv-XXXXXX";
	int fd = mkstemp(path);
	struct env *e;
	struct nvemu_sqe cmd = {.opc = nvme_admin_get_features, .nsid = 1};
	struct nvemu_cqe cqe;
	struct nvemu_error err = {0};
	struct nvme_id_ns *ns = (void *)buf;
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	e = env_new(path);
	assert_string_equal(nvemu_ns_get_ptpl_file(e->subsys, 1), path);
	cmd.opc = nvme_admin_identify;
	cmd.cdw10 = NVME_IDENTIFY_CNS_NS;
	assert_success(hexec(&e->h[0], 0, &cmd, buf, 4096, NULL));
	assert_int_equal(ns->rescap & NVME_NS_RESCAP_PTPL, NVME_NS_RESCAP_PTPL);
	assert_success(reg(&e->h[0], 0, false, 3, 0, KEY_A)); /* CPTPL: persist */
	assert_success(reg(&e->h[1], 0, false, 0, 0, KEY_B));
	assert_success(acq(&e->h[0], 0, NVME_RESERVATION_RTYPE_WERO, KEY_A, 0));
	assert_true(access(path, R_OK) == 0);
	env_free(e);

	/* "power loss": a new subsystem from the same file */
	e = env_new(path);
	assert_success(report(&e->h[2], false, 4096));
	assert_int_equal(regctl(), 2);
	assert_int_equal(rs()->rtype, NVME_RESERVATION_RTYPE_WERO);
	assert_int_equal(rs()->ptpls, 1);
	assert_int_equal(le32toh(rs()->gen), 2);
	assert_status(io(&e->h[2], nvme_cmd_write), CONFLICT);
	assert_success(io(&e->h[1], nvme_cmd_write));
	cmd.opc = nvme_admin_get_features;
	cmd.cdw10 = NVME_FEAT_FID_RESV_PERSIST;
	assert_success(hexec(&e->h[0], 0, &cmd, NULL, 0, &cqe));
	assert_int_equal(cqe.dw0, 1);
	/* PTPL off (Set Features): the next restart starts empty */
	cmd.opc = nvme_admin_set_features;
	cmd.cdw11 = 0;
	assert_success(hexec(&e->h[0], 0, &cmd, NULL, 0, NULL));
	env_free(e);
	e = env_new(path);
	assert_success(report(&e->h[0], false, 4096));
	assert_int_equal(regctl(), 0);
	assert_int_equal(rs()->ptpls, 0);

	/* a file that is not a saved state is refused, naming the field */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("nvemu-resv 1\nrtype 9\n", f);
	fclose(f);
	assert_int_equal(nvemu_ns_set_ptpl_file(e->subsys, 1, path, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "ptpl_file"));
	env_free(e);
	unlink(path);
}

static void test_ptpl_parse(void **state)
{
	struct nvemu_resv r;
	static const char *bad[] = {
		"",
		"nvemu-resv 2\n",
		"nvemu-resv 1",
		"nvemu-resv 1\nrtype 1\n",
		"nvemu-resv 1\nreg 0 0 00000000000000000000000000000000 1\nreg 0 0 "
		"00000000000000000000000000000000 2\n",
		"nvemu-resv 1\nreg 0 0 0000000000000000000000000000000 1\n",
		"nvemu-resv 1\nreg 2 0 00000000000000000000000000000000 1\n",
		"nvemu-resv 1\nreg 0 0 00000000000000000000000000000000 10000000000000000\n",
		"nvemu-resv 1\ngen 4294967296\n",
		"nvemu-resv 1\nrtype 1\nholder 0 0 11000000000000000000000000000000\nreg 0 0 "
		"00000000000000000000000000000000 1\n",
		"nvemu-resv 1\nfoo 1\n",
	};
	const char *good = "nvemu-resv 1\nptpl 1\ngen 7\nrtype 2\nholder 1 0 "
			   "0102030405060708090a0b0c0d0e0f10\nreg 1 0 "
			   "0102030405060708090a0b0c0d0e0f10 ffffffffffffffff\n";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&r, 0, sizeof(r));
		if (nvemu_resv_ptpl_parse(&r, bad[i], strlen(bad[i])) != -EINVAL)
			fail_msg("bad[%zu] accepted", i);
	}
	memset(&r, 0, sizeof(r));
	assert_int_equal(nvemu_resv_ptpl_parse(&r, good, strlen(good)), 0);
	assert_int_equal(r.gen, 7);
	assert_int_equal(r.rtype, 2);
	assert_int_equal(r.nr_regs, 1);
	assert_int_equal(r.regs[0].rkey, UINT64_MAX);
	assert_true(r.regs[0].host.ext);
	assert_int_equal(r.regs[0].host.id[15], 0x10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin_write_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_all_registrants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_no_reservation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_and_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unregister_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_formats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_anonymous_and_host_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notification_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
		cmocka_unit_test(test_ptpl),
		cmocka_unit_test(test_ptpl_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

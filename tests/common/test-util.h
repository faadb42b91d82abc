/* SPDX-License-Identifier: MIT */
/* Shared fixtures for the cmocka tests: a model plus an in-process host. */
#ifndef NVEMU_TEST_UTIL_H
#define NVEMU_TEST_UTIL_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine/nvemu-internal.h"

/*
 * The default fixture: one subsystem (nqn.2024-01.io.nvemu:test, SN
 * "NVEMU-TEST-0001", MN "nvemu test"), a PCIe port, controller 1 with every
 * optional command enabled and 4 I/O queues, namespace 1 (1024 x 512 B, RAM,
 * attached), namespace 2 (2048 x 512 B, RAM, not attached). The host has
 * enabled the controller, set Number of Queues and created I/O queue pair 1
 * (CQ 1 + SQ 1), as the Linux driver does at probe.
 */
struct tu_env {
	struct nvemu_subsys *subsys;
	struct nvemu_ctrl *ctrl;
	struct nvemu_host *host;
};

int tu_setup(void **state);	 /* the default fixture in *state */
int tu_setup_bare(void **state); /* subsystem + controller, not enabled, no namespaces */
int tu_teardown(void **state);
/* An Asynchronous Event Request the test owns; it must complete before teardown. */
struct tu_aer {
	struct nvemu_req req;
	bool done;
};
/* Submits it on the admin queue; a->done and a->req.cqe once an event completes it. */
void tu_aer_submit(struct tu_env *env, struct tu_aer *a, uint16_t cid);

/* Enable the controller and create I/O queue pair 1, as tu_setup() does. */
void tu_enable_with_io_queue(struct tu_env *env);

/*
 * Run a command on sqid (0: admin); returns the status. A CID is assigned
 * when cmd->cid is 0, and the command is remembered for tu_assert_failed().
 */
uint16_t tu_exec(struct tu_env *env, uint16_t sqid, const struct nvemu_sqe *cmd, void *buf,
		 uint32_t len, struct nvemu_cqe *cqe);
/* Run an admin / I/O (SQ 1) command through tu_exec(); returns the status. */
uint16_t tu_admin(struct tu_env *env, struct nvemu_sqe *cmd, void *buf, uint32_t len,
		  struct nvemu_cqe *cqe);
uint16_t tu_io(struct tu_env *env, struct nvemu_sqe *cmd, void *buf, uint32_t len,
	       struct nvemu_cqe *cqe);

uint16_t tu_identify(struct tu_env *env, uint8_t cns, uint32_t nsid, uint16_t cntid, void *buf4k);
uint16_t tu_get_log(struct tu_env *env, uint8_t lid, uint32_t nsid, uint64_t offset, bool rae,
		    void *buf, uint32_t len);
uint16_t tu_get_feature(struct tu_env *env, uint8_t fid, uint8_t sel, uint32_t cdw11,
			uint32_t *dw0);
uint16_t tu_set_feature(struct tu_env *env, uint8_t fid, bool save, uint32_t cdw11, uint32_t *dw0);
/* Read/Write nlb blocks (nlb is 1-based here) at slba of nsid on SQ 1. */
uint16_t tu_rw(struct tu_env *env, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
	       void *buf, uint32_t len);

/*
 * Invalid commands: got, the status of the last tu_exec() / tu_admin() /
 * tu_io() command, is exactly want (DNR included), and the Error
 * Information log (read with Get Log Page) gained one entry for it: error
 * count one more than before, SQID, CID, status field, NSID, and the
 * parameter error location (0xffff: none reported).
 */
#define tu_assert_failed(env, got, want) _tu_assert_failed(env, got, want, __FILE__, __LINE__)
void _tu_assert_failed(struct tu_env *env, uint16_t got, uint16_t want, const char *file, int line);
/* Run cmd on sqid, then tu_assert_failed(); returns the status. */
uint16_t tu_expect_error(struct tu_env *env, uint16_t sqid, struct nvemu_sqe *cmd, void *buf,
			 uint32_t len, uint16_t want);
/* The same for a command run some other way: check the newest entry. */
#define tu_assert_error_logged(env, count_before, sqid, cid, nsid, status, parm_loc)               \
	_tu_assert_error_logged(env, count_before, sqid, cid, nsid, status, parm_loc, __FILE__,    \
				__LINE__)
void _tu_assert_error_logged(struct tu_env *env, uint64_t count_before, uint16_t sqid, uint16_t cid,
			     uint32_t nsid, uint16_t status, uint16_t parm_loc, const char *file,
			     int line);
/* Error count of the controller, as the Error Information log reports it. */
uint64_t tu_error_count(struct tu_env *env);

/* Status checks that print the status in hex when they fail. */
#define assert_status(got, want) assert_int_equal((got)&0x7ff, (want)&0x7ff)
#define assert_success(got)	 assert_int_equal((got), 0)
#define assert_dnr(got)		 assert_true((got)&NVME_SC_DNR)

#endif

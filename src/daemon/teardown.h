/* SPDX-License-Identifier: MIT */
/*
 * Destroys and suspends that wait for in-flight commands without blocking
 * the loop. Method files call these; teardown.c calls only down into rpc.c
 * (deferred replies) and the registries, never back into a method file.
 */
#ifndef NVEMUD_TEARDOWN_H
#define NVEMUD_TEARDOWN_H

#include "rpc.h"

/*
 * The objects are held (no new commands), in-flight commands drain (aborted
 * past a timeout, then their completions are still awaited) and only then
 * freed. Each returns 0 (done at once), -1 (e set) or RPC_DEFERRED (the
 * reply follows).
 */
#define NVEMUD_TEARDOWN_ABORT_MS 1000
int nvemud_teardown_ctrl(struct nvemud *d, struct nvemud_ctrl *c, struct rpc_err *e);
int nvemud_teardown_subsys(struct nvemud *d, struct nvemu_subsys *s, struct rpc_err *e);
int nvemud_teardown_ns(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid,
		       struct rpc_err *e);
int nvemud_suspend_ctrl(struct nvemud *d, struct nvemud_ctrl *c, bool admin_only,
			unsigned timeout_ms, struct rpc_err *e);
bool nvemud_ns_destroying(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid);
bool nvemud_subsys_busy(struct nvemud *d, struct nvemu_subsys *s);
bool nvemud_nqn_destroying(struct nvemud *d, const char *nqn);
/* The teardown timers on d->loop (nvemud_new). */
int nvemud_teardown_init(struct nvemud *d);
/* Advance every teardown (from the loop, or the in-process driver). */
void nvemud_teardown_run(struct nvemud *d);
/* In process (or at shutdown): poll backends until *done or every teardown ends. */
void nvemud_teardown_drive(struct nvemud *d, const bool *done, unsigned timeout_ms);
/* Shutdown: finish what is left, waiting up to timeout_ms for I/O. */
void nvemud_teardown_finish_all(struct nvemud *d, unsigned timeout_ms);

#endif

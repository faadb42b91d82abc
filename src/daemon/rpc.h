/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 method registry and the one in-process entry point both the
 * socket server and the tests use. Every method declares its parameters;
 * they are all checked before the handler runs, so a handler only has
 * domain errors left to report, and a failing call changes nothing.
 */
#ifndef NVEMUD_RPC_H
#define NVEMUD_RPC_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "daemon.h"

/* JSON-RPC 2.0 */
#define RPC_ERR_PARSE -32700
#define RPC_ERR_INVALID_REQUEST -32600
#define RPC_ERR_METHOD_NOT_FOUND -32601
#define RPC_ERR_INVALID_PARAMS -32602
#define RPC_ERR_INTERNAL -32603
/* Domain errors */
#define RPC_ERR_NOT_FOUND -32000 /* unknown nqn, bdev, controller, NSID */
#define RPC_ERR_EXISTS -32001	 /* name/NSID/NQN already used, bdev in use */
#define RPC_ERR_BUSY -32002	 /* attached, not empty, host active, I/O in flight */
#define RPC_ERR_STATE -32003	 /* wrong state, e.g. controller not suspended */
#define RPC_ERR_LIMIT -32004	 /* a limit reached (mnan, queues, ...) */
#define RPC_ERR_IO -32005	 /* a file could not be read or written */

#define RPC_MAX_REQUEST (1024 * 1024)

struct rpc_err {
	int code;
	char msg[256];
};

/* Sets e and returns -1. */
int rpc_err_set(struct rpc_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Maps the engine's errno to a domain code and keeps its message. */
int rpc_err_nvemu(struct rpc_err *e, const struct nvemu_error *nerr);

enum rpc_ptype {
	RPC_P_STR,  /* min..max characters (max 0: unlimited) */
	RPC_P_UINT, /* integer in min..max */
	RPC_P_BOOL, /* true/false or 0/1 */
	RPC_P_UUID, /* "xxxxxxxx-xxxx-..." */
	RPC_P_OBJ,
};

struct rpc_param {
	const char *name;
	enum rpc_ptype type;
	bool required;
	uint64_t min, max;
};

/*
 * result: a new reference on success (json_true() if the method has nothing to say).
 * Returns 0, -1 (e set) or RPC_DEFERRED after rpc_defer(): the reply comes later.
 */
typedef int (*rpc_handler)(struct nvemud *d, json_t *params, json_t **result,
			   struct rpc_err *e);

#define RPC_DEFERRED 1

/* A request whose reply a method sends later (it waits for I/O to drain). */
struct rpc_pending;
/* resp: the response (stolen), NULL for a notification or a cancelled requester. */
typedef void (*rpc_reply_fn)(void *arg, json_t *resp);

/* Whether the running method may answer later; if not it must not wait. */
bool rpc_can_defer(struct nvemud *d);
/* The running request's deferred reply handle; only when rpc_can_defer(). */
struct rpc_pending *rpc_defer(struct nvemud *d);
/* Send the deferred reply: result (stolen) when e is NULL. Frees p. */
void rpc_pending_done(struct rpc_pending *p, json_t *result, const struct rpc_err *e);
/* The requester went away: the work goes on, its reply is dropped. */
void rpc_pending_cancel(struct rpc_pending *p);

struct rpc_method {
	const char *name;
	rpc_handler fn;
	const struct rpc_param *params; /* terminated by { NULL } */
	const char *help;
};

extern const struct rpc_method rpc_bdev_methods[];
extern const struct rpc_method rpc_bdev_delay_methods[];
extern const struct rpc_method rpc_bdev_error_methods[];
extern const struct rpc_method rpc_subsystem_methods[];
extern const struct rpc_method rpc_namespace_methods[];
extern const struct rpc_method rpc_controller_methods[];
extern const struct rpc_method rpc_health_methods[];
extern const struct rpc_method rpc_config_methods[];
extern const struct rpc_method rpc_nvmf_methods[];
extern const struct rpc_method rpc_mi_methods[];
extern const struct rpc_method rpc_virtio_blk_methods[];
extern const struct rpc_method rpc_bdev_nvme_methods[];
extern const struct rpc_method rpc_emulation_methods[];

/* ---- controllers on PCIe functions (rpc-emulation.c), for rpc-controller.c and config.c */
int rpc_func_select(struct nvemud *d, json_t *params, struct nvemud_func **f, struct rpc_err *e);
int rpc_func_check_create(struct nvemud *d, json_t *params, struct nvemud_func *f,
			  struct nvemu_subsys *s, struct rpc_err *e);
int rpc_func_open(struct nvemud *d, json_t *params, struct nvemud_func *f, struct nvemu_subsys *s,
		  uint16_t cntlid, struct rpc_err *e);
void rpc_func_opened(struct nvemud *d, json_t *params, struct nvemud_func *f,
		     struct nvemud_ctrl *c);
int rpc_func_destroy(struct nvemud *d, json_t *params, struct nvemud_ctrl *c, struct rpc_err *e);
int rpc_func_modify_msix(struct nvemud *d, json_t *params, struct nvemud_ctrl *c,
			 struct rpc_err *e);
int rpc_func_ctrl_name(struct nvemud *d, json_t *params, const char **name, struct rpc_err *e);
void rpc_func_ctrl_json(struct nvemud *d, struct nvemud_ctrl *c, json_t *o);
void rpc_func_save(struct nvemud *d, struct nvemud_ctrl *c, json_t *p);
json_t *rpc_funcs_save(struct nvemud *d);
extern const struct rpc_method rpc_live_update_methods[];
extern const struct rpc_method rpc_bdev_rbd_methods[];
extern const struct rpc_method rpc_keyring_methods[];

const struct rpc_method *rpc_find_method(const char *name);

/*
 * Run one request object and return the response object (new reference),
 * or NULL for a notification (no "id"). Never fails to produce an error
 * response for a bad request.
 */
json_t *nvemud_rpc_call(struct nvemud *d, json_t *request);
/*
 * The same without waiting: when the method answers later, returns NULL with
 * *pending set, and fn(arg, response) runs once the reply is ready (from the
 * event loop, never from inside this call) unless rpc_pending_cancel(*pending).
 */
json_t *nvemud_rpc_call_async(struct nvemud *d, json_t *request, rpc_reply_fn fn, void *arg,
			      struct rpc_pending **pending);
/* Response for a request that could not be read (parse error, too large). */
json_t *rpc_error_response(json_t *id, int code, const char *msg);
/* Convenience for internal callers (config load): method + params (stolen). */
int nvemud_rpc_invoke(struct nvemud *d, const char *method, json_t *params,
		      json_t **result, struct rpc_err *e);

/* Check params against a spec (unknown, missing, type, range). */
int rpc_check_params(json_t *params, const struct rpc_param *spec, struct rpc_err *e);

/* Accessors for checked params. */
const char *rpc_str(json_t *params, const char *name);
uint64_t rpc_uint(json_t *params, const char *name, uint64_t def);
bool rpc_bool(json_t *params, const char *name, bool def);
bool rpc_has(json_t *params, const char *name);

int rpc_ctrl_lookup(struct nvemud *d, json_t *params, struct nvemud_ctrl **c,
		    struct nvemu_ctrl **ctrl, struct rpc_err *e);
/* json-file.c: read a JSON file that must be a regular file (never blocks on a FIFO); field names it. */
int nvemud_read_json_file(const char *path, const char *field, json_t **out,
			  struct rpc_err *e);

/* snapshot.c: model objects as JSON */
/* A port as nvme_subsystem_list shows it; save_config reuses it as add_port params. */
json_t *nvemud_port_json(uint16_t id, const struct nvemu_port_params *p);
/* Its parameters as nvme_controller_create takes them, with "ctrl" (its cntlid). */
json_t *nvemud_ctrl_params_json(const struct nvemu_ctrl *ctrl);
/* The NSIDs of the namespaces attached to it. */
json_t *nvemud_ctrl_nsids_json(const struct nvemu_ctrl *ctrl);
json_t *nvemud_ctrl_snapshot(struct nvemud *d, struct nvemu_ctrl *ctrl);
/* Restores the state saved by nvemud_ctrl_snapshot into a freshly created ctrl. */
int nvemud_ctrl_restore(struct nvemud *d, struct nvemu_ctrl *ctrl, json_t *snap,
			struct rpc_err *e);

/* rpc-bdev.c: delete a registered bdev unless namespaces use it or I/O is in flight. */
int nvemud_bdev_delete(struct nvemud *d, struct nvemud_bdev *b, struct rpc_err *e);
/* rpc-bdev-delay.c: bdev_delay_create params that re-create a delay bdev (save_config) */
json_t *rpc_bdev_delay_params(struct nvemu_bdev *bdev);
/* Start-up with a bdev skipped: was name skipped? Skip name (logged) if its base was. */
bool rpc_bdev_skipped(struct nvemud *d, const char *name);
/* Is a namespace on bdev (stacked bdevs over it are not counted)? */
bool rpc_bdev_used_by_ns(struct nvemud *d, const struct nvemu_bdev *bdev);
bool rpc_bdev_base_skipped(struct nvemud *d, const char *name, const char *base);
/* rpc-bdev-error.c: bdev_error_create params, and its rules as bdev_error_inject_error params */
json_t *rpc_bdev_error_params(struct nvemu_bdev *bdev);
json_t *rpc_bdev_error_rules(struct nvemu_bdev *bdev);
/* Register an error bdev name over base (dbg_bdev_type); 0 or -1 with e set. */
int rpc_bdev_error_create_on(struct nvemud *d, const char *name, struct nvemud_bdev *base,
			     struct rpc_err *e);

/* rpc-bdev-nvme.c: bdev_nvme_attach_controller calls that re-attach every controller */
void rpc_bdev_nvme_save(struct nvemud *d, json_t *calls);

/* rpc-bdev-rbd.c: the bdev_rbd_create call that re-creates bdev name (cephx keys only with secrets) */
void rpc_bdev_rbd_save(struct nvemud *d, json_t *calls, const char *name, bool secrets);

/* config.c */
json_t *nvemud_save_config(struct nvemud *d);
/* The same, with secrets (RBD cephx keys) when asked. */
json_t *nvemud_save_config_ex(struct nvemud *d, bool secrets);
int nvemud_load_config(struct nvemud *d, json_t *cfg, struct rpc_err *e);
int nvemud_load_config_file(struct nvemud *d, const char *path, struct rpc_err *e);
/*
 * config-reload.c: apply the difference between the running configuration
 * and cfg (objects added, removed, changed; the unchanged keep their hosts).
 * 0 with *report {added, removed, changed, failed, ignored, unchanged}, or
 * -1 when cfg is not a configuration (nothing changed).
 */
int nvemud_reload_config(struct nvemud *d, json_t *cfg, json_t **report, struct rpc_err *e);
int nvemud_reload_config_file(struct nvemud *d, const char *path, json_t **report,
			      struct rpc_err *e);
/* json-file.c: write JSON to path atomically (tmp + rename); never over a bdev's file or a non-regular file. */
int nvemud_write_json(struct nvemud *d, const char *path, json_t *j, struct rpc_err *e);

#endif

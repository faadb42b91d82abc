/* SPDX-License-Identifier: MIT */
/*
 * The nvemud control plane, in process: every call goes through
 * nvemud_rpc_call() exactly as requests read from the socket do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "engine/nvemu-internal.h"
#include "event-loop.h"
#include "rpc-framer.h"
#include "rpc-server.h"
#include "rpc.h"
#include "teardown.h"

#define SNAP_NQN "nqn.2022-10.io.nvda.nvme:0"
#define SNAP_UUID "263826ad-19a3-4feb-bc25-4bc81ee7749e"

static struct nvemud *daemon_new(bool with_default)
{
	struct nvemud *d = nvemud_new(NULL, NVEMUD_LOG_ERR);
	struct nvemu_error err = { 0 };

	assert_non_null(d);
	if (with_default)
		assert_int_equal(nvemud_load_default(d, &err), 0);
	return d;
}

/* Run method with params given as JSON text; returns the whole response. */
static json_t *call(struct nvemud *d, const char *method, const char *params)
{
	json_t *req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 42, "method", method);
	json_t *resp;

	if (params) {
		json_error_t jerr;
		json_t *p = json_loads(params, JSON_DECODE_ANY, &jerr);

		if (!p)
			fail_msg("bad test params %s: %s", params, jerr.text);
		json_object_set_new(req, "params", p);
	}
	resp = nvemud_rpc_call(d, req);
	json_decref(req);
	assert_non_null(resp);
	assert_int_equal(json_integer_value(json_object_get(resp, "id")), 42);
	return resp;
}

/* Expect success; returns the result (new reference). */
static json_t *ok(struct nvemud *d, const char *method, const char *params)
{
	json_t *resp = call(d, method, params), *res = json_object_get(resp, "result");

	if (!res) {
		char *s = json_dumps(resp, 0);

		fail_msg("%s %s failed: %s", method, params ? params : "", s);
	}
	json_incref(res);
	json_decref(resp);
	return res;
}

static void ok_true(struct nvemud *d, const char *method, const char *params)
{
	json_t *r = ok(d, method, params);

	assert_true(json_is_true(r));
	json_decref(r);
}

static void err(struct nvemud *d, const char *method, const char *params, int code,
		const char *msg)
{
	json_t *resp = call(d, method, params), *e = json_object_get(resp, "error");
	const char *m;

	if (!e) {
		char *s = json_dumps(resp, 0);

		fail_msg("%s %s: expected error %d, got %s", method, params ? params : "", code, s);
	}
	assert_null(json_object_get(resp, "result"));
	m = json_string_value(json_object_get(e, "message"));
	if (json_integer_value(json_object_get(e, "code")) != code || !m || !strstr(m, msg))
		fail_msg("%s %s: expected %d \"%s\", got %lld \"%s\"", method,
			 params ? params : "", code, msg,
			 (long long)json_integer_value(json_object_get(e, "code")), m ? m : "");
	json_decref(resp);
}

/* Every list output, for "state unchanged" and "restored identically" checks. */
static char *lists(struct nvemud *d)
{
	static const char *const methods[] = { "bdev_list", "nvme_subsystem_list",
					       "nvme_namespace_list", "nvme_controller_list" };
	json_t *all = json_object();
	char *s;

	for (unsigned i = 0; i < 4; i++)
		json_object_set_new(all, methods[i], ok(d, methods[i], NULL));
	s = json_dumps(all, JSON_SORT_KEYS | JSON_INDENT(1));
	json_decref(all);
	return s;
}

static struct nvemu_ctrl *ctrl_of(struct nvemud *d, const char *name)
{
	struct nvemud_ctrl *c = nvemud_find_ctrl(d, name);

	assert_non_null(c);
	return nvemud_ctrl_get(c);
}

/* ---- the envelope */

static void test_envelope(void **state)
{
	struct nvemud *d = daemon_new(false);
	json_t *req, *resp;

	err(d, "no_such_method", NULL, RPC_ERR_METHOD_NOT_FOUND, "method not found: no_such_method");
	err(d, "bdev_list", "[1]", RPC_ERR_INVALID_PARAMS, "params: must be an object");

	req = json_loads("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"bdev_list\"}]", 0, NULL);
	resp = nvemud_rpc_call(d, req);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "error"), "code")),
			 RPC_ERR_INVALID_REQUEST);
	json_decref(req);
	json_decref(resp);

	req = json_loads("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"bdev_list\"}", 0, NULL);
	resp = nvemud_rpc_call(d, req);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "error"), "code")),
			 RPC_ERR_INVALID_REQUEST);
	json_decref(req);
	json_decref(resp);

	req = json_loads("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", 0, NULL);
	resp = nvemud_rpc_call(d, req);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "error"), "code")),
			 RPC_ERR_INVALID_REQUEST);
	json_decref(req);
	json_decref(resp);

	/* A notification gets no response but still runs. */
	req = json_loads("{\"jsonrpc\":\"2.0\",\"method\":\"bdev_malloc_create\","
			 "\"params\":{\"name\":\"n0\",\"num_blocks\":8}}", 0, NULL);
	assert_null(nvemud_rpc_call(d, req));
	json_decref(req);
	assert_non_null(nvemud_find_bdev(d, "n0"));

	resp = ok(d, "rpc_get_methods", NULL);
	assert_true(json_array_size(resp) >= 25);
	assert_int_equal(json_array_size(resp) > 0, 1);
	json_decref(resp);
	nvemud_free(d);
}

/* ---- the default (seed 000) */

static void test_default(void **state)
{
	struct nvemud *d = daemon_new(true);
	json_t *r = ok(d, "nvme_subsystem_list", NULL), *s = json_array_get(r, 0);

	assert_int_equal(json_array_size(r), 1);
	assert_string_equal(json_string_value(json_object_get(s, "nqn")), NVEMUD_DEFAULT_NQN);
	assert_int_equal(json_array_size(json_object_get(s, "ports")), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(s, "ports"), 1), "type")),
			    "two_wire");
	json_decref(r);
	r = ok(d, "nvme_namespace_list", NULL);
	assert_int_equal(json_array_size(r), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "num_blocks")),
			 1024);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 1), "num_blocks")),
			 2048);
	assert_int_equal(json_array_size(json_object_get(json_array_get(r, 0), "controllers")), 1);
	assert_int_equal(json_array_size(json_object_get(json_array_get(r, 1), "controllers")), 0);
	json_decref(r);
	assert_true(nvemu_ctrl_ns_attached(ctrl_of(d, "NVMeCtrl1"), 1));
	assert_false(nvemu_ctrl_ns_attached(ctrl_of(d, "NVMeCtrl1"), 2));
	nvemud_free(d);
}

/* ---- the SNAP sequence of seed 004 */

static void test_snap_sequence(void **state)
{
	struct nvemud *d = daemon_new(true);
	json_t *r, *c;
	char *before = lists(d), *after;

	r = ok(d, "bdev_malloc_create", "{\"name\":\"nvme0n1\",\"num_blocks\":4096,\"block_size\":512}");
	assert_string_equal(json_string_value(r), "nvme0n1");
	json_decref(r);
	r = ok(d, "nvme_subsystem_create", "{\"nqn\":\"" SNAP_NQN "\"}");
	assert_string_equal(json_string_value(r), SNAP_NQN);
	json_decref(r);
	r = ok(d, "nvme_namespace_create", "{\"bdev_name\":\"nvme0n1\",\"nsid\":1,\"nqn\":\"" SNAP_NQN
					   "\",\"uuid\":\"" SNAP_UUID "\"}");
	assert_int_equal(json_integer_value(r), 1);
	json_decref(r);
	r = ok(d, "nvme_controller_create", "{\"nqn\":\"" SNAP_NQN "\",\"suspended\":true}");
	assert_string_equal(json_string_value(r), "NVMeCtrl2");
	json_decref(r);
	assert_true(nvemu_ctrl_is_suspended(ctrl_of(d, "NVMeCtrl2")));
	ok_true(d, "nvme_controller_attach_ns", "{\"ctrl\":\"NVMeCtrl2\",\"nsid\":1}");
	ok_true(d, "nvme_controller_resume", "{\"ctrl\":\"NVMeCtrl2\"}");
	assert_false(nvemu_ctrl_is_suspended(ctrl_of(d, "NVMeCtrl2")));

	r = ok(d, "nvme_controller_list", "{\"nqn\":\"" SNAP_NQN "\"}");
	assert_int_equal(json_array_size(r), 1);
	c = json_array_get(r, 0);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "NVMeCtrl2");
	assert_int_equal(json_integer_value(json_object_get(c, "num_queues")), 1);
	assert_int_equal(json_integer_value(json_object_get(c, "mdts")), 7);
	assert_true(json_is_false(json_object_get(c, "suspended")));
	assert_int_equal(json_integer_value(json_array_get(json_object_get(c, "namespaces"), 0)), 1);
	json_decref(r);
	r = ok(d, "nvme_namespace_list", "{\"nqn\":\"" SNAP_NQN "\"}");
	assert_int_equal(json_array_size(r), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "uuid")),
			    SNAP_UUID);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "bdev_name")),
			    "nvme0n1");
	json_decref(r);

	/* Wrong teardown orders fail, with messages that say what to do. */
	err(d, "nvme_subsystem_destroy", "{\"nqn\":\"" SNAP_NQN "\"}", RPC_ERR_BUSY,
	    "destroy them first or use force");
	err(d, "nvme_namespace_destroy", "{\"nqn\":\"" SNAP_NQN "\",\"nsid\":1}", RPC_ERR_BUSY,
	    "attached to controller NVMeCtrl2: detach it first");
	err(d, "bdev_delete", "{\"name\":\"nvme0n1\"}", RPC_ERR_BUSY, "used by 1 namespace");
	err(d, "nvme_controller_snapshot_get", "{\"ctrl\":\"NVMeCtrl2\",\"filename\":\"/tmp/x\"}",
	    RPC_ERR_STATE, "not suspended");
	err(d, "nvme_controller_resume", "{\"ctrl\":\"NVMeCtrl2\"}", RPC_ERR_STATE,
	    "not suspended");
	err(d, "nvme_controller_attach_ns", "{\"ctrl\":\"NVMeCtrl2\",\"nsid\":1}", RPC_ERR_EXISTS,
	    "already attached");
	err(d, "nvme_namespace_create", "{\"bdev_name\":\"Malloc1\",\"nsid\":1,\"nqn\":\"" SNAP_NQN
					"\"}", RPC_ERR_EXISTS, "namespace 1 already exists");
	err(d, "nvme_namespace_create", "{\"bdev_name\":\"nvme0n1\",\"nsid\":2,\"nqn\":\"" SNAP_NQN
					"\"}", RPC_ERR_EXISTS, "already used by a namespace");
	err(d, "nvme_subsystem_create", "{\"nqn\":\"" SNAP_NQN "\"}", RPC_ERR_EXISTS,
	    "already exists");

	/* The right order. */
	ok_true(d, "nvme_controller_detach_ns", "{\"ctrl\":\"NVMeCtrl2\",\"nsid\":1}");
	err(d, "nvme_controller_detach_ns", "{\"ctrl\":\"NVMeCtrl2\",\"nsid\":1}",
	    RPC_ERR_NOT_FOUND, "not attached");
	ok_true(d, "nvme_controller_destroy", "{\"ctrl\":\"NVMeCtrl2\"}");
	err(d, "nvme_controller_destroy", "{\"ctrl\":\"NVMeCtrl2\"}", RPC_ERR_NOT_FOUND,
	    "no controller NVMeCtrl2");
	ok_true(d, "nvme_namespace_destroy", "{\"nqn\":\"" SNAP_NQN "\",\"nsid\":1}");
	ok_true(d, "nvme_subsystem_destroy", "{\"nqn\":\"" SNAP_NQN "\"}");
	ok_true(d, "bdev_delete", "{\"name\":\"nvme0n1\"}");
	err(d, "nvme_namespace_list", "{\"nqn\":\"" SNAP_NQN "\"}", RPC_ERR_NOT_FOUND,
	    "no subsystem");

	after = lists(d);
	assert_string_equal(before, after);
	free(before);
	free(after);
	nvemud_free(d);
}

static void test_force_destroy(void **state)
{
	struct nvemud *d = daemon_new(true);
	json_t *r;

	ok_true(d, "nvme_subsystem_destroy", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"force\":true}");
	r = ok(d, "nvme_controller_list", NULL);
	assert_int_equal(json_array_size(r), 0);
	json_decref(r);
	r = ok(d, "nvme_subsystem_list", NULL);
	assert_int_equal(json_array_size(r), 0);
	json_decref(r);
	/* The named bdevs outlive their namespaces and are free again. */
	ok_true(d, "bdev_delete", "{\"name\":\"Malloc0\"}");
	ok_true(d, "bdev_delete", "{\"name\":\"Malloc1\"}");
	nvemud_free(d);
}

/* ---- bad params for every method leave the state unchanged */

struct bad {
	const char *method, *params;
	int code;
	const char *msg;
};

static const struct bad bad_calls[] = {
	{ "bdev_malloc_create", "{\"num_blocks\":8}", -32602, "name: required" },
	{ "bdev_malloc_create", "{\"name\":\"x\"}", -32602, "num_blocks: required" },
	{ "bdev_malloc_create", "{\"name\":\"x\",\"num_blocks\":\"8\"}", -32602,
	  "num_blocks: must be an integer" },
	{ "bdev_malloc_create", "{\"name\":\"x\",\"num_blocks\":0}", -32602,
	  "num_blocks: must be an integer in 1.." },
	{ "bdev_malloc_create", "{\"name\":\"x\",\"num_blocks\":8,\"block_size\":1000}", -32602,
	  "block_size: must be a power of two" },
	{ "bdev_malloc_create", "{\"name\":\"x\",\"num_blocks\":8,\"foo\":1}", -32602,
	  "foo: unknown parameter" },
	{ "bdev_malloc_create", "{\"name\":\"Malloc0\",\"num_blocks\":8}", -32001,
	  "already exists" },
	{ "bdev_null_create", "{\"name\":\"\",\"num_blocks\":8}", -32602, "name: must not be empty" },
	{ "bdev_null_create", "{\"name\":7,\"num_blocks\":8}", -32602, "name: must be a string" },
	{ "bdev_file_create", "{\"name\":\"f\"}", -32602, "filename: required" },
	{ "bdev_file_create", "{\"name\":\"f\",\"filename\":\"/nonexistent/dir/x\"}", 0, "" },
	{ "bdev_file_create", "{\"name\":\"f\",\"filename\":\"/tmp/x\",\"read_only\":2}", -32602,
	  "read_only: must be a boolean" },
	{ "bdev_delete", "{}", -32602, "name: required" },
	{ "bdev_delete", "{\"name\":\"nope\"}", -32000, "no bdev nope" },
	{ "bdev_delete", "{\"name\":\"Malloc0\"}", -32002, "used by" },
	{ "bdev_list", "{\"name\":\"nope\"}", -32000, "no bdev nope" },
	{ "nvme_subsystem_create", "{}", -32602, "nqn: required" },
	{ "nvme_subsystem_create", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\",\"serial_number\":\"123456789012345678901\"}",
	  -32602, "serial_number: at most 20 characters" },
	{ "nvme_subsystem_create", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\",\"model_number\":\"12345678901234567890123456789012345678901\"}",
	  -32602, "model_number: at most 40 characters" },
	{ "nvme_subsystem_create", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\",\"nn\":0}", -32602,
	  "nn: must be an integer in 1..4294967294" },
	{ "nvme_subsystem_create", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\",\"nn\":4294967295}",
	  -32602, "nn: must be an integer in 1..4294967294" },
	{ "nvme_subsystem_create", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\",\"mnan\":-1}", -32602,
	  "mnan: must be an integer" },
	{ "nvme_subsystem_create", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\",\"nn\":4,\"mnan\":5}",
	  -32602, "mnan: at most nn" },
	{ "nvme_subsystem_create", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\",\"single_ctrl\":\"yes\"}",
	  -32602, "single_ctrl: must be a boolean" },
	{ "nvme_subsystem_create", "{\"nqn\":\"not an nqn\"}", -32602, "nqn" },
	{ "nvme_subsystem_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\"}", -32001, "already exists" },
	{ "nvme_subsystem_destroy", "{}", -32602, "nqn: required" },
	{ "nvme_subsystem_destroy", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\"}", -32000,
	  "no subsystem" },
	{ "nvme_subsystem_destroy", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"force\":\"1\"}", -32602,
	  "force: must be a boolean" },
	{ "nvme_subsystem_destroy", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\"}", -32002,
	  "destroy them first" },
	{ "nvme_subsystem_list", "{\"nqn\":5}", -32602, "nqn: must be a string" },
	{ "nvme_subsystem_add_port", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"type\":\"usb\"}", -32602,
	  "type: must be" },
	{ "nvme_subsystem_add_port", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"type\":\"pcie\",\"address\":3}",
	  -32602, "address: not a parameter of pcie ports" },
	{ "nvme_subsystem_remove_port", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"port\":0}", -32002, "" },
	{ "nvme_namespace_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"bdev_name\":\"x\"}", -32602,
	  "nsid: required" },
	{ "nvme_namespace_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"bdev_name\":\"nope\",\"nsid\":3}",
	  -32000, "bdev_name: no bdev nope" },
	{ "nvme_namespace_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"bdev_name\":\"spare\",\"nsid\":0}",
	  -32602, "nsid: must be an integer in 1..4294967294" },
	{ "nvme_namespace_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"bdev_name\":\"spare\",\"nsid\":3,\"uuid\":\"zzz\"}",
	  -32602, "uuid: must be a UUID" },
	{ "nvme_namespace_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"bdev_name\":\"spare\",\"nsid\":3,\"uuid\":12}",
	  -32602, "uuid: must be a UUID" },
	{ "nvme_namespace_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"bdev_name\":\"spare\",\"nsid\":2}",
	  -32001, "namespace 2 already exists" },
	{ "nvme_namespace_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"bdev_name\":\"spare\",\"nsid\":3,\"nguid\":\"0123456789abcdef0123456789abcdeg\"}",
	  -32602, "nguid: must be 32 hexadecimal digits" },
	{ "nvme_namespace_destroy", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\"}", -32602, "nsid: required" },
	{ "nvme_namespace_destroy", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"nsid\":9}", -32000,
	  "no namespace 9" },
	{ "nvme_namespace_destroy", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"nsid\":1}", -32002,
	  "detach it first" },
	{ "nvme_namespace_list", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\"}", -32000, "no subsystem" },
	{ "nvme_controller_create", "{}", -32602, "nqn: required" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"num_queues\":0}", -32602,
	  "num_queues: must be an integer in 1..128" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"num_queues\":32}", -32602,
	  "num_queues: 32 needs a vfio-user controller" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"mdts\":8}", -32602,
	  "mdts: must be an integer in 1..7" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"fw_slots\":8}", -32602,
	  "fw_slots: must be an integer in 1..7" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"compare\":3}", -32602,
	  "compare: must be a boolean" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"pf_idx\":0}", -32602,
	  "pf_idx: unknown parameter" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"port\":9}", -32000,
	  "port: no port 9" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"ctrl\":1}", -32001,
	  "controller id 1 already exists" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"name\":\"NVMeCtrl1\"}",
	  -32001, "already exists" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"snapshot\":\"/nonexistent\"}",
	  -32005, "snapshot: cannot read" },
	{ "nvme_controller_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"snapshot\":\"/x\",\"mdts\":3}",
	  -32602, "mdts: not allowed with snapshot" },
	{ "nvme_controller_destroy", "{}", -32602, "ctrl: required" },
	{ "nvme_controller_destroy", "{\"ctrl\":\"NVMeCtrl9\"}", -32000, "no controller NVMeCtrl9" },
	{ "nvme_controller_suspend", "{\"ctrl\":\"NVMeCtrl1\",\"timeout_ms\":-5}", -32602,
	  "timeout_ms: must be an integer" },
	{ "nvme_controller_suspend", "{\"ctrl\":\"NVMeCtrl9\"}", -32000, "no controller" },
	{ "nvme_controller_resume", "{\"ctrl\":\"NVMeCtrl1\"}", -32003, "not suspended" },
	{ "nvme_controller_resume", "{\"ctrl\":1}", -32602, "ctrl: must be a string" },
	{ "nvme_controller_snapshot_get", "{\"ctrl\":\"NVMeCtrl1\"}", -32602, "filename: required" },
	{ "nvme_controller_snapshot_get", "{\"ctrl\":\"NVMeCtrl1\",\"filename\":\"/tmp/s\"}", -32003,
	  "not suspended" },
	{ "nvme_controller_list", "{\"ctrl\":\"NVMeCtrl9\"}", -32000, "no controller" },
	{ "nvme_controller_modify", "{\"ctrl\":\"NVMeCtrl1\",\"num_queues\":40}", -32602,
	  "num_queues: 40 needs a vfio-user controller" },
	{ "nvme_controller_modify", "{\"ctrl\":\"NVMeCtrl1\",\"num_queues\":129}", -32602,
	  "num_queues: must be an integer in 1..128" },
	{ "nvme_controller_attach_ns", "{\"ctrl\":\"NVMeCtrl1\"}", -32602, "nsid: required" },
	{ "nvme_controller_attach_ns", "{\"ctrl\":\"NVMeCtrl1\",\"nsid\":7}", -32000,
	  "no namespace 7" },
	{ "nvme_controller_attach_ns", "{\"ctrl\":\"NVMeCtrl1\",\"nsid\":1}", -32001,
	  "already attached" },
	{ "nvme_controller_detach_ns", "{\"ctrl\":\"NVMeCtrl1\",\"nsid\":2}", -32000,
	  "not attached" },
	{ "nvme_controller_detach_ns", "{\"ctrl\":\"NVMeCtrl1\",\"nsid\":true}", -32602,
	  "nsid: must be an integer" },
	{ "nvme_controller_debug_get", "{}", -32602, "ctrl: required" },
	{ "nvme_controller_iostat", "{\"ctrl\":\"x\",\"y\":1}", -32602, "y: unknown parameter" },
	{ "nvme_subsystem_set_health", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"available_spare\":101}",
	  -32602, "available_spare: must be an integer in 0..100" },
	{ "nvme_subsystem_set_health", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"temperature\":\"hot\"}",
	  -32602, "temperature: must be an integer" },
	{ "nvme_subsystem_get_health", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:9\"}", -32000,
	  "no subsystem" },
	{ "save_config", "{\"filename\":\"/nonexistent/dir/cfg.json\"}", -32005, "cannot write" },
	{ "load_config", "{\"filename\":\"/nonexistent\"}", -32005, "filename: cannot read /nonexistent" },
	{ "rpc_get_methods", "{\"x\":1}", -32602, "x: unknown parameter" },
};

static void test_bad_params(void **state)
{
	struct nvemud *d = daemon_new(true);
	char *before;
	json_t *r;

	r = ok(d, "bdev_malloc_create", "{\"name\":\"spare\",\"num_blocks\":64}");
	json_decref(r);
	before = lists(d);
	for (size_t i = 0; i < sizeof(bad_calls) / sizeof(bad_calls[0]); i++) {
		const struct bad *b = &bad_calls[i];
		char *after;

		if (b->code) {
			err(d, b->method, b->params, b->code, b->msg);
		} else {
			/* Any error, as long as it is one. */
			json_t *resp = call(d, b->method, b->params);

			assert_non_null(json_object_get(resp, "error"));
			json_decref(resp);
		}
		after = lists(d);
		if (strcmp(before, after))
			fail_msg("%s %s changed the state", b->method, b->params);
		free(after);
	}
	free(before);
	nvemud_free(d);
}

/* ---- save_config and load */

static void test_save_load(void **state)
{
	struct nvemud *d = daemon_new(true), *d2, *d3;
	char path[] = "/tmp/nvemud-test-cfg-XXXXXX";
	struct rpc_err e = { 0 };
	char *a, *b, *c;
	json_t *cfg, *r;
	int fd;

	json_decref(ok(d, "bdev_null_create", "{\"name\":\"null0\",\"num_blocks\":100000,\"block_size\":4096}"));
	json_decref(ok(d, "bdev_malloc_create", "{\"name\":\"m9\",\"num_blocks\":64}"));
	json_decref(ok(d, "nvme_subsystem_create", "{\"nqn\":\"" SNAP_NQN "\",\"serial_number\":\"SN0001\","
						  "\"model_number\":\"SNAP-like\",\"nn\":64,\"mnan\":32,\"single_ctrl\":true}"));
	json_decref(ok(d, "nvme_subsystem_add_port", "{\"nqn\":\"" SNAP_NQN "\",\"type\":\"tcp\",\"trsvcid\":\"4421\"}"));
	json_decref(ok(d, "nvme_namespace_create", "{\"nqn\":\"" SNAP_NQN "\",\"bdev_name\":\"null0\",\"nsid\":5,"
						  "\"uuid\":\"" SNAP_UUID "\"}"));
	json_decref(ok(d, "nvme_namespace_create", "{\"nqn\":\"" SNAP_NQN "\",\"bdev_name\":\"m9\",\"nsid\":7}"));
	r = ok(d, "nvme_controller_create", "{\"nqn\":\"" SNAP_NQN "\",\"num_queues\":8,\"mdts\":5,"
					    "\"compare\":false,\"suspended\":true}");
	assert_string_equal(json_string_value(r), "NVMeCtrl2");
	json_decref(r);
	ok_true(d, "nvme_controller_attach_ns", "{\"ctrl\":\"NVMeCtrl2\",\"nsid\":7}");
	ok_true(d, "nvme_subsystem_set_health", "{\"nqn\":\"" SNAP_NQN "\",\"temperature\":320,"
						"\"percentage_used\":9}");
	ok_true(d, "nvme_controller_suspend", "{\"ctrl\":\"NVMeCtrl1\"}");

	cfg = ok(d, "save_config", NULL);
	a = lists(d);
	d2 = daemon_new(false);
	assert_int_equal(nvemud_load_config(d2, cfg, &e), 0);
	b = lists(d2);
	assert_string_equal(a, b);
	r = ok(d2, "nvme_subsystem_get_health", "{\"nqn\":\"" SNAP_NQN "\"}");
	assert_int_equal(json_integer_value(json_object_get(r, "temperature")), 320);
	assert_int_equal(json_integer_value(json_object_get(r, "percentage_used")), 9);
	json_decref(r);
	/* New controllers don't reuse restored names. */
	json_decref(ok(d2, "nvme_subsystem_create", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:1\"}"));
	r = ok(d2, "nvme_controller_create", "{\"nqn\":\"nqn.2022-10.io.nvda.nvme:1\"}");
	assert_string_equal(json_string_value(r), "NVMeCtrl3");
	json_decref(r);

	/* Through a file, as nvemud -c does. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	r = json_pack("{s:s}", "filename", path);
	assert_int_equal(nvemud_rpc_invoke(d, "save_config", r, NULL, &e), 0);
	d3 = daemon_new(false);
	assert_int_equal(nvemud_load_config_file(d3, path, &e), 0);
	c = lists(d3);
	assert_string_equal(a, c);
	/* Loading it twice collides, and says where (calls[0] sets the PCIe functions again). */
	assert_int_not_equal(nvemud_load_config_file(d3, path, &e), 0);
	assert_non_null(strstr(e.msg, "calls[1]"));
	unlink(path);

	free(a);
	free(b);
	free(c);
	json_decref(cfg);
	nvemud_free(d);
	nvemud_free(d2);
	nvemud_free(d3);
}

/* ---- suspend / snapshot / restore with I/O in flight */

struct io_ctx {
	bool done;
};

static void io_done(struct nvemu_req *req)
{
	((struct io_ctx *)req->transport_priv)->done = true;
}

static void host_setup_io(struct nvemu_host *h)
{
	struct nvemu_sqe cmd;

	assert_int_equal(nvemu_host_enable(h), 0);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_cq;
	cmd.dptr1 = 0x10000;
	cmd.cdw10 = 1 | 63u << 16;
	cmd.cdw11 = 1 | 1u << 1;
	assert_int_equal(nvemu_host_exec(h, 0, &cmd, NULL, 0, NULL), 0);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_sq;
	cmd.dptr1 = 0x20000;
	cmd.cdw10 = 1 | 63u << 16;
	cmd.cdw11 = 1 | 1u << 16;
	assert_int_equal(nvemu_host_exec(h, 0, &cmd, NULL, 0, NULL), 0);
}

static void rw_cmd(struct nvemu_sqe *cmd, uint8_t opc, uint64_t slba, uint32_t nlb)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->opc = opc;
	cmd->nsid = 1;
	cmd->cdw10 = (uint32_t)slba;
	cmd->cdw11 = (uint32_t)(slba >> 32);
	cmd->cdw12 = nlb - 1;
}

static void test_snapshot_restore(void **state)
{
	struct nvemud *d = daemon_new(false);
	char file[] = "/tmp/nvemud-test-bdev-XXXXXX", snap[64], params[512];
	uint8_t wbuf[4096], wbuf2[4096], rbuf[4096];
	struct nvemu_error nerr = { 0 };
	struct io_ctx ctx = { false };
	struct nvemu_req req;
	struct nvemu_host *h;
	struct nvemu_ctrl *ctrl;
	struct nvemu_sqe cmd;
	uint64_t writes_before;
	json_t *r, *dbg;
	int fd;

	fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	snprintf(snap, sizeof(snap), "%s.snap", file);
	snprintf(params, sizeof(params), "{\"name\":\"file0\",\"filename\":\"%s\"}", file);
	json_decref(ok(d, "bdev_file_create", params));
	json_decref(ok(d, "nvme_subsystem_create", "{\"nqn\":\"" SNAP_NQN "\"}"));
	json_decref(ok(d, "nvme_namespace_create", "{\"nqn\":\"" SNAP_NQN "\",\"bdev_name\":\"file0\","
						  "\"nsid\":1,\"uuid\":\"" SNAP_UUID "\"}"));
	json_decref(ok(d, "nvme_controller_create", "{\"nqn\":\"" SNAP_NQN "\",\"num_queues\":2,\"suspended\":true}"));
	ok_true(d, "nvme_controller_attach_ns", "{\"ctrl\":\"NVMeCtrl1\",\"nsid\":1}");
	ok_true(d, "nvme_controller_resume", "{\"ctrl\":\"NVMeCtrl1\"}");
	ctrl = ctrl_of(d, "NVMeCtrl1");
	assert_int_equal(nvemu_host_create(ctrl, &h, &nerr), 0);
	host_setup_io(h);

	for (unsigned i = 0; i < sizeof(wbuf); i++) {
		wbuf[i] = (uint8_t)(i * 7 + 1);
		wbuf2[i] = (uint8_t)(i * 13 + 5);
	}
	rw_cmd(&cmd, nvme_cmd_write, 0, 8);
	assert_int_equal(nvemu_host_exec(h, 1, &cmd, wbuf, sizeof(wbuf), NULL), 0);

	/* A write in flight on the file backend while we suspend. */
	memset(&req, 0, sizeof(req));
	rw_cmd(&req.cmd, nvme_cmd_write, 16, 8);
	req.buf = wbuf2;
	req.buf_len = sizeof(wbuf2);
	req.done = io_done;
	req.transport_priv = &ctx;
	nvemu_host_submit(h, 1, &req);
	/* io_uring: the completion is reaped later, by the suspend's polling. */
	assert_false(ctx.done);
	assert_int_equal(nvemu_ctrl_inflight(ctrl), 1);
	ok_true(d, "nvme_controller_suspend", "{\"ctrl\":\"NVMeCtrl1\",\"timeout_ms\":5000}");
	assert_true(ctx.done);
	assert_int_equal(req.cqe.status, 0);
	assert_int_equal(nvemu_ctrl_inflight(ctrl), 0);

	dbg = ok(d, "nvme_controller_debug_get", "{\"ctrl\":\"NVMeCtrl1\"}");
	assert_int_equal(json_array_size(json_object_get(dbg, "sqs")), 2);
	r = ok(d, "nvme_controller_iostat", "{\"ctrl\":\"NVMeCtrl1\"}");
	writes_before = (uint64_t)json_integer_value(json_object_get(r, "write_io_count"));
	assert_int_equal(writes_before, 2);
	json_decref(r);

	snprintf(params, sizeof(params), "{\"ctrl\":\"NVMeCtrl1\",\"filename\":\"%s\"}", snap);
	ok_true(d, "nvme_controller_snapshot_get", params);

	/* The host is still bound: destroying is refused until it goes. */
	err(d, "nvme_controller_destroy", "{\"ctrl\":\"NVMeCtrl1\"}", RPC_ERR_BUSY, "bound");
	nvemu_ctrl_bind_transport(ctrl, NULL, NULL, NULL); /* the host vanishes, no reset */
	free(h);
	err(d, "nvme_controller_destroy", "{\"ctrl\":\"NVMeCtrl1\"}", RPC_ERR_BUSY,
	    "enabled by a host");
	ok_true(d, "nvme_controller_destroy", "{\"ctrl\":\"NVMeCtrl1\",\"force\":true}");

	snprintf(params, sizeof(params), "{\"nqn\":\"" SNAP_NQN "\",\"snapshot\":\"%s\"}", snap);
	r = ok(d, "nvme_controller_create", params);
	assert_string_equal(json_string_value(r), "NVMeCtrl2");
	json_decref(r);
	ctrl = ctrl_of(d, "NVMeCtrl2");
	assert_true(nvemu_ctrl_is_suspended(ctrl));
	assert_true(nvemu_ctrl_ns_attached(ctrl, 1));
	assert_int_equal(ctrl->p.num_io_queues, 2);
	/* Registers and queues came back: the same debug view. */
	r = ok(d, "nvme_controller_debug_get", "{\"ctrl\":\"NVMeCtrl2\"}");
	json_object_del(r, "ctrl");
	json_object_del(dbg, "ctrl");
	assert_true(json_equal(r, dbg));
	json_decref(r);
	json_decref(dbg);
	r = ok(d, "nvme_controller_iostat", "{\"ctrl\":\"NVMeCtrl2\"}");
	assert_int_equal(json_integer_value(json_object_get(r, "write_io_count")), writes_before);
	json_decref(r);

	/* A new host picks up where the old one left: no re-enable, queue 1 exists. */
	assert_int_equal(nvemu_host_create(ctrl, &h, &nerr), 0);
	ok_true(d, "nvme_controller_resume", "{\"ctrl\":\"NVMeCtrl2\"}");
	rw_cmd(&cmd, nvme_cmd_read, 0, 8);
	memset(rbuf, 0, sizeof(rbuf));
	assert_int_equal(nvemu_host_exec(h, 1, &cmd, rbuf, sizeof(rbuf), NULL), 0);
	assert_memory_equal(rbuf, wbuf, sizeof(wbuf));
	rw_cmd(&cmd, nvme_cmd_read, 16, 8);
	assert_int_equal(nvemu_host_exec(h, 1, &cmd, rbuf, sizeof(rbuf), NULL), 0);
	assert_memory_equal(rbuf, wbuf2, sizeof(wbuf2));
	rw_cmd(&cmd, nvme_cmd_write, 32, 8);
	assert_int_equal(nvemu_host_exec(h, 1, &cmd, wbuf, sizeof(wbuf), NULL), 0);

	/* A snapshot that no longer fits is refused, changing nothing. */
	nvemu_host_destroy(h);
	ok_true(d, "nvme_controller_suspend", "{\"ctrl\":\"NVMeCtrl2\"}");
	ok_true(d, "nvme_controller_detach_ns", "{\"ctrl\":\"NVMeCtrl2\",\"nsid\":1}");
	ok_true(d, "nvme_namespace_destroy", "{\"nqn\":\"" SNAP_NQN "\",\"nsid\":1}");
	snprintf(params, sizeof(params), "{\"nqn\":\"" SNAP_NQN "\",\"snapshot\":\"%s\"}", snap);
	err(d, "nvme_controller_create", params, RPC_ERR_NOT_FOUND, "does not exist");

	unlink(snap);
	unlink(file);
	nvemud_free(d);
}

/* ---- health shows up in the SMART log */

static void test_health(void **state)
{
	struct nvemud *d = daemon_new(true);
	struct nvemu_error nerr = { 0 };
	struct nvme_smart_log smart;
	struct nvemu_host *h;
	struct nvemu_sqe cmd = { .opc = nvme_admin_get_log_page, .nsid = 0xffffffff };
	uint32_t numd = sizeof(smart) / 4 - 1;
	json_t *r;

	ok_true(d, "nvme_subsystem_set_health",
		"{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"temperature\":333,\"available_spare\":42,"
		"\"percentage_used\":17,\"critical_warning\":4}");
	r = ok(d, "nvme_subsystem_get_health", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\"}");
	assert_int_equal(json_integer_value(json_object_get(r, "temperature")), 333);
	assert_int_equal(json_integer_value(json_object_get(r, "critical_warning")), 4);
	json_decref(r);

	assert_int_equal(nvemu_host_create(ctrl_of(d, "NVMeCtrl1"), &h, &nerr), 0);
	assert_int_equal(nvemu_host_enable(h), 0);
	cmd.cdw10 = NVME_LOG_LID_SMART | (numd & 0xffff) << 16;
	memset(&smart, 0xa5, sizeof(smart));
	assert_int_equal(nvemu_host_exec(h, 0, &cmd, &smart, sizeof(smart), NULL), 0);
	assert_int_equal(smart.temperature[0] | smart.temperature[1] << 8, 333);
	assert_int_equal(smart.avail_spare, 42);
	assert_int_equal(smart.percent_used, 17);
	assert_true(smart.critical_warning & 4);
	nvemu_host_destroy(h);
	nvemud_free(d);
}

/* ---- modify */

static void test_modify(void **state)
{
	struct nvemud *d = daemon_new(true);
	struct nvemu_error nerr = { 0 };
	struct nvemu_host *h;
	json_t *r;

	ok_true(d, "nvme_controller_modify", "{\"ctrl\":\"NVMeCtrl1\",\"num_queues\":4}");
	r = ok(d, "nvme_controller_list", "{\"ctrl\":\"NVMeCtrl1\"}");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "num_queues")), 4);
	assert_int_equal(json_array_size(json_object_get(json_array_get(r, 0), "namespaces")), 1);
	json_decref(r);
	assert_int_equal(nvemu_host_create(ctrl_of(d, "NVMeCtrl1"), &h, &nerr), 0);
	assert_int_equal(nvemu_host_enable(h), 0);
	err(d, "nvme_controller_modify", "{\"ctrl\":\"NVMeCtrl1\",\"num_queues\":2}", RPC_ERR_BUSY,
	    "in use by a host");
	nvemu_host_destroy(h);
	nvemud_free(d);
}


/* ---- teardown with commands in flight: deferred replies, nothing blocks */

/* A backend whose I/O completes only when the test releases it. */
struct held_bdev {
	struct nvemu_bdev bdev;
	struct nvemu_bio *pending[8];
	unsigned n;
	bool release;
};

static int held_submit(struct nvemu_bdev *b, struct nvemu_bio *bio)
{
	struct held_bdev *hb = (struct held_bdev *)b;

	if (hb->n == 8)
		return -EAGAIN;
	hb->pending[hb->n++] = bio;
	return 0;
}

static int held_poll(struct nvemu_bdev *b)
{
	struct held_bdev *hb = (struct held_bdev *)b;
	unsigned n = hb->n;

	if (!hb->release || !n)
		return 0;
	hb->n = 0;
	for (unsigned i = 0; i < n; i++)
		hb->pending[i]->end_io(hb->pending[i], 0);
	return (int)n;
}

static unsigned held_inflight(struct nvemu_bdev *b)
{
	return ((struct held_bdev *)b)->n;
}

static void held_destroy(struct nvemu_bdev *b)
{
}

static const struct nvemu_bdev_ops held_ops = {
	.type = "held",
	.submit = held_submit,
	.poll = held_poll,
	.inflight = held_inflight,
	.destroy = held_destroy,
};

struct oob_cmd {
	struct nvemu_req req;
	bool done;
	uint16_t status;
};

static void oob_done(struct nvemu_req *req)
{
	struct oob_cmd *c = (struct oob_cmd *)req;

	c->done = true;
	c->status = req->cqe.status;
}

/*
 * Namespace 5 of the default subsystem on a held bdev, attached to
 * NVMeCtrl1, with a Format (user data erase) stuck in its backend.
 */
static void held_setup(struct nvemud *d, struct held_bdev *hb, struct oob_cmd *fmt)
{
	struct nvemu_error nerr = { 0 };

	memset(hb, 0, sizeof(*hb));
	assert_int_equal(nvemu_bdev_init(&hb->bdev, &held_ops, "held0", 1 << 20, 512, &nerr), 0);
	assert_int_equal(nvemud_add_bdev(d, &hb->bdev, NULL), 0);
	json_decref(ok(d, "nvme_namespace_create",
		       "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"bdev_name\":\"held0\",\"nsid\":5}"));
	ok_true(d, "nvme_controller_attach_ns", "{\"ctrl\":\"NVMeCtrl1\",\"nsid\":5}");
	memset(fmt, 0, sizeof(*fmt));
	fmt->req.cmd.opc = nvme_admin_format_nvm;
	fmt->req.cmd.nsid = 5;
	fmt->req.cmd.cdw10 = 1u << 9; /* SES: user data erase, goes to the backend */
	fmt->req.oob = true;
	fmt->req.done = oob_done;
	nvemu_ctrl_submit(ctrl_of(d, "NVMeCtrl1"), &fmt->req);
	assert_false(fmt->done);
	assert_int_equal(nvemu_ctrl_inflight(ctrl_of(d, "NVMeCtrl1")), 1);
}

struct reply {
	int calls;
	json_t *resp;
};

static void reply_fn(void *arg, json_t *resp)
{
	struct reply *r = arg;

	r->calls++;
	json_decref(r->resp);
	r->resp = resp;
}

static struct rpc_pending *call_async(struct nvemud *d, const char *method, const char *params,
				      struct reply *r)
{
	json_t *req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 7, "method",
				method, "params", json_loads(params, 0, NULL));
	struct rpc_pending *p;
	json_t *resp = nvemud_rpc_call_async(d, req, reply_fn, r, &p);

	json_decref(req);
	assert_null(resp);
	assert_non_null(p);
	return p;
}

static void test_destroy_waits_without_blocking(void **state)
{
	struct nvemud *d = daemon_new(true);
	struct held_bdev hb;
	struct oob_cmd fmt;
	struct reply r = { 0 };
	json_t *l;

	held_setup(d, &hb, &fmt);
	/* The reply waits for the command; the call itself returns at once. */
	call_async(d, "nvme_controller_destroy", "{\"ctrl\":\"NVMeCtrl1\",\"force\":true}", &r);
	assert_int_equal(r.calls, 0);
	/* Meanwhile it is out of reach of other RPCs, which are answered. */
	err(d, "nvme_controller_resume", "{\"ctrl\":\"NVMeCtrl1\"}", RPC_ERR_BUSY,
	    "being destroyed");
	err(d, "nvme_controller_destroy", "{\"ctrl\":\"NVMeCtrl1\",\"force\":true}", RPC_ERR_BUSY,
	    "being destroyed");
	err(d, "nvme_subsystem_destroy", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"force\":true}",
	    RPC_ERR_BUSY, "being destroyed");
	l = ok(d, "nvme_controller_list", NULL);
	assert_int_equal(json_array_size(l), 0);
	json_decref(l);
	/* Nothing was freed under the command. */
	nvemud_teardown_run(d);
	assert_int_equal(r.calls, 0);
	assert_non_null(nvemu_subsys_ctrl(nvemud_find_subsys(d, NVEMUD_DEFAULT_NQN), 1));
	/* Past the timeout the command is marked aborted and still awaited. */
	usleep((NVEMUD_TEARDOWN_ABORT_MS + 100) * 1000);
	nvemud_teardown_run(d);
	assert_int_equal(r.calls, 0);
	assert_false(fmt.done);
	hb.release = true;
	nvemud_poll_backends(d);
	assert_true(fmt.done);
	assert_int_equal(fmt.status & 0x7ff, NVME_SC_ABORT_REQ);
	nvemud_teardown_run(d);
	assert_int_equal(r.calls, 1);
	assert_true(json_is_true(json_object_get(r.resp, "result")));
	assert_null(nvemud_find_ctrl(d, "NVMeCtrl1"));
	assert_null(nvemu_subsys_ctrl(nvemud_find_subsys(d, NVEMUD_DEFAULT_NQN), 1));
	json_decref(r.resp);
	nvemud_free(d);
}

static void test_subsys_destroy_and_suspend_wait(void **state)
{
	struct nvemud *d = daemon_new(true);
	struct held_bdev hb;
	struct oob_cmd fmt;
	struct reply r = { 0 }, r2 = { 0 };
	struct rpc_pending *p;
	json_t *l;

	/* Suspend answers once the command is done. */
	held_setup(d, &hb, &fmt);
	call_async(d, "nvme_controller_suspend", "{\"ctrl\":\"NVMeCtrl1\"}", &r);
	err(d, "nvme_controller_resume", "{\"ctrl\":\"NVMeCtrl1\"}", RPC_ERR_BUSY,
	    "being suspended");
	nvemud_teardown_run(d);
	assert_int_equal(r.calls, 0);
	hb.release = true;
	nvemud_poll_backends(d);
	assert_true(fmt.done);
	assert_int_equal(fmt.status, 0);
	nvemud_teardown_run(d);
	assert_int_equal(r.calls, 1);
	assert_true(json_is_true(json_object_get(r.resp, "result")));
	ok_true(d, "nvme_controller_resume", "{\"ctrl\":\"NVMeCtrl1\"}");

	/* A forced subsystem destroy: gone from the lists at once, freed after the I/O. */
	hb.release = false;
	nvemu_ctrl_submit(ctrl_of(d, "NVMeCtrl1"), (memset(&fmt, 0, sizeof(fmt)),
						   fmt.req.cmd.opc = nvme_admin_format_nvm,
						   fmt.req.cmd.nsid = 5, fmt.req.cmd.cdw10 = 1u << 9,
						   fmt.req.oob = true, fmt.req.done = oob_done,
						   &fmt.req));
	assert_false(fmt.done);
	p = call_async(d, "nvme_subsystem_destroy",
		       "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"force\":true}", &r2);
	l = ok(d, "nvme_subsystem_list", NULL);
	assert_int_equal(json_array_size(l), 0);
	json_decref(l);
	err(d, "nvme_subsystem_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\"}", RPC_ERR_BUSY,
	    "still being destroyed");
	/* The requester goes away: the teardown still completes, its reply is dropped. */
	rpc_pending_cancel(p);
	hb.release = true;
	nvemud_teardown_drive(d, NULL, 5000);
	assert_true(fmt.done);
	assert_int_equal(r2.calls, 0);
	json_decref(ok(d, "nvme_subsystem_create", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\"}"));
	/* The namespace let go of its bdev. */
	assert_int_equal(hb.bdev.users, 0);
	json_decref(r.resp);
	nvemud_free(d);
}

/* A namespace detached while a command on it is in flight is freed only after that command. */
static void test_ns_destroy_waits_for_its_commands(void **state)
{
	struct nvemud *d = daemon_new(true);
	struct held_bdev hb;
	struct oob_cmd fmt;
	struct reply r = { 0 };
	json_t *l;

	held_setup(d, &hb, &fmt);
	ok_true(d, "nvme_controller_detach_ns", "{\"ctrl\":\"NVMeCtrl1\",\"nsid\":5}");
	call_async(d, "nvme_namespace_destroy", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"nsid\":5}",
		   &r);
	assert_int_equal(r.calls, 0);
	/* Out of reach meanwhile; the namespace (and its bdev) still exist for the command. */
	l = ok(d, "nvme_namespace_list", NULL);
	assert_int_equal(json_array_size(l), 2);
	json_decref(l);
	err(d, "nvme_namespace_destroy", "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"nsid\":5}",
	    RPC_ERR_BUSY, "being destroyed");
	err(d, "nvme_controller_attach_ns", "{\"ctrl\":\"NVMeCtrl1\",\"nsid\":5}", RPC_ERR_BUSY,
	    "being destroyed");
	err(d, "bdev_delete", "{\"name\":\"held0\"}", RPC_ERR_BUSY, "used by");
	nvemud_teardown_run(d);
	assert_int_equal(r.calls, 0);
	assert_non_null(nvemu_subsys_ns(nvemud_find_subsys(d, NVEMUD_DEFAULT_NQN), 5));
	hb.release = true;
	nvemud_poll_backends(d);
	assert_true(fmt.done);
	nvemud_teardown_run(d);
	assert_int_equal(r.calls, 1);
	assert_true(json_is_true(json_object_get(r.resp, "result")));
	assert_null(nvemu_subsys_ns(nvemud_find_subsys(d, NVEMUD_DEFAULT_NQN), 5));
	ok_true(d, "bdev_delete", "{\"name\":\"held0\"}");
	json_decref(r.resp);
	nvemud_free(d);
}

/* ---- the same through the socket: other clients are served while a reply waits */

static int connect_sock(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_str(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Run the loop until fd has a line (the reply) or rounds run out; returns it or NULL. */
static json_t *loop_reply(struct loop *loop, int fd, int rounds)
{
	char buf[65536];
	size_t len = 0;

	while (rounds-- > 0) {
		loop_run_once(loop, 10);
		/* A byte at a time: the next reply stays in the socket for the next call. */
		while (len < sizeof(buf) - 1) {
			ssize_t n = recv(fd, buf + len, 1, MSG_DONTWAIT);

			if (n <= 0)
				break;
			if (buf[len++] == '\n')
				return json_loadb(buf, len, 0, NULL);
		}
	}
	return NULL;
}

static void test_server_deferred_reply(void **state)
{
	struct loop *loop = loop_new();
	struct nvemud *d;
	struct nvemu_error nerr = { 0 };
	char dir[] = "/tmp/nvemud-test-XXXXXX", path[128];
	struct held_bdev hb;
	struct oob_cmd fmt;
	int a, b, c;
	json_t *resp;

	assert_non_null(loop);
	d = nvemud_new(loop, NVEMUD_LOG_ERR);
	assert_non_null(d);
	assert_int_equal(nvemud_load_default(d, &nerr), 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	assert_int_equal(rpc_server_start(d, path, &nerr), 0);
	held_setup(d, &hb, &fmt);

	a = connect_sock(path);
	send_str(a, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nvme_controller_destroy\","
		    "\"params\":{\"ctrl\":\"NVMeCtrl1\",\"force\":true}}\n"
		    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"bdev_list\"}\n");
	b = connect_sock(path);
	send_str(b, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"nvme_controller_list\"}\n");
	/* b is answered while a's destroy waits; a's next request waits its turn. */
	resp = loop_reply(loop, b, 50);
	assert_non_null(resp);
	assert_int_equal(json_integer_value(json_object_get(resp, "id")), 3);
	assert_int_equal(json_array_size(json_object_get(resp, "result")), 0);
	json_decref(resp);
	assert_null(loop_reply(loop, a, 20));
	/* A client that disconnects while its destroy waits. */
	c = connect_sock(path);
	send_str(c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"nvme_controller_suspend\","
		    "\"params\":{\"ctrl\":\"NVMeCtrl2\"}}\n");
	resp = loop_reply(loop, c, 50);
	assert_non_null(resp); /* no such controller: answered at once */
	json_decref(resp);
	close(c);

	hb.release = true;
	nvemud_poll_backends(d);
	resp = loop_reply(loop, a, 50);
	assert_non_null(resp);
	assert_int_equal(json_integer_value(json_object_get(resp, "id")), 1);
	assert_true(json_is_true(json_object_get(resp, "result")));
	json_decref(resp);
	resp = loop_reply(loop, a, 50);
	assert_non_null(resp);
	assert_int_equal(json_integer_value(json_object_get(resp, "id")), 2);
	json_decref(resp);
	assert_null(nvemud_find_ctrl(d, "NVMeCtrl1"));

	/* Disconnect while a reply is pending: handled, the teardown completes. */
	hb.release = false;
	json_decref(ok(d, "nvme_controller_create",
		       "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"name\":\"C9\"}"));
	ok_true(d, "nvme_controller_attach_ns", "{\"ctrl\":\"C9\",\"nsid\":5}");
	memset(&fmt, 0, sizeof(fmt));
	fmt.req.cmd.opc = nvme_admin_format_nvm;
	fmt.req.cmd.nsid = 5;
	fmt.req.cmd.cdw10 = 1u << 9;
	fmt.req.oob = true;
	fmt.req.done = oob_done;
	nvemu_ctrl_submit(ctrl_of(d, "C9"), &fmt.req);
	c = connect_sock(path);
	send_str(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"nvme_controller_destroy\","
		    "\"params\":{\"ctrl\":\"C9\",\"force\":true}}\n");
	assert_null(loop_reply(loop, c, 10));
	close(c);
	for (int i = 0; i < 10; i++)
		loop_run_once(loop, 10);
	hb.release = true;
	nvemud_poll_backends(d);
	for (int i = 0; i < 10; i++)
		loop_run_once(loop, 10);
	assert_true(fmt.done);
	assert_null(nvemud_find_ctrl(d, "C9"));

	close(a);
	close(b);
	rpc_server_stop(d);
	nvemud_free(d);
	loop_free(loop);
	rmdir(dir);
}

/* ---- the request framer */

static size_t frame_pieces(const char *s, size_t piece)
{
	struct rpc_framer f;
	size_t len = strlen(s), got = 0;

	rpc_framer_reset(&f);
	for (size_t have = piece; !got; have += piece) {
		if (have > len)
			have = len;
		got = rpc_framer_scan(&f, s, have, false);
		if (have == len)
			break;
	}
	return got;
}

static void test_framer(void **state)
{
	static const struct {
		const char *in;
		size_t want; /* 0: incomplete */
	} cases[] = {
		{ "{\"a\":1}", 7 },
		{ "{\"a\":1} {\"b\":2}", 7 },
		{ "{\"a\":\"}\"}x", 9 },	 /* a brace inside a string */
		{ "{\"a\":\"\\\"}\"}x", 11 }, /* an escaped quote before it */
		{ "{\"a\":\"\\\\\"}x", 10 },	 /* an escaped backslash, then the closing quote */
		{ "[[[{}]]]]", 8 },
		{ "{\"a\":[1,{\"b\":{}}]", 0 },
		{ "\"str\\\"ing\" 1", 10 },
		{ "{\"a\":\"\\u007d\"}", 14 },
		{ "{", 0 },
	};
	struct rpc_framer f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t piece = 1; piece <= 4; piece++) {
			if (frame_pieces(cases[i].in, piece) != cases[i].want)
				fail_msg("framer: %s in pieces of %zu: got %zu, want %zu",
					 cases[i].in, piece, frame_pieces(cases[i].in, piece),
					 cases[i].want);
		}
	}
	/* End of input makes what is there the value; a bare scalar needs no delimiter. */
	rpc_framer_reset(&f);
	assert_int_equal(rpc_framer_scan(&f, "{\"a\"", 4, true), 4);
	rpc_framer_reset(&f);
	assert_int_equal(rpc_framer_scan(&f, "42", 2, false), 2);
	rpc_framer_reset(&f);
	assert_int_equal(rpc_framer_scan(&f, "42 {}", 5, false), 2);
	/* Each call scans only the new bytes. */
	rpc_framer_reset(&f);
	assert_int_equal(rpc_framer_scan(&f, "{\"a\":[", 6, false), 0);
	assert_int_equal(f.pos, 6);
	assert_int_equal(f.depth, 2);
	assert_int_equal(rpc_framer_scan(&f, "{\"a\":[]}", 8, false), 8);
}

/* ---- configuration */

static void test_nested_load_config(void **state)
{
	struct nvemud *d = daemon_new(false);
	char path[] = "/tmp/nvemud-test-nested-XXXXXX", msg[256];
	json_t *cfg, *params;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	cfg = json_pack("{s:i, s:[{s:s, s:{s:s}}]}", "nvemu_config", 1, "calls", "method",
			"load_config", "params", "filename", path);
	assert_int_equal(json_dumpfd(cfg, fd, 0), 0);
	close(fd);
	json_decref(cfg);
	/* The file loads itself: refused (it used to recurse until the stack ran out). */
	params = json_pack("{s:s}", "filename", path);
	{
		char *p = json_dumps(params, 0);

		err(d, "load_config", p, RPC_ERR_INVALID_PARAMS,
		    "calls[0] load_config: load_config: not allowed inside a configuration");
		free(p);
	}
	json_decref(params);
	/* Still usable afterwards. */
	snprintf(msg, sizeof(msg), "{\"filename\":\"%s\"}", path);
	err(d, "load_config", msg, RPC_ERR_INVALID_PARAMS, "not allowed");
	json_decref(ok(d, "bdev_list", NULL));
	unlink(path);
	nvemud_free(d);
}

static void test_fifo_refused(void **state)
{
	struct nvemud *d = daemon_new(true);
	char dir[] = "/tmp/nvemud-test-fifo-XXXXXX", fifo[128], params[512];

	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	/* Each would have blocked in open() waiting for a writer. */
	snprintf(params, sizeof(params), "{\"filename\":\"%s\"}", fifo);
	err(d, "load_config", params, RPC_ERR_INVALID_PARAMS, "filename: ");
	err(d, "load_config", params, RPC_ERR_INVALID_PARAMS, "is not a regular file");
	snprintf(params, sizeof(params),
		 "{\"nqn\":\"" NVEMUD_DEFAULT_NQN "\",\"snapshot\":\"%s\"}", fifo);
	err(d, "nvme_controller_create", params, RPC_ERR_INVALID_PARAMS,
	    "snapshot: ");
	/* Nor is a FIFO written through by save_config. */
	snprintf(params, sizeof(params), "{\"filename\":\"%s\"}", fifo);
	err(d, "save_config", params, RPC_ERR_INVALID_PARAMS, "not a regular file");
	unlink(fifo);
	rmdir(dir);
	nvemud_free(d);
}

/* Host-created (Namespace Management) namespaces and file bdev options survive save/load. */
static void test_save_nsmgmt_and_file_options(void **state)
{
	struct nvemud *d = daemon_new(true), *d2;
	struct nvemu_subsys *s = nvemud_find_subsys(d, NVEMUD_DEFAULT_NQN);
	char img[] = "/tmp/nvemud-test-img-XXXXXX", params[512];
	struct rpc_err e = { 0 };
	json_t *cfg, *l, *cfg2;
	char *a, *b;
	uint32_t nsid;
	int fd = mkstemp(img);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	/* What the Namespace Management admin command does for a host. */
	assert_int_equal(nvemu_subsys_ns_create_status(s, 100, 0, &nsid), 0);
	l = ok(d, "bdev_list", "{\"name\":\"NsMgmt1\"}");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "num_blocks")), 100);
	json_decref(l);
	snprintf(params, sizeof(params),
		 "{\"name\":\"f0\",\"filename\":\"%s\",\"num_blocks\":256,\"direct\":true}", img);
	json_decref(ok(d, "bdev_file_create", params));
	cfg = ok(d, "save_config", NULL);
	a = lists(d);

	d2 = daemon_new(false);
	assert_int_equal(nvemud_load_config(d2, cfg, &e), 0);
	b = lists(d2);
	assert_string_equal(a, b);
	l = ok(d2, "nvme_namespace_list", NULL);
	assert_int_equal(json_array_size(l), 3);
	json_decref(l);
	l = ok(d2, "bdev_list", "{\"name\":\"f0\"}");
	/* The file is 1 MiB; the given 256 blocks are kept, and so is O_DIRECT. */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "num_blocks")), 256);
	assert_true(json_is_true(json_object_get(json_array_get(l, 0), "direct")));
	json_decref(l);
	cfg2 = ok(d2, "save_config", NULL);
	assert_true(json_equal(cfg, cfg2));
	json_decref(cfg2);

	/* A host deleting its namespace frees the bdev, which leaves the list. */
	assert_int_equal(nvemu_subsys_remove_ns(s, nsid, NULL), 0);
	err(d, "bdev_list", "{\"name\":\"NsMgmt1\"}", RPC_ERR_NOT_FOUND, "no bdev");
	free(a);
	free(b);
	json_decref(cfg);
	nvemud_free(d);
	nvemud_free(d2);
	unlink(img);
}

/* Port ids are handed out anew on reload: a controller on a later port still loads. */
static void test_save_port_ids(void **state)
{
	struct nvemud *d = daemon_new(false), *d2;
	struct rpc_err e = { 0 };
	json_t *cfg, *cfg2;

	json_decref(ok(d, "nvme_subsystem_create", "{\"nqn\":\"" SNAP_NQN "\"}"));
	json_decref(ok(d, "nvme_subsystem_add_port", "{\"nqn\":\"" SNAP_NQN "\",\"type\":\"pcie\"}"));
	json_decref(ok(d, "nvme_subsystem_add_port", "{\"nqn\":\"" SNAP_NQN "\",\"type\":\"pcie\","
						    "\"port_number\":3}"));
	ok_true(d, "nvme_subsystem_remove_port", "{\"nqn\":\"" SNAP_NQN "\",\"port\":0}");
	json_decref(ok(d, "nvme_controller_create", "{\"nqn\":\"" SNAP_NQN "\",\"port\":1}"));
	cfg = ok(d, "save_config", NULL);
	d2 = daemon_new(false);
	if (nvemud_load_config(d2, cfg, &e))
		fail_msg("the saved configuration does not load: %s", e.msg);
	cfg2 = ok(d2, "save_config", NULL);
	assert_true(json_equal(cfg, cfg2));
	json_decref(cfg);
	json_decref(cfg2);
	nvemud_free(d);
	nvemud_free(d2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_snap_sequence),
		cmocka_unit_test(test_force_destroy),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_snapshot_restore),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_modify),
		cmocka_unit_test(test_destroy_waits_without_blocking),
		cmocka_unit_test(test_subsys_destroy_and_suspend_wait),
		cmocka_unit_test(test_ns_destroy_waits_for_its_commands),
		cmocka_unit_test(test_server_deferred_reply),
		cmocka_unit_test(test_framer),
		cmocka_unit_test(test_nested_load_config),
		cmocka_unit_test(test_fifo_refused),
		cmocka_unit_test(test_save_nsmgmt_and_file_options),
		cmocka_unit_test(test_save_port_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Reload (SIGHUP, systemctl reload): bring the running configuration to
 * what the file says without touching what did not change, so hosts of
 * unchanged objects stay connected. Both sides are lists of calls
 * (save_config's for the running one); calls are grouped into objects
 * (a bdev, a subsystem with its ports, a namespace, a listener, a host, a
 * controller with its attachments, an MI endpoint, a virtio-blk export),
 * objects are compared, an object whose parent changes changes with it, and
 * removals run before additions, children before parents.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

enum obj_kind {
	OBJ_BDEV,
	OBJ_BDEV_NVME,
	OBJ_SUBSYS,
	OBJ_ACCESS, /* allow_any_host: reapplied, never removed */
	OBJ_HEALTH, /* the same */
	OBJ_HOST,
	OBJ_LISTENER,
	OBJ_NS,
	OBJ_CTRL,
	OBJ_MI,
	OBJ_VBLK,
	OBJ_OTHER, /* a method reload does not know */
};

enum obj_state { ST_SAME, ST_CHANGED, ST_GONE, ST_NEW };

static const char *str(json_t *p, const char *k)
{
	const char *s = json_string_value(json_object_get(p, k));

	return s ? s : "";
}

/* A listener's address, from listen_address or the flat form. */
static json_t *listen_addr(json_t *p)
{
	json_t *la = json_object_get(p, "listen_address");

	if (json_is_object(la))
		return json_incref(la);
	la = json_object();
	for (const char *const *k = (const char *const[]){ "trtype", "adrfam", "traddr", "trsvcid",
							   NULL };
	     *k; k++)
		if (json_object_get(p, *k))
			json_object_set(la, *k, json_object_get(p, *k));
	return la;
}

static char *keyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *keyf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/*
 * The object a call belongs to (key), its kind and the objects it depends
 * on (parents, appended). objs: the objects so far (controllers' NQNs).
 */
static char *classify(const char *method, json_t *p, json_t *objs, size_t idx,
		      enum obj_kind *kind, json_t *parents)
{
	const char *nqn = str(p, "nqn");

#define PARENT(...)                                                                              \
	do {                                                                                     \
		char *k_ = keyf(__VA_ARGS__);                                                    \
		if (k_)                                                                          \
			json_array_append_new(parents, json_string(k_));                         \
		free(k_);                                                                        \
	} while (0)

	if (!strcmp(method, "bdev_malloc_create") || !strcmp(method, "bdev_null_create") ||
	    !strcmp(method, "bdev_file_create")) {
		*kind = OBJ_BDEV;
		return keyf("bdev %s", str(p, "name"));
	}
	if (!strcmp(method, "bdev_delay_create")) {
		*kind = OBJ_BDEV;
		PARENT("bdev %s", str(p, "base_bdev_name"));
		return keyf("bdev %s", str(p, "name"));
	}
	if (!strcmp(method, "bdev_nvme_attach_controller")) {
		*kind = OBJ_BDEV_NVME;
		return keyf("bdev_nvme %s", str(p, "name"));
	}
	if (!strcmp(method, "nvme_subsystem_create") || !strcmp(method, "nvme_subsystem_add_port")) {
		*kind = OBJ_SUBSYS;
		return keyf("subsystem %s", nqn);
	}
	if (!strcmp(method, "nvmf_subsystem_allow_any_host")) {
		*kind = OBJ_ACCESS;
		PARENT("subsystem %s", nqn);
		return keyf("allow_any_host %s", nqn);
	}
	if (!strcmp(method, "nvme_subsystem_set_health")) {
		*kind = OBJ_HEALTH;
		PARENT("subsystem %s", nqn);
		return keyf("health %s", nqn);
	}
	if (!strcmp(method, "nvmf_subsystem_add_host")) {
		*kind = OBJ_HOST;
		PARENT("subsystem %s", nqn);
		return keyf("host %s %s", nqn, str(p, "host"));
	}
	if (!strcmp(method, "nvmf_subsystem_add_listener") ||
	    !strcmp(method, "nvmf_subsystem_listener_set_ana_state")) {
		json_t *la = listen_addr(p);
		char *k = keyf("listener %s %s:%s", nqn, str(la, "traddr"), str(la, "trsvcid"));

		json_decref(la);
		*kind = OBJ_LISTENER;
		PARENT("subsystem %s", nqn);
		return k;
	}
	if (!strcmp(method, "nvme_namespace_create") || !strcmp(method, "nvmf_ns_add_host")) {
		*kind = OBJ_NS;
		PARENT("subsystem %s", nqn);
		if (json_object_get(p, "bdev_name"))
			PARENT("bdev %s", str(p, "bdev_name"));
		return keyf("namespace %s %lld", nqn,
			    (long long)json_integer_value(json_object_get(p, "nsid")));
	}
	if (!strcmp(method, "nvme_controller_create")) {
		*kind = OBJ_CTRL;
		PARENT("subsystem %s", nqn);
		return keyf("controller %s", str(p, "name"));
	}
	if (!strcmp(method, "nvme_controller_attach_ns") || !strcmp(method, "nvme_controller_resume") ||
	    !strcmp(method, "nvme_controller_suspend")) {
		char *k = keyf("controller %s", str(p, "ctrl"));
		json_t *o = k ? json_object_get(objs, k) : NULL;

		*kind = OBJ_CTRL;
		if (o && !strcmp(method, "nvme_controller_attach_ns"))
			PARENT("namespace %s %lld", str(o, "nqn"),
			       (long long)json_integer_value(json_object_get(p, "nsid")));
		return k;
	}
	if (!strcmp(method, "nvme_mi_endpoint_create")) {
		*kind = OBJ_MI;
		PARENT("subsystem %s", nqn);
		return keyf("mi_endpoint %lld:%lld",
			    (long long)json_integer_value(json_object_get(p, "net")),
			    (long long)json_integer_value(json_object_get(p, "eid")));
	}
	if (!strcmp(method, "virtio_blk_controller_create") ||
	    !strcmp(method, "virtio_blk_controller_suspend")) {
		*kind = OBJ_VBLK;
		if (json_object_get(p, "bdev"))
			PARENT("bdev %s", str(p, "bdev"));
		if (json_object_get(p, "nqn"))
			PARENT("subsystem %s", nqn);
		if (json_object_get(p, "device"))
			PARENT("*"); /* by serial number or partition: any subsystem or bdev */
		return keyf("virtio_blk %s", str(p, "ctrl"));
	}
#undef PARENT
	*kind = OBJ_OTHER;
	return keyf("call %zu %s", idx, method);
}

/* {key: {kind, calls: [...], parents: [...], nqn, order}}; NULL when out of memory. */
static json_t *group(json_t *calls, json_t *keys)
{
	json_t *objs = json_object(), *c;
	size_t i;

	json_array_foreach(calls, i, c) {
		const char *method = json_string_value(json_object_get(c, "method"));
		json_t *p = json_object_get(c, "params"), *parents = json_array(), *o;
		enum obj_kind kind;
		char *key;

		if (!method || !strcmp(method, "save_config")) {
			json_decref(parents);
			json_array_append_new(keys, json_null());
			continue;
		}
		key = classify(method, p, objs, i, &kind, parents);
		if (!key) {
			json_decref(parents);
			json_decref(objs);
			return NULL;
		}
		o = json_object_get(objs, key);
		if (!o) {
			o = json_pack("{s:i, s:[], s:[], s:s, s:I}", "kind", kind, "calls", "parents",
				      "nqn", str(p, "nqn"), "order", (json_int_t)json_object_size(objs));
			json_object_set_new(objs, key, o);
		}
		json_array_append(json_object_get(o, "calls"), c);
		json_array_extend(json_object_get(o, "parents"), parents);
		json_decref(parents);
		json_array_append_new(keys, json_string(key));
		free(key);
	}
	return objs;
}

/* Everything the file says is as running says (what it leaves out: defaults). */
static bool subset(json_t *f, json_t *r)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(f)) {
		if (!json_is_object(r))
			return false;
		json_object_foreach(f, k, v)
			if (!subset(v, json_object_get(r, k)))
				return false;
		return true;
	}
	if (json_is_array(f)) {
		if (!json_is_array(r) || json_array_size(f) != json_array_size(r))
			return false;
		json_array_foreach(f, i, v)
			if (!subset(v, json_array_get(r, i)))
				return false;
		return true;
	}
	return json_equal(f, r);
}

static enum obj_kind kind_of(json_t *o)
{
	return (enum obj_kind)json_integer_value(json_object_get(o, "kind"));
}

static enum obj_state state_of(json_t *o)
{
	return (enum obj_state)json_integer_value(json_object_get(o, "state"));
}

static void set_state(json_t *o, enum obj_state st)
{
	json_object_set_new(o, "state", json_integer(st));
}

/* Did parent key (in run) change or go? "*": any subsystem, namespace or bdev did. */
static bool parent_moved(json_t *run, const char *key)
{
	json_t *o;
	const char *k;

	if (strcmp(key, "*")) {
		o = json_object_get(run, key);
		if (!o && !strncmp(key, "bdev ", 5)) {
			/* A bdev_nvme namespace: "<name>n<nsid>" of controller <name>. */
			json_object_foreach(run, k, o) {
				size_t n = strlen(k) - 10;

				if (kind_of(o) == OBJ_BDEV_NVME && !strncmp(key + 5, k + 10, n) &&
				    key[5 + n] == 'n' && state_of(o) != ST_SAME)
					return true;
			}
			return false;
		}
		return o && state_of(o) != ST_SAME;
	}
	json_object_foreach(run, k, o) {
		enum obj_kind kd = kind_of(o);

		if ((kd == OBJ_SUBSYS || kd == OBJ_NS || kd == OBJ_BDEV || kd == OBJ_BDEV_NVME) &&
		    state_of(o) != ST_SAME)
			return true;
	}
	return false;
}

static void compare(json_t *run, json_t *file)
{
	const char *k;
	json_t *o, *fo;
	bool again = true;

	json_object_foreach(run, k, o) {
		fo = json_object_get(file, k);
		if (!fo)
			set_state(o, kind_of(o) == OBJ_OTHER ? ST_SAME : ST_GONE);
		else
			set_state(o, subset(json_object_get(fo, "calls"), json_object_get(o, "calls")) ?
					     ST_SAME :
					     ST_CHANGED);
	}
	/* A child of a changed or removed object is made again with it. */
	while (again) {
		again = false;
		json_object_foreach(run, k, o) {
			json_t *p;
			size_t i;

			if (state_of(o) != ST_SAME)
				continue;
			json_array_foreach(json_object_get(o, "parents"), i, p)
				if (parent_moved(run, json_string_value(p))) {
					set_state(o, json_object_get(file, k) ? ST_CHANGED : ST_GONE);
					again = true;
					break;
				}
		}
	}
	json_object_foreach(file, k, fo) {
		o = json_object_get(run, k);
		set_state(fo, o ? state_of(o) : ST_NEW);
	}
}

/* The call that removes object o (running side), or NULL when there is none. */
static json_t *removal(const char *key, json_t *o)
{
	json_t *c0 = json_array_get(json_object_get(o, "calls"), 0);
	const char *m = str(c0, "method");
	json_t *p = json_object_get(c0, "params");

	(void)key;
	switch (kind_of(o)) {
	case OBJ_BDEV:
		return json_pack("{s:s, s:{s:s}}", "method",
				 strcmp(m, "bdev_delay_create") ? "bdev_delete" : "bdev_delay_delete",
				 "params", "name", str(p, "name"));
	case OBJ_BDEV_NVME:
		return json_pack("{s:s, s:{s:s}}", "method", "bdev_nvme_detach_controller", "params",
				 "name", str(p, "name"));
	case OBJ_SUBSYS:
		return json_pack("{s:s, s:{s:s, s:b}}", "method", "nvme_subsystem_destroy", "params",
				 "nqn", str(p, "nqn"), "force", 1);
	case OBJ_HOST:
		return json_pack("{s:s, s:{s:s, s:s}}", "method", "nvmf_subsystem_remove_host",
				 "params", "nqn", str(p, "nqn"), "host", str(p, "host"));
	case OBJ_LISTENER:
		return json_pack("{s:s, s:{s:s, s:o}}", "method", "nvmf_subsystem_remove_listener",
				 "params", "nqn", str(p, "nqn"), "listen_address", listen_addr(p));
	case OBJ_NS:
		return json_pack("{s:s, s:{s:s, s:O}}", "method", "nvme_namespace_destroy", "params",
				 "nqn", str(p, "nqn"), "nsid", json_object_get(p, "nsid"));
	case OBJ_CTRL:
		return json_pack("{s:s, s:{s:s, s:b}}", "method", "nvme_controller_destroy", "params",
				 "ctrl", str(p, "name"), "force", 1);
	case OBJ_MI:
		return json_pack("{s:s, s:{s:O, s:O}}", "method", "nvme_mi_endpoint_destroy", "params",
				 "net", json_object_get(p, "net"), "eid", json_object_get(p, "eid"));
	case OBJ_VBLK:
		return json_pack("{s:s, s:{s:s}}", "method", "virtio_blk_controller_destroy", "params",
				 "ctrl", str(p, "ctrl"));
	default:
		return NULL; /* allow_any_host, health: set again; unknown calls: left alone */
	}
}

static void run_call(struct nvemud *d, json_t *c, const char *what, const char *key,
		     json_t *report)
{
	const char *method = str(c, "method");
	struct rpc_err e = { 0 };

	if (nvemud_rpc_invoke(d, method, json_incref(json_object_get(c, "params")), NULL, &e)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "reload: %s %s: %s failed: %s", what, key, method,
			   e.msg);
		json_array_append_new(json_object_get(report, "failed"),
				      json_pack("{s:s, s:s, s:s, s:s}", "object", key, "change",
						what, "method", method, "error", e.msg));
		return;
	}
	nvemud_log(d, NVEMUD_LOG_DEBUG, "reload: %s %s: %s", what, key, method);
}

static void note(json_t *report, const char *list, const char *key)
{
	json_array_append_new(json_object_get(report, list), json_string(key));
}

static int by_order(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "order"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "order"));

	return x < y ? -1 : x > y;
}

int nvemud_reload_config(struct nvemud *d, json_t *cfg, json_t **reportp, struct rpc_err *e)
{
	json_t *v = json_object_get(cfg, "nvemu_config"), *fcalls = json_object_get(cfg, "calls");
	json_t *running, *run, *file, *report, **objs, *o, *c, *rkeys, *fkeys;
	const char *k;
	size_t n = 0, i;

	*reportp = NULL;
	if (!json_is_integer(v) || json_integer_value(v) != 1)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "nvemu_config: must be 1 (not an nvemud configuration?)");
	if (!json_is_array(fcalls))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "calls: must be an array");
	json_array_foreach(fcalls, i, c)
		if (!json_is_string(json_object_get(c, "method")))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "calls[%zu].method: must be a string", i);
	rkeys = json_array();
	fkeys = json_array();
	running = nvemud_save_config(d);
	run = group(json_object_get(running, "calls"), rkeys);
	file = group(fcalls, fkeys);
	report = json_pack("{s:[], s:[], s:[], s:[], s:[], s:i}", "added", "removed", "changed",
			   "failed", "ignored", "unchanged", 0);
	objs = calloc(json_object_size(run) + 1, sizeof(*objs));
	json_decref(rkeys);
	if (!run || !file || !report || !objs) {
		json_decref(fkeys);
		json_decref(running);
		json_decref(run);
		json_decref(file);
		json_decref(report);
		free(objs);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	compare(run, file);

	/* Removals: the running objects from last to first (children before parents). */
	json_object_foreach(run, k, o) {
		json_object_set_new(o, "key", json_string(k));
		objs[n++] = o;
	}
	qsort(objs, n, sizeof(*objs), by_order);
	d->config_depth++;
	for (i = n; i-- > 0;) {
		enum obj_state st = state_of(objs[i]);
		const char *key = str(objs[i], "key");
		json_t *rm;

		if (st == ST_SAME) {
			json_object_set_new(report, "unchanged",
					    json_integer(json_integer_value(json_object_get(
								 report, "unchanged")) + 1));
			continue;
		}
		rm = removal(key, objs[i]);
		/* allow_any_host and health have no removal: they go with their subsystem. */
		if (st == ST_GONE && rm)
			note(report, "removed", key);
		if (rm)
			run_call(d, rm, st == ST_GONE ? "remove" : "change", key, report);
		json_decref(rm);
	}
	/* Additions and changes: the file's calls in its order (port ids, attach after create). */
	json_array_foreach(fcalls, i, c) {
		json_t *fo;

		k = json_string_value(json_array_get(fkeys, i));
		fo = k ? json_object_get(file, k) : NULL;
		if (!fo || state_of(fo) == ST_SAME)
			continue;
		if (kind_of(fo) == OBJ_OTHER) {
			nvemud_log(d, NVEMUD_LOG_WARN, "reload: calls[%zu] %s: not applied on reload",
				   i, str(c, "method"));
			note(report, "ignored", k);
			continue;
		}
		if (json_array_get(json_object_get(fo, "calls"), 0) == c)
			note(report, state_of(fo) == ST_NEW ? "added" : "changed", k);
		run_call(d, c, state_of(fo) == ST_NEW ? "add" : "change", k, report);
	}
	d->config_depth--;
	free(objs);
	json_decref(fkeys);
	json_decref(running);
	json_decref(run);
	json_decref(file);
	*reportp = report;
	return 0;
}

int nvemud_reload_config_file(struct nvemud *d, const char *path, json_t **report,
			      struct rpc_err *e)
{
	json_t *cfg;
	int ret;

	*report = NULL;
	if (nvemud_read_json_file(path, "filename", &cfg, e))
		return -1;
	ret = nvemud_reload_config(d, cfg, report, e);
	json_decref(cfg);
	return ret;
}

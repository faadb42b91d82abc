// SPDX-License-Identifier: MIT
/* JSON-RPC 2.0 envelope, method registry and parameter checks. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "rpc.h"

int rpc_err_set(struct rpc_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int rpc_err_nvemu(struct rpc_err *e, const struct nvemu_error *nerr)
{
	int code;

	switch (nerr->code) {
	case -ENOENT:
	case -ENODEV:
		code = RPC_ERR_NOT_FOUND;
		break;
	case -EEXIST:
		code = RPC_ERR_EXISTS;
		break;
	case -EBUSY:
		code = RPC_ERR_BUSY;
		break;
	case -EINVAL:
	case -ERANGE:
	case -E2BIG:
		code = RPC_ERR_INVALID_PARAMS;
		break;
	case -ENOSPC:
	case -EMFILE:
	case -EDQUOT:
		code = RPC_ERR_LIMIT;
		break;
	case -EIO:
	case -EACCES:
	case -EPERM:
	case -EROFS:
	case -EISDIR:
		code = RPC_ERR_IO;
		break;
	case -EAGAIN:
	case -EPROTO:
		code = RPC_ERR_STATE;
		break;
	default:
		code = RPC_ERR_INTERNAL;
		break;
	}
	return rpc_err_set(e, code, "%s",
			   nerr->msg[0] ? nerr->msg : strerror(-nerr->code));
}

/* ---- registry */

static int rpc_get_methods(struct nvemud *d, json_t *params, json_t **result,
			   struct rpc_err *e);

static const struct rpc_method core_methods[] = {
	{ "rpc_get_methods", rpc_get_methods, (const struct rpc_param[]){ { .name = NULL } },
	  "List the methods the daemon serves." },
	{ .name = NULL },
};

static const struct rpc_method *const tables[] = {
	core_methods,
	rpc_bdev_methods,
	rpc_bdev_delay_methods,
	rpc_bdev_error_methods,
	rpc_subsystem_methods,
	rpc_namespace_methods,
	rpc_controller_methods,
	rpc_health_methods,
	rpc_config_methods,
	rpc_nvmf_methods,
	rpc_mi_methods,
	rpc_virtio_blk_methods,
	rpc_bdev_nvme_methods,
	rpc_emulation_methods,
	rpc_live_update_methods,
	rpc_bdev_rbd_methods,
	rpc_keyring_methods,
};

const struct rpc_method *rpc_find_method(const char *name)
{
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct rpc_method *m = tables[t]; m->name; m++)
			if (!strcmp(m->name, name))
				return m;
	return NULL;
}

static int rpc_get_methods(struct nvemud *d, json_t *params, json_t **result,
			   struct rpc_err *e)
{
	json_t *arr = json_array();

	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct rpc_method *m = tables[t]; m->name; m++)
			json_array_append_new(arr, json_string(m->name));
	*result = arr;
	return 0;
}

/* ---- parameters */

static const char *type_rule(const struct rpc_param *p)
{
	switch (p->type) {
	case RPC_P_STR:
		return "must be a string";
	case RPC_P_BOOL:
		return "must be a boolean (true/false or 0/1)";
	case RPC_P_UUID:
		return "must be a UUID string (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)";
	case RPC_P_OBJ:
		return "must be an object";
	case RPC_P_UINT:
		break;
	}
	return "must be an integer";
}

static int check_one(json_t *v, const struct rpc_param *p, struct rpc_err *e)
{
	switch (p->type) {
	case RPC_P_STR: {
		size_t len;

		if (!json_is_string(v))
			break;
		len = json_string_length(v);
		if (strlen(json_string_value(v)) != len)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: must not contain NUL",
					   p->name);
		if (p->max && len > p->max)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "%s: at most %llu characters", p->name,
					   (unsigned long long)p->max);
		if (len < p->min)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   p->min == 1 ? "%s: must not be empty" :
							 "%s: at least %llu characters",
					   p->name, (unsigned long long)p->min);
		return 0;
	}
	case RPC_P_UINT: {
		json_int_t i;

		if (!json_is_integer(v))
			break;
		i = json_integer_value(v);
		if (i < 0 || (uint64_t)i < p->min || (uint64_t)i > p->max)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "%s: must be an integer in %llu..%llu", p->name,
					   (unsigned long long)p->min, (unsigned long long)p->max);
		return 0;
	}
	case RPC_P_BOOL:
		if (json_is_boolean(v))
			return 0;
		if (json_is_integer(v) &&
		    (json_integer_value(v) == 0 || json_integer_value(v) == 1))
			return 0;
		break;
	case RPC_P_UUID: {
		uuid_t u;

		if (json_is_string(v) && json_string_length(v) == 36 &&
		    !uuid_parse(json_string_value(v), u))
			return 0;
		break;
	}
	case RPC_P_OBJ:
		if (json_is_object(v))
			return 0;
		break;
	}
	if (p->type == RPC_P_UINT)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: must be an integer in %llu..%llu",
				   p->name, (unsigned long long)p->min,
				   (unsigned long long)p->max);
	return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: %s", p->name, type_rule(p));
}

int rpc_check_params(json_t *params, const struct rpc_param *spec, struct rpc_err *e)
{
	const char *key;
	json_t *v;

	json_object_foreach(params, key, v) {
		const struct rpc_param *p;

		for (p = spec; p->name; p++)
			if (!strcmp(p->name, key))
				break;
		if (!p->name)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%.200s: unknown parameter",
					   key);
	}
	for (const struct rpc_param *p = spec; p->name; p++) {
		v = json_object_get(params, p->name);
		if (!v) {
			if (p->required)
				return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: required",
						   p->name);
			continue;
		}
		if (check_one(v, p, e))
			return -1;
	}
	return 0;
}

const char *rpc_str(json_t *params, const char *name)
{
	return json_string_value(json_object_get(params, name));
}

uint64_t rpc_uint(json_t *params, const char *name, uint64_t def)
{
	json_t *v = json_object_get(params, name);

	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : def;
}

bool rpc_bool(json_t *params, const char *name, bool def)
{
	json_t *v = json_object_get(params, name);

	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	return def;
}

bool rpc_has(json_t *params, const char *name)
{
	return json_object_get(params, name) != NULL;
}

/* ---- envelope */

json_t *rpc_error_response(json_t *id, int code, const char *msg)
{
	return json_pack("{s:s, s:O?, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
			 "error", "code", code, "message", msg);
}

/* ---- deferred replies */

struct rpc_call_ctx {
	bool may_defer;
	json_t *id;		     /* NULL: a notification */
	const char *method;
	rpc_reply_fn fn;
	void *arg;
	struct rpc_pending *pending; /* set by rpc_defer */
};

struct rpc_pending {
	struct nvemud *d;
	json_t *id;
	char method[64];
	rpc_reply_fn fn;
	void *arg;
};

bool rpc_can_defer(struct nvemud *d)
{
	return d->call && d->call->may_defer;
}

struct rpc_pending *rpc_defer(struct nvemud *d)
{
	struct rpc_call_ctx *c = d->call;
	struct rpc_pending *p;

	if (!c || !c->may_defer || c->pending)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->d = d;
	p->id = json_incref(c->id);
	snprintf(p->method, sizeof(p->method), "%s", c->method);
	p->fn = c->fn;
	p->arg = c->arg;
	c->pending = p;
	return p;
}

static json_t *response(struct nvemud *d, const char *method, json_t *id, json_t *result,
			const struct rpc_err *e)
{
	if (!e) {
		nvemud_log(d, NVEMUD_LOG_DEBUG, "rpc %s: ok", method);
		if (!id) {
			json_decref(result);
			return NULL;
		}
		return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result",
				 result ? result : json_true());
	}
	/* A client's bad requests: rate limited per method. */
	nvemud_log_peer(d, NVEMUD_LOG_DEBUG, "rpc error", method, NULL, 0, "rpc %.100s: error %d: %s",
			method, e->code, e->msg);
	json_decref(result);
	if (!id)
		return NULL;
	return rpc_error_response(id, e->code, e->msg);
}

void rpc_pending_done(struct rpc_pending *p, json_t *result, const struct rpc_err *e)
{
	json_t *resp;

	if (!p) {
		json_decref(result);
		return;
	}
	resp = response(p->d, p->method, p->id, result, e);
	if (p->fn)
		p->fn(p->arg, resp);
	else
		json_decref(resp);
	json_decref(p->id);
	free(p);
}

void rpc_pending_cancel(struct rpc_pending *p)
{
	if (p)
		p->fn = NULL;
}

struct sync_reply {
	bool done;
	json_t *resp;
};

static void sync_reply_fn(void *arg, json_t *resp)
{
	struct sync_reply *r = arg;

	r->done = true;
	r->resp = resp;
}

static int run(struct nvemud *d, const struct rpc_method *m, json_t *params, json_t **result,
	       struct rpc_err *e)
{
	json_t *empty = NULL;
	int ret;

	if (!params)
		params = empty = json_object();
	if (rpc_check_params(params, m->params, e)) {
		json_decref(empty);
		return -1;
	}
	*result = NULL;
	ret = m->fn(d, params, result, e);
	json_decref(empty);
	if (ret == RPC_DEFERRED)
		return RPC_DEFERRED;
	if (ret) {
		json_decref(*result);
		*result = NULL;
		return -1;
	}
	if (!*result)
		*result = json_true();
	return 0;
}

int nvemud_rpc_invoke(struct nvemud *d, const char *method, json_t *params,
		      json_t **result, struct rpc_err *e)
{
	const struct rpc_method *m = rpc_find_method(method);
	json_t *r = NULL;
	int ret;

	if (!m) {
		json_decref(params);
		return rpc_err_set(e, RPC_ERR_METHOD_NOT_FOUND, "method not found: %.200s",
				   method);
	}
	if (params && !json_is_object(params)) {
		json_decref(params);
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "params: must be an object");
	}
	{
		struct sync_reply sr = { 0 };
		struct rpc_call_ctx ctx = { .method = m->name, .fn = sync_reply_fn, .arg = &sr },
				    *outer = d->call;
		json_t *id = json_integer(0);

		/* With an event loop, waiting here would stall it: such methods refuse. */
		ctx.may_defer = !d->loop;
		ctx.id = id;
		d->call = &ctx;
		ret = run(d, m, params, &r, e);
		d->call = outer;
		if (ret == RPC_DEFERRED) {
			json_t *err;

			d->drive(d, &sr.done, 0);
			err = json_object_get(sr.resp, "error");
			ret = err ? -1 : 0;
			if (err)
				rpc_err_set(e, (int)json_integer_value(json_object_get(err, "code")),
					    "%s",
					    json_string_value(json_object_get(err, "message")));
			else
				r = json_incref(json_object_get(sr.resp, "result"));
			json_decref(sr.resp);
		}
		json_decref(id);
	}
	json_decref(params);
	if (result)
		*result = r;
	else
		json_decref(r);
	return ret;
}

json_t *nvemud_rpc_call_async(struct nvemud *d, json_t *req, rpc_reply_fn fn, void *arg,
			      struct rpc_pending **pending)
{
	struct rpc_err e = { 0 };
	const struct rpc_method *m;
	json_t *id, *ver, *method, *params, *result = NULL;
	struct rpc_call_ctx ctx = { 0 }, *outer;
	int ret;

	*pending = NULL;
	if (json_is_array(req))
		return rpc_error_response(NULL, RPC_ERR_INVALID_REQUEST,
					  "batch requests are not supported");
	if (!json_is_object(req))
		return rpc_error_response(NULL, RPC_ERR_INVALID_REQUEST,
					  "request must be a JSON object");
	id = json_object_get(req, "id");
	if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id))
		return rpc_error_response(NULL, RPC_ERR_INVALID_REQUEST,
					  "id: must be a string, an integer or null");
	ver = json_object_get(req, "jsonrpc");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0"))
		return rpc_error_response(id, RPC_ERR_INVALID_REQUEST,
					  "jsonrpc: must be \"2.0\"");
	method = json_object_get(req, "method");
	if (!json_is_string(method))
		return rpc_error_response(id, RPC_ERR_INVALID_REQUEST,
					  "method: required, must be a string");
	params = json_object_get(req, "params");
	if (params && !json_is_object(params)) {
		if (!id)
			return NULL;
		return rpc_error_response(id, RPC_ERR_INVALID_PARAMS,
					  "params: must be an object");
	}
	m = rpc_find_method(json_string_value(method));
	if (!m) {
		rpc_err_set(&e, RPC_ERR_METHOD_NOT_FOUND, "method not found: %.200s",
			    json_string_value(method));
		return response(d, json_string_value(method), id, NULL, &e);
	}
	ctx.may_defer = fn != NULL;
	ctx.id = id;
	ctx.method = m->name;
	ctx.fn = fn;
	ctx.arg = arg;
	outer = d->call;
	d->call = &ctx;
	ret = run(d, m, params, &result, &e);
	d->call = outer;
	if (ret == RPC_DEFERRED) {
		*pending = ctx.pending;
		return NULL;
	}
	return response(d, m->name, id, ret ? NULL : result, ret ? &e : NULL);
}

json_t *nvemud_rpc_call(struct nvemud *d, json_t *req)
{
	struct sync_reply r = { 0 };
	struct rpc_pending *p;
	json_t *resp = nvemud_rpc_call_async(d, req, sync_reply_fn, &r, &p);

	if (!p)
		return resp;
	/* In process (tests, fuzzer): drive the backends here until the reply is ready. */
	d->drive(d, &r.done, 0);
	return r.resp;
}

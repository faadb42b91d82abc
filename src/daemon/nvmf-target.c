// SPDX-License-Identifier: MIT
/*
 * The daemon's NVMe/TCP target (include/nvemu/tcp.h): on the event loop
 * with a 100 ms tick, and what the rest of the daemon asks of it (which
 * ports and controllers are its, namespaces coming and going, a subsystem
 * removed). The nvmf_* methods (rpc-nvmf.c) configure it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvemu/tcp.h>

#include "event-loop.h"
#include "reactor.h"
#include "rpc.h"

static const char *adrfam_name(uint8_t adrfam)
{
	return adrfam == NVMF_ADDR_FAMILY_IP6 ? "ipv6" : "ipv4";
}

json_t *nvemud_tcp_addr_json(const char *traddr, const char *trsvcid, uint8_t adrfam)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "trtype", "tcp", "adrfam", adrfam_name(adrfam),
			 "traddr", traddr, "trsvcid", trsvcid);
}

/* ---- on the daemon's loop */

struct tcp_watch {
	struct loop_src *src;
	nvemu_tcp_fd_cb cb;
	void *arg;
};

static void tcp_watch_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct tcp_watch *w = arg;

	/* w may be freed by the callback (del_fd): do not touch it after. */
	w->cb(fd, revents, w->arg);
}

static void *tcp_add_fd(void *loop, int fd, uint32_t events, nvemu_tcp_fd_cb cb, void *arg)
{
	struct tcp_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->cb = cb;
	w->arg = arg;
	w->src = loop_add_fd(loop, fd, events, tcp_watch_cb, w);
	if (!w->src) {
		free(w);
		return NULL;
	}
	return w;
}

static int tcp_mod_fd(void *loop, void *handle, uint32_t events)
{
	return loop_mod_fd(((struct tcp_watch *)handle)->src, events);
}

static void tcp_del_fd(void *loop, void *handle)
{
	struct tcp_watch *w = handle;

	/* loop_del keeps the source until the dispatch round ends; w is ours. */
	loop_del(w->src);
	free(w);
}

/* ---- reactors: I/O queues on loops of their own (reactor.c) */

static void *tcp_queue_loop(void *loop, const struct nvemu_ctrl *ctrl, uint16_t qid)
{
	struct nvemud *d = nvemud_reactor_owner(loop);
	struct loop *q;

	if (!d)
		return loop;
	q = nvemud_reactor_pick(d);
	nvemud_log(d, NVEMUD_LOG_DEBUG, "tcp: controller %u I/O queue %u: reactor %u",
		   nvemu_ctrl_cntlid(ctrl), qid, nvemud_reactor_id(q));
	return q;
}

static void tcp_queue_put(void *loop)
{
	nvemud_reactor_put(loop);
}

static bool tcp_on_loop(void *loop)
{
	return loop_on_thread(loop);
}

/* The message rides in the target's own storage (caller[]): nothing to allocate. */
struct tcp_msg_link {
	struct loop_msg lm;
	struct nvemu_tcp_msg *m;
};
_Static_assert(sizeof(struct tcp_msg_link) <= sizeof(((struct nvemu_tcp_msg *)0)->caller),
	       "nvemu_tcp_msg.caller holds a loop_msg");

static void tcp_msg_run(struct loop_msg *lm)
{
	struct nvemu_tcp_msg *m = ((struct tcp_msg_link *)lm)->m;

	m->fn(m);
}

static void tcp_post(void *loop, struct nvemu_tcp_msg *m)
{
	struct tcp_msg_link *l = (struct tcp_msg_link *)m->caller;

	l->lm.fn = tcp_msg_run;
	l->m = m;
	loop_post(loop, &l->lm);
}

static void tcp_io_unlock(void *loop)
{
	loop_io_unlock(loop);
}

static void tcp_io_lock(void *loop)
{
	loop_io_lock(loop);
}

static const struct nvemu_tcp_loop_ops tcp_loop_ops = {
	.add_fd = tcp_add_fd,
	.mod_fd = tcp_mod_fd,
	.del_fd = tcp_del_fd,
};

static const struct nvemu_tcp_loop_ops tcp_reactor_ops = {
	.add_fd = tcp_add_fd,
	.mod_fd = tcp_mod_fd,
	.del_fd = tcp_del_fd,
	.queue_loop = tcp_queue_loop,
	.queue_put = tcp_queue_put,
	.on_loop = tcp_on_loop,
	.post = tcp_post,
	.io_unlock = tcp_io_unlock,
	.io_lock = tcp_io_lock,
};

unsigned nvemud_tcp_queue_reactor(struct nvemud *d, const struct nvemu_ctrl *ctrl, uint16_t qid)
{
	void *loop = d->tcp ? nvemu_tcp_queue_loop(d->tcp, ctrl, qid) : NULL;

	return loop ? nvemud_reactor_id(loop) : 0;
}

static void tcp_log_cb(void *arg, int level, const char *msg)
{
	nvemud_log(arg, level, "tcp: %s", msg);
}

/* Every message about a connection is one a host can cause: rate limited per kind and host. */
static void tcp_log_ctx_cb(void *arg, int level, const struct nvemu_tcp_log_ctx *ctx,
			   const char *msg)
{
	char cntlid[8] = "", qid[8] = "";
	const struct nvemud_log_field f[] = {
		{ NVEMUD_F_TRANSPORT, "tcp" },
		{ NVEMUD_F_PEER, ctx->peer },
		{ NVEMUD_F_HOSTNQN, ctx->hostnqn },
		{ NVEMUD_F_SUBNQN, ctx->subnqn },
		{ NVEMUD_F_CNTLID, ctx->cntlid >= 0 ? cntlid : NULL },
		{ NVEMUD_F_QID, ctx->qid >= 0 ? qid : NULL },
	};

	snprintf(cntlid, sizeof(cntlid), "%d", ctx->cntlid & 0xffff);
	snprintf(qid, sizeof(qid), "%d", ctx->qid & 0xffff);
	/* The peer's address without its port: a new connection is the same host. */
	char host[80];
	const char *colon = ctx->peer ? strrchr(ctx->peer, ':') : NULL;

	snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - ctx->peer) : 79,
		 ctx->peer ? ctx->peer : "");
	nvemud_log_peer(arg, level, ctx->site, host, f, sizeof(f) / sizeof(f[0]), "tcp: %s", msg);
}

static void tcp_tick_cb(struct loop_src *src, void *arg)
{
	struct nvemud *d = arg;

	if (d->tcp)
		nvemu_tcp_target_tick(d->tcp);
}

void nvemud_tcp_stop(struct nvemud *d)
{
	loop_del(d->tcp_tick);
	d->tcp_tick = NULL;
	nvemu_tcp_target_destroy(d->tcp);
	d->tcp = NULL;
}

int nvemud_tcp_start(struct nvemud *d)
{
	struct nvemu_tcp_target_params tp;
	struct nvemu_error err = { 0 };

	nvemu_tcp_target_params_init(&tp);
	tp.log = tcp_log_cb;
	tp.log_ctx = tcp_log_ctx_cb;
	tp.log_arg = d;
	if (d->loop) {
		tp.ops = nvemud_nr_reactors(d) > 1 ? &tcp_reactor_ops : &tcp_loop_ops;
		tp.loop = d->loop;
	}
	if (nvemu_tcp_target_create(&tp, &d->tcp, &err)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "TCP target: %s", err.msg);
		return -1;
	}
	if (d->loop) {
		d->tcp_tick = loop_add_timer(d->loop, 100, true, tcp_tick_cb, d);
		if (!d->tcp_tick) {
			nvemud_tcp_stop(d);
			return -1;
		}
	}
	return 0;
}


bool nvemud_tcp_owns_port(struct nvemud *d, struct nvemu_subsys *s, uint16_t port_id,
			json_t **listener)
{
	struct nvemu_tcp_listener_info li;
	struct nvemu_ctrl *ctrl;

	if (listener)
		*listener = NULL;
	if (!d->tcp)
		return false;
	for (unsigned i = 0; !nvemu_tcp_get_listener(d->tcp, s, i, &li); i++) {
		if (li.port_id != port_id)
			continue;
		if (listener)
			*listener = json_pack("{s:s, s:o}", "nqn", nvemu_subsys_nqn(s), "listen_address",
					      nvemud_tcp_addr_json(li.traddr, li.trsvcid, li.adrfam));
		if (listener && *listener && li.secure_channel)
			json_object_set_new(*listener, "secure_channel", json_true());
		return true;
	}
	/* A removed listener's port lingers while its controllers go away. */
	for (unsigned i = 0; (ctrl = nvemu_subsys_ctrl_at(s, i)); i++)
		if (nvemu_ctrl_params(ctrl)->port_id == port_id && nvemu_tcp_owns_ctrl(d->tcp, ctrl))
			return true;
	return false;
}

bool nvemud_tcp_owns_ctrl(struct nvemud *d, const struct nvemu_ctrl *ctrl)
{
	return d->tcp && nvemu_tcp_owns_ctrl(d->tcp, ctrl);
}

void nvemud_tcp_ns_added(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid)
{
	if (d->tcp)
		nvemu_tcp_ns_added(d->tcp, s, nsid);
}

void nvemud_tcp_ns_removed(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid)
{
	if (!d->tcp)
		return;
	/* Commands already in the engine are drained by the caller (teardown.c). */
	nvemu_tcp_ns_removed(d->tcp, s, nsid);
}

void nvemud_tcp_remove_subsys(struct nvemud *d, struct nvemu_subsys *s)
{
	if (d->tcp)
		nvemu_tcp_remove_subsys(d->tcp, s);
}

int nvemud_add_default_listener(struct nvemud *d, const char *traddr, const char *trsvcid,
				struct nvemu_error *err)
{
	struct nvemu_subsys *s = nvemud_find_subsys(d, NVEMUD_DEFAULT_NQN);
	int ret;

	if (!s || !d->tcp)
		return nvemu_error_set(err, -ENOENT, "no default subsystem");
	if (!nvemu_tcp_has_subsys(d->tcp, s)) {
		ret = nvemu_tcp_add_subsys(d->tcp, s, err);
		if (ret)
			return ret;
	}
	ret = nvemu_tcp_set_allow_any_host(d->tcp, s, true, err);
	if (ret)
		return ret;
	return nvemu_tcp_add_listener(d->tcp, s, traddr, trsvcid, 0, err);
}

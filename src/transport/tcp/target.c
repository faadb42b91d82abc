/* SPDX-License-Identifier: MIT */
/*
 * The NVMe/TCP target object: subsystems and their access lists, listening
 * sockets, the built-in epoll loop, timers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tcp-internal.h"

#define TICK_NS 100000000ull

void tcp_log(struct nvemu_tcp_target *t, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (t->p.log)
		t->p.log(t->p.log_arg, level, msg);
	else if (level <= NVEMU_TCP_LOG_WARN)
		fprintf(stderr, "nvemu-tcp: %s\n", msg);
}

static void tcp_vlog_ctx(struct nvemu_tcp_target *t, int level,
			 const struct nvemu_tcp_log_ctx *ctx, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (t->p.log_ctx)
		t->p.log_ctx(t->p.log_arg, level, ctx, msg);
	else if (t->p.log)
		t->p.log(t->p.log_arg, level, msg);
	else if (level <= NVEMU_TCP_LOG_WARN)
		fprintf(stderr, "nvemu-tcp: %s\n", msg);
}

static void assoc_ctx(const struct tcp_assoc *a, struct nvemu_tcp_log_ctx *ctx)
{
	if (!a)
		return;
	ctx->subnqn = nvemu_subsys_nqn(a->ts->s);
	if (a->ctrl) {
		ctx->cntlid = a->ctrl->cntlid;
		ctx->hostnqn = a->ctrl->hostnqn;
	}
}

void tcp_log_conn(struct tcp_conn *c, int level, const char *fmt, ...)
{
	struct nvemu_tcp_log_ctx ctx = { .site = fmt, .peer = c->peer, .cntlid = -1, .qid = -1 };
	va_list ap;

	ctx.qid = c->log_qid;
	if (c->connected) {
		assoc_ctx(c->assoc, &ctx);
		if (c->disc)
			ctx.cntlid = c->disc_cntlid;
	}
	va_start(ap, fmt);
	tcp_vlog_ctx(c->t, level, &ctx, fmt, ap);
	va_end(ap);
}

void tcp_log_assoc(struct tcp_assoc *a, int level, const char *fmt, ...)
{
	struct nvemu_tcp_log_ctx ctx = { .site = fmt, .cntlid = -1, .qid = -1 };
	va_list ap;

	assoc_ctx(a, &ctx);
	if (a->admin)
		ctx.peer = a->admin->peer;
	va_start(ap, fmt);
	tcp_vlog_ctx(a->t, level, &ctx, fmt, ap);
	va_end(ap);
}

/* ---- the built-in loop */

struct epoll_src {
	int fd;
	nvemu_tcp_fd_cb cb;
	void *arg;
	bool dead;
	SLIST_ENTRY(epoll_src) dead_link;
};

struct builtin_loop {
	int epfd;
	SLIST_HEAD(, epoll_src) dead;
};

static void *ep_add(void *loop, int fd, uint32_t events, nvemu_tcp_fd_cb cb, void *arg)
{
	struct builtin_loop *l = loop;
	struct epoll_src *s = calloc(1, sizeof(*s));
	struct epoll_event ev = {.events = events};

	if (!s)
		return NULL;
	s->fd = fd;
	s->cb = cb;
	s->arg = arg;
	ev.data.ptr = s;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static int ep_mod(void *loop, void *h, uint32_t events)
{
	struct builtin_loop *l = loop;
	struct epoll_src *s = h;
	struct epoll_event ev = {.events = events, .data.ptr = s};

	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0 ? -errno : 0;
}

static void ep_del(void *loop, void *h)
{
	struct builtin_loop *l = loop;
	struct epoll_src *s = h;

	epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->dead = true;
	/* This round's event array may still name it: free after dispatch. */
	SLIST_INSERT_HEAD(&l->dead, s, dead_link);
}

static const struct nvemu_tcp_loop_ops builtin_ops = {
	.add_fd = ep_add,
	.mod_fd = ep_mod,
	.del_fd = ep_del,
};

static void reap_dead(struct builtin_loop *l)
{
	while (!SLIST_EMPTY(&l->dead)) {
		struct epoll_src *s = SLIST_FIRST(&l->dead);

		SLIST_REMOVE_HEAD(&l->dead, dead_link);
		free(s);
	}
}

void tcp_fd_mod(struct tcp_conn *c, uint32_t events)
{
	if (c->fd < 0 || !c->h)
		return;
	if (!c->t->ops->mod_fd(c->loop, c->h, events))
		c->events = events;
}

/* ---- target */

void nvemu_tcp_target_params_init(struct nvemu_tcp_target_params *p)
{
	memset(p, 0, sizeof(*p));
}

int nvemu_tcp_target_create(const struct nvemu_tcp_target_params *p, struct nvemu_tcp_target **out,
			    struct nvemu_error *err)
{
	struct nvemu_tcp_target *t = calloc(1, sizeof(*t));

	if (!t)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	t->p = *p;
	if (!t->p.maxh2cdata)
		t->p.maxh2cdata = 128 * 1024;
	/* As many as a host has CPUs (Linux asks one queue per CPU). */
	if (!t->p.num_io_queues)
		t->p.num_io_queues = NVEMU_TCP_DEFAULT_IO_QUEUES;
	if (!t->p.queue_depth)
		t->p.queue_depth = 128;
	if (!t->p.pdu_timeout_ms)
		t->p.pdu_timeout_ms = 10000;
	if (!t->p.connect_timeout_ms)
		t->p.connect_timeout_ms = 10000;
	if (!t->p.auth_timeout_ms)
		t->p.auth_timeout_ms = 30000;
	if (!t->p.data_timeout_ms)
		t->p.data_timeout_ms = 30000;
	if (!t->p.queue_buf_max)
		t->p.queue_buf_max = 4u << 20;
	if (!t->p.disc_kato_ms)
		t->p.disc_kato_ms = 120000;
	if (t->p.queue_buf_max < TCP_MAX_DATA) {
		free(t);
		return nvemu_error_set(err, -EINVAL, "queue_buf_max: at least %u", TCP_MAX_DATA);
	}
	if (t->p.maxh2cdata < 4096 || t->p.maxh2cdata % 4 || t->p.maxh2cdata > TCP_MAX_DATA) {
		free(t);
		return nvemu_error_set(err, -EINVAL, "maxh2cdata: a multiple of 4 in 4096..%u",
				       TCP_MAX_DATA);
	}
	if (t->p.queue_depth < 2 || t->p.queue_depth > TCP_MAX_SLOTS) {
		free(t);
		return nvemu_error_set(err, -EINVAL, "queue_depth: must be in 2..%u",
				       TCP_MAX_SLOTS);
	}
	if (t->p.num_io_queues > NVEMU_MAX_IO_QUEUES) {
		free(t);
		return nvemu_error_set(err, -EINVAL, "num_io_queues: at most %u",
				       NVEMU_MAX_IO_QUEUES);
	}
	t->epfd = -1;
	if (p->ops) {
		t->ops = p->ops;
		t->loop = p->loop;
	} else {
		struct builtin_loop *l = calloc(1, sizeof(*l));

		if (!l) {
			free(t);
			return nvemu_error_set(err, -ENOMEM, "out of memory");
		}
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (l->epfd < 0) {
			int e = errno;

			free(l);
			free(t);
			return nvemu_error_set(err, -e, "epoll_create1: %s", strerror(e));
		}
		t->epfd = l->epfd;
		t->ops = &builtin_ops;
		t->loop = l;
	}
	t->genctr = 1;
	t->dhchap_digests = 0x0e;
	t->dhchap_dhgroups = 0x3f;
	t->next_tick_ns = nvemu_now_ns() + TICK_NS;
	*out = t;
	return 0;
}

static void close_listener_conns(struct nvemu_tcp_target *t, struct tcp_listener *l)
{
again:
	for (struct tcp_conn *c = LIST_FIRST(&t->conns); c; c = LIST_NEXT(c, link)) {
		if (c->state != CONN_CLOSED && (!l || c->lst == l)) {
			tcp_conn_close(c, "listener removed");
			goto again;
		}
	}
}

static void listener_put(struct nvemu_tcp_target *t, struct tcp_listener *l)
{
	if (--l->refs)
		return;
	close_listener_conns(t, l);
	/* Closed conns still waiting for the engine must not point at it. */
	for (struct tcp_conn *c = LIST_FIRST(&t->conns); c; c = LIST_NEXT(c, link))
		if (c->lst == l)
			c->lst = NULL;
	for (unsigned i = 0; i < t->nr_lst; i++) {
		if (t->lst[i] == l) {
			t->lst[i] = t->lst[--t->nr_lst];
			break;
		}
	}
	if (l->fd >= 0) {
		t->ops->del_fd(t->loop, l->h);
		close(l->fd);
	}
	free(l);
}

static void drain_subsys(struct nvemu_tcp_target *t, struct tcp_subsys *ts)
{
	uint64_t deadline = nvemu_now_ns() + 2000000000ull;
	bool busy;

again:
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link)) {
		if (a->ts == ts && !a->dead) {
			tcp_assoc_teardown(a, "subsystem removed");
			goto again;
		}
	}
	do {
		tcp_assoc_gc(t);
		busy = false;
		for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link))
			busy |= a->ts == ts;
		if (busy)
			nvemu_subsys_poll(ts->s);
	} while (busy && nvemu_now_ns() < deadline);
	/* Still busy: forget them; destroying the subsystem takes the controllers. */
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs), *next; a; a = next) {
		next = LIST_NEXT(a, link);
		if (a->ts != ts)
			continue;
		tcp_log(t, NVEMU_TCP_LOG_WARN, "controller %u still has commands in flight",
			a->ctrl->cntlid);
		if (a->ctrl)
			nvemu_ctrl_bind_transport(a->ctrl, NULL, NULL, NULL);
		LIST_REMOVE(a, link);
		free(a->io);
		free(a);
	}
}

static void host_free(struct tcp_host *h)
{
	free(h->nqn);
	free(h->key_name);
	free(h->ctrl_key_name);
	free(h->psk_name);
	OPENSSL_cleanse(h, sizeof(*h));
}

static void subsys_free(struct tcp_subsys *ts)
{
	for (unsigned i = 0; i < ts->nr_hosts; i++)
		host_free(&ts->hosts[i]);
	free(ts->hosts);
	free(ts->ls);
	free(ts->dead_ports);
}

void nvemu_tcp_target_destroy(struct nvemu_tcp_target *t)
{
	if (!t)
		return;
	close_listener_conns(t, NULL);
	while (t->nr_subs)
		nvemu_tcp_remove_subsys(t, t->subs[0].s);
	while (t->nr_lst) {
		t->lst[0]->refs = 1;
		listener_put(t, t->lst[0]);
	}
	/* Connections still referenced by the engine: nothing will complete them now. */
	while (!LIST_EMPTY(&t->conns)) {
		struct tcp_conn *c = LIST_FIRST(&t->conns);

		c->engine_inflight = 0;
		c->in_cb = 0;
		tcp_conn_close(c, NULL);
		tcp_conn_free_if_idle(c);
	}
	if (t->epfd >= 0) {
		struct builtin_loop *l = t->loop;

		reap_dead(l);
		close(l->epfd);
		free(l);
	}
	free(t->subs);
	free(t->lst);
	tcp_tls_ctx_free(t);
	free(t);
}

static void listener_resume(struct tcp_listener *l, uint64_t now)
{
	if (!l->resume_ns || now < l->resume_ns || l->fd < 0)
		return;
	l->resume_ns = 0;
	l->t->ops->mod_fd(l->t->loop, l->h, EPOLLIN);
}

void nvemu_tcp_target_tick(struct nvemu_tcp_target *t)
{
	uint64_t now = nvemu_now_ns();

	for (unsigned i = 0; i < t->nr_lst; i++)
		listener_resume(t->lst[i], now);
again_conn:
	for (struct tcp_conn *c = LIST_FIRST(&t->conns); c; c = LIST_NEXT(c, link)) {
		if (tcp_conn_tick_closed(c, now))
			goto again_conn;
		if (c->rx_paused) {
			tcp_conn_kick(c);
			if (c->state == CONN_CLOSED) {
				tcp_conn_free_if_idle(c);
				goto again_conn;
			}
		}
	}
again_assoc:
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link))
		if (tcp_assoc_tick(a, now))
			goto again_assoc;
	tcp_assoc_gc(t);
}

int nvemu_tcp_target_run_once(struct nvemu_tcp_target *t, int timeout_ms)
{
	struct builtin_loop *l = t->loop;
	struct epoll_event evs[64];
	uint64_t now = nvemu_now_ns();
	int n, tmo = timeout_ms;
	bool inflight = false;

	if (t->epfd < 0)
		return -EINVAL;
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link))
		if (a->ctrl && nvemu_ctrl_inflight(a->ctrl))
			inflight = true;
	if (now >= t->next_tick_ns)
		tmo = 0;
	else if (tmo < 0 || (uint64_t)tmo > (t->next_tick_ns - now) / 1000000 + 1)
		tmo = (int)((t->next_tick_ns - now) / 1000000 + 1);
	if (inflight && tmo > 1)
		tmo = 1;
	n = epoll_wait(t->epfd, evs, 64, tmo);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct epoll_src *s = evs[i].data.ptr;

		if (!s->dead)
			s->cb(s->fd, evs[i].events, s->arg);
	}
	reap_dead(l);
	for (unsigned i = 0; i < t->nr_subs; i++)
		nvemu_subsys_poll(t->subs[i].s);
	now = nvemu_now_ns();
	if (now >= t->next_tick_ns) {
		t->next_tick_ns = now + TICK_NS;
		nvemu_tcp_target_tick(t);
		reap_dead(l);
	}
	return n;
}

/* ---- subsystems */

struct tcp_subsys *tcp_find_subsys(struct nvemu_tcp_target *t, const struct nvemu_subsys *s)
{
	for (unsigned i = 0; i < t->nr_subs; i++)
		if (t->subs[i].s == s)
			return &t->subs[i];
	return NULL;
}

bool nvemu_tcp_has_subsys(struct nvemu_tcp_target *t, struct nvemu_subsys *s)
{
	return tcp_find_subsys(t, s) != NULL;
}

int nvemu_tcp_add_subsys(struct nvemu_tcp_target *t, struct nvemu_subsys *s,
			 struct nvemu_error *err)
{
	struct tcp_subsys *subs;

	if (tcp_find_subsys(t, s))
		return nvemu_error_set(err, -EEXIST, "subsystem %s is already exposed over TCP",
				       nvemu_subsys_nqn(s));
	/* tcp_subsys records move on realloc: nothing keeps pointers across calls but assocs. */
	subs = malloc((t->nr_subs + 1) * sizeof(*subs));
	if (!subs)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	if (t->nr_subs)
		memcpy(subs, t->subs, t->nr_subs * sizeof(*subs));
	subs[t->nr_subs] = (struct tcp_subsys){.s = s, .allow_any = true};
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link))
		a->ts = &subs[a->ts - t->subs];
	free(t->subs);
	t->subs = subs;
	t->nr_subs++;
	return 0;
}

void nvemu_tcp_remove_subsys(struct nvemu_tcp_target *t, struct nvemu_subsys *s)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);
	unsigned idx;

	if (!ts)
		return;
	while (ts->nr_ls) {
		struct tcp_listener *l = ts->ls[ts->nr_ls - 1].l;

		nvemu_tcp_remove_listener(t, s, l->traddr, l->trsvcid, l->adrfam, NULL);
		ts = tcp_find_subsys(t, s);
	}
	drain_subsys(t, ts);
	for (unsigned i = 0; i < ts->nr_dead_ports; i++)
		nvemu_subsys_remove_port(s, ts->dead_ports[i], NULL);
	subsys_free(ts);
	idx = (unsigned)(ts - t->subs);
	memmove(&t->subs[idx], &t->subs[idx + 1], (t->nr_subs - idx - 1) * sizeof(*ts));
	t->nr_subs--;
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link))
		if (a->ts > &t->subs[idx])
			a->ts--;
	tcp_disc_log_changed(t);
}

int nvemu_tcp_set_allow_any_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s, bool allow,
				 struct nvemu_error *err)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);

	if (!ts)
		return nvemu_error_set(err, -ENOENT, "subsystem is not exposed over TCP");
	ts->allow_any = allow;
	return 0;
}

bool nvemu_tcp_allow_any_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);

	return ts && ts->allow_any;
}

int nvemu_tcp_add_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s, const char *hostnqn,
		       struct nvemu_error *err)
{
	return nvemu_tcp_add_host_ex(t, s, hostnqn, NULL, err);
}

static char *dup_opt(const char *s, bool *oom)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*oom = true;
	return d;
}

int nvemu_tcp_add_host_ex(struct nvemu_tcp_target *t, struct nvemu_subsys *s, const char *hostnqn,
			  const struct nvemu_tcp_host_params *hp, struct nvemu_error *err)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);
	struct tcp_host h = {0}, *hosts;
	struct nvemu_error kerr;
	bool oom = false;
	int ret;

	if (!ts)
		return nvemu_error_set(err, -ENOENT, "subsystem is not exposed over TCP");
	ret = nvemu_nqn_validate(hostnqn, err);
	if (ret)
		return ret;
	for (unsigned i = 0; i < ts->nr_hosts; i++)
		if (!strcmp(ts->hosts[i].nqn, hostnqn))
			return nvemu_error_set(err, -EEXIST, "host: %s is already allowed",
					       hostnqn);
	if (hp && hp->dhchap_ctrlr_key && !hp->dhchap_key)
		return nvemu_error_set(err, -EINVAL,
				       "dhchap_ctrlr_key: needs dhchap_key (the controller "
				       "authenticates itself only to a host that authenticated)");
	if (hp && hp->dhchap_key && nvemu_dhchap_key_parse(hp->dhchap_key, &h.key, &kerr))
		return nvemu_error_set(err, -EINVAL, "dhchap_key: %s", kerr.msg);
	if (hp && hp->dhchap_ctrlr_key &&
	    nvemu_dhchap_key_parse(hp->dhchap_ctrlr_key, &h.ctrl_key, &kerr)) {
		OPENSSL_cleanse(&h, sizeof(h));
		return nvemu_error_set(err, -EINVAL, "dhchap_ctrlr_key: %s", kerr.msg);
	}
	if (hp && hp->psk && tcp_psk_parse(hp->psk, &h.psk, &kerr)) {
		OPENSSL_cleanse(&h, sizeof(h));
		return nvemu_error_set(err, -EINVAL, "psk: %s", kerr.msg);
	}
	h.nqn = dup_opt(hostnqn, &oom);
	if (hp) {
		h.psk_name = dup_opt(hp->psk_name, &oom);
		h.key_name = dup_opt(hp->dhchap_key_name, &oom);
		h.ctrl_key_name = dup_opt(hp->dhchap_ctrlr_key_name, &oom);
	}
	hosts = oom ? NULL : realloc(ts->hosts, (ts->nr_hosts + 1) * sizeof(*hosts));
	if (!hosts) {
		host_free(&h);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	ts->hosts = hosts;
	ts->hosts[ts->nr_hosts++] = h;
	tcp_disc_log_changed(t);
	return 0;
}

/* Access is revoked now, not at the host's next Connect (as SPDK does). */
static void drop_host_assocs(struct nvemu_tcp_target *t, struct tcp_subsys *ts, const char *hostnqn)
{
again:
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link)) {
		if (!a->dead && a->ts == ts && !strcmp(a->ctrl->hostnqn, hostnqn)) {
			tcp_assoc_teardown(a, "host removed from the subsystem");
			goto again;
		}
	}
	tcp_assoc_gc(t);
}

int nvemu_tcp_remove_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s, const char *hostnqn,
			  struct nvemu_error *err)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);

	if (!ts)
		return nvemu_error_set(err, -ENOENT, "subsystem is not exposed over TCP");
	for (unsigned i = 0; i < ts->nr_hosts; i++) {
		if (strcmp(ts->hosts[i].nqn, hostnqn))
			continue;
		host_free(&ts->hosts[i]);
		memmove(&ts->hosts[i], &ts->hosts[i + 1],
			(ts->nr_hosts - i - 1) * sizeof(ts->hosts[0]));
		ts->nr_hosts--;
		drop_host_assocs(t, ts, hostnqn);
		tcp_disc_log_changed(t);
		return 0;
	}
	return nvemu_error_set(err, -ENOENT, "host: %s is not on the list", hostnqn);
}

const char *nvemu_tcp_get_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s, unsigned idx)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);

	return ts && idx < ts->nr_hosts ? ts->hosts[idx].nqn : NULL;
}

int nvemu_tcp_set_dhchap(struct nvemu_tcp_target *t, uint8_t digests, uint8_t dhgroups,
			 struct nvemu_error *err)
{
	if (!digests || digests & ~0x0eu)
		return nvemu_error_set(err, -EINVAL, "dhchap_digests: sha256, sha384, sha512");
	if (!dhgroups || dhgroups & ~0x3fu)
		return nvemu_error_set(err, -EINVAL, "dhchap_dhgroups: null, ffdhe2048..ffdhe8192");
	t->dhchap_digests = digests;
	t->dhchap_dhgroups = dhgroups;
	return 0;
}

void nvemu_tcp_get_dhchap(struct nvemu_tcp_target *t, uint8_t *digests, uint8_t *dhgroups)
{
	*digests = t->dhchap_digests;
	*dhgroups = t->dhchap_dhgroups;
}

const char *nvemu_tcp_get_host_psk(struct nvemu_tcp_target *t, struct nvemu_subsys *s,
				   unsigned idx)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);

	return ts && idx < ts->nr_hosts ? ts->hosts[idx].psk_name : NULL;
}

int nvemu_tcp_get_host_auth(struct nvemu_tcp_target *t, struct nvemu_subsys *s, unsigned idx,
			    const char **key_name, const char **ctrlr_key_name)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);

	if (!ts || idx >= ts->nr_hosts)
		return -ENOENT;
	*key_name = ts->hosts[idx].key_name;
	*ctrlr_key_name = ts->hosts[idx].ctrl_key_name;
	return 0;
}

unsigned nvemu_tcp_nr_assocs(struct nvemu_tcp_target *t, struct nvemu_subsys *s)
{
	unsigned n = 0;

	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link))
		n += !a->dead && a->ts->s == s;
	return n;
}

int nvemu_tcp_get_assoc(struct nvemu_tcp_target *t, struct nvemu_subsys *s, unsigned idx,
			struct nvemu_tcp_assoc_info *out)
{
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link)) {
		if (a->dead || a->ts->s != s || idx--)
			continue;
		memset(out, 0, sizeof(*out));
		out->cntlid = a->ctrl->cntlid;
		out->port_id = a->ctrl->p.port_id;
		for (unsigned q = 1; q <= a->nr_io; q++)
			out->nr_io_queues += a->io[q] != NULL;
		out->kato_ms = a->ctrl->feat.kato;
		snprintf(out->hostnqn, sizeof(out->hostnqn), "%s", a->ctrl->hostnqn);
		memcpy(out->hostid, a->ctrl->hostid, sizeof(out->hostid));
		return 0;
	}
	return -ENOENT;
}

void *nvemu_tcp_queue_loop(struct nvemu_tcp_target *t, const struct nvemu_ctrl *ctrl,
			   uint16_t qid)
{
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link)) {
		struct tcp_conn *c;

		if (a->ctrl != ctrl)
			continue;
		c = !qid ? a->admin : qid <= a->nr_io ? a->io[qid] : NULL;
		if (!c)
			return NULL;
		return c->move_to ? c->move_to : c->loop;
	}
	return NULL;
}

bool nvemu_tcp_owns_ctrl(struct nvemu_tcp_target *t, const struct nvemu_ctrl *ctrl)
{
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link))
		if (a->ctrl == ctrl)
			return true;
	return false;
}

void nvemu_tcp_ns_added(struct nvemu_tcp_target *t, struct nvemu_subsys *s, uint32_t nsid)
{
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link))
		if (!a->dead && a->ctrl && a->ts->s == s && !nvemu_ctrl_ns_attached(a->ctrl, nsid))
			nvemu_ctrl_attach_ns(a->ctrl, nsid, NULL);
}

void nvemu_tcp_ns_removed(struct nvemu_tcp_target *t, struct nvemu_subsys *s, uint32_t nsid)
{
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link))
		if (a->ctrl && a->ts->s == s && nvemu_ctrl_ns_attached(a->ctrl, nsid))
			nvemu_ctrl_detach_ns(a->ctrl, nsid, NULL);
}

/* ---- listeners */

/*
 * Out of descriptors or memory: the pending connection stays in the
 * backlog and the listener would fire again at once. Stop polling it for a
 * while (100 ms doubling to 1.6 s; the tick resumes it) and log one line
 * per 10 s, not one per attempt.
 */
static void listener_backoff(struct tcp_listener *l, int e)
{
	struct nvemu_tcp_target *t = l->t;
	uint64_t now = nvemu_now_ns();

	l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : 100;
	if (l->backoff_ms > 1600)
		l->backoff_ms = 1600;
	l->resume_ns = now + l->backoff_ms * 1000000ull;
	t->ops->mod_fd(t->loop, l->h, 0);
	if (t->accept_log_ns && now - t->accept_log_ns < 10000000000ull) {
		t->accept_suppressed++;
		return;
	}
	tcp_log(t, NVEMU_TCP_LOG_ERR,
		"accept on %s:%s: %s; not accepting for %u ms (%u more such failures since the "
		"last message)",
		l->traddr, l->trsvcid, strerror(e), l->backoff_ms, t->accept_suppressed);
	t->accept_log_ns = now;
	t->accept_suppressed = 0;
}

/* Keep-alive probes find hosts that vanished (also with KATO 0): ~90 s. */
static void conn_sockopts(int fd)
{
	int one = 1, idle = 60, intvl = 10, cnt = 3;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void accept_cb(int fd, uint32_t revents, void *arg)
{
	struct tcp_listener *l = arg;

	(void)revents;
	if (l->resume_ns)
		return; /* backing off; a stale event of this round */
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct tcp_conn *c;
		char host[64] = "?", serv[16] = "?";

		if (cfd < 0) {
			int e = errno;

			if (e == EINTR || e == ECONNABORTED)
				continue;
			if (e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS) {
				listener_backoff(l, e);
				return;
			}
			if (e != EAGAIN && e != EWOULDBLOCK)
				tcp_log(l->t, NVEMU_TCP_LOG_WARN, "accept: %s", strerror(e));
			return;
		}
		l->backoff_ms = 0;
		conn_sockopts(cfd);
		c = tcp_conn_new(l->t, l, cfd);
		if (!c) {
			close(cfd);
			listener_backoff(l, ENOMEM);
			return;
		}
		if (l->secure && tcp_tls_start(c)) {
			tcp_conn_close(c, "out of memory for TLS");
			continue;
		}
		getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		snprintf(c->peer, sizeof(c->peer), "%s:%s", host, serv);
		tcp_log_conn(c, NVEMU_TCP_LOG_DEBUG, "%s: connected to %s:%s", c->peer, l->traddr,
			l->trsvcid);
	}
}

static struct tcp_listener *listener_get(struct nvemu_tcp_target *t, const char *traddr,
					 const char *trsvcid, uint8_t adrfam,
					 struct nvemu_error *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	struct tcp_listener *l, **arr;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, one = 1, r;

	for (unsigned i = 0; i < t->nr_lst; i++) {
		l = t->lst[i];
		if (!strcmp(l->traddr, traddr) && !strcmp(l->trsvcid, trsvcid) &&
		    l->adrfam == adrfam) {
			l->refs++;
			return l;
		}
	}
	hints.ai_family = adrfam == NVMF_ADDR_FAMILY_IP6 ? AF_INET6 : AF_INET;
	r = getaddrinfo(traddr, trsvcid, &hints, &ai);
	if (r) {
		nvemu_error_set(err, -EINVAL, "traddr/trsvcid: %s:%s: %s", traddr, trsvcid,
				gai_strerror(r));
		return NULL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		nvemu_error_set(err, -errno, "socket: %s", strerror(errno));
		freeaddrinfo(ai);
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int e = errno;

		nvemu_error_set(err, -e, "listen on %s:%s: %s", traddr, trsvcid, strerror(e));
		close(fd);
		freeaddrinfo(ai);
		return NULL;
	}
	freeaddrinfo(ai);
	l = calloc(1, sizeof(*l));
	arr = realloc(t->lst, (t->nr_lst + 1) * sizeof(*arr));
	if (arr)
		t->lst = arr;
	if (!l || !arr) {
		free(l);
		close(fd);
		nvemu_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	l->t = t;
	l->fd = fd;
	l->adrfam = adrfam;
	l->refs = 1;
	snprintf(l->traddr, sizeof(l->traddr), "%s", traddr);
	snprintf(l->trsvcid, sizeof(l->trsvcid), "%s", trsvcid);
	if (!getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		uint16_t port = ss.ss_family == AF_INET6
					? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					: ntohs(((struct sockaddr_in *)&ss)->sin_port);

		snprintf(l->trsvcid, sizeof(l->trsvcid), "%u", port);
	}
	l->h = t->ops->add_fd(t->loop, fd, EPOLLIN, accept_cb, l);
	if (!l->h) {
		close(fd);
		free(l);
		nvemu_error_set(err, -ENOMEM, "cannot watch the listening socket");
		return NULL;
	}
	t->lst[t->nr_lst++] = l;
	tcp_log(t, NVEMU_TCP_LOG_INFO, "listening on %s:%s", l->traddr, l->trsvcid);
	return l;
}

static uint8_t guess_adrfam(const char *traddr)
{
	return strchr(traddr, ':') ? NVMF_ADDR_FAMILY_IP6 : NVMF_ADDR_FAMILY_IP4;
}

static int find_sub_listener(struct tcp_subsys *ts, const char *traddr, const char *trsvcid,
			     uint8_t adrfam)
{
	for (unsigned i = 0; i < ts->nr_ls; i++) {
		struct tcp_listener *l = ts->ls[i].l;

		if (!strcmp(l->traddr, traddr) && !strcmp(l->trsvcid, trsvcid) &&
		    l->adrfam == adrfam)
			return (int)i;
	}
	return -1;
}

/* Unset fields mean loopback, the IANA NVMe/TCP port and the family of traddr. */
static void listener_defaults(const char **traddr, const char **trsvcid, uint8_t *adrfam)
{
	if (!*traddr || !**traddr)
		*traddr = "127.0.0.1";
	if (!*trsvcid || !**trsvcid)
		*trsvcid = "4420";
	if (!*adrfam)
		*adrfam = guess_adrfam(*traddr);
}

int nvemu_tcp_add_listener(struct nvemu_tcp_target *t, struct nvemu_subsys *s, const char *traddr,
			   const char *trsvcid, uint8_t adrfam, struct nvemu_error *err)
{
	return nvemu_tcp_add_listener_ex(t, s, traddr, trsvcid, adrfam, false, err);
}

int nvemu_tcp_add_listener_ex(struct nvemu_tcp_target *t, struct nvemu_subsys *s,
			      const char *traddr, const char *trsvcid, uint8_t adrfam,
			      bool secure_channel, struct nvemu_error *err)
{
	struct tcp_subsys *ts;
	struct tcp_sub_listener *ls;
	struct nvemu_port_params pp;
	struct tcp_listener *l;
	uint16_t port_id;
	int ret;

	listener_defaults(&traddr, &trsvcid, &adrfam);
	if (adrfam != NVMF_ADDR_FAMILY_IP4 && adrfam != NVMF_ADDR_FAMILY_IP6)
		return nvemu_error_set(err, -EINVAL, "adrfam: IPv4 or IPv6");
	if (strlen(traddr) >= sizeof(pp.tcp.traddr) || strlen(trsvcid) >= sizeof(pp.tcp.trsvcid))
		return nvemu_error_set(err, -EINVAL, "traddr/trsvcid: too long");
	ts = tcp_find_subsys(t, s);
	if (!ts) {
		ret = nvemu_tcp_add_subsys(t, s, err);
		if (ret)
			return ret;
		ts = tcp_find_subsys(t, s);
	}
	if (strcmp(trsvcid, "0") && find_sub_listener(ts, traddr, trsvcid, adrfam) >= 0)
		return nvemu_error_set(err, -EEXIST, "listener %s:%s exists on %s", traddr, trsvcid,
				       nvemu_subsys_nqn(s));
	ls = realloc(ts->ls, (ts->nr_ls + 1) * sizeof(*ls));
	if (!ls)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	ts->ls = ls;
	if (secure_channel) {
		ret = tcp_tls_ctx_init(t, err);
		if (ret)
			return ret;
	}
	l = listener_get(t, traddr, trsvcid, adrfam, err);
	if (!l)
		return err ? err->code : -EINVAL;
	if (l->refs == 1) {
		l->secure = secure_channel;
	} else if (l->secure != secure_channel) {
		/* One socket: either every connection speaks TLS or none does. */
		listener_put(t, l);
		return nvemu_error_set(err, -EINVAL,
				       "secure_channel: %s:%s is already a listener %s TLS", traddr,
				       trsvcid, l->secure ? "with" : "without");
	}
	nvemu_port_params_init(&pp, NVEMU_PORT_TCP);
	snprintf(pp.tcp.traddr, sizeof(pp.tcp.traddr), "%s", l->traddr);
	snprintf(pp.tcp.trsvcid, sizeof(pp.tcp.trsvcid), "%s", l->trsvcid);
	pp.tcp.adrfam = adrfam;
	ret = nvemu_subsys_add_port(s, &pp, &port_id, err);
	if (ret) {
		listener_put(t, l);
		return ret;
	}
	ts->ls[ts->nr_ls++] = (struct tcp_sub_listener){.l = l, .port_id = port_id};
	tcp_disc_log_changed(t);
	return 0;
}

int nvemu_tcp_remove_listener(struct nvemu_tcp_target *t, struct nvemu_subsys *s,
			      const char *traddr, const char *trsvcid, uint8_t adrfam,
			      struct nvemu_error *err)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);
	struct tcp_listener *l;
	uint16_t port_id;
	uint16_t *dp;
	int i;

	listener_defaults(&traddr, &trsvcid, &adrfam);
	i = ts ? find_sub_listener(ts, traddr, trsvcid, adrfam) : -1;
	if (i < 0)
		return nvemu_error_set(err, -ENOENT, "no listener %s:%s on %s", traddr, trsvcid,
				       nvemu_subsys_nqn(s));
	l = ts->ls[i].l;
	port_id = ts->ls[i].port_id;
	ts->ls[i] = ts->ls[--ts->nr_ls];
	tcp_disc_log_changed(t);
again:
	for (struct tcp_assoc *a = LIST_FIRST(&t->assocs); a; a = LIST_NEXT(a, link)) {
		if (!a->dead && a->ts == ts && a->ctrl->p.port_id == port_id) {
			tcp_assoc_teardown(a, "listener removed");
			goto again;
		}
	}
	dp = realloc(ts->dead_ports, (ts->nr_dead_ports + 1) * sizeof(*dp));
	if (dp) {
		ts->dead_ports = dp;
		ts->dead_ports[ts->nr_dead_ports++] = port_id;
	}
	listener_put(t, l);
	tcp_assoc_gc(t);
	return 0;
}

int nvemu_tcp_get_listener(struct nvemu_tcp_target *t, struct nvemu_subsys *s, unsigned idx,
			   struct nvemu_tcp_listener_info *out)
{
	struct tcp_subsys *ts = tcp_find_subsys(t, s);
	struct tcp_listener *l;

	if (!ts || idx >= ts->nr_ls)
		return -ENOENT;
	l = ts->ls[idx].l;
	memset(out, 0, sizeof(*out));
	snprintf(out->traddr, sizeof(out->traddr), "%s", l->traddr);
	snprintf(out->trsvcid, sizeof(out->trsvcid), "%s", l->trsvcid);
	out->adrfam = l->adrfam;
	out->port_id = ts->ls[idx].port_id;
	out->secure_channel = l->secure;
	return 0;
}

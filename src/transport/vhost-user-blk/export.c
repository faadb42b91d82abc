/* SPDX-License-Identifier: MIT */
/*
 * A virtio-blk export: its listening socket, the one client it serves at a
 * time, and its engine controller — the export is a host of the namespace,
 * on a PCIe port of its own, bound to the "vhost-blk" transport, with one
 * I/O queue per virtqueue. Detach and destroy wait (without blocking) for
 * the controller's commands in flight before removing it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "engine/nvemu-internal.h"
#include "util/accept-backoff.h"
#include "util/unix-listen.h"
#include "vblk-internal.h"

const struct nvemu_transport_ops vblk_transport_ops = {
	.name = "vhost-blk",
	.fabrics = false,
};

void vblk_log(struct nvemu_vblk *vb, int level, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (vb->p.log)
		vb->p.log(vb->p.log_arg, level, msg);
	else if (level <= NVEMU_VBLK_LOG_WARN)
		fprintf(stderr, "vhost-blk: %s\n", msg);
}

void nvemu_vblk_params_init(struct nvemu_vblk_params *p)
{
	memset(p, 0, sizeof(*p));
	p->num_queues = 1;
	p->queue_size = 256;
	p->ds_max = 8;
}

void vblk_kick_all(struct nvemu_vblk *vb)
{
	for (unsigned i = 0; vb->conn && i < vb->conn->nr_q; i++)
		if (vb->conn->q[i].kicked)
			vblk_queue_process(&vb->conn->q[i]);
}

/* Poll the listener again, unless a client holds the seat or accept() is resting. */
void vblk_listen(struct nvemu_vblk *vb)
{
	if (vb->listen_handle && !vb->conn && !nvemu_accept_backoff_resting(&vb->backoff))
		vb->p.ops->mod_fd(vb->p.loop, vb->listen_handle, EPOLLIN);
}

/*
 * Out of descriptors or memory the pending connection stays queued and the
 * listener readable: stop polling it for a while rather than spin.
 */
static void accept_rest(struct nvemu_vblk *vb, int err)
{
	struct itimerspec its = {.it_value.tv_nsec = NVEMU_ACCEPT_BACKOFF_MS * 1000000L};
	uint64_t missed;

	vb->p.ops->mod_fd(vb->p.loop, vb->listen_handle, 0);
	nvemu_accept_backoff_rest(&vb->backoff);
	timerfd_settime(vb->timer_fd, 0, &its, NULL);
	vb->st.accept_errors++;
	if (nvemu_accept_backoff_log_ok(&vb->backoff, &missed))
		vblk_log(vb, NVEMU_VBLK_LOG_WARN,
			 "%s: accept: %s; not accepting for %d ms (%llu more such failures not "
			 "logged)",
			 vb->path, strerror(err), NVEMU_ACCEPT_BACKOFF_MS,
			 (unsigned long long)missed);
}

static void timer_cb(int fd, uint32_t revents, void *arg)
{
	struct nvemu_vblk *vb = arg;
	uint64_t n;

	(void)revents;
	if (read(fd, &n, sizeof(n)) < 0)
		return;
	nvemu_accept_backoff_end(&vb->backoff);
	vblk_listen(vb);
}

static void accept_cb(int fd, uint32_t revents, void *arg)
{
	struct nvemu_vblk *vb = arg;
	int c;

	(void)revents;
	/* One client at a time: the next one waits in the backlog. */
	vb->p.ops->mod_fd(vb->p.loop, vb->listen_handle, 0);
	if (vb->conn)
		return;
	c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0) {
		if (nvemu_accept_exhausted(errno))
			accept_rest(vb, errno);
		else
			vblk_listen(vb);
		return;
	}
	if (!vblk_conn_new(vb, c)) {
		close(c);
		accept_rest(vb, ENOMEM);
		return;
	}
	vblk_log(vb, NVEMU_VBLK_LOG_INFO, "%s: client connected", vb->path);
}

static int check_params(const struct nvemu_vblk_params *p, struct nvemu_error *err)
{
	if (!p->ops || !p->ops->add_fd || !p->ops->mod_fd || !p->ops->del_fd)
		return nvemu_error_set(err, -EINVAL, "ops: an event loop is required");
	if (!p->socket_path || !*p->socket_path ||
	    strlen(p->socket_path) >= sizeof(((struct nvemu_vblk_info *)0)->socket_path))
		return nvemu_error_set(err, -EINVAL, "socket_path: required, at most 107 bytes");
	if (p->num_queues > NVEMU_VBLK_MAX_QUEUES)
		return nvemu_error_set(err, -EINVAL, "num_queues: must be in 1..%d",
				       NVEMU_VBLK_MAX_QUEUES);
	if (p->queue_size && (p->queue_size < 4 || p->queue_size > NVEMU_VBLK_MAX_QUEUE_SIZE ||
			      (p->queue_size & (p->queue_size - 1))))
		return nvemu_error_set(err, -EINVAL, "queue_size: a power of 2 in 4..%d",
				       NVEMU_VBLK_MAX_QUEUE_SIZE);
	if (p->ds_max > NVEMU_VBLK_MAX_DS)
		return nvemu_error_set(err, -EINVAL, "ds_max: must be in 1..%d", NVEMU_VBLK_MAX_DS);
	if (p->serial && strlen(p->serial) > NVEMU_VBLK_SERIAL_MAX)
		return nvemu_error_set(err, -EINVAL, "serial: at most %d bytes",
				       NVEMU_VBLK_SERIAL_MAX);
	if (p->register_ds && strlen(p->register_ds) >= 256)
		return nvemu_error_set(err, -EINVAL, "register_ds: path too long");
	return 0;
}

static void vblk_free(void *arg)
{
	struct nvemu_vblk *vb = arg;
	void (*done)(void *) = vb->destroy_done;
	void *done_arg = vb->destroy_arg;
	void (*detached)(void *) = vb->chained_detach_done;
	void *detached_arg = vb->chained_detach_arg;

	free(vb);
	/* A detach the destroy overtook still reports its end. */
	if (detached)
		detached(detached_arg);
	if (done)
		done(done_arg);
}

static void close_timer(struct nvemu_vblk *vb)
{
	if (vb->timer_handle)
		vb->p.ops->del_fd(vb->p.loop, vb->timer_handle);
	vb->timer_handle = NULL;
	if (vb->timer_fd >= 0)
		close(vb->timer_fd);
	vb->timer_fd = -1;
}

int nvemu_vblk_create(const struct nvemu_vblk_params *p, struct nvemu_vblk **out,
		      struct nvemu_error *err)
{
	struct nvemu_vblk *vb;
	int ret = check_params(p, err);

	if (ret)
		return ret;
	vb = calloc(1, sizeof(*vb));
	if (!vb)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	vb->p = *p;
	vb->p.num_queues = p->num_queues ? p->num_queues : 1;
	vb->p.queue_size = p->queue_size ? p->queue_size : 256;
	vb->p.ds_max = p->ds_max ? p->ds_max : 8;
	snprintf(vb->path, sizeof(vb->path), "%s", p->socket_path);
	snprintf(vb->serial, sizeof(vb->serial), "%s", p->serial ? p->serial : "");
	snprintf(vb->register_ds, sizeof(vb->register_ds), "%s",
		 p->register_ds ? p->register_ds : "");
	vb->p.socket_path = vb->path;
	vb->p.serial = vb->serial;
	vb->p.register_ds = *vb->register_ds ? vb->register_ds : NULL;
	LIST_INIT(&vb->reqs);
	vb->listen_fd = -1;
	vb->timer_fd = -1;
	if (p->target.subsys && (ret = nvemu_vblk_attach(vb, &p->target, err))) {
		free(vb);
		return ret;
	}
	vb->listen_fd = nvemu_unix_listen(vb->path, SOCK_STREAM, 4, "socket_path", err);
	if (vb->listen_fd < 0) {
		ret = vb->listen_fd;
		goto fail;
	}
	vb->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (vb->timer_fd >= 0)
		vb->timer_handle = p->ops->add_fd(p->loop, vb->timer_fd, EPOLLIN, timer_cb, vb);
	if (vb->timer_handle)
		vb->listen_handle = p->ops->add_fd(p->loop, vb->listen_fd, EPOLLIN, accept_cb, vb);
	if (!vb->listen_handle) {
		close_timer(vb);
		close(vb->listen_fd);
		unlink(vb->path);
		ret = nvemu_error_set(err, -ENOMEM, "socket_path: cannot watch the socket");
		goto fail;
	}
	*out = vb;
	return 0;
fail:
	if (vb->attached)
		nvemu_vblk_detach(vb, vblk_free, vb);
	else
		free(vb);
	return ret;
}

void nvemu_vblk_destroy(struct nvemu_vblk *vb, void (*done)(void *arg), void *arg)
{
	if (!vb) {
		if (done)
			done(arg);
		return;
	}
	vb->destroying = true;
	vb->destroy_done = done;
	vb->destroy_arg = arg;
	vblk_conn_close(vb);
	if (vb->listen_handle)
		vb->p.ops->del_fd(vb->p.loop, vb->listen_handle);
	vb->listen_handle = NULL;
	close_timer(vb);
	if (vb->listen_fd >= 0) {
		close(vb->listen_fd);
		unlink(vb->path);
		vb->listen_fd = -1;
		vb->timer_fd = -1;
	}
	if (vb->detaching) {
		/* The running detach finishes the job. */
		vb->chained_detach_done = vb->detach_done;
		vb->chained_detach_arg = vb->detach_arg;
		vb->detach_done = vblk_free;
		vb->detach_arg = vb;
	} else if (vb->attached) {
		nvemu_vblk_detach(vb, vblk_free, vb);
	} else {
		vblk_free(vb);
	}
}

void nvemu_vblk_suspend(struct nvemu_vblk *vb)
{
	vb->suspended = true;
}

void nvemu_vblk_resume(struct nvemu_vblk *vb)
{
	vb->suspended = false;
	vblk_kick_all(vb);
}

static void remove_ctrl(struct nvemu_vblk *vb)
{
	struct nvemu_subsys *s = vb->t.subsys;

	if (vb->ctrl) {
		if (nvemu_ctrl_enabled(vb->ctrl))
			nvemu_ctrl_set_cc(vb->ctrl, 0);
		nvemu_ctrl_bind_transport(vb->ctrl, NULL, NULL, NULL);
		nvemu_subsys_remove_ctrl(s, nvemu_ctrl_cntlid(vb->ctrl), NULL);
		vb->ctrl = NULL;
	}
	nvemu_subsys_remove_port(s, vb->port_id, NULL);
}

/* A controller for the export: queues 1..num_queues, enabled, the namespace attached. */
static int add_ctrl(struct nvemu_vblk *vb, const struct nvemu_vblk_target *t,
		    struct nvemu_error *err)
{
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	uint16_t cntlid;
	int ret;

	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	ret = nvemu_subsys_add_port(t->subsys, &pp, &vb->port_id, err);
	if (ret)
		return ret;
	nvemu_ctrl_params_init(&cp);
	cp.port_id = vb->port_id;
	cp.num_io_queues = vb->p.num_queues;
	cp.mdts = 7;
	cp.max_queue_entries = NVEMU_VBLK_MAX_QUEUE_SIZE;
	cp.write_zeroes = true;
	cp.dsm = true;
	ret = nvemu_subsys_add_ctrl_ex(t->subsys, &cp, &cntlid, err);
	if (ret) {
		nvemu_subsys_remove_port(t->subsys, vb->port_id, NULL);
		return ret;
	}
	vb->ctrl = nvemu_subsys_ctrl(t->subsys, cntlid);
	vb->t = *t;
	ret = nvemu_ctrl_bind_transport(vb->ctrl, &vblk_transport_ops, vb, err);
	if (!ret)
		ret = nvemu_ctrl_attach_ns(vb->ctrl, t->nsid, err);
	if (!ret) {
		nvemu_ctrl_set_aqa(vb->ctrl, 31 | 31u << 16);
		nvemu_ctrl_set_cc(vb->ctrl, 1u << NVME_CC_EN_SHIFT | 6u << NVME_CC_IOSQES_SHIFT |
						    4u << NVME_CC_IOCQES_SHIFT);
		if (!(nvemu_ctrl_get_csts(vb->ctrl) & (1u << NVME_CSTS_RDY_SHIFT)))
			ret = nvemu_error_set(err, -EIO, "controller: enable failed");
	}
	if (ret) {
		remove_ctrl(vb);
		return ret;
	}
	for (uint16_t q = 1; q <= vb->p.num_queues; q++)
		nvemu_ctrl_connect_queue(vb->ctrl, q, NVEMU_VBLK_MAX_QUEUE_SIZE);
	return 0;
}

int nvemu_vblk_attach(struct nvemu_vblk *vb, const struct nvemu_vblk_target *t,
		      struct nvemu_error *err)
{
	struct nvemu_vblk_target w = *t;
	struct nvemu_ns_info ni;
	struct nvemu_ns *ns;
	int ret;

	if (vb->attached || vb->detaching || vb->destroying)
		return nvemu_error_set(err, -EBUSY, "target: the export is attached or detaching");
	if (!t->subsys)
		return nvemu_error_set(err, -EINVAL, "target: no subsystem");
	ns = nvemu_subsys_ns(t->subsys, t->nsid);
	if (!ns)
		return nvemu_error_set(err, -ENOENT, "nsid: no namespace %u in %s", t->nsid,
				       nvemu_subsys_nqn(t->subsys));
	nvemu_ns_info(ns, &ni);
	if (!w.nr_lbas) {
		if (w.first_lba)
			return nvemu_error_set(err, -EINVAL, "nr_lbas: required with first_lba");
		w.nr_lbas = ni.nblocks;
	}
	if (w.first_lba > ni.nblocks || w.nr_lbas > ni.nblocks - w.first_lba)
		return nvemu_error_set(
			err, -ERANGE, "first_lba: LBAs %llu+%llu outside namespace %u (%llu LBAs)",
			(unsigned long long)w.first_lba, (unsigned long long)w.nr_lbas, t->nsid,
			(unsigned long long)ni.nblocks);
	ret = add_ctrl(vb, &w, err);
	if (ret)
		return ret;
	vb->lba_size = ni.lba_size;
	vb->attached = true;
	return 0;
}

static void detach_idle(void *arg)
{
	struct nvemu_vblk *vb = arg;
	void (*done)(void *) = vb->detach_done;
	void *done_arg = vb->detach_arg;

	remove_ctrl(vb);
	memset(&vb->t, 0, sizeof(vb->t));
	vb->lba_size = 0;
	vb->detaching = false;
	if (done)
		done(done_arg);
}

int nvemu_vblk_detach(struct nvemu_vblk *vb, void (*done)(void *arg), void *arg)
{
	if (vb->detaching)
		return -EBUSY;
	if (!vb->attached)
		return -ENOENT;
	vb->attached = false; /* new requests fail from now on */
	vb->detaching = true;
	vb->detach_done = done;
	vb->detach_arg = arg;
	nvemu_ctrl_when_idle(vb->ctrl, detach_idle, vb);
	return 0;
}

struct nvemu_ctrl *nvemu_vblk_ctrl(const struct nvemu_vblk *vb)
{
	return vb->ctrl;
}

void nvemu_vblk_get_info(const struct nvemu_vblk *vb, struct nvemu_vblk_info *o)
{
	const struct vblk_conn *c = vb->conn;

	memset(o, 0, sizeof(*o));
	snprintf(o->socket_path, sizeof(o->socket_path), "%s", vb->path);
	snprintf(o->serial, sizeof(o->serial), "%s", vb->serial);
	snprintf(o->register_ds, sizeof(o->register_ds), "%s", vb->register_ds);
	if (vb->attached)
		o->target = vb->t;
	o->attached = vb->attached;
	o->detaching = vb->detaching;
	o->connected = c != NULL;
	o->suspended = vb->suspended;
	o->readonly = vb->p.readonly;
	o->cntlid = vb->ctrl ? nvemu_ctrl_cntlid(vb->ctrl) : 0;
	o->block_size = vb->attached ? vb->lba_size : 0;
	o->capacity = vblk_capacity(vb);
	o->num_queues = vb->p.num_queues;
	o->queue_size = vb->p.queue_size;
	o->ds_max = vb->p.ds_max;
	for (unsigned i = 0; c && i < c->nr_q; i++)
		o->active_queues += c->q[i].started;
	o->nr_regions = c && c->mem ? c->mem->nr : 0;
	o->inflight = vb->inflight;
	o->stats = vb->st;
}

// SPDX-License-Identifier: MIT
/*
 * NVMe-MI endpoints of the model: an MI endpoint on a two-wire (or
 * PCIe) port of a subsystem, reached as MCTP (network, EID) through the
 * userspace AF_MCTP router that libnvemu-mctp-preload.so talks to, or over a
 * serial line of its own (mi-serial.c). Endpoints exist without the router
 * (in process, or nvemud -m none); the router routes every endpoint that has
 * no serial line, whenever either was created.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <nvemu/mctp.h>
#include <nvemu/mi.h>

#include "event-loop.h"
#include "daemon.h"

static struct nvemud_mi *mi_state(struct nvemud *d)
{
	if (!d->mi)
		d->mi = calloc(1, sizeof(*d->mi));
	return d->mi;
}

static void ep_free(struct nvemud *d, struct mi_endpoint *ep)
{
	if (ep->serial)
		nvemud_mi_serial_close(ep->serial);
	else if (d->mi && d->mi->router)
		nvemu_mctp_router_remove_ep(d->mi->router, ep->mctp);
	nvemu_mctp_ep_destroy(ep->mctp);
	nvemu_mi_ep_destroy(ep->mi);
}

void nvemud_mi_del_ep(struct nvemud *d, unsigned i)
{
	struct nvemud_mi *m = d->mi;

	ep_free(d, &m->eps[i]);
	memmove(&m->eps[i], &m->eps[i + 1], (m->nr_eps - i - 1) * sizeof(*m->eps));
	m->nr_eps--;
}

/*
 * Asynchronous Event Messages: every endpoint with AEs enabled looks at the
 * model, sends and retransmits on this tick; the AEM latency is at most one
 * tick plus the requester's AEMD. With no AE enabled anywhere the tick slows
 * down (an enabling Set is seen on the next slow tick; changes are caught
 * up from the snapshots, none is lost).
 */
#define MI_AEM_TICK_MS 10
#define MI_AEM_IDLE_MS 100

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void aem_tick(struct loop_src *src, void *arg)
{
	struct nvemud_mi *m = arg;
	uint64_t now = mono_ns();
	bool active = false;

	for (unsigned i = 0; i < m->nr_eps; i++)
		active |= nvemu_mi_ep_aem_poll(m->eps[i].mi, now) != 0;
	if (active != m->aem_active) {
		m->aem_active = active;
		loop_timer_arm(src, active ? MI_AEM_TICK_MS : MI_AEM_IDLE_MS, true);
	}
}

int nvemud_mi_add_ep(struct nvemud *d, struct nvemu_subsys *s, uint16_t port,
		     const struct nvemud_mi_ep_opts *o, struct nvemu_error *err)
{
	struct nvemud_mi *m = mi_state(d);
	struct nvemu_mctp_ep_params p;
	struct mi_endpoint ep = { .subsys = s, .port = port }, *n;
	unsigned net = o->net, mtu = o->mtu;
	uint8_t eid = o->eid;
	int ret;

	if (!m)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	if (!mtu)
		mtu = NVEMU_MCTP_BTU;
	for (unsigned i = 0; i < m->nr_eps; i++) {
		if (nvemu_mctp_ep_net(m->eps[i].mctp) == net &&
		    nvemu_mctp_ep_eid(m->eps[i].mctp) == eid)
			return nvemu_error_set(err, -EEXIST,
					       "eid: network %u EID %u is already an endpoint's",
					       net, eid);
		if (m->eps[i].subsys == s && m->eps[i].port == port)
			return nvemu_error_set(err, -EEXIST,
					       "port: %s port %u already has an endpoint",
					       nvemu_subsys_nqn(s), port);
	}
	ret = nvemu_mi_ep_create(s, port, &ep.mi, err);
	if (ret)
		return ret;
	nvemu_mi_ep_set_ctrl0_alias(ep.mi, !o->no_ctrl0_alias);
	nvemu_mi_ep_set_pcie_ops(ep.mi, &nvemud_mi_pcie_ops, d);
	/* A DSP0253 line carries packets of the baseline unit (Linux's mctp-serial limit). */
	if (o->serial)
		nvemu_mi_ep_set_mtu_max(ep.mi, NVEMU_MCTP_SERIAL_MAX_PKT - NVEMU_MCTP_HDR_LEN);
	/* The MI port configuration is what Configuration Get reports and MCTP follows. */
	ret = nvemu_mi_ep_set_port_mtu(ep.mi, port, (uint16_t)mtu, err);
	if (ret)
		goto fail_mi;
	nvemu_mctp_ep_params_init(&p);
	p.net = net;
	p.eid = eid;
	p.mtu = mtu;
	ret = nvemu_mctp_ep_create(&p, &ep.mctp, err);
	if (ret)
		goto fail_mi;
	ret = nvemu_mctp_ep_attach_mi(ep.mctp, ep.mi, err);
	if (!ret && o->serial)
		ret = nvemud_mi_serial_open(d, ep.mctp, o->serial, o->baud, &ep.serial, err);
	else if (!ret && m->router)
		ret = nvemu_mctp_router_add_ep(m->router, ep.mctp, err);
	if (ret)
		goto fail_mctp;
	n = realloc(m->eps, (m->nr_eps + 1) * sizeof(*n));
	if (!n) {
		ret = nvemu_error_set(err, -ENOMEM, "out of memory");
		ep_free(d, &ep);
		return ret;
	}
	m->eps = n;
	m->eps[m->nr_eps++] = ep;
	if (!m->aem_src && d->loop)
		m->aem_src = loop_add_timer(d->loop, MI_AEM_IDLE_MS, true, aem_tick, m);
	return 0;
fail_mctp:
	nvemu_mctp_ep_destroy(ep.mctp);
fail_mi:
	nvemu_mi_ep_destroy(ep.mi);
	return ret;
}

bool nvemud_mi_owns_port(struct nvemud *d, struct nvemu_subsys *s, uint16_t port)
{
	for (unsigned i = 0; d->mi && i < d->mi->nr_eps; i++)
		if (d->mi->eps[i].subsys == s && d->mi->eps[i].port == port)
			return true;
	return false;
}

void nvemud_mi_remove_subsys(struct nvemud *d, struct nvemu_subsys *s)
{
	for (unsigned i = 0; d->mi && i < d->mi->nr_eps;) {
		if (d->mi->eps[i].subsys == s)
			nvemud_mi_del_ep(d, i);
		else
			i++;
	}
}

/* ---- the router */

static void router_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	nvemu_mctp_router_handle(arg);
}

int nvemud_mi_start(struct nvemud *d, const char *path, struct nvemu_error *err)
{
	struct nvemud_mi *m = mi_state(d);
	int ret;

	if (!m)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	if (!d->loop)
		return nvemu_error_set(err, -EINVAL, "the MCTP router needs the event loop");
	if (m->router)
		return nvemu_error_set(err, -EEXIST, "the MCTP router is already running");
	if (!path || !*path)
		path = NVEMU_MCTP_SOCKET_DEFAULT;
	/* Refuses a live socket of another process, replaces only a stale one. */
	ret = nvemu_mctp_router_create(path, &m->router, err);
	if (ret)
		return ret;
	m->router_src = loop_add_fd(d->loop, nvemu_mctp_router_fd(m->router), EPOLLIN,
				    router_cb, m->router);
	if (!m->router_src) {
		ret = nvemu_error_set(err, -ENOMEM, "cannot watch the MCTP router");
		goto fail;
	}
	for (unsigned i = 0; i < m->nr_eps; i++) {
		if (m->eps[i].serial)
			continue;
		ret = nvemu_mctp_router_add_ep(m->router, m->eps[i].mctp, err);
		if (ret)
			goto fail;
	}
	return 0;
fail:
	nvemud_mi_stop(d);
	return ret;
}

void nvemud_mi_stop(struct nvemud *d)
{
	struct nvemud_mi *m = d->mi;

	if (!m || !m->router)
		return;
	loop_del(m->router_src);
	m->router_src = NULL;
	for (unsigned i = 0; i < m->nr_eps; i++)
		if (!m->eps[i].serial)
			nvemu_mctp_router_remove_ep(m->router, m->eps[i].mctp);
	/* Removes the socket file. */
	nvemu_mctp_router_destroy(m->router);
	m->router = NULL;
}

void nvemud_mi_free(struct nvemud *d)
{
	if (!d->mi)
		return;
	nvemud_mi_stop(d);
	if (d->mi->aem_src)
		loop_del(d->mi->aem_src);
	while (d->mi->nr_eps)
		nvemud_mi_del_ep(d, d->mi->nr_eps - 1);
	free(d->mi->eps);
	free(d->mi);
	d->mi = NULL;
}

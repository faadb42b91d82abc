// SPDX-License-Identifier: MIT
/*
 * A daemon instance as a whole: made with its NVMe/TCP target and teardown
 * timers, the seed-000 default configuration, and freed after draining,
 * every face (TCP, MI, vfio-user) before the objects they serve. The one
 * file that knows every part; none of them calls back here.
 */
#include <errno.h>
#include <stdlib.h>

#include "event-loop.h"
#include "reactor.h"
#include "rpc.h"
#include "teardown.h"

struct nvemud *nvemud_new(struct loop *loop, int log_level)
{
	return nvemud_new_reactors(loop, log_level, NULL);
}

struct nvemud *nvemud_new_reactors(struct loop *loop, int log_level,
				   const struct nvemud_reactor_params *rp)
{
	struct nvemud *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->loop = loop;
	d->log_level = log_level;
	d->logger.jfd = -1;
	/* Peer-caused messages: 10 at once, then one a second per kind and peer. */
	nvemud_ratelimit_init(&d->logger.rl, 10, 1000000000ull);
	d->next_ctrl_idx = 1;
	LIST_INIT(&d->teardowns);
	d->drive = nvemud_teardown_drive;
	LIST_INIT(&d->vblks);
	LIST_INIT(&d->ana_pending);
	/* Before the target: it takes the reactors' loop ops when there are several. */
	if (loop && rp && (rp->nr > 1 || rp->nr_cpus) && nvemud_reactors_start(d, rp)) {
		free(d);
		return NULL;
	}
	/* One PF without VFs, sockets in /var/tmp, until nvemud or emulation_functions_configure says. */
	if (nvemud_funcs_configure(d, 1, 0, "/var/tmp", NULL) || nvemud_tcp_start(d)) {
		nvemud_funcs_free(d);
		nvemud_reactors_free(d);
		free(d);
		return NULL;
	}
	if (loop && nvemud_teardown_init(d)) {
		loop_del(d->td_tick);
		loop_del(d->td_kick);
		nvemud_reactors_stop(d);
		nvemud_tcp_stop(d);
		nvemud_reactors_free(d);
		nvemud_funcs_free(d);
		free(d);
		return NULL;
	}
	return d;
}

void nvemud_free(struct nvemud *d)
{
	struct nvemu_error err;

	if (!d)
		return;
	nvemud_ana_cancel(d, NULL, 0, 0);
	/* One thread from here: the reactors' queues drain and close on this one. */
	nvemud_reactors_stop(d);
	nvemud_teardown_finish_all(d, 5000);
	nvemud_drain(d, 5000);
	/* Exports are hosts of namespaces: gone before the subsystems. */
	nvemud_vblk_free_all(d, 5000);
	/* Before the subsystems: it ends the host associations and removes their controllers. */
	nvemud_tcp_stop(d);
	nvemud_reactors_free(d);
	nvemud_mi_free(d);
	while (d->nr_subsys) {
		struct nvemu_subsys *s = d->subsys[d->nr_subsys - 1];

		nvemud_vfu_stop_subsys(d, s);
		nvemud_del_subsys(d, s);
		nvemu_subsys_destroy(s);
	}
	while (d->nr_bdevs) {
		struct nvemud_bdev *b = &d->bdevs[d->nr_bdevs - 1];
		struct nvemu_bdev *bdev = b->bdev;

		nvemud_del_bdev(d, b);
		if (nvemu_bdev_destroy(bdev, &err))
			nvemud_log(d, NVEMUD_LOG_WARN, "bdev: %s", err.msg);
	}
	nvemud_nvme_free(d);
	nvemud_rbd_free(d);
	nvemud_keyring_free(d);
	free(d->subsys);
	free(d->bdevs);
	nvemud_funcs_free(d);
	free(d->ctrls);
	json_decref(d->skipped);
	nvemud_log_close(&d->logger);
	free(d);
}

/* ---- the seed-000 default */

int nvemud_load_default(struct nvemud *d, struct nvemu_error *err)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ns_params np;
	struct nvemu_subsys *s;
	struct nvemu_bdev *b0 = NULL, *b1 = NULL;
	uint16_t port, twport, cntlid;
	uint32_t nsid1, nsid2;
	int ret;

	ret = nvemu_subsys_info_environment(&sp, err);
	if (ret)
		return ret;
	sp.nqn = NVEMUD_DEFAULT_NQN;
	/* Served over PCIe: SeaBIOS identifies every NSID up to NN at boot. */
	sp.nn = 256;
	sp.mnan = 256;
	ret = nvemu_subsys_create(&sp, &s, err);
	if (ret)
		return ret;
	ret = nvemu_bdev_ram_create("Malloc0", 1024 * 512ull, 512, &b0, err);
	if (!ret)
		ret = nvemu_bdev_ram_create("Malloc1", 2048 * 512ull, 512, &b1, err);
	if (ret)
		goto fail;
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	ret = nvemu_subsys_add_port(s, &pp, &port, err);
	if (!ret)
		ret = nvemu_subsys_add_ctrl(s, port, &cntlid, err);
	if (ret)
		goto fail;
	nvemu_ns_params_init(&np);
	np.bdev = b0;
	ret = nvemu_subsys_add_ns_ex(s, &np, &nsid1, err);
	if (ret)
		goto fail;
	np.bdev = b1;
	ret = nvemu_subsys_add_ns_ex(s, &np, &nsid2, err);
	if (!ret)
		ret = nvemu_ctrl_attach_ns(nvemu_subsys_ctrl(s, cntlid), nsid1, err);
	if (ret)
		goto fail;
	nvemu_port_params_init(&pp, NVEMU_PORT_TWO_WIRE);
	ret = nvemu_subsys_add_port(s, &pp, &twport, err);
	if (ret)
		goto fail;
	if (nvemud_add_subsys(d, s) || nvemud_add_bdev(d, b0, NULL) ||
	    nvemud_add_bdev(d, b1, NULL) || !nvemud_add_ctrl(d, NULL, s, cntlid))
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	nvemud_subsys_setup(d, s);
	/* NVMe-MI on the two-wire port, MCTP network 1, EID 9. */
	return nvemud_mi_add_ep(d, s, twport, &(struct nvemud_mi_ep_opts){ .net = 1, .eid = 9 },
				err);
fail:
	nvemu_subsys_destroy(s);
	if (b1)
		nvemu_bdev_destroy(b1, NULL);
	if (b0)
		nvemu_bdev_destroy(b0, NULL);
	return ret;
}

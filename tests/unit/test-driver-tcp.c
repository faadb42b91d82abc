/* SPDX-License-Identifier: MIT */
/*
 * The NVMe host driver over NVMe/TCP against nvemu's own target on
 * 127.0.0.1 (an ephemeral port; the target runs its built-in loop in a
 * thread and the test thread only touches the model before it starts or
 * after it stopped): bring-up, namespaces, I/O with and without digests,
 * in-capsule and R2T writes, multi-PDU reads, errors, loss and reconnect,
 * Namespace Attribute Changed rescans.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-util.h"
#include "driver/driver-internal.h"
#include <nvemu/tcp.h>

#define SUBNQN "nqn.2024-01.io.nvemu:drv-test"
#define SERIAL "NVEMU-DRV-0001"

struct srv {
	struct nvemu_subsys *s;
	struct nvemu_tcp_target *t;
	pthread_t th;
	atomic_int stop;
	bool running;
	char port[32];
	uint32_t maxh2c;
};

static void *srv_main(void *arg)
{
	struct srv *sv = arg;

	while (!atomic_load(&sv->stop))
		nvemu_tcp_target_run_once(sv->t, 5);
	return NULL;
}

static void srv_start(struct srv *sv)
{
	struct nvemu_tcp_target_params tp;
	struct nvemu_tcp_listener_info li;
	struct nvemu_error err = {0};

	nvemu_tcp_target_params_init(&tp);
	tp.maxh2cdata = sv->maxh2c;
	tp.num_io_queues = 4;
	assert_int_equal(nvemu_tcp_target_create(&tp, &sv->t, &err), 0);
	assert_int_equal(nvemu_tcp_add_listener(sv->t, sv->s, "127.0.0.1",
						sv->port[0] ? sv->port : "0", 0, &err),
			 0);
	assert_int_equal(nvemu_tcp_get_listener(sv->t, sv->s, 0, &li), 0);
	snprintf(sv->port, sizeof(sv->port), "%s", li.trsvcid);
	atomic_store(&sv->stop, 0);
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
	sv->running = true;
}

static void srv_stop(struct srv *sv)
{
	if (!sv->running)
		return;
	atomic_store(&sv->stop, 1);
	pthread_join(sv->th, NULL);
	nvemu_tcp_remove_subsys(sv->t, sv->s);
	nvemu_tcp_target_destroy(sv->t);
	sv->running = false;
}

static struct srv *srv_new(uint32_t maxh2c)
{
	struct srv *sv = calloc(1, sizeof(*sv));
	struct nvemu_subsys_params sp;
	struct nvemu_error err = {0};
	uint32_t nsid;

	assert_non_null(sv);
	nvemu_subsys_params_init(&sp);
	sp.nqn = SUBNQN;
	sp.serial = SERIAL;
	assert_int_equal(nvemu_subsys_create(&sp, &sv->s, &err), 0);
	assert_int_equal(nvemu_subsys_add_ns(sv->s, 8192, &nsid, &err), 0);
	assert_int_equal(nvemu_subsys_add_ns(sv->s, 2048, &nsid, &err), 0);
	sv->maxh2c = maxh2c;
	srv_start(sv);
	return sv;
}

static void srv_free(struct srv *sv)
{
	srv_stop(sv);
	nvemu_subsys_destroy(sv->s);
	free(sv);
}

static void opts_for(struct srv *sv, struct nvemu_drv_trid *trid, struct nvemu_drv_opts *o)
{
	memset(trid, 0, sizeof(*trid));
	trid->trtype = NVEMU_DRV_TRTYPE_TCP;
	strcpy(trid->traddr, "127.0.0.1");
	strcpy(trid->trsvcid, sv->port);
	strcpy(trid->subnqn, SUBNQN);
	nvemu_drv_opts_init(o);
	o->num_io_queues = 2;
	o->io_queue_size = 32;
	o->connect_timeout_ms = 2000;
	o->reconnect_delay_ms = 50;
	o->log = NULL;
}

static struct nvemu_drv_ctrl *connect_ok(const struct nvemu_drv_trid *trid,
					 const struct nvemu_drv_opts *o)
{
	struct nvemu_error err = {0};
	struct nvemu_drv_ctrl *c = NULL;
	int rc = nvemu_drv_ctrl_connect(trid, o, &c, &err);

	if (rc)
		fprintf(stderr, "connect: %s\n", err.msg);
	assert_int_equal(rc, 0);
	return c;
}

struct io_wait {
	int done;
	int err;
	uint16_t status;
};

static void io_cb(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct io_wait *w = arg;

	w->done++;
	w->err = err;
	w->status = cqe ? cqe->status : 0;
}

/* Poll the queue until w completes (or 5 s). */
static int wait_io(struct nvemu_drv_ctrl *c, struct nvemu_drv_qpair *qp, struct io_wait *w)
{
	uint64_t end = drv_now_ns() + 5000000000ull;

	while (!w->done && drv_now_ns() < end) {
		if (qp)
			nvemu_drv_qpair_process(qp, 0);
		nvemu_drv_ctrl_process_admin(c);
		nvemu_drv_ctrl_tick(c);
		usleep(100);
	}
	return w->done ? w->err : -ETIMEDOUT;
}

static int io_sync(struct nvemu_drv_ctrl *c, unsigned q, uint32_t nsid, enum nvemu_drv_io_op op,
		   uint64_t slba, uint32_t nlb, void *buf)
{
	struct nvemu_drv_qpair *qp = nvemu_drv_ctrl_qpair(c, q);
	struct io_wait w = {0};
	int rc = nvemu_drv_io(qp, nsid, op, slba, nlb, buf, io_cb, &w);

	if (rc)
		return rc;
	return wait_io(c, qp, &w);
}

static void fill(uint8_t *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 7 + seed);
}

static void rw_check(struct nvemu_drv_ctrl *c, unsigned q, uint64_t slba, uint32_t nlb,
		     unsigned seed)
{
	size_t len = (size_t)nlb * 512;
	uint8_t *w = malloc(len), *r = malloc(len);

	assert_non_null(w);
	assert_non_null(r);
	fill(w, len, seed);
	memset(r, 0xee, len);
	assert_int_equal(io_sync(c, q, 1, NVEMU_DRV_IO_WRITE, slba, nlb, w), 0);
	assert_int_equal(io_sync(c, q, 1, NVEMU_DRV_IO_READ, slba, nlb, r), 0);
	assert_memory_equal(w, r, len);
	free(w);
	free(r);
}

static void test_bringup_and_io(void **state)
{
	struct srv *sv = srv_new(8192);
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts o;
	struct nvemu_drv_ctrl *c;
	struct nvemu_drv_ns_info ni;

	opts_for(sv, &trid, &o);
	c = connect_ok(&trid, &o);
	assert_int_equal(nvemu_drv_ctrl_state(c), NVEMU_DRV_STATE_ENABLED);
	assert_string_equal(nvemu_drv_ctrl_serial(c), SERIAL);
	assert_int_equal(nvemu_drv_ctrl_nr_qpairs(c), 2);
	assert_int_equal(nvemu_drv_ns_next(c, 0), 1);
	assert_int_equal(nvemu_drv_ns_next(c, 1), 2);
	assert_int_equal(nvemu_drv_ns_next(c, 2), 0);
	assert_int_equal(nvemu_drv_ns_get(c, 1, &ni), 0);
	assert_int_equal(ni.nsze, 8192);
	assert_int_equal(ni.blk_size, 512);
	assert_int_equal(nvemu_tcp_nr_assocs(sv->t, sv->s), 1);

	rw_check(c, 0, 0, 1, 1);	    /* in-capsule write, one C2HData */
	rw_check(c, 1, 100, 64, 2);	    /* 32 KiB: R2T, several H2CData and C2HData */
	rw_check(c, 0, 8192 - 256, 256, 3); /* 128 KiB up to the end */
	/* out of range, unknown namespace: refused before anything is sent */
	assert_int_equal(io_sync(c, 0, 1, NVEMU_DRV_IO_READ, 8192, 1, &ni), -EINVAL);
	assert_int_equal(io_sync(c, 0, 9, NVEMU_DRV_IO_READ, 0, 1, &ni), -EINVAL);
	assert_int_equal(io_sync(c, 0, 1, NVEMU_DRV_IO_FLUSH, 0, 0, NULL), 0);
	assert_int_equal(io_sync(c, 0, 1, NVEMU_DRV_IO_WRITE_ZEROES, 0, 8, NULL), 0);
	assert_int_equal(io_sync(c, 1, 1, NVEMU_DRV_IO_DEALLOCATE, 8, 8, NULL), 0);
	{
		uint8_t z[4096], zero[4096] = {0};

		assert_int_equal(io_sync(c, 0, 1, NVEMU_DRV_IO_READ, 0, 8, z), 0);
		assert_memory_equal(z, zero, sizeof(z));
	}
	/* a command the target refuses: an NVMe status, the controller stays up */
	{
		struct nvemu_sqe cmd = {.opc = 0xc1}; /* no such admin opcode */
		struct io_wait w = {0};

		assert_int_equal(nvemu_drv_submit(c, NULL, &cmd, NULL, 0, io_cb, &w), 0);
		assert_int_equal(wait_io(c, NULL, &w), -EIO);
		assert_int_equal(nvemu_status_sc(w.status), NVME_SC_INVALID_OPCODE);
		assert_int_equal(nvemu_drv_ctrl_state(c), NVEMU_DRV_STATE_ENABLED);
	}
	nvemu_drv_ctrl_destroy(c);
	srv_free(sv);
}

static void test_digests_small_h2c(void **state)
{
	struct srv *sv = srv_new(4096);
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts o;
	struct nvemu_drv_ctrl *c;

	opts_for(sv, &trid, &o);
	o.hdgst = o.ddgst = true;
	c = connect_ok(&trid, &o);
	rw_check(c, 0, 10, 1, 4);
	rw_check(c, 1, 20, 200, 5); /* R2T answered by 25 H2CData of 4 KiB */
	nvemu_drv_ctrl_destroy(c);
	srv_free(sv);
}

static void test_connect_errors(void **state)
{
	struct srv *sv = srv_new(0);
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts o;
	struct nvemu_drv_ctrl *c = NULL;
	struct nvemu_error err = {0};

	opts_for(sv, &trid, &o);
	strcpy(trid.subnqn, "nqn.2024-01.io.nvemu:nobody");
	assert_int_not_equal(nvemu_drv_ctrl_connect(&trid, &o, &c, &err), 0);
	assert_non_null(strstr(err.msg, "Connect"));
	opts_for(sv, &trid, &o);
	strcpy(trid.traddr, "localhost"); /* no name lookups on the event loop */
	memset(&err, 0, sizeof(err));
	assert_int_equal(nvemu_drv_ctrl_connect(&trid, &o, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "traddr"));
	trid.trtype = NVEMU_DRV_TRTYPE_VFIO_USER;
	if (!nvemu_drv_trtype_supported(trid.trtype))
		assert_int_equal(nvemu_drv_ctrl_connect(&trid, &o, &c, &err), -EPROTONOSUPPORT);
	srv_stop(sv);
	opts_for(sv, &trid, &o);
	memset(&err, 0, sizeof(err));
	assert_int_equal(nvemu_drv_ctrl_connect(&trid, &o, &c, &err), -ECONNREFUSED);
	nvemu_subsys_destroy(sv->s);
	free(sv);
}

static void test_trid_parse(void **state)
{
	struct nvemu_drv_trid t;
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_drv_trid_parse("trtype:tcp adrfam:ipv4 traddr:127.0.0.1 "
					      "trsvcid:4421 subnqn:nqn.a:b",
					      &t, &err),
			 0);
	assert_int_equal(t.trtype, NVEMU_DRV_TRTYPE_TCP);
	assert_int_equal(t.adrfam, NVMF_ADDR_FAMILY_IP4);
	assert_string_equal(t.traddr, "127.0.0.1");
	assert_string_equal(t.trsvcid, "4421");
	assert_string_equal(t.subnqn, "nqn.a:b");
	assert_int_equal(nvemu_drv_trid_parse("trtype:TCP traddr:::1 subnqn:x", &t, &err), 0);
	assert_string_equal(t.traddr, "::1");
	assert_string_equal(t.trsvcid, "4420");
	assert_int_equal(nvemu_drv_trid_parse("trtype:tcp traddr:1.2.3.4", &t, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "subnqn"));
	assert_int_equal(nvemu_drv_trid_parse("trtype:rdma traddr:x", &t, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "trtype"));
	assert_int_equal(nvemu_drv_trid_parse("bogus traddr:x", &t, &err), -EINVAL);
	assert_int_equal(nvemu_drv_trid_parse("color:red", &t, &err), -EINVAL);
	assert_int_equal(nvemu_drv_trid_parse("trtype:pcie traddr:0000:01:00.0", &t, &err), 0);
	assert_string_equal(t.traddr, "0000:01:00.0");
}

static int drain_until(struct nvemu_drv_ctrl *c, enum nvemu_drv_state want, unsigned ms)
{
	uint64_t end = drv_now_ns() + (uint64_t)ms * 1000000ull;

	while (nvemu_drv_ctrl_state(c) != want && drv_now_ns() < end) {
		for (unsigned i = 0; i < nvemu_drv_ctrl_nr_qpairs(c); i++)
			nvemu_drv_qpair_process(nvemu_drv_ctrl_qpair(c, i), 0);
		nvemu_drv_ctrl_process_admin(c);
		nvemu_drv_ctrl_tick(c);
		usleep(1000);
	}
	return nvemu_drv_ctrl_state(c) == want ? 0 : -ETIMEDOUT;
}

struct events {
	unsigned added, removed, state;
	uint32_t last_nsid;
};

static void ev_cb(void *arg, struct nvemu_drv_ctrl *c, enum nvemu_drv_event ev, uint32_t nsid)
{
	struct events *e = arg;

	if (ev == NVEMU_DRV_EV_NS_ADDED)
		e->added++;
	else if (ev == NVEMU_DRV_EV_NS_REMOVED)
		e->removed++;
	else if (ev == NVEMU_DRV_EV_STATE)
		e->state++;
	e->last_nsid = nsid;
}

static void test_loss_and_reconnect(void **state)
{
	struct srv *sv = srv_new(0);
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts o;
	struct nvemu_drv_ctrl *c;
	struct events ev = {0};
	struct io_wait w = {0};
	uint8_t buf[4096];

	opts_for(sv, &trid, &o);
	o.event = ev_cb;
	o.event_arg = &ev;
	o.ctrl_loss_timeout_ms = 3000;
	c = connect_ok(&trid, &o);
	rw_check(c, 0, 0, 8, 9);
	/* the target goes away: the controller resets, I/O fails, reconnects once it is back */
	srv_stop(sv);
	assert_int_equal(nvemu_drv_io(nvemu_drv_ctrl_qpair(c, 0), 1, NVEMU_DRV_IO_READ, 0, 8, buf,
				      io_cb, &w),
			 0);
	assert_int_equal(drain_until(c, NVEMU_DRV_STATE_RESETTING, 3000), 0);
	assert_int_equal(w.done, 1);
	assert_true(w.err == -ECONNRESET || w.err == -ETIMEDOUT);
	assert_int_equal(nvemu_drv_io(nvemu_drv_ctrl_qpair(c, 0), 1, NVEMU_DRV_IO_READ, 0, 8, buf,
				      io_cb, &w),
			 -ENOTCONN);
	srv_start(sv); /* the same port */
	assert_int_equal(drain_until(c, NVEMU_DRV_STATE_ENABLED, 5000), 0);
	assert_true(nvemu_drv_ctrl_resets(c) >= 1);
	rw_check(c, 1, 0, 8, 10); /* the data survived: the subsystem is the same */
	/* gone for longer than ctrl_loss_timeout_ms: failed, I/O -ENODEV */
	srv_stop(sv);
	assert_int_equal(drain_until(c, NVEMU_DRV_STATE_FAILED, 8000), 0);
	assert_int_equal(nvemu_drv_io(nvemu_drv_ctrl_qpair(c, 0), 1, NVEMU_DRV_IO_READ, 0, 8, buf,
				      io_cb, &w),
			 -ENODEV);
	/* an explicit reset leaves FAILED and reconnects */
	srv_start(sv);
	nvemu_drv_ctrl_reset(c);
	assert_int_equal(drain_until(c, NVEMU_DRV_STATE_ENABLED, 5000), 0);
	assert_true(ev.state >= 4);
	nvemu_drv_ctrl_destroy(c);
	srv_free(sv);
}

static void test_ns_rescan(void **state)
{
	struct srv *sv = srv_new(0);
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts o;
	struct nvemu_drv_ctrl *c, *arr[1];
	struct nvemu_error err = {0};
	struct events ev = {0};
	uint32_t nsid = 0;

	opts_for(sv, &trid, &o);
	o.event = ev_cb;
	o.event_arg = &ev;
	c = connect_ok(&trid, &o);
	arr[0] = c;
	assert_int_equal(nvemu_drv_find_sn_ns(arr, 1, SERIAL ":n2", &arr[0], &nsid), 0);
	assert_int_equal(nsid, 2);
	assert_int_equal(nvemu_drv_find_sn_ns(arr, 1, SERIAL ":n3", &arr[0], &nsid), -ENOENT);
	assert_int_equal(nvemu_drv_find_sn_ns(arr, 1, "OTHER:n1", &arr[0], &nsid), -ENOENT);
	assert_int_equal(nvemu_drv_find_sn_ns(arr, 1, SERIAL "n1", &arr[0], &nsid), -EINVAL);
	assert_int_equal(nvemu_drv_find_sn_ns(arr, 1, SERIAL ":n0", &arr[0], &nsid), -EINVAL);
	/* a namespace removed on the target: AEN, rescan, event */
	atomic_store(&sv->stop, 1);
	pthread_join(sv->th, NULL);
	nvemu_tcp_ns_removed(sv->t, sv->s, 2);
	assert_int_equal(nvemu_subsys_remove_ns(sv->s, 2, &err), 0);
	atomic_store(&sv->stop, 0);
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
	{
		uint64_t end = drv_now_ns() + 5000000000ull;

		while (!ev.removed && drv_now_ns() < end) {
			nvemu_drv_ctrl_process_admin(c);
			nvemu_drv_ctrl_tick(c);
			usleep(1000);
		}
	}
	assert_int_equal(ev.removed, 1);
	assert_int_equal(ev.last_nsid, 2);
	assert_int_equal(nvemu_drv_ns_next(c, 1), 0);
	rw_check(c, 0, 0, 1, 11); /* the controller is still fine */
	nvemu_drv_ctrl_destroy(c);
	srv_free(sv);
}

/* Counts the driver's "sent Abort" messages. */
static void count_aborts(void *arg, int level, const char *msg)
{
	(void)level;
	if (strstr(msg, "sent Abort"))
		(*(int *)arg)++;
}

/* A namespace on a delay bdev (reads take 1.5 s) and one with 4 KiB LBAs. */
static void test_timeout_and_4k(void **state)
{
	struct srv *sv = calloc(1, sizeof(*sv));
	struct nvemu_bdev_delay_opts dopt = {.read_latency_us = 1500000};
	struct nvemu_bdev *ram, *slow;
	struct nvemu_subsys_params sp;
	struct nvemu_ns_params np;
	struct nvemu_error err = {0};
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts o;
	struct nvemu_drv_ns_info ni;
	struct nvemu_drv_ctrl *c;
	struct io_wait w = {0};
	uint8_t buf[8192], wbuf[8192];
	uint32_t nsid;
	int aborts = 0;

	assert_non_null(sv);
	nvemu_subsys_params_init(&sp);
	sp.nqn = SUBNQN;
	sp.serial = SERIAL;
	assert_int_equal(nvemu_subsys_create(&sp, &sv->s, &err), 0);
	assert_int_equal(nvemu_bdev_ram_create("r0", 1 << 20, 512, &ram, &err), 0);
	assert_int_equal(nvemu_bdev_delay_create("d0", ram, &dopt, &slow, &err), 0);
	nvemu_ns_params_init(&np);
	np.bdev = slow;
	assert_int_equal(nvemu_subsys_add_ns_ex(sv->s, &np, &nsid, &err), 0);
	nvemu_ns_params_init(&np);
	np.nblocks = 256;
	np.lbaf = 1;
	assert_int_equal(nvemu_subsys_add_ns_ex(sv->s, &np, &nsid, &err), 0);
	srv_start(sv);

	opts_for(sv, &trid, &o);
	o.io_timeout_ms = 300;
	c = connect_ok(&trid, &o);
	assert_int_equal(nvemu_drv_ns_get(c, 2, &ni), 0);
	assert_int_equal(ni.blk_size, 4096);
	assert_int_equal(ni.nsze, 256);
	fill(wbuf, sizeof(wbuf), 12);
	assert_int_equal(io_sync(c, 0, 2, NVEMU_DRV_IO_WRITE, 255, 1, wbuf), 0);
	assert_int_equal(io_sync(c, 0, 2, NVEMU_DRV_IO_READ, 255, 1, buf), 0);
	assert_memory_equal(buf, wbuf, 4096);
	assert_int_equal(io_sync(c, 0, 2, NVEMU_DRV_IO_READ, 255, 2, buf), -EINVAL);
	/*
	 * A read the target holds past io_timeout_ms: the driver sends Abort,
	 * the target marks the read, which completes with Command Abort
	 * Requested when the backend returns: no reset.
	 */
	o.log = count_aborts;
	o.log_arg = &aborts;
	nvemu_drv_ctrl_destroy(c);
	c = connect_ok(&trid, &o);
	assert_int_equal(nvemu_drv_io(nvemu_drv_ctrl_qpair(c, 1), 1, NVEMU_DRV_IO_READ, 0, 1, buf,
				      io_cb, &w),
			 0);
	assert_int_equal(wait_io(c, nvemu_drv_ctrl_qpair(c, 1), &w), -EIO);
	assert_int_equal(nvemu_status_sc(w.status), NVME_SC_ABORT_REQ);
	assert_int_equal(aborts, 1);
	assert_int_equal(nvemu_drv_ctrl_resets(c), 0);
	assert_int_equal(nvemu_drv_ctrl_state(c), NVEMU_DRV_STATE_ENABLED);
	nvemu_drv_ctrl_destroy(c);
	/*
	 * The same read when the Abort's grace (admin_timeout_ms) ends before
	 * the target completes it: the fallback resets, -ETIMEDOUT, reconnect.
	 */
	usleep(1600000);
	o.admin_timeout_ms = 400;
	c = connect_ok(&trid, &o);
	memset(&w, 0, sizeof(w));
	aborts = 0;
	assert_int_equal(nvemu_drv_io(nvemu_drv_ctrl_qpair(c, 1), 1, NVEMU_DRV_IO_READ, 0, 1, buf,
				      io_cb, &w),
			 0);
	assert_int_equal(wait_io(c, nvemu_drv_ctrl_qpair(c, 1), &w), -ETIMEDOUT);
	assert_int_equal(aborts, 1);
	assert_int_equal(drain_until(c, NVEMU_DRV_STATE_ENABLED, 5000), 0);
	assert_int_equal(nvemu_drv_ctrl_resets(c), 1);
	/* the 4 KiB namespace still holds its data */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(io_sync(c, 1, 2, NVEMU_DRV_IO_READ, 255, 1, buf), 0);
	assert_memory_equal(buf, wbuf, 4096);
	nvemu_drv_ctrl_destroy(c);
	usleep(1600000); /* let the held reads finish before the bdevs go */
	srv_stop(sv);
	nvemu_subsys_destroy(sv->s);
	assert_int_equal(nvemu_bdev_destroy(slow, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(ram, &err), 0);
	free(sv);
}

/* Keep Alive keeps an idle association up past its KATO. */
static void test_keep_alive(void **state)
{
	struct srv *sv = srv_new(0);
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts o;
	struct nvemu_drv_ctrl *c;
	uint64_t end;

	opts_for(sv, &trid, &o);
	o.kato_ms = 1000;
	c = connect_ok(&trid, &o);
	end = drv_now_ns() + 3000000000ull;
	while (drv_now_ns() < end) {
		nvemu_drv_ctrl_process_admin(c);
		nvemu_drv_ctrl_tick(c);
		usleep(20000);
	}
	assert_int_equal(nvemu_drv_ctrl_state(c), NVEMU_DRV_STATE_ENABLED);
	assert_int_equal(nvemu_drv_ctrl_resets(c), 0);
	assert_int_equal(nvemu_tcp_nr_assocs(sv->t, sv->s), 1);
	rw_check(c, 0, 0, 1, 14);
	nvemu_drv_ctrl_destroy(c);
	srv_free(sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trid_parse),	   cmocka_unit_test(test_bringup_and_io),
		cmocka_unit_test(test_digests_small_h2c),  cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_loss_and_reconnect), cmocka_unit_test(test_ns_rescan),
		cmocka_unit_test(test_timeout_and_4k),	   cmocka_unit_test(test_keep_alive),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

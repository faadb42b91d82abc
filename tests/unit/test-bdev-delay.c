/* SPDX-License-Identifier: MIT */
/* The delay backend over a RAM bdev, driven directly (no controller). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test-util.h"

#define MS 1000000ull

struct bio_done {
	int called;
	int err;
	uint64_t at_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void bio_end(struct nvemu_bio *bio, int err)
{
	struct bio_done *d = bio->private;

	d->called++;
	d->err = err;
	d->at_ns = now_ns();
}

/* Poll b as an event loop would: wait on its fd up to ms, then poll(). */
static void poll_for(struct nvemu_bdev *b, int ms)
{
	struct pollfd p = {.fd = nvemu_bdev_get_fd(b), .events = POLLIN};

	assert_true(p.fd >= 0);
	poll(&p, 1, ms);
	nvemu_bdev_poll(b);
}

struct fixture {
	struct nvemu_bdev *ram, *dly;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nvemu_bdev_delay_opts o = {.read_latency_us = 50000, .write_latency_us = 20000};
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_bdev_ram_create("ram0", 1 << 20, 512, &f->ram, &err), 0);
	assert_int_equal(nvemu_bdev_delay_create("dly0", f->ram, &o, &f->dly, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(nvemu_bdev_destroy(f->dly, NULL), 0);
	assert_int_equal(nvemu_bdev_destroy(f->ram, NULL), 0);
	free(f);
	return 0;
}

/* Submit one bio and wait for it; returns how long it took. */
static uint64_t timed_io(struct nvemu_bdev *b, enum nvemu_bio_op op, void *buf, struct bio_done *d)
{
	struct nvemu_bio bio = {
		.op = op, .offset = 4096, .len = 4096, .buf = buf, .end_io = bio_end, .private = d};
	uint64_t t0 = now_ns();

	assert_int_equal(nvemu_bdev_submit(b, &bio), 0);
	for (int i = 0; i < 500 && !d->called; i++)
		poll_for(b, 10);
	assert_int_equal(d->called, 1);
	assert_int_equal(d->err, 0);
	return d->at_ns - t0;
}

static void test_geometry(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_delay_opts o;
	struct nvemu_bdev *base = NULL;

	assert_string_equal(f->dly->ops->type, "delay");
	assert_int_equal(f->dly->size, f->ram->size);
	assert_int_equal(f->dly->blk_size, f->ram->blk_size);
	assert_int_equal(nvemu_bdev_delay_get(f->dly, &base, &o), 0);
	assert_ptr_equal(base, f->ram);
	assert_int_equal(o.read_latency_us, 50000);
	assert_int_equal(o.write_latency_us, 20000);
	assert_int_equal(nvemu_bdev_delay_get(f->ram, NULL, NULL), -EINVAL);
	/* The base is held: it can't go while the delay bdev exists. */
	assert_int_equal(f->ram->users, 1);
	assert_int_equal(nvemu_bdev_destroy(f->ram, NULL), -EBUSY);
}

/* Held until the latency has passed, counted in flight meanwhile, then completed. */
static void test_latency(void **state)
{
	struct fixture *f = *state;
	struct bio_done d = {0};
	char buf[4096];
	struct nvemu_bio bio = {.op = NVEMU_BIO_READ,
				.offset = 0,
				.len = 4096,
				.buf = buf,
				.end_io = bio_end,
				.private = &d};
	uint64_t t0 = now_ns();

	assert_int_equal(nvemu_bdev_submit(f->dly, &bio), 0);
	/* The RAM base completed inside submit(); the delay bdev holds it. */
	assert_int_equal(d.called, 0);
	assert_int_equal(nvemu_bdev_inflight(f->dly), 1);
	/* Polled well before the 50 ms latency: still held. */
	poll_for(f->dly, 10);
	if (now_ns() - t0 < 40 * MS) {
		assert_int_equal(d.called, 0);
		assert_int_equal(nvemu_bdev_inflight(f->dly), 1);
	}
	/* A busy bdev can't be destroyed. */
	assert_int_equal(nvemu_bdev_destroy(f->dly, NULL), -EBUSY);
	for (int i = 0; i < 500 && !d.called; i++)
		poll_for(f->dly, 10);
	assert_int_equal(d.called, 1);
	assert_int_equal(d.err, 0);
	assert_true(d.at_ns - t0 >= 50 * MS);
	assert_int_equal(nvemu_bdev_inflight(f->dly), 0);
	assert_int_equal(nvemu_bdev_delay_completed(f->dly), 1);
}

/* Reads and writes get their own latency, and the data goes through to the base. */
static void test_read_write(void **state)
{
	struct fixture *f = *state;
	struct bio_done w = {0}, r = {0};
	char in[4096], out[4096];
	uint64_t tw, tr;

	memset(in, 0xa5, sizeof(in));
	tw = timed_io(f->dly, NVEMU_BIO_WRITE, in, &w);
	tr = timed_io(f->dly, NVEMU_BIO_READ, out, &r);
	assert_memory_equal(in, out, sizeof(in));
	assert_true(tw >= 20 * MS);
	assert_true(tr >= 50 * MS);
}

/* A new latency applies to what is submitted afterwards; the bounds still hold. */
static void test_set_latency(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_delay_opts o = {.read_latency_us = 80000, .write_latency_us = 0};
	struct nvemu_error err = {0};
	struct bio_done r = {0};
	char buf[4096];

	assert_int_equal(nvemu_bdev_delay_set_latency(f->dly, &o, &err), 0);
	assert_true(timed_io(f->dly, NVEMU_BIO_READ, buf, &r) >= 80 * MS);
	o.write_latency_us = NVEMU_BDEV_DELAY_MAX_US + 1;
	assert_int_equal(nvemu_bdev_delay_set_latency(f->dly, &o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "write_latency_us"));
	assert_int_equal(nvemu_bdev_delay_set_latency(f->ram, &o, &err), -EINVAL);
	assert_int_equal(nvemu_bdev_delay_get(f->dly, NULL, &o), 0);
	assert_int_equal(o.read_latency_us, 80000);
	assert_int_equal(o.write_latency_us, 0);
	assert_int_equal(nvemu_bdev_delay_completed(f->dly), 1);
	assert_int_equal(nvemu_bdev_delay_completed(f->ram), 0);
}

/* Completions come in due order whatever the submission order. */
static void test_order(void **state)
{
	struct fixture *f = *state;
	struct bio_done dr = {0}, dw = {0};
	char rb[4096], wb[4096] = {0};
	struct nvemu_bio rd = {
		.op = NVEMU_BIO_READ, .len = 4096, .buf = rb, .end_io = bio_end, .private = &dr};
	struct nvemu_bio wr = {.op = NVEMU_BIO_WRITE,
			       .offset = 8192,
			       .len = 4096,
			       .buf = wb,
			       .end_io = bio_end,
			       .private = &dw};

	assert_int_equal(nvemu_bdev_submit(f->dly, &rd), 0);
	assert_int_equal(nvemu_bdev_submit(f->dly, &wr), 0);
	assert_int_equal(nvemu_bdev_inflight(f->dly), 2);
	for (int i = 0; i < 500 && !(dr.called && dw.called); i++)
		poll_for(f->dly, 10);
	assert_int_equal(dr.called, 1);
	assert_int_equal(dw.called, 1);
	assert_true(dw.at_ns <= dr.at_ns);
	assert_int_equal(nvemu_bdev_inflight(f->dly), 0);
}

/* Errors of the base come through; argument checks happen before anything is held. */
static void test_errors(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_delay_opts o = {.read_latency_us = NVEMU_BDEV_DELAY_MAX_US + 1};
	struct nvemu_error err = {0};
	struct nvemu_bdev *b = NULL;
	struct bio_done d = {0};
	char buf[4096];
	struct nvemu_bio bio = {.op = NVEMU_BIO_READ,
				.offset = 1 << 20,
				.len = 4096,
				.buf = buf,
				.end_io = bio_end,
				.private = &d};

	assert_int_equal(nvemu_bdev_submit(f->dly, &bio), -ERANGE);
	assert_int_equal(nvemu_bdev_inflight(f->dly), 0);
	assert_int_equal(nvemu_bdev_delay_create("dly1", f->ram, &o, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "read_latency_us"));
	o = (struct nvemu_bdev_delay_opts){.write_latency_us = NVEMU_BDEV_DELAY_MAX_US + 1};
	assert_int_equal(nvemu_bdev_delay_create("dly1", f->ram, &o, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "write_latency_us"));
	o = (struct nvemu_bdev_delay_opts){0};
	assert_int_equal(nvemu_bdev_delay_create("bad name", f->ram, &o, &b, &err), -EINVAL);
	assert_int_equal(nvemu_bdev_delay_create("dly1", NULL, &o, &b, &err), -EINVAL);
	assert_int_equal(f->ram->users, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_geometry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_latency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

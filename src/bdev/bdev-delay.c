/* SPDX-License-Identifier: MIT */
/*
 * The delay backend, after SPDK's delay vbdev: it passes each bio to a base
 * bdev and holds the completion until a fixed latency after submission has
 * passed, so that commands stay in flight for as long as a test needs
 * (teardown under load, timeouts, queue-full paths) on fast RAM storage.
 * Held completions wait in a list in due order; a timerfd, armed for the
 * earliest, is the fd the owner polls, as with the file backend's eventfd.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "engine/nvemu-internal.h"

struct delay_io {
	TAILQ_ENTRY(delay_io) link;
	struct delay_bdev *dly;
	struct nvemu_bio *bio;	/* the caller's */
	struct nvemu_bio child; /* the same I/O on the base */
	uint64_t due_ns;	/* CLOCK_MONOTONIC */
	int err;		/* the base's result */
};

TAILQ_HEAD(delay_list, delay_io);

struct delay_bdev {
	struct nvemu_bdev bdev;
	struct nvemu_bdev *base;
	struct nvemu_bdev_delay_opts opts;
	int tfd;
	struct delay_list held; /* done on the base, waiting for due_ns; earliest first */
	unsigned inflight;	/* submitted, end_io not called yet */
	uint64_t completed;
	/* Destroyed from a completion inside poll(): poll() frees it on its way out. */
	bool in_poll, destroyed;
};

static const struct nvemu_bdev_ops delay_ops;

static struct delay_bdev *to_delay(struct nvemu_bdev *bdev)
{
	return (struct delay_bdev *)bdev;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Arm the timer for the earliest held completion, or disarm it. */
static void delay_arm(struct delay_bdev *d)
{
	struct delay_io *io = TAILQ_FIRST(&d->held);
	struct itimerspec its = {0};

	if (io) {
		/* An absolute time already past fires at once; 0 would disarm. */
		uint64_t due = io->due_ns ? io->due_ns : 1;

		its.it_value.tv_sec = (time_t)(due / 1000000000ull);
		its.it_value.tv_nsec = (long)(due % 1000000000ull);
	}
	timerfd_settime(d->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* The base finished: hold the completion in due order until its latency has passed. */
static void delay_base_done(struct nvemu_bio *child, int err)
{
	struct delay_io *io = child->private;
	struct delay_bdev *d = io->dly;
	struct delay_io *prev;

	io->err = err;
	/* Reads and writes differ in latency: walk back from the latest to keep due order. */
	TAILQ_FOREACH_REVERSE(prev, &d->held, delay_list, link) {
		if (prev->due_ns <= io->due_ns)
			break;
	}
	if (prev)
		TAILQ_INSERT_AFTER(&d->held, prev, io, link);
	else
		TAILQ_INSERT_HEAD(&d->held, io, link);
	if (TAILQ_FIRST(&d->held) == io)
		delay_arm(d);
}

static int delay_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	struct delay_bdev *d = to_delay(bdev);
	struct delay_io *io = calloc(1, sizeof(*io));
	uint64_t us =
		bio->op == NVEMU_BIO_READ ? d->opts.read_latency_us : d->opts.write_latency_us;
	int rc;

	if (!io)
		return -ENOMEM;
	io->dly = d;
	io->bio = bio;
	io->due_ns = mono_ns() + us * 1000u;
	io->child = (struct nvemu_bio){
		.op = bio->op,
		.offset = bio->offset,
		.len = bio->len,
		.buf = bio->buf,
		.fua = bio->fua,
		.end_io = delay_base_done,
		.private = io,
	};
	d->inflight++;
	rc = nvemu_bdev_submit(d->base, &io->child);
	if (rc) {
		d->inflight--;
		free(io);
	}
	return rc;
}

static void delay_free(struct delay_bdev *d)
{
	if (d->tfd >= 0)
		close(d->tfd);
	free(d);
}

static int delay_poll(struct nvemu_bdev *bdev)
{
	struct delay_bdev *d = to_delay(bdev);
	struct delay_io *io;
	uint64_t v, now;
	int n = 0;

	/* Clear the expiry count first, so a timer armed below wakes the owner again. */
	if (read(d->tfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	/* A caller that polls only this bdev (no event loop) still gets the base's completions. */
	nvemu_bdev_poll(d->base);
	now = mono_ns();
	d->in_poll = true;
	while (!d->destroyed && (io = TAILQ_FIRST(&d->held)) && io->due_ns <= now) {
		struct nvemu_bio *bio = io->bio;
		int err = io->err;

		TAILQ_REMOVE(&d->held, io, link);
		free(io);
		d->inflight--;
		d->completed++;
		n++;
		bio->end_io(bio, err);
	}
	d->in_poll = false;
	if (d->destroyed) {
		/* nvemu_bdev_destroy() only lets an idle bdev go: nothing is left held. */
		delay_free(d);
		return n;
	}
	delay_arm(d);
	return n;
}

/* A caller that waits on this bdev alone must start what the base has queued. */
static int delay_flush_submit(struct nvemu_bdev *bdev)
{
	return nvemu_bdev_flush_submit(to_delay(bdev)->base);
}

static int delay_get_fd(struct nvemu_bdev *bdev)
{
	return to_delay(bdev)->tfd;
}

static unsigned delay_inflight(struct nvemu_bdev *bdev)
{
	return to_delay(bdev)->inflight;
}

static void delay_destroy(struct nvemu_bdev *bdev)
{
	struct delay_bdev *d = to_delay(bdev);

	d->base->users--;
	/* The last namespace reference can drop inside a completion poll() runs. */
	if (d->in_poll) {
		d->destroyed = true;
		return;
	}
	delay_free(d);
}

static const struct nvemu_bdev_ops delay_ops = {
	.type = "delay",
	.submit = delay_submit,
	.poll = delay_poll,
	.get_fd = delay_get_fd,
	.inflight = delay_inflight,
	.destroy = delay_destroy,
	.flush_submit = delay_flush_submit,
};

static int check_opts(const struct nvemu_bdev_delay_opts *opts, struct nvemu_error *err)
{
	if (!opts)
		return nvemu_error_set(err, -EINVAL, "delay: latency: required");
	if (opts->read_latency_us > NVEMU_BDEV_DELAY_MAX_US)
		return nvemu_error_set(err, -EINVAL, "delay: read_latency_us: %llu is above %llu",
				       (unsigned long long)opts->read_latency_us,
				       NVEMU_BDEV_DELAY_MAX_US);
	if (opts->write_latency_us > NVEMU_BDEV_DELAY_MAX_US)
		return nvemu_error_set(err, -EINVAL, "delay: write_latency_us: %llu is above %llu",
				       (unsigned long long)opts->write_latency_us,
				       NVEMU_BDEV_DELAY_MAX_US);
	return 0;
}

int nvemu_bdev_delay_create(const char *name, struct nvemu_bdev *base,
			    const struct nvemu_bdev_delay_opts *opts, struct nvemu_bdev **out,
			    struct nvemu_error *err)
{
	struct delay_bdev *d;
	int rc;

	if (!base)
		return nvemu_error_set(err, -EINVAL, "delay: base_bdev_name: required");
	rc = check_opts(opts, err);
	if (rc)
		return rc;
	d = calloc(1, sizeof(*d));
	if (!d)
		return nvemu_error_set(err, -ENOMEM, "delay: out of memory");
	rc = nvemu_bdev_init(&d->bdev, &delay_ops, name, base->size, base->blk_size, err);
	if (rc) {
		free(d);
		return rc;
	}
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->tfd < 0) {
		rc = nvemu_error_set(err, -errno, "delay: %s: timerfd: %s", name, strerror(errno));
		free(d);
		return rc;
	}
	d->bdev.read_only = base->read_only;
	d->bdev.priv = d;
	d->base = base;
	d->opts = *opts;
	TAILQ_INIT(&d->held);
	/* Held like a namespace holds its bdev: the base can't be deleted under us. */
	base->users++;
	*out = &d->bdev;
	return 0;
}

int nvemu_bdev_delay_get(struct nvemu_bdev *bdev, struct nvemu_bdev **base,
			 struct nvemu_bdev_delay_opts *opts)
{
	if (!bdev || bdev->ops != &delay_ops)
		return -EINVAL;
	if (base)
		*base = to_delay(bdev)->base;
	if (opts)
		*opts = to_delay(bdev)->opts;
	return 0;
}

int nvemu_bdev_delay_set_latency(struct nvemu_bdev *bdev, const struct nvemu_bdev_delay_opts *opts,
				 struct nvemu_error *err)
{
	int rc;

	if (!bdev || bdev->ops != &delay_ops)
		return nvemu_error_set(err, -EINVAL, "delay: name: not a delay bdev");
	rc = check_opts(opts, err);
	if (rc)
		return rc;
	to_delay(bdev)->opts = *opts;
	return 0;
}

uint64_t nvemu_bdev_delay_completed(struct nvemu_bdev *bdev)
{
	if (!bdev || bdev->ops != &delay_ops)
		return 0;
	return to_delay(bdev)->completed;
}

// SPDX-License-Identifier: MIT
/*
 * Reactors: more event loops, each on its own thread, for NVMe/TCP I/O
 * queues. Reactor 0 is the main loop. Every loop holds the model lock while
 * it dispatches; a queue's socket system calls run without it (conn.c),
 * so receive and send, the bulk of the CPU an I/O costs, go in parallel.
 * Objects a reactor owns are changed from other threads only through
 * messages (loop_post), never by touching its loop or socket.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "event-loop.h"
#include "reactor.h"

struct reactor {
	struct nvemud *d;
	unsigned id;
	struct loop *loop;
	pthread_t th;
	bool started;
	int cpu;	    /* -1: not pinned */
	struct loop_src *flusher; /* starts the bdev I/O this reactor's queues submitted */
	unsigned nr_queues; /* under the model lock */
};

struct nvemud_reactors {
	pthread_mutex_t lock; /* the model lock */
	unsigned nr;
	struct reactor r[];
};

static int parse_cpu(const char **s, long max)
{
	char *end;
	long v;

	if (**s < '0' || **s > '9')
		return -1;
	errno = 0;
	v = strtol(*s, &end, 10);
	if (errno || v < 0 || v >= max)
		return -1;
	*s = end;
	return (int)v;
}

int nvemud_reactor_parse_cpus(const char *arg, struct nvemud_reactor_params *p,
			      struct nvemu_error *err)
{
	long online = sysconf(_SC_NPROCESSORS_CONF);
	const char *s = arg;

	if (online < 1)
		online = 1;
	p->nr_cpus = 0;
	while (*s) {
		int a = parse_cpu(&s, online), b = a;

		if (a >= 0 && *s == '-') {
			s++;
			b = parse_cpu(&s, online);
		}
		if (a < 0 || b < a || (*s && *s != ','))
			return nvemu_error_set(err, -EINVAL,
					       "--cpus: a list of CPUs 0..%ld such as 0,2-3: %s",
					       online - 1, arg);
		for (int c = a; c <= b; c++) {
			if (p->nr_cpus == NVEMUD_REACTORS_MAX)
				return nvemu_error_set(err, -EINVAL, "--cpus: at most %d CPUs",
						       NVEMUD_REACTORS_MAX);
			for (unsigned i = 0; i < p->nr_cpus; i++)
				if (p->cpus[i] == c)
					return nvemu_error_set(err, -EINVAL,
							       "--cpus: CPU %d listed twice", c);
			p->cpus[p->nr_cpus++] = c;
		}
		if (*s == ',' && !*++s)
			return nvemu_error_set(err, -EINVAL,
					       "--cpus: a CPU after the last comma: %s", arg);
	}
	if (!p->nr_cpus)
		return nvemu_error_set(err, -EINVAL, "--cpus: no CPU given");
	p->nr = p->nr_cpus;
	return 0;
}

static int pin(pthread_t th, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(th, sizeof(set), &set);
}

static void *reactor_main(void *arg)
{
	struct reactor *r = arg;
	char name[16];

	snprintf(name, sizeof(name), "nvemud-r%u", r->id);
	pthread_setname_np(pthread_self(), name);
	if (loop_run(r->loop) < 0)
		nvemud_log(r->d, NVEMUD_LOG_ERR, "reactor %u: event loop failed", r->id);
	return NULL;
}

static int reactor_flush(void *arg)
{
	struct reactor *r = arg;
	bool again = false;
	int n = nvemud_bdevs_flush(r->d, &again);

	loop_poller_set_needs_polling(r->flusher, again);
	return n;
}

int nvemud_reactors_start(struct nvemud *d, const struct nvemud_reactor_params *p)
{
	unsigned nr = p->nr ? p->nr : 1;
	struct nvemud_reactors *rs;
	int ret;

	if (nr > NVEMUD_REACTORS_MAX)
		nr = NVEMUD_REACTORS_MAX;
	rs = calloc(1, sizeof(*rs) + nr * sizeof(rs->r[0]));
	if (!rs)
		return -ENOMEM;
	pthread_mutex_init(&rs->lock, NULL);
	rs->nr = nr;
	d->reactors = rs;
	for (unsigned i = 0; i < nr; i++) {
		struct reactor *r = &rs->r[i];

		r->d = d;
		r->id = i;
		r->cpu = i < p->nr_cpus ? p->cpus[i] : -1;
		r->loop = i ? loop_new() : d->loop;
		if (!r->loop) {
			ret = -ENOMEM;
			goto fail;
		}
		loop_set_user(r->loop, r);
		if (nr > 1) {
			ret = loop_enable_messages(r->loop);
			if (ret)
				goto fail;
			loop_set_lock(r->loop, &rs->lock);
		}
		if (i) {
			loop_set_polling(r->loop, loop_busy_poll_us(d->loop),
					 LOOP_IDLE_POLL_MS_DEFAULT);
			/* Batched bdevs queue I/O here too: the main loop may be asleep. */
			r->flusher = loop_add_flusher(r->loop, reactor_flush, r);
			if (!r->flusher) {
				ret = -ENOMEM;
				goto fail;
			}
		}
	}
	if (rs->r[0].cpu >= 0 && (ret = pin(pthread_self(), rs->r[0].cpu))) {
		nvemud_log(d, NVEMUD_LOG_ERR, "reactor 0: cannot pin to CPU %d: %s", rs->r[0].cpu,
			   strerror(ret));
		ret = -ret;
		goto fail;
	}
	for (unsigned i = 1; i < nr; i++) {
		struct reactor *r = &rs->r[i];
		pthread_attr_t attr;
		cpu_set_t set;

		pthread_attr_init(&attr);
		if (r->cpu >= 0) {
			CPU_ZERO(&set);
			CPU_SET(r->cpu, &set);
			pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		}
		ret = pthread_create(&r->th, &attr, reactor_main, r);
		pthread_attr_destroy(&attr);
		if (ret) {
			nvemud_log(d, NVEMUD_LOG_ERR, "reactor %u: %s", i, strerror(ret));
			ret = -ret;
			goto fail;
		}
		r->started = true;
	}
	if (nr > 1 || p->nr_cpus)
		nvemud_log(d, NVEMUD_LOG_INFO, "%u reactor%s%s", nr, nr > 1 ? "s" : "",
			   p->nr_cpus ? " (pinned)" : "");
	return 0;
fail:
	nvemud_reactors_stop(d);
	nvemud_reactors_free(d);
	return ret;
}

void nvemud_reactors_stop(struct nvemud *d)
{
	struct nvemud_reactors *rs = d->reactors;

	if (!rs)
		return;
	for (unsigned i = 1; i < rs->nr; i++) {
		struct reactor *r = &rs->r[i];

		if (!r->started)
			continue;
		loop_stop(r->loop);
		pthread_join(r->th, NULL);
		r->started = false;
	}
	/* Single-threaded from here: what was posted runs now, in order. */
	for (unsigned i = 0; i < rs->nr; i++)
		if (rs->r[i].loop)
			loop_run_messages(rs->r[i].loop);
}

void nvemud_reactors_free(struct nvemud *d)
{
	struct nvemud_reactors *rs = d->reactors;

	if (!rs)
		return;
	nvemud_reactors_stop(d);
	for (unsigned i = 1; i < rs->nr; i++)
		loop_free(rs->r[i].loop);
	if (rs->r[0].loop) {
		loop_set_lock(rs->r[0].loop, NULL);
		loop_set_user(rs->r[0].loop, NULL);
	}
	pthread_mutex_destroy(&rs->lock);
	free(rs);
	d->reactors = NULL;
}

unsigned nvemud_nr_reactors(const struct nvemud *d)
{
	return d->reactors ? d->reactors->nr : 1;
}

struct loop *nvemud_reactor_pick(struct nvemud *d)
{
	struct nvemud_reactors *rs = d->reactors;
	struct reactor *best;

	if (!rs || rs->nr < 2)
		return d->loop;
	best = &rs->r[0];
	for (unsigned i = 1; i < rs->nr; i++)
		if (rs->r[i].nr_queues < best->nr_queues)
			best = &rs->r[i];
	best->nr_queues++;
	return best->loop;
}

void nvemud_reactor_put(struct loop *loop)
{
	struct reactor *r = loop ? loop_user(loop) : NULL;

	if (r && r->nr_queues)
		r->nr_queues--;
}

struct nvemud *nvemud_reactor_owner(const struct loop *loop)
{
	const struct reactor *r = loop ? loop_user(loop) : NULL;

	return r ? r->d : NULL;
}

unsigned nvemud_reactor_id(const struct loop *loop)
{
	const struct reactor *r = loop ? loop_user(loop) : NULL;

	return r ? r->id : 0;
}

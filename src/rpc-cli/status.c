// SPDX-License-Identifier: MIT
/*
 * nvemu-rpc status: one 80-column screen of what nvemud serves — its
 * subsystems with their listeners, hosts and namespaces, every controller
 * (NVMe/TCP hosts' included) with its read/write IOPS and average latency
 * over the interval, and per-queue IOPS — from nvmf_get_subsystems,
 * nvme_controller_list and two nvme_controller_iostat samples. --watch
 * refreshes it like top until interrupted.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "status.h"

#define COLS	   80
#define MAX_CTRLS  64
#define MAX_QUEUES 128

struct sample {
	char name[64];
	char nqn_tail[24];
	bool suspended;
	json_int_t q_ops[MAX_QUEUES + 1]; /* reads + writes + flushes per queue id */
	json_int_t rd, wr, rd_n, wr_n, rd_ns, wr_ns;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static json_int_t jint(json_t *o, const char *path)
{
	char buf[64], *save = NULL, *tok;
	json_t *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
		v = json_object_get(v, tok);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *tail(const char *nqn)
{
	const char *c = strrchr(nqn, ':');

	return c ? c + 1 : nqn;
}

/* Controller name -> its counters now; returns how many were read. */
static unsigned take(const struct status_rpc *rpc, struct sample *s, unsigned max)
{
	json_t *list = rpc->call(rpc, "nvme_controller_list", NULL), *c;
	unsigned n = 0;
	size_t i;

	if (!json_is_array(list)) {
		json_decref(list);
		return 0;
	}
	json_array_foreach(list, i, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *nqn = json_string_value(json_object_get(c, "nqn"));
		json_t *p, *st, *q;
		size_t k;

		if (!name || !nqn || n == max)
			continue;
		p = json_pack("{s:s}", "ctrl", name);
		st = rpc->call(rpc, "nvme_controller_iostat", p);
		json_decref(p);
		if (!json_is_object(st)) {
			json_decref(st);
			continue; /* gone meanwhile (a host disconnected) */
		}
		memset(&s[n], 0, sizeof(s[n]));
		snprintf(s[n].name, sizeof(s[n].name), "%s", name);
		snprintf(s[n].nqn_tail, sizeof(s[n].nqn_tail), "%s", tail(nqn));
		s[n].suspended = json_is_true(json_object_get(c, "suspended"));
		json_array_foreach(json_object_get(st, "queues"), k, q) {
			json_int_t id = jint(q, "queue_id");

			if (id > 0 && id <= MAX_QUEUES)
				s[n].q_ops[id] = jint(q, "read_io_count") + jint(q, "write_io_count") +
						 jint(q, "flush_io_count");
		}
		s[n].rd = jint(st, "read_io_count");
		s[n].wr = jint(st, "write_io_count");
		s[n].rd_n = jint(st, "latency.read.completed");
		s[n].wr_n = jint(st, "latency.write.completed");
		s[n].rd_ns = jint(st, "latency.read.latency_ns_total");
		s[n].wr_ns = jint(st, "latency.write.latency_ns_total");
		json_decref(st);
		n++;
	}
	json_decref(list);
	return n;
}

static const struct sample *find(const struct sample *s, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(s[i].name, name))
			return &s[i];
	return NULL;
}

static void lat(char *out, size_t size, json_int_t dns, json_int_t dn)
{
	if (dn <= 0)
		snprintf(out, size, "%8s", "-");
	else
		snprintf(out, size, "%8.1f", (double)dns / (double)dn / 1000.0);
}

/* Prints at most COLS-1 characters of a formatted line. */
static void line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void line(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	buf[COLS - 1] = '\0';
	printf("%s\n", buf);
}

static void subsystems(const struct status_rpc *rpc)
{
	json_t *subs = rpc->call(rpc, "nvmf_get_subsystems", NULL), *s;
	size_t i;

	json_array_foreach(subs, i, s) {
		char lis[128] = "", hosts[64];
		json_t *l;
		size_t k;
		size_t used = 0;

		json_array_foreach(json_object_get(s, "listen_addresses"), k, l)
			used += (size_t)snprintf(lis + used, used < sizeof(lis) ? sizeof(lis) - used : 0,
						 "%s%s:%s", k ? " " : "",
						 json_string_value(json_object_get(l, "traddr")),
						 json_string_value(json_object_get(l, "trsvcid")));
		if (json_is_true(json_object_get(s, "allow_any_host")))
			snprintf(hosts, sizeof(hosts), "any");
		else
			snprintf(hosts, sizeof(hosts), "%zu",
				 json_array_size(json_object_get(s, "hosts")));
		line("%-36.36s %-6zu %-10s %s", json_string_value(json_object_get(s, "nqn")),
		     json_array_size(json_object_get(s, "namespaces")), hosts, *lis ? lis : "-");
	}
	json_decref(subs);
}

int status_run(const struct status_rpc *rpc, double interval, bool watch)
{
	static struct sample a[MAX_CTRLS], b[MAX_CTRLS];
	struct timespec ts = {(time_t)interval, (long)((interval - (time_t)interval) * 1e9)};

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	do {
		unsigned na = take(rpc, a, MAX_CTRLS), nb;
		char when[32];
		time_t now;

		nanosleep(&ts, NULL);
		nb = take(rpc, b, MAX_CTRLS);
		if (!na && !nb && !rpc->reachable(rpc))
			return 1;
		now = time(NULL);
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
		if (watch)
			printf("\033[H\033[2J");
		line("nvemud %-40s %s, every %.1f s", rpc->sock, when, interval);
		line("%s", "");
		line("%-36s %-6s %-10s %s", "SUBSYSTEM", "NS", "HOSTS", "LISTENERS");
		subsystems(rpc);
		line("%s", "");
		/* Latency: submission to completion inside nvemud (the transport excluded). */
		line("%-20s %-10s %-9s %8s %8s %8s %8s", "CONTROLLER", "SUBSYSTEM", "STATE",
		     "R IOPS", "W IOPS", "R us", "W us");
		for (unsigned i = 0; i < nb; i++) {
			const struct sample *o = find(a, na, b[i].name), *c = &b[i];
			char rl[16], wl[16];
			double rd = o ? (double)(c->rd - o->rd) / interval : 0;
			double wr = o ? (double)(c->wr - o->wr) / interval : 0;

			lat(rl, sizeof(rl), o ? c->rd_ns - o->rd_ns : 0, o ? c->rd_n - o->rd_n : 0);
			lat(wl, sizeof(wl), o ? c->wr_ns - o->wr_ns : 0, o ? c->wr_n - o->wr_n : 0);
			line("%-20.20s %-10.10s %-9s %8.0f %8.0f %s %s", c->name, c->nqn_tail,
			     c->suspended ? "suspended" : "running", rd, wr, rl, wl);
			for (unsigned q = 1; o && q <= MAX_QUEUES; q++)
				if (c->q_ops[q] != o->q_ops[q])
					line("  q%-17u %-10s %-9s %8.0f", q, "", "",
					     (double)(c->q_ops[q] - o->q_ops[q]) / interval);
		}
		fflush(stdout);
	} while (watch && !stop);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * nvemu-perf: an NVMe load generator over the host driver
 * (include/nvemu/driver.h), in the manner of SPDK's perf. One thread polls
 * every queue pair; each keeps QD commands in flight.
 *
 *   nvemu-perf -r 'trtype:tcp traddr:127.0.0.1 trsvcid:4420 subnqn:NQN'
 *              [-w randread] [-M 70] [-o 4096] [-q 32] [-P 1] [-t 10 | -N IOS]
 *              [--verify] [--seed N] [--nsid N] [--range BYTES] [--json]
 *
 * See docs/driver.md for every option. Exit status: 0, 1 when an I/O failed
 * or a block did not verify, 2 on bad usage or when the target cannot be
 * reached.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nvemu/driver.h>

#define HIST_SUB  16
#define HIST_BKTS (64 * HIST_SUB)

enum wl { WL_READ, WL_WRITE, WL_RW };

struct cfg {
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts o;
	enum wl wl;
	bool rand;
	unsigned mix; /* percent reads of WL_RW */
	uint32_t io_size;
	unsigned qd, nq;
	double secs;
	uint64_t ios; /* 0: time-bound */
	bool verify, json, quiet;
	uint64_t seed;
	uint32_t nsid;
	uint64_t range; /* bytes, 0: the namespace */
	uint64_t io_timeout_s; /* 0: 10 */
	uint64_t idle_us;      /* sleep when a poll finds nothing; 0: busy-poll */
};

struct stats {
	uint64_t ios, reads, writes, bytes, errors, miscompares;
	uint64_t lat_sum, lat_min, lat_max;
	uint64_t hist[HIST_BKTS];
};

struct perf;

struct slot {
	struct perf *p;
	struct nvemu_drv_qpair *qp;
	uint8_t *buf;
	uint64_t lba;
	uint32_t nlb;
	bool write, readback, busy;
	uint64_t start_ns;
};

struct perf {
	struct cfg c;
	struct nvemu_drv_ctrl *ctrl;
	struct nvemu_drv_ns_info ns;
	uint64_t range_blocks; /* in I/O units */
	uint64_t next_seq;
	uint64_t issued; /* I/Os started (count-bound runs) */
	uint64_t rng;
	struct slot *slots;
	unsigned nr_slots;
	struct stats st;
};

static volatile sig_atomic_t stop;

static void on_sig(int s)
{
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* ---- data pattern: each block carries its LBA and the seed, then bytes derived from both */

static void pattern_fill(uint8_t *b, uint32_t bs, uint64_t lba, uint64_t seed)
{
	uint64_t s = (lba * 0x9e3779b97f4a7c15ull) ^ seed ^ 0x5bd1e995ull;

	memcpy(b, &lba, 8);
	memcpy(b + 8, &seed, 8);
	for (uint32_t i = 16; i + 8 <= bs; i += 8) {
		uint64_t v = xorshift(&s);

		memcpy(b + i, &v, 8);
	}
}

/* 0 when every block of buf holds its pattern; else the first bad LBA + 1. */
static uint64_t pattern_check(const uint8_t *buf, uint32_t nlb, uint32_t bs, uint64_t lba,
			      uint64_t seed, uint8_t *scratch)
{
	for (uint32_t i = 0; i < nlb; i++) {
		pattern_fill(scratch, bs, lba + i, seed);
		if (memcmp(scratch, buf + (size_t)i * bs, bs))
			return lba + i + 1;
	}
	return 0;
}

/* ---- latency histogram: 16 linear steps per power of two */

static unsigned hist_idx(uint64_t ns)
{
	unsigned msb, sub;

	if (ns < HIST_SUB)
		return (unsigned)ns;
	msb = 63u - (unsigned)__builtin_clzll(ns);
	sub = (unsigned)((ns >> (msb - 4)) & (HIST_SUB - 1));
	return (msb - 3) * HIST_SUB + sub;
}

static uint64_t hist_val(unsigned idx)
{
	unsigned msb = idx / HIST_SUB + 3, sub = idx % HIST_SUB;

	if (idx < HIST_SUB)
		return idx;
	return ((uint64_t)(HIST_SUB + sub) << (msb - 4)) + ((1ull << (msb - 4)) - 1);
}

static uint64_t percentile(const struct stats *st, double pct)
{
	uint64_t want = (uint64_t)((double)st->ios * pct / 100.0 + 0.5), seen = 0;

	if (!st->ios)
		return 0;
	if (!want)
		want = 1;
	for (unsigned i = 0; i < HIST_BKTS; i++) {
		seen += st->hist[i];
		if (seen >= want)
			return hist_val(i) < st->lat_max ? hist_val(i) : st->lat_max;
	}
	return st->lat_max;
}

/* ---- the run */

static void slot_start(struct slot *s);

static bool more_to_issue(struct perf *p)
{
	return !stop && (!p->c.ios || p->issued < p->c.ios);
}

static void io_done(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct slot *s = arg;
	struct perf *p = s->p;
	uint64_t lat = now_ns() - s->start_ns, bad;
	uint8_t scratch[65536];

	s->busy = false;
	if (err) {
		p->st.errors++;
		if (!p->c.quiet && p->st.errors <= 5)
			fprintf(stderr, "nvemu-perf: %s LBA %" PRIu64 ": %s (status 0x%x)\n",
				s->write ? "write" : "read", s->lba, strerror(-err),
				cqe ? cqe->status : 0);
	} else if (p->c.verify && !s->write) {
		bad = pattern_check(s->buf, s->nlb, p->ns.blk_size, s->lba, p->c.seed, scratch);
		if (bad) {
			p->st.miscompares++;
			if (!p->c.quiet && p->st.miscompares <= 5)
				fprintf(stderr, "nvemu-perf: LBA %" PRIu64 " does not verify\n",
					bad - 1);
		}
	}
	if (!err && !s->readback) {
		p->st.ios++;
		p->st.bytes += (uint64_t)s->nlb * p->ns.blk_size;
		if (s->write)
			p->st.writes++;
		else
			p->st.reads++;
		p->st.lat_sum += lat;
		if (!p->st.lat_min || lat < p->st.lat_min)
			p->st.lat_min = lat;
		if (lat > p->st.lat_max)
			p->st.lat_max = lat;
		p->st.hist[hist_idx(lat)]++;
	}
	/* A verified write is read back before the slot moves on. */
	if (!err && p->c.verify && s->write && !s->readback) {
		s->write = false;
		s->readback = true;
		memset(s->buf, 0, (size_t)s->nlb * p->ns.blk_size);
		slot_start(s);
		return;
	}
	s->readback = false;
	if (more_to_issue(p))
		slot_start(s);
}

/* Pick the next LBA and direction for s (a new I/O unless it is a read-back). */
static void slot_pick(struct slot *s)
{
	struct perf *p = s->p;
	uint64_t unit;

	if (s->readback)
		return;
	p->issued++;
	unit = p->c.rand ? xorshift(&p->rng) % p->range_blocks : p->next_seq++ % p->range_blocks;
	s->nlb = p->c.io_size / p->ns.blk_size;
	s->lba = unit * s->nlb;
	s->write = p->c.wl == WL_WRITE || (p->c.wl == WL_RW && xorshift(&p->rng) % 100 >= p->c.mix);
	if (s->write && p->c.verify)
		for (uint32_t i = 0; i < s->nlb; i++)
			pattern_fill(s->buf + (size_t)i * p->ns.blk_size, p->ns.blk_size,
				     s->lba + i, p->c.seed);
}

static void slot_start(struct slot *s)
{
	struct perf *p = s->p;
	int rc;

	slot_pick(s);
	s->start_ns = now_ns();
	rc = nvemu_drv_io(s->qp, p->c.nsid, s->write ? NVEMU_DRV_IO_WRITE : NVEMU_DRV_IO_READ,
			  s->lba, s->nlb, s->buf, io_done, s);
	if (!rc) {
		s->busy = true;
		return;
	}
	/* Resetting or full: the main loop restarts idle slots. */
	if (rc != -ENOTCONN && rc != -EAGAIN && rc != -ENODEV) {
		p->st.errors++;
		if (!p->c.quiet)
			fprintf(stderr, "nvemu-perf: submit: %s\n", strerror(-rc));
	}
	if (!s->readback)
		p->issued--;
}

static int setup(struct perf *p)
{
	uint32_t bs;

	if (!p->c.nsid)
		p->c.nsid = nvemu_drv_ns_next(p->ctrl, 0);
	if (!p->c.nsid || nvemu_drv_ns_get(p->ctrl, p->c.nsid, &p->ns)) {
		fprintf(stderr, "nvemu-perf: --nsid: no such active namespace\n");
		return -1;
	}
	bs = p->ns.blk_size;
	if (p->c.io_size < bs || p->c.io_size % bs ||
	    p->c.io_size > nvemu_drv_ctrl_max_xfer(p->ctrl) || p->c.io_size > 65536u * bs) {
		fprintf(stderr,
			"nvemu-perf: -o: the I/O size must be a multiple of the LBA size %u and at "
			"most %u\n",
			bs, nvemu_drv_ctrl_max_xfer(p->ctrl));
		return -1;
	}
	if (p->c.verify && bs > 65536) {
		fprintf(stderr, "nvemu-perf: --verify: LBA size above 64 KiB\n");
		return -1;
	}
	p->range_blocks = (p->c.range ? p->c.range : p->ns.nsze * bs) / p->c.io_size;
	if (p->range_blocks > p->ns.nsze * bs / p->c.io_size)
		p->range_blocks = p->ns.nsze * bs / p->c.io_size;
	if (!p->range_blocks) {
		fprintf(stderr, "nvemu-perf: --range: smaller than one I/O\n");
		return -1;
	}
	if (p->c.nq > nvemu_drv_ctrl_nr_qpairs(p->ctrl)) {
		fprintf(stderr, "nvemu-perf: the controller grants %u queue pair(s)\n",
			nvemu_drv_ctrl_nr_qpairs(p->ctrl));
		p->c.nq = nvemu_drv_ctrl_nr_qpairs(p->ctrl);
	}
	if (p->c.qd > nvemu_drv_qpair_depth(nvemu_drv_ctrl_qpair(p->ctrl, 0))) {
		p->c.qd = nvemu_drv_qpair_depth(nvemu_drv_ctrl_qpair(p->ctrl, 0));
		fprintf(stderr, "nvemu-perf: queue depth limited to %u by the controller\n",
			p->c.qd);
	}
	p->nr_slots = p->c.qd * p->c.nq;
	p->slots = calloc(p->nr_slots, sizeof(*p->slots));
	if (!p->slots)
		return -1;
	for (unsigned i = 0; i < p->nr_slots; i++) {
		struct slot *s = &p->slots[i];

		s->p = p;
		s->qp = nvemu_drv_ctrl_qpair(p->ctrl, i % p->c.nq);
		s->buf = aligned_alloc(4096, (p->c.io_size + 4095) / 4096 * 4096);
		if (!s->buf)
			return -1;
		memset(s->buf, 0, p->c.io_size);
	}
	return 0;
}

static unsigned busy_slots(struct perf *p)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->nr_slots; i++)
		n += p->slots[i].busy;
	return n;
}

static void run(struct perf *p)
{
	uint64_t start = now_ns(), last_tick = start, end = start + (uint64_t)(p->c.secs * 1e9);

	for (unsigned i = 0; i < p->nr_slots && more_to_issue(p); i++)
		slot_start(&p->slots[i]);
	for (;;) {
		uint64_t now = now_ns();
		bool idle = true;

		if (!p->c.ios && now >= end)
			stop = 1;
		if (stop && !busy_slots(p))
			break;
		if (p->c.ios && !more_to_issue(p) && !busy_slots(p))
			break;
		for (unsigned q = 0; q < p->c.nq; q++)
			if (nvemu_drv_qpair_process(nvemu_drv_ctrl_qpair(p->ctrl, q), 0) > 0)
				idle = false;
		if (now - last_tick >= 100000000ull) {
			last_tick = now;
			nvemu_drv_ctrl_process_admin(p->ctrl);
			nvemu_drv_ctrl_tick(p->ctrl);
			/* Slots that could not submit (resetting, full) start again. */
			for (unsigned i = 0; i < p->nr_slots && more_to_issue(p); i++)
				if (!p->slots[i].busy)
					slot_start(&p->slots[i]);
			if (nvemu_drv_ctrl_state(p->ctrl) == NVEMU_DRV_STATE_FAILED &&
			    !busy_slots(p))
				break;
		}
		if (idle && nvemu_drv_ctrl_state(p->ctrl) != NVEMU_DRV_STATE_ENABLED)
			usleep(1000);
		else if (idle && p->c.idle_us)
			usleep((useconds_t)p->c.idle_us);
	}
}

static double cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void report(struct perf *p, double secs, double cpu)
{
	const struct stats *st = &p->st;
	double iops = secs > 0 ? (double)st->ios / secs : 0;
	double mibs = secs > 0 ? (double)st->bytes / secs / 1048576.0 : 0;
	double avg = st->ios ? (double)st->lat_sum / (double)st->ios / 1000.0 : 0;
	double cpu_io = st->ios ? cpu * 1e6 / (double)st->ios : 0;
	static const double pcts[] = {50, 90, 99, 99.9, 99.99};
	static const char *const keys[] = {"p50", "p90", "p99", "p999", "p9999"};

	if (p->c.json) {
		printf("{\"ios\": %" PRIu64 ", \"reads\": %" PRIu64 ", \"writes\": %" PRIu64
		       ", \"errors\": %" PRIu64 ", \"miscompares\": %" PRIu64
		       ", \"seconds\": %.3f, \"iops\": %.0f, \"mibps\": %.2f, \"lat_avg_us\": %.2f"
		       ", \"lat_min_us\": %.2f, \"lat_max_us\": %.2f",
		       st->ios, st->reads, st->writes, st->errors, st->miscompares, secs, iops,
		       mibs, avg, st->lat_min / 1000.0, st->lat_max / 1000.0);
		for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
			printf(", \"%s_us\": %.2f", keys[i], percentile(st, pcts[i]) / 1000.0);
		printf(", \"cpu_us_per_io\": %.2f, \"resets\": %" PRIu64 "}\n", cpu_io,
		       nvemu_drv_ctrl_resets(p->ctrl));
		return;
	}
	printf("%-12s %12s %10s %10s %10s %10s\n", "", "IOPS", "MiB/s", "avg us", "min us",
	       "max us");
	printf("%-12s %12.0f %10.2f %10.2f %10.2f %10.2f\n", "total", iops, mibs, avg,
	       st->lat_min / 1000.0, st->lat_max / 1000.0);
	printf("latency percentiles (us):");
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		printf(" p%g=%.2f", pcts[i], percentile(st, pcts[i]) / 1000.0);
	printf("\nI/Os %" PRIu64 " (reads %" PRIu64 ", writes %" PRIu64
	       ") in %.2f s; errors %" PRIu64 ", miscompares %" PRIu64
	       ", controller resets %" PRIu64 "\n",
	       st->ios, st->reads, st->writes, secs, st->errors, st->miscompares,
	       nvemu_drv_ctrl_resets(p->ctrl));
	printf("CPU %.2f us per I/O (%.2f s user+system)\n", cpu_io, cpu);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nvemu-perf -r TRID [options]\n"
		"  -r, --trid 'trtype:tcp traddr:A trsvcid:P subnqn:NQN'   the controller\n"
		"      (or --traddr A --trsvcid P --subnqn NQN for NVMe/TCP)\n"
		"  -w, --workload read|write|randread|randwrite|rw|randrw   (randread)\n"
		"  -M, --rwmixread PCT      reads in a rw/randrw mix (50)\n"
		"  -o, --io-size BYTES      (4096)\n"
		"  -q, --queue-depth N      commands in flight per queue pair (32)\n"
		"  -P, --queues N           I/O queue pairs (1)\n"
		"  -t, --time SECONDS       run time (10)\n"
		"  -N, --ios N              stop after N I/Os instead\n"
		"  -V, --verify             write a pattern (LBA and seed in each block) and read\n"
		"                           it back; with read workloads check it\n"
		"      --seed N             pattern seed (1)\n"
		"      --nsid N             namespace (the first)\n"
		"      --range BYTES        use only the first BYTES of the namespace\n"
		"      --io-timeout SECONDS a command not completed by then is aborted (10)\n"
		"      --idle-us N          sleep N us when a poll finds nothing (0: busy-poll),\n"
		"                           to leave the CPU to a backend on the same machine\n"
		"      --hostnqn NQN, --hdgst, --ddgst   NVMe/TCP options\n"
		"      --json               one JSON object instead of the table\n"
		"      --quiet              no per-error messages\n");
}

static int parse_wl(struct cfg *c, const char *s)
{
	static const struct {
		const char *n;
		enum wl wl;
		bool rand;
	} t[] = {{"read", WL_READ, false},	{"write", WL_WRITE, false},
		 {"rw", WL_RW, false},		{"randread", WL_READ, true},
		 {"randwrite", WL_WRITE, true}, {"randrw", WL_RW, true}};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(s, t[i].n)) {
			c->wl = t[i].wl;
			c->rand = t[i].rand;
			return 0;
		}
	return -1;
}

static int parse_num(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	else if (*end == 'g' || *end == 'G')
		v <<= 30, end++;
	if (*end || v > max)
		return -1;
	*out = v;
	return 0;
}

enum {
	O_SEED = 256,
	O_NSID,
	O_RANGE,
	O_HOSTNQN,
	O_HDGST,
	O_DDGST,
	O_JSON,
	O_QUIET,
	O_TRADDR,
	O_TRSVCID,
	O_SUBNQN,
	O_IO_TIMEOUT,
	O_IDLE_US
};

static const struct option long_opts[] = {
	{"trid", required_argument, NULL, 'r'},
	{"workload", required_argument, NULL, 'w'},
	{"rwmixread", required_argument, NULL, 'M'},
	{"io-size", required_argument, NULL, 'o'},
	{"queue-depth", required_argument, NULL, 'q'},
	{"queues", required_argument, NULL, 'P'},
	{"time", required_argument, NULL, 't'},
	{"ios", required_argument, NULL, 'N'},
	{"verify", no_argument, NULL, 'V'},
	{"seed", required_argument, NULL, O_SEED},
	{"io-timeout", required_argument, NULL, O_IO_TIMEOUT},
	{"idle-us", required_argument, NULL, O_IDLE_US},
	{"nsid", required_argument, NULL, O_NSID},
	{"range", required_argument, NULL, O_RANGE},
	{"hostnqn", required_argument, NULL, O_HOSTNQN},
	{"hdgst", no_argument, NULL, O_HDGST},
	{"ddgst", no_argument, NULL, O_DDGST},
	{"json", no_argument, NULL, O_JSON},
	{"quiet", no_argument, NULL, O_QUIET},
	{"traddr", required_argument, NULL, O_TRADDR},
	{"trsvcid", required_argument, NULL, O_TRSVCID},
	{"subnqn", required_argument, NULL, O_SUBNQN},
	{"help", no_argument, NULL, 'h'},
	{0},
};

/* One option into c; -1 on a bad value (message printed). */
static int parse_opt(struct cfg *c, int opt, const char *arg, bool *have_trid)
{
	struct nvemu_error err = {0};
	uint64_t v = 0;

	switch (opt) {
	case 'r':
		if (nvemu_drv_trid_parse(arg, &c->trid, &err)) {
			fprintf(stderr, "nvemu-perf: -r: %s\n", err.msg);
			return -1;
		}
		*have_trid = true;
		return 0;
	case 'w':
		return parse_wl(c, arg);
	case 'M':
		return parse_num(arg, 100, &v) ? -1 : (c->mix = (unsigned)v, 0);
	case 'o':
		return parse_num(arg, 1u << 20, &v) || !v ? -1 : (c->io_size = (uint32_t)v, 0);
	case 'q':
		return parse_num(arg, 1023, &v) || !v ? -1 : (c->qd = (unsigned)v, 0);
	case 'P':
		return parse_num(arg, 64, &v) || !v ? -1 : (c->nq = (unsigned)v, 0);
	case 't':
		c->secs = strtod(arg, NULL);
		return c->secs > 0 ? 0 : -1;
	case 'N':
		return parse_num(arg, UINT64_MAX, &c->ios) || !c->ios ? -1 : 0;
	case 'V':
		c->verify = true;
		return 0;
	case O_SEED:
		return parse_num(arg, UINT64_MAX, &c->seed);
	case O_NSID:
		return parse_num(arg, 0xfffffffe, &v) || !v ? -1 : (c->nsid = (uint32_t)v, 0);
	case O_RANGE:
		return parse_num(arg, UINT64_MAX, &c->range);
	case O_IDLE_US:
		return parse_num(arg, 100000, &c->idle_us);
	case O_IO_TIMEOUT:
		return parse_num(arg, 3600, &c->io_timeout_s) || !c->io_timeout_s ? -1 : 0;
	case O_HOSTNQN:
		snprintf(c->o.hostnqn, sizeof(c->o.hostnqn), "%s", arg);
		return 0;
	case O_HDGST:
		c->o.hdgst = true;
		return 0;
	case O_DDGST:
		c->o.ddgst = true;
		return 0;
	case O_JSON:
		c->json = true;
		return 0;
	case O_QUIET:
		c->quiet = true;
		return 0;
	case O_TRADDR:
	case O_TRSVCID:
	case O_SUBNQN:
		c->trid.trtype = NVEMU_DRV_TRTYPE_TCP;
		snprintf(opt == O_TRADDR   ? c->trid.traddr
			 : opt == O_SUBNQN ? c->trid.subnqn
					   : c->trid.trsvcid,
			 opt == O_TRADDR   ? sizeof(c->trid.traddr)
			 : opt == O_SUBNQN ? sizeof(c->trid.subnqn)
					   : sizeof(c->trid.trsvcid),
			 "%s", arg);
		*have_trid = c->trid.traddr[0] && c->trid.subnqn[0];
		return 0;
	default:
		return -1;
	}
}

static int parse_args(struct cfg *c, int argc, char **argv)
{
	bool have_trid = false;
	int opt;

	memset(c, 0, sizeof(*c));
	nvemu_drv_opts_init(&c->o);
	c->wl = WL_READ;
	c->rand = true;
	c->mix = 50;
	c->io_size = 4096;
	c->qd = 32;
	c->nq = 1;
	c->secs = 10;
	c->seed = 1;
	while ((opt = getopt_long(argc, argv, "r:w:M:o:q:P:t:N:Vh", long_opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		}
		if (parse_opt(c, opt, optarg, &have_trid)) {
			for (const struct option *lo = long_opts; opt != 'r' && lo->name; lo++)
				if (lo->val == opt)
					fprintf(stderr, "nvemu-perf: --%s: bad value\n", lo->name);
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || !have_trid) {
		fprintf(stderr, "nvemu-perf: %s\n",
			have_trid ? "unexpected arguments" : "the controller (-r) is required");
		usage(stderr);
		return -1;
	}
	if (c->trid.trtype == NVEMU_DRV_TRTYPE_TCP && !c->trid.trsvcid[0])
		snprintf(c->trid.trsvcid, sizeof(c->trid.trsvcid), "4420");
	if (c->verify && c->wl == WL_RW) {
		fprintf(stderr, "nvemu-perf: --verify needs a read or a write workload\n");
		return -1;
	}
	c->o.num_io_queues = (uint16_t)c->nq;
	c->o.io_queue_size = (uint16_t)(c->qd + 1);
	c->o.ctrl_loss_timeout_ms = 30000;
	c->o.io_timeout_ms = c->io_timeout_s ? (uint32_t)c->io_timeout_s * 1000 : 10000;
	return 0;
}

int main(int argc, char **argv)
{
	struct perf p = {0};
	struct nvemu_error err = {0};
	struct sigaction sa = {.sa_handler = on_sig};
	double t0, c0;
	int rc;

	if (parse_args(&p.c, argc, argv))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (nvemu_drv_ctrl_connect(&p.c.trid, &p.c.o, &p.ctrl, &err)) {
		fprintf(stderr, "nvemu-perf: %s\n", err.msg);
		return 2;
	}
	p.rng = p.c.seed * 0x2545f4914f6cdd1dull + 1;
	if (setup(&p)) {
		nvemu_drv_ctrl_destroy(p.ctrl);
		return 2;
	}
	if (!p.c.json)
		printf("nvemu-perf: %s %s:%s %s nsid %u: %s%s %u B, QD %u x %u queue(s)%s\n",
		       nvemu_drv_trtype_name(p.c.trid.trtype), p.c.trid.traddr, p.c.trid.trsvcid,
		       nvemu_drv_ctrl_serial(p.ctrl), p.c.nsid, p.c.rand ? "rand" : "seq",
		       p.c.wl == WL_READ    ? "read"
		       : p.c.wl == WL_WRITE ? "write"
					    : "rw",
		       p.c.io_size, p.c.qd, p.c.nq, p.c.verify ? ", verify" : "");
	t0 = (double)now_ns() / 1e9;
	c0 = cpu_secs();
	run(&p);
	report(&p, (double)now_ns() / 1e9 - t0, cpu_secs() - c0);
	rc = p.st.errors || p.st.miscompares || (p.c.ios && p.st.ios < p.c.ios) ? 1 : 0;
	nvemu_drv_ctrl_destroy(p.ctrl);
	for (unsigned i = 0; i < p.nr_slots; i++)
		free(p.slots[i].buf);
	free(p.slots);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench-mi: NVMe-MI round trips through the userspace AF_MCTP path (issue 5):
 * Debian's libnvme-mi -> libnvemu-mctp-preload.so -> unix socket -> nvemud's
 * router -> MCTP endpoint -> NVMe-MI endpoint, and back. Starts its own
 * nvemud (default configuration, private RPC and MCTP sockets, no TCP
 * listener) and measures, one request at a time, Identify Controller through
 * the Admin tunnel (4 KiB of data: 64 MCTP packets at the baseline MTU) and
 * an NVM Subsystem Health Status Poll. Prints rate and latency (mean, p50,
 * p99) per command.
 *
 * Then (issue 16): the same Health Status Poll over the DSP0253 serial
 * binding, in process over a socketpair, with the bytes each round trip puts
 * on the line; the messages per second a 115200-baud line (8N1, 10 bits a
 * byte) allows with that framing, against the AF_MCTP rate above, and the
 * framing overhead against bare MCTP packets. Last, Asynchronous Event
 * Message latency: a receiver bound to message type 4 through the preload,
 * nvme_subsystem_set_health over nvemud's RPC socket, time from the RPC
 * reply to the AEM (each acknowledged), against one health poll round trip.
 *
 *   bench-mi [-d NVEMUD] [-p PRELOAD] [-t SECONDS]
 *
 * It re-executes itself with LD_PRELOAD set, so it runs as is.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnvme-mi.h>
#include <linux/mctp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <nvemu/mctp.h>
#include <nvemu/mi.h>
#include <nvemu/model.h>

#ifndef AF_MCTP
#define AF_MCTP 45
#endif

#ifndef NVEMUD_PATH
#define NVEMUD_PATH "nvemud"
#endif
#ifndef MCTP_PRELOAD_PATH
#define MCTP_PRELOAD_PATH "libnvemu-mctp-preload.so"
#endif

#define CHILD_ENV "NVEMU_BENCH_MI_CHILD"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct result {
	const char *name;
	unsigned long n;
	double secs, mean_us, p50_us, p99_us, max_us;
};

enum op { OP_IDENTIFY, OP_HEALTH };

static int run(enum op op, nvme_mi_ep_t ep, nvme_mi_ctrl_t ctrl, double secs, struct result *r)
{
	size_t cap = 1 << 16, n = 0;
	uint64_t *lat = malloc(cap * sizeof(*lat)), start, end, sum = 0;
	struct nvme_mi_nvm_ss_health_status hs;
	struct nvme_id_ctrl id;

	if (!lat)
		return -1;
	/* Warm up. */
	for (int i = 0; i < 50; i++)
		if (op == OP_IDENTIFY ? nvme_mi_admin_identify_ctrl(ctrl, &id) :
					nvme_mi_mi_subsystem_health_status_poll(ep, false, &hs))
			goto fail;
	start = now_ns();
	end = start + (uint64_t)(secs * 1e9);
	for (;;) {
		uint64_t t0 = now_ns(), t1;
		int ret = op == OP_IDENTIFY ? nvme_mi_admin_identify_ctrl(ctrl, &id) :
					      nvme_mi_mi_subsystem_health_status_poll(ep, false, &hs);

		t1 = now_ns();
		if (ret)
			goto fail;
		if (n == cap) {
			uint64_t *nl = realloc(lat, 2 * cap * sizeof(*lat));

			if (!nl)
				goto fail;
			lat = nl;
			cap *= 2;
		}
		lat[n++] = t1 - t0;
		sum += t1 - t0;
		if (t1 >= end)
			break;
	}
	r->n = n;
	r->secs = (double)(now_ns() - start) / 1e9;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	r->mean_us = (double)sum / (double)n / 1e3;
	r->p50_us = (double)lat[n / 2] / 1e3;
	r->p99_us = (double)lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e3;
	r->max_us = (double)lat[n - 1] / 1e3;
	free(lat);
	return 0;
fail:
	fprintf(stderr, "bench-mi: %s failed: %s\n", r->name, strerror(errno));
	free(lat);
	return -1;
}

static uint32_t crc32c_sw(const uint8_t *p, size_t n);

/* ---- the serial binding, in process */

struct ser {
	int fd[2]; /* [0] requester, [1] endpoint */
	struct nvemu_mctp_serial *s;
	struct nvemu_mctp_serial_dec dec;
	uint8_t pkt[256];
	size_t pkt_len;
	int got;
};

static void ser_pkt(void *ctx, const uint8_t *pkt, size_t len)
{
	struct ser *x = ctx;

	memcpy(x->pkt, pkt, len);
	x->pkt_len = len;
	x->got++;
}

/* One Health Status Poll round trip; adds the line bytes and the bare packet bytes. */
static int ser_poll(struct ser *x, uint64_t *line, uint64_t *bare)
{
	/* MCTP header: dest 9, src 8, SOM|EOM|TO tag 0; NVMe-MI, IC; MI command 01h. */
	uint8_t pkt[4 + 20] = {1, 9, 8, 0xc8, 0x84, 0x08, 0, 0, 0x01};
	uint8_t frame[NVEMU_MCTP_SERIAL_MAX_FRAME], in[512];
	uint32_t mic = htole32(crc32c_sw(pkt + 4, 16));
	int n;
	ssize_t r;

	memcpy(pkt + 20, &mic, 4);
	n = nvemu_mctp_serial_encode(pkt, sizeof(pkt), frame, sizeof(frame));
	if (n < 0 || write(x->fd[0], frame, n) != n)
		return -1;
	*line += n;
	*bare += sizeof(pkt);
	if (nvemu_mctp_serial_handle(x->s) < 0)
		return -1;
	x->got = 0;
	while (!x->got) {
		r = read(x->fd[0], in, sizeof(in));
		if (r <= 0)
			return -1;
		*line += r;
		nvemu_mctp_serial_dec_feed(&x->dec, in, r, ser_pkt, x);
	}
	*bare += x->pkt_len;
	return x->pkt_len > 8 && x->pkt[4 + 4] == 0 ? 0 : -1; /* MI status Success */
}

struct ser_result {
	unsigned long n;
	double secs, line_per_rt, bare_per_rt;
};

static int run_serial(double secs, struct ser_result *res)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_mctp_ep_params mp;
	struct nvemu_subsys *subsys = NULL;
	struct nvemu_mi_ep *mi = NULL;
	struct nvemu_mctp_ep *mctp = NULL;
	struct ser x = {.fd = {-1, -1}};
	uint64_t line = 0, bare = 0, start, end;
	uint16_t tw;
	int ret = -1;

	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:bench-mi-serial";
	nvemu_port_params_init(&pp, NVEMU_PORT_TWO_WIRE);
	nvemu_mctp_ep_params_init(&mp);
	mp.eid = 9;
	if (nvemu_subsys_create(&sp, &subsys, NULL) ||
	    nvemu_subsys_add_port(subsys, &pp, &tw, NULL) ||
	    nvemu_mi_ep_create(subsys, tw, &mi, NULL) || nvemu_mctp_ep_create(&mp, &mctp, NULL) ||
	    nvemu_mctp_ep_attach_mi(mctp, mi, NULL) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, x.fd) ||
	    fcntl(x.fd[1], F_SETFL, O_NONBLOCK) ||
	    nvemu_mctp_serial_create(x.fd[1], mctp, &x.s, NULL))
		goto out;
	nvemu_mctp_serial_dec_init(&x.dec);
	for (int i = 0; i < 50; i++)
		if (ser_poll(&x, &line, &bare))
			goto out;
	line = bare = 0;
	start = now_ns();
	end = start + (uint64_t)(secs * 1e9);
	res->n = 0;
	while (now_ns() < end) {
		if (ser_poll(&x, &line, &bare))
			goto out;
		res->n++;
	}
	res->secs = (double)(now_ns() - start) / 1e9;
	res->line_per_rt = (double)line / res->n;
	res->bare_per_rt = (double)bare / res->n;
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "bench-mi: serial round trip failed\n");
	nvemu_mctp_serial_destroy(x.s);
	if (x.fd[0] >= 0) {
		close(x.fd[0]);
		close(x.fd[1]);
	}
	if (mctp) {
		nvemu_mctp_ep_attach_mi(mctp, NULL, NULL);
		nvemu_mctp_ep_destroy(mctp);
	}
	nvemu_mi_ep_destroy(mi);
	if (subsys)
		nvemu_subsys_destroy(subsys);
	return ret;
}

/* ---- AEM latency against nvemud */

/* One JSON-RPC call on nvemud's socket; 0 when the reply has a result. */
static int rpc_call(const char *rsock, const char *json)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[4096];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (strlen(rsock) >= sizeof(sa.sun_path)) {
		close(fd);
		return -1;
	}
	memcpy(sa.sun_path, rsock, strlen(rsock) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, json, strlen(json)) != (ssize_t)strlen(json)) {
		close(fd);
		return -1;
	}
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
		got += n;
		if (memchr(buf, '\n', got))
			break;
	}
	close(fd);
	buf[got] = 0;
	return strstr(buf, "\"result\"") ? 0 : -1;
}

static uint32_t crc32c_sw(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
	}
	return ~c;
}

/* A Configuration Set, Asynchronous Event, with an enable list; waits for the response. */
static int aem_config(int fd, const struct sockaddr_mctp *peer, const uint8_t *list, size_t llen)
{
	uint8_t m[64] = {0x84, 0x08, 0, 0, 0x03, 0, 0, 0, 0x04, 1 /* AERD 100 ms */};
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct sockaddr_mctp a = *peer;
	uint32_t mic;
	size_t n = 16;

	memcpy(m + n, list, llen);
	n += llen;
	mic = htole32(crc32c_sw(m, n));
	memcpy(m + n, &mic, 4);
	a.smctp_tag = MCTP_TAG_OWNER;
	if (sendto(fd, m + 1, n + 3, 0, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	if (poll(&p, 1, 2000) != 1)
		return -1;
	return recv(fd, m, sizeof(m), 0) > 4 && m[3] == 0 ? 0 : -1;
}

static int run_aem(const char *rsock, unsigned count, struct result *r)
{
	const uint8_t enable[] = {1, 0, 8, 0, 5, 3, NVEMU_MI_AEI_CTEMP, 0x80};
	struct sockaddr_mctp peer = {.smctp_family = AF_MCTP,
				     .smctp_network = 1,
				     .smctp_addr.s_addr = 9,
				     .smctp_type = 0x84};
	struct sockaddr_mctp b = {.smctp_family = AF_MCTP,
				  .smctp_network = MCTP_NET_ANY,
				  .smctp_addr.s_addr = MCTP_ADDR_ANY,
				  .smctp_type = 4};
	uint64_t *lat = calloc(count, sizeof(*lat)), sum = 0, start = now_ns();
	int req = socket(AF_MCTP, SOCK_DGRAM, 0), rx = socket(AF_MCTP, SOCK_DGRAM, 0);
	int ret = -1;
	unsigned n = 0;

	if (!lat || req < 0 || rx < 0 || bind(rx, (struct sockaddr *)&b, sizeof(b)) ||
	    aem_config(req, &peer, enable, sizeof(enable)))
		goto out;
	for (n = 0; n < count; n++) {
		char json[512];
		uint8_t m[512];
		struct pollfd p = {.fd = rx, .events = POLLIN};
		uint64_t t0;

		snprintf(json, sizeof(json),
			 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nvme_subsystem_set_health\","
			 "\"params\":{\"nqn\":\"nqn.2014-08.io.nvemu:default\",\"temperature\":%u}}\n",
			 300 + (n & 1));
		t0 = now_ns();
		if (rpc_call(rsock, json) || poll(&p, 1, 2000) != 1 || recv(rx, m, sizeof(m), 0) < 8)
			goto out;
		lat[n] = now_ns() - t0;
		sum += lat[n];
		/* Acknowledge, so that the next change starts a new AEM. */
		if (aem_config(req, &peer, NULL, 0))
			goto out;
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	r->n = n;
	r->secs = (double)(now_ns() - start) / 1e9;
	r->mean_us = (double)sum / n / 1e3;
	r->p50_us = (double)lat[n / 2] / 1e3;
	r->p99_us = (double)lat[(n * 99) / 100] / 1e3;
	r->max_us = (double)lat[n - 1] / 1e3;
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "bench-mi: AEM latency run failed after %u events\n", n);
	if (req >= 0)
		close(req);
	if (rx >= 0)
		close(rx);
	free(lat);
	return ret;
}

static pid_t start_daemon(const char *nvemud, const char *dir, const char *msock)
{
	char rsock[4200];
	pid_t pid;

	snprintf(rsock, sizeof(rsock), "%s/rpc.sock", dir);
	pid = fork();
	if (pid == 0) {
		unsetenv("LD_PRELOAD");
		execl(nvemud, nvemud, "-q", "-r", rsock, "-l", "none", "-m", msock, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 200; i++) {
		struct stat st;
		int status;

		/* The router starts last, after the RPC socket and the configuration. */
		if (!stat(msock, &st) && S_ISSOCK(st.st_mode))
			return pid;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		usleep(20000);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *nvemud = getenv("NVEMUD") ? getenv("NVEMUD") : NVEMUD_PATH;
	const char *preload = MCTP_PRELOAD_PATH;
	char dir[] = "/tmp/nvemu-bench-mi.XXXXXX", msock[4200];
	struct result res[2] = { { .name = "Identify Controller (4 KiB)" },
				 { .name = "NVM Subsystem Health Status Poll" } };
	struct result aem = {.name = "AEM: RPC set_health -> AEM"};
	struct result nores = {.name = "Health Poll, no send verdicts"};
	nvme_mi_ep_t ep2;
	struct ser_result ser;
	char rsock[4200];
	double secs = 2.0;
	nvme_mi_ctrl_t ctrl;
	nvme_root_t root;
	nvme_mi_ep_t ep;
	int opt, ret = 1, status;
	pid_t pid;

	while ((opt = getopt(argc, argv, "d:p:t:")) != -1) {
		switch (opt) {
		case 'd':
			nvemud = optarg;
			break;
		case 'p':
			preload = optarg;
			break;
		case 't':
			secs = atof(optarg);
			if (secs <= 0)
				secs = 2.0;
			break;
		default:
			fprintf(stderr, "usage: bench-mi [-d NVEMUD] [-p PRELOAD] [-t SECONDS]\n");
			return 2;
		}
	}
	if (!getenv(CHILD_ENV)) {
		/* The preload library must be in place before libnvme-mi's first socket(). */
		setenv(CHILD_ENV, "1", 1);
		setenv("LD_PRELOAD", preload, 1);
		execv("/proc/self/exe", argv);
		fprintf(stderr, "bench-mi: cannot re-execute with LD_PRELOAD: %s\n",
			strerror(errno));
		return 1;
	}
	if (!mkdtemp(dir)) {
		perror("bench-mi: mkdtemp");
		return 1;
	}
	snprintf(msock, sizeof(msock), "%s/mctp.sock", dir);
	setenv("NVEMU_MCTP_SOCKET", msock, 1);
	setenv("LIBNVME_MI_PROBE_ENABLED", "0", 1);
	pid = start_daemon(nvemud, dir, msock);
	if (pid < 0) {
		fprintf(stderr, "bench-mi: %s did not start\n", nvemud);
		goto out_dir;
	}
	root = nvme_mi_create_root(stderr, LOG_WARNING);
	ep = root ? nvme_mi_open_mctp(root, 1, 9) : NULL;
	ctrl = ep ? nvme_mi_init_ctrl(ep, 1) : NULL;
	if (!ctrl) {
		fprintf(stderr, "bench-mi: cannot open mctp:1,9\n");
		goto out_daemon;
	}
	if (run(OP_IDENTIFY, ep, ctrl, secs, &res[0]) || run(OP_HEALTH, ep, ctrl, secs, &res[1]))
		goto out_daemon;
	/* The same poll from a socket that asks the router for no send verdicts (no EAGAIN). */
	setenv("NVEMU_MCTP_SEND_RESULT", "0", 1);
	ep2 = nvme_mi_open_mctp(root, 1, 9);
	unsetenv("NVEMU_MCTP_SEND_RESULT");
	if (!ep2 || run(OP_HEALTH, ep2, ctrl, secs, &nores)) {
		fprintf(stderr, "bench-mi: second endpoint failed\n");
		goto out_daemon;
	}

	printf("NVMe-MI through libnvemu-mctp-preload.so -> nvemud (MCTP net 1, EID 9, MTU 64), "
	       "one request at a time\n\n");
	printf("%-34s %9s %12s %10s %10s %10s %10s\n", "command", "requests", "round trips/s",
	       "mean us", "p50 us", "p99 us", "max us");
	for (int i = 0; i < 2; i++)
		printf("%-34s %9lu %12.0f %10.1f %10.1f %10.1f %10.1f\n", res[i].name, res[i].n,
		       (double)res[i].n / res[i].secs, res[i].mean_us, res[i].p50_us, res[i].p99_us,
		       res[i].max_us);
	printf("%-34s %9lu %12.0f %10.1f %10.1f %10.1f %10.1f\n", nores.name, nores.n,
	       (double)nores.n / nores.secs, nores.mean_us, nores.p50_us, nores.p99_us,
	       nores.max_us);
	printf("ratio with / without send verdicts (EAGAIN reporting), round trips/s: %.2f\n",
	       ((double)res[1].n / res[1].secs) / ((double)nores.n / nores.secs));
	fflush(stdout);

	if (run_serial(secs, &ser))
		goto out_daemon;
	{
		double cpu_rt = ser.secs / ser.n, wire_rt = ser.line_per_rt * 10.0 / 115200.0;
		double at_baud = 1.0 / (cpu_rt + wire_rt);
		double af = (double)res[1].n / res[1].secs;

		printf("\nNVM Subsystem Health Status Poll over the DSP0253 serial binding "
		       "(in process, socketpair)\n\n");
		printf("%-44s %12.0f\n", "round trips/s, unthrottled (CPU only)", ser.n / ser.secs);
		printf("%-44s %12.1f\n", "bytes on the line per round trip", ser.line_per_rt);
		printf("%-44s %12.1f\n", "bare MCTP packet bytes per round trip", ser.bare_per_rt);
		printf("%-44s %12.2f\n", "framing overhead (line / bare)",
		       ser.line_per_rt / ser.bare_per_rt);
		printf("%-44s %12.1f\n", "round trips/s at 115200 baud (8N1)", at_baud);
		printf("%-44s %12.1f\n", "round trips/s at 115200 baud, bare packets",
		       1.0 / (cpu_rt + ser.bare_per_rt * 10.0 / 115200.0));
		printf("%-44s %12.0f\n", "AF_MCTP (preload -> nvemud) round trips/s", af);
		printf("%-44s %12.4f\n", "ratio serial@115200 / AF_MCTP", at_baud / af);
	}
	fflush(stdout);

	snprintf(rsock, sizeof(rsock), "%s/rpc.sock", dir);
	if (run_aem(rsock, 200, &aem))
		goto out_daemon;
	printf("\nAsynchronous Event Message latency (nvemud polls its endpoints every 10 ms; "
	       "AEMD 0)\n\n");
	printf("%-34s %9s %10s %10s %10s %10s\n", "", "events", "mean us", "p50 us", "p99 us",
	       "max us");
	printf("%-34s %9lu %10.1f %10.1f %10.1f %10.1f\n", aem.name, aem.n, aem.mean_us,
	       aem.p50_us, aem.p99_us, aem.max_us);
	printf("%-34s %9lu %10.1f %10.1f %10.1f %10.1f\n", "one Health Status Poll (AF_MCTP)",
	       res[1].n, res[1].mean_us, res[1].p50_us, res[1].p99_us, res[1].max_us);
	printf("ratio AEM mean latency / one poll round trip: %.1f\n", aem.mean_us / res[1].mean_us);
	fflush(stdout);
	ret = 0;
out_daemon:
	if (root)
		nvme_mi_free_root(root);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
out_dir:
	unlink(msock);
	rmdir(dir);
	return ret;
}

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
 *   bench-mi [-d NVEMUD] [-p PRELOAD] [-t SECONDS]
 *
 * It re-executes itself with LD_PRELOAD set, so it runs as is.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnvme-mi.h>

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

	printf("NVMe-MI through libnvemu-mctp-preload.so -> nvemud (MCTP net 1, EID 9, MTU 64), "
	       "one request at a time\n\n");
	printf("%-34s %9s %12s %10s %10s %10s %10s\n", "command", "requests", "round trips/s",
	       "mean us", "p50 us", "p99 us", "max us");
	for (int i = 0; i < 2; i++)
		printf("%-34s %9lu %12.0f %10.1f %10.1f %10.1f %10.1f\n", res[i].name, res[i].n,
		       (double)res[i].n / res[i].secs, res[i].mean_us, res[i].p50_us, res[i].p99_us,
		       res[i].max_us);
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

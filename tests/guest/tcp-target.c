/* SPDX-License-Identifier: MIT */
/*
 * A stand-alone NVMe/TCP target for guest tests until nvemud serves TCP
 * listeners itself: the seed-000 model (one subsystem, namespaces of 1024
 * and 2048 blocks) plus a larger RAM namespace for fio, served on
 * ADDR:PORT (default 127.0.0.1:4420) with the built-in loop.
 *
 *   nvemu-tcp-target [-a ADDR] [-s PORT] [-n NQN] [-S SERIAL] [-m MiB] [-H HOSTNQN]
 *                    [-t CONNECT_MS] [-T DATA_MS] [-B QUEUE_BUF_BYTES] [-K DISC_KATO_MS]
 *
 * -H (repeatable) turns allow-any-host off and allows that host only.
 * -t/-T/-B/-K set the target's limits (struct nvemu_tcp_target_params), so
 * tests can use short timeouts. PORT 0 takes a free port.
 * Runs until SIGTERM/SIGINT; prints "ready NQN ADDR:PORT" on stdout once listening.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <nvemu/nvemu.h>

#include <nvemu/tcp.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level <= NVEMU_TCP_LOG_INFO)
		fprintf(stderr, "nvemu-tcp-target: %s\n", msg);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *port = "4420", *nqn = "nqn.2014-08.io.nvemu:default";
	const char *serial = NULL, *hosts[16];
	unsigned nr_hosts = 0, mib = 64;
	struct nvemu_error err = { 0 };
	struct nvemu_subsys_params sp;
	struct nvemu_tcp_target_params tp;
	struct nvemu_tcp_listener_info li;
	struct nvemu_tcp_target *t;
	struct nvemu_subsys *s;
	struct sigaction sa = { .sa_handler = on_signal };
	uint32_t nsid;
	int opt;

	nvemu_tcp_target_params_init(&tp);
	while ((opt = getopt(argc, argv, "a:s:n:S:m:H:t:T:B:K:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 's': port = optarg; break;
		case 'n': nqn = optarg; break;
		case 'S': serial = optarg; break;
		case 'm': mib = (unsigned)atoi(optarg); break;
		case 'H':
			if (nr_hosts < 16)
				hosts[nr_hosts++] = optarg;
			break;
		case 't': tp.connect_timeout_ms = (unsigned)atoi(optarg); break;
		case 'T': tp.data_timeout_ms = (unsigned)atoi(optarg); break;
		case 'B': tp.queue_buf_max = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'K': tp.disc_kato_ms = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-a ADDR] [-s PORT] [-n NQN] [-S SERIAL] [-m MiB] [-H HOSTNQN]"
				" [-t CONNECT_MS] [-T DATA_MS] [-B QUEUE_BUF_BYTES] [-K DISC_KATO_MS]\n",
				argv[0]);
			return 2;
		}
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (nvemu_subsys_info_environment(&sp, &err))
		goto fail;
	sp.nqn = nqn;
	sp.serial = serial;
	if (nvemu_subsys_create(&sp, &s, &err))
		goto fail;
	if (nvemu_subsys_add_ns(s, 1024, &nsid, &err) || nvemu_subsys_add_ns(s, 2048, &nsid, &err) ||
	    nvemu_subsys_add_ns(s, (uint64_t)mib * 2048, &nsid, &err))
		goto fail;
	tp.log = log_cb;
	if (nvemu_tcp_target_create(&tp, &t, &err))
		goto fail;
	if (nvemu_tcp_add_listener(t, s, addr, port, 0, &err))
		goto fail;
	if (nr_hosts) {
		nvemu_tcp_set_allow_any_host(t, s, false, NULL);
		for (unsigned i = 0; i < nr_hosts; i++)
			if (nvemu_tcp_add_host(t, s, hosts[i], &err))
				goto fail;
	}
	if (nvemu_tcp_get_listener(t, s, 0, &li))
		goto fail;
	printf("ready %s %s:%s\n", nqn, addr, li.trsvcid);
	fflush(stdout);
	while (!stop)
		nvemu_tcp_target_run_once(t, 100);
	nvemu_tcp_remove_subsys(t, s);
	nvemu_tcp_target_destroy(t);
	nvemu_subsys_destroy(s);
	return 0;
fail:
	fprintf(stderr, "nvemu-tcp-target: %s\n", err.msg);
	return 1;
}

// SPDX-License-Identifier: MIT
/*
 * nvemud: holds the subsystem model and serves the JSON-RPC control plane.
 * With no arguments it starts the seed-000 default configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "loop.h"
#include "rpc-server.h"
#include "rpc.h"

#define SHUTDOWN_DRAIN_MS 10000

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: nvemud [OPTIONS]\n"
		"Run the nvemu NVMe subsystem emulator and its JSON-RPC 2.0 control plane.\n"
		"\n"
		"Without -c, starts the default configuration: subsystem %s with a PCIe\n"
		"port, controller NVMeCtrl1, RAM bdevs Malloc0 (1024 x 512 B) and Malloc1\n"
		"(2048 x 512 B) as namespaces 1 (attached) and 2, and a two-wire port.\n"
		"\n"
		"  -c, --config FILE   load a configuration written by save_config (no default)\n"
		"  -r, --rpc PATH      RPC socket (default %s)\n"
		"  -v, --verbose       more messages (repeat: debug, trace)\n"
		"  -q, --quiet         errors only\n"
		"  -h, --help          this help\n"
		"  -V, --version       print the version\n",
		NVEMUD_DEFAULT_NQN, NVEMUD_DEFAULT_SOCKET);
}

static void signal_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct nvemud *d = arg;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	nvemud_log(d, NVEMUD_LOG_INFO, "%s: shutting down", strsignal((int)si.ssi_signo));
	loop_stop(d->loop);
}

static void warn_vendor(struct nvemud *d)
{
	struct nvemu_vendor v;
	struct nvemu_error err;

	nvemu_vendor_build_default(&v);
	if (nvemu_vendor_from_env(&v, &err)) {
		nvemud_log(d, NVEMUD_LOG_WARN, "%s", err.msg);
		return;
	}
	if (nvemu_vendor_is_placeholder(&v))
		nvemud_log(d, NVEMUD_LOG_WARN,
			   "placeholder vendor identity (OUI ac-de-48 / PCI ID ffff): set NVEMU_IEEE_OUI and NVEMU_PCI_VID/DID/SVID/SDID; such builds must not be distributed");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "rpc", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *sock = NVEMUD_DEFAULT_SOCKET;
	int level = NVEMUD_LOG_INFO, opt, sfd, ret = 1;
	struct nvemu_error err = { 0 };
	struct loop_src *sig_src;
	struct nvemud *d;
	struct loop *loop;
	sigset_t mask;

	while ((opt = getopt_long(argc, argv, "c:r:vqhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'r':
			sock = optarg;
			break;
		case 'v':
			if (level < NVEMUD_LOG_TRACE)
				level++;
			break;
		case 'q':
			level = NVEMUD_LOG_ERR;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("nvemud %s\n", NVEMU_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nvemud: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	loop = loop_new();
	if (sfd < 0 || !loop) {
		fprintf(stderr, "nvemud: cannot set up the event loop: %s\n", strerror(errno));
		return 1;
	}
	d = nvemud_new(loop, level);
	if (!d) {
		fprintf(stderr, "nvemud: out of memory\n");
		return 1;
	}
	warn_vendor(d);

	/* Refuse early if another daemon serves the socket, before building anything. */
	if (rpc_server_start(d, sock, &err)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "%s", err.msg);
		goto out;
	}
	if (config) {
		struct rpc_err e = { 0 };

		if (nvemud_load_config_file(d, config, &e)) {
			nvemud_log(d, NVEMUD_LOG_ERR, "%s: %s", config, e.msg);
			goto out_server;
		}
		nvemud_log(d, NVEMUD_LOG_INFO, "loaded %s", config);
	} else if (nvemud_load_default(d, &err)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "default configuration: %s", err.msg);
		goto out_server;
	}

	sig_src = loop_add_fd(loop, sfd, EPOLLIN, signal_cb, d);
	if (!sig_src) {
		nvemud_log(d, NVEMUD_LOG_ERR, "cannot watch signals");
		goto out_server;
	}
	nvemud_log(d, NVEMUD_LOG_INFO, "ready");
	ret = loop_run(loop) ? 1 : 0;
	loop_del(sig_src);

out_server:
	rpc_server_stop(d);
out:
	nvemud_drain(d, SHUTDOWN_DRAIN_MS);
	nvemud_free(d);
	loop_free(loop);
	close(sfd);
	if (!ret)
		fprintf(stderr, "nvemud: stopped\n");
	return ret;
}

// SPDX-License-Identifier: MIT
/*
 * Serves the seed-000 model's controller over vfio-user on a socket, so
 * guest tests run without the daemon: one subsystem, a PCIe port,
 * controller 1, namespaces of 1024 (attached) and 2048 blocks (not
 * attached), plus, with -m, a RAM namespace of that many MiB (attached).
 *
 *   vfu-test-server [-S serial] [-m MiB] [-v] SOCKET
 *
 * Prints "ready" once the socket listens; SIGTERM/SIGINT remove it and exit.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nvemu/nvemu.h>
#include <nvemu/vfio-user.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int fail(const char *what, const struct nvemu_error *err)
{
	fprintf(stderr, "vfu-test-server: %s: %s\n", what, err->msg);
	return 1;
}

/* The seed-000 model, plus a RAM namespace of mib MiB when mib is not 0; 1 on failure (said). */
static int build_model(const char *serial, unsigned long mib, struct nvemu_subsys **out,
		       struct nvemu_ctrl **ctrl_out)
{
	struct nvemu_error err = { 0 };
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_subsys *subsys;
	struct nvemu_ctrl *ctrl;
	uint16_t port, cntlid;
	uint32_t nsid;

	if (nvemu_subsys_info_environment(&sp, &err))
		return fail("environment", &err);
	if (serial)
		sp.serial = serial;
	/*
	 * SeaBIOS's NVMe driver sends Identify Namespace for every NSID up to
	 * NN at boot: with the default NN (0xfffffffe) a guest never boots.
	 */
	sp.nn = 16;
	sp.mnan = 16;
	if (nvemu_subsys_create(&sp, &subsys, &err))
		return fail("subsystem", &err);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	if (nvemu_subsys_add_port(subsys, &pp, &port, &err) ||
	    nvemu_subsys_add_ctrl(subsys, port, &cntlid, &err))
		return fail("controller", &err);
	ctrl = nvemu_subsys_ctrl(subsys, cntlid);
	if (nvemu_subsys_add_ns(subsys, 1024, &nsid, &err) ||
	    nvemu_ctrl_attach_ns(ctrl, nsid, &err) ||
	    nvemu_subsys_add_ns(subsys, 2048, &nsid, &err))
		return fail("namespace", &err);
	if (mib && (nvemu_subsys_add_ns(subsys, (uint64_t)mib * 2048, &nsid, &err) ||
		    nvemu_ctrl_attach_ns(ctrl, nsid, &err)))
		return fail("namespace", &err);
	nvemu_port_params_init(&pp, NVEMU_PORT_TWO_WIRE);
	if (nvemu_subsys_add_port(subsys, &pp, &port, &err))
		return fail("two-wire port", &err);
	*out = subsys;
	*ctrl_out = ctrl;
	return 0;
}

static void print_stats(struct nvemu_vfu_server *srv)
{
	struct nvemu_vfu_stats st;

	nvemu_vfu_server_stats(srv, &st);
	fprintf(stderr, "vfu-test-server: connects %llu disconnects %llu messages %llu "
		"region reads %llu writes %llu dma maps %llu dma msgs %llu irqs %llu "
		"errors %llu\n",
		(unsigned long long)st.connects, (unsigned long long)st.disconnects,
		(unsigned long long)st.messages, (unsigned long long)st.region_reads,
		(unsigned long long)st.region_writes, (unsigned long long)st.dma_maps,
		(unsigned long long)st.dma_msgs, (unsigned long long)st.irqs,
		(unsigned long long)st.errors);
}

int main(int argc, char **argv)
{
	struct nvemu_error err = { 0 };
	struct nvemu_vfu_params vp;
	struct nvemu_subsys *subsys = NULL;
	struct nvemu_vfu_server *srv;
	struct nvemu_ctrl *ctrl;
	struct sigaction sa = { .sa_handler = on_signal };
	const char *serial = NULL;
	unsigned long mib = 0;
	int opt;

	nvemu_vfu_params_init(&vp);
	while ((opt = getopt(argc, argv, "S:m:v")) != -1) {
		switch (opt) {
		case 'S': serial = optarg; break;
		case 'm': mib = strtoul(optarg, NULL, 0); break;
		case 'v': vp.verbose = true; break;
		default: goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;

	if (build_model(serial, mib, &subsys, &ctrl))
		return 1;
	if (nvemu_vfu_server_create(argv[optind], ctrl, &vp, &srv, &err))
		return fail("vfio-user", &err);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	printf("ready %s\n", argv[optind]);
	fflush(stdout);

	while (!stop) {
		struct pollfd pfd = { .fd = nvemu_vfu_server_fd(srv), .events = POLLIN };
		/* mapped doorbells wake nobody: look at them every millisecond */
		int r = poll(&pfd, 1, nvemu_vfu_server_needs_polling(srv) ? 1 : 100);

		if (r < 0 && errno != EINTR)
			break;
		if (nvemu_vfu_server_process(srv) < 0)
			break;
		nvemu_vfu_server_poll(srv);
		nvemu_subsys_poll(subsys);
	}
	print_stats(srv);
	nvemu_vfu_server_destroy(srv);
	nvemu_subsys_destroy(subsys);
	return 0;
usage:
	fprintf(stderr, "usage: %s [-S serial] [-m MiB] [-v] SOCKET\n", argv[0]);
	return 2;
}

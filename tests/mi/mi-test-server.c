/* SPDX-License-Identifier: MIT */
/*
 * A stand-alone NVMe-MI device for the MI integration tests, independent of
 * nvemud: the seed-000 model (PCIe port, controller, namespaces of 1024 and
 * 2048 blocks with the first attached, a two-wire port), an NVMe-MI endpoint
 * on the two-wire port, MCTP network 1 EID 9, behind the AF_MCTP router at
 * the given socket path. Prints "ready sn=<SN> mn=<MN>" once clients may
 * connect, and runs until SIGTERM/SIGINT.
 *
 *   mi-test-server SOCKET_PATH [NET EID]
 */
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <nvemu/nvemu.h>
#include <nvemu/host.h>
#include <nvemu/mctp.h>
#include <nvemu/mi.h>

static int die(const char *what, const struct nvemu_error *err)
{
	fprintf(stderr, "mi-test-server: %s: %s\n", what, err->msg);
	return 1;
}

/* Identify Controller through the in-process host, for the values the tests compare. */
static void print_ready(struct nvemu_subsys *subsys, uint16_t ctlrid)
{
	struct nvemu_sqe cmd = { .opc = nvme_admin_identify, .cdw10 = NVME_IDENTIFY_CNS_CTRL };
	struct nvemu_error err = { 0 };
	struct nvemu_host *host;
	struct nvme_id_ctrl id;
	char sn[21] = "", mn[41] = "";

	memset(&id, 0, sizeof(id));
	if (!nvemu_host_create(nvemu_subsys_ctrl(subsys, ctlrid), &host, &err)) {
		if (!nvemu_host_enable(host))
			nvemu_host_exec(host, 0, &cmd, &id, sizeof(id), NULL);
		nvemu_host_destroy(host);
	}
	memcpy(sn, id.sn, 20);
	memcpy(mn, id.mn, 40);
	for (int i = 19; i >= 0 && sn[i] == ' '; i--)
		sn[i] = 0;
	for (int i = 39; i >= 0 && mn[i] == ' '; i--)
		mn[i] = 0;
	printf("ready sn=%s mn=%s\n", sn, mn);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct nvemu_error err = { 0 };
	struct nvemu_subsys_params info;
	struct nvemu_port_params port;
	struct nvemu_mctp_ep_params mp;
	struct nvemu_subsys *subsys;
	struct nvemu_mctp_ep *mctp;
	struct nvemu_mctp_router *router;
	struct nvemu_mi_ep *mi;
	uint16_t ppid, ctlrid, twpid;
	uint32_t nsid, nsid2;
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t sigs;
	int efd, sfd, ret = 1;

	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: mi-test-server SOCKET_PATH [NET EID]\n");
		return 2;
	}
	if (nvemu_subsys_info_environment(&info, &err) || nvemu_subsys_create(&info, &subsys, &err))
		return die("subsystem", &err);
	nvemu_port_params_init(&port, NVEMU_PORT_PCIE);
	if (nvemu_subsys_add_port(subsys, &port, &ppid, &err) ||
	    nvemu_subsys_add_ctrl(subsys, ppid, &ctlrid, &err) ||
	    nvemu_subsys_add_ns(subsys, 1024, &nsid, &err) ||
	    nvemu_subsys_add_ns(subsys, 2048, &nsid2, &err) ||
	    nvemu_ctrl_attach_ns(nvemu_subsys_ctrl(subsys, ctlrid), nsid, &err))
		return die("model", &err);
	nvemu_port_params_init(&port, NVEMU_PORT_TWO_WIRE);
	if (nvemu_subsys_add_port(subsys, &port, &twpid, &err))
		return die("two-wire port", &err);
	if (nvemu_mi_ep_create(subsys, twpid, &mi, &err))
		return die("MI endpoint", &err);

	nvemu_mctp_ep_params_init(&mp);
	mp.net = argc == 4 ? strtoul(argv[2], NULL, 0) : 1;
	mp.eid = argc == 4 ? strtoul(argv[3], NULL, 0) : 9;
	if (nvemu_mctp_ep_create(&mp, &mctp, &err) || nvemu_mctp_ep_attach_mi(mctp, mi, &err))
		return die("MCTP endpoint", &err);
	if (nvemu_mctp_router_create(argv[1], &router, &err) ||
	    nvemu_mctp_router_add_ep(router, mctp, &err))
		return die("router", &err);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	efd = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = sfd;
	epoll_ctl(efd, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = nvemu_mctp_router_fd(router);
	epoll_ctl(efd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	print_ready(subsys, ctlrid);

	for (;;) {
		int n = epoll_wait(efd, &ev, 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (ev.data.fd == sfd) {
			ret = 0;
			break;
		}
		nvemu_mctp_router_handle(router);
	}
	close(efd);
	close(sfd);
	nvemu_mctp_router_destroy(router);
	nvemu_mctp_ep_destroy(mctp);
	nvemu_mi_ep_destroy(mi);
	nvemu_subsys_destroy(subsys);
	return ret;
}

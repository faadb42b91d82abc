/* SPDX-License-Identifier: MIT */
/*
 * The nvme-mi-dev example (seed 000) written with nvemu's model API, line
 * for line: one subsystem, a PCIe port, one controller, namespaces of 1024
 * and 2048 blocks with the first attached, and a two-wire port for
 * management. It then checks the model through the in-process host.
 */
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include <nvemu/nvemu.h>

static int fail(const char *what, const struct nvemu_error *err)
{
	fprintf(stderr, "seed000: %s: %s\n", what, err->msg);
	return 1;
}

int main(void)
{
	struct nvemu_error err = {0};
	struct nvemu_subsys_params info;
	struct nvemu_port_params port;
	struct nvemu_subsys *subsys;
	struct nvemu_host *host;
	uint16_t ppid, ctlrid, twpid;
	uint32_t nsid, nsid2;
	int ret = 1;

	/* let mut subsys = Subsystem::new(SubsystemInfo::environment()); */
	if (nvemu_subsys_info_environment(&info, &err))
		return fail("environment", &err);
	if (nvemu_vendor_is_placeholder(&info.vendor))
		fprintf(stderr, "seed000: warning: placeholder vendor identity (OUI ac-de-48 / "
				"PCI ID ffff); such builds must not be distributed\n");
	if (nvemu_subsys_create(&info, &subsys, &err))
		return fail("Subsystem::new", &err);

	/* let ppid = subsys.add_port(PortType::PCIe(PCIePort::new())) */
	nvemu_port_params_init(&port, NVEMU_PORT_PCIE);
	if (nvemu_subsys_add_port(subsys, &port, &ppid, &err))
		return fail("Unable to create PCIe port", &err);
	/* let ctlrid = subsys.add_controller(ppid) */
	if (nvemu_subsys_add_ctrl(subsys, ppid, &ctlrid, &err))
		return fail("Unable to create controller", &err);
	/* let nsid = subsys.add_namespace(1024) */
	if (nvemu_subsys_add_ns(subsys, 1024, &nsid, &err))
		return fail("Unable to create namespace", &err);
	/* subsys.add_namespace(2048) */
	if (nvemu_subsys_add_ns(subsys, 2048, &nsid2, &err))
		return fail("Unable to create namespace", &err);
	/* subsys.controller_mut(ctlrid).attach_namespace(nsid) */
	if (nvemu_ctrl_attach_ns(nvemu_subsys_ctrl(subsys, ctlrid), nsid, &err))
		return fail("Unable to attach namespace", &err);
	/* let twpid = subsys.add_port(PortType::TwoWire(TwoWirePort::new())) */
	nvemu_port_params_init(&port, NVEMU_PORT_TWO_WIRE);
	if (nvemu_subsys_add_port(subsys, &port, &twpid, &err))
		return fail("Unable to create TwoWire port", &err);

	/* Check what a host sees: namespace 1 active with 1024 blocks, 2 not. */
	if (nvemu_host_create(nvemu_subsys_ctrl(subsys, ctlrid), &host, &err))
		return fail("host", &err);
	if (nvemu_host_enable(host)) {
		fprintf(stderr, "seed000: controller did not become ready\n");
		goto out;
	}
	struct nvme_id_ns id;
	struct nvemu_sqe cmd = {
		.opc = nvme_admin_identify, .nsid = nsid, .cdw10 = NVME_IDENTIFY_CNS_NS};
	uint16_t st = nvemu_host_exec(host, 0, &cmd, &id, sizeof(id), NULL);

	if (st || le64toh(id.nsze) != 1024) {
		fprintf(stderr, "seed000: namespace %u: status %#x, nsze %llu (want 1024)\n", nsid,
			st, (unsigned long long)le64toh(id.nsze));
		goto out;
	}
	cmd.nsid = nsid2;
	st = nvemu_host_exec(host, 0, &cmd, &id, sizeof(id), NULL);
	if (st || id.nsze != 0) {
		fprintf(stderr, "seed000: namespace %u should be inactive on the controller\n",
			nsid2);
		goto out;
	}
	printf("subsystem %s: PCIe port %u, controller %u, namespaces %u (attached) and %u, "
	       "two-wire port %u\n",
	       nvemu_subsys_nqn(subsys), ppid, ctlrid, nsid, nsid2, twpid);
	ret = 0;
out:
	nvemu_host_destroy(host);
	nvemu_subsys_destroy(subsys);
	return ret;
}

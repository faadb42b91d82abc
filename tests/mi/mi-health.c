/* SPDX-License-Identifier: MIT */
/*
 * Debian's libnvme-mi against nvemud (through libnvemu-mctp-preload.so):
 * one NVM Subsystem Health Status Poll and the SMART / Health log of
 * controller CNTLID through the Admin tunnel, which runs the same Get Log
 * Page handler as in-band hosts. Prints key=value lines for mi-nvemud.sh.
 *
 *   mi-health NET EID CNTLID [clear]
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnvme-mi.h>

int main(int argc, char **argv)
{
	struct nvme_mi_nvm_ss_health_status hs;
	struct nvme_smart_log smart;
	nvme_mi_ctrl_t ctrl;
	nvme_root_t root;
	nvme_mi_ep_t ep;
	int ret;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: mi-health NET EID CNTLID [clear]\n");
		return 2;
	}
	root = nvme_mi_create_root(stderr, LOG_WARNING);
	if (!root)
		return 1;
	ep = nvme_mi_open_mctp(root, (unsigned)strtoul(argv[1], NULL, 0),
			       (uint8_t)strtoul(argv[2], NULL, 0));
	if (!ep) {
		fprintf(stderr, "mi-health: cannot open the endpoint: %s\n", strerror(errno));
		return 1;
	}
	ret = nvme_mi_mi_subsystem_health_status_poll(ep, argc == 5, &hs);
	if (ret) {
		fprintf(stderr, "mi-health: health poll: %d (%s)\n", ret, strerror(errno));
		return 1;
	}
	printf("nss=0x%02x\nsw=0x%02x\nctemp=%u\npdlu=%u\nccs=0x%04x\n", hs.nss, hs.sw, hs.ctemp,
	       hs.pdlu, le16toh(hs.ccs));
	ctrl = nvme_mi_init_ctrl(ep, (uint16_t)strtoul(argv[3], NULL, 0));
	if (!ctrl)
		return 1;
	memset(&smart, 0, sizeof(smart));
	ret = nvme_mi_admin_get_log_smart(ctrl, NVME_NSID_ALL, false, &smart);
	if (ret) {
		fprintf(stderr, "mi-health: SMART log: %d (%s)\n", ret, strerror(errno));
		return 1;
	}
	printf("smart_critical_warning=0x%02x\nsmart_temperature=%u\nsmart_percent_used=%u\n"
	       "smart_avail_spare=%u\n",
	       smart.critical_warning, smart.temperature[0] | smart.temperature[1] << 8,
	       smart.percent_used, smart.avail_spare);
	nvme_mi_close(ep);
	nvme_mi_free_root(root);
	return 0;
}

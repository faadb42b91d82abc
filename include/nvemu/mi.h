/* SPDX-License-Identifier: MIT */
/*
 * NVMe-MI Management Endpoint (NVMe-MI 1.2 over MCTP). The MCTP layer hands
 * complete, reassembled messages of type 4 to nvemu_mi_ep_handle(); the
 * endpoint answers MI commands and tunnelled Admin commands from the same
 * subsystem model in-band hosts see.
 *
 * Port identifiers in MI messages are indexes into the subsystem's ports in
 * the order they were added (0 .. NUMP); PCIe and two-wire ports report
 * their type, other ports (TCP) report "inactive".
 */
#ifndef NVEMU_MI_H
#define NVEMU_MI_H

#include <stddef.h>
#include <stdint.h>
#include <nvemu/error.h>
#include <nvemu/model.h>

struct nvemu_mi_ep;

/* NVMe-MI version the endpoint reports (NVM Subsystem Information). */
#define NVEMU_MI_VER_MAJOR 1
#define NVEMU_MI_VER_MINOR 2

/* MCTP transmission unit limits for Configuration Set (MCTP baseline 64). */
#define NVEMU_MI_MTU_MIN 64
#define NVEMU_MI_MTU_MAX 4096

/* Size of the VPD (IPMI FRU) area the endpoint holds. */
#define NVEMU_MI_VPD_SIZE 256

/* MI command opcodes libnvme 1.3 does not name (NVMe-MI 1.2, Figure 68). */
enum nvemu_mi_opcode {
	NVEMU_MI_OPC_CTRL_HEALTH_POLL = 0x02,
	NVEMU_MI_OPC_VPD_READ = 0x05,
	NVEMU_MI_OPC_VPD_WRITE = 0x06,
	NVEMU_MI_OPC_RESET = 0x07,
	NVEMU_MI_OPC_SES_RECEIVE = 0x08,
	NVEMU_MI_OPC_SES_SEND = 0x09,
	NVEMU_MI_OPC_MEB_READ = 0x0a,
	NVEMU_MI_OPC_MEB_WRITE = 0x0b,
	NVEMU_MI_OPC_SHUTDOWN = 0x0c,
};

/* Management Endpoint Buffer size (Port Information MEBS of the endpoint's port). */
#define NVEMU_MI_MEB_SIZE 4096
/* Shutdown DW0 bit 0: abrupt (CC.SHN 10b) rather than normal (01b). */
#define NVEMU_MI_SHUTDOWN_ABRUPT 0x1

/* Controller Health Status Poll DW0 bits 31:24 and DW1 (NVMe-MI 1.2 5.3). */
#define NVEMU_MI_CHSP_INCF  (1u << 24)
#define NVEMU_MI_CHSP_INCPF (1u << 25)
#define NVEMU_MI_CHSP_INCVF (1u << 26)
#define NVEMU_MI_CHSP_ALL   (1u << 31)
#define NVEMU_MI_CHSP_CSTS  (1u << 0)
#define NVEMU_MI_CHSP_CTEMP (1u << 1)
#define NVEMU_MI_CHSP_PDLU  (1u << 2)
#define NVEMU_MI_CHSP_SPARE (1u << 3)
#define NVEMU_MI_CHSP_CWARN (1u << 4)
#define NVEMU_MI_CHSP_CCF   (1u << 31)
/* Byte offset of the Controller Health Status Changed flags in a CHDS. */
#define NVEMU_MI_CHDS_CHSC_OFF 9

/*
 * Create an endpoint on a port of subsys (the port the MCTP binding reaches
 * it through; two-wire normally, PCIe accepted for MCTP over PCIe VDM).
 * The endpoint must be destroyed before the subsystem.
 */
int nvemu_mi_ep_create(struct nvemu_subsys *subsys, uint16_t two_wire_port_id,
		       struct nvemu_mi_ep **out, struct nvemu_error *err);
/* Admin commands still running complete silently (no respond()). */
void nvemu_mi_ep_destroy(struct nvemu_mi_ep *ep);

typedef void (*nvemu_mi_respond_fn)(void *ctx, const uint8_t *resp, size_t len);

/*
 * Handle one NVMe-MI message: msg is the MCTP message type byte (0x84)
 * through the 4-byte MIC. respond() is called exactly once with the whole
 * response message (type byte .. MIC), possibly after this returns (Admin
 * commands may complete asynchronously), or never when the message is to be
 * dropped (not type 4 with IC, bad MIC, a response, too short for a MIC).
 * resp is valid only during the call.
 */
void nvemu_mi_ep_handle(struct nvemu_mi_ep *ep, const uint8_t *msg, size_t len,
			nvemu_mi_respond_fn respond, void *ctx);

/* The model port id the endpoint sits on. */
uint16_t nvemu_mi_ep_port(const struct nvemu_mi_ep *ep);

/*
 * MCTP transmission unit size configured for the endpoint's port (64 until
 * a Configuration Set changes it). A change takes effect after the response
 * to the Set that made it has been handed to respond(), as the spec wants.
 */
uint16_t nvemu_mi_ep_mtu(const struct nvemu_mi_ep *ep);
/* Called (after the response) whenever the endpoint port's MTU changes. */
void nvemu_mi_ep_set_mtu_cb(struct nvemu_mi_ep *ep, void (*cb)(void *arg, uint16_t mtu), void *arg);

/*
 * SMBus/I2C frequency (NVME_MI_CONFIG_SMBUS_FREQ_*) currently configured on
 * a two-wire model port; 0 for other ports. Set validates against the port's
 * maximum (-EINVAL).
 */
uint8_t nvemu_mi_ep_smbus_freq(struct nvemu_mi_ep *ep, uint16_t port_id);
int nvemu_mi_ep_set_smbus_freq(struct nvemu_mi_ep *ep, uint16_t port_id, uint8_t freq,
			       struct nvemu_error *err);
/*
 * The largest transmission unit the endpoint's binding carries (a DSP0253
 * serial line: 64); 0 restores NVEMU_MI_MTU_MAX. Read NVMe-MI Data Structure
 * reports it, and a Configuration Set above it is Invalid Parameter.
 */
void nvemu_mi_ep_set_mtu_max(struct nvemu_mi_ep *ep, uint16_t max);
uint16_t nvemu_mi_ep_mtu_max(const struct nvemu_mi_ep *ep);
/*
 * Controller ID 0 when the subsystem has no controller 0 (nvemu numbers
 * from 1): with the alias on (the default), Admin commands and Read
 * Controller Information for ID 0 reach the lowest-numbered controller, so
 * that nvme-cli's "mctp:<net>,<eid>" (controller 0) works; off, ID 0 is
 * Invalid Parameter as for any other absent controller.
 */
void nvemu_mi_ep_set_ctrl0_alias(struct nvemu_mi_ep *ep, bool on);

/*
 * The PCIe function the PCIe Command Set (NMIMT 4: Configuration Read and
 * Write) reaches: what a host sees of the endpoint's subsystem's function,
 * through these calls. cfg_read and cfg_write return 0, or -1 when no
 * function is there right now (PCIe Inaccessible). Without ops, PCIe
 * commands get PCIe Inaccessible.
 */
struct nvemu_mi_pcie_ops {
	int (*cfg_read)(void *arg, struct nvemu_subsys *s, uint32_t off, unsigned size,
			uint32_t *val);
	int (*cfg_write)(void *arg, struct nvemu_subsys *s, uint32_t off, unsigned size,
			 uint32_t val);
	uint32_t cfg_size; /* bytes of configuration space (4096 for PCIe) */
};
void nvemu_mi_ep_set_pcie_ops(struct nvemu_mi_ep *ep, const struct nvemu_mi_pcie_ops *ops,
			      void *arg);
bool nvemu_mi_ep_ctrl0_alias(const struct nvemu_mi_ep *ep);
/* MTU of any model port (64 by default); set validates 64..the maximum above. */
uint16_t nvemu_mi_ep_port_mtu(struct nvemu_mi_ep *ep, uint16_t port_id);
int nvemu_mi_ep_set_port_mtu(struct nvemu_mi_ep *ep, uint16_t port_id, uint16_t mtu,
			     struct nvemu_error *err);

/*
 * The VPD area (NVEMU_MI_VPD_SIZE bytes, an IPMI FRU: common header and a
 * Product Info area with the subsystem's model, serial and firmware).
 */
const uint8_t *nvemu_mi_ep_vpd(const struct nvemu_mi_ep *ep);
int nvemu_mi_ep_vpd_write(struct nvemu_mi_ep *ep, uint32_t off, const void *data, uint32_t len,
			  struct nvemu_error *err);

/* Composite Controller Status flags pending (NVM Subsystem Health Status Poll). */
uint16_t nvemu_mi_ep_ccs(struct nvemu_mi_ep *ep);

/*
 * Asynchronous Event Messages (NVMe-MI 2.0, TP6035). Configuration Set
 * with Configuration Identifier 04h enables AEs; the requester of that Set
 * becomes the destination of the endpoint's AEMs. The binding supplies:
 *  bind: remember the source of the request being handled now;
 *  send: send msg (type byte .. MIC) to that source as a request the
 *        endpoint owns the tag of; 0 or a negative errno.
 * nvemu_mi_ep_aem_poll() notices model changes, sends a due AEM and
 * retransmits an unacknowledged one; call it at least as often as the
 * returned deadline (CLOCK_MONOTONIC ns; 0: no AE is enabled, nothing due).
 */
#define NVEMU_MI_CONFIG_AE	 0x04
#define NVEMU_MI_NMIMT_AE	 5
#define NVEMU_MI_AEM_MAX_RETRIES 4
/*
 * AE identifiers (NVMe-MI 2.1, the Asynchronous Event list), and one of
 * nvemu's own in the vendor specific range for what has no standard one.
 */
enum nvemu_mi_aei {
	NVEMU_MI_AEI_RDY = 0x00,   /* Controller Ready */
	NVEMU_MI_AEI_CFS = 0x01,   /* Controller Fatal Status */
	NVEMU_MI_AEI_SHST = 0x02,  /* Shutdown Status */
	NVEMU_MI_AEI_CECO = 0x03,  /* Controller Enable */
	NVEMU_MI_AEI_NAC = 0x04,   /* Namespace Attribute Changed */
	NVEMU_MI_AEI_FA = 0x05,	   /* Firmware Activated */
	NVEMU_MI_AEI_CTEMP = 0x06, /* Composite Temperature */
	NVEMU_MI_AEI_PDLU = 0x07,  /* Percentage Drive Life Used */
	NVEMU_MI_AEI_SPARE = 0x08, /* Available Spare */
	NVEMU_MI_AEI_CWARN = 0x09, /* SMART Warnings */
	NVEMU_MI_AEI_SANFM = 0x0c, /* Sanitize Failure Mode */
	NVEMU_MI_AEI_NSSRO = 0xc0, /* vendor specific: NVM Subsystem Reset Occurred */
};

struct nvemu_mi_aem_ops {
	void (*bind)(void *arg);
	int (*send)(void *arg, const uint8_t *msg, size_t len);
};

void nvemu_mi_ep_set_aem_ops(struct nvemu_mi_ep *ep, const struct nvemu_mi_aem_ops *ops, void *arg);
uint64_t nvemu_mi_ep_aem_poll(struct nvemu_mi_ep *ep, uint64_t now_ns);
/* AEMs sent and retransmitted so far (for tests and statistics). */
void nvemu_mi_ep_aem_stats(const struct nvemu_mi_ep *ep, uint64_t *sent, uint64_t *retransmitted);

#endif

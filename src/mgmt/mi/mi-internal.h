/* SPDX-License-Identifier: MIT */
/* NVMe-MI endpoint internals shared by mi.c, mi-cmd.c and mi-admin.c. */
#ifndef NVEMU_MI_INTERNAL_H
#define NVEMU_MI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nvme/mi.h>
#include <nvemu/mi.h>

/* The endpoint reads the model's state (controllers, ports, health) directly. */
#include "engine/nvemu-internal.h"
#include "mi-msg.h"

/* Largest data an Admin command may produce before DOFST/DLEN pick from it. */
#define MI_ADMIN_XFER_MAX (1u << 20)
#define MI_ADMIN_DLEN_MAX 4096

/* Composite Controller Status / CHSC bits the endpoint tracks. */
#define MI_CCS_ALL 0x1ff7

/* Admin request header CFLGS. */
#define MI_ADMIN_DLENV	0x1
#define MI_ADMIN_DOFSTV 0x2

struct mi_port_cfg {
	uint16_t port_id; /* model port id */
	uint8_t freq;	  /* NVME_MI_CONFIG_SMBUS_FREQ_* */
	uint16_t mtu;
};

/* What the endpoint last saw of a controller, to flag changes. */
struct mi_ctrl_state {
	uint16_t cntlid;
	bool seen; /* still in the subsystem at the last update */
	uint32_t csts;
	bool en;
	unsigned nr_ns, nr_changed_ns;
	uint8_t fw_slot;
	char fw_rev[8];
	uint16_t chsc; /* changed flags (CCS layout) not yet cleared by CCF */
};

struct mi_health_snap {
	uint16_t temp_k;
	uint8_t pdlu, spare, cwarn;
	bool sanfm; /* sanitize failure mode */
};

/* Asynchronous Event Messages (mi-aem.c). */
#define MI_AEM_MAX_OCC	64
#define MI_AEM_OCC_HDR	9
#define MI_AEM_LIST_HDR 7
#define MI_AEM_OSI_LEN	1 /* one byte of occurrence specific info: the new value */

struct mi_aem_occ {
	uint8_t id;
	uint32_t cid; /* controller ID; 0 for subsystem-wide events */
	uint8_t info;
};

struct mi_aem {
	uint8_t enabled[32]; /* bitmap by AE identifier */
	uint8_t aerd, aemd;  /* 100 ms units */
	uint8_t fa;	     /* ENCFA/EMPFA/ENVFA as set, bits 2:0 */
	bool bound;	     /* a requester enabled AEs: AEMs have a destination */
	struct mi_aem_occ pend[MI_AEM_MAX_OCC];
	unsigned nr_pend;
	uint64_t overflow;
	bool pend_since_set; /* first_at is valid */
	uint64_t first_at;   /* when the oldest pending occurrence was polled */
	uint8_t gen;	     /* generation number, 5 bits */
	bool awaiting;	     /* an AEM is out and not acknowledged */
	unsigned tries;
	uint64_t retry_at;
	uint8_t *msg; /* the AEM being retransmitted */
	size_t msg_len;
	uint64_t sent, resent;
	const struct nvemu_mi_aem_ops *ops;
	void *arg;
};

struct nvemu_mi_ep {
	struct nvemu_subsys *subsys;
	uint16_t port_id;

	struct mi_port_cfg *pcfg;
	unsigned nr_pcfg;
	void (*mtu_cb)(void *arg, uint16_t mtu);
	void *mtu_arg;
	uint16_t mtu_max; /* what the binding carries; 0: NVEMU_MI_MTU_MAX */
	bool ctrl0_alias;
	const struct nvemu_mi_pcie_ops *pcie_ops; /* mi-pcie.c */
	void *pcie_arg;

	uint8_t vpd[NVEMU_MI_VPD_SIZE];

	uint16_t ccs; /* Composite Controller Status flags */
	struct mi_ctrl_state *cs;
	unsigned nr_cs;
	struct mi_health_snap hsnap;

	struct mi_aem aem;
	uint8_t meb[NVEMU_MI_MEB_SIZE]; /* Management Endpoint Buffer */

	unsigned inflight; /* Admin commands the engine still runs */
	bool dying;
};

/* Where a response goes. */
struct mi_reply {
	struct nvemu_mi_ep *ep;
	nvemu_mi_respond_fn respond;
	void *ctx;
	uint8_t nmp;   /* request's: NMIMT and CSI are echoed */
	bool meb;      /* the request's MEB bit: its data is in the MEB */
	bool meb_resp; /* the response's data went to the MEB */
};

/* Admin opcodes whose data may be in the MEB (the MEB Command Support List). */
bool mi_admin_meb_supported(uint8_t opc);
size_t mi_admin_meb_list(uint8_t *out, size_t size);

/* Send hdr | status | nmresp[3] | a | b | MIC. */
void mi_send(struct mi_reply *r, uint8_t status, const uint8_t nmresp[3], const void *a,
	     size_t alen, const void *b, size_t blen);
static inline void mi_send_status(struct mi_reply *r, uint8_t status)
{
	mi_send(r, status, NULL, NULL, 0, NULL, 0);
}
/*
 * Invalid Parameter with the Parameter Error Location (NVMe-MI 1.2 4.1.2):
 * the byte of the request message (from its first byte, the message type)
 * and the bit within that byte where the offending field starts.
 */
void mi_send_invalid_param(struct mi_reply *r, uint16_t byte, uint8_t bit);

/* Request offsets of the fields an Invalid Parameter points at. */
#define MI_PEL_NMP	   1 /* message header: NMIMT, MEB */
#define MI_PEL_MEB	   2
#define MI_PEL_OPCODE	   4
#define MI_PEL_DW0	   8  /* NVMe-MI Command Dword 0 */
#define MI_PEL_DW1	   12 /* NVMe-MI Command Dword 1 */
#define MI_PEL_ADMIN_CTLID 6
#define MI_PEL_ADMIN_DOFST 28
#define MI_PEL_ADMIN_DLEN  32

/* Refresh change flags from the model (called on every request). */
void mi_update_health(struct nvemu_mi_ep *ep);
struct mi_ctrl_state *mi_ctrl_state(struct nvemu_mi_ep *ep, uint16_t cntlid);
/* Subsystem critical warning (NVME_SMART_CRIT_* bits) as the SMART log reports it. */
uint8_t mi_subsys_cwarn(struct nvemu_subsys *subsys, struct nvemu_ctrl *only);
/* MI port index <-> model port; NULL when out of range. */
struct nvemu_port *mi_port_by_index(struct nvemu_subsys *subsys, unsigned idx);
int mi_port_index(struct nvemu_subsys *subsys, uint16_t port_id);
struct mi_port_cfg *mi_port_cfg(struct nvemu_mi_ep *ep, uint16_t port_id);
/* The controller a request's controller ID names (the ID 0 alias applied); NULL if none. */
struct nvemu_ctrl *mi_ctrl_by_id(struct nvemu_mi_ep *ep, uint16_t id);

/* mi-aem.c: AE configuration and occurrence tracking. */
/* Values for the occurrence specific info, by AE identifier. */
/*
 * Composite Controller Status bits an AE can follow: the 13 of NVMe-MI,
 * and bit 13 for the subsystem's sanitize failure mode, which has an AE
 * but no status bit. info[] is indexed by bit.
 */
#define MI_AEM_CCS_BITS	 14
#define MI_AEM_SANFM_BIT 13
void mi_aem_note(struct nvemu_mi_ep *ep, uint32_t ccs_flags, uint16_t cntlid,
		 const uint8_t info[MI_AEM_CCS_BITS]);
void mi_aem_config_get(struct nvemu_mi_ep *ep, struct mi_reply *r);
void mi_aem_config_set(struct nvemu_mi_ep *ep, struct mi_reply *r, uint32_t dw0,
		       const uint8_t *data, size_t dlen);
void mi_aem_free(struct nvemu_mi_ep *ep);
uint8_t mi_ctemp(uint16_t kelvin);

/* mi-cmd.c: NMIMT 1, msg without the MIC. */
void mi_cmd_handle(struct nvemu_mi_ep *ep, const uint8_t *msg, size_t len, struct mi_reply *r);
/* PCIe Command Set opcodes (NMIMT 4). */
#define NVEMU_MI_PCIE_CFG_READ	0x00
#define NVEMU_MI_PCIE_CFG_WRITE 0x01

/* mi-pcie.c: NMIMT 4, msg without the MIC. */
void mi_pcie_handle(struct nvemu_mi_ep *ep, const uint8_t *msg, size_t len, struct mi_reply *r);
/* mi-admin.c: NMIMT 2. */
void mi_admin_handle(struct nvemu_mi_ep *ep, const uint8_t *msg, size_t len, struct mi_reply *r);
/* mi.c: free an endpoint whose last Admin command completed after destroy. */
void mi_ep_free(struct nvemu_mi_ep *ep);

#endif

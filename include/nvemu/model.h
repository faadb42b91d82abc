/* SPDX-License-Identifier: MIT */
/*
 * The NVMe subsystem model, as the NVMe specification defines it. A
 * subsystem (named by its NQN) owns ports (the PCIe, SMBus/I2C and TCP
 * ports NVMe-MI reports), controllers and namespaces. A controller sits on
 * one port and sees the namespaces attached to it; a namespace stores its
 * data in a block backend (<nvemu/bdev.h>). Hosts reach a controller
 * through the one transport bound to it (<nvemu/request.h>). All objects
 * hang off a struct nvemu_subsys; there is no global state, so several
 * subsystems can live in one process.
 */
#ifndef NVEMU_MODEL_H
#define NVEMU_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nvemu/bdev.h>
#include <nvemu/error.h>

struct nvemu_subsys;
struct nvemu_ctrl;
struct nvemu_ns;

#define NVEMU_NQN_MAX 223
#define NVEMU_SN_MAX  20
#define NVEMU_MN_MAX  40
#define NVEMU_FR_MAX  8

/* ---- vendor identity: build-time defaults, which the environment may override */

struct nvemu_vendor {
	uint8_t ieee_oui[3]; /* as written in IEEE RA form: ac-de-48 -> {ac,de,48} */
	uint16_t pci_vid;
	uint16_t pci_did;
	uint16_t pci_svid;
	uint16_t pci_sdid;
};

/* The identity compiled in from NVEMU_IEEE_OUI and NVEMU_PCI_* at build time. */
void nvemu_vendor_build_default(struct nvemu_vendor *v);
/*
 * Start from *v and apply the NVEMU_IEEE_OUI / NVEMU_PCI_{VID,DID,SVID,SDID}
 * environment variables that are set. A malformed value fails with -EINVAL
 * and a message naming the variable.
 */
int nvemu_vendor_from_env(struct nvemu_vendor *v, struct nvemu_error *err);
/*
 * The NVME_MI_DEV_* aliases (the names the nvme-mi-dev crate reads) set to
 * values other than their NVEMU_* counterparts: returns how many, and lists
 * them in buf for a warning. The NVEMU_* value is the one used.
 */
size_t nvemu_vendor_env_shadowed(char *buf, size_t len);
int nvemu_vendor_parse_oui(const char *s, uint8_t oui[3]);
int nvemu_vendor_parse_id16(const char *s, uint16_t *id);
/* True when any field still holds a placeholder (OUI ac-de-48, ID ffff). */
bool nvemu_vendor_is_placeholder(const struct nvemu_vendor *v);

/* ---- subsystem */

struct nvemu_subsys_params {
	const char *nqn;	  /* NULL: nqn.2014-08.org.nvmexpress:uuid:<random> */
	const char *serial;	  /* printable ASCII, <= 20; NULL: generated */
	const char *model;	  /* printable ASCII, <= 40; NULL: "nvemu" */
	const char *firmware_rev; /* <= 8; NULL: the nvemu version */
	uint32_t nn;		  /* max NSID, 1..0xfffffffe */
	uint32_t mnan;		  /* max namespaces, 1..nn */
	bool single_ctrl;
	struct nvemu_vendor vendor;
};

/* Defaults: nn 0xfffffffe... capped to 1024 namespaces, vendor from build+env. */
void nvemu_subsys_params_init(struct nvemu_subsys_params *p);
/* nvemu_subsys_params_init(), then nvemu_vendor_from_env() on its vendor identity. */
int nvemu_subsys_info_environment(struct nvemu_subsys_params *p, struct nvemu_error *err);

int nvemu_subsys_create(const struct nvemu_subsys_params *p, struct nvemu_subsys **out,
			struct nvemu_error *err);
/*
 * Destroys controllers and namespaces too (namespaces' own bdevs included).
 * Never blocks. Commands held by a suspend and outstanding AERs complete
 * at once (Command Aborted due to SQ Deletion). The intended order is the
 * one for a controller (see nvemu_subsys_remove_ctrl()) for each of them
 * first; a controller that still has commands in flight stays allocated,
 * out of the subsystem, and is freed by its last completion, as are the
 * namespaces those commands use and then the subsystem itself. Until then
 * their backends must still be polled (registered bdevs by their owner);
 * the subsystem pointer must not be used again after this call.
 */
void nvemu_subsys_destroy(struct nvemu_subsys *subsys);

const char *nvemu_subsys_nqn(const struct nvemu_subsys *subsys);
/*
 * Keep the subsystem's non-volatile state (the Sanitize Status log, sanitize
 * failure mode, a running sanitize) in path, so that it outlives nvemud as
 * it outlives a power cycle; loads it when the file exists. NULL: stop.
 */
int nvemu_subsys_set_state_file(struct nvemu_subsys *subsys, const char *path,
				struct nvemu_error *err);
const char *nvemu_subsys_state_file(const struct nvemu_subsys *subsys);
int nvemu_nqn_validate(const char *nqn, struct nvemu_error *err);

/* ---- ports */

enum nvemu_port_type {
	NVEMU_PORT_PCIE = 1,
	NVEMU_PORT_TWO_WIRE = 2,
	NVEMU_PORT_TCP = 3,
};

struct nvemu_port_params {
	enum nvemu_port_type type;
	union {
		struct {
			uint8_t port_number;	/* PCIe port number */
			uint8_t max_link_speed; /* 1=2.5GT/s ... 5=32GT/s */
			uint8_t max_link_width; /* lanes */
		} pcie;
		struct {
			uint8_t address;  /* 7-bit SMBus/I2C address */
			uint8_t max_freq; /* 1=100kHz 2=400kHz 3=1MHz */
			bool mctp_send_enabled;
		} two_wire;
		struct {
			char traddr[64];  /* default 127.0.0.1 */
			char trsvcid[32]; /* default 4420 */
			uint8_t adrfam;	  /* NVMF_ADDR_FAMILY_IP4/IP6 */
		} tcp;
	};
};

/*
 * Fills the type's defaults: PCIe x4 at 16 GT/s; SMBus address 1Dh (the
 * NVMe-MI default) at 100 kHz; TCP 127.0.0.1:4420 over IPv4.
 */
void nvemu_port_params_init(struct nvemu_port_params *p, enum nvemu_port_type type);
int nvemu_subsys_add_port(struct nvemu_subsys *subsys, const struct nvemu_port_params *p,
			  uint16_t *port_id, struct nvemu_error *err);
/* Refused (-EBUSY) while a controller is bound to the port. */
int nvemu_subsys_remove_port(struct nvemu_subsys *subsys, uint16_t port_id,
			     struct nvemu_error *err);

/* ---- controllers */

struct nvemu_ctrl_params {
	uint16_t cntlid; /* 0: the lowest free id >= 1 */
	uint16_t port_id;
	uint16_t num_io_queues;	    /* 1..NVEMU_MAX_IO_QUEUES */
	uint8_t mdts;		    /* log2 of max transfer in 4 KiB units, 1..7 */
	uint16_t max_queue_entries; /* MQES+1, 2..4096 */
	uint8_t fw_slots;	    /* 1..7 */
	bool write_zeroes;
	bool compare;
	bool compare_write; /* fused compare-and-write */
	bool dsm;	    /* Dataset Management (deallocate) */
	bool admin_only;
	uint8_t aerl; /* AERL: up to aerl+1 outstanding AERs */
};

#define NVEMU_MAX_IO_QUEUES 1023

void nvemu_ctrl_params_init(struct nvemu_ctrl_params *p);
int nvemu_subsys_add_ctrl_ex(struct nvemu_subsys *subsys, const struct nvemu_ctrl_params *p,
			     uint16_t *cntlid, struct nvemu_error *err);
/* Shorthand: a controller with the default parameters on port_id. */
int nvemu_subsys_add_ctrl(struct nvemu_subsys *subsys, uint16_t port_id, uint16_t *cntlid,
			  struct nvemu_error *err);
/*
 * Never blocks and never frees a controller a command still uses: -EBUSY
 * while commands are in flight (nvemu_ctrl_inflight(), which counts the
 * flushes of a shutdown too). The teardown sequence is: suspend it
 * (nvemu_ctrl_suspend()), after a timeout nvemu_ctrl_abort_inflight(), wait
 * with nvemu_ctrl_when_idle(), unbind the transport, then remove it. Its
 * outstanding AERs and the commands the suspend held complete first
 * through their done() callbacks (Command Aborted due to SQ Deletion), so
 * the transport's requests must still be valid when this is called.
 */
int nvemu_subsys_remove_ctrl(struct nvemu_subsys *subsys, uint16_t cntlid, struct nvemu_error *err);
struct nvemu_ctrl *nvemu_subsys_ctrl(struct nvemu_subsys *subsys, uint16_t cntlid);
uint16_t nvemu_ctrl_cntlid(const struct nvemu_ctrl *ctrl);
struct nvemu_subsys *nvemu_ctrl_subsys(struct nvemu_ctrl *ctrl);

/*
 * Attach and detach. On an enabled controller both queue a Namespace
 * Attribute Changed event and add the NSID to its Changed Namespace List.
 * Detach is safe with commands in flight: new commands to the NSID see
 * Invalid Namespace, running ones finish on the namespace they hold.
 */
int nvemu_ctrl_attach_ns(struct nvemu_ctrl *ctrl, uint32_t nsid, struct nvemu_error *err);
int nvemu_ctrl_detach_ns(struct nvemu_ctrl *ctrl, uint32_t nsid, struct nvemu_error *err);
bool nvemu_ctrl_ns_attached(const struct nvemu_ctrl *ctrl, uint32_t nsid);

/* ---- namespaces */

struct nvemu_ns_params {
	uint32_t nsid;			     /* 0: the lowest free NSID */
	uint64_t nblocks;		     /* size in LBAs; 0 with a bdev: the bdev's size */
	uint8_t lbaf;			     /* index into the LBA formats: 0 = 512 B, 1 = 4 KiB */
	struct nvemu_bdev *bdev;	     /* NULL: a RAM bdev the namespace owns */
	bool has_nguid, has_eui64, has_uuid; /* false: generated */
	uint8_t nguid[16];
	uint8_t eui64[8];
	uint8_t uuid[16];
	uint32_t anagrpid;    /* ANA group, 1..NVEMU_ANAGRPMAX; 0: the NSID if it fits, else 1 */
	bool no_auto_visible; /* visible only to hosts given to nvemu_ns_add_host() */
};

/* LBA formats every namespace offers (no metadata). */
#define NVEMU_NUM_LBAF 2
uint32_t nvemu_lbaf_size(uint8_t lbaf); /* 0 for an unknown index */

void nvemu_ns_params_init(struct nvemu_ns_params *p);
int nvemu_subsys_add_ns_ex(struct nvemu_subsys *subsys, const struct nvemu_ns_params *p,
			   uint32_t *nsid, struct nvemu_error *err);
/* Shorthand: a RAM namespace of nblocks 512-byte blocks. */
int nvemu_subsys_add_ns(struct nvemu_subsys *subsys, uint64_t nblocks, uint32_t *nsid,
			struct nvemu_error *err);
/*
 * Refused (-EBUSY) while attached to a controller. Never blocks: the NSID
 * is free (and new commands see Invalid Namespace) at once, while every
 * command that uses the namespace (I/O, Copy, DSM, a Flush or Format of
 * all namespaces, a shutdown's flush) keeps it until it completes. The
 * memory, the bdev's users count and a bdev the namespace owns go with the
 * last of them; a registered bdev can be destroyed only after that.
 */
int nvemu_subsys_remove_ns(struct nvemu_subsys *subsys, uint32_t nsid, struct nvemu_error *err);
int nvemu_subsys_resize_ns(struct nvemu_subsys *subsys, uint32_t nsid, uint64_t nblocks,
			   struct nvemu_error *err);
struct nvemu_ns *nvemu_subsys_ns(struct nvemu_subsys *subsys, uint32_t nsid);

/* ---- health, shared by the SMART log and NVMe-MI health polls */

struct nvemu_health {
	uint16_t temperature_k; /* composite temperature, Kelvin */
	uint8_t avail_spare;	/* percent */
	uint8_t spare_thresh;	/* percent */
	uint8_t percent_used;
	uint8_t critical_warning; /* bits the user injected (NVME_SMART_CRIT_*) */
};

void nvemu_subsys_get_health(struct nvemu_subsys *subsys, struct nvemu_health *h);
/*
 * Sets the values; crossing a controller's temperature thresholds or
 * setting critical warnings raises SMART/Health events on every controller.
 */
int nvemu_subsys_set_health(struct nvemu_subsys *subsys, const struct nvemu_health *h,
			    struct nvemu_error *err);

/*
 * ---- Asymmetric Namespace Access (ana.c). Each port holds one ANA state
 * per ANA group; a namespace belongs to one group. With ANA reporting on,
 * controllers report CMIC bit 3, the ANA log page (0Ch) and ANA change
 * events, and I/O through a port whose state for the namespace's group is
 * inaccessible, persistent loss or change fails with the Path Related
 * status; admin commands are not affected.
 */
#define NVEMU_ANAGRPMAX 32
#define NVEMU_ANATT_S	10 /* ANA Transition Time the controllers report, seconds */

enum nvemu_ana_state {
	NVEMU_ANA_OPTIMIZED = 0x1,
	NVEMU_ANA_NON_OPTIMIZED = 0x2,
	NVEMU_ANA_INACCESSIBLE = 0x3,
	NVEMU_ANA_PERSISTENT_LOSS = 0x4,
	NVEMU_ANA_CHANGE = 0xf,
};

/* "optimized", "non_optimized", "inaccessible", "persistent_loss", "change" (SPDK's names). */
const char *nvemu_ana_state_name(enum nvemu_ana_state st);
int nvemu_ana_state_parse(const char *name, enum nvemu_ana_state *st);
/* Refused (-EBUSY) while the subsystem has controllers: hosts read CMIC once. */
int nvemu_subsys_set_ana_reporting(struct nvemu_subsys *subsys, bool on, struct nvemu_error *err);
bool nvemu_subsys_ana_reporting(const struct nvemu_subsys *subsys);
/*
 * Set port_id's state for ANA group anagrpid (0: every group). Needs ANA
 * reporting (-EPERM). A change raises the ANA Change notice on the
 * controllers of that port.
 */
int nvemu_port_set_ana_state(struct nvemu_subsys *subsys, uint16_t port_id, uint32_t anagrpid,
			     enum nvemu_ana_state st, struct nvemu_error *err);
/* Optimized until set; -ENOENT for an unknown port or group. */
int nvemu_port_get_ana_state(struct nvemu_subsys *subsys, uint16_t port_id, uint32_t anagrpid,
			     enum nvemu_ana_state *st);
/* The namespace's ANA group ID, 0 if there is no such namespace. */
uint32_t nvemu_ns_anagrpid(struct nvemu_subsys *subsys, uint32_t nsid);

/*
 * ---- per-host namespace masking (ana.c). A namespace created with
 * no_auto_visible is visible only to the host NQNs added here; controllers
 * with a host NQN (fabrics associations) never have an invisible namespace
 * attached. Adding or removing a host attaches or detaches the namespace on
 * that host's controllers, which raises Namespace Attribute Changed there.
 * Controllers without a host NQN (PCIe, named) are not masked.
 */
#define NVEMU_NS_HOSTS_MAX 64
int nvemu_ns_add_host(struct nvemu_subsys *subsys, uint32_t nsid, const char *hostnqn,
		      struct nvemu_error *err);
int nvemu_ns_remove_host(struct nvemu_subsys *subsys, uint32_t nsid, const char *hostnqn,
			 struct nvemu_error *err);
/* The idx-th host of nsid's list, NULL past the end. */
const char *nvemu_ns_get_host(struct nvemu_subsys *subsys, uint32_t nsid, unsigned idx);
bool nvemu_ns_auto_visible(struct nvemu_subsys *subsys, uint32_t nsid);
/* Whether a host with this NQN sees nsid ("" or NULL: a host without an NQN). */
bool nvemu_ns_visible(struct nvemu_subsys *subsys, uint32_t nsid, const char *hostnqn);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The admin command forwarding protocol (docs/admin-forwarding.md): nvemud
 * hands selected Identify and Set Features commands to an application that
 * listens on a unix stream socket, and waits (without blocking) for its
 * answer. Every integer is little endian; messages follow each other on
 * the stream with no padding.
 *
 *   request  (nvemud -> application): hdr, nvemu_fwd_request, data
 *   reply    (application -> nvemud): hdr, nvemu_fwd_reply, data
 *
 * hdr.len counts the bytes after the header. A request's data is, for
 * Identify, nvemu's own answer (4096 bytes; data_len 0 when local_status
 * is an error) and, for Set Features, the data the host sent with the
 * command (0 to 4096 bytes). A reply's data is the Identify data the
 * host gets: exactly 4096 bytes with status 0, none otherwise; a Set
 * Features reply carries none.
 */
#ifndef NVEMU_ADMIN_FWD_H
#define NVEMU_ADMIN_FWD_H

#include <stdint.h>

#define NVEMU_FWD_MAGIC	     0x5746564eu /* "NVFW" */
#define NVEMU_FWD_VERSION    1
#define NVEMU_FWD_REQUEST    1
#define NVEMU_FWD_REPLY	     2
#define NVEMU_FWD_DATA_MAX   4096
#define NVEMU_FWD_CTRL_NAME  32
/* reply.flags: let nvemu answer as it would without forwarding. */
#define NVEMU_FWD_F_FALLBACK 0x1u

struct nvemu_fwd_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t tag; /* a reply carries its request's */
	uint32_t len;
} __attribute__((packed));

struct nvemu_fwd_request {
	char ctrl[NVEMU_FWD_CTRL_NAME]; /* controller name, NUL-padded */
	uint16_t cntlid;
	uint16_t local_status; /* Identify: nvemu's own status (libnvme encoding) */
	uint32_t data_len;
	uint8_t sqe[64]; /* the command as the host wrote it */
} __attribute__((packed));

struct nvemu_fwd_reply {
	/* The completion's Status Field: SC 7:0, SCT 10:8, CRD 12:11, M 13, DNR 14; bit 15 0. */
	uint16_t status;
	uint16_t flags;
	uint32_t dw0;
	uint32_t dw1;
	uint32_t data_len;
} __attribute__((packed));

_Static_assert(sizeof(struct nvemu_fwd_hdr) == 16, "forwarding header is 16 bytes");
_Static_assert(sizeof(struct nvemu_fwd_request) == 104, "request body is 104 bytes");
_Static_assert(sizeof(struct nvemu_fwd_reply) == 16, "reply body is 16 bytes");

#endif

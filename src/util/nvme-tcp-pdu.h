/* SPDX-License-Identifier: MIT */
/*
 * NVMe/TCP wire format (NVMe/TCP Transport Specification 1.0): PDU types,
 * flags, TermReq status and layouts, shared by the target
 * (src/transport/tcp) and the host driver (src/driver/tcp*.c).
 */
#ifndef NVEMU_UTIL_NVME_TCP_PDU_H
#define NVEMU_UTIL_NVME_TCP_PDU_H

#include <stdint.h>

enum {
	TCP_PDU_ICREQ = 0x00,
	TCP_PDU_ICRESP = 0x01,
	TCP_PDU_H2C_TERM = 0x02,
	TCP_PDU_C2H_TERM = 0x03,
	TCP_PDU_CMD = 0x04,
	TCP_PDU_RSP = 0x05,
	TCP_PDU_H2C_DATA = 0x06,
	TCP_PDU_C2H_DATA = 0x07,
	TCP_PDU_R2T = 0x09,
};

enum {
	TCP_F_HDGST = 1 << 0,
	TCP_F_DDGST = 1 << 1,
	TCP_F_LAST = 1 << 2,
	TCP_F_SUCCESS = 1 << 3,
};

/* Fatal Error Status of a TermReq */
enum {
	TCP_FES_INVALID_HDR = 0x01,
	TCP_FES_PDU_SEQ = 0x02,
	TCP_FES_HDR_DIGEST = 0x03,
	TCP_FES_OUT_OF_RANGE = 0x04,
	TCP_FES_LIMIT_EXCEEDED = 0x05,
	TCP_FES_UNSUPPORTED = 0x06,
};

struct tcp_ch {
	uint8_t type;
	uint8_t flags;
	uint8_t hlen;
	uint8_t pdo;
	uint32_t plen;
} __attribute__((packed));

struct tcp_icreq {
	struct tcp_ch ch;
	uint16_t pfv;
	uint8_t hpda;
	uint8_t digest; /* bit 0 HDGST_ENABLE, bit 1 DDGST_ENABLE */
	uint32_t maxr2t;
	uint8_t rsvd[112];
} __attribute__((packed));

struct tcp_icresp {
	struct tcp_ch ch;
	uint16_t pfv;
	uint8_t cpda;
	uint8_t digest;
	uint32_t maxh2cdata;
	uint8_t rsvd[112];
} __attribute__((packed));

struct tcp_cmd_pdu {
	struct tcp_ch ch;
	uint8_t sqe[64];
} __attribute__((packed));

struct tcp_rsp_pdu {
	struct tcp_ch ch;
	uint8_t cqe[16];
} __attribute__((packed));

/* H2CData and C2HData (ttag reserved in C2H) */
struct tcp_data_pdu {
	struct tcp_ch ch;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t datao;
	uint32_t datal;
	uint32_t rsvd;
} __attribute__((packed));

struct tcp_r2t_pdu {
	struct tcp_ch ch;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t r2to;
	uint32_t r2tl;
	uint32_t rsvd;
} __attribute__((packed));

struct tcp_term_pdu {
	struct tcp_ch ch;
	uint16_t fes;
	uint32_t fei;
	uint8_t rsvd[10];
} __attribute__((packed));

_Static_assert(sizeof(struct tcp_icreq) == 128, "ICReq");
_Static_assert(sizeof(struct tcp_icresp) == 128, "ICResp");
_Static_assert(sizeof(struct tcp_cmd_pdu) == 72, "CapsuleCmd");
_Static_assert(sizeof(struct tcp_rsp_pdu) == 24, "CapsuleResp");
_Static_assert(sizeof(struct tcp_data_pdu) == 24, "Data");
_Static_assert(sizeof(struct tcp_r2t_pdu) == 24, "R2T");
_Static_assert(sizeof(struct tcp_term_pdu) == 24, "TermReq");

#define TCP_TERM_MAX_PLEN 152	  /* a TermReq: header plus the offending PDU header */
#define TCP_SGL_INCAPSULE 0x01 /* Data Block, Offset subtype: in-capsule data */
#define TCP_SGL_TRANSPORT 0x5a /* Transport Data Block, transport specific: R2T / C2HData */

#endif

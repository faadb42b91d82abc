/* SPDX-License-Identifier: MIT */
/*
 * The NVMe/TCP host transport's queue state and PDU receive machine,
 * shared by tcp.c (sockets, Connect, properties) and tcp-rx.c (parsing
 * what the target sends), and used directly by the unit test and fuzzer.
 */
#ifndef NVEMU_DRIVER_TCP_PDU_H
#define NVEMU_DRIVER_TCP_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver/driver-internal.h"
#include "util/nvme-tcp-pdu.h"

#define HT_CH_LEN    8
#define HT_HDR_MAX   160
#define HT_ADMIN_ICD 8192u	/* in-capsule data on the admin queue */
#define HT_MAX_XFER  (1u << 20) /* largest data transfer of one command */
/* Unsent bytes a queue holds before new commands wait (a target that stops reading). */
#define HT_TX_MAX     (4u << 20)
#define HT_RXBUF      (64u << 10)

enum ht_rx { HT_RX_CH, HT_RX_HDR, HT_RX_PAD, HT_RX_DATA, HT_RX_DDGST };

struct tcp_hq {
	struct nvemu_drv_qpair *qp;
	int fd; /* -1: none (tests and the fuzzer feed bytes directly) */
	bool ic_done;
	bool dead;
	bool hdgst, ddgst; /* negotiated */
	uint8_t cpda;
	uint32_t maxh2cdata;
	uint32_t icd; /* in-capsule data bytes this queue takes */

	enum ht_rx rx;
	uint8_t hdr[HT_HDR_MAX];
	uint32_t hdr_got, hdr_need;
	uint32_t pad_left;
	uint8_t *data_dst;
	uint32_t data_left;
	uint32_t crc;
	uint8_t ddgst_buf[4];
	uint32_t ddgst_got;
	struct drv_req *rx_req; /* C2HData being received */
	uint32_t rx_datal;
	uint8_t rx_flags;
	unsigned completions; /* reaped during this process() */
	char err[128];	      /* why the queue died */

	uint8_t *rxbuf;
	uint8_t *tx;
	size_t tx_len, tx_off, tx_cap;
};

/* tcp-rx.c */
/*
 * Feed bytes received from the target. Returns 0, or -EPROTO / -EBADMSG
 * (digest) / -ECONNRESET (C2HTermReq) with hq->err set: the queue is dead.
 */
int ht_rx_feed(struct tcp_hq *hq, const uint8_t *buf, size_t len);

/* tcp.c */
/* Queue bytes for the target (not sent yet); -ENOMEM. */
int ht_tx_append(struct tcp_hq *hq, const void *buf, size_t len);
/* PDU data offset for a header of hlen bytes: header digest and CPDA alignment. */
uint32_t ht_pdo(const struct tcp_hq *hq, uint32_t hlen);
/* Queue the H2CData PDUs for one R2T. */
int ht_send_h2c(struct tcp_hq *hq, struct drv_req *req, uint16_t ttag, uint32_t off, uint32_t len);
/* A queue state with no socket, for tests and the fuzzer (free with ht_hq_free). */
struct tcp_hq *ht_hq_new(struct nvemu_drv_qpair *qp);
void ht_hq_free(struct tcp_hq *hq);

#endif

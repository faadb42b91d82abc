/* SPDX-License-Identifier: MIT */
/*
 * MCTP (DMTF DSP0236) endpoint, serial binding (DSP0253) and the userspace
 * AF_MCTP router that the preload library (libnvemu-mctp-preload.so) talks to.
 *
 * An endpoint receives packets from any number of links (the router, a serial
 * line); it reassembles messages per (source EID, tag, tag owner), answers the
 * control messages (type 0) itself and hands other message types to the
 * registered handlers. A reply goes back, fragmented with the endpoint's
 * transmission unit, on the link the request came from.
 *
 * Nothing here is thread safe: run it from one event loop.
 */
#ifndef NVEMU_MCTP_H
#define NVEMU_MCTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nvemu/error.h>

#define NVEMU_MCTP_HDR_VERSION 1
#define NVEMU_MCTP_HDR_LEN     4
/* Baseline transmission unit: packet payload bytes after the header. */
#define NVEMU_MCTP_BTU 64
/* Largest transmission unit accepted by nvemu_mctp_ep_set_mtu(). */
#define NVEMU_MCTP_MAX_MTU 4096
/* Largest message (type byte included) reassembled or sent; fits NVMe-MI. */
#define NVEMU_MCTP_MAX_MSG 8192

/* Header byte 3. */
#define NVEMU_MCTP_HDR_SOM	 0x80
#define NVEMU_MCTP_HDR_EOM	 0x40
#define NVEMU_MCTP_HDR_SEQ_SHIFT 4
#define NVEMU_MCTP_HDR_SEQ_MASK	 0x3
#define NVEMU_MCTP_HDR_TO	 0x08
#define NVEMU_MCTP_HDR_TAG_MASK	 0x07

#define NVEMU_MCTP_EID_NULL  0x00
#define NVEMU_MCTP_EID_BCAST 0xff

#define NVEMU_MCTP_TYPE_CONTROL 0x00
#define NVEMU_MCTP_TYPE_NVME_MI 0x04
#define NVEMU_MCTP_TYPE_IC	0x80 /* integrity check bit of the type byte */

/* Control message commands and completion codes (DSP0236 table 12/13). */
#define NVEMU_MCTP_CTRL_SET_EID	      0x01
#define NVEMU_MCTP_CTRL_GET_EID	      0x02
#define NVEMU_MCTP_CTRL_GET_UUID      0x03
#define NVEMU_MCTP_CTRL_GET_VERSION   0x04
#define NVEMU_MCTP_CTRL_GET_MSG_TYPES 0x05

#define NVEMU_MCTP_CC_SUCCESS	       0x00
#define NVEMU_MCTP_CC_ERROR	       0x01
#define NVEMU_MCTP_CC_INVALID_DATA     0x02
#define NVEMU_MCTP_CC_INVALID_LENGTH   0x03
#define NVEMU_MCTP_CC_NOT_READY	       0x04
#define NVEMU_MCTP_CC_UNSUPPORTED_CMD  0x05
#define NVEMU_MCTP_CC_TYPE_UNSUPPORTED 0x80 /* Get MCTP Version Support */

/*
 * Where packets go out. tx_packet gets one whole packet (4-byte header and
 * payload) and returns 0 or a negative errno; a link must stay valid while
 * an endpoint may use it, see nvemu_mctp_ep_link_gone().
 */
struct nvemu_mctp_link {
	int (*tx_packet)(void *ctx, const uint8_t *pkt, size_t len);
	void *ctx;
	unsigned int max_payload; /* binding limit on packet payload, 0: none */
};

struct nvemu_mctp_ep;
struct nvemu_mctp_reply;

/*
 * A message handler: msg starts with the type byte (IC bit included) and
 * holds the whole reassembled message. The handler must complete reply
 * exactly once, now or later: nvemu_mctp_reply_send() or
 * nvemu_mctp_reply_drop() (a message the spec says to drop, e.g. bad MIC).
 */
typedef void (*nvemu_mctp_msg_fn)(void *ctx, const uint8_t *msg, size_t len,
				  struct nvemu_mctp_reply *reply);

struct nvemu_mctp_ep_params {
	unsigned int net; /* network id, for the router (default 1) */
	uint8_t eid;	  /* 0: none yet, a bus owner assigns one */
	uint8_t uuid[16]; /* all zero: a random one is generated */
	unsigned int mtu; /* transmission unit, 0: NVEMU_MCTP_BTU */
};

struct nvemu_mctp_ep_stats {
	uint64_t rx_packets, rx_messages, tx_packets, tx_messages;
	uint64_t drop_header; /* bad version, length or destination */
	uint64_t drop_seq;    /* out-of-sequence packet, reassembly abandoned */
	uint64_t drop_tag;    /* middle/end packet without a started message, or a response */
	uint64_t drop_size;   /* message over NVEMU_MCTP_MAX_MSG */
	uint64_t drop_type;   /* no handler for the message type */
	uint64_t drop_busy;   /* too many replies outstanding, or every reassembly slot busy */
};

void nvemu_mctp_ep_params_init(struct nvemu_mctp_ep_params *p);
int nvemu_mctp_ep_create(const struct nvemu_mctp_ep_params *p, struct nvemu_mctp_ep **out,
			 struct nvemu_error *err);
/* Outstanding replies are discarded; handlers must not complete them later. */
void nvemu_mctp_ep_destroy(struct nvemu_mctp_ep *ep);

unsigned int nvemu_mctp_ep_net(const struct nvemu_mctp_ep *ep);
uint8_t nvemu_mctp_ep_eid(const struct nvemu_mctp_ep *ep);
const uint8_t *nvemu_mctp_ep_uuid(const struct nvemu_mctp_ep *ep);
unsigned int nvemu_mctp_ep_mtu(const struct nvemu_mctp_ep *ep);
void nvemu_mctp_ep_set_net(struct nvemu_mctp_ep *ep, unsigned int net);
/* EID 0xff is not an endpoint address: -EINVAL. 0 unassigns. */
int nvemu_mctp_ep_set_eid(struct nvemu_mctp_ep *ep, uint8_t eid, struct nvemu_error *err);
/* NVEMU_MCTP_BTU..NVEMU_MCTP_MAX_MTU (NVMe-MI Configuration Set, MCTP TU size). */
int nvemu_mctp_ep_set_mtu(struct nvemu_mctp_ep *ep, unsigned int mtu, struct nvemu_error *err);
const struct nvemu_mctp_ep_stats *nvemu_mctp_ep_stats(const struct nvemu_mctp_ep *ep);

/* type: 1..0x7f (0 is answered internally). fn NULL removes the handler. */
int nvemu_mctp_ep_set_handler(struct nvemu_mctp_ep *ep, uint8_t type, nvemu_mctp_msg_fn fn,
			      void *ctx);

/*
 * Serve NVMe-MI (message type 4) from mi: answers, drops per the MI rules,
 * and follows the MI Configuration Set of the MCTP transmission unit. mi NULL
 * detaches. The MI endpoint must be detached or outlive this endpoint.
 */
struct nvemu_mi_ep;
int nvemu_mctp_ep_attach_mi(struct nvemu_mctp_ep *ep, struct nvemu_mi_ep *mi,
			    struct nvemu_error *err);

/* One packet from link. Invalid packets are counted and dropped. */
void nvemu_mctp_ep_rx(struct nvemu_mctp_ep *ep, const struct nvemu_mctp_link *link,
		      const uint8_t *pkt, size_t len);
/* The link goes away: replies still due on it are sent nowhere. */
void nvemu_mctp_ep_link_gone(struct nvemu_mctp_ep *ep, const struct nvemu_mctp_link *link);

/* msg starts with the type byte. Frees reply. 0 or a negative errno. */
int nvemu_mctp_reply_send(struct nvemu_mctp_reply *reply, const uint8_t *msg, size_t len);
void nvemu_mctp_reply_drop(struct nvemu_mctp_reply *reply);

/*
 * Packet helpers, also used by the router. nvemu_mctp_fragment() splits msg
 * into packets of at most mtu payload bytes; flags holds TO and tag.
 */
int nvemu_mctp_fragment(uint8_t dest, uint8_t src, uint8_t flags, const uint8_t *msg, size_t len,
			unsigned int mtu, const struct nvemu_mctp_link *link);

/* ---- DSP0253 serial binding ---- */

#define NVEMU_MCTP_SERIAL_REV  0x01
#define NVEMU_MCTP_SERIAL_FLAG 0x7e
#define NVEMU_MCTP_SERIAL_ESC  0x7d
/* Linux's mctp-serial limit: baseline MTU plus the header. */
#define NVEMU_MCTP_SERIAL_MAX_PKT (NVEMU_MCTP_BTU + NVEMU_MCTP_HDR_LEN)
/* 7E 01 count, every packet byte escaped, FCS hi lo, 7E. */
#define NVEMU_MCTP_SERIAL_MAX_FRAME (3 + 2 * 255 + 3)

/* FCS-16 as Linux computes it: crc_ccitt, reflected 0x8408, no final inversion. */
uint16_t nvemu_mctp_fcs16(uint16_t fcs, const uint8_t *buf, size_t len);
/*
 * Encode one packet (1..125 bytes: the count goes out unescaped as Linux
 * sends it, so 126 would read as a flag) into out; returns the frame length
 * or -EINVAL/-ENOSPC.
 */
#define NVEMU_MCTP_SERIAL_MAX_ENC 125
int nvemu_mctp_serial_encode(const uint8_t *pkt, size_t len, uint8_t *out, size_t out_len);

/* Streaming decoder: feed bytes, get whole packets; resyncs on 0x7E. */
struct nvemu_mctp_serial_dec {
	int state;
	uint8_t esc;
	uint16_t fcs, fcs_rx;
	size_t len, pos;
	uint8_t buf[255];
	uint64_t frames, bad_fcs, bad_frame;
};

void nvemu_mctp_serial_dec_init(struct nvemu_mctp_serial_dec *d);
/*
 * Feed len bytes; pkt_cb is called for every good frame. Returns the number
 * of packets delivered.
 */
int nvemu_mctp_serial_dec_feed(struct nvemu_mctp_serial_dec *d, const uint8_t *buf, size_t len,
			       void (*pkt_cb)(void *ctx, const uint8_t *pkt, size_t len),
			       void *ctx);

/*
 * A serial line (pty, unix or TCP socket, any stream fd) carrying one
 * endpoint. The fd belongs to the caller; make it non-blocking and call
 * nvemu_mctp_serial_handle() when it is readable. Responses are written with
 * blocking retries on EAGAIN, bounded by a short poll (1 s); after such a
 * timeout packets are dropped at once until the peer drains the line.
 */
struct nvemu_mctp_serial;

int nvemu_mctp_serial_create(int fd, struct nvemu_mctp_ep *ep, struct nvemu_mctp_serial **out,
			     struct nvemu_error *err);
void nvemu_mctp_serial_destroy(struct nvemu_mctp_serial *s);
int nvemu_mctp_serial_fd(const struct nvemu_mctp_serial *s);
/* Reads what is there: 0, -EPIPE at end of file, or another negative errno. */
int nvemu_mctp_serial_handle(struct nvemu_mctp_serial *s);
/* Send one packet as a frame (a link tx_packet; also the requester side in tests). */
int nvemu_mctp_serial_tx_packet(void *serial, const uint8_t *pkt, size_t len);
const struct nvemu_mctp_serial_dec *nvemu_mctp_serial_decoder(const struct nvemu_mctp_serial *s);

/* ---- Userspace AF_MCTP router (the preload library's other end) ---- */

#define NVEMU_MCTP_SOCKET_DEFAULT   "/var/tmp/nvemu-mctp.sock"
#define NVEMU_MCTP_ROUTER_LOCAL_EID 8

/*
 * Wire format between libnvemu-mctp-preload.so and the router, one per
 * SOCK_SEQPACKET message, followed by the message body (type byte excluded,
 * as AF_MCTP carries it in the address). Host byte order: same machine.
 */
enum {
	NVEMU_MCTP_WIRE_SEND = 1,    /* client -> router: a message to (net, eid) */
	NVEMU_MCTP_WIRE_RECV = 2,    /* router -> client: a message from (net, eid) */
	NVEMU_MCTP_WIRE_BIND = 3,    /* client -> router: receive requests of a type */
	NVEMU_MCTP_WIRE_DROPTAG = 4, /* client -> router: SIOCMCTPDROPTAG */
	/*
	 * client -> router: the descriptor (SCM_RIGHTS) of a SOCK_SEQPACKET
	 * socket on which the router answers every later tag-owner SEND
	 * with a SEND_RESULT, so that sendmsg() can fail as the kernel's does.
	 */
	NVEMU_MCTP_WIRE_HELLO = 5,
	/* router -> client (on the HELLO socket): net = 0 or a positive errno (EAGAIN). */
	NVEMU_MCTP_WIRE_SEND_RESULT = 6,
};

struct nvemu_mctp_wire {
	uint8_t op;
	uint8_t type; /* message type byte, IC bit included */
	uint8_t eid;  /* destination (SEND/BIND/DROPTAG) or source (RECV) */
	uint8_t tag;  /* AF_MCTP smctp_tag: TO 0x08, PREALLOC 0x10 */
	uint32_t net;
};

struct nvemu_mctp_router;

/*
 * Listen on a unix SOCK_SEQPACKET socket at path, mode 0600 whatever the
 * umask. A socket file nobody serves is replaced; a live one is refused with
 * -EADDRINUSE, any other file with -EEXIST. At most 64 clients are connected
 * at once; more are closed at once. Everything the router does happens in
 * nvemu_mctp_router_handle(), called when nvemu_mctp_router_fd() (an epoll fd)
 * is readable.
 */
int nvemu_mctp_router_create(const char *path, struct nvemu_mctp_router **out,
			     struct nvemu_error *err);
void nvemu_mctp_router_destroy(struct nvemu_mctp_router *r);
int nvemu_mctp_router_fd(const struct nvemu_mctp_router *r);
/* Process pending client traffic without blocking; returns events handled or -errno. */
int nvemu_mctp_router_handle(struct nvemu_mctp_router *r);
/* The EID preload clients send from (default NVEMU_MCTP_ROUTER_LOCAL_EID). */
void nvemu_mctp_router_set_local_eid(struct nvemu_mctp_router *r, uint8_t eid);
/*
 * Route (nvemu_mctp_ep_net(ep), nvemu_mctp_ep_eid(ep)) to ep, looked up per
 * message so a Set Endpoint ID takes effect at once.
 */
int nvemu_mctp_router_add_ep(struct nvemu_mctp_router *r, struct nvemu_mctp_ep *ep,
			     struct nvemu_error *err);
void nvemu_mctp_router_remove_ep(struct nvemu_mctp_router *r, struct nvemu_mctp_ep *ep);
unsigned int nvemu_mctp_router_clients(const struct nvemu_mctp_router *r);

#endif

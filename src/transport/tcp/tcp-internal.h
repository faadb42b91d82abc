/* SPDX-License-Identifier: MIT */
/* NVMe/TCP target internals: connections, associations (PDU layouts: util/nvme-tcp-pdu.h). */
#ifndef NVEMU_TCP_INTERNAL_H
#define NVEMU_TCP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <openssl/ssl.h>

#include "engine/auth.h"
#include "engine/nvemu-internal.h"
#include "util/nvme-tcp-pdu.h"
#include <nvemu/tcp.h>

#define TCP_IN_CAPSULE_MAX 8192u			    /* bytes of in-capsule data */
#define TCP_IOCCSZ	   ((64 + TCP_IN_CAPSULE_MAX) / 16) /* in 16-byte units */
#define TCP_MAX_DATA	   (2u << 20) /* largest data transfer of one command */
#define TCP_ADMIN_DEPTH	   32
#define TCP_MAX_SLOTS	   256
#define TCP_STASH_MAX	   (128u << 10) /* bytes held back while a queue is paused */

/* ---- objects */

#define TCP_POOL_MAX	32		       /* idle large buffers kept per queue */
#define TCP_BUF_IDLE_NS (2000ull * 1000000ull) /* idle large buffers freed after */
#define TCP_BUF_ALIGN	4096u		       /* data buffers: O_DIRECT needs no bounce */

struct tcp_buf {
	uint8_t *p;
	uint32_t cap;
};

struct tcp_conn;
struct tcp_assoc;

struct tcp_listener {
	bool secure; /* TLS 1.3 (secure_channel): every connection starts with the handshake */
	char traddr[64];
	char trsvcid[32];
	uint8_t adrfam;
	int fd;
	void *h;
	unsigned refs; /* subsystems listening here */
	struct nvemu_tcp_target *t;
	/* accept() out of descriptors or memory: not polled until resume_ns */
	uint64_t resume_ns;
	unsigned backoff_ms;
};

struct tcp_sub_listener {
	struct tcp_listener *l;
	uint16_t port_id;
};

#define TCP_PSK_MAX 48

/* A configured TLS PSK (PSK interchange format). */
struct tcp_psk {
	uint8_t hash; /* 1: SHA-256, 2: SHA-384 */
	uint8_t len;  /* 32 or 48; 0: none */
	uint8_t key[TCP_PSK_MAX];
};

/* An allowed host; with a DH-HMAC-CHAP secret its queues must authenticate. */
struct tcp_host {
	struct tcp_psk psk; /* for secure_channel listeners */
	char *psk_name;
	char *nqn;
	struct nvemu_dhchap_key key;	  /* len 0: none */
	struct nvemu_dhchap_key ctrl_key; /* len 0: unidirectional only */
	char *key_name, *ctrl_key_name;	  /* the control plane's names for them */
};

struct tcp_subsys {
	struct nvemu_subsys *s;
	bool allow_any;
	struct tcp_host *hosts;
	unsigned nr_hosts;
	struct tcp_sub_listener *ls;
	unsigned nr_ls;
	uint16_t *dead_ports; /* removed listeners whose port still has a controller */
	unsigned nr_dead_ports;
};

/* CMD_WAIT: parsed and valid, waiting until the queue may hold its data buffer. */
enum cmd_state { CMD_FREE, CMD_RX, CMD_WAIT, CMD_H2C, CMD_ENGINE, CMD_TX };

struct tcp_cmd {
	struct nvemu_req req;
	struct tcp_conn *conn;
	uint16_t idx; /* also the transfer tag */
	enum cmd_state st;
	uint8_t *buf;
	uint32_t cap;	  /* allocated */
	uint32_t len;	  /* SGL length */
	uint32_t rcvd;	  /* H2C bytes received */
	uint32_t r2t_end; /* end of the outstanding R2T */
	uint16_t status;  /* set when the data phase failed */
	unsigned tx_refs; /* queued PDUs that point into buf */
	uint32_t counted; /* bytes of buf counted in the queue's buf_bytes */
	uint64_t data_ns; /* last R2T sent or H2CData received */
	SLIST_ENTRY(tcp_cmd) free_link;
	TAILQ_ENTRY(tcp_cmd) wait_link; /* CMD_WAIT: the queue's waiting list */
};

struct tx_item {
	STAILQ_ENTRY(tx_item) link;
	uint32_t hdr_len;
	uint32_t data_len;
	uint32_t tail_len; /* data digest */
	uint32_t off;	   /* bytes already sent */
	uint32_t counted;  /* bytes counted in the connection's tx_bytes */
	const uint8_t *data;
	struct tcp_cmd *cmd; /* released when sent */
	uint8_t tail[4];
	uint8_t hdr[160];
};

enum conn_state { CONN_IC, CONN_LIVE, CONN_DRAIN, CONN_CLOSED };
enum rx_state { RX_CH, RX_HDR, RX_PAD, RX_DATA, RX_DDGST, RX_TERM };

struct tcp_conn {
	struct nvemu_tcp_target *t;
	LIST_ENTRY(tcp_conn) link; /* the target's connections */
	struct tcp_listener *lst;  /* NULL: every subsystem (fuzzing) */
	int fd;
	void *h;
	/*
	 * The loop whose thread owns the socket and the receive and transmit
	 * state: t->loop, or a reactor's for an I/O queue (ops->queue_loop).
	 * Other threads change what it owns only through messages: a flush or
	 * kick becomes kick_msg, a close close_msg (the state turns CLOSED at
	 * once, the socket and buffers are let go by the owner).
	 */
	void *loop;
	void *move_to;	   /* set by Connect: the loop to move to after this event */
	void *queue_loop;  /* what ops->queue_loop answered (ops->queue_put on free) */
	bool io_top;	   /* in the owner's fd callback, nothing nested: may unlock */
	bool kick_posted, close_posted, adopt_posted;
	struct nvemu_tcp_msg kick_msg, close_msg, adopt_msg;
	uint32_t events;
	enum conn_state state;
	char peer[80];

	/* negotiated by ICReq */
	bool hdgst, ddgst;
	uint8_t hpda;
	uint32_t maxh2cdata;

	/* receive path */
	enum rx_state rx;
	uint8_t hdr[160];
	uint32_t hdr_got, hdr_need;
	uint32_t pad_left;
	uint8_t *data_dst;
	uint32_t data_left;
	uint32_t data_crc;
	uint8_t ddgst_rx[4];
	uint32_t ddgst_got;
	struct tcp_cmd *rx_cmd; /* command whose data is arriving */
	uint32_t rx_datal;	/* data bytes of this PDU */
	uint64_t rx_start_ns;	/* a PDU started arriving */
	bool rx_big;		/* large PDU data streaming: read headers on their own */
	uint8_t term_buf[TCP_TERM_MAX_PLEN];
	uint64_t start_ns; /* accepted: ICReq and Connect are due within connect_timeout_ms */
	/*
	 * Backpressure on a host that does not read: no new capsule is parsed
	 * (nor the socket read) while paused. H2CData is never held back by a
	 * waiting command, only by a full transmit queue.
	 */
	bool rx_paused;
	bool ch_pending; /* paused with a capsule's common header in hdr */
	bool in_rx;
	bool kicking;
	/* Inside one received chunk: PDUs queue up and go in one sendmsg after it. */
	bool tx_batch;
	bool tx_flush_pending;
	uint8_t *stash; /* bytes read but not parsed while paused */
	uint32_t stash_len;
	/* Commands waiting for buffer room, in arrival order (no R2T sent yet). */
	TAILQ_HEAD(, tcp_cmd) waiting;
	uint32_t buf_bytes; /* data buffers held by the queue's commands */
	/*
	 * Large data buffers (over TCP_IN_CAPSULE_MAX, page aligned): bytes
	 * allocated, in use or idle in the pool; at most queue_buf_max plus
	 * the one command that may exceed it alone. Idle ones are reused by
	 * the next command (no page faults per large I/O) and freed after
	 * TCP_BUF_IDLE_NS without use.
	 */
	uint32_t big_bytes;
	struct tcp_buf pool[TCP_POOL_MAX];
	unsigned nr_pool;
	uint64_t pool_used_ns; /* last time a command took or returned a large buffer */
	size_t tx_bytes;    /* bytes queued for transmission */
	bool tx_lost;	    /* a PDU could not be queued: the connection must end */

	/*
	 * In-band authentication (DH-HMAC-CHAP): set at Connect when the host
	 * has a secret; until a transaction succeeds only Connect, AUTH_Send,
	 * AUTH_Receive and Disconnect run, for connect_timeout_ms at most.
	 */
	struct nvemu_auth *auth;
	uint64_t auth_start_ns;

	/* TLS (tls.c), on a secure_channel listener: the identity names who may Connect. */
	SSL *ssl;
	bool tls_done;
	char *tls_hostnqn, *tls_subnqn;

	/* queue */
	bool connected;
	bool disc;
	bool sqflow_off;
	/*
	 * The queue (qid, entries, SQ head): the engine's ctrl->sqs[qid] once
	 * Connect made it, disc_sq on a discovery controller, which the
	 * transport runs itself. NULL before Connect and once the association
	 * let go of the connection.
	 */
	struct nvemu_sq *sq;
	struct nvemu_sq disc_sq;
	int log_qid; /* the queue Connect made, -1 before: for messages after it is let go */
	struct tcp_assoc *assoc;
	struct tcp_cmd **cmds; /* slots by transfer tag, allocated on first use */
	unsigned nr_cmds;      /* 1 until Connect, then the queue's entries */
	SLIST_HEAD(, tcp_cmd) free_cmds;
	unsigned engine_inflight;

	/* discovery controller state */
	uint16_t disc_cntlid;
	uint32_t disc_cc, disc_csts;
	uint32_t kato_ms;
	uint64_t last_ka_ns;
	struct tcp_cmd *disc_aer;
	uint32_t disc_aec;     /* Asynchronous Event Configuration */
	bool disc_aen_pending; /* a log change not reported yet (no AER outstanding) */

	/* transmit path */
	STAILQ_HEAD(, tx_item) tx;
	/* Sent items kept for reuse (at most TX_FREE_MAX): no allocation per PDU. */
	STAILQ_HEAD(, tx_item) tx_free;
	unsigned nr_tx_free;
	unsigned in_cb; /* nesting of callbacks: not freed while > 0 */
	bool close_after_tx;
	uint64_t drain_start_ns;
};

struct tcp_assoc {
	LIST_ENTRY(tcp_assoc) link; /* the target's associations */
	struct nvemu_tcp_target *t;
	struct tcp_subsys *ts;
	/* Its controller: cntlid, port, host NQN and ID, KATO come from there. */
	struct nvemu_ctrl *ctrl;
	struct tcp_conn *admin;
	struct tcp_conn **io; /* index qid */
	uint16_t nr_io;
	bool dead;
};

struct nvemu_tcp_target {
	struct nvemu_tcp_target_params p;
	const struct nvemu_tcp_loop_ops *ops;
	void *loop;
	int epfd; /* built-in loop */
	uint64_t next_tick_ns;

	struct tcp_subsys *subs;
	unsigned nr_subs;
	struct tcp_listener **lst;
	unsigned nr_lst;
	SSL_CTX *tls_ctx; /* made with the first secure_channel listener */
	uint8_t dhchap_digests, dhchap_dhgroups; /* masks of IDs the target may choose */

	LIST_HEAD(, tcp_conn) conns;
	LIST_HEAD(, tcp_assoc) assocs;
	uint64_t genctr;
	uint16_t next_disc_cntlid;
	/* accept() failures: one log line per 10 s */
	uint64_t accept_log_ns;
	unsigned accept_suppressed;
};

/* target.c */
void tcp_log(struct nvemu_tcp_target *t, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* About a connection / an association: with their peer, host, controller and queue. */
void tcp_log_conn(struct tcp_conn *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tcp_log_assoc(struct tcp_assoc *a, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct tcp_subsys *tcp_find_subsys(struct nvemu_tcp_target *t, const struct nvemu_subsys *s);
void tcp_fd_mod(struct tcp_conn *c, uint32_t events);

/* Whether the command's data moves host to controller (Fabrics: by FCTYPE). */
static inline bool tcp_sqe_h2c(const struct nvemu_sqe *sqe)
{
	if (sqe->opc == nvme_admin_fabrics)
		return (sqe->nsid & 3) == 1;
	return sqe->opc & 1;
}

/* The queue must authenticate and has not (yet, or its last transaction failed). */
static inline bool tcp_conn_unauthenticated(const struct tcp_conn *c)
{
	return c->auth && nvemu_auth_result(c->auth) != NVEMU_AUTH_OK;
}

/* The queue's ID; 0 (admin) before Connect. */
static inline uint16_t tcp_conn_qid(const struct tcp_conn *c)
{
	return c->sq ? c->sq->qid : 0;
}

/* conn.c */
/* A connection on fd (-1: no socket, transmitted PDUs are dropped). */
struct tcp_conn *tcp_conn_new(struct nvemu_tcp_target *t, struct tcp_listener *lst, int fd);
/* Feed received bytes through the PDU parser. */
void tcp_conn_rx(struct tcp_conn *c, const uint8_t *buf, size_t len);
void tcp_conn_event(int fd, uint32_t revents, void *arg);
/*
 * Where the next received bytes may go directly (the command's data buffer,
 * then tcp_conn_rx(c, *dst, n)), and at most how many; 0: feed a copy.
 */
uint32_t tcp_conn_rx_dst(struct tcp_conn *c, uint8_t **dst);
/* Stop the connection now (socket closed); freed once the engine is done with it. */
void tcp_conn_close(struct tcp_conn *c, const char *why);
void tcp_conn_free_if_idle(struct tcp_conn *c);
/* A closed connection's owner lets go of its socket and buffers; then free_if_idle. */
void tcp_conn_close_owned(struct tcp_conn *c);
/* Send a C2HTermReq, then close. */
void tcp_conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei, const char *why);
/* Timeouts; true when it closed something (the caller restarts its walk). */
bool tcp_conn_tick_closed(struct tcp_conn *c, uint64_t now);
void tcp_cmd_respond(struct tcp_cmd *cmd, uint16_t status, uint32_t dw0, uint32_t dw1);
void tcp_cmd_send_data(struct tcp_cmd *cmd, const void *data, uint32_t len);
/* Data (len bytes of buf) then the response, or C2HData with SUCCESS. */
void tcp_cmd_complete_read(struct tcp_cmd *cmd, uint32_t len, uint16_t status, uint32_t dw0,
			   uint32_t dw1);
/* Ask for the command's data with R2Ts. */
void tcp_cmd_start_h2c(struct tcp_cmd *cmd);
int tcp_cmd_buf(struct tcp_cmd *cmd, uint32_t len);
void tcp_cmd_release(struct tcp_cmd *cmd);
/* Free the queue's idle large buffers. */
void tcp_conn_pool_drop(struct tcp_conn *c);
void tcp_conn_flush(struct tcp_conn *c);
/* Size the command slots to the queue's entries (after Connect). */
int tcp_conn_set_depth(struct tcp_conn *c, unsigned entries);
/* The command's data is known valid: get its buffer (or wait for room), then R2T or run it. */
void tcp_cmd_start_data(struct tcp_cmd *cmd);
/* Start a waiting command and resume reading once the queue has room again. */
void tcp_conn_kick(struct tcp_conn *c);

/* tls.c */
int tcp_psk_parse(const char *str, struct tcp_psk *psk, struct nvemu_error *err);
/* The retained PSK (psk->len bytes) of a configured one for hostnqn. */
int tcp_psk_retained(const struct tcp_psk *psk, const char *hostnqn, uint8_t *out);
/* The TLS PSK (psk->len bytes) for a host offering identity (at most 255 bytes). */
int tcp_psk_tls(const struct tcp_psk *psk, const char *hostnqn, const void *identity,
		size_t identity_len, uint8_t *out);
/* A host's PSK identity "NVMe0Rhh <hostnqn> <subnqn>"; NQN buffers NVEMU_NQN_MAX + 1. */
bool tcp_tls_parse_identity(const unsigned char *id, size_t len, uint8_t *hash, char *hostnqn,
			    char *subnqn);
int tcp_tls_ctx_init(struct nvemu_tcp_target *t, struct nvemu_error *err);
void tcp_tls_ctx_free(struct nvemu_tcp_target *t);
int tcp_tls_start(struct tcp_conn *c);
void tcp_tls_free(struct tcp_conn *c);
/* 1: done, 0: under way (events set), -1: failed (logged). */
int tcp_tls_handshake(struct tcp_conn *c);
/* As recv/sendmsg: bytes, 0 at the end, -1 with errno (EAGAIN: try when the socket is ready). */
ssize_t tcp_tls_recv(struct tcp_conn *c, void *buf, size_t len);
ssize_t tcp_tls_sendv(struct tcp_conn *c, const struct iovec *iov, size_t n);

/* fabrics.c */
/*
 * Validate a parsed command before any data moves: queue state, PSDT, the
 * SGL, and its length against what the command transfers. Returns an NVMe
 * status; on success cmd->len is the data to buffer (0: none, any
 * in-capsule data is discarded and the engine refuses the command).
 */
uint16_t tcp_cmd_check(struct tcp_cmd *cmd, uint32_t inline_len);
/* A capsule arrived (cmd->rcvd bytes of in-capsule data in buf). */
void tcp_cmd_execute_capsule(struct tcp_cmd *cmd);
/* The discovery log changed: bump GENCTR and send the AEN to hosts that asked. */
void tcp_disc_log_changed(struct nvemu_tcp_target *t);
/* Printable, escaped copy of at most srclen bytes of a peer's string (for logs). */
void tcp_escape(char *dst, size_t dstsz, const char *src, size_t srclen);
/* All of the command's data is in buf (cmd->len bytes). */
void tcp_cmd_data_ready(struct tcp_cmd *cmd);
void tcp_assoc_teardown(struct tcp_assoc *a, const char *why);
/* Remove controllers of dead associations once their commands drained. */
void tcp_assoc_gc(struct nvemu_tcp_target *t);
void tcp_conn_detach(struct tcp_conn *c);
/* Keep Alive; true when it tore the association down. */
bool tcp_assoc_tick(struct tcp_assoc *a, uint64_t now);

#endif

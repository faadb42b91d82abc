/* SPDX-License-Identifier: MIT */
/*
 * NVMe/TCP target (NVMe over Fabrics, TCP transport binding).
 *
 * One struct nvemu_tcp_target serves any number of subsystems. Each
 * subsystem is exposed on listeners (traddr, trsvcid, adrfam); subsystems
 * sharing an address share one listening socket. Every listener also
 * serves the discovery controller (nqn.2014-08.org.nvmexpress.discovery).
 *
 * Dynamic controller model: each admin-queue Connect creates a controller
 * (nvemu_subsys_add_ctrl_ex on the subsystem's TCP port of that listener)
 * with every namespace of the subsystem attached (the subsystem is the
 * template); it is removed when the association ends (admin connection
 * closed, Keep Alive timeout, listener or subsystem removed).
 *
 * The target registers its sockets with the caller's event loop through
 * struct nvemu_tcp_loop_ops, or with a built-in epoll loop when ops is NULL
 * (drive it with nvemu_tcp_target_run_once). Either way, call
 * nvemu_tcp_target_tick() about every 100 ms (Keep Alive, stalled PDUs,
 * deferred controller removal). One thread drives it, unless the loop ops
 * place I/O queues on loops of other threads (queue_loop, see there).
 *
 * Every host may be hostile; what one can hold is bounded:
 *  - a socket must finish ICReq and Connect within connect_timeout_ms;
 *  - a queue has as many command slots as its Connect SQSIZE asked (1
 *    before Connect), at most queue_depth (I/O) or 32 (admin);
 *  - a command is validated (queue state, PSDT, SGL, length against what
 *    it transfers, MDTS) before any buffer is allocated or R2T sent; data
 *    buffers of one queue stay within queue_buf_max (later commands wait,
 *    in order), plus 8 KiB of in-capsule data per slot; idle large
 *    buffers are kept for reuse only within queue_buf_max, and freed
 *    after 2 s unused;
 *  - when more than queue_buf_max / 2 waits to be sent (the host does not
 *    read), no new capsule is parsed and the socket is not read (at most
 *    128 KiB already read is held back);
 *  - an R2T unanswered for data_timeout_ms ends the connection (C2HTermReq);
 *  - KATO 0 disables Keep Alive as the spec says; TCP keep-alive probes
 *    (60 s idle, 3 probes 10 s apart) close sockets of hosts that vanished.
 *    A discovery controller with KATO 0 is dropped after disc_kato_ms idle;
 *  - accept() failing with EMFILE/ENFILE/ENOMEM/ENOBUFS stops polling the
 *    listener for 100 ms, doubling to 1.6 s while it repeats, and logs one
 *    line per 10 s at most.
 */
#ifndef NVEMU_TCP_H
#define NVEMU_TCP_H

#include <stdbool.h>
#include <stdint.h>

#include <nvemu/nvemu.h>

struct nvemu_tcp_target;

typedef void (*nvemu_tcp_fd_cb)(int fd, uint32_t revents, void *arg);

/*
 * A message to another loop's thread (embedded in the target's objects):
 * the caller's post op runs fn(msg) there; caller[] is the caller's to
 * queue it with.
 */
struct nvemu_tcp_msg {
	void (*fn)(struct nvemu_tcp_msg *msg);
	void *caller[3];
};

struct nvemu_tcp_loop_ops {
	/* Watch fd for events (EPOLLIN/EPOLLOUT); returns a handle, NULL on error. */
	void *(*add_fd)(void *loop, int fd, uint32_t events, nvemu_tcp_fd_cb cb, void *arg);
	int (*mod_fd)(void *loop, void *handle, uint32_t events);
	/* Must be safe from inside the handle's own callback. */
	void (*del_fd)(void *loop, void *handle);
	/*
	 * Optional (all or none): I/O queues on other loops, each on its own
	 * thread (reactors). The caller serializes the target and the model
	 * with one lock that every loop holds while it runs callbacks.
	 *
	 * queue_loop: the loop an I/O queue of ctrl moves to once connected
	 * (called on the target's loop; returning loop keeps it there);
	 * queue_put: that queue is gone. on_loop: whether the calling thread
	 * may act on loop's fds now. post: run msg->fn(msg) on loop's thread
	 * with the lock held, in order; thread-safe, never fails. io_unlock /
	 * io_lock: around a socket system call at the top of a fd callback of
	 * loop, letting other threads run meanwhile.
	 */
	void *(*queue_loop)(void *loop, const struct nvemu_ctrl *ctrl, uint16_t qid);
	void (*queue_put)(void *queue_loop);
	bool (*on_loop)(void *loop);
	void (*post)(void *loop, struct nvemu_tcp_msg *msg);
	void (*io_unlock)(void *loop);
	void (*io_lock)(void *loop);
};

enum {
	NVEMU_TCP_LOG_ERR = 0,
	NVEMU_TCP_LOG_WARN = 1,
	NVEMU_TCP_LOG_INFO = 2,
	NVEMU_TCP_LOG_DEBUG = 3,
};

#define NVEMU_TCP_DEFAULT_IO_QUEUES 128

/* What a message is about; NULL / -1 when not known (yet). */
struct nvemu_tcp_log_ctx {
	const char *site; /* the message's format: one per kind of message */
	const char *peer; /* the host's "ADDR:PORT" */
	const char *hostnqn;
	const char *subnqn;
	int cntlid;
	int qid;
};

struct nvemu_tcp_target_params {
	const struct nvemu_tcp_loop_ops *ops; /* NULL: the built-in epoll loop */
	void *loop;
	/* NULL: messages go to stderr (warnings and errors only). */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	uint32_t maxh2cdata;	 /* 0: 128 KiB */
	uint16_t num_io_queues;	 /* per controller; 0: NVEMU_TCP_DEFAULT_IO_QUEUES (128) */
	uint16_t queue_depth;	 /* I/O queue entries (MQES+1), 0: 128; at most 256 */
	unsigned pdu_timeout_ms; /* a PDU half received for longer is an error; 0: 10 s */
	/* A socket that has not finished ICReq and Connect by then is closed; 0: 10 s. */
	unsigned connect_timeout_ms;
	/*
	 * A queue whose host must authenticate (DH-HMAC-CHAP) and has not
	 * done so this long after its Connect is closed; Keep Alive starts
	 * after the admin queue authenticated. 0: 30 s.
	 */
	unsigned auth_timeout_ms;
	/*
	 * A command waiting for H2CData longer than this ends the connection
	 * (C2HTermReq); 0: 30 s.
	 */
	unsigned data_timeout_ms;
	/*
	 * Data buffers (R2T and C2H transfers) the commands of one queue may
	 * hold at once; more waits, and the queue's socket is not read meanwhile
	 * (backpressure on a host that does not read its responses). At least
	 * the largest transfer (2 MiB); 0: 4 MiB. In-capsule data (8 KiB per
	 * queue entry) comes on top.
	 */
	uint32_t queue_buf_max;
	/*
	 * A discovery controller connected with KATO 0 is dropped after this
	 * long without a command (as Linux nvmet does); 0: 120 s.
	 */
	unsigned disc_kato_ms;
	/*
	 * Messages about a connection or association, with what they concern
	 * (for structured logs and per-peer rate limiting); NULL: log is used.
	 * Last: the members before it keep their offsets.
	 */
	void (*log_ctx)(void *arg, int level, const struct nvemu_tcp_log_ctx *ctx,
			const char *msg);
};

void nvemu_tcp_target_params_init(struct nvemu_tcp_target_params *p);
int nvemu_tcp_target_create(const struct nvemu_tcp_target_params *p, struct nvemu_tcp_target **out,
			    struct nvemu_error *err);
/* Closes every connection and removes the controllers it created. */
void nvemu_tcp_target_destroy(struct nvemu_tcp_target *t);

/* Keep Alive, PDU timeouts, deferred cleanup. Call every ~100 ms. */
void nvemu_tcp_target_tick(struct nvemu_tcp_target *t);
/*
 * Built-in loop only: wait up to timeout_ms for socket events, dispatch
 * them, reap backend completions and tick when due. Returns events handled
 * or -errno.
 */
int nvemu_tcp_target_run_once(struct nvemu_tcp_target *t, int timeout_ms);

/* ---- subsystems, access control */

/* Expose a subsystem (allow any host by default). No listener yet. */
int nvemu_tcp_add_subsys(struct nvemu_tcp_target *t, struct nvemu_subsys *s,
			 struct nvemu_error *err);
/* Ends its associations and removes its TCP ports. Call before destroying s. */
void nvemu_tcp_remove_subsys(struct nvemu_tcp_target *t, struct nvemu_subsys *s);
bool nvemu_tcp_has_subsys(struct nvemu_tcp_target *t, struct nvemu_subsys *s);

int nvemu_tcp_set_allow_any_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s, bool allow,
				 struct nvemu_error *err);
bool nvemu_tcp_allow_any_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s);
int nvemu_tcp_add_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s, const char *hostnqn,
		       struct nvemu_error *err);
struct nvemu_tcp_host_params {
	/*
	 * DH-HMAC-CHAP secret ("DHHC-1:xx:...:") the host authenticates with:
	 * every queue of the host must then authenticate before any other
	 * command. NULL: no in-band authentication.
	 */
	const char *dhchap_key;
	/* Secret the controller proves itself with when the host asks (bidirectional). */
	const char *dhchap_ctrlr_key;
	/* Names the control plane knows the secrets by, kept for nvemu_tcp_get_host_auth. */
	const char *dhchap_key_name;
	const char *dhchap_ctrlr_key_name;
	/*
	 * TLS PSK in the interchange format ("NVMeTLSkey-1:01:...:"): the host
	 * may reach the subsystem through secure_channel listeners with the
	 * identity "NVMe0R0h <hostnqn> <subnqn>". psk_name as the names above.
	 */
	const char *psk;
	const char *psk_name;
};

/* As nvemu_tcp_add_host, with authentication (hp NULL: none). */
int nvemu_tcp_add_host_ex(struct nvemu_tcp_target *t, struct nvemu_subsys *s, const char *hostnqn,
			  const struct nvemu_tcp_host_params *hp, struct nvemu_error *err);
/* The key names the idx-th allowed host was added with (NULL: none); -ENOENT past the end. */
int nvemu_tcp_get_host_auth(struct nvemu_tcp_target *t, struct nvemu_subsys *s, unsigned idx,
			    const char **key_name, const char **ctrlr_key_name);
/*
 * DH-HMAC-CHAP: the hashes (bit n: hash ID n, 1 SHA-256 .. 3 SHA-512) and DH
 * groups (bit n: group ID n, 0 null, 1 ffdhe2048 .. 5 ffdhe8192) the target
 * may choose from what a host offers; it picks the strongest of each. Both
 * default to all. Applies to transactions that start afterwards.
 */
int nvemu_tcp_set_dhchap(struct nvemu_tcp_target *t, uint8_t digests, uint8_t dhgroups,
			 struct nvemu_error *err);
void nvemu_tcp_get_dhchap(struct nvemu_tcp_target *t, uint8_t *digests, uint8_t *dhgroups);
/* The PSK name the idx-th allowed host was added with, NULL if none. */
const char *nvemu_tcp_get_host_psk(struct nvemu_tcp_target *t, struct nvemu_subsys *s,
				   unsigned idx);
/* Also ends that host's live associations with s (as SPDK does). */
int nvemu_tcp_remove_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s, const char *hostnqn,
			  struct nvemu_error *err);
/* The idx-th allowed host NQN, NULL past the end. */
const char *nvemu_tcp_get_host(struct nvemu_tcp_target *t, struct nvemu_subsys *s, unsigned idx);

/* ---- listeners */

struct nvemu_tcp_listener_info {
	char traddr[64];
	char trsvcid[32]; /* the bound port: "0" given at add time reads back the real one */
	uint8_t adrfam;	  /* NVMF_ADDR_FAMILY_IP4 / IP6 */
	uint16_t port_id; /* the subsystem's NVMe port (Discovery Log PORTID) */
	bool secure_channel;
};

/*
 * Listen on traddr:trsvcid for s (adrfam 0 picks from the address). Adds a
 * TCP port to the subsystem. trsvcid "0" binds an ephemeral port.
 */
int nvemu_tcp_add_listener(struct nvemu_tcp_target *t, struct nvemu_subsys *s, const char *traddr,
			   const char *trsvcid, uint8_t adrfam, struct nvemu_error *err);
/*
 * With secure_channel, every connection to that address must first complete
 * a TLS 1.3 handshake with a host's PSK (nvemu_tcp_host_params.psk); an
 * address is either secure for all its subsystems or for none.
 */
int nvemu_tcp_add_listener_ex(struct nvemu_tcp_target *t, struct nvemu_subsys *s,
			      const char *traddr, const char *trsvcid, uint8_t adrfam,
			      bool secure_channel, struct nvemu_error *err);
/* Ends the associations made through it and removes the TCP port. */
int nvemu_tcp_remove_listener(struct nvemu_tcp_target *t, struct nvemu_subsys *s,
			      const char *traddr, const char *trsvcid, uint8_t adrfam,
			      struct nvemu_error *err);
/* The idx-th listener of s; -ENOENT past the end. */
int nvemu_tcp_get_listener(struct nvemu_tcp_target *t, struct nvemu_subsys *s, unsigned idx,
			   struct nvemu_tcp_listener_info *out);

/* ---- namespace template */

/*
 * A namespace was added to / is about to be removed from s: attach it to /
 * detach it from every controller of s this target created (the host gets
 * a Namespace Attribute Changed event). Call before nvemu_subsys_remove_ns.
 */
void nvemu_tcp_ns_added(struct nvemu_tcp_target *t, struct nvemu_subsys *s, uint32_t nsid);
void nvemu_tcp_ns_removed(struct nvemu_tcp_target *t, struct nvemu_subsys *s, uint32_t nsid);

/* Number of live associations (controllers) of s, for status and tests. */
unsigned nvemu_tcp_nr_assocs(struct nvemu_tcp_target *t, struct nvemu_subsys *s);

struct nvemu_tcp_assoc_info {
	uint16_t cntlid;
	uint16_t port_id;
	uint16_t nr_io_queues; /* I/O queues connected */
	uint32_t kato_ms;
	char hostnqn[256];
	uint8_t hostid[16];
};

/* The idx-th live association of s; -ENOENT past the end. */
int nvemu_tcp_get_assoc(struct nvemu_tcp_target *t, struct nvemu_subsys *s, unsigned idx,
			struct nvemu_tcp_assoc_info *out);
/*
 * The loop (ops->queue_loop's answer) serving I/O queue qid of ctrl, the
 * target's own loop for the admin queue; NULL if no such queue.
 */
void *nvemu_tcp_queue_loop(struct nvemu_tcp_target *t, const struct nvemu_ctrl *ctrl,
			   uint16_t qid);

/* Whether ctrl is a controller this target created for a host association. */
bool nvemu_tcp_owns_ctrl(struct nvemu_tcp_target *t, const struct nvemu_ctrl *ctrl);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * NVMe/TCP connections: the PDU parser (a byte-at-a-time safe state
 * machine, so a socket, a test or a fuzzer can feed it), PDU transmission
 * and the command slots of a queue.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tcp-internal.h"
#include "util/crc32c.h"

static inline void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

/* ---- command slots */

static unsigned slots_made(const struct tcp_conn *c)
{
	unsigned n = 0;

	while (n < c->nr_cmds && c->cmds[n])
		n++;
	return n;
}

/* NULL when the queue is full (more commands than entries) or out of memory. */
static struct tcp_cmd *cmd_alloc(struct tcp_conn *c)
{
	struct tcp_cmd *cmd = SLIST_FIRST(&c->free_cmds);

	if (cmd) {
		SLIST_REMOVE_HEAD(&c->free_cmds, free_link);
	} else {
		/* Slots are made on first use, up to the queue's entries. */
		unsigned i = slots_made(c);

		if (i >= c->nr_cmds)
			return NULL;
		cmd = calloc(1, sizeof(*cmd));
		if (!cmd)
			return NULL;
		cmd->conn = c;
		cmd->idx = (uint16_t)i;
		c->cmds[i] = cmd;
	}
	cmd->st = CMD_RX;
	cmd->len = cmd->rcvd = cmd->r2t_end = 0;
	cmd->status = 0;
	cmd->tx_refs = 0;
	memset(&cmd->req, 0, sizeof(cmd->req));
	return cmd;
}

int tcp_conn_set_depth(struct tcp_conn *c, unsigned entries)
{
	struct tcp_cmd **arr;

	if (entries <= c->nr_cmds)
		return 0;
	arr = realloc(c->cmds, entries * sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	memset(arr + c->nr_cmds, 0, (entries - c->nr_cmds) * sizeof(*arr));
	c->cmds = arr;
	c->nr_cmds = entries;
	return 0;
}

static void pool_put(struct tcp_conn *c, uint8_t *p, uint32_t cap);

void tcp_cmd_release(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;

	if (cmd->st == CMD_FREE)
		return;
	if (c->disc_aer == cmd)
		c->disc_aer = NULL;
	if (cmd->st == CMD_WAIT)
		TAILQ_REMOVE(&c->waiting, cmd, wait_link);
	cmd->st = CMD_FREE;
	c->buf_bytes -= cmd->counted;
	cmd->counted = 0;
	/*
	 * A small buffer stays with its slot (in-capsule data); a large one
	 * goes back to the queue's pool for whichever command needs it next:
	 * faulting in a fresh large buffer per command costs more than the I/O.
	 */
	if (cmd->cap > TCP_IN_CAPSULE_MAX) {
		pool_put(c, cmd->buf, cmd->cap);
		cmd->buf = NULL;
		cmd->cap = 0;
	}
	SLIST_INSERT_HEAD(&c->free_cmds, cmd, free_link);
}

static void big_free(struct tcp_conn *c, uint8_t *p, uint32_t cap)
{
	free(p);
	c->big_bytes -= cap;
}

static void pool_put(struct tcp_conn *c, uint8_t *p, uint32_t cap)
{
	c->pool_used_ns = nvemu_now_ns();
	if (c->nr_pool < TCP_POOL_MAX && c->big_bytes <= c->t->p.queue_buf_max &&
	    c->state != CONN_CLOSED)
		c->pool[c->nr_pool++] = (struct tcp_buf){p, cap};
	else
		big_free(c, p, cap);
}

/* The smallest idle buffer of at least len bytes, or NULL. */
static uint8_t *pool_take(struct tcp_conn *c, uint32_t len, uint32_t *cap)
{
	unsigned best = c->nr_pool;
	uint8_t *p;

	for (unsigned i = 0; i < c->nr_pool; i++)
		if (c->pool[i].cap >= len && (best == c->nr_pool || c->pool[i].cap < c->pool[best].cap))
			best = i;
	if (best == c->nr_pool)
		return NULL;
	p = c->pool[best].p;
	*cap = c->pool[best].cap;
	c->pool[best] = c->pool[--c->nr_pool];
	c->pool_used_ns = nvemu_now_ns();
	return p;
}

void tcp_conn_pool_drop(struct tcp_conn *c)
{
	while (c->nr_pool) {
		c->nr_pool--;
		big_free(c, c->pool[c->nr_pool].p, c->pool[c->nr_pool].cap);
	}
}

/* Sizes rounded up so that buffers of similar transfers are interchangeable. */
static uint32_t buf_round(uint32_t len)
{
	uint32_t g = len > (64u << 10) ? (64u << 10) : TCP_BUF_ALIGN;

	return (len + g - 1) & ~(g - 1);
}

static int cmd_buf_grow(struct tcp_cmd *cmd, uint32_t len)
{
	struct tcp_conn *c = cmd->conn;
	uint32_t cap = 0;
	uint8_t *b = NULL;
	/* Bytes already in the buffer (in-capsule data) move with it. */
	uint32_t keep = cmd->rcvd < cmd->cap ? cmd->rcvd : cmd->cap;

	if (len > TCP_IN_CAPSULE_MAX)
		b = pool_take(c, len, &cap);
	if (!b) {
		cap = buf_round(len);
		/* Idle buffers of the wrong size make room within the budget first. */
		while (cap > TCP_IN_CAPSULE_MAX && c->nr_pool &&
		       c->big_bytes + cap > c->t->p.queue_buf_max) {
			c->nr_pool--;
			big_free(c, c->pool[c->nr_pool].p, c->pool[c->nr_pool].cap);
		}
		if (posix_memalign((void **)&b, TCP_BUF_ALIGN, cap))
			return -ENOMEM;
		if (cap > TCP_IN_CAPSULE_MAX)
			c->big_bytes += cap;
	}
	if (keep)
		memcpy(b, cmd->buf, keep);
	if (cmd->cap > TCP_IN_CAPSULE_MAX)
		pool_put(c, cmd->buf, cmd->cap);
	else
		free(cmd->buf);
	cmd->buf = b;
	cmd->cap = cap;
	return 0;
}

static int cmd_buf(struct tcp_cmd *cmd, uint32_t len)
{
	struct tcp_conn *c = cmd->conn;

	if (len > cmd->cap && cmd_buf_grow(cmd, len))
		return -ENOMEM;
	if (len > cmd->counted) {
		c->buf_bytes += len - cmd->counted;
		cmd->counted = len;
	}
	return 0;
}

int tcp_cmd_buf(struct tcp_cmd *cmd, uint32_t len)
{
	return cmd_buf(cmd, len);
}

struct tcp_conn *tcp_conn_new(struct nvemu_tcp_target *t, struct tcp_listener *lst, int fd)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	/* One slot for Connect; Connect sizes the rest from SQSIZE. */
	c->nr_cmds = 1;
	c->cmds = calloc(c->nr_cmds, sizeof(*c->cmds));
	if (!c->cmds) {
		free(c);
		return NULL;
	}
	c->t = t;
	c->lst = lst;
	c->fd = fd;
	c->loop = t->loop;
	TAILQ_INIT(&c->waiting);
	STAILQ_INIT(&c->tx);
	STAILQ_INIT(&c->tx_free);
	c->state = CONN_IC;
	c->log_qid = -1;
	c->rx = RX_CH;
	c->maxh2cdata = t->p.maxh2cdata;
	c->rx_start_ns = nvemu_now_ns();
	c->start_ns = c->rx_start_ns;
	snprintf(c->peer, sizeof(c->peer), "fd %d", fd);
	if (fd >= 0) {
		c->events = EPOLLIN;
		c->h = t->ops->add_fd(c->loop, fd, EPOLLIN, tcp_conn_event, c);
		if (!c->h) {
			free(c->cmds);
			free(c);
			return NULL;
		}
	}
	LIST_INSERT_HEAD(&t->conns, c, link);
	return c;
}

/* ---- threads: which loop owns the connection (reactors) */

static bool conn_owned(const struct tcp_conn *c)
{
	const struct nvemu_tcp_loop_ops *ops = c->t->ops;

	return !ops || !ops->on_loop || ops->on_loop(c->loop);
}

static void conn_post(struct tcp_conn *c, struct nvemu_tcp_msg *m, bool *posted,
		      void (*fn)(struct nvemu_tcp_msg *))
{
	if (*posted)
		return;
	*posted = true;
	m->fn = fn;
	c->t->ops->post(c->loop, m);
}

/* Around a socket system call: only in the owner's fd callback, nothing nested. */
static void conn_io_unlock(struct tcp_conn *c, bool top)
{
	if (top && c->t->ops && c->t->ops->io_unlock)
		c->t->ops->io_unlock(c->loop);
}

static void conn_io_lock(struct tcp_conn *c, bool top)
{
	if (top && c->t->ops && c->t->ops->io_lock)
		c->t->ops->io_lock(c->loop);
}

static void conn_flush_top(struct tcp_conn *c)
{
	c->io_top = true;
	tcp_conn_flush(c);
	c->io_top = false;
}

static void kick_msg_fn(struct nvemu_tcp_msg *m)
{
	struct tcp_conn *c = (struct tcp_conn *)((char *)m - offsetof(struct tcp_conn, kick_msg));

	c->kick_posted = false;
	c->in_cb++;
	if (c->state != CONN_CLOSED) {
		tcp_conn_kick(c);
		conn_flush_top(c);
	}
	c->in_cb--;
	tcp_conn_close_owned(c);
}

static void close_msg_fn(struct nvemu_tcp_msg *m)
{
	struct tcp_conn *c = (struct tcp_conn *)((char *)m - offsetof(struct tcp_conn, close_msg));

	c->close_posted = false;
	tcp_conn_close_owned(c);
}

/* Another thread flushed or kicked c: its owner does it. */
static void conn_post_kick(struct tcp_conn *c)
{
	conn_post(c, &c->kick_msg, &c->kick_posted, kick_msg_fn);
}

static void adopt_msg_fn(struct nvemu_tcp_msg *m)
{
	struct tcp_conn *c = (struct tcp_conn *)((char *)m - offsetof(struct tcp_conn, adopt_msg));
	uint32_t ev = (c->rx_paused ? 0 : EPOLLIN) | (!STAILQ_EMPTY(&c->tx) ? EPOLLOUT : 0);

	c->adopt_posted = false;
	if (c->state != CONN_CLOSED && c->fd >= 0) {
		c->h = c->t->ops->add_fd(c->loop, c->fd, ev, tcp_conn_event, c);
		if (c->h)
			c->events = ev;
		else
			tcp_conn_close(c, "out of memory moving the queue to its reactor");
	}
	tcp_conn_close_owned(c);
}

/* After Connect: hand the I/O queue's socket to its reactor (at the end of an event). */
static void conn_move(struct tcp_conn *c)
{
	if (c->h)
		c->t->ops->del_fd(c->loop, c->h);
	c->h = NULL;
	c->loop = c->move_to;
	c->move_to = NULL;
	conn_post(c, &c->adopt_msg, &c->adopt_posted, adopt_msg_fn);
}

/* ---- transmit */

#define TX_FREE_MAX 64

static void tx_item_done(struct tcp_conn *c, struct tx_item *it)
{
	struct tcp_cmd *cmd = it->cmd;

	c->tx_bytes -= it->counted;
	if (c->nr_tx_free < TX_FREE_MAX) {
		STAILQ_INSERT_HEAD(&c->tx_free, it, link);
		c->nr_tx_free++;
	} else {
		free(it);
	}
	if (cmd && --cmd->tx_refs == 0 && cmd->st == CMD_TX)
		tcp_cmd_release(cmd);
}

static void tx_drop_all(struct tcp_conn *c)
{
	while (!STAILQ_EMPTY(&c->tx)) {
		struct tx_item *it = STAILQ_FIRST(&c->tx);

		STAILQ_REMOVE_HEAD(&c->tx, link);
		tx_item_done(c, it);
	}
}

static void conn_finish_drain(struct tcp_conn *c)
{
	if (c->state == CONN_DRAIN && c->fd >= 0 && !c->drain_start_ns) {
		/* Our last word is out; read until the peer closes (or the tick gives up). */
		shutdown(c->fd, SHUT_WR);
		c->drain_start_ns = nvemu_now_ns();
	} else if (c->state == CONN_DRAIN && c->fd < 0) {
		tcp_conn_close(c, NULL);
	}
}

void tcp_conn_flush(struct tcp_conn *c)
{
	uint32_t want;
	bool top = c->io_top;

	if (c->state == CONN_CLOSED)
		return;
	if (!conn_owned(c)) {
		conn_post_kick(c);
		return;
	}
	c->io_top = false; /* what runs from here on is nested */
	if (c->tx_batch) {
		c->tx_flush_pending = true;
		return;
	}
	if (c->fd < 0) {
		tx_drop_all(c);
		if (c->close_after_tx)
			conn_finish_drain(c);
		return;
	}
	while (!STAILQ_EMPTY(&c->tx)) {
		struct iovec iov[64];
		struct msghdr msg = {.msg_iov = iov};
		struct tx_item *it;
		size_t n = 0;
		ssize_t r;

		for (it = STAILQ_FIRST(&c->tx); it && n + 3 <= 64; it = STAILQ_NEXT(it, link)) {
			uint32_t off = it->off;

			if (off < it->hdr_len) {
				iov[n++] = (struct iovec){it->hdr + off, it->hdr_len - off};
				off = it->hdr_len;
			}
			off -= it->hdr_len;
			if (off < it->data_len) {
				iov[n++] = (struct iovec){(void *)(it->data + off),
							  it->data_len - off};
				off = it->data_len;
			}
			off -= it->data_len;
			if (off < it->tail_len)
				iov[n++] = (struct iovec){it->tail + off, it->tail_len - off};
		}
		msg.msg_iovlen = n;
		if (c->ssl) {
			/* TLS keeps the lock: its record layer is not the plain socket path. */
			r = tcp_tls_sendv(c, iov, n);
		} else {
			/*
			 * Without the lock: other threads may queue PDUs behind these
			 * or mark c closed, but never free or resend what is queued.
			 */
			conn_io_unlock(c, top);
			r = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
			conn_io_lock(c, top);
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* The socket turns readable with the error; the event closes it. */
			tcp_log_conn(c, NVEMU_TCP_LOG_INFO, "%s: send: %s", c->peer, strerror(errno));
			tx_drop_all(c);
			break;
		}
		while (r > 0 && !STAILQ_EMPTY(&c->tx)) {
			it = STAILQ_FIRST(&c->tx);
			uint32_t left = it->hdr_len + it->data_len + it->tail_len - it->off;

			if ((size_t)r < left) {
				it->off += (uint32_t)r;
				r = 0;
				break;
			}
			r -= left;
			STAILQ_REMOVE_HEAD(&c->tx, link);
			tx_item_done(c, it);
		}
	}
	want = (c->rx_paused ? 0 : EPOLLIN) | (!STAILQ_EMPTY(&c->tx) ? EPOLLOUT : 0);
	if (want != c->events)
		tcp_fd_mod(c, want);
	if (STAILQ_EMPTY(&c->tx) && c->close_after_tx)
		conn_finish_drain(c);
}

static struct tx_item *tx_new(struct tcp_conn *c)
{
	struct tx_item *it = STAILQ_FIRST(&c->tx_free);

	if (it) {
		STAILQ_REMOVE_HEAD(&c->tx_free, link);
		c->nr_tx_free--;
		memset(it, 0, sizeof(*it));
		return it;
	}
	it = calloc(1, sizeof(*it));
	if (!it && !c->tx_lost) {
		/* A PDU (maybe a completion) is lost: the tick ends the connection. */
		tcp_log_conn(c, NVEMU_TCP_LOG_ERR, "%s: out of memory queueing a PDU", c->peer);
		c->tx_lost = true;
	}
	return it;
}

static void tx_queue(struct tcp_conn *c, struct tx_item *it)
{
	it->counted = it->hdr_len + it->data_len + it->tail_len;
	c->tx_bytes += it->counted;
	STAILQ_INSERT_TAIL(&c->tx, it, link);
}

/*
 * Queue a PDU: hdr/hlen is its header (CH included); data is appended at
 * the PDO the host asked for (HPDA), with digests as negotiated.
 */
static void tx_pdu(struct tcp_conn *c, const void *hdr, uint8_t hlen, const uint8_t *data,
		   uint32_t data_len, struct tcp_cmd *cmd, bool digests)
{
	struct tx_item *it = tx_new(c);
	struct tcp_ch *ch;
	uint32_t off, pdo = 0;

	if (!it)
		return;
	memcpy(it->hdr, hdr, hlen);
	ch = (struct tcp_ch *)it->hdr;
	ch->hlen = hlen;
	off = hlen;
	if (digests && c->hdgst) {
		ch->flags |= TCP_F_HDGST;
		off += 4;
	}
	if (data_len) {
		uint32_t align = (c->hpda + 1u) * 4;

		pdo = (off + align - 1) / align * align;
		if (digests && c->ddgst)
			ch->flags |= TCP_F_DDGST;
	}
	ch->pdo = (uint8_t)pdo;
	ch->plen =
		htole32((pdo ? pdo : off) + data_len + (data_len && digests && c->ddgst ? 4 : 0));
	if (digests && c->hdgst)
		put_le32(it->hdr + hlen, nvemu_crc32c(it->hdr, hlen));
	/* padding bytes are zero (calloc) */
	it->hdr_len = pdo ? pdo : off;
	it->data = data;
	it->data_len = data_len;
	if (data_len && digests && c->ddgst) {
		put_le32(it->tail, nvemu_crc32c(data, data_len));
		it->tail_len = 4;
	}
	if (cmd) {
		it->cmd = cmd;
		cmd->tx_refs++;
	}
	tx_queue(c, it);
}

void tcp_cmd_respond(struct tcp_cmd *cmd, uint16_t status, uint32_t dw0, uint32_t dw1)
{
	struct tcp_conn *c = cmd->conn;
	struct tcp_rsp_pdu pdu = {.ch = {.type = TCP_PDU_RSP}};
	uint16_t v16;

	if (c->state != CONN_LIVE && c->state != CONN_IC) {
		tcp_cmd_release(cmd);
		return;
	}
	put_le32(pdu.cqe + 0, dw0);
	put_le32(pdu.cqe + 4, dw1);
	if (c->sqflow_off) {
		v16 = htole16(0xffff);
	} else if (c->sq) {
		/* Each response reports the command it answers as consumed. */
		c->sq->head = (c->sq->head + 1) % (c->sq->size ? c->sq->size : 1);
		v16 = htole16((uint16_t)c->sq->head);
	} else {
		v16 = 0;
	}
	memcpy(pdu.cqe + 8, &v16, 2);
	v16 = htole16(tcp_conn_qid(c));
	memcpy(pdu.cqe + 10, &v16, 2);
	v16 = htole16(cmd->req.cmd.cid);
	memcpy(pdu.cqe + 12, &v16, 2);
	v16 = htole16((uint16_t)(status << 1));
	memcpy(pdu.cqe + 14, &v16, 2);
	cmd->st = CMD_TX;
	cmd->tx_refs++; /* held while queueing */
	tx_pdu(c, &pdu, sizeof(pdu), NULL, 0, cmd, true);
	if (--cmd->tx_refs == 0)
		tcp_cmd_release(cmd);
	tcp_conn_flush(c);
}

/* C2HData with the command's result; the SUCCESS flag replaces the response. */
void tcp_cmd_send_data(struct tcp_cmd *cmd, const void *data, uint32_t len)
{
	struct tcp_conn *c = cmd->conn;
	struct tcp_data_pdu pdu = {.ch = {.type = TCP_PDU_C2H_DATA, .flags = TCP_F_LAST}};

	if (c->state != CONN_LIVE)
		return;
	pdu.cccid = htole16(cmd->req.cmd.cid);
	pdu.datao = 0;
	pdu.datal = htole32(len);
	tx_pdu(c, &pdu, sizeof(pdu), data, len, cmd, true);
}

void tcp_cmd_complete_read(struct tcp_cmd *cmd, uint32_t len, uint16_t status, uint32_t dw0,
			   uint32_t dw1)
{
	struct tcp_conn *c = cmd->conn;

	if (c->state != CONN_LIVE) {
		tcp_cmd_release(cmd);
		return;
	}
	if (len && !status && c->sqflow_off && !dw0 && !dw1) {
		struct tcp_data_pdu pdu = {
			.ch = {.type = TCP_PDU_C2H_DATA, .flags = TCP_F_LAST | TCP_F_SUCCESS},
		};

		pdu.cccid = htole16(cmd->req.cmd.cid);
		pdu.datal = htole32(len);
		cmd->st = CMD_TX;
		cmd->tx_refs++;
		tx_pdu(c, &pdu, sizeof(pdu), cmd->buf, len, cmd, true);
		if (--cmd->tx_refs == 0)
			tcp_cmd_release(cmd);
		tcp_conn_flush(c);
		return;
	}
	if (len && !status)
		tcp_cmd_send_data(cmd, cmd->buf, len);
	tcp_cmd_respond(cmd, status, dw0, dw1);
}

static void send_r2t(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;
	struct tcp_r2t_pdu pdu = {.ch = {.type = TCP_PDU_R2T}};
	/*
	 * One R2T for all the data still missing (as nvmet does): the host
	 * sends it in H2CData PDUs of at most MAXH2CDATA each, without a
	 * round trip per MAXH2CDATA. The buffer already holds the whole
	 * transfer, so this asks for no extra memory.
	 */
	uint32_t n = cmd->len - cmd->rcvd;

	cmd->r2t_end = cmd->rcvd + n;
	cmd->data_ns = nvemu_now_ns();
	pdu.cccid = htole16(cmd->req.cmd.cid);
	pdu.ttag = htole16(cmd->idx);
	pdu.r2to = htole32(cmd->rcvd);
	pdu.r2tl = htole32(n);
	tx_pdu(c, &pdu, sizeof(pdu), NULL, 0, NULL, true);
	tcp_conn_flush(c);
}

void tcp_cmd_start_h2c(struct tcp_cmd *cmd)
{
	cmd->st = CMD_H2C;
	cmd->rcvd = 0;
	send_r2t(cmd);
}

/* ---- teardown */

void tcp_conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei, const char *why)
{
	struct {
		struct tcp_term_pdu t;
		uint8_t hdr[TCP_TERM_MAX_PLEN - sizeof(struct tcp_term_pdu)];
	} __attribute__((packed)) pdu = {.t = {.ch = {.type = TCP_PDU_C2H_TERM}}};
	uint32_t n;

	if (c->state == CONN_CLOSED || c->state == CONN_DRAIN)
		return;
	tcp_log_conn(c, NVEMU_TCP_LOG_WARN, "%s: protocol error: %s (FES %u, FEI %u); terminating",
		c->peer, why, fes, fei);
	/* The offending header (as much as we have of it) goes back to the host. */
	n = c->hdr_got < sizeof(pdu.hdr) ? c->hdr_got : sizeof(pdu.hdr);
	memcpy(pdu.hdr, c->hdr, n);
	pdu.t.fes = htole16(fes);
	pdu.t.fei = htole32(fei);
	pdu.t.ch.hlen = sizeof(pdu.t);
	pdu.t.ch.plen = htole32(sizeof(pdu.t) + n);
	/* TermReqs carry no digests; send it as one header. */
	{
		struct tx_item *it = tx_new(c);

		if (it) {
			memcpy(it->hdr, &pdu, sizeof(pdu.t) + n);
			it->hdr_len = sizeof(pdu.t) + n;
			tx_queue(c, it);
		}
	}
	c->state = CONN_DRAIN;
	c->close_after_tx = true;
	tcp_conn_detach(c);
	tcp_conn_flush(c);
}

/* The owner's part of closing: the socket, queued PDUs, buffers. */
static void conn_release(struct tcp_conn *c)
{
	if (c->fd >= 0) {
		if (c->h)
			c->t->ops->del_fd(c->loop, c->h);
		close(c->fd);
		c->fd = -1;
		c->h = NULL;
	}
	tx_drop_all(c);
	for (unsigned i = 0; i < c->nr_cmds && c->cmds[i]; i++) {
		struct tcp_cmd *cmd = c->cmds[i];

		if (cmd->st != CMD_FREE && cmd->st != CMD_ENGINE)
			tcp_cmd_release(cmd);
	}
	tcp_conn_pool_drop(c);
	c->rx_cmd = NULL;
	TAILQ_INIT(&c->waiting);
	free(c->stash);
	c->stash = NULL;
	c->stash_len = 0;
	c->ch_pending = false;
}

void tcp_conn_close_owned(struct tcp_conn *c)
{
	if (c->state == CONN_CLOSED && c->fd >= 0 && !c->in_cb && conn_owned(c))
		conn_release(c);
	tcp_conn_free_if_idle(c);
}

void tcp_conn_close(struct tcp_conn *c, const char *why)
{
	if (c->state == CONN_CLOSED) {
		tcp_conn_close_owned(c);
		return;
	}
	if (why)
		tcp_log_conn(c, NVEMU_TCP_LOG_INFO, "%s: closing: %s", c->peer, why);
	c->state = CONN_CLOSED;
	if (conn_owned(c)) {
		conn_release(c);
	} else {
		/*
		 * Its reactor may be inside a system call on the socket or on
		 * these buffers: wake it (the peer sees the end at once) and
		 * let it release them. Nothing runs the queue meanwhile.
		 */
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
		conn_post(c, &c->close_msg, &c->close_posted, close_msg_fn);
	}
	/* Detaching may end the association and complete its AERs into c: keep c alive. */
	c->in_cb++;
	tcp_conn_detach(c);
	c->in_cb--;
	tcp_conn_free_if_idle(c);
}

void tcp_conn_free_if_idle(struct tcp_conn *c)
{
	if (c->state != CONN_CLOSED || c->in_cb || c->engine_inflight || c->fd >= 0 ||
	    c->kick_posted || c->close_posted || c->adopt_posted)
		return;
	LIST_REMOVE(c, link);
	if (c->queue_loop && c->t->ops->queue_put)
		c->t->ops->queue_put(c->queue_loop);
	for (unsigned i = 0; i < c->nr_cmds && c->cmds[i]; i++) {
		free(c->cmds[i]->buf);
		free(c->cmds[i]);
	}
	tcp_conn_pool_drop(c);
	nvemu_auth_destroy(c->auth);
	tcp_tls_free(c);
	free(c->cmds);
	free(c->stash);
	while (!STAILQ_EMPTY(&c->tx_free)) {
		struct tx_item *it = STAILQ_FIRST(&c->tx_free);

		STAILQ_REMOVE_HEAD(&c->tx_free, link);
		free(it);
	}
	free(c);
}

/* Returns true when it closed something (the caller restarts its walk). */
bool tcp_conn_tick_closed(struct tcp_conn *c, uint64_t now)
{
	const struct nvemu_tcp_target_params *p = &c->t->p;
	uint64_t limit = (uint64_t)p->pdu_timeout_ms * 1000000ull;
	uint64_t conn_limit = (uint64_t)p->connect_timeout_ms * 1000000ull;
	uint64_t data_limit = (uint64_t)p->data_timeout_ms * 1000000ull;
	uint32_t kato;

	if (c->tx_lost && c->state != CONN_CLOSED) {
		tcp_conn_close(c, "a PDU could not be queued (out of memory)");
		return true;
	}
	if (c->nr_pool && now - c->pool_used_ns > TCP_BUF_IDLE_NS)
		tcp_conn_pool_drop(c);
	switch (c->state) {
	case CONN_IC:
		if (now - c->start_ns > conn_limit) {
			tcp_conn_close(c, "no ICReq in time");
			return true;
		}
		return false;
	case CONN_LIVE:
		if (!c->connected && now - c->start_ns > conn_limit) {
			tcp_conn_close(c, "no Connect in time");
			return true;
		}
		if (c->connected && tcp_conn_unauthenticated(c) &&
		    now - c->auth_start_ns > (uint64_t)p->auth_timeout_ms * 1000000ull) {
			tcp_conn_close(c, "not authenticated in time");
			return true;
		}
		if (!c->rx_paused && (c->rx != RX_CH || c->hdr_got) &&
		    now - c->rx_start_ns > limit) {
			tcp_conn_fatal(c, TCP_FES_PDU_SEQ, 0, "PDU stalled half received");
			return true;
		}
		for (unsigned i = 0; i < c->nr_cmds && c->cmds[i]; i++) {
			struct tcp_cmd *cmd = c->cmds[i];

			/*
			 * Data still arriving (RX_DATA) counts as progress; while
			 * paused, the data may sit unread in the socket.
			 */
			if (cmd->st == CMD_H2C && cmd != c->rx_cmd && !c->rx_paused &&
			    now - cmd->data_ns > data_limit) {
				tcp_conn_fatal(c, TCP_FES_PDU_SEQ, 0,
					       "no H2CData for an R2T in time");
				return true;
			}
		}
		/* KATO 0 on a discovery controller: nvmet's default, not forever. */
		kato = c->kato_ms ? c->kato_ms : p->disc_kato_ms;
		if (c->disc && c->connected &&
		    now - c->last_ka_ns > (uint64_t)kato * 1000000ull + 1000000000ull) {
			tcp_conn_close(c, "discovery keep alive timeout");
			return true;
		}
		return false;
	case CONN_DRAIN:
		if (!c->drain_start_ns)
			c->drain_start_ns = now; /* TermReq stuck in the send buffer */
		if (now - c->drain_start_ns > 1000000000ull) {
			tcp_conn_close(c, NULL);
			return true;
		}
		return false;
	default:
		return false;
	}
}

/* ---- receive */

static uint32_t hd_len(const struct tcp_conn *c, uint8_t type)
{
	return c->hdgst && (type == TCP_PDU_CMD || type == TCP_PDU_H2C_DATA) ? 4 : 0;
}

static void start_data(struct tcp_conn *c)
{
	c->rx = c->data_left ? RX_DATA : RX_CH;
	c->data_crc = NVEMU_CRC32C_INIT;
}

static void data_done(struct tcp_conn *c, bool digest_ok)
{
	struct tcp_ch *ch = (struct tcp_ch *)c->hdr;
	struct tcp_cmd *cmd = c->rx_cmd;

	c->rx = RX_CH;
	c->hdr_got = 0;
	c->rx_cmd = NULL;
	if (!cmd)
		return;
	if (!digest_ok) {
		tcp_log_conn(c, NVEMU_TCP_LOG_WARN, "%s: data digest error (cid %u)", c->peer,
			cmd->req.cmd.cid);
		cmd->status = NVEMU_SC_GENERIC(NVME_SC_TRAN_TPORT_ERROR);
	}
	if (ch->type == TCP_PDU_CMD) {
		if (cmd->status)
			tcp_cmd_respond(cmd, cmd->status, 0, 0);
		else
			tcp_cmd_execute_capsule(cmd);
		return;
	}
	cmd->rcvd += c->rx_datal;
	if (cmd->rcvd < cmd->r2t_end)
		return;
	if (cmd->rcvd < cmd->len) {
		send_r2t(cmd);
		return;
	}
	if (cmd->status)
		tcp_cmd_respond(cmd, cmd->status, 0, 0);
	else
		tcp_cmd_data_ready(cmd);
}

static void rx_icreq(struct tcp_conn *c)
{
	struct tcp_icreq *req = (struct tcp_icreq *)c->hdr;
	struct tcp_icresp rsp = {.ch = {.type = TCP_PDU_ICRESP}};

	if (le16toh(req->pfv) != 0) {
		tcp_conn_fatal(c, TCP_FES_UNSUPPORTED, 8, "ICReq: unsupported PFV");
		return;
	}
	if (req->hpda > 31) {
		tcp_conn_fatal(c, TCP_FES_UNSUPPORTED, 10, "ICReq: HPDA out of range");
		return;
	}
	c->hpda = req->hpda;
	c->hdgst = req->digest & 1;
	c->ddgst = req->digest & 2;
	rsp.ch.plen = htole32(sizeof(rsp));
	rsp.pfv = 0;
	rsp.cpda = 0;
	rsp.digest = req->digest & 3;
	rsp.maxh2cdata = htole32(c->maxh2cdata);
	c->state = CONN_LIVE;
	c->rx = RX_CH;
	c->hdr_got = 0;
	tx_pdu(c, &rsp, sizeof(rsp), NULL, 0, NULL, false);
	tcp_conn_flush(c);
}

static void rx_capsule(struct tcp_conn *c)
{
	struct tcp_ch *ch = (struct tcp_ch *)c->hdr;
	uint32_t plen = le32toh(ch->plen), hn = c->hdr_need, dd = 0, data_len = 0;
	struct tcp_cmd *cmd;
	struct nvemu_sqe *sqe;
	uint16_t st;

	if (plen > hn) {
		dd = c->ddgst ? 4 : 0;
		if (ch->pdo < hn || ch->pdo % 4) {
			tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 3, "CapsuleCmd: bad PDO");
			return;
		}
		if (plen < (uint32_t)ch->pdo + dd + 1) {
			tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 4, "CapsuleCmd: bad PLEN");
			return;
		}
		data_len = plen - ch->pdo - dd;
		if (data_len > TCP_IN_CAPSULE_MAX) {
			tcp_conn_fatal(c, TCP_FES_LIMIT_EXCEEDED, 0,
				       "CapsuleCmd: in-capsule data over IOCCSZ");
			return;
		}
		if (!!(ch->flags & TCP_F_DDGST) != !!dd) {
			tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 1, "CapsuleCmd: DDGSTF mismatch");
			return;
		}
	}
	cmd = cmd_alloc(c);
	if (!cmd) {
		tcp_conn_fatal(c, TCP_FES_PDU_SEQ, 0,
			       "queue overflow: more commands than entries (or out of memory)");
		return;
	}
	sqe = &cmd->req.cmd;
	memcpy(sqe, c->hdr + sizeof(*ch), 64);
	sqe->cid = le16toh(sqe->cid);
	sqe->nsid = le32toh(sqe->nsid);
	sqe->cdw2 = le32toh(sqe->cdw2);
	sqe->cdw3 = le32toh(sqe->cdw3);
	sqe->mptr = le64toh(sqe->mptr);
	sqe->dptr1 = le64toh(sqe->dptr1);
	sqe->dptr2 = le64toh(sqe->dptr2);
	sqe->cdw10 = le32toh(sqe->cdw10);
	sqe->cdw11 = le32toh(sqe->cdw11);
	sqe->cdw12 = le32toh(sqe->cdw12);
	sqe->cdw13 = le32toh(sqe->cdw13);
	sqe->cdw14 = le32toh(sqe->cdw14);
	sqe->cdw15 = le32toh(sqe->cdw15);
	cmd->rcvd = data_len; /* in-capsule bytes */
	/* Nothing is buffered for a command that is not valid on this queue. */
	st = tcp_cmd_check(cmd, data_len);
	if (!data_len) {
		c->rx = RX_CH;
		c->hdr_got = 0;
		if (st)
			tcp_cmd_respond(cmd, st, 0, 0);
		else
			tcp_cmd_execute_capsule(cmd);
		return;
	}
	cmd->status = st;
	if (!st && cmd->len && cmd_buf(cmd, data_len)) {
		tcp_conn_fatal(c, TCP_FES_LIMIT_EXCEEDED, 0, "out of memory");
		tcp_cmd_release(cmd);
		return;
	}
	c->rx_cmd = cmd;
	c->rx_datal = data_len;
	/* NULL: the in-capsule data is read and dropped. */
	c->data_dst = !st && cmd->len ? cmd->buf : NULL;
	c->data_left = data_len;
	c->pad_left = ch->pdo - hn;
	c->rx = c->pad_left ? RX_PAD : RX_DATA;
	c->data_crc = NVEMU_CRC32C_INIT;
}

static void rx_h2c_data(struct tcp_conn *c)
{
	struct tcp_data_pdu *pdu = (struct tcp_data_pdu *)c->hdr;
	uint32_t plen = le32toh(pdu->ch.plen), datao = le32toh(pdu->datao);
	uint32_t datal = le32toh(pdu->datal), dd = c->ddgst ? 4 : 0;
	uint16_t ttag = le16toh(pdu->ttag);
	struct tcp_cmd *cmd;

	if (ttag >= c->nr_cmds || !c->cmds[ttag] || c->cmds[ttag]->st != CMD_H2C) {
		tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 10, "H2CData without an R2T (bad TTAG)");
		return;
	}
	cmd = c->cmds[ttag];
	if (le16toh(pdu->cccid) != cmd->req.cmd.cid) {
		tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 8, "H2CData: CCCID does not match TTAG");
		return;
	}
	if (!datal) {
		tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 16, "H2CData: DATAL 0");
		return;
	}
	if (datal > c->maxh2cdata) {
		tcp_conn_fatal(c, TCP_FES_LIMIT_EXCEEDED, 0, "H2CData: DATAL over MAXH2CDATA");
		return;
	}
	if (datao != cmd->rcvd || (uint64_t)datao + datal > cmd->r2t_end) {
		tcp_conn_fatal(c, TCP_FES_OUT_OF_RANGE, 0, "H2CData: data outside the R2T");
		return;
	}
	if (pdu->ch.pdo < c->hdr_need || pdu->ch.pdo % 4) {
		tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 3, "H2CData: bad PDO");
		return;
	}
	if ((uint64_t)pdu->ch.pdo + datal + dd != plen) {
		tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 4, "H2CData: PLEN does not match DATAL");
		return;
	}
	if (!!(pdu->ch.flags & TCP_F_DDGST) != !!dd) {
		tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 1, "H2CData: DDGSTF mismatch");
		return;
	}
	cmd->data_ns = nvemu_now_ns();
	c->rx_cmd = cmd;
	c->rx_datal = datal;
	c->data_dst = cmd->buf + datao;
	c->data_left = datal;
	c->pad_left = pdu->ch.pdo - c->hdr_need;
	c->rx = c->pad_left ? RX_PAD : RX_DATA;
	c->data_crc = NVEMU_CRC32C_INIT;
}

/* The common header is in: check it and size the rest of the header. */
static void rx_ch(struct tcp_conn *c)
{
	struct tcp_ch *ch = (struct tcp_ch *)c->hdr;
	uint32_t plen = le32toh(ch->plen);
	uint8_t want_hlen;

	if (c->state == CONN_IC && ch->type != TCP_PDU_ICREQ) {
		tcp_conn_fatal(c, TCP_FES_PDU_SEQ, 0, "PDU before ICReq");
		return;
	}
	switch (ch->type) {
	case TCP_PDU_ICREQ:
		if (c->state != CONN_IC) {
			tcp_conn_fatal(c, TCP_FES_PDU_SEQ, 0, "second ICReq");
			return;
		}
		want_hlen = sizeof(struct tcp_icreq);
		break;
	case TCP_PDU_H2C_TERM:
		want_hlen = sizeof(struct tcp_term_pdu);
		break;
	case TCP_PDU_CMD:
		want_hlen = sizeof(struct tcp_cmd_pdu);
		break;
	case TCP_PDU_H2C_DATA:
		want_hlen = sizeof(struct tcp_data_pdu);
		break;
	default:
		tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 0, "invalid PDU type");
		return;
	}
	if (ch->hlen != want_hlen) {
		tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 2, "bad HLEN");
		return;
	}
	c->hdr_need = ch->hlen + hd_len(c, ch->type);
	if (plen < c->hdr_need) {
		tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 4, "PLEN shorter than the header");
		return;
	}
	switch (ch->type) {
	case TCP_PDU_ICREQ:
		if (ch->pdo || plen != sizeof(struct tcp_icreq)) {
			tcp_conn_fatal(c, TCP_FES_INVALID_HDR, ch->pdo ? 3 : 4,
				       "ICReq: bad PDO/PLEN");
			return;
		}
		break;
	case TCP_PDU_H2C_TERM:
		if (plen > TCP_TERM_MAX_PLEN) {
			tcp_conn_close(c, "H2CTermReq with bad PLEN");
			return;
		}
		break;
	default:
		if (!!(ch->flags & TCP_F_HDGST) != c->hdgst) {
			tcp_conn_fatal(c, TCP_FES_INVALID_HDR, 1,
				       "HDGSTF does not match negotiation");
			return;
		}
		if (ch->type == TCP_PDU_CMD &&
		    plen > c->hdr_need + 128u + TCP_IN_CAPSULE_MAX + 4u) {
			tcp_conn_fatal(c, TCP_FES_LIMIT_EXCEEDED, 0,
				       "CapsuleCmd larger than IOCCSZ");
			return;
		}
		break;
	}
	c->rx = RX_HDR;
}

static void rx_hdr(struct tcp_conn *c)
{
	struct tcp_ch *ch = (struct tcp_ch *)c->hdr;

	if (hd_len(c, ch->type) && nvemu_crc32c(c->hdr, ch->hlen) != get_le32(c->hdr + ch->hlen)) {
		tcp_conn_fatal(c, TCP_FES_HDR_DIGEST, 0, "header digest error");
		return;
	}
	switch (ch->type) {
	case TCP_PDU_ICREQ:
		rx_icreq(c);
		break;
	case TCP_PDU_H2C_TERM:
		c->data_left = le32toh(ch->plen) - ch->hlen;
		c->data_dst = c->term_buf;
		c->rx = c->data_left ? RX_TERM : RX_CH;
		if (!c->data_left) {
			struct tcp_term_pdu *tp = (struct tcp_term_pdu *)c->hdr;

			tcp_log_conn(c, NVEMU_TCP_LOG_WARN, "%s: host sent H2CTermReq FES %u FEI %u",
				c->peer, le16toh(tp->fes), le32toh(tp->fei));
			tcp_conn_close(c, "H2CTermReq");
		}
		break;
	case TCP_PDU_CMD:
		rx_capsule(c);
		break;
	case TCP_PDU_H2C_DATA:
		rx_h2c_data(c);
		break;
	}
}

/* Backpressure: the host is not reading what we send. */
static bool conn_should_pause(const struct tcp_conn *c)
{
	return c->tx_bytes > c->t->p.queue_buf_max / 2;
}

/* Keep bytes that arrived while paused, in order; false when over the bound. */
static bool stash_add(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	uint32_t keep = c->stash_len;
	uint8_t *b;

	if (keep + len > TCP_STASH_MAX) {
		tcp_conn_fatal(c, TCP_FES_LIMIT_EXCEEDED, 0,
			       "too much data while the queue is full");
		return false;
	}
	b = malloc(keep + len);
	if (!b) {
		tcp_conn_fatal(c, TCP_FES_LIMIT_EXCEEDED, 0, "out of memory");
		return false;
	}
	if (keep)
		memcpy(b, c->stash, keep);
	memcpy(b + keep, buf, len);
	free(c->stash);
	c->stash = b;
	c->stash_len = keep + (uint32_t)len;
	return true;
}

static void conn_set_paused(struct tcp_conn *c, bool paused)
{
	uint32_t want;

	c->rx_paused = paused;
	want = (paused ? 0 : EPOLLIN) | (!STAILQ_EMPTY(&c->tx) ? EPOLLOUT : 0);
	if (c->fd >= 0 && want != c->events)
		tcp_fd_mod(c, want);
}

/* Each rx_*_bytes() takes what its receive state wants of buf and returns how much. */

static size_t rx_ch_bytes(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	size_t n = 8 - c->hdr_got;

	if (!c->hdr_got)
		c->rx_start_ns = nvemu_now_ns();
	n = n < len ? n : len;
	memcpy(c->hdr + c->hdr_got, buf, n);
	c->hdr_got += n;
	if (c->hdr_got < 8)
		return n;
	if (c->hdr[0] == TCP_PDU_CMD && conn_should_pause(c)) {
		/* No new command until the host reads what we sent; keep the rest. */
		conn_set_paused(c, true);
		c->ch_pending = true;
		if (len > n)
			stash_add(c, buf + n, len - n);
		return len;
	}
	rx_ch(c);
	return n;
}

static size_t rx_data_bytes(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	size_t n = c->data_left < len ? c->data_left : len;

	if (c->data_dst) {
		/* Received in place (tcp_conn_rx_dst): nothing to copy. */
		if (c->data_dst != buf)
			memcpy(c->data_dst, buf, n);
		c->data_dst += n;
	}
	if (c->ddgst)
		c->data_crc = nvemu_crc32c_update(c->data_crc, buf, n);
	c->data_left -= n;
	if (!c->data_left) {
		if (c->ddgst) {
			c->rx = RX_DDGST;
			c->ddgst_got = 0;
		} else {
			data_done(c, true);
		}
	}
	return n;
}

static size_t rx_ddgst_bytes(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	size_t n = 4 - c->ddgst_got;

	n = n < len ? n : len;
	memcpy(c->ddgst_rx + c->ddgst_got, buf, n);
	c->ddgst_got += n;
	if (c->ddgst_got == 4)
		data_done(c, get_le32(c->ddgst_rx) == nvemu_crc32c_final(c->data_crc));
	return n;
}

/* The rest of an H2CTermReq: log it, then close. */
static size_t rx_term_bytes(struct tcp_conn *c, size_t len)
{
	size_t n = c->data_left < len ? c->data_left : len;
	const struct tcp_term_pdu *tp = (const struct tcp_term_pdu *)c->hdr;

	c->data_left -= n;
	if (!c->data_left) {
		tcp_log_conn(c, NVEMU_TCP_LOG_WARN, "%s: host sent H2CTermReq FES %u FEI %u",
			c->peer, le16toh(tp->fes), le32toh(tp->fei));
		tcp_conn_close(c, "H2CTermReq");
	}
	return n;
}

static size_t rx_bytes(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	switch (c->rx) {
	case RX_CH:
		return rx_ch_bytes(c, buf, len);
	case RX_HDR:
		n = c->hdr_need - c->hdr_got;
		n = n < len ? n : len;
		memcpy(c->hdr + c->hdr_got, buf, n);
		c->hdr_got += n;
		if (c->hdr_got == c->hdr_need)
			rx_hdr(c);
		return n;
	case RX_PAD:
		n = c->pad_left < len ? c->pad_left : len;
		c->pad_left -= n;
		if (!c->pad_left)
			start_data(c);
		return n;
	case RX_DATA:
		return rx_data_bytes(c, buf, len);
	case RX_DDGST:
		return rx_ddgst_bytes(c, buf, len);
	case RX_TERM:
		return rx_term_bytes(c, len);
	}
	return n;
}

void tcp_conn_rx(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	if (!len)
		return;
	if (c->rx_paused || c->stash_len) {
		/* Older bytes are waiting: these go behind them. */
		if (stash_add(c, buf, len) && !c->rx_paused)
			tcp_conn_kick(c);
		return;
	}
	c->in_cb++;
	c->in_rx = true;
	while (len && (c->state == CONN_IC || c->state == CONN_LIVE) && !c->tx_lost) {
		size_t n = rx_bytes(c, buf, len);

		buf += n;
		len -= n;
	}
	c->in_rx = false;
	c->in_cb--;
}

static bool buf_room(const struct tcp_conn *c, const struct tcp_cmd *cmd)
{
	uint32_t others = c->buf_bytes - cmd->counted;

	/* Alone, any command fits (queue_buf_max >= the largest transfer). */
	return !others || others + cmd->len <= c->t->p.queue_buf_max;
}

void tcp_cmd_start_data(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;

	if (cmd->st != CMD_WAIT && (!TAILQ_EMPTY(&c->waiting) || !buf_room(c, cmd))) {
		/* Other commands hold the queue's share: wait, in order (no R2T yet). */
		cmd->st = CMD_WAIT;
		TAILQ_INSERT_TAIL(&c->waiting, cmd, wait_link);
		return;
	}
	if (cmd->st == CMD_WAIT)
		TAILQ_REMOVE(&c->waiting, cmd, wait_link);
	cmd->st = CMD_RX;
	if (cmd_buf(cmd, cmd->len)) {
		tcp_log_conn(c, NVEMU_TCP_LOG_ERR, "%s: out of memory for %u data bytes", c->peer,
			cmd->len);
		tcp_cmd_respond(cmd, NVEMU_SC_GENERIC(NVME_SC_INTERNAL), 0, 0);
		return;
	}
	if (tcp_sqe_h2c(&cmd->req.cmd) && c->state == CONN_LIVE) {
		tcp_cmd_start_h2c(cmd);
		return;
	}
	tcp_cmd_data_ready(cmd);
}

void tcp_conn_kick(struct tcp_conn *c)
{
	if (c->kicking || c->state != CONN_LIVE)
		return;
	if (!conn_owned(c)) {
		conn_post_kick(c);
		return;
	}
	c->kicking = true;
	c->in_cb++;
	while (!TAILQ_EMPTY(&c->waiting) && c->state == CONN_LIVE &&
	       buf_room(c, TAILQ_FIRST(&c->waiting)))
		tcp_cmd_start_data(TAILQ_FIRST(&c->waiting));
	if (c->rx_paused && !conn_should_pause(c) && c->state == CONN_LIVE && !c->in_rx) {
		uint64_t now = nvemu_now_ns();

		conn_set_paused(c, false);
		/* Time spent paused was ours, not the host's. */
		c->rx_start_ns = now;
		for (unsigned i = 0; i < c->nr_cmds && c->cmds[i]; i++)
			if (c->cmds[i]->st == CMD_H2C)
				c->cmds[i]->data_ns = now;
		if (c->ch_pending) {
			c->ch_pending = false;
			c->in_rx = true;
			rx_ch(c);
			c->in_rx = false;
		}
		if (c->stash_len) {
			uint8_t *b = c->stash;
			uint32_t n = c->stash_len;

			c->stash = NULL;
			c->stash_len = 0;
			tcp_conn_rx(c, b, n);
			free(b);
		}
	}
	c->in_cb--;
	c->kicking = false;
}

uint32_t tcp_conn_rx_dst(struct tcp_conn *c, uint8_t **dst)
{
	/*
	 * Only the data of a PDU whose header passed every check, with nothing
	 * older stashed: data_dst/data_left were validated against the
	 * command's buffer by rx_capsule/rx_h2c_data.
	 */
	if (c->rx != RX_DATA || !c->data_dst || c->rx_paused || c->stash_len ||
	    (c->state != CONN_LIVE))
		return 0;
	*dst = c->data_dst;
	return c->data_left;
}

/*
 * Commands that complete while a chunk is parsed (RAM and null namespaces
 * complete inline) send their PDUs together: one sendmsg per chunk instead
 * of one per completion. direct bytes were received in place at the
 * command's data buffer and come first, then len bytes of buf.
 */
static void rx_batched(struct tcp_conn *c, uint8_t *direct, size_t dlen, const uint8_t *buf,
		       size_t len)
{
	c->tx_batch = true;
	if (dlen)
		tcp_conn_rx(c, direct, dlen);
	if (len && c->state != CONN_CLOSED)
		tcp_conn_rx(c, buf, len);
	c->tx_batch = false;
	if (c->tx_flush_pending) {
		c->tx_flush_pending = false;
		conn_flush_top(c);
	}
}

/* Large PDU data goes straight into the command's buffer, not via the stack. */
#define RX_DIRECT_MIN 512u
#define RX_DIRECT_BIG  16384u
#define RX_DIRECT_TAIL 128u /* a digest, an H2CData or CapsuleCmd header with digest, padding */

void tcp_conn_event(int fd, uint32_t revents, void *arg)
{
	struct tcp_conn *c = arg;
	uint8_t buf[65536];

	c->in_cb++;
	if (c->ssl && !c->tls_done && c->state != CONN_CLOSED) {
		int r = tcp_tls_handshake(c);

		if (r < 0)
			tcp_conn_close(c, "TLS handshake failed");
		if (r <= 0)
			goto out;
	}
	if ((revents & EPOLLOUT) && c->state != CONN_CLOSED)
		conn_flush_top(c);
	if (c->rx_paused && (revents & (EPOLLHUP | EPOLLERR))) {
		tcp_conn_close(c, "peer gone");
	} else if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (int i = 0; i < 16 && c->state != CONN_CLOSED && !c->rx_paused; i++) {
			struct iovec iov[2];
			struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
			uint8_t *dst = NULL;
			uint32_t dn = tcp_conn_rx_dst(c, &dst);
			size_t want, tail;
			ssize_t r;

			if (dn < RX_DIRECT_MIN || c->ssl)
				dn = 0; /* TLS: records are decrypted into buf */
			/*
			 * The data, then what follows it (digest, next headers) on
			 * the stack. After a large piece, only about a header's
			 * worth: the next PDU is likely more data, which the next
			 * round receives in place too instead of copying it.
			 */
			iov[0] = (struct iovec){dst, dn};
			tail = dn >= RX_DIRECT_BIG || (c->rx_big && c->state == CONN_LIVE)
				       ? RX_DIRECT_TAIL
				       : sizeof(buf);
			iov[1] = (struct iovec){buf, tail};
			want = dn + iov[1].iov_len;
			if (c->ssl) {
				r = tcp_tls_recv(c, buf, sizeof(buf));
			} else {
				/*
				 * Without the lock: no other thread parses, frees the
				 * command whose buffer dst is, or closes the socket.
				 */
				conn_io_unlock(c, true);
				r = recvmsg(fd, &msg, MSG_DONTWAIT);
				conn_io_lock(c, true);
			}
			if (r > 0) {
				size_t d = (size_t)r < dn ? (size_t)r : dn;

				if (c->state == CONN_DRAIN)
					continue;
				rx_batched(c, dst, d, buf, (size_t)r - d);
				/*
				 * Large data is streaming: read only the next
				 * header (a split one, too) into the stack, so
				 * the data after it is received in place.
				 */
				c->rx_big = dn >= RX_DIRECT_BIG ||
					    (c->rx == RX_DATA && c->data_left >= RX_DIRECT_BIG);
				/* TLS hands over one record at a time: read on until it wants more. */
				if ((size_t)r < want && !c->ssl)
					break;
				continue;
			}
			if (r == 0) {
				tcp_conn_close(c, c->state == CONN_DRAIN ? NULL : "peer closed");
				break;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				tcp_conn_close(c, strerror(errno));
			break;
		}
	}
	/* Sent PDUs may have freed buffer room: resume a paused queue. */
	tcp_conn_kick(c);
	if (c->tx_lost && c->state != CONN_CLOSED)
		tcp_conn_close(c, "a PDU could not be queued (out of memory)");
out:;
	struct nvemu_tcp_target *t = c->t;
	bool on_target_loop = c->loop == t->loop;

	c->in_cb--;
	if (c->move_to && c->state == CONN_LIVE && !c->in_cb)
		conn_move(c);
	tcp_conn_close_owned(c);
	/* Controllers go away on the target's loop (a reactor's tick is the main one's). */
	if (on_target_loop)
		tcp_assoc_gc(t);
}

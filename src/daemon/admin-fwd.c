// SPDX-License-Identifier: MIT
/*
 * Admin command forwarding: a controller's selected Identify (by CNS) and
 * Set Features (by FID) commands go to an application on a unix socket
 * (include/nvemu/admin-fwd.h, docs/admin-forwarding.md). The command stays
 * in flight in the engine while the application thinks; its reply, the
 * timeout, or a broken connection ends it. Without a valid reply the
 * engine answers as it would have without forwarding.
 *
 * The application is a peer like any host: its replies are checked
 * (framing, tag, lengths, status), a framing error ends the connection, and
 * at most FWD_MAX_OUTSTANDING commands per controller wait for it.
 * Commands end only from this file's loop callbacks, never from inside the
 * engine's call to forward(), so the engine is never re-entered.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "event-loop.h"
#include "rpc.h"
#include <nvemu/admin-fwd.h>

#define FWD_MAX_OUTSTANDING 32
#define FWD_MSG_MAX	    (sizeof(struct nvemu_fwd_hdr) + sizeof(struct nvemu_fwd_request) + NVEMU_FWD_DATA_MAX)
#define FWD_REPLY_MAX	    (sizeof(struct nvemu_fwd_hdr) + sizeof(struct nvemu_fwd_reply) + NVEMU_FWD_DATA_MAX)
#define FWD_TX_MAX	    (FWD_MAX_OUTSTANDING * FWD_MSG_MAX)

struct fwd_slot {
	struct nvemu_req *req; /* NULL: free */
	uint32_t tag;
	uint64_t deadline_ns;
	bool cancelled;
};

struct nvemud_fwd {
	struct nvemud *d;
	char name[NVEMUD_CTRL_NAME_MAX];
	uint16_t cntlid;
	uint8_t cns[32], fid[32]; /* bitmaps of what is forwarded */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned timeout_ms;

	int fd;
	struct loop_src *src, *timer;
	bool broken;	    /* close from the timer (never inside forward()) */
	bool down_logged;   /* a failed connect was logged; quiet until one works */
	uint8_t rx[FWD_REPLY_MAX];
	size_t rx_len;
	uint8_t *tx;
	size_t tx_len, tx_off;

	struct fwd_slot slots[FWD_MAX_OUTSTANDING];
	unsigned nr;
	uint32_t next_tag;
	struct {
		uint64_t forwarded, answered, fallbacks, timeouts, bad_replies, late_replies,
			aborted, declined, connects;
	} st;
};

static const struct nvemu_admin_fwd_ops fwd_ops;
static void fwd_timer_cb(struct loop_src *src, void *arg);

/* ---- configuration */

/* "0x0,0x1,0x13" (SNAP's form) into a bitmap; -1 with e naming field. */
static int parse_list(const char *s, uint8_t bits[32], const char *field, struct rpc_err *e)
{
	memset(bits, 0, 32);
	if (!s)
		return 0;
	for (const char *p = s;;) {
		unsigned long v;
		char *end;

		while (*p == ' ')
			p++;
		if (p[0] != '0' || (p[1] != 'x' && p[1] != 'X') || !strchr("0123456789abcdefABCDEF", p[2]) ||
		    !p[2])
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "%s: expected comma-separated hex values with 0x prefix (e.g. 0x0,0x1)",
					   field);
		errno = 0;
		v = strtoul(p + 2, &end, 16);
		if (errno || v > 0xff)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: %.12s is above 0xff",
					   field, p);
		bits[v / 8] |= (uint8_t)(1u << (v % 8));
		p = end;
		while (*p == ' ')
			p++;
		if (!*p)
			return 0;
		if (*p != ',')
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "%s: unexpected '%c' (values are separated by commas)",
					   field, *p);
		p++;
	}
}

static json_t *list_json(const uint8_t bits[32])
{
	char buf[256 * 5 + 1] = "";
	size_t n = 0;

	for (unsigned v = 0; v < 256; v++)
		if (bits[v / 8] & (1u << (v % 8)))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s0x%x", n ? "," : "", v);
	return json_string(buf);
}

static bool any(const uint8_t bits[32])
{
	return !nvemud_all_zero(bits, 32);
}

int nvemud_fwd_check(struct nvemud *d, json_t *params, struct rpc_err *e)
{
	uint8_t cns[32], fid[32];
	bool on;

	if (parse_list(rpc_str(params, "admin_identify_cmd_fwd"), cns, "admin_identify_cmd_fwd", e) ||
	    parse_list(rpc_str(params, "admin_set_features_cmd_fwd"), fid,
		       "admin_set_features_cmd_fwd", e))
		return -1;
	on = any(cns) || any(fid);
	if (on && !rpc_has(params, "admin_cmd_fwd_socket"))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "admin_cmd_fwd_socket: required with admin_identify_cmd_fwd or admin_set_features_cmd_fwd");
	if (!on && (rpc_has(params, "admin_cmd_fwd_socket") ||
		    rpc_has(params, "admin_cmd_fwd_timeout_ms")))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "%s: needs admin_identify_cmd_fwd or admin_set_features_cmd_fwd",
				   rpc_has(params, "admin_cmd_fwd_socket") ? "admin_cmd_fwd_socket" :
				   "admin_cmd_fwd_timeout_ms");
	if (on && rpc_str(params, "admin_cmd_fwd_socket")[0] != '/')
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "admin_cmd_fwd_socket: must be an absolute path");
	if (on && !d->loop)
		return rpc_err_set(e, RPC_ERR_STATE,
				   "admin_cmd_fwd_socket: forwarding needs nvemud's event loop");
	return 0;
}

int nvemud_fwd_setup(struct nvemud *d, struct nvemud_ctrl *c, struct nvemu_ctrl *ctrl,
		     json_t *params, struct rpc_err *e)
{
	struct nvemud_fwd *f;

	if (nvemud_fwd_check(d, params, e))
		return -1;
	if (!rpc_has(params, "admin_cmd_fwd_socket"))
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	f->d = d;
	f->fd = -1;
	snprintf(f->name, sizeof(f->name), "%s", c->name);
	f->cntlid = c->cntlid;
	parse_list(rpc_str(params, "admin_identify_cmd_fwd"), f->cns, "", e);
	parse_list(rpc_str(params, "admin_set_features_cmd_fwd"), f->fid, "", e);
	snprintf(f->path, sizeof(f->path), "%s", rpc_str(params, "admin_cmd_fwd_socket"));
	f->timeout_ms = (unsigned)rpc_uint(params, "admin_cmd_fwd_timeout_ms",
					   NVEMUD_FWD_TIMEOUT_DEFAULT_MS);
	f->timer = loop_add_disarmed_timer(d->loop, fwd_timer_cb, f);
	if (!f->timer) {
		free(f);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory (forwarding timer)");
	}
	c->fwd = f;
	nvemud_fwd_bind(c, ctrl);
	return 0;
}

void nvemud_fwd_bind(struct nvemud_ctrl *c, struct nvemu_ctrl *ctrl)
{
	if (c->fwd && ctrl)
		nvemu_ctrl_set_admin_fwd(ctrl, &fwd_ops, c->fwd);
}

void nvemud_fwd_save(const struct nvemud_ctrl *c, json_t *p)
{
	const struct nvemud_fwd *f = c->fwd;

	if (!f)
		return;
	if (any(f->cns))
		json_object_set_new(p, "admin_identify_cmd_fwd", list_json(f->cns));
	if (any(f->fid))
		json_object_set_new(p, "admin_set_features_cmd_fwd", list_json(f->fid));
	json_object_set_new(p, "admin_cmd_fwd_socket", json_string(f->path));
	json_object_set_new(p, "admin_cmd_fwd_timeout_ms", json_integer(f->timeout_ms));
}

json_t *nvemud_fwd_stats_json(const struct nvemud_ctrl *c)
{
	const struct nvemud_fwd *f = c->fwd;

	if (!f)
		return NULL;
	return json_pack("{s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "connected",
			 f->fd >= 0, "outstanding", (int)f->nr, "forwarded",
			 (json_int_t)f->st.forwarded, "answered", (json_int_t)f->st.answered,
			 "fallbacks", (json_int_t)f->st.fallbacks, "timeouts",
			 (json_int_t)f->st.timeouts, "bad_replies", (json_int_t)f->st.bad_replies,
			 "late_replies", (json_int_t)f->st.late_replies, "aborted",
			 (json_int_t)f->st.aborted, "declined", (json_int_t)f->st.declined,
			 "connects", (json_int_t)f->st.connects);
}

/* ---- the reply parser (the fuzzed surface) */

int nvemud_fwd_parse_reply(const uint8_t *buf, size_t len, struct nvemud_fwd_msg *m)
{
	struct nvemu_fwd_hdr h;
	struct nvemu_fwd_reply r;
	uint32_t body;

	if (len < sizeof(h))
		return 0;
	memcpy(&h, buf, sizeof(h));
	if (le32toh(h.magic) != NVEMU_FWD_MAGIC || le16toh(h.version) != NVEMU_FWD_VERSION ||
	    le16toh(h.type) != NVEMU_FWD_REPLY)
		return -1;
	body = le32toh(h.len);
	if (body < sizeof(r) || body > sizeof(r) + NVEMU_FWD_DATA_MAX)
		return -1;
	if (len < sizeof(h) + sizeof(r))
		return 0;
	memcpy(&r, buf + sizeof(h), sizeof(r));
	if (le32toh(r.data_len) != body - sizeof(r))
		return -1;
	if (len < sizeof(h) + body)
		return 0;
	m->tag = le32toh(h.tag);
	m->status = le16toh(r.status);
	m->flags = le16toh(r.flags);
	m->dw0 = le32toh(r.dw0);
	m->dw1 = le32toh(r.dw1);
	m->data_len = le32toh(r.data_len);
	m->data = buf + sizeof(h) + sizeof(r);
	return (int)(sizeof(h) + body);
}

int nvemud_fwd_check_reply(const struct nvemud_fwd_msg *m, uint8_t opc)
{
	if (m->flags & ~NVEMU_FWD_F_FALLBACK)
		return -1;
	if (m->flags & NVEMU_FWD_F_FALLBACK)
		return m->data_len ? -1 : 0;
	if (m->status & 0x8000)
		return -1;
	if (opc == nvme_admin_identify)
		return m->data_len == (m->status ? 0 : NVEMU_FWD_DATA_MAX) ? 0 : -1;
	return m->data_len ? -1 : 0;
}

/* ---- outstanding commands */

static void fwd_rearm(struct nvemud_fwd *f)
{
	uint64_t now = nvemud_now_ns(), first = UINT64_MAX;

	for (unsigned i = 0; i < FWD_MAX_OUTSTANDING; i++) {
		struct fwd_slot *s = &f->slots[i];

		if (!s->req)
			continue;
		if (s->cancelled)
			first = 0;
		else if (s->deadline_ns < first)
			first = s->deadline_ns;
	}
	if (f->broken)
		first = 0;
	if (first == UINT64_MAX)
		loop_timer_disarm(f->timer);
	else
		loop_timer_arm(f->timer, first <= now ? 0 : (unsigned)((first - now + 999999) / 1000000),
			       false);
}

/* Take slot s's command out; the caller ends it. */
static struct nvemu_req *slot_take(struct nvemud_fwd *f, struct fwd_slot *s)
{
	struct nvemu_req *req = s->req;

	s->req = NULL;
	f->nr--;
	return req;
}

static struct fwd_slot *slot_by_tag(struct nvemud_fwd *f, uint32_t tag)
{
	for (unsigned i = 0; i < FWD_MAX_OUTSTANDING; i++)
		if (f->slots[i].req && f->slots[i].tag == tag)
			return &f->slots[i];
	return NULL;
}

static void end_fallback(struct nvemud_fwd *f, struct nvemu_req *req)
{
	f->st.fallbacks++;
	nvemu_req_fwd_fallback(req);
}

/* The connection is gone: every command it held is answered by the engine. */
static void fwd_close(struct nvemud_fwd *f, const char *why)
{
	if (f->fd >= 0) {
		nvemud_log(f->d, NVEMUD_LOG_WARN, "%s: admin forwarder on %s: %s", f->name, f->path,
			   why);
		loop_del(f->src);
		f->src = NULL;
		close(f->fd);
		f->fd = -1;
	}
	f->broken = false;
	f->rx_len = 0;
	f->tx_len = f->tx_off = 0;
	for (unsigned i = 0; i < FWD_MAX_OUTSTANDING; i++) {
		struct fwd_slot *s = &f->slots[i];

		if (!s->req)
			continue;
		if (s->cancelled) {
			f->st.aborted++;
			nvemu_req_fwd_abort(slot_take(f, s));
		} else {
			end_fallback(f, slot_take(f, s));
		}
	}
	fwd_rearm(f);
}

static void fwd_timer_cb(struct loop_src *src, void *arg)
{
	struct nvemud_fwd *f = arg;
	uint64_t now = nvemud_now_ns();

	if (f->broken) {
		fwd_close(f, "connection failed");
		return;
	}
	for (unsigned i = 0; i < FWD_MAX_OUTSTANDING; i++) {
		struct fwd_slot *s = &f->slots[i];

		if (!s->req)
			continue;
		if (s->cancelled) {
			f->st.aborted++;
			nvemu_req_fwd_abort(slot_take(f, s));
		} else if (now >= s->deadline_ns) {
			f->st.timeouts++;
			nvemud_log(f->d, NVEMUD_LOG_WARN,
				   "%s: admin forwarder on %s did not answer opcode 0x%02x within %u ms: nvemu answers",
				   f->name, f->path, s->req->cmd.opc, f->timeout_ms);
			end_fallback(f, slot_take(f, s));
		}
	}
	fwd_rearm(f);
}

static void handle_reply(struct nvemud_fwd *f, const struct nvemud_fwd_msg *m)
{
	struct fwd_slot *s = slot_by_tag(f, m->tag);
	struct nvemu_req *req;

	if (!s || s->cancelled) {
		/* Timed out or aborted already: the host has its answer. */
		f->st.late_replies++;
		return;
	}
	req = slot_take(f, s);
	if (nvemud_fwd_check_reply(m, req->cmd.opc)) {
		f->st.bad_replies++;
		nvemud_log(f->d, NVEMUD_LOG_WARN,
			   "%s: admin forwarder's reply to opcode 0x%02x is invalid (status 0x%x, flags 0x%x, %u data bytes): nvemu answers",
			   f->name, req->cmd.opc, m->status, m->flags, m->data_len);
		end_fallback(f, req);
		return;
	}
	if (m->flags & NVEMU_FWD_F_FALLBACK) {
		end_fallback(f, req);
		return;
	}
	f->st.answered++;
	nvemu_req_fwd_complete(req, m->status, m->dw0, m->dw1, m->data_len ? m->data : NULL,
			       m->data_len);
}

static int fwd_flush(struct nvemud_fwd *f)
{
	while (f->tx_off < f->tx_len) {
		ssize_t n = send(f->fd, f->tx + f->tx_off, f->tx_len - f->tx_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		f->tx_off += (size_t)n;
	}
	if (f->tx_off == f->tx_len)
		f->tx_off = f->tx_len = 0;
	return loop_mod_fd(f->src, EPOLLIN | (f->tx_len ? EPOLLOUT : 0));
}

static void fwd_fd_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct nvemud_fwd *f = arg;

	if (revents & EPOLLOUT && fwd_flush(f)) {
		fwd_close(f, "send failed");
		return;
	}
	if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = recv(fd, f->rx + f->rx_len, sizeof(f->rx) - f->rx_len, MSG_DONTWAIT);
		size_t off = 0;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fwd_close(f, n ? "receive failed" : "closed the connection");
			return;
		}
		f->rx_len += (size_t)n;
		for (;;) {
			struct nvemud_fwd_msg m;
			int used = nvemud_fwd_parse_reply(f->rx + off, f->rx_len - off, &m);

			if (used < 0) {
				f->st.bad_replies++;
				fwd_close(f, "malformed reply (bad magic, version, type or length): disconnected");
				return;
			}
			if (!used)
				break;
			handle_reply(f, &m);
			off += (size_t)used;
			/* A reply may have freed this connection's state (fwd_close never runs here). */
		}
		memmove(f->rx, f->rx + off, f->rx_len - off);
		f->rx_len -= off;
		fwd_rearm(f);
	}
}

static int fwd_connect(struct nvemud_fwd *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (f->fd >= 0)
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* A unix stream connect completes at once or fails (EAGAIN: backlog full). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (!f->down_logged)
			nvemud_log(f->d, NVEMUD_LOG_WARN,
				   "%s: admin forwarder on %s unreachable (%s): nvemu answers until it is",
				   f->name, f->path, strerror(errno));
		f->down_logged = true;
		close(fd);
		return -1;
	}
	f->src = loop_add_fd(f->d->loop, fd, EPOLLIN, fwd_fd_cb, f);
	if (!f->src) {
		close(fd);
		return -1;
	}
	if (!f->tx)
		f->tx = malloc(FWD_TX_MAX);
	if (!f->tx) {
		loop_del(f->src);
		f->src = NULL;
		close(fd);
		return -1;
	}
	f->fd = fd;
	f->down_logged = false;
	f->st.connects++;
	nvemud_log(f->d, NVEMUD_LOG_INFO, "%s: admin forwarder connected on %s", f->name, f->path);
	return 0;
}

static void put_sqe(uint8_t *p, const struct nvemu_sqe *c)
{
	struct nvemu_sqe le = *c;

	le.cid = htole16(c->cid);
	le.nsid = htole32(c->nsid);
	le.cdw2 = htole32(c->cdw2);
	le.cdw3 = htole32(c->cdw3);
	le.mptr = htole64(c->mptr);
	le.dptr1 = htole64(c->dptr1);
	le.dptr2 = htole64(c->dptr2);
	le.cdw10 = htole32(c->cdw10);
	le.cdw11 = htole32(c->cdw11);
	le.cdw12 = htole32(c->cdw12);
	le.cdw13 = htole32(c->cdw13);
	le.cdw14 = htole32(c->cdw14);
	le.cdw15 = htole32(c->cdw15);
	memcpy(p, &le, sizeof(le));
}

/* ---- the engine's ops */

static bool fwd_wants(void *priv, const struct nvemu_sqe *cmd)
{
	struct nvemud_fwd *f = priv;
	uint8_t v = cmd->cdw10 & 0xff; /* Identify CNS and Set Features FID share bits 7:0 */
	const uint8_t *bits = cmd->opc == nvme_admin_identify ? f->cns : f->fid;

	return bits[v / 8] & (1u << (v % 8));
}

static bool fwd_forward(void *priv, struct nvemu_req *req, const void *local, uint16_t local_status)
{
	struct nvemud_fwd *f = priv;
	const void *data = NULL;
	uint32_t data_len = 0;
	struct nvemu_fwd_hdr h;
	struct nvemu_fwd_request r;
	struct fwd_slot *s = NULL;
	size_t need;

	if (req->cmd.opc == nvme_admin_identify) {
		if (!local_status) {
			data = local;
			data_len = NVEMU_FWD_DATA_MAX;
		}
	} else {
		int64_t n = nvemu_req_expected_len(req->ctrl, 0, &req->cmd);

		/* Malformed or more than the protocol carries: the engine answers. */
		if (n < 0 || n > NVEMU_FWD_DATA_MAX || (uint64_t)n > req->buf_len || (n && !req->buf))
			goto decline;
		data = req->buf;
		data_len = (uint32_t)n;
	}
	if (f->broken || f->nr == FWD_MAX_OUTSTANDING || fwd_connect(f))
		goto decline;
	need = sizeof(h) + sizeof(r) + data_len;
	if (f->tx_len + need > FWD_TX_MAX)
		goto decline;
	for (unsigned i = 0; i < FWD_MAX_OUTSTANDING && !s; i++)
		if (!f->slots[i].req)
			s = &f->slots[i];
	if (!s)
		goto decline;
	if (!++f->next_tag)
		f->next_tag = 1;
	h = (struct nvemu_fwd_hdr){ .magic = htole32(NVEMU_FWD_MAGIC),
				    .version = htole16(NVEMU_FWD_VERSION),
				    .type = htole16(NVEMU_FWD_REQUEST),
				    .tag = htole32(f->next_tag),
				    .len = htole32((uint32_t)(sizeof(r) + data_len)) };
	memset(&r, 0, sizeof(r));
	memcpy(r.ctrl, f->name, strnlen(f->name, sizeof(r.ctrl)));
	r.cntlid = htole16(f->cntlid);
	r.local_status = htole16(local_status);
	r.data_len = htole32(data_len);
	put_sqe(r.sqe, &req->cmd);
	memcpy(f->tx + f->tx_len, &h, sizeof(h));
	memcpy(f->tx + f->tx_len + sizeof(h), &r, sizeof(r));
	if (data_len)
		memcpy(f->tx + f->tx_len + sizeof(h) + sizeof(r), data, data_len);
	f->tx_len += need;
	*s = (struct fwd_slot){ .req = req, .tag = f->next_tag,
				.deadline_ns = nvemud_now_ns() + f->timeout_ms * 1000000ull };
	f->nr++;
	f->st.forwarded++;
	if (fwd_flush(f))
		f->broken = true; /* ended from the timer: not inside the engine's call */
	fwd_rearm(f);
	return true;
decline:
	f->st.declined++;
	return false;
}

static void fwd_cancel(void *priv, struct nvemu_req *req)
{
	struct nvemud_fwd *f = priv;

	for (unsigned i = 0; i < FWD_MAX_OUTSTANDING; i++)
		if (f->slots[i].req == req)
			f->slots[i].cancelled = true;
	fwd_rearm(f);
}

static const struct nvemu_admin_fwd_ops fwd_ops = {
	.wants = fwd_wants,
	.forward = fwd_forward,
	.cancel = fwd_cancel,
};

void nvemud_fwd_free(struct nvemud_ctrl *c)
{
	struct nvemud_fwd *f = c->fwd;
	struct nvemu_ctrl *ctrl;

	if (!f)
		return;
	/* Commands still held end now (the controller lives while they are in flight). */
	if (f->fd >= 0)
		nvemud_log(f->d, NVEMUD_LOG_INFO, "%s: admin forwarder on %s disconnected", f->name,
			   f->path);
	if (f->src)
		loop_del(f->src);
	f->src = NULL;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	ctrl = nvemu_subsys_ctrl(c->subsys, c->cntlid);
	if (ctrl)
		nvemu_ctrl_set_admin_fwd(ctrl, NULL, NULL);
	fwd_close(f, "");
	loop_del(f->timer);
	free(f->tx);
	free(f);
	c->fwd = NULL;
}

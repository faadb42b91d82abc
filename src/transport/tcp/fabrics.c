/* SPDX-License-Identifier: MIT */
/*
 * NVMe over Fabrics on the TCP target: the command capsule's SGL, Connect
 * (the dynamic controller model), Property Get/Set, Disconnect, the
 * discovery controller, and handing everything else to the engine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "tcp-internal.h"

#define FABRICS_OPC	0x7f
#define IPO_DATA(field) ((1u << 16) | (uint32_t)offsetof(struct nvmf_connect_data, field))
#define IPO_SQE(off)	((uint32_t)(off))

#define STATUS_INVALID_FIELD  (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define STATUS_SEQ_ERROR      (NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVEMU_DNR)
#define STATUS_INVALID_OPCODE (NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVEMU_DNR)
#define STATUS_SGL_LEN	      (NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR)
#define STATUS_CONNECT_PARAM  (NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM) | NVEMU_DNR)
#define STATUS_AUTH_REQUIRED  (NVEMU_SC_CMD(NVME_SC_AUTH_REQUIRED) | NVEMU_DNR)
/* Connect response DW0: the host must authenticate the queue (ATR). */
#define CONNECT_AUTHREQ_ATR (1u << 17)

static void tcp_reset(struct nvemu_ctrl *ctrl);
static void tcp_kato_expired(struct nvemu_ctrl *ctrl);
static void tcp_id_ctrl(const struct nvemu_ctrl *ctrl, struct nvme_id_ctrl *id);

/*
 * Keep alive: the target's tick asks the engine (tcp_assoc_tick ->
 * nvemu_ctrl_check_keep_alive), which calls kato_expired on a timeout.
 * Limits that Identify reports come from id_ctrl.
 */
static const struct nvemu_transport_ops tcp_ops = {
	.name = "tcp",
	.fabrics = true,
	.reset = tcp_reset,
	.kato_expired = tcp_kato_expired,
	.id_ctrl = tcp_id_ctrl,
};

/* What the TCP binding imposes on Identify Controller (both in-band and NVMe-MI). */
static void tcp_id_ctrl(const struct nvemu_ctrl *ctrl, struct nvme_id_ctrl *id)
{
	uint16_t maxcmd = ctrl->p.max_queue_entries;

	id->ioccsz = htole32(TCP_IOCCSZ);
	id->iorcsz = htole32(1);
	id->icdoff = 0;
	id->fcatt = 0; /* dynamic controller model */
	id->msdbd = 1;
	/* SGLs, with offsets into in-capsule data; bit 18 (SGL longer than the data) clear. */
	id->sgls = htole32(1u | 1u << 20);
	if (maxcmd)
		id->maxcmd = htole16(maxcmd);
}

/* ---- associations */

static void assoc_close_io(struct tcp_assoc *a, const char *why)
{
	for (unsigned q = 1; q <= a->nr_io; q++) {
		struct tcp_conn *c = a->io[q];

		if (!c)
			continue;
		a->io[q] = NULL;
		c->assoc = NULL;
		c->sq = NULL;
		tcp_conn_close(c, why);
	}
}

/* CC.EN 1->0 or shutdown: the I/O queues are gone; the host reconnects them. */
static void tcp_reset(struct nvemu_ctrl *ctrl)
{
	struct tcp_assoc *a = nvemu_ctrl_transport_priv(ctrl);

	if (a)
		assoc_close_io(a, "controller reset");
}

static void tcp_kato_expired(struct nvemu_ctrl *ctrl)
{
	struct tcp_assoc *a = nvemu_ctrl_transport_priv(ctrl);

	if (a)
		tcp_assoc_teardown(a, "keep alive timeout");
}

void tcp_assoc_teardown(struct tcp_assoc *a, const char *why)
{
	struct tcp_conn *admin = a->admin;

	if (a->dead)
		return;
	a->dead = true;
	tcp_log_assoc(a, NVEMU_TCP_LOG_INFO, "%s: controller %u (host %s): association ends: %s",
		nvemu_subsys_nqn(a->ts->s), a->ctrl->cntlid, a->ctrl->hostnqn, why);
	assoc_close_io(a, why);
	if (admin) {
		a->admin = NULL;
		admin->assoc = NULL;
		admin->sq = NULL;
		tcp_conn_close(admin, why);
	}
	/* Outstanding AERs complete (aborted) into the closed admin queue. */
	if (a->ctrl && nvemu_ctrl_enabled(a->ctrl))
		nvemu_ctrl_set_cc(a->ctrl, 0);
}

static void assoc_free(struct tcp_assoc *a)
{
	LIST_REMOVE(a, link);
	free(a->io);
	free(a);
}

void tcp_assoc_gc(struct nvemu_tcp_target *t)
{
	struct tcp_assoc *a, *next;

	for (a = LIST_FIRST(&t->assocs); a; a = next) {
		next = LIST_NEXT(a, link);
		if (!a->dead)
			continue;
		if (a->ctrl) {
			/* Held commands and shutdown flushes still reference it. */
			if (nvemu_ctrl_inflight(a->ctrl) || !STAILQ_EMPTY(&a->ctrl->held))
				continue;
			nvemu_ctrl_bind_transport(a->ctrl, NULL, NULL, NULL);
			if (nvemu_subsys_remove_ctrl(a->ts->s, a->ctrl->cntlid, NULL)) {
				nvemu_ctrl_bind_transport(a->ctrl, &tcp_ops, a, NULL);
				continue;
			}
			a->ctrl = NULL;
		}
		assoc_free(a);
	}
	/* Ports of removed listeners go once their controllers are gone. */
	for (unsigned i = 0; i < t->nr_subs; i++) {
		struct tcp_subsys *ts = &t->subs[i];

		for (unsigned j = 0; j < ts->nr_dead_ports;) {
			if (nvemu_subsys_remove_port(ts->s, ts->dead_ports[j], NULL) == -EBUSY) {
				j++;
				continue;
			}
			ts->dead_ports[j] = ts->dead_ports[--ts->nr_dead_ports];
		}
	}
}

bool tcp_assoc_tick(struct tcp_assoc *a, uint64_t now)
{
	if (a->dead || !a->ctrl)
		return false;
	/*
	 * Keep Alive starts once the admin queue is authenticated: a host's
	 * first DH-HMAC-CHAP transaction may take longer than KATO (its crypto
	 * is set up then); auth_timeout_ms bounds that phase instead.
	 */
	if (a->admin && tcp_conn_unauthenticated(a->admin)) {
		nvemu_ctrl_keep_alive(a->ctrl);
		return false;
	}
	return nvemu_ctrl_check_keep_alive(a->ctrl, now);
}

void tcp_conn_detach(struct tcp_conn *c)
{
	struct tcp_assoc *a = c->assoc;
	uint16_t qid = tcp_conn_qid(c);

	if (!a)
		return;
	c->assoc = NULL;
	c->sq = NULL;
	if (a->admin == c) {
		a->admin = NULL;
		tcp_assoc_teardown(a, "admin queue closed");
		return;
	}
	if (qid && qid <= a->nr_io && a->io[qid] == c) {
		a->io[qid] = NULL;
		if (a->ctrl && !a->dead)
			nvemu_ctrl_disconnect_queue(a->ctrl, qid);
	}
}

/* ---- helpers */

static const struct tcp_host *find_host(const struct tcp_subsys *ts, const char *hostnqn)
{
	for (unsigned i = 0; i < ts->nr_hosts; i++)
		if (!strcmp(ts->hosts[i].nqn, hostnqn))
			return &ts->hosts[i];
	return NULL;
}

static bool host_allowed(const struct tcp_subsys *ts, const char *hostnqn)
{
	return ts->allow_any || find_host(ts, hostnqn);
}

void tcp_escape(char *dst, size_t dstsz, const char *src, size_t srclen)
{
	size_t o = 0;

	for (size_t i = 0; i < srclen && src[i] && o + 5 < dstsz; i++) {
		uint8_t ch = (uint8_t)src[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			dst[o++] = (char)ch;
		else
			o += (size_t)snprintf(dst + o, dstsz - o, "\\x%02x", ch);
	}
	if (dstsz)
		dst[o < dstsz ? o : dstsz - 1] = 0;
}

/*
 * A Connect NQN field: NUL-terminated within its 256 bytes, 1..223 bytes,
 * UTF-8 without control characters (C0, DEL, C1), so it is safe to store,
 * compare and log.
 */
static bool nqn_field_ok(const char field[NVME_NQN_LENGTH])
{
	const uint8_t *p = (const uint8_t *)field;
	size_t len = strnlen(field, NVME_NQN_LENGTH);

	if (!len || len > NVMF_NQN_SIZE)
		return false;
	for (size_t i = 0; i < len;) {
		uint32_t cp, min;
		unsigned more;

		if (p[i] < 0x80) {
			if (p[i] < 0x20 || p[i] == 0x7f)
				return false;
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			cp = p[i] & 0x1f;
			more = 1;
			min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			cp = p[i] & 0x0f;
			more = 2;
			min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			cp = p[i] & 0x07;
			more = 3;
			min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= more)
			return false;
		for (unsigned k = 1; k <= more; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp <= 0x9f))
			return false;
		i += more + 1;
	}
	return true;
}

/* dst holds NVEMU_NQN_MAX + 1 bytes; src passed nqn_field_ok(). */
static void copy_nqn(char *dst, const char *src)
{
	size_t n = strnlen(src, NVEMU_NQN_MAX);

	memcpy(dst, src, n);
	dst[n] = 0;
}

/* The port of ts reached through the connection's listener. */
static const struct tcp_sub_listener *sub_listener(const struct tcp_subsys *ts,
						   const struct tcp_conn *c)
{
	for (unsigned i = 0; i < ts->nr_ls; i++)
		if (!c->lst || ts->ls[i].l == c->lst)
			return &ts->ls[i];
	return NULL;
}

/* ---- Connect */

static void connect_admin(struct tcp_cmd *cmd, struct tcp_subsys *ts,
			  const struct tcp_sub_listener *sl, const struct nvmf_connect_data *d,
			  const char *hostnqn, uint16_t sqsize, uint8_t cattr, uint32_t kato)
{
	struct tcp_conn *c = cmd->conn;
	struct nvemu_tcp_target *t = c->t;
	struct nvemu_ctrl_params p;
	struct nvemu_error err = {0};
	struct nvemu_ctrl *ctrl;
	struct tcp_assoc *a;
	uint16_t cntlid;

	if (le16toh(d->cntlid) != 0xffff) {
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_DATA(cntlid), 0);
		return;
	}
	if (sqsize + 1u > TCP_ADMIN_DEPTH) {
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_SQE(44), 0);
		return;
	}
	if (tcp_conn_set_depth(c, sqsize + 1u)) {
		tcp_cmd_respond(cmd, NVEMU_SC_GENERIC(NVME_SC_INTERNAL), 0, 0);
		return;
	}
	a = calloc(1, sizeof(*a));
	if (a)
		a->io = calloc(t->p.num_io_queues + 1u, sizeof(*a->io));
	if (!a || !a->io) {
		free(a);
		tcp_cmd_respond(cmd, NVEMU_SC_GENERIC(NVME_SC_INTERNAL), 0, 0);
		return;
	}
	nvemu_ctrl_params_init(&p);
	p.port_id = sl->port_id;
	p.num_io_queues = t->p.num_io_queues;
	p.max_queue_entries = t->p.queue_depth;
	if (nvemu_subsys_add_ctrl_ex(ts->s, &p, &cntlid, &err)) {
		tcp_log_conn(c, NVEMU_TCP_LOG_WARN, "%s: Connect from %s refused: %s", c->peer, hostnqn,
			err.msg);
		free(a->io);
		free(a);
		tcp_cmd_respond(cmd, NVEMU_SC_CMD(NVME_SC_CONNECT_CTRL_BUSY) | NVEMU_DNR, 0, 0);
		return;
	}
	ctrl = nvemu_subsys_ctrl(ts->s, cntlid);
	/* The subsystem is the template: every namespace is attached. */
	for (unsigned i = 0; i < ts->s->nr_ns; i++)
		nvemu_ctrl_attach_ns(ctrl, ts->s->ns[i]->nsid, NULL);
	nvemu_ctrl_set_aqa(ctrl, sqsize | (uint32_t)sqsize << 16);
	nvemu_ctrl_set_kato(ctrl, kato);
	nvemu_ctrl_set_host(ctrl, hostnqn, d->hostid);
	nvemu_ctrl_bind_transport(ctrl, &tcp_ops, a, NULL);

	a->t = t;
	a->ts = ts;
	a->ctrl = ctrl;
	a->admin = c;
	a->nr_io = t->p.num_io_queues;
	LIST_INSERT_HEAD(&t->assocs, a, link);

	c->assoc = a;
	c->sq = nvemu_ctrl_connect_queue(ctrl, 0, sqsize + 1);
	c->log_qid = 0;
	c->connected = true;
	c->sqflow_off = cattr & (1u << 2);
	tcp_log_conn(c, NVEMU_TCP_LOG_INFO, "%s: host %s connected to %s: controller %u, KATO %u ms%s",
		c->peer, hostnqn, nvemu_subsys_nqn(ts->s), cntlid, kato,
		c->auth ? ", authentication required" : "");
	tcp_cmd_respond(cmd, 0, cntlid | (c->auth ? CONNECT_AUTHREQ_ATR : 0), 0);
}

static void connect_io(struct tcp_cmd *cmd, struct tcp_subsys *ts,
		       const struct nvmf_connect_data *d, const char *hostnqn, uint16_t qid,
		       uint16_t sqsize, uint8_t cattr)
{
	struct tcp_conn *c = cmd->conn;
	uint16_t cntlid = le16toh(d->cntlid);
	struct tcp_assoc *a;
	struct nvemu_ctrl *ctrl;

	LIST_FOREACH(a, &c->t->assocs, link)
		if (!a->dead && a->ts == ts && a->ctrl->cntlid == cntlid)
			break;
	if (!a) {
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_DATA(cntlid), 0);
		return;
	}
	/* Only the host that made the association may add queues to it. */
	if (strcmp(a->ctrl->hostnqn, hostnqn)) {
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_DATA(hostnqn), 0);
		return;
	}
	if (memcmp(a->ctrl->hostid, d->hostid, sizeof(a->ctrl->hostid))) {
		tcp_log_conn(c, NVEMU_TCP_LOG_WARN,
			"%s: I/O queue Connect to controller %u with another host identifier",
			c->peer, cntlid);
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_DATA(hostid), 0);
		return;
	}
	ctrl = a->ctrl;
	if (!nvemu_ctrl_enabled(ctrl)) {
		tcp_cmd_respond(cmd, STATUS_SEQ_ERROR, 0, 0);
		return;
	}
	if (qid > a->nr_io || qid > ctrl->p.num_io_queues) {
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_SQE(42), 0);
		return;
	}
	if (sqsize + 1u > ctrl->p.max_queue_entries) {
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_SQE(44), 0);
		return;
	}
	if (a->io[qid] || ctrl->sqs[qid].valid) {
		tcp_cmd_respond(cmd, STATUS_SEQ_ERROR, 0, 0);
		return;
	}
	if (tcp_conn_set_depth(c, sqsize + 1u)) {
		tcp_cmd_respond(cmd, NVEMU_SC_GENERIC(NVME_SC_INTERNAL), 0, 0);
		return;
	}
	a->io[qid] = c;
	c->assoc = a;
	c->sq = nvemu_ctrl_connect_queue(ctrl, qid, sqsize + 1);
	c->log_qid = qid;
	c->connected = true;
	c->sqflow_off = cattr & (1u << 2);
	tcp_cmd_respond(cmd, 0, cntlid | (c->auth ? CONNECT_AUTHREQ_ATR : 0), 0);
	/* Its reactor takes the queue over once this event is done (conn.c). */
	if (c->t->ops && c->t->ops->queue_loop && c->fd >= 0 && !c->queue_loop) {
		c->queue_loop = c->t->ops->queue_loop(c->t->loop, ctrl, qid);
		if (c->queue_loop != c->loop)
			c->move_to = c->queue_loop;
	}
}

/* The discovery controller: run by the transport itself, one per connection. */
static void connect_discovery(struct tcp_cmd *cmd, uint16_t qid, uint16_t sqsize, uint8_t cattr,
			      uint32_t kato)
{
	struct tcp_conn *c = cmd->conn;
	struct nvemu_tcp_target *t = c->t;

	if (qid) {
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_SQE(42), 0);
		return;
	}
	if (sqsize + 1u > TCP_ADMIN_DEPTH) {
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_SQE(44), 0);
		return;
	}
	if (tcp_conn_set_depth(c, sqsize + 1u)) {
		tcp_cmd_respond(cmd, NVEMU_SC_GENERIC(NVME_SC_INTERNAL), 0, 0);
		return;
	}
	c->disc = true;
	c->connected = true;
	c->disc_sq = (struct nvemu_sq){.valid = true, .size = sqsize + 1};
	c->sq = &c->disc_sq;
	c->log_qid = 0;
	c->sqflow_off = cattr & (1u << 2);
	c->kato_ms = kato;
	c->last_ka_ns = nvemu_now_ns();
	if (++t->next_disc_cntlid >= 0xfff0)
		t->next_disc_cntlid = 1;
	c->disc_cntlid = t->next_disc_cntlid;
	tcp_cmd_respond(cmd, 0, c->disc_cntlid, 0);
}

/* Both NQNs are checked before anything is copied, compared or logged; false: refused. */
static bool connect_nqns_ok(struct tcp_cmd *cmd, const struct nvmf_connect_data *d)
{
	struct tcp_conn *c = cmd->conn;
	bool sub = !nqn_field_ok(d->subsysnqn);
	char esc[128];

	if (!sub && nqn_field_ok(d->hostnqn))
		return true;
	tcp_escape(esc, sizeof(esc), sub ? d->subsysnqn : d->hostnqn, NVME_NQN_LENGTH);
	tcp_log_conn(c, NVEMU_TCP_LOG_WARN,
		"%s: Connect refused: %s is not a valid NQN (1..%d bytes of UTF-8, no "
		"control characters): \"%s\"",
		c->peer, sub ? "subnqn" : "hostnqn", NVMF_NQN_SIZE, esc);
	tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, sub ? IPO_DATA(subsysnqn) : IPO_DATA(hostnqn),
			0);
	return false;
}

/* The subsystem subnqn names, if the connection's listener serves it; NULL: refused. */
static struct tcp_subsys *connect_subsys(struct tcp_cmd *cmd, const char *subnqn,
					 const char *hostnqn, const struct tcp_sub_listener **sl)
{
	struct tcp_conn *c = cmd->conn;
	struct nvemu_tcp_target *t = c->t;
	struct tcp_subsys *ts = NULL;

	for (unsigned i = 0; i < t->nr_subs; i++) {
		if (strcmp(nvemu_subsys_nqn(t->subs[i].s), subnqn))
			continue;
		*sl = sub_listener(&t->subs[i], c);
		if (*sl)
			ts = &t->subs[i];
		break;
	}
	if (!ts) {
		tcp_log_conn(c, NVEMU_TCP_LOG_WARN, "%s: Connect to unknown subsystem %s", c->peer,
			subnqn);
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_DATA(subsysnqn), 0);
		return NULL;
	}
	if (!host_allowed(ts, hostnqn)) {
		tcp_log_conn(c, NVEMU_TCP_LOG_WARN, "%s: host %s is not allowed to connect to %s",
			c->peer, hostnqn, subnqn);
		tcp_cmd_respond(cmd, NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_HOST) | NVEMU_DNR,
				IPO_DATA(hostnqn), 0);
		return NULL;
	}
	return ts;
}

/*
 * A host with a secret authenticates every queue: its transaction state is
 * made now, and the Connect response asks for it. Non-zero: refused.
 */
static int connect_auth(struct tcp_cmd *cmd, const struct tcp_subsys *ts, const char *hostnqn,
			const char *subnqn)
{
	struct tcp_conn *c = cmd->conn;
	const struct tcp_host *h = find_host(ts, hostnqn);
	struct nvemu_auth_params ap = {
		.hostnqn = hostnqn,
		.subnqn = subnqn,
		.digests = c->t->dhchap_digests,
		.dhgroups = c->t->dhchap_dhgroups,
	};

	nvemu_auth_destroy(c->auth);
	c->auth = NULL;
	if (!h || !h->key.len)
		return 0;
	ap.host_key = &h->key;
	ap.ctrl_key = h->ctrl_key.len ? &h->ctrl_key : NULL;
	c->auth = nvemu_auth_create(&ap);
	if (!c->auth) {
		tcp_cmd_respond(cmd, NVEMU_SC_GENERIC(NVME_SC_INTERNAL), 0, 0);
		return -ENOMEM;
	}
	c->auth_start_ns = nvemu_now_ns();
	return 0;
}

static void fabrics_connect(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;
	const struct nvemu_sqe *sqe = &cmd->req.cmd;
	uint16_t recfmt = sqe->cdw10 & 0xffff, qid = sqe->cdw10 >> 16;
	uint16_t sqsize = sqe->cdw11 & 0xffff;
	uint8_t cattr = (sqe->cdw11 >> 16) & 0xff;
	char subnqn[NVEMU_NQN_MAX + 1], hostnqn[NVEMU_NQN_MAX + 1];
	const struct nvmf_connect_data *d = (const void *)cmd->buf;
	const struct tcp_sub_listener *sl = NULL;
	struct tcp_subsys *ts;

	if (c->connected) {
		tcp_cmd_respond(cmd, STATUS_SEQ_ERROR, 0, 0);
		return;
	}
	if (recfmt) {
		tcp_cmd_respond(cmd, NVEMU_SC_CMD(NVME_SC_CONNECT_FORMAT) | NVEMU_DNR, IPO_SQE(40),
				0);
		return;
	}
	if (cmd->len < sizeof(*d)) {
		tcp_cmd_respond(cmd, STATUS_SGL_LEN, 0, 0);
		return;
	}
	if (!sqsize) {
		tcp_cmd_respond(cmd, STATUS_CONNECT_PARAM, IPO_SQE(44), 0);
		return;
	}
	if (!connect_nqns_ok(cmd, d))
		return;
	copy_nqn(subnqn, d->subsysnqn);
	copy_nqn(hostnqn, d->hostnqn);
	/* Over TLS, the PSK identity said who the host is and where it goes. */
	if (c->ssl && (!c->tls_hostnqn || strcmp(hostnqn, c->tls_hostnqn) ||
		       (strcmp(subnqn, c->tls_subnqn) && strcmp(subnqn, NVME_DISC_SUBSYS_NAME)))) {
		tcp_log(c->t, NVEMU_TCP_LOG_WARN,
			"%s: Connect as %s to %s refused: the TLS PSK identity is another host's "
			"or subsystem's",
			c->peer, hostnqn, subnqn);
		tcp_cmd_respond(cmd, NVEMU_SC_CMD(NVME_SC_CONNECT_INVALID_HOST) | NVEMU_DNR,
				IPO_DATA(hostnqn), 0);
		return;
	}
	if (!strcmp(subnqn, NVME_DISC_SUBSYS_NAME)) {
		connect_discovery(cmd, qid, sqsize, cattr, sqe->cdw12);
		return;
	}
	ts = connect_subsys(cmd, subnqn, hostnqn, &sl);
	if (!ts)
		return;
	if (connect_auth(cmd, ts, hostnqn, subnqn))
		return;
	if (!qid)
		connect_admin(cmd, ts, sl, d, hostnqn, sqsize, cattr, sqe->cdw12);
	else
		connect_io(cmd, ts, d, hostnqn, qid, sqsize, cattr);
}

/* ---- Property Get / Set */

static void fabrics_property(struct tcp_cmd *cmd, bool set)
{
	struct tcp_conn *c = cmd->conn;
	const struct nvemu_sqe *sqe = &cmd->req.cmd;
	bool wide = (sqe->cdw10 & 7) == 1;
	uint32_t off = sqe->cdw11;
	uint64_t val = sqe->cdw12 | (uint64_t)sqe->cdw13 << 32, v;
	struct nvemu_ctrl *ctrl = c->assoc ? c->assoc->ctrl : NULL;

	if ((sqe->cdw10 & 7) > 1) {
		tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
		return;
	}
	if (set) {
		if (off != NVEMU_REG_CC || wide) {
			tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
			return;
		}
		if (ctrl) {
			nvemu_ctrl_set_cc(ctrl, (uint32_t)val);
		} else {
			c->disc_cc = (uint32_t)val;
			c->disc_csts = (val & 1) ? 1 : 0;
			if (NVME_CC_SHN((uint32_t)val))
				c->disc_csts |= NVME_CSTS_SHST_CMPLT << NVME_CSTS_SHST_SHIFT;
		}
		tcp_cmd_respond(cmd, 0, 0, 0);
		return;
	}
	switch (off) {
	case NVEMU_REG_CAP:
		if (!wide)
			goto bad;
		v = ctrl ? nvemu_ctrl_get_cap(ctrl)
			 : (uint64_t)(TCP_ADMIN_DEPTH - 1) | 1ull << NVME_CAP_CQR_SHIFT |
				    15ull << NVME_CAP_TO_SHIFT |
				    (uint64_t)NVME_CAP_CSS_NVM << NVME_CAP_CSS_SHIFT;
		break;
	case NVEMU_REG_VS:
		v = ctrl ? nvemu_ctrl_get_vs(ctrl) : NVEMU_VS;
		break;
	case NVEMU_REG_CC:
		v = ctrl ? nvemu_ctrl_get_cc(ctrl) : c->disc_cc;
		break;
	case NVEMU_REG_CSTS:
		v = ctrl ? nvemu_ctrl_get_csts(ctrl) : c->disc_csts;
		break;
	default:
		goto bad;
	}
	if (wide != (off == NVEMU_REG_CAP))
		goto bad;
	tcp_cmd_respond(cmd, 0, (uint32_t)v, (uint32_t)(v >> 32));
	return;
bad:
	tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
}

/* ---- AUTH_Send / AUTH_Receive (DH-HMAC-CHAP, engine/auth.c) */

static void fabrics_auth(struct tcp_cmd *cmd, bool send)
{
	struct tcp_conn *c = cmd->conn;
	uint32_t dw10 = cmd->req.cmd.cdw10;
	bool was_busy;
	uint16_t status;
	size_t len = 0;

	if (!c->auth) {
		/* No secret for this host: nothing to authenticate. */
		tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
		return;
	}
	if (dw10 >> 24 != NVEMU_AUTH_SECP || ((dw10 >> 8) & 0xff) != NVEMU_AUTH_SPSP0 ||
	    ((dw10 >> 16) & 0xff) != NVEMU_AUTH_SPSP1) {
		tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
		return;
	}
	was_busy = nvemu_auth_busy(c->auth);
	if (c->assoc && c->assoc->ctrl)
		nvemu_ctrl_keep_alive(c->assoc->ctrl);
	if (send) {
		status = nvemu_auth_send(c->auth, cmd->buf, cmd->len);
		tcp_cmd_respond(cmd, status, 0, 0);
	} else {
		status = nvemu_auth_receive(c->auth, cmd->buf, cmd->len, &len);
		tcp_cmd_complete_read(cmd, status ? 0 : (uint32_t)len, status, 0, 0);
	}
	if (was_busy && !nvemu_auth_busy(c->auth) && nvemu_auth_result(c->auth) == NVEMU_AUTH_OK)
		tcp_log(c->t, NVEMU_TCP_LOG_INFO, "%s: queue %u authenticated (DH-HMAC-CHAP %s, %s)",
			c->peer, tcp_conn_qid(c),
			nvemu_auth_hash_name(nvemu_auth_hash(c->auth)),
			nvemu_auth_dhgroup_name(nvemu_auth_dhgroup(c->auth)));
	else if (nvemu_auth_result(c->auth) == NVEMU_AUTH_FAILED && !nvemu_auth_busy(c->auth) &&
		 nvemu_auth_fail_reason(c->auth))
		tcp_log(c->t, NVEMU_TCP_LOG_WARN,
			"%s: queue %u: DH-HMAC-CHAP authentication failed (reason %#x)", c->peer,
			tcp_conn_qid(c), nvemu_auth_fail_reason(c->auth));
}

static void fabrics_cmd(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;
	uint8_t fctype = cmd->req.cmd.nsid & 0xff;

	if (fctype == nvme_fabrics_type_connect) {
		fabrics_connect(cmd);
		return;
	}
	if (!c->connected) {
		tcp_cmd_respond(cmd, STATUS_SEQ_ERROR, 0, 0);
		return;
	}
	switch (fctype) {
	case nvme_fabrics_type_auth_send:
	case nvme_fabrics_type_auth_receive:
		fabrics_auth(cmd, fctype == nvme_fabrics_type_auth_send);
		return;
	case nvme_fabrics_type_property_get:
	case nvme_fabrics_type_property_set:
		if (tcp_conn_qid(c)) {
			tcp_cmd_respond(cmd, STATUS_INVALID_OPCODE, 0, 0);
			return;
		}
		fabrics_property(cmd, fctype == nvme_fabrics_type_property_set);
		return;
	case nvme_fabrics_type_disconnect:
		if (!tcp_conn_qid(c)) {
			tcp_cmd_respond(cmd,
					NVEMU_SC_CMD(NVME_SC_DISCONNECT_INVALID_QTYPE) | NVEMU_DNR,
					0, 0);
			return;
		}
		tcp_cmd_respond(cmd, 0, 0, 0);
		tcp_conn_detach(c);
		c->close_after_tx = true;
		c->state = CONN_DRAIN;
		tcp_conn_flush(c);
		return;
	default:
		tcp_cmd_respond(cmd, STATUS_INVALID_OPCODE, 0, 0);
	}
}

/* ---- the discovery controller */

static void disc_identify(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;
	struct nvme_id_ctrl *id;

	if ((cmd->req.cmd.cdw10 & 0xff) != NVME_IDENTIFY_CNS_CTRL) {
		tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
		return;
	}
	if (cmd->len < sizeof(*id)) {
		tcp_cmd_respond(cmd, STATUS_SGL_LEN, 0, 0);
		return;
	}
	id = (struct nvme_id_ctrl *)cmd->buf;
	memset(id, 0, sizeof(*id));
	nvemu_strpad(id->sn, sizeof(id->sn), "nvemu-discovery");
	nvemu_strpad(id->mn, sizeof(id->mn), "nvemu discovery controller");
	nvemu_strpad(id->fr, sizeof(id->fr), NVEMU_VERSION);
	id->cntlid = htole16(c->disc_cntlid);
	id->ver = htole32(NVEMU_VS);
	id->cntrltype = NVME_CTRL_CNTRLTYPE_DISCOVERY;
	id->lpa = 1u << 2; /* extended data for Get Log Page */
	id->elpe = 0;
	id->maxcmd = htole16(TCP_ADMIN_DEPTH);
	id->kas = htole16(1);
	id->oaes = htole32((uint32_t)NVME_CTRL_OAES_DL);
	id->sgls = htole32(1u | 1u << 20);
	id->ioccsz = htole32(TCP_IOCCSZ);
	id->iorcsz = htole32(1);
	id->msdbd = 1;
	snprintf(id->subnqn, sizeof(id->subnqn), "%s", NVME_DISC_SUBSYS_NAME);
	tcp_cmd_complete_read(cmd, sizeof(*id), 0, 0, 0);
}

static void disc_log(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;
	struct nvemu_tcp_target *t = c->t;
	const struct nvemu_sqe *sqe = &cmd->req.cmd;
	uint64_t numd = ((sqe->cdw10 >> 16) | (uint64_t)(sqe->cdw11 & 0xffff) << 16) + 1;
	uint64_t len = numd * 4, off = sqe->cdw12 | (uint64_t)sqe->cdw13 << 32, size;
	struct nvmf_discovery_log *log;
	unsigned nr = 0, k = 0;

	if ((sqe->cdw10 & 0xff) != NVME_LOG_LID_DISCOVER || off % 4) {
		tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
		return;
	}
	if (len > cmd->len) {
		tcp_cmd_respond(cmd, STATUS_SGL_LEN, 0, 0);
		return;
	}
	for (unsigned i = 0; i < t->nr_subs; i++)
		nr += t->subs[i].nr_ls;
	size = sizeof(*log) + (uint64_t)nr * sizeof(log->entries[0]);
	if (off > size) {
		tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
		return;
	}
	log = calloc(1, size);
	if (!log) {
		tcp_cmd_respond(cmd, NVEMU_SC_GENERIC(NVME_SC_INTERNAL), 0, 0);
		return;
	}
	log->genctr = htole64(t->genctr);
	log->numrec = htole64(nr);
	log->recfmt = 0;
	for (unsigned i = 0; i < t->nr_subs; i++) {
		struct tcp_subsys *ts = &t->subs[i];

		for (unsigned j = 0; j < ts->nr_ls; j++) {
			struct nvmf_disc_log_entry *e = &log->entries[k++];
			struct tcp_listener *l = ts->ls[j].l;

			e->trtype = NVMF_TRTYPE_TCP;
			e->adrfam = l->adrfam;
			e->subtype = NVME_NQN_NVME;
			e->treq = (l->secure ? NVMF_TREQ_REQUIRED : NVMF_TREQ_NOT_REQUIRED) |
				  NVMF_TREQ_DISABLE_SQFLOW;
			e->portid = htole16(ts->ls[j].port_id);
			e->cntlid = htole16(0xffff);
			e->asqsz = htole16(TCP_ADMIN_DEPTH);
			snprintf(e->trsvcid, sizeof(e->trsvcid), "%s", l->trsvcid);
			snprintf(e->subnqn, sizeof(e->subnqn), "%s", nvemu_subsys_nqn(ts->s));
			snprintf(e->traddr, sizeof(e->traddr), "%s", l->traddr);
			e->tsas.tcp.sectype =
				l->secure ? NVMF_TCP_SECTYPE_TLS13 : NVMF_TCP_SECTYPE_NONE;
		}
	}
	memset(cmd->buf, 0, len);
	memcpy(cmd->buf, (uint8_t *)log + off, size - off < len ? size - off : len);
	free(log);
	tcp_cmd_complete_read(cmd, (uint32_t)len, 0, 0, 0);
}

/* Notice, Discovery Log Page Change, log page 70h (Discovery). */
#define DISC_AEN_DW0                                                                               \
	(NVME_AER_NOTICE | (uint32_t)NVME_AER_NOTICE_DISC_CHANGED << 8 |                           \
	 (uint32_t)NVME_LOG_LID_DISCOVER << 16)

static void disc_send_aen(struct tcp_conn *c)
{
	struct tcp_cmd *aer = c->disc_aer;

	c->disc_aer = NULL;
	c->disc_aen_pending = false;
	tcp_cmd_respond(aer, 0, DISC_AEN_DW0, 0);
}

void tcp_disc_log_changed(struct nvemu_tcp_target *t)
{
	t->genctr++;
	for (struct tcp_conn *c = LIST_FIRST(&t->conns); c; c = LIST_NEXT(c, link)) {
		if (!c->disc || !c->connected || c->state != CONN_LIVE ||
		    !(c->disc_aec & (uint32_t)NVME_CTRL_OAES_DL))
			continue;
		c->disc_aen_pending = true;
		if (c->disc_aer)
			disc_send_aen(c);
	}
}

static void disc_cmd(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;
	const struct nvemu_sqe *sqe = &cmd->req.cmd;

	c->last_ka_ns = nvemu_now_ns();
	if (!(c->disc_csts & 1)) {
		tcp_cmd_respond(cmd, NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR), 0, 0);
		return;
	}
	switch (sqe->opc) {
	case nvme_admin_identify:
		disc_identify(cmd);
		return;
	case nvme_admin_get_log_page:
		disc_log(cmd);
		return;
	case nvme_admin_keep_alive:
		tcp_cmd_respond(cmd, 0, 0, 0);
		return;
	case nvme_admin_set_features:
		if ((sqe->cdw10 & 0xff) == NVME_FEAT_FID_KATO) {
			c->kato_ms = sqe->cdw11;
			tcp_cmd_respond(cmd, 0, 0, 0);
		} else if ((sqe->cdw10 & 0xff) == NVME_FEAT_FID_ASYNC_EVENT) {
			/* Only Discovery Log Page Change notices exist here. */
			c->disc_aec = sqe->cdw11 & (uint32_t)NVME_CTRL_OAES_DL;
			tcp_cmd_respond(cmd, 0, 0, 0);
		} else {
			tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
		}
		return;
	case nvme_admin_get_features:
		if ((sqe->cdw10 & 0xff) == NVME_FEAT_FID_KATO)
			tcp_cmd_respond(cmd, 0, c->kato_ms, 0);
		else if ((sqe->cdw10 & 0xff) == NVME_FEAT_FID_ASYNC_EVENT)
			tcp_cmd_respond(cmd, 0, c->disc_aec, 0);
		else
			tcp_cmd_respond(cmd, STATUS_INVALID_FIELD, 0, 0);
		return;
	case nvme_admin_async_event:
		if (c->disc_aer) {
			tcp_cmd_respond(cmd, NVEMU_SC_CMD(NVME_SC_ASYNC_LIMIT) | NVEMU_DNR, 0, 0);
			return;
		}
		c->disc_aer = cmd; /* stays CMD_RX until a log change or the connection ends */
		if (c->disc_aen_pending)
			disc_send_aen(c);
		return;
	default:
		tcp_cmd_respond(cmd, STATUS_INVALID_OPCODE, 0, 0);
	}
}

/* ---- the engine */

static void req_done(struct nvemu_req *req)
{
	struct tcp_cmd *cmd = req->transport_priv;
	struct tcp_conn *c = cmd->conn;
	uint16_t status = req->cqe.status;
	uint32_t len = req->xfer_len;

	c->engine_inflight--;
	if (c->state != CONN_LIVE) {
		tcp_cmd_release(cmd);
		tcp_conn_free_if_idle(c);
		return;
	}
	if (len > cmd->len)
		len = cmd->len;
	c->in_cb++;
	if (nvemu_opc_dir(req->cmd.opc) == NVEMU_XFER_FROM_CTRL)
		tcp_cmd_complete_read(cmd, status ? 0 : len, status, req->cqe.dw0, req->cqe.dw1);
	else
		tcp_cmd_respond(cmd, status, req->cqe.dw0, req->cqe.dw1);
	/* A sent response may free room a waiting command needs. */
	tcp_conn_kick(c);
	c->in_cb--;
	tcp_conn_free_if_idle(c);
}

static void submit(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;
	struct tcp_assoc *a = c->assoc;
	struct nvemu_req *req = &cmd->req;

	if (!a || a->dead || !a->ctrl) {
		tcp_cmd_respond(cmd, NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ), 0, 0);
		return;
	}
	req->sqid = tcp_conn_qid(c);
	req->buf = cmd->len ? cmd->buf : NULL;
	req->buf_len = cmd->len;
	req->done = req_done;
	req->transport_priv = cmd;
	cmd->st = CMD_ENGINE;
	c->engine_inflight++;
	/* Any command proves the host alive (as with TBKAS). */
	nvemu_ctrl_keep_alive(a->ctrl);
	nvemu_ctrl_submit(a->ctrl, req);
}

void tcp_cmd_data_ready(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;

	if (cmd->req.cmd.opc == FABRICS_OPC)
		fabrics_cmd(cmd);
	else if (!c->connected)
		tcp_cmd_respond(cmd, STATUS_SEQ_ERROR, 0, 0);
	else if (c->disc)
		disc_cmd(cmd);
	else
		submit(cmd);
}

/* Bytes the command transfers on this queue; -1: let the engine refuse it. */
static int64_t cmd_xfer_len(struct tcp_cmd *cmd, int64_t *max)
{
	struct tcp_conn *c = cmd->conn;
	const struct nvemu_sqe *sqe = &cmd->req.cmd;
	struct tcp_assoc *a = c->assoc;
	uint32_t numd;

	*max = TCP_MAX_DATA;
	if (sqe->opc == FABRICS_OPC) {
		switch (sqe->nsid & 0xff) {
		case nvme_fabrics_type_connect:
			return (int64_t)sizeof(struct nvmf_connect_data);
		case nvme_fabrics_type_auth_send:
		case nvme_fabrics_type_auth_receive:
			*max = NVEMU_AUTH_MSG_MAX; /* TL / AL */
			return sqe->cdw11;
		default:
			return 0;
		}
	}
	if (c->disc) {
		switch (sqe->opc) {
		case nvme_admin_identify:
			return NVME_IDENTIFY_DATA_SIZE;
		case nvme_admin_get_log_page:
			numd = (sqe->cdw10 >> 16) | (sqe->cdw11 & 0xffff) << 16;
			return ((int64_t)numd + 1) * 4;
		default:
			return 0;
		}
	}
	if (!a || a->dead || !a->ctrl)
		return -1;
	if (nvemu_ctrl_max_xfer_bytes(a->ctrl) &&
	    nvemu_ctrl_max_xfer_bytes(a->ctrl) < (uint64_t)*max)
		*max = (int64_t)nvemu_ctrl_max_xfer_bytes(a->ctrl);
	return nvemu_req_expected_len(a->ctrl, tcp_conn_qid(c), sqe);
}

uint16_t tcp_cmd_check(struct tcp_cmd *cmd, uint32_t inline_len)
{
	struct tcp_conn *c = cmd->conn;
	const struct nvemu_sqe *sqe = &cmd->req.cmd;
	uint8_t type = (uint8_t)(sqe->dptr2 >> 56), psdt = (sqe->flags >> 6) & 3;
	uint32_t sgl_len = (uint32_t)sqe->dptr2;
	int64_t want, max;

	cmd->len = 0;
	if (sqe->opc == FABRICS_OPC) {
		switch (sqe->nsid & 0xff) {
		case nvme_fabrics_type_connect:
		case nvme_fabrics_type_property_get:
		case nvme_fabrics_type_property_set:
		case nvme_fabrics_type_disconnect:
		case nvme_fabrics_type_auth_send:
		case nvme_fabrics_type_auth_receive:
			break;
		default:
			return STATUS_INVALID_OPCODE;
		}
	}
	if (!c->connected &&
	    (sqe->opc != FABRICS_OPC || (sqe->nsid & 0xff) != nvme_fabrics_type_connect))
		return STATUS_SEQ_ERROR;
	/* Refused before any data moves: no R2T for a queue that has not authenticated. */
	if (c->connected && tcp_conn_unauthenticated(c)) {
		uint8_t fctype = sqe->nsid & 0xff;

		if (sqe->opc != FABRICS_OPC || (fctype != nvme_fabrics_type_auth_send &&
						 fctype != nvme_fabrics_type_auth_receive &&
						 fctype != nvme_fabrics_type_disconnect))
			return STATUS_AUTH_REQUIRED;
	}
	/* Fabrics data pointers are SGLs: PRPs (00b) and the reserved 11b are not. */
	if (psdt == 0 || psdt == 3)
		return STATUS_INVALID_FIELD;
	if (inline_len) {
		if (type != TCP_SGL_INCAPSULE)
			return NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_TYPE) | NVEMU_DNR;
		if (sqe->dptr1)
			return NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_OFFSET) | NVEMU_DNR;
		if (sgl_len != inline_len || !tcp_sqe_h2c(sqe))
			return STATUS_SGL_LEN;
	} else if (type == TCP_SGL_INCAPSULE && sgl_len) {
		/* In-capsule data described but none sent. */
		return STATUS_SGL_LEN;
	} else if (type != TCP_SGL_INCAPSULE && type != TCP_SGL_TRANSPORT) {
		return NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_TYPE) | NVEMU_DNR;
	}
	want = cmd_xfer_len(cmd, &max);
	if (want < 0)
		return 0; /* no buffer: the engine answers with the precise error */
	if (want > max)
		return STATUS_INVALID_FIELD;
	/* SGLS bit 18 is clear: the SGL must describe exactly the transfer. */
	if (sgl_len != want)
		return STATUS_SGL_LEN;
	cmd->len = sgl_len;
	return 0;
}

/* A valid capsule is in: run it, or first move its data with R2Ts. */
void tcp_cmd_execute_capsule(struct tcp_cmd *cmd)
{
	uint32_t inline_len = cmd->rcvd;

	cmd->rcvd = 0;
	if (inline_len || !cmd->len)
		tcp_cmd_data_ready(cmd);
	else
		tcp_cmd_start_data(cmd);
}

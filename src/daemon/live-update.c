// SPDX-License-Identifier: MIT
/*
 * Live update (docs/live-update.md): a new nvemud takes over a running
 * one's controllers without the guests seeing more than a pause.
 *
 *   old: nvme_controller_suspend --live_update_notifier 1   (per controller:
 *        fetching stops, in-flight commands drain)
 *   new: nvemud --take-over SOCK ...                        (waits on SOCK)
 *   old: nvemud_live_update --socket SOCK                   (hands everything over)
 *   new: nvme_controller_resume --live_update 1             (per controller)
 *
 * The old daemon sends one handover: its configuration (save_config), each
 * controller's snapshot (engine state) and, for controllers served over
 * vfio-user, the server's state with its descriptors (listening and
 * connected sockets, guest memory fds, interrupt eventfds, doorbell pages)
 * by SCM_RIGHTS over a SOCK_SEQPACKET socket. The new daemon rebuilds,
 * answers, and the old one lets go of the guests (no reset, no interrupt),
 * closes its sockets and exits; the new one then binds what the old one
 * released (NVMe/TCP listeners, MI endpoints, the RPC socket) and serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "event-loop.h"
#include "rpc-server.h"
#include "rpc.h"
#include "util/unix-listen.h"

#define LU_MAGIC	    0x554c564eu /* "NVLU" */
#define LU_VERSION	    1
#define LU_CHUNK	    (32u * 1024)
#define LU_FDS_PER_MSG	    200
#define LU_JSON_MAX	    (64u << 20)
#define LU_FDS_MAX	    8192
#define LU_STATE_MAX	    (4u << 20) /* one vfio-user server's state */
#define LU_REPLY_TIMEOUT_MS 60000
#define LU_EOF_TIMEOUT_MS   30000

struct lu_hdr {
	uint32_t magic, version, json_len, nfds;
};

/* Methods that bind what the old daemon holds until it lets go: run after. */
static bool deferred_method(const char *m)
{
	return !strcmp(m, "nvmf_subsystem_add_listener") || !strcmp(m, "nvme_mi_endpoint_create");
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = ev };
		uint64_t now = now_ms();
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* One SEQPACKET message with up to LU_FDS_PER_MSG descriptors. */
static int send_msg(int sock, const void *buf, size_t len, const int *fds, unsigned nfds,
		    uint64_t deadline)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * LU_FDS_PER_MSG)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == (ssize_t)len)
			return 0;
		if (n >= 0)
			return -EMSGSIZE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (wait_fd(sock, POLLOUT, deadline))
			return -ETIMEDOUT;
	}
}

/* The whole handover: header, then the JSON in chunks carrying the descriptors. */
static int lu_send(int sock, const char *json, size_t len, const int *fds, unsigned nfds)
{
	uint64_t deadline = now_ms() + LU_REPLY_TIMEOUT_MS;
	struct lu_hdr h = { LU_MAGIC, LU_VERSION, (uint32_t)len, nfds };
	size_t off = 0;
	unsigned fd_off = 0;
	int r = send_msg(sock, &h, sizeof(h), NULL, 0, deadline);

	while (!r && (off < len || fd_off < nfds)) {
		size_t n = len - off < LU_CHUNK ? len - off : LU_CHUNK;
		unsigned k = nfds - fd_off < LU_FDS_PER_MSG ? nfds - fd_off : LU_FDS_PER_MSG;
		static const char pad = 0;

		/* A message carrying only descriptors still needs a byte. */
		r = send_msg(sock, n ? json + off : &pad, n ? n : 1, fds + fd_off, k, deadline);
		off += n;
		fd_off += k;
	}
	return r;
}

/* One message into buf (at most cap bytes); descriptors appended to fds. */
static ssize_t recv_msg(int sock, void *buf, size_t cap, int *fds, unsigned *nfds,
			unsigned max_fds, uint64_t deadline)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * LU_FDS_PER_MSG)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			     .msg_controllen = sizeof(u.b) };
	ssize_t n;

	for (;;) {
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (wait_fd(sock, POLLIN, deadline))
			return -ETIMEDOUT;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		unsigned k;
		int tmp[LU_FDS_PER_MSG];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (k > LU_FDS_PER_MSG)
			k = LU_FDS_PER_MSG;
		memcpy(tmp, CMSG_DATA(c), k * sizeof(int));
		for (unsigned i = 0; i < k; i++) {
			if (*nfds < max_fds)
				fds[(*nfds)++] = tmp[i];
			else
				close(tmp[i]);
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EMSGSIZE;
	return n;
}

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* ---- the handover's content */

static bool is_name(json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 &&
	       json_string_length(v) < NVEMUD_CTRL_NAME_MAX;
}

int nvemud_lu_parse(const char *json, size_t len, unsigned nfds, json_t **out, struct rpc_err *e)
{
	json_error_t je;
	json_t *root, *ctrls, *c;
	size_t i;

	*out = NULL;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(root)) {
		json_decref(root);
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "handover: not a JSON object (%.80s)",
				   je.text);
	}
	if (json_integer_value(json_object_get(root, "nvemu_live_update")) != LU_VERSION ||
	    !json_is_object(json_object_get(root, "config")))
		goto bad;
	ctrls = json_object_get(root, "controllers");
	if (!json_is_array(ctrls))
		goto bad;
	json_array_foreach(ctrls, i, c) {
		json_t *vfu = json_object_get(c, "vfu"), *fds, *f;
		size_t k;

		if (!json_is_object(c) || !is_name(json_object_get(c, "name")) ||
		    !json_is_object(json_object_get(c, "snapshot")))
			goto bad;
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_object_get(json_array_get(ctrls, j), "name"),
				       json_object_get(c, "name")))
				goto bad;
		if (!vfu)
			continue;
		fds = json_object_get(vfu, "fds");
		if (!json_is_object(vfu) || !json_is_string(json_object_get(vfu, "socket")) ||
		    json_string_length(json_object_get(vfu, "socket")) >=
			    sizeof(((struct sockaddr_un *)0)->sun_path) ||
		    json_string_value(json_object_get(vfu, "socket"))[0] != '/' ||
		    !json_is_string(json_object_get(vfu, "state")) ||
		    json_string_length(json_object_get(vfu, "state")) > 2 * LU_STATE_MAX ||
		    json_string_length(json_object_get(vfu, "state")) % 2 || !json_is_array(fds))
			goto bad;
		json_array_foreach(fds, k, f)
			if (!json_is_integer(f) || json_integer_value(f) < 0 ||
			    json_integer_value(f) >= (json_int_t)nfds)
				goto bad;
	}
	*out = root;
	return 0;
bad:
	json_decref(root);
	return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
			   "handover: not an nvemu live update (version %d) or inconsistent", LU_VERSION);
}

/* ---- the old daemon: nvemud_live_update */

struct lu_out {
	int *fds;
	unsigned nfds, cap;
};

static int lu_add_fds(struct lu_out *o, const int *fds, unsigned n, json_t *arr)
{
	if (o->nfds + n > LU_FDS_MAX)
		return -1;
	if (o->nfds + n > o->cap) {
		unsigned cap = (o->nfds + n) * 2;
		int *nf = realloc(o->fds, cap * sizeof(*nf));

		if (!nf)
			return -1;
		o->fds = nf;
		o->cap = cap;
	}
	for (unsigned i = 0; i < n; i++) {
		json_array_append_new(arr, json_integer(o->nfds));
		o->fds[o->nfds++] = fds[i];
	}
	return 0;
}

/* Everything that goes to the new daemon; NULL with e set. */
static json_t *lu_build(struct nvemud *d, struct lu_out *o, struct rpc_err *e)
{
	json_t *ctrls = json_array(), *root;

	for (unsigned i = 0; i < d->nr_ctrls; i++) {
		struct nvemud_ctrl *c = &d->ctrls[i];
		struct nvemu_ctrl *ctrl = nvemud_ctrl_get(c);
		struct nvemu_error err = { 0 };
		json_t *entry, *snap;

		if (!ctrl || c->busy == NVEMUD_CTRL_DESTROYING)
			continue;
		if (!c->live_update) {
			if (nvemud_vfu_connected(c)) {
				rpc_err_set(e, RPC_ERR_STATE,
					    "ctrl: %s serves a guest: suspend it with live_update_notifier first",
					    c->name);
				goto fail;
			}
			continue; /* rebuilt from the configuration */
		}
		if (!nvemu_ctrl_is_suspended(ctrl) || nvemu_ctrl_inflight(ctrl) || c->busy) {
			rpc_err_set(e, RPC_ERR_BUSY, "ctrl: %s is still draining its commands",
				    c->name);
			goto fail;
		}
		snap = nvemud_ctrl_snapshot(d, ctrl);
		entry = json_pack("{s:s, s:o}", "name", c->name, "snapshot", snap);
		if (c->vfu) {
			uint8_t *blob;
			size_t len;
			int *fds;
			unsigned nfds;
			char *hex;
			json_t *fa = json_array();

			if (nvemud_vfu_save(c, &blob, &len, &fds, &nfds, &err)) {
				json_decref(entry);
				json_decref(fa);
				rpc_err_set(e, err.code == -EAGAIN ? RPC_ERR_BUSY : RPC_ERR_STATE,
					    "ctrl: %s: %s", c->name, err.msg);
				goto fail;
			}
			hex = malloc(2 * len + 1);
			if (!hex || lu_add_fds(o, fds, nfds, fa)) {
				free(hex);
				free(blob);
				free(fds);
				json_decref(entry);
				json_decref(fa);
				rpc_err_set(e, RPC_ERR_LIMIT, "ctrl: %s: too many descriptors or no memory",
					    c->name);
				goto fail;
			}
			nvemud_hex(blob, len, hex);
			json_object_set_new(entry, "vfu",
					    json_pack("{s:s, s:s, s:o}", "socket", nvemud_vfu_path(c),
						      "state", hex, "fds", fa));
			free(hex);
			free(blob);
			free(fds);
		}
		json_array_append_new(ctrls, entry);
	}
	root = json_pack("{s:i, s:o, s:o}", "nvemu_live_update", LU_VERSION, "config",
			 nvemud_save_config(d), "controllers", ctrls);
	return root;
fail:
	json_decref(ctrls);
	return NULL;
}

static void lu_exit_cb(struct loop_src *src, void *arg)
{
	struct nvemud *d = arg;

	loop_del(src);
	nvemud_log(d, NVEMUD_LOG_INFO, "live update: handed over, exiting");
	loop_stop(d->loop);
}

static int nvemud_live_update(struct nvemud *d, json_t *params, json_t **result,
			      struct rpc_err *e)
{
	const char *path = rpc_str(params, "socket");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct lu_out o = { 0 };
	json_t *root, *handed;
	char *json, reply[1024];
	size_t i;
	int sock, r;
	ssize_t n;
	unsigned nfds = 0;
	int dummy[1];

	if (!d->loop)
		return rpc_err_set(e, RPC_ERR_STATE, "live update needs nvemud's event loop");
	if (path[0] != '/' || strlen(path) >= sizeof(sa.sun_path))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "socket: an absolute path of at most %zu bytes",
				   sizeof(sa.sun_path) - 1);
	root = lu_build(d, &o, e);
	if (!root) {
		free(o.fds);
		return -1;
	}
	json = json_dumps(root, JSON_COMPACT);
	if (!json || strlen(json) > LU_JSON_MAX) {
		free(json);
		json_decref(root);
		free(o.fds);
		return rpc_err_set(e, RPC_ERR_LIMIT, "the handover is too large");
	}
	strcpy(sa.sun_path, path);
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa))) {
		r = errno;
		if (sock >= 0)
			close(sock);
		free(json);
		json_decref(root);
		free(o.fds);
		return rpc_err_set(e, RPC_ERR_IO,
				   "socket: %s: %s (start the new nvemud with --take-over first)",
				   path, strerror(r));
	}
	nvemud_log(d, NVEMUD_LOG_INFO, "live update: sending %zu bytes and %u descriptors to %s",
		   strlen(json), o.nfds, path);
	r = lu_send(sock, json, strlen(json), o.fds, o.nfds);
	free(json);
	free(o.fds);
	if (r) {
		close(sock);
		json_decref(root);
		return rpc_err_set(e, RPC_ERR_IO, "socket: sending the handover: %s", strerror(-r));
	}
	n = recv_msg(sock, reply, sizeof(reply) - 1, dummy, &nfds, 0,
		     now_ms() + LU_REPLY_TIMEOUT_MS);
	if (n <= 0 || strncmp(reply, "ok", 2)) {
		if (n > 0)
			reply[n] = '\0';
		close(sock);
		json_decref(root);
		return rpc_err_set(e, RPC_ERR_STATE,
				   "the new nvemud refused the handover: %.200s (controllers stay suspended here)",
				   n > 0 ? reply : n == 0 ? "it closed the connection" : strerror((int)-n));
	}
	/* It has everything: let go without touching a guest, then free what it binds next. */
	handed = json_array();
	json_array_foreach(json_object_get(root, "controllers"), i, params) {
		struct nvemud_ctrl *c = nvemud_find_ctrl(
			d, json_string_value(json_object_get(params, "name")));

		if (c) {
			nvemud_vfu_release(d, c);
			json_array_append_new(handed, json_string(c->name));
		}
	}
	json_decref(root);
	nvemud_tcp_stop(d);
	nvemud_mi_stop(d);
	rpc_server_close_listener(d);
	close(sock); /* the new daemon goes on when this closes */
	*result = json_pack("{s:o}", "handed_over", handed);
	/* Exit once this reply is out. */
	if (!loop_add_timer(d->loop, 200, false, lu_exit_cb, d))
		loop_stop(d->loop);
	return 0;
}

const struct rpc_method rpc_live_update_methods[] = {
	{ "nvemud_live_update", nvemud_live_update,
	  (const struct rpc_param[]){ { "socket", RPC_P_STR, true, 1, 107 }, { .name = NULL } },
	  "Hand every controller (those suspended with live_update_notifier with their guests) to a new nvemud started with --take-over socket, then exit." },
	{ .name = NULL },
};

/* ---- the new daemon: nvemud --take-over */

struct lu_in {
	char *json;
	size_t len;
	int *fds;
	unsigned nfds;
};

static int lu_receive(int sock, struct lu_in *in, uint64_t deadline, char *why, size_t wlen)
{
	struct lu_hdr h;
	size_t got = 0;
	ssize_t n;
	unsigned hfds = 0;
	int none[1];

	n = recv_msg(sock, &h, sizeof(h), none, &hfds, 0, deadline);
	if (n != (ssize_t)sizeof(h) || h.magic != LU_MAGIC || h.version != LU_VERSION ||
	    h.json_len == 0 || h.json_len > LU_JSON_MAX || h.nfds > LU_FDS_MAX) {
		snprintf(why, wlen, "not an nvemu live update header (version %d)", LU_VERSION);
		return -1;
	}
	in->json = malloc(h.json_len + (size_t)LU_CHUNK);
	in->fds = malloc(sizeof(int) * (h.nfds ? h.nfds : 1));
	if (!in->json || !in->fds) {
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	while (got < h.json_len || in->nfds < h.nfds) {
		unsigned before = in->nfds;

		n = recv_msg(sock, in->json + got, LU_CHUNK, in->fds, &in->nfds, h.nfds, deadline);
		if (n <= 0) {
			snprintf(why, wlen, "the handover ended early (%s)",
				 n ? strerror((int)-n) : "closed");
			return -1;
		}
		if (got < h.json_len) {
			got += (size_t)n;
			if (got > h.json_len) {
				snprintf(why, wlen, "more data than announced");
				return -1;
			}
		} else if (n != 1 || in->nfds == before) {
			snprintf(why, wlen, "a message with neither data nor descriptors");
			return -1;
		}
	}
	in->len = got;
	return 0;
}

struct restored {
	char (*names)[NVEMUD_CTRL_NAME_MAX];
	unsigned n;
};

/* Replay the configuration; handed vfio-user controllers come back without their socket. */
static int lu_replay(struct nvemud *d, json_t *root, json_t *deferred, struct rpc_err *e)
{
	json_t *calls = json_object_get(json_object_get(root, "config"), "calls"), *ctrls, *c;
	size_t i;

	if (!json_is_array(calls))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "handover: config.calls missing");
	ctrls = json_object_get(root, "controllers");
	json_array_foreach(calls, i, c) {
		const char *m = json_string_value(json_object_get(c, "method"));
		json_t *p = json_object_get(c, "params");
		size_t k;
		json_t *h;

		if (!m || !json_is_object(p))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "handover: config.calls[%zu]", i);
		if (!strcmp(m, "save_config") || !strcmp(m, "load_config"))
			continue;
		if (deferred_method(m)) {
			json_array_append(deferred, c);
			continue;
		}
		p = json_deep_copy(p);
		if (!strcmp(m, "nvme_controller_create")) {
			json_array_foreach(ctrls, k, h)
				if (json_equal(json_object_get(h, "name"), json_object_get(p, "name")) &&
				    json_object_get(h, "vfu"))
					json_object_del(p, "socket");
		}
		if (nvemud_rpc_invoke(d, m, p, NULL, e)) {
			char msg[sizeof(e->msg)];

			snprintf(msg, sizeof(msg), "%s", e->msg);
			return rpc_err_set(e, e->code, "handover: config.calls[%zu] %.60s: %s", i, m, msg);
		}
	}
	return 0;
}

static int lu_restore(struct nvemud *d, json_t *root, const struct lu_in *in, struct rpc_err *e)
{
	json_t *h;
	size_t i;

	json_array_foreach(json_object_get(root, "controllers"), i, h) {
		const char *name = json_string_value(json_object_get(h, "name"));
		struct nvemud_ctrl *c = nvemud_find_ctrl(d, name);
		json_t *vfu = json_object_get(h, "vfu"), *snap = json_object_get(h, "snapshot");
		struct nvemu_ctrl *ctrl = c ? nvemud_ctrl_get(c) : NULL;

		if (!ctrl)
			return rpc_err_set(e, RPC_ERR_NOT_FOUND, "handover: controller %s not rebuilt",
					   name);
		if (vfu) {
			json_t *fa = json_object_get(vfu, "fds"), *f;
			const char *hex = json_string_value(json_object_get(vfu, "state"));
			size_t blen = strlen(hex) / 2, k;
			uint8_t *blob = malloc(blen ? blen : 1);
			int *fds = malloc(sizeof(int) * (json_array_size(fa) + 1));
			int r;

			if (!blob || !fds) {
				free(blob);
				free(fds);
				return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
			}
			json_array_foreach(fa, k, f)
				fds[k] = in->fds[json_integer_value(f)];
			r = nvemud_unhex(hex, blob, blen) ? rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
									 "handover: %s: state is not hex", name) :
				nvemud_vfu_restore(d, c, json_string_value(json_object_get(vfu, "socket")),
						   blob, blen, fds, (unsigned)json_array_size(fa), snap, e);
			free(blob);
			free(fds);
			if (r)
				return -1;
		} else if (nvemud_ctrl_restore(d, ctrl, snap, e)) {
			return -1;
		}
		c->live_update = true;
	}
	return 0;
}

/* Undo what was taken over, without touching a guest: the old daemon still serves them. */
static void lu_abandon(struct nvemud *d)
{
	for (unsigned i = 0; i < d->nr_ctrls; i++)
		nvemud_vfu_release(d, &d->ctrls[i]);
}

int nvemud_take_over(struct nvemud *d, const char *path, unsigned timeout_ms, int stop_fd)
{
	struct nvemu_error err = { 0 };
	struct rpc_err e = { 0 };
	struct lu_in in = { 0 };
	json_t *root = NULL, *deferred = json_array(), *c;
	uint64_t deadline = now_ms() + timeout_ms;
	char why[300] = "";
	int lfd, sock = -1, ret = -1;
	size_t i;

	lfd = nvemu_unix_listen(path, SOCK_SEQPACKET, 1, "take-over", &err);
	if (lfd < 0) {
		nvemud_log(d, NVEMUD_LOG_ERR, "--take-over: %s", err.msg);
		json_decref(deferred);
		return -1;
	}
	nvemud_log(d, NVEMUD_LOG_INFO,
		   "--take-over: waiting on %s for the running nvemud (nvemud_live_update --socket %s)",
		   path, path);
	while (sock < 0) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
				       { .fd = stop_fd, .events = POLLIN } };
		uint64_t now = now_ms();

		if (now >= deadline) {
			snprintf(why, sizeof(why), "nobody handed over within %u s", timeout_ms / 1000);
			goto out;
		}
		/* SIGINT/SIGTERM (a signalfd) end the wait. */
		if (poll(p, stop_fd >= 0 ? 2 : 1, (int)(deadline - now)) > 0 && (p[1].revents & POLLIN)) {
			snprintf(why, sizeof(why), "stopped by a signal before a handover");
			goto out;
		}
		if (p[0].revents & POLLIN)
			sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	}
	if (lu_receive(sock, &in, now_ms() + LU_REPLY_TIMEOUT_MS, why, sizeof(why)))
		goto reply;
	if (nvemud_lu_parse(in.json, in.len, in.nfds, &root, &e) || lu_replay(d, root, deferred, &e) ||
	    lu_restore(d, root, &in, &e)) {
		snprintf(why, sizeof(why), "%s", e.msg);
		lu_abandon(d);
		goto reply;
	}
	ret = 0;
reply:
	if (ret)
		send_msg(sock, why, strlen(why), NULL, 0, now_ms() + 5000);
	else
		send_msg(sock, "ok", 2, NULL, 0, now_ms() + 5000);
	if (!ret) {
		char b[16];
		unsigned z = 0;
		int none[1];

		/* The old daemon lets go of the guests and its sockets, then closes. */
		if (recv_msg(sock, b, sizeof(b), none, &z, 0, now_ms() + LU_EOF_TIMEOUT_MS) != 0)
			nvemud_log(d, NVEMUD_LOG_WARN,
				   "--take-over: the old nvemud did not close the handover in %u s; going on",
				   LU_EOF_TIMEOUT_MS / 1000);
		json_array_foreach(deferred, i, c) {
			if (nvemud_rpc_invoke(d, json_string_value(json_object_get(c, "method")),
					      json_deep_copy(json_object_get(c, "params")), NULL, &e))
				nvemud_log(d, NVEMUD_LOG_ERR, "--take-over: %s: %s",
					   json_string_value(json_object_get(c, "method")), e.msg);
		}
		nvemud_log(d, NVEMUD_LOG_INFO,
			   "--take-over: %zu controllers taken over; resume them with nvme_controller_resume --live_update 1",
			   json_array_size(json_object_get(root, "controllers")));
	}
out:
	if (ret)
		nvemud_log(d, NVEMUD_LOG_ERR, "--take-over: %s", why);
	if (sock >= 0)
		close(sock);
	close(lfd);
	unlink(path);
	close_fds(in.fds, in.nfds);
	free(in.fds);
	free(in.json);
	json_decref(root);
	json_decref(deferred);
	return ret;
}

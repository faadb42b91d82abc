// SPDX-License-Identifier: MIT
/*
 * nvemud: holds the subsystem model and serves the JSON-RPC control plane.
 * With no arguments it starts the seed-000 default configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <nvemu/mctp.h>

#include "config.h"
#include "daemon.h"
#include "event-loop.h"
#include "reactor.h"
#include "rpc-server.h"
#include "rpc.h"

#define SHUTDOWN_DRAIN_MS 10000
#define TAKE_OVER_WAIT_MS (10 * 60 * 1000) /* for the operator's nvemud_live_update */
#define DEFAULT_TRADDR "127.0.0.1"
#define DEFAULT_TRSVCID "4420"

/* ADDR:PORT or [ADDR6]:PORT into traddr/trsvcid; 0 on success. */
static int parse_listen(const char *arg, char *traddr, size_t alen, char *trsvcid, size_t slen)
{
	const char *colon;
	size_t n;

	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');

		if (!end || end[1] != ':')
			return -1;
		n = (size_t)(end - arg - 1);
		if (n >= alen)
			return -1;
		memcpy(traddr, arg + 1, n);
		colon = end + 1;
	} else {
		colon = strrchr(arg, ':');
		if (!colon)
			return -1;
		n = (size_t)(colon - arg);
		if (n >= alen)
			return -1;
		memcpy(traddr, arg, n);
	}
	traddr[n] = 0;
	if (!n || !colon[1] || strlen(colon + 1) >= slen ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) > 65535)
		return -1;
	snprintf(trsvcid, slen, "%s", colon + 1);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: nvemud [OPTIONS]\n"
		"Run the nvemu NVMe subsystem emulator and its JSON-RPC 2.0 control plane.\n"
		"\n"
		"Without -c, starts the default configuration: subsystem %s with a PCIe\n"
		"port, controller NVMeCtrl1 (served to VMs over vfio-user, see -u), RAM bdevs\n"
		"Malloc0 (1024 x 512 B) and Malloc1 (2048 x 512 B) as namespaces 1 (attached)\n"
		"and 2, a two-wire port with an NVMe-MI endpoint at MCTP network 1, EID 9,\n"
		"and an NVMe/TCP listener on\n"
		"%s:%s that allows any host.\n"
		"\n"
		"  -c, --config FILE   load a configuration written by save_config (no default)\n"
		"  -r, --rpc PATH      RPC socket (default %s)\n"
		"  -l, --listen ADDR:PORT\n"
		"                      the default configuration's TCP listener; \"none\" for\n"
		"                      none; [IPv6]:PORT for IPv6; PORT 0 picks a free port.\n"
		"                      Ignored with -c (the configuration has its listeners).\n"
		"                      If it cannot listen, nvemud exits with an error, except\n"
		"                      for the implicit default with -r (a private instance):\n"
		"                      then it warns and runs without that listener.\n"
		"  -m, --mctp PATH     the userspace AF_MCTP socket that libnvemu-mctp-preload.so\n"
		"                      clients reach the NVMe-MI endpoints through (default\n"
		"                      $NVEMU_MCTP_SOCKET, else %s);\n"
		"                      \"none\" for none.\n"
		"                      If it cannot be served, nvemud exits with an error,\n"
		"                      except for the implicit default with -r: then it warns.\n"
		"  -u, --vfio-user PATH\n"
		"                      the vfio-user socket the default configuration serves\n"
		"                      NVMeCtrl1 on, as a PCIe NVMe function for QEMU's\n"
		"                      vfio-user-pci (default: nvemu-vfu-NVMeCtrl1.sock next to\n"
		"                      the RPC socket); \"none\" for none. Ignored with -c.\n"
		"                      If it cannot be served, nvemud exits with an error,\n"
		"                      except for the implicit default with -r: then it warns.\n"
		"  --num-pfs N, --num-vfs M\n"
		"                      emulated PCIe functions controllers open on with\n"
		"                      pf_id/vf_id: N PFs (default 1) with M VFs each\n"
		"                      (default 0), sockets next to the RPC socket\n"
		"  --take-over PATH    live update: wait on PATH for a running nvemud's\n"
		"                      controllers (nvemud_live_update --socket PATH) and\n"
		"                      take them over, guests and all, instead of loading a\n"
		"                      configuration (-c, -l, -u, --mi-serial are ignored);\n"
		"                      the RPC socket is bound once the old daemon let it go\n"
		"  --metrics ADDR:PORT serve Prometheus metrics at http://ADDR:PORT/metrics\n"
		"                      (e.g. 127.0.0.1:9469; port 0: any, logged)\n"
		"  --mi-serial LINE    serve the default configuration's NVMe-MI endpoint\n"
		"                      over a DSP0253 serial line instead of the AF_MCTP\n"
		"                      router: pty (nvemud creates one and logs its name),\n"
		"                      unix:/PATH or tcp:ADDRESS:PORT. Ignored with -c.\n"
		"  --client SOCKET     a virtio-blk export on a vhost-user-blk socket (absolute\n"
		"                      path), for QEMU's vhost-user-blk-pci; the options up to\n"
		"                      the next --client are its own:\n"
		"    --device NAME     what it serves: SN:n<NSID> (the subsystem with that\n"
		"                      serial number), NQN:n<NSID>, or a GPT partition UUID\n"
		"    --readonly        a read-only disk\n"
		"    --ds-max N        memory regions the client may register (1..%d)\n"
		"    --register-ds PATH  accept only guest memory backed by this file\n"
		"    --num-queues N, --queue-size N, --serial S\n"
		"  --poll-us N         after I/O, keep polling for N microseconds before\n"
		"                      sleeping: lower latency for a busy target at the cost\n"
		"                      of CPU while it is busy (0: never spin; default %u;\n"
		"                      at most %u). An idle daemon always sleeps.\n"
		"  --reactors N        serve NVMe/TCP I/O queues on N event loops: the main\n"
		"                      one and N-1 threads, each queue on the one with the\n"
		"                      fewest (1..%d, default 1: all on the main loop)\n"
		"  --cpus LIST         one reactor per CPU of LIST (e.g. 0,2-3), each pinned\n"
		"                      to its CPU; the main loop is the first\n"
		"  --idle-poll-ms N    how often to look at memory that nothing signals\n"
		"                      (mmapped doorbells) while idle (1..%u, default %u)\n"
		"  --log-target T      where messages go: auto (the journal, with fields\n"
		"                      such as NVEMU_HOSTNQN, when stderr is connected to\n"
		"                      it; default), stderr, journal, or journal:/PATH (a\n"
		"                      socket speaking the journal's native protocol)\n"
		"  -v, --verbose       more messages (repeat: debug, trace)\n"
		"  -q, --quiet         errors only\n"
		"  -h, --help          this help\n"
		"  -V, --version       print the version\n",
		NVEMUD_DEFAULT_NQN, DEFAULT_TRADDR, DEFAULT_TRSVCID, NVEMUD_DEFAULT_SOCKET,
		NVEMU_MCTP_SOCKET_DEFAULT, NVEMU_VBLK_MAX_DS, LOOP_BUSY_POLL_US_DEFAULT,
		LOOP_BUSY_POLL_US_MAX, NVEMUD_REACTORS_MAX, LOOP_IDLE_POLL_MS_MAX, LOOP_IDLE_POLL_MS_DEFAULT);
}

static int parse_uint_opt(const char *name, const char *arg, unsigned min, unsigned max,
			  unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max) {
		fprintf(stderr, "nvemud: %s: a number from %u to %u: %s\n", name, min, max, arg);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

struct sig_ctx {
	struct nvemud *d;
	const char *config; /* -c, what SIGHUP re-reads */
};

/*
 * SIGHUP: apply what changed in the configuration file, keeping the hosts
 * of unchanged objects; systemd hears RELOADING=1, then READY=1 and a
 * STATUS= line saying what was applied and what failed.
 */
static void reload(struct nvemud *d, const char *config)
{
	struct rpc_err e = { 0 };
	struct timespec ts;
	json_t *r = NULL;
	char st[512];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(st, sizeof(st), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	nvemud_sd_notify(st);
	if (!config) {
		nvemud_log(d, NVEMUD_LOG_WARN,
			   "reload: started without -c, there is no configuration file to re-read");
		nvemud_sd_notify("READY=1\nSTATUS=serving (reload: no configuration file)");
		return;
	}
	if (nvemud_reload_config_file(d, config, &r, &e)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "reload %s: %s; nothing changed", config, e.msg);
		snprintf(st, sizeof(st), "READY=1\nSTATUS=serving; reload failed: %.400s", e.msg);
		nvemud_sd_notify(st);
		return;
	}
	snprintf(st, sizeof(st),
		 "reloaded %s: %zu added, %zu removed, %zu changed, %lld unchanged, %zu ignored, %zu failed",
		 config, json_array_size(json_object_get(r, "added")),
		 json_array_size(json_object_get(r, "removed")),
		 json_array_size(json_object_get(r, "changed")),
		 (long long)json_integer_value(json_object_get(r, "unchanged")),
		 json_array_size(json_object_get(r, "ignored")),
		 json_array_size(json_object_get(r, "failed")));
	nvemud_log(d, json_array_size(json_object_get(r, "failed")) ? NVEMUD_LOG_ERR :
								      NVEMUD_LOG_INFO,
		   "%s", st);
	for (const char *const *l = (const char *const[]){ "added", "removed", "changed", NULL };
	     *l; l++) {
		json_t *v;
		size_t i;

		json_array_foreach(json_object_get(r, *l), i, v)
			nvemud_log(d, NVEMUD_LOG_INFO, "reload: %.7s %s", *l, json_string_value(v));
	}
	{
		char msg[600];

		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", st);
		nvemud_sd_notify(msg);
	}
	json_decref(r);
}

static void signal_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct sig_ctx *sc = arg;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP) {
		reload(sc->d, sc->config);
		return;
	}
	nvemud_log(sc->d, NVEMUD_LOG_INFO, "%s: shutting down", strsignal((int)si.ssi_signo));
	loop_stop(sc->d->loop);
}

static void warn_vendor(struct nvemud *d)
{
	struct nvemu_vendor v;
	struct nvemu_error err;

	char shadowed[256];

	nvemu_vendor_build_default(&v);
	if (nvemu_vendor_env_shadowed(shadowed, sizeof(shadowed)))
		nvemud_log(d, NVEMUD_LOG_WARN, "vendor identity: both names set, %s", shadowed);
	if (nvemu_vendor_from_env(&v, &err)) {
		nvemud_log(d, NVEMUD_LOG_WARN, "%s", err.msg);
		return;
	}
	if (nvemu_vendor_is_placeholder(&v))
		nvemud_log(d, NVEMUD_LOG_WARN,
			   "placeholder vendor identity (OUI ac-de-48 / PCI ID ffff): set NVEMU_IEEE_OUI and NVEMU_PCI_VID/DID/SVID/SDID (or their NVME_MI_DEV_* names); such builds must not be distributed");
}

/* The default configuration's vfio-user socket: -u, else next to the RPC socket. */
static int start_vfu(struct nvemud *d, const char *opt, const char *rpc_sock, bool rpc_given)
{
	struct nvemud_ctrl *c = nvemud_find_ctrl(d, "NVMeCtrl1");
	struct nvemu_error err = { 0 };
	struct nvemu_vendor v;
	const char *slash;
	char path[4096];

	if (opt && !strcmp(opt, "none"))
		return 0;
	if (opt) {
		snprintf(path, sizeof(path), "%s", opt);
	} else {
		slash = strrchr(rpc_sock, '/');
		snprintf(path, sizeof(path), "%.*s/nvemu-vfu-NVMeCtrl1.sock",
			 slash ? (int)(slash - rpc_sock) : 1, slash ? rpc_sock : ".");
		if (slash == rpc_sock)
			snprintf(path, sizeof(path), "/nvemu-vfu-NVMeCtrl1.sock");
	}
	if (path[0] != '/' && !opt) {
		/* A relative RPC socket: do not drop sockets into the working directory. */
		nvemud_log(d, NVEMUD_LOG_WARN, "no vfio-user socket: the RPC socket path is relative (use -u PATH)");
		return 0;
	}
	if (!c || nvemud_vfu_start(d, c, path, &err)) {
		if (opt || !rpc_given) {
			nvemud_log(d, NVEMUD_LOG_ERR,
				   "default configuration: vfio-user socket %s: %s (choose another with -u PATH, or -u none)",
				   path, c ? err.msg : "no NVMeCtrl1");
			return -1;
		}
		nvemud_log(d, NVEMUD_LOG_WARN, "default configuration: no vfio-user socket: %s",
			   c ? err.msg : "no NVMeCtrl1");
		return 0;
	}
	nvemu_vendor_build_default(&v);
	if (!nvemu_vendor_from_env(&v, NULL) && v.pci_vid == 0xffff)
		nvemud_log(d, NVEMUD_LOG_WARN,
			   "*** PCI vendor ID is the placeholder 0xffff: guests see NO device on %s (PCI reads 0xffff as \"no function\"); set NVEMU_PCI_VID/DID/SVID/SDID ***",
			   path);
	return 0;
}

/* The AF_MCTP router: -m, else $NVEMU_MCTP_SOCKET, else the default path. */
static int start_mctp(struct nvemud *d, const char *opt, bool rpc_given)
{
	const char *env = getenv("NVEMU_MCTP_SOCKET");
	const char *path = opt ? opt : env && *env ? env : NVEMU_MCTP_SOCKET_DEFAULT;
	struct nvemu_error err = { 0 };

	if (!strcmp(path, "none"))
		return 0;
	if (!nvemud_mi_start(d, path, &err)) {
		nvemud_log(d, NVEMUD_LOG_INFO, "NVMe-MI over AF_MCTP on %s", path);
		return 0;
	}
	/* A private instance (-r) must not fail because a system one serves MCTP. */
	if (opt || (env && *env) || !rpc_given) {
		nvemud_log(d, NVEMUD_LOG_ERR, "MCTP socket: %s (choose another with -m PATH, or -m none)",
			   err.msg);
		return -1;
	}
	nvemud_log(d, NVEMUD_LOG_WARN, "no AF_MCTP router: %s", err.msg);
	return 0;
}

struct nvemud_opts {
	const char *config, *sock, *listen, *mctp, *vfu;
	char traddr[64], trsvcid[8];
	bool rpc_given; /* -r: a private instance */
	int level;
	json_t *clients; /* virtio_blk_controller_create params, one per --client */
	unsigned poll_us, idle_poll_ms;
	struct nvemud_reactor_params reactors;
	const char *mi_serial;
	const char *metrics;
	unsigned num_pfs, num_vfs; /* --num-pfs, --num-vfs */
	const char *take_over; /* --take-over: the running daemon's state comes on this socket */
	const char *log_target; /* --log-target */
};

enum {
	OPT_CLIENT = 256,
	OPT_DEVICE,
	OPT_READONLY,
	OPT_DS_MAX,
	OPT_REGISTER_DS,
	OPT_NUM_QUEUES,
	OPT_QUEUE_SIZE,
	OPT_SERIAL,
	OPT_POLL_US,
	OPT_IDLE_POLL_MS,
	OPT_REACTORS,
	OPT_CPUS,
	OPT_MI_SERIAL,
	OPT_METRICS,
	OPT_NUM_PFS,
	OPT_NUM_VFS,
	OPT_TAKE_OVER,
	OPT_LOG_TARGET,
};

/* Each --client option and the virtio_blk_controller_create parameter it sets. */
static const struct client_opt {
	int id;
	const char *opt, *param;
	unsigned max; /* integers: 1..max; 0: a string */
} client_opts[] = {
	{ OPT_CLIENT, "client", "socket", 0 },
	{ OPT_DEVICE, "device", "device", 0 },
	{ OPT_READONLY, "readonly", "readonly", 0 },
	{ OPT_DS_MAX, "ds-max", "ds_max", NVEMU_VBLK_MAX_DS },
	{ OPT_REGISTER_DS, "register-ds", "register_ds", 0 },
	{ OPT_NUM_QUEUES, "num-queues", "num_queues", NVEMU_VBLK_MAX_QUEUES },
	{ OPT_QUEUE_SIZE, "queue-size", "queue_size", NVEMU_VBLK_MAX_QUEUE_SIZE },
	{ OPT_SERIAL, "serial", "serial", 0 },
};

/* A --client group's option into the last group's params; 0, or 2 (usage error). */
static int client_arg(struct nvemud_opts *o, int id, const char *arg)
{
	const struct client_opt *c = NULL;
	json_t *p;
	char *end;

	for (size_t i = 0; i < sizeof(client_opts) / sizeof(client_opts[0]); i++)
		if (client_opts[i].id == id)
			c = &client_opts[i];
	if (!o->clients)
		o->clients = json_array();
	if (id == OPT_CLIENT)
		json_array_append_new(o->clients, json_object());
	p = json_array_get(o->clients, json_array_size(o->clients) - 1);
	if (!p) {
		fprintf(stderr, "nvemud: --%s: must follow a --client SOCKET\n", c->opt);
		return 2;
	}
	if (json_object_get(p, c->param)) {
		fprintf(stderr, "nvemud: --%s: given twice for one --client\n", c->opt);
		return 2;
	}
	if (id == OPT_READONLY) {
		json_object_set_new(p, c->param, json_true());
	} else if (c->max) {
		unsigned long v;

		errno = 0;
		v = strtoul(arg, &end, 0);
		if (!*arg || *end || errno || v < 1 || v > c->max) {
			fprintf(stderr, "nvemud: --%s: must be an integer in 1..%u: %s\n", c->opt,
				c->max, arg);
			return 2;
		}
		json_object_set_new(p, c->param, json_integer((json_int_t)v));
	} else {
		json_object_set_new(p, c->param, json_string(arg));
	}
	return 0;
}

/* "field: rule" from the RPC layer, with the option's name for the field. */
static void client_error(struct nvemud *d, const char *sock, const char *msg)
{
	for (size_t i = 0; i < sizeof(client_opts) / sizeof(client_opts[0]); i++) {
		size_t n = strlen(client_opts[i].param);

		if (!strncmp(msg, client_opts[i].param, n) && msg[n] == ':') {
			nvemud_log(d, NVEMUD_LOG_ERR, "--client %s: --%s%s", sock,
				   client_opts[i].opt, msg + n);
			return;
		}
	}
	nvemud_log(d, NVEMUD_LOG_ERR, "--client %s: %s", sock, msg);
}

/* The --client exports, after the configuration they name exists. */
static int start_clients(struct nvemud *d, const struct nvemud_opts *o)
{
	size_t i;
	json_t *p;

	json_array_foreach(o->clients, i, p) {
		const char *sock = json_string_value(json_object_get(p, "socket"));
		struct rpc_err e = { 0 };
		json_t *res = NULL;

		if (nvemud_rpc_invoke(d, "virtio_blk_controller_create", json_incref(p), &res, &e)) {
			client_error(d, sock, e.msg);
			return -1;
		}
		nvemud_log(d, NVEMUD_LOG_INFO, "--client %s: %s", sock, json_string_value(res));
		json_decref(res);
	}
	return 0;
}

/* Returns -1 to go on, else the exit status (help, version, usage errors). */
static int parse_args(int argc, char **argv, struct nvemud_opts *o)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "rpc", required_argument, NULL, 'r' },
		{ "listen", required_argument, NULL, 'l' },
		{ "mctp", required_argument, NULL, 'm' },
		{ "vfio-user", required_argument, NULL, 'u' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "client", required_argument, NULL, OPT_CLIENT },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "readonly", no_argument, NULL, OPT_READONLY },
		{ "ds-max", required_argument, NULL, OPT_DS_MAX },
		{ "register-ds", required_argument, NULL, OPT_REGISTER_DS },
		{ "num-queues", required_argument, NULL, OPT_NUM_QUEUES },
		{ "queue-size", required_argument, NULL, OPT_QUEUE_SIZE },
		{ "serial", required_argument, NULL, OPT_SERIAL },
		{ "poll-us", required_argument, NULL, OPT_POLL_US },
		{ "idle-poll-ms", required_argument, NULL, OPT_IDLE_POLL_MS },
		{ "reactors", required_argument, NULL, OPT_REACTORS },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "mi-serial", required_argument, NULL, OPT_MI_SERIAL },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "num-pfs", required_argument, NULL, OPT_NUM_PFS },
		{ "num-vfs", required_argument, NULL, OPT_NUM_VFS },
		{ "take-over", required_argument, NULL, OPT_TAKE_OVER },
		{ "log-target", required_argument, NULL, OPT_LOG_TARGET },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*o = (struct nvemud_opts){ .sock = NVEMUD_DEFAULT_SOCKET, .traddr = DEFAULT_TRADDR,
				   .trsvcid = DEFAULT_TRSVCID, .level = NVEMUD_LOG_INFO,
				   .poll_us = LOOP_BUSY_POLL_US_DEFAULT,
				   .idle_poll_ms = LOOP_IDLE_POLL_MS_DEFAULT, .num_pfs = 1 };
	while ((opt = getopt_long(argc, argv, "c:r:l:m:u:vqhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o->config = optarg;
			break;
		case 'r':
			o->sock = optarg;
			o->rpc_given = true;
			break;
		case 'm':
			o->mctp = optarg;
			break;
		case 'u':
			o->vfu = optarg;
			break;
		case 'l':
			o->listen = optarg;
			if (strcmp(o->listen, "none") &&
			    parse_listen(o->listen, o->traddr, sizeof(o->traddr), o->trsvcid,
					 sizeof(o->trsvcid))) {
				fprintf(stderr, "nvemud: --listen: ADDR:PORT, [ADDR6]:PORT or none: %s\n",
					o->listen);
				return 2;
			}
			break;
		case OPT_MI_SERIAL:
			o->mi_serial = optarg;
			break;
		case OPT_METRICS:
			o->metrics = optarg;
			break;
		case OPT_NUM_PFS:
			if (parse_uint_opt("--num-pfs", optarg, 0, NVEMUD_MAX_PFS, &o->num_pfs))
				return 2;
			break;
		case OPT_NUM_VFS:
			if (parse_uint_opt("--num-vfs", optarg, 0, NVEMU_VIRT_MAX_VFS, &o->num_vfs))
				return 2;
			break;
		case OPT_TAKE_OVER:
			if (optarg[0] != '/') {
				fprintf(stderr, "nvemud: --take-over: an absolute socket path\n");
				return 2;
			}
			o->take_over = optarg;
			break;
		case OPT_LOG_TARGET:
			o->log_target = optarg;
			break;
		case OPT_POLL_US:
			if (parse_uint_opt("--poll-us", optarg, 0, LOOP_BUSY_POLL_US_MAX, &o->poll_us))
				return 2;
			break;
		case OPT_REACTORS:
			if (parse_uint_opt("--reactors", optarg, 1, NVEMUD_REACTORS_MAX,
					   &o->reactors.nr))
				return 2;
			if (o->reactors.nr_cpus && o->reactors.nr != o->reactors.nr_cpus) {
				fprintf(stderr, "nvemud: --reactors %u and --cpus (%u CPUs) disagree\n",
					o->reactors.nr, o->reactors.nr_cpus);
				return 2;
			}
			break;
		case OPT_CPUS: {
			struct nvemu_error err = { 0 };
			unsigned nr = o->reactors.nr;

			if (nvemud_reactor_parse_cpus(optarg, &o->reactors, &err)) {
				fprintf(stderr, "nvemud: %s\n", err.msg);
				return 2;
			}
			if (nr && nr != o->reactors.nr_cpus) {
				fprintf(stderr, "nvemud: --reactors %u and --cpus (%u CPUs) disagree\n",
					nr, o->reactors.nr_cpus);
				return 2;
			}
			break;
		}
		case OPT_IDLE_POLL_MS:
			if (parse_uint_opt("--idle-poll-ms", optarg, 1, LOOP_IDLE_POLL_MS_MAX,
					   &o->idle_poll_ms))
				return 2;
			break;
		case 'v':
			if (o->level < NVEMUD_LOG_TRACE)
				o->level++;
			break;
		case 'q':
			o->level = NVEMUD_LOG_ERR;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("nvemud %s\n", NVEMU_VERSION);
			return 0;
		case OPT_CLIENT:
		case OPT_DEVICE:
		case OPT_READONLY:
		case OPT_DS_MAX:
		case OPT_REGISTER_DS:
		case OPT_NUM_QUEUES:
		case OPT_QUEUE_SIZE:
		case OPT_SERIAL:
			if (client_arg(o, opt, optarg))
				return 2;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nvemud: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

/* -c: a bdev whose file is missing is skipped with its users; the rest starts. */
static int load_config(struct nvemud *d, const struct nvemud_opts *o)
{
	struct rpc_err e = { 0 };
	int failed;

	d->lenient_config = true;
	d->skipped = json_array();
	failed = nvemud_load_config_file(d, o->config, &e);
	d->lenient_config = false;
	if (failed) {
		nvemud_log(d, NVEMUD_LOG_ERR, "%s: %s", o->config, e.msg);
		return -1;
	}
	if (json_array_size(d->skipped)) {
		char *what = json_dumps(d->skipped, JSON_COMPACT);

		nvemud_log(d, NVEMUD_LOG_ERR,
			   "loaded %s with %zu item(s) skipped (started without them): %s", o->config,
			   json_array_size(d->skipped), what ? what : "?");
		free(what);
	} else {
		nvemud_log(d, NVEMUD_LOG_INFO, "loaded %s", o->config);
	}
	if (o->listen)
		nvemud_log(d, NVEMUD_LOG_WARN, "--listen %s ignored with -c", o->listen);
	return 0;
}

/* The seed-000 default configuration and its NVMe/TCP listener (-l). */
static int load_default(struct nvemud *d, const struct nvemud_opts *o)
{
	struct nvemu_error err = { 0 };

	if (nvemud_load_default(d, &err)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "default configuration: %s", err.msg);
		return -1;
	}
	if (o->listen && !strcmp(o->listen, "none"))
		return 0;
	if (!nvemud_add_default_listener(d, o->traddr, o->trsvcid, &err))
		return 0;
	/* A private instance (-r) must not fail because a system one holds 4420. */
	if (o->listen || !o->rpc_given) {
		nvemud_log(d, NVEMUD_LOG_ERR,
			   "default configuration: NVMe/TCP listener %s:%s: %s (choose another with -l ADDR:PORT, or -l none)",
			   o->traddr, o->trsvcid, err.msg);
		return -1;
	}
	nvemud_log(d, NVEMUD_LOG_WARN, "default configuration: no NVMe/TCP listener on %s:%s: %s",
		   o->traddr, o->trsvcid, err.msg);
	return 0;
}

/* SIGINT/SIGTERM (the loop stops) and SIGHUP (reload) arrive on a signalfd; SIGPIPE is ignored. */
static int signal_fd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Everything the daemon serves, then the loop until a signal; the exit status. */
/* --mi-serial: the default endpoint moves from the router to a serial line. */
static int start_mi_serial(struct nvemud *d, const char *spec)
{
	struct nvemu_error err = { 0 };
	struct mi_endpoint *ep;
	struct nvemud_mi_ep_opts mo = { .serial = spec, .baud = 115200 };
	struct nvemu_subsys *s;
	uint16_t port;

	if (!d->mi || !d->mi->nr_eps)
		return 0;
	ep = &d->mi->eps[0];
	s = ep->subsys;
	port = ep->port;
	mo.net = nvemu_mctp_ep_net(ep->mctp);
	mo.eid = nvemu_mctp_ep_eid(ep->mctp);
	nvemud_mi_del_ep(d, 0);
	if (nvemud_mi_add_ep(d, s, port, &mo, &err)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "--mi-serial: %s", err.msg);
		return -1;
	}
	ep = &d->mi->eps[d->mi->nr_eps - 1];
	nvemud_log(d, NVEMUD_LOG_INFO, "NVMe-MI network %u EID %u on serial line %s", mo.net, mo.eid,
		   nvemud_mi_serial_name(ep->serial));
	return 0;
}

/*
 * --num-pfs/--num-vfs PCIe functions, their sockets next to an absolute RPC
 * socket (else /var/tmp). A configuration (-c) may set them again.
 */
static void funcs_setup(struct nvemud *d, const struct nvemud_opts *o)
{
	const char *rpc_sock = o->sock, *slash = strrchr(rpc_sock, '/');
	char dir[NVEMUD_FUNC_DIR_MAX + 1];

	snprintf(dir, sizeof(dir), "%s", d->func_dir);
	if (rpc_sock[0] == '/' && slash && slash != rpc_sock &&
	    (size_t)(slash - rpc_sock) <= NVEMUD_FUNC_DIR_MAX)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rpc_sock), rpc_sock);
	nvemud_funcs_configure(d, o->num_pfs, o->num_vfs, dir, NULL);
}

static int serve(struct nvemud *d, const struct nvemud_opts *o, int sfd)
{
	struct nvemu_error err = { 0 };
	struct loop_src *sig_src, *wd;
	struct sig_ctx sc = { .d = d, .config = o->config };
	char apath[108], amsg[160];
	int ret = 1, afd;

	if (o->take_over) {
		/* The old daemon holds the RPC socket until it handed everything over. */
		if (nvemud_take_over(d, o->take_over, TAKE_OVER_WAIT_MS, sfd))
			return 1;
		if (rpc_server_start(d, o->sock, &err)) {
			nvemud_log(d, NVEMUD_LOG_ERR, "%s", err.msg);
			goto out;
		}
	} else {
		/* Socket activation (nvemud.socket): systemd holds the RPC socket. */
		afd = nvemud_sd_listen_fd("rpc", apath, sizeof(apath), amsg, sizeof(amsg));
		if (afd == -2) {
			nvemud_log(d, NVEMUD_LOG_ERR, "%s", amsg);
			return 1;
		}
		if (afd >= 0) {
			if (o->rpc_given && strcmp(o->sock, apath))
				nvemud_log(d, NVEMUD_LOG_WARN,
					   "-r %s: serving the activated socket %s instead", o->sock,
					   apath);
			if (rpc_server_adopt(d, afd, apath, &err)) {
				nvemud_log(d, NVEMUD_LOG_ERR, "%s", err.msg);
				return 1;
			}
		} else if (rpc_server_start(d, o->sock, &err)) {
			/* Refuse early if another daemon serves the socket, before building anything. */
			nvemud_log(d, NVEMUD_LOG_ERR, "%s", err.msg);
			return 1;
		}
		funcs_setup(d, o);
		if (o->config ? load_config(d, o) : load_default(d, o))
			goto out;
		if (!o->config && start_vfu(d, o->vfu, o->sock, o->rpc_given))
			goto out;
		if (!o->config && o->mi_serial && start_mi_serial(d, o->mi_serial))
			goto out;
	}
	if (start_mctp(d, o->mctp, o->rpc_given))
		goto out;
	if (start_clients(d, o))
		goto out;
	if (o->metrics && nvemud_metrics_start(d, o->metrics, &err)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "--metrics: %s", err.msg);
		goto out;
	}
	sig_src = loop_add_fd(d->loop, sfd, EPOLLIN, signal_cb, &sc);
	if (!sig_src) {
		nvemud_log(d, NVEMUD_LOG_ERR, "cannot watch signals");
		goto out;
	}
	nvemud_log(d, NVEMUD_LOG_INFO, "ready");
	/* Type=notify: ready once every socket listens and the configuration is loaded. */
	nvemud_sd_notify("READY=1\nSTATUS=serving");
	wd = nvemud_sd_watchdog_start(d->loop);
	ret = loop_run(d->loop) ? 1 : 0;
	nvemud_sd_notify("STOPPING=1");
	loop_del(wd);
	loop_del(sig_src);
out:
	nvemud_metrics_stop(d);
	nvemud_mi_stop(d);
	rpc_server_stop(d);
	return ret;
}

int main(int argc, char **argv)
{
	struct nvemud_opts o;
	struct nvemud *d;
	struct loop *loop;
	int sfd, ret;

	ret = parse_args(argc, argv, &o);
	if (ret >= 0) {
		json_decref(o.clients);
		return ret;
	}
	sfd = signal_fd();
	loop = loop_new();
	if (sfd < 0 || !loop) {
		fprintf(stderr, "nvemud: cannot set up the event loop: %s\n", strerror(errno));
		return 1;
	}
	loop_set_polling(loop, o.poll_us, o.idle_poll_ms);
	d = nvemud_new_reactors(loop, o.level, &o.reactors);
	if (!d) {
		fprintf(stderr, "nvemud: out of memory\n");
		return 1;
	}
	{
		char msg[160];

		if (nvemud_log_open(&d->logger, o.log_target, msg, sizeof(msg))) {
			fprintf(stderr, "nvemud: %s\n", msg);
			nvemud_free(d);
			loop_free(loop);
			close(sfd);
			json_decref(o.clients);
			return 2;
		}
	}
	warn_vendor(d);
	ret = serve(d, &o, sfd);
	/* In-flight I/O drains on this thread alone. */
	nvemud_reactors_stop(d);
	nvemud_drain(d, SHUTDOWN_DRAIN_MS);
	nvemud_free(d);
	loop_free(loop);
	close(sfd);
	json_decref(o.clients);
	if (!ret)
		fprintf(stderr, "nvemud: stopped\n");
	return ret;
}

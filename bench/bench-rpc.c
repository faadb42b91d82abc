// SPDX-License-Identifier: MIT
/*
 * bench-rpc: nvemud's control plane under load. Starts its own nvemud on a
 * private socket and prints:
 *   - RPC round trips per second for a cheap method (one connection, and a
 *     new connection per call as nvemu-rpc does);
 *   - resident memory idle with the default configuration;
 *   - time to create N RAM namespaces of 1 GiB (sparse) and their memory;
 *   - time of nvme_namespace_list with N namespaces.
 *
 *   bench-rpc [-d NVEMUD] [-n NAMESPACES] [-t SECONDS]
 * NVEMUD defaults to $NVEMUD, then the nvemud of this build.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <jansson.h>

#ifndef NVEMUD_PATH
#define NVEMUD_PATH "nvemud"
#endif

struct conn {
	int fd;
	char *buf;
	size_t len, cap;
	const char *path;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int conn_open(struct conn *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	c->path = path;
	c->len = 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* One request, one reply; returns the reply (new reference) or NULL. */
static json_t *rpc(struct conn *c, const char *method, json_t *params)
{
	json_t *req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 1, "method", method);
	json_error_t jerr;
	char *text;
	size_t off = 0, n;

	if (params)
		json_object_set_new(req, "params", params);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	n = strlen(text);
	while (off < n) {
		ssize_t w = send(c->fd, text + off, n - off, MSG_NOSIGNAL);

		if (w <= 0) {
			free(text);
			return NULL;
		}
		off += w;
	}
	free(text);
	for (;;) {
		json_t *r;
		ssize_t got;

		if (c->len + 65536 > c->cap) {
			c->cap = c->cap ? c->cap * 2 : 1 << 20;
			c->buf = realloc(c->buf, c->cap);
			if (!c->buf)
				return NULL;
		}
		got = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (got <= 0)
			return NULL;
		c->len += got;
		r = json_loadb(c->buf, c->len, JSON_DISABLE_EOF_CHECK, &jerr);
		if (r) {
			size_t used = jerr.position;

			while (used < c->len && strchr(" \t\r\n", c->buf[used]))
				used++;
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			return r;
		}
		if (json_error_code(&jerr) != json_error_premature_end_of_input)
			return NULL;
	}
}

/* The call must succeed; exits with the daemon's message otherwise. */
static json_t *must(struct conn *c, const char *method, json_t *params)
{
	json_t *r = rpc(c, method, params), *res;

	if (!r) {
		fprintf(stderr, "bench-rpc: %s: no reply\n", method);
		exit(1);
	}
	res = json_object_get(r, "result");
	if (!res) {
		fprintf(stderr, "bench-rpc: %s: %s\n", method,
			json_string_value(json_object_get(json_object_get(r, "error"), "message")));
		exit(1);
	}
	json_incref(res);
	json_decref(r);
	return res;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static pid_t start_daemon(const char *nvemud, const char *sock)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl(nvemud, nvemud, "-q", "-r", sock, (char *)NULL);
		fprintf(stderr, "bench-rpc: cannot run %s: %s\n", nvemud, strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < 400 && pid > 0; i++) {
		struct conn c;
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "bench-rpc: nvemud exited at start\n");
			return -1;
		}
		if (!conn_open(&c, sock)) {
			json_t *r = rpc(&c, "rpc_get_methods", NULL);

			conn_close(&c);
			if (r) {
				json_decref(r);
				return pid;
			}
		}
		usleep(25000);
	}
	kill(pid, SIGKILL);
	return -1;
}

int main(int argc, char **argv)
{
	const char *nvemud = getenv("NVEMUD") ? getenv("NVEMUD") : NVEMUD_PATH;
	const char *nqn = "nqn.2024-01.io.nvemu:bench";
	double secs = 2, t0, t, list_min = 1e9, list_sum = 0;
	unsigned nns = 1000, calls, list_runs = 10;
	long rss_idle, rss_ns;
	size_t list_bytes = 0;
	char dir[] = "/tmp/nvemu-bench.XXXXXX", sock[64];
	struct conn c = { .fd = -1 };
	int opt, status;
	pid_t pid;

	while ((opt = getopt(argc, argv, "d:n:t:")) != -1) {
		switch (opt) {
		case 'd':
			nvemud = optarg;
			break;
		case 'n':
			nns = strtoul(optarg, NULL, 0);
			break;
		case 't':
			secs = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: bench-rpc [-d NVEMUD] [-n NAMESPACES] [-t SECONDS]\n");
			return 2;
		}
	}
	if (!nns || nns > 1000000 || !(secs > 0)) {
		fprintf(stderr, "bench-rpc: bad -n or -t\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	pid = start_daemon(nvemud, sock);
	if (pid < 0) {
		rmdir(dir);
		return 1;
	}
	if (conn_open(&c, sock))
		return 1;

	printf("nvemud %s, pid %d\n\n", nvemud, (int)pid);
	printf("%-52s %14s\n", "measure", "value");

	/* Round trips on one connection. */
	json_decref(must(&c, "bdev_list", NULL));
	t0 = now();
	for (calls = 0; (t = now()) - t0 < secs; calls++)
		json_decref(must(&c, "bdev_list", NULL));
	printf("%-52s %10.0f /s\n", "bdev_list round trips, one connection", calls / (t - t0));

	t0 = now();
	for (calls = 0; (t = now()) - t0 < secs; calls++) {
		struct conn c2 = { .fd = -1 };

		if (conn_open(&c2, sock))
			return 1;
		json_decref(must(&c2, "rpc_get_methods", NULL));
		conn_close(&c2);
		free(c2.buf);
	}
	printf("%-52s %10.0f /s\n", "rpc_get_methods round trips, connection per call",
	       calls / (t - t0));

	rss_idle = rss_kib(pid);
	printf("%-52s %10ld KiB\n", "VmRSS idle, default configuration", rss_idle);

	/* N namespaces of 1 GiB each on RAM bdevs: sparse, so memory must stay small. */
	json_decref(must(&c, "nvme_subsystem_create",
			 json_pack("{s:s, s:I}", "nqn", nqn, "mnan", (json_int_t)nns)));
	t0 = now();
	for (unsigned i = 0; i < nns; i++) {
		char name[32];

		snprintf(name, sizeof(name), "Bench%u", i);
		json_decref(must(&c, "bdev_malloc_create",
				 json_pack("{s:s, s:I, s:i}", "name", name, "num_blocks",
					   (json_int_t)(1 << 21), "block_size", 512)));
		json_decref(must(&c, "nvme_namespace_create",
				 json_pack("{s:s, s:s, s:I}", "nqn", nqn, "bdev_name", name,
					   "nsid", (json_int_t)i + 1)));
	}
	t = now() - t0;
	printf("%-52s %10.3f s\n", "create bdev + namespace, 1 GiB RAM each (all)", t);
	printf("%-52s %10.1f us\n", "  per bdev + namespace pair", t / nns * 1e6);

	for (unsigned i = 0; i < list_runs; i++) {
		json_t *r;
		char *s;

		t0 = now();
		r = must(&c, "nvme_namespace_list", json_pack("{s:s}", "nqn", nqn));
		t = now() - t0;
		if (json_array_size(r) != nns) {
			fprintf(stderr, "bench-rpc: nvme_namespace_list returned %zu, not %u\n",
				json_array_size(r), nns);
			return 1;
		}
		if (!i) {
			s = json_dumps(r, JSON_COMPACT);
			list_bytes = s ? strlen(s) : 0;
			free(s);
		}
		json_decref(r);
		list_sum += t;
		if (t < list_min)
			list_min = t;
	}
	{
		char label[64];

		snprintf(label, sizeof(label), "nvme_namespace_list, %u namespaces (best)", nns);
		printf("%-52s %10.2f ms\n", label, list_min * 1e3);
	}
	printf("%-52s %10.2f ms\n", "nvme_namespace_list (mean of 10)", list_sum / list_runs * 1e3);
	printf("%-52s %10zu B\n", "  reply size", list_bytes);
	rss_ns = rss_kib(pid);
	printf("%-52s %10ld KiB\n", "VmRSS with the namespaces", rss_ns);
	printf("%-52s %10.1f KiB\n", "  per namespace (over idle)",
	       (double)(rss_ns - rss_idle) / nns);
	printf("\n(%u namespaces of 1 GiB = %u GiB of RAM namespaces)\n", nns, nns);
	fflush(stdout);

	conn_close(&c);
	free(c.buf);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	unlink(sock);
	rmdir(dir);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "bench-rpc: nvemud did not exit cleanly on SIGTERM\n");
		return 1;
	}
	return 0;
}

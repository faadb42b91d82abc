// SPDX-License-Identifier: MIT
/*
 * --metrics ADDR:PORT: the Prometheus text exposition format (0.0.4) over a
 * minimal HTTP/1.x server on the event loop. One request per connection;
 * every peer is bounded (connections, request size, time) and an answer is
 * written without blocking the loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nvemu/ctrl-state.h>
#include <nvemu/mctp.h>
#include <nvemu/metrics.h>
#include <nvemu/mi.h>

#include "config.h"
#include "daemon.h"
#include "event-loop.h"

#define METRICS_CLIENTS_MAX 8
#define METRICS_REQ_MAX	    4096
#define METRICS_TIMEOUT_MS  5000
#define METRICS_DRAIN_MAX   65536 /* bytes dropped after the answer before closing */

struct metrics_client {
	struct nvemud_metrics *m;
	int fd;
	struct loop_src *src, *timer;
	char req[METRICS_REQ_MAX];
	size_t req_len;
	char *out; /* the response, once the request is complete */
	size_t out_len, out_off;
	/* Answered: input is read and dropped until EOF, so close sends no RST. */
	bool draining;
	size_t drained;
	LIST_ENTRY(metrics_client) link;
};

struct nvemud_metrics {
	struct nvemud *d;
	int fd;
	struct loop_src *src;
	char addr[64];
	uint16_t port;
	unsigned nr_clients;
	uint64_t scrapes, rejected;
	LIST_HEAD(, metrics_client) clients;
};

/* ---- the request */

int nvemud_http_parse_request(const char *buf, size_t len, char *path, size_t path_size)
{
	const char *end, *sp1, *sp2, *eol;

	end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end) {
		/* Bare LF line ends are tolerated, as most servers do. */
		end = memmem(buf, len, "\n\n", 2);
		if (!end)
			return len >= METRICS_REQ_MAX ? 431 : 0;
	}
	/* The head ends in a line end, so the first line has one. */
	eol = memchr(buf, '\n', len);
	if (!eol)
		return 400;
	sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	if (!sp1)
		return 400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1 || (size_t)(eol - sp2) < 9 || memcmp(sp2 + 1, "HTTP/1.", 7))
		return 400;
	if ((size_t)(sp2 - sp1 - 1) >= path_size)
		return 414;
	/* A target is visible ASCII (RFC 9112); a NUL would also cut the string. */
	for (const char *p = sp1 + 1; p < sp2; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return 400;
	memcpy(path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	path[sp2 - sp1 - 1] = '\0';
	if (sp1 - buf != 3 || memcmp(buf, "GET", 3))
		return 405;
	return 200;
}

/* ---- the exposition */

static void esc_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void help(FILE *f, const char *name, const char *type, const char *text)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* Labels of a controller: its subsystem, its ID and its name when it has one. */
static void ctrl_labels(FILE *f, struct nvemud *d, struct nvemu_subsys *s, struct nvemu_ctrl *ctrl)
{
	const char *name = NULL;

	for (unsigned i = 0; i < d->nr_ctrls; i++)
		if (d->ctrls[i].subsys == s && d->ctrls[i].cntlid == nvemu_ctrl_cntlid(ctrl))
			name = d->ctrls[i].name;
	fputs("nqn=\"", f);
	esc_label(f, nvemu_subsys_nqn(s));
	fprintf(f, "\",cntlid=\"%u\"", nvemu_ctrl_cntlid(ctrl));
	if (name) {
		fputs(",ctrl=\"", f);
		esc_label(f, name);
		fputc('"', f);
	}
}

#define FOR_EACH_CTRL(d, s, ctrl)                                                                  \
	for (unsigned si_ = 0; si_ < (d)->nr_subsys; si_++)                                        \
		for (unsigned ci_ = 0; ((s) = (d)->subsys[si_]) &&                                 \
				       ((ctrl) = nvemu_subsys_ctrl_at((s), ci_));                  \
		     ci_++)

static void render_commands(FILE *f, struct nvemud *d)
{
	struct nvemu_ctrl_metrics mm;
	struct nvemu_subsys *s;
	struct nvemu_ctrl *ctrl;

	help(f, "nvemu_commands_total", "counter", "Commands completed, by class.");
	FOR_EACH_CTRL(d, s, ctrl)
	{
		nvemu_ctrl_get_metrics(ctrl, &mm);
		for (unsigned c = 0; c < NVEMU_CLASS_NR; c++) {
			fputs("nvemu_commands_total{", f);
			ctrl_labels(f, d, s, ctrl);
			fprintf(f, ",class=\"%s\"} %llu\n", nvemu_cmd_class_name(c),
				(unsigned long long)mm.cls[c].cmds);
		}
	}
	help(f, "nvemu_data_bytes_total", "counter", "Bytes of command data transferred, by class.");
	FOR_EACH_CTRL(d, s, ctrl)
	{
		nvemu_ctrl_get_metrics(ctrl, &mm);
		for (unsigned c = 0; c < NVEMU_CLASS_NR; c++) {
			fputs("nvemu_data_bytes_total{", f);
			ctrl_labels(f, d, s, ctrl);
			fprintf(f, ",class=\"%s\"} %llu\n", nvemu_cmd_class_name(c),
				(unsigned long long)mm.cls[c].bytes);
		}
	}
	help(f, "nvemu_command_errors_total", "counter",
	     "Commands completed with an error status, by status code type and code.");
	FOR_EACH_CTRL(d, s, ctrl)
	{
		nvemu_ctrl_get_metrics(ctrl, &mm);
		for (unsigned i = 0; i < NVEMU_METRIC_STATUSES && mm.err[i].count; i++) {
			fputs("nvemu_command_errors_total{", f);
			ctrl_labels(f, d, s, ctrl);
			fprintf(f, ",sct=\"%u\",sc=\"0x%02x\"} %llu\n", (mm.err[i].status >> 8) & 7,
				mm.err[i].status & 0xff, (unsigned long long)mm.err[i].count);
		}
		if (mm.err_other) {
			fputs("nvemu_command_errors_total{", f);
			ctrl_labels(f, d, s, ctrl);
			fprintf(f, ",sct=\"other\",sc=\"other\"} %llu\n",
				(unsigned long long)mm.err_other);
		}
	}
	help(f, "nvemu_command_latency_seconds", "histogram",
	     "Time from submission to completion, by class.");
	FOR_EACH_CTRL(d, s, ctrl)
	{
		nvemu_ctrl_get_metrics(ctrl, &mm);
		for (unsigned c = 0; c < NVEMU_CLASS_NR; c++) {
			uint64_t cum = 0;

			for (unsigned b = 0; b <= NVEMU_LAT_BUCKETS; b++) {
				cum += mm.cls[c].lat_hist[b];
				fputs("nvemu_command_latency_seconds_bucket{", f);
				ctrl_labels(f, d, s, ctrl);
				if (b < NVEMU_LAT_BUCKETS)
					fprintf(f, ",class=\"%s\",le=\"%g\"} %llu\n",
						nvemu_cmd_class_name(c),
						nvemu_lat_bucket_us(b) / 1e6, (unsigned long long)cum);
				else
					fprintf(f, ",class=\"%s\",le=\"+Inf\"} %llu\n",
						nvemu_cmd_class_name(c), (unsigned long long)cum);
			}
			fputs("nvemu_command_latency_seconds_sum{", f);
			ctrl_labels(f, d, s, ctrl);
			fprintf(f, ",class=\"%s\"} %.9f\n", nvemu_cmd_class_name(c),
				mm.cls[c].lat_sum_ns / 1e9);
			fputs("nvemu_command_latency_seconds_count{", f);
			ctrl_labels(f, d, s, ctrl);
			fprintf(f, ",class=\"%s\"} %llu\n", nvemu_cmd_class_name(c),
				(unsigned long long)cum);
		}
	}
	help(f, "nvemu_aens_total", "counter", "Asynchronous Events delivered to the host.");
	FOR_EACH_CTRL(d, s, ctrl)
	{
		nvemu_ctrl_get_metrics(ctrl, &mm);
		fputs("nvemu_aens_total{", f);
		ctrl_labels(f, d, s, ctrl);
		fprintf(f, "} %llu\n", (unsigned long long)mm.aens);
	}
}

static void render_queues(FILE *f, struct nvemud *d)
{
	static const struct {
		const char *name, *type, *help, *field;
	} q[] = {
		{ "nvemu_queue_requests_total", "counter", "Commands fetched from a submission queue.",
		  "requests" },
		{ "nvemu_queue_completions_total", "counter", "Commands completed for a submission queue.",
		  "completions" },
	};
	struct nvemu_subsys *s;
	struct nvemu_ctrl *ctrl;

	for (unsigned k = 0; k < sizeof(q) / sizeof(q[0]); k++) {
		help(f, q[k].name, q[k].type, q[k].help);
		FOR_EACH_CTRL(d, s, ctrl)
		{
			for (unsigned qid = 0; qid <= nvemu_ctrl_params(ctrl)->num_io_queues; qid++) {
				if (!nvemu_ctrl_state_queue_valid(ctrl, NVEMU_STATE_SQ, qid))
					continue;
				fprintf(f, "%s{", q[k].name);
				ctrl_labels(f, d, s, ctrl);
				fprintf(f, ",qid=\"%u\"} %llu\n", qid,
					(unsigned long long)nvemud_queue_stat(ctrl, NVEMU_STATE_SQ,
									      qid, q[k].field));
			}
		}
	}
	help(f, "nvemu_queue_depth", "gauge", "Commands of a submission queue not completed yet.");
	FOR_EACH_CTRL(d, s, ctrl)
	{
		for (unsigned qid = 0; qid <= nvemu_ctrl_params(ctrl)->num_io_queues; qid++) {
			uint64_t r, c;

			if (!nvemu_ctrl_state_queue_valid(ctrl, NVEMU_STATE_SQ, qid))
				continue;
			r = nvemud_queue_stat(ctrl, NVEMU_STATE_SQ, qid, "requests");
			c = nvemud_queue_stat(ctrl, NVEMU_STATE_SQ, qid, "completions");
			fputs("nvemu_queue_depth{", f);
			ctrl_labels(f, d, s, ctrl);
			fprintf(f, ",qid=\"%u\"} %llu\n", qid,
				(unsigned long long)(r > c ? r - c : 0));
		}
	}
	help(f, "nvemu_controller_ready", "gauge", "CSTS.RDY of the controller (1: a host enabled it).");
	FOR_EACH_CTRL(d, s, ctrl)
	{
		fputs("nvemu_controller_ready{", f);
		ctrl_labels(f, d, s, ctrl);
		fprintf(f, "} %u\n", nvemu_ctrl_get_csts(ctrl) & 1);
	}
}

static void render_health(FILE *f, struct nvemud *d)
{
	static const char *const names[] = {
		"nvemu_temperature_kelvin", "nvemu_available_spare_percent",
		"nvemu_percentage_used", "nvemu_critical_warning",
	};
	static const char *const helps[] = {
		"Composite temperature (SMART / Health log, MI health poll).",
		"Available spare, percent.", "Percentage used (endurance estimate).",
		"Critical warning bits set over RPC.",
	};

	for (unsigned k = 0; k < 4; k++) {
		help(f, names[k], "gauge", helps[k]);
		for (unsigned i = 0; i < d->nr_subsys; i++) {
			struct nvemu_health h;
			unsigned v;

			nvemu_subsys_get_health(d->subsys[i], &h);
			v = k == 0 ? h.temperature_k :
			    k == 1 ? h.avail_spare :
			    k == 2 ? h.percent_used :
				     h.critical_warning;
			fprintf(f, "%s{nqn=\"", names[k]);
			esc_label(f, nvemu_subsys_nqn(d->subsys[i]));
			fprintf(f, "\"} %u\n", v);
		}
	}
}

static void render_mi(FILE *f, struct nvemud *d)
{
	static const char *const names[] = {
		"nvemu_mi_rx_messages_total", "nvemu_mi_tx_messages_total",
		"nvemu_mi_rx_packets_total", "nvemu_mi_tx_packets_total",
	};

	for (unsigned k = 0; k < 4; k++) {
		help(f, names[k], "counter", "MCTP traffic of an NVMe-MI endpoint.");
		for (unsigned i = 0; d->mi && i < d->mi->nr_eps; i++) {
			const struct nvemu_mctp_ep_stats *st =
				nvemu_mctp_ep_stats(d->mi->eps[i].mctp);
			uint64_t v = k == 0 ? st->rx_messages :
				     k == 1 ? st->tx_messages :
				     k == 2 ? st->rx_packets :
					      st->tx_packets;

			fprintf(f, "%s{net=\"%u\",eid=\"%u\"} %llu\n", names[k],
				nvemu_mctp_ep_net(d->mi->eps[i].mctp),
				nvemu_mctp_ep_eid(d->mi->eps[i].mctp), (unsigned long long)v);
		}
	}
}

static void render_process(FILE *f, struct nvemud_metrics *m)
{
	struct rusage ru;
	long pages = 0, rss = 0;
	FILE *statm;

	getrusage(RUSAGE_SELF, &ru);
	statm = fopen("/proc/self/statm", "re");
	if (statm) {
		if (fscanf(statm, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(statm);
	}
	help(f, "process_cpu_seconds_total", "counter", "User and system CPU time of nvemud.");
	fprintf(f, "process_cpu_seconds_total %.6f\n",
		ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
			(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	help(f, "process_resident_memory_bytes", "gauge", "Resident set size of nvemud.");
	fprintf(f, "process_resident_memory_bytes %lld\n",
		(long long)rss * sysconf(_SC_PAGESIZE));
	help(f, "nvemu_metrics_scrapes_total", "counter", "Requests answered by this endpoint.");
	fprintf(f, "nvemu_metrics_scrapes_total %llu\n", (unsigned long long)m->scrapes);
	help(f, "nvemu_build_info", "gauge", "Version of nvemud.");
	fprintf(f, "nvemu_build_info{version=\"%s\"} 1\n", NVEMU_VERSION);
}

char *nvemud_metrics_render(struct nvemud *d, struct nvemud_metrics *m, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	render_commands(f, d);
	render_queues(f, d);
	render_health(f, d);
	render_mi(f, d);
	if (m)
		render_process(f, m);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- connections */

static void client_free(struct metrics_client *c)
{
	LIST_REMOVE(c, link);
	c->m->nr_clients--;
	loop_del(c->src);
	loop_del(c->timer);
	close(c->fd);
	free(c->out);
	free(c);
}

static void client_timeout(struct loop_src *src, void *arg)
{
	(void)src;
	client_free(arg);
}

static int respond(struct metrics_client *c, int code, const char *ctype, const char *body,
		   size_t blen)
{
	static const char *const reason[] = {
		[200] = "OK",
		[400] = "Bad Request",
		[404] = "Not Found",
		[405] = "Method Not Allowed",
		[414] = "URI Too Long",
		[431] = "Request Header Fields Too Large",
		[500] = "Internal Server Error",
	};
	FILE *f = open_memstream(&c->out, &c->out_len);

	if (!f)
		return -1;
	fprintf(f,
		"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		"Connection: close\r\n%s\r\n",
		code, reason[code] ? reason[code] : "Error", ctype, blen,
		code == 405 ? "Allow: GET\r\n" : "");
	fwrite(body, 1, blen, f);
	if (fclose(f))
		return -1;
	c->out_off = 0;
	return 0;
}

static void client_write(struct metrics_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			loop_mod_fd(c->src, EPOLLOUT);
			return;
		}
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	if (c->out_off < c->out_len) {
		client_free(c);
		return;
	}
	/* Closing with unread input would reset the connection before the peer reads. */
	shutdown(c->fd, SHUT_WR);
	c->draining = true;
	loop_mod_fd(c->src, EPOLLIN);
}

static void client_drain(struct metrics_client *c)
{
	char scratch[4096];
	ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (c->drained += (size_t)n) > METRICS_DRAIN_MAX)
		client_free(c);
}

static void client_request(struct metrics_client *c, int code, const char *path)
{
	static const char text[] = "text/plain; charset=utf-8";
	char msg[128];
	int n;

	if (code == 200 && (!strcmp(path, "/metrics") || !strncmp(path, "/metrics?", 9))) {
		size_t len = 0;
		char *body;

		c->m->scrapes++;
		body = nvemud_metrics_render(c->m->d, c->m, &len);
		if (body && !respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len)) {
			free(body);
			client_write(c);
			return;
		}
		free(body);
		code = 500;
	} else if (code == 200) {
		code = 404;
	}
	n = snprintf(msg, sizeof(msg), "%d: nvemud serves GET /metrics only\n", code);
	if (respond(c, code, text, msg, (size_t)n)) {
		client_free(c);
		return;
	}
	client_write(c);
}

static void client_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct metrics_client *c = arg;
	char path[512];
	ssize_t n;
	int code;

	(void)src;
	if (c->draining) {
		client_drain(c);
		return;
	}
	if (c->out) {
		client_write(c);
		return;
	}
	if (revents & (EPOLLERR | EPOLLHUP) && !(revents & EPOLLIN)) {
		client_free(c);
		return;
	}
	n = recv(fd, c->req + c->req_len, sizeof(c->req) - c->req_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(c);
		return;
	}
	c->req_len += (size_t)n;
	code = nvemud_http_parse_request(c->req, c->req_len, path, sizeof(path));
	if (!code)
		return; /* more to come */
	/* The request is complete: nothing more is read from this peer. */
	client_request(c, code, path);
}

static void accept_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct nvemud_metrics *m = arg;
	struct metrics_client *c;
	int cfd;

	(void)src;
	(void)revents;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return; /* EMFILE and the like: the next connection is tried again */
	if (m->nr_clients >= METRICS_CLIENTS_MAX) {
		m->rejected++;
		close(cfd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return;
	}
	c->m = m;
	c->fd = cfd;
	c->src = loop_add_fd(m->d->loop, cfd, EPOLLIN, client_cb, c);
	c->timer = loop_add_timer(m->d->loop, METRICS_TIMEOUT_MS, false, client_timeout, c);
	if (!c->src || !c->timer) {
		loop_del(c->src);
		loop_del(c->timer);
		close(cfd);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&m->clients, c, link);
	m->nr_clients++;
}

/* "ADDR:PORT" or "[ADDR6]:PORT". */
static int parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sl,
		      struct nvemu_error *err)
{
	char host[64];
	const char *colon, *h = spec;
	size_t hl;
	char *end;
	unsigned long port;

	if (*spec == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || rb[1] != ':')
			return nvemu_error_set(err, -EINVAL, "metrics: '%.64s': want [ADDR]:PORT", spec);
		h = spec + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return nvemu_error_set(err, -EINVAL, "metrics: '%.64s': want ADDR:PORT", spec);
		hl = (size_t)(colon - spec);
	}
	if (hl == 0 || hl >= sizeof(host))
		return nvemu_error_set(err, -EINVAL, "metrics: '%.64s': bad address", spec);
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port > 65535)
		return nvemu_error_set(err, -EINVAL, "metrics: '%.64s': bad port", spec);
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		*sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		*sl = sizeof(struct sockaddr_in6);
	} else {
		return nvemu_error_set(err, -EINVAL, "metrics: '%.64s': not an IP address", host);
	}
	return 0;
}

int nvemud_metrics_start(struct nvemud *d, const char *spec, struct nvemu_error *err)
{
	struct sockaddr_storage ss, bound;
	socklen_t sl = 0, bl = sizeof(bound);
	struct nvemud_metrics *m;
	int one = 1, fd, ret;

	if (!d->loop)
		return nvemu_error_set(err, -EINVAL, "metrics: needs the event loop");
	ret = parse_addr(spec, &ss, &sl, err);
	if (ret)
		return ret;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nvemu_error_set(err, -errno, "metrics: socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&bound, &bl)) {
		ret = -errno;
		close(fd);
		return nvemu_error_set(err, ret, "metrics: cannot listen on %.64s: %s", spec,
				       strerror(-ret));
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		return nvemu_error_set(err, -ENOMEM, "metrics: out of memory");
	}
	m->d = d;
	m->fd = fd;
	LIST_INIT(&m->clients);
	if (bound.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&bound)->sin_addr, m->addr, sizeof(m->addr));
		m->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&bound)->sin6_addr, m->addr,
			  sizeof(m->addr));
		m->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	}
	m->src = loop_add_fd(d->loop, fd, EPOLLIN, accept_cb, m);
	if (!m->src) {
		close(fd);
		free(m);
		return nvemu_error_set(err, -ENOMEM, "metrics: out of memory");
	}
	d->metrics = m;
	nvemud_log(d, NVEMUD_LOG_INFO, "metrics: http://%s%s%s:%u/metrics",
		   bound.ss_family == AF_INET6 ? "[" : "", m->addr,
		   bound.ss_family == AF_INET6 ? "]" : "", m->port);
	return 0;
}

void nvemud_metrics_stop(struct nvemud *d)
{
	struct nvemud_metrics *m = d->metrics;

	if (!m)
		return;
	while (!LIST_EMPTY(&m->clients))
		client_free(LIST_FIRST(&m->clients));
	loop_del(m->src);
	close(m->fd);
	free(m);
	d->metrics = NULL;
}

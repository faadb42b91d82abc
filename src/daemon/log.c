// SPDX-License-Identifier: MIT
/*
 * nvemud's messages: plain text on stderr, or entries in the systemd
 * journal with structured fields. The journal is reached through its
 * documented native protocol (systemd.journal-fields(7), "Native Journal
 * Protocol"): no libsystemd, and a test can stand in for the journal on a
 * socket of its own. Messages peers can cause are rate limited per message
 * kind and peer, so a hostile host cannot flood the log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/* ---- rate limiting */

#define RL_ALL_FACTOR 8 /* every peer together: 8 times one peer's rate */

void nvemud_ratelimit_init(struct nvemud_ratelimit *rl, unsigned burst, uint64_t interval_ns)
{
	memset(rl, 0, sizeof(*rl));
	rl->burst = burst ? burst : 1;
	rl->interval_ns = interval_ns;
	rl->all_burst = rl->burst * RL_ALL_FACTOR;
	rl->all_interval_ns = interval_ns / RL_ALL_FACTOR;
}

/* GCRA: the bucket is the distance between now and the theoretical arrival time. */
static bool gcra(struct nvemud_rl_slot *s, uint64_t now, uint64_t interval, unsigned burst)
{
	uint64_t tau = interval * (burst - 1);
	uint64_t tat = s->tat > now ? s->tat : now;

	if (tat - now > tau)
		return false;
	s->tat = tat + interval;
	return true;
}

bool nvemud_ratelimit_ok(struct nvemud_ratelimit *rl, uint64_t key, uint64_t now_ns,
			 uint32_t *suppressed)
{
	struct nvemud_rl_slot *s = &rl->slot[key % NVEMUD_RL_SLOTS];

	*suppressed = 0;
	if (s->key != key) {
		/* Taken over: whatever the previous key dropped is counted globally. */
		rl->all.suppressed += s->suppressed;
		*s = (struct nvemud_rl_slot){ .key = key };
	}
	if (!gcra(s, now_ns, rl->interval_ns, rl->burst) ||
	    !gcra(&rl->all, now_ns, rl->all_interval_ns, rl->all_burst)) {
		if (s->suppressed < UINT32_MAX)
			s->suppressed++;
		return false;
	}
	*suppressed = s->suppressed;
	s->suppressed = 0;
	return true;
}

/* FNV-1a of the site's address and the peer string. */
uint64_t nvemud_log_key(const void *site, const char *peer)
{
	uint64_t h = 0xcbf29ce484222325ull, a = (uint64_t)(uintptr_t)site;

	for (unsigned i = 0; i < 8; i++) {
		h ^= (a >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
	for (const unsigned char *p = (const unsigned char *)(peer ? peer : ""); *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* ---- the journal's native protocol */

bool nvemud_log_key_valid(const char *key)
{
	size_t n = key ? strlen(key) : 0;

	if (!n || n > 64 || key[0] == '_' || (key[0] >= '0' && key[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((key[i] >= 'A' && key[i] <= 'Z') || (key[i] >= '0' && key[i] <= '9') ||
		      key[i] == '_'))
			return false;
	return true;
}

static bool put(char *buf, size_t size, size_t *o, const void *p, size_t n)
{
	if (n > size - *o)
		return false;
	memcpy(buf + *o, p, n);
	*o += n;
	return true;
}

/* KEY=value\n, or KEY\n<64-bit LE length>value\n when the value has a newline. */
static bool put_field(char *buf, size_t size, size_t *o, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);

	if (!memchr(val, '\n', vl))
		return put(buf, size, o, key, kl) && put(buf, size, o, "=", 1) &&
		       put(buf, size, o, val, vl) && put(buf, size, o, "\n", 1);
	uint8_t le[8];

	for (unsigned i = 0; i < 8; i++)
		le[i] = (uint8_t)((uint64_t)vl >> (8 * i));
	return put(buf, size, o, key, kl) && put(buf, size, o, "\n", 1) &&
	       put(buf, size, o, le, 8) && put(buf, size, o, val, vl) &&
	       put(buf, size, o, "\n", 1);
}

static int syslog_priority(int level)
{
	static const int prio[] = { 3, 4, 6, 7, 7 }; /* err, warning, info, debug, debug */

	return prio[level < 0 ? 0 : level > 4 ? 4 : level];
}

size_t nvemud_journal_format(char *buf, size_t size, int level, const char *msg,
			     const struct nvemud_log_field *f, unsigned nf)
{
	char prio[4];
	size_t o = 0;

	snprintf(prio, sizeof(prio), "%d", syslog_priority(level));
	if (!put_field(buf, size, &o, "PRIORITY", prio) ||
	    !put_field(buf, size, &o, "SYSLOG_IDENTIFIER", "nvemud") ||
	    !put_field(buf, size, &o, "MESSAGE", msg))
		return 0;
	for (unsigned i = 0; i < nf; i++) {
		if (!f[i].val)
			continue;
		if (!nvemud_log_key_valid(f[i].key) || !put_field(buf, size, &o, f[i].key, f[i].val))
			return 0;
	}
	return o;
}

/* ---- sinks */

/* $JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected stderr to. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int nvemud_log_open(struct nvemud_logger *l, const char *spec, char *msg, size_t msg_size)
{
	const char *path = NVEMUD_JOURNAL_SOCKET;

	l->jfd = -1;
	l->target = NVEMUD_LOG_TO_STDERR;
	if (!spec || !strcmp(spec, "auto")) {
		if (!stderr_is_journal())
			return 0;
	} else if (!strcmp(spec, "stderr")) {
		return 0;
	} else if (!strncmp(spec, "journal:", 8)) {
		path = spec + 8;
	} else if (strcmp(spec, "journal")) {
		snprintf(msg, msg_size, "--log-target: auto, stderr, journal or journal:/PATH: %s",
			 spec);
		return -1;
	}
	if (path[0] != '/' || strlen(path) >= sizeof(l->jpath)) {
		snprintf(msg, msg_size, "--log-target: the socket must be an absolute path of at most %zu bytes",
			 sizeof(l->jpath) - 1);
		return -1;
	}
	snprintf(l->jpath, sizeof(l->jpath), "%s", path);
	l->jfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->jfd < 0) {
		snprintf(msg, msg_size, "journal socket: %s", strerror(errno));
		return -1;
	}
	l->target = NVEMUD_LOG_TO_JOURNAL;
	return 0;
}

void nvemud_log_close(struct nvemud_logger *l)
{
	if (l->jfd >= 0)
		close(l->jfd);
	l->jfd = -1;
	l->target = NVEMUD_LOG_TO_STDERR;
}

/* Names and NQNs come from peers: a newline in one must not forge a log line. */
static void escape(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p && o + 5 < size; p++) {
		if (*p < 0x20 || *p == 0x7f)
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", *p);
		else if (*p == '\\')
			o += (size_t)snprintf(out + o, size - o, "\\\\");
		else
			out[o++] = (char)*p;
	}
	out[o] = 0;
}

static bool journal_send(struct nvemud_logger *l, int level, const char *msg,
			 const struct nvemud_log_field *f, unsigned nf)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[8192];
	size_t len = nvemud_journal_format(buf, sizeof(buf), level, msg, f, nf);

	if (!len)
		return false;
	memcpy(sa.sun_path, l->jpath, strlen(l->jpath));
	/* Non-blocking: a journal that does not keep up costs messages, not the loop. */
	if (sendto(l->jfd, buf, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		l->journal_errors++;
		return false;
	}
	return true;
}

static void emit(struct nvemud *d, int level, const struct nvemud_log_field *f, unsigned nf,
		 const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug", "trace" };
	char out[4096];

	escape(msg, out, sizeof(out));
	if (d && d->logger.target == NVEMUD_LOG_TO_JOURNAL &&
	    journal_send(&d->logger, level, out, f, nf))
		return;
	fprintf(stderr, "nvemud: %s: %s\n", names[level < 0 ? 0 : level > 4 ? 4 : level], out);
}

void nvemud_vlog_fields(struct nvemud *d, int level, const struct nvemud_log_field *f,
			unsigned nf, const char *fmt, va_list ap)
{
	char msg[1024];

	if (d && level > d->log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	emit(d, level, f, nf, msg);
}

void nvemud_log_fields(struct nvemud *d, int level, const struct nvemud_log_field *f,
		       unsigned nf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nvemud_vlog_fields(d, level, f, nf, fmt, ap);
	va_end(ap);
}

void nvemud_log(struct nvemud *d, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nvemud_vlog_fields(d, level, NULL, 0, fmt, ap);
	va_end(ap);
}

void nvemud_vlog_peer(struct nvemud *d, int level, const void *site, const char *peer,
		      const struct nvemud_log_field *f, unsigned nf, const char *fmt, va_list ap)
{
	uint32_t suppressed;

	if (d && level > d->log_level)
		return;
	if (d && !nvemud_ratelimit_ok(&d->logger.rl, nvemud_log_key(site, peer), nvemud_now_ns(),
				      &suppressed))
		return;
	if (d && suppressed)
		nvemud_log_fields(d, level, f, nf, "suppressed %u messages like the next one%s%s",
				  suppressed, peer ? " from " : "", peer ? peer : "");
	nvemud_vlog_fields(d, level, f, nf, fmt, ap);
}

void nvemud_log_peer(struct nvemud *d, int level, const void *site, const char *peer,
		     const struct nvemud_log_field *f, unsigned nf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nvemud_vlog_peer(d, level, site, peer, f, nf, fmt, ap);
	va_end(ap);
}

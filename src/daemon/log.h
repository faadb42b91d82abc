/* SPDX-License-Identifier: MIT */
/*
 * nvemud's log sinks: plain text on stderr, or the systemd journal's native
 * protocol (a datagram of KEY=value lines to /run/systemd/journal/socket)
 * with the fields that say which controller, host and queue a message is
 * about. Messages a peer can cause go through a rate limiter.
 */
#ifndef NVEMUD_LOG_H
#define NVEMUD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NVEMUD_JOURNAL_SOCKET "/run/systemd/journal/socket"

/* A structured field: key is a journal field name (A-Z, 0-9, _), NVEMU_... */
struct nvemud_log_field {
	const char *key;
	const char *val; /* NULL: the field is left out */
};

/* Common keys. */
#define NVEMUD_F_CTRL "NVEMU_CTRL"	/* RPC name or cntlid */
#define NVEMUD_F_CNTLID "NVEMU_CNTLID"
#define NVEMUD_F_HOSTNQN "NVEMU_HOSTNQN"
#define NVEMUD_F_SUBNQN "NVEMU_SUBNQN"
#define NVEMUD_F_QID "NVEMU_QID"
#define NVEMUD_F_PEER "NVEMU_PEER"	/* remote address, socket or line */
#define NVEMUD_F_TRANSPORT "NVEMU_TRANSPORT"

/*
 * Generic cell rate limiting (a token bucket without a timer): burst
 * messages at once, then one per interval. Slots are keyed by message site
 * and peer; a key that collides with a busy slot takes it over.
 */
#define NVEMUD_RL_SLOTS 128
struct nvemud_rl_slot {
	uint64_t key;
	uint64_t tat;	     /* theoretical arrival time, ns */
	uint32_t suppressed; /* dropped since the last message let through */
};
struct nvemud_ratelimit {
	uint64_t interval_ns;
	unsigned burst;
	struct nvemud_rl_slot slot[NVEMUD_RL_SLOTS];
	struct nvemud_rl_slot all; /* every peer-caused message: a flood of peers */
	uint64_t all_interval_ns;
	unsigned all_burst;
};

void nvemud_ratelimit_init(struct nvemud_ratelimit *rl, unsigned burst, uint64_t interval_ns);
/*
 * May a message with this key go out at now_ns? When it may, *suppressed is
 * how many with the same key were dropped before it (to report).
 */
bool nvemud_ratelimit_ok(struct nvemud_ratelimit *rl, uint64_t key, uint64_t now_ns,
			 uint32_t *suppressed);
uint64_t nvemud_log_key(const void *site, const char *peer);

/*
 * One journal entry in the native protocol into buf: PRIORITY, MESSAGE,
 * SYSLOG_IDENTIFIER and the fields; a value with a newline in the binary
 * form. Returns its length, or 0 if it does not fit or a key is invalid.
 */
size_t nvemud_journal_format(char *buf, size_t size, int level, const char *msg,
			     const struct nvemud_log_field *f, unsigned nf);
bool nvemud_log_key_valid(const char *key);

enum nvemud_log_target {
	NVEMUD_LOG_TO_STDERR,
	NVEMUD_LOG_TO_JOURNAL,
};

struct nvemud_logger {
	enum nvemud_log_target target;
	int jfd;		 /* datagram socket to the journal */
	char jpath[108];
	struct nvemud_ratelimit rl;
	uint64_t journal_errors; /* entries the journal refused: written to stderr instead */
};

struct nvemud;
/*
 * spec: "auto" (the journal when stderr is the journal's stream, by
 * $JOURNAL_STREAM), "stderr", "journal" or "journal:/PATH" (another socket
 * speaking the native protocol). 0, or -1 with msg set.
 */
int nvemud_log_open(struct nvemud_logger *l, const char *spec, char *msg, size_t msg_size);
void nvemud_log_close(struct nvemud_logger *l);

void nvemud_vlog_fields(struct nvemud *d, int level, const struct nvemud_log_field *f,
			unsigned nf, const char *fmt, va_list ap);
void nvemud_log_fields(struct nvemud *d, int level, const struct nvemud_log_field *f,
		       unsigned nf, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/*
 * A message a peer can cause (protocol errors, refused connections, bad
 * requests): at most a burst per site and peer, then one a second, with a
 * "suppressed N messages" line when it speaks again. site: a constant
 * string for the message kind (e.g. its format); peer may be NULL.
 */
void nvemud_log_peer(struct nvemud *d, int level, const void *site, const char *peer,
		     const struct nvemud_log_field *f, unsigned nf, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
void nvemud_vlog_peer(struct nvemud *d, int level, const void *site, const char *peer,
		      const struct nvemud_log_field *f, unsigned nf, const char *fmt, va_list ap);

#endif

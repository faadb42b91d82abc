// SPDX-License-Identifier: MIT
/*
 * log.c: the rate limiter (burst, refill, suppressed counts, one peer does
 * not starve another, the global bound), the journal's native protocol
 * (fields, binary values, invalid keys, overflow) and the journal sink on a
 * socket of the test's, rate limited through nvemud_log_peer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon.h"
#include "log.h"

#define SEC 1000000000ull

static void test_burst_then_one_per_interval(void **state)
{
	struct nvemud_ratelimit rl;
	uint32_t sup;
	unsigned passed = 0;

	(void)state;
	nvemud_ratelimit_init(&rl, 5, SEC);
	for (int i = 0; i < 100; i++)
		passed += nvemud_ratelimit_ok(&rl, 42, 10 * SEC, &sup);
	assert_int_equal(passed, 5);
	/* Half an interval later: still nothing. */
	assert_false(nvemud_ratelimit_ok(&rl, 42, 10 * SEC + SEC / 2, &sup));
	/* One interval later: one, reporting what was dropped in between. */
	assert_true(nvemud_ratelimit_ok(&rl, 42, 11 * SEC, &sup));
	assert_int_equal(sup, 96);
	assert_false(nvemud_ratelimit_ok(&rl, 42, 11 * SEC, &sup));
	/* After a long quiet spell the whole burst is back. */
	passed = 0;
	for (int i = 0; i < 10; i++)
		passed += nvemud_ratelimit_ok(&rl, 42, 100 * SEC, &sup);
	assert_int_equal(passed, 5);
}

static void test_peers_are_separate(void **state)
{
	struct nvemud_ratelimit rl;
	uint64_t a = nvemud_log_key("site", "10.0.0.1"), b = nvemud_log_key("site", "10.0.0.2");
	uint64_t c = nvemud_log_key("other site", "10.0.0.1");
	uint32_t sup;

	(void)state;
	assert_true(a != b && a != c);
	nvemud_ratelimit_init(&rl, 3, SEC);
	for (int i = 0; i < 50; i++)
		nvemud_ratelimit_ok(&rl, a, SEC, &sup);
	/* A noisy peer costs a quiet one nothing (different slots, global bound not reached). */
	assert_true(nvemud_ratelimit_ok(&rl, b, SEC, &sup));
	assert_int_equal(sup, 0);
	assert_true(nvemud_ratelimit_ok(&rl, c, SEC, &sup));
}

static void test_global_bound(void **state)
{
	struct nvemud_ratelimit rl;
	unsigned passed = 0;
	uint32_t sup;

	(void)state;
	nvemud_ratelimit_init(&rl, 2, SEC);
	/* Many peers at once (a flood of addresses): at most 8 bursts pass in all. */
	for (unsigned i = 0; i < 1000; i++) {
		char peer[32];

		snprintf(peer, sizeof(peer), "10.0.%u.%u", i / 256, i % 256);
		passed += nvemud_ratelimit_ok(&rl, nvemud_log_key("site", peer), 5 * SEC, &sup);
	}
	assert_true(passed <= 16);
	assert_true(passed >= 2);
}

/* KEY=value lines, the binary form for a value with a newline. */
static void test_journal_format(void **state)
{
	char buf[512];
	const struct nvemud_log_field f[] = {
		{ NVEMUD_F_HOSTNQN, "nqn.2014-08.org.nvmexpress:uuid:x" },
		{ NVEMUD_F_QID, NULL },
		{ NVEMUD_F_PEER, "a\nb" },
	};
	size_t n = nvemud_journal_format(buf, sizeof(buf), NVEMUD_LOG_WARN, "hello", f, 3);
	const char want[] = "PRIORITY=4\nSYSLOG_IDENTIFIER=nvemud\nMESSAGE=hello\n"
			    "NVEMU_HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:x\n"
			    "NVEMU_PEER\n\x03\0\0\0\0\0\0\0a\nb\n";

	(void)state;
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, n);
	/* Does not fit: nothing, rather than a cut entry. */
	assert_int_equal(nvemud_journal_format(buf, 40, NVEMUD_LOG_WARN, "hello", f, 3), 0);
	/* Keys the journal would refuse are refused here. */
	assert_false(nvemud_log_key_valid("nvemu_ctrl"));
	assert_false(nvemud_log_key_valid("_PID"));
	assert_false(nvemud_log_key_valid("1ABC"));
	assert_false(nvemud_log_key_valid(""));
	assert_true(nvemud_log_key_valid("NVEMU_CTRL"));
	{
		const struct nvemud_log_field bad[] = { { "BAD KEY", "x" } };

		assert_int_equal(nvemud_journal_format(buf, sizeof(buf), 0, "m", bad, 1), 0);
	}
	/* Priorities: error 3, info 6, trace 7. */
	n = nvemud_journal_format(buf, sizeof(buf), NVEMUD_LOG_ERR, "m", NULL, 0);
	assert_true(n > 0 && !strncmp(buf, "PRIORITY=3\n", 11));
	n = nvemud_journal_format(buf, sizeof(buf), NVEMUD_LOG_TRACE, "m", NULL, 0);
	assert_true(n > 0 && !strncmp(buf, "PRIORITY=7\n", 11));
}

static void test_log_open_specs(void **state)
{
	struct nvemud_logger l;
	char msg[160];

	(void)state;
	assert_int_equal(nvemud_log_open(&l, "stderr", msg, sizeof(msg)), 0);
	assert_int_equal(l.target, NVEMUD_LOG_TO_STDERR);
	unsetenv("JOURNAL_STREAM");
	assert_int_equal(nvemud_log_open(&l, "auto", msg, sizeof(msg)), 0);
	assert_int_equal(l.target, NVEMUD_LOG_TO_STDERR);
	setenv("JOURNAL_STREAM", "1:1", 1); /* not our stderr */
	assert_int_equal(nvemud_log_open(&l, NULL, msg, sizeof(msg)), 0);
	assert_int_equal(l.target, NVEMUD_LOG_TO_STDERR);
	assert_int_equal(nvemud_log_open(&l, "syslog", msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "--log-target"));
	assert_int_equal(nvemud_log_open(&l, "journal:relative", msg, sizeof(msg)), -1);
	assert_int_equal(nvemud_log_open(&l, "journal:/x", msg, sizeof(msg)), 0);
	assert_int_equal(l.target, NVEMUD_LOG_TO_JOURNAL);
	nvemud_log_close(&l);
}

/* The sink end to end: a daemon logging to a socket of ours, a peer-caused flood limited. */
static void test_journal_sink(void **state)
{
	char dir[] = "/tmp/nvemu-log.XXXXXX", path[64], spec[160], msg[160], buf[4096];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct nvemud *d;
	unsigned got = 0, flood = 0;
	int s;
	ssize_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/journal", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	d = nvemud_new(NULL, NVEMUD_LOG_INFO);
	assert_non_null(d);
	snprintf(spec, sizeof(spec), "journal:%s", path);
	assert_int_equal(nvemud_log_open(&d->logger, spec, msg, sizeof(msg)), 0);

	{
		const struct nvemud_log_field f[] = { { NVEMUD_F_CTRL, "NVMeCtrl1" },
						      { NVEMUD_F_QID, "3" } };

		nvemud_log_fields(d, NVEMUD_LOG_INFO, f, 2, "queue %d\n(forged line)", 3);
	}
	for (int i = 0; i < 50; i++)
		nvemud_log_peer(d, NVEMUD_LOG_WARN, "flood", "10.1.1.1", NULL, 0, "bad PDU %d", i);
	nvemud_log(d, NVEMUD_LOG_DEBUG, "below the level: not sent");
	while ((n = recv(s, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = 0;
		if (got++ == 0) {
			/* The message's control characters are escaped: one line per entry. */
			assert_non_null(strstr(buf, "MESSAGE=queue 3\\x0a(forged line)\n"));
			assert_non_null(strstr(buf, "NVEMU_CTRL=NVMeCtrl1\n"));
			assert_non_null(strstr(buf, "NVEMU_QID=3\n"));
			assert_non_null(strstr(buf, "PRIORITY=6\n"));
		} else {
			assert_non_null(strstr(buf, "MESSAGE=bad PDU"));
			flood++;
		}
	}
	assert_int_equal(flood, 10); /* the daemon's burst */
	nvemud_free(d);
	close(s);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_one_per_interval),
		cmocka_unit_test(test_peers_are_separate),
		cmocka_unit_test(test_global_bound),
		cmocka_unit_test(test_journal_format),
		cmocka_unit_test(test_log_open_specs),
		cmocka_unit_test(test_journal_sink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

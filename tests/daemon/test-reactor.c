// SPDX-License-Identifier: MIT
/* Reactors: --cpus parsing, reactor IDs and queue placement on the loops. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon.h"
#include "event-loop.h"
#include "reactor.h"

static void test_parse_cpus(void **state)
{
	struct nvemud_reactor_params p = {0};
	struct nvemu_error err = {0};
	long n = sysconf(_SC_NPROCESSORS_CONF);
	char big[32];

	(void)state;
	assert_int_equal(nvemud_reactor_parse_cpus("0", &p, &err), 0);
	assert_int_equal(p.nr, 1);
	assert_int_equal(p.nr_cpus, 1);
	assert_int_equal(p.cpus[0], 0);
	if (n >= 2) {
		assert_int_equal(nvemud_reactor_parse_cpus("1,0", &p, &err), 0);
		assert_int_equal(p.nr, 2);
		assert_int_equal(p.cpus[0], 1);
		assert_int_equal(p.cpus[1], 0);
		assert_int_equal(nvemud_reactor_parse_cpus("0-1", &p, &err), 0);
		assert_int_equal(p.nr_cpus, 2);
	}
	snprintf(big, sizeof(big), "%ld", n);
	const char *bad[] = {"",
			     ",",
			     "0,",
			     "a",
			     "-1",
			     "1-0",
			     "0,0",
			     "0-0,0",
			     "0;1",
			     big,
			     "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(nvemud_reactor_parse_cpus(bad[i], &p, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "--cpus"));
	}
}

/* Queues go to the reactor with the fewest; put gives the place back. */
static void test_pick_least_loaded(void **state)
{
	struct loop *main_loop = loop_new();
	struct nvemud *d = nvemud_new(main_loop, NVEMUD_LOG_ERR);
	struct nvemud_reactor_params p = {.nr = 3};
	struct loop *a, *b, *c, *e;

	(void)state;
	assert_non_null(d);
	assert_int_equal(nvemud_nr_reactors(d), 1);
	assert_ptr_equal(nvemud_reactor_pick(d), main_loop); /* no reactors: the main loop */
	assert_int_equal(nvemud_reactors_start(d, &p), 0);
	assert_int_equal(nvemud_nr_reactors(d), 3);
	a = nvemud_reactor_pick(d);
	b = nvemud_reactor_pick(d);
	c = nvemud_reactor_pick(d);
	assert_ptr_equal(a, main_loop);
	assert_int_equal(nvemud_reactor_id(a), 0);
	assert_int_equal(nvemud_reactor_id(b), 1);
	assert_int_equal(nvemud_reactor_id(c), 2);
	assert_ptr_equal(nvemud_reactor_owner(b), d);
	nvemud_reactor_put(b);
	e = nvemud_reactor_pick(d);
	assert_ptr_equal(e, b); /* the one with a free place */
	e = nvemud_reactor_pick(d);
	assert_int_equal(nvemud_reactor_id(e), 0); /* all at 1 again: the lowest */
	nvemud_reactors_stop(d);
	nvemud_free(d); /* frees the reactors too */
	loop_free(main_loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_cpus),
		cmocka_unit_test(test_pick_least_loaded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

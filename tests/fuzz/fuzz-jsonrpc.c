// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for nvemud's JSON-RPC request path.
 *
 * An input that starts with '{' or '[' is a request as text, run on the
 * default configuration (the seed files in corpus/fuzz-jsonrpc/ are such
 * requests). Otherwise the first input byte picks a mode (bit 1: start from
 * the default configuration):
 *   even: the rest is a request as text, parsed and run like the socket
 *         server does (parse errors answered -32700);
 *   odd:  the rest is a program: a sequence of method calls whose parameters
 *         are drawn, by the method's own parameter table, from small
 *         vocabularies (known NQNs, bdev names, controller names, NSIDs at
 *         the edges), so the fuzzer reaches deep state (attached namespaces,
 *         suspended controllers, snapshots) instead of bouncing off checks.
 * After every call the response must be a well-formed JSON-RPC response; at
 * the end save_config must restore into a fresh daemon identically.
 *
 * Built with -fsanitize=fuzzer when meson -Dfuzz=true (clang); built with
 * -DFUZZ_STANDALONE it is a plain program that replays the files given on
 * the command line as they are (the same inputs libFuzzer runs) and then
 * runs random programs (for CI without libFuzzer).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>

#include <jansson.h>

#include "daemon.h"
#include "rpc.h"

#define MAX_CALLS 48

static char tmpdir[64];

static void die(const char *what, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	fprintf(stderr, "fuzz-jsonrpc: %s%s%s\n", what, s ? ": " : "", s ? s : "");
	free(s);
	abort();
}

/* A response must carry the id, and exactly one of result or error{code,message}. */
static void check_response(json_t *req, json_t *resp)
{
	json_t *err, *id;

	if (!resp) {
		/* Only a valid notification (an object without "id") may go unanswered. */
		if (!json_is_object(req) || json_object_get(req, "id"))
			die("no response to a request with an id", req);
		return;
	}
	if (!json_is_object(resp) || strcmp(json_string_value(json_object_get(resp, "jsonrpc")) ?: "",
					    "2.0"))
		die("response is not a JSON-RPC 2.0 object", resp);
	err = json_object_get(resp, "error");
	if (!!err == !!json_object_get(resp, "result"))
		die("response must have exactly one of result and error", resp);
	if (err && (!json_is_integer(json_object_get(err, "code")) ||
		    !json_is_string(json_object_get(err, "message"))))
		die("error without an integer code and a message", resp);
	id = json_object_get(resp, "id");
	if (!id)
		die("response without id", resp);
	if (!err && !json_equal(id, json_object_get(req, "id")))
		die("result with another id", resp);
}

/* ---- byte reader */

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint8_t byte(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static uint32_t u32(struct rd *r)
{
	return byte(r) | byte(r) << 8 | byte(r) << 16 | (uint32_t)byte(r) << 24;
}

static const char *const nqns[] = {
	"nqn.2014-08.io.nvemu:default", "nqn.2022-10.io.nvda.nvme:0", "nqn.2022-10.io.nvda.nvme:1",
};
static const char *const bdevs[] = { "Malloc0", "Malloc1", "Null0", "File0" };
static const char *const ctrls[] = { "NVMeCtrl1", "NVMeCtrl2", "NVMeCtrl3", "NVMeCtrl9" };
static const char *const words[] = {
	"", "x", "pcie", "two_wire", "tcp", "127.0.0.1", "4420", "ipv4", "SN0123456789",
	"123456789012345678901", "263826ad-19a3-4feb-bc25-4bc81ee7749e",
	"00000000-0000-0000-0000-000000000000", "0123456789abcdef0123456789abcdef",
	"0123456789abcdef",
};
static const uint64_t ints[] = {
	0, 1, 2, 3, 4, 7, 8, 31, 32, 64, 127, 255, 256, 512, 1024, 4096, 65535, 65536,
	0xfffffffe, 0xffffffff, 1ull << 31, 1ull << 40,
};

#define PICK(r, a) (a[byte(r) % (sizeof(a) / sizeof(a[0]))])

static json_t *filename(struct rd *r)
{
	char path[128];

	switch (byte(r) % 4) {
	case 0:
		snprintf(path, sizeof(path), "%s/snap%u.json", tmpdir, byte(r) % 3);
		break;
	case 1:
		snprintf(path, sizeof(path), "%s/disk.img", tmpdir);
		break;
	case 2:
		snprintf(path, sizeof(path), "%s/no/such/dir/f", tmpdir);
		break;
	default:
		snprintf(path, sizeof(path), "%s/cfg.json", tmpdir);
		break;
	}
	return json_string(path);
}

/* A value for param p: mostly well-typed and plausible, sometimes not. */
static json_t *gen_value(struct rd *r, const struct rpc_param *p)
{
	uint8_t sel = byte(r);

	if (sel % 16 == 15) {
		/* Wrong type on purpose. */
		switch (byte(r) % 5) {
		case 0:
			return json_null();
		case 1:
			return json_string("12");
		case 2:
			return json_integer(-(json_int_t)byte(r));
		case 3:
			return json_real(1.5);
		default:
			return json_pack("[i]", 1);
		}
	}
	switch (p->type) {
	case RPC_P_STR:
		if (!strcmp(p->name, "nqn"))
			return json_string(PICK(r, nqns));
		if (!strcmp(p->name, "name") || !strcmp(p->name, "bdev_name"))
			return json_string(PICK(r, bdevs));
		if (!strcmp(p->name, "ctrl"))
			return json_string(PICK(r, ctrls));
		if (!strcmp(p->name, "filename") || !strcmp(p->name, "snapshot"))
			return filename(r);
		/* vfio-user sockets: only in the private dir (or a file that is not one). */
		if (!strcmp(p->name, "socket")) {
			char sp[160];

			snprintf(sp, sizeof(sp), "%s/vfu.sock", tmpdir);
			return sel & 4 ? filename(r) : json_string(sel & 8 ? "vfu.sock" : sp);
		}

		/* TCP listeners: free ports only, never a fixed one another process may hold. */
		if (!strcmp(p->name, "trsvcid"))
			return json_string(sel & 4 ? "0" : sel & 8 ? "x" : "65536");
		return json_string(PICK(r, words));
	case RPC_P_UINT:
		if (sel & 1)
			return json_integer((json_int_t)(p->min + byte(r) % 4));
		if (sel & 2)
			return json_integer((json_int_t)PICK(r, ints));
		return json_integer((json_int_t)u32(r));
	case RPC_P_BOOL:
		return sel & 2 ? json_integer(sel & 1) : json_boolean(sel & 1);
	case RPC_P_UUID:
		return json_string(PICK(r, words));
	case RPC_P_OBJ:
		return json_object();
	}
	return json_null();
}

/* FUZZ_JSONRPC_TRACE=1: print each request and response (to read a crash input). */
static void trace(const char *dir, json_t *j)
{
	static int on = -1;
	char *s;

	if (on < 0)
		on = getenv("FUZZ_JSONRPC_TRACE") && !strcmp(getenv("FUZZ_JSONRPC_TRACE"), "1");
	if (!on || !j)
		return;
	s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	fprintf(stderr, "%s %s\n", dir, s ? s : "?");
	free(s);
}

static json_t *call(struct nvemud *d, json_t *req)
{
	json_t *resp;

	trace("->", req);
	resp = nvemud_rpc_call(d, req);
	trace("<-", resp);

	check_response(req, resp);
	/* Let backend completions run, as the event loop would between requests. */
	nvemud_poll_backends(d);
	return resp;
}

static json_t *methods;

static void run_program(struct nvemud *d, struct rd *r)
{
	size_t nm = json_array_size(methods);

	for (int i = 0; i < MAX_CALLS && r->n; i++) {
		const char *name = json_string_value(json_array_get(methods, byte(r) % nm));
		const struct rpc_method *m = rpc_find_method(name);
		json_t *params = json_object(), *req, *resp;

		if (!m)
			die("rpc_get_methods lists a method rpc_find_method does not know", NULL);
		/* load_config applies files the program did not write; keep to our dir. */
		for (const struct rpc_param *p = m->params; p->name; p++) {
			uint8_t b = byte(r);

			/* Required params mostly present, optional ones half the time. */
			if (p->required ? (b % 8 != 0) : (b & 1))
				json_object_set_new(params, p->name, gen_value(r, p));
		}
		if (byte(r) % 32 == 0)
			json_object_set_new(params, "no_such_param", json_true());
		req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", i, "method", name,
				"params", params);
		resp = call(d, req);
		json_decref(req);
		json_decref(resp);
	}
}

/* save_config must restore into a fresh daemon and save back identically. */
static void check_roundtrip(struct nvemud *d)
{
	json_t *cfg = nvemud_save_config(d), *cfg2;
	struct nvemud *d2 = nvemud_new(NULL, NVEMUD_LOG_ERR);
	struct rpc_err e = { 0 };

	/* d2 binds the same listener ports and vfio-user sockets: d is not used after this. */
	nvemud_tcp_stop(d);
	for (unsigned i = 0; i < d->nr_ctrls; i++)
		nvemud_vfu_stop(d, &d->ctrls[i]);

	if (!d2)
		die("nvemud_new failed", NULL);
	if (nvemud_load_config(d2, cfg, &e)) {
		fprintf(stderr, "load_config: %d %s\n", e.code, e.msg);
		die("a saved configuration does not load", cfg);
	}
	cfg2 = nvemud_save_config(d2);
	if (!json_equal(cfg, cfg2)) {
		char *a = json_dumps(cfg, JSON_COMPACT), *b = json_dumps(cfg2, JSON_COMPACT);

		fprintf(stderr, "saved:    %s\nrestored: %s\n", a, b);
		die("save_config differs after a restore", NULL);
	}
	json_decref(cfg);
	json_decref(cfg2);
	nvemud_free(d2);
}

/* Removes everything the daemon left in the private directory. */
static void clear_tmpdir(void)
{
	DIR *dir = opendir(tmpdir);
	struct dirent *de;
	char path[sizeof(tmpdir) + 260];

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
		unlink(path);
	}
	closedir(dir);
}

static void cleanup(void)
{
	clear_tmpdir();
	rmdir(tmpdir);
}

/*
 * Every input starts from the same files (a 1 MiB disk.img and nothing else),
 * so that a crash input reproduces on its own, not only after the inputs
 * that left files behind.
 */
static void reset_tmpdir(void)
{
	char path[128];
	FILE *f;

	clear_tmpdir();
	snprintf(path, sizeof(path), "%s/disk.img", tmpdir);
	f = fopen(path, "w");
	if (f) {
		if (ftruncate(fileno(f), 1 << 20))
			abort();
		fclose(f);
	}
}

static void init(void)
{
	struct nvemud *d;
	struct rpc_err e = { 0 };

	if (methods)
		return;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nvemu-fuzz.%d", (int)getpid());
	mkdir(tmpdir, 0700);
	/* Relative paths the daemon writes (save_config --filename 12) land here. */
	if (chdir(tmpdir))
		abort();
	atexit(cleanup);
	d = nvemud_new(NULL, NVEMUD_LOG_ERR);
	if (!d || nvemud_rpc_invoke(d, "rpc_get_methods", NULL, &methods, &e) ||
	    !json_array_size(methods))
		die("rpc_get_methods failed", NULL);
	nvemud_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd r = { data, size };
	struct nvemud *d;
	struct nvemu_error nerr = { 0 };
	bool text;

	init();
	if (!size)
		return 0;
	reset_tmpdir();
	text = data[0] == '{' || data[0] == '[';
	d = nvemud_new(NULL, NVEMUD_LOG_ERR);
	if (!d)
		die("nvemud_new failed", NULL);
	/* Start from the default configuration as a bare nvemud would. */
	if (text || byte(&r) & 2)
		nvemud_load_default(d, &nerr);
	if (text || !(data[0] & 1)) {
		json_error_t jerr;
		json_t *req;

		if (r.n > RPC_MAX_REQUEST)
			goto out;
		req = json_loadb((const char *)r.p, r.n, JSON_DECODE_ANY, &jerr);
		if (!req) {
			json_t *resp = rpc_error_response(NULL, RPC_ERR_PARSE, jerr.text);

			check_response(json_null(), resp);
			json_decref(resp);
		} else {
			json_decref(call(d, req));
			json_decref(req);
		}
	} else {
		run_program(d, &r);
	}
	check_roundtrip(d);
out:
	nvemud_drain(d, 1000);
	nvemud_free(d);
	return 0;
}

#ifdef FUZZ_STANDALONE
#include "standalone.h"

/* Random programs: random text rarely parses, so the first byte picks program mode. */
size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds)
{
	size_t n = 1 + fuzz_rand(rng) % (cap < 512 ? cap : 512);

	(void)i;
	(void)seeds;
	for (size_t k = 0; k < n; k++)
		buf[k] = (uint8_t)fuzz_rand(rng);
	buf[0] |= 1;
	if (buf[0] == '{' || buf[0] == '[')
		buf[0] ^= 2;
	return n;
}
#endif

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the NVMe/TCP PDU parser and connection state machine
 * (ICReq, Connect, Property Get/Set, R2T/H2CData, digests, TermReq, the
 * discovery controller, commands into the engine) without sockets: bytes
 * go straight into tcp_conn_rx() of connections created with fd -1, whose
 * transmitted PDUs are dropped.
 *
 * Build (tests/fuzz/meson.build, CC=clang, -Dfuzz=true
 * -Db_sanitize=address,undefined -Db_lundef=false):
 *
 *   exe = executable('fuzz-tcp-pdu', 'fuzz-tcp-pdu.c',
 *                    dependencies: nvemu_tcp_dep,
 *                    c_args: ['-fsanitize=fuzzer'], link_args: ['-fsanitize=fuzzer'])
 *   test('fuzz-tcp-pdu', exe, args: ['-max_total_time=20', '-timeout=10'])
 *
 * By hand, from the top of the tree:
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc -I<builddir> \
 *         tests/fuzz/fuzz-tcp-pdu.c src/transport/tcp/[a-z]*.c src/engine/[a-z]*.c \
 *         src/bdev/[a-z]*.c src/transport/loop.c src/driver/[a-z]*.c src/util/[a-z]*.c \
 *         -lnvme -luring -luuid -lisal -ljansson -lblkid -o fuzz-tcp-pdu
 *   ./fuzz-tcp-pdu -max_total_time=60 -timeout=10
 *
 * Input: records of  u8 selector | le16 length | bytes. Selector bit 0
 * picks one of two connections (so an I/O queue can Connect to the
 * controller the other one created: controller IDs restart at 1 for each
 * input); bit 1 closes that connection first and opens a fresh one. At
 * the end of the input both connections close, and the model must be back
 * where it started (no controller, no connection left). Bit 2 feeds the
 * record as the socket path does: PDU data is received in place into the
 * command's buffer (tcp_conn_rx_dst), the rest in short pieces.
 *
 * With -DFUZZ_STANDALONE it is a plain program that replays the files named
 * on the command line, then FUZZ_ITERATIONS mutations of them, so the test
 * suite runs it without libFuzzer (fuzz-tcp-pdu-smoke).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/tcp/tcp-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define SUBNQN "nqn.2024-01.io.nvemu:fuzz"

static struct nvemu_subsys *subsys;
static struct nvemu_tcp_target *tgt;

static void quiet(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nvemu_subsys_params sp;
	struct nvemu_tcp_target_params tp;
	struct nvemu_port_params pp;
	struct tcp_subsys *ts;
	struct tcp_listener *l;
	uint16_t port_id;
	uint32_t nsid;

	(void)argc;
	(void)argv;
	nvemu_subsys_params_init(&sp);
	sp.nqn = SUBNQN;
	sp.serial = "FUZZ";
	if (nvemu_subsys_create(&sp, &subsys, NULL) || nvemu_subsys_add_ns(subsys, 256, &nsid, NULL))
		abort();
	nvemu_tcp_target_params_init(&tp);
	tp.log = quiet;
	tp.num_io_queues = 2;
	tp.maxh2cdata = 4096;
	if (nvemu_tcp_target_create(&tp, &tgt, NULL) || nvemu_tcp_add_subsys(tgt, subsys, NULL))
		abort();
	/* A listener without a socket: connections with lst NULL reach it. */
	nvemu_port_params_init(&pp, NVEMU_PORT_TCP);
	if (nvemu_subsys_add_port(subsys, &pp, &port_id, NULL))
		abort();
	l = calloc(1, sizeof(*l));
	ts = tcp_find_subsys(tgt, subsys);
	ts->ls = calloc(1, sizeof(*ts->ls));
	if (!l || !ts->ls)
		abort();
	l->fd = -1;
	l->refs = 1;
	l->t = tgt;
	strcpy(l->traddr, "127.0.0.1");
	strcpy(l->trsvcid, "4420");
	l->adrfam = NVMF_ADDR_FAMILY_IP4;
	ts->ls[0] = (struct tcp_sub_listener){ .l = l, .port_id = port_id };
	ts->nr_ls = 1;
	return 0;
}

/* As tcp_conn_event does: data in place, headers and digests copied. */
static void feed_direct(struct tcp_conn *c, const uint8_t *d, size_t len)
{
	while (len) {
		uint8_t *dst;
		size_t n = tcp_conn_rx_dst(c, &dst);

		if (n) {
			n = n < len ? n : len;
			memcpy(dst, d, n);
			tcp_conn_rx(c, dst, n);
		} else {
			n = len < 8 ? len : 8;
			tcp_conn_rx(c, d, n);
		}
		d += n;
		len -= n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tcp_conn *c[2];

	c[0] = tcp_conn_new(tgt, NULL, -1);
	c[1] = tcp_conn_new(tgt, NULL, -1);
	if (!c[0] || !c[1])
		abort();
	while (size >= 3) {
		uint8_t sel = data[0];
		size_t len = data[1] | (size_t)data[2] << 8;
		unsigned i = sel & 1;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (sel & 2) {
			tcp_conn_close(c[i], NULL);
			c[i] = tcp_conn_new(tgt, NULL, -1);
			if (!c[i])
				abort();
		}
		if (sel & 4)
			feed_direct(c[i], data, len);
		else
			tcp_conn_rx(c[i], data, len);
		nvemu_subsys_poll(subsys);
		nvemu_tcp_target_tick(tgt);
		data += len;
		size -= len;
	}
	tcp_conn_close(c[0], NULL);
	tcp_conn_close(c[1], NULL);
	nvemu_subsys_poll(subsys);
	tcp_assoc_gc(tgt);
	/* Everything an input created must be gone again. */
	if (!LIST_EMPTY(&tgt->conns) || !LIST_EMPTY(&tgt->assocs) || subsys->nr_ctrls)
		__builtin_trap();
	return 0;
}

#ifdef FUZZ_STANDALONE
#include "standalone.h"

/* Each seed again with a few bits changed, and every other time the selectors' bit 2 flipped. */
size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds)
{
	unsigned k, flips;
	size_t len;

	if (!seeds->nr)
		return 0;
	k = (unsigned)(fuzz_rand(rng) % seeds->nr);
	flips = 1 + (unsigned)(fuzz_rand(rng) % 4);
	len = seeds->len[k] < cap ? seeds->len[k] : cap;
	memcpy(buf, seeds->data[k], len);
	if (i & 1)
		for (size_t p = 0; p + 3 <= len;) {
			size_t l = buf[p + 1] | (size_t)buf[p + 2] << 8;

			buf[p] ^= 4;
			p += 3 + l;
		}
	for (unsigned f = 0; len && f < flips; f++)
		buf[fuzz_rand(rng) % len] ^= (uint8_t)(1u << (fuzz_rand(rng) % 8));
	return len;
}
#endif

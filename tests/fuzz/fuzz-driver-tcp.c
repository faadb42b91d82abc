/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the NVMe/TCP host's receive path (src/driver/tcp-rx.c)
 * and the completion path of the driver core, fed what a hostile target
 * could send. A queue without a socket has four commands in flight (reads
 * of 8 KiB and 512 bytes, an 8 KiB write answered through R2T, a command
 * without data); the input is fed to ht_rx_feed in two pieces. Then the
 * queue is reset as the core would (every command still in flight fails)
 * and each command must have completed exactly once, and no byte outside
 * the read buffers may have changed.
 *
 * Input: u8 flags (bit 0 header digest, bit 1 data digest, bits 2-3 CPDA),
 * u8 split point (percent of the rest), then the bytes from the target.
 *
 * With -DFUZZ_STANDALONE it is a plain program that replays the files
 * named on the command line and then random inputs (FUZZ_ITERATIONS), so
 * the test suite runs it without libFuzzer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/tcp-pdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUARD 64

struct cmd {
	uint8_t opc;
	uint32_t len;
	int done;
	uint8_t *buf; /* len + GUARD bytes */
};

static void quiet(void *arg, int level, const char *msg)
{
}

static void cb(void *arg, int err, const struct nvemu_cqe *cqe)
{
	((struct cmd *)arg)->done++;
}

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-driver-tcp: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmd cmds[4] = {{.opc = 0x02, .len = 8192},
			      {.opc = 0x01, .len = 8192},
			      {.opc = 0x00, .len = 0},
			      {.opc = 0x02, .len = 512}};
	struct nvemu_drv_ctrl ctrl = {0};
	struct nvemu_drv_qpair *qp;
	struct tcp_hq *hq;
	size_t split;

	if (size < 2)
		return 0;
	nvemu_drv_opts_init(&ctrl.opts);
	ctrl.opts.log = quiet;
	ctrl.ops = &drv_tcp_ops;
	ctrl.state = NVEMU_DRV_STATE_ENABLED;
	qp = drv_qpair_alloc(&ctrl, 1, 8);
	hq = qp ? ht_hq_new(qp) : NULL;
	check(hq != NULL, "out of memory");
	qp->tr = hq;
	qp->connected = true;
	hq->ic_done = true;
	hq->hdgst = data[0] & 1;
	hq->ddgst = data[0] & 2;
	hq->cpda = (data[0] >> 2) & 3;
	hq->maxh2cdata = 4096;
	for (unsigned i = 0; i < 4; i++) {
		struct drv_req *req = drv_req_get(qp);

		cmds[i].buf = malloc(cmds[i].len + GUARD);
		check(req && cmds[i].buf, "out of memory");
		memset(cmds[i].buf, 0x5a, cmds[i].len + GUARD);
		memset(&req->cmd, 0, sizeof(req->cmd));
		req->cmd.opc = cmds[i].opc;
		req->buf = cmds[i].len ? cmds[i].buf : NULL;
		req->len = cmds[i].len;
		req->cb = cb;
		req->arg = &cmds[i];
		check(drv_req_send(req) == 0, "submit failed");
	}
	hq->tx_len = hq->tx_off = 0;
	data += 2;
	size -= 2;
	split = size * (data[-1] % 101) / 100;
	if (ht_rx_feed(hq, data, split) == 0)
		ht_rx_feed(hq, data + split, size - split);
	/* H2CData only ever for the write, never more than it holds */
	check(hq->tx_len <= 2 * (24 + 4 + 128 + 4096 + 4) + 64, "more H2CData than the write");
	drv_qpair_fail_all(qp, -ECONNRESET);
	check(qp->inflight == 0, "commands left in flight");
	for (unsigned i = 0; i < 4; i++) {
		check(cmds[i].done == 1, "a command completed other than once");
		for (unsigned g = 0; g < GUARD; g++)
			check(cmds[i].buf[cmds[i].len + g] == 0x5a, "write past a buffer");
		if (cmds[i].opc != 0x02)
			for (unsigned b = 0; b < cmds[i].len; b++)
				check(cmds[i].buf[b] == 0x5a, "a write buffer was changed");
		free(cmds[i].buf);
	}
	ht_hq_free(hq);
	drv_qpair_free(qp);
	return 0;
}

#ifdef FUZZ_STANDALONE
#include "standalone.h"

/* Random inputs made of mostly well-formed PDUs, so the deeper paths run too. */
static size_t random_input(uint8_t *b, size_t cap, uint64_t *s)
{
	size_t n = 2;

	b[0] = (uint8_t)(*s & 0xf);
	b[1] = (uint8_t)(*s >> 8);
	while (n + 64 < cap) {
		uint8_t type = (uint8_t[]){0x05, 0x07, 0x09, 0x03, 0x01, 0x0c}[(*s >> 3) % 6];
		uint32_t plen = 24 + (uint32_t)((*s >> 11) % 40);

		*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
		memset(b + n, 0, 24);
		b[n] = type;
		b[n + 1] = (uint8_t)(*s & 0xf);
		b[n + 2] = 24;
		b[n + 3] = (uint8_t)((*s >> 4) & 0x3f);
		memcpy(b + n + 4, &plen, 4);
		b[n + 8] = (uint8_t)((*s >> 20) & 3);
		b[n + 12] = (uint8_t)((*s >> 24) & 0x10);
		b[n + 16] = (uint8_t)(*s >> 30);
		n += plen < cap - n ? plen : cap - n;
		if ((*s >> 40) % 7 == 0)
			break;
	}
	return n;
}

size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds)
{
	(void)i;
	(void)seeds;
	return random_input(buf, cap < 4096 ? cap : 4096, rng);
}
#endif

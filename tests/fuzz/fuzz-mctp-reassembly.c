/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: MCTP packets into an endpoint (header checks, reassembly
 * per source/tag, control messages, fragmentation of the replies).
 *
 * Built by tests/fuzz/meson.build (CC=clang, -Dfuzz=true); by hand:
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
 *         tests/fuzz/fuzz-mctp-reassembly.c src/mgmt/mctp/mctp.c src/mgmt/mctp/mctp-control.c \
 *         src/engine/error.c -luuid -o fuzz-mctp-reassembly
 *   ./fuzz-mctp-reassembly -max_total_time=60
 *
 * Input: records of  u8 len | len bytes  (one packet each). A record of
 * length 0 followed by one byte sets the transmission unit (64 + 16 * b).
 * Handlers: type 0x7e echoes at once, type 0x7d answers with the previous
 * message's reply later (asynchronous), everything else has none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nvemu/mctp.h>

static unsigned int cur_mtu;

static int tx(void *ctx, const uint8_t *pkt, size_t len)
{
	(void)ctx;
	/* Every packet the endpoint sends is well formed and within the unit. */
	if (len < NVEMU_MCTP_HDR_LEN + 1 || len > NVEMU_MCTP_HDR_LEN + cur_mtu || pkt[0] != 1 ||
	    (pkt[3] & NVEMU_MCTP_HDR_TO))
		abort();
	return 0;
}

static struct nvemu_mctp_reply *held;

static void echo(void *ctx, const uint8_t *msg, size_t len, struct nvemu_mctp_reply *reply)
{
	(void)ctx;
	nvemu_mctp_reply_send(reply, msg, len);
}

static void later(void *ctx, const uint8_t *msg, size_t len, struct nvemu_mctp_reply *reply)
{
	(void)ctx;
	if (held)
		nvemu_mctp_reply_send(held, msg, len);
	held = reply;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvemu_mctp_link link = { .tx_packet = tx };
	struct nvemu_mctp_ep_params p;
	struct nvemu_mctp_ep *ep;

	nvemu_mctp_ep_params_init(&p);
	p.eid = 9;
	if (nvemu_mctp_ep_create(&p, &ep, NULL))
		abort();
	cur_mtu = nvemu_mctp_ep_mtu(ep);
	held = NULL;
	nvemu_mctp_ep_set_handler(ep, 0x7e, echo, NULL);
	nvemu_mctp_ep_set_handler(ep, 0x7d, later, NULL);
	while (size) {
		size_t n = data[0];

		data++;
		size--;
		if (!n && size) {
			cur_mtu = 64 + 16 * data[0];
			if (nvemu_mctp_ep_set_mtu(ep, cur_mtu, NULL))
				cur_mtu = nvemu_mctp_ep_mtu(ep);
			data++;
			size--;
			continue;
		}
		if (n > size)
			n = size;
		nvemu_mctp_ep_rx(ep, &link, data, n);
		data += n;
		size -= n;
	}
	if (held)
		nvemu_mctp_reply_drop(held);
	nvemu_mctp_ep_destroy(ep);
	return 0;
}

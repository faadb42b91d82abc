/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the DSP0253 serial decoder on an arbitrary byte stream,
 * fed in uneven chunks; every packet it delivers must re-encode and decode
 * to itself (up to the 125 bytes the encoder takes). The input is also
 * encoded as a packet and must round-trip.
 *
 * Built by tests/fuzz/meson.build (CC=clang, -Dfuzz=true); by hand:
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
 *         tests/fuzz/fuzz-mctp-serial.c src/mgmt/mctp/mctp-serial.c src/mgmt/mctp/mctp.c \
 *         src/mgmt/mctp/mctp-control.c src/engine/error.c -luuid -o fuzz-mctp-serial
 *   ./fuzz-mctp-serial -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nvemu/mctp.h>

struct one {
	int n;
	size_t len;
	uint8_t pkt[255];
};

static void keep(void *ctx, const uint8_t *pkt, size_t len)
{
	struct one *o = ctx;

	o->n++;
	o->len = len;
	memcpy(o->pkt, pkt, len);
}

static void roundtrip(const uint8_t *pkt, size_t len)
{
	uint8_t frame[NVEMU_MCTP_SERIAL_MAX_FRAME];
	struct nvemu_mctp_serial_dec d;
	struct one o = { 0 };
	int n = nvemu_mctp_serial_encode(pkt, len, frame, sizeof(frame));

	if (n < 0)
		abort();
	nvemu_mctp_serial_dec_init(&d);
	nvemu_mctp_serial_dec_feed(&d, frame, n, keep, &o);
	/* Packets shorter than an MCTP header are not delivered. */
	if (len < NVEMU_MCTP_HDR_LEN) {
		if (o.n)
			abort();
		return;
	}
	if (o.n != 1 || o.len != len || memcmp(o.pkt, pkt, len))
		abort();
}

static void check(void *ctx, const uint8_t *pkt, size_t len)
{
	(void)ctx;
	if (len < NVEMU_MCTP_HDR_LEN || len > 255 || len == NVEMU_MCTP_SERIAL_FLAG)
		abort();
	if (len <= NVEMU_MCTP_SERIAL_MAX_ENC)
		roundtrip(pkt, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvemu_mctp_serial_dec d;
	size_t off = 0, chunk = 1;

	nvemu_mctp_serial_dec_init(&d);
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;

		nvemu_mctp_serial_dec_feed(&d, data + off, n, check, NULL);
		off += n;
		chunk = chunk * 3 % 17 + 1;
	}
	if (size && size <= NVEMU_MCTP_SERIAL_MAX_ENC)
		roundtrip(data, size);
	return 0;
}

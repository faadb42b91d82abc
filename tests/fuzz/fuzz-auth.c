/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the DH-HMAC-CHAP controller (engine/auth.c) fed
 * AUTH_Send payloads and AUTH_Receive allocation lengths by a hostile host.
 *
 * Input: records [op][len lo][len hi][len bytes]; op bit 0 clear: AUTH_Send
 * of the bytes, set: AUTH_Receive with allocation length len (no bytes). A
 * received message must fit what was allowed and carry a known identifier.
 * FFDHE is limited to the null group and ffdhe2048 to keep runs fast.
 * Seeds (corpus/fuzz-auth) are transactions a real host starts with.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/auth.h"

static uint8_t out[NVEMU_AUTH_MSG_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvemu_dhchap_key hk = {.hash = 1, .len = 32}, ck = {.hash = 0, .len = 48};
	struct nvemu_auth_params p = {.hostnqn = "nqn.2014-08.org.nvmexpress:uuid:fuzz",
				      .subnqn = "nqn.2014-08.io.nvemu:fuzz",
				      .host_key = &hk,
				      .ctrl_key = &ck,
				      .dhgroups = 0x03};
	struct nvemu_auth *a;

	memset(hk.key, 0x11, sizeof(hk.key));
	memset(ck.key, 0x22, sizeof(ck.key));
	a = nvemu_auth_create(&p);
	if (!a)
		abort();
	for (unsigned steps = 0; size >= 3 && steps < 64; steps++) {
		uint8_t op = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8, got = 0;

		data += 3;
		size -= 3;
		if (op & 1) {
			nvemu_auth_receive(a, out, len, &got);
			if (got > len || got > sizeof(out))
				abort();
			if (got && out[1] != NVEMU_AUTH_MSG_CHALLENGE &&
			    out[1] != NVEMU_AUTH_MSG_SUCCESS1 && out[1] != NVEMU_AUTH_MSG_FAILURE1)
				abort();
			continue;
		}
		if (len > size)
			len = size;
		nvemu_auth_send(a, data, len);
		data += len;
		size -= len;
	}
	nvemu_auth_destroy(a);
	return 0;
}

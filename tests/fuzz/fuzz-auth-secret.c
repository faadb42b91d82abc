/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the secret representations a key file holds (the
 * keyring reads what an operator, or whoever could write the file, put
 * there): DH-HMAC-CHAP "DHHC-1:xx:<base64>:" (engine/auth.c) and TLS PSKs
 * "NVMeTLSkey-1:xx:<base64>:" (transport/tcp/tls.c). What is accepted must
 * have a valid hash and length and derive its transformed / retained key.
 * The same bytes are also parsed as a TLS PSK identity ("NVMe0Rhh <hostnqn>
 * <subnqn>", what a host sends in its ClientHello).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/auth.h"
#include "transport/tcp/tcp-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvemu_dhchap_key k;
	struct nvemu_error err;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (!nvemu_dhchap_key_parse(s, &k, &err)) {
		uint8_t t[NVEMU_DHCHAP_KEY_MAX];
		size_t tl;

		if (k.hash > 3 || (k.len != 32 && k.len != 48 && k.len != 64))
			abort();
		if (nvemu_dhchap_key_transform(&k, "nqn.2014-08.io.nvemu:fuzz", t, &tl) ||
		    tl > sizeof(t))
			abort();
	} else if (!err.msg[0]) {
		abort(); /* a refusal always says why */
	}
	{
		struct tcp_psk psk;
		uint8_t r[TCP_PSK_MAX];

		err.msg[0] = 0;
		if (!tcp_psk_parse(s, &psk, &err)) {
			if ((psk.hash != 1 || psk.len != 32) && (psk.hash != 2 || psk.len != 48))
				abort();
			if (tcp_psk_retained(&psk, "nqn.2014-08.io.nvemu:fuzz", r))
				abort();
		} else if (!err.msg[0]) {
			abort();
		}
	}
	{
		char h[NVEMU_NQN_MAX + 1], sub[NVEMU_NQN_MAX + 1];
		uint8_t hash;

		if (tcp_tls_parse_identity(data, size, &hash, h, sub) &&
		    ((hash != 1 && hash != 2) || !h[0] || !sub[0] || strchr(h, ' ') ||
		     strlen(h) + strlen(sub) + 10 != size))
			abort();
	}
	free(s);
	return 0;
}

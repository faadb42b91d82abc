/* SPDX-License-Identifier: MIT */
/*
 * DH-HMAC-CHAP (engine/auth.c): DHHC-1 secret parsing, the key
 * transformation and response values against vectors computed independently
 * (Python's base64, zlib.crc32, hmac and hashlib), and the controller's
 * transaction state machine driven message by message.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/auth.h"
#include "test-util.h"
#include "transport/tcp/tcp-internal.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:host"
#define SUBNQN	"nqn.2014-08.io.nvemu:sub"
#define INVALID_FIELD (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define SEQ_ERROR     (NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVEMU_DNR)

/* bytes 0..31 with SHA-256 transformation, 0..47 SHA-384, 0..63 none. */
static const char KEY32[] = "DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
static const char KEY48[] =
	"DHHC-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ==:";
static const char KEY64[] = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJyg"
			    "pKissLS4vMDEyMzQ1Njc4OTo7PD0+P4zODhA=:";

static void unhex(const char *h, uint8_t *out)
{
	for (size_t i = 0; h[2 * i]; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

static void key_parse_valid(void **state)
{
	struct nvemu_dhchap_key k;
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_dhchap_key_parse(KEY32, &k, &err), 0);
	assert_int_equal(k.hash, 1);
	assert_int_equal(k.len, 32);
	for (unsigned i = 0; i < 32; i++)
		assert_int_equal(k.key[i], i);
	assert_int_equal(nvemu_dhchap_key_parse(KEY48, &k, &err), 0);
	assert_int_equal(k.hash, 2);
	assert_int_equal(k.len, 48);
	assert_int_equal(k.key[47], 47);
	assert_int_equal(nvemu_dhchap_key_parse(KEY64, &k, &err), 0);
	assert_int_equal(k.hash, 0);
	assert_int_equal(k.len, 64);
	assert_int_equal(k.key[63], 63);
}

static void expect_bad(const char *s, const char *msg_part)
{
	struct nvemu_dhchap_key k;
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_dhchap_key_parse(s, &k, &err), -EINVAL);
	if (!strstr(err.msg, msg_part))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", s, err.msg, msg_part);
	assert_int_equal(k.len, 0);
}

static void key_parse_invalid(void **state)
{
	char s[128];

	expect_bad("DHHC-2:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "DHHC-1");
	expect_bad("DHHC-1:04:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "hash 04");
	expect_bad("DHHC-1:1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "two-digit");
	expect_bad("DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR", "end with");
	expect_bad("DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR::", "end with");
	expect_bad("DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd:", "base64 part");
	expect_bad("DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:", "CRC");
	expect_bad("DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+Kfi*R:", "base64");
	expect_bad("DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH=+KfiaR:", "base64");
	expect_bad("", "DHHC-1");
	expect_bad(NULL, "DHHC-1");
	/* Every truncation of a valid secret is refused. */
	for (size_t n = 0; n < sizeof(KEY32) - 1; n++) {
		struct nvemu_dhchap_key k;

		memcpy(s, KEY32, n);
		s[n] = 0;
		assert_int_equal(nvemu_dhchap_key_parse(s, &k, NULL), -EINVAL);
	}
}

static void transform_and_response_vectors(void **state)
{
	struct nvemu_dhchap_key k;
	uint8_t t[64], want[64], out[64], chal[32], skey[256];
	size_t tlen;

	assert_int_equal(nvemu_dhchap_key_parse(KEY32, &k, NULL), 0);
	assert_int_equal(nvemu_dhchap_key_transform(&k, HOSTNQN, t, &tlen), 0);
	assert_int_equal(tlen, 32);
	unhex("d06bfe416d2de81dd5cccafd02bca7f68fe6d9ed50c7393fa37471335959cdf7", want);
	assert_memory_equal(t, want, 32);

	memset(chal, 0xc1, sizeof(chal));
	assert_int_equal(nvemu_auth_response(1, t, tlen, chal, NULL, 0, 0x01020304, 0x0506, 0,
					     "HostHost", HOSTNQN, SUBNQN, out),
			 0);
	unhex("cd91aee4bd48133de8f2bea818b597335cf9aed8231ade68cd2e6a647b2f5748", want);
	assert_memory_equal(out, want, 32);

	/* With a session key: the challenge is augmented first. */
	memset(skey, 0x5a, sizeof(skey));
	assert_int_equal(nvemu_auth_response(1, t, tlen, chal, skey, sizeof(skey), 0x01020304,
					     0x0506, 0, "Controller", SUBNQN, HOSTNQN, out),
			 0);
	unhex("9d62f36ffdf662f3bed3ce6a3e9d5bcb064bd77187d01dcf8696ab32991eca84", want);
	assert_memory_equal(out, want, 32);

	/* Hash 00: the secret itself. */
	assert_int_equal(nvemu_dhchap_key_parse(KEY64, &k, NULL), 0);
	assert_int_equal(nvemu_dhchap_key_transform(&k, HOSTNQN, t, &tlen), 0);
	assert_int_equal(tlen, 64);
	assert_memory_equal(t, k.key, 64);
	assert_int_equal(nvemu_auth_response(9, t, tlen, chal, NULL, 0, 1, 1, 0, "HostHost",
					     HOSTNQN, SUBNQN, out),
			 -EINVAL);
}

/* ---- the state machine */

struct tx {
	struct nvemu_auth *a;
	struct nvemu_dhchap_key hk, ck;
	uint8_t buf[NVEMU_AUTH_MSG_MAX];
	size_t len;
};

static size_t negotiate_msg(uint8_t *b, uint16_t tid, const uint8_t *hashes, unsigned nh,
			    const uint8_t *groups, unsigned ng)
{
	struct nvemu_auth_negotiate *n = (void *)b;

	memset(b, 0, sizeof(*n) + sizeof(n->desc[0]));
	n->t_id = htole16(tid);
	n->napd = 1;
	n->desc[0].authid = NVEMU_AUTH_PROTO_DHCHAP;
	n->desc[0].halen = (uint8_t)nh;
	n->desc[0].dhlen = (uint8_t)ng;
	memcpy(n->desc[0].idlist, hashes, nh);
	memcpy(n->desc[0].idlist + 30, groups, ng);
	return sizeof(*n) + sizeof(n->desc[0]);
}

static int setup(void **state)
{
	struct tx *x = calloc(1, sizeof(*x));
	struct nvemu_auth_params p = {
		.hostnqn = HOSTNQN, .subnqn = SUBNQN, .host_key = &x->hk, .ctrl_key = &x->ck};

	assert_int_equal(nvemu_dhchap_key_parse(KEY32, &x->hk, NULL), 0);
	assert_int_equal(nvemu_dhchap_key_parse(KEY48, &x->ck, NULL), 0);
	x->a = nvemu_auth_create(&p);
	assert_non_null(x->a);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct tx *x = *state;

	nvemu_auth_destroy(x->a);
	free(x);
	return 0;
}

/*
 * Host side of a null-group transaction using nvemu_auth_response (checked
 * against the vectors above). bidi: ask for the controller's response.
 */
static uint8_t host_reply(struct tx *x, uint16_t tid, const struct nvemu_dhchap_key *key,
			  bool bidi, uint8_t *r2_expect)
{
	static const uint8_t h256[] = {1}, null_group[] = {0};
	struct nvemu_auth_challenge ch;
	struct nvemu_auth_reply *r = (void *)x->buf;
	uint8_t t[64], c1[32], c2[32];
	size_t tlen, len;

	len = negotiate_msg(x->buf, tid, h256, 1, null_group, 1);
	assert_int_equal(nvemu_auth_send(x->a, x->buf, len), 0);
	assert_true(nvemu_auth_busy(x->a));
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), 0);
	assert_int_equal(x->len, sizeof(ch) + 32);
	memcpy(&ch, x->buf, sizeof(ch));
	memcpy(c1, x->buf + sizeof(ch), 32);
	assert_int_equal(ch.auth_type, NVEMU_AUTH_DHCHAP_MESSAGES);
	assert_int_equal(ch.auth_id, NVEMU_AUTH_MSG_CHALLENGE);
	assert_int_equal(le16toh(ch.t_id), tid);
	assert_int_equal(ch.hl, 32);
	assert_int_equal(ch.hashid, 1);
	assert_int_equal(ch.dhgid, 0);
	assert_int_equal(ch.dhvlen, 0);
	assert_int_not_equal(ch.seqnum, 0);

	memset(x->buf, 0, sizeof(x->buf));
	r->auth_type = NVEMU_AUTH_DHCHAP_MESSAGES;
	r->auth_id = NVEMU_AUTH_MSG_REPLY;
	r->t_id = htole16(tid);
	r->hl = 32;
	r->cvalid = bidi;
	r->seqnum = htole32(bidi ? 77 : 0);
	assert_int_equal(nvemu_dhchap_key_transform(key, HOSTNQN, t, &tlen), 0);
	assert_int_equal(nvemu_auth_response(1, t, tlen, c1, NULL, 0, le32toh(ch.seqnum), tid, 0,
					     "HostHost", HOSTNQN, SUBNQN, r->rval),
			 0);
	memset(c2, 0x42, sizeof(c2));
	memcpy(r->rval + 32, c2, 32);
	if (bidi) {
		assert_int_equal(nvemu_dhchap_key_transform(&x->ck, SUBNQN, t, &tlen), 0);
		assert_int_equal(nvemu_auth_response(1, t, tlen, c2, NULL, 0, 77, tid, 0,
						     "Controller", SUBNQN, HOSTNQN, r2_expect),
				 0);
	}
	assert_int_equal(nvemu_auth_send(x->a, x->buf, sizeof(*r) + 64), 0);
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), 0);
	return x->buf[1];
}

static void unidirectional_ok(void **state)
{
	struct tx *x = *state;

	assert_int_equal(nvemu_auth_result(x->a), NVEMU_AUTH_PENDING);
	assert_int_equal(host_reply(x, 3, &x->hk, false, NULL), NVEMU_AUTH_MSG_SUCCESS1);
	assert_int_equal(x->len, sizeof(struct nvemu_auth_success1));
	assert_int_equal(((struct nvemu_auth_success1 *)x->buf)->rvalid, 0);
	assert_int_equal(nvemu_auth_result(x->a), NVEMU_AUTH_OK);
	assert_false(nvemu_auth_busy(x->a));
	/* Re-authentication keeps the standing while it runs, and ends OK again. */
	assert_int_equal(host_reply(x, 4, &x->hk, false, NULL), NVEMU_AUTH_MSG_SUCCESS1);
	assert_int_equal(nvemu_auth_result(x->a), NVEMU_AUTH_OK);
}

static void bidirectional_ok(void **state)
{
	struct tx *x = *state;
	struct nvemu_auth_success2 s2 = {.auth_type = NVEMU_AUTH_DHCHAP_MESSAGES,
					 .auth_id = NVEMU_AUTH_MSG_SUCCESS2,
					 .t_id = htole16(5)};
	uint8_t r2[64];

	assert_int_equal(host_reply(x, 5, &x->hk, true, r2), NVEMU_AUTH_MSG_SUCCESS1);
	assert_int_equal(x->len, sizeof(struct nvemu_auth_success1) + 32);
	assert_int_equal(((struct nvemu_auth_success1 *)x->buf)->rvalid, 1);
	assert_memory_equal(x->buf + sizeof(struct nvemu_auth_success1), r2, 32);
	/* Not done until the host's Success2. */
	assert_int_equal(nvemu_auth_result(x->a), NVEMU_AUTH_PENDING);
	assert_int_equal(nvemu_auth_send(x->a, &s2, sizeof(s2)), 0);
	assert_int_equal(nvemu_auth_result(x->a), NVEMU_AUTH_OK);
}

static void host_refuses_controller(void **state)
{
	struct tx *x = *state;
	struct nvemu_auth_failure f2 = {.auth_type = NVEMU_AUTH_DHCHAP_MESSAGES,
					.auth_id = NVEMU_AUTH_MSG_FAILURE2,
					.t_id = htole16(6),
					.rescode = 1,
					.rescode_exp = 1};
	uint8_t r2[64];

	assert_int_equal(host_reply(x, 6, &x->hk, true, r2), NVEMU_AUTH_MSG_SUCCESS1);
	assert_int_equal(nvemu_auth_send(x->a, &f2, sizeof(f2)), 0);
	assert_int_equal(nvemu_auth_result(x->a), NVEMU_AUTH_FAILED);
}

static void wrong_secret(void **state)
{
	struct tx *x = *state;
	struct nvemu_dhchap_key bad = x->hk;
	struct nvemu_auth_failure *f;

	bad.key[0] ^= 1;
	assert_int_equal(host_reply(x, 8, &bad, false, NULL), NVEMU_AUTH_MSG_FAILURE1);
	f = (void *)x->buf;
	assert_int_equal(x->len, sizeof(*f));
	assert_int_equal(le16toh(f->t_id), 8);
	assert_int_equal(f->rescode, 1);
	assert_int_equal(f->rescode_exp, NVEMU_AUTH_FAIL_FAILED);
	assert_int_equal(nvemu_auth_result(x->a), NVEMU_AUTH_FAILED);
	/* A new transaction may follow and succeed. */
	assert_int_equal(host_reply(x, 9, &x->hk, false, NULL), NVEMU_AUTH_MSG_SUCCESS1);
	assert_int_equal(nvemu_auth_result(x->a), NVEMU_AUTH_OK);
}

static void out_of_order(void **state)
{
	static const uint8_t h[] = {1}, g[] = {0}, weird_h[] = {9, 0}, big_g[] = {5, 1, 3};
	struct tx *x = *state;
	uint8_t m[16] = {NVEMU_AUTH_DHCHAP_MESSAGES, NVEMU_AUTH_MSG_REPLY};
	size_t len;

	/* Nothing to receive, no reply expected before a negotiation. */
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), SEQ_ERROR);
	assert_int_equal(nvemu_auth_send(x->a, m, sizeof(m)), SEQ_ERROR);
	assert_int_equal(nvemu_auth_send(x->a, m, 4), INVALID_FIELD);
	/* Too small an allocation length keeps the message for the next try. */
	len = negotiate_msg(x->buf, 1, h, 1, g, 1);
	assert_int_equal(nvemu_auth_send(x->a, x->buf, len), 0);
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, 20, &x->len), INVALID_FIELD);
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), 0);
	/* A Reply with another transaction ID: Failure1, incorrect payload. */
	m[4] = 2;
	assert_int_equal(nvemu_auth_send(x->a, m, sizeof(m)), 0);
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), 0);
	assert_int_equal(x->buf[1], NVEMU_AUTH_MSG_FAILURE1);
	assert_int_equal(x->buf[7], NVEMU_AUTH_FAIL_INCORRECT_PAYLOAD);
	/* The strongest choice among what both allow; unknown IDs ignored. */
	len = negotiate_msg(x->buf, 1, weird_h, 2, big_g, 3);
	assert_int_equal(nvemu_auth_send(x->a, x->buf, len), 0);
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), 0);
	assert_int_equal(x->buf[1], NVEMU_AUTH_MSG_FAILURE1);
	assert_int_equal(x->buf[7], NVEMU_AUTH_FAIL_HASH_UNUSABLE);
	len = negotiate_msg(x->buf, 1, (const uint8_t[]){1, 2}, 2, big_g, 3);
	assert_int_equal(nvemu_auth_send(x->a, x->buf, len), 0);
	assert_int_equal(nvemu_auth_hash(x->a), 2);
	assert_int_equal(nvemu_auth_dhgroup(x->a), 5);
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), 0);
	assert_int_equal(x->len, sizeof(struct nvemu_auth_challenge) + 48 + 1024);
	/* Secure channel concatenation is refused. */
	len = negotiate_msg(x->buf, 1, h, 1, g, 1);
	x->buf[6] = 1;
	assert_int_equal(nvemu_auth_send(x->a, x->buf, len), 0);
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), 0);
	assert_int_equal(x->buf[7], NVEMU_AUTH_FAIL_CONCAT_MISMATCH);
}

static void bad_dh_value(void **state)
{
	static const uint8_t h[] = {1}, g[] = {1};
	struct tx *x = *state;
	struct nvemu_auth_reply *r = (void *)x->buf;
	size_t len;

	len = negotiate_msg(x->buf, 1, h, 1, g, 1);
	assert_int_equal(nvemu_auth_send(x->a, x->buf, len), 0);
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), 0);
	/* A public value of 1 (a small-subgroup attack) is refused. */
	memset(x->buf, 0, sizeof(x->buf));
	r->auth_type = NVEMU_AUTH_DHCHAP_MESSAGES;
	r->auth_id = NVEMU_AUTH_MSG_REPLY;
	r->t_id = htole16(1);
	r->hl = 32;
	r->dhvlen = htole16(256);
	r->rval[64 + 255] = 1;
	assert_int_equal(nvemu_auth_send(x->a, x->buf, sizeof(*r) + 64 + 256), 0);
	assert_int_equal(nvemu_auth_receive(x->a, x->buf, sizeof(x->buf), &x->len), 0);
	assert_int_equal(x->buf[1], NVEMU_AUTH_MSG_FAILURE1);
	assert_int_equal(x->buf[7], NVEMU_AUTH_FAIL_INCORRECT_PAYLOAD);
	assert_int_equal(nvemu_auth_result(x->a), NVEMU_AUTH_FAILED);
}

/* ---- TLS PSKs (transport/tcp/tls.c): interchange format and the retained PSK */

static void psk_vectors(void **state)
{
	struct tcp_psk psk;
	struct nvemu_error err = {0};
	uint8_t out[48], want[48];

	assert_int_equal(
		tcp_psk_parse("NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", &psk,
			      &err),
		0);
	assert_int_equal(psk.hash, 1);
	assert_int_equal(psk.len, 32);
	assert_int_equal(psk.key[31], 31);
	assert_int_equal(tcp_psk_retained(&psk, HOSTNQN, out), 0);
	unhex("3f7c29406daa9486862e4e497d7f30ddbb4b81855b06bcdfee3576eaa0b55f1e", want);
	assert_memory_equal(out, want, 32);
	/* The TLS PSK for identity "NVMe0R01 <hostnqn> <subnqn>" (libnvme's, version 0). */
	{
		static const char id[] = "NVMe0R01 " HOSTNQN " " SUBNQN;

		assert_int_equal(tcp_psk_tls(&psk, HOSTNQN, id, sizeof(id) - 1, out), 0);
		unhex("7eaa657e8ab6b07a99044337072d36a47e0fef963c9ec225bf401e0936ed8ee7", want);
		assert_memory_equal(out, want, 32);
	}

	assert_int_equal(tcp_psk_parse("NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"
				       "ISIjJCUmJygpKissLS4vcSEgBQ==:",
				       &psk, &err),
			 0);
	assert_int_equal(psk.hash, 2);
	assert_int_equal(psk.len, 48);
	assert_int_equal(tcp_psk_retained(&psk, HOSTNQN, out), 0);
	unhex("1ebfc196699d542dcebe7cc7c571514cb6c43e9f9ec2607bf399c6f7d2e45ad9fb8251c336eeed5f0cb76d8fa701af66",
	      want);
	assert_memory_equal(out, want, 48);

	/* A SHA-384 tag on a 32-byte key, a wrong CRC, other versions and hashes. */
	assert_int_equal(tcp_psk_parse("NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+K"
				       "fiaR:",
				       &psk, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "base64 part"));
	assert_int_equal(tcp_psk_parse("NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+K"
				       "fiaS:",
				       &psk, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "CRC"));
	assert_int_equal(tcp_psk_parse("NVMeTLSkey-2:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+K"
				       "fiaR:",
				       &psk, &err),
			 -EINVAL);
	assert_int_equal(tcp_psk_parse("NVMeTLSkey-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+K"
				       "fiaR:",
				       &psk, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "hash"));
	assert_int_equal(tcp_psk_parse(KEY32, &psk, &err), -EINVAL);
	assert_int_equal(psk.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(key_parse_valid),
		cmocka_unit_test(key_parse_invalid),
		cmocka_unit_test(transform_and_response_vectors),
		cmocka_unit_test_setup_teardown(unidirectional_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(bidirectional_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(host_refuses_controller, setup, teardown),
		cmocka_unit_test_setup_teardown(wrong_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_dh_value, setup, teardown),
		cmocka_unit_test(psk_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * DH-HMAC-CHAP, the controller's side (see auth.h). One transaction:
 *
 *   host AUTH_Send    AUTH_Negotiate        -> hash and DH group chosen
 *   host AUTH_Receive DH-HMAC-CHAP_Challenge (C1, S1, controller's DH value)
 *   host AUTH_Send    DH-HMAC-CHAP_Reply     (R1, optionally C2 and S2, host's DH value)
 *   host AUTH_Receive DH-HMAC-CHAP_Success1  (R2 when C2 was given) or _Failure1
 *   host AUTH_Send    DH-HMAC-CHAP_Success2 or _Failure2 (bidirectional only)
 *
 * A new AUTH_Negotiate starts over at any time (re-authentication).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include <nvme/types.h>
#include <nvemu/spec.h>

#include "auth.h"

#define STATUS_INVALID_FIELD (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define STATUS_SEQ_ERROR     (NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVEMU_DNR)
#define STATUS_INTERNAL	     NVEMU_SC_GENERIC(NVME_SC_INTERNAL)

_Static_assert(sizeof(struct nvemu_auth_protocol_desc) == 64, "descriptor");
_Static_assert(sizeof(struct nvemu_auth_negotiate) == 8, "negotiate");
_Static_assert(sizeof(struct nvemu_auth_challenge) == 16, "challenge");
_Static_assert(sizeof(struct nvemu_auth_reply) == 16, "reply");
_Static_assert(sizeof(struct nvemu_auth_success1) == 16, "success1");
_Static_assert(sizeof(struct nvemu_auth_success2) == 16, "success2");
_Static_assert(sizeof(struct nvemu_auth_failure) == 8, "failure");

/* ---- names and sizes */

size_t nvemu_auth_hash_len(uint8_t hash)
{
	switch (hash) {
	case NVEMU_AUTH_HASH_SHA256:
		return 32;
	case NVEMU_AUTH_HASH_SHA384:
		return 48;
	case NVEMU_AUTH_HASH_SHA512:
		return 64;
	default:
		return 0;
	}
}

const char *nvemu_auth_hash_name(uint8_t hash)
{
	static const char *const names[] = {NULL, "sha256", "sha384", "sha512"};

	return hash < 4 ? names[hash] : NULL;
}

static const EVP_MD *hash_md(uint8_t hash)
{
	switch (hash) {
	case NVEMU_AUTH_HASH_SHA256:
		return EVP_sha256();
	case NVEMU_AUTH_HASH_SHA384:
		return EVP_sha384();
	case NVEMU_AUTH_HASH_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

const char *nvemu_auth_dhgroup_name(uint8_t dhgroup)
{
	static const char *const names[] = {"null",	 "ffdhe2048", "ffdhe3072",
					    "ffdhe4096", "ffdhe6144", "ffdhe8192"};

	return dhgroup < 6 ? names[dhgroup] : NULL;
}

size_t nvemu_auth_dhgroup_len(uint8_t dhgroup)
{
	static const size_t bits[] = {0, 2048, 3072, 4096, 6144, 8192};

	return dhgroup < 6 ? bits[dhgroup] / 8 : 0;
}

/* ---- secrets */

/* CRC-32 (IEEE 802.3, as zlib) that the DHHC-1 representation appends: an integrity check. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

int nvemu_dhchap_key_parse(const char *str, struct nvemu_dhchap_key *key,
			   struct nvemu_error *err)
{
	uint8_t raw[NVEMU_DHCHAP_KEY_MAX + 4 + 3];
	const char *b64, *end;
	size_t n, pad = 0;
	unsigned hash;
	int got;

	memset(key, 0, sizeof(*key));
	if (!str || strncmp(str, "DHHC-1:", 7))
		return nvemu_error_set(err, -EINVAL, "secret: must start with \"DHHC-1:\"");
	if (str[7] < '0' || str[7] > '9' || str[8] < '0' || str[8] > '9' || str[9] != ':')
		return nvemu_error_set(err, -EINVAL,
				       "secret: \"DHHC-1:\" must be followed by a two-digit hash "
				       "identifier and ':'");
	hash = (unsigned)(str[7] - '0') * 10 + (unsigned)(str[8] - '0');
	if (hash > NVEMU_AUTH_HASH_SHA512)
		return nvemu_error_set(err, -EINVAL,
				       "secret: transformation hash %02u unknown (00..03)", hash);
	b64 = str + 10;
	end = strchr(b64, ':');
	if (!end || end[1])
		return nvemu_error_set(err, -EINVAL, "secret: must end with ':'");
	n = (size_t)(end - b64);
	/* 36, 52 or 68 bytes (secret and CRC) encode to 48, 72 or 92 characters. */
	if (n != 48 && n != 72 && n != 92)
		return nvemu_error_set(err, -EINVAL,
				       "secret: base64 part of %zu characters; a 32, 48 or 64 "
				       "byte secret with its CRC is 48, 72 or 92",
				       n);
	for (size_t i = 0; i < n; i++) {
		char ch = b64[i];

		if (ch == '=' && i >= n - 2) {
			pad++;
			continue;
		}
		if (pad || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
			return nvemu_error_set(err, -EINVAL, "secret: not valid base64");
	}
	got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got < pad + 4)
		return nvemu_error_set(err, -EINVAL, "secret: not valid base64");
	got -= (int)pad;
	if (got != 36 && got != 52 && got != 68)
		return nvemu_error_set(err, -EINVAL,
				       "secret: %d bytes decoded; must be a 32, 48 or 64 byte "
				       "secret and its 4-byte CRC",
				       got);
	n = (size_t)got - 4;
	if (crc32_ieee(raw, n) != ((uint32_t)raw[n] | (uint32_t)raw[n + 1] << 8 |
				   (uint32_t)raw[n + 2] << 16 | (uint32_t)raw[n + 3] << 24)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return nvemu_error_set(err, -EINVAL, "secret: CRC mismatch (mistyped secret?)");
	}
	key->hash = (uint8_t)hash;
	key->len = (uint8_t)n;
	memcpy(key->key, raw, n);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

/* ---- HMAC */

struct iov {
	const void *p;
	size_t n;
};

static int hmac(uint8_t hash, const uint8_t *key, size_t key_len, const struct iov *v,
		unsigned nv, uint8_t *out)
{
	const char *name = nvemu_auth_hash_name(hash);
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t olen = 0;
	int ret = -EIO;

	if (!name)
		return -EINVAL;
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac)
		ctx = EVP_MAC_CTX_new(mac);
	if (!ctx)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, key, key_len, params))
		goto out;
	for (unsigned i = 0; i < nv; i++)
		if (v[i].n && !EVP_MAC_update(ctx, v[i].p, v[i].n))
			goto out;
	if (EVP_MAC_final(ctx, out, &olen, nvemu_auth_hash_len(hash)) &&
	    olen == nvemu_auth_hash_len(hash))
		ret = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ret;
}

int nvemu_dhchap_key_transform(const struct nvemu_dhchap_key *key, const char *nqn,
			       uint8_t out[NVEMU_DHCHAP_KEY_MAX], size_t *out_len)
{
	static const char fabrics[] = "NVMe-over-Fabrics";
	struct iov v[2] = {{nqn, strlen(nqn)}, {fabrics, sizeof(fabrics) - 1}};

	if (key->hash == NVEMU_AUTH_HASH_NONE) {
		memcpy(out, key->key, key->len);
		*out_len = key->len;
		return 0;
	}
	*out_len = nvemu_auth_hash_len(key->hash);
	return hmac(key->hash, key->key, key->len, v, 2, out);
}

int nvemu_auth_response(uint8_t hash, const uint8_t *tkey, size_t tkey_len,
			const uint8_t *challenge, const uint8_t *skey, size_t skey_len,
			uint32_t seqnum, uint16_t t_id, uint8_t sc_c, const char *role,
			const char *nqn1, const char *nqn2, uint8_t *out)
{
	size_t hl = nvemu_auth_hash_len(hash);
	uint8_t aug[NVEMU_DHCHAP_KEY_MAX], hkey[NVEMU_DHCHAP_KEY_MAX];
	uint8_t s[4] = {(uint8_t)seqnum, (uint8_t)(seqnum >> 8), (uint8_t)(seqnum >> 16),
			(uint8_t)(seqnum >> 24)};
	uint8_t t[2] = {(uint8_t)t_id, (uint8_t)(t_id >> 8)}, zero = 0;
	unsigned int dlen = 0;
	int ret;

	if (!hl)
		return -EINVAL;
	if (skey_len) {
		/* Augmented challenge: HMAC(H(session key), C). */
		struct iov c = {challenge, hl};

		if (!EVP_Digest(skey, skey_len, hkey, &dlen, hash_md(hash), NULL) || dlen != hl)
			return -EIO;
		ret = hmac(hash, hkey, hl, &c, 1, aug);
		OPENSSL_cleanse(hkey, sizeof(hkey));
		if (ret)
			return ret;
		challenge = aug;
	}
	{
		struct iov v[] = {
			{challenge, hl}, {s, 4},	     {t, 2},	 {&sc_c, 1},
			{role, strlen(role)}, {nqn1, strlen(nqn1)}, {&zero, 1}, {nqn2, strlen(nqn2)},
		};

		ret = hmac(hash, tkey, tkey_len, v, sizeof(v) / sizeof(v[0]), out);
	}
	OPENSSL_cleanse(aug, sizeof(aug));
	return ret;
}

/* ---- finite field Diffie-Hellman (RFC 7919 groups) */

static EVP_PKEY *dh_keygen(uint8_t dhgroup)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	OSSL_PARAM params[2];
	EVP_PKEY *pkey = NULL;

	params[0] = OSSL_PARAM_construct_utf8_string(
		OSSL_PKEY_PARAM_GROUP_NAME, (char *)nvemu_auth_dhgroup_name(dhgroup), 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 || !EVP_PKEY_CTX_set_params(ctx, params) ||
	    EVP_PKEY_generate(ctx, &pkey) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static int dh_public(EVP_PKEY *pkey, uint8_t *out, size_t len)
{
	BIGNUM *pub = NULL;
	int ret = -EIO;

	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, &pub) &&
	    BN_bn2binpad(pub, out, (int)len) == (int)len)
		ret = 0;
	BN_free(pub);
	return ret;
}

/*
 * The shared secret with the peer's public value, as long as the prime
 * (leading zeros kept, as the Linux host computes it). -EINVAL: the value
 * is not a valid public key of the group.
 */
static int dh_derive(EVP_PKEY *ours, uint8_t dhgroup, const uint8_t *peer_pub, size_t len,
		     uint8_t *out)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL), *dctx = NULL;
	BIGNUM *pub = BN_bin2bn(peer_pub, (int)len, NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY *peer = NULL;
	size_t olen = len;
	int ret = -EIO;

	if (!bld || !pctx || !pub ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     nvemu_auth_dhgroup_name(dhgroup), 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, pub))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	if (!params || EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &peer, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	dctx = EVP_PKEY_CTX_new_from_pkey(NULL, ours, NULL);
	if (!dctx || EVP_PKEY_derive_init(dctx) <= 0 || EVP_PKEY_CTX_set_dh_pad(dctx, 1) <= 0)
		goto out;
	/* Checks the value: 1 < y < p-1 and in the prime-order subgroup. */
	if (EVP_PKEY_derive_set_peer_ex(dctx, peer, 1) <= 0) {
		ret = -EINVAL;
		goto out;
	}
	if (EVP_PKEY_derive(dctx, out, &olen) > 0 && olen == len)
		ret = 0;
out:
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_free(peer);
	OSSL_PARAM_free(params);
	BN_free(pub);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_BLD_free(bld);
	return ret;
}

/* ---- the transaction */

enum step {
	STEP_IDLE,	/* waiting for AUTH_Negotiate */
	STEP_CHALLENGE, /* the Challenge is the next AUTH_Receive */
	STEP_REPLY,	/* waiting for the Reply */
	STEP_SUCCESS1,	/* the Success1 is the next AUTH_Receive */
	STEP_SUCCESS2,	/* waiting for Success2 (bidirectional) */
	STEP_FAILURE1,	/* the Failure1 is the next AUTH_Receive */
};

struct nvemu_auth {
	char *hostnqn, *subnqn;
	struct nvemu_dhchap_key host_key, ctrl_key;
	bool has_ctrl_key;
	uint8_t digests, dhgroups;

	enum step step;
	enum nvemu_auth_result result;
	uint16_t t_id;
	uint8_t hash, dhgroup, fail_reason;
	uint32_t s1;
	uint8_t c1[NVEMU_DHCHAP_KEY_MAX];
	uint8_t r2[NVEMU_DHCHAP_KEY_MAX]; /* our response to the host's challenge */
	bool r2_valid;
	EVP_PKEY *dh;
};

static void wipe_transaction(struct nvemu_auth *a)
{
	EVP_PKEY_free(a->dh);
	a->dh = NULL;
	OPENSSL_cleanse(a->c1, sizeof(a->c1));
	OPENSSL_cleanse(a->r2, sizeof(a->r2));
	a->r2_valid = false;
}

struct nvemu_auth *nvemu_auth_create(const struct nvemu_auth_params *p)
{
	struct nvemu_auth *a;

	if (!p->hostnqn || !p->subnqn || !p->host_key || !p->host_key->len)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->hostnqn = strdup(p->hostnqn);
	a->subnqn = strdup(p->subnqn);
	if (!a->hostnqn || !a->subnqn) {
		nvemu_auth_destroy(a);
		return NULL;
	}
	a->host_key = *p->host_key;
	if (p->ctrl_key && p->ctrl_key->len) {
		a->ctrl_key = *p->ctrl_key;
		a->has_ctrl_key = true;
	}
	a->digests = p->digests ? p->digests : 0x0e;
	a->dhgroups = p->dhgroups ? p->dhgroups : 0x3f;
	return a;
}

void nvemu_auth_destroy(struct nvemu_auth *a)
{
	if (!a)
		return;
	wipe_transaction(a);
	free(a->hostnqn);
	free(a->subnqn);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

enum nvemu_auth_result nvemu_auth_result(const struct nvemu_auth *a)
{
	return a->result;
}

bool nvemu_auth_busy(const struct nvemu_auth *a)
{
	return a->step != STEP_IDLE;
}

uint8_t nvemu_auth_hash(const struct nvemu_auth *a)
{
	return a->hash;
}

uint8_t nvemu_auth_dhgroup(const struct nvemu_auth *a)
{
	return a->dhgroup;
}

uint8_t nvemu_auth_fail_reason(const struct nvemu_auth *a)
{
	return a->fail_reason;
}

static uint16_t fail(struct nvemu_auth *a, uint8_t reason)
{
	wipe_transaction(a);
	a->fail_reason = reason;
	a->result = NVEMU_AUTH_FAILED;
	a->step = STEP_FAILURE1;
	return 0;
}

/* Strongest hash, then strongest group, that both sides allow (as SPDK chooses). */
static uint16_t negotiate(struct nvemu_auth *a, const uint8_t *buf, size_t len)
{
	/* Copied out: a payload need not be aligned. */
	struct nvemu_auth_negotiate n;
	struct nvemu_auth_protocol_desc d;
	uint8_t hashes = 0, groups = 0;
	bool found = false;

	memcpy(&n, buf, sizeof(n));
	wipe_transaction(a);
	a->t_id = le16toh(n.t_id);
	a->hash = 0;
	a->dhgroup = 0;
	a->fail_reason = 0;
	if (!n.napd || len < sizeof(n) + (size_t)n.napd * sizeof(d))
		return fail(a, NVEMU_AUTH_FAIL_INCORRECT_PAYLOAD);
	/* Secure channel concatenation needs TLS on the queue: not offered. */
	if (n.sc_c)
		return fail(a, NVEMU_AUTH_FAIL_CONCAT_MISMATCH);
	for (unsigned i = 0; i < n.napd && !found; i++) {
		memcpy(&d, buf + sizeof(n) + i * sizeof(d), sizeof(d));
		found = d.authid == NVEMU_AUTH_PROTO_DHCHAP;
	}
	if (!found)
		return fail(a, NVEMU_AUTH_FAIL_INCORRECT_PROTOCOL);
	if (d.halen > 30 || d.dhlen > 30)
		return fail(a, NVEMU_AUTH_FAIL_INCORRECT_PAYLOAD);
	for (unsigned i = 0; i < d.halen; i++)
		if (d.idlist[i] < 8)
			hashes |= (uint8_t)(1u << d.idlist[i]);
	for (unsigned i = 0; i < d.dhlen; i++)
		if (d.idlist[30 + i] < 8)
			groups |= (uint8_t)(1u << d.idlist[30 + i]);
	hashes &= a->digests & 0x0e;
	groups &= a->dhgroups & 0x3f;
	if (!hashes)
		return fail(a, NVEMU_AUTH_FAIL_HASH_UNUSABLE);
	if (!groups)
		return fail(a, NVEMU_AUTH_FAIL_DHGROUP_UNUSABLE);
	for (a->hash = 3; !(hashes & (1u << a->hash)); a->hash--)
		;
	for (a->dhgroup = 5; !(groups & (1u << a->dhgroup)); a->dhgroup--)
		;
	a->step = STEP_CHALLENGE;
	return 0;
}

static uint16_t reply(struct nvemu_auth *a, const uint8_t *buf, size_t len)
{
	struct nvemu_auth_reply hdr, *r = &hdr; /* copied out: a payload need not be aligned */
	const uint8_t *rval = buf + sizeof(hdr);
	size_t hl = nvemu_auth_hash_len(a->hash), dhl = nvemu_auth_dhgroup_len(a->dhgroup);
	uint8_t tkey[NVEMU_DHCHAP_KEY_MAX], expect[NVEMU_DHCHAP_KEY_MAX];
	uint8_t skey[1024];
	size_t tkey_len, skey_len = 0;
	uint32_t s2;
	bool ok;

	if (len < sizeof(hdr))
		return fail(a, NVEMU_AUTH_FAIL_INCORRECT_PAYLOAD);
	memcpy(&hdr, buf, sizeof(hdr));
	s2 = le32toh(r->seqnum);

	if (r->hl != hl || le16toh(r->dhvlen) != dhl || len < sizeof(*r) + 2 * hl + dhl)
		return fail(a, NVEMU_AUTH_FAIL_INCORRECT_PAYLOAD);
	if (dhl) {
		int ret = dh_derive(a->dh, a->dhgroup, rval + 2 * hl, dhl, skey);

		if (ret)
			return ret == -EINVAL ? fail(a, NVEMU_AUTH_FAIL_INCORRECT_PAYLOAD)
					      : (fail(a, NVEMU_AUTH_FAIL_FAILED), STATUS_INTERNAL);
		skey_len = dhl;
	}
	if (nvemu_dhchap_key_transform(&a->host_key, a->hostnqn, tkey, &tkey_len) ||
	    nvemu_auth_response(a->hash, tkey, tkey_len, a->c1, skey, skey_len, a->s1, a->t_id, 0,
				"HostHost", a->hostnqn, a->subnqn, expect)) {
		OPENSSL_cleanse(skey, sizeof(skey));
		OPENSSL_cleanse(tkey, sizeof(tkey));
		fail(a, NVEMU_AUTH_FAIL_FAILED);
		return STATUS_INTERNAL;
	}
	ok = !CRYPTO_memcmp(expect, rval, hl);
	OPENSSL_cleanse(tkey, sizeof(tkey));
	OPENSSL_cleanse(expect, sizeof(expect));
	if (!ok) {
		OPENSSL_cleanse(skey, sizeof(skey));
		return fail(a, NVEMU_AUTH_FAIL_FAILED);
	}
	if (r->cvalid) {
		int ret;

		/* A host asking us to prove ourselves needs a controller key here, and S2 != 0. */
		if (!a->has_ctrl_key || !s2) {
			OPENSSL_cleanse(skey, sizeof(skey));
			return fail(a, NVEMU_AUTH_FAIL_FAILED);
		}
		ret = nvemu_dhchap_key_transform(&a->ctrl_key, a->subnqn, tkey, &tkey_len);
		if (!ret)
			ret = nvemu_auth_response(a->hash, tkey, tkey_len, rval + hl, skey,
						  skey_len, s2, a->t_id, 0, "Controller",
						  a->subnqn, a->hostnqn, a->r2);
		OPENSSL_cleanse(tkey, sizeof(tkey));
		if (ret) {
			OPENSSL_cleanse(skey, sizeof(skey));
			fail(a, NVEMU_AUTH_FAIL_FAILED);
			return STATUS_INTERNAL;
		}
		a->r2_valid = true;
	}
	OPENSSL_cleanse(skey, sizeof(skey));
	a->step = STEP_SUCCESS1;
	return 0;
}

uint16_t nvemu_auth_send(struct nvemu_auth *a, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint16_t t_id;

	if (len < 8 || len > NVEMU_AUTH_MSG_MAX)
		return STATUS_INVALID_FIELD;
	t_id = (uint16_t)(p[4] | p[5] << 8);
	if (p[0] == NVEMU_AUTH_COMMON_MESSAGES && p[1] == NVEMU_AUTH_MSG_NEGOTIATE) {
		/* A new transaction, also to re-authenticate: the queue's standing is kept until it ends. */
		if (a->result == NVEMU_AUTH_FAILED)
			a->result = NVEMU_AUTH_PENDING;
		return negotiate(a, buf, len);
	}
	if (p[0] != NVEMU_AUTH_DHCHAP_MESSAGES || a->step == STEP_IDLE)
		return STATUS_SEQ_ERROR;
	if (p[1] == NVEMU_AUTH_MSG_FAILURE2) {
		/* The host refused our response (or gave up): the transaction failed. */
		wipe_transaction(a);
		a->fail_reason = len >= sizeof(struct nvemu_auth_failure) ? p[7] : 0;
		a->result = NVEMU_AUTH_FAILED;
		a->step = STEP_IDLE;
		return 0;
	}
	if (t_id != a->t_id)
		return fail(a, NVEMU_AUTH_FAIL_INCORRECT_PAYLOAD);
	switch (a->step) {
	case STEP_REPLY:
		if (p[1] != NVEMU_AUTH_MSG_REPLY)
			return fail(a, NVEMU_AUTH_FAIL_INCORRECT_PROTOCOL);
		return reply(a, buf, len);
	case STEP_SUCCESS2:
		if (p[1] != NVEMU_AUTH_MSG_SUCCESS2 || len < sizeof(struct nvemu_auth_success2))
			return fail(a, NVEMU_AUTH_FAIL_INCORRECT_PROTOCOL);
		wipe_transaction(a);
		a->result = NVEMU_AUTH_OK;
		a->step = STEP_IDLE;
		return 0;
	default:
		return fail(a, NVEMU_AUTH_FAIL_INCORRECT_PROTOCOL);
	}
}

static uint16_t send_challenge(struct nvemu_auth *a, uint8_t *buf, size_t al, size_t *len)
{
	struct nvemu_auth_challenge hdr = {0}, *c = &hdr; /* buf need not be aligned */
	size_t hl = nvemu_auth_hash_len(a->hash), dhl = nvemu_auth_dhgroup_len(a->dhgroup);

	*len = sizeof(*c) + hl + dhl;
	if (al < *len)
		return STATUS_INVALID_FIELD;
	if (RAND_bytes(a->c1, (int)hl) != 1 ||
	    RAND_bytes((uint8_t *)&a->s1, sizeof(a->s1)) != 1) {
		fail(a, NVEMU_AUTH_FAIL_FAILED);
		return STATUS_INTERNAL;
	}
	if (!a->s1)
		a->s1 = 1;
	if (dhl) {
		a->dh = dh_keygen(a->dhgroup);
		if (!a->dh || dh_public(a->dh, buf + sizeof(hdr) + hl, dhl)) {
			fail(a, NVEMU_AUTH_FAIL_FAILED);
			return STATUS_INTERNAL;
		}
	}
	c->auth_type = NVEMU_AUTH_DHCHAP_MESSAGES;
	c->auth_id = NVEMU_AUTH_MSG_CHALLENGE;
	c->rsvd1 = 0;
	c->t_id = htole16(a->t_id);
	c->hl = (uint8_t)hl;
	c->rsvd2 = 0;
	c->hashid = a->hash;
	c->dhgid = a->dhgroup;
	c->dhvlen = htole16((uint16_t)dhl);
	c->seqnum = htole32(a->s1);
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), a->c1, hl);
	a->step = STEP_REPLY;
	return 0;
}

static uint16_t receive(struct nvemu_auth *a, void *buf, size_t al, size_t *len)
{
	uint8_t *p = buf;

	*len = 0;
	if (al > NVEMU_AUTH_MSG_MAX)
		return STATUS_INVALID_FIELD;
	switch (a->step) {
	case STEP_CHALLENGE:
		return send_challenge(a, buf, al, len);
	case STEP_SUCCESS1: {
		struct nvemu_auth_success1 hdr = {0}, *s = &hdr;
		size_t hl = nvemu_auth_hash_len(a->hash);

		*len = sizeof(*s) + (a->r2_valid ? hl : 0);
		if (al < *len)
			return STATUS_INVALID_FIELD;
		s->auth_type = NVEMU_AUTH_DHCHAP_MESSAGES;
		s->auth_id = NVEMU_AUTH_MSG_SUCCESS1;
		s->t_id = htole16(a->t_id);
		s->hl = (uint8_t)hl;
		if (a->r2_valid) {
			s->rvalid = 1;
			memcpy(p + sizeof(hdr), a->r2, hl);
			a->step = STEP_SUCCESS2;
		} else {
			a->result = NVEMU_AUTH_OK;
			a->step = STEP_IDLE;
		}
		memcpy(p, &hdr, sizeof(hdr));
		wipe_transaction(a);
		return 0;
	}
	case STEP_FAILURE1: {
		struct nvemu_auth_failure hdr = {0}, *f = &hdr;

		*len = sizeof(*f);
		if (al < *len)
			return STATUS_INVALID_FIELD;
		f->auth_type = NVEMU_AUTH_DHCHAP_MESSAGES;
		f->auth_id = NVEMU_AUTH_MSG_FAILURE1;
		f->t_id = htole16(a->t_id);
		f->rescode = 0x01;
		f->rescode_exp = a->fail_reason;
		memcpy(p, &hdr, sizeof(hdr));
		a->step = STEP_IDLE;
		return 0;
	}
	default:
		return STATUS_SEQ_ERROR;
	}
}

uint16_t nvemu_auth_receive(struct nvemu_auth *a, void *buf, size_t al, size_t *len)
{
	uint16_t status = receive(a, buf, al, len);

	if (status)
		*len = 0; /* nothing is sent with an error */
	return status;
}

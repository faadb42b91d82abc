/* SPDX-License-Identifier: MIT */
/*
 * NVMe in-band authentication, DH-HMAC-CHAP (NVMe Base 2.0 section 8.13.5),
 * the controller's side: secrets in the "DHHC-1:xx:<base64>:" form, and
 * one transaction per queue driven by the AUTH_Send / AUTH_Receive payloads
 * a transport hands over. Transport independent; crypto is OpenSSL's.
 *
 * libnvme 1.3 has no declarations for these messages: they are declared
 * here, laid out as in the specification (figures "DH-HMAC-CHAP_*").
 */
#ifndef NVEMU_AUTH_H
#define NVEMU_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nvemu/error.h>

/* Security Protocol of AUTH_Send/Receive: NVMe in-band authentication. */
#define NVEMU_AUTH_SECP	 0xe9
#define NVEMU_AUTH_SPSP0 0x01
#define NVEMU_AUTH_SPSP1 0x01
/* Largest AUTH_Send/Receive payload accepted (ffdhe8192 values are 1 KiB). */
#define NVEMU_AUTH_MSG_MAX 4096u

enum nvemu_auth_hash {
	NVEMU_AUTH_HASH_NONE = 0, /* DHHC-1 "00": the secret is used untransformed */
	NVEMU_AUTH_HASH_SHA256 = 1,
	NVEMU_AUTH_HASH_SHA384 = 2,
	NVEMU_AUTH_HASH_SHA512 = 3,
};

enum nvemu_auth_dhgroup {
	NVEMU_AUTH_DH_NULL = 0,
	NVEMU_AUTH_DH_FFDHE2048 = 1,
	NVEMU_AUTH_DH_FFDHE3072 = 2,
	NVEMU_AUTH_DH_FFDHE4096 = 3,
	NVEMU_AUTH_DH_FFDHE6144 = 4,
	NVEMU_AUTH_DH_FFDHE8192 = 5,
};

/* Message types and identifiers. */
enum {
	NVEMU_AUTH_COMMON_MESSAGES = 0x00,
	NVEMU_AUTH_DHCHAP_MESSAGES = 0x01,
	NVEMU_AUTH_MSG_NEGOTIATE = 0x00,
	NVEMU_AUTH_MSG_CHALLENGE = 0x01,
	NVEMU_AUTH_MSG_REPLY = 0x02,
	NVEMU_AUTH_MSG_SUCCESS1 = 0x03,
	NVEMU_AUTH_MSG_SUCCESS2 = 0x04,
	NVEMU_AUTH_MSG_FAILURE2 = 0xf0,
	NVEMU_AUTH_MSG_FAILURE1 = 0xf1,
	NVEMU_AUTH_PROTO_DHCHAP = 0x01, /* AUTH_Negotiate descriptor AUTHID */
};

/* Reason code explanations of DH-HMAC-CHAP_Failure1/2 (reason code 01h: failed). */
enum {
	NVEMU_AUTH_FAIL_FAILED = 0x01,
	NVEMU_AUTH_FAIL_NOT_USABLE = 0x02,
	NVEMU_AUTH_FAIL_CONCAT_MISMATCH = 0x03,
	NVEMU_AUTH_FAIL_HASH_UNUSABLE = 0x04,
	NVEMU_AUTH_FAIL_DHGROUP_UNUSABLE = 0x05,
	NVEMU_AUTH_FAIL_INCORRECT_PAYLOAD = 0x06,
	NVEMU_AUTH_FAIL_INCORRECT_PROTOCOL = 0x07,
};

struct nvemu_auth_protocol_desc {
	uint8_t authid;
	uint8_t rsvd;
	uint8_t halen;
	uint8_t dhlen;
	uint8_t idlist[60]; /* hash IDs from 0, DH group IDs from 30 */
};

struct nvemu_auth_negotiate {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd;
	uint16_t t_id; /* little endian, as every multi-byte field here */
	uint8_t sc_c;
	uint8_t napd;
	struct nvemu_auth_protocol_desc desc[];
};

struct nvemu_auth_challenge {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t hl;
	uint8_t rsvd2;
	uint8_t hashid;
	uint8_t dhgid;
	uint16_t dhvlen;
	uint32_t seqnum;
	uint8_t cval[]; /* hl bytes, then dhvlen bytes of DH value */
};

struct nvemu_auth_reply {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t hl;
	uint8_t rsvd2;
	uint8_t cvalid;
	uint8_t rsvd3;
	uint16_t dhvlen;
	uint32_t seqnum;
	uint8_t rval[]; /* hl bytes response, hl bytes challenge, dhvlen bytes DH value */
};

struct nvemu_auth_success1 {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t hl;
	uint8_t rsvd2;
	uint8_t rvalid;
	uint8_t rsvd3[7];
	uint8_t rval[]; /* hl bytes when rvalid */
};

struct nvemu_auth_success2 {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t rsvd2[10];
};

struct nvemu_auth_failure {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t rescode;
	uint8_t rescode_exp;
};

/* ---- secrets */

#define NVEMU_DHCHAP_KEY_MAX 64

struct nvemu_dhchap_key {
	uint8_t hash; /* transformation hash, enum nvemu_auth_hash */
	uint8_t len;  /* 32, 48 or 64 */
	uint8_t key[NVEMU_DHCHAP_KEY_MAX];
};

/*
 * Parse "DHHC-1:xx:<base64 of secret and its CRC-32>:" (xx: 00 none, 01
 * SHA-256, 02 SHA-384, 03 SHA-512). 0 or -EINVAL with a message.
 */
int nvemu_dhchap_key_parse(const char *str, struct nvemu_dhchap_key *key,
			   struct nvemu_error *err);

/* Digest length of a hash ID (0: unknown). */
size_t nvemu_auth_hash_len(uint8_t hash);
/* "ffdhe2048".., "null"; NULL: unknown. Hashes: "sha256".. */
const char *nvemu_auth_dhgroup_name(uint8_t dhgroup);
const char *nvemu_auth_hash_name(uint8_t hash);
/* Size in bytes of a group's public values (0 for the null group). */
size_t nvemu_auth_dhgroup_len(uint8_t dhgroup);

/*
 * The transformed secret: HMAC(secret, nqn || "NVMe-over-Fabrics") with the
 * key's transformation hash, or the secret itself for hash 00. 0 or -errno.
 */
int nvemu_dhchap_key_transform(const struct nvemu_dhchap_key *key, const char *nqn,
			       uint8_t out[NVEMU_DHCHAP_KEY_MAX], size_t *out_len);

/*
 * The response value: HMAC(tkey) over challenge (hl bytes), seqnum (LE32),
 * t_id (LE16), sc_c (1 byte), then role ("HostHost" from the host,
 * "Controller" from the controller), nqn1, a zero byte, nqn2. With a DH
 * group the challenge is first augmented with the session key:
 * HMAC(H(session key), challenge). Exposed for the tests. 0 or -errno.
 */
int nvemu_auth_response(uint8_t hash, const uint8_t *tkey, size_t tkey_len,
			const uint8_t *challenge, const uint8_t *skey, size_t skey_len,
			uint32_t seqnum, uint16_t t_id, uint8_t sc_c, const char *role,
			const char *nqn1, const char *nqn2, uint8_t *out);

/* ---- a transaction on one queue (the controller's side) */

struct nvemu_auth_params {
	const char *hostnqn;
	const char *subnqn;
	const struct nvemu_dhchap_key *host_key; /* required */
	const struct nvemu_dhchap_key *ctrl_key; /* NULL: no bidirectional authentication */
	uint8_t digests;  /* bit n: hash ID n may be chosen; 0: SHA-256/384/512 */
	uint8_t dhgroups; /* bit n: group ID n may be chosen; 0: all */
};

enum nvemu_auth_result {
	NVEMU_AUTH_PENDING, /* no transaction yet, or one under way */
	NVEMU_AUTH_OK,
	NVEMU_AUTH_FAILED,
};

struct nvemu_auth;

/* Copies what p points to. NULL: out of memory or bad parameters. */
struct nvemu_auth *nvemu_auth_create(const struct nvemu_auth_params *p);
void nvemu_auth_destroy(struct nvemu_auth *a);

/*
 * An AUTH_Send payload. Returns the command's NVMe status: 0 when the
 * message was taken (a protocol failure it causes is the next
 * AUTH_Receive's DH-HMAC-CHAP_Failure1), an error for a payload that is no
 * message at all or comes when none is expected.
 */
uint16_t nvemu_auth_send(struct nvemu_auth *a, const void *buf, size_t len);
/* AUTH_Receive with allocation length al: the next message into buf, *len its size. */
uint16_t nvemu_auth_receive(struct nvemu_auth *a, void *buf, size_t al, size_t *len);
/* How the last transaction ended (NVEMU_AUTH_OK also while a re-authentication runs). */
enum nvemu_auth_result nvemu_auth_result(const struct nvemu_auth *a);
/* Whether a transaction is under way (AUTH_Negotiate taken, not finished). */
bool nvemu_auth_busy(const struct nvemu_auth *a);
/* The chosen hash and DH group of the last negotiation; why it failed (0: did not). */
uint8_t nvemu_auth_hash(const struct nvemu_auth *a);
uint8_t nvemu_auth_dhgroup(const struct nvemu_auth *a);
uint8_t nvemu_auth_fail_reason(const struct nvemu_auth *a);

#endif

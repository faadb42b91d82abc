/* SPDX-License-Identifier: MIT */
/*
 * NVMe/TCP over TLS 1.3 with pre-shared keys (NVMe TCP transport 3.6,
 * TP 8011), the target's side, with OpenSSL:
 *
 *  - a host's configured PSK comes in the PSK interchange format
 *    "NVMeTLSkey-1:hh:<base64 of PSK and CRC-32>:" (hh 01: SHA-256, 32
 *    bytes; 02: SHA-384, 48 bytes);
 *  - the host offers the identity "NVMe0Rhh <hostnqn> <subnqn>"; the retained
 *    PSK is HKDF-Expand-Label(HKDF-Extract(0, configured PSK), "HostNQN",
 *    hostnqn, L), the TLS PSK HKDF-Expand-Label(HKDF-Extract(0, retained),
 *    "nvme-tls-psk", identity, L) (RFC 8446 7.1 labels; what libnvme puts in
 *    the Linux host's .nvme keyring for identity version 0);
 *  - TLS 1.3 only, TLS_AES_128_GCM_SHA256 (SHA-256 keys) or
 *    TLS_AES_256_GCM_SHA384 (SHA-384 keys), no certificates, no tickets.
 *
 * The record layer runs on the connection's non-blocking socket: the
 * handshake, SSL_read_ex and SSL_write_ex never wait; what they want
 * (readable, writable) goes to the event loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>

#include "tcp-internal.h"

/* ---- the PSK interchange format and the retained PSK */

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

int tcp_psk_parse(const char *str, struct tcp_psk *psk, struct nvemu_error *err)
{
	uint8_t raw[TCP_PSK_MAX + 4 + 3];
	const char *b64, *end;
	size_t n, pad = 0, want;
	int got;

	memset(psk, 0, sizeof(*psk));
	if (!str || strncmp(str, "NVMeTLSkey-1:", 13))
		return nvemu_error_set(err, -EINVAL, "psk: must start with \"NVMeTLSkey-1:\"");
	if (str[13] != '0' || (str[14] != '1' && str[14] != '2') || str[15] != ':')
		return nvemu_error_set(err, -EINVAL,
				       "psk: hash must be 01 (SHA-256) or 02 (SHA-384), then ':'");
	want = str[14] == '1' ? 32 : 48;
	b64 = str + 16;
	end = strchr(b64, ':');
	if (!end || end[1])
		return nvemu_error_set(err, -EINVAL, "psk: must end with ':'");
	n = (size_t)(end - b64);
	if (n != (want + 4 + 2) / 3 * 4)
		return nvemu_error_set(err, -EINVAL,
				       "psk: base64 part of %zu characters; a %zu byte PSK with its "
				       "CRC is %zu",
				       n, want, (want + 4 + 2) / 3 * 4);
	for (size_t i = 0; i < n; i++) {
		char ch = b64[i];

		if (ch == '=' && i >= n - 2) {
			pad++;
			continue;
		}
		if (pad || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
			return nvemu_error_set(err, -EINVAL, "psk: not valid base64");
	}
	got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got - pad != want + 4)
		return nvemu_error_set(err, -EINVAL, "psk: not valid base64");
	if (crc32_ieee(raw, want) != ((uint32_t)raw[want] | (uint32_t)raw[want + 1] << 8 |
				      (uint32_t)raw[want + 2] << 16 |
				      (uint32_t)raw[want + 3] << 24)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return nvemu_error_set(err, -EINVAL, "psk: CRC mismatch (mistyped key?)");
	}
	psk->hash = (uint8_t)(str[14] - '0');
	psk->len = (uint8_t)want;
	memcpy(psk->key, raw, want);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

/* HKDF (extract with a zero salt, then expand) with an RFC 8446 HkdfLabel as info. */
static int hkdf_label(uint8_t hash, const uint8_t *key, size_t len, const char *label,
		      const void *ctx_data, size_t ctx_len, uint8_t *out)
{
	uint8_t info[2 + 1 + 255 + 1 + 255];
	size_t ll = 6 + strlen(label), il = 0;
	EVP_KDF *kdf;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[5], *p = params;
	int mode = EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, ret = -EIO;

	if (ll > 255 || ctx_len > 255 || (hash != 1 && hash != 2))
		return -EINVAL;
	/* struct HkdfLabel { uint16 length; opaque label<7..255>; opaque context<0..255>; } */
	info[il++] = (uint8_t)(len >> 8);
	info[il++] = (uint8_t)len;
	info[il++] = (uint8_t)ll;
	memcpy(info + il, "tls13 ", 6);
	memcpy(info + il + 6, label, ll - 6);
	il += ll;
	info[il++] = (uint8_t)ctx_len;
	memcpy(info + il, ctx_data, ctx_len);
	il += ctx_len;
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf)
		ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						hash == 1 ? "SHA256" : "SHA384", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, il);
	*p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, len, params) > 0)
		ret = 0;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	OPENSSL_cleanse(info, sizeof(info));
	return ret;
}

int tcp_psk_retained(const struct tcp_psk *psk, const char *hostnqn, uint8_t *out)
{
	return hkdf_label(psk->hash, psk->key, psk->len, "HostNQN", hostnqn, strlen(hostnqn),
			  out);
}

int tcp_psk_tls(const struct tcp_psk *psk, const char *hostnqn, const void *identity,
		size_t identity_len, uint8_t *out)
{
	uint8_t retained[TCP_PSK_MAX];
	int ret = tcp_psk_retained(psk, hostnqn, retained);

	if (!ret)
		ret = hkdf_label(psk->hash, retained, psk->len, "nvme-tls-psk", identity,
				 identity_len, out);
	OPENSSL_cleanse(retained, sizeof(retained));
	return ret;
}

/* ---- the handshake: the host's identity picks its PSK */

/* "NVMe0Rhh <hostnqn> <subnqn>": hash, and the two NQNs copied out; false if not that. */
bool tcp_tls_parse_identity(const unsigned char *id, size_t len, uint8_t *hash, char *hostnqn,
			    char *subnqn)
{
	const char *s = (const char *)id, *sp1, *sp2;
	size_t hl, sl;

	if (len < 12 || memcmp(s, "NVMe0R0", 7) || (s[7] != '1' && s[7] != '2') || s[8] != ' ')
		return false;
	sp1 = memchr(s + 9, ' ', len - 9);
	if (!sp1)
		return false;
	sp2 = sp1 + 1;
	hl = (size_t)(sp1 - (s + 9));
	sl = len - (size_t)(sp2 - s);
	if (!hl || !sl || hl > NVEMU_NQN_MAX || sl > NVEMU_NQN_MAX || memchr(sp2, ' ', sl) ||
	    memchr(s, 0, len))
		return false;
	*hash = (uint8_t)(s[7] - '0');
	memcpy(hostnqn, s + 9, hl);
	hostnqn[hl] = 0;
	memcpy(subnqn, sp2, sl);
	subnqn[sl] = 0;
	return true;
}

static int find_session(SSL *ssl, const unsigned char *id, size_t len, SSL_SESSION **sess)
{
	struct tcp_conn *c = SSL_get_app_data(ssl);
	char hostnqn[NVEMU_NQN_MAX + 1], subnqn[NVEMU_NQN_MAX + 1];
	const struct tcp_host *h = NULL;
	uint8_t hash, key[TCP_PSK_MAX];
	const SSL_CIPHER *cipher;
	SSL_SESSION *s;

	*sess = NULL; /* unknown identity: no PSK, and no certificate either: refused */
	if (!c || !tcp_tls_parse_identity(id, len, &hash, hostnqn, subnqn)) {
		if (c)
			tcp_log(c->t, NVEMU_TCP_LOG_WARN, "%s: TLS: PSK identity not understood",
				c->peer);
		return 1;
	}
	for (unsigned i = 0; i < c->t->nr_subs && !h; i++) {
		struct tcp_subsys *ts = &c->t->subs[i];

		if (strcmp(nvemu_subsys_nqn(ts->s), subnqn))
			continue;
		for (unsigned j = 0; j < ts->nr_ls; j++)
			if (ts->ls[j].l == c->lst)
				for (unsigned k = 0; k < ts->nr_hosts; k++)
					if (!strcmp(ts->hosts[k].nqn, hostnqn) &&
					    ts->hosts[k].psk.len)
						h = &ts->hosts[k];
	}
	if (!h || h->psk.hash != hash) {
		tcp_log(c->t, NVEMU_TCP_LOG_WARN, "%s: TLS: no PSK for host %s on %s%s", c->peer,
			hostnqn, subnqn, h ? " with that hash" : "");
		return 1;
	}
	cipher = SSL_CIPHER_find(ssl, hash == 1 ? (const unsigned char *)"\x13\x01"
						: (const unsigned char *)"\x13\x02");
	s = SSL_SESSION_new();
	if (!cipher || !s || tcp_psk_tls(&h->psk, hostnqn, id, len, key) ||
	    !SSL_SESSION_set1_master_key(s, key, h->psk.len) || !SSL_SESSION_set_cipher(s, cipher) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		OPENSSL_cleanse(key, sizeof(key));
		SSL_SESSION_free(s);
		return 0;
	}
	OPENSSL_cleanse(key, sizeof(key));
	free(c->tls_hostnqn);
	free(c->tls_subnqn);
	c->tls_hostnqn = strdup(hostnqn);
	c->tls_subnqn = strdup(subnqn);
	if (!c->tls_hostnqn || !c->tls_subnqn) {
		SSL_SESSION_free(s);
		return 0;
	}
	*sess = s;
	return 1;
}

int tcp_tls_ctx_init(struct nvemu_tcp_target *t, struct nvemu_error *err)
{
	SSL_CTX *ctx;

	if (t->tls_ctx)
		return 0;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return nvemu_error_set(err, -ENOMEM, "TLS: no context");
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384") ||
	    !SSL_CTX_set_num_tickets(ctx, 0)) {
		SSL_CTX_free(ctx);
		return nvemu_error_set(err, -EINVAL, "TLS: OpenSSL refused TLS 1.3 settings");
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_psk_find_session_callback(ctx, find_session);
	t->tls_ctx = ctx;
	return 0;
}

void tcp_tls_ctx_free(struct nvemu_tcp_target *t)
{
	SSL_CTX_free(t->tls_ctx);
	t->tls_ctx = NULL;
}

int tcp_tls_start(struct tcp_conn *c)
{
	c->ssl = SSL_new(c->t->tls_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -ENOMEM;
	}
	SSL_set_app_data(c->ssl, c);
	SSL_set_accept_state(c->ssl);
	return 0;
}

void tcp_tls_free(struct tcp_conn *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
	free(c->tls_hostnqn);
	free(c->tls_subnqn);
	c->tls_hostnqn = c->tls_subnqn = NULL;
}

int tcp_tls_handshake(struct tcp_conn *c)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->tls_done = true;
		tcp_log(c->t, NVEMU_TCP_LOG_INFO, "%s: TLS 1.3 with host %s (%s)", c->peer,
			c->tls_hostnqn ? c->tls_hostnqn : "?", SSL_get_cipher_name(c->ssl));
		tcp_fd_mod(c, EPOLLIN);
		return 1;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		if (c->events != EPOLLIN)
			tcp_fd_mod(c, EPOLLIN);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		if (c->events != (EPOLLIN | EPOLLOUT))
			tcp_fd_mod(c, EPOLLIN | EPOLLOUT);
		return 0;
	default: {
		unsigned long e = ERR_peek_error();

		tcp_log(c->t, NVEMU_TCP_LOG_WARN, "%s: TLS handshake failed: %s", c->peer,
			e ? ERR_reason_error_string(e) : "connection closed");
		ERR_clear_error();
		return -1;
	}
	}
}

ssize_t tcp_tls_recv(struct tcp_conn *c, void *buf, size_t len)
{
	size_t got = 0;
	int r;

	ERR_clear_error();
	r = SSL_read_ex(c->ssl, buf, len, &got);
	if (r > 0)
		return (ssize_t)got;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

ssize_t tcp_tls_sendv(struct tcp_conn *c, const struct iovec *iov, size_t n)
{
	ssize_t total = 0;

	for (size_t i = 0; i < n; i++) {
		size_t done = 0;
		int r;

		ERR_clear_error();
		r = SSL_write_ex(c->ssl, iov[i].iov_base, iov[i].iov_len, &done);
		if (r > 0) {
			total += (ssize_t)done;
			if (done < iov[i].iov_len)
				break;
			continue;
		}
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			if (total)
				return total;
			errno = EAGAIN;
			return -1;
		default:
			ERR_clear_error();
			if (total)
				return total;
			errno = EPIPE;
			return -1;
		}
	}
	return total;
}

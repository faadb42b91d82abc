#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NVMe/TCP over TLS 1.3 with a PSK: the host side is OpenSSL's own
`openssl s_client -tls1_3 -psk_identity ... -psk ...` (an independent TLS
stack as far as nvemu's code goes) carrying the raw PDUs of nvmetcp.Conn
through a socketpair; the retained and TLS PSKs are derived here with Python's
hmac (RFC 5869 HKDF, RFC 8446 HkdfLabel) as libnvme does for the Linux host. Checks: a secure_channel listener
serves I/O over TLS with the right PSK; the wrong PSK, an unknown identity,
a plain-text ICReq, and a Connect as another host than the identity are
refused; the discovery log marks the listener TLS 1.3 required; the keyring,
save_config and nvmf_subsystem_get_listeners show it."""
import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import struct
import subprocess
import time
import zlib

from nvmetcp import Closed, Conn, Daemon, Tap, status_str

HOST = "nqn.2014-08.org.nvmexpress:uuid:d0d0d0d0-1111-4222-8333-444444444444"
OTHER = "nqn.2014-08.org.nvmexpress:uuid:e0e0e0e0-1111-4222-8333-444444444444"

tap = Tap()
d = Daemon()
SUB = d.subnqn


def interchange(psk, h):
    crc = struct.pack("<I", zlib.crc32(psk) & 0xFFFFFFFF)
    return f"NVMeTLSkey-1:0{h}:{base64.b64encode(psk + crc).decode()}:"


def hkdf_label(key, h, label, context):
    md = hashlib.sha256 if h == 1 else hashlib.sha384
    prk = hmac.new(b"\0" * md().digest_size, key, md).digest()
    label = b"tls13 " + label
    info = struct.pack(">HB", len(key), len(label)) + label + bytes([len(context)]) + context
    out, t, i = b"", b"", 1
    while len(out) < len(key):
        t = hmac.new(prk, t + info + bytes([i]), md).digest()
        out += t
        i += 1
    return out[:len(key)]


def retained(psk, h, hostnqn, sub=None):
    """The TLS PSK of identity version 0: retained PSK, then "nvme-tls-psk" over the identity."""
    r = hkdf_label(psk, h, b"HostNQN", hostnqn.encode())
    return hkdf_label(r, h, b"nvme-tls-psk", ident(hostnqn, h, sub).encode())


def ident(host, h=1, sub=None):
    return f"NVMe0R0{h} {host} {sub or SUB}"


class TlsConn(Conn):
    """A Conn whose bytes go through openssl s_client (TLS 1.3, external PSK)."""

    def __init__(self, port, identity, key, cipher="TLS_AES_128_GCM_SHA256", timeout=5.0):
        self.s, theirs = socket.socketpair()
        self.s.settimeout(timeout)
        self.proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3",
             "-ciphersuites", cipher, "-psk_identity", identity, "-psk", key.hex(),
             "-quiet", "-no_ign_eof", "-nocommands"],
            stdin=theirs, stdout=theirs, stderr=subprocess.PIPE)
        theirs.close()
        self.cid = 0
        self.hdgst = self.ddgst = False
        self.maxh2cdata = 0
        self.cntlid = 0

    def close(self):
        self.s.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def stderr(self):
        self.close()
        return self.proc.stderr.read().decode(errors="replace")


PSK1 = secrets.token_bytes(32)
PSK2 = secrets.token_bytes(48)


def keyfile(name, text):
    path = os.path.join(d.dir, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


try:
    d.rpc("keyring_file_add_key", "-n", "psk1", "-p", keyfile("psk1", interchange(PSK1, 1)))
    d.rpc("keyring_file_add_key", "-n", "psk2", "-p", keyfile("psk2", interchange(PSK2, 2)))
    d.rpc("keyring_file_add_key", "-n", "bad", "-p",
          keyfile("bad", interchange(PSK1, 1)[:-6] + "AAAA=:"))
    d.rpc("nvmf_subsystem_allow_any_host", "--nqn", SUB, "--allow_any_host", "false")
    r = subprocess.run([d.rpc_tool, "-s", d.sock, "nvmf_subsystem_add_host", "--nqn", SUB,
                        "--host", HOST, "--psk", "bad"], capture_output=True, text=True)
    tap.ok(r.returncode != 0 and "psk" in r.stderr + r.stdout,
           "a malformed PSK is refused naming psk", r.stderr)
    d.rpc("nvmf_subsystem_add_host", "--nqn", SUB, "--host", HOST, "--psk", "psk1")
    d.rpc("nvmf_subsystem_add_host", "--nqn", SUB, "--host", OTHER, "--psk", "psk2")
    out = d.rpc("nvmf_subsystem_add_listener", "--nqn", SUB, "-t", "tcp", "-a", "127.0.0.1",
                "--trsvcid", "0", "--secure_channel", "true")
    port = int(out["trsvcid"])
    ls = d.rpc("nvmf_subsystem_get_listeners", "--nqn", SUB)
    tap.ok(any(x.get("secure_channel") and x["address"]["trsvcid"] == str(port) for x in ls),
           "the listener reads back with secure_channel", json.dumps(ls))

    # ---- the right PSK: Connect, enable, write and read over TLS
    c = TlsConn(port, ident(HOST), retained(PSK1, 1, HOST))
    try:
        c.icreq()
        r = c.connect(SUB, HOST)
        ok = r["status"] == 0 and c.enable() == 0
    except Closed as e:
        ok, r = False, str(e)
    tap.ok(ok, "TLS 1.3 (TLS_AES_128_GCM_SHA256, retained PSK): Connect and enable", r)
    q = TlsConn(port, ident(HOST), retained(PSK1, 1, HOST))
    q.icreq()
    r = q.connect(SUB, HOST, qid=1, cntlid=c.cntlid, sqsize=15)
    pattern = secrets.token_bytes(64 * 1024)
    w = q.cmd(0x01, pattern, nsid=1, cdw10=0, cdw12=127)
    rd = q.cmd(0x02, rlen=len(pattern), nsid=1, cdw10=0, cdw12=127)
    tap.ok(r["status"] == 0 and w["status"] == 0 and rd["status"] == 0 and
           bytes(rd["data"]) == pattern, "I/O queue over TLS: 64 KiB written (R2T) and read back",
           status_str(w["status"]), status_str(rd["status"]))
    q.close()
    c.close()

    # ---- a SHA-384 PSK offered under a SHA-256 identity (s_client's -psk is SHA-256 only)
    c = TlsConn(port, ident(OTHER, 1), hkdf_label(retained(PSK2, 2, OTHER)[:32], 1, b"x", b""))
    try:
        c.icreq()
        refused = False
    except Closed:
        refused = True
    tap.ok(refused, "a SHA-256 identity for a host whose PSK is SHA-384: refused")
    c.close()

    # ---- refusals
    c = TlsConn(port, ident(HOST), secrets.token_bytes(32))
    try:
        c.icreq()
        refused = False
    except Closed:
        refused = True
    tap.ok(refused, "a wrong PSK: the handshake fails, no ICResp", c.stderr()[-300:])
    c = TlsConn(port, ident("nqn.2014-08.org.nvmexpress:uuid:nobody"),
                retained(PSK1, 1, "nqn.2014-08.org.nvmexpress:uuid:nobody"))
    try:
        c.icreq()
        refused = False
    except Closed:
        refused = True
    tap.ok(refused, "an identity with no PSK: refused")
    c.close()
    c = TlsConn(port, ident(HOST), retained(PSK1, 1, HOST))
    c.icreq()
    r = c.connect(SUB, OTHER)
    tap.eq(r["status"] & 0x7ff, 0x184,
           "Connect as another host than the TLS identity: Connect Invalid Host")
    c.close()
    p = Conn(port)
    try:
        p.icreq()
        refused = False
    except Closed:
        refused = True
    tap.ok(refused, "a plain-text ICReq to the secure_channel listener: connection closed")
    p.close()

    # ---- the plain listener still works and the discovery log tells them apart
    disc = Conn(d.port)
    disc.icreq()
    disc.connect("nqn.2014-08.org.nvmexpress.discovery", HOST)
    disc.enable()
    lg = bytes(disc.cmd(0x02, rlen=4096, cdw10=0x70 | (1023 << 16))["data"])
    disc.close()
    ents = {}
    for k in range(struct.unpack_from("<Q", lg, 8)[0]):
        e = lg[1024 + 1024 * k:2048 + 1024 * k]
        ents[e[32:64].rstrip(b"\0").decode()] = (e[3] & 3, e[768])
    tap.ok(ents.get(str(port)) == (1, 2) and ents.get(str(d.port)) == (2, 0),
           "discovery log: TLS 1.3 required on the secure listener, none on the plain one",
           ents)
    sc = json.dumps(d.rpc("save_config"))
    tap.ok('"secure_channel": true' in sc and '"psk": "psk1"' in sc and "NVMeTLSkey" not in sc,
           "save_config keeps secure_channel and the PSK name, not the key")
    tap.ok(d.alive(), "nvemud is still running")
    log = d.logtext()
    tap.ok("TLS 1.3 with host" in log and "TLS handshake failed" in log,
           "the log records the TLS sessions and the failed handshakes")
    tap.eq(d.stop(), 0, "nvemud exits cleanly (status 0, no sanitizer report)")
finally:
    d.stop()
tap.done()

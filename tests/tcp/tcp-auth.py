#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""DH-HMAC-CHAP in-band authentication against nvemud, with a host written
here from the specification (Python's hmac/hashlib and pow() for FFDHE;
the RFC 7919 prime is read from `openssl genpkey -genparam`), independent of
nvemu's OpenSSL code: the keyring and nvmf_subsystem_add_host --dhchap_key,
ATR in the Connect response, Authentication Required before it, unidirectional
and bidirectional transactions with the null group and ffdhe2048, a wrong
secret answered with DH-HMAC-CHAP_Failure1, I/O queues, re-authentication,
malformed AUTH_Send payloads, and save_config keeping key names only."""
import base64
import hashlib
import hmac
import json
import os
import secrets
import struct
import subprocess
import zlib

from nvmetcp import DNR, FABRICS, SC_INVALID_FIELD, Conn, Daemon, Tap, status_str

FC_AUTH_SEND, FC_AUTH_RECV = 0x05, 0x06
SECP = 0xE9 << 24 | 1 << 16 | 1 << 8
SC_AUTH_REQUIRED = 0x191
ATR = 1 << 17
HASHES = {1: hashlib.sha256, 2: hashlib.sha384, 3: hashlib.sha512}
HOST = "nqn.2014-08.org.nvmexpress:uuid:a0a0a0a0-1111-4222-8333-444444444444"
HOST2 = "nqn.2014-08.org.nvmexpress:uuid:b0b0b0b0-1111-4222-8333-444444444444"
OPEN = "nqn.2014-08.org.nvmexpress:uuid:c0c0c0c0-1111-4222-8333-444444444444"
IDENTIFY = 0x06

tap = Tap()
d = Daemon()
SUB = d.subnqn


def dhhc1(raw, hmac_id):
    crc = struct.pack("<I", zlib.crc32(raw) & 0xFFFFFFFF)
    return f"DHHC-1:{hmac_id:02d}:{base64.b64encode(raw + crc).decode()}:"


def ffdhe_prime(bits):
    pem = subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                          f"group:ffdhe{bits}"], capture_output=True, check=True).stdout
    out = subprocess.run(["openssl", "asn1parse"], input=pem, capture_output=True,
                         check=True).stdout.decode()
    return int(out.splitlines()[1].rsplit(":", 1)[1], 16)


def transform(raw, hmac_id, nqn):
    if hmac_id == 0:
        return raw
    return hmac.new(raw, nqn.encode() + b"NVMe-over-Fabrics", HASHES[hmac_id]).digest()


def response(hid, tkey, chal, skey, seq, tid, role, n1, n2):
    h = HASHES[hid]
    if skey:
        chal = hmac.new(h(skey).digest(), chal, h).digest()
    msg = (chal + struct.pack("<IHB", seq, tid, 0) + role + n1.encode() + b"\0" +
           n2.encode())
    return hmac.new(tkey, msg, h).digest()


def auth_send(c, msg, secp=SECP, tl=None):
    return c.cmd(FABRICS, msg, inline=True, nsid=FC_AUTH_SEND, cdw10=secp,
                 cdw11=len(msg) if tl is None else tl, sgl_len=len(msg))


def auth_recv(c, al=4096):
    return c.cmd(FABRICS, rlen=al, nsid=FC_AUTH_RECV, cdw10=SECP, cdw11=al)


def negotiate(tid, hashes, groups):
    desc = bytes([1, 0, len(hashes), len(groups)]) + bytes(hashes).ljust(30, b"\0") + \
        bytes(groups).ljust(30, b"\0")
    return struct.pack("<BBHHBB", 0, 0, 0, tid, 0, 1) + desc


def authenticate(c, hostnqn, key, hmac_id, ctrl_key=None, hashes=(1,), groups=(0,), tid=7,
                 bad_ctrl_check=None):
    """One transaction; returns (outcome, detail): 'ok', 'failure1', or an error."""
    r = auth_send(c, negotiate(tid, hashes, groups))
    if r["status"] != 0:
        return "negotiate " + status_str(r["status"]), None
    r = auth_recv(c)
    if r["status"] != 0:
        return "challenge " + status_str(r["status"]), None
    m = bytes(r["data"])
    if m[1] == 0xF1:
        return "failure1", m[7]
    typ, aid, _, rtid, hl, _, hid, dhg, dhvlen, seq = struct.unpack_from("<BBHHBBBBHI", m)
    if (typ, aid, rtid) != (1, 1, tid) or hid not in hashes or dhg not in groups:
        return f"bad challenge {m[:16].hex()}", None
    c1 = m[16:16 + hl]
    skey, pub = b"", b""
    if dhg:
        bits = {1: 2048, 2: 3072, 3: 4096, 4: 6144, 5: 8192}[dhg]
        p = PRIMES.setdefault(bits, ffdhe_prime(bits))
        x = secrets.randbelow(p - 3) + 2
        ctrl_pub = int.from_bytes(m[16 + hl:16 + hl + dhvlen], "big")
        pub = pow(2, x, p).to_bytes(bits // 8, "big")
        skey = pow(ctrl_pub, x, p).to_bytes(bits // 8, "big")
    r1 = response(hid, transform(key, hmac_id, hostnqn), c1, skey, seq, tid, b"HostHost",
                  hostnqn, SUB)
    c2, s2 = (secrets.token_bytes(hl), 0x1234) if ctrl_key else (b"\0" * hl, 0)
    reply = struct.pack("<BBHHBBBBHI", 1, 2, 0, tid, hl, 0, 1 if ctrl_key else 0, 0,
                        len(pub), s2) + r1 + c2 + pub
    r = auth_send(c, reply)
    if r["status"] != 0:
        return "reply " + status_str(r["status"]), None
    r = auth_recv(c)
    m = bytes(r["data"])
    if r["status"] != 0:
        return "success1 " + status_str(r["status"]), None
    if m[1] == 0xF1:
        return "failure1", m[7]
    if m[1] != 3:
        return f"bad success1 {m.hex()}", None
    if ctrl_key:
        want = response(hid, transform(ctrl_key[0], ctrl_key[1], SUB), c2, skey, s2, tid,
                        b"Controller", SUB, hostnqn)
        if m[8] != 1 or m[16:16 + hl] != want:
            auth_send(c, struct.pack("<BBHHBB", 1, 0xF0, 0, tid, 1, 1))
            return "controller response wrong", None
        r = auth_send(c, struct.pack("<BBHH", 1, 4, 0, tid) + b"\0" * 10)
        if r["status"] != 0:
            return "success2 " + status_str(r["status"]), None
    return "ok", (hid, dhg)


def identify(c):
    return c.cmd(IDENTIFY, rlen=4096, cdw10=1)["status"]


PRIMES = {}
kdir = d.dir
KEY = secrets.token_bytes(32)
KEY2 = secrets.token_bytes(48)
CKEY = secrets.token_bytes(64)


def keyfile(name, text, mode=0o600):
    path = os.path.join(kdir, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return path


def rpc_err(method, *args):
    r = subprocess.run([d.rpc_tool, "-s", d.sock, method, *args], capture_output=True,
                       text=True)
    return r.returncode, r.stdout + r.stderr


try:
    # ---- keyring
    rc, out = rpc_err("keyring_file_add_key", "-n", "k0", "-p",
                      keyfile("open.key", dhhc1(KEY, 1), 0o644))
    tap.ok(rc != 0 and "chmod 0600" in out, "a key file others can read is refused", out)
    d.rpc("keyring_file_add_key", "-n", "k0", "-p", keyfile("k0.key", dhhc1(KEY, 1)))
    d.rpc("keyring_file_add_key", "-n", "k2", "-p", keyfile("k2.key", dhhc1(KEY2, 2)))
    d.rpc("keyring_file_add_key", "-n", "c2", "-p", keyfile("c2.key", dhhc1(CKEY, 3)))
    d.rpc("keyring_file_add_key", "-n", "bad", "-p", keyfile("bad.key", "DHHC-1:01:AAAA:"))
    keys = d.rpc("keyring_get_keys")
    tap.ok(sorted(k["name"] for k in keys) == ["bad", "c2", "k0", "k2"] and
           "DHHC" not in json.dumps(keys), "keyring_get_keys lists names and paths, no secret",
           json.dumps(keys))
    d.rpc("nvmf_subsystem_allow_any_host", "--nqn", SUB, "--allow_any_host", "false")
    rc, out = rpc_err("nvmf_subsystem_add_host", "--nqn", SUB, "--host", HOST,
                      "--dhchap_key", "nokey")
    tap.ok(rc != 0 and "-32000" in out and "dhchap_key" in out,
           "add_host with an unknown key: not found, naming dhchap_key", out)
    rc, out = rpc_err("nvmf_subsystem_add_host", "--nqn", SUB, "--host", HOST,
                      "--dhchap_key", "bad")
    tap.ok(rc != 0 and "-32602" in out and "dhchap_key" in out,
           "add_host with a malformed secret: invalid params, naming dhchap_key", out)
    rc, out = rpc_err("nvmf_subsystem_add_host", "--nqn", SUB, "--host", HOST,
                      "--dhchap_ctrlr_key", "c2")
    tap.ok(rc != 0 and "dhchap_ctrlr_key" in out, "a controller key alone is refused", out)
    d.rpc("nvmf_subsystem_add_host", "--nqn", SUB, "--host", HOST, "--dhchap_key", "k0")
    d.rpc("nvmf_subsystem_add_host", "--nqn", SUB, "--host", HOST2, "--dhchap_key", "k2",
          "--dhchap_ctrlr_key", "c2")
    d.rpc("nvmf_subsystem_add_host", "--nqn", SUB, "--host", OPEN)
    rc, out = rpc_err("keyring_file_remove_key", "-n", "k0")
    tap.ok(rc != 0 and "-32002" in out, "a key a host uses cannot be removed", out)

    # ---- unidirectional, null group
    c = Conn(d.port)
    c.icreq()
    r = c.connect(SUB, HOST)
    tap.ok(r["status"] == 0 and r["dw0"] & ATR, "Connect of a host with a key asks for "
           "authentication (ATR)", f"{status_str(r['status'])} dw0 {r['dw0']:#x}")
    st = c.prop_get(0x1C)[0]
    tap.eq(st, SC_AUTH_REQUIRED | DNR, "Property Get before authentication: Authentication "
           "Required")
    st = identify(c)
    tap.eq(st, SC_AUTH_REQUIRED | DNR, "Identify before authentication: Authentication Required")
    res, det = authenticate(c, HOST, KEY, 1, hashes=(1,), groups=(0,))
    tap.ok(res == "ok" and det == (1, 0), "SHA-256, null group: authenticated", res, det)
    tap.eq(c.enable(), 0, "the controller is enabled after authentication")
    tap.eq(identify(c), 0, "Identify after authentication succeeds")
    res, det = authenticate(c, HOST, KEY, 1, hashes=(1, 2, 3), groups=(0, 1), tid=9)
    tap.ok(res == "ok" and det == (3, 1),
           "re-authentication on the admin queue (the target picks SHA-512, ffdhe2048)", res,
           det)
    io = Conn(d.port)
    io.icreq()
    r = io.connect(SUB, HOST, qid=1, cntlid=c.cntlid, sqsize=15)
    tap.ok(r["status"] == 0 and r["dw0"] & ATR, "an I/O queue must authenticate too",
           status_str(r["status"]))
    tap.eq(io.cmd(0x02, rlen=512, nsid=1)["status"], SC_AUTH_REQUIRED | DNR,
           "Read on the unauthenticated I/O queue: Authentication Required")
    res, det = authenticate(io, HOST, KEY, 1, hashes=(2,), groups=(3,))
    tap.ok(res == "ok" and det == (2, 3), "I/O queue: SHA-384, ffdhe4096", res, det)
    tap.eq(io.cmd(0x02, rlen=512, nsid=1)["status"], 0, "Read after authentication succeeds")
    io.close()
    c.close()

    # ---- a wrong secret
    c = Conn(d.port)
    c.icreq()
    c.connect(SUB, HOST)
    res, det = authenticate(c, HOST, secrets.token_bytes(32), 1)
    tap.ok(res == "failure1" and det == 1, "a wrong secret: DH-HMAC-CHAP_Failure1 (failed)",
           res, det)
    tap.eq(identify(c), SC_AUTH_REQUIRED | DNR, "after the failure commands are still refused")
    res, det = authenticate(c, HOST, KEY, 0)
    tap.ok(res == "failure1", "the secret without its transformation hash fails too", res)
    c.close()

    # ---- negotiation failures
    c = Conn(d.port)
    c.icreq()
    c.connect(SUB, HOST)
    res, det = authenticate(c, HOST, KEY, 1, hashes=(7,))
    tap.ok(res == "failure1" and det == 4, "no usable hash: Failure1, hash unusable", res, det)
    res, det = authenticate(c, HOST, KEY, 1, groups=(9,))
    tap.ok(res == "failure1" and det == 5, "no usable DH group: Failure1, group unusable", res,
           det)
    r = auth_send(c, negotiate(1, (1,), (0,)), secp=0xEA << 24 | 1 << 16 | 1 << 8)
    tap.eq(r["status"], SC_INVALID_FIELD | DNR, "AUTH_Send with another SECP: Invalid Field")
    r = c.cmd(FABRICS, rlen=8192, nsid=FC_AUTH_RECV, cdw10=SECP, cdw11=8192)
    tap.eq(r["status"], SC_INVALID_FIELD | DNR, "AUTH_Receive of 8 KiB: Invalid Field")
    r = auth_send(c, b"\0\0\0\0")
    tap.eq(r["status"], SC_INVALID_FIELD | DNR, "a 4-byte AUTH_Send: Invalid Field")
    r = auth_send(c, struct.pack("<BBHHBB", 0, 0, 0, 3, 0, 200) + b"\x01" * 64)
    r2 = auth_recv(c)
    tap.ok(r["status"] == 0 and bytes(r2["data"])[1:2] == b"\xf1",
           "a negotiate claiming 200 descriptors in 72 bytes: Failure1", r2)
    c.close()

    # ---- bidirectional
    c = Conn(d.port)
    c.icreq()
    c.connect(SUB, HOST2)
    res, det = authenticate(c, HOST2, KEY2, 2, ctrl_key=(CKEY, 3), hashes=(1,), groups=(1,))
    tap.ok(res == "ok", "bidirectional (SHA-256, ffdhe2048): the controller's response checks",
           res, det)
    tap.eq(c.enable(), 0, "enabled after bidirectional authentication")
    c.close()
    c = Conn(d.port)
    c.icreq()
    c.connect(SUB, HOST)
    res, det = authenticate(c, HOST, KEY, 1, ctrl_key=(CKEY, 3))
    tap.ok(res == "failure1", "a host asking a controller with no controller key: Failure1",
           res)
    c.close()

    # ---- a host without a key is not asked
    c = Conn(d.port)
    c.icreq()
    r = c.connect(SUB, OPEN)
    tap.ok(r["status"] == 0 and not r["dw0"] & ATR and c.enable() == 0 and identify(c) == 0,
           "a host added without a key connects without authentication", r)
    r = auth_send(c, negotiate(1, (1,), (0,)))
    tap.eq(r["status"], SC_INVALID_FIELD | DNR, "AUTH_Send from it: Invalid Field")
    c.close()

    # ---- what the target may choose
    rc, out = rpc_err("nvmf_set_config", "--dhchap_dhgroups", "null,ffdhe1024")
    tap.ok(rc != 0 and "dhchap_dhgroups" in out and "ffdhe1024" in out,
           "nvmf_set_config with an unknown group: invalid params naming it", out)
    d.rpc("nvmf_set_config", "--dhchap_digests", "sha256,sha384", "--dhchap_dhgroups",
          "null,ffdhe3072")
    c = Conn(d.port)
    c.icreq()
    c.connect(SUB, HOST)
    res, det = authenticate(c, HOST, KEY, 1, hashes=(1, 2, 3), groups=(0, 1, 2, 5))
    tap.ok(res == "ok" and det == (2, 2),
           "nvmf_set_config limits the choice (SHA-384, ffdhe3072 of all offered)", res, det)
    c.close()

    # ---- configuration
    cfg = json.dumps(d.rpc("save_config"))
    tap.ok('"dhchap_dhgroups": "null,ffdhe3072"' in cfg, "save_config keeps nvmf_set_config")
    tap.ok('"keyring_file_add_key"' in cfg and '"dhchap_ctrlr_key": "c2"' in cfg and
           "DHHC" not in cfg, "save_config keeps the keyring and key names, no secret")
    subs = json.dumps(d.rpc("nvmf_get_subsystems", "--nqn", SUB))
    tap.ok('"dhchap_key": "k2"' in subs, "nvmf_get_subsystems shows the hosts' key names")
    d.rpc("nvmf_subsystem_remove_host", "--nqn", SUB, "--host", HOST)
    rc, out = rpc_err("keyring_file_remove_key", "-n", "k0")
    tap.ok(rc == 0, "the key can be removed once no host uses it", out)
    tap.ok(d.alive(), "nvemud is still running")
    log = d.logtext()
    tap.ok("authentication failed" in log and KEY.hex() not in log,
           "the log records the failures and no secret")
    tap.eq(d.stop(), 0, "nvemud exits cleanly (status 0, no sanitizer report)")
finally:
    d.stop()
tap.done()

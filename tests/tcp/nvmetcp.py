# SPDX-License-Identifier: MIT
"""A small raw NVMe/TCP host for regression tests (Python standard library
only): PDUs built by hand, so a test can send what no real host would.
Also: TAP output, and starting a private nvemud or nvemu-tcp-target on a
free loopback port. Only 127.0.0.1 is ever targeted."""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

# PDU types
ICREQ, ICRESP, H2C_TERM, C2H_TERM, CMD, RSP, H2C_DATA, C2H_DATA, R2T = 0, 1, 2, 3, 4, 5, 6, 7, 9
F_LAST, F_SUCCESS = 1 << 2, 1 << 3
SGL_INCAPSULE, SGL_TRANSPORT = 0x01, 0x5A
PSDT_SGL = 0x40  # SGLs, MPTR a single buffer: what Linux sends

FABRICS = 0x7F
FC_PROP_SET, FC_CONNECT, FC_PROP_GET, FC_DISCONNECT = 0x00, 0x01, 0x04, 0x08
DISC_NQN = "nqn.2014-08.org.nvmexpress.discovery"

# Status as the CQE carries it >> 1: SC bits 7:0, SCT 10:8, DNR bit 14.
DNR = 1 << 14
SC_SUCCESS = 0
SC_INVALID_OPCODE = 0x01
SC_INVALID_FIELD = 0x02
SC_SEQ_ERROR = 0x0C
SC_SGL_LEN = 0x0F  # Data SGL Length Invalid
SC_INVALID_NS = 0x0B
SC_CONNECT_INVALID_PARAM = 0x182
SC_CONNECT_INVALID_HOST = 0x184

# Offsets of the Connect data fields (IPO with IATTR set)
CD_HOSTID, CD_CNTLID, CD_SUBNQN, CD_HOSTNQN = 0, 16, 256, 512
IATTR_DATA = 1 << 16


def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc


class Tap:
    """TAP output: ok/not ok lines, the plan at the end, exit 1 on failure."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, *diag):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {desc}", flush=True)
        else:
            self.failed += 1
            print(f"not ok {self.n} - {desc}", flush=True)
            for d in diag:
                self.diag(d)
        return cond

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, f"got:  {got!r}", f"want: {want!r}")

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            print(f"# {line}", flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed or not self.n else 0)


def _tool(var):
    p = os.environ.get(var, "")
    if not p or not os.access(p, os.X_OK):
        # A missing tool is a failure, never a skip.
        print("1..1")
        print(f"not ok 1 - {var} not set or not executable")
        sys.exit(1)
    return p


class Daemon:
    """A private process serving NVMe/TCP on 127.0.0.1, a free port."""

    def __init__(self, kind="nvemud", args=(), preexec=None):
        self.dir = tempfile.mkdtemp(prefix="nvemu-tcp-test.")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.log = open(self.log_path, "w+b")
        self.kind = kind
        if kind == "nvemud":
            self.rpc_tool = _tool("NVEMU_RPC")
            self.sock = os.path.join(self.dir, "sock")
            # NVEMUD_TEST_ARGS: the same tests against another setup (--reactors 2).
            extra = os.environ.get("NVEMUD_TEST_ARGS", "").split()
            cmd = [_tool("NVEMUD"), "-r", self.sock, "-l", "127.0.0.1:0",
                   "-m", os.path.join(self.dir, "mctp.sock"), "-u", "none", *extra, *args]
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log,
                                         preexec_fn=preexec)
            self.port = self._wait_nvemud()
            self.subnqn = "nqn.2014-08.io.nvemu:default"
        else:
            cmd = [_tool("TCP_TARGET"), "-a", "127.0.0.1", "-s", "0", *args]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log,
                                         preexec_fn=preexec)
            line = self.proc.stdout.readline().decode()
            if not line.startswith("ready "):
                raise RuntimeError(f"nvemu-tcp-target did not start: {line!r} {self.logtext()}")
            self.subnqn = line.split()[1]
            self.port = int(line.split()[2].rsplit(":", 1)[1])
        self.pid = self.proc.pid

    def _wait_nvemud(self):
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"nvemud exited: {self.logtext()}")
            if os.path.exists(self.sock):
                try:
                    out = self.rpc("nvmf_subsystem_get_listeners", "--nqn",
                                   "nqn.2014-08.io.nvemu:default")
                    return int(out[0]["address"]["trsvcid"])
                except (RuntimeError, ValueError, KeyError, IndexError):
                    pass
            time.sleep(0.05)
        raise RuntimeError("nvemud did not come up")

    def rpc(self, method, *args, check=True):
        r = subprocess.run([self.rpc_tool, "-s", self.sock, "-t", "10", method, *args],
                           capture_output=True, text=True)
        if check and r.returncode:
            raise RuntimeError(f"{method}: {r.stderr.strip()}")
        if r.returncode:
            return None
        return json.loads(r.stdout) if r.stdout.strip() else None

    def alive(self):
        return self.proc.poll() is None

    def logtext(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def cpu_s(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        """SIGTERM; returns the exit status (a sanitizer report makes it non-zero)
        and prints the log's end when that is not 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        if rc:
            for line in self.logtext()[-3000:].splitlines():
                print(f"# {line}")
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class Closed(Exception):
    pass


class Conn:
    """One NVMe/TCP queue (a socket) of a raw host."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.cid = 0
        self.hdgst = self.ddgst = False
        self.maxh2cdata = 0
        self.cntlid = 0

    def close(self):
        self.s.close()

    def send(self, b):
        self.s.sendall(b)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                d = self.s.recv(n - len(buf))
            except (ConnectionResetError, socket.timeout) as e:
                raise Closed(str(e))
            if not d:
                raise Closed("EOF")
            buf += d
        return buf

    def closed_within(self, seconds):
        """True when the target closes the socket (EOF/reset) within seconds;
        PDUs (a TermReq) arriving meanwhile are skipped."""
        end = time.time() + seconds
        while time.time() < end:
            self.s.settimeout(max(0.05, end - time.time()))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not d:
                return True
        return False

    def icreq(self, hdgst=False, ddgst=False):
        pdu = struct.pack("<BBBBIHBBI112x", ICREQ, 0, 128, 0, 128, 0, 0,
                          (1 if hdgst else 0) | (2 if ddgst else 0), 0)
        self.send(pdu)
        t, hdr, _ = self.recv_pdu()
        if t != ICRESP:
            raise Closed(f"ICResp expected, got type {t}")
        self.hdgst, self.ddgst = hdgst, ddgst
        self.maxh2cdata = struct.unpack_from("<I", hdr, 12)[0]
        return self.maxh2cdata

    def send_pdu(self, hdr, data=b""):
        """hdr: the PDU header with its CH (HLEN, PDO, PLEN filled here)."""
        hlen = len(hdr)
        flags = hdr[1] | (1 if self.hdgst else 0) | (2 if data and self.ddgst else 0)
        off = hlen + (4 if self.hdgst else 0)
        pdo = off if data else 0
        plen = off + len(data) + (4 if data and self.ddgst else 0)
        h = bytearray(hdr)
        struct.pack_into("<BBBBI", h, 0, h[0], flags, hlen, pdo, plen)
        out = bytes(h)
        if self.hdgst:
            out += struct.pack("<I", crc32c(out) ^ 0xFFFFFFFF)
        out += data
        if data and self.ddgst:
            out += struct.pack("<I", crc32c(data) ^ 0xFFFFFFFF)
        self.send(out)

    def recv_pdu(self):
        """(type, header bytes, data bytes)"""
        ch = self.recv_exact(8)
        t, flags, hlen, pdo, plen = struct.unpack("<BBBBI", ch)
        rest = self.recv_exact(plen - 8)
        pdu = ch + rest
        if t in (C2H_TERM, ICRESP):
            return t, pdu, b""
        hd = 4 if flags & 1 else 0
        hdr = pdu[:hlen]
        data = b""
        if pdo:
            dd = 4 if flags & 2 else 0
            data = pdu[pdo:plen - dd]
        else:
            data = pdu[hlen + hd:]
        return t, hdr, data

    def sqe(self, opc, nsid=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0,
            sgl_len=0, sgl_type=SGL_TRANSPORT, flags=PSDT_SGL, cid=None, dptr1=0):
        if cid is None:
            self.cid = (self.cid + 1) & 0xFFFF
            cid = self.cid
        dptr2 = (sgl_type << 56) | sgl_len
        return struct.pack("<BBHIIIQQQIIIIII", opc, flags, cid, nsid, 0, 0, 0, dptr1, dptr2,
                           cdw10, cdw11, cdw12, cdw13, cdw14, cdw15), cid

    def send_cmd(self, sqe, inline=b""):
        self.send_pdu(struct.pack("<BBBBI", CMD, 0, 0, 0, 0) + sqe, inline)

    def wait_rsp(self, cid, out=b"", expect_no_r2t=False):
        """Serve R2Ts from out, collect C2HData; returns a dict with status,
        dw0, dw1, data, r2ts. status None: the connection broke (term: the
        TermReq header if one came)."""
        res = {"status": None, "dw0": 0, "dw1": 0, "data": bytearray(), "r2ts": 0,
               "term": None}
        try:
            while True:
                t, hdr, data = self.recv_pdu()
                if t == R2T:
                    res["r2ts"] += 1
                    if expect_no_r2t:
                        return res
                    cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", hdr, 8)
                    pos = r2to
                    while pos < r2to + r2tl:
                        n = min(self.maxh2cdata, r2to + r2tl - pos)
                        last = F_LAST if pos + n == r2to + r2tl else 0
                        h = struct.pack("<BBBBIHHIII", H2C_DATA, last, 0, 0, 0, cccid, ttag,
                                        pos, n, 0)
                        self.send_pdu(h, out[pos:pos + n])
                        pos += n
                elif t == C2H_DATA:
                    cccid, _, datao, datal = struct.unpack_from("<HHII", hdr, 8)
                    d = res["data"]
                    if len(d) < datao + datal:
                        d.extend(b"\0" * (datao + datal - len(d)))
                    d[datao:datao + datal] = data
                    if hdr[1] & F_SUCCESS:
                        res["status"] = 0
                        return res
                elif t == RSP:
                    dw0, dw1, sqhd, sqid, rcid, st = struct.unpack_from("<IIHHHH", hdr, 8)
                    if rcid != cid:
                        continue  # another command's response
                    res.update(status=st >> 1, dw0=dw0, dw1=dw1)
                    return res
                elif t == C2H_TERM:
                    res["term"] = hdr
                    return res
                else:
                    return res
        except Closed:
            return res

    def cmd(self, opc, out=b"", inline=False, rlen=0, **kw):
        """Run a command; out goes to the controller (in-capsule when inline),
        rlen bytes are expected back."""
        n = len(out) if out else rlen
        kw.setdefault("sgl_type", SGL_INCAPSULE if out and inline else SGL_TRANSPORT)
        kw.setdefault("sgl_len", n)
        sqe, cid = self.sqe(opc, **kw)
        self.send_cmd(sqe, out if inline else b"")
        return self.wait_rsp(cid, out)

    @staticmethod
    def connect_data(subnqn, hostnqn, cntlid=0xFFFF, hostid=b"\x11" * 16):
        def field(v):
            if isinstance(v, str):
                v = v.encode()
            return v[:256].ljust(256, b"\0")
        return (hostid + struct.pack("<H", cntlid) + b"\0" * 238 + field(subnqn) +
                field(hostnqn) + b"\0" * 256)

    def connect(self, subnqn, hostnqn, qid=0, cntlid=0xFFFF, sqsize=31, kato=0,
                hostid=b"\x11" * 16):
        data = self.connect_data(subnqn, hostnqn, cntlid, hostid)
        r = self.cmd(FABRICS, data, inline=True, nsid=FC_CONNECT, cdw10=qid << 16,
                     cdw11=sqsize, cdw12=kato)
        if r["status"] == 0:
            self.cntlid = r["dw0"] & 0xFFFF
        return r

    def prop_get(self, off, wide=False):
        r = self.cmd(FABRICS, nsid=FC_PROP_GET, cdw10=1 if wide else 0, cdw11=off)
        return r["status"], r["dw0"] | r["dw1"] << 32

    def prop_set(self, off, val):
        return self.cmd(FABRICS, nsid=FC_PROP_SET, cdw11=off, cdw12=val)["status"]

    def enable(self):
        # CC: EN, IOSQES 6, IOCQES 4
        st = self.prop_set(0x14, 1 | 6 << 16 | 4 << 20)
        if st:
            return st
        for _ in range(100):
            st, v = self.prop_get(0x1C)
            if st or v & 1:
                return st
            time.sleep(0.01)
        return -1


def admin(port, subnqn, hostnqn, kato=0, hostid=b"\x11" * 16):
    """ICReq, admin Connect, enable: a live association."""
    c = Conn(port)
    c.icreq()
    r = c.connect(subnqn, hostnqn, kato=kato, hostid=hostid)
    if r["status"] != 0:
        raise RuntimeError(f"admin Connect failed: {r}")
    if c.enable():
        raise RuntimeError("enabling the controller failed")
    return c


def io_queue(port, subnqn, hostnqn, cntlid, qid=1, sqsize=127, hostid=b"\x11" * 16):
    c = Conn(port)
    c.icreq()
    r = c.connect(subnqn, hostnqn, qid=qid, cntlid=cntlid, sqsize=sqsize, hostid=hostid)
    if r["status"] != 0:
        raise RuntimeError(f"I/O Connect failed: {r}")
    return c


def status_str(st):
    if st is None:
        return "connection broken"
    return f"SCT {st >> 8 & 7:x}h SC {st & 0xff:02x}h{' DNR' if st & DNR else ''}"

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Descriptors and time: sockets that never finish ICReq + Connect are
closed after connect_timeout_ms; a command whose H2C data never comes ends
the connection with a C2HTermReq after data_timeout_ms; a discovery
controller with KATO 0 goes after disc_kato_ms idle; at the descriptor limit
the accept loop backs off (no CPU spin, one log line) and recovers."""
import resource
import socket
import struct
import time

from nvmetcp import C2H_TERM, DISC_NQN, R2T, Conn, Daemon, Tap, admin, io_queue

tap = Tap()
HOST = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555"
d = Daemon("target", ["-t", "1000", "-T", "1000", "-K", "1500"])
SUB = d.subnqn
try:
    raw = socket.create_connection(("127.0.0.1", d.port))
    ic = Conn(d.port)
    ic.icreq()
    live = admin(d.port, SUB, HOST)
    t0 = time.time()
    raw_c = Conn.__new__(Conn)
    raw_c.s = raw
    tap.ok(raw_c.closed_within(4), "a socket that never sends ICReq is closed")
    tap.ok(ic.closed_within(4), "a socket that sent ICReq but never Connect is closed")
    tap.ok(time.time() - t0 >= 0.9, "... not before connect_timeout_ms (1 s)")
    st, _ = live.prop_get(0x1C)
    tap.eq(st, 0, "a connected admin queue (KATO 0) is still served after the timeout")

    q = io_queue(d.port, SUB, HOST, live.cntlid)
    sqe, cid = q.sqe(0x01, nsid=3, cdw10=0, cdw12=7, sgl_len=4096)
    q.send_cmd(sqe)
    t, _, _ = q.recv_pdu()
    tap.eq(t, R2T, "a write gets its R2T")
    t0 = time.time()
    q.s.settimeout(5)
    try:
        t, hdr, _ = q.recv_pdu()
    except Exception as e:
        t, hdr = None, repr(e).encode()
    tap.ok(t == C2H_TERM and struct.unpack_from("<H", hdr, 8)[0] == 2,
           "no H2CData for it: C2HTermReq (PDU Sequence Error)", repr(hdr[:12]))
    tap.ok(0.9 <= time.time() - t0 < 4, f"... after data_timeout_ms ({time.time() - t0:.1f} s)")
    q.close()
    live.close()

    disc = Conn(d.port)
    disc.icreq()
    r = disc.connect(DISC_NQN, HOST, kato=0)
    tap.eq(r["status"], 0, "discovery Connect with KATO 0")
    disc.prop_set(0x14, 1)
    t0 = time.time()
    tap.ok(disc.closed_within(5), "an idle discovery controller with KATO 0 is dropped")
    tap.ok(time.time() - t0 >= 1.4, "... after disc_kato_ms (1.5 s), not before")
    tap.ok(d.alive(), "the target is still running")
except Exception as e:  # the target died or broke the protocol
    tap.ok(False, f"test aborted: {e!r}", d.logtext()[-2000:])
finally:
    tap.eq(d.stop(), 0, "the target exits cleanly (status 0, no sanitizer report)")


# At the descriptor limit
def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))


d = Daemon("target", ["-t", "60000"], preexec=low_fd_limit)
socks = []
try:
    for _ in range(40):
        socks.append(socket.create_connection(("127.0.0.1", d.port)))
    time.sleep(0.3)
    cpu0 = d.cpu_s()
    time.sleep(2.0)
    cpu = d.cpu_s() - cpu0
    tap.ok(cpu < 0.5, f"at the descriptor limit the target does not spin ({cpu:.2f} s CPU in 2 s)")
    lines = [x for x in d.logtext().splitlines() if "accept" in x]
    tap.ok(1 <= len(lines) <= 2, f"one rate-limited log line, not one per attempt ({len(lines)})",
           *lines[:5])
    for s in socks:
        s.close()
    socks = []
    time.sleep(2.5)
    try:
        c = admin(d.port, d.subnqn, HOST)
        st, _ = c.prop_get(0x1C)
        c.close()
    except Exception as e:
        st = repr(e)
    tap.eq(st, 0, "descriptors freed: new connections are accepted again")
    tap.ok(d.alive(), "the target is still running")
except Exception as e:  # the target died or broke the protocol
    tap.ok(False, f"test aborted: {e!r}", d.logtext()[-2000:])
finally:
    for s in socks:
        s.close()
    tap.eq(d.stop(), 0, "the target exits cleanly (status 0, no sanitizer report)")
tap.done()

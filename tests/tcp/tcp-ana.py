#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ANA and namespace masking over real NVMe/TCP associations (raw client):
two listeners of one subsystem with ana_reporting are two paths with their
own ANA states; the ANA log page, the ANA Change event and the Path Related
statuses of I/O follow nvmf_subsystem_listener_set_ana_state; a namespace
created with no_auto_visible is attached only to the associations of hosts
added with nvmf_ns_add_host; the host controllers are reachable by name
(nvme_controller_list, _iostat, _debug_get, _suspend, _resume)."""

import struct

from nvmetcp import Conn, Daemon, Tap, admin, io_queue, status_str

tap = Tap()
d = Daemon()
NQN = "nqn.2024-01.io.nvemu:mp"
HOST1 = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555"
HOST2 = "nqn.2014-08.org.nvmexpress:uuid:66666666-7777-4888-9999-aaaaaaaaaaaa"
ID1, ID2 = b"\x11" * 16, b"\x22" * 16
GET_LOG, IDENTIFY, SET_FEAT, AER = 0x02, 0x06, 0x09, 0x0C
PATH = 3 << 8


def ana_log(c, rgo=False):
    n = 4096
    r = c.cmd(GET_LOG, rlen=n, nsid=0xFFFFFFFF,
              cdw10=0x0C | (1 << 8 if rgo else 0) | ((n // 4 - 1) << 16))
    if r["status"] != 0:
        return None
    b = bytes(r["data"])
    chg, ngrps = struct.unpack_from("<QH", b, 0)
    off, groups = 16, []
    for _ in range(ngrps):
        gid, nn, gchg, state = struct.unpack_from("<IIQB", b, off)
        nsids = list(struct.unpack_from(f"<{nn}I", b, off + 32))
        groups.append((gid, state, nsids))
        off += 32 + 4 * nn
    return chg, groups


def active_ns(c):
    r = c.cmd(IDENTIFY, rlen=4096, cdw10=2)
    ids = struct.unpack_from("<1024I", bytes(r["data"]).ljust(4096, b"\0"))
    return [i for i in ids if i]


def send_aer(c):
    sqe, cid = c.sqe(AER, sgl_len=0)
    c.send_cmd(sqe)
    return cid


def set_state(port, state, grp=1):
    d.rpc("nvmf_subsystem_listener_set_ana_state", "--nqn", NQN, "--traddr", "127.0.0.1",
          "--trsvcid", str(port), "--ana_state", state, "--anagrpid", str(grp))


try:
    d.rpc("nvme_subsystem_create", "--nqn", NQN, "--ana_reporting", "true")
    d.rpc("bdev_malloc_create", "-b", "M1", "--num_blocks", "2048")
    d.rpc("bdev_malloc_create", "-b", "M2", "--num_blocks", "2048")
    d.rpc("nvme_namespace_create", "--nqn", NQN, "-b", "M1", "-n", "1")
    d.rpc("nvme_namespace_create", "--nqn", NQN, "-b", "M2", "-n", "2", "--anagrpid", "1",
          "--no_auto_visible", "true")
    d.rpc("nvmf_ns_add_host", "--nqn", NQN, "-n", "2", "--host", HOST1)
    pa = int(d.rpc("nvmf_subsystem_add_listener", "--nqn", NQN, "--traddr", "127.0.0.1",
                   "--trsvcid", "0")["trsvcid"])
    pb = int(d.rpc("nvmf_subsystem_add_listener", "--nqn", NQN, "--traddr", "127.0.0.1",
                   "--trsvcid", "0")["trsvcid"])

    a = admin(pa, NQN, HOST1, hostid=ID1)
    b = admin(pb, NQN, HOST1, hostid=ID1)
    qa = io_queue(pa, NQN, HOST1, a.cntlid, hostid=ID1)
    qb = io_queue(pb, NQN, HOST1, b.cntlid, hostid=ID1)
    tap.ok(a.cntlid != b.cntlid, f"two paths, two controllers ({a.cntlid}, {b.cntlid})")

    log = ana_log(a)
    tap.eq(log and log[1], [(1, 1, [1, 2])], "ANA log on path A: group 1 optimized, NSIDs 1 2")
    tap.eq(ana_log(a, rgo=True)[1], [(1, 1, [])], "RGO: the group without its NSIDs")

    # ANA Change events on path A only; B's state is its own.
    tap.eq(a.cmd(SET_FEAT, cdw10=0x0B, cdw11=1 << 11)["status"], 0,
           "Asynchronous Event Configuration: ANA change (bit 11)")
    aer = send_aer(a)
    set_state(pa, "inaccessible")
    r = a.wait_rsp(aer)
    tap.eq((r["status"], r["dw0"]), (0, 0x02 | 0x03 << 8 | 0x0C << 16),
           "the host of path A gets the ANA Change notice (log 0Ch)")
    chg, groups = ana_log(a)
    tap.eq(groups, [(1, 3, [1, 2])], "path A: group 1 inaccessible")
    tap.eq(ana_log(b)[1], [(1, 1, [1, 2])], "path B: still optimized")
    r = qa.cmd(0x02, rlen=512, nsid=1)
    tap.ok(r["status"] == PATH | 0x02, "read through A: ANA Inaccessible (SCT 3h SC 02h, no DNR)",
           status_str(r["status"]))
    tap.eq(qb.cmd(0x01, out=b"\xab" * 512, nsid=1)["status"], 0, "write through B works")
    r = qb.cmd(0x02, rlen=512, nsid=1)
    tap.ok(r["status"] == 0 and bytes(r["data"]) == b"\xab" * 512, "... and reads back")
    for st, sc in (("persistent_loss", 0x01), ("change", 0x03)):
        set_state(pa, st)
        r = qa.cmd(0x02, rlen=512, nsid=1)
        tap.ok(r["status"] == PATH | sc, f"read through A in {st}: SC {sc:02x}h",
               status_str(r["status"]))
    tap.eq(len(active_ns(a)), 2, "admin commands still work on path A")
    set_state(pa, "non_optimized")
    r = qa.cmd(0x02, rlen=512, nsid=1)
    tap.ok(r["status"] == 0 and bytes(r["data"]) == b"\xab" * 512,
           "non_optimized: A serves I/O again")

    # The host controllers by name.
    ctrls = d.rpc("nvme_controller_list", "--nqn", NQN)
    names = sorted(c["name"] for c in ctrls if c.get("transport") == "tcp")
    tap.eq(names, sorted([f"mp-tcp-{a.cntlid}", f"mp-tcp-{b.cntlid}"]),
           "nvme_controller_list names the host controllers <nqn suffix>-tcp-<cntlid>")
    nb = f"mp-tcp-{b.cntlid}"
    st = d.rpc("nvme_controller_iostat", "--ctrl", nb)
    tap.ok(st["write_io_count"] >= 1 and st["read_io_count"] >= 1,
           f"nvme_controller_iostat {nb}: the write and read through B",
           str(st))
    dbg = d.rpc("nvme_controller_debug_get", "--ctrl", nb)
    tap.ok(dbg["CSTS"] & 1 == 1, f"nvme_controller_debug_get {nb}: CSTS.RDY")
    tap.eq(d.rpc("nvme_controller_list", "--ctrl", nb)[0]["hostnqn"], HOST1,
           "nvme_controller_list --ctrl NAME: that controller, with its host NQN")
    d.rpc("nvme_controller_suspend", "--ctrl", nb)
    sqe, cid = qb.sqe(0x02, nsid=1, sgl_len=512)
    qb.send_cmd(sqe)
    tap.ok(not qb.closed_within(0.3) and d.rpc("nvme_controller_list", "--ctrl", nb)[0]
           ["suspended"], "nvme_controller_suspend holds the host's I/O")
    d.rpc("nvme_controller_resume", "--ctrl", nb)
    tap.eq(qb.wait_rsp(cid)["status"], 0, "nvme_controller_resume lets it complete")

    # Masking: HOST2 does not see namespace 2 until it is added.
    tap.eq(active_ns(a), [1, 2], "HOST1 sees namespaces 1 and 2")
    h2 = admin(pa, NQN, HOST2, hostid=ID2)
    q2 = io_queue(pa, NQN, HOST2, h2.cntlid, hostid=ID2)
    tap.eq(active_ns(h2), [1], "HOST2 sees only namespace 1")
    r = h2.cmd(IDENTIFY, rlen=4096, nsid=2, cdw10=0)
    tap.ok(r["status"] == 0 and not any(r["data"]), "HOST2: Identify Namespace 2 is zeroes")
    set_state(pa, "optimized")
    r = q2.cmd(0x02, rlen=512, nsid=2)
    tap.ok(r["status"] == 0x0B | 0x4000, "HOST2: I/O to namespace 2 is Invalid Namespace (DNR)",
           status_str(r["status"]))
    tap.eq(h2.cmd(SET_FEAT, cdw10=0x0B, cdw11=1 << 8)["status"], 0,
           "HOST2: Namespace Attribute Changed enabled")
    aer = send_aer(h2)
    d.rpc("nvmf_ns_add_host", "--nqn", NQN, "-n", "2", "--host", HOST2)
    r = h2.wait_rsp(aer)
    tap.eq((r["status"], r["dw0"]), (0, 0x02 | 0x04 << 16),
           "nvmf_ns_add_host: HOST2 gets Namespace Attribute Changed")
    tap.eq(active_ns(h2), [1, 2], "... and sees namespace 2")
    tap.eq(q2.cmd(0x02, rlen=512, nsid=2)["status"], 0, "... and reads it")
    h2.cmd(GET_LOG, rlen=4096, nsid=0xFFFFFFFF, cdw10=0x04 | (1023 << 16))
    aer = send_aer(h2)
    d.rpc("nvmf_ns_remove_host", "--nqn", NQN, "-n", "2", "--host", HOST2)
    r = h2.wait_rsp(aer)
    tap.eq(r["status"], 0, "nvmf_ns_remove_host: the event again")
    tap.eq(active_ns(h2), [1], "... and namespace 2 is gone for HOST2")
    tap.eq(active_ns(a), [1, 2], "HOST1 still sees it")
    tap.ok(d.alive(), "daemon alive")
except Exception as ex:  # noqa: BLE001 - any failure is a test failure
    tap.ok(False, f"unexpected: {ex!r}")
finally:
    d.stop()
tap.done()

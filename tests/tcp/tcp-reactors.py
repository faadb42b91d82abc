#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""nvemud --reactors 2: I/O queues move to the reactor with the fewest after
Connect, run there concurrently with data intact (RAM namespace: completions
on the reactor; delay namespace: completions on the main loop, posted back),
an idle daemon sleeps, the admin queue's end closes queues on the other
thread, a namespace is destroyed under load on both reactors, the subsystem
is destroyed under load, and SIGTERM still drains and exits 0. Bad --cpus and
--reactors are refused naming the option."""

import os
import random
import re
import subprocess
import tempfile
import threading
import time

from nvmetcp import Daemon, Tap, _tool, admin, io_queue, status_str

tap = Tap()
HOST = "nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-1111-4222-8333-444444444444"
NQN = "nqn.2014-08.io.nvemu:default"

# ---- option checks
nvemud = _tool("NVEMUD")
for args, word in ((["--cpus", "99999"], "--cpus"), (["--cpus", "1-0"], "--cpus"),
                   (["--cpus", "0,0"], "--cpus"), (["--reactors", "0"], "--reactors"),
                   (["--reactors", "2", "--cpus", "0"], "--reactors")):
    r = subprocess.run([nvemud, *args, "-r", "/nonexistent/x.sock"], capture_output=True,
                       text=True, timeout=10)
    tap.ok(r.returncode == 2 and word in r.stderr, f"nvemud {' '.join(args)} is refused naming {word}",
           f"rc {r.returncode} {r.stderr.strip()}")

d = Daemon(args=["--reactors", "2", "-vv"])


def threads():
    out = {}
    for tid in os.listdir(f"/proc/{d.pid}/task"):
        try:
            with open(f"/proc/{d.pid}/task/{tid}/comm") as f:
                out[f.read().strip()] = int(tid)
        except OSError:
            pass
    return out


def queue_reactors(cntlid, since=0):
    return [int(m.group(2)) for m in re.finditer(
        rf"controller {cntlid} I/O queue (\d+): reactor (\d+)", d.logtext()[since:])]


def pattern(qid, i, n):
    rnd = random.Random(qid * 1000003 + i)
    return bytes(rnd.getrandbits(8) for _ in range(n))


def io_worker(q, qid, nsid, iters, errors, first_lba=None, stop=None, allow_fail=False):
    """Write then read back, sizes from 512 B (in-capsule) to 32 KiB (R2T)."""
    base = first_lba if first_lba is not None else (qid - 1) * 128
    try:
        for i in range(iters):
            if stop is not None and stop.is_set():
                return
            nlb = (1, 8, 16, 64)[i % 4]
            lba = base + (i * 7) % (128 - nlb)
            data = pattern(qid, i, nlb * 512)
            r = q.cmd(0x01, data, inline=nlb == 1, nsid=nsid, cdw10=lba, cdw12=nlb - 1)
            if r["status"] != 0:
                if not allow_fail:
                    errors.append(f"q{qid} write {i}: {status_str(r['status'])}")
                return
            r = q.cmd(0x02, rlen=nlb * 512, nsid=nsid, cdw10=lba, cdw12=nlb - 1)
            if r["status"] != 0:
                if not allow_fail:
                    errors.append(f"q{qid} read {i}: {status_str(r['status'])}")
                return
            if bytes(r["data"]) != data:
                errors.append(f"q{qid} iteration {i}: read back other data")
                return
    except Exception as e:  # noqa: BLE001 - any failure is the test's
        if not allow_fail:
            errors.append(f"q{qid}: {e!r}")


def run_queues(qs, nsid, iters, **kw):
    errors = []
    ts = [threading.Thread(target=io_worker, args=(q, qid, nsid, iters, errors), kwargs=kw)
          for qid, q in qs.items()]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return errors


try:
    names = threads()
    tap.ok("nvemud-r1" in names, "a reactor thread nvemud-r1 runs next to the main thread",
           str(sorted(names)))
    c0 = d.cpu_s()
    time.sleep(2)
    idle = d.cpu_s() - c0
    tap.ok(idle < 0.1, f"idle with 2 reactors: {idle:.3f} s CPU in 2 s (no spinning)")

    # Namespace 3 on a delay bdev: its completions come from the main loop.
    d.rpc("bdev_malloc_create", "-b", "SlowRam", "--num_blocks", "4096")
    d.rpc("bdev_delay_create", "-b", "Slow", "--base_bdev_name", "SlowRam", "--latency_us", "2000")
    d.rpc("nvme_namespace_create", "--nqn", NQN, "-b", "Slow", "-n", "3")

    a = admin(d.port, NQN, HOST)
    qs = {qid: io_queue(d.port, NQN, HOST, a.cntlid, qid=qid, sqsize=31) for qid in (1, 2, 3, 4)}
    reactors = queue_reactors(a.cntlid)
    tap.ok(sorted(reactors) == [0, 0, 1, 1],
           "four I/O queues spread over the two reactors, two each", str(reactors))

    errs = run_queues(qs, 1, 150)
    tap.ok(not errs, "four queues write and read back 150 times each at once (RAM namespace)",
           *errs[:5])
    errs = run_queues(qs, 3, 25)
    tap.ok(not errs, "... and on a delay namespace (completions from the main loop)", *errs[:5])
    # Namespace 4 on a file: io_uring submissions are batched per loop iteration,
    # so a reactor must start what its own queues queued.
    fpath = os.path.join(tempfile.mkdtemp(prefix="nvemu-reactors."), "ns4")
    with open(fpath, "wb") as f:
        f.truncate(4 << 20)
    d.rpc("bdev_file_create", "-b", "RFile", "-f", fpath)
    d.rpc("nvme_namespace_create", "--nqn", NQN, "-b", "RFile", "-n", "4")
    t0 = time.time()
    errs = run_queues(qs, 4, 60)
    took = time.time() - t0
    tap.ok(not errs, f"... and on a file namespace, every reactor starting its io_uring batch "
           f"({took:.1f} s)", *errs[:5])
    st = a.cmd(0x06, rlen=4096, cdw10=1)["status"]
    tap.ok(st == 0, "the admin queue answers Identify meanwhile", status_str(st))

    # Namespace 3 destroyed while all four queues run I/O on it.
    stop = threading.Event()
    errors = []
    ts = [threading.Thread(target=io_worker, args=(q, qid, 3, 10 ** 6, errors),
                           kwargs={"stop": stop, "allow_fail": True}) for qid, q in qs.items()]
    for t in ts:
        t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    r = d.rpc("nvme_namespace_destroy", "--nqn", NQN, "-n", "3", check=False)
    tap.ok(r is not None, "nvme_namespace_destroy under load on both reactors succeeds",
           f"{time.monotonic() - t0:.2f} s")
    stop.set()
    for t in ts:
        t.join(30)
    tap.ok(not errors and all(not t.is_alive() for t in ts),
           "... the queues saw errors or success, never other data, and none hangs", *errors[:5])
    tap.ok(d.alive(), "nvemud alive after the destroy")
    errs = run_queues(qs, 1, 20)
    tap.ok(not errs, "the four queues still run I/O on namespace 1", *errs[:5])

    # The admin queue ends: the main loop closes queues the reactor owns.
    a.close()
    closed = [q.closed_within(3) for q in qs.values()]
    tap.ok(all(closed), "closing the admin queue closes all four I/O queues (both reactors)",
           str(closed))
    for _ in range(50):
        if not d.rpc("nvmf_subsystem_get_controllers", "--nqn", NQN):
            break
        time.sleep(0.1)
    tap.eq(d.rpc("nvmf_subsystem_get_controllers", "--nqn", NQN), [],
           "... and the controller goes away")

    # Again, then the subsystem destroyed under load.
    mark = len(d.logtext())
    a = admin(d.port, NQN, HOST)
    qs = {qid: io_queue(d.port, NQN, HOST, a.cntlid, qid=qid, sqsize=31) for qid in (1, 2)}
    reactors = queue_reactors(a.cntlid, mark)
    tap.ok(sorted(reactors) == [0, 1], "a new association's two queues: one per reactor",
           str(reactors))
    stop = threading.Event()
    errors = []
    ts = [threading.Thread(target=io_worker, args=(q, qid, 1, 10 ** 6, errors),
                           kwargs={"stop": stop, "allow_fail": True}) for qid, q in qs.items()]
    for t in ts:
        t.start()
    time.sleep(0.5)
    r = d.rpc("nvme_subsystem_destroy", "--nqn", NQN, "--force", "true", check=False)
    tap.ok(r is not None, "nvme_subsystem_destroy --force under load on both reactors returns")
    stop.set()
    tap.ok(all(q.closed_within(5) for q in qs.values()) and a.closed_within(5),
           "... and closes the admin and both I/O queues")
    for t in ts:
        t.join(30)
    tap.ok(not errors and all(not t.is_alive() for t in ts), "... no other data, none hangs",
           *errors[:5])
    tap.ok(d.alive(), "nvemud alive after the subsystem destroy")
finally:
    rc = d.stop()
tap.eq(rc, 0, "SIGTERM: nvemud exits 0")
tap.done()

#!/usr/bin/env python3
# nvemud under a service manager: sd_notify(3) READY=1 once it serves,
# WATCHDOG=1 pings at half of WATCHDOG_USEC from the event loop, STOPPING=1
# on SIGTERM; the receiving end is a datagram socket as systemd's.
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

NVEMUD = os.environ["NVEMUD"]
n = 0
failed = 0


def ok(cond, desc, diag=""):
    global n, failed
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {desc}")
    if not cond:
        failed += 1
        for line in str(diag).splitlines()[:20]:
            print(f"# {line}")


def recv_until(s, want, timeout):
    got = []
    end = time.time() + timeout
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want in msg:
            return got, True
    return got, False


tmp = tempfile.mkdtemp(prefix="nvemu-sdn.")
path = os.path.join(tmp, "notify")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
log = open(os.path.join(tmp, "log"), "w")
d = subprocess.Popen([NVEMUD, "-r", os.path.join(tmp, "rpc.sock"), "-m", "none", "-l", "none",
                      "--vfio-user", "none"], env=env, stdout=log, stderr=log)
# WATCHDOG_PID names another process: no pings then (checked by the second daemon).
got, ready = recv_until(s, "READY=1", 60)
ok(ready, "READY=1 once nvemud serves", got)
ok(os.path.exists(os.path.join(tmp, "rpc.sock")), "the RPC socket exists when READY=1 arrives")
t0 = time.time()
pings = 0
while time.time() - t0 < 1.0:
    g, hit = recv_until(s, "WATCHDOG=1", 0.5)
    pings += sum(m.count("WATCHDOG=1") for m in g)
ok(5 <= pings <= 15, f"WATCHDOG=1 about every 100 ms for WATCHDOG_USEC=200000 ({pings} in 1 s)")
d.send_signal(signal.SIGTERM)
got, stopping = recv_until(s, "STOPPING=1", 10)
ok(stopping, "STOPPING=1 on SIGTERM", got)
ok(d.wait(timeout=20) == 0, "nvemud exits 0")

env2 = dict(env, WATCHDOG_PID="1")
d2 = subprocess.Popen([NVEMUD, "-r", os.path.join(tmp, "rpc2.sock"), "-m", "none", "-l", "none",
                       "--vfio-user", "none"], env=env2, stdout=log, stderr=log)
# Generous: a sanitized nvemud on a loaded machine can take seconds to start.
got, ready = recv_until(s, "READY=1", 60)
g, _ = recv_until(s, "WATCHDOG=1", 0.6)
ok(ready and not any("WATCHDOG=1" in m for m in g),
   "no pings when WATCHDOG_PID names another process", f"ready={ready} {got} {g}")
d2.terminate()
d2.wait(timeout=20)
print(f"1..{n}")
sys.exit(1 if failed else 0)

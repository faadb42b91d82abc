#!/usr/bin/env python3
# nvemud --metrics: the Prometheus endpoint scraped while nvemu-perf loads the
# NVMe/TCP listener, its values checked against what was done, the text
# checked by Debian's promtool, and hostile HTTP peers answered and bounded.
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

NVEMUD = os.environ["NVEMUD"]
NVEMU_RPC = os.environ["NVEMU_RPC"]
NVEMU_PERF = os.environ["NVEMU_PERF"]
n = 0
failed = 0


def ok(cond, desc, diag=""):
    global n, failed
    n += 1
    if cond:
        print(f"ok {n} - {desc}")
    else:
        failed += 1
        print(f"not ok {n} - {desc}")
        for line in str(diag).splitlines()[:20]:
            print(f"# {line}")


def wait_log(path, pattern, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        with open(path, errors="replace") as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        time.sleep(0.05)
    return None


def get(port, path="/metrics"):
    try:
        r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def raw(port, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        out += b"<timeout>"
    except ConnectionResetError:
        out += b"<reset>"
    s.close()
    return out


def samples(text, name):
    """{labels-string: value} of one metric name."""
    res = {}
    for line in text.splitlines():
        m = re.match(r"^" + re.escape(name) + r"(\{[^}]*\})? (\S+)$", line)
        if m:
            res[m.group(1) or ""] = float(m.group(2))
    return res


def main():
    tmp = tempfile.mkdtemp(prefix="nvemu-metrics.")
    log = os.path.join(tmp, "log")
    sock = os.path.join(tmp, "rpc.sock")
    with open(log, "w") as lf:
        d = subprocess.Popen([NVEMUD, "-r", sock, "-m", os.path.join(tmp, "mctp.sock"),
                              "-l", "127.0.0.1:0", "--vfio-user", "none",
                              "--metrics", "127.0.0.1:0"], stdout=lf, stderr=lf)
    try:
        run(d, tmp, log, sock)
    finally:
        d.terminate()
        try:
            rc = d.wait(timeout=20)
        except subprocess.TimeoutExpired:
            d.kill()
            rc = -1
        ok(rc == 0, "nvemud stops cleanly with the metrics endpoint", open(log).read())
    print(f"1..{n}")
    return 1 if failed else 0


def run(d, tmp, log, sock):
    m = wait_log(log, r"metrics: http://127\.0\.0\.1:(\d+)/metrics")
    ok(m is not None, "nvemud logs the metrics address", open(log).read())
    if not m:
        return
    port = int(m.group(1))
    t = wait_log(log, r"tcp: listening on 127\.0\.0\.1:(\d+)")
    tport = int(t.group(1))
    wait_log(log, r"info: ready")

    st, ctype, body = get(port)
    ok(st == 200 and ctype.startswith("text/plain; version=0.0.4"),
       "GET /metrics: 200, text exposition format 0.0.4", f"{st} {ctype}")
    ok(samples(body, "process_resident_memory_bytes").get("", 0) > 0, "process RSS reported")
    ok("nvemu_build_info{version=" in body, "build info reported")

    # Health set over RPC shows here, as in the SMART log and the MI poll.
    subprocess.run([NVEMU_RPC, "-s", sock, "nvme_subsystem_set_health", "--nqn",
                    "nqn.2014-08.io.nvemu:default", "--temperature", "351"],
                   check=True, stdout=subprocess.DEVNULL)
    st, _, body = get(port)
    temp = samples(body, "nvemu_temperature_kelvin")
    ok(temp.get('{nqn="nqn.2014-08.io.nvemu:default"}') == 351,
       "temperature set over RPC: 351 K", temp)

    # Load from a TCP host; scrape while it runs (its controller goes with it).
    perf = subprocess.Popen([NVEMU_PERF, "-r",
                             f"trtype:tcp traddr:127.0.0.1 trsvcid:{tport} "
                             "subnqn:nqn.2014-08.io.nvemu:default",
                             "-w", "randrw", "-o", "4096", "-q", "4", "-t", "7"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)
    # nvemu-rpc status: one 80-column screen with the host's controller busy.
    stat = subprocess.run([NVEMU_RPC, "-s", sock, "status", "--interval", "1"],
                          capture_output=True, text=True, timeout=30)
    lines = stat.stdout.splitlines()
    ok(stat.returncode == 0 and all(len(l) < 80 for l in lines),
       "nvemu-rpc status: one screen, every line under 80 columns", stat.stdout + stat.stderr)
    busy = [l for l in lines if re.match(r"^default-tcp-\d+ ", l)]
    ok(len(busy) == 1 and float(busy[0].split()[3]) > 0 and float(busy[0].split()[4]) > 0,
       "  the NVMe/TCP host's controller with its read and write IOPS", stat.stdout)
    ok(any(re.match(r"^  q1 +\d+", l) for l in lines), "  and per-queue IOPS", stat.stdout)
    ok(any(l.startswith("nqn.2014-08.io.nvemu:default ") and "127.0.0.1:" in l for l in lines),
       "  the subsystem with its listener", stat.stdout)
    w = subprocess.Popen([NVEMU_RPC, "-s", sock, "status", "--interval", "0.5", "--watch"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.6)
    w.send_signal(signal.SIGINT)
    wout = w.communicate(timeout=10)[0]
    ok(w.returncode == 0 and wout.count("CONTROLLER ") >= 2 and "\033[2J" in wout,
       "nvemu-rpc status --watch refreshes until interrupted", wout[-500:])
    st, _, body = get(port)
    out = perf.communicate(timeout=60)[0]
    ok(perf.returncode == 0, "nvemu-perf ran against the TCP listener", out)
    reads = {k: v for k, v in samples(body, "nvemu_commands_total").items()
             if 'class="read"' in k and v > 0}
    ok(len(reads) == 1, "read commands of the TCP host controller counted", body[:3000])
    if reads:
        key = next(iter(reads))
        labels = key[1:-1]
        nbytes = samples(body, "nvemu_data_bytes_total").get(key, 0)
        ok(nbytes == reads[key] * 4096, "4 KiB of data per read counted",
           f"{nbytes} vs {reads[key]}")
        ctrl = re.sub(r',class="read"', "", labels)
        buckets = [(k, v) for k, v in
                   samples(body, "nvemu_command_latency_seconds_bucket").items()
                   if k.startswith("{" + ctrl + ',class="read"')]
        vals = [v for _, v in buckets]
        ok(len(vals) == 17 and vals == sorted(vals) and vals[-1] >= reads[key],
           "read latency histogram: 17 cumulative buckets up to +Inf", buckets)
        cnt = samples(body, "nvemu_command_latency_seconds_count").get(key, -1)
        ok(cnt == vals[-1], "histogram count equals its +Inf bucket", f"{cnt} {vals[-1:]}")
        depth = [v for k, v in samples(body, "nvemu_queue_depth").items()
                 if k.startswith("{" + ctrl)]
        ok(len(depth) >= 2 and all(0 <= v <= 4 for v in depth),
           "queue depth per queue within the host's queue depth", depth)

    # promtool, from Debian's prometheus package, accepts the text.
    p = subprocess.run(["promtool", "check", "metrics"], input=body, text=True,
                       capture_output=True)
    ok(p.returncode == 0, "promtool check metrics", p.stdout + p.stderr)

    # Hostile peers: each gets an HTTP status, none stalls the endpoint.
    st, _, _ = get(port, "/nothing")
    ok(st == 404, "GET /nothing: 404", st)
    r = raw(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    ok(r.startswith(b"HTTP/1.1 405") and b"Allow: GET" in r, "POST: 405 with Allow", r[:200])
    r = raw(port, b"garbage\r\n\r\n")
    ok(r.startswith(b"HTTP/1.1 400"), "a request line without a target: 400", r[:200])
    r = raw(port, b"GET /" + b"a" * 600 + b" HTTP/1.1\r\n\r\n")
    ok(r.startswith(b"HTTP/1.1 414"), "a 600-byte target: 414", r[:200])
    r = raw(port, b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 5000)
    ok(r.startswith(b"HTTP/1.1 431"), "a head over 4 KiB: 431, nothing more read", r[:200])
    # Eight idle peers fill the slots; a ninth is refused, a scrape after they time out works.
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        closed = extra.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        closed = True
    ok(closed, "a ninth connection while eight are idle: closed at once")
    extra.close()
    t0 = time.time()
    gone = 0
    for s in idle:
        s.settimeout(10)
        try:
            if s.recv(1) == b"":
                gone += 1
        except (ConnectionResetError, socket.timeout):
            gone += 1
        s.close()
    ok(gone == 8 and time.time() - t0 < 9, "idle peers are closed after the 5 s timeout",
       f"{gone} in {time.time() - t0:.1f} s")
    st, _, body = get(port)
    ok(st == 200 and samples(body, "nvemu_metrics_scrapes_total").get("", 0) >= 3,
       "scrapes still answered and counted", st)
    ok(d.poll() is None, "nvemud still running")


if __name__ == "__main__":
    sys.exit(main())

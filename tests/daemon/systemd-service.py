#!/usr/bin/env python3
# nvemud as systemd runs it, with the test standing in for systemd:
#  - socket activation: the RPC socket is passed as fd 3 (LISTEN_PID/FDS/FDNAMES),
#    requests made before nvemud starts are answered, the socket survives it;
#  - reload (SIGHUP): RELOADING=1 then READY=1 with a STATUS= line; objects added,
#    removed and changed in the file are applied while an NVMe/TCP host (nvemu-perf)
#    keeps its controller and sees no error; a broken file changes nothing;
#  - the journal sink: native-protocol datagrams on a socket of the test's, with
#    NVEMU_* fields on the messages about a host, and rate limiting of what a hostile
#    peer causes (a burst, then "suppressed N messages").
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

NVEMUD = os.environ["NVEMUD"]
NVEMU_RPC = os.environ["NVEMU_RPC"]
NVEMU_PERF = os.environ["NVEMU_PERF"]
SRC = os.environ["NVEMU_SRC"]
NQN = "nqn.2014-08.io.nvemu:default"
n = 0
failed = 0


def ok(cond, desc, diag=""):
    global n, failed
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {desc}", flush=True)
    if not cond:
        failed += 1
        for line in str(diag).splitlines()[:30]:
            print(f"# {line}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rpc(sock, *args, check=True):
    r = subprocess.run([NVEMU_RPC, "-s", sock] + list(args), capture_output=True, text=True,
                       timeout=30)
    if check and r.returncode:
        raise RuntimeError(f"nvemu-rpc {args}: {r.stderr}")
    return json.loads(r.stdout) if r.stdout.strip() else None


def recv_all(s, timeout):
    got = []
    end = time.time() + timeout
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            got.append(s.recv(65536))
        except socket.timeout:
            break
    return got


def recv_until(s, want, timeout):
    got = []
    end = time.time() + timeout
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            m = s.recv(65536).decode()
        except socket.timeout:
            break
        got.append(m)
        if want in m:
            return got, True
    return got, False


def parse_journal(dgram):
    """The native journal protocol: KEY=value lines, or KEY\\n<le64 size>value\\n."""
    f = {}
    i = 0
    while i < len(dgram):
        nl = dgram.index(b"\n", i)
        line = dgram[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            size = struct.unpack("<Q", dgram[nl + 1:nl + 9])[0]
            v = dgram[nl + 9:nl + 9 + size]
            i = nl + 9 + size + 1
        f[k.decode()] = v.decode(errors="replace")
    return f


tmp = tempfile.mkdtemp(prefix="nvemu-svc.")
notify_path = os.path.join(tmp, "notify")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
port = free_port()
cfg_path = os.path.join(tmp, "nvemu.json")
with open(os.path.join(SRC, "etc", "nvemu.json")) as f:
    base = json.load(f)
for c in base["calls"]:
    if c["method"] == "nvmf_subsystem_add_listener":
        c["params"]["listen_address"]["trsvcid"] = str(port)


def write_cfg(calls):
    with open(cfg_path, "w") as f:
        json.dump({"nvemu_config": 1, "calls": calls}, f, indent=1)


# ---- socket activation
rpc_path = os.path.join(tmp, "rpc.sock")
ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ls.bind(rpc_path)
os.chmod(rpc_path, 0o600)
ls.listen(16)
write_cfg(base["calls"])
log = open(os.path.join(tmp, "log"), "w")

# A client that comes before the daemon: the request waits in the socket's backlog.
early = subprocess.Popen([NVEMU_RPC, "-s", rpc_path, "nvme_subsystem_list"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(0.3)


def start_activated(extra=(), env_extra=None):
    def child():
        os.dup2(ls.fileno(), 3)
        os.set_inheritable(3, True)

    env = dict(os.environ, NOTIFY_SOCKET=notify_path, LISTEN_FDS="1", LISTEN_FDNAMES="rpc")
    env.update(env_extra or {})
    # LISTEN_PID must be nvemud's own pid: set by the shell that execs it.
    return subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", NVEMUD, "-c", cfg_path,
                             "-r", rpc_path, "-m", "none"] + list(extra),
                            env=env, stdout=log, stderr=log, preexec_fn=child, close_fds=False)


d = start_activated()
got, ready = recv_until(notify, "READY=1", 15)
ok(ready, "READY=1 from the socket-activated nvemud", got)
try:
    out, err = early.communicate(timeout=15)
    ok(early.returncode == 0 and NQN in out,
       "a request sent before nvemud started is answered on the activated socket", out + err)
except subprocess.TimeoutExpired:
    early.kill()
    ok(False, "a request sent before nvemud started is answered on the activated socket")

# ---- reload while a host does I/O
perf = subprocess.Popen([NVEMU_PERF, "--traddr", "127.0.0.1", "--trsvcid", str(port),
                         "--subnqn", NQN, "-t", "6", "-q", "4", "--json", "--quiet"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def host_ctrls():
    return [c["cntlid"] for c in rpc(rpc_path, "nvmf_subsystem_get_controllers", "--nqn", NQN)]


before = []
for _ in range(50):
    before = host_ctrls()
    if before:
        break
    time.sleep(0.1)
ok(len(before) == 1, "nvemu-perf is connected over NVMe/TCP", before)


def hup():
    recv_all(notify, 0.05)
    d.send_signal(signal.SIGHUP)
    got, done = recv_until(notify, "READY=1", 15)
    joined = "\n".join(got)
    return joined, done and "RELOADING=1" in joined and \
        joined.index("RELOADING=1") < joined.rindex("READY=1")


msgs, seq = hup()
ok(seq and "0 added, 0 removed, 0 changed" in msgs and "0 failed" in msgs,
   "reload of the unchanged file: RELOADING=1, READY=1, STATUS says nothing changed", msgs)

calls = json.loads(json.dumps(base["calls"]))
calls.insert(2, {"method": "bdev_malloc_create",
                 "params": {"name": "Malloc2", "num_blocks": 4096, "block_size": 512}})
calls.append({"method": "nvme_namespace_create",
              "params": {"nqn": NQN, "bdev_name": "Malloc2", "nsid": 3}})
calls.append({"method": "nvme_subsystem_create",
              "params": {"nqn": "nqn.2014-08.io.nvemu:two", "serial_number": "TWO"}})
calls.append({"method": "nvmf_subsystem_allow_any_host",
              "params": {"nqn": "nqn.2014-08.io.nvemu:two", "allow_any_host": True}})
write_cfg(calls)
msgs, seq = hup()
ok(seq and "4 added, 0 removed, 0 changed" in msgs and "0 failed" in msgs,
   "reload adds a bdev, a namespace, a subsystem and its access (STATUS counts them)", msgs)
nss = [x["nsid"] for x in rpc(rpc_path, "nvme_namespace_list", "--nqn", NQN)]
ok(3 in nss, "namespace 3 exists after the reload", nss)
ok(rpc(rpc_path, "nvme_subsystem_list", "--nqn", "nqn.2014-08.io.nvemu:two") is not None,
   "subsystem two exists after the reload")
ok(host_ctrls() == before, "the connected host kept its controller", host_ctrls())

# Remove subsystem two and namespace 3 (and its bdev); change Malloc1's size: namespace 2
# on it is made again; the rest (namespace 1, the listener, the host) is untouched.
calls = json.loads(json.dumps(base["calls"]))
for c in calls:
    if c["method"] == "bdev_malloc_create" and c["params"]["name"] == "Malloc1":
        c["params"]["num_blocks"] = 4096
write_cfg(calls)
msgs, seq = hup()
ok(seq and "0 added, 3 removed, 2 changed" in msgs and "0 failed" in msgs,
   "reload removes 3 objects and re-creates the changed bdev and its namespace", msgs)
bl = {b["name"]: b for b in rpc(rpc_path, "bdev_list")}
ok("Malloc2" not in bl and bl.get("Malloc1", {}).get("num_blocks") == 4096,
   "Malloc2 gone, Malloc1 re-created with 4096 blocks", bl)
nss = [x["nsid"] for x in rpc(rpc_path, "nvme_namespace_list", "--nqn", NQN)]
ok(sorted(nss) == [1, 2], "namespaces 1 and 2 remain", nss)
ok(host_ctrls() == before, "the connected host still has its controller", host_ctrls())

with open(cfg_path, "w") as f:
    f.write("{ not json")
msgs, seq = hup()
ok(seq and "reload failed" in msgs, "a broken file: READY=1 and STATUS says the reload failed",
   msgs)
ok(sorted(x["nsid"] for x in rpc(rpc_path, "nvme_namespace_list", "--nqn", NQN)) == [1, 2],
   "a broken file changes nothing")

calls.append({"method": "nvme_namespace_create",
              "params": {"nqn": NQN, "bdev_name": "NoSuchBdev", "nsid": 9}})
write_cfg(calls)
msgs, seq = hup()
ok(seq and "1 added" in msgs and "1 failed" in msgs,
   "a call that fails is reported in STATUS (and the log)", msgs)

try:
    out, err = perf.communicate(timeout=30)
    res = json.loads(out)
    ok(res["errors"] == 0 and res["ios"] > 0 and res.get("resets", 0) == 0,
       "the host's I/O ran through every reload without an error or a reset", out + err)
except (subprocess.TimeoutExpired, ValueError) as e:
    perf.kill()
    ok(False, "the host's I/O ran through every reload without an error or a reset", e)

d.send_signal(signal.SIGTERM)
ok(d.wait(timeout=30) == 0, "nvemud exits 0")
ok(os.path.exists(rpc_path), "the activated socket is left to systemd (not removed)")
logtext = open(os.path.join(tmp, "log")).read()
ok("socket activation" in logtext and "reload: added namespace" in logtext and
   "NoSuchBdev" in logtext, "the log names the activation, each change and each failure",
   logtext[-3000:])

# ---- the journal sink and rate limiting
jpath = os.path.join(tmp, "journal")
js = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
js.bind(jpath)
js.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
write_cfg(base["calls"])
rpc2 = os.path.join(tmp, "rpc2.sock")
d = subprocess.Popen([NVEMUD, "-c", cfg_path, "-r", rpc2, "-m", "none", "--log-target",
                      "journal:" + jpath], env=dict(os.environ, NOTIFY_SOCKET=notify_path),
                     stdout=log, stderr=subprocess.PIPE, text=True)
got, ready = recv_until(notify, "READY=1", 15)
ok(ready, "nvemud with --log-target journal:PATH starts")
perf = subprocess.run([NVEMU_PERF, "--traddr", "127.0.0.1", "--trsvcid", str(port), "--subnqn",
                       NQN, "-N", "100", "--json", "--quiet", "--hostnqn",
                       "nqn.2014-08.io.nvemu:test-host"],
                      capture_output=True, text=True, timeout=60)
ents = [parse_journal(x) for x in recv_all(js, 1.0)]
conn = [e for e in ents if "connected to" in e.get("MESSAGE", "")]
ok(conn and conn[0].get("NVEMU_HOSTNQN") == "nqn.2014-08.io.nvemu:test-host" and
   conn[0].get("NVEMU_SUBNQN") == NQN and conn[0].get("NVEMU_QID") == "0" and
   conn[0].get("NVEMU_CNTLID", "").isdigit() and conn[0].get("NVEMU_TRANSPORT") == "tcp" and
   conn[0].get("NVEMU_PEER", "").startswith("127.0.0.1:") and
   conn[0].get("PRIORITY") == "6" and conn[0].get("SYSLOG_IDENTIFIER") == "nvemud",
   "the host's Connect is a journal entry with NVEMU_HOSTNQN, _SUBNQN, _CNTLID, _QID, _PEER",
   ents)
ioq = [e for e in ents if e.get("NVEMU_QID") not in (None, "0")]
ok(ioq, "messages about an I/O queue carry its NVEMU_QID", [e.get("MESSAGE") for e in ents])

# A hostile peer: 40 connections sending a PDU of an unknown type.
for _ in range(40):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(bytes([0x7e, 0, 128, 0]) + struct.pack("<I", 128) + bytes(120))
    try:
        s.settimeout(2)
        s.recv(4096)
    except OSError:
        pass
    s.close()
time.sleep(0.3)
ents = [parse_journal(x) for x in recv_all(js, 1.0)]
perr = [e for e in ents if "protocol error" in e.get("MESSAGE", "")]
ok(1 <= len(perr) <= 10 and perr[0].get("PRIORITY") == "4",
   f"40 protocol errors from one address: a burst of at most 10 logged ({len(perr)})",
   [e.get("MESSAGE") for e in ents][:20])
time.sleep(1.2)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(bytes([0x7e, 0, 128, 0]) + struct.pack("<I", 128) + bytes(120))
try:
    s.settimeout(2)
    s.recv(4096)
except OSError:
    pass
s.close()
ents = [parse_journal(x) for x in recv_all(js, 1.0)]
sup = [e for e in ents if e.get("MESSAGE", "").startswith("suppressed")]
nsup = int(sup[0]["MESSAGE"].split()[1]) if sup else 0
ok(sup and nsup >= 30 - 1 and sup[0].get("NVEMU_PEER", "").startswith("127.0.0.1:"),
   f"a second later: \"suppressed {nsup} messages\" with the peer's fields, then the message",
   [e.get("MESSAGE") for e in ents])
d.send_signal(signal.SIGTERM)
_, err = d.communicate(timeout=30)
ok(d.returncode == 0 and "protocol error" not in err,
   "with the journal sink, messages do not go to stderr", err[-2000:])

bad = subprocess.run([NVEMUD, "--log-target", "syslog", "-r", os.path.join(tmp, "rpc4.sock")],
                     capture_output=True, text=True, timeout=30)
ok(bad.returncode == 2 and "--log-target" in bad.stderr, "an unknown --log-target is refused",
   bad.stderr)

print(f"1..{n}")
sys.exit(1 if failed else 0)

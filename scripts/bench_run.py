#!/usr/bin/env python3
"""Runs the client benchmark (called by scripts/bench, which builds first).

Three peers, one table each, the same workloads with umqtt, rumqttc,
paho-mqtt (Python) and mosquitto_pub / libmosquitto (C):

1. the wire-speed peer (`bench/wire.c`, `wire peer`): a minimal MQTT 3.1.1
   server for one connection that costs far less per message than any
   client, so the table measures the clients; with a "ceiling" column, the
   same peer driven by raw loops of pre-encoded bytes (`wire raw`);
2. rumqttd (crates.io, multi-threaded; `bench/src/bin/rumqttd.rs`), limits
   raised;
3. a private Mosquitto (single-threaded), as before.

Peer and broker are pinned to CPU 0, clients to CPU 1 (`taskset`). Prints
markdown and writes it into the "Client" section of BENCHMARKS.md (other
sections, and the hand-written notes below NOTES_MARK, are kept).

Environment: BENCH_BIN (folder with umqtt-bench, rumqttc-bench,
rumqttd-bench, mosq_bench, wire), BENCH_N (messages per throughput run,
default 100000), BENCH_RTT_N (default 10000), BENCH_CG_N (callgrind
messages, default 10000), BENCH_REPEAT (runs per figure, best kept, default
3), BENCH_PEERS (comma-separated subset of wire,rumqttd,mosquitto),
BENCH_OUT (markdown file, default BENCHMARKS.md; empty: do not write).
"""
import os
import platform
import queue
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BENCH_BIN", os.path.join(ROOT, "bench", "target", "release"))
N = int(os.environ.get("BENCH_N", "100000"))
RTT_N = int(os.environ.get("BENCH_RTT_N", "10000"))
CG_N = int(os.environ.get("BENCH_CG_N", "10000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "BENCHMARKS.md"))
PEERS = os.environ.get("BENCH_PEERS", "wire,rumqttd,mosquitto").split(",")
SIZE = 64
CG_WINDOW = 64  # in-flight window of the QoS 1 / QoS 2 loops counted with callgrind
PEER_CPU, CLIENT_CPU = "0", "1"  # taskset CPU lists
CLIENTS = ["umqtt", "rumqttc", "paho", "mosquitto"]
CEILING = "ceiling"
TITLES = {
    CEILING: "ceiling (raw loop)",
    "umqtt": "umqtt",
    "rumqttc": "rumqttc",
    "paho": "paho-mqtt (Python)",
    "mosquitto": "mosquitto_pub / libmosquitto (C)",
}
PEER_TITLES = {
    "wire": "Wire-speed peer (`bench/wire.c`)",
    "rumqttd": "rumqttd (multi-threaded broker)",
    "mosquitto": "Mosquitto (single-threaded broker)",
}
WINDOWS = {
    CEILING: [64, 1024, 65535],
    "umqtt": [64, 256, 1024, 4096, 16384],
    "rumqttc": [64, 1024, 16384],
    "paho": [64, 1024],
    "mosquitto": [64, 1024, 16384],
}
# Ways to run a client, all tried, the best kept and named in the table:
# rumqttc on tokio's multi-thread ("mt", its `#[tokio::main]` default) or
# current-thread ("ct") runtime; the C client as the mosquitto_pub CLI
# ("cli", QoS 0 publish only) or libmosquitto driven by `bench/mosq_bench.c`
# in the caller's thread ("lib").
VARIANTS = {"rumqttc": ["mt", "ct"], "mosquitto": ["cli", "lib"]}
NOTES_MARK = "<!-- notes below are kept by scripts/bench -->"
PY = os.path.realpath(sys.executable)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu, cmd):
    return ["taskset", "-c", cpu, *cmd]


def wait_port(port, proc, what, logfile=None):
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                text = open(logfile).read() if logfile else ""
                sys.exit(f"{what} did not start: {text}")
            time.sleep(0.05)


class Mosquitto:
    name = "mosquitto"

    def __init__(self, tmp):
        self.port = free_port()
        conf = os.path.join(tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "set_tcp_nodelay true\nmax_inflight_messages 0\nmax_queued_messages 0\n"
                "max_queued_bytes 0\nqueue_qos0_messages true\n"
            )
            if os.geteuid() == 0:
                f.write("user root\n")
        program = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.logname = os.path.join(tmp, "mosquitto.log")
        self.log = open(self.logname, "w")
        self.proc = subprocess.Popen(pinned(PEER_CPU, [program, "-c", conf]),
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        wait_port(self.port, self.proc, "mosquitto", self.logname)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Rumqttd(Mosquitto):
    name = "rumqttd"

    def __init__(self, tmp):
        self.port = free_port()
        self.logname = os.path.join(tmp, "rumqttd.log")
        self.log = open(self.logname, "w")
        self.proc = subprocess.Popen(pinned(PEER_CPU, [os.path.join(BIN, "rumqttd-bench"), str(self.port)]),
                                     stdout=self.log, stderr=self.log)
        wait_port(self.port, self.proc, "rumqttd", self.logname)


class Wire:
    """The wire-speed peer: one line of figures per connection it served."""
    name = "wire"

    def __init__(self, tmp):
        self.proc = subprocess.Popen(pinned(PEER_CPU, [os.path.join(BIN, "wire"), "peer", "0"]),
                                     stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        self.port = int(first.strip().split("=")[1])
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("conn "):
                self.lines.put(parse(line))

    def clear(self):
        while not self.lines.empty():
            self.lines.get_nowait()

    def conn(self, timeout=10):
        """The figures of the next connection to end."""
        return self.lines.get(timeout=timeout)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def parse(text):
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.eE+-]+)", text)}


class Unsupported(Exception):
    pass


def run(cmd, stdin=None, timeout=300, env=None):
    """Runs cmd; returns (key=value figures, wall seconds, CPU seconds of
    the process: user + system) or raises."""
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    f = open(stdin) if stdin else None
    try:
        p = subprocess.run(cmd, stdin=f or subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, env=env and {**os.environ, **env})
    finally:
        if f:
            f.close()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode == 3 and "unsupported=1" in p.stdout:
        raise Unsupported()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return parse(p.stdout), wall, cpu


class Bench:
    def __init__(self, peer, tmp):
        self.peer = peer
        self.wire = isinstance(peer, Wire)
        self.port = str(peer.port)
        self.lines = {}
        for n in (N, CG_N, 0):
            path = os.path.join(tmp, f"lines-{n}.txt")
            line = "".join(chr(ord("a") + i % 26) for i in range(SIZE)) + "\n"
            with open(path, "w") as f:
                f.write(line * n)
            self.lines[n] = path

    def clients(self):
        return ([CEILING] if self.wire else []) + CLIENTS

    def cmd(self, client, mode, *args, variant=None):
        """The command line of `client` for a mode, its stdin file and
        extra environment (not pinned)."""
        args = [str(a) for a in args]
        if client == CEILING:
            return [os.path.join(BIN, "wire"), "raw", mode, self.port, *args], None, None
        if client == "umqtt":
            return [os.path.join(BIN, "umqtt-bench"), mode, self.port, *args], None, None
        if client == "rumqttc":
            env = {"RUNTIME": "current"} if variant == "ct" else None
            return [os.path.join(BIN, "rumqttc-bench"), mode, self.port, *args], None, env
        if client == "paho":
            return [PY, os.path.join(ROOT, "scripts", "bench_paho.py"), mode, self.port, *args], None, None
        if mode == "pub0" and variant == "cli":
            topic, n = args[0], int(args[1])
            cmd = ["mosquitto_pub", "-p", self.port, "-t", topic, "-l", "--nodelay", "-q", "0"]
            return cmd, self.lines[n], None
        return [os.path.join(BIN, "mosq_bench"), mode, self.port, *args], None, None

    def client_run(self, client, mode, *args, variant=None, timeout=300):
        """Runs a client pinned to CLIENT_CPU: (figures, wall, cpu, peer line)."""
        cmd, stdin, env = self.cmd(client, mode, *args, variant=variant)
        if self.wire:
            self.peer.clear()
        figures, wall, cpu = run(pinned(CLIENT_CPU, cmd), stdin, timeout=timeout, env=env)
        line = None
        if self.wire:
            try:
                line = self.peer.conn()
            except queue.Empty:
                raise RuntimeError("the peer reported no connection")
        return figures, wall, cpu, line

    def qos0(self, client, variant, i):
        topic = f"bench/q0/{client}/{variant}/{i}"
        if self.wire:
            f, wall, cpu, line = self.client_run(client, "pub0", topic, N, SIZE, variant=variant)
            got = int(line["pub0"])
            span = line["last"] - line["first"]
            return {"recv_rate": (got - 1) / span if got > 1 and span > 0 else None, "received": got,
                    "sent_rate": N / (f.get("sent_s") or wall), "cpu": cpu / N, "peer_cpu": line["cpu_s"] / N}
        sub = subprocess.Popen(
            pinned(CLIENT_CPU, [os.path.join(BIN, "umqtt-bench"), "count", self.port, topic, "0", str(N)]),
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert sub.stdout.readline().strip() == "READY"
            f, wall, _, _ = self.client_run(client, "pub0", topic, N, SIZE, variant=variant)
            out, _ = sub.communicate(timeout=300)
        finally:
            sub.kill()
        c = parse(out)
        received = int(c["received"])
        rate = (received - 1) / (c["last"] - c["first"]) if received > 1 else None
        return {"recv_rate": rate, "received": received, "sent_rate": N / (f.get("sent_s") or wall)}

    def rtt(self, client, variant):
        f, _, _, _ = self.client_run(client, "rtt", f"bench/rtt/{client}", RTT_N, SIZE, variant=variant)
        return f

    def pipelined(self, client, qos, variant, window, i):
        topic = f"bench/q{qos}/{client}/{variant}/{window}/{i}"
        f, wall, cpu, line = self.client_run(client, f"pub{qos}", topic, N, SIZE, window, variant=variant)
        r = {"rate": N / (f.get("acked_s") or wall), "cpu": cpu / N}
        if line:
            if int(line[f"pub{qos}"]) != N:
                raise RuntimeError(f"the peer saw {int(line[f'pub{qos}'])} of {N} PUBLISHes")
            r["peer_cpu"] = line["cpu_s"] / N
        return r

    def drain(self, client, qos, i):
        if self.wire:
            cid = f"burst-q{qos}-n{N}-s{SIZE}-{client}-{i}"
            f, wall, cpu, line = self.client_run(client, "drain", cid, N, timeout=120)
            if int(line["sent"]) != N:
                raise RuntimeError(f"the peer wrote {int(line['sent'])} of {N}")
            r = {"rate": N / f.get("recv_s", wall), "cpu": cpu / N, "peer_cpu": line["cpu_s"] / N}
            if qos == 1:
                r["acks"] = int(line["acks"])
                if line["bad_acks"]:
                    raise RuntimeError(f"{int(line['bad_acks'])} PUBACKs for ids not in flight")
            return r
        cid = f"drain-{client}-{qos}-{i}"
        topic = f"bench/drain/{client}/{qos}/{i}"
        run(pinned(CLIENT_CPU, self.cmd(client, "prep", cid, topic, qos)[0]))
        run(pinned(CLIENT_CPU, [os.path.join(BIN, "umqtt-bench"), "fill", self.port, topic, str(N), str(SIZE),
                                str(qos)]))
        f, wall, _, _ = self.client_run(client, "drain", cid, N, timeout=60)
        return {"rate": N / f.get("recv_s", wall)}

    def counted(self, client, variant, mode, n, tool):
        """callgrind instructions or strace system calls of one run."""
        if mode.startswith("drain"):
            qos = mode[-1]
            args = [f"burst-q{qos}-n{n}-s{SIZE}-cg", n]
            mode = "drain"
        else:
            args = [f"bench/cg/{mode}", n, SIZE] + ([CG_WINDOW] if mode in ("pub1", "pub2") else [])
        cmd, stdin, env = self.cmd(client, mode, *args, variant=variant)
        out = tempfile.mktemp(prefix=f"{tool}-", dir=tempfile.gettempdir())
        if tool == "callgrind":
            wrap = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
        else:
            wrap = ["strace", "-f", "-c", "-o", out]
        try:
            self.peer.clear()
            run(pinned(CLIENT_CPU, wrap + cmd), stdin, timeout=900, env=env)
            with open(out) as f:
                text = f.read()
        finally:
            if os.path.exists(out):
                os.remove(out)
        if tool == "callgrind":
            return int(re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M).group(1))
        return int(re.search(r"^\s*\S+\s+\S+\s+\S+\s+(\d+)(?:\s+\d+)?\s+total\s*$", text, re.M).group(1))

    def per_message(self, client, variant, mode, tool):
        many = self.counted(client, variant, mode, CG_N, tool)
        return (many - self.counted(client, variant, mode, 0, tool)) / CG_N


def variants(client, mode):
    """The variants of `client` that run `mode`."""
    names = VARIANTS.get(client, [None])
    if client == "mosquitto" and mode != "pub0":
        # mosquitto_pub -l -q 1 -M W exits before it has sent every line
        # (34,467 of 100,000 reached a subscriber): not a valid QoS 1 run.
        return ["lib"]
    if client == "rumqttc" and mode in ("prep", "drain", "drain0", "drain1"):
        return ["mt"]
    return names


def repeats(client):
    """Runs per figure: paho is slow enough to be steady, and costs most."""
    return 1 if client == "paho" else REPEAT


def best(values, key, higher=True):
    values = [v for v in values if v is not None and v.get(key) is not None]
    if not values:
        return None
    return (max if higher else min)(values, key=lambda v: v[key])


def measure(bench):
    """Every figure against one peer; the runs of one workload go round the
    clients, so that a change of machine load hits them alike."""
    r = {}
    clients = bench.clients()

    def rounds(name, settings, fn):
        """settings: {client: [setting, ...]}; returns {client: {setting: [runs]}}."""
        out = {c: {s: [] for s in settings[c]} for c in clients}
        dead = set()
        for i in range(REPEAT):
            for c in clients:
                if i >= repeats(c):
                    continue
                for setting in settings[c]:
                    if (c, setting) in dead:
                        continue
                    log(f"[{bench.peer.name}] {name}: {c} {setting or ''} (run {i + 1})")
                    try:
                        out[c][setting].append(fn(c, setting, i))
                    except Unsupported:
                        dead.add((c, setting))
                        r[(c, name, "unsupported")] = True
                    except Exception as e:  # a client failing must not hide the others
                        log(f"  FAILED: {e}")
                        out[c][setting].append(None)
                        if isinstance(e, subprocess.TimeoutExpired):
                            dead.add((c, setting))
        return out

    def keep(c, key, run, tag):
        if run is None:
            return
        for k, v in run.items():
            r[(c, f"{key}.{k}")] = v
        r[(c, key + "_v")] = tag

    q0 = rounds("QoS 0 publish", {c: variants(c, "pub0") for c in clients},
                lambda c, v, i: bench.qos0(c, v, i))
    for c in clients:
        ok = [(x, v) for v, xs in q0[c].items() for x in xs if x and x["received"] == N]
        for key, field in (("q0_recv", "recv_rate"), ("q0_sent", "sent_rate")):
            b = best([x for x, _ in ok], field)
            if b:
                r[(c, key)] = b[field]
                r[(c, key + "_v")] = next(v for x, v in ok if x is b)
                if key == "q0_recv":
                    keep(c, key, b, r[(c, key + "_v")])
        lost = [N - x["received"] for xs in q0[c].values() for x in xs if x]
        r[(c, "q0_lost")] = min(lost, default=None)
    rtt = rounds("QoS 1 stop-and-wait", {c: variants(c, "rtt") for c in clients},
                 lambda c, v, i: bench.rtt(c, v))
    for c in clients:
        ok = [(x, v) for v, xs in rtt[c].items() for x in xs if x]
        if ok:
            x, v = min(ok, key=lambda xv: xv[0]["median_us"])
            r[(c, "rtt_median")], r[(c, "rtt_p99")] = x["median_us"], x["p99_us"]
            r[(c, "rtt_median_v")] = r[(c, "rtt_p99_v")] = v
    for qos in (1, 2):
        settings = {c: [(v, w) for v in variants(c, "pub1") for w in WINDOWS[c]] for c in clients}
        q = rounds(f"QoS {qos} pipelined", settings,
                   lambda c, vw, i: bench.pipelined(c, qos, vw[0], vw[1], i))
        for c in clients:
            per = {vw: best(xs, "rate") for vw, xs in q[c].items()}
            r[(c, f"q{qos}_all")] = {vw: x["rate"] for vw, x in per.items() if x}
            good = [(x, vw) for vw, x in per.items() if x]
            if good:
                x, vw = max(good, key=lambda xv: xv[0]["rate"])
                r[(c, f"q{qos}_rate")] = x["rate"]
                tag = f"{vw[0]} @{vw[1]}" if vw[0] else f"@{vw[1]}"
                keep(c, f"q{qos}_rate", x, tag)
            if r.get((c, f"QoS {qos} pipelined", "unsupported")):
                r[(c, f"q{qos}_rate_none")] = "no QoS 2"
    for qos in (0, 1):
        d = rounds(f"subscriber burst QoS {qos}", {c: variants(c, "drain") for c in clients},
                   lambda c, v, i: bench.drain(c, qos, i))
        for c in clients:
            x = best([y for xs in d[c].values() for y in xs], "rate")
            if x:
                r[(c, f"drain{qos}")] = x["rate"]
                keep(c, f"drain{qos}", x, None)
    if bench.wire:
        tools = ["callgrind"] if shutil.which("valgrind") else []
        tools += ["strace"] if shutil.which("strace") else []
        for tool in tools:
            modes = ("pub0", "pub1", "pub2", "drain0", "drain1") if tool == "callgrind" else ("drain0", "drain1")
            for c in clients:
                for mode in modes:
                    costs = {}
                    for v in variants(c, mode):
                        log(f"[wire] {tool} {mode}: {c} {v or ''}")
                        try:
                            costs[v] = bench.per_message(c, v, mode, tool)
                        except Unsupported:
                            r[(c, f"{tool}_{mode}_none")] = "no QoS 2"
                        except Exception as e:
                            log(f"  FAILED: {e}")
                    good = {k: x for k, x in costs.items() if x is not None}
                    if good:
                        v = min(good, key=good.get)
                        r[(c, f"{tool}_{mode}")], r[(c, f"{tool}_{mode}_v")] = good[v], v
    return r


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}{unit}"
    if v >= 10:
        return f"{v:,.1f}{unit}"
    return f"{v:,.2f}{unit}"


ROWS = [
    # title, key, higher is better, wire-speed peer only
    ("QoS 0 publish: msg/s received by the peer", "q0_recv", True, False),
    ("QoS 0 publish: msg/s written by the publish loop", "q0_sent", True, False),
    ("QoS 1 stop-and-wait: median round trip, µs", "rtt_median", False, False),
    ("QoS 1 stop-and-wait: p99 round trip, µs", "rtt_p99", False, False),
    ("QoS 1 pipelined: msg/s acknowledged (best window)", "q1_rate", True, False),
    ("QoS 2 pipelined: msg/s completed (best window)", "q2_rate", True, False),
    ("Subscriber burst, QoS 0: msg/s delivered", "drain0", True, False),
    ("Subscriber burst, QoS 1: msg/s delivered", "drain1", True, False),
    ("CPU µs per message, client / peer: QoS 0 publish", "cpu:q0_recv", False, True),
    ("CPU µs per message, client / peer: QoS 1 pipelined", "cpu:q1_rate", False, True),
    ("CPU µs per message, client / peer: QoS 2 pipelined", "cpu:q2_rate", False, True),
    ("CPU µs per message, client / peer: subscriber QoS 0", "cpu:drain0", False, True),
    ("CPU µs per message, client / peer: subscriber QoS 1", "cpu:drain1", False, True),
    ("Instructions per QoS 0 publish", "callgrind_pub0", False, True),
    (f"Instructions per pipelined QoS 1 publish (window {CG_WINDOW})", "callgrind_pub1", False, True),
    (f"Instructions per pipelined QoS 2 publish (window {CG_WINDOW})", "callgrind_pub2", False, True),
    ("Instructions per delivered message, subscriber QoS 0", "callgrind_drain0", False, True),
    ("Instructions per delivered message, subscriber QoS 1", "callgrind_drain1", False, True),
    ("System calls per delivered message, subscriber QoS 0", "strace_drain0", False, True),
    ("System calls per delivered message, subscriber QoS 1", "strace_drain1", False, True),
]


def table(r, wire):
    clients = ([CEILING] if wire else []) + CLIENTS
    rows = [row for row in ROWS if wire or not row[3]]
    if not wire:
        rows = [(t.replace("received by the peer", "received by a subscriber"), k, h, w) for t, k, h, w in rows]
    out = ["| Workload | " + " | ".join(TITLES[c] for c in clients) + " |",
           "|---|" + "---:|" * len(clients)]
    for title, key, higher, _ in rows:
        cells = []
        if key.startswith("cpu:"):
            k = key[4:]
            for c in clients:
                cu, pe = r.get((c, f"{k}.cpu")), r.get((c, f"{k}.peer_cpu"))
                cells.append("n/a" if cu is None else f"{cu * 1e6:.2f} / {pe * 1e6:.3f}")
            out.append(f"| {title} | " + " | ".join(cells) + " |")
            continue
        base, ceil = r.get(("umqtt", key)), r.get((CEILING, key))
        for c in clients:
            v = r.get((c, key))
            cell = fmt(v)
            tag = r.get((c, key + "_v"))
            if v is not None and tag:
                cell += f" {tag}"
            notes = []
            counts = key.startswith(("callgrind", "strace"))
            if v is not None and base and c != "umqtt" and not (c == CEILING and counts):
                notes.append(f"{v / base:.2f}× umqtt")
            if v is not None and ceil and c != CEILING and not counts:
                notes.append(f"{(ceil / v if higher else v / ceil):.1f}× off ceiling")
            if notes:
                cell += " (" + ", ".join(notes) + ")"
            if v is None and r.get((c, key + "_none")):
                cell = r[(c, key + "_none")]
            if key == "q0_recv" and v is None and r.get((c, "q0_lost")):
                cell = f"lost {r[(c, 'q0_lost')]:,}"
            if key == "drain1" and v is not None and wire and r.get((c, "drain1.acks")) not in (None, N):
                cell += f" [{r[(c, 'drain1.acks')]:,} of {N:,} PUBACKs]"
            cells.append(cell)
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    windows = "; ".join(
        f"QoS {q}, {TITLES[c]}: " + ", ".join(
            f"{vw[0] + ' ' if vw[0] else ''}{vw[1]}: {fmt(v)}" for vw, v in (r.get((c, f"q{q}_all")) or {}).items())
        for q in (1, 2) for c in clients if r.get((c, f"q{q}_all"))
    )
    return "\n".join(out), windows


def goals(r):
    """The goals of issue 17, checked against the wire-speed peer's figures."""
    def get(c, k):
        return r.get((c, k))

    def verdict(ok):
        return "**met**" if ok else "**not met**"

    others = [c for c in CLIENTS if c != "umqtt"]
    lines = ["Goals of issue 17, checked by the script on the wire-speed peer's figures:", ""]
    for key, title in (("q0_recv", "QoS 0 publish"), ("q1_rate", "pipelined QoS 1"),
                       ("drain0", "subscriber delivery QoS 0"), ("drain1", "subscriber delivery QoS 1")):
        u, ru = get("umqtt", key), get("rumqttc", key)
        if u is None or ru is None:
            lines.append(f"- {title}: no figure")
            continue
        beaten = [TITLES[c] for c in others if c != "rumqttc" and get(c, key) is not None and get(c, key) >= u]
        lines.append(f"- {title} ≥ 1.5× rumqttc and above libmosquitto and paho: {u / ru:.2f}× rumqttc"
                     f"{', not above ' + ', '.join(beaten) if beaten else ', above both'}: "
                     f"{verdict(u >= 1.5 * ru and not beaten)}")
    u = get("umqtt", "rtt_median")
    if u is not None:
        worse = [TITLES[c] for c in others if get(c, "rtt_median") is not None and get(c, "rtt_median") < u]
        lines.append(f"- QoS 1 stop-and-wait median no worse than any client: {u:.1f} µs"
                     f"{' (better: ' + ', '.join(worse) + ')' if worse else ''}: {verdict(not worse)}")
    for key, title in (("q0_recv", "QoS 0 publish"), ("q1_rate", "pipelined QoS 1")):
        u, ce = get("umqtt", key), get(CEILING, key)
        if None not in (u, ce):
            lines.append(f"- umqtt within 1.5× of the ceiling on {title}: ceiling / umqtt = {ce / u:.1f}: "
                         f"{verdict(ce / u <= 1.5)}")
    for mode in ("pub0", "pub1", "pub2", "drain0", "drain1"):
        u = get("umqtt", f"callgrind_{mode}")
        if u is None:
            lines.append(f"- fewer instructions/msg than every other client ({mode}): no umqtt figure")
            continue
        fewer = [TITLES[c] for c in others if get(c, f"callgrind_{mode}") is not None
                 and get(c, f"callgrind_{mode}") <= u]
        lines.append(f"- fewer instructions/msg than every other client ({mode}): {u:,.0f}"
                     f"{' (fewer or equal: ' + ', '.join(fewer) + ')' if fewer else ''}: {verdict(not fewer)}")
    return "\n".join(lines)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def environment():
    model = sh("lscpu | sed -n 's/^Model name: *//p' | head -1")
    cores = sh("nproc")

    def locked(name):
        return sh(f"grep -A1 'name = \"{name}\"' {ROOT}/bench/Cargo.lock | sed -n 's/version = //p'").strip('"')

    paho = sh(f"{PY} -c 'import paho.mqtt; print(paho.mqtt.__version__)'")
    return {
        "machine": f"{model}, {cores} cores ({platform.system()} {platform.release()})",
        "load": sh("cut -d' ' -f1-3 /proc/loadavg"),
        "versions": ", ".join([
            sh("rustc --version"),
            f"rumqttc {locked('rumqttc')}",
            f"rumqttd {locked('rumqttd')}",
            f"paho-mqtt {paho} on Python {platform.python_version()}",
            sh("mosquitto -h | head -1"),
            "libmosquitto " + sh("dpkg-query -W -f '${Version}' libmosquitto1"),
            sh("valgrind --version"),
            sh("strace -V | head -1"),
            sh("cc --version | head -1"),
        ]),
    }


METHOD = f"""Method (`scripts/bench`): three peers on ephemeral loopback ports, one table
each, the clients run against each in turn. Every process is pinned with `taskset`:
peer or broker on CPU {PEER_CPU}, client (and, for the brokers' QoS 0 row, the counting
subscriber) on CPU {CLIENT_CPU}. Every client connects with MQTT 3.1.1 with TCP_NODELAY on
(paho-mqtt: set on its socket by the bench script; mosquitto_pub: `--nodelay`); payloads of
{SIZE} bytes. Each figure is the best of {{repeat}} runs (paho-mqtt: one run); the runs
of a workload go round the clients so that changes of machine load hit them alike.
Where a client can be run more than one way, every way is measured and the best is
shown, tagged: rumqttc on tokio's multi-thread (`mt`, what `#[tokio::main]` gives) or
current-thread (`ct`) runtime; the C client as the `mosquitto_pub` CLI (`cli`, QoS 0
publish) or as libmosquitto driven in the caller's thread by `bench/mosq_bench.c`
(`lib`; `mosquitto_publish` + `mosquitto_loop`).

- **Peers.** The wire-speed peer (`bench/wire.c`, `wire peer`) is a C MQTT 3.1.1
  server for one connection at a time: CONNACK, SUBACK, PINGRESP; QoS 0 PUBLISH
  discarded, QoS 1 answered with PUBACK, QoS 2 with PUBREC, PUBREL with PUBCOMP; every
  packet of one `read` (256 KiB buffer) handled, then the answers written in one
  `write`. For the subscriber rows a CONNECT with client id `burst-qQ-nN-sS-…` gets
  CONNACK and then a pre-encoded burst of N PUBLISHes, written as fast as the socket
  takes them (at most 65,535 unacknowledged at QoS 1); every PUBACK is checked against
  the ids in flight. After each connection it reports what it saw and its own CPU time
  (`getrusage`): the "client / peer" rows. rumqttd {{rumqttd}} (crates.io, embedded in
  `bench/src/bin/rumqttd.rs`, tokio multi-thread runtime plus its router thread)
  with `max_inflight_count` and `max_outgoing_packet_count` 65,535 and 1 GiB segments.
  Mosquitto with `set_tcp_nodelay true`, `max_inflight_messages 0`,
  `max_queued_messages 0`, `max_queued_bytes 0`, `queue_qos0_messages true`.
- **Ceiling** (wire-speed peer only): `wire raw`, the same peer driven by loops with no
  MQTT logic: pre-encoded PUBLISH bytes written in large writes (QoS 1 / QoS 2: up to
  the window in flight, acks read as 4-byte records, PUBREC answered with a pre-shaped
  PUBREL); subscriber rows: read and count (QoS 1: a PUBACK for each message, one write
  per read). "× off ceiling" = ceiling / client for rates, client / ceiling for times.
- QoS 0 publish: {{n}} messages. Wire-speed peer: "received" = messages / (the peer's
  read that brought the last PUBLISH − the one that brought the first), only from runs
  where all arrived. Brokers: one subscriber for every publisher (the umqtt bench binary
  in `count` mode, subscribed at QoS 0, 16 KiB receive buffer) counts them; "received" =
  messages / (last − first arrival). "written" = messages / time of the publisher's own
  loop, from after CONNACK to the last write (mosquitto_pub: the whole process, `-l` from
  a file).
- QoS 1 stop-and-wait: {{rtt_n}} publishes (after 100 unmeasured), each timed from the
  publish call to its PUBACK.
- QoS 1 / QoS 2 pipelined: {{n}} messages until every PUBACK (PUBCOMP) is in, for each
  client's in-flight settings ({{windows}}); the best is shown with its window. umqtt:
  `queue_publish` until `WouldBlock`, then `publish_no_wait` (QoS 1 or 2),
  `wait_all_acked`, `max_in_flight` = window; rumqttc:
  `set_inflight`, request channel of 1024; paho: `max_inflight_messages_set`;
  libmosquitto: `mosquitto_max_inflight_messages_set`, `mosquitto_loop` whenever the
  window is full. "no QoS 2": the client refuses `QoS::ExactlyOnce` publishes.
- Subscriber burst: timed from connecting to the handler having seen all {{n}}.
  Wire-speed peer: the burst described above. Brokers: each client subscribes on a
  persistent session (clean session off) and disconnects; the umqtt bench binary
  publishes {{n}} messages (QoS 0, or QoS 1 pipelined) that the broker queues; the client
  resumes the session. rumqttc: `mt`; C: `lib`.
- CPU, client / peer (wire-speed peer): user + system time of the client process
  (`getrusage` of the reaped child, all threads, including connect and teardown) and
  of the peer for that connection, per message, in the run shown above.
- Instructions (wire-speed peer): `valgrind --tool=callgrind` counts user-space
  instructions of the whole client process for {{cg_n}} and for 0 messages (same connect
  and teardown); the difference / {{cg_n}} is shown (all threads; the lower of the ways
  for rumqttc and C). QoS 1 and QoS 2 use a window of {CG_WINDOW}. Python's figure
  includes the interpreter; kernel work is not counted. System calls: `strace -f -c`
  the same way.
- Runtimes: umqtt on a tokio current-thread runtime, the client in a spawned local task
  over `embedded_io_adapters::tokio_1::FromTokio<TcpStream>`, 16 KiB receive buffer and
  a transmit buffer sized for the window; rumqttc publishing from a spawned task while
  the event loop is polled (stop-and-wait: in turn, in one task).
"""


def write_section(text):
    body = ""
    if os.path.exists(OUT):
        with open(OUT) as f:
            body = f.read()
    else:
        body = "# Benchmarks\n"
    section = "## Client\n\n" + text.strip() + "\n"
    m = re.search(r"^## Client\b.*?(?=^## |\Z)", body, re.M | re.S)
    if m and NOTES_MARK in m.group(0):
        # Hand-written analysis below the mark survives a re-run.
        section += "\n" + m.group(0)[m.group(0).index(NOTES_MARK):].rstrip("\n") + "\n"
    if m:
        body = body[: m.start()] + section + ("\n" if body[m.end():] else "") + body[m.end():]
    else:
        body = body.rstrip("\n") + "\n\n" + section
    with open(OUT, "w") as f:
        f.write(body)


def main():
    started = time.time()
    env = environment()
    tmp = tempfile.mkdtemp(prefix="umqtt-bench-")
    results = {}
    try:
        for name in PEERS:
            peer = {"wire": Wire, "rumqttd": Rumqttd, "mosquitto": Mosquitto}[name](tmp)
            try:
                results[name] = measure(Bench(peer, tmp))
            finally:
                peer.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    env_end = sh("cut -d' ' -f1-3 /proc/loadavg")
    parts = [
        f"Machine: {env['machine']}; load average {env['load']} at the start, {env_end} at the end "
        f"(a shared machine: treat differences under ~20% as noise).  \n"
        f"Versions: {env['versions']}.  \n"
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
        f"{time.time() - started:.0f} s. In each cell: the figure, the setting that gave it, "
        f"its ratio to umqtt's figure and (wire-speed peer) how far it is from the ceiling."
    ]
    for name in PEERS:
        tab, windows = table(results[name], name == "wire")
        parts.append(f"### {PEER_TITLES[name]}\n\n{tab}\n\nPipelined, msg/s by in-flight window: {windows}.")
        if name == "wire":
            parts.append(goals(results[name]))
    rumqttd = sh(f"grep -A1 'name = \"rumqttd\"' {ROOT}/bench/Cargo.lock | sed -n 's/version = //p'").strip('"')
    parts.append(METHOD.format(repeat=REPEAT, n=f"{N:,}", rtt_n=f"{RTT_N:,}", cg_n=f"{CG_N:,}", rumqttd=rumqttd,
                               windows="; ".join(f"{TITLES[c]} {WINDOWS[c]}" for c in [CEILING] + CLIENTS)))
    text = "\n\n".join(parts)
    print(text)
    if OUT:
        write_section(text)
        log(f"written into {OUT}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Runs the client benchmark (called by scripts/bench, which builds first).

Starts a private Mosquitto on an ephemeral loopback port, runs the same
workloads with umqtt, rumqttc, paho-mqtt (Python) and mosquitto_pub /
libmosquitto (C), prints a markdown table and writes it into the "Client"
section of BENCHMARKS.md (other sections are kept).

Environment: BENCH_BIN (folder with umqtt-bench, rumqttc-bench,
mosq_bench), BENCH_N (messages per throughput run, default 100000),
BENCH_RTT_N (default 10000), BENCH_CG_N (callgrind messages, default 10000),
BENCH_REPEAT (runs per figure, best kept, default 3), BENCH_OUT (markdown
file, default BENCHMARKS.md; empty: do not write).
"""
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BENCH_BIN", os.path.join(ROOT, "bench", "target", "release"))
N = int(os.environ.get("BENCH_N", "100000"))
RTT_N = int(os.environ.get("BENCH_RTT_N", "10000"))
CG_N = int(os.environ.get("BENCH_CG_N", "10000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "BENCHMARKS.md"))
SIZE = 64
CG_WINDOW = 64  # in-flight window of the QoS 1 loop counted with callgrind
CLIENTS = ["umqtt", "rumqttc", "paho", "mosquitto"]
TITLES = {
    "umqtt": "umqtt",
    "rumqttc": "rumqttc",
    "paho": "paho-mqtt (Python)",
    "mosquitto": "mosquitto_pub / libmosquitto (C)",
}
WINDOWS = {"umqtt": [16, 64, 256, 1024], "rumqttc": [16, 64, 256, 1024], "paho": [64, 1024], "mosquitto": [64, 1024]}
# Ways to run a client, all tried, the best kept and named in the table:
# rumqttc on tokio's multi-thread ("mt", its `#[tokio::main]` default) or
# current-thread ("ct") runtime; the C client as the mosquitto_pub CLI
# ("cli", publish modes only) or libmosquitto driven by `bench/mosq_bench.c`
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


class Broker:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="umqtt-bench-")
        self.port = free_port()
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "set_tcp_nodelay true\nmax_inflight_messages 0\nmax_queued_messages 0\n"
                "max_queued_bytes 0\nqueue_qos0_messages true\n"
            )
        program = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if os.geteuid() == 0:
            with open(conf, "a") as f:
                f.write("user root\n")
        self.log = open(os.path.join(self.dir, "mosquitto.log"), "w")
        self.proc = subprocess.Popen([program, "-c", conf], stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    sys.exit("mosquitto did not start: " + open(self.log.name).read())
                time.sleep(0.05)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def parse(text):
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.eE+-]+)", text)}


def run(cmd, stdin=None, timeout=300, env=None):
    """Runs cmd; returns (key=value figures, wall seconds) or raises."""
    t = time.perf_counter()
    f = open(stdin) if stdin else None
    try:
        p = subprocess.run(cmd, stdin=f or subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, env=env and {**os.environ, **env})
    finally:
        if f:
            f.close()
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return parse(p.stdout), wall


class Bench:
    def __init__(self, broker):
        self.port = str(broker.port)
        self.lines = {}
        for n in (N, CG_N, 0):
            path = os.path.join(broker.dir, f"lines-{n}.txt")
            line = "".join(chr(ord("a") + i % 26) for i in range(SIZE)) + "\n"
            with open(path, "w") as f:
                f.write(line * n)
            self.lines[n] = path

    def cmd(self, client, mode, *args, variant=None):
        """The command line of `client` for a mode, its stdin file and
        extra environment."""
        args = [str(a) for a in args]
        if client == "umqtt":
            return [os.path.join(BIN, "umqtt-bench"), mode, self.port, *args], None, None
        if client == "rumqttc":
            env = {"RUNTIME": "current"} if variant == "ct" else None
            return [os.path.join(BIN, "rumqttc-bench"), mode, self.port, *args], None, env
        if client == "paho":
            return [PY, os.path.join(ROOT, "scripts", "bench_paho.py"), mode, self.port, *args], None, None
        if mode in ("pub0", "pub1") and variant == "cli":
            topic, n = args[0], int(args[1])
            cmd = ["mosquitto_pub", "-p", self.port, "-t", topic, "-l", "--nodelay", "-q", mode[-1]]
            if mode == "pub1":
                cmd += ["-M", args[3]]
            return cmd, self.lines[n], None
        return [os.path.join(BIN, "mosq_bench"), mode, self.port, *args], None, None

    def time_publisher(self, client, mode, *args, variant=None):
        """Seconds the publish loop took (mosquitto_pub: the process)."""
        cmd, stdin, env = self.cmd(client, mode, *args, variant=variant)
        figures, wall = run(cmd, stdin, env=env)
        return figures.get("sent_s") or figures.get("acked_s") or wall

    def qos0(self, client, variant, i):
        topic = f"bench/q0/{client}/{variant}/{i}"
        sub = subprocess.Popen(
            [os.path.join(BIN, "umqtt-bench"), "count", self.port, topic, "0", str(N)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert sub.stdout.readline().strip() == "READY"
            sent = self.time_publisher(client, "pub0", topic, N, SIZE, variant=variant)
            out, _ = sub.communicate(timeout=300)
        finally:
            sub.kill()
        f = parse(out)
        received = int(f["received"])
        rate = (received - 1) / (f["last"] - f["first"]) if received > 1 else 0.0
        return {"recv_rate": rate, "received": received, "sent_rate": N / sent}

    def rtt(self, client, variant):
        cmd, _, env = self.cmd(client, "rtt", f"bench/rtt/{client}", RTT_N, SIZE, variant=variant)
        return run(cmd, env=env)[0]

    def pub1(self, client, variant, window, i):
        topic = f"bench/q1/{client}/{variant}/{window}/{i}"
        return N / self.time_publisher(client, "pub1", topic, N, SIZE, window, variant=variant)

    def drain(self, client, qos, i):
        cid = f"drain-{client}-{qos}-{i}"
        topic = f"bench/drain/{client}/{qos}/{i}"
        run(self.cmd(client, "prep", cid, topic, qos)[0])
        run([os.path.join(BIN, "umqtt-bench"), "fill", self.port, topic, str(N), str(SIZE), str(qos)])
        figures, wall = run(self.cmd(client, "drain", cid, N)[0])
        return N / figures.get("recv_s", wall)

    def instructions(self, client, variant, mode, n):
        out = tempfile.mktemp(prefix="callgrind-", dir=tempfile.gettempdir())
        args = ["bench/cg", n, SIZE] + ([CG_WINDOW] if mode == "pub1" else [])
        cmd, stdin, env = self.cmd(client, mode, *args, variant=variant)
        run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, *cmd], stdin, timeout=900, env=env)
        with open(out) as f:
            text = f.read()
        os.remove(out)
        return int(re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M).group(1))

    def per_message(self, client, variant, mode):
        many = self.instructions(client, variant, mode, CG_N)
        return (many - self.instructions(client, variant, mode, 0)) / CG_N


def variants(client, mode):
    """The variants of `client` that run `mode`."""
    names = VARIANTS.get(client, [None])
    if client == "mosquitto" and mode != "pub0":
        # mosquitto_pub -l -q 1 -M W exits before it has sent every line
        # (34,467 of 100,000 reached a subscriber): not a valid QoS 1 run.
        return ["lib"]
    if client == "rumqttc" and mode in ("prep", "drain"):
        return ["mt"]
    return names


def repeats(client):
    """Runs per figure: paho is slow enough to be steady, and costs most."""
    return 1 if client == "paho" else REPEAT


def attempt(results, key, fn):
    try:
        results[key] = fn()
    except Exception as e:  # a client failing must not hide the others
        log(f"  {key}: FAILED: {e}")
        results[key] = None


def best(values, higher=True):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return max(values) if higher else min(values)


def pick(results, higher=True):
    """The best of {setting: value}: (value, setting), or (None, None)."""
    good = {k: v for k, v in results.items() if v is not None}
    if not good:
        return None, None
    k = (max if higher else min)(good, key=good.get)
    return good[k], k


def measure(bench):
    """Every figure; the runs of one workload go round the clients, so
    that a change of machine load hits them alike."""
    r = {}

    def rounds(name, settings, fn):
        """settings: {client: [setting, ...]}; returns {client: {setting: [runs]}}."""
        out = {c: {s: [] for s in settings[c]} for c in CLIENTS}
        for i in range(REPEAT):
            for c in CLIENTS:
                if i >= repeats(c):
                    continue
                for setting in settings[c]:
                    log(f"{name}: {c} {setting or ''} (run {i + 1})")
                    attempt(r, "tmp", lambda: fn(c, setting, i))
                    out[c][setting].append(r["tmp"])
        return out

    q0 = rounds("QoS 0 publish", {c: variants(c, "pub0") for c in CLIENTS},
                lambda c, v, i: bench.qos0(c, v, i))
    for c in CLIENTS:
        ok = {v: [x for x in runs if x] for v, runs in q0[c].items()}
        r[(c, "q0_recv")], r[(c, "q0_recv_v")] = pick(
            {v: best([x["recv_rate"] for x in xs if x["received"] == N]) for v, xs in ok.items()})
        r[(c, "q0_sent")], r[(c, "q0_sent_v")] = pick(
            {v: best([x["sent_rate"] for x in xs if x["received"] == N]) for v, xs in ok.items()})
        r[(c, "q0_lost")] = min([N - x["received"] for xs in ok.values() for x in xs], default=None)
    rtt = rounds("QoS 1 stop-and-wait", {c: variants(c, "rtt") for c in CLIENTS},
                 lambda c, v, i: bench.rtt(c, v))
    for c in CLIENTS:
        ok = [(x, v) for v, runs in rtt[c].items() for x in runs if x]
        x, v = min(ok, key=lambda xv: xv[0]["median_us"]) if ok else (None, None)
        r[(c, "rtt_median")] = x and x["median_us"]
        r[(c, "rtt_p99")] = x and x["p99_us"]
        r[(c, "rtt_median_v")] = r[(c, "rtt_p99_v")] = v
    settings = {c: [(v, w) for v in variants(c, "pub1") for w in WINDOWS[c]] for c in CLIENTS}
    q1 = rounds("QoS 1 pipelined", settings, lambda c, vw, i: bench.pub1(c, vw[0], vw[1], i))
    for c in CLIENTS:
        rates = {vw: best(runs) for vw, runs in q1[c].items()}
        r[(c, "q1_rate")], vw = pick(rates)
        r[(c, "q1_rate_v")] = vw and (f"{vw[0]} @{vw[1]}" if vw[0] else f"@{vw[1]}")
        r[(c, "q1_all")] = rates
    for qos in (0, 1):
        d = rounds(f"subscriber burst QoS {qos}", {c: [None] for c in CLIENTS},
                   lambda c, v, i: bench.drain(c, qos, i))
        for c in CLIENTS:
            r[(c, f"drain{qos}")] = best(d[c][None])
    if shutil.which("valgrind"):
        for c in CLIENTS:
            for mode in ("pub0", "pub1"):
                costs = {}
                for v in variants(c, mode):
                    log(f"callgrind {mode}: {c} {v or ''}")
                    attempt(r, "tmp", lambda: bench.per_message(c, v, mode))
                    costs[v] = r["tmp"]
                r[(c, f"cg_{mode}")], r[(c, f"cg_{mode}_v")] = pick(costs, higher=False)
    return r


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}{unit}"
    return f"{v:,.1f}{unit}"


def table(r):
    rows = [
        ("QoS 0 publish: msg/s received by the subscriber", "q0_recv", True),
        ("QoS 0 publish: msg/s written by the publish loop", "q0_sent", True),
        ("QoS 1 stop-and-wait: median round trip, µs", "rtt_median", False),
        ("QoS 1 stop-and-wait: p99 round trip, µs", "rtt_p99", False),
        ("QoS 1 pipelined: msg/s acknowledged (best window)", "q1_rate", True),
        ("Subscriber burst, QoS 0: msg/s delivered", "drain0", True),
        ("Subscriber burst, QoS 1: msg/s delivered", "drain1", True),
        ("CPU: instructions per QoS 0 publish", "cg_pub0", False),
        (f"CPU: instructions per pipelined QoS 1 publish (window {CG_WINDOW})", "cg_pub1", False),
    ]
    out = ["| Workload | " + " | ".join(TITLES[c] for c in CLIENTS) + " |",
           "|---|" + "---:|" * len(CLIENTS)]
    for title, key, _higher in rows:
        base = r.get(("umqtt", key))
        cells = []
        for c in CLIENTS:
            v = r.get((c, key))
            cell = fmt(v)
            tag = r.get((c, key + "_v"))
            if v is not None and tag:
                cell += f" {tag}"
            if v is not None and base:
                cell += f" ({v / base:.2f}×)"
            if key == "q0_recv" and v is None and r.get((c, "q0_lost")):
                cell = f"lost {r[(c, 'q0_lost')]:,}"
            cells.append(cell)
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    windows = "; ".join(
        f"{TITLES[c]}: " + ", ".join(
            f"{vw[0] + ' ' if vw[0] else ''}{vw[1]}: {fmt(v)}" for vw, v in (r.get((c, "q1_all")) or {}).items())
        for c in CLIENTS
    )
    return "\n".join(out) + "\n\n" + goals(r), windows


def goals(r):
    """The goals of issue 8, checked against the figures."""
    def get(c, k):
        return r.get((c, k))

    def verdict(ok):
        return "**met**" if ok else "**not met**"

    others = [c for c in CLIENTS if c != "umqtt"]
    lines = ["Goals of issue 8, checked by the script on these figures:", ""]
    for key, title in (("q0_recv", "QoS 0 throughput (received)"), ("q1_rate", "pipelined QoS 1 throughput")):
        u, ru = get("umqtt", key), get("rumqttc", key)
        if u is None or ru is None:
            lines.append(f"- {title}: no figure")
            continue
        above = all(get(c, key) is None or u > get(c, key) for c in others)
        lines.append(f"- {title} >= 1.5x rumqttc and above every other client: "
                     f"{u / ru:.2f}x rumqttc, {'above' if above else 'not above'} every other: "
                     f"{verdict(u >= 1.5 * ru and above)}")
    u, ru, pa = get("umqtt", "rtt_median"), get("rumqttc", "rtt_median"), get("paho", "rtt_median")
    if None not in (u, ru, pa):
        lines.append(f"- stop-and-wait median no worse than rumqttc and below paho: "
                     f"{u:.1f} µs vs {ru:.1f} / {pa:.1f} µs: {verdict(u <= ru and u < pa)}")
    for mode in ("pub0", "pub1"):
        u, ru = get("umqtt", f"cg_{mode}"), get("rumqttc", f"cg_{mode}")
        if None not in (u, ru):
            lines.append(f"- fewer instructions/msg than rumqttc ({'QoS 0' if mode == 'pub0' else 'QoS 1'}): "
                         f"{u:,.0f} vs {ru:,.0f}: {verdict(u < ru)}")
    return "\n".join(lines)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def environment():
    model = sh("lscpu | sed -n 's/^Model name: *//p' | head -1")
    cores = sh("nproc")
    rumqttc = sh(f"grep -A1 'name = \"rumqttc\"' {ROOT}/bench/Cargo.lock | sed -n 's/version = //p'").strip('"')
    paho = sh(f"{PY} -c 'import paho.mqtt; print(paho.mqtt.__version__)'")
    return {
        "machine": f"{model}, {cores} cores ({platform.system()} {platform.release()})",
        "load": sh("cut -d' ' -f1-3 /proc/loadavg"),
        "versions": ", ".join([
            sh("rustc --version"),
            f"rumqttc {rumqttc}",
            f"paho-mqtt {paho} on Python {platform.python_version()}",
            sh("mosquitto -h | head -1"),
            "libmosquitto " + sh("dpkg-query -W -f '${Version}' libmosquitto1"),
            sh("valgrind --version"),
        ]),
    }


METHOD = f"""Method (`scripts/bench`): a private Mosquitto on an ephemeral loopback port with
`set_tcp_nodelay true`, `max_inflight_messages 0`, `max_queued_messages 0`,
`max_queued_bytes 0` and `queue_qos0_messages true` (the broker never throttles);
every client connects with MQTT 3.1.1 with TCP_NODELAY on (paho-mqtt: set on its socket
by the bench script; mosquitto_pub: `--nodelay`); payloads of {SIZE} bytes. Each figure is
the best of {{repeat}} runs (paho-mqtt: one run); the runs of a workload go round the
clients so that changes of machine load hit them alike. Where a client can be run more
than one way, every way is measured and the best is shown, tagged: rumqttc on tokio's
multi-thread (`mt`, what `#[tokio::main]` gives) or current-thread (`ct`) runtime; the C
client as the `mosquitto_pub` CLI (`cli`) or as libmosquitto driven in the caller's
thread by `bench/mosq_bench.c` (`lib`; `mosquitto_publish` + `mosquitto_loop`).
`mosquitto_pub -l -q 1 -M W` is left out of the QoS 1 rows: it exits before it has sent
every line (34,467 of 100,000 reached a subscriber), so its times are not comparable.

- QoS 0 publish: {{n}} messages; one subscriber for every publisher (the umqtt bench
  binary in `count` mode, subscribed at QoS 0, 16 KiB receive buffer) counts them;
  "received" = messages / (last − first arrival), only from runs where all arrived;
  "written" = messages / time of the
  publisher's own loop, from after CONNACK to the last write (mosquitto_pub: the whole
  process, `-l` from a file). Mosquitto is single-threaded and shares the 2 cores with
  publisher and subscriber: the "received" rate is the broker's routing rate once the
  publisher outruns it (see the notes).
- QoS 1 stop-and-wait: {{rtt_n}} publishes (after 100 unmeasured), each timed from the
  publish call to its PUBACK (mosquitto_pub cannot time this: `lib` only).
- QoS 1 pipelined: {{n}} messages until every PUBACK is in, for each client's in-flight
  settings ({{windows}}); the best is shown with its window. umqtt: `publish_no_wait` +
  `wait_all_acked`, `max_in_flight` = window; rumqttc: `set_inflight`, request channel
  of 1024; paho: `max_inflight_messages_set`; libmosquitto:
  `mosquitto_max_inflight_messages_set`, `mosquitto_loop` whenever the window is full.
- Subscriber burst: each client subscribes on a persistent session (clean session off)
  and disconnects; the umqtt bench binary publishes {{n}} messages (QoS 0, or QoS 1
  pipelined) that the broker queues; the client resumes the session and is timed from
  connecting to its handler having seen all {{n}}. rumqttc: `mt`; C: `lib`.
- CPU: `valgrind --tool=callgrind` counts user-space instructions of the whole
  publishing process for {{cg_n}} and for 0 messages (same connect and teardown); the
  difference / {{cg_n}} is shown (all threads; the lower of the two ways for rumqttc
  and C). QoS 1 uses a window of {CG_WINDOW}. Python's figure includes the interpreter;
  kernel work (the socket writes) is not counted.
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
    broker = Broker()
    try:
        r = measure(Bench(broker))
    finally:
        broker.stop()
    tab, windows = table(r)
    env_end = sh("cut -d' ' -f1-3 /proc/loadavg")
    text = (
        f"Machine: {env['machine']}; load average {env['load']} at the start, {env_end} at the end "
        f"(a shared machine: treat differences under ~20% as noise).  \n"
        f"Versions: {env['versions']}.  \n"
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
        f"{time.time() - started:.0f} s. Ratios are each figure divided by umqtt's.\n\n"
        + tab + "\n\n"
        + f"Pipelined QoS 1, msg/s by in-flight window: {windows}.\n\n"
        + METHOD.format(repeat=REPEAT, n=f"{N:,}", rtt_n=f"{RTT_N:,}", cg_n=f"{CG_N:,}",
                        windows=", ".join(f"{TITLES[c]} {WINDOWS[c]}" for c in CLIENTS))
    )
    print(text)
    if OUT:
        write_section(text)
        log(f"written into {OUT}")


if __name__ == "__main__":
    main()

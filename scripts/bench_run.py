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


def run(cmd, stdin=None, timeout=300):
    """Runs cmd; returns (key=value figures, wall seconds) or raises."""
    t = time.perf_counter()
    f = open(stdin) if stdin else None
    try:
        p = subprocess.run(cmd, stdin=f or subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
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

    def cmd(self, client, mode, *args):
        """The command line of `client` for a mode, and its stdin file."""
        args = [str(a) for a in args]
        if client == "umqtt":
            return [os.path.join(BIN, "umqtt-bench"), mode, self.port, *args], None
        if client == "rumqttc":
            return [os.path.join(BIN, "rumqttc-bench"), mode, self.port, *args], None
        if client == "paho":
            return [PY, os.path.join(ROOT, "scripts", "bench_paho.py"), mode, self.port, *args], None
        if mode in ("pub0", "pub1"):
            topic, n = args[0], int(args[1])
            cmd = ["mosquitto_pub", "-p", self.port, "-t", topic, "-l", "-q", mode[-1]]
            if mode == "pub1":
                cmd += ["-M", args[3]]
            return cmd, self.lines[n]
        return [os.path.join(BIN, "mosq_bench"), mode, self.port, *args], None

    def time_publisher(self, client, mode, *args):
        """Seconds the publish loop took (mosquitto_pub: the process)."""
        cmd, stdin = self.cmd(client, mode, *args)
        figures, wall = run(cmd, stdin)
        return figures.get("sent_s") or figures.get("acked_s") or wall

    def qos0(self, client, i):
        topic = f"bench/q0/{client}/{i}"
        sub = subprocess.Popen(
            [os.path.join(BIN, "umqtt-bench"), "count", self.port, topic, "0", str(N)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert sub.stdout.readline().strip() == "READY"
            sent = self.time_publisher(client, "pub0", topic, N, SIZE)
            out, _ = sub.communicate(timeout=300)
        finally:
            sub.kill()
        f = parse(out)
        received = int(f["received"])
        rate = (received - 1) / (f["last"] - f["first"]) if received > 1 else 0.0
        return {"recv_rate": rate, "received": received, "sent_rate": N / sent}

    def rtt(self, client):
        cmd, _ = self.cmd(client, "rtt", f"bench/rtt/{client}", RTT_N, SIZE)
        return run(cmd)[0]

    def pub1(self, client, window, i):
        topic = f"bench/q1/{client}/{i}"
        return N / self.time_publisher(client, "pub1", topic, N, SIZE, window)

    def drain(self, client, qos, i):
        cid = f"drain-{client}-{qos}-{i}"
        topic = f"bench/drain/{client}/{qos}/{i}"
        run(self.cmd(client, "prep", cid, topic, qos)[0])
        run([os.path.join(BIN, "umqtt-bench"), "fill", self.port, topic, str(N), str(SIZE), str(qos)])
        figures, wall = run(self.cmd(client, "drain", cid, N)[0])
        return N / figures.get("recv_s", wall)

    def instructions(self, client, mode, n):
        out = tempfile.mktemp(prefix="callgrind-", dir=tempfile.gettempdir())
        args = ["bench/cg", n, SIZE] + ([CG_WINDOW] if mode == "pub1" else [])
        cmd, stdin = self.cmd(client, mode, *args)
        run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, *cmd], stdin, timeout=900)
        with open(out) as f:
            text = f.read()
        os.remove(out)
        return int(re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M).group(1))

    def per_message(self, client, mode):
        return (self.instructions(client, mode, CG_N) - self.instructions(client, mode, 0)) / CG_N


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


def measure(bench):
    r = {}
    for c in CLIENTS:
        log(f"QoS 0 publish: {c}")
        runs = []
        for i in range(repeats(c)):
            attempt(r, "tmp", lambda: bench.qos0(c, i))
            runs.append(r["tmp"])
        ok = [x for x in runs if x]
        r[(c, "q0_recv")] = best([x["recv_rate"] for x in ok if x["received"] == N])
        r[(c, "q0_sent")] = best([x["sent_rate"] for x in ok])
        r[(c, "q0_lost")] = min([N - x["received"] for x in ok], default=None)
    for c in CLIENTS:
        log(f"QoS 1 stop-and-wait: {c}")
        runs = []
        for i in range(repeats(c)):
            attempt(r, "tmp", lambda: bench.rtt(c))
            runs.append(r["tmp"])
        ok = [x for x in runs if x]
        pick = min(ok, key=lambda x: x["median_us"]) if ok else None
        r[(c, "rtt_median")] = pick and pick["median_us"]
        r[(c, "rtt_p99")] = pick and pick["p99_us"]
    for c in CLIENTS:
        rates = {}
        for w in WINDOWS[c]:
            log(f"QoS 1 pipelined: {c} window {w}")
            vals = []
            for i in range(repeats(c)):
                attempt(r, "tmp", lambda: bench.pub1(c, w, f"{w}-{i}"))
                vals.append(r["tmp"])
            rates[w] = best(vals)
        good = {w: v for w, v in rates.items() if v}
        w = max(good, key=good.get) if good else None
        r[(c, "q1_rate")] = good.get(w) if w else None
        r[(c, "q1_window")] = w
        r[(c, "q1_all")] = rates
    for qos in (0, 1):
        for c in CLIENTS:
            log(f"subscriber burst QoS {qos}: {c}")
            vals = []
            for i in range(repeats(c)):
                attempt(r, "tmp", lambda: bench.drain(c, qos, i))
                vals.append(r["tmp"])
            r[(c, f"drain{qos}")] = best(vals)
    if shutil.which("valgrind"):
        for c in CLIENTS:
            for mode in ("pub0", "pub1"):
                log(f"callgrind {mode}: {c}")
                attempt(r, (c, f"cg_{mode}"), lambda: bench.per_message(c, mode))
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
            if v is not None and key == "q1_rate":
                cell += f" @{r[(c, 'q1_window')]}"
            if v is not None and base:
                cell += f" ({v / base:.2f}×)"
            if key == "q0_recv" and v is None and r.get((c, "q0_lost")):
                cell = f"lost {r[(c, 'q0_lost')]:,}"
            cells.append(cell)
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    windows = "; ".join(
        f"{TITLES[c]}: " + ", ".join(f"{w}: {fmt(v)}" for w, v in (r.get((c, "q1_all")) or {}).items())
        for c in CLIENTS
    )
    return "\n".join(out), windows


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
every client connects with MQTT 3.1.1 and TCP_NODELAY where it offers it; payloads of
{SIZE} bytes. Each figure is the best of {{repeat}} runs (paho-mqtt: one run).

- QoS 0 publish: {{n}} messages; one subscriber for every publisher (the umqtt bench
  binary in `count` mode, subscribed at QoS 0, 16 KiB receive buffer) counts them;
  "received" = messages / (last − first arrival); "written" = messages / time of the
  publisher's own loop (mosquitto_pub: the whole process, `-l` from a file).
- QoS 1 stop-and-wait: {{rtt_n}} publishes (after 100 unmeasured), each timed from the
  publish call to its PUBACK. mosquitto_pub cannot time this: `bench/mosq_bench.c`
  does it with libmosquitto (`mosquitto_publish` + `mosquitto_loop`).
- QoS 1 pipelined: {{n}} messages until every PUBACK is in, for each client's in-flight
  settings ({{windows}}); the best is shown with its window. umqtt: `publish_no_wait` +
  `wait_all_acked`, `max_in_flight` = window; rumqttc: `set_inflight`, request channel
  of 1024; paho: `max_inflight_messages_set`; mosquitto_pub: `-M`.
- Subscriber burst: each client subscribes on a persistent session (clean session off)
  and disconnects; the umqtt bench binary publishes {{n}} messages (QoS 0, or QoS 1
  pipelined) that the broker queues; the client resumes the session and is timed from
  connecting to its handler having seen all {{n}}. The C column is libmosquitto
  (`mosq_bench drain`).
- CPU: `valgrind --tool=callgrind` counts user-space instructions of the whole
  publishing process for {{cg_n}} and for 0 messages (same connect and teardown); the
  difference / {{cg_n}} is shown. QoS 1 uses a window of {CG_WINDOW}. Python's figure
  includes the interpreter; kernel work (the socket writes) is not counted.
- Runtimes: umqtt on a tokio current-thread runtime, the client in a spawned local task
  over `embedded_io_adapters::tokio_1::FromTokio<TcpStream>`; rumqttc on tokio's
  multi-thread runtime (its documented `#[tokio::main]` setting), publishing from a
  spawned task while the event loop is polled.
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

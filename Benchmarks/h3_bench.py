#!/usr/bin/env python3
"""HTTP/3 benchmark: Berth vs Caddy (`tls internal` on both), plus CPU per request for h1, h2
and h3 side by side.

Both servers serve the same site on a TCP+UDP port: `file_server` with a 1 MiB file
(`/big.bin`, random bytes) and `respond "hello"` for small requests. Loads:
  * h3: Benchmarks/h3client/h3bench.c (compiled here with cc against ngtcp2/nghttp3/GnuTLS):
    one thread driving C connections, N requests each (M streams in flight), UDP GRO, every
    body checked (size and status). `--client gtlsclient` uses h3load.py instead (one
    gtlsclient process per connection: it costs more CPU per request than the servers, so
    on a small machine it mostly measures itself).
  * h2: h2load over TLS;  h1: wrk over TLS.
Server CPU is utime+stime from /proc over the run; CPU/request = CPU seconds / requests; the
h3 client's own CPU is reported too. Each round runs every scenario on both servers
(alternating which goes first); the median round is reported.

With `--pin`, the h3 scenarios also run with the server confined to CPU 0 and the client to
CPU 1 (`taskset`), so the server, not the shared CPU, is what is measured on a 2-core box.

    python3 Benchmarks/h3_bench.py [--berth PATH] [--duration 8] [--rounds 3] [--pin]
Results: Benchmarks/results/h3-latest.md and .json.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench  # noqa: E402  (stop_group)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLK = os.sysconf("SC_CLK_TCK")
BIG = 1 << 20


def free_port():
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


def caddyfile(port, caddy, storage, www):
    g = "\tadmin off\n\tauto_https disable_redirects\n"
    if caddy:
        g += f"\tlocal_certs\n\tskip_install_trust\n\tstorage file_system {storage}\n"
    return (f"{{\n{g}}}\n\nhttps://localhost:{port} {{\n\tbind 127.0.0.1\n\ttls internal\n"
            f"\troot * {www}\n\tfile_server /big.bin\n\trespond / \"hello\"\n}}\n")


def build_h3bench(work):
    """Compiles Benchmarks/h3client/h3bench.c; None when cc or the -dev headers are missing."""
    src = HERE / "h3client" / "h3bench.c"
    out = work / "h3bench"
    try:
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libngtcp2", "libngtcp2_crypto_gnutls",
                                "libnghttp3", "gnutls"], capture_output=True, text=True, check=True).stdout.split()
        subprocess.run(["cc", "-O2", "-o", str(out), str(src), *flags], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"h3bench could not be built ({e}); using gtlsclient", file=sys.stderr)
        return None
    return out


H3BENCH = None
PIN_CLIENT = []


def cpu(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK


class Server:
    def __init__(self, name, argv, env, port):
        self.name, self.port = name, port
        self.log = open(Path(env["XDG_DATA_HOME"]).parent / f"{name}.log", "wb")
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        end = time.time() + 15
        while time.time() < end:
            r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                                f"https://localhost:{port}/"], capture_output=True, text=True)
            if r.stdout == "200":
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{name} did not start; see {self.log.name}")

    def stop(self):
        bench.stop_group(self.p, 10)


def measure(srv, fn):
    c0 = cpu(srv.p.pid)
    r = fn()
    r["cpu_s"] = round(cpu(srv.p.pid) - c0, 2)
    r["cpu_us_per_req"] = round(r["cpu_s"] / max(1, r["requests"]) * 1e6, 1)
    return r


def h3(port, path, c, n, m, duration, size=None):
    url = f"https://localhost:{port}{path}"
    if H3BENCH:
        cmd = PIN_CLIENT + [str(H3BENCH), "-c", str(c), "-n", str(n), "-m", str(m), "-d", str(duration)]
        if size:
            cmd += ["-s", str(size)]
        cmd += ["127.0.0.1", str(port), url]
    else:
        cmd = PIN_CLIENT + [sys.executable, str(HERE / "h3load.py"), "-c", str(c), "-n", str(n), "-d", str(duration),
                            "127.0.0.1", str(port), url]
        if size:
            cmd += ["--size", str(size), "--verify"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr + out.stdout)
    r = json.loads(out.stdout)
    if H3BENCH:
        if r["errors"]:
            raise RuntimeError(f"h3bench: {r['errors']} failed requests: {r}")
        r["client_cpu_s"] = r.pop("cpu_s")
        r["client_cpu_us_per_req"] = r.pop("cpu_us_per_req")
    return r


def pinned(srv, fn):
    """Runs fn with the server's threads on CPU 0 and the client on CPU 1."""
    global PIN_CLIENT
    subprocess.run(["taskset", "-a", "-p", "-c", "0", str(srv.p.pid)], check=True, capture_output=True)
    PIN_CLIENT = ["taskset", "-c", "1"]
    try:
        return fn()
    finally:
        PIN_CLIENT = []
        subprocess.run(["taskset", "-a", "-p", "-c", f"0-{os.cpu_count() - 1}", str(srv.p.pid)], capture_output=True)


def h2(port, duration, path="/", c=16, m=20):
    out = subprocess.run(["h2load", "-D", str(int(duration)), "-c", str(c), "-m", str(m), "-t", "1",
                          f"https://localhost:{port}{path}"], capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    secs = float(re.search(r"finished in ([\d.]+)s", out.stdout).group(1))
    return {"requests": int(m.group(3)), "seconds": secs, "req_per_s": round(int(m.group(3)) / secs, 1)}


def h1(port, duration, path="/", c=32):
    out = subprocess.run(["wrk", "-t", "1", "-c", str(c), "-d", f"{int(duration)}s", f"https://localhost:{port}{path}"],
                         capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out.stdout)
    secs = float(m.group(2)) * (60 if m.group(3) == "m" else 1)
    return {"requests": int(m.group(1)), "seconds": secs, "req_per_s": round(int(m.group(1)) / secs, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", default=str(REPO / ".build" / "release" / "berth"))
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--client", choices=["h3bench", "gtlsclient"], default="h3bench")
    ap.add_argument("--pin", action="store_true", help="also run the h3 scenarios with server and client pinned")
    a = ap.parse_args()
    global H3BENCH
    caddy = shutil.which("caddy")
    work = Path(tempfile.mkdtemp(prefix="h3bench-"))
    www = work / "www"
    www.mkdir()
    (www / "big.bin").write_bytes(os.urandom(BIG))
    if a.client == "h3bench":
        H3BENCH = build_h3bench(work)
    scenarios = {
        "h3 1MiB file (c=4, n=64, m=16)": lambda port: h3(port, "/big.bin", 4, 64, 16, a.duration, BIG),
        "h3 small (c=8, n=1000, m=100)": lambda port: h3(port, "/", 8, 1000, 100, a.duration),
        "h2 1MiB file (h2load c=4 m=16)": lambda port: h2(port, a.duration, "/big.bin", 4, 16),
        "h2 small (h2load c=16 m=20)": lambda port: h2(port, a.duration),
        "h1 1MiB file (wrk c=8)": lambda port: h1(port, a.duration, "/big.bin", 8),
        "h1 small (wrk c=32)": lambda port: h1(port, a.duration),
    }
    if a.pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        scenarios["h3 1MiB file, pinned (server CPU 0, client CPU 1)"] = "pin:h3 1MiB file (c=4, n=64, m=16)"
        scenarios["h3 small, pinned (server CPU 0, client CPU 1)"] = "pin:h3 small (c=8, n=1000, m=100)"
    results = {k: {"berth": [], "caddy": []} for k in scenarios}
    for rnd in range(a.rounds):
        for name in (["berth", "caddy"] if rnd % 2 == 0 else ["caddy", "berth"]):
            if name == "caddy" and not caddy:
                continue
            port = free_port()
            d = work / f"{name}-{rnd}"
            d.mkdir()
            cf = d / "Caddyfile"
            cf.write_text(caddyfile(port, name == "caddy", d / "storage", www))
            env = {"PATH": os.environ["PATH"], "HOME": str(d), "XDG_DATA_HOME": str(d / "data"),
                   "XDG_CONFIG_HOME": str(d / "config")}
            argv = [a.berth, "run", "--config", str(cf)] if name == "berth" else \
                [caddy, "run", "--config", str(cf), "--adapter", "caddyfile"]
            srv = Server(name, argv, env, port)
            try:
                for k, fn in scenarios.items():
                    if isinstance(fn, str):
                        base = scenarios[fn[4:]]
                        r = pinned(srv, lambda: measure(srv, lambda: base(port)))
                    else:
                        r = measure(srv, lambda: fn(port))
                    print(f"round {rnd} {name:5s} {k}: {r}", flush=True)
                    results[k][name].append(r)
            finally:
                srv.stop()
    summary = {}
    for k, per in results.items():
        summary[k] = {}
        for name, runs in per.items():
            if not runs:
                continue
            med = sorted(runs, key=lambda r: r["req_per_s"])[len(runs) // 2]
            summary[k][name] = med
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "h3-latest.json").write_text(json.dumps({"summary": summary, "runs": results}, indent=1))
    load = Path("/proc/loadavg").read_text().split()[:3]
    lines = ["# HTTP/3 benchmark: Berth vs Caddy (median of rounds)", "",
             f"{os.cpu_count()} CPUs, duration {a.duration}s per run, {a.rounds} rounds, h3 client "
             f"{'h3bench' if H3BENCH else 'gtlsclient (h3load.py)'}; load generators share the machine with the "
             f"servers unless pinned; load average at the end {' '.join(load)}.", "",
             "| scenario | Berth req/s | Caddy req/s | ratio | Berth MB/s | Caddy MB/s | Berth CPU µs/req | Caddy CPU µs/req "
             "| CPU ratio | h3 client CPU µs/req (B / C) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for k, v in summary.items():
        b, c = v.get("berth", {}), v.get("caddy", {})
        ratio = f"{b['req_per_s'] / c['req_per_s']:.2f}x" if b and c and c["req_per_s"] else "-"
        cratio = f"{c['cpu_us_per_req'] / b['cpu_us_per_req']:.2f}x" if b and c and b.get("cpu_us_per_req") else "-"
        client = f"{b.get('client_cpu_us_per_req', '-')} / {c.get('client_cpu_us_per_req', '-')}" \
            if "client_cpu_us_per_req" in b else "-"
        mb = lambda r: (r.get("mb_per_s") or round(r["req_per_s"] * BIG / 1e6, 1)) if "1MiB" in k and r else "-"
        lines.append(f"| {k} | {b.get('req_per_s', '-')} | {c.get('req_per_s', '-')} | {ratio} | "
                     f"{mb(b)} | {mb(c)} | {b.get('cpu_us_per_req', '-')} | "
                     f"{c.get('cpu_us_per_req', '-')} | {cratio} | {client} |")
    (out / "h3-latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

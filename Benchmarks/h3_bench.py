#!/usr/bin/env python3
"""HTTP/3 benchmark: Berth vs Caddy (`tls internal` on both), plus CPU per request for h1, h2
and h3 side by side.

Both servers serve the same site on a TCP+UDP port: `respond /big` with a 1 MiB body (a
heredoc: Berth has no file_server yet, so the "file" is a 1 MiB response body on both) and
`respond "hello"` for small requests. Loads:
  * h3, 1 MiB:  h3load.py (gtlsclient processes), C connections x N streams
  * h3, small:  the same with many streams per connection
  * h2, small:  h2load over TLS;  h1, small: wrk over TLS
Server CPU is utime+stime from /proc over the run; CPU/request = CPU seconds / requests.
Rounds alternate Berth and Caddy; the median round is reported.

    python3 Benchmarks/h3_bench.py [--berth PATH] [--duration 8] [--rounds 3]
Results: Benchmarks/results/h3-latest.md and .json.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLK = os.sysconf("SC_CLK_TCK")
BIG = 1 << 20
BODY = "0123456789abcdef" * (BIG // 16)


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


def caddyfile(port, caddy, storage):
    g = "\tadmin off\n\tauto_https disable_redirects\n"
    if caddy:
        g += f"\tlocal_certs\n\tskip_install_trust\n\tstorage file_system {storage}\n"
    return (f"{{\n{g}}}\n\nhttps://localhost:{port} {{\n\tbind 127.0.0.1\n\ttls internal\n"
            f"\trespond /big <<END\n\t{BODY}\n\tEND\n\trespond \"hello\"\n}}\n")


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
        os.killpg(self.p.pid, signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


def measure(srv, fn):
    c0 = cpu(srv.p.pid)
    r = fn()
    r["cpu_s"] = round(cpu(srv.p.pid) - c0, 2)
    r["cpu_us_per_req"] = round(r["cpu_s"] / max(1, r["requests"]) * 1e6, 1)
    return r


def h3(port, path, c, n, duration, size=None):
    cmd = [sys.executable, str(HERE / "h3load.py"), "-c", str(c), "-n", str(n), "-d", str(duration),
           "127.0.0.1", str(port), f"https://localhost:{port}{path}"]
    if size:
        cmd += ["--size", str(size), "--verify"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


def h2(port, duration):
    out = subprocess.run(["h2load", "-D", str(int(duration)), "-c", "16", "-m", "20", "-t", "1",
                          f"https://localhost:{port}/"], capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    secs = float(re.search(r"finished in ([\d.]+)s", out.stdout).group(1))
    return {"requests": int(m.group(3)), "seconds": secs, "req_per_s": round(int(m.group(3)) / secs, 1)}


def h1(port, duration):
    out = subprocess.run(["wrk", "-t", "1", "-c", "32", "-d", f"{int(duration)}s", f"https://localhost:{port}/"],
                         capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out.stdout)
    secs = float(m.group(2)) * (60 if m.group(3) == "m" else 1)
    return {"requests": int(m.group(1)), "seconds": secs, "req_per_s": round(int(m.group(1)) / secs, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", default=str(REPO / ".build" / "release" / "berth"))
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    caddy = shutil.which("caddy")
    work = Path(tempfile.mkdtemp(prefix="h3bench-"))
    scenarios = {
        "h3 1MiB (c=4, n=16)": lambda port: h3(port, "/big", 4, 16, a.duration, BIG),
        "h3 small (c=8, n=1000)": lambda port: h3(port, "/", 8, 1000, a.duration),
        "h2 small (h2load c=16 m=20)": lambda port: h2(port, a.duration),
        "h1 small (wrk c=32)": lambda port: h1(port, a.duration),
    }
    results = {k: {"berth": [], "caddy": []} for k in scenarios}
    for rnd in range(a.rounds):
        for name in (["berth", "caddy"] if rnd % 2 == 0 else ["caddy", "berth"]):
            if name == "caddy" and not caddy:
                continue
            port = free_port()
            d = work / f"{name}-{rnd}"
            d.mkdir()
            cf = d / "Caddyfile"
            cf.write_text(caddyfile(port, name == "caddy", d / "storage"))
            env = {"PATH": os.environ["PATH"], "HOME": str(d), "XDG_DATA_HOME": str(d / "data"),
                   "XDG_CONFIG_HOME": str(d / "config")}
            argv = [a.berth, "run", "--config", str(cf)] if name == "berth" else \
                [caddy, "run", "--config", str(cf), "--adapter", "caddyfile"]
            srv = Server(name, argv, env, port)
            try:
                for k, fn in scenarios.items():
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
    lines = ["# HTTP/3 benchmark: Berth vs Caddy (median of rounds)", "",
             f"{os.cpu_count()} CPUs, duration {a.duration}s per run, {a.rounds} rounds; "
             "load generators share the machine with the servers.", "",
             "| scenario | Berth req/s | Caddy req/s | ratio | Berth MB/s | Caddy MB/s | Berth CPU µs/req | Caddy CPU µs/req |",
             "|---|---|---|---|---|---|---|---|"]
    for k, v in summary.items():
        b, c = v.get("berth", {}), v.get("caddy", {})
        ratio = f"{b['req_per_s'] / c['req_per_s']:.2f}x" if b and c and c["req_per_s"] else "-"
        lines.append(f"| {k} | {b.get('req_per_s', '-')} | {c.get('req_per_s', '-')} | {ratio} | "
                     f"{b.get('mb_per_s', '-')} | {c.get('mb_per_s', '-')} | {b.get('cpu_us_per_req', '-')} | "
                     f"{c.get('cpu_us_per_req', '-')} |")
    (out / "h3-latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

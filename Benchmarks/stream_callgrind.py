#!/usr/bin/env python3
"""User-space instructions per request of Berth's HTTP/2 and HTTP/3 request streams, under
`valgrind --tool=callgrind`, for one or more release binaries in interleaved rounds.

    python3 Benchmarks/stream_callgrind.py [--h2 20000] [--h3 5000] [--rounds 2] BERTH [BERTH...]

Each binary is copied and `strip --strip-debug`ed (valgrind 3.19 cannot read the toolchain's
DWARF 5), run with one loop (`BERTH_LOOPS=1`) on a `tls internal` site answering
`respond / "hello"`, warmed up, its counters zeroed with `callgrind_control -z`, then loaded
with a fixed number of requests: h2load (`-c 10 -m 10`, TLS, ALPN h2) and Benchmarks/h3client
(h3bench `-1`, `-c 4 -m 10`), each followed by `callgrind_control -d`. The count is every
instruction the server executed (all threads, TLS/QUIC crypto and the C libraries included)
divided by the requests. Instruction counts do not depend on machine load, unlike req/s.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench  # noqa: E402  (stop_group)

HERE = Path(__file__).resolve().parent


def free_port():
    while True:
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            pass
        finally:
            t.close()
            u.close()


def build_h3bench(work):
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libngtcp2", "libngtcp2_crypto_gnutls",
                            "libnghttp3", "gnutls"], capture_output=True, text=True, check=True).stdout.split()
    out = work / "h3bench"
    subprocess.run(["cc", "-O2", "-o", str(out), str(HERE / "h3client" / "h3bench.c"), *flags], check=True)
    return out


def total_ir(dump):
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


class Run:
    def __init__(self, binary, work, tag):
        self.dir = work / tag
        self.dir.mkdir()
        self.port = free_port()
        (self.dir / "Caddyfile").write_text(
            f"{{\n\tadmin off\n\tauto_https disable_redirects\n}}\n\nhttps://localhost:{self.port} {{\n"
            f"\tbind 127.0.0.1\n\ttls internal\n\trespond / \"hello\"\n}}\n")
        env = {"PATH": os.environ["PATH"], "HOME": str(self.dir), "XDG_DATA_HOME": str(self.dir / "data"),
               "XDG_CONFIG_HOME": str(self.dir / "config"), "BERTH_LOOPS": "1"}
        self.log = open(self.dir / "server.log", "wb")
        self.p = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.dir}/cg.out.%p", binary, "run",
             "--config", str(self.dir / "Caddyfile")],
            env=env, cwd=self.dir, stdout=self.log, stderr=self.log, start_new_session=True)
        end = time.time() + 120
        while time.time() < end:
            r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                                f"https://localhost:{self.port}/"], capture_output=True, text=True)
            if r.stdout == "200":
                return
            time.sleep(0.5)
        raise RuntimeError(f"server did not start: {self.dir}/server.log")

    def control(self, *args):
        subprocess.run(["callgrind_control", *args, str(self.p.pid)], check=True, capture_output=True)

    def measured(self, load):
        """Zeroes the counters, runs `load` (which returns its request count), dumps;
        instructions per request."""
        self.control("-z")
        requests = load()
        before = set(self.dir.glob("cg.out.*"))
        self.control("-d")
        new = sorted(set(self.dir.glob("cg.out.*")) - before, key=lambda p: p.stat().st_mtime)
        return total_ir(new[-1]) / requests

    def stop(self):
        bench.stop_group(self.p, 60)


def h2(port, n):
    out = subprocess.run(["h2load", "-n", str(n), "-c", "10", "-m", "10", f"https://localhost:{port}/"],
                         capture_output=True, text=True, timeout=900)
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    if not m or int(m.group(2)) != n or "Application protocol: h2" not in out.stdout:
        raise RuntimeError(out.stdout + out.stderr)
    return n


def h3(h3bench, port, n_total):
    conns = 4
    out = subprocess.run([str(h3bench), "-c", str(conns), "-n", str(n_total // conns), "-m", "10", "-d", "600", "-1",
                          "127.0.0.1", str(port), f"https://localhost:{port}/"],
                         capture_output=True, text=True, timeout=900)
    r = json.loads(out.stdout) if out.returncode == 0 else None
    if not r or r["errors"] or r["requests"] != n_total // conns * conns:
        raise RuntimeError(out.stdout + out.stderr)
    return r["requests"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("berth", nargs="+")
    ap.add_argument("--h2", type=int, default=20000)
    ap.add_argument("--h3", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stream-callgrind-"))
    h3bench = build_h3bench(work)
    bins = []
    for i, b in enumerate(a.berth):
        c = work / f"berth{i}"
        shutil.copy(b, c)
        subprocess.run(["strip", "--strip-debug", str(c)], check=True)
        bins.append(c)
    res = {b: {"h2": [], "h3": []} for b in a.berth}
    for rnd in range(a.rounds):
        order = list(zip(a.berth, bins))
        if rnd % 2:
            order.reverse()
        for name, b in order:
            r = Run(b, work, f"r{rnd}-{Path(name).name}-{bins.index(b)}")
            try:
                h2(r.port, 2000)
                res[name]["h2"].append(r.measured(lambda: h2(r.port, a.h2)))
                h3(h3bench, r.port, 400)
                res[name]["h3"].append(r.measured(lambda: h3(h3bench, r.port, a.h3)))
            finally:
                r.stop()
            print(f"round {rnd} {name}: h2 {res[name]['h2'][-1]:.0f}  h3 {res[name]['h3'][-1]:.0f} instr/request",
                  flush=True)
    print("\ninstructions per request (all rounds)")
    for name in a.berth:
        print(f"{name}: h2 {' '.join(f'{x:.0f}' for x in res[name]['h2'])}  "
              f"h3 {' '.join(f'{x:.0f}' for x in res[name]['h3'])}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

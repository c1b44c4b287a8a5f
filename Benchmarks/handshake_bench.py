#!/usr/bin/env python3
"""Server CPU per full TLS 1.3 handshake: one or more Berth binaries vs nginx, with the SAME
certificate and key (a self-signed ECDSA P-256 leaf, no chain) and the same client (Python
ssl, X25519, SNI localhost, no resumption), interleaved rounds, medians.

    python3 Benchmarks/handshake_bench.py --berth after=.build/release/berth --berth before=/tmp/old-berth \
        [--rounds 5] [--duration 3] [--strace]

--strace additionally counts the server's syscalls over 200 handshakes (strace -c -f), once
per server, outside the timed rounds.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402
import extra_bench as xb  # noqa: E402

CADDYFILE = """{{
\tadmin off
\tauto_https disable_redirects
}}
https://localhost {{
\ttls {cert} {key}
\tbind fd/3 {{
\t\tprotocols h1 h2
\t}}
\trespond "Hello world
"
}}
"""


def strace_count(s: bench.Server, n: int, out: Path) -> str:
    pid = s.pids()[-1]
    tr = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", str(out)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    ctx = xb._tls_ctx()
    import socket
    for _ in range(n):
        raw = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        c = ctx.wrap_socket(raw, server_hostname="localhost")
        c.close()
    time.sleep(0.3)
    tr.send_signal(2)
    tr.wait(10)
    return out.read_text()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", action="append", default=[], help="NAME=PATH (repeatable)")
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("--nginx-workers", type=int, default=[], action="append",
                    help="also run nginx with N worker processes (Berth runs one loop per core)")
    args = ap.parse_args()
    if not args.berth:
        args.berth = [f"berth={bench.REPO / '.build' / 'release' / 'berth'}"]
    work = Path(tempfile.mkdtemp(prefix="berth-hs-"))
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    cf = work / "Caddyfile"
    cf.write_text(CADDYFILE.format(cert=cert, key=key))
    servers: dict[str, bench.Server] = {}
    for spec in args.berth:
        name, path = spec.split("=", 1)
        path = str(Path(path).resolve())
        env = {"XDG_DATA_HOME": str(work / f"xdg-{name}")}
        servers[name] = bench.Server(name, path, lambda port, p=path: [p, "run", "--config", str(cf)], env, work)
    xargs = argparse.Namespace(nginx=args.nginx)
    servers["nginx"] = xb.make_server("nginx", "tls", xargs, work, {"cert": cert, "key": key})
    for n in args.nginx_workers:
        s = xb.make_server(f"nginx-{n}w", "tls", xargs, work, {"cert": cert, "key": key})
        base_fn = s.argv_fn

        def argv(port, base_fn=base_fn, n=n):
            a = base_fn(port)
            conf = Path(a[a.index("-c") + 1])
            conf.write_text(conf.read_text().replace("worker_processes 1;", f"worker_processes {n};"))
            return a
        s.argv_fn = argv
        servers[f"nginx-{n}w"] = s
    try:
        for s in servers.values():
            s.start(bench.free_port())
            xb.trigger(s, tls=True)
        load0 = os.getloadavg()
        for s in servers.values():
            xb.run_handshakes(s, 0.5)  # warm-up
        res: dict[str, list[float]] = {n: [] for n in servers}
        for r in range(args.rounds):
            for n, s in servers.items():
                out = xb.run_handshakes(s, args.duration)
                res[n].append(out["cpu_us_per_handshake"])
                bench.log(f"round {r} {n}: {out['cpu_us_per_handshake']:.0f} µs/handshake "
                          f"({out['rate']:.0f}/s, {out['failures']} failures)")
        load1 = os.getloadavg()
        print(f"\nload average before {load0[0]:.1f}, after {load1[0]:.1f} (2 cores)")
        nginx = statistics.median(res["nginx"])
        print("| server | median µs/handshake | rounds | vs nginx |")
        print("|---|---:|---|---:|")
        for n, xs in res.items():
            m = statistics.median(xs)
            print(f"| {n} | {m:.0f} | {' '.join(f'{x:.0f}' for x in xs)} | {m / nginx:.2f} |")
        if args.strace and shutil.which("strace"):
            for n, s in servers.items():
                print(f"\n--- strace -c {n} (200 handshakes) ---")
                print(strace_count(s, 200, work / f"strace-{n}.txt"))
    finally:
        bench.kill_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""reverse_proxy benchmark: Berth vs Caddy vs nginx (`proxy_pass` + `keepalive` upstream), all
socket-activated with `systemd-socket-activate`, all in front of the same nginx backend.

Measures, per proxy (median of --rounds wrk runs): requests/s, proxy CPU per request (user+sys
of the proxy's process tree / requests), p50/p99 latency; then the RSS growth of the proxy
while it streams a 1 GiB download and a 1 GiB upload (backend: the Python echo backend of the
integration tests, which streams and discards).

    python3 Benchmarks/proxy_bench.py [--berth PATH] [--rounds 3] [--duration 8] [--skip-big]
Results: Benchmarks/results/proxy-latest.md and .json.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "Tests" / "integration"))

import bench  # noqa: E402  (helpers: Server, run_wrk, cpu_seconds, find_caddy, free_port, ...)
from proxy_backends import EchoBackend  # noqa: E402

CADDYFILE = """{{
	admin off
}}
http:// {{
	bind fd/3 {{
		protocols h1
	}}
	reverse_proxy {upstream}
}}
"""


def backend_nginx(workdir: Path, port: int, unix: Path | None = None) -> subprocess.Popen:
    """The hello-world nginx backend on 127.0.0.1:port, or on the Unix socket `unix` (mode 0666,
    so that rootless and container clients can connect; suite.py uses it in every mode)."""
    d = workdir / "backend"
    d.mkdir(exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(f"""user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {f"unix:{unix}" if unix else f"127.0.0.1:{port}"};
        location / {{ return 200 "Hello world\\n"; }}
    }}
}}
""")
    p = subprocess.Popen(["nginx", "-p", str(d), "-c", str(conf), "-g", "daemon off;"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    if unix is None:
        wait_port(port)
        return p
    end = time.time() + 10
    while not unix.exists():
        if p.poll() is not None or time.time() > end:
            raise RuntimeError(f"backend nginx did not create {unix}; see {d}/error.log")
        time.sleep(0.02)
    os.chmod(unix, 0o666)
    return p


def proxy_nginx_conf(workdir: Path, port: int, upstream: str) -> Path:
    d = workdir / f"nginx-proxy-{port}"
    d.mkdir(exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(f"""user root;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 0;
    upstream backend {{
        server {upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
            # stream big bodies instead of spooling them to temp files
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
""")
    return conf


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} never opened")


def make_proxy(name, args, workdir: Path, upstream: str):
    cf = workdir / f"{name}-{upstream.replace(':', '_')}.Caddyfile"
    cf.write_text(CADDYFILE.format(upstream=upstream))
    if name == "berth":
        return bench.Server("berth", args.berth, lambda port: [args.berth, "run", "--config", str(cf)], {}, workdir)
    if name == "berth-before":
        b = args.berth_before
        return bench.Server("berth-before", b, lambda port: [b, "run", "--config", str(cf)], {}, workdir)
    if name == "caddy":
        caddy = bench.find_caddy()
        env = {"XDG_DATA_HOME": str(workdir / "caddy-data"), "XDG_CONFIG_HOME": str(workdir / "caddy-config")}
        return bench.Server("caddy", caddy, lambda port: [caddy, "run", "--config", str(cf), "--adapter", "caddyfile"],
                            env, workdir)
    if name == "nginx":
        def argv(port):
            conf = proxy_nginx_conf(workdir, port, upstream)
            return ["nginx", "-p", str(conf.parent), "-e", str(conf.parent / "error.log"), "-c", str(conf),
                    "-g", "daemon off;"]
        return bench.Server("nginx", "nginx", argv, {"NGINX": "3;"}, workdir)
    raise ValueError(name)


def first_ok(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = c.recv(65536)
    c.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"first response: {data[:200]!r}")


def one_round(s, r, args, workdir):
    cpu0 = s.cpu()
    res = bench.run_wrk(s.port, ["-t1", "-c50"], args.duration, workdir / f"wrk-{s.name}-{r}.txt")
    cpu = s.cpu() - cpu0
    reqs = res.get("requests") or 0
    res["proxy_cpu_us_per_req"] = cpu / reqs * 1e6 if reqs else None
    bench.log(f"  {s.name} round {r + 1}: {res.get('rps', 0):.0f} req/s, "
              f"p99 {res.get('p99_ms')} ms, cpu {res['proxy_cpu_us_per_req'] or 0:.1f} µs/req")
    return res


def summarize(runs):
    def med(k):
        v = sorted(x[k] for x in runs if x.get(k) is not None)
        return v[len(v) // 2] if v else None
    return {"rps": med("rps"), "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
            "cpu_us_per_req": med("proxy_cpu_us_per_req"), "runs": runs}


def rss_tree_kib(s):
    return bench.status_kb(s.pids(), "VmRSS")


def big_transfers(s, size):
    """RSS growth (MiB) of the proxy tree while streaming `size` bytes down then up."""
    base = rss_tree_kib(s)
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_tree_kib(s))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.time()
    c = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    c.sendall(f"GET /bytes?size={size} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    got, buf = 0, bytearray(1 << 20)
    while True:
        n = c.recv_into(buf)
        if not n:
            break
        got += n
    c.close()
    down_s = time.time() - t0
    t0 = time.time()
    c = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    c.sendall(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
    block = os.urandom(1 << 20)
    for _ in range(size >> 20):
        c.sendall(block)
    resp = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        resp += b
    c.close()
    up_s = time.time() - t0
    stop.set()
    t.join()
    ok = got >= size and b"\"body_len\": %d" % size in resp
    return {"ok": ok, "rss_base_mib": base / 1024, "rss_peak_mib": peak[0] / 1024,
            "rss_growth_mib": (peak[0] - base) / 1024, "download_s": down_s, "upload_s": up_s}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", default=str(REPO / ".build" / "release" / "berth"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--only", default="berth,caddy,nginx")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--big-size", type=int, default=1 << 30)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--no-malloc", action="store_true")
    ap.add_argument("--berth-before", default=None,
                    help="a second Berth binary measured as 'berth-before' in the same interleaved rounds")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="berth-proxy-bench-"))
    names = [n for n in args.only.split(",") if n]
    if args.berth_before:
        names.insert(names.index("berth") + 1 if "berth" in names else 0, "berth-before")
    results = {"machine": {"cpus": os.cpu_count()}, "throughput": {}, "big": {}}

    bport = bench.free_port()
    backend = backend_nginx(workdir, bport)
    echo = EchoBackend()
    try:
        # Every proxy runs at once (idle between its turns) and the rounds are interleaved, so
        # machine load that comes and goes hits all of them alike.
        servers = {}
        try:
            for name in names:
                sv = make_proxy(name, args, workdir, f"127.0.0.1:{bport}")
                sv.start(bench.free_port())
                servers[name] = sv
                first_ok(sv.port)
                bench.log(f"{name}: proxying to nginx on {bport}")
            runs = {n: [] for n in names}
            for r in range(args.rounds):
                for name in names:
                    runs[name].append(one_round(servers[name], r, args, workdir))
            for name in names:
                results["throughput"][name] = summarize(runs[name])
        finally:
            for sv in servers.values():
                sv.stop()
        so = None if args.no_malloc else bench.build_malloc_counter()
        if so:
            for name in [n for n in names if n in ("berth", "berth-before", "nginx")]:
                s = make_proxy(name, args, workdir, f"127.0.0.1:{bport}")
                results.setdefault("malloc", {})[name] = bench.measure_allocs(s, so, workdir, 2000, 20000, conns=100)
                bench.log(f"{name}: {results['malloc'][name]['allocs_per_req']:.2f} allocs/req")
        if not args.skip_big:
            for name in names:
                s = make_proxy(name, args, workdir, f"127.0.0.1:{echo.port}")
                s.start(bench.free_port())
                try:
                    first_ok(s.port)
                    results["big"][name] = big_transfers(s, args.big_size)
                    bench.log(f"{name}: 1 GiB {results['big'][name]}")
                finally:
                    s.stop()
    finally:
        os.killpg(backend.pid, 15)
        echo.close()

    lines = ["# reverse_proxy benchmark", "",
             f"{os.cpu_count()} CPUs; wrk -t1 -c50, {args.rounds}×{args.duration:g} s (median); "
             "backend: nginx `return 200` (1 worker); every proxy socket-activated.", "",
             "| proxy | req/s | proxy CPU µs/req | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|"]
    for n, r in results["throughput"].items():
        lines.append(f"| {n} | {r['rps'] or 0:.0f} | {r['cpu_us_per_req'] or 0:.1f} | {r['p50_ms']} | {r['p99_ms']} |")
    t = results["throughput"]
    if "nginx" in t and t["nginx"].get("cpu_us_per_req"):
        lines += ["", "Ratios to nginx (same interleaved rounds): "
                  + "; ".join(f"{n} CPU/req {t[n]['cpu_us_per_req'] / t['nginx']['cpu_us_per_req']:.2f}x, "
                              f"req/s {t[n]['rps'] / t['nginx']['rps']:.2f}x, p99 {t[n]['p99_ms'] / t['nginx']['p99_ms']:.2f}x"
                              for n in t if n != "nginx" and t[n].get("cpu_us_per_req") and t[n].get("p99_ms"))]
    if "nginx" in t:
        # Round r of every proxy ran back to back, so the per-round ratio cancels load that
        # drifts over the run; their median and how many rounds each side won say more than
        # the ratio of medians when the two are this close.
        for n in t:
            if n == "nginx":
                continue
            pairs = [(a, b) for a, b in zip(t[n]["runs"], t["nginx"]["runs"])
                     if a.get("rps") and b.get("rps") and a.get("proxy_cpu_us_per_req") and b.get("proxy_cpu_us_per_req")]
            if not pairs:
                continue
            rps = sorted(a["rps"] / b["rps"] for a, b in pairs)
            cpu = sorted(a["proxy_cpu_us_per_req"] / b["proxy_cpu_us_per_req"] for a, b in pairs)
            p99 = sorted(a["p99_ms"] / b["p99_ms"] for a, b in pairs if a.get("p99_ms") and b.get("p99_ms"))
            med = lambda v: v[len(v) // 2] if v else float("nan")
            results.setdefault("paired", {})[n] = {"rps": rps, "cpu": cpu, "p99": p99}
            lines += ["", f"{n} vs nginx, round by round ({len(pairs)} pairs): req/s ratio median {med(rps):.2f}x "
                      f"(won {sum(1 for x in rps if x >= 1)}), CPU/req ratio median {med(cpu):.2f}x "
                      f"(won {sum(1 for x in cpu if x <= 1)}), p99 ratio median {med(p99):.2f}x "
                      f"(won {sum(1 for x in p99 if x <= 1)})"]
    if results.get("malloc"):
        lines += ["", "Heap allocator calls (malloc counter, LD_PRELOAD; nginx: master+workers):", "",
                  "| proxy | allocs/request (keep-alive) | allocs/connection |", "|---|---:|---:|"]
        for n, r in results["malloc"].items():
            lines.append(f"| {n} | {r['allocs_per_req']:.2f} | {r['allocs_per_conn']:.1f} |")
    if results["big"]:
        lines += ["", f"Streaming {args.big_size >> 20} MiB down then up (Python echo backend):", "",
                  "| proxy | ok | RSS base MiB | RSS growth MiB | down s | up s |", "|---|---|---:|---:|---:|---:|"]
        for n, r in results["big"].items():
            lines.append(f"| {n} | {r['ok']} | {r['rss_base_mib']:.1f} | {r['rss_growth_mib']:.1f} | "
                         f"{r['download_s']:.2f} | {r['upload_s']:.2f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "proxy-latest.md").write_text(report)
    (out / "proxy-latest.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()

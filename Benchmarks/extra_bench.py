#!/usr/bin/env python3
"""Extra benchmarks: Berth vs Caddy vs nginx on `encode gzip`, HTTP/2 over TLS and TLS handshakes.

All servers are socket-activated with `systemd-socket-activate` (helpers from bench.py) and all
stay up for the whole run; every scenario runs Berth, Caddy, nginx in turn, --rounds times
(interleaved), and the report gives medians and the Berth/nginx and Berth/Caddy ratios of
those medians (compare within one run only; absolute numbers on a noisy machine mean little).

1. gzip-10k: `encode gzip` + `respond` of a 10 KiB HTML-ish text (Berth, Caddy: same Caddyfile);
   nginx `gzip on; gzip_types text/plain;` serving the same bytes from a file.
   `wrk -t1 -c50 -H 'Accept-Encoding: gzip'`: req/s, server CPU µs/request, p99.
   Each server's response is checked first (Content-Encoding: gzip, body decompresses to the text).
2. h2-tls: `h2load -c50 -m10 -D <duration>` over TLS (ALPN h2) to `respond "Hello world\\n"`:
   Berth/Caddy `https://localhost { tls internal ... }`, nginx `listen ... ssl http2` with a
   self-signed ECDSA P-256 certificate.  req/s, server CPU µs/request.
3. tls-handshake: a Python loop of fresh TLS 1.3 connections (SNI localhost, no session
   resumption), handshake then close, for <duration> seconds; server CPU µs per handshake.

    python3 Benchmarks/extra_bench.py [--berth PATH] [--rounds 3] [--duration 3] [--out DIR]

Results: Benchmarks/results/extra-latest.md and .json.  Python standard library only.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (Server, run_wrk, cpu_seconds, find_caddy, free_port, kill_all, ...)

NAMES = ("berth", "caddy", "nginx")
HELLO = b"Hello world\n"


# --------------------------------------------------------------------------
# the 10 KiB body: realistic HTML-ish text without ", \, { or } so that it can sit
# verbatim inside a quoted Caddyfile token (and contains no placeholders).

def make_body(size: int = 10240) -> bytes:
    words = ("the server reads its configuration from a Caddyfile and serves each site over "
             "HTTP and HTTPS with certificates it manages on its own; requests pass through "
             "a chain of handlers such as encode, headers, file_server and reverse_proxy, and "
             "every response can be compressed when the client sends Accept-Encoding; logs "
             "are written as structured JSON lines and metrics count requests, bytes and "
             "durations per host and per handler").split()
    out = ["<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
           "<title>Release notes and documentation</title>\n</head>\n<body>\n"]
    i = n = 0
    while sum(map(len, out)) < size + 200:
        n += 1
        out.append(f"<h2 id=section-{n}>Section {n}: {words[(n * 7) % len(words)]} "
                   f"{words[(n * 3) % len(words)]}</h2>\n")
        for p in range(3):
            k = 28 + (n * 5 + p * 11) % 23
            sent = " ".join(words[(i + j * 3 + p) % len(words)] for j in range(k))
            i += k
            out.append(f"<p class=body-{p}>{sent.capitalize()}. See <a href=/docs/{n}/{p}>"
                       f"chapter {n}.{p}</a> for details.</p>\n")
        out.append(f"<ul><li>item {n}a</li><li>item {n}b: {words[n % len(words)]}</li></ul>\n")
    tail = b"\n</body>\n</html>\n"
    text = "".join(out).encode()[: size - len(tail)]
    text = text[: text.rindex(b">") + 1]  # end on a tag
    text = text + b"\n" * (size - len(tail) - len(text)) + tail
    assert len(text) == size and not re.search(rb'["\\{}`]', text)
    return text


# --------------------------------------------------------------------------
# configs

def gzip_caddyfile(body: bytes) -> str:
    return ("{\n\tadmin off\n}\nhttp:// {\n\tbind fd/3 {\n\t\tprotocols h1\n\t}\n"
            "\tencode gzip\n\trespond \"" + body.decode() + "\"\n}\n")


TLS_CADDYFILE = """{
	admin off
	local_certs
	skip_install_trust
	auto_https disable_redirects
}
https://localhost {
	tls internal
	bind fd/3 {
		protocols h1 h2
	}
	respond "Hello world
"
}
"""

NGINX_COMMON = """user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{server}
}}
"""


def nginx_gzip_conf(d: Path, port: int, root: Path) -> str:
    return NGINX_COMMON.format(d=d, server=f"""    types {{ }}
    default_type text/plain;
    gzip on;
    gzip_types text/plain;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}""")


def nginx_tls_conf(d: Path, port: int, cert: Path, key: Path) -> str:
    return NGINX_COMMON.format(d=d, server=f"""    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 "Hello world\\n"; }}
    }}""")


def make_server(name: str, kind: str, args, workdir: Path, files: dict) -> bench.Server:
    if name in ("berth", "caddy"):
        cf = files["gzip_caddyfile"] if kind == "gzip" else files["tls_caddyfile"]
        xdg = workdir / f"xdg-{name}-{kind}"
        (xdg / "data").mkdir(parents=True, exist_ok=True)
        (xdg / "config").mkdir(parents=True, exist_ok=True)
        env = {"XDG_DATA_HOME": str(xdg / "data"), "XDG_CONFIG_HOME": str(xdg / "config")}
        if name == "berth":
            return bench.Server(f"berth-{kind}", args.berth,
                                lambda port: [args.berth, "run", "--config", str(cf)], env, workdir)
        caddy = args.caddy
        return bench.Server(f"caddy-{kind}", caddy,
                            lambda port: [caddy, "run", "--config", str(cf), "--adapter", "caddyfile"],
                            env, workdir)

    def argv(port: int) -> list[str]:
        d = workdir / f"nginx-{kind}-{port}"
        d.mkdir(exist_ok=True)
        conf = d / "nginx.conf"
        conf.write_text(nginx_gzip_conf(d, port, files["root"]) if kind == "gzip"
                        else nginx_tls_conf(d, port, files["cert"], files["key"]))
        return [args.nginx, "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf),
                "-g", "daemon off;"]
    return bench.Server(f"nginx-{kind}", args.nginx, argv, {"NGINX": "3;"}, workdir)


# --------------------------------------------------------------------------
# first requests / checks

def _tls_ctx() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.options |= ssl.OP_NO_TICKET
    return ctx


def trigger(s: bench.Server, tls: bool, timeout: float = 30.0) -> None:
    """First connection (makes systemd-socket-activate exec the server); retried until the
    server answers, e.g. while Berth/Caddy create their local CA."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            if tls:
                c = _tls_ctx().wrap_socket(c, server_hostname="localhost")
            c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
            c.close()
            if data.startswith(b"HTTP/1.1 200"):
                return
            last = data[:200]
        except (OSError, ssl.SSLError) as e:
            last = e
        if s.proc and s.proc.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"{s.name}: no 200 response on port {s.port}: {last!r}")


def check_gzip(s: bench.Server, body: bytes, workdir: Path) -> dict:
    hdr = workdir / f"{s.name}-gzip.headers"
    out = workdir / f"{s.name}-gzip.body"
    subprocess.run(["curl", "-sS", "--max-time", "5", "-D", str(hdr), "-o", str(out),
                    "-H", "Accept-Encoding: gzip", f"http://127.0.0.1:{s.port}/"], check=True)
    headers = {}
    for line in hdr.read_text(errors="replace").splitlines()[1:]:
        k, _, v = line.partition(":")
        if k:
            headers[k.strip().lower()] = v.strip()
    raw = out.read_bytes()
    r = {"content_encoding": headers.get("content-encoding"),
         "content_type": headers.get("content-type"),
         "transfer_encoding": headers.get("transfer-encoding"),
         "vary": headers.get("vary"),
         "compressed_bytes": len(raw)}
    try:
        r["decompresses_to_body"] = gzip.decompress(raw) == body
    except Exception as e:  # noqa: BLE001
        r["decompresses_to_body"] = False
        r["error"] = str(e)
    r["ok"] = r["content_encoding"] == "gzip" and r["decompresses_to_body"]
    return r


def check_tls(s: bench.Server) -> dict:
    """Negotiated protocol, group, signature type, key size, ALPN (openssl s_client, once)."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.port}", "-servername",
                        "localhost", "-alpn", "h2,http/1.1"],
                       input=b"", capture_output=True, timeout=10)
    text = (p.stdout + p.stderr).decode(errors="replace")
    r = {}
    for key, pat in (("protocol", r"Protocol\s*: (\S+)"), ("cipher", r"Cipher\s*: (\S+)"),
                     ("peer_sig", r"Peer signature type: (\S+)"), ("peer_sig_hash", r"Peer signing digest: (\S+)"),
                     ("group", r"Server Temp Key: ([^\n]+)"), ("alpn", r"ALPN protocol: (\S+)")):
        m = re.search(pat, text)
        r[key] = m.group(1).strip() if m else None
    p2 = subprocess.run(["sh", "-c", f"openssl s_client -connect 127.0.0.1:{s.port} "
                         "-servername localhost </dev/null 2>/dev/null | openssl x509 -noout -text"],
                        capture_output=True, timeout=10)
    m = re.search(r"Public Key Algorithm: (\S+)[\s\S]*?Public-Key: \((\d+) bit\)", p2.stdout.decode())
    r["cert_key"] = f"{m.group(1)} {m.group(2)} bit" if m else None
    return r


# --------------------------------------------------------------------------
# load generators

def run_h2load(s: bench.Server, duration: float, logpath: Path) -> dict:
    cmd = ["h2load", "-t1", "-c50", "-m10", "-D", f"{int(duration)}",
           f"--connect-to=127.0.0.1:{s.port}", f"https://localhost:{s.port}/"]
    c0, t0 = s.cpu(), time.monotonic()
    p = subprocess.run(cmd, capture_output=True, timeout=duration + 30)
    c1, t1 = s.cpu(), time.monotonic()
    text = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    logpath.write_text("$ " + " ".join(cmd) + "\n" + text)
    r: dict = {"exit": p.returncode, "server_cpu_s": c1 - c0, "wall_s": t1 - t0}
    m = re.search(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s", text)
    if m:
        r["rps"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored", text)
    if m:
        r.update(total=int(m.group(1)), done=int(m.group(3)), succeeded=int(m.group(4)),
                 failed=int(m.group(5)), errored=int(m.group(6)))
    m = re.search(r"status codes: (\d+) 2xx", text)
    r["status_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Application protocol: (\S+)", text)
    r["alpn"] = m.group(1) if m else None
    if r.get("succeeded"):
        r["cpu_us_per_req"] = (c1 - c0) * 1e6 / r["succeeded"]
    return r


def run_handshakes(s: bench.Server, duration: float) -> dict:
    ctx = _tls_ctx()
    n = fails = 0
    c0 = s.cpu()
    t0 = time.monotonic()
    end = t0 + duration
    while time.monotonic() < end:
        try:
            raw = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = ctx.wrap_socket(raw, server_hostname="localhost")
            if c.session_reused:
                fails += 1
            n += 1
            c.close()
        except (OSError, ssl.SSLError):
            fails += 1
    t1 = time.monotonic()
    time.sleep(0.1)  # let the server finish the last close
    c1 = s.cpu()
    r = {"handshakes": n, "failures": fails, "server_cpu_s": c1 - c0, "elapsed_s": t1 - t0,
         "rate": n / (t1 - t0)}
    if n:
        r["cpu_us_per_handshake"] = (c1 - c0) * 1e6 / n
    return r


# --------------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(x, spec=",.0f"):
    return "—" if x is None else format(x, spec)


SCEN = [
    # key, title, metrics [(field, label, spec, lower_is_better)]
    ("gzip-10k", "encode gzip, 10 KiB text (`wrk -t1 -c50`, `Accept-Encoding: gzip`)",
     [("rps", "req/s", ",.0f"), ("cpu_us_per_req", "server CPU µs/req", ",.1f"),
      ("p99_ms", "p99 ms", ",.2f")]),
    ("h2-tls", "HTTP/2 over TLS (`h2load -t1 -c50 -m10 -D <duration>`), hello world; ALPN h2 checked",
     [("rps", "req/s", ",.0f"), ("cpu_us_per_req", "server CPU µs/req", ",.1f")]),
    ("tls-handshake", "full TLS 1.3 handshakes: one Python client thread, new TCP connection + handshake (SNI localhost, no resumption, X25519 + ECDSA P-256) + close, for <duration> s",
     [("rate", "handshakes/s (client-bound)", ",.0f"),
      ("cpu_us_per_handshake", "server CPU µs/handshake", ",.0f")]),
]


def markdown(res: dict) -> str:
    m = res["meta"]
    L = ["# Berth vs Caddy vs nginx — extra benchmarks", "",
         f"- date: {m['date']}; {m['cpus']} CPUs ({m['cpu_model']}); loadavg at start {m['loadavg_start']}",
         f"- versions: {m['versions']}",
         f"- {m['rounds']} interleaved rounds of {m['duration']:g} s runs per scenario and server; "
         "medians; ratios are of medians from this run.  All servers socket-activated "
         "(`systemd-socket-activate`), nginx `worker_processes 1`.", ""]
    L += ["| scenario | metric | Berth | Caddy | nginx | Berth/nginx | Berth/Caddy |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for key, title, metrics in SCEN:
        for field, label, spec in metrics:
            v = {n: res["medians"].get(key, {}).get(n, {}).get(field) for n in NAMES}
            L.append(f"| {key} | {label} | {fmt(v['berth'], spec)} | {fmt(v['caddy'], spec)} | "
                     f"{fmt(v['nginx'], spec)} | {fmt(ratio(v['berth'], v['nginx']), '.2f')} | "
                     f"{fmt(ratio(v['berth'], v['caddy']), '.2f')} |")
    L += ["", "Scenarios:", ""]
    for key, title, _ in SCEN:
        L.append(f"- **{key}**: {title}")
    L += ["", "gzip response check (curl, once before the runs):", "",
          "| server | Content-Encoding | gzip bytes (of 10,240) | decompresses to the text | Content-Type |",
          "|---|---|---:|---|---|"]
    for n in NAMES:
        g = res["checks"].get("gzip", {}).get(n, {})
        L.append(f"| {n} | {g.get('content_encoding')} | {fmt(g.get('compressed_bytes'))} | "
                 f"{g.get('decompresses_to_body')} | {g.get('content_type')} |")
    L += ["", "TLS check (openssl s_client, SNI localhost):", "",
          "| server | protocol | cipher | group | cert key | signature | ALPN |", "|---|---|---|---|---|---|---|"]
    for n in NAMES:
        t = res["checks"].get("tls", {}).get(n, {})
        L.append(f"| {n} | {t.get('protocol')} | {t.get('cipher')} | {t.get('group')} | "
                 f"{t.get('cert_key')} | {t.get('peer_sig')} {t.get('peer_sig_hash') or ''} | {t.get('alpn')} |")
    if res.get("notes"):
        L += ["", "Notes:", ""] + [f"- {x}" for x in res["notes"]]
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", default=str(REPO / ".build" / "release" / "berth"))
    ap.add_argument("--caddy", default=None)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = ap.parse_args()
    args.berth = str(Path(args.berth).resolve())
    args.caddy = args.caddy or bench.find_caddy()
    for tool in ("systemd-socket-activate", "wrk", "h2load", "openssl", "curl"):
        if not shutil.which(tool):
            bench.log(f"ERROR: {tool} not found")
            return 2
    if not os.access(args.berth, os.X_OK) or not args.caddy:
        bench.log(f"ERROR: need berth ({args.berth}) and caddy ({args.caddy})")
        return 2
    for sig in (bench.signal.SIGTERM, bench.signal.SIGINT, bench.signal.SIGHUP):
        bench.signal.signal(sig, bench._on_signal)

    workdir = Path(tempfile.mkdtemp(prefix="berth-extra-"))
    body = make_body()
    root = workdir / "www"
    root.mkdir()
    (root / "index.html").write_bytes(body)
    files = {"root": root, "gzip_caddyfile": workdir / "gzip.Caddyfile",
             "tls_caddyfile": workdir / "tls.Caddyfile",
             "cert": workdir / "nginx-cert.pem", "key": workdir / "nginx-key.pem"}
    files["gzip_caddyfile"].write_text(gzip_caddyfile(body))
    files["tls_caddyfile"].write_text(TLS_CADDYFILE)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(files["key"]), "-out", str(files["cert"]), "-days", "30",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)

    def ver(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=10)
            return (p.stdout + p.stderr).decode(errors="replace").strip().splitlines()[0]
        except Exception:  # noqa: BLE001
            return "?"
    cpu_model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                      if l.startswith("model name")), "?")
    res: dict = {"meta": {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(), "cpu_model": cpu_model,
        "loadavg_start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "versions": ", ".join([f"berth `{ver([args.berth, 'version'])}`", f"caddy `{ver([args.caddy, 'version']).split()[0]}`",
                               f"`{ver([args.nginx, '-v'])}`", f"`{ver(['h2load', '--version'])}`",
                               f"`{ver(['wrk', '-v'])}`", f"`{ver(['openssl', 'version'])}`"]),
        "rounds": args.rounds, "duration": args.duration, "berth_path": args.berth, "caddy_path": args.caddy,
        "workdir": str(workdir)},
        "checks": {"gzip": {}, "tls": {}}, "runs": {}, "medians": {}, "notes": []}

    servers: dict[tuple[str, str], bench.Server] = {}
    rc = 0
    try:
        for kind in ("gzip", "tls"):
            for n in NAMES:
                s = make_server(n, kind, args, workdir, files)
                s.start(bench.free_port())
                trigger(s, tls=(kind == "tls"))
                servers[(n, kind)] = s
                bench.log(f"{s.name}: up on {s.port}, pids {s.pids()}")
        for n in NAMES:
            res["checks"]["gzip"][n] = check_gzip(servers[(n, "gzip")], body, workdir)
            res["checks"]["tls"][n] = check_tls(servers[(n, "tls")])
            bench.log(f"{n}: gzip {res['checks']['gzip'][n]}; tls {res['checks']['tls'][n]}")
            if not res["checks"]["gzip"][n]["ok"]:
                res["notes"].append(f"{n} did NOT send a valid gzip response: {res['checks']['gzip'][n]}")

        # warm-up (1 s each)
        for n in NAMES:
            bench.run_wrk(servers[(n, "gzip")].port, ["-t1", "-c50", "-H", "Accept-Encoding: gzip"], 1,
                          workdir / f"warm-gzip-{n}.txt")
            run_h2load(servers[(n, "tls")], 1, workdir / f"warm-h2-{n}.txt")
            run_handshakes(servers[(n, "tls")], 0.5)

        for r in range(args.rounds):
            for key, _, _ in SCEN:
                for n in NAMES:
                    if key == "gzip-10k":
                        s = servers[(n, "gzip")]
                        out = bench.measured_run(s, ["-t1", "-c50", "-H", "Accept-Encoding: gzip"],
                                                 args.duration, workdir / f"wrk-gzip-{n}-{r}.txt")
                    elif key == "h2-tls":
                        s = servers[(n, "tls")]
                        out = run_h2load(s, args.duration, workdir / f"h2load-{n}-{r}.txt")
                    else:
                        s = servers[(n, "tls")]
                        out = run_handshakes(s, args.duration)
                    if s.proc.poll() is not None:
                        res["notes"].append(f"{s.name} died during {key} round {r + 1}")
                        raise RuntimeError(f"{s.name} died")
                    res["runs"].setdefault(key, {}).setdefault(n, []).append(out)
                    brief = {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()
                             if k in ("rps", "cpu_us_per_req", "p99_ms", "rate", "cpu_us_per_handshake",
                                      "failed", "errored", "non2xx", "failures", "socket_errors")}
                    bench.log(f"round {r + 1} {key} {n}: {brief}")

        for key, _, metrics in SCEN:
            for n in NAMES:
                runs = res["runs"].get(key, {}).get(n, [])
                res["medians"].setdefault(key, {})[n] = {f: med([x.get(f) for x in runs]) for f, _, _ in metrics}
        for n in NAMES:
            for x in res["runs"].get("h2-tls", {}).get(n, []):
                if x.get("failed") or x.get("errored") or x.get("alpn") != "h2":
                    res["notes"].append(f"{n} h2load: failed {x.get('failed')}, errored {x.get('errored')}, "
                                        f"ALPN {x.get('alpn')}")
                    break
            for x in res["runs"].get("gzip-10k", {}).get(n, []):
                if x.get("non2xx") or any(x.get("socket_errors", {}).values()):
                    res["notes"].append(f"{n} wrk gzip: non-2xx {x.get('non2xx')}, socket errors {x.get('socket_errors')}")
                    break
            fails = sum(x.get("failures", 0) for x in res["runs"].get("tls-handshake", {}).get(n, []))
            if fails:
                res["notes"].append(f"{n} handshakes: {fails} failures/resumptions")
    except Exception as e:  # noqa: BLE001
        bench.log(f"ERROR: {e!r}")
        res["notes"].append(f"run aborted: {e!r}")
        rc = 1
    finally:
        for s in servers.values():
            s.stop()
        bench.kill_all()

    res["meta"]["loadavg_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(res)
    (out / "extra-latest.md").write_text(md)
    (out / "extra-latest.json").write_text(json.dumps(res, indent=2, default=str))
    print(md)
    if not args.keep and rc == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

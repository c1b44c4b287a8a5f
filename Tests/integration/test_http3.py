"""HTTP/3 (QUIC) with real peers: aioquic (h3get.py) and ngtcp2's gtlsclient, on inherited UDP
sockets (`bind fdgram/N`), on UDP sockets Berth binds next to a TCP address, with packet loss,
Retry, stateless reset, version negotiation, dual-stack sockets, Alt-Svc, graceful shutdown
and the seed's Example 3.

gtlsclient exits 0 even when it fails, so its tests check the downloaded body.
"""
import hashlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (free_tcp_udp_port, launch, loop_cpu_ns, seed_caddyfile, tcp_listener, udp_socket, wait_port,
                      write_caddyfile)
from proxy_backends import EchoBackend

HERE = Path(__file__).resolve().parent
H3GET = [sys.executable, str(HERE / "h3get.py")]
GTLS = shutil.which("gtlsclient")

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import aioquic"], capture_output=True).returncode != 0,
    reason="aioquic is not installed")


def root_of(data):
    return str(Path(data) / "berth" / "pki" / "authorities" / "local" / "root.crt")


def h3get(url, data_dir, *args, timeout=20, connect=None):
    cmd = H3GET + ["--cafile", root_of(data_dir), "--timeout", str(timeout - 2)]
    if connect:
        cmd += ["--connect", connect]
    return subprocess.run(cmd + list(args) + [url], capture_output=True, timeout=timeout)


def gtls(host, port, urls, *args, download=None, timeout=60):
    if GTLS is None:
        pytest.skip("gtlsclient (ngtcp2-client) is not installed")
    cmd = [GTLS, "--exit-on-all-streams-close", "--no-http-dump", *args]
    if download:
        cmd.append(f"--download={download}")
    cmd += [host, str(port), *urls]
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True)


def site(body='"hello h3\n"', extra_global="", extra_site="", host="localhost", binds=("fd/3", "fdgram/4"),
         respond_path=""):
    b = []
    for a in binds:
        proto = "h3" if a.startswith("fdgram") else "h1 h2"
        b.append(f"\tbind {a} {{\n\t\tprotocols {proto}\n\t}}\n")
    return (f"{{\n\tadmin off\n\tauto_https disable_redirects\n{extra_global}}}\n\n"
            f"https://{host} {{\n{''.join(b)}\ttls internal\n\tlog\n{extra_site}\trespond {respond_path}{body}\n}}\n")


@pytest.fixture
def fdgram_server(tmp_path):
    """Berth with a TCP listener on fd/3 (h1 h2) and a UDP socket on fd/4 (h3)."""
    started = []

    def start(text=None, udp=None, tcp=None, env=None):
        cf = write_caddyfile(tmp_path, text or site())
        t = tcp or tcp_listener()
        u = udp or udp_socket()
        tport, uport = t.getsockname()[1], u.getsockname()[1]
        e = {"XDG_DATA_HOME": str(tmp_path / "data")}
        e.update(env or {})
        p = launch(["run", "--config", str(cf)], sockets=[t, u], env=e)
        started.append(p)
        assert p.alive(), p.stderr()
        return p, tport, uport

    yield start
    for p in started:
        if p.alive():
            p.stop(signal.SIGKILL)


# ---------------------------------------------------------------- basic exchanges


def test_get_and_head_over_inherited_udp_socket(fdgram_server, tmp_path):
    p, tport, uport = fdgram_server()
    r = h3get(f"https://localhost:{uport}/", tmp_path / "data", "-v")
    assert r.returncode == 0, r.stderr.decode() + p.stderr()
    assert r.stdout == b"hello h3\n"
    err = r.stderr.decode()
    assert "ALPN=h3 status=200" in err and "< server: Berth" in err and "< content-length: 9" in err
    # HEAD: the length of the GET body, no body (RFC 9110 §9.3.2). aioquic 1.7 treats that
    # content-length as a mismatch, so gtlsclient is the peer here.
    if GTLS is None:
        pytest.skip("gtlsclient (ngtcp2-client) is not installed")
    gtls_http = subprocess.run([GTLS, "--exit-on-all-streams-close", "--no-quic-dump", "-m", "HEAD", "127.0.0.1",
                                str(uport), f"https://localhost:{uport}/"], capture_output=True, timeout=30)
    out = gtls_http.stdout.decode(errors="replace") + gtls_http.stderr.decode(errors="replace")
    assert "[:status: 200]" in out and "[content-length: 9]" in out and "closed with error code 256" in out, out[-2000:]
    logs = [l for l in p.access_logs() if l["request"]["proto"] == "HTTP/3.0"]
    assert logs, p.stderr()
    assert logs[0]["request"]["tls"]["proto"] == "h3" and logs[0]["request"]["tls"]["server_name"] == "localhost"
    assert "enabling HTTP/3 listener" in p.stderr() and "fdgram/4" in p.stderr()


def test_gtlsclient_get(fdgram_server, tmp_path):
    p, tport, uport = fdgram_server()
    d = tmp_path / "dl"
    d.mkdir()
    gtls("127.0.0.1", uport, [f"https://localhost:{uport}/"], "-q", download=d)
    assert (d / "index.html").read_bytes() == b"hello h3\n", p.stderr()


def test_alt_svc_on_h1_and_h2_uses_the_udp_port(fdgram_server, tmp_path):
    p, tport, uport = fdgram_server()
    root = root_of(tmp_path / "data")
    for v in ("--http1.1", "--http2"):
        r = curl("--cacert", root, v, "-D", "-", "-o", "/dev/null", f"https://localhost:{tport}/")
        assert f'alt-svc: h3=":{uport}"; ma=2592000' in r.stdout.lower(), r.stdout + r.stderr
    # Not on HTTP/3 responses themselves.
    r = h3get(f"https://localhost:{uport}/", tmp_path / "data", "-v")
    assert "alt-svc" not in r.stderr.decode().lower()


def test_alt_svc_port_override(fdgram_server, tmp_path):
    p, tport, uport = fdgram_server(site(extra_global="\tservers {\n\t\talt_svc_port 443\n\t}\n"))
    r = curl("--cacert", root_of(tmp_path / "data"), "-D", "-", "-o", "/dev/null", f"https://localhost:{tport}/")
    assert 'alt-svc: h3=":443"; ma=2592000' in r.stdout.lower(), r.stdout + p.stderr()


def test_no_alt_svc_without_h3_listener(tmp_path):
    cf = write_caddyfile(tmp_path, site(binds=("fd/3",)))
    t = tcp_listener()
    port = t.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[t], env={"XDG_DATA_HOME": str(tmp_path / "data")})
    try:
        r = curl("--cacert", root_of(tmp_path / "data"), "-D", "-", "-o", "/dev/null", f"https://localhost:{port}/")
        assert "200" in r.stdout.splitlines()[0], r.stdout + r.stderr
        assert "alt-svc" not in r.stdout.lower()
    finally:
        p.stop()


def test_h3_on_a_tcp_address_binds_the_same_udp_port(tmp_path):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    text = (f"{{\n\tadmin off\n\tauto_https disable_redirects\n}}\n\nhttps://localhost:{port} {{\n"
            f"\tbind 127.0.0.1\n\ttls internal\n\trespond \"bound\"\n}}\n")
    cf = write_caddyfile(tmp_path, text)
    p = launch(["run", "--config", str(cf)], env={"XDG_DATA_HOME": str(tmp_path / "data")})
    try:
        assert p.alive(), p.stderr()
        r = h3get(f"https://localhost:{port}/", tmp_path / "data", connect="127.0.0.1")
        assert r.returncode == 0 and r.stdout == b"bound", r.stderr.decode() + p.stderr()
        r = curl("--cacert", root_of(tmp_path / "data"), "-D", "-", "-o", "/dev/null", f"https://localhost:{port}/")
        assert f'alt-svc: h3=":{port}"; ma=2592000' in r.stdout.lower(), r.stdout + p.stderr()
    finally:
        p.stop()


# ---------------------------------------------------------------- side by side with Caddy

CADDY = shutil.which("caddy")

EXPECT_SITE = """{{
\tadmin off
\tauto_https disable_redirects
}}

https://localhost:{port} {{
\tbind 127.0.0.1
\ttls internal
\tlog
\theader X-Routed yes
\treverse_proxy /upload* 127.0.0.1:{echo}
\treverse_proxy /reject-expect 127.0.0.1:{echo}
\trespond / "hi"
}}
"""


@pytest.fixture
def caddy_and_berth(tmp_path, echo):
    """Caddy and Berth from the same Caddyfile (bar the port), HTTPS + HTTP/3 on one port each,
    proxying /upload and /reject-expect to the echo backend. Yields {name: (port, data dir)}
    and Berth's process."""
    if CADDY is None:
        pytest.skip("caddy is not installed")
    out = {}
    procs = []
    berth = None
    try:
        for name in ("caddy", "berth"):
            port = free_tcp_udp_port()
            d = tmp_path / name
            d.mkdir()
            cf = write_caddyfile(d, EXPECT_SITE.format(port=port, echo=echo.port))
            if name == "caddy":
                env = {"PATH": os.environ.get("PATH", ""), "HOME": str(d), "XDG_DATA_HOME": str(d / "data"),
                       "XDG_CONFIG_HOME": str(d / "config")}
                procs.append(subprocess.Popen([CADDY, "run", "--config", str(cf), "--adapter", "caddyfile"], env=env,
                                              cwd=str(d), stdout=subprocess.DEVNULL,
                                              stderr=open(d / "log", "w")))
                root = d / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
            else:
                berth = launch(["run", "--config", str(cf)], env={"XDG_DATA_HOME": str(d / "data")})
                assert berth.alive(), berth.stderr()
                root = Path(root_of(d / "data"))
            wait_port(port)
            out[name] = (port, root)
        # Caddy opens its UDP socket just after the TCP one: wait until HTTP/3 answers.
        for name, (port, root) in out.items():
            for _ in range(50):
                r = h3x(out, name, "/")
                if r.returncode == 0:
                    break
                time.sleep(0.1)
            assert r.returncode == 0, (name, r.stderr.decode())
        yield out, berth
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        if berth is not None and berth.alive():
            berth.stop()


def h3x(servers, name, path, *args):
    port, root = servers[name]
    cmd = H3GET + ["--cafile", str(root), "--timeout", "15", "--connect", "127.0.0.1", "-v", *args,
                   f"https://localhost:{port}{path}"]
    return subprocess.run(cmd, capture_output=True, timeout=20)


def interims(stderr):
    return [l.split("=", 1)[1] for l in stderr.decode(errors="replace").splitlines() if l.startswith("interim=")]


def continued(stderr):
    return [l.split("=", 1)[1] for l in stderr.decode(errors="replace").splitlines() if l.startswith("continue=")]


def test_expect_100_continue_like_caddy(caddy_and_berth):
    """`expect: 100-continue` over HTTP/3, Berth next to Caddy 2.11.7. The client holds its body
    back (up to 10 s) until an interim 100 or a final response arrives:
    - reverse_proxy to an upstream that sends 100: one interim `100` (with `server`), then the
      body goes up and the final response comes back (Caddy's 100 also carries the fields set
      by `header` so far, which Go's ReverseProxy then drops from the final response; Berth's
      100 has `server` only and its final response keeps them);
    - a handler that never reads (respond): the final response at once, no 100;
    - an upstream that answers 417 without reading: the 417 passed on, no 100, body never sent.
    Without `expect`, no interim response at all."""
    import json
    servers, berth = caddy_and_berth
    for name in ("caddy", "berth"):
        t0 = time.monotonic()
        r = h3x(servers, name, "/upload", "-X", "POST", "--data", "abc", "--expect-continue", "--continue-wait", "10")
        took = time.monotonic() - t0
        err = r.stderr.decode()
        assert r.returncode == 0, (name, err)
        assert continued(r.stderr) == ["interim"] and interims(r.stderr) == ["100"], (name, err)
        assert "<I server: " in err, (name, err)
        assert took < 8, (name, took)
        info = json.loads(r.stdout)
        assert info["body_len"] == 3, (name, info)

        r = h3x(servers, name, "/", "-X", "POST", "--data", "abc", "--expect-continue", "--continue-wait", "10")
        assert r.returncode == 0 and r.stdout == b"hi", (name, r.stderr.decode())
        assert continued(r.stderr) == ["final"] and interims(r.stderr) == [], (name, r.stderr.decode())

        r = h3x(servers, name, "/reject-expect", "-X", "POST", "--data", "abc", "--expect-continue",
                "--continue-wait", "10")
        assert header(r.stderr, ":status") == "417", (name, r.stderr.decode())
        assert continued(r.stderr) == ["final"] and interims(r.stderr) == [], (name, r.stderr.decode())

        r = h3x(servers, name, "/upload", "-X", "POST", "--data", "abc")
        assert r.returncode == 0 and json.loads(r.stdout)["body_len"] == 3, (name, r.stderr.decode())
        assert interims(r.stderr) == [], (name, r.stderr.decode())


def test_options_asterisk_is_routed_like_caddy(caddy_and_berth):
    """Caddy's HTTP/3 server (quic-go) does not answer `OPTIONS *` itself as Go's HTTP/1 and
    HTTP/2 servers do: the request goes through the routes (here `header` adds X-Routed, no
    `respond` matches `*`), gets `server` and is logged. Berth does the same over HTTP/3."""
    servers, berth = caddy_and_berth
    for name in ("caddy", "berth"):
        r = h3x(servers, name, "/", "-X", "OPTIONS", "--path", "*")
        err = r.stderr.decode()
        assert r.returncode == 0 and r.stdout == b"", (name, err)
        assert header(r.stderr, ":status") == "200", (name, err)
        assert header(r.stderr, "x-routed") == "yes", (name, err)
        assert header(r.stderr, "server") is not None, (name, err)
        assert header(r.stderr, "content-length") == "0", (name, err)
    logs = wait_h3_logs(berth, lambda l: l["request"]["method"] == "OPTIONS", 1)
    assert [l["request"]["uri"] for l in logs] == ["*"], logs


# ---------------------------------------------------------------- bodies and streams


@pytest.fixture
def echo():
    b = EchoBackend()
    yield b
    b.close()


def proxy_site(echo_port):
    return site(body='"unused"', respond_path="/ ", extra_site=f"\treverse_proxy /up* 127.0.0.1:{echo_port}\n"
                f"\treverse_proxy /bytes* 127.0.0.1:{echo_port}\n\treverse_proxy /json* 127.0.0.1:{echo_port}\n")


@pytest.mark.parametrize("size", [0, 1, 1000, 300_000, 3_000_000])
def test_post_bodies_reach_the_handler(fdgram_server, tmp_path, echo, size):
    import json
    p, tport, uport = fdgram_server(proxy_site(echo.port))
    payload = os.urandom(size)
    f = tmp_path / "body.bin"
    f.write_bytes(payload)
    r = h3get(f"https://localhost:{uport}/upload", tmp_path / "data", "-X", "POST", "--data-file", str(f))
    assert r.returncode == 0, r.stderr.decode() + p.stderr()
    info = json.loads(r.stdout)
    assert info["method"] == "POST" and info["body_len"] == size
    assert info["body_sha256"] == hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize("chunked", ["0", "1"])
def test_large_streamed_response_through_reverse_proxy(fdgram_server, tmp_path, echo, chunked):
    p, tport, uport = fdgram_server(proxy_site(echo.port))
    size = 8_000_000
    r = h3get(f"https://localhost:{uport}/bytes?size={size}&chunked={chunked}", tmp_path / "data", timeout=40)
    assert r.returncode == 0, r.stderr.decode() + p.stderr()
    assert len(r.stdout) == size


def test_many_streams_on_one_connection(fdgram_server, tmp_path):
    p, tport, uport = fdgram_server()
    r = h3get(f"https://localhost:{uport}/", tmp_path / "data", "-n", "60")
    assert r.returncode == 0, r.stderr.decode() + p.stderr()
    assert r.stdout == b"hello h3\n" * 60
    d = tmp_path / "dl"
    d.mkdir()
    r = gtls("127.0.0.1", uport, [f"https://localhost:{uport}/"], "-q", "-n", "500")
    time.sleep(0.3)
    h3 = [l for l in p.access_logs() if l["request"]["proto"] == "HTTP/3.0"]
    assert len(h3) == 560, (len(h3), r.stderr[-2000:])


def test_parallel_connections(fdgram_server, tmp_path):
    """24 connections at once, on one inherited UDP socket served by two loops: every
    request is answered, and the connections are spread over both loops (connection-ID
    steering) — each loop thread does a fair share of the work."""
    p, tport, uport = fdgram_server(env={"BERTH_LOOPS": "2"})
    cmd = H3GET + ["--cafile", root_of(tmp_path / "data"), "--timeout", "25", "-n", "3", f"https://localhost:{uport}/"]
    before = loop_cpu_ns(p.p.pid) if Path(f"/proc/{p.p.pid}/sched").exists() else None
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(24)]
    outs = [pr.communicate(timeout=40) for pr in procs]
    for pr, (out, err) in zip(procs, outs):
        assert pr.returncode == 0, err.decode() + p.stderr()[-3000:]
        assert out == b"hello h3\n" * 3
    if before is None:
        pytest.skip("no /proc/PID/sched on this kernel: cannot see per-thread CPU time")
    after = loop_cpu_ns(p.p.pid)
    assert sorted(after) == ["berth-loop-0", "berth-loop-1"], after
    used = {k: after[k] - before.get(k, 0) for k in after}
    total = sum(used.values())
    assert total > 0, used
    for k, v in used.items():
        assert v >= 0.15 * total, (used, "one loop did almost nothing: connections were not spread")


@pytest.mark.parametrize("loss", ["0.1", "0.3"])
def test_packet_loss(fdgram_server, tmp_path, loss):
    body = "0123456789abcdef" * 16384  # 256 KiB
    p, tport, uport = fdgram_server(site(body=f"<<END\n\t{body}\n\tEND"))
    d = tmp_path / "dl"
    d.mkdir()
    # At 30 % loss both ways a handshake flight can be lost several times in a row; with the
    # doubling probe timeout that outlasts gtlsclient's default 10 s handshake limit about once
    # in 20 runs (ERR_HANDSHAKE_TIMEOUT, nothing downloaded). Give the handshake as long as
    # the transfer.
    gtls("127.0.0.1", uport, [f"https://localhost:{uport}/"], "-q", "-r", loss, "-t", loss, "--timeout=30s",
         "--handshake-timeout=30s", download=d, timeout=90)
    got = (d / "index.html").read_bytes() if (d / "index.html").exists() else b""
    assert got == body.encode(), (len(got), p.stderr()[-2000:])


# ---------------------------------------------------------------- QUIC server duties


def test_retry_when_configured(fdgram_server, tmp_path):
    p, tport, uport = fdgram_server(site(extra_global="\tservers {\n\t\th3_retry\n\t}\n"))
    d = tmp_path / "dl"
    d.mkdir()
    r = gtls("127.0.0.1", uport, [f"https://localhost:{uport}/"], "--no-quic-dump", download=d)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert "Retry" in out or "retry" in out, out[-3000:]
    assert (d / "index.html").read_bytes() == b"hello h3\n"
    r = h3get(f"https://localhost:{uport}/", tmp_path / "data")
    assert r.returncode == 0 and r.stdout == b"hello h3\n", r.stderr.decode()


def short_header_probe(port, dcid, size=100, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(bytes([0x40 | 0x01]) + dcid + os.urandom(size - 1 - len(dcid)), (host, port))
    try:
        return s.recvfrom(2048)[0]
    except socket.timeout:
        return None
    finally:
        s.close()


def test_stateless_reset_for_unknown_connection_and_persistent_secret(tmp_path):
    cf = write_caddyfile(tmp_path, site())
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    dcid = os.urandom(18)
    tokens = []
    for _ in range(2):
        t, u = tcp_listener(), udp_socket()
        uport = u.getsockname()[1]
        p = launch(["run", "--config", str(cf)], sockets=[t, u], env=env)
        try:
            a = short_header_probe(uport, dcid)
            b = short_header_probe(uport, dcid)
            assert a is not None and b is not None, p.stderr()
            # RFC 9000 §10.3: short header form, shorter than the trigger, >= 21 bytes, token last.
            assert a[0] & 0xC0 == 0x40 and 21 <= len(a) < 100
            assert a[-16:] == b[-16:]
            tokens.append(a[-16:])
            # Too short to be answered without risking a reset loop.
            assert short_header_probe(uport, dcid, size=21) is None
        finally:
            p.stop()
    assert tokens[0] == tokens[1]  # the static secret survived the restart
    secret = tmp_path / "data" / "berth" / "quic.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and secret.stat().st_size == 32


def test_version_negotiation(fdgram_server):
    p, tport, uport = fdgram_server()
    dcid, scid = os.urandom(8), os.urandom(8)
    pkt = bytes([0xC0]) + bytes.fromhex("0a0a0a0a") + bytes([8]) + dcid + bytes([8]) + scid
    pkt += os.urandom(1200 - len(pkt))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(pkt, ("127.0.0.1", uport))
    r = s.recvfrom(2048)[0]
    s.close()
    assert r[0] & 0x80 and r[1:5] == b"\0\0\0\0", r.hex()
    # RFC 9000 §17.2.1: the CIDs are echoed swapped; QUIC v1 is offered.
    assert r[5] == 8 and r[6:14] == scid and r[14] == 8 and r[15:23] == dcid
    versions = [r[i:i + 4] for i in range(23, len(r), 4)]
    assert bytes.fromhex("00000001") in versions


def test_ipv4_and_ipv6_clients_on_a_dual_stack_socket(fdgram_server, tmp_path):
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(("::", 0))
    p, tport, uport = fdgram_server(udp=u)
    for addr in ("127.0.0.1", "::1"):
        r = h3get(f"https://localhost:{uport}/", tmp_path / "data", connect=addr)
        assert r.returncode == 0 and r.stdout == b"hello h3\n", addr + r.stderr.decode() + p.stderr()
    logs = [l["request"]["remote_ip"] for l in p.access_logs() if l["request"]["proto"] == "HTTP/3.0"]
    assert "127.0.0.1" in logs and "::1" in logs, logs
    d = tmp_path / "dl"
    d.mkdir()
    gtls("127.0.0.1", uport, [f"https://localhost:{uport}/"], "-q", download=d)
    assert (d / "index.html").read_bytes() == b"hello h3\n"


def test_warns_when_udp_is_ipv4_only_but_tcp_is_ipv6(fdgram_server):
    t = tcp_listener(host="::", family=socket.AF_INET6, v6only=False)
    p, tport, uport = fdgram_server(tcp=t)
    assert "served only over IPv4" in p.stderr() and "BindIPv6Only=both" in p.stderr()


def test_graceful_shutdown_lets_requests_finish(fdgram_server, tmp_path, echo):
    p, tport, uport = fdgram_server(site(body='"x"', respond_path="/ ",
                                         extra_site=f"\treverse_proxy /slow* 127.0.0.1:{echo.port}\n"))
    cmd = H3GET + ["--cafile", root_of(tmp_path / "data"), f"https://localhost:{uport}/slow?delay=1.5"]
    c = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # SIGTERM once the request is in flight (the upstream has it), however slowly the client
    # started on a busy machine.
    end = time.time() + 15
    while echo.requests == 0 and time.time() < end:
        time.sleep(0.02)
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    out, err = c.communicate(timeout=15)
    assert c.returncode == 0 and b"GET /slow?delay=1.5" in out, err.decode() + p.stderr()
    assert p.p.wait(10) == 0


def test_reload_keeps_serving_h3_on_the_inherited_socket(fdgram_server, tmp_path):
    p, tport, uport = fdgram_server()
    assert h3get(f"https://localhost:{uport}/", tmp_path / "data").stdout == b"hello h3\n"
    write_caddyfile(tmp_path, site(body='"reloaded\n"'))
    p.send_signal(signal.SIGHUP)
    p.wait_log(lambda x: x.get("msg") == "config reloaded", timeout=10)
    r = h3get(f"https://localhost:{uport}/", tmp_path / "data")
    assert r.returncode == 0 and r.stdout == b"reloaded\n", r.stderr.decode() + p.stderr()


# ---------------------------------------------------------------- seed Example 3


def test_seed_example3_h1_h2_h3(tmp_path):
    text = seed_caddyfile(3).read_text().replace("https://example.com {", "https://example.com {\n\ttls internal", 1)
    text = text.replace("admin unix//run/admin.sock", f"admin unix/{tmp_path}/admin.sock")
    cf = write_caddyfile(tmp_path, text)
    a, b, c = tcp_listener(), tcp_listener(), udp_socket()
    pa, pb, pc = a.getsockname()[1], b.getsockname()[1], c.getsockname()[1]
    data = tmp_path / "data"
    p = launch(["run", "--config", str(cf)], sockets=[a, b, c], env={"XDG_DATA_HOME": str(data)})
    try:
        root = root_of(data)
        r = curl("--resolve", f"example.com:{pa}:127.0.0.1", f"http://example.com:{pa}/")
        assert r.stdout == "Hello world\n", r.stderr + p.stderr()
        r = curl("--cacert", root, "--http1.1", "-D", "-", "--resolve", f"example.com:{pb}:127.0.0.1",
                 f"https://example.com:{pb}/")
        assert r.stdout.endswith("Hello world\n") and f'h3=":{pc}"' in r.stdout, r.stdout + p.stderr()
        r = curl("--cacert", root, "--http2", "-sS", "-w", "%{http_version}", "--resolve",
                 f"example.com:{pb}:127.0.0.1", f"https://example.com:{pb}/")
        assert r.stdout == "Hello world\n2", r.stdout + r.stderr
        r = h3get(f"https://example.com:{pc}/", data, connect="127.0.0.1")
        assert r.returncode == 0 and r.stdout == b"Hello world\n", r.stderr.decode() + p.stderr()
        protos = [l["request"]["proto"] for l in p.access_logs()]
        assert {"HTTP/1.1", "HTTP/2.0", "HTTP/3.0"} <= set(protos), protos
    finally:
        p.stop()


def test_named_datagram_socket(tmp_path):
    text = site(binds=()).replace("\ttls internal", "\tbind fdname/web {\n\t\tprotocols h1 h2\n\t}\n"
                                  "\tbind fdgramname/quic {\n\t\tprotocols h3\n\t}\n\ttls internal")
    cf = write_caddyfile(tmp_path, text)
    # Order does not matter with names: the UDP socket comes first.
    u, t = udp_socket(), tcp_listener()
    uport = u.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[u, t], names=["quic", "web"],
               env={"XDG_DATA_HOME": str(tmp_path / "data")})
    try:
        r = h3get(f"https://localhost:{uport}/", tmp_path / "data")
        assert r.returncode == 0 and r.stdout == b"hello h3\n", r.stderr.decode() + p.stderr()
    finally:
        p.stop()


def test_handlers_redir_header_encode_over_h3(fdgram_server, tmp_path):
    import gzip
    text_body = "compress me please " * 200
    extra = (f"\theader X-Test \"yes\"\n\tredir /old /new 301\n\tencode gzip\n"
             f"\trespond /text <<END\n\t{text_body}\n\tEND\n")
    p, tport, uport = fdgram_server(site(extra_site=extra))
    data = tmp_path / "data"
    r = h3get(f"https://localhost:{uport}/", data, "-v")
    assert r.returncode == 0 and "< x-test: yes" in r.stderr.decode(), r.stderr.decode() + p.stderr()
    r = h3get(f"https://localhost:{uport}/old", data, "-v")
    err = r.stderr.decode()
    assert r.returncode == 0 and "status=301" in err and "< location: /new" in err, err
    r = h3get(f"https://localhost:{uport}/text", data, "-v", "-H", "Accept-Encoding: gzip")
    err = r.stderr.decode()
    assert r.returncode == 0 and "< content-encoding: gzip" in err, err + p.stderr()
    assert gzip.decompress(r.stdout).decode() == text_body


# ---------------------------------------------------------------- file_server over h3


def header(stderr, name):
    """The value of response header `name` from h3get -v output (None when absent)."""
    prefix = f"< {name.lower()}: "
    for line in stderr.decode(errors="replace").splitlines():
        if line.lower().startswith(prefix):
            return line[len(prefix):]
    return None


def wait_h3_logs(p, pred, count, timeout=5.0):
    """HTTP/3 access log entries matching `pred`, once there are `count` of them (exchanges
    are logged when their stream is released, which can come just after the client exits)."""
    end = time.time() + timeout
    while True:
        logs = [l for l in p.access_logs() if l["request"]["proto"] == "HTTP/3.0" and pred(l)]
        if len(logs) >= count or time.time() > end:
            return logs
        time.sleep(0.05)


@pytest.fixture
def file_site(fdgram_server, tmp_path):
    """Berth serving a directory with a 6 MiB random file over h3 on an inherited UDP socket."""
    root = tmp_path / "www"
    root.mkdir()
    payload = os.urandom(6 * 1024 * 1024 + 12345)
    (root / "big.bin").write_bytes(payload)
    os.utime(root / "big.bin", (1704164645, 1704164645))
    text = (f"{{\n\tadmin off\n\tauto_https disable_redirects\n}}\n\nhttps://localhost {{\n"
            f"\tbind fd/3 {{\n\t\tprotocols h1 h2\n\t}}\n\tbind fdgram/4 {{\n\t\tprotocols h3\n\t}}\n"
            f"\ttls internal\n\tlog\n\troot * {root}\n\tfile_server\n}}\n")
    p, tport, uport = fdgram_server(text)
    return p, tport, uport, payload


def test_file_server_large_download_aioquic_and_gtlsclient(file_site, tmp_path):
    p, tport, uport, payload = file_site
    want = hashlib.sha256(payload).hexdigest()
    r = h3get(f"https://localhost:{uport}/big.bin", tmp_path / "data", "-v", timeout=60)
    assert r.returncode == 0, r.stderr.decode()[-2000:] + p.stderr()[-2000:]
    assert len(r.stdout) == len(payload) and hashlib.sha256(r.stdout).hexdigest() == want
    assert header(r.stderr, "content-length") == str(len(payload))
    assert header(r.stderr, "accept-ranges") == "bytes" and header(r.stderr, "etag")
    # gtlsclient exits 0 on failure: the downloaded file is what counts.
    d = tmp_path / "dl"
    d.mkdir()
    gtls("127.0.0.1", uport, [f"https://localhost:{uport}/big.bin"], "-q", "--timeout=30s", download=d, timeout=90)
    got = (d / "big.bin").read_bytes() if (d / "big.bin").exists() else b""
    assert len(got) == len(payload) and hashlib.sha256(got).hexdigest() == want, (len(got), p.stderr()[-2000:])
    # Several large downloads as concurrent streams of one connection, under 10 % loss.
    d2 = tmp_path / "dl2"
    d2.mkdir()
    gtls("127.0.0.1", uport, [f"https://localhost:{uport}/big.bin"], "-q", "-n", "3", "-r", "0.1", "-t", "0.1",
         "--timeout=60s", download=d2, timeout=120)
    got = (d2 / "big.bin").read_bytes() if (d2 / "big.bin").exists() else b""
    assert hashlib.sha256(got).hexdigest() == want, (len(got), p.stderr()[-2000:])
    logs = wait_h3_logs(p, lambda l: l["request"]["uri"] == "/big.bin", 5, timeout=10)
    # The two lossless downloads are always logged by now. The lossy client can exit before its
    # last ACK or CONNECTION_CLOSE gets through (10 % loss both ways); Berth then logs those
    # streams only when the connection idles out, so they may still be missing here.
    assert len(logs) >= 2 and all(l["status"] == 200 and l["size"] == len(payload) for l in logs), logs


def test_file_server_ranges_over_h3(file_site, tmp_path):
    p, tport, uport, payload = file_site
    data = tmp_path / "data"
    url = f"https://localhost:{uport}/big.bin"
    size = len(payload)

    def get(*hdrs):
        args = ["-v"]
        for h in hdrs:
            args += ["-H", h]
        return h3get(url, data, *args, timeout=60)

    r = get()
    etag = header(r.stderr, "etag")
    lastmod = header(r.stderr, "last-modified")
    assert etag and lastmod == "Tue, 02 Jan 2024 03:04:05 GMT", r.stderr.decode()
    # Single range, across the 64 KiB read chunks of the file pump.
    for first, last in ((0, 0), (1000, 1999), (65_000, 3_000_000), (size - 10, size - 1)):
        r = get(f"Range: bytes={first}-{last}")
        assert r.returncode == 0 and "status=206" in r.stderr.decode(), r.stderr.decode()
        assert r.stdout == payload[first:last + 1]
        assert header(r.stderr, "content-range") == f"bytes {first}-{last}/{size}"
        assert header(r.stderr, "content-length") == str(last - first + 1)
    # Open-ended and suffix ranges.
    r = get(f"Range: bytes={size - 5000}-")
    assert "status=206" in r.stderr.decode() and r.stdout == payload[-5000:]
    r = get("Range: bytes=-777")
    assert "status=206" in r.stderr.decode() and r.stdout == payload[-777:]
    assert header(r.stderr, "content-range") == f"bytes {size - 777}-{size - 1}/{size}"
    # Unsatisfiable (RFC 9110 §15.5.17): 416 with the current length.
    r = get(f"Range: bytes={size}-")
    assert r.returncode == 1 and "status=416" in r.stderr.decode(), r.stderr.decode()
    assert header(r.stderr, "content-range") == f"bytes */{size}"
    # If-Range (RFC 9110 §13.1.5): a matching validator gives the range, another the whole file.
    r = get("Range: bytes=10-19", f"If-Range: {etag}")
    assert "status=206" in r.stderr.decode() and r.stdout == payload[10:20]
    r = get("Range: bytes=10-19", f"If-Range: {lastmod}")
    assert "status=206" in r.stderr.decode() and r.stdout == payload[10:20]
    r = get("Range: bytes=10-19", 'If-Range: "not-the-etag"')
    assert "status=200" in r.stderr.decode() and hashlib.sha256(r.stdout).digest() == hashlib.sha256(payload).digest()
    # Conditionals: 304 without a body.
    r = get(f"If-None-Match: {etag}")
    assert "status=304" in r.stderr.decode() and r.stdout == b"", r.stderr.decode()
    # Multiple ranges: multipart/byteranges carrying both parts.
    r = get("Range: bytes=0-9,100-109")
    assert "status=206" in r.stderr.decode()
    assert header(r.stderr, "content-type").startswith("multipart/byteranges; boundary=")
    assert payload[0:10] in r.stdout and payload[100:110] in r.stdout
    assert f"Content-Range: bytes 100-109/{size}".encode() in r.stdout
    st = [l["status"] for l in wait_h3_logs(p, lambda l: True, 13)]
    assert st.count(206) == 9 and st.count(200) == 2 and st.count(416) == 1 and st.count(304) == 1, st


def test_file_server_head_over_h3(file_site, tmp_path):
    p, tport, uport, payload = file_site
    if GTLS is None:
        pytest.skip("gtlsclient (ngtcp2-client) is not installed")
    d = tmp_path / "dl"
    d.mkdir()
    r = subprocess.run([GTLS, "--exit-on-all-streams-close", "--no-quic-dump", "-m", "HEAD", f"--download={d}",
                        "127.0.0.1", str(uport), f"https://localhost:{uport}/big.bin"], capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    # RFC 9110 §9.3.2: the GET's headers (length of the whole file), no body; the stream ends
    # cleanly (gtlsclient reports H3_NO_ERROR, 0x100 = 256, when it closes the connection).
    assert "[:status: 200]" in out and f"[content-length: {len(payload)}]" in out, out[-3000:]
    assert "[accept-ranges: bytes]" in out and "closed with error code 256" in out, out[-3000:]
    got = d / "big.bin"
    assert not got.exists() or got.stat().st_size == 0
    # The exchange is logged when the stream is released, which may come just after the client exits.
    log = p.wait_log(lambda e: e.get("request", {}).get("proto") == "HTTP/3.0" and e["request"].get("method") == "HEAD")
    assert log["status"] == 200 and log["size"] == 0, log


def test_file_that_shrinks_mid_response_resets_the_stream(fdgram_server, tmp_path):
    """The head promised the whole file; when it shrinks under the response, the stream is
    reset with H3_INTERNAL_ERROR (RFC 9114 §4.1.2) instead of ending early as if complete,
    and the server goes on serving."""
    root = tmp_path / "www"
    root.mkdir()
    big = root / "shrink.bin"
    big.write_bytes(os.urandom(64 * 1024 * 1024))
    (root / "small.txt").write_bytes(b"still here\n")
    text = (f"{{\n\tadmin off\n\tauto_https disable_redirects\n}}\n\nhttps://localhost {{\n"
            f"\tbind fd/3 {{\n\t\tprotocols h1 h2\n\t}}\n\tbind fdgram/4 {{\n\t\tprotocols h3\n\t}}\n"
            f"\ttls internal\n\troot * {root}\n\tfile_server\n}}\n")
    p, tport, uport = fdgram_server(text)
    cmd = H3GET + ["--cafile", root_of(tmp_path / "data"), "--timeout", "30", f"https://localhost:{uport}/shrink.bin"]
    c = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Once Berth has the file open the response has started: cut the file short.
    fds = Path(f"/proc/{p.p.pid}/fd")
    end = time.time() + 15
    while time.time() < end and not any(os.path.realpath(f) == str(big) for f in fds.iterdir()):
        time.sleep(0.005)
    os.truncate(big, 100_000)
    out, err = c.communicate(timeout=40)
    assert c.returncode == 2 and b"reset by the server (error 0x102)" in err, (c.returncode, len(out), err[-500:])
    assert len(out) < 64 * 1024 * 1024
    r = h3get(f"https://localhost:{uport}/small.txt", tmp_path / "data")
    assert r.returncode == 0 and r.stdout == b"still here\n", r.stderr.decode() + p.stderr()


def test_session_resumption_with_a_ticket_across_restart(tmp_path):
    """QUIC TLS session resumption (RFC 8446 §2.2): Berth sends a NewSessionTicket after the
    handshake; a later connection offering it resumes (no certificate, logged as resumed).
    The ticket key derives from the persistent static secret, so a restarted Berth (same
    data directory) still accepts it. No 0-RTT: early data is not offered to clients."""
    cf = write_caddyfile(tmp_path, site())
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    ticket = tmp_path / "ticket.bin"
    seen = []
    for run in range(2):
        t, u = tcp_listener(), udp_socket()
        uport = u.getsockname()[1]
        p = launch(["run", "--config", str(cf)], sockets=[t, u], env=env)
        try:
            for _ in range(2):
                r = h3get(f"https://localhost:{uport}/", tmp_path / "data", "--session-ticket", str(ticket))
                assert r.returncode == 0 and r.stdout == b"hello h3\n", r.stderr.decode() + p.stderr()
                seen.append("resumed=1" in r.stderr.decode())
                assert ticket.exists(), r.stderr.decode()
            logs = wait_h3_logs(p, lambda l: True, 2)
            assert [l["request"]["tls"]["resumed"] for l in logs] == seen[-2:], logs
        finally:
            p.stop()
    # The very first connection had no ticket; every later one resumed, across the restart too.
    assert seen == [False, True, True, True], seen


def test_zero_rtt_safe_methods_early_unsafe_after_handshake(fdgram_server, tmp_path, echo):
    """0-RTT (RFC 9001 §4.6): a client resuming with a ticket sends its requests in early
    data. A GET is handled at once and carries `Early-Data: 1` upstream (RFC 8470 §5.1); a
    POST in early data waits for the handshake to complete (replayed early data cannot
    complete it), so it reaches the upstream without `Early-Data`."""
    import json
    p, tport, uport = fdgram_server(proxy_site(echo.port))
    data = tmp_path / "data"
    ticket = tmp_path / "ticket.bin"
    url = f"https://localhost:{uport}/json"
    r = h3get(url, data, "--session-ticket", str(ticket))
    assert r.returncode == 0 and ticket.exists(), r.stderr.decode() + p.stderr()
    assert "Early-Data" not in dict(json.loads(r.stdout)["headers"])

    r = h3get(url, data, "--session-ticket", str(ticket), "--early")
    err = r.stderr.decode()
    assert r.returncode == 0 and "resumed=1" in err and "early_data_accepted=1" in err, err + p.stderr()
    info = json.loads(r.stdout)
    assert info["method"] == "GET" and dict(info["headers"]).get("Early-Data") == "1", info

    r = h3get(url, data, "--session-ticket", str(ticket), "--early", "-X", "POST", "--data", "early body")
    err = r.stderr.decode()
    assert r.returncode == 0 and "early_data_accepted=1" in err, err + p.stderr()
    info = json.loads(r.stdout)
    assert info["method"] == "POST" and info["body_len"] == 10, info
    assert "Early-Data" not in dict(info["headers"]), info


def test_zero_rtt_replayed_flight_is_not_served_again(fdgram_server, tmp_path, echo):
    """RFC 8446 §8: an attacker who captured a client's first flight (Initial + 0-RTT) and
    sends it again gets no second execution of the early request: the replayed ClientHello's
    early data is rejected by the anti-replay table (and the replayer cannot finish the
    handshake, so nothing waits for it either)."""
    import select
    import threading
    p, tport, uport = fdgram_server(proxy_site(echo.port))
    data = tmp_path / "data"
    ticket = tmp_path / "ticket.bin"
    assert h3get(f"https://localhost:{uport}/json", data, "--session-ticket", str(ticket)).returncode == 0

    # A relay between client and server that records the client's first flight.
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.connect(("127.0.0.1", uport))
    flight, client, stop = [], [None], threading.Event()

    def run():
        replied = False
        while not stop.is_set():
            for s in select.select([relay, up], [], [], 0.05)[0]:
                if s is relay:
                    d, client[0] = relay.recvfrom(65535)
                    if not replied:
                        flight.append(d)
                    up.send(d)
                else:
                    replied = True
                    relay.sendto(up.recv(65535), client[0])

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        r = h3get(f"https://localhost:{relay.getsockname()[1]}/json?early=1", data, "--session-ticket", str(ticket),
                  "--early")
        err = r.stderr.decode()
        assert r.returncode == 0 and "early_data_accepted=1" in err, err + p.stderr()
    finally:
        stop.set()
        t.join()
    assert flight
    # The upstream counts requests as they arrive (the access log would only show an
    # exchange once its stream is released, which a replayer never lets happen).
    served = echo.requests
    time.sleep(0.5)  # the original connection's closing period ends; its CIDs are forgotten
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for d in flight:
        attacker.sendto(d, ("127.0.0.1", uport))
    time.sleep(1.0)
    attacker.close()
    assert echo.requests == served, "the replayed early request reached the upstream again"
    assert p.alive()


def test_inherited_udp_receive_buffer_is_never_lowered(tmp_path):
    """systemd's ReceiveBuffer= (SO_RCVBUFFORCE, as root) gives the socket a larger buffer than
    Berth asks for; Berth must keep it (it used to set its own 4 MiB, which the kernel then
    capped at net.core.rmem_max)."""
    u = udp_socket()
    try:
        u.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
    except PermissionError:
        pytest.skip("SO_RCVBUFFORCE needs CAP_NET_ADMIN")
    before = u.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert before >= 32 << 20
    t = tcp_listener()
    cf = write_caddyfile(tmp_path, site())
    p = launch(["run", "--config", str(cf)], sockets=[t, u.fileno()], env={"XDG_DATA_HOME": str(tmp_path / "data")})
    try:
        assert p.alive(), p.stderr()
        r = h3get(f"https://localhost:{u.getsockname()[1]}/", tmp_path / "data")
        assert r.returncode == 0 and r.stdout == b"hello h3\n", r.stderr.decode()
        assert u.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == before  # the same socket, unchanged
        assert "UDP receive buffer is small" not in p.stderr()
    finally:
        p.stop()
        u.close()

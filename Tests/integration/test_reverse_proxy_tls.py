"""reverse_proxy to https:// upstreams: a real nginx serving TLS with a certificate from a test CA
(made here with the openssl CLI). Verification against the given CA (and failure -> 502 with an
`http.log.error` line), `tls_insecure_skip_verify`, `tls_server_name` (SNI and the name checked),
`tls_client_auth`, keep-alive reuse of TLS connections, large bodies both ways, and a WebSocket
tunnelled through TLS to the upstream."""
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from proxy_backends import EchoBackend, Nginx, Reader, ws_frame, ws_read_frame
from test_reverse_proxy import hget, request, site, start

CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")


def _run(*args, **kw):
    subprocess.run(list(args), check=True, capture_output=True, **kw)


@pytest.fixture(scope="module")
def pki():
    """A test CA, a server certificate for backend.test + localhost + 127.0.0.1 signed by it, and a
    client certificate signed by it."""
    if not OPENSSL:
        pytest.skip("openssl CLI not installed")
    d = Path(tempfile.mkdtemp(prefix="berth-rp-pki-"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _run(OPENSSL, "req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.pem", "-subj", "/CN=Berth Test CA",
         "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in (("server", "subjectAltName=DNS:backend.test,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        _run(OPENSSL, "req", *ec, "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr", "-subj", f"/CN={name}.test")
        (d / f"{name}.ext").write_text(ext + "\n")
        _run(OPENSSL, "x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
             "-CAcreateserial", "-out", d / f"{name}.pem", "-days", "2", "-extfile", d / f"{name}.ext")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def echo():
    b = EchoBackend()
    yield b
    b.close()


@pytest.fixture(scope="module")
def tls_nginx(pki, echo):
    """nginx with TLS (certificate from the test CA) in front of the echo backend: static files,
    /up/ proxied to the echo backend unbuffered both ways, /ws upgraded. Logs the connection
    serial number of every request so tests can see reuse."""
    big = os.urandom(32 << 20)
    try:
        n = Nginx(
            listen_extra="ssl",
            root_files={"big.bin": big},
            extra_http="log_format conn '$connection $ssl_session_reused $ssl_server_name $request';",
            extra_server=f"""
        ssl_certificate {pki}/server.pem;
        ssl_certificate_key {pki}/server.key;
        ssl_client_certificate {pki}/ca.pem;
        ssl_verify_client optional;
        access_log ACCESS_LOG conn;
        add_header X-SNI "$ssl_server_name" always;
        add_header X-Client-Verify "$ssl_client_verify" always;
        client_max_body_size 0;
        location /up/ {{
            proxy_pass http://127.0.0.1:{echo.port}/;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
        location /ws {{
            proxy_pass http://127.0.0.1:{echo.port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}""".replace("ACCESS_LOG", str(pki / "nginx-access.log")))
    except (FileNotFoundError, RuntimeError) as e:
        pytest.skip(str(e))
    n.big = big
    n.access_log = pki / "nginx-access.log"
    yield n
    n.close()


def nginx_lines(nginx, before, marker, count, timeout=5.0):
    """nginx's access-log lines after `before` that contain `marker`, once there are `count` of
    them: nginx writes the line after sending the response, so the client can be faster."""
    end = time.time() + timeout
    while True:
        lines = [l for l in nginx.access_log.read_text().splitlines()[len(before):] if marker in l]
        if len(lines) >= count or time.time() > end:
            return lines
        time.sleep(0.02)


def proxy(block, loops=None):
    return start(site(block), env={"BERTH_LOOPS": str(loops)} if loops else None)


def test_verified_against_trusted_ca_and_pooled(pki, tls_nginx):
    # One event loop: pools are per loop, so all requests share one pool here.
    p = proxy(f"reverse_proxy https://127.0.0.1:{tls_nginx.port} {{\n\t\ttransport http {{\n"
              f"\t\t\ttls_trusted_ca_certs {pki}/ca.pem\n\t\t}}\n\t}}", loops=1)
    try:
        before = tls_nginx.access_log.read_text().splitlines() if tls_nginx.access_log.exists() else []
        for _ in range(5):
            st, hd, body = request(p.port, path="/?pool")
            assert st == 200, p.stderr()
            assert b"Welcome to nginx!" in body
            assert hget(hd, "Server").startswith("nginx")
            # An IP upstream sends no SNI (RFC 6066 §3); the IP SAN is what is verified.
            assert hget(hd, "X-SNI") in (None, "")
        lines = nginx_lines(tls_nginx, before, "/?pool", 5)
        assert len(lines) == 5, lines
        assert len({l.split()[0] for l in lines}) == 1, f"TLS connection not reused: {lines}"
    finally:
        p.stop()


def test_new_tls_connections_resume_the_pooled_session(pki, tls_nginx):
    p = proxy(f"reverse_proxy https://127.0.0.1:{tls_nginx.port} {{\n\t\ttransport http {{\n"
              f"\t\t\ttls_trusted_ca_certs {pki}/ca.pem\n\t\t\tkeepalive off\n\t\t}}\n\t}}", loops=1)
    try:
        before = tls_nginx.access_log.read_text().splitlines() if tls_nginx.access_log.exists() else []
        for _ in range(4):
            assert request(p.port, path="/?resume")[0] == 200, p.stderr()
        lines = nginx_lines(tls_nginx, before, "/?resume", 4)
        assert len({l.split()[0] for l in lines}) == 4, lines  # keepalive off: a connection each
        # nginx logs `r` for a resumed session: the first handshake is full, later ones resume.
        assert [l.split()[1] for l in lines] == [".", "r", "r", "r"], lines
    finally:
        p.stop()


def test_unverifiable_certificate_is_502_and_logged(tls_nginx):
    # No tls_trusted_ca_certs: the system store does not know the test CA.
    p = proxy(f"reverse_proxy https://127.0.0.1:{tls_nginx.port}")
    try:
        st, hd, body = request(p.port)
        assert st == 502 and body == b""
        assert hget(hd, "Content-Length") == "0"
        errs = [e for e in p.log_lines() if e.get("logger") == "http.log.error"]
        assert errs, p.stderr()
        assert errs[-1]["status"] == 502 and errs[-1]["level"] == "error"
        assert "certificate verif" in errs[-1]["msg"] and f"127.0.0.1:{tls_nginx.port}" in errs[-1]["msg"], errs[-1]
    finally:
        p.stop()


def test_insecure_skip_verify(tls_nginx):
    p = proxy(f"reverse_proxy https://127.0.0.1:{tls_nginx.port} {{\n\t\ttransport http {{\n"
              f"\t\t\ttls_insecure_skip_verify\n\t\t}}\n\t}}")
    try:
        st, _, body = request(p.port)
        assert st == 200 and b"Welcome to nginx!" in body, p.stderr()
    finally:
        p.stop()


def test_tls_server_name_sets_sni_and_the_verified_name(pki, tls_nginx):
    def cfg(name):
        extra = f"\t\t\ttls_server_name {name}\n" if name else ""
        return (f"reverse_proxy https://127.0.0.1:{tls_nginx.port} {{\n\t\ttransport http {{\n"
                f"\t\t\ttls_trusted_ca_certs {pki}/ca.pem\n{extra}\t\t}}\n\t}}")
    p = proxy(cfg("backend.test"))
    try:
        st, hd, _ = request(p.port)
        assert st == 200, p.stderr()
        assert hget(hd, "X-SNI") == "backend.test"
    finally:
        p.stop()
    p = proxy(cfg("wrong.test"))
    try:
        st, _, _ = request(p.port)
        assert st == 502
        assert any("certificate verif" in e.get("msg", "") or "hostname mismatch" in e.get("msg", "")
                   for e in p.log_lines() if e.get("logger") == "http.log.error"), p.stderr()
    finally:
        p.stop()


def test_sni_defaults_to_upstream_host(pki, tls_nginx):
    p = proxy(f"reverse_proxy https://localhost:{tls_nginx.port} {{\n\t\ttransport http {{\n"
              f"\t\t\ttls_trusted_ca_certs {pki}/ca.pem\n\t\t}}\n\t}}")
    try:
        st, hd, _ = request(p.port)
        assert st == 200, p.stderr()
        assert hget(hd, "X-SNI") == "localhost"
    finally:
        p.stop()


def test_tls_client_auth(pki, tls_nginx):
    base = f"reverse_proxy 127.0.0.1:{tls_nginx.port} {{\n\t\ttransport http {{\n\t\t\ttls\n\t\t\ttls_trusted_ca_certs {pki}/ca.pem\n"
    p = proxy(base + "\t\t}\n\t}")
    try:
        st, hd, _ = request(p.port)
        assert st == 200 and hget(hd, "X-Client-Verify") == "NONE", p.stderr()
    finally:
        p.stop()
    p = proxy(base + f"\t\t\ttls_client_auth {pki}/client.pem {pki}/client.key\n\t\t}}\n\t}}")
    try:
        st, hd, _ = request(p.port)
        assert st == 200 and hget(hd, "X-Client-Verify") == "SUCCESS", p.stderr()
    finally:
        p.stop()


def test_large_bodies_both_ways_over_tls(pki, tls_nginx, tmp_path):
    if not CURL:
        pytest.skip("curl not installed")
    p = proxy(f"reverse_proxy https://127.0.0.1:{tls_nginx.port} {{\n\t\ttransport http {{\n"
              f"\t\t\ttls_trusted_ca_certs {pki}/ca.pem\n\t\t}}\n\t}}")
    try:
        r = subprocess.run([CURL, "-s", "-o", "-", "-H", "Host: proxy.test", f"http://127.0.0.1:{p.port}/big.bin"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0 and hashlib.sha256(r.stdout).digest() == hashlib.sha256(tls_nginx.big).digest()
        up = tmp_path / "up.bin"
        data = os.urandom(48 << 20)
        up.write_bytes(data)
        for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
            r = subprocess.run([CURL, "-s", "-H", "Host: proxy.test", "-H", "Expect:", *extra, "--data-binary", f"@{up}",
                                f"http://127.0.0.1:{p.port}/up/upload"], capture_output=True, timeout=60)
            assert r.returncode == 0, r.stderr
            info = json.loads(r.stdout)
            assert info["body_len"] == len(data) and info["body_sha256"] == hashlib.sha256(data).hexdigest()
    finally:
        p.stop()


def test_websocket_through_tls_upstream(pki, tls_nginx):
    p = proxy(f"reverse_proxy https://127.0.0.1:{tls_nginx.port} {{\n\t\ttransport http {{\n"
              f"\t\t\ttls_trusted_ca_certs {pki}/ca.pem\n\t\t}}\n\t}}")
    try:
        c = socket.create_connection(("127.0.0.1", p.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        c.sendall((f"GET /ws HTTP/1.1\r\nHost: proxy.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        r = Reader(c)
        _, status, _, headers = r.read_head()
        assert status == "101", (status, headers, p.stderr())
        for size in (5, 70_000, 300_000):
            payload = os.urandom(size)
            c.sendall(ws_frame(0x2, payload, mask=b"wxyz"))
            opcode, got = ws_read_frame(r)
            assert opcode == 0x2 and got == payload
        c.sendall(ws_frame(0x8, b"\x03\xe8", mask=b"abcd"))
        opcode, _ = ws_read_frame(r)
        assert opcode == 0x8
        c.close()
    finally:
        p.stop()


def test_mixed_http_and_https_upstreams_is_a_config_error(tmp_path):
    from conftest import run_cli
    cf = tmp_path / "Caddyfile"
    cf.write_text(site("reverse_proxy http://127.0.0.1:9 https://127.0.0.1:10"))
    r = run_cli(["validate", "--config", str(cf)])
    assert r.returncode != 0
    assert "upstream address scheme is HTTP but transport is configured for HTTP+TLS" in r.stderr + r.stdout
    assert "Caddyfile:" in r.stderr + r.stdout


def test_websocket_from_an_https_client(pki, echo):
    """The client side is TLS (an HTTPS site): the tunnel takes over the client's TLS session."""
    import ssl
    text = (f"{{\n\tadmin off\n}}\n\nhttps://backend.test {{\n\ttls {pki}/server.pem {pki}/server.key\n"
            f"\tbind fd/3 {{\n\t\tprotocols h1 h2\n\t}}\n\treverse_proxy 127.0.0.1:{echo.port}\n}}\n")
    p = start(text)
    try:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        ctx.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection(("127.0.0.1", p.port), timeout=10)
        c = ctx.wrap_socket(raw, server_hostname="backend.test")
        key = base64.b64encode(os.urandom(16)).decode()
        # The first frame rides in the same TLS write as the request head.
        c.sendall((f"GET /ws HTTP/1.1\r\nHost: backend.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
                  + ws_frame(0x1, b"early", mask=b"abcd"))
        r = Reader(c)
        _, status, _, headers = r.read_head()
        assert status == "101", (status, headers, p.stderr())
        assert ws_read_frame(r) == (0x1, b"early")
        for size in (10, 100_000):
            payload = os.urandom(size)
            c.sendall(ws_frame(0x2, payload, mask=b"wxyz"))
            assert ws_read_frame(r) == (0x2, payload)
        c.sendall(ws_frame(0x8, b"\x03\xe8", mask=b"abcd"))
        assert ws_read_frame(r)[0] == 0x8
        c.close()
    finally:
        p.stop()


@pytest.mark.parametrize("option", ["tls_timeout 400ms\n\t\t\tdial_timeout 20s", "dial_timeout 400ms"])
def test_stalled_tls_handshake_is_bounded(option):
    """An upstream that accepts TCP but never answers the ClientHello: the handshake ends after
    `tls_timeout` (here well inside a long dial_timeout), or without it after a fresh
    `dial_timeout` counted from the TCP connect; either way 502 and an error naming the
    handshake."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # never accepted: the kernel completes TCP, nobody speaks TLS
    port = silent.getsockname()[1]
    p = proxy(f"reverse_proxy 127.0.0.1:{port} {{\n\t\ttransport http {{\n\t\t\ttls\n\t\t\t{option}\n\t\t}}\n\t}}")
    try:
        t0 = time.monotonic()
        st, _, body = request(p.port, timeout=30)
        took = time.monotonic() - t0
        assert st == 502 and body == b"", st
        assert 0.3 < took < 5, took
        errs = [e for e in p.log_lines() if e.get("logger") == "http.log.error"]
        assert errs and "TLS handshake" in errs[-1]["msg"] and "timeout" in errs[-1]["msg"], errs
    finally:
        p.stop()
        silent.close()


def test_tls_except_ports_speaks_plaintext_to_those_ports(echo, tls_nginx):
    """`tls_except_ports` (Caddy: ports on which TLS is not attempted although the transport
    has TLS): the plaintext echo backend answers through a TLS transport when its port is
    excepted, and fails the handshake (502) when it is not."""
    def cfg(except_ports):
        extra = f"\t\t\ttls_except_ports {except_ports}\n" if except_ports else ""
        return (f"reverse_proxy 127.0.0.1:{echo.port} {{\n\t\ttransport http {{\n\t\t\ttls\n"
                f"\t\t\ttls_insecure_skip_verify\n{extra}\t\t}}\n\t}}")
    p = proxy(cfg(f"{tls_nginx.port} {echo.port}"))
    try:
        st, _, body = request(p.port, path="/echo")
        assert st == 200, (st, body, p.stderr()[-2000:])
    finally:
        p.stop()
    p = proxy(cfg(None))
    try:
        st, _, _ = request(p.port, path="/echo")
        assert st == 502
    finally:
        p.stop()


@pytest.mark.parametrize("versions,ok", [("1.1", True), ("1.1 2", True), ("h2c 2", False), ("2", False), ("3", False), ("1.0", False)])
def test_transport_versions(tmp_path, versions, ok):
    """Berth proxies over HTTP/1.1: `versions` lists that include 1.1 are accepted (Caddy's
    default 1.1 + 2 included); h2c/2/3 alone would silently break a gRPC backend, so they are
    refused with the line."""
    from conftest import run_cli
    cf = tmp_path / "Caddyfile"
    cf.write_text(site(f"reverse_proxy 127.0.0.1:9 {{\n\t\ttransport http {{\n\t\t\tversions {versions}\n\t\t}}\n\t}}"))
    r = run_cli(["validate", "--config", str(cf)])
    out = r.stderr + r.stdout
    if ok:
        assert r.returncode == 0, out
    else:
        line = next(i for i, l in enumerate(cf.read_text().splitlines(), 1) if "versions" in l)
        assert r.returncode != 0, out
        assert f"Caddyfile:{line}" in out and ("not supported" in out or "unknown HTTP version" in out), out

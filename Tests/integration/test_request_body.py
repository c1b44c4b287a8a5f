"""request_body max_size side by side with a real Caddy: the same Caddyfile in front of the
same echo backend (proxy_backends.EchoBackend /upload, which reads the whole body). A body over
the limit gets 413 from reverse_proxy whether its length was declared or chunked, over HTTP/1.1
and h2c; a body at or under the limit reaches the backend unchanged; a handler that does not
read the body (respond) answers as usual; a matcher limits only its requests; the smaller of two
limits wins; handle_errors answers the 413."""
import hashlib
import json
import shutil
import socket
import sys
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import berth_over_h3, caddy_and_berth
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
\thandle {{
\t\trewrite * /upload
\t\treverse_proxy 127.0.0.1:{backend_port}
\t}}
\thandle_errors 413 {{
\t\trespond "too big {{err.status_code}}" 413
\t}}
}}
"""


@pytest.fixture(scope="module")
def servers():
    backend = EchoBackend()
    try:
        with caddy_and_berth("berth-reqbody-", lambda bind: site(backend.port, bind)) as s:
            s["backend"] = backend
            yield s
    finally:
        backend.close()


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
    return int(code), out if int(code) else r.stderr


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
    ("/respond/x", 5000, True, False),
    # (No h2 case for respond: both servers answer before the upload ends and may reset the
    # stream with NO_ERROR, RFC 9113 §8.1, which curl sometimes reports as error 92.)
]


@pytest.mark.parametrize("target,size,chunked,http2", CASES)
def test_same_as_caddy(servers, target, size, chunked, http2):
    body = BODY[:size]
    theirs = post(servers["caddy"], target, body, chunked, http2)
    ours = post(servers["berth"], target, body, chunked, http2)
    assert ours[0] == theirs[0], (target, size, chunked, http2, ours, theirs)
    if ours[0] == 200 and not target.startswith("/respond"):
        # The echo reports what reached it (headers differ: X-Forwarded-*, Via…); the body must
        # be the one sent, byte for byte, behind both servers.
        for got in (json.loads(ours[1]), json.loads(theirs[1])):
            assert got["body_len"] == size and got["body_sha256"] == hashlib.sha256(body).hexdigest(), got
    else:
        assert ours[1] == theirs[1], (target, size, chunked, http2, ours[1][:200], theirs[1][:200])


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
    assert buf.startswith(b"HTTP/1.1 413 ") and b"too big 413" in buf, buf
    if b"Connection: close" not in buf.split(b"\r\n\r\n")[0]:
        assert b"HTTP/1.1 200 " in buf and buf.endswith(b"not read"), buf
    assert post(servers["berth"], "/p", b"ok")[0] == 200


@pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import aioquic"], capture_output=True).returncode != 0,
                    reason="aioquic is not installed")
def test_http3_limit(tmp_path):
    """HTTP/3 shares the body path (RequestBodyPipe → reverse_proxy): at the limit the body
    reaches the backend unchanged, one byte over gets 413 (Berth only: aioquic against Berth's
    local CA)."""
    backend = EchoBackend()
    try:
        with berth_over_h3(tmp_path, f"\trequest_body {{\n\t\tmax_size 1KB\n\t}}\n\trewrite * /upload\n"
                                     f"\treverse_proxy 127.0.0.1:{backend.port}\n") as (p, uport, ca):
            for size, status in ((1000, 200), (1001, 413), (300000, 413)):
                body = BODY[:size]
                f = tmp_path / "body"
                f.write_bytes(body)
                r = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "h3get.py"), "--cafile", str(ca),
                                    "--timeout", "15", "-X", "POST", "--data-file", str(f),
                                    f"https://localhost:{uport}/x"], capture_output=True, timeout=30)
                assert f"status={status}".encode() in r.stderr, (size, r.stderr, r.stdout[:200])
                if status == 200:
                    got = json.loads(r.stdout)
                    assert got["body_len"] == size and got["body_sha256"] == hashlib.sha256(body).hexdigest(), got
    finally:
        backend.close()

"""Graceful shutdown with long-lived work in flight (issue: lifecycle): a slow 100 MiB download
through reverse_proxy finishes after SIGTERM, and a WebSocket held open does not keep Berth
alive past the grace period."""
import base64
import hashlib
import os
import signal
import socket
import time

from conftest import launch, tcp_listener, write_caddyfile
from proxy_backends import EchoBackend, PATTERN, ws_frame


def proxy_site(port, grace="10s"):
    return f"""{{
\tadmin off
\tgrace_period {grace}
}}

http:// {{
\tbind fd/3 {{
\t\tprotocols h1
\t}}
\treverse_proxy 127.0.0.1:{port}
}}
"""


def test_sigterm_lets_a_slow_100mib_download_finish(tmp_path):
    backend = EchoBackend()
    cf = write_caddyfile(tmp_path, proxy_site(backend.port, grace="60s"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    size = 100 * 1024 * 1024
    try:
        c = socket.create_connection(("127.0.0.1", p.port), timeout=30)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.sendall(f"GET /bytes?size={size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.recv(65536)
        head, body = head.split(b"\r\n\r\n", 1)
        assert b" 200 " in head.split(b"\r\n")[0], head
        got = len(body)
        h = hashlib.sha256(body)
        # Read slowly for a while, then ask Berth to stop while most of the body is still to come.
        while got < 8 * 1024 * 1024:
            b = c.recv(65536)
            h.update(b)
            got += len(b)
            time.sleep(0.001)
        p.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert p.alive(), "Berth exited while a response was in flight"
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            h.update(b)
            got += len(b)
        assert got == size, f"got {got} of {size} bytes"
        expected = hashlib.sha256()
        full, rest = divmod(size, len(PATTERN))
        for _ in range(full):
            expected.update(PATTERN)
        expected.update(PATTERN[:rest])
        assert h.hexdigest() == expected.hexdigest()
        assert p.p.wait(15) == 0, p.stderr()
    finally:
        p.stop()
        backend.close()


def test_websocket_does_not_hold_shutdown_past_grace_period(tmp_path):
    backend = EchoBackend()
    cf = write_caddyfile(tmp_path, proxy_site(backend.port, grace="1s"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        c = socket.create_connection(("127.0.0.1", p.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        c.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.recv(4096)
        assert b" 101 " in head.split(b"\r\n")[0], head
        c.sendall(ws_frame(0x1, b"ping", mask=b"abcd"))
        echoed = c.recv(4096)
        assert b"ping" in echoed
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        rc = p.p.wait(15)
        elapsed = time.time() - t0
        assert rc == 0, p.stderr()
        assert elapsed < 8, f"shutdown took {elapsed:.1f}s with a 1s grace period"
        assert any(e.get("msg") == "shutdown complete" for e in p.log_lines())
    finally:
        p.stop()
        backend.close()


def _open_ws(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    c.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += c.recv(4096)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return c


def test_reload_closes_old_websockets_after_the_grace_period(tmp_path):
    backend = EchoBackend()
    cf = write_caddyfile(tmp_path, proxy_site(backend.port, grace="1s"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        c = _open_ws(p.port)
        c.sendall(ws_frame(0x1, b"before", mask=b"abcd"))
        assert b"before" in c.recv(4096)
        t0 = time.time()
        p.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        # Still up right after the reload (the grace period has not passed)...
        c.sendall(ws_frame(0x1, b"during", mask=b"abcd"))
        assert b"during" in c.recv(4096)
        # ...and a WebSocket opened under the new config is not affected later.
        fresh = _open_ws(p.port)
        # The old one is closed once the new config's grace period (1 s) has passed.
        c.settimeout(5)
        assert c.recv(4096) == b""
        elapsed = time.time() - t0
        assert 0.9 <= elapsed < 4, elapsed
        fresh.sendall(ws_frame(0x1, b"fresh", mask=b"abcd"))
        fresh.settimeout(5)
        assert b"fresh" in fresh.recv(4096)
        assert p.alive()
        fresh.close()
    finally:
        p.stop()
        backend.close()

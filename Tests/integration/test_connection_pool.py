"""Connection objects are recycled per loop (HTTP1ServerConnection+Pool): a closed plain
HTTP/1 connection's driver, protocol state, request, response and buffers serve the next
accepted socket. With one loop every new connection takes the object the previous one left,
so these tests prove a recycled connection starts clean: its own peer, first-request rules
(HTTP/2 prior knowledge, the read-header rather than the idle timeout), no request or response
state of the previous one, and the configuration of a reload rather than the pooled one."""
import signal
import socket
import subprocess
import time

import pytest

from conftest import launch, raw_exchange, read_response, tcp_listener, write_caddyfile

SITE = """{{
\tadmin off
\tservers {{
\t\ttimeouts {{
\t\t\tread_header 700ms
\t\t\tidle 30s
\t\t}}
\t}}
}}

http:// {{
\tbind fd/3 {{
\t\tprotocols h1 h2c
\t}}
\troute /rw {{
\t\trewrite * /who?from=rw
\t}}
\thandle /who {{
\t\theader X-Port {{remote_port}}
\t\trespond "{label} port={{remote_port}} orig={{http.request.orig_uri}} uri={{uri}} proto={{http.request.proto}}"
\t}}
\thandle /close {{
\t\trespond "closing" {{
\t\t\tclose
\t\t}}
\t}}
\trespond "{label}"
}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool")
    cf = write_caddyfile(d, SITE.format(label="one"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()], env={"BERTH_LOOPS": "1"})
    assert p.alive(), p.stderr()
    p.cf = cf
    yield p
    p.stop()


def who(server, close=True, method="GET", path="/who", version="1.1", body=b""):
    """One request on a new connection; returns (client port, status, headers, body)."""
    c = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        port = c.getsockname()[1]
        hdr = "Connection: close\r\n" if close else ""
        if body:
            hdr += f"Content-Length: {len(body)}\r\n"
        c.sendall(f"{method} {path} HTTP/{version}\r\nHost: x\r\n{hdr}\r\n".encode() + body)
        if method == "HEAD":
            # No body follows the head (its Content-Length describes the GET's).
            data = b""
            while b"\r\n\r\n" not in data:
                b = c.recv(65536)
                assert b, data
                data += b
            head, rest = data.split(b"\r\n\r\n", 1)
            assert rest == b"" and (not close or c.recv(100) == b"")
            lines = head.decode().split("\r\n")
            hd = {}
            for l in lines[1:]:
                k, v = l.split(":", 1)
                hd.setdefault(k.strip().lower(), []).append(v.strip())
            return port, int(lines[0].split()[1]), hd, ""
        st, hd, body, _ = read_response(c)
        return port, st, hd, body.decode()
    finally:
        c.close()


def test_each_connection_sees_its_own_peer(server):
    # Alternate shapes, so each object is recycled after a different kind of exchange.
    for i in range(30):
        shape = i % 5
        if shape == 0:
            port, st, hd, body = who(server)
        elif shape == 1:
            port, st, hd, body = who(server, close=False)
        elif shape == 2:
            # A body the handler never reads (the connection discards it, then closes).
            port, st, hd, body = who(server, method="POST", path="/who?q=1", body=b"z" * 5000)
            assert "orig=/who?q=1 uri=/who?q=1 " in body, body
        elif shape == 3:
            port, st, hd, body = who(server, method="HEAD")
            assert body == ""
            assert hd["x-port"] == [str(port)]
            continue
        else:
            port, st, hd, body = who(server, version="1.0")
        assert st == 200
        assert hd["x-port"] == [str(port)], (i, hd)
        assert f"port={port} " in body, (i, body)
        if shape != 2:
            assert f"orig=/who uri=/who " in body, (i, body)
        assert "proto=HTTP/1.0" in body if shape == 4 else "proto=HTTP/1.1" in body


def test_keep_alive_after_recycle(server):
    who(server)
    c = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    port = c.getsockname()[1]
    for _ in range(3):
        c.sendall(b"GET /who HTTP/1.1\r\nHost: x\r\n\r\n")
        st, hd, body, _ = read_response(c)
        assert st == 200 and "connection" not in hd and f"port={port} " in body.decode()
    c.close()


def test_server_initiated_close_then_clean_object(server):
    out = raw_exchange(server.port, b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"Connection: close" in out and out.endswith(b"closing")
    port, st, hd, body = who(server, close=False)
    assert st == 200 and "connection" not in hd and f"port={port} " in body


def test_h2c_prior_knowledge_on_a_recycled_object(server):
    # HTTP/2 prior knowledge is only accepted as a connection's first bytes: the object a
    # previous HTTP/1 connection used must count as new.
    for _ in range(3):
        who(server, close=False)
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-o", "-", "-w", " %{http_version}",
                        f"http://127.0.0.1:{server.port}/"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "one 2", r.stdout
    # And HTTP/1 still works after the HTTP/2 connection (never pooled) closed.
    port, st, hd, body = who(server)
    assert st == 200 and f"port={port} " in body


def test_recycled_object_uses_the_read_header_timeout(server):
    # A fresh connection that sends nothing is cut after read_header (700 ms); an object that
    # still thought it had served requests would wait for the idle timeout (30 s) instead.
    for _ in range(3):
        who(server, close=False)
    c = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    t0 = time.time()
    try:
        assert c.recv(100) == b""
    finally:
        c.close()
    assert time.time() - t0 < 5


def test_pipelined_request_after_close_gets_whole_response(server):
    # `Connection: close` with more bytes behind it: the server lingers (unread input) rather
    # than closing at once, so the first response arrives whole and without a reset.
    for _ in range(5):
        out = raw_exchange(server.port, b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 100_000)
        assert out.startswith(b"HTTP/1.1 200 OK") and b"proto=HTTP/1.1" in out, out[:200]


def test_reload_empties_the_pool(server):
    for _ in range(5):
        who(server)
    server.cf.write_text(SITE.format(label="two"))
    server.send_signal(signal.SIGUSR1)
    server.wait_log(lambda e: e.get("msg") == "config reloaded" and e.get("changed") is True, timeout=10)
    for _ in range(5):
        port, st, hd, body = who(server, path="/")
        assert body == "two", body
    assert server.alive()

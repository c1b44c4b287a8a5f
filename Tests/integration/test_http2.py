"""HTTP/2 against a socket-activated Berth with real peers: curl, nghttp, Python h2 over TLS
(ALPN) and h2c prior knowledge, many streams, flow control, graceful GOAWAY, and abuse cases
(each must cut that connection while another client is still served)."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import launch, tcp_listener, write_caddyfile
from h2_client import ENHANCE_YOUR_CALM, PROTOCOL_ERROR, REFUSED_STREAM, H2Client, RawH2, frames

CADDYFILE = """{
\tadmin off
\tlocal_certs
}

https://localhost {
\tbind fd/3 {
\t\tprotocols h1 h2
\t}
\trespond /empty ""
\trespond /missing 404
\trespond "h2 {http.request.proto}
"
}

http://localhost {
\tbind fd/4 {
\t\tprotocols h1 h2c
\t}
\trespond "cleartext {http.request.proto}
"
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2")
    cf = write_caddyfile(d, CADDYFILE)
    a, b = tcp_listener(), tcp_listener()
    p = launch(["run", "--config", str(cf)], sockets=[a, b], env={"XDG_DATA_HOME": str(d / "data")})
    assert p.alive(), p.stderr()
    p.root = str(d / "data" / "berth" / "pki" / "authorities" / "local" / "root.crt")
    yield p
    p.stop()


def tls_client(server, **kw):
    return H2Client.tls("127.0.0.1", server.ports[0], server_name="localhost", cafile=server.root,
                        authority="localhost", **kw)


def h2c_client(server, **kw):
    return H2Client.h2c("127.0.0.1", server.ports[1], authority="localhost", **kw)


def served_again(server):
    with tls_client(server) as c:
        r = c.get("/")
        return r.status == 200 and r.body == b"h2 HTTP/2.0\n"


def test_curl_http2_over_tls_and_h2c(server):
    r = subprocess.run(["curl", "-sS", "--cacert", server.root, "--http2", f"https://localhost:{server.ports[0]}/",
                        "-w", "%{http_version}"], capture_output=True, text=True, timeout=10)
    assert r.stdout == "h2 HTTP/2.0\n2", r.stderr
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", f"http://localhost:{server.ports[1]}/",
                        "-w", "%{http_version}"], capture_output=True, text=True, timeout=10)
    assert r.stdout == "cleartext HTTP/2.0\n2", r.stderr


@pytest.mark.skipif(not shutil.which("nghttp"), reason="nghttp not installed")
def test_nghttp_many_streams(server):
    urls = [f"https://localhost:{server.ports[0]}/{i}" for i in range(20)]
    r = subprocess.run(["nghttp", "-n", "-s", *urls], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("  200 ") + r.stdout.count(" 200 ") >= 1 or "responseEnd" in r.stdout


def test_python_h2_tls_many_concurrent_streams(server):
    with tls_client(server) as c:
        rs = c.many([("GET", f"/{i}") for i in range(100)])
        assert [r.status for r in rs] == [200] * 100
        assert all(r.body == b"h2 HTTP/2.0\n" for r in rs)
        assert all(r.header("server") == "Berth" and r.header("date") for r in rs)


def test_python_h2c_head_and_post(server):
    with h2c_client(server) as c:
        r = c.response(c.request("HEAD", "/"))
        assert r.status == 200 and r.body == b"" and r.header("content-length") == "19"
        r = c.post("/", b"x" * 100_000)
        assert r.status == 200 and r.body == b"cleartext HTTP/2.0\n"


def test_head_of_empty_response_has_no_content_length_like_caddy(server):
    # Go's HTTP/2 server (Caddy) only learns a HEAD body's length from what the handler writes:
    # an empty one gets no content-length (GET gets "0"); a non-empty one keeps its length.
    with tls_client(server) as c:
        for path in ("/empty", "/missing"):
            head = c.response(c.request("HEAD", path))
            get = c.get(path)
            assert head.status == get.status and head.body == b""
            assert head.header("content-length") is None, (path, head.headers)
            assert get.header("content-length") == "0", (path, get.headers)
        head = c.response(c.request("HEAD", "/"))
        assert head.header("content-length") == "12" and head.body == b""


def test_rapid_reset_is_cut_and_others_served(server):
    with tls_client(server) as c:
        for _ in range(300):
            sid = c.request("GET", "/")
            c.reset(sid)
        g = c.wait_goaway(timeout=5)
        assert g is not None and g.error_code == ENHANCE_YOUR_CALM, g
    assert served_again(server)


def test_continuation_flood_is_cut(server):
    with tls_client(server) as c:
        block = c.encode_headers([(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "localhost")])
        c.send_raw(frames.headers(1, block[:1], end_stream=True, end_headers=False))
        for _ in range(50):
            c.send_raw(frames.continuation(1, b"", end_headers=False))
        g = c.wait_goaway(timeout=5)
        assert g is not None and g.error_code in (ENHANCE_YOUR_CALM, 0x1), g
    assert served_again(server)


def test_ping_and_settings_floods_are_cut(server):
    with tls_client(server) as c:
        for _ in range(500):
            c.send_raw(frames.ping(b"12345678"))
        g = c.wait_goaway(timeout=5)
        assert g is not None and g.error_code == ENHANCE_YOUR_CALM, g
    with tls_client(server) as c:
        for _ in range(200):
            c.send_raw(frames.settings())
        g = c.wait_goaway(timeout=5)
        assert g is not None and g.error_code == ENHANCE_YOUR_CALM, g
    assert served_again(server)


def test_empty_data_flood_is_cut(server):
    with tls_client(server) as c:
        sid = c.request("POST", "/", end_stream=False)
        for _ in range(500):
            c.send_raw(frames.data(sid, b"", end_stream=False))
        g = c.wait_goaway(timeout=5)
        assert g is not None and g.error_code == ENHANCE_YOUR_CALM, g
    assert served_again(server)


def _hpack_int(value, prefix_bits, first_byte_flags=0):
    """RFC 7541 §5.1 integer with an N-bit prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = [first_byte_flags | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def test_hpack_bomb_is_cut(server):
    # RFC 7541 §7.3: one 4000-byte entry in the dynamic table, then referenced 100 times
    # (one byte each): a ~500-byte block that decodes to ~400 KB.
    raw = RawH2.tls("127.0.0.1", server.ports[0], server_name="localhost")
    with raw:
        base = raw.block("/")
        big = b"\x40" + _hpack_int(4, 7) + b"x-aa" + _hpack_int(4000, 7) + b"a" * 4000
        bomb = base + big + bytes([0x80 | 62]) * 100
        raw.send(frames.headers(1, bomb))
        g = raw.goaway(timeout=5)
        assert g is not None and g.error_code == ENHANCE_YOUR_CALM, g
    assert served_again(server)


def test_max_concurrent_streams_is_enforced(server):
    raw = RawH2.tls("127.0.0.1", server.ports[0], server_name="localhost")
    with raw:
        # A zero initial window keeps every answered stream open (its body cannot be sent),
        # then 260 GETs: above SETTINGS_MAX_CONCURRENT_STREAMS 250.
        raw.send(frames.settings([(4, 0)]))
        for i in range(260):
            raw.send(frames.headers(1 + 2 * i, raw.block("/")))
        frames_seen = raw.read_frames(timeout=2)
        import struct
        settings = [p for t, f, s, p in frames_seen if t == frames.SETTINGS and not f & frames.ACK]
        advertised = {struct.unpack(">H", p[i:i + 2])[0]: struct.unpack(">I", p[i + 2:i + 6])[0]
                      for p in settings for i in range(0, len(p), 6)}
        assert advertised.get(3) == 250, advertised
        refused = {s for s, c in raw.resets().items() if c in (REFUSED_STREAM, PROTOCOL_ERROR)}
        g = raw.goaway(timeout=0.5)
        # Streams past the limit are refused (or the connection is cut), never served.
        assert refused == {1 + 2 * i for i in range(250, 260)} or (g is not None and g.error_code != 0), \
            (sorted(refused)[:5], len(refused), g)
    assert served_again(server)


def test_graceful_shutdown_sends_goaway(tmp_path):
    cf = write_caddyfile(tmp_path, CADDYFILE)
    a, b = tcp_listener(), tcp_listener()
    p = launch(["run", "--config", str(cf)], sockets=[a, b], env={"XDG_DATA_HOME": str(tmp_path / "data")})
    try:
        c = H2Client.h2c("127.0.0.1", p.ports[1], authority="localhost")
        assert c.get("/").status == 200
        p.send_signal(signal.SIGTERM)
        g = c.wait_goaway(timeout=10)
        assert g is not None and g.error_code == 0, g
        assert p.p.wait(10) == 0
    finally:
        p.stop()


def test_answer_before_the_upload_ends_reaches_curl(server, tmp_path):
    """A handler that answers without reading the body (a 401, a 413, `respond`) while the
    client is still uploading: Berth drains up to 256 KiB of the rest before it would reset the
    stream, so curl (7.88 reports an early RST_STREAM NO_ERROR as error 92) gets the answer."""
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(200_000))
    for _ in range(3):
        r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--data-binary", f"@{body}",
                            f"http://localhost:{server.ports[1]}/upload", "-w", "%{http_version}"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "cleartext HTTP/2.0\n2", r.stdout
    assert served_again(server)

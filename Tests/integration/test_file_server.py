"""file_server against a socket-activated Berth with real peers: a traversal corpus over raw
sockets, conditional and range matrices, canonical redirects, hide, 100 MiB bodies over plain
HTTP/1 (sendfile), TLS and HTTP/2 with sha256 checks, pipelining, slow readers, and the
server's RSS staying flat while it serves them."""
import hashlib
import os
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import launch, raw_exchange, read_response, tcp_listener, write_caddyfile

MARKER = b"OUTSIDE-SECRET-MARKER"
BIG = 100 * 1024 * 1024


def make_tree(base):
    root = base / "root"
    outside = base / "outside"
    for d in (root / "sub", root / "empty", root / "gz", outside):
        d.mkdir(parents=True, exist_ok=True)
    (root / "file.txt").write_bytes(b"hello world")
    os.utime(root / "file.txt", (1704164645, 1704164645))
    (root / "index.html").write_bytes(b"<h1>hi</h1>\n")
    (root / "sub" / "index.txt").write_bytes(b"sub index\n")
    (root / "data.bin").write_bytes(bytes(range(256)) * 20)
    (root / ".hidden").write_bytes(b"dotfile\n")
    (root / "gz" / "app.css").write_bytes(b"body{color:red}\n" * 100)
    (root / "gz" / "app.css.gz").write_bytes(b"GZIPPED")
    (outside / "secret.txt").write_bytes(MARKER + b"\n")
    os.symlink("file.txt", root / "link-in")
    os.symlink("../outside/secret.txt", root / "link-out")
    os.symlink(str(outside / "secret.txt"), root / "link-abs")
    os.symlink("../outside", root / "link-dir-out")
    os.symlink("/etc", root / "link-etc")
    os.symlink("/", root / "link-root")
    os.symlink("/proc", root / "link-proc")
    os.symlink("link-out", root / "link-chain")
    os.symlink("sub/../../outside", root / "link-rel-up")
    big = root / "big.bin"
    h = hashlib.sha256()
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(BIG >> 20):
            chunk = bytes([i & 0xFF]) + block[1:]
            f.write(chunk)
            h.update(chunk)
    return root, outside, h.hexdigest()


CADDYFILE = """{{
\tadmin off
\tlocal_certs
}}

http://localhost {{
\tbind fd/3 {{
\t\tprotocols h1 h2c
\t}}
\troot * {root}
\tfile_server
}}

https://localhost {{
\tbind fd/4 {{
\t\tprotocols h1 h2
\t}}
\troot * {root}
\tfile_server
}}

http://opts.test {{
\tbind fd/3 {{
\t\tprotocols h1 h2c
\t}}
\troot * {root}
\tfile_server browse {{
\t\tprecompressed gzip
\t\thide *.bin
\t}}
}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("fs")
    root, outside, digest = make_tree(base)
    # The Caddyfile lives inside the root: it must be hidden.
    cf = write_caddyfile(root, CADDYFILE.format(root=root))
    a, b = tcp_listener(), tcp_listener()
    p = launch(["run", "--config", str(cf)], sockets=[a, b], env={"XDG_DATA_HOME": str(base / "data")})
    assert p.alive(), p.stderr()
    p.root = root
    p.digest = digest
    p.ca = str(base / "data" / "berth" / "pki" / "authorities" / "local" / "root.crt")
    yield p
    p.stop()


def get(port, target, headers=(), method="GET", host="localhost"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    s.sendall(req.encode("latin-1"))
    if method == "HEAD":
        s.settimeout(5)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        s.close()
        head = buf.split(b"\r\n\r\n")[0].split(b"\r\n")
        hs = {}
        for l in head[1:]:
            k, v = l.split(b":", 1)
            hs.setdefault(k.strip().lower().decode(), []).append(v.strip().decode())
        return int(head[0].split()[1]), hs, b""
    status, headers_, body, _ = read_response(s)
    s.close()
    return status, headers_, body


def h(headers, name):
    return headers.get(name.lower(), [None])[0]


# ---------------------------------------------------------------- traversal corpus

TRAVERSAL = [
    "/../outside/secret.txt", "/../../../../../../etc/passwd", "/%2e%2e/outside/secret.txt",
    "/%2e%2e%2foutside%2fsecret.txt", "/..%2foutside/secret.txt", "/%2E%2E/%2E%2E/etc/passwd",
    "/.%2e/outside/secret.txt", "/%2e./outside/secret.txt", "/sub/../../outside/secret.txt",
    "/sub/%2e%2e/%2e%2e/outside/secret.txt", "/./../outside/secret.txt", "//../outside/secret.txt",
    "/..\\outside\\secret.txt", "/%5c..%5coutside%5csecret.txt", "/..%5c..%5cetc%5cpasswd",
    "/%c0%ae%c0%ae/outside/secret.txt", "/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt", "/..%c0%afoutside/secret.txt",
    "/%252e%252e/outside/secret.txt", "/..%252foutside%252fsecret.txt", "/....//outside/secret.txt",
    "/..;/outside/secret.txt", "/%00/../outside/secret.txt", "/file.txt%00.html", "/link-out", "/link-abs",
    "/link-dir-out/secret.txt", "/link-dir-out/", "/link-dir-out", "/sub/../link-out", "/link-etc/passwd",
    "/link-root/etc/passwd", "/link-proc/self/root/etc/passwd", "/link-rel-up/secret.txt", "/link-chain",
    "/%2f%2e%2e%2foutside/secret.txt", "http://localhost/../outside/secret.txt", "/?/../outside/secret.txt",
    "/.../outside/secret.txt", "/sub/..%00/outside/secret.txt", "/" + "../" * 1000 + "outside/secret.txt",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/.%2e%2f.%2e%2foutside%2fsecret.txt", "/link-dir-out/../link-dir-out/secret.txt",
    "/link-proc/1/root/etc/passwd", "/link-root/proc/self/cwd/secret.txt", "/%2e%2e/%2e%2e/%2e%2e/proc/self/environ",
    "/" + "a/" * 2500 + "../" * 2600 + "etc/passwd", "/sub%2f..%2f..%2foutside%2fsecret.txt",
]


def test_traversal_corpus_never_escapes(server):
    assert len(TRAVERSAL) >= 40
    for target in TRAVERSAL:
        for host in ("localhost", "opts.test"):
            req = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1")
            out = raw_exchange(server.port, req, timeout=5)
            assert out.startswith(b"HTTP/1.1 "), (target, out[:200])
            assert MARKER not in out, target
            assert b"root:x:0:0" not in out, target
            status = int(out.split(b" ")[1])
            if target.startswith("/?"):
                # The path is "/" (the rest is the query): the site's index.
                assert status == 200 and out.endswith(b"<h1>hi</h1>\n"), (target, out[:300])
                continue
            assert status in (400, 404, 308), (target, out[:300])
    # Relative and malformed targets are rejected by the parser.
    for raw in (b"GET ../outside/secret.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
                b"GET /%zz/../x HTTP/1.1\r\nHost: localhost\r\n\r\n"):
        out = raw_exchange(server.port, raw)
        assert out.startswith(b"HTTP/1.1 400"), out[:100]
    assert server.alive()


def test_inside_symlinks_and_lexical_dotdot_are_served(server):
    assert get(server.port, "/link-in")[2] == b"hello world"
    assert get(server.port, "/sub/../file.txt")[2] == b"hello world"
    assert get(server.port, "/%2e%2e/file.txt")[2] == b"hello world"
    assert get(server.port, "//file.txt")[2] == b"hello world"


def test_hidden_files(server):
    assert get(server.port, "/Caddyfile")[0] == 404
    assert get(server.port, "/Caddyfile", host="opts.test")[0] == 404
    assert get(server.port, "/data.bin", host="opts.test")[0] == 404
    # Dotfiles are served, like Caddy.
    assert get(server.port, "/.hidden")[2] == b"dotfile\n"


# ---------------------------------------------------------------- semantics

def test_basic_headers(server):
    status, hs, body = get(server.port, "/file.txt")
    assert status == 200 and body == b"hello world"
    assert h(hs, "etag") == '"cy3vy63hrojk-b"'
    assert h(hs, "last-modified") == "Tue, 02 Jan 2024 03:04:05 GMT"
    assert h(hs, "content-type") == "text/plain; charset=utf-8"
    assert h(hs, "accept-ranges") == "bytes"
    assert h(hs, "vary") == "Accept-Encoding"
    assert h(hs, "content-length") == "11"
    status, hs, _ = get(server.port, "/file.txt", method="HEAD")
    assert status == 200 and h(hs, "content-length") == "11"


CONDITIONAL = [
    ([("If-None-Match", '"cy3vy63hrojk-b"')], 304),
    ([("If-None-Match", 'W/"cy3vy63hrojk-b"')], 304),
    ([("If-None-Match", "*")], 304),
    ([("If-None-Match", '"nope"')], 200),
    ([("If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 GMT")], 304),
    ([("If-Modified-Since", "Mon, 01 Jan 2024 03:04:05 GMT")], 200),
    ([("If-Modified-Since", "not a date")], 200),
    ([("If-None-Match", '"nope"'), ("If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 GMT")], 200),
    ([("If-Match", '"cy3vy63hrojk-b"')], 200),
    ([("If-Match", '"nope"')], 412),
    ([("If-Match", "*")], 200),
    ([("If-Unmodified-Since", "Mon, 01 Jan 2024 00:00:00 GMT")], 412),
    ([("If-Unmodified-Since", "Tue, 02 Jan 2024 03:04:05 GMT")], 200),
    ([("Range", "bytes=0-4"), ("If-Range", '"cy3vy63hrojk-b"')], 206),
    ([("Range", "bytes=0-4"), ("If-Range", '"nope"')], 200),
    ([("Range", "bytes=0-4"), ("If-Range", "Tue, 02 Jan 2024 03:04:05 GMT")], 206),
]


@pytest.mark.parametrize("headers,status", CONDITIONAL)
def test_conditional_matrix(server, headers, status):
    got, hs, body = get(server.port, "/file.txt", headers)
    assert got == status
    if status == 304:
        assert set(hs) <= {"etag", "vary", "server", "date"}, hs
        assert body == b""
    if status == 412:
        assert h(hs, "content-length") == "0"


RANGES = [
    ("bytes=0-4", 206, b"hello", "bytes 0-4/11"),
    ("bytes=6-", 206, b"world", "bytes 6-10/11"),
    ("bytes=-5", 206, b"world", "bytes 6-10/11"),
    ("bytes=-100", 206, b"hello world", "bytes 0-10/11"),
    ("bytes=6-100", 206, b"world", "bytes 6-10/11"),
    ("bytes=100-", 416, b"invalid range: failed to overlap\n", "bytes */11"),
    ("bytes=x", 416, b"invalid range\n", None),
    ("chars=0-1", 416, b"invalid range\n", None),
    ("bytes=4-2", 416, b"invalid range\n", None),
    ("bytes=0-10,0-10", 200, b"hello world", None),
]


@pytest.mark.parametrize("rng,status,body,crange", RANGES)
def test_range_matrix(server, rng, status, body, crange):
    got, hs, b = get(server.port, "/file.txt", [("Range", rng)])
    assert (got, b, h(hs, "content-range")) == (status, body, crange)


def test_multipart_ranges(server):
    status, hs, body = get(server.port, "/file.txt", [("Range", "bytes=0-1,3-4")])
    assert status == 206
    m = re.fullmatch(r"multipart/byteranges; boundary=([0-9a-f]{60})", h(hs, "content-type"))
    assert m, hs
    b = m.group(1).encode()
    assert body == (b"--" + b + b"\r\nContent-Range: bytes 0-1/11\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhe"
                    b"\r\n--" + b + b"\r\nContent-Range: bytes 3-4/11\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nlo"
                    b"\r\n--" + b + b"--\r\n")
    assert int(h(hs, "content-length")) == len(body)


def test_redirects_and_errors(server):
    status, hs, body = get(server.port, "/sub?x=1")
    assert status == 308 and h(hs, "location") == "/sub/?x=1"
    assert body == b'<a href="/sub/?x=1">Permanent Redirect</a>.\n\n'
    status, hs, _ = get(server.port, "/file.txt/")
    assert status == 308 and h(hs, "location") == "/file.txt"
    status, hs, body = get(server.port, "/file.txt", method="POST")
    assert status == 405 and h(hs, "allow") == "GET, HEAD" and body == b""
    assert get(server.port, "/nope")[0:3:2] == (404, b"")
    assert get(server.port, "/a%00b")[0] == 400


def test_precompressed_and_browse(server):
    status, hs, body = get(server.port, "/gz/app.css", [("Accept-Encoding", "gzip")], host="opts.test")
    assert status == 200 and body == b"GZIPPED" and h(hs, "content-encoding") == "gzip"
    status, hs, body = get(server.port, "/empty/", [("Accept", "application/json")], host="opts.test")
    assert status == 200 and body == b"[]\n"
    status, hs, body = get(server.port, "/sub/../", host="opts.test")
    assert status == 200  # the index.html
    status, hs, body = get(server.port, "/gz/", host="opts.test")
    assert status == 200 and b"app.css.gz" in body and h(hs, "content-type") == "text/html; charset=utf-8"


def test_pipelined_file_responses_stay_in_order(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(b"GET /data.bin HTTP/1.1\r\nHost: localhost\r\n\r\n"
              b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-299999\r\n\r\n"
              b"GET /file.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st1, _, b1, rest = read_response(s, timeout=10)
    assert st1 == 200 and b1 == bytes(range(256)) * 20
    s2 = _Prefixed(s, rest)
    st2, hs2, b2, rest2 = read_response(s2, timeout=10)
    assert st2 == 206 and len(b2) == 300000
    st3, _, b3, _ = read_response(_Prefixed(s, rest2), timeout=10)
    assert st3 == 200 and b3 == b"hello world"
    s.close()


class _Prefixed:
    """A socket whose first recv returns bytes already read."""

    def __init__(self, s, prefix):
        self.s, self.prefix = s, prefix

    def settimeout(self, t):
        self.s.settimeout(t)

    def recv(self, n):
        if self.prefix:
            p, self.prefix = self.prefix, b""
            return p
        return self.s.recv(n)


# ---------------------------------------------------------------- large bodies

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def curl_sha(args):
    r = subprocess.run(["curl", "-sS", "--max-time", "120", *args, "-o", "-"], capture_output=True)
    assert r.returncode == 0, r.stderr
    return hashlib.sha256(r.stdout).hexdigest(), len(r.stdout)


def test_large_file_plain_tls_h2_and_rss_flat(server):
    pid = server.p.pid
    before = rss_kib(pid)
    plain = f"http://localhost:{server.ports[0]}/big.bin"
    tls = f"https://localhost:{server.ports[1]}/big.bin"
    assert curl_sha(["--http1.1", plain]) == (server.digest, BIG)
    assert curl_sha(["--http1.1", "--cacert", server.ca, tls]) == (server.digest, BIG)
    assert curl_sha(["--http2", "--cacert", server.ca, tls]) == (server.digest, BIG)
    assert curl_sha(["--http2-prior-knowledge", plain]) == (server.digest, BIG)
    # Ranges of the big file on each transport.
    full = open(server.root / "big.bin", "rb")
    full.seek(50_000_000)
    want = hashlib.sha256(full.read(3_000_000)).hexdigest()
    for args in (["--http1.1", plain], ["--http1.1", "--cacert", server.ca, tls], ["--http2", "--cacert", server.ca, tls]):
        assert curl_sha(["-r", "50000000-52999999", *args]) == (want, 3_000_000)
    # Several at once.
    results = []

    def fetch(args):
        results.append(curl_sha(args))

    ts = [threading.Thread(target=fetch, args=(a,)) for a in (["--http1.1", plain], ["--http1.1", "--cacert", server.ca, tls],
                                                               ["--http2", "--cacert", server.ca, tls], ["--http1.1", plain])]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results == [(server.digest, BIG)] * 4
    after = rss_kib(pid)
    # Nothing like a file's worth of memory: a few MiB of buffers at most.
    assert after - before < 24 * 1024, (before, after)


def test_slow_readers_do_not_grow_memory(server):
    pid = server.p.pid
    before = rss_kib(pid)
    socks = []
    ctx = ssl.create_default_context(cafile=server.ca)
    for i in range(4):
        raw = socket.create_connection(("127.0.0.1", server.ports[i % 2]), timeout=10)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s = ctx.wrap_socket(raw, server_hostname="localhost") if i % 2 else raw
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        s.recv(65536)
        socks.append(s)
    time.sleep(1.5)
    mid = rss_kib(pid)
    for s in socks:
        s.close()
    time.sleep(0.3)
    assert server.alive()
    assert mid - before < 16 * 1024, (before, mid)
    # Still serving.
    assert get(server.port, "/file.txt")[2] == b"hello world"


def test_client_disconnect_mid_transfer(server):
    for port, wrap in ((server.ports[0], False), (server.ports[1], True)):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        s = ssl.create_default_context(cafile=server.ca).wrap_socket(raw, server_hostname="localhost") if wrap else raw
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        got = 0
        while got < 5_000_000:
            got += len(s.recv(1 << 20))
        s.close()
    time.sleep(0.3)
    assert server.alive()
    assert get(server.port, "/file.txt")[2] == b"hello world"


# ---------------------------------------------------------------- write timeout

STALL_CADDYFILE = """{{
\tadmin off
\tlocal_certs
\tservers {{
\t\ttimeouts {{
\t\t\twrite 1s
\t\t}}
\t}}
}}

http://localhost {{
\tbind fd/3 {{
\t\tprotocols h1
\t}}
\troot * {root}
\tfile_server
}}

https://localhost {{
\tbind fd/4 {{
\t\tprotocols h1 h2
\t}}
\troot * {root}
\tfile_server
}}
"""


@pytest.fixture(scope="module")
def stall_server(server, tmp_path_factory):
    d = tmp_path_factory.mktemp("stall")
    cf = write_caddyfile(d, STALL_CADDYFILE.format(root=server.root))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener(), tcp_listener()], env={"XDG_DATA_HOME": str(d / "data")})
    assert p.alive(), p.stderr()
    p.ca = str(d / "data" / "berth" / "pki" / "authorities" / "local" / "root.crt")
    yield p
    p.stop()


@pytest.mark.parametrize("tls", [False, True])
def test_write_timeout_is_a_stall_timeout(stall_server, tls):
    """A slow reader that keeps making progress outlives the 1 s write timeout; one that
    stops reading is disconnected after it."""
    port = stall_server.ports[1 if tls else 0]
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
    s = ssl.create_default_context(cafile=stall_server.ca).wrap_socket(raw, server_hostname="localhost") if tls else raw
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got, t0 = 0, time.time()
    while time.time() - t0 < 3.0:  # three times the write timeout, reading slowly all along
        b = s.recv(256 * 1024)
        assert b, "closed while the client was still reading"
        got += len(b)
        time.sleep(0.02)
    assert 500_000 < got < 50_000_000
    # Now stop reading: the server must give up after about a second.
    time.sleep(3.0)
    closed = False
    s.settimeout(5)
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                closed = True
                break
    except (ConnectionResetError, ssl.SSLError, OSError):
        closed = True
    assert closed
    s.close()
    assert stall_server.alive()

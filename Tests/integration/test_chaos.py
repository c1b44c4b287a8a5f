"""Seeded random abuse against one socket-activated Berth: mutated HTTP/1.1 requests and random
HTTP/2 frame sequences (h2c prior knowledge) aimed at `respond`, `reverse_proxy` (with request
bodies), `file_server` and `encode`, from several clients at once. Whatever arrives, the server
must neither crash nor hang: after every round a well-formed request over each protocol is
answered, and the process is still the one we started. The seed is printed so a failure can be
replayed (`BERTH_CHAOS_SEED=…`); `BERTH_CHAOS_SECONDS` lengthens the run."""
import os
import random
import socket
import struct
import threading
import time

import pytest

from conftest import launch, tcp_listener, write_caddyfile
from h2_client import H2Client, frames
from proxy_backends import EchoBackend

SECONDS = float(os.environ.get("BERTH_CHAOS_SECONDS", "12"))
SEED = int(os.environ.get("BERTH_CHAOS_SEED", str(random.randrange(1 << 32))))

CADDYFILE = """{{
\tadmin off
}}

http://localhost {{
\tbind fd/3 {{
\t\tprotocols h1 h2c
\t}}
\tencode gzip zstd
\thandle /proxy/* {{
\t\treverse_proxy 127.0.0.1:{backend}
\t}}
\thandle /files/* {{
\t\troot * {root}
\t\turi strip_prefix /files
\t\tfile_server browse
\t}}
\thandle /auth/* {{
\t\tforward_auth 127.0.0.1:{backend} {{
\t\t\turi /verify?u={{uri}}
\t\t\tcopy_headers X-Backend>X-User
\t\t}}
\t\trespond "authed {{header.X-User}}"
\t}}
\thandle /basic/* {{
\t\tbasic_auth {{
\t\t\tbob {bcrypt}
\t\t}}
\t\trespond "basic {{http.auth.user.id}}"
\t}}
\theader X-Chaos yes
\trespond "hello {{http.request.uri.path}}"
}}
"""

# bcrypt of "secret" at cost 4 (cheap: the checks run on worker threads, not the loops).
BCRYPT = "$2a$04$EMAXEDIcuk9v9sB6fcF5luKL2IFeBgfcGw7XbB3r4tKfhPOaKb3hq"

PATHS = ["/", "/proxy/echo", "/auth/x", "/auth/", "/basic/x", "/basic/", "/proxy/", "/files/", "/files/big.txt", "/files/small.txt", "/files/../../etc/passwd",
         "/%00", "/files/%2e%2e/", "/proxy/" + "a" * 3000, "*", "http://localhost/proxy/x", "//", "/files/dir/"]
METHODS = ["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH", "CONNECT", "TRACE", "G\x00T", "BREW"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("chaos")
    root = d / "www"
    (root / "dir").mkdir(parents=True)
    (root / "small.txt").write_text("small\n")
    (root / "big.txt").write_bytes(b"0123456789abcdef\n" * 20000)
    backend = EchoBackend()
    cf = write_caddyfile(d, CADDYFILE.format(backend=backend.port, root=root, bcrypt=BCRYPT))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener(backlog=1024)])
    assert p.alive(), p.stderr()
    p.backend = backend
    yield p
    p.stop()
    backend.close()


def h1_request(rng):
    """A request that is mostly right and wrong in a random place."""
    method = rng.choice(METHODS)
    path = rng.choice(PATHS)
    version = rng.choice(["HTTP/1.1"] * 6 + ["HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "HTTP/9", ""])
    headers = [("Host", rng.choice(["localhost", "", "localhost:1", "a b", "LOCALHOST"]))]
    body = b""
    kind = rng.randrange(6)
    if kind == 0:
        body = os.urandom(rng.randrange(0, 70000))
        headers.append(("Content-Length", str(len(body) + rng.choice([0, 0, 0, -1, 5, 100000]))))
    elif kind == 1:
        chunks = []
        for _ in range(rng.randrange(0, 5)):
            c = os.urandom(rng.randrange(0, 5000))
            size = rng.choice([f"{len(c):x}", f"{len(c):X};ext=1", "zz", "-1", "ffffffffffffffff", f"{len(c) + 1:x}"])
            chunks.append(size.encode() + b"\r\n" + c + b"\r\n")
        end = rng.choice([b"0\r\n\r\n", b"0\r\nTrailer-A: x\r\n\r\n", b"", b"0\r\n"])
        body = b"".join(chunks) + end
        headers.append(("Transfer-Encoding", rng.choice(["chunked", "gzip, chunked", "chunked, gzip", "identity"])))
        if rng.random() < 0.3:
            headers.append(("Content-Length", "10"))
    elif kind == 2:
        headers.append(("Expect", "100-continue"))
        body = b"x" * rng.randrange(0, 100)
        headers.append(("Content-Length", str(len(body))))
    elif kind == 3:
        headers += [("Connection", "Upgrade"), ("Upgrade", rng.choice(["websocket", "h2c", "x" * 500]))]
    elif kind == 4:
        headers += [(f"X-{i}", "v" * rng.randrange(0, 2000)) for i in range(rng.randrange(0, 80))]
    headers.append(("Accept-Encoding", rng.choice(["gzip", "zstd", "br;q=1, gzip;q=0", "*", "", "gzip;q=abc"])))
    if rng.random() < 0.3:
        headers.append(("Authorization", rng.choice(["Basic Ym9iOnNlY3JldA==", "Basic Ym9iOndyb25n", "Basic !!!", "Bearer x",
                                                      "Basic " + "A" * 3000, "Basic Ym9i"])))
    if rng.random() < 0.3:
        headers.append(("Range", rng.choice(["bytes=0-10", "bytes=-5", "bytes=100000-", "bytes=5-1", "bytes=0-1,3-4",
                                             "lines=1-2"])))
    line = f"{method} {path} {version}".encode() + b"\r\n"
    head = line + b"".join(f"{k}: {v}".encode() + b"\r\n" for k, v in headers) + b"\r\n"
    raw = head + body
    # Byte-level damage in a third of the requests.
    if rng.random() < 0.33 and raw:
        raw = bytearray(raw)
        for _ in range(rng.randrange(1, 8)):
            i = rng.randrange(len(raw))
            op = rng.randrange(3)
            if op == 0:
                raw[i] = rng.randrange(256)
            elif op == 1:
                del raw[i]
            else:
                raw[i:i] = bytes([rng.choice([0, 10, 13, 32, 58, 127, 255])])
        raw = bytes(raw)
    return raw


def send_in_pieces(s, data, rng):
    """Writes split at random points (partial heads, frames and bodies in pieces)."""
    while data:
        n = rng.randrange(1, len(data) + 1)
        s.sendall(data[:n])
        data = data[n:]


def drain(s, seconds=0.3):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not s.recv(65536):
            break


def h1_client(port, rng, deadline):
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            continue
        try:
            for _ in range(rng.randrange(1, 4)):  # sometimes pipelined
                send_in_pieces(s, h1_request(rng), rng)
            if rng.random() < 0.5:
                s.shutdown(socket.SHUT_WR)
            drain(s)
        except OSError:
            pass
        finally:
            s.close()


def h2_frames(rng, encoder):
    """A plausible stream of frames with random damage."""
    out = []
    sid = 1
    for _ in range(rng.randrange(1, 25)):
        kind = rng.randrange(12)
        stream = rng.choice([sid, sid, sid + 2, 0, 2, 0x7FFFFFFF, rng.randrange(1 << 31)])
        if kind <= 3:
            path = rng.choice(PATHS)
            extra = [("content-length", str(rng.randrange(0, 100)))] if rng.random() < 0.3 else []
            extra += [(rng.choice(["accept-encoding", "te", "connection", "x-a", ":status", "Upper"]),
                       rng.choice(["gzip", "trailers", "close", "v", "200"]))] if rng.random() < 0.4 else []
            try:
                block = frames.request_block(encoder, method=rng.choice(["GET", "POST", "HEAD", "CONNECT"]), path=path,
                                             extra=extra)
            except Exception:
                block = b""
            if rng.random() < 0.2:
                block = os.urandom(rng.randrange(0, 64))
            end_stream = rng.random() < 0.5
            if rng.random() < 0.2 and len(block) > 2:
                cut = rng.randrange(1, len(block))
                out.append(frames.headers(stream, block[:cut], end_stream=end_stream, end_headers=False))
                out.append(frames.continuation(rng.choice([stream, stream + 2]), block[cut:], end_headers=rng.random() < 0.8))
            else:
                out.append(frames.headers(stream, block, end_stream=end_stream))
            sid += 2
        elif kind <= 5:
            out.append(frames.data(stream, os.urandom(rng.randrange(0, 20000)), end_stream=rng.random() < 0.5,
                                   pad=rng.choice([None, None, 0, 5, 255])))
        elif kind == 6:
            out.append(frames.window_update(stream, rng.choice([0, 1, 65535, 0x7FFFFFFF, rng.randrange(1 << 31)])))
        elif kind == 7:
            out.append(frames.settings([(rng.randrange(0, 10), rng.choice([0, 1, 16383, 16384, 1 << 24, 0xFFFFFFFF]))
                                        for _ in range(rng.randrange(0, 4))], ack=rng.random() < 0.1))
        elif kind == 8:
            out.append(frames.rst_stream(stream, rng.randrange(0, 16)))
        elif kind == 9:
            out.append(frames.frame(frames.PRIORITY, 0, stream, struct.pack(">IB", stream | (rng.randrange(2) << 31),
                                                                           rng.randrange(256))[: rng.choice([5, 4, 6])]))
        elif kind == 10:
            out.append(frames.frame(rng.randrange(0, 256), rng.randrange(256), stream, os.urandom(rng.randrange(0, 40))))
        else:
            out.append(frames.ping(os.urandom(8), ack=rng.random() < 0.2) if rng.random() < 0.8
                       else frames.frame(frames.PING, 0, 0, os.urandom(rng.randrange(0, 12))))
    data = b"".join(out)
    if rng.random() < 0.2 and data:
        data = bytearray(data)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data)
    return data


def h2_client(port, rng, deadline):
    import hpack
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            continue
        try:
            start = preface if rng.random() < 0.95 else preface[: rng.randrange(len(preface))] + os.urandom(8)
            s.sendall(start + frames.settings([(4, rng.choice([0, 65535, 1 << 30]))]))
            send_in_pieces(s, h2_frames(rng, hpack.Encoder()), rng)
            drain(s)
        except OSError:
            pass
        finally:
            s.close()


def still_serving(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /proxy/ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    with H2Client.h2c("127.0.0.1", port, authority="localhost") as c:
        r = c.get("/files/small.txt")
        assert r.status == 200 and r.body == b"small\n", (r.status, r.body[:100])
        r = c.get("/auth/ok")
        assert r.status == 200 and r.body == b"authed echo", (r.status, r.body[:100])
        r = c.get("/basic/ok", headers=[("authorization", "Basic Ym9iOnNlY3JldA==")])
        assert r.status == 200 and r.body == b"basic bob", (r.status, r.body[:100])
        r = c.get("/basic/ok", headers=[("authorization", "Basic Ym9iOndyb25n")])
        assert r.status == 401, r.status


def client_connections(pid, port):
    """The server's accepted connections still open (any TCP state) on its listening port."""
    import subprocess
    out = subprocess.run(["ss", "-Htanp", "sport", "=", f":{port}"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if f"pid={pid}," in l and not l.startswith("LISTEN")]


def settles(pid, port, seconds=10):
    """Once the clients are gone, no accepted connection is left (none leaked by the server).
    Upstream keep-alive connections are not counted: the pool keeps those on purpose."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not client_connections(pid, port):
            return True
        time.sleep(0.1)
    return False


def test_random_abuse_never_crashes_or_hangs(server):
    port = server.ports[0]
    print(f"chaos seed {SEED} ({SECONDS:.0f} s)")
    still_serving(port)
    master = random.Random(SEED)
    rounds = max(1, int(SECONDS // 3))
    for rnd in range(rounds):
        deadline = time.monotonic() + SECONDS / rounds
        workers = [threading.Thread(target=h1_client, args=(port, random.Random(master.random()), deadline)) for _ in range(3)]
        workers += [threading.Thread(target=h2_client, args=(port, random.Random(master.random()), deadline)) for _ in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
            assert not w.is_alive(), f"a client hung (seed {SEED}, round {rnd})"
        assert server.alive(), f"server died in round {rnd} (seed {SEED}):\n{server.stderr()[-3000:]}"
        still_serving(port)
    assert server.alive(), server.stderr()[-3000:]
    # The abuse reached the proxy (not only the parsers' front doors).
    assert server.backend.requests > rounds, server.backend.requests
    # Every client has closed its connections by now: the server must have closed its ends too.
    assert settles(server.p.pid, port), "\n".join(client_connections(server.p.pid, port))
    print(f"backend saw {server.backend.requests} proxied requests")


# ---------------------------------------------------------------- HTTP/3

H3_CADDYFILE = """{{
\tadmin off
\tauto_https disable_redirects
}}

https://localhost {{
\tbind fd/3 {{
\t\tprotocols h1 h2
\t}}
\tbind fdgram/4 {{
\t\tprotocols h3
\t}}
\ttls internal
\thandle /proxy/* {{
\t\treverse_proxy 127.0.0.1:{backend}
\t}}
\trespond "hello h3"
}}
"""


def varint(n):
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return struct.pack(">H", n | 0x4000)
    if n < 1 << 30:
        return struct.pack(">I", n | 0x80000000)
    return struct.pack(">Q", n | 0xC000000000000000)


def h3_frame(ftype, payload):
    return varint(ftype) + varint(len(payload)) + payload


async def h3_abuse(port, rng, deadline):
    """Connections whose request and unidirectional streams carry random HTTP/3 frames."""
    import asyncio
    import ssl as ssl_mod

    from aioquic.asyncio.client import connect
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration
    from pylsqpack import Encoder

    while time.monotonic() < deadline:
        cfg = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl_mod.CERT_NONE,
                                server_name="localhost")
        try:
            async with connect("127.0.0.1", port, configuration=cfg, wait_connected=True) as client:
                quic = client._quic
                enc = Encoder()
                for _ in range(rng.randrange(1, 12)):
                    kind = rng.randrange(8)
                    if kind <= 4:
                        sid = quic.get_next_available_stream_id()
                        headers = [(b":method", rng.choice([b"GET", b"POST", b"CONNECT", b"HEAD"])),
                                   (b":scheme", rng.choice([b"https", b"http", b""])),
                                   (b":authority", rng.choice([b"localhost", b"", b"x" * 300])),
                                   (b":path", rng.choice([p.encode() for p in PATHS] + [b""]))]
                        if rng.random() < 0.3:
                            headers.append((rng.choice([b"connection", b"te", b"content-length", b"X-Upper", b"expect"]),
                                            rng.choice([b"close", b"trailers", b"5", b"v", b"100-continue"])))
                        rng.shuffle(headers) if rng.random() < 0.1 else None
                        _, block = enc.encode(0, headers)
                        if rng.random() < 0.15:
                            block = os.urandom(rng.randrange(0, 40))
                        data = h3_frame(1, block)
                        for _ in range(rng.randrange(0, 4)):
                            t = rng.choice([0, 0, 0, 1, 4, 7, 0x21, rng.randrange(1 << 20)])
                            data += h3_frame(t, os.urandom(rng.randrange(0, 3000)))
                        if rng.random() < 0.2:
                            data = data[: rng.randrange(len(data) + 1)]
                        quic.send_stream_data(sid, data, end_stream=rng.random() < 0.8)
                        if rng.random() < 0.15:
                            quic.reset_stream(sid, rng.randrange(0x100, 0x110))
                    elif kind == 5:
                        sid = quic.get_next_available_stream_id(is_unidirectional=True)
                        stype = rng.choice([0, 2, 3, 0x21, 0x54, rng.randrange(1 << 16)])
                        quic.send_stream_data(sid, varint(stype) + os.urandom(rng.randrange(0, 200)),
                                              end_stream=rng.random() < 0.3)
                    elif kind == 6:
                        quic.send_ping(rng.randrange(1 << 30))
                    else:
                        quic.close(error_code=rng.randrange(0x100, 0x110))
                        break
                client.transmit()
                await asyncio.sleep(rng.random() * 0.2)
        except (ConnectionError, asyncio.TimeoutError, OSError):
            pass
        except Exception as e:  # aioquic refusing what we asked it to send is fine
            if "stream" not in str(e).lower() and "frame" not in str(e).lower():
                raise


@pytest.fixture
def h3_server(tmp_path):
    pytest.importorskip("aioquic")
    from conftest import udp_socket
    backend = EchoBackend()
    cf = write_caddyfile(tmp_path, H3_CADDYFILE.format(backend=backend.port))
    t, u = tcp_listener(), udp_socket()
    uport = u.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[t, u], env={"XDG_DATA_HOME": str(tmp_path / "data")})
    assert p.alive(), p.stderr()
    p.uport = uport
    p.cafile = str(tmp_path / "data" / "berth" / "pki" / "authorities" / "local" / "root.crt")
    yield p
    p.stop()
    backend.close()


def h3_still_serving(server):
    import subprocess
    import sys
    from pathlib import Path
    h3get = Path(__file__).parent / "h3get.py"
    r = subprocess.run([sys.executable, str(h3get), "--cafile", server.cafile, "--timeout", "8",
                        f"https://localhost:{server.uport}/proxy/ok"], capture_output=True, timeout=15)
    assert r.returncode == 0 and b"status=200" in r.stderr, (r.returncode, r.stderr[-500:])


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_random_http3_frames_never_crash_or_hang(h3_server):
    import asyncio
    print(f"chaos seed {SEED} ({SECONDS:.0f} s, HTTP/3)")
    master = random.Random(SEED)
    rounds = max(1, int(SECONDS // 3))
    for rnd in range(rounds):
        deadline = time.monotonic() + SECONDS / rounds

        async def run_round():
            await asyncio.gather(*(h3_abuse(h3_server.uport, random.Random(master.random()), deadline) for _ in range(4)))

        asyncio.run(asyncio.wait_for(run_round(), SECONDS / rounds + 30))
        assert h3_server.alive(), f"server died in round {rnd} (seed {SEED}):\n{h3_server.stderr()[-3000:]}"
        h3_still_serving(h3_server)

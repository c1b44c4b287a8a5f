"""Test backends for reverse_proxy: an echo server in the spirit of traefik/whoami, over TCP or a
unix socket, that reports what it received and can stream, stall, die or speak WebSocket on
demand; and an nginx started from a generated configuration. Standard library only.

Echo server routes (any method):
  /            whoami-style text: request line, then every header as received, then the body
  /json        the same as JSON: method, target, version, headers (list of pairs), body_len,
               body_sha256, peer
  /bytes?size=N[&chunked=1][&chunk=M]
               N bytes of a repeating pattern, Content-Length (or chunked in M-byte chunks)
  /upload      reads the body as it streams (Content-Length or chunked) and answers
               {"body_len":…, "body_sha256":…}; honours Expect: 100-continue
  /slow?delay=S  sleeps S seconds before answering
  /die         sends a head announcing 1000 bytes, 10 bytes, then closes
  /status/NNN  answers NNN with an empty body
  /close       answers with Connection: close
  /ws          WebSocket echo (RFC 6455): text and binary frames echoed unmasked; close echoed
  /reject-expect  answers 417 without reading the body
  /trailers[?extra=1]
               a chunked response `hello` announcing and sending trailers X-Checksum (of the
               request body) and X-Got-Trailers (the request's trailers, `name=value; ...`);
               with extra=1 also an unannounced X-Unannounced and a forbidden Content-Length
Every response carries `Server: echo` and `X-Backend: <name>`. Every request is recorded in
`received` (method, target, headers as a list of pairs, trailers, body_len) after its body.
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

PATTERN = bytes(range(256)) * 256  # 64 KiB


class EchoBackend:
    def __init__(self, host="127.0.0.1", port=0, unix_path=None, name="echo"):
        self.name = name
        if unix_path:
            try:
                os.unlink(unix_path)
            except FileNotFoundError:
                pass
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            self.address = unix_path
        else:
            self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.address = self.sock.getsockname()
        self.port = None if unix_path else self.sock.getsockname()[1]
        self.sock.listen(256)
        self.connections = 0
        self.requests = 0
        self.received = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        self.running = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept(self):
        while self.running:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c, peer), daemon=True).start()

    # -- connection -----------------------------------------------------------------------------

    def _serve(self, c, peer):
        r = Reader(c)
        try:
            while True:
                head = r.read_head()
                if head is None:
                    return
                with self.lock:
                    self.requests += 1
                if not self._handle(c, r, head, peer):
                    return
        except (OSError, ValueError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _respond(self, c, status, body=b"", headers=(), reason="OK", close=False):
        h = [f"HTTP/1.1 {status} {reason}", "Server: echo", f"X-Backend: {self.name}",
             f"Content-Length: {len(body)}"]
        h += [f"{k}: {v}" for k, v in headers]
        if close:
            h.append("Connection: close")
        c.sendall(("\r\n".join(h) + "\r\n\r\n").encode() + body)
        return not close

    def _handle(self, c, r, head, peer):
        method, target, version, headers = head
        url = urllib.parse.urlsplit(target)
        q = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        hmap = {k.lower(): v for k, v in headers}
        if path == "/reject-expect":
            return self._respond(c, 417, reason="Expectation Failed", close=True)
        if "100-continue" in hmap.get("expect", "").lower():
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if path == "/ws":
            return self._websocket(c, r, hmap)
        body_len, digest, body = 0, hashlib.sha256(), bytearray()
        keep = path not in ("/upload",)
        r.trailers = []
        for piece in r.body(hmap):
            body_len += len(piece)
            digest.update(piece)
            if keep and len(body) < (1 << 20):
                body += piece
        with self.lock:
            self.received.append({"method": method, "target": target, "headers": headers,
                                  "trailers": list(r.trailers), "body_len": body_len})
        if path == "/slow":
            time.sleep(float(q.get("delay", "2")))
        if path == "/die":
            c.sendall(b"HTTP/1.1 200 OK\r\nServer: echo\r\nContent-Length: 1000\r\n\r\n0123456789")
            time.sleep(0.05)
            return False
        if path == "/trailers":
            # A chunked response with announced trailers; the request's trailers are echoed.
            got = "; ".join(f"{k}={v}" for k, v in r.trailers)
            extra = "X-Unannounced: 1\r\nContent-Length: 99\r\n" if q.get("extra") == "1" else ""
            c.sendall(("HTTP/1.1 200 OK\r\nServer: echo\r\nTransfer-Encoding: chunked\r\n"
                       "Trailer: X-Checksum, X-Got-Trailers\r\n\r\n").encode()
                      + b"5\r\nhello\r\n0\r\n" + f"X-Checksum: {digest.hexdigest()[:16]}\r\n"
                      f"X-Got-Trailers: {got}\r\n{extra}\r\n".encode())
            return True
        if path.startswith("/status/"):
            return self._respond(c, int(path[8:]), reason="Status")
        if path == "/bytes":
            return self._bytes(c, int(q.get("size", "0")), q.get("chunked") == "1", int(q.get("chunk", "65536")))
        if path in ("/upload", "/json"):
            info = {"method": method, "target": target, "version": version, "headers": headers,
                    "body_len": body_len, "body_sha256": digest.hexdigest(), "peer": str(peer),
                    "backend": self.name}
            return self._respond(c, 200, json.dumps(info).encode(), [("Content-Type", "application/json")])
        lines = [f"Hostname: {self.name}", f"RemoteAddr: {peer}", f"{method} {target} {version}"]
        lines += [f"{k}: {v}" for k, v in headers]
        text = ("\n".join(lines) + "\n").encode() + bytes(body)
        return self._respond(c, 200, text, [("Content-Type", "text/plain; charset=utf-8")],
                             close=path == "/close")

    def _bytes(self, c, size, chunked, chunk):
        h = ["HTTP/1.1 200 OK", "Server: echo", f"X-Backend: {self.name}", "Content-Type: application/octet-stream"]
        h.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
        c.sendall(("\r\n".join(h) + "\r\n\r\n").encode())
        left = size
        block = PATTERN * max(1, chunk // len(PATTERN)) if chunk >= len(PATTERN) else PATTERN[:chunk]
        while left > 0:
            piece = block[:min(left, len(block))]
            if chunked:
                c.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                c.sendall(piece)
            left -= len(piece)
        if chunked:
            c.sendall(b"0\r\n\r\n")
        return True

    def _websocket(self, c, r, hmap):
        key = hmap.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Accept: {accept}\r\nServer: echo\r\n\r\n").encode())
        while True:
            frame = ws_read_frame(r)
            if frame is None:
                return False
            opcode, payload = frame
            if opcode == 8:
                c.sendall(ws_frame(8, payload))
                return False
            if opcode == 9:
                c.sendall(ws_frame(10, payload))
                continue
            c.sendall(ws_frame(opcode, payload))


class Reader:
    """Buffered reads from a socket: lines, exact counts, HTTP/1.1 heads and bodies."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""
        self.trailers = []

    def fill(self):
        b = self.s.recv(262144)
        if not b:
            raise ValueError("eof")
        self.buf += b

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            try:
                self.fill()
            except ValueError:
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [tuple(x.split(": ", 1)) if ": " in x else (x.rstrip(":"), "") for x in lines[1:]]
        return method, target, version, headers

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out

    def body(self, hmap):
        if "chunked" in hmap.get("transfer-encoding", "").lower():
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    self.trailers = []
                    while True:
                        t = self.line()
                        if t == b"":
                            break
                        k, _, v = t.decode("latin-1").partition(":")
                        self.trailers.append((k, v.strip()))
                    return
                left = size
                while left:
                    if not self.buf:
                        self.fill()
                    piece = self.buf[:left]
                    self.buf = self.buf[len(piece):]
                    left -= len(piece)
                    yield piece
                self.exact(2)
        else:
            left = int(hmap.get("content-length", "0"))
            while left:
                if not self.buf:
                    self.fill()
                piece = self.buf[:left]
                self.buf = self.buf[len(piece):]
                left -= len(piece)
                yield piece


def ws_frame(opcode, payload, mask=None):
    """One final WebSocket frame (RFC 6455 §5.2)."""
    b0 = 0x80 | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n < 65536:
        h = bytes([b0, m | 126]) + n.to_bytes(2, "big")
    else:
        h = bytes([b0, m | 127]) + n.to_bytes(8, "big")
    if mask:
        payload = bytes(x ^ mask[i % 4] for i, x in enumerate(payload))
        return h + mask + payload
    return h + payload


def ws_read_frame(r):
    try:
        b0, b1 = r.exact(2)
    except ValueError:
        return None
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(r.exact(2), "big")
    elif n == 127:
        n = int.from_bytes(r.exact(8), "big")
    mask = r.exact(4) if b1 & 0x80 else None
    payload = r.exact(n)
    if mask:
        payload = bytes(x ^ mask[i % 4] for i, x in enumerate(payload))
    return b0 & 0x0F, payload


class Nginx:
    """nginx (Debian's nginx-light) serving a generated site on `host:port`, as an upstream."""

    def __init__(self, host="127.0.0.1", port=0, extra_http="", extra_server="", root_files=None, workers=1,
                 listen_extra=""):
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(exe):
            raise FileNotFoundError("nginx not installed")
        if port == 0:
            s = socket.socket()
            s.bind((host, 0))
            port = s.getsockname()[1]
            s.close()
        self.host, self.port = host, port
        self.dir = tempfile.mkdtemp(prefix="berth-nginx-")
        root = Path(self.dir) / "html"
        root.mkdir()
        (root / "index.html").write_text(
            "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n"
            "<body><h1>Welcome to nginx!</h1></body>\n</html>\n")
        for name, data in (root_files or {}).items():
            (root / name).write_bytes(data)
        conf = f"""
worker_processes {workers};
daemon off;
user root;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    keepalive_requests 100000;
    {extra_http}
    server {{
        listen {host}:{port} {listen_extra} reuseport;
        root {root};
        location / {{ index index.html; }}
        {extra_server}
    }}
}}
"""
        self.conf = Path(self.dir) / "nginx.conf"
        self.conf.write_text(conf)
        self.p = subprocess.Popen([exe, "-c", str(self.conf), "-p", self.dir], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
        end = time.time() + 5
        while time.time() < end:
            try:
                socket.create_connection((host, port), timeout=0.2).close()
                return
            except OSError:
                if self.p.poll() is not None:
                    raise RuntimeError("nginx failed: " + self.p.stderr.read().decode())
                time.sleep(0.02)
        raise RuntimeError("nginx did not start")

    def close(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGQUIT)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

"""HTTP/2 client helpers for Berth's real-peer tests (Python `h2` over real sockets).

Two ways in, matching how Berth serves HTTP/2:

* `H2Client.h2c(host, port)` — cleartext with prior knowledge (RFC 9113 §3.3): the client
  preface is the first thing on the TCP connection; Berth's HTTP/1 side detects it and hands
  the connection to HTTP/2.
* `H2Client.tls(host, port, server_name=...)` — TLS with ALPN `h2` (RFC 9113 §3.2); fails
  if the server selects anything else.

Typical use::

    with H2Client.h2c("127.0.0.1", port) as c:
        r = c.get("/")                       # one request, waits for the response
        assert r.status == 200 and r.body == b"Hello world\\n"
        rs = c.many([("GET", f"/{i}") for i in range(100)])   # concurrent streams

Abuse tests talk raw frames: `c.send_raw(frames.rst_stream(1))`, then `c.wait_goaway()`
returns the `GoAway` (error code, last stream id) the server sent before closing. The `frames`
helpers build frames by hand (hyperframe for the layout, the connection's own HPACK encoder
for header blocks, so raw HEADERS stay in sync with the h2 state machine when mixed).

Only the standard library, `h2`, `hpack` and `hyperframe` are used. Run as a script for a
quick manual check: `python3 h2_client.py [--tls] [--insecure] HOST PORT [PATH]`.
"""
import argparse
import socket
import ssl
import struct
import sys
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 §7 error codes.
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB


@dataclass
class Response:
    """One stream's outcome."""

    stream_id: int
    status: int = 0
    headers: list = field(default_factory=list)
    body: bytes = b""
    informational: list = field(default_factory=list)
    trailers: list = field(default_factory=list)
    ended: bool = False
    #: RST_STREAM error code from the server, or None.
    reset_code: int = None

    def header(self, name):
        """First value of `name` (lower case), or None."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def done(self):
        return self.ended or self.reset_code is not None


@dataclass
class GoAway:
    error_code: int
    last_stream_id: int
    debug_data: bytes = b""


class ConnectionClosed(Exception):
    """The server closed the TCP connection."""


def tls_h2_socket(host, port, server_name=None, cafile=None, insecure=False, timeout=5.0):
    """A TCP connection (TCP_NODELAY) with TLS 1.2+ and ALPN `h2` (RFC 9113 §3.2, §9.2);
    raises ssl.SSLError when the server selects another protocol. `insecure` skips the
    certificate check."""
    ctx = ssl.create_default_context(cafile=cafile)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((host, port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = ctx.wrap_socket(raw, server_hostname=server_name or host)
    proto = sock.selected_alpn_protocol()
    if proto != "h2":
        sock.close()
        raise ssl.SSLError(f"server selected ALPN {proto!r}, not 'h2'")
    return sock


class H2Client:
    """A blocking HTTP/2 client over one socket (plaintext or TLS)."""

    def __init__(self, sock, authority="localhost", scheme="http", timeout=5.0,
                 initial_window=None, connection_window=None, auto_window=True, send_preface=True):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.authority = authority
        self.scheme = scheme
        self.auto_window = auto_window
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.responses = {}
        self.goaways = []
        self.ping_acks = []
        self.remote_settings = {}
        self.settings_acked = False
        self.closed = False
        self._pending_bodies = {}
        if send_preface:
            self.conn.initiate_connection()
            if initial_window is not None:
                self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window})
            if connection_window is not None and connection_window > 65535:
                self.conn.increment_flow_control_window(connection_window - 65535)
            self.flush()

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def h2c(cls, host, port, authority=None, timeout=5.0, **kw):
        """Cleartext HTTP/2 with prior knowledge."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, authority=authority or f"{host}:{port}", scheme="http", timeout=timeout, **kw)

    @classmethod
    def tls(cls, host, port, server_name=None, cafile=None, insecure=False, authority=None,
            timeout=5.0, **kw):
        """HTTP/2 over TLS, ALPN `h2` (RFC 9113 §3.2; TLS 1.2+ as §9.2 requires)."""
        sock = tls_h2_socket(host, port, server_name, cafile, insecure, timeout)
        name = server_name or host
        return cls(sock, authority=authority or f"{name}:{port}", scheme="https", timeout=timeout, **kw)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    # ---- I/O ----------------------------------------------------------------------------

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data):
        """Writes bytes as they are (hand-made frames), bypassing the h2 state machine."""
        self.sock.sendall(data)

    def _read_once(self, timeout=None):
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            raise ConnectionClosed()
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            # After a GOAWAY, h2 may reject frames for streams it considers gone.
            events = []
        for ev in events:
            self._handle(ev)
        self.flush()
        return True

    def _handle(self, ev):
        sid = getattr(ev, "stream_id", None)
        r = self.responses.get(sid) if sid else None
        if isinstance(ev, h2.events.ResponseReceived):
            r.status = int(dict(ev.headers).get(":status", 0))
            r.headers = [(k, v) for k, v in ev.headers if not k.startswith(":")]
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            r.informational.append(int(dict(ev.headers).get(":status", 0)))
        elif isinstance(ev, h2.events.DataReceived):
            r.body += ev.data
            if self.auto_window and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
        elif isinstance(ev, h2.events.TrailersReceived):
            r.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            r.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if r is not None:
                r.reset_code = int(ev.error_code)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaways.append(GoAway(int(ev.error_code), ev.last_stream_id, ev.additional_data or b""))
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[int(k)] = v.new_value
        elif isinstance(ev, h2.events.SettingsAcknowledged):
            self.settings_acked = True
        elif isinstance(ev, h2.events.PingAckReceived):
            self.ping_acks.append(ev.ping_data)
        elif isinstance(ev, h2.events.WindowUpdated):
            self._send_pending_bodies()

    def read_until(self, predicate, timeout=None):
        """Reads and handles frames until `predicate()` is true; False on timeout."""
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not predicate():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._read_once(timeout=left)
        return True

    # ---- requests -----------------------------------------------------------------------

    def request(self, method="GET", path="/", headers=(), body=None, end_stream=True, authority=None,
                trailers=None):
        """Sends a request (body respecting flow control); returns its stream id. With
        `trailers` (pairs), the body is followed by a trailing HEADERS frame that ends the stream."""
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", self.scheme), (":path", path),
                (":authority", authority or self.authority)] + list(headers)
        self.responses[sid] = Response(sid)
        self.conn.send_headers(sid, hdrs, end_stream=(body is None and end_stream))
        if body is not None:
            self._pending_bodies[sid] = [memoryview(bytes(body)), end_stream, trailers]
            self._send_pending_bodies()
        self.flush()
        return sid

    def _send_pending_bodies(self):
        for sid in list(self._pending_bodies):
            buf, end, trailers = self._pending_bodies[sid]
            while buf:
                try:
                    window = self.conn.local_flow_control_window(sid)
                except h2.exceptions.StreamClosedError:
                    buf = memoryview(b"")
                    break
                n = min(window, self.conn.max_outbound_frame_size, len(buf))
                if n <= 0:
                    break
                self.conn.send_data(sid, buf[:n].tobytes())
                buf = buf[n:]
            if buf:
                self._pending_bodies[sid] = [buf, end, trailers]
            else:
                del self._pending_bodies[sid]
                if end:
                    try:
                        if trailers:
                            self.conn.send_headers(sid, list(trailers), end_stream=True)
                        else:
                            self.conn.end_stream(sid)
                    except h2.exceptions.StreamClosedError:
                        pass
        self.flush()

    def response(self, sid, timeout=None):
        """Waits for stream `sid` to end (or be reset) and returns its `Response`."""
        r = self.responses[sid]
        if not self.read_until(lambda: r.done or self.closed, timeout):
            raise TimeoutError(f"stream {sid} did not finish")
        return r

    def get(self, path="/", headers=(), timeout=None):
        return self.response(self.request("GET", path, headers), timeout)

    def post(self, path, body, headers=(), timeout=None):
        return self.response(self.request("POST", path, headers, body=body), timeout)

    def many(self, requests, timeout=None):
        """Sends all `(method, path[, headers[, body]])` at once; returns their responses."""
        ids = []
        for req in requests:
            method, path = req[0], req[1]
            headers = req[2] if len(req) > 2 else ()
            body = req[3] if len(req) > 3 else None
            ids.append(self.request(method, path, headers, body))
        self.read_until(lambda: all(self.responses[i].done for i in ids) or self.closed, timeout)
        return [self.responses[i] for i in ids]

    def reset(self, sid, code=CANCEL):
        self.conn.reset_stream(sid, error_code=code)
        self.flush()

    def ping(self, data=b"berthtst"):
        self.conn.ping(data)
        self.flush()

    def consume(self, sid, n):
        """Returns `n` bytes of window on `sid` (with `auto_window=False`)."""
        self.conn.acknowledge_received_data(n, sid)
        self.flush()

    def wait_goaway(self, timeout=None):
        """Reads until a GOAWAY arrives (or the connection closes); returns the last one."""
        try:
            self.read_until(lambda: self.goaways or self.closed, timeout)
        except ConnectionClosed:
            pass
        return self.goaways[-1] if self.goaways else None

    def wait_closed(self, timeout=None):
        """True once the server closed the connection (reading and dropping everything)."""
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            while not self.closed and time.monotonic() < end:
                self._read_once(timeout=max(0.01, end - time.monotonic()))
        except ConnectionClosed:
            pass
        return self.closed

    def encode_headers(self, headers):
        """An HPACK block from the connection's own encoder (keeps raw HEADERS in sync)."""
        return self.conn.encoder.encode(headers)


class frames:
    """Hand-made frames (RFC 9113 §4.1 layout) for abuse tests."""

    DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8

    @staticmethod
    def frame(ftype, flags=0, stream=0, payload=b""):
        n = len(payload)
        return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream & 0x7FFFFFFF) + payload

    @classmethod
    def settings(cls, entries=(), ack=False):
        payload = b"".join(struct.pack(">HI", k, v) for k, v in entries)
        return cls.frame(cls.SETTINGS, cls.ACK if ack else 0, 0, payload)

    @classmethod
    def ping(cls, data=b"\0" * 8, ack=False):
        return cls.frame(cls.PING, cls.ACK if ack else 0, 0, data)

    @classmethod
    def rst_stream(cls, stream, code=CANCEL):
        return cls.frame(cls.RST_STREAM, 0, stream, struct.pack(">I", code))

    @classmethod
    def data(cls, stream, payload=b"", end_stream=False, pad=None):
        if pad is None:
            return cls.frame(cls.DATA, cls.END_STREAM if end_stream else 0, stream, payload)
        flags = cls.PADDED | (cls.END_STREAM if end_stream else 0)
        return cls.frame(cls.DATA, flags, stream, bytes([pad]) + payload + b"\0" * pad)

    @classmethod
    def headers(cls, stream, block, end_stream=True, end_headers=True):
        flags = (cls.END_STREAM if end_stream else 0) | (cls.END_HEADERS if end_headers else 0)
        return cls.frame(cls.HEADERS, flags, stream, block)

    @classmethod
    def continuation(cls, stream, block=b"", end_headers=False):
        return cls.frame(cls.CONTINUATION, cls.END_HEADERS if end_headers else 0, stream, block)

    @classmethod
    def window_update(cls, stream, increment):
        return cls.frame(cls.WINDOW_UPDATE, 0, stream, struct.pack(">I", increment & 0x7FFFFFFF))

    @classmethod
    def goaway(cls, last_stream, code=NO_ERROR):
        return cls.frame(cls.GOAWAY, 0, 0, struct.pack(">II", last_stream & 0x7FFFFFFF, code))

    @staticmethod
    def request_block(encoder, method="GET", path="/", authority="localhost", scheme="http", extra=()):
        """HPACK for a request head (`encoder`: `H2Client.conn.encoder` or an `hpack.Encoder`)."""
        return encoder.encode([(":method", method), (":scheme", scheme), (":path", path),
                               (":authority", authority)] + list(extra))


class RawH2:
    """A raw HTTP/2 peer for abuse tests: preface + SETTINGS, then any frames; reads the
    server's frames back (for GOAWAY / RST_STREAM codes) without an h2 state machine, which
    would refuse to send most attacks."""

    def __init__(self, sock, timeout=5.0, ack_settings=True):
        import hpack

        self.sock = sock
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.encoder = hpack.Encoder()
        self.buf = b""
        self.frames = []
        self.closed = False
        self.sock.sendall(PREFACE + frames.settings())
        self.ack_settings = ack_settings

    @classmethod
    def h2c(cls, host, port, timeout=5.0, **kw):
        return cls(socket.create_connection((host, port), timeout=timeout), timeout=timeout, **kw)

    @classmethod
    def tls(cls, host, port, server_name=None, insecure=True, timeout=5.0, **kw):
        return cls(tls_h2_socket(host, port, server_name, None, insecure, timeout), timeout=timeout, **kw)

    def send(self, data):
        """Sends bytes; returns False if the server already closed."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.closed = True
            return False

    def block(self, path="/", method="GET", extra=()):
        return frames.request_block(self.encoder, method, path, extra=extra)

    def read_frames(self, timeout=None):
        """Reads until the server closes or `timeout` passes; returns all frames so far as
        (type, flags, stream, payload)."""
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.closed and time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError, OSError):
                data = b""
            if not data:
                self.closed = True
                break
            self.buf += data
            self._parse()
        return self.frames

    def _parse(self):
        while len(self.buf) >= 9:
            hi, lo, ftype, flags, stream = struct.unpack(">BHBBI", self.buf[:9])
            n = hi << 16 | lo
            if len(self.buf) < 9 + n:
                return
            payload = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            self.frames.append((ftype, flags, stream & 0x7FFFFFFF, payload))
            if ftype == frames.SETTINGS and not flags & frames.ACK and self.ack_settings:
                self.send(frames.settings(ack=True))

    def goaway(self, timeout=None):
        """The server's GOAWAY (waiting for it), or None."""
        self.read_frames(timeout)
        for ftype, _, _, payload in reversed(self.frames):
            if ftype == frames.GOAWAY and len(payload) >= 8:
                last, code = struct.unpack(">II", payload[:8])
                return GoAway(code, last & 0x7FFFFFFF, payload[8:])
        return None

    def resets(self):
        """{stream: error code} of the RST_STREAM frames received so far."""
        return {s: struct.unpack(">I", p[:4])[0] for t, _, s, p in self.frames if t == frames.RST_STREAM}

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _main(argv=None):
    ap = argparse.ArgumentParser(description="GET a path over HTTP/2 (h2c prior knowledge or TLS+ALPN)")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("path", nargs="?", default="/")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--insecure", action="store_true", help="do not verify the certificate")
    ap.add_argument("--sni", default=None)
    a = ap.parse_args(argv)
    if a.tls:
        c = H2Client.tls(a.host, a.port, server_name=a.sni, insecure=a.insecure)
    else:
        c = H2Client.h2c(a.host, a.port)
    with c:
        r = c.get(a.path)
        print(r.status)
        for k, v in r.headers:
            print(f"{k}: {v}")
        print()
        sys.stdout.write(r.body.decode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(_main())

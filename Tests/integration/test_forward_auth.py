"""forward_auth side by side with a real Caddy: the same Caddyfile in front of the same small auth
server (allow/deny by an `X-Token` header or a `session` cookie, 302 to a login page with a body,
401 with a challenge, Remote-User/Remote-Groups/Remote-Email on allow) and the same echo app
(proxy_backends.EchoBackend, which records what it received). Compared per request: status,
selected response headers and the body the client got, what the auth server received (method,
target, X-Forwarded-Method/Uri/Proto/Host/For, body) and what the app received (method, target,
body length, the copied and the spoofed identity headers). Also over h2c against both, HTTP/3
against Berth, and Berth alone: a client that gives up during a slow auth subrequest (HTTP/1.1
and HTTP/2) leaves the server healthy, with the subrequest's upstream connection closed; a slow
auth subrequest does not hold up other requests on the same event loop."""
import base64
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import berth_over_h3, caddy_and_berth, free_port, launch, read_response, tcp_listener
from h2_client import H2Client
from proxy_backends import EchoBackend, Nginx, Reader, ws_frame, ws_read_frame

HERE = Path(__file__).resolve().parent


class AuthServer:
    """A forward-auth server in the spirit of Authelia's /api/verify. The identity is the
    `X-Token` header or the `session` cookie:
      alice     200, Remote-User, two Remote-Groups fields, Remote-Email, a body (dropped)
      nouser    200 without identity fields
      nocontent 204 with Remote-User: nc
      chunky    200 with a chunked body and Remote-User: chunky
      bad       401 with WWW-Authenticate and a body
      (none)    302 to the login page (rd = the X-Forwarded-Uri it got), Set-Cookie, a body
    Every answer carries X-Auth-Saw: what the server received (method, target, X-Forwarded-*,
    Content-Length, body length). /slow* sleeps `delay` seconds first."""

    def __init__(self):
        outer = self
        self.received = []
        self.lock = threading.Lock()

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                self.answer()

            def do_POST(self):
                self.answer()

            def answer(self):
                n = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(n) if n else b""
                url = urllib.parse.urlsplit(self.path)
                with outer.lock:
                    outer.received.append({"method": self.command, "target": self.path,
                                           "headers": list(self.headers.items()), "body_len": len(body)})
                if url.path.startswith("/slow"):
                    time.sleep(float(dict(urllib.parse.parse_qsl(url.query)).get("delay", "3")))
                h = self.headers
                saw = (f"{self.command} {self.path} xfm={h.get('X-Forwarded-Method')} xfu={h.get('X-Forwarded-Uri')} "
                       f"xfp={h.get('X-Forwarded-Proto')} xfh={h.get('X-Forwarded-Host')} xff={h.get('X-Forwarded-For')} "
                       f"cl={h.get('Content-Length')} te={h.get('Transfer-Encoding')} body={len(body)}")
                token = h.get("X-Token")
                if token is None:
                    for part in (h.get("Cookie") or "").split(";"):
                        k, _, v = part.strip().partition("=")
                        if k == "session":
                            token = v
                if token == "alice":
                    self.reply(200, [("Remote-User", "alice"), ("Remote-Groups", "admins"), ("Remote-Groups", "dev"),
                                     ("Remote-Email", "alice@example.com")], b"authorized alice", saw)
                elif token == "nouser":
                    self.reply(200, [], b"ok", saw)
                elif token == "nocontent":
                    self.send_response(204)
                    self.send_header("Remote-User", "nc")
                    self.send_header("X-Auth-Saw", saw)
                    self.end_headers()
                elif token == "chunky":
                    self.send_response(200)
                    self.send_header("Remote-User", "chunky")
                    self.send_header("X-Auth-Saw", saw)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                elif token == "bad":
                    self.reply(401, [("WWW-Authenticate", 'Bearer realm="fa"'), ("Content-Type", "text/plain")],
                               f"denied: {saw}".encode(), saw)
                else:
                    rd = urllib.parse.quote(h.get("X-Forwarded-Uri") or "", safe="")
                    self.reply(302, [("Location", f"https://auth.example.com/login?rd={rd}"),
                                     ("Set-Cookie", "pending=1; Path=/"), ("Content-Type", "text/html")],
                               b"<a href=\"https://auth.example.com/login\">Found</a>", saw)

            def reply(self, status, headers, body, saw):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("X-Auth-Saw", saw)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        # Cancelled subrequests close their connections while the server still sleeps or writes.
        self.httpd.handle_error = lambda request, client_address: None
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def site(auth_port, app_port, dead_port, bind):
    return f"""{{
\tadmin off
\tauto_https off
\tservers {{
\t\tprotocols h1 h2c
\t}}
}}

http://fa.test:{{$PORT}} {{
\tbind {bind}
\tforward_auth /api/* 127.0.0.1:{auth_port} {{
\t\turi /verify?rd=https://fa.test{{path}}&m={{method}}
\t\tcopy_headers Remote-User Remote-Groups>X-Groups {{
\t\t\tRemote-Email
\t\t\tX-Auth-Saw
\t\t}}
\t}}
\tforward_auth /q/* 127.0.0.1:{auth_port} {{
\t\turi /check
\t\tcopy_headers remote-user>X-Who
\t\theader_up X-Forwarded-Uri /overridden{{uri}}
\t}}
\tforward_auth /ws 127.0.0.1:{auth_port} {{
\t\turi /verify
\t\tcopy_headers Remote-User
\t}}
\tforward_auth /down/* 127.0.0.1:{dead_port} {{
\t\turi /verify
\t}}
\terror /missing/* 404
\thandle_errors 502 {{
\t\trespond /down/errors/* "auth down {{err.status_code}}" 502
\t}}
\thandle_errors 404 {{
\t\tforward_auth 127.0.0.1:{auth_port} {{
\t\t\turi /verify
\t\t\tcopy_headers Remote-User
\t\t}}
\t\trespond "not found, {{header.Remote-User}}" 404
\t}}
\treverse_proxy 127.0.0.1:{app_port}
}}
"""


@pytest.fixture(scope="module")
def backends():
    auth = AuthServer()
    app = EchoBackend(name="app")
    dead = free_port()
    yield auth, app, dead
    auth.close()
    app.close()


@pytest.fixture(scope="module")
def servers(backends):
    auth, app, dead = backends
    with caddy_and_berth("berth-fwdauth-", lambda bind: site(auth.port, app.port, dead, bind)) as s:
        yield s


def send(port, method, target, headers=(), body=None):
    lines = [f"{method} {target} HTTP/1.1", "Host: fa.test", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        c.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        status, hs, got, _ = read_response(c, timeout=10)
    finally:
        c.close()
    return status, hs, got


def last(rec, since):
    """What a backend received since `since` (number of records before the request)."""
    with rec.lock:
        return rec.received[since:]


def header(pairs, name):
    vals = [v for k, v in pairs if k.lower() == name.lower()]
    return vals if vals else None


SHOWN = ("location", "www-authenticate", "set-cookie", "content-type", "x-auth-saw")


def exchange(port, backends, method, target, headers=(), body=None):
    auth, app, _ = backends
    na, np = len(auth.received), len(app.received)
    status, hs, got = send(port, method, target, headers, body)
    time.sleep(0.05)
    seen_auth = [{"method": r["method"], "target": r["target"], "body_len": r["body_len"],
                  **{k: header(r["headers"], k) for k in ("X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Proto",
                                                          "X-Forwarded-Host", "X-Forwarded-For", "Content-Length",
                                                          "Remote-User", "X-Token")}}
                 for r in last(auth, na)]
    seen_app = [{"method": r["method"], "target": r["target"], "body_len": r["body_len"],
                 **{k: header(r["headers"], k) for k in ("Remote-User", "X-Groups", "Remote-Groups", "Remote-Email",
                                                         "X-Auth-Saw", "X-Who", "X-Token", "Content-Length")}}
                for r in last(app, np)]
    shown = {k: hs.get(k) for k in SHOWN}
    if seen_app:
        # The app's whoami text: its address, the request line, the fields (in Go's sorted order
        # from Caddy, as received from Berth; Caddy adds Accept-Encoding and names itself in
        # Via) and the body. The request line is compared here, the fields and body above.
        got = got.split(b"\n")[2]
    return {"status": status, "headers": shown, "body": got, "auth": seen_auth, "app": seen_app}


BIG = bytes(range(256)) * 400  # 102,400 bytes

CASES = [
    ("allowed: identity copied, groups joined, renamed", "GET", "/api/a?x=1", [("X-Token", "alice")], None),
    ("allowed by cookie", "GET", "/api/cookie", [("Cookie", "session=alice; other=1")], None),
    ("spoofed Remote-User removed when the answer has none", "GET", "/api/s",
     [("X-Token", "nouser"), ("Remote-User", "mallory"), ("X-Groups", "root"), ("Remote-Email", "m@evil")], None),
    ("spoofed Remote-User replaced", "GET", "/api/s2", [("X-Token", "alice"), ("Remote-User", "mallory")], None),
    ("204 from the auth server lets the request on", "GET", "/api/nc", [("X-Token", "nocontent")], None),
    ("chunked 200 body dropped", "GET", "/api/chunky", [("X-Token", "chunky")], None),
    ("denied: 302 to the login page with body", "GET", "/api/private?p=%2Fx", [], None),
    ("denied: 401 with challenge and body", "GET", "/api/private", [("X-Token", "bad")], None),
    ("denied POST: body never read by anyone", "POST", "/api/form", [("X-Token", "bad"), ("Content-Type", "text/plain")],
     b"secret form data"),
    ("allowed POST: method and body reach the app", "POST", "/api/upload?z=9",
     [("X-Token", "alice"), ("Content-Type", "application/octet-stream")], BIG),
    ("allowed PUT with empty body", "PUT", "/api/put", [("X-Token", "alice")], b""),
    ("uri without query keeps the client's; header_up overrides X-Forwarded-Uri", "GET", "/q/x?a=1&b=two",
     [("X-Token", "alice")], None),
    ("unmatched path: no auth", "GET", "/public", [], None),
    ("auth server down: 502", "GET", "/down/x", [("X-Token", "alice")], None),
    ("forward_auth in handle_errors, auth passes", "GET", "/missing/x", [("X-Token", "alice"), ("Remote-User", "eve")], None),
    ("forward_auth in handle_errors, auth refuses", "GET", "/missing/y", [], None),
    ("auth server down: handle_errors answers", "GET", "/down/errors/x", [], None),
]


@pytest.mark.parametrize("name,method,target,headers,body", CASES, ids=[c[0] for c in CASES])
def test_same_as_caddy(servers, backends, name, method, target, headers, body):
    c = exchange(servers["caddy"], backends, method, target, headers, body)
    b = exchange(servers["berth"], backends, method, target, headers, body)
    assert b == c, f"{name}\ncaddy: {c}\nberth: {b}"
    # And the outcome is the intended one (so that both being wrong the same way fails too).
    if "allowed" in name or "204" in name or "chunked" in name or "uri without" in name:
        assert b["status"] == 200 and len(b["auth"]) == 1 and len(b["app"]) == 1, b
        assert b["auth"][0]["method"] == "GET" and b["auth"][0]["body_len"] == 0, b
        assert b["auth"][0]["X-Forwarded-Method"] == [method], b
        assert b["app"][0]["method"] == method and b["app"][0]["target"] == target, b
        assert b["app"][0]["body_len"] == len(body or b""), b
    if name.startswith("denied"):
        assert b["status"] in (302, 401) and b["app"] == [] and b["body"], b
    if name == "allowed: identity copied, groups joined, renamed":
        app = b["app"][0]
        assert app["Remote-User"] == ["alice"] and app["X-Groups"] == ["admins,dev"] and app["Remote-Groups"] is None, app
        assert b["auth"][0]["target"] == "/verify?rd=https://fa.test%2Fapi%2Fa&m=GET", b
        assert b["auth"][0]["X-Forwarded-Uri"] == ["/api/a?x=1"], b
    if name.startswith("spoofed Remote-User removed"):
        assert b["app"][0]["Remote-User"] is None and b["app"][0]["X-Groups"] is None, b
    if name == "denied: 302 to the login page with body":
        assert b["headers"]["location"] == ["https://auth.example.com/login?rd=%2Fapi%2Fprivate%3Fp%3D%252Fx"], b
    if name == "forward_auth in handle_errors, auth passes":
        assert b["status"] == 404 and b["body"] == b"not found, alice", b
    if name == "forward_auth in handle_errors, auth refuses":
        assert b["status"] == 302, b
    if name.startswith("auth server down"):
        assert b["status"] == 502 and b["app"] == [], b


@pytest.mark.parametrize("token", ["alice", None], ids=["allowed", "denied"])
def test_websocket_after_auth(servers, backends, token):
    """A WebSocket upgrade goes through the auth subrequest first (the auth server sees the
    upgrade request's fields, as from Caddy); allowed, the app's 101 and the tunnel follow, with
    the identity copied; denied, the client gets the 302 and no tunnel."""
    auth, app, _ = backends
    out = {}
    for who in ("caddy", "berth"):
        na, np = len(auth.received), len(app.received)
        c = socket.create_connection(("127.0.0.1", servers[who]), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"X-Token: {token}\r\nRemote-User: mallory\r\n" if token else ""
        c.sendall(("GET /ws HTTP/1.1\r\nHost: fa.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
        r = Reader(c)
        _, status, _, headers = r.read_head()
        echoed = None
        if status == "101":
            c.sendall(ws_frame(1, b"hello through auth", mask=os.urandom(4)))
            echoed = ws_read_frame(r)
            c.sendall(ws_frame(8, b"\x03\xe8", mask=b"abcd"))
            ws_read_frame(r)
        c.close()
        time.sleep(0.05)
        seen_auth = [(x["method"], header(x["headers"], "Upgrade"), header(x["headers"], "Connection"))
                     for x in last(auth, na)]
        # The echo app records a WebSocket request only when it ends; its own 101 is the proof.
        h = {k.lower(): v for k, v in headers}
        out[who] = (status, h.get("location"), echoed, seen_auth)
    assert out["berth"] == out["caddy"], out
    if token:
        assert out["berth"][0] == "101" and out["berth"][2] == (1, b"hello through auth"), out
    else:
        assert out["berth"][0] == "302" and out["berth"][2] is None, out


@pytest.mark.parametrize("token", ["alice", "bad", None], ids=["allowed", "401", "302"])
def test_head_after_auth(servers, backends, token):
    """HEAD: the auth server is asked with GET (its answer has a body), the client's answer to
    HEAD has none; a request pipelined behind it is read from the right place."""
    out = {}
    for who in ("caddy", "berth"):
        c = socket.create_connection(("127.0.0.1", servers[who]), timeout=5)
        tok = f"X-Token: {token}\r\n" if token else ""
        c.sendall((f"HEAD /api/h HTTP/1.1\r\nHost: fa.test\r\n{tok}\r\n"
                   "GET /public HTTP/1.1\r\nHost: fa.test\r\nConnection: close\r\n\r\n").encode())
        r = Reader(c)
        _, status, _, headers = r.read_head()
        h = {k.lower(): v for k, v in headers}
        _, status2, _, headers2 = r.read_head()
        h2 = {k.lower(): v for k, v in headers2}
        body2 = r.exact(int(h2["content-length"]))
        c.close()
        out[who] = (status, h.get("content-length"), h.get("location"), status2, body2.split(b"\n")[2])
    assert out["berth"] == out["caddy"], out
    assert out["berth"][3] == "200" and out["berth"][4] == b"GET /public HTTP/1.1", out


def curl_h2c(port, target, headers=(), body=None):
    args = ["curl", "-s", "--http2-prior-knowledge", "-o", "-", "-D", "/dev/stderr", "--max-time", "10",
            "-H", "Host: fa.test"]
    for k, v in headers:
        args += ["-H", f"{k}: {v}"]
    if body is not None:
        args += ["--data-binary", "@-"]
    r = subprocess.run(args + [f"http://127.0.0.1:{port}{target}"], input=body, capture_output=True, timeout=20)
    head = r.stderr.decode("latin-1").split("\r\n")
    assert head[0].startswith("HTTP/2 "), r.stderr
    hs = {}
    for l in head[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            hs.setdefault(k.strip().lower(), []).append(v.strip())
    return int(head[0].split(" ")[1]), hs, r.stdout


@pytest.mark.parametrize("target,headers,body", [
    ("/api/h2?x=1", [("X-Token", "alice"), ("Remote-User", "mallory")], None),
    ("/api/h2post", [("X-Token", "alice")], BIG),
    ("/api/h2deny", [], None),
    ("/api/h2bad", [("X-Token", "bad")], None),
    ("/down/x", [], None),
], ids=["allowed", "post-body", "302", "401", "down"])
def test_h2c_same_as_caddy(servers, backends, target, headers, body):
    auth, app, _ = backends
    out = {}
    for who in ("caddy", "berth"):
        np = len(app.received)
        status, hs, got = curl_h2c(servers[who], target, headers, body)
        time.sleep(0.05)
        seen = [(r["method"], r["target"], r["body_len"], header(r["headers"], "Remote-User"),
                 header(r["headers"], "X-Groups")) for r in last(app, np)]
        out[who] = (status, {k: hs.get(k) for k in ("location", "www-authenticate", "x-auth-saw")},
                    got if not seen else b"", seen)
    assert out["berth"] == out["caddy"], out
    if "deny" in target:
        assert out["berth"][0] == 302
    if target == "/api/h2post":
        assert out["berth"][3] == [("POST", "/api/h2post", len(BIG), ["alice"], ["admins,dev"])], out


def berth_alone(tmp_path, auth, app, extra_env=None):
    """Berth alone (h1 + h2c) with a slow forward_auth (/slow/*, 4 s) and a quick one (/api/*)."""
    cf = tmp_path / "Caddyfile"
    cf.write_text(f"{{\n\tadmin off\n\tauto_https off\n\tservers {{\n\t\tprotocols h1 h2c\n\t}}\n}}\n\n"
                  f"http://fa.test {{\n\tbind fd/3\n"
                  f"\tforward_auth /slow/* 127.0.0.1:{auth.port} {{\n\t\turi /slow?delay=4\n\t\tcopy_headers Remote-User\n\t}}\n"
                  f"\tforward_auth /api/* 127.0.0.1:{auth.port} {{\n\t\turi /verify\n\t\tcopy_headers Remote-User\n\t}}\n"
                  f"\treverse_proxy 127.0.0.1:{app.port}\n}}\n")
    lsock = tcp_listener()
    port = lsock.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[lsock], env=extra_env or {})
    assert p.alive(), p.stderr()
    return p, port


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid):
    out = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            out.append((fd, os.readlink(f"/proc/{pid}/fd/{fd}")))
        except OSError:
            pass
    return out


def established_to(port):
    """TCP connections in ESTABLISHED state whose remote end is 127.0.0.1:port (the proxy's
    side of the auth subrequests)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[3] == "01" and parts[2] == f"0100007F:{port:04X}":
                n += 1
    return n


def upstream_sockets(pid, ports):
    """`pid`'s TCP sockets (any state) whose remote end is one of `ports` on loopback."""
    out = subprocess.run(["ss", "-Htanp"], capture_output=True, text=True).stdout
    n = 0
    for line in out.splitlines():
        cols = line.split()
        if f"pid={pid}," in line and len(cols) >= 5 and cols[4].rsplit(":", 1)[-1] in {str(p) for p in ports}:
            n += 1
    return n


def test_client_abort_during_slow_auth(tmp_path, backends):
    """Clients that go away while the auth server is still thinking (HTTP/1.1 close, HTTP/2
    RST_STREAM and connection close): the subrequests are cancelled (their upstream connections
    closed at once, long before the auth server would answer), no descriptor is left behind, and
    the server goes on answering."""
    _, app, _ = backends
    auth = AuthServer()  # its own: no other proxy keeps connections to it
    # One loop: keep-alive pools are per loop, so the descriptor count is comparable.
    p, port = berth_alone(tmp_path, auth, app, {"BERTH_LOOPS": "1"})
    pid = p.p.pid
    try:
        assert send(port, "GET", "/api/warm", [("X-Token", "alice")])[0] == 200
        time.sleep(0.3)
        # Idle keep-alive connections to the auth server and the app come and go with their
        # servers' own timeouts: only the other descriptors must come back to the baseline.
        upstream_ports = (auth.port, app.port)
        base_fds = open_fds(pid) - upstream_sockets(pid, upstream_ports)
        base_conns = established_to(auth.port)
        clients = []
        for i in range(8):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(f"POST /slow/{i} HTTP/1.1\r\nHost: fa.test\r\nX-Token: alice\r\nContent-Length: 10\r\n\r\n0123".encode())
            clients.append(c)
        h2 = H2Client.h2c("127.0.0.1", port, authority="fa.test")
        sids = [h2.request("GET", f"/slow/h2-{i}", [("x-token", "alice")]) for i in range(4)]
        deadline = time.time() + 3
        while established_to(auth.port) < 12 and time.time() < deadline:
            time.sleep(0.05)
        assert established_to(auth.port) >= 12, "the slow subrequests did not all reach the auth server"
        assert len(auth.received) == 13, len(auth.received)
        for c in clients:
            c.close()
        for sid in sids[:2]:
            h2.reset(sid)
        h2.flush()
        time.sleep(0.2)
        h2.close()
        # The auth server sleeps 4 s per request: cancelled subrequests must be gone well before.
        deadline = time.time() + 1.5
        while established_to(auth.port) > 2 and time.time() < deadline:
            time.sleep(0.05)
        # The two h2 streams that were not reset went with their connection.
        assert established_to(auth.port) <= base_conns, "subrequest connections to the auth server left open"
        assert p.alive(), p.stderr()
        status, _, body = send(port, "GET", "/api/after", [("X-Token", "alice")])
        assert status == 200 and b"Remote-User: alice" in body, body
        deadline = time.time() + 2
        while open_fds(pid) - upstream_sockets(pid, upstream_ports) > base_fds and time.time() < deadline:
            time.sleep(0.1)
        assert open_fds(pid) - upstream_sockets(pid, upstream_ports) <= base_fds, (base_fds, fd_targets(pid))
    finally:
        p.stop()
        auth.close()


def test_slow_auth_does_not_block_the_loop(tmp_path, backends):
    """One event loop: while a subrequest waits 4 s for the auth server, other requests (through
    forward_auth too) are answered at once."""
    _, app, _ = backends
    auth = AuthServer()
    p, port = berth_alone(tmp_path, auth, app, {"BERTH_LOOPS": "1"})
    try:
        result = {}

        def slow():
            result["slow"] = send(port, "GET", "/slow/x", [("X-Token", "alice")])

        t = threading.Thread(target=slow)
        t0 = time.time()
        t.start()
        time.sleep(0.3)
        for i in range(5):
            s = time.time()
            status, _, body = send(port, "GET", f"/api/fast{i}", [("X-Token", "alice")])
            assert status == 200 and b"Remote-User: alice" in body
            assert time.time() - s < 1.0, "a request waited behind the slow auth subrequest"
        t.join(10)
        assert result["slow"][0] == 200 and b"Remote-User: alice" in result["slow"][2]
        assert time.time() - t0 >= 3.9
    finally:
        p.stop()
        auth.close()


@pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import aioquic"], capture_output=True).returncode != 0,
                    reason="aioquic is not installed")
def test_http3(tmp_path, backends):
    """HTTP/3 clients go through the same subrequest and resumption (Berth only: aioquic against
    Berth's local CA): allowed with the identity copied and a spoofed one replaced, a POST body
    reaching the app after the auth, the 302 passed through with its Location and body."""
    auth, app, _ = backends
    with berth_over_h3(tmp_path, f"\tforward_auth 127.0.0.1:{auth.port} {{\n\t\turi /verify\n"
                                 f"\t\tcopy_headers Remote-User Remote-Groups\n\t}}\n"
                                 f"\treverse_proxy 127.0.0.1:{app.port}\n") as (p, uport, ca):

        def h3(path, headers=(), data=None):
            args = [sys.executable, str(HERE / "h3get.py"), "-v", "--cafile", str(ca), "--timeout", "15"]
            for h in headers:
                args += ["-H", h]
            if data is not None:
                f = tmp_path / "body"
                f.write_bytes(data)
                args += ["-X", "POST", "--data-file", str(f)]
            np = len(app.received)
            r = subprocess.run(args + [f"https://localhost:{uport}{path}"], capture_output=True, timeout=30)
            time.sleep(0.05)
            return r, last(app, np)

        r, seen = h3("/a?b=1", ["X-Token: alice", "Remote-User: mallory"])
        assert b"status=200" in r.stderr, r.stderr
        assert len(seen) == 1 and header(seen[0]["headers"], "Remote-User") == ["alice"], seen
        assert header(seen[0]["headers"], "Remote-Groups") == ["admins,dev"], seen
        r, seen = h3("/upload", ["X-Token: alice"], BIG)
        assert b"status=200" in r.stderr, r.stderr
        assert len(seen) == 1 and seen[0]["method"] == "POST" and seen[0]["body_len"] == len(BIG), seen
        r, seen = h3("/private")
        assert b"status=302" in r.stderr and b"location: https://auth.example.com/login?rd=%2Fprivate\n" in r.stderr, r.stderr
        assert r.stdout.startswith(b"<a href=") and seen == [], (r.stdout, seen)


@pytest.mark.skipif(shutil.which("h2load") is None or shutil.which("nginx") is None, reason="needs h2load and nginx")
def test_many_concurrent_subrequests(tmp_path):
    """Many requests at once through forward_auth (nginx as the auth server and the app, h2load as
    the client, HTTP/1.1 and h2c): every one gets the auth server's decision, the allowed ones
    reach the app with the copied identity, and afterwards no connection or descriptor is left
    beyond the keep-alive pools."""
    auth = Nginx(extra_server='location /verify { if ($http_x_token = "alice") { add_header Remote-User alice; '
                              'return 200 "ok"; } return 302 https://auth.example.com/login; }')
    app = Nginx(extra_server='location /api/ { default_type text/plain; return 200 "user=$http_remote_user\\n"; }')
    cf = tmp_path / "Caddyfile"
    cf.write_text(f"{{\n\tadmin off\n\tauto_https off\n\tservers {{\n\t\tprotocols h1 h2c\n\t}}\n}}\n\n"
                  f"http:// {{\n\tbind fd/3\n"
                  f"\tforward_auth /api/* 127.0.0.1:{auth.port} {{\n\t\turi /verify\n\t\tcopy_headers Remote-User\n\t}}\n"
                  f"\treverse_proxy 127.0.0.1:{app.port}\n}}\n")
    lsock = tcp_listener()
    port = lsock.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[lsock])
    try:
        assert p.alive(), p.stderr()
        base_fds = open_fds(p.p.pid)

        def load(extra, token):
            args = ["h2load", "-n", "3000", "-c", "16", "-m", "4"] + extra
            if token:
                args += ["-H", f"x-token: {token}"]
            r = subprocess.run(args + [f"http://127.0.0.1:{port}/api/x"], capture_output=True, text=True, timeout=120)
            m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", r.stdout)
            assert m, r.stdout + r.stderr
            return tuple(int(x) for x in m.groups())

        assert load(["--h1"], "alice") == (3000, 0, 0, 0)
        assert load([], "alice") == (3000, 0, 0, 0)
        assert load(["--h1"], None) == (0, 3000, 0, 0)
        assert load([], "nobody") == (0, 3000, 0, 0)
        status, _, body = send(port, "GET", "/api/one", [("X-Token", "alice"), ("Remote-User", "mallory")])
        assert status == 200 and body == b"user=alice\n", body
        assert p.alive(), p.stderr()
        # Keep-alive pools may hold up to 32 idle connections per upstream per loop.
        deadline = time.time() + 3
        while open_fds(p.p.pid) > base_fds + 2 * 32 * 2 and time.time() < deadline:
            time.sleep(0.1)
        assert open_fds(p.p.pid) <= base_fds + 2 * 32 * 2, fd_targets(p.p.pid)
    finally:
        p.stop()
        auth.close()
        app.close()

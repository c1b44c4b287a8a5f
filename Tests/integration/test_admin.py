"""Lifecycle: the admin API on a unix socket, `berth reload` / `stop` / `healthcheck`, reload
by signal with the sd_notify sequence, reloads under load, and graceful stop."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import launch, raw_exchange, run_cli, tcp_listener, write_caddyfile


def site(admin, label, extra=""):
    return f"""{{
\tadmin {admin}
}}

http:// {{
\tbind fd/3 {{
\t\tprotocols h1
\t}}
\trespond "{label}
"{extra}
}}
"""


def hello(port):
    return raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def admin_request(path, method, url, headers=None, body=b""):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    h = {"Host": "127.0.0.1", "Connection": "close", "Content-Length": str(len(body))}
    h.update(headers or {})
    req = f"{method} {url} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    s.sendall(req.encode() + body)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    head, _, rest = out.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, head.decode(), rest


@pytest.fixture
def admin_server(tmp_path):
    sock = str(tmp_path / "admin.sock")
    cf = write_caddyfile(tmp_path, site(f"unix/{sock}", "v1"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    assert p.alive(), p.stderr()
    yield p, cf, sock, tmp_path
    p.stop()


def test_admin_socket_created_with_caddy_mode(admin_server):
    p, cf, sock, _ = admin_server
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o200


def test_reload_cli_over_unix_socket(admin_server):
    p, cf, sock, tmp = admin_server
    assert hello(p.port).endswith(b"v1\n")
    write_caddyfile(tmp, site(f"unix/{sock}", "v2"))
    r = run_cli(["reload", "--config", str(cf), "--address", f"unix/{sock}", "--force"])
    assert r.returncode == 0, r.stderr + p.stderr()
    assert hello(p.port).endswith(b"v2\n")


def test_reload_reads_address_from_config(admin_server):
    p, cf, sock, tmp = admin_server
    write_caddyfile(tmp, site(f"unix/{sock}", "v3"))
    r = run_cli(["reload", "--config", str(cf)])
    assert r.returncode == 0, r.stderr
    assert hello(p.port).endswith(b"v3\n")


def test_broken_reload_keeps_old_config_and_reports(admin_server):
    p, cf, sock, tmp = admin_server
    # Adapted locally first: a syntax error never reaches the server.
    write_caddyfile(tmp, site(f"unix/{sock}", "v1", extra="\n\tnot_a_directive"))
    r = run_cli(["reload", "--config", str(cf), "--force"])
    assert r.returncode == 1 and "unrecognized directive: not_a_directive" in r.stderr
    # An error only the server can see (an fd that was not inherited) comes back as the
    # server's error, and the old config keeps serving.
    write_caddyfile(tmp, site(f"unix/{sock}", "bad").replace("fd/3", "fd/9"))
    r = run_cli(["reload", "--config", str(cf), "--address", f"unix/{sock}", "--force"])
    assert r.returncode == 1
    assert "HTTP 400" in r.stderr and "fd/9" in r.stderr and "not inherited" in r.stderr, r.stderr
    assert hello(p.port).endswith(b"v1\n")


def test_load_api_caddyfile_and_errors(admin_server):
    p, cf, sock, tmp = admin_server
    body = site(f"unix/{sock}", "api").encode()
    st, head, rest = admin_request(sock, "POST", "/load", {"Content-Type": "text/caddyfile"}, body)
    assert st == 200, rest
    assert hello(p.port).endswith(b"api\n")
    st, head, rest = admin_request(sock, "POST", "/load", {"Content-Type": "application/json"}, b"{}")
    assert st == 400 and "error" in json.loads(rest)
    st, head, rest = admin_request(sock, "GET", "/load")
    assert st == 405 and json.loads(rest) == {"error": "method not allowed"}
    st, head, rest = admin_request(sock, "POST", "/load", {"Content-Type": "text/caddyfile"}, b"http:// {\n\tbogus\n}\n")
    assert st == 400 and "unrecognized directive: bogus" in json.loads(rest)["error"]
    assert hello(p.port).endswith(b"api\n")


def test_config_endpoint_and_traversal(admin_server):
    p, cf, sock, _ = admin_server
    st, head, rest = admin_request(sock, "GET", "/config/")
    assert st == 200 and "application/json" in head and rest.endswith(b"\n")
    cfg = json.loads(rest)
    assert cfg["apps"]["http"]["servers"]["srv0"]["listen"] == ["fd/3"]
    st, _, rest = admin_request(sock, "GET", "/config/apps/http/servers/srv0/listen")
    assert st == 200 and json.loads(rest) == ["fd/3"]
    st, _, rest = admin_request(sock, "GET", "/config/nope/x")
    assert st == 400 and "invalid traversal path" in json.loads(rest)["error"]
    st, _, rest = admin_request(sock, "GET", "/nothing-here")
    assert st == 404


def test_origin_is_refused_on_unix_socket(admin_server):
    p, cf, sock, _ = admin_server
    st, _, rest = admin_request(sock, "GET", "/config/", {"Origin": "http://evil"})
    assert st == 403 and "evil" in json.loads(rest)["error"]


def test_healthcheck_cli(admin_server):
    p, cf, sock, _ = admin_server
    r = run_cli(["healthcheck", "--address", f"unix/{sock}"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "ok"


def test_stop_cli_exits_zero_and_removes_socket(admin_server):
    p, cf, sock, _ = admin_server
    r = run_cli(["stop", "--address", f"unix/{sock}"])
    assert r.returncode == 0, r.stderr
    assert p.p.wait(10) == 0, p.stderr()
    assert not os.path.exists(sock)


def test_admin_on_inherited_fd(tmp_path):
    path = str(tmp_path / "inherited-admin.sock")
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(path)
    u.listen(16)
    cf = write_caddyfile(tmp_path, site("fd/4", "fdadmin"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener(), u])
    try:
        st, _, rest = admin_request(path, "GET", "/config/admin")
        assert st == 200 and json.loads(rest) == {"listen": "fd/4"}
        write_caddyfile(tmp_path, site("fd/4", "fdadmin2"))
        st, _, rest = admin_request(path, "POST", "/load", {"Content-Type": "text/caddyfile"}, cf.read_bytes())
        assert st == 200, rest
        assert hello(p.port).endswith(b"fdadmin2\n")
    finally:
        p.stop()


def recv_event(rec):
    """The next sd_notify datagram that is not a live status update (STATUS= alone, sent every
    few seconds when the connection counts change)."""
    while True:
        m = rec.recv(4096).decode()
        if not all(l.startswith("STATUS=") for l in m.split("\n") if l):
            return m


def test_sighup_with_admin_off_and_notify_reload_sequence(tmp_path):
    rec = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    npath = str(tmp_path / "notify.sock")
    rec.bind(npath)
    rec.settimeout(10)
    cf = write_caddyfile(tmp_path, site("off", "s1"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()], env={"NOTIFY_SOCKET": npath})
    try:
        msgs = []
        while not any("READY=1" in m for m in msgs):
            msgs.append(recv_event(rec))
        write_caddyfile(tmp_path, site("off", "s2"))
        p.send_signal(signal.SIGHUP)
        m1 = recv_event(rec).split("\n")
        assert m1[0] == "RELOADING=1" and m1[1].startswith("MONOTONIC_USEC="), m1
        m2 = recv_event(rec)
        assert "READY=1" in m2 and "STATUS=" in m2, m2
        assert hello(p.port).endswith(b"s2\n")
        # A broken file: the old config serves and STATUS says why.
        write_caddyfile(tmp_path, "http:// {\n\tbroken_here\n}\n")
        p.send_signal(signal.SIGHUP)
        assert recv_event(rec).startswith("RELOADING=1")
        m = recv_event(rec)
        assert "READY=1" in m and "STATUS=reload failed:" in m and "broken_here" in m, m
        assert hello(p.port).endswith(b"s2\n")
    finally:
        p.stop()
        rec.close()


def test_listener_change_on_reload(tmp_path):
    """A reload may add or remove listeners: inherited fds stay open, new ones start serving."""
    a, b = tcp_listener(), tcp_listener()
    pa, pb = a.getsockname()[1], b.getsockname()[1]
    cf = write_caddyfile(tmp_path, site("off", "one"))
    p = launch(["run", "--config", str(cf)], sockets=[a, b])
    try:
        assert hello(pa).endswith(b"one\n")
        write_caddyfile(tmp_path, site("off", "two").replace("fd/3", "fd/4"))
        p.send_signal(signal.SIGHUP)
        p.wait_log(lambda e: e.get("msg") == "config reloaded")
        assert hello(pb).endswith(b"two\n")
        write_caddyfile(tmp_path, site("off", "three"))
        p.send_signal(signal.SIGHUP)
        p.wait_log(lambda e: e.get("msg") == "config reloaded" and e.get("changed") and "three" in open(cf).read())
        time.sleep(0.2)
        assert hello(pa).endswith(b"three\n")
    finally:
        p.stop()


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk not installed")
def test_100_reloads_under_load_lose_nothing(tmp_path):
    sock = str(tmp_path / "admin.sock")
    cf = write_caddyfile(tmp_path, site(f"unix/{sock}", "load"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener(backlog=4096)])
    try:
        w = subprocess.Popen(["wrk", "-t1", "-c20", "-d8s", f"http://127.0.0.1:{p.port}/"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        body = cf.read_bytes()
        for i in range(100):
            st, _, rest = admin_request(sock, "POST", "/load", {"Content-Type": "text/caddyfile", "Cache-Control": "must-revalidate"}, body)
            assert st == 200, rest
            time.sleep(0.04)
        out, _ = w.communicate(timeout=30)
        assert "Socket errors" not in out, out
        assert "Non-2xx" not in out, out
        total = int(out.split(" requests in")[0].split()[-1])
        assert total > 1000, out
    finally:
        p.stop()


def test_reverse_proxy_upstreams_like_caddy(tmp_path):
    """`GET /reverse_proxy/upstreams` lists every upstream address once (shared by two sites
    here), with the requests in flight to it, as a real Caddy does; other methods get 405."""
    import http.client
    import threading
    from conftest import free_port
    from proxy_backends import EchoBackend

    caddy = shutil.which("caddy")
    slow = socket.socket()
    slow.bind(("127.0.0.1", 0))
    slow.listen(16)  # accepts (in the kernel) and never answers: requests stay in flight
    slow_port = slow.getsockname()[1]
    echo = EchoBackend()

    def caddyfile(admin, bind):
        return (f"{{\n\tadmin {admin}\n\tauto_https off\n}}\n"
                f"http://:{{$PORT}} {{\n\tbind {bind}\n\thandle /slow {{\n\t\treverse_proxy 127.0.0.1:{slow_port}\n\t}}\n"
                f"\treverse_proxy localhost:{echo.port} unix/{tmp_path}/none.sock {{\n\t\tlb_policy first\n\t}}\n}}\n"
                f"http://:{{$PORT2}} {{\n\tbind {bind}\n\treverse_proxy 127.0.0.1:{slow_port}\n}}\n")

    def upstreams(admin_get):
        st, body = admin_get("GET")
        assert st == 200, body
        return {u["address"]: u for u in json.loads(body)}

    def check(admin_get, site_port):
        expected = {f"127.0.0.1:{slow_port}", f"localhost:{echo.port}", f"unix/{tmp_path}/none.sock"}
        got = upstreams(admin_get)
        assert set(got) == expected, got
        assert all(set(u) == {"address", "num_requests", "fails"} for u in got.values()), got
        assert all(u["num_requests"] == 0 for u in got.values()), got
        held = []
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", site_port), timeout=5)
            c.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(c)
        deadline = time.monotonic() + 5
        while upstreams(admin_get)[f"127.0.0.1:{slow_port}"]["num_requests"] != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstreams(admin_get)[f"127.0.0.1:{slow_port}"]["num_requests"] == 2
        for c in held:
            c.close()
        deadline = time.monotonic() + 5
        while upstreams(admin_get)[f"127.0.0.1:{slow_port}"]["num_requests"] != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstreams(admin_get)[f"127.0.0.1:{slow_port}"]["num_requests"] == 0
        assert admin_get("POST")[0] == 405

    try:
        # Berth, admin on a unix socket.
        sock = str(tmp_path / "admin.sock")
        a, b = tcp_listener(), tcp_listener()
        site_port = a.getsockname()[1]
        cf = write_caddyfile(tmp_path, caddyfile(f"unix/{sock}", "fd/3").replace("{$PORT2}", "9").replace(
            "bind fd/3\n\treverse_proxy 127.0.0.1", "bind fd/4\n\treverse_proxy 127.0.0.1"))
        p = launch(["run", "--config", str(cf)], sockets=[a, b], env={"PORT": "1"})
        try:
            check(lambda m: admin_request(sock, m, "/reverse_proxy/upstreams")[::2], site_port)
        finally:
            p.stop()
        if caddy is None:
            return
        # Caddy, the same sites, admin on TCP.
        admin_port, p1, p2 = free_port(), free_port(), free_port()
        (tmp_path / "caddy").mkdir()
        ccf = tmp_path / "caddy" / "Caddyfile"
        ccf.write_text(caddyfile(f"127.0.0.1:{admin_port}", "127.0.0.1"))
        env = dict(os.environ, PORT=str(p1), PORT2=str(p2), XDG_DATA_HOME=str(tmp_path / "caddy" / "d"),
                   XDG_CONFIG_HOME=str(tmp_path / "caddy" / "c"))
        cp = subprocess.Popen([caddy, "run", "--config", str(ccf)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            def caddy_get(method):
                deadline = time.monotonic() + 10
                while True:
                    try:
                        conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
                        conn.request(method, "/reverse_proxy/upstreams", headers={"Host": f"127.0.0.1:{admin_port}"})
                        r = conn.getresponse()
                        return r.status, r.read()
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
            caddy_get("GET")
            check(caddy_get, p1)
        finally:
            cp.terminate()
            cp.wait(10)
    finally:
        slow.close()
        echo.close()

"""Berth's own JSON (what `berth adapt` prints) as a config: `POST /load` with
application/json over the unix admin socket (curl), a broken JSON keeps the old config, Caddy's
JSON (from a real `caddy adapt`) gets a clear 400, `berth run/validate/reload --config x.json`.
Plus the admin endpoint's socket rules: octal mode, stale vs live socket files, Host/Origin on
TCP."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, free_port, launch, run_cli, tcp_listener, write_caddyfile
from test_admin import admin_request, admin_server, hello, site  # noqa: F401 (admin_server: fixture)

GOLDEN = ROOT / "Tests" / "ConfigTests" / "Golden"


def adapt_to(tmp, caddyfile_text, name):
    """`berth adapt` of `caddyfile_text`; writes and returns the JSON file."""
    cf = write_caddyfile(tmp, caddyfile_text, name=name + ".caddyfile")
    r = run_cli(["adapt", "--config", str(cf), "--pretty"])
    assert r.returncode == 0, r.stderr
    out = Path(tmp) / (name + ".json")
    out.write_text(r.stdout)
    return out


def curl_load(sock, path, content_type):
    r = subprocess.run(["curl", "-sS", "--unix-socket", sock, "-H", f"Content-Type: {content_type}",
                        "--data-binary", f"@{path}", "-w", "\n%{http_code}", "http://localhost/load"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.rpartition("\n")
    return int(code), body


def test_load_adapt_output_with_curl_switches_the_config(admin_server):
    p, cf, sock, tmp = admin_server
    assert hello(p.port).endswith(b"v1\n")
    j = adapt_to(tmp, site(f"unix/{sock}", "from json"), "v2")
    code, body = curl_load(sock, j, "application/json")
    assert code == 200, body + p.stderr()
    assert hello(p.port).endswith(b"from json\n")
    # The running config is exactly what was loaded.
    st, _, rest = admin_request(sock, "GET", "/config/")
    assert st == 200 and json.loads(rest) == json.loads(j.read_text())
    # And /config/ output loads again as is (unchanged: 200, still serving).
    (tmp / "again.json").write_bytes(rest)
    code, body = curl_load(sock, tmp / "again.json", "application/json")
    assert code == 200, body
    assert hello(p.port).endswith(b"from json\n")


def test_broken_json_keeps_old_config_and_answers_400(admin_server):
    p, cf, sock, tmp = admin_server
    good = json.loads(adapt_to(tmp, site(f"unix/{sock}", "never"), "broken").read_text())
    route = good["apps"]["http"]["servers"]["srv0"]["routes"][0]["handle"][0]["routes"][0]
    route["handle"][0]["status_code"] = "two hundred"
    bad = tmp / "bad.json"
    bad.write_text(json.dumps(good))
    code, body = curl_load(sock, bad, "application/json")
    assert code == 400, body
    err = json.loads(body)["error"]
    assert "apps.http.servers.srv0.routes[0].handle[0].routes[0].handle[0].status_code" in err, err
    assert hello(p.port).endswith(b"v1\n")
    # Unknown keys and syntax errors too.
    good["apps"]["http"]["servers"]["srv0"]["routes"][0]["handle"][0]["routes"][0]["handle"][0] = {
        "handler": "static_response", "status_code": 200, "bodyy": "x"}
    bad.write_text(json.dumps(good))
    code, body = curl_load(sock, bad, "application/json")
    assert code == 400 and "handle[0].bodyy: unknown field" in json.loads(body)["error"], body
    bad.write_text('{"apps": {,}}')
    code, body = curl_load(sock, bad, "application/json")
    assert code == 400 and "invalid JSON at line 1, column 11" in json.loads(body)["error"], body
    # A JSON that decodes but cannot be served (fd/9 was not inherited): 400, old config serves.
    broken = adapt_to(tmp, site(f"unix/{sock}", "bad").replace("fd/3", "fd/9"), "fd9")
    code, body = curl_load(sock, broken, "application/json")
    assert code == 400 and "fd/9" in json.loads(body)["error"], body
    assert hello(p.port).endswith(b"v1\n")


@pytest.mark.skipif(not shutil.which("caddy"), reason="caddy not installed")
def test_caddy_json_gets_a_clear_400(admin_server):
    p, cf, sock, tmp = admin_server
    ccf = write_caddyfile(tmp, ":8080 {\n\trespond caddy\n}\n", name="Caddyfile.caddy")
    r = subprocess.run(["caddy", "adapt", "--config", str(ccf), "--adapter", "caddyfile"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    cj = tmp / "caddy.json"
    cj.write_text(r.stdout)
    assert "apps" in json.loads(r.stdout) and "berth" not in json.loads(r.stdout)
    code, body = curl_load(sock, cj, "application/json")
    assert code == 400, body
    err = json.loads(body)["error"]
    assert "Caddy's JSON config" in err and "text/caddyfile" in err and "berth adapt" in err, err
    assert hello(p.port).endswith(b"v1\n")
    # The CLI refuses it locally with the same words.
    r = run_cli(["validate", "--config", str(cj)])
    assert r.returncode == 1 and "Caddy's JSON config" in r.stderr, r.stderr


def test_unsupported_content_type_is_refused(admin_server):
    p, cf, sock, tmp = admin_server
    st, _, rest = admin_request(sock, "POST", "/load", {"Content-Type": "text/plain"}, b"x")
    assert st == 400 and "text/caddyfile" in json.loads(rest)["error"] and "application/json" in json.loads(rest)["error"]


def test_run_validate_reload_and_sighup_with_json(tmp_path):
    sock = str(tmp_path / "admin.sock")
    j = adapt_to(tmp_path, site(f"unix/{sock}", "json run"), "run")
    r = run_cli(["validate", "--config", str(j)])
    assert r.returncode == 0 and "Valid configuration" in r.stdout, r.stderr
    # --adapter json for a file not named *.json, like Caddy's CLI.
    other = tmp_path / "config.conf"
    other.write_text(j.read_text())
    assert run_cli(["validate", "--config", str(other), "--adapter", "json"]).returncode == 0
    r = run_cli(["validate", "--config", str(other), "--adapter", "yaml"])
    assert r.returncode == 1 and "unsupported adapter 'yaml'" in r.stderr
    p = launch(["run", "--config", str(j)], sockets=[tcp_listener()])
    try:
        assert p.alive(), p.stderr()
        assert hello(p.port).endswith(b"json run\n")
        # berth reload --config x.json sends application/json.
        j2 = adapt_to(tmp_path, site(f"unix/{sock}", "json reload"), "reload")
        r = run_cli(["reload", "--config", str(j2), "--address", f"unix/{sock}"])
        assert r.returncode == 0, r.stderr + p.stderr()
        assert hello(p.port).endswith(b"json reload\n")
        # SIGHUP re-reads the JSON file given to run.
        j.write_text(adapt_to(tmp_path, site(f"unix/{sock}", "json sighup"), "sighup").read_text())
        p.send_signal(signal.SIGHUP)
        p.wait_log(lambda e: e.get("msg") == "config reloaded" and e.get("signal") == "SIGHUP")
        assert hello(p.port).endswith(b"json sighup\n")
        # A broken JSON file on SIGHUP: the old config keeps serving.
        j.write_text('{"berth": {"version": 1}, "apps": {"http": {"servers": {"srv0": {"listen": 3}}}}}')
        p.send_signal(signal.SIGHUP)
        p.wait_log(lambda e: e.get("msg") == "reload failed; keeping the old config"
                   and "apps.http.servers.srv0.listen: expected array" in e.get("error", ""))
        assert hello(p.port).endswith(b"json sighup\n")
    finally:
        p.stop()


def golden_inputs():
    names = sorted(p.stem for p in GOLDEN.glob("*.caddyfile") if (GOLDEN / (p.stem + ".json")).exists())
    return [GOLDEN / (n + ".caddyfile") for n in names] + sorted((GOLDEN / "examples").glob("example*.Caddyfile"))


def test_validate_agrees_for_every_golden_and_example(tmp_path):
    """`berth validate` gives the same verdict for each golden Caddyfile and its adapt JSON
    (both build the whole runtime: handlers, TLS contexts, certificates)."""
    env = {"SITE": "example.com", "PORT": "8080", "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    checked = 0
    for cf in golden_inputs():
        r = run_cli(["adapt", "--config", str(cf)], env=env)
        assert r.returncode == 0, f"{cf.name}: {r.stderr}"
        j = tmp_path / (cf.stem + ".json")
        j.write_text(r.stdout)
        vc = run_cli(["validate", "--config", str(cf)], env=env)
        vj = run_cli(["validate", "--config", str(j)], env=env)
        assert vc.returncode == vj.returncode, f"{cf.name}: caddyfile {vc.stderr!r} vs json {vj.stderr!r}"
        if vc.returncode != 0:
            # Same failure; only the location differs (FILE:LINE vs the JSON path).
            def error_line(stderr):
                return [l for l in stderr.splitlines() if l.startswith("Error: ")][-1]
            ec, ej = error_line(vc.stderr), error_line(vj.stderr)
            assert ec.split(", at ")[0].split(": ", 2)[-1] in ej, f"{cf.name}: {ec!r} vs {ej!r}"
        # And adapt of the JSON prints the same JSON.
        ra = run_cli(["adapt", "--config", str(j)], env=env)
        assert ra.returncode == 0 and ra.stdout == r.stdout, cf.name
        checked += 1
    assert checked >= 40


# Admin endpoint socket rules (issue 8, Deliver 1).

def test_admin_unix_socket_mode_from_the_address(tmp_path):
    sock = str(tmp_path / "admin.sock")
    cf = write_caddyfile(tmp_path, site(f"unix/{sock}|0660", "mode"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    finally:
        p.stop()


def test_stale_admin_socket_is_replaced_but_a_live_one_is_not(tmp_path):
    sock = str(tmp_path / "admin.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()  # the file stays; nobody listens: stale
    cf = write_caddyfile(tmp_path, site(f"unix/{sock}", "stale"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        assert p.alive(), p.stderr()
        st, _, rest = admin_request(sock, "GET", "/config/admin")
        assert st == 200 and json.loads(rest) == {"listen": f"unix/{sock}"}
        # A second instance must not steal the live socket of the first.
        q = launch(["run", "--config", str(cf)], sockets=[tcp_listener()], wait_ready=False)
        assert q.p.wait(10) == 1
        assert "another process is listening on it" in q.stderr(), q.stderr()
        st, _, _ = admin_request(sock, "GET", "/health")
        assert st == 200
    finally:
        p.stop()
    # A regular file at the path is never removed.
    plain = tmp_path / "plain.sock"
    plain.write_text("data")
    cf2 = write_caddyfile(tmp_path, site(f"unix/{plain}", "x"), name="Caddyfile2")
    q = launch(["run", "--config", str(cf2)], sockets=[tcp_listener()], wait_ready=False)
    assert q.p.wait(10) == 1
    assert plain.read_text() == "data"


def test_tcp_admin_checks_host_and_origin(tmp_path):
    port = free_port()
    cf = write_caddyfile(tmp_path, site(f"127.0.0.1:{port}", "tcp"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])

    def req(headers):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        h = {"Connection": "close"}
        h.update(headers)
        s.sendall(("GET /config/admin HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode())
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
        s.close()
        head, _, body = out.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body

    try:
        st, body = req({"Host": f"127.0.0.1:{port}"})
        assert st == 200 and json.loads(body) == {"listen": f"127.0.0.1:{port}"}
        st, body = req({"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"})
        assert st == 200, body
        st, body = req({"Host": "evil.example:80"})
        assert st == 403 and "host not allowed" in json.loads(body)["error"]
        st, body = req({"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"})
        assert st == 403 and "evil.example" in json.loads(body)["error"]
        st, body = req({"Host": f"127.0.0.1:{port}", "Origin": "null"})
        assert st == 400
    finally:
        p.stop()


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk not installed")
def test_100_json_loads_under_load_lose_nothing(tmp_path):
    sock = str(tmp_path / "admin.sock")
    j = adapt_to(tmp_path, site(f"unix/{sock}", "load"), "load")
    p = launch(["run", "--config", str(j)], sockets=[tcp_listener(backlog=4096)])
    try:
        w = subprocess.Popen(["wrk", "-t1", "-c20", "-d6s", f"http://127.0.0.1:{p.port}/"], stdout=subprocess.PIPE, text=True)
        import time
        time.sleep(0.5)
        body = j.read_bytes()
        for _ in range(100):
            st, _, rest = admin_request(sock, "POST", "/load", {"Content-Type": "application/json", "Cache-Control": "must-revalidate"}, body)
            assert st == 200, rest
            time.sleep(0.03)
        out, _ = w.communicate(timeout=30)
        assert "Socket errors" not in out and "Non-2xx" not in out, out
        assert int(out.split(" requests in")[0].split()[-1]) > 1000, out
        st, _, rest = admin_request(sock, "GET", "/health")
        assert st == 200 and json.loads(rest)["reloads"] == 100
    finally:
        p.stop()


def test_shutdown_delay_keeps_serving_after_stopping(tmp_path):
    """SIGTERM: STOPPING=1 at once, requests still served during shutdown_delay, then exit 0."""
    import time
    rec = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    npath = str(tmp_path / "notify.sock")
    rec.bind(npath)
    rec.settimeout(10)
    cf = write_caddyfile(tmp_path, "{\n\tadmin off\n\tshutdown_delay 1500ms\n}\n\nhttp:// {\n\tbind fd/3 {\n\t\tprotocols h1\n\t}\n\trespond \"delayed\n\"\n}\n")
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()], env={"NOTIFY_SOCKET": npath})
    try:
        while "READY=1" not in rec.recv(4096).decode():
            pass
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in rec.recv(4096).decode():
            pass
        assert time.monotonic() - t0 < 1.0
        assert hello(p.port).endswith(b"delayed\n")  # still serving inside the delay
        assert p.p.wait(10) == 0, p.stderr()
        assert time.monotonic() - t0 >= 1.4
    finally:
        p.stop()
        rec.close()

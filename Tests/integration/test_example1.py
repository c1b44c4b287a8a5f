"""Seed Example 1, unchanged, under the real systemd-socket-activate."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BERTH, Proc, Spawned, free_port, read_response, seed_caddyfile

SSA = shutil.which("systemd-socket-activate")


def start_ssa(args, port, env_extra=None):
    if not SSA:
        pytest.skip("systemd-socket-activate not installed")
    tmp = tempfile.mkdtemp(prefix="berth-ssa-")
    err = os.path.join(tmp, "stderr.log")
    cmd = [SSA, "-l", f"127.0.0.1:{port}"]
    for k, v in (env_extra or {}).items():
        cmd += ["-E", f"{k}={v}"]
    cmd += [BERTH, *args]
    errf = open(err, "wb")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf, start_new_session=True)
    errf.close()
    # systemd-socket-activate listens first, then execs Berth on the first connection.
    end = time.time() + 5
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    return Proc(p, err, [port], tmp)


def get(port, path="/", host=None, method="GET"):
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    h = host or f"localhost:{port}"
    c.sendall(f"{method} {path} HTTP/1.1\r\nHost: {h}\r\nUser-Agent: t\r\n\r\n".encode())
    st, hd, body, _ = read_response(c)
    c.close()
    return st, hd, body


def test_example1_hello_world_unchanged():
    cf = seed_caddyfile(1)
    port = free_port()
    p = start_ssa(["run", "--config", str(cf)], port)
    try:
        out = subprocess.run(["curl", "-s", "-S", "--max-time", "5", f"http://localhost:{port}/"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr + p.stderr()
        assert out.stdout == "Hello world\n"
        st, hd, body = get(port)
        assert st == 200
        assert hd["content-type"] == ["text/plain; charset=utf-8"]
        assert hd["content-length"] == ["12"]
        assert "date" in hd and "server" in hd
        # HEAD: same head, no body.
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(f"HEAD / HTTP/1.1\r\nHost: localhost:{port}\r\n\r\nGET / HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        end = time.time() + 3
        while data.count(b"HTTP/1.1 200") < 2 and time.time() < end:
            data += c.recv(65536)
        c.close()
        first, second = data.split(b"HTTP/1.1 200", 2)[1:]
        assert b"Content-Length: 12" in first and not first.split(b"\r\n\r\n", 1)[1]
        assert second.endswith(b"Hello world\n")
    finally:
        rc = p.stop(signal.SIGTERM)
    assert rc == 0, p.stderr()


def test_example1_access_log_is_caddy_shaped():
    cf = seed_caddyfile(1)
    port = free_port()
    p = start_ssa(["run", "--config", str(cf)], port)
    try:
        get(port, "/some/path?q=1")
        entry = p.wait_log(lambda e: e.get("logger") == "http.log.access" and e["request"]["uri"] == "/some/path?q=1")
        assert entry["level"] == "info"
        assert entry["msg"] == "handled request"
        r = entry["request"]
        assert r["remote_ip"] == "127.0.0.1" and r["client_ip"] == "127.0.0.1"
        assert r["remote_port"].isdigit()
        assert r["proto"] == "HTTP/1.1" and r["method"] == "GET"
        assert r["host"] == f"localhost:{port}"
        assert r["headers"] == {"User-Agent": ["t"]}
        assert entry["status"] == 200 and entry["size"] == 12 and entry["bytes_read"] == 0
        assert isinstance(entry["ts"], float) and isinstance(entry["duration"], float)
        assert entry["resp_headers"]["Content-Type"] == ["text/plain; charset=utf-8"]
    finally:
        p.stop()


def test_unknown_host_gets_empty_200_like_caddy():
    cf = seed_caddyfile(1)
    port = free_port()
    p = start_ssa(["run", "--config", str(cf)], port)
    try:
        st, hd, body = get(port, host="other.example")
        assert st == 200 and body == b"" and hd["content-length"] == ["0"]
        assert "content-type" not in hd
    finally:
        p.stop()

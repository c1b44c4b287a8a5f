"""Inherited sockets: by number and by name, start-up errors that name the Caddyfile line and
what was inherited, sd_notify messages recorded from a real NOTIFY_SOCKET."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import launch, loop_cpu_ns, raw_exchange, tcp_listener, udp_socket, write_caddyfile

SITE = """{{
\tadmin off
}}

http:// {{
\tbind {bind} {{
\t\tprotocols h1
\t}}
\trespond "ok {label}
"
}}
"""


def hello(port):
    return raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def start_fail(args, **kw):
    p = launch(args, wait_ready=False, **kw)
    rc = p.p.wait(10)
    return rc, p.stderr()


def test_bind_by_number_and_second_fd(tmp_path):
    cf = write_caddyfile(tmp_path, SITE.format(bind="fd/4", label="four"))
    a, b = tcp_listener(), tcp_listener()
    pa, pb = a.getsockname()[1], b.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[a, b])
    try:
        assert hello(pb).endswith(b"ok four\n")
        # fd 3 was inherited but not configured: nothing accepts there.
        s = socket.create_connection(("127.0.0.1", pa), timeout=2)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recv(10)
        s.close()
    finally:
        p.stop()


def test_bind_by_name_in_any_order(tmp_path):
    cf = write_caddyfile(tmp_path, SITE.format(bind="fdname/web", label="named"))
    a, b = tcp_listener(), tcp_listener()
    pb = b.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[a, b], names=["other", "web"])
    try:
        assert hello(pb).endswith(b"ok named\n")
    finally:
        p.stop()


def test_bind_by_name_with_index(tmp_path):
    cf = write_caddyfile(tmp_path, SITE.format(bind="fdname/web/1", label="idx"))
    a, b = tcp_listener(), tcp_listener()
    pb = b.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[a, b], names=["web", "web"])
    try:
        assert hello(pb).endswith(b"ok idx\n")
    finally:
        p.stop()


def test_error_fd_not_inherited_names_line_and_inventory(tmp_path):
    cf = write_caddyfile(tmp_path, SITE.format(bind="fd/9", label="x"))
    rc, err = start_fail(["run", "--config", str(cf)], sockets=[tcp_listener()], names=["web"])
    assert rc == 1
    assert "Caddyfile:6" in err, err
    assert "9" in err and "not inherited" in err
    assert "fd 3" in err and "web" in err, err


def test_error_stream_used_as_fdgram(tmp_path):
    text = SITE.format(bind="fdgram/3", label="x").replace("protocols h1", "protocols h3")
    cf = write_caddyfile(tmp_path, text)
    rc, err = start_fail(["run", "--config", str(cf)], sockets=[tcp_listener()])
    assert rc == 1 and "Caddyfile:6" in err and "stream" in err, err


def test_error_datagram_used_as_fd(tmp_path):
    cf = write_caddyfile(tmp_path, SITE.format(bind="fd/3", label="x"))
    rc, err = start_fail(["run", "--config", str(cf)], sockets=[udp_socket()])
    assert rc == 1 and "Caddyfile:6" in err and "datagram" in err, err


def test_error_not_a_socket(tmp_path):
    cf = write_caddyfile(tmp_path, SITE.format(bind="fd/3", label="x"))
    f = open(tmp_path / "plain.txt", "w+")
    rc, err = start_fail(["run", "--config", str(cf)], sockets=[f.fileno()])
    f.close()
    assert rc == 1 and "Caddyfile:6" in err and "not a socket" in err, err


def test_error_listen_pid_mismatch(tmp_path):
    cf = write_caddyfile(tmp_path, SITE.format(bind="fd/3", label="x"))
    rc, err = start_fail(["run", "--config", str(cf)], sockets=[tcp_listener()], listen_pid=1)
    assert rc == 1 and "LISTEN_PID" in err and "Caddyfile:6" in err, err


def test_fdgram_is_validated_while_h3_is_pending(tmp_path):
    text = """{
\tadmin off
}

http:// {
\tbind fd/3 {
\t\tprotocols h1
\t}
\tbind fdgram/4 {
\t\tprotocols h3
\t}
\trespond "ok
"
}
"""
    cf = write_caddyfile(tmp_path, text)
    a = tcp_listener()
    p = launch(["run", "--config", str(cf)], sockets=[a, udp_socket()])
    try:
        assert hello(p.port).endswith(b"ok\n")
        assert "fdgram/4" in p.stderr()
    finally:
        p.stop()


def test_default_page_on_every_inherited_socket(tmp_path):
    a, b = tcp_listener(), tcp_listener()
    pa, pb = a.getsockname()[1], b.getsockname()[1]
    p = launch(["run"], sockets=[a, b], cwd=str(tmp_path))
    try:
        for port in (pa, pb):
            out = hello(port)
            assert out.startswith(b"HTTP/1.1 200") and b"Berth is running" in out
            assert b"text/html; charset=utf-8" in out
    finally:
        p.stop()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sd_notify_ready_status_stopping(tmp_path, abstract):
    rec = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "berth-test-%d-%d" % (os.getpid(), time.time_ns())
        rec.bind("\0" + name)
        notify = "@" + name
    else:
        path = str(tmp_path / "notify.sock")
        rec.bind(path)
        notify = path
    rec.settimeout(10)
    cf = write_caddyfile(tmp_path, SITE.format(bind="fd/3", label="n"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()], env={"NOTIFY_SOCKET": notify})
    try:
        first = rec.recv(4096).decode()
        # Like Caddy, a config load is bracketed by RELOADING=1 ... READY=1, the first one too.
        assert first.split("\n")[0] == "RELOADING=1", first
        assert any(l.startswith("MONOTONIC_USEC=") for l in first.split("\n")), first
        msg = rec.recv(4096).decode()
        lines = msg.split("\n")
        assert "READY=1" in lines, msg
        assert any(l.startswith("STATUS=") and "fd/3" in l for l in lines), msg
        # READY comes only once the listener serves: a request right now must succeed.
        assert hello(p.port).endswith(b"ok n\n")
        p.send_signal(15)
        msgs = []
        while True:
            m = rec.recv(4096).decode()
            msgs.append(m)
            if "STOPPING=1" in m:
                break
        assert p.p.wait(10) == 0, p.stderr()
    finally:
        p.stop()
        rec.close()


def test_sighup_reload_keeps_serving_and_bad_reload_keeps_old(tmp_path):
    cf = write_caddyfile(tmp_path, SITE.format(bind="fd/3", label="v1"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        assert hello(p.port).endswith(b"ok v1\n")
        write_caddyfile(tmp_path, SITE.format(bind="fd/3", label="v2"))
        p.send_signal(1)
        p.wait_log(lambda e: e.get("msg") == "config reloaded")
        assert hello(p.port).endswith(b"ok v2\n")
        write_caddyfile(tmp_path, "http:// {\n\tbogus_directive\n}\n")
        p.send_signal(1)
        e = p.wait_log(lambda e: e.get("msg", "").startswith("reload failed"))
        assert "Caddyfile:2" in e["error"], e
        assert hello(p.port).endswith(b"ok v2\n")
    finally:
        p.stop()


def test_connections_spread_over_loops_on_one_inherited_socket(tmp_path):
    """One inherited listening socket, two loops: keep-alive connections opened one after the
    other (each accepted while the other loop sleeps, so the kernel's exclusive wake-up always
    picks the same loop) still end up spread over both loops, and both share the work. With
    all connections on one loop, a proxy in front of busy keep-alive clients used one core."""
    if not Path(f"/proc/{os.getpid()}/sched").exists():
        pytest.skip("no /proc/PID/sched on this kernel: cannot see per-thread CPU time")
    cf = write_caddyfile(tmp_path, SITE.format(bind="fd/3", label="spread"))
    a = tcp_listener()
    port = a.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[a], env={"BERTH_LOOPS": "2"})
    conns = []
    try:
        req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
            s.sendall(req)
            got = b""
            while not got.endswith(b"ok spread\n"):
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk
            conns.append(s)
            time.sleep(0.01)
        before = loop_cpu_ns(p.p.pid)
        assert sorted(before) == ["berth-loop-0", "berth-loop-1"], before
        for _ in range(150):
            for s in conns:
                s.sendall(req * 4)
            for s in conns:
                got = b""
                while got.count(b"ok spread\n") < 4:
                    chunk = s.recv(65536)
                    assert chunk, got
                    got += chunk
        after = loop_cpu_ns(p.p.pid)
        used = {k: after[k] - before[k] for k in after}
        total = sum(used.values())
        assert total > 0, used
        for k, v in used.items():
            assert v >= 0.25 * total, (used, "one loop served almost every connection")
    finally:
        for s in conns:
            s.close()
        p.stop()


def test_live_status_counts_connections_and_remembers_a_failed_reload(tmp_path):
    """Under a service manager, STATUS= (what `systemctl status` shows) is refreshed when the
    connection counts change, and after a failed reload it keeps saying so until a reload
    succeeds."""
    rec = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    rec.bind(path)
    rec.settimeout(15)
    cf = write_caddyfile(tmp_path, SITE.format(bind="fd/3", label="live"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()], env={"NOTIFY_SOCKET": path})

    def next_status(pred):
        end = time.time() + 15
        seen = []
        while time.time() < end:
            m = rec.recv(4096).decode()
            seen.append(m)
            st = [l[len("STATUS="):] for l in m.split("\n") if l.startswith("STATUS=")]
            if st and pred(st[0]):
                return st[0]
        raise AssertionError(seen)

    try:
        next_status(lambda s: s.startswith("serving fd/3"))
        for _ in range(3):
            assert hello(p.port).endswith(b"ok live\n")
        s = next_status(lambda s: "accepted" in s)
        assert "0 open connections, 3 accepted" in s, s
        write_caddyfile(tmp_path, "http:// {\n\tbroken_here\n}\n")
        p.send_signal(1)
        next_status(lambda s: s.startswith("reload failed:"))
        assert hello(p.port).endswith(b"ok live\n")
        s = next_status(lambda s: "4 accepted" in s)
        assert "last reload failed:" in s and "broken_here" in s, s
    finally:
        p.stop()
        rec.close()

"""`--exit-idle` / BERTH_EXIT_IDLE: under socket activation Berth stops by itself after a quiet
period, and the next instance (started by the service manager on the next connection) serves
what arrived in the listen backlog meanwhile — Berth on demand (users.md: caddy#6642)."""
import socket
import threading
import time

from conftest import free_port, launch, run_cli, tcp_listener, write_caddyfile

SITE = "{\n\tadmin off\n}\n\nhttp:// {\n\tbind fd/3\n\trespond \"on demand\"\n}\n"


def get(port, keep=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + (b"" if keep else b"Connection: close\r\n") + b"\r\n")
    data = b""
    while b"on demand" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    if keep:
        return s, data
    s.close()
    return data


def wait_exit(p, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if not p.alive():
            return True
        time.sleep(0.05)
    return False


def test_exits_when_idle_and_the_next_instance_serves_the_backlog(tmp_path):
    cf = write_caddyfile(tmp_path, SITE)
    t = tcp_listener()  # the service manager's socket: it outlives every instance
    port = t.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[t.fileno()], env={"BERTH_EXIT_IDLE": "1s"})
    assert p.alive(), p.stderr()
    assert get(port).endswith(b"on demand")
    started = time.time()
    assert wait_exit(p, 10), p.stderr()
    assert time.time() - started >= 0.9
    assert p.stop() == 0, p.stderr()
    assert "exiting: idle" in p.stderr() and "shutdown complete" in p.stderr()
    # A client arriving while nothing runs waits in the backlog of the socket the manager holds…
    got = {}
    th = threading.Thread(target=lambda: got.setdefault("r", get(port)))
    th.start()
    time.sleep(0.3)
    assert "r" not in got
    # …and the next instance on the same socket answers it.
    p2 = launch(["run", "--config", str(cf), "--exit-idle", "30s"], sockets=[t.fileno()])
    th.join(10)
    try:
        assert got.get("r", b"").endswith(b"on demand"), (got, p2.stderr())
    finally:
        p2.stop()
        t.close()


def test_an_open_connection_keeps_it_running(tmp_path):
    cf = write_caddyfile(tmp_path, SITE)
    t = tcp_listener()
    port = t.getsockname()[1]
    p = launch(["run", "--config", str(cf), "--exit-idle", "500ms"], sockets=[t.fileno()])
    try:
        s, data = get(port, keep=True)
        assert data.endswith(b"on demand")
        time.sleep(2)
        assert p.alive(), p.stderr()  # an idle keep-alive connection is still a client
        # New connections (each closed at once) keep resetting the clock too.
        for _ in range(6):
            assert get(port).endswith(b"on demand")
            time.sleep(0.2)
        assert p.alive()
        s.close()
        assert wait_exit(p, 10), p.stderr()
        assert p.stop() == 0
    finally:
        p.stop()
        t.close()


def test_off_when_berth_binds_a_listener_itself(tmp_path):
    port = free_port()
    cf = write_caddyfile(tmp_path, "{\n\tadmin off\n}\n\nhttp://127.0.0.1:%d {\n\trespond \"self-bound\\n\"\n}\n" % port)
    p = launch(["run", "--config", str(cf), "--exit-idle", "300ms"])
    try:
        p.wait_log(lambda x: x.get("msg", "").startswith("exit when idle is off"), timeout=5)
        time.sleep(1.2)
        assert p.alive(), p.stderr()  # exiting would take the port away
        assert "exit when idle is off" in p.stderr() and ":%d\"" % port in p.stderr()
    finally:
        p.stop()


def test_bad_duration_is_a_clear_error(tmp_path):
    cf = write_caddyfile(tmp_path, SITE)
    r = run_cli(["run", "--config", str(cf), "--exit-idle", "soon"])
    assert r.returncode == 1 and "invalid exit-idle duration 'soon'" in r.stderr, r.stderr

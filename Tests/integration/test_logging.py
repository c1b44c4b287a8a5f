"""The `log` global option and directive: access logs in files, json vs console (compared with a
real Caddy side by side), level filtering of Berth's own logs, size-based rolling with Caddy's
backup names, reloads switching outputs, and `storage file_system` moving the data directory."""
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BERTH, free_port, launch, raw_exchange, run_cli, tcp_listener, write_caddyfile

CADDY = shutil.which("caddy")
# Caddy's console line: wall time (UTC, ms), colored capital level, logger, message, fields.
CONSOLE = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3})\t\x1b\[3\dm([A-Z]+)\x1b\[0m\t(\S+)\t([^\t]+)\t(\{.*\})$")
# timberjack's backup name: NAME-2006-01-02T15-04-05.000-size.EXT[.gz]
BACKUP = re.compile(r"^access-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}-size\.log(\.gz)?$")


def config(log_block, global_block="", listen="bind fd/3 {\n\t\tprotocols h1\n\t}"):
    return f"""{{
\tadmin off
{global_block}
}}

http://localhost {{
\t{listen}
{log_block}
\trespond "hello"
}}
"""


def get(port, n=1, big=0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": "localhost"}
    if big:
        headers["X-Big"] = "a" * big
    for _ in range(n):
        c.request("GET", "/x", headers=headers)
        r = c.getresponse()
        assert r.read() == b"hello"
    c.close()


def wait_for(pred, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def lines(path):
    try:
        return [l for l in Path(path).read_text(errors="replace").splitlines() if l.strip()]
    except FileNotFoundError:
        return []


def start(tmp_path, text, wait_ready=True):
    cf = write_caddyfile(tmp_path, text)
    sock = tcp_listener()
    port = sock.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[sock], wait_ready=wait_ready)
    return p, port, cf


def test_access_log_lands_in_file_as_json(tmp_path):
    log = tmp_path / "logs" / "access.log"
    p, port, _ = start(tmp_path, config(f"\tlog {{\n\t\toutput file {log}\n\t}}"))
    try:
        get(port, 3)
        got = wait_for(lambda: len(lines(log)) >= 3 and lines(log))
        entries = [json.loads(l) for l in got]
        assert len(entries) == 3
        for e in entries:
            assert e["logger"] == "http.log.access.log0" and e["msg"] == "handled request"
            assert e["status"] == 200 and e["request"]["uri"] == "/x" and e["level"] == "info"
        # Caddy's default for a new log file is mode 0600, and the default log excludes this one.
        assert oct(os.stat(log).st_mode & 0o777) == "0o600"
        assert not p.access_logs(), "access entries leaked to stderr"
    finally:
        p.stop()


def caddy_console_line(tmp_path):
    """One console access line from a real Caddy for the same kind of request."""
    port = free_port()
    log = tmp_path / "caddy-access.log"
    cf = write_caddyfile(tmp_path, config(f"\tlog {{\n\t\toutput file {log}\n\t\tformat console\n\t}}",
                                          listen=f"bind 127.0.0.1"
                                          ).replace("http://localhost {", f"http://localhost:{port} {{"),
                         name="Caddyfile.caddy")
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "cd"), "XDG_CONFIG_HOME": str(tmp_path / "cc"),
           "PATH": os.environ.get("PATH", "")}
    proc = subprocess.Popen([CADDY, "run", "--config", str(cf)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        ok = wait_for(lambda: _connects(port), 10)
        assert ok, "caddy did not start"
        get(port)
        return wait_for(lambda: lines(log) and lines(log)[0])
    finally:
        proc.terminate()
        proc.wait(10)


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_console_format_matches_caddy(tmp_path):
    log = tmp_path / "access.log"
    p, port, _ = start(tmp_path, config(f"\tlog {{\n\t\toutput file {log}\n\t\tformat console\n\t}}"))
    try:
        get(port)
        line = wait_for(lambda: lines(log) and lines(log)[0])
    finally:
        p.stop()
    m = CONSOLE.match(line)
    assert m, repr(line)
    assert m.group(2) == "INFO" and m.group(3) == "http.log.access.log0" and m.group(4) == "handled request"
    ts = time.strptime(m.group(1)[:19], "%Y/%m/%d %H:%M:%S")
    assert abs(time.mktime(ts) - time.mktime(time.gmtime())) < 120, "console time is UTC wall time"
    fields = json.loads(m.group(5))
    assert '"request": {"remote_ip": "127.0.0.1", "remote_port": "' in m.group(5), "zap spacing after : and ,"
    if CADDY:
        theirs = caddy_console_line(tmp_path)
        tm = CONSOLE.match(theirs)
        assert tm, repr(theirs)
        assert tm.group(2) == m.group(2) and tm.group(3) == m.group(3) and tm.group(4) == m.group(4)
        tf = json.loads(tm.group(5))
        assert list(tf.keys()) == list(fields.keys())
        assert list(tf["request"].keys()) == list(fields["request"].keys())


def test_level_filters_berths_own_logs(tmp_path):
    main = tmp_path / "main.log"
    g = f"\tlog {{\n\t\toutput file {main}\n\t\tlevel ERROR\n\t}}"
    p, port, cf = start(tmp_path, config("", global_block=g), wait_ready=False)
    try:
        assert wait_for(lambda: _connects(port), 10)
        get(port)
        time.sleep(0.3)
        # Info lines (start-up) are filtered; stderr only says where the default log went.
        assert lines(main) == [], lines(main)
        assert any(e.get("msg") == "redirected default logger" and e.get("to") == str(main) for e in p.log_lines())
        assert not any(e.get("msg") == "serving initial configuration" for e in p.log_lines())
        cf.write_text(cf.read_text() + "\nbroken_here {\n")
        p.send_signal(signal.SIGHUP)
        err = wait_for(lambda: [json.loads(l) for l in lines(main)])
        assert err and err[0]["level"] == "error" and err[0]["msg"] == "reload failed; keeping the old config", err
        assert all(e["level"] == "error" for e in err)
        get(port)  # still serving the old config
    finally:
        p.stop()


def test_level_info_keeps_info_lines_in_console_format(tmp_path):
    main = tmp_path / "main.log"
    g = f"\tlog {{\n\t\toutput file {main}\n\t\tformat console\n\t}}"
    p, port, _ = start(tmp_path, config("", global_block=g), wait_ready=False)
    try:
        found = wait_for(lambda: [l for l in lines(main) if "serving initial configuration" in l])
        assert found and "\t\x1b[34mINFO\x1b[0m\t" in found[0], lines(main)
    finally:
        p.stop()


def roll_config(log, extra):
    return config(f"\tlog {{\n\t\toutput file {log} {{\n\t\t\troll_size 1MiB\n\t\t\troll_keep 2\n{extra}\t\t}}\n\t}}")


def backups(d):
    return sorted(n for n in os.listdir(d) if n.startswith("access-"))


@pytest.mark.parametrize("gz", [False, True])
def test_rolling_keeps_roll_keep_files(tmp_path, gz):
    d = tmp_path / "logs"
    log = d / "access.log"
    p, port, _ = start(tmp_path, roll_config(log, "" if gz else "\t\t\troll_uncompressed\n"))
    try:
        # ~3.4 MiB of entries: three rolls at 1 MiB, of which roll_keep 2 survive.
        for _ in range(6):
            get(port, 70, big=8000)
        want_suffix = ".log.gz" if gz else ".log"
        names = wait_for(lambda: (lambda b: len(b) == 2 and all(n.endswith(want_suffix) for n in b) and b)(backups(d)),
                         timeout=10)
        assert names, backups(d)
        for n in names:
            assert BACKUP.match(n), n
            assert oct(os.stat(d / n).st_mode & 0o777) == "0o600"
        assert os.path.getsize(log) <= 1 << 20
        if gz:
            body = gzip.decompress((d / names[-1]).read_bytes()).decode()
            size = len(body.encode())
        else:
            body = (d / names[-1]).read_text()
            size = os.path.getsize(d / names[-1])
        assert 1_000_000 < size <= 1 << 20, size
        assert all(json.loads(l)["status"] == 200 for l in body.splitlines())
    finally:
        p.stop()
    if CADDY and not gz:
        # Side by side: Caddy keeps the same number of backups with the same name shape.
        cd = tmp_path / "caddy"
        cd.mkdir()
        cport = free_port()
        text = roll_config(cd / "access.log", "\t\t\troll_uncompressed\n").replace(
            "bind fd/3 {\n\t\tprotocols h1\n\t}", "bind 127.0.0.1").replace("http://localhost {", f"http://localhost:{cport} {{")
        cf = write_caddyfile(cd, text)
        env = {"HOME": str(cd), "XDG_DATA_HOME": str(cd / "d"), "XDG_CONFIG_HOME": str(cd / "c"),
               "PATH": os.environ.get("PATH", "")}
        proc = subprocess.Popen([CADDY, "run", "--config", str(cf)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: _connects(cport), 10)
            for _ in range(6):
                get(cport, 70, big=8000)
            theirs = wait_for(lambda: len(backups(cd)) == 2 and backups(cd), 10)
        finally:
            proc.terminate()
            proc.wait(10)
        assert theirs and all(BACKUP.match(n) for n in theirs), theirs


def test_reload_switches_output(tmp_path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    p, port, cf = start(tmp_path, config(f"\tlog {{\n\t\toutput file {a}\n\t}}"))
    try:
        get(port)
        assert wait_for(lambda: len(lines(a)) == 1)
        cf.write_text(config(f"\tlog {{\n\t\toutput file {b}\n\t\tformat console\n\t}}"))
        p.send_signal(signal.SIGHUP)
        p.wait_log(lambda e: e.get("msg") == "config reloaded")
        get(port, 2)
        got = wait_for(lambda: len(lines(b)) == 2 and lines(b))
        assert got and all(CONSOLE.match(l) for l in got), got
        assert len(lines(a)) == 1, "old file still written after the reload"
    finally:
        p.stop()


def test_storage_file_system_moves_the_data_directory(tmp_path):
    root = tmp_path / "store"
    xdg = tmp_path / "xdg"
    text = f"""{{
\tadmin off
\tstorage file_system {{
\t\troot {root}
\t}}
}}

https://localhost {{
\tbind fd/3
\ttls internal
\trespond "secure"
}}
"""
    cf = write_caddyfile(tmp_path, text)
    r = run_cli(["validate", "--config", str(cf)], env={"HOME": str(tmp_path), "XDG_DATA_HOME": str(xdg)})
    assert r.returncode == 0, r.stderr
    assert (root / "pki" / "authorities" / "local" / "root.crt").exists()
    assert not (xdg / "berth").exists()
    # Other storage modules are refused with file:line.
    write_caddyfile(tmp_path, text.replace("storage file_system {", "storage consul {"))
    r = run_cli(["validate", "--config", str(cf)], env={"HOME": str(tmp_path), "XDG_DATA_HOME": str(xdg)})
    assert r.returncode == 1
    assert f"storage module 'consul' is not supported by this Berth build (only file_system), at {cf}:3" in r.stderr


def test_unopenable_log_file_fails_reload_and_keeps_old_config(tmp_path):
    a = tmp_path / "a.log"
    p, port, cf = start(tmp_path, config(f"\tlog {{\n\t\toutput file {a}\n\t}}"))
    try:
        cf.write_text(config("\tlog {\n\t\toutput file /proc/berth-cannot-create/x.log\n\t}"))
        p.send_signal(signal.SIGHUP)
        e = p.wait_log(lambda e: e.get("msg") == "reload failed; keeping the old config")
        assert "setting up custom log 'log0': opening log writer /proc/berth-cannot-create/x.log" in e["error"], e
        get(port)
        assert wait_for(lambda: len(lines(a)) == 1), "old log no longer written"
    finally:
        p.stop()


def _run_with_stderr(tmp_path, caddyfile, journal_stream):
    """Berth with stderr on a file; JOURNAL_STREAM set from that file's device:inode (as systemd
    does for a stream it connected to the journal) or to another value."""
    cf = write_caddyfile(tmp_path, caddyfile)
    err = open(tmp_path / "stderr.log", "wb")
    st = os.fstat(err.fileno())
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}" if journal_stream else f"{st.st_dev}:{st.st_ino + 1}"}
    p = subprocess.Popen([BERTH, "run", "--config", str(cf)], stderr=err, stdout=subprocess.DEVNULL, env=env)
    err.close()
    return p


@pytest.mark.parametrize("matching", [True, False])
def test_journald_priority_prefixes(tmp_path, matching):
    """With stderr connected to the journal (JOURNAL_STREAM names its device and inode), every
    log line starts with its sd-daemon priority (<6> info, <4> warn, <3> error); journald
    strips it into PRIORITY=. A JOURNAL_STREAM naming another file changes nothing."""
    port = free_port()
    site = (f"{{\n\tadmin off\n}}\nhttp://:{port} {{\n\tbind 127.0.0.1\n\tlog\n"
            "\trespond /boom 500\n\trespond \"hi\"\n}\n")
    p = _run_with_stderr(tmp_path, site, matching)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                break
            except OSError:
                time.sleep(0.05)
        raw_exchange(port, b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)
    finally:
        p.terminate()
        p.wait(10)
    lines = (tmp_path / "stderr.log").read_text().splitlines()
    assert lines, "no log output"
    if not matching:
        assert all(l.startswith("{") for l in lines), lines[:5]
        return
    for l in lines:
        assert l[:3] in ("<6>", "<4>", "<3>", "<7>"), l
        entry = json.loads(l[3:])
        want = {"info": "<6>", "warn": "<4>", "error": "<3>", "debug": "<7>"}[entry["level"]]
        assert l.startswith(want), l
    levels = {json.loads(l[3:])["level"] for l in lines}
    assert "info" in levels and "error" in levels, lines  # the 500 is logged at error, as Caddy


def test_unanswered_request_logged_as_nop_like_caddy():
    """A request no route answers gets Go's implicit empty 200 on the wire; Caddy logs it as
    msg "NOP" with status 0 (its response recorder saw no WriteHeader). Berth the same, over
    every protocol it logs; an answered request stays "handled request"."""
    from conftest import caddy_and_berth

    logdir = Path(tempfile.mkdtemp(prefix="nop-"))

    def caddyfile(bind):
        log = logdir / (("caddy" if bind.startswith("127") else "berth") + ".log")
        return ("{\n\tadmin off\n\tauto_https off\n}\n"
                f"http://:{{$PORT}} {{\n\tbind {bind}\n\tlog {{\n\t\toutput file {log}\n\t}}\n"
                "\theader X-Seen yes\n\t@a path /a\n\trespond @a \"A\"\n}\n")

    try:
        with caddy_and_berth("nop-", caddyfile) as env:
            got = {}
            for who in ("caddy", "berth"):
                for path in ("/nothing", "/a"):
                    s = socket.create_connection(("127.0.0.1", env[who]), timeout=5)
                    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                    s.close()
                    assert data.startswith(b"HTTP/1.1 200 "), (who, path, data[:80])
                log = logdir / f"{who}.log"
                assert wait_for(lambda: len(lines(log)) >= 2), (who, lines(log))
                got[who] = {e["request"]["uri"]: e for e in map(json.loads, lines(log))}
            for who, entries in got.items():
                nop, answered = entries["/nothing"], entries["/a"]
                assert (nop["msg"], nop["status"], nop["size"]) == ("NOP", 0, 0), (who, nop)
                assert nop["level"] == "info" and nop["resp_headers"].get("X-Seen") == ["yes"], (who, nop)
                assert (answered["msg"], answered["status"], answered["size"]) == ("handled request", 200, 1), (who, answered)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)

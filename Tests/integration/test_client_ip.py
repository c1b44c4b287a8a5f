"""`servers { trusted_proxies …; client_ip_headers …; trusted_proxies_strict }`: the client IP
from forwarding headers of trusted peers drives the `client_ip` matcher, `{client_ip}` and the
access log's client_ip, as in Caddy; untrusted peers cannot spoof it."""
import http.client
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import free_port, launch, tcp_listener, write_caddyfile


def site(servers):
    return f"""{{
\tadmin off
\tservers {{
{servers}
\t}}
}}

http://localhost {{
\tbind fd/3 {{
\t\tprotocols h1
\t}}
\tlog
\t@doc client_ip 203.0.113.0/24
\trespond @doc "doc {{client_ip}}"
\trespond "other {{client_ip}}"
}}
"""


def ask(port, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/", headers={"Host": "localhost", **headers})
    body = c.getresponse().read().decode()
    c.close()
    return body


def run(tmp_path, servers, cases):
    cf = write_caddyfile(tmp_path, site(servers))
    sock = tcp_listener()
    port = sock.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[sock])
    try:
        got = [ask(port, h) for h, _ in cases]
        assert got == [want for _, want in cases]
        p.wait_log(lambda e: e.get("logger") == "http.log.access" and e["request"]["client_ip"] == "203.0.113.7")
        return p.access_logs()
    finally:
        p.stop()


def test_trusted_proxy_headers_set_the_client_ip(tmp_path):
    logs = run(tmp_path, "\t\ttrusted_proxies static private_ranges", [
        ({"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}, "doc 203.0.113.7"),
        ({"X-Forwarded-For": "bogus, 198.51.100.2:8080"}, "other 198.51.100.2"),
        ({}, "other 127.0.0.1"),
    ])
    assert logs[0]["request"]["remote_ip"] == "127.0.0.1"


def test_strict_mode_and_custom_headers(tmp_path):
    run(tmp_path, "\t\ttrusted_proxies static 127.0.0.1/8 10.0.0.0/8\n\t\ttrusted_proxies_strict\n\t\tclient_ip_headers X-Real-IP X-Forwarded-For", [
        # Strict: right-most address that is not a trusted proxy.
        ({"X-Forwarded-For": "198.51.100.9, 203.0.113.7, 10.1.1.1"}, "doc 203.0.113.7"),
        ({"X-Real-IP": "198.51.100.3", "X-Forwarded-For": "203.0.113.7"}, "other 198.51.100.3"),
    ])


def test_untrusted_peer_cannot_spoof(tmp_path):
    cf = write_caddyfile(tmp_path, site("\t\ttrusted_proxies static 192.0.2.0/24"))
    sock = tcp_listener()
    port = sock.getsockname()[1]
    p = launch(["run", "--config", str(cf)], sockets=[sock])
    try:
        assert ask(port, {"X-Forwarded-For": "203.0.113.7"}) == "other 127.0.0.1"
    finally:
        p.stop()


CASES = [
    {"X-Forwarded-For": "198.51.100.9, 203.0.113.7, 10.1.1.1"},
    {"X-Real-IP": "198.51.100.3", "X-Forwarded-For": "203.0.113.7"},
    {"X-Forwarded-For": "bogus, 198.51.100.2:8080"},
    {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"},
    {"X-Forwarded-For": "10.0.0.1, 10.0.0.2"},
    {"X-Forwarded-For": "[2001:db8::1]:443"},
]


@pytest.mark.skipif(not shutil.which("caddy"), reason="caddy not installed")
@pytest.mark.parametrize("strict", [False, True])
def test_same_client_ip_as_caddy(tmp_path, strict):
    servers = "\t\ttrusted_proxies static 127.0.0.1/8 10.0.0.0/8\n\t\tclient_ip_headers X-Real-IP X-Forwarded-For"
    if strict:
        servers += "\n\t\ttrusted_proxies_strict"
    text = site(servers)
    cport = free_port()
    ctext = text.replace("\tbind fd/3 {\n\t\tprotocols h1\n\t}\n", "").replace("\tadmin off\n", "\tadmin off\n").replace(
        "http://localhost {", f"http://localhost:{cport} {{")
    cf = write_caddyfile(tmp_path, ctext, name="Caddyfile.caddy")
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CONFIG_HOME": str(tmp_path / "c"),
           "PATH": os.environ.get("PATH", "")}
    caddy = subprocess.Popen(["caddy", "run", "--config", str(cf)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 10
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", cport), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        theirs = [ask(cport, h) for h in CASES]
    finally:
        caddy.terminate()
        caddy.wait(10)
    bf = write_caddyfile(tmp_path, text)
    sock = tcp_listener()
    port = sock.getsockname()[1]
    p = launch(["run", "--config", str(bf)], sockets=[sock])
    try:
        ours = [ask(port, h) for h in CASES]
    finally:
        p.stop()
    assert ours == theirs


def test_reverse_proxy_keeps_forwarded_headers_from_trusted_servers_proxies(tmp_path):
    """Caddy's reverse_proxy trusts X-Forwarded-* from peers in the server's trusted_proxies."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            body = (self.headers.get("X-Forwarded-For") or "").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    backend = HTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        results = []
        for servers in ["\t\ttrusted_proxies static private_ranges", "\t\ttrusted_proxies static 192.0.2.0/24"]:
            text = site(servers).replace('\t@doc client_ip 203.0.113.0/24\n\trespond @doc "doc {client_ip}"\n\trespond "other {client_ip}"\n',
                                         f"\treverse_proxy 127.0.0.1:{backend.server_port}\n")
            cf = write_caddyfile(tmp_path, text)
            sock = tcp_listener()
            port = sock.getsockname()[1]
            p = launch(["run", "--config", str(cf)], sockets=[sock])
            try:
                results.append(ask(port, {"X-Forwarded-For": "203.0.113.7"}))
            finally:
                p.stop()
        assert results == ["203.0.113.7, 127.0.0.1", "127.0.0.1"]
    finally:
        backend.shutdown()

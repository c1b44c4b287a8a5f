"""HTTPS over inherited sockets with real peers: curl, openssl s_client (versions, ALPN, SNI,
no SNI, resumption), the cipher/version policy, plaintext on a TLS port, certificate files,
and the certificate-source rules for public names (ACME itself: test_acme.py)."""
import os
import sys
import shutil
import socket
import subprocess
import time

import pytest

from conftest import launch, run_cli, tcp_listener, udp_socket, write_caddyfile, seed_caddyfile

OPENSSL = shutil.which("openssl")


def tls_site(extra_global="", tls_line="tls internal", host="localhost", bind="fd/3", protocols="h1 h2"):
    return f"""{{
\tadmin off
{extra_global}}}

https://{host} {{
\t{tls_line}
\tbind {bind} {{
\t\tprotocols {protocols}
\t}}
\tlog
\trespond "secure {{host}}
"
}}
"""


@pytest.fixture
def https_server(tmp_path):
    cf = write_caddyfile(tmp_path, tls_site())
    data = tmp_path / "data"
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()], env={"XDG_DATA_HOME": str(data)})
    assert p.alive(), p.stderr()
    root = data / "berth" / "pki" / "authorities" / "local" / "root.crt"
    yield p, str(root)
    p.stop()


def curl(args):
    return subprocess.run(["curl", "-sS", "--max-time", "5", *args], capture_output=True, text=True)


def s_client(port, *args, data=b"", servername="localhost"):
    cmd = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-brief"]
    if servername is not None:
        cmd += ["-servername", servername]
    cmd += list(args)
    return subprocess.run(cmd, input=data, capture_output=True, timeout=10)


def test_curl_https_h1_with_local_ca(https_server):
    p, root = https_server
    r = curl(["--cacert", root, "--http1.1", f"https://localhost:{p.port}/"])
    assert r.returncode == 0, r.stderr + p.stderr()
    assert r.stdout == "secure localhost\n"
    e = p.wait_log(lambda e: e.get("logger") == "http.log.access" and "tls" in e["request"])
    t = e["request"]["tls"]
    assert t["version"] == 772 and t["server_name"] == "localhost" and t["proto"] == "http/1.1"
    assert t["cipher_suite"] in (4865, 4866, 4867)


def test_ca_files_and_key_modes(https_server):
    p, root = https_server
    d = os.path.dirname(root)
    assert os.path.exists(root)
    for name in os.listdir(d):
        if name.endswith(".key"):
            assert os.stat(os.path.join(d, name)).st_mode & 0o777 == 0o600


@pytest.mark.skipif(not OPENSSL, reason="openssl not installed")
def test_protocol_policy_with_openssl(https_server):
    p, root = https_server
    ok = s_client(p.port, "-CAfile", root, "-tls1_3")
    assert b"Protocol version: TLSv1.3" in ok.stderr, ok.stderr
    ok12 = s_client(p.port, "-CAfile", root, "-tls1_2")
    assert b"Protocol version: TLSv1.2" in ok12.stderr, ok12.stderr
    old = s_client(p.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert b"Protocol version: TLSv1.1" not in old.stderr and old.returncode != 0
    cbc = s_client(p.port, "-tls1_2", "-cipher", "AES128-SHA")
    assert cbc.returncode != 0 and b"Cipher is AES128-SHA" not in cbc.stderr
    nofs = s_client(p.port, "-tls1_2", "-cipher", "AES128-GCM-SHA256")
    assert nofs.returncode != 0


@pytest.mark.skipif(not OPENSSL, reason="openssl not installed")
def test_alpn_and_no_sni_gets_default_certificate(https_server):
    p, root = https_server
    r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{p.port}", "-servername", "localhost",
                        "-CAfile", root, "-alpn", "h2,http/1.1"], input=b"", capture_output=True, timeout=10)
    # HTTP/2 is offered once it is wired; today the server picks http/1.1.
    assert b"ALPN protocol: http/1.1" in r.stdout or b"ALPN protocol: h2" in r.stdout, r.stdout[-600:]
    # No SNI: Caddy aborts the handshake; Berth serves its default certificate.
    r = s_client(p.port, "-CAfile", root, "-noservername", servername=None)
    assert b"Verification: OK" in r.stderr or b"Protocol version" in r.stderr, r.stderr


@pytest.mark.skipif(not OPENSSL, reason="openssl not installed")
def test_session_resumption(https_server, tmp_path):
    p, root = https_server
    sess = str(tmp_path / "sess.pem")
    first = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{p.port}", "-servername", "localhost",
                            "-CAfile", root, "-ign_eof", "-sess_out", sess], input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                           capture_output=True, timeout=10)
    assert os.path.exists(sess), first.stderr
    second = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{p.port}", "-servername", "localhost",
                             "-CAfile", root, "-ign_eof", "-sess_in", sess],
                            input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                            capture_output=True, timeout=10)
    assert b"Reused, TLSv1.3" in second.stdout, second.stdout[-800:]
    e = p.wait_log(lambda e: e.get("logger") == "http.log.access" and e["request"].get("tls", {}).get("resumed"))
    assert e["request"]["tls"]["version"] == 772


@pytest.mark.skipif(not OPENSSL, reason="openssl not installed")
def test_tls12_renegotiation_is_refused(https_server):
    # s_client's "R" line asks for a renegotiation (TLS 1.2; TLS 1.3 has none).
    p, root = https_server
    r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{p.port}", "-servername", "localhost",
                        "-CAfile", root, "-tls1_2"], input=b"R\n", capture_output=True, timeout=10)
    out = r.stdout + r.stderr
    assert b"RENEGOTIATING" in out, out[-600:]
    assert b"no renegotiation" in out or b"alert" in out, out[-600:]
    assert b"Secure Renegotiation IS NOT supported" in out or b"Secure Renegotiation IS supported" in out


SITE = """
https://{n}.localhost {{
\ttls internal
\tbind fd/3 {{
\t\tprotocols h1 h2
\t}}
\tbind fd/4 {{
\t\tprotocols h1
\t}}
\trespond "hi"
}}
"""


@pytest.mark.skipif(not OPENSSL, reason="openssl not installed")
def test_default_sni_and_per_listener_alpn(tmp_path):
    text = """{
\tadmin off
\tdefault_sni b.localhost
}

""" + "".join(SITE.format(n=n) for n in ("a", "b"))
    cf = write_caddyfile(tmp_path, text)
    a, b = tcp_listener(), tcp_listener()
    p = launch(["run", "--config", str(cf)], sockets=[a, b], env={"XDG_DATA_HOME": str(tmp_path / "d")})
    try:
        both, h1only = p.ports
        # No SNI: the default_sni name's certificate (Caddy would abort the handshake).
        r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{both}", "-noservername"], input=b"",
                           capture_output=True, timeout=10)
        pem = r.stdout[r.stdout.index(b"-----BEGIN CERTIFICATE-----"):r.stdout.index(b"-----END CERTIFICATE-----") + 25]
        san = subprocess.run([OPENSSL, "x509", "-noout", "-ext", "subjectAltName"], input=pem, capture_output=True).stdout
        assert b"DNS:b.localhost" in san and b"a.localhost" not in san, san
        for port, want in ((both, b"ALPN protocol: h2"), (h1only, b"ALPN protocol: http/1.1")):
            r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "a.localhost",
                                "-alpn", "h2,http/1.1"], input=b"", capture_output=True, timeout=10)
            assert want in r.stdout + r.stderr, (port, (r.stdout + r.stderr)[-600:])
        r = curl(["-k", "--http2", "-o", "/dev/null", "-w", "%{http_version}", "--resolve", f"a.localhost:{h1only}:127.0.0.1",
                  f"https://a.localhost:{h1only}/"])
        assert r.stdout == "1.1", r.stdout + r.stderr
    finally:
        p.stop()


def test_plaintext_http_on_tls_port_gets_400(https_server):
    p, root = https_server
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    assert data.startswith(b"HTTP/1.0 400 Bad Request"), data
    assert b"Client sent an HTTP request to an HTTPS server." in data


def test_slow_handshake_is_cut_by_read_header_timeout(tmp_path):
    cf = write_caddyfile(tmp_path, tls_site(extra_global="\tservers {\n\t\ttimeouts {\n\t\t\tread_header 500ms\n\t\t}\n\t}\n"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()], env={"XDG_DATA_HOME": str(tmp_path / "d")})
    try:
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(b"\x16\x03\x01")  # a TLS record header, then nothing
        t0 = time.time()
        assert s.recv(100) == b""
        assert time.time() - t0 < 4
    finally:
        p.stop()


def test_certificate_files(tmp_path):
    if not OPENSSL:
        pytest.skip("openssl not installed")
    key, crt = str(tmp_path / "k.pem"), str(tmp_path / "c.pem")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=files.test",
                    "-addext", "subjectAltName=DNS:files.test"], check=True, capture_output=True)
    cf = write_caddyfile(tmp_path, tls_site(tls_line=f"tls {crt} {key}", host="files.test"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        r = curl(["--cacert", crt, "--resolve", f"files.test:{p.port}:127.0.0.1", f"https://files.test:{p.port}/"])
        assert r.returncode == 0 and r.stdout == "secure files.test\n", r.stderr + p.stderr()
    finally:
        p.stop()


def test_public_name_gets_acme_and_validate_does_not_contact_the_ca(tmp_path):
    # A public name with no certificate source gets automatic HTTPS (ACME, test_acme.py);
    # validating the config never talks to the CA (here: a closed port).
    cf = write_caddyfile(tmp_path, tls_site(tls_line="log", host="example.com"))
    r = run_cli(["validate", "--config", str(cf)],
                env={"XDG_DATA_HOME": str(tmp_path / "d"), "BERTH_ACME_CA": "https://127.0.0.1:1/dir"})
    assert r.returncode == 0, r.stderr


def test_public_name_without_certificate_source_and_auto_https_disable_certs_fails_clearly(tmp_path):
    cf = write_caddyfile(tmp_path, tls_site(extra_global="\tauto_https disable_certs\n", tls_line="log", host="example.com"))
    r = run_cli(["validate", "--config", str(cf)])
    assert r.returncode == 1
    assert "example.com" in r.stderr and "tls internal" in r.stderr and f"{cf}:6" in r.stderr, r.stderr


def test_local_certs_global_option(tmp_path):
    cf = write_caddyfile(tmp_path, tls_site(extra_global="\tlocal_certs\n", tls_line="log", host="example.com"))
    r = run_cli(["validate", "--config", str(cf)], env={"XDG_DATA_HOME": str(tmp_path / "d")})
    assert r.returncode == 0, r.stderr


def test_seed_example3_with_tls_internal(tmp_path):
    text = seed_caddyfile(3).read_text().replace("https://example.com {", "https://example.com {\n\ttls internal", 1)
    text = text.replace("admin unix//run/admin.sock", f"admin unix/{tmp_path}/admin.sock")
    cf = write_caddyfile(tmp_path, text)
    a, b, c = tcp_listener(), tcp_listener(), udp_socket()
    pa, pb = a.getsockname()[1], b.getsockname()[1]
    data = tmp_path / "data"
    p = launch(["run", "--config", str(cf)], sockets=[a, b, c], env={"XDG_DATA_HOME": str(data)})
    try:
        root = str(data / "berth" / "pki" / "authorities" / "local" / "root.crt")
        r = curl(["--resolve", f"example.com:{pa}:127.0.0.1", f"http://example.com:{pa}/"])
        assert r.stdout == "Hello world\n", r.stderr + p.stderr()
        r = curl(["--cacert", root, "--http1.1", "--resolve", f"example.com:{pb}:127.0.0.1", f"https://example.com:{pb}/"])
        assert r.stdout == "Hello world\n", r.stderr + p.stderr()
        assert "fdgram/5" in p.stderr()
    finally:
        p.stop()


def test_automatic_http_to_https_redirect(tmp_path):
    from conftest import free_port
    hp, sp = free_port(), free_port()
    text = f"""{{
\tadmin off
\thttp_port {hp}
\thttps_port {sp}
\tlocal_certs
}}

redir.test {{
\tbind 127.0.0.1
\trespond "tls"
}}
"""
    cf = write_caddyfile(tmp_path, text)
    p = launch(["run", "--config", str(cf)], env={"XDG_DATA_HOME": str(tmp_path / "d")})
    try:
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "-H", f"Host: redir.test:{hp}",
                            f"http://127.0.0.1:{hp}/x?y=1"], capture_output=True, text=True, timeout=10)
        assert "308 Permanent Redirect" in r.stdout, r.stdout + p.stderr()
        assert f"Location: https://redir.test:{sp}/x?y=1" in r.stdout
        assert "Connection: close" in r.stdout
        # auto_https disable_redirects: nothing listens on the HTTP port.
        p.stop()
        cf = write_caddyfile(tmp_path, text.replace("\tlocal_certs\n", "\tlocal_certs\n\tauto_https disable_redirects\n"))
        p = launch(["run", "--config", str(cf)], env={"XDG_DATA_HOME": str(tmp_path / "d")})
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", hp), timeout=2)
    finally:
        p.stop()


def _sslyze():
    """sslyze in its own virtualenv (it pins a cryptography version aioquic cannot use)."""
    venv = os.path.expanduser("~/.cache/berth-sslyze")
    exe = os.path.join(venv, "bin", "sslyze")
    if not os.path.exists(exe):
        r = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True)
        if r.returncode == 0:
            subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "sslyze"], capture_output=True, timeout=600)
    return exe if os.path.exists(exe) else None


def test_sslyze_policy(https_server, tmp_path):
    exe = _sslyze()
    if not exe:
        pytest.skip("sslyze could not be installed from PyPI")
    p, root = https_server
    out = tmp_path / "scan.json"
    r = subprocess.run([exe, "--quiet", f"--json_out={out}", "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2",
                        "--tlsv1_3", f"127.0.0.1:{p.port}{{localhost}}"], capture_output=True, text=True, timeout=300)
    assert out.exists(), r.stdout + r.stderr
    import json as _json
    scan = _json.loads(out.read_text())["server_scan_results"][0]["scan_result"]
    def accepted(key):
        res = scan[key]["result"]
        return [c["cipher_suite"]["name"] for c in res["accepted_cipher_suites"]]
    for old in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"):
        assert accepted(old) == [], old
    tls12 = accepted("tls_1_2_cipher_suites")
    assert tls12, "TLS 1.2 must be offered"
    for name in tls12:
        assert "ECDHE" in name and ("GCM" in name or "CHACHA20" in name), name
    assert accepted("tls_1_3_cipher_suites")

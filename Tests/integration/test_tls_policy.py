"""`tls { client_auth, ciphers, curves }` with real peers: curl --cert/--key over h1 and h2 and
openssl s_client for every client_auth mode (accepted and rejected), side by side with a real
Caddy (`caddy` on PATH) on the same certificates; the `{http.request.tls.*}` placeholders;
Caddy's strict SNI/Host check (421); a ticket from a site without client auth is not resumed
on a site with it; cipher and curve narrowing checked with openssl s_client -cipher/-groups,
and refused names fail with a file:line error."""
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import free_port, free_tcp_udp_port, launch, run_cli, tcp_listener, udp_socket, write_caddyfile

OPENSSL = shutil.which("openssl")
CADDY = shutil.which("caddy")
pytestmark = pytest.mark.skipif(not OPENSSL, reason="openssl not installed")

BODY = ("subject={http.request.tls.client.subject} issuer={http.request.tls.client.issuer} "
        "serial={http.request.tls.client.serial} fp={http.request.tls.client.fingerprint} "
        "v={http.request.tls.version} cs={http.request.tls.cipher_suite} proto={http.request.tls.proto} "
        "sn={http.request.tls.server_name}")


EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def ossl(*args):
    subprocess.run([OPENSSL, *args], check=True, capture_output=True)


def _ca(d, name):
    key, crt = d / f"{name}.key", d / f"{name}.pem"
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", crt, "-days", "2", "-subj", f"/O=Berth Test/CN={name}",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return key, crt


def _leaf(d, name, ca, ext, serial):
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    ossl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", csr, "-subj", f"/O=Berth Test/CN={name}")
    (d / f"{name}.ext").write_text(ext)
    ossl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-set_serial", str(serial), "-days", "2",
         "-out", crt, "-extfile", d / f"{name}.ext")
    return str(crt), str(key)


def _self_signed(d, name):
    key, crt = d / f"{name}.key", d / f"{name}.pem"
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", crt, "-days", "2", "-subj", f"/CN={name}", "-addext", "extendedKeyUsage=clientAuth")
    return str(crt), str(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    server_ca = _ca(d, "server-ca")
    client_ca = _ca(d, "client-ca")
    rogue_ca = _ca(d, "rogue-ca")
    server = _leaf(d, "server", server_ca, "subjectAltName=DNS:localhost,DNS:a.test,DNS:b.test\n"
                   "extendedKeyUsage=serverAuth\n", 1001)
    good = _leaf(d, "alice", client_ca, "extendedKeyUsage=clientAuth\n", 4242)
    rogue = _leaf(d, "mallory", rogue_ca, "extendedKeyUsage=clientAuth\n", 666)
    leaf1 = _self_signed(d, "leaf-one")
    leaf2 = _self_signed(d, "leaf-two")
    der = subprocess.run([OPENSSL, "x509", "-in", client_ca[1], "-outform", "DER"], capture_output=True, check=True).stdout
    return {"dir": d, "server_ca": str(server_ca[1]), "client_ca": str(client_ca[1]), "server": server,
            "none": None, "good": good, "rogue": rogue, "leaf1": leaf1, "leaf2": leaf2,
            "client_ca_b64": base64.b64encode(der).decode()}


def caddyfile(pki, client_auth, addr_suffix="", bind="fd/3", global_extra="", extra_tls=""):
    crt, key = pki["server"]
    return f"""{{
\tadmin off
{global_extra}}}

https://localhost{addr_suffix}, https://b.test{addr_suffix} {{
\ttls {crt} {key} {{
{client_auth}{extra_tls}\t}}
\tbind {bind} {{
\t\tprotocols h1 h2
\t}}
\trespond "{BODY}"
}}

https://a.test{addr_suffix} {{
\ttls {crt} {key}{(" {" + chr(10) + extra_tls + chr(9) + "}") if extra_tls else ""}
\tbind {bind} {{
\t\tprotocols h1 h2
\t}}
\trespond "open"
}}
"""


def start_caddy(tmp, text, port):
    """A real Caddy running `text`, once it accepts TCP connections on `port`."""
    ccf = tmp / "caddy.Caddyfile"
    ccf.write_text(text)
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "cd"), XDG_CONFIG_HOME=str(tmp / "cc"), HOME=str(tmp))
    p = subprocess.Popen([CADDY, "run", "--config", str(ccf), "--adapter", "caddyfile"], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(tmp / "caddy.log", "wb"))
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return p


class Servers:
    """Berth (socket-activated) and, when installed, Caddy on its own port, same Caddyfile."""

    def __init__(self, pki, client_auth, tmp):
        self.tmp = tmp
        cf = write_caddyfile(tmp, caddyfile(pki, client_auth), name="berth.Caddyfile")
        self.berth = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
        assert self.berth.alive(), self.berth.stderr()
        self.ports = {"berth": self.berth.port}
        self.caddy = None
        if CADDY:
            port = free_port()
            text = caddyfile(pki, client_auth, addr_suffix=f":{port}", bind="127.0.0.1",
                             global_extra=f"\thttp_port {free_port()}\n\tauto_https disable_redirects\n\tskip_install_trust\n")
            self.caddy = start_caddy(tmp, text, port)
            self.ports["caddy"] = port

    def stop(self):
        self.berth.stop()
        if self.caddy:
            self.caddy.terminate()
            self.caddy.wait(10)


def get(pki, port, cert, http="--http1.1", host="localhost", extra=()):
    args = ["curl", "-sS", "--max-time", "5", http, "--cacert", pki["server_ca"],
            "--resolve", f"{host}:{port}:127.0.0.1", *extra]
    if cert and cert != "none":
        args += ["--cert", pki[cert][0], "--key", pki[cert][1]]
    args.append(f"https://{host}:{port}/")
    r = subprocess.run(args, capture_output=True, text=True, timeout=10)
    return ("ok", r.stdout) if r.returncode == 0 else ("fail", "")


def ca_block(pki, mode=None, ca=True, leaf=None, b64=False):
    s = "\t\tclient_auth {\n"
    if mode:
        s += f"\t\t\tmode {mode}\n"
    if ca:
        s += f"\t\t\ttrusted_ca_cert {pki['client_ca_b64']}\n" if b64 else f"\t\t\ttrusted_ca_cert_file {pki['client_ca']}\n"
    if leaf:
        s += f"\t\t\ttrusted_leaf_cert_file {pki[leaf][0]}\n"
    return s + "\t\t}\n"


# mode, block options, expected outcome per client certificate (none, good, rogue, leaf1, leaf2)
CASES = {
    "request": (dict(mode="request"), {"none": "ok", "good": "ok", "rogue": "ok"}),
    "require": (dict(mode="require"), {"none": "fail", "good": "ok", "rogue": "ok"}),
    "verify_if_given": (dict(mode="verify_if_given"), {"none": "ok", "good": "ok", "rogue": "fail"}),
    "require_and_verify": (dict(mode="require_and_verify"), {"none": "fail", "good": "ok", "rogue": "fail"}),
    "default_with_ca": (dict(), {"none": "fail", "good": "ok", "rogue": "fail"}),
    "base64_ca": (dict(b64=True), {"none": "fail", "good": "ok", "rogue": "fail"}),
    "leaf_require": (dict(mode="require", ca=False, leaf="leaf1"),
                     {"none": "fail", "good": "fail", "leaf1": "ok", "leaf2": "fail"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_client_auth_modes_h1_h2_same_as_caddy(pki, tmp_path, case):
    opts, expected = CASES[case]
    s = Servers(pki, ca_block(pki, **opts), tmp_path)
    try:
        for http in ("--http1.1", "--http2"):
            for cert, want in expected.items():
                got, body = get(pki, s.ports["berth"], cert, http)
                assert got == want, f"{case} {http} cert={cert}: berth {got}, want {want}\n{s.berth.stderr()[-2000:]}"
                if got == "ok":
                    assert f"proto={'h2' if http == '--http2' else 'http/1.1'}" in body, body
                    assert "v=tls1.3 cs=TLS_AES_128_GCM_SHA256" in body and "sn=localhost" in body, body
                    if cert in ("good", "rogue", "leaf1"):
                        assert "subject=CN=" in body, body
                    else:
                        assert body.startswith("subject= issuer= serial= fp= "), body
                if s.caddy:
                    c, cbody = get(pki, s.ports["caddy"], cert, http)
                    assert c == got, f"{case} {http} cert={cert}: caddy {c}, berth {got}"
                    if got == "ok":
                        # Without a client certificate Caddy formats a zero certificate (caddy#7530):
                        # serial "<nil>" and the SHA-256 of nothing; Berth leaves both empty.
                        cbody = cbody.replace("serial=<nil> fp=" + EMPTY_SHA256, "serial= fp=")
                        assert cbody == body, f"caddy: {cbody}\nberth: {body}"
    finally:
        s.stop()


def assert_alice(pki, body):
    """`body` (BODY's placeholders) describes the "good" client certificate exactly."""
    fp = subprocess.run([OPENSSL, "x509", "-in", pki["good"][0], "-noout", "-fingerprint", "-sha256"],
                        capture_output=True, text=True, check=True).stdout.split("=", 1)[1].strip()
    assert f"fp={fp.replace(':', '').lower()} " in body, body
    assert "subject=CN=alice,O=Berth Test issuer=CN=client-ca,O=Berth Test serial=4242 " in body, body


def test_client_certificate_placeholders(pki, tmp_path):
    s = Servers(pki, ca_block(pki, mode="require_and_verify"), tmp_path)
    try:
        got, body = get(pki, s.ports["berth"], "good", "--http2")
        assert got == "ok"
        assert_alice(pki, body)
    finally:
        s.stop()


def s_client(port, *args, servername="localhost", data=b""):
    cmd = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", servername, "-ign_eof", *args]
    return subprocess.run(cmd, input=data, capture_output=True, timeout=10)


REQ = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def test_s_client_require_and_verify(pki, tmp_path):
    s = Servers(pki, ca_block(pki), tmp_path)
    try:
        port = s.ports["berth"]
        for tls in ("-tls1_3", "-tls1_2"):
            ok = s_client(port, tls, "-CAfile", pki["server_ca"], "-cert", pki["good"][0], "-key", pki["good"][1], data=REQ)
            assert b"subject=CN=alice" in ok.stdout, (tls, ok.stdout[-500:], ok.stderr[-500:])
            none = s_client(port, tls, "-CAfile", pki["server_ca"], data=REQ)
            assert b"200 OK" not in none.stdout
            assert b"alert certificate required" in none.stderr or b"handshake failure" in none.stderr, none.stderr
            bad = s_client(port, tls, "-CAfile", pki["server_ca"], "-cert", pki["rogue"][0], "-key", pki["rogue"][1], data=REQ)
            assert b"200 OK" not in bad.stdout and b"alert unknown ca" in bad.stderr, bad.stderr
        # The site without client_auth on the same listener asks for nothing.
        open_site = s_client(port, "-CAfile", pki["server_ca"], servername="a.test",
                             data=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert b"\r\n\r\nopen" in open_site.stdout, open_site.stdout[-300:]
    finally:
        s.stop()


def test_strict_sni_host_421(pki, tmp_path):
    # Caddy turns strict_sni_host on with client_auth: a client cannot pass the open site's
    # handshake and then ask for the protected site by Host (or the other way round).
    s = Servers(pki, ca_block(pki), tmp_path)
    try:
        for name, port in s.ports.items():
            r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", pki["server_ca"],
                                "--resolve", f"a.test:{port}:127.0.0.1", "-H", "Host: localhost",
                                f"https://a.test:{port}/"], capture_output=True, text=True, timeout=10)
            assert r.stdout == "421", (name, r.stdout, r.stderr)
            r = subprocess.run(["curl", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", pki["server_ca"],
                                "--cert", pki["good"][0], "--key", pki["good"][1],
                                "--resolve", f"b.test:{port}:127.0.0.1", "-H", "Host: a.test", f"https://b.test:{port}/"],
                               capture_output=True, text=True, timeout=10)
            assert r.stdout == "421", (name, r.stdout, r.stderr)
    finally:
        s.stop()


def test_ticket_from_open_site_does_not_resume_on_client_auth_site(pki, tmp_path):
    s = Servers(pki, ca_block(pki, mode="require"), tmp_path)
    try:
        port = s.ports["berth"]
        sess = str(tmp_path / "sess.pem")
        first = s_client(port, "-CAfile", pki["server_ca"], "-sess_out", sess, servername="a.test",
                         data=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert b"\r\n\r\nopen" in first.stdout and os.path.exists(sess), first.stdout[-300:]
        # Same open site again: resumed (tickets work).
        again = s_client(port, "-CAfile", pki["server_ca"], "-sess_in", sess, servername="a.test",
                         data=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert b"Reused, TLSv1.3" in again.stdout, again.stdout[-800:]
        # The protected site: a ticket from the open site must not skip the certificate.
        other = s_client(port, "-trace", "-CAfile", pki["server_ca"], "-sess_in", sess, servername="localhost", data=REQ)
        assert b"extension_type=psk(41)" in other.stdout  # the client did offer the ticket
        assert b"Reused" not in other.stdout
        assert b"200 OK" not in other.stdout, other.stdout[-800:]
    finally:
        s.stop()


def test_client_auth_config_errors(pki, tmp_path):
    cases = [
        ("\t\tclient_auth {\n\t\t\tmode sometimes\n\t\t}\n", "client auth mode not recognized: sometimes"),
        ("\t\tclient_auth {\n\t\t\ttrusted_ca_cert_file /nonexistent.pem\n\t\t}\n", "/nonexistent.pem"),
        ("\t\tclient_auth {\n\t\t\ttrusted_ca_cert bm90IGEgY2VydA==\n\t\t}\n", "not a DER X.509 certificate"),
        ("\t\tclient_auth {\n\t\t\tbogus x\n\t\t}\n", "unknown subdirective for client_auth: bogus"),
    ]
    for block, msg in cases:
        cf = write_caddyfile(tmp_path, caddyfile(pki, block))
        r = run_cli(["validate", "--config", str(cf)])
        assert r.returncode == 1 and msg in r.stderr and f"{cf}:" in r.stderr, (msg, r.stderr)


# MARK: ciphers and curves

def test_ciphers_narrow_tls12_and_tls13_stays(pki, tmp_path):
    cf = write_caddyfile(tmp_path, caddyfile(pki, "", extra_tls="\t\tciphers TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        ok = s_client(p.port, "-tls1_2", "-CAfile", pki["server_ca"], data=REQ)
        assert b"ECDHE-ECDSA-CHACHA20-POLY1305" in ok.stdout and b"cs=TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" in ok.stdout, ok.stdout[-800:]
        gcm = s_client(p.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", data=REQ)
        assert gcm.returncode != 0 and b"200 OK" not in gcm.stdout
        t13 = s_client(p.port, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384", "-CAfile", pki["server_ca"], data=REQ)
        assert b"cs=TLS_AES_256_GCM_SHA384" in t13.stdout, t13.stdout[-500:]
    finally:
        p.stop()


def test_only_tls13_cipher_names_leave_tls12_without_suites(pki, tmp_path):
    cf = write_caddyfile(tmp_path, caddyfile(pki, "", extra_tls="\t\tciphers TLS_AES_128_GCM_SHA256\n"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        assert s_client(p.port, "-tls1_2", data=REQ).returncode != 0
        assert b"v=tls1.3" in s_client(p.port, "-tls1_3", "-CAfile", pki["server_ca"], data=REQ).stdout
    finally:
        p.stop()


def test_curves_narrow_groups(pki, tmp_path):
    cf = write_caddyfile(tmp_path, caddyfile(pki, "", extra_tls="\t\tcurves secp384r1\n"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        for tls in ("-tls1_3", "-tls1_2"):
            # (P-256 stays in the client's list: in TLS 1.2 it also names the curves the client
            # accepts for the ECDSA P-256 certificate, RFC 8422 §5.1.1.)
            ok = s_client(p.port, tls, "-groups", "X25519:P-384:P-256", "-CAfile", pki["server_ca"], data=REQ)
            assert b"200 OK" in ok.stdout, ok.stderr[-500:]
            assert b"P-384" in ok.stdout + ok.stderr or b"secp384r1" in ok.stdout + ok.stderr, ok.stdout[-1500:]
            bad = s_client(p.port, tls, "-groups", "X25519:P-256", data=REQ)
            assert bad.returncode != 0 and b"200 OK" not in bad.stdout
    finally:
        p.stop()


@pytest.mark.parametrize("line,msg", [
    ("ciphers TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA' is not allowed by Berth (CBC mode)"),
    ("ciphers TLS_RSA_WITH_AES_128_GCM_SHA256", "(RSA key exchange, no forward secrecy)"),
    ("ciphers TLS_NOPE", "wrong cipher suite name or cipher suite not supported: 'TLS_NOPE'"),
    ("curves x448", "Wrong curve name or curve not supported: 'x448'"),
    ("curves x25519mlkem768", "no ML-KEM"),
])
def test_cipher_and_curve_errors_name_the_line(pki, tmp_path, line, msg):
    cf = write_caddyfile(tmp_path, caddyfile(pki, "", extra_tls=f"\t\t{line}\n"))
    r = run_cli(["validate", "--config", str(cf)])
    assert r.returncode == 1 and msg in r.stderr, r.stderr
    assert f"{cf}:7" in r.stderr, r.stderr


def test_alpn_subdirective_limits_the_listener(pki, tmp_path):
    cf = write_caddyfile(tmp_path, caddyfile(pki, "", extra_tls="\t\talpn http/1.1\n"))
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()])
    try:
        r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{p.port}", "-servername", "localhost",
                            "-alpn", "h2,http/1.1"], input=b"", capture_output=True, timeout=10)
        assert b"ALPN protocol: http/1.1" in r.stdout, r.stdout[-600:]
    finally:
        p.stop()
    cf = write_caddyfile(tmp_path, caddyfile(pki, "", extra_tls="\t\talpn h3\n"))
    r = run_cli(["validate", "--config", str(cf)])
    assert r.returncode == 1 and "tls alpn h3: none of these is spoken" in r.stderr, r.stderr


# ---------------------------------------------------------------- client_auth over HTTP/3

H3GET = [sys.executable, str(Path(__file__).resolve().parent / "h3get.py")]
HAVE_AIOQUIC = subprocess.run([sys.executable, "-c", "import aioquic"], capture_output=True).returncode == 0


def h3_caddyfile(pki, client_auth, addr_suffix="", binds=("fd/3", "fdgram/4"), global_extra=""):
    """The two sites of `caddyfile`, reachable over h1/h2 and h3."""
    crt, key = pki["server"]
    b = "".join(f"\tbind {a} {{\n\t\tprotocols {'h3' if a.startswith('fdgram') else 'h1 h2'}\n\t}}\n" for a in binds)
    return (f"{{\n\tadmin off\n{global_extra}}}\n\n"
            f"https://localhost{addr_suffix}, https://b.test{addr_suffix} {{\n\ttls {crt} {key} {{\n{client_auth}\t}}\n{b}"
            f"\trespond \"{BODY}\"\n}}\n\n"
            f"https://a.test{addr_suffix} {{\n\ttls {crt} {key}\n{b}\trespond \"open\"\n}}\n")


def h3(pki, port, cert, host="localhost", ticket=None, extra=()):
    args = H3GET + ["--cafile", pki["server_ca"], "--connect", "127.0.0.1", "--timeout", "6", *extra]
    if cert and cert != "none":
        args += ["--cert", pki[cert][0], "--key", pki[cert][1]]
    if ticket:
        args += ["--session-ticket", ticket]
    r = subprocess.run(args + [f"https://{host}:{port}/"], capture_output=True, timeout=15)
    if ticket:
        # h3get reports whether the session was resumed.
        return ("ok" if r.returncode == 0 else "fail", r.stdout.decode(), r.stderr.decode(errors="replace"))
    return ("ok", r.stdout.decode()) if r.returncode == 0 else ("fail", r.stderr.decode(errors="replace")[-400:])


class H3Servers:
    """Berth on an inherited TCP + UDP socket pair and, when installed, Caddy binding
    127.0.0.1 (TCP and UDP) on its own port: same sites, same client_auth."""

    def __init__(self, pki, client_auth, tmp):
        t, u = tcp_listener(), udp_socket()
        self.udp = u.getsockname()[1]
        cf = write_caddyfile(tmp, h3_caddyfile(pki, client_auth), name="berth.Caddyfile")
        self.berth = launch(["run", "--config", str(cf)], sockets=[t, u])
        assert self.berth.alive(), self.berth.stderr()
        self.ports = {"berth": self.udp}
        self.caddy = None
        if CADDY:
            port = free_tcp_udp_port()
            text = h3_caddyfile(pki, client_auth, addr_suffix=f":{port}", binds=("127.0.0.1",),
                                global_extra=f"\thttp_port {free_port()}\n\tauto_https disable_redirects\n\tskip_install_trust\n")
            text = text.replace("protocols h1 h2", "protocols h1 h2 h3")
            self.caddy = start_caddy(tmp, text, port)
            time.sleep(0.3)  # the UDP listener comes up next to the TCP one
            self.ports["caddy"] = port

    def stop(self):
        self.berth.stop()
        if self.caddy:
            self.caddy.terminate()
            self.caddy.wait(10)


@pytest.mark.skipif(not HAVE_AIOQUIC, reason="aioquic is not installed")
@pytest.mark.parametrize("case", list(CASES))
def test_client_auth_modes_h3_same_as_h1_h2_and_caddy(pki, tmp_path, case):
    """The same certificates pass and fail over QUIC (GnuTLS handshake, OpenSSL verification)
    as over TCP, with the same placeholders; and as a real Caddy over h3."""
    opts, expected = CASES[case]
    s = H3Servers(pki, ca_block(pki, **opts), tmp_path)
    try:
        for cert, want in expected.items():
            got, body = h3(pki, s.ports["berth"], cert)
            assert got == want, f"{case} h3 cert={cert}: berth {got}, want {want}\n{body}\n{s.berth.stderr()[-2000:]}"
            if got == "ok":
                assert "proto=h3" in body and "v=tls1.3 cs=TLS_AES_128_GCM_SHA256" in body and "sn=localhost" in body, body
                if cert in ("good", "rogue", "leaf1"):
                    assert "subject=CN=" in body, body
                else:
                    assert body.startswith("subject= issuer= serial= fp= "), body
            if s.caddy:
                c, cbody = h3(pki, s.ports["caddy"], cert)
                assert c == got, f"{case} h3 cert={cert}: caddy {c}, berth {got}: {cbody}"
                if got == "ok":
                    cbody = cbody.replace("serial=<nil> fp=" + EMPTY_SHA256, "serial= fp=")
                    assert cbody == body, f"caddy: {cbody}\nberth: {body}"
        # The open site on the same socket asks for nothing.
        got, body = h3(pki, s.ports["berth"], None, host="a.test")
        assert got == "ok" and body == "open", body
    finally:
        s.stop()


@pytest.mark.skipif(not HAVE_AIOQUIC, reason="aioquic is not installed")
def test_h3_client_certificate_placeholders_and_strict_sni(pki, tmp_path):
    s = H3Servers(pki, ca_block(pki, mode="require_and_verify"), tmp_path)
    try:
        got, body = h3(pki, s.ports["berth"], "good")
        assert got == "ok", body
        assert_alice(pki, body)
        # Strict SNI/Host (as over TCP): the open site's handshake cannot reach the protected site.
        r = subprocess.run(H3GET + ["--cafile", pki["server_ca"], "--connect", "127.0.0.1", "--timeout", "6", "-v",
                                    "--sni", "a.test", f"https://localhost:{s.ports['berth']}/"],
                           capture_output=True, timeout=15)
        assert b"status=421" in r.stderr, r.stderr[-500:]
    finally:
        s.stop()


@pytest.mark.skipif(not HAVE_AIOQUIC, reason="aioquic is not installed")
def test_h3_resumption_keeps_the_client_certificate_and_open_site_tickets_do_not_unlock(pki, tmp_path):
    s = H3Servers(pki, ca_block(pki, mode="require_and_verify"), tmp_path)
    try:
        port = s.ports["berth"]
        # A ticket from the protected site, after a full handshake with a good certificate:
        # the resumed session still carries (and is checked against) that certificate.
        t1 = str(tmp_path / "t1")
        got, body, err = h3(pki, port, "good", ticket=t1)
        assert got == "ok" and os.path.exists(t1), err
        got, body, err = h3(pki, port, "good", ticket=t1)
        assert got == "ok" and "resumed=1" in err and "subject=CN=alice" in body, (body, err)
        # A ticket from the open site, offered to the protected one without a certificate:
        # the session resumes, but no request is served (no 0-RTT either).
        t2 = str(tmp_path / "t2")
        got, body, err = h3(pki, port, None, host="a.test", ticket=t2)
        assert got == "ok" and body == "open" and os.path.exists(t2), err
        got, body, err = h3(pki, port, None, host="a.test", ticket=t2)
        assert got == "ok" and "resumed=1" in err, err  # the ticket works where it was issued
        for extra in ((), ("--early",)):
            got, body, err = h3(pki, port, None, host="localhost", ticket=t2, extra=extra)
            assert got == "fail" and "subject=" not in body, (extra, body, err)
    finally:
        s.stop()


@pytest.mark.skipif(not HAVE_AIOQUIC, reason="aioquic is not installed")
def test_h3_tightened_policy_after_reload_is_not_bypassed_by_resumption(pki, tmp_path):
    """A ticket issued while the site only requested a certificate (none sent) resumes fine;
    after a reload to require_and_verify the same ticket must not get a request served — the
    resumed session's (absent) certificate is checked against the new policy."""
    t, u = tcp_listener(), udp_socket()
    port = u.getsockname()[1]
    cf = write_caddyfile(tmp_path, h3_caddyfile(pki, ca_block(pki, mode="request")), name="b.Caddyfile")
    b = launch(["run", "--config", str(cf)], sockets=[t, u])
    try:
        ticket = str(tmp_path / "ticket")
        got, body, err = h3(pki, port, None, ticket=ticket)
        assert got == "ok" and os.path.exists(ticket), err
        got, body, err = h3(pki, port, None, ticket=ticket)
        assert got == "ok" and "resumed=1" in err, err
        write_caddyfile(tmp_path, h3_caddyfile(pki, ca_block(pki, mode="require_and_verify")), name="b.Caddyfile")
        os.kill(b.p.pid, signal.SIGHUP)
        for _ in range(100):
            if "config reloaded" in b.stderr():
                break
            time.sleep(0.05)
        got, body, err = h3(pki, port, None, ticket=ticket)
        assert got == "fail" and "subject=" not in body, (body, err)
        got, body = h3(pki, port, "good")
        assert got == "ok" and "subject=CN=alice" in body, body
    finally:
        b.stop()

"""Pebble (the ACME test CA, Debian package `pebble`) and pebble-challtestsrv (its mock DNS),
started locally for one test.

Pebble validates a challenge by resolving the name through `-dnsserver` (challtestsrv, which
answers every A query with 127.0.0.1 and no AAAA) and connecting to `httpPort` (HTTP-01) or
`tlsPort` (TLS-ALPN-01) there: the tests point those at the ports of the sockets they hand to
Berth as fd/3 and fd/4. PEBBLE_VA_ALWAYS_VALID is never set: every challenge is really
validated. PEBBLE_VA_NOSLEEP=1 only removes Pebble's random 0–15 s validation delay.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

PEBBLE = shutil.which("pebble")
CHALLTESTSRV = shutil.which("pebble-challtestsrv")


def _free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _make_https_cert(d, ip="127.0.0.1"):
    """A throwaway CA and a localhost/`ip` certificate for Pebble's own HTTPS endpoint."""
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    key, csr, crt = d / "pebble.key", d / "pebble.csr", d / "pebble.crt"
    ext = d / "ext.cnf"
    ext.write_text(f"subjectAltName=DNS:localhost,IP:127.0.0.1,IP:{ip}\nbasicConstraints=CA:FALSE\n"
                   "extendedKeyUsage=serverAuth\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=Pebble test HTTPS CA", "-keyout", str(ca_key), "-out", str(ca_crt))
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return ca_crt, crt, key


class Pebble:
    """A running Pebble + challtestsrv pair. `directory` is the ACME directory URL, `ca_root`
    the PEM file that signs Pebble's HTTPS certificate (what Berth must trust to talk to it)."""

    def __init__(self, workdir, http_port, tls_port, validity=None, env=None, eab=None, listen_host="127.0.0.1"):
        """`listen_host`: where the ACME endpoint listens (another address than loopback when
        Berth runs in its own network namespace)."""
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = listen_host
        self.ca_root, crt, key = _make_https_cert(self.dir, listen_host)
        self.port = _free_port()
        self.mgmt = _free_port()
        self.dns = _free_port(socket.SOCK_DGRAM)
        self.dns_mgmt = _free_port()
        cfg = {
            "listenAddress": f"{listen_host}:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt}",
            "certificate": str(crt),
            "privateKey": str(key),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(eab),
        }
        if eab:
            cfg["externalAccountMACKeys"] = eab
        if validity:
            cfg["certificateValidityPeriod"] = validity
        (self.dir / "pebble.json").write_text(json.dumps({"pebble": cfg}))
        self.dns_log = open(self.dir / "challtestsrv.log", "w")
        self.dns_proc = subprocess.Popen(
            [CHALLTESTSRV, "-dns01", f"127.0.0.1:{self.dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-management", f"127.0.0.1:{self.dns_mgmt}", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=self.dns_log, stderr=subprocess.STDOUT)
        e = dict(os.environ)
        e["PEBBLE_VA_NOSLEEP"] = "1"
        e.pop("PEBBLE_VA_ALWAYS_VALID", None)
        if env:
            e.update(env)
        self.log_file = open(self.dir / "pebble.log", "w")
        self.proc = subprocess.Popen(
            [PEBBLE, "-config", str(self.dir / "pebble.json"), "-dnsserver", f"127.0.0.1:{self.dns}"],
            stdout=self.log_file, stderr=subprocess.STDOUT, env=e, cwd=str(self.dir))
        self.ssl = ssl.create_default_context(cafile=str(self.ca_root))
        end = time.time() + 15
        while True:
            try:
                self.get_json(self.directory)
                break
            except Exception:
                if time.time() > end or self.proc.poll() is not None:
                    raise AssertionError("pebble did not start:\n" + self.log())
                time.sleep(0.1)

    @property
    def directory(self):
        return f"https://{self.host}:{self.port}/dir"

    def env(self):
        """Environment for Berth: the default CA is this Pebble (BERTH_ACME_CA, a Berth extension)."""
        return {"BERTH_ACME_CA": self.directory, "BERTH_ACME_CA_ROOT": str(self.ca_root)}

    def get(self, url):
        with urllib.request.urlopen(url, context=self.ssl, timeout=10) as r:
            return r.read()

    def get_json(self, url):
        return json.loads(self.get(url))

    def issuing_root(self, path=None):
        """The root that signs the certificates Pebble issues (management `/roots/0`), saved to
        `path` for curl --cacert; Pebble makes a new one at every start."""
        pem = self.get(f"https://127.0.0.1:{self.mgmt}/roots/0")
        p = Path(path or (self.dir / "issuing-root.pem"))
        p.write_bytes(pem)
        return str(p)

    def cert_status(self, serial_hex):
        """Management `/cert-status-by-serial/<serial>`: {"Status": "Valid"|"Revoked", ...}."""
        return self.get_json(f"https://127.0.0.1:{self.mgmt}/cert-status-by-serial/{serial_hex}")

    def log(self):
        try:
            return (self.dir / "pebble.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def orders(self):
        """How many orders Pebble created (from its log)."""
        return self.log().count("There are now")

    def set_a(self, host, addresses):
        """Makes challtestsrv answer A queries for `host` with `addresses`."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.dns_mgmt}/add-a",
                                     data=json.dumps({"host": host, "addresses": addresses}).encode(),
                                     method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self):
        for p in (self.proc, self.dns_proc):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        self.log_file.close()
        self.dns_log.close()

"""php_fastcgi and `transport fastcgi` side by side with a real Caddy, both in front of the same
php-fpm (started here with a generated config, never the system service): CGI parameters
($_SERVER), try_files index fallback with PATH_INFO, the directory redirect, form POST and a
5 MB upload streamed as STDIN, Status / Location / several Set-Cookie, a 20 MB streamed
response, STDERR with capture_stderr, php-fpm down (502), a slow script past read_timeout (504),
and HTTP/2 to Berth."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import caddy_and_berth, free_port

FPM = shutil.which("php-fpm8.2") or shutil.which("php-fpm")

INFO_PHP = r"""<?php
$keys = ['SCRIPT_NAME','SCRIPT_FILENAME','PATH_INFO','PATH_TRANSLATED','DOCUMENT_ROOT','DOCUMENT_URI',
  'REQUEST_URI','QUERY_STRING','REQUEST_METHOD','REQUEST_SCHEME','REMOTE_ADDR','REMOTE_HOST','REMOTE_PORT',
  'SERVER_NAME','SERVER_PORT','SERVER_ADDR','SERVER_PROTOCOL','SERVER_SOFTWARE','GATEWAY_INTERFACE',
  'CONTENT_TYPE','CONTENT_LENGTH','HTTPS','SSL_PROTOCOL','SSL_CIPHER','AUTH_TYPE','REMOTE_USER','MY_ENV'];
$out = [];
foreach ($keys as $k) { $out[$k] = array_key_exists($k, $_SERVER) ? $_SERVER[$k] : null; }
foreach ($_SERVER as $k => $v) { if (strncmp($k, 'HTTP_', 5) === 0) { $out[$k] = $v; } }
$out['_GET'] = $_GET; $out['_POST'] = $_POST;
if (!empty($IS_INDEX)) { $out['index'] = true; }
header('Content-Type: application/json');
echo json_encode($out);
"""

UPLOAD_PHP = r"""<?php
$in = fopen('php://input', 'rb'); $ctx = hash_init('sha256'); $n = 0;
while (!feof($in)) { $b = fread($in, 65536); if ($b === false) break; $n += strlen($b); hash_update($ctx, $b); }
echo $n, ' ', hash_final($ctx);
"""

STATUS_PHP = r"""<?php
$m = $_GET['m'] ?? '';
if ($m === '404') { http_response_code(404); echo "not here\n"; }
elseif ($m === '302') { header('Location: /elsewhere?x=1'); echo "moved\n"; }
elseif ($m === 'cookies') { setcookie('a', '1'); setcookie('b', '2', ['path' => '/p']); header('X-Custom: one');
  header('x-lower-case: two'); echo "cookies\n"; }
elseif ($m === 'teapot') { header('Status: 418 I am a teapot'); echo "tea\n"; }
"""

BIG_PHP = r"""<?php
header('Content-Type: application/octet-stream');
$chunk = str_repeat('0123456789abcdef', 4096);
for ($i = 0; $i < 320; $i++) { echo $chunk; flush(); }
"""

STDERR_PHP = r"""<?php
error_log('fcgi-stderr-marker line one');
echo "body after stderr\n";
"""

SLOW_PHP = r"""<?php
sleep(3);
echo "late\n";
"""

INDEX_PHP = r"""<?php
$IS_INDEX = true;
include __DIR__ . '/info.php';
"""

DIR_INDEX_PHP = r"""<?php echo "dir index ", $_SERVER['SCRIPT_NAME'], "\n";"""


@pytest.fixture(scope="module")
def fpm():
    if FPM is None:
        pytest.skip("php-fpm is not installed (scripts/install-deps.sh installs php8.2-fpm)")
    tmp = Path(tempfile.mkdtemp(prefix="berth-fpm-"))
    root = tmp / "www"
    (root / "dir").mkdir(parents=True)
    for name, text in [("info.php", INFO_PHP), ("upload.php", UPLOAD_PHP), ("status.php", STATUS_PHP),
                       ("big.php", BIG_PHP), ("stderr.php", STDERR_PHP), ("slow.php", SLOW_PHP),
                       ("index.php", INDEX_PHP), ("dir/index.php", DIR_INDEX_PHP)]:
        (root / name).write_text(text)
    (root / "static.txt").write_text("plain file\n")
    port = free_port()
    sock = tmp / "fpm.sock"
    pool = "pm = static\npm.max_children = 6\ncatch_workers_output = yes\n" \
           "php_admin_value[post_max_size] = 64M\nphp_admin_value[upload_max_filesize] = 64M\n"
    (tmp / "fpm.conf").write_text(
        f"[global]\npid = {tmp}/fpm.pid\nerror_log = {tmp}/fpm.log\ndaemonize = no\n"
        f"[unix]\nlisten = {sock}\n{pool}"
        f"[tcp]\nlisten = 127.0.0.1:{port}\n{pool}")
    args = [FPM, "-F", "-y", str(tmp / "fpm.conf")]
    if os.geteuid() == 0:
        args.insert(1, "-R")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline and not (sock.exists() and _port_open(port)):
        time.sleep(0.05)
    assert sock.exists() and _port_open(port), (tmp / "fpm.log").read_text() if (tmp / "fpm.log").exists() else ""
    try:
        yield {"root": root, "sock": sock, "port": port, "tmp": tmp}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def site(fpm, bind, dead_port):
    return f"""{{
\tadmin off
\tauto_https off
}}

http://fcgi.test:{{$PORT}} {{
\tbind {bind} {{
\t\tprotocols h1 h2c
\t}}
\troot * {fpm['root']}
\thandle /tcp/* {{
\t\turi strip_prefix /tcp
\t\tphp_fastcgi 127.0.0.1:{fpm['port']} {{
\t\t\tenv MY_ENV from-tcp
\t\t}}
\t}}
\thandle /down/* {{
\t\turi strip_prefix /down
\t\tphp_fastcgi 127.0.0.1:{dead_port}
\t}}
\thandle /downsock/* {{
\t\turi strip_prefix /downsock
\t\tphp_fastcgi unix/{fpm['tmp']}/missing.sock
\t}}
\thandle_errors 502 504 {{
\t\trespond "proxy error {{err.status_code}}"
\t}}
\thandle /slow/* {{
\t\turi strip_prefix /slow
\t\treverse_proxy unix/{fpm['sock']} {{
\t\t\ttransport fastcgi {{
\t\t\t\tsplit .php
\t\t\t\tread_timeout 1s
\t\t\t}}
\t\t}}
\t}}
\thandle /errs/* {{
\t\turi strip_prefix /errs
\t\tphp_fastcgi unix/{fpm['sock']} {{
\t\t\tcapture_stderr
\t\t}}
\t}}
\tphp_fastcgi unix/{fpm['sock']} {{
\t\tenv MY_ENV "value {{path}}"
\t}}
\tfile_server
}}
"""


@pytest.fixture(scope="module")
def servers(fpm):
    dead = free_port()
    with caddy_and_berth("berth-fcgi-", lambda bind: site(fpm, bind, dead)) as s:
        yield s


def request(port, method, target, body=None, headers=None, timeout=20):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Host": f"fcgi.test:{port}", "Connection": "close"}
    h.update(headers or {})
    c.request(method, target, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    out = (r.status, r.getheaders(), data)
    c.close()
    return out


SKIP_HEADERS = {"date", "server", "content-length", "transfer-encoding", "via", "connection"}


def comparable(headers):
    """Response fields both servers should send alike (framing and identity aside)."""
    out = {}
    for k, v in headers:
        if k.lower() in SKIP_HEADERS:
            continue
        out.setdefault(k, []).append(v)
    return out


def both(servers, method, target, body=None, headers=None):
    res = {}
    for name in ("caddy", "berth"):
        res[name] = request(servers[name], method, target, body, headers)
    return res["caddy"], res["berth"]


# Parameters that differ by design: ports (each server has its own), the peer's port, the
# server's name, and Via (`1.1 Caddy` / `1.1 Berth`).
DIFFERS = {"REMOTE_PORT", "SERVER_PORT", "SERVER_SOFTWARE", "HTTP_VIA", "HTTP_HOST", "HTTP_X_FORWARDED_HOST"}


def server_vars(servers, name, target, **kw):
    st, hs, body = request(servers[name], "GET", target, **kw)
    assert st == 200, (name, st, body[:500])
    return json.loads(body)


@pytest.mark.parametrize("target", [
    "/info.php?a=1&b=%20x",
    "/info.php/extra/path%20here?q",
    "/INFO.PHP/x",
    "/tcp/info.php/p?z=9",
    "/pretty/url/route?page=2",
])
def test_server_params_match_caddy(servers, target):
    hdrs = {"X-Custom-Header": "abc", "Proxy": "http://evil", "Accept-Language": "en", "X-Dup": "1"}
    c = server_vars(servers, "caddy", target, headers=hdrs)
    b = server_vars(servers, "berth", target, headers=hdrs)
    for k in set(c) | set(b):
        if k in DIFFERS:
            continue
        assert c.get(k) == b.get(k), (k, c.get(k), b.get(k))
    assert b["SERVER_PORT"] == str(servers["berth"])
    assert b["REMOTE_ADDR"] == "127.0.0.1" and b["REMOTE_PORT"].isdigit()
    assert "HTTP_PROXY" not in b and b["HTTP_X_CUSTOM_HEADER"] == "abc"
    assert b["HTTP_VIA"] == "1.1 Berth" and b["HTTP_HOST"] == f"fcgi.test:{servers['berth']}"
    assert b["SERVER_SOFTWARE"].startswith("Berth")


def test_pretty_url_goes_to_index_php(servers):
    (cs, _, cb), (bs, _, bb) = both(servers, "GET", "/some/page?x=1")
    assert cs == bs == 200
    strip = lambda j: {k: v for k, v in j.items() if k not in DIFFERS}
    assert strip(json.loads(cb)) == strip(json.loads(bb))
    j = json.loads(bb)
    assert j["index"] and j["SCRIPT_NAME"] == "/index.php" and j["REQUEST_URI"] == "/some/page?x=1"
    # An existing static file is still served by file_server, not PHP.
    (cs, _, cb), (bs, _, bb) = both(servers, "GET", "/static.txt")
    assert cs == bs == 200 and cb == bb == b"plain file\n"


def test_directory_redirects_to_trailing_slash(servers):
    (cs, ch, _), (bs, bh, _) = both(servers, "GET", "/dir?k=v")
    assert cs == bs == 308
    assert dict(ch)["Location"] == dict(bh)["Location"] == "/dir/?k=v"
    (cs, _, cb), (bs, _, bb) = both(servers, "GET", "/dir/")
    assert cs == bs == 200 and cb == bb == b"dir index /dir/index.php\n"


def test_form_post(servers):
    body = "name=berth&list%5B%5D=1&list%5B%5D=2"
    hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
    c = json.loads(request(servers["caddy"], "POST", "/info.php", body, hdrs)[2])
    b = json.loads(request(servers["berth"], "POST", "/info.php", body, hdrs)[2])
    assert b["_POST"] == c["_POST"] == {"name": "berth", "list": ["1", "2"]}
    assert b["CONTENT_LENGTH"] == c["CONTENT_LENGTH"] == str(len(body))
    assert b["REQUEST_METHOD"] == c["REQUEST_METHOD"] == "POST"
    assert b["CONTENT_TYPE"] == c["CONTENT_TYPE"]


def test_upload_5mb_streamed(servers):
    data = os.urandom(5 * 1024 * 1024)
    want = f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()
    hdrs = {"Content-Type": "application/octet-stream"}
    for name in ("caddy", "berth"):
        st, _, body = request(servers[name], "PUT", "/upload.php", data, hdrs)
        assert (name, st, body) == (name, 200, want)


@pytest.mark.parametrize("mode,status", [("404", 404), ("302", 302), ("cookies", 200), ("teapot", 418)])
def test_status_location_cookies(servers, mode, status):
    (cs, ch, cb), (bs, bh, bb) = both(servers, "GET", f"/status.php?m={mode}")
    assert cs == bs == status
    assert cb == bb
    assert comparable(ch) == comparable(bh)
    # Caddy's Via for a FastCGI response reads "0.0" (no protocol version); Berth says the same.
    assert [v for k, v in ch if k == "Via"] == ["0.0 Caddy"] and [v for k, v in bh if k == "Via"] == ["0.0 Berth"]
    assert not [v for k, v in bh if k == "Server"]
    if mode == "cookies":
        assert comparable(bh)["Set-Cookie"] == ["a=1", "b=2; path=/p"]
        assert comparable(bh)["X-Lower-Case"] == ["two"]
    if mode == "302":
        assert comparable(bh)["Location"] == ["/elsewhere?x=1"]


def test_large_streamed_response(servers):
    want = hashlib.sha256(b"0123456789abcdef" * 4096 * 320).hexdigest()
    for name in ("caddy", "berth"):
        st, hs, body = request(servers[name], "GET", "/big.php", timeout=60)
        assert st == 200 and len(body) == 20 * 1024 * 1024 and hashlib.sha256(body).hexdigest() == want, name


def test_stderr_is_logged_with_capture_stderr(servers):
    (cs, _, cb), (bs, _, bb) = both(servers, "GET", "/errs/stderr.php")
    assert cs == bs == 200 and cb == bb == b"body after stderr\n"
    deadline = time.time() + 5
    while time.time() < deadline and "fcgi-stderr-marker" not in servers["berth_proc"].stderr():
        time.sleep(0.1)
    lines = [l for l in servers["berth_proc"].stderr().splitlines() if "fcgi-stderr-marker" in l]
    assert lines, servers["berth_proc"].stderr()[-2000:]
    entry = json.loads(lines[-1])
    assert entry["level"] == "warn" and entry["msg"] == "stderr"
    assert entry["logger"] == "http.reverse_proxy.transport.fastcgi"
    # Without capture_stderr, the same script logs nothing.
    before = servers["berth_proc"].stderr().count("fcgi-stderr-marker")
    assert request(servers["berth"], "GET", "/stderr.php")[0] == 200
    time.sleep(0.3)
    assert servers["berth_proc"].stderr().count("fcgi-stderr-marker") == before


@pytest.mark.parametrize("prefix", ["/down", "/downsock"])
def test_fpm_down_is_502(servers, prefix):
    # A handler error: handle_errors answers it on both servers.
    (cs, _, cb), (bs, _, bb) = both(servers, "GET", prefix + "/info.php")
    assert cs == bs == 502
    assert cb == bb == b"proxy error 502"


def test_slow_script_read_timeout_is_504(servers):
    t0 = time.time()
    (cs, _, cb), (bs, _, bb) = both(servers, "GET", "/slow/slow.php")
    assert cs == bs == 504
    assert cb == bb == b"proxy error 504"
    assert time.time() - t0 < 5.5


def test_http2_to_berth(servers, fpm):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    port = servers["berth"]
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-H", f"Host: fcgi.test:{port}",
                          "-H", "X-H2: yes", "-w", "\n%{http_version} %{http_code}",
                          f"http://127.0.0.1:{port}/info.php/p2?h2=1"], capture_output=True, text=True, timeout=20)
    body, _, tail = out.stdout.rpartition("\n")
    if tail.startswith("1.1"):
        pytest.skip("this listener does not speak h2c")
    assert tail == "2 200", out.stdout + out.stderr
    j = json.loads(body)
    assert j["SERVER_PROTOCOL"] == "HTTP/2.0" and j["PATH_INFO"] == "/p2" and j["HTTP_X_H2"] == "yes"
    assert j["QUERY_STRING"] == "h2=1" and j["REQUEST_URI"] == "/info.php/p2?h2=1"
    data = os.urandom(5 * 1024 * 1024)
    p = fpm["tmp"] / "up.bin"
    p.write_bytes(data)
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-H", f"Host: fcgi.test:{port}", "-X", "PUT",
                          "--data-binary", f"@{p}", f"http://127.0.0.1:{port}/upload.php"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == f"{len(data)} {hashlib.sha256(data).hexdigest()}", out.stderr
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-H", f"Host: fcgi.test:{port}",
                          f"http://127.0.0.1:{port}/big.php"], capture_output=True, timeout=60)
    assert len(out.stdout) == 20 * 1024 * 1024


def test_chunked_upload_without_length_is_411(servers):
    def chunked():
        yield b"a=1"
    for name in ("caddy", "berth"):
        c = http.client.HTTPConnection("127.0.0.1", servers[name], timeout=10)
        c.request("POST", "/upload.php", body=chunked(), headers={"Host": "fcgi.test", "Transfer-Encoding": "chunked"},
                  encode_chunked=True)
        r = c.getresponse()
        r.read()
        c.close()
        # Caddy buffers bodies up to 4 KiB to learn their length; Berth refuses (411).
        assert r.status == (200 if name == "caddy" else 411), (name, r.status)


def test_https_params_berth(fpm):
    """Over TLS (h1 and h2 through ALPN): HTTPS=on, REQUEST_SCHEME, SSL_PROTOCOL / SSL_CIPHER,
    SERVER_PORT 443-style from Host. Berth only: Caddy's `tls internal` needs automatic HTTPS,
    whose redirect listener this shared machine cannot spare a port for."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    from conftest import launch, tcp_listener
    lsock = tcp_listener()
    port = lsock.getsockname()[1]
    cfg = fpm["tmp"] / "tls.Caddyfile"
    cfg.write_text(f"{{\n\tadmin off\n\tauto_https off\n\tskip_install_trust\n}}\n\n"
                   f"https://fcgi.test:{port} {{\n\tbind fd/3\n\ttls internal\n\troot * {fpm['root']}\n"
                   f"\tbasic_auth /info.php* {{\n\t\tuser $2a$04$f/WtJZa3BGEuCgEXw08gzOHFqIIt0Hq0.3hGiUm7GB6zEV3IikcmS\n\t}}\n"
                   f"\tphp_fastcgi unix/{fpm['sock']}\n}}\n")
    berth = launch(["run", "--config", str(cfg)], sockets=[lsock])
    try:
        assert berth.alive(), berth.stderr()
        for flag, proto in (("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2.0")):
            out = subprocess.run([curl, "-sSk", flag, "-u", "user:pw", "--resolve", f"fcgi.test:{port}:127.0.0.1",
                                  f"https://fcgi.test:{port}/info.php/x?y=1"], capture_output=True, text=True, timeout=20)
            j = json.loads(out.stdout)
            assert j["HTTPS"] == "on" and j["REQUEST_SCHEME"] == "https" and j["SERVER_PROTOCOL"] == proto
            assert j["SSL_PROTOCOL"] == "TLSv1.3" and j["SSL_CIPHER"].startswith("TLS_"), j
            assert j["SERVER_PORT"] == str(port) and j["SERVER_NAME"] == "fcgi.test"
            assert j["REMOTE_USER"] == "user" and j["AUTH_TYPE"] == ""
            assert j["HTTP_X_FORWARDED_PROTO"] == "https" and j["PATH_INFO"] == "/x"
    finally:
        berth.stop()

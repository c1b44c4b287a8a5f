import Caddyfile
import Foundation
import HTTPCore
import IOCore
import Testing

@testable import Config
@testable import Handlers

/// Caddyfile → config → handler tree → response, for every form of the response directives,
/// with the expectations taken from Caddy 2.11.7 (see Tests/integration/test_directives_vs_caddy.py
/// for the same cases against a live Caddy).
@Suite("Directive Caddyfiles")
struct DirectiveConfigTests {
    struct Reply {
        var status: Int
        var fields: [(String, String)]
        var body: [UInt8]
        var aborted: Bool
        func header(_ n: String) -> String? { fields.first { $0.0.lowercased() == n.lowercased() }?.1 }
        func headers(_ n: String) -> [String] { fields.filter { $0.0.lowercased() == n.lowercased() }.map(\.1) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    final class Sink: ResponseSink {
        var reply = Reply(status: 0, fields: [], body: [], aborted: false)
        func take(_ r: HTTPResponse) {
            reply.status = r.status
            reply.fields = r.fields.pairs.filter { !$0.0.isEmpty }
        }
        func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
            take(response)
            reply.body = Array(body)
        }
        func sendHead(_ response: HTTPResponse, contentLength: Int64?) { take(response) }
        func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) { reply.body += bytes }
        func finish(_ response: HTTPResponse) {}
        func abort(_ response: HTTPResponse) { reply.aborted = true }
    }

    static func adapt(_ site: String, key: String = "http://t.test") throws -> BerthConfig {
        try CaddyfileAdapter.adapt(Array((key + " {\n" + site + "\n}\n").utf8), filename: "Caddyfile", environment: [:])
    }

    static func server(_ site: String, key: String = "http://t.test") throws -> ServerHandler {
        let c = try adapt(site, key: key)
        return try RuntimeBuilder.buildServerHandler(try #require(c.servers.first), context: BuildContext(environment: [:]))
    }

    static func request(_ method: String, _ target: String, host: String = "t.test", headers: [(String, String)]) -> HTTPRequest {
        let r = HTTPRequest()
        r.methodRange = Array(method.utf8).withUnsafeBytes { r.appendLine($0) }
        r.method = Array(method.utf8).withUnsafeBytes { HTTPMethod.classify($0) }
        r.targetRange = Array(target.utf8).withUnsafeBytes { r.appendLine($0) }
        if let q = Array(target.utf8).firstIndex(of: UInt8(ascii: "?")) {
            r.pathRange = r.targetRange.lowerBound..<(r.targetRange.lowerBound + q)
            r.queryRange = (r.targetRange.lowerBound + q + 1)..<r.targetRange.upperBound
        } else {
            r.pathRange = r.targetRange
        }
        r.authorityRange = Array(host.utf8).withUnsafeBytes { r.appendLine($0) }
        for (n, v) in headers { r.fields.append(name: n, value: v) }
        r.connection = ConnectionInfo(remote: SocketAddress(ip: "127.0.0.1", port: 5000), local: nil, isTLS: false)
        return r
    }

    func get(_ site: String, _ target: String, method: String = "GET", host: String = "t.test",
             headers: [(String, String)] = [], key: String = "http://t.test") throws -> Reply {
        let h = try Self.server(site, key: key)
        let sink = Sink()
        let response = HTTPResponse(sink: sink)
        withExtendedLifetime(sink) { _ = h.handle(Self.request(method, target, host: host, headers: headers), response) }
        return sink.reply
    }

    func adaptError(_ site: String) -> String? {
        do {
            _ = try Self.server(site)
            return nil
        } catch {
            return "\(error)"
        }
    }

    // MARK: respond

    @Test func respondForms() throws {
        #expect(try get("respond \"Hello world\n\"", "/").text == "Hello world\n")
        #expect(try get("respond 404", "/").status == 404)
        let both = try get("respond \"gone\" 410", "/")
        #expect(both.status == 410 && both.text == "gone")
        let heredoc = try get("respond <<TXT\n\t\tline one\n\t\t  two\n\t\tTXT 201", "/")
        #expect(heredoc.status == 201 && heredoc.text == "line one\n  two")
        let blk = try get("respond 201 {\n\t\tbody \"block\"\n\t\tclose\n\t}", "/")
        #expect(blk.status == 201 && blk.text == "block")
        let ph = try get("respond \"{host} {path} {query} {nope} {vars.x}\"", "/a%20b?q=1", host: "T.test:81")
        #expect(ph.text == "T.test /a b q=1 {nope} ")
        #expect(try get("respond `{\"p\": \"{path}\"}`", "/x").header("Content-Type") == "application/json")
        #expect(try get("respond \"{query}\"", "/").header("Content-Type") == nil)
    }

    // MARK: redir

    @Test func redirForms() throws {
        let r = try get("redir /a /b", "/a")
        #expect(r.status == 302 && r.header("Location") == "/b" && r.body.isEmpty && r.header("Content-Type") == nil)
        #expect(try get("redir https://x{uri} permanent", "/p?q").header("Location") == "https://x/p?q")
        // A first argument starting with / is a matcher: `redir /t 308` redirects /t to "308".
        #expect(try get("redir /t 308", "/t").header("Location") == "308")
        #expect(try get("redir * /t temporary", "/").status == 302)
        #expect(try get("redir * /t 308", "/").status == 308)
        #expect(try get("redir * /t 401", "/").status == 401)
        let host = try get("redir https://{host}{uri}", "/a/../b", host: "REDIR.TEST:8080", key: "http://")
        #expect(host.header("Location") == "https://REDIR.TEST/a/../b")
        #expect(try get("redir https://{host}{uri}", "/p", host: "[::1]:8080", key: "http://").header("Location") == "https://::1/p")
        #expect(try get("redir https://{host}{uri}", "/p", host: "[::1]", key: "http://").header("Location") == "https://[::1]/p")
        let html = try get("redir https://e.com/<x>&\"y\" html", "/")
        #expect(html.status == 200 && html.header("Location") == nil)
        #expect(html.header("Content-Type") == "text/html; charset=utf-8")
        #expect(html.text.contains("window.location.replace(\"https://e.com/&lt;x&gt;&amp;&#34;y&#34;\");"))
        #expect(html.text.hasPrefix("<!DOCTYPE html>\n<html>\n\t<head>\n\t\t<title>Redirecting...</title>"))
        let code = try get("redir * /z {http.request.header.X-Code}", "/", headers: [("X-Code", "303")])
        #expect(code.status == 303)
    }

    @Test func redirErrors() {
        #expect(adaptError("redir /a /b 200")?.contains("Redir code not in the 3xx range or 401: '200'") == true)
        #expect(adaptError("redir /a /b nope")?.contains("Not a supported redir code type or not valid integer: 'nope'") == true)
        #expect(adaptError("redir /only")?.contains("wrong argument count") == true)
    }

    // MARK: header

    @Test func headerForms() throws {
        let site = """
            header X-Set v1
            header +X-Add a
            header +X-Add b
            header /d -X-Set
            header /blk {
                X-One 1
                >X-Late late
                ?Content-Type text/html
            }
            header /r Content-Type "text/(.*)" "application/$1"
            header /rd >Content-Type "text/(.*)" "application/$1"
            respond "x"
            """
        let base = try get(site, "/")
        #expect(base.header("X-Set") == "v1" && base.headers("X-Add") == ["a", "b"])
        #expect(try get(site, "/d").header("X-Set") == nil)
        let blk = try get(site, "/blk")
        #expect(blk.header("X-One") == "1" && blk.header("X-Late") == "late")
        #expect(blk.header("Content-Type") == "text/plain; charset=utf-8")
        // Without `>` the replacement runs before respond sets Content-Type (as in Caddy).
        #expect(try get(site, "/r").header("Content-Type") == "text/plain; charset=utf-8")
        #expect(try get(site, "/rd").header("Content-Type") == "application/plain; charset=utf-8")
        #expect(adaptError("header X {\n\t\tY z\n\t}")?.contains("cannot specify headers in both arguments and block") == true)
        #expect(adaptError("header X \"a(\" b")?.contains("error parsing regexp") == true)
    }

    // MARK: encode

    @Test func encodeForms() throws {
        let big = String(repeating: "abcdefgh ", count: 200)
        let r = try get("encode gzip\nrespond \"\(big)\"", "/", headers: [("Accept-Encoding", "gzip, zstd")])
        #expect(r.header("Content-Encoding") == "gzip" && r.header("Vary") == "Accept-Encoding")
        #expect(Decompression.gunzip(r.body).map { String(decoding: $0, as: UTF8.self) } == big)
        let pref = try get("encode\nrespond \"\(big)\"", "/", headers: [("Accept-Encoding", "gzip, zstd")])
        #expect(pref.header("Content-Encoding") == "zstd")
        let block = try get("encode {\n\t\tgzip 9\n\t\tminimum_length 10\n\t\tmatch {\n\t\t\tstatus 2xx\n\t\t}\n\t}\nrespond \"0123456789abc\"", "/",
                            headers: [("Accept-Encoding", "gzip")])
        #expect(block.header("Content-Encoding") == "gzip")
        #expect(adaptError("encode br")?.contains("http.encoders.br") == true)
    }

    // MARK: rewrite, uri, method, try_files

    @Test func rewriteForms() throws {
        let show = "respond \"{path}|{uri}|{orig_uri}|{method}\""
        #expect(try get("rewrite /old /new\n" + show, "/old?x=1").text == "/new|/new?x=1|/old?x=1|GET")
        #expect(try get("rewrite /everything\n" + show, "/a").text == "/everything|/everything|/a|GET")
        #expect(try get("rewrite /r* /one\nrewrite /r/x /two\n" + show, "/r/x").text == "/two|/two|/r/x|GET")
        #expect(try get("uri strip_prefix /api\n" + show, "/api/v1").text == "/v1|/v1|/api/v1|GET")
        #expect(try get("uri strip_suffix .php\n" + show, "/a.php").text == "/a|/a|/a.php|GET")
        #expect(try get("uri replace a b 1\n" + show, "/aaa").text == "/baa|/baa|/aaa|GET")
        #expect(try get("uri path_regexp ^/u/(.*)$ /user/$1\n" + show, "/u/x").text == "/user/x|/user/x|/u/x|GET")
        #expect(try get("method /m POST\n" + show, "/m").text == "/m|/m|/m|POST")
        #expect(adaptError("uri nope x")?.contains("unrecognized URI manipulation 'nope'") == true)
        #expect(adaptError("rewrite")?.contains("too few arguments") == true)
    }

    @Test func tryFilesCompilesToFileMatcherAndRewrite() throws {
        let c = try Self.adapt("try_files {path} /index.php?{query}&p={path}\nrespond x")
        let json = c.json.serialized(pretty: false)
        #expect(json.contains(#""file":{"try_files":["{http.request.uri.path}"]}"#))
        #expect(json.contains(#""uri":"{http.matchers.file.relative}?{http.request.uri.query}&p={http.request.uri.path}""#))
        #expect(json.contains(#""group":"group"#))
    }

    // MARK: handle, handle_path, route, handle_errors, error, abort

    @Test func handleAndRoute() throws {
        let site = """
            handle /api/* {
                respond "api {path}"
            }
            handle_path /static/* {
                respond "static {path} {orig_uri}"
            }
            handle {
                respond "default"
            }
            """
        #expect(try get(site, "/api/x").text == "api /api/x")
        #expect(try get(site, "/static/a.css?v=1").text == "static /a.css /static/a.css?v=1")
        #expect(try get(site, "/other").text == "default")
        let route = "route {\n\t\theader X-A a\n\t\trespond \"first\"\n\t\theader X-Never n\n\t}"
        let r = try get(route, "/")
        #expect(r.text == "first" && r.header("X-A") == "a" && r.header("X-Never") == nil)
        #expect(adaptError("handle {\n\t\tbind 127.0.0.1\n\t}")?.contains("not an ordered HTTP handler") == true)
        #expect(adaptError("handle_path api {\n\t}")?.contains("path matcher must begin with '/', got api") == true)
    }

    @Test func errorsAndHandleErrors() throws {
        let site = """
            error /forbidden "Nope" 403
            error /boom "boom {path}"
            abort /abort
            handle_errors 404 410 {
                respond "custom {err.status_code} [{err.message}]"
            }
            handle_errors {
                respond "any {err.status_code} {err.status_text} [{err.message}]"
            }
            """
        let f = try get(site, "/forbidden")
        #expect(f.status == 403 && f.text == "any 403 Forbidden [Nope]")
        let b = try get(site, "/boom")
        #expect(b.status == 500 && b.text == "any 500 Internal Server Error [boom /boom]")
        #expect(try get(site, "/abort").aborted)
        let plain = try get("error 418", "/")
        #expect(plain.status == 418 && plain.body.isEmpty)
        let tf = try get("try_files {path} =404\nhandle_errors {\n\t\trespond \"nf {err.status_code} {err.message}\"\n\t}", "/missing")
        #expect(tf.status == 404 && tf.text == "nf 404 404")
        #expect(adaptError("handle {\n\t\thandle_errors {\n\t\t}\n\t}")?.contains("not an ordered HTTP handler") == true)
        let json = try Self.adapt(site).json.serialized(pretty: false)
        #expect(json.contains(#""errors":{"routes":"#))
        #expect(json.contains(#""expression":"{http.error.status_code} in [404, 410]""#))
    }

    // MARK: matchers

    @Test func namedMatchers() throws {
        let site = """
            @pre path_regexp num ^/n/(\\d+)$
            @q query a=1
            @two {
                path /two/a
                path /two/b
                method GET
            }
            @notx not path /x*
            @hdr header X-Foo bar*
            respond @pre "num {re.num.1}"
            respond @q "q"
            respond @two "two"
            respond @hdr "hdr"
            respond @notx "notx"
            respond "x"
            """
        #expect(try get(site, "/n/42").text == "num 42")
        #expect(try get(site, "/x?a=1").text == "q")
        #expect(try get(site, "/two/b").text == "two")
        #expect(try get(site, "/x", headers: [("X-Foo", "bar!")]).text == "hdr")
        #expect(try get(site, "/y").text == "notx")
        #expect(try get(site, "/x").text == "x")
        #expect(adaptError("@m nosuch x\nrespond @m x")?.contains("module not registered: http.matchers.nosuch") == true)
        #expect(adaptError("@m path_regexp (\nrespond @m x")?.contains("error parsing regexp") == true)
        #expect(adaptError("@m query nope\nrespond @m x")?.contains("must be in param=val format") == true)
        #expect(adaptError("@m remote_ip forwarded\nrespond @m x")?.contains("client_ip") == true)
        let json = try Self.adapt(site).json.serialized(pretty: false)
        #expect(json.contains(#""path":["/two/a","/two/b"]"#))
    }

    @Test func shorthandsAreExpandedLikeCaddy() {
        #expect(Shorthands.expand("{host}{uri}") == "{http.request.host}{http.request.uri}")
        #expect(Shorthands.expand("{re.name.1}|{err.status_code}|{labels.0}|{query.a}|{path}") ==
                "{http.regexp.name.1}|{http.error.status_code}|{http.request.host.labels.0}|{http.request.uri.query.a}|{http.request.uri.path}")
        #expect(Shorthands.expand("{hostx}") == "{hostx}")
    }
}

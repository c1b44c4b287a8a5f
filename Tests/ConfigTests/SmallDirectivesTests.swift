import Caddyfile
import HTTPCore
import IOCore
import Testing

@testable import Config
@testable import Handlers

/// `request_header`, `log_skip` / `log_append`, `vars` (+ matchers) and `map`: Caddyfile →
/// handlers → what the request looks like afterwards. Expectations from Caddy 2.11.7; the same
/// cases run against a live Caddy in Tests/integration/test_small_directives.py.
@Suite("Small directives")
struct SmallDirectivesTests {
    typealias D = DirectiveConfigTests

    /// Runs `site` on a request and returns the request afterwards (and the reply).
    func run(_ site: String, _ target: String, host: String = "t.test", headers: [(String, String)] = []) throws
        -> (request: HTTPRequest, reply: D.Reply)
    {
        let h = try D.server(site)
        let sink = D.Sink()
        let response = HTTPResponse(sink: sink)
        let r = D.request("GET", target, host: host, headers: headers)
        withExtendedLifetime(sink) { _ = h.handle(r, response) }
        return (r, sink.reply)
    }

    func adaptError(_ site: String) -> String? {
        do {
            _ = try D.server(site)
            return nil
        } catch {
            return "\(error)"
        }
    }

    static func host(_ r: HTTPRequest) -> String? {
        r.authorityRange.map { r.withLineBytes($0) { String(decoding: $0, as: UTF8.self) } }
    }

    // MARK: request_header

    @Test func requestHeaderOperations() throws {
        let site = """
            request_header X-Set v
            request_header +X-Add a2
            request_header -X-Del
            request_header X-Rep ^abc(.*) xyz$1
            request_header X-Colon: c
            request_header >X-Gt g
            respond "{header.X-Set}|{header.X-Add}|{header.X-Del}|{header.X-Rep}|{header.X-Colon}|{header.X-Gt}"
            """
        let (r, reply) = try run(site, "/", headers: [("X-Add", "a1"), ("X-Del", "d"), ("X-Rep", "abcdef"), ("x-set", "old")])
        #expect(reply.text == "v|a1,a2||xyzdef|c|g")
        #expect(r.fields.value(named: "X-Set") == "v")
        #expect(r.fields.value(named: "X-Del") == nil)
        // The Host is not left among the fields.
        #expect(r.fields.value(named: "Host") == nil)
        #expect(Self.host(r) == "t.test")
    }

    @Test func requestHeaderHost() throws {
        let (r, reply) = try run("request_header Host other.test:81\nrespond \"{host} {hostport}\"", "/")
        #expect(reply.text == "other.test other.test:81")
        #expect(Self.host(r) == "other.test:81")
        let (r2, reply2) = try run("request_header -Host\nrespond \"[{hostport}]\"", "/")
        #expect(reply2.text == "[]" && Self.host(r2) == nil)
        // `+Host` appends after the request's Host, so the added value wins.
        #expect(try run("request_header +Host added.test\nrespond \"{hostport}\"", "/").reply.text == "added.test")
        // Deleting every field deletes the Host too.
        #expect(try run("request_header -*\nrespond \"[{hostport}]{header.X-A}\"", "/", headers: [("X-A", "1")]).reply.text == "[]")
        #expect(try run("request_header -X-*\nrespond \"{hostport}{header.X-A}{header.Y}\"", "/", headers: [("X-A", "1"), ("Y", "y")]).reply.text == "t.testy")
    }

    @Test func requestHeaderMatcherAndPlaceholders() throws {
        let site = "request_header /a/* X-P \"{path} {header.X-In}\"\nrespond \"{header.X-P}\""
        #expect(try run(site, "/a/b", headers: [("X-In", "i")]).reply.text == "/a/b i")
        #expect(try run(site, "/b", headers: [("X-In", "i")]).reply.text == "")
    }

    @Test func requestHeaderErrors() {
        #expect(adaptError("request_header")?.contains("wrong argument count") == true)
        #expect(adaptError("request_header X a b c")?.contains("wrong argument count") == true)
        #expect(adaptError("request_header ?X v")?.hasPrefix("?X: the default header modifier ('?') can only be used on response headers") == true)
        #expect(adaptError("request_header X ( y")?.contains("replacement 0 for header field 'X'") == true)
    }
}

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

extension SmallDirectivesTests {
    // MARK: vars, log_skip, log_append

    @Test func varsTypedAndMatchers() throws {
        let site = """
            vars n 5
            vars {
                s "v {path}"
                b true
            }
            @vm vars n 5
            @vr vars_regexp s ^v\\s/(.*)$
            respond @vm "vm {vars.n} {vars.s} {vars.b}"
            respond @vr "vr {re.vr.1}"
            """
        let (r, reply) = try run(site, "/x")
        #expect(reply.text == "vm 5 v /x true")
        let kind = Array("n".utf8).withUnsafeBytes { k in r.vars.withTypedValue(k) { $1 } }
        #expect(kind == .literal)
        let (_, reply2) = try run(site.replacingOccurrences(of: "@vm vars n 5", with: "@vm vars n 6"), "/abc")
        #expect(reply2.text == "vr abc")
    }

    @Test func logSkipIsTheTypedVariable() throws {
        #expect(try run("log_skip /s\nrespond x", "/s").request.logSkip)
        #expect(try run("log_skip /s\nrespond x", "/t").request.logSkip == false)
        #expect(try run("vars log_skip true\nrespond x", "/").request.logSkip)
        #expect(try run("vars log_skip \"true\"\nrespond x", "/").request.logSkip == false)
        #expect(adaptError("log_skip /x {\n\t\tfoo\n\t}")?.hasPrefix("log_skip directive does not accept blocks") == true)
        let c = try D.adapt("skip_log /x\nrespond x")
        #expect(c.warnings.contains { $0.hasSuffix("the 'skip_log' directive is deprecated, please use 'log_skip' instead!") })
        // Also inside a named route.
        let n = try CaddyfileAdapter.adapt(Array("&(q) {\n\tskip_log\n}\nhttp://t.test {\n\tinvoke q\n}\n".utf8), filename: "Caddyfile", environment: [:])
        #expect(n.warnings == ["Caddyfile:2: the 'skip_log' directive is deprecated, please use 'log_skip' instead!"])
    }

    @Test func logAppendEarlyAndLate() throws {
        let (r, _) = try run("log_append a {path}\nlog_append <b {path}\nrespond x", "/p")
        let entries = r.logFields.entries
        #expect(entries.count == 2)
        #expect(entries.filter(\.early).count == 1)
        #expect(String(decoding: r.logFields.bytes, as: UTF8.self) == "/p")
        #expect(adaptError("log_append k {http.request.body}")?.contains("not supported") == true)
    }

    // MARK: map

    @Test func mapLazyRegexDefaults() throws {
        let site = """
            map {path} {dest} {d2} {
                /a x 5
                ~^/b(.*)$ "y${1}" -
                /c - "c2 {host}"
                default d "def {method}"
            }
            respond "{dest}|{d2}|{nope}"
            """
        #expect(try run(site, "/a").reply.text == "x|5|{nope}")
        #expect(try run(site, "/bzz").reply.text == "yzz|def GET|{nope}")
        #expect(try run(site, "/c").reply.text == "d|c2 t.test|{nope}")
        #expect(try run(site, "/other").reply.text == "d|def GET|{nope}")
        // Before the map ran its destinations are unknown (kept literally by respond).
        #expect(try run("respond /r \"{dest}\"\nmap {path} {dest} {\n\t/r x\n}", "/r").reply.text == "x")
        #expect(try run("handle /h {\n\trespond \"{dest}\"\n}\nmap /m {path} {dest} {\n\t/h x\n}", "/h").reply.text == "{dest}")
    }

    @Test func mapErrors() {
        #expect(adaptError("map {path}")?.hasPrefix("missing destination argument(s)") == true)
        #expect(adaptError("map {path} {dest} {\n\t/a x y\n}")?.hasPrefix("too many outputs") == true)
        #expect(adaptError("map {path} {host} {\n\t/a x\n}")?.hasPrefix("destination {host} conflicts with a Caddyfile placeholder shorthand") == true)
        #expect(adaptError("map {path} {dest} {\n\t/a x\n\t/a y\n}")?.hasPrefix("mapping 1 has a duplicate input '/a' previously used with mapping 0") == true)
        #expect(adaptError("map {path} dest {\n\t/a x\n}")?.hasPrefix("destination must be a placeholder and only a placeholder") == true)
    }
}

extension SmallDirectivesTests {
    // MARK: named routes and invoke

    func runFile(_ caddyfile: String, _ target: String) throws -> D.Reply {
        let c = try CaddyfileAdapter.adapt(Array(caddyfile.utf8), filename: "Caddyfile", environment: [:])
        let h = try RuntimeBuilder.buildServerHandler(try #require(c.servers.first), context: BuildContext(environment: [:]))
        let sink = D.Sink()
        let response = HTTPResponse(sink: sink)
        withExtendedLifetime(sink) { _ = h.handle(D.request("GET", target, headers: []), response) }
        return sink.reply
    }

    @Test func invokeRunsTheNamedRouteThenGoesOn() throws {
        let file = """
            &(tag) {
                @a path /a
                header @a X-Tag a
                header X-Always yes
            }
            &(answer) {
                respond "named {path}"
            }
            http://t.test {
                invoke tag
                handle /n {
                    invoke answer
                }
                respond "after"
            }
            """
        let a = try runFile(file, "/a")
        #expect(a.text == "after" && a.header("X-Tag") == "a" && a.header("X-Always") == "yes")
        #expect(try runFile(file, "/b").header("X-Tag") == nil)
        #expect(try runFile(file, "/n").text == "named /n")
        // Caddy 2.11 keeps only the first handler of a named route that consolidates to one
        // unmatched route: here the header, not the respond.
        let first = try runFile("&(x) {\n\theader X-A y\n\trespond \"hi\"\n}\nhttp://t.test {\n\tinvoke x\n\trespond \"after\"\n}\n", "/")
        #expect(first.text == "after" && first.header("X-A") == "y")
    }

    @Test func invokeErrors() {
        #expect(throws: ConfigError.self) {
            try CaddyfileAdapter.adapt(Array("http://t.test {\n\tinvoke nope\n}\n".utf8), filename: "Caddyfile", environment: [:])
        }
        #expect(adaptError("invoke")?.contains("wrong argument count") == true)
    }
}

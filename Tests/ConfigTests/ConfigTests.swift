import JSON
import Caddyfile
import Foundation
import HTTPCore
import Handlers
import IOCore
import Testing

@testable import Config

/// Adapts Caddyfile text (named `Caddyfile` in errors).
func adapt(_ text: String, env: [String: String] = [:]) throws(ConfigError) -> BerthConfig {
    try CaddyfileAdapter.adapt(Array(text.utf8), filename: "Caddyfile", environment: env)
}

/// The error text adapting `text` fails with (nil when it succeeds).
func adaptError(_ text: String) -> String? {
    do {
        _ = try adapt(text)
        return nil
    } catch {
        return error.description
    }
}

@Suite("Seed examples")
struct SeedExampleTests {
    func example(_ n: Int) throws -> (path: String, bytes: [UInt8]) {
        let url = Golden.directory.appendingPathComponent("examples/example\(n).Caddyfile")
        return (url.path, Array(try Data(contentsOf: url)))
    }

    /// The example either adapts (returned) or fails with a "not supported by this Berth build
    /// yet" error that names FILE:LINE, where that line holds the directive or site it names.
    /// (Examples 2–4 need features that are being built; both outcomes are checked strictly.)
    func adaptOrUnsupported(_ n: Int) throws -> BerthConfig? {
        let (path, bytes) = try example(n)
        do {
            return try CaddyfileAdapter.adapt(bytes, filename: path, environment: [:])
        } catch {
            let text = error.description
            #expect(text.contains("not supported by this Berth build yet"), "\(text)")
            let suffix = try #require(text.range(of: ", at \(path):", options: .backwards), "\(text) does not name \(path):LINE")
            let line = try #require(Int(text[suffix.upperBound...]), "\(text)")
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            let named = try #require(text.split(separator: "'").dropFirst().first.map(String.init), "\(text) names nothing in quotes")
            #expect(lines.indices.contains(line - 1) && lines[line - 1].contains(named), "line \(line) of \(path) does not contain \(named)")
            return nil
        }
    }

    /// Listener groups of the servers, e.g. `[["fd/3"], ["fd/4", "fdgram/5"]]`.
    func listenerSets(_ c: BerthConfig) -> Set<[String]> {
        Set(c.servers.map { $0.listeners.map(\.address.description).sorted() })
    }

    @Test func example1() throws {
        let (path, bytes) = try example(1)
        let c = try CaddyfileAdapter.adapt(bytes, filename: path, environment: [:])
        #expect(c.admin == .unix(path: "/run/admin.sock", mode: 0o200))
        #expect(c.servers.count == 1)
        let s = try #require(c.servers.first)
        #expect(s.name == "srv0")
        #expect(s.listeners.map(\.address) == [.fd(3)])
        #expect(s.listeners.map(\.protocols) == [[.h1]])
        #expect(s.logs?.loggerNames == ["localhost": [""]] && s.logs?.skipHosts == [] && s.logs?.logAll == false)
        #expect(c.json.serialized() == #"{"admin":{"listen":"unix//run/admin.sock"},"apps":{"http":{"servers":{"srv0":{"listen":["fd/3"],"listen_protocols":[["h1"]],"routes":[{"match":[{"host":["localhost"]}],"handle":[{"handler":"subroute","routes":[{"handle":[{"body":"Hello world\n","handler":"static_response"}]}]}],"terminal":true}],"logs":{"logger_names":{"localhost":[""]}}}}}},"berth":{"version":1}}"#)

        // Built and run: the body is "Hello world\n" (12 bytes) for localhost only.
        let handler = try RuntimeBuilder.buildServerHandler(s, context: BuildContext(environment: [:]))
        let hello = serve(handler, host: "LOCALHOST:8080")
        #expect(hello.status == 200 && hello.body == "Hello world\n")
        #expect(hello.fields == ["Content-Type: text/plain; charset=utf-8"])
        let other = serve(handler, host: "other")
        #expect(other.status == 200 && other.body == "" && other.fields.isEmpty)
    }

    @Test func example2() throws {
        guard let c = try adaptOrUnsupported(2) else { return }
        // Two sites on fd/3 (h1 only) → one server, one route per host, both logged.
        #expect(c.servers.count == 1)
        let s = try #require(c.servers.first)
        #expect(s.listeners.map(\.address) == [.fd(3)] && s.listeners.map(\.protocols) == [[.h1]])
        // Longer host first (Caddy's site sort).
        #expect(s.routes.map { r in r.match.first?.compactMap { ($0 as? HostMatcherSpec)?.hosts }.flatMap { $0 } ?? [] }
                    == [["whoami.example.com"], ["nginx.example.com"]])
        #expect(Set(s.logs?.loggedHosts ?? []) == ["whoami.example.com", "nginx.example.com"])
        let json = c.json.serialized()
        #expect(json.contains(#""handler":"reverse_proxy""#))
        #expect(json.contains("whoami:80") && json.contains("nginx:80"))
    }

    @Test func example3() throws {
        guard let c = try adaptOrUnsupported(3) else { return }
        // caddy-behavior §2: srv0 {fd/3 [h1]}, srv1 {fd/4 [h1 h2], fdgram/5 [h3]} (no phantom).
        #expect(listenerSets(c) == [["fd/3"], ["fd/4", "fdgram/5"]])
        #expect(c.autoHTTPS == "disable_redirects")
    }

    @Test func example4() throws {
        guard let c = try adaptOrUnsupported(4) else { return }
        // caddy-behavior §2: [0.0.0.0:443, [::1]:443], [0.0.0.0:80, [::1]:80], [fd/3], [fd/4, fdgram/5].
        #expect(listenerSets(c) == [["0.0.0.0:443", "[::1]:443"], ["0.0.0.0:80", "[::1]:80"], ["fd/3"], ["fd/4", "fdgram/5"]])
    }
}

/// Runs `handler` for a GET of `target` with `host`; returns what was sent.
func serve(_ handler: ServerHandler, target: String = "/", host: String?) -> (status: Int, fields: [String], body: String) {
    final class Sink: ResponseSink {
        var out: (Int, [String], String) = (0, [], "")
        func sendComplete(_ r: HTTPResponse, body: UnsafeRawBufferPointer) {
            out = (r.status, r.fields.pairs.map { "\($0.0): \($0.1)" }, String(decoding: body, as: UTF8.self))
        }
        func sendHead(_ r: HTTPResponse, contentLength: Int64?) {}
        func sendBody(_ r: HTTPResponse, _ bytes: UnsafeRawBufferPointer) {}
        func finish(_ r: HTTPResponse) {}
    }
    let r = HTTPRequest()
    r.methodRange = Array("GET".utf8).withUnsafeBytes { r.appendLine($0) }
    r.targetRange = Array(target.utf8).withUnsafeBytes { r.appendLine($0) }
    r.pathRange = r.targetRange
    if let host { r.authorityRange = Array(host.utf8).withUnsafeBytes { r.appendLine($0) } }
    let sink = Sink()
    let response = HTTPResponse(sink: sink)
    _ = withExtendedLifetime(sink) { handler.handle(r, response) }
    return sink.out
}

@Suite("Adapter semantics")
struct AdapterTests {
    @Test func globalOptionsReachTheConfig() throws {
        let c = try adapt("""
            {
            \tauto_https disable_redirects
            \tgrace_period 2m30s
            \tshutdown_delay 5s
            \tservers {
            \t\ttimeouts {
            \t\t\tread_header 5s
            \t\t\tread_body 1m
            \t\t\twrite 30s
            \t\t\tidle 2m
            \t\t}
            \t\tmax_header_size 16KiB
            \t}
            }

            :8080 {
            \trespond "hi"
            }
            """)
        #expect(c.autoHTTPS == "disable_redirects")
        #expect(c.gracePeriodMilliseconds == 150_000)
        #expect(c.shutdownDelayMilliseconds == 5_000)
        #expect(c.serverOptions.readHeaderMilliseconds == 5_000)
        #expect(c.serverOptions.readBodyMilliseconds == 60_000)
        #expect(c.serverOptions.writeMilliseconds == 30_000)
        #expect(c.serverOptions.idleMilliseconds == 120_000)
        #expect(c.serverOptions.maxHeaderBytes == 16_384)
        #expect(c.sourceFile == "Caddyfile")
    }

    @Test func defaults() throws {
        let c = try adapt(":8080 {\n\trespond hi\n}\n")
        #expect(c.admin == .default && c.admin == .tcp(host: "localhost", port: 2019))
        #expect(c.autoHTTPS == nil)
        #expect(c.gracePeriodMilliseconds == 10_000)
        #expect(c.shutdownDelayMilliseconds == 0)
        #expect(c.serverOptions == ServerOptions())
        #expect(c.servers.first?.listeners.first?.address == .tcp(host: "", port: 8080))
        #expect(c.servers.first?.listeners.first?.protocols == [.h1, .h2, .h3])
    }

    @Test(arguments: [
        ("admin off", AdminConfig.off),
        ("admin unix//run/a.sock", .unix(path: "/run/a.sock", mode: 0o200)),
        ("admin unix//run/a.sock|0600", .unix(path: "/run/a.sock", mode: 0o600)),
        ("admin unix//run/a.sock|777", .unix(path: "/run/a.sock", mode: 0o777)),
        ("admin fd/3", .fd(3)),
        ("admin fd/0x10", .fd(16)),
        ("admin :2020", .tcp(host: "localhost", port: 2020)),
        ("admin 0.0.0.0:2020", .tcp(host: "0.0.0.0", port: 2020)),
        ("admin [::1]:2020", .tcp(host: "::1", port: 2020)),
    ])
    func adminForms(_ line: String, _ expected: AdminConfig) throws {
        #expect(try adapt("{\n\t\(line)\n}\n:8080 {\n\trespond hi\n}\n").admin == expected)
    }

    @Test(arguments: [
        ("admin", "wrong argument count"),
        ("admin unix//a|999", "invalid octal mode"),
        ("admin unix/|0600", "unix socket path is empty"),
        ("admin localhost", "admin: invalid address 'localhost'"),
        ("admin :99999", "admin: invalid address ':99999'"),
        ("admin fd/x", "invalid file descriptor: fd/x"),
        ("admin off extra", "wrong argument count"),
        ("http_port 80x", "converting port '80x' to integer value: invalid syntax"),
        ("http_port 70000", "converting port '70000'"),
        ("grace_period soon", "invalid duration 'soon'"),
        ("servers :80 {\n\t\tmax_header_size 1KB\n\t}", "servers options for a single listener address (:80) are not supported by this Berth build yet"),
        ("servers {\n\t\tprotocols spdy\n\t}", "unknown protocol 'spdy': expected h1, h2, h2c or h3"),
        ("servers {\n\t\ttimeouts {\n\t\t\tread_header forever\n\t\t}\n\t}", "invalid duration 'forever'"),
        ("servers {\n\t\ttimeouts {\n\t\t\tslow 1s\n\t\t}\n\t}", "unrecognized timeouts option 'slow'"),
        ("servers {\n\t\tmax_header_size lots\n\t}", "invalid size 'lots'"),
        ("default_bind", "wrong argument count"),
        ("storage redis", "storage module 'redis' is not supported by this Berth build (only file_system)"),
        ("storage file_system", "missing root path (to use default, omit storage config entirely)"),
    ])
    func globalOptionErrors(_ line: String, _ fragment: String) {
        let e = adaptError("{\n\t\(line)\n}\n:8080 {\n\trespond hi\n}\n")
        #expect(e?.contains(fragment) == true, "\(e ?? "no error")")
        #expect(e?.hasSuffix("Caddyfile:2") == true || e?.contains(", at Caddyfile:") == true, "\(e ?? "")")
    }

    @Test func respondNeedsAnArgument() {
        // Caddy: `respond` takes 1 or 2 arguments even when a block follows.
        #expect(adaptError(":8080 {\n\trespond {\n\t\tbody x\n\t}\n}\n")?.hasPrefix("wrong argument count") == true)
        #expect(adaptError(":8080 {\n\trespond\n}\n")?.hasPrefix("wrong argument count") == true)
        #expect(adaptError(":8080 {\n\trespond a 200 c\n}\n")?.hasPrefix("wrong argument count") == true)
        #expect(adaptError(":8080 {\n\trespond a {\n\t\tbody b\n\t}\n}\n") == "body already specified, at Caddyfile:3")
        #expect(adaptError(":8080 {\n\trespond 200 {\n\t\tclose\n\t\tclose\n\t}\n}\n") == "close already specified, at Caddyfile:4")
        #expect(adaptError(":8080 {\n\trespond 200 {\n\t\tbogus\n\t}\n}\n") == "unrecognized subdirective 'bogus', at Caddyfile:3")
        #expect(adaptError(":8080 {\n\trespond x 1000\n}\n") == "bad status code '1000', at Caddyfile:2")
    }

    @Test func respondStatusOrBody() throws {
        func handler(_ line: String) throws -> String {
            let c = try adapt(":8080 {\n\t\(line)\n}\n")
            guard case .subroute(let routes)? = c.servers.first?.routes.first?.handle.first,
                  case .spec(let spec)? = routes.first?.handle.first else { return "?" }
            return HandlerConfig.spec(spec).json.serialized()
        }
        #expect(try handler("respond 404") == #"{"handler":"static_response","status_code":404}"#)
        #expect(try handler("respond 000") == #"{"body":"000","handler":"static_response"}"#)
        #expect(try handler("respond -12") == #"{"body":"-12","handler":"static_response"}"#)
        #expect(try handler("respond 4040") == #"{"body":"4040","handler":"static_response"}"#)
        #expect(try handler("respond \"\"") == #"{"handler":"static_response"}"#)
        #expect(try handler("respond \"\" 204") == #"{"handler":"static_response","status_code":204}"#)
        #expect(try handler("respond 200 {\n\t\tbody b\n\t\tclose\n\t}") == #"{"body":"b","close":true,"handler":"static_response","status_code":200}"#)
    }

    @Test func logBlockForms() throws {
        let c = try adapt("http://a.example {\n\tlog {\n\t\toutput stderr\n\t\tformat json\n\t\tlevel INFO\n\t}\n\trespond a\n}\n")
        #expect(c.servers.first?.logs?.loggedHosts == ["a.example"])
        #expect(adaptError("http://a.example {\n\tlog {\n\t\toutput net localhost:9\n\t}\n}\n") == "log output 'net' is not supported by this Berth build yet, at Caddyfile:3")
        #expect(adaptError("http://a.example {\n\tlog {\n\t\tformat filter\n\t}\n}\n") == "log format 'filter' is not supported by this Berth build yet (json and console only), at Caddyfile:3")
        #expect(adaptError("http://a.example {\n\tlog {\n\t\tinclude http\n\t}\n}\n") == "include is not allowed in the log directive, at Caddyfile:3")
        let named = try adapt("http://a.example {\n\tlog access\n\trespond a\n}\n")
        #expect(named.servers.first?.logs?.loggerNames == ["a.example": ["access"]])
    }

    @Test func sitePathsAndNamedRoutesAreRejected() {
        #expect(adaptError("http://a.example/api {\n\trespond a\n}\n") == "site address 'http://a.example/api': paths in site addresses are not supported by this Berth build yet; use a path matcher, at Caddyfile:1")
        // Named routes are supported now: one nobody invokes is simply not used (as in Caddy).
        #expect(adaptError("&(shared) {\n\trespond a\n}\n") == nil)
    }

    @Test func namedMatcherErrors() {
        #expect(adaptError(":8080 {\n\t@a path\n\trespond @a x\n}\n")?.hasPrefix("wrong argument count") == true)
        #expect(adaptError(":8080 {\n\t@a tls sni x\n\trespond @a x\n}\n") == "matcher 'tls' is not supported by this Berth build yet, at Caddyfile:2")
        #expect(adaptError(":8080 {\n\t@a bogus x\n\trespond @a x\n}\n") == "getting matcher module 'bogus': module not registered: http.matchers.bogus, at Caddyfile:2")
        #expect(adaptError(":8080 {\n\t@a \"{path} == '/x'\"\n\trespond @a x\n}\n") == "matcher 'expression' (CEL) is not supported by Berth, at Caddyfile:2")
        #expect(adaptError(":8080 {\n\t@a path /a\n\t@a path /b\n\trespond @a x\n}\n") == "matcher is defined more than once: @a, at Caddyfile:3")
    }

    @Test func namedMatcherUsedBeforeItsDefinition() throws {
        let c = try adapt("http://a.example {\n\trespond @late \"late\"\n\t@late path /late\n}\n")
        #expect(c.json.serialized().contains(#"{"match":[{"path":["/late"]}],"handle":[{"body":"late","handler":"static_response"}]}"#))
    }

    @Test func routeOrderFollowsCaddySortRoutes() throws {
        // Checked against `caddy adapt` (2.11.7): the single path of a named matcher counts,
        // equal trimmed paths put the exact one first, longer trimmed paths go first.
        let c = try adapt("""
            :8080 {
            \trespond /foo* "a"
            \trespond /foo "b"
            \trespond /abc* "c"
            \trespond /abcd "d"
            \trespond @x "e"
            \t@x path /zzzzzzzzzz
            }
            """)
        let handler = try RuntimeBuilder.buildServerHandler(try #require(c.servers.first), context: BuildContext(environment: [:]))
        #expect(serve(handler, target: "/foo", host: "h").body == "b")
        #expect(serve(handler, target: "/foox", host: "h").body == "a")
        #expect(serve(handler, target: "/abcd", host: "h").body == "d")
        #expect(serve(handler, target: "/abcde", host: "h").body == "c")
        guard case .subroute(let routes)? = c.servers.first?.routes.first?.handle.first else {
            Issue.record("no subroute")
            return
        }
        let bodies = routes.map { r -> String in
            guard case .spec(let s)? = r.handle.first, let b = (s as? StaticResponseSpec)?.body else { return "?" }
            return b
        }
        #expect(bodies == ["e", "d", "c", "b", "a"])
    }

    @Test func siteWithCatchAllKeySortsAsItsLongestHost() throws {
        // Caddy: a block with keys `http://` and `http://long.example` is not a catch-all for
        // sorting (its longest host has length), but counts as a wildcard block.
        let c = try adapt("""
            http://, http://long.example {
            \tbind fd/3
            \trespond "mixed"
            }

            http://*.example {
            \tbind fd/3
            \trespond "wild"
            }

            http://a.example {
            \tbind fd/3
            \trespond "a"
            }
            """)
        let hosts = c.servers.first?.routes.map { r -> String in
            r.match.first?.compactMap { ($0 as? HostMatcherSpec)?.hosts.joined(separator: ",") }.joined() ?? "*"
        }
        #expect(hosts == ["a.example", "*", "*.example"])
    }

    @Test func environmentPlaceholdersAtParseTime() throws {
        let c = try adapt("http://{$SITE} {\n\trespond \"{$GREETING}\"\n}\n", env: ["SITE": "Env.Example", "GREETING": "hello"])
        #expect(c.json.serialized().contains(#""host":["env.example"]"#))
        #expect(c.json.serialized().contains(#""body":"hello""#))
    }

    @Test func runtimeEnvironmentPlaceholder() throws {
        let c = try adapt(":8080 {\n\trespond \"{env.WHO}\"\n}\n")
        let h = try RuntimeBuilder.buildServerHandler(try #require(c.servers.first), context: BuildContext(environment: ["WHO": "berth"]))
        #expect(serve(h, host: "x").body == "berth")
    }

    @Test func errorsEndWithFileAndLine() {
        #expect(ConfigError("boom", at: SourceLocation(file: "/etc/Caddyfile", line: 7)).description == "boom, at /etc/Caddyfile:7")
        #expect(ConfigError("boom").description == "boom")
        #expect(SourceLocation(file: "f", line: 1).description == "f:1")
    }
}

@Suite("Value parsers")
struct ValueParserTests {
    @Test(arguments: [
        ("0", 0), ("3", 3), ("42", 42), ("0x3", 3), ("0X1f", 31), ("0o17", 15), ("0O17", 15), ("017", 15),
        ("0b101", 5), ("0B11", 3), ("0x_1F", 31), ("0b1_0", 2), ("0_7", 7), ("0x7fffffffffffffff", Int.max),
    ])
    func parseUintAccepts(_ s: String, _ v: Int) {
        #expect(GoStrconv.parseUint(s) == v)
    }

    @Test(arguments: ["", "-1", "+1", "-0", "x3", "3x", "08", "0b2", "0x", "0o", "0xg", "1_000", "0x__1", "0x1_", "_1",
                      " 3", "3 ", "0x8000000000000000", "99999999999999999999", "٣"])
    func parseUintRejects(_ s: String) {
        #expect(GoStrconv.parseUint(s) == nil)
    }

    @Test(arguments: [
        ("10s", 10_000), ("1m30s", 90_000), ("500ms", 500), ("2h", 7_200_000), ("1.5s", 1_500), ("1d", 86_400_000),
        ("250us", 0), ("1500us", 2), ("1500µs", 2), ("2000000ns", 2), ("1h1m1s", 3_661_000), ("0", 0), ("5", 5_000),
        (".5s", 500),
    ])
    func durationsAccepted(_ s: String, _ ms: Int) {
        #expect(DurationText.parseMilliseconds(s) == ms)
    }

    @Test(arguments: ["", "s", "10", "10x", "1.2.3s", "ms", "1e3s", "-", "10 s", "9223372036854775807", "999999999999999h", "1s2", "+5s"])
    func durationsRejected(_ s: String) {
        if s == "10" {
            #expect(DurationText.parseMilliseconds(s) == 10_000)  // plain integers are seconds
        } else {
            #expect(DurationText.parseMilliseconds(s) == nil, "\(s)")
        }
    }

    @Test(arguments: [
        ("512", 512), ("512b", 512), ("1kb", 1000), ("1KB", 1000), ("1k", 1000), ("16KiB", 16_384), ("16ki", 16_384),
        ("1MB", 1_000_000), ("1MiB", 1_048_576), ("2GiB", 2_147_483_648), ("1.5KiB", 1536), ("1,000", 1000),
        ("10 MB", 10_000_000), ("1tb", 1_000_000_000_000), ("0", 0),
    ])
    func byteSizesAccepted(_ s: String, _ n: Int) {
        #expect(ByteSize.parse(s) == n)
    }

    @Test(arguments: ["", "KB", "-1", "-1KB", "1XB", "1 2", "inf", "infkb", "nan", "nanb", "1e3", "99999999999999999999EB", "9999999999PB"])
    func byteSizesRejected(_ s: String) {
        #expect(ByteSize.parse(s) == nil, "\(s)")
    }
}

@Suite("Site addresses")
struct SiteAddressTests {
    let loc = SourceLocation(file: "Caddyfile", line: 3)

    @Test(arguments: [
        ("http://", "http", "", ""), (":8080", "", "", "8080"), ("http://Example.COM", "http", "example.com", ""),
        ("http://example.com:8080", "http", "example.com", "8080"), ("example.com", "", "example.com", ""),
        ("HTTP://a", "http", "a", ""), ("http://[::1]:80", "http", "::1", "80"), ("[::1]", "", "::1", ""),
        ("localhost:443", "", "localhost", "443"), ("*.example.com", "", "*.example.com", ""),
    ])
    func parses(_ raw: String, _ scheme: String, _ host: String, _ port: String) throws {
        let a = try SiteAddress.parse(raw, at: loc)
        #expect(a.scheme == scheme && a.host == host && a.port == port && a.path == "")
        #expect(a.original == raw && a.description == raw)
    }

    @Test func keepsThePath() throws {
        #expect(try SiteAddress.parse("http://a/b/c", at: loc).path == "/b/c")
    }

    @Test(arguments: [
        ("ftp://a", "parsing key 'ftp://a': unsupported URL scheme ftp://, at Caddyfile:3"),
        ("ws://a", "parsing key: the scheme ws:// is only supported in browsers and is not supported by Caddy; use http:// or https://, at Caddyfile:3"),
        ("wss://a", "parsing key: the scheme wss:// is only supported in browsers and is not supported by Caddy; use http:// or https://, at Caddyfile:3"),
        ("http://a:443", "parsing key 'http://a:443': [http://a:443] scheme and port violate convention, at Caddyfile:3"),
        ("https://a:80", "parsing key 'https://a:80': [https://a:80] scheme and port violate convention, at Caddyfile:3"),
        ("a:port", "parsing key 'a:port': invalid port 'port', at Caddyfile:3"),
        ("a:70000", "parsing key 'a:70000': invalid port '70000', at Caddyfile:3"),
        ("[::1", "parsing key '[::1': missing ']' in address, at Caddyfile:3"),
        ("[::1]x", "parsing key '[::1]x': invalid address, at Caddyfile:3"),
    ])
    func errors(_ raw: String, _ message: String) {
        #expect(throws: ConfigError.self) { try SiteAddress.parse(raw, at: loc) }
        do {
            _ = try SiteAddress.parse(raw, at: loc)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func effectivePortAndScheme() throws {
        func a(_ s: String) throws -> SiteAddress { try SiteAddress.parse(s, at: loc) }
        #expect(try a("http://x").effectivePort(httpPort: 80, httpsPort: 443) == 80)
        #expect(try a("http://x").effectivePort(httpPort: 8080, httpsPort: 443) == 8080)
        #expect(try a("x").effectivePort(httpPort: 80, httpsPort: 8443) == 8443)
        #expect(try a(":9000").effectivePort(httpPort: 80, httpsPort: 443) == 9000)
        #expect(try a(":9000").isPlainHTTP(httpPort: 80, httpsPort: 443))  // no host, not the HTTPS port
        #expect(try !a("x:9000").isPlainHTTP(httpPort: 80, httpsPort: 443))  // a host on another port: HTTPS
        #expect(try a("x:80").isPlainHTTP(httpPort: 80, httpsPort: 443))
        #expect(try !a(":443").isPlainHTTP(httpPort: 80, httpsPort: 443))
        #expect(try !a("https://x:8080").isPlainHTTP(httpPort: 80, httpsPort: 443))
    }

    @Test func listenAddressText() {
        #expect(ListenAddress.fd(3).description == "fd/3")
        #expect(ListenAddress.fdgram(5).description == "fdgram/5")
        #expect(ListenAddress.fdname("web", index: nil).description == "fdname/web")
        #expect(ListenAddress.fdgramname("q", index: 2).description == "fdgramname/q/2")
        #expect(ListenAddress.tcp(host: "", port: 80).description == ":80")
        #expect(ListenAddress.tcp(host: "::1", port: 443).description == "[::1]:443")
        #expect(ListenAddress.unix(path: "/run/s").description == "unix//run/s")
        #expect(ListenAddress.fd(3).isInherited && !ListenAddress.tcp(host: "", port: 1).isInherited)
        #expect(ListenAddress.fdgramname("q", index: nil).isDatagram && !ListenAddress.fd(3).isDatagram)
    }
}

@Suite("JSON writer")
struct JSONWriterTests {
    @Test func quoting() {
        var s = ""
        JSONValue.quote("a\"b\\c\nd\re\tf\u{01}g\u{1F}é", into: &s)
        #expect(s == #""a\"b\\c\nd\re\tf\u0001g\u001fé""#)
    }

    @Test func compactAndPretty() {
        let v = JSONValue.object([("b", .array([.int(1), .null, .bool(true)])), ("a", .object([])), ("c", .array([]))])
        #expect(v.serialized() == #"{"b":[1,null,true],"a":{},"c":[]}"#)
        #expect(v.serialized(pretty: true) == "{\n\t\"b\": [\n\t\t1,\n\t\tnull,\n\t\ttrue\n\t],\n\t\"a\": {},\n\t\"c\": []\n}")
        #expect(v == v)
        #expect(JSONValue.object([("a", .int(1))]) != .object([("a", .int(2))]))
        #expect(JSONValue.object([("a", .int(1))]) != .object([("b", .int(1))]))
    }
}

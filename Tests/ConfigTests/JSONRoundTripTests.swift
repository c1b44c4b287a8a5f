import Foundation
import JSON
import Testing

@testable import Config

/// Berth's JSON reads back into the same config: adapt → JSON → decode → JSON is byte-identical
/// for every golden Caddyfile and every seed example, and the decoded config builds.
@Suite("Berth's JSON round trip")
struct JSONRoundTripTests {
    /// Golden names that adapt (those with a `.json` expectation), the four seed examples
    /// (`examples/exampleN`) included.
    static var inputs: [String] {
        Golden.names.filter { FileManager.default.fileExists(atPath: Golden.url($0, "json").path) }
    }

    static func adapted(_ name: String) throws -> BerthConfig {
        let input = try Data(contentsOf: Golden.url(name, "caddyfile"))
        return try CaddyfileAdapter.adapt(Array(input), filename: "\(name).caddyfile", environment: Golden.environment)
    }

    @Test func coversTheGoldensAndExamples() {
        #expect(Self.inputs.count >= 40)
        #expect((1...4).allSatisfy { Self.inputs.contains("examples/example\($0)") })
    }

    @Test(arguments: inputs)
    func roundTrip(_ name: String) throws {
        let original = try Self.adapted(name)
        for pretty in [true, false] {
            let text = original.json.serialized(pretty: pretty)
            let decoded = try JSONConfigDecoder.decode(Array(text.utf8), filename: "\(name).json")
            #expect(decoded.json.serialized(pretty: pretty) == text, "\(name) (pretty: \(pretty))")
            // The decoded config builds every server's handler tree, as the original does.
            let context = BuildContext(environment: Golden.environment, sourceFile: decoded.sourceFile)
            for s in decoded.servers { _ = try RuntimeBuilder.buildServerHandler(s, context: context) }
            // What the runtime reads outside the JSON shape matches too.
            // `servers { protocols }` is applied to the listeners at adapt time.
            var originalOptions = original.serverOptions
            originalOptions.protocols = nil
            #expect(decoded.serverOptions == originalOptions, "\(name)")
            #expect(decoded.logs == original.logs, "\(name)")
            #expect(decoded.storageRoot == original.storageRoot, "\(name)")
            #expect(decoded.admin == original.admin, "\(name)")
            #expect(decoded.shutdownDelayMilliseconds == original.shutdownDelayMilliseconds, "\(name)")
            #expect(decoded.gracePeriodMilliseconds == original.gracePeriodMilliseconds, "\(name)")
            let originalTLS = Dictionary(uniqueKeysWithValues: original.servers.map { ($0.name, $0.tls) })
            for s in decoded.servers {
                #expect(s.tls == originalTLS[s.name] ?? nil, "\(name): \(s.name)")
                #expect(s.listeners.map(\.address) == original.servers.first { $0.name == s.name }?.listeners.map(\.address), "\(name): \(s.name)")
                // Logging as the runtime reads it: everything, or these hosts and not those.
                func norm(_ l: AccessLogConfig?) -> String {
                    guard let l else { return "off" }
                    return "\(l.loggerNames.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }) \(l.skipHosts.sorted()) \(l.defaultLoggerName ?? "-") \(l.skipUnmappedHosts)"
                }
                #expect(norm(s.logs) == norm(original.servers.first { $0.name == s.name }?.logs), "\(name): \(s.name)")
            }
        }
    }

    /// Every value of every golden's JSON, replaced in turn by an object it cannot be
    /// (`{"zz": 1}`), makes decoding fail with an error that names that value's path (or a
    /// key inside it): no crash, no silently accepted garbage, no error pointing elsewhere.
    @Test(arguments: inputs)
    func everyMutatedValueIsRefusedAtItsPath(_ name: String) throws {
        let root = try Self.adapted(name).json
        var paths: [(JSONPath, [PathStep])] = []
        func walk(_ v: JSONValue, _ p: JSONPath, _ steps: [PathStep]) {
            if !steps.isEmpty { paths.append((p, steps)) }
            switch v {
            case .object(let o): for (k, c) in o { walk(c, p.key(k), steps + [.key(k)]) }
            case .array(let a): for (i, c) in a.enumerated() { walk(c, p.index(i), steps + [.index(i)]) }
            default: break
            }
        }
        walk(root, JSONPath(), [])
        let garbage = JSONValue.object([("zz", .int(1))])
        for (path, steps) in paths {
            let mutated = PathStep.replace(root, steps, with: garbage)
            do {
                _ = try JSONConfigDecoder.decode(Array(mutated.serialized().utf8), filename: "m.json")
                Issue.record("\(name): \(path) = {\"zz\":1} was accepted")
            } catch {
                let text = error.description
                let p = path.description
                // apps.tls is checked as a whole against the servers' certificates.
                let named = p.hasPrefix("apps.tls") ? "apps.tls" : p
                #expect(text.hasPrefix(named + ":") || text.hasPrefix(named + ".") || text.hasPrefix(named + "["), "\(name): \(p): \(text)")
            }
        }
        #expect(paths.count > 10)
    }

    /// The proxy's header operations come out in the same (Caddy's) order whether the config
    /// was read from the Caddyfile or from its JSON.
    @Test func proxyHeaderOperationsSameOrderFromJSON() throws {
        let c = try adapt(":8080 {\n\treverse_proxy 127.0.0.1:9000 {\n\t\theader_up X-R a b\n\t\theader_up -X-D\n\t\theader_up X-S v\n\t\theader_up +X-A w\n\t\theader_up -*\n\t}\n}\n")
        let d = try JSONConfigDecoder.decode(Array(c.json.serialized().utf8), filename: "t.json")
        func ops(_ cfg: BerthConfig) throws -> [String] {
            guard case .subroute(let site) = cfg.servers[0].routes[0].handle[0], case .spec(let s) = site[0].handle[0],
                let rp = s as? ReverseProxySpec
            else { throw ConfigError("no reverse_proxy") }
            return ReverseProxySpec.operations(rp.headerUp, BuildContext(environment: [:])).map { "\($0.kind) \(String(decoding: $0.name, as: UTF8.self))" }
        }
        let fromCaddyfile = try ops(c)
        #expect(fromCaddyfile == ["delete *", "add X-A", "set X-S", "delete X-D", "replace(search: [97]) X-R"])
        #expect(try ops(d) == fromCaddyfile)
    }

    @Test func listenerErrorsNameTheJSONPath() throws {
        let c = try adapt(":8080 {\n\trespond hi\n}\n")
        let d = try JSONConfigDecoder.decode(Array(c.json.serialized().utf8), filename: "/etc/berth.json")
        #expect(d.servers[0].listeners[0].location?.description == "/etc/berth.json: apps.http.servers.srv0.listen[0]")
    }
}

@Suite("Berth's JSON decoder errors")
struct JSONDecoderErrorTests {
    /// The error decoding `text`.
    func error(_ text: String) -> String? {
        do {
            _ = try JSONConfigDecoder.decode(Array(text.utf8), filename: "t.json")
            return nil
        } catch {
            return error.description
        }
    }

    /// A valid document whose one route's handler list is `handle`.
    func doc(handle: String, match: String? = nil, server: String = "") -> String {
        let m = match.map { #""match":[\#($0)],"# } ?? ""
        return #"{"admin":{"disabled":true},"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"listen_protocols":[["h1"]],\#(server)"routes":[{"handle":[{"handler":"static_response","body":"a"}]},{"handle":[{"handler":"static_response","body":"b"}]},{\#(m)"handle":[\#(handle)]}]}}}},"berth":{"version":1}}"#
    }

    @Test func validDocumentDecodes() throws {
        #expect(error(doc(handle: #"{"handler":"static_response","status_code":204}"#)) == nil)
    }

    @Test func typeErrorNamesThePath() {
        #expect(error(doc(handle: #"{"handler":"static_response","status_code":true}"#))
            == "apps.http.servers.srv0.routes[2].handle[0].status_code: expected integer or placeholder string, got boolean")
        #expect(error(doc(handle: #"{"handler":"encode","encodings":{"gzip":{"level":"9"}},"prefer":["gzip"]}"#))
            == "apps.http.servers.srv0.routes[2].handle[0].encodings.gzip.level: expected integer, got string")
        #expect(error(doc(handle: #"{"handler":"file_server","hide":"x"}"#))
            == "apps.http.servers.srv0.routes[2].handle[0].hide: expected array, got string")
        #expect(error(doc(handle: #"{"handler":"static_response"}"#, match: #"{"host":[1]}"#))
            == "apps.http.servers.srv0.routes[2].match[0].host[0]: expected string, got number")
    }

    @Test func unknownKeysAreErrors() {
        #expect(error(doc(handle: #"{"handler":"static_response","bodyy":"x"}"#))
            == "apps.http.servers.srv0.routes[2].handle[0].bodyy: unknown field (Berth's JSON has no such key here)")
        #expect(error(doc(handle: #"{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:9000","max_requests":3}]}"#))
            == "apps.http.servers.srv0.routes[2].handle[0].upstreams[0].max_requests: unknown field (Berth's JSON has no such key here)")
        #expect(error(doc(handle: #"{"handler":"static_response"}"#, server: #""automatic_https":{"disable":true},"#))
            == "apps.http.servers.srv0.automatic_https: unknown field (Berth's JSON has no such key here)")
        #expect(error(doc(handle: #"{"handler":"static_response","headers":{"X-A":["1"],"X-A":["2"]}}"#))
            == "apps.http.servers.srv0.routes[2].handle[0].headers.X-A: duplicate key")
    }

    @Test func unknownHandlerAndMatcher() throws {
        let h = try #require(error(doc(handle: #"{"handler":"templates"}"#)))
        #expect(h.hasPrefix("apps.http.servers.srv0.routes[2].handle[0].handler: unknown handler 'templates' (Berth's JSON has "))
        #expect(h.contains("reverse_proxy") && h.contains("subroute"))
        let m = try #require(error(doc(handle: #"{"handler":"static_response"}"#, match: #"{"tls":{"sni":["a"]}}"#)))
        #expect(m.hasPrefix("apps.http.servers.srv0.routes[2].match[0].tls: unknown matcher 'tls'"))
        #expect(error(doc(handle: #"{"handler":"static_response"}"#, match: #"{"expression":"{http.request.uri} == '/'"}"#))?
            .hasPrefix("apps.http.servers.srv0.routes[2].match[0].expression: only the status expressions handle_errors generates") == true)
    }

    @Test func valuesAreValidated() {
        #expect(error(doc(handle: #"{"handler":"static_response"}"#, match: #"{"remote_ip":{"ranges":["10.0.0.0/33"]}}"#))
            == "apps.http.servers.srv0.routes[2].match[0].remote_ip.ranges[0]: invalid IP address: '10.0.0.0/33'")
        #expect(error(doc(handle: #"{"handler":"rewrite","path_regexp":[{"find":"(","replace":"x"}]}"#))?
            .hasPrefix("apps.http.servers.srv0.routes[2].handle[0].path_regexp[0].find: ") == true)
        #expect(error(doc(handle: #"{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:9000-9002"}]}"#))
            == "apps.http.servers.srv0.routes[2].handle[0].upstreams[0].dial: expected one host:port or unix/path address, got '127.0.0.1:9000-9002'")
        #expect(error(doc(handle: #"{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:9000"}],"flush_interval":1500}"#))
            == "apps.http.servers.srv0.routes[2].handle[0].flush_interval: duration 1500 ns is not a whole number of milliseconds")
    }

    @Test func durationsAcceptCaddyStrings() throws {
        let c = try JSONConfigDecoder.decode(Array(#"{"apps":{"http":{"grace_period":"1m30s","servers":{}}},"berth":{"version":1}}"#.utf8), filename: "t.json")
        #expect(c.gracePeriodMilliseconds == 90_000)
    }

    @Test func caddyJSONIsRefusedClearly() {
        let caddy = #"{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"handler":"static_response","body":"hi"}]}]}}}}}"#
        #expect(error(caddy) == JSONConfigDecoder.caddyJSONRefusal)
        #expect(JSONConfigDecoder.caddyJSONRefusal.contains("Caddyfile") && JSONConfigDecoder.caddyJSONRefusal.contains("berth adapt"))
        #expect(error(#"{"berth":{"version":2},"apps":{}}"#) == "berth.version: this Berth reads JSON format version 1, not 2")
        #expect(error("[1,2]")?.hasPrefix("(top level): expected object") == true)
    }

    @Test func syntaxErrorsNameLineAndColumn() {
        #expect(error("{\n  \"apps\": {,\n}") == "t.json: invalid JSON at line 2, column 12: expected a member name")
    }

    @Test func appsTLSMustAgreeWithTheServers() throws {
        let c = try adapt("localhost {\n\ttls internal\n\trespond hi\n}\n")
        var text = c.json.serialized()
        #expect(error(text) == nil)
        text = text.replacingOccurrences(of: #""subjects":["localhost"]}]}}"#, with: #""subjects":["other.test"]}]}}"#)
        #expect(error(text) == "apps.tls: does not match the servers' tls_connection_policies, from which Berth derives it; change the certificates there (or drop apps.tls)")
    }

    @Test func differingServerOptionsAreRefused() {
        let two = #"{"apps":{"http":{"servers":{"a":{"listen":[":1"],"listen_protocols":[["h1"]],"idle_timeout":1000000000,"routes":[]},"b":{"listen":[":2"],"listen_protocols":[["h1"]],"routes":[]}}}},"berth":{"version":1}}"#
        #expect(error(two)?.hasPrefix("apps.http.servers.b: server options (timeouts, max_header_bytes, alt_svc_port, h3_retry, trusted_proxies, client_ip_headers) differ from server 'a'") == true)
    }

    @Test func loggingAndStorageAreChecked() {
        func withTop(_ member: String) -> String {
            #"{\#(member),"apps":{"http":{"servers":{}}},"berth":{"version":1}}"#
        }
        #expect(error(withTop(#""logging":{"logs":{"default":{"writer":{"output":"net","address":"x"}}}}"#))
            == "logging.logs.default.writer.output: unknown log output 'net' (stderr, stdout, discard, file)")
        #expect(error(withTop(#""logging":{"logs":{"default":{"level":"LOUD"}}}"#))
            == "logging.logs.default.level: unknown level 'LOUD'")
        #expect(error(withTop(#""storage":{"module":"redis"}"#)) == "storage.module: only the file_system storage is supported by Berth")
        #expect(error(withTop(#""logging":{"logs":{"default":{"writer":{"output":"file","filename":"/tmp/a.log","roll_size_mb":"big"}}}}"#))
            == "logging.logs.default.writer.roll_size_mb: expected integer, got string")
    }

    @Test func reverseProxyRefusesTheDefaultModifierLikeCaddy() {
        #expect(adaptError(":8080 {\n\treverse_proxy 127.0.0.1:9000 {\n\t\theader_up ?X-A b\n\t}\n}\n")
            == "?X-A: the default header modifier ('?') can only be used on response headers; for conditional manipulation of request headers, use matchers, at Caddyfile:3")
    }
}

/// One step into a JSON document.
enum PathStep {
    case key(String)
    case index(Int)

    /// `v` with the value at `steps` replaced.
    static func replace(_ v: JSONValue, _ steps: ArraySlice<PathStep>, with new: JSONValue) -> JSONValue {
        guard let first = steps.first else { return new }
        switch (v, first) {
        case (.object(let o), .key(let k)):
            return .object(o.map { $0.0 == k ? ($0.0, replace($0.1, steps.dropFirst(), with: new)) : $0 })
        case (.array(let a), .index(let i)):
            var b = a
            b[i] = replace(a[i], steps.dropFirst(), with: new)
            return .array(b)
        default:
            return v
        }
    }

    static func replace(_ v: JSONValue, _ steps: [PathStep], with new: JSONValue) -> JSONValue {
        replace(v, steps[...], with: new)
    }
}

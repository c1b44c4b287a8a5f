import Handlers
import HTTPCore
import Upstream

/// `reverse_proxy` (Caddy's `reverseproxy.Handler`): the parsed directive, its JSON for
/// `adapt` / `GET /config/`, and how to build the runtime handler.
package struct ReverseProxySpec: HandlerSpec {
    /// One `header_up` / `header_down` line: `[+|-|?]Field [value|search [replacement]]`.
    package struct HeaderLine: Sendable, Equatable {
        package var field: String
        package var args: [String]
    }

    package var upstreams: [UpstreamAddress] = []
    package var transport = TransportOptions()
    /// `transport http` was written (Caddy prints the transport only then).
    package var transportWritten = false
    package var policy: SelectionPolicy? = nil
    package var retries: Int? = nil
    package var tryDurationMilliseconds: Int? = nil
    package var tryIntervalMilliseconds: Int? = nil
    package var health = HealthOptions()
    package var healthBody: String? = nil
    package var headerUp: [HeaderLine] = []
    package var headerDown: [HeaderLine] = []
    package var trustedProxies: [String] = []
    package var flushIntervalMilliseconds: Int? = nil
    /// Where the directive is (TLS setup errors at build time name it).
    package var tlsLocation: SourceLocation? = nil

    package init() {}

    package var handlerName: String { "reverse_proxy" }

    // MARK: JSON (keys sorted, as Caddy prints them)

    package var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if let f = flushIntervalMilliseconds { o.append(("flush_interval", .int(f < 0 ? -1 : f * 1_000_000))) }
        let headers = headersJSON
        if !headers.isEmpty { o.append(("headers", .object(headers))) }
        let hc = healthJSON
        if !hc.isEmpty { o.append(("health_checks", .object(hc))) }
        var lb: [(String, JSONValue)] = []
        if let r = retries { lb.append(("retries", .int(r))) }
        if let p = policy {
            var sp: [(String, JSONValue)] = [("policy", .string(p.name))]
            switch p {
            case .randomChoose(let n): sp.append(("choose", .int(n)))
            case .query(let k): sp.append(("key", .string(k)))
            case .header(let f): sp.append(("field", .string(f)))
            case .cookie(let name, let secret):
                if name != "lb" { sp.append(("name", .string(name))) }
                if let s = secret { sp.append(("secret", .string(s))) }
            default: break
            }
            lb.append(("selection_policy", .object(sp.sorted { $0.0 < $1.0 })))
        }
        if let d = tryDurationMilliseconds { lb.append(("try_duration", .int(d * 1_000_000))) }
        if let i = tryIntervalMilliseconds { lb.append(("try_interval", .int(i * 1_000_000))) }
        if !lb.isEmpty { o.append(("load_balancing", .object(lb.sorted { $0.0 < $1.0 }))) }
        if transportWritten { o.append(("transport", .object(transportJSON))) }
        if !trustedProxies.isEmpty { o.append(("trusted_proxies", .array(trustedProxies.map { .string($0) }))) }
        o.append(("upstreams", .array(upstreams.map { .object([("dial", .string($0.dial))]) })))
        return o
    }

    private var headersJSON: [(String, JSONValue)] {
        var h: [(String, JSONValue)] = []
        if !headerUp.isEmpty { h.append(("request", .object(Self.opsJSON(headerUp)))) }
        if !headerDown.isEmpty { h.append(("response", .object(Self.opsJSON(headerDown)))) }
        return h
    }

    /// Caddy's `HeaderOps` JSON: add / delete / replace / set, each sorted.
    static func opsJSON(_ lines: [HeaderLine]) -> [(String, JSONValue)] {
        var add: [(String, [String])] = [], set: [(String, [String])] = [], del: [String] = []
        var replace: [(String, [(String, JSONValue)])] = []
        func put(_ list: inout [(String, [String])], _ k: String, _ v: String) {
            if let i = list.firstIndex(where: { $0.0 == k }) { list[i].1.append(v) } else { list.append((k, [v])) }
        }
        for l in lines {
            var f = l.field
            if f.hasPrefix("-") {
                del.append(String(f.dropFirst()))
                continue
            }
            let isAdd = f.hasPrefix("+")
            if isAdd || f.hasPrefix("?") { f = String(f.dropFirst()) }
            let vals = l.args.map(Self.expandShorthands)
            if vals.count == 2 {
                replace.append((f, [("replace", .string(vals[1])), ("search", .string(vals[0]))]))
            } else if isAdd {
                put(&add, f, vals.first ?? "")
            } else {
                put(&set, f, vals.first ?? "")
            }
        }
        var o: [(String, JSONValue)] = []
        if !add.isEmpty { o.append(("add", .object(add.sorted { $0.0 < $1.0 }.map { ($0.0, .array($0.1.map { .string($0) })) }))) }
        if !del.isEmpty { o.append(("delete", .array(del.map { .string($0) }))) }
        if !replace.isEmpty {
            o.append(("replace", .object(replace.sorted { $0.0 < $1.0 }.map { ($0.0, .array([.object($0.1)])) })))
        }
        if !set.isEmpty { o.append(("set", .object(set.sorted { $0.0 < $1.0 }.map { ($0.0, .array($0.1.map { .string($0) })) }))) }
        return o
    }

    static func expandShorthands(_ s: String) -> String {
        var out = ""
        var rest = Substring(s)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let tail = rest[open...]
            if tail.hasPrefix("{upstream_hostport}") {
                out += "{http.reverse_proxy.upstream.hostport}"
                rest = tail.dropFirst("{upstream_hostport}".count)
            } else {
                out += "{"
                rest = tail.dropFirst()
            }
        }
        return out + rest
    }

    private var healthJSON: [(String, JSONValue)] {
        var hc: [(String, JSONValue)] = []
        let h = health
        var active: [(String, JSONValue)] = []
        if let b = healthBody { active.append(("expect_body", .string(b))) }
        if let s = h.expectStatus { active.append(("expect_status", .int(s))) }
        if !h.headers.isEmpty {
            active.append(("headers", .object(h.headers.map { ($0.0, .array([.string($0.1)])) })))
        }
        if h.activeEnabled || !active.isEmpty {
            if h.intervalMilliseconds != 30_000 { active.append(("interval", .int(h.intervalMilliseconds * 1_000_000))) }
            if let p = h.port { active.append(("port", .int(p))) }
            if h.timeoutMilliseconds != 5_000 { active.append(("timeout", .int(h.timeoutMilliseconds * 1_000_000))) }
            if let u = h.uri { active.append(("uri", .string(u))) }
            hc.append(("active", .object(active.sorted { $0.0 < $1.0 })))
        }
        var passive: [(String, JSONValue)] = []
        if h.failDurationMilliseconds > 0 { passive.append(("fail_duration", .int(h.failDurationMilliseconds * 1_000_000))) }
        if h.maxFails != 1 { passive.append(("max_fails", .int(h.maxFails))) }
        if h.unhealthyRequestCount > 0 { passive.append(("unhealthy_request_count", .int(h.unhealthyRequestCount))) }
        if !h.unhealthyStatus.isEmpty { passive.append(("unhealthy_status", .array(h.unhealthyStatus.map { .int($0) }))) }
        if let l = h.unhealthyLatencyMilliseconds { passive.append(("unhealthy_latency", .int(l * 1_000_000))) }
        if !passive.isEmpty { hc.append(("passive", .object(passive.sorted { $0.0 < $1.0 }))) }
        return hc
    }

    private var transportJSON: [(String, JSONValue)] {
        let t = transport
        let d = TransportOptions()
        var o: [(String, JSONValue)] = []
        if t.dialTimeoutMilliseconds != d.dialTimeoutMilliseconds { o.append(("dial_timeout", .int(t.dialTimeoutMilliseconds * 1_000_000))) }
        var ka: [(String, JSONValue)] = []
        if !t.keepAlive { ka.append(("enabled", .bool(false))) }
        if t.idleTimeoutMilliseconds != d.idleTimeoutMilliseconds { ka.append(("idle_timeout", .int(t.idleTimeoutMilliseconds * 1_000_000))) }
        if t.maxIdlePerHost != d.maxIdlePerHost { ka.append(("max_idle_conns", .int(t.maxIdlePerHost))) }
        if !ka.isEmpty { o.append(("keep_alive", .object(ka))) }
        if t.maxConnsPerHost > 0 { o.append(("max_conns_per_host", .int(t.maxConnsPerHost))) }
        o.append(("protocol", .string("http")))
        if let r = t.readTimeoutMilliseconds { o.append(("read_timeout", .int(r * 1_000_000))) }
        if let r = t.responseHeaderTimeoutMilliseconds { o.append(("response_header_timeout", .int(r * 1_000_000))) }
        if t.tls {
            var tls: [(String, JSONValue)] = []
            if let c = t.tlsClientCertificateFile { tls.append(("client_certificate_file", .string(c))) }
            if let k = t.tlsClientKeyFile { tls.append(("client_certificate_key_file", .string(k))) }
            if t.tlsInsecureSkipVerify { tls.append(("insecure_skip_verify", .bool(true))) }
            if !t.tlsTrustedCAFiles.isEmpty { tls.append(("root_ca_pem_files", .array(t.tlsTrustedCAFiles.map { .string($0) }))) }
            if let n = t.tlsServerName { tls.append(("server_name", .string(n))) }
            o.append(("tls", .object(tls)))
        }
        if let w = t.writeTimeoutMilliseconds { o.append(("write_timeout", .int(w * 1_000_000))) }
        return o
    }

    // MARK: Build

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        var c = ProxyConfiguration()
        c.upstreams = upstreams
        c.transport = transport
        c.policy = policy ?? .random
        c.retries = retries ?? 0
        c.tryDurationMilliseconds = tryDurationMilliseconds ?? 0
        c.tryIntervalMilliseconds = tryIntervalMilliseconds ?? 250
        c.health = health
        if let pattern = healthBody {
            let re: Regex
            do { re = try Regex(pattern) } catch { throw ConfigError("health_body: invalid regexp '\(pattern)'") }
            c.health.bodyMatcher = { body in
                body.withUnsafeBytes { b in
                    withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * re.groupCount) { caps in
                        re.match(b, captures: caps)
                    }
                }
            }
        }
        c.requestHeaderOps = Self.operations(headerUp, context)
        c.responseHeaderOps = Self.operations(headerDown, context)
        c.trustedProxies = (trustedProxies + context.serverTrustedProxies).compactMap { IPNetwork($0) }
        c.flushIntervalMilliseconds = flushIntervalMilliseconds
        if transport.tls {
            do {
                c.tls = try UpstreamTLS.make(transport)
            } catch {
                throw ConfigError("reverse_proxy: upstream TLS: \(error)", at: tlsLocation)
            }
        }
        return ReverseProxyHandler(c)
    }

    static func operations(_ lines: [HeaderLine], _ context: BuildContext) -> [HeaderOperation] {
        lines.map { l in
            var f = l.field
            let value = { (s: String) -> any HeaderValueSource in TemplateHeaderValue(s, environment: context.environment) }
            if f.hasPrefix("-") { return HeaderOperation(kind: .delete, name: String(f.dropFirst()), value: nil) }
            var kind: HeaderOperation.Kind = .set
            if f.hasPrefix("+") {
                kind = .add
                f = String(f.dropFirst())
            } else if f.hasPrefix("?") {
                kind = .setDefault
                f = String(f.dropFirst())
            }
            if l.args.count == 2 {
                return HeaderOperation(kind: .replace(search: Array(l.args[0].utf8)), name: f, value: value(l.args[1]))
            }
            return HeaderOperation(kind: kind, name: f, value: value(l.args.first ?? ""))
        }
    }
}

import JSON
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
    /// `transport fastcgi { … }` (also what `php_fastcgi` builds).
    package var fastcgi: FastCGISpec? = nil
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
        if let f = fastcgi {
            o.append(("transport", .object(f.json)))
        } else if transportWritten {
            o.append(("transport", .object(transportJSON)))
        }
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
        var replace: [(String, [JSONValue])] = []
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
                let r = JSONValue.object([("replace", .string(vals[1])), ("search", .string(vals[0]))])
                if let i = replace.firstIndex(where: { $0.0 == f }) { replace[i].1.append(r) } else { replace.append((f, [r])) }
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
            o.append(("replace", .object(replace.sorted { $0.0 < $1.0 }.map { ($0.0, .array($0.1)) })))
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
            // One member per field with every value (sorted, as Caddy's http.Header prints).
            var grouped: [(String, [String])] = []
            for (k, v) in h.headers {
                if let i = grouped.firstIndex(where: { $0.0 == k }) { grouped[i].1.append(v) } else { grouped.append((k, [v])) }
            }
            active.append(("headers", .object(grouped.sorted { $0.0 < $1.0 }.map { ($0.0, .array($0.1.map { .string($0) })) })))
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
            if !t.tlsExceptPorts.isEmpty { tls.append(("except_ports", .array(t.tlsExceptPorts.map { .string($0) }))) }
            if let h = t.tlsTimeoutMilliseconds { tls.append(("handshake_timeout", .int(h * 1_000_000))) }
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
        ReverseProxyHandler(try configuration(context))
    }

    /// The runtime configuration (`forward_auth` adds its subrequest to it).
    func configuration(_ context: BuildContext) throws(ConfigError) -> ProxyConfiguration {
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
        if let f = fastcgi { c.fastcgi = f.options(context, transport: &c.transport) }
        if transport.tls {
            do {
                c.tls = try UpstreamTLS.make(transport)
            } catch {
                throw ConfigError("reverse_proxy: upstream TLS: \(error)", at: tlsLocation)
            }
        }
        return c
    }

    /// The header operations in Caddy's order (`HeaderOps.ApplyTo`): delete `*`, add, set,
    /// delete, replace — the order the JSON form implies, so a config read from JSON behaves
    /// exactly as the Caddyfile it was adapted from.
    static func operations(_ lines: [HeaderLine], _ context: BuildContext) -> [HeaderOperation] {
        func rank(_ l: HeaderLine) -> Int {
            if l.field == "-*" { return 0 }
            if l.field.hasPrefix("-") { return 3 }
            if l.args.count == 2 { return 4 }
            return l.field.hasPrefix("+") ? 1 : 2
        }
        let ordered = lines.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
        return ordered.map { l in
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

// MARK: Berth's JSON

extension ReverseProxySpec {
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        if r.has("rewrite") || r.has("handle_response") {
            // Only `forward_auth` produces these (Berth's `reverse_proxy` has neither).
            return try ForwardAuthSpec.decode(r)
        }
        return try decodeProxy(r)
    }

    /// Every `reverse_proxy` member except `rewrite` and `handle_response`.
    static func decodeProxy(_ r: JSONObjectReader) throws(ConfigError) -> ReverseProxySpec {
        var spec = ReverseProxySpec()
        if let f = r.value("flush_interval") {
            if case .number = f, try JSONRead.int(f, r.path.key("flush_interval")) == -1 {
                spec.flushIntervalMilliseconds = -1
            } else {
                spec.flushIntervalMilliseconds = try JSONRead.milliseconds(f, r.path.key("flush_interval"))
            }
        }
        if let h = try r.object("headers") {
            if let o = try h.object("request") { spec.headerUp = try Self.decodeOps(o) }
            if let o = try h.object("response") { spec.headerDown = try Self.decodeOps(o) }
            try h.finish()
        }
        if let hc = try r.object("health_checks") {
            if let a = try hc.object("active") {
                spec.healthBody = try a.string("expect_body")
                if let b = spec.healthBody {
                    do { _ = try Regex(b) } catch { throw a.error("expect_body", "invalid regexp '\(b)': \(error.description)") }
                }
                if let s = try a.int("expect_status") {
                    guard (1...9).contains(s) || (100...999).contains(s) else { throw a.error("expect_status", "bad status value \(s)") }
                    spec.health.expectStatus = s
                }
                if let hs = try a.object("headers") {
                    for k in hs.keys { for v in try hs.strings(k) ?? [] { spec.health.headers.append((k, v)) } }
                    try hs.finish()
                }
                spec.health.intervalMilliseconds = try a.milliseconds("interval") ?? 30_000
                if let p = try a.int("port") {
                    guard (1...65535).contains(p) else { throw a.error("port", "bad port number \(p)") }
                    spec.health.port = p
                }
                spec.health.timeoutMilliseconds = try a.milliseconds("timeout") ?? 5_000
                spec.health.uri = try a.string("uri")
                try a.finish()
            }
            if let p = try hc.object("passive") {
                spec.health.failDurationMilliseconds = try p.milliseconds("fail_duration") ?? 0
                spec.health.maxFails = try p.int("max_fails") ?? 1
                if spec.health.maxFails < 1 { throw p.error("max_fails", "must be at least 1") }
                spec.health.unhealthyRequestCount = try p.int("unhealthy_request_count") ?? 0
                spec.health.unhealthyStatus = try p.ints("unhealthy_status") ?? []
                spec.health.unhealthyLatencyMilliseconds = try p.milliseconds("unhealthy_latency")
                try p.finish()
            }
            try hc.finish()
        }
        if let lb = try r.object("load_balancing") {
            spec.retries = try lb.int("retries")
            if let sp = try lb.object("selection_policy") {
                guard let name = try sp.string("policy") else { throw sp.missing("policy") }
                switch name {
                case "random": spec.policy = .random
                case "round_robin": spec.policy = .roundRobin
                case "least_conn": spec.policy = .leastConn
                case "first": spec.policy = .first
                case "ip_hash": spec.policy = .ipHash
                case "client_ip_hash": spec.policy = .clientIPHash
                case "uri_hash": spec.policy = .uriHash
                case "random_choose":
                    guard let n = try sp.int("choose"), n >= 1 else { throw sp.error("choose", "must be an integer of at least 1") }
                    spec.policy = .randomChoose(n)
                case "query":
                    guard let k = try sp.string("key") else { throw sp.missing("key") }
                    spec.policy = .query(k)
                case "header":
                    guard let f = try sp.string("field") else { throw sp.missing("field") }
                    spec.policy = .header(f)
                case "cookie":
                    spec.policy = .cookie(name: try sp.string("name") ?? "lb", secret: try sp.string("secret"))
                default:
                    throw sp.error("policy", "unrecognized selection policy '\(name)' (or not supported by this Berth build yet)")
                }
                try sp.finish()
            }
            spec.tryDurationMilliseconds = try lb.milliseconds("try_duration")
            spec.tryIntervalMilliseconds = try lb.milliseconds("try_interval")
            try lb.finish()
        }
        if let t = try r.object("transport") {
            spec.transportWritten = true
            if try t.string("protocol") == "fastcgi" {
                spec.fastcgi = try FastCGISpec.decode(t)
                try t.finish()
            } else {
            guard try t.string("protocol") == "http" else {
                throw t.error("protocol", "only the http and fastcgi transports are supported by this Berth build")
            }
            var o = TransportOptions()
            o.dialTimeoutMilliseconds = try t.milliseconds("dial_timeout") ?? o.dialTimeoutMilliseconds
            if let ka = try t.object("keep_alive") {
                o.keepAlive = try ka.bool("enabled") ?? true
                o.idleTimeoutMilliseconds = try ka.milliseconds("idle_timeout") ?? o.idleTimeoutMilliseconds
                o.maxIdlePerHost = try ka.int("max_idle_conns") ?? o.maxIdlePerHost
                try ka.finish()
            }
            o.maxConnsPerHost = try t.int("max_conns_per_host") ?? 0
            o.readTimeoutMilliseconds = try t.milliseconds("read_timeout")
            o.responseHeaderTimeoutMilliseconds = try t.milliseconds("response_header_timeout")
            if let tls = try t.object("tls") {
                o.tls = true
                o.tlsClientCertificateFile = try tls.string("client_certificate_file")
                o.tlsClientKeyFile = try tls.string("client_certificate_key_file")
                if (o.tlsClientCertificateFile == nil) != (o.tlsClientKeyFile == nil) {
                    throw tls.error(o.tlsClientKeyFile == nil ? "client_certificate_file" : "client_certificate_key_file",
                                    "client_certificate_file and client_certificate_key_file go together")
                }
                o.tlsExceptPorts = try tls.strings("except_ports") ?? []
                for (i, p) in o.tlsExceptPorts.enumerated() where UInt16(p) == nil || p == "0" {
                    throw tls.path.key("except_ports").index(i).error("bad port '\(p)'")
                }
                o.tlsTimeoutMilliseconds = try tls.milliseconds("handshake_timeout")
                o.tlsInsecureSkipVerify = try tls.bool("insecure_skip_verify") ?? false
                o.tlsTrustedCAFiles = try tls.strings("root_ca_pem_files") ?? []
                o.tlsServerName = try tls.string("server_name")
                try tls.finish()
            }
            o.writeTimeoutMilliseconds = try t.milliseconds("write_timeout")
            try t.finish()
            spec.transport = o
            }
        }
        if let tp = try r.strings("trusted_proxies") {
            for (i, c) in tp.enumerated() where IPNetwork(c) == nil {
                throw r.path.key("trusted_proxies").index(i).error("parsing CIDR expression: '\(c)'")
            }
            spec.trustedProxies = tp
        }
        guard let ups = try r.array("upstreams") else { throw r.missing("upstreams") }
        for (e, ep) in ups {
            let o = try JSONObjectReader(e, ep)
            guard let dial = try o.string("dial") else { throw o.missing("dial") }
            try o.finish()
            let parsed: [UpstreamAddress]
            do { parsed = try UpstreamAddress.parse(dial) } catch { throw o.error("dial", "parsing upstream '\(dial)': \(error.description)") }
            guard parsed.count == 1, parsed[0].dial == dial else {
                throw o.error("dial", "expected one host:port or unix/path address, got '\(dial)'")
            }
            spec.upstreams.append(parsed[0])
        }
        return spec
    }

    /// Caddy's `HeaderOps` (add / delete / replace / set) back into header lines, applied in
    /// Caddy's order: add, set, delete, replace.
    static func decodeOps(_ o: JSONObjectReader) throws(ConfigError) -> [HeaderLine] {
        var lines: [HeaderLine] = []
        if let add = try o.object("add") {
            for k in add.keys { for v in try add.strings(k) ?? [] { lines.append(HeaderLine(field: "+" + k, args: [v])) } }
            try add.finish()
        }
        if let set = try o.object("set") {
            for k in set.keys {
                for v in try set.strings(k) ?? [] { lines.append(HeaderLine(field: k, args: [v])) }
            }
            try set.finish()
        }
        for d in try o.strings("delete") ?? [] { lines.append(HeaderLine(field: "-" + d, args: [])) }
        if let rep = try o.object("replace") {
            for k in rep.keys {
                for (e, ep) in try rep.array(k) ?? [] {
                    let r = try JSONObjectReader(e, ep)
                    guard let search = try r.string("search") else { throw r.missing("search") }
                    let replacement = try r.string("replace") ?? ""
                    try r.finish()
                    lines.append(HeaderLine(field: k, args: [search, replacement]))
                }
            }
            try rep.finish()
        }
        try o.finish()
        return lines
    }
}

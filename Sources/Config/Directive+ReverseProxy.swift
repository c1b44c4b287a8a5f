import Caddyfile
import IOCore
import Upstream

/// `reverse_proxy [<matcher>] [<upstreams...>] { … }` (Caddy's `reverseproxy/caddyfile.go`).
extension DirectiveParsers {
    static func reverseProxy(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let location = SourceLocation(file: d.file, line: d.line)
        let m = try matcher(&d, site)
        var spec = ReverseProxySpec()
        try reverseProxyBody(&d, &spec, location: location) { _, _ throws(CaddyfileError) in false }
        site.addRoute("reverse_proxy", matcher: m, handlers: [.spec(spec)])
    }

    /// The upstreams and the block of `reverse_proxy` (also read by `forward_auth`, which has
    /// the same syntax): `extra` is offered every subdirective this one does not know and
    /// returns true when it consumed it.
    static func reverseProxyBody(
        _ d: inout Dispenser, _ spec: inout ReverseProxySpec, location: SourceLocation,
        extra: (String, inout Dispenser) throws(CaddyfileError) -> Bool
    ) throws(CaddyfileError) {
        while d.nextArg() { spec.upstreams += try upstreams(d.val, &d) }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            let sub = d.val
            switch sub {
            case "to":
                var any = false
                while d.nextArg() {
                    spec.upstreams += try upstreams(d.val, &d)
                    any = true
                }
                if !any { throw d.argErr() }
            case "lb_policy":
                spec.policy = try selectionPolicy(&d)
            case "lb_retries":
                spec.retries = try int(&d, sub)
            case "lb_try_duration":
                spec.tryDurationMilliseconds = try duration(&d, sub)
            case "lb_try_interval":
                spec.tryIntervalMilliseconds = try duration(&d, sub)
            case "health_uri":
                spec.health.uri = try oneArg(&d)
            case "health_port":
                let p = try int(&d, sub)
                guard (1...65535).contains(p) else { throw d.err("bad port number '\(p)'") }
                spec.health.port = p
            case "health_interval":
                spec.health.intervalMilliseconds = try duration(&d, sub)
            case "health_timeout":
                spec.health.timeoutMilliseconds = try duration(&d, sub)
            case "health_status":
                let v = try oneArg(&d)
                if v.count == 3, v.hasSuffix("xx"), let c = Int(String(v.prefix(1))) {
                    spec.health.expectStatus = c
                } else if let c = Int(v), (100...999).contains(c) {
                    spec.health.expectStatus = c
                } else {
                    throw d.err("bad status value '\(v)'")
                }
            case "health_body":
                spec.healthBody = try oneArg(&d)
            case "health_headers":
                let inner = d.nesting
                while d.nextBlock(inner) {
                    let name = d.val
                    var vals: [String] = []
                    while d.nextArg() { vals.append(d.val) }
                    for v in vals.isEmpty ? [""] : vals { spec.health.headers.append((name, v)) }
                }
            case "fail_duration":
                spec.health.failDurationMilliseconds = try duration(&d, sub)
            case "max_fails":
                let n = try int(&d, sub)
                guard n >= 1 else { throw d.err("max_fails must be at least 1") }
                spec.health.maxFails = n
            case "unhealthy_request_count":
                spec.health.unhealthyRequestCount = try int(&d, sub)
            case "unhealthy_status":
                var any = false
                while d.nextArg() {
                    any = true
                    let v = d.val
                    if v.count == 3, v.hasSuffix("xx"), let c = Int(String(v.prefix(1))) {
                        spec.health.unhealthyStatus.append(c)
                    } else if let c = Int(v), (100...999).contains(c) {
                        spec.health.unhealthyStatus.append(c)
                    } else {
                        throw d.err("bad status value '\(v)'")
                    }
                }
                if !any { throw d.argErr() }
            case "unhealthy_latency":
                spec.health.unhealthyLatencyMilliseconds = try duration(&d, sub)
            case "flush_interval":
                let v = try oneArg(&d)
                if v == "-1" {
                    spec.flushIntervalMilliseconds = -1
                } else {
                    guard let ms = DurationText.parseMilliseconds(v) else { throw d.err("bad duration value '\(v)'") }
                    spec.flushIntervalMilliseconds = ms
                }
            case "trusted_proxies":
                var any = false
                while d.nextArg() {
                    any = true
                    if d.val == "private_ranges" {
                        spec.trustedProxies += ["192.168.0.0/16", "172.16.0.0/12", "10.0.0.0/8", "127.0.0.1/8", "fd00::/8", "::1"]
                        continue
                    }
                    guard IPNetwork(d.val) != nil else { throw d.err("parsing CIDR expression: '\(d.val)'") }
                    spec.trustedProxies.append(d.val)
                }
                if !any { throw d.argErr() }
            case "header_up", "header_down":
                guard d.nextArg() else { throw d.argErr() }
                let field = d.val
                var args: [String] = []
                while d.nextArg() { args.append(d.val) }
                if field.hasPrefix("?") {
                    // Caddy refuses it for reverse_proxy (headers/caddyfile.go applyHeaderOp).
                    throw d.err("\(field): the default header modifier ('?') can only be used on response headers; for conditional manipulation of request headers, use matchers")
                }
                if field.hasPrefix("-") {
                    if !args.isEmpty { throw d.argErr() }
                } else if args.isEmpty || args.count > 2 {
                    throw d.argErr()
                }
                let line = ReverseProxySpec.HeaderLine(field: field, args: args)
                if sub == "header_up" { spec.headerUp.append(line) } else { spec.headerDown.append(line) }
            case "transport":
                guard d.nextArg() else { throw d.argErr() }
                if spec.transportWritten || spec.fastcgi != nil { throw d.err("transport already specified") }
                if d.val == "fastcgi" {
                    spec.transportWritten = true
                    var f = FastCGISpec()
                    try fastcgiTransportBlock(&d, &f)
                    spec.fastcgi = f
                    continue
                }
                guard d.val == "http" else {
                    throw d.err("reverse_proxy transport '\(d.val)' is not supported by this Berth build yet")
                }
                spec.transportWritten = true
                try transportBlock(&d, &spec.transport)
            case "buffer_requests", "buffer_responses", "request_buffers", "response_buffers", "stream_timeout",
                "stream_close_delay", "dynamic", "lb_retry_match", "health_method", "health_request_body",
                "health_follow_redirects", "health_passes", "health_fails", "health_upstream", "method", "rewrite",
                "handle_response", "replace_status", "copy_response", "copy_response_headers", "verbose_logs":
                throw d.err("reverse_proxy subdirective '\(sub)' is not supported by this Berth build yet")
            default:
                if try extra(sub, &d) { continue }
                throw d.err("unrecognized subdirective \(sub)")
            }
        }
        if spec.upstreams.contains(where: { $0.tls }) {
            // Caddy: an https:// upstream turns TLS on for the transport.
            if spec.upstreams.contains(where: { $0.explicitHTTP }) {
                throw d.err("upstream address scheme is HTTP but transport is configured for HTTP+TLS (HTTPS)")
            }
            spec.transport.tls = true
            spec.transportWritten = true
        } else if spec.transport.tls, spec.upstreams.contains(where: { $0.explicitHTTP }) {
            throw d.err("upstream address scheme is HTTP but transport is configured for HTTP+TLS (HTTPS)")
        }
        if spec.transport.tls { spec.tlsLocation = location }
        if spec.fastcgi != nil && spec.transport.tls {
            throw d.err("transport fastcgi: TLS to FastCGI upstreams is not supported by this Berth build yet")
        }
    }

    private static func upstreams(_ s: String, _ d: inout Dispenser) throws(CaddyfileError) -> [UpstreamAddress] {
        do {
            return try UpstreamAddress.parse(s)
        } catch {
            throw d.err("parsing upstream '\(s)': \(error.description)")
        }
    }

    static func oneArg(_ d: inout Dispenser) throws(CaddyfileError) -> String {
        guard d.nextArg() else { throw d.argErr() }
        let v = d.val
        if d.nextArg() { throw d.argErr() }
        return v
    }

    private static func int(_ d: inout Dispenser, _ name: String) throws(CaddyfileError) -> Int {
        let v = try oneArg(&d)
        guard let n = Int(v), n >= 0 else { throw d.err("bad \(name) value '\(v)'") }
        return n
    }

    static func duration(_ d: inout Dispenser, _ name: String) throws(CaddyfileError) -> Int {
        let v = try oneArg(&d)
        guard let ms = DurationText.parseMilliseconds(v), ms >= 0 else { throw d.err("bad duration value '\(v)'") }
        return ms
    }

    private static func selectionPolicy(_ d: inout Dispenser) throws(CaddyfileError) -> SelectionPolicy {
        guard d.nextArg() else { throw d.argErr() }
        let name = d.val
        var args: [String] = []
        while d.nextArg() { args.append(d.val) }
        func noArgs() throws(CaddyfileError) { if !args.isEmpty { throw d.argErr() } }
        switch name {
        case "random": try noArgs(); return .random
        case "round_robin": try noArgs(); return .roundRobin
        case "least_conn": try noArgs(); return .leastConn
        case "first": try noArgs(); return .first
        case "ip_hash": try noArgs(); return .ipHash
        case "client_ip_hash": try noArgs(); return .clientIPHash
        case "uri_hash": try noArgs(); return .uriHash
        case "random_choose":
            guard args.count == 1, let n = Int(args[0]), n >= 1 else { throw d.argErr() }
            return .randomChoose(n)
        case "query":
            guard args.count == 1 else { throw d.argErr() }
            return .query(args[0])
        case "header":
            guard args.count == 1 else { throw d.argErr() }
            return .header(args[0])
        case "cookie":
            guard args.count <= 2 else { throw d.argErr() }
            return .cookie(name: args.first ?? "lb", secret: args.count == 2 ? args[1] : nil)
        default:
            throw d.err("unrecognized lb_policy '\(name)' (or not supported by this Berth build yet)")
        }
    }

    private static func transportBlock(_ d: inout Dispenser, _ t: inout TransportOptions) throws(CaddyfileError) {
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            let sub = d.val
            switch sub {
            case "dial_timeout": t.dialTimeoutMilliseconds = try duration(&d, sub)
            case "response_header_timeout": t.responseHeaderTimeoutMilliseconds = try duration(&d, sub)
            case "read_timeout": t.readTimeoutMilliseconds = try duration(&d, sub)
            case "write_timeout": t.writeTimeoutMilliseconds = try duration(&d, sub)
            case "keepalive":
                let v = try oneArg(&d)
                if v == "off" {
                    t.keepAlive = false
                } else {
                    guard let ms = DurationText.parseMilliseconds(v) else { throw d.err("bad duration value '\(v)'") }
                    t.idleTimeoutMilliseconds = ms
                }
            case "keepalive_idle_conns", "keepalive_idle_conns_per_host":
                t.maxIdlePerHost = try int(&d, sub)
            case "max_conns_per_host":
                t.maxConnsPerHost = try int(&d, sub)
            case "keepalive_interval", "dial_fallback_delay", "expect_continue_timeout":
                _ = try duration(&d, sub)
            case "versions":
                // Berth speaks HTTP/1.1 to upstreams. Caddy's default ["1.1", "2"] (h2 only when
                // the upstream's TLS offers it) works the same over 1.1; a list without 1.1
                // (h2c for gRPC, 2, 3) would silently break the backend, so it is refused.
                var vs: [String] = []
                while d.nextArg() { vs.append(d.val) }
                if vs.isEmpty { throw d.argErr() }
                for v in vs where !["1.1", "2", "h2c", "3"].contains(v) {
                    throw d.err("transport http: unknown HTTP version '\(v)' (1.1, 2, h2c, 3)")
                }
                guard vs.contains("1.1") else {
                    throw d.err("transport http: versions \(vs.joined(separator: " ")): HTTP/2 and HTTP/3 to upstreams (h2c, gRPC) are not supported by this Berth build yet; Berth proxies over HTTP/1.1 (versions 1.1)")
                }
            case "compression", "read_buffer", "write_buffer", "max_response_header":
                while d.nextArg() {}
            case "tls":
                if d.nextArg() { throw d.argErr() }
                t.tls = true
            case "tls_insecure_skip_verify":
                if d.nextArg() { throw d.argErr() }
                t.tls = true
                t.tlsInsecureSkipVerify = true
            case "tls_server_name":
                t.tls = true
                t.tlsServerName = try oneArg(&d)
            case "tls_trusted_ca_certs":
                var files: [String] = []
                while d.nextArg() { files.append(d.val) }
                if files.isEmpty { throw d.argErr() }
                for f in files where !FileIO.isRegularFile(f) {
                    throw d.err("tls_trusted_ca_certs: no such file '\(f)'")
                }
                t.tls = true
                t.tlsTrustedCAFiles += files
            case "tls_client_auth":
                var args: [String] = []
                while d.nextArg() { args.append(d.val) }
                guard args.count == 2 else {
                    if args.count == 1 {
                        throw d.err("tls_client_auth with an automated certificate name is not supported by this Berth build yet (give <cert_file> <key_file>)")
                    }
                    throw d.argErr()
                }
                for f in args where !FileIO.isRegularFile(f) {
                    throw d.err("tls_client_auth: no such file '\(f)'")
                }
                t.tls = true
                t.tlsClientCertificateFile = args[0]
                t.tlsClientKeyFile = args[1]
            case "tls_timeout":
                t.tls = true
                t.tlsTimeoutMilliseconds = try duration(&d, sub)
            case "tls_except_ports":
                var ports: [String] = []
                while d.nextArg() { ports.append(d.val) }
                if ports.isEmpty { throw d.argErr() }
                for p in ports where UInt16(p) == nil || p == "0" {
                    throw d.err("tls_except_ports: bad port '\(p)'")
                }
                t.tls = true
                t.tlsExceptPorts += ports
            case "tls_renegotiation", "tls_curves", "tls_trust_pool":
                throw d.err("transport http: subdirective '\(sub)' is not supported by this Berth build yet")
            default:
                throw d.err("transport http: subdirective '\(sub)' is not supported by this Berth build yet")
            }
        }
    }
}

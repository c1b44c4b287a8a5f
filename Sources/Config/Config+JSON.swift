import JSON
/// Dumps the typed config as deterministic JSON shaped like Caddy's (`adapt`, `/config/`).
/// It carries everything the runtime is built from, so `JSONConfigDecoder` reads it back into
/// the same config (`POST /load` with `application/json`, `berth run --config F.json`); the
/// top-level `"berth"` member marks it as Berth's and not Caddy's, whose JSON Berth does not load.
extension BerthConfig {
    /// The version of Berth's JSON format (`"berth": {"version": N}`).
    package static let jsonFormatVersion = 1

    package var json: JSONValue {
        var top: [(String, JSONValue)] = []
        top.append(("admin", adminJSON))
        if !logs.isEmpty {
            top.append(("logging", .object([("logs", .object(logs.map { ($0.name, $0.log.json) }))])))
        }
        if let root = storageRoot {
            top.append(("storage", .object([("module", .string("file_system")), ("root", .string(root))])))
        }
        var serverList: [(String, JSONValue)] = []
        for s in self.servers.sorted(by: { $0.name < $1.name }) { serverList.append((s.name, s.json(options: serverOptions))) }
        var http: [(String, JSONValue)] = []
        if gracePeriodMilliseconds != 10_000 { http.append(("grace_period", .int(gracePeriodMilliseconds * 1_000_000))) }
        http.append(("servers", .object(serverList)))
        if shutdownDelayMilliseconds != 0 { http.append(("shutdown_delay", .int(shutdownDelayMilliseconds * 1_000_000))) }
        var apps: [(String, JSONValue)] = [("http", .object(http))]
        if let t = tlsAppJSON { apps.append(("tls", t)) }
        top.append(("apps", .object(apps)))
        top.append(("berth", .object([("version", .int(BerthConfig.jsonFormatVersion))])))
        return .object(top)
    }

    /// Caddy-shaped `apps.tls`: loaded certificate files, internal-issuer subjects, and ACME
    /// subjects whose issuer differs from the default (Caddy emits no policy for those). A
    /// summary derived from the servers' `tls_connection_policies`, which are authoritative.
    var tlsAppJSON: JSONValue? {
        var files: [JSONValue] = []
        var internalSubjects: [String] = []
        var acme: [(issuer: ACMEIssuerSpec, subjects: [String])] = []
        for s in servers {
            for c in s.tls?.certificates ?? [] {
                switch c.source {
                case .files(let cert, let key):
                    files.append(.object([("certificate", .string(cert)), ("key", .string(key))]))
                case .internalCA:
                    for n in c.names where !internalSubjects.contains(n) { internalSubjects.append(n) }
                case .acme(let issuer):
                    guard !issuer.isDefault else { continue }
                    if let i = acme.firstIndex(where: { $0.issuer == issuer }) {
                        for n in c.names where !acme[i].subjects.contains(n) { acme[i].subjects.append(n) }
                    } else {
                        acme.append((issuer, c.names))
                    }
                }
            }
        }
        if files.isEmpty && internalSubjects.isEmpty && acme.isEmpty { return nil }
        var o: [(String, JSONValue)] = []
        var policies: [JSONValue] = []
        for a in acme {
            policies.append(.object([
                ("issuers", .array([a.issuer.json])),
                ("subjects", .array(a.subjects.map { .string($0) })),
            ]))
        }
        if !internalSubjects.isEmpty {
            policies.append(.object([
                ("issuers", .array([.object([("module", .string("internal"))])])),
                ("subjects", .array(internalSubjects.map { .string($0) })),
            ]))
        }
        if !policies.isEmpty { o.append(("automation", .object([("policies", .array(policies))]))) }
        if !files.isEmpty { o.append(("certificates", .object([("load_files", .array(files))]))) }
        return .object(o)
    }

    var adminJSON: JSONValue {
        switch admin {
        case .off: return .object([("disabled", .bool(true))])
        case .tcp(let h, let p): return .object([("listen", .string("\(h):\(p)"))])
        case .unix(let path, let mode):
            let m = mode == 0o200 ? "" : "|0" + String(mode, radix: 8)
            return .object([("listen", .string("unix/" + path + m))])
        case .fd(let n): return .object([("listen", .string("fd/\(n)"))])
        }
    }
}

extension ServerOptions {
    /// Caddy's per-server fields (the `servers` global option applies to every server), then
    /// Berth's `alt_svc_port` and `h3_retry`.
    var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if let v = readBodyMilliseconds { o.append(("read_timeout", .int(v * 1_000_000))) }
        if let v = readHeaderMilliseconds { o.append(("read_header_timeout", .int(v * 1_000_000))) }
        if let v = writeMilliseconds { o.append(("write_timeout", .int(v * 1_000_000))) }
        if let v = idleMilliseconds { o.append(("idle_timeout", .int(v * 1_000_000))) }
        if let v = maxHeaderBytes { o.append(("max_header_bytes", .int(v))) }
        if let v = altSvcPort { o.append(("alt_svc_port", .int(v))) }
        if h3Retry { o.append(("h3_retry", .bool(true))) }
        return o
    }
}

extension ServerTLSConfig {
    /// The server's one connection policy: Caddy's `default_sni`, `protocol_min`,
    /// `protocol_max`, and Berth's `certificates` — what the server presents, in order, with
    /// where each comes from (`certificate`+`key` files, or an `issuer`: internal or acme).
    var json: JSONValue {
        var o: [(String, JSONValue)] = []
        o.append(("certificates", .array(certificates.map(\.json))))
        if let d = defaultSNI { o.append(("default_sni", .string(d))) }
        if let v = maximumVersion { o.append(("protocol_max", .string(v))) }
        if let v = minimumVersion { o.append(("protocol_min", .string(v))) }
        if let c = ciphers {
            // Caddy's names; an empty list stands for "only TLS 1.3 suites were named".
            o.append(("cipher_suites", .array(c.compactMap { n in TLSNames.tls12Ciphers.first { $0.openSSL == n }.map { .string($0.caddy) } })))
        }
        if let c = curves {
            o.append(("curves", .array(c.compactMap { n in TLSNames.curves.first { $0.openSSL == n }.map { .string($0.caddy) } })))
        }
        if let a = alpn { o.append(("alpn", .array(a.map { .string($0) }))) }
        if !clientAuth.isEmpty {
            o.append(("client_authentication", .array(clientAuth.map(\.json))))
        }
        return .object(o)
    }
}

extension ClientAuthPolicySpec {
    /// Caddy's `client_authentication` fields, with the site's names as an `sni` match.
    var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if !names.isEmpty { o.append(("match", .object([("sni", .array(names.map { .string($0) }))]))) }
        if let m = spec.mode { o.append(("mode", .string(m))) }
        func list(_ k: String, _ v: [String]) { if !v.isEmpty { o.append((k, .array(v.map { .string($0) }))) } }
        list("trusted_ca_certs", spec.trustedCACerts)
        list("trusted_ca_certs_pem_files", spec.trustedCACertFiles)
        list("trusted_leaf_certs", spec.trustedLeafCerts)
        list("trusted_leaf_certs_pem_files", spec.trustedLeafCertFiles)
        return .object(o)
    }
}

extension CertificateSpec {
    var json: JSONValue {
        var o: [(String, JSONValue)] = []
        switch source {
        case .files(let cert, let key):
            o.append(("certificate", .string(cert)))
            o.append(("key", .string(key)))
        case .internalCA:
            o.append(("issuer", .object([("module", .string("internal"))])))
        case .acme(let issuer):
            o.append(("issuer", issuer.json))
        }
        if !names.isEmpty { o.append(("subjects", .array(names.map { .string($0) }))) }
        return .object(o)
    }
}

extension ServerConfig {
    /// `options`: the global `servers` options, printed in every server as Caddy does.
    func json(options: ServerOptions) -> JSONValue {
        var o: [(String, JSONValue)] = []
        o.append(("listen", .array(listeners.map { .string($0.address.description) })))
        o.append(("listen_protocols", .array(listeners.map { .array($0.protocols.map { .string($0.rawValue) }) })))
        o += options.jsonFields
        o.append(("routes", .array(routes.map(\.json))))
        if let t = tls { o.append(("tls_connection_policies", .array([t.json]))) }
        if !errorRoutes.isEmpty { o.append(("errors", .object([("routes", .array(errorRoutes.map(\.json)))]))) }
        if !namedRoutes.isEmpty {
            o.append(("named_routes", .object(namedRoutes.sorted { $0.name < $1.name }.map { ($0.name, $0.route.json) })))
        }
        if !options.trustedProxies.isEmpty {
            o.append(("trusted_proxies", .object([("ranges", .array(options.trustedProxies.map { .string($0) })), ("source", .string("static"))])))
        }
        if !options.clientIPHeaders.isEmpty { o.append(("client_ip_headers", .array(options.clientIPHeaders.map { .string($0) }))) }
        if options.trustedProxiesStrict { o.append(("trusted_proxies_strict", .int(1))) }
        if let l = logs {
            var lo: [(String, JSONValue)] = []
            if let n = l.defaultLoggerName { lo.append(("default_logger_name", .string(n))) }
            if !l.loggerNames.isEmpty {
                lo.append(("logger_names", .object(l.loggerNames.keys.sorted().map { ($0, .array(l.loggerNames[$0]!.map { .string($0) })) })))
            }
            if !l.skipHosts.isEmpty { lo.append(("skip_hosts", .array(l.skipHosts.sorted().map { .string($0) }))) }
            if l.skipUnmappedHosts { lo.append(("skip_unmapped_hosts", .bool(true))) }
            o.append(("logs", .object(lo)))
        }
        return .object(o)
    }
}

extension RouteConfig {
    var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if let g = group { o.append(("group", .string(g))) }
        if !match.isEmpty { o.append(("match", .array(match.map { set in .object(set.map { ($0.matcherName, $0.json) }) }))) }
        o.append(("handle", .array(handle.map(\.json))))
        if terminal { o.append(("terminal", .bool(true))) }
        return .object(o)
    }
}

extension HandlerConfig {
    package var json: JSONValue {
        switch self {
        case .spec(let s):
            // Caddy prints keys sorted; "handler" sorts among the spec's own fields.
            var fields = s.jsonFields
            fields.append(("handler", .string(s.handlerName)))
            fields.sort { $0.0 < $1.0 }
            return .object(fields)
        case .subroute(let routes):
            return .object([("handler", .string("subroute")), ("routes", .array(routes.map(\.json)))])
        }
    }
}

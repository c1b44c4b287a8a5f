import JSON
import Upstream

/// Reads Berth's JSON — what `berth adapt` and `GET /config/` print — back into `BerthConfig`
/// (`POST /load` with `Content-Type: application/json`, `berth run/validate/reload --config
/// F.json`). Strict: every member must be understood (an unknown key is an error naming its
/// path), types are checked, and values are validated as the Caddyfile adapter validates them.
/// Caddy's own JSON (no top-level `"berth"` member) is refused with a clear message.
package enum JSONConfigDecoder {
    /// Deeper than any config Berth prints (each nested `handle`/`route` adds four levels).
    static let maximumDepth = 512

    /// The text for Caddy's JSON config, which Berth does not load.
    package static let caddyJSONRefusal =
        "this is Caddy's JSON config, which Berth does not load (Berth's own JSON, as printed by `berth adapt`, has a top-level \"berth\" member); send the Caddyfile (Content-Type: text/caddyfile) or the output of `berth adapt` (Content-Type: application/json)"

    /// Decodes a JSON document. `filename` names it in listener errors (`FILE: apps.http…`).
    package static func decode(_ bytes: [UInt8], filename: String) throws(ConfigError) -> BerthConfig {
        let root: JSONValue
        do {
            root = try JSONValue.parse(bytes, maximumDepth: maximumDepth)
        } catch {
            throw ConfigError("\(filename): invalid JSON at line \(error.line), column \(error.column): \(error.reason)")
        }
        return try decode(root, filename: filename)
    }

    /// True when `bytes` look like Caddy's JSON config rather than Berth's (used to choose
    /// the error message; decoding refuses it either way).
    package static func isCaddyJSON(_ root: JSONValue) -> Bool {
        guard case .object(let o) = root else { return false }
        return root["berth"] == nil && o.contains { ["apps", "admin", "logging", "storage"].contains($0.0) }
    }

    package static func decode(_ root: JSONValue, filename: String) throws(ConfigError) -> BerthConfig {
        if isCaddyJSON(root) { throw ConfigError(caddyJSONRefusal) }
        let top = try JSONObjectReader(root, JSONPath())
        guard let marker = try top.object("berth") else {
            throw ConfigError("not Berth's JSON config: the top-level \"berth\": {\"version\": \(BerthConfig.jsonFormatVersion)} member is missing (print one with `berth adapt`)")
        }
        guard let version = try marker.int("version") else { throw marker.missing("version") }
        guard version == BerthConfig.jsonFormatVersion else {
            throw marker.error("version", "this Berth reads JSON format version \(BerthConfig.jsonFormatVersion), not \(version)")
        }
        try marker.finish()

        var config = BerthConfig()
        config.sourceFile = filename
        if let a = try top.object("admin") { config.admin = try admin(a) }
        if let l = try top.object("logging") { config.logs = try logging(l) }
        if let st = try top.object("storage") {
            guard try st.string("module") == "file_system" else {
                throw st.error("module", "only the file_system storage is supported by Berth")
            }
            guard let root = try st.string("root") else { throw st.missing("root") }
            config.storageRoot = root
            try st.finish()
        }
        guard let apps = try top.object("apps") else { throw top.missing("apps") }
        guard let http = try apps.object("http") else { throw apps.missing("http") }
        config.gracePeriodMilliseconds = try http.milliseconds("grace_period") ?? config.gracePeriodMilliseconds
        config.shutdownDelayMilliseconds = try http.milliseconds("shutdown_delay") ?? 0
        guard let servers = try http.object("servers") else { throw http.missing("servers") }
        var options: (ServerOptions, String)? = nil
        for name in servers.keys {
            guard let so = try servers.object(name) else { continue }
            let (server, opts) = try decodeServer(name, so, filename: filename)
            if let (first, firstName) = options {
                if opts != first {
                    throw so.path.error("server options (timeouts, max_header_bytes, alt_svc_port, h3_retry, trusted_proxies, client_ip_headers) differ from server '\(firstName)'; Berth applies one set to every server (the servers global option)")
                }
            } else {
                options = (opts, name)
            }
            config.servers.append(server)
        }
        config.serverOptions = options?.0 ?? ServerOptions()
        try servers.finish()
        try http.finish()
        if let t = apps.value("tls") {
            // A summary of the servers' certificates (for readers used to Caddy's JSON);
            // it must agree with them.
            guard t == config.tlsAppJSON else {
                throw apps.path.key("tls").error("does not match the servers' tls_connection_policies, from which Berth derives it; change the certificates there (or drop apps.tls)")
            }
        }
        try apps.finish()
        try top.finish()
        return config
    }

    // MARK: Admin

    static func admin(_ r: JSONObjectReader) throws(ConfigError) -> AdminConfig {
        if let d = try r.bool("disabled"), d {
            try r.finish()
            return .off
        }
        guard let listen = try r.string("listen") else { throw r.missing("listen") }
        try r.finish()
        guard let a = AdminConfig.parse(listen) else {
            throw r.error("listen", "invalid admin address '\(listen)' (unix//path[|mode], host:port, fd/N)")
        }
        return a
    }

    // MARK: Servers

    static func decodeServer(_ name: String, _ r: JSONObjectReader, filename: String) throws(ConfigError) -> (ServerConfig, ServerOptions) {
        guard let listen = try r.array("listen") else { throw r.missing("listen") }
        guard let protocols = try r.array("listen_protocols") else { throw r.missing("listen_protocols") }
        guard protocols.count == listen.count else {
            throw r.error("listen_protocols", "must have one entry per listen address (\(listen.count))")
        }
        var listeners: [ListenerConfig] = []
        for ((lv, lp), (pv, pp)) in zip(listen, protocols) {
            let text = try JSONRead.string(lv, lp)
            guard let address = ListenAddress.parse(listenKey: text) else {
                throw lp.error("invalid listen address '\(text)' (fd/N, fdgram/N, fdname/NAME[/K], fdgramname/NAME[/K], unix/PATH, host:port)")
            }
            var ps: [HTTPProtocolName] = []
            for (e, ep) in try JSONRead.array(pv, pp) {
                let s = try JSONRead.string(e, ep)
                guard let p = HTTPProtocolName(rawValue: s) else { throw ep.error("unknown protocol '\(s)': expected h1, h2, h2c or h3") }
                ps.append(p)
            }
            if ps.isEmpty { throw pp.error("at least one protocol is needed") }
            listeners.append(ListenerConfig(address: address, protocols: ps, location: SourceLocation(file: filename, jsonPath: lp.description)))
        }
        var opts = ServerOptions()
        opts.readBodyMilliseconds = try r.milliseconds("read_timeout")
        opts.readHeaderMilliseconds = try r.milliseconds("read_header_timeout")
        opts.writeMilliseconds = try r.milliseconds("write_timeout")
        opts.idleMilliseconds = try r.milliseconds("idle_timeout")
        opts.maxHeaderBytes = try r.int("max_header_bytes")
        if let p = try r.int("alt_svc_port") {
            guard (1...65535).contains(p) else { throw r.error("alt_svc_port", "invalid port \(p)") }
            opts.altSvcPort = p
        }
        opts.h3Retry = try r.bool("h3_retry") ?? false
        if let tp = try r.object("trusted_proxies") {
            guard try tp.string("source") == "static" else { throw tp.error("source", "only the static source is supported by Berth") }
            let ranges = try tp.strings("ranges") ?? []
            for (i, c) in ranges.enumerated() where IPNetwork(c) == nil {
                throw tp.path.key("ranges").index(i).error("parsing CIDR expression: '\(c)'")
            }
            opts.trustedProxies = ranges
            try tp.finish()
        }
        opts.clientIPHeaders = try r.strings("client_ip_headers") ?? []
        if let strict = try r.int("trusted_proxies_strict") {
            guard strict == 0 || strict == 1 else { throw r.error("trusted_proxies_strict", "expected 0 or 1") }
            opts.trustedProxiesStrict = strict == 1
        }

        guard let routes = try r.array("routes") else { throw r.missing("routes") }
        var server = ServerConfig(name: name, listeners: listeners, routes: try routeList(routes), logs: nil)
        if let e = try r.object("errors") {
            guard let er = try e.array("routes") else { throw e.missing("routes") }
            server.errorRoutes = try routeList(er)
            try e.finish()
        }
        if let n = try r.object("named_routes") {
            for k in n.keys {
                guard let o = try n.object(k) else { continue }
                server.namedRoutes.append((k, try route(o)))
            }
            try n.finish()
        }
        if let l = try r.object("logs") { server.logs = try logs(l) }
        if let t = try r.array("tls_connection_policies") {
            guard t.count == 1 else { throw r.error("tls_connection_policies", "Berth's servers have exactly one connection policy") }
            server.tls = try tls(JSONObjectReader(t[0].0, t[0].1), filename: filename)
        }
        try r.finish()
        return (server, opts)
    }

    /// A server's `logs` (Caddy's ServerLogConfig): which hosts log to which named loggers.
    static func logs(_ r: JSONObjectReader) throws(ConfigError) -> AccessLogConfig {
        var c = AccessLogConfig()
        c.defaultLoggerName = try r.string("default_logger_name")
        if let names = try r.object("logger_names") {
            for host in names.keys { c.loggerNames[host] = try names.strings(host) ?? [] }
            try names.finish()
        }
        c.skipHosts = try r.strings("skip_hosts") ?? []
        c.skipUnmappedHosts = try r.bool("skip_unmapped_hosts") ?? false
        // Caddyfile-only: a catch-all site with `log` (no effect at run time beyond the fields above).
        c.logAll = c.loggerNames.isEmpty && c.skipHosts.isEmpty && !c.skipUnmappedHosts
        try r.finish()
        return c
    }

    /// Caddy's `logging.logs`: name → writer, encoder format, level, include/exclude.
    static func logging(_ r: JSONObjectReader) throws(ConfigError) -> [NamedLog] {
        guard let logs = try r.object("logs") else { throw r.missing("logs") }
        var out: [NamedLog] = []
        for name in logs.keys {
            guard let o = try logs.object(name) else { continue }
            var l = CustomLogConfig()
            if let w = try o.object("writer") { l.writer = try logWriter(w) }
            if let e = try o.object("encoder") {
                guard let f = try e.string("format") else { throw e.missing("format") }
                guard let format = LogFormat(rawValue: f) else { throw e.error("format", "unknown log format '\(f)' (json, console)") }
                l.format = format
                try e.finish()
            }
            if let level = try o.string("level") {
                guard LogLevel(caddyName: level) != nil else { throw o.error("level", "unknown level '\(level)'") }
                l.level = level
            }
            l.include = try o.strings("include") ?? []
            l.exclude = try o.strings("exclude") ?? []
            try o.finish()
            out.append(NamedLog(name: name, log: l))
        }
        try logs.finish()
        try r.finish()
        return out
    }

    static func logWriter(_ r: JSONObjectReader) throws(ConfigError) -> LogWriterConfig {
        var w = LogWriterConfig()
        guard let out = try r.string("output") else { throw r.missing("output") }
        guard let o = LogWriterConfig.Output(rawValue: out) else {
            throw r.error("output", "unknown log output '\(out)' (stderr, stdout, discard, file)")
        }
        w.output = o
        if o == .file {
            guard let f = try r.string("filename") else { throw r.missing("filename") }
            w.filename = f
            if let m = try r.string("mode") {
                guard let mode = UInt32(m, radix: 8), mode <= 0o777 else { throw r.error("mode", "invalid octal mode '\(m)'") }
                w.mode = mode
            }
            w.roll = try r.bool("roll") ?? true
            w.rollGzip = try r.bool("roll_gzip")
            w.rollKeep = try r.int("roll_keep")
            w.rollKeepDays = try r.int("roll_keep_days")
            w.rollLocalTime = try r.bool("roll_local_time") ?? false
            w.rollSizeMB = try r.int("roll_size_mb")
        }
        try r.finish()
        return w
    }

    static func tls(_ r: JSONObjectReader, filename: String = "") throws(ConfigError) -> ServerTLSConfig {
        var certs: [CertificateSpec] = []
        for (e, ep) in try r.array("certificates") ?? [] {
            let o = try JSONObjectReader(e, ep)
            let names = try o.strings("subjects") ?? []
            if let cert = try o.string("certificate") {
                guard let key = try o.string("key") else { throw o.missing("key") }
                if o.has("issuer") { throw o.error("issuer", "a certificate comes from files or from an issuer, not both") }
                certs.append(CertificateSpec(names: names, source: .files(certificate: cert, key: key)))
            } else if let issuer = try o.object("issuer") {
                switch try issuer.string("module") {
                case "internal":
                    try issuer.finish()
                    certs.append(CertificateSpec(names: names, source: .internalCA))
                case "acme":
                    certs.append(CertificateSpec(names: names, source: .acme(try ACMEIssuerSpec.decode(issuer))))
                case let m:
                    throw issuer.error("module", "unknown issuer '\(m ?? "")' (internal or acme)")
                }
                if names.isEmpty { throw o.missing("subjects") }
            } else {
                throw ep.error("needs certificate and key files, or an issuer")
            }
            try o.finish()
        }
        var t = ServerTLSConfig(certificates: certs, defaultSNI: try r.string("default_sni"), minimumVersion: nil, maximumVersion: nil)
        t.minimumVersion = try r.choice("protocol_min", ["tls1.2", "tls1.3"])
        t.maximumVersion = try r.choice("protocol_max", ["tls1.2", "tls1.3"])
        if let names = try r.strings("cipher_suites") {
            var out: [String] = []
            for n in names {
                if let m = TLSNames.tls12Ciphers.first(where: { $0.caddy == n }) {
                    out.append(m.openSSL)
                } else if !TLSNames.tls13Ciphers.contains(n) {
                    throw r.error("cipher_suites", "cipher suite '\(n)' is not allowed by Berth (allowed: \(TLSNames.tls12Ciphers.map(\.caddy).joined(separator: ", ")))")
                }
            }
            t.ciphers = out
        }
        if let names = try r.strings("curves") {
            t.curves = try names.map { n throws(ConfigError) in
                guard let m = TLSNames.curves.first(where: { $0.caddy == n }) else {
                    throw r.error("curves", "unknown curve '\(n)' (x25519, secp256r1, secp384r1, secp521r1)")
                }
                return m.openSSL
            }
        }
        t.alpn = try r.strings("alpn")
        for (v, p) in try r.array("client_authentication") ?? [] {
            let o = try JSONObjectReader(v, p)
            var spec = ClientAuthSpec(location: SourceLocation(file: filename, jsonPath: p.description))
            spec.mode = try o.choice("mode", Array(TLSNames.clientAuthModes).sorted())
            spec.trustedCACerts = try o.strings("trusted_ca_certs") ?? []
            spec.trustedCACertFiles = try o.strings("trusted_ca_certs_pem_files") ?? []
            spec.trustedLeafCerts = try o.strings("trusted_leaf_certs") ?? []
            spec.trustedLeafCertFiles = try o.strings("trusted_leaf_certs_pem_files") ?? []
            var names: [String] = []
            if let m = try o.object("match") {
                names = try m.strings("sni") ?? []
                try m.finish()
            }
            try o.finish()
            t.clientAuth.append(ClientAuthPolicySpec(names: names, spec: spec))
        }
        try r.finish()
        return t
    }

    // MARK: Routes

    static func routeList(_ items: [(JSONValue, JSONPath)]) throws(ConfigError) -> [RouteConfig] {
        var out: [RouteConfig] = []
        for (v, p) in items { out.append(try route(JSONObjectReader(v, p))) }
        return out
    }

    static func route(_ r: JSONObjectReader) throws(ConfigError) -> RouteConfig {
        var route = RouteConfig(handle: [])
        route.group = try r.string("group")
        for (v, p) in try r.array("match") ?? [] { route.match.append(try matcherSet(v, p)) }
        for (v, p) in try r.array("handle") ?? [] { route.handle.append(try handler(JSONObjectReader(v, p))) }
        route.terminal = try r.bool("terminal") ?? false
        try r.finish()
        return route
    }

    /// One matcher set (an object: matcher name → its value), ANDed.
    package static func matcherSet(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> [any MatcherSpec] {
        let r = try JSONObjectReader(v, p)
        var set: [any MatcherSpec] = []
        for name in r.keys {
            guard let mv = r.value(name) else { continue }
            guard let decode = JSONModules.matchers[name] else {
                throw p.key(name).error("unknown matcher '\(name)' (Berth's JSON has \(JSONModules.matchers.keys.sorted().joined(separator: ", ")))")
            }
            set.append(try decode(mv, p.key(name)))
        }
        return set
    }

    static func handler(_ r: JSONObjectReader) throws(ConfigError) -> HandlerConfig {
        guard let name = try r.string("handler") else { throw r.missing("handler") }
        if name == "subroute" {
            let routes = try routeList(try r.array("routes") ?? [])
            try r.finish()
            return .subroute(routes)
        }
        guard let decode = JSONModules.handlers[name] else {
            throw r.error("handler", "unknown handler '\(name)' (Berth's JSON has \((JSONModules.handlers.keys + ["subroute"]).sorted().joined(separator: ", ")))")
        }
        let spec = try decode(r)
        try r.finish()
        return .spec(spec)
    }
}

extension ACMEIssuerSpec {
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> ACMEIssuerSpec {
        var s = ACMEIssuerSpec()
        s.directory = try r.string("ca")
        if let c = try r.object("challenges") {
            func disabled(_ key: String) throws(ConfigError) -> Bool {
                guard let o = try c.object(key) else { return false }
                let d = try o.bool("disabled") ?? false
                try o.finish()
                return d
            }
            s.disableHTTPChallenge = try disabled("http")
            s.disableTLSALPNChallenge = try disabled("tls-alpn")
            try c.finish()
            if s.disableHTTPChallenge && s.disableTLSALPNChallenge {
                throw c.path.error("disabling both the HTTP and the TLS-ALPN challenge leaves none (Berth does not support DNS-01 yet)")
            }
        }
        s.email = try r.string("email")
        if let ea = try r.object("external_account") {
            guard let k = try ea.string("key_id") else { throw ea.missing("key_id") }
            guard let m = try ea.string("mac_key") else { throw ea.missing("mac_key") }
            s.eabKeyID = k
            s.eabMACKey = m
            try ea.finish()
        }
        s.trustedRootFiles = try r.strings("trusted_roots_pem_files") ?? []
        try r.finish()
        return s
    }
}

extension AdminConfig {
    /// The admin `listen` text as Berth prints it: `unix/PATH[|MODE]` (octal; 0200 when
    /// absent), `fd/N`, `host:port`.
    package static func parse(_ v: String) -> AdminConfig? {
        if v.hasPrefix("unix/") {
            var path = String(v.dropFirst(5))
            var mode: UInt32 = 0o200
            if let bar = path.lastIndex(of: "|") {
                guard let m = UInt32(path[path.index(after: bar)...], radix: 8), m <= 0o777 else { return nil }
                mode = m
                path = String(path[..<bar])
            }
            return path.isEmpty ? nil : .unix(path: path, mode: mode)
        }
        if v.hasPrefix("fd/") {
            guard let n = Int(v.dropFirst(3)), n >= 0 else { return nil }
            return .fd(n)
        }
        guard let colon = v.lastIndex(of: ":"), let port = Int(v[v.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(v[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return .tcp(host: host.isEmpty ? "localhost" : host, port: port)
    }
}

extension ListenAddress {
    /// Parses the listener key Berth prints (`description`): `fd/3`, `fdgram/4`,
    /// `fdname/web/1`, `unix//run/x.sock`, `:80`, `127.0.0.1:8080`, `[::1]:443`.
    package static func parse(listenKey s: String) -> ListenAddress? {
        func nameIndex(_ t: Substring) -> (String, Int?)? {
            let parts = t.split(separator: "/", omittingEmptySubsequences: false)
            guard let name = parts.first, !name.isEmpty, parts.count <= 2 else { return nil }
            if parts.count == 2 {
                guard let k = Int(parts[1]), k >= 0 else { return nil }
                return (String(name), k)
            }
            return (String(name), nil)
        }
        func fd(_ t: Substring) -> Int? {
            guard let n = Int(t), n >= 0, n <= Int(Int32.max) else { return nil }
            return n
        }
        if s.hasPrefix("fd/") { return fd(s.dropFirst(3)).map { .fd($0) } }
        if s.hasPrefix("fdgram/") { return fd(s.dropFirst(7)).map { .fdgram($0) } }
        if s.hasPrefix("fdname/") { return nameIndex(s.dropFirst(7)).map { .fdname($0.0, index: $0.1) } }
        if s.hasPrefix("fdgramname/") { return nameIndex(s.dropFirst(11)).map { .fdgramname($0.0, index: $0.1) } }
        if s.hasPrefix("unix/") {
            let p = String(s.dropFirst(5))
            return p.isEmpty ? nil : .unix(path: p)
        }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") {
            guard host.hasSuffix("]") else { return nil }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil
        }
        return .tcp(host: host, port: port)
    }
}

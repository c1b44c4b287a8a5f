import Caddyfile
import Handlers

/// The global options block (caddy-behavior §1, §2; Caddy's `httpcaddyfile/options.go`).
struct GlobalOptions {
    var admin: AdminConfig = .default
    var autoHTTPS: String? = nil
    var httpPort = 80
    var httpsPort = 443
    var defaultBinds: [(addresses: [ListenAddress], protocols: [HTTPProtocolName], location: SourceLocation)] = []
    var gracePeriodMilliseconds: Int? = nil
    var shutdownDelayMilliseconds: Int? = nil
    var debug = false
    var serverOptions = ServerOptions()
    var orderRules: [OrderRule] = []
    var localCerts = false
    var defaultSNI: String? = nil
    /// `email`, `acme_ca`, `acme_ca_root`, `acme_eab`: defaults for every site's ACME issuer.
    var acme = ACMEIssuerSpec()
    /// Global `log` options, in order.
    var logs: [ParsedLog] = []
    private var logNames: Set<String>? = []
    /// `storage file_system <root>`.
    var storageRoot: String? = nil

    /// Options Caddy has that this build parses but cannot act on yet: validation fails with a
    /// message saying so, never silently ignoring them.
    static let notYet: Set<String> = [
        "acme_dns", "storage_check", "storage_clean_interval",
        "fallback_sni", "on_demand_tls", "key_type", "cert_issuer", "ocsp_stapling",
        "ocsp_interval", "preferred_chains", "renew_interval", "pki", "events", "filesystem", "metrics",
        "cert_lifetime", "renewal_window_ratio", "ech",
    ]

    static func parse(_ block: ServerBlock) throws(CaddyfileError) -> GlobalOptions {
        var o = GlobalOptions()
        for seg in block.segments {
            var d = Dispenser(seg)
            guard d.next() else { continue }
            let name = d.val
            switch name {
            case "admin":
                guard d.nextArg() else { throw d.argErr() }
                o.admin = try parseAdmin(d.val, &d)
                if d.nextArg() { throw d.argErr() }
                // Sub-options (origins, enforce_origin, config) are accepted and ignored later.
                let nesting = d.nesting
                while d.nextBlock(nesting) {
                    switch d.val {
                    case "origins", "enforce_origin": while d.nextArg() {}
                    default: throw d.err("unrecognized admin option '\(d.val)' (not supported by this Berth build yet)")
                    }
                }
            case "auto_https":
                guard d.nextArg() else { throw d.argErr() }
                let v = d.val
                guard ["off", "disable_redirects", "disable_certs", "ignore_loaded_certs", "prefer_wildcard"].contains(v) else {
                    throw d.err("auto_https must be one of 'off', 'disable_redirects', 'disable_certs', 'ignore_loaded_certs', or 'prefer_wildcard'")
                }
                o.autoHTTPS = v
            case "http_port", "https_port":
                guard d.nextArg() else { throw d.argErr() }
                guard let p = Int(d.val), (0...65535).contains(p) else { throw d.err("converting port '\(d.val)' to integer value: invalid syntax") }
                if name == "http_port" { o.httpPort = p } else { o.httpsPort = p }
                if d.nextArg() { throw d.argErr() }
            case "default_bind":
                let loc = SourceLocation(file: d.file, line: d.line)
                var addrs: [ListenAddress] = []
                while d.nextArg() { addrs.append(try DirectiveParsers.parseBindAddress(d.val, &d)) }
                if addrs.isEmpty { throw d.argErr() }
                let protocols = try DirectiveParsers.protocolsBlock(&d)
                o.defaultBinds.append((addrs, protocols ?? [], loc))
            case "grace_period", "shutdown_delay":
                guard d.nextArg() else { throw d.argErr() }
                guard let ms = DurationText.parseMilliseconds(d.val) else { throw d.err("invalid duration '\(d.val)'") }
                if name == "grace_period" { o.gracePeriodMilliseconds = ms } else { o.shutdownDelayMilliseconds = ms }
            case "debug":
                o.debug = true
            case "log":
                o.logs.append(try DirectiveParsers.parseLog(&d, globalNames: &o.logNames))
            case "storage":
                guard d.nextArg() else { throw d.argErr() }
                let module = d.val
                guard module == "file_system" else {
                    throw d.err("storage module '\(module)' is not supported by this Berth build (only file_system)")
                }
                var root = ""
                if d.nextArg() { root = d.val }
                if d.nextArg() { throw d.argErr() }
                let nesting = d.nesting
                while d.nextBlock(nesting) {
                    switch d.val {
                    case "root":
                        guard d.nextArg() else { throw d.argErr() }
                        if !root.isEmpty { throw d.err("root already set") }
                        root = d.val
                        if d.nextArg() { throw d.argErr() }
                    default:
                        throw d.err("unrecognized parameter '\(d.val)'")
                    }
                }
                if root.isEmpty { throw d.err("missing root path (to use default, omit storage config entirely)") }
                o.storageRoot = root
            case "persist_config":
                // Berth never writes an autosave; `off` is what it does anyway.
                guard d.nextArg(), d.val == "off" else { throw d.err("persist_config must be 'off'") }
            case "local_certs":
                o.localCerts = true
            case "default_sni":
                guard d.nextArg() else { throw d.argErr() }
                o.defaultSNI = d.val
            case "email", "acme_ca", "acme_ca_root":
                guard d.nextArg() else { throw d.argErr() }
                switch name {
                case "email": o.acme.email = d.val
                case "acme_ca": o.acme.directory = d.val
                default: o.acme.trustedRootFiles = [d.val]
                }
                if d.nextArg() { throw d.argErr() }
            case "acme_eab":
                try DirectiveParsers.acmeEAB(&d, into: &o.acme)
            case "skip_install_trust":
                // Berth never installs its local CA into the system trust store.
                break
            case "order":
                guard d.nextArg() else { throw d.argErr() }
                let dir = d.val
                guard d.nextArg() else { throw d.argErr() }
                let pos = d.val
                var other: String? = nil
                switch pos {
                case "first", "last":
                    if d.nextArg() { throw d.argErr() }
                case "before", "after":
                    guard d.nextArg() else { throw d.argErr() }
                    other = d.val
                    if d.nextArg() { throw d.argErr() }
                default:
                    throw d.err("unknown position '\(pos)': expected first, last, before or after")
                }
                o.orderRules.append(OrderRule(directive: dir, position: pos, other: other))
            case "servers":
                if d.nextArg() {
                    throw d.err("servers options for a single listener address (\(d.val)) are not supported by this Berth build yet; omit the address")
                }
                let nesting = d.nesting
                while d.nextBlock(nesting) {
                    switch d.val {
                    case "timeouts":
                        let inner = d.nesting
                        while d.nextBlock(inner) {
                            let key = d.val
                            guard d.nextArg() else { throw d.argErr() }
                            guard let ms = DurationText.parseMilliseconds(d.val) else { throw d.err("parsing servers timeouts duration: invalid duration '\(d.val)'") }
                            switch key {
                            case "read_header": o.serverOptions.readHeaderMilliseconds = ms
                            case "read_body": o.serverOptions.readBodyMilliseconds = ms
                            case "write": o.serverOptions.writeMilliseconds = ms
                            case "idle": o.serverOptions.idleMilliseconds = ms
                            default: throw d.err("unrecognized timeouts option '\(key)'")
                            }
                        }
                    case "alt_svc_port":
                        guard d.nextArg() else { throw d.argErr() }
                        guard let p = Int(d.val), (1...65535).contains(p) else { throw d.err("alt_svc_port: invalid port '\(d.val)'") }
                        o.serverOptions.altSvcPort = p
                        if d.nextArg() { throw d.argErr() }
                    case "h3_retry":
                        o.serverOptions.h3Retry = true
                        if d.nextArg() { throw d.argErr() }
                    case "max_header_size":
                        guard d.nextArg() else { throw d.argErr() }
                        guard let n = ByteSize.parse(d.val) else { throw d.err("parsing max_header_size: invalid size '\(d.val)'") }
                        o.serverOptions.maxHeaderBytes = n
                    case "protocols":
                        o.serverOptions.protocols = try DirectiveParsers.protocolList(&d)
                    case "trusted_proxies":
                        guard d.nextArg() else { throw d.argErr() }
                        guard d.val == "static" else {
                            throw d.err("trusted_proxies source '\(d.val)' is not supported by this Berth build yet (static only)")
                        }
                        func range(_ d: inout Dispenser) throws(CaddyfileError) {
                            if d.val == "private_ranges" {
                                o.serverOptions.trustedProxies += MatcherSpecParsers.privateRanges
                            } else {
                                guard IPPrefix(d.val) != nil else { throw d.err("invalid IP address: '\(d.val)'") }
                                o.serverOptions.trustedProxies.append(d.val)
                            }
                        }
                        while d.nextArg() { try range(&d) }
                        let inner = d.nesting
                        while d.nextBlock(inner) {
                            guard d.val == "ranges" else { throw d.err("unrecognized trusted_proxies option '\(d.val)'") }
                            while d.nextArg() { try range(&d) }
                        }
                    case "trusted_proxies_strict":
                        if d.nextArg() { throw d.argErr() }
                        o.serverOptions.trustedProxiesStrict = true
                    case "client_ip_headers":
                        let hs = d.remainingArgs()
                        if hs.isEmpty { throw d.argErr() }
                        for h in hs where !o.serverOptions.clientIPHeaders.contains(h) { o.serverOptions.clientIPHeaders.append(h) }
                    default:
                        throw d.err("servers option '\(d.val)' is not supported by this Berth build yet")
                    }
                }
            default:
                if notYet.contains(name) {
                    throw d.err("global option '\(name)' is not supported by this Berth build yet")
                }
                throw d.err("unrecognized global option: \(name)")
            }
        }
        return o
    }

    /// `off`, `unix//path[|mode]`, `host:port`, `:port`, `fd/N`.
    static func parseAdmin(_ v: String, _ d: inout Dispenser) throws(CaddyfileError) -> AdminConfig {
        if v == "off" { return .off }
        if v.hasPrefix("unix/") {
            var path = String(v.dropFirst(5))
            var mode: UInt32 = 0o200
            if let bar = path.lastIndex(of: "|") {
                let m = String(path[path.index(after: bar)...])
                guard let mv = UInt32(m, radix: 8), mv <= 0o777 else { throw d.err("parsing unix socket permission '\(m)': invalid octal mode") }
                mode = mv
                path = String(path[path.startIndex..<bar])
            }
            if path.isEmpty { throw d.err("admin: unix socket path is empty") }
            return .unix(path: path, mode: mode)
        }
        if v.hasPrefix("fd/") {
            guard let n = GoStrconv.parseUint(String(v.dropFirst(3))) else { throw d.err("invalid file descriptor: \(v)") }
            return .fd(n)
        }
        var host = v
        var portText = ""
        if let colon = v.lastIndex(of: ":") {
            host = String(v[v.startIndex..<colon])
            portText = String(v[v.index(after: colon)...])
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let port = Int(portText), (0...65535).contains(port) else { throw d.err("admin: invalid address '\(v)'") }
        return .tcp(host: host.isEmpty ? "localhost" : host, port: port)
    }
}

/// Go-style durations (`10s`, `1m30s`, `500ms`, `2h`, Caddy's `d`) and plain integers
/// (seconds). Out-of-range values are rejected, never trapped on.
package enum DurationText {
    package static func parseMilliseconds(_ s: String) -> Int? {
        if let n = Int(s) {
            let (ms, overflow) = n.multipliedReportingOverflow(by: 1000)
            return overflow ? nil : ms
        }
        var total = 0.0
        var num = ""
        var unit = ""
        var sawAny = false
        func flush() -> Bool {
            guard let v = Double(num) else { return false }
            let mult: Double
            switch unit {
            case "ns": mult = 1e-6
            case "us", "µs": mult = 1e-3
            case "ms": mult = 1
            case "s": mult = 1000
            case "m": mult = 60_000
            case "h": mult = 3_600_000
            case "d": mult = 86_400_000
            default: return false
            }
            total += v * mult
            num = ""
            unit = ""
            sawAny = true
            return true
        }
        for c in s {
            if c.isASCII && (c.isNumber || c == ".") {
                if !unit.isEmpty { guard flush() else { return nil } }
                num.append(c)
            } else {
                unit.append(c)
            }
        }
        guard flush(), sawAny else { return nil }
        // Go's ParseDuration fails above ~292 years (int64 nanoseconds).
        guard total.isFinite, total < 9_223_372_036_854.0 else { return nil }
        return Int(total.rounded())
    }
}

/// Sizes like `16KiB`, `1MB`, `512` (bytes), parsed like go-humanize's `ParseBytes`, which
/// Caddy uses: digits (`,` and `.` allowed), then an optional unit.
package enum ByteSize {
    static let units: [String: Double] = [
        "": 1, "b": 1,
        "k": 1e3, "kb": 1e3, "ki": 1024, "kib": 1024,
        "m": 1e6, "mb": 1e6, "mi": 1_048_576, "mib": 1_048_576,
        "g": 1e9, "gb": 1e9, "gi": 1_073_741_824, "gib": 1_073_741_824,
        "t": 1e12, "tb": 1e12, "ti": 1_099_511_627_776, "tib": 1_099_511_627_776,
        "p": 1e15, "pb": 1e15, "pi": 1_125_899_906_842_624, "pib": 1_125_899_906_842_624,
    ]

    package static func parse(_ s: String) -> Int? {
        let b = Array(s.utf8)
        var i = 0
        var digits: [UInt8] = []
        while i < b.count, (b[i] >= 0x30 && b[i] <= 0x39) || b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") {
            if b[i] != UInt8(ascii: ",") { digits.append(b[i]) }
            i += 1
        }
        guard let v = Double(String(decoding: digits, as: UTF8.self)) else { return nil }
        let unit = String(decoding: b[i...], as: UTF8.self).lowercased()
            .unicodeScalars.drop(while: \.properties.isWhitespace)
        var trimmed = String(unit)
        while let last = trimmed.unicodeScalars.last, last.properties.isWhitespace { trimmed.unicodeScalars.removeLast() }
        guard let mult = units[trimmed] else { return nil }
        let bytes = v * mult
        guard bytes.isFinite, bytes < 9.2e18 else { return nil }
        return Int(bytes)
    }
}

/// One `order` global option: move `directive` first/last or before/after `other`.
package struct OrderRule: Sendable, Equatable {
    package var directive: String
    package var position: String
    package var other: String?
}

extension OrderRule {
    /// Applies rules to Caddy's default order, like `httpcaddyfile.RegisterDirectiveOrder`.
    package static func apply(_ rules: [OrderRule], to base: [String]) -> [String] {
        var order = base
        for r in rules {
            order.removeAll { $0 == r.directive }
            switch r.position {
            case "first": order.insert(r.directive, at: 0)
            case "last": order.append(r.directive)
            case "before":
                if let o = r.other, let i = order.firstIndex(of: o) { order.insert(r.directive, at: i) } else { order.append(r.directive) }
            default:
                if let o = r.other, let i = order.firstIndex(of: o) { order.insert(r.directive, at: i + 1) } else { order.append(r.directive) }
            }
        }
        return order
    }
}

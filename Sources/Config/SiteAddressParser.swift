import Caddyfile

extension SiteAddress {
    /// Parses a site key like Caddy's `httpcaddyfile.ParseAddress` (caddy-behavior §2).
    package static func parse(_ raw: String, at loc: SourceLocation) throws(ConfigError) -> SiteAddress {
        var s = raw
        var scheme = ""
        let bytes = Array(s.utf8)
        if bytes.count >= 3 {
            for i in 0...(bytes.count - 3) where bytes[i] == 0x3A && bytes[i + 1] == 0x2F && bytes[i + 2] == 0x2F {
                scheme = String(decoding: bytes[0..<i], as: UTF8.self).lowercased()
                s = String(decoding: bytes[(i + 3)...], as: UTF8.self)
                break
            }
        }
        switch scheme {
        case "", "http", "https": break
        case "ws", "wss":
            throw ConfigError("parsing key: the scheme \(scheme):// is only supported in browsers and is not supported by Caddy; use http:// or https://", at: loc)
        default:
            throw ConfigError("parsing key '\(raw)': unsupported URL scheme \(scheme)://", at: loc)
        }
        var path = ""
        if let slash = s.firstIndex(of: "/") {
            path = String(s[slash...])
            s = String(s[s.startIndex..<slash])
        }
        var host = s
        var port = ""
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else {
                throw ConfigError("parsing key '\(raw)': missing ']' in address", at: loc)
            }
            host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            if rest.hasPrefix(":") { port = String(rest.dropFirst()) } else if !rest.isEmpty {
                throw ConfigError("parsing key '\(raw)': invalid address", at: loc)
            }
        } else if let colon = s.lastIndex(of: ":"), s.filter({ $0 == ":" }).count == 1 {
            host = String(s[s.startIndex..<colon])
            port = String(s[s.index(after: colon)...])
        }
        if !port.isEmpty {
            guard let p = Int(port), (0...65535).contains(p) else {
                throw ConfigError("parsing key '\(raw)': invalid port '\(port)'", at: loc)
            }
        }
        if scheme == "http" && port == "443" {
            throw ConfigError("parsing key '\(raw)': [\(raw)] scheme and port violate convention", at: loc)
        }
        if scheme == "https" && port == "80" {
            throw ConfigError("parsing key '\(raw)': [\(raw)] scheme and port violate convention", at: loc)
        }
        return SiteAddress(original: raw, scheme: scheme, host: host.lowercased(), port: port, path: path)
    }

    /// The listener port: explicit, else `http_port` for http://, else `https_port`.
    package func effectivePort(httpPort: Int, httpsPort: Int) -> Int {
        if let p = Int(port) { return p }
        if scheme == "http" { return httpPort }
        return httpsPort
    }

    /// True when the site is served over plain HTTP (Caddy: scheme http, or the HTTP port, or
    /// no host at all on a non-HTTPS port).
    package func isPlainHTTP(httpPort: Int, httpsPort: Int) -> Bool {
        if scheme == "http" { return true }
        if scheme == "https" { return false }
        let p = effectivePort(httpPort: httpPort, httpsPort: httpsPort)
        if p == httpPort { return true }
        if p == httpsPort { return false }
        return host.isEmpty
    }
}

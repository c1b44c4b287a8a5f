/// Why an upstream address was refused.
package struct UpstreamAddressError: Error, Equatable, CustomStringConvertible, Sendable {
    package var description: String
    package init(_ d: String) { description = d }
}

/// One upstream to dial, as Caddy's `reverse_proxy` Caddyfile adapter produces it
/// (`reverseproxy/addresses.go` parseUpstreamDialAddress): a TCP `host:port` or a unix socket.
package struct UpstreamAddress: Sendable, Equatable, CustomStringConvertible {
    /// Where the socket goes.
    package enum Endpoint: Sendable, Equatable {
        /// A host name or IP literal (no brackets) and a port.
        case tcp(host: String, port: Int)
        /// A unix stream socket path (`@name` for the abstract namespace).
        case unix(path: String)
    }

    package var endpoint: Endpoint
    /// `https://` upstream (TLS to the upstream).
    package var tls: Bool
    /// Written with `http://` (or `ws://`): contradicts a TLS transport.
    package var explicitHTTP = false

    package init(endpoint: Endpoint, tls: Bool = false) {
        self.endpoint = endpoint
        self.tls = tls
    }

    /// Caddy's `dial` value: `host:port`, `[v6]:port`, `unix//path`.
    package var dial: String {
        switch endpoint {
        case .tcp(let host, let port):
            return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path):
            return "unix/\(path)"
        }
    }

    /// `{upstream_hostport}` (`{http.reverse_proxy.upstream.hostport}`): the dial address;
    /// for unix sockets Caddy gives the dial string too.
    package var hostport: String { dial }

    package var description: String { dial }

    /// Parses one upstream token of `reverse_proxy` / `to`. Port ranges (`host:8001-8006`)
    /// expand to one upstream per port. Accepted forms: `host`, `host:port`, `[v6]:port`,
    /// `http://host[:port]`, `https://host[:port]` (TLS), `h2c://host[:port]`, `unix//path`,
    /// `:port` (Go dials the local system).
    package static func parse(_ raw: String) throws(UpstreamAddressError) -> [UpstreamAddress] {
        var s = raw
        var scheme = ""
        let u = Array(s.utf8)
        if let i = (0..<max(0, u.count - 2)).first(where: { u[$0] == 0x3A && u[$0 + 1] == 0x2F && u[$0 + 2] == 0x2F }) {
            scheme = String(decoding: u[0..<i], as: UTF8.self).lowercased()
            s = String(decoding: u[(i + 3)...], as: UTF8.self)
            guard ["http", "https", "h2c", "ws", "wss"].contains(scheme) else {
                throw UpstreamAddressError("unsupported URL scheme \(scheme)://")
            }
            if s.contains("/") || s.contains("?") || s.contains("#") {
                throw UpstreamAddressError(
                    "for now, URLs for proxy upstreams only support scheme, host, and port components")
            }
        }
        if scheme.isEmpty, s.hasPrefix("unix/") {
            let path = String(s.dropFirst(5))
            guard !path.isEmpty else { throw UpstreamAddressError("invalid unix socket address '\(raw)'") }
            return [UpstreamAddress(endpoint: .unix(path: path))]
        }
        if scheme == "h2c" { throw UpstreamAddressError("h2c upstreams are not supported by this Berth build yet") }
        let tls = scheme == "https" || scheme == "wss"
        // Split host and port (brackets for IPv6).
        var host: String
        var portText: String? = nil
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { throw UpstreamAddressError("invalid upstream address '\(raw)'") }
            host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { throw UpstreamAddressError("invalid upstream address '\(raw)'") }
                portText = String(rest.dropFirst())
            }
        } else if let colon = s.lastIndex(of: ":") {
            if s[..<colon].contains(":") {
                // A bare IPv6 literal without brackets and without port.
                host = s
            } else {
                host = String(s[..<colon])
                portText = String(s[s.index(after: colon)...])
            }
        } else {
            host = s
        }
        if host.isEmpty && portText == nil { throw UpstreamAddressError("invalid upstream address '\(raw)'") }
        if host.isEmpty { host = "localhost" }
        for b in host.utf8 where b <= 0x20 || b == UInt8(ascii: "/") || b >= 0x7F {
            throw UpstreamAddressError("invalid upstream host '\(host)'")
        }
        var ports: ClosedRange<Int>
        if let p = portText {
            if let dash = p.firstIndex(of: "-") {
                guard let lo = Int(p[..<dash]), let hi = Int(p[p.index(after: dash)...]), (1...65535).contains(lo),
                    (1...65535).contains(hi), lo <= hi
                else { throw UpstreamAddressError("invalid port range '\(p)'") }
                if tls || !scheme.isEmpty { throw UpstreamAddressError("port ranges are not allowed in URLs: '\(raw)'") }
                ports = lo...hi
            } else {
                guard let n = Int(p), (1...65535).contains(n) else {
                    throw UpstreamAddressError("invalid port '\(p)' in upstream address '\(raw)'")
                }
                ports = n...n
            }
        } else {
            let n = tls ? 443 : 80
            ports = n...n
        }
        let explicitHTTP = scheme == "http" || scheme == "ws"
        return ports.map {
            var a = UpstreamAddress(endpoint: .tcp(host: host, port: $0), tls: tls)
            a.explicitHTTP = explicitHTTP
            return a
        }
    }
}

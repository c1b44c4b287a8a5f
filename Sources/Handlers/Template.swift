#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Request placeholders a template can expand (Caddy's shorthands and long forms).
package enum Placeholder: Sendable, Equatable {
    case host, hostport, port, uri, path, query, queryWithMark, method, scheme
    case remoteHost, remotePort, remote, proto
    case header(String)
    case env(String)

    /// Maps a placeholder name (without braces) to a placeholder, or nil when unknown.
    package static func parse(_ name: String) -> Placeholder? {
        switch name {
        case "host", "http.request.host": return .host
        case "hostport", "http.request.hostport": return .hostport
        case "port", "http.request.port": return .port
        case "uri", "http.request.uri": return .uri
        case "path", "http.request.uri.path": return .path
        case "query", "http.request.uri.query": return .query
        case "?query": return .queryWithMark
        case "method", "http.request.method": return .method
        case "scheme", "http.request.scheme": return .scheme
        case "remote_host", "http.request.remote.host": return .remoteHost
        case "remote_port", "http.request.remote.port": return .remotePort
        case "remote", "http.request.remote": return .remote
        case "http.request.proto": return .proto
        default:
            if name.hasPrefix("header.") { return .header(String(name.dropFirst(7))) }
            if name.hasPrefix("http.request.header.") { return .header(String(name.dropFirst(20))) }
            if name.hasPrefix("env.") { return .env(String(name.dropFirst(4))) }
            return nil
        }
    }
}

/// A string with placeholders, compiled once at config time and expanded per request straight
/// into a byte buffer (no String churn on the hot path).
package struct Template: Sendable {
    package enum Part: Sendable {
        case literal([UInt8])
        case placeholder(Placeholder)
    }
    /// The compiled parts.
    package let parts: [Part]
    /// The source text.
    package let source: String

    /// True when the template is one literal (or empty): expansion is a copy.
    package var isStatic: Bool {
        parts.allSatisfy { if case .literal = $0 { return true } else { return false } }
    }

    /// The literal bytes when static.
    package var staticBytes: [UInt8] {
        var out: [UInt8] = []
        for p in parts { if case .literal(let b) = p { out += b } }
        return out
    }

    /// Compiles `source`. Unknown placeholders stay literal when `keepUnknown` (Caddy's
    /// ReplaceKnown, used for `respond` bodies) and become empty otherwise (ReplaceAll).
    /// `{env.X}` is resolved now from `environment`.
    package init(_ source: String, keepUnknown: Bool = true, environment: [String: String] = [:]) {
        self.source = source
        var parts: [Part] = []
        var lit: [UInt8] = []
        let bytes = Array(source.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "{") || bytes[i + 1] == UInt8(ascii: "}") {
                lit.append(bytes[i + 1])
                i += 2
                continue
            }
            if b == UInt8(ascii: "{") {
                var j = i + 1
                while j < bytes.count, bytes[j] != UInt8(ascii: "}"), bytes[j] != UInt8(ascii: "{") { j += 1 }
                if j < bytes.count, bytes[j] == UInt8(ascii: "}") {
                    let name = String(decoding: bytes[(i + 1)..<j], as: UTF8.self)
                    if let ph = Placeholder.parse(name) {
                        if case .env(let v) = ph {
                            lit += Array((environment[v] ?? "").utf8)
                        } else {
                            if !lit.isEmpty { parts.append(.literal(lit)); lit = [] }
                            parts.append(.placeholder(ph))
                        }
                    } else if keepUnknown {
                        lit += bytes[i...j]
                    }
                    i = j + 1
                    continue
                }
            }
            lit.append(b)
            i += 1
        }
        if !lit.isEmpty { parts.append(.literal(lit)) }
        self.parts = parts
    }

    /// Appends the expansion for `request` to `out`.
    package func expand(_ request: HTTPRequest, into out: ByteBuffer) {
        for p in parts {
            switch p {
            case .literal(let b): out.append(b)
            case .placeholder(let ph): Template.append(ph, request, out)
            }
        }
    }

    /// Expansion as a String (cold paths and tests).
    package func string(for request: HTTPRequest) -> String {
        let b = ByteBuffer(capacity: 256)
        expand(request, into: b)
        return String(decoding: b.readable, as: UTF8.self)
    }

    static func append(_ ph: Placeholder, _ r: HTTPRequest, _ out: ByteBuffer) {
        switch ph {
        case .host:
            r.withHost { out.append($0) }
        case .hostport:
            if let a = r.authorityRange { r.withLineBytes(a) { out.append($0) } }
        case .port:
            if let a = r.authorityRange {
                r.withLineBytes(a) { auth in
                    let host = HTTPRequest.stripPort(auth)
                    if host.count < auth.count {
                        var start = host.count + 1
                        if auth.first == UInt8(ascii: "[") { start += 2 }
                        if start < auth.count { out.append(UnsafeRawBufferPointer(rebasing: auth[start...])) }
                    } else {
                        out.append(r.connection.isTLS ? "443" : "80")
                    }
                }
            }
        case .uri:
            r.withLineBytes(r.targetRange) { out.append($0) }
        case .path:
            r.withLineBytes(r.pathRange) { URLDecoding.appendDecodedPath($0, into: out) }
        case .query:
            if let q = r.queryRange { r.withLineBytes(q) { out.append($0) } }
        case .queryWithMark:
            if let q = r.queryRange, !q.isEmpty {
                out.append(byte: UInt8(ascii: "?"))
                r.withLineBytes(q) { out.append($0) }
            }
        case .method:
            r.withLineBytes(r.methodRange) { out.append($0) }
        case .scheme:
            out.append(r.connection.isTLS ? "https" : "http")
        case .remoteHost:
            r.connection.remote?.writeIP(into: out)
        case .remotePort:
            if let p = r.connection.remote?.port { out.appendDecimal(p) }
        case .remote:
            if let rem = r.connection.remote {
                if case .v6(let s) = rem, !SocketAddress.isV4Mapped(s.sin6_addr) {
                    out.append(byte: UInt8(ascii: "["))
                    rem.writeIP(into: out)
                    out.append(byte: UInt8(ascii: "]"))
                } else {
                    rem.writeIP(into: out)
                }
                out.append(byte: UInt8(ascii: ":"))
                out.appendDecimal(rem.port)
            }
        case .proto:
            out.append(r.version.protoString)
        case .header(let name):
            if let v = r.fields.value(named: name) { out.append(string: v) }
            else if name.lowercased() == "host", let a = r.authorityRange { r.withLineBytes(a) { out.append($0) } }
        case .env:
            break
        }
    }
}

/// Percent-decoding helpers.
package enum URLDecoding {
    /// Appends `path` with `%XX` escapes decoded (invalid escapes are copied as they are).
    package static func appendDecodedPath(_ path: UnsafeRawBufferPointer, into out: ByteBuffer) {
        var i = 0
        let n = path.count
        while i < n {
            let b = path[i]
            if b == UInt8(ascii: "%"), i + 2 < n, let h = hex(path[i + 1]), let l = hex(path[i + 2]) {
                out.append(byte: h << 4 | l)
                i += 3
            } else {
                out.append(byte: b)
                i += 1
            }
        }
    }

    @inline(__always) static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}

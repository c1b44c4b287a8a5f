import HTTPCore
import IOCore

/// How the request body goes to the upstream (RFC 9112 §6.1–6.2).
package enum RequestFraming: Equatable, Sendable {
    case none
    /// `Content-Length: 0` for POST/PUT/PATCH without a body (Go's transport does this).
    case emptyLength
    case length(Int64)
    case chunked
}

/// Builds the request Berth sends upstream, as Caddy's `prepareRequest` + Go's transport do
/// (caddy-behavior §12):
/// - the target is the (possibly rewritten) raw request target; Host is passed through;
/// - hop-by-hop fields and the names in Connection are removed (RFC 9110 §7.6.1); `Te:
///   trailers` survives; an upgrade request gets `Connection: Upgrade` + `Upgrade: <type>`;
/// - `X-Forwarded-For` is set to the client's IP, or appended to when the peer is a trusted
///   proxy; `X-Forwarded-Proto` and `X-Forwarded-Host` are set unless a trusted proxy sent
///   them; `Via: 1.x Berth` is appended (RFC 9110 §7.6.3);
/// - then the `header_up` operations run (so they can override all of the above).
package enum RequestHead {
    /// Fills `out` with the fields to send.
    package static func buildFields(
        _ r: HTTPRequest, _ c: ProxyConfiguration, upstream: UpstreamAddress, upgrade: [UInt8]?,
        into out: inout HTTPFields, scratch: ByteBuffer
    ) {
        out.removeAll()
        // Host first (Go writes it first).
        if let a = r.authorityRange {
            r.withLineBytes(a) { out.append(.host, value: $0) }
        } else {
            var hp = upstream.hostport
            hp.withUTF8 { out.append(.host, value: UnsafeRawBufferPointer($0)) }
        }
        let trusted = isTrusted(r, c)
        let teTrailers = HopByHop.copy(r.fields, into: &out) { t in
            switch t {
            case .host, .contentLength: return true
            case .xForwardedFor, .xForwardedProto, .xForwardedHost: return !trusted
            default: return false
            }
        }
        if teTrailers { out.append(.te, "trailers") }
        // A chunked body's announced trailers (RFC 9110 §6.6.2) go on with the body; Go's
        // transport writes `Trailer` from the request's trailer keys.
        if r.bodySource != nil, framing(r) == .chunked, let i = r.fields.firstIndex(.trailer) {
            r.fields.withField(i) { _, v in out.append(.trailer, value: v) }
        }
        if let up = upgrade {
            out.append(.connection, "Upgrade")
            up.withUnsafeBytes { out.append(.upgrade, value: $0) }
        }
        // X-Forwarded-For.
        if let remote = r.connection.remote, remote.family != AF_UNIX_FAMILY {
            scratch.clear()
            if trusted {
                var first = true
                for i in out.entries.indices where out.entries[i].token == .xForwardedFor {
                    out.withField(i) { _, v in
                        if !first { scratch.append(", ") }
                        scratch.append(v)
                        first = false
                    }
                }
                if !first { scratch.append(", ") }
                out.remove(.xForwardedFor)
            }
            remote.writeIP(into: scratch)
            out.append(.xForwardedFor, value: scratch.readable)
        }
        if !(trusted && out.contains(.xForwardedProto)) {
            out.remove(.xForwardedProto)
            out.append(.xForwardedProto, r.connection.isTLS ? "https" : "http")
        }
        if !(trusted && out.contains(.xForwardedHost)) {
            out.remove(.xForwardedHost)
            if let a = r.authorityRange { r.withLineBytes(a) { out.append(.xForwardedHost, value: $0) } }
        }
        // Via (RFC 9110 §7.6.3): the received protocol version and our pseudonym.
        scratch.clear()
        switch r.version {
        case .http1_0: scratch.append("1.0 ")
        case .http1_1: scratch.append("1.1 ")
        case .http2: scratch.append("2.0 ")
        case .http3: scratch.append("3.0 ")
        }
        scratch.append(string: c.viaName)
        out.append(.via, value: scratch.readable)
        for op in c.requestHeaderOps {
            op.apply(to: &out, request: r, upstream: upstream, scratch: scratch)
        }
    }

    /// Whether the client is a trusted proxy (`trusted_proxies`).
    package static func isTrusted(_ r: HTTPRequest, _ c: ProxyConfiguration) -> Bool {
        guard !c.trustedProxies.isEmpty, let remote = r.connection.remote else { return false }
        return c.trustedProxies.contains { $0.contains(remote) }
    }

    /// The framing for `r`'s body. An HTTP/2 or HTTP/3 request that announces trailers
    /// (`Trailer`, RFC 9110 §6.6.2) goes chunked even with a content-length: only the last
    /// chunk of an HTTP/1.1 body can carry them on (HTTP/1 requests with a length have none).
    package static func framing(_ r: HTTPRequest) -> RequestFraming {
        if r.bodySource != nil {
            if let n = r.contentLength, !r.hasStreamingBody, !announcesTrailersAfterLength(r) { return .length(n) }
            return .chunked
        }
        switch r.method {
        case .POST, .PUT, .PATCH: return .emptyLength
        default: return .none
        }
    }

    @inline(__always)
    static func announcesTrailersAfterLength(_ r: HTTPRequest) -> Bool {
        (r.version == .http2 || r.version == .http3) && r.fields.contains(.trailer)
    }

    /// Appends the request head to `out`: request line (RFC 9112 §3, always HTTP/1.1), the
    /// fields (CR/LF in values become SP, names that are not tokens are dropped), the framing
    /// field, the empty line.
    package static func encode(_ r: HTTPRequest, fields: HTTPFields, framing: RequestFraming, into out: ByteBuffer) {
        putRequestLine(r, into: out)
        fields.arena.withUnsafeBytes { ab in
            guard let base = ab.baseAddress else { return }
            for e in fields.entries {
                putField(UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: Int(e.nameLength)),
                         UnsafeRawBufferPointer(start: base + Int(e.valueStart), count: Int(e.valueLength)), into: out)
            }
        }
        putFramingAndEnd(framing, into: out)
    }

    /// A `forward_auth` subrequest's head: `GET <target> HTTP/1.1`, the fields, no body (Caddy
    /// rewrites the method to GET, which drops the body and its framing).
    static func encodeSubrequest(target: UnsafeRawBufferPointer, fields: HTTPFields, into out: ByteBuffer) {
        out.append("GET ")
        if target.isEmpty { out.append(byte: UInt8(ascii: "/")) } else { out.append(target) }
        out.append(" HTTP/1.1\r\n")
        fields.arena.withUnsafeBytes { ab in
            guard let base = ab.baseAddress else { return }
            for e in fields.entries {
                putField(UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: Int(e.nameLength)),
                         UnsafeRawBufferPointer(start: base + Int(e.valueStart), count: Int(e.valueLength)), into: out)
            }
        }
        putFramingAndEnd(.none, into: out)
    }

    /// `name: value` CRLF; a name that is not a token is dropped, CR, LF and NUL in the value
    /// become SP.
    @inline(__always)
    static func putField(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, into out: ByteBuffer) {
        guard let nb = name.baseAddress, name.count > 0, FieldBytes.allTchar(nb, name.count) else { return }
        out.append(name)
        out.append(": ")
        let mark = out.writerIndex
        out.append(value)
        UpstreamBytes.sanitizeValue(UnsafeMutableRawPointer(out.base + mark), out.writerIndex &- mark)
        out.append("\r\n")
    }

    @inline(__always)
    static func putField(_ token: HeaderToken, _ value: UnsafeRawBufferPointer, into out: ByteBuffer) {
        let n = token.canonicalName
        putField(UnsafeRawBufferPointer(start: n.utf8Start, count: n.utf8CodeUnitCount), value, into: out)
    }

    @inline(__always)
    static func putField(_ token: HeaderToken, _ value: StaticString, into out: ByteBuffer) {
        putField(token, UnsafeRawBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount), into: out)
    }

    /// The request line (RFC 9112 §3, always HTTP/1.1).
    @inline(__always)
    static func putRequestLine(_ r: HTTPRequest, into out: ByteBuffer) {
        r.withLineBytes(r.methodRange) { out.append($0) }
        out.append(byte: 0x20)
        if r.targetRange.isEmpty {
            out.append(byte: UInt8(ascii: "/"))
        } else {
            r.withLineBytes(r.targetRange) { out.append($0) }
        }
        out.append(" HTTP/1.1\r\n")
    }

    /// True when `encodeDirect` applies: no `header_up` and no `trusted_proxies` (whose
    /// `X-Forwarded-*` merging works on a field list).
    @inline(__always)
    package static func canEncodeDirectly(_ c: ProxyConfiguration) -> Bool {
        c.requestHeaderOps.isEmpty && c.trustedProxies.isEmpty
    }

    /// `buildFields` + `encode` in one pass, straight from the client's fields to `out`
    /// (the same bytes, without building the field list in between). Only when
    /// `canEncodeDirectly(c)`; `viaName` is `c.viaName`.
    static func encodeDirect(
        _ r: HTTPRequest, proxy: ReverseProxy, upstream: UpstreamHost, upgrade: [UInt8]?,
        framing: RequestFraming, into out: ByteBuffer
    ) {
        // The request line's bytes and the fields are taken once (each access to the
        // request's arrays is a retain and a release).
        let fields = r.fields
        let authority = r.authorityRange
        r.line.withUnsafeBytes { lb in
            out.append(UnsafeRawBufferPointer(rebasing: lb[r.methodRange]))
            out.append(byte: 0x20)
            let target = r.targetRange
            if target.isEmpty {
                out.append(byte: UInt8(ascii: "/"))
            } else {
                out.append(UnsafeRawBufferPointer(rebasing: lb[target]))
            }
            out.append(" HTTP/1.1\r\n")
            if let a = authority {
                putField(.host, UnsafeRawBufferPointer(rebasing: lb[a]), into: out)
            } else {
                var hp = upstream.address.hostport
                hp.withUTF8 { putField(.host, UnsafeRawBufferPointer($0), into: out) }
            }
        }
        let teTrailers = HopByHop.forEachForwarded(fields, skipping: { t in
            switch t {
            case .host, .contentLength, .xForwardedFor, .xForwardedProto, .xForwardedHost: return true
            default: return false
            }
        }) { name, value, _ in
            putField(name, value, into: out)
        }
        if teTrailers { putField(.te, "trailers", into: out) }
        if framing == .chunked, let i = fields.firstIndex(.trailer) {
            fields.withField(i) { _, v in putField(.trailer, v, into: out) }
        }
        if let up = upgrade {
            putField(.connection, "Upgrade", into: out)
            up.withUnsafeBytes { putField(.upgrade, $0, into: out) }
        }
        if let remote = r.connection.remote, remote.family != AF_UNIX_FAMILY {
            // An IP address needs no sanitising.
            out.append("X-Forwarded-For: ")
            remote.writeIP(into: out)
            out.append("\r\n")
        }
        putField(.xForwardedProto, r.connection.isTLS ? "https" : "http", into: out)
        if let a = authority { r.withLineBytes(a) { putField(.xForwardedHost, $0, into: out) } }
        out.append("Via: ")
        switch r.version {
        case .http1_0: out.append("1.0 ")
        case .http1_1: out.append("1.1 ")
        case .http2: out.append("2.0 ")
        case .http3: out.append("3.0 ")
        }
        out.append(proxy.viaNameLine)
        putFramingAndEnd(framing, into: out)
    }

    @inline(__always)
    static func putFramingAndEnd(_ framing: RequestFraming, into out: ByteBuffer) {
        switch framing {
        case .none: break
        case .emptyLength: out.append("Content-Length: 0\r\n")
        case .length(let n):
            out.append("Content-Length: ")
            out.appendDecimal(Int(n))
            out.append("\r\n")
        case .chunked: out.append("Transfer-Encoding: chunked\r\n")
        }
        out.append("\r\n")
    }
}

private let AF_UNIX_FAMILY: Int32 = 1

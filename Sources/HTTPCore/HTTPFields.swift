/// Header names Berth looks at, interned once when a field is parsed so lookups compare a byte,
/// not a string. `other` covers every name not listed.
public enum HeaderToken: UInt8, Sendable {
    case other = 0
    case host, contentLength, transferEncoding, connection, expect, upgrade, te, trailer
    case keepAlive, proxyConnection, contentType, acceptEncoding, userAgent, accept
    case cookie, setCookie, authorization, proxyAuthorization, proxyAuthenticate, date
    case server, location, contentEncoding, vary, etag, lastModified, ifNoneMatch
    case ifModifiedSince, ifMatch, ifUnmodifiedSince, ifRange, range, acceptRanges
    case contentRange, cacheControl, altSvc, xForwardedFor, xForwardedProto, xForwardedHost
    case via, forwarded, http2Settings, origin

    /// Compares the raw bytes: without this, `==` resolves to the standard library's generic
    /// `RawRepresentable` one, which calls through the Equatable witness on every comparison.
    /// (`public`: only public `@inlinable` bodies are inlined into other modules.)
    @inlinable @inline(__always)
    public static func == (a: HeaderToken, b: HeaderToken) -> Bool { a.rawValue == b.rawValue }

    /// Canonical (Go-style) spelling, used when Berth itself emits the name.
    package var canonicalName: StaticString {
        switch self {
        case .other: return ""
        case .host: return "Host"
        case .contentLength: return "Content-Length"
        case .transferEncoding: return "Transfer-Encoding"
        case .connection: return "Connection"
        case .expect: return "Expect"
        case .upgrade: return "Upgrade"
        case .te: return "Te"
        case .trailer: return "Trailer"
        case .keepAlive: return "Keep-Alive"
        case .proxyConnection: return "Proxy-Connection"
        case .contentType: return "Content-Type"
        case .acceptEncoding: return "Accept-Encoding"
        case .userAgent: return "User-Agent"
        case .accept: return "Accept"
        case .cookie: return "Cookie"
        case .setCookie: return "Set-Cookie"
        case .authorization: return "Authorization"
        case .proxyAuthorization: return "Proxy-Authorization"
        case .proxyAuthenticate: return "Proxy-Authenticate"
        case .date: return "Date"
        case .server: return "Server"
        case .location: return "Location"
        case .contentEncoding: return "Content-Encoding"
        case .vary: return "Vary"
        case .etag: return "Etag"
        case .lastModified: return "Last-Modified"
        case .ifNoneMatch: return "If-None-Match"
        case .ifModifiedSince: return "If-Modified-Since"
        case .ifMatch: return "If-Match"
        case .ifUnmodifiedSince: return "If-Unmodified-Since"
        case .ifRange: return "If-Range"
        case .range: return "Range"
        case .acceptRanges: return "Accept-Ranges"
        case .contentRange: return "Content-Range"
        case .cacheControl: return "Cache-Control"
        case .altSvc: return "Alt-Svc"
        case .xForwardedFor: return "X-Forwarded-For"
        case .xForwardedProto: return "X-Forwarded-Proto"
        case .xForwardedHost: return "X-Forwarded-Host"
        case .via: return "Via"
        case .forwarded: return "Forwarded"
        case .http2Settings: return "Http2-Settings"
        case .origin: return "Origin"
        }
    }

    /// Classifies a field name (ASCII case-insensitive) without allocating.
    package static func classify(_ name: UnsafeRawBufferPointer) -> HeaderToken {
        let n = name.count
        guard n >= 2, n <= 19 else { return .other }
        // Dispatch on length and lower-cased first byte, then compare the whole name.
        let c0 = name[0] | 0x20
        // `s` is lower-case; only ASCII letters are folded (OR-ing 0x20 into any byte would
        // also turn CR into `-`).
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            guard s.utf8CodeUnitCount == n else { return false }
            let p = s.utf8Start
            for i in 0..<n {
                var c = name[i]
                if c >= 0x41 && c <= 0x5A { c |= 0x20 }
                if c != p[i] { return false }
            }
            return true
        }
        switch n {
        case 2: return eq("te") ? .te : .other
        case 3: return c0 == 0x76 && eq("via") ? .via : .other
        case 4:
            if c0 == 0x68 { return eq("host") ? .host : .other }
            if c0 == 0x64 { return eq("date") ? .date : .other }
            if c0 == 0x76 { return eq("vary") ? .vary : .other }
            if c0 == 0x65 { return eq("etag") ? .etag : .other }
            return .other
        case 5: return c0 == 0x72 ? (eq("range") ? .range : .other) : .other
        case 6:
            switch c0 {
            case 0x65: return eq("expect") ? .expect : .other
            case 0x61: return eq("accept") ? .accept : .other
            case 0x63: return eq("cookie") ? .cookie : .other
            case 0x73: return eq("server") ? .server : .other
            case 0x6F: return eq("origin") ? .origin : .other
            default: return .other
            }
        case 7:
            switch c0 {
            case 0x75: return eq("upgrade") ? .upgrade : .other
            case 0x74: return eq("trailer") ? .trailer : .other
            case 0x61: return eq("alt-svc") ? .altSvc : .other
            default: return .other
            }
        case 8:
            switch c0 {
            case 0x6C: return eq("location") ? .location : .other
            case 0x69: return eq("if-match") ? .ifMatch : (eq("if-range") ? .ifRange : .other)
            default: return .other
            }
        case 9: return c0 == 0x66 ? (eq("forwarded") ? .forwarded : .other) : .other
        case 10:
            switch c0 {
            case 0x63: return eq("connection") ? .connection : .other
            case 0x6B: return eq("keep-alive") ? .keepAlive : .other
            case 0x75: return eq("user-agent") ? .userAgent : .other
            case 0x73: return eq("set-cookie") ? .setCookie : .other
            default: return .other
            }
        case 12: return c0 == 0x63 ? (eq("content-type") ? .contentType : .other) : .other
        case 13:
            switch c0 {
            case 0x61: return eq("authorization") ? .authorization : (eq("accept-ranges") ? .acceptRanges : .other)
            case 0x6C: return eq("last-modified") ? .lastModified : .other
            case 0x69: return eq("if-none-match") ? .ifNoneMatch : .other
            case 0x63: return eq("content-range") ? .contentRange : (eq("cache-control") ? .cacheControl : .other)
            default: return .other
            }
        case 14:
            if c0 == 0x63 { return eq("content-length") ? .contentLength : .other }
            if c0 == 0x68 { return eq("http2-settings") ? .http2Settings : .other }
            return .other
        case 15:
            if c0 == 0x61 { return eq("accept-encoding") ? .acceptEncoding : .other }
            if c0 == 0x78 { return eq("x-forwarded-for") ? .xForwardedFor : .other }
            return .other
        case 16:
            switch c0 {
            case 0x70: return eq("proxy-connection") ? .proxyConnection : .other
            case 0x63: return eq("content-encoding") ? .contentEncoding : .other
            case 0x78: return eq("x-forwarded-host") ? .xForwardedHost : .other
            default: return .other
            }
        case 17:
            if c0 == 0x74 { return eq("transfer-encoding") ? .transferEncoding : .other }
            if c0 == 0x69 { return eq("if-modified-since") ? .ifModifiedSince : .other }
            if c0 == 0x78 { return eq("x-forwarded-proto") ? .xForwardedProto : .other }
            return .other
        case 18: return c0 == 0x70 ? (eq("proxy-authenticate") ? .proxyAuthenticate : .other) : .other
        case 19:
            if c0 == 0x70 { return eq("proxy-authorization") ? .proxyAuthorization : .other }
            if c0 == 0x69 { return eq("if-unmodified-since") ? .ifUnmodifiedSince : .other }
            return .other
        default: return .other
        }
    }
}

/// One header field: offsets of its name and value in the owning `HTTPFields` arena.
///
/// A field with an empty name is never written; with the `.server` or `.date` token it is a
/// suppression marker: the protocol then omits the Server/Date field it would add (how
/// `header -Server` removes Berth's own Server header; HTTP/1 and HTTP/2 encoders honour it).
public struct HTTPField: Sendable {
    public var nameStart: Int32
    public var nameLength: Int32
    public var valueStart: Int32
    public var valueLength: Int32
    public var token: HeaderToken
}

/// An ordered list of header fields whose bytes live in one reusable arena, so filling and
/// clearing it per request allocates nothing once its capacity has grown.
public struct HTTPFields: Sendable {
    /// Bytes of every name and value, back to back.
    public private(set) var arena: [UInt8] = []
    /// The fields, in order.
    public private(set) var entries: [HTTPField] = []
    /// Bit `token.rawValue` is set once a field with that token was appended (since the last
    /// `removeAll`); removals leave it set. A clear bit means the token is certainly absent,
    /// so per-request checks for rare fields (Connection, Expect, TE, Trailer…) cost one AND
    /// instead of a scan. (`public`: only public `@inlinable` bodies inline across modules.)
    public private(set) var tokenMask: UInt64 = 0

    /// False when no field with `token` is present (true: maybe; look with `firstIndex`).
    @inlinable @inline(__always)
    public func mayContain(_ token: HeaderToken) -> Bool {
        tokenMask & (1 &<< UInt64(token.rawValue)) != 0
    }

    @inline(__always)
    private mutating func noteToken(_ token: HeaderToken) {
        tokenMask |= 1 &<< UInt64(token.rawValue)
    }

    package init() {
        arena.reserveCapacity(512)
        entries.reserveCapacity(16)
    }

    /// Fields that allocate nothing until the first append (rarely used sets such as
    /// trailers).
    package static func unreserved() -> HTTPFields { HTTPFields(reserving: false) }

    private init(reserving: Bool) {
        if reserving {
            arena.reserveCapacity(512)
            entries.reserveCapacity(16)
        }
    }

    /// Number of fields.
    @inlinable @inline(__always) public var count: Int { entries.count }

    /// Total bytes of names and values (used for header-size limits).
    @inlinable @inline(__always) public var byteCount: Int { arena.count }

    /// Removes every field, keeping storage.
    @inline(__always) package mutating func removeAll() {
        arena.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
        tokenMask = 0
    }

    /// Appends raw bytes with one memcpy: `Array.append(contentsOf:)` with an
    /// `UnsafeRawBufferPointer` copies byte by byte (its `_copyContents` is the generic one),
    /// a typed `UnsafeBufferPointer<UInt8>` is copied with memcpy.
    @inline(__always)
    package static func appendBytes(_ a: inout [UInt8], _ b: UnsafeRawBufferPointer) {
        guard let base = b.baseAddress, b.count > 0 else { return }
        a.append(contentsOf: UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: b.count))
    }

    /// Appends a field from raw bytes.
    package mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, token: HeaderToken) {
        let ns = Int32(arena.count)
        HTTPFields.appendBytes(&arena, name)
        let vs = Int32(arena.count)
        HTTPFields.appendBytes(&arena, value)
        entries.append(HTTPField(nameStart: ns, nameLength: Int32(name.count), valueStart: vs,
                                 valueLength: Int32(value.count), token: token))
        noteToken(token)
    }

    /// Appends a field whose name and value lie in one span of a parsed line: the name from
    /// its start (`nameLength` bytes), the value from `valueOffset` to its end. One copy
    /// instead of two; the separator bytes between stay in the arena unused.
    package mutating func append(span: UnsafeRawBufferPointer, nameLength: Int, valueOffset: Int, token: HeaderToken) {
        precondition(nameLength <= valueOffset && valueOffset <= span.count)
        let s = Int32(arena.count)
        HTTPFields.appendBytes(&arena, span)
        entries.append(HTTPField(nameStart: s, nameLength: Int32(nameLength), valueStart: s + Int32(valueOffset),
                                 valueLength: Int32(span.count - valueOffset), token: token))
        noteToken(token)
    }

    /// Appends a field with a well-known name and raw value bytes.
    package mutating func append(_ token: HeaderToken, value: UnsafeRawBufferPointer) {
        let name = token.canonicalName
        append(name: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), value: value, token: token)
    }

    /// Appends a field with a well-known name and a static value.
    package mutating func append(_ token: HeaderToken, _ value: StaticString) {
        append(token, value: UnsafeRawBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount))
    }

    /// Appends a field from strings (cold paths).
    package mutating func append(name: String, value: String) {
        var n = name, v = value
        n.withUTF8 { nb in
            v.withUTF8 { vb in
                let rn = UnsafeRawBufferPointer(nb)
                append(name: rn, value: UnsafeRawBufferPointer(vb), token: HeaderToken.classify(rn))
            }
        }
    }

    /// Removes every field with this token (the arena keeps the dead bytes until `removeAll`).
    package mutating func remove(_ token: HeaderToken) {
        entries.removeAll { $0.token == token }
    }

    /// Removes every field whose name equals `name`, ASCII case-insensitively.
    package mutating func remove(name: String) {
        var name = name
        let a = arena
        name.withUTF8 { nb in
            let nr = UnsafeRawBufferPointer(nb)
            a.withUnsafeBytes { ab in
                entries.removeAll { HTTPFields.equalsIgnoringCase(ab, $0.nameStart, $0.nameLength, nr) }
            }
        }
    }

    /// Removes the field at `index` (its bytes stay in the arena until `removeAll`).
    package mutating func remove(at index: Int) {
        entries.remove(at: index)
    }

    /// Replaces the value of the field at `index`; `value` must not point into this arena.
    package mutating func replaceValue(at index: Int, with value: UnsafeRawBufferPointer) {
        let vs = Int32(arena.count)
        HTTPFields.appendBytes(&arena, value)
        entries[index].valueStart = vs
        entries[index].valueLength = Int32(value.count)
    }

    /// Forgets the fields after the first `count` and the arena bytes after the first
    /// `byteCount` (values saved from `count` and `byteCount` earlier; later appends only).
    package mutating func truncate(count: Int, byteCount: Int) {
        if entries.count > count { entries.removeSubrange(count...) }
        if arena.count > byteCount { arena.removeSubrange(byteCount...) }
    }

    /// Removes the fields at `start` and after for which `shouldRemove` returns true, keeping
    /// the order of the others; `shouldRemove` gets the field and the arena bytes.
    package mutating func removeAll(
        from start: Int, where shouldRemove: (HTTPField, UnsafeRawBufferPointer) -> Bool
    ) {
        let n = entries.count
        guard start < n else { return }
        let a = arena
        var w = start
        a.withUnsafeBytes { ab in
            for r in start..<n {
                let e = entries[r]
                if shouldRemove(e, ab) { continue }
                if w != r { entries[w] = e }
                w += 1
            }
        }
        if w < n { entries.removeSubrange(w...) }
    }

    /// Appends a field with a well-known name whose value is that of `field`, an entry of
    /// these fields (its bytes are shared, not copied: the arena only grows).
    package mutating func append(_ token: HeaderToken, valueOf field: HTTPField) {
        let name = token.canonicalName
        let ns = Int32(arena.count)
        HTTPFields.appendBytes(&arena, UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        entries.append(HTTPField(nameStart: ns, nameLength: Int32(name.utf8CodeUnitCount), valueStart: field.valueStart,
                                 valueLength: field.valueLength, token: token))
        noteToken(token)
    }

    /// Index of the first field with this token.
    @inlinable @inline(__always) public func firstIndex(_ token: HeaderToken) -> Int? {
        for i in entries.indices where entries[i].token == token { return i }
        return nil
    }

    /// True when a field with this token exists.
    @inlinable @inline(__always) public func contains(_ token: HeaderToken) -> Bool { firstIndex(token) != nil }

    /// Calls `body` with the name and value bytes of field `i`.
    @inlinable @inline(__always)
    public func withField<R>(_ i: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let e = entries[i]
        return try arena.withUnsafeBytes { ab in
            try body(UnsafeRawBufferPointer(rebasing: ab[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)]),
                     UnsafeRawBufferPointer(rebasing: ab[Int(e.valueStart)..<Int(e.valueStart + e.valueLength)]))
        }
    }

    /// Calls `body` with the value of the first field with this token, or returns nil.
    @inlinable @inline(__always)
    public func withValue<R>(_ token: HeaderToken, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard let i = firstIndex(token) else { return nil }
        return try withField(i) { _, v in try body(v) }
    }

    /// The value of the first field with this token as a String (allocates; cold paths).
    package func value(_ token: HeaderToken) -> String? {
        withValue(token) { String(decoding: $0, as: UTF8.self) }
    }

    /// The value of the first field named `name` (ASCII case-insensitive) as a String.
    package func value(named name: String) -> String? {
        var name = name
        return name.withUTF8 { nb -> String? in
            let nr = UnsafeRawBufferPointer(nb)
            for i in entries.indices {
                let e = entries[i]
                let hit = arena.withUnsafeBytes { HTTPFields.equalsIgnoringCase($0, e.nameStart, e.nameLength, nr) }
                if hit { return withField(i) { _, v in String(decoding: v, as: UTF8.self) } }
            }
            return nil
        }
    }

    /// Name/value pairs as Strings (tests, logs on cold paths).
    package var pairs: [(String, String)] {
        entries.indices.map { i in
            withField(i) { n, v in (String(decoding: n, as: UTF8.self), String(decoding: v, as: UTF8.self)) }
        }
    }

    @inline(__always)
    static func equalsIgnoringCase(_ arena: UnsafeRawBufferPointer, _ start: Int32, _ len: Int32, _ other: UnsafeRawBufferPointer) -> Bool {
        guard Int(len) == other.count else { return false }
        let s = Int(start)
        for i in 0..<other.count {
            var a = arena[s + i], b = other[i]
            if a >= 0x41 && a <= 0x5A { a |= 0x20 }
            if b >= 0x41 && b <= 0x5A { b |= 0x20 }
            if a != b { return false }
        }
        return true
    }
}

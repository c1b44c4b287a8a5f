#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// Request methods Berth distinguishes; anything else is `.other` with its bytes kept.
public enum HTTPMethod: UInt8, Sendable {
    case GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, other

    /// Compares the raw bytes (the generic `RawRepresentable` `==` goes through witnesses;
    /// `public` so that other modules inline it).
    @inlinable @inline(__always)
    public static func == (a: HTTPMethod, b: HTTPMethod) -> Bool { a.rawValue == b.rawValue }

    /// Classifies method bytes (case-sensitive, as RFC 9110 §9.1 says).
    package static func classify(_ m: UnsafeRawBufferPointer) -> HTTPMethod {
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            guard s.utf8CodeUnitCount == m.count else { return false }
            return memcmp(m.baseAddress!, s.utf8Start, m.count) == 0
        }
        switch m.count {
        case 3: return eq("GET") ? .GET : (eq("PUT") ? .PUT : .other)
        case 4: return eq("HEAD") ? .HEAD : (eq("POST") ? .POST : .other)
        case 5: return eq("PATCH") ? .PATCH : (eq("TRACE") ? .TRACE : .other)
        case 6: return eq("DELETE") ? .DELETE : .other
        case 7: return eq("OPTIONS") ? .OPTIONS : (eq("CONNECT") ? .CONNECT : .other)
        default: return .other
        }
    }
}

/// The wire protocol a request arrived over.
package enum HTTPVersion: UInt8, Sendable {
    case http1_0, http1_1, http2, http3

    /// The `proto` string Caddy logs (`HTTP/1.1`, `HTTP/2.0`, `HTTP/3.0`).
    package var protoString: StaticString {
        switch self {
        case .http1_0: return "HTTP/1.0"
        case .http1_1: return "HTTP/1.1"
        case .http2: return "HTTP/2.0"
        case .http3: return "HTTP/3.0"
        }
    }
}

/// Where a request came from and how: the transport-level facts handlers may need.
package struct ConnectionInfo: Sendable {
    /// The peer; preserved through socket activation.
    package var remote: SocketAddress?
    /// Our local address (set where it is known for free: HTTP/3).
    package var local: SocketAddress?
    /// The client's stream socket (HTTP/1 and HTTP/2), -1 otherwise: a handler that needs the
    /// local address (FastCGI's SERVER_ADDR) asks `getsockname` for it; no connection pays
    /// that syscall up front.
    package var socket: Int32 = -1
    /// True on TLS.
    package var isTLS: Bool = false
    /// Server name from TLS SNI, if any.
    package var serverName: String? = nil
    /// Negotiated TLS version (wire value, e.g. 772 for TLS 1.3), 0 without TLS.
    package var tlsVersion: UInt16 = 0
    /// Negotiated cipher suite (IANA value), 0 without TLS.
    package var tlsCipherSuite: UInt16 = 0
    /// True when the TLS session was resumed.
    package var tlsResumed: Bool = false
    /// ALPN protocol (`h2`, `http/1.1`), if any.
    package var tlsProtocol: String? = nil
    /// The client's certificate, when a `client_auth` policy asked for one and it was sent.
    package var tlsClientCertificate: ClientCertificateFields? = nil
    /// The server enforces Caddy's strict SNI/Host match (on when a `client_auth` policy
    /// exists on the listener): a request whose host differs from the SNI gets 421.
    package var strictSNIHost: Bool = false

    package init(remote: SocketAddress? = nil, local: SocketAddress? = nil, isTLS: Bool = false) {
        self.remote = remote
        self.local = local
        self.isTLS = isTLS
    }
}

/// A client certificate's fields as Caddy's `{http.request.tls.client.*}` placeholders print
/// them; one shared instance per connection.
package final class ClientCertificateFields: Sendable {
    package let subject: String
    package let issuer: String
    package let serial: String
    package let fingerprint: String
    package let pem: String

    package init(subject: String, issuer: String, serial: String, fingerprint: String, pem: String) {
        self.subject = subject
        self.issuer = issuer
        self.serial = serial
        self.fingerprint = fingerprint
        self.pem = pem
    }
}

/// A protocol-neutral request head. One instance is owned by a connection (or stream) and
/// reused for every request on it: all its storage keeps its capacity between requests.
///
/// The request line pieces (method, target, authority) live in `line`; header fields in
/// `fields`. Ranges index into `line`.
public final class HTTPRequest {
    /// Bytes of the method, target and authority.
    public var line: [UInt8] = []
    package var methodRange: Range<Int> = 0..<0
    /// Raw request target as sent (origin-form path+query; for absolute-form, the path+query part).
    package var targetRange: Range<Int> = 0..<0
    /// Path part of the target (still percent-encoded).
    package var pathRange: Range<Int> = 0..<0
    /// Query part without `?`, or nil when the target has no `?`.
    package var queryRange: Range<Int>? = nil
    /// Authority: the Host header for HTTP/1, `:authority` for h2/h3, or the absolute-form host.
    package var authorityRange: Range<Int>? = nil

    package var method: HTTPMethod = .GET
    package var version: HTTPVersion = .http1_1
    /// Header fields (without Host for HTTP/1; Host is in `authorityRange`).
    package var fields = HTTPFields()
    /// Declared body length, or nil when unknown (chunked / stream) or absent.
    package var contentLength: Int64? = nil
    /// True when the body is chunked (HTTP/1) or a stream without length (h2/h3).
    package var hasStreamingBody: Bool = false
    /// Transport facts.
    package var connection = ConnectionInfo()
    /// Monotonic time the request head was complete.
    package var startNanos: UInt64 = 0
    /// Bytes of request body read so far (for the access log).
    package var bodyBytesRead: Int64 = 0
    /// The request body, for handlers that read it (nil when the request has no body). Set by
    /// the protocol connection, which owns and outlives the request.
    package unowned(unsafe) var bodySource: (any RequestBodySource)? = nil
    /// The most body bytes a handler that reads the body may take (`request_body max_size`,
    /// Caddy's `http.MaxBytesReader`); `Int64.max` when unlimited. A reader that sees more
    /// answers 413 (`reverse_proxy`); a handler that never reads the body is not affected.
    package var bodyLimit: Int64 = .max
    /// Per-request variables (Caddy's `vars`, regexp captures, file-matcher results, the
    /// handler error): written by handlers and matchers, read by placeholders. Storage is kept
    /// between requests. See `RequestVars`.
    package var vars = RequestVars()
    /// The target before the first rewrite (`{http.request.orig_uri}`); nil while the request
    /// has not been rewritten. Its bytes stay in `line` (a rewrite appends the new target).
    package var originalTargetRange: Range<Int>? = nil
    /// The method before a `method` rewrite (`{http.request.orig_method}`); nil when unchanged.
    package var originalMethodRange: Range<Int>? = nil
    /// Scratch space for matchers (decoded and cleaned paths): reused, cleared by whoever
    /// uses it, never holding anything across calls.
    package let scratch = ByteBuffer(capacity: 256)
    /// The authenticated user (`basic_auth`): `{http.auth.user.id}` and the access log's
    /// `user_id`.
    package var authUser: String? = nil
    /// Set (to empty) by a handler that returns `.pending` and wants the route walk to go on
    /// after it later (`basic_auth` verifying a password off the loop): each route list the
    /// `.pending` passes through on its way up records where it stopped, innermost first.
    /// `PendingErrorRouter.resumeRouting` continues from there.
    package var routeSuspension: [RouteFrame]? = nil
    /// True once a handler changed the header fields or the Host (`request_header`): the
    /// head as received is then in `originalFields` / `originalAuthorityRange`, which the
    /// access log prints (Caddy logs a clone taken before the handlers run).
    package private(set) var fieldsChanged = false
    package private(set) var originalFields = HTTPFields.unreserved()
    package private(set) var originalAuthorityRange: Range<Int>? = nil
    /// `log_skip` (Caddy's `log_skip` variable set to true): no access-log entry.
    package var logSkip = false
    /// `log_name` (Caddy's `access_logger_names` variable): the access loggers for this
    /// request instead of the host's (`""` is `http.log.access`).
    package var accessLoggerNames: [String]? = nil
    /// Extra access-log fields (`log_append`).
    package var logFields = RequestLogFields()
    /// Placeholders defined during this request (`map`); empty (no storage) otherwise.
    package var placeholderProviders: [any PlaceholderProvider] = []

    package init() {
        line.reserveCapacity(256)
    }

    /// Resets for the next request, keeping storage.
    package func reset() {
        line.removeAll(keepingCapacity: true)
        methodRange = 0..<0
        targetRange = 0..<0
        pathRange = 0..<0
        queryRange = nil
        authorityRange = nil
        method = .GET
        version = .http1_1
        fields.removeAll()
        contentLength = nil
        hasStreamingBody = false
        startNanos = 0
        bodyBytesRead = 0
        bodyLimit = .max
        if !vars.isEmpty { vars.removeAll() }
        originalTargetRange = nil
        originalMethodRange = nil
        authUser = nil
        routeSuspension = nil
        logSkip = false
        if accessLoggerNames != nil { accessLoggerNames = nil }
        if !logFields.isEmpty { logFields.removeAll() }
        if !placeholderProviders.isEmpty { placeholderProviders.removeAll(keepingCapacity: true) }
        if fieldsChanged {
            fieldsChanged = false
            originalFields.removeAll()
            originalAuthorityRange = nil
        }
    }

    /// Keeps the fields and Host as received before a handler first changes them (copied
    /// into storage kept between requests).
    package func preserveOriginalFields() {
        guard !fieldsChanged else { return }
        fieldsChanged = true
        originalAuthorityRange = authorityRange
        originalFields.removeAll()
        for i in 0..<fields.count {
            let token = fields.entries[i].token
            fields.withField(i) { n, v in originalFields.append(name: n, value: v, token: token) }
        }
    }

    /// Appends bytes to `line` and returns their range.
    @inline(__always)
    package func appendLine(_ bytes: UnsafeRawBufferPointer) -> Range<Int> {
        let s = line.count
        HTTPFields.appendBytes(&line, bytes)
        return s..<line.count
    }

    /// Calls `body` with the bytes of `range` in `line`.
    @inlinable @inline(__always)
    public func withLineBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try line.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    /// Host without port, original case (Caddy's `{host}`); empty when there is no authority.
    package func withHost<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        guard let r = authorityRange else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try withLineBytes(r) { a in try body(HTTPRequest.stripPort(a)) }
    }

    /// Strips a `:port` suffix from an authority; keeps `[v6]` brackets only when no port was given,
    /// as Go's `net.SplitHostPort` fallback does (Caddy's `{host}`).
    package static func stripPort(_ a: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let n = a.count
        guard n > 0 else { return a }
        if a[0] == UInt8(ascii: "[") {
            // [v6]:port -> v6 ; [v6] -> [v6]
            var close = -1
            for i in 0..<n where a[i] == UInt8(ascii: "]") { close = i; break }
            if close > 0, close + 1 < n, a[close + 1] == UInt8(ascii: ":") {
                return UnsafeRawBufferPointer(rebasing: a[1..<close])
            }
            return a
        }
        var colon = -1
        var colons = 0
        for i in 0..<n where a[i] == UInt8(ascii: ":") { colon = i; colons += 1 }
        if colons == 1 { return UnsafeRawBufferPointer(rebasing: a[0..<colon]) }
        return a
    }

    /// Method as String (cold paths).
    package var methodString: String { withLineBytes(methodRange) { String(decoding: $0, as: UTF8.self) } }
    /// Target as String (cold paths).
    package var targetString: String { withLineBytes(targetRange) { String(decoding: $0, as: UTF8.self) } }
    /// Path as String (cold paths).
    package var pathString: String { withLineBytes(pathRange) { String(decoding: $0, as: UTF8.self) } }
    /// Host (no port) as String (cold paths).
    package var hostString: String { withHost { String(decoding: $0, as: UTF8.self) } }
}

/// One level of a suspended route walk: the list (a `RouteList`, typed loosely because
/// HTTPCore does not know it), the route and handler index where it stopped, and the route
/// groups already satisfied.
package struct RouteFrame {
    package let list: AnyObject
    package let route: Int
    package let handler: Int
    package let satisfied: UInt64
    package init(list: AnyObject, route: Int, handler: Int, satisfied: UInt64) {
        self.list = list
        self.route = route
        self.handler = handler
        self.satisfied = satisfied
    }
}

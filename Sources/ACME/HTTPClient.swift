#if canImport(Glibc)
import Glibc
#endif
import IOCore
import TLS

/// A response from the ACME server.
package struct HTTPClientResponse: Sendable {
    /// Status code.
    package var status: Int
    /// Header fields, names lower-cased, in order.
    package var headers: [(name: String, value: String)]
    /// The whole body.
    package var body: [UInt8]

    package init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of `name` (case-insensitive).
    package func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.name == n }?.value
    }

    /// Every value of `name` (e.g. several `Link` fields).
    package func headers(_ name: String) -> [String] {
        let n = name.lowercased()
        return headers.filter { $0.name == n }.map(\.value)
    }
}

/// Anything that can carry ACME's HTTP exchanges: the real client below, or a fake in tests.
package protocol ACMETransport: Sendable {
    /// Performs one exchange; throws `ACMEError.transport` when no response arrived.
    func perform(method: String, url: String, headers: [(String, String)], body: [UInt8]?) throws(ACMEError)
        -> HTTPClientResponse
}

/// A small blocking HTTP/1.1 client over TLS (or plain TCP for `http://` URLs) for the ACME
/// background thread — never on an event loop. One connection per request (`Connection:
/// close`): an issuance makes a dozen requests, minutes or months apart, so pooling would buy
/// nothing. Every step is bounded by `timeoutMilliseconds`.
package final class ACMEHTTPClient: ACMETransport, @unchecked Sendable {
    /// Trust anchors for the CA's HTTPS certificate (`acme_ca_root`, `trusted_roots`).
    package let trustRoots: TLSTrustRoots
    /// Connect, handshake, and each read/write wait at most this long.
    package let timeoutMilliseconds: Int
    /// Sent as `User-Agent` (RFC 8555 §6.1: clients MUST send one).
    package let userAgent: String
    /// Largest response body accepted (certificate chains are a few KiB).
    package let maximumBodyBytes = 1 << 20
    private let context: TLSContext

    package init(trustRoots: TLSTrustRoots = .system, timeoutMilliseconds: Int = 30_000, userAgent: String = "Berth ACME")
        throws(ACMEError)
    {
        self.trustRoots = trustRoots
        self.timeoutMilliseconds = timeoutMilliseconds
        self.userAgent = userAgent
        do {
            context = try TLSContext(client: TLSClientConfiguration(trustRoots: trustRoots, applicationProtocols: [.http11]))
        } catch {
            throw ACMEError.configuration("ACME CA trust roots: \(error)")
        }
    }

    package func perform(method: String, url: String, headers: [(String, String)], body: [UInt8]?) throws(ACMEError)
        -> HTTPClientResponse
    {
        guard let u = URLParts(url) else { throw .transport("invalid URL \(url)") }
        let deadline = Clock.monotonicNanos() + UInt64(timeoutMilliseconds) * 1_000_000
        let conn = try HTTPClientConnection.open(u, context: u.secure ? context : nil, deadline: deadline)
        var head = "\(method) \(u.pathAndQuery) HTTP/1.1\r\nHost: \(u.hostHeader)\r\nUser-Agent: \(userAgent)\r\n"
        head += "Connection: close\r\n"
        for (n, v) in headers { head += "\(n): \(v)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try conn.send(Array(head.utf8) + (body ?? []), deadline: deadline)
        return try conn.readResponse(noBody: method == "HEAD", limit: maximumBodyBytes, deadline: deadline, url: url)
    }
}

/// The parts of an `http(s)://host[:port]/path?query` URL.
package struct URLParts: Sendable, Equatable {
    package var secure: Bool
    package var host: String
    package var port: Int
    package var pathAndQuery: String

    package init?(_ url: String) {
        let lower = url.lowercased()
        var rest: Substring
        if lower.hasPrefix("https://") {
            secure = true
            rest = url.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            secure = false
            rest = url.dropFirst(7)
        } else {
            return nil
        }
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = rest[rest.startIndex..<slash]
        rest = rest[slash...]
        pathAndQuery = rest.isEmpty ? "/" : (rest.hasPrefix("?") ? "/" + rest : String(rest))
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        port = secure ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            } else if !after.isEmpty {
                return nil
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[authority.startIndex..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            host = String(authority)
        }
        if host.isEmpty { return nil }
    }

    /// `host[:port]` for the Host field, the port only when not the scheme's default.
    package var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? h : "\(h):\(port)"
    }
}

/// One client connection: a connected non-blocking socket (owned, closed in `deinit`) and,
/// for https, a `TLSConnection` driven by hand with `poll` waits.
final class HTTPClientConnection {
    let fd: Int32
    private(set) var tls: TLSConnection?
    let cipherIn = ByteBuffer(capacity: 16 * 1024 + 512)
    let cipherOut = ByteBuffer(capacity: 4096)
    let plain = ByteBuffer(capacity: 16 * 1024)
    var eof = false

    /// Takes ownership of `fd`.
    init(owned fd: Int32) { self.fd = fd }
    deinit { Glibc.close(fd) }

    static func open(_ u: URLParts, context: TLSContext?, deadline: UInt64) throws(ACMEError) -> HTTPClientConnection {
        let conn = HTTPClientConnection(owned: try connect(host: u.host, port: u.port, deadline: deadline))
        guard let context else { return conn }
        do {
            conn.tls = try TLSConnection(client: context, input: conn.cipherIn, output: conn.cipherOut, serverName: u.host)
        } catch {
            throw .transport("TLS to \(u.host):\(u.port): \(error)")
        }
        try conn.handshake(deadline: deadline, what: "\(u.host):\(u.port)")
        return conn
    }

    func handshake(deadline: UInt64, what: String) throws(ACMEError) {
        guard let tls else { return }
        do {
            try tls.startHandshake()
            while true {
                try flushCipher(deadline: deadline)
                if tls.isEstablished { return }
                guard try readSocket(into: cipherIn, deadline: deadline) else {
                    throw ACMEError.transport("TLS handshake with \(what): connection closed")
                }
                _ = try tls.feed(into: plain)
            }
        } catch let e as ACMEError {
            throw e
        } catch {
            throw .transport("TLS handshake with \(what): \(error)")
        }
    }

    func send(_ bytes: [UInt8], deadline: UInt64) throws(ACMEError) {
        if let tls {
            do { try tls.write(bytes) } catch { throw .transport("TLS write: \(error)") }
            try flushCipher(deadline: deadline)
        } else {
            let b = ByteBuffer(capacity: bytes.count)
            b.append(bytes)
            try writeAll(b, deadline: deadline)
        }
    }

    func flushCipher(deadline: UInt64) throws(ACMEError) {
        try writeAll(cipherOut, deadline: deadline)
    }

    func writeAll(_ b: ByteBuffer, deadline: UInt64) throws(ACMEError) {
        while !b.isEmpty {
            let n = Glibc.send(fd, b.readable.baseAddress, b.readableBytes, Int32(MSG_NOSIGNAL))
            if n > 0 {
                b.consume(n)
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                try HTTPClientConnection.wait(fd, Int16(POLLOUT), deadline)
                continue
            }
            throw .transport("send: \(IOError.describe(errno))")
        }
        b.clear()
    }

    /// Reads what the socket has into `b`; false at end of stream.
    func readSocket(into b: ByteBuffer, deadline: UInt64) throws(ACMEError) -> Bool {
        while true {
            b.reserveWritable(8192)
            let n = Glibc.recv(fd, b.writePointer, b.writableBytes, 0)
            if n > 0 {
                b.commit(n)
                return true
            }
            if n == 0 { return false }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                try HTTPClientConnection.wait(fd, Int16(POLLIN), deadline)
                continue
            }
            throw .transport("recv: \(IOError.describe(errno))")
        }
    }

    /// More plaintext into `plain`; false at end of stream.
    func readMore(deadline: UInt64) throws(ACMEError) -> Bool {
        if eof { return false }
        guard let tls else {
            if try !readSocket(into: plain, deadline: deadline) { eof = true }
            return !eof
        }
        let before = plain.readableBytes
        while plain.readableBytes == before {
            if !cipherIn.isEmpty || tls.hasPendingPlaintext {
                let r: TLSFeedResult
                do { r = try tls.feed(into: plain) } catch { throw .transport("TLS read: \(error)") }
                try flushCipher(deadline: deadline)
                if r.closeNotifyReceived {
                    eof = true
                    return plain.readableBytes > before
                }
                if plain.readableBytes > before { return true }
            }
            if try !readSocket(into: cipherIn, deadline: deadline) {
                eof = true
                return false
            }
        }
        return true
    }

    // MARK: Connecting

    static func connect(host: String, port: Int, deadline: UInt64) throws(ACMEError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let first = res else {
            throw .transport("resolving \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            if fd < 0 {
                lastError = IOError.describe(errno)
                continue
            }
            if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
            if errno == EINPROGRESS {
                do {
                    try wait(fd, Int16(POLLOUT), deadline)
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                    if err == 0 { return fd }
                    lastError = IOError.describe(err)
                } catch {
                    lastError = error.description
                }
            } else {
                lastError = IOError.describe(errno)
            }
            Glibc.close(fd)
        }
        throw .transport("connecting to \(host):\(port): \(lastError)")
    }

    /// Waits for `events` on `fd` until `deadline` (monotonic nanoseconds).
    static func wait(_ fd: Int32, _ events: Int16, _ deadline: UInt64) throws(ACMEError) {
        while true {
            let now = Clock.monotonicNanos()
            guard now < deadline else { throw .transport("timed out") }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let ms = Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
            let r = poll(&p, 1, ms)
            if r > 0 { return }
            if r < 0 && errno != EINTR { throw .transport("poll: \(IOError.describe(errno))") }
        }
    }
}

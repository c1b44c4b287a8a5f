#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// How placeholder values are escaped where they are inserted.
package enum TemplateEscaping: Sendable {
    /// As they are (bodies, header values, Location).
    case none
    /// In a rewrite's path: `{http.request.uri.path}` is the escaped path and
    /// `{http.matchers.file.relative}` is path-escaped (Caddy's escapePathPlaceholders).
    case path
    /// In a rewrite's query key position: values are query-escaped except the raw query.
    case queryKey
    /// In a rewrite's query value position: every value is query-escaped.
    case queryValue
}

extension Placeholder {
    /// Appends the value of `ph` for `r` to `out`; false when the placeholder is unknown for
    /// this request (nothing appended).
    static func append(_ ph: Placeholder, _ r: HTTPRequest, _ out: ByteBuffer, _ escaping: TemplateEscaping) -> Bool {
        switch escaping {
        case .none:
            return appendRaw(ph, r, out, escaping)
        case .path:
            if case .path = ph {
                r.withLineBytes(r.pathRange) { URLEscaping.appendEscapedPath(raw: $0, into: out) }
                return true
            }
            return appendRaw(ph, r, out, escaping)
        case .queryKey, .queryValue:
            if escaping == .queryKey, case .query = ph { return appendRaw(ph, r, out, .none) }
            let mark = out.writerIndex
            guard appendRaw(ph, r, out, .none) else { return false }
            reencode(out, from: mark) { URLEscaping.appendQueryEscaped($0, into: out) }
            return true
        }
    }

    /// Re-encodes the bytes written after `mark` with `encode` (via a temporary copy).
    static func reencode(_ out: ByteBuffer, from mark: Int, _ encode: (UnsafeRawBufferPointer) -> Void) {
        let n = out.writerIndex - mark
        if n == 0 { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n) { tmp in
            for k in 0..<n { tmp[k] = out.base[mark + k] }
            out.writerIndex = mark
            encode(UnsafeRawBufferPointer(tmp))
        }
    }

    /// The bytes written after `mark`.
    @inline(__always)
    static func written(_ out: ByteBuffer, _ mark: Int) -> UnsafeMutableBufferPointer<UInt8> {
        UnsafeMutableBufferPointer(start: out.base + mark, count: out.writerIndex - mark)
    }

    /// Keeps only `range` (relative to `mark`) of what was written after `mark`.
    static func keep(_ out: ByteBuffer, _ mark: Int, _ range: Range<Int>) {
        if range.lowerBound > 0 {
            for k in 0..<range.count { out.base[mark + k] = out.base[mark + range.lowerBound + k] }
        }
        out.writerIndex = mark + range.count
    }

    static func appendRaw(_ ph: Placeholder, _ r: HTTPRequest, _ out: ByteBuffer, _ escaping: TemplateEscaping) -> Bool {
        switch ph {
        case .host:
            r.withHost { out.append($0) }
        case .hostport:
            if let a = r.authorityRange { r.withLineBytes(a) { out.append($0) } }
        case .port:
            // Caddy: the port from SplitHostPort(Host), empty when the Host has none.
            if let a = r.authorityRange {
                r.withLineBytes(a) { auth in
                    let host = HTTPRequest.stripPort(auth)
                    if host.count < auth.count {
                        var start = host.count + 1
                        if auth.first == UInt8(ascii: "[") { start += 2 }
                        if start < auth.count { out.append(UnsafeRawBufferPointer(rebasing: auth[start...])) }
                    }
                }
            }
        case .uri:
            // Go's RequestURI: an empty path (after a rewrite stripped everything) is "/".
            if r.pathRange.isEmpty { out.append(byte: UInt8(ascii: "/")) }
            r.withLineBytes(r.targetRange) { out.append($0) }
        case .uriEscaped:
            r.withLineBytes(r.targetRange) { URLEscaping.appendQueryEscaped($0, into: out) }
        case .path:
            r.withLineBytes(r.pathRange) { URLDecoding.appendDecodedPath($0, into: out) }
        case .pathEscaped:
            let mark = out.writerIndex
            r.withLineBytes(r.pathRange) { URLDecoding.appendDecodedPath($0, into: out) }
            reencode(out, from: mark) { URLEscaping.appendQueryEscaped($0, into: out) }
        case .pathDir, .pathFile, .pathFileBase, .pathFileExt:
            let mark = out.writerIndex
            r.withLineBytes(r.pathRange) { URLDecoding.appendDecodedPath($0, into: out) }
            pathPart(ph, out, mark)
        case .query:
            if let q = r.queryRange { r.withLineBytes(q) { out.append($0) } }
        case .queryEscaped:
            if let q = r.queryRange { r.withLineBytes(q) { URLEscaping.appendQueryEscaped($0, into: out) } }
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
            if let rem = r.connection.remote { appendAddress(rem, out) }
        case .proto:
            out.append(r.version.protoString)
        case .protoName:
            switch r.version {
            case .http2: out.append("HTTP/2")
            case .http3: out.append("HTTP/3")
            default: out.append(r.version.protoString)
            }
        case .header(let name):
            // Caddy joins repeated fields with ","; Host is not a header field in Go (it is
            // `Request.Host`), so `{http.request.header.Host}` is empty there and here.
            var first = true
            for i in r.fields.entries.indices {
                r.fields.withField(i) { n, v in
                    guard Template.equalsIgnoringCase(n, name) else { return }
                    if !first { out.append(byte: UInt8(ascii: ",")) }
                    out.append(v)
                    first = false
                }
            }
        case .env:
            break
        case .origURI:
            r.withLineBytes(r.originalTarget) { out.append($0) }
        case .origPath, .origDir, .origFile, .origQuery, .origQueryWithMark, .origPathSegment:
            r.withLineBytes(r.originalTarget) { t in
                var pathEnd = t.count
                for i in 0..<t.count where t[i] == UInt8(ascii: "?") { pathEnd = i; break }
                let path = UnsafeRawBufferPointer(rebasing: t[0..<pathEnd])
                let query = pathEnd < t.count ? UnsafeRawBufferPointer(rebasing: t[(pathEnd + 1)...]) : nil
                let mark = out.writerIndex
                switch ph {
                case .origPath: URLDecoding.appendDecodedPath(path, into: out)
                case .origDir:
                    URLDecoding.appendDecodedPath(path, into: out)
                    pathPart(.pathDir, out, mark)
                case .origFile:
                    URLDecoding.appendDecodedPath(path, into: out)
                    pathPart(.pathFile, out, mark)
                case .origQuery: if let q = query { out.append(q) }
                case .origQueryWithMark:
                    if let q = query, !q.isEmpty {
                        out.append(byte: UInt8(ascii: "?"))
                        out.append(q)
                    }
                case .origPathSegment(let n):
                    URLDecoding.appendDecodedPath(path, into: out)
                    segment(n, out, mark)
                default: break
                }
            }
        case .origMethod:
            r.withLineBytes(r.originalMethod) { out.append($0) }
        case .custom(let name):
            for p in r.placeholderProviders {
                if name.withUnsafeBytes({ p.provide($0, r, into: out) }) { return true }
            }
            return false
        case .authUserID:
            // Set only once basic_auth authenticated the request; before that the placeholder
            // is unknown (kept or emptied as the template says), as in Caddy.
            guard let u = r.authUser else { return false }
            out.append(Array(u.utf8))
        case .queryParam(let key):
            if let q = r.queryRange { r.withLineBytes(q) { QueryString.appendValues(of: key, in: $0, into: out) } }
        case .cookie(let name):
            // Known even when absent (Caddy 2.11 gives an empty value).
            _ = Cookies.appendValue(of: name, in: r.fields, into: out)
        case .hostLabel(let n):
            let mark = out.writerIndex
            r.withHost { out.append($0) }
            hostLabel(n, out, mark)
        case .pathSegment(let n):
            let mark = out.writerIndex
            r.withLineBytes(r.pathRange) { URLDecoding.appendDecodedPath($0, into: out) }
            segment(n, out, mark)
        case .localAddr:
            if let l = r.connection.local { appendAddress(l, out) }
        case .localHost:
            r.connection.local?.writeIP(into: out)
        case .localPort:
            if let p = r.connection.local?.port { out.appendDecimal(p) }
        case .vars(let name):
            let found = withBytes(name) { k in r.vars.withValue(k) { out.append($0) } } != nil
            if !found, name == "client_ip" { r.connection.remote?.writeIP(into: out) }
        case .dynamic(let key):
            let pathEscape = escaping == .path && key == "http.matchers.file.relative"
            return withBytes(key) { k in
                r.vars.withValue(k) { v in
                    if pathEscape {
                        URLEscaping.appendPathSegmentEscapedKeepingSlashes(v, into: out)
                    } else {
                        out.append(v)
                    }
                }
            } != nil
        case .tls(let name):
            // Empty on plain connections (Caddy 2.11).
            if r.connection.isTLS { TLSPlaceholder.append(name, r.connection, out) }
        case .uuid:
            appendUUID(out)
        case .timeNowUnix, .timeNowUnixMs:
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            if case .timeNowUnix = ph {
                out.appendDecimal(Int(ts.tv_sec))
            } else {
                out.appendDecimal(Int(ts.tv_sec) * 1000 + Int(ts.tv_nsec) / 1_000_000)
            }
        case .timeNowHTTP:
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: HTTPDate.length) { b in
                HTTPDate.format(epochSeconds: Int(ts.tv_sec), into: b.baseAddress!)
                out.append(UnsafeRawBufferPointer(start: b.baseAddress!, count: HTTPDate.length))
            }
        case .timeNow:
            appendGoTimeString(out)
        case .timeNowCommonLog, .timeNowYear:
            var t = time(nil)
            var tm = tm()
            localtime_r(&t, &tm)
            if case .timeNowYear = ph {
                out.appendDecimal(Int(tm.tm_year) + 1900)
                return true
            }
            func two(_ v: Int32) {
                out.append(byte: UInt8(48 + v / 10 % 10))
                out.append(byte: UInt8(48 + v % 10))
            }
            let months: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"
            two(tm.tm_mday)
            out.append(byte: UInt8(ascii: "/"))
            out.append(UnsafeRawBufferPointer(start: months.utf8Start + Int(tm.tm_mon) * 3, count: 3))
            out.append(byte: UInt8(ascii: "/"))
            out.appendDecimal(Int(tm.tm_year) + 1900)
            out.append(byte: UInt8(ascii: ":"))
            two(tm.tm_hour)
            out.append(byte: UInt8(ascii: ":"))
            two(tm.tm_min)
            out.append(byte: UInt8(ascii: ":"))
            two(tm.tm_sec)
            let off = tm.tm_gmtoff / 60
            out.append(byte: UInt8(ascii: " "))
            out.append(byte: UInt8(ascii: off < 0 ? "-" : "+"))
            two(Int32(abs(off) / 60))
            two(Int32(abs(off) % 60))
        }
        return true
    }

    /// Go's `time.Now().String()`: local date and time with nanoseconds (trailing zeros
    /// trimmed), numeric offset, zone abbreviation, and the monotonic reading `m=+S.NNNNNNNNN`
    /// (seconds since the process started).
    static func appendGoTimeString(_ out: ByteBuffer) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = tm()
        localtime_r(&t, &tm)
        func digits(_ v: Int, _ n: Int) {
            var d = 1
            for _ in 1..<n { d *= 10 }
            var v = v
            while d > 0 {
                out.append(byte: UInt8(48 + v / d % 10))
                v %= d
                d /= 10
            }
        }
        digits(Int(tm.tm_year) + 1900, 4)
        out.append(byte: UInt8(ascii: "-"))
        digits(Int(tm.tm_mon) + 1, 2)
        out.append(byte: UInt8(ascii: "-"))
        digits(Int(tm.tm_mday), 2)
        out.append(byte: UInt8(ascii: " "))
        digits(Int(tm.tm_hour), 2)
        out.append(byte: UInt8(ascii: ":"))
        digits(Int(tm.tm_min), 2)
        out.append(byte: UInt8(ascii: ":"))
        digits(Int(tm.tm_sec), 2)
        var ns = Int(ts.tv_nsec)
        if ns > 0 {
            var width = 9
            while ns % 10 == 0 {
                ns /= 10
                width -= 1
            }
            out.append(byte: UInt8(ascii: "."))
            digits(ns, width)
        }
        let off = tm.tm_gmtoff / 60
        out.append(byte: UInt8(ascii: " "))
        out.append(byte: UInt8(ascii: off < 0 ? "-" : "+"))
        digits(abs(off) / 60, 2)
        digits(abs(off) % 60, 2)
        out.append(byte: UInt8(ascii: " "))
        if let z = tm.tm_zone {
            out.append(UnsafeRawBufferPointer(start: z, count: strlen(z)))
        }
        let m = max(0, Int(Clock.monotonicNanos()) - ProcessStart.monotonicNanos)
        out.append(" m=+")
        out.appendDecimal(m / 1_000_000_000)
        out.append(byte: UInt8(ascii: "."))
        digits(m % 1_000_000_000, 9)
    }

    /// `ip:port`, with brackets for IPv6 (not for v4-mapped addresses), like Go's RemoteAddr.
    static func appendAddress(_ a: SocketAddress, _ out: ByteBuffer) {
        if case .v6(let s) = a, !SocketAddress.isV4Mapped(s.sin6_addr) {
            out.append(byte: UInt8(ascii: "["))
            a.writeIP(into: out)
            out.append(byte: UInt8(ascii: "]"))
        } else {
            a.writeIP(into: out)
        }
        out.append(byte: UInt8(ascii: ":"))
        out.appendDecimal(a.port)
    }

    /// Go's `path.Split` (dir keeps its trailing slash), `path.Base` minus `path.Ext`, and
    /// `path.Ext`, applied to the decoded path written after `mark`.
    static func pathPart(_ ph: Placeholder, _ out: ByteBuffer, _ mark: Int) {
        let p = written(out, mark)
        let n = p.count
        var lastSlash = -1
        for i in 0..<n where p[i] == UInt8(ascii: "/") { lastSlash = i }
        switch ph {
        case .pathDir:
            keep(out, mark, 0..<(lastSlash + 1))
        case .pathFile:
            keep(out, mark, (lastSlash + 1)..<n)
        case .pathFileBase, .pathFileExt:
            // path.Base: strip trailing slashes, take the last element ("." for empty, "/" for
            // all slashes); path.Ext: from the last dot of the last element.
            var end = n
            while end > 0 && p[end - 1] == UInt8(ascii: "/") { end -= 1 }
            var start = end
            while start > 0 && p[start - 1] != UInt8(ascii: "/") { start -= 1 }
            var extStart = n
            var k = n - 1
            while k >= 0 && p[k] != UInt8(ascii: "/") {
                if p[k] == UInt8(ascii: ".") { extStart = k; break }
                k -= 1
            }
            if case .pathFileExt = ph {
                keep(out, mark, extStart < n ? extStart..<n : n..<n)
                return
            }
            if n == 0 {
                out.writerIndex = mark
                out.append(byte: UInt8(ascii: "."))
                return
            }
            if end == 0 {
                out.writerIndex = mark
                out.append(byte: UInt8(ascii: "/"))
                return
            }
            // Base minus the extension of the whole path (TrimSuffix does nothing when the
            // base does not end with it, e.g. with trailing slashes).
            var baseEnd = end
            let extLen = n - extStart
            if extStart < n, end == n, extLen <= end - start { baseEnd = end - extLen }
            keep(out, mark, start..<baseEnd)
        default:
            break
        }
    }

    /// `strings.Split(path, "/")` without a leading empty element, element `n` (empty past the end).
    static func segment(_ n: Int, _ out: ByteBuffer, _ mark: Int) {
        let p = written(out, mark)
        var start = 0
        if p.count > 0 && p[0] == UInt8(ascii: "/") { start = 1 }
        var idx = 0
        var i = start
        var segStart = start
        while true {
            if i == p.count || p[i] == UInt8(ascii: "/") {
                if idx == n {
                    keep(out, mark, segStart..<i)
                    return
                }
                if i == p.count { break }
                idx += 1
                segStart = i + 1
            }
            i += 1
        }
        out.writerIndex = mark
    }

    /// Label `n` from the right of the host written after `mark`, lower-cased (Caddy's
    /// `{labels.N}`); empty past the end.
    static func hostLabel(_ n: Int, _ out: ByteBuffer, _ mark: Int) {
        let p = written(out, mark)
        var end = p.count
        var idx = 0
        var i = p.count - 1
        while i >= -1 {
            if i == -1 || p[i] == UInt8(ascii: ".") {
                if idx == n {
                    let range = (i + 1)..<end
                    keep(out, mark, range)
                    let kept = written(out, mark)
                    for k in kept.indices where kept[k] >= 0x41 && kept[k] <= 0x5A { kept[k] |= 0x20 }
                    return
                }
                idx += 1
                end = i
            }
            i -= 1
        }
        out.writerIndex = mark
    }

    /// A random (version 4) UUID, as Caddy's `{http.request.uuid}` (per placeholder use).
    static func appendUUID(_ out: ByteBuffer) {
        var g = SystemRandomNumberGenerator()
        var a = g.next() as UInt64, b = g.next() as UInt64
        a = (a & ~0xF000) | 0x4000  // version 4 (bits 12-15 of time_hi)
        b = (b & ~(0xC000 << 48)) | (0x8000 << 48)  // variant 10
        let hex: [UInt8] = URLEscaping.upperHex
        func put(_ v: UInt64, _ shift: Int, _ count: Int) {
            for k in stride(from: count - 1, through: 0, by: -1) {
                let nib = Int((v >> UInt64(shift + 4 * k)) & 0xF)
                var c = hex[nib]
                if c >= 0x41 { c |= 0x20 }
                out.append(byte: c)
            }
        }
        put(a, 32, 8)
        out.append(byte: UInt8(ascii: "-"))
        put(a, 16, 4)
        out.append(byte: UInt8(ascii: "-"))
        put(a, 0, 4)
        out.append(byte: UInt8(ascii: "-"))
        put(b, 48, 4)
        out.append(byte: UInt8(ascii: "-"))
        put(b, 0, 12)
    }
}

/// Calls `body` with the UTF-8 bytes of `s` (no copy for native strings).
@inline(__always)
func withBytes<R>(_ s: String, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    var s = s
    return try s.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
}

extension URLEscaping {
    /// Go's `url.PathEscape` with `%2F` turned back into `/` (Caddy's
    /// escapePathPreservingSlashes): segment escaping, which also escapes `;` `,` `?`.
    package static func appendPathSegmentEscapedKeepingSlashes(_ s: UnsafeRawBufferPointer, into out: ByteBuffer) {
        for c in s {
            if c == UInt8(ascii: "/") {
                out.append(byte: c)
            } else if c == UInt8(ascii: ";") || c == UInt8(ascii: ",") || shouldEscapePath(c) {
                appendPercent(c, out)
            } else {
                out.append(byte: c)
            }
        }
    }
}

/// `{http.request.tls.*}` in Caddy's formats (`caddyhttp/replacer.go` getReqTLSReplacement).
enum TLSPlaceholder {
    static func append(_ name: String, _ c: ConnectionInfo, _ out: ByteBuffer) {
        switch name {
        case "version":
            switch c.tlsVersion {
            case 0x0304: out.append(string: "tls1.3")
            case 0x0303: out.append(string: "tls1.2")
            default: break
            }
        case "cipher_suite": out.append(string: cipherSuiteName(c.tlsCipherSuite))
        case "resumed": out.append(string: c.tlsResumed ? "true" : "false")
        case "proto": if let p = c.tlsProtocol { out.append(string: p) }
        case "proto_mutual": out.append(string: "true")
        case "server_name": if let sn = c.serverName { out.append(string: sn) }
        case "client.subject": if let x = c.tlsClientCertificate { out.append(string: x.subject) }
        case "client.issuer": if let x = c.tlsClientCertificate { out.append(string: x.issuer) }
        case "client.serial": if let x = c.tlsClientCertificate { out.append(string: x.serial) }
        case "client.fingerprint": if let x = c.tlsClientCertificate { out.append(string: x.fingerprint) }
        case "client.certificate_pem": if let x = c.tlsClientCertificate { out.append(string: x.pem) }
        case "client.certificate_der_base64":
            if let x = c.tlsClientCertificate {
                for line in x.pem.split(separator: "\n") where !line.hasPrefix("-----") { out.append(string: String(line)) }
            }
        default: break
        }
    }

    /// Go's `tls.CipherSuiteName` for the suites Berth can negotiate.
    static func cipherSuiteName(_ id: UInt16) -> String {
        switch id {
        case 0x1301: "TLS_AES_128_GCM_SHA256"
        case 0x1302: "TLS_AES_256_GCM_SHA384"
        case 0x1303: "TLS_CHACHA20_POLY1305_SHA256"
        case 0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case 0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case 0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case 0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case 0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        case 0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        default: id == 0 ? "" : "0x" + String(id, radix: 16, uppercase: true)
        }
    }
}

/// When this process started, on the monotonic clock: its start time from /proc/self/stat
/// (clock ticks since boot) against CLOCK_BOOTTIME, read once.
enum ProcessStart {
    static let monotonicNanos: Int = {
        let now = Int(Clock.monotonicNanos())
        var boot = timespec()
        clock_gettime(CLOCK_BOOTTIME, &boot)
        guard let stat = try? FileIO.readAll("/proc/self/stat", limit: 4096),
            let close = stat.lastIndex(of: UInt8(ascii: ")"))
        else { return now }
        // Fields after the command name: state is field 3; starttime is field 22.
        let fields = stat[(close + 2)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19, let ticks = Int(String(decoding: fields[19], as: UTF8.self)) else { return now }
        let hz = max(1, sysconf(Int32(_SC_CLK_TCK)))
        let startBoot = ticks * (1_000_000_000 / hz)
        let bootNow = Int(boot.tv_sec) * 1_000_000_000 + Int(boot.tv_nsec)
        return now - max(0, bootNow - startBoot)
    }()
}

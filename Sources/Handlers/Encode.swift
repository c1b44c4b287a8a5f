import HTTPCore
import IOCore
import Synchronization

/// Content codings `encode` can produce.
package enum ContentCoding: String, Sendable, CaseIterable {
    case zstd, gzip
}

/// Caddy's `encode` handler (`encode/encode.go`): picks a coding from `Accept-Encoding` and
/// puts a compressing sink (`Compressor`) in front of the response, which decides when the
/// head is written whether to compress.
///
/// Negotiation (Caddy's AcceptedEncodings): q-values (`q=0` refuses; a bad or out-of-range q
/// counts as 1), ties broken by the configured order (`encode gzip zstd` prefers gzip; the
/// default `encode` is `zstd gzip`); nothing for WebSocket handshakes or when the request has
/// `Cache-Control: no-transform`. A strong `If-None-Match` ending in `-<coding>"` is stripped
/// back so the handler's own ETag matches (Caddy does the same).
package final class EncodeHandler: Handler {
    package struct Settings: Sendable {
        /// Codings in preference order.
        package var codings: [ContentCoding]
        /// Only bodies longer than this are compressed (Caddy: 512).
        package var minimumLength: Int
        /// Which responses are compressed (Caddy's default: a list of text-like types).
        package var match: ResponseMatcher
        package var gzipLevel: Int32
        package var zstdLevel: Int32
        package init(codings: [ContentCoding] = [.zstd, .gzip], minimumLength: Int = 512, match: ResponseMatcher? = nil,
                     gzipLevel: Int32 = 5, zstdLevel: Int32 = 3) {
            self.codings = codings
            self.minimumLength = minimumLength
            self.match = match ?? EncodeHandler.defaultMatch
            self.gzipLevel = gzipLevel
            self.zstdLevel = zstdLevel
        }
    }

    /// Caddy's default `Content-Type` list (`encode.go` Provision).
    package static let defaultTypes = [
        "application/atom+xml*", "application/eot*", "application/font*", "application/geo+json*",
        "application/graphql+json*", "application/graphql-response+json*", "application/javascript*",
        "application/json*", "application/ld+json*", "application/manifest+json*", "application/opentype*",
        "application/otf*", "application/rss+xml*", "application/truetype*", "application/ttf*",
        "application/vnd.api+json*", "application/vnd.ms-fontobject*", "application/wasm*", "application/x-httpd-cgi*",
        "application/x-javascript*", "application/x-opentype*", "application/x-otf*", "application/x-perl*",
        "application/x-protobuf*", "application/x-ttf*", "application/xhtml+xml*", "application/xml*", "font/ttf*",
        "font/otf*", "image/svg+xml*", "image/vnd.microsoft.icon*", "image/x-icon*", "multipart/bag*",
        "multipart/mixed*", "text/*",
    ]
    package static let defaultMatch = ResponseMatcher(
        headers: [HeaderFieldCondition(name: "Content-Type", patterns: defaultTypes.map(HeaderValuePattern.init))])

    package let settings: Settings
    let pools: [CompressorPool]

    package init(_ settings: Settings) {
        self.settings = settings
        pools = settings.codings.map { CompressorPool(coding: $0, level: $0 == .gzip ? settings.gzipLevel : settings.zstdLevel) }
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        if let noTransform = request.fields.withValue(.cacheControl, { EncodeHandler.contains($0, "no-transform") }), noTransform {
            return .next
        }
        guard let i = request.fields.withValue(.acceptEncoding, { chooseCoding($0, request) }) ?? nil else { return .next }
        let pool = pools[i]
        stripOurETagSuffix(request, pool.coding)
        let c = pool.acquire()
        c.begin(self, isHEAD: request.method == .HEAD)
        response.install(c)
        return .next
    }

    /// The index (in `settings.codings`) of the coding to use, or nil.
    func chooseCoding(_ header: UnsafeRawBufferPointer, _ request: HTTPRequest) -> Int? {
        // WebSocket handshakes only accept identity.
        let hasKey = request.fields.entries.indices.contains { i in
            request.fields.withField(i) { n, _ in Template.equalsIgnoringCase(n, "Sec-Websocket-Key") }
        }
        if hasKey { return nil }
        var best: Int? = nil
        var bestQ = -1.0
        for (i, coding) in settings.codings.enumerated() {
            guard let q = EncodeHandler.quality(of: coding.rawValue, in: header) else { continue }
            // Earlier codings win ties (higher server preference).
            if best == nil || q > bestQ + 0.00001 {
                best = i
                bestQ = q
            }
        }
        return best
    }

    /// The highest accepted q-value for `name` in an Accept-Encoding value (Caddy's parsing:
    /// only the first parameter is looked at; an invalid q counts as 1), nil when absent or
    /// refused (q = 0).
    static func quality(of name: String, in header: UnsafeRawBufferPointer) -> Double? {
        var result: Double? = nil
        var start = 0
        let n = header.count
        while start <= n {
            var end = start
            while end < n && header[end] != UInt8(ascii: ",") { end += 1 }
            defer { start = end + 1 }
            var semi = end
            for k in start..<end where header[k] == UInt8(ascii: ";") { semi = k; break }
            let token = trim(header, start, semi)
            guard Template.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: header[token]), name) else { continue }
            var q = 1.0
            if semi < end {
                var pEnd = end
                for k in (semi + 1)..<end where header[k] == UInt8(ascii: ";") { pEnd = k; break }
                let p = trim(header, semi + 1, pEnd)
                if p.count >= 2, header[p.lowerBound] | 0x20 == UInt8(ascii: "q"), header[p.lowerBound + 1] == UInt8(ascii: "=") {
                    if let v = parseQ(UnsafeRawBufferPointer(rebasing: header[(p.lowerBound + 2)..<p.upperBound])), v >= 0, v <= 1 {
                        q = v
                    }
                }
            }
            if q < 0.00001 { continue }
            if result == nil || q > result! { result = q }
            if end >= n { break }
        }
        return result
    }

    static func trim(_ b: UnsafeRawBufferPointer, _ lo: Int, _ hi: Int) -> Range<Int> {
        var l = lo, h = hi
        while l < h && (b[l] == 0x20 || b[l] == 0x09) { l += 1 }
        while h > l && (b[h - 1] == 0x20 || b[h - 1] == 0x09) { h -= 1 }
        return l..<h
    }

    /// A decimal like `0.5`, `1`, `.8`, `1e-1` (strconv.ParseFloat's common forms).
    static func parseQ(_ b: UnsafeRawBufferPointer) -> Double? {
        guard !b.isEmpty, b.count < 32 else { return nil }
        var chars: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &chars) { buf -> Double? in
            for k in 0..<b.count { buf[k] = b[k] }
            buf[b.count] = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let p = buf.baseAddress!.assumingMemoryBound(to: CChar.self)
            for k in 0..<b.count {
                let c = b[k]
                guard (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
                    || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") else { return nil }
            }
            let v = strtod(p, &end)
            guard let e = end, e == p + b.count else { return nil }
            return v
        }
    }

    /// `strings.Contains(value, needle)`.
    static func contains(_ v: UnsafeRawBufferPointer, _ needle: StaticString) -> Bool {
        let n = needle.utf8CodeUnitCount
        guard v.count >= n else { return false }
        let p = needle.utf8Start
        for s in 0...(v.count - n) {
            var hit = true
            for k in 0..<n where v[s + k] != p[k] { hit = false; break }
            if hit { return true }
        }
        return false
    }

    /// `If-None-Match: "x-gzip"` → `"x"` (only for strong tags), so the ETag the handler
    /// computes matches.
    func stripOurETagSuffix(_ request: HTTPRequest, _ coding: ContentCoding) {
        guard let i = request.fields.firstIndex(.ifNoneMatch) else { return }
        let suffix = coding == .gzip ? "-gzip\"" : "-zstd\""
        var newLength: Int? = nil
        request.fields.withField(i) { _, v in
            if v.count >= 2, v[0] == UInt8(ascii: "W"), v[1] == UInt8(ascii: "/") { return }
            let s = suffix.utf8.count
            if v.count >= s, v.suffix(s).elementsEqual(suffix.utf8) { newLength = v.count - s }
        }
        guard let keep = newLength else { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: keep + 1) { tmp in
            request.fields.withField(i) { _, v in for k in 0..<keep { tmp[k] = v[k] } }
            tmp[keep] = UInt8(ascii: "\"")
            request.fields.replaceValue(at: i, with: UnsafeRawBufferPointer(tmp))
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

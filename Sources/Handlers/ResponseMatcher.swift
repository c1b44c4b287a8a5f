import HTTPCore
import IOCore

/// Caddy's header-value patterns (`matchers.go` matchHeaders): `*` any, `*x*` contains, `*x`
/// suffix, `x*` prefix, else exact; case-sensitive values.
package struct HeaderValuePattern: Sendable {
    enum Kind: Sendable { case any, contains, suffix, prefix, exact }
    let kind: Kind
    let bytes: [UInt8]

    package init(_ p: String) {
        let b = Array(p.utf8)
        let star = UInt8(ascii: "*")
        if p == "*" {
            kind = .any
            bytes = []
        } else if b.count >= 2, b.first == star, b.last == star {
            kind = .contains
            bytes = Array(b.dropFirst().dropLast())
        } else if b.first == star {
            kind = .suffix
            bytes = Array(b.dropFirst())
        } else if b.last == star {
            kind = .prefix
            bytes = Array(b.dropLast())
        } else {
            kind = .exact
            bytes = b
        }
    }

    package func matches(_ v: UnsafeRawBufferPointer) -> Bool {
        switch kind {
        case .any: return true
        case .exact: return v.elementsEqual(bytes)
        case .prefix: return v.count >= bytes.count && v.prefix(bytes.count).elementsEqual(bytes)
        case .suffix: return v.count >= bytes.count && v.suffix(bytes.count).elementsEqual(bytes)
        case .contains:
            if bytes.isEmpty { return true }
            guard v.count >= bytes.count else { return false }
            for s in 0...(v.count - bytes.count) where v[s] == bytes[0] {
                var ok = true
                for k in 1..<bytes.count where v[s + k] != bytes[k] { ok = false; break }
                if ok { return true }
            }
            return false
        }
    }
}

/// One field of a header matcher: the field must be absent (`!Field` / `?Field`), present with
/// any value (empty list), or have a value matching one of the patterns.
package struct HeaderFieldCondition: Sendable {
    package let name: String
    /// nil: the field must be absent.
    package let patterns: [HeaderValuePattern]?

    package init(name: String, patterns: [HeaderValuePattern]?) {
        self.name = name
        self.patterns = patterns
    }

    /// Caddy's matchHeaders for one field over the given values.
    func matches(_ fields: HTTPFields, extraValue: UnsafeRawBufferPointer? = nil) -> Bool {
        var present = extraValue != nil
        var match = false
        if let e = extraValue, let ps = patterns, ps.contains(where: { $0.matches(e) }) { match = true }
        withBytes(name) { nb in
            for i in fields.entries.indices where !match {
                fields.withField(i) { n, v in
                    guard !n.isEmpty, Template.equalsIgnoringCase(n, nb) else { return }
                    present = true
                    if let ps = patterns, ps.contains(where: { $0.matches(v) }) { match = true }
                }
            }
        }
        guard let ps = patterns else { return !present }
        if ps.isEmpty { return present }
        return match
    }
}

/// Caddy's ResponseMatcher (`responsematchers.go`): status codes (a one-digit code is a class,
/// `2` = 2xx) and header conditions; used by `header { match }`, `?Field` and `encode { match }`.
package struct ResponseMatcher: Sendable {
    package var statusCodes: [Int]?
    package var headers: [HeaderFieldCondition]

    package init(statusCodes: [Int]? = nil, headers: [HeaderFieldCondition] = []) {
        self.statusCodes = statusCodes
        self.headers = headers
    }

    /// Caddy's StatusCodeMatches: codes below 100 match a class.
    static func statusMatches(_ actual: Int, _ configured: Int) -> Bool {
        if actual == configured { return true }
        if configured < 100 && actual >= configured * 100 && actual < (configured + 1) * 100 { return true }
        return false
    }

    package func matches(status: Int, fields: HTTPFields) -> Bool {
        if let codes = statusCodes, !codes.contains(where: { ResponseMatcher.statusMatches(status, $0) }) { return false }
        for h in headers where !h.matches(fields) { return false }
        return true
    }
}

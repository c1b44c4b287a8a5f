#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Where a `vars` / `vars_regexp` matcher reads its value: a request variable by name, or a
/// placeholder when the key is one whole `{…}` (Caddy: `{` first, `}` last, one `{`).
package enum VarsMatcherKey: Sendable {
    case variable([UInt8])
    case placeholder(Template)

    package init(_ key: String) {
        if key.hasPrefix("{") && key.hasSuffix("}") && key.utf8.lazy.filter({ $0 == UInt8(ascii: "{") }).count == 1 {
            self = .placeholder(Template(key, keepUnknown: false))
        } else {
            self = .variable(Array(key.utf8))
        }
    }

    /// Appends the value (as Caddy prints it; unset: empty) to `out`.
    func append(_ r: HTTPRequest, into out: ByteBuffer) {
        switch self {
        case .variable(let k):
            _ = k.withUnsafeBytes { kb in r.vars.withValue(kb) { out.append($0) } }
        case .placeholder(let t):
            t.expand(r, into: out)
        }
    }
}

/// Caddy's `vars` matcher (`caddyhttp/vars.go` VarsMatcher): true when, for any key, the
/// variable's value equals one of the values (placeholders expanded); no keys: always true.
package struct VarsMatcher: RequestMatcher {
    let entries: [(key: VarsMatcherKey, values: [Template])]
    package init(_ entries: [(String, [String])]) {
        self.entries = entries.map { (VarsMatcherKey($0.0), $0.1.map { Template($0, keepUnknown: false) }) }
    }

    package func matches(_ request: HTTPRequest) -> Bool {
        if entries.isEmpty { return true }
        let s = request.scratch
        for e in entries {
            s.clear()
            e.key.append(request, into: s)
            let n = s.writerIndex
            for v in e.values {
                s.writerIndex = n
                v.expand(request, into: s)
                let m = s.writerIndex - n
                if m == n && memcmp(s.base, s.base + n, n) == 0 {
                    s.clear()
                    return true
                }
            }
        }
        s.clear()
        return false
    }
}

/// Caddy's `vars_regexp` matcher (MatchVarsRE): true when, for any key, the variable's value
/// matches its pattern; the captures become `{re.NAME.N}`.
package struct VarsRegexpMatcher: RequestMatcher {
    let entries: [(key: VarsMatcherKey, regex: Regex, name: String)]
    package init(_ entries: [(key: String, regex: Regex, name: String)]) {
        self.entries = entries.map { (VarsMatcherKey($0.key), $0.regex, $0.name) }
    }

    package func matches(_ request: HTTPRequest) -> Bool {
        for e in entries {
            // The value is copied out of the variables first: storing the captures writes them.
            let s = ByteBuffer(capacity: 64)
            e.key.append(request, into: s)
            var matched = false
            e.regex.withCaptures { caps in
                if e.regex.match(s.readable, captures: caps) {
                    RegexCaptures.store(e.regex, e.name, s.readable, caps, request)
                    matched = true
                }
            }
            if matched { return true }
        }
        return false
    }
}

import HTTPCore
import IOCore

/// A string with placeholders, compiled once at config time and expanded per request straight
/// into a byte buffer (no String churn on the hot path).
///
/// Scanning follows Caddy's replacer (`replacer.go` replace) byte for byte: a placeholder
/// runs from `{` to the first `}` after it (skipping `\}`); `\{` and `\}` drop their
/// backslash; an unknown placeholder is kept literally (`keepUnknown`, Caddy's ReplaceKnown,
/// used for `respond` bodies and `header` values), scanning resuming right after its `{`, or
/// removed (ReplaceAll, used for most other fields). `{env.*}` and `{system.*}` are resolved at
/// compile time. Placeholders known only once set during the request (`{http.regexp.*}`,
/// `{http.error.*}`, `{http.matchers.file.*}`, cookies) are kept or removed at expansion.
package struct Template: Sendable {
    package enum Part: Sendable {
        case literal([UInt8])
        /// A placeholder and its name as written (to keep it literally when unknown).
        case placeholder(Placeholder, key: [UInt8])
    }
    /// The compiled parts.
    package let parts: [Part]
    /// The source text.
    package let source: String
    /// Unknown placeholders stay literal (ReplaceKnown) instead of becoming empty.
    package let keepUnknown: Bool

    /// True when the template is one literal (or empty): expansion is a copy.
    package var isStatic: Bool {
        parts.allSatisfy { if case .literal = $0 { return true } else { return false } }
    }

    /// Placeholder names that handlers of the server being built define per request (`map`
    /// destinations): set by the runtime builder around building a server's handlers.
    @TaskLocal package static var customNames: Set<String> = []

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
        self.keepUnknown = keepUnknown
        var parts: [Part] = []
        var lit: [UInt8] = []
        let b = Array(source.utf8)
        let n = b.count
        let open = UInt8(ascii: "{"), close = UInt8(ascii: "}"), esc = UInt8(ascii: "\\")
        func index(of c: UInt8, from: Int) -> Int? {
            var k = from
            while k < n {
                if b[k] == c { return k }
                k += 1
            }
            return nil
        }
        var lastWrite = 0
        var i = 0
        scan: while i < n {
            defer { i += 1 }
            if i > 0 && b[i - 1] == esc && (b[i] == close || b[i] == open) {
                lit += b[lastWrite..<(i - 1)]
                lastWrite = i
                continue
            }
            if b[i] != open { continue }
            guard var end = index(of: close, from: i) else { continue }
            while end > 0 && end < n - 1 && b[end - 1] == esc {
                guard let next = index(of: close, from: end + 1) else { continue scan }
                end = next
            }
            let key = Array(b[(i + 1)..<end])
            let name = String(decoding: key, as: UTF8.self)
            lit += b[lastWrite..<i]
            if let value = Placeholder.configTimeValue(name, environment: environment) {
                lit += Array(value.utf8)
            } else if let ph = Placeholder.parse(name) ?? (Template.customNames.contains(name) ? .custom(key) : nil) {
                if !lit.isEmpty {
                    parts.append(.literal(lit))
                    lit = []
                }
                parts.append(.placeholder(ph, key: key))
            } else if keepUnknown {
                lastWrite = i
                continue
            }
            i = end
            lastWrite = end + 1
        }
        if lastWrite < n { lit += b[lastWrite..<n] }
        if !lit.isEmpty { parts.append(.literal(lit)) }
        self.parts = parts
    }

    /// Appends the expansion for `request` to `out`.
    package func expand(_ request: HTTPRequest, into out: ByteBuffer, escaping: TemplateEscaping = .none) {
        for p in parts {
            switch p {
            case .literal(let b): out.append(b)
            case .placeholder(let ph, let key):
                if !Placeholder.append(ph, request, out, escaping) && keepUnknown {
                    out.append(byte: UInt8(ascii: "{"))
                    out.append(key)
                    out.append(byte: UInt8(ascii: "}"))
                }
            }
        }
    }

    /// Expansion as a String (cold paths and tests).
    package func string(for request: HTTPRequest) -> String {
        let b = ByteBuffer(capacity: 256)
        expand(request, into: b)
        return String(decoding: b.readable, as: UTF8.self)
    }
}

extension Template {
    /// ASCII case-insensitive comparison of field-name bytes with `name`.
    static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ name: String) -> Bool {
        var i = 0
        for b in name.utf8 {
            guard i < a.count else { return false }
            var x = a[i], y = b
            if x >= 0x41 && x <= 0x5A { x |= 0x20 }
            if y >= 0x41 && y <= 0x5A { y |= 0x20 }
            if x != y { return false }
            i += 1
        }
        return i == a.count
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

/// Go's `path/filepath` functions on Unix (`Clean`, `Join`, `Dir`, `Split`, `Match`), so that
/// `import` resolves paths and globs exactly like Caddy.
package enum GoPath {
    /// The error text of Go's `filepath.ErrBadPattern`.
    package static let badPattern = "syntax error in pattern"

    /// Whether `path` is absolute.
    package static func isAbs(_ path: String) -> Bool {
        path.utf8.first == UInt8(ascii: "/")
    }

    /// Lexical cleaning: collapses `//`, removes `.` and resolves `..`; `""` becomes `"."`.
    package static func clean(_ path: String) -> String {
        let bytes = Array(path.utf8)
        if bytes.isEmpty { return "." }
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        let rooted = bytes[0] == slash
        let n = bytes.count
        var out: [UInt8] = []
        var r = 0
        var dotdot = 0
        if rooted {
            out.append(slash)
            r = 1
            dotdot = 1
        }
        func at(_ i: Int) -> UInt8? { i < n ? bytes[i] : nil }
        while r < n {
            if bytes[r] == slash {
                r += 1
            } else if bytes[r] == dot && (r + 1 == n || at(r + 1) == slash) {
                r += 1
            } else if bytes[r] == dot && at(r + 1) == dot && (r + 2 == n || at(r + 2) == slash) {
                r += 2
                if out.count > dotdot {
                    // Drop the last element and the separator before it.
                    var removed = out.removeLast()
                    while out.count > dotdot && removed != slash { removed = out.removeLast() }
                } else if !rooted {
                    if !out.isEmpty { out.append(slash) }
                    out.append(dot)
                    out.append(dot)
                    dotdot = out.count
                }
            } else {
                if (rooted && out.count != 1) || (!rooted && !out.isEmpty) { out.append(slash) }
                while r < n && bytes[r] != slash {
                    out.append(bytes[r])
                    r += 1
                }
            }
        }
        if out.isEmpty { return "." }
        return String(decoding: out, as: UTF8.self)
    }

    /// Joins non-empty elements with `/` and cleans the result (`""` if all are empty).
    package static func join(_ elements: String...) -> String {
        let parts = elements.filter { !$0.isEmpty }
        if parts.isEmpty { return "" }
        return clean(parts.joined(separator: "/"))
    }

    /// Everything but the last element, cleaned.
    package static func dir(_ path: String) -> String {
        let (d, _) = split(path)
        return clean(d)
    }

    /// Splits after the last `/`: `("a/b/", "c")`.
    package static func split(_ path: String) -> (dir: String, file: String) {
        let bytes = Array(path.utf8)
        guard let i = bytes.lastIndex(of: UInt8(ascii: "/")) else { return ("", path) }
        return (
            String(decoding: bytes[...i], as: UTF8.self),
            String(decoding: bytes[(i + 1)...], as: UTF8.self)
        )
    }

    /// Whether `path` has glob metacharacters (`*?[\`).
    package static func hasMeta(_ path: String) -> Bool {
        path.utf8.contains {
            $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "\\")
        }
    }

    /// Go's `filepath.Match`: `*` (not across `/`), `?`, `[a-z]`, `[^x]`, `\` escapes.
    /// Throws ``badPattern`` for a malformed pattern.
    package static func match(_ pattern: String, _ name: String) throws(GoPathError) -> Bool {
        var pattern = Array(pattern.utf8)[...]
        var name = Array(name.utf8)[...]
        patternLoop: while !pattern.isEmpty {
            let (star, chunk, rest) = scanChunk(pattern)
            pattern = rest
            if star && chunk.isEmpty {
                return !name.contains(UInt8(ascii: "/"))
            }
            let (t, ok) = try matchChunk(chunk, name)
            if ok && (t.isEmpty || !pattern.isEmpty) {
                name = t
                continue
            }
            if star {
                var i = name.startIndex
                while i < name.endIndex && name[i] != UInt8(ascii: "/") {
                    let (t2, ok2) = try matchChunk(chunk, name[(i + 1)...])
                    if ok2 {
                        if pattern.isEmpty && !t2.isEmpty {
                            i += 1
                            continue
                        }
                        name = t2
                        continue patternLoop
                    }
                    i += 1
                }
            }
            return false
        }
        return name.isEmpty
    }

    private static func scanChunk(_ pattern: ArraySlice<UInt8>)
        -> (star: Bool, chunk: ArraySlice<UInt8>, rest: ArraySlice<UInt8>)
    {
        var p = pattern
        var star = false
        while p.first == UInt8(ascii: "*") {
            p = p.dropFirst()
            star = true
        }
        var inRange = false
        var i = p.startIndex
        scan: while i < p.endIndex {
            switch p[i] {
            case UInt8(ascii: "\\"):
                if i + 1 < p.endIndex { i += 1 }
            case UInt8(ascii: "["):
                inRange = true
            case UInt8(ascii: "]"):
                inRange = false
            case UInt8(ascii: "*"):
                if !inRange { break scan }
            default:
                break
            }
            i += 1
        }
        return (star, p[p.startIndex..<i], p[i...])
    }

    private static func matchChunk(_ chunkIn: ArraySlice<UInt8>, _ sIn: ArraySlice<UInt8>)
        throws(GoPathError) -> (rest: ArraySlice<UInt8>, ok: Bool)
    {
        var chunk = chunkIn
        var s = sIn
        var failed = false
        while let c = chunk.first {
            if !failed && s.isEmpty { failed = true }
            switch c {
            case UInt8(ascii: "["):
                var r: UInt32 = 0
                if !failed {
                    let (scalar, size) = Runes.decodeOne(Array(s), at: 0)
                    r = scalar.value
                    s = s.dropFirst(size)
                }
                chunk = chunk.dropFirst()
                var negated = false
                if chunk.first == UInt8(ascii: "^") {
                    negated = true
                    chunk = chunk.dropFirst()
                }
                var matched = false
                var ranges = 0
                while true {
                    if chunk.first == UInt8(ascii: "]") && ranges > 0 {
                        chunk = chunk.dropFirst()
                        break
                    }
                    let lo = try getEscape(&chunk)
                    var hi = lo
                    if chunk.first == UInt8(ascii: "-") {
                        chunk = chunk.dropFirst()
                        hi = try getEscape(&chunk)
                    }
                    if lo <= r && r <= hi { matched = true }
                    ranges += 1
                }
                if matched == negated { failed = true }
            case UInt8(ascii: "?"):
                if !failed {
                    if s.first == UInt8(ascii: "/") { failed = true }
                    let (_, size) = Runes.decodeOne(Array(s), at: 0)
                    s = s.dropFirst(size)
                }
                chunk = chunk.dropFirst()
            default:
                if c == UInt8(ascii: "\\") {
                    chunk = chunk.dropFirst()
                    if chunk.isEmpty { throw GoPathError.badPattern }
                }
                if !failed {
                    if chunk.first != s.first { failed = true }
                    s = s.dropFirst()
                }
                chunk = chunk.dropFirst()
            }
        }
        if failed { return (s[s.endIndex...], false) }
        return (s, true)
    }

    private static func getEscape(_ chunk: inout ArraySlice<UInt8>) throws(GoPathError) -> UInt32 {
        guard let first = chunk.first, first != UInt8(ascii: "-"), first != UInt8(ascii: "]") else {
            throw GoPathError.badPattern
        }
        if first == UInt8(ascii: "\\") {
            chunk = chunk.dropFirst()
            if chunk.isEmpty { throw GoPathError.badPattern }
        }
        let (scalar, size) = Runes.decodeOne(Array(chunk), at: 0)
        var bad = scalar.value == 0xFFFD && size == 1
        chunk = chunk.dropFirst(size)
        if chunk.isEmpty { bad = true }
        if bad { throw GoPathError.badPattern }
        return scalar.value
    }
}

/// Errors of ``GoPath``.
package enum GoPathError: Error, Sendable, CustomStringConvertible {
    /// Go's `filepath.ErrBadPattern`.
    case badPattern

    /// `syntax error in pattern`.
    package var description: String { GoPath.badPattern }
}

import HTTPCore
import IOCore

/// Matches when any of several matcher sets matches (Caddy's list of `match` objects).
package struct AnyOfMatcher: RequestMatcher {
    package let sets: [[any RequestMatcher]]
    package init(sets: [[any RequestMatcher]]) { self.sets = sets }
    package func matches(_ request: HTTPRequest) -> Bool {
        sets.contains { set in set.allSatisfy { $0.matches(request) } }
    }
}

/// Caddy's path matcher: case-insensitive; exact unless the pattern has `*` (prefix `/a*`,
/// suffix `*.txt`, substring `*x*`, otherwise a glob; a `?` also makes a glob). Matched against
/// the decoded path after `CleanPath` (slashes merged unless the pattern contains `//`).
package struct PathMatcher: RequestMatcher {
    enum Kind: Sendable { case exact, prefix, suffix, contains, glob }
    struct Pattern: Sendable {
        let kind: Kind
        let bytes: [UInt8]
        /// Caddy merges `//` in the request path unless the pattern has `//` itself.
        let mergeSlashes: Bool
    }
    let patterns: [Pattern]

    package init(_ paths: [String]) {
        patterns = paths.map { p in
            let lower = Array(p.lowercased().utf8)
            let merge = !p.contains("//")
            let star = UInt8(ascii: "*")
            let stars = lower.filter { $0 == star }.count
            if stars == 0 {
                // Caddy uses path.Match here, so `?` is still a wildcard.
                return Pattern(kind: lower.contains(UInt8(ascii: "?")) ? .glob : .exact, bytes: lower, mergeSlashes: merge)
            }
            if stars == 1, lower.last == star { return Pattern(kind: .prefix, bytes: Array(lower.dropLast()), mergeSlashes: merge) }
            if stars == 1, lower.first == star { return Pattern(kind: .suffix, bytes: Array(lower.dropFirst()), mergeSlashes: merge) }
            if stars == 2, lower.first == star, lower.last == star, lower.count >= 2 {
                return Pattern(kind: .contains, bytes: Array(lower.dropFirst().dropLast()), mergeSlashes: merge)
            }
            return Pattern(kind: .glob, bytes: lower, mergeSlashes: merge)
        }
    }

    package func matches(_ request: HTTPRequest) -> Bool {
        // Decoded (and, when needed, cleaned) into the request's scratch buffer: no allocation
        // per request except for slash-preserving patterns on paths that need cleaning.
        let s = request.scratch
        s.clear()
        request.withLineBytes(request.pathRange) { URLDecoding.appendDecodedPath($0, into: s) }
        let dn = s.writerIndex
        if !CleanPath.needsCleaning(UnsafeRawBufferPointer(start: s.base, count: dn)) {
            let decoded = UnsafeRawBufferPointer(start: s.base, count: dn)
            for p in patterns where PathMatcher.match(p, decoded) { return true }
            return false
        }
        s.reserveWritable(dn + 4)  // cleaning writes at most dn + 2 bytes: the input cannot move
        CleanPath.clean(UnsafeRawBufferPointer(start: s.base, count: dn), mergeSlashes: true, into: s)
        let merged = UnsafeRawBufferPointer(start: s.base + dn, count: s.writerIndex - dn)
        var unmerged: ByteBuffer? = nil
        for p in patterns {
            if p.mergeSlashes {
                if PathMatcher.match(p, merged) { return true }
                continue
            }
            if unmerged == nil {
                let u = ByteBuffer(capacity: dn + 2)
                CleanPath.clean(UnsafeRawBufferPointer(start: s.base, count: dn), mergeSlashes: false, into: u)
                unmerged = u
            }
            if PathMatcher.match(p, unmerged!.readable) { return true }
        }
        return false
    }

    static func lowerEq(_ a: UInt8, _ b: UInt8) -> Bool {
        var x = a
        if x >= 0x41 && x <= 0x5A { x |= 0x20 }
        return x == b
    }

    static func match(_ p: Pattern, _ path: UnsafeRawBufferPointer) -> Bool {
        let pb = p.bytes
        switch p.kind {
        case .exact:
            guard pb.count == path.count else { return false }
            for i in 0..<pb.count where !lowerEq(path[i], pb[i]) { return false }
            return true
        case .prefix:
            guard path.count >= pb.count else { return false }
            for i in 0..<pb.count where !lowerEq(path[i], pb[i]) { return false }
            return true
        case .suffix:
            guard path.count >= pb.count else { return false }
            let off = path.count - pb.count
            for i in 0..<pb.count where !lowerEq(path[off + i], pb[i]) { return false }
            return true
        case .contains:
            if pb.isEmpty { return true }
            guard path.count >= pb.count else { return false }
            for s in 0...(path.count - pb.count) {
                var ok = true
                for i in 0..<pb.count where !lowerEq(path[s + i], pb[i]) { ok = false; break }
                if ok { return true }
            }
            return false
        case .glob:
            return glob(pb, 0, path, 0)
        }
    }

    /// `*` matches any run of non-`/` bytes, `?` one non-`/` byte (Go's path.Match, minus classes).
    static func glob(_ p: [UInt8], _ pi: Int, _ s: UnsafeRawBufferPointer, _ si: Int) -> Bool {
        if pi == p.count { return si == s.count }
        if p[pi] == UInt8(ascii: "*") {
            var k = si
            while true {
                if glob(p, pi + 1, s, k) { return true }
                if k == s.count || s[k] == UInt8(ascii: "/") { return false }
                k += 1
            }
        }
        guard si < s.count else { return false }
        if p[pi] == UInt8(ascii: "?") { return s[si] != UInt8(ascii: "/") && glob(p, pi + 1, s, si + 1) }
        return lowerEq(s[si], p[pi]) && glob(p, pi + 1, s, si + 1)
    }
}

import IOCore

/// Caddy's `CleanPath` (modules/caddyhttp/caddyhttp.go): Go's `path.Clean` that keeps a
/// trailing slash, optionally keeping empty segments (`//`) when the matcher pattern itself
/// contains `//`. Path matchers compare against the cleaned path so `/a/../secret` or
/// `//secret` cannot slip past a `/secret*` matcher (Caddy #4407).
enum CleanPath {
    /// True when cleaning can change `p` (`//`, or a `.`/`..` segment); most paths skip the work.
    static func needsCleaning(_ p: UnsafeRawBufferPointer) -> Bool {
        let n = p.count
        var i = 0
        while i < n {
            if p[i] == UInt8(ascii: "/") && i + 1 < n {
                let c = p[i + 1]
                if c == UInt8(ascii: "/") { return true }
                if c == UInt8(ascii: ".") {
                    // "/." or "/.." followed by "/" or the end.
                    if i + 2 == n || p[i + 2] == UInt8(ascii: "/") { return true }
                    if p[i + 2] == UInt8(ascii: "."), i + 3 == n || p[i + 3] == UInt8(ascii: "/") { return true }
                }
            }
            i += 1
        }
        // Relative forms ("", "./a", "../a") are cleaned too.
        return n == 0 || p[0] == UInt8(ascii: ".")
    }

    /// Appends the cleaned form of `p` to `out`.
    static func clean(_ p: UnsafeRawBufferPointer, mergeSlashes: Bool, into out: ByteBuffer) {
        if mergeSlashes {
            let start = out.writerIndex
            goClean(p, into: out)
            keepTrailingSlash(p, out, start)
            return
        }
        // Mark each empty segment with an impossible byte so Clean keeps it, then drop the marks.
        let marked = ByteBuffer(capacity: p.count * 2 + 1)
        for i in 0..<p.count {
            if p[i] == UInt8(ascii: "/") && i > 0 && p[i - 1] == UInt8(ascii: "/") { marked.append(byte: 0xFF) }
            marked.append(byte: p[i])
        }
        let cleaned = ByteBuffer(capacity: marked.readableBytes + 1)
        goClean(marked.readable, into: cleaned)
        keepTrailingSlash(marked.readable, cleaned, 0)
        for b in cleaned.readable where b != 0xFF { out.append(byte: b) }
    }

    /// Caddy's cleanPath: `path.Clean`, plus the trailing slash back unless the result is `/`.
    private static func keepTrailingSlash(_ p: UnsafeRawBufferPointer, _ out: ByteBuffer, _ start: Int) {
        let n = out.writerIndex - start
        let isRoot = n == 1 && out.base[start] == UInt8(ascii: "/")
        if !isRoot, p.last == UInt8(ascii: "/") { out.append(byte: UInt8(ascii: "/")) }
    }

    /// Go's `path.Clean` (lexical: merge slashes, drop `.`, resolve `..`), appended to `out`.
    static func goClean(_ p: UnsafeRawBufferPointer, into out: ByteBuffer) {
        let n = p.count
        if n == 0 {
            out.append(byte: UInt8(ascii: "."))
            return
        }
        out.reserveWritable(n + 1)
        let start = out.writerIndex
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        let rooted = p[0] == slash
        var w = 0  // bytes written after `start`
        @inline(__always) func put(_ b: UInt8) { out.base[start + w] = b; w += 1 }
        var r = 0, dotdot = 0
        if rooted {
            put(slash)
            r = 1
            dotdot = 1
        }
        while r < n {
            if p[r] == slash {
                r += 1  // empty element
            } else if p[r] == dot && (r + 1 == n || p[r + 1] == slash) {
                r += 1  // "."
            } else if p[r] == dot && p[r + 1] == dot && (r + 2 == n || p[r + 2] == slash) {
                r += 2  // ".."
                if w > dotdot {
                    w -= 1
                    while w > dotdot && out.base[start + w] != slash { w -= 1 }
                } else if !rooted {
                    if w > 0 { put(slash) }
                    put(dot)
                    put(dot)
                    dotdot = w
                }
            } else {
                if (rooted && w != 1) || (!rooted && w != 0) { put(slash) }
                while r < n && p[r] != slash {
                    put(p[r])
                    r += 1
                }
            }
        }
        if w == 0 { put(dot) }
        out.commit(w)
    }
}

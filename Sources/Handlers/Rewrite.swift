import HTTPCore
import IOCore

/// Caddy's `rewrite` handler (`rewrite/rewrite.go`), behind the `rewrite`, `uri`, `method`,
/// `try_files` and `handle_path` directives: changes the request target (or method) in place
/// and lets the chain continue. The new target is always what Go's `URL.RequestURI()` would
/// give (escaped path, `?query` when the query is not empty), so `{uri}`, `{path}` and later
/// matchers see exactly what Caddy's would.
package final class RewriteHandler: Handler {
    /// `rewrite <to>`: the target template split like Caddy does, before placeholders.
    package struct URI: Sendable {
        /// Path part (nil when the template has no path: `?a=b` changes only the query).
        let path: Template?
        /// Query components and whether each sits in a key position (nil: no `?` in the
        /// template, the query is kept).
        let query: [(Template, key: Bool, ampNext: Bool)]?

        package init(_ to: String) {
            let b = Array(to.utf8)
            var pathStart = -1, pathEnd = -1, qsStart = -1, qsEnd = -1
            for (i, c) in b.enumerated() {
                if c == UInt8(ascii: "?") && qsStart < 0 {
                    pathEnd = i
                    qsStart = i + 1
                } else if c == UInt8(ascii: "#") {
                    if qsStart < 0 { pathEnd = i } else { qsEnd = i }
                    break
                } else if pathStart < 0 && qsStart < 0 {
                    pathStart = i
                }
            }
            if pathStart >= 0 && pathEnd < 0 { pathEnd = b.count }
            if qsStart >= 0 && qsEnd < 0 { qsEnd = b.count }
            path = pathStart >= 0 ? Template(String(decoding: b[pathStart..<pathEnd], as: UTF8.self), keepUnknown: false) : nil
            if qsStart >= 0 {
                query = URI.components(Array(b[qsStart..<qsEnd]))
            } else {
                query = nil
            }
        }

        /// Caddy's buildQueryString splitting: components end at the next `&` or `=`.
        static func components(_ q: [UInt8]) -> [(Template, key: Bool, ampNext: Bool)] {
            var out: [(Template, key: Bool, ampNext: Bool)] = []
            var rest = q[...]
            var wroteVal = true
            while !rest.isEmpty {
                let eq = rest.firstIndex(of: UInt8(ascii: "=")), amp = rest.firstIndex(of: UInt8(ascii: "&"))
                let ampIsNext = amp != nil && (eq == nil || amp! < eq!)
                var end = rest.endIndex
                if ampIsNext { end = amp! } else if let e = eq { end = e }
                out.append((Template(String(decoding: rest[rest.startIndex..<end], as: UTF8.self), keepUnknown: false), key: wroteVal, ampNext: ampIsNext))
                rest = end < rest.endIndex ? rest[(end + 1)...] : rest[rest.endIndex...]
                wroteVal = ampIsNext
            }
            return out
        }
    }

    package enum Op: Sendable {
        case uri(URI)
        case stripPrefix(Template)
        case stripSuffix(Template)
        /// `uri replace <find> <replace> [<limit>]` (limit 0 = all).
        case replace(find: Template, replace: Template, limit: Int, mergeSlashes: Bool)
        /// `uri path_regexp <regexp> <replace>`.
        case pathRegexp(Regex, Template)
    }

    let method: Template?
    let ops: [Op]

    package init(method: Template? = nil, ops: [Op]) {
        self.method = method
        self.ops = ops
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        let scratch = response.scratch
        if let m = method {
            scratch.clear()
            m.expand(request, into: scratch)
            let w = Placeholder.written(scratch, 0)
            for k in w.indices where w[k] >= 0x61 && w[k] <= 0x7A { w[k] -= 0x20 }
            request.setMethod(scratch.readable)
        }
        for op in ops {
            scratch.clear()
            apply(op, request, scratch)
        }
        scratch.clear()
        return .next
    }

    func apply(_ op: Op, _ r: HTTPRequest, _ scratch: ByteBuffer) {
        switch op {
        case .uri(let u):
            rewriteURI(u, r, scratch)
        case .stripPrefix(let t):
            t.expand(r, into: scratch)
            if scratch.readableBytes == 0 || scratch.base[0] != UInt8(ascii: "/") {
                // Caddy prepends a slash to a prefix without one.
                Placeholder.reencode(scratch, from: 0) { p in
                    scratch.append(byte: UInt8(ascii: "/"))
                    scratch.append(p)
                }
            }
            let prefixLen = scratch.writerIndex
            let merge = !RewriteHandler.containsDoubleSlash(UnsafeRawBufferPointer(start: scratch.base, count: prefixLen))
            changePath(r, scratch, stage: prefixLen) { escaped, out in
                let cleanMark = out.writerIndex
                CleanPath.clean(escaped, mergeSlashes: merge, into: out)
                RewriteHandler.withCopy(out, from: cleanMark) { c in
                    let prefix = UnsafeRawBufferPointer(start: out.base, count: prefixLen)
                    let cut = RewriteHandler.trimPathPrefix(c, prefix)
                    // Caddy 2.11 keeps the result rooted: `/sp` stripped from `/spx` is `/x` [obs].
                    if cut == c.count || c[cut] != UInt8(ascii: "/") { out.append(byte: UInt8(ascii: "/")) }
                    out.append(UnsafeRawBufferPointer(rebasing: c[cut...]))
                }
            }
        case .stripSuffix(let t):
            t.expand(r, into: scratch)
            let suffixLen = scratch.writerIndex
            let merge = !RewriteHandler.containsDoubleSlash(UnsafeRawBufferPointer(start: scratch.base, count: suffixLen))
            changePath(r, scratch, stage: suffixLen) { escaped, out in
                let cleanMark = out.writerIndex
                CleanPath.clean(escaped, mergeSlashes: merge, into: out)
                RewriteHandler.withCopy(out, from: cleanMark) { c in
                    let suffix = UnsafeRawBufferPointer(start: out.base, count: suffixLen)
                    var n = c.count
                    if suffix.count <= c.count {
                        var hit = true
                        for k in 0..<suffix.count where !RewriteHandler.foldEq(c[c.count - suffix.count + k], suffix[k]) {
                            hit = false
                            break
                        }
                        if hit { n -= suffix.count }
                    }
                    out.append(UnsafeRawBufferPointer(rebasing: c[0..<n]))
                }
            }
        case .replace(let find, let repl, let limit, let merge):
            find.expand(r, into: scratch)
            let findLen = scratch.writerIndex
            if findLen == 0 { return }
            repl.expand(r, into: scratch)
            let replEnd = scratch.writerIndex
            changePath(r, scratch, stage: replEnd) { escaped, out in
                let cleanMark = out.writerIndex
                CleanPath.clean(escaped, mergeSlashes: merge, into: out)
                RewriteHandler.withCopy(out, from: cleanMark) { c in
                    // `out` may move while the result is appended: copy find/replace first.
                    RewriteHandler.withCopy(out, range: 0..<replEnd) { fr in
                        RewriteHandler.replace(c, UnsafeRawBufferPointer(rebasing: fr[0..<findLen]),
                                               UnsafeRawBufferPointer(rebasing: fr[findLen..<replEnd]), limit, into: out)
                    }
                }
            }
            // The raw query gets the same replacement.
            if let q = r.queryRange {
                scratch.writerIndex = replEnd
                r.withLineBytes(r.pathRange) { scratch.append($0) }
                let pathEnd = scratch.writerIndex
                r.withLineBytes(q) { qb in
                    RewriteHandler.withCopy(scratch, range: 0..<replEnd) { fr in
                        RewriteHandler.replace(qb, UnsafeRawBufferPointer(rebasing: fr[0..<findLen]),
                                               UnsafeRawBufferPointer(rebasing: fr[findLen..<replEnd]), limit, into: scratch)
                    }
                }
                setTarget(r, scratch, path: replEnd..<pathEnd, query: pathEnd..<scratch.writerIndex)
            }
        case .pathRegexp(let re, let repl):
            repl.expand(r, into: scratch)
            let replLen = scratch.writerIndex
            changePath(r, scratch, stage: replLen) { escaped, out in
                RewriteHandler.withCopy(out, range: 0..<replLen) { rp in
                    re.replaceAll(escaped, with: rp, into: out)
                }
            }
        }
    }

    /// Sets the target from two ranges of `scratch` (never from `line` itself).
    func setTarget(_ r: HTTPRequest, _ scratch: ByteBuffer, path: Range<Int>, query: Range<Int>?) {
        let p = UnsafeRawBufferPointer(start: scratch.base + path.lowerBound, count: path.count)
        let q = query.map { UnsafeRawBufferPointer(start: scratch.base + $0.lowerBound, count: $0.count) }
        r.setTarget(path: p, query: q)
    }

    // MARK: - helpers

    @inline(__always) static func foldEq(_ a: UInt8, _ b: UInt8) -> Bool {
        var x = a, y = b
        if x >= 0x41 && x <= 0x5A { x |= 0x20 }
        if y >= 0x41 && y <= 0x5A { y |= 0x20 }
        return x == y
    }

    static func containsDoubleSlash(_ b: UnsafeRawBufferPointer) -> Bool {
        guard b.count >= 2 else { return false }
        for i in 1..<b.count where b[i] == UInt8(ascii: "/") && b[i - 1] == UInt8(ascii: "/") { return true }
        return false
    }

    /// Calls `body` with a stack copy of what was written to `buf` after `mark`, and truncates
    /// `buf` to `mark` first (so `body` may append to it).
    static func withCopy<R>(_ buf: ByteBuffer, from mark: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let n = buf.writerIndex - mark
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(n, 1)) { tmp in
            for k in 0..<n { tmp[k] = buf.base[mark + k] }
            buf.writerIndex = mark
            return body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[0..<n])))
        }
    }

    /// Calls `body` with a stack copy of `range` of `buf` (left in place).
    static func withCopy<R>(_ buf: ByteBuffer, range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(range.count, 1)) { tmp in
            for k in 0..<range.count { tmp[k] = buf.base[range.lowerBound + k] }
            return body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[0..<range.count])))
        }
    }

    /// Caddy's trimPathPrefix: the index in `escaped` after `prefix`, comparing
    /// case-insensitively and decoding `%XX` in the path; 0 when the prefix does not match.
    static func trimPathPrefix(_ escaped: UnsafeRawBufferPointer, _ prefix: UnsafeRawBufferPointer) -> Int {
        var iPath = 0, iPrefix = 0
        while iPath < escaped.count && iPrefix < prefix.count {
            let pc = prefix[iPrefix]
            var c = escaped[iPath]
            if c == UInt8(ascii: "%") && pc != UInt8(ascii: "%") && escaped.count >= iPath + 3 {
                guard let h = URLDecoding.hex(escaped[iPath + 1]), let l = URLDecoding.hex(escaped[iPath + 2]) else { return 0 }
                c = h << 4 | l
                iPath += 2
            }
            if !foldEq(c, pc) { return 0 }
            iPath += 1
            iPrefix += 1
        }
        return iPrefix >= prefix.count ? iPath : 0
    }

    /// Go's `strings.Replace(s, find, repl, n)` with n ≤ 0 meaning all.
    static func replace(_ s: UnsafeRawBufferPointer, _ find: UnsafeRawBufferPointer, _ repl: UnsafeRawBufferPointer, _ limit: Int,
                        into out: ByteBuffer) {
        var i = 0, last = 0, done = 0
        while i + find.count <= s.count && (limit <= 0 || done < limit) {
            var hit = true
            for k in 0..<find.count where s[i + k] != find[k] { hit = false; break }
            if hit {
                out.append(UnsafeRawBufferPointer(rebasing: s[last..<i]))
                out.append(repl)
                i += find.count
                last = i
                done += 1
            } else {
                i += 1
            }
        }
        out.append(UnsafeRawBufferPointer(rebasing: s[last..<s.count]))
    }

    /// Caddy's changePath: `transform` gets the escaped path and writes the new raw path; the
    /// target becomes that raw path when it is a valid encoding, else the canonical escaping of
    /// its decoding (Go's `EscapedPath`). `stage` is where `scratch` is free to use.
    func changePath(_ r: HTTPRequest, _ scratch: ByteBuffer, stage: Int,
                    _ transform: (UnsafeRawBufferPointer, ByteBuffer) -> Void) {
        scratch.writerIndex = stage
        r.withLineBytes(r.pathRange) { scratch.append($0) }
        RewriteHandler.withCopy(scratch, from: stage) { escaped in transform(escaped, scratch) }
        RewriteHandler.withCopy(scratch, from: stage) { raw in RewriteHandler.escapedPath(fromRaw: raw, into: scratch) }
        let pathEnd = scratch.writerIndex
        if let q = r.queryRange {
            r.withLineBytes(q) { scratch.append($0) }
            setTarget(r, scratch, path: stage..<pathEnd, query: pathEnd..<scratch.writerIndex)
        } else {
            setTarget(r, scratch, path: stage..<pathEnd, query: nil)
        }
    }

    /// `EscapedPath` of a URL whose RawPath is `raw`: `raw` when valid, else escape(unescape).
    static func escapedPath(fromRaw raw: UnsafeRawBufferPointer, into out: ByteBuffer) {
        if URLEscaping.isValidEncodedPath(raw) {
            out.append(raw)
            return
        }
        let mark = out.writerIndex
        if !URLEscaping.appendPathUnescaped(raw, into: out) { out.append(raw) }
        Placeholder.reencode(out, from: mark) { URLEscaping.appendEscapedPath($0, into: out) }
    }

    /// The `rewrite <uri>` step (Caddy's Rewrite.URI handling), in regions of `scratch`:
    /// expanded path template, then the new query, then the final escaped path.
    func rewriteURI(_ u: URI, _ r: HTTPRequest, _ scratch: ByteBuffer) {
        let (path, query) = RewriteHandler.buildURI(u, r, scratch)
        setTarget(r, scratch, path: path, query: query)
    }

    /// Builds the target `rewrite <uri>` gives `r` in `scratch` (which must start empty) and
    /// returns where its escaped path and raw query are (the request is not changed).
    static func buildURI(_ u: URI, _ r: HTTPRequest, _ scratch: ByteBuffer) -> (path: Range<Int>, query: Range<Int>?) {
        var pathRange: Range<Int>? = nil
        var injected: Range<Int>? = nil
        if let pt = u.path {
            pt.expand(r, into: scratch, escaping: .path)
            let end = scratch.writerIndex
            var q = end
            for i in 0..<end where scratch.base[i] == UInt8(ascii: "?") { q = i; break }
            pathRange = 0..<q
            if q < end { injected = (q + 1)..<end }
        }
        var queryRange: Range<Int>? = nil
        if let comps = u.query {
            let start = scratch.writerIndex
            if comps.isEmpty, let inj = injected {
                // The query came from a placeholder in the path; braces in it are not
                // placeholders. Rare: this path compiles the components per request.
                var esc: [UInt8] = []
                for i in inj {
                    let c = scratch.base[i]
                    if c == UInt8(ascii: "{") { esc += Array("%7B".utf8) } else if c == UInt8(ascii: "}") { esc += Array("%7D".utf8) } else { esc.append(c) }
                }
                RewriteHandler.buildQuery(URI.components(esc), r, scratch)
            } else {
                RewriteHandler.buildQuery(comps, r, scratch)
            }
            queryRange = start..<scratch.writerIndex
        }
        let finalStart = scratch.writerIndex
        if let pr = pathRange {
            // URL.Path = PathUnescape(newPath) (or newPath when malformed); RawPath = "".
            RewriteHandler.withCopy(scratch, range: pr) { raw in
                if !URLEscaping.appendPathUnescaped(raw, into: scratch) { scratch.append(raw) }
            }
            Placeholder.reencode(scratch, from: finalStart) { URLEscaping.appendEscapedPath($0, into: scratch) }
        } else {
            r.withLineBytes(r.pathRange) { scratch.append($0) }
        }
        let finalEnd = scratch.writerIndex
        if queryRange == nil, let q = r.queryRange {
            r.withLineBytes(q) { scratch.append($0) }
            queryRange = finalEnd..<scratch.writerIndex
        }
        return (finalStart..<finalEnd, queryRange)
    }

    /// Caddy's buildQueryString, appended to `scratch`.
    static func buildQuery(_ comps: [(Template, key: Bool, ampNext: Bool)], _ r: HTTPRequest, _ scratch: ByteBuffer) {
        let start = scratch.writerIndex
        for (t, key, _) in comps {
            let mark = scratch.writerIndex
            if key {
                t.expand(r, into: scratch, escaping: .queryKey)
                let compLen = scratch.writerIndex - mark
                if mark > start && compLen > 0 {
                    Placeholder.reencode(scratch, from: mark) { c in
                        scratch.append(byte: UInt8(ascii: "&"))
                        scratch.append(c)
                    }
                }
            } else {
                scratch.append(byte: UInt8(ascii: "="))
                t.expand(r, into: scratch, escaping: .queryValue)
            }
        }
    }
}

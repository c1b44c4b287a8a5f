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
            let prefixMark = scratch.writerIndex
            if scratch.readableBytes == 0 || scratch.base[0] != UInt8(ascii: "/") {
                // Caddy prepends a slash to a prefix without one.
                Placeholder.reencode(scratch, from: 0) { p in
                    scratch.append(byte: UInt8(ascii: "/"))
                    scratch.append(p)
                }
            }
            let prefixLen = scratch.writerIndex
            _ = prefixMark
            changePath(r, scratch, stage: prefixLen) { escaped, out in
                let prefix = UnsafeRawBufferPointer(start: scratch.base, count: prefixLen)
                let merge = !RewriteHandler.containsDoubleSlash(prefix)
                let cleanMark = out.writerIndex
                CleanPath.clean(escaped, mergeSlashes: merge, into: out)
                let cleaned = RewriteHandler.copyOut(out, cleanMark)
                cleaned.withUnsafeBufferPointer { cb in
                    let c = UnsafeRawBufferPointer(cb)
                    out.append(UnsafeRawBufferPointer(rebasing: c[RewriteHandler.trimPathPrefix(c, prefix)...]))
                }
            }
        case .stripSuffix(let t):
            t.expand(r, into: scratch)
            let suffixLen = scratch.writerIndex
            changePath(r, scratch, stage: suffixLen) { escaped, out in
                let suffix = UnsafeRawBufferPointer(start: scratch.base, count: suffixLen)
                let merge = !RewriteHandler.containsDoubleSlash(suffix)
                let cleanMark = out.writerIndex
                CleanPath.clean(escaped, mergeSlashes: merge, into: out)
                let cleaned = RewriteHandler.copyOut(out, cleanMark)
                cleaned.withUnsafeBufferPointer { cb in
                    let c = UnsafeRawBufferPointer(cb)
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
            repl.expand(r, into: scratch)
            let replEnd = scratch.writerIndex
            let stage = replEnd
            // The query is replaced too (on its raw bytes).
            let f = UnsafeRawBufferPointer(start: scratch.base, count: findLen)
            if findLen == 0 { return }
            changePath(r, scratch, stage: stage) { escaped, out in
                let f = UnsafeRawBufferPointer(start: scratch.base, count: findLen)
                let rp = UnsafeRawBufferPointer(start: scratch.base + findLen, count: replEnd - findLen)
                let cleanMark = out.writerIndex
                CleanPath.clean(escaped, mergeSlashes: merge, into: out)
                let cleaned = RewriteHandler.copyOut(out, cleanMark)
                cleaned.withUnsafeBufferPointer { cb in
                    RewriteHandler.replace(UnsafeRawBufferPointer(cb), f, rp, limit, into: out)
                }
            }
            _ = f
            if let q = r.queryRange {
                scratch.writerIndex = replEnd
                let qMark = scratch.writerIndex
                r.withLineBytes(q) { qb in
                    RewriteHandler.replace(qb, UnsafeRawBufferPointer(start: scratch.base, count: findLen),
                                           UnsafeRawBufferPointer(start: scratch.base + findLen, count: replEnd - findLen), limit, into: scratch)
                }
                let newQuery = RewriteHandler.copyOut(scratch, qMark)
                scratch.clear()
                r.withLineBytes(r.pathRange) { scratch.append($0) }
                let p = RewriteHandler.copyOut(scratch, 0)
                p.withUnsafeBytes { pb in newQuery.withUnsafeBytes { qb in r.setTarget(path: pb, query: qb) } }
            }
        case .pathRegexp(let re, let repl):
            repl.expand(r, into: scratch)
            let replLen = scratch.writerIndex
            changePath(r, scratch, stage: replLen) { escaped, out in
                re.replaceAll(escaped, with: UnsafeRawBufferPointer(start: scratch.base, count: replLen), into: out)
            }
        }
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

    /// Copies what was written after `mark` out of `buf` (cold-ish: a small array) and
    /// truncates `buf` to `mark`.
    static func copyOut(_ buf: ByteBuffer, _ mark: Int) -> [UInt8] {
        let a = Array(UnsafeRawBufferPointer(start: buf.base + mark, count: buf.writerIndex - mark))
        buf.writerIndex = mark
        return a
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
        let escaped = RewriteHandler.copyOut(scratch, stage)
        escaped.withUnsafeBytes { transform($0, scratch) }
        let newRaw = RewriteHandler.copyOut(scratch, stage)
        newRaw.withUnsafeBytes { raw in
            RewriteHandler.escapedPath(fromRaw: raw, into: scratch)
        }
        let path = RewriteHandler.copyOut(scratch, stage)
        let query: [UInt8]? = r.queryRange.map { q in r.withLineBytes(q) { Array($0) } }
        path.withUnsafeBytes { pb in
            if let q = query { q.withUnsafeBytes { r.setTarget(path: pb, query: $0) } } else { r.setTarget(path: pb, query: nil) }
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

    /// The `rewrite <uri>` step (Caddy's Rewrite.URI handling).
    func rewriteURI(_ u: URI, _ r: HTTPRequest, _ scratch: ByteBuffer) {
        var newPath: [UInt8]? = nil
        var injectedQuery: [UInt8]? = nil
        if let pt = u.path {
            pt.expand(r, into: scratch, escaping: .path)
            var p = RewriteHandler.copyOut(scratch, 0)
            if let q = p.firstIndex(of: UInt8(ascii: "?")) {
                injectedQuery = Array(p[(q + 1)...])
                p = Array(p[..<q])
            }
            newPath = p
        }
        var newQuery: [UInt8]? = nil
        if let comps = u.query {
            if comps.isEmpty, let inj = injectedQuery {
                // The query came from a placeholder in the path; braces in it are not
                // placeholders.
                var esc: [UInt8] = []
                for c in inj {
                    if c == UInt8(ascii: "{") { esc += Array("%7B".utf8) } else if c == UInt8(ascii: "}") { esc += Array("%7D".utf8) } else { esc.append(c) }
                }
                newQuery = RewriteHandler.buildQuery(URI.components(esc), r, scratch)
            } else {
                newQuery = RewriteHandler.buildQuery(comps, r, scratch)
            }
        }
        var finalPath: [UInt8]
        if let np = newPath {
            // URL.Path = PathUnescape(newPath) (or newPath when malformed); RawPath = "".
            np.withUnsafeBytes { raw in
                let mark = scratch.writerIndex
                if !URLEscaping.appendPathUnescaped(raw, into: scratch) { scratch.append(raw) }
                Placeholder.reencode(scratch, from: mark) { URLEscaping.appendEscapedPath($0, into: scratch) }
            }
            finalPath = RewriteHandler.copyOut(scratch, 0)
        } else {
            finalPath = r.withLineBytes(r.pathRange) { Array($0) }
        }
        let query: [UInt8]? = newQuery ?? r.queryRange.map { q in r.withLineBytes(q) { Array($0) } }
        finalPath.withUnsafeBytes { pb in
            if let q = query { q.withUnsafeBytes { r.setTarget(path: pb, query: $0) } } else { r.setTarget(path: pb, query: nil) }
        }
        _ = finalPath.count
        finalPath = []
    }

    /// Caddy's buildQueryString.
    static func buildQuery(_ comps: [(Template, key: Bool, ampNext: Bool)], _ r: HTTPRequest, _ scratch: ByteBuffer) -> [UInt8] {
        let start = scratch.writerIndex
        for (t, key, _) in comps {
            let mark = scratch.writerIndex
            if key {
                // Reserve a byte for a possible '&' by expanding first, then inserting.
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
        return copyOut(scratch, start)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Caddy's `file` matcher (`fileserver/matcher.go`), behind `try_files`: the first candidate
/// (placeholders expanded, cleaned, joined to the root with `SanitizedPathJoin`) that exists —
/// a regular file, or a directory when the candidate ends with `/` — matches and sets
/// `{http.matchers.file.relative|absolute|type|remainder}`. A candidate `=NNN` fails the
/// request with that status. The root is `{http.vars.root}` (set by `root`), else the current
/// directory. Policy `first_exist` (the default) and `first_exist_fallback`; candidates are
/// not globbed (Caddy's glob meta-characters are taken literally).
///
/// Uses `stat(2)` on the event loop thread (a cold cache can block briefly).
package struct FileMatcher: RequestMatcher {
    package enum Candidate: Sendable {
        case file(Template, trailingSlash: Bool)
        case status(Int)
    }
    let root: Template?
    let candidates: [Candidate]
    let fallback: Bool
    let splitPath: [[UInt8]]

    package init(root: Template?, candidates: [Candidate], fallback: Bool = false, splitPath: [[UInt8]] = []) {
        self.root = root
        self.candidates = candidates
        self.fallback = fallback
        self.splitPath = splitPath
    }

    static let keyRelative: StaticString = "http.matchers.file.relative"
    static let keyAbsolute: StaticString = "http.matchers.file.absolute"
    static let keyType: StaticString = "http.matchers.file.type"
    static let keyRemainder: StaticString = "http.matchers.file.remainder"
    /// Set when a `=NNN` candidate was reached: the status the route must fail with.
    package static let keyError: StaticString = "http.matchers.file.error"

    package func matches(_ request: HTTPRequest) -> Bool {
        let s = request.scratch
        s.clear()
        // Root: filepath.Clean(ReplaceAll(root, ".")).
        if let root {
            root.expand(request, into: s)
        } else {
            _ = request.vars.withValue("root") { s.append($0) }
        }
        if s.writerIndex == 0 { s.append(byte: UInt8(ascii: ".")) }
        FileMatcher.cleanInPlace(s, from: 0)
        let rootLen = s.writerIndex
        let last = candidates.count - 1
        for (i, c) in candidates.enumerated() {
            switch c {
            case .status(let code):
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 3) { d in
                    d[0] = UInt8(code / 100 % 10) + 0x30
                    d[1] = UInt8(code / 10 % 10) + 0x30
                    d[2] = UInt8(code % 10) + 0x30
                    request.vars.set(FileMatcher.keyError, UnsafeRawBufferPointer(d))
                }
                return true
            case .file(let t, let trailingSlash):
                s.writerIndex = rootLen
                let fileStart = s.writerIndex
                t.expand(request, into: s)
                // path.Clean(expanded), then the trailing slash of the pattern back.
                FileMatcher.cleanInPlace(s, from: fileStart)
                // split_path: the part after the split is the remainder (PATH_INFO), not
                // part of the file looked for.
                var remainder: [UInt8]? = nil
                if !splitPath.isEmpty {
                    let cand = UnsafeRawBufferPointer(start: s.base + fileStart, count: s.writerIndex - fileStart)
                    if let cut = FileMatcher.firstSplit(cand, splitPath) {
                        remainder = Array(cand[cut...])
                        s.writerIndex = fileStart + cut
                    }
                }
                if trailingSlash { s.append(byte: UInt8(ascii: "/")) }
                let joinStart = s.writerIndex
                FileMatcher.sanitizedJoin(s, rootLen: rootLen, reqStart: fileStart, reqEnd: joinStart)
                let full = UnsafeRawBufferPointer(start: s.base + joinStart, count: s.writerIndex - joinStart)
                var isDir = false
                let exists: Bool
                if fallback && i == last {
                    exists = true
                } else {
                    exists = FileMatcher.strictExists(full, &isDir)
                }
                if exists {
                    let rootBytes = UnsafeRawBufferPointer(start: s.base, count: rootLen)
                    var rel = full
                    if full.count >= rootLen, full.prefix(rootLen).elementsEqual(rootBytes) {
                        rel = UnsafeRawBufferPointer(rebasing: full[rootLen...])
                    }
                    request.vars.set(FileMatcher.keyRelative, rel)
                    request.vars.set(FileMatcher.keyAbsolute, full)
                    if let remainder {
                        remainder.withUnsafeBytes { request.vars.set(FileMatcher.keyRemainder, $0) }
                    } else {
                        request.vars.set(FileMatcher.keyRemainder, UnsafeRawBufferPointer(start: nil, count: 0))
                    }
                    let type: StaticString = isDir ? "directory" : "file"
                    request.vars.set(FileMatcher.keyType, UnsafeRawBufferPointer(start: type.utf8Start, count: type.utf8CodeUnitCount))
                    s.clear()
                    return true
                }
            }
        }
        s.clear()
        return false
    }

    /// Caddy's `firstSplit` (`fileserver/matcher.go`): for each split string in order, its
    /// first case-insensitive occurrence that is not at the very end (Caddy's `indexFold`
    /// stops one short); it counts only when a `/` follows, else the next split string is
    /// tried. Returns where the remainder starts.
    static func firstSplit(_ path: UnsafeRawBufferPointer, _ splits: [[UInt8]]) -> Int? {
        for split in splits {
            let n = split.count
            var found = -1
            var i = 0
            while i + n < path.count {
                var eq = true
                for j in 0..<n {
                    var a = path[i + j], b = split[j]
                    if a >= 0x41 && a <= 0x5A { a |= 0x20 }
                    if b >= 0x41 && b <= 0x5A { b |= 0x20 }
                    if a != b { eq = false; break }
                }
                if eq { found = i; break }
                i += 1
            }
            guard found >= 0 else { continue }
            let pos = found + n
            if pos != path.count && path[pos] != UInt8(ascii: "/") { continue }
            return pos
        }
        return nil
    }

    /// `stat` (following symlinks); a path ending in `/` must be a directory, others a
    /// non-directory (Caddy's strictFileExists).
    static func strictExists(_ path: UnsafeRawBufferPointer, _ isDir: inout Bool) -> Bool {
        guard path.count < 4096 else { return false }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: path.count + 1) { c in
            for k in 0..<path.count { c[k] = CChar(bitPattern: path[k]) }
            c[path.count] = 0
            var st = stat()
            guard stat(c.baseAddress!, &st) == 0 else { return false }
            isDir = (st.st_mode & S_IFMT) == S_IFDIR
            return path.last == UInt8(ascii: "/") ? isDir : !isDir
        }
    }

    /// Replaces the bytes after `from` with Go's `path.Clean` of them.
    static func cleanInPlace(_ s: ByteBuffer, from: Int) {
        let n = s.writerIndex - from
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(n, 1)) { tmp in
            for k in 0..<n { tmp[k] = s.base[from + k] }
            s.writerIndex = from
            CleanPath.goClean(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[0..<n])), into: s)
        }
    }

    /// Caddy's SanitizedPathJoin(root, req): appends the joined path after the request path.
    static func sanitizedJoin(_ s: ByteBuffer, rootLen: Int, reqStart: Int, reqEnd: Int) {
        let reqLen = reqEnd - reqStart
        // Reserve everything up front: the root is copied from the front of `s` into its tail.
        s.reserveWritable(rootLen + 2 * reqLen + 8)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: reqLen + 2) { tmp in
            // path.Clean("/" + req)[1:]
            tmp[0] = UInt8(ascii: "/")
            for k in 0..<reqLen { tmp[k + 1] = s.base[reqStart + k] }
            let mark = s.writerIndex
            CleanPath.goClean(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[0..<(reqLen + 1)])), into: s)
            let relLen = s.writerIndex - mark - 1
            // Copy rel out, then write filepath.Join(root, rel).
            for k in 0..<relLen { tmp[k] = s.base[mark + 1 + k] }
            s.writerIndex = mark
            let rel = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[0..<relLen]))
            let rootIsDot = rootLen == 1 && s.base[0] == UInt8(ascii: ".")
            if relLen == 0 {
                s.append(UnsafeRawBufferPointer(start: s.base, count: rootLen))
            } else if rootIsDot {
                s.append(rel)
            } else {
                // filepath.Join(root, rel): root is clean; add one separator unless root is "/".
                let joinStart = s.writerIndex
                s.append(UnsafeRawBufferPointer(start: s.base, count: rootLen))
                if !(rootLen == 1 && s.base[0] == UInt8(ascii: "/")) { s.append(byte: UInt8(ascii: "/")) }
                s.append(rel)
                _ = joinStart
            }
            if reqLen > 1 && s.base[reqEnd - 1] == UInt8(ascii: "/") { s.append(byte: UInt8(ascii: "/")) }
        }
    }
}

/// First handler of a route whose matchers include a `file` matcher with `=NNN` candidates:
/// when the matcher reached one, the request fails with that status (Caddy's matcher error).
package final class FileMatcherErrorCheck: Handler {
    package init() {}
    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        guard let code = request.vars.withValue(FileMatcher.keyError, { StatusParsing.atoi($0) }) ?? nil else { return .next }
        let s = response.scratch
        s.clear()
        s.appendDecimal(code)
        request.vars.remove(HandlerError.key(FileMatcher.keyError))
        return HandlerError.fail(request, response, status: code, message: s.readable, trace: "Handlers.FileMatcher (FileMatcher.swift)")
    }
}

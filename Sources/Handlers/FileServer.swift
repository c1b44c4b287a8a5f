#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Caddy's `file_server` (`fileserver/staticfiles.go`, caddy-behavior §11): serves files
/// beneath the site root with Go `http.ServeContent` semantics — ETag and Last-Modified,
/// conditional requests (`FileServer+Conditional.swift`), byte ranges
/// (`FileServer+Range.swift`), index files, canonical-URI redirects, `hide`, precompressed
/// sidecars, `browse` listings, `status`, `pass_thru`.
///
/// Deviations from Caddy, all on the side of safety (documented in the README):
/// - **Symlinks never lead out of the root** unless `follow_symlinks` is set (a Berth
///   extension): resolution is done by the kernel (`FileResolver`), and a link that escapes
///   is answered like a missing file (404, or the next handler with `pass_thru`), so nothing
///   about the outside tree leaks. Absolute symlinks count as escaping even when they point
///   back inside.
/// - Only regular files and directories are served; FIFOs, sockets and devices look missing.
/// - Dotfiles are served, as Caddy does: only `hide` hides (the Caddyfile itself is always
///   hidden).
///
/// Speed: a per-thread open-file cache (`FileServerLocal`) means a hit costs one fstat(2);
/// plain HTTP/1 sends small bodies in the same write as the head and large ones with
/// sendfile(2); TLS, HTTP/2 and `encode` read 64 KiB chunks under flow control. No file is
/// ever read whole into memory, and the hot path allocates nothing.
package final class FileServerHandler: Handler {
    /// The configuration (see `FileServerSpec`).
    package struct Settings: Sendable {
        package var root: String? = nil
        package var hide: [String] = []
        package var indexNames: [String] = ["index.html", "index.txt"]
        package var browse: BrowseConfig? = nil
        /// Encodings of precompressed sidecars in preference order (`br`, `zstd`, `gzip`).
        package var precompressed: [String] = []
        package var status: String? = nil
        package var canonicalURIs = true
        package var passThru = false
        package var followSymlinks = false
        package init() {}
    }

    /// `browse` options.
    package struct BrowseConfig: Sendable {
        package var sort: [String] = []
        package var fileLimit = 0
        package var revealSymlinks = false
        package init() {}
    }

    let settings: Settings
    let rootTemplate: Template?
    let hidePatterns: [HidePattern]
    let indexNames: [Template]
    let precompressors: [(encoding: String, suffix: [UInt8])]
    let statusTemplate: Template?
    let browseSettings: BrowseSettings?
    static let trace: StaticString = "Handlers.FileServerHandler (FileServer.swift)"

    package init(_ s: Settings, environment: [String: String] = [:]) {
        settings = s
        rootTemplate = s.root.map { Template($0, keepUnknown: false, environment: environment) }
        let cwd = FileServerLocal.currentDirectory()
        hidePatterns = s.hide.map { HidePattern($0, cwd: cwd, environment: environment) }
        indexNames = s.indexNames.map { Template($0, keepUnknown: false, environment: environment) }
        precompressors = s.precompressed.map { e in
            (e, Array((e == "br" ? ".br" : e == "zstd" ? ".zst" : ".gz").utf8))
        }
        statusTemplate = s.status.map { Template($0, keepUnknown: false, environment: environment) }
        browseSettings = s.browse.map { b in
            var bs = BrowseSettings()
            for o in b.sort {
                if ["asc", "desc"].contains(o) { bs.order = o } else { bs.sort = o }
            }
            if b.fileLimit > 0 { bs.fileLimit = b.fileLimit }
            bs.revealSymlinks = b.revealSymlinks
            return bs
        }
        _ = MimeTypes.shared
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        let L = FileServerLocal.current
        let now = Clock.monotonicNanos()

        // The decoded request path (Caddy's r.URL.Path). A NUL cannot name a file: Go's
        // stat fails with EINVAL, which Caddy answers 400.
        let path = L.path
        path.clear()
        request.withLineBytes(request.pathRange) { URLDecoding.appendDecodedPath($0, into: path) }
        if path.readable.contains(0) { return HandlerError.fail(request, response, status: 400, trace: FileServerHandler.trace) }

        // SanitizedPathJoin: the cleaned path relative to the root, never with `..`.
        let rel = L.rel
        rel.clear()
        FSPath.appendRelative(path.readable, tmp: L.work, into: rel)
        if rel.readableBytes >= 4096 {
            // Longer than PATH_MAX: stat fails with ENAMETOOLONG, which Caddy answers 400.
            return HandlerError.fail(request, response, status: 400, trace: FileServerHandler.trace)
        }

        // The root: `root` option, else {http.vars.root}, else the working directory.
        let work = L.work
        work.clear()
        if let t = rootTemplate {
            t.expand(request, into: work)
        } else {
            _ = request.vars.withValue("root") { work.append($0) }
        }
        if work.isEmpty { work.append(byte: UInt8(ascii: ".")) }
        let ri = L.root(work.readable, now: now)
        let rootFD = L.roots[ri].fd
        let follow = settings.followSymlinks

        var node = L.lookup(root: ri, rel.readable, follow: follow, now: now)
        if node.error != 0 { return openFailed(node.error, request, response) }

        // The absolute file name, for `hide` (Caddy compares absolute paths).
        let abs = L.abs
        abs.clear()
        L.roots[ri].absolute.withUnsafeBytes { abs.append($0) }
        if !rel.isEmpty {
            if abs.readableBytes != 1 { abs.append(byte: UInt8(ascii: "/")) }
            abs.append(rel.readable)
        }

        // A directory: try the index files (SanitizedPathJoin(dir, index); hidden ones are
        // skipped, and so are those that fail to open).
        var implicitIndex = false
        if node.isDir && !indexNames.isEmpty {
            let relLen = rel.writerIndex, absLen = abs.writerIndex
            let name = L.name
            for t in indexNames {
                work.clear()
                t.expand(request, into: work)
                name.clear()
                FSPath.appendRelative(work.readable, tmp: L.orig, into: name)
                rel.writerIndex = relLen
                abs.writerIndex = absLen
                if !name.isEmpty {
                    if relLen > 0 { rel.append(byte: UInt8(ascii: "/")) }
                    rel.append(name.readable)
                    if absLen != 1 { abs.append(byte: UInt8(ascii: "/")) }
                    abs.append(name.readable)
                }
                if isHidden(abs.readable, request) { continue }
                let candidate = L.lookup(root: ri, rel.readable, follow: follow, now: now)
                if candidate.error != 0 { continue }
                node = candidate
                implicitIndex = true
                break
            }
            if !implicitIndex {
                rel.writerIndex = relLen
                abs.writerIndex = absLen
            }
        }

        let orig = L.orig
        if node.isDir {
            if settings.browse != nil && !isHidden(abs.readable, request) {
                orig.clear()
                request.withLineBytes(request.originalTarget) { t in
                    let p = t.firstIndex(of: UInt8(ascii: "?")).map { UnsafeRawBufferPointer(rebasing: t[..<$0]) } ?? t
                    URLDecoding.appendDecodedPath(p, into: orig)
                }
                return serveBrowse(node, rootFD: rootFD, abs: abs.readableArray(), rel: rel.readableArray(),
                                   decodedPath: path.readableArray(), origPath: orig.readableArray(),
                                   request: request, response: response)
            }
            return notFound(request, response)
        }
        if isHidden(abs.readable, request) { return notFound(request, response) }

        // Canonical URIs: directories end with `/`, files do not — unless a rewrite changed
        // the last path element (Caddy #4205).
        if settings.canonicalURIs {
            orig.clear()
            request.withLineBytes(request.originalTarget) { t in
                let p = t.firstIndex(of: UInt8(ascii: "?")).map { UnsafeRawBufferPointer(rebasing: t[..<$0]) } ?? t
                URLDecoding.appendDecodedPath(p, into: orig)
            }
            let o = orig.readable
            if FSPath.equal(FSPath.base(o), FSPath.base(path.readable)) {
                let slash = o.last == UInt8(ascii: "/")
                if implicitIndex && !slash {
                    return redirect(to: Array(o) + [UInt8(ascii: "/")], request, response)
                } else if !implicitIndex && slash {
                    return redirect(to: Array(o.dropLast()), request, response)
                }
            }
        }
        return serveFile(node, L: L, ri: ri, now: now, request: request, response: response)
    }

    /// Caddy's `notFound`: 404, or the next handler with `pass_thru`.
    func notFound(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        if settings.passThru { return .next }
        return HandlerError.fail(request, response, status: 404, trace: FileServerHandler.trace)
    }

    /// Maps an open failure like Caddy maps a stat failure: missing (or, in Berth, escaping
    /// the root) → 404; permission → 403; out of descriptors → 503 with `Retry-After: 2–4`;
    /// anything else (ENOTDIR, ENAMETOOLONG, ELOOP…) → 400 (Go's fs.ErrInvalid).
    func openFailed(_ e: Int32, _ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        switch e {
        case ENOENT, EXDEV:
            return notFound(request, response)
        case EACCES, EPERM:
            return HandlerError.fail(request, response, status: 403, trace: FileServerHandler.trace)
        case EMFILE, ENFILE, ENOMEM:
            var g = SystemRandomNumberGenerator()
            let backoff = 2 + Int(g.next(upperBound: UInt64(3)))
            response.fields.append(name: "Retry-After", value: String(backoff))
            return HandlerError.fail(request, response, status: 503, trace: FileServerHandler.trace)
        default:
            return HandlerError.fail(request, response, status: 400, trace: FileServerHandler.trace)
        }
    }

    /// Caddy's fileHidden against every `hide` entry.
    @inline(__always)
    func isHidden(_ filename: UnsafeRawBufferPointer, _ request: HTTPRequest) -> Bool {
        for h in hidePatterns {
            if let t = h.template {
                let b = ByteBuffer(capacity: 64)
                t.expand(request, into: b)
                var bytes = b.readableArray()
                if h.hasSeparator && bytes.first != UInt8(ascii: "/") {
                    bytes = FileServerLocal.current.absolutePath(bytes)
                }
                if bytes.withUnsafeBytes({ HidePattern.hides(pattern: $0, separator: h.hasSeparator, filename) }) { return true }
            } else if h.hides(filename) {
                return true
            }
        }
        return false
    }
}

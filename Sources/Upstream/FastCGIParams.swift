#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTPCore
import IOCore

/// `transport fastcgi { … }` (Caddy's `reverseproxy/fastcgi` Transport).
package struct FastCGIOptions: Sendable {
    /// `root`: the document root, placeholders expanded per request (Caddy's default is
    /// `{http.vars.root}`: nil here reads the request's `root` variable, then the current
    /// directory).
    package var root: (any HeaderValueSource)? = nil
    /// `split`: lower-cased ASCII substrings that end SCRIPT_NAME (`.php`).
    package var splitPath: [[UInt8]] = []
    /// `env`: extra parameters, values with placeholders.
    package var env: [(name: [UInt8], value: any HeaderValueSource)] = []
    /// `resolve_root_symlink`: the root goes through realpath(3).
    package var resolveRootSymlink = false
    /// `capture_stderr`: the application's STDERR is logged (else dropped, as Caddy does).
    package var captureStderr = false
    /// SERVER_SOFTWARE (`Berth/<version>`; Caddy sends `Caddy/<version>`).
    package var serverSoftware: [UInt8] = Array("Berth".utf8)

    package init() {}
}

/// Builds the CGI/1.1 parameters (RFC 3875 §4.1) Caddy's FastCGI transport sends
/// (`fastcgi.go` buildEnv + the method-specific CONTENT_* of `client.go`), in the order Caddy
/// assigns them, so a name set twice (an `env` entry naming a standard parameter, a header
/// overriding an `env` entry) ends with Caddy's value: php-fpm keeps the last one.
enum FastCGIParams {
    /// Appends the PARAMS content for `r` to `out`. `fields` are the request fields as the
    /// proxy prepared them (hop-by-hop removed, X-Forwarded-*, Via, `header_up` applied).
    static func build(_ r: HTTPRequest, _ o: FastCGIOptions, upstream: UpstreamAddress, fields: HTTPFields,
                      contentLength: Int64, into out: ByteBuffer, scratch: ByteBuffer) {
        // REMOTE_ADDR / REMOTE_PORT: the peer (preserved by socket activation).
        scratch.clear()
        var remotePort = 0
        if let remote = r.connection.remote, remote.family != AF_UNIX {
            remote.writeIP(into: scratch)
            remotePort = remote.port
        }
        let ip = scratch.readableArray()
        // DOCUMENT_ROOT: FastAbs(root or "."), optionally through realpath.
        scratch.clear()
        if let root = o.root {
            root.write(r, upstream: upstream, into: scratch)
        } else {
            _ = r.vars.withValue("root") { scratch.append($0) }
        }
        var root = absolute(scratch.readableArray())
        if o.resolveRootSymlink, let real = realPath(root) { root = real }
        // The (decoded) path, split into SCRIPT_NAME and PATH_INFO.
        let fpath = r.withLineBytes(r.pathRange) { percentDecoded($0) }
        var scriptName = fpath
        var docURI = fpath
        var pathInfo: [UInt8] = []
        let split = splitPosition(fpath, o.splitPath)
        if split >= 0 {
            docURI = Array(fpath[..<split])
            pathInfo = Array(fpath[split...])
            scriptName = docURI
        }
        if pathInfo.isEmpty, let rem = r.vars.withValue("http.matchers.file.remainder", { Array($0) }) { pathInfo = rem }
        let scriptFilename = sanitizedJoin(root, scriptName)
        if !scriptName.isEmpty && scriptName[0] != UInt8(ascii: "/") { scriptName.insert(UInt8(ascii: "/"), at: 0) }
        let https = r.connection.isTLS
        let host: [UInt8] = r.authorityRange.map { r.withLineBytes($0) { Array($0) } } ?? []
        let (hostName, hostPort) = splitHostPort(host)

        func put(_ name: StaticString, _ value: [UInt8]) {
            value.withUnsafeBytes { FastCGI.appendPair(name, value: $0, into: out) }
        }
        func put(_ name: StaticString, _ value: StaticString) { FastCGI.appendPair(name, value, into: out) }

        put("AUTH_TYPE", "")
        put("CONTENT_LENGTH", Array(String(r.bodySource == nil ? 0 : r.contentLength ?? 0).utf8))
        put("CONTENT_TYPE", r.fields.withValue(.contentType) { Array($0) } ?? [])
        put("GATEWAY_INTERFACE", "CGI/1.1")
        put("PATH_INFO", pathInfo)
        put("QUERY_STRING", r.queryRange.map { q in r.withLineBytes(q) { Array($0.dropFirst($0.first == UInt8(ascii: "?") ? 1 : 0)) } } ?? [])
        put("REMOTE_ADDR", ip)
        put("REMOTE_HOST", ip)
        put("REMOTE_PORT", remotePort > 0 ? Array(String(remotePort).utf8) : [])
        put("REMOTE_IDENT", "")
        put("REMOTE_USER", Array((r.authUser ?? "").utf8))
        put("REQUEST_METHOD", r.withLineBytes(r.methodRange) { Array($0) })
        put("REQUEST_SCHEME", https ? "https" : "http")
        put("SERVER_NAME", hostName)
        let proto = r.version.protoString
        FastCGI.appendPair("SERVER_PROTOCOL", value: UnsafeRawBufferPointer(start: proto.utf8Start, count: proto.utf8CodeUnitCount), into: out)
        put("SERVER_SOFTWARE", o.serverSoftware)
        put("DOCUMENT_ROOT", root)
        put("DOCUMENT_URI", docURI)
        put("HTTP_HOST", host)
        put("REQUEST_URI", r.withLineBytes(r.originalTargetRange ?? r.targetRange) { requestURI($0) })
        put("SCRIPT_FILENAME", scriptFilename)
        put("SCRIPT_NAME", scriptName)
        if let local = r.connection.local ?? (r.connection.socket >= 0 ? Socket.localAddress(r.connection.socket) : nil),
           local.family != AF_UNIX {
            scratch.clear()
            local.writeIP(into: scratch)
            put("SERVER_ADDR", scratch.readableArray())
        }
        if !pathInfo.isEmpty { put("PATH_TRANSLATED", sanitizedJoin(root, pathInfo)) }
        if !hostPort.isEmpty {
            put("SERVER_PORT", hostPort)
        } else {
            put("SERVER_PORT", https ? "443" : "80")
        }
        if https {
            put("HTTPS", "on")
            switch r.connection.tlsVersion {
            case 0x0301: put("SSL_PROTOCOL", "TLSv1")
            case 0x0302: put("SSL_PROTOCOL", "TLSv1.1")
            case 0x0303: put("SSL_PROTOCOL", "TLSv1.2")
            case 0x0304: put("SSL_PROTOCOL", "TLSv1.3")
            default: break
            }
            if let name = cipherSuiteName(r.connection.tlsCipherSuite) { put("SSL_CIPHER", Array(name.utf8)) }
        }
        for e in o.env {
            scratch.clear()
            e.value.write(r, upstream: upstream, into: scratch)
            e.name.withUnsafeBytes { FastCGI.appendPair(name: $0, value: scratch.readable, into: out) }
        }
        appendHeaders(fields, request: r, into: out)
        // client.go: the method decides CONTENT_LENGTH (and CONTENT_TYPE for bodies).
        let m = r.method
        if m == .HEAD || m == .OPTIONS {
            put("CONTENT_LENGTH", "0")
        } else {
            put("CONTENT_LENGTH", Array(String(contentLength).utf8))
            if m != .GET {
                let ct = r.fields.withValue(.contentType) { Array($0) } ?? []
                put("CONTENT_TYPE", ct.isEmpty ? Array("application/x-www-form-urlencoded".utf8) : ct)
            }
        }
    }

    /// `HTTP_<NAME>` for every field (upper-cased, `-` → `_`), same-named fields joined with
    /// ", " as Go's `http.Header` holds them; `Proxy` is dropped (httpoxy, CVE-2016-5385) and
    /// Host is HTTP_HOST already. Content-Length, which the proxied fields leave to the framing,
    /// is what Caddy's request buffering sets.
    static func appendHeaders(_ fields: HTTPFields, request r: HTTPRequest, into out: ByteBuffer) {
        var name: [UInt8] = []
        var value: [UInt8] = []
        func emit(_ f: HTTPFields, _ i: Int) {
            let skip: Bool = f.withField(i) { n, _ in
                if ASCII.equalsLowercase(n, "proxy") || ASCII.equalsLowercase(n, "host") { return true }
                // Only the first field of each name (later ones are joined to it).
                for j in 0..<i where f.withField(j, { m, _ in ASCII.equalsIgnoringCase(m, n) }) { return true }
                return false
            }
            if skip { return }
            name.removeAll(keepingCapacity: true)
            value.removeAll(keepingCapacity: true)
            name.append(contentsOf: "HTTP_".utf8)
            f.withField(i) { n, v in
                for c in n {
                    var u = c
                    if u >= 0x61 && u <= 0x7A { u -= 0x20 }
                    if u == UInt8(ascii: "-") { u = UInt8(ascii: "_") }
                    name.append(u)
                }
                value.append(contentsOf: v)
                for j in (i + 1)..<f.count {
                    f.withField(j) { m, w in
                        if ASCII.equalsIgnoringCase(m, n) {
                            value.append(contentsOf: ", ".utf8)
                            value.append(contentsOf: w)
                        }
                    }
                }
            }
            name.withUnsafeBytes { nb in value.withUnsafeBytes { vb in FastCGI.appendPair(name: nb, value: vb, into: out) } }
        }
        for i in 0..<fields.count { emit(fields, i) }
        // Caddy's proxy sets an empty User-Agent when the client sent none (so that Go's
        // client adds no default): FastCGI sees it as an empty HTTP_USER_AGENT.
        if !fields.contains(.userAgent) { FastCGI.appendPair("HTTP_USER_AGENT", "", into: out) }
        // Caddy buffers small request bodies for FastCGI (4 KiB; Go gives every request a
        // body, so a bodiless one counts as fully read) and then sets Content-Length: HTTP_CONTENT_LENGTH is
        // the body's length, `0` without one.
        if !fields.contains(.contentLength), let n = r.bodySource == nil ? 0 : r.contentLength {
            Array(String(n).utf8).withUnsafeBytes { FastCGI.appendPair("HTTP_CONTENT_LENGTH", value: $0, into: out) }
        }
    }

    /// Caddy's `splitPos`: no split list → 0 (the whole path is PATH_INFO); else the end of the
    /// first case-insensitive (ASCII) occurrence of a split string, or -1.
    static func splitPosition(_ path: [UInt8], _ splits: [[UInt8]]) -> Int {
        if splits.isEmpty { return 0 }
        for s in splits where !s.isEmpty && s.count <= path.count {
            var i = 0
            while i <= path.count - s.count {
                var match = true
                for j in 0..<s.count {
                    var c = path[i + j]
                    if c >= 0x80 { match = false; break }
                    if c >= 0x41 && c <= 0x5A { c += 0x20 }
                    if c != s[j] { match = false; break }
                }
                if match { return i + s.count }
                i += 1
            }
        }
        return -1
    }

    /// Go's `url.URL.Path` from the raw path: percent-decoded (a malformed escape keeps the
    /// bytes as they are).
    static func percentDecoded(_ p: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(p.count)
        var i = 0
        while i < p.count {
            let c = p[i]
            if c == UInt8(ascii: "%"), i + 2 < p.count + 0, let h = hex(p[i + 1]), let l = hex(p[i + 2]) {
                out.append(h << 4 | l)
                i += 3
                continue
            }
            out.append(c)
            i += 1
        }
        return out
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// Go's `URL.RequestURI()` of the original request target: an absolute-form target
    /// gives its path and query.
    static func requestURI(_ t: UnsafeRawBufferPointer) -> [UInt8] {
        var a = Array(t)
        if a.first != UInt8(ascii: "/") && a.first != UInt8(ascii: "*"),
           let s = indexOf(a, Array("://".utf8)) {
            let rest = a[(s + 3)...]
            if let slash = rest.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }) {
                a = Array(rest[slash...])
                if a.first == UInt8(ascii: "?") { a.insert(UInt8(ascii: "/"), at: 0) }
            } else {
                a = [UInt8(ascii: "/")]
            }
        }
        return a
    }

    private static func indexOf(_ a: [UInt8], _ n: [UInt8]) -> Int? {
        guard a.count >= n.count else { return nil }
        for i in 0...(a.count - n.count) where Array(a[i..<(i + n.count)]) == n { return i }
        return nil
    }

    /// `net.SplitHostPort`, or the whole value as host when it has no port.
    static func splitHostPort(_ h: [UInt8]) -> ([UInt8], [UInt8]) {
        if h.first == UInt8(ascii: "[") {
            if let close = h.firstIndex(of: UInt8(ascii: "]")), close + 1 < h.count, h[close + 1] == UInt8(ascii: ":") {
                return (Array(h[1..<close]), Array(h[(close + 2)...]))
            }
            return (h, [])
        }
        guard let colon = h.lastIndex(of: UInt8(ascii: ":")), h.firstIndex(of: UInt8(ascii: ":")) == colon else { return (h, []) }
        return (Array(h[..<colon]), Array(h[(colon + 1)...]))
    }

    /// Go's `path.Clean` (lexical: `//`, `.`, `..` removed; "" → ".").
    static func clean(_ p: [UInt8]) -> [UInt8] {
        if p.isEmpty { return [UInt8(ascii: ".")] }
        let rooted = p[0] == UInt8(ascii: "/")
        var parts: [ArraySlice<UInt8>] = []
        for seg in p.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if seg.count == 1 && seg[seg.startIndex] == UInt8(ascii: ".") { continue }
            if seg.count == 2 && seg.allSatisfy({ $0 == UInt8(ascii: ".") }) {
                if let last = parts.last, !(last.count == 2 && last.allSatisfy({ $0 == UInt8(ascii: ".") })) {
                    parts.removeLast()
                } else if !rooted {
                    parts.append(seg)
                }
                continue
            }
            parts.append(seg)
        }
        var out: [UInt8] = rooted ? [UInt8(ascii: "/")] : []
        for (i, s) in parts.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "/")) }
            out.append(contentsOf: s)
        }
        return out.isEmpty ? [UInt8(ascii: ".")] : out
    }

    /// Caddy's `SanitizedPathJoin(root, reqPath)`: the cleaned request path can never leave
    /// the root; a trailing slash is kept.
    static func sanitizedJoin(_ root: [UInt8], _ req: [UInt8]) -> [UInt8] {
        let r = root.isEmpty ? [UInt8(ascii: ".")] : root
        let rel = Array(clean([UInt8(ascii: "/")] + req).dropFirst())
        var joined = rel.isEmpty ? clean(r) : clean(r + [UInt8(ascii: "/")] + rel)
        if req.last == UInt8(ascii: "/") && joined.last != UInt8(ascii: "/") { joined.append(UInt8(ascii: "/")) }
        return joined
    }

    /// Go's `filepath.Abs`: relative paths join the working directory; then `Clean`.
    static func absolute(_ p: [UInt8]) -> [UInt8] {
        let path = p.isEmpty ? [UInt8(ascii: ".")] : p
        if path[0] == UInt8(ascii: "/") { return clean(path) }
        var buf = [CChar](repeating: 0, count: 4097)
        guard getcwd(&buf, buf.count) != nil else { return clean(path) }
        let cwd = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return clean(cwd + [UInt8(ascii: "/")] + path)
    }

    /// `filepath.EvalSymlinks` through realpath(3); nil when it fails.
    static func realPath(_ p: [UInt8]) -> [UInt8]? {
        let s = String(decoding: p, as: UTF8.self)
        guard let r = realpath(s, nil) else { return nil }
        defer { free(r) }
        return Array(String(cString: r).utf8)
    }

    /// Go's names for the suites a TLS 1.2/1.3 server negotiates here (crypto/tls).
    static func cipherSuiteName(_ id: UInt16) -> String? {
        switch id {
        case 0x1301: return "TLS_AES_128_GCM_SHA256"
        case 0x1302: return "TLS_AES_256_GCM_SHA384"
        case 0x1303: return "TLS_CHACHA20_POLY1305_SHA256"
        case 0xC02B: return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case 0xC02C: return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case 0xC02F: return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case 0xC030: return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case 0xCCA8: return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        case 0xCCA9: return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        default: return nil
        }
    }
}

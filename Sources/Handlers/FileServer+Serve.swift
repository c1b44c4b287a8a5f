#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

extension FileServerHandler {
    /// Everything after the file is chosen: precompressed sidecar, method check, validators,
    /// Content-Type, status override, then Go's `serveContent` (preconditions, ranges, body).
    func serveFile(_ node: FSNode, L: FileServerLocal, ri: Int, now: UInt64, request: HTTPRequest,
                   response: HTTPResponse) -> HandlerResult {
        var body = node
        var encoding: String? = nil
        // Precompressed sidecars (`file.gz`…), chosen by Accept-Encoding q-values with the
        // configured order breaking ties (Caddy's AcceptedEncodings); a sidecar's own ETag is
        // used, the original's mtime for Last-Modified.
        if !precompressors.isEmpty, let chosen = chooseSidecar(request, L: L, ri: ri, now: now) {
            body = chosen.node
            encoding = chosen.encoding
        }
        // Caddy adds Vary on every file response, compressed or not (#5849).
        response.fields.append(.vary, "Accept-Encoding")
        if let encoding { response.fields.append(name: "Content-Encoding", value: encoding) }

        // Only GET and HEAD (Caddy #5166) — except when serving an error page.
        if request.method != .GET && request.method != .HEAD && response.errorStatus == 0 {
            response.fields.append(name: "Allow", value: "GET, HEAD")
            return HandlerError.fail(request, response, status: 405, trace: FileServerHandler.trace)
        }

        // ETag: one set by an earlier handler wins, else Caddy's from the body's file.
        var etagStorage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &etagStorage) { etagBuf -> HandlerResult in
            var etagLen = 0
            let etagIndex = response.fields.firstIndex(.etag)
            if etagIndex == nil {
                etagLen = ETag.write(mtimeSec: body.mtimeSec, mtimeNsec: body.mtimeNsec, size: body.size,
                                     into: etagBuf.baseAddress!.assumingMemoryBound(to: UInt8.self))
                if etagLen > 0 {
                    response.fields.append(.etag, value: UnsafeRawBufferPointer(rebasing: etagBuf[0..<etagLen]))
                }
            } else {
                etagLen = response.fields.withField(etagIndex!) { _, v in
                    let n = min(v.count, etagBuf.count)
                    for i in 0..<n { etagBuf[i] = v[i] }
                    return n
                }
            }
            let etag = UnsafeRawBufferPointer(rebasing: etagBuf[0..<etagLen])
            return serveContent(node, body, etag: etag, L: L, request: request, response: response)
        }
    }

    /// The first acceptable sidecar that exists as a regular file.
    private func chooseSidecar(_ request: HTTPRequest, L: FileServerLocal, ri: Int, now: UInt64) -> (node: FSNode, encoding: String)? {
        guard let header = request.fields.firstIndex(.acceptEncoding) else { return nil }
        if request.fields.value(named: "Sec-WebSocket-Key") != nil { return nil }
        var ranked: [(q: Double, order: Int, encoding: String, suffix: [UInt8])] = []
        request.fields.withField(header) { _, v in
            for (i, p) in precompressors.enumerated() {
                if let q = EncodeHandler.quality(of: p.encoding, in: v) { ranked.append((q, i, p.encoding, p.suffix)) }
            }
        }
        ranked.sort { a, b in abs(a.q - b.q) < 0.00001 ? a.order < b.order : a.q > b.q }
        let relLen = L.rel.writerIndex
        defer { L.rel.writerIndex = relLen }
        for r in ranked {
            L.rel.writerIndex = relLen
            L.rel.append(r.suffix)
            let n = L.lookup(root: ri, L.rel.readable, follow: settings.followSymlinks, now: now)
            if n.error == 0 && !n.isDir { return (n, r.encoding) }
        }
        return nil
    }

    private func serveContent(_ info: FSNode, _ body: FSNode, etag: UnsafeRawBufferPointer, L: FileServerLocal,
                              request: HTTPRequest, response: HTTPResponse) -> HandlerResult {
        // Content-Type from the extension (no sniffing; none when unknown).
        let hadType = response.fields.contains(.contentType)
        if !hadType {
            _ = MimeTypes.shared.withType(forExtension: MimeTypes.ext(L.abs.readable)) { t in
                response.fields.append(.contentType, value: t)
            }
        }
        // Status override: the error's status in `handle_errors`, or `status`.
        var override = 0
        if response.errorStatus != 0 { override = response.errorStatus }
        if let t = statusTemplate {
            let s = L.work
            s.clear()
            t.expand(request, into: s)
            guard let code = StatusParsing.atoi(s.readable) else {
                return HandlerError.fail(request, response, status: 500, trace: FileServerHandler.trace)
            }
            override = code
        }
        let mtime: Int? = ETag.usefulModTime(info.mtimeSec) ? info.mtimeSec : nil
        if let m = mtime {
            var date: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            withUnsafeMutableBytes(of: &date) { d in
                HTTPDate.format(epochSeconds: m, into: d.baseAddress!.assumingMemoryBound(to: UInt8.self))
                response.fields.append(.lastModified, value: UnsafeRawBufferPointer(rebasing: d[0..<HTTPDate.length]))
            }
        }
        let pre = Preconditions(request.fields)
        let isHEAD = request.method == .HEAD
        switch pre.evaluate(request.fields, method: request.method, etag: etag, mtime: mtime) {
        case .preconditionFailed:
            response.status = override != 0 ? override : 412
            response.sendEmpty()
            return .done
        case .notModified:
            // RFC 9110 §15.4.5: only validators and Vary (Go's writeNotModified).
            response.fields.remove(.contentType)
            response.fields.remove(.contentEncoding)
            if !etag.isEmpty { response.fields.remove(.lastModified) }
            response.status = override != 0 ? override : 304
            response.sendEmpty()
            return .done
        case .proceed(let useRange):
            let size = body.size
            var start: Int64 = 0, length = size, status = 200
            var multi: [(start: Int64, length: Int64)]? = nil
            if useRange {
                let parsed = request.fields.withValue(.range) { ByteRanges.parse(Preconditions.trim($0), size: size) } ?? .none
                switch parsed {
                case .none:
                    break
                case .invalid:
                    return serveError(416, "invalid range\n", override, response)
                case .noOverlap:
                    if size != 0 {
                        let s = L.work
                        s.clear()
                        s.append("bytes */")
                        s.appendDecimal(Int(size))
                        response.fields.append(.contentRange, value: s.readable)
                        return serveError(416, "invalid range: failed to overlap\n", override, response)
                    }
                case .single(let s, let n):
                    if n <= size {
                        start = s
                        length = n
                        status = 206
                        let b = L.work
                        b.clear()
                        ByteRanges.appendContentRange(b, start: s, length: n, size: size)
                        response.fields.append(.contentRange, value: b.readable)
                    }
                case .multiple(let rs):
                    if rs.reduce(0, { $0 + $1.length }) <= size {
                        multi = rs
                        status = 206
                    }
                }
            }
            response.fields.append(.acceptRanges, "bytes")
            response.status = override != 0 ? override : status
            guard let file = body.file else { return HandlerError.fail(request, response, status: 500, trace: FileServerHandler.trace) }
            if let rs = multi {
                // Part headers carry the Content-Type the whole file would have had.
                let ctIndex = response.fields.firstIndex(.contentType)
                let ct: [UInt8]? = ctIndex.map { i in response.fields.withField(i) { _, v in Array(v) } }
                let boundary = MultipartRangesBody.boundary()
                let mp = ct.withUnsafeBytesOrNil { ctBytes in
                    MultipartRangesBody(file: file, ranges: rs, contentType: ctBytes, size: size, boundary: boundary)
                }
                response.fields.remove(.contentType)
                response.fields.append(name: "Content-Type", value: "multipart/byteranges; boundary=" + String(decoding: boundary, as: UTF8.self))
                return mp.start(response, isHEAD: isHEAD)
            }
            let st = response.status
            if isHEAD || length == 0 || st < 200 || st == 204 || st == 304 {
                response.sendHead(contentLength: length)
                response.finish()
                return .done
            }
            return response.send(file: file, offset: start, count: length)
        }
    }

    /// Go's `serveError` + `http.Error`: validators dropped, a plain-text body.
    private func serveError(_ code: Int, _ message: StaticString, _ override: Int, _ response: HTTPResponse) -> HandlerResult {
        response.fields.remove(.etag)
        response.fields.remove(.lastModified)
        response.fields.remove(.cacheControl)
        response.fields.remove(.contentType)
        response.fields.append(.contentType, "text/plain; charset=utf-8")
        response.fields.append(name: "X-Content-Type-Options", value: "nosniff")
        response.status = override != 0 ? override : code
        response.send(message)
        return .done
    }

    /// Caddy's `redirect` + Go's `http.Redirect` with 308: leading `//` collapsed (no open
    /// redirects), the query kept, the path cleaned with its trailing slash kept, non-ASCII
    /// bytes hex-escaped in Location; GET gets `<a href="…">Permanent Redirect</a>.` and
    /// `text/html`, HEAD the type without a body, other methods an empty body.
    func redirect(to path: [UInt8], _ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        var p = path[...]
        while p.count >= 2 && p[p.startIndex] == UInt8(ascii: "/") && p[p.startIndex + 1] == UInt8(ascii: "/") {
            p = p.dropFirst()
        }
        var url = Array(p)
        if let q = request.queryRange, !q.isEmpty {
            url.append(UInt8(ascii: "?"))
            request.withLineBytes(q) { url.append(contentsOf: $0) }
        }
        if FileServerHandler.parsesAsURL(url) {
            let qi = url.firstIndex(of: UInt8(ascii: "?")) ?? url.count
            let trailing = qi > 0 && url[qi - 1] == UInt8(ascii: "/")
            let out = ByteBuffer(capacity: url.count + 2)
            url[0..<qi].withUnsafeBytes { CleanPath.goClean($0, into: out) }
            if trailing && out.readable.last != UInt8(ascii: "/") { out.append(byte: UInt8(ascii: "/")) }
            out.append(Array(url[qi...]))
            url = out.readableArray()
        }
        var location: [UInt8] = []
        let hex: StaticString = "0123456789abcdef"
        for c in url {
            if c >= 0x80 {
                location.append(UInt8(ascii: "%"))
                if c >> 4 != 0 { location.append(hex.utf8Start[Int(c >> 4)]) }
                location.append(hex.utf8Start[Int(c & 15)])
            } else {
                location.append(c)
            }
        }
        let hadType = response.fields.contains(.contentType)
        location.withUnsafeBytes { response.fields.append(.location, value: $0) }
        let getOrHead = request.method == .GET || request.method == .HEAD
        if !hadType && getOrHead { response.fields.append(.contentType, "text/html; charset=utf-8") }
        response.status = 308
        if request.method == .GET && !hadType {
            let b = ByteBuffer(capacity: url.count * 2 + 64)
            b.append("<a href=\"")
            BrowseHTML.escape(url, b)
            b.append("\">Permanent Redirect</a>.\n\n")
            response.send(body: b.readable)
        } else if request.method == .HEAD {
            response.sendHead(contentLength: nil)
            response.finish()
        } else {
            response.sendEmpty()
        }
        return .done
    }

    /// Whether Go's url.Parse accepts the redirect target (no control characters, valid
    /// `%` escapes); only then does http.Redirect clean it.
    static func parsesAsURL(_ u: [UInt8]) -> Bool {
        var i = 0
        while i < u.count {
            let c = u[i]
            if c < 0x20 || c == 0x7F { return false }
            if c == UInt8(ascii: "%") {
                guard i + 2 < u.count, URLDecoding.hex(u[i + 1]) != nil, URLDecoding.hex(u[i + 2]) != nil else { return false }
            }
            i += 1
        }
        return true
    }
}

extension Optional where Wrapped == [UInt8] {
    fileprivate func withUnsafeBytesOrNil<R>(_ body: (UnsafeRawBufferPointer?) -> R) -> R {
        switch self {
        case .none: return body(nil)
        case .some(let a): return a.withUnsafeBytes { body($0) }
        }
    }
}

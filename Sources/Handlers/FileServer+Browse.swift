#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// `file_server browse`: a directory listing when a directory has no index file (Caddy's
/// `browse.go`, `browsetplcontext.go`).
///
/// - A directory requested without its trailing slash is redirected (308) first, so relative
///   links work — unless a rewrite changed the last path element.
/// - Entries hidden by `hide` are left out; symlinks are followed only as the file server
///   itself would open them (beneath the root by default), to tell directories from files
///   and to show the target's size.
/// - `Accept` containing `application/json` gets Caddy's JSON array (`name`, `size`, `url`,
///   `mod_time`, `mode`, `is_dir`, `is_symlink`); `text/plain` a plain table; anything else
///   Berth's own HTML page (names HTML-escaped, links path-escaped, sortable by name, size and
///   time through `?sort=name|namedirfirst|size|time&order=asc|desc`, with `limit` and
///   `offset`, no scripts, served with a restrictive Content-Security-Policy). A custom
///   template (Caddy's Go templates) is not supported.
/// - `sort`/`order` query values are remembered in cookies, as Caddy does; Last-Modified is
///   the newest of the directory and its entries, and If-Modified-Since gives 304.
/// - At most `fileLimit` (default 10000) entries are read.
struct BrowseSettings: Sendable {
    var sort: String? = nil
    var order: String? = nil
    var fileLimit = 10000
    var revealSymlinks = false
}

struct BrowseItem {
    var name: [UInt8]
    var lowerName: [UInt8]
    var size: Int64
    var mtimeSec: Int
    var mtimeNsec: Int
    var mode: UInt32
    var isDir: Bool
    var isSymlink: Bool
    var symlinkPath: [UInt8]
}

extension FileServerHandler {
    /// Reads the directory `dir` (a cached descriptor) into items. `abs` is the directory's
    /// absolute file name, `rel` its path beneath the root.
    func readListing(_ dir: SharedFile, rootFD: Int32, abs: [UInt8], rel: [UInt8], request: HTTPRequest,
                     newest: inout (Int, Int)) -> [BrowseItem]? {
        let fd = dup(dir.fd)
        guard fd >= 0 else { return nil }
        _ = lseek(fd, 0, SEEK_SET)
        guard let d = fdopendir(fd) else {
            close(fd)
            return nil
        }
        defer { closedir(d) }
        var items: [BrowseItem] = []
        let limit = browseSettings?.fileLimit ?? 10000
        while items.count < limit, let ent = readdir(d) {
            let name: [UInt8] = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            let full = abs + [UInt8(ascii: "/")] + name
            if full.withUnsafeBytes({ isHidden($0, request) }) { continue }
            var st = stat()
            let ok = name.withUnsafeBufferPointer { b in
                withUnsafeTemporaryAllocation(of: CChar.self, capacity: b.count + 1) { c in
                    for i in 0..<b.count { c[i] = CChar(bitPattern: b[i]) }
                    c[b.count] = 0
                    return fstatat(dir.fd, c.baseAddress!, &st, AT_SYMLINK_NOFOLLOW) == 0
                }
            }
            if !ok { continue }
            var item = BrowseItem(name: name, lowerName: [], size: Int64(st.st_size), mtimeSec: Int(st.st_mtim.tv_sec),
                                  mtimeNsec: Int(st.st_mtim.tv_nsec), mode: BrowseJSON.goFileMode(UInt32(st.st_mode)),
                                  isDir: (st.st_mode & S_IFMT) == S_IFDIR, isSymlink: (st.st_mode & S_IFMT) == S_IFLNK,
                                  symlinkPath: [])
            if (item.mtimeSec, item.mtimeNsec) > newest { newest = (item.mtimeSec, item.mtimeNsec) }
            if item.isSymlink {
                // The target as the file server would open it.
                let target = rel.isEmpty ? name : rel + [UInt8(ascii: "/")] + name
                let tfd = target.withUnsafeBufferPointer { b in
                    withUnsafeTemporaryAllocation(of: CChar.self, capacity: b.count + 1) { c in
                        for i in 0..<b.count { c[i] = CChar(bitPattern: b[i]) }
                        c[b.count] = 0
                        return FileResolver.open(root: rootFD, path: c.baseAddress!, follow: settings.followSymlinks)
                    }
                }
                if tfd >= 0 {
                    var tst = stat()
                    if fstat(tfd, &tst) == 0 {
                        item.isDir = (tst.st_mode & S_IFMT) == S_IFDIR
                        item.size = Int64(tst.st_size)
                    }
                    close(tfd)
                }
                if browseSettings?.revealSymlinks == true, let t = FileResolver.readLink(dir.fd, name) {
                    item.symlinkPath = t
                }
            }
            if item.isDir { item.name.append(UInt8(ascii: "/")) }
            items.append(item)
        }
        return items
    }

    /// Sorts (Caddy's applySortAndLimit); `sort`/`order` are already resolved.
    static func sortItems(_ items: inout [BrowseItem], sort: String, order: String) {
        if sort == "name" || sort == "namedirfirst" || sort == "size" {
            for i in items.indices { items[i].lowerName = Array(String(decoding: items[i].name, as: UTF8.self).lowercased().utf8) }
        }
        func less(_ a: BrowseItem, _ b: BrowseItem) -> Bool {
            switch sort {
            case "name":
                return a.lowerName.lexicographicallyPrecedes(b.lowerName)
            case "namedirfirst":
                if a.isDir == b.isDir { return a.lowerName.lexicographicallyPrecedes(b.lowerName) }
                return a.isDir
            case "size":
                if a.isDir && b.isDir { return a.lowerName.lexicographicallyPrecedes(b.lowerName) }
                let sa = a.isDir ? Int64(Int32.min) : a.size
                let sb = b.isDir ? Int64(Int32.min) : b.size
                return sa < sb
            case "time":
                return (a.mtimeSec, a.mtimeNsec) < (b.mtimeSec, b.mtimeNsec)
            default:
                return false
            }
        }
        guard ["name", "namedirfirst", "size", "time"].contains(sort) else { return }
        if order == "desc" {
            items.sort { less($1, $0) }
        } else {
            items.sort(by: less)
        }
    }

    /// Serves the listing of directory `node` (redirect first when the slash is missing).
    func serveBrowse(_ node: FSNode, rootFD: Int32, abs: [UInt8], rel: [UInt8], decodedPath: [UInt8], origPath: [UInt8],
                     request: HTTPRequest, response: HTTPResponse) -> HandlerResult {
        if decodedPath.isEmpty
            || decodedPath.withUnsafeBytes({ p in origPath.withUnsafeBytes { o in FSPath.equal(FSPath.base(o), FSPath.base(p)) } })
        {
            if origPath.last != UInt8(ascii: "/") {
                return redirect(to: origPath + [UInt8(ascii: "/")], request, response)
            }
        }
        guard let dir = node.file else { return notFound(request, response) }
        var newest = (node.mtimeSec, node.mtimeNsec)
        guard var items = readListing(dir, rootFD: rootFD, abs: abs, rel: rel, request: request, newest: &newest) else {
            return HandlerError.fail(request, response, status: 500, trace: FileServerHandler.trace)
        }
        response.fields.append(.vary, "Accept, Accept-Encoding")
        if let ims = request.fields.withValue(.ifModifiedSince, { HTTPDate.parse(Preconditions.trim($0)) }) ?? nil,
            newest.0 <= ims
        {
            response.status = 304
            response.sendEmpty()
            return .done
        }
        // Query parameters over the configured defaults; cookies when no parameter.
        var sort = browseSettings?.sort ?? ""
        var order = browseSettings?.order ?? ""
        let q = BrowseQuery(request)
        if let s = q["sort"], !s.isEmpty { sort = s }
        if let o = q["order"], !o.isEmpty { order = o }
        let secure = request.connection.isTLS ? "; Secure" : ""
        switch sort {
        case "":
            sort = BrowseQuery.cookie(request, "sort") ?? "namedirfirst"
        case "name", "namedirfirst", "size", "time":
            response.fields.append(name: "Set-Cookie", value: "sort=\(sort); HttpOnly\(secure); SameSite=Lax")
        default: break
        }
        switch order {
        case "":
            order = BrowseQuery.cookie(request, "order") ?? "asc"
        case "asc", "desc":
            response.fields.append(name: "Set-Cookie", value: "order=\(order); HttpOnly\(secure); SameSite=Lax")
        default: break
        }
        FileServerHandler.sortItems(&items, sort: sort, order: order)
        var offset = 0, limit = 0
        if let o = q["offset"], let v = Int(o), v > 0, v <= items.count {
            items.removeFirst(v)
            offset = v
        }
        if let l = q["limit"], let v = Int(l), v > 0, v <= items.count {
            items.removeLast(items.count - v)
            limit = v
        }
        var accept = ""
        for i in request.fields.entries.indices where request.fields.entries[i].token == .accept {
            request.fields.withField(i) { _, v in accept += (accept.isEmpty ? "" : ",") + String(decoding: v, as: UTF8.self) }
        }
        accept = accept.lowercased()
        let body = ByteBuffer(capacity: 4096)
        let lm = HTTPDate.string(epochSeconds: newest.0)
        response.fields.append(name: "Last-Modified", value: lm)
        if accept.contains("application/json") {
            BrowseJSON.write(items, into: body)
            response.fields.append(.contentType, "application/json; charset=utf-8")
        } else if accept.contains("text/plain") {
            BrowseHTML.writeText(items, into: body)
            response.fields.append(.contentType, "text/plain; charset=utf-8")
        } else {
            BrowseHTML.write(items, path: origPath, sort: sort, order: order, offset: offset, limit: limit, into: body)
            response.fields.append(.contentType, "text/html; charset=utf-8")
            response.fields.append(name: "Content-Security-Policy", value: BrowseHTML.csp)
        }
        if request.method == .HEAD {
            response.sendHead(contentLength: nil)
            response.finish()
        } else {
            response.send(body: body.readable)
        }
        return .done
    }
}

/// The query string of a browse request (Go's `url.Values.Get` on `r.URL.Query()`).
struct BrowseQuery {
    var pairs: [(String, String)] = []

    init(_ request: HTTPRequest) {
        guard let r = request.queryRange else { return }
        let raw = request.withLineBytes(r) { Array($0) }
        for part in raw.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if part.contains(UInt8(ascii: ";")) { continue }
            let kv = part.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let k = BrowseQuery.unescape(kv[0]) else { continue }
            let v = kv.count > 1 ? BrowseQuery.unescape(kv[1]) : ""
            guard let v else { continue }
            pairs.append((k, v))
        }
    }

    subscript(_ key: String) -> String? { pairs.first { $0.0 == key }?.1 }

    static func unescape(_ s: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if c == UInt8(ascii: "+") {
                out.append(0x20)
                i += 1
            } else if c == UInt8(ascii: "%") {
                guard i + 2 < s.endIndex, let h = URLDecoding.hex(s[i + 1]), let l = URLDecoding.hex(s[i + 2]) else { return nil }
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The value of cookie `name` (first match), or nil.
    static func cookie(_ request: HTTPRequest, _ name: String) -> String? {
        for i in request.fields.entries.indices where request.fields.entries[i].token == .cookie {
            let v = request.fields.withField(i) { _, v in String(decoding: v, as: UTF8.self) }
            for c in v.split(separator: ";") {
                let kv = c.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].trimmingCharacters() == name { return String(kv[1]).trimmingCharacters() }
            }
        }
        return nil
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

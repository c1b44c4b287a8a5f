import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `root [<matcher>] <path>` (Caddy's parseRoot): `vars {root: path}`. With one argument
    /// it is the path even when it starts with `/`; with two, the first is the matcher.
    static func root(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let count = d.countRemainingArgs()
        if count == 0 { throw d.err("too few arguments; must have at least a root path") }
        if count > 2 { throw d.err("too many arguments; should only be a matcher and a path") }
        var m: (sets: [[any MatcherSpec]], specificity: Int?)? = nil
        if count == 2 { m = try matcher(&d, site) }
        guard d.nextArg() else { throw d.argErr() }
        site.addRoute("root", matcher: m, handlers: [.spec(VarsSpec(entries: [("root", d.val)]))])
    }

    /// `file_server [<matcher>] [browse] { fs root hide index browse precompressed status
    /// disable_canonical_uris pass_thru follow_symlinks }` (`fileserver/caddyfile.go`).
    /// `follow_symlinks` is a Berth extension: without it, symlinks that lead out of the root
    /// are refused (Caddy always follows them). The Caddyfile the directive comes from is
    /// added to `hide` (Caddy's FinalizeUnmarshalCaddyfile).
    static func fileServer(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let file = d.file
        let m = try matcher(&d, site)
        var spec = FileServerSpec()
        let args = d.remainingArgs()
        switch args.count {
        case 0: break
        case 1:
            guard args[0] == "browse" else { throw d.argErr() }
            spec.browse = FileServerSpec.Browse()
        default:
            throw d.argErr()
        }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            switch d.val {
            case "fs":
                throw d.err("file_server fs (virtual file systems) is not supported by Berth")
            case "hide":
                let h = d.remainingArgs()
                if h.isEmpty { throw d.argErr() }
                spec.hide += h
            case "index":
                let i = d.remainingArgs()
                if i.isEmpty { throw d.argErr() }
                spec.indexNames = i
            case "root":
                guard d.nextArg() else { throw d.argErr() }
                spec.root = d.val
                if d.nextArg() { throw d.argErr() }
            case "browse":
                if spec.browse != nil { throw d.err("browsing is already configured") }
                var b = FileServerSpec.Browse()
                if d.nextArg() {
                    throw d.err("browse template files are not supported by Berth (Caddy's Go templates); remove '\(d.val)' to use the built-in listing")
                }
                let inner = d.nesting
                while d.nextBlock(inner) {
                    switch d.val {
                    case "reveal_symlinks":
                        if b.revealSymlinks { throw d.err("Symlinks path reveal is already enabled") }
                        b.revealSymlinks = true
                    case "sort":
                        while d.nextArg() {
                            guard ["name", "namedirfirst", "size", "time", "asc", "desc"].contains(d.val) else {
                                throw d.err("unknown sort option '\(d.val)'")
                            }
                            b.sort.append(d.val)
                        }
                    case "file_limit":
                        let l = d.remainingArgs()
                        if l.count != 1 { throw d.err("file_limit should have an integer value") }
                        if b.fileLimit != 0 { throw d.err("file_limit is already enabled") }
                        b.fileLimit = GoStrconv.atoi(l[0]) ?? 0
                    default:
                        throw d.err("unknown subdirective '\(d.val)'")
                    }
                }
                spec.browse = b
            case "precompressed":
                var p = d.remainingArgs()
                if p.isEmpty { p = ["br", "zstd", "gzip"] }
                for f in p where !["br", "zstd", "gzip"].contains(f) {
                    throw d.err("getting module named 'http.precompressed.\(f)': module not registered: http.precompressed.\(f)")
                }
                spec.precompressed = p
            case "status":
                guard d.nextArg() else { throw d.argErr() }
                spec.status = d.val
            case "disable_canonical_uris":
                if d.nextArg() { throw d.argErr() }
                spec.canonicalURIs = false
            case "pass_thru":
                if d.nextArg() { throw d.argErr() }
                spec.passThru = true
            case "follow_symlinks":
                if d.nextArg() { throw d.argErr() }
                spec.followSymlinks = true
            case "etag_file_extensions":
                throw d.err("file_server etag_file_extensions is not supported by this Berth build yet")
            default:
                throw d.err("unknown subdirective '\(d.val)'")
            }
        }
        if let b = spec.browse, let s = b.sort.first, !["name", "namedirfirst", "size", "time"].contains(s) {
            throw d.err("the first option must be one of the following: name, namedirfirst, size, time, but got \(s)")
        }
        if let b = spec.browse, b.sort.count > 2 {
            throw d.err("only max 2 sort options are allowed, but got \(b.sort.count)")
        }
        spec.hideConfigFile(file)
        site.addRoute("file_server", matcher: m, handlers: [.spec(spec)])
    }
}

/// Caddy's `file_server` handler as configured.
package struct FileServerSpec: HandlerSpec {
    package struct Browse: Sendable, Equatable {
        package var sort: [String] = []
        package var fileLimit = 0
        package var revealSymlinks = false
    }
    package var root: String? = nil
    package var hide: [String] = []
    package var indexNames: [String]? = nil
    package var browse: Browse? = nil
    package var precompressed: [String] = []
    package var status: String? = nil
    package var canonicalURIs = true
    package var passThru = false
    package var followSymlinks = false
    package init() {}

    /// Caddy's FinalizeUnmarshalCaddyfile: hide the config file unless already hidden; a
    /// bare name gets `./` so only that file is hidden, not every file of that name.
    mutating func hideConfigFile(_ file: String) {
        guard !file.isEmpty else { return }
        let clean = FileServerSpec.cleanPath(file)
        if FileServerSpec.isHidden(clean, by: hide) { return }
        hide.append(clean.contains("/") ? clean : "./" + clean)
    }

    static func cleanPath(_ p: String) -> String {
        var parts: [Substring] = []
        let rooted = p.hasPrefix("/")
        for s in p.split(separator: "/", omittingEmptySubsequences: true) {
            if s == "." { continue }
            if s == "..", let last = parts.last, last != ".." {
                parts.removeLast()
                continue
            }
            if s == ".." && rooted { continue }
            parts.append(s)
        }
        let body = parts.joined(separator: "/")
        if rooted { return "/" + body }
        return body.isEmpty ? "." : body
    }

    /// Whether `file` is already hidden by `patterns` (absolute comparisons, as Caddy).
    static func isHidden(_ file: String, by patterns: [String]) -> Bool {
        let abs = FileServerHandler.absolute(file)
        return patterns.contains { FileServerHandler.hides(pattern: $0, file: abs) }
    }

    package var handlerName: String { "file_server" }
    package var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if let b = browse {
            var bo: [(String, JSONValue)] = []
            if b.fileLimit != 0 { bo.append(("file_limit", .int(b.fileLimit))) }
            if b.revealSymlinks { bo.append(("reveal_symlinks", .bool(true))) }
            if !b.sort.isEmpty { bo.append(("sort", .array(b.sort.map { .string($0) }))) }
            o.append(("browse", .object(bo)))
        }
        if !canonicalURIs { o.append(("canonical_uris", .bool(false))) }
        if followSymlinks { o.append(("follow_symlinks", .bool(true))) }
        if !hide.isEmpty { o.append(("hide", .array(hide.map { .string($0) }))) }
        if let i = indexNames { o.append(("index_names", .array(i.map { .string($0) }))) }
        if passThru { o.append(("pass_thru", .bool(true))) }
        if !precompressed.isEmpty {
            o.append(("precompressed", .object(precompressed.sorted().map { ($0, .object([])) })))
            o.append(("precompressed_order", .array(precompressed.map { .string($0) })))
        }
        if let r = root { o.append(("root", .string(r))) }
        if let s = status { o.append(("status_code", Int(s).map { .int($0) } ?? .string(s))) }
        return o
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        var s = FileServerHandler.Settings()
        s.root = root
        s.hide = hide
        // The running config file is always hidden, also when this directive came from an
        // imported file.
        if let f = context.sourceFile, !f.isEmpty {
            let clean = FileServerSpec.cleanPath(f)
            if !FileServerSpec.isHidden(clean, by: s.hide) { s.hide.append(clean) }
        }
        if let i = indexNames { s.indexNames = i }
        if let b = browse {
            var c = FileServerHandler.BrowseConfig()
            c.sort = b.sort
            c.fileLimit = b.fileLimit
            c.revealSymlinks = b.revealSymlinks
            s.browse = c
        }
        s.precompressed = precompressed
        s.status = status
        s.canonicalURIs = canonicalURIs
        s.passThru = passThru
        s.followSymlinks = followSymlinks
        return FileServerHandler(s, environment: context.environment)
    }
}

// MARK: Berth's JSON

extension FileServerSpec {
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        var spec = FileServerSpec()
        if let b = try r.object("browse") {
            var browse = Browse()
            browse.fileLimit = try b.int("file_limit") ?? 0
            browse.revealSymlinks = try b.bool("reveal_symlinks") ?? false
            if let sort = try b.strings("sort") {
                for s in sort where !["name", "namedirfirst", "size", "time", "asc", "desc"].contains(s) {
                    throw b.error("sort", "unknown sort option '\(s)'")
                }
                browse.sort = sort
            }
            try b.finish()
            spec.browse = browse
        }
        spec.canonicalURIs = try r.bool("canonical_uris") ?? true
        spec.followSymlinks = try r.bool("follow_symlinks") ?? false
        spec.hide = try r.strings("hide") ?? []
        spec.indexNames = try r.strings("index_names")
        spec.passThru = try r.bool("pass_thru") ?? false
        if let pre = try r.object("precompressed") {
            for k in pre.keys {
                guard ["br", "zstd", "gzip"].contains(k) else { throw pre.error(k, "unknown precompressed encoding (br, zstd, gzip)") }
                if let o = try pre.object(k) { try o.finish() }
            }
            try pre.finish()
            let order = try r.strings("precompressed_order") ?? pre.keys
            guard Set(order) == Set(pre.keys), order.count == pre.keys.count else {
                throw r.error("precompressed_order", "must list the keys of precompressed, each once")
            }
            spec.precompressed = order
        } else if r.has("precompressed_order") {
            throw r.error("precompressed_order", "needs precompressed")
        }
        spec.root = try r.string("root")
        spec.status = try r.statusText("status_code")
        return spec
    }
}

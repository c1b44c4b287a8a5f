import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `rewrite [<matcher>] <to>` (`rewrite/caddyfile.go`): with one argument it is the target
    /// (so `rewrite /a` rewrites everything to `/a`); with two, the first is the matcher.
    static func rewrite(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let count = d.countRemainingArgs()
        if count == 0 { throw d.err("too few arguments; must have at least a rewrite URI") }
        if count > 2 { throw d.err("too many arguments; should only be a matcher and a URI") }
        var m: (sets: [[any MatcherSpec]], specificity: Int?)? = nil
        if count == 2 { m = try matcher(&d, site) }
        guard d.nextArg() else { throw d.argErr() }
        site.addRoute("rewrite", matcher: m, handlers: [.spec(RewriteSpec(uri: d.val))])
    }

    /// `uri [<matcher>] strip_prefix|strip_suffix <s> | replace <find> <repl> [<limit>] |
    /// path_regexp <re> <repl>`.
    static func uri(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        let args = d.remainingArgs()
        guard let op = args.first else { throw d.argErr() }
        var spec = RewriteSpec()
        switch op {
        case "strip_prefix":
            guard args.count == 2 else { throw d.argErr() }
            spec.stripPrefix = args[1]
        case "strip_suffix":
            guard args.count == 2 else { throw d.argErr() }
            spec.stripSuffix = args[1]
        case "replace":
            guard args.count == 3 || args.count == 4 else { throw d.argErr() }
            var limit = 0
            if args.count == 4 {
                guard let l = GoStrconv.atoi(args[3]) else {
                    throw d.err("limit must be an integer; invalid: strconv.Atoi: parsing \"\(args[3])\": invalid syntax")
                }
                limit = l
            }
            spec.replace = (args[1], args[2], limit)
        case "path_regexp":
            guard args.count == 3 else { throw d.argErr() }
            if args[1].isEmpty { throw d.err("path_regexp find cannot be empty") }
            do { spec.pathRegexp = (try Regex(args[1]), args[2]) } catch {
                throw d.err("compiling regular expression 0: \(error.description)")
            }
        case "query":
            throw d.err("uri query is not supported by this Berth build yet")
        default:
            throw d.err("unrecognized URI manipulation '\(op)'")
        }
        site.addRoute("uri", matcher: m, handlers: [.spec(spec)])
    }

    /// `method [<matcher>] <method>`.
    static func method(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        guard d.nextArg() else { throw d.argErr() }
        let v = d.val
        if d.nextArg() { throw d.argErr() }
        var spec = RewriteSpec()
        spec.method = v
        site.addRoute("method", matcher: m, handlers: [.spec(spec)])
    }

    /// `try_files <files...> { policy first_exist|first_exist_fallback }`: a `file` matcher plus
    /// a rewrite to `{http.matchers.file.relative}`; items with a query string get their own
    /// route, and several routes form one group (`fileserver/caddyfile.go` parseTryFiles).
    static func tryFiles(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let files = d.remainingArgs()
        if files.isEmpty { throw d.argErr() }
        var policy: String? = nil
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            switch d.val {
            case "policy":
                if policy != nil { throw d.err("try policy already configured") }
                guard d.nextArg() else { throw d.argErr() }
                switch d.val {
                case "first_exist", "first_exist_fallback": policy = d.val
                case "largest_size", "smallest_size", "most_recently_modified":
                    throw d.err("try policy '\(d.val)' is not supported by this Berth build yet")
                default: throw d.err("unrecognized try policy: \(d.val)")
                }
            default:
                break
            }
        }
        var routes: [RouteConfig] = []
        func make(_ items: [String], _ query: String) {
            var fm = FileMatcherSpec()
            fm.tryFiles = items
            fm.tryPolicy = policy
            routes.append(RouteConfig(match: [[fm]], handle: [.spec(RewriteSpec(uri: "{http.matchers.file.relative}" + query))]))
        }
        var pending: [String] = []
        for item in files {
            if let q = item.firstIndex(of: "?") {
                if !pending.isEmpty {
                    make(pending, "")
                    pending = []
                }
                make([String(item[..<q])], String(item[q...]))
                continue
            }
            pending.append(item)
        }
        if !pending.isEmpty { make(pending, "") }
        if routes.count > 1 {
            let g = site.groups.next()
            for i in routes.indices { routes[i].group = g }
        }
        for r in routes {
            site.routes.append(DirectiveRoute(directive: "try_files", route: r, pathSpecificity: nil, hasMatcher: true))
        }
    }
}

/// Caddy's `rewrite` handler as configured.
package struct RewriteSpec: HandlerSpec {
    package var method: String? = nil
    package var uri: String? = nil
    package var stripPrefix: String? = nil
    package var stripSuffix: String? = nil
    package var replace: (find: String, replace: String, limit: Int)? = nil
    package var pathRegexp: (Regex, String)? = nil

    package init(uri: String? = nil) { self.uri = uri }

    package var handlerName: String { "rewrite" }
    package var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if let m = method { o.append(("method", .string(m))) }
        if let p = pathRegexp {
            o.append(("path_regexp", .array([.object([("find", .string(p.0.pattern)), ("replace", .string(p.1))])])))
        }
        if let p = stripPrefix { o.append(("strip_path_prefix", .string(p))) }
        if let s = stripSuffix { o.append(("strip_path_suffix", .string(s))) }
        if let u = uri { o.append(("uri", .string(u))) }
        if let r = replace {
            var e: [(String, JSONValue)] = [("find", .string(r.find)), ("replace", .string(r.replace))]
            if r.limit != 0 { e.append(("limit", .int(r.limit))) }
            o.append(("uri_substring", .array([.object(e)])))
        }
        return o
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        func t(_ s: String) -> Template { Template(s, keepUnknown: false, environment: context.environment) }
        var ops: [RewriteHandler.Op] = []
        if let u = uri { ops.append(.uri(RewriteHandler.URI(u))) }
        if let p = stripPrefix { ops.append(.stripPrefix(t(p))) }
        if let s = stripSuffix { ops.append(.stripSuffix(t(s))) }
        if let r = replace { ops.append(.replace(find: t(r.find), replace: t(r.replace), limit: r.limit, mergeSlashes: !r.find.contains("//"))) }
        if let p = pathRegexp { ops.append(.pathRegexp(p.0, t(p.1))) }
        return RewriteHandler(method: method.map(t), ops: ops)
    }
}

// MARK: Berth's JSON

extension RewriteSpec {
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        var spec = RewriteSpec()
        spec.method = try r.string("method")
        spec.uri = try r.string("uri")
        spec.stripPrefix = try r.string("strip_path_prefix")
        spec.stripSuffix = try r.string("strip_path_suffix")
        func single(_ key: String) throws(ConfigError) -> JSONObjectReader? {
            guard let a = try r.array(key) else { return nil }
            guard a.count == 1 else { throw r.error(key, "Berth supports exactly one entry here") }
            return try JSONObjectReader(a[0].0, a[0].1)
        }
        if let o = try single("path_regexp") {
            guard let find = try o.string("find") else { throw o.missing("find") }
            let repl = try o.string("replace") ?? ""
            try o.finish()
            if find.isEmpty { throw o.error("find", "path_regexp find cannot be empty") }
            do { spec.pathRegexp = (try Regex(find), repl) } catch { throw o.error("find", error.description) }
        }
        if let o = try single("uri_substring") {
            guard let find = try o.string("find") else { throw o.missing("find") }
            spec.replace = (find, try o.string("replace") ?? "", try o.int("limit") ?? 0)
            try o.finish()
        }
        return spec
    }
}

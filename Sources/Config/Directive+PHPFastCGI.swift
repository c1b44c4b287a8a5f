import Caddyfile
import Handlers
import JSON
import Upstream

/// `transport fastcgi { … }` as configured (Caddy's `reverseproxy/fastcgi` Transport).
package struct FastCGISpec: Sendable {
    package var root: String? = nil
    package var split: [String] = []
    /// `env` entries; a name given twice keeps its last value (Caddy's map).
    package var env: [(String, String)] = []
    package var resolveRootSymlink = false
    package var captureStderr = false
    package var dialTimeoutMilliseconds: Int? = nil
    package var readTimeoutMilliseconds: Int? = nil
    package var writeTimeoutMilliseconds: Int? = nil

    package init() {}

    mutating func setEnv(_ k: String, _ v: String) {
        if let i = env.firstIndex(where: { $0.0 == k }) { env[i].1 = v } else { env.append((k, v)) }
    }

    /// The `transport` object (keys sorted, as `caddy adapt` prints a module map).
    var json: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if captureStderr { o.append(("capture_stderr", .bool(true))) }
        if let t = dialTimeoutMilliseconds { o.append(("dial_timeout", .int(t * 1_000_000))) }
        if !env.isEmpty { o.append(("env", .object(env.sorted { $0.0 < $1.0 }.map { ($0.0, .string($0.1)) }))) }
        o.append(("protocol", .string("fastcgi")))
        if let t = readTimeoutMilliseconds { o.append(("read_timeout", .int(t * 1_000_000))) }
        if resolveRootSymlink { o.append(("resolve_root_symlink", .bool(true))) }
        if let r = root { o.append(("root", .string(r))) }
        if !split.isEmpty { o.append(("split_path", .array(split.map { .string($0) }))) }
        if let t = writeTimeoutMilliseconds { o.append(("write_timeout", .int(t * 1_000_000))) }
        return o
    }

    static func decode(_ t: JSONObjectReader) throws(ConfigError) -> FastCGISpec {
        var f = FastCGISpec()
        f.captureStderr = try t.bool("capture_stderr") ?? false
        f.dialTimeoutMilliseconds = try t.milliseconds("dial_timeout")
        if let e = try t.object("env") {
            for k in e.keys { f.env.append((k, try e.string(k) ?? "")) }
            try e.finish()
        }
        f.readTimeoutMilliseconds = try t.milliseconds("read_timeout")
        f.resolveRootSymlink = try t.bool("resolve_root_symlink") ?? false
        f.root = try t.string("root")
        f.split = try t.strings("split_path") ?? []
        for s in f.split where !s.utf8.allSatisfy({ $0 < 0x80 }) {
            throw t.error("split_path", "split path contains non-ASCII characters")
        }
        f.writeTimeoutMilliseconds = try t.milliseconds("write_timeout")
        return f
    }

    /// The run-time options; `transport` gets the timeouts (and no keep-alive: Caddy opens
    /// a connection per FastCGI request).
    func options(_ context: BuildContext, transport: inout TransportOptions) -> FastCGIOptions {
        var o = FastCGIOptions()
        o.root = root.map { TemplateHeaderValue($0, environment: context.environment) }
        o.splitPath = split.map { Array($0.lowercased().utf8) }
        o.env = env.map { (Array($0.0.utf8), TemplateHeaderValue($0.1, environment: context.environment) as any HeaderValueSource) }
        o.resolveRootSymlink = resolveRootSymlink
        o.captureStderr = captureStderr
        transport.dialTimeoutMilliseconds = dialTimeoutMilliseconds ?? 3000
        transport.readTimeoutMilliseconds = readTimeoutMilliseconds
        transport.writeTimeoutMilliseconds = writeTimeoutMilliseconds
        transport.keepAlive = false
        return o
    }
}

extension DirectiveParsers {
    /// `transport fastcgi { root, split, env, resolve_root_symlink, dial_timeout,
    /// read_timeout, write_timeout, capture_stderr }` (`fastcgi/caddyfile.go`).
    static func fastcgiTransportBlock(_ d: inout Dispenser, _ f: inout FastCGISpec) throws(CaddyfileError) {
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            let sub = d.val
            if try fastcgiOption(sub, &d, &f) { continue }
            throw d.err("unrecognized subdirective \(sub)")
        }
    }

    /// One option shared by `transport fastcgi` and `php_fastcgi`; false when `sub` is not one.
    static func fastcgiOption(_ sub: String, _ d: inout Dispenser, _ f: inout FastCGISpec) throws(CaddyfileError) -> Bool {
        switch sub {
        case "root":
            f.root = try oneArg(&d)
        case "split":
            let args = d.remainingArgs()
            if args.isEmpty { throw d.argErr() }
            for s in args where !s.utf8.allSatisfy({ $0 < 0x80 }) {
                throw d.err("split path contains non-ASCII characters")
            }
            f.split = args
        case "env":
            let args = d.remainingArgs()
            if args.count != 2 { throw d.argErr() }
            f.setEnv(args[0], args[1])
        case "resolve_root_symlink":
            if d.nextArg() { throw d.argErr() }
            f.resolveRootSymlink = true
        case "capture_stderr":
            if d.nextArg() { throw d.argErr() }
            f.captureStderr = true
        case "dial_timeout":
            f.dialTimeoutMilliseconds = try duration(&d, sub)
        case "read_timeout":
            f.readTimeoutMilliseconds = try duration(&d, sub)
        case "write_timeout":
            f.writeTimeoutMilliseconds = try duration(&d, sub)
        default:
            return false
        }
        return true
    }

    /// `php_fastcgi [<matcher>] <php-fpm_gateways...> { root, split, env, index, try_files,
    /// resolve_root_symlink, capture_stderr, dial_timeout, read_timeout, write_timeout, and
    /// every reverse_proxy subdirective }`, expanded as Caddy's `parsePHPFastCGI`:
    ///
    ///     @canonicalPath { file {path}/<index>; not path */ }   redir → {path}/ 308
    ///     @indexFiles file { try_files {path} {path}/<index> <index>; split_path .php }
    ///     rewrite @indexFiles {http.matchers.file.relative}
    ///     @phpFiles path *.php
    ///     reverse_proxy @phpFiles <gateways> { transport fastcgi { split .php } }
    ///
    /// With a matcher the routes go into a subroute behind it; without, they stay together in
    /// the site's routes.
    static func phpFastCGI(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let location = SourceLocation(file: d.file, line: d.line)
        let m = try matcher(&d, site)
        var f = FastCGISpec()
        var extensions = [".php"]
        var indexFile = "index.php"
        var tryFiles: [String] = []
        var spec = ReverseProxySpec()
        try reverseProxyBody(&d, &spec, location: location) { sub, d throws(CaddyfileError) -> Bool in
            switch sub {
            case "split":
                let args = d.remainingArgs()
                if args.isEmpty { throw d.argErr() }
                for s in args where !s.utf8.allSatisfy({ $0 < 0x80 }) {
                    throw d.err("split path contains non-ASCII characters")
                }
                extensions = args
                return true
            case "index":
                let args = d.remainingArgs()
                if args.count != 1 { throw d.argErr() }
                indexFile = args[0]
                return true
            case "try_files":
                let args = d.remainingArgs()
                if args.isEmpty { throw d.argErr() }
                tryFiles = args
                return true
            case "resolve_root_symlink", "capture_stderr":
                // php_fastcgi takes (and ignores) arguments here, as Caddy does.
                _ = d.remainingArgs()
                if sub == "capture_stderr" { f.captureStderr = true } else { f.resolveRootSymlink = true }
                return true
            default:
                return try fastcgiOption(sub, &d, &f)
            }
        }
        f.split = extensions
        if spec.fastcgi != nil || (spec.transportWritten && !spec.transport.tls) {
            throw d.err("transport already specified")
        }
        spec.fastcgi = f
        spec.transportWritten = true
        var routes: [RouteConfig] = []
        if indexFile != "off" {
            let dirIndex = "{http.request.uri.path}/" + indexFile
            var policy: String? = "first_exist_fallback"
            let dirRedir: Bool
            if tryFiles.isEmpty {
                tryFiles = ["{http.request.uri.path}", dirIndex, indexFile]
                dirRedir = true
            } else {
                if !(tryFiles.last ?? "").hasSuffix(".php") { policy = nil }
                dirRedir = tryFiles.contains(dirIndex)
            }
            if dirRedir {
                var file = FileMatcherSpec()
                file.tryFiles = [dirIndex]
                let not = NotMatcherSpec(sets: [[PathMatcherSpec(["*/"])]])
                let redirect = StaticResponseSpec(
                    status: 308,
                    headers: ["Location": ["{http.request.orig_uri.path}/{http.request.orig_uri.prefixed_query}"]])
                routes.append(RouteConfig(match: [[file, not]], handle: [.spec(redirect)]))
            }
            var file = FileMatcherSpec()
            file.tryFiles = tryFiles
            file.tryPolicy = policy
            file.splitPath = extensions
            routes.append(RouteConfig(match: [[file]], handle: [.spec(RewriteSpec(uri: "{http.matchers.file.relative}"))]))
        }
        routes.append(RouteConfig(match: [[PathMatcherSpec(extensions.map { "*" + $0 })]], handle: [.spec(spec)]))
        if let m, !m.sets.isEmpty {
            site.addRoute("php_fastcgi", matcher: m, handlers: [.subroute(routes)])
            return
        }
        // Caddy returns these as one literal subroute that the site flattens in place.
        for r in routes {
            site.routes.append(DirectiveRoute(directive: "php_fastcgi", route: r, pathSpecificity: nil, hasMatcher: true))
        }
    }
}

import Caddyfile

/// Turns a Caddyfile into `BerthConfig`: global options, site blocks, directives, server
/// grouping by listener (caddy-behavior §1, §2, §7).
package enum CaddyfileAdapter {
    /// Adapts Caddyfile bytes read from `filename`.
    package static func adapt(_ input: [UInt8], filename: String, environment: [String: String]) throws(ConfigError) -> BerthConfig {
        let parser = CaddyfileParser(environment: environment)
        let result: CaddyfileParser.Result
        do {
            result = try parser.parseWithWarnings(input, filename: filename)
        } catch {
            throw ConfigError(error)
        }
        var config = BerthConfig()
        config.sourceFile = filename
        config.warnings = result.warnings.map { "\(filename): \($0)" }
        var blocks = result.blocks
        var options = GlobalOptions()
        if let first = blocks.first, first.isGlobalOptions {
            do {
                options = try GlobalOptions.parse(first)
            } catch {
                throw ConfigError(error)
            }
            blocks.removeFirst()
        }
        config.admin = options.admin
        config.autoHTTPS = options.autoHTTPS
        config.gracePeriodMilliseconds = options.gracePeriodMilliseconds ?? config.gracePeriodMilliseconds
        config.shutdownDelayMilliseconds = options.shutdownDelayMilliseconds ?? 0
        config.serverOptions = options.serverOptions

        var sites: [SiteBuild] = []
        var namedRoutes: [String: NamedRouteBuild] = [:]
        for block in blocks {
            if block.isGlobalOptions {
                throw ConfigError(CaddyfileError.globalOptionsNotFirst())
            }
            if block.isNamedRoute {
                do {
                    let (name, nr) = try NamedRouteBuild.parse(block, options: options)
                    namedRoutes[name] = nr
                    config.warnings += nr.warnings
                } catch {
                    throw ConfigError(error)
                }
                continue
            }
            do {
                sites.append(try SiteBuild.parse(block, options: options))
            } catch let e as CaddyfileError {
                throw ConfigError(e)
            } catch let e as ConfigError {
                throw e
            } catch {
                throw ConfigError("\(error)")
            }
        }
        for site in sites { config.warnings += site.state.groups.warnings }
        // Names for unnamed custom site logs (`log0`, `log1`… in block order, Caddy's logCounter);
        // each site log writes to `http.log.access.NAME`.
        var logCounter = 0
        var siteLogs: [(name: String, log: CustomLogConfig?)] = []
        for si in sites.indices {
            for li in sites[si].state.logs.indices {
                var pl = sites[si].state.logs[li]
                var name = pl.name ?? ""
                if pl.name == nil && !pl.log.isEmpty {
                    name = "log\(logCounter)"
                    logCounter += 1
                }
                pl.resolvedName = name
                let empty = pl.log.isEmpty
                if !name.isEmpty { pl.log.include = ["http.log.access." + name] }
                sites[si].state.logs[li] = pl
                siteLogs.append((name, empty ? nil : pl.log))
            }
        }
        config.logs = NamedLog.assemble(global: options.logs, sites: siteLogs, debug: options.debug)
        config.storageRoot = options.storageRoot
        config.servers = try ServerGrouping.group(sites, options: options, namedRoutes: namedRoutes)
        config.listenerUses = ServerGrouping.listenerUses(sites, options: options)
        return config
    }
}

/// One site block, read.
struct SiteBuild {
    var addresses: [SiteAddress]
    var location: SourceLocation
    var state: SiteState
    /// The site's subroute, directives sorted in Caddy's order.
    var routes: [RouteConfig]

    static func parse(_ block: ServerBlock, options: GlobalOptions) throws -> SiteBuild {
        guard let firstKey = block.keys.first else { throw ConfigError("site block without address") }
        let loc = SourceLocation(file: firstKey.file, line: firstKey.line)
        var addrs: [SiteAddress] = []
        for k in block.keys {
            let a = try SiteAddress.parse(k.text, at: SourceLocation(file: k.file, line: k.line))
            if !a.path.isEmpty {
                throw ConfigError("site address '\(k.text)': paths in site addresses are not supported by this Berth build yet; use a path matcher",
                                  at: SourceLocation(file: k.file, line: k.line))
            }
            addrs.append(a)
        }
        var state = SiteState()
        if !options.orderRules.isEmpty {
            let order = OrderRule.apply(options.orderRules, to: directiveOrder)
            state.groups.positions = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        }
        // Caddy replaces placeholder shorthands ({host}, {path}, {re.x.1}…) in every token of
        // the block before parsing it (`httpcaddyfile` ShorthandReplacer).
        let segments = block.segments.map(Shorthands.apply)
        try SiteBuild.parseDirectives(segments, into: &state)
        let sorted = try SiteBuild.buildSubroute(state.routes, sort: true, groups: state.groups)
        return SiteBuild(addresses: addrs, location: loc, state: state, routes: sorted)
    }

    /// Parses the directives of a block — a site block, or the inside of `handle`, `route`,
    /// `handle_path`, `handle_errors` — into `state.routes`: named matcher definitions first
    /// (usable anywhere in the block, Caddy's parseSegmentAsConfig), then each directive through
    /// the registry.
    static func parseDirectives(_ segments: [Segment], into state: inout SiteState) throws(CaddyfileError) {
        for seg in segments where seg.directive.hasPrefix("@") {
            var d = Dispenser(seg)
            try MatcherParsers.defineNamed(&d, &state)
        }
        for seg in segments where !seg.directive.hasPrefix("@") {
            var d = Dispenser(seg)
            guard d.next() else { continue }
            let name = d.val
            if state.nested && nonHandlerDirectives.contains(name) && name != "handle_errors" {
                throw d.err("directive '\(name)' is not an ordered HTTP handler, so it cannot be used here - try placing within a route block or using the order global option")
            }
            try DirectiveRegistry.parse(name, &d, &state)
        }
    }

    /// Caddy's buildSubroute: sorts the routes (site blocks, `handle`; `route` keeps the
    /// written order), then makes `handle`, `rewrite` and `root` routes mutually exclusive
    /// groups — `rewrite` always, the others when there are several.
    static func buildSubroute(_ routes: [DirectiveRoute], sort: Bool, groups: GroupCounter) throws(CaddyfileError) -> [RouteConfig] {
        var ordered = routes
        if sort {
            // Caddy uses sort.SliceStable, which is an insertion sort for the few routes a site
            // has; the comparator is not a strict weak order, so the same algorithm keeps the
            // same result.
            for i in ordered.indices.dropFirst() {
                var j = i
                while j > 0 && SiteBuild.sortsBefore(ordered[j], ordered[j - 1], groups.positions) {
                    ordered.swapAt(j, j - 1)
                    j -= 1
                }
            }
        }
        var names: [String: String] = [:]
        for dir in ["handle", "rewrite", "root"] {
            let count = ordered.filter { $0.directive == dir }.count
            if count > 1 || (dir == "rewrite" && count > 0) { names[dir] = groups.next() }
        }
        return ordered.map { r in
            var route = r.route
            if let g = names[r.directive] { route.group = g }
            return route
        }
    }
}

extension SiteBuild {
    static let directivePositions = Dictionary(uniqueKeysWithValues: directiveOrder.enumerated().map { ($1, $0) })

    /// The path of a route whose only matcher set has a path matcher with exactly one path
    /// (inline `/path` or a named matcher), as Caddy's sortRoutes reads it.
    static func singlePath(_ r: RouteConfig) -> String? {
        guard r.match.count == 1 else { return nil }
        let paths = r.match[0].compactMap { $0 as? PathMatcherSpec }.flatMap(\.paths)
        return paths.count == 1 && !paths[0].isEmpty ? paths[0] : nil
    }

    /// Caddy's sortRoutes (`httpcaddyfile/directives.go`): directive order first; then, when
    /// both routes have a single path, the longer path without its trailing `*` first (equal
    /// trimmed paths: the shorter, exact one first; equal lengths: lexical order); otherwise a
    /// route with a matcher before one without.
    static func sortsBefore(_ a: DirectiveRoute, _ b: DirectiveRoute,
                            _ positions: [String: Int] = directivePositions) -> Bool {
        if a.directive != b.directive {
            return (positions[a.directive] ?? Int.max) < (positions[b.directive] ?? Int.max)
        }
        let byPath: Bool
        if let ip = singlePath(a.route), let jp = singlePath(b.route) {
            let it = ip.hasSuffix("*") ? String(ip.dropLast()) : ip
            let jt = jp.hasSuffix("*") ? String(jp.dropLast()) : jp
            if it == jt {
                byPath = ip.utf8.count < jp.utf8.count
            } else if it.utf8.count == jt.utf8.count {
                byPath = it.utf8.lexicographicallyPrecedes(jt.utf8)
            } else {
                byPath = it.utf8.count > jt.utf8.count
            }
        } else {
            byPath = !a.route.match.isEmpty && b.route.match.isEmpty
        }
        // `vars` is reversed so the most specific value is set last.
        return a.directive == "vars" ? !byPath : byPath
    }
}

enum MatcherParsers {
    /// `@name <matcher> args...` or `@name { <matcher> args... }`: one matcher set (AND);
    /// lines of the same matcher are merged (`path /a` + `path /b` = `path /a /b`), as Caddy
    /// concatenates their tokens.
    static func defineNamed(_ d: inout Dispenser, _ state: inout SiteState) throws(CaddyfileError) {
        guard d.next() else { return }
        let name = d.val
        if d.nextArg() {
            if d.token.isQuoted {
                throw d.err("matcher 'expression' (CEL) is not supported by Berth")
            }
            _ = d.prev()
        }
        let set = try parseSet(&d, matcherName: String(name.dropFirst()))
        if set.isEmpty { throw d.err("named matcher \(name) has no matchers") }
        // Also an error when an enclosing block defined the name (Caddy copies the definitions
        // into the nested scope and refuses duplicates there).
        if state.namedMatchers[name] != nil { throw d.err("matcher is defined more than once: \(name)") }
        state.namedMatchers[name] = [set]
    }

    /// Reads matchers from the rest of the line and the block that follows, grouping the
    /// segments of each matcher name (Caddy's parseMatcherDefinitions / nested sets).
    static func parseSet(_ d: inout Dispenser, matcherName: String) throws(CaddyfileError) -> [any MatcherSpec] {
        var order: [String] = []
        var tokens: [String: [Token]] = [:]
        let nesting = d.nesting
        while d.nextArg() || d.nextBlock(nesting) {
            if d.token.isQuoted {
                throw d.err("matcher 'expression' (CEL) is not supported by Berth")
            }
            let m = d.val
            if tokens[m] == nil { order.append(m) }
            tokens[m, default: []] += d.nextSegment().tokens
        }
        var set: [any MatcherSpec] = []
        for m in order.sorted() {
            var sub = Dispenser(tokens[m] ?? [])
            sub.context["matcher_name"] = matcherName
            set.append(try MatcherRegistry.parse(m, &sub))
        }
        return set
    }
}

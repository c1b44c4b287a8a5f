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
        for block in blocks {
            if block.isGlobalOptions {
                throw ConfigError(CaddyfileError.globalOptionsNotFirst())
            }
            if block.isNamedRoute {
                throw ConfigError("named routes (&(name)) are not supported by this Berth build yet",
                                  at: block.keys.first.map { SourceLocation(file: $0.file, line: $0.line) })
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
        config.servers = try ServerGrouping.group(sites, options: options)
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
        // Named matchers first (they may be used before their definition line? Caddy requires
        // definition anywhere in the block), so collect them in a first pass.
        for seg in block.segments where seg.directive.hasPrefix("@") {
            var d = Dispenser(seg)
            try MatcherParsers.defineNamed(&d, &state)
        }
        for seg in block.segments where !seg.directive.hasPrefix("@") {
            var d = Dispenser(seg)
            guard d.next() else { continue }
            let name = d.val
            try DirectiveRegistry.parse(name, &d, &state)
        }
        // Sort by directive order; within one directive, longer single path matchers first and
        // matcher-less routes last (Caddy's sortRoutes). The sort is stable.
        let order = Dictionary(uniqueKeysWithValues: directiveOrder.enumerated().map { ($1, $0) })
        let sorted = state.routes.enumerated().sorted { a, b in
            let oa = order[a.element.directive] ?? Int.max, ob = order[b.element.directive] ?? Int.max
            if oa != ob { return oa < ob }
            let pa = a.element.pathSpecificity ?? -1, pb = b.element.pathSpecificity ?? -1
            if pa != pb { return pa > pb }
            if a.element.hasMatcher != b.element.hasMatcher { return a.element.hasMatcher }
            return a.offset < b.offset
        }.map(\.element.route)
        return SiteBuild(addresses: addrs, location: loc, state: state, routes: sorted)
    }
}

enum MatcherParsers {
    /// `@name <matcher> args...` or `@name { <matcher> args... }`.
    static func defineNamed(_ d: inout Dispenser, _ state: inout SiteState) throws(CaddyfileError) {
        guard d.next() else { return }
        let name = d.val
        var set: [any MatcherSpec] = []
        func readOne(_ d: inout Dispenser) throws(CaddyfileError) {
            set.append(try MatcherRegistry.parse(d.val, &d))
        }
        if d.nextArg() {
            if d.token.isQuoted && d.countRemainingArgs() == 0 {
                throw d.err("matcher 'expression' (CEL) is not supported by Berth")
            }
            try readOne(&d)
        } else {
            while d.nextBlock(0) { try readOne(&d) }
        }
        if set.isEmpty { throw d.err("named matcher \(name) has no matchers") }
        if state.namedMatchers[name] != nil { throw d.err("matcher is defined more than once: \(name)") }
        state.namedMatchers[name] = [set]
    }
}

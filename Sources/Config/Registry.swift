import Caddyfile

/// Parses one directive of a site block (or of a nested block) into `SiteState`.
package typealias DirectiveParser = @Sendable (inout Dispenser, inout SiteState) throws(CaddyfileError) -> Void

/// Parses the arguments (and block) of one matcher inside a named matcher definition; the
/// dispenser is on the matcher's name.
package typealias MatcherParser = @Sendable (inout Dispenser) throws(CaddyfileError) -> any MatcherSpec

/// The static directive table: every site directive Berth understands. A directive that adds
/// a handler registers its parser here and lives in its own `Directive+Name.swift` file.
package enum DirectiveRegistry {
    package static let parsers: [String: DirectiveParser] = [
        "respond": DirectiveParsers.respond,
        "reverse_proxy": DirectiveParsers.reverseProxy,
        "log": DirectiveParsers.log,
        "bind": DirectiveParsers.bind,
    ]

    /// Dispatches `name`; unknown names get Caddy's error, known-but-unbuilt ones say so.
    static func parse(_ name: String, _ d: inout Dispenser, _ state: inout SiteState) throws(CaddyfileError) {
        if let p = parsers[name] {
            try p(&d, &state)
            return
        }
        if knownButUnsupported.contains(name) {
            throw d.err("directive '\(name)' is not supported by this Berth build yet")
        }
        throw d.err("unrecognized directive: \(name)")
    }
}

/// The matcher table for named matchers (`@name path …`, `@name { host … }`).
package enum MatcherRegistry {
    package static let parsers: [String: MatcherParser] = [
        "path": { (d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec in
            var args: [String] = []
            while d.nextArg() { args.append(d.val) }
            if args.isEmpty { throw d.argErr() }
            return PathMatcherSpec(args)
        },
        "host": { (d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec in
            var args: [String] = []
            while d.nextArg() { args.append(d.val.lowercased()) }
            if args.isEmpty { throw d.argErr() }
            return HostMatcherSpec(args)
        },
    ]

    static func parse(_ name: String, _ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        if let p = parsers[name] { return try p(&d) }
        if name == "expression" { throw d.err("matcher 'expression' (CEL) is not supported by Berth") }
        throw d.err("matcher '\(name)' is not supported by this Berth build yet")
    }
}

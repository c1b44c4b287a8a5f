import Caddyfile

/// Parses one directive of a site block (or of a nested block) into `SiteState`.
package typealias DirectiveParser = @Sendable (inout Dispenser, inout SiteState) throws(CaddyfileError) -> Void

/// Parses one matcher of a matcher set (`@name …`, `not { … }`): the dispenser holds every
/// segment of that matcher in the set, concatenated as Caddy does (`path /a` and `path /b` on
/// two lines are one `path /a /b`), positioned before the first; parsers loop with
/// `while d.next() { … d.remainingArgs() … }`. `d.context["matcher_name"]` is the set's name
/// without `@` (regexp matchers name their captures with it).
package typealias MatcherParser = @Sendable (inout Dispenser) throws(CaddyfileError) -> any MatcherSpec

/// The static directive table: every site directive Berth understands. A directive that adds
/// a handler registers its parser here and lives in its own `Directive+Name.swift` file.
package enum DirectiveRegistry {
    package static let parsers: [String: DirectiveParser] = [
        "respond": DirectiveParsers.respond,
        "redir": DirectiveParsers.redir,
        "header": DirectiveParsers.header,
        "encode": DirectiveParsers.encode,
        "rewrite": DirectiveParsers.rewrite,
        "uri": DirectiveParsers.uri,
        "method": DirectiveParsers.method,
        "try_files": DirectiveParsers.tryFiles,
        "handle": DirectiveParsers.handle,
        "handle_path": DirectiveParsers.handlePath,
        "route": DirectiveParsers.route,
        "handle_errors": DirectiveParsers.handleErrors,
        "error": DirectiveParsers.error,
        "abort": DirectiveParsers.abort,
        "reverse_proxy": DirectiveParsers.reverseProxy,
        "log": DirectiveParsers.log,
        "bind": DirectiveParsers.bind,
        "tls": DirectiveParsers.tls,
        "root": DirectiveParsers.root,
        "file_server": DirectiveParsers.fileServer,
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
        "path": MatcherSpecParsers.path,
        "host": MatcherSpecParsers.host,
        "method": MatcherSpecParsers.method,
        "header": MatcherSpecParsers.header,
        "header_regexp": MatcherSpecParsers.headerRegexp,
        "path_regexp": MatcherSpecParsers.pathRegexp,
        "query": MatcherSpecParsers.query,
        "protocol": MatcherSpecParsers.proto,
        "remote_ip": MatcherSpecParsers.ip("remote_ip"),
        "client_ip": MatcherSpecParsers.ip("client_ip"),
        "not": MatcherSpecParsers.not,
        "file": MatcherSpecParsers.file,
    ]

    /// Matchers Caddy has that this build does not implement yet.
    static let knownButUnsupported: Set<String> = ["vars", "vars_regexp", "tls", "expression"]

    /// Parses the matcher `name`; `d` holds every segment of it in the set, before the first.
    static func parse(_ name: String, _ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        if let p = parsers[name] { return try p(&d) }
        _ = d.next()
        if name == "expression" { throw d.err("matcher 'expression' (CEL) is not supported by Berth") }
        if knownButUnsupported.contains(name) { throw d.err("matcher '\(name)' is not supported by this Berth build yet") }
        throw d.err("getting matcher module '\(name)': module not registered: http.matchers.\(name)")
    }
}

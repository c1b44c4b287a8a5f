import JSON
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
        "php_fastcgi": DirectiveParsers.phpFastCGI,
        "forward_auth": DirectiveParsers.forwardAuth,
        "log": DirectiveParsers.log,
        "bind": DirectiveParsers.bind,
        "tls": DirectiveParsers.tls,
        "root": DirectiveParsers.root,
        "file_server": DirectiveParsers.fileServer,
        "basic_auth": DirectiveParsers.basicAuth,
        "basicauth": DirectiveParsers.basicAuth,
        "request_body": DirectiveParsers.requestBody,
        "request_header": DirectiveParsers.requestHeader,
        "vars": DirectiveParsers.vars,
        "log_skip": DirectiveParsers.logSkip,
        "skip_log": DirectiveParsers.logSkip,
        "log_append": DirectiveParsers.logAppend,
        "log_name": DirectiveParsers.logName,
        "map": DirectiveParsers.map,
        "invoke": DirectiveParsers.invoke,
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
        "vars": MatcherSpecParsers.vars,
        "vars_regexp": MatcherSpecParsers.varsRegexp,
    ]

    /// Matchers Caddy has that this build does not implement yet.
    static let knownButUnsupported: Set<String> = ["tls", "expression"]

    /// Parses the matcher `name`; `d` holds every segment of it in the set, before the first.
    static func parse(_ name: String, _ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        if let p = parsers[name] { return try p(&d) }
        _ = d.next()
        if name == "expression" { throw d.err("matcher 'expression' (CEL) is not supported by Berth") }
        if knownButUnsupported.contains(name) { throw d.err("matcher '\(name)' is not supported by this Berth build yet") }
        throw d.err("getting matcher module '\(name)': module not registered: http.matchers.\(name)")
    }
}

/// Decodes one handler of Berth's JSON from its object (the `handler` member is read already).
package typealias HandlerDecoder = @Sendable (JSONObjectReader) throws(ConfigError) -> any HandlerSpec
/// Decodes one matcher of a matcher set from its value.
package typealias MatcherDecoder = @Sendable (JSONValue, JSONPath) throws(ConfigError) -> any MatcherSpec

/// The module tables for Berth's JSON (`JSONConfigDecoder`), keyed by Caddy's module names:
/// every handler and matcher spec the encoder prints reads back through its entry here. Each
/// spec's `decode` lives next to its `jsonFields` in the directive's file.
package enum JSONModules {
    package static let handlers: [String: HandlerDecoder] = [
        "static_response": { r throws(ConfigError) in try StaticResponseSpec.decode(r) },
        "headers": { r throws(ConfigError) in try HeaderSpec.decode(r) },
        "encode": { r throws(ConfigError) in try EncodeSpec.decode(r) },
        "rewrite": { r throws(ConfigError) in try RewriteSpec.decode(r) },
        "error": { r throws(ConfigError) in try ErrorSpec.decode(r) },
        "vars": { r throws(ConfigError) in try VarsSpec.decode(r) },
        "file_server": { r throws(ConfigError) in try FileServerSpec.decode(r) },
        "reverse_proxy": { r throws(ConfigError) in try ReverseProxySpec.decode(r) },
        "authentication": { r throws(ConfigError) in try BasicAuthSpec.decode(r) },
        "request_body": { r throws(ConfigError) in try RequestBodySpec.decode(r) },
        "log_append": { r throws(ConfigError) in try LogAppendSpec.decode(r) },
        "map": { r throws(ConfigError) in try MapSpec.decode(r) },
        "invoke": { r throws(ConfigError) in try InvokeSpec.decode(r) },
    ]

    package static let matchers: [String: MatcherDecoder] = [
        "host": { v, p throws(ConfigError) in try HostMatcherSpec.decode(v, p) },
        "path": { v, p throws(ConfigError) in try PathMatcherSpec.decode(v, p) },
        "method": { v, p throws(ConfigError) in try MatcherSpecDecoders.method(v, p) },
        "header": { v, p throws(ConfigError) in try MatcherSpecDecoders.header(v, p) },
        "header_regexp": { v, p throws(ConfigError) in try MatcherSpecDecoders.headerRegexp(v, p) },
        "path_regexp": { v, p throws(ConfigError) in try MatcherSpecDecoders.pathRegexp(v, p) },
        "query": { v, p throws(ConfigError) in try MatcherSpecDecoders.query(v, p) },
        "protocol": { v, p throws(ConfigError) in try MatcherSpecDecoders.proto(v, p) },
        "remote_ip": MatcherSpecDecoders.ip("remote_ip"),
        "client_ip": MatcherSpecDecoders.ip("client_ip"),
        "not": { v, p throws(ConfigError) in try MatcherSpecDecoders.not(v, p) },
        "file": { v, p throws(ConfigError) in try MatcherSpecDecoders.file(v, p) },
        "expression": { v, p throws(ConfigError) in try ErrorStatusMatcherSpec.decode(v, p) },
        "vars": { v, p throws(ConfigError) in try VarsMatcherSpec.decode(v, p) },
        "vars_regexp": { v, p throws(ConfigError) in try VarsRegexpMatcherSpec.decode(v, p) },
    ]
}

import JSON
import Handlers
import HTTPCore

/// What a handler or matcher may need while it is built into its runtime form.
package struct BuildContext: Sendable {
    /// The process environment (`{env.X}` is resolved at build time).
    package var environment: [String: String]
    /// The config file the handler came from (file_server hides it).
    package var sourceFile: String?
    /// The `servers { trusted_proxies }` ranges: `reverse_proxy` keeps incoming `X-Forwarded-*`
    /// from these peers too (Caddy's trusted-proxy request variable).
    package var serverTrustedProxies: [String] = []
    /// The server's named routes (`invoke` points at them), while its handlers are built.
    package var namedRoutes: NamedRouteTable? = nil
    package init(environment: [String: String], sourceFile: String? = nil) {
        self.environment = environment
        self.sourceFile = sourceFile
    }
}

/// A configured handler (Caddy's `handle` entries). Each directive defines its own spec type in
/// its own file: its JSON for `adapt` / `GET /config/`, and how to build the runtime `Handler`.
package protocol HandlerSpec: Sendable {
    /// Caddy's module name, e.g. `static_response`.
    var handlerName: String { get }
    /// JSON fields other than `"handler"`, in the order to print them (Caddy sorts keys).
    var jsonFields: [(String, JSONValue)] { get }
    /// Builds the handler.
    func build(_ context: BuildContext) throws(ConfigError) -> any Handler
}

/// A configured request matcher (one key of a Caddy matcher set).
package protocol MatcherSpec: Sendable {
    /// Caddy's matcher name, e.g. `host`, `path`.
    var matcherName: String { get }
    /// The matcher's JSON value.
    var json: JSONValue { get }
    /// Builds the matcher.
    func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher
}

/// `host` matcher.
package struct HostMatcherSpec: MatcherSpec {
    package var hosts: [String]
    package init(_ hosts: [String]) { self.hosts = hosts }
    package var matcherName: String { "host" }
    package var json: JSONValue { .array(hosts.map { .string($0) }) }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher { HostMatcher(hosts) }
    static func decode(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        HostMatcherSpec(try JSONRead.strings(v, p))
    }
}

/// `path` matcher.
package struct PathMatcherSpec: MatcherSpec {
    package var paths: [String]
    package init(_ paths: [String]) { self.paths = paths }
    package var matcherName: String { "path" }
    package var json: JSONValue { .array(paths.map { .string($0) }) }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher { PathMatcher(paths) }
    static func decode(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        PathMatcherSpec(try JSONRead.strings(v, p))
    }
}

/// `static_response` (the `respond` directive).
package struct StaticResponseSpec: HandlerSpec {
    package var status: Int?
    /// A status written as a placeholder (`redir … {code}` compiles to one).
    package var statusPlaceholder: String? = nil
    package var body: String?
    package var headers: [String: [String]]
    package var close: Bool
    package init(status: Int? = nil, body: String? = nil, headers: [String: [String]] = [:], close: Bool = false) {
        self.status = status
        self.body = body
        self.headers = headers
        self.close = close
    }
    package var handlerName: String { "static_response" }
    package var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if let b = body, !b.isEmpty { o.append(("body", .string(b))) }  // omitempty, as Caddy
        if close { o.append(("close", .bool(true))) }
        if !headers.isEmpty {
            o.append(("headers", .object(headers.sorted { $0.key < $1.key }.map { ($0.key, .array($0.value.map { .string($0) })) })))
        }
        if let s = status { o.append(("status_code", .int(s))) } else if let p = statusPlaceholder { o.append(("status_code", .string(p))) }
        return o
    }
    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        var hs: [(name: String, value: Template)] = []
        for (k, vs) in headers.sorted(by: { $0.key < $1.key }) {
            for v in vs { hs.append((k, Template(v, keepUnknown: false, environment: context.environment))) }
        }
        if let p = statusPlaceholder, status == nil {
            return RespondHandler(status: 0, body: Template(body ?? "", keepUnknown: true, environment: context.environment),
                                  headers: hs, close: close,
                                  statusTemplate: Template(p, keepUnknown: false, environment: context.environment))
        }
        return RespondHandler(status: status ?? 200, body: Template(body ?? "", keepUnknown: true, environment: context.environment),
                              headers: hs, close: close, statusIsDefault: status == nil)
    }

    /// `static_response` from Berth's JSON: what `respond`, `redir` (a Location header, or
    /// the `html` body) and the automatic HTTPS redirects print; `abort` is `AbortSpec`.
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        if let abort = try r.bool("abort"), abort {
            for k in r.keys where k != "abort" && k != "handler" {
                throw r.error(k, "cannot be combined with abort")
            }
            return AbortSpec()
        }
        var spec = StaticResponseSpec()
        spec.body = try r.string("body")
        spec.close = try r.bool("close") ?? false
        if let h = try r.object("headers") {
            for k in h.keys {
                guard let vs = try h.strings(k) else { continue }
                spec.headers[k] = vs
            }
            try h.finish()
        }
        if let s = try r.statusText("status_code") {
            if let n = Int(s) {
                guard (100...999).contains(n) else { throw r.error("status_code", "bad status code \(n)") }
                spec.status = n
            } else {
                guard s.hasPrefix("{") else { throw r.error("status_code", "expected integer or placeholder, got '\(s)'") }
                spec.statusPlaceholder = s
            }
        }
        return spec
    }
}

import Handlers
import HTTPCore

/// Builds handler trees from typed config. Config imports Handlers, never the reverse.
package enum RuntimeBuilder {
    /// The top-level handler of one server.
    package static func buildServerHandler(_ server: ServerConfig, environment: [String: String]) throws(ConfigError) -> ServerHandler {
        ServerHandler(routes: try server.routes.map { r throws(ConfigError) in try buildRoute(r, environment) })
    }

    static func buildRoute(_ r: RouteConfig, _ env: [String: String]) throws(ConfigError) -> Route {
        // Caddy's `match` is a list of matcher sets (OR); each set ANDs its matchers. A single set
        // is the common case; several sets become one `AnyOfMatcher`.
        var matchers: [any RequestMatcher] = []
        if r.match.count == 1 {
            matchers = r.match[0].map(buildMatcher)
        } else if r.match.count > 1 {
            matchers = [AnyOfMatcher(sets: r.match.map { $0.map(buildMatcher) })]
        }
        let handlers = try r.handle.map { h throws(ConfigError) in try buildHandler(h, env) }
        return Route(matchers: matchers, handlers: handlers, terminal: r.terminal)
    }

    static func buildMatcher(_ m: MatcherConfig) -> any RequestMatcher {
        switch m {
        case .host(let hosts): return HostMatcher(hosts)
        case .path(let paths): return PathMatcher(paths)
        }
    }

    static func buildHandler(_ h: HandlerConfig, _ env: [String: String]) throws(ConfigError) -> any Handler {
        switch h {
        case .staticResponse(let status, let body, let headers, let close):
            var hs: [(name: String, value: Template)] = []
            for (k, vs) in headers.sorted(by: { $0.key < $1.key }) {
                for v in vs { hs.append((k, Template(v, keepUnknown: false, environment: env))) }
            }
            return RespondHandler(status: status ?? 200, body: Template(body ?? "", keepUnknown: true, environment: env),
                                  headers: hs, close: close)
        case .subroute(let routes):
            return RouteList(try routes.map { r throws(ConfigError) in try buildRoute(r, env) })
        }
    }
}

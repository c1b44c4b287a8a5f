import Handlers
import HTTPCore

/// Builds handler trees from typed config. Config imports Handlers, never the reverse.
package enum RuntimeBuilder {
    /// The top-level handler of one server.
    package static func buildServerHandler(_ server: ServerConfig, context: BuildContext) throws(ConfigError) -> ServerHandler {
        ServerHandler(routes: try server.routes.map { r throws(ConfigError) in try buildRoute(r, context) })
    }

    /// Builds one route: Caddy's `match` is a list of matcher sets (OR); each set ANDs its
    /// matchers. A single set is the common case; several become one `AnyOfMatcher`.
    package static func buildRoute(_ r: RouteConfig, _ context: BuildContext) throws(ConfigError) -> Route {
        var matchers: [any RequestMatcher] = []
        if r.match.count == 1 {
            matchers = try r.match[0].map { m throws(ConfigError) in try m.build(context) }
        } else if r.match.count > 1 {
            var sets: [[any RequestMatcher]] = []
            for set in r.match { sets.append(try set.map { m throws(ConfigError) in try m.build(context) }) }
            matchers = [AnyOfMatcher(sets: sets)]
        }
        let handlers = try r.handle.map { h throws(ConfigError) in try buildHandler(h, context) }
        return Route(matchers: matchers, handlers: handlers, terminal: r.terminal)
    }

    /// Builds one handler.
    package static func buildHandler(_ h: HandlerConfig, _ context: BuildContext) throws(ConfigError) -> any Handler {
        switch h {
        case .spec(let s):
            return try s.build(context)
        case .subroute(let routes):
            return RouteList(try routes.map { r throws(ConfigError) in try buildRoute(r, context) })
        }
    }
}

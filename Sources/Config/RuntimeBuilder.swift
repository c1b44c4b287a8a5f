import Handlers
import HTTPCore

/// Builds handler trees from typed config. Config imports Handlers, never the reverse.
package enum RuntimeBuilder {
    /// The top-level handler of one server.
    package static func buildServerHandler(_ server: ServerConfig, context: BuildContext,
                                           options: ServerOptions = ServerOptions()) throws(ConfigError) -> ServerHandler {
        var clientIP: ClientIPPolicy? = nil
        if !options.trustedProxies.isEmpty {
            clientIP = ClientIPPolicy(trusted: options.trustedProxies.compactMap(IPPrefix.init),
                                      headers: options.clientIPHeaders, strict: options.trustedProxiesStrict)
        }
        var context = context
        context.serverTrustedProxies = options.trustedProxies
        // `map` destinations are placeholders for every template of this server.
        let custom = MapSpec.destinationNames(in: server.routes).union(MapSpec.destinationNames(in: server.errorRoutes))
            .union(MapSpec.destinationNames(in: server.namedRoutes.map(\.route)))
        let table = NamedRouteTable()
        context.namedRoutes = table
        let built: Result<([Route], [Route]), ConfigError> = Template.$customNames.withValue(custom) {
            do throws(ConfigError) {
                for (name, route) in server.namedRoutes { table.add(name, RouteList([try buildRoute(route, context)])) }
                let result = (try buildRoutes(server.routes, context), try buildRoutes(server.errorRoutes, context))
                if let missing = table.resolve() {
                    throw ConfigError("cannot invoke named route '\(missing)', which was not defined")
                }
                return .success(result)
            } catch {
                return .failure(error)
            }
        }
        let (routes, errorRoutes) = try built.get()
        return ServerHandler(routes: routes, errorRoutes: errorRoutes, clientIP: clientIP)
    }

    /// Builds a route list, numbering its groups 0..<64 in order of appearance.
    package static func buildRoutes(_ routes: [RouteConfig], _ context: BuildContext) throws(ConfigError) -> [Route] {
        var groups: [String: Int] = [:]
        var out: [Route] = []
        for r in routes {
            var g = -1
            if let name = r.group {
                if let n = groups[name] {
                    g = n
                } else {
                    g = groups.count
                    guard g < 64 else { throw ConfigError("more than 64 mutually exclusive route groups in one route list") }
                    groups[name] = g
                }
            }
            out.append(try buildRoute(r, context, group: g))
        }
        return out
    }

    /// Builds one route: Caddy's `match` is a list of matcher sets (OR); each set ANDs its
    /// matchers. A single set is the common case; several become one `AnyOfMatcher`.
    package static func buildRoute(_ r: RouteConfig, _ context: BuildContext, group: Int = -1) throws(ConfigError) -> Route {
        var matchers: [any RequestMatcher] = []
        if r.match.count == 1 {
            matchers = try r.match[0].map { m throws(ConfigError) in try m.build(context) }
        } else if r.match.count > 1 {
            var sets: [[any RequestMatcher]] = []
            for set in r.match { sets.append(try set.map { m throws(ConfigError) in try m.build(context) }) }
            matchers = [AnyOfMatcher(sets: sets)]
        }
        var handlers = try r.handle.map { h throws(ConfigError) in try buildHandler(h, context) }
        // A `file` matcher that can fail (`=404` candidates) needs its error turned into a
        // handler error before the route's own handlers run.
        if r.match.contains(where: { $0.contains(where: { ($0 as? FailingMatcherSpec)?.canFail ?? false }) }) {
            handlers.insert(FileMatcherErrorCheck(), at: 0)
        }
        return Route(matchers: matchers, handlers: handlers, terminal: r.terminal, group: group)
    }

    /// Builds one handler.
    package static func buildHandler(_ h: HandlerConfig, _ context: BuildContext) throws(ConfigError) -> any Handler {
        switch h {
        case .spec(let s):
            return try s.build(context)
        case .subroute(let routes):
            return RouteList(try buildRoutes(routes, context))
        }
    }
}

/// A matcher spec whose runtime matcher can fail the request (Caddy's matcher errors).
package protocol FailingMatcherSpec: MatcherSpec {
    var canFail: Bool { get }
}

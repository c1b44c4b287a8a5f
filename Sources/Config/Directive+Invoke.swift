import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `invoke [<matcher>] <name>` (`httpcaddyfile/builtins.go` parseInvoke): runs the named
    /// route `&(name)`; the server gets that route in its `named_routes`.
    static func invoke(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        guard d.nextArg() else { throw d.argErr() }
        let name = d.val
        if d.nextArg() || d.nextBlock(d.nesting) { throw d.argErr() }
        site.groups.invoked.append((name, SourceLocation(file: d.file, line: d.line)))
        site.addRoute("invoke", matcher: m, handlers: [.spec(InvokeSpec(name: name))])
    }
}

/// Caddy's `invoke` handler as configured.
package struct InvokeSpec: HandlerSpec {
    package var name: String
    package var handlerName: String { "invoke" }
    package var jsonFields: [(String, JSONValue)] { name.isEmpty ? [] : [("name", .string(name))] }
    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        guard let table = context.namedRoutes else {
            throw ConfigError("cannot invoke named route '\(name)', which was not defined")
        }
        return InvokeHandler(name: name, table: table)
    }
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        guard let name = try r.string("name") else { throw r.missing("name") }
        return InvokeSpec(name: name)
    }
}

/// One `&(name) { … }` block, parsed (Caddy's extractNamedRoutes).
struct NamedRouteBuild {
    var route: RouteConfig
    /// Routes it invokes itself (added to the servers that invoke it).
    var invoked: [(String, SourceLocation)]
    /// Adapter warnings from its directives (`skip_log`).
    var warnings: [String] = []

    /// Parses the block like the inside of `handle` (directives sorted, site-only ones
    /// refused). Caddy consolidates adjacent routes with equal matchers; when that leaves one
    /// route without matchers, the named route keeps only its first handler (Caddy 2.11 does
    /// exactly this), else the whole subroute.
    static func parse(_ block: ServerBlock, options: GlobalOptions) throws(CaddyfileError) -> (String, NamedRouteBuild) {
        guard let seg = block.segments.first else { throw CaddyfileError(message: "named route without a body") }
        var d = Dispenser(Shorthands.apply(seg))
        _ = d.next()
        let name = d.val
        var state = SiteState()
        state.nested = true
        if !options.orderRules.isEmpty {
            let order = OrderRule.apply(options.orderRules, to: directiveOrder)
            state.groups.positions = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        }
        try SiteBuild.parseDirectives(DirectiveParsers.blockSegments(&d), into: &state)
        let sorted = try SiteBuild.buildSubroute(state.routes, sort: true, groups: state.groups)
        func key(_ r: RouteConfig) -> String {
            JSONValue.array(r.match.map { set in .object(set.map { ($0.matcherName, $0.json) }.sorted { $0.0 < $1.0 }) }).serialized()
                + "|\(r.terminal)|\(r.group ?? "")"
        }
        var runs = 0
        var last: String? = nil
        for r in sorted {
            let k = key(r)
            if k != last { runs += 1 }
            last = k
        }
        let route: RouteConfig
        if runs == 1, let first = sorted.first, first.match.isEmpty, let h = sorted.first(where: { !$0.handle.isEmpty })?.handle.first {
            route = RouteConfig(handle: [h])
        } else {
            route = RouteConfig(handle: [.subroute(sorted)])
        }
        return (name, NamedRouteBuild(route: route, invoked: state.groups.invoked, warnings: state.groups.warnings))
    }

    /// The named routes `invoked` (and those they invoke) for one server.
    static func closure(_ invoked: [(String, SourceLocation)], _ all: [String: NamedRouteBuild]) throws(ConfigError) -> [(name: String, route: RouteConfig)] {
        var out: [(name: String, route: RouteConfig)] = []
        var queue = invoked
        var seen: Set<String> = []
        while !queue.isEmpty {
            let (name, loc) = queue.removeFirst()
            if seen.contains(name) { continue }
            seen.insert(name)
            guard let nr = all[name] else {
                throw ConfigError("cannot invoke named route '\(name)', which was not defined", at: loc)
            }
            out.append((name, nr.route))
            queue += nr.invoked
        }
        return out
    }
}

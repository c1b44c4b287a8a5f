import HTTPCore

/// A server's named routes (`&(name)`, Caddy's `named_routes`), filled once its handler tree
/// is built; `invoke` handlers are pointed at their route then, before the tree serves.
package final class NamedRouteTable: @unchecked Sendable {
    package private(set) var lists: [String: RouteList] = [:]
    private var pending: [InvokeHandler] = []
    package init() {}

    package func add(_ name: String, _ list: RouteList) { lists[name] = list }

    /// An `invoke` built before every route is: resolved by `resolve()`.
    func register(_ h: InvokeHandler) { pending.append(h) }

    /// Points every `invoke` at its route; returns the first name that has none.
    package func resolve() -> String? {
        for h in pending {
            guard let l = lists[h.name] else { return h.name }
            h.list = l
        }
        pending.removeAll()
        return nil
    }
}

/// Caddy's `invoke` handler (`caddyhttp/invoke.go`): runs a named route's handlers, then the
/// handlers after it (unless the named route responded).
package final class InvokeHandler: Handler, @unchecked Sendable {
    package let name: String
    /// Set once at build time (`NamedRouteTable.resolve`), read-only while serving.
    var list: RouteList!

    package init(name: String, table: NamedRouteTable) {
        self.name = name
        table.register(self)
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        list.handle(request, response)
    }
}

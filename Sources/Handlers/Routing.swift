import HTTPCore
import IOCore

/// A request matcher (Caddy's `match`). Matchers in one set must all match.
package protocol RequestMatcher: Sendable {
    func matches(_ request: HTTPRequest) -> Bool
}

/// Caddy's host matcher: port stripped, ASCII case-insensitive, `*` matches exactly one label,
/// no trailing-dot normalisation.
package struct HostPattern: Sendable, Equatable {
    /// Lower-cased labels of the pattern.
    package let labels: [[UInt8]]
    /// The pattern as written (lower-cased).
    package let text: String
    package let hasWildcard: Bool

    package init(_ pattern: String) {
        let lower = pattern.lowercased()
        text = lower
        labels = lower.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) }
        hasWildcard = labels.contains([UInt8(ascii: "*")])
    }

    /// True when `host` (no port) matches.
    package func matches(_ host: UnsafeRawBufferPointer) -> Bool {
        var label = 0
        var start = 0
        let n = host.count
        var i = 0
        while i <= n {
            if i == n || host[i] == UInt8(ascii: ".") {
                guard label < labels.count else { return false }
                let pat = labels[label]
                let len = i - start
                if !(pat.count == 1 && pat[0] == UInt8(ascii: "*") && len > 0) {
                    guard pat.count == len else { return false }
                    for k in 0..<len {
                        var c = host[start + k]
                        if c >= 0x41 && c <= 0x5A { c |= 0x20 }
                        if c != pat[k] { return false }
                    }
                }
                label += 1
                start = i + 1
            }
            i += 1
        }
        return label == labels.count
    }
}

/// Matches when the request's host matches any of the patterns.
package struct HostMatcher: RequestMatcher {
    package let patterns: [HostPattern]
    package init(_ hosts: [String]) { patterns = hosts.map(HostPattern.init) }
    package func matches(_ request: HTTPRequest) -> Bool {
        request.withHost { h in patterns.contains { $0.matches(h) } }
    }
}

/// One route: when every matcher matches, its handlers run in order until one responds.
package struct Route: Sendable {
    package let matchers: [any RequestMatcher]
    package let handlers: [any Handler]
    /// Stop after this route even if no handler responded (Caddy's `terminal`).
    package let terminal: Bool

    package init(matchers: [any RequestMatcher] = [], handlers: [any Handler], terminal: Bool = false) {
        self.matchers = matchers
        self.handlers = handlers
        self.terminal = terminal
    }

    @inline(__always)
    func matches(_ r: HTTPRequest) -> Bool {
        for m in matchers where !m.matches(r) { return false }
        return true
    }
}

/// A list of routes evaluated in order, like Caddy's `subroute` / server `routes`.
package final class RouteList: Handler {
    package let routes: [Route]
    package init(_ routes: [Route]) { self.routes = routes }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        for route in routes where route.matches(request) {
            for h in route.handlers {
                let r = h.handle(request, response)
                if case .next = r { continue }
                return r
            }
            if route.terminal { return .next }
        }
        return .next
    }
}

/// The top of a server's handler tree: routes, then Caddy's fallback — an unrouted request
/// gets `200` with an empty body (caddy-behavior §0.1).
package final class ServerHandler: Handler {
    package let routes: RouteList
    package init(routes: [Route]) { self.routes = RouteList(routes) }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        let r = routes.handle(request, response)
        if case .next = r {
            if !response.headSent {
                response.sendEmpty()
            }
            return .done
        }
        return r
    }
}

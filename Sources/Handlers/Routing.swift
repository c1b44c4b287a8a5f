import HTTPCore
import IOCore

/// A request matcher (Caddy's `match`). Matchers in one set must all match.
package protocol RequestMatcher: Sendable {
    func matches(_ request: HTTPRequest) -> Bool
}

/// Caddy's host matcher: port stripped, ASCII case-insensitive, `*` matches exactly one label
/// (an empty one too, as Caddy splits on dots), no trailing-dot normalisation.
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
                if !(pat.count == 1 && pat[0] == UInt8(ascii: "*")) {
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
        request.withHost { h in
            // Without a port Go's SplitHostPort fails and Caddy trims the IPv6 brackets itself
            // (`Host: [::1]` matches `::1`); `withHost` keeps them in that case.
            var lo = 0, hi = h.count
            if hi > 0, h[0] == UInt8(ascii: "[") { lo = 1 }
            if hi > lo, h[hi - 1] == UInt8(ascii: "]") { hi -= 1 }
            let host = lo == 0 && hi == h.count ? h : UnsafeRawBufferPointer(rebasing: h[lo..<hi])
            return patterns.contains { $0.matches(host) }
        }
    }
}

/// One route: when every matcher matches, its handlers run in order until one responds.
package struct Route: Sendable {
    package let matchers: [any RequestMatcher]
    package let handlers: [any Handler]
    /// Stop after this route even if no handler responded (Caddy's `terminal`).
    package let terminal: Bool
    /// Mutually exclusive group (Caddy's route `group`: `handle`, `rewrite`, `root`…): within
    /// one route list only the first matching route of a group runs. -1 for none; 0..<64.
    package let group: Int

    package init(matchers: [any RequestMatcher] = [], handlers: [any Handler], terminal: Bool = false, group: Int = -1) {
        precondition(group < 64, "at most 64 route groups per route list")
        self.matchers = matchers
        self.handlers = handlers
        self.terminal = terminal
        self.group = group
    }

    @inline(__always)
    func matches(_ r: HTTPRequest) -> Bool {
        if matchers.isEmpty { return true }
        return matchers.withUnsafeBufferPointer { ms in
            for i in ms.indices where !ms[i].matches(r) { return false }
            return true
        }
    }
}

/// A list of routes evaluated in order, like Caddy's `subroute` / server `routes`.
package final class RouteList: Handler {
    package let routes: [Route]
    package init(_ routes: [Route]) { self.routes = routes }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        run(request, response, route: 0, handler: 0, satisfied: 0)
    }

    /// Walks the routes from handler `handler` of route `route` (a resumed walk: that route
    /// already matched and its group is in `satisfied`).
    @inline(__always)
    private func run(_ request: HTTPRequest, _ response: HTTPResponse, route start: Int, handler first: Int,
                     satisfied initial: UInt64) -> HandlerResult {
        // Walked through buffer pointers: `for route in routes` copies each `Route` (retaining
        // its matcher and handler arrays) and each handler existential, per request. The
        // arrays are immutable and owned by this list for its whole life.
        var satisfied = initial
        return routes.withUnsafeBufferPointer { rs in
            var i = start
            while i < rs.count {
                defer { i += 1 }
                let resumed = i == start && first > 0
                if !resumed {
                    guard rs[i].matches(request) else { continue }
                    let group = rs[i].group
                    if group >= 0 {
                        let bit: UInt64 = 1 << UInt64(group)
                        if satisfied & bit != 0 { continue }
                        satisfied |= bit
                    }
                }
                let r: HandlerResult? = rs[i].handlers.withUnsafeBufferPointer { hs in
                    var j = resumed ? first : 0
                    while j < hs.count {
                        let r = hs[j].handle(request, response)
                        if case .next = r { j += 1; continue }
                        if case .pending = r, request.routeSuspension != nil {
                            request.routeSuspension!.append(RouteFrame(list: self, route: i, handler: j, satisfied: satisfied))
                        }
                        return r
                    }
                    return nil
                }
                if let r { return r }
                if rs[i].terminal { return .next }
            }
            return .next
        }
    }

    /// Continues a suspended walk: `frames` innermost first, this list's frame at `level`.
    /// The handler it stopped at is either the suspending handler (level 0: go on after it)
    /// or a nested list that resumes first.
    func resume(_ request: HTTPRequest, _ response: HTTPResponse, _ frames: [RouteFrame], _ level: Int) -> HandlerResult {
        let f = frames[level]
        let h = routes[f.route].handlers[f.handler]
        if level > 0, let inner = (h as? RouteList) ?? (h as? InvokeHandler)?.list {
            let r = inner.resume(request, response, frames, level - 1)
            switch r {
            case .next:
                break
            case .pending:
                if request.routeSuspension != nil {
                    request.routeSuspension!.append(RouteFrame(list: self, route: f.route, handler: f.handler, satisfied: f.satisfied))
                }
                return r
            case .done:
                return r
            }
        }
        if f.handler + 1 < routes[f.route].handlers.count {
            return run(request, response, route: f.route, handler: f.handler + 1, satisfied: f.satisfied)
        }
        if routes[f.route].terminal { return .next }
        return run(request, response, route: f.route + 1, handler: 0, satisfied: f.satisfied)
    }
}

/// The top of a server's handler tree: routes, then Caddy's fallback — an unrouted request
/// gets `200` with an empty body (caddy-behavior §0.1). A handler error (`response.errorStatus`
/// set, nothing sent) runs the server's error routes (`handle_errors`), see `handleError`.
package final class ServerHandler: Handler, PendingErrorRouter {
    package let routes: RouteList
    /// Caddy's `errors.routes` (every site's `handle_errors`, host-matched).
    package let errorRoutes: RouteList
    /// Trusted proxies and client IP headers (`servers` options), when configured.
    package let clientIP: ClientIPPolicy?
    package init(routes: [Route], errorRoutes: [Route] = [], clientIP: ClientIPPolicy? = nil) {
        self.routes = RouteList(routes)
        self.errorRoutes = RouteList(errorRoutes)
        self.clientIP = clientIP
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        if response.errorRouter !== self { response.errorRouter = self }
        clientIP?.apply(request)
        if request.connection.strictSNIHost, !Self.hostMatchesSNI(request) {
            // Caddy's strict SNI host check (on with client_auth): a client must not pass the
            // certificate check under one name and then ask for another site (RFC 9110 §15.5.20).
            response.closeConnection = true
            response.errorStatus = 421
            let r = handleError(request, response)
            response.closeConnection = true
            return r
        }
        var r = routes.handle(request, response)
        if response.errorStatus != 0 && !response.headSent {
            if case .pending = r {} else { r = handleError(request, response) }
        }
        if case .next = r {
            if !response.headSent {
                response.sendUnanswered()
            }
            return .done
        }
        return r
    }

    /// The request's host (without port) equals the TLS SNI, case-insensitively (an absent SNI
    /// matches only an empty host, as in Caddy's `strings.EqualFold`).
    static func hostMatchesSNI(_ request: HTTPRequest) -> Bool {
        let sni = request.connection.serverName ?? ""
        return request.withHost { h in
            guard h.count == sni.utf8.count else { return false }
            var i = 0
            for c in sni.utf8 {
                let a = h[i] | (h[i] >= 65 && h[i] <= 90 ? 0x20 : 0)
                let b = c | (c >= 65 && c <= 90 ? 0x20 : 0)
                if a != b { return false }
                i += 1
            }
            return true
        }
    }

    /// A `.pending` handler (reverse_proxy) failed later: the same error path.
    package func routePendingError(_ request: HTTPRequest, _ response: HTTPResponse) {
        _ = handleError(request, response)
    }

    package func resumeRouting(_ request: HTTPRequest, _ response: HTTPResponse) {
        if let frames = request.routeSuspension, let top = frames.last, top.list === errorRoutes, top.list !== routes {
            // Suspended inside `handle_errors` (basic_auth, forward_auth there): the error
            // routes go on, then the error path ends as `handleError` does.
            request.routeSuspension = nil
            let status = response.errorStatus
            if case .pending = errorRoutes.resume(request, response, frames, frames.count - 1) { return }
            if !response.headSent {
                response.removeDecorator()
                response.deferred.removeAll(keepingCapacity: true)
                response.status = status
                response.sendEmpty()
            }
            return
        }
        guard let frames = request.routeSuspension, let top = frames.last, top.list === routes else {
            // Not a walk this server suspended: answer rather than leave the client waiting.
            if !response.headSent { response.status = 500; response.sendEmpty() }
            return
        }
        request.routeSuspension = nil
        var r = routes.resume(request, response, frames, frames.count - 1)
        if response.errorStatus != 0 && !response.headSent {
            if case .pending = r {} else { r = handleError(request, response) }
        }
        if case .next = r, !response.headSent { response.sendUnanswered() }
    }

    /// Caddy's server error path (`server.go` ServeHTTP): the original request is restored,
    /// response wrappers of the failed chain (deferred `header` ops, `encode`) are dropped but
    /// headers already set stay, `{http.error.*}` is set, and the error routes run; if they
    /// send nothing (or fail again) the answer is an empty body with the error's status.
    package func handleError(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        let status = response.errorStatus
        request.restoreOriginal()
        response.removeDecorator()
        if !response.deferred.isEmpty { response.deferred.removeAll(keepingCapacity: true) }
        HandlerError.publish(status, request)
        var r: HandlerResult = .next
        if !errorRoutes.routes.isEmpty {
            r = errorRoutes.handle(request, response)
            if case .pending = r { return r }
        }
        if !response.headSent {
            response.removeDecorator()
            response.deferred.removeAll(keepingCapacity: true)
            response.status = status
            response.sendEmpty()
        }
        response.errorStatus = status
        return .done
    }
}

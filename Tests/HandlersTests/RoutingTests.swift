import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// A handler that records that it ran and returns a fixed result.
final class Probe: Handler, @unchecked Sendable {
    let name: String
    let result: HandlerResult
    let log: Log
    final class Log: @unchecked Sendable { var names: [String] = [] }
    init(_ name: String, _ result: HandlerResult, _ log: Log) {
        self.name = name
        self.result = result
        self.log = log
    }
    func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        log.names.append(name)
        if case .done = result { response.send(body: UnsafeRawBufferPointer(start: nil, count: 0)) }
        return result
    }
}

func respondWith(_ body: String, status: Int = 200) -> RespondHandler { RespondHandler(status: status, body: Template(body)) }

@Suite("Routing")
struct RoutingTests {
    @Test func firstMatchingRouteWins() {
        let routes = ServerHandler(routes: [
            Route(matchers: [HostMatcher(["a.com"])], handlers: [respondWith("A")], terminal: true),
            Route(matchers: [HostMatcher(["*.com"])], handlers: [respondWith("wild")], terminal: true),
            Route(handlers: [respondWith("catch-all")], terminal: true),
        ])
        #expect(run(routes, makeRequest(host: "A.com:80")).0?.body == "A")
        #expect(run(routes, makeRequest(host: "b.com")).0?.body == "wild")
        #expect(run(routes, makeRequest(host: "b.org")).0?.body == "catch-all")
        #expect(run(routes, makeRequest(host: nil)).0?.body == "catch-all")
    }

    @Test func unroutedGetsEmpty200() {
        let routes = ServerHandler(routes: [Route(matchers: [HostMatcher(["a.com"])], handlers: [respondWith("A", status: 201)], terminal: true)])
        let (sent, result) = run(routes, makeRequest(host: "other"))
        #expect(result == .done)
        #expect(sent == .init(status: 200, fields: [], body: "", close: false))
        #expect(run(ServerHandler(routes: []), makeRequest()).0 == .init(status: 200, fields: [], body: "", close: false))
    }

    @Test func handlersInARouteRunUntilOneResponds() {
        let log = Probe.Log()
        let list = RouteList([
            Route(handlers: [Probe("1", .next, log), Probe("2", .done, log), Probe("3", .done, log)]),
            Route(handlers: [Probe("4", .done, log)]),
        ])
        #expect(run(list, makeRequest()).1 == .done)
        #expect(log.names == ["1", "2"])
    }

    @Test func nonTerminalRouteFallsThroughTerminalStops() {
        let log = Probe.Log()
        let list = RouteList([
            Route(handlers: [Probe("1", .next, log)]),
            Route(handlers: [Probe("2", .next, log)], terminal: true),
            Route(handlers: [Probe("3", .done, log)]),
        ])
        #expect(run(list, makeRequest()).1 == .next)
        #expect(log.names == ["1", "2"])
        // ServerHandler turns a terminal route that sent nothing into the empty 200.
        let log2 = Probe.Log()
        let server = ServerHandler(routes: [Route(handlers: [Probe("a", .next, log2)], terminal: true), Route(handlers: [Probe("b", .done, log2)])])
        let (sent, result) = run(server, makeRequest())
        #expect(result == .done && sent?.status == 200 && sent?.body == "")
        #expect(log2.names == ["a"])
    }

    @Test func pendingIsPassedUpAndNothingIsSent() {
        let log = Probe.Log()
        let server = ServerHandler(routes: [Route(handlers: [Probe("p", .pending, log)])])
        let (sent, result) = run(server, makeRequest())
        #expect(result == .pending)
        #expect(sent == nil)
    }

    @Test func allMatchersOfARouteMustMatch() {
        let routes = ServerHandler(routes: [
            Route(matchers: [HostMatcher(["a.com"]), PathMatcher(["/api*"])], handlers: [respondWith("api")], terminal: true),
            Route(matchers: [HostMatcher(["a.com"])], handlers: [respondWith("site")], terminal: true),
        ])
        #expect(run(routes, makeRequest(target: "/api/x", host: "a.com")).0?.body == "api")
        #expect(run(routes, makeRequest(target: "/other", host: "a.com")).0?.body == "site")
        #expect(run(routes, makeRequest(target: "/api/x", host: "b.com")).0?.body == "")
    }

    @Test func subrouteInsideARoute() {
        // The shape Config builds: a host route whose handler is the site's own RouteList.
        let site = RouteList([
            Route(matchers: [PathMatcher(["/hello"])], handlers: [respondWith("hi")]),
            Route(handlers: [respondWith("default", status: 404)]),
        ])
        let server = ServerHandler(routes: [Route(matchers: [HostMatcher(["localhost"])], handlers: [site], terminal: true)])
        #expect(run(server, makeRequest(target: "/hello")).0?.body == "hi")
        #expect(run(server, makeRequest(target: "/x")).0?.status == 404)
        #expect(run(server, makeRequest(host: "else")).0 == .init(status: 200, fields: [], body: "", close: false))
    }
}

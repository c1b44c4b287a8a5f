import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// A handler that suspends the route walk (as `basic_auth` does while a password is checked)
/// and a server that resumes it: the handlers after it run once, the ones before it never again,
/// through nested route lists and `handle` groups.
@Suite struct RouteSuspensionTests {
    /// Appends its name to a shared trace; `suspend` makes it return `.pending` once.
    final class Step: Handler, @unchecked Sendable {
        let name: String
        let trace: Trace
        var suspend: Bool
        init(_ name: String, _ trace: Trace, suspend: Bool = false) {
            self.name = name
            self.trace = trace
            self.suspend = suspend
        }
        func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
            trace.names.append(name)
            if suspend {
                suspend = false
                request.routeSuspension = []
                return .pending
            }
            return .next
        }
    }

    final class Trace: @unchecked Sendable { var names: [String] = [] }

    final class Answer: Handler, @unchecked Sendable {
        let trace: Trace
        init(_ trace: Trace) { self.trace = trace }
        func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
            trace.names.append("answer")
            response.sendEmpty()
            return .done
        }
    }

    func run(_ server: ServerHandler) -> (HandlerResult, HTTPRequest, HTTPResponse, DirectiveSink) {
        let sink = DirectiveSink()
        let response = HTTPResponse(sink: sink)
        let request = directiveRequest()
        return (server.handle(request, response), request, response, sink)
    }

    @Test func resumesAfterTheSuspendingHandlerOnly() {
        let t = Trace()
        let server = directiveServer([
            Route(handlers: [Step("before", t), Step("auth", t, suspend: true), Step("after", t)]),
            Route(handlers: [Step("next-route", t), Answer(t)]),
        ])
        let (r, request, response, sink) = run(server)
        guard case .pending = r else { Issue.record("not pending: \(r)"); return }
        #expect(t.names == ["before", "auth"])
        #expect(request.routeSuspension?.count == 1)
        withExtendedLifetime(sink) { server.resumeRouting(request, response) }
        #expect(t.names == ["before", "auth", "after", "next-route", "answer"])
        #expect(request.routeSuspension == nil)
        #expect(sink.status == 200)
    }

    @Test func nestedListsAndGroupsResumeWhereTheyStopped() {
        let t = Trace()
        // Two routes of one `handle` group: once the first matched, the second must not run.
        let inner = RouteList([
            Route(handlers: [Step("inner-before", t), Step("auth", t, suspend: true), Step("inner-after", t)]),
            Route(handlers: [Step("inner-second", t)]),
        ])
        let server = directiveServer([
            Route(handlers: [Step("outer-before", t)]),
            Route(handlers: [inner, Step("outer-after-inner", t)], group: 0),
            Route(handlers: [Step("same-group", t)], group: 0),
            Route(handlers: [Answer(t)]),
        ])
        let (r, request, response, sink) = run(server)
        guard case .pending = r else { Issue.record("not pending: \(r)"); return }
        #expect(request.routeSuspension?.count == 2)
        withExtendedLifetime(sink) { server.resumeRouting(request, response) }
        #expect(t.names == ["outer-before", "inner-before", "auth", "inner-after", "inner-second",
                            "outer-after-inner", "answer"])
    }

    @Test func aSecondSuspensionAfterResumingIsResumedToo() {
        let t = Trace()
        let server = directiveServer([
            Route(handlers: [RouteList([Route(handlers: [Step("first", t, suspend: true)])]),
                             Step("between", t), Step("second", t, suspend: true), Step("end", t), Answer(t)]),
        ])
        let (r, request, response, sink) = run(server)
        guard case .pending = r else { Issue.record("not pending: \(r)"); return }
        withExtendedLifetime(sink) {
            server.resumeRouting(request, response)
            #expect(t.names == ["first", "between", "second"])
            #expect(request.routeSuspension?.count == 1)
            server.resumeRouting(request, response)
        }
        #expect(t.names == ["first", "between", "second", "end", "answer"])
    }

    @Test func aTerminalRouteEndsTheWalkAfterResuming() {
        let t = Trace()
        let server = directiveServer([
            Route(handlers: [Step("auth", t, suspend: true)], terminal: true),
            Route(handlers: [Answer(t)]),
        ])
        let (_, request, response, sink) = run(server)
        withExtendedLifetime(sink) { server.resumeRouting(request, response) }
        #expect(t.names == ["auth"])
        #expect(sink.status == 200)  // Caddy's empty 200 for an unanswered request
    }

    /// A handler error whose error routes suspend (forward_auth or basic_auth inside
    /// `handle_errors`): the error routes go on after the suspending handler.
    @Test func errorRoutesResumeToo() {
        let t = Trace()
        final class Fail: Handler, @unchecked Sendable {
            func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
                response.errorStatus = 403
                return .done
            }
        }
        let server = directiveServer([Route(handlers: [Fail()])],
                                     errors: [Route(handlers: [Step("err-auth", t, suspend: true), Step("err-after", t), Answer(t)])])
        let (r, request, response, sink) = run(server)
        guard case .pending = r else { Issue.record("not pending: \(r)"); return }
        #expect(t.names == ["err-auth"])
        withExtendedLifetime(sink) { server.resumeRouting(request, response) }
        #expect(t.names == ["err-auth", "err-after", "answer"])
        #expect(sink.status == 200)
        #expect(request.routeSuspension == nil)

        // Error routes that answer nothing after resuming: the error's status, empty.
        let t2 = Trace()
        let quiet = directiveServer([Route(handlers: [Fail()])], errors: [Route(handlers: [Step("err-auth", t2, suspend: true)])])
        let (_, request2, response2, sink2) = run(quiet)
        withExtendedLifetime(sink2) { quiet.resumeRouting(request2, response2) }
        #expect(t2.names == ["err-auth"])
        #expect(sink2.status == 403)
    }

    @Test func base64AndCredentials() {
        #expect(Base64.decode("YWxpY2U6cHc=", paddingRequired: true) == Array("alice:pw".utf8))
        #expect(Base64.decode("YWI=", paddingRequired: true) == Array("ab".utf8))
        #expect(Base64.decode("YWJj", paddingRequired: true) == Array("abc".utf8))
        #expect(Base64.decode("YW=I", paddingRequired: true) == nil)
        #expect(Base64.decode("YWI", paddingRequired: true) == nil)
        #expect(Base64.decode("Y!I=", paddingRequired: true) == nil)
        let r = directiveRequest(headers: [("Authorization", "bAsIc YWxpY2U6cDpx")])
        let c = BasicAuthHandler.credentials(r)
        #expect(c?.0 == "alice" && c?.1 == "p:q")
        #expect(BasicAuthHandler.credentials(directiveRequest(headers: [("Authorization", "Bearer YWxpY2U6cHc=")])) == nil)
        #expect(BasicAuthHandler.credentials(directiveRequest(headers: [("Authorization", "Basic YWxpY2U=")])) == nil)
        #expect(BasicAuthHandler.credentials(directiveRequest()) == nil)
    }

    @Test func bcryptHashesVerifyAndWrongPasswordsDoNot() throws {
        let h = try #require(PasswordHash.bcrypt("s3cret", cost: 4))
        #expect(h.hasPrefix("$2a$04$") && h.utf8.count == 60)
        #expect(PasswordHash.verify("s3cret", hash: h))
        #expect(!PasswordHash.verify("s3creT", hash: h))
        #expect(!PasswordHash.verify("s3cret", hash: "not a hash"))
    }
}

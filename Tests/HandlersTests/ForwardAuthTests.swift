import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// `forward_auth`'s two request-side steps, without a network: the auth target (Caddy's
/// `rewrite` rules on a copy: placeholders, the client's query kept when `uri` has none) and
/// the copy of a 2xx answer's fields onto the request (Caddy 2.11's delete-then-set routes).
@Suite struct ForwardAuthTests {
    func target(_ uri: String, _ request: HTTPRequest) -> String {
        let out = ByteBuffer(capacity: 64)
        ForwardAuthSubrequest(uri: uri, copies: []).writeTarget(request, work: ByteBuffer(capacity: 16), into: out)
        return String(decoding: out.readable, as: UTF8.self)
    }

    @Test func targetFollowsCaddysRewrite() {
        let r = directiveRequest("POST", "/app/x%20y?a=1&b=2")
        #expect(target("/verify", r) == "/verify?a=1&b=2")
        #expect(target("/verify?", r) == "/verify")
        #expect(target("/verify?rd=https://auth.example.com{http.request.uri.path}", r)
                == "/verify?rd=https://auth.example.com%2Fapp%2Fx+y")
        #expect(target("/v/{http.request.method}", r) == "/v/POST?a=1&b=2")
        // The request itself is not rewritten.
        #expect(r.targetString == "/app/x%20y?a=1&b=2")
        #expect(r.pathString == "/app/x%20y")
    }

    func answer(_ pairs: [(String, String)]) -> HTTPFields {
        var f = HTTPFields()
        f.append(name: "Before", value: "not part of the answer")
        for (n, v) in pairs { f.append(name: n, value: v) }
        return f
    }

    func values(_ r: HTTPRequest, _ name: String) -> [String] {
        r.fields.pairs.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    @Test func copiesJoinRenameAndRemoveSpoofedFields() {
        let sub = ForwardAuthSubrequest(uri: "/v", copies: [
            .init(from: "Remote-Groups", to: "X-Groups"),
            .init(from: "Remote-User", to: "Remote-User"),
            .init(from: "Remote-Email", to: "Remote-Email"),
            .init(from: "Before", to: "X-Before"),
        ])
        let r = directiveRequest("GET", "/", headers: [("Remote-User", "mallory"), ("remote-user", "eve"),
                                                       ("X-Groups", "root"), ("Remote-Email", "m@evil"), ("Keep", "1")])
        sub.copyFields(into: r, from: answer([("Remote-User", "alice"), ("remote-groups", "admins"),
                                              ("Remote-Groups", "dev"), ("Remote-Email", "")]), start: 1)
        #expect(values(r, "Remote-User") == ["alice"])
        #expect(values(r, "X-Groups") == ["admins,dev"])
        // Present but empty in the answer: removed, not set (Caddy's `not vars {…} ""`).
        #expect(values(r, "Remote-Email") == [])
        // Fields before `start` are not the answer's.
        #expect(values(r, "X-Before") == [])
        #expect(values(r, "Keep") == ["1"])
    }

    @Test func entriesRunInOrderLikeCaddysRoutes() {
        // Two entries onto one field: the second deletes what the first set when its own
        // source is missing (Caddy runs delete/set pairs in order).
        let sub = ForwardAuthSubrequest(uri: "/v", copies: [.init(from: "A", to: "X"), .init(from: "B", to: "X")])
        let r = directiveRequest("GET", "/")
        sub.copyFields(into: r, from: answer([("A", "from-a")]), start: 1)
        #expect(values(r, "X") == [])
        let r2 = directiveRequest("GET", "/")
        sub.copyFields(into: r2, from: answer([("A", "from-a"), ("B", "from-b")]), start: 1)
        #expect(values(r2, "X") == ["from-b"])
    }

    @Test func proceedWithoutARouterAnswersEmpty() {
        let sink = DirectiveSink()
        let response = HTTPResponse(sink: sink)
        let r = directiveRequest("GET", "/")
        r.routeSuspension = []
        withExtendedLifetime(sink) { ForwardAuthSubrequest(uri: "/v", copies: []).proceed(r, response) }
        #expect(r.routeSuspension == nil)
        #expect(sink.status == 200)
    }
}

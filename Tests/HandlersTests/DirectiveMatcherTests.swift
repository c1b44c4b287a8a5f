import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// The request matchers the directives use (Caddy's matchers.go / ip_matchers.go semantics).
@Suite("Directive matchers")
struct DirectiveMatcherTests {
    @Test func method() {
        let m = MethodMatcher(["GET", "POST"])
        #expect(m.matches(directiveRequest("POST")))
        #expect(!m.matches(directiveRequest("get")))  // case-sensitive
    }

    @Test func header() {
        let m = HeaderMatcher([
            HeaderFieldCondition(name: "X-Foo", patterns: [HeaderValuePattern("bar*"), HeaderValuePattern("*baz")]),
            HeaderFieldCondition(name: "X-No", patterns: nil),
        ])
        #expect(m.matches(directiveRequest(headers: [("x-foo", "barista")])))
        #expect(m.matches(directiveRequest(headers: [("X-Foo", "nope"), ("X-Foo", "abaz")])))
        #expect(!m.matches(directiveRequest(headers: [("X-Foo", "barista"), ("X-No", "1")])))
        #expect(!m.matches(directiveRequest()))
        let host = HeaderMatcher([HeaderFieldCondition(name: "Host", patterns: [HeaderValuePattern("*.test")])])
        #expect(host.matches(directiveRequest(host: "a.test")))
        let present = HeaderMatcher([HeaderFieldCondition(name: "X-P", patterns: [])])
        #expect(present.matches(directiveRequest(headers: [("X-P", "")])) && !present.matches(directiveRequest()))
    }

    @Test func pathRegexpSetsCaptures() throws {
        let m = PathRegexpMatcher(try Regex("^/n/(?P<id>\\d+)$"), name: "num")
        let r = directiveRequest("GET", "/n/%31%32")
        #expect(m.matches(r))
        #expect(directiveExpand("{http.regexp.num.1}|{http.regexp.1}|{http.regexp.num.id}|{http.regexp.id}|{http.regexp.num.0}", r)
                == "12|12|12|12|/n/12")
        #expect(!m.matches(directiveRequest("GET", "/n/x")))
        // The cleaned path is matched (no traversal around the regexp).
        #expect(m.matches(directiveRequest("GET", "/x/../n/7")))
    }

    @Test func headerRegexp() throws {
        let m = HeaderRegexpMatcher(fields: [("X-Ver", try Regex("^v(\\d+)\\.(\\d+)$"))], name: "ver")
        let r = directiveRequest(headers: [("X-Ver", "junk"), ("x-ver", "v2.10")])
        #expect(m.matches(r))
        #expect(directiveExpand("{http.regexp.ver.1}.{http.regexp.ver.2}", r) == "2.10")
        #expect(!m.matches(directiveRequest()))
    }

    @Test func query() {
        let m = QueryMatcher([("a", ["1"]), ("b", ["*"])])
        #expect(m.matches(directiveRequest("GET", "/?b=zz&a=1")))
        #expect(m.matches(directiveRequest("GET", "/?a=2&a=1&b")))
        #expect(!m.matches(directiveRequest("GET", "/?a=1")))
        #expect(!m.matches(directiveRequest("GET", "/?a=1&b=2&c;d")))  // malformed query never matches
        #expect(QueryMatcher([]).matches(directiveRequest("GET", "/")))
        #expect(!QueryMatcher([]).matches(directiveRequest("GET", "/?x=1")))
        #expect(QueryMatcher([("k", ["a b"])]).matches(directiveRequest("GET", "/?k=a+b")))
    }

    @Test func protocolMatcher() {
        #expect(ProtocolMatcher("http").matches(directiveRequest()))
        #expect(!ProtocolMatcher("https").matches(directiveRequest()))
        #expect(ProtocolMatcher("http/1.1+").matches(directiveRequest()))
        #expect(!ProtocolMatcher("http/2+").matches(directiveRequest()))
        #expect(ProtocolMatcher("http/1.0").matches(directiveRequest(version: .http1_0)))
        #expect(ProtocolMatcher("grpc").matches(directiveRequest(headers: [("Content-Type", "application/grpc+proto")])))
    }

    @Test func remoteIP() throws {
        let m = RemoteIPMatcher([try #require(IPPrefix("10.0.0.0/8")), try #require(IPPrefix("::1"))])
        #expect(m.matches(directiveRequest(remote: SocketAddress(ip: "10.1.2.3", port: 1))))
        #expect(m.matches(directiveRequest(remote: SocketAddress(ip: "::ffff:10.9.9.9", port: 1))))
        #expect(m.matches(directiveRequest(remote: SocketAddress(ip: "::1", port: 1))))
        #expect(!m.matches(directiveRequest(remote: SocketAddress(ip: "192.168.1.1", port: 1))))
        #expect(IPPrefix("300.1.1.1") == nil && IPPrefix("10.0.0.0/33") == nil)
    }

    @Test func not() {
        let m = NotMatcher([[PathMatcher(["/x*"])], [MethodMatcher(["POST"])]])
        #expect(m.matches(directiveRequest("GET", "/y")))
        #expect(!m.matches(directiveRequest("GET", "/x1")))
        #expect(!m.matches(directiveRequest("POST", "/y")))
    }
}

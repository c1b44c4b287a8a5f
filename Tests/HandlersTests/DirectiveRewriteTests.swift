import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// `rewrite`, `uri`, `method` (Caddy's rewrite handler; outputs checked against Caddy 2.11.7).
@Suite("Directive rewrite")
struct DirectiveRewriteTests {
    func rewrite(_ target: String, _ ops: [RewriteHandler.Op], method: String? = nil) -> HTTPRequest {
        let r = directiveRequest("GET", target)
        let h = RewriteHandler(method: method.map { Template($0, keepUnknown: false) }, ops: ops)
        let resp = HTTPResponse(sink: DirectiveSink())
        #expect(h.handle(r, resp) == .next)
        return r
    }

    func show(_ r: HTTPRequest) -> String { directiveExpand("{http.request.uri.path}|{http.request.uri}", r) }

    @Test(arguments: [
        ("/old?x=1", "/new", "/new|/new?x=1"),  // the query is kept
        ("/q?b=2&c", "/newq?a=1&{http.request.uri.query}", "/newq|/newq?a=1&b=2&c"),
        ("/q", "/newq?a=1&{http.request.uri.query}", "/newq|/newq?a=1"),
        ("/ph", "/x{http.request.uri.path}", "/x/ph|/x/ph"),
        ("/sp", "/a%20b/c", "/a b/c|/a%20b/c"),
        ("/qonly?gone=1", "?only=1", "/qonly|/qonly?only=1"),
        ("/e?k=a b", "/e?v={http.request.uri.query}", "/e|/e?v=k%3Da+b"),
        ("/x", "/a%2Fb", "/a/b|/a/b"),
        ("/x", "/café", "/café|/caf%C3%A9"),
        ("/x?y", "/z?", "/z|/z"),
    ])
    func uri(_ target: String, _ to: String, _ expected: String) {
        #expect(show(rewrite(target, [.uri(.init(to))])) == expected)
    }

    @Test func origURIIsKept() {
        let r = rewrite("/before?q=1", [.uri(.init("/after"))])
        #expect(directiveExpand("{http.request.orig_uri}", r) == "/before?q=1")
    }

    @Test(arguments: [
        ("/sp/a/b?q=1", "/sp", "/a/b|/a/b?q=1"),
        ("/SP/a", "/sp", "/a|/a"),
        ("/spx", "/sp", "/x|/x"),
        ("/sp", "/sp", "/|/"),
        ("/sp?q=1", "/sp", "/|/?q=1"),
        ("/other", "/sp", "/other|/other"),
        ("/a/../sp/x", "/sp", "/x|/x"),
        ("/s%70/x", "/sp", "/x|/x"),
        ("/sp/x", "sp", "/x|/x"),  // a prefix without a slash gets one
    ])
    func stripPrefix(_ target: String, _ prefix: String, _ expected: String) {
        #expect(show(rewrite(target, [.stripPrefix(Template(prefix))])) == expected)
    }

    @Test func stripSuffix() {
        #expect(show(rewrite("/ss/page.html", [.stripSuffix(Template(".html"))])) == "/ss/page|/ss/page")
        #expect(show(rewrite("/ss/page.HTML", [.stripSuffix(Template(".html"))])) == "/ss/page|/ss/page")
        #expect(show(rewrite("/ss/page.txt", [.stripSuffix(Template(".html"))])) == "/ss/page.txt|/ss/page.txt")
    }

    @Test func replaceInPathAndQuery() {
        let op = RewriteHandler.Op.replace(find: Template("foo"), replace: Template("bar"), limit: 0, mergeSlashes: true)
        #expect(show(rewrite("/rep/foo/foofoo?foo=1", [op])) == "/rep/bar/barbar|/rep/bar/barbar?bar=1")
        let limited = RewriteHandler.Op.replace(find: Template("foo"), replace: Template("bar"), limit: 1, mergeSlashes: true)
        #expect(show(rewrite("/foo/foo", [limited])) == "/bar/foo|/bar/foo")
        let all = RewriteHandler.Op.replace(find: Template("/rep"), replace: Template(""), limit: 0, mergeSlashes: true)
        #expect(show(rewrite("/rep", [all])) == "|/")  // empty path: {uri} is "/" (Go's RequestURI)
    }

    @Test func pathRegexp() throws {
        let op = RewriteHandler.Op.pathRegexp(try Regex("^/re/(\\d+)$"), Template("/num/$1"))
        #expect(show(rewrite("/re/42", [op])) == "/num/42|/num/42")
        #expect(show(rewrite("/re/abc", [op])) == "/re/abc|/re/abc")
        // The regexp sees the escaped path.
        let esc = RewriteHandler.Op.pathRegexp(try Regex("%20"), Template("_"))
        #expect(show(rewrite("/a%20b", [esc])) == "/a_b|/a_b")
    }

    @Test func method() {
        let r = rewrite("/m", [], method: "put")
        #expect(directiveExpand("{http.request.method}|{http.request.orig_method}", r) == "PUT|GET")
        #expect(r.method == .PUT)
    }

    @Test func rewritesAreMutuallyExclusiveGroups() {
        // Two rewrites in one group: only the first matching one runs.
        let first = Route(matchers: [PathMatcher(["/r/x"])], handlers: [RewriteHandler(ops: [.uri(.init("/two"))])], group: 0)
        let second = Route(matchers: [PathMatcher(["/r*"])], handlers: [RewriteHandler(ops: [.uri(.init("/one"))])], group: 0)
        let show = Route(handlers: [RespondHandler(body: Template("{http.request.uri.path}"))])
        #expect(directiveRun(directiveServer([first, second, show]), directiveRequest("GET", "/r/x")).text == "/two")
        #expect(directiveRun(directiveServer([first, second, show]), directiveRequest("GET", "/rabbit")).text == "/one")
    }
}

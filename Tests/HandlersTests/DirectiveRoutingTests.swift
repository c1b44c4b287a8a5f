import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// Route groups, handler errors and the error routes, `abort`, `try_files` matching.
@Suite("Directive routing and errors")
struct DirectiveRoutingTests {
    func respond(_ body: String, status: Int = 200, statusIsDefault: Bool = false) -> RespondHandler {
        RespondHandler(status: status, body: Template(body), statusIsDefault: statusIsDefault)
    }

    @Test func groupRunsOnlyFirstMatchingRoute() {
        let a = Route(matchers: [PathMatcher(["/a*"])], handlers: [HeaderHandler(ops: setOps("X-G", "a"), deferred: false, require: nil)], group: 1)
        let b = Route(handlers: [HeaderHandler(ops: setOps("X-G", "b"), deferred: false, require: nil)], group: 1)
        let c = Route(handlers: [respond("ok")])
        let s = directiveServer([a, b, c])
        #expect(directiveRun(s, directiveRequest("GET", "/abc")).header("X-G") == "a")
        #expect(directiveRun(s, directiveRequest("GET", "/zzz")).header("X-G") == "b")
    }

    func setOps(_ name: String, _ value: String) -> HeaderHandler.Ops {
        var o = HeaderHandler.Ops()
        o.set = [(HeaderHandler.FieldName(name), [Template(value)])]
        return o
    }

    @Test func errorWithoutErrorRoutesIsAnEmptyResponseWithItsStatus() {
        let now = HeaderHandler(ops: setOps("X-Kept", "yes"), deferred: false, require: nil)
        let s = directiveRun(directiveServer([Route(handlers: [now, ErrorHandler(status: 403, message: Template("Nope"))])]),
                             directiveRequest())
        #expect(s.status == 403 && s.body.isEmpty && s.header("X-Kept") == "yes")
    }

    @Test func errorRoutesSeePlaceholdersAndTheOriginalRequest() {
        let rewrite = RewriteHandler(ops: [.uri(.init("/renamed"))])
        let fail = ErrorHandler(status: nil, message: Template("boom {http.request.uri.path}"))
        let errors = [Route(handlers: [respond(
            "{http.error.status_code} {http.error.status_text} [{http.error.message}] {http.request.uri.path} {http.error.id}",
            statusIsDefault: true)])]
        let s = directiveRun(directiveServer([Route(handlers: [rewrite, fail])], errors: errors), directiveRequest("GET", "/rw"))
        #expect(s.status == 500)
        let parts = s.text.split(separator: " ")
        #expect(parts.prefix(7).joined(separator: " ") == "500 Internal Server Error [boom /renamed] /rw")
        #expect(parts.last?.count == 9)
    }

    @Test func errorStatusMatcher() {
        let r = directiveRequest()
        let m = ErrorStatusMatcher(classes: [5], codes: [404])
        #expect(!m.matches(r))
        r.vars.set("http.error.status_code", "503")
        #expect(m.matches(r))
        r.vars.set("http.error.status_code", "404")
        #expect(m.matches(r))
        r.vars.set("http.error.status_code", "403")
        #expect(!m.matches(r))
    }

    @Test func errorRoutesThatDoNotRespondGiveTheStatus() {
        let errors = [Route(matchers: [ErrorStatusMatcher(classes: [], codes: [404])], handlers: [respond("nf")])]
        let s = directiveRun(directiveServer([Route(handlers: [ErrorHandler(status: 418, message: Template(""))])], errors: errors),
                             directiveRequest())
        #expect(s.status == 418 && s.body.isEmpty)
    }

    @Test func placeholderStatusThatIsNotANumberFails() {
        let h = RespondHandler(status: 0, body: Template(""), headers: [("Location", Template("/z"))],
                               statusTemplate: Template("{http.request.header.X-Code}", keepUnknown: false))
        let ok = directiveRun(directiveServer([Route(handlers: [h])]), directiveRequest(headers: [("X-Code", "308")]))
        #expect(ok.status == 308 && ok.header("Location") == "/z")
        let bad = directiveRun(directiveServer([Route(handlers: [h])]), directiveRequest(headers: [("X-Code", "abc")]))
        #expect(bad.status == 500 && bad.header("Location") == "/z" && bad.body.isEmpty)
    }

    @Test func abortSendsNothing() {
        let s = directiveRun(directiveServer([Route(handlers: [AbortHandler()])]), directiveRequest())
        #expect(s.aborted && s.completes == 0)
    }

    @Test func tryFilesMatcher() throws {
        let dir = "/tmp/berth-directive-tf-\(getpid())"
        mkdir(dir, 0o755)
        mkdir(dir + "/sub", 0o755)
        let fd = open(dir + "/a.txt", O_CREAT | O_WRONLY, 0o644)
        close(fd)
        defer {
            unlink(dir + "/a.txt")
            rmdir(dir + "/sub")
            rmdir(dir)
        }
        let m = FileMatcher(root: Template(dir), candidates: [
            .file(Template("{http.request.uri.path}"), trailingSlash: false),
            .file(Template("{http.request.uri.path}/"), trailingSlash: true),
            .status(404),
        ])
        let file = directiveRequest("GET", "/a.txt")
        #expect(m.matches(file))
        #expect(file.vars.string("http.matchers.file.relative") == "/a.txt")
        #expect(file.vars.string("http.matchers.file.absolute") == dir + "/a.txt")
        #expect(file.vars.string("http.matchers.file.type") == "file")
        let sub = directiveRequest("GET", "/sub")
        #expect(m.matches(sub))
        #expect(sub.vars.string("http.matchers.file.relative") == "/sub/")
        #expect(sub.vars.string("http.matchers.file.type") == "directory")
        let missing = directiveRequest("GET", "/nope")
        #expect(m.matches(missing))
        #expect(missing.vars.string("http.matchers.file.error") == "404")
        // Traversal stays inside the root.
        let up = directiveRequest("GET", "/../../etc/passwd")
        _ = m.matches(up)
        #expect(up.vars.string("http.matchers.file.absolute") == nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif

import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// `header` operations (Caddy's headers handler, response side).
@Suite("Directive header")
struct DirectiveHeaderTests {
    func respond(_ body: String = "x", status: Int = 200, headers: [(String, String)] = []) -> RespondHandler {
        RespondHandler(status: status, body: Template(body), headers: headers.map { ($0.0, Template($0.1, keepUnknown: false)) })
    }

    func ops(set: [(String, [String])] = [], add: [(String, String)] = [], delete: [String] = [],
             replace: [(String?, String, String)] = []) -> HeaderHandler.Ops {
        var o = HeaderHandler.Ops()
        o.set = set.map { (HeaderHandler.FieldName($0.0), $0.1.map { Template($0, keepUnknown: true) }) }
        o.add = add.map { (HeaderHandler.FieldName($0.0), Template($0.1, keepUnknown: true)) }
        o.delete = delete
        o.replace = replace.map {
            HeaderHandler.Replacement(field: $0.0.map(HeaderHandler.FieldName.init), regex: try! Regex($0.1), regexTemplate: nil,
                                      search: nil, replace: Template($0.2))
        }
        return o
    }

    func run(_ handlers: [any Handler], _ request: HTTPRequest = directiveRequest()) -> DirectiveSink {
        directiveRun(directiveServer([Route(handlers: handlers)]), request)
    }

    @Test func setAddAndCanonicalNames() {
        let h = HeaderHandler(ops: ops(set: [("x-set", ["a", "b"])], add: [("x-add", "1"), ("X-ADD", "2")]), deferred: false, require: nil)
        let s = run([h, respond()])
        #expect(s.headers("X-Set") == ["a,b"])
        #expect(s.fields.contains { $0.0 == "X-Set" })
        #expect(s.headers("X-Add") == ["1", "2"])
    }

    @Test func immediateSetIsSeenByRespondContentType() {
        let h = HeaderHandler(ops: ops(set: [("Content-Type", ["text/html"])]), deferred: false, require: nil)
        let s = run([h, respond("<p>")])
        #expect(s.headers("Content-Type") == ["text/html"])
    }

    @Test func deferredDeleteWithWildcards() {
        let setter = HeaderHandler(ops: ops(set: [("X-Rm-A", ["1"]), ("X-Keep", ["k"]), ("Y-Rm", ["2"])]), deferred: false, require: nil)
        let del = HeaderHandler(ops: ops(delete: ["X-Rm*", "*-rm"]), deferred: true, require: nil)
        let s = run([setter, del, respond()])
        #expect(s.header("X-Rm-A") == nil && s.header("Y-Rm") == nil)
        #expect(s.header("X-Keep") == "k")
    }

    @Test func deletingServerLeavesASuppressionMarker() {
        let del = HeaderHandler(ops: ops(delete: ["Server"]), deferred: true, require: nil)
        let sink = DirectiveSink()
        let response = HTTPResponse(sink: sink)
        _ = directiveServer([Route(handlers: [del, respond()])]).handle(directiveRequest(), response)
        // A nameless field with the Server token: the protocol omits its own Server header.
        #expect(response.fields.entries.contains { $0.token == .server && $0.nameLength == 0 })
    }

    @Test func deleteAllClearsEverything() {
        let del = HeaderHandler(ops: ops(delete: ["*"]), deferred: true, require: nil)
        let s = run([del, respond()])
        #expect(s.fields.isEmpty)
    }

    @Test func regexpReplaceWithGroups() {
        let h = HeaderHandler(ops: ops(replace: [("Content-Type", "text/(.*)", "application/$1")]), deferred: true, require: nil)
        let s = run([h, respond()])
        #expect(s.header("Content-Type") == "application/plain; charset=utf-8")
        let all = HeaderHandler(ops: ops(set: [("X-A", ["aaa"])], replace: [(nil, "a", "b")]), deferred: false, require: nil)
        #expect(run([all, respond()]).header("X-A") == "bbb")
    }

    @Test func defaultOnlyWhenAbsent() {
        let require = ResponseMatcher(headers: [HeaderFieldCondition(name: "Content-Type", patterns: nil)])
        let dflt = HeaderHandler(ops: ops(set: [("Content-Type", ["text/html"])]), deferred: false, require: require)
        #expect(run([dflt, respond()]).header("Content-Type") == "text/plain; charset=utf-8")
        #expect(run([dflt, respond("")]).header("Content-Type") == "text/html")
    }

    @Test func responseMatcherOnStatus() {
        let m = ResponseMatcher(statusCodes: [4])
        let h = HeaderHandler(ops: ops(set: [("X-Err", ["yes"])]), deferred: false, require: m)
        #expect(run([h, respond(status: 404)]).header("X-Err") == "yes")
        #expect(run([h, respond(status: 200)]).header("X-Err") == nil)
    }

    @Test func placeholdersInValues() {
        let h = HeaderHandler(ops: ops(set: [("X-Path", ["{http.request.uri.path} {unknown}"])]), deferred: true, require: nil)
        #expect(run([h, respond()], directiveRequest("GET", "/a%20b")).header("X-Path") == "/a b {unknown}")
    }

    @Test func deferredOpsAreDroppedOnError() {
        let h = HeaderHandler(ops: ops(set: [("X-Late", ["1"])]), deferred: true, require: nil)
        let now = HeaderHandler(ops: ops(set: [("X-Now", ["1"])]), deferred: false, require: nil)
        let err = ErrorHandler(status: 403, message: Template("no"))
        let s = run([now, h, err])
        #expect(s.status == 403 && s.header("X-Now") == "1" && s.header("X-Late") == nil)
    }

    @Test func canonicalNames() {
        #expect(HeaderHandler.canonical("x-forwarded-for") == "X-Forwarded-For")
        #expect(HeaderHandler.canonical("ETAG") == "Etag")
        #expect(HeaderHandler.canonical("bad name") == "bad name")
    }
}

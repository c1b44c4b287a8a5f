import HTTPCore
import IOCore
import Testing

@testable import Handlers

@Suite("RespondHandler")
struct RespondTests {
    func respond(_ body: String, status: Int = 200, headers: [(String, String)] = [], close: Bool = false,
                 request: HTTPRequest = makeRequest()) -> RecordingSink.Sent? {
        let h = RespondHandler(status: status, body: Template(body),
                               headers: headers.map { (name: $0.0, value: Template($0.1, keepUnknown: false)) }, close: close)
        let (sent, result) = run(h, request)
        #expect(result == .done)
        return sent
    }

    @Test func helloWorld() {
        #expect(respond("Hello world\n") == .init(status: 200, fields: ["Content-Type: text/plain; charset=utf-8"], body: "Hello world\n", close: false))
    }

    @Test func statusOnlyHasNoContentType() {
        #expect(respond("", status: 404) == .init(status: 404, fields: [], body: "", close: false))
        #expect(respond("", status: 204)?.fields == [])
    }

    @Test(arguments: [
        ("{\"a\":1}", "application/json"),
        ("[1,2,3]", "application/json"),
        ("  \n{\"a\": [true, false, null, -0.5e+3, \"\\u00e9\\n\"]}\t\n", "application/json"),
        ("\u{0C}[1]\u{0B}", "application/json"),  // Go's TrimSpace trims \f and \v too
        ("[[[[]]]]", "application/json"),
        // Caddy needs more than 2 bytes: {} and [] are plain text.
        ("{}", "text/plain; charset=utf-8"),
        ("[]", "text/plain; charset=utf-8"),
        ("{ }", "application/json"),
        ("\"str\"", "text/plain; charset=utf-8"),  // valid JSON, but not an object or array
        ("123", "text/plain; charset=utf-8"),
        ("{a:1}", "text/plain; charset=utf-8"),
        ("[1,]", "text/plain; charset=utf-8"),
        ("[01]", "text/plain; charset=utf-8"),  // leading zero
        ("[1.]", "text/plain; charset=utf-8"),
        ("[.5]", "text/plain; charset=utf-8"),
        ("[+1]", "text/plain; charset=utf-8"),
        ("[\"a\tb\"]", "text/plain; charset=utf-8"),  // raw control character in a string
        ("[\"\\x\"]", "text/plain; charset=utf-8"),
        ("[\"\\u12G4\"]", "text/plain; charset=utf-8"),
        ("{\"a\":1}}", "text/plain; charset=utf-8"),
        ("[tru]", "text/plain; charset=utf-8"),
        ("[1] [2]", "text/plain; charset=utf-8"),
        ("   ", "text/plain; charset=utf-8"),  // non-empty but blank
        ("Hello", "text/plain; charset=utf-8"),
    ])
    func contentType(_ body: String, _ expected: String) {
        let sent = respond(body)
        #expect(sent?.fields == ["Content-Type: \(expected)"])
        #expect(sent?.body == body)
    }

    @Test func jsonValidator() {
        for valid in ["0", "-0", "1e5", "1E-5", "0.25", "\"\"", "[]", "{}", "{\"a\":{\"b\":[]}}", " [ 1 , 2 ] ", "[\"\\ud83d\\ude00\"]", "null"] {
            #expect(JSONShape.isValid(Array(valid.utf8)), "\(valid)")
        }
        for invalid in ["", "-", "01", "1.", ".1", "1e", "+1", "[", "{\"a\"}", "{\"a\":}", "{1:2}", "[1 2]", "nul", "\"abc", "[]]", "{\"a\":1,}"] {
            #expect(!JSONShape.isValid(Array(invalid.utf8)), "\(invalid)")
        }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(!JSONShape.isValid(Array(deep.utf8)))  // bounded recursion
    }

    @Test func contentTypeFollowsTheExpandedBody() {
        // Caddy decides on the body after placeholders: an empty expansion gets no Content-Type.
        #expect(respond("{host}", request: makeRequest(host: nil)) == .init(status: 200, fields: [], body: "", close: false))
        #expect(respond("{host}", request: makeRequest(host: "a"))?.fields == ["Content-Type: text/plain; charset=utf-8"])
        #expect(respond("[\"{host}\"]", request: makeRequest(host: "h"))?.fields == ["Content-Type: application/json"])
        #expect(respond("[{port}]", request: makeRequest(host: "h:80"))?.fields == ["Content-Type: application/json"])
        #expect(respond("[{port}]", request: makeRequest(host: "h"))?.fields == ["Content-Type: text/plain; charset=utf-8"])
    }

    @Test func templatedBodyAndHeaders() {
        let sent = respond("you asked for {path}", status: 302, headers: [("Location", "https://{host}{uri}"), ("X-Empty", "{nope}")],
                           request: makeRequest(target: "/x?y", host: "Site:80"))
        #expect(sent == .init(status: 302, fields: ["Content-Type: text/plain; charset=utf-8", "Location: https://Site/x?y", "X-Empty: "],
                              body: "you asked for /x", close: false))
    }

    @Test func configuredContentTypeWins() {
        let sent = respond("{\"a\":1}", headers: [("content-type", "application/x-custom")])
        #expect(sent?.fields == ["content-type: application/x-custom"])
    }

    @Test func closeAsksTheProtocolToClose() {
        #expect(respond("bye", close: true)?.close == true)
        #expect(respond("bye")?.close == false)
    }

    @Test func reusedResponseScratchDoesNotLeak() {
        // The same HTTPResponse (and its scratch) serves requests one after another.
        let h = RespondHandler(body: Template("{path}"), headers: [(name: "X-P", value: Template("{method}"))])
        let sink = RecordingSink()
        let response = HTTPResponse(sink: sink)
        _ = h.handle(makeRequest(target: "/long/path/here"), response)
        response.reset()
        _ = h.handle(makeRequest(method: "PUT", target: "/s"), response)
        #expect(sink.sent.map(\.body) == ["/long/path/here", "/s"])
        #expect(sink.sent.map(\.fields) == [["Content-Type: text/plain; charset=utf-8", "X-P: GET"],
                                            ["Content-Type: text/plain; charset=utf-8", "X-P: PUT"]])
    }

    @Test func largeTemplatedBodyGrowsScratch() {
        let big = String(repeating: "x", count: 10_000)
        let sent = respond(big + "{method}")
        #expect(sent?.body == big + "GET")
    }
}

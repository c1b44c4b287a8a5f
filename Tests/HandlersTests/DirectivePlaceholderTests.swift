import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// Placeholders as Caddy 2.11.7 expands them (outputs observed on the real binary).
@Suite("Directive placeholders")
struct DirectivePlaceholderTests {
    @Test func scanningFollowsCaddysReplacer() {
        let r = directiveRequest(host: "a.b.c")
        // ReplaceKnown: unknown kept, known replaced, `{{host}` keeps the first brace.
        #expect(directiveExpand("a{unknown}b{http.vars.x}c{{host}k{}l", r) == "a{unknown}bc{a.b.ck{}l")
        // ReplaceAll: unknown removed (up to the first closing brace).
        #expect(directiveExpand("a{unknown}b{{host}c", r, keepUnknown: false) == "abc")
        // Escapes drop the backslash anywhere.
        #expect(directiveExpand("\\{host\\}", r) == "{host}")
        #expect(directiveExpand("{host\\}}", r) == "{host}}")
    }

    @Test func pathPieces() {
        let r = directiveRequest("GET", "/dir/sub/file.tar.gz?x=1")
        #expect(directiveExpand("{http.request.uri.path.dir}|{http.request.uri.path.file}", r) == "/dir/sub/|file.tar.gz")
        #expect(directiveExpand("{http.request.uri.path.file.base}|{http.request.uri.path.file.ext}", r) == "file.tar|.gz")
        #expect(directiveExpand("{http.request.uri.path.0}|{http.request.uri.path.2}|{http.request.uri.path.9}", r) == "dir|file.tar.gz|")
        let slash = directiveRequest("GET", "/dir/")
        #expect(directiveExpand("{http.request.uri.path.file}|{http.request.uri.path.file.base}|{http.request.uri.path.file.ext}", slash) == "|dir|")
        let root = directiveRequest("GET", "/")
        #expect(directiveExpand("[{http.request.uri.path.file.base}][{http.request.uri.path.dir}]", root) == "[/][/]")
    }

    @Test func hostLabelsQueryAndCookies() {
        let r = directiveRequest("GET", "/?a=1&a=2&b=x%20y&c=%zz&d;e=1", host: "WWW.Example.com:8080",
                                 headers: [("Cookie", "c=choc; Sess=\"quoted\""), ("cookie", "z=1")])
        #expect(directiveExpand("{http.request.host.labels.0}|{http.request.host.labels.2}|{http.request.host.labels.3}", r) == "com|www|")
        #expect(directiveExpand("{http.request.uri.query.a}|{http.request.uri.query.b}|{http.request.uri.query.c}|{http.request.uri.query.d}", r) == "1,2|x y||")
        #expect(directiveExpand("{http.request.cookie.c}|{http.request.cookie.sess}|{http.request.cookie.z}|{http.request.cookie.none}", r) == "choc|quoted|1|")
        // An invalid label index is unknown.
        #expect(directiveExpand("{http.request.host.labels.x}", r) == "{http.request.host.labels.x}")
    }

    @Test func dynamicPlaceholdersAreUnknownUntilSet() {
        let r = directiveRequest()
        #expect(directiveExpand("{http.regexp.x.1}|{http.error.status_code}", r) == "{http.regexp.x.1}|{http.error.status_code}")
        #expect(directiveExpand("[{http.regexp.x.1}]", r, keepUnknown: false) == "[]")
        r.vars.set("http.regexp.x.1", "cap")
        #expect(directiveExpand("{http.regexp.x.1}|{re.x.1}", r) == "cap|cap")
        // vars are always known; client_ip defaults to the remote IP.
        #expect(directiveExpand("[{http.vars.root}]{http.vars.client_ip}", r) == "[]127.0.0.1")
        r.vars.set("root", "/srv")
        #expect(directiveExpand("{vars.root}", r) == "/srv")
    }

    @Test func origURIAfterRewrite() {
        let r = directiveRequest("GET", "/before?q=1")
        let out = ByteBuffer(capacity: 16)
        out.append("/after")
        r.setTarget(path: out.readable, query: nil)
        #expect(directiveExpand("{http.request.uri}|{http.request.orig_uri}|{http.request.orig_uri.path}|{http.request.orig_uri.query}", r)
                == "/after|/before?q=1|/before|q=1")
        r.restoreOriginal()
        #expect(directiveExpand("{http.request.uri}|{http.request.uri.path}|{http.request.uri.query}", r) == "/before?q=1|/before|q=1")
    }

    @Test func escapingModes() {
        let r = directiveRequest("GET", "/a%20b/c?x=1&y=a%26b")
        let t = Template("{http.request.uri.path}|{http.request.uri.query}", keepUnknown: false)
        func expand(_ e: TemplateEscaping) -> String {
            let b = ByteBuffer(capacity: 64)
            t.expand(r, into: b, escaping: e)
            return String(decoding: b.readable, as: UTF8.self)
        }
        #expect(expand(.none) == "/a b/c|x=1&y=a%26b")
        #expect(expand(.path) == "/a%20b/c|x=1&y=a%26b")
        #expect(expand(.queryKey) == "%2Fa+b%2Fc|x=1&y=a%26b")
        #expect(expand(.queryValue) == "%2Fa+b%2Fc|x%3D1%26y%3Da%2526b")
    }

    @Test func uuidAndTimeAreWellFormed() {
        let s = directiveExpand("{http.request.uuid}", directiveRequest())
        #expect(s.count == 36)
        #expect(Array(s)[14] == "4")
        #expect(Int(directiveExpand("{time.now.unix}", directiveRequest()))! > 1_700_000_000)
        // Caddy's other time.now forms: IMF-fixdate, common log (local time), year.
        let http = directiveExpand("{time.now.http}", directiveRequest())
        #expect(http.count == 29 && http.hasSuffix(" GMT") && http.dropFirst(3).hasPrefix(", "), "\(http)")
        let clf = directiveExpand("{time.now.common_log}", directiveRequest())
        #expect(clf.range(of: #"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$"#, options: .regularExpression) != nil, "\(clf)")
        let year = Int(directiveExpand("{time.now.year}", directiveRequest()))!
        #expect(year >= 2024 && clf.contains("/\(year):"))
        // Go's time.Time.String(), as Caddy prints {time.now}.
        let now = directiveExpand("{time.now}", directiveRequest())
        #expect(now.range(of: #"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{0,8}[1-9])? [+-]\d{4} [A-Za-z0-9+-]+ m=\+\d+\.\d{9}$"#,
                          options: .regularExpression) != nil, "\(now)")
        #expect(now.hasPrefix("\(year)-"))
        // The monotonic part counts from the process start: this test process is younger than a day.
        let m = Double(now.split(separator: "=").last!.dropFirst())!
        #expect(m >= 0 && m < 86_400, "\(now)")
    }

    @Test func requestVarsReplaceAndReset() {
        var v = RequestVars()
        v.set("a", "1")
        v.set("b", "2")
        v.set("a", "3")
        #expect(v.string("a") == "3" && v.string("b") == "2" && v.count == 2)
        v.removeAll()
        #expect(v.isEmpty && v.string("a") == nil)
    }
}

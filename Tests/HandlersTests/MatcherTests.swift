import HTTPCore
import IOCore
import Testing

@testable import Handlers

func hostMatches(_ patterns: [String], _ host: String?) -> Bool {
    HostMatcher(patterns).matches(makeRequest(host: host))
}

func pathMatches(_ patterns: [String], _ target: String) -> Bool {
    PathMatcher(patterns).matches(makeRequest(target: target))
}

@Suite("HostMatcher")
struct HostMatcherTests {
    @Test func exactIsCaseInsensitiveAndIgnoresPort() {
        #expect(hostMatches(["localhost"], "localhost"))
        #expect(hostMatches(["localhost"], "LOCALHOST"))
        #expect(hostMatches(["LocalHost"], "localhost"))
        #expect(hostMatches(["localhost"], "localhost:8080"))
        #expect(!hostMatches(["localhost"], "localhost2"))
        #expect(!hostMatches(["localhost"], "local"))
        #expect(!hostMatches(["localhost"], nil))
        #expect(!hostMatches(["localhost"], ""))
        #expect(hostMatches(["a.com", "b.com"], "b.com:1"))
    }

    @Test func trailingDotIsNotNormalised() {
        #expect(!hostMatches(["localhost"], "localhost."))
        #expect(!hostMatches(["localhost."], "localhost"))
        #expect(hostMatches(["localhost."], "LOCALHOST."))
    }

    @Test func wildcardMatchesExactlyOneLabel() {
        #expect(hostMatches(["*.example.com"], "www.example.com"))
        #expect(hostMatches(["*.example.com"], "WWW.Example.Com:443"))
        #expect(!hostMatches(["*.example.com"], "example.com"))
        #expect(!hostMatches(["*.example.com"], "a.b.example.com"))
        #expect(!hostMatches(["*.example.com"], "www.example.org"))
        #expect(hostMatches(["www.*.com"], "www.x.com"))
        #expect(hostMatches(["*.*"], "a.b"))
        #expect(!hostMatches(["*.*"], "a"))
        #expect(hostMatches(["*"], "localhost"))
        #expect(!hostMatches(["*"], "a.b"))
        // Caddy splits on "." and lets "*" stand for any part, an empty one included.
        #expect(hostMatches(["*.example.com"], ".example.com"))
    }

    @Test func ipv6Hosts() {
        #expect(hostMatches(["::1"], "[::1]:8080"))
        #expect(hostMatches(["::1"], "[::1]"))  // Caddy trims the brackets when there is no port
        #expect(!hostMatches(["::1"], "[::2]"))
        #expect(hostMatches(["2001:db8::1"], "[2001:DB8::1]:443"))
        #expect(hostMatches(["127.0.0.1"], "127.0.0.1:80"))
    }

    @Test func patternProperties() {
        #expect(HostPattern("*.A.com").hasWildcard)
        #expect(HostPattern("*.A.com").text == "*.a.com")
        #expect(!HostPattern("a*.com").hasWildcard)  // only a whole-label "*" is a wildcard
        #expect(HostPattern("a.b") == HostPattern("A.B"))
    }
}

@Suite("PathMatcher")
struct PathMatcherTests {
    @Test func exact() {
        #expect(pathMatches(["/foo"], "/foo"))
        #expect(pathMatches(["/foo"], "/FOO"))
        #expect(pathMatches(["/FOO"], "/foo?x=1"))
        #expect(!pathMatches(["/foo"], "/foo/"))
        #expect(!pathMatches(["/foo"], "/foobar"))
        #expect(!pathMatches(["/foo"], "/fo"))
        #expect(pathMatches(["/"], "/"))
        #expect(!pathMatches(["/"], "/a"))
    }

    @Test func prefixSuffixContains() {
        #expect(pathMatches(["/api*"], "/api"))
        #expect(pathMatches(["/api*"], "/api/v1/x"))
        #expect(pathMatches(["/api*"], "/APIs"))
        #expect(!pathMatches(["/api*"], "/ap"))
        #expect(pathMatches(["*.txt"], "/dir/readme.TXT"))
        #expect(!pathMatches(["*.txt"], "/readme.txt2"))
        #expect(pathMatches(["*admin*"], "/x/ADMIN/y"))
        #expect(!pathMatches(["*admin*"], "/x/adm/in"))
        #expect(pathMatches(["*"], "/anything/at/all"))
        #expect(pathMatches(["**"], "/"))
    }

    @Test func glob() {
        #expect(pathMatches(["/a/*/c"], "/a/b/c"))
        #expect(!pathMatches(["/a/*/c"], "/a/b/x/c"))  // * does not cross "/"
        #expect(pathMatches(["/a/*/c"], "/a//c") == false)  // "//" is merged to "/a/c" first
        #expect(pathMatches(["/*/*.jpg"], "/x/y.JPG"))
        #expect(pathMatches(["/a*b*"], "/axxbyy"))
        #expect(!pathMatches(["/a*b*"], "/axx/byy"))
        #expect(pathMatches(["/a?c"], "/abc"))  // path.Match: ? is one non-slash character
        #expect(!pathMatches(["/a?c"], "/a/c"))
        #expect(!pathMatches(["/a?c"], "/ac"))
    }

    @Test func decodedPath() {
        #expect(pathMatches(["/a b"], "/a%20b"))
        #expect(pathMatches(["/secret*"], "/%73ecret/x"))
        #expect(pathMatches(["/a/b"], "/a%2Fb"))
        #expect(pathMatches(["/café"], "/caf%C3%A9"))
    }

    @Test func cleanedPath() {
        // Caddy cleans the request path before matching (#4407).
        #expect(pathMatches(["/secret*"], "/public/../secret/x"))
        #expect(pathMatches(["/secret*"], "//secret"))
        #expect(pathMatches(["/secret*"], "/./secret"))
        #expect(pathMatches(["/secret*"], "/../../secret"))
        #expect(pathMatches(["/secret"], "/secret/."))
        #expect(pathMatches(["/secret/"], "/secret/./"))
        #expect(pathMatches(["/a/b"], "/a//b"))
        #expect(pathMatches(["/a/b"], "/a/%2e%2e/a/b"))
        #expect(!pathMatches(["/a/b"], "/a/b/.."))
        #expect(pathMatches(["/.well-known/*"], "/.well-known/acme"))
        // A pattern with "//" keeps empty segments in the path.
        #expect(pathMatches(["//a*"], "//a/x"))
        #expect(!pathMatches(["//a*"], "/a/x"))
        #expect(pathMatches(["/x//y"], "/x//y"))
        #expect(!pathMatches(["/x//y"], "/x/y"))
        #expect(pathMatches(["/x//y"], "/x//z/../y"))
    }

    @Test func anyPatternMatches() {
        #expect(pathMatches(["/a", "/b*", "*.c"], "/b/z"))
        #expect(pathMatches(["/a", "/b*", "*.c"], "/x.c"))
        #expect(!pathMatches(["/a", "/b*", "*.c"], "/x.d"))
        #expect(!pathMatches([], "/"))
    }
}

@Suite("CleanPath")
struct CleanPathTests {
    func clean(_ s: String, merge: Bool = true) -> String {
        let out = ByteBuffer(capacity: 16)
        Array(s.utf8).withUnsafeBytes { CleanPath.clean($0, mergeSlashes: merge, into: out) }
        return String(decoding: out.readable, as: UTF8.self)
    }

    @Test(arguments: [
        // Go's path.Clean table (path_test.go), plus Caddy's trailing-slash rule.
        ("", "."), ("abc", "abc"), ("abc/def", "abc/def"), ("a/b/c", "a/b/c"), (".", "."), ("..", ".."),
        ("../..", "../.."), ("../../abc", "../../abc"), ("/abc", "/abc"), ("/", "/"),
        ("abc/", "abc/"), ("abc/def/", "abc/def/"), ("/abc/", "/abc/"),
        ("abc//def//ghi", "abc/def/ghi"), ("//abc", "/abc"), ("///abc", "/abc"), ("//abc//", "/abc/"),
        ("abc/./def", "abc/def"), ("/./abc/def", "/abc/def"), ("abc/.", "abc"),
        ("abc/def/ghi/../jkl", "abc/def/jkl"), ("abc/def/../ghi/../jkl", "abc/jkl"), ("abc/def/..", "abc"),
        ("abc/def/../..", "."), ("/abc/def/../..", "/"), ("abc/def/../../..", ".."), ("/abc/def/../../..", "/"),
        ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"), ("/../abc", "/abc"),
        ("abc/./../def", "def"), ("abc//./../def", "def"), ("abc/../../././../def", "../../def"),
        ("/a/b/../", "/a/"), ("/a/..", "/"), ("/a/../", "/"),
    ])
    func mergingSlashes(_ input: String, _ expected: String) {
        #expect(clean(input) == expected)
    }

    @Test(arguments: [
        ("//a", "//a"), ("/a//b", "/a//b"), ("/a//", "/a//"), ("/a//../b", "/a/b"), ("/a/./b", "/a/b"),
        ("/a/b/..", "/a"), ("/", "/"), ("/x//z/../y", "/x//y"),
    ])
    func keepingSlashes(_ input: String, _ expected: String) {
        #expect(clean(input, merge: false) == expected)
    }

    @Test func needsCleaning() {
        func needs(_ s: String) -> Bool { Array(s.utf8).withUnsafeBytes { CleanPath.needsCleaning($0) } }
        for s in ["/a//b", "/a/./b", "/a/../b", "/a/.", "/a/..", "//", "./a", ""] { #expect(needs(s), "\(s)") }
        for s in ["/", "/a", "/a/b/", "/.well-known", "/a..b", "/a/...", "/a/.b", "*"] { #expect(!needs(s), "\(s)") }
        // Whatever needsCleaning says "no" to must indeed be unchanged by cleaning.
        for s in ["/", "/a", "/a/b/", "/.well-known", "/a..b", "/a/...", "/a/.b", "*"] { #expect(clean(s) == s) }
    }
}

@Suite("AnyOfMatcher")
struct AnyOfMatcherTests {
    @Test func orOfAnds() {
        let m = AnyOfMatcher(sets: [[HostMatcher(["a.com"]), PathMatcher(["/x*"])], [HostMatcher(["b.com"])]])
        #expect(m.matches(makeRequest(target: "/x1", host: "a.com")))
        #expect(!m.matches(makeRequest(target: "/y", host: "a.com")))
        #expect(m.matches(makeRequest(target: "/y", host: "b.com")))
        #expect(!m.matches(makeRequest(target: "/x", host: "c.com")))
        #expect(!AnyOfMatcher(sets: []).matches(makeRequest()))
        #expect(AnyOfMatcher(sets: [[]]).matches(makeRequest()))
    }
}

import HTTPCore
import IOCore
import Testing

@testable import Handlers

@Suite("Template")
struct TemplateTests {
    let r = makeRequest(method: "POST", target: "/a%20b/c?x=1&y=%20", host: "Example.COM:8443",
                        headers: [("X-Token", "abc"), ("Accept", "text/html"), ("x-token", "def")],
                        remote: SocketAddress(ip: "10.0.0.7", port: 40123))

    @Test func literalOnly() {
        let t = Template("plain text")
        #expect(t.isStatic)
        #expect(t.staticBytes == Array("plain text".utf8))
        #expect(t.string(for: r) == "plain text")
        #expect(Template("").isStatic && Template("").string(for: r) == "")
    }

    @Test(arguments: [
        ("{host}", "Example.COM"), ("{http.request.host}", "Example.COM"),
        ("{hostport}", "Example.COM:8443"), ("{http.request.hostport}", "Example.COM:8443"),
        ("{port}", "8443"), ("{http.request.port}", "8443"),
        ("{uri}", "/a%20b/c?x=1&y=%20"), ("{http.request.uri}", "/a%20b/c?x=1&y=%20"),
        ("{path}", "/a b/c"), ("{http.request.uri.path}", "/a b/c"),
        ("{query}", "x=1&y=%20"), ("{http.request.uri.query}", "x=1&y=%20"),
        ("{?query}", "?x=1&y=%20"),
        ("{method}", "POST"), ("{http.request.method}", "POST"),
        ("{scheme}", "http"), ("{http.request.scheme}", "http"),
        ("{remote_host}", "10.0.0.7"), ("{http.request.remote.host}", "10.0.0.7"),
        ("{remote_port}", "40123"), ("{http.request.remote.port}", "40123"),
        ("{remote}", "10.0.0.7:40123"), ("{http.request.remote}", "10.0.0.7:40123"),
        ("{http.request.proto}", "HTTP/1.1"),
        ("{http.request.header.Accept}", "text/html"), ("{header.accept}", "text/html"),
        // Repeated fields are joined with "," as Caddy does.
        ("{http.request.header.X-Token}", "abc,def"),
        ("{header.X-Missing}", ""),
        // Host is the authority, not a header field (Go removes it from Header).
        ("{http.request.header.Host}", ""),
        ("https://{host}{uri}", "https://Example.COM/a%20b/c?x=1&y=%20"),
        ("{method} {path}!", "POST /a b/c!"),
    ])
    func placeholders(_ source: String, _ expected: String) {
        #expect(expand(source, r) == expected)
        #expect(!Template(source).isStatic || !source.contains("{"))
    }

    @Test func ipv6RemoteIsBracketedAndMappedIPv4IsNot() {
        let v6 = makeRequest(remote: SocketAddress(ip: "2001:db8::5", port: 443))
        #expect(expand("{remote}|{remote_host}|{remote_port}", v6) == "[2001:db8::5]:443|2001:db8::5|443")
        let mapped = makeRequest(remote: SocketAddress(ip: "::ffff:192.0.2.1", port: 8))
        #expect(expand("{remote}|{remote_host}", mapped) == "192.0.2.1:8|192.0.2.1")
        let none = makeRequest(remote: nil)
        #expect(expand("[{remote}|{remote_host}|{remote_port}]", none) == "[||]")
    }

    @Test func hostAndPortForms() {
        #expect(expand("{host}|{port}|{hostport}", makeRequest(host: "[::1]:8080")) == "::1|8080|[::1]:8080")
        #expect(expand("{host}|{port}|{hostport}", makeRequest(host: "[::1]")) == "[::1]||[::1]")
        #expect(expand("{host}|{port}", makeRequest(host: "h")) == "h|")  // Caddy: no port → empty
        #expect(expand("{host}|{port}", makeRequest(host: "h", tls: true)) == "h|")
        #expect(expand("{host}|{port}", makeRequest(host: "h:")) == "h|")
        #expect(expand("{host}|{hostport}|{port}", makeRequest(host: nil)) == "||")
        #expect(expand("{scheme}", makeRequest(tls: true)) == "https")
    }

    @Test func queryForms() {
        #expect(expand("[{query}][{?query}]", makeRequest(target: "/p")) == "[][]")
        #expect(expand("[{query}][{?query}]", makeRequest(target: "/p?")) == "[][]")
        #expect(expand("[{query}][{?query}]", makeRequest(target: "/p?a")) == "[a][?a]")
        #expect(expand("{uri}", makeRequest(target: "/p?")) == "/p?")
    }

    @Test func pathDecoding() {
        #expect(expand("{path}", makeRequest(target: "/%41%62%2Fc%zz%4")) == "/Ab/c%zz%4")
        #expect(expand("{path}", makeRequest(target: "/caf%C3%A9")) == "/café")
        #expect(expand("{path}", makeRequest(target: "/a+b")) == "/a+b")
    }

    @Test func protoPerVersion() {
        #expect(expand("{http.request.proto}", makeRequest(version: .http1_0)) == "HTTP/1.0")
        #expect(expand("{http.request.proto}", makeRequest(version: .http2)) == "HTTP/2.0")
    }

    @Test func environmentIsResolvedAtCompileTime() {
        let t = Template("home={env.HOME_DIR};none={env.NOPE}", environment: ["HOME_DIR": "/root"])
        #expect(t.isStatic)
        #expect(t.string(for: r) == "home=/root;none=")
    }

    @Test func unknownPlaceholdersKeptOrDropped() {
        // `{http.vars.*}` is always known to Caddy (empty when unset) [obs 2.11.7].
        #expect(expand("a{unknown}b{http.vars.x}c", r, keepUnknown: true) == "a{unknown}bc")
        #expect(expand("a{unknown}b{http.vars.x}c", r, keepUnknown: false) == "abc")
        #expect(Template("{unknown}", keepUnknown: true).isStatic)
        #expect(Template("{unknown}", keepUnknown: false).isStatic)
    }

    @Test func bracesThatAreNotPlaceholders() {
        #expect(expand("{\"a\": 1}", r) == "{\"a\": 1}")  // JSON bodies survive
        #expect(expand("{", r) == "{")
        #expect(expand("}", r) == "}")
        #expect(expand("{host", r) == "{host")
        #expect(expand("{}", r, keepUnknown: true) == "{}")
        #expect(expand("{{host}}", r) == "{Example.COM}")
    }

    @Test func escapedBraces() {
        #expect(expand("\\{host}", r) == "{host}")
        #expect(expand("\\{host\\}", r) == "{host}")
        #expect(expand("a\\b", r) == "a\\b")  // other backslashes stay
        #expect(expand("\\", r) == "\\")
        #expect(Template("\\{host}").isStatic)
    }

    @Test func placeholderParsing() {
        #expect(Placeholder.parse("host") == .host)
        #expect(Placeholder.parse("?query") == .queryWithMark)
        #expect(Placeholder.parse("header.X-Y") == .header("X-Y"))
        #expect(Placeholder.parse("http.request.header.X-Y") == .header("X-Y"))
        #expect(Placeholder.parse("env.A") == .env("A"))
        #expect(Placeholder.parse("Host") == nil)  // names are case-sensitive
        #expect(Placeholder.parse("http.request.uri.path.dir") == .pathDir)
        #expect(Placeholder.parse("http.request.nope") == nil)
        #expect(Placeholder.parse("") == nil)
    }

    @Test func expandAppendsToExistingBuffer() {
        let b = ByteBuffer(capacity: 16)
        b.append("pre:")
        Template("{method}").expand(r, into: b)
        #expect(String(decoding: b.readable, as: UTF8.self) == "pre:POST")
    }
}

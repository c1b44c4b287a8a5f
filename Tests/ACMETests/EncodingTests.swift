import JSON
import Testing

@testable import ACME

@Suite("JSON (RFC 8259)")
struct JSONTests {
    @Test func parsesAnACMEOrder() throws {
        let text = """
            {"status": "pending", "expires": "2026-01-01T00:00:00Z",
             "identifiers": [{"type": "dns", "value": "example.com"}],
             "authorizations": ["https://ca/authz/1"], "finalize": "https://ca/finalize/1", "n": -12.5e2, "ok": true, "x": null}
            """
        let j = try JSONValue.parse(text)
        #expect(j["status"]?.stringValue == "pending")
        #expect(j["identifiers"]?.arrayValue?.first?["value"]?.stringValue == "example.com")
        #expect(j["authorizations"]?.arrayValue?.count == 1)
        #expect(j["n"] == .number("-12.5e2"))
        #expect(j["ok"]?.boolValue == true)
        #expect(j["x"] == .null)
        #expect(j["missing"] == nil)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let j = try JSONValue.parse(#"["a\"b\\c\/d\n\t\u00e9\ud83d\ude00"]"#)
        #expect(j.arrayValue?.first?.stringValue == "a\"b\\c/d\n\té😀")
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "tru", "01", "1.", "-", "\"abc", "\"\\x\"", "\"\\ud800\"", "[1] x",
        "\"\u{01}\"", "{\"a\":1,}", "nul",
    ])
    func rejects(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
        let ok = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect(throws: Never.self) { try JSONValue.parse(ok) }
    }

    @Test func serializesDeterministicallyAndRoundTrips() throws {
        let v = JSONValue.object([
            ("b", .string("q\"\\\n\u{1}")), ("a", .array([.int(1), .bool(false), .null])), ("c", .object([])),
        ])
        #expect(v.serialized() == #"{"b":"q\"\\\n\u0001","a":[1,false,null],"c":{}}"#)
        #expect(try JSONValue.parse(v.serialized()) == v)
    }
}

@Suite("base64url (RFC 4648 §5)")
struct Base64URLTests {
    @Test func rfc4648Vectors() {
        let vectors = ["": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            #expect(Base64URL.encode(plain) == encoded)
            #expect(Base64URL.decode(encoded) == Array(plain.utf8))
        }
    }

    @Test func urlSafeAlphabetAndTolerantDecoding() {
        #expect(Base64URL.encode([0xFB, 0xFF, 0xBF]) == "-_-_")
        #expect(Base64URL.decode("-_-_") == [0xFB, 0xFF, 0xBF])
        #expect(Base64URL.decode("+/+/") == [0xFB, 0xFF, 0xBF])
        #expect(Base64URL.decode("Zm8=") == Array("fo".utf8))
        #expect(Base64URL.decode("Z") == nil)
        #expect(Base64URL.decode("Zm9v!") == nil)
        let all = (0...255).map { UInt8($0) }
        #expect(Base64URL.decode(Base64URL.encode(all)) == all)
    }
}

@Suite("Problems and Retry-After")
struct ProblemTests {
    @Test func problemDocumentWithSubproblems() throws {
        let j = try JSONValue.parse("""
            {"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"Some names were rejected","status":400,
             "subproblems":[{"type":"urn:ietf:params:acme:error:malformed","detail":"bad name",
                             "identifier":{"type":"dns","value":"_x.example.com"}}]}
            """)
        let p = try #require(ACMEProblem(j, status: 403))
        #expect(p.shortType == "rejectedIdentifier" && p.status == 400)
        #expect(p.subproblems.first?.identifier == "_x.example.com")
        #expect(p.description == "rejectedIdentifier (HTTP 400): Some names were rejected; malformed (HTTP 403) for _x.example.com: bad name")
        #expect(ACMEProblem(.object([("detail", .string("x"))]), status: 500) == nil)
    }

    @Test func retryAfter() {
        #expect(RetryAfter.seconds("120", now: 0) == 120)
        #expect(RetryAfter.seconds(" 7 ", now: 0) == 7)
        #expect(RetryAfter.seconds("Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_777 - 30) == 30)
        #expect(RetryAfter.seconds("Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_777 + 30) == 0)
        #expect(RetryAfter.seconds("soon", now: 0) == nil)
        #expect(RetryAfter.seconds(nil, now: 0) == nil)
    }

    @Test func errorsReadClearly() {
        let p = ACMEProblem(type: "urn:ietf:params:acme:error:rateLimited", detail: "too many certificates", status: 429)
        let e = ACMEError.problem(p, retryAfter: 3600)
        #expect(e.description == "ACME server error: rateLimited (HTTP 429): too many certificates (retry after 3600s)")
        #expect(e.retryAfter == 3600 && e.problem?.isRateLimited == true)
        let v = ACMEError.validationFailed(identifier: "a.example", challenge: "http-01", problem: p)
        #expect(v.description.hasPrefix("challenge http-01 for a.example failed: rateLimited"))
    }
}

@Suite("URLs")
struct URLPartsTests {
    @Test func parses() throws {
        let a = try #require(URLParts("https://127.0.0.1:14000/dir"))
        #expect(a.secure && a.host == "127.0.0.1" && a.port == 14000 && a.pathAndQuery == "/dir" && a.hostHeader == "127.0.0.1:14000")
        let b = try #require(URLParts("HTTPS://acme-v02.api.letsencrypt.org/directory"))
        #expect(b.port == 443 && b.hostHeader == "acme-v02.api.letsencrypt.org")
        let c = try #require(URLParts("http://[::1]:8080?x=1"))
        #expect(!c.secure && c.host == "::1" && c.port == 8080 && c.pathAndQuery == "/?x=1" && c.hostHeader == "[::1]:8080")
        #expect(URLParts("ftp://x/") == nil)
        #expect(URLParts("https://:443/") == nil)
        #expect(URLParts("https://x:99999/") == nil)
    }

    @Test func caKeys() {
        #expect(ACMEIssuerSettings(directoryURL: "https://acme-v02.api.letsencrypt.org/directory").caKey == "acme-v02.api.letsencrypt.org")
        #expect(ACMEIssuerSettings(directoryURL: "https://localhost:14000/dir").caKey == "localhost-14000")
        #expect(ACMEStorage.safeName("*.Example.com") == "wildcard_.example.com")
        #expect(ACMEStorage.safeName("../x") == ".._x")
        #expect(ACMEStorage.safeName("..") == "_..")
    }
}

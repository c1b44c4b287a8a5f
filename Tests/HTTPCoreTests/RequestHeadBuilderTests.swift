import IOCore
import Testing

@testable import HTTPCore

/// The HTTP/2 and HTTP/3 request-head step (`RequestHeadBuilder`), driven the way the streams
/// drive it: one decoded field at a time, then `complete`. Every limit and every rule has a test
/// that fails when the rule is taken out.
@Suite("RequestHeadBuilder")
struct RequestHeadBuilderTests {
    /// A builder and its request, with the limits a stream would pass.
    final class Head {
        var b = RequestHeadBuilder()
        let r = HTTPRequest()
        var pipe = RequestBodyPipe()
        var maxSection = 16384
        var maxFields = 100
        var decodedLimit = Int.max

        @discardableResult
        func add(_ name: String, _ value: String) -> Bool {
            let n = Array(name.utf8), v = Array(value.utf8)
            return n.withUnsafeBytes { nb in
                v.withUnsafeBytes { vb in
                    b.addField(
                        name: nb, value: vb, to: r, maxSectionSize: maxSection, maxFields: maxFields,
                        decodedLimit: decodedLimit)
                }
            }
        }

        @discardableResult
        func trailer(_ name: String, _ value: String) -> Bool {
            let n = Array(name.utf8), v = Array(value.utf8)
            return n.withUnsafeBytes { nb in
                v.withUnsafeBytes { vb in
                    b.addTrailer(
                        name: nb, value: vb, to: &pipe, maxSectionSize: maxSection, maxFields: maxFields,
                        decodedLimit: decodedLimit)
                }
            }
        }

        func request(_ method: String = "GET", path: String? = "/", authority: String? = "example.com") {
            add(":method", method)
            add(":scheme", "https")
            if let authority { add(":authority", authority) }
            if let path { add(":path", path) }
        }

        func complete(bodyEnded: Bool = true) { b.complete(r, bodyEnded: bodyEnded) }

        var authority: String? { r.authorityRange.map { r.withLineBytes($0) { String(decoding: $0, as: UTF8.self) } } }
        var fields: [(String, String)] { r.fields.pairs }
    }

    /// name + value + 32 (RFC 9113 §6.5.2, RFC 9114 §4.2.2).
    static func size(_ n: String, _ v: String) -> Int { n.utf8.count + v.utf8.count + 32 }

    // MARK: Pseudo-fields

    @Test func pseudoFieldsFillTheRequestLine() {
        let h = Head()
        h.request("POST", path: "/a/b?x=1&y", authority: "example.com:8443")
        h.add("accept", "*/*")
        h.complete()
        #expect(h.r.method == .POST)
        #expect(h.r.methodString == "POST")
        #expect(h.r.targetString == "/a/b?x=1&y")
        #expect(h.r.pathString == "/a/b")
        #expect(h.r.queryRange.map { h.r.withLineBytes($0) { String(decoding: $0, as: UTF8.self) } } == "x=1&y")
        #expect(h.authority == "example.com:8443")
        #expect(h.fields.map(\.0) == ["accept"])  // :scheme and the pseudo-fields are not fields
        #expect(!h.b.isHEAD && !h.b.isAsterisk)
        #expect(h.b.headFields == 1)  // pseudo-fields do not count against the field limit
    }

    @Test func pathWithoutQueryHasNoQueryRange() {
        let h = Head()
        h.request(path: "/plain")
        #expect(h.r.pathString == "/plain")
        #expect(h.r.queryRange == nil)
    }

    @Test func headMethodIsNoted() {
        let h = Head()
        h.request("HEAD")
        #expect(h.b.isHEAD)
        #expect(h.r.method == .HEAD)
    }

    @Test func asteriskPathIsNoted() {
        let h = Head()
        h.request("OPTIONS", path: "*")
        #expect(h.b.isAsterisk)
        let g = Head()
        g.request("OPTIONS", path: "/*")
        #expect(!g.b.isAsterisk)
    }

    // MARK: Authority

    @Test func hostStandsInForMissingAuthority() {
        let h = Head()
        h.request(authority: nil)
        h.add("host", "h.example")
        h.complete()
        #expect(h.authority == "h.example")
        #expect(h.fields.isEmpty)  // kept as the authority, not as a field
    }

    @Test func authorityWinsOverHost() {
        let h = Head()
        h.request(authority: "a.example")
        h.add("host", "h.example")
        h.complete()
        #expect(h.authority == "a.example")
        #expect(h.fields.isEmpty)
    }

    @Test func onlyTheFirstHostStandsIn() {
        let h = Head()
        h.request(authority: nil)
        h.add("host", "first.example")
        h.add("host", "second.example")
        #expect(h.authority == "first.example")
    }

    // MARK: Regular fields

    @Test func cookieCrumbsBecomeOneField() {
        let h = Head()
        h.request()
        h.add("cookie", "a=1")
        h.add("x", "y")
        h.add("cookie", "b=2")
        h.add("cookie", "c=3")
        #expect(h.fields.map(\.0) == ["x"])  // held back until the section ends
        h.complete()
        #expect(h.fields.map(\.0) == ["x", "cookie"])
        #expect(h.r.fields.value(.cookie) == "a=1; b=2; c=3")
        #expect(h.b.cookies.isEmpty)
    }

    @Test func contentLengthIsParsed() {
        let h = Head()
        h.request("POST")
        h.add("content-length", "12345")
        #expect(h.r.contentLength == 12345)
        #expect(h.r.fields.value(.contentLength) == "12345")
    }

    @Test func expectContinueIsNotedCaseInsensitively() {
        let h = Head()
        h.request("POST")
        h.add("expect", "100-Continue")
        #expect(h.b.expectContinue)
        #expect(h.r.fields.value(.expect) == "100-Continue")
        let g = Head()
        g.request("POST")
        g.add("expect", "something-else")
        #expect(!g.b.expectContinue)
    }

    // MARK: Completion

    @Test func bodyKindFollowsEndAndContentLength() {
        let ended = Head()
        ended.request()
        ended.complete(bodyEnded: true)
        #expect(!ended.r.hasStreamingBody)

        let streaming = Head()
        streaming.request("POST")
        streaming.complete(bodyEnded: false)
        #expect(streaming.r.hasStreamingBody)

        let sized = Head()
        sized.request("POST")
        sized.add("content-length", "3")
        sized.complete(bodyEnded: false)
        #expect(!sized.r.hasStreamingBody)
    }

    @Test func connectTargetsItsAuthority() {
        let h = Head()
        h.add(":method", "CONNECT")
        h.add(":authority", "upstream.example:443")
        h.complete(bodyEnded: false)
        #expect(h.r.targetString == "upstream.example:443")
        #expect(h.r.pathString == "")
        #expect(h.r.pathRange.lowerBound == h.r.authorityRange?.upperBound)

        // Not for other methods without a path (the library rejects those anyway).
        let g = Head()
        g.add(":method", "GET")
        g.add(":authority", "a.example")
        g.complete()
        #expect(g.r.targetRange.isEmpty)
    }

    // MARK: Limits (the 431 and the HPACK-bomb rules)

    @Test func sectionSizeLimitMarksTooLargeAndStopsStoring() {
        let h = Head()
        h.request()
        let used = h.b.headBytes
        h.maxSection = used + Self.size("a", "1") + Self.size("b", "2")
        h.add("a", "1")
        h.add("b", "2")
        #expect(!h.b.tooLarge)  // exactly at the limit is fine
        h.add("c", "3")
        #expect(h.b.tooLarge)
        h.maxSection = Int.max
        h.add("d", "4")  // sticky: nothing more is stored
        #expect(h.b.tooLarge)
        #expect(h.fields.map(\.0) == ["a", "b"])
        #expect(h.b.headBytes == used + 4 * Self.size("a", "1"))  // but everything is counted
    }

    @Test func pseudoFieldsCountTowardsTheSectionSize() {
        let h = Head()
        h.maxSection = Self.size(":method", "GET")
        h.add(":method", "GET")
        #expect(!h.b.tooLarge)
        h.add(":path", "/")
        #expect(h.b.tooLarge)
        #expect(h.r.targetRange.isEmpty)
    }

    @Test func fieldCountLimitMarksTooLarge() {
        let h = Head()
        h.maxFields = 2
        h.request()
        h.add("a", "1")
        h.add("b", "2")
        #expect(!h.b.tooLarge)
        h.add("c", "3")
        #expect(h.b.tooLarge)
        #expect(h.fields.map(\.0) == ["a", "b"])
    }

    @Test func hostAndCookieCountAsFields() {
        let h = Head()
        h.maxFields = 1
        h.request(authority: nil)
        h.add("cookie", "a=1")
        h.add("host", "h.example")
        #expect(h.b.tooLarge)
        #expect(h.authority == nil)
    }

    @Test func decodedLimitRefusesTheField() {
        let h = Head()
        h.request()
        h.decodedLimit = h.b.headBytes + Self.size("a", "1")
        #expect(h.add("a", "1"))
        #expect(!h.add("b", "2"))
        #expect(h.fields.map(\.0) == ["a"])
    }

    @Test func decodedLimitStillAppliesAfterTooLarge() {
        let h = Head()
        h.maxSection = 10
        h.decodedLimit = 200
        #expect(h.add("a", "1"))  // 34 > 10: too large, still under the decoded cap
        #expect(h.b.tooLarge)
        var answers: [Bool] = []
        for _ in 0..<5 { answers.append(h.add("a", "1")) }
        #expect(answers == [true, true, true, true, false])  // 6 × 34 = 204 > 200
    }

    // MARK: Trailers

    @Test func trailersAreKept() {
        let h = Head()
        h.request("POST")
        h.complete(bodyEnded: false)
        #expect(h.trailer("grpc-status", "0"))
        #expect(h.trailer("x-sum", "abc"))
        #expect(h.pipe.trailers.pairs.map(\.0) == ["grpc-status", "x-sum"])
        #expect(!h.pipe.trailersTooLarge)
        #expect(h.b.trailerBytes == Self.size("grpc-status", "0") + Self.size("x-sum", "abc"))
    }

    @Test func trailerSectionSizeIsCountedAlone() {
        let h = Head()
        h.request("POST")
        h.add("big", String(repeating: "v", count: 300))
        h.maxSection = Self.size("t", "1") * 2  // the head alone is already past it
        #expect(h.trailer("t", "1"))
        #expect(h.trailer("u", "2"))
        #expect(!h.pipe.trailersTooLarge)
        #expect(h.trailer("w", "3"))
        #expect(h.pipe.trailersTooLarge)
        h.maxSection = Int.max
        h.trailer("x", "4")  // sticky
        #expect(h.pipe.trailers.pairs.map(\.0) == ["t", "u"])
    }

    @Test func trailerFieldCountLimit() {
        let h = Head()
        h.maxFields = 2
        h.trailer("a", "1")
        h.trailer("b", "2")
        #expect(!h.pipe.trailersTooLarge)
        h.trailer("c", "3")
        #expect(h.pipe.trailersTooLarge)
        #expect(h.pipe.trailers.count == 2)
    }

    @Test func decodedLimitCountsHeadAndTrailersTogether() {
        let h = Head()
        h.request("POST")
        let head = h.b.headBytes
        h.decodedLimit = head + Self.size("t", "1")
        #expect(h.trailer("t", "1"))
        #expect(!h.trailer("u", "2"))
        #expect(h.pipe.trailers.count == 1)
    }

    // MARK: Reuse

    @Test func resetForgetsTheRequestKeepingStorage() {
        let h = Head()
        h.maxFields = 1
        h.request("HEAD", path: "*")
        h.add("expect", "100-continue")
        h.add("cookie", "a=1")  // second field: too large, the cookie is not kept
        h.trailer("t", "1")
        #expect(h.b.tooLarge && h.b.isHEAD && h.b.isAsterisk && h.b.expectContinue && h.b.sawAuthority)
        h.b.cookies.append("leftover")
        let capacity = h.b.cookies.capacity
        h.b.reset()
        #expect(!h.b.tooLarge && !h.b.isHEAD && !h.b.isAsterisk && !h.b.expectContinue && !h.b.sawAuthority)
        #expect(h.b.headBytes == 0 && h.b.headFields == 0 && h.b.trailerBytes == 0)
        #expect(h.b.cookies.isEmpty && h.b.cookies.capacity == capacity)
    }
}

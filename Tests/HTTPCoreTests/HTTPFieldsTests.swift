import Testing

@testable import HTTPCore

/// Every token, by raw value.
let allTokens: [HeaderToken] = (0...255).compactMap { HeaderToken(rawValue: UInt8($0)) }

func classify(_ s: String) -> HeaderToken {
    var s = s
    return s.withUTF8 { HeaderToken.classify(UnsafeRawBufferPointer($0)) }
}

@Suite("HeaderToken")
struct HeaderTokenTests {
    /// Lower-cased canonical name → token: the oracle for near-misses.
    let table: [String: HeaderToken] = Dictionary(uniqueKeysWithValues: allTokens.filter { $0 != .other }.map {
        ("\($0.canonicalName)".lowercased(), $0)
    })

    @Test func everyTokenHasADistinctCanonicalName() {
        // Raw values are dense from 0, so iterating 0...255 saw every case.
        #expect(allTokens.map(\.rawValue) == Array(0..<UInt8(allTokens.count)))
        #expect(allTokens.count > 40)
        #expect(allTokens.first == .other && HeaderToken.other.canonicalName.utf8CodeUnitCount == 0)
        #expect(table.count == allTokens.count - 1)
    }

    @Test func classifiesEveryTokenInAnyCase() {
        for t in allTokens where t != .other {
            let name = "\(t.canonicalName)"
            #expect(classify(name) == t, "\(name)")
            #expect(classify(name.lowercased()) == t, "\(name)")
            #expect(classify(name.uppercased()) == t, "\(name)")
            let alternating = String(name.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.lowercased()) : Character($0.element.uppercased()) })
            #expect(classify(alternating) == t, "\(alternating)")
        }
    }

    @Test func nearMissesAreOther() {
        // Change, drop or add one byte anywhere; the oracle decides (a mutation could in
        // principle produce another known name).
        let substitutes: [UInt8] = [0x00, 0x09, 0x0D, 0x0A, 0x20, 0x2D, 0x2E, 0x5F, 0x7F, 0x40, 0x60, 0x7B, 0x41, 0x7A, 0x30, 0x80, 0xC3]
        for t in allTokens where t != .other {
            let bytes = Array("\(t.canonicalName)".utf8)
            var variants: [[UInt8]] = [Array(bytes.dropLast()), Array(bytes.dropFirst()), bytes + [0x73], [0x78] + bytes]
            for i in bytes.indices {
                for s in substitutes where s != bytes[i] {
                    var v = bytes
                    v[i] = s
                    variants.append(v)
                }
            }
            for v in variants {
                let expected = table[String(decoding: v, as: UTF8.self).lowercased()] ?? .other
                let got = v.withUnsafeBytes { HeaderToken.classify($0) }
                #expect(got == expected, "\(v)")
            }
        }
    }

    @Test func controlBytesDoNotFoldIntoDashes() {
        // CR (0x0D) | 0x20 == "-": a naive case fold would accept these.
        #expect(classify("content\rlength") == .other)
        #expect(classify("x\rforwarded\rfor") == .other)
        #expect(classify("Content-Length") == .contentLength)
    }

    @Test(arguments: ["", "a", "x-custom", "content-lengthx", "hosts", "ho", "te ", "x-forwarded-proto-extra-long-name"])
    func unknownNames(_ s: String) {
        #expect(classify(s) == .other)
    }
}

@Suite("HTTPFields")
struct HTTPFieldsTests {
    @Test func appendFormsAndLookups() {
        var f = HTTPFields()
        f.append(name: "X-One", value: "1")
        f.append(.contentType, "text/plain")
        Array("gzip".utf8).withUnsafeBytes { f.append(.acceptEncoding, value: $0) }
        Array("Custom".utf8).withUnsafeBytes { n in
            Array("raw".utf8).withUnsafeBytes { v in f.append(name: n, value: v, token: .other) }
        }
        f.append(name: "content-type", value: "second")
        #expect(f.count == 5)
        #expect(f.pairs.map { "\($0.0)=\($0.1)" } == ["X-One=1", "Content-Type=text/plain", "Accept-Encoding=gzip", "Custom=raw", "content-type=second"])
        #expect(f.entries.map(\.token) == [.other, .contentType, .acceptEncoding, .other, .contentType])
        #expect(f.value(.contentType) == "text/plain")  // first wins
        #expect(f.value(.host) == nil)
        #expect(f.value(named: "x-one") == "1")
        #expect(f.value(named: "X-ONE") == "1")
        #expect(f.value(named: "CUSTOM") == "raw")
        #expect(f.value(named: "X-On") == nil)
        #expect(f.firstIndex(.contentType) == 1)
        #expect(f.firstIndex(.acceptEncoding) == 2)
        #expect(f.firstIndex(.date) == nil)
        #expect(f.contains(.acceptEncoding) && !f.contains(.date))
        #expect(f.withValue(.acceptEncoding) { $0.count } == 4)
        #expect(f.withValue(.server) { $0.count } == nil)
        #expect(f.withField(3) { n, v in String(decoding: n, as: UTF8.self) + ":" + String(decoding: v, as: UTF8.self) } == "Custom:raw")
        #expect(f.byteCount == "X-One1Content-Typetext/plainAccept-EncodinggzipCustomrawcontent-typesecond".utf8.count)
    }

    @Test func emptyValuesAndNames() {
        var f = HTTPFields()
        f.append(name: "X-Empty", value: "")
        #expect(f.value(named: "x-empty") == "")
        #expect(f.pairs.first?.1 == "")
    }

    @Test func removeByToken() {
        var f = HTTPFields()
        f.append(name: "Vary", value: "a")
        f.append(name: "X", value: "1")
        f.append(name: "vary", value: "b")
        f.remove(.vary)
        #expect(f.pairs.map(\.0) == ["X"])
        #expect(f.value(named: "X") == "1")
        f.remove(.vary)  // nothing left to remove
        #expect(f.count == 1)
    }

    @Test func removeByNameIsCaseInsensitiveAndExact() {
        var f = HTTPFields()
        f.append(name: "X-Custom", value: "1")
        f.append(name: "X-Custom-2", value: "2")
        f.append(name: "x-CUSTOM", value: "3")
        f.append(name: "X-Custo", value: "4")
        f.remove(name: "X-custom")
        #expect(f.pairs.map(\.1) == ["2", "4"])
        f.remove(name: "nope")
        #expect(f.count == 2)
    }

    @Test func removeAllKeepsCapacity() {
        var f = HTTPFields()
        for i in 0..<100 { f.append(name: "X-Field-\(i)", value: String(repeating: "v", count: 50)) }
        let arenaCap = f.arena.capacity
        let entriesCap = f.entries.capacity
        #expect(arenaCap >= f.byteCount)
        f.removeAll()
        #expect(f.count == 0 && f.byteCount == 0)
        #expect(f.arena.capacity == arenaCap)
        #expect(f.entries.capacity == entriesCap)
        f.append(name: "A", value: "b")
        #expect(f.pairs.map { $0.0 + $0.1 } == ["Ab"])
    }

    @Test func nonASCIINamesCompareByteWise() {
        var f = HTTPFields()
        f.append(name: "X-É", value: "1")
        #expect(f.value(named: "x-É") == "1")
        #expect(f.value(named: "x-é") == nil)  // only ASCII folds
    }
}

@Suite("HTTPMethod and HTTPVersion")
struct HTTPMethodTests {
    func method(_ s: String) -> HTTPMethod {
        var s = s
        return s.withUTF8 { HTTPMethod.classify(UnsafeRawBufferPointer($0)) }
    }

    @Test func classifiesEveryMethodCaseSensitively() {
        let all: [(String, HTTPMethod)] = [("GET", .GET), ("HEAD", .HEAD), ("POST", .POST), ("PUT", .PUT), ("DELETE", .DELETE),
                                           ("CONNECT", .CONNECT), ("OPTIONS", .OPTIONS), ("TRACE", .TRACE), ("PATCH", .PATCH)]
        for (s, m) in all {
            #expect(method(s) == m)
            #expect(method(s.lowercased()) == .other)
        }
        for s in ["", "G", "GETS", "PROPFIND", "GEt", "POS", "OPTIONS2"] { #expect(method(s) == .other, "\(s)") }
    }

    @Test func protoStrings() {
        #expect("\(HTTPVersion.http1_0.protoString)" == "HTTP/1.0")
        #expect("\(HTTPVersion.http1_1.protoString)" == "HTTP/1.1")
        #expect("\(HTTPVersion.http2.protoString)" == "HTTP/2.0")
        #expect("\(HTTPVersion.http3.protoString)" == "HTTP/3.0")
    }
}

@Suite("HTTPFields in-place edits (reverse_proxy forwards a parsed head without copying it)")
struct HTTPFieldsInPlaceTests {
    @Test func truncateForgetsLaterFieldsAndBytes() {
        var f = HTTPFields()
        f.append(name: "Alt-Svc", value: "h3=\":443\"")
        let (n, b) = (f.count, f.byteCount)
        f.append(name: "Server", value: "nginx")
        f.append(name: "X-A", value: "1")
        f.truncate(count: n, byteCount: b)
        #expect(f.pairs.map { "\($0.0): \($0.1)" } == ["Alt-Svc: h3=\":443\""])
        #expect(f.byteCount == b)
        f.append(name: "X-B", value: "2")
        #expect(f.pairs.map { "\($0.0): \($0.1)" } == ["Alt-Svc: h3=\":443\"", "X-B: 2"])
        f.truncate(count: 5, byteCount: 1000)  // nothing to cut
        #expect(f.count == 2)
    }

    @Test func removeAllFromKeepsEarlierFieldsAndOrder() {
        var f = HTTPFields()
        for (n, v) in [("Connection", "a"), ("X-1", "1"), ("Connection", "b"), ("X-2", "2"), ("Keep-Alive", "k"), ("X-3", "3")] {
            f.append(name: n, value: v)
        }
        f.removeAll(from: 1) { e, ab in
            let name = String(decoding: ab[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)], as: UTF8.self)
            return e.token == .connection || name == "Keep-Alive"
        }
        #expect(f.pairs.map { "\($0.0): \($0.1)" } == ["Connection: a", "X-1: 1", "X-2: 2", "X-3: 3"])
        f.removeAll(from: 4) { _, _ in true }
        #expect(f.count == 4)
    }

    @Test func appendFromOneSpan() {
        var f = HTTPFields()
        var line = "Content-Type:  text/plain"
        line.withUTF8 { b in
            f.append(span: UnsafeRawBufferPointer(b), nameLength: 12, valueOffset: 15, token: .contentType)
        }
        var empty = "X-E:"
        empty.withUTF8 { b in f.append(span: UnsafeRawBufferPointer(b), nameLength: 3, valueOffset: 4, token: .other) }
        #expect(f.pairs.map { "\($0.0)=\($0.1)" } == ["Content-Type=text/plain", "X-E="])
        #expect(f.firstIndex(.contentType) == 0)
    }

    @Test func appendSharingAnotherFieldsValue() {
        var f = HTTPFields()
        f.append(name: "trailer", value: "X-Checksum")
        let e = f.entries[0]
        f.remove(at: 0)
        f.append(name: "X-Pad", value: String(repeating: "p", count: 2000))  // grows the arena
        f.append(.trailer, valueOf: e)
        #expect(f.pairs.map { "\($0.0): \($0.1)" }.last == "Trailer: X-Checksum")
        #expect(f.entries.last!.token == .trailer)
    }
}

@Suite("HTTPFields token mask")
struct HTTPFieldsTokenMaskTests {
    @Test func maskIsSetByEveryAppendAndClearedByRemoveAll() {
        var f = HTTPFields()
        for t in allTokens { #expect(!f.mayContain(t)) }
        f.append(name: "Connection", value: "close")
        f.append(.via, "1.1 x")
        let line: [UInt8] = Array("Expect: 100-continue".utf8)
        line.withUnsafeBytes { f.append(span: $0, nameLength: 6, valueOffset: 8, token: .expect) }
        f.append(.trailer, valueOf: f.entries[0])
        for t in allTokens {
            #expect(f.mayContain(t) == [.connection, .via, .expect, .trailer].contains(t), "\(t)")
            if !f.mayContain(t) { #expect(f.firstIndex(t) == nil) }
        }
        // Removals may leave a bit set ("maybe"), never clear one that is present.
        f.remove(.via)
        #expect(f.mayContain(.connection) && f.firstIndex(.connection) == 0)
        f.removeAll()
        for t in allTokens { #expect(!f.mayContain(t)) }
    }
}

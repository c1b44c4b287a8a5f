import Foundation
import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// Conditional requests and byte ranges, as Go's ServeContent answers them for Caddy
/// (RFC 9110 §13, §14; caddy-behavior §11).
@Suite struct FileServerConditionalTests {
    let fx = FSFixture()
    static let etag = "\"cy3vy63hrojk-b\""
    static let lastModified = "Tue, 02 Jan 2024 03:04:05 GMT"

    func get(_ headers: [(String, String)], method: String = "GET", path: String = "/file.txt") -> FSResult {
        fsGet(fx.handler(), path, headers, method: method)
    }

    @Test(arguments: [
        // (If-None-Match, expected status)
        (etag, 304), ("W/" + etag, 304), ("*", 304), ("\"other\", " + etag, 304), ("\"other\"", 200),
        ("  " + etag + "  ", 304), ("garbage", 200), ("\"a\" , W/\"b\"", 200), ("\"cy3vy63hrojk-b", 200),
    ])
    func ifNoneMatch(_ value: String, _ status: Int) {
        let r = get([("If-None-Match", value)])
        #expect(r.status == status)
        if status == 304 {
            // Only the validator and Vary survive (Go's writeNotModified).
            #expect(Set(r.sink.fields.map(\.0)) == ["Vary", "Etag"])
            #expect(r.sink.body.isEmpty)
        }
    }

    @Test func ifModifiedSince() {
        #expect(get([("If-Modified-Since", Self.lastModified)]).status == 304)
        #expect(get([("If-Modified-Since", "Wed, 03 Jan 2024 00:00:00 GMT")]).status == 304)
        #expect(get([("If-Modified-Since", "Tue, 02 Jan 2024 03:04:04 GMT")]).status == 200)
        // RFC 850 and asctime forms.
        #expect(get([("If-Modified-Since", "Tuesday, 02-Jan-24 03:04:05 GMT")]).status == 304)
        #expect(get([("If-Modified-Since", "Tue Jan  2 03:04:05 2024")]).status == 304)
        // Invalid dates are ignored.
        #expect(get([("If-Modified-Since", "yesterday")]).status == 200)
        #expect(get([("If-Modified-Since", "Tue, 32 Jan 2024 03:04:05 GMT")]).status == 200)
        // If-None-Match takes precedence over If-Modified-Since.
        #expect(get([("If-None-Match", "\"x\""), ("If-Modified-Since", Self.lastModified)]).status == 200)
        // HEAD too.
        #expect(get([("If-Modified-Since", Self.lastModified)], method: "HEAD").status == 304)
    }

    @Test func ifMatchAndIfUnmodifiedSince() {
        let r = get([("If-Match", "\"x\"")])
        #expect(r.status == 412)
        #expect(r.field("Content-Type") == "text/plain; charset=utf-8")
        #expect(r.field("Etag") == Self.etag)
        #expect(r.field("Last-Modified") == Self.lastModified)
        #expect(r.sink.body.isEmpty)
        #expect(get([("If-Match", Self.etag)]).status == 200)
        #expect(get([("If-Match", "*")]).status == 200)
        // Weak tags never match strongly.
        #expect(get([("If-Match", "W/" + Self.etag)]).status == 412)
        #expect(get([("If-Unmodified-Since", "Mon, 01 Jan 2024 00:00:00 GMT")]).status == 412)
        #expect(get([("If-Unmodified-Since", Self.lastModified)]).status == 200)
        // If-Match wins over If-Unmodified-Since.
        #expect(get([("If-Match", Self.etag), ("If-Unmodified-Since", "Mon, 01 Jan 2024 00:00:00 GMT")]).status == 200)
    }

    @Test func singleRanges() {
        let r = get([("Range", "bytes=0-4")])
        #expect(r.status == 206)
        #expect(r.text == "hello")
        #expect(r.field("Content-Range") == "bytes 0-4/11")
        #expect(r.field("Accept-Ranges") == "bytes")
        #expect(get([("Range", "bytes=6-")]).text == "world")
        #expect(get([("Range", "bytes=-5")]).text == "world")
        #expect(get([("Range", "bytes=-50")]).text == "hello world")
        #expect(get([("Range", "bytes=-50")]).field("Content-Range") == "bytes 0-10/11")
        let clamped = get([("Range", "bytes=6-1000")])
        #expect(clamped.text == "world")
        #expect(clamped.field("Content-Range") == "bytes 6-10/11")
        #expect(get([("Range", "bytes= 2 - 3 ")]).text == "ll")
        // Unsatisfiable ranges are dropped when another one overlaps.
        #expect(get([("Range", "bytes=50-60, 0-0")]).text == "h")
        let head = get([("Range", "bytes=0-4")], method: "HEAD")
        #expect(head.status == 206)
        #expect(head.sink.declared == .some(5))
    }

    @Test func unsatisfiableAndInvalidRanges() {
        let r = get([("Range", "bytes=100-")])
        #expect(r.status == 416)
        #expect(r.text == "invalid range: failed to overlap\n")
        #expect(r.field("Content-Range") == "bytes */11")
        #expect(r.field("X-Content-Type-Options") == "nosniff")
        #expect(r.field("Content-Type") == "text/plain; charset=utf-8")
        #expect(r.field("Etag") == nil)
        #expect(r.field("Last-Modified") == nil)
        for bad in ["bytes=x", "items=0-1", "bytes=5-2", "bytes=--1", "bytes=-", "bytes=1", "bytes=-1-2", "bytes=a-b"] {
            let b = get([("Range", bad)])
            #expect(b.status == 416, "\(bad)")
            #expect(b.text == "invalid range\n", "\(bad)")
            #expect(b.field("Content-Range") == nil)
        }
        // An empty file ignores an unsatisfiable range.
        #expect(get([("Range", "bytes=0-10")], path: "/empty.txt").status == 200)
        // Ranges adding up to more than the file are ignored.
        #expect(get([("Range", "bytes=0-10,0-10")]).status == 200)
        // Empty range list: no ranges.
        #expect(get([("Range", "bytes=")]).status == 200)
    }

    @Test func multipleRanges() {
        let r = get([("Range", "bytes=0-1,3-4")])
        #expect(r.status == 206)
        let ct = r.field("Content-Type") ?? ""
        #expect(ct.hasPrefix("multipart/byteranges; boundary="))
        let boundary = String(ct.dropFirst("multipart/byteranges; boundary=".count))
        #expect(boundary.count == 60)
        #expect(boundary.allSatisfy { "0123456789abcdef".contains($0) })
        let expected = "--\(boundary)\r\nContent-Range: bytes 0-1/11\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhe"
            + "\r\n--\(boundary)\r\nContent-Range: bytes 3-4/11\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nlo"
            + "\r\n--\(boundary)--\r\n"
        #expect(r.text == expected)
        #expect(r.sink.declared == .some(Int64(expected.utf8.count)))
        #expect(r.field("Content-Range") == nil)
        // Overlaps are not merged; unknown types give an empty part type.
        let n = fsGet(fx.handler(), "/noext", [("Range", "bytes=0-1,1-2")])
        #expect(n.text.contains("Content-Type: \r\n"))
        #expect(n.status == 206)
    }

    @Test func ifRange() {
        #expect(get([("Range", "bytes=0-4"), ("If-Range", Self.etag)]).status == 206)
        #expect(get([("Range", "bytes=0-4"), ("If-Range", "\"other\"")]).status == 200)
        #expect(get([("Range", "bytes=0-4"), ("If-Range", "W/" + Self.etag)]).status == 200)
        #expect(get([("Range", "bytes=0-4"), ("If-Range", Self.lastModified)]).status == 206)
        #expect(get([("Range", "bytes=0-4"), ("If-Range", "Mon, 01 Jan 2024 00:00:00 GMT")]).status == 200)
        #expect(get([("Range", "bytes=0-4"), ("If-Range", "nonsense")]).status == 200)
    }

    @Test func largeRangesStream() throws {
        let size = 2_000_000
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 % 251) }
        try Data(bytes).write(to: URL(fileURLWithPath: fx.root + "/big.bin"))
        let r = fsRun(fx.handler(), fsRequest("GET", "/big.bin", headers: [("Range", "bytes=100000-1799999")]), window: 128 * 1024)
        #expect(r.status == 206)
        #expect(r.sink.body == Array(bytes[100_000..<1_800_000]))
        let m = fsRun(fx.handler(), fsRequest("GET", "/big.bin", headers: [("Range", "bytes=0-99999,1900000-")]), window: 64 * 1024)
        #expect(m.status == 206)
        #expect(m.sink.body.count == Int(m.sink.declared!!))
    }

    @Test func dateParsing() {
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 UTC") == nil)
        #expect(HTTPDate.parse("Sun, 29 Feb 1994 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 24:49:37 GMT") == nil)
        #expect(HTTPDate.parse("") == nil)
    }

    @Test func etagFormat() {
        var buf = [UInt8](repeating: 0, count: 48)
        let n = buf.withUnsafeMutableBufferPointer { ETag.write(mtimeSec: 1_704_164_645, mtimeNsec: 0, size: 11, into: $0.baseAddress!) }
        #expect(String(decoding: buf[0..<n], as: UTF8.self) == "\"cy3vy63hrojk-b\"")
        let none = buf.withUnsafeMutableBufferPointer { ETag.write(mtimeSec: 1, mtimeNsec: 0, size: 11, into: $0.baseAddress!) }
        #expect(none == 0)
    }

    @Test func unusefulMtimeDropsValidators() throws {
        let p = fx.root + "/epoch.txt"
        try "epoch".write(toFile: p, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1)], ofItemAtPath: p)
        let r = fsGet(fx.handler(), "/epoch.txt")
        #expect(r.field("Etag") == nil)
        #expect(r.field("Last-Modified") == nil)
        #expect(fsGet(fx.handler(), "/epoch.txt", [("If-Modified-Since", Self.lastModified)]).status == 200)
        #expect(fsGet(fx.handler(), "/epoch.txt", [("If-Match", "\"x\"")]).status == 412)
    }
}

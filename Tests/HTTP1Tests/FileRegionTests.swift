import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

/// File bodies through the HTTP/1 sink: small ones inline behind the head, large ones left to
/// the driver as a sendfile region that completes the exchange only when fully sent.
@Suite struct FileRegionTests {
    /// A temporary file with `count` bytes of a repeating pattern.
    static func tempFile(_ count: Int) -> (SharedFile, [UInt8], String) {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let path = NSTemporaryDirectory() + "berth-region-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        return (SharedFile(owning: fd), bytes, path)
    }

    static func fileResponder(_ file: SharedFile, offset: Int64, count: Int64) -> TestResponder.Mode {
        .custom { _, response in
            response.fields.append(.contentType, "application/octet-stream")
            return response.send(file: file, offset: offset, count: count)
        }
    }

    @Test func smallFileGoesInlineWithTheHead() {
        let (file, bytes, path) = Self.tempFile(1000)
        defer { unlink(path) }
        let h = Harness(Self.fileResponder(file, offset: 10, count: 100))
        h.conn.zeroCopyFiles = true
        #expect(h.feed("GET /f HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        let out = h.takeBytes()
        let text = normalizeDate(String(decoding: out, as: UTF8.self))
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nServer: Berth\r\nDate: X\r\nContent-Length: 100\r\n\r\n"))
        #expect(Array(out.suffix(100)) == Array(bytes[10..<110]))
        #expect(!h.conn.hasPendingFile)
        #expect(h.logged.count == 1)
    }

    @Test func largeFileBecomesARegionAndCompletesWhenSent() {
        let (file, _, path) = Self.tempFile(200_000)
        defer { unlink(path) }
        let h = Harness(Self.fileResponder(file, offset: 0, count: 200_000))
        h.conn.zeroCopyFiles = true
        // Two pipelined requests: the second must wait for the first file.
        let a = h.feed("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(a == .flush)
        let head = h.take()
        #expect(head == "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nServer: Berth\r\nDate: X\r\nContent-Length: 200000\r\n\r\n")
        #expect(h.conn.hasPendingFile)
        #expect(h.logged.isEmpty)
        #expect(h.conn.fileRegion?.remaining == 200_000)
        // Nothing else is produced while the region is pending.
        #expect(h.conn.resume() != .close)
        #expect(h.output.isEmpty)
        h.conn.fileRegionAdvanced(by: 150_000)
        #expect(h.conn.fileRegion?.offset == 150_000)
        #expect(h.logged.isEmpty)
        h.conn.fileRegionAdvanced(by: 50_000)
        #expect(!h.conn.hasPendingFile)
        #expect(h.logged.count == 1)
        #expect(h.serviceRequests >= 1)
        // The driver's service call continues with the pipelined request.
        _ = h.conn.resume()
        #expect(h.conn.hasPendingFile)
        #expect(h.take().hasPrefix("HTTP/1.1 200 OK\r\n"))
        h.conn.fileRegionAdvanced(by: 200_000)
        #expect(h.logged.map(\.path) == ["/a", "/b"])
    }

    @Test func withoutZeroCopyLargeFilesStreamThroughOutput() {
        let (file, bytes, path) = Self.tempFile(300_000)
        defer { unlink(path) }
        let h = Harness(Self.fileResponder(file, offset: 0, count: 300_000))
        h.conn.zeroCopyFiles = false  // TLS
        var got: [UInt8] = []
        var action = h.feed("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        var rounds = 0
        while rounds < 100 {
            rounds += 1
            got += h.takeBytes()
            if h.logged.count == 1 { break }
            h.conn.transportDrained()
            action = h.conn.resume()
        }
        _ = action
        #expect(!h.conn.hasPendingFile)
        let body = got.split(separator: 0x0A, maxSplits: 6).count > 0 ? got : []
        #expect(Array(body.suffix(300_000)) == bytes)
        #expect(rounds > 1)  // flow control stopped it at least once
    }

    @Test func headOfAFileHasLengthButNoBody() {
        let (file, _, path) = Self.tempFile(5000)
        defer { unlink(path) }
        let h = Harness(.custom { _, response in
            response.sendHead(contentLength: 5000)
            response.finish()
            _ = file
            return .done
        })
        h.feed("HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nContent-Length: 5000\r\n\r\n")
    }
}

/// Go leaves Content-Length off a HEAD response whose handler wrote nothing (Caddy's 404 and
/// error answers); a HEAD with a body keeps the GET's length.
@Suite struct HeadEmptyBodyTests {
    @Test func headOfAnEmptyResponseHasNoContentLength() {
        let h = Harness(.custom { _, response in
            response.status = 404
            response.sendEmpty()
            return .done
        })
        h.feed("HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take() == "HTTP/1.1 404 Not Found\r\nServer: Berth\r\nDate: X\r\n\r\n")
        h.feed("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take() == "HTTP/1.1 404 Not Found\r\nServer: Berth\r\nDate: X\r\nContent-Length: 0\r\n\r\n")
    }
}

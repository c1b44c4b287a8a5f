import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

/// `recycle()`: a connection object reused for another socket (the driver's per-loop pool)
/// starts exactly like a new one, and keeps no reference from its previous life.
@Suite struct RecycleTests {
    /// Leaves `h` closed after a dirty life: a served request, a rejection, variables, a
    /// decorator-free response with fields, a file region never sent.
    static func dirtyClose(_ h: Harness) {
        #expect(h.feed("GET /one HTTP/1.1\r\nHost: a\r\n\r\n") == .flush)
        _ = h.take()
        #expect(h.feed("GET /two HTTP/1.1\r\nHost: b\r\nX-Left: over\r\n\r\nGARBAGE\u{1} /\r\n\r\n") != .readMore)
        _ = h.take()
        h.conn.transportClosed()
    }

    @Test func recycledConnectionStartsClean() {
        let h = Harness(.echo)
        Self.dirtyClose(h)
        #expect(h.conn.lastError != nil)
        #expect(h.conn.requestsServed == 2)
        #expect(h.conn.isRecyclable)
        h.input.append(Array("stale".utf8))
        h.conn.recycle()
        #expect(h.conn.state == .head)
        #expect(h.conn.requestsServed == 0)
        #expect(h.conn.lastError == nil)
        #expect(!h.conn.peerEOF)
        #expect(!h.conn.hasPendingFile)
        #expect(h.input.isEmpty && h.output.isEmpty)
        #expect(h.conn.request.fields.count == 0)
        #expect(h.conn.request.connection.remote == nil)
        #expect(h.conn.response.errorRouter == nil)
        // A fresh connection waits for its first head (read-header timer, not idle).
        #expect(h.conn.timeout?.kind == .readHeader)
        // Only a new connection may start with the HTTP/2 preface: the recycled one can.
        #expect(h.feed("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == .switchToHTTP2)
    }

    @Test func recycledConnectionServesTheNextPeer() {
        let h = Harness(.echo)
        Self.dirtyClose(h)
        h.conn.recycle()
        h.conn.request.connection = ConnectionInfo(remote: SocketAddress(ip: "127.0.0.9", port: 4242))
        #expect(h.feed("HEAD /h HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n") == .flushAndClose)
        #expect(!h.take().contains("X-Left"))
        h.conn.transportClosed()
        h.conn.recycle()
        // The previous request was HEAD and asked to close: neither carries over.
        #expect(h.feed("GET /three HTTP/1.1\r\nHost: d\r\n\r\n") == .flush)
        let out = h.take()
        #expect(out.hasSuffix("GET /three host=d"))
        #expect(!out.contains("Connection: close"))
        #expect(h.conn.requestsServed == 1)
        #expect(!h.conn.peerFinishedSending)
    }

    @Test func aFileRegionIsReleasedOnRecycle() {
        let path: String
        weak let weakFile: SharedFile?
        let h: Harness
        do {
            let (file, _, p) = FileRegionTests.tempFile(100_000)
            path = p
            weakFile = file
            h = Harness(FileRegionTests.fileResponder(file, offset: 0, count: 100_000))
        }
        defer { unlink(path) }
        h.conn.zeroCopyFiles = true
        #expect(h.feed("GET /f HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.conn.hasPendingFile)
        h.responder.mode = .hello  // the handler's closure no longer holds the file
        h.conn.transportClosed()
        #expect(h.conn.isRecyclable)
        #expect(weakFile != nil)  // the pending region still does
        h.conn.recycle()
        #expect(!h.conn.hasPendingFile)
        #expect(weakFile == nil)
    }

    @Test func aPendingHandlerBlocksRecycling() {
        let h = Harness(.pending)
        #expect(h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .readMore)
        #expect(h.conn.isHandlerPending)
        h.conn.transportClosed()
        #expect(!h.conn.isRecyclable)
        h.responder.pendingResponses[0].send("late")
        #expect(h.conn.isRecyclable)
    }

    @Test func peerFinishedSendingOnlyAfterAWholeCloseRequest() {
        let h = Harness(.hello)
        #expect(h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(!h.conn.peerFinishedSending)
        _ = h.take()
        #expect(h.feed("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == .flushAndClose)
        #expect(h.conn.peerFinishedSending)
        // HTTP/1.0 without keep-alive closes too; a body left unread keeps the linger.
        let g = Harness(.hello)
        #expect(g.feed("GET / HTTP/1.0\r\n\r\n") == .flushAndClose)
        #expect(g.conn.peerFinishedSending)
        let b = Harness(.hello)
        #expect(b.feed("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\nabc") == .flushAndClose)
        #expect(!b.conn.peerFinishedSending)
        // A rejected (malformed) request never skips the linger.
        let r = Harness(.hello)
        #expect(r.feed("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nBad Header\r\n\r\n") == .flushAndClose)
        #expect(!r.conn.peerFinishedSending)
    }
}

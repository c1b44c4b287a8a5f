import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

@Suite("HTTP1Connection: response encoding")
struct ResponseTests {
    @Test func unknownLengthIsChunkedOnHTTP11() {
        let h = Harness(.stream)
        #expect(h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(
            h.take()
                == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n6\r\n world\r\n0\r\n\r\n")
        #expect(h.conn.state == .head)
    }

    @Test func unknownLengthIsCloseDelimitedOnHTTP10() {
        let h = Harness(.stream)
        #expect(h.feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == .flushAndClose)
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\n\r\nHello world")
    }

    @Test func headGetsGetHeadersWithoutBody() {
        let h = Harness()
        #expect(h.feed("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(
            h.take()
                == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nServer: Berth\r\nDate: X\r\nContent-Length: 12\r\n\r\n")
        #expect(h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == hello)
    }

    @Test func headOfStreamedResponseHasNoFraming() {
        let h = Harness(.stream)
        #expect(h.feed("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\n\r\n")
        #expect(h.conn.state == .head)
    }

    @Test(arguments: [204, 304, 101, 103])
    func noContentStatusesHaveNoLengthOrBody(status: Int) {
        let h = Harness(.custom({ _, res in
            res.status = status
            res.send("ignored")
            return .done
        }))
        let a = h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let reason = String(decoding: UnsafeRawBufferPointer(start: HTTPStatus.reason(status).utf8Start, count: HTTPStatus.reason(status).utf8CodeUnitCount), as: UTF8.self)
        if status < 200 {
            // A 1xx as a final answer cannot be followed by anything sensible: close.
            #expect(a == .flushAndClose)
            #expect(h.take() == "HTTP/1.1 \(status) \(reason)\r\nServer: Berth\r\nDate: X\r\nConnection: close\r\n\r\n")
        } else {
            #expect(a == .flush)
            #expect(h.take() == "HTTP/1.1 \(status) \(reason)\r\nServer: Berth\r\nDate: X\r\n\r\n")
        }
    }

    @Test func handlerFieldsKeepOrderAndOverrideAutomaticOnes() {
        let h = Harness(.custom({ _, res in
            res.status = 404
            res.fields.append(name: "X-B", value: "2")
            res.fields.append(.server, "Custom")
            res.fields.append(name: "x-a", value: "1")
            res.fields.append(.date, "Thu, 01 Jan 1970 00:00:00 GMT")
            res.fields.append(.contentLength, "999")  // framing is ours
            res.fields.append(.transferEncoding, "gzip")
            res.send("nope")
            return .done
        }))
        h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(
            String(decoding: h.takeBytes(), as: UTF8.self)
                == "HTTP/1.1 404 Not Found\r\nX-B: 2\r\nServer: Custom\r\nx-a: 1\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 4\r\n\r\nnope")
    }

    @Test func handlerConnectionCloseIsHonoured() {
        let h = Harness(.custom({ _, res in
            res.fields.append(.connection, "Close")
            res.sendEmpty()
            return .done
        }))
        #expect(h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flushAndClose)
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        let g = Harness(.custom({ _, res in
            res.closeConnection = true
            res.sendEmpty()
            return .done
        }))
        #expect(g.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flushAndClose)
    }

    @Test func responseSplittingIsImpossible() {
        let h = Harness(.custom({ _, res in
            res.fields.append(name: "X-Evil", value: "a\r\nSet-Cookie: x=y")
            res.fields.append(name: "Bad Name", value: "dropped")
            res.sendEmpty()
            return .done
        }))
        h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take() == "HTTP/1.1 200 OK\r\nX-Evil: a  Set-Cookie: x=y\r\nServer: Berth\r\nDate: X\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func serverNameIsConfigurable() {
        let h = Harness { $0.serverName = nil }
        h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take() == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nContent-Length: 12\r\n\r\nHello world\n")
        let c = Harness { $0.serverName = "Caddy" }
        c.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.take().contains("\r\nServer: Caddy\r\n"))
    }

    @Test func unknownStatusUsesGoText() {
        let h = Harness(.custom({ _, res in
            res.status = 599
            res.sendEmpty()
            return .done
        }))
        h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take().hasPrefix("HTTP/1.1 599 status code 599\r\n"))
    }

    @Test func declaredLengthIsEnforced() {
        let over = Harness(.custom({ _, res in
            res.sendHead(contentLength: 3)
            Array("abcdef".utf8).withUnsafeBytes { res.write($0) }
            res.finish()
            return .done
        }))
        #expect(over.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flushAndClose)
        #expect(over.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nContent-Length: 3\r\n\r\nabc")
        let under = Harness(.custom({ _, res in
            res.sendHead(contentLength: 10)
            Array("abc".utf8).withUnsafeBytes { res.write($0) }
            res.finish()
            return .done
        }))
        #expect(under.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flushAndClose)
    }

    @Test func emptyWritesDoNotEndAChunkedBody() {
        let h = Harness(.custom({ _, res in
            res.sendHead(contentLength: nil)
            [UInt8]().withUnsafeBytes { res.write($0) }
            Array("x".utf8).withUnsafeBytes { res.write($0) }
            res.finish()
            return .done
        }))
        h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
    }

    @Test func pendingResponseHoldsBackPipelinedRequests() {
        let h = Harness(.pending)
        let a = h.feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(a == .readMore)
        #expect(h.responder.calls == 1)
        #expect(h.conn.isHandlerPending)
        #expect(h.conn.timeout == nil)
        let first = h.responder.pendingResponses[0]
        first.sendHead(contentLength: nil)
        #expect(h.serviceRequests == 1)
        Array("part".utf8).withUnsafeBytes { first.write($0) }
        #expect(h.serviceRequests == 2)
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n")
        first.finish()
        #expect(h.serviceRequests == 3)
        #expect(h.logged.map(\.path) == ["/1"])
        #expect(h.take() == "0\r\n\r\n")
        #expect(h.responder.calls == 1)
        #expect(h.conn.resume() == .readMore)
        #expect(h.responder.calls == 2)
        h.responder.pendingResponses[1].send("two")
        #expect(h.conn.resume() == .flush)
        #expect(h.take() == echoResponse("two"))
    }

    @Test func pipelinedResponsesShareOneOutputBuffer() {
        let h = Harness()
        let one = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        #expect(h.feed(String(repeating: one, count: 10)) == .flush)
        #expect(h.take() == String(repeating: hello, count: 10))
    }

    @Test func pendingOutputStopsParsingUntilFlushed() {
        let h = Harness { $0.limits.maxPendingOutput = 300 }
        let one = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        #expect(h.feed(String(repeating: one, count: 10)) == .wait)
        let first = h.take()
        #expect(first.components(separatedBy: "HTTP/1.1 200").count - 1 == 3)
        var all = first
        var actions: [HTTP1Action] = []
        for _ in 0..<3 {
            actions.append(h.conn.resume())
            all += h.take()
        }
        #expect(actions == [.wait, .wait, .flush])
        #expect(all == String(repeating: hello, count: 10))
        #expect(h.responder.calls == 10)
    }
}

@Suite("ByteClass word-at-a-time helpers")
struct ByteClassHelperTests {
    @Test func replaceCRLFAtEveryPosition() {
        for n in 0...40 {
            var clean: [UInt8] = []
            for k in 0..<n {
                let letter = UInt8(0x61 + k % 26)
                clean.append(k % 3 == 0 ? 0x09 : letter)
            }
            for i in 0..<max(n, 1) {
                for bad: UInt8 in [0x0D, 0x0A, 0x00] where n > 0 {
                    var v = clean
                    v[i] = bad
                    v.withUnsafeMutableBufferPointer { ByteClass.replaceCRLF($0.baseAddress!, n) }
                    var want = clean
                    want[i] = bad == 0x00 ? 0x00 : 0x20
                    #expect(v == want)
                }
            }
        }
    }

    @Test func tcharTableMatchesTheMasks() {
        for b in 0...255 {
            var byte = UInt8(b)
            let table = withUnsafeBytes(of: &byte) { FieldBytes.allTchar($0.baseAddress!, 1) }
            #expect(table == ByteClass.isTchar(UInt8(b)), "byte \(b)")
        }
    }
}

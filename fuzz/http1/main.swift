// libFuzzer target for the HTTP/1 connection (RFC 9112 parser, body decoding, encoder).
//
// Build and run with fuzz/build-http1.sh and fuzz/run-http1.sh. The first input byte picks
// how the rest is split into reads, which responder behaviour answers, and whether small
// limits are used; the rest is the byte stream a client sends. Checked on every input:
// no crash / sanitizer report, and everything the connection ever writes starts with
// `HTTP/1.`, is written only while the connection is open, and `.readMore` means nothing is
// waiting in the output.

import HTTP1
import HTTPCore
import IOCore

#if canImport(Glibc)
import Glibc
#endif

/// Answers in one of several ways so every sink path is exercised.
final class FuzzResponder: HTTP1Responder, RequestBodyReader {
    var mode: UInt8 = 0
    var pending: HTTPResponse? = nil
    var reading: HTTPResponse? = nil
    var bodyBytes = 0
    var pausedSource: (any RequestBodySource)? = nil

    func respond(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        // Vary by request too, so pipelined requests take different paths.
        let m = (mode &+ UInt8(truncatingIfNeeded: request.line.count)) % 7
        switch m {
        case 0:
            response.fields.append(.contentType, "text/plain; charset=utf-8")
            response.send("Hello world\n")
            return .done
        case 1:
            response.sendHead(contentLength: nil)
            request.line.withUnsafeBytes { response.write($0) }
            response.finish()
            return .done
        case 2:
            if let body = request.bodySource {
                reading = response
                bodyBytes = 0
                pausedSource = body
                body.startReading(self)
                return .pending
            }
            response.status = 204
            response.sendEmpty()
            return .done
        case 3:
            // Half the time the head goes out first (the body is then discarded meanwhile).
            if request.line.count % 2 == 1 { response.sendHead(contentLength: nil) }
            pending = response
            return .pending
        case 4:
            return .next
        case 5:
            response.status = 304
            response.sendHead(contentLength: 10)
            response.finish()
            return .done
        default:
            response.fields.append(name: "X-Echo", value: "a\r\nb")
            response.closeConnection = request.line.count % 2 == 0
            response.sendHead(contentLength: 3)
            request.line.withUnsafeBytes { response.write(UnsafeRawBufferPointer(rebasing: $0.prefix(3))) }
            response.finish()
            return .done
        }
    }

    func requestBody(_ bytes: UnsafeRawBufferPointer) {
        bodyBytes += bytes.count
        if bytes.count % 3 == 0 { pausedSource?.pauseReading() }
        if bodyBytes > 100, let r = reading {
            reading = nil
            r.send("enough")
        }
    }

    func requestBodyFinished() {
        pausedSource = nil
        if let r = reading {
            reading = nil
            r.send("done")
        }
    }

    func requestBodyFailed(_ error: RequestBodyError) {
        pausedSource = nil
        if let r = reading {
            reading = nil
            if !r.finished && !r.headSent { r.status = 400; r.sendEmpty() }
        }
    }

    /// Finishes a parked response and resumes a paused body (called between reads, like an
    /// asynchronous handler would).
    func finishPending() {
        pausedSource?.resumeReading()
        if let r = pending {
            pending = nil
            if !r.headSent { r.sendHead(contentLength: nil) }
            if !r.finished {
                r.write(UnsafeRawBufferPointer(start: nil, count: 0))
                r.finish()
            }
        }
    }
}

final class FuzzDelegate: HTTP1ConnectionDelegate {
    var service = 0
    func http1ConnectionNeedsService(_ connection: HTTP1Connection) { service += 1 }
    func http1Connection(_ connection: HTTP1Connection, finished request: HTTPRequest, response: HTTPResponse, bytesRead: Int64) {}
}

nonisolated(unsafe) let dateCache = DateCache()

@inline(never)
func check(_ condition: Bool, _ message: StaticString) {
    if !condition {
        message.withUTF8Buffer { b in _ = write(2, b.baseAddress, b.count) }
        abort()
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let seed = data[0]
    let bytes = UnsafeBufferPointer(start: data + 1, count: size - 1)

    var cfg = HTTP1Configuration()
    if seed & 0x80 != 0 {
        cfg.limits.maxHeadBytes = 300
        cfg.limits.maxTargetLength = 40
        cfg.limits.maxFieldCount = 4
        cfg.limits.maxChunkLineBytes = 16
        cfg.limits.maxTrailerBytes = 40
        cfg.limits.maxTrailerFields = 2
        cfg.limits.maxDiscardBytes = 20
        cfg.limits.maxBufferedInput = 64
        cfg.limits.maxPendingOutput = 128
    }
    let input = ByteBuffer(capacity: 64)
    let output = ByteBuffer(capacity: 64)
    let responder = FuzzResponder()
    responder.mode = seed & 0x7
    let delegate = FuzzDelegate()
    let conn = HTTP1Connection(
        input: input, output: output, configuration: cfg, dateCache: dateCache,
        connectionInfo: ConnectionInfo(), responder: responder)
    conn.delegate = delegate

    // Split sizes: a small xorshift seeded by the first byte; maximum read size by bits 3–5.
    var rng = UInt32(seed) &* 2_654_435_761 | 1
    let maxRead = [1, 2, 3, 7, 16, 64, 512, 1 << 20][Int((seed >> 3) & 0x7)]
    var wroteAny = false
    var firstBytes: [UInt8] = []
    var closed = false

    func drain(_ action: HTTP1Action) {
        if output.readableBytes > 0 {
            check(!closed, "output after close\n")
            if !wroteAny {
                wroteAny = true
                firstBytes = Array(UnsafeRawBufferPointer(start: output.base + output.readerIndex, count: min(7, output.readableBytes)))
                check(firstBytes.count < 7 || firstBytes == Array("HTTP/1.".utf8), "output does not start with HTTP/1.\n")
            }
            check(action != .readMore, "readMore with pending output\n")
            output.clear()
        }
        if action == .close || action == .flushAndClose || action == .switchToHTTP2 { closed = true }
    }

    var offset = 0
    var action = conn.start()
    drain(action)
    while offset < bytes.count && !closed {
        rng ^= rng << 13
        rng ^= rng >> 17
        rng ^= rng << 5
        let n = min(bytes.count - offset, 1 + Int(rng % UInt32(maxRead)))
        input.append(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[offset..<offset + n])))
        offset += n
        action = conn.receive()
        drain(action)
        // An asynchronous handler finishes between reads; the driver then resumes.
        var rounds = 0
        while !closed && rounds < 8 && (action == .wait || responder.pending != nil || delegate.service > 0) {
            delegate.service = 0
            responder.finishPending()
            action = conn.resume()
            drain(action)
            rounds += 1
        }
        _ = conn.timeout
    }
    if !closed {
        if rng & 1 == 0 {
            action = conn.peerClosed()
        } else {
            action = conn.timedOut()
        }
        drain(action)
        responder.finishPending()
        action = conn.resume()
        drain(action)
    }
    // Late calls from a handler after close must be harmless.
    responder.finishPending()
    responder.pausedSource = nil  // the responder <-> connection cycle
    output.clear()
    return 0
}

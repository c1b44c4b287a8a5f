import HTTPCore
import IOCore

/// Response encoding: the connection is the `ResponseSink` of its `HTTPResponse`.
///
/// Calls for a response that is not the current one in `.handling` (after a rejection took
/// over, after close) are ignored, so a late asynchronous handler can never write into the
/// wrong exchange.
extension HTTP1Connection: ResponseSink {
    /// RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content (and we send no
    /// Content-Length for them).
    @inline(__always)
    static func bodyAllowed(_ status: Int) -> Bool {
        status >= 200 && status != 204 && status != 304
    }

    @inline(__always)
    func accepts(_ r: HTTPResponse) -> Bool {
        state == .handling && r === response
    }

    /// Head plus complete body, one contiguous append. Content-Length is always sent (also 0,
    /// also for HEAD, where it is the length a GET would get, RFC 9110 §8.6), except for
    /// 1xx/204/304 and for HEAD with an empty body (Go's behaviour).
    package func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
        guard accepts(response), responseMode == .notStarted else { return }
        let status = response.status
        let allowed = HTTP1Connection.bodyAllowed(status)
        prepareHead(response, status)
        let withBody = allowed && !isHEAD && !body.isEmpty
        // HEAD of an empty body: no Content-Length, as Go (which only learns a HEAD body's
        // length from what the handler writes) — Caddy's 404/405/error answers to HEAD.
        let framing: HeadFraming = allowed && !(isHEAD && body.isEmpty) ? .contentLength(Int64(body.count)) : .none
        writeHead(response, status, framing: framing, extra: withBody ? body.count : 0)
        if withBody { output.append(body) }
        responseMode = .finished
        completeResponse()
    }

    /// Head of a streamed body: Content-Length when known, else chunked on HTTP/1.1
    /// (RFC 9112 §7.1) or close-delimited on HTTP/1.0 (RFC 9112 §6.3 rule 8). HEAD, 1xx, 204
    /// and 304 get no body (HEAD keeps a known Content-Length, and sends no framing otherwise,
    /// like Go).
    package func sendHead(_ response: HTTPResponse, contentLength: Int64?) {
        guard accepts(response), responseMode == .notStarted else { return }
        let status = response.status
        prepareHead(response, status)
        let framing: HeadFraming
        if !HTTP1Connection.bodyAllowed(status) {
            framing = .none
            responseMode = .noBody
        } else if isHEAD {
            framing = contentLength.map { .contentLength(max(0, $0)) } ?? .none
            responseMode = .noBody
        } else if let cl = contentLength {
            framing = .contentLength(max(0, cl))
            responseMode = .fixed(max(0, cl))
        } else if request.version == .http1_1 {
            framing = .chunked
            responseMode = .chunked
        } else {
            framing = .none
            responseMode = .closeDelimited
            keepAlive = false
        }
        writeHead(response, status, framing: framing, extra: 0)
        notifyIfOutside()
    }

    /// Part of a streamed body. Bytes beyond a declared Content-Length are dropped and the
    /// connection closes after the response (Go reports ErrContentLength).
    package func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) {
        guard accepts(response) else { return }
        switch responseMode {
        case .fixed(let remaining):
            let n = Int(min(Int64(bytes.count), remaining))
            if n > 0 { output.append(UnsafeRawBufferPointer(rebasing: bytes[0..<n])) }
            if n < bytes.count { keepAlive = false }
            responseMode = .fixed(remaining - Int64(n))
        case .chunked:
            HTTP1Encoder.writeChunk(into: output, bytes)
        case .closeDelimited:
            output.append(bytes)
        case .noBody, .notStarted, .finished:
            return
        }
        notifyIfOutside()
    }

    /// Ends a streamed body: the last chunk, or — if fewer bytes than the declared
    /// Content-Length were written — close, since the message is incomplete (RFC 9112 §6.3:
    /// the client will see the connection close before the end of the body).
    package func finish(_ response: HTTPResponse) {
        guard accepts(response) else { return }
        switch responseMode {
        case .chunked:
            HTTP1Encoder.writeLastChunk(into: output, trailers: response.trailers)
        case .fixed(let remaining):
            if remaining > 0 { keepAlive = false }
        case .notStarted, .finished:
            return
        case .noBody, .closeDelimited:
            break
        }
        responseMode = .finished
        completeResponse()
    }

    /// Decisions that must be made before the head is written, because they change its
    /// Connection field.
    @inline(__always)
    func prepareHead(_ response: HTTPResponse, _ status: Int) {
        // A 1xx as a final answer leaves the client waiting for a final response: close.
        if status < 200 || response.closeConnection { keepAlive = false }
        abandonUnclaimedBody()
    }

    @inline(__always)
    func writeHead(_ response: HTTPResponse, _ status: Int, framing: HeadFraming, extra: Int) {
        let scan = HTTP1Encoder.scan(response.fields)
        if scan.wantsClose { keepAlive = false }
        let date = dateCache.current()
        let connection = connectionField
        if let serverName {
            serverName.withUnsafeBytes { server in
                HTTP1Encoder.writeHead(
                    into: output, status: status, fields: response.fields, scan: scan, server: server, date: date,
                    framing: framing, connection: connection, extra: extra)
            }
        } else {
            HTTP1Encoder.writeHead(
                into: output, status: status, fields: response.fields, scan: scan, server: nil, date: date,
                framing: framing, connection: connection, extra: extra)
        }
    }
}

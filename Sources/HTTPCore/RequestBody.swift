/// Why a request body stopped before its end.
@usableFromInline
package enum RequestBodyError: Error, Sendable, Equatable {
    /// The body's framing was invalid (bad chunk size, missing CRLF, oversized trailers).
    case invalidFraming
    /// The peer closed the connection before the body ended.
    case connectionClosed
    /// No body bytes arrived within the body read timeout.
    case timedOut
    /// The response finished (or its head was sent without reading) before the body was read:
    /// the protocol took the body back to discard it.
    case abandoned
}

/// Receives a request body pushed by the protocol connection. All calls happen on the
/// connection's event loop; `bytes` are only valid during the call.
@usableFromInline
package protocol RequestBodyReader: AnyObject {
    /// Some body bytes (decoded: chunk framing already removed).
    func requestBody(_ bytes: UnsafeRawBufferPointer)
    /// The body ended normally; trailers (if any) are in `RequestBodySource.trailers`.
    func requestBodyFinished()
    /// The body ended abnormally; no more calls follow.
    func requestBodyFailed(_ error: RequestBodyError)
}

/// The request body of one request, as a handler sees it (HTTP/1 connection, h2/h3 stream).
///
/// Push with back-pressure: `startReading` once, then `pauseReading` / `resumeReading` as the
/// consumer's own output fills and drains. A handler that never calls `startReading` leaves the
/// body to the protocol, which discards it (HTTP/1: up to a limit, else closes the connection).
package protocol RequestBodySource: AnyObject {
    /// Starts delivering the body to `reader`. On HTTP/1.1 this is what sends
    /// `100 Continue` when the client asked for it (RFC 9110 §10.1.1). Bytes are delivered
    /// from the connection's own processing, never from inside this call.
    func startReading(_ reader: any RequestBodyReader)
    /// Stops delivery until `resumeReading`; the protocol stops reading from the peer.
    func pauseReading()
    /// Resumes delivery after `pauseReading`.
    func resumeReading()
    /// Trailer fields that followed the body (HTTP/1 chunked trailers); empty until
    /// `requestBodyFinished`.
    var trailers: HTTPFields { get }
}

import HTTPCore
import IOCore

/// Request bodies: DATA delivered to the handler's reader through the stream's
/// `RequestBodyPipe` (`HTTPCore/RequestBodyPipe.swift`), with the stream and connection
/// receive windows (RFC 9000 §4.1) credited back only as the reader takes the bytes, so a
/// paused or not-yet-reading handler makes the client stop at its window. A client that asked
/// with `expect: 100-continue` gets an interim `100` when the handler starts reading, as on
/// HTTP/2 (a handler that never reads answers without one).
extension HTTP3Stream: RequestBodySource, RequestBodyPipeHost {
    @inline(__always)
    func countBodyBytes(_ n: Int) { request.bodyBytesRead += Int64(n) }

    var isHandling: Bool { phase == .handling }
    var isResponded: Bool { phase == .responded }

    /// Credits `n` bytes back to the stream and connection windows.
    @inline(__always)
    func returnBodyCredit(_ n: Int) { connection.consume(id, n) }

    @inline(__always)
    func enqueueService() { connection.enqueueService(self) }

    /// Body activity restarts the read-body timeout.
    @inline(__always)
    func noteBodyActivity() { connection.lastBodyActivity = Clock.monotonicNanos() }

    /// Sends `100 Continue` first when the client asked for it and no final head went out
    /// (RFC 9110 §10.1.1, RFC 9114 §4.1).
    func willStartReading() {
        if head.expectContinue && mode == .notStarted && !closed {
            head.expectContinue = false
            submitContinue()
        }
    }
}

/// Flow control for streaming handlers (`HTTPCore/ResponseFlow.swift`), per stream, with the
/// bookkeeping shared with HTTP/2 (`HTTPCore/StreamResponseFlow.swift`): writable while the
/// body chain (unsent plus unacknowledged bytes) is under `QUICLimits.streamWriteHighWater`;
/// `responseWritable()` once ACKs brought it below again.
extension HTTP3Stream: ResponseFlowControl, StreamResponseFlowHost {
    var isStreamingResponse: Bool { mode == .streaming }
    var isResponseHeadSent: Bool { mode == .streaming || mode == .noBody }
    var bufferedResponseBytes: Int { body.count }
    var responseHighWater: Int { connection.endpoint.configuration.limits.streamWriteHighWater }

    func isCurrentResponse(_ r: AnyObject) -> Bool { r === response }

    /// H3_INTERNAL_ERROR, so the client sees the message as incomplete (RFC 9114 §4.1.2).
    func resetAbortedResponse() { connection.resetStream(self, 0x0102) }

    func noteOutsideChange() { connection.noteOutsideChange() }
}

import HTTPCore
import IOCore

/// Request bodies: DATA delivered to the handler's reader through the stream's
/// `RequestBodyPipe` (`HTTPCore/RequestBodyPipe.swift`), with the stream and connection
/// receive windows (RFC 9000 §4.1) credited back only as the reader takes the bytes, so a
/// paused or not-yet-reading handler makes the client stop at its window. HTTP/3 has no
/// `100 Continue` handshake to do: the client sends the body at once, bounded by our windows.
extension HTTP3Stream: RequestBodyPipeHost {
    var isHandling: Bool { phase == .handling }
    var isResponded: Bool { phase == .responded }

    /// Credits `n` bytes back to the stream and connection windows.
    @inline(__always)
    func returnBodyCredit(_ n: Int) { connection.consume(id, n) }

    @inline(__always)
    func enqueueBodyService() { connection.enqueueService(self) }

    /// Body activity restarts the read-body timeout.
    @inline(__always)
    func noteBodyActivity() { connection.lastBodyActivity = Clock.monotonicNanos() }

    func noteBodyOutsideChange() { connection.noteOutsideChange() }

    func willStartReading() {}
}

/// Flow control for streaming handlers (`HTTPCore/ResponseFlow.swift`), per stream: writable
/// while the body chain (unsent plus unacknowledged bytes) is under
/// `QUICLimits.streamWriteHighWater`; `responseWritable()` once ACKs brought it below again.
extension HTTP3Stream: ResponseFlowControl {
    package var isResponseWritable: Bool {
        guard phase == .handling, mode == .streaming, canWrite else { return true }
        if body.count < connection.endpoint.configuration.limits.streamWriteHighWater { return true }
        flowBlocked = true
        return false
    }

    package func setFlowObserver(_ observer: (any ResponseFlowObserver)?, for response: HTTPResponse) {
        guard response === self.response else { return }
        flowObserver = observer
        if observer == nil { flowBlocked = false }
    }

    /// The head went out but the body cannot be completed: the stream is reset with
    /// H3_INTERNAL_ERROR so the client sees the message as incomplete (RFC 9114 §4.1.2).
    package func abortStreamedResponse(_ response: HTTPResponse) {
        guard owns(response), mode == .streaming || mode == .noBody else { return }
        bodyAborted = true
        flowBlocked = false
        if canWrite { connection.resetStream(self, 0x0102) }
        connection.noteOutsideChange()
    }

    /// HTTP/3 has no `101 Switching Protocols` (RFC 9114 §4.5): never handed over.
    package func switchProtocols(_ response: HTTPResponse, to receiver: any UpgradeReceiver) -> Bool { false }

    func serviceFlow() {
        if abortNoticeDue {
            abortNoticeDue = false
            flowBlocked = false
            if phase == .handling { flowObserver?.responseAborted() }
            return
        }
        guard flowBlocked else { return }
        if phase != .handling || mode != .streaming {
            flowBlocked = false
            return
        }
        if body.count < connection.endpoint.configuration.limits.streamWriteHighWater {
            flowBlocked = false
            flowObserver?.responseWritable()
        }
    }
}

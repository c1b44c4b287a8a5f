import HTTPCore
import IOCore

/// Flow control for streaming handlers (`HTTPCore/ResponseFlow.swift`), per stream.
///
/// The stream buffers unsent body in `bodyOut` only up to about the peer's flow-control window
/// for it (RFC 9113 §5.2): `isResponseWritable` turns false once `bodyOut` holds more than
/// `writeHighWater` — the smaller of the stream and connection send windows, clamped to
/// `HTTP2Limits.minStreamWriteBuffer…maxStreamWriteBuffer`. When DATA frames have drained it
/// below that again (the client sent WINDOW_UPDATE and the bytes went out), the observer gets
/// `responseWritable()` once; when the client resets the stream or the connection ends under
/// the handler, it gets `responseAborted()`. Both are delivered from the connection's own
/// processing, never from inside a call the handler made.
extension HTTP2Stream: ResponseFlowControl {
    package var isResponseWritable: Bool {
        guard phase == .handling, mode == .streaming, canWrite else { return true }
        if bodyOut.readableBytes < connection.writeHighWater(self) { return true }
        flowBlocked = true
        return false
    }

    package func setFlowObserver(_ observer: (any ResponseFlowObserver)?, for response: HTTPResponse) {
        guard response === self.response else { return }
        flowObserver = observer
        if observer == nil { flowBlocked = false }
    }

    /// The head went out but the body cannot be completed (the upstream died mid-body):
    /// RST_STREAM INTERNAL_ERROR, so the client sees the message as incomplete (RFC 9113
    /// §8.1: a stream that ends without END_STREAM). The handler still calls `finish()`.
    package func abortStreamedResponse(_ response: HTTPResponse) {
        guard owns(response), mode == .streaming || mode == .noBody else { return }
        bodyAborted = true
        flowBlocked = false
        if canWrite { connection.resetStream(self, .internalError) }
        connection.noteOutsideChange()
    }

    /// HTTP/2 has no `101 Switching Protocols` (RFC 9113 §8.6): never handed over.
    package func switchProtocols(_ response: HTTPResponse, to receiver: any UpgradeReceiver) -> Bool { false }

    /// Delivers what is owed to the observer (from `serviceStreams`).
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
        if bodyOut.readableBytes < connection.writeHighWater(self) {
            flowBlocked = false
            flowObserver?.responseWritable()
        }
    }
}

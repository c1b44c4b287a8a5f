import HTTPCore
import IOCore

/// Flow control for streaming handlers (`HTTPCore/ResponseFlow.swift`), per stream; the
/// bookkeeping is shared with HTTP/3 (`HTTPCore/StreamResponseFlow.swift`).
///
/// The stream buffers unsent body in `bodyOut` only up to about the peer's flow-control window
/// for it (RFC 9113 §5.2): `isResponseWritable` turns false once `bodyOut` holds more than
/// `writeHighWater` — the smaller of the stream and connection send windows, clamped to
/// `HTTP2Limits.minStreamWriteBuffer…maxStreamWriteBuffer`. When DATA frames have drained it
/// below that again (the client sent WINDOW_UPDATE and the bytes went out), the observer gets
/// `responseWritable()` once; when the client resets the stream or the connection ends under
/// the handler, it gets `responseAborted()`. Both are delivered from the connection's own
/// processing (`serviceStreams`), never from inside a call the handler made.
extension HTTP2Stream: ResponseFlowControl, StreamResponseFlowHost {
    var isStreamingResponse: Bool { mode == .streaming }
    var isResponseHeadSent: Bool { mode == .streaming || mode == .noBody }
    var bufferedResponseBytes: Int { bodyOut.readableBytes }
    var responseHighWater: Int { connection.writeHighWater(self) }

    func isCurrentResponse(_ r: AnyObject) -> Bool { r === response }

    /// RST_STREAM INTERNAL_ERROR, so the client sees the message as incomplete (RFC 9113
    /// §8.1: a stream that ends without END_STREAM).
    func resetAbortedResponse() { connection.resetStream(self, .internalError) }

    func noteOutsideChange() { connection.noteOutsideChange() }
}

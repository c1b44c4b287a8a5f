import HTTPCore
import IOCore

/// Request bodies: DATA frames delivered to the handler's reader through the stream's
/// `RequestBodyPipe` (`HTTPCore/RequestBodyPipe.swift`), with the stream's receive window
/// returned to the client only as the reader takes the bytes (RFC 9113 §5.2.2: flow control
/// is how a receiver limits what it buffers). nghttp2 runs with `no_auto_window_update`, so a
/// paused or not-yet-reading handler makes the client stop at its window — nothing is
/// buffered beyond it.
extension HTTP2Stream: RequestBodySource, RequestBodyPipeHost {
    @inline(__always)
    func countBodyBytes(_ n: Int) { request.bodyBytesRead += Int64(n) }

    var isHandling: Bool { phase == .handling }
    var isResponded: Bool { phase == .responded }

    /// Acknowledges `n` DATA bytes to nghttp2 (stream and connection windows).
    @inline(__always)
    func returnBodyCredit(_ n: Int) { connection.consume(self, n) }

    @inline(__always)
    func enqueueService() { connection.enqueueService(self) }

    /// Body activity moves the epoch the read-body timer watches.
    @inline(__always)
    func noteBodyActivity() { connection.epoch &+= 1 }

    /// Sends `100 Continue` first when the client asked for it (RFC 9110 §10.1.1, RFC 9113
    /// §8.1).
    func willStartReading() {
        if head.expectContinue && mode == .notStarted && canWrite {
            head.expectContinue = false
            connection.submitContinue(self)
        }
    }
}

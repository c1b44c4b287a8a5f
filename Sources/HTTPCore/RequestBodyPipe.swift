import IOCore

/// Who consumes a multiplexed stream's request body (the HTTP/1 states, per stream).
@usableFromInline
package enum RequestBodyConsumer {
    /// No handler has asked for the body yet: it is buffered (the receive window bounds it).
    case unclaimed
    case reading(any RequestBodyReader, paused: Bool)
    /// The reader got its end or its failure.
    case readerDone
    /// Nobody will read it: received bytes go straight back to the window and are dropped.
    case discarding
}

/// The request-body state of one HTTP/2 or HTTP/3 stream: bytes received but not yet
/// delivered, who reads them, whether the peer ended the body, and its trailers. Stored inline
/// in the (pooled) stream object and reset with it, so a request allocates nothing here.
///
/// The logic that moves bytes through it lives in the `RequestBodyPipeHost` extension, generic
/// over the stream type: each protocol says how bytes go back to its flow-control window
/// (RFC 9113 §5.2.2, RFC 9000 §4.1) and how a pump is scheduled, and the calls are
/// specialized for each stream type (no existential or closure per chunk).
public struct RequestBodyPipe {
    /// Received but not yet delivered nor returned to the window: the peer's window for the
    /// stream bounds it, because nothing is credited back until delivered or discarded.
    @usableFromInline package let buffer: ByteBuffer
    @usableFromInline package var consumer: RequestBodyConsumer = .unclaimed
    /// The peer ended the body (END_STREAM on HTTP/2, FIN on HTTP/3).
    @usableFromInline package var remoteEnded = false
    /// The trailer section passed the field-section size or field-count limit: the body fails
    /// (as an oversized HTTP/1 trailer section does) instead of losing fields.
    @usableFromInline package var trailersTooLarge = false
    /// The stream is queued for `pumpBody()` from the connection's own processing.
    @usableFromInline package var needsPump = false
    /// Trailer fields after the body; allocates nothing until a request has some.
    @usableFromInline package var trailers = HTTPFields.unreserved()

    package init() {
        buffer = ByteBuffer(capacity: 256)
    }

    /// Forgets the body, keeping storage (a buffer that grew past 64 KiB is shrunk back).
    package mutating func reset() {
        buffer.clear()
        buffer.shrinkIfEmpty(to: 16384)
        remoteEnded = false
        consumer = .unclaimed
        if trailers.count > 0 { trailers.removeAll() }
        trailersTooLarge = false
        needsPump = false
    }
}

/// A stream that owns a `RequestBodyPipe`: the protocol-specific parts of moving its body.
/// Everything here is called on the connection's event loop. The stream also declares
/// `RequestBodySource`, whose requirements the extension below fulfils.
///
/// `public` (with package-only members elsewhere) on purpose: Swift 6.3 does not specialize a
/// package protocol's `@inlinable` extension methods in another module, so a package protocol
/// here would leave every call generic (witness-table dispatch, struct copies per access).
public protocol RequestBodyPipeHost: AnyObject {
    var bodyPipe: RequestBodyPipe { get set }
    /// `n` body bytes were handed to the reader (`HTTPRequest.bodyBytesRead`, for the log).
    func countBodyBytes(_ n: Int)
    /// The handler holds the request and its response is not finished.
    var isHandling: Bool { get }
    /// The response is finished: nobody will read a body that was never claimed.
    var isResponded: Bool { get }
    /// The protocol closed the stream.
    var closed: Bool { get }
    /// `n` body bytes were delivered or dropped: give them back to the peer's window.
    func returnBodyCredit(_ n: Int)
    /// Queue the stream for the connection's service pass (which runs `pumpBody()` when
    /// `bodyPipe.needsPump`).
    func enqueueService()
    /// Body activity for the read-body timeout.
    func noteBodyActivity()
    /// A handler changed something from outside the connection's processing.
    func noteOutsideChange()
    /// `startReading` accepted a reader (HTTP/2 sends `100 Continue` here).
    func willStartReading()
}

extension RequestBodyPipeHost {
    /// Starts pushing the body to `reader`; fails at once with `.abandoned` when the body was
    /// already given up.
    @inlinable
    package func startReading(_ reader: any RequestBodyReader) {
        guard isHandling, case .unclaimed = bodyPipe.consumer else {
            reader.requestBodyFailed(.abandoned)
            return
        }
        willStartReading()
        bodyPipe.consumer = .reading(reader, paused: false)
        noteBodyActivity()
        bodyPipe.needsPump = true
        enqueueService()
        noteOutsideChange()
    }

    /// Stops delivery; the peer stops once the stream window is used up.
    @inlinable
    package func pauseReading() {
        if case .reading(let r, false) = bodyPipe.consumer { bodyPipe.consumer = .reading(r, paused: true) }
    }

    @inlinable
    package func resumeReading() {
        if case .reading(let r, true) = bodyPipe.consumer {
            bodyPipe.consumer = .reading(r, paused: false)
            noteBodyActivity()
            bodyPipe.needsPump = true
            enqueueService()
            noteOutsideChange()
        }
    }

    /// The request's trailer fields, complete once the reader got `requestBodyFinished`.
    @inlinable
    package var trailers: HTTPFields { bodyPipe.trailers }

    /// True while the handler reads, unpaused, and the body has not ended: the read-body
    /// timer runs.
    @inlinable
    package var awaitsBody: Bool {
        guard isHandling, !bodyPipe.remoteEnded, !closed, case .reading(_, false) = bodyPipe.consumer else {
            return false
        }
        return true
    }

    /// Body bytes from the protocol: delivered at once to a reading, unpaused handler with
    /// nothing buffered before it; buffered otherwise (the window bounds it); credited back
    /// at once when nobody will read them.
    @inlinable
    package func receiveData(_ bytes: UnsafeRawBufferPointer) {
        noteBodyActivity()
        switch bodyPipe.consumer {
        case .discarding, .readerDone:
            returnBodyCredit(bytes.count)
        case .reading(let reader, let paused):
            if !paused && bodyPipe.buffer.isEmpty && isHandling {
                countBodyBytes(bytes.count)
                reader.requestBody(bytes)
                returnBodyCredit(bytes.count)
            } else {
                bodyPipe.buffer.append(bytes)
            }
        case .unclaimed:
            if isResponded || closed {
                returnBodyCredit(bytes.count)
            } else {
                bodyPipe.buffer.append(bytes)
            }
        }
    }

    /// The peer ended the body.
    @inlinable
    package func receiveEnd() {
        bodyPipe.remoteEnded = true
        if case .reading = bodyPipe.consumer {
            bodyPipe.needsPump = true
            enqueueService()
        }
    }

    /// Delivers buffered body and the end (or failure) to the reader. Runs from the
    /// connection's own processing, never from inside a handler's call.
    @inlinable
    package func pumpBody() {
        bodyPipe.needsPump = false
        while case .reading(let reader, let paused) = bodyPipe.consumer, !paused {
            let buffer = bodyPipe.buffer
            let n = buffer.readableBytes
            if n > 0 {
                // Consume first, then deliver: the bytes stay valid (nothing appends to the
                // buffer during the call) and a reader that re-enters sees a consistent buffer.
                let bytes = UnsafeRawBufferPointer(start: buffer.base + buffer.readerIndex, count: n)
                buffer.consume(n)
                countBodyBytes(n)
                reader.requestBody(bytes)
                returnBodyCredit(n)
                continue
            }
            if bodyPipe.remoteEnded {
                bodyPipe.consumer = .readerDone
                if bodyPipe.trailersTooLarge {
                    reader.requestBodyFailed(.invalidFraming)
                } else {
                    reader.requestBodyFinished()
                }
            } else if closed {
                bodyPipe.consumer = .readerDone
                reader.requestBodyFailed(.connectionClosed)
            }
            return
        }
    }

    /// The body will not be read: credit what is buffered and drop the rest as it arrives.
    @inlinable
    package func discardBody() {
        bodyPipe.consumer = .discarding
        let buffer = bodyPipe.buffer
        let n = buffer.readableBytes
        buffer.clear()
        if n > 0 { returnBodyCredit(n) }
    }

    /// The stream or the connection ended, or the response finished, while a reader still
    /// expected bytes.
    @inlinable
    package func failReader(_ error: RequestBodyError) {
        guard case .reading(let reader, _) = bodyPipe.consumer else { return }
        bodyPipe.consumer = .readerDone
        reader.requestBodyFailed(error)
    }

    /// The handler finished its response: an unread body is given up (the reader gets
    /// `.abandoned`, like HTTP/1) and what is buffered or still arrives is credited back.
    @inlinable
    package func abandonBody() {
        failReader(.abandoned)
        switch bodyPipe.consumer {
        case .discarding:
            break
        case .unclaimed, .reading, .readerDone:
            if !bodyPipe.remoteEnded || !bodyPipe.buffer.isEmpty { discardBody() }
        }
    }

    /// The protocol closed the stream under a handler: a reader still gets a body that
    /// arrived whole; otherwise it fails, and unread bytes go back to the connection window
    /// (the protocol libraries do not credit a closed stream's unconsumed bytes).
    @inlinable
    package func bodyStreamClosed() {
        if bodyPipe.remoteEnded, case .reading = bodyPipe.consumer {
            bodyPipe.needsPump = true
            enqueueService()
        } else {
            failReader(.connectionClosed)
            discardBody()
        }
    }

    /// The stream is being recycled: bytes still buffered go back to the connection window.
    @inlinable
    package func returnBufferedBodyCredit() {
        let n = bodyPipe.buffer.readableBytes
        if n > 0 { returnBodyCredit(n) }
    }
}

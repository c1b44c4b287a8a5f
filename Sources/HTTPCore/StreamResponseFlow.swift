/// The `ResponseFlowControl` bookkeeping of one HTTP/2 or HTTP/3 stream: the streaming
/// handler watching it and what that observer is owed. Stored inline in the (pooled) stream
/// object and reset with it.
public struct StreamResponseFlow {
    /// The streaming handler watching this stream.
    @usableFromInline package weak var observer: (any ResponseFlowObserver)? = nil
    /// `isResponseWritable` returned false: `responseWritable()` is owed.
    @usableFromInline package var blocked = false
    /// `responseAborted()` is owed (the peer reset the stream, or the connection ended, under
    /// a handler).
    @usableFromInline package var abortNoticeDue = false
    /// `abortStreamedResponse` ended the body: it must not end normally.
    @usableFromInline package var bodyAborted = false

    package init() {}

    package mutating func reset() {
        observer = nil
        blocked = false
        abortNoticeDue = false
        bodyAborted = false
    }
}

/// A multiplexed stream whose response body is bounded by a high-water mark of unsent (or,
/// on QUIC, unacknowledged) bytes. The protocol-specific parts; the rest of
/// `ResponseFlowControl` is shared below, specialized for each stream type.
///
/// Observer callbacks are delivered from `serviceFlow()`, which the connection runs from its
/// own processing (its service queue, or teardown), never from inside a handler's call. The
/// stream also declares `ResponseFlowControl`, whose requirements the extension fulfils.
/// `public` for the reason given at `RequestBodyPipeHost`.
public protocol StreamResponseFlowHost: AnyObject {
    var responseFlow: StreamResponseFlow { get set }
    /// The handler holds the request and its response is not finished.
    var isHandling: Bool { get }
    /// The head went out and body bytes may follow.
    var isStreamingResponse: Bool { get }
    /// The head went out (with or without a body to follow) and the handler has not finished.
    var isResponseHeadSent: Bool { get }
    /// Frames can still be submitted for this stream.
    var canWrite: Bool { get }
    /// Body bytes buffered by the stream.
    var bufferedResponseBytes: Int { get }
    /// Above this many buffered bytes the response is not writable.
    var responseHighWater: Int { get }
    /// `r` is this stream's response object.
    func isCurrentResponse(_ r: AnyObject) -> Bool
    /// Reset the stream so the client sees the message as incomplete.
    func resetAbortedResponse()
    /// Queue the stream for the connection's service pass.
    func enqueueService()
    /// A handler changed something from outside the connection's processing.
    func noteOutsideChange()
}

extension StreamResponseFlowHost {
    @inlinable
    package var isResponseWritable: Bool {
        guard isHandling, isStreamingResponse, canWrite else { return true }
        if bufferedResponseBytes < responseHighWater { return true }
        responseFlow.blocked = true
        return false
    }

    @inlinable
    package func setFlowObserver(_ observer: (any ResponseFlowObserver)?, for response: HTTPResponse) {
        guard isCurrentResponse(response) else { return }
        responseFlow.observer = observer
        if observer == nil { responseFlow.blocked = false }
    }

    /// The head went out but the body cannot be completed (the upstream died mid-body): the
    /// stream is reset so the client sees the message as incomplete. The handler still calls
    /// `finish()`.
    @inlinable
    package func abortStreamedResponse(_ response: HTTPResponse) {
        guard isHandling, isCurrentResponse(response), isResponseHeadSent else { return }
        responseFlow.bodyAborted = true
        responseFlow.blocked = false
        if canWrite { resetAbortedResponse() }
        noteOutsideChange()
    }

    /// HTTP/2 and HTTP/3 have no `101 Switching Protocols` (RFC 9113 §8.6, RFC 9114 §4.5):
    /// never handed over.
    @inlinable
    package func switchProtocols(_ response: HTTPResponse, to receiver: any UpgradeReceiver) -> Bool { false }

    /// Buffered body went out (or was acknowledged): a blocked observer may be owed
    /// `responseWritable()`.
    @inlinable
    package func responseBytesDrained() {
        if responseFlow.blocked { enqueueService() }
    }

    /// The stream closed under a handler: a watching observer is owed `responseAborted()`.
    @inlinable
    package func noteResponseClosed() {
        if isHandling && responseFlow.observer != nil {
            responseFlow.abortNoticeDue = true
            enqueueService()
        }
    }

    /// Delivers what is owed to the observer.
    @inlinable
    package func serviceFlow() {
        if responseFlow.abortNoticeDue {
            responseFlow.abortNoticeDue = false
            responseFlow.blocked = false
            if isHandling { responseFlow.observer?.responseAborted() }
            return
        }
        guard responseFlow.blocked else { return }
        if !isHandling || !isStreamingResponse {
            responseFlow.blocked = false
            return
        }
        if bufferedResponseBytes < responseHighWater {
            responseFlow.blocked = false
            responseFlow.observer?.responseWritable()
        }
    }
}

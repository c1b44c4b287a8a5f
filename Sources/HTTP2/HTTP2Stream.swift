internal import CNGHTTP2
import HTTPCore
import IOCore

/// One client-initiated stream (RFC 9113 §5.1) mapped onto HTTPCore: its request (filled from
/// the decoded header block exactly like HTTP/1 fills it), its response (whose sink is this
/// stream), and its body buffers. Stream objects are pooled by the connection and reused with
/// all their storage, so steady-state requests allocate nothing on the Swift side.
///
/// Lifecycle (`phase`):
///
///     idle ─begin_headers─► headers ─END_HEADERS─► queued ─handler slot─► handling
///       ▲                     │ too large: 431        │ reset                │ response finished
///       │                     ▼                       ▼                      ▼
///       └── release ◄── (nghttp2 closed the stream and no handler holds it) ◄── responded
///
/// A stream the peer resets while its handler still holds the response stays out of the pool
/// (the response refers to it, unowned) until the handler finishes; its calls are ignored.
final class HTTP2Stream {
    enum Phase: Equatable {
        /// In the pool.
        case idle
        /// Receiving the request header block.
        case headers
        /// The head is complete; waiting for a handler slot (`HTTP2Settings.maxConcurrentStreams`).
        case queued
        /// The responder has the request; the response is not finished.
        case handling
        /// The response is finished (or we answered without a handler).
        case responded
    }

    /// How the response goes out.
    enum ResponseMode: Equatable {
        case notStarted
        /// HEADERS with END_STREAM (HEAD, 1xx, 204, 304, empty body).
        case noBody
        /// HEADERS, then DATA from `bodyOut` through the data provider.
        case streaming
        /// The handler is done with the response.
        case finished
    }

    unowned(unsafe) let connection: HTTP2Connection
    let request = HTTPRequest()
    private(set) var response: HTTPResponse!
    /// The nghttp2 stream id.
    var id: Int32 = 0
    var phase: Phase = .idle
    /// Index in the connection's `live` list, -1 when pooled.
    var liveIndex = -1

    /// Request head: the decoded header section into `request` (`HTTPCore/RequestHeadBuilder`),
    /// its size against SETTINGS_MAX_HEADER_LIST_SIZE and the decoded-size cap, `100-continue`.
    var head = RequestHeadBuilder()

    // Request body (`HTTP2Stream+Body.swift`): DATA not yet delivered (nothing is
    // acknowledged to nghttp2 until delivered or discarded, so the stream's receive window
    // bounds it), its reader, END_STREAM, and the trailer fields (a HEADERS frame with
    // END_STREAM after DATA, RFC 9113 §8.1; past SETTINGS_MAX_HEADER_LIST_SIZE or the
    // field-count limit the body fails instead of losing fields).
    var bodyPipe = RequestBodyPipe()

    // Response.
    var mode: ResponseMode = .notStarted
    /// The request's method is HEAD.
    var isHEAD: Bool { head.isHEAD }
    /// Body the data provider has not sent yet.
    let bodyOut = ByteBuffer(capacity: 256)
    /// Bytes still owed under a declared content-length, or -1.
    var declaredRemaining: Int64 = -1
    /// The handler will write no more body.
    var bodyComplete = false
    /// Trailers to send after the last DATA frame (copied from the response at `finish`).
    var pendingTrailers: HTTPFields? = nil
    /// The data provider returned NGHTTP2_ERR_DEFERRED and waits for `resume_data`.
    var dataDeferred = false
    /// nghttp2 closed the stream (on_stream_close).
    var closed = false
    /// We sent END_STREAM.
    var localEnded = false
    /// Answered before the request body ended: bytes of it still accepted (and dropped) before
    /// the stream is reset with NO_ERROR; -1 when not draining (`HTTP2Connection.drainOrReset`).
    var drainBudget = -1
    var dispatched = false
    var countsAsHandler = false
    var logExchange = true
    /// The streaming handler watching this stream and what it is owed
    /// (`HTTP2Stream+Flow.swift`); `bodyAborted`: no END_STREAM.
    var responseFlow = StreamResponseFlow()
    var inServiceQueue = false
    /// Header block bytes the `nva` entries point into (NGHTTP2_NV_FLAG_NO_COPY_*): kept until
    /// the stream is reused, long after the HEADERS frame went out.
    let headBlock = ByteBuffer(capacity: 512)
    var nva: [nghttp2_nv] = []
    /// `recycle()` ran; `request` and `response` are reset when the stream is reused.
    var exchangeNeedsReset = false

    init(connection: HTTP2Connection) {
        self.connection = connection
        nva.reserveCapacity(24)
        response = HTTPResponse(sink: self)
    }

    /// Prepares a pooled stream for `id`. The request and response are reset only now, not
    /// when the stream was recycled: a handler that just finished may still look at them on
    /// its way out of `finish()`.
    func open(id: Int32) {
        if exchangeNeedsReset {
            exchangeNeedsReset = false
            request.reset()
            response.reset()
        }
        self.id = id
        phase = .headers
        request.version = .http2
        request.connection = connection.connectionInfo
    }

    /// Forgets the finished exchange, keeping storage. Buffers that grew past 64 KiB (8 KiB
    /// for the header block) after a large body are shrunk back, so an idle pooled stream
    /// stays small while ordinary traffic never reallocates. A response decorator is detached
    /// now so it can return its resources.
    func recycle() {
        request.bodySource = nil
        response.removeDecorator()
        exchangeNeedsReset = true
        id = 0
        phase = .idle
        head.reset()
        bodyPipe.reset()
        mode = .notStarted
        bodyOut.clear()
        bodyOut.shrinkIfEmpty(to: 16384)
        declaredRemaining = -1
        bodyComplete = false
        pendingTrailers = nil
        dataDeferred = false
        closed = false
        localEnded = false
        drainBudget = -1
        dispatched = false
        countsAsHandler = false
        logExchange = true
        responseFlow.reset()
        inServiceQueue = false
        headBlock.clear()
        headBlock.shrinkIfEmpty(to: 2048)
        nva.removeAll(keepingCapacity: true)
    }

    // MARK: Request head (RFC 9113 §8.3)

    /// Outcome of one decoded field.
    enum FieldResult {
        case ok
        /// The decoded block passed `HTTP2Limits.maxDecodedHeaderBytes`: HPACK bomb.
        case bomb
    }

    /// Takes one decoded request field. nghttp2 has already validated it (RFC 9113 §8.2:
    /// lower-case names, no connection-specific fields, `te` only `trailers`, pseudo-fields
    /// first and well-formed; a malformed request is reset with PROTOCOL_ERROR, §8.1.1), so
    /// this only stores it the way HTTP/1's parser does and accounts its size.
    @inline(__always)
    func addField(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limits: HTTP2Limits, maxList: Int
    ) -> FieldResult {
        head.addField(
            name: name, value: value, to: request, maxSectionSize: maxList, maxFields: limits.maxHeaderFields,
            decodedLimit: limits.maxDecodedHeaderBytes) ? .ok : .bomb
    }

    /// Takes one decoded trailer field. nghttp2 has validated it (no pseudo-fields, no
    /// connection-specific fields, RFC 9113 §8.1); the decoded-size cap counts the header and
    /// trailer sections together.
    @inline(__always)
    func addTrailer(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limits: HTTP2Limits, maxList: Int
    ) -> FieldResult {
        head.addTrailer(
            name: name, value: value, to: &bodyPipe, maxSectionSize: maxList, maxFields: limits.maxHeaderFields,
            decodedLimit: limits.maxDecodedHeaderBytes) ? .ok : .bomb
    }

    /// The header block ended (END_HEADERS on the request HEADERS frame).
    func headComplete(endStream: Bool) {
        if endStream { bodyPipe.remoteEnded = true }
        head.complete(request, bodyEnded: bodyPipe.remoteEnded)
        request.bodySource = bodyPipe.remoteEnded ? nil : self
    }
}

internal import CNGHTTP3
import HTTPCore
import IOCore

/// One request stream (RFC 9114 §4.1) mapped onto HTTPCore: its request (filled from the
/// decoded field section the way HTTP/2 fills it), its response (whose sink is this stream),
/// its body buffers. Stream objects are pooled by the connection and reused with their
/// storage.
///
/// Lifecycle (`phase`), as on HTTP/2:
///
///     idle ─begin_headers─► headers ─end_headers─► queued ─handler slot─► handling
///       ▲                     │ too large: 431        │ reset                │ response finished
///       │                     ▼                       ▼                      ▼
///       └── release ◄── (nghttp3 closed the stream and no handler holds it) ◄── responded
final class HTTP3Stream {
    enum Phase: Equatable {
        case idle, headers, queued, handling, responded
    }

    enum ResponseMode: Equatable {
        case notStarted
        /// HEADERS only (HEAD, 1xx, 204, 304, empty body): no data reader.
        case noBody
        /// HEADERS, then DATA from `body` through the data reader.
        case streaming
        case finished
    }

    /// RFC 9110 §9.2.1: the methods that may be handled from 0-RTT data.
    @inline(__always)
    static func isSafe(_ m: HTTPMethod) -> Bool {
        switch m {
        case .GET, .HEAD, .OPTIONS, .TRACE: return true
        default: return false
        }
    }

    unowned(unsafe) let connection: QUICConnection
    let request = HTTPRequest()
    private(set) var response: HTTPResponse!
    /// The QUIC stream id.
    var id: Int64 = -1
    var phase: Phase = .idle
    var liveIndex = -1

    /// Request head: the decoded field section into `request` (`HTTPCore/RequestHeadBuilder`),
    /// its size against SETTINGS_MAX_FIELD_SECTION_SIZE, `100-continue` (answered when the
    /// handler starts reading, `HTTP3Stream+Body.swift`). HTTP/3 has no decoded-size cap of its
    /// own and does not read `head.isAsterisk`: Caddy (quic-go) routes `OPTIONS *` over HTTP/3
    /// like any request, unlike Go's HTTP/1 and HTTP/2 servers.
    var head = RequestHeadBuilder()

    // Request body (`HTTP3Stream+Body.swift`): bytes not yet delivered (not credited to the
    // windows until delivered, so the stream window bounds them), their reader, FIN, and the
    // trailer fields (a HEADERS frame after DATA, RFC 9114 §4.1; past the field-section size
    // or the field-count limit the body fails instead of losing fields).
    var bodyPipe = RequestBodyPipe()

    // Response.
    var mode: ResponseMode = .notStarted
    /// The request's method is HEAD.
    var isHEAD: Bool { head.isHEAD }
    /// Body bytes until acknowledged.
    var body = QUICBodyChain()
    var declaredRemaining: Int64 = -1
    var bodyComplete = false
    /// The response's trailers were submitted (`nghttp3_conn_submit_trailers`): the data
    /// reader ends the body without FIN and nghttp3 ends the stream after the HEADERS frame.
    var trailersSubmitted = false
    /// A file region sent as the body (`sendFileRegion`): read straight into `body`'s chunks
    /// as nghttp3 asks for data, `fileRemaining` bytes from `fileOffset`.
    var fileSource: SharedFile? = nil
    var fileOffset: Int64 = 0
    var fileRemaining: Int64 = 0
    /// The file ended early (it shrank): the stream is reset from the service queue.
    var fileFailed = false
    /// The data reader returned WOULDBLOCK and waits for `nghttp3_conn_resume_stream`.
    var dataDeferred = false
    var closed = false
    var dispatched = false
    var countsAsHandler = false
    var logExchange = true
    /// The streaming handler watching this stream and what it is owed (`HTTP3Stream+Body.swift`).
    var responseFlow = StreamResponseFlow()
    var inServiceQueue = false
    /// Scratch for the response field section (nghttp3 copies names and values on submit).
    let headBlock = ByteBuffer(capacity: 512)
    var nva: [nghttp3_nv] = []
    var exchangeNeedsReset = false

    init(connection: QUICConnection) {
        self.connection = connection
        nva.reserveCapacity(24)
        response = HTTPResponse(sink: self)
    }

    func open(id: Int64) {
        if exchangeNeedsReset {
            exchangeNeedsReset = false
            request.reset()
            response.reset()
        }
        self.id = id
        phase = .headers
        request.version = .http3
        request.connection = connection.connectionInfo
    }

    /// Forgets the exchange, keeping storage (buffers that grew are shrunk back).
    func recycle() {
        request.bodySource = nil
        response.removeDecorator()
        body.release(pool: connection.chunkPool)
        fileSource = nil
        fileRemaining = 0
        fileFailed = false
        exchangeNeedsReset = true
        id = -1
        phase = .idle
        head.reset()
        bodyPipe.reset()
        mode = .notStarted
        declaredRemaining = -1
        bodyComplete = false
        trailersSubmitted = false
        dataDeferred = false
        closed = false
        dispatched = false
        countsAsHandler = false
        logExchange = true
        responseFlow.reset()
        inServiceQueue = false
        headBlock.clear()
        headBlock.shrinkIfEmpty(to: 2048)
        nva.removeAll(keepingCapacity: true)
    }

    // MARK: Request head (RFC 9114 §4.3.1)

    /// Takes one decoded request field. nghttp3 has validated it (RFC 9114 §4.2: lower-case
    /// names, no connection-specific fields, `te` only `trailers`, pseudo-fields first and
    /// well-formed; a malformed request is reset with H3_MESSAGE_ERROR, §4.1.2). `token` is
    /// nghttp3's QPACK token for the name; unused (`HeaderToken.classify` classifies the name).
    @inline(__always)
    func addField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, token: Int32, limits: QUICLimits) {
        _ = head.addField(
            name: name, value: value, to: request,
            maxSectionSize: connection.endpoint.configuration.settings.maxFieldSectionSize,
            maxFields: limits.maxHeaderFields, decodedLimit: Int.max)
    }

    /// Takes one decoded trailer field (nghttp3 rejects pseudo-fields and connection-specific
    /// fields in a trailer section). Kept for `RequestBodySource.trailers`; past the
    /// field-section size or the field-count limit the body fails instead.
    @inline(__always)
    func addTrailer(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limits: QUICLimits) {
        _ = head.addTrailer(
            name: name, value: value, to: &bodyPipe,
            maxSectionSize: connection.endpoint.configuration.settings.maxFieldSectionSize,
            maxFields: limits.maxHeaderFields, decodedLimit: Int.max)
    }

    /// The request's field section ended.
    func headComplete(endStream: Bool) {
        if endStream { bodyPipe.remoteEnded = true }
        head.complete(request, bodyEnded: bodyPipe.remoteEnded)
        request.bodySource = bodyPipe.remoteEnded ? nil : self
    }
}

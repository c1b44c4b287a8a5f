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

    /// Who consumes the request body (same states as HTTP/1).
    enum BodyConsumer {
        case unclaimed
        case reading(any RequestBodyReader, paused: Bool)
        case readerDone
        /// Nobody will read it: DATA is acknowledged (window returned) and dropped.
        case discarding
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

    // Request head.
    var headBytes = 0
    var headFields = 0
    var headTooLarge = false
    var sawAuthority = false
    var expectContinue = false
    var isAsterisk = false
    /// `cookie` crumbs, joined with "; " (RFC 9113 §8.2.3) into one field at END_HEADERS.
    let cookies = ByteBuffer(capacity: 64)

    // Request body.
    /// DATA received but not yet delivered (bounded by the stream's receive window, because
    /// nothing is acknowledged to nghttp2 until it is delivered or discarded).
    let bodyIn = ByteBuffer(capacity: 256)
    var remoteEnded = false
    var consumer: BodyConsumer = .unclaimed
    /// Trailer fields after the request body (a HEADERS frame with END_STREAM after DATA,
    /// RFC 9113 §8.1); allocates nothing until a request has some.
    var requestTrailers = HTTPFields.unreserved()
    /// The trailer section passed SETTINGS_MAX_HEADER_LIST_SIZE or the field-count limit: the
    /// body fails (as an oversized HTTP/1 trailer section does) instead of losing fields.
    var trailersTooLarge = false
    /// Size of the trailer section alone (RFC 9113 §6.5.2 accounting).
    var trailerBytes = 0

    // Response.
    var mode: ResponseMode = .notStarted
    var isHEAD = false
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
    var dispatched = false
    var countsAsHandler = false
    var logExchange = true
    /// The streaming handler watching this stream (`ResponseFlowControl`).
    weak var flowObserver: (any ResponseFlowObserver)? = nil
    /// `isResponseWritable` returned false: `responseWritable()` is owed.
    var flowBlocked = false
    /// `responseAborted()` is owed (the peer reset the stream under a handler).
    var abortNoticeDue = false
    /// `abortStreamedResponse` ended the body: no END_STREAM.
    var bodyAborted = false
    var inServiceQueue = false
    var needsBodyPump = false
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
        headBytes = 0
        headFields = 0
        headTooLarge = false
        sawAuthority = false
        expectContinue = false
        isAsterisk = false
        cookies.clear()
        bodyIn.clear()
        bodyIn.shrinkIfEmpty(to: 16384)
        remoteEnded = false
        consumer = .unclaimed
        if requestTrailers.count > 0 { requestTrailers.removeAll() }
        trailersTooLarge = false
        trailerBytes = 0
        mode = .notStarted
        isHEAD = false
        bodyOut.clear()
        bodyOut.shrinkIfEmpty(to: 16384)
        declaredRemaining = -1
        bodyComplete = false
        pendingTrailers = nil
        dataDeferred = false
        closed = false
        localEnded = false
        dispatched = false
        countsAsHandler = false
        logExchange = true
        flowObserver = nil
        flowBlocked = false
        abortNoticeDue = false
        bodyAborted = false
        inServiceQueue = false
        needsBodyPump = false
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
    /// lower-case names, no connection-specific fields, pseudo-fields first and well-formed),
    /// so this only stores it the way HTTP/1's parser does and accounts its size.
    func addField(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limits: HTTP2Limits, maxList: Int
    ) -> FieldResult {
        // RFC 9113 §6.5.2: the size of a field is its name and value plus 32 bytes.
        headBytes += name.count &+ value.count &+ 32
        if headBytes > limits.maxDecodedHeaderBytes { return .bomb }
        if headTooLarge { return .ok }
        if headBytes > maxList {
            headTooLarge = true
            return .ok
        }
        if name.count > 0 && name[0] == 0x3A {
            addPseudo(name, value)
            return .ok
        }
        headFields += 1
        if headFields > limits.maxHeaderFields {
            headTooLarge = true
            return .ok
        }
        let token = HeaderToken.classify(name)
        switch token {
        case .host:
            // RFC 9113 §8.3.1: :authority wins over Host; Host alone stands in for it. Like
            // HTTP/1, Host is kept as the authority, not as a field.
            if !sawAuthority && request.authorityRange == nil {
                request.authorityRange = request.appendLine(value)
            }
            return .ok
        case .cookie:
            if !cookies.isEmpty { cookies.append("; ") }
            cookies.append(value)
            return .ok
        case .contentLength:
            // nghttp2 checked it is 1*DIGIT and will hold DATA to it (RFC 9113 §8.1.1).
            var v: Int64 = 0
            for b in value where b >= 0x30 && b <= 0x39 { v = v &* 10 &+ Int64(b &- 0x30) }
            request.contentLength = v
        case .expect:
            if HTTP2Stream.equalsLowercase(value, "100-continue") { expectContinue = true }
        default:
            break
        }
        request.fields.append(name: name, value: value, token: token)
        return .ok
    }

    /// Takes one decoded trailer field. nghttp2 has validated it (no pseudo-fields, no
    /// connection-specific fields, RFC 9113 §8.1); `headBytes` goes on counting from the head
    /// against the decoded-size cap.
    func addTrailer(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limits: HTTP2Limits, maxList: Int
    ) -> FieldResult {
        let size = name.count &+ value.count &+ 32
        headBytes &+= size
        if headBytes > limits.maxDecodedHeaderBytes { return .bomb }
        trailerBytes &+= size
        if trailersTooLarge { return .ok }
        if trailerBytes > maxList || requestTrailers.count >= limits.maxHeaderFields {
            trailersTooLarge = true
            return .ok
        }
        requestTrailers.append(name: name, value: value, token: HeaderToken.classify(name))
        return .ok
    }

    private func addPseudo(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        switch name.count {
        case 7 where HTTP2Stream.equalsLowercase(name, ":method"):
            request.methodRange = request.appendLine(value)
            request.method = HTTPMethod.classify(value)
            isHEAD = request.method == .HEAD
        case 5 where HTTP2Stream.equalsLowercase(name, ":path"):
            // RFC 9113 §8.3.1: origin-form path and query, or `*` for OPTIONS.
            let r = request.appendLine(value)
            request.targetRange = r
            var q = -1
            for i in 0..<value.count where value[i] == 0x3F {
                q = i
                break
            }
            if q >= 0 {
                request.pathRange = r.lowerBound..<(r.lowerBound + q)
                request.queryRange = (r.lowerBound + q + 1)..<r.upperBound
            } else {
                request.pathRange = r
                request.queryRange = nil
            }
            isAsterisk = value.count == 1 && value[0] == 0x2A
        case 10 where HTTP2Stream.equalsLowercase(name, ":authority"):
            sawAuthority = true
            request.authorityRange = request.appendLine(value)
        default:
            // :scheme is implied by the connection (ConnectionInfo.isTLS); nghttp2 rejects
            // unknown pseudo-fields.
            break
        }
    }

    /// The header block ended (END_HEADERS on the request HEADERS frame).
    func headComplete(endStream: Bool) {
        if !cookies.isEmpty {
            let name: StaticString = "cookie"
            request.fields.append(
                name: UnsafeRawBufferPointer(start: name.utf8Start, count: 6), value: cookies.readable, token: .cookie)
            cookies.clear()
        }
        if endStream { remoteEnded = true }
        request.hasStreamingBody = !remoteEnded && request.contentLength == nil
        request.bodySource = remoteEnded ? nil : self
        // A HEADERS-only CONNECT has no path (RFC 9113 §8.5).
        if request.targetRange.isEmpty && request.method == .CONNECT, let a = request.authorityRange {
            request.targetRange = a
            request.pathRange = a.upperBound..<a.upperBound
        }
    }

    @inline(__always)
    static func equalsLowercase(_ a: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        guard a.count == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for i in 0..<a.count {
            var c = a[i]
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            if c != p[i] { return false }
        }
        return true
    }
}

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

    enum BodyConsumer {
        case unclaimed
        case reading(any RequestBodyReader, paused: Bool)
        case readerDone
        /// Nobody will read it: received bytes are credited back and dropped.
        case discarding
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

    // Request head.
    var headBytes = 0
    var headFields = 0
    var headTooLarge = false
    var sawAuthority = false
    var isHEAD = false
    var sawMethod = false
    let cookies = ByteBuffer(capacity: 64)

    // Request body.
    /// Body received but not delivered: not credited to the windows until delivered, so the
    /// stream window bounds it.
    let bodyIn = ByteBuffer(capacity: 256)
    var remoteEnded = false
    var consumer: BodyConsumer = .unclaimed
    /// Trailer fields after the request body (a HEADERS frame after DATA, RFC 9114 §4.1);
    /// allocates nothing until a request has some.
    var requestTrailers = HTTPFields.unreserved()
    /// Size of the trailer section so far (name + value + 32 per field, RFC 9114 §4.2.2).
    var trailerBytes = 0
    /// The trailer section passed the field-section size or field-count limit: the body
    /// fails (as an oversized HTTP/1 trailer section does) instead of losing fields.
    var trailersTooLarge = false

    // Response.
    var mode: ResponseMode = .notStarted
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
    weak var flowObserver: (any ResponseFlowObserver)? = nil
    var flowBlocked = false
    var abortNoticeDue = false
    var bodyAborted = false
    var inServiceQueue = false
    var needsBodyPump = false
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
        headBytes = 0
        headFields = 0
        headTooLarge = false
        sawAuthority = false
        isHEAD = false
        sawMethod = false
        cookies.clear()
        bodyIn.clear()
        bodyIn.shrinkIfEmpty(to: 16384)
        remoteEnded = false
        consumer = .unclaimed
        if requestTrailers.count > 0 { requestTrailers.removeAll() }
        trailerBytes = 0
        trailersTooLarge = false
        mode = .notStarted
        declaredRemaining = -1
        bodyComplete = false
        trailersSubmitted = false
        dataDeferred = false
        closed = false
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

    // MARK: Request head (RFC 9114 §4.3.1)

    /// Takes one decoded request field. nghttp3 has validated it (RFC 9114 §4.2: lower-case
    /// names, no connection-specific fields, pseudo-fields first and well-formed) and bounds
    /// the section by SETTINGS_MAX_FIELD_SECTION_SIZE.
    func addField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, token: Int32, limits: QUICLimits) {
        // RFC 9114 §4.2.2: name + value + 32 per field.
        headBytes &+= name.count &+ value.count &+ 32
        if headTooLarge { return }
        if headBytes > connection.endpoint.configuration.settings.maxFieldSectionSize {
            headTooLarge = true
            return
        }
        if name.count > 0 && name[0] == 0x3A {
            addPseudo(name, value)
            return
        }
        headFields += 1
        if headFields > limits.maxHeaderFields {
            headTooLarge = true
            return
        }
        let t = HeaderToken.classify(name)
        switch t {
        case .host:
            // RFC 9114 §4.3.1: :authority wins; Host alone stands in for it (kept as the
            // authority, like HTTP/1 and HTTP/2).
            if !sawAuthority && request.authorityRange == nil { request.authorityRange = request.appendLine(value) }
            return
        case .cookie:
            // RFC 9114 §4.2.1: crumbs are joined with "; ".
            if !cookies.isEmpty { cookies.append("; ") }
            cookies.append(value)
            return
        case .contentLength:
            var v: Int64 = 0
            for b in value where b >= 0x30 && b <= 0x39 { v = v &* 10 &+ Int64(b &- 0x30) }
            request.contentLength = v
        default:
            break
        }
        request.fields.append(name: name, value: value, token: t)
    }

    /// Takes one decoded trailer field (nghttp3 rejects pseudo-fields and connection-specific
    /// fields in a trailer section). Kept for `RequestBodySource.trailers`; past the
    /// field-section size or the field-count limit the body fails instead.
    func addTrailer(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limits: QUICLimits) {
        trailerBytes &+= name.count &+ value.count &+ 32
        if trailersTooLarge { return }
        if trailerBytes > connection.endpoint.configuration.settings.maxFieldSectionSize
            || requestTrailers.count >= limits.maxHeaderFields
        {
            trailersTooLarge = true
            return
        }
        requestTrailers.append(name: name, value: value, token: HeaderToken.classify(name))
    }

    private func addPseudo(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        switch name.count {
        case 7 where HTTP3Stream.equals(name, ":method"):
            request.methodRange = request.appendLine(value)
            request.method = HTTPMethod.classify(value)
            isHEAD = request.method == .HEAD
            sawMethod = true
        case 5 where HTTP3Stream.equals(name, ":path"):
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
        case 10 where HTTP3Stream.equals(name, ":authority"):
            sawAuthority = true
            request.authorityRange = request.appendLine(value)
        default:
            // :scheme is https on QUIC; nghttp3 rejects unknown pseudo-fields.
            break
        }
    }

    /// The request's field section ended.
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
        if request.targetRange.isEmpty && request.method == .CONNECT, let a = request.authorityRange {
            request.targetRange = a
            request.pathRange = a.upperBound..<a.upperBound
        }
    }

    @inline(__always)
    static func equals(_ a: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        guard a.count == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for i in 0..<a.count where a[i] != p[i] { return false }
        return true
    }
}

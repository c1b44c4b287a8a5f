internal import CNGHTTP2
import HTTPCore
import IOCore

/// Responses: the stream is the `ResponseSink` of its `HTTPResponse`. HEADERS go out through
/// `nghttp2_submit_response`; DATA through a data provider that reads `bodyOut` and writes
/// frames without an intermediate copy (NGHTTP2_DATA_FLAG_NO_COPY + send_data_callback), so
/// nghttp2 enforces flow control (RFC 9113 §5.2) and the stream buffers only what the peer's
/// window does not take yet.
///
/// Calls for a response that is not this stream's current one in `.handling` are ignored, and
/// so are writes after the peer reset the stream or the connection ended — but finishing is
/// always recorded, so the stream can be recycled.
extension HTTP2Stream: ResponseSink {
    /// RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content.
    @inline(__always)
    static func bodyAllowed(_ status: Int) -> Bool {
        status >= 200 && status != 204 && status != 304
    }

    @inline(__always)
    func owns(_ r: HTTPResponse) -> Bool { phase == .handling && r === response }

    /// Whether frames can still be submitted for this stream.
    @inline(__always)
    var canWrite: Bool { !closed && connection.acceptsStreamOutput }

    package func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
        guard owns(response), mode == .notStarted else { return }
        if canWrite {
            let status = response.status
            let allowed = HTTP2Stream.bodyAllowed(status)
            if status < 200 {
                // A 1xx as the final answer would leave the client waiting (RFC 9110 §15.2).
                connection.resetStream(self, .internalError)
            } else {
                noteHeadSent(response)
                let withBody = allowed && !isHEAD && !body.isEmpty
                if withBody {
                    bodyOut.append(body)
                    bodyComplete = true
                }
                // HEAD of an empty body: no content-length, as Go's HTTP/2 server (it only
                // learns a HEAD body's length from what the handler writes) and as HTTP/1 here.
                let length: Int64? = allowed && !(isHEAD && body.isEmpty) ? Int64(body.count) : nil
                submitResponse(
                    status: status, fields: response.fields, contentLength: length, withBody: withBody, addServer: true)
            }
        }
        mode = .finished
        connection.handlerFinished(self)
    }

    package func sendHead(_ response: HTTPResponse, contentLength: Int64?) {
        guard owns(response), mode == .notStarted else { return }
        let status = response.status
        guard canWrite else {
            mode = .streaming
            return
        }
        if status < 200 {
            mode = .streaming
            connection.resetStream(self, .internalError)
            return
        }
        noteHeadSent(response)
        let allowed = HTTP2Stream.bodyAllowed(status)
        if !allowed || isHEAD {
            mode = .noBody
            let length = allowed ? contentLength.map { max(0, $0) } : nil
            submitResponse(
                status: status, fields: response.fields, contentLength: length, withBody: false, addServer: true)
        } else {
            mode = .streaming
            declaredRemaining = contentLength.map { max(0, $0) } ?? -1
            submitResponse(
                status: status, fields: response.fields, contentLength: contentLength.map { max(0, $0) },
                withBody: true, addServer: true)
        }
        connection.noteOutsideChange()
    }

    /// Part of a streamed body. Bytes beyond a declared content-length are dropped (the
    /// message is already complete; RFC 9113 §8.1.1 makes more a protocol error).
    package func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) {
        guard owns(response), mode == .streaming, canWrite, !bytes.isEmpty else { return }
        var n = bytes.count
        if declaredRemaining >= 0 {
            n = Int(min(Int64(n), declaredRemaining))
            declaredRemaining -= Int64(n)
        }
        if n == 0 { return }
        bodyOut.append(UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
        resumeData()
        connection.noteOutsideChange()
    }

    /// Ends a streamed body: DATA with END_STREAM once `bodyOut` drains, or — when fewer
    /// bytes than a declared content-length were written — RST_STREAM INTERNAL_ERROR, as the
    /// message is incomplete (RFC 9113 §8.1.1).
    package func finish(_ response: HTTPResponse) {
        guard owns(response) else { return }
        switch mode {
        case .streaming:
            bodyComplete = true
            if response.trailers.count > 0 && declaredRemaining <= 0 { pendingTrailers = response.trailers }
            if canWrite && !responseFlow.bodyAborted {
                if declaredRemaining > 0 {
                    connection.resetStream(self, .internalError)
                } else {
                    resumeData()
                }
            }
        case .notStarted, .noBody, .finished:
            break
        }
        mode = .finished
        connection.handlerFinished(self)
    }

    /// Caddy's `abort` on HTTP/2: RST_STREAM INTERNAL_ERROR, as Go does for
    /// `http.ErrAbortHandler` (the connection itself stays up).
    package func abort(_ response: HTTPResponse) {
        guard phase == .handling, response === self.response else { return }
        if canWrite { connection.resetStream(self, .internalError) }
        mode = .finished
        connection.handlerFinished(self)
    }

    /// Decisions made when a head goes out: the unread request body is given up (RFC 9113
    /// §8.1: the client may stop sending it) and `Connection: close` from the handler turns
    /// into a graceful GOAWAY, like Go does on HTTP/2.
    private func noteHeadSent(_ response: HTTPResponse) {
        if response.closeConnection || HTTP2Stream.wantsClose(response.fields) {
            connection.requestGracefulShutdown()
        }
        if case .unclaimed = bodyPipe.consumer, !bodyPipe.remoteEnded { connection.discardBody(self) }
    }

    private static func wantsClose(_ fields: HTTPFields) -> Bool {
        guard let i = fields.firstIndex(.connection) else { return false }
        return fields.withField(i) { _, v in ASCII.equalsLowercase(v, "close") }
    }

    /// Puts a deferred data provider back in nghttp2's queue.
    @inline(__always)
    func resumeData() {
        if dataDeferred {
            dataDeferred = false
            connection.resumeData(self)
        }
    }

    // MARK: Data provider

    /// nghttp2 asks for at most `length` bytes of DATA (already limited by both flow-control
    /// windows and the frame size). We hand over `bodyOut` without copying.
    func readBody(length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        let avail = bodyOut.readableBytes
        if avail > 0 {
            let n = min(avail, length)
            flags.pointee |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue
            if bodyComplete && n == avail { endData(flags) }
            return n
        }
        if bodyComplete {
            endData(flags)
            return 0
        }
        dataDeferred = true
        return Int(NGHTTP2_ERR_DEFERRED.rawValue)
    }

    /// The last DATA frame: END_STREAM, or — with trailers — no END_STREAM and a trailing
    /// HEADERS frame that ends the stream (RFC 9113 §8.1; nghttp2_submit_trailer from inside
    /// the read callback, as nghttp2 documents).
    private func endData(_ flags: UnsafeMutablePointer<UInt32>) {
        flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        guard let t = pendingTrailers else { return }
        pendingTrailers = nil
        flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
        connection.submitTrailers(self, t)
    }

    /// Writes one DATA frame (its 9-byte header from nghttp2, then `length` bytes of
    /// `bodyOut`) into the connection's output.
    func writeData(header: UnsafePointer<UInt8>, length: Int, into out: ByteBuffer) {
        out.reserveWritable(9 + length)
        out.append(UnsafeRawBufferPointer(start: header, count: 9))
        out.append(UnsafeRawBufferPointer(start: bodyOut.base + bodyOut.readerIndex, count: length))
        bodyOut.consume(length)
        responseBytesDrained()
    }

    // MARK: HEADERS (RFC 9113 §8.3.2, §8.2.2)

    /// Submits the response HEADERS. Names are lower-cased (RFC 9113 §8.2: upper case is
    /// malformed), connection-specific fields are dropped (§8.2.2), framing is ours
    /// (content-length from the known length), `server` and `date` are added like HTTP/1, and
    /// CR/LF/NUL in values become spaces with surrounding whitespace trimmed (RFC 9110 §5.5),
    /// so no handler input can produce a header block the client rejects.
    func submitResponse(status: Int, fields: HTTPFields, contentLength: Int64?, withBody: Bool, addServer: Bool) {
        let date = connection.dateCache.current()
        let server = addServer ? connection.serverName : nil
        var bound = 96 &+ date.count &+ (server?.count ?? 0)
        for e in fields.entries { bound &+= Int(e.nameLength) &+ Int(e.valueLength) }
        headBlock.clear()
        headBlock.reserveWritable(bound)
        nva.removeAll(keepingCapacity: true)

        let code = max(100, min(999, status))
        let digits = headBlock.writePointer
        headBlock.append(byte: UInt8(48 + code / 100))
        headBlock.append(byte: UInt8(48 + (code / 10) % 10))
        headBlock.append(byte: UInt8(48 + code % 10))
        addStatic(":status", value: UnsafeRawBufferPointer(start: digits, count: 3))

        var hasServer = false
        var hasDate = false
        fields.arena.withUnsafeBytes { ab in
            guard let base = ab.baseAddress else { return }
            for e in fields.entries {
                switch e.token {
                case .connection, .keepAlive, .proxyConnection, .transferEncoding, .upgrade, .te, .contentLength:
                    continue
                case .server: hasServer = true
                case .date: hasDate = true
                default: break
                }
                let name = UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: Int(e.nameLength))
                let value = UnsafeRawBufferPointer(start: base + Int(e.valueStart), count: Int(e.valueLength))
                addCopied(name: name, value: value)
            }
        }
        if let server, !hasServer {
            server.withUnsafeBytes { addCopiedValue("server", $0) }
        }
        if !hasDate { addCopiedValue("date", date) }
        if let contentLength {
            let start = headBlock.writePointer
            headBlock.appendDecimal(Int(contentLength))
            let digits = UnsafeRawBufferPointer(start: start, count: headBlock.writePointer - start)
            addStatic("content-length", value: digits)
        }
        connection.submitResponse(self, withBody: withBody)
    }

    /// A name from static storage, a value already in `headBlock`.
    @inline(__always)
    private func addStatic(_ name: StaticString, value: UnsafeRawBufferPointer) {
        nva.append(
            nghttp2_nv(
                name: UnsafeMutablePointer(mutating: name.utf8Start), value: HTTP2Stream.mutable(value),
                namelen: name.utf8CodeUnitCount, valuelen: value.count,
                flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)))
    }

    /// A static name and a value copied into `headBlock` (the date cache's buffer changes).
    @inline(__always)
    private func addCopiedValue(_ name: StaticString, _ value: UnsafeRawBufferPointer) {
        let start = headBlock.writePointer
        headBlock.append(value)
        addStatic(name, value: UnsafeRawBufferPointer(start: start, count: value.count))
    }

    /// A handler field: name lower-cased, value sanitised, both copied into `headBlock`.
    private func addCopied(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard !name.isEmpty else { return }
        for b in name where !HTTP2Stream.isTchar(b) { return }
        let ns = headBlock.writePointer
        for i in 0..<name.count {
            var c = name[i]
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            ns[i] = c
        }
        headBlock.commit(name.count)
        var lo = 0
        var hi = value.count
        while lo < hi && (value[lo] == 0x20 || value[lo] == 0x09) { lo += 1 }
        while hi > lo && (value[hi - 1] == 0x20 || value[hi - 1] == 0x09) { hi -= 1 }
        let vs = headBlock.writePointer
        for i in lo..<hi {
            let c = value[i]
            vs[i - lo] = (c == 0x0D || c == 0x0A || c == 0x00) ? 0x20 : c
        }
        headBlock.commit(hi - lo)
        nva.append(
            nghttp2_nv(
                name: ns, value: vs, namelen: name.count, valuelen: hi - lo,
                flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)))
    }

    @inline(__always)
    private static func mutable(_ p: UnsafeRawBufferPointer) -> UnsafeMutablePointer<UInt8> {
        UnsafeMutablePointer(mutating: p.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    /// RFC 9110 §5.6.2 token characters.
    @inline(__always)
    static func isTchar(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }
}

internal import CNGHTTP3
internal import CNGTCP2
import HTTPCore
import IOCore

/// Responses: the stream is the `ResponseSink` of its `HTTPResponse`. The HEADERS frame goes
/// out through `nghttp3_conn_submit_response` (QPACK-encoded by nghttp3, RFC 9204); DATA
/// through a data reader that hands out the stream's body chain in place, so nghttp3 and
/// ngtcp2 frame it without a copy and flow control (RFC 9000 §4) decides how fast it goes.
///
/// Calls for a response that is not the stream's current one in `.handling` are ignored, and
/// so are writes after the peer reset the stream or the connection ended — but finishing is
/// always recorded, so the stream can be recycled.
extension HTTP3Stream: ResponseSink {
    /// RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content.
    @inline(__always)
    static func bodyAllowed(_ status: Int) -> Bool { status >= 200 && status != 204 && status != 304 }

    @inline(__always)
    func owns(_ r: HTTPResponse) -> Bool { phase == .handling && r === response }

    /// Whether frames can still be submitted for this stream.
    @inline(__always)
    var canWrite: Bool { !closed && connection.state == .open && connection.h3 != nil }

    package func sendComplete(_ response: HTTPResponse, body bytes: UnsafeRawBufferPointer) {
        guard owns(response), mode == .notStarted else { return }
        if canWrite {
            let status = response.status
            let allowed = HTTP3Stream.bodyAllowed(status)
            if status < 200 {
                // A 1xx as the final answer would leave the client waiting (RFC 9110 §15.2).
                connection.resetStream(self, UInt64(NGHTTP3_H3_INTERNAL_ERROR))
            } else {
                noteHeadSent(response)
                let withBody = allowed && !isHEAD && !bytes.isEmpty
                if withBody {
                    body.append(bytes, pool: connection.chunkPool)
                    bodyComplete = true
                }
                submitResponse(
                    status: status, fields: response.fields, contentLength: allowed ? Int64(bytes.count) : nil,
                    withBody: withBody, addServer: true)
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
            connection.resetStream(self, UInt64(NGHTTP3_H3_INTERNAL_ERROR))
            return
        }
        noteHeadSent(response)
        let allowed = HTTP3Stream.bodyAllowed(status)
        let length = contentLength.map { max(0, $0) }
        if !allowed || isHEAD {
            mode = .noBody
            submitResponse(
                status: status, fields: response.fields, contentLength: allowed ? length : nil, withBody: false,
                addServer: true)
        } else {
            mode = .streaming
            declaredRemaining = length ?? -1
            submitResponse(status: status, fields: response.fields, contentLength: length, withBody: true, addServer: true)
        }
        connection.noteOutsideChange()
    }

    /// A file region as the complete body (`HTTPResponse.send(file:)`): the head goes out now
    /// and the file is read into the body chain as nghttp3 asks for data (`fillFromFile`), so
    /// file bytes are copied once into the chunks QUIC retransmits from, not through the
    /// handler's buffer first. Small regions, HEAD and bodiless statuses take the general path.
    package func sendFileRegion(_ response: HTTPResponse, file: SharedFile, offset: Int64, count: Int64) -> Bool {
        guard owns(response), mode == .notStarted, canWrite, !isHEAD, HTTP3Stream.bodyAllowed(response.status),
            count > Int64(FileBodyPump.inlineLimit)
        else { return false }
        noteHeadSent(response)
        fileSource = file
        fileOffset = offset
        fileRemaining = count
        submitResponse(status: response.status, fields: response.fields, contentLength: count, withBody: true, addServer: true)
        mode = .finished
        connection.handlerFinished(self)
        connection.noteOutsideChange()
        return true
    }

    /// Reads the file body into the chain while it holds less than the stream's write high
    /// water mark (unsent plus unacknowledged bytes, as for streamed bodies).
    func fillFromFile() {
        guard let file = fileSource else { return }
        let limit = connection.endpoint.configuration.limits.streamWriteHighWater
        while fileRemaining > 0 && body.count < limit {
            let want = Int(min(fileRemaining, Int64(QUICChunkPool.chunkSize)))
            let got = body.append(from: file, at: fileOffset, max: want, pool: connection.chunkPool)
            if got <= 0 {
                // The file shrank under us: the head promised more, so the stream is reset
                // (RFC 9114 §4.1.2), from the service queue, never inside nghttp3's call.
                fileSource = nil
                fileRemaining = 0
                fileFailed = true
                connection.enqueueService(self)
                return
            }
            fileOffset += Int64(got)
            fileRemaining -= Int64(got)
        }
        if fileRemaining == 0 {
            fileSource = nil
            bodyComplete = true
        }
    }

    /// Part of a streamed body; bytes beyond a declared content-length are dropped (RFC 9114
    /// §4.1.2 makes more a malformed message).
    package func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) {
        guard owns(response), mode == .streaming, canWrite, !bytes.isEmpty else { return }
        var n = bytes.count
        if declaredRemaining >= 0 {
            n = Int(min(Int64(n), declaredRemaining))
            declaredRemaining -= Int64(n)
        }
        if n == 0 { return }
        body.append(UnsafeRawBufferPointer(rebasing: bytes[0..<n]), pool: connection.chunkPool)
        resumeData()
        connection.noteOutsideChange()
    }

    /// Ends a streamed body: FIN once the chain is handed out, or — when fewer bytes than a
    /// declared content-length were written — the stream is reset (the message is incomplete).
    package func finish(_ response: HTTPResponse) {
        guard owns(response) else { return }
        switch mode {
        case .streaming:
            bodyComplete = true
            if canWrite && !responseFlow.bodyAborted {
                if declaredRemaining > 0 {
                    connection.resetStream(self, UInt64(NGHTTP3_H3_INTERNAL_ERROR))
                } else {
                    // Trailers go out as a HEADERS frame after the last DATA frame (RFC 9114
                    // §4.1). Submitted before the data reader can report EOF, so nghttp3
                    // queues them behind the body and ends the stream after them.
                    if response.trailers.count > 0 { submitTrailers(response.trailers) }
                    resumeData()
                }
            }
        case .notStarted, .noBody, .finished:
            break
        }
        mode = .finished
        connection.handlerFinished(self)
    }

    /// Caddy's `abort`: the stream is reset with H3_INTERNAL_ERROR (the connection stays).
    package func abort(_ response: HTTPResponse) {
        guard phase == .handling, response === self.response else { return }
        if canWrite { connection.resetStream(self, UInt64(NGHTTP3_H3_INTERNAL_ERROR)) }
        mode = .finished
        connection.handlerFinished(self)
    }

    /// When a head goes out: an unread request body is given up (RFC 9114 §4.1.2: STOP_SENDING
    /// with H3_NO_ERROR) and `Connection: close` becomes a graceful GOAWAY.
    private func noteHeadSent(_ response: HTTPResponse) {
        if response.closeConnection || HTTP3Stream.wantsClose(response.fields) { connection.requestGracefulShutdown() }
        if case .unclaimed = bodyPipe.consumer, !bodyPipe.remoteEnded { connection.stopReading(self) }
    }

    private static func wantsClose(_ fields: HTTPFields) -> Bool {
        guard let i = fields.firstIndex(.connection) else { return false }
        return fields.withField(i) { _, v in
            let close: StaticString = "close"
            guard v.count == 5 else { return false }
            for j in 0..<5 where v[j] | 0x20 != close.utf8Start[j] { return false }
            return true
        }
    }

    @inline(__always)
    func resumeData() {
        if dataDeferred {
            dataDeferred = false
            connection.resumeStream(self)
        }
    }

    // MARK: Data reader

    /// nghttp3 asks for body: the unsent part of the chain, in place, with EOF once the
    /// handler is done and everything is handed out.
    func readData(_ vec: UnsafeMutablePointer<nghttp3_vec>, _ max: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        if fileSource != nil { fillFromFile() }
        var i = 0
        _ = body.take { p, n in
            if i == max { return false }
            vec[i] = nghttp3_vec(base: p.assumingMemoryBound(to: UInt8.self), len: n)
            i += 1
            return true
        }
        if bodyComplete && body.unsent == 0 {
            flags.pointee |= UInt32(NGHTTP3_DATA_FLAG_EOF)
            // The trailer HEADERS frame follows and carries the FIN.
            if trailersSubmitted { flags.pointee |= UInt32(NGHTTP3_DATA_FLAG_NO_END_STREAM) }
            return i
        }
        if i == 0 {
            dataDeferred = true
            return Int(NGHTTP3_ERR_WOULDBLOCK)
        }
        return i
    }

    /// The peer acknowledged `n` body bytes.
    func acknowledged(_ n: Int) {
        body.acknowledge(n, pool: connection.chunkPool)
        responseBytesDrained()
        if fileSource != nil { resumeData() }
    }

    // MARK: Field section (RFC 9114 §4.3.2, §4.2)

    /// Submits the response HEADERS: names lower-cased (RFC 9114 §4.2), connection-specific
    /// fields dropped (§4.2), content-length from the known length, `server` and `date` added
    /// like HTTP/1, CR/LF/NUL in values replaced (RFC 9110 §5.5).
    func submitResponse(status: Int, fields: HTTPFields, contentLength: Int64?, withBody: Bool, addServer: Bool) {
        let date = connection.endpoint.dateCache.current()
        let server = addServer ? connection.endpoint.serverName : nil
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
        add(":status", UnsafeRawBufferPointer(start: digits, count: 3))
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
                addCopied(
                    name: UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: Int(e.nameLength)),
                    value: UnsafeRawBufferPointer(start: base + Int(e.valueStart), count: Int(e.valueLength)))
            }
        }
        if let server, !hasServer { server.withUnsafeBytes { addCopiedValue("server", $0) } }
        if !hasDate { addCopiedValue("date", date) }
        if let contentLength {
            let start = headBlock.writePointer
            headBlock.appendDecimal(Int(contentLength))
            add("content-length", UnsafeRawBufferPointer(start: start, count: headBlock.writePointer - start))
        }
        connection.submitResponse(self, withBody: withBody)
    }

    /// Submits an interim `100 Continue` (RFC 9110 §15.2.1, RFC 9114 §4.1) for a request that
    /// asked for it, before the final head. It carries `server` like the 100 Caddy passes on
    /// from an upstream over HTTP/3.
    func submitContinue() {
        let server = connection.endpoint.serverName
        headBlock.clear()
        headBlock.reserveWritable(8 &+ (server?.count ?? 0))
        nva.removeAll(keepingCapacity: true)
        let status: StaticString = "100"
        add(":status", UnsafeRawBufferPointer(start: status.utf8Start, count: 3))
        if let server { server.withUnsafeBytes { addCopiedValue("server", $0) } }
        connection.submitInfo(self)
    }

    /// Submits `fields` as the trailer section (RFC 9114 §4.1): names lower-cased, values
    /// sanitised as in the head; fields that must not be trailers (RFC 9110 §6.5.1: framing,
    /// routing, connection-specific) and pseudo-fields are dropped. nghttp3 copies them, so
    /// the head's scratch storage is reused.
    func submitTrailers(_ fields: HTTPFields) {
        var bound = 0
        for e in fields.entries { bound &+= Int(e.nameLength) &+ Int(e.valueLength) }
        headBlock.clear()
        headBlock.reserveWritable(bound)
        nva.removeAll(keepingCapacity: true)
        fields.arena.withUnsafeBytes { ab in
            guard let base = ab.baseAddress else { return }
            for e in fields.entries {
                switch e.token {
                case .connection, .keepAlive, .proxyConnection, .transferEncoding, .upgrade, .te, .contentLength,
                    .trailer, .host, .expect:
                    continue
                default: break
                }
                addCopied(
                    name: UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: Int(e.nameLength)),
                    value: UnsafeRawBufferPointer(start: base + Int(e.valueStart), count: Int(e.valueLength)))
            }
        }
        if nva.isEmpty { return }
        trailersSubmitted = connection.submitTrailers(self)
    }

    @inline(__always)
    private func add(_ name: StaticString, _ value: UnsafeRawBufferPointer) {
        nva.append(
            nghttp3_nv(
                name: UnsafeMutablePointer(mutating: name.utf8Start), value: HTTP3Stream.mutable(value),
                namelen: name.utf8CodeUnitCount, valuelen: value.count, flags: UInt8(NGHTTP3_NV_FLAG_NONE)))
    }

    @inline(__always)
    private func addCopiedValue(_ name: StaticString, _ value: UnsafeRawBufferPointer) {
        let start = headBlock.writePointer
        headBlock.append(value)
        add(name, UnsafeRawBufferPointer(start: start, count: value.count))
    }

    private func addCopied(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard !name.isEmpty else { return }
        for b in name where !HTTP3Stream.isTchar(b) { return }
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
            nghttp3_nv(name: ns, value: vs, namelen: name.count, valuelen: hi - lo, flags: UInt8(NGHTTP3_NV_FLAG_NONE)))
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

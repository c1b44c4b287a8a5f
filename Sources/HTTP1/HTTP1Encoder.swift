import HTTPCore
import IOCore

/// How a response head frames its body (RFC 9112 §6.1–6.3).
enum HeadFraming: Equatable {
    /// `Content-Length: n`.
    case contentLength(Int64)
    /// `Transfer-Encoding: chunked` (HTTP/1.1 only).
    case chunked
    /// No framing header: 1xx/204/304, HEAD of unknown length, or close-delimited on HTTP/1.0.
    case none
}

/// The `Connection` field the encoder adds (RFC 9112 §9.3, §9.6).
enum ConnectionField: Equatable {
    /// Nothing: the default persistence of the version applies.
    case none
    /// `Connection: close` (HTTP/1.1 response that ends the connection).
    case close
    /// `Connection: keep-alive` (echo for an HTTP/1.0 client that asked for it).
    case keepAlive
}

/// What a pass over the handler's fields found.
struct FieldScan {
    /// Upper bound of the bytes the handler's fields take on the wire.
    var bytes = 0
    var hasServer = false
    var hasDate = false
    /// The handler set `Connection: close`.
    var wantsClose = false
}

/// Response serialisation (RFC 9112 §4 status line, §5 fields, §7.1 chunked). Stateless: every
/// function appends to an output `ByteBuffer` with a single capacity reservation.
enum HTTP1Encoder {
    /// Bytes reserved for everything in a head except the handler's fields and Server value.
    static let fixedHeadBound = 256

    /// Scans the handler's fields once: size bound, and which automatic fields to skip.
    static func scan(_ fields: HTTPFields) -> FieldScan {
        var s = FieldScan()
        let arena = fields.arena
        for e in fields.entries {
            s.bytes &+= Int(e.nameLength) &+ Int(e.valueLength) &+ 4
            switch e.token {
            case .server: s.hasServer = true
            case .date: s.hasDate = true
            case .connection:
                arena.withUnsafeBytes { ab in
                    let v = UnsafeRawBufferPointer(
                        rebasing: ab[Int(e.valueStart)..<Int(e.valueStart) + Int(e.valueLength)])
                    ByteClass.forEachListElement(v) { el in
                        if ASCII.equalsLowercase(el, "close") { s.wantsClose = true }
                    }
                }
            default: break
            }
        }
        return s
    }

    /// Writes a response head.
    ///
    /// Order (Caddy/Go-like): status line; the handler's fields in order, except the framing and
    /// connection fields the protocol owns (Content-Length, Transfer-Encoding, Connection —
    /// RFC 9112 §6.1/§6.2 make framing the sender's job); `Server` unless the handler set one;
    /// `Date` unless the handler set one (RFC 9110 §6.6.1: an origin server with a clock MUST
    /// send Date); the framing field; the Connection field; the empty line. Field names with
    /// non-token bytes are dropped and CR/LF in values become spaces, like Go, so no handler
    /// input can split the response.
    static func writeHead(
        into out: ByteBuffer, status: Int, fields: HTTPFields, scan: FieldScan,
        server: UnsafeRawBufferPointer?, date: UnsafeRawBufferPointer,
        framing: HeadFraming, connection: ConnectionField, extra: Int = 0
    ) {
        let bound = fixedHeadBound &+ scan.bytes &+ (server?.count ?? 0) &+ extra
        out.reserveWritable(bound)
        var w = RawWriter(out.writePointer)
        putStatusLine(&w, status)
        fields.arena.withUnsafeBytes { ab in
            guard let base = ab.baseAddress else { return }
            for e in fields.entries {
                switch e.token {
                case .contentLength, .transferEncoding, .connection: continue
                default: break
                }
                let nameLength = Int(e.nameLength)
                if nameLength == 0 || !FieldBytes.allTchar(base + Int(e.nameStart), nameLength) { continue }
                w.put(UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: nameLength))
                w.put(": ")
                let vstart = w.p
                w.put(UnsafeRawBufferPointer(start: base + Int(e.valueStart), count: Int(e.valueLength)))
                ByteClass.replaceCRLF(vstart, Int(e.valueLength))
                w.put("\r\n")
            }
        }
        if let server, !scan.hasServer {
            w.put("Server: ")
            w.put(server)
            w.put("\r\n")
        }
        if !scan.hasDate {
            w.put("Date: ")
            w.put(date)
            w.put("\r\n")
        }
        switch framing {
        case .contentLength(let n):
            w.put("Content-Length: ")
            w.putDecimal(n)
            w.put("\r\n")
        case .chunked:
            w.put("Transfer-Encoding: chunked\r\n")
        case .none:
            break
        }
        switch connection {
        case .close: w.put("Connection: close\r\n")
        case .keepAlive: w.put("Connection: keep-alive\r\n")
        case .none: break
        }
        w.put("\r\n")
        precondition(w.count <= bound)
        out.commit(w.count)
    }

    /// `HTTP/1.1 <code> <reason>\r\n`. HTTP/1.1 is sent whatever the request's minor version
    /// (RFC 9110 §6.2: a server sends the highest version it conforms to). Codes outside
    /// 100...999 become 500; codes without a known reason get Go's `status code N`.
    @inline(__always)
    static func putStatusLine(_ w: inout RawWriter, _ status: Int) {
        let code = (100...999).contains(status) ? status : 500
        w.put("HTTP/1.1 ")
        w.putDecimal(Int64(code))
        w.put(byte: 0x20)
        let reason = HTTPStatus.reason(code)
        if reason.utf8CodeUnitCount > 0 {
            w.put(reason)
        } else {
            w.put("status code ")
            w.putDecimal(Int64(code))
        }
        w.put("\r\n")
    }

    /// `100 Continue` interim response (RFC 9110 §15.2.1).
    static func writeContinue(into out: ByteBuffer) {
        out.append("HTTP/1.1 100 Continue\r\n\r\n")
    }

    /// One chunk of a chunked body (RFC 9112 §7.1): size, CRLF, data, CRLF. Empty input writes
    /// nothing (an empty chunk would end the body).
    static func writeChunk(into out: ByteBuffer, _ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        out.write(reserving: bytes.count &+ 20) { w in
            w.putHex(bytes.count)
            w.put("\r\n")
            w.put(bytes)
            w.put("\r\n")
        }
    }

    /// The last chunk and an empty trailer section (RFC 9112 §7.1).
    static func writeLastChunk(into out: ByteBuffer) {
        out.append("0\r\n\r\n")
    }

    /// The last chunk with a trailer section (RFC 9112 §7.1.2); CR, LF and NUL in values
    /// become spaces so no field can end the section early.
    static func writeLastChunk(into out: ByteBuffer, trailers: HTTPFields) {
        if trailers.count == 0 {
            writeLastChunk(into: out)
            return
        }
        out.append("0\r\n")
        for i in 0..<trailers.count {
            trailers.withField(i) { name, value in
                guard !name.isEmpty else { return }
                out.append(name)
                out.append(": ")
                out.reserveWritable(value.count)
                let w = out.writePointer
                for k in 0..<value.count {
                    let c = value[k]
                    w[k] = (c == 0x0D || c == 0x0A || c == 0x00) ? 0x20 : c
                }
                out.commit(value.count)
                out.append("\r\n")
            }
        }
        out.append("\r\n")
    }

    /// A rejection before any handler ran, shaped like Go's `net/http` so clients and tests
    /// see what Caddy sends: `HTTP/1.1 <code> <text>[: <reason>]`, `Content-Type:
    /// text/plain; charset=utf-8`, `Connection: close`, and the same text as body (or
    /// `Unsupported transfer encoding` for 501). No Date, no Server, no Content-Length: the
    /// body is close-delimited. 405 (method too long, a Caddy-level answer) and 417 (Go's
    /// `sendExpectationFailed`) are ordinary empty responses with Date and `Content-Length: 0`.
    static func writeError(
        into out: ByteBuffer, _ error: HTTP1Error, server: UnsafeRawBufferPointer?,
        date: UnsafeRawBufferPointer
    ) {
        let code = error.status
        out.write(reserving: 512 &+ (server?.count ?? 0)) { w in
            putStatusLineWithReason(&w, code, error.reason)
            if code == 405 || code == 417 {
                if code == 405, let server {
                    w.put("Server: ")
                    w.put(server)
                    w.put("\r\n")
                }
                w.put("Date: ")
                w.put(date)
                w.put("\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            }
            w.put("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")
            if code == 501 {
                w.put("Unsupported transfer encoding")
            } else {
                w.putDecimal(Int64(code))
                w.put(byte: 0x20)
                w.put(HTTPStatus.reason(code))
                if let reason = error.reason {
                    w.put(": ")
                    w.put(reason)
                }
            }
        }
    }

    @inline(__always)
    private static func putStatusLineWithReason(_ w: inout RawWriter, _ code: Int, _ reason: StaticString?) {
        w.put("HTTP/1.1 ")
        w.putDecimal(Int64(code))
        w.put(byte: 0x20)
        w.put(HTTPStatus.reason(code))
        if let reason {
            w.put(": ")
            w.put(reason)
        }
        w.put("\r\n")
    }

    /// Go's answer to `OPTIONS *` (RFC 9110 §9.3.7): `200 OK`, `Content-Length: 0`, Date; no
    /// Server; never routed.
    static func writeOptionsAsterisk(into out: ByteBuffer, date: UnsafeRawBufferPointer, connection: ConnectionField) {
        out.write(reserving: 128) { w in
            w.put("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: ")
            w.put(date)
            w.put("\r\n")
            switch connection {
            case .close: w.put("Connection: close\r\n")
            case .keepAlive: w.put("Connection: keep-alive\r\n")
            case .none: break
            }
            w.put("\r\n")
        }
    }
}

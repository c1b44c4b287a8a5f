import IOCore

/// FastCGI 1.0 records (the FastCGI specification, §3.3 record format, §5 application records),
/// sans-I/O: encoding into a `ByteBuffer` and incremental decoding out of one.
///
/// A record is an 8-byte header — version (1), type, request id (big endian), content length
/// (big endian, ≤ 65535), padding length, reserved — then the content and the padding. Berth
/// runs one request per connection with request id 1 (Caddy does the same).
package enum FastCGI {
    package static let version: UInt8 = 1
    package static let requestID: UInt16 = 1

    /// Record types (§8).
    package enum RecordType: UInt8, Sendable {
        case beginRequest = 1, abortRequest, endRequest, params, stdin, stdout, stderr, data
        case getValues, getValuesResult, unknownType
    }

    /// `FCGI_RESPONDER` (§6.2).
    package static let roleResponder: UInt16 = 1
    /// `FCGI_KEEP_CONN` (§5.1): the application keeps the connection open after the request.
    package static let flagKeepConn: UInt8 = 1
    /// Largest content of one record.
    package static let maxContent = 65535
    /// Content per STDIN/PARAMS record Berth writes: a multiple of 8 below `maxContent`, so
    /// full records need no padding.
    package static let chunkContent = 65528

    /// Appends one record header; `padding` bytes must follow the content.
    package static func appendHeader(_ type: RecordType, contentLength: Int, padding: Int = 0, into out: ByteBuffer) {
        out.reserveWritable(8)
        let p = out.writePointer
        p[0] = version
        p[1] = type.rawValue
        p[2] = UInt8(requestID >> 8)
        p[3] = UInt8(requestID & 0xFF)
        p[4] = UInt8(contentLength >> 8)
        p[5] = UInt8(contentLength & 0xFF)
        p[6] = UInt8(padding)
        p[7] = 0
        out.commit(8)
    }

    /// Padding that brings `n` content bytes to a multiple of 8 (§3.3: recommended).
    @inline(__always)
    package static func padding(for n: Int) -> Int { (8 - n & 7) & 7 }

    /// `FCGI_BEGIN_REQUEST` for a responder (§5.1).
    package static func appendBeginRequest(keepConn: Bool, into out: ByteBuffer) {
        appendHeader(.beginRequest, contentLength: 8, into: out)
        out.reserveWritable(8)
        let p = out.writePointer
        p[0] = UInt8(roleResponder >> 8)
        p[1] = UInt8(roleResponder & 0xFF)
        p[2] = keepConn ? flagKeepConn : 0
        for i in 3..<8 { p[i] = 0 }
        out.commit(8)
    }

    /// Wraps `content` in records of `type` (split at `chunkContent`, padded to 8). An empty
    /// `content` writes nothing: the empty record that ends a stream is `appendEndOfStream`.
    package static func appendStream(_ type: RecordType, _ content: UnsafeRawBufferPointer, into out: ByteBuffer) {
        var off = 0
        while off < content.count {
            let n = min(chunkContent, content.count - off)
            let pad = padding(for: n)
            appendHeader(type, contentLength: n, padding: pad, into: out)
            out.append(UnsafeRawBufferPointer(rebasing: content[off..<(off + n)]))
            if pad > 0 {
                out.reserveWritable(pad)
                for i in 0..<pad { out.writePointer[i] = 0 }
                out.commit(pad)
            }
            off += n
        }
    }

    /// The empty record that closes a PARAMS or STDIN stream (§3.3).
    package static func appendEndOfStream(_ type: RecordType, into out: ByteBuffer) {
        appendHeader(type, contentLength: 0, into: out)
    }

    /// Appends one name-value pair in the PARAMS encoding (§3.4): each length in one byte
    /// when below 128, else in four bytes with the high bit set.
    package static func appendPair(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, into out: ByteBuffer) {
        appendLength(name.count, into: out)
        appendLength(value.count, into: out)
        out.append(name)
        out.append(value)
    }

    package static func appendPair(_ name: StaticString, value: UnsafeRawBufferPointer, into out: ByteBuffer) {
        appendPair(name: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), value: value, into: out)
    }

    package static func appendPair(_ name: StaticString, _ value: StaticString, into out: ByteBuffer) {
        appendPair(name, value: UnsafeRawBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount), into: out)
    }

    @inline(__always)
    static func appendLength(_ n: Int, into out: ByteBuffer) {
        if n < 128 {
            out.append(byte: UInt8(n))
        } else {
            out.append(byte: UInt8(truncatingIfNeeded: n >> 24) | 0x80)
            out.append(byte: UInt8(truncatingIfNeeded: n >> 16))
            out.append(byte: UInt8(truncatingIfNeeded: n >> 8))
            out.append(byte: UInt8(truncatingIfNeeded: n))
        }
    }

    /// Decodes PARAMS content back into pairs (tests, and the FastCGI test peer).
    package static func decodePairs(_ bytes: [UInt8]) -> [([UInt8], [UInt8])]? {
        var out: [([UInt8], [UInt8])] = []
        var i = 0
        func length() -> Int? {
            guard i < bytes.count else { return nil }
            if bytes[i] < 128 {
                i += 1
                return Int(bytes[i - 1])
            }
            guard i + 4 <= bytes.count else { return nil }
            let n = Int(bytes[i] & 0x7F) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            i += 4
            return n
        }
        while i < bytes.count {
            guard let nl = length(), let vl = length(), i + nl + vl <= bytes.count else { return nil }
            out.append((Array(bytes[i..<(i + nl)]), Array(bytes[(i + nl)..<(i + nl + vl)])))
            i += nl + vl
        }
        return out
    }
}

/// Incremental decoder of the records an application sends back (§5.3, §5.5): STDOUT and
/// STDERR content is reported in place (a count of readable bytes at the input's read index,
/// which the caller uses and then consumes); headers, padding, END_REQUEST and records of
/// other types are consumed here. Records may be split anywhere across reads.
package struct FastCGIResponseDecoder: Sendable {
    package enum Step: Equatable, Sendable {
        /// The next `n` readable bytes are STDOUT content.
        case stdout(Int)
        /// The next `n` readable bytes are STDERR content.
        case stderr(Int)
        /// FCGI_END_REQUEST: the application's exit status and the protocol status (§5.5).
        case end(appStatus: UInt32, protocolStatus: UInt8)
        case needMore
        case failure(FastCGIError)
    }

    private enum State: Equatable, Sendable { case header, content, padding, ended }

    private var state: State = .header
    private var header = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
    private var have = 0
    private var type: UInt8 = 0
    private var remaining = 0
    private var paddingLeft = 0
    /// END_REQUEST content (8 bytes) gathered across reads.
    private var endBody: UInt64 = 0
    private var endHave = 0

    package init() {}

    package var ended: Bool { state == .ended }

    package mutating func next(_ input: ByteBuffer) -> Step {
        while true {
            switch state {
            case .ended:
                return .needMore
            case .header:
                while have < 8 {
                    guard input.readableBytes > 0 else { return .needMore }
                    let b = input.base[input.readerIndex]
                    input.consume(1)
                    withUnsafeMutableBytes(of: &header) { $0[have] = b }
                    have += 1
                }
                have = 0
                guard header.0 == FastCGI.version else { return .failure(.badVersion) }
                type = header.1
                let id = UInt16(header.2) << 8 | UInt16(header.3)
                remaining = Int(header.4) << 8 | Int(header.5)
                paddingLeft = Int(header.6)
                // Management records (request id 0) are skipped; any other id is not ours.
                if id != FastCGI.requestID && id != 0 { return .failure(.badRequestID) }
                if type == FastCGI.RecordType.endRequest.rawValue {
                    endBody = 0
                    endHave = 0
                }
                state = .content
            case .content:
                if remaining == 0 {
                    if type == FastCGI.RecordType.endRequest.rawValue {
                        guard endHave >= 8 else { return .failure(.badEndRequest) }
                        state = .padding
                        let app = UInt32(truncatingIfNeeded: endBody >> 32)
                        let proto = UInt8(truncatingIfNeeded: endBody >> 24)
                        if paddingLeft == 0 { state = .ended } else { state = .padding }
                        return .end(appStatus: app, protocolStatus: proto)
                    }
                    state = paddingLeft > 0 ? .padding : .header
                    continue
                }
                let avail = input.readableBytes
                guard avail > 0 else { return .needMore }
                let n = min(avail, remaining)
                switch type {
                case FastCGI.RecordType.stdout.rawValue:
                    remaining -= n
                    return .stdout(n)
                case FastCGI.RecordType.stderr.rawValue:
                    remaining -= n
                    return .stderr(n)
                case FastCGI.RecordType.endRequest.rawValue:
                    for k in 0..<n where endHave < 8 {
                        endBody = endBody << 8 | UInt64(input.base[input.readerIndex + k])
                        endHave += 1
                    }
                    input.consume(n)
                    remaining -= n
                default:
                    input.consume(n)
                    remaining -= n
                }
            case .padding:
                let n = min(input.readableBytes, paddingLeft)
                input.consume(n)
                paddingLeft -= n
                if paddingLeft > 0 { return .needMore }
                state = type == FastCGI.RecordType.endRequest.rawValue ? .ended : .header
            }
        }
    }
}

/// Why an application's records could not be read (the client gets 502).
package enum FastCGIError: Error, Equatable, Sendable {
    case badVersion
    case badRequestID
    case badEndRequest
}

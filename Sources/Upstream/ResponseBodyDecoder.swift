import HTTPCore
import IOCore

/// Reads an upstream response body out of the connection's input under its framing
/// (RFC 9112 §6.3): Content-Length, chunked (§7.1) or until close. Sans-I/O: body bytes are
/// reported as a count of readable bytes at the input's read index, which the caller forwards
/// and then consumes; framing bytes are consumed here.
///
/// Chunk framing is parsed strictly (CRLF line ends, hex sizes without overflow, extensions
/// skipped but bounded); the trailer section (RFC 9112 §7.1.2) is kept raw in `trailerBytes`
/// (one `name: value` line per `\n`, at most 16 KiB) for the proxy to forward.
package struct ResponseBodyDecoder: Sendable {
    /// One step of decoding.
    package enum Step: Equatable, Sendable {
        /// The next `n` readable bytes of the input are body data.
        case data(Int)
        /// More input is needed.
        case needMore
        /// The body ended (for `untilClose`: after `finishAtEOF`).
        case done
        case failure(ResponseParseError)
    }

    private enum ChunkState: Equatable, Sendable {
        case size, ext, sizeLF, data, dataCR, dataLF, trailerLineStart, trailerLine, trailerLF, finalLF, done
    }

    package private(set) var framing: ResponseFraming = .none
    /// Bytes still owed by a Content-Length body, or of the current chunk.
    private var remaining: Int64 = 0
    private var chunk: ChunkState = .size
    private var sawDigit = false
    private var lineBytes = 0
    private var eof = false
    /// The trailer lines of a chunked body, `\n`-separated (empty when there were none; no
    /// allocation then).
    package private(set) var trailerBytes: [UInt8] = []

    package init() {}

    /// The longest trailer section kept.
    static let maxTrailerBytes = 16384

    /// Starts a body with `framing`.
    package mutating func start(_ framing: ResponseFraming) {
        self = ResponseBodyDecoder()
        self.framing = framing
        if case .length(let n) = framing { remaining = n }
    }

    /// The upstream closed: an `untilClose` body ends; any other unfinished body is truncated.
    package mutating func finishAtEOF() { eof = true }

    /// True when the body is complete.
    package var isDone: Bool {
        switch framing {
        case .none: return true
        case .length: return remaining == 0
        case .chunked: return chunk == .done
        case .untilClose: return eof
        }
    }

    /// The next step over `input`.
    package mutating func next(_ input: ByteBuffer) -> Step {
        switch framing {
        case .none:
            return .done
        case .length:
            if remaining == 0 { return .done }
            let n = min(Int64(input.readableBytes), remaining)
            if n == 0 { return eof ? .failure(.truncated) : .needMore }
            remaining -= n
            return .data(Int(n))
        case .untilClose:
            let n = input.readableBytes
            if n > 0 { return .data(n) }
            return eof ? .done : .needMore
        case .chunked:
            return nextChunked(input)
        }
    }

    private mutating func nextChunked(_ input: ByteBuffer) -> Step {
        while true {
            if chunk == .done { return .done }
            if chunk == .data {
                if remaining == 0 {
                    chunk = .dataCR
                    continue
                }
                let n = min(Int64(input.readableBytes), remaining)
                if n == 0 { return eof ? .failure(.truncated) : .needMore }
                remaining -= n
                return .data(Int(n))
            }
            guard input.readableBytes > 0 else { return eof ? .failure(.truncated) : .needMore }
            let b = input.base[input.readerIndex]
            input.consume(1)
            lineBytes += 1
            if lineBytes > 4096 { return .failure(.badChunk) }
            switch chunk {
            case .size:
                if let h = Self.hex(b) {
                    guard remaining < (1 << 58) else { return .failure(.badChunk) }
                    remaining = remaining << 4 | Int64(h)
                    sawDigit = true
                } else if sawDigit && (b == 0x3B || b == 0x20 || b == 0x09) {
                    chunk = .ext
                } else if sawDigit && b == 0x0D {
                    chunk = .sizeLF
                } else {
                    return .failure(.badChunk)
                }
            case .ext:
                if b == 0x0D {
                    chunk = .sizeLF
                } else if b < 0x20 && b != 0x09 || b == 0x7F {
                    return .failure(.badChunk)
                }
            case .sizeLF:
                guard b == 0x0A else { return .failure(.badChunk) }
                lineBytes = 0
                sawDigit = false
                chunk = remaining == 0 ? .trailerLineStart : .data
            case .dataCR:
                guard b == 0x0D else { return .failure(.badChunk) }
                chunk = .dataLF
            case .dataLF:
                guard b == 0x0A else { return .failure(.badChunk) }
                lineBytes = 0
                chunk = .size
            case .trailerLineStart:
                if b == 0x0D {
                    chunk = .finalLF
                } else {
                    guard trailerBytes.count < Self.maxTrailerBytes else { return .failure(.badChunk) }
                    trailerBytes.append(b)
                    chunk = .trailerLine
                }
            case .trailerLine:
                if b == 0x0D {
                    chunk = .trailerLF
                } else {
                    guard trailerBytes.count < Self.maxTrailerBytes else { return .failure(.badChunk) }
                    trailerBytes.append(b)
                }
            case .trailerLF:
                guard b == 0x0A else { return .failure(.badChunk) }
                trailerBytes.append(0x0A)
                lineBytes = 0
                chunk = .trailerLineStart
            case .finalLF:
                guard b == 0x0A else { return .failure(.badChunk) }
                chunk = .done
                return .done
            case .data, .done:
                break
            }
        }
    }

    @inline(__always)
    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}

extension ResponseBodyDecoder {
    /// Parses `trailerBytes` into `fields`, skipping malformed lines and fields that must not
    /// appear in a trailer section (RFC 9110 §6.5.1: framing, routing, hop-by-hop).
    package static func parseTrailers(_ raw: [UInt8], into fields: inout HTTPFields) {
        raw.withUnsafeBytes { all in
            var start = 0
            while start < all.count {
                var end = start
                while end < all.count && all[end] != 0x0A { end += 1 }
                let line = UnsafeRawBufferPointer(rebasing: all[start..<end])
                start = end + 1
                guard let colon = line.firstIndex(of: 0x3A), colon > 0 else { continue }
                let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
                var ok = true
                for c in name where !UpstreamBytes.isTchar(c) { ok = false }
                guard ok else { continue }
                var lo = colon + 1
                var hi = line.count
                while lo < hi && (line[lo] == 0x20 || line[lo] == 0x09) { lo += 1 }
                while hi > lo && (line[hi - 1] == 0x20 || line[hi - 1] == 0x09) { hi -= 1 }
                let token = HeaderToken.classify(name)
                if HopByHop.isForbiddenTrailer(token) { continue }
                fields.append(name: name, value: UnsafeRawBufferPointer(rebasing: line[lo..<hi]), token: token)
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// One step of body decoding: what the next bytes of the input are.
enum BodyStep: Equatable {
    /// The next `n` readable bytes of the input are body data; the caller consumes them.
    case data(Int)
    /// Nothing decodable is buffered; framing bytes seen so far were consumed.
    case needMore
    /// The body (and its trailer section) ended.
    case done
    /// The framing is invalid; the connection must close.
    case failure(HTTP1Error)
}

/// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1), driven byte by byte
/// over the connection's input so it can stop and resume at any split point.
///
///     chunked-body   = *chunk last-chunk trailer-section CRLF
///     chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
///     chunk-size     = 1*HEXDIG
///     last-chunk     = 1*("0") [ chunk-ext ] CRLF
///
/// Strictness (stricter than Go, on purpose: every lenient reading of chunk framing is a
/// request-smuggling vector when a proxy in front reads it differently):
/// - every line in the chunked framing must end in CRLF; a bare LF or bare CR is an error;
/// - chunk sizes that overflow 62 bits are errors (§7.1: a recipient MUST anticipate large
///   sizes and prevent overflow);
/// - chunk extensions (§7.1.1) are skipped, but may contain no CTL but HTAB, and the whole
///   size line is bounded by `maxChunkLineBytes`;
/// - the trailer section (§7.1.2) is parsed with the same field-line rules as the head and
///   bounded by `maxTrailerBytes` / `maxTrailerFields`.
struct ChunkedDecoder {
    enum State: Equatable {
        /// Reading chunk-size hex digits.
        case size
        /// After the size: BWS before `;` (RFC 9112 §7.1.1).
        case sizeSpace
        /// Inside chunk extensions, up to CR.
        case extensions
        /// Saw CR after the size line; expecting LF.
        case sizeLF
        /// Inside chunk data.
        case data
        /// After chunk data; expecting CR.
        case dataCR
        /// After chunk data CR; expecting LF.
        case dataLF
        /// Reading trailer field lines.
        case trailers
        /// The body ended.
        case done
    }

    private(set) var state: State = .size
    private var chunkRemaining: Int64 = 0
    private var sawDigit = false
    private var lineBytes = 0
    private var trailerBytes = 0
    private var trailerFields = 0
    private var trailerScanned = 0

    init() {}

    mutating func reset() { self = ChunkedDecoder() }

    /// Decodes framing from `input` until the next data bytes, the end, an error, or the end of
    /// the buffered input. Trailer fields go into `trailers`.
    mutating func next(_ input: ByteBuffer, trailers: inout HTTPFields, limits: HTTP1Limits) -> BodyStep {
        while true {
            switch state {
            case .done:
                return .done
            case .data:
                let avail = input.readableBytes
                if avail == 0 { return .needMore }
                let n = Int(min(Int64(avail), chunkRemaining))
                chunkRemaining -= Int64(n)
                if chunkRemaining == 0 { state = .dataCR }
                return .data(n)
            case .trailers:
                let r = nextTrailerLine(input, &trailers, limits)
                if r != .data(0) { return r }
            default:
                let avail = input.readableBytes
                if avail == 0 { return .needMore }
                let p = input.base + input.readerIndex
                var i = 0
                var result: BodyStep? = nil
                while i < avail {
                    let b = p[i]
                    i += 1
                    if let r = step(b, limits) {
                        result = r
                        break
                    }
                    if state == .data || state == .trailers { break }
                }
                input.consume(i)
                if let result { return result }
                if state != .data && state != .trailers { return .needMore }
            }
        }
    }

    /// Advances the size-line / data-CRLF states by one byte; returns an error or nil.
    @inline(__always)
    private mutating func step(_ b: UInt8, _ limits: HTTP1Limits) -> BodyStep? {
        switch state {
        case .size:
            lineBytes += 1
            if let d = ByteClass.hexValue(b) {
                if chunkRemaining > (Int64.max >> 5) { return .failure(.invalidChunkedBody) }
                chunkRemaining = chunkRemaining << 4 | Int64(d)
                sawDigit = true
            } else if !sawDigit {
                return .failure(.invalidChunkedBody)
            } else if b == 0x3B {
                state = .extensions
            } else if b == 0x20 || b == 0x09 {
                state = .sizeSpace
            } else if b == 0x0D {
                state = .sizeLF
            } else {
                return .failure(.invalidChunkedBody)
            }
        case .sizeSpace:
            lineBytes += 1
            if b == 0x3B {
                state = .extensions
            } else if b == 0x0D {
                state = .sizeLF
            } else if !(b == 0x20 || b == 0x09) {
                return .failure(.invalidChunkedBody)
            }
        case .extensions:
            lineBytes += 1
            if b == 0x0D {
                state = .sizeLF
            } else if b < 0x20 && b != 0x09 || b == 0x7F {
                return .failure(.invalidChunkedBody)
            }
        case .sizeLF:
            guard b == 0x0A else { return .failure(.invalidChunkedBody) }
            lineBytes = 0
            sawDigit = false
            state = chunkRemaining == 0 ? .trailers : .data
            return nil
        case .dataCR:
            guard b == 0x0D else { return .failure(.invalidChunkedBody) }
            state = .dataLF
        case .dataLF:
            guard b == 0x0A else { return .failure(.invalidChunkedBody) }
            state = .size
            chunkRemaining = 0
        case .data, .trailers, .done:
            break
        }
        if lineBytes > limits.maxChunkLineBytes { return .failure(.invalidChunkedBody) }
        return nil
    }

    /// Consumes one complete trailer line. Returns `.data(0)` to mean "line consumed, go on".
    private mutating func nextTrailerLine(_ input: ByteBuffer, _ trailers: inout HTTPFields, _ limits: HTTP1Limits) -> BodyStep {
        let avail = input.readableBytes
        let p = input.base + input.readerIndex
        var lf = -1
        if trailerScanned < avail, let hit = memchr(p + trailerScanned, 0x0A, avail - trailerScanned) {
            lf = p.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
        if lf < 0 {
            trailerScanned = avail
            if trailerBytes + avail > limits.maxTrailerBytes { return .failure(.trailersTooLarge) }
            return .needMore
        }
        trailerScanned = 0
        trailerBytes += lf + 1
        if trailerBytes > limits.maxTrailerBytes { return .failure(.trailersTooLarge) }
        // CRLF only (no bare LF) inside chunked framing.
        guard lf >= 1, p[lf - 1] == 0x0D else { return .failure(.invalidChunkedBody) }
        let n = lf - 1
        if n == 0 {
            input.consume(lf + 1)
            state = .done
            return .done
        }
        switch HTTP1Parser.splitFieldLine(p, n) {
        case .failure:
            return .failure(.invalidChunkedBody)
        case .success(let s):
            trailerFields += 1
            if trailerFields > limits.maxTrailerFields { return .failure(.trailersTooLarge) }
            let name = UnsafeRawBufferPointer(start: p, count: s.nameLength)
            trailers.append(
                name: name, value: UnsafeRawBufferPointer(start: p + s.valueStart, count: s.valueEnd - s.valueStart),
                token: HeaderToken.classify(name))
        }
        input.consume(lf + 1)
        return .data(0)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Where the name and value of a field line are (RFC 9112 §5.1).
struct FieldLineSplit {
    var nameLength: Int
    var valueStart: Int
    var valueEnd: Int
}

extension HTTP1Parser {
    /// Splits and checks `field-name ":" OWS field-value OWS` (RFC 9112 §5.1):
    /// - a line starting with SP/HTAB is obs-fold (or whitespace before the first field), which
    ///   we reject (RFC 9112 §5.2 allows rejecting it with 400; §2.2 forbids treating it as a
    ///   field);
    /// - the name must be 1*tchar directly followed by `:` — whitespace before the colon MUST
    ///   be rejected with 400 (§5.1);
    /// - the value, trimmed of OWS, may hold HTAB, SP, VCHAR and obs-text only: NUL, CR, LF and
    ///   other CTLs are rejected (RFC 9110 §5.5: a recipient of them MUST reject or replace;
    ///   we reject).
    @inline(__always)
    static func splitFieldLine(_ p: UnsafePointer<UInt8>, _ n: Int) -> Swift.Result<FieldLineSplit, HTTP1Error> {
        if ByteClass.isWhitespace(p[0]) { return .failure(.obsFold) }
        var i = 0
        while i < n && ByteClass.isTchar(p[i]) { i += 1 }
        if i == n { return .failure(.missingColon) }
        if p[i] != 0x3A {
            if memchr(p + i, 0x3A, n - i) == nil { return .failure(.missingColon) }
            return .failure(.invalidFieldName)
        }
        if i == 0 { return .failure(.emptyFieldName) }
        var vs = i + 1
        while vs < n && ByteClass.isWhitespace(p[vs]) { vs += 1 }
        var ve = n
        while ve > vs && ByteClass.isWhitespace(p[ve - 1]) { ve -= 1 }
        if !ByteClass.isValidFieldValue(p, vs, ve) { return .failure(.invalidFieldValue) }
        return .success(FieldLineSplit(nameLength: i, valueStart: vs, valueEnd: ve))
    }

    /// Parses one field line into `request`, interpreting the fields that frame the message.
    mutating func parseFieldLine(_ line: UnsafeRawBufferPointer, _ request: HTTPRequest, _ limits: HTTP1Limits) -> HTTP1Error? {
        guard let raw = line.baseAddress else { return .missingColon }
        let p = raw.assumingMemoryBound(to: UInt8.self)
        let split: FieldLineSplit
        switch HTTP1Parser.splitFieldLine(p, line.count) {
        case .success(let s): split = s
        case .failure(let e): return e
        }
        fieldLines += 1
        if fieldLines > limits.maxFieldCount { return .headTooLarge }
        let name = UnsafeRawBufferPointer(start: p, count: split.nameLength)
        let value = UnsafeRawBufferPointer(start: p + split.valueStart, count: split.valueEnd - split.valueStart)
        let token = HeaderToken.classify(name)
        switch token {
        case .host:
            // RFC 9112 §3.2: more than one Host, or an invalid value, MUST get 400. Host is
            // kept as the authority, not as a field (like Go). An empty value is valid (the
            // target has no authority); Caddy answers it later with its own 400.
            hostCount += 1
            if hostCount > 1 { return .duplicateHost }
            for b in value where !ByteClass.isHostByte(b) { return .malformedHost }
            if targetForm == .origin || targetForm == .asterisk {
                request.authorityRange = request.appendLine(value)
            }
            return nil
        case .contentLength:
            // RFC 9110 §8.6: Content-Length = 1*DIGIT. Lists (`2, 2`), signs and overflow are
            // invalid; repeated lines with the same value are one value (RFC 9112 §6.3 rule 5
            // lets a recipient accept them), different values are fatal.
            guard let v = HTTP1Parser.parseContentLength(value) else { return .invalidContentLength }
            if let old = contentLength {
                return old == v ? nil : .conflictingContentLength
            }
            contentLength = v
        case .transferEncoding:
            transferEncodingLines += 1
            transferEncodingIsChunked = ASCII.equalsLowercase(value, "chunked")
        case .connection:
            // RFC 9112 §9.3 / §9.6: `close` ends the connection after this response;
            // `keep-alive` asks an HTTP/1.0 connection to persist.
            var close = false
            var keep = false
            ByteClass.forEachListElement(value) { el in
                if ASCII.equalsLowercase(el, "close") {
                    close = true
                } else if ASCII.equalsLowercase(el, "keep-alive") {
                    keep = true
                }
            }
            if close { connectionClose = true }
            if keep { connectionKeepAlive = true }
        case .expect:
            // RFC 9110 §10.1.1: the only expectation is 100-continue; an empty value is
            // ignored (Go does the same).
            if !value.isEmpty {
                if ASCII.equalsLowercase(value, "100-continue") {
                    expectContinue = true
                } else {
                    expectOther = true
                }
            }
        default:
            break
        }
        request.fields.append(name: name, value: value, token: token)
        return nil
    }

    /// 1*DIGIT as Int64, or nil.
    @inline(__always)
    static func parseContentLength(_ v: UnsafeRawBufferPointer) -> Int64? {
        guard !v.isEmpty, v.count <= 19 else { return nil }
        var r: Int64 = 0
        for b in v {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            let (m, o1) = r.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(b &- 0x30))
            if o1 || o2 { return nil }
            r = s
        }
        return r
    }

    /// Checks made once the whole head is in: Host presence, framing, expectations, and the
    /// connection's persistence.
    mutating func finishHead(_ request: HTTPRequest) -> HTTP1Error? {
        // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host
        // (Go requires it even with an absolute-form target).
        if request.version == .http1_1 && hostCount == 0 { return .missingHost }
        if transferEncodingLines > 0 {
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
            if request.version == .http1_0 { return .transferEncodingOnHTTP10 }
            // RFC 9112 §6.1: a server MAY reject CL + TE; it MUST close after responding.
            // Rejecting removes the request-smuggling ambiguity entirely.
            if contentLength != nil { return .contentLengthWithTransferEncoding }
            // RFC 9112 §6.1: chunked must be the final (here: only) coding; other codings are
            // not implemented (501, like Go).
            if transferEncodingLines != 1 || !transferEncodingIsChunked { return .unsupportedTransferEncoding }
            framing = .chunked
        } else if let cl = contentLength, cl > 0 {
            framing = .length(cl)
        } else {
            framing = .none
        }
        if expectOther { return .unsupportedExpectation }
        request.contentLength = contentLength
        request.hasStreamingBody = framing == .chunked
        // RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`.
        if request.version == .http1_1 {
            keepAlive = !connectionClose
        } else {
            keepAlive = connectionKeepAlive && !connectionClose
        }
        return nil
    }
}

/// Why the connection rejected a request. Each case maps to the status (and the reason suffix
/// Go puts after the status text) the client receives before the connection closes.
package enum HTTP1Error: Error, Sendable, Equatable {
    // Request line (RFC 9112 §3).
    /// Malformed request line (missing parts, double spaces, bad version syntax).
    case invalidRequestLine
    /// A method byte that is not a `tchar` (RFC 9110 §9.1).
    case invalidMethod
    /// Method longer than `HTTP1Limits.maxMethodLength` (405, like Caddy).
    case methodTooLong
    /// A target that is not origin-, absolute-, authority- (CONNECT) or asterisk- (OPTIONS)
    /// form, or has CTL/space bytes or a bad percent escape in its path (RFC 9112 §3.2).
    case invalidTarget
    /// Target longer than `HTTP1Limits.maxTargetLength` (RFC 9112 §3: 414).
    case targetTooLong
    /// `GET /` with no version: HTTP/0.9 is not supported.
    case http09
    /// Major version other than 1 (RFC 9110 §15.6.6: 505).
    case unsupportedVersion

    // Field lines (RFC 9112 §5, RFC 9110 §5).
    /// No Host on HTTP/1.1 (RFC 9112 §3.2: MUST respond 400).
    case missingHost
    /// More than one Host field line (RFC 9112 §3.2: MUST respond 400).
    case duplicateHost
    /// Host value with bytes outside Go's host set (RFC 9110 §7.2, RFC 3986 §3.2.2).
    case malformedHost
    /// A field name with a non-`tchar` byte, including whitespace before the colon
    /// (RFC 9112 §5.1: MUST respond 400).
    case invalidFieldName
    /// An empty field name (`: x`).
    case emptyFieldName
    /// A field line without a colon.
    case missingColon
    /// NUL, CR, LF or another CTL in a field value (RFC 9110 §5.5).
    case invalidFieldValue
    /// A line starting with whitespace: obs-fold, or whitespace before the first field
    /// (RFC 9112 §5.2: a server MAY reject obs-fold with 400; §2.2: MUST reject or consume).
    case obsFold
    /// Head larger than `HTTP1Limits.maxHeadBytes` or more than `maxFieldCount` fields (431).
    case headTooLarge

    // Framing (RFC 9112 §6).
    /// Content-Length that is not 1*DIGIT, overflows, or lists values (RFC 9110 §8.6).
    case invalidContentLength
    /// Several Content-Length field lines with different values (RFC 9112 §6.3 rule 5).
    case conflictingContentLength
    /// Content-Length together with Transfer-Encoding (RFC 9112 §6.1: MAY reject; we do).
    case contentLengthWithTransferEncoding
    /// Transfer-Encoding on an HTTP/1.0 request (RFC 9112 §6.1: faulty framing).
    case transferEncodingOnHTTP10
    /// Transfer-Encoding other than a single final `chunked` (RFC 9112 §6.1: 501).
    case unsupportedTransferEncoding
    /// Expect with anything but `100-continue` (RFC 9110 §10.1.1: 417).
    case unsupportedExpectation
    /// A malformed chunked body: bad size, overflow, missing CRLF, bad trailer
    /// (RFC 9112 §7.1).
    case invalidChunkedBody
    /// Trailer section larger than the limits.
    case trailersTooLarge
    /// The request head did not complete within the read-header timeout (408).
    case headTimeout

    /// The status code sent for this error.
    package var status: Int {
        switch self {
        case .methodTooLong: return 405
        case .targetTooLong: return 414
        case .unsupportedVersion: return 505
        case .headTooLarge: return 431
        case .unsupportedTransferEncoding: return 501
        case .unsupportedExpectation: return 417
        case .headTimeout: return 408
        default: return 400
        }
    }

    /// The text Go appends to the status line and body after `": "`, or nil.
    package var reason: StaticString? {
        switch self {
        case .missingHost: return "missing required Host header"
        case .malformedHost: return "malformed Host header"
        case .invalidFieldName: return "invalid header name"
        case .unsupportedVersion: return "unsupported protocol version"
        default: return nil
        }
    }
}

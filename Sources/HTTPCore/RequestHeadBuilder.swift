import IOCore

/// Fills an `HTTPRequest` from the decoded fields of an HTTP/2 or HTTP/3 request header
/// section (RFC 9113 §8.3, RFC 9114 §4.3.1), one field at a time, and accounts the section's
/// size. Stored inline in the (pooled) stream object and reset with it; its only storage is
/// the cookie buffer, which keeps its capacity, so a request allocates nothing here.
///
/// What it does not do: validate. nghttp2 and nghttp3 check every field before the stream sees
/// it (lower-case names, no connection-specific fields, `te` only `trailers`, pseudo-fields
/// present, single, known and before regular fields, `content-length` digits and consistent)
/// and reset the stream with their protocol's error code (RFC 9113 §8.1.1 PROTOCOL_ERROR,
/// RFC 9114 §4.1.2 H3_MESSAGE_ERROR); what reaches here is well-formed.
///
/// The two protocols differ only in what the stream passes in and which results it reads:
/// - the section-size limit: HTTP/2 uses SETTINGS_MAX_HEADER_LIST_SIZE, HTTP/3
///   SETTINGS_MAX_FIELD_SECTION_SIZE (both count name + value + 32 per field);
/// - `decodedLimit`: HTTP/2 passes `HTTP2Limits.maxDecodedHeaderBytes` (an HPACK bomb,
///   counted over the header and trailer sections together, is a connection error), HTTP/3
///   passes `Int.max` (no such cap; the 431 path still applies);
/// - `expectContinue` is read by both (`100 Continue` when the handler starts reading);
///   `isAsterisk` by HTTP/2 only (Go's answer to `OPTIONS *`): Caddy's HTTP/3 server (quic-go)
///   routes `OPTIONS *` like any request, and so does Berth's.
///
/// The functions are ordinary `package` calls, not `@inlinable`: each runs wholly inside
/// HTTPCore (where `HTTPRequest.appendLine`, `HeaderToken.classify` and `HTTPMethod.classify`
/// inline into it), so a field costs the stream one call.
public struct RequestHeadBuilder {
    /// Size of the header section so far: name + value + 32 per field (RFC 9113 §6.5.2,
    /// RFC 9114 §4.2.2), pseudo-fields included.
    package private(set) var headBytes = 0
    /// Regular (non-pseudo) fields so far, against the field-count limit.
    package private(set) var headFields = 0
    /// Size of the trailer section so far, counted the same way.
    package private(set) var trailerBytes = 0
    /// The header section passed the size or field-count limit: the request is answered 431
    /// and later fields are only counted.
    package private(set) var tooLarge = false
    /// `:authority` was present (it wins over `host`).
    package private(set) var sawAuthority = false
    /// `:method` is HEAD.
    package private(set) var isHEAD = false
    /// `:path` is `*` (HTTP/2 answers `OPTIONS *` itself).
    package private(set) var isAsterisk = false
    /// An `expect: 100-continue` field (HTTP/2 and HTTP/3 send `100 Continue` when the handler
    /// reads); cleared by the stream once answered.
    package var expectContinue = false
    /// `cookie` crumbs, joined with "; " (RFC 9113 §8.2.3, RFC 9114 §4.2.1) into one field by
    /// `complete`.
    package let cookies: ByteBuffer

    package init() {
        cookies = ByteBuffer(capacity: 64)
    }

    /// Forgets the request, keeping storage.
    package mutating func reset() {
        headBytes = 0
        headFields = 0
        trailerBytes = 0
        tooLarge = false
        sawAuthority = false
        isHEAD = false
        isAsterisk = false
        expectContinue = false
        cookies.clear()
    }

    /// Takes one decoded field of the request's header section into `request`. Past
    /// `maxSectionSize` or `maxFields` regular fields, `tooLarge` is set and fields are only
    /// counted from then on. Returns false when the section passed `decodedLimit` (the field
    /// is then not stored; HTTP/2 ends the connection).
    package mutating func addField(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, to request: HTTPRequest,
        maxSectionSize: Int, maxFields: Int, decodedLimit: Int
    ) -> Bool {
        headBytes &+= name.count &+ value.count &+ 32
        if headBytes > decodedLimit { return false }
        if tooLarge { return true }
        if headBytes > maxSectionSize {
            tooLarge = true
            return true
        }
        if name.count > 0 && name[0] == 0x3A {
            addPseudo(name, value, request)
            return true
        }
        headFields &+= 1
        if headFields > maxFields {
            tooLarge = true
            return true
        }
        let token = HeaderToken.classify(name)
        switch token {
        case .host:
            // RFC 9113 §8.3.1, RFC 9114 §4.3.1: :authority wins over Host; Host alone stands
            // in for it. Like HTTP/1, Host is kept as the authority, not as a field.
            if !sawAuthority && request.authorityRange == nil {
                request.authorityRange = request.appendLine(value)
            }
            return true
        case .cookie:
            if !cookies.isEmpty { cookies.append("; ") }
            cookies.append(value)
            return true
        case .contentLength:
            // The library checked it is 1*DIGIT and holds DATA to it (RFC 9113 §8.1.1,
            // RFC 9114 §4.1.2).
            var v: Int64 = 0
            for b in value where b >= 0x30 && b <= 0x39 { v = v &* 10 &+ Int64(b &- 0x30) }
            request.contentLength = v
        case .expect:
            if ASCII.equalsLowercase(value, "100-continue") { expectContinue = true }
        default:
            break
        }
        request.fields.append(name: name, value: value, token: token)
        return true
    }

    /// The pseudo-fields. The library let through only known ones, each once, before any
    /// regular field; names are lower case.
    private mutating func addPseudo(
        _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, _ request: HTTPRequest
    ) {
        switch name.count {
        case 7 where RequestHeadBuilder.equals(name, ":method"):
            request.methodRange = request.appendLine(value)
            request.method = HTTPMethod.classify(value)
            isHEAD = request.method == .HEAD
        case 5 where RequestHeadBuilder.equals(name, ":path"):
            // Origin-form path and query, or `*` for OPTIONS (RFC 9113 §8.3.1,
            // RFC 9114 §4.3.1).
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
        case 10 where RequestHeadBuilder.equals(name, ":authority"):
            sawAuthority = true
            request.authorityRange = request.appendLine(value)
        default:
            // :scheme is implied by the connection (`ConnectionInfo.isTLS`; always https on
            // QUIC); :protocol is refused by the libraries (extended CONNECT is not enabled).
            break
        }
    }

    /// The header section ended: the cookie crumbs become one `cookie` field, the request's
    /// body kind is set from `bodyEnded` (END_STREAM / FIN with the section) and
    /// `content-length`, and a CONNECT (no `:path`, RFC 9113 §8.5, RFC 9114 §4.4) targets its
    /// authority.
    package mutating func complete(_ request: HTTPRequest, bodyEnded: Bool) {
        if !cookies.isEmpty {
            let name: StaticString = "cookie"
            request.fields.append(
                name: UnsafeRawBufferPointer(start: name.utf8Start, count: 6), value: cookies.readable, token: .cookie)
            cookies.clear()
        }
        request.hasStreamingBody = !bodyEnded && request.contentLength == nil
        if request.targetRange.isEmpty && request.method == .CONNECT, let a = request.authorityRange {
            request.targetRange = a
            request.pathRange = a.upperBound..<a.upperBound
        }
    }

    /// Takes one decoded field of the request's trailer section into `pipe.trailers`; past
    /// `maxSectionSize` (this section alone) or `maxFields` fields the body fails instead
    /// (`pipe.trailersTooLarge`) of losing fields. Returns false when the header and trailer
    /// sections together passed `decodedLimit` (the field is then not stored).
    package mutating func addTrailer(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, to pipe: inout RequestBodyPipe,
        maxSectionSize: Int, maxFields: Int, decodedLimit: Int
    ) -> Bool {
        let size = name.count &+ value.count &+ 32
        if headBytes &+ trailerBytes &+ size > decodedLimit { return false }
        trailerBytes &+= size
        if pipe.trailersTooLarge { return true }
        if trailerBytes > maxSectionSize || pipe.trailers.count >= maxFields {
            pipe.trailersTooLarge = true
            return true
        }
        pipe.trailers.append(name: name, value: value, token: HeaderToken.classify(name))
        return true
    }

    @inline(__always)
    static func equals(_ a: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        guard a.count == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for i in 0..<a.count where a[i] != p[i] { return false }
        return true
    }

}

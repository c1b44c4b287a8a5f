import HTTPCore
import IOCore
import Testing

@testable import Upstream

/// A body source that is never read (only its presence matters to the framing).
final class IdleBody: RequestBodySource {
    func startReading(_ reader: any RequestBodyReader) {}
    func pauseReading() {}
    func resumeReading() {}
    var trailers: HTTPFields { HTTPFields() }
}

@Suite("Request trailers towards the upstream")
struct TrailerFramingTests {
    let body = IdleBody()

    func request(_ version: HTTPVersion, fields: [(String, String)], length: Int64?, streaming: Bool) -> HTTPRequest {
        let r = makeRequest("POST", "/up", fields: fields)
        r.version = version
        r.contentLength = length
        r.hasStreamingBody = streaming
        r.bodySource = body
        return r
    }

    func head(_ r: HTTPRequest) -> (String, String) {
        let up = try! UpstreamAddress.parse("whoami:80")[0]
        var f = HTTPFields()
        RequestHead.buildFields(r, ProxyConfiguration(), upstream: up, upgrade: nil, into: &f, scratch: ByteBuffer())
        let a = ByteBuffer()
        RequestHead.encode(r, fields: f, framing: RequestHead.framing(r), into: a)
        var c = ProxyConfiguration()
        c.upstreams = [up]
        let proxy = ReverseProxy(c)
        let b = ByteBuffer()
        RequestHead.encodeDirect(r, proxy: proxy, upstream: proxy.hosts[0], upgrade: nil, framing: RequestHead.framing(r), into: b)
        return (String(decoding: a.readable, as: UTF8.self), String(decoding: b.readable, as: UTF8.self))
    }

    /// An HTTP/2 or HTTP/3 request that announces trailers goes chunked even with a
    /// content-length, with its `Trailer` announcement; both encoders agree.
    @Test func announcedTrailersAfterALengthMakeTheBodyChunked() {
        for v in [HTTPVersion.http2, .http3] {
            let r = request(v, fields: [("content-length", "4"), ("trailer", "x-sum")], length: 4, streaming: false)
            #expect(RequestHead.framing(r) == .chunked)
            let (a, b) = head(r)
            #expect(a == b)
            #expect(a.contains("\r\nTrailer: x-sum\r\n") && a.contains("\r\nTransfer-Encoding: chunked\r\n"))
            #expect(!a.contains("Content-Length"))
        }
    }

    /// Without the announcement a length stays a length (trailers sent anyway are dropped,
    /// as Go's transport does), and HTTP/1 requests with a length never have trailers.
    @Test func otherwiseTheLengthIsKept() {
        let h2 = request(.http2, fields: [("content-length", "4")], length: 4, streaming: false)
        #expect(RequestHead.framing(h2) == .length(4))
        let h1 = request(.http1_1, fields: [("Content-Length", "4"), ("Trailer", "X-Sum")], length: 4, streaming: false)
        #expect(RequestHead.framing(h1) == .length(4))
        let (a, b) = head(h1)
        #expect(a == b && !a.contains("Trailer:") && a.contains("Content-Length: 4"))
        // No length: chunked, with the announcement passed on.
        let h3 = request(.http3, fields: [("trailer", "x-sum")], length: nil, streaming: true)
        #expect(RequestHead.framing(h3) == .chunked)
        #expect(head(h3).0.contains("\r\nTrailer: x-sum\r\n"))
    }

    @Test func forbiddenTrailerFields() {
        for t in [HeaderToken.contentLength, .transferEncoding, .host, .connection, .te, .trailer, .keepAlive] {
            #expect(HopByHop.isForbiddenTrailer(t))
        }
        #expect(!HopByHop.isForbiddenTrailer(.other) && !HopByHop.isForbiddenTrailer(.contentType))
    }
}

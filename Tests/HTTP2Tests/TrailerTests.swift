import CNGHTTP2
import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP2

/// Reads the body; at its end answers with a streamed body and echoes the request's trailers
/// as the response's (`x-echo-<name>`), the body being `n=<len> trailers=<name=value;...>`.
final class TrailerEcho: RequestBodyReader {
    let response: HTTPResponse
    let source: any RequestBodySource
    var count = 0
    var failure: RequestBodyError? = nil

    init(response: HTTPResponse, source: any RequestBodySource) {
        self.response = response
        self.source = source
    }

    func requestBody(_ bytes: UnsafeRawBufferPointer) { count += bytes.count }

    func requestBodyFinished() {
        let pairs = source.trailers.pairs
        response.sendHead(contentLength: nil)
        var t = "n=\(count) trailers=" + pairs.map { "\($0.0)=\($0.1)" }.joined(separator: ";")
        t.withUTF8 { response.write(UnsafeRawBufferPointer($0)) }
        for (n, v) in pairs { response.trailers.append(name: "x-echo-" + n, value: v) }
        response.finish()
    }

    func requestBodyFailed(_ error: RequestBodyError) {
        failure = error
        response.status = 400
        response.sendEmpty()
    }
}

@Suite struct TrailerTests {
    static func echoHarness(_ readers: Box<[TrailerEcho]>) -> Harness {
        Harness(
            .custom { req, res in
                guard let src = req.bodySource else {
                    res.send("no body")
                    return .done
                }
                let r = TrailerEcho(response: res, source: src)
                readers.value.append(r)
                src.startReading(r)
                return .pending
            })
    }

    @Test func requestTrailersReachTheHandlerAndComeBackAsResponseTrailers() {
        let readers = Box<[TrailerEcho]>([])
        let h = TrailerTests.echoHarness(readers)
        h.start()
        let id = h.client.request(
            "POST", "/up", headers: [("content-length", "4"), ("trailer", "x-sum")], body: Array("data".utf8),
            trailers: [("x-sum", "1234"), ("x-other", "o")])
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == 200)
        #expect(r.bodyString == "n=4 trailers=x-sum=1234;x-other=o")
        // The response's trailers: a HEADERS frame after the DATA, ending the stream.
        #expect(r.trailers.map { "\($0.0)=\($0.1)" } == ["x-echo-x-sum=1234", "x-echo-x-other=o"])
        #expect(r.ended && r.closeCode == 0)
        // The `trailer` announcement stays a request header field.
        #expect(readers.value.count == 1)
    }

    @Test func pooledStreamForgetsTheTrailersOfTheLastRequest() {
        let readers = Box<[TrailerEcho]>([])
        let h = TrailerTests.echoHarness(readers)
        h.start()
        let a = h.client.request("POST", "/a", body: Array("xy".utf8), trailers: [("x-a", "1")])
        h.pump()
        #expect(h.client.responses[a]?.bodyString == "n=2 trailers=x-a=1")
        let b = h.client.request("POST", "/b", body: Array("xyz".utf8))
        h.pump()
        let r = h.client.responses[b]!
        #expect(r.bodyString == "n=3 trailers=")
        #expect(r.trailers.isEmpty && r.ended)
    }

    @Test func tooManyTrailerFieldsFailTheBody() {
        let readers = Box<[TrailerEcho]>([])
        let h = Harness(
            .custom { req, res in
                let r = TrailerEcho(response: res, source: req.bodySource!)
                readers.value.append(r)
                req.bodySource!.startReading(r)
                return .pending
            }, configure: { $0.limits.maxHeaderFields = 3 })
        h.start()
        let many = (0..<5).map { ("x-t\($0)", "v") }
        let id = h.client.request("POST", "/", body: Array("data".utf8), trailers: many)
        h.pump()
        #expect(readers.value.first?.failure == .invalidFraming)
        #expect(h.client.responses[id]?.status == 400)
    }
}

final class Box<T> {
    var value: T
    init(_ v: T) { value = v }
}

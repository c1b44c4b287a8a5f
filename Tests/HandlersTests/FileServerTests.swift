import Foundation
import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// file_server basics against caddy-behavior §11: headers of a 200, HEAD, index files,
/// canonical redirects, 404/405/400, status override, pass_thru.
@Suite struct FileServerTests {
    let fx = FSFixture()

    @Test func servesAFileWithCaddysHeaders() {
        let r = fsGet(fx.handler(), "/file.txt")
        #expect(r.error == 0)
        #expect(r.status == 200)
        #expect(r.text == "hello world")
        #expect(r.field("Content-Type") == "text/plain; charset=utf-8")
        #expect(r.field("Etag") == "\"cy3vy63hrojk-b\"")
        #expect(r.field("Last-Modified") == "Tue, 02 Jan 2024 03:04:05 GMT")
        #expect(r.field("Accept-Ranges") == "bytes")
        #expect(r.field("Vary") == "Accept-Encoding")
        #expect(r.field("Content-Range") == nil)
    }

    @Test func headSendsLengthWithoutBody() {
        let r = fsGet(fx.handler(), "/data.bin", method: "HEAD")
        #expect(r.status == 200)
        #expect(r.sink.declared == .some(5000))
        #expect(r.sink.body.isEmpty)
        #expect(r.field("Content-Type") == "application/octet-stream")
    }

    @Test func rootComesFromTheRootVariable() {
        let h = FileServerHandler(FileServerHandler.Settings())
        let req = fsRequest("GET", "/file.txt")
        req.vars.set("root", fx.root)
        let r = fsRun(h, req)
        #expect(r.status == 200)
        #expect(r.text == "hello world")
    }

    @Test func indexFilesAndDirectories() {
        let h = fx.handler()
        #expect(fsGet(h, "/").text == "<h1>hi</h1>\n")
        let sub = fsGet(h, "/sub/")
        #expect(sub.text == "sub index\n")
        #expect(sub.field("Content-Type") == "text/plain; charset=utf-8")
        // A directory without an index (browse off) is 404.
        #expect(fsGet(h, "/empty/").error == 404)
        // `/index.html` is served directly, no redirect.
        #expect(fsGet(h, "/index.html").status == 200)
        // Custom index names.
        let custom = fx.handler { $0.indexNames = ["x.json"] }
        #expect(fsGet(custom, "/deep/er/est/").text == "{\"a\":1}")
        #expect(fsGet(custom, "/").error == 404)
    }

    @Test func directoryWithoutSlashRedirectsKeepingTheQuery() {
        let r = fsGet(fx.handler(), "/sub?x=1&y=2")
        #expect(r.status == 308)
        #expect(r.field("Location") == "/sub/?x=1&y=2")
        #expect(r.field("Content-Type") == "text/html; charset=utf-8")
        #expect(r.text == "<a href=\"/sub/?x=1&amp;y=2\">Permanent Redirect</a>.\n\n")
        let head = fsGet(fx.handler(), "/sub", method: "HEAD")
        #expect(head.status == 308)
        #expect(head.sink.declared == .some(nil))
        #expect(head.field("Content-Type") == "text/html; charset=utf-8")
        let post = fsGet(fx.handler(), "/sub", method: "POST")
        #expect(post.status == 308)
        #expect(post.field("Content-Type") == nil)
        #expect(post.text.isEmpty)
    }

    @Test func fileWithSlashRedirectsToTheFile() {
        let r = fsGet(fx.handler(), "/file.txt/")
        #expect(r.status == 308)
        #expect(r.field("Location") == "/file.txt")
        // An encoded slash counts as a slash (the decoded path ends with `/`).
        #expect(fsGet(fx.handler(), "/sub%2F").text == "sub index\n")
        #expect(fsGet(fx.handler(), "/sub%2Findex.txt").text == "sub index\n")
    }

    @Test func redirectsNeverBecomeProtocolRelative() {
        let r = fsGet(fx.handler(), "//sub")
        #expect(r.status == 308)
        #expect(r.field("Location") == "/sub/")
        let r2 = fsGet(fx.handler(), "///sub")
        #expect(r2.field("Location") == "/sub/")
    }

    @Test func canonicalRedirectsCanBeDisabled() {
        let h = fx.handler { $0.canonicalURIs = false }
        #expect(fsGet(h, "/sub").text == "sub index\n")
        #expect(fsGet(h, "/file.txt/").text == "hello world")
    }

    @Test func noRedirectWhenARewriteChangedTheFileName() {
        let req = fsRequest("GET", "/pretty")
        Array("/sub".utf8).withUnsafeBytes { req.setTarget(path: $0, query: nil) }
        let r = fsRun(fx.handler(), req)
        #expect(r.text == "sub index\n")
    }

    @Test func missingIs404AndPassThruRunsTheNextHandler() {
        let r = fsGet(fx.handler(), "/nope")
        #expect(r.error == 404)
        #expect(r.sink.status == 0)
        #expect(r.response.headSent == false)
        let p = fsRun(fx.handler { $0.passThru = true }, fsRequest("GET", "/nope"))
        if case .next = p.result {} else { Issue.record("pass_thru should return .next") }
        #expect(p.error == 0)
    }

    @Test func otherMethodsAre405WithAllow() {
        let r = fsGet(fx.handler(), "/file.txt", method: "POST")
        #expect(r.error == 405)
        #expect(r.response.fields.value(named: "Allow") == "GET, HEAD")
        #expect(r.response.fields.value(named: "Vary") == "Accept-Encoding")
        // The existence checks come first.
        #expect(fsGet(fx.handler(), "/nope", method: "DELETE").error == 404)
        #expect(fsGet(fx.handler(), "/sub", method: "PUT").status == 308)
    }

    @Test func nulAndOverlongPathsAre400() {
        #expect(fsGet(fx.handler(), "/a%00b").error == 400)
        #expect(fsGet(fx.handler(), "/" + String(repeating: "a/", count: 3000)).error == 400)
        // ENOTDIR, as Caddy's stat error mapping gives.
        #expect(fsGet(fx.handler(), "/file.txt/x").error == 400)
        #expect(fsGet(fx.handler(), "/" + String(repeating: "a", count: 300)).error == 400)
    }

    @Test func statusOverride() {
        let h = fx.handler { $0.status = "404" }
        let r = fsGet(h, "/file.txt")
        #expect(r.status == 404)
        #expect(r.text == "hello world")
        let err = fsRun(fx.handler(), {
            let q = fsRequest("GET", "/file.txt")
            return q
        }())
        #expect(err.status == 200)
        // In an error route the error's status is used and other methods are allowed.
        let sink = FSSink()
        let response = HTTPResponse(sink: sink)
        response.errorStatus = 503
        _ = fx.handler().handle(fsRequest("POST", "/file.txt"), response)
        #expect(sink.status == 503)
        #expect(sink.text == "hello world")
    }

    @Test func emptyFileAndUnknownExtensions() {
        let e = fsGet(fx.handler(), "/empty.txt")
        #expect(e.status == 200)
        #expect(e.sink.declared == .some(0) || e.sink.body.isEmpty)
        let n = fsGet(fx.handler(), "/noext")
        #expect(n.field("Content-Type") == nil)
        #expect(fsGet(fx.handler(), "/.hidden").field("Content-Type") == nil)
        // Case-insensitive extension lookup.
        #expect(fsGet(fx.handler(), "/page.HTML").field("Content-Type") == "text/html; charset=utf-8")
    }

    @Test func dotfilesAreServedLikeCaddy() {
        #expect(fsGet(fx.handler(), "/.hidden").text == "secret\n")
        #expect(fsGet(fx.handler(), "/.git/config").text == "[core]\n")
    }

    @Test func filesWithSpacesAndEncodedNames() {
        #expect(fsGet(fx.handler(), "/a%20b.txt").text == "space\n")
    }

    @Test func zeroCopyPathIsUsedWhenTheSinkOffersIt() {
        let r = fsRun(fx.handler(), fsRequest("GET", "/data.bin"), zeroCopy: true)
        #expect(r.sink.region?.count == 5000)
        #expect(r.sink.body.count == 5000)
        #expect(r.response.bodyBytes == 5000)
        #expect(r.response.finished)
    }

    @Test func largeFilesStreamUnderFlowControl() throws {
        let size = 3 * 1024 * 1024 + 17
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        try Data(bytes).write(to: URL(fileURLWithPath: fx.root + "/big.bin"))
        let r = fsRun(fx.handler(), fsRequest("GET", "/big.bin"), window: 256 * 1024)
        #expect(r.sink.declared == .some(Int64(size)))
        #expect(r.sink.finished)
        #expect(r.sink.body == bytes)
        if case .pending = r.result {} else { Issue.record("a flow-controlled large body should be pending") }
    }
}

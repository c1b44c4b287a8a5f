import Caddyfile
import Foundation
import HTTPCore
import IOCore
import Testing

@testable import Config
@testable import Handlers

/// `root` and `file_server` adapt to the JSON `caddy adapt` (v2.11.7) prints, and the built
/// handler tree serves files.
@Suite struct FileServerDirectiveTests {
    static func routes(_ caddyfile: String, file: String = "c1") throws -> Any {
        let c = try CaddyfileAdapter.adapt(Array(caddyfile.utf8), filename: file, environment: [:])
        let json = c.json.serialized()
        let obj = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let servers = ((obj["apps"] as! [String: Any])["http"] as! [String: Any])["servers"] as! [String: Any]
        return (servers.values.first as! [String: Any])["routes"]!
    }

    /// Every handler object of `routes` (subroutes flattened), in order: route grouping and
    /// site wrapping are the adapter's business, the handlers are this directive's.
    static func handlers(_ routes: Any) -> [[String: Any]] {
        var out: [[String: Any]] = []
        for r in routes as? [[String: Any]] ?? [] {
            for h in r["handle"] as? [[String: Any]] ?? [] {
                if h["handler"] as? String == "subroute" { out += handlers(h["routes"]!) } else { out.append(h) }
            }
        }
        return out
    }

    static func same(_ a: Any, _ expectedJSON: String) throws -> Bool {
        let b = try JSONSerialization.jsonObject(with: Data(expectedJSON.utf8))
        return NSArray(array: handlers(a)).isEqual(to: handlers(b))
    }

    @Test func rootAndFileServer() throws {
        let r = try Self.routes(":8080 {\n\troot * /static\n\tfile_server\n}\n")
        #expect(try Self.same(r, #"[{"handle": [{"handler": "vars", "root": "/static"}, {"handler": "file_server", "hide": ["./c1"]}]}]"#))
    }

    @Test func everyOption() throws {
        let site = """
            :8081 {
            \troot /x /static2
            \troot @api /api
            \t@api path /api/*
            \tfile_server /y* browse {
            \t\thide .git *.bak
            \t\tindex a.html b.html
            \t\tprecompressed gzip br
            \t\tstatus 404
            \t\tdisable_canonical_uris
            \t\tpass_thru
            \t\troot /r
            \t}
            }

            """
        let r = try Self.routes(site, file: "c2")
        let expected = #"""
            [{"group": "group1", "handle": [{"handler": "vars", "root": "/api"}], "match": [{"path": ["/api/*"]}]},
             {"group": "group1", "handle": [{"handler": "vars", "root": "/static2"}], "match": [{"path": ["/x"]}]},
             {"handle": [{"browse": {}, "canonical_uris": false, "handler": "file_server", "hide": [".git", "*.bak", "./c2"],
               "index_names": ["a.html", "b.html"], "pass_thru": true, "precompressed": {"br": {}, "gzip": {}},
               "precompressed_order": ["gzip", "br"], "root": "/r", "status_code": 404}], "match": [{"path": ["/y*"]}]}]
            """#
        let got = String(decoding: try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]), as: UTF8.self)
        #expect(try Self.same(r, expected), "\(got)")
    }

    @Test func browseBlock() throws {
        let site = ":8082 {\n\tfile_server {\n\t\tbrowse {\n\t\t\tsort size desc\n\t\t\tfile_limit 50\n\t\t\treveal_symlinks\n\t\t}\n\t\tprecompressed\n\t}\n}\n"
        let r = try Self.routes(site, file: "c3")
        #expect(try Self.same(r, #"""
            [{"handle": [{"browse": {"file_limit": 50, "reveal_symlinks": true, "sort": ["size", "desc"]}, "handler": "file_server",
              "hide": ["./c3"], "precompressed": {"br": {}, "gzip": {}, "zstd": {}}, "precompressed_order": ["br", "zstd", "gzip"]}]}]
            """#))
    }

    @Test func errors() throws {
        func err(_ body: String) -> String {
            do {
                _ = try CaddyfileAdapter.adapt(Array(":80 {\n\(body)\n}\n".utf8), filename: "Caddyfile", environment: [:])
                return ""
            } catch { return error.description }
        }
        #expect(err("file_server {\n\tbrowse\n\tbrowse\n}").contains("browsing is already configured"))
        #expect(err("file_server foo").contains("wrong argument count"))
        #expect(err("file_server {\n\tbogus\n}").contains("unknown subdirective 'bogus'"))
        #expect(err("root").contains("too few arguments; must have at least a root path"))
        #expect(err("root a b c").contains("too many arguments"))
        #expect(err("file_server {\n\tprecompressed lzma\n}").contains("http.precompressed.lzma"))
        #expect(err("file_server {\n\tbrowse tpl.html\n}").contains("browse template files are not supported"))
        #expect(err("file_server {\n\tfollow_symlinks\n}").isEmpty)
    }

    @Test func configFileIsHiddenAtRunTime() throws {
        let dir = NSTemporaryDirectory() + "berth-fsd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = ":80 {\n\troot * \(dir)\n\tfile_server\n}\n"
        try text.write(toFile: dir + "/Caddyfile", atomically: false, encoding: .utf8)
        try "ok".write(toFile: dir + "/ok.txt", atomically: false, encoding: .utf8)
        let c = try CaddyfileAdapter.adapt(Array(text.utf8), filename: dir + "/Caddyfile", environment: [:])
        let h = try RuntimeBuilder.buildServerHandler(try #require(c.servers.first),
                                                      context: BuildContext(environment: [:], sourceFile: dir + "/Caddyfile"))
        func get(_ path: String) -> (Int, String) {
            final class Sink: ResponseSink {
                var status = 0
                var body: [UInt8] = []
                func sendComplete(_ r: HTTPResponse, body: UnsafeRawBufferPointer) {
                    status = r.status
                    self.body = Array(body)
                }
                func sendHead(_ r: HTTPResponse, contentLength: Int64?) { status = r.status }
                func sendBody(_ r: HTTPResponse, _ b: UnsafeRawBufferPointer) { body += b }
                func finish(_ r: HTTPResponse) {}
            }
            let req = HTTPRequest()
            req.methodRange = Array("GET".utf8).withUnsafeBytes { req.appendLine($0) }
            req.targetRange = Array(path.utf8).withUnsafeBytes { req.appendLine($0) }
            req.pathRange = req.targetRange
            let sink = Sink()
            let resp = HTTPResponse(sink: sink)
            _ = h.handle(req, resp)
            return (sink.status, String(decoding: sink.body, as: UTF8.self))
        }
        #expect(get("/ok.txt") == (200, "ok"))
        #expect(get("/Caddyfile").0 == 404)
    }
}

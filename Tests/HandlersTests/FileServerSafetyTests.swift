import Foundation
import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// No request escapes the root: lexical traversal (as Caddy), symlinks (stricter than Caddy,
/// with both the openat2 path and the component walk), `hide`, special files.
@Suite(.serialized) struct FileServerSafetyTests {
    let fx = FSFixture()

    /// Attack paths that must never return the outside file.
    static let traversal = [
        "/../outside/secret.txt", "/../../etc/passwd", "/%2e%2e/outside/secret.txt", "/%2E%2E/%2e%2e/etc/passwd",
        "/..%2foutside%2fsecret.txt", "/sub/../../outside/secret.txt", "/./../outside/secret.txt",
        "/sub/%2e%2e/%2e%2e/outside/secret.txt", "/..\\outside\\secret.txt", "/%5c..%5coutside%5csecret.txt",
        "/link-out", "/link-abs", "/link-dir-out/secret.txt", "/link-dir-out/", "/link-dir-out",
        "/sub/../link-out", "//../outside/secret.txt", "/.../outside/secret.txt",
    ]

    func assertNoEscape(_ h: FileServerHandler, _ path: String) {
        let r = fsGet(h, path)
        #expect(!r.text.contains("outside secret"), "\(path) leaked")
        #expect(r.status != 200 || r.error == 0, "\(path)")
    }

    @Test func traversalNeverLeavesTheRoot() {
        for walk in [false, true] {
            FileResolver.forceWalk(walk)
            FileServerLocal.current.purge()
            defer {
                FileResolver.forceWalk(false)
                FileServerLocal.current.purge()
            }
            let h = fx.handler()
            for p in Self.traversal {
                assertNoEscape(h, p)
            }
            #expect(fsGet(h, "/link-out").error == 404)
            #expect(fsGet(h, "/link-abs").error == 404)
            #expect(fsGet(h, "/link-dir-out/secret.txt").error == 404)
            // Lexical `..` is cleaned like Caddy, staying inside.
            #expect(fsGet(h, "/sub/../file.txt").text == "hello world")
            #expect(fsGet(h, "/../file.txt").text == "hello world")
            #expect(fsGet(h, "/%2e%2e/file.txt").text == "hello world")
        }
    }

    @Test func symlinksInsideTheRootWork() {
        for walk in [false, true] {
            FileResolver.forceWalk(walk)
            FileServerLocal.current.purge()
            defer {
                FileResolver.forceWalk(false)
                FileServerLocal.current.purge()
            }
            let h = fx.handler()
            #expect(fsGet(h, "/link-in").text == "hello world", "walk=\(walk)")
            #expect(fsGet(h, "/link-dir-in/").text == "sub index\n", "walk=\(walk)")
            #expect(fsGet(h, "/link-dir-in/index.txt").text == "sub index\n", "walk=\(walk)")
            #expect(fsGet(h, "/link-dotdot-in").text == "hello world", "walk=\(walk)")
            // Loops fail like Caddy's stat (ELOOP → 400).
            #expect(fsGet(h, "/loop-a").error == 400, "walk=\(walk)")
        }
    }

    @Test func followSymlinksRestoresCaddysBehaviour() {
        let h = fx.handler { $0.followSymlinks = true }
        #expect(fsGet(h, "/link-out").text == "outside secret\n")
        #expect(fsGet(h, "/link-abs").text == "outside secret\n")
        #expect(fsGet(h, "/link-dir-out/secret.txt").text == "outside secret\n")
        // Lexical traversal stays impossible even then.
        #expect(!fsGet(h, "/../outside/secret.txt").text.contains("outside"))
    }

    @Test func specialFilesAreNotServed() {
        // A FIFO would block open(2); it is opened non-blocking and refused.
        let r = fsGet(fx.handler(), "/fifo")
        #expect(r.error == 404)
    }

    @Test func hide() {
        let h = fx.handler { $0.hide += [".git", "*.bin", fx.root + "/sub"] }
        #expect(fsGet(h, "/Caddyfile").error == 404)
        #expect(fsGet(h, "/.git/config").error == 404)
        #expect(fsGet(h, "/data.bin").error == 404)
        #expect(fsGet(h, "/sub/index.txt").error == 404)
        #expect(fsGet(h, "/sub/").error == 404)
        #expect(fsGet(h, "/file.txt").status == 200)
        // A hidden index file is skipped like a missing one.
        let hi = fx.handler { $0.hide += ["index.html"] }
        #expect(fsGet(hi, "/").error == 404)
        // Relative patterns with a separator are relative to the working directory.
        let cwd = FileManager.default.currentDirectoryPath
        let rel = fx.handler { $0.hide = ["./x-not-here"] }
        #expect(fsGet(rel, "/file.txt").status == 200)
        _ = cwd
    }

    @Test func globMatching() {
        func m(_ p: String, _ s: String) -> Bool {
            Array(p.utf8).withUnsafeBytes { pb in Array(s.utf8).withUnsafeBytes { FSPath.match(pb, $0) } }
        }
        #expect(m("*.txt", "a.txt"))
        #expect(!m("*.txt", "a/b.txt"))
        #expect(m("/srv/*/x", "/srv/a/x"))
        #expect(m("a?c", "abc"))
        #expect(m("[a-c]x", "bx"))
        #expect(!m("[^a-c]x", "bx"))
        #expect(m("\\*", "*"))
        #expect(!m("[", "a"))
        #expect(m("é?", "éa"))
        #expect(m("?", "é"))
    }

    @Test func relativePathCleaning() {
        func rel(_ p: String) -> String {
            let out = ByteBuffer(capacity: 16)
            let tmp = ByteBuffer(capacity: 16)
            Array(p.utf8).withUnsafeBytes { FSPath.appendRelative($0, tmp: tmp, into: out) }
            return String(decoding: out.readable, as: UTF8.self)
        }
        #expect(rel("/") == "")
        #expect(rel("") == "")
        #expect(rel("/a/b") == "a/b")
        #expect(rel("/a/b/") == "a/b")
        #expect(rel("/../a") == "a")
        #expect(rel("//a//b/./c/..") == "a/b")
        #expect(rel("/a/../../..") == "")
        #expect(rel("a") == "a")
    }
}

/// Precompressed sidecars, the open-file cache, browse listings, MIME types.
@Suite(.serialized) struct FileServerFeatureTests {
    let fx = FSFixture()

    @Test func precompressedSidecars() {
        let h = fx.handler { $0.precompressed = ["br", "zstd", "gzip"] }
        let gz = fsGet(h, "/gz/app.css", [("Accept-Encoding", "gzip")])
        #expect(gz.text == "GZIPPED")
        #expect(gz.field("Content-Encoding") == "gzip")
        #expect(gz.field("Content-Type") == "text/css; charset=utf-8")
        #expect(gz.field("Vary") == "Accept-Encoding")
        // Server order breaks ties; q-values win over it.
        #expect(fsGet(h, "/gz/app.css", [("Accept-Encoding", "gzip, br, zstd")]).text == "BROTLI!!")
        #expect(fsGet(h, "/gz/app.css", [("Accept-Encoding", "gzip;q=1, br;q=0.5")]).text == "GZIPPED")
        #expect(fsGet(h, "/gz/app.css", [("Accept-Encoding", "br;q=0, zstd")]).text == "ZSTD")
        let plain = fsGet(h, "/gz/app.css", [("Accept-Encoding", "identity")])
        #expect(plain.field("Content-Encoding") == nil)
        #expect(plain.sink.body.count == 1600)
        // The sidecar's own ETag.
        #expect(gz.field("Etag") != plain.field("Etag"))
        // Off by default (Caddy too): the plain file.
        #expect(fsGet(fx.handler(), "/gz/app.css", [("Accept-Encoding", "gzip")]).field("Content-Encoding") == nil)
    }

    @Test func cacheSeesInPlaceWritesAtOnceAndReplacementsWithinASecond() throws {
        let h = fx.handler()
        #expect(fsGet(h, "/file.txt").text == "hello world")
        // In place: same inode, fstat on every hit.
        try "hello there, world".write(toFile: fx.root + "/file.txt", atomically: false, encoding: .utf8)
        let r = fsGet(h, "/file.txt")
        #expect(r.text == "hello there, world")
        // Replaced by rename: a new inode, noticed at the next revalidation (≤ 1 s).
        try "new file".write(toFile: fx.root + "/tmp.txt", atomically: false, encoding: .utf8)
        rename(fx.root + "/tmp.txt", fx.root + "/file.txt")
        usleep(1_100_000)
        #expect(fsGet(h, "/file.txt").text == "new file")
        // Deleted: 404 after revalidation; created: served after revalidation.
        unlink(fx.root + "/file.txt")
        #expect(fsGet(h, "/created.txt").error == 404)
        try "created".write(toFile: fx.root + "/created.txt", atomically: false, encoding: .utf8)
        usleep(1_100_000)
        #expect(fsGet(h, "/file.txt").error == 404)
        #expect(fsGet(h, "/created.txt").text == "created")
    }

    @Test func rootSwapIsNoticed() throws {
        let base = fx.base
        try FileManager.default.createDirectory(atPath: base + "/r1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/r2", withIntermediateDirectories: true)
        try "one".write(toFile: base + "/r1/v.txt", atomically: false, encoding: .utf8)
        try "two".write(toFile: base + "/r2/v.txt", atomically: false, encoding: .utf8)
        symlink("r1", base + "/current")
        var s = FileServerHandler.Settings()
        s.root = base + "/current"
        let h = FileServerHandler(s)
        #expect(fsGet(h, "/v.txt").text == "one")
        symlink("r2", base + "/next")
        rename(base + "/next", base + "/current")
        usleep(1_100_000)
        #expect(fsGet(h, "/v.txt").text == "two")
    }

    @Test func browseJSONAndHTML() throws {
        let h = fx.handler { $0.browse = FileServerHandler.BrowseConfig() }
        // Without the slash: redirect first.
        #expect(fsGet(h, "/empty").status == 308)
        try "<b>&".write(toFile: fx.root + "/empty/<b>&.txt", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: fx.root + "/empty/dir", withIntermediateDirectories: true)
        let j = fsGet(h, "/empty/", [("Accept", "application/json")])
        #expect(j.status == 200)
        #expect(j.field("Content-Type") == "application/json; charset=utf-8")
        #expect(j.field("Vary") == "Accept, Accept-Encoding")
        #expect(j.field("Last-Modified") != nil)
        let items = try JSONSerialization.jsonObject(with: Data(j.sink.body)) as! [[String: Any]]
        #expect(items.count == 2)
        #expect(items[0]["name"] as? String == "dir/")
        #expect(items[0]["is_dir"] as? Bool == true)
        #expect(items[1]["name"] as? String == "<b>&.txt")
        #expect(items[1]["url"] as? String == "./%3Cb%3E&.txt")
        #expect(items[1]["size"] as? Int == 4)
        #expect(j.text.contains("\\u003cb\\u003e\\u0026.txt"))
        let html = fsGet(h, "/empty/")
        #expect(html.field("Content-Type") == "text/html; charset=utf-8")
        #expect(html.text.contains("&lt;b&gt;&amp;.txt"))
        #expect(!html.text.contains("<b>&.txt"))
        #expect(html.field("Content-Security-Policy") != nil)
        // Sorting by size, descending, sets cookies.
        let sorted = fsGet(h, "/empty/?sort=size&order=desc", [("Accept", "application/json")])
        #expect(sorted.sink.all("Set-Cookie") == ["sort=size; HttpOnly; SameSite=Lax", "order=desc; HttpOnly; SameSite=Lax"])
        let sitems = try JSONSerialization.jsonObject(with: Data(sorted.sink.body)) as! [[String: Any]]
        #expect(sitems.first?["name"] as? String == "<b>&.txt")
        // Hidden entries are left out of listings.
        let hidden = fx.handler {
            $0.browse = FileServerHandler.BrowseConfig()
            $0.hide += ["*.txt"]
        }
        let hj = fsGet(hidden, "/empty/", [("Accept", "application/json")])
        #expect(!hj.text.contains(".txt"))
        // The Caddyfile is never listed.
        let root = fsGet(h, "/empty/../", [("Accept", "application/json")])
        _ = root
        let top = fsGet(fx.handler {
            $0.browse = FileServerHandler.BrowseConfig()
            $0.indexNames = []
        }, "/", [("Accept", "application/json")])
        #expect(!top.text.contains("\"Caddyfile\""))
        #expect(top.text.contains("\"file.txt\""))
        // If-Modified-Since.
        let lm = j.field("Last-Modified")!
        #expect(fsGet(h, "/empty/", [("If-Modified-Since", lm)]).status == 304)
    }

    @Test func mimeTable() {
        let m = MimeTypes.shared
        #expect(m.type(forExtension: ".html") == "text/html; charset=utf-8")
        #expect(m.type(forExtension: ".HTML") == "text/html; charset=utf-8")
        #expect(m.type(forExtension: ".json") == "application/json")
        #expect(m.type(forExtension: ".js") == "text/javascript; charset=utf-8")
        #expect(m.type(forExtension: ".css") == "text/css; charset=utf-8")
        #expect(m.type(forExtension: ".nope-nope") == nil)
        #expect(m.type(forExtension: "") == nil)
        // Without any system database: the embedded mime.types list.
        let embedded = MimeTypes(system: false)
        #expect(embedded.type(forExtension: ".txt") == "text/plain; charset=utf-8")
        #expect(embedded.type(forExtension: ".woff2") == "font/woff2")
        #expect(embedded.type(forExtension: ".html") == "text/html; charset=utf-8")
        #expect(embedded.type(forExtension: ".gz") == "application/gzip")
        func ext(_ s: String) -> String {
            Array(s.utf8).withUnsafeBytes { String(decoding: MimeTypes.ext($0), as: UTF8.self) }
        }
        #expect(ext("/a/b.tar.gz") == ".gz")
        #expect(ext("/a.b/c") == "")
        #expect(ext("/.hidden") == ".hidden")
    }
}

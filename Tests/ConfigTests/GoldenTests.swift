import Foundation
import Testing

@testable import Config

/// Golden files: `Golden/NAME.caddyfile` adapts to `Golden/NAME.json`
/// (`BerthConfig.json.serialized(pretty: true)`), or fails with the text of `Golden/NAME.error`.
/// Run with `BERTH_UPDATE_GOLDEN=1` to rewrite the expectations, then review the diff.
enum Golden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    static let environment = ["SITE": "example.com", "PORT": "8080"]

    /// Every `NAME.caddyfile`, plus the four seed examples as `examples/exampleN`
    /// (`examples/exampleN.Caddyfile` → `examples/exampleN.json`).
    static var names: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let examples = (try? FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("examples").path)) ?? []
        return files.filter { $0.hasSuffix(".caddyfile") }.map { String($0.dropLast(".caddyfile".count)) }.sorted()
            + examples.filter { $0.hasSuffix(".Caddyfile") }.map { "examples/" + $0.dropLast(".Caddyfile".count) }.sorted()
    }

    static func url(_ name: String, _ ext: String) -> URL {
        if name.hasPrefix("examples/") && ext == "caddyfile" { return directory.appendingPathComponent("\(name).Caddyfile") }
        return directory.appendingPathComponent("\(name).\(ext)")
    }

    /// The adapter's output for `name`: the pretty JSON, or the error text.
    static func actual(_ name: String) throws -> (json: String?, error: String?) {
        let input = try Data(contentsOf: url(name, "caddyfile"))
        do {
            let config = try CaddyfileAdapter.adapt(Array(input), filename: "\(name).caddyfile", environment: environment)
            return (config.json.serialized(pretty: true) + "\n", nil)
        } catch {
            return (nil, error.description + "\n")
        }
    }
}

@Suite("Golden Caddyfile → JSON")
struct GoldenTests {
    /// The bar: the four seed examples plus at least 60 more.
    @Test func thereAreEnoughCases() {
        let examples = Golden.names.filter { $0.hasPrefix("examples/") }
        #expect(examples == ["examples/example1", "examples/example2", "examples/example3", "examples/example4"])
        #expect(Golden.names.count - examples.count >= 60)
    }

    @Test(arguments: Golden.names)
    func golden(_ name: String) throws {
        let (json, error) = try Golden.actual(name)
        let fm = FileManager.default
        let jsonURL = Golden.url(name, "json"), errorURL = Golden.url(name, "error")
        if ProcessInfo.processInfo.environment["BERTH_UPDATE_GOLDEN"] == "1" {
            try? fm.removeItem(at: jsonURL)
            try? fm.removeItem(at: errorURL)
            if let json { try json.write(to: jsonURL, atomically: true, encoding: .utf8) }
            if let error { try error.write(to: errorURL, atomically: true, encoding: .utf8) }
            return
        }
        let expectedJSON = try? String(contentsOf: jsonURL, encoding: .utf8)
        let expectedError = try? String(contentsOf: errorURL, encoding: .utf8)
        #expect((expectedJSON == nil) != (expectedError == nil), "exactly one of \(name).json / \(name).error must exist")
        #expect(json == expectedJSON, "\(name)")
        #expect(error == expectedError, "\(name)")
    }
}

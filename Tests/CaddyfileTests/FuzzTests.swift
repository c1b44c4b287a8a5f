import Foundation
import Testing

@testable import Caddyfile

/// Runs the libFuzzer entry point over the corpus and over generated inputs: it must return
/// (no crash, no hang) for any bytes.
@Suite("Fuzz entry")
struct FuzzTests {
    /// A small deterministic generator (SplitMix64).
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
    }

    static let fragments: [[UInt8]] =
        [
            "{", "}", "{}", "\"", "`", "\\", "#", "<<", "<<EOF\n", "EOF", "\n", " ", "\t", "\r\n",
            "import ", "(s) ", "&(r) ", "{args[0]}", "{args[:]}", "{args[1:]}", "{block}", "{blocks.a}",
            "a", "site.com", ",", "@m", "{$FUZZ}", "{$MULTI}", "{$X:d}", "{env.X}", "\u{FEFF}", "\u{A0}",
            "import s a b {\n", "(s) {\n", "import s\n", "respond <<E\n  x\n  E 200\n", "\\\n",
        ].map { Array($0.utf8) } + [[0xFF], [0xE2, 0x82], [0x00]]

    func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { caddyfileFuzzOne($0) }
    }

    @Test func survivesTheGoldenCorpus() {
        for url in Support.allInputs { run(Support.bytes(url)) }
    }

    @Test func survivesGeneratedInputs() {
        var generator = Generator(state: 0xCADD_F11E)
        for _ in 0..<3_000 {
            var input: [UInt8] = []
            for _ in 0..<generator.below(60) {
                input += Self.fragments[generator.below(Self.fragments.count)]
            }
            run(input)
        }
    }

    @Test func survivesRandomBytes() {
        var generator = Generator(state: 42)
        for _ in 0..<2_000 {
            let input = (0..<generator.below(200)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            run(input)
        }
    }

    @Test func exponentialImportsFinishQuickly() {
        var input = "(s0) {\n\tx x x x x x x x\n}\n"
        for i in 1...40 { input += "(s\(i)) {\n\timport s\(i - 1)\n\timport s\(i - 1)\n}\n" }
        input += "a {\n\timport s40\n}\n"
        let start = ContinuousClock.now
        run(Array(input.utf8))
        #expect(ContinuousClock.now - start < .seconds(20))
    }

    @Test func corpusDirectoryHoldsTheGoldenInputs() throws {
        let here = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        let corpus = here.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fuzz/corpus/caddyfile")
        let names = try FileManager.default.contentsOfDirectory(atPath: corpus.path)
        #expect(names.count >= Support.allInputs.count)
    }
}
